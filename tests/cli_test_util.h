/* Helpers shared by the tests that run the blurb program on real files: a
 * scratch directory (the including test defines `dir`, a mkdtemp template,
 * and creates it in main), whole-file reads and writes (file_test_util.h), and running
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
#include "file_test_util.h"

#define MODEL BLURB_SOURCE_DIR "/weights/default"

/* dir/name in one of 8 rotating buffers. */
static inline char *path_in(const char *name) {
    static char buf[8][512];
    static int k;
    char *p = buf[k++ % 8];
    snprintf(p, 512, "%s/%s", dir, name);
    return p;
}

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
