/* Private layout of blurb_tokenizer, shared by host/tokenizer_*.c and
 * host/detokenizer.c. Everything is stored in raw bytes: the GPT-2
 * byte-to-unicode alphabet is undone once at load time, so the hot paths never
 * convert characters. */
#ifndef BLURB_TOKENIZER_INTERNAL_H
#define BLURB_TOKENIZER_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "blurb/error.h"
#include "blurb/tokenizer.h"

/* Open-addressing table from a token's bytes to its id. */
typedef struct tok_vocab_map {
    int32_t *slots; /* id or -1; power-of-two count */
    size_t mask;
} tok_vocab_map;

/* Open-addressing table from an adjacent id pair to its merge. */
typedef struct tok_merge_entry {
    uint64_t key;     /* (uint64)left << 32 | right; UINT64_MAX when empty */
    uint32_t rank;    /* line order in vocab.bpe: lower merges first */
    int32_t new_id;   /* id of left bytes + right bytes */
} tok_merge_entry;

typedef struct tok_merge_map {
    tok_merge_entry *slots;
    size_t mask;
    size_t count;
    int32_t *new_id_by_rank; /* rank -> new_id, so heap entries need not carry it */
    size_t n_ranks;
} tok_merge_map;

/* A direct-mapped cache of recent pieces -> ids. Catalog text repeats the same
 * words constantly; the cache skips their merge loops (about 97% hits on the
 * golden product texts; 4096 slots gave 90% and a fifth more encode work).
 * Bounded: 16384 slots of 76 bytes (1.2 MB), pieces up to TOK_CACHE_PIECE bytes. */
#define TOK_CACHE_SLOTS 16384
#define TOK_CACHE_PIECE 24
#define TOK_CACHE_IDS 12
typedef struct tok_cache_slot {
    uint8_t len;                     /* piece length; 0 = empty */
    uint8_t n_ids;
    char piece[TOK_CACHE_PIECE];
    int32_t ids[TOK_CACHE_IDS];
} tok_cache_slot;

struct blurb_tokenizer {
    int32_t n_vocab;       /* ids 0 .. n_vocab-1, all present */
    int32_t eot_id;        /* "<|endoftext|>" or -1 */
    char *blob;            /* all token bytes back to back */
    size_t *offs;          /* token i is blob[offs[i] .. offs[i+1]) */
    int32_t byte_id[256];  /* id of each single byte */
    tok_vocab_map vocab;
    tok_merge_map merges;
    bool add_prefix_space; /* HF ByteLevel option: a space before text not starting with one */
    bool ignore_merges;    /* HF BPE option: a piece that is a whole token maps to it directly */
    void *re;              /* pcre2_code * of the GPT-2 split pattern */
    bool re_jit;           /* JIT compiled */
    pthread_mutex_t cache_lock;
    tok_cache_slot *cache; /* TOK_CACHE_SLOTS entries, or NULL */
};

/* GPT-2 byte <-> unicode alphabet (openai/gpt-2 encoder.py bytes_to_unicode):
 * printable Latin-1 bytes map to themselves, the other 68 bytes to U+0100.. in
 * byte order. Returns the code point of byte b / the byte of code point cp
 * (-1 when cp is outside the alphabet). */
uint32_t tok_byte_to_cp(uint8_t b);
int tok_cp_to_byte(uint32_t cp);

/* FNV-1a over bytes. */
uint64_t tok_hash_bytes(const char *s, size_t n);

/* Id of the token whose bytes are s[0..n), or -1. */
int32_t tok_vocab_find(const struct blurb_tokenizer *tok, const char *s, size_t n);

/* The merge of ids (a, b), or NULL when they do not merge. */
const tok_merge_entry *tok_merge_find(const struct blurb_tokenizer *tok, int32_t a, int32_t b);

/* Compiles the GPT-2 split pattern into tok->re. Returns 0 or BLURB_E_*. */
int tok_regex_init(struct blurb_tokenizer *tok, blurb_err *err);
void tok_regex_free(struct blurb_tokenizer *tok);

/* Growing id vector used while encoding. */
typedef struct tok_ids {
    int32_t *v;
    size_t n, cap;
} tok_ids;
int tok_ids_push(tok_ids *ids, int32_t id);

/* Byte-level BPE of one pre-tokenized piece s[0..n) (n >= 1): appends its ids
 * to out. Runs in O(n log n) time and O(n) memory whatever the piece.
 * Returns 0 or BLURB_E_NOMEM. */
int tok_bpe_piece(const struct blurb_tokenizer *tok, const char *s, size_t n, tok_ids *out);

#endif
