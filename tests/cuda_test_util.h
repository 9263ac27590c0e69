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

/* The golden prompts (tests/data/GOLDEN.md). */
#define CUDA_TEST_N_GOLDEN 8
#define CUDA_TEST_MAX_NEW 32
typedef struct cuda_golden {
    int n_ids;
    int32_t *ids;
    int n_greedy;
    int32_t greedy[CUDA_TEST_MAX_NEW];
    float (*sample)[5]; /* [n_ids][5]: logits of ids 0, 13, 198, 464, 50256 */
} cuda_golden;
static const int cuda_golden_sample_ids[5] = {0, 13, 198, 464, 50256};

/* Reads a whole file (stops the test when it cannot). */
static inline char *cuda_test_read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "cannot open %s\n", path);
        exit(1);
    }
    REQUIRE(fseek(f, 0, SEEK_END) == 0);
    long n = ftell(f);
    REQUIRE(n >= 0);
    REQUIRE(fseek(f, 0, SEEK_SET) == 0);
    char *buf = malloc((size_t)n + 1);
    REQUIRE(buf != NULL);
    REQUIRE(fread(buf, 1, (size_t)n, f) == (size_t)n);
    fclose(f);
    buf[n] = '\0';
    *len = (size_t)n;
    return buf;
}

#ifdef BLURB_TEST_HAVE_CJSON
static inline void cuda_test_load_golden(cuda_golden *g) {
    size_t len;
    char *text = cuda_test_read_file(BLURB_TEST_DATA "/golden.json", &len);
    cJSON *root = cJSON_ParseWithLength(text, len);
    REQUIRE(root != NULL && cJSON_IsArray(root) && cJSON_GetArraySize(root) == CUDA_TEST_N_GOLDEN);
    for (int p = 0; p < CUDA_TEST_N_GOLDEN; p++) {
        const cJSON *o = cJSON_GetArrayItem(root, p);
        const cJSON *ids = cJSON_GetObjectItem(o, "ids");
        const cJSON *greedy = cJSON_GetObjectItem(o, "greedy_32");
        const cJSON *sample = cJSON_GetObjectItem(o, "logits_sample");
        REQUIRE(cJSON_IsArray(ids) && cJSON_IsArray(greedy) && cJSON_IsArray(sample));
        g[p].n_ids = cJSON_GetArraySize(ids);
        g[p].n_greedy = cJSON_GetArraySize(greedy);
        REQUIRE(g[p].n_ids >= 1 && g[p].n_greedy >= 1 && g[p].n_greedy <= CUDA_TEST_MAX_NEW);
        REQUIRE(cJSON_GetArraySize(sample) == g[p].n_ids);
        g[p].ids = malloc((size_t)g[p].n_ids * sizeof *g[p].ids);
        g[p].sample = malloc((size_t)g[p].n_ids * sizeof *g[p].sample);
        REQUIRE(g[p].ids && g[p].sample);
        for (int i = 0; i < g[p].n_ids; i++) {
            g[p].ids[i] = (int32_t)cJSON_GetArrayItem(ids, i)->valueint;
            const cJSON *row = cJSON_GetArrayItem(sample, i);
            REQUIRE(cJSON_GetArraySize(row) == 5);
            for (int j = 0; j < 5; j++) g[p].sample[i][j] = (float)cJSON_GetArrayItem(row, j)->valuedouble;
        }
        for (int i = 0; i < g[p].n_greedy; i++) g[p].greedy[i] = (int32_t)cJSON_GetArrayItem(greedy, i)->valueint;
    }
    cJSON_Delete(root);
    free(text);
}

static inline void cuda_test_free_golden(cuda_golden *g) {
    for (int p = 0; p < CUDA_TEST_N_GOLDEN; p++) {
        free(g[p].ids);
        free(g[p].sample);
    }
}
#endif

#endif
