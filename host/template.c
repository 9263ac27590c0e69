#include "blurb/template.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "blurb/utf8.h"
#include "strbuf.h"

enum seg_kind { SEG_TEXT, SEG_FIELD };

typedef struct seg {
    enum seg_kind kind;
    size_t off, len;   /* SEG_TEXT: bytes of t->text; SEG_FIELD: the name as written (without '?') */
    char **path;       /* SEG_FIELD: path components, NUL-terminated */
    int n_path;
    bool optional;
} seg;

typedef struct line {
    int first, end;    /* segments [first, end) */
    bool has_newline;  /* ends with a newline (the last segment's text ends with '\n') */
} line;

struct blurb_template {
    char *text;  /* literal text pieces, braces unescaped, and field names */
    size_t text_len;
    seg *segs;
    int n_segs, cap_segs;
    line *lines;
    int n_lines, cap_lines;
};

static const char default_template[] =
    "Product: {title}\nBrand: {brand?}\nCategory: {category?}\nDescription:";

const char *blurb_template_default_text(void) { return default_template; }

void blurb_template_free(blurb_template *t) {
    if (!t) return;
    for (int i = 0; i < t->n_segs; i++) {
        for (int k = 0; k < t->segs[i].n_path; k++) free(t->segs[i].path[k]);
        free(t->segs[i].path);
    }
    free(t->segs);
    free(t->lines);
    free(t->text);
    free(t);
}

static seg *push_seg(blurb_template *t) {
    if (t->n_segs == t->cap_segs) {
        int cap = t->cap_segs ? t->cap_segs * 2 : 16;
        seg *s = realloc(t->segs, (size_t)cap * sizeof *s);
        if (!s) return NULL;
        t->segs = s;
        t->cap_segs = cap;
    }
    seg *s = &t->segs[t->n_segs++];
    memset(s, 0, sizeof *s);
    return s;
}

static int end_line(blurb_template *t, bool has_newline) {
    if (t->n_lines == t->cap_lines) {
        int cap = t->cap_lines ? t->cap_lines * 2 : 8;
        line *l = realloc(t->lines, (size_t)cap * sizeof *l);
        if (!l) return BLURB_E_NOMEM;
        t->lines = l;
        t->cap_lines = cap;
    }
    int first = t->n_lines ? t->lines[t->n_lines - 1].end : 0;
    t->lines[t->n_lines++] = (line){first, t->n_segs, has_newline};
    return 0;
}

/* Appends pending literal bytes text_buf[from, len) as one text segment. */
static int flush_text(blurb_template *t, const strbuf *b, size_t *from) {
    if (b->len == *from) return 0;
    seg *s = push_seg(t);
    if (!s) return BLURB_E_NOMEM;
    s->kind = SEG_TEXT;
    s->off = *from;
    s->len = b->len - *from;
    *from = b->len;
    return 0;
}

static int split_path(seg *s, const char *name, size_t len) {
    int n = 1;
    for (size_t i = 0; i < len; i++) n += name[i] == '.';
    s->path = calloc((size_t)n, sizeof *s->path);
    if (!s->path) return BLURB_E_NOMEM;
    size_t start = 0;
    for (int k = 0; k < n; k++) {
        size_t e = start;
        while (e < len && name[e] != '.') e++;
        if (e == start) return BLURB_E_INVALID;
        s->path[k] = malloc(e - start + 1);
        if (!s->path[k]) return BLURB_E_NOMEM;
        memcpy(s->path[k], name + start, e - start);
        s->path[k][e - start] = '\0';
        s->n_path = k + 1;
        start = e + 1;
    }
    return 0;
}

