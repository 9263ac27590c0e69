/* The one CUDA runtime call sharding needs; compiled only in CUDA builds. */
#include <cuda_runtime_api.h>

#include "blurb/shard.h"

int blurb_cuda_device_count(void) {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        (void)cudaGetLastError(); /* a missing driver must not poison later CUDA calls */
        return 0;
    }
    return n;
}
