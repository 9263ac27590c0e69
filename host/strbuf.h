/* Growable byte buffer used inside libblurb to build prompts and JSON lines.
 * Internal (not installed): the functions are static inline so that every
 * library source that needs one gets its own copy without a link-time dependency.
 *
 * Every append returns 0 or BLURB_E_NOMEM; on failure the buffer is left as it
 * was, so a caller may report the error and free it. The bytes are always
 * NUL-terminated (p[len] == 0) once anything has been appended. */
#ifndef BLURB_HOST_STRBUF_H
#define BLURB_HOST_STRBUF_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blurb/error.h"

typedef struct strbuf {
    char *p;
    size_t len;
    size_t cap;
} strbuf;

static inline int sb_reserve(strbuf *b, size_t extra) {
    if (extra > (size_t)-1 / 2 - b->len) return BLURB_E_NOMEM;
    size_t need = b->len + extra + 1;
    if (need <= b->cap) return 0;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need) cap *= 2;
    char *p = (char *)realloc(b->p, cap);
    if (!p) return BLURB_E_NOMEM;
    b->p = p;
    b->cap = cap;
    return 0;
}

static inline int sb_put(strbuf *b, const char *s, size_t n) {
    if (sb_reserve(b, n)) return BLURB_E_NOMEM;
    if (n) memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
    return 0;
}

static inline int sb_puts(strbuf *b, const char *s) { return sb_put(b, s, strlen(s)); }

static inline int sb_putc(strbuf *b, char c) { return sb_put(b, &c, 1); }

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static inline int sb_printf(strbuf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) return BLURB_E_NOMEM;
    if (sb_reserve(b, (size_t)n)) return BLURB_E_NOMEM;
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

/* Appends s[0..n) as a JSON string literal with its quotes. s must be valid
 * UTF-8 (it is copied byte for byte); '"' and '\\' are escaped, the control
 * characters U+0000..U+001F become \b \f \n \r \t or \u00XX (lower-case hex),
 * everything else, U+007F and non-ASCII included, is written as is. This is
 * the one escaping of blurb's JSON output, so the bytes are stable. */
static inline int sb_json_string(strbuf *b, const char *s, size_t n) {
    static const char hex[] = "0123456789abcdef";
    if (sb_putc(b, '"')) return BLURB_E_NOMEM;
    size_t run = 0; /* start of the pending run of bytes that need no escape */
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\') continue;
        if (sb_put(b, s + run, i - run)) return BLURB_E_NOMEM;
        run = i + 1;
        char esc[7] = {'\\', 0, 0, 0, 0, 0, 0};
        size_t el = 2;
        switch (c) {
        case '"': esc[1] = '"'; break;
        case '\\': esc[1] = '\\'; break;
        case '\b': esc[1] = 'b'; break;
        case '\f': esc[1] = 'f'; break;
        case '\n': esc[1] = 'n'; break;
        case '\r': esc[1] = 'r'; break;
        case '\t': esc[1] = 't'; break;
        default:
            esc[1] = 'u'; esc[2] = '0'; esc[3] = '0';
            esc[4] = hex[c >> 4]; esc[5] = hex[c & 15];
            el = 6;
        }
        if (sb_put(b, esc, el)) return BLURB_E_NOMEM;
    }
    if (sb_put(b, s + run, n - run)) return BLURB_E_NOMEM;
    return sb_putc(b, '"');
}

static inline void sb_free(strbuf *b) {
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

#endif
