#include "blurb/examples.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "strbuf.h"

typedef struct example {
    char *brand;
    char *id;            /* id text (blurb_record id_key) or NULL when the line has no "id" */
    size_t id_len;
    char *title;         /* lower-cased, "" when missing */
    int32_t *ids;        /* encode(prompt + " " + description) */
    size_t n_ids;
} example;

struct blurb_examples {
    const blurb_template *tmpl;
    const blurb_tokenizer *tok;
    int k;
    int n_ctx;
    example *ex;
    size_t n;
};

static char *lower_dup(const char *s) {
    size_t n = strlen(s);
    char *d = malloc(n + 1);
    if (!d) return NULL;
    for (size_t i = 0; i <= n; i++) d[i] = (s[i] >= 'A' && s[i] <= 'Z') ? (char)(s[i] - 'A' + 'a') : s[i];
    return d;
}

static bool word_byte(unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c >= 0x80;
}

/* Next word of lower-cased s from *pos: its start and length, 0 at the end. */
static size_t next_word(const char *s, size_t *pos, const char **w) {
    size_t i = *pos;
    while (s[i] && !word_byte((unsigned char)s[i])) i++;
    size_t a = i;
    while (s[i] && word_byte((unsigned char)s[i])) i++;
    *pos = i;
    *w = s + a;
    return i - a;
}

static bool has_word(const char *s, const char *w, size_t n) {
    size_t pos = 0;
    const char *x;
    size_t m;
    while ((m = next_word(s, &pos, &x)) > 0)
        if (m == n && memcmp(x, w, n) == 0) return true;
    return false;
}

/* Distinct words of a that are first seen at their position (set size). */
static size_t distinct_words(const char *a, size_t *shared_with, const char *b) {
    size_t pos = 0, n = 0, shared = 0;
    const char *w;
    size_t m;
    while ((m = next_word(a, &pos, &w)) > 0) {
        /* counted once: only when no earlier occurrence in a */
        bool seen = false;
        size_t p2 = 0;
        const char *x;
        size_t k;
        while ((k = next_word(a, &p2, &x)) > 0 && x < w)
            if (k == m && memcmp(x, w, m) == 0) {
                seen = true;
                break;
            }
        if (seen) continue;
        n++;
        if (b && has_word(b, w, m)) shared++;
    }
    if (shared_with) *shared_with = shared;
    return n;
}

/* Jaccard overlap of the word sets of two lower-cased titles. */
static double title_jaccard(const char *a, const char *b) {
    size_t shared;
    size_t na = distinct_words(a, &shared, b);
    size_t nb = distinct_words(b, NULL, NULL);
    size_t uni = na + nb - shared;
    return uni ? (double)shared / (double)uni : 0.0;
}

static void example_clear(example *e) {
    free(e->brand);
    free(e->id);
    free(e->title);
    free(e->ids);
}

void blurb_examples_free(blurb_examples *ex) {
    if (!ex) return;
    for (size_t i = 0; i < ex->n; i++) example_clear(&ex->ex[i]);
    free(ex->ex);
    free(ex);
}

size_t blurb_examples_count(const blurb_examples *ex) { return ex->n; }

static bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'; }

