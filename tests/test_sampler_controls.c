/* The sampling controls of issue 7 (include/blurb/sampler.h): logit bias,
 * presence / frequency penalties, no-repeat n-grams, min-p, per-draw
 * exclusions, their place in the order, and the option checks. Every case
 * states the exact logits or the exact kept set it expects. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "../host/sampler_internal.h"
#include "blurb/sampler.h"
#include "check.h"

#define V 8

static blurb_sampling plain(float T, float top_p) {
    blurb_sampling s = blurb_sampling_default();
    s.temperature = T;
    s.top_p = top_p;
    s.eos_token_id = -1;
    return s;
}

static void fill(float *z, float v) {
    for (int i = 0; i < V; i++) z[i] = v;
}

/* The kept set of blurb_sampler_kept as ids, compared with want[n]. */
static int kept_is(const float *logits, const blurb_sampling *p, const int32_t *hist, int nh, int n_gen,
                   blurb_sampler_scratch *s, const int32_t *want, int n) {
    int32_t ids[V];
    int k = blurb_sampler_kept(logits, V, p, hist, nh, n_gen, s, ids, NULL, NULL);
    if (k != n) {
        fprintf(stderr, "kept %d tokens, want %d\n", k, n);
        return 0;
    }
    for (int i = 0; i < n; i++)
        if (ids[i] != want[i]) {
            fprintf(stderr, "kept[%d] = %d, want %d\n", i, (int)ids[i], (int)want[i]);
            return 0;
        }
    return 1;
}

static void test_logit_bias(blurb_sampler_scratch *s) {
    float z[V];
    fill(z, 1.0f);
    blurb_logit_bias b[4] = {{2, 5.0f}, {7, -1.5f}, {2, 0.25f}, {99, 3.0f}};
    blurb_sampler_logit_bias(z, V, b, 4);
    CHECK(z[2] == 6.25f); /* both entries for id 2, in order */
    CHECK(z[7] == -0.5f);
    CHECK(z[0] == 1.0f && z[1] == 1.0f && z[6] == 1.0f); /* id 99 ignored */

    /* In the sampler: greedy picks the biased token; a -100 bias removes one
     * from top-p's kept set. */
    float l[V] = {0, 0, 0, 0, 0, 0, 0, 0};
    blurb_sampling p = plain(0.0f, 0.9f);
    p.logit_bias = b;
    p.n_logit_bias = 1;
    CHECK(blurb_sample_row(l, V, &p, NULL, 0, 0, 1, 0, s, NULL) == 2);
    float lp[V] = {logf(0.5f), logf(0.3f), logf(0.1f), logf(0.1f), -INFINITY, -INFINITY, -INFINITY, -INFINITY};
    blurb_logit_bias drop0 = {0, -100.0f};
    blurb_sampling q = plain(1.0f, 0.75f);
    q.logit_bias = &drop0;
    q.n_logit_bias = 1;
    /* Without id 0: 0.6, 0.2, 0.2 renormalised; 0.75 needs ids 1, 2 (tie: lower id). */
    const int32_t want[] = {1, 2};
    CHECK(kept_is(lp, &q, NULL, 0, 0, s, want, 2));
}

