/* Parity of blurb_backend_decode with the plain loop it stands for, shared by
 * tests/test_backend_decode.c (cpu) and tests/test_cuda_decode.c (cuda).
 *
 * Two backends of the same kind and model get the same five prompts (lengths
 * 1, 7, 30, 3 and 12). Backend `multi` then decodes in calls of n_steps[c]
 * steps via blurb_backend_decode; backend `loop` runs the same steps as one
 * forward (one token per slot) + one sample each, feeding each draw back
 * through the host. Every draw and logprob must be bit-identical, and so must
 * the slot lengths, the slot histories and the last step's logits. The five
 * sequences sample differently (greedy; T 0.9 top-p 0.9; top-k 40 with
 * repetition penalty 1.3; T 1.2 with min-new-tokens; and, when `extended`,
 * one with a presence penalty, which the cuda backend draws on the host). */
#ifndef BLURB_TESTS_DECODE_TEST_UTIL_H
#define BLURB_TESTS_DECODE_TEST_UTIL_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blurb/backend.h"
#include "check.h"

#define DT_N 5

static inline void dt_fail(const char *what, const blurb_err *err) {
    fprintf(stderr, "%s: %s\n", what, err->msg);
    exit(1);
}

/* Returns the number of draws compared. */
static inline int decode_parity(blurb_backend *multi, blurb_backend *loop, const int *n_steps, int n_calls,
                                bool extended) {
    const int lens[DT_N] = {1, 7, 30, 3, 12};
    const int slots[DT_N] = {2, 0, 4, 1, 3};
    const int V = multi->vocab_size;
    REQUIRE(loop->vocab_size == V && multi->n_slots >= 5 && loop->n_slots >= 5);
    blurb_sampling sp[DT_N];
    for (int i = 0; i < DT_N; i++) {
        sp[i] = blurb_sampling_default();
        sp[i].eos_token_id = 50256 < V ? 50256 : -1;
    }
    sp[0].temperature = 0.0f;
    sp[1].temperature = 0.9f;
    sp[1].top_p = 0.9f;
    sp[2].top_k = 40;
    sp[2].top_p = 1.0f;
    sp[2].repetition_penalty = 1.3f;
    sp[3].temperature = 1.2f;
    sp[3].min_new_tokens = 100;
    if (extended) sp[4].presence_penalty = 0.5f;

    blurb_err err;
    blurb_err_clear(&err);
    int32_t prompt[64];
    int32_t next_m[DT_N], next_l[DT_N];
    int n_gen = 0;
    blurb_sample_req reqs[DT_N];
    blurb_backend *both[2] = {multi, loop};
    for (int b = 0; b < 2; b++) {
        blurb_chunk ch[DT_N];
        int32_t toks[DT_N][64];
        for (int i = 0; i < DT_N; i++) {
            for (int t = 0; t < lens[i]; t++) toks[i][t] = (int32_t)((i * 7919 + t * 104729 + 11) % V);
            ch[i] = (blurb_chunk){slots[i], toks[i], lens[i]};
            if (blurb_backend_reset(both[b], slots[i], &err) < 0) dt_fail("reset", &err);
        }
        if (blurb_backend_forward(both[b], ch, DT_N, false, &err) < 0) dt_fail("prefill", &err);
        for (int i = 0; i < DT_N; i++)
            reqs[i] = (blurb_sample_req){i, slots[i], &sp[i], 0x1234567ull * (uint64_t)(i + 1), 0};
        if (blurb_backend_sample(both[b], reqs, DT_N, b ? next_l : next_m, NULL, &err) < 0) dt_fail("sample", &err);
    }
    (void)prompt;
    CHECK(memcmp(next_m, next_l, sizeof next_m) == 0);
    n_gen = 1;
    int compared = 0;
    for (int c = 0; c < n_calls; c++) {
        const int K = n_steps[c];
        int32_t *out_m = malloc((size_t)K * DT_N * sizeof *out_m), *out_l = malloc((size_t)K * DT_N * sizeof *out_l);
        float *lp_m = malloc((size_t)K * DT_N * sizeof *lp_m), *lp_l = malloc((size_t)K * DT_N * sizeof *lp_l);
        REQUIRE(out_m && out_l && lp_m && lp_l);
        for (int i = 0; i < DT_N; i++) reqs[i] = (blurb_sample_req){0, slots[i], &sp[i], 0x1234567ull * (uint64_t)(i + 1), n_gen};
        if (blurb_backend_decode(multi, next_m, reqs, DT_N, K, out_m, lp_m, &err) < 0) dt_fail("decode", &err);
        for (int s = 0; s < K; s++) {
            blurb_chunk ch[DT_N];
            blurb_sample_req rq[DT_N];
            for (int i = 0; i < DT_N; i++) {
                ch[i] = (blurb_chunk){slots[i], s ? &out_l[(s - 1) * DT_N + i] : &next_l[i], 1};
                rq[i] = (blurb_sample_req){i, slots[i], &sp[i], 0x1234567ull * (uint64_t)(i + 1), n_gen + s};
            }
            if (blurb_backend_forward(loop, ch, DT_N, false, &err) < 0) dt_fail("loop forward", &err);
            if (blurb_backend_sample(loop, rq, DT_N, out_l + s * DT_N, lp_l + s * DT_N, &err) < 0)
                dt_fail("loop sample", &err);
        }
        for (int k = 0; k < K * DT_N; k++) {
            CHECKF(out_m[k] == out_l[k], "call %d step %d seq %d: decode drew %d, the loop %d", c, k / DT_N, k % DT_N,
                   (int)out_m[k], (int)out_l[k]);
            CHECKF(memcmp(&lp_m[k], &lp_l[k], sizeof(float)) == 0, "call %d step %d seq %d: logprob %.9g vs %.9g", c,
                   k / DT_N, k % DT_N, (double)lp_m[k], (double)lp_l[k]);
        }
        compared += K * DT_N;
        for (int i = 0; i < DT_N; i++) {
            next_m[i] = out_m[(K - 1) * DT_N + i];
            next_l[i] = out_l[(K - 1) * DT_N + i];
        }
        n_gen += K;
        free(out_m);
        free(out_l);
        free(lp_m);
        free(lp_l);
    }
    CHECK(multi->n_rows == DT_N);
    float *a = malloc((size_t)V * sizeof *a), *b = malloc((size_t)V * sizeof *b);
    REQUIRE(a && b);
    for (int i = 0; i < DT_N; i++) {
        const int s = slots[i];
        CHECKF(multi->slot_len[s] == loop->slot_len[s] && multi->slot_len[s] == lens[i] + n_gen - 1,
               "slot %d: length %d vs %d", s, multi->slot_len[s], loop->slot_len[s]);
        CHECKF(memcmp(multi->slot_tokens[s], loop->slot_tokens[s], (size_t)loop->slot_len[s] * sizeof(int32_t)) == 0,
               "slot %d: histories differ", s);
        if (blurb_backend_logits(multi, i, a, &err) < 0 || blurb_backend_logits(loop, i, b, &err) < 0)
            dt_fail("logits", &err);
        CHECKF(memcmp(a, b, (size_t)V * sizeof *a) == 0, "sequence %d: last logits differ", i);
    }
    free(a);
    free(b);
    return compared;
}

#endif