int blurb_template_parse(const char *text, size_t len, blurb_template **out, blurb_err *err) {
    *out = NULL;
    size_t bad;
    if (!blurb_utf8_valid(text, len, &bad))
        return blurb_seterr(err, BLURB_E_INVALID, "template: invalid UTF-8 at byte %zu", bad);
    blurb_template *t = calloc(1, sizeof *t);
    if (!t) return blurb_seterr(err, BLURB_E_NOMEM, "template: out of memory");
    strbuf b = {0};
    size_t from = 0;      /* start of the pending literal text in b */
    int lineno = 1;
    size_t line_start = 0;
    int rc = 0;
#define FAIL(code, ...) do { rc = blurb_seterr(err, code, __VA_ARGS__); goto fail; } while (0)
#define OOM() FAIL(BLURB_E_NOMEM, "template: out of memory")
    for (size_t i = 0; i < len; i++) {
        char c = text[i];
        if (c == '{' && i + 1 < len && text[i + 1] == '{') {
            if (sb_putc(&b, '{')) OOM();
            i++;
        } else if (c == '}' && i + 1 < len && text[i + 1] == '}') {
            if (sb_putc(&b, '}')) OOM();
            i++;
        } else if (c == '}') {
            FAIL(BLURB_E_INVALID, "template line %d column %zu: unmatched '}' (write }} for a literal brace)", lineno,
                 i - line_start + 1);
        } else if (c == '{') {
            size_t j = i + 1;
            while (j < len && text[j] != '}' && text[j] != '{' && text[j] != '\n' && text[j] != '\r') j++;
            if (j >= len || text[j] != '}')
                FAIL(BLURB_E_INVALID, "template line %d column %zu: unclosed '{' (write {{ for a literal brace)",
                     lineno, i - line_start + 1);
            const char *name = text + i + 1;
            size_t nlen = j - i - 1;
            bool optional = nlen > 0 && name[nlen - 1] == '?';
            if (optional) nlen--;
            if (flush_text(t, &b, &from)) OOM();
            seg *s = push_seg(t);
            if (!s) OOM();
            s->kind = SEG_FIELD;
            s->optional = optional;
            s->off = b.len;
            s->len = nlen;
            if (sb_put(&b, name, nlen)) OOM();
            from = b.len;
            int prc = nlen ? split_path(s, name, nlen) : BLURB_E_INVALID;
            if (prc == BLURB_E_NOMEM) OOM();
            if (prc)
                FAIL(BLURB_E_INVALID, "template line %d column %zu: bad field name '{%.*s}'", lineno,
                     i - line_start + 1, (int)(j - i - 1), name);
            i = j;
        } else if (c == '\n') {
            if (sb_putc(&b, '\n')) OOM();
            if (flush_text(t, &b, &from)) OOM();
            if (end_line(t, true)) OOM();
            lineno++;
            line_start = i + 1;
        } else {
            if (sb_putc(&b, c)) OOM();
        }
    }
    if (flush_text(t, &b, &from)) OOM();
    if (t->n_segs > (t->n_lines ? t->lines[t->n_lines - 1].end : 0) || t->n_lines == 0)
        if (end_line(t, false)) OOM();
#undef FAIL
#undef OOM
    t->text = b.p ? b.p : calloc(1, 1);
    t->text_len = b.len;
    if (!t->text) {
        blurb_template_free(t);
        return blurb_seterr(err, BLURB_E_NOMEM, "template: out of memory");
    }
    *out = t;
    return 0;
fail:
    sb_free(&b);
    blurb_template_free(t);
    return rc;
}

int blurb_template_from_arg(const char *arg, blurb_template **out, blurb_err *err) {
    *out = NULL;
    if (!arg) return blurb_template_parse(default_template, sizeof default_template - 1, out, err);
    if (arg[0] != '@') return blurb_template_parse(arg, strlen(arg), out, err);
    const char *path = arg + 1;
    FILE *f = fopen(path, "rb");
    if (!f) return blurb_seterr(err, BLURB_E_IO, "template %s: cannot open: %s", path, strerror(errno));
    strbuf b = {0};
    char chunk[4096];
    size_t got;
    int rc = 0;
    while ((got = fread(chunk, 1, sizeof chunk, f)) > 0)
        if (sb_put(&b, chunk, got)) {
            rc = blurb_seterr(err, BLURB_E_NOMEM, "template %s: out of memory", path);
            break;
        }
    if (!rc && ferror(f)) rc = blurb_seterr(err, BLURB_E_IO, "template %s: read failed: %s", path, strerror(errno));
    if (fclose(f) != 0 && !rc) rc = blurb_seterr(err, BLURB_E_IO, "template %s: close failed: %s", path, strerror(errno));
    if (rc) {
        sb_free(&b);
        return rc;
    }
    size_t n = b.len;
    /* Editors end files with a newline the user did not mean as part of the prompt. */
    if (n && b.p[n - 1] == '\n') {
        n--;
        if (n && b.p[n - 1] == '\r') n--;
    }
    rc = blurb_template_parse(b.p ? b.p : "", n, out, err);
    if (rc) blurb_err_prefix(err, "%s", path);
    sb_free(&b);
    return rc;
}

/* The field's value, or NULL when it (or an object on its path) is missing. */
static const cJSON *lookup(const blurb_record *rec, const seg *s) {
    const cJSON *v = rec->root;
    for (int k = 0; k < s->n_path; k++) {
        if (!cJSON_IsObject(v)) return NULL;
        v = cJSON_GetObjectItemCaseSensitive(v, s->path[k]);
    }
    return v;
}

