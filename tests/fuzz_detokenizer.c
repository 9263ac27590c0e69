/* libFuzzer target for the decoder and the streaming detokenizer. Input: one
 * mode byte, then either 16-bit little-endian ids (mode bit 0 clear; some out
 * of range on purpose) or raw bytes, each pushed as its one-byte token (mode
 * bit 0 set: every UTF-8 error shape). Properties: every released piece is
 * valid UTF-8, out-of-range ids are refused without output, decode is valid
 * UTF-8, and the joined stream equals decode, except that decode ends with one
 * U+FFFD where the stream dropped an unfinished last character.
 * Build as in fuzz_tokenizer_encode.c, target fuzz_detokenizer. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "blurb/tokenizer.h"
#include "blurb/utf8.h"

static blurb_tokenizer *tok;
static int32_t byte_ids[256];

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    blurb_err err = {0};
    if (blurb_tokenizer_load(NULL, 50257, &tok, &err) != 0) abort();
    for (int32_t id = 0; id < blurb_tokenizer_vocab_size(tok); id++) {
        size_t len;
        const char *s = blurb_tokenizer_token_bytes(tok, id, &len);
        if (len == 1) byte_ids[(unsigned char)s[0]] = id;
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0) return 0;
    bool raw = data[0] & 1;
    data++;
    size--;
    size_t n = raw ? size : size / 2;
    int32_t *ids = malloc((n ? n : 1) * sizeof *ids);
    if (!ids) return 0;
    int vocab = blurb_tokenizer_vocab_size(tok);
    for (size_t i = 0; i < n; i++)
        ids[i] = raw ? byte_ids[data[i]] : (int32_t)(data[2 * i] | data[2 * i + 1] << 8) - 8;

    blurb_err err = {0};
    blurb_detok *d = blurb_detok_new(tok);
    if (!d) abort();
    char *buf = NULL;
    size_t blen = 0, cap = 0, kept = 0;
    for (size_t i = 0; i < n; i++) {
        size_t before = blen;
        int rc = blurb_detok_push(d, ids[i], &buf, &blen, &cap, &err);
        if (ids[i] < 0 || ids[i] >= vocab) {
            if (rc != BLURB_E_INVALID || blen != before) abort();
            continue;
        }
        if (rc != 0) abort();
        if (!blurb_utf8_valid(buf + before, blen - before, NULL)) abort();
        ids[kept++] = ids[i];
    }
    if (blurb_detok_flush(d, &buf, &blen, &cap, &err) != 0) abort();
    blurb_detok_free(d);

    char *out = NULL;
    size_t out_len = 0;
    if (blurb_tokenizer_decode(tok, ids, kept, &out, &out_len, &err) != 0) abort();
    if (!blurb_utf8_valid(out, out_len, NULL) || out[out_len] != '\0') abort();
    bool same = out_len == blen && memcmp(out, buf ? buf : "", blen) == 0;
    bool dropped = out_len == blen + 3 && memcmp(out, buf ? buf : "", blen) == 0 &&
                   memcmp(out + blen, "\xEF\xBF\xBD", 3) == 0;
    if (!same && !dropped) abort();
    free(out);
    free(buf);
    free(ids);
    return 0;
}
