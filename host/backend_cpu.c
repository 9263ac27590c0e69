/* CPU reference backend: the fp32 GPT-2 forward pass with a KV cache per slot.
 *
 * Semantics follow HF transformers GPT2LMHeadModel (modeling_gpt2.py):
 * pre-LN blocks  x += attn(ln_1(x));  x += mlp(ln_2(x)),  then ln_f and the LM
 * head (lm_head, i.e. wte when tied). Attention is causal per head, scores
 * q.k / sqrt(head_dim) (when scale_attn_weights) and / (layer + 1) (when
 * scale_attn_by_inverse_layer_idx), softmax in fp32. The MLP uses the tanh GELU
 * ("gelu_new", Hendrycks & Gimpel 2016): 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).
 *
 * Batch invariance: every output value is computed by the same operations in
 * the same order whatever the batch holds. Matrix products reduce each dot
 * product sequentially over the input dimension (k = 0, 1, ..., K-1) and
 * parallelise only over rows and output columns, so neither the number of rows
 * nor the thread count changes any value. Attention, LayerNorm and softmax
 * work on one row at a time. Floating-point contraction (FMA) stays off: the
 * project compiles as ISO C11, where GCC's default is -ffp-contract=off. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#define OMP(directive) _Pragma(directive)
#else
#define OMP(directive)
#endif

#include "backend_impl.h"
#include "blurb/sampler.h"

/* Output columns per packed weight panel, and rows per register tile: a 4 x 16
 * tile of accumulators takes 8 AVX (16 SSE) registers. */
#define PANEL 16
#define TILE_ROWS 4
/* Work unit of the parallel matrix product: up to ROW_BLOCK rows times
 * PANELS_PER_BLOCK panels, so a panel loaded into cache serves many rows. */
#define ROW_BLOCK 64
#define PANELS_PER_BLOCK 4
/* Most KV cache bytes the backend reserves when max_slots is 0 (its choice). */
#define DEFAULT_KV_BUDGET ((size_t)2 << 30)
#define DEFAULT_MAX_SLOTS 64
/* Below these sizes a step runs on one thread (multiply-adds, elements). */
#define PARALLEL_MIN_MACS (1 << 17)
#define PARALLEL_MIN_ELEMS (1 << 14)

/* A weight matrix W of the product y = x . W, x [rows, K], y [rows, N], stored
 * as ceil(N / PANEL) panels of [K][PANEL] floats: panel p holds output columns
 * p*PANEL .. p*PANEL+15 (zeros past N) so the innermost loop reads PANEL
 * consecutive floats for each k. */
typedef struct packed_matrix {
    float *w;
    int K, N, n_panels;
} packed_matrix;

typedef struct cpu_layer {
    float *ln_1_w, *ln_1_b;  /* [n_embd] */
    packed_matrix c_attn;    /* K n_embd, N 3*n_embd (q | k | v) */
    float *c_attn_b;         /* [3*n_embd] */
    packed_matrix attn_proj; /* K n_embd, N n_embd */
    float *attn_proj_b;
    float *ln_2_w, *ln_2_b;
    packed_matrix c_fc;      /* K n_embd, N n_inner */
    float *c_fc_b;
    packed_matrix mlp_proj;  /* K n_inner, N n_embd */
    float *mlp_proj_b;
} cpu_layer;

typedef struct cpu_backend {
    blurb_backend base; /* first member: the generic code sees only this */
    blurb_config cfg;
    int n_threads;

    float *wte;          /* [vocab_size, n_embd] */
    float *wpe;          /* [n_ctx, n_embd] */
    float *ln_f_w, *ln_f_b;
    packed_matrix lm_head; /* K n_embd, N vocab_size */
    cpu_layer *layers;

    /* KV cache: [n_slots][n_layer][2 (k, v)][n_ctx][n_embd], heads side by side. */
    float *kv;

    /* Per-forward state, grown on demand. */
    size_t cap_rows, cap_out;
    int *row_slot, *row_pos, *row_tok; /* [rows] */
    float *x, *h, *qkv, *att, *mlp;    /* [rows, n_embd | 3*n_embd | n_inner] */
    int *out_src;                      /* [out rows]: row index each logits row comes from */
    float *out_h;                      /* [out rows, n_embd] */
    float *logits;                     /* [out rows, vocab_size] */
    float *scores;                     /* [n_threads][n_ctx] attention scratch */

    blurb_sampler_scratch **sampler_scratch; /* [n_threads], created on first sample() */
} cpu_backend;

static cpu_backend *as_cpu(blurb_backend *be) { return (cpu_backend *)be; }

