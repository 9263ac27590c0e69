/* KV-cache parity of the CPU backend: 32 greedy tokens decoded with the KV
 * cache (one prefill, then one token per step) equal those of full
 * recomputation without it, for batch sizes 1, 3 and 8 and prompt lengths 1,
 * 7 and 300, plus one batch mixing the three lengths. The logits of the two
 * ways are compared at every step too (within 1e-4; this backend in fact
 * computes a row identically either way, and the largest difference is printed).
 *
 * Full recomputation: at each step every slot is reset and its whole sequence
 * so far is prefilled from scratch; the greedy token of that recomputation is
 * what the sequence continues with. Sanitizer builds, where the fp32 loops
 * run several times slower, recompute the prompt-length-300 cases once, from
 * empty slots, as a prefill of each final sequence in two chunks (the prompt,
 * then the 31 tokens the cache chose, with logits at every position: a causal
 * model's logits at position t are those of the prefix up to t), and check
 * that each of the 32 positions predicts the token the cache chose, with the
 * same logits. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blurb/backend.h"
#include "check.h"
#include "model_test_util.h"

#define N_NEW 32
#define MAX_B 8
#define LOGIT_TOL 1e-4f

static float max_abs_diff(const float *a, const float *b, int n) {
    float d = 0.0f;
    for (int i = 0; i < n; i++) {
        float e = fabsf(a[i] - b[i]);
        if (!(e <= d)) d = e; /* NaN counts as worst */
    }
    return d;
}

/* One case: B sequences with prompt lengths len[0..B). per_step chooses the
 * recomputation (see the top). Returns the largest logits difference seen. */
static float run_case(blurb_backend *cached, blurb_backend *full, int B, const int *len, int V, uint64_t seed,
                      bool per_step) {
    int32_t *seq_c[MAX_B], *seq_f[MAX_B]; /* prompt then generated tokens, per way */
    float *row_c = malloc((size_t)V * sizeof(float)), *row_f = malloc((size_t)V * sizeof(float));
    /* Cached logits of every step, kept when recomputing in one prefill. */
    float *kept = per_step ? NULL : malloc((size_t)B * N_NEW * (size_t)V * sizeof(float));
    REQUIRE(row_c && row_f && (per_step || kept));
    blurb_chunk chunks[MAX_B];
    for (int b = 0; b < B; b++) {
        seq_c[b] = malloc((size_t)(len[b] + N_NEW) * sizeof(int32_t));
        seq_f[b] = malloc((size_t)(len[b] + N_NEW) * sizeof(int32_t));
        REQUIRE(seq_c[b] && seq_f[b]);
        test_random_tokens(seq_c[b], len[b], seed + (uint64_t)b, V);
        memcpy(seq_f[b], seq_c[b], (size_t)len[b] * sizeof(int32_t));
        test_reset(cached, b);
        chunks[b] = (blurb_chunk){b, seq_c[b], len[b]};
    }
    test_forward(cached, chunks, B, false); /* prefill */

    float worst = 0.0f;
    for (int step = 0; step < N_NEW; step++) {
        if (per_step) { /* every sequence as it stands, from empty slots */
            for (int b = 0; b < B; b++) {
                test_reset(full, b);
                chunks[b] = (blurb_chunk){b, seq_f[b], len[b] + step};
            }
            test_forward(full, chunks, B, false);
        }
        for (int b = 0; b < B; b++) {
            test_logits(cached, b, row_c);
            seq_c[b][len[b] + step] = test_argmax(row_c, V);
            if (!per_step) {
                memcpy(kept + ((size_t)b * N_NEW + (size_t)step) * (size_t)V, row_c, (size_t)V * sizeof(float));
                continue;
            }
            test_logits(full, b, row_f);
            seq_f[b][len[b] + step] = test_argmax(row_f, V);
            float d = max_abs_diff(row_c, row_f, V);
            if (!(d <= worst)) worst = d;
            CHECKF(d <= LOGIT_TOL, "B %d, prompt length %d, sequence %d, step %d: logits differ by %g", B, len[b], b,
                   step, d);
        }
        if (step + 1 < N_NEW) { /* one decode step on the cache */
            for (int b = 0; b < B; b++) chunks[b] = (blurb_chunk){b, &seq_c[b][len[b] + step], 1};
            test_forward(cached, chunks, B, false);
        }
    }
    if (!per_step) {
        /* From empty slots: the prompts (last-position logits = step 0), then
         * the first 31 cached tokens as one more prefill chunk each, with
         * logits at every position (= steps 1..31). */
        for (int b = 0; b < B; b++) {
            test_reset(full, b);
            chunks[b] = (blurb_chunk){b, seq_c[b], len[b]};
        }
        test_forward(full, chunks, B, false);
        for (int pass = 0; pass < 2; pass++) {
            if (pass == 1) {
                for (int b = 0; b < B; b++) chunks[b] = (blurb_chunk){b, seq_c[b] + len[b], N_NEW - 1};
                test_forward(full, chunks, B, true);
            }
            for (int b = 0; b < B; b++) {
                for (int step = pass; step < (pass ? N_NEW : 1); step++) {
                    test_logits(full, pass ? b * (N_NEW - 1) + step - 1 : b, row_f);
                    seq_f[b][len[b] + step] = test_argmax(row_f, V);
                    float d = max_abs_diff(kept + ((size_t)b * N_NEW + (size_t)step) * (size_t)V, row_f, V);
                    if (!(d <= worst)) worst = d;
                    CHECKF(d <= LOGIT_TOL, "B %d, prompt length %d, sequence %d, step %d: logits differ by %g", B,
                           len[b], b, step, d);
                }
            }
        }
    }
    for (int b = 0; b < B; b++) {
        bool same = memcmp(seq_c[b] + len[b], seq_f[b] + len[b], N_NEW * sizeof(int32_t)) == 0;
        CHECKF(same, "B %d, prompt length %d, sequence %d: cached greedy tokens differ from full recomputation", B,
               len[b], b);
        free(seq_c[b]);
        free(seq_f[b]);
    }
    free(kept);
    free(row_c);
    free(row_f);
    return worst;
}

