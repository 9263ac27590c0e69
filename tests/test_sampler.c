/* The sampling semantics of include/blurb/sampler.h: the exact cases of issue 4,
 * chi-square fits of the draw, determinism, EOS masking, the raw logprob, and
 * blurb_sample_row against a full-sort transcription of the documented
 * arithmetic (host/sampler_internal.h) on real GPT-2 logits. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../host/sampler_internal.h"
#include "blurb/sampler.h"
#include "check.h"

#define GOLD_ROWS 8
#define GOLD_V 50257

static blurb_sampling plain(float T, int top_k, float top_p) {
    blurb_sampling s = blurb_sampling_default();
    s.temperature = T;
    s.top_k = top_k;
    s.top_p = top_p;
    s.eos_token_id = -1;
    return s;
}

/* ---- an independent reference: the documented arithmetic with a full sort ---- */

typedef struct {
    int32_t id;
    float key;
} keyed;

static int by_key_desc_id_asc(const void *a, const void *b) {
    const keyed *x = a, *y = b;
    if (x->key != y->key) return x->key > y->key ? -1 : 1;
    return (x->id > y->id) - (x->id < y->id);
}

/* Returns the token for uniform u; writes the kept set in walk order. */
static int ref_sample(const float *logits, int V, const blurb_sampling *p, const int32_t *hist,
                      int nh, int n_gen, float u, int32_t *kept, int *n_kept, float *mass) {
    float *z = malloc((size_t)V * sizeof *z), *w = calloc((size_t)V, sizeof *w);
    keyed *ord = malloc((size_t)V * sizeof *ord);
    REQUIRE(z && w && ord);
    for (int i = 0; i < V; i++) z[i] = isnan(logits[i]) ? -INFINITY : logits[i];
    float r = p->repetition_penalty;
    for (int i = 0; i < nh && r != 1.0f; i++) {
        int t = hist[i], dup = 0;
        for (int j = 0; j < i; j++) dup |= hist[j] == t;
        if (t < 0 || t >= V || dup) continue;
        z[t] = z[t] > 0 ? z[t] / r : z[t] * r;
    }
    if (n_gen < p->min_new_tokens && p->eos_token_id >= 0 && p->eos_token_id < V)
        z[p->eos_token_id] = -INFINITY;
    int token;
    if (p->temperature == 0 || p->top_p <= 0) {
        token = 0;
        for (int i = 1; i < V; i++)
            if (z[i] > z[token]) token = i;
        kept[0] = token;
        *n_kept = 1;
        *mass = 1;
        goto done;
    }
    float m = -INFINITY;
    for (int i = 0; i < V; i++) {
        if (p->temperature != 1.0f) z[i] /= p->temperature;
        if (z[i] > m) m = z[i];
    }
    int n_surv = V;
    for (int i = 0; i < V; i++) ord[i] = (keyed){i, z[i]};
    if (p->top_k > 0 && p->top_k < V) {
        qsort(ord, (size_t)V, sizeof *ord, by_key_desc_id_asc);
        n_surv = p->top_k;
    }
    for (int j = 0; j < n_surv; j++) {
        w[ord[j].id] = blurb_sampler_expf(z[ord[j].id] - m);
        ord[j].key = w[ord[j].id];
    }
    float S = blurb_sampler_sum(w, V);
    qsort(ord, (size_t)n_surv, sizeof *ord, by_key_desc_id_asc);
    int n = n_surv;
    float M = S;
    if (p->top_p < 1.0f) {
        float c = 0, thr = p->top_p * S;
        for (int j = 0; j < n_surv; j++) {
            c += ord[j].key;
            if (c >= thr) {
                n = j + 1;
                break;
            }
        }
        M = c;
    }
    for (int j = 0; j < n; j++) kept[j] = ord[j].id;
    *n_kept = n;
    *mass = M;
    float t = u * M, c = 0;
    token = ord[n - 1].id;
    for (int j = 0; j < n; j++) {
        c += ord[j].key;
        if (c > t) {
            token = ord[j].id;
            break;
        }
    }
done:
    free(z);
    free(w);
    free(ord);
    return token;
}

/* ---- helpers ------------------------------------------------------------------ */