/* One example line into e. why gets the reason (without the line number). */
static int load_one(blurb_examples *ex, const blurb_record *rec, example *e, blurb_err *why) {
    const cJSON *brand = cJSON_GetObjectItemCaseSensitive(rec->root, "brand");
    const cJSON *desc = cJSON_GetObjectItemCaseSensitive(rec->root, "description");
    const cJSON *title = cJSON_GetObjectItemCaseSensitive(rec->root, "title");
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(rec->root, "id");
    if (!cJSON_IsString(brand)) return blurb_seterr(why, BLURB_E_FORMAT, "missing required field 'brand' (a string)");
    if (!cJSON_IsString(desc)) return blurb_seterr(why, BLURB_E_FORMAT, "missing required field 'description' (a string)");
    const char *d = desc->valuestring;
    size_t dl = strlen(d);
    while (dl && is_space(*d)) d++, dl--;
    while (dl && is_space(d[dl - 1])) dl--;
    if (!dl) return blurb_seterr(why, BLURB_E_FORMAT, "'description' is empty");
    char *prompt = NULL;
    size_t plen = 0;
    int rc = blurb_template_render(ex->tmpl, rec, &prompt, &plen, why);
    if (rc) return rc;
    strbuf b = {0};
    rc = sb_put(&b, prompt, plen);
    free(prompt);
    if (!rc) rc = sb_putc(&b, ' ');
    if (!rc) rc = sb_put(&b, d, dl);
    if (rc) {
        sb_free(&b);
        return blurb_seterr(why, BLURB_E_NOMEM, "out of memory");
    }
    rc = blurb_tokenizer_encode(ex->tok, b.p, b.len, false, &e->ids, &e->n_ids, why);
    sb_free(&b);
    if (rc) return rc == BLURB_E_NOMEM ? rc : blurb_seterr(why, BLURB_E_FORMAT, "%s", why->msg);
    e->brand = strdup(brand->valuestring);
    e->title = lower_dup(cJSON_IsString(title) ? title->valuestring : "");
    if (id && (cJSON_IsString(id) || cJSON_IsNumber(id))) {
        e->id_len = rec->id_key_len;
        e->id = malloc(rec->id_key_len + 1);
        if (e->id) memcpy(e->id, rec->id_key, rec->id_key_len + 1);
        if (!e->id) return blurb_seterr(why, BLURB_E_NOMEM, "out of memory");
    }
    if (!e->brand || !e->title) return blurb_seterr(why, BLURB_E_NOMEM, "out of memory");
    return 0;
}

int blurb_examples_load(const char *path, const blurb_template *tmpl, const blurb_tokenizer *tok, int k, int n_ctx,
                        blurb_examples **out, blurb_err *err) {
    *out = NULL;
    if (!path || !tmpl || !tok || k < 0 || n_ctx < 1)
        return blurb_seterr(err, BLURB_E_INVALID, "examples: bad arguments (k %d, n_ctx %d)", k, n_ctx);
    blurb_catalog *cat = NULL;
    int rc = blurb_catalog_read(path, &cat, err);
    if (rc) return blurb_err_prefix(err, "examples");
    blurb_examples *ex = calloc(1, sizeof *ex);
    if (!ex || !(ex->ex = calloc(cat->n_lines ? cat->n_lines : 1, sizeof *ex->ex))) {
        free(ex);
        blurb_catalog_free(cat);
        return blurb_seterr(err, BLURB_E_NOMEM, "examples: out of memory");
    }
    ex->tmpl = tmpl;
    ex->tok = tok;
    ex->k = k;
    ex->n_ctx = n_ctx;
    for (size_t i = 0; i < cat->n_lines && !rc; i++) {
        const blurb_catalog_line *l = &cat->lines[i];
        blurb_record rec;
        blurb_err why;
        blurb_err_clear(&why);
        rc = blurb_record_parse(cat->data + l->off, l->len, l->line_no, &rec, &why);
        if (!rc) rc = load_one(ex, &rec, &ex->ex[ex->n++], &why);
        if (rc) rc = blurb_seterr(err, rc == BLURB_E_NOMEM ? rc : BLURB_E_FORMAT, "examples %s line %ld: %s", path,
                                  l->line_no, why.msg);
        blurb_record_clear(&rec);
    }
    blurb_catalog_free(cat);
    if (rc) {
        blurb_examples_free(ex);
        return rc;
    }
    *out = ex;
    return 0;
}

typedef struct pick {
    size_t idx;
    double score;
} pick;

