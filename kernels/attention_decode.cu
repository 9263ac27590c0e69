/* Attention for decode steps: one query per sequence, K/V read straight from
 * the cache (no reuse to gain from shared memory), split along the context by
 * the sequence's own length (attention_common.cuh); plus the split combine. */
#include "attention_common.cuh"

extern "C" cudaError_t blurb_k_attention_prefill_setup(int head_dim, int dt);

extern "C" cudaError_t blurb_k_attention_decode(const blurb_att_tile *tiles, int n_tiles,
                                                const float *q, const void *k_cache,
                                                const void *v_cache, int dt, int n_head,
                                                int head_dim, int n_ctx, int max_splits,
                                                float scale, void *out, float *partial,
                                                cudaStream_t stream) {
    return bk_attention_launch<1>(tiles, n_tiles, q, k_cache, v_cache, dt, n_head, head_dim, n_ctx,
                                  max_splits, scale, out, partial, stream);
}

/* One warp per (row, head): merges the split states in split order. */
template <typename T>
__global__ void bk_attention_combine(const int32_t *pos, const float *partial, int n_head, int hd,
                                     int max_splits, T *out) {
    const int i = blockIdx.x;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
    const int ns = pos[i] / BLURB_ATT_SPLIT + 1;
    if (ns <= 1) return; /* written directly by the attention kernel */
    const int C = n_head * hd;
    for (int h = warp; h < n_head; h += nw) {
        const float *base = partial + ((size_t)i * n_head + h) * (size_t)max_splits * (hd + 2);
        float M = -INFINITY;
        for (int s = 0; s < ns; s++) M = fmaxf(M, base[(size_t)s * (hd + 2)]);
        float L = 0.0f, a[4] = {0.0f, 0.0f, 0.0f, 0.0f};
        for (int s = 0; s < ns; s++) {
            const float *st = base + (size_t)s * (hd + 2);
            const float e = expf(st[0] - M);
            L = __fadd_rn(L, __fmul_rn(st[1], e));
#pragma unroll
            for (int k = 0; k < 4; k++)
                if (lane + 32 * k < hd) a[k] = __fmaf_rn(st[2 + lane + 32 * k], e, a[k]);
        }
        T *o = out + (size_t)i * C + (size_t)h * hd;
#pragma unroll
        for (int k = 0; k < 4; k++)
            if (lane + 32 * k < hd) o[lane + 32 * k] = bk_from_f<T>(__fdiv_rn(a[k], L));
    }
}

extern "C" cudaError_t blurb_k_attention_combine(const int32_t *pos, int M, const float *partial,
                                                 int n_head, int head_dim, int max_splits,
                                                 void *out, int dt, cudaStream_t stream) {
    if (M <= 0 || max_splits <= 1) return cudaSuccess;
    if (head_dim > 128) return cudaErrorInvalidValue;
    BK_DISPATCH_T(dt, (bk_attention_combine<T><<<M, 128, 0, stream>>>(pos, partial, n_head, head_dim,
                                                                       max_splits, (T *)out)));
    return bk_launch_status();
}

extern "C" int blurb_k_attention_supports(int head_dim) {
    return head_dim == 32 || head_dim == 64 || head_dim == 128;
}

extern "C" cudaError_t blurb_k_attention_setup(int head_dim, int dt) {
    cudaError_t e = bk_attention_setup<1>(head_dim, dt);
    if (e != cudaSuccess) return e;
    return blurb_k_attention_prefill_setup(head_dim, dt);
}
