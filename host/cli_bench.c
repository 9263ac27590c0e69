/* blurb bench: generation throughput of the backend on synthetic prompts, with
 * the roofline figures of include/blurb/roofline.h (bench/README.md explains
 * every figure).
 *
 * One case = one batch size: `batch` sequences of `prompt_len` random prompt
 * tokens, each generating exactly `new_tokens` tokens (EOS masked through
 * min_new_tokens). A run: reset the slots, prefill the prompts (at most
 * --prefill-tokens tokens per forward call, each call followed by the sample of
 * its sequences' first tokens), then new_tokens - 1 decode steps over the whole
 * batch, in blurb_backend_decode calls of up to --decode-steps steps (the
 * backend's choice by default: cuda 8, cpu 1), as `blurb generate` runs them.
 * Times are wall clock (CLOCK_MONOTONIC) taken when the backend calls return:
 * every call ends with the tokens on the host, so a call's time includes that
 * copy and the launch overhead; a step's time is its call's time divided by
 * the steps of the call. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "blurb/backend.h"
#include "blurb/cuda_peaks.h"
#include "blurb/model.h"
#include "blurb/roofline.h"
#include "blurb/sampler.h"
#include "cli.h"

#define MAX_BATCHES 64
#define MODEL_SEED 0x5eedULL

typedef struct bench_opts {
    const char *model;
    int batches[MAX_BATCHES];
    int n_batches;
    int prompt_len, new_tokens;
    blurb_dtype dtype;
    blurb_backend_kind kind;
    int device, n_threads;
    bool batch_invariant;
    blurb_sampling sampling;
    int warmup, runs;
    int prefill_tokens;
    int decode_steps;   /* per blurb_backend_decode call; 0 = the backend's */
    uint64_t seed;
    bool json;
} bench_opts;

/* Named GPT-2 shapes (Radford et al. 2019, table 2; HF hub configs). */
static const struct named_shape {
    const char *name;
    int n_layer, n_head, n_embd;
} shapes[] = {
    {"gpt2", 12, 12, 768},
    {"gpt2-medium", 24, 16, 1024},
    {"gpt2-large", 36, 20, 1280},
    {"gpt2-xl", 48, 25, 1600},
};

static void bench_usage(FILE *f) {
    fprintf(f,
            "usage: blurb bench [options]\n\n"
            "Measures generation throughput: for each batch size, BATCH sequences of random prompts\n"
            "each generate exactly --new-tokens tokens (EOS masked). Prints one table row per case,\n"
            "or one JSON object per line with --json. bench/README.md explains every figure.\n\n"
            "options:\n"
            "  --model NAME|DIR        gpt2 (default), gpt2-medium, gpt2-large, gpt2-xl: random weights of\n"
            "                          that shape with n_ctx = prompt + new tokens; or a model directory;\n"
            "                          or 'default' (the default model)\n"
            "  --batch LIST            comma-separated batch sizes (default 1,64,1024)\n"
            "  --prompt-len N          prompt tokens per sequence (default 32)\n"
            "  --new-tokens N          generated tokens per sequence (default 128)\n"
            "  --dtype bf16|fp16|fp32  CUDA compute dtype (default bf16; the CPU is always fp32)\n"
            "  --backend auto|cpu|cuda (default auto)\n"
            "  --device N              CUDA device (default 0)\n"
            "  --threads N             CPU threads (default: OpenMP's)\n"
            "  --no-batch-invariant    let the CUDA backend pick GEMM algorithms per batch size\n"
            "  --temperature T         (default 1.0)\n"
            "  --top-k K               (default 0: off)\n"
            "  --top-p P               (default 0.95)\n"
            "  --repetition-penalty R  (default 1.0: off)\n"
            "  --warmup N              untimed runs per case before the timed ones (default 1)\n"
            "  --runs N                timed runs per case; figures are medians (default 3)\n"
            "  --prefill-tokens N      most prompt tokens per prefill forward call (default 16384)\n"
            "  --decode-steps N        decode steps per backend call; 0 = the backend's choice\n"
            "                          (cuda 8, cpu 1) (default 0)\n"
            "  --seed S                prompts and sampling streams (default 0)\n"
            "  --json                  JSON lines on stdout (the table's header goes to stderr)\n");
}

