#include "blurb/catalog.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "blurb/utf8.h"
#include "strbuf.h"

/* ---- reading and splitting ---------------------------------------------- */

static bool is_blank_byte(unsigned char c) {
    return c == ' ' || c == '\t' || c == '\v' || c == '\f' || c == '\r';
}

static int split_lines(blurb_catalog *cat, blurb_err *err) {
    size_t cap = 0;
    size_t pos = 0;
    long line_no = 0;
    /* A BOM is not JSON; editors on Windows like to add one to the first line. */
    if (cat->size >= 3 && memcmp(cat->data, "\xEF\xBB\xBF", 3) == 0) pos = 3;
    while (pos < cat->size) {
        const char *nl = memchr(cat->data + pos, '\n', cat->size - pos);
        size_t end = nl ? (size_t)(nl - cat->data) : cat->size;
        size_t len = end - pos;
        line_no++;
        if (len > 0 && cat->data[pos + len - 1] == '\r') len--;
        bool blank = true;
        for (size_t i = 0; i < len && blank; i++)
            blank = is_blank_byte((unsigned char)cat->data[pos + i]);
        if (!blank) {
            if (cat->n_lines == cap) {
                size_t ncap = cap ? cap * 2 : 256;
                blurb_catalog_line *nl2 = realloc(cat->lines, ncap * sizeof *nl2);
                if (!nl2) return blurb_seterr(err, BLURB_E_NOMEM, "catalog: out of memory at line %ld", line_no);
                cat->lines = nl2;
                cap = ncap;
            }
            cat->lines[cat->n_lines].off = pos;
            cat->lines[cat->n_lines].len = len;
            cat->lines[cat->n_lines].line_no = line_no;
            cat->n_lines++;
        }
        pos = end + 1;
    }
    cat->n_physical = line_no;
    return 0;
}

static int catalog_take(char *data, size_t size, blurb_catalog **out, blurb_err *err) {
    blurb_catalog *cat = calloc(1, sizeof *cat);
    if (!cat) {
        free(data);
        return blurb_seterr(err, BLURB_E_NOMEM, "catalog: out of memory");
    }
    cat->data = data;
    cat->size = size;
    int rc = split_lines(cat, err);
    if (rc) {
        blurb_catalog_free(cat);
        return rc;
    }
    *out = cat;
    return 0;
}

int blurb_catalog_from_memory(const char *data, size_t size, blurb_catalog **out, blurb_err *err) {
    *out = NULL;
    char *copy = malloc(size + 1);
    if (!copy) return blurb_seterr(err, BLURB_E_NOMEM, "catalog: out of memory for %zu bytes", size);
    if (size) memcpy(copy, data, size);
    copy[size] = '\0';
    return catalog_take(copy, size, out, err);
}

int blurb_catalog_read_stream(FILE *f, const char *name, blurb_catalog **out, blurb_err *err) {
    *out = NULL;
    size_t cap = 1 << 16, size = 0;
    char *data = malloc(cap);
    if (!data) return blurb_seterr(err, BLURB_E_NOMEM, "%s: out of memory", name);
    for (;;) {
        if (size + 1 >= cap) {
            if (cap > (size_t)-1 / 4) {
                free(data);
                return blurb_seterr(err, BLURB_E_NOMEM, "%s: input too large", name);
            }
            char *nd = realloc(data, cap * 2);
            if (!nd) {
                free(data);
                return blurb_seterr(err, BLURB_E_NOMEM, "%s: out of memory after %zu bytes", name, size);
            }
            data = nd;
            cap *= 2;
        }
        size_t got = fread(data + size, 1, cap - 1 - size, f);
        size += got;
        if (got == 0) {
            if (ferror(f)) {
                int e = errno;
                free(data);
                return blurb_seterr(err, BLURB_E_IO, "%s: read failed: %s", name, strerror(e));
            }
            break;
        }
    }
    data[size] = '\0';
    return catalog_take(data, size, out, err);
}

int blurb_catalog_read(const char *path, blurb_catalog **out, blurb_err *err) {
    *out = NULL;
    if (strcmp(path, "-") == 0) return blurb_catalog_read_stream(stdin, "<stdin>", out, err);
    FILE *f = fopen(path, "rb");
    if (!f) return blurb_seterr(err, BLURB_E_IO, "%s: cannot open: %s", path, strerror(errno));
    int rc = blurb_catalog_read_stream(f, path, out, err);
    if (fclose(f) != 0 && rc == 0) {
        blurb_catalog_free(*out);
        *out = NULL;
        return blurb_seterr(err, BLURB_E_IO, "%s: close failed: %s", path, strerror(errno));
    }
    return rc;
}

