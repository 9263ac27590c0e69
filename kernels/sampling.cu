/* Sampling on the GPU: one 256-thread block per request reproduces
 * blurb_sample_row (host/sampler.c) bit for bit for the same fp32 logits,
 * following the arithmetic contract of host/sampler_internal.h:
 *   penalty, EOS mask, temperature, greedy/argmax, top-k (radix select with
 *   integer histograms), w = fixed_expf(z - m), S summed by 256 lanes in id
 *   order then a halving tree (exactly this block's layout), and the walk in
 *   (w desc, id asc) order with an fp32 running sum.
 * No full vocabulary sort: survivors are bucketed by the top 12 bits of w
 * (exponent + 4 mantissa bits, all w >= 0); buckets are visited from the
 * largest w down, each sorted on its own (bitonic in shared memory, or a
 * merge sort in global scratch when it holds more than SMP_CAP tokens), and
 * the walk stops at the first bucket where the running sum reaches its target.
 * Everything that depends on scheduling is integer (atomic counts), so the
 * result is the same whatever the batch. */
#include "common.cuh"
#include "sampler_math.h"

#define SMP_THREADS 256
#define SMP_BUCKET_SHIFT 19 /* w bits 30..19: 8 exponent + 4 mantissa bits */
#define SMP_NBUCKET 4096
#define SMP_CAP 4096 /* largest bucket sorted in shared memory */

/* Shared memory (dynamic): penalty bitmap [BW] (BW even), bucket counts /
 * cursors [4096], bucket offsets [4096], sort buffer [SMP_CAP] of u64 keys. */
static __host__ __device__ inline int smp_bitmap_words(int V) { return (((V + 31) / 32) + 1) & ~1; }
static inline size_t smp_smem_bytes(int V) {
    return (size_t)smp_bitmap_words(V) * 4 + 2 * SMP_NBUCKET * 4 + (size_t)SMP_CAP * 8;
}

struct SmpRow {
    const float *lg;
    const uint32_t *bitmap;
    bool penal, eos_mask, divide;
    float rp, T;
    int eos;
};

/* z_i before the temperature: NaN read as -inf, penalty, EOS mask. */
__device__ __forceinline__ float smp_zpre(const SmpRow &R, int i) {
    float v = R.lg[i];
    if (v != v) v = -INFINITY;
    if (R.penal && ((R.bitmap[i >> 5] >> (i & 31)) & 1u)) v = v > 0.0f ? __fdiv_rn(v, R.rp) : __fmul_rn(v, R.rp);
    if (R.eos_mask && i == R.eos) v = -INFINITY;
    return v;
}
__device__ __forceinline__ float smp_z(const SmpRow &R, int i) {
    const float v = smp_zpre(R, i);
    return R.divide ? __fdiv_rn(v, R.T) : v;
}
/* Order-preserving unsigned key of a float; -0 and +0 are equal, as in a float compare. */
__device__ __forceinline__ uint32_t smp_ordkey(float f) {
    uint32_t u = __float_as_uint(f);
    if (u == 0x80000000u) u = 0;
    return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}
/* Walk key: larger is earlier (w desc, then id asc). */
__device__ __forceinline__ unsigned long long smp_walk_key(float w, int id) {
    return ((unsigned long long)__float_as_uint(w) << 32) | (unsigned long long)(~(uint32_t)id);
}

/* (value, id) argmax with ties to the lower id, over the block. */
__device__ void smp_argmax(float &v, int &id, float *sv, int *si) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) {
        const float ov = __shfl_xor_sync(0xffffffffu, v, o);
        const int oi = __shfl_xor_sync(0xffffffffu, id, o);
        if (ov > v || (ov == v && oi < id)) {
            v = ov;
            id = oi;
        }
    }
    __syncthreads();
    if (lane == 0) {
        sv[warp] = v;
        si[warp] = id;
    }
    __syncthreads();
    v = sv[0];
    id = si[0];
    for (int w = 1; w < SMP_THREADS / 32; w++)
        if (sv[w] > v || (sv[w] == v && si[w] < id)) {
            v = sv[w];
            id = si[w];
        }
}

/* Sum in the reference order: thread l already holds lane l's sequential sum
 * of x[l], x[l + 256], ...; then lane[l] += lane[l + s] for s = 128 ... 1. */
