/* Bias add fused with GELU, tanh approximation (HF "gelu_new"):
 * gelu(x) = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))  (Hendrycks & Gimpel 2016). */
#include "common.cuh"

template <typename T>
__global__ void bk_bias_gelu(const float *in, const float *bias, int64_t total, int N, T *out) {
    const float k = 0.7978845608028654f; /* sqrt(2 / pi) */
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < total;
         i += (int64_t)gridDim.x * blockDim.x) {
        float v = in[i] + bias[i % N];
        float u = k * (v + 0.044715f * v * v * v);
        out[i] = bk_from_f<T>(0.5f * v * (1.0f + tanhf(u)));
    }
}

extern "C" cudaError_t blurb_k_bias_gelu(const float *in, const float *bias, int M, int N,
                                         void *out, int dt, cudaStream_t stream) {
    if (M <= 0) return cudaSuccess;
    const int64_t total = (int64_t)M * N;
    BK_DISPATCH_T(dt, (bk_bias_gelu<T><<<bk_blocks(total, 256, 65535), 256, 0, stream>>>(
                          in, bias, total, N, (T *)out)));
    return bk_launch_status();
}