void blurb_catalog_free(blurb_catalog *cat) {
    if (!cat) return;
    free(cat->data);
    free(cat->lines);
    free(cat);
}

/* ---- one record ------------------------------------------------------------ */

static int hexval(unsigned char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* The code unit of a \uXXXX escape at s[i] ('\\'), or -1 when it is not one. */
static long u_escape(const char *s, size_t len, size_t i) {
    if (i + 6 > len || s[i] != '\\' || s[i + 1] != 'u') return -1;
    long v = 0;
    for (size_t k = 2; k < 6; k++) {
        int h = hexval((unsigned char)s[i + k]);
        if (h < 0) return -1;
        v = v * 16 + h;
    }
    return v;
}

/* Finds the first unpaired UTF-16 surrogate escape inside a string, tolerating
 * broken structure (the line already failed to parse). Returns its offset and
 * the offset of the opening quote of its string, or false. */
static bool find_lone_surrogate(const char *s, size_t len, size_t *at, size_t *quote) {
    bool in_str = false;
    size_t q = 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!in_str) {
            if (c == '"') { in_str = true; q = i; }
            continue;
        }
        if (c == '"') { in_str = false; continue; }
        if (c != '\\') continue;
        long u = u_escape(s, len, i);
        if (u < 0) { i++; continue; } /* some other escape: skip its second byte */
        if (u >= 0xD800 && u <= 0xDBFF) {
            long lo = u_escape(s, len, i + 6);
            if (lo >= 0xDC00 && lo <= 0xDFFF) { i += 11; continue; }
            *at = i; *quote = q;
            return true;
        }
        if (u >= 0xDC00 && u <= 0xDFFF) {
            *at = i; *quote = q;
            return true;
        }
        i += 5;
    }
    return false;
}

static bool number_byte(unsigned char c) {
    return (c >= '0' && c <= '9') || c == '+' || c == '-' || c == 'e' || c == 'E' || c == '.';
}

/* Length of the RFC 8259 number at s[0..n), or 0 when none starts there. */
static size_t json_number_len(const char *s, size_t n) {
    size_t i = 0;
    if (i < n && s[i] == '-') i++;
    if (i >= n) return 0;
    if (s[i] == '0') {
        i++;
    } else if (s[i] >= '1' && s[i] <= '9') {
        while (i < n && s[i] >= '0' && s[i] <= '9') i++;
    } else {
        return 0;
    }
    if (i < n && s[i] == '.') {
        size_t d = ++i;
        while (i < n && s[i] >= '0' && s[i] <= '9') i++;
        if (i == d) return 0;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-')) i++;
        size_t d = i;
        while (i < n && s[i] >= '0' && s[i] <= '9') i++;
        if (i == d) return 0;
    }
    return i;
}

/* Second pass over a line cJSON accepted: rejects what cJSON lets through
 * (raw control characters, stray bytes where it skips "whitespace", numbers
 * like 01 or 1.) and escaped NULs, and records every number's text. */
/* How many arrays and objects are open at byte `end` of s (strings skipped). */
static size_t nesting_before(const char *s, size_t end) {
    size_t depth = 0;
    for (size_t i = 0; i < end; i++) {
        if (s[i] == '"') {
            for (i++; i < end && s[i] != '"'; i++)
                if (s[i] == '\\') i++;
        } else if (s[i] == '[' || s[i] == '{') {
            depth++;
        } else if ((s[i] == ']' || s[i] == '}') && depth > 0) {
            depth--;
        }
    }
    return depth;
}

