/* The CUDA sampling kernel must draw the same token as the reference
 * blurb_sample_row (host/sampler.c) from the same fp32 logits, for every
 * sampling option: greedy, temperature, top-k (with ties), top-p, repetition
 * penalty with a history, EOS masking, NaN/inf logits, flat rows and rows
 * whose tokens crowd one bucket (the kernel's merge-sort path). Log-probs
 * must agree to 1e-6. Part 1 feeds hand-made rows straight to the kernel;
 * part 2 goes through the backend: the default model's fp32 logits of the
 * golden prompts, sampled on the GPU with each slot's history, against the
 * reference on the same rows (copied out with logits()). Skips without a device. */
#include <cjson/cJSON.h>
#include "blurb/sampler.h"
#include "cuda_test_util.h"
#ifdef BLURB_HAVE_CUDA
#include "../host/cuda_backend.h"
#endif

#define NP 11 /* parameter sets */
#define NSTEP 3

static blurb_sampling params(int k, int eos) {
    blurb_sampling s = blurb_sampling_default();
    s.eos_token_id = eos;
    switch (k) {
    case 0: break;                                                        /* T 0.8, top-p 0.9 */
    case 1: s.temperature = 0.0f; break;                                  /* greedy */
    case 2: s.top_p = 0.0f; break;                                        /* greedy through top-p */
    case 3: s.temperature = 1.0f; s.top_p = 1.0f; break;                  /* plain draw, no division */
    case 4: s.top_k = 50; s.top_p = 0.95f; s.temperature = 1.2f; break;
    case 5: s.top_k = 1; break;
    case 6: s.top_k = 60000; s.top_p = 0.5f; break;                       /* top-k off */
    case 7: s.repetition_penalty = 1.5f; s.temperature = 0.9f; break;
    case 8: s.min_new_tokens = 5; break;                                  /* EOS masked (n_generated < 5) */
    case 9: s.top_p = 0.999f; s.temperature = 2.0f; break;
    case 10: s.top_k = 300; s.top_p = 1.0f; s.repetition_penalty = 0.8f; break;
    }
    return s;
}

static bool lp_same(float a, float b) {
    if (isnan(a) || isnan(b)) return isnan(a) && isnan(b);
    if (isinf(a) || isinf(b)) return a == b;
    return fabsf(a - b) <= 1e-6f * fmaxf(1.0f, fabsf(b));
}

#ifdef BLURB_HAVE_CUDA
static void synthetic(int V, int eos) {
    enum { NR = 10 };
    float *rows = malloc((size_t)NR * (size_t)V * sizeof *rows);
    REQUIRE(rows != NULL);
    uint32_t s = 777u;
    for (int r = 0; r < NR; r++) {
        float *x = rows + (size_t)r * (size_t)V;
        for (int v = 0; v < V; v++) {
            s = s * 1664525u + 1013904223u;
            const float u = (float)(s >> 8) * 0x1p-24f; /* [0, 1) */
            switch (r) {
            case 0: x[v] = 0.05f * (u - 0.5f); break;                 /* nearly flat */
            case 1: x[v] = 4.0f * (u - 0.5f) + (v % 97 == 0 ? 6.0f : 0.0f); break;
            case 2: x[v] = 0.0f; break;                               /* all equal: one huge bucket */
            case 3: x[v] = 1e-6f * (float)v; break;                   /* distinct, crowded buckets */
            case 4: x[v] = 10.0f * (u - 0.5f); if (v % 1000 == 3) x[v] = NAN; if (v % 777 == 5) x[v] = -INFINITY; break;
            case 5: x[v] = u; if (v == 4242) x[v] = INFINITY; break;  /* +inf: greedy fallback */
            case 6: x[v] = -3.0f - u; break;                          /* all negative (penalty multiplies) */
            case 7: x[v] = 1e30f * (u - 0.5f); break;                 /* huge: divisions overflow to inf */
            case 8: x[v] = (float)((v * 7919) % 13) * 0.5f; break;    /* many exact ties */
            default: x[v] = 20.0f * u * u * u; break;                 /* peaked */
            }
        }
    }
    const int n = NR * NP * NSTEP;
    blurb_sampling sp[NP];
    for (int k = 0; k < NP; k++) sp[k] = params(k, eos);
    float *lg = malloc((size_t)n * (size_t)V * sizeof *lg);
    blurb_sample_req *req = malloc((size_t)n * sizeof *req);
    const int32_t **hist = malloc((size_t)n * sizeof *hist);
    int *nh = malloc((size_t)n * sizeof *nh);
    int32_t *tok = malloc((size_t)n * sizeof *tok);
    float *lp = malloc((size_t)n * sizeof *lp);
    REQUIRE(lg && req && hist && nh && tok && lp);
    /* a history with repeats and out-of-range ids (ignored by the penalty) */
    static int32_t h[120];
    for (int i = 0; i < 120; i++) h[i] = i == 7 ? -1 : i == 8 ? V + 5 : (int32_t)((i * 2654435761u) % 60000u % (uint32_t)V);
    h[50] = h[10];
    int i = 0;
    for (int r = 0; r < NR; r++)
        for (int k = 0; k < NP; k++)
            for (int st = 0; st < NSTEP; st++, i++) {
                memcpy(lg + (size_t)i * (size_t)V, rows + (size_t)r * (size_t)V, (size_t)V * sizeof(float));
                req[i] = (blurb_sample_req){0, 0, &sp[k], blurb_stream_key(9, "row", 3, (uint32_t)(r * 100 + k)),
                                            k == 8 ? 2 : st * 5};
                hist[i] = h;
                nh[i] = (k == 7 || k == 10) ? 120 : (i % 3 == 0 ? 0 : 30);
            }
    blurb_err err;
    blurb_err_clear(&err);
    if (blurb_cuda_sample_rows(0, lg, n, V, req, hist, nh, tok, lp, &err) < 0) {
        fprintf(stderr, "blurb_cuda_sample_rows: %s\n", err.msg);
        exit(1);
    }
    blurb_sampler_scratch *sc = blurb_sampler_scratch_new(V);
    REQUIRE(sc != NULL);
    int bad = 0, bad_lp = 0;
    for (i = 0; i < n; i++) {
        float rlp;
        const int ref = blurb_sample_row(lg + (size_t)i * (size_t)V, V, req[i].params, hist[i], nh[i],
                                         req[i].n_generated, req[i].key, (uint32_t)req[i].n_generated, sc, &rlp);
        const int r = i / (NP * NSTEP), k = (i / NSTEP) % NP;
        if (tok[i] != ref) {
            if (bad < 10) fprintf(stderr, "row kind %d, params %d, step %d: kernel %d, reference %d\n", r, k,
                                  req[i].n_generated, (int)tok[i], ref);
            bad++;
        } else if (!lp_same(lp[i], rlp)) {
            if (bad_lp < 10) fprintf(stderr, "row kind %d, params %d: logprob %.9g vs %.9g\n", r, k, (double)lp[i],
                                     (double)rlp);
            bad_lp++;
        }
    }
    CHECKF(bad == 0, "%d of %d synthetic draws differ from blurb_sample_row", bad, n);
    CHECKF(bad_lp == 0, "%d of %d synthetic log-probs differ", bad_lp, n);
    printf("synthetic rows: %d draws compared, %d token and %d logprob mismatches\n", n, bad, bad_lp);
    blurb_sampler_scratch_free(sc);
    free(rows);
    free(lg);
    free(req);
    free(hist);
    free(nh);
    free(tok);
    free(lp);
}
#endif

