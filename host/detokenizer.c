/* Ids -> text, whole or streamed. Token bytes need not be valid UTF-8 alone (a
 * character may span tokens, and a model may emit any id sequence), so every
 * output goes through one repair step: complete characters are copied, each
 * maximal invalid subpart becomes one U+FFFD. That is the Unicode Standard's
 * "best practice" (ch. 3, U+FFFD substitution of maximal subparts) that
 * Python's bytes.decode("utf-8", errors="replace") follows. */
#include "blurb/tokenizer.h"

#include <stdlib.h>
#include <string.h>

#include "tokenizer_internal.h"

static const char REPLACEMENT[3] = {(char)0xEF, (char)0xBF, (char)0xBD}; /* U+FFFD */

/* Growing output buffer (*buf, *len used, *cap allocated), kept NUL-terminated. */
static int buf_reserve(char **buf, size_t *len, size_t *cap, size_t more) {
    if (*len + more + 1 <= *cap && *buf) return 0;
    size_t want = *cap ? *cap : 64;
    while (want < *len + more + 1) want *= 2;
    char *nb = realloc(*buf, want);
    if (!nb) return BLURB_E_NOMEM;
    *buf = nb;
    *cap = want;
    return 0;
}

static int buf_append(char **buf, size_t *len, size_t *cap, const char *s, size_t n) {
    if (buf_reserve(buf, len, cap, n)) return BLURB_E_NOMEM;
    memcpy(*buf + *len, s, n);
    *len += n;
    (*buf)[*len] = '\0';
    return 0;
}

/* Appends the repaired form of s[0..n) to the buffer. When final is false an
 * incomplete character at the end that more bytes could still complete is left
 * unconsumed; *consumed receives the bytes used. Returns 0 or BLURB_E_NOMEM. */
static int repair_utf8(const unsigned char *s, size_t n, bool final, char **buf, size_t *len, size_t *cap,
                       size_t *consumed) {
    size_t i = 0;
    int rc = 0;
    while (i < n && !rc) {
        if (s[i] < 0x80) {
            size_t j = i + 1;
            while (j < n && s[j] < 0x80) j++;
            rc = buf_append(buf, len, cap, (const char *)s + i, j - i);
            i = j;
            continue;
        }
        unsigned c = s[i];
        size_t need;
        unsigned lo = 0x80, hi = 0xBF; /* range of the second byte (RFC 3629 table) */
        if (c >= 0xC2 && c <= 0xDF) {
            need = 2;
        } else if (c >= 0xE0 && c <= 0xEF) {
            need = 3;
            if (c == 0xE0) lo = 0xA0;
            if (c == 0xED) hi = 0x9F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            need = 4;
            if (c == 0xF0) lo = 0x90;
            if (c == 0xF4) hi = 0x8F;
        } else {
            rc = buf_append(buf, len, cap, REPLACEMENT, 3); /* can never start a character */
            i++;
            continue;
        }
        size_t k = 1;
        while (k < need && i + k < n) {
            unsigned b = s[i + k];
            if (k == 1 ? (b < lo || b > hi) : (b & 0xC0) != 0x80) break;
            k++;
        }
        if (k == need) {
            rc = buf_append(buf, len, cap, (const char *)s + i, need);
            i += need;
        } else if (i + k == n && !final) {
            break; /* a valid prefix so far: wait for the next bytes */
        } else {
            rc = buf_append(buf, len, cap, REPLACEMENT, 3); /* one per maximal subpart */
            i += k;
        }
    }
    *consumed = i;
    return rc;
}

