/* Causal attention over the KV cache, shared by the decode and prefill kernels.
 *
 * Every query is computed by the same sequence of fp32 operations whichever
 * kernel runs it and whatever else is in the batch:
 *   - its keys 0..pos are cut into splits of BLURB_ATT_SPLIT keys from position 0,
 *     each split into tiles of 32 keys; tile t of a split belongs to warp t % 4;
 *   - per tile, lane j scores key j (dot product over head_dim in index order,
 *     explicit fma, then times scale) and the warp updates its running
 *     (max, sum, acc) state online (Milakov & Gimelshein 2018, "Online
 *     normalizer calculation for softmax");
 *   - the four warp states are merged in warp order, and the splits (when the
 *     query has more than one) in split order by blurb_k_attention_combine.
 * Explicit __fmaf_rn/__fmul_rn/__fadd_rn keep the compiler from contracting or
 * reordering differently in the two instantiations. The prefill kernel only
 * adds reuse: a warp stages its K/V tile in shared memory for up to
 * BLURB_ATT_PREFILL_BQ queries; the decode kernel reads K/V from global memory. */
#ifndef BLURB_KERNELS_ATTENTION_COMMON_CUH
#define BLURB_KERNELS_ATTENTION_COMMON_CUH

#include "common.cuh"

#define BK_ATT_TILE 32
#define BK_ATT_WARPS 4
#define BK_ATT_TILES (BLURB_ATT_SPLIT / BK_ATT_TILE)

/* Shared memory of one block, in floats: q [BQ][HD]; for BQ > 1 per-warp K
 * tiles [32][HD + 1] (padded: lane j reads row j, conflict-free) and V tiles
 * [32][HD]; the merge area [4][BQ][HD + 2] reuses the tile area when there is one. */
template <int DPL, int BQ> __host__ __device__ constexpr int bk_att_smem_floats() {
    return BQ * 32 * DPL +
           (BQ > 1 ? BK_ATT_WARPS * BK_ATT_TILE * (32 * DPL + 1) + BK_ATT_WARPS * BK_ATT_TILE * 32 * DPL
                   : BK_ATT_WARPS * BQ * (32 * DPL + 2));
}

/* Loads 16 bytes (8 halves / 8 bf16 / 4 floats) of a K row and widens them. */
template <typename T> struct bk_vec16 {
    static constexpr int N = 16 / sizeof(T);
    union U {
        uint4 u;
        T e[16 / sizeof(T)];
    };
};

