/* libFuzzer target (-DBLURB_FUZZ=ON, clang): any byte string given to the
 * safetensors parser is either accepted with every tensor inside the buffer or
 * rejected with an error; it never reads out of bounds. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "blurb/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    blurb_st_file *f = NULL;
    blurb_err err;
    if (blurb_st_parse("fuzz", data, size, &f, &err) == 0) {
        for (int i = 0; i < f->n_tensors; i++) {
            const blurb_st_tensor *t = &f->tensors[i];
            if (t->offset + t->nbytes > f->data_len) abort();
            volatile uint8_t sink = 0;
            for (uint64_t b = 0; b < t->nbytes; b++) sink ^= ((const uint8_t *)t->data)[b];
            (void)sink;
        }
        blurb_st_close(f);
    }
    return 0;
}