int blurb_tokenizer_decode(const blurb_tokenizer *tok, const int32_t *ids, size_t n_ids, char **out,
                           size_t *out_len, blurb_err *err) {
    *out = NULL;
    *out_len = 0;
    size_t total = 0;
    for (size_t i = 0; i < n_ids; i++) {
        if (ids[i] < 0 || ids[i] >= tok->n_vocab)
            return blurb_seterr(err, BLURB_E_INVALID, "decode: id %d at position %zu is outside 0..%d", (int)ids[i],
                                i, (int)tok->n_vocab - 1);
        total += tok->offs[ids[i] + 1] - tok->offs[ids[i]];
    }
    unsigned char *raw = malloc(total ? total : 1);
    if (!raw) return blurb_seterr(err, BLURB_E_NOMEM, "decode: out of memory");
    size_t k = 0;
    for (size_t i = 0; i < n_ids; i++) {
        size_t n = tok->offs[ids[i] + 1] - tok->offs[ids[i]];
        memcpy(raw + k, tok->blob + tok->offs[ids[i]], n);
        k += n;
    }
    char *buf = NULL;
    size_t len = 0, cap = 0, used;
    int rc = buf_reserve(&buf, &len, &cap, total);
    if (!rc) rc = repair_utf8(raw, total, true, &buf, &len, &cap, &used);
    free(raw);
    if (rc) {
        free(buf);
        return blurb_seterr(err, BLURB_E_NOMEM, "decode: out of memory");
    }
    buf[len] = '\0';
    *out = buf;
    *out_len = len;
    return 0;
}

/* ---- streaming ------------------------------------------------------------------ */

struct blurb_detok {
    const blurb_tokenizer *tok;
    unsigned char pending[4]; /* start of a character still missing bytes (at most 3) */
    size_t n_pending;
};

blurb_detok *blurb_detok_new(const blurb_tokenizer *tok) {
    if (!tok) return NULL;
    blurb_detok *d = calloc(1, sizeof *d);
    if (d) d->tok = tok;
    return d;
}

void blurb_detok_free(blurb_detok *d) { free(d); }

void blurb_detok_reset(blurb_detok *d) { d->n_pending = 0; }

int blurb_detok_push(blurb_detok *d, int32_t id, char **out, size_t *out_len, size_t *cap, blurb_err *err) {
    const blurb_tokenizer *tok = d->tok;
    if (id < 0 || id >= tok->n_vocab)
        return blurb_seterr(err, BLURB_E_INVALID, "detokenize: id %d is outside 0..%d", (int)id,
                            (int)tok->n_vocab - 1);
    const unsigned char *bytes = (const unsigned char *)tok->blob + tok->offs[id];
    size_t n = tok->offs[id + 1] - tok->offs[id];
    unsigned char small[256];
    unsigned char *joined = small, *heap = NULL;
    size_t total = d->n_pending + n;
    if (total > sizeof small) {
        heap = malloc(total);
        if (!heap) return blurb_seterr(err, BLURB_E_NOMEM, "detokenize: out of memory");
        joined = heap;
    }
    memcpy(joined, d->pending, d->n_pending);
    memcpy(joined + d->n_pending, bytes, n);
    size_t used;
    /* Make sure the caller gets a valid (NUL-terminated) buffer even when nothing is released. */
    int rc = buf_reserve(out, out_len, cap, 0);
    if (!rc) rc = repair_utf8(joined, total, false, out, out_len, cap, &used);
    if (!rc) {
        /* repair_utf8 stops only before a valid but incomplete prefix: at most 3 bytes. */
        d->n_pending = total - used;
        memcpy(d->pending, joined + used, d->n_pending);
        (*out)[*out_len] = '\0';
    }
    free(heap);
    if (rc) return blurb_seterr(err, BLURB_E_NOMEM, "detokenize: out of memory");
    return 0;
}

int blurb_detok_flush(blurb_detok *d, char **out, size_t *out_len, size_t *cap, blurb_err *err) {
    /* Pending bytes are always the valid start of a character the sequence
     * never finished: dropped, so that the stream stays valid UTF-8 and no
     * U+FFFD appears for a model stopped mid-character. */
    d->n_pending = 0;
    if (buf_reserve(out, out_len, cap, 0)) return blurb_seterr(err, BLURB_E_NOMEM, "detokenize: out of memory");
    (*out)[*out_len] = '\0';
    return 0;
}