template <typename T, int DPL, int BQ>
__global__ void __launch_bounds__(BK_ATT_WARPS * 32)
bk_attention(const blurb_att_tile *tiles, const float *q, const T *kc, const T *vc, int n_head,
             int n_ctx, int max_splits, float scale, T *out, float *partial) {
    constexpr int HD = 32 * DPL;
    extern __shared__ float smem[];
    const blurb_att_tile tile = tiles[blockIdx.x];
    const int h = blockIdx.y, split = blockIdx.z;
    const int split0 = split * BLURB_ATT_SPLIT;
    const int last = tile.pos0 + tile.nq - 1; /* last position of the tile */
    if (tile.nq <= 0 || split0 > last) return; /* uniform per block */
    const int C = n_head * HD;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;

    float *sq = smem;
    float *sk = sq + BQ * HD;
    float *sv = sk + BK_ATT_WARPS * BK_ATT_TILE * (HD + 1);
    float *sm = sk; /* merge area: right after q (aliases the K/V tiles when BQ > 1) */

    for (int e = threadIdx.x; e < BQ * HD; e += blockDim.x) {
        const int qi = e / HD, d = e % HD;
        sq[e] = qi < tile.nq ? q[(size_t)(tile.tok + qi) * C + (size_t)h * HD + d] : 0.0f;
    }
    __syncthreads();

    const size_t head_row0 = ((size_t)tile.slot * n_head + h) * (size_t)n_ctx;
    const T *kh = kc + head_row0 * HD;
    const T *vh = vc + head_row0 * HD;

    float m[BQ], l[BQ], acc[BQ][DPL];
#pragma unroll
    for (int qi = 0; qi < BQ; qi++) {
        m[qi] = -INFINITY;
        l[qi] = 0.0f;
#pragma unroll
        for (int i = 0; i < DPL; i++) acc[qi][i] = 0.0f;
    }

    float *wk = sk + warp * BK_ATT_TILE * (HD + 1);
    float *wv = sv + warp * BK_ATT_TILE * HD;

    for (int t = warp; t < BK_ATT_TILES; t += BK_ATT_WARPS) {
        const int k0 = split0 + t * BK_ATT_TILE;
        if (k0 > last) break; /* uniform per warp; later tiles start even later */
        if (BQ > 1) {
            const int nk = min(BK_ATT_TILE, last - k0 + 1);
            for (int r = 0; r < BK_ATT_TILE; r++) {
                const bool ok = r < nk;
                const T *kr = kh + (size_t)(k0 + r) * HD;
                const T *vr = vh + (size_t)(k0 + r) * HD;
#pragma unroll
                for (int i = 0; i < DPL; i++) {
                    const int d = lane + 32 * i;
                    /* rows past the tile's last query are zero, never garbage: p * v must stay finite */
                    wk[r * (HD + 1) + d] = ok ? bk_to_f(kr[d]) : 0.0f;
                    wv[r * HD + d] = ok ? bk_to_f(vr[d]) : 0.0f;
                }
            }
            __syncwarp();
        }
#pragma unroll
        for (int qi = 0; qi < BQ; qi++) {
            const int p = tile.pos0 + qi;
            if (qi < tile.nq && k0 <= p) { /* uniform per warp */
                const int key = k0 + lane;
                const float *qv = sq + qi * HD;
                float s = -INFINITY;
                if (key <= p) {
                    float dot = 0.0f;
                    if (BQ > 1) {
                        const float *kr = wk + lane * (HD + 1);
#pragma unroll 8
                        for (int d = 0; d < HD; d++) dot = __fmaf_rn(qv[d], kr[d], dot);
                    } else {
                        typedef bk_vec16<T> V;
                        const uint4 *kr = (const uint4 *)(kh + (size_t)key * HD);
#pragma unroll
                        for (int c = 0; c < HD / V::N; c++) {
                            typename V::U u;
                            u.u = __ldg(kr + c);
#pragma unroll
                            for (int e = 0; e < V::N; e++)
                                dot = __fmaf_rn(qv[c * V::N + e], bk_to_f(u.e[e]), dot);
                        }
                    }
                    s = __fmul_rn(dot, scale);
                }
                const float mt = bk_warp_max(s);          /* finite: key k0 <= p */
                const float mn = fmaxf(m[qi], mt);
                const float alpha = expf(m[qi] - mn);     /* first tile: exp(-inf) = 0 */
                const float pr = key <= p ? expf(s - mn) : 0.0f;
                l[qi] = __fadd_rn(__fmul_rn(l[qi], alpha), bk_warp_sum(pr));
#pragma unroll
                for (int i = 0; i < DPL; i++) acc[qi][i] = __fmul_rn(acc[qi][i], alpha);
                const int nj = min(BK_ATT_TILE, p - k0 + 1); /* keys of this tile the query sees */
                for (int j = 0; j < nj; j++) {
                    const float pj = __shfl_sync(0xffffffffu, pr, j);
#pragma unroll
                    for (int i = 0; i < DPL; i++) {
                        const int d = lane + 32 * i;
                        const float v = BQ > 1 ? wv[j * HD + d] : bk_to_f(vh[(size_t)(k0 + j) * HD + d]);
                        acc[qi][i] = __fmaf_rn(pj, v, acc[qi][i]);
                    }
                }
                m[qi] = mn;
            }
        }
        if (BQ > 1) __syncwarp(); /* the next tile overwrites this warp's K/V area */
    }

    /* Merge the four warp states of each query, in warp order. */
    __syncthreads(); /* the merge area may alias other warps' tiles */
#pragma unroll
    for (int qi = 0; qi < BQ; qi++) {
        if (qi < tile.nq) {
            float *st = sm + (warp * BQ + qi) * (HD + 2);
            if (lane == 0) {
                st[0] = m[qi];
                st[1] = l[qi];
            }
#pragma unroll
            for (int i = 0; i < DPL; i++) st[2 + lane + 32 * i] = acc[qi][i];
        }
    }
    __syncthreads();
    for (int qi = warp; qi < tile.nq && qi < BQ; qi += BK_ATT_WARPS) {
        const int p = tile.pos0 + qi;
        if (split0 > p) continue; /* no key of this query in this split */
        float M = -INFINITY;
        for (int w = 0; w < BK_ATT_WARPS; w++) M = fmaxf(M, sm[(w * BQ + qi) * (HD + 2)]);
        float L = 0.0f, a[DPL];
#pragma unroll
        for (int i = 0; i < DPL; i++) a[i] = 0.0f;
        for (int w = 0; w < BK_ATT_WARPS; w++) {
            const float *st = sm + (w * BQ + qi) * (HD + 2);
            const float e = expf(st[0] - M); /* a warp without keys: exp(-inf) = 0 */
            L = __fadd_rn(L, __fmul_rn(st[1], e));
#pragma unroll
            for (int i = 0; i < DPL; i++) a[i] = __fmaf_rn(st[2 + lane + 32 * i], e, a[i]);
        }
        const size_t tok = (size_t)tile.tok + qi;
        if (p < BLURB_ATT_SPLIT) {
            T *o = out + tok * C + (size_t)h * HD;
#pragma unroll
            for (int i = 0; i < DPL; i++) o[lane + 32 * i] = bk_from_f<T>(__fdiv_rn(a[i], L));
        } else {
            float *pp = partial + ((tok * n_head + h) * (size_t)max_splits + split) * (HD + 2);
            if (lane == 0) {
                pp[0] = M;
                pp[1] = L;
            }
#pragma unroll
            for (int i = 0; i < DPL; i++) pp[2 + lane + 32 * i] = a[i];
        }
    }
}