static int parse_int(const char *opt, const char *s, long lo, long hi, int *out) {
    char *end = NULL;
    errno = 0;
    long v = s ? strtol(s, &end, 10) : 0;
    if (!s || end == s || *end != '\0' || errno != 0 || v < lo || v > hi) {
        fprintf(stderr, "blurb bench: %s needs an integer in [%ld, %ld], got '%s'\n", opt, lo, hi, s ? s : "");
        return -1;
    }
    *out = (int)v;
    return 0;
}

static int parse_float(const char *opt, const char *s, float *out) {
    char *end = NULL;
    errno = 0;
    double v = s ? strtod(s, &end) : 0.0;
    if (!s || end == s || *end != '\0' || errno != 0 || !isfinite(v)) {
        fprintf(stderr, "blurb bench: %s needs a number, got '%s'\n", opt, s ? s : "");
        return -1;
    }
    *out = (float)v;
    return 0;
}

static int parse_batches(const char *s, bench_opts *o) {
    o->n_batches = 0;
    const char *p = s;
    while (*p) {
        char *end = NULL;
        errno = 0;
        long v = strtol(p, &end, 10);
        if (end == p || errno != 0 || v < 1 || v > (1L << 20) || (*end != ',' && *end != '\0')) {
            fprintf(stderr, "blurb bench: --batch needs a comma-separated list of sizes in [1, %ld], got '%s'\n",
                    1L << 20, s);
            return -1;
        }
        if (o->n_batches == MAX_BATCHES) {
            fprintf(stderr, "blurb bench: --batch lists at most %d sizes\n", MAX_BATCHES);
            return -1;
        }
        o->batches[o->n_batches++] = (int)v;
        p = *end == ',' ? end + 1 : end;
        if (*end == ',' && *p == '\0') {
            fprintf(stderr, "blurb bench: --batch '%s' ends with a comma\n", s);
            return -1;
        }
    }
    if (o->n_batches == 0) {
        fprintf(stderr, "blurb bench: --batch needs at least one size\n");
        return -1;
    }
    return 0;
}

static int parse_dtype(const char *s, blurb_dtype *out) {
    if (s && (strcmp(s, "bf16") == 0 || strcmp(s, "BF16") == 0)) *out = BLURB_DTYPE_BF16;
    else if (s && (strcmp(s, "f16") == 0 || strcmp(s, "fp16") == 0 || strcmp(s, "F16") == 0)) *out = BLURB_DTYPE_F16;
    else if (s && (strcmp(s, "f32") == 0 || strcmp(s, "fp32") == 0 || strcmp(s, "F32") == 0)) *out = BLURB_DTYPE_F32;
    else {
        fprintf(stderr, "blurb bench: --dtype must be bf16, fp16 or fp32, got '%s'\n", s ? s : "");
        return -1;
    }
    return 0;
}

static const char *dtype_lower(blurb_dtype d) {
    /* spelled as `blurb generate --dtype` spells them */
    return d == BLURB_DTYPE_BF16 ? "bf16" : d == BLURB_DTYPE_F16 ? "fp16" : "fp32";
}

