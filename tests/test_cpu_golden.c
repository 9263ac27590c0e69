/* CPU backend against the reference (tests/data/GOLDEN.md): the default model
 * fed the golden token ids must give the golden last-position logits (all
 * 50,257 of them) and the sampled logits of every prompt position within 1e-3,
 * and greedy decoding with the KV cache must reproduce greedy_32 exactly. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blurb/backend.h"
#include "blurb/sampler.h"
#include "check.h"
#include "golden_test_util.h"
#include "model_test_util.h"

#define N_PROMPTS GOLDEN_N_PROMPTS
#define MAX_NEW GOLDEN_MAX_NEW
#define TOL 1e-3f

int main(void) {
    double t0 = test_now();
    blurb_model *m = test_load_default_model();
    const int V = m->cfg.vocab_size;
    REQUIRE(V == 50257);
    golden_prompt g[N_PROMPTS];
    golden_load(g);

    size_t len;
    char *raw = golden_read_file(BLURB_TEST_DATA "/golden_last_logits.f32", &len);
    REQUIRE(len == (size_t)N_PROMPTS * (size_t)V * sizeof(float));
    float *ref_last = (float *)(void *)raw; /* little-endian host, as the file */

    blurb_backend *be = test_cpu_backend(m, N_PROMPTS, 0);
    float *row = malloc((size_t)V * sizeof *row);
    float *last_all = malloc((size_t)N_PROMPTS * (size_t)V * sizeof *last_all);
    REQUIRE(row && last_all);

    /* 1. All eight prompts in one ragged prefill, logits at every position. */
    blurb_chunk chunks[N_PROMPTS];
    for (int p = 0; p < N_PROMPTS; p++) chunks[p] = (blurb_chunk){p, g[p].ids, g[p].n_ids};
    test_forward(be, chunks, N_PROMPTS, true);
    int base = 0;
    float worst_last = 0.0f, worst_sample = 0.0f;
    for (int p = 0; p < N_PROMPTS; p++) {
        for (int t = 0; t < g[p].n_ids; t++) {
            test_logits(be, base + t, row);
            for (int j = 0; j < 5; j++) {
                float d = fabsf(row[golden_sample_ids[j]] - g[p].sample[t][j]);
                if (!(d <= worst_sample)) worst_sample = d; /* NaN counts as worst */
                CHECKF(d <= TOL, "prompt %d position %d id %d: %.6f vs golden %.6f", p, t, golden_sample_ids[j],
                       row[golden_sample_ids[j]], g[p].sample[t][j]);
            }
        }
        float d_max = 0.0f;
        for (int v = 0; v < V; v++) {
            float d = fabsf(row[v] - ref_last[(size_t)p * (size_t)V + (size_t)v]);
            if (!(d <= d_max)) d_max = d;
        }
        if (!(d_max <= worst_last)) worst_last = d_max;
        CHECKF(d_max <= TOL, "prompt %d: last-position logits max-abs error %g", p, d_max);
        memcpy(last_all + (size_t)p * (size_t)V, row, (size_t)V * sizeof(float));
        base += g[p].n_ids;
    }
    printf("max-abs error: last-position logits %.3g, logits_sample %.3g (tolerance %g)\n", worst_last,
           worst_sample, TOL);

    /* 2. Greedy decoding with the KV cache: fresh slots, last-position logits
     * only, sequences leave the batch after EOS. The prefill's last rows must
     * equal (bit for bit) those of the all-positions forward above. */
    for (int p = 0; p < N_PROMPTS; p++) test_reset(be, p);
    test_forward(be, chunks, N_PROMPTS, false);
    int32_t out[N_PROMPTS][MAX_NEW];
    int n_out[N_PROMPTS] = {0};
    bool done[N_PROMPTS] = {false};
    int eos = m->cfg.eos_token_id;
    REQUIRE(eos == 50256);
    int active[N_PROMPTS];
    int n_active = N_PROMPTS;
    for (int p = 0; p < N_PROMPTS; p++) active[p] = p;
    /* sample() with temperature 0 must agree with the argmax of logits(). */
    blurb_sampling greedy = blurb_sampling_default();
    greedy.temperature = 0.0f;
    greedy.eos_token_id = eos;
    blurb_sample_req reqs[N_PROMPTS];
    int32_t drawn[N_PROMPTS];
    blurb_err err;
    blurb_err_clear(&err);
    for (int step = 0; n_active > 0; step++) {
        for (int i = 0; i < n_active; i++) reqs[i] = (blurb_sample_req){i, active[i], &greedy, 1, step};
        REQUIRE(blurb_backend_sample(be, reqs, n_active, drawn, NULL, &err) == 0);
        for (int i = 0; i < n_active; i++) {
            int p = active[i];
            test_logits(be, i, row);
            out[p][n_out[p]++] = test_argmax(row, V);
            CHECKF(drawn[i] == out[p][n_out[p] - 1], "prompt %d step %d: sample() drew %d, argmax is %d", p, step,
                   drawn[i], out[p][n_out[p] - 1]);
            if (out[p][n_out[p] - 1] == eos || n_out[p] == MAX_NEW) done[p] = true;
        }
        if (step == 0)
            for (int p = 0; p < N_PROMPTS; p++) {
                test_logits(be, p, row);
                CHECKF(memcmp(row, last_all + (size_t)p * (size_t)V, (size_t)V * sizeof(float)) == 0,
                       "prompt %d: last-position logits differ between all_logits true and false", p);
            }
        int k = 0;
        blurb_chunk next[N_PROMPTS];
        for (int i = 0; i < n_active; i++) {
            int p = active[i];
            if (done[p]) continue;
            active[k] = p;
            next[k] = (blurb_chunk){p, &out[p][n_out[p] - 1], 1};
            k++;
        }
        n_active = k;
        if (n_active > 0) test_forward(be, next, n_active, false);
    }
    for (int p = 0; p < N_PROMPTS; p++) {
        bool same = n_out[p] == g[p].n_greedy && memcmp(out[p], g[p].greedy, (size_t)n_out[p] * sizeof(int32_t)) == 0;
        CHECKF(same, "prompt %d: greedy continuation differs from greedy_32 (%d tokens vs %d)", p, n_out[p],
               g[p].n_greedy);
        if (!same)
            for (int i = 0; i < n_out[p] && i < g[p].n_greedy; i++)
                if (out[p][i] != g[p].greedy[i]) {
                    fprintf(stderr, "  first difference at new token %d: %d vs golden %d\n", i, out[p][i],
                            g[p].greedy[i]);
                    break;
                }
    }

    free(row);
    free(last_all);
    free(raw);
    for (int p = 0; p < N_PROMPTS; p++) {
        free(g[p].ids);
        free(g[p].sample);
    }
    blurb_backend_free(be);
    blurb_model_free(m);
    printf("time %.2f s\n", test_now() - t0);
    return check_finish("cpu_golden");
}
