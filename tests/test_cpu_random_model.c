/* The CPU backend on small random models against a straightforward
 * double-precision GPT-2 forward written here from the HF GPT2LMHeadModel
 * definition (no KV cache, no packing, no threads). It covers what the
 * default model does not: scale_attn_by_inverse_layer_idx, scale_attn_weights
 * false, n_inner != 4 * n_embd, non-zero biases and LayerNorm parameters,
 * an untied lm_head, and sizes that are not multiples of the vector width
 * (head_dim 10, n_embd 20, vocab 37). Each model is run three ways: one
 * prefill with logits at every position, decoding one token per forward, and
 * a prefill split into chunks of several tokens. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blurb/backend.h"
#include "blurb/model.h"
#include "check.h"
#include "model_test_util.h"

#define TOL 1e-4

/* Writable view of a random model's fp32 tensor (blurb_model_random owns
 * malloc'ed fp32 buffers). */
static float *wr(blurb_tensor *t) { return (float *)(uintptr_t)t->data; }
static const float *rd(const blurb_tensor *t) { return (const float *)t->data; }

static uint64_t rng = 12345;
static float uniform_pm(float a) { /* uniform in [-a, a) */
    rng = rng * 6364136223846793005ull + 1442695040888963407ull;
    return a * (2.0f * (float)(rng >> 40) * 0x1p-24f - 1.0f);
}

static void perturb(blurb_tensor *t, float base, float a) {
    float *d = wr(t);
    for (int64_t i = 0; i < blurb_tensor_numel(t); i++) d[i] = base + uniform_pm(a);
}

static void ref_layer_norm(double *out, const double *x, const float *w, const float *b, int C, double eps) {
    double mean = 0, var = 0;
    for (int i = 0; i < C; i++) mean += x[i];
    mean /= C;
    for (int i = 0; i < C; i++) var += (x[i] - mean) * (x[i] - mean);
    var /= C;
    for (int i = 0; i < C; i++) out[i] = (x[i] - mean) / sqrt(var + eps) * w[i] + b[i];
}

/* HF Conv1D: y[o] = b[o] + sum_i x[i] * W[i][o], W [in, out]. */
static void ref_conv1d(double *y, const double *x, const blurb_tensor *W, const blurb_tensor *b, int in, int out) {
    const float *w = rd(W);
    for (int o = 0; o < out; o++) {
        double s = b ? rd(b)[o] : 0.0;
        for (int i = 0; i < in; i++) s += x[i] * w[(size_t)i * (size_t)out + (size_t)o];
        y[o] = s;
    }
}

