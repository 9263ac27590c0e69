/* Helpers shared by the backend tests: the default model, a backend on it,
 * greedy argmax and deterministic prompts. Header-only (each test is one
 * executable). */
#ifndef BLURB_TESTS_MODEL_TEST_UTIL_H
#define BLURB_TESTS_MODEL_TEST_UTIL_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "blurb/backend.h"
#include "blurb/model.h"
#include "check.h"

/* The default model (weights/default in the source tree, n_ctx 512). */
static inline blurb_model *test_load_default_model(void) {
    blurb_err err;
    blurb_err_clear(&err);
    blurb_model *m = NULL;
    const char *dir = BLURB_SOURCE_DIR "/weights/default";
    if (blurb_model_load(dir, &m, &err) < 0) {
        fprintf(stderr, "cannot load %s: %s\n", dir, err.msg);
        exit(1);
    }
    return m;
}

static inline blurb_backend *test_cpu_backend(const blurb_model *m, int max_slots, int n_threads) {
    blurb_err err;
    blurb_err_clear(&err);
    blurb_backend_opts o = blurb_backend_opts_default();
    o.kind = BLURB_BACKEND_CPU;
    o.max_slots = max_slots;
    o.n_threads = n_threads;
    blurb_backend *be = NULL;
    if (blurb_backend_create(m, &o, &be, &err) < 0) {
        fprintf(stderr, "cannot create the cpu backend: %s\n", err.msg);
        exit(1);
    }
    return be;
}

/* Runs forward and stops the test on failure (every call here is valid). */
static inline void test_forward(blurb_backend *be, const blurb_chunk *chunks, int n, bool all_logits) {
    blurb_err err;
    blurb_err_clear(&err);
    if (blurb_backend_forward(be, chunks, n, all_logits, &err) < 0) {
        fprintf(stderr, "forward failed: %s\n", err.msg);
        exit(1);
    }
}

static inline void test_logits(blurb_backend *be, int row, float *dst) {
    blurb_err err;
    blurb_err_clear(&err);
    if (blurb_backend_logits(be, row, dst, &err) < 0) {
        fprintf(stderr, "logits failed: %s\n", err.msg);
        exit(1);
    }
}

static inline void test_reset(blurb_backend *be, int slot) {
    blurb_err err;
    blurb_err_clear(&err);
    if (blurb_backend_reset(be, slot, &err) < 0) {
        fprintf(stderr, "reset failed: %s\n", err.msg);
        exit(1);
    }
}

/* Greedy choice: the largest logit, ties to the lower id (as sampler.h). */
static inline int32_t test_argmax(const float *v, int n) {
    int32_t best = 0;
    for (int i = 1; i < n; i++)
        if (v[i] > v[best]) best = i;
    return best;
}

/* Deterministic pseudo-random token ids (splitmix64), different per seed. */
static inline void test_random_tokens(int32_t *dst, int n, uint64_t seed, int vocab_size) {
    uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
    for (int i = 0; i < n; i++) {
        uint64_t z = (s += 0x9E3779B97F4A7C15ull);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        z ^= z >> 31;
        dst[i] = (int32_t)(z % (uint64_t)vocab_size);
    }
}

static inline double test_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

#endif
