/* Measured device bandwidth and bf16 GEMM peak, device name and memory in use
 * (include/blurb/cuda_peaks.h). CUDA builds only; host/roofline.c has the stubs. */
#include "blurb/cuda_peaks.h"

#include <stdlib.h>
#include <string.h>

#include <cublas_v2.h>
#include <cuda_runtime.h>

#define COPY_BYTES ((size_t)1 << 30)
#define COPY_WARMUP 2
#define COPY_TIMED 10
#define GEMM_N 8192
#define GEMM_WARMUP 3
#define GEMM_TIMED 10

#define CUDA_TRY(call)                                                                                     \
    do {                                                                                                   \
        cudaError_t e_ = (call);                                                                           \
        if (e_ != cudaSuccess) {                                                                           \
            rc = blurb_seterr(err, e_ == cudaErrorMemoryAllocation ? BLURB_E_NOMEM : BLURB_E_DEVICE,      \
                              "device %d: %s failed: %s", device, #call, cudaGetErrorString(e_));          \
            goto done;                                                                                     \
        }                                                                                                  \
    } while (0)

#define CUBLAS_TRY(call)                                                                                   \
    do {                                                                                                   \
        cublasStatus_t s_ = (call);                                                                        \
        if (s_ != CUBLAS_STATUS_SUCCESS) {                                                                 \
            rc = blurb_seterr(err, s_ == CUBLAS_STATUS_ALLOC_FAILED ? BLURB_E_NOMEM : BLURB_E_DEVICE,     \
                              "device %d: %s failed: %s", device, #call, cublasGetStatusString(s_));       \
            goto done;                                                                                     \
        }                                                                                                  \
    } while (0)

static int select_device(int device, blurb_err *err) {
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess)
        return blurb_seterr(err, BLURB_E_DEVICE, "no CUDA device: cudaGetDeviceCount failed: %s",
                            cudaGetErrorString(e));
    if (device < 0 || device >= n)
        return blurb_seterr(err, BLURB_E_DEVICE, "CUDA device %d does not exist (%d visible)", device, n);
    e = cudaSetDevice(device);
    if (e != cudaSuccess)
        return blurb_seterr(err, BLURB_E_DEVICE, "device %d: cudaSetDevice failed: %s", device,
                            cudaGetErrorString(e));
    return 0;
}

/* Best (shortest) time of `timed` device-to-device copies of n bytes, seconds. */
static int time_copy(int device, size_t n, double *best_s, blurb_err *err) {
    int rc = 0;
    void *src = NULL, *dst = NULL;
    cudaEvent_t t0 = NULL, t1 = NULL;
    CUDA_TRY(cudaMalloc(&src, n));
    CUDA_TRY(cudaMalloc(&dst, n));
    CUDA_TRY(cudaMemset(src, 0x5a, n));
    CUDA_TRY(cudaEventCreate(&t0));
    CUDA_TRY(cudaEventCreate(&t1));
    for (int i = 0; i < COPY_WARMUP; i++) CUDA_TRY(cudaMemcpyAsync(dst, src, n, cudaMemcpyDeviceToDevice, 0));
    *best_s = 0.0;
    for (int i = 0; i < COPY_TIMED; i++) {
        CUDA_TRY(cudaEventRecord(t0, 0));
        CUDA_TRY(cudaMemcpyAsync(dst, src, n, cudaMemcpyDeviceToDevice, 0));
        CUDA_TRY(cudaEventRecord(t1, 0));
        CUDA_TRY(cudaEventSynchronize(t1));
        float ms = 0.0f;
        CUDA_TRY(cudaEventElapsedTime(&ms, t0, t1));
        double s = ms * 1e-3;
        if (s > 0.0 && (*best_s == 0.0 || s < *best_s)) *best_s = s;
    }
    if (!(*best_s > 0.0)) rc = blurb_seterr(err, BLURB_E_DEVICE, "device %d: copy timing gave zero", device);
done:
    /* Cleanup errors are ignored: the measurement (or its first error) stands. */
    if (t0) (void)cudaEventDestroy(t0);
    if (t1) (void)cudaEventDestroy(t1);
    if (src) (void)cudaFree(src);
    if (dst) (void)cudaFree(dst);
    return rc;
}

/* Pseudo-random bf16 values in [-1, 1): the top half of the float's bits
 * (bf16 is the upper 16 bits of an IEEE binary32). */
static void fill_bf16(uint16_t *h, size_t n, uint64_t seed) {
    uint64_t s = seed;
    for (size_t i = 0; i < n; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull; /* Knuth's MMIX LCG */
        float f = (float)((double)(s >> 40) * 0x1p-23 - 1.0);    /* 24 bits -> [-1, 1) */
        uint32_t u;
        memcpy(&u, &f, sizeof u);
        h[i] = (uint16_t)(u >> 16);
    }
}

/* Best time of `timed` GEMMs C = A . B, all GEMM_N x GEMM_N bf16, seconds. */
static int time_gemm(int device, double *best_s, blurb_err *err) {
    int rc = 0;
    const size_t n = GEMM_N, elems = n * n, bytes = elems * sizeof(uint16_t);
    uint16_t *host = NULL;
    void *a = NULL, *b = NULL, *c = NULL;
    cublasHandle_t handle = NULL;
    cudaEvent_t t0 = NULL, t1 = NULL;
    host = malloc(bytes);
    if (!host) return blurb_seterr(err, BLURB_E_NOMEM, "peaks: out of host memory for %zu bytes", bytes);
    CUDA_TRY(cudaMalloc(&a, bytes));
    CUDA_TRY(cudaMalloc(&b, bytes));
    CUDA_TRY(cudaMalloc(&c, bytes));
    fill_bf16(host, elems, 1);
    CUDA_TRY(cudaMemcpy(a, host, bytes, cudaMemcpyHostToDevice));
    fill_bf16(host, elems, 2);
    CUDA_TRY(cudaMemcpy(b, host, bytes, cudaMemcpyHostToDevice));
    CUBLAS_TRY(cublasCreate(&handle));
    CUDA_TRY(cudaEventCreate(&t0));
    CUDA_TRY(cudaEventCreate(&t1));
    const float alpha = 1.0f / GEMM_N, beta = 0.0f; /* keeps C in range */
    const int m = GEMM_N;
    *best_s = 0.0;
    for (int i = 0; i < GEMM_WARMUP + GEMM_TIMED; i++) {
        CUDA_TRY(cudaEventRecord(t0, 0));
        CUBLAS_TRY(cublasGemmEx(handle, CUBLAS_OP_N, CUBLAS_OP_N, m, m, m, &alpha, a, CUDA_R_16BF, m, b,
                                CUDA_R_16BF, m, &beta, c, CUDA_R_16BF, m, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
        CUDA_TRY(cudaEventRecord(t1, 0));
        CUDA_TRY(cudaEventSynchronize(t1));
        float ms = 0.0f;
        CUDA_TRY(cudaEventElapsedTime(&ms, t0, t1));
        double s = ms * 1e-3;
        if (i >= GEMM_WARMUP && s > 0.0 && (*best_s == 0.0 || s < *best_s)) *best_s = s;
    }
    if (!(*best_s > 0.0)) rc = blurb_seterr(err, BLURB_E_DEVICE, "device %d: GEMM timing gave zero", device);
done:
    if (t0) (void)cudaEventDestroy(t0);
    if (t1) (void)cudaEventDestroy(t1);
    if (handle) (void)cublasDestroy(handle);
    if (a) (void)cudaFree(a);
    if (b) (void)cudaFree(b);
    if (c) (void)cudaFree(c);
    free(host);
    return rc;
}

int blurb_cuda_measure_peaks(int device, double *bytes_per_s, double *flops_per_s, blurb_err *err) {
    if (!bytes_per_s || !flops_per_s)
        return blurb_seterr(err, BLURB_E_INVALID, "peaks: output pointers must not be NULL");
    *bytes_per_s = *flops_per_s = 0.0;
    int rc = select_device(device, err);
    if (rc < 0) return rc;

    size_t free_b = 0, total_b = 0;
    CUDA_TRY(cudaMemGetInfo(&free_b, &total_b));
    /* Two buffers must fit with room to spare; below 64 MiB each the copy no
     * longer measures the memory rather than the launch. */
    size_t n = COPY_BYTES;
    while (n > free_b / 4 && n > ((size_t)64 << 20)) n /= 2;
    double copy_s = 0.0, gemm_s = 0.0;
    rc = time_copy(device, n, &copy_s, err);
    if (rc < 0) return rc;
    rc = time_gemm(device, &gemm_s, err);
    if (rc < 0) return rc;
    *bytes_per_s = 2.0 * (double)n / copy_s;
    *flops_per_s = 2.0 * (double)GEMM_N * GEMM_N * GEMM_N / gemm_s;
done:
    return rc;
}

int blurb_cuda_device_query(int device, blurb_cuda_device_info *info, blurb_err *err) {
    if (!info) return blurb_seterr(err, BLURB_E_INVALID, "device query: info must not be NULL");
    memset(info, 0, sizeof *info);
    int rc = select_device(device, err);
    if (rc < 0) return rc;
    struct cudaDeviceProp prop;
    CUDA_TRY(cudaGetDeviceProperties(&prop, device));
    size_t len = strnlen(prop.name, sizeof prop.name);
    if (len >= sizeof info->name) len = sizeof info->name - 1;
    memcpy(info->name, prop.name, len);
    info->name[len] = '\0';
    info->cc_major = prop.major;
    info->cc_minor = prop.minor;
    info->total_mem = (int64_t)prop.totalGlobalMem;
    CUDA_TRY(cudaDriverGetVersion(&info->driver_version));
    CUDA_TRY(cudaRuntimeGetVersion(&info->runtime_version));
done:
    return rc;
}

int blurb_cuda_mem_used(int device, int64_t *used_bytes, blurb_err *err) {
    if (!used_bytes) return blurb_seterr(err, BLURB_E_INVALID, "memory query: used_bytes must not be NULL");
    *used_bytes = 0;
    int rc = select_device(device, err);
    if (rc < 0) return rc;
    size_t free_b = 0, total_b = 0;
    CUDA_TRY(cudaMemGetInfo(&free_b, &total_b));
    *used_bytes = (int64_t)(total_b - free_b);
done:
    return rc;
}
