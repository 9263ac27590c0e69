/* Whole-file reads and writes for the tests; a failed write stops the test. */
#ifndef BLURB_TESTS_FILE_TEST_UTIL_H
#define BLURB_TESTS_FILE_TEST_UTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

/* The whole file, NUL-terminated (malloc'ed); *len (may be NULL) gets its size.
 * NULL when the file cannot be opened. */
static inline char *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 1 << 16, n = 0, got;
    char *b = malloc(cap);
    REQUIRE(b);
    while ((got = fread(b + n, 1, cap - n - 1, f)) > 0) {
        n += got;
        if (n + 1 >= cap) REQUIRE((b = realloc(b, cap *= 2)));
    }
    fclose(f);
    b[n] = '\0';
    if (len) *len = n;
    return b;
}

static inline void spit(const char *path, const char *data, size_t len) {
    FILE *f = fopen(path, "wb");
    REQUIRE(f);
    REQUIRE(fwrite(data, 1, len, f) == len);
    REQUIRE(fclose(f) == 0);
}

static inline void spit_str(const char *path, const char *s) { spit(path, s, strlen(s)); }

#endif
