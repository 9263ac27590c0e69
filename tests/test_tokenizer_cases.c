/* Exact tokenizer cases: the ids below come from the reference (HF tokenizers
 * with GPT-2's encoder.json/vocab.bpe; the first five are also the issue's),
 * the U+FFFD outputs from Python 3.11 bytes.decode("utf-8", errors="replace"). */
#include <string.h>

#include "blurb/tokenizer.h"
#include "blurb/utf8.h"
#include "check.h"

static blurb_tokenizer *tok;

static bool encode_is(const char *text, size_t len, bool special, const int32_t *want, size_t n_want) {
    blurb_err err = {0};
    int32_t *ids = NULL;
    size_t n = 0;
    int rc = blurb_tokenizer_encode(tok, text, len, special, &ids, &n, &err);
    bool ok = rc == 0 && n == n_want && (n == 0 || memcmp(ids, want, n * sizeof *ids) == 0);
    if (!ok) {
        fprintf(stderr, "encode(%s): rc %d (%s), got", text, rc, err.msg);
        for (size_t i = 0; i < n; i++) fprintf(stderr, " %d", (int)ids[i]);
        fputc('\n', stderr);
    }
    free(ids);
    return ok;
}

#define ENC(text, special, ...)                                                                  \
    do {                                                                                         \
        static const int32_t want_[] = {__VA_ARGS__};                                            \
        CHECK(encode_is(text, sizeof(text) - 1, special, want_, sizeof want_ / sizeof *want_)); \
    } while (0)

/* Id of the one-byte token for byte b (found through the public API). */
static int32_t byte_token(unsigned b) {
    for (int32_t id = 0; id < blurb_tokenizer_vocab_size(tok); id++) {
        size_t len;
        const char *s = blurb_tokenizer_token_bytes(tok, id, &len);
        if (len == 1 && (unsigned char)s[0] == b) return id;
    }
    return -1;
}

/* Decodes the one-byte tokens of raw[0..n) and compares with want. */
static bool decode_bytes_is(const char *raw, size_t n, const char *want) {
    int32_t ids[32];
    for (size_t i = 0; i < n; i++) ids[i] = byte_token((unsigned char)raw[i]);
    blurb_err err = {0};
    char *out = NULL;
    size_t len = 0;
    int rc = blurb_tokenizer_decode(tok, ids, n, &out, &len, &err);
    bool ok = rc == 0 && len == strlen(want) && memcmp(out, want, len) == 0 && out[len] == '\0' &&
              blurb_utf8_valid(out, len, NULL);
    if (!ok) fprintf(stderr, "decode of %zu raw bytes: rc %d, got %zu bytes\n", n, rc, len);
    free(out);
    return ok;
}

#define FFFD "\xEF\xBF\xBD"
#define DEC(raw, want) CHECK(decode_bytes_is(raw, sizeof(raw) - 1, want))