static float *load_golden(void) {
    const char *path = BLURB_TEST_DATA "/golden_last_logits.f32";
    FILE *f = fopen(path, "rb");
    REQUIRE(f != NULL);
    float *x = malloc(sizeof(float) * GOLD_ROWS * GOLD_V);
    REQUIRE(x != NULL);
    size_t got = fread(x, sizeof(float), (size_t)GOLD_ROWS * GOLD_V, f);
    fclose(f);
    REQUIRE(got == (size_t)GOLD_ROWS * GOLD_V);
    return x;
}

/* A flat, unrealistic row (N(0, 2) by Box-Muller over an LCG) where top-p keeps
 * thousands of tokens, so the heap path is exercised at depth. */
static void gaussian_row(float *x, int V, uint64_t seed) {
    for (int i = 0; i < V; i += 2) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        double u1 = ((seed >> 11) + 1.0) * 0x1p-53;
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        double u2 = (seed >> 11) * 0x1p-53;
        double rad = sqrt(-2 * log(u1));
        x[i] = (float)(2 * rad * cos(6.283185307179586 * u2));
        if (i + 1 < V) x[i + 1] = (float)(2 * rad * sin(6.283185307179586 * u2));
    }
}

static int kept_set(const float *logits, int V, const blurb_sampling *p, blurb_sampler_scratch *s,
                    int32_t *ids) {
    return blurb_sampler_kept(logits, V, p, NULL, 0, 0, s, ids, NULL, NULL);
}

static double chi_square(const long *obs, const double *prob, int n, long total) {
    double x = 0;
    for (int i = 0; i < n; i++) {
        double e = prob[i] * (double)total;
        x += (obs[i] - e) * (obs[i] - e) / e;
    }
    return x;
}