__device__ float smp_lane_tree(float acc, float *lanes) {
    __syncthreads();
    lanes[threadIdx.x] = acc;
    __syncthreads();
    for (int s = SMP_THREADS / 2; s > 0; s >>= 1) {
        if ((int)threadIdx.x < s) lanes[threadIdx.x] = __fadd_rn(lanes[threadIdx.x], lanes[threadIdx.x + s]);
        __syncthreads();
    }
    const float r = lanes[0];
    __syncthreads();
    return r;
}

/* Bitonic sort of buf[0..n2) (n2 a power of two) into descending order. */
__device__ void smp_bitonic_desc(unsigned long long *buf, int n2) {
    for (int k = 2; k <= n2; k <<= 1) {
        for (int j = k >> 1; j > 0; j >>= 1) {
            for (int i = threadIdx.x; i < n2; i += SMP_THREADS) {
                const int p = i ^ j;
                if (p > i) {
                    const unsigned long long a = buf[i], b = buf[p];
                    const bool desc = (i & k) == 0;
                    if (desc ? (a < b) : (a > b)) {
                        buf[i] = b;
                        buf[p] = a;
                    }
                }
            }
            __syncthreads();
        }
    }
}

/* Sorts ids[0..n) by walk key, descending, when n > SMP_CAP: runs of SMP_CAP
 * sorted in shared memory, then merge-path merges through tmp. */
__device__ void smp_sort_global(int32_t *ids, int32_t *tmp, int n, const float *w,
                                unsigned long long *buf) {
    for (int cs = 0; cs < n; cs += SMP_CAP) {
        const int len = min(SMP_CAP, n - cs);
        for (int e = threadIdx.x; e < SMP_CAP; e += SMP_THREADS)
            buf[e] = e < len ? smp_walk_key(w[ids[cs + e]], ids[cs + e]) : 0ull;
        __syncthreads();
        smp_bitonic_desc(buf, SMP_CAP);
        for (int e = threadIdx.x; e < len; e += SMP_THREADS) ids[cs + e] = (int32_t)(~(uint32_t)buf[e]);
        __syncthreads();
    }
    int32_t *src = ids, *dst = tmp;
    for (int width = SMP_CAP; width < n; width <<= 1) {
        for (int lo = 0; lo < n; lo += 2 * width) {
            const int la = min(width, n - lo), lb = max(0, min(width, n - lo - width));
            const int32_t *A = src + lo, *B = src + lo + la;
            const int total = la + lb;
            const int d0 = (int)((long long)total * threadIdx.x / SMP_THREADS);
            const int d1 = (int)((long long)total * (threadIdx.x + 1) / SMP_THREADS);
            /* merge path: i elements of A and d0 - i of B come before output d0 */
            int ilo = max(0, d0 - lb), ihi = min(d0, la);
            while (ilo < ihi) {
                const int mid = (ilo + ihi) >> 1;
                if (smp_walk_key(w[A[mid]], A[mid]) > smp_walk_key(w[B[d0 - mid - 1]], B[d0 - mid - 1]))
                    ilo = mid + 1;
                else
                    ihi = mid;
            }
            int i = ilo, j = d0 - ilo;
            for (int d = d0; d < d1; d++) {
                bool takeA;
                if (i >= la) takeA = false;
                else if (j >= lb) takeA = true;
                else takeA = smp_walk_key(w[A[i]], A[i]) > smp_walk_key(w[B[j]], B[j]);
                dst[lo + d] = takeA ? A[i++] : B[j++];
            }
        }
        __syncthreads();
        int32_t *t = src;
        src = dst;
        dst = t;
    }
    if (src != ids) {
        for (int e = threadIdx.x; e < n; e += SMP_THREADS) ids[e] = src[e];
        __syncthreads();
    }
}