static void test_presence_frequency(blurb_sampler_scratch *s) {
    /* History: prompt {5, 5, 1} then generated {1, 1, 2}. */
    const int32_t hist[] = {5, 5, 1, 1, 1, 2};
    float z[V];
    fill(z, 1.0f);
    blurb_sampler_presence_frequency(z, V, 0.5f, 0.25f, hist + 3, 3, s);
    CHECK(z[1] == 0.0f);   /* 1 - (0.5 + 0.25 * 2): the prompt's 1 does not count */
    CHECK(z[2] == 0.25f);  /* 1 - (0.5 + 0.25 * 1) */
    CHECK(z[5] == 1.0f);   /* prompt only */
    CHECK(z[0] == 1.0f);
    /* The counts are cleared between calls: a second call gives the same. */
    fill(z, 1.0f);
    blurb_sampler_presence_frequency(z, V, 0.5f, 0.25f, hist + 3, 3, s);
    CHECK(z[1] == 0.0f && z[2] == 0.25f);

    /* Through the sampler: with n_generated 3 only the last 3 count. Logits
     * 0 except id 1 at 0.9 and id 5 at 0.8: greedy without penalties is 1;
     * presence 0.5 makes id 1 0.4, so 5 wins (the prompt's 5 is not counted). */
    float l[V] = {0, 0.9f, 0, 0, 0, 0.8f, 0, 0};
    blurb_sampling p = plain(0.0f, 0.9f);
    CHECK(blurb_sample_row(l, V, &p, hist, 6, 3, 1, 0, s, NULL) == 1);
    p.presence_penalty = 0.5f;
    CHECK(blurb_sample_row(l, V, &p, hist, 6, 3, 1, 0, s, NULL) == 5);
    /* Frequency alone, 0.3: id 1 (count 2) gets 0.9 - 0.6 = 0.3 < 0.8. */
    p.presence_penalty = 0.0f;
    p.frequency_penalty = 0.3f;
    CHECK(blurb_sample_row(l, V, &p, hist, 6, 3, 1, 0, s, NULL) == 5);
    /* With n_generated 0 nothing was generated: no penalty. */
    CHECK(blurb_sample_row(l, V, &p, hist, 6, 0, 1, 0, s, NULL) == 1);
    /* Negative penalties encourage (OpenAI allows -2..2). */
    p.frequency_penalty = -1.0f;
    float l2[V] = {0, 0, 0.5f, 0, 0, 0, 0, 0.9f};
    /* id 1: 0 + 2 = 2; id 2: 0.5 + 1 = 1.5; id 7: 0.9. */
    CHECK(blurb_sample_row(l2, V, &p, hist, 6, 3, 1, 0, s, NULL) == 1);
}

static void test_no_repeat(void) {
    float z[V];
    /* [1 2 3 1 2], n 3: the last 2 tokens (1 2) were followed by 3. */
    const int32_t h1[] = {1, 2, 3, 1, 2};
    fill(z, 0.5f);
    blurb_sampler_no_repeat_ngram(z, V, 3, h1, 5);
    for (int i = 0; i < V; i++) CHECKF(z[i] == (i == 3 ? -INFINITY : 0.5f), "n 3, id %d", i);
    /* n 2: the last token 2 was followed by 3 once. */
    fill(z, 0.5f);
    blurb_sampler_no_repeat_ngram(z, V, 2, h1, 5);
    for (int i = 0; i < V; i++) CHECKF(z[i] == (i == 3 ? -INFINITY : 0.5f), "n 2, id %d", i);
    /* [1 2 1 2], n 2: 2 was followed by 1. */
    const int32_t h2[] = {1, 2, 1, 2};
    fill(z, 0.5f);
    blurb_sampler_no_repeat_ngram(z, V, 2, h2, 4);
    for (int i = 0; i < V; i++) CHECKF(z[i] == (i == 1 ? -INFINITY : 0.5f), "[1 2 1 2] n 2, id %d", i);
    /* n 4 on [1 2 1 2]: the prefix (2 1 2) never occurred before. */
    fill(z, 0.5f);
    blurb_sampler_no_repeat_ngram(z, V, 4, h2, 4);
    for (int i = 0; i < V; i++) CHECK(z[i] == 0.5f);
    /* n 1 bans every token of the history. */
    fill(z, 0.5f);
    blurb_sampler_no_repeat_ngram(z, V, 1, h1, 5);
    for (int i = 0; i < V; i++) CHECKF(z[i] == (i >= 1 && i <= 3 ? -INFINITY : 0.5f), "n 1, id %d", i);
    /* History shorter than n - 1: nothing (HF: cur_len + 1 < n). */
    fill(z, 0.5f);
    blurb_sampler_no_repeat_ngram(z, V, 3, h1, 1);
    for (int i = 0; i < V; i++) CHECK(z[i] == 0.5f);
    /* Exactly n - 1 tokens: no complete n-gram yet. */
    blurb_sampler_no_repeat_ngram(z, V, 3, h1, 2);
    for (int i = 0; i < V; i++) CHECK(z[i] == 0.5f);
    /* Over prompt and output: the n-gram may lie in the prompt. */
    blurb_sampler_scratch *s = blurb_sampler_scratch_new(V);
    REQUIRE(s);
    float l[V] = {0, 0, 0, 2.0f, 0, 0, 0, 1.0f};
    blurb_sampling p = plain(0.0f, 0.9f);
    p.no_repeat_ngram_size = 3;
    CHECK(blurb_sample_row(l, V, &p, h1, 5, 0, 1, 0, s, NULL) == 7);
    p.no_repeat_ngram_size = 0;
    CHECK(blurb_sample_row(l, V, &p, h1, 5, 0, 1, 0, s, NULL) == 3);
    blurb_sampler_scratch_free(s);
}