static int scan_accepted(blurb_record *rec, blurb_err *why) {
    const char *s = rec->text;
    size_t len = rec->text_len;
    size_t cap = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"') {
            for (i++; i < len && s[i] != '"'; i++) {
                unsigned char d = (unsigned char)s[i];
                if (d < 0x20)
                    return blurb_seterr(why, BLURB_E_FORMAT,
                                        "invalid JSON at column %zu: unescaped control character U+%04X in a string",
                                        i + 1, d);
                if (d == '\\') {
                    long u = u_escape(s, len, i);
                    if (u == 0)
                        return blurb_seterr(why, BLURB_E_FORMAT,
                                            "string holds an escaped NUL (\\u0000) at column %zu", i + 1);
                    i += u >= 0 ? 5 : 1;
                }
            }
            continue;
        }
        if (c == '-' || (c >= '0' && c <= '9')) {
            size_t run = 0;
            while (i + run < len && number_byte((unsigned char)s[i + run])) run++;
            if (json_number_len(s + i, run) != run)
                return blurb_seterr(why, BLURB_E_FORMAT, "invalid JSON at column %zu: malformed number '%.*s'",
                                    i + 1, (int)(run > 40 ? 40 : run), s + i);
            if (rec->n_nums == (int)cap) {
                size_t ncap = cap ? cap * 2 : 8;
                blurb_json_number *nn = realloc(rec->nums, ncap * sizeof *nn);
                if (!nn) return blurb_seterr(why, BLURB_E_NOMEM, "out of memory");
                rec->nums = nn;
                cap = ncap;
            }
            rec->nums[rec->n_nums].node = NULL;
            rec->nums[rec->n_nums].off = i;
            rec->nums[rec->n_nums].len = run;
            rec->n_nums++;
            i += run - 1;
            continue;
        }
        if (c == ' ' || c == '\t' || c == '\r' || c == '{' || c == '}' || c == '[' || c == ']' || c == ':' ||
            c == ',' || (c >= 'a' && c <= 'z'))
            continue;
        return blurb_seterr(why, BLURB_E_FORMAT, "invalid JSON at column %zu: unexpected byte 0x%02X", i + 1, c);
    }
    return 0;
}

/* Pairs the numbers found by scan_accepted with cJSON's nodes: a pre-order walk
 * meets them in text order. */
static void attach_numbers(const cJSON *node, blurb_record *rec, int *k) {
    for (; node; node = node->next) {
        if (cJSON_IsNumber(node)) {
            if (*k < rec->n_nums) rec->nums[*k].node = node;
            (*k)++;
        }
        if (node->child) attach_numbers(node->child, rec, k);
    }
}

static const char *json_type_name(const cJSON *v) {
    if (cJSON_IsArray(v)) return "an array";
    if (cJSON_IsString(v)) return "a string";
    if (cJSON_IsNumber(v)) return "a number";
    if (cJSON_IsBool(v)) return "a boolean";
    if (cJSON_IsNull(v)) return "null";
    if (cJSON_IsObject(v)) return "an object";
    return "not an object";
}

static int set_line_id(blurb_record *rec) {
    char buf[32];
    int n = snprintf(buf, sizeof buf, "%ld", rec->line_no);
    free(rec->id_json);
    free(rec->id_key);
    rec->id_json = strdup(buf);
    rec->id_key = strdup(buf);
    rec->id_key_len = (size_t)n;
    return rec->id_json && rec->id_key ? 0 : BLURB_E_NOMEM;
}

static int set_id(blurb_record *rec) {
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(rec->root, "id");
    if (cJSON_IsString(id) && id->valuestring) {
        strbuf b = {0};
        size_t n = strlen(id->valuestring);
        if (sb_json_string(&b, id->valuestring, n)) {
            sb_free(&b);
            return BLURB_E_NOMEM;
        }
        char *key = malloc(n + 1);
        if (!key) {
            sb_free(&b);
            return BLURB_E_NOMEM;
        }
        memcpy(key, id->valuestring, n + 1);
        free(rec->id_json);
        free(rec->id_key);
        rec->id_json = b.p;
        rec->id_key = key;
        rec->id_key_len = n;
        return 0;
    }
    size_t nlen;
    const char *num = cJSON_IsNumber(id) ? blurb_record_number_text(rec, id, &nlen) : NULL;
    if (num) {
        char *a = malloc(nlen + 1), *k = malloc(nlen + 1);
        if (!a || !k) {
            free(a);
            free(k);
            return BLURB_E_NOMEM;
        }
        memcpy(a, num, nlen);
        a[nlen] = '\0';
        memcpy(k, a, nlen + 1);
        free(rec->id_json);
        free(rec->id_key);
        rec->id_json = a;
        rec->id_key = k;
        rec->id_key_len = nlen;
        return 0;
    }
    return set_line_id(rec);
}

