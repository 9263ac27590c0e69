/* Throughput of the CUDA backend on random-weight models of GPT-2 shapes.
 *
 * Each case prefills `batch` prompts of 64 random tokens (one forward, split
 * into sub-batches by the backend), then runs decode steps, sampled (T 0.8,
 * top-p 0.9: on a random model the distribution is nearly flat, the sampler's
 * slowest case) or greedy: in blurb_backend_decode calls of the backend's
 * decode_steps steps (8; the draws stay on the GPU within a call), as `blurb
 * generate` runs them, and, sampled, also one forward + one sample per step
 * (a host round trip per step: the "1-step" column). Times are wall clock
 * around calls that end in a synchronisation (the tokens come back), after
 * two warm-up steps per bucket (eager, then CUDA-graph capture).
 *
 *   bench_cuda_decode                 the gpu-check table: gpt2 at batch 1, 64,
 *                                     1024; gpt2-xl at 512 (n_ctx 512 so that
 *                                     512 KV slots fit); gpt2 at 64 without
 *                                     batch invariance (its cost)
 *   bench_cuda_decode --smoke         a small model through every kernel path
 *                                     (for compute-sanitizer), no timing
 *   bench_cuda_decode --case NAME BATCH [STEPS] [--no-invariant] [--dtype bf16|fp16|fp32]
 *
 * Each measured case prints one line
 *   RESULT|case|batch|dtype|invariant|prefill tok/s|decode tok/s (sampled)|ms/step|decode tok/s (greedy)|
 *   decode tok/s (sampled, 1 step per call)
 * which scripts/gpu-check.sh turns into its table. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "blurb/backend.h"
#include "blurb/model.h"
#include "blurb/sampler.h"

#ifdef BLURB_HAVE_CUDA
int blurb_cuda_describe(const blurb_backend *be, char *buf, size_t size);
#endif

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int fail(const char *what, const blurb_err *err) {
    fprintf(stderr, "bench_cuda_decode: %s: %s\n", what, err->msg);
    return 1;
}

static blurb_config shape(const char *name, bool *ok) {
    blurb_config c;
    memset(&c, 0, sizeof c);
    c.vocab_size = 50257;
    c.layer_norm_epsilon = 1e-5f;
    c.eos_token_id = 50256;
    c.scale_attn_weights = true;
    *ok = true;
    if (strcmp(name, "gpt2") == 0) {
        c.n_layer = 12; c.n_head = 12; c.n_embd = 768; c.n_ctx = 1024;
    } else if (strcmp(name, "gpt2-medium") == 0) {
        c.n_layer = 24; c.n_head = 16; c.n_embd = 1024; c.n_ctx = 1024;
    } else if (strcmp(name, "gpt2-xl") == 0) {
        c.n_layer = 48; c.n_head = 25; c.n_embd = 1600; c.n_ctx = 512;
    } else if (strcmp(name, "smoke") == 0) {
        c.n_layer = 2; c.n_head = 2; c.n_embd = 128; c.n_ctx = 600; c.vocab_size = 5000; c.eos_token_id = 4999;
    } else {
        *ok = false;
    }
    c.n_inner = 4 * c.n_embd;
    return c;
}

typedef struct run_opts {
    int batch, prompt, steps;
    blurb_dtype dtype;
    bool invariant;
} run_opts;

/* Prefill, then `steps` decode steps; returns 0 and fills the rates. */
static int run_case(const blurb_model *m, const char *name, const run_opts *ro, bool print) {
    const int V = m->cfg.vocab_size;
    blurb_backend_opts o = blurb_backend_opts_default();
    o.kind = BLURB_BACKEND_CUDA;
    o.dtype = ro->dtype;
    o.max_slots = ro->batch;
    o.batch_invariant = ro->invariant;
    blurb_backend *be = NULL;
    blurb_err err;
    blurb_err_clear(&err);
    if (blurb_backend_create(m, &o, &be, &err) < 0) return fail("create", &err);
    if (be->n_slots < ro->batch) {
        fprintf(stderr, "bench_cuda_decode: only %d slots fit, %d wanted\n", be->n_slots, ro->batch);
        blurb_backend_free(be);
        return 1;
    }
#ifdef BLURB_HAVE_CUDA
    if (print) {
        char desc[1024];
        if (blurb_cuda_describe(be, desc, sizeof desc) == 0) printf("%s batch %d: %s", name, ro->batch, desc);
    }
#endif
    const int B = ro->batch, P = ro->prompt;
    int32_t *prompt = malloc((size_t)B * (size_t)P * sizeof *prompt);
    int32_t *tok = malloc((size_t)B * sizeof *tok);
    const int K = be->decode_steps > 0 ? be->decode_steps : 1;
    int32_t *dec = malloc((size_t)K * (size_t)B * sizeof *dec);
    blurb_chunk *ch = malloc((size_t)B * sizeof *ch);
    blurb_sample_req *req = malloc((size_t)B * sizeof *req);
    if (!prompt || !tok || !dec || !ch || !req) {
        fprintf(stderr, "bench_cuda_decode: out of memory\n");
        return 1;
    }
    uint32_t s = 1234u;
    for (int i = 0; i < B * P; i++) {
        s = s * 1664525u + 1013904223u;
        prompt[i] = (int32_t)((s >> 8) % (uint32_t)(V - 1));
    }
    blurb_sampling samp = blurb_sampling_default(), greedy = blurb_sampling_default();
    samp.eos_token_id = -1; /* keep every sequence running */
    greedy.eos_token_id = -1;
    greedy.temperature = 0.0f;
    double rate_prefill = 0, rate_sampled = 0, rate_greedy = 0, rate_one = 0, ms_step = 0;
    for (int pass = 0; pass < 3; pass++) { /* 0: sampled, 1: greedy, 2: sampled one step per call */
        const blurb_sampling *sp = pass == 1 ? &greedy : &samp;
        const int k_call = pass == 2 ? 1 : K;
        for (int b = 0; b < B; b++) {
            if (blurb_backend_reset(be, b, &err) < 0) return fail("reset", &err);
            ch[b] = (blurb_chunk){b, prompt + (size_t)b * (size_t)P, P};
        }
        double t0 = now();
        if (blurb_backend_forward(be, ch, B, false, &err) < 0) return fail("prefill", &err);
        for (int b = 0; b < B; b++) {
            char id[16];
            const int n = snprintf(id, sizeof id, "%d", b);
            req[b] = (blurb_sample_req){b, b, sp, blurb_stream_key(1, id, (size_t)n, 0), 0};
        }
        if (blurb_backend_sample(be, req, B, tok, NULL, &err) < 0) return fail("sample", &err);
        const double t_prefill = now() - t0;
        if (pass == 0) rate_prefill = (double)B * P / t_prefill;
        /* two warm-up steps (eager, then graph capture), then the timed steps */
        for (int st = 0; st < 2; st++) {
            for (int b = 0; b < B; b++) {
                ch[b] = (blurb_chunk){b, &tok[b], 1};
                req[b].n_generated = st + 1;
            }
            if (blurb_backend_forward(be, ch, B, false, &err) < 0) return fail("decode", &err);
            if (blurb_backend_sample(be, req, B, tok, NULL, &err) < 0) return fail("sample", &err);
        }
        const double t1 = now();
        for (int st = 2; st < ro->steps + 2;) {
            const int k = ro->steps + 2 - st < k_call ? ro->steps + 2 - st : k_call;
            for (int b = 0; b < B; b++) req[b].n_generated = st + 1;
            if (k == 1) {
                for (int b = 0; b < B; b++) ch[b] = (blurb_chunk){b, &tok[b], 1};
                if (blurb_backend_forward(be, ch, B, false, &err) < 0) return fail("decode", &err);
                if (blurb_backend_sample(be, req, B, tok, NULL, &err) < 0) return fail("sample", &err);
            } else {
                if (blurb_backend_decode(be, tok, req, B, k, dec, NULL, &err) < 0) return fail("decode", &err);
                memcpy(tok, dec + (size_t)(k - 1) * (size_t)B, (size_t)B * sizeof *tok);
            }
            st += k;
        }
        const double dt = now() - t1;
        const double rate = (double)B * ro->steps / dt;
        if (pass == 0) {
            rate_sampled = rate;
            ms_step = 1e3 * dt / ro->steps;
        } else if (pass == 1) {
            rate_greedy = rate;
        } else {
            rate_one = rate;
        }
    }
    if (print)
        printf("RESULT|%s|%d|%s|%s|%.0f|%.0f|%.2f|%.0f|%.0f\n", name, B, blurb_dtype_name(ro->dtype),
               ro->invariant ? "on" : "off", rate_prefill, rate_sampled, ms_step, rate_greedy, rate_one);
    fflush(stdout);
    free(prompt);
    free(tok);
    free(dec);
    free(ch);
    free(req);
    blurb_backend_free(be);
    return 0;
}

