/* Model loader: the default model's config and tensors; copies written in the
 * other layouts HF publishes (no `transformer.` prefix with old attn.bias
 * buffers, explicit lm_head.weight, F32, index + 2 shards, BF16) load to fp32
 * weights bit-identical to what they hold and, through the CPU reference
 * backend, to logits bit-identical to the original's (prefill + 4 decode steps
 * of the 8 golden prompts); the BF16 copy's logits are within 1e-5 of an F32
 * copy holding the same bf16-rounded values and its greedy continuations equal
 * tests/data/golden.json. Each bad model is rejected with its own message;
 * fp16/bf16 widening is exact; random models are deterministic. */
#include <math.h>
#include <sys/wait.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "blurb/backend.h"
#include "blurb/model.h"
#include "check.h"
#include "st_write.h"

static char *tmp;

/* ---- helpers -------------------------------------------------------------------- */

typedef struct named {
    char name[128]; /* without prefix */
    const blurb_tensor *t;
} named;

/* The model's tensors with their HF names (no prefix); lm_head only when untied. */
static int model_named(const blurb_model *m, named *out) {
    int k = 0;
#define ADD(nm, tp) do { snprintf(out[k].name, sizeof out[k].name, "%s", nm); out[k].t = (tp); k++; } while (0)
    ADD("wte.weight", &m->wte);
    ADD("wpe.weight", &m->wpe);
    for (int i = 0; i < m->cfg.n_layer; i++) {
        const blurb_layer *L = &m->layers[i];
        const struct {
            const char *n;
            const blurb_tensor *t;
        } l[] = {{"ln_1.weight", &L->ln_1_w}, {"ln_1.bias", &L->ln_1_b},
                 {"attn.c_attn.weight", &L->c_attn_w}, {"attn.c_attn.bias", &L->c_attn_b},
                 {"attn.c_proj.weight", &L->attn_c_proj_w}, {"attn.c_proj.bias", &L->attn_c_proj_b},
                 {"ln_2.weight", &L->ln_2_w}, {"ln_2.bias", &L->ln_2_b},
                 {"mlp.c_fc.weight", &L->c_fc_w}, {"mlp.c_fc.bias", &L->c_fc_b},
                 {"mlp.c_proj.weight", &L->mlp_c_proj_w}, {"mlp.c_proj.bias", &L->mlp_c_proj_b}};
        for (size_t j = 0; j < sizeof l / sizeof l[0]; j++) {
            char nm[128];
            snprintf(nm, sizeof nm, "h.%d.%s", i, l[j].n);
            ADD(nm, l[j].t);
        }
    }
    ADD("ln_f.weight", &m->ln_f_w);
    ADD("ln_f.bias", &m->ln_f_b);
    if (!m->lm_head_tied) ADD("lm_head.weight", &m->lm_head);
#undef ADD
    return k;
}

static float *to_f32(const blurb_tensor *t) {
    float *d = malloc((size_t)blurb_tensor_numel(t) * sizeof *d + 1);
    REQUIRE(d);
    blurb_tensor_to_f32(t, d);
    return d;
}

