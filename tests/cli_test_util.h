/* Helpers shared by the tests that run the blurb program on real files: a
 * scratch directory (the including test defines `dir`, a mkdtemp template,
 * and creates it in main), whole-file reads and writes, and running
 * `blurb generate` on the shipped default model with the options the test
 * puts in CLI_FIXED (defined before including this header, default none). */
#ifndef BLURB_TESTS_CLI_TEST_UTIL_H
#define BLURB_TESTS_CLI_TEST_UTIL_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "check.h"

#define MODEL BLURB_SOURCE_DIR "/weights/default"

/* dir/name in one of 8 rotating buffers. */
static inline char *path_in(const char *name) {
    static char buf[8][512];
    static int k;
    char *p = buf[k++ % 8];
    snprintf(p, 512, "%s/%s", dir, name);
    return p;
}

/* The whole file, NUL-terminated (malloc'ed); *len (may be NULL) gets its size.
 * NULL when the file cannot be opened. */
static inline char *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 4096, n = 0;
    char *b = malloc(cap);
    REQUIRE(b);
    size_t got;
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

#ifndef CLI_FIXED
#define CLI_FIXED ""
#endif

/* Runs `blurb generate --model MODEL CLI_FIXED <fmt...>` through the shell and
 * returns its exit status. */
static inline int cli(const char *fmt, ...) {
    char args[8192], cmd[9000];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd, "'%s' generate --model '%s' %s %s", BLURB_CLI, MODEL, CLI_FIXED, args);
    int st = system(cmd);
    REQUIRE(st != -1 && WIFEXITED(st));
    return WEXITSTATUS(st);
}

#endif
