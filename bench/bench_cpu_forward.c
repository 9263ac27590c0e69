/* Prefill and decode throughput of the CPU backend on the default model at
 * batch 1, 8 and 64 (tokens per second, printed; not a test).
 *
 * usage: bench_cpu_forward [--model DIR] [--threads N] [--prompt-len N] [--decode-steps N]
 * Prefill: `batch` prompts of prompt-len random tokens in one forward (logits
 * of the last position only, as the job runner does). Decode: then
 * decode-steps forwards of one token per sequence. Best of 3 runs each. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "blurb/backend.h"
#include "blurb/model.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int die(const char *what, const blurb_err *err) {
    fprintf(stderr, "bench_cpu_forward: %s: %s\n", what, err->msg);
    return 1;
}

int main(int argc, char **argv) {
    const char *model_dir = NULL;
    int n_threads = 0, prompt_len = 64, decode_steps = 32;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--model") == 0 && i + 1 < argc) model_dir = argv[++i];
        else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc) n_threads = atoi(argv[++i]);
        else if (strcmp(argv[i], "--prompt-len") == 0 && i + 1 < argc) prompt_len = atoi(argv[++i]);
        else if (strcmp(argv[i], "--decode-steps") == 0 && i + 1 < argc) decode_steps = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: %s [--model DIR] [--threads N] [--prompt-len N] [--decode-steps N]\n", argv[0]);
            return 2;
        }
    }
    blurb_err err;
    blurb_err_clear(&err);
    char dir[4096];
    if (!model_dir) {
        if (blurb_default_model_dir(dir, sizeof dir, &err) < 0) return die("default model", &err);
        model_dir = dir;
    }
    blurb_model *m = NULL;
    if (blurb_model_load(model_dir, &m, &err) < 0) return die("load", &err);
    if (prompt_len < 1 || decode_steps < 0 || prompt_len + decode_steps > m->cfg.n_ctx) {
        fprintf(stderr, "bench_cpu_forward: prompt-len + decode-steps must fit n_ctx %d\n", m->cfg.n_ctx);
        return 2;
    }

    const int batches[] = {1, 8, 64};
    blurb_backend_opts o = blurb_backend_opts_default();
    o.kind = BLURB_BACKEND_CPU;
    o.max_slots = 64;
    o.n_threads = n_threads;
    double t0 = now();
    blurb_backend *be = NULL;
    if (blurb_backend_create(m, &o, &be, &err) < 0) return die("create", &err);
    printf("model %s: n_layer %d, n_embd %d, vocab %d; backend create %.2f s\n", model_dir, m->cfg.n_layer,
           m->cfg.n_embd, m->cfg.vocab_size, now() - t0);
    if (n_threads > 0) printf("prompt length %d, %d decode steps, %d threads\n", prompt_len, decode_steps, n_threads);
    else printf("prompt length %d, %d decode steps, OpenMP's default thread count\n", prompt_len, decode_steps);

    int32_t *prompts = malloc((size_t)64 * (size_t)prompt_len * sizeof *prompts);
    blurb_chunk chunks[64];
    int32_t next[64];
    if (!prompts) return 1;
    for (int i = 0; i < 64 * prompt_len; i++) prompts[i] = (int32_t)((i * 7919u + 13u) % (unsigned)m->cfg.vocab_size);

    /* Each figure is the best of `reps` runs (the first run of a size also
     * pays for first-touch page faults; other processes add noise). */
    const int reps = 3;
    for (size_t bi = 0; bi < sizeof batches / sizeof batches[0]; bi++) {
        const int B = batches[bi];
        double best_prefill = 1e30, best_decode = 1e30;
        for (int rep = 0; rep < reps; rep++) {
            for (int s = 0; s < B; s++) {
                if (blurb_backend_reset(be, s, &err) < 0) return die("reset", &err);
                chunks[s] = (blurb_chunk){s, prompts + (size_t)s * (size_t)prompt_len, prompt_len};
            }
            double t = now();
            if (blurb_backend_forward(be, chunks, B, false, &err) < 0) return die("prefill", &err);
            double t_prefill = now() - t;
            t = now();
            for (int step = 0; step < decode_steps; step++) {
                for (int s = 0; s < B; s++) {
                    next[s] = (int32_t)((step * 31 + s) % m->cfg.vocab_size);
                    chunks[s] = (blurb_chunk){s, &next[s], 1};
                }
                if (blurb_backend_forward(be, chunks, B, false, &err) < 0) return die("decode", &err);
            }
            double t_decode = now() - t;
            if (t_prefill < best_prefill) best_prefill = t_prefill;
            if (t_decode < best_decode) best_decode = t_decode;
        }
        printf("batch %2d: prefill %8.0f tok/s (%.3f s)   decode %7.0f tok/s (%.2f ms/step)\n", B,
               (double)B * prompt_len / best_prefill, best_prefill,
               decode_steps ? (double)B * decode_steps / best_decode : 0.0,
               decode_steps ? 1e3 * best_decode / decode_steps : 0.0);
    }
    free(prompts);
    blurb_backend_free(be);
    blurb_model_free(m);
    return 0;
}