int main(void) {
    double t0 = test_now();
#ifdef BLURB_SANITIZE
    const bool sanitizer = true;
#else
    const bool sanitizer = false;
#endif
    blurb_model *m = test_load_default_model();
    const int V = m->cfg.vocab_size;
    REQUIRE(m->cfg.n_ctx >= 300 + N_NEW);
    /* One thread each: this is the longest CPU test and CTest runs tests side
     * by side (ctest -j), where busy-waiting OpenMP teams only slow each
     * other down. The thread count changes no value (see batch_invariance). */
    blurb_backend *cached = test_cpu_backend(m, MAX_B, 1);
    blurb_backend *full = test_cpu_backend(m, MAX_B, 1);

    const int batch_sizes[] = {1, 3, 8};
    const int prompt_lens[] = {1, 7, 300};
    for (int li = 0; li < 3; li++) {
        const bool per_step = !(sanitizer && prompt_lens[li] >= 100);
        for (int bi = 0; bi < 3; bi++) {
            int B = batch_sizes[bi], len[MAX_B];
            for (int b = 0; b < B; b++) len[b] = prompt_lens[li];
            double t = test_now();
            float d = run_case(cached, full, B, len, V, (uint64_t)(100 * li + 10 * bi), per_step);
            printf("batch %d, prompt length %3d: max logits difference %g (%s, %.2f s)\n", B, prompt_lens[li], d,
                   per_step ? "recomputed at every step" : "recomputed in one prefill", test_now() - t);
        }
    }
    /* The three lengths in one batch. */
    float d = run_case(cached, full, 3, prompt_lens, V, 1000, !sanitizer);
    printf("batch 3, prompt lengths 1, 7, 300: max logits difference %g (%s)\n", d,
           sanitizer ? "recomputed in one prefill" : "recomputed at every step");

    blurb_backend_free(cached);
    blurb_backend_free(full);
    blurb_model_free(m);
    printf("time %.2f s\n", test_now() - t0);
    return check_finish("cpu_kv_cache");
}