int blurb_record_parse(const char *line, size_t len, long line_no, blurb_record *rec, blurb_err *why) {
    memset(rec, 0, sizeof *rec);
    rec->line_no = line_no;
    if (set_line_id(rec)) return blurb_seterr(why, BLURB_E_NOMEM, "out of memory");
    rec->text = malloc(len + 1);
    if (!rec->text) return blurb_seterr(why, BLURB_E_NOMEM, "out of memory for a %zu-byte line", len);
    if (len) memcpy(rec->text, line, len);
    rec->text[len] = '\0';
    rec->text_len = len;

    size_t bad;
    if (!blurb_utf8_valid(line, len, &bad))
        return blurb_seterr(why, BLURB_E_FORMAT, "invalid UTF-8 at byte %zu (column %zu)", bad, bad + 1);

    /* len + 1 takes in the NUL, which cJSON's "require NUL-terminated" demands
     * inside the given length; a NUL byte within the line is caught by
     * scan_accepted (cJSON would skip it as whitespace or keep it in a string). */
    const char *end = NULL;
    rec->root = cJSON_ParseWithLengthOpts(rec->text, len + 1, &end, 1);
    if (!rec->root) {
        size_t pos = end && end >= rec->text ? (size_t)(end - rec->text) : 0;
        size_t at, quote;
        if (find_lone_surrogate(rec->text, len, &at, &quote) && quote <= pos && pos <= at + 12)
            return blurb_seterr(why, BLURB_E_FORMAT,
                                "invalid JSON at column %zu: lone UTF-16 surrogate escape \\%.5s "
                                "(cJSON refuses unpaired surrogates)", at + 1, rec->text + at + 1);
        if (nesting_before(rec->text, pos < len ? pos : len) >= CJSON_NESTING_LIMIT)
            return blurb_seterr(why, BLURB_E_FORMAT,
                                "JSON nested more than %d levels deep at column %zu (cJSON's limit)",
                                (int)CJSON_NESTING_LIMIT, pos + 1);
        /* cJSON reports where it gave up, which for an unterminated value or a
         * trailing comma is past the last byte. */
        if (pos >= len)
            return blurb_seterr(why, BLURB_E_FORMAT, "invalid JSON at the end of the line (column %zu)",
                                len ? len : 1);
        return blurb_seterr(why, BLURB_E_FORMAT, "invalid JSON at column %zu", pos + 1);
    }
    int rc = scan_accepted(rec, why);
    int k = 0;
    if (!rc) attach_numbers(rec->root, rec, &k);
    if (!rc && k != rec->n_nums)
        rc = blurb_seterr(why, BLURB_E_FORMAT, "invalid JSON: %d numbers found but cJSON parsed %d", rec->n_nums, k);
    if (!rc && !cJSON_IsObject(rec->root))
        rc = blurb_seterr(why, BLURB_E_FORMAT, "not a JSON object (%s)", json_type_name(rec->root));
    if (!rc && set_id(rec)) rc = blurb_seterr(why, BLURB_E_NOMEM, "out of memory");
    if (!rc) {
        /* An id of another type is a data error, not a reason to fall back silently. */
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(rec->root, "id");
        if (id && !cJSON_IsString(id) && !cJSON_IsNumber(id) && !cJSON_IsNull(id))
            rc = blurb_seterr(why, BLURB_E_FORMAT, "field 'id' must be a string or a number, not %s",
                              json_type_name(id));
    }
    if (rc) {
        /* A record that failed holds no tree: callers see root == NULL. */
        cJSON_Delete(rec->root);
        rec->root = NULL;
        rec->n_nums = 0;
    }
    return rc;
}

void blurb_record_clear(blurb_record *rec) {
    if (!rec) return;
    cJSON_Delete(rec->root);
    free(rec->text);
    free(rec->nums);
    free(rec->id_json);
    free(rec->id_key);
    memset(rec, 0, sizeof *rec);
}

const char *blurb_record_number_text(const blurb_record *rec, const struct cJSON *node, size_t *len) {
    for (int i = 0; i < rec->n_nums; i++)
        if (rec->nums[i].node == node) {
            *len = rec->nums[i].len;
            return rec->text + rec->nums[i].off;
        }
    return NULL;
}
