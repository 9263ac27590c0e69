/* Token + position embedding (GPT-2: h0 = wte[token] + wpe[position]). */
#include "common.cuh"

template <typename T>
__global__ void bk_embed(const int32_t *tok, const int32_t *slot, const int32_t *pos,
                         const T *wte, const float *wpe, int C, int32_t *hist, int n_ctx,
                         float *x) {
    const int i = blockIdx.x;
    const int32_t t = tok[i], p = pos[i];
    const T *e = wte + (size_t)t * C;
    const float *pe = wpe + (size_t)p * C;
    float *out = x + (size_t)i * C;
    for (int c = threadIdx.x; c < C; c += blockDim.x) out[c] = __fadd_rn(bk_to_f(e[c]), pe[c]);
    if (threadIdx.x == 0) hist[(size_t)slot[i] * n_ctx + p] = t;
}

extern "C" cudaError_t blurb_k_embed(const int32_t *tok, const int32_t *slot, const int32_t *pos,
                                     int M, const void *wte, int dt, const float *wpe, int C,
                                     int32_t *hist, int n_ctx, float *x, cudaStream_t stream) {
    if (M <= 0) return cudaSuccess;
    BK_DISPATCH_T(dt, (bk_embed<T><<<M, 256, 0, stream>>>(tok, slot, pos, (const T *)wte, wpe, C,
                                                         hist, n_ctx, x)));
    return bk_launch_status();
}

/* cudaFuncGetAttributes fails with cudaErrorNoKernelImageForDevice (or
 * InvalidDeviceFunction) when this build has no code the device can run. */
extern "C" cudaError_t blurb_k_check_image(void) {
    cudaFuncAttributes a;
    return cudaFuncGetAttributes(&a, bk_embed<float>);
}