/* Every kernel path on a small model: prefill past one attention split
 * (combine), ragged chunks, all-position logits, decode steps through the
 * graph buckets, a multi-step decode call, each sampling option. Prints "smoke ok". */
static int smoke(void) {
    bool ok;
    blurb_config c = shape("smoke", &ok);
    blurb_model *m = NULL;
    blurb_err err;
    blurb_err_clear(&err);
    if (blurb_model_random(&c, 3, &m, &err) < 0) return fail("random model", &err);
    const blurb_dtype dts[2] = {BLURB_DTYPE_BF16, BLURB_DTYPE_F32};
    for (int d = 0; d < 2; d++) {
        blurb_backend_opts o = blurb_backend_opts_default();
        o.kind = BLURB_BACKEND_CUDA;
        o.dtype = dts[d];
        o.max_slots = 4;
        blurb_backend *be = NULL;
        if (blurb_backend_create(m, &o, &be, &err) < 0) return fail("create", &err);
        int32_t t[400];
        for (int i = 0; i < 400; i++) t[i] = (i * 37) % (c.vocab_size - 1);
        blurb_chunk ch[3] = {{0, t, 300}, {1, t + 10, 2}, {2, t + 50, 40}};
        if (blurb_backend_forward(be, ch, 3, true, &err) < 0) return fail("prefill", &err);
        blurb_sampling sp[3] = {blurb_sampling_default(), blurb_sampling_default(), blurb_sampling_default()};
        sp[1].top_k = 20;
        sp[1].repetition_penalty = 1.3f;
        sp[2].temperature = 0.0f;
        int32_t out[3];
        float lp[3];
        blurb_sample_req rq[3] = {{299, 0, &sp[0], 11, 0}, {301, 1, &sp[1], 12, 0}, {341, 2, &sp[2], 13, 0}};
        if (blurb_backend_sample(be, rq, 3, out, lp, &err) < 0) return fail("sample", &err);
        for (int st = 0; st < 6; st++) {
            for (int k = 0; k < 3; k++) {
                ch[k] = (blurb_chunk){k, &out[k], 1};
                rq[k].row = k;
                rq[k].n_generated = st + 1;
            }
            if (blurb_backend_forward(be, ch, 3, false, &err) < 0) return fail("decode", &err);
            if (blurb_backend_sample(be, rq, 3, out, lp, &err) < 0) return fail("sample", &err);
        }
        /* four more steps in one decode call: the draws fed back on the device */
        int32_t dec[4 * 3];
        for (int k = 0; k < 3; k++) rq[k].n_generated = 7;
        if (blurb_backend_decode(be, out, rq, 3, 4, dec, NULL, &err) < 0) return fail("decode call", &err);
        float *row = malloc((size_t)c.vocab_size * sizeof *row);
        if (!row || blurb_backend_logits(be, 2, row, &err) < 0) return fail("logits", &err);
        free(row);
        blurb_backend_free(be);
    }
    blurb_model_free(m);
    printf("smoke ok\n");
    return 0;
}

