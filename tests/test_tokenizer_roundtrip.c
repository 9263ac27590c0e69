/* Round trip on 10,000 random valid UTF-8 strings (fixed seed): code points
 * from every plane, combining marks, emoji with ZWJ and variation selectors,
 * C0/C1 controls and NUL, runs of ASCII and Unicode whitespace, contractions,
 * digits and "<|endoftext|>". For each: encode succeeds, every id is in range,
 * 50256 never appears, decode gives back the exact bytes, and so does the
 * streaming detokenizer. */
#include <string.h>

#include "blurb/tokenizer.h"
#include "blurb/utf8.h"
#include "check.h"

static uint64_t rng = 0x2545F4914F6CDD1Dull;
static uint64_t next_rand(void) {
    rng ^= rng >> 12;
    rng ^= rng << 25;
    rng ^= rng >> 27;
    return rng * 2685821657736338717ull;
}
static uint32_t pick(uint32_t lo, uint32_t hi) { return lo + (uint32_t)(next_rand() % (hi - lo + 1)); }

static size_t put_utf8(char *o, uint32_t cp) {
    if (cp < 0x80) { o[0] = (char)cp; return 1; }
    if (cp < 0x800) { o[0] = (char)(0xC0 | cp >> 6); o[1] = (char)(0x80 | (cp & 0x3F)); return 2; }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | cp >> 12); o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F)); return 3;
    }
    o[0] = (char)(0xF0 | cp >> 18); o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3F)); o[3] = (char)(0x80 | (cp & 0x3F)); return 4;
}

static const uint32_t SPACES[] = {' ', '\t', '\n', '\r', 0x0B, 0x0C, 0x85, 0xA0, 0x1680, 0x180E, 0x2000, 0x2003,
                                  0x200A, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000, 0x200B, 0xFEFF};
static const char *const WORDS[] = {"'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "<|endoftext|>",
                                    " <|endoftext|>", "<|", "|>", "don't", "100%", "3.5mm", "₹1,299"};

/* Appends one random element to s (at most 64 bytes). */
static size_t random_element(char *s) {
    uint32_t kind = (uint32_t)(next_rand() % 14);
    uint32_t cp;
    switch (kind) {
    case 0: case 1: cp = pick(0x20, 0x7E); break;              /* ASCII */
    case 2: cp = pick(0, 0x1F); break;                         /* C0 controls and NUL */
    case 3: cp = pick(0x7F, 0xFF); break;                      /* DEL, C1, Latin-1 */
    case 4: {                                                  /* letter + combining marks */
        size_t n = put_utf8(s, pick('a', 'z'));
        for (uint32_t k = pick(1, 3); k > 0; k--)
            n += put_utf8(s + n, (next_rand() & 1) ? pick(0x300, 0x36F) : pick(0x20D0, 0x20F0));
        return n;
    }
    case 5: {                                                  /* emoji, skin tone, ZWJ, VS16 */
        size_t n = put_utf8(s, pick(0x1F300, 0x1FAFF));
        if (next_rand() & 1) n += put_utf8(s + n, pick(0x1F3FB, 0x1F3FF));
        if (next_rand() & 1) {
            n += put_utf8(s + n, 0x200D);
            n += put_utf8(s + n, pick(0x1F466, 0x1F469));
        }
        if (next_rand() & 1) n += put_utf8(s + n, 0xFE0F);
        return n;
    }
    case 6: {                                                  /* whitespace run */
        size_t n = 0;
        for (uint32_t k = pick(1, 6); k > 0; k--) n += put_utf8(s + n, SPACES[next_rand() % 20]);
        return n;
    }
    case 7: cp = pick(0x4E00, 0x9FFF); break;                  /* CJK */
    case 8: cp = pick(0x0400, 0x06FF); break;                  /* Cyrillic .. Arabic */
    case 9: {                                                  /* any plane, no surrogates */
        do cp = pick(0, 0x10FFFF); while (cp >= 0xD800 && cp <= 0xDFFF);
        break;
    }
    case 10: cp = pick(0x10000, 0x3FFFF); break;               /* supplementary planes 1-3 */
    case 11: cp = (next_rand() & 1) ? pick(0xE0000, 0xE01EF) : pick(0xF0000, 0x10FFFF); break; /* 14-16 */
    case 12: cp = pick('0', '9'); break;
    default: {
        const char *w = WORDS[next_rand() % (sizeof WORDS / sizeof *WORDS)];
        memcpy(s, w, strlen(w));
        return strlen(w);
    }
    }
    return put_utf8(s, cp);
}

int main(void) {
    blurb_err err = {0};
    blurb_tokenizer *tok = NULL;
    REQUIRE(blurb_tokenizer_load(NULL, 50257, &tok, &err) == 0);
    blurb_detok *d = blurb_detok_new(tok);
    REQUIRE(d);
    char text[64 * 200];
    size_t total_bytes = 0, total_ids = 0, ok_all = 0;
    for (int t = 0; t < 10000; t++) {
        size_t len = 0;
        for (uint32_t k = pick(0, 199); k > 0; k--) len += random_element(text + len);
        REQUIRE(blurb_utf8_valid(text, len, NULL));
        total_bytes += len;

        int32_t *ids = NULL;
        size_t n = 0;
        int rc = blurb_tokenizer_encode(tok, text, len, false, &ids, &n, &err);
        CHECKF(rc == 0, "string %d: %s", t, err.msg);
        if (rc) continue;
        total_ids += n;
        bool in_range = true, no_eot = true;
        for (size_t i = 0; i < n; i++) {
            in_range &= ids[i] >= 0 && ids[i] < 50257;
            no_eot &= ids[i] != 50256;
        }
        CHECKF(in_range && no_eot, "string %d: id out of range or 50256", t);

        char *out = NULL;
        size_t out_len = 0;
        rc = blurb_tokenizer_decode(tok, ids, n, &out, &out_len, &err);
        bool same = rc == 0 && out_len == len && memcmp(out, text, len) == 0;
        CHECKF(same, "string %d: decode differs", t);
        free(out);

        char *buf = NULL;
        size_t blen = 0, cap = 0;
        blurb_detok_reset(d);
        for (size_t i = 0; i < n; i++) rc |= blurb_detok_push(d, ids[i], &buf, &blen, &cap, &err);
        rc |= blurb_detok_flush(d, &buf, &blen, &cap, &err);
        bool stream_same = rc == 0 && blen == len && (len == 0 || memcmp(buf, text, len) == 0);
        CHECKF(stream_same, "string %d: stream differs", t);
        free(buf);
        free(ids);
        ok_all += same && stream_same && in_range && no_eot;
    }
    printf("roundtrip: %zu of 10000 strings exact (%zu bytes, %zu ids)\n", ok_all, total_bytes, total_ids);
    CHECK(ok_all == 10000);
    blurb_detok_free(d);
    blurb_tokenizer_free(tok);
    return check_finish("tokenizer_roundtrip");
}
