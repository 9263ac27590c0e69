/* Byte-level BPE merge loop of one pre-tokenized piece.
 *
 * Merge order follows HF tokenizers' BPE (models/bpe/word.rs merge_all): always
 * the adjacent pair of lowest rank, leftmost first. Rescanning the piece after
 * every merge would be O(n^2) on a long unbroken piece (a 1 MB run of "^"), so
 * the symbols form a doubly linked list and the candidate merges sit in a
 * binary min-heap keyed by (rank, position). A merge invalidates at most two
 * neighbouring candidates; they are not removed but skipped when popped (the
 * pair there no longer yields the recorded token). Each merge pushes at most
 * two candidates, so a piece of n bytes costs O(n log n) time and O(n) memory
 * (28 bytes per byte). */
#include <stdlib.h>
#include <string.h>

#include "tokenizer_internal.h"

/* A candidate merge: rank in the high half, left symbol position in the low
 * half, so that plain integer order is (rank, position) order. The token it
 * makes is new_id_by_rank[rank]. */
typedef uint64_t cand;

static inline cand cand_make(uint32_t rank, uint32_t pos) { return (uint64_t)rank << 32 | pos; }

static void heap_sift_down(cand *h, size_t n, size_t i) {
    cand x = h[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && h[c + 1] < h[c]) c++;
        if (h[c] >= x) break;
        h[i] = h[c];
        i = c;
    }
    h[i] = x;
}

static void heap_push(cand *h, size_t *n, cand x) {
    size_t i = (*n)++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (h[p] <= x) break;
        h[i] = h[p];
        i = p;
    }
    h[i] = x;
}

static cand heap_pop(cand *h, size_t *n) {
    cand top = h[0];
    h[0] = h[--*n];
    if (*n > 0) heap_sift_down(h, *n, 0);
    return top;
}

/* Pieces up to this many bytes work in stack buffers (most words are short). */
#define SMALL_PIECE 64

static int bpe_merge(const blurb_tokenizer *tok, const char *s, size_t n, tok_ids *out) {
    int32_t s_id[SMALL_PIECE], s_prev[SMALL_PIECE], s_next[SMALL_PIECE];
    cand s_heap[2 * SMALL_PIECE];
    int32_t *id = s_id, *prev = s_prev, *next = s_next;
    cand *heap = s_heap;
    void *mem = NULL;
    if (n > SMALL_PIECE) {
        /* At most n-1 initial candidates; each merge pops one and pushes at
         * most two, and there are at most n-1 merges: under 2n at any time.
         * 28 bytes per input byte in all. */
        mem = malloc(2 * n * sizeof(cand) + 3 * n * sizeof(int32_t));
        if (!mem) return BLURB_E_NOMEM;
        heap = mem;
        id = (int32_t *)(heap + 2 * n);
        prev = id + n;
        next = prev + n;
    }
    const int32_t *new_id_by_rank = tok->merges.new_id_by_rank;
    size_t nh = 0;
    for (size_t i = 0; i < n; i++) {
        id[i] = tok->byte_id[(unsigned char)s[i]];
        prev[i] = (int32_t)i - 1;
        next[i] = i + 1 < n ? (int32_t)(i + 1) : -1;
    }
    for (size_t i = 0; i + 1 < n; i++) {
        const tok_merge_entry *m = tok_merge_find(tok, id[i], id[i + 1]);
        if (m) heap[nh++] = cand_make(m->rank, (uint32_t)i);
    }
    for (size_t i = nh / 2; i-- > 0;) heap_sift_down(heap, nh, i);

    while (nh > 0) {
        cand c = heap_pop(heap, &nh);
        uint32_t p = (uint32_t)c;
        int32_t new_id = new_id_by_rank[c >> 32];
        if (id[p] < 0) continue;   /* merged into its left neighbour */
        int32_t r = next[p];
        if (r < 0) continue;       /* last symbol */
        /* Stale when the pair there no longer makes the same token (HF's test). */
        const tok_merge_entry *m = tok_merge_find(tok, id[p], id[r]);
        if (!m || m->new_id != new_id) continue;
        id[p] = new_id;
        id[r] = -1;
        next[p] = next[r];
        if (next[r] >= 0) prev[next[r]] = (int32_t)p;
        if (prev[p] >= 0) {
            const tok_merge_entry *ml = tok_merge_find(tok, id[prev[p]], id[p]);
            if (ml) heap_push(heap, &nh, cand_make(ml->rank, (uint32_t)prev[p]));
        }
        if (next[p] >= 0) {
            const tok_merge_entry *mr = tok_merge_find(tok, id[p], id[next[p]]);
            if (mr) heap_push(heap, &nh, cand_make(mr->rank, p));
        }
    }
    int rc = 0;
    for (int32_t i = 0; i >= 0 && !rc; i = next[i]) rc = tok_ids_push(out, id[i]);
    free(mem);
    return rc;
}

int tok_ids_push(tok_ids *ids, int32_t id) {
    if (ids->n == ids->cap) {
        size_t cap = ids->cap ? ids->cap * 2 : 64;
        int32_t *v = realloc(ids->v, cap * sizeof *v);
        if (!v) return BLURB_E_NOMEM;
        ids->v = v;
        ids->cap = cap;
    }
    ids->v[ids->n++] = id;
    return 0;
}

int tok_bpe_piece(const blurb_tokenizer *tok, const char *s, size_t n, tok_ids *out) {
    if (n == 1) return tok_ids_push(out, tok->byte_id[(unsigned char)s[0]]);
    if (tok->ignore_merges) {
        int32_t whole = tok_vocab_find(tok, s, n);
        /* The special id never comes out of text, whatever the vocabulary. */
        if (whole >= 0 && whole != tok->eot_id) return tok_ids_push(out, whole);
    }
    tok_cache_slot *slot = NULL;
    if (tok->cache && n <= TOK_CACHE_PIECE) {
        /* encode() takes a const tokenizer and may run on several threads:
         * the cache is the one shared mutable part, so it is locked. */
        slot = &tok->cache[tok_hash_bytes(s, n) & (TOK_CACHE_SLOTS - 1)];
        pthread_mutex_t *lock = (pthread_mutex_t *)&tok->cache_lock;
        pthread_mutex_lock(lock);
        if (slot->len == n && memcmp(slot->piece, s, n) == 0) {
            int32_t ids[TOK_CACHE_IDS];
            size_t k = slot->n_ids;
            memcpy(ids, slot->ids, k * sizeof *ids);
            pthread_mutex_unlock(lock);
            for (size_t i = 0; i < k; i++) {
                int rc = tok_ids_push(out, ids[i]);
                if (rc) return rc;
            }
            return 0;
        }
        pthread_mutex_unlock(lock);
    }
    size_t before = out->n;
    int rc = bpe_merge(tok, s, n, out);
    if (rc) return rc;
    size_t k = out->n - before;
    if (slot && k <= TOK_CACHE_IDS) {
        pthread_mutex_t *lock = (pthread_mutex_t *)&tok->cache_lock;
        pthread_mutex_lock(lock);
        slot->len = (uint8_t)n;
        slot->n_ids = (uint8_t)k;
        memcpy(slot->piece, s, n);
        memcpy(slot->ids, out->v + before, k * sizeof *out->v);
        pthread_mutex_unlock(lock);
    }
    return 0;
}
