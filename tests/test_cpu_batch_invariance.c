/* Batch independence of the CPU backend: each of 17 prompts (lengths 1 to
 * 200) gets bit-identical logits (memcmp) at the prefill and at each of 32
 * greedy decode steps whether it runs alone or inside the batch of all 17.
 * The batch lists the prompts in an order unrelated to their slots, and the
 * lone runs use one thread where the batch uses two, so neither
 * the neighbours, the row position in the batch nor the thread count may
 * change a value. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blurb/backend.h"
#include "check.h"
#include "model_test_util.h"

#define N_PROMPTS 17
#define N_NEW 32

int main(void) {
    double t0 = test_now();
    blurb_model *m = test_load_default_model();
    const int V = m->cfg.vocab_size;
    blurb_backend *batch = test_cpu_backend(m, N_PROMPTS, 2);
    blurb_backend *alone = test_cpu_backend(m, N_PROMPTS, 1);

    int len[N_PROMPTS], slot[N_PROMPTS];
    int32_t *seq_b[N_PROMPTS], *seq_a[N_PROMPTS]; /* prompt then generated tokens */
    for (int p = 0; p < N_PROMPTS; p++) {
        len[p] = 1 + (199 * p) / (N_PROMPTS - 1); /* 1, 13, 25, ..., 200 */
        slot[p] = (p * 7 + 3) % N_PROMPTS;        /* a permutation: row order != slot order */
        seq_b[p] = malloc((size_t)(len[p] + N_NEW) * sizeof(int32_t));
        seq_a[p] = malloc((size_t)(len[p] + N_NEW) * sizeof(int32_t));
        REQUIRE(seq_b[p] && seq_a[p]);
        test_random_tokens(seq_b[p], len[p], 5000 + (uint64_t)p, V);
        memcpy(seq_a[p], seq_b[p], (size_t)len[p] * sizeof(int32_t));
    }
    REQUIRE(len[0] == 1 && len[N_PROMPTS - 1] == 200);

    float *row_b = malloc((size_t)V * sizeof(float)), *row_a = malloc((size_t)V * sizeof(float));
    REQUIRE(row_b && row_a);
    blurb_chunk chunks[N_PROMPTS];
    int n_diff = 0;
    for (int step = 0; step <= N_NEW; step++) {
        /* Batch: the prefill of all prompts, then one token each per step. */
        for (int p = 0; p < N_PROMPTS; p++) {
            int pos = step == 0 ? 0 : len[p] + step - 1;
            chunks[p] = (blurb_chunk){slot[p], seq_b[p] + pos, step == 0 ? len[p] : 1};
        }
        test_forward(batch, chunks, N_PROMPTS, false);
        for (int p = 0; p < N_PROMPTS; p++) {
            test_logits(batch, p, row_b);
            if (step < N_NEW) seq_b[p][len[p] + step] = test_argmax(row_b, V);

            /* The same prompt alone (a batch of one) on the other backend. */
            int pos = step == 0 ? 0 : len[p] + step - 1;
            blurb_chunk one = {slot[p], seq_a[p] + pos, step == 0 ? len[p] : 1};
            test_forward(alone, &one, 1, false);
            test_logits(alone, 0, row_a);
            if (step < N_NEW) seq_a[p][len[p] + step] = test_argmax(row_a, V);

            bool same = memcmp(row_a, row_b, (size_t)V * sizeof(float)) == 0;
            if (!same) n_diff++;
            CHECKF(same, "prompt %d (length %d): step %d logits differ alone vs in the batch of %d", p, len[p], step,
                   N_PROMPTS);
        }
    }
    for (int p = 0; p < N_PROMPTS; p++) {
        CHECKF(memcmp(seq_a[p] + len[p], seq_b[p] + len[p], N_NEW * sizeof(int32_t)) == 0,
               "prompt %d: greedy tokens differ alone vs in the batch", p);
        free(seq_a[p]);
        free(seq_b[p]);
    }
    printf("%d prompts x %d steps compared bit for bit, %d rows differ\n", N_PROMPTS, N_NEW + 1, n_diff);
    free(row_a);
    free(row_b);
    blurb_backend_free(batch);
    blurb_backend_free(alone);
    blurb_model_free(m);
    printf("time %.2f s\n", test_now() - t0);
    return check_finish("cpu_batch_invariance");
}