static void test_min_p(blurb_sampler_scratch *s) {
    float l[V] = {logf(0.5f), logf(0.3f), logf(0.1f), logf(0.1f), -INFINITY, -INFINITY, -INFINITY, -INFINITY};
    blurb_sampling p = plain(1.0f, 1.0f);
    /* w = p / 0.5 = {1, 0.6, 0.2, 0.2}. */
    p.min_p = 0.25f;
    const int32_t w01[] = {0, 1}, w0[] = {0}, all4[] = {0, 1, 2, 3};
    CHECK(kept_is(l, &p, NULL, 0, 0, s, w01, 2));
    p.min_p = 0.15f;
    CHECK(kept_is(l, &p, NULL, 0, 0, s, all4, 4));
    p.min_p = 0.7f;
    CHECK(kept_is(l, &p, NULL, 0, 0, s, w0, 1));
    p.min_p = 1.0f; /* only the most likely (no tie here) */
    CHECK(kept_is(l, &p, NULL, 0, 0, s, w0, 1));
    /* After top-p 0.85 ({0, 1, 2}), min-p 0.15 keeps all three of those, not id 3. */
    p.top_p = 0.85f;
    p.min_p = 0.15f;
    const int32_t w012[] = {0, 1, 2};
    CHECK(kept_is(l, &p, NULL, 0, 0, s, w012, 3));
    /* Top-p 0.75 keeps {0, 1}; min-p 0.5 keeps both, 0.7 only id 0. */
    p.top_p = 0.75f;
    p.min_p = 0.5f;
    CHECK(kept_is(l, &p, NULL, 0, 0, s, w01, 2));
    p.min_p = 0.7f;
    CHECK(kept_is(l, &p, NULL, 0, 0, s, w0, 1));
    /* The kept mass is the running sum of the kept weights: with min-p 0.25,
     * top-p off, M = 1 + w1; the draw never leaves the kept set. */
    p.top_p = 1.0f;
    p.min_p = 0.25f;
    float w[V], M;
    int k = blurb_sampler_kept(l, V, &p, NULL, 0, 0, s, NULL, w, &M);
    CHECK(k == 2 && w[0] == 1.0f && M == w[0] + w[1]);
    int seen[V] = {0};
    for (uint32_t step = 0; step < 2000; step++) {
        int t = blurb_sample_row(l, V, &p, NULL, 0, 0, 42, step, s, NULL);
        REQUIRE(t >= 0 && t < V);
        seen[t]++;
    }
    CHECK(seen[0] > 0 && seen[1] > 0 && seen[2] == 0 && seen[3] == 0);
    /* 1 : 0.6 odds: id 0 about 62.5% of 2000 draws (binomial sd ~ 22). */
    CHECKF(seen[0] > 1150 && seen[0] < 1350, "id 0 drawn %d times", seen[0]);
}

static void test_exclude(blurb_sampler_scratch *s) {
    float l[V] = {2.0f, 1.5f, 1.0f, 0.5f, 0, 0, 0, 0};
    blurb_sampling p = plain(1.0f, 0.9f);
    const int32_t ex[] = {0, 2};
    blurb_sampling q = p;
    q.exclude = ex;
    q.n_exclude = 2;
    /* Same draws as the same row with those logits at -inf (same uniform). */
    float m[V];
    memcpy(m, l, sizeof m);
    m[0] = m[2] = -INFINITY;
    for (uint32_t step = 0; step < 500; step++) {
        float lp1 = 0;
        int a = blurb_sample_row(l, V, &q, NULL, 0, 0, 7, step, s, &lp1);
        int b = blurb_sample_row(m, V, &p, NULL, 0, 0, 7, step, s, NULL);
        CHECK(a == b && a != 0 && a != 2);
        /* The reported logprob stays the raw model's (exclusions do not change it). */
        float sum = 0;
        for (int i = 0; i < V; i++) sum += expf(l[i] - 2.0f);
        CHECK(fabsf(lp1 - ((l[a] - 2.0f) - logf(sum))) < 1e-5f);
    }
    /* Greedy with the argmax excluded takes the next one. */
    blurb_sampling g = plain(0.0f, 0.9f);
    g.exclude = ex;
    g.n_exclude = 1;
    CHECK(blurb_sample_row(l, V, &g, NULL, 0, 0, 1, 0, s, NULL) == 1);
}

