/* Cost of --ban-words: the catalog job on the CPU backend with the default
 * model, first without banned phrases, then with 100 (words and phrases shop
 * copy is often asked to avoid, several of which the model writes, so redraws
 * really happen), alternating runs. Reports CPU seconds per generated token
 * (process CPU time: the build machines are shared, so wall time mostly
 * measures the neighbours) and the relative cost.
 * Usage: bench_ban_words [products, default 24] [rounds, default 2]; one
 * uncounted warm-up round comes first. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "blurb/backend.h"
#include "blurb/catalog.h"
#include "blurb/job.h"
#include "blurb/model.h"
#include "blurb/template.h"
#include "blurb/tokenizer.h"

static const char *const phrases[100] = {
    "fabric", "soft", "made of", "comfortable", "stylish", "perfect", "premium", "cheap", "best", "amazing",
    "awesome", "luxury", "luxurious", "trendy", "elegant", "classic", "unique", "exclusive", "guaranteed",
    "cheapest", "bargain", "discount", "free", "sale", "offer", "deal", "limited edition", "must have",
    "must-have", "world class", "world-class", "top quality", "high quality", "state of the art", "cutting edge",
    "revolutionary", "innovative", "game changer", "best seller", "bestseller", "number one", "no. 1",
    "100%", "genuine", "authentic", "original", "official", "certified", "eco-friendly", "sustainable",
    "organic", "natural", "hypoallergenic", "waterproof", "lifetime", "warranty", "flawless", "gorgeous",
    "stunning", "sexy", "hot", "cool", "chic", "sleek", "fashionable", "timeless", "iconic", "legendary",
    "ultimate", "superior", "incredible", "fantastic", "wonderful", "excellent", "outstanding", "brilliant",
    "magnificent", "spectacular", "sensational", "phenomenal", "extraordinary", "remarkable", "breathtaking",
    "dazzling", "glamorous", "posh", "snazzy", "swanky", "dapper", "trendsetting", "fresh", "versatile",
    "durable", "lightweight", "breathable", "cozy", "cosy", "snug", "effortless", "every day"};

static double cpu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int main(int argc, char **argv) {
    int n_products = argc > 1 ? atoi(argv[1]) : 24, rounds = argc > 2 ? atoi(argv[2]) : 2;
    if (n_products <= 0 || rounds <= 0) {
        fprintf(stderr, "usage: %s [products > 0] [rounds > 0]\n", argv[0]);
        return 2;
    }
    const char *model_dir = BLURB_SOURCE_DIR "/weights/default";
    blurb_err err;
    blurb_model *model = NULL;
    blurb_tokenizer *tok = NULL;
    blurb_backend *be = NULL;
    blurb_template *tmpl = NULL;
    blurb_catalog *cat = NULL;
    if (blurb_model_load(model_dir, &model, &err) ||
        blurb_tokenizer_load(model_dir, model->cfg.vocab_size, &tok, &err) ||
        blurb_template_from_arg(NULL, &tmpl, &err)) {
        fprintf(stderr, "bench_ban_words: %s\n", err.msg);
        return 1;
    }
    /* The first n_products lines of the real catalog. */
    FILE *src = fopen(BLURB_SOURCE_DIR "/tests/data/myntra_sample.jsonl", "rb");
    FILE *sub = tmpfile();
    if (!src || !sub) {
        fprintf(stderr, "bench_ban_words: cannot open the catalog\n");
        return 1;
    }
    char *line = NULL;
    size_t cap = 0;
    for (int i = 0; i < n_products && getline(&line, &cap, src) > 0; i++) fputs(line, sub);
    free(line);
    fclose(src);
    rewind(sub);
    if (blurb_catalog_read_stream(sub, "myntra_sample.jsonl", &cat, &err)) {
        fprintf(stderr, "bench_ban_words: %s\n", err.msg);
        return 1;
    }
    fclose(sub);
    blurb_backend_opts bo = blurb_backend_opts_default();
    bo.kind = BLURB_BACKEND_CPU;
    bo.n_threads = 1; /* one thread: CPU time is then not inflated by OpenMP spinning on a loaded machine */
    if (blurb_backend_create(model, &bo, &be, &err)) {
        fprintf(stderr, "bench_ban_words: %s\n", err.msg);
        return 1;
    }
    FILE *devnull = fopen("/dev/null", "wb");
    if (!devnull) return 1;

    double sec[2] = {0, 0};
    long long toks[2] = {0, 0};
    /* Round -1 is a warm-up (first-touch of the KV cache and scratch, OpenMP
     * thread start) and is not counted. */
    for (int r = -1; r < rounds; r++)
        for (int with = 0; with < 2; with++) {
            blurb_job_opts jo = blurb_job_opts_default();
            jo.tmpl = tmpl;
            jo.max_new_tokens = 32;
            jo.sampling.eos_token_id = model->cfg.eos_token_id;
            jo.ban_words = with ? phrases : NULL;
            jo.n_ban_words = with ? 100 : 0;
            blurb_job_stats st;
            double t0 = cpu_now();
            if (blurb_job_run(be, tok, cat, &jo, devnull, &st, &err)) {
                fprintf(stderr, "bench_ban_words: %s\n", err.msg);
                return 1;
            }
            if (r < 0) continue;
            sec[with] += cpu_now() - t0;
            toks[with] += st.generated_tokens;
        }
    double per[2];
    for (int w = 0; w < 2; w++) per[w] = sec[w] / (double)toks[w];
    printf("products %d x %d rounds, max 32 new tokens, cpu backend, 1 thread\n", n_products, rounds);
    printf("no banned phrases : %lld tokens, %.3f CPU ms/token\n", toks[0], 1e3 * per[0]);
    printf("100 banned phrases: %lld tokens, %.3f CPU ms/token\n", toks[1], 1e3 * per[1]);
    printf("throughput cost of 100 phrases: %+.2f%%\n", 100.0 * (per[1] / per[0] - 1.0));
    fclose(devnull);
    blurb_backend_free(be);
    blurb_catalog_free(cat);
    blurb_template_free(tmpl);
    blurb_tokenizer_free(tok);
    blurb_model_free(model);
    return 0;
}