__global__ void __launch_bounds__(SMP_THREADS)
bk_sample(const blurb_sample_param *params, const float *logits, int64_t ld, int V,
          const int32_t *hist, int n_ctx, float *wbuf_all, int32_t *ids_all, int32_t *tmp_all,
          int32_t *tokens, float *logprobs) {
    extern __shared__ __align__(16) uint32_t sdyn[];
    __shared__ float s_f[SMP_THREADS];
    __shared__ uint32_t s_u[SMP_THREADS];
    __shared__ int s_i[32];
    __shared__ float s_v[32];
    __shared__ int s_stop, s_token, s_sel, s_need_i;
    __shared__ float s_c;

    const int tid = threadIdx.x;
    const blurb_sample_param P = params[blockIdx.x];
    const int BW = smp_bitmap_words(V);
    uint32_t *bitmap = sdyn;
    uint32_t *cnt = bitmap + BW;
    uint32_t *off = cnt + SMP_NBUCKET;
    unsigned long long *sortbuf = (unsigned long long *)(off + SMP_NBUCKET);
    float *wbuf = wbuf_all + (size_t)blockIdx.x * V;
    int32_t *ids = ids_all + (size_t)blockIdx.x * V;
    int32_t *tmp = tmp_all + (size_t)blockIdx.x * V;

    SmpRow R;
    R.lg = logits + (size_t)P.row * ld;
    R.bitmap = bitmap;
    R.rp = P.repetition_penalty;
    R.penal = R.rp > 0.0f && R.rp != 1.0f && isfinite(R.rp) && P.hist_len > 0;
    R.eos = P.eos_token_id;
    R.eos_mask = P.n_generated < P.min_new_tokens && P.eos_token_id >= 0 && P.eos_token_id < V;
    R.T = P.temperature;
    const float top_p = P.top_p;
    const bool greedy = !(R.T > 0.0f && R.T <= 3.4e38f) || !(top_p > 0.0f);
    R.divide = !greedy && R.T != 1.0f;

    /* 1. repetition-penalty set: each distinct history id once (a bitmap). */
    if (R.penal) {
        for (int i = tid; i < BW; i += SMP_THREADS) bitmap[i] = 0;
        __syncthreads();
        const int32_t *h = hist + (size_t)P.slot * n_ctx;
        for (int i = tid; i < P.hist_len; i += SMP_THREADS) {
            const int32_t t = h[i];
            if (t >= 0 && t < V) atomicOr(&bitmap[t >> 5], 1u << (t & 31));
        }
        __syncthreads();
    }

    /* 2. one pass: argmax and max of z (after the temperature unless greedy),
     *    and the raw maximum and +inf count for the log-probability. */
    float bv = -INFINITY, rm = -INFINITY;
    int bi = V, ninf = 0; /* bi == V: no element yet (loses every tie) */
    for (int i = tid; i < V; i += SMP_THREADS) {
        const float z = smp_z(R, i); /* never NaN */
        if (bi == V || z > bv) {  /* ids rise, so a tie keeps the lower id */
            bv = z;
            bi = i;
        }
        const float raw = R.lg[i];
        if (raw > rm) rm = raw; /* NaN never compares greater */
        ninf += raw == INFINITY;
    }
    smp_argmax(bv, bi, s_v, s_i);
    rm = bk_block_max(rm, s_f);
    {
        const float nf = bk_block_sum((float)ninf, s_f); /* counts < 2^24: exact */
        ninf = (int)nf;
    }
    const float m = bv;
    int token;
    if (greedy || !(m > -INFINITY && m < INFINITY)) {
        token = bi;
    } else {
        /* 3. top-k: the k-th largest z in (z desc, id asc) order by radix select. */
        const bool all = !(P.top_k > 0 && P.top_k < V);
        uint32_t kkey = 0;
        int kid = V - 1;
        if (!all) {
            uint32_t prefix = 0, mask = 0;
            int remaining = P.top_k;
            for (int level = 0; level < 4; level++) {
                const int shift = 24 - 8 * level;
                for (int d = tid; d < 256; d += SMP_THREADS) cnt[d] = 0;
                __syncthreads();
                for (int i = tid; i < V; i += SMP_THREADS) {
                    const uint32_t key = smp_ordkey(smp_z(R, i));
                    if ((key & mask) == prefix) atomicAdd(&cnt[(key >> shift) & 255u], 1u);
                }
                __syncthreads();
                if (tid == 0) {
                    uint32_t cum = 0;
                    int sel = 0;
                    for (int d = 255; d >= 0; d--) {
                        if (cum + cnt[d] >= (uint32_t)remaining) {
                            sel = d;
                            break;
                        }
                        cum += cnt[d];
                    }
                    s_sel = sel;
                    s_need_i = remaining - (int)cum;
                }
                __syncthreads();
                remaining = s_need_i;
                prefix |= (uint32_t)s_sel << shift;
                mask |= 255u << shift;
                __syncthreads();
            }
            kkey = prefix;
            /* the remaining-th lowest id among the ties at the k-th key */
            int need = remaining;
            const int lane = tid & 31, warp = tid >> 5;
            for (int base = 0; base < V; base += SMP_THREADS) {
                const int i = base + tid;
                const bool pred = i < V && smp_ordkey(smp_z(R, i)) == kkey;
                const unsigned bal = __ballot_sync(0xffffffffu, pred);
                if (lane == 0) s_i[warp] = __popc(bal);
                __syncthreads();
                int before = 0, total = 0;
                for (int w = 0; w < SMP_THREADS / 32; w++) {
                    if (w < warp) before += s_i[w];
                    total += s_i[w];
                }
                if (need <= total) {
                    const int rank = before + __popc(bal & ((1u << lane) - 1u)) + 1;
                    if (pred && rank == need) s_sel = i;
                    __syncthreads();
                    kid = s_sel;
                    break;
                }
                need -= total;
                __syncthreads();
            }
        }
        const int n_surv = all ? V : P.top_k;

        /* 4. w and S (lane l sums ids l, l + 256, ... in order; then the tree). */
        float acc = 0.0f;
        for (int i = tid; i < V; i += SMP_THREADS) {
            float w = 0.0f;
            const float z = smp_z(R, i);
            bool surv = all;
            if (!all) {
                const uint32_t key = smp_ordkey(z);
                surv = key > kkey || (key == kkey && i <= kid);
            }
            if (surv) w = bks_fixed_expf(__fsub_rn(z, m));
            /* non-survivors get -1 so that later passes can tell them apart */
            wbuf[i] = surv ? w : -1.0f;
            acc = __fadd_rn(acc, w);
        }
        const float S = smp_lane_tree(acc, s_f);
        const float u = bks_uniform((uint32_t)P.n_generated, P.key_lo, P.key_hi);
        const bool use_top_p = top_p < 1.0f;
        const float need = use_top_p ? __fmul_rn(top_p, S) : __fmul_rn(u, S);

        /* 5. buckets by the top 12 bits of w, largest first. */
        for (int d = tid; d < SMP_NBUCKET; d += SMP_THREADS) cnt[d] = 0;
        __syncthreads();
        for (int i = tid; i < V; i += SMP_THREADS) {
            const float w = wbuf[i];
            if (w >= 0.0f) atomicAdd(&cnt[__float_as_uint(w) >> SMP_BUCKET_SHIFT], 1u);
        }
        __syncthreads();
        {
            /* exclusive scan from the top bucket down: off[b] = sum of cnt[b' > b] */
            constexpr int per = SMP_NBUCKET / SMP_THREADS;
            uint32_t local = 0;
            for (int k = 0; k < per; k++) local += cnt[SMP_NBUCKET - 1 - (tid * per + k)];
            s_u[tid] = local;
            __syncthreads();
            if (tid == 0) {
                uint32_t run = 0;
                for (int t = 0; t < SMP_THREADS; t++) {
                    const uint32_t v = s_u[t];
                    s_u[t] = run;
                    run += v;
                }
            }
            __syncthreads();
            uint32_t run = s_u[tid];
            for (int k = 0; k < per; k++) {
                const int b = SMP_NBUCKET - 1 - (tid * per + k);
                off[b] = run;
                run += cnt[b];
            }
            __syncthreads();
            for (int b = tid; b < SMP_NBUCKET; b += SMP_THREADS) cnt[b] = off[b]; /* cursors */
            __syncthreads();
        }
        for (int i = tid; i < V; i += SMP_THREADS) {
            const float w = wbuf[i];
            if (w >= 0.0f) ids[atomicAdd(&cnt[__float_as_uint(w) >> SMP_BUCKET_SHIFT], 1u)] = i;
        }
        if (tid == 0) {
            s_stop = -1;
            s_c = 0.0f;
        }
        __syncthreads();

        /* 6. the walk: buckets in order, each sorted, the running sum sequential. */
        float *cum = (float *)tmp; /* walk position k -> C_k (top-p only) */
        for (int b = SMP_NBUCKET - 1; b >= 0; b--) {
            const int o = (int)off[b];
            const int nb = (int)cnt[b] - o;
            if (nb == 0) continue;
            if (nb <= SMP_CAP) {
                int n2 = 1;
                while (n2 < nb) n2 <<= 1;
                for (int e = tid; e < n2; e += SMP_THREADS)
                    sortbuf[e] = e < nb ? smp_walk_key(wbuf[ids[o + e]], ids[o + e]) : 0ull;
                __syncthreads();
                smp_bitonic_desc(sortbuf, n2);
                for (int e = tid; e < nb; e += SMP_THREADS) ids[o + e] = (int32_t)(~(uint32_t)sortbuf[e]);
            } else {
                smp_sort_global(ids + o, tmp + o, nb, wbuf, sortbuf);
            }
            __syncthreads();
            /* Walk the sorted bucket SMP_CAP tokens at a time out of shared memory
             * (the small case is already there): thread 0 adds, in order. */
            for (int cs = 0; cs < nb; cs += SMP_CAP) {
                const int len = min(SMP_CAP, nb - cs);
                if (nb > SMP_CAP) {
                    for (int e = tid; e < len; e += SMP_THREADS)
                        sortbuf[e] = smp_walk_key(wbuf[ids[o + cs + e]], ids[o + cs + e]);
                    __syncthreads();
                }
                if (tid == 0) {
                    float c = s_c;
                    int stop = -1;
                    for (int e = 0; e < len; e++) {
                        c = __fadd_rn(c, __uint_as_float((uint32_t)(sortbuf[e] >> 32)));
                        if (use_top_p) {
                            cum[o + cs + e] = c;
                            if (c >= need) {
                                stop = o + cs + e;
                                break;
                            }
                        } else if (c > need) {
                            stop = o + cs + e;
                            break;
                        }
                    }
                    s_c = c;
                    s_stop = stop;
                }
                __syncthreads();
                if (s_stop >= 0) break;
            }
            if (s_stop >= 0) break;
        }
        if (tid == 0) {
            const int stop = s_stop;
            if (use_top_p) {
                const int j = stop >= 0 ? stop + 1 : n_surv; /* kept tokens */
                const float M = s_c;                        /* their mass C_j */
                const float t = __fmul_rn(u, M);
                int lo = 0, hi = j; /* first kept position with C > t */
                while (lo < hi) {
                    const int mid = lo + (hi - lo) / 2;
                    if (cum[mid] > t) hi = mid;
                    else lo = mid + 1;
                }
                s_token = ids[lo < j ? lo : j - 1];
            } else {
                s_token = ids[stop >= 0 ? stop : n_surv - 1];
            }
        }
        __syncthreads();
        token = s_token;
    }

    /* 7. log-softmax of the raw logits at the token (reference: raw_logprob). */
    float lp;
    {
        float lt = R.lg[token];
        if (lt != lt) lt = -INFINITY;
        float acc = 0.0f;
        if (rm != -INFINITY && ninf == 0) {
            for (int i = tid; i < V; i += SMP_THREADS) {
                const float v = R.lg[i];
                acc = __fadd_rn(acc, bks_fixed_expf(v != v ? -INFINITY : __fsub_rn(v, rm)));
            }
        }
        const float S = smp_lane_tree(acc, s_f);
        if (rm == -INFINITY) lp = NAN;
        else if (ninf) lp = lt == INFINITY ? -logf((float)ninf) : -INFINITY;
        else lp = (float)((double)lt - (double)rm - log((double)S));
    }
    if (tid == 0) {
        tokens[blockIdx.x] = token;
        if (logprobs) logprobs[blockIdx.x] = lp;
    }
}

extern "C" cudaError_t blurb_k_sample_setup(int vocab_size) {
    return cudaFuncSetAttribute(bk_sample, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                (int)smp_smem_bytes(vocab_size));
}

extern "C" size_t blurb_k_sample_scratch_bytes(int vocab_size) {
    return (size_t)vocab_size * (sizeof(float) + 2 * sizeof(int32_t));
}

extern "C" cudaError_t blurb_k_sample(const blurb_sample_param *params, int n, const float *logits,
                                      int64_t ld, int vocab_size, const int32_t *hist, int n_ctx,
                                      void *scratch, int32_t *tokens, float *logprobs,
                                      cudaStream_t stream) {
    if (n <= 0) return cudaSuccess;
    float *wbuf = (float *)scratch;
    int32_t *ids = (int32_t *)(wbuf + (size_t)n * vocab_size);
    int32_t *tmp = ids + (size_t)n * vocab_size;
    bk_sample<<<n, SMP_THREADS, smp_smem_bytes(vocab_size), stream>>>(
        params, logits, ld, vocab_size, hist, n_ctx, wbuf, ids, tmp, tokens, logprobs);
    return bk_launch_status();
}
