/* Reads tests/data/tokenizer_golden.jsonl ({"text": str, "ids": [int]} a line)
 * for the tokenizer tests. The text is decoded from the JSON here, not by
 * cJSON: cJSON ends a string at an escaped \u0000, and the golden holds
 * "a\u0000b", which must be tested with its three real bytes. */
#ifndef BLURB_TESTS_TOKENIZER_GOLDEN_READ_H
#define BLURB_TESTS_TOKENIZER_GOLDEN_READ_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

typedef struct golden_case {
    char *text;
    size_t len;
    int32_t *ids;
    size_t n_ids;
} golden_case;

static int golden_hex4_(const char *p, unsigned *v) {
    *v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        unsigned d;
        if (c >= '0' && c <= '9') d = (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f') d = (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') d = (unsigned)(c - 'A' + 10);
        else return -1;
        *v = *v * 16 + d;
    }
    return 0;
}

static size_t golden_put_utf8_(char *o, unsigned cp) {
    if (cp < 0x80) { o[0] = (char)cp; return 1; }
    if (cp < 0x800) { o[0] = (char)(0xC0 | cp >> 6); o[1] = (char)(0x80 | (cp & 0x3F)); return 2; }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | cp >> 12); o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F)); return 3;
    }
    o[0] = (char)(0xF0 | cp >> 18); o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3F)); o[3] = (char)(0x80 | (cp & 0x3F)); return 4;
}

/* Decodes the JSON string starting at *p (just after its opening quote) into
 * a malloc'ed buffer; returns NULL on malformed input. */
static char *golden_json_string_(const char *p, size_t *len) {
    size_t cap = strlen(p) + 1;
    char *o = malloc(cap);
    if (!o) return NULL;
    size_t n = 0;
    while (*p && *p != '"') {
        if (*p != '\\') { o[n++] = *p++; continue; }
        p++;
        char c = *p++;
        switch (c) {
        case '"': o[n++] = '"'; break;
        case '\\': o[n++] = '\\'; break;
        case '/': o[n++] = '/'; break;
        case 'b': o[n++] = '\b'; break;
        case 'f': o[n++] = '\f'; break;
        case 'n': o[n++] = '\n'; break;
        case 'r': o[n++] = '\r'; break;
        case 't': o[n++] = '\t'; break;
        case 'u': {
            unsigned cp, lo;
            if (golden_hex4_(p, &cp)) { free(o); return NULL; }
            p += 4;
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                if (p[0] != '\\' || p[1] != 'u' || golden_hex4_(p + 2, &lo) || lo < 0xDC00 || lo > 0xDFFF) {
                    free(o);
                    return NULL;
                }
                p += 6;
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                free(o);
                return NULL;
            }
            n += golden_put_utf8_(o + n, cp); /* a 6-char escape never yields more than 4 bytes */
            break;
        }
        default: free(o); return NULL;
        }
    }
    if (*p != '"') { free(o); return NULL; }
    o[n] = '\0';
    *len = n;
    return o;
}

static void golden_free(golden_case *c, size_t n) {
    for (size_t i = 0; i < n; i++) {
        free(c[i].text);
        free(c[i].ids);
    }
    free(c);
}

/* Loads every case; returns the count, or 0 with a message on stderr. */
static size_t golden_load(const char *path, golden_case **out) {
    FILE *f = fopen(path, "rb");
    if (!f) { fprintf(stderr, "cannot open %s\n", path); return 0; }
    size_t n = 0, cap = 0;
    golden_case *cases = NULL;
    char *line = NULL;
    size_t lcap = 0;
    ssize_t got;
    size_t lineno = 0;
    while ((got = getline(&line, &lcap, f)) > 0) {
        lineno++;
        cJSON *j = cJSON_Parse(line);
        const cJSON *text = j ? cJSON_GetObjectItemCaseSensitive(j, "text") : NULL;
        const cJSON *ids = j ? cJSON_GetObjectItemCaseSensitive(j, "ids") : NULL;
        const char *start = strstr(line, "\"text\": \"");
        if (!cJSON_IsString(text) || !cJSON_IsArray(ids) || !start) {
            fprintf(stderr, "%s:%zu: malformed line\n", path, lineno);
            cJSON_Delete(j);
            goto fail;
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 1024;
            golden_case *nc = realloc(cases, cap * sizeof *nc);
            if (!nc) { cJSON_Delete(j); goto fail; }
            cases = nc;
        }
        golden_case *c = &cases[n];
        memset(c, 0, sizeof *c);
        c->text = golden_json_string_(start + 9, &c->len);
        /* The own decoder must agree with cJSON wherever cJSON is right (no NUL). */
        if (!c->text || (memchr(c->text, '\0', c->len) == NULL &&
                         (strlen(text->valuestring) != c->len || memcmp(text->valuestring, c->text, c->len)))) {
            fprintf(stderr, "%s:%zu: text decoding disagrees with cJSON\n", path, lineno);
            free(c->text);
            cJSON_Delete(j);
            goto fail;
        }
        c->n_ids = (size_t)cJSON_GetArraySize(ids);
        c->ids = malloc((c->n_ids ? c->n_ids : 1) * sizeof *c->ids);
        if (!c->ids) { free(c->text); cJSON_Delete(j); goto fail; }
        size_t k = 0;
        const cJSON *it;
        cJSON_ArrayForEach(it, ids) c->ids[k++] = (int32_t)it->valuedouble;
        n++;
        cJSON_Delete(j);
    }
    free(line);
    fclose(f);
    *out = cases;
    return n;
fail:
    free(line);
    fclose(f);
    golden_free(cases, n);
    return 0;
}

#endif