/* logits [n, vocab] for tokens[0..n) at positions 0..n-1. */
static void ref_forward(const blurb_model *m, const int32_t *tokens, int n, double *logits) {
    const blurb_config *c = &m->cfg;
    const int C = c->n_embd, H = c->n_head, hd = C / H, I = c->n_inner, V = c->vocab_size;
    double *x = calloc((size_t)n * C, sizeof(double)), *h = calloc((size_t)n * C, sizeof(double));
    double *qkv = calloc((size_t)n * 3 * C, sizeof(double)), *att = calloc((size_t)n * C, sizeof(double));
    double *tmp = calloc((size_t)(I > 3 * C ? I : 3 * C), sizeof(double)), *f = calloc((size_t)I, sizeof(double));
    double *p = calloc((size_t)n, sizeof(double));
    REQUIRE(x && h && qkv && att && tmp && f && p);
    for (int t = 0; t < n; t++)
        for (int i = 0; i < C; i++)
            x[t * C + i] = (double)rd(&m->wte)[(size_t)tokens[t] * C + i] + rd(&m->wpe)[(size_t)t * C + i];
    for (int l = 0; l < c->n_layer; l++) {
        const blurb_layer *L = &m->layers[l];
        for (int t = 0; t < n; t++) {
            ref_layer_norm(h + t * C, x + t * C, rd(&L->ln_1_w), rd(&L->ln_1_b), C, c->layer_norm_epsilon);
            ref_conv1d(qkv + t * 3 * C, h + t * C, &L->c_attn_w, &L->c_attn_b, C, 3 * C);
        }
        for (int t = 0; t < n; t++)
            for (int hh = 0; hh < H; hh++) {
                double mx = -INFINITY, sum = 0;
                for (int s = 0; s <= t; s++) {
                    double d = 0;
                    for (int i = 0; i < hd; i++) d += qkv[t * 3 * C + hh * hd + i] * qkv[s * 3 * C + C + hh * hd + i];
                    if (c->scale_attn_weights) d /= sqrt((double)hd);
                    if (c->scale_attn_by_inverse_layer_idx) d /= (double)(l + 1);
                    p[s] = d;
                    if (d > mx) mx = d;
                }
                for (int s = 0; s <= t; s++) sum += (p[s] = exp(p[s] - mx));
                for (int i = 0; i < hd; i++) {
                    double o = 0;
                    for (int s = 0; s <= t; s++) o += p[s] / sum * qkv[s * 3 * C + 2 * C + hh * hd + i];
                    att[t * C + hh * hd + i] = o;
                }
            }
        for (int t = 0; t < n; t++) {
            ref_conv1d(tmp, att + t * C, &L->attn_c_proj_w, &L->attn_c_proj_b, C, C);
            for (int i = 0; i < C; i++) x[t * C + i] += tmp[i];
            ref_layer_norm(h + t * C, x + t * C, rd(&L->ln_2_w), rd(&L->ln_2_b), C, c->layer_norm_epsilon);
            ref_conv1d(f, h + t * C, &L->c_fc_w, &L->c_fc_b, C, I);
            for (int i = 0; i < I; i++) /* tanh GELU, as written in HF NewGELUActivation */
                f[i] = 0.5 * f[i] * (1.0 + tanh(sqrt(2.0 / M_PI) * (f[i] + 0.044715 * pow(f[i], 3.0))));
            ref_conv1d(tmp, f, &L->mlp_c_proj_w, &L->mlp_c_proj_b, I, C);
            for (int i = 0; i < C; i++) x[t * C + i] += tmp[i];
        }
    }
    for (int t = 0; t < n; t++) {
        ref_layer_norm(h + t * C, x + t * C, rd(&m->ln_f_w), rd(&m->ln_f_b), C, c->layer_norm_epsilon);
        for (int v = 0; v < V; v++) { /* lm_head [vocab, n_embd] */
            double s = 0;
            for (int i = 0; i < C; i++) s += h[t * C + i] * rd(&m->lm_head)[(size_t)v * C + i];
            logits[(size_t)t * V + v] = s;
        }
    }
    free(x);
    free(h);
    free(qkv);
    free(att);
    free(tmp);
    free(f);
    free(p);
}

