/* CUDA backend in fp32 against the references: the default model fed the
 * golden prompts (tests/data/GOLDEN.md) must give logits within 1e-3 of the
 * golden last-position rows, of the golden logits_sample at every position,
 * and of the CPU backend at every position and vocabulary id; greedy decoding
 * with the KV cache (decode steps, CUDA graphs) must reproduce greedy_32 and
 * the CPU backend's continuation token for token. Skips without a device. */
#include <cjson/cJSON.h>
#include "cuda_test_util.h"

#define N GOLDEN_N_PROMPTS
#define TOL 1e-3f

/* Greedy decoding of the N prompts: prefill all, then decode steps until EOS
 * or 32 tokens; the cuda run draws through sample() with temperature 0. */
static void greedy(blurb_backend *be, const golden_prompt *g, int32_t out[N][GOLDEN_MAX_NEW], int *n_out,
                   int eos, bool use_sampler) {
    const int V = be->vocab_size;
    float *row = malloc((size_t)V * sizeof *row);
    REQUIRE(row != NULL);
    blurb_chunk chunks[N];
    for (int p = 0; p < N; p++) {
        cuda_test_reset(be, p);
        chunks[p] = (blurb_chunk){p, g[p].ids, g[p].n_ids};
        n_out[p] = 0;
    }
    cuda_test_forward(be, chunks, N, false);
    int active[N], n_active = N;
    for (int p = 0; p < N; p++) active[p] = p;
    blurb_sampling sp = blurb_sampling_default();
    sp.temperature = 0.0f;
    sp.eos_token_id = eos;
    while (n_active > 0) {
        int32_t tok[N];
        if (use_sampler) {
            blurb_sample_req req[N];
            for (int i = 0; i < n_active; i++)
                req[i] = (blurb_sample_req){i, active[i], &sp, 0x1234u, n_out[active[i]]};
            blurb_err err;
            blurb_err_clear(&err);
            if (blurb_backend_sample(be, req, n_active, tok, NULL, &err) < 0) {
                fprintf(stderr, "sample: %s\n", err.msg);
                exit(1);
            }
        }
        for (int i = 0; i < n_active; i++) {
            cuda_test_logits(be, i, row);
            const int am = cuda_test_argmax(row, V);
            if (use_sampler) CHECKF(tok[i] == am, "greedy sample %d vs host argmax %d", (int)tok[i], am);
            else tok[i] = am;
        }
        blurb_chunk next[N];
        int k = 0;
        for (int i = 0; i < n_active; i++) {
            const int p = active[i];
            out[p][n_out[p]++] = tok[i];
            if (tok[i] == eos || n_out[p] == GOLDEN_MAX_NEW) continue;
            active[k] = p;
            next[k] = (blurb_chunk){p, &out[p][n_out[p] - 1], 1};
            k++;
        }
        n_active = k;
        if (n_active > 0) cuda_test_forward(be, next, n_active, false);
    }
    free(row);
}

