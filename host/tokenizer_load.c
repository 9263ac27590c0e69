/* Loading the GPT-2 tokenizer: encoder.json + vocab.bpe (openai/gpt-2 layout)
 * or an HF tokenizer.json (BPE model, ByteLevel pre-tokenizer), into the raw
 * byte tables of tokenizer_internal.h. */
#include "blurb/tokenizer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "blurb/utf8.h"
#include "read_file.h"
#include "tokenizer_internal.h"

#define TOK_FILE_MAX ((size_t)256 << 20) /* no tokenizer file comes near this */
static const char EOT_TEXT[] = "<|endoftext|>";

/* ---- GPT-2 byte alphabet ------------------------------------------------ */

static bool byte_is_printable(unsigned b) {
    return (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
}

uint32_t tok_byte_to_cp(uint8_t b) {
    if (byte_is_printable(b)) return b;
    /* The 68 other bytes take U+0100.. in byte order: 0..32, 127..160, 173. */
    if (b <= 32) return 256u + b;
    if (b >= 127 && b <= 160) return 256u + 33u + (uint32_t)(b - 127);
    return 256u + 67u; /* 173 */
}

int tok_cp_to_byte(uint32_t cp) {
    if (cp < 256) return byte_is_printable(cp) ? (int)cp : -1;
    uint32_t k = cp - 256;
    if (k <= 32) return (int)k;
    if (k <= 66) return (int)(127 + k - 33);
    if (k == 67) return 173;
    return -1;
}

/* ---- hash tables ---------------------------------------------------------- */

uint64_t tok_hash_bytes(const char *s, size_t n) {
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ull;
    }
    return h;
}

static uint64_t hash_pair(uint64_t key) {
    /* splitmix64 finalizer: adjacent ids must not land in adjacent slots. */
    key ^= key >> 30;
    key *= 0xbf58476d1ce4e5b9ull;
    key ^= key >> 27;
    key *= 0x94d049bb133111ebull;
    key ^= key >> 31;
    return key;
}

static size_t pow2_at_least(size_t n) {
    size_t p = 16;
    while (p < n) p <<= 1;
    return p;
}

int32_t tok_vocab_find(const blurb_tokenizer *tok, const char *s, size_t n) {
    size_t i = (size_t)tok_hash_bytes(s, n) & tok->vocab.mask;
    for (;;) {
        int32_t id = tok->vocab.slots[i];
        if (id < 0) return -1;
        size_t len = tok->offs[id + 1] - tok->offs[id];
        if (len == n && memcmp(tok->blob + tok->offs[id], s, n) == 0) return id;
        i = (i + 1) & tok->vocab.mask;
    }
}

const tok_merge_entry *tok_merge_find(const blurb_tokenizer *tok, int32_t a, int32_t b) {
    uint64_t key = (uint64_t)(uint32_t)a << 32 | (uint32_t)b;
    size_t i = (size_t)hash_pair(key) & tok->merges.mask;
    for (;;) {
        const tok_merge_entry *e = &tok->merges.slots[i];
        if (e->key == key) return e;
        if (e->key == UINT64_MAX) return NULL;
        i = (i + 1) & tok->merges.mask;
    }
}

/* A token or text quoted in an error message: at most 64 bytes, cut at a
 * character boundary, bytes that are not UTF-8 shown as '?', so that messages
 * (which end up in job error records) stay valid UTF-8. */
typedef struct shown_text {
    char s[72];
} shown_text;

static shown_text shown(const char *text, size_t n) {
    shown_text o;
    size_t k = 0, i = 0;
    while (i < n) {
        size_t c = blurb_utf8_char_len((const unsigned char *)text + i, n - i);
        if (c == 0) c = 1;
        if (k + c > 64) break;
        if (c == 1 && (unsigned char)text[i] >= 0x80) o.s[k++] = '?';
        else memcpy(o.s + k, text + i, c), k += c;
        i += c;
    }
    if (i < n) memcpy(o.s + k, "...", 3), k += 3;
    o.s[k] = '\0';
    return o;
}

/* ---- file helpers ------------------------------------------------------------- */