static int thread_id(void) {
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

/* ---- weights ------------------------------------------------------------ */

static float *f32_copy(const blurb_tensor *t) {
    float *dst = malloc((size_t)blurb_tensor_numel(t) * sizeof *dst);
    if (dst) blurb_tensor_to_f32(t, dst);
    return dst;
}

/* Packs W into panels. `in_out` says how the tensor stores W: true for HF
 * Conv1D [K (in), N (out)], false for [N, K] (the LM head, shared with wte). */
static int pack_matrix(packed_matrix *pm, const blurb_tensor *t, int K, int N, bool in_out) {
    pm->K = K;
    pm->N = N;
    pm->n_panels = (N + PANEL - 1) / PANEL;
    float *src = f32_copy(t);
    pm->w = calloc((size_t)pm->n_panels * (size_t)K * PANEL, sizeof *pm->w);
    if (!src || !pm->w) {
        free(src);
        return BLURB_E_NOMEM;
    }
    /* W[k][n] goes to panel n / PANEL, row k, column n % PANEL. The loops
     * follow the source layout so that it is read sequentially. */
#define PACKED(k, n) pm->w[((size_t)((n) / PANEL) * (size_t)K + (size_t)(k)) * PANEL + (size_t)((n) % PANEL)]
    if (in_out) {
        for (int k = 0; k < K; k++)
            for (int n = 0; n < N; n++) PACKED(k, n) = src[(size_t)k * (size_t)N + (size_t)n];
    } else {
        for (int n = 0; n < N; n++)
            for (int k = 0; k < K; k++) PACKED(k, n) = src[(size_t)n * (size_t)K + (size_t)k];
    }
#undef PACKED
    free(src);
    return 0;
}

static int need_shape(const blurb_tensor *t, int64_t d0, int64_t d1, int layer, const char *name, blurb_err *err) {
    bool ok = t->data && t->shape[0] == d0 && (t->ndim == 1 ? d1 == 1 : t->ndim == 2 && t->shape[1] == d1);
    if (ok) return 0;
    if (layer < 0)
        return blurb_seterr(err, BLURB_E_INVALID, "cpu backend: tensor %s is missing or not of shape [%lld, %lld]",
                            name, (long long)d0, (long long)d1);
    return blurb_seterr(err, BLURB_E_INVALID, "cpu backend: tensor h.%d.%s is missing or not of shape [%lld, %lld]",
                        layer, name, (long long)d0, (long long)d1);
}

/* The loader checks shapes against config.json; this guards models built in
 * memory, so that a wrong one is an error and never an out-of-bounds read. */
static int check_shapes(const blurb_model *m, blurb_err *err) {
    const blurb_config *c = &m->cfg;
    if (c->n_layer < 1 || c->n_head < 1 || c->n_embd < 1 || c->n_ctx < 1 || c->n_inner < 1 || c->vocab_size < 1)
        return blurb_seterr(err, BLURB_E_INVALID, "cpu backend: config has a non-positive size "
                            "(n_layer %d, n_head %d, n_embd %d, n_ctx %d, n_inner %d, vocab_size %d)",
                            c->n_layer, c->n_head, c->n_embd, c->n_ctx, c->n_inner, c->vocab_size);
    if (c->n_embd % c->n_head != 0)
        return blurb_seterr(err, BLURB_E_INVALID, "cpu backend: n_embd %d is not a multiple of n_head %d",
                            c->n_embd, c->n_head);
    const int64_t C = c->n_embd, I = c->n_inner;
    int rc = 0;
    if ((rc = need_shape(&m->wte, c->vocab_size, C, -1, "wte", err)) < 0 ||
        (rc = need_shape(&m->wpe, c->n_ctx, C, -1, "wpe", err)) < 0 ||
        (rc = need_shape(&m->ln_f_w, C, 1, -1, "ln_f.weight", err)) < 0 ||
        (rc = need_shape(&m->ln_f_b, C, 1, -1, "ln_f.bias", err)) < 0 ||
        (rc = need_shape(&m->lm_head, c->vocab_size, C, -1, "lm_head", err)) < 0)
        return rc;
    if (!m->layers) return blurb_seterr(err, BLURB_E_INVALID, "cpu backend: model has no layers");
    for (int l = 0; l < c->n_layer; l++) {
        const blurb_layer *L = &m->layers[l];
        if ((rc = need_shape(&L->ln_1_w, C, 1, l, "ln_1.weight", err)) < 0 ||
            (rc = need_shape(&L->ln_1_b, C, 1, l, "ln_1.bias", err)) < 0 ||
            (rc = need_shape(&L->c_attn_w, C, 3 * C, l, "attn.c_attn.weight", err)) < 0 ||
            (rc = need_shape(&L->c_attn_b, 3 * C, 1, l, "attn.c_attn.bias", err)) < 0 ||
            (rc = need_shape(&L->attn_c_proj_w, C, C, l, "attn.c_proj.weight", err)) < 0 ||
            (rc = need_shape(&L->attn_c_proj_b, C, 1, l, "attn.c_proj.bias", err)) < 0 ||
            (rc = need_shape(&L->ln_2_w, C, 1, l, "ln_2.weight", err)) < 0 ||
            (rc = need_shape(&L->ln_2_b, C, 1, l, "ln_2.bias", err)) < 0 ||
            (rc = need_shape(&L->c_fc_w, C, I, l, "mlp.c_fc.weight", err)) < 0 ||
            (rc = need_shape(&L->c_fc_b, I, 1, l, "mlp.c_fc.bias", err)) < 0 ||
            (rc = need_shape(&L->mlp_c_proj_w, I, C, l, "mlp.c_proj.weight", err)) < 0 ||
            (rc = need_shape(&L->mlp_c_proj_b, C, 1, l, "mlp.c_proj.bias", err)) < 0)
            return rc;
    }
    return 0;
}

static void free_layer(cpu_layer *L) {
    free(L->ln_1_w);
    free(L->ln_1_b);
    free(L->c_attn.w);
    free(L->c_attn_b);
    free(L->attn_proj.w);
    free(L->attn_proj_b);
    free(L->ln_2_w);
    free(L->ln_2_b);
    free(L->c_fc.w);
    free(L->c_fc_b);
    free(L->mlp_proj.w);
    free(L->mlp_proj_b);
}

static int convert_weights(cpu_backend *cb, const blurb_model *m) {
    const int C = cb->cfg.n_embd, I = cb->cfg.n_inner, V = cb->cfg.vocab_size;
    cb->wte = f32_copy(&m->wte);
    cb->wpe = f32_copy(&m->wpe);
    cb->ln_f_w = f32_copy(&m->ln_f_w);
    cb->ln_f_b = f32_copy(&m->ln_f_b);
    if (!cb->wte || !cb->wpe || !cb->ln_f_w || !cb->ln_f_b) return BLURB_E_NOMEM;
    if (pack_matrix(&cb->lm_head, &m->lm_head, C, V, false) < 0) return BLURB_E_NOMEM;
    cb->layers = calloc((size_t)cb->cfg.n_layer, sizeof *cb->layers);
    if (!cb->layers) return BLURB_E_NOMEM;
    for (int l = 0; l < cb->cfg.n_layer; l++) {
        const blurb_layer *src = &m->layers[l];
        cpu_layer *L = &cb->layers[l];
        if (!(L->ln_1_w = f32_copy(&src->ln_1_w)) || !(L->ln_1_b = f32_copy(&src->ln_1_b)) ||
            !(L->c_attn_b = f32_copy(&src->c_attn_b)) || !(L->attn_proj_b = f32_copy(&src->attn_c_proj_b)) ||
            !(L->ln_2_w = f32_copy(&src->ln_2_w)) || !(L->ln_2_b = f32_copy(&src->ln_2_b)) ||
            !(L->c_fc_b = f32_copy(&src->c_fc_b)) || !(L->mlp_proj_b = f32_copy(&src->mlp_c_proj_b)))
            return BLURB_E_NOMEM;
        if (pack_matrix(&L->c_attn, &src->c_attn_w, C, 3 * C, true) < 0 ||
            pack_matrix(&L->attn_proj, &src->attn_c_proj_w, C, C, true) < 0 ||
            pack_matrix(&L->c_fc, &src->c_fc_w, C, I, true) < 0 ||
            pack_matrix(&L->mlp_proj, &src->mlp_c_proj_w, I, C, true) < 0)
            return BLURB_E_NOMEM;
    }
    return 0;
}

/* ---- kernels -------------------------------------------------------------- */

/* Eight floats operated on lane by lane (GCC/Clang vector extension): one
 * AVX register, or two SSE registers on baseline x86-64. Each lane does plain
 * IEEE single-precision multiplies and adds, exactly as scalar code would. */
typedef float vec8 __attribute__((vector_size(32)));

/* The hot loops are compiled twice where the toolchain supports it, for AVX2
 * and for baseline x86-64, and picked at load time. Both versions do the same
 * IEEE multiplies and adds (AVX2 does not bring FMA), only wider, so results
 * do not depend on the machine's vector width. */
#if defined(__GNUC__) && defined(__x86_64__) && !defined(__clang__)
#define WIDE_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define WIDE_CLONES
#endif

/* Vectors are never passed by value: that would tie the ABI to AVX. */
#define LOAD8(v, p) memcpy(&(v), (p), sizeof(vec8))
#define STORE8(p, v) memcpy((p), &(v), sizeof(vec8))

/* What a matrix product does with each finished sum s (bias b added first,
 * as HF's Conv1D does): store it, store its GELU, or add it to y (residual). */
typedef enum epilogue { EPI_STORE, EPI_GELU, EPI_RESIDUAL } epilogue;

/* tanh GELU as GPT-2 was trained with (HF NewGELUActivation, "gelu_new"):
 * 0.5 x (1 + tanh(u)), u = sqrt(2/pi) (x + 0.044715 x^3). Computed through the
 * identity 0.5 (1 + tanh(u)) = 1 / (1 + exp(-2u)): the same function, without
 * the cancellation of 1 + tanh(u) for negative u, and expf is several times
 * cheaper than tanhf (which took a third of a prefill's time). */
static inline float gelu(float x) {
    const float u = 0.7978845608028654f * (x + 0.044715f * x * x * x); /* sqrt(2 / pi) */
    return x / (1.0f + expf(-2.0f * u));
}

/* Finishes the first `cols` of a row's PANEL sums into y. */
static inline void store_row(float *y, const float *sum, const float *bias, int cols, epilogue epi) {
    for (int c = 0; c < cols; c++) {
        const float v = bias ? sum[c] + bias[c] : sum[c];
        y[c] = epi == EPI_GELU ? gelu(v) : epi == EPI_RESIDUAL ? y[c] + v : v;
    }
}

/* Kernels are inlined into each clone of matmul (see WIDE_CLONES). */
#if defined(__GNUC__)
#define KERNEL static inline __attribute__((always_inline))
#else
#define KERNEL static inline
#endif

/* y[r][c] = bias[c] + sum_k x[r][k] * panel[k][c] for TILE_ROWS rows and the
 * first `cols` of the PANEL columns of one panel. Each sum runs k = 0..K-1 in
 * order, one multiply then one add per term; tile_1 below does the same for a
 * single row, so a row's values do not depend on the rows computed beside it.
 * The accumulators are plain named variables (no arrays, no address taken)
 * so that they stay in registers, also in sanitizer builds. */
KERNEL void tile_4(const float *x, size_t ldx, const float *panel, int K, const float *bias, float *y, size_t ldy,
                   int cols, epilogue epi) {
    const float *x0 = x, *x1 = x + ldx, *x2 = x + 2 * ldx, *x3 = x + 3 * ldx;
    vec8 a0l = {0}, a0h = {0}, a1l = {0}, a1h = {0}, a2l = {0}, a2h = {0}, a3l = {0}, a3h = {0};
    for (int k = 0; k < K; k++) {
        vec8 wl, wh; /* columns 0-7 and 8-15 of row k of the panel */
        LOAD8(wl, panel + (size_t)k * PANEL);
        LOAD8(wh, panel + (size_t)k * PANEL + 8);
        a0l += x0[k] * wl;
        a0h += x0[k] * wh;
        a1l += x1[k] * wl;
        a1h += x1[k] * wh;
        a2l += x2[k] * wl;
        a2h += x2[k] * wh;
        a3l += x3[k] * wl;
        a3h += x3[k] * wh;
    }
    float sum[TILE_ROWS][PANEL];
    STORE8(sum[0], a0l);
    STORE8(sum[0] + 8, a0h);
    STORE8(sum[1], a1l);
    STORE8(sum[1] + 8, a1h);
    STORE8(sum[2], a2l);
    STORE8(sum[2] + 8, a2h);
    STORE8(sum[3], a3l);
    STORE8(sum[3] + 8, a3h);
    for (int r = 0; r < TILE_ROWS; r++) store_row(y + (size_t)r * ldy, sum[r], bias, cols, epi);
}

KERNEL void tile_1(const float *x, const float *panel, int K, const float *bias, float *y, int cols, epilogue epi) {
    vec8 al = {0}, ah = {0};
    for (int k = 0; k < K; k++) {
        vec8 wl, wh;
        LOAD8(wl, panel + (size_t)k * PANEL);
        LOAD8(wh, panel + (size_t)k * PANEL + 8);
        al += x[k] * wl;
        ah += x[k] * wh;
    }
    float sum[PANEL];
    STORE8(sum, al);
    STORE8(sum + 8, ah);
    store_row(y, sum, bias, cols, epi);
}

/* y [T, N] = epi(x [T, K] . W + bias) (bias [N] or NULL). Parallel over
 * blocks of rows times blocks of panels; a panel stays in cache while it
 * serves every row of its block. Small products run on one thread: waking
 * the team would cost more than it saves. */
WIDE_CLONES
static void matmul(float *y, const float *x, const packed_matrix *W, const float *bias, int T, epilogue epi, int nt) {
    const int K = W->K, N = W->N;
    const int row_blocks = (T + ROW_BLOCK - 1) / ROW_BLOCK;
    const int col_blocks = (W->n_panels + PANELS_PER_BLOCK - 1) / PANELS_PER_BLOCK;
    const bool parallel = (double)T * K * N >= PARALLEL_MIN_MACS;
    (void)nt;
    (void)parallel;
    OMP("omp parallel for collapse(2) schedule(static) num_threads(nt) if(parallel)")
    for (int rb = 0; rb < row_blocks; rb++) {
        for (int cb = 0; cb < col_blocks; cb++) {
            const int r_end = rb * ROW_BLOCK + ROW_BLOCK < T ? rb * ROW_BLOCK + ROW_BLOCK : T;
            const int p_end = (cb + 1) * PANELS_PER_BLOCK < W->n_panels ? (cb + 1) * PANELS_PER_BLOCK : W->n_panels;
            for (int p = cb * PANELS_PER_BLOCK; p < p_end; p++) {
                const float *panel = W->w + (size_t)p * (size_t)K * PANEL;
                const int c0 = p * PANEL;
                const int cols = N - c0 < PANEL ? N - c0 : PANEL;
                const float *b = bias ? bias + c0 : NULL;
                int r = rb * ROW_BLOCK;
                for (; r + TILE_ROWS <= r_end; r += TILE_ROWS)
                    tile_4(x + (size_t)r * (size_t)K, (size_t)K, panel, K, b, y + (size_t)r * (size_t)N + (size_t)c0,
                           (size_t)N, cols, epi);
                for (; r < r_end; r++)
                    tile_1(x + (size_t)r * (size_t)K, panel, K, b, y + (size_t)r * (size_t)N + (size_t)c0, cols, epi);
            }
        }
    }
}

/* HF nn.LayerNorm: (x - mean) / sqrt(var + eps) * w + b, biased variance.
 * Mean and variance accumulate in double, in index order. */
static void layer_norm_row(float *out, const float *x, const float *w, const float *b, int C, float eps) {
    double sum = 0.0;
    for (int i = 0; i < C; i++) sum += x[i];
    const double mean = sum / C;
    double sq = 0.0;
    for (int i = 0; i < C; i++) {
        const double d = x[i] - mean;
        sq += d * d;
    }
    const float inv_std = (float)(1.0 / sqrt(sq / C + (double)eps));
    const float meanf = (float)mean;
    for (int i = 0; i < C; i++) out[i] = (x[i] - meanf) * inv_std * w[i] + b[i];
}

static void layer_norm(float *out, const float *x, const float *w, const float *b, int T, int C, float eps, int nt) {
    const bool parallel = (double)T * C >= PARALLEL_MIN_ELEMS;
    (void)nt;
    (void)parallel;
    OMP("omp parallel for schedule(static) num_threads(nt) if(parallel)")
    for (int t = 0; t < T; t++)
        layer_norm_row(out + (size_t)t * (size_t)C, x + (size_t)t * (size_t)C, w, b, C, eps);
}

/* Dot product with 8 partial sums (lane i takes k = i, i+8, ...) combined in
 * a fixed tree, then the tail: vectorised and still one fixed order. */
KERNEL float dot8(const float *a, const float *b, int n) {
    vec8 acc = {0};
    int k = 0;
    for (; k + 8 <= n; k += 8) {
        vec8 va, vb;
        LOAD8(va, a + k);
        LOAD8(vb, b + k);
        acc += va * vb;
    }
    float s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
    for (; k < n; k++) s += a[k] * b[k];
    return s;
}

static float *kv_at(cpu_backend *cb, int slot, int layer, int which) {
    const blurb_config *c = &cb->cfg;
    size_t plane = (size_t)c->n_ctx * (size_t)c->n_embd;
    return cb->kv + (((size_t)slot * (size_t)c->n_layer + (size_t)layer) * 2 + (size_t)which) * plane;
}

/* Causal self-attention of every row over its own slot's KV cache (which
 * already holds this forward's keys and values up to the row's position). */
WIDE_CLONES
static void attention(cpu_backend *cb, int layer, int T) {
    const blurb_config *c = &cb->cfg;
    const int C = c->n_embd, H = c->n_head, hd = C / H, nt = cb->n_threads;
    /* HF divides by sqrt(head_dim) and then by (layer + 1), as two divisions. */
    const float sqrt_hd = sqrtf((float)hd);
    const float layer_div = (float)(layer + 1);
    double work = 0; /* multiply-adds: two per cached position and channel */
    for (int t = 0; t < T; t++) work += 2.0 * (cb->row_pos[t] + 1) * C;
    const bool parallel = work >= PARALLEL_MIN_MACS;
    (void)nt;
    (void)parallel;
    /* Dynamic: rows of a ragged batch attend over very different lengths. */
    OMP("omp parallel for collapse(2) schedule(dynamic, 4) num_threads(nt) if(parallel)")
    for (int t = 0; t < T; t++) {
        for (int h = 0; h < H; h++) {
            float *s = cb->scores + (size_t)thread_id() * (size_t)c->n_ctx;
            const float *q = cb->qkv + (size_t)t * 3 * (size_t)C + (size_t)h * (size_t)hd;
            const float *keys = kv_at(cb, cb->row_slot[t], layer, 0) + (size_t)h * (size_t)hd;
            const float *vals = kv_at(cb, cb->row_slot[t], layer, 1) + (size_t)h * (size_t)hd;
            const int n = cb->row_pos[t] + 1;
            float mx = -INFINITY;
            for (int p = 0; p < n; p++) {
                float v = dot8(q, keys + (size_t)p * (size_t)C, hd);
                if (c->scale_attn_weights) v /= sqrt_hd;
                if (c->scale_attn_by_inverse_layer_idx) v /= layer_div;
                s[p] = v;
                if (v > mx) mx = v;
            }
            float sum = 0.0f;
            for (int p = 0; p < n; p++) {
                s[p] = expf(s[p] - mx);
                sum += s[p];
            }
            float *o = cb->att + (size_t)t * (size_t)C + (size_t)h * (size_t)hd;
            for (int d = 0; d < hd; d++) o[d] = 0.0f;
            for (int p = 0; p < n; p++) {
                const float w = s[p] / sum;
                const float *v = vals + (size_t)p * (size_t)C;
                for (int d = 0; d < hd; d++) o[d] += w * v[d];
            }
        }
    }
}

/* ---- forward ------------------------------------------------------------- */

/* A fresh buffer of n elements of size sz in place of old (freed). The old
 * contents are not needed (every forward rewrites its buffers), so nothing
 * is copied as realloc would. NULL when out of memory. */
static void *renew(void *old, size_t n, size_t sz) {
    free(old);
    return n <= SIZE_MAX / sz ? malloc(n * sz) : NULL;
}

/* Makes room for `rows` token rows and `out_rows` logits rows. */
static int reserve(cpu_backend *cb, size_t rows, size_t out_rows) {
    const size_t C = (size_t)cb->cfg.n_embd, I = (size_t)cb->cfg.n_inner, V = (size_t)cb->cfg.vocab_size;
    if (rows > cb->cap_rows) {
        cb->row_slot = renew(cb->row_slot, rows, sizeof(int));
        cb->row_pos = renew(cb->row_pos, rows, sizeof(int));
        cb->row_tok = renew(cb->row_tok, rows, sizeof(int));
        cb->x = renew(cb->x, rows * C, sizeof(float));
        cb->h = renew(cb->h, rows * C, sizeof(float));
        cb->qkv = renew(cb->qkv, rows * 3 * C, sizeof(float));
        cb->att = renew(cb->att, rows * C, sizeof(float));
        cb->mlp = renew(cb->mlp, rows * I, sizeof(float));
        bool ok = cb->row_slot && cb->row_pos && cb->row_tok && cb->x && cb->h && cb->qkv && cb->att && cb->mlp;
        cb->cap_rows = ok ? rows : 0; /* 0: the next call tries again */
        if (!ok) return BLURB_E_NOMEM;
    }
    if (out_rows > cb->cap_out) {
        cb->out_src = renew(cb->out_src, out_rows, sizeof(int));
        cb->out_h = renew(cb->out_h, out_rows * C, sizeof(float));
        cb->logits = renew(cb->logits, out_rows * V, sizeof(float));
        bool ok = cb->out_src && cb->out_h && cb->logits;
        cb->cap_out = ok ? out_rows : 0;
        if (!ok) return BLURB_E_NOMEM;
    }
    return 0;
}

static int cpu_forward(blurb_backend *be, const blurb_chunk *chunks, int n_chunks, bool all_logits, blurb_err *err) {
    cpu_backend *cb = as_cpu(be);
    const blurb_config *c = &cb->cfg;
    const int C = c->n_embd, nt = cb->n_threads;

    size_t T = 0;
    for (int i = 0; i < n_chunks; i++) T += (size_t)chunks[i].n_tokens;
    const size_t n_out = all_logits ? T : (size_t)n_chunks;
    if (reserve(cb, T, n_out) < 0)
        return blurb_seterr(err, BLURB_E_NOMEM, "cpu backend: out of memory for a forward of %zu tokens", T);

    /* Rows are the chunks' tokens back to back; each keeps its slot's positions. */
    size_t r = 0, o = 0;
    for (int i = 0; i < n_chunks; i++) {
        const int len0 = be->slot_len[chunks[i].slot];
        for (int j = 0; j < chunks[i].n_tokens; j++, r++) {
            cb->row_slot[r] = chunks[i].slot;
            cb->row_pos[r] = len0 + j;
            cb->row_tok[r] = chunks[i].tokens[j];
            if (all_logits || j == chunks[i].n_tokens - 1) cb->out_src[o++] = (int)r;
        }
    }
    const int rows = (int)T;

    const bool parallel = (double)T * C >= PARALLEL_MIN_ELEMS;
    (void)parallel;
    OMP("omp parallel for schedule(static) num_threads(nt) if(parallel)")
    for (int t = 0; t < rows; t++) {
        const float *te = cb->wte + (size_t)cb->row_tok[t] * (size_t)C;
        const float *pe = cb->wpe + (size_t)cb->row_pos[t] * (size_t)C;
        float *x = cb->x + (size_t)t * (size_t)C;
        for (int i = 0; i < C; i++) x[i] = te[i] + pe[i];
    }

    for (int l = 0; l < c->n_layer; l++) {
        const cpu_layer *L = &cb->layers[l];
        layer_norm(cb->h, cb->x, L->ln_1_w, L->ln_1_b, rows, C, c->layer_norm_epsilon, nt);
        matmul(cb->qkv, cb->h, &L->c_attn, L->c_attn_b, rows, EPI_STORE, nt);
        for (int t = 0; t < rows; t++) {
            const float *q = cb->qkv + (size_t)t * 3 * (size_t)C;
            const size_t at = (size_t)cb->row_pos[t] * (size_t)C;
            memcpy(kv_at(cb, cb->row_slot[t], l, 0) + at, q + C, (size_t)C * sizeof(float));
            memcpy(kv_at(cb, cb->row_slot[t], l, 1) + at, q + 2 * C, (size_t)C * sizeof(float));
        }
        attention(cb, l, rows);
        matmul(cb->x, cb->att, &L->attn_proj, L->attn_proj_b, rows, EPI_RESIDUAL, nt);
        layer_norm(cb->h, cb->x, L->ln_2_w, L->ln_2_b, rows, C, c->layer_norm_epsilon, nt);
        matmul(cb->mlp, cb->h, &L->c_fc, L->c_fc_b, rows, EPI_GELU, nt);
        matmul(cb->x, cb->mlp, &L->mlp_proj, L->mlp_proj_b, rows, EPI_RESIDUAL, nt);
    }

    /* ln_f and the LM head only for the rows whose logits are wanted. */
    OMP("omp parallel for schedule(static) num_threads(nt) if(n_out * (size_t)C >= PARALLEL_MIN_ELEMS)")
    for (int i = 0; i < (int)n_out; i++)
        layer_norm_row(cb->out_h + (size_t)i * (size_t)C, cb->x + (size_t)cb->out_src[i] * (size_t)C,
                       cb->ln_f_w, cb->ln_f_b, C, c->layer_norm_epsilon);
    matmul(cb->logits, cb->out_h, &cb->lm_head, NULL, (int)n_out, EPI_STORE, nt);
    return 0;
}

static int cpu_logits(blurb_backend *be, int row, float *dst, blurb_err *err) {
    cpu_backend *cb = as_cpu(be);
    (void)err;
    memcpy(dst, cb->logits + (size_t)row * (size_t)be->vocab_size, (size_t)be->vocab_size * sizeof(float));
    return 0;
}

static int cpu_sample(blurb_backend *be, const blurb_sample_req *reqs, int n, int32_t *tokens, float *logprobs,
                      blurb_err *err) {
    cpu_backend *cb = as_cpu(be);
    const int nt = cb->n_threads, V = be->vocab_size;
    if (!cb->sampler_scratch) {
        blurb_sampler_scratch **s = calloc((size_t)nt, sizeof *s);
        bool ok = s != NULL;
        for (int i = 0; ok && i < nt; i++) ok = (s[i] = blurb_sampler_scratch_new(V)) != NULL;
        if (!ok) {
            for (int i = 0; s && i < nt; i++)
                if (s[i]) blurb_sampler_scratch_free(s[i]);
            free(s);
            return blurb_seterr(err, BLURB_E_NOMEM, "cpu backend: out of memory for sampling");
        }
        cb->sampler_scratch = s;
    }
    int failed = -1; /* a request blurb_sample_row refused (cannot happen for checked requests) */
    OMP("omp parallel for schedule(dynamic) num_threads(nt) if(n > 1)")
    for (int i = 0; i < n; i++) {
        const blurb_sample_req *q = &reqs[i];
        float lp = 0.0f;
        int tok = blurb_sample_row(cb->logits + (size_t)q->row * (size_t)V, V, q->params, be->slot_tokens[q->slot],
                                   be->slot_len[q->slot], q->n_generated, q->key, (uint32_t)q->n_generated,
                                   cb->sampler_scratch[thread_id()], logprobs ? &lp : NULL);
        if (tok < 0) {
            OMP("omp critical(blurb_cpu_sample_failed)")
            failed = i;
            tok = 0;
        }
        tokens[i] = tok;
        if (logprobs) logprobs[i] = lp;
    }
    if (failed >= 0)
        return blurb_seterr(err, BLURB_E_INVALID, "cpu backend: the sampler refused request %d (row %d)", failed,
                            reqs[failed].row);
    return 0;
}

static int cpu_reset(blurb_backend *be, int slot, blurb_err *err) {
    /* The cache needs no clearing: positions past the slot length are never read. */
    (void)be;
    (void)slot;
    (void)err;
    return 0;
}

static void cpu_destroy(blurb_backend *be) {
    cpu_backend *cb = as_cpu(be);
    if (!cb) return;
    free(cb->wte);
    free(cb->wpe);
    free(cb->ln_f_w);
    free(cb->ln_f_b);
    free(cb->lm_head.w);
    if (cb->layers)
        for (int l = 0; l < cb->cfg.n_layer; l++) free_layer(&cb->layers[l]);
    free(cb->layers);
    free(cb->kv);
    free(cb->row_slot);
    free(cb->row_pos);
    free(cb->row_tok);
    free(cb->x);
    free(cb->h);
    free(cb->qkv);
    free(cb->att);
    free(cb->mlp);
    free(cb->out_src);
    free(cb->out_h);
    free(cb->logits);
    free(cb->scores);
    if (cb->sampler_scratch)
        for (int i = 0; i < cb->n_threads; i++)
            if (cb->sampler_scratch[i]) blurb_sampler_scratch_free(cb->sampler_scratch[i]);
    free(cb->sampler_scratch);
    free(cb);
}

static const struct blurb_backend_ops cpu_ops = {
    .name = "cpu",
    .forward = cpu_forward,
    .logits = cpu_logits,
    .sample = cpu_sample,
    .reset = cpu_reset,
    .destroy = cpu_destroy,
};

int blurb_cpu_backend_create(const blurb_model *model, const blurb_backend_opts *opts, blurb_backend **out,
                             blurb_err *err) {
    int rc = check_shapes(model, err);
    if (rc < 0) return rc;
    cpu_backend *cb = calloc(1, sizeof *cb);
    if (!cb) return blurb_seterr(err, BLURB_E_NOMEM, "cpu backend: out of memory");
    cb->base.ops = &cpu_ops;
    cb->base.model = model;
    cb->base.n_ctx = model->cfg.n_ctx;
    cb->base.vocab_size = model->cfg.vocab_size;
    cb->cfg = model->cfg;
#ifdef _OPENMP
    cb->n_threads = opts->n_threads > 0 ? opts->n_threads : omp_get_max_threads();
#else
    cb->n_threads = 1;
#endif

    const size_t slot_bytes = (size_t)model->cfg.n_layer * 2 * (size_t)model->cfg.n_ctx *
                              (size_t)model->cfg.n_embd * sizeof(float);
    size_t n_slots = (size_t)opts->max_slots;
    if (n_slots == 0) {
        n_slots = DEFAULT_KV_BUDGET / slot_bytes;
        if (n_slots > DEFAULT_MAX_SLOTS) n_slots = DEFAULT_MAX_SLOTS;
        if (n_slots < 1) n_slots = 1;
    }
    cb->base.n_slots = (int)n_slots;

    if (convert_weights(cb, model) < 0) {
        cpu_destroy(&cb->base);
        return blurb_seterr(err, BLURB_E_NOMEM, "cpu backend: out of memory converting the weights to fp32");
    }
    /* Pages of the cache are only touched as sequences grow, so a generous
     * slot count costs address space, not memory. */
    cb->kv = n_slots <= SIZE_MAX / slot_bytes ? malloc(n_slots * slot_bytes) : NULL;
    cb->scores = malloc((size_t)cb->n_threads * (size_t)model->cfg.n_ctx * sizeof(float));
    if (!cb->kv || !cb->scores) {
        cpu_destroy(&cb->base);
        return blurb_seterr(err, BLURB_E_NOMEM, "cpu backend: out of memory for the KV cache of %zu slots (%zu MiB)",
                            n_slots, n_slots * (slot_bytes >> 20));
    }
    *out = &cb->base;
    return 0;
}
