/* Bias add fused with GELU, tanh approximation (HF "gelu_new"):
 * gelu(x) = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))  (Hendrycks & Gimpel 2016),
 * computed as x / (1 + exp(-2u)) like the CPU twin (host/backend_cpu.c): the
 * same function without the cancellation of 1 + tanh(u) for negative u. */
#include "common.cuh"

/* grid.x covers the N columns, grid.y strides over the M rows: no 64-bit
 * modulo per element. */
template <typename T>
__global__ void bk_bias_gelu(const float *in, const float *bias, int M, int N, T *out) {
    const float k = 0.7978845608028654f; /* sqrt(2 / pi) */
    const int col = blockIdx.x * blockDim.x + threadIdx.x;
    if (col >= N) return;
    const float b = bias[col];
    for (int row = blockIdx.y; row < M; row += gridDim.y) {
        const int64_t i = (int64_t)row * N + col;
        const float v = in[i] + b;
        const float u = k * (v + 0.044715f * v * v * v);
        out[i] = bk_from_f<T>(v / (1.0f + expf(-2.0f * u)));
    }
}

extern "C" cudaError_t blurb_k_bias_gelu(const float *in, const float *bias, int M, int N,
                                         void *out, int dt, cudaStream_t stream) {
    if (M <= 0) return cudaSuccess;
    if (N <= 0) return cudaErrorInvalidValue;
    const dim3 grid((unsigned)((N + 255) / 256), (unsigned)(M < 65535 ? M : 65535));
    BK_DISPATCH_T(dt, (bk_bias_gelu<T><<<grid, 256, 0, stream>>>(in, bias, M, N, (T *)out)));
    return bk_launch_status();
}