int main(void) {
    cuda_test_require_device();
    const double t0 = cuda_test_now();
    blurb_model *m = cuda_test_default_model();
    const int V = m->cfg.vocab_size;
    REQUIRE(V == 50257);
    golden_prompt g[N];
    golden_load(g);
    size_t len;
    char *raw = golden_read_file(BLURB_TEST_DATA "/golden_last_logits.f32", &len);
    REQUIRE(len == (size_t)N * (size_t)V * sizeof(float));
    const float *ref_last = (const float *)(const void *)raw;

    blurb_backend *gpu = cuda_test_backend(m, BLURB_DTYPE_F32, N, true);
    blurb_backend *cpu = cuda_test_cpu_backend(m, N);
    float *a = malloc((size_t)V * sizeof *a), *b = malloc((size_t)V * sizeof *b);
    float *last_all = malloc((size_t)N * (size_t)V * sizeof *last_all);
    REQUIRE(a && b && last_all);

    /* 1. teacher-forced: every position of every prompt in one ragged forward */
    blurb_chunk chunks[N];
    for (int p = 0; p < N; p++) chunks[p] = (blurb_chunk){p, g[p].ids, g[p].n_ids};
    cuda_test_forward(gpu, chunks, N, true);
    cuda_test_forward(cpu, chunks, N, true);
    float worst_cpu = 0.0f, worst_last = 0.0f, worst_sample = 0.0f;
    int row = 0;
    for (int p = 0; p < N; p++) {
        for (int t = 0; t < g[p].n_ids; t++, row++) {
            cuda_test_logits(gpu, row, a);
            cuda_test_logits(cpu, row, b);
            float d_cpu = 0.0f;
            for (int v = 0; v < V; v++) {
                const float d = fabsf(a[v] - b[v]);
                if (!(d <= d_cpu)) d_cpu = d; /* NaN counts as the worst */
            }
            if (!(d_cpu <= worst_cpu)) worst_cpu = d_cpu;
            CHECKF(d_cpu <= TOL, "prompt %d position %d: max |cuda - cpu| = %g", p, t, d_cpu);
            for (int j = 0; j < 5; j++) {
                const float d = fabsf(a[golden_sample_ids[j]] - g[p].sample[t][j]);
                if (!(d <= worst_sample)) worst_sample = d;
                CHECKF(d <= TOL, "prompt %d position %d id %d: %.6f vs golden %.6f", p, t, golden_sample_ids[j],
                       a[golden_sample_ids[j]], g[p].sample[t][j]);
            }
        }
        float d_last = 0.0f;
        for (int v = 0; v < V; v++) {
            const float d = fabsf(a[v] - ref_last[(size_t)p * (size_t)V + (size_t)v]);
            if (!(d <= d_last)) d_last = d;
        }
        if (!(d_last <= worst_last)) worst_last = d_last;
        CHECKF(d_last <= TOL, "prompt %d: last-position logits max |cuda - golden| = %g", p, d_last);
        memcpy(last_all + (size_t)p * (size_t)V, a, (size_t)V * sizeof(float));
    }
    printf("fp32 max-abs error: vs cpu %.3g, vs golden last rows %.3g, vs golden samples %.3g (tolerance %g)\n",
           worst_cpu, worst_last, worst_sample, TOL);

    /* 2. the same prompts with last-position logits only: the rows must be the
     * same bits (GEMM rows do not depend on M, attention on the neighbours) */
    for (int p = 0; p < N; p++) cuda_test_reset(gpu, p);
    cuda_test_forward(gpu, chunks, N, false);
    for (int p = 0; p < N; p++) {
        cuda_test_logits(gpu, p, a);
        CHECKF(memcmp(a, last_all + (size_t)p * (size_t)V, (size_t)V * sizeof(float)) == 0,
               "prompt %d: last-position logits differ between all_logits true and false", p);
    }

    /* 3. greedy continuations: cuda (GPU sampler, T = 0) vs golden and cpu */
    static int32_t out_gpu[N][GOLDEN_MAX_NEW], out_cpu[N][GOLDEN_MAX_NEW];
    int n_gpu[N], n_cpu[N];
    const int eos = m->cfg.eos_token_id;
    greedy(gpu, g, out_gpu, n_gpu, eos, true);
    greedy(cpu, g, out_cpu, n_cpu, eos, false);
    for (int p = 0; p < N; p++) {
        const bool same_golden =
            n_gpu[p] == g[p].n_greedy && memcmp(out_gpu[p], g[p].greedy, (size_t)n_gpu[p] * sizeof(int32_t)) == 0;
        const bool same_cpu = n_gpu[p] == n_cpu[p] && memcmp(out_gpu[p], out_cpu[p], (size_t)n_gpu[p] * sizeof(int32_t)) == 0;
        CHECKF(same_golden, "prompt %d: cuda greedy continuation differs from greedy_32", p);
        CHECKF(same_cpu, "prompt %d: cuda greedy continuation differs from the cpu backend's", p);
        if (!same_golden)
            for (int i = 0; i < n_gpu[p] && i < g[p].n_greedy; i++)
                if (out_gpu[p][i] != g[p].greedy[i]) {
                    fprintf(stderr, "  first difference at new token %d: %d vs golden %d\n", i, out_gpu[p][i],
                            g[p].greedy[i]);
                    break;
                }
    }

    free(a);
    free(b);
    free(last_all);
    free(raw);
    golden_free(g);
    blurb_backend_free(gpu);
    blurb_backend_free(cpu);
    blurb_model_free(m);
    printf("time %.2f s\n", cuda_test_now() - t0);
    return check_finish("golden_prompt");
}
