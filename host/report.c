#include "blurb/report.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "read_file.h"

/* ---- a set of byte strings (open addressing, FNV-1a) ----------------------- */

typedef struct sset_entry {
    char *key;       /* owned, NULL = empty slot */
    size_t len;
    uint64_t hash;
    long tag;        /* text set: first line seen */
    bool multi;      /* text set: seen on two different lines */
} sset_entry;

typedef struct sset {
    sset_entry *e;
    size_t cap;      /* power of two */
    size_t n;
} sset;

static uint64_t fnv1a(const char *s, size_t n) {
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ull;
    }
    return h;
}

static void sset_free(sset *s) {
    for (size_t i = 0; i < s->cap; i++) free(s->e[i].key);
    free(s->e);
    memset(s, 0, sizeof *s);
}

static void sset_clear(sset *s) {
    for (size_t i = 0; i < s->cap && s->n; i++)
        if (s->e[i].key) {
            free(s->e[i].key);
            s->e[i].key = NULL;
            s->n--;
        }
    s->n = 0;
}

static sset_entry *sset_slot(sset_entry *e, size_t cap, const char *k, size_t n, uint64_t h) {
    size_t i = (size_t)h & (cap - 1);
    while (e[i].key && !(e[i].hash == h && e[i].len == n && memcmp(e[i].key, k, n) == 0)) i = (i + 1) & (cap - 1);
    return &e[i];
}

/* Finds or adds k. *added says which. Returns the entry, NULL when out of memory. */
static sset_entry *sset_add(sset *s, const char *k, size_t n, bool *added) {
    if (2 * (s->n + 1) > s->cap) {
        size_t nc = s->cap ? 2 * s->cap : 64;
        sset_entry *ne = calloc(nc, sizeof *ne);
        if (!ne) return NULL;
        for (size_t i = 0; i < s->cap; i++)
            if (s->e[i].key) *sset_slot(ne, nc, s->e[i].key, s->e[i].len, s->e[i].hash) = s->e[i];
        free(s->e);
        s->e = ne;
        s->cap = nc;
    }
    uint64_t h = fnv1a(k, n);
    sset_entry *x = sset_slot(s->e, s->cap, k, n, h);
    *added = !x->key;
    if (x->key) return x;
    if (!(x->key = malloc(n ? n : 1))) return NULL;
    memcpy(x->key, k, n);
    x->len = n;
    x->hash = h;
    x->tag = 0;
    x->multi = false;
    s->n++;
    return x;
}

/* ---- words ---------------------------------------------------------------------- */

static bool is_sep(unsigned char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r' ||
           (c >= 0x21 && c <= 0x2f) || (c >= 0x3a && c <= 0x40) || (c >= 0x5b && c <= 0x60) ||
           (c >= 0x7b && c <= 0x7e);
}

typedef struct words {
    char *buf;       /* lowercased words, each followed by ' ' */
    size_t *start;   /* [n] offsets into buf */
    size_t *len;     /* [n] */
    size_t n, cap;
} words;

static int split_words(const char *t, size_t n, words *w) {
    w->n = 0;
    free(w->buf);
    if (!(w->buf = malloc(n + 1))) return -1;
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        while (i < n && is_sep((unsigned char)t[i])) i++;
        if (i == n) break;
        size_t a = o;
        while (i < n && !is_sep((unsigned char)t[i])) {
            char c = t[i++];
            w->buf[o++] = c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
        }
        if (w->n == w->cap) {
            size_t nc = w->cap ? 2 * w->cap : 64;
            size_t *ns = realloc(w->start, nc * sizeof *ns);
            if (!ns) return -1;
            w->start = ns;
            size_t *nl = realloc(w->len, nc * sizeof *nl);
            if (!nl) return -1;
            w->len = nl;
            w->cap = nc;
        }
        w->start[w->n] = a;
        w->len[w->n++] = o - a;
        w->buf[o++] = ' ';
    }
    return 0;
}

/* The k words from i joined by single spaces: buf[start[i], start[i+k-1] + len[i+k-1]).
 * Words are stored one space apart, so the n-gram is one contiguous span. */
