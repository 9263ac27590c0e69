/* The CUDA device figures of include/blurb/cuda_peaks.h on a real device:
 * the query fills the name and memory, the peak measurement returns positive
 * finite rates and frees what it allocated, and bad arguments fail cleanly.
 * The rates themselves are not asserted (no timing assertions in tests):
 * bench/README.md is where they are reported. Skipped without CUDA or a device. */
#include <math.h>
#include <string.h>

#include "blurb/backend.h"
#include "blurb/cuda_peaks.h"
#include "check.h"

int main(void) {
#ifndef BLURB_HAVE_CUDA
    SKIP("built without CUDA");
#else
    if (!blurb_cuda_available()) SKIP("no CUDA device");
    blurb_err err = {0};

    blurb_cuda_device_info info;
    REQUIRE(blurb_cuda_device_query(0, &info, &err) == 0);
    CHECK(info.name[0] != '\0');
    CHECK(info.total_mem > 0);
    CHECK(info.cc_major >= 5);
    CHECK(info.driver_version > 0 && info.runtime_version > 0);
    printf("device 0: %s, sm_%d%d, %.1f GiB, driver API %d, runtime %d\n", info.name, info.cc_major,
           info.cc_minor, (double)info.total_mem / (1024.0 * 1024 * 1024), info.driver_version,
           info.runtime_version);

    int64_t before = 0, after = 0;
    REQUIRE(blurb_cuda_mem_used(0, &before, &err) == 0);
    CHECK(before > 0 && before <= info.total_mem);

    double bw = 0.0, fl = 0.0;
    int rc = blurb_cuda_measure_peaks(0, &bw, &fl, &err);
    CHECKF(rc == 0, "%s", err.msg);
    CHECK(isfinite(bw) && bw > 0.0);
    CHECK(isfinite(fl) && fl > 0.0);
    printf("measured: %.0f GB/s device-to-device copy, %.1f TFLOP/s bf16 GEMM\n", bw / 1e9, fl / 1e12);

    /* The copy buffers alone are 2 GiB (or a quarter of free memory each):
     * what stays allocated afterwards is at most the cuBLAS modules loaded
     * into the context. */
    REQUIRE(blurb_cuda_mem_used(0, &after, &err) == 0);
    CHECKF(after - before < ((int64_t)256 << 20), "device memory in use grew by %lld bytes",
           (long long)(after - before));

    /* Bad arguments: no such device, NULL outputs. */
    CHECK(blurb_cuda_device_query(1 << 20, &info, &err) == BLURB_E_DEVICE);
    CHECKF(strstr(err.msg, "does not exist") != NULL, "%s", err.msg);
    CHECK(blurb_cuda_measure_peaks(-1, &bw, &fl, &err) == BLURB_E_DEVICE);
    CHECK(blurb_cuda_measure_peaks(0, NULL, &fl, &err) == BLURB_E_INVALID);
    CHECK(blurb_cuda_mem_used(0, NULL, &err) == BLURB_E_INVALID);
    CHECK(blurb_cuda_device_query(0, NULL, &err) == BLURB_E_INVALID);
    return check_finish("cuda_peaks");
#endif
}