/* Returns 0 to run, 1 after --help, 2 on bad usage. */
static int parse_args(int argc, char **argv, bench_opts *o) {
    memset(o, 0, sizeof *o);
    o->model = "gpt2";
    o->batches[0] = 1;
    o->batches[1] = 64;
    o->batches[2] = 1024;
    o->n_batches = 3;
    o->prompt_len = 32;
    o->new_tokens = 128;
    o->dtype = BLURB_DTYPE_BF16;
    o->kind = BLURB_BACKEND_AUTO;
    o->batch_invariant = true;
    o->sampling = blurb_sampling_default();
    o->sampling.temperature = 1.0f;
    o->sampling.top_k = 0;
    o->sampling.top_p = 0.95f;
    o->sampling.repetition_penalty = 1.0f;
    o->warmup = 1;
    o->runs = 3;
    o->prefill_tokens = 16384;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        int rc = 0;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            bench_usage(stdout);
            return 1;
        } else if (strcmp(a, "--json") == 0) {
            o->json = true;
            continue;
        } else if (strcmp(a, "--no-batch-invariant") == 0) {
            o->batch_invariant = false;
            continue;
        }
        if (strncmp(a, "--", 2) != 0) {
            fprintf(stderr, "blurb bench: unexpected argument '%s'\n\n", a);
            bench_usage(stderr);
            return 2;
        }
        if (!v) {
            fprintf(stderr, "blurb bench: %s needs a value\n", a);
            return 2;
        }
        i++;
        if (strcmp(a, "--model") == 0) o->model = v;
        else if (strcmp(a, "--batch") == 0) rc = parse_batches(v, o);
        else if (strcmp(a, "--prompt-len") == 0) rc = parse_int(a, v, 1, 1 << 20, &o->prompt_len);
        else if (strcmp(a, "--new-tokens") == 0) rc = parse_int(a, v, 1, 1 << 20, &o->new_tokens);
        else if (strcmp(a, "--dtype") == 0) rc = parse_dtype(v, &o->dtype);
        else if (strcmp(a, "--backend") == 0) {
            blurb_err err = {0};
            if (blurb_backend_kind_parse(v, &o->kind, &err) != 0) {
                fprintf(stderr, "blurb bench: --backend: %s\n", err.msg);
                rc = -1;
            }
        } else if (strcmp(a, "--device") == 0) rc = parse_int(a, v, 0, 1024, &o->device);
        else if (strcmp(a, "--threads") == 0) rc = parse_int(a, v, 0, 4096, &o->n_threads);
        else if (strcmp(a, "--temperature") == 0) rc = parse_float(a, v, &o->sampling.temperature);
        else if (strcmp(a, "--top-k") == 0) rc = parse_int(a, v, 0, INT_MAX, &o->sampling.top_k);
        else if (strcmp(a, "--top-p") == 0) rc = parse_float(a, v, &o->sampling.top_p);
        else if (strcmp(a, "--repetition-penalty") == 0) rc = parse_float(a, v, &o->sampling.repetition_penalty);
        else if (strcmp(a, "--warmup") == 0) rc = parse_int(a, v, 0, 1000, &o->warmup);
        else if (strcmp(a, "--runs") == 0) rc = parse_int(a, v, 1, 1000, &o->runs);
        else if (strcmp(a, "--prefill-tokens") == 0) rc = parse_int(a, v, 1, INT_MAX, &o->prefill_tokens);
        else if (strcmp(a, "--decode-steps") == 0) rc = parse_int(a, v, 0, 1024, &o->decode_steps);
        else if (strcmp(a, "--seed") == 0) {
            char *end = NULL;
            errno = 0;
            unsigned long long s = strtoull(v, &end, 10);
            if (end == v || *end != '\0' || errno != 0 || v[0] == '-') {
                fprintf(stderr, "blurb bench: --seed needs a non-negative integer, got '%s'\n", v);
                rc = -1;
            }
            o->seed = s;
        } else {
            fprintf(stderr, "blurb bench: unknown option '%s'\n\n", a);
            bench_usage(stderr);
            return 2;
        }
        if (rc < 0) return 2;
    }
    blurb_err err = {0};
    if (blurb_sampling_check(&o->sampling, &err) != 0) {
        fprintf(stderr, "blurb bench: %s\n", err.msg);
        return 2;
    }
    return 0;
}

static double now_s(void) {
    struct timespec ts;
    /* CLOCK_MONOTONIC cannot fail on Linux with a valid pointer; a 0 reading
     * would only show up as absurd figures, never as a crash. */
    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0) return 0.0;
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y ? 1 : 0;
}

