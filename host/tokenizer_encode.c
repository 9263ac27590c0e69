/* Text -> ids: UTF-8 check, <|endoftext|> handling, the GPT-2 split pattern
 * (PCRE2), then byte-level BPE of every piece (tokenizer_bpe.c). */
#include "blurb/tokenizer.h"

#include <stdlib.h>
#include <string.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "blurb/utf8.h"
#include "tokenizer_internal.h"

/* The GPT-2 split pattern (openai/gpt-2 src/encoder.py; HF's ByteLevel
 * pre-tokenizer uses the same):
 *   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 * compiled with PCRE2_UTF | PCRE2_UCP (without UCP \s is ASCII-only, and text
 * with U+00A0, U+2003 or U+3000 splits differently). Three classes are spelled
 * out so that PCRE2 agrees with the reference engine (Oniguruma with Unicode
 * 16.0 tables, inside HF tokenizers) on every code point; checked code point
 * by code point against HF tokenizers:
 * - \s is U+0009..U+000D, U+0085 and the Z categories there; PCRE2's UCP \s
 *   also takes U+180E (a format character since Unicode 6.3).
 * - \p{L} and \p{N} get the letters and numbers assigned in Unicode 15.0,
 *   15.1 and 16.0 (Kawi, Nag Mundari, CJK extensions H and I, Garay, Todhri,
 *   Tulu-Tigalari, Egyptian hieroglyphs extension A, ...), which a PCRE2 built
 *   with Unicode 14 tables (Debian's 10.42) does not know. With newer tables
 *   these ranges are already inside \p{L}/\p{N} and change nothing. */
#define WS "\\t-\\r\\x{85}\\p{Z}"
#define LETTER \
    "\\p{L}\\x{1c89}-\\x{1c8a}\\x{a7cb}-\\x{a7cd}\\x{a7da}-\\x{a7dc}\\x{105c0}-\\x{105f3}\\x{10d4a}-\\x{10d65}" \
    "\\x{10d6f}-\\x{10d85}\\x{10ec2}-\\x{10ec4}\\x{1123f}-\\x{11240}\\x{11380}-\\x{11389}\\x{1138b}\\x{1138e}" \
    "\\x{11390}-\\x{113b5}\\x{113b7}\\x{113d1}\\x{113d3}\\x{11bc0}-\\x{11be0}\\x{11f02}\\x{11f04}-\\x{11f10}" \
    "\\x{11f12}-\\x{11f33}\\x{1342f}\\x{13441}-\\x{13446}\\x{13460}-\\x{143fa}\\x{16100}-\\x{1611d}" \
    "\\x{16d40}-\\x{16d6c}\\x{18cff}\\x{1b132}\\x{1b155}\\x{1df25}-\\x{1df2a}\\x{1e030}-\\x{1e06d}" \
    "\\x{1e4d0}-\\x{1e4eb}\\x{1e5d0}-\\x{1e5ed}\\x{1e5f0}\\x{2b739}\\x{2ebf0}-\\x{2ee5d}\\x{31350}-\\x{323af}"
#define NUMBER \
    "\\p{N}\\x{10d40}-\\x{10d49}\\x{116d0}-\\x{116e3}\\x{11bf0}-\\x{11bf9}\\x{11f50}-\\x{11f59}\\x{16130}-\\x{16139}" \
    "\\x{16d70}-\\x{16d79}\\x{1ccf0}-\\x{1ccf9}\\x{1d2c0}-\\x{1d2d3}\\x{1e4f0}-\\x{1e4f9}\\x{1e5f1}-\\x{1e5fa}"
static const char SPLIT_PATTERN[] = "'s|'t|'re|'ve|'m|'ll|'d"
                                    "| ?[" LETTER "]+"
                                    "| ?[" NUMBER "]+"
                                    "| ?[^" WS LETTER NUMBER "]+"
                                    "|[" WS "]+(?![^" WS "])"
                                    "|[" WS "]+";

int tok_regex_init(blurb_tokenizer *tok, blurb_err *err) {
    int code;
    PCRE2_SIZE off;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)SPLIT_PATTERN, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP, &code,
                                   &off, NULL);
    if (!re) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(code, msg, sizeof msg);
        return blurb_seterr(err, BLURB_E_UNSUPPORTED, "tokenizer: PCRE2 cannot compile the split pattern at %zu: %s",
                            (size_t)off, (const char *)msg);
    }
    /* JIT is several times faster; without it (no JIT support) the interpreter does the same work. */
    tok->re_jit = pcre2_jit_compile(re, PCRE2_JIT_COMPLETE) == 0;
    tok->re = re;
    return 0;
}

void tok_regex_free(blurb_tokenizer *tok) {
    pcre2_code_free(tok->re);
    tok->re = NULL;
}

