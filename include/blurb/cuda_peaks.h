/* CUDA device figures for `blurb bench`: the measured memory bandwidth and
 * bf16 GEMM peak that bound the roofline (include/blurb/roofline.h), the
 * device's name and driver, and the device memory in use.
 *
 * Implemented in host/cuda_peaks.c (CUDA builds); in builds without CUDA every
 * function returns BLURB_E_UNSUPPORTED. None of them prints or exits. */
#ifndef BLURB_CUDA_PEAKS_H
#define BLURB_CUDA_PEAKS_H

#include <stdint.h>

#include "blurb/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Measures, on CUDA device `device` (made current), what the device achieves:
 *   bytes_per_s: a 1 GiB device-to-device cudaMemcpy (less when memory is
 *     short), 2 bytes moved per byte copied (read + write), best of 10 timed
 *     copies after 2 untimed ones;
 *   flops_per_s: an 8192 x 8192 x 8192 bf16 cuBLAS GEMM with fp32 accumulation
 *     (cublasGemmEx, CUBLAS_COMPUTE_32F), 2 m n k FLOPs each, best of 10 timed
 *     after 3 untimed, on pseudo-random bf16 inputs in [-1, 1) (zeros run faster
 *     and would overstate the peak). F16 has the same tensor-core rate on
 *     Hopper, so the figure serves both.
 * Timing with CUDA events; everything allocated is freed before returning.
 * Takes about a second. Returns 0, or BLURB_E_DEVICE (no such device, a CUDA
 * or cuBLAS call failed; the message names the call), BLURB_E_NOMEM,
 * BLURB_E_UNSUPPORTED (no CUDA in this build). */
int blurb_cuda_measure_peaks(int device, double *bytes_per_s, double *flops_per_s, blurb_err *err);

typedef struct blurb_cuda_device_info {
    char name[256];          /* e.g. "NVIDIA H200" */
    int cc_major, cc_minor;  /* compute capability */
    int driver_version;      /* CUDA driver API version, e.g. 13000 for 13.0 */
    int runtime_version;     /* CUDA runtime version blurb was built with */
    int64_t total_mem;       /* bytes of device memory */
} blurb_cuda_device_info;

/* Fills info for device. Returns 0, BLURB_E_DEVICE or BLURB_E_UNSUPPORTED. */
int blurb_cuda_device_query(int device, blurb_cuda_device_info *info, blurb_err *err);

/* Device memory in use now, in bytes: total minus free (cudaMemGetInfo), so it
 * counts this process's CUDA context and allocations and any other process on
 * the device. Returns 0, BLURB_E_DEVICE or BLURB_E_UNSUPPORTED. */
int blurb_cuda_mem_used(int device, int64_t *used_bytes, blurb_err *err);

#ifdef __cplusplus
}
#endif
#endif
