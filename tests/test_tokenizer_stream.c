/* Streaming detokenizer: ids pushed one at a time release only complete
 * characters, the pieces joined equal the whole decode, bytes that can never
 * be UTF-8 come out as U+FFFD (Python errors="replace" counts), and flushing
 * drops a character the sequence never finished. */
#include <string.h>

#include "blurb/tokenizer.h"
#include "blurb/utf8.h"
#include "check.h"

#define FFFD "\xEF\xBF\xBD"

static blurb_tokenizer *tok;
static int32_t byte_ids[256];

/* Pushes ids, checking every released piece is valid UTF-8 on its own;
 * returns the joined text (malloc'ed) and its length, flushed at the end. */
static char *stream(blurb_detok *d, const int32_t *ids, size_t n, size_t *out_len, size_t *empty_pushes) {
    blurb_err err = {0};
    char *buf = NULL;
    size_t len = 0, cap = 0;
    if (empty_pushes) *empty_pushes = 0;
    for (size_t i = 0; i < n; i++) {
        size_t before = len;
        REQUIRE(blurb_detok_push(d, ids[i], &buf, &len, &cap, &err) == 0);
        CHECKF(blurb_utf8_valid(buf + before, len - before, NULL), "piece %zu is not valid UTF-8", i);
        CHECK(buf[len] == '\0');
        if (empty_pushes && len == before) (*empty_pushes)++;
    }
    REQUIRE(blurb_detok_flush(d, &buf, &len, &cap, &err) == 0);
    *out_len = len;
    return buf;
}

static char *decode(const int32_t *ids, size_t n, size_t *len) {
    blurb_err err = {0};
    char *out = NULL;
    REQUIRE(blurb_tokenizer_decode(tok, ids, n, &out, len, &err) == 0);
    return out;
}

static bool stream_is(blurb_detok *d, const char *raw, size_t n, const char *want) {
    int32_t ids[16];
    for (size_t i = 0; i < n; i++) ids[i] = byte_ids[(unsigned char)raw[i]];
    size_t len;
    blurb_detok_reset(d);
    char *s = stream(d, ids, n, &len, NULL);
    bool ok = len == strlen(want) && memcmp(s, want, len) == 0;
    free(s);
    return ok;
}

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static uint64_t next_rand(void) {
    rng ^= rng >> 12;
    rng ^= rng << 25;
    rng ^= rng >> 27;
    return rng * 2685821657736338717ull;
}

int main(void) {
    blurb_err err = {0};
    REQUIRE(blurb_tokenizer_load(NULL, 50257, &tok, &err) == 0);
    for (int32_t id = 0; id < blurb_tokenizer_vocab_size(tok); id++) {
        size_t len;
        const char *s = blurb_tokenizer_token_bytes(tok, id, &len);
        if (len == 1) byte_ids[(unsigned char)s[0]] = id;
    }
    blurb_detok *d = blurb_detok_new(tok);
    REQUIRE(d);

    /* The text: “, ”, 👋 and each CJK character are split across tokens. */
    static const char text[] = "\xE2\x80\x9Cquoted\xE2\x80\x9D \xF0\x9F\x91\x8B \xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E";
    int32_t *ids = NULL;
    size_t n_ids = 0, len = 0, empty = 0, dlen = 0;
    REQUIRE(blurb_tokenizer_encode(tok, text, sizeof text - 1, false, &ids, &n_ids, &err) == 0);
    REQUIRE(n_ids == 15);
    char *s = stream(d, ids, n_ids, &len, &empty);
    char *full = decode(ids, n_ids, &dlen);
    CHECK(len == sizeof text - 1 && memcmp(s, text, len) == 0);
    CHECK(dlen == len && memcmp(full, s, len) == 0);
    /* Token bytes: 447 E2 80 | 250 9C | 421 "qu" | 5191 "oted" | 447 E2 80 | 251 9D |
     * 50169 20 F0 9F 91 | 233 8B | 10545 20 E6 | 245 97 | 98 A5 | 17312 E6 9C | 105 AC |
     * 45739 E8 AA | 252 9E: the pushes of 447, 447, 245, 17312 and 45739 complete no character. */
    CHECKF(empty == 5, "%zu pushes released nothing", empty);
    free(s);
    free(full);
    free(ids);

    /* Byte sequences that are not UTF-8. */
    CHECK(stream_is(d, "\xE0\x80" "A", 3, FFFD FFFD "A"));
    CHECK(stream_is(d, "\xED\xA0\x80", 3, FFFD FFFD FFFD));
    CHECK(stream_is(d, "\xF0\x9F\x98" "A", 4, FFFD "A"));
    CHECK(stream_is(d, "\xFF" "b\x80", 3, FFFD "b" FFFD));
    CHECK(stream_is(d, "a\xF1\x80\x80\xE1\x80\xC2" "b", 8, "a" FFFD FFFD FFFD "b"));
    /* An unfinished character at the end is dropped, not replaced. */
    CHECK(stream_is(d, "ok\xE6\x97", 4, "ok"));
    CHECK(stream_is(d, "\xF0\x9F\x91", 3, ""));

    /* Reset forgets pending bytes. */
    {
        char *buf = NULL;
        size_t blen = 0, cap = 0;
        REQUIRE(blurb_detok_push(d, byte_ids[0xE6], &buf, &blen, &cap, &err) == 0);
        CHECK(blen == 0 && buf && buf[0] == '\0');
        blurb_detok_reset(d);
        REQUIRE(blurb_detok_push(d, byte_ids['A'], &buf, &blen, &cap, &err) == 0);
        CHECK(blen == 1 && buf[0] == 'A');
        CHECK(blurb_detok_push(d, 50257, &buf, &blen, &cap, &err) == BLURB_E_INVALID);
        CHECK(blurb_detok_push(d, -1, &buf, &blen, &cap, &err) == BLURB_E_INVALID);
        CHECK(blen == 1);
        free(buf);
    }

    /* Random id sequences, half of the ids raw bytes >= 0x80 (partial and
     * invalid sequences): each stream equals the whole decode, except that
     * decode replaces an unfinished last character by one U+FFFD. */
    size_t n_equal = 0, n_dropped = 0;
    for (int t = 0; t < 3000; t++) {
        int32_t seq[40];
        size_t n = 1 + next_rand() % 40;
        for (size_t i = 0; i < n; i++) {
            uint64_t r = next_rand();
            seq[i] = (r & 1) ? byte_ids[0x80 + (r >> 8) % 128] : (int32_t)((r >> 8) % 50257);
        }
        blurb_detok_reset(d);
        s = stream(d, seq, n, &len, NULL);
        full = decode(seq, n, &dlen);
        CHECK(blurb_utf8_valid(full, dlen, NULL));
        if (dlen == len && memcmp(s, full, len) == 0) {
            n_equal++;
        } else {
            bool dropped = dlen == len + 3 && memcmp(s, full, len) == 0 && memcmp(full + len, FFFD, 3) == 0;
            CHECKF(dropped, "random sequence %d: stream and decode differ", t);
            n_dropped++;
        }
        free(s);
        free(full);
    }
    printf("random streams: %zu equal to decode, %zu with an unfinished last character\n", n_equal, n_dropped);
    CHECK(n_equal > 0 && n_dropped > 0);

    blurb_detok_free(d);
    blurb_tokenizer_free(tok);
    return check_finish("tokenizer_stream");
}