int main(void) {
    blurb_sampler_scratch *s4 = blurb_sampler_scratch_new(4);
    REQUIRE(s4 != NULL);
    const float p4[4] = {0.3f, 0.1f, 0.1f, 0.5f};
    float l4[4];
    for (int i = 0; i < 4; i++) l4[i] = logf(p4[i]);
    int32_t ids[GOLD_V];
    uint64_t key = blurb_stream_key(7, "issue-4", 7, 0);

    /* ---- issue 4: exact kept sets ---- */
    {
        blurb_sampling p = plain(1.0f, 0, 0.75f);
        int n = kept_set(l4, 4, &p, s4, ids);
        CHECKF(n == 2 && ids[0] == 3 && ids[1] == 0, "top-p 0.75 kept %d", n);
        p.top_p = 0.85f;
        n = kept_set(l4, 4, &p, s4, ids);
        CHECKF(n == 3 && ids[0] == 3 && ids[1] == 0 && ids[2] == 1, "top-p 0.85 kept %d", n);
        p.top_p = 1.0f;
        n = kept_set(l4, 4, &p, s4, ids);
        CHECK(n == 4 && ids[0] == 3 && ids[1] == 0 && ids[2] == 1 && ids[3] == 2);
        /* The draws agree with the kept sets: only kept ids, each of them seen. */
        const float tops[2] = {0.75f, 0.85f};
        for (int c = 0; c < 2; c++) {
            p.top_p = tops[c];
            long cnt[4] = {0}, bad = 0;
            for (uint32_t step = 0; step < 4000; step++) {
                int t = blurb_sample_row(l4, 4, &p, NULL, 0, 0, key, step, s4, NULL);
                if (t >= 0 && t < 4) cnt[t]++;
                else bad++;
            }
            CHECK(bad == 0);
            CHECK(cnt[3] > 0 && cnt[0] > 0 && cnt[2] == 0);
            CHECK(c == 0 ? cnt[1] == 0 : cnt[1] > 0);
        }
        /* Renormalised survivors: top-k 2 leaves {3: 0.625, 0: 0.375}. */
        p = plain(1.0f, 2, 0.6f);
        n = kept_set(l4, 4, &p, s4, ids);
        CHECK(n == 1 && ids[0] == 3);
        p.top_p = 0.7f;
        n = kept_set(l4, 4, &p, s4, ids);
        CHECK(n == 2 && ids[0] == 3 && ids[1] == 0);
        /* Temperature comes before top-p: at T 0.5, p ~ p^2, id 3 holds 0.694. */
        p = plain(1.0f, 0, 0.6f);
        n = kept_set(l4, 4, &p, s4, ids);
        CHECK(n == 2 && ids[0] == 3 && ids[1] == 0);
        p.temperature = 0.5f;
        n = kept_set(l4, 4, &p, s4, ids);
        CHECK(n == 1 && ids[0] == 3);
    }

    /* ---- greedy: top-p 0, temperature 0, ties to the lower id ---- */
    {
        blurb_sampling p = plain(0.0f, 0, 0.9f);
        blurb_sampling q = plain(1.0f, 0, 0.0f);
        int ok = 1;
        for (uint32_t step = 0; step < 200; step++) {
            ok &= blurb_sample_row(l4, 4, &p, NULL, 0, 0, key, step, s4, NULL) == 3;
            ok &= blurb_sample_row(l4, 4, &q, NULL, 0, 0, key, step, s4, NULL) == 3;
        }
        CHECK(ok);
        const float tie[4] = {1.0f, 5.0f, 5.0f, 2.0f};
        CHECK(blurb_sample_row(tie, 4, &p, NULL, 0, 0, key, 0, s4, NULL) == 1);
        CHECK(blurb_sample_row(tie, 4, &q, NULL, 0, 0, key, 0, s4, NULL) == 1);
        q.top_p = -1.0f;
        CHECK(blurb_sample_row(tie, 4, &q, NULL, 0, 0, key, 0, s4, NULL) == 1);
        /* top-k 1 is the argmax too, ties included. */
        blurb_sampling k1 = plain(1.0f, 1, 1.0f);
        CHECK(blurb_sample_row(tie, 4, &k1, NULL, 0, 0, key, 5, s4, NULL) == 1);
        int n = kept_set(tie, 4, &k1, s4, ids);
        CHECK(n == 1 && ids[0] == 1);
        /* -0 and +0 are equal logits: top-k 2 keeps id 0 with 5, not id 1. */
        const float zeros[3] = {-0.0f, 0.0f, 5.0f};
        blurb_sampler_scratch *s3 = blurb_sampler_scratch_new(3);
        REQUIRE(s3 != NULL);
        blurb_sampling k2 = plain(1.0f, 2, 1.0f);
        n = kept_set(zeros, 3, &k2, s3, ids);
        CHECK(n == 2 && ids[0] == 2 && ids[1] == 0);
        blurb_sampler_scratch_free(s3);
        /* Equal logits at temperature 1 are kept in id order. */
        blurb_sampling all = plain(1.0f, 0, 1.0f);
        n = kept_set(tie, 4, &all, s4, ids);
        CHECK(n == 4 && ids[0] == 1 && ids[1] == 2 && ids[2] == 3 && ids[3] == 0);
    }

    /* ---- repetition penalty ---- */
    {
        float z[4] = {-2.0f, 3.0f, 0.5f, 0.0f};
        const int32_t hist[6] = {0, 1, 0, 1, 99, -1}; /* repeats and out-of-range ids */
        blurb_sampler_penalize(z, 4, 1.5f, hist, 6, s4);
        CHECK(z[0] == -3.0f);
        CHECK(z[1] == 2.0f);
        CHECK(z[2] == 0.5f);
        CHECK(z[3] == 0.0f);
        /* Once per distinct token, through the draw: 3 / 1.5 = 2 > 1.5, whereas
         * twice would give 1.33 < 1.5. */
        const float two[2] = {3.0f, 1.5f};
        blurb_sampling g = plain(0.0f, 0, 1.0f);
        g.repetition_penalty = 1.5f;
        const int32_t h00[2] = {0, 0};
        CHECK(blurb_sample_row(two, 2, &g, h00, 2, 0, key, 0, s4, NULL) == 0);
        g.repetition_penalty = 2.5f; /* 3 / 2.5 = 1.2 < 1.5 */
        CHECK(blurb_sample_row(two, 2, &g, h00, 2, 0, key, 0, s4, NULL) == 1);
        /* A negative logit is multiplied: -1 * 3 = -3 < -2. */
        const float neg[2] = {-1.0f, -2.0f};
        g.repetition_penalty = 3.0f;
        CHECK(blurb_sample_row(neg, 2, &g, h00, 2, 0, key, 0, s4, NULL) == 1);
        CHECK(blurb_sample_row(neg, 2, &g, h00, 0, 0, key, 0, s4, NULL) == 0);
        /* The penalty also shapes the sampled set: id 3 drops from 0.5 to ~0.33. */
        blurb_sampling p = plain(1.0f, 0, 0.4f);
        const int32_t h3[1] = {3};
        CHECK(blurb_sampler_kept(l4, 4, &p, NULL, 0, 0, s4, ids, NULL, NULL) == 1);
        p.repetition_penalty = 4.0f; /* log 0.5 * 4: p(3) = 0.0625 relative to 0.3 */
        int n = blurb_sampler_kept(l4, 4, &p, h3, 1, 0, s4, ids, NULL, NULL);
        CHECK(n >= 1 && ids[0] == 0);
    }

    /* ---- min-new-tokens masks EOS ---- */
    {
        float le[8] = {0.1f, 0.2f, 0.3f, 0.1f, 0.0f, 6.0f, 0.2f, 0.4f}; /* EOS = 5 dominates */
        blurb_sampler_scratch *s8 = blurb_sampler_scratch_new(8);
        REQUIRE(s8 != NULL);
        blurb_sampling g = plain(0.0f, 0, 1.0f);
        g.eos_token_id = 5;
        g.min_new_tokens = 3;
        float lp;
        CHECK(blurb_sample_row(le, 8, &g, NULL, 0, 2, key, 2, s8, &lp) == 7);
        CHECK(blurb_sample_row(le, 8, &g, NULL, 0, 3, key, 3, s8, NULL) == 5);
        g.eos_token_id = -1; /* no EOS: nothing masked */
        CHECK(blurb_sample_row(le, 8, &g, NULL, 0, 0, key, 0, s8, NULL) == 5);
        blurb_sampling p = plain(1.0f, 0, 1.0f);
        p.eos_token_id = 5;
        p.min_new_tokens = 1000;
        int eos = 0, other = 0;
        for (uint32_t step = 0; step < 2000; step++)
            eos += blurb_sample_row(le, 8, &p, NULL, 0, (int)step % 1000, key, step, s8, NULL) == 5;
        CHECK(eos == 0);
        p.min_new_tokens = 0;
        for (uint32_t step = 0; step < 2000; step++)
            other += blurb_sample_row(le, 8, &p, NULL, 0, 5, key, step, s8, NULL) != 5;
        /* p(EOS) = e^6 / (e^6 + 7.8) = 0.981: some but few others in 2000. */
        CHECK(other > 0 && other < 100);
        blurb_sampler_scratch_free(s8);
    }

    /* ---- chi-square fits (Pearson), 100,000 draws from one stream ---- */
    {
        const double pr[10] = {0.25, 0.2, 0.15, 0.12, 0.1, 0.08, 0.05, 0.03, 0.015, 0.005};
        float lg[10];
        for (int i = 0; i < 10; i++) lg[i] = (float)log(pr[i]);
        blurb_sampler_scratch *s10 = blurb_sampler_scratch_new(10);
        REQUIRE(s10 != NULL);
        uint64_t k = blurb_stream_key(20240601, "chi-square", 10, 0);
        const long N = 100000;
        long obs[10] = {0}, bad = 0;
        blurb_sampling p = plain(1.0f, 0, 1.0f);
        for (long step = 0; step < N; step++) {
            int t = blurb_sample_row(lg, 10, &p, NULL, 0, 0, k, (uint32_t)step, s10, NULL);
            if (t >= 0 && t < 10) obs[t]++;
            else bad++;
        }
        REQUIRE(bad == 0);
        /* Upper 0.001 quantiles of chi-square: solved for x in
         * Q(df/2, x/2) = 0.001 with mpmath (gammainc, regularized, bisection);
         * df 9: 27.8771649, df 2: 13.8155106 (= 2 ln 1000). */
        double x9 = chi_square(obs, pr, 10, N);
        printf("chi-square, 10 tokens, no filters: %.3f (df 9, critical 27.877)\n", x9);
        CHECKF(x9 < 27.8771649, "statistic %f", x9);
        /* The same draws with top-k 3: only the top 3, renormalised. */
        long obs3[10] = {0};
        p.top_k = 3;
        for (long step = 0; step < N; step++) {
            int t = blurb_sample_row(lg, 10, &p, NULL, 0, 0, k, (uint32_t)step, s10, NULL);
            if (t >= 0 && t < 10) obs3[t]++;
            else bad++;
        }
        REQUIRE(bad == 0);
        long outside = 0;
        for (int i = 3; i < 10; i++) outside += obs3[i];
        CHECKF(outside == 0, "%ld draws outside the top 3", outside);
        const double pr3[3] = {0.25 / 0.6, 0.2 / 0.6, 0.15 / 0.6};
        double x2 = chi_square(obs3, pr3, 3, N);
        printf("chi-square, top-k 3: %.3f (df 2, critical 13.816)\n", x2);
        CHECKF(x2 < 13.8155106, "statistic %f", x2);
        /* A check that can fail: the top-k 3 counts do not fit the unfiltered
         * distribution's top 3 without renormalisation (0.25:0.2:0.15 vs 0.6). */
        const double wrong[3] = {0.25, 0.2, 0.15 + 0.4};
        CHECK(chi_square(obs3, wrong, 3, N) > 13.8155106);
        blurb_sampler_scratch_free(s10);
    }

    /* ---- real logits: against the full-sort reference, top-k 100000 == off ---- */
    {
        float *gold = load_golden();
        float *gauss = malloc(sizeof(float) * GOLD_V);
        REQUIRE(gauss != NULL);
        gaussian_row(gauss, GOLD_V, 12345);
        blurb_sampler_scratch *sv = blurb_sampler_scratch_new(GOLD_V);
        REQUIRE(sv != NULL);
        int32_t *ref_kept = malloc(sizeof(int32_t) * GOLD_V);
        REQUIRE(ref_kept != NULL);
        const int32_t hist[6] = {464, 13, 198, 464, 50256, 11};

        blurb_sampling cfg[6];
        cfg[0] = plain(0.8f, 0, 0.9f);
        cfg[1] = plain(1.0f, 0, 1.0f);
        cfg[2] = plain(0.7f, 50, 1.0f);
        cfg[3] = plain(1.3f, 200, 0.95f);
        cfg[3].repetition_penalty = 1.3f;
        cfg[3].eos_token_id = 50256;
        cfg[3].min_new_tokens = 5;
        cfg[4] = plain(0.8f, 0, 0.5f);
        cfg[5] = plain(0.0f, 0, 0.9f);
        cfg[5].repetition_penalty = 1.2f;
        int mismatch = 0, kept_mismatch = 0, calls = 0;
        for (int row = 0; row <= GOLD_ROWS; row++) {
            const float *lg = row < GOLD_ROWS ? gold + (size_t)row * GOLD_V : gauss;
            for (int c = 0; c < 6; c++) {
                uint64_t k = blurb_stream_key(99, "ref", 3, (uint32_t)(row * 10 + c));
                for (uint32_t step = 0; step < 4; step++) {
                    int nh = c >= 3 ? 6 : 0;
                    int ngen = (int)step * 2;
                    int n_ref;
                    float m_ref, m_got;
                    int want = ref_sample(lg, GOLD_V, &cfg[c], hist, nh, ngen,
                                          blurb_stream_uniform(k, step), ref_kept, &n_ref, &m_ref);
                    int got = blurb_sample_row(lg, GOLD_V, &cfg[c], hist, nh, ngen, k, step, sv,
                                               NULL);
                    calls++;
                    if (got != want) {
                        mismatch++;
                        fprintf(stderr, "row %d cfg %d step %u: got %d, reference %d\n", row, c,
                                step, got, want);
                    }
                    if (step == 0) {
                        int n = blurb_sampler_kept(lg, GOLD_V, &cfg[c], hist, nh, ngen, sv, ids,
                                                   NULL, &m_got);
                        if (n != n_ref || m_got != m_ref ||
                            memcmp(ids, ref_kept, sizeof(int32_t) * (size_t)n) != 0) {
                            kept_mismatch++;
                            fprintf(stderr, "row %d cfg %d: kept %d (mass %g), reference %d (%g)\n",
                                    row, c, n, (double)m_got, n_ref, (double)m_ref);
                        }
                    }
                }
            }
        }
        printf("reference comparison: %d draws, %d mismatches, %d kept-set mismatches\n", calls,
               mismatch, kept_mismatch);
        CHECK(mismatch == 0);
        CHECK(kept_mismatch == 0);

        /* The greedy token of each golden row is the reference's top-1 (golden.json
         * last_logits_top10[0] for prompt 0 is checked by value below). */
        blurb_sampling g = plain(0.0f, 0, 1.0f);
        int g0 = blurb_sample_row(gold, GOLD_V, &g, NULL, 0, 0, key, 0, sv, NULL);
        int am = 0;
        for (int i = 1; i < GOLD_V; i++)
            if (gold[i] > gold[am]) am = i;
        CHECK(g0 == am);

        /* top-k 100000 (clamped: off) and top-k V give the same tokens as top-k 0. */
        int same = 1;
        for (int row = 0; row < GOLD_ROWS; row++) {
            const float *lg = gold + (size_t)row * GOLD_V;
            uint64_t k = blurb_stream_key(5, "topk", 4, (uint32_t)row);
            for (int c = 0; c < 2; c++) {
                blurb_sampling off = plain(0.8f, 0, c ? 1.0f : 0.9f);
                blurb_sampling big = off, vk = off;
                big.top_k = 100000;
                vk.top_k = GOLD_V;
                for (uint32_t step = 0; step < 25; step++) {
                    int a = blurb_sample_row(lg, GOLD_V, &off, NULL, 0, 0, k, step, sv, NULL);
                    int b = blurb_sample_row(lg, GOLD_V, &big, NULL, 0, 0, k, step, sv, NULL);
                    int d = blurb_sample_row(lg, GOLD_V, &vk, NULL, 0, 0, k, step, sv, NULL);
                    same &= a == b && a == d;
                }
            }
        }
        CHECK(same);
        /* ... whereas a real top-k changes some draws (the comparison can fail). */
        {
            blurb_sampling off = plain(1.5f, 0, 1.0f), k2 = off;
            k2.top_k = 2;
            int differ = 0;
            for (uint32_t step = 0; step < 30; step++)
                differ += blurb_sample_row(gold, GOLD_V, &off, NULL, 0, 0, key, step, sv, NULL) !=
                          blurb_sample_row(gold, GOLD_V, &k2, NULL, 0, 0, key, step, sv, NULL);
            CHECK(differ > 0);
        }

        /* ---- logprob: log-softmax of the raw logits, whatever the filters ---- */
        {
            const float *lg = gold + GOLD_V;
            double mx = -INFINITY, sum = 0;
            for (int i = 0; i < GOLD_V; i++) mx = lg[i] > mx ? lg[i] : mx;
            for (int i = 0; i < GOLD_V; i++) sum += exp(lg[i] - mx);
            double lse = mx + log(sum);
            double worst = 0;
            for (int c = 0; c < 6; c++) {
                for (uint32_t step = 0; step < 5; step++) {
                    float lp = 1.0f;
                    int t = blurb_sample_row(lg, GOLD_V, &cfg[c], hist, c >= 3 ? 6 : 0,
                                             (int)step, key, step, sv, &lp);
                    double d = fabs(lp - (lg[t] - lse));
                    worst = d > worst ? d : worst;
                }
            }
            CHECKF(worst < 1e-5, "worst logprob error %g", worst);
            float lp;
            const float half[2] = {0.0f, 0.0f};
            blurb_sampling p = plain(1.0f, 0, 1.0f);
            blurb_sample_row(half, 2, &p, NULL, 0, 0, key, 0, s4, &lp);
            CHECK(fabsf(lp - logf(0.5f)) < 1e-6f);
            /* At temperature 0.1 and under a penalty the logprob is still raw. */
            p = plain(0.1f, 0, 1.0f);
            p.repetition_penalty = 2.0f;
            const int32_t h3[1] = {3};
            int t = blurb_sample_row(l4, 4, &p, h3, 1, 0, key, 0, s4, &lp);
            CHECK(fabsf(lp - logf(p4[t])) < 1e-6f);
        }

        /* ---- determinism: the draw depends only on (key, step) ---- */
        {
            blurb_sampler_scratch *other = blurb_sampler_scratch_new(GOLD_V);
            REQUIRE(other != NULL);
            blurb_sampling p = blurb_sampling_default();
            uint64_t ka = blurb_stream_key(0, "A-1", 3, 0), kb = blurb_stream_key(0, "A-1", 3, 1);
            int first[20], ok = 1, differs = 0;
            for (uint32_t step = 0; step < 20; step++)
                first[step] = blurb_sample_row(gold + 2 * GOLD_V, GOLD_V, &p, NULL, 0, 0, ka,
                                               step, sv, NULL);
            /* Replay in reverse order, interleaved with another stream and another
             * row, on another scratch. */
            for (int step = 19; step >= 0; step--) {
                blurb_sample_row(gold + 3 * GOLD_V, GOLD_V, &p, NULL, 0, 0, kb, (uint32_t)step,
                                 other, NULL);
                ok &= first[step] == blurb_sample_row(gold + 2 * GOLD_V, GOLD_V, &p, NULL, 0, 0,
                                                      ka, (uint32_t)step, other, NULL);
                differs += first[step] != blurb_sample_row(gold + 2 * GOLD_V, GOLD_V, &p, NULL,
                                                           0, 0, kb, (uint32_t)step, sv, NULL);
            }
            CHECK(ok);
            CHECK(differs > 0); /* another sample index is another stream */
            blurb_sampler_scratch_free(other);
        }
        free(ref_kept);
        blurb_sampler_scratch_free(sv);
        free(gauss);
        free(gold);
    }

    /* ---- edge cases: odd values never crash and never leave the vocabulary ---- */
    {
        blurb_sampling p = plain(1.0f, 0, 0.9f);
        const float nan4[4] = {NAN, 1.0f, NAN, 0.5f};
        int ok = 1;
        for (uint32_t step = 0; step < 100; step++) {
            int t = blurb_sample_row(nan4, 4, &p, NULL, 0, 0, key, step, s4, NULL);
            ok &= t == 1 || t == 3;
        }
        CHECK(ok);
        const float inf4[4] = {1.0f, INFINITY, 2.0f, INFINITY};
        CHECK(blurb_sample_row(inf4, 4, &p, NULL, 0, 0, key, 0, s4, NULL) == 1);
        const float ninf4[4] = {-INFINITY, -INFINITY, -INFINITY, -INFINITY};
        float lp;
        CHECK(blurb_sample_row(ninf4, 4, &p, NULL, 0, 0, key, 0, s4, &lp) == 0);
        CHECK(isnan(lp));
        /* A one-token vocabulary whose only token is a masked EOS. */
        blurb_sampling e = plain(1.0f, 0, 0.9f);
        e.eos_token_id = 0;
        e.min_new_tokens = 1;
        const float one[1] = {0.0f};
        CHECK(blurb_sample_row(one, 1, &e, NULL, 0, 0, key, 0, s4, NULL) == 0);
        /* Huge logits divided by a small temperature overflow to inf: greedy. */
        const float big[3] = {3e38f, -1.0f, 3.2e38f};
        blurb_sampling cold = plain(0.01f, 0, 0.9f);
        CHECK(blurb_sample_row(big, 3, &cold, NULL, 0, 0, key, 0, s4, NULL) == 0);
        /* Misuse: scratch too small, NULL pointers. */
        float five[5] = {0};
        CHECK(blurb_sample_row(five, 5, &p, NULL, 0, 0, key, 0, s4, NULL) == BLURB_E_INVALID);
        CHECK(blurb_sample_row(NULL, 4, &p, NULL, 0, 0, key, 0, s4, NULL) == BLURB_E_INVALID);
        CHECK(blurb_sample_row(l4, 4, &p, NULL, 0, 0, key, 0, NULL, NULL) == BLURB_E_INVALID);
        CHECK(blurb_sampler_scratch_new(0) == NULL);
        /* A history with ids past the vocabulary is ignored. */
        const int32_t bad[3] = {-5, 4, 1 << 30};
        blurb_sampling g = plain(0.0f, 0, 1.0f);
        g.repetition_penalty = 10.0f;
        CHECK(blurb_sample_row(l4, 4, &g, bad, 3, 0, key, 0, s4, NULL) == 3);
    }

    /* ---- the fixed-arithmetic primitives ---- */
    {
        CHECK(blurb_sampler_expf(0.0f) == 1.0f);
        CHECK(blurb_sampler_expf(-INFINITY) == 0.0f);
        CHECK(blurb_sampler_expf(NAN) == 0.0f);
        CHECK(blurb_sampler_expf(-86.5f) == 0.0f);
        double worst = 0;
        for (int i = 0; i <= 860000; i++) {
            float x = -0.0001f * (float)i;
            double want = exp((double)x), got = blurb_sampler_expf(x);
            double rel = fabs(got - want) / want;
            worst = rel > worst ? rel : worst;
        }
        CHECKF(worst < 4e-7, "expf worst relative error %g", worst);
        /* The summation order is the 256-lane tree: 2^24 in lane 0, ones in lanes
         * 1 and 3 meet each other (2) before 2^24, so nothing is lost; a running
         * sum would round each 1 away (2^24 + 1 ties to 2^24). */
        float x[300] = {0};
        x[0] = 16777216.0f;
        x[1] = 1.0f;
        x[3] = 1.0f;
        CHECK(blurb_sampler_sum(x, 300) == 16777218.0f);
        x[1] = 0.0f;
        x[3] = 0.0f;
        x[256] = 1.0f; /* same lane as 2^24, added after it: rounded away */
        x[257] = 1.0f;
        CHECK(blurb_sampler_sum(x, 300) == 16777216.0f + 0.0f);
        /* Short rows fold only their lanes, in the same order. */
        const float four[4] = {16777216.0f, 1.0f, 0.0f, 1.0f};
        CHECK(blurb_sampler_sum(four, 4) == 16777218.0f);
        const float three[3] = {16777216.0f, 1.0f, 1.0f};
        CHECK(blurb_sampler_sum(three, 3) == 16777216.0f);
        float ones[1000];
        for (int i = 0; i < 1000; i++) ones[i] = 1.0f;
        CHECK(blurb_sampler_sum(ones, 1000) == 1000.0f);
        CHECK(blurb_sampler_sum(ones, 0) == 0.0f);
    }

    /* ---- options ---- */
    {
        blurb_sampling d = blurb_sampling_default();
        CHECK(d.temperature == 0.8f && d.top_k == 0 && d.top_p == 0.9f);
        CHECK(d.repetition_penalty == 1.0f && d.min_new_tokens == 0 && d.eos_token_id == 50256);
        blurb_err err;
        blurb_err_clear(&err);
        CHECK(blurb_sampling_check(&d, &err) == 0);
        blurb_sampling b = d;
        b.temperature = -0.1f;
        CHECK(blurb_sampling_check(&b, &err) == BLURB_E_INVALID && strstr(err.msg, "temperature"));
        b = d;
        b.temperature = INFINITY;
        CHECK(blurb_sampling_check(&b, &err) == BLURB_E_INVALID && strstr(err.msg, "temperature"));
        b = d;
        b.top_k = -1;
        CHECK(blurb_sampling_check(&b, &err) == BLURB_E_INVALID && strstr(err.msg, "top-k"));
        b = d;
        b.top_p = NAN;
        CHECK(blurb_sampling_check(&b, &err) == BLURB_E_INVALID && strstr(err.msg, "top-p"));
        b = d;
        b.repetition_penalty = 0.0f;
        CHECK(blurb_sampling_check(&b, &err) == BLURB_E_INVALID &&
              strstr(err.msg, "repetition penalty"));
        b = d;
        b.min_new_tokens = -2;
        CHECK(blurb_sampling_check(&b, &err) == BLURB_E_INVALID &&
              strstr(err.msg, "min-new-tokens"));
        b = d;
        b.temperature = 0.0f;
        b.top_p = 0.0f;
        b.top_k = 100000;
        b.eos_token_id = -1;
        CHECK(blurb_sampling_check(&b, &err) == 0);
        CHECK(blurb_sampling_check(NULL, &err) == BLURB_E_INVALID);
    }

    blurb_sampler_scratch_free(s4);
    return check_finish("sampler");
}