static int one(const char *name, const run_opts *ro) {
    bool ok;
    blurb_config c = shape(name, &ok);
    if (!ok) {
        fprintf(stderr, "bench_cuda_decode: unknown case %s\n", name);
        return 2;
    }
    blurb_model *m = NULL;
    blurb_err err;
    blurb_err_clear(&err);
    const double t0 = now();
    if (blurb_model_random(&c, 42, &m, &err) < 0) return fail("random model", &err);
    fprintf(stderr, "%s: random weights in %.1f s\n", name, now() - t0);
    const int rc = run_case(m, name, ro, true);
    blurb_model_free(m);
    return rc;
}

int main(int argc, char **argv) {
    if (!blurb_cuda_available()) {
        fprintf(stderr, "SKIPPED: no CUDA device (or a build without CUDA)\n");
        return 77;
    }
    if (argc > 1 && strcmp(argv[1], "--smoke") == 0) return smoke();
    run_opts ro = {1, 64, 64, BLURB_DTYPE_BF16, true};
    if (argc > 1 && strcmp(argv[1], "--case") == 0) {
        if (argc < 4) {
            fprintf(stderr, "usage: bench_cuda_decode --case NAME BATCH [STEPS] [--no-invariant] [--dtype bf16|fp16|fp32]\n");
            return 2;
        }
        ro.batch = atoi(argv[3]);
        for (int i = 4; i < argc; i++) {
            if (strcmp(argv[i], "--no-invariant") == 0) ro.invariant = false;
            else if (strcmp(argv[i], "--dtype") == 0 && i + 1 < argc) {
                const char *d = argv[++i];
                ro.dtype = strcmp(d, "fp32") == 0 ? BLURB_DTYPE_F32 : strcmp(d, "fp16") == 0 ? BLURB_DTYPE_F16 : BLURB_DTYPE_BF16;
            } else ro.steps = atoi(argv[i]);
        }
        if (ro.batch < 1 || ro.steps < 1) return 2;
        return one(argv[2], &ro);
    }
    /* the gpu-check table */
    int rc = 0;
    bool ok;
    blurb_config c = shape("gpt2", &ok);
    blurb_model *m = NULL;
    blurb_err err;
    blurb_err_clear(&err);
    if (blurb_model_random(&c, 42, &m, &err) < 0) return fail("random model", &err);
    const int batches[3] = {1, 64, 1024};
    for (int i = 0; i < 3; i++) {
        ro.batch = batches[i];
        ro.steps = batches[i] == 1 ? 64 : 32;
        rc |= run_case(m, "gpt2", &ro, true);
    }
    ro.batch = 64;
    ro.steps = 32;
    ro.invariant = false;
    rc |= run_case(m, "gpt2", &ro, true);
    ro.batch = 1;
    ro.steps = 64;
    rc |= run_case(m, "gpt2", &ro, true);
    blurb_model_free(m);
    ro.invariant = true;
    ro.batch = 512;
    ro.steps = 16;
    rc |= one("gpt2-xl", &ro);
    return rc;
}