/* The order of sampler.h: bias, then repetition penalty, then presence, and
 * all before temperature / top-k / top-p / min-p. */
static void test_order(blurb_sampler_scratch *s) {
    /* Token 0: logit 1, bias +1, in the history, penalty 2. Bias first:
     * (1 + 1) / 2 = 1 < 1.2 (token 1), so greedy takes 1; penalty first
     * would give 1 / 2 + 1 = 1.5 and take 0. */
    float l[V] = {1.0f, 1.2f, 0, 0, 0, 0, 0, 0};
    const int32_t hist[] = {0};
    blurb_logit_bias b = {0, 1.0f};
    blurb_sampling p = plain(0.0f, 0.9f);
    p.logit_bias = &b;
    p.n_logit_bias = 1;
    p.repetition_penalty = 2.0f;
    CHECK(blurb_sample_row(l, V, &p, hist, 1, 0, 1, 0, s, NULL) == 1);
    /* Repetition before presence: token 0 logit 2, generated once, r 2,
     * presence 0.6: 2 / 2 - 0.6 = 0.4 < 0.5 (token 1), so 1; presence
     * first would give (2 - 0.6) / 2 = 0.7 and take 0. */
    float l2[V] = {2.0f, 0.5f, 0, 0, 0, 0, 0, 0};
    blurb_sampling q = plain(0.0f, 0.9f);
    q.repetition_penalty = 2.0f;
    q.presence_penalty = 0.6f;
    CHECK(blurb_sample_row(l2, V, &q, hist, 1, 1, 1, 0, s, NULL) == 1);
    /* Temperature after the bias: bias +ln 3 on id 1 of two equal logits at
     * T 0.5 gives odds 9 : 1 (not 3 : 1), so top-p 0.85 keeps only id 1. */
    float l3[V] = {0, 0, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY};
    blurb_logit_bias b3 = {1, logf(3.0f)};
    blurb_sampling r = plain(0.5f, 0.85f);
    r.logit_bias = &b3;
    r.n_logit_bias = 1;
    const int32_t w1[] = {1}, w10[] = {1, 0};
    CHECK(kept_is(l3, &r, NULL, 0, 0, s, w1, 1));
    r.temperature = 1.0f; /* 3 : 1 -> 0.75 < 0.85: both */
    CHECK(kept_is(l3, &r, NULL, 0, 0, s, w10, 2));
}

static void test_check(void) {
    blurb_err e;
    blurb_sampling p = blurb_sampling_default();
    CHECK(blurb_sampling_check(&p, &e) == 0);
    CHECK(!blurb_sampling_uses_extended(&p));
    p.min_p = 1.5f;
    CHECK(blurb_sampling_check(&p, &e) == BLURB_E_INVALID && strstr(e.msg, "min-p"));
    p.min_p = NAN;
    CHECK(blurb_sampling_check(&p, &e) == BLURB_E_INVALID);
    p = blurb_sampling_default();
    p.no_repeat_ngram_size = -1;
    CHECK(blurb_sampling_check(&p, &e) == BLURB_E_INVALID && strstr(e.msg, "no-repeat"));
    p = blurb_sampling_default();
    p.presence_penalty = INFINITY;
    CHECK(blurb_sampling_check(&p, &e) == BLURB_E_INVALID && strstr(e.msg, "presence"));
    p = blurb_sampling_default();
    p.frequency_penalty = NAN;
    CHECK(blurb_sampling_check(&p, &e) == BLURB_E_INVALID && strstr(e.msg, "frequency"));
    p = blurb_sampling_default();
    p.n_logit_bias = 1;
    CHECK(blurb_sampling_check(&p, &e) == BLURB_E_INVALID);
    blurb_logit_bias bad = {-3, 1.0f};
    p.logit_bias = &bad;
    CHECK(blurb_sampling_check(&p, &e) == BLURB_E_INVALID && strstr(e.msg, "-3"));
    bad.id = 3;
    bad.bias = NAN;
    CHECK(blurb_sampling_check(&p, &e) == BLURB_E_INVALID);
    bad.bias = -100.0f;
    CHECK(blurb_sampling_check(&p, &e) == 0 && blurb_sampling_uses_extended(&p));
    p = blurb_sampling_default();
    p.n_exclude = 2;
    CHECK(blurb_sampling_check(&p, &e) == BLURB_E_INVALID);
    p = blurb_sampling_default();
    p.min_p = 0.1f;
    CHECK(blurb_sampling_uses_extended(&p));
}

