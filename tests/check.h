/* Minimal assertions for blurb's C tests: each failed CHECK prints file:line and
 * the condition, the test continues, and check_finish() returns non-zero if any
 * check failed. A test that cannot run here calls SKIP(reason), which exits 77
 * (CTest's SKIP_RETURN_CODE) so it is reported as skipped, never as passed. */
#ifndef BLURB_TESTS_CHECK_H
#define BLURB_TESTS_CHECK_H

#include <stdio.h>
#include <stdlib.h>

static int check_failures_;
static int check_count_;

#define CHECK(cond) do { check_count_++; if (!(cond)) { check_failures_++; \
    fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); } } while (0)
#define CHECKF(cond, ...) do { check_count_++; if (!(cond)) { check_failures_++; \
    fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__, #cond); \
    fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); } } while (0)
/* Stops the test at once: for preconditions whose failure makes the rest meaningless. */
#define REQUIRE(cond) do { check_count_++; if (!(cond)) { \
    fprintf(stderr, "%s:%d: REQUIRE failed: %s\n", __FILE__, __LINE__, #cond); exit(1); } } while (0)
#define SKIP(...) do { fprintf(stderr, "SKIPPED: "); fprintf(stderr, __VA_ARGS__); \
    fputc('\n', stderr); exit(77); } while (0)

static inline int check_finish(const char *name) {
    printf("%s: %d checks, %d failed\n", name, check_count_, check_failures_);
    return check_failures_ ? 1 : 0;
}

#endif