/* Parses JSON text, naming the line and column of a syntax error. */
static cJSON *parse_json(const char *path, const char *text, size_t len, blurb_err *err) {
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, len, &end, false);
    if (!root) {
        int line = 0, col = 0;
        blurb_text_line_col(text, len, end ? (size_t)(end - text) : 0, &line, &col);
        blurb_seterr(err, BLURB_E_FORMAT, "%s: not valid JSON (line %d, column %d)", path, line, col);
    }
    return root;
}

static bool file_exists(const char *path) { return access(path, F_OK) == 0; }

static int join_path(char *buf, size_t size, const char *dir, const char *name, blurb_err *err) {
    int n = snprintf(buf, size, "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= size)
        return blurb_seterr(err, BLURB_E_INVALID, "path too long: %s/%s", dir, name);
    return 0;
}

/* ---- builder: token list + merge list, then the final tables ------------------ */

typedef struct tok_builder {
    const char *path;  /* file named in errors */
    int32_t n;         /* tokens collected */
    char **tokens;     /* by id: raw bytes (malloc'ed), NULL while unset */
    size_t *lens;
    blurb_tokenizer *tok;
} tok_builder;

/* Decodes a byte-level token string (UTF-8 over the GPT-2 alphabet) into raw
 * bytes in out (at most strlen(s) bytes). Returns the byte count or -1. */
static long bytes_from_alphabet(const char *s, size_t n, char *out) {
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    long k = 0;
    while (i < n) {
        uint32_t cp;
        if (p[i] < 0x80) {
            cp = p[i];
            i += 1;
        } else if ((p[i] & 0xE0) == 0xC0 && i + 1 < n && (p[i + 1] & 0xC0) == 0x80) {
            cp = (uint32_t)(p[i] & 0x1F) << 6 | (p[i + 1] & 0x3F);
            i += 2;
        } else {
            return -1; /* the alphabet is U+0021..U+0143: one or two bytes */
        }
        int b = tok_cp_to_byte(cp);
        if (b < 0) return -1;
        out[k++] = (char)b;
    }
    return k;
}

static void builder_free(tok_builder *b) {
    if (b->tokens)
        for (int32_t i = 0; i < b->n; i++) free(b->tokens[i]);
    free(b->tokens);
    free(b->lens);
    b->tokens = NULL;
    b->lens = NULL;
    b->n = 0;
}

/* Sets token id to bytes s[0..n). */
static int builder_set(tok_builder *b, int32_t id, const char *s, size_t n, const char *what, blurb_err *err) {
    if (id < 0 || id >= b->n)
        return blurb_seterr(err, BLURB_E_FORMAT, "%s: %s has id %d, outside 0..%d", b->path, what, (int)id,
                            (int)b->n - 1);
    if (b->tokens[id])
        return blurb_seterr(err, BLURB_E_FORMAT, "%s: id %d is used by two tokens", b->path, (int)id);
    b->tokens[id] = malloc(n ? n : 1);
    if (!b->tokens[id]) return blurb_seterr(err, BLURB_E_NOMEM, "%s: out of memory", b->path);
    memcpy(b->tokens[id], s, n);
    b->lens[id] = n;
    return 0;
}

/* A JSON token id: an integer in 0..INT32_MAX (checked before any cast, which
 * would be undefined for a huge or fractional number). */
static bool json_id(const cJSON *j, int32_t *out) {
    if (!cJSON_IsNumber(j)) return false;
    double d = j->valuedouble;
    if (!(d >= 0.0 && d <= (double)INT32_MAX)) return false;
    int32_t v = (int32_t)d;
    if ((double)v != d) return false;
    *out = v;
    return true;
}

/* Reads a vocab object {"token": id, ...} (encoder.json, or model.vocab of
 * tokenizer.json); extra (0 or 1) reserves an id for an added <|endoftext|>. */
static int builder_vocab(tok_builder *b, const cJSON *vocab, int32_t extra, blurb_err *err) {
    if (!cJSON_IsObject(vocab))
        return blurb_seterr(err, BLURB_E_FORMAT, "%s: the vocabulary is not a JSON object", b->path);
    int count = cJSON_GetArraySize(vocab);
    if (count <= 0)
        return blurb_seterr(err, BLURB_E_FORMAT, "%s: the vocabulary is empty", b->path);
    if (count > (1 << 24))
        return blurb_seterr(err, BLURB_E_UNSUPPORTED, "%s: a vocabulary of %d tokens is too large", b->path, count);
    b->n = (int32_t)count + extra;
    b->tokens = calloc((size_t)b->n, sizeof *b->tokens);
    b->lens = calloc((size_t)b->n, sizeof *b->lens);
    if (!b->tokens || !b->lens) return blurb_seterr(err, BLURB_E_NOMEM, "%s: out of memory", b->path);
    char buf[1024];
    const cJSON *it;
    cJSON_ArrayForEach(it, vocab) {
        const char *key = it->string;
        int32_t id;
        if (!key || !json_id(it, &id))
            return blurb_seterr(err, BLURB_E_FORMAT, "%s: vocabulary entry '%s' has no valid id", b->path,
                                shown(key ? key : "", key ? strlen(key) : 0).s);
        size_t klen = strlen(key);
        if (klen >= sizeof buf)
            return blurb_seterr(err, BLURB_E_FORMAT, "%s: token '%s' is longer than %zu bytes", b->path,
                                shown(key, klen).s, sizeof buf - 1);
        long n = bytes_from_alphabet(key, klen, buf);
        if (n < 0)
            return blurb_seterr(err, BLURB_E_FORMAT,
                                "%s: token '%s' (id %d) is not in the GPT-2 byte-level alphabet", b->path,
                                shown(key, klen).s, (int)id);
        if (n == 0) return blurb_seterr(err, BLURB_E_FORMAT, "%s: empty token string", b->path);
        char what[96];
        snprintf(what, sizeof what, "token '%s'", shown(key, klen).s);
        int rc = builder_set(b, id, buf, (size_t)n, what, err);
        if (rc) return rc;
    }
    return 0;
}

/* Builds the vocabulary tables once every id is set. */
static int builder_finish_vocab(tok_builder *b, blurb_err *err) {
    blurb_tokenizer *tok = b->tok;
    size_t total = 0;
    for (int32_t i = 0; i < b->n; i++) {
        if (!b->tokens[i])
            return blurb_seterr(err, BLURB_E_FORMAT, "%s: no token has id %d (ids must be 0..%d)", b->path,
                                (int)i, (int)b->n - 1);
        total += b->lens[i];
    }
    tok->n_vocab = b->n;
    tok->blob = malloc(total ? total : 1);
    tok->offs = malloc(((size_t)b->n + 1) * sizeof *tok->offs);
    size_t nslots = pow2_at_least((size_t)b->n * 2);
    tok->vocab.slots = malloc(nslots * sizeof *tok->vocab.slots);
    if (!tok->blob || !tok->offs || !tok->vocab.slots)
        return blurb_seterr(err, BLURB_E_NOMEM, "%s: out of memory", b->path);
    tok->vocab.mask = nslots - 1;
    for (size_t i = 0; i < nslots; i++) tok->vocab.slots[i] = -1;
    size_t off = 0;
    for (int32_t id = 0; id < b->n; id++) {
        tok->offs[id] = off;
        memcpy(tok->blob + off, b->tokens[id], b->lens[id]);
        off += b->lens[id];
        tok->offs[id + 1] = off;
        if (tok_vocab_find(tok, b->tokens[id], b->lens[id]) >= 0)
            return blurb_seterr(err, BLURB_E_FORMAT, "%s: token id %d repeats the bytes of an earlier token",
                                b->path, (int)id);
        size_t s = (size_t)tok_hash_bytes(b->tokens[id], b->lens[id]) & tok->vocab.mask;
        while (tok->vocab.slots[s] >= 0) s = (s + 1) & tok->vocab.mask;
        tok->vocab.slots[s] = id;
    }
    for (int c = 0; c < 256; c++) {
        char ch = (char)c;
        tok->byte_id[c] = tok_vocab_find(tok, &ch, 1);
        if (tok->byte_id[c] < 0)
            return blurb_seterr(err, BLURB_E_FORMAT,
                                "%s: no token for byte 0x%02x: not a byte-level vocabulary", b->path, c);
    }
    tok->eot_id = tok_vocab_find(tok, EOT_TEXT, sizeof EOT_TEXT - 1);
    return 0;
}

static int merges_alloc(blurb_tokenizer *tok, size_t n, const char *path, blurb_err *err) {
    size_t nslots = pow2_at_least(n * 2 + 1);
    tok->merges.slots = malloc(nslots * sizeof *tok->merges.slots);
    tok->merges.new_id_by_rank = malloc((n ? n : 1) * sizeof *tok->merges.new_id_by_rank);
    if (!tok->merges.slots || !tok->merges.new_id_by_rank)
        return blurb_seterr(err, BLURB_E_NOMEM, "%s: out of memory", path);
    tok->merges.n_ranks = n;
    tok->merges.mask = nslots - 1;
    tok->merges.count = 0;
    for (size_t i = 0; i < nslots; i++) tok->merges.slots[i].key = UINT64_MAX;
    return 0;
}

/* Adds merge number rank (its index in the list) of byte-level strings a and
 * b; where names the record. */
static int merge_add(blurb_tokenizer *tok, uint32_t rank, const char *a, size_t alen, const char *b, size_t blen,
                     const char *path, const char *where, blurb_err *err) {
    char buf[2048];
    if (alen == 0 || blen == 0 || alen + blen >= sizeof buf)
        return blurb_seterr(err, BLURB_E_FORMAT, "%s: %s: malformed merge", path, where);
    long na = bytes_from_alphabet(a, alen, buf);
    long nb = na < 0 ? -1 : bytes_from_alphabet(b, blen, buf + na);
    if (na < 0 || nb < 0)
        return blurb_seterr(err, BLURB_E_FORMAT, "%s: %s: merge is not in the GPT-2 byte-level alphabet", path,
                            where);
    int32_t ia = tok_vocab_find(tok, buf, (size_t)na);
    int32_t ib = tok_vocab_find(tok, buf + na, (size_t)nb);
    int32_t im = tok_vocab_find(tok, buf, (size_t)(na + nb));
    if (ia < 0 || ib < 0 || im < 0)
        return blurb_seterr(err, BLURB_E_FORMAT, "%s: %s: merge '%s %s' uses a token not in the vocabulary",
                            path, where, shown(a, alen).s, shown(b, blen).s);
    if (tok->merges.count + 1 > tok->merges.mask / 2 || rank >= tok->merges.n_ranks)
        return blurb_seterr(err, BLURB_E_FORMAT, "%s: more merges than counted", path);
    uint64_t key = (uint64_t)(uint32_t)ia << 32 | (uint32_t)ib;
    size_t s = (size_t)hash_pair(key) & tok->merges.mask;
    while (tok->merges.slots[s].key != UINT64_MAX && tok->merges.slots[s].key != key)
        s = (s + 1) & tok->merges.mask;
    /* A repeated pair takes its last rank, as the reference's rank maps do
     * (Python dict(zip(merges, range)) and HF's HashMap collect). */
    if (tok->merges.slots[s].key == UINT64_MAX) tok->merges.count++;
    tok->merges.slots[s].key = key;
    tok->merges.slots[s].rank = rank;
    tok->merges.slots[s].new_id = im;
    tok->merges.new_id_by_rank[rank] = im;
    return 0;
}

/* vocab.bpe: optional "#version" line, then one "a b" merge per line, rank order. */
static int parse_vocab_bpe(blurb_tokenizer *tok, const char *path, char *text, size_t len, blurb_err *err) {
    size_t lines = 1;
    for (size_t i = 0; i < len; i++) lines += text[i] == '\n';
    int rc = merges_alloc(tok, lines, path, err);
    if (rc) return rc;
    size_t pos = 0, lineno = 0;
    uint32_t rank = 0;
    while (pos < len) {
        size_t end = pos;
        while (end < len && text[end] != '\n') end++;
        lineno++;
        size_t e = end;
        if (e > pos && text[e - 1] == '\r') e--;
        const char *line = text + pos;
        size_t n = e - pos;
        pos = end + 1;
        if (n == 0) continue;
        if (lineno == 1 && n >= 8 && memcmp(line, "#version", 8) == 0) continue;
        const char *sp = memchr(line, ' ', n);
        char where[48];
        snprintf(where, sizeof where, "line %zu", lineno);
        if (!sp || memchr(sp + 1, ' ', n - (size_t)(sp + 1 - line)))
            return blurb_seterr(err, BLURB_E_FORMAT, "%s: line %zu: expected two tokens separated by one space",
                                path, lineno);
        if (memchr(line, '\0', n))
            return blurb_seterr(err, BLURB_E_FORMAT, "%s: line %zu: NUL byte", path, lineno);
        rc = merge_add(tok, rank++, line, (size_t)(sp - line), sp + 1, n - (size_t)(sp - line) - 1, path, where,
                       err);
        if (rc) return rc;
    }
    return 0;
}

/* ---- the tokenizer object -------------------------------------------------------- */

static blurb_tokenizer *tok_alloc(void) {
    blurb_tokenizer *tok = calloc(1, sizeof *tok);
    if (!tok) return NULL;
    tok->eot_id = -1;
    if (pthread_mutex_init(&tok->cache_lock, NULL) != 0) {
        free(tok);
        return NULL;
    }
    return tok;
}

void blurb_tokenizer_free(blurb_tokenizer *tok) {
    if (!tok) return;
    tok_regex_free(tok);
    pthread_mutex_destroy(&tok->cache_lock);
    free(tok->cache);
    free(tok->blob);
    free(tok->offs);
    free(tok->vocab.slots);
    free(tok->merges.slots);
    free(tok->merges.new_id_by_rank);
    free(tok);
}

static int check_vocab_size(const blurb_tokenizer *tok, int vocab_size, const char *path, blurb_err *err) {
    if (vocab_size > 0 && tok->n_vocab > vocab_size)
        return blurb_seterr(err, BLURB_E_UNSUPPORTED,
                            "%s: the tokenizer has %d tokens but the model's vocab_size is %d", path,
                            (int)tok->n_vocab, vocab_size);
    return 0;
}

/* Final step shared by both formats: split pattern and piece cache. */
static int tok_finish(blurb_tokenizer *tok, blurb_err *err) {
    int rc = tok_regex_init(tok, err);
    if (rc) return rc;
    /* The cache only speeds encoding up: run without it when memory is short. */
    tok->cache = calloc(TOK_CACHE_SLOTS, sizeof *tok->cache);
    return 0;
}

int blurb_tokenizer_load_files(const char *encoder_json, const char *vocab_bpe, blurb_tokenizer **out,
                               blurb_err *err) {
    *out = NULL;
    blurb_tokenizer *tok = tok_alloc();
    if (!tok) return blurb_seterr(err, BLURB_E_NOMEM, "tokenizer: out of memory");
    tok_builder b = {.path = encoder_json, .tok = tok};
    char *text = NULL;
    size_t len = 0;
    cJSON *root = NULL;
    int rc = blurb_read_file(encoder_json, TOK_FILE_MAX, &text, &len, err);
    if (rc) goto fail;
    root = parse_json(encoder_json, text, len, err);
    free(text);
    text = NULL;
    if (!root) {
        rc = BLURB_E_FORMAT;
        goto fail;
    }
    rc = builder_vocab(&b, root, 0, err);
    if (!rc) rc = builder_finish_vocab(&b, err);
    cJSON_Delete(root);
    root = NULL;
    builder_free(&b);
    if (rc) goto fail;
    rc = blurb_read_file(vocab_bpe, TOK_FILE_MAX, &text, &len, err);
    if (rc) goto fail;
    rc = parse_vocab_bpe(tok, vocab_bpe, text, len, err);
    free(text);
    if (rc) goto fail;
    rc = tok_finish(tok, err);
    if (rc) goto fail;
    *out = tok;
    return 0;
fail:
    builder_free(&b);
    blurb_tokenizer_free(tok);
    return rc;
}

/* ---- HF tokenizer.json ----------------------------------------------------------- */

static bool json_is_null_or_absent(const cJSON *j) { return !j || cJSON_IsNull(j); }

static bool json_is_empty_string(const cJSON *j) {
    return json_is_null_or_absent(j) || (cJSON_IsString(j) && j->valuestring[0] == '\0');
}

/* The parts of tokenizer.json that change how GPT-2 text is split; anything
 * blurb does not implement is refused rather than silently tokenized differently. */
static int hf_check_pipeline(blurb_tokenizer *tok, const cJSON *root, const char *path, blurb_err *err) {
    const cJSON *norm = cJSON_GetObjectItemCaseSensitive(root, "normalizer");
    if (!json_is_null_or_absent(norm))
        return blurb_seterr(err, BLURB_E_UNSUPPORTED, "%s: a normalizer is not supported (GPT-2 has none)", path);
    const cJSON *pre = cJSON_GetObjectItemCaseSensitive(root, "pre_tokenizer");
    const cJSON *type = pre ? cJSON_GetObjectItemCaseSensitive(pre, "type") : NULL;
    if (!cJSON_IsString(type) || strcmp(type->valuestring, "ByteLevel") != 0)
        return blurb_seterr(err, BLURB_E_UNSUPPORTED,
                            "%s: pre_tokenizer must be ByteLevel (the GPT-2 byte-level split)", path);
    const cJSON *use_regex = cJSON_GetObjectItemCaseSensitive(pre, "use_regex");
    if (use_regex && !cJSON_IsTrue(use_regex))
        return blurb_seterr(err, BLURB_E_UNSUPPORTED, "%s: ByteLevel use_regex=false is not supported", path);
    const cJSON *aps = cJSON_GetObjectItemCaseSensitive(pre, "add_prefix_space");
    if (aps && !cJSON_IsBool(aps))
        return blurb_seterr(err, BLURB_E_FORMAT, "%s: pre_tokenizer.add_prefix_space is not a boolean", path);
    tok->add_prefix_space = aps ? cJSON_IsTrue(aps) : true; /* HF's ByteLevel default */

    const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
    if (!cJSON_IsObject(model)) return blurb_seterr(err, BLURB_E_FORMAT, "%s: no \"model\" object", path);
    const cJSON *mtype = cJSON_GetObjectItemCaseSensitive(model, "type");
    if (mtype && (!cJSON_IsString(mtype) || strcmp(mtype->valuestring, "BPE") != 0))
        return blurb_seterr(err, BLURB_E_UNSUPPORTED, "%s: model type %s is not supported (only BPE)", path,
                            cJSON_IsString(mtype) ? mtype->valuestring : "?");
    if (!json_is_empty_string(cJSON_GetObjectItemCaseSensitive(model, "continuing_subword_prefix")) ||
        !json_is_empty_string(cJSON_GetObjectItemCaseSensitive(model, "end_of_word_suffix")))
        return blurb_seterr(err, BLURB_E_UNSUPPORTED,
                            "%s: BPE continuing_subword_prefix / end_of_word_suffix are not supported", path);
    const cJSON *dropout = cJSON_GetObjectItemCaseSensitive(model, "dropout");
    if (!json_is_null_or_absent(dropout) && !(cJSON_IsNumber(dropout) && dropout->valuedouble == 0.0))
        return blurb_seterr(err, BLURB_E_UNSUPPORTED, "%s: BPE dropout is not supported", path);
    const cJSON *ignore = cJSON_GetObjectItemCaseSensitive(model, "ignore_merges");
    tok->ignore_merges = cJSON_IsTrue(ignore);
    return 0;
}

/* added_tokens: only <|endoftext|> is accepted. Returns via *eot_extra_id the
 * id of an <|endoftext|> that is not in model.vocab (else -1). */
static int hf_added_tokens(const cJSON *root, const cJSON *vocab, const char *path, int32_t *eot_extra_id,
                           blurb_err *err) {
    *eot_extra_id = -1;
    const cJSON *added = cJSON_GetObjectItemCaseSensitive(root, "added_tokens");
    if (json_is_null_or_absent(added)) return 0;
    if (!cJSON_IsArray(added)) return blurb_seterr(err, BLURB_E_FORMAT, "%s: added_tokens is not a list", path);
    const cJSON *it;
    int idx = 0;
    cJSON_ArrayForEach(it, added) {
        const cJSON *content = cJSON_GetObjectItemCaseSensitive(it, "content");
        int32_t id, vid;
        if (!cJSON_IsString(content) || !json_id(cJSON_GetObjectItemCaseSensitive(it, "id"), &id))
            return blurb_seterr(err, BLURB_E_FORMAT, "%s: added_tokens[%d] lacks content or a valid id", path, idx);
        if (strcmp(content->valuestring, EOT_TEXT) != 0)
            return blurb_seterr(err, BLURB_E_UNSUPPORTED,
                                "%s: added token '%s' (id %d) is not supported (only <|endoftext|>)", path,
                                shown(content->valuestring, strlen(content->valuestring)).s, (int)id);
        const cJSON *in_vocab = cJSON_GetObjectItemCaseSensitive(vocab, EOT_TEXT);
        if (in_vocab) {
            if (!json_id(in_vocab, &vid) || vid != id)
                return blurb_seterr(err, BLURB_E_FORMAT,
                                    "%s: <|endoftext|> has id %d in added_tokens but another in model.vocab", path,
                                    (int)id);
        } else {
            if (*eot_extra_id >= 0 && *eot_extra_id != id)
                return blurb_seterr(err, BLURB_E_FORMAT, "%s: <|endoftext|> added twice", path);
            *eot_extra_id = id;
        }
        idx++;
    }
    return 0;
}

static int hf_merges(blurb_tokenizer *tok, const cJSON *merges, const char *path, blurb_err *err) {
    if (!cJSON_IsArray(merges)) return blurb_seterr(err, BLURB_E_FORMAT, "%s: model.merges is not a list", path);
    int n = cJSON_GetArraySize(merges);
    int rc = merges_alloc(tok, (size_t)n, path, err);
    if (rc) return rc;
    const cJSON *it;
    int i = 0;
    cJSON_ArrayForEach(it, merges) {
        char where[48];
        snprintf(where, sizeof where, "model.merges[%d]", i);
        if (cJSON_IsString(it)) { /* "a b" (tokenizers < 0.20) */
            const char *s = it->valuestring;
            const char *sp = strchr(s, ' ');
            if (!sp || strchr(sp + 1, ' '))
                return blurb_seterr(err, BLURB_E_FORMAT, "%s: %s: expected \"a b\"", path, where);
            rc = merge_add(tok, (uint32_t)i, s, (size_t)(sp - s), sp + 1, strlen(sp + 1), path, where, err);
        } else if (cJSON_IsArray(it) && cJSON_GetArraySize(it) == 2 &&
                   cJSON_IsString(cJSON_GetArrayItem(it, 0)) && cJSON_IsString(cJSON_GetArrayItem(it, 1))) {
            const char *a = cJSON_GetArrayItem(it, 0)->valuestring;
            const char *b = cJSON_GetArrayItem(it, 1)->valuestring;
            rc = merge_add(tok, (uint32_t)i, a, strlen(a), b, strlen(b), path, where, err);
        } else {
            return blurb_seterr(err, BLURB_E_FORMAT, "%s: %s: expected \"a b\" or [\"a\", \"b\"]", path, where);
        }
        if (rc) return rc;
        i++;
    }
    return 0;
}

static int load_hf_json(const char *path, blurb_tokenizer **out, blurb_err *err) {
    *out = NULL;
    blurb_tokenizer *tok = tok_alloc();
    if (!tok) return blurb_seterr(err, BLURB_E_NOMEM, "tokenizer: out of memory");
    tok_builder b = {.path = path, .tok = tok};
    char *text = NULL;
    size_t len = 0;
    cJSON *root = NULL;
    int rc = blurb_read_file(path, TOK_FILE_MAX, &text, &len, err);
    if (rc) goto done;
    root = parse_json(path, text, len, err);
    free(text);
    if (!root) {
        rc = BLURB_E_FORMAT;
        goto done;
    }
    rc = hf_check_pipeline(tok, root, path, err);
    if (rc) goto done;
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
    const cJSON *vocab = cJSON_GetObjectItemCaseSensitive(model, "vocab");
    int32_t eot_extra = -1;
    rc = hf_added_tokens(root, vocab, path, &eot_extra, err);
    if (rc) goto done;
    rc = builder_vocab(&b, vocab, eot_extra >= 0 ? 1 : 0, err);
    if (!rc && eot_extra >= 0) rc = builder_set(&b, eot_extra, EOT_TEXT, sizeof EOT_TEXT - 1, "<|endoftext|>", err);
    if (!rc) rc = builder_finish_vocab(&b, err);
    if (!rc) rc = hf_merges(tok, cJSON_GetObjectItemCaseSensitive(model, "merges"), path, err);
    if (!rc) rc = tok_finish(tok, err);
done:
    cJSON_Delete(root);
    builder_free(&b);
    if (rc) {
        blurb_tokenizer_free(tok);
        return rc;
    }
    *out = tok;
    return 0;
}

/* ---- blurb_tokenizer_load ------------------------------------------------------------ */

static int load_pair_in(const char *dir, int vocab_size, blurb_tokenizer **out, blurb_err *err) {
    char enc[4096], bpe[4096];
    int rc = join_path(enc, sizeof enc, dir, "encoder.json", err);
    if (!rc) rc = join_path(bpe, sizeof bpe, dir, "vocab.bpe", err);
    if (rc) return rc;
    rc = blurb_tokenizer_load_files(enc, bpe, out, err);
    if (!rc) rc = check_vocab_size(*out, vocab_size, enc, err);
    if (rc) {
        blurb_tokenizer_free(*out);
        *out = NULL;
    }
    return rc;
}

int blurb_tokenizer_load(const char *model_dir, int vocab_size, blurb_tokenizer **out, blurb_err *err) {
    *out = NULL;
    char path[4096];
    int rc;
    if (model_dir) {
        rc = join_path(path, sizeof path, model_dir, "tokenizer.json", err);
        if (rc) return rc;
        if (file_exists(path)) {
            rc = load_hf_json(path, out, err);
            if (!rc) rc = check_vocab_size(*out, vocab_size, path, err);
            if (rc) {
                blurb_tokenizer_free(*out);
                *out = NULL;
            }
            return rc;
        }
        char enc[4096], bpe[4096];
        rc = join_path(enc, sizeof enc, model_dir, "encoder.json", err);
        if (!rc) rc = join_path(bpe, sizeof bpe, model_dir, "vocab.bpe", err);
        if (rc) return rc;
        bool has_enc = file_exists(enc), has_bpe = file_exists(bpe);
        if (has_enc && has_bpe) return load_pair_in(model_dir, vocab_size, out, err);
        if (has_enc != has_bpe)
            return blurb_seterr(err, BLURB_E_FORMAT, "%s: has %s but not %s", model_dir,
                                has_enc ? "encoder.json" : "vocab.bpe", has_enc ? "vocab.bpe" : "encoder.json");
    }
    /* The model ships no tokenizer: GPT-2's own, from the source tree or the install. */
    static const char *const fallbacks[] = {BLURB_SOURCE_DIR "/weights/tokenizer",
                                            BLURB_INSTALL_DATADIR "/tokenizer"};
    for (size_t i = 0; i < sizeof fallbacks / sizeof *fallbacks; i++) {
        rc = join_path(path, sizeof path, fallbacks[i], "encoder.json", err);
        if (rc) return rc;
        if (file_exists(path)) return load_pair_in(fallbacks[i], vocab_size, out, err);
    }
    return blurb_seterr(err, BLURB_E_IO,
                        "no tokenizer found: looked for tokenizer.json or encoder.json + vocab.bpe in %s, then "
                        "%s, then %s",
                        model_dir ? model_dir : "(no model directory)", fallbacks[0], fallbacks[1]);
}

/* ---- queries ------------------------------------------------------------------------------ */

int blurb_tokenizer_vocab_size(const blurb_tokenizer *tok) { return tok->n_vocab; }

int blurb_tokenizer_eot_id(const blurb_tokenizer *tok) { return tok->eot_id; }

const char *blurb_tokenizer_token_bytes(const blurb_tokenizer *tok, int32_t id, size_t *len) {
    if (id < 0 || id >= tok->n_vocab) {
        if (len) *len = 0;
        return NULL;
    }
    if (len) *len = tok->offs[id + 1] - tok->offs[id];
    return tok->blob + tok->offs[id];
}