static void run_config(const char *name, blurb_config cfg, bool untie) {
    blurb_err err;
    blurb_err_clear(&err);
    blurb_model *m = NULL;
    REQUIRE(blurb_model_random(&cfg, 7, &m, &err) == 0);
    /* Non-trivial biases and LayerNorm parameters, and larger weights than
     * HF's 0.02 init so that attention is not uniform. */
    perturb(&m->ln_f_w, 1.0f, 0.3f);
    perturb(&m->ln_f_b, 0.0f, 0.3f);
    perturb(&m->wte, 0.0f, 0.5f);
    perturb(&m->wpe, 0.0f, 0.5f);
    for (int l = 0; l < cfg.n_layer; l++) {
        blurb_layer *L = &m->layers[l];
        perturb(&L->ln_1_w, 1.0f, 0.3f);
        perturb(&L->ln_1_b, 0.0f, 0.3f);
        perturb(&L->ln_2_w, 1.0f, 0.3f);
        perturb(&L->ln_2_b, 0.0f, 0.3f);
        perturb(&L->c_attn_w, 0.0f, 0.4f);
        perturb(&L->c_attn_b, 0.0f, 0.3f);
        perturb(&L->attn_c_proj_w, 0.0f, 0.2f);
        perturb(&L->attn_c_proj_b, 0.0f, 0.3f);
        perturb(&L->c_fc_w, 0.0f, 0.3f);
        perturb(&L->c_fc_b, 0.0f, 0.3f);
        perturb(&L->mlp_c_proj_w, 0.0f, 0.2f);
        perturb(&L->mlp_c_proj_b, 0.0f, 0.3f);
    }
    float *head = NULL;
    if (untie) { /* an explicit lm_head, different from wte */
        int64_t numel = blurb_tensor_numel(&m->wte);
        head = malloc((size_t)numel * sizeof(float));
        REQUIRE(head);
        for (int64_t i = 0; i < numel; i++) head[i] = uniform_pm(0.5f);
        m->lm_head.data = head;
        m->lm_head_tied = false;
    }

    const int V = cfg.vocab_size, n = cfg.n_ctx;
    int32_t tokens[64];
    REQUIRE(n <= 64);
    test_random_tokens(tokens, n, 99, V);
    double *ref = malloc((size_t)n * V * sizeof(double));
    float *row = malloc((size_t)V * sizeof(float));
    REQUIRE(ref && row);
    ref_forward(m, tokens, n, ref);

    blurb_backend *be = test_cpu_backend(m, 2, 0);
    double worst = 0;
    /* Slot 0: the whole sequence in one prefill, logits at every position.
     * Slot 1: a prefill of 3 tokens, then one token per forward (KV cache),
     * alongside, so both paths are checked against the reference. */
    blurb_chunk both[2] = {{0, tokens, n}, {1, tokens, 3}};
    test_forward(be, both, 2, true);
    for (int t = 0; t < n; t++) {
        test_logits(be, t, row);
        for (int v = 0; v < V; v++) {
            double d = fabs(row[v] - ref[(size_t)t * V + v]);
            if (!(d <= worst)) worst = d;
            CHECKF(d <= TOL, "%s: prefill position %d id %d: %.7f vs reference %.7f", name, t, v, row[v],
                   ref[(size_t)t * V + v]);
        }
    }
    for (int t = 3; t <= n; t++) {
        test_logits(be, t == 3 ? n + 2 : 0, row); /* the last row of slot 1's chunk */
        for (int v = 0; v < V; v++) {
            double d = fabs(row[v] - ref[(size_t)(t - 1) * V + v]);
            if (!(d <= worst)) worst = d;
            CHECKF(d <= TOL, "%s: decode position %d id %d: %.7f vs reference %.7f", name, t - 1, v, row[v],
                   ref[(size_t)(t - 1) * V + v]);
        }
        if (t < n) {
            blurb_chunk one = {1, &tokens[t], 1};
            test_forward(be, &one, 1, false);
        }
    }
    /* Slot 0 again, the sequence prefilled in chunks of 2, 5, 1 and the rest
     * (a long prompt fed in pieces), logits at every position. */
    test_reset(be, 0);
    const int pieces[4] = {2, 5, 1, n - 8};
    for (int i = 0, at = 0; i < 4; at += pieces[i], i++) {
        blurb_chunk piece = {0, tokens + at, pieces[i]};
        test_forward(be, &piece, 1, true);
        for (int j = 0; j < pieces[i]; j++) {
            test_logits(be, j, row);
            for (int v = 0; v < V; v++) {
                double d = fabs(row[v] - ref[(size_t)(at + j) * V + v]);
                if (!(d <= worst)) worst = d;
                CHECKF(d <= TOL, "%s: chunked prefill position %d id %d: %.7f vs reference %.7f", name, at + j, v,
                       row[v], ref[(size_t)(at + j) * V + v]);
            }
        }
    }
    printf("%s: max-abs difference to the double-precision reference %.3g\n", name, worst);
    blurb_backend_free(be);
    free(ref);
    free(row);
    free(head);
    if (untie) m->lm_head = m->wte; /* the model frees only what it allocated */
    blurb_model_free(m);
}

int main(void) {
    blurb_config cfg = {0};
    cfg.n_layer = 3;
    cfg.n_head = 2;
    cfg.n_embd = 20;
    cfg.n_ctx = 24;
    cfg.n_inner = 44;
    cfg.vocab_size = 37;
    cfg.layer_norm_epsilon = 1e-5f;
    cfg.eos_token_id = 36;
    cfg.scale_attn_weights = true;
    cfg.scale_attn_by_inverse_layer_idx = true;
    run_config("inverse layer idx, n_inner 44, untied head", cfg, true);

    cfg.scale_attn_by_inverse_layer_idx = false;
    cfg.scale_attn_weights = false;
    cfg.layer_norm_epsilon = 1e-3f;
    run_config("unscaled attention, eps 1e-3, tied head", cfg, false);

    cfg.n_head = 4; /* head_dim 16: the vector path without a tail */
    cfg.n_embd = 64;
    cfg.n_inner = 256;
    cfg.scale_attn_weights = true;
    cfg.vocab_size = 100;
    run_config("head_dim 16, vocab 100", cfg, false);
    return check_finish("cpu_random_model");
}
