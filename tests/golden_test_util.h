/* The HF reference outputs of the default model (tests/data/GOLDEN.md),
 * read for the tests that compare a backend with them. */
#ifndef BLURB_TESTS_GOLDEN_TEST_UTIL_H
#define BLURB_TESTS_GOLDEN_TEST_UTIL_H

#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "check.h"

#define GOLDEN_N_PROMPTS 8
#define GOLDEN_MAX_NEW 32

/* logits_sample columns: the logits of these vocabulary ids at every prompt position. */
static const int golden_sample_ids[5] = {0, 13, 198, 464, 50256};

typedef struct golden_prompt {
    int n_ids;
    int32_t *ids;                   /* the prompt's token ids */
    int n_greedy;
    int32_t greedy[GOLDEN_MAX_NEW]; /* greedy_32 (ends with EOS when it was produced) */
    float (*sample)[5];             /* [n_ids][5]: logits_sample */
} golden_prompt;

/* Reads a whole file; stops the test when it cannot. */
static inline char *golden_read_file(const char *path, size_t *len) {
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

/* Fills g[GOLDEN_N_PROMPTS] from golden.json; free with golden_free. */
static inline void golden_load(golden_prompt *g) {
    size_t len;
    char *text = golden_read_file(BLURB_TEST_DATA "/golden.json", &len);
    cJSON *root = cJSON_ParseWithLength(text, len);
    REQUIRE(root != NULL && cJSON_IsArray(root) && cJSON_GetArraySize(root) == GOLDEN_N_PROMPTS);
    for (int p = 0; p < GOLDEN_N_PROMPTS; p++) {
        const cJSON *o = cJSON_GetArrayItem(root, p);
        const cJSON *ids = cJSON_GetObjectItem(o, "ids");
        const cJSON *greedy = cJSON_GetObjectItem(o, "greedy_32");
        const cJSON *sample = cJSON_GetObjectItem(o, "logits_sample");
        REQUIRE(cJSON_IsArray(ids) && cJSON_IsArray(greedy) && cJSON_IsArray(sample));
        g[p].n_ids = cJSON_GetArraySize(ids);
        g[p].n_greedy = cJSON_GetArraySize(greedy);
        REQUIRE(g[p].n_ids >= 1 && g[p].n_greedy >= 1 && g[p].n_greedy <= GOLDEN_MAX_NEW);
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

static inline void golden_free(golden_prompt *g) {
    for (int p = 0; p < GOLDEN_N_PROMPTS; p++) {
        free(g[p].ids);
        free(g[p].sample);
    }
}

#endif