static size_t ngram_len(const words *w, size_t i, size_t k) { return w->start[i + k - 1] + w->len[i + k - 1] - w->start[i]; }

/* ---- the report ---------------------------------------------------------------- */

static bool is_digit(char c) { return c >= '0' && c <= '9'; }

/* Characters of a "token" for reason_key: letters, digits, '_', '.', '-', '+'. */
static bool token_char(char c) {
    return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == '.' || c == '-' ||
           c == '+';
}

/* Whether t [0, n) is a number: -?digits(.digits)?([eE][+-]?digits)?. */
static bool is_number(const char *t, size_t n) {
    size_t i = t[0] == '-' ? 1 : 0, d0 = i;
    while (i < n && is_digit(t[i])) i++;
    if (i == d0) return false;
    if (i < n && t[i] == '.') {
        size_t f0 = ++i;
        while (i < n && is_digit(t[i])) i++;
        if (i == f0) return false;
    }
    if (i < n && (t[i] == 'e' || t[i] == 'E')) {
        i++;
        if (i < n && (t[i] == '+' || t[i] == '-')) i++;
        size_t e0 = i;
        while (i < n && is_digit(t[i])) i++;
        if (i == e0) return false;
    }
    return i == n;
}

/* A reason with every number that stands alone (-1, 12, 2.5, 1e5; not the
 * digits of a word such as UTF-8, size2 or 0xEF) replaced by N (malloc'ed;
 * NULL when out of memory). A token ending a sentence keeps its '.'. */
static char *reason_key(const char *r) {
    char *k = malloc(strlen(r) + 1);
    if (!k) return NULL;
    size_t n = 0;
    for (const char *p = r; *p;) {
        if (!token_char(*p)) {
            k[n++] = *p++;
            continue;
        }
        size_t len = 0;
        while (token_char(p[len])) len++;
        size_t core = len;
        while (core > 0 && p[core - 1] == '.') core--;
        if (core > 0 && is_number(p, core)) {
            k[n++] = 'N';
            memcpy(k + n, p + core, len - core);
            n += len - core;
        } else {
            memcpy(k + n, p, len);
            n += len;
        }
        p += len;
    }
    k[n] = '\0';
    return k;
}