/* Splits seg[0..n) with the pattern and BPE-encodes each piece. */
static int encode_segment(const blurb_tokenizer *tok, const char *seg, size_t n, pcre2_match_data *md,
                          tok_ids *out, blurb_err *err) {
    char *prefixed = NULL;
    if (tok->add_prefix_space && n > 0 && seg[0] != ' ') {
        /* HF ByteLevel(add_prefix_space=true) splits " " + text. */
        prefixed = malloc(n + 1);
        if (!prefixed) return blurb_seterr(err, BLURB_E_NOMEM, "tokenizer: out of memory");
        prefixed[0] = ' ';
        memcpy(prefixed + 1, seg, n);
        seg = prefixed;
        n++;
    }
    const pcre2_code *re = tok->re;
    size_t pos = 0;
    int rc = 0;
    while (pos < n && !rc) {
        /* The text was validated once up front: no UTF re-check per match. */
        int m = pcre2_match(re, (PCRE2_SPTR)seg, n, pos, PCRE2_NO_UTF_CHECK, md, NULL);
        size_t s, e;
        if (m >= 1) {
            PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
            s = ov[0];
            e = ov[1];
        } else if (m == PCRE2_ERROR_NOMATCH) {
            s = e = n;
        } else {
            PCRE2_UCHAR msg[256];
            pcre2_get_error_message(m, msg, sizeof msg);
            rc = blurb_seterr(err, BLURB_E_UNSUPPORTED, "tokenizer: PCRE2 match failed at byte %zu: %s", pos,
                              (const char *)msg);
            break;
        }
        if (e <= s || s < pos || e > n) {
            /* Cannot happen (every character matches some alternative); a
             * text between matches would be its own piece, as HF keeps it. */
            s = e = n;
        }
        if (s > pos) rc = tok_bpe_piece(tok, seg + pos, s - pos, out);
        if (!rc && e > s) rc = tok_bpe_piece(tok, seg + s, e - s, out);
        if (rc) rc = blurb_seterr(err, BLURB_E_NOMEM, "tokenizer: out of memory");
        pos = e;
    }
    free(prefixed);
    return rc;
}

static const char EOT_TEXT[] = "<|endoftext|>";

/* First occurrence of needle in hay[0..n), or NULL (text may hold NULs, so no strstr). */
static const char *find_bytes(const char *hay, size_t n, const char *needle, size_t m) {
    if (m == 0 || n < m) return NULL;
    const char *end = hay + n - m;
    for (const char *p = hay; p <= end; p++) {
        p = memchr(p, needle[0], (size_t)(end - p) + 1);
        if (!p) return NULL;
        if (memcmp(p, needle, m) == 0) return p;
    }
    return NULL;
}

int blurb_tokenizer_encode(const blurb_tokenizer *tok, const char *text, size_t len, bool allow_special,
                           int32_t **ids, size_t *n_ids, blurb_err *err) {
    *ids = NULL;
    *n_ids = 0;
    if (!text && len > 0) return blurb_seterr(err, BLURB_E_INVALID, "tokenizer: NULL text");
    size_t bad;
    if (len > 0 && !blurb_utf8_valid(text, len, &bad))
        return blurb_seterr(err, BLURB_E_INVALID, "text is not valid UTF-8 (byte offset %zu)", bad);
    /* Piece positions are int32 in the merge loop. */
    if (len >= INT32_MAX)
        return blurb_seterr(err, BLURB_E_INVALID, "text of %zu bytes is too long (2 GiB at most)", len);
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(tok->re, NULL);
    if (!md) return blurb_seterr(err, BLURB_E_NOMEM, "tokenizer: out of memory");
    tok_ids out = {0};
    int rc = 0;
    size_t pos = 0;
    while (pos < len && !rc) {
        /* Special tokens split the text first (as HF's added-token matching
         * does); each segment between them is pre-tokenized on its own. */
        const char *hit = NULL;
        if (allow_special && tok->eot_id >= 0) hit = find_bytes(text + pos, len - pos, EOT_TEXT, sizeof EOT_TEXT - 1);
        size_t seg_end = hit ? (size_t)(hit - text) : len;
        rc = encode_segment(tok, text + pos, seg_end - pos, md, &out, err);
        if (!rc && hit) {
            if (tok_ids_push(&out, tok->eot_id)) rc = blurb_seterr(err, BLURB_E_NOMEM, "tokenizer: out of memory");
            seg_end += sizeof EOT_TEXT - 1;
        }
        pos = seg_end;
    }
    pcre2_match_data_free(md);
    if (rc) {
        free(out.v);
        return rc;
    }
    if (!out.v) {
        /* Callers may free() the result whatever its length. */
        out.v = malloc(sizeof *out.v);
        if (!out.v) return blurb_seterr(err, BLURB_E_NOMEM, "tokenizer: out of memory");
    }
    *ids = out.v;
    *n_ids = out.n;
    return 0;
}