/* blurb_top_logprobs: exact ids in order (ties to the lower id, NaN as -inf),
 * values against log-softmax in long double, and bit-equal to the sampler's
 * logprob for the drawn token. */
static void test_top_logprobs(blurb_sampler_scratch *s) {
    const float z[V] = {1.0f, 3.0f, NAN, 3.0f, -INFINITY, 0.5f, 2.0f, -1.0f};
    int32_t ids[BLURB_MAX_TOP_LOGPROBS];
    float lps[BLURB_MAX_TOP_LOGPROBS];
    CHECK(blurb_top_logprobs(z, V, 5, ids, lps) == 5);
    const int32_t want[5] = {1, 3, 6, 0, 5};
    long double S = 0;
    for (int i = 0; i < V; i++)
        if (i != 2 && i != 4) S += expl((long double)z[i] - 3.0L);
    for (int j = 0; j < 5; j++) {
        CHECKF(ids[j] == want[j], "top[%d] = %d, want %d", j, (int)ids[j], (int)want[j]);
        double ref = (double)((long double)z[want[j]] - 3.0L - logl(S));
        CHECKF(fabs((double)lps[j] - ref) < 1e-6, "top[%d] logprob %.9g, want %.9g", j, (double)lps[j], ref);
    }
    CHECK(lps[0] == lps[1] && lps[1] > lps[2] && lps[2] > lps[3] && lps[3] > lps[4]);
    /* The greedy draw is id 1 (ties to the lower id): the same float as top[0]. */
    blurb_sampling g = plain(0.0f, 1.0f);
    float lp = 0.0f;
    CHECK(blurb_sample_row(z, V, &g, NULL, 0, 0, 1, 0, s, &lp) == 1);
    CHECK(memcmp(&lp, &lps[0], sizeof lp) == 0);
    /* A sampled draw: its logprob is bit-equal to its entry in the full list. */
    blurb_sampling t = plain(1.0f, 1.0f);
    for (uint32_t step = 0; step < 16; step++) {
        int tok = blurb_sample_row(z, V, &t, NULL, 0, 0, 77, step, s, &lp);
        CHECK(tok != 2 && tok != 4);
        for (int j = 0; j < 5; j++)
            if (ids[j] == tok) CHECKF(memcmp(&lp, &lps[j], sizeof lp) == 0, "step %u token %d", step, tok);
    }
    /* k 0, k > V, and bad arguments. */
    CHECK(blurb_top_logprobs(z, V, 0, NULL, NULL) == 0);
    CHECK(blurb_top_logprobs(z, 3, 5, ids, lps) == 3 && ids[0] == 1 && ids[1] == 0 && ids[2] == 2);
    CHECK(lps[2] == -INFINITY); /* NaN reads as -inf */
    CHECK(blurb_top_logprobs(z, V, 6, ids, lps) == BLURB_E_INVALID);
    CHECK(blurb_top_logprobs(z, V, -1, ids, lps) == BLURB_E_INVALID);
    CHECK(blurb_top_logprobs(z, 0, 1, ids, lps) == BLURB_E_INVALID);
    CHECK(blurb_top_logprobs(z, V, 1, NULL, lps) == BLURB_E_INVALID);
    /* No distribution at all: NaN logprobs (written as null). */
    float dead[V];
    fill(dead, -INFINITY);
    CHECK(blurb_top_logprobs(dead, V, 2, ids, lps) == 2 && ids[0] == 0 && ids[1] == 1 && isnan(lps[0]));
    /* +inf logits share the mass: log(1/2) each, the rest -inf. */
    float inf2[V];
    fill(inf2, 0.0f);
    inf2[4] = inf2[6] = INFINITY;
    CHECK(blurb_top_logprobs(inf2, V, 3, ids, lps) == 3 && ids[0] == 4 && ids[1] == 6 && ids[2] == 0);
    CHECK(lps[0] == -logf(2.0f) && lps[1] == -logf(2.0f) && lps[2] == -INFINITY);
}

int main(void) {
    blurb_sampler_scratch *s = blurb_sampler_scratch_new(V);
    REQUIRE(s);
    test_logit_bias(s);
    test_presence_frequency(s);
    test_no_repeat();
    test_min_p(s);
    test_exclude(s);
    test_order(s);
    test_check();
    test_top_logprobs(s);
    blurb_sampler_scratch_free(s);
    return check_finish("test_sampler_controls");
}
