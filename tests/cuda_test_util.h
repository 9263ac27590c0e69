/* Shared helpers of the CUDA backend tests (tests/test_cuda_*.c): skip rules,
 * model and backend set-up, and forward/logits/sample wrappers that stop the
 * test with the library's message on an error. */
#ifndef BLURB_TESTS_CUDA_TEST_UTIL_H
#define BLURB_TESTS_CUDA_TEST_UTIL_H

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "blurb/backend.h"
#include "blurb/model.h"
#include "check.h"

/* Exits 77 ("SKIPPED: ...") unless this is a CUDA build with a visible device. */
static inline void cuda_test_require_device(void) {
#ifndef BLURB_HAVE_CUDA
    SKIP("built without CUDA (BLURB_CUDA=OFF or no nvcc)");
#else
    if (!blurb_cuda_available()) SKIP("no CUDA device");
#endif
}

static inline double cuda_test_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static inline blurb_model *cuda_test_default_model(void) {
    char dir[4096];
    blurb_err err;
    blurb_err_clear(&err);
    blurb_model *m = NULL;
    if (blurb_default_model_dir(dir, sizeof dir, &err) < 0 || blurb_model_load(dir, &m, &err) < 0) {
        fprintf(stderr, "cannot load the default model: %s\n", err.msg);
        exit(1);
    }
    return m;
}

/* A random-weight model of GPT-2 small's shape (124M parameters). */
static inline blurb_model *cuda_test_gpt2_random(int n_ctx, uint64_t seed) {
    blurb_config c;
    memset(&c, 0, sizeof c);
    c.n_layer = 12;
    c.n_head = 12;
    c.n_embd = 768;
    c.n_ctx = n_ctx;
    c.n_inner = 3072;
    c.vocab_size = 50257;
    c.layer_norm_epsilon = 1e-5f;
    c.eos_token_id = 50256;
    c.scale_attn_weights = true;
    blurb_model *m = NULL;
    blurb_err err;
    blurb_err_clear(&err);
    if (blurb_model_random(&c, seed, &m, &err) < 0) {
        fprintf(stderr, "random model: %s\n", err.msg);
        exit(1);
    }
    return m;
}

static inline blurb_backend *cuda_test_backend(const blurb_model *m, blurb_dtype dt, int max_slots, bool invariant) {
    blurb_backend_opts o = blurb_backend_opts_default();
    o.kind = BLURB_BACKEND_CUDA;
    o.dtype = dt;
    o.max_slots = max_slots;
    o.batch_invariant = invariant;
    blurb_backend *be = NULL;
    blurb_err err;
    blurb_err_clear(&err);
    if (blurb_backend_create(m, &o, &be, &err) < 0) {
        fprintf(stderr, "cuda backend (%s): %s\n", blurb_dtype_name(dt), err.msg);
        exit(1);
    }
    REQUIRE(be->n_slots >= (max_slots > 0 ? max_slots : 1));
    return be;
}

static inline blurb_backend *cuda_test_cpu_backend(const blurb_model *m, int max_slots) {
    blurb_backend_opts o = blurb_backend_opts_default();
    o.kind = BLURB_BACKEND_CPU;
    o.max_slots = max_slots;
    blurb_backend *be = NULL;
    blurb_err err;
    blurb_err_clear(&err);
    if (blurb_backend_create(m, &o, &be, &err) < 0) {
        fprintf(stderr, "cpu backend: %s\n", err.msg);
        exit(1);
    }
    return be;
}

static inline void cuda_test_forward(blurb_backend *be, const blurb_chunk *c, int n, bool all) {
    blurb_err err;
    blurb_err_clear(&err);
    if (blurb_backend_forward(be, c, n, all, &err) < 0) {
        fprintf(stderr, "forward (%d chunks): %s\n", n, err.msg);
        exit(1);
    }
}

static inline void cuda_test_logits(blurb_backend *be, int row, float *dst) {
    blurb_err err;
    blurb_err_clear(&err);
    if (blurb_backend_logits(be, row, dst, &err) < 0) {
        fprintf(stderr, "logits row %d: %s\n", row, err.msg);
        exit(1);
    }
}

static inline void cuda_test_reset(blurb_backend *be, int slot) {
    blurb_err err;
    blurb_err_clear(&err);
    if (blurb_backend_reset(be, slot, &err) < 0) {
        fprintf(stderr, "reset slot %d: %s\n", slot, err.msg);
        exit(1);
    }
}

static inline int cuda_test_argmax(const float *x, int n) {
    int best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return best;
}

static inline bool cuda_test_all_finite(const float *x, int n) {
    for (int i = 0; i < n; i++)
        if (!isfinite(x[i])) return false;
    return true;
}

#include "golden_test_util.h"

#endif
