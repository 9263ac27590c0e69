/* libFuzzer target for blurb_tokenizer_encode. Input: one flag byte (bit 0:
 * allow special tokens), then the text. Properties checked on every input:
 * invalid UTF-8 is refused with BLURB_E_INVALID and no ids; valid UTF-8
 * encodes, every id is in range, 50256 appears only when allowed, and both the
 * decoder and the streaming detokenizer give back the exact bytes.
 *
 * Build (coverage in libblurb too, not only in this file):
 *   CC=clang cmake -S . -B build-fuzz -DBLURB_FUZZ=ON -DBLURB_CUDA=OFF \
 *     -DCMAKE_C_FLAGS="-fsanitize=fuzzer-no-link,address,undefined"
 *   cmake --build build-fuzz --target fuzz_tokenizer_encode
 *   build-fuzz/tests/fuzz_tokenizer_encode -max_len=4096 CORPUS_DIR */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "blurb/tokenizer.h"
#include "blurb/utf8.h"

static blurb_tokenizer *tok;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    blurb_err err = {0};
    if (blurb_tokenizer_load(NULL, 50257, &tok, &err) != 0) abort();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0) return 0;
    bool special = data[0] & 1;
    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    blurb_err err = {0};
    int32_t *ids = NULL;
    size_t n = 0;
    int rc = blurb_tokenizer_encode(tok, text, len, special, &ids, &n, &err);
    if (!blurb_utf8_valid(text, len, NULL)) {
        if (rc != BLURB_E_INVALID || ids != NULL || n != 0) abort();
        return 0;
    }
    if (rc != 0) abort();
    int eot = blurb_tokenizer_eot_id(tok);
    for (size_t i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= blurb_tokenizer_vocab_size(tok)) abort();
        if (ids[i] == eot && !special) abort();
    }
    char *out = NULL;
    size_t out_len = 0;
    if (blurb_tokenizer_decode(tok, ids, n, &out, &out_len, &err) != 0) abort();
    if (out_len != len || memcmp(out, text, len) != 0) abort();
    free(out);

    blurb_detok *d = blurb_detok_new(tok);
    if (!d) abort();
    char *buf = NULL;
    size_t blen = 0, cap = 0;
    for (size_t i = 0; i < n; i++) {
        size_t before = blen;
        if (blurb_detok_push(d, ids[i], &buf, &blen, &cap, &err) != 0) abort();
        if (!blurb_utf8_valid(buf + before, blen - before, NULL)) abort();
    }
    if (blurb_detok_flush(d, &buf, &blen, &cap, &err) != 0) abort();
    if (blen != len || (len && memcmp(buf, text, len) != 0)) abort();
    free(buf);
    blurb_detok_free(d);
    free(ids);
    return 0;
}