static bool blank_string(const cJSON *v) {
    if (!cJSON_IsString(v)) return false;
    for (const char *p = v->valuestring ? v->valuestring : ""; *p; p++)
        if (!(*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r' || *p == '\f' || *p == '\v')) return false;
    return true;
}

/* Missing, null, a string of ASCII whitespace only, or an array holding
 * nothing but such strings. */
static bool absent_or_empty(const cJSON *v) {
    if (!v || cJSON_IsNull(v) || blank_string(v)) return true;
    if (cJSON_IsArray(v)) {
        for (const cJSON *e = v->child; e; e = e->next)
            if (!blank_string(e)) return false;
        return true;
    }
    return false;
}

static int put_scalar(strbuf *b, const blurb_record *rec, const cJSON *v, bool *ok) {
    *ok = true;
    if (cJSON_IsString(v)) return sb_puts(b, v->valuestring ? v->valuestring : "");
    if (cJSON_IsTrue(v)) return sb_puts(b, "true");
    if (cJSON_IsFalse(v)) return sb_puts(b, "false");
    if (cJSON_IsNumber(v)) {
        size_t n;
        const char *num = blurb_record_number_text(rec, v, &n);
        if (num) return sb_put(b, num, n);
    }
    *ok = false;
    return 0;
}

static int render_value(strbuf *b, const blurb_record *rec, const seg *s, const char *name, const cJSON *v,
                        blurb_err *why) {
    bool ok;
    if (cJSON_IsArray(v)) {
        int i = 0;
        for (const cJSON *e = v->child; e; e = e->next, i++) {
            if (i && sb_put(b, ", ", 2)) return blurb_seterr(why, BLURB_E_NOMEM, "out of memory");
            if (put_scalar(b, rec, e, &ok)) return blurb_seterr(why, BLURB_E_NOMEM, "out of memory");
            if (!ok)
                return blurb_seterr(why, BLURB_E_FORMAT,
                                    "field '%.*s': an array may hold only strings, numbers and booleans",
                                    (int)s->len, name);
        }
        return 0;
    }
    if (put_scalar(b, rec, v, &ok)) return blurb_seterr(why, BLURB_E_NOMEM, "out of memory");
    if (!ok)
        return blurb_seterr(why, BLURB_E_FORMAT, "field '%.*s' is an object: name one of its fields as {%.*s.key}",
                            (int)s->len, name, (int)s->len, name);
    return 0;
}

int blurb_template_render(const blurb_template *t, const blurb_record *rec, char **out, size_t *out_len,
                          blurb_err *why) {
    *out = NULL;
    *out_len = 0;
    strbuf b = {0};
    int rc = 0;
    for (int li = 0; li < t->n_lines; li++) {
        const line *l = &t->lines[li];
        bool drop = false;
        for (int si = l->first; si < l->end && !drop; si++) {
            const seg *s = &t->segs[si];
            if (s->kind == SEG_FIELD && s->optional && absent_or_empty(lookup(rec, s))) drop = true;
        }
        if (drop) {
            /* The last line has no newline of its own: the one before it goes. */
            if (!l->has_newline && b.len && b.p[b.len - 1] == '\n') {
                b.len--;
                if (b.len && b.p[b.len - 1] == '\r') b.len--;
                b.p[b.len] = '\0';
            }
            continue;
        }
        for (int si = l->first; si < l->end; si++) {
            const seg *s = &t->segs[si];
            const char *name = t->text + s->off;
            if (s->kind == SEG_TEXT) {
                if (sb_put(&b, name, s->len)) {
                    rc = blurb_seterr(why, BLURB_E_NOMEM, "out of memory");
                    goto fail;
                }
                continue;
            }
            const cJSON *v = lookup(rec, s);
            if (!v || cJSON_IsNull(v)) {
                rc = blurb_seterr(why, BLURB_E_FORMAT, "missing required field '%.*s'", (int)s->len, name);
                goto fail;
            }
            /* An empty required field would leave a prompt without its product. */
            if (absent_or_empty(v)) {
                rc = blurb_seterr(why, BLURB_E_FORMAT, "required field '%.*s' is empty", (int)s->len, name);
                goto fail;
            }
            rc = render_value(&b, rec, s, name, v, why);
            if (rc) goto fail;
        }
    }
    if (!b.p && !(b.p = calloc(1, 1))) return blurb_seterr(why, BLURB_E_NOMEM, "out of memory");
    *out = b.p;
    *out_len = b.len;
    return 0;
fail:
    sb_free(&b);
    return rc;
}