static uint16_t f32_to_bf16_rne(float f) {
    uint32_t b;
    memcpy(&b, &f, 4);
    if ((b & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((b >> 16) | 0x40); /* NaN stays NaN */
    b += 0x7fffu + ((b >> 16) & 1u);
    return (uint16_t)(b >> 16);
}

enum conv { CONV_RAW, CONV_F32, CONV_BF16, CONV_F32_OF_BF16 };

typedef struct copy_opts {
    const char *prefix;   /* "transformer." or "" */
    enum conv conv;
    bool lm_head;         /* write lm_head.weight (a copy of the head) */
    bool old_buffers;     /* add attn.bias [1,1,n_ctx,n_ctx] and attn.masked_bias [] like old files */
    bool sharded;         /* index + 2 shards */
    const char *omit;     /* leave this tensor (no prefix) out */
    const char *as_f64;   /* write this tensor (no prefix) as F64 */
    int extra_layer;      /* also write a layer n_layer (config mismatch) */
} copy_opts;

static const char *dt_name(blurb_dtype d) { return blurb_dtype_name(d); }

/* Writes model m into dir as safetensors, converting per o->conv. */
static void write_weights(const char *dir, const blurb_model *m, const copy_opts *o) {
    named *nt = malloc(sizeof *nt * (size_t)(16 + 14 * (m->cfg.n_layer + 1)));
    REQUIRE(nt);
    int n = model_named(m, nt);
    if (o->lm_head && m->lm_head_tied) {
        snprintf(nt[n].name, sizeof nt[n].name, "lm_head.weight");
        nt[n].t = &m->lm_head;
        n++;
    }
    if (o->extra_layer) {
        snprintf(nt[n].name, sizeof nt[n].name, "h.%d.ln_1.weight", m->cfg.n_layer);
        nt[n].t = &m->layers[0].ln_1_w;
        n++;
    }
    stw_tensor *ts = calloc((size_t)n + 2 * (size_t)m->cfg.n_layer, sizeof *ts);
    void **bufs = calloc((size_t)n + 2 * (size_t)m->cfg.n_layer, sizeof *bufs);
    REQUIRE(ts && bufs);
    int k = 0;
    for (int i = 0; i < n; i++) {
        const blurb_tensor *t = nt[i].t;
        if (o->omit && strcmp(o->omit, nt[i].name) == 0) continue;
        stw_tensor *s = &ts[k];
        bool head = strcmp(nt[i].name, "lm_head.weight") == 0;
        snprintf(s->name, sizeof s->name, "%s%s", head ? "" : o->prefix, nt[i].name);
        s->ndim = t->ndim;
        s->shape[0] = t->shape[0];
        s->shape[1] = t->shape[1];
        size_t numel = (size_t)blurb_tensor_numel(t);
        if (o->as_f64 && strcmp(o->as_f64, nt[i].name) == 0) {
            float *f = to_f32(t);
            double *d = malloc(numel * sizeof *d + 1);
            REQUIRE(d);
            for (size_t j = 0; j < numel; j++) d[j] = f[j];
            free(f);
            s->dtype = "F64";
            s->data = bufs[k] = d;
            s->nbytes = numel * 8;
        } else if (o->conv == CONV_RAW) {
            s->dtype = dt_name(t->dtype);
            s->data = t->data;
            s->nbytes = numel * blurb_dtype_size(t->dtype);
        } else {
            float *f = to_f32(t);
            if (o->conv == CONV_F32) {
                s->dtype = "F32";
                s->data = bufs[k] = f;
                s->nbytes = numel * 4;
            } else {
                uint16_t *h = malloc(numel * 2 + 1);
                REQUIRE(h);
                for (size_t j = 0; j < numel; j++) h[j] = f32_to_bf16_rne(f[j]);
                if (o->conv == CONV_BF16) {
                    free(f);
                    s->dtype = "BF16";
                    s->data = bufs[k] = h;
                    s->nbytes = numel * 2;
                } else {
                    for (size_t j = 0; j < numel; j++) {
                        uint32_t b = (uint32_t)h[j] << 16;
                        memcpy(&f[j], &b, 4);
                    }
                    free(h);
                    s->dtype = "F32";
                    s->data = bufs[k] = f;
                    s->nbytes = numel * 4;
                }
            }
        }
        k++;
    }
    float masked_bias = -1e4f;
    uint8_t *mask = NULL;
    if (o->old_buffers) {
        /* What transformers < 4.x saved: the causal mask and the masked-score constant. */
        int64_t c = m->cfg.n_ctx;
        mask = malloc((size_t)(c * c) * 4);
        REQUIRE(mask);
        for (int64_t r = 0; r < c; r++)
            for (int64_t q = 0; q < c; q++) {
                float v = q <= r ? 1.0f : 0.0f;
                memcpy(mask + 4 * (r * c + q), &v, 4);
            }
        for (int l = 0; l < m->cfg.n_layer; l++) {
            stw_tensor *s = &ts[k++];
            snprintf(s->name, sizeof s->name, "%sh.%d.attn.bias", o->prefix, l);
            s->dtype = "F32";
            s->ndim = 4;
            s->shape[0] = s->shape[1] = 1;
            s->shape[2] = s->shape[3] = c;
            s->data = mask;
            s->nbytes = (size_t)(c * c) * 4;
            s = &ts[k++];
            snprintf(s->name, sizeof s->name, "%sh.%d.attn.masked_bias", o->prefix, l);
            s->dtype = "F32";
            s->ndim = 0;
            s->data = &masked_bias;
            s->nbytes = 4;
        }
    }
    if (!o->sharded) {
        char *p = stw_path(dir, "model.safetensors");
        stw_write_file(p, ts, k, "{\"format\":\"pt\"}");
        free(p);
    } else {
        /* Split in the middle, as save_pretrained(max_shard_size=...) would. */
        int half = k / 2;
        const char *names[2] = {"model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"};
        char *p0 = stw_path(dir, names[0]), *p1 = stw_path(dir, names[1]);
        stw_write_file(p0, ts, half, "{\"format\":\"pt\"}");
        stw_write_file(p1, ts + half, k - half, "{\"format\":\"pt\"}");
        stw_str ix = {0};
        size_t total = 0;
        for (int i = 0; i < k; i++) total += ts[i].nbytes;
        stw_addf(&ix, "{\n  \"metadata\": {\n    \"total_size\": %zu\n  },\n  \"weight_map\": {\n", total);
        for (int i = 0; i < k; i++)
            stw_addf(&ix, "    \"%s\": \"%s\"%s\n", ts[i].name, names[i >= half], i + 1 < k ? "," : "");
        stw_addf(&ix, "  }\n}\n");
        char *pi = stw_path(dir, "model.safetensors.index.json");
        stw_write_text(pi, ix.s);
        free(ix.s);
        free(pi);
        free(p0);
        free(p1);
    }
    for (int i = 0; i < k; i++) free(bufs[i]);
    free(bufs);
    free(ts);
    free(mask);
    free(nt);
}

/* config.json for cfg; extra is spliced in as more fields (may be ""). */
static void write_config(const char *dir, const blurb_config *c, const char *extra) {
    char text[2048];
    snprintf(text, sizeof text,
             "{\n  \"activation_function\": \"gelu_new\",\n  \"model_type\": \"gpt2\",\n"
             "  \"n_layer\": %d,\n  \"n_head\": %d,\n  \"n_embd\": %d,\n  \"n_positions\": %d,\n"
             "  \"n_inner\": %d,\n  \"vocab_size\": %d,\n  \"layer_norm_epsilon\": %.9g,\n"
             "  \"eos_token_id\": %d,\n  \"scale_attn_weights\": %s,\n  \"scale_attn_by_inverse_layer_idx\": %s%s\n}\n",
             c->n_layer, c->n_head, c->n_embd, c->n_ctx, c->n_inner, c->vocab_size, (double)c->layer_norm_epsilon,
             c->eos_token_id, c->scale_attn_weights ? "true" : "false",
             c->scale_attn_by_inverse_layer_idx ? "true" : "false", extra);
    char *p = stw_path(dir, "config.json");
    stw_write_text(p, text);
    free(p);
}

static void copy_file(const char *from, const char *to) {
    FILE *f = fopen(from, "rb");
    REQUIRE(f);
    stw_str b = {0};
    char chunk[4096];
    size_t got;
    while ((got = fread(chunk, 1, sizeof chunk, f)) > 0) stw_addf(&b, "%.*s", (int)got, chunk);
    fclose(f);
    stw_write_text(to, b.s ? b.s : "");
    free(b.s);
}

/* Every tensor of a and b converts to the same fp32 bits; same shapes and config. */
static bool same_weights(const blurb_model *a, const blurb_model *b, const char *what) {
    bool say = what != NULL; /* NULL: a difference is expected, stay quiet */
    if (memcmp(&a->cfg, &b->cfg, sizeof a->cfg) != 0) {
        if (say) fprintf(stderr, "%s: configs differ\n", what);
        return false;
    }
    size_t cap = (size_t)(16 + 14 * a->cfg.n_layer);
    named *pa = malloc(cap * sizeof *pa), *pb = malloc(cap * sizeof *pb);
    REQUIRE(pa && pb);
    int n = model_named(a, pa);
    model_named(b, pb);
    bool ok = true;
    for (int i = 0; i < n && ok; i++) {
        const blurb_tensor *x = pa[i].t, *y = pb[i].t;
        if (x->ndim != y->ndim || x->shape[0] != y->shape[0] || x->shape[1] != y->shape[1]) {
            if (say) fprintf(stderr, "%s: %s shapes differ\n", what, pa[i].name);
            ok = false;
            break;
        }
        float *fx = to_f32(x), *fy = to_f32(y);
        if (memcmp(fx, fy, (size_t)blurb_tensor_numel(x) * 4) != 0) {
            if (say) fprintf(stderr, "%s: %s values differ\n", what, pa[i].name);
            ok = false;
        }
        free(fx);
        free(fy);
    }
    /* The head too, whether tied or not. */
    if (ok) {
        float *fx = to_f32(&a->lm_head), *fy = to_f32(&b->lm_head);
        ok = blurb_tensor_numel(&a->lm_head) == blurb_tensor_numel(&b->lm_head) &&
             memcmp(fx, fy, (size_t)blurb_tensor_numel(&a->lm_head) * 4) == 0;
        if (!ok && say) fprintf(stderr, "%s: lm_head differs\n", what);
        free(fx);
        free(fy);
    }
    free(pa);
    free(pb);
    return ok;
}

static blurb_model *load_ok(const char *dir) {
    blurb_model *m = NULL;
    blurb_err err = {0};
    int rc = blurb_model_load(dir, &m, &err);
    CHECKF(rc == 0 && m, "%s: %s", dir, err.msg);
    return rc == 0 ? m : NULL;
}

static void expect_load_fail(const char *dir, int code, const char *needle1, const char *needle2) {
    blurb_model *m = NULL;
    blurb_err err = {0};
    int rc = blurb_model_load(dir, &m, &err);
    if (getenv("BLURB_TEST_VERBOSE")) fprintf(stderr, "rejected: %s\n", err.msg);
    CHECKF(rc == code, "%s: rc %d, want %d (%s)", dir, rc, code, err.msg);
    CHECK(m == NULL);
    CHECKF(strstr(err.msg, dir) != NULL, "message does not name the model's files: %s", err.msg);
    CHECKF(strstr(err.msg, needle1) != NULL, "want '%s' in: %s", needle1, err.msg);
    if (needle2) CHECKF(strstr(err.msg, needle2) != NULL, "want '%s' in: %s", needle2, err.msg);
    blurb_model_free(m);
}

/* ---- logits through the CPU reference backend ------------------------------------ */

#define N_GOLDEN 8
#define N_DECODE 4   /* decode steps compared after the prefill */
#define GREEDY_MAX 32
#define EOS_ID 50256

typedef struct golden {
    int n;
    int32_t *ids[N_GOLDEN];
    int n_ids[N_GOLDEN];
    int32_t greedy[N_GOLDEN][GREEDY_MAX];
    int n_greedy[N_GOLDEN];
} golden;

/* tests/data/golden.json: prompt ids and their greedy_32 continuations (see tests/data/GOLDEN.md). */
static void load_golden(golden *g) {
    FILE *f = fopen(BLURB_TEST_DATA "/golden.json", "rb");
    REQUIRE(f);
    stw_str b = {0};
    char chunk[4096];
    size_t got;
    while ((got = fread(chunk, 1, sizeof chunk, f)) > 0) stw_addf(&b, "%.*s", (int)got, chunk);
    fclose(f);
    cJSON *root = cJSON_Parse(b.s);
    free(b.s);
    REQUIRE(cJSON_IsArray(root) && cJSON_GetArraySize(root) == N_GOLDEN);
    memset(g, 0, sizeof *g);
    g->n = N_GOLDEN;
    for (int i = 0; i < N_GOLDEN; i++) {
        const cJSON *e = cJSON_GetArrayItem(root, i);
        const cJSON *ids = cJSON_GetObjectItemCaseSensitive(e, "ids");
        const cJSON *gr = cJSON_GetObjectItemCaseSensitive(e, "greedy_32");
        REQUIRE(cJSON_IsArray(ids) && cJSON_IsArray(gr) && cJSON_GetArraySize(gr) <= GREEDY_MAX);
        g->n_ids[i] = cJSON_GetArraySize(ids);
        REQUIRE(g->n_ids[i] >= 1);
        g->ids[i] = malloc(sizeof(int32_t) * (size_t)g->n_ids[i]);
        REQUIRE(g->ids[i]);
        for (int k = 0; k < g->n_ids[i]; k++) g->ids[i][k] = cJSON_GetArrayItem(ids, k)->valueint;
        g->n_greedy[i] = cJSON_GetArraySize(gr);
        for (int k = 0; k < g->n_greedy[i]; k++) g->greedy[i][k] = cJSON_GetArrayItem(gr, k)->valueint;
    }
    cJSON_Delete(root);
}

static void free_golden(golden *g) {
    for (int i = 0; i < g->n; i++) free(g->ids[i]);
}

static blurb_backend *cpu_backend(const blurb_model *m, int slots) {
    blurb_backend_opts o = blurb_backend_opts_default();
    o.kind = BLURB_BACKEND_CPU;
    o.max_slots = slots;
    blurb_backend *be = NULL;
    blurb_err err = {0};
    int rc = blurb_backend_create(m, &o, &be, &err);
    if (rc != 0) fprintf(stderr, "cpu backend: %s\n", err.msg);
    REQUIRE(rc == 0 && be);
    return be;
}

static int32_t argmax(const float *v, int n) {
    int32_t best = 0; /* ties go to the lower id */
    for (int i = 1; i < n; i++)
        if (v[i] > v[best]) best = i;
    return best;
}

/* Logits of all golden prompts prefilled in one batch, then N_DECODE greedy
 * decode steps: [(1 + N_DECODE) * n, vocab_size] floats. */
static float *run_logits(const blurb_model *m, const golden *g) {
    int V = m->cfg.vocab_size, n = g->n;
    blurb_backend *be = cpu_backend(m, n);
    float *out = malloc(sizeof(float) * (size_t)V * (size_t)n * (1 + N_DECODE));
    REQUIRE(out);
    blurb_chunk ch[N_GOLDEN];
    int32_t next[N_GOLDEN];
    blurb_err err = {0};
    for (int i = 0; i < n; i++) ch[i] = (blurb_chunk){i, g->ids[i], g->n_ids[i]};
    for (int step = 0; step <= N_DECODE; step++) {
        REQUIRE(blurb_backend_forward(be, ch, n, false, &err) == 0);
        for (int i = 0; i < n; i++) {
            float *row = out + ((size_t)step * (size_t)n + (size_t)i) * (size_t)V;
            REQUIRE(blurb_backend_logits(be, i, row, &err) == 0);
            next[i] = argmax(row, V);
            ch[i] = (blurb_chunk){i, &next[i], 1};
        }
    }
    blurb_backend_free(be);
    return out;
}

/* Greedy continuations of every golden prompt, batched, each stopping after EOS. */
static void run_greedy(const blurb_model *m, const golden *g, int32_t out[N_GOLDEN][GREEDY_MAX],
                       int n_out[N_GOLDEN]) {
    int V = m->cfg.vocab_size;
    blurb_backend *be = cpu_backend(m, g->n);
    float *row = malloc(sizeof(float) * (size_t)V);
    REQUIRE(row);
    blurb_chunk ch[N_GOLDEN];
    int live[N_GOLDEN], n_live = g->n;
    blurb_err err = {0};
    for (int i = 0; i < g->n; i++) {
        n_out[i] = 0;
        live[i] = i;
        ch[i] = (blurb_chunk){i, g->ids[i], g->n_ids[i]};
    }
    while (n_live > 0) {
        REQUIRE(blurb_backend_forward(be, ch, n_live, false, &err) == 0);
        int k = 0;
        for (int r = 0; r < n_live; r++) {
            int s = live[r];
            REQUIRE(blurb_backend_logits(be, r, row, &err) == 0);
            int32_t t = argmax(row, V);
            out[s][n_out[s]++] = t;
            if (t != EOS_ID && n_out[s] < GREEDY_MAX) {
                live[k] = s;
                ch[k] = (blurb_chunk){s, &out[s][n_out[s] - 1], 1};
                k++;
            }
        }
        n_live = k;
    }
    free(row);
    blurb_backend_free(be);
}

static bool bits_equal(const float *a, const float *b, size_t n, const char *what) {
    size_t diff = 0;
    for (size_t i = 0; i < n; i++) diff += memcmp(&a[i], &b[i], 4) != 0;
    if (diff && what) fprintf(stderr, "%s: %zu of %zu logits differ\n", what, diff, n);
    return diff == 0;
}

/* ---- tests ---------------------------------------------------------------------- */

static void test_widening(void) {
    /* Every binary16 value against its definition (-1)^s * 2^(e-15) * (1 + m/1024), subnormals 2^-14 * m/1024. */
    int bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        uint16_t v = (uint16_t)h;
        uint8_t le[2] = {(uint8_t)(h & 0xff), (uint8_t)(h >> 8)};
        blurb_tensor t = {BLURB_DTYPE_F16, 1, {1, 1}, le};
        float got;
        blurb_tensor_to_f32(&t, &got);
        int s = v >> 15, e = (v >> 10) & 31, m = v & 1023;
        uint32_t gb;
        memcpy(&gb, &got, 4);
        bool ok;
        if (e == 31) {
            /* inf / NaN: exponent all ones, payload moved up, sign kept. */
            ok = (gb >> 31) == (uint32_t)s && ((gb >> 23) & 0xff) == 0xff && (gb & 0x7fffff) == (uint32_t)m << 13;
        } else {
            double want = e == 0 ? ldexp(m, -24) : ldexp(1024 + m, e - 25);
            if (s) want = -want;
            ok = (double)got == want && (signbit(got) != 0) == (s != 0);
        }
        if (!ok) bad++;
    }
    CHECKF(bad == 0, "%d binary16 values widened wrongly", bad);

    /* bfloat16 is the top half of binary32: check a few landmarks bit for bit. */
    const uint16_t bf[] = {0x3f80, 0xbf80, 0x0001, 0x8000, 0x7f80, 0xff80, 0x7fc1, 0x4049, 0x0080};
    const uint32_t want[] = {0x3f800000, 0xbf800000, 0x00010000, 0x80000000, 0x7f800000, 0xff800000,
                             0x7fc10000, 0x40490000, 0x00800000};
    uint8_t raw[sizeof bf];
    for (size_t i = 0; i < sizeof bf / 2; i++) {
        raw[2 * i] = (uint8_t)(bf[i] & 0xff);
        raw[2 * i + 1] = (uint8_t)(bf[i] >> 8);
    }
    blurb_tensor t = {BLURB_DTYPE_BF16, 1, {sizeof bf / 2, 1}, raw};
    float out[sizeof bf / 2];
    blurb_tensor_to_f32(&t, out);
    for (size_t i = 0; i < sizeof bf / 2; i++) {
        uint32_t b;
        memcpy(&b, &out[i], 4);
        CHECKF(b == want[i], "bf16 0x%04x -> 0x%08x", bf[i], b);
    }
    /* F32 from an unaligned little-endian buffer. */
    uint8_t f32raw[9] = {0, 0x00, 0x00, 0xc0, 0x3f, 0x00, 0x00, 0x80, 0xff};
    blurb_tensor tf = {BLURB_DTYPE_F32, 2, {1, 2}, f32raw + 1};
    float of[2];
    blurb_tensor_to_f32(&tf, of);
    CHECK(of[0] == 1.5f && isinf(of[1]) && of[1] < 0);

    CHECK(blurb_dtype_size(BLURB_DTYPE_F32) == 4 && blurb_dtype_size(BLURB_DTYPE_F16) == 2 &&
          blurb_dtype_size(BLURB_DTYPE_BF16) == 2);
    CHECK(strcmp(blurb_dtype_name(BLURB_DTYPE_F32), "F32") == 0 && strcmp(blurb_dtype_name(BLURB_DTYPE_F16), "F16") == 0 &&
          strcmp(blurb_dtype_name(BLURB_DTYPE_BF16), "BF16") == 0);
}

static const char *default_dir(void) { return BLURB_SOURCE_DIR "/weights/default"; }

static void test_default_model(void) {
    blurb_model *m = load_ok(default_dir());
    REQUIRE(m);
    /* Values from weights/default/config.json and CARD.md. */
    CHECK(m->cfg.n_layer == 6 && m->cfg.n_head == 4 && m->cfg.n_embd == 256 && m->cfg.n_ctx == 512);
    CHECK(m->cfg.n_inner == 1024 && m->cfg.vocab_size == 50257 && m->cfg.eos_token_id == 50256);
    CHECK(m->cfg.layer_norm_epsilon == 1e-5f && m->cfg.scale_attn_weights && !m->cfg.scale_attn_by_inverse_layer_idx);
    CHECK(m->lm_head_tied && m->lm_head.data == m->wte.data);
    CHECK(blurb_model_n_params(m) == 17735936);
    CHECK(blurb_model_n_bytes(m) == 2 * 17735936);
    CHECK(m->wte.dtype == BLURB_DTYPE_F16 && m->layers[5].mlp_c_proj_w.dtype == BLURB_DTYPE_F16);
    CHECK(m->layers[2].c_attn_w.ndim == 2 && m->layers[2].c_attn_w.shape[0] == 256 &&
          m->layers[2].c_attn_w.shape[1] == 768);
    CHECK(m->layers[2].c_fc_b.ndim == 1 && m->layers[2].c_fc_b.shape[0] == 1024 && m->layers[2].c_fc_b.shape[1] == 1);
    CHECK(m->dir && strcmp(m->dir, default_dir()) == 0);

    golden g;
    load_golden(&g);
    size_t n_logits = (size_t)m->cfg.vocab_size * (size_t)g.n * (1 + N_DECODE);
    float *ref = run_logits(m, &g);
    char *cfg_src = stw_path(default_dir(), "config.json");
    struct {
        const char *name;
        copy_opts o;
    } copies[] = {
        {"noprefix", {.prefix = "", .conv = CONV_RAW, .old_buffers = true}},
        {"lmhead", {.prefix = "transformer.", .conv = CONV_RAW, .lm_head = true}},
        {"f32", {.prefix = "transformer.", .conv = CONV_F32}},
        {"sharded", {.prefix = "transformer.", .conv = CONV_RAW, .sharded = true}},
    };
    for (size_t i = 0; i < sizeof copies / sizeof copies[0]; i++) {
        char *d = stw_subdir(tmp, copies[i].name);
        char *cfg = stw_path(d, "config.json");
        copy_file(cfg_src, cfg);
        write_weights(d, m, &copies[i].o);
        blurb_model *c = load_ok(d);
        if (c) {
            CHECKF(same_weights(m, c, copies[i].name), "%s copy differs from the original", copies[i].name);
            CHECK(blurb_model_n_params(c) == 17735936 + (copies[i].o.lm_head ? 50257 * 256 : 0));
            if (copies[i].o.lm_head) CHECK(!c->lm_head_tied && c->lm_head.data != c->wte.data);
            else CHECK(c->lm_head_tied);
            if (copies[i].o.conv == CONV_F32) {
                CHECK(c->wte.dtype == BLURB_DTYPE_F32 && blurb_model_n_bytes(c) == 4 * 17735936);
            }
            float *lg = run_logits(c, &g);
            CHECKF(bits_equal(ref, lg, n_logits, copies[i].name), "%s copy: logits not bit-identical",
                   copies[i].name);
            free(lg);
        }
        blurb_model_free(c);
        stw_rmtree(d);
        free(cfg);
        free(d);
    }

    /* BF16 copy against an F32 copy holding the same bf16-rounded values. */
    char *dbf = stw_subdir(tmp, "bf16");
    char *dref = stw_subdir(tmp, "f32_of_bf16");
    char *c1 = stw_path(dbf, "config.json"), *c2 = stw_path(dref, "config.json");
    copy_file(cfg_src, c1);
    copy_file(cfg_src, c2);
    write_weights(dbf, m, &(copy_opts){.prefix = "transformer.", .conv = CONV_BF16});
    write_weights(dref, m, &(copy_opts){.prefix = "transformer.", .conv = CONV_F32_OF_BF16});
    blurb_model *mb = load_ok(dbf), *mr = load_ok(dref);
    if (mb && mr) {
        CHECK(mb->wte.dtype == BLURB_DTYPE_BF16 && mr->wte.dtype == BLURB_DTYPE_F32);
        CHECK(blurb_model_n_bytes(mb) == 2 * 17735936);
        CHECK(same_weights(mb, mr, "bf16 vs f32-of-bf16"));
        /* And rounding really happened: bf16 keeps 8 significand bits, f16 11. */
        CHECK(!same_weights(mb, m, NULL));
        float *lb = run_logits(mb, &g), *lr = run_logits(mr, &g);
        double worst = 0;
        for (size_t i = 0; i < n_logits; i++) {
            double d = fabs((double)lb[i] - (double)lr[i]);
            if (isnan(d) || d > worst) worst = isnan(d) ? INFINITY : d; /* a NaN fails the check */
        }
        CHECKF(worst <= 1e-5, "bf16 vs f32-of-bf16 logits: max abs diff %g", worst);
        /* bf16 rounding really reaches the logits (the comparison above is not vacuous). */
        CHECK(!bits_equal(ref, lb, n_logits, NULL));
        free(lb);
        free(lr);
        int32_t out[N_GOLDEN][GREEDY_MAX];
        int n_out[N_GOLDEN];
        run_greedy(mb, &g, out, n_out);
        for (int i = 0; i < g.n; i++) {
            bool same = n_out[i] == g.n_greedy[i] && memcmp(out[i], g.greedy[i], sizeof(int32_t) * (size_t)n_out[i]) == 0;
            int first = 0;
            while (first < n_out[i] && first < g.n_greedy[i] && out[i][first] == g.greedy[i][first]) first++;
            CHECKF(same, "bf16 copy, prompt %d: greedy continuation differs from the golden at token %d "
                   "(%d vs %d tokens)", i, first, n_out[i], g.n_greedy[i]);
        }
    }
    blurb_model_free(mb);
    blurb_model_free(mr);
    stw_rmtree(dbf);
    stw_rmtree(dref);
    free(c1);
    free(c2);
    free(dbf);
    free(dref);
    free(cfg_src);
    free(ref);
    free_golden(&g);
    blurb_model_free(m);
}

static blurb_config tiny_cfg(void) {
    blurb_config c = {.n_layer = 2, .n_head = 2, .n_embd = 8, .n_ctx = 16, .n_inner = 32, .vocab_size = 40,
                      .layer_norm_epsilon = 1e-5f, .eos_token_id = 39, .scale_attn_weights = true,
                      .scale_attn_by_inverse_layer_idx = false};
    return c;
}

/* A tiny model directory in tmp/name: weights per o, config from c plus extra fields. */
static char *tiny_dir(const char *name, const blurb_model *m, const blurb_config *c, const char *extra,
                      const copy_opts *o) {
    char *d = stw_subdir(tmp, name);
    write_config(d, c, extra);
    write_weights(d, m, o);
    return d;
}

static void test_tiny_variants(void) {
    blurb_config c = tiny_cfg();
    blurb_model *m = NULL;
    blurb_err err = {0};
    REQUIRE(blurb_model_random(&c, 7, &m, &err) == 0);
    copy_opts base = {.prefix = "transformer.", .conv = CONV_RAW};

    /* Round trip, and config fields that change the arithmetic. */
    blurb_config c2 = c;
    c2.scale_attn_by_inverse_layer_idx = true;
    c2.scale_attn_weights = false;
    c2.layer_norm_epsilon = 1e-6f;
    char *d = tiny_dir("tiny", m, &c2, ",\n  \"reorder_and_upcast_attn\": true", &base);
    blurb_model *l = load_ok(d);
    if (l) {
        CHECK(l->cfg.scale_attn_by_inverse_layer_idx && !l->cfg.scale_attn_weights);
        CHECK(l->cfg.layer_norm_epsilon == 1e-6f && l->cfg.eos_token_id == 39);
        blurb_config back = l->cfg;
        l->cfg = c;
        CHECK(same_weights(m, l, "tiny round trip"));
        l->cfg = back;
        CHECK(blurb_model_n_params(l) == blurb_model_n_params(m));
    }
    blurb_model_free(l);
    free(d);

    /* n_inner null -> 4*n_embd; eos_token_id as a list; n_ctx instead of n_positions; extra unknown fields. */
    d = stw_subdir(tmp, "tiny_null");
    {
        char *p = stw_path(d, "config.json");
        stw_write_text(p, "{\"n_layer\": 2, \"n_head\": 2, \"n_embd\": 8, \"n_ctx\": 16, \"n_inner\": null,"
                          " \"vocab_size\": 40, \"eos_token_id\": [3, 39], \"architectures\": [\"GPT2LMHeadModel\"],"
                          " \"summary_type\": \"cls_index\"}");
        free(p);
        write_weights(d, m, &(copy_opts){.prefix = "", .conv = CONV_BF16, .sharded = true, .lm_head = true});
    }
    l = load_ok(d);
    if (l) {
        CHECK(l->cfg.n_inner == 32 && l->cfg.n_ctx == 16 && l->cfg.eos_token_id == 3);
        CHECK(l->cfg.layer_norm_epsilon == 1e-5f && l->cfg.scale_attn_weights && !l->cfg.scale_attn_by_inverse_layer_idx);
        CHECK(!l->lm_head_tied && l->wte.dtype == BLURB_DTYPE_BF16);
    }
    blurb_model_free(l);
    free(d);

    /* ---- rejected models, each with its own message ---- */
    d = tiny_dir("missing", m, &c, "", &(copy_opts){.prefix = "transformer.", .omit = "h.1.mlp.c_fc.bias"});
    expect_load_fail(d, BLURB_E_FORMAT, "missing tensor 'transformer.h.1.mlp.c_fc.bias'", "model.safetensors");
    free(d);
    d = tiny_dir("missing_wte", m, &c, "", &(copy_opts){.prefix = "", .omit = "wte.weight"});
    expect_load_fail(d, BLURB_E_FORMAT, "missing tensor 'transformer.wte.weight' (or 'wte.weight')", NULL);
    free(d);
    d = tiny_dir("missing_sharded", m, &c, "", &(copy_opts){.prefix = "", .omit = "ln_f.bias", .sharded = true});
    expect_load_fail(d, BLURB_E_FORMAT, "missing tensor 'ln_f.bias'", "model.safetensors.index.json");
    free(d);

    c2 = c;
    c2.n_inner = 48;
    d = tiny_dir("shape", m, &c2, "", &base);
    expect_load_fail(d, BLURB_E_FORMAT, "tensor 'transformer.h.0.mlp.c_fc.weight' has shape [8, 32]",
                     "config.json expects [8, 48] ([n_embd, n_inner])");
    free(d);
    c2 = c;
    c2.vocab_size = 41;
    d = tiny_dir("shape_vocab", m, &c2, "", &base);
    expect_load_fail(d, BLURB_E_FORMAT, "tensor 'transformer.wte.weight' has shape [40, 8]",
                     "expects [41, 8] ([vocab_size, n_embd])");
    free(d);
    d = tiny_dir("untied_no_head", m, &c, ",\n  \"tie_word_embeddings\": false", &base);
    expect_load_fail(d, BLURB_E_FORMAT, "missing tensor 'lm_head.weight'", "tie_word_embeddings false");
    free(d);
    d = tiny_dir("untied_head", m, &c, ",\n  \"tie_word_embeddings\": false",
                 &(copy_opts){.prefix = "transformer.", .lm_head = true});
    l = load_ok(d);
    CHECK(l && !l->lm_head_tied);
    blurb_model_free(l);
    free(d);
    d = tiny_dir("extra_layer", m, &c, "", &(copy_opts){.prefix = "transformer.", .extra_layer = 1});
    expect_load_fail(d, BLURB_E_FORMAT, "'transformer.h.2.ln_1.weight' is for layer 2", "n_layer 2");
    free(d);

    d = tiny_dir("f64", m, &c, "", &(copy_opts){.prefix = "transformer.", .as_f64 = "h.0.ln_2.bias"});
    expect_load_fail(d, BLURB_E_UNSUPPORTED, "tensor 'transformer.h.0.ln_2.bias' has unsupported dtype F64",
                     "F32, F16 and BF16");
    free(d);

    /* write_config already has "activation_function": "gelu_new"; cJSON would read the first, Python the last. */
    d = tiny_dir("dupkey", m, &c, ",\n  \"activation_function\": \"relu\"", &base);
    expect_load_fail(d, BLURB_E_FORMAT, "config.json: field \"activation_function\" appears 2 times", NULL);
    free(d);

    d = stw_subdir(tmp, "lfs");
    {
        write_config(d, &c, "");
        char *p = stw_path(d, "model.safetensors");
        stw_write_text(p, "version https://git-lfs.github.com/spec/v1\noid sha256:0\nsize 35479280\n");
        free(p);
    }
    expect_load_fail(d, BLURB_E_FORMAT, "model.safetensors: not a safetensors file", "Git LFS pointer");
    free(d);

    struct {
        const char *name, *config;
        int code;
        const char *n1, *n2;
    } bad_cfg[] = {
        {"no_embd", "{\"n_layer\": 2, \"n_head\": 2, \"n_positions\": 16, \"vocab_size\": 40, \"eos_token_id\": 1}",
         BLURB_E_FORMAT, "config.json: missing required field \"n_embd\"", NULL},
        {"no_vocab", "{\"n_layer\": 2, \"n_head\": 2, \"n_embd\": 8, \"n_positions\": 16}", BLURB_E_FORMAT,
         "missing required field \"vocab_size\"", NULL},
        {"no_pos", "{\"n_layer\": 2, \"n_head\": 2, \"n_embd\": 8, \"vocab_size\": 40}", BLURB_E_FORMAT,
         "missing required field \"n_positions\"", NULL},
        {"badjson", "{\"n_layer\": 2,\n \"n_head\": 2\n \"n_embd\": 8}", BLURB_E_FORMAT,
         "config.json: malformed JSON near line 3", NULL},
        {"notobj", "[2, 2, 8]", BLURB_E_FORMAT, "config.json: not a JSON object", NULL},
        {"float_layers", "{\"n_layer\": 2.5, \"n_head\": 2, \"n_embd\": 8, \"n_positions\": 16, \"vocab_size\": 40}",
         BLURB_E_FORMAT, "field \"n_layer\" must be an integer", NULL},
        {"heads", "{\"n_layer\": 2, \"n_head\": 3, \"n_embd\": 8, \"n_positions\": 16, \"vocab_size\": 40,"
                  " \"eos_token_id\": 1}", BLURB_E_FORMAT, "n_embd 8 is not a multiple of n_head 3", NULL},
        /* eos_token_id absent -> 50256, which a 40-token vocabulary does not have. */
        {"eos_default", "{\"n_layer\": 2, \"n_head\": 2, \"n_embd\": 8, \"n_positions\": 16, \"vocab_size\": 40}",
         BLURB_E_FORMAT, "eos_token_id 50256 is not a token id (vocab_size 40", NULL},
        {"bool_type", "{\"n_layer\": 2, \"n_head\": 2, \"n_embd\": 8, \"n_positions\": 16, \"vocab_size\": 40,"
                      " \"eos_token_id\": 1, \"scale_attn_weights\": 1}", BLURB_E_FORMAT,
         "field \"scale_attn_weights\" must be true or false", NULL},
        {"relu", "{\"activation_function\": \"relu\", \"n_layer\": 2, \"n_head\": 2, \"n_embd\": 8,"
                 " \"n_positions\": 16, \"vocab_size\": 40, \"eos_token_id\": 1}", BLURB_E_UNSUPPORTED,
         "config.json: activation_function \"relu\" is not supported", "only gelu_new"},
        {"neo", "{\"model_type\": \"gpt_neo\", \"n_layer\": 2}", BLURB_E_UNSUPPORTED, "model_type \"gpt_neo\"", NULL},
        {"cross", "{\"add_cross_attention\": true, \"n_layer\": 2}", BLURB_E_UNSUPPORTED, "add_cross_attention",
         NULL},
    };
    for (size_t i = 0; i < sizeof bad_cfg / sizeof bad_cfg[0]; i++) {
        d = stw_subdir(tmp, bad_cfg[i].name);
        char *p = stw_path(d, "config.json");
        stw_write_text(p, bad_cfg[i].config);
        free(p);
        write_weights(d, m, &base);
        expect_load_fail(d, bad_cfg[i].code, bad_cfg[i].n1, bad_cfg[i].n2);
        free(d);
    }

    /* No config.json; no weights; no directory. */
    d = stw_subdir(tmp, "noconfig");
    write_weights(d, m, &base);
    expect_load_fail(d, BLURB_E_IO, "config.json: cannot open", NULL);
    free(d);
    d = stw_subdir(tmp, "noweights");
    write_config(d, &c, "");
    expect_load_fail(d, BLURB_E_IO, "neither model.safetensors nor model.safetensors.index.json", NULL);
    free(d);
    d = stw_path(tmp, "does-not-exist");
    expect_load_fail(d, BLURB_E_IO, "cannot open", NULL);
    free(d);
    blurb_model_free(m);
}

static void test_random(void) {
    blurb_config c = tiny_cfg();
    c.n_embd = 64;
    c.n_inner = 256;
    c.vocab_size = 1000;
    c.n_ctx = 128;
    blurb_model *a = NULL, *b = NULL, *x = NULL;
    blurb_err err = {0};
    REQUIRE(blurb_model_random(&c, 42, &a, &err) == 0);
    REQUIRE(blurb_model_random(&c, 42, &b, &err) == 0);
    REQUIRE(blurb_model_random(&c, 43, &x, &err) == 0);
    CHECK(same_weights(a, b, "same seed"));
    CHECK(!same_weights(a, x, NULL));
    CHECK(a->lm_head_tied && a->lm_head.data == a->wte.data && a->wte.dtype == BLURB_DTYPE_F32);
    int64_t E = 64, I = 256, V = 1000, P = 128, L = 2;
    int64_t want = V * E + P * E + 2 * E + L * (4 * E + E * 3 * E + 3 * E + E * E + E + E * I + I + I * E + E);
    CHECK(blurb_model_n_params(a) == want && blurb_model_n_bytes(a) == 4 * want);
    /* HF init: LayerNorm weight 1, biases 0, matrices normal(0, 0.02). */
    const float *lw = a->layers[1].ln_2_w.data, *lb = a->layers[1].ln_2_b.data, *cb = a->layers[0].c_attn_b.data;
    bool ln_ok = true;
    for (int i = 0; i < 64; i++) ln_ok &= lw[i] == 1.0f && lb[i] == 0.0f && cb[i] == 0.0f;
    CHECK(ln_ok);
    const float *w = a->wte.data;
    double s = 0, s2 = 0;
    int64_t n = V * E;
    for (int64_t i = 0; i < n; i++) {
        s += w[i];
        s2 += (double)w[i] * w[i];
    }
    double mean = s / n, sd = sqrt(s2 / n - mean * mean);
    /* 64,000 draws: the standard error of the mean is 0.02/253 = 8e-5, of the sd about 6e-5. */
    CHECKF(fabs(mean) < 5e-4 && fabs(sd - 0.02) < 5e-4, "mean %g sd %g", mean, sd);

    blurb_model *bad = NULL;
    c.n_head = 3;
    CHECK(blurb_model_random(&c, 1, &bad, &err) == BLURB_E_INVALID && bad == NULL);
    CHECKF(strstr(err.msg, "not a multiple of n_head") != NULL, "%s", err.msg);
    c.n_head = 2;
    c.n_inner = 0;
    CHECK(blurb_model_random(&c, 1, &bad, &err) == BLURB_E_INVALID && bad == NULL);
    blurb_model_free(a);
    blurb_model_free(b);
    blurb_model_free(x);
}

static void test_default_dir(void) {
    char buf[4096];
    blurb_err err = {0};
    const char *old = getenv("BLURB_MODEL");
    char *saved = old ? strdup(old) : NULL;
    REQUIRE(setenv("BLURB_MODEL", "/some/where", 1) == 0);
    CHECK(blurb_default_model_dir(buf, sizeof buf, &err) == 0 && strcmp(buf, "/some/where") == 0);
    CHECK(blurb_default_model_dir(buf, 5, &err) == BLURB_E_INVALID);
    REQUIRE(unsetenv("BLURB_MODEL") == 0);
    CHECKF(blurb_default_model_dir(buf, sizeof buf, &err) == 0 && strcmp(buf, default_dir()) == 0, "%s / %s", buf,
           err.msg);
    if (saved) setenv("BLURB_MODEL", saved, 1);
    free(saved);
}

/* Runs cmd (stderr folded into stdout); returns its exit status and output (malloc'ed). */
static int run_cmd(const char *cmd, char **out) {
    FILE *p = popen(cmd, "r");
    REQUIRE(p);
    stw_str b = {0};
    char chunk[4096];
    size_t got;
    stw_addf(&b, "%s", "");
    while ((got = fread(chunk, 1, sizeof chunk, p)) > 0) stw_addf(&b, "%.*s", (int)got, chunk);
    int st = pclose(p);
    *out = b.s;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void test_cli_info(void) {
    char cmd[8192], *out = NULL;
    snprintf(cmd, sizeof cmd, "'%s' info --model '%s' 2>&1", BLURB_CLI, default_dir());
    CHECK(run_cmd(cmd, &out) == 0);
    const char *want[] = {"n_layer                          6\n", "n_head                           4\n",
                          "n_embd                           256\n", "n_ctx                            512\n",
                          "n_inner                          1024\n", "vocab_size                       50257\n",
                          "layer_norm_epsilon               1e-05\n", "eos_token_id                     50256\n",
                          "lm_head                          tied to wte\n",
                          "parameters                       17,735,936 (17.7M)\n",
                          "dtypes                           F16 (76 tensors)\n",
                          "bytes                            35,471,872 (33.8 MiB)\n"};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        CHECKF(strstr(out, want[i]) != NULL, "want '%s' in blurb info output:\n%s", want[i], out);
    free(out);
    snprintf(cmd, sizeof cmd, "'%s' info --model '%s/nowhere' 2>&1", BLURB_CLI, tmp);
    CHECK(run_cmd(cmd, &out) == 1);
    CHECKF(strstr(out, "nowhere/config.json: cannot open") != NULL, "%s", out);
    free(out);
    snprintf(cmd, sizeof cmd, "'%s' info --frobnicate 2>&1", BLURB_CLI);
    CHECK(run_cmd(cmd, &out) == 2);
    CHECKF(strstr(out, "usage: blurb info") != NULL, "%s", out);
    free(out);
}

int main(void) {
    tmp = stw_mkdtemp();
    test_widening();
    test_random();
    test_tiny_variants();
    test_default_dir();
    test_cli_info();
    test_default_model();
    stw_rmtree(tmp);
    free(tmp);
    return check_finish("model_loader");
}