/* Best first: higher score, then earlier in the file. */
static int pick_cmp(const void *a, const void *b) {
    const pick *x = a, *y = b;
    if (x->score != y->score) return x->score > y->score ? -1 : 1;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

int blurb_examples_prompt(const blurb_examples *ex, const blurb_record *rec, int max_new_tokens, int eos_id,
                          int32_t **ids, size_t *n_ids, int *n_used, blurb_err *why) {
    *ids = NULL;
    *n_ids = 0;
    if (n_used) *n_used = 0;
    char *prompt = NULL;
    size_t plen = 0;
    int rc = blurb_template_render(ex->tmpl, rec, &prompt, &plen, why);
    if (rc) return rc;
    int32_t *own = NULL;
    size_t n_own = 0;
    rc = blurb_tokenizer_encode(ex->tok, prompt, plen, false, &own, &n_own, why);
    free(prompt);
    if (rc) return rc == BLURB_E_NOMEM ? rc : blurb_seterr(why, BLURB_E_FORMAT, "%s", why->msg);

    const cJSON *brand = cJSON_GetObjectItemCaseSensitive(rec->root, "brand");
    const cJSON *title = cJSON_GetObjectItemCaseSensitive(rec->root, "title");
    bool has_id = cJSON_GetObjectItemCaseSensitive(rec->root, "id") != NULL;
    pick *picks = NULL;
    size_t n_picks = 0;
    if (ex->k > 0 && cJSON_IsString(brand)) {
        char *t = lower_dup(cJSON_IsString(title) ? title->valuestring : "");
        picks = calloc(ex->n ? ex->n : 1, sizeof *picks);
        if (!t || !picks) {
            free(t);
            free(picks);
            free(own);
            return blurb_seterr(why, BLURB_E_NOMEM, "out of memory");
        }
        for (size_t i = 0; i < ex->n; i++) {
            const example *e = &ex->ex[i];
            if (strcmp(e->brand, brand->valuestring) != 0) continue;
            if (has_id && e->id && e->id_len == rec->id_key_len && memcmp(e->id, rec->id_key, e->id_len) == 0)
                continue;
            picks[n_picks++] = (pick){i, title_jaccard(t, e->title)};
        }
        free(t);
        qsort(picks, n_picks, sizeof *picks, pick_cmp);
        if (n_picks > (size_t)ex->k) n_picks = (size_t)ex->k;
    }
    /* Drop the least similar (the last picked) until the new tokens fit. */
    size_t sep = eos_id >= 0 ? 1 : 0;
    size_t total = n_own;
    for (size_t i = 0; i < n_picks; i++) total += ex->ex[picks[i].idx].n_ids + sep;
    size_t room = (size_t)ex->n_ctx;
    size_t want = max_new_tokens > 0 ? (size_t)max_new_tokens : 1;
    while (n_picks > 0 && total + want > room) {
        n_picks--;
        total -= ex->ex[picks[n_picks].idx].n_ids + sep;
    }
    int32_t *all = malloc((total ? total : 1) * sizeof *all);
    if (!all) {
        free(picks);
        free(own);
        return blurb_seterr(why, BLURB_E_NOMEM, "out of memory");
    }
    size_t at = 0;
    for (size_t i = n_picks; i-- > 0;) { /* least similar first, the best next to the product */
        const example *e = &ex->ex[picks[i].idx];
        memcpy(all + at, e->ids, e->n_ids * sizeof *all);
        at += e->n_ids;
        if (sep) all[at++] = (int32_t)eos_id;
    }
    if (n_own) memcpy(all + at, own, n_own * sizeof *all);
    at += n_own;
    free(picks);
    free(own);
    *ids = all;
    *n_ids = at;
    if (n_used) *n_used = (int)n_picks;
    return 0;
}

static int prepare(void *ctx, const blurb_record *rec, blurb_job_request *req, blurb_err *why) {
    const blurb_examples *ex = ctx;
    return blurb_examples_prompt(ex, rec, req->max_new_tokens, req->sampling.eos_token_id, &req->prompt,
                                 &req->n_prompt, NULL, why);
}

blurb_job_hooks blurb_examples_hooks(blurb_examples *ex) {
    blurb_job_hooks h;
    memset(&h, 0, sizeof h);
    h.ctx = ex;
    h.prepare = prepare;
    return h;
}
