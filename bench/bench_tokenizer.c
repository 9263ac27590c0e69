/* Tokenizer throughput on the product texts of tests/data/tokenizer_golden.jsonl
 * (the lines after the 30 edge cases): encode MB/s and tokens/s on one thread,
 * first pass (cold piece cache) and repeated passes, and decode MB/s.
 * Usage: bench_tokenizer [golden.jsonl] [seconds per measurement, default 2]. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "blurb/tokenizer.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

typedef struct { char *s; size_t len; } text;

int main(int argc, char **argv) {
    const char *path = argc > 1 ? argv[1] : BLURB_SOURCE_DIR "/tests/data/tokenizer_golden.jsonl";
    double budget = argc > 2 ? atof(argv[2]) : 2.0;
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        return 1;
    }
    text *texts = NULL;
    size_t n = 0, cap = 0, lineno = 0, bytes = 0;
    char *line = NULL;
    size_t lcap = 0;
    while (getline(&line, &lcap, f) > 0) {
        if (++lineno <= 30) continue; /* edge cases, not product text */
        cJSON *j = cJSON_Parse(line);
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(j, "text");
        if (!cJSON_IsString(t)) {
            fprintf(stderr, "%s:%zu: no text\n", path, lineno);
            return 1;
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 1024;
            texts = realloc(texts, cap * sizeof *texts);
            if (!texts) return 1;
        }
        texts[n].len = strlen(t->valuestring);
        texts[n].s = strdup(t->valuestring);
        if (!texts[n].s) return 1;
        bytes += texts[n].len;
        n++;
        cJSON_Delete(j);
    }
    free(line);
    fclose(f);

    blurb_err err = {0};
    blurb_tokenizer *tok = NULL;
    double t0 = now_s();
    if (blurb_tokenizer_load(NULL, 50257, &tok, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    printf("load: %.1f ms\n", (now_s() - t0) * 1e3);
    printf("texts: %zu product texts, %.2f MB\n", n, (double)bytes / 1e6);

    int32_t **ids = calloc(n, sizeof *ids);
    size_t *n_ids = calloc(n, sizeof *n_ids);
    if (!ids || !n_ids) return 1;
    size_t tokens = 0;
    t0 = now_s();
    for (size_t i = 0; i < n; i++) {
        if (blurb_tokenizer_encode(tok, texts[i].s, texts[i].len, false, &ids[i], &n_ids[i], &err)) {
            fprintf(stderr, "text %zu: %s\n", i, err.msg);
            return 1;
        }
        tokens += n_ids[i];
    }
    double dt = now_s() - t0;
    printf("encode, first pass:   %7.2f MB/s  %8.0f tokens/s  (%zu tokens)\n", (double)bytes / 1e6 / dt,
           (double)tokens / dt, tokens);

    size_t passes = 0;
    t0 = now_s();
    do {
        for (size_t i = 0; i < n; i++) {
            int32_t *v;
            size_t k;
            if (blurb_tokenizer_encode(tok, texts[i].s, texts[i].len, false, &v, &k, &err)) return 1;
            free(v);
        }
        passes++;
        dt = now_s() - t0;
    } while (dt < budget);
    printf("encode, %3zu passes:   %7.2f MB/s  %8.0f tokens/s\n", passes, (double)bytes * passes / 1e6 / dt,
           (double)tokens * passes / dt);

    passes = 0;
    t0 = now_s();
    do {
        for (size_t i = 0; i < n; i++) {
            char *s;
            size_t len;
            if (blurb_tokenizer_decode(tok, ids[i], n_ids[i], &s, &len, &err)) return 1;
            free(s);
        }
        passes++;
        dt = now_s() - t0;
    } while (dt < budget);
    printf("decode, %3zu passes:   %7.2f MB/s  %8.0f tokens/s\n", passes, (double)bytes * passes / 1e6 / dt,
           (double)tokens * passes / dt);

    static const char runs[] = {'^', 'a'};
    for (size_t r = 0; r < 2; r++) {
        size_t len = 1000000;
        char *s = malloc(len);
        if (!s) return 1;
        memset(s, runs[r], len);
        int32_t *v;
        size_t k;
        t0 = now_s();
        if (blurb_tokenizer_encode(tok, s, len, false, &v, &k, &err)) return 1;
        printf("encode 1,000,000 x '%c' (one piece): %.3f s, %zu tokens\n", runs[r], now_s() - t0, k);
        free(v);
        free(s);
    }

    for (size_t i = 0; i < n; i++) {
        free(ids[i]);
        free(texts[i].s);
    }
    free(ids);
    free(n_ids);
    free(texts);
    blurb_tokenizer_free(tok);
    return 0;
}
