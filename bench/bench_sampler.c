/* Microseconds per blurb_sample_row on 50,257-token rows: the eight real GPT-2
 * last-position rows of tests/data/golden_last_logits.f32 (peaked, as in
 * generation) and one flat N(0, 2) row (top-p keeps thousands of tokens: the
 * heap's bad case). Single thread; thread CPU time per call.
 * Usage: bench_sampler [iterations per configuration, default 2000] */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "blurb/sampler.h"

#define V 50257
#define ROWS 8

/* Thread CPU time: the build machines are shared, and wall time there mostly
 * measures the neighbours. */
static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int main(int argc, char **argv) {
    int iters = argc > 1 ? atoi(argv[1]) : 2000;
    if (iters <= 0) {
        fprintf(stderr, "usage: %s [iterations > 0]\n", argv[0]);
        return 2;
    }
    const char *path = BLURB_SOURCE_DIR "/tests/data/golden_last_logits.f32";
    float *rows = malloc(sizeof(float) * (ROWS + 1) * V);
    if (!rows) {
        fprintf(stderr, "out of memory\n");
        return 1;
    }
    FILE *f = fopen(path, "rb");
    if (!f || fread(rows, sizeof(float), (size_t)ROWS * V, f) != (size_t)ROWS * V) {
        fprintf(stderr, "cannot read %s\n", path);
        return 1;
    }
    fclose(f);
    float *flat = rows + (size_t)ROWS * V;
    uint64_t st = 1;
    for (int i = 0; i < V; i++) { /* Box-Muller over an LCG: N(0, 2) */
        st = st * 6364136223846793005ull + 1442695040888963407ull;
        double u1 = ((st >> 11) + 1.0) * 0x1p-53;
        st = st * 6364136223846793005ull + 1442695040888963407ull;
        double u2 = (st >> 11) * 0x1p-53;
        flat[i] = (float)(2 * sqrt(-2 * log(u1)) * cos(6.283185307179586 * u2));
    }
    blurb_sampler_scratch *s = blurb_sampler_scratch_new(V);
    if (!s) {
        fprintf(stderr, "out of memory\n");
        return 1;
    }
    struct {
        const char *name;
        float T;
        int k;
        float p;
        float r;
    } cfg[] = {
        {"greedy (T 0)", 0.0f, 0, 1.0f, 1.0f},
        {"top-p 0.9, T 0.8 (default)", 0.8f, 0, 0.9f, 1.0f},
        {"top-k 50, T 0.8", 0.8f, 50, 1.0f, 1.0f},
        {"top-k 50 + top-p 0.9, r 1.2", 0.8f, 50, 0.9f, 1.2f},
        {"no filter, T 1", 1.0f, 0, 1.0f, 1.0f},
    };
    int32_t hist[64];
    for (int i = 0; i < 64; i++) hist[i] = (i * 7919) % V;
    double load[1] = {0};
    if (getloadavg(load, 1) != 1) load[0] = -1;
    printf("blurb_sample_row, vocab %d, %d calls each, CPU us per call (with logprob); "
           "load average %.2f\n", V, iters, load[0]);
    printf("%-30s %12s %12s\n", "configuration", "real rows", "flat row");
    long sink = 0;
    for (size_t c = 0; c < sizeof cfg / sizeof cfg[0]; c++) {
        blurb_sampling p = blurb_sampling_default();
        p.temperature = cfg[c].T;
        p.top_k = cfg[c].k;
        p.top_p = cfg[c].p;
        p.repetition_penalty = cfg[c].r;
        double us[2];
        for (int which = 0; which < 2; which++) {
            double t0 = now_s();
            for (int it = 0; it < iters; it++) {
                const float *row = which ? flat : rows + (size_t)(it % ROWS) * V;
                float lp;
                sink += blurb_sample_row(row, V, &p, hist, 64, it, 42, (uint32_t)it, s, &lp);
            }
            us[which] = (now_s() - t0) * 1e6 / iters;
        }
        printf("%-30s %12.1f %12.1f\n", cfg[c].name, us[0], us[1]);
    }
    fprintf(stderr, "(checksum %ld)\n", sink);
    blurb_sampler_scratch_free(s);
    free(rows);
    return 0;
}