/* Median of v[0..n) (sorts v). n >= 1. */
static double median(double *v, size_t n) {
    qsort(v, n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* The blurb commit: $BLURB_COMMIT, else a BLURB_COMMIT file in the current
 * directory, else `git describe --always --dirty` there; "" when unknown. */
static void find_commit(char *buf, size_t size) {
    buf[0] = '\0';
    const char *env = getenv("BLURB_COMMIT");
    if (env && env[0]) {
        snprintf(buf, size, "%s", env);
        return;
    }
    FILE *f = fopen("BLURB_COMMIT", "r");
    if (!f) f = popen("git describe --always --dirty --abbrev=12 2>/dev/null", "r");
    else {
        if (!fgets(buf, (int)size, f)) buf[0] = '\0';
        fclose(f);
        f = NULL;
    }
    if (f) {
        if (!fgets(buf, (int)size, f)) buf[0] = '\0';
        /* The exit status only says whether git knew the tree; an empty read says the same. */
        (void)pclose(f);
    }
    buf[strcspn(buf, "\r\n")] = '\0';
}

/* Loads or makes the model. n_ctx of a named shape: the bench's need, prompt + new tokens. */
static int make_model(const bench_opts *o, blurb_model **m, const char **label, blurb_err *err) {
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        if (strcmp(o->model, shapes[i].name) != 0) continue;
        blurb_config c;
        memset(&c, 0, sizeof c);
        c.n_layer = shapes[i].n_layer;
        c.n_head = shapes[i].n_head;
        c.n_embd = shapes[i].n_embd;
        c.n_inner = 4 * c.n_embd;
        c.n_ctx = o->prompt_len + o->new_tokens;
        c.vocab_size = 50257;
        c.layer_norm_epsilon = 1e-5f;
        c.eos_token_id = 50256;
        c.scale_attn_weights = true;
        *label = shapes[i].name;
        return blurb_model_random(&c, MODEL_SEED, m, err);
    }
    const char *dir = o->model;
    static char def[4096];
    if (strcmp(dir, "default") == 0) {
        int rc = blurb_default_model_dir(def, sizeof def, err);
        if (rc < 0) return rc;
        dir = def;
    }
    *label = dir;
    return blurb_model_load(dir, m, err);
}

/* What one case measured (figures of the median run). */
typedef struct case_result {
    double prefill_s, total_s, step_ms;
    int64_t eos_drawn;
    int64_t peak_mem;   /* bytes; -1 unknown */
} case_result;

typedef struct case_state {
    const bench_opts *o;
    blurb_backend *be;
    const blurb_config *cfg;
    int batch;
    int32_t *prompts;   /* [batch][prompt_len] */
    int32_t *tok;       /* [batch] last drawn */
    int32_t *dec;       /* [decode_steps][batch] draws of one decode call */
    int decode_steps;   /* steps per decode call */
    blurb_chunk *chunks;
    blurb_sample_req *reqs;
    uint64_t *keys;
    blurb_sampling sampling;
    double *steps;      /* decode step seconds of the timed runs */
    size_t n_steps;
} case_state;

static int sample_rows(case_state *st, int first, int n, int n_generated, blurb_err *err) {
    for (int i = 0; i < n; i++) {
        blurb_sample_req *r = &st->reqs[i];
        r->row = i;
        r->slot = first + i;
        r->params = &st->sampling;
        r->key = st->keys[first + i];
        r->n_generated = n_generated;
    }
    return blurb_backend_sample(st->be, st->reqs, n, st->tok + first, NULL, err);
}

/* One run; timed runs append their decode step times to st->steps. */
static int run_once(case_state *st, bool timed, double *prefill_s, double *total_s, int64_t *eos,
                    blurb_err *err) {
    const bench_opts *o = st->o;
    const int B = st->batch, P = o->prompt_len;
    int rc;
    for (int s = 0; s < B; s++)
        if ((rc = blurb_backend_reset(st->be, s, err)) < 0) return rc;
    int per_call = o->prefill_tokens / P;
    if (per_call < 1) per_call = 1;

    double t0 = now_s();
    for (int first = 0; first < B; first += per_call) {
        int n = B - first < per_call ? B - first : per_call;
        for (int i = 0; i < n; i++)
            st->chunks[i] = (blurb_chunk){first + i, st->prompts + (size_t)(first + i) * (size_t)P, P};
        if ((rc = blurb_backend_forward(st->be, st->chunks, n, false, err)) < 0) return rc;
        if ((rc = sample_rows(st, first, n, 0, err)) < 0) return rc;
    }
    double t1 = now_s();
    for (int g = 1; g < o->new_tokens;) {
        const int k = o->new_tokens - g < st->decode_steps ? o->new_tokens - g : st->decode_steps;
        for (int s = 0; s < B; s++) {
            if (st->tok[s] == st->cfg->eos_token_id) (*eos)++;
            st->reqs[s] = (blurb_sample_req){s, s, &st->sampling, st->keys[s], g};
        }
        double ts = now_s();
        if ((rc = blurb_backend_decode(st->be, st->tok, st->reqs, B, k, st->dec, NULL, err)) < 0) return rc;
        const double dt = now_s() - ts;
        for (int t = 0; t + 1 < k; t++)
            for (int s = 0; s < B; s++)
                if (st->dec[(size_t)t * (size_t)B + (size_t)s] == st->cfg->eos_token_id) (*eos)++;
        memcpy(st->tok, st->dec + (size_t)(k - 1) * (size_t)B, (size_t)B * sizeof *st->tok);
        for (int t = 0; timed && t < k; t++) st->steps[st->n_steps++] = dt / k;
        g += k;
    }
    double t2 = now_s();
    for (int s = 0; s < B; s++)
        if (st->tok[s] == st->cfg->eos_token_id) (*eos)++;
    *prefill_s = t1 - t0;
    *total_s = t2 - t0;
    return 0;
}

/* The analytic work of one run, and its roofline time call by call. */
static int case_work(const bench_opts *o, const blurb_config *cfg, int batch, int elem_bytes, double bw,
                     double peak, blurb_work *total, double *roof_s, double *roof_decode_s, blurb_err *err) {
    memset(total, 0, sizeof *total);
    *roof_s = *roof_decode_s = 0.0;
    int per_call = o->prefill_tokens / o->prompt_len;
    if (per_call < 1) per_call = 1;
    int rc;
    for (int first = 0; first < batch; first += per_call) {
        int n = batch - first < per_call ? batch - first : per_call;
        blurb_work w;
        memset(&w, 0, sizeof w);
        if ((rc = blurb_work_forward(cfg, elem_bytes, n, 0, o->prompt_len, false, &w, err)) < 0) return rc;
        if ((rc = blurb_work_sample(cfg, n, &w, err)) < 0) return rc;
        blurb_work_add(total, &w);
        if (bw > 0.0) *roof_s += blurb_roofline_seconds(&w, bw, peak);
    }
    for (int g = 1; g < o->new_tokens; g++) {
        blurb_work w;
        memset(&w, 0, sizeof w);
        if ((rc = blurb_work_forward(cfg, elem_bytes, batch, o->prompt_len + g - 1, 1, false, &w, err)) < 0)
            return rc;
        if ((rc = blurb_work_sample(cfg, batch, &w, err)) < 0) return rc;
        blurb_work_add(total, &w);
        if (bw > 0.0) {
            double r = blurb_roofline_seconds(&w, bw, peak);
            *roof_s += r;
            *roof_decode_s += r;
        }
    }
    return 0;
}

static uint64_t mix64(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

typedef struct run_env {
    const char *model_label;
    const blurb_model *model;
    const char *device_name;
    int driver_version;
    double bw, peak;      /* 0 when not measured */
    bool cuda;
    char commit[128];
    char date[32];
} run_env;

/* A float option as the user wrote it (0.95, not 0.949999988079071) for JSON. */
static double float_opt(float v) {
    char buf[32];
    snprintf(buf, sizeof buf, "%.7g", (double)v);
    return strtod(buf, NULL);
}

static void fmt_or_dash(char *buf, size_t size, bool ok, const char *fmt, double v) {
    if (ok) snprintf(buf, size, fmt, v);
    else snprintf(buf, size, "-");
}

static int run_case(const bench_opts *o, const run_env *env, int batch, bool *header_done, blurb_err *err) {
    int label_w = (int)strlen(env->model_label) > 12 ? (int)strlen(env->model_label) : 12;
    const blurb_config *cfg = &env->model->cfg;
    case_state st;
    memset(&st, 0, sizeof st);
    st.o = o;
    st.cfg = cfg;
    st.batch = batch;
    int rc = 0;
    case_result res = {0, 0, 0, 0, -1};
    double *prefills = NULL, *totals = NULL;

    blurb_backend_opts bo = blurb_backend_opts_default();
    bo.kind = o->kind;
    bo.max_slots = batch;
    bo.dtype = o->dtype;
    bo.device = o->device;
    bo.n_threads = o->n_threads;
    bo.batch_invariant = o->batch_invariant;
    if ((rc = blurb_backend_create(env->model, &bo, &st.be, err)) < 0) return rc;
    if (st.be->n_slots < batch) {
        rc = blurb_seterr(err, BLURB_E_NOMEM, "the %s backend gave %d slots for batch %d", st.be->ops->name,
                          st.be->n_slots, batch);
        goto done;
    }
    bool on_cuda = strcmp(st.be->ops->name, "cuda") == 0;
    int64_t mem = 0;
    if (on_cuda && blurb_cuda_mem_used(o->device, &mem, err) == 0) res.peak_mem = mem;

    size_t B = (size_t)batch, P = (size_t)o->prompt_len;
    size_t steps_max = (size_t)o->runs * (size_t)(o->new_tokens - 1);
    st.prompts = malloc(B * P * sizeof *st.prompts);
    st.tok = malloc(B * sizeof *st.tok);
    st.decode_steps = o->decode_steps > 0 ? o->decode_steps : st.be->decode_steps > 0 ? st.be->decode_steps : 1;
    st.dec = malloc((size_t)st.decode_steps * B * sizeof *st.dec);
    st.chunks = malloc(B * sizeof *st.chunks);
    st.reqs = malloc(B * sizeof *st.reqs);
    st.keys = malloc(B * sizeof *st.keys);
    st.steps = malloc((steps_max ? steps_max : 1) * sizeof *st.steps);
    prefills = malloc((size_t)o->runs * sizeof *prefills);
    totals = malloc((size_t)o->runs * sizeof *totals);
    if (!st.prompts || !st.tok || !st.dec || !st.chunks || !st.reqs || !st.keys || !st.steps || !prefills || !totals) {
        rc = blurb_seterr(err, BLURB_E_NOMEM, "bench: out of memory for batch %d", batch);
        goto done;
    }
    /* Prompts: uniform random ids, EOS excluded (a prompt never holds one). */
    uint64_t rs = o->seed ^ 0x70726f6d7074ull;
    for (size_t i = 0; i < B * P; i++) {
        int32_t t = (int32_t)(mix64(&rs) % (uint64_t)cfg->vocab_size);
        if (t == cfg->eos_token_id) t = (t + 1) % cfg->vocab_size;
        st.prompts[i] = t;
    }
    for (size_t s = 0; s < B; s++) {
        char id[24];
        int n = snprintf(id, sizeof id, "%zu", s);
        st.keys[s] = blurb_stream_key(o->seed, id, (size_t)n, 0);
    }
    st.sampling = o->sampling;
    st.sampling.min_new_tokens = o->new_tokens;
    st.sampling.eos_token_id = cfg->eos_token_id;

    for (int r = 0; r < o->warmup; r++) {
        double pf, tt;
        if ((rc = run_once(&st, false, &pf, &tt, &res.eos_drawn, err)) < 0) goto done;
    }
    for (int r = 0; r < o->runs; r++) {
        if ((rc = run_once(&st, true, &prefills[r], &totals[r], &res.eos_drawn, err)) < 0) goto done;
        if (on_cuda && blurb_cuda_mem_used(o->device, &mem, err) == 0 && mem > res.peak_mem) res.peak_mem = mem;
    }
    if (res.eos_drawn) {
        rc = blurb_seterr(err, BLURB_E_DEVICE,
                          "the %s backend drew EOS %lld times although min_new_tokens masks it",
                          st.be->ops->name, (long long)res.eos_drawn);
        goto done;
    }
    res.prefill_s = median(prefills, (size_t)o->runs);
    res.total_s = median(totals, (size_t)o->runs);
    res.step_ms = st.n_steps ? 1e3 * median(st.steps, st.n_steps) : NAN;

    blurb_dtype eff_dtype = on_cuda ? o->dtype : BLURB_DTYPE_F32;
    int elem = (int)blurb_dtype_size(eff_dtype);
    /* The measured peak is a bf16/f16 tensor-core rate: no roofline for f32. */
    bool roof = on_cuda && env->bw > 0.0 && eff_dtype != BLURB_DTYPE_F32;
    blurb_work work;
    double roof_s = 0.0, roof_dec_s = 0.0;
    if ((rc = case_work(o, cfg, batch, elem, roof ? env->bw : 0.0, env->peak, &work, &roof_s, &roof_dec_s, err)) <
        0)
        goto done;

    double gen = (double)batch * o->new_tokens, prompt = (double)batch * o->prompt_len;
    double gen_tok_s = gen / res.total_s, prompt_tok_s = prompt / res.prefill_s;
    double bytes = blurb_work_total_bytes(&work), flops = blurb_work_total_flops(&work);
    double decode_s = res.total_s - res.prefill_s;
    double roof_pct = roof ? 100.0 * roof_s / res.total_s : NAN;
    double roof_dec_pct = roof && o->new_tokens > 1 && decode_s > 0.0 ? 100.0 * roof_dec_s / decode_s : NAN;

    if (o->json) {
        cJSON *j = cJSON_CreateObject();
        if (!j) {
            rc = blurb_seterr(err, BLURB_E_NOMEM, "bench: out of memory for JSON");
            goto done;
        }
#define NUM_OR_NULL(key, ok, v) ((ok) ? cJSON_AddNumberToObject(j, key, v) : cJSON_AddNullToObject(j, key))
        cJSON_AddStringToObject(j, "system", "blurb");
        cJSON_AddStringToObject(j, "backend", st.be->ops->name);
        cJSON_AddStringToObject(j, "device", env->device_name);
        NUM_OR_NULL("cuda_driver", on_cuda, env->driver_version);
        cJSON_AddStringToObject(j, "model", env->model_label);
        cJSON_AddNumberToObject(j, "n_layer", cfg->n_layer);
        cJSON_AddNumberToObject(j, "n_head", cfg->n_head);
        cJSON_AddNumberToObject(j, "n_embd", cfg->n_embd);
        cJSON_AddNumberToObject(j, "n_ctx", cfg->n_ctx);
        cJSON_AddNumberToObject(j, "n_params", (double)blurb_model_n_params(env->model));
        cJSON_AddStringToObject(j, "dtype", dtype_lower(eff_dtype));
        cJSON_AddBoolToObject(j, "batch_invariant", on_cuda ? o->batch_invariant : true);
        cJSON_AddNumberToObject(j, "batch", batch);
        cJSON_AddNumberToObject(j, "prompt_len", o->prompt_len);
        cJSON_AddNumberToObject(j, "new_tokens", o->new_tokens);
        cJSON_AddNumberToObject(j, "temperature", float_opt(o->sampling.temperature));
        cJSON_AddNumberToObject(j, "top_k", o->sampling.top_k);
        cJSON_AddNumberToObject(j, "top_p", float_opt(o->sampling.top_p));
        cJSON_AddNumberToObject(j, "repetition_penalty", float_opt(o->sampling.repetition_penalty));
        cJSON_AddNumberToObject(j, "warmup", o->warmup);
        cJSON_AddNumberToObject(j, "runs", o->runs);
        cJSON_AddNumberToObject(j, "prefill_tokens", o->prefill_tokens);
        cJSON_AddNumberToObject(j, "decode_steps", st.decode_steps);
        cJSON_AddNumberToObject(j, "generated_tokens", gen);
        cJSON_AddNumberToObject(j, "gen_tok_s", gen_tok_s);
        cJSON_AddNumberToObject(j, "prompt_tok_s", prompt_tok_s);
        NUM_OR_NULL("step_ms_median", st.n_steps > 0, res.step_ms);
        cJSON_AddNumberToObject(j, "prefill_s", res.prefill_s);
        cJSON_AddNumberToObject(j, "total_s", res.total_s);
        cJSON_AddNumberToObject(j, "bytes", bytes);
        cJSON_AddNumberToObject(j, "flops", flops);
        cJSON_AddNumberToObject(j, "bytes_per_s", bytes / res.total_s);
        cJSON_AddNumberToObject(j, "flop_per_s", flops / res.total_s);
        NUM_OR_NULL("roofline_s", roof, roof_s);
        NUM_OR_NULL("roofline_pct", roof, roof_pct);
        NUM_OR_NULL("decode_roofline_s", roof, roof_dec_s);
        NUM_OR_NULL("decode_roofline_pct", !isnan(roof_dec_pct), roof_dec_pct);
        NUM_OR_NULL("peak_bw_bytes_s", env->bw > 0.0, env->bw);
        NUM_OR_NULL("peak_flop_s", env->peak > 0.0, env->peak);
        NUM_OR_NULL("peak_mem_bytes", res.peak_mem >= 0, (double)res.peak_mem);
        cJSON_AddStringToObject(j, "commit", env->commit);
        cJSON_AddStringToObject(j, "date", env->date);
#undef NUM_OR_NULL
        char *line = cJSON_PrintUnformatted(j);
        cJSON_Delete(j);
        if (!line) {
            rc = blurb_seterr(err, BLURB_E_NOMEM, "bench: out of memory for JSON");
            goto done;
        }
        printf("%s\n", line);
        cJSON_free(line);
    } else {
        if (!*header_done) {
            printf("%-*s %-4s %-5s %6s %12s %13s %9s %9s %9s %9s %9s %9s\n", label_w, "model", "be", "dtype", "batch",
                   "gen tok/s", "prompt tok/s", "step ms", "GB/s", "TFLOP/s", "roofline%", "decode%", "mem GiB");
            *header_done = true;
        }
        char c_step[32], c_roof[32], c_dec[32], c_mem[32];
        fmt_or_dash(c_step, sizeof c_step, st.n_steps > 0, "%.3f", res.step_ms);
        fmt_or_dash(c_roof, sizeof c_roof, roof, "%.1f", roof_pct);
        fmt_or_dash(c_dec, sizeof c_dec, !isnan(roof_dec_pct), "%.1f", roof_dec_pct);
        fmt_or_dash(c_mem, sizeof c_mem, res.peak_mem >= 0, "%.2f", (double)res.peak_mem / (1024.0 * 1024 * 1024));
        printf("%-*s %-4s %-5s %6d %12.0f %13.0f %9s %9.1f %9.3f %9s %9s %9s\n", label_w, env->model_label, st.be->ops->name,
               dtype_lower(eff_dtype), batch, gen_tok_s, prompt_tok_s, c_step, bytes / res.total_s / 1e9,
               flops / res.total_s / 1e12, c_roof, c_dec, c_mem);
    }
    if (fflush(stdout) != 0 || ferror(stdout)) rc = blurb_seterr(err, BLURB_E_IO, "cannot write the output");

done:
    blurb_backend_free(st.be);
    free(st.prompts);
    free(st.tok);
    free(st.dec);
    free(st.chunks);
    free(st.reqs);
    free(st.keys);
    free(st.steps);
    free(prefills);
    free(totals);
    return rc;
}

int cli_bench(int argc, char **argv) {
    bench_opts o;
    int prc = parse_args(argc, argv, &o);
    if (prc == 1) return 0;
    if (prc != 0) return 2;
    FILE *info = o.json ? stderr : stdout;

    run_env env;
    memset(&env, 0, sizeof env);
    blurb_err err = {0};
    find_commit(env.commit, sizeof env.commit);
    time_t now = time(NULL);
    struct tm tmv;
    if (now == (time_t)-1 || !gmtime_r(&now, &tmv) || strftime(env.date, sizeof env.date, "%Y-%m-%dT%H:%M:%SZ", &tmv) == 0)
        env.date[0] = '\0';

    /* The device figures come first, before any model memory is on the device. */
    env.cuda = o.kind == BLURB_BACKEND_CUDA || (o.kind == BLURB_BACKEND_AUTO && blurb_cuda_available());
    blurb_cuda_device_info dev;
    memset(&dev, 0, sizeof dev);
    env.device_name = "cpu";
    if (env.cuda) {
        if (blurb_cuda_device_query(o.device, &dev, &err) != 0) {
            fprintf(stderr, "blurb bench: %s\n", err.msg);
            return 1;
        }
        env.device_name = dev.name;
        env.driver_version = dev.driver_version;
        if (o.dtype != BLURB_DTYPE_F32) {
            if (blurb_cuda_measure_peaks(o.device, &env.bw, &env.peak, &err) != 0) {
                fprintf(stderr, "blurb bench: measuring the device peaks: %s\n", err.msg);
                return 1;
            }
        }
    }

    blurb_model *model = NULL;
    if (make_model(&o, &model, &env.model_label, &err) != 0) {
        fprintf(stderr, "blurb bench: %s\n", err.msg);
        return 1;
    }
    env.model = model;
    if (o.prompt_len + o.new_tokens > model->cfg.n_ctx) {
        fprintf(stderr, "blurb bench: --prompt-len %d + --new-tokens %d exceed the model's n_ctx %d\n", o.prompt_len,
                o.new_tokens, model->cfg.n_ctx);
        blurb_model_free(model);
        return 2;
    }

    fprintf(info, "# blurb bench: %s (%.1fM parameters), prompt %d + %d new tokens, T %g, top-k %d, top-p %g, "
                  "repetition penalty %g, %d warm-up + %d timed runs, commit %s\n",
            env.model_label, (double)blurb_model_n_params(model) / 1e6, o.prompt_len, o.new_tokens,
            (double)o.sampling.temperature, o.sampling.top_k, (double)o.sampling.top_p,
            (double)o.sampling.repetition_penalty, o.warmup, o.runs, env.commit[0] ? env.commit : "unknown");
    if (env.cuda)
        fprintf(info, "# device %s (sm_%d%d, CUDA driver %d.%d, %.1f GiB); measured %.0f GB/s copy, %.1f TFLOP/s bf16 GEMM\n",
                dev.name, dev.cc_major, dev.cc_minor, dev.driver_version / 1000, dev.driver_version % 1000 / 10,
                (double)dev.total_mem / (1024.0 * 1024 * 1024), env.bw / 1e9, env.peak / 1e12);
    else
        fprintf(info, "# device cpu: no roofline (no measured peaks)\n");
    fflush(info);

    int rc = 0;
    bool header_done = false;
    for (int i = 0; i < o.n_batches && rc == 0; i++) {
        if (run_case(&o, &env, o.batches[i], &header_done, &err) != 0) {
            fprintf(stderr, "blurb bench: %s, batch %d: %s\n", env.model_label, o.batches[i], err.msg);
            rc = 1;
        }
    }
    blurb_model_free(model);
    return rc;
}