template <int BQ>
static cudaError_t bk_attention_launch(const blurb_att_tile *tiles, int n_tiles, const float *q,
                                       const void *kc, const void *vc, int dt, int n_head, int hd,
                                       int n_ctx, int max_splits, float scale, void *out,
                                       float *partial, cudaStream_t stream) {
    if (n_tiles <= 0) return cudaSuccess;
    if (n_head > 65535 || max_splits > 65535 || max_splits < 1) return cudaErrorInvalidValue;
    const dim3 grid((unsigned)n_tiles, (unsigned)n_head, (unsigned)max_splits);
    const dim3 block(BK_ATT_WARPS * 32);
#define BK_ATT_CASE(DPL)                                                                          \
    case 32 * DPL:                                                                                \
        BK_DISPATCH_T(dt, (bk_attention<T, DPL, BQ>                                               \
                           <<<grid, block, bk_att_smem_floats<DPL, BQ>() * sizeof(float), stream>>>( \
                               tiles, q, (const T *)kc, (const T *)vc, n_head, n_ctx, max_splits,   \
                               scale, (T *)out, partial)));                                       \
        break;
    switch (hd) {
        BK_ATT_CASE(1)
        BK_ATT_CASE(2)
        BK_ATT_CASE(4)
    default: return cudaErrorInvalidValue;
    }
#undef BK_ATT_CASE
    return bk_launch_status();
}

template <int BQ> static cudaError_t bk_attention_setup(int hd, int dt) {
#define BK_ATT_SETUP(DPL)                                                                        \
    case 32 * DPL:                                                                               \
        BK_DISPATCH_T(dt, {                                                                      \
            cudaError_t e_ = cudaFuncSetAttribute(bk_attention<T, DPL, BQ>,                      \
                                                  cudaFuncAttributeMaxDynamicSharedMemorySize,   \
                                                  (int)(bk_att_smem_floats<DPL, BQ>() * sizeof(float))); \
            if (e_ != cudaSuccess) return e_;                                                    \
        });                                                                                      \
        break;
    switch (hd) {
        BK_ATT_SETUP(1)
        BK_ATT_SETUP(2)
        BK_ATT_SETUP(4)
    default: return cudaErrorInvalidValue;
    }
#undef BK_ATT_SETUP
    return cudaSuccess;
}

#endif
