/* Weight upload: converts a tensor from the file dtype to the compute dtype,
 * optionally transposing it (HF Conv1D stores W as [in, out]; cuBLASLt is
 * fastest with the [out, in] layout used as a transposed A operand). */
#include "common.cuh"

__global__ void bk_convert_flat(const void *src, int sdt, void *dst, int ddt, int64_t n) {
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x)
        bk_store_any(dst, ddt, i, bk_load_any(src, sdt, i));
}

/* 32x32 tiles through shared memory so that both the read and the write are
 * coalesced; the +1 column avoids shared-memory bank conflicts. */
__global__ void bk_convert_transpose(const void *src, int sdt, void *dst, int ddt,
                                     int64_t rows, int64_t cols) {
    __shared__ float tile[32][33];
    const int64_t c0 = (int64_t)blockIdx.x * 32, r0 = (int64_t)blockIdx.y * 32;
    for (int k = threadIdx.y; k < 32; k += blockDim.y) {
        int64_t r = r0 + k, c = c0 + threadIdx.x;
        if (r < rows && c < cols) tile[k][threadIdx.x] = bk_load_any(src, sdt, r * cols + c);
    }
    __syncthreads();
    for (int k = threadIdx.y; k < 32; k += blockDim.y) {
        int64_t c = c0 + k, r = r0 + threadIdx.x;
        if (r < rows && c < cols) bk_store_any(dst, ddt, c * rows + r, tile[threadIdx.x][k]);
    }
}

extern "C" cudaError_t blurb_k_convert(const void *src, int src_dt, void *dst, int dst_dt,
                                       int64_t rows, int64_t cols, int transpose,
                                       cudaStream_t stream) {
    if (rows <= 0 || cols <= 0) return cudaSuccess;
    if (!transpose) {
        bk_convert_flat<<<bk_blocks(rows * cols, 256, 65535), 256, 0, stream>>>(src, src_dt, dst,
                                                                                 dst_dt, rows * cols);
    } else {
        if ((cols + 31) / 32 > 0x7fffffff || (rows + 31) / 32 > 65535) return cudaErrorInvalidValue;
        dim3 grid((unsigned)((cols + 31) / 32), (unsigned)((rows + 31) / 32));
        bk_convert_transpose<<<grid, dim3(32, 8), 0, stream>>>(src, src_dt, dst, dst_dt, rows, cols);
    }
    return bk_launch_status();
}