static void through_backend(const blurb_model *m) {
    const int V = m->cfg.vocab_size, N = GOLDEN_N_PROMPTS;
    golden_prompt g[GOLDEN_N_PROMPTS];
    golden_load(g);
    blurb_backend *be = cuda_test_backend(m, BLURB_DTYPE_F32, N, true);
    blurb_chunk chunks[GOLDEN_N_PROMPTS];
    int n_rows = 0;
    for (int p = 0; p < N; p++) {
        chunks[p] = (blurb_chunk){p, g[p].ids, g[p].n_ids};
        n_rows += g[p].n_ids;
    }
    cuda_test_forward(be, chunks, N, true);
    blurb_sampling sp[NP];
    for (int k = 0; k < NP; k++) sp[k] = params(k, m->cfg.eos_token_id);
    const int n = n_rows * NP;
    blurb_sample_req *req = malloc((size_t)n * sizeof *req);
    int32_t *tok = malloc((size_t)n * sizeof *tok);
    float *lp = malloc((size_t)n * sizeof *lp), *row = malloc((size_t)V * sizeof *row);
    int *row_prompt = malloc((size_t)n_rows * sizeof *row_prompt);
    REQUIRE(req && tok && lp && row && row_prompt);
    int r = 0;
    for (int p = 0; p < N; p++)
        for (int t = 0; t < g[p].n_ids; t++) row_prompt[r++] = p;
    for (int i = 0; i < n; i++) {
        const int rr = i / NP, k = i % NP;
        char id[16];
        const int len = snprintf(id, sizeof id, "%d", rr);
        req[i] = (blurb_sample_req){rr, row_prompt[rr], &sp[k], blurb_stream_key(1, id, (size_t)len, (uint32_t)k),
                                    k == 8 ? 1 : rr % 7};
    }
    blurb_err err;
    blurb_err_clear(&err);
    if (blurb_backend_sample(be, req, n, tok, lp, &err) < 0) {
        fprintf(stderr, "sample: %s\n", err.msg);
        exit(1);
    }
    blurb_sampler_scratch *sc = blurb_sampler_scratch_new(V);
    REQUIRE(sc != NULL);
    int bad = 0, bad_lp = 0, last_row = -1;
    for (int i = 0; i < n; i++) {
        const int rr = i / NP, p = row_prompt[rr];
        if (rr != last_row) {
            cuda_test_logits(be, rr, row);
            last_row = rr;
        }
        float rlp;
        const int ref = blurb_sample_row(row, V, req[i].params, be->slot_tokens[p], be->slot_len[p],
                                         req[i].n_generated, req[i].key, (uint32_t)req[i].n_generated, sc, &rlp);
        if (tok[i] != ref) {
            if (bad < 10) fprintf(stderr, "golden row %d params %d: gpu %d, reference %d\n", rr, i % NP, (int)tok[i], ref);
            bad++;
        } else if (!lp_same(lp[i], rlp)) {
            bad_lp++;
        }
    }
    CHECKF(bad == 0, "%d of %d backend draws differ from blurb_sample_row", bad, n);
    CHECKF(bad_lp == 0, "%d of %d backend log-probs differ", bad_lp, n);
    printf("golden rows through the backend: %d draws compared, %d token and %d logprob mismatches\n", n, bad, bad_lp);
    blurb_sampler_scratch_free(sc);
    free(req);
    free(tok);
    free(lp);
    free(row);
    free(row_prompt);
    blurb_backend_free(be);
    golden_free(g);
}

int main(void) {
    cuda_test_require_device();
    const double t0 = cuda_test_now();
    blurb_model *m = cuda_test_default_model();
#ifdef BLURB_HAVE_CUDA
    synthetic(m->cfg.vocab_size, m->cfg.eos_token_id);
#endif
    through_backend(m);
    blurb_model_free(m);
    printf("time %.2f s\n", cuda_test_now() - t0);
    return check_finish("cuda_sampler");
}
