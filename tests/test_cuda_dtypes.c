/* CUDA backend in bf16 and fp16 against its own fp32 mode: on the golden
 * prompts, teacher-forced, the last-position logits must be within relative L2
 * error 2e-2 of fp32 and the top-1 token must agree at >= 99% of all
 * positions; no logit may be NaN or inf. Then a random-weight model of GPT-2
 * small's shape with n_ctx 1024 runs full-context sequences (one 1024-token
 * prefill with every row checked; one 1000-token prefill in chunks followed by
 * decode steps to 1024) in both dtypes: every logit must stay finite. */
#include <cjson/cJSON.h>
#include "cuda_test_util.h"

#define N GOLDEN_N_PROMPTS

static void golden_vs_fp32(const blurb_model *m, const golden_prompt *g, blurb_dtype dt, const float *ref_rows,
                           const int *ref_top1, int n_rows) {
    const int V = m->cfg.vocab_size;
    blurb_backend *be = cuda_test_backend(m, dt, N, true);
    blurb_chunk chunks[N];
    for (int p = 0; p < N; p++) chunks[p] = (blurb_chunk){p, g[p].ids, g[p].n_ids};
    cuda_test_forward(be, chunks, N, true);
    float *a = malloc((size_t)V * sizeof *a);
    REQUIRE(a != NULL);
    int agree = 0, row = 0, nonfinite = 0;
    double worst_rel = 0.0;
    for (int p = 0; p < N; p++) {
        for (int t = 0; t < g[p].n_ids; t++, row++) {
            cuda_test_logits(be, row, a);
            if (!cuda_test_all_finite(a, V)) nonfinite++;
            agree += cuda_test_argmax(a, V) == ref_top1[row];
            if (t == g[p].n_ids - 1) {
                const float *r = ref_rows + (size_t)p * (size_t)V;
                double num = 0.0, den = 0.0;
                for (int v = 0; v < V; v++) {
                    const double d = (double)a[v] - (double)r[v];
                    num += d * d;
                    den += (double)r[v] * (double)r[v];
                }
                const double rel = sqrt(num / den);
                if (!(rel <= worst_rel)) worst_rel = rel;
                CHECKF(rel <= 2e-2, "%s prompt %d: last-position relative L2 error %.4g > 2e-2",
                       blurb_dtype_name(dt), p, rel);
            }
        }
    }
    REQUIRE(row == n_rows);
    const double frac = (double)agree / (double)n_rows;
    CHECKF(frac >= 0.99, "%s: top-1 agreement with fp32 %.4f < 0.99 (%d of %d positions)", blurb_dtype_name(dt),
           frac, agree, n_rows);
    CHECKF(nonfinite == 0, "%s: %d rows with NaN or inf logits", blurb_dtype_name(dt), nonfinite);
    printf("%s vs fp32: worst last-position relative L2 %.3g, top-1 agreement %d/%d\n", blurb_dtype_name(dt),
           worst_rel, agree, n_rows);
    free(a);
    blurb_backend_free(be);
}

static void full_context(const blurb_model *m, blurb_dtype dt) {
    const int V = m->cfg.vocab_size, T = m->cfg.n_ctx;
    REQUIRE(T == 1024);
    blurb_backend *be = cuda_test_backend(m, dt, 2, true);
    int32_t *tok = malloc((size_t)T * sizeof *tok);
    float *a = malloc((size_t)V * sizeof *a);
    REQUIRE(tok && a);
    uint32_t s = 12345u;
    for (int i = 0; i < T; i++) {
        s = s * 1664525u + 1013904223u;
        tok[i] = (int32_t)((s >> 8) % (uint32_t)V);
    }
    int bad = 0;
    /* slot 0: the whole context in one prefill, every row checked */
    blurb_chunk c0 = {0, tok, T};
    cuda_test_forward(be, &c0, 1, true);
    for (int r = 0; r < T; r++) {
        cuda_test_logits(be, r, a);
        bad += !cuda_test_all_finite(a, V);
    }
    CHECKF(bad == 0, "%s: %d of %d rows of a 1024-token prefill have NaN or inf", blurb_dtype_name(dt), bad, T);
    /* slot 1: 1000 tokens in chunks of 250, then decode steps up to n_ctx */
    int len = 0, bad_dec = 0;
    while (len < 1000) {
        blurb_chunk c = {1, tok + len, 250};
        cuda_test_forward(be, &c, 1, false);
        len += 250;
        cuda_test_logits(be, 0, a);
        bad_dec += !cuda_test_all_finite(a, V);
    }
    while (len < T) {
        blurb_chunk c = {1, tok + len, 1};
        cuda_test_forward(be, &c, 1, false);
        len++;
        cuda_test_logits(be, 0, a);
        bad_dec += !cuda_test_all_finite(a, V);
    }
    CHECKF(bad_dec == 0, "%s: %d chunked-prefill/decode rows up to position 1023 have NaN or inf",
           blurb_dtype_name(dt), bad_dec);
    printf("%s full context (n_ctx %d): %d + %d rows checked finite\n", blurb_dtype_name(dt), T, T, 4 + (T - 1000));
    free(tok);
    free(a);
    blurb_backend_free(be);
}

int main(void) {
    cuda_test_require_device();
    const double t0 = cuda_test_now();
    blurb_model *m = cuda_test_default_model();
    const int V = m->cfg.vocab_size;
    golden_prompt g[N];
    golden_load(g);
    int n_rows = 0;
    for (int p = 0; p < N; p++) n_rows += g[p].n_ids;

    /* fp32 reference rows: last position of each prompt, top-1 at every position */
    float *ref = malloc((size_t)N * (size_t)V * sizeof *ref), *a = malloc((size_t)V * sizeof *a);
    int *top1 = malloc((size_t)n_rows * sizeof *top1);
    REQUIRE(ref && a && top1);
    {
        blurb_backend *be = cuda_test_backend(m, BLURB_DTYPE_F32, N, true);
        blurb_chunk chunks[N];
        for (int p = 0; p < N; p++) chunks[p] = (blurb_chunk){p, g[p].ids, g[p].n_ids};
        cuda_test_forward(be, chunks, N, true);
        int row = 0;
        for (int p = 0; p < N; p++)
            for (int t = 0; t < g[p].n_ids; t++, row++) {
                cuda_test_logits(be, row, a);
                top1[row] = cuda_test_argmax(a, V);
                if (t == g[p].n_ids - 1) memcpy(ref + (size_t)p * (size_t)V, a, (size_t)V * sizeof(float));
            }
        blurb_backend_free(be);
    }
    golden_vs_fp32(m, g, BLURB_DTYPE_BF16, ref, top1, n_rows);
    golden_vs_fp32(m, g, BLURB_DTYPE_F16, ref, top1, n_rows);
    free(ref);
    free(a);
    free(top1);
    golden_free(g);
    blurb_model_free(m);

    blurb_model *r = cuda_test_gpt2_random(1024, 7);
    full_context(r, BLURB_DTYPE_BF16);
    full_context(r, BLURB_DTYPE_F16);
    blurb_model_free(r);
    printf("time %.2f s\n", cuda_test_now() - t0);
    return check_finish("cuda_dtypes");
}
