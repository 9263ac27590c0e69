/* The CUDA backend's decode op (host/cuda_sample.c, cuda_op_decode): the
 * draws of several steps fed back on the device, one synchronisation per
 * call. Against the same backend kind running forward + sample step by step
 * (decode_test_util.h), in bf16 and fp32: identical draws, logprobs,
 * histories (the host's, filled after the call) and last logits, for calls of
 * 1, 8 and 5 steps, CUDA graphs on; then with a presence penalty on one
 * sequence (the op hands such calls to the generic loop). Skips (77) without
 * a device. */
#include "cuda_test_util.h"
#include "decode_test_util.h"

int main(void) {
    cuda_test_require_device();
    blurb_model *m = cuda_test_default_model();
    const blurb_dtype dts[2] = {BLURB_DTYPE_BF16, BLURB_DTYPE_F32};
    const int steps[] = {1, 8, 5};
    for (int d = 0; d < 2; d++)
        for (int ext = 0; ext < 2; ext++) {
            blurb_backend *a = cuda_test_backend(m, dts[d], 8, true), *b = cuda_test_backend(m, dts[d], 8, true);
            CHECK(a->decode_steps > 1);
            int n = decode_parity(a, b, steps, 3, ext != 0);
            printf("%s%s: %d draws of decode equal to forward + sample\n", blurb_dtype_name(dts[d]),
                   ext ? " (presence penalty: host path)" : "", n);
            blurb_backend_free(a);
            blurb_backend_free(b);
        }
    blurb_model_free(m);
    return check_finish("cuda_decode");
}
