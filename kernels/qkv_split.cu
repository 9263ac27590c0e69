/* Splits the fused c_attn output into q (kept fp32 for the attention scores)
 * and K, V appended to the KV cache at each row's (slot, position). */
#include "common.cuh"

template <typename T>
__global__ void bk_qkv_split(const float *qkv, const float *bias, const int32_t *slot,
                             const int32_t *pos, int n_head, int hd, int n_ctx, float *q, T *kc,
                             T *vc) {
    const int i = blockIdx.x;
    const int C = n_head * hd;
    const float *in = qkv + (size_t)i * 3 * C;
    const size_t s = (size_t)slot[i], p = (size_t)pos[i];
    for (int c = threadIdx.x; c < 3 * C; c += blockDim.x) {
        const float v = __fadd_rn(in[c], bias[c]);
        if (c < C) {
            q[(size_t)i * C + c] = v;
        } else {
            const int cc = (c - C) % C;
            const int h = cc / hd, d = cc % hd;
            T *dst = c < 2 * C ? kc : vc;
            dst[((s * n_head + h) * n_ctx + p) * hd + d] = bk_from_f<T>(v);
        }
    }
}

extern "C" cudaError_t blurb_k_qkv_split(const float *qkv, const float *bias, const int32_t *slot,
                                         const int32_t *pos, int M, int n_head, int head_dim,
                                         int n_ctx, float *q, void *k_cache, void *v_cache, int dt,
                                         cudaStream_t stream) {
    if (M <= 0) return cudaSuccess;
    BK_DISPATCH_T(dt, (bk_qkv_split<T><<<M, 256, 0, stream>>>(qkv, bias, slot, pos, n_head,
                                                             head_dim, n_ctx, q, (T *)k_cache,
                                                             (T *)v_cache)));
    return bk_launch_status();
}
