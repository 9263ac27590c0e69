/* GPT-2 byte-level BPE tokenizer (Radford et al. 2019; reference: openai/gpt-2
 * src/encoder.py and HF tokenizers' ByteLevel pre-tokenizer + BPE model).
 *
 * Text -> ids: the GPT-2 split regex (PCRE2, UTF + UCP), each piece's bytes
 * mapped to the GPT-2 byte-to-unicode alphabet, then BPE merges by rank.
 * Ids -> text: the inverse byte mapping. All text is UTF-8 with explicit
 * lengths (NUL bytes are ordinary characters). */
#ifndef BLURB_TOKENIZER_H
#define BLURB_TOKENIZER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "blurb/error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct blurb_tokenizer blurb_tokenizer;

/* Loads the tokenizer for a model directory: its tokenizer.json when present,
 * else its encoder.json + vocab.bpe when present, else the GPT-2 files shipped
 * with blurb (weights/tokenizer next to the source tree or
 * <prefix>/share/blurb/tokenizer). model_dir may be NULL (shipped files only).
 * vocab_size is the model's (tokens); a larger vocabulary is rejected; <= 0
 * skips the check.
 * tokenizer.json must be HF's GPT-2 kind: model BPE (merges as "a b" strings
 * or [a, b] pairs, ignore_merges honoured, no dropout or subword affixes), no
 * normalizer, a ByteLevel pre_tokenizer (add_prefix_space honoured), and no
 * added tokens but <|endoftext|>.
 * Returns 0, or BLURB_E_IO (no tokenizer found: names the places tried; a file
 * unreadable), BLURB_E_FORMAT (malformed file: names it and the line, record or
 * token), BLURB_E_UNSUPPORTED (vocabulary larger than vocab_size, other added
 * tokens, another pipeline) or BLURB_E_NOMEM. */
int blurb_tokenizer_load(const char *model_dir, int vocab_size, blurb_tokenizer **out, blurb_err *err);

/* Loads the original GPT-2 files explicitly (encoder.json: token -> id map in
 * the GPT-2 byte-to-unicode alphabet; vocab.bpe: "#version" line, then one
 * merge "a b" per line in rank order). Same returns as blurb_tokenizer_load. */
int blurb_tokenizer_load_files(const char *encoder_json, const char *vocab_bpe,
                               blurb_tokenizer **out, blurb_err *err);

/* NULL is allowed. */
void blurb_tokenizer_free(blurb_tokenizer *tok);

/* Number of ids (50257 for GPT-2) and the <|endoftext|> id (50256), -1 if none. */
int blurb_tokenizer_vocab_size(const blurb_tokenizer *tok);
int blurb_tokenizer_eot_id(const blurb_tokenizer *tok);

/* Encodes text[0..len) (must be valid UTF-8, may hold NUL) into *ids (malloc'ed,
 * caller frees, even when *n_ids is 0) and *n_ids (tokens). With allow_special
 * false, "<|endoftext|>" in the text is ordinary text; with true it becomes the
 * special id (the text between is then encoded segment by segment, as HF does).
 * A piece of n bytes costs O(n log n) time and O(n) memory, whatever its shape.
 * The tokenizer may be shared by threads encoding at the same time.
 * Returns 0, or BLURB_E_INVALID for invalid UTF-8 (message gives the byte
 * offset) or a text of 2 GiB or more, BLURB_E_NOMEM; on error *ids is NULL. */
int blurb_tokenizer_encode(const blurb_tokenizer *tok, const char *text, size_t len,
                           bool allow_special, int32_t **ids, size_t *n_ids, blurb_err *err);

/* The raw bytes of one id (not necessarily valid UTF-8 alone), owned by tok;
 * *len receives the byte count. Returns NULL (and *len 0) for an id out of range. */
const char *blurb_tokenizer_token_bytes(const blurb_tokenizer *tok, int32_t id, size_t *len);

/* Decodes ids to text in *out (malloc'ed, NUL-terminated, caller frees), *out_len
 * bytes. Byte sequences that are not valid UTF-8 become U+FFFD, one per maximal
 * invalid subpart (Unicode ch. 3 "best practice", as Python's
 * bytes.decode(errors="replace"), including an unfinished last character), so
 * the result is always valid UTF-8. Returns 0, BLURB_E_INVALID (id out of range:
 * names it and its position) or BLURB_E_NOMEM; on error *out is NULL. */
int blurb_tokenizer_decode(const blurb_tokenizer *tok, const int32_t *ids, size_t n_ids,
                           char **out, size_t *out_len, blurb_err *err);

/* Incremental detokenizer for streaming and stop strings: push ids one at a
 * time; only complete UTF-8 characters are released, and bytes that can never
 * become valid are released at once as U+FFFD (same count as decode). The
 * pieces joined equal blurb_tokenizer_decode of the same ids, except that flush
 * drops an unfinished last character where decode writes one U+FFFD.
 * blurb_detok_new returns NULL when out of memory (or tok is NULL); one
 * detokenizer serves one sequence at a time. */
typedef struct blurb_detok blurb_detok;
blurb_detok *blurb_detok_new(const blurb_tokenizer *tok);
void blurb_detok_free(blurb_detok *d);
/* Clears pending bytes for a new sequence. */
void blurb_detok_reset(blurb_detok *d);
/* Appends the text completed by id to out (a growing buffer *out of *cap bytes,
 * *out_len used; realloc'ed as needed, kept NUL-terminated; *out may start NULL
 * with *cap 0). Returns 0, BLURB_E_INVALID (id out of range: nothing appended,
 * state unchanged) or BLURB_E_NOMEM. */
int blurb_detok_push(blurb_detok *d, int32_t id, char **out, size_t *out_len, size_t *cap, blurb_err *err);
/* End of sequence: drops an incomplete trailing character (bytes that can
 * never become valid were already released as U+FFFD by push) and leaves the
 * detokenizer ready for a new sequence. Same buffer convention; appends
 * nothing. Returns 0 or BLURB_E_NOMEM (buffer allocation). */
int blurb_detok_flush(blurb_detok *d, char **out, size_t *out_len, size_t *cap, blurb_err *err);

#ifdef __cplusplus
}
#endif
#endif