int main(void) {
    blurb_err err = {0};
    REQUIRE(blurb_tokenizer_load(NULL, 50257, &tok, &err) == 0);
    CHECK(blurb_tokenizer_vocab_size(tok) == 50257);
    CHECK(blurb_tokenizer_eot_id(tok) == 50256);

    /* The cases. */
    ENC("This is good.\n\n", false, 1212, 318, 922, 13, 628);
    ENC("This is good.\n\nBut in a way.", false, 1212, 318, 922, 13, 198, 198, 1537, 287, 257, 835, 13);
    ENC("y is ?", false, 88, 318, 5633);
    ENC(" ?", false, 5633);
    ENC("Hello world", false, 15496, 995);
    ENC("\xE2\x80\x9Cquoted\xE2\x80\x9D \xF0\x9F\x91\x8B \xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E", false, 447, 250, 421,
        5191, 447, 251, 50169, 233, 10545, 245, 98, 17312, 105, 45739, 252);

    /* NUL is an ordinary character (byte 0 -> U+0100 "Ā", id 188). */
    ENC("\0", false, 188);
    {
        int32_t *ids = (int32_t *)1;
        size_t n = 7;
        CHECK(blurb_tokenizer_encode(tok, "", 0, false, &ids, &n, &err) == 0 && n == 0);
        free(ids);
    }

    /* Special tokens: text never yields 50256 unless the caller allows it. */
    ENC("a <|endoftext|> b", false, 64, 1279, 91, 437, 1659, 5239, 91, 29, 275);
    ENC("<|endoftext|>", false, 27, 91, 437, 1659, 5239, 91, 29);
    ENC("<|endoftext|><|endoftext|>x", false, 27, 91, 437, 1659, 5239, 91, 6927, 91, 437, 1659, 5239, 91, 29, 87);
    ENC("a <|endoftext|> b", true, 64, 220, 50256, 275);
    ENC("<|endoftext|>", true, 50256);
    ENC("<|endoftext|><|endoftext|>x", true, 50256, 50256, 87);
    ENC("x<|endoftext|>", true, 87, 50256);
    ENC(" <|endoftext|>\n", true, 220, 50256, 198);
    ENC("<|endoftext|", true, 27, 91, 437, 1659, 5239, 91);

    /* Invalid UTF-8 is an error naming the byte offset, never ids. */
    static const struct { const char *s; size_t len, offset; } bad[] = {
        {"\x80", 1, 0},                  /* lone continuation byte */
        {"ab\xC0\x80", 4, 2},            /* overlong NUL */
        {"x\xED\xA0\x80", 4, 1},         /* UTF-16 surrogate */
        {"\xF4\x90\x80\x80", 4, 0},      /* above U+10FFFF */
        {"abc\xFF", 4, 3},
        {"\xE6\x97", 2, 0},              /* truncated at the end */
        {"\xE6\x97" "a", 3, 0},          /* truncated in the middle */
        {"ok\xF8\x88\x80\x80\x80", 7, 2}, /* 5-byte form */
        {"\xC3\x28", 2, 0},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        int32_t *ids = (int32_t *)1;
        size_t n = 99;
        char want[64];
        snprintf(want, sizeof want, "byte offset %zu", bad[i].offset);
        int rc = blurb_tokenizer_encode(tok, bad[i].s, bad[i].len, false, &ids, &n, &err);
        CHECKF(rc == BLURB_E_INVALID && ids == NULL && n == 0 && strstr(err.msg, want), "bad case %zu: %s", i,
               err.msg);
    }

    /* Token bytes and ranges. */
    size_t len = 99;
    const char *b = blurb_tokenizer_token_bytes(tok, 50256, &len);
    CHECK(b && len == 13 && memcmp(b, "<|endoftext|>", 13) == 0);
    b = blurb_tokenizer_token_bytes(tok, 220, &len);
    CHECK(b && len == 1 && b[0] == ' ');
    b = blurb_tokenizer_token_bytes(tok, 188, &len);
    CHECK(b && len == 1 && b[0] == '\0');
    CHECK(blurb_tokenizer_token_bytes(tok, -1, &len) == NULL);
    CHECK(blurb_tokenizer_token_bytes(tok, 50257, &len) == NULL);
    {
        int32_t ids[] = {15496, 50257};
        char *out = (char *)1;
        size_t n = 5;
        CHECK(blurb_tokenizer_decode(tok, ids, 2, &out, &n, &err) == BLURB_E_INVALID && out == NULL);
        CHECK(strstr(err.msg, "50257") != NULL);
        int32_t neg[] = {-5};
        CHECK(blurb_tokenizer_decode(tok, neg, 1, &out, &n, &err) == BLURB_E_INVALID);
        CHECK(blurb_tokenizer_decode(tok, NULL, 0, &out, &n, &err) == 0 && n == 0 && out && out[0] == '\0');
        free(out);
    }

    /* Decoding bytes that are not UTF-8: one U+FFFD per maximal invalid subpart. */
    DEC("\xE6\x97", FFFD);
    DEC("\xE0\x80", FFFD FFFD);
    DEC("\xED\xA0\x80", FFFD FFFD FFFD);
    DEC("\xF0\x9F\x98", FFFD);
    DEC("\xF0\x9F\x98" "A", FFFD "A");
    DEC("\xC3(", FFFD "(");
    DEC("\x80\x80", FFFD FFFD);
    DEC("\xF5", FFFD);
    DEC("\xFF\xFE", FFFD FFFD);
    DEC("a\xF1\x80\x80\xE1\x80\xC2" "b\x80" "c\x80\xBF" "d", "a" FFFD FFFD FFFD "b" FFFD "c" FFFD FFFD "d");
    DEC("\xF4\x90\x80\x80", FFFD FFFD FFFD FFFD);
    DEC("\xC0\xAF", FFFD FFFD);
    DEC("\xE0\xA0", FFFD);
    DEC("\xF0\x90\x80", FFFD);
    DEC("\xE6\x97\xA5\xE6", "\xE6\x97\xA5" FFFD);
    DEC("\xE6\x97\xA5", "\xE6\x97\xA5");

    blurb_tokenizer_free(tok);
    return check_finish("tokenizer_cases");
}
