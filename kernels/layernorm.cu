/* Residual add fused with LayerNorm: one block per row, the row kept in shared
 * memory, statistics in fp32 with fixed-order reductions (a row's result does
 * not depend on the other rows). Two-pass variance (mean first) for accuracy. */
#include "common.cuh"

template <typename T>
__global__ void bk_resid_ln(float *x, const float *delta, const float *dbias, const int32_t *rows,
                            int C, int write_x, const float *gamma, const float *beta, float eps,
                            T *out) {
    extern __shared__ float row[];
    __shared__ float scratch[32];
    const int r = blockIdx.x;
    const int i = rows ? rows[r] : r;
    float *xr = x + (size_t)i * C;
    const float *dr = delta ? delta + (size_t)i * C : nullptr;
    float s = 0.0f;
    for (int c = threadIdx.x; c < C; c += blockDim.x) {
        float v = xr[c];
        /* x + (y + b): the linear layer's output (with its bias) is added to the residual. */
        if (dr) v = __fadd_rn(v, __fadd_rn(dr[c], dbias[c]));
        row[c] = v;
        if (write_x) xr[c] = v;
        s = __fadd_rn(s, v);
    }
    const float mean = __fdiv_rn(bk_block_sum(s, scratch), (float)C);
    float q = 0.0f;
    for (int c = threadIdx.x; c < C; c += blockDim.x) {
        float d = __fsub_rn(row[c], mean);
        q = __fmaf_rn(d, d, q);
    }
    const float var = __fdiv_rn(bk_block_sum(q, scratch), (float)C);
    const float rstd = __fdiv_rn(1.0f, __fsqrt_rn(__fadd_rn(var, eps)));
    T *o = out + (size_t)r * C;
    for (int c = threadIdx.x; c < C; c += blockDim.x) {
        float v = __fmul_rn(__fsub_rn(row[c], mean), rstd);
        o[c] = bk_from_f<T>(__fmaf_rn(v, gamma[c], beta[c]));
    }
}

extern "C" cudaError_t blurb_k_resid_layernorm(float *x, const float *delta, const float *dbias,
                                               const int32_t *rows, int R, int C, int write_x,
                                               const float *gamma, const float *beta, float eps,
                                               void *out, int dt, cudaStream_t stream) {
    if (R <= 0) return cudaSuccess;
    const size_t smem = (size_t)C * sizeof(float);
    /* dynamic + the 32 floats of static scratch must fit the default 48 KiB */
    if (smem + 32 * sizeof(float) > 48 * 1024) return cudaErrorInvalidValue; /* n_embd > 12256 */
    BK_DISPATCH_T(dt, (bk_resid_ln<T><<<R, 256, smem, stream>>>(x, delta, dbias, rows, C, write_x,
                                                               gamma, beta, eps, (T *)out)));
    return bk_launch_status();
}