int blurb_report_compute(const char *data, size_t len, char **json, blurb_err *err) {
    *json = NULL;
    int rc = 0;
    long records = 0, n_err = 0, outputs = 0, n_length = 0, n_rep4 = 0, n_dup = 0;
    long long uni_total = 0, bi_total = 0;
    long *hist = NULL;
    size_t n_hist = 0;
    sset uni = {0}, bi = {0}, four = {0}, texts = {0};
    words w = {0};
    /* every output's text, to count duplicates after all lines are known */
    char **otext = NULL;
    size_t *olen = NULL, n_o = 0, cap_o = 0;
    cJSON *reasons = cJSON_CreateObject(), *rep = NULL;
    if (!reasons) goto nomem;

    long file_line = 0;
    for (size_t pos = 0; pos < len;) {
        const char *nl = memchr(data + pos, '\n', len - pos);
        size_t l = nl ? (size_t)(nl - (data + pos)) : len - pos;
        const char *line = data + pos;
        pos += l + (nl ? 1 : 0);
        file_line++;
        size_t k = 0;
        while (k < l && (line[k] == ' ' || line[k] == '\t' || line[k] == '\r')) k++;
        if (k == l) continue;
        cJSON *root = cJSON_ParseWithLength(line, l);
        const cJSON *ln = root ? cJSON_GetObjectItemCaseSensitive(root, "line") : NULL;
        const cJSON *er = root ? cJSON_GetObjectItemCaseSensitive(root, "error") : NULL;
        const cJSON *outs = root ? cJSON_GetObjectItemCaseSensitive(root, "outputs") : NULL;
        if (!cJSON_IsNumber(ln) || !(ln->valuedouble >= 1 && ln->valuedouble < 9e18) ||
            !(cJSON_IsString(er) || cJSON_IsArray(outs))) {
            cJSON_Delete(root);
            rc = blurb_seterr(err, BLURB_E_FORMAT, "line %ld is not a blurb output record", file_line);
            goto done;
        }
        long line_no = (long)ln->valuedouble;
        records++;
        if (cJSON_IsString(er)) {
            n_err++;
            char *key = reason_key(er->valuestring);
            cJSON *c = key ? cJSON_GetObjectItemCaseSensitive(reasons, key) : NULL;
            if (c) cJSON_SetNumberValue(c, c->valuedouble + 1);
            else if (!key || !cJSON_AddNumberToObject(reasons, key, 1)) {
                free(key);
                cJSON_Delete(root);
                goto nomem;
            }
            free(key);
            cJSON_Delete(root);
            continue;
        }
        const cJSON *o;
        cJSON_ArrayForEach(o, outs) {
            const cJSON *tx = cJSON_GetObjectItemCaseSensitive(o, "text");
            const cJSON *tk = cJSON_GetObjectItemCaseSensitive(o, "tokens");
            const cJSON *fr = cJSON_GetObjectItemCaseSensitive(o, "finish_reason");
            /* No model has a context near 2^24 tokens: a larger count is not a blurb record. */
            if (!cJSON_IsString(tx) || !cJSON_IsNumber(tk) || !(tk->valuedouble >= 0 && tk->valuedouble < 16777216.0) ||
                !cJSON_IsString(fr)) {
                cJSON_Delete(root);
                rc = blurb_seterr(err, BLURB_E_FORMAT, "line %ld: an output lacks text, tokens (0 .. 2^24) or finish_reason",
                                  file_line);
                goto done;
            }
            outputs++;
            size_t bin = (size_t)(tk->valuedouble / 16);
            if (bin >= n_hist) {
                long *nh = realloc(hist, (bin + 1) * sizeof *nh);
                if (!nh) {
                    cJSON_Delete(root);
                    goto nomem;
                }
                memset(nh + n_hist, 0, (bin + 1 - n_hist) * sizeof *nh);
                hist = nh;
                n_hist = bin + 1;
            }
            hist[bin]++;
            if (strcmp(fr->valuestring, "length") == 0) n_length++;

            const char *t = tx->valuestring;
            size_t tl = strlen(t);
            bool added;
            sset_entry *te = sset_add(&texts, t, tl, &added);
            if (!te) {
                cJSON_Delete(root);
                goto nomem;
            }
            if (added) te->tag = line_no;
            else if (te->tag != line_no) te->multi = true;
            if (n_o == cap_o) {
                size_t nc = cap_o ? 2 * cap_o : 256;
                char **nt = realloc(otext, nc * sizeof *nt);
                if (!nt) {
                    cJSON_Delete(root);
                    goto nomem;
                }
                otext = nt;
                size_t *nlen = realloc(olen, nc * sizeof *nlen);
                if (!nlen) {
                    cJSON_Delete(root);
                    goto nomem;
                }
                olen = nlen;
                cap_o = nc;
            }
            otext[n_o] = te->key; /* owned by the set, which only grows */
            olen[n_o++] = tl;

            if (split_words(t, tl, &w)) {
                cJSON_Delete(root);
                goto nomem;
            }
            bool rep4 = false;
            sset_clear(&four);
            for (size_t i = 0; i < w.n; i++) {
                if (!sset_add(&uni, w.buf + w.start[i], w.len[i], &added)) goto nomem_root;
                uni_total++;
                if (i + 1 < w.n) {
                    if (!sset_add(&bi, w.buf + w.start[i], ngram_len(&w, i, 2), &added)) goto nomem_root;
                    bi_total++;
                }
                if (i + 3 < w.n && !rep4) {
                    if (!sset_add(&four, w.buf + w.start[i], ngram_len(&w, i, 4), &added)) goto nomem_root;
                    if (!added) rep4 = true;
                }
            }
            if (rep4) n_rep4++;
            continue;
        nomem_root:
            cJSON_Delete(root);
            goto nomem;
        }
        cJSON_Delete(root);
    }
    for (size_t i = 0; i < n_o; i++) {
        bool added;
        sset_entry *te = sset_add(&texts, otext[i], olen[i], &added);
        if (te && te->multi) n_dup++;
    }

    rep = cJSON_CreateObject();
    if (!rep) goto nomem;
    cJSON *hist_a = cJSON_CreateArray();
    if (!hist_a || !cJSON_AddNumberToObject(rep, "records", (double)records) ||
        !cJSON_AddNumberToObject(rep, "error_records", (double)n_err) ||
        !cJSON_AddNumberToObject(rep, "outputs", (double)outputs)) {
        cJSON_Delete(hist_a);
        goto nomem;
    }
    cJSON_AddItemToObject(rep, "length_histogram", hist_a);
    for (size_t b = 0; b < n_hist; b++) {
        cJSON *bo = cJSON_CreateObject();
        if (!bo) goto nomem;
        cJSON_AddItemToArray(hist_a, bo);
        if (!cJSON_AddNumberToObject(bo, "from", (double)(16 * b)) ||
            !cJSON_AddNumberToObject(bo, "to", (double)(16 * b + 15)) ||
            !cJSON_AddNumberToObject(bo, "count", (double)hist[b]))
            goto nomem;
    }
    struct {
        const char *name;
        double num, den;
    } ratios[] = {
        {"distinct_1", (double)uni.n, (double)uni_total},
        {"distinct_2", (double)bi.n, (double)bi_total},
        {"repeated_4gram_share", (double)n_rep4, (double)outputs},
        {"length_share", (double)n_length, (double)outputs},
        {"duplicate_share", (double)n_dup, (double)outputs},
    };
    for (size_t i = 0; i < sizeof ratios / sizeof ratios[0]; i++) {
        cJSON *v = ratios[i].den > 0 ? cJSON_CreateNumber(ratios[i].num / ratios[i].den) : cJSON_CreateNull();
        if (!v) goto nomem;
        cJSON_AddItemToObject(rep, ratios[i].name, v);
    }
    cJSON_AddItemToObject(rep, "errors_by_reason", reasons);
    reasons = NULL;
    char *txt = cJSON_Print(rep);
    if (!txt) goto nomem;
    size_t tl = strlen(txt);
    if (!(*json = malloc(tl + 2))) {
        cJSON_free(txt);
        goto nomem;
    }
    memcpy(*json, txt, tl);
    (*json)[tl] = '\n';
    (*json)[tl + 1] = '\0';
    cJSON_free(txt);
    goto done;

nomem:
    rc = blurb_seterr(err, BLURB_E_NOMEM, "out of memory computing the report");
done:
    cJSON_Delete(reasons);
    cJSON_Delete(rep);
    sset_free(&uni);
    sset_free(&bi);
    sset_free(&four);
    sset_free(&texts);
    free(w.buf);
    free(w.start);
    free(w.len);
    free(otext);
    free(olen);
    free(hist);
    return rc;
}

int blurb_report_file(const char *in_path, const char *out_path, blurb_err *err) {
    char *data = NULL, *json = NULL;
    size_t len = 0;
    int rc = blurb_read_file(in_path, SIZE_MAX / 2, &data, &len, err);
    if (rc) return rc;
    rc = blurb_report_compute(data, len, &json, err);
    free(data);
    if (rc) return blurb_err_prefix(err, "%s", in_path);
    bool to_stdout = strcmp(out_path, "-") == 0;
    FILE *f = to_stdout ? stdout : fopen(out_path, "wb");
    if (!f) {
        rc = blurb_seterr(err, BLURB_E_IO, "%s: cannot open for writing: %s", out_path, strerror(errno));
    } else {
        size_t n = strlen(json);
        bool ok = fwrite(json, 1, n, f) == n;
        ok = (to_stdout ? fflush(f) == 0 : fclose(f) == 0) && ok;
        if (!ok) rc = blurb_seterr(err, BLURB_E_IO, "writing %s failed: %s", out_path, strerror(errno));
    }
    free(json);
    return rc;
}
