/* Device helpers shared by blurb's kernels: dtype conversion, warp and block
 * reductions in a fixed order (so results never depend on scheduling), and
 * the dtype dispatch used by the C launchers. */
#ifndef BLURB_KERNELS_COMMON_CUH
#define BLURB_KERNELS_COMMON_CUH

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <math.h>
#include <stdint.h>

#include "kernels.h"

enum { BK_F32 = 0, BK_F16 = 1, BK_BF16 = 2 };

__device__ __forceinline__ float bk_to_f(float v) { return v; }
__device__ __forceinline__ float bk_to_f(__half v) { return __half2float(v); }
__device__ __forceinline__ float bk_to_f(__nv_bfloat16 v) { return __bfloat162float(v); }

template <typename T> __device__ __forceinline__ T bk_from_f(float v);
template <> __device__ __forceinline__ float bk_from_f<float>(float v) { return v; }
template <> __device__ __forceinline__ __half bk_from_f<__half>(float v) { return __float2half_rn(v); }
template <> __device__ __forceinline__ __nv_bfloat16 bk_from_f<__nv_bfloat16>(float v) {
    return __float2bfloat16_rn(v);
}

/* Loads element i of a buffer whose dtype is only known at run time (weight conversion). */
__device__ __forceinline__ float bk_load_any(const void *p, int dt, int64_t i) {
    switch (dt) {
    case BK_F16: return __half2float(((const __half *)p)[i]);
    case BK_BF16: return __bfloat162float(((const __nv_bfloat16 *)p)[i]);
    default: return ((const float *)p)[i];
    }
}
__device__ __forceinline__ void bk_store_any(void *p, int dt, int64_t i, float v) {
    switch (dt) {
    case BK_F16: ((__half *)p)[i] = __float2half_rn(v); break;
    case BK_BF16: ((__nv_bfloat16 *)p)[i] = __float2bfloat16_rn(v); break;
    default: ((float *)p)[i] = v; break;
    }
}

/* Butterfly reductions: every lane ends with the same bits, because each step
 * adds the same two values (a + b == b + a exactly). */
__device__ __forceinline__ float bk_warp_sum(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v = __fadd_rn(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}
__device__ __forceinline__ float bk_warp_max(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

/* Block-wide sum / max for blockDim.x a multiple of 32 (<= 1024). scratch holds
 * 32 floats. Fixed order: each warp reduces, then warp 0 reduces the warp
 * results. Returns the result to every thread. */
__device__ __forceinline__ float bk_block_sum(float v, float *scratch) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
    v = bk_warp_sum(v);
    __syncthreads(); /* scratch may still be read by a previous call */
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    float r = lane < nw ? scratch[lane] : 0.0f;
    r = bk_warp_sum(r);
    return r;
}
__device__ __forceinline__ float bk_block_max(float v, float *scratch) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
    v = bk_warp_max(v);
    __syncthreads();
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    float r = lane < nw ? scratch[lane] : -INFINITY;
    r = bk_warp_max(r);
    return r;
}

/* Launch status without clearing sticky errors silently: the caller reports it. */
static inline cudaError_t bk_launch_status(void) { return cudaGetLastError(); }

/* Calls F<T>(args...) for the compute dtype dt. */
#define BK_DISPATCH_T(dt, CALL)                                                  \
    do {                                                                         \
        switch (dt) {                                                            \
        case BK_F32: { typedef float T; CALL; } break;                           \
        case BK_F16: { typedef __half T; CALL; } break;                          \
        case BK_BF16: { typedef __nv_bfloat16 T; CALL; } break;                  \
        default: return cudaErrorInvalidValue;                                   \
        }                                                                        \
    } while (0)

static inline unsigned bk_blocks(int64_t n, int threads, unsigned cap) {
    int64_t b = (n + threads - 1) / threads;
    if (b < 1) b = 1;
    if (b > (int64_t)cap) b = cap;
    return (unsigned)b;
}

#endif
