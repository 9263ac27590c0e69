/* The reference sampler: the semantics of include/blurb/sampler.h, with the
 * exact fp32 arithmetic spelled out in host/sampler_internal.h so that other
 * backends can reproduce its draws bit for bit. */
#include "blurb/sampler.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sampler_internal.h"

struct blurb_sampler_scratch {
    int vocab_size;
    float *z;        /* [V] processed logits; later the raw exps for logprob */
    float *w;        /* [V] unnormalised probabilities, 0 outside top-k */
    int32_t *ids;    /* [V] top-k survivors */
    uint64_t *heap;  /* [V] packed (value, id) heap entries */
    int32_t *kept;   /* [V] popped ids, in walk order */
    float *cum;      /* [V] running sums C_j at each popped id */
    uint32_t *mark;  /* [V] history stamp: penalise each distinct id once */
    uint32_t *block_max; /* [V / 256 + 1] bits of the largest w per 256 ids */
    int32_t *count;  /* [V] generated-token counts for presence/frequency */
    uint32_t stamp;
};

blurb_sampling blurb_sampling_default(void) {
    blurb_sampling s;
    s.temperature = 0.8f;
    s.top_k = 0;
    s.top_p = 0.9f;
    s.repetition_penalty = 1.0f;
    s.min_new_tokens = 0;
    s.eos_token_id = 50256; /* GPT-2 <|endoftext|> */
    s.logit_bias = NULL;
    s.n_logit_bias = 0;
    s.presence_penalty = 0.0f;
    s.frequency_penalty = 0.0f;
    s.min_p = 0.0f;
    s.no_repeat_ngram_size = 0;
    s.exclude = NULL;
    s.n_exclude = 0;
    return s;
}

int blurb_sampling_check(const blurb_sampling *s, blurb_err *err) {
    if (!s) return blurb_seterr(err, BLURB_E_INVALID, "sampling options missing");
    if (!isfinite(s->temperature) || s->temperature < 0)
        return blurb_seterr(err, BLURB_E_INVALID,
                            "temperature must be a finite number >= 0 (got %g)",
                            (double)s->temperature);
    if (s->top_k < 0)
        return blurb_seterr(err, BLURB_E_INVALID, "top-k must be >= 0 (got %d)", s->top_k);
    if (!isfinite(s->top_p))
        return blurb_seterr(err, BLURB_E_INVALID, "top-p must be a finite number (got %g)",
                            (double)s->top_p);
    if (!isfinite(s->repetition_penalty) || !(s->repetition_penalty > 0))
        return blurb_seterr(err, BLURB_E_INVALID,
                            "repetition penalty must be a finite number > 0 (got %g)",
                            (double)s->repetition_penalty);
    if (s->min_new_tokens < 0)
        return blurb_seterr(err, BLURB_E_INVALID, "min-new-tokens must be >= 0 (got %d)",
                            s->min_new_tokens);
    if (s->n_logit_bias < 0 || (s->n_logit_bias > 0 && !s->logit_bias))
        return blurb_seterr(err, BLURB_E_INVALID, "logit bias: bad list (%d entries)", s->n_logit_bias);
    for (int i = 0; i < s->n_logit_bias; i++) {
        if (s->logit_bias[i].id < 0)
            return blurb_seterr(err, BLURB_E_INVALID, "logit bias: token id %d is negative",
                                (int)s->logit_bias[i].id);
        if (!isfinite(s->logit_bias[i].bias))
            return blurb_seterr(err, BLURB_E_INVALID, "logit bias of token %d must be finite",
                                (int)s->logit_bias[i].id);
    }
    if (!isfinite(s->presence_penalty))
        return blurb_seterr(err, BLURB_E_INVALID, "presence penalty must be a finite number");
    if (!isfinite(s->frequency_penalty))
        return blurb_seterr(err, BLURB_E_INVALID, "frequency penalty must be a finite number");
    if (!(s->min_p >= 0 && s->min_p <= 1))
        return blurb_seterr(err, BLURB_E_INVALID, "min-p must be a number in [0, 1] (got %g)",
                            (double)s->min_p);
    if (s->no_repeat_ngram_size < 0)
        return blurb_seterr(err, BLURB_E_INVALID, "no-repeat-ngram-size must be >= 0 (got %d)",
                            s->no_repeat_ngram_size);
    if (s->n_exclude < 0 || (s->n_exclude > 0 && !s->exclude))
        return blurb_seterr(err, BLURB_E_INVALID, "bad token exclusion list (%d ids)", s->n_exclude);
    return 0;
}

int blurb_sampling_uses_extended(const blurb_sampling *s) {
    return s && (s->n_logit_bias > 0 || s->presence_penalty != 0 || s->frequency_penalty != 0 ||
                 s->min_p > 0 || s->no_repeat_ngram_size > 0 || s->n_exclude > 0);
}

blurb_sampler_scratch *blurb_sampler_scratch_new(int vocab_size) {
    if (vocab_size <= 0 || vocab_size > (1 << 30)) return NULL; /* keeps id arithmetic in int */
    blurb_sampler_scratch *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    size_t n = (size_t)vocab_size;
    s->vocab_size = vocab_size;
    s->z = malloc(n * sizeof *s->z);
    s->w = malloc(n * sizeof *s->w);
    s->ids = malloc(n * sizeof *s->ids);
    s->heap = malloc(n * sizeof *s->heap);
    s->kept = malloc(n * sizeof *s->kept);
    s->cum = malloc(n * sizeof *s->cum);
    s->mark = calloc(n, sizeof *s->mark);
    s->block_max = malloc((n / 256 + 1) * sizeof *s->block_max);
    s->count = calloc(n, sizeof *s->count);
    if (!s->z || !s->w || !s->ids || !s->heap || !s->kept || !s->cum || !s->mark || !s->block_max ||
        !s->count) {
        blurb_sampler_scratch_free(s);
        return NULL;
    }
    return s;
}

void blurb_sampler_scratch_free(blurb_sampler_scratch *s) {
    if (!s) return;
    free(s->z);
    free(s->w);
    free(s->ids);
    free(s->heap);
    free(s->kept);
    free(s->cum);
    free(s->mark);
    free(s->block_max);
    free(s->count);
    free(s);
}

/* ---- fixed-arithmetic building blocks ------------------------------------ */

static inline float fixed_expf(float x) {
    /* Below -86 the result would be under 2^-124 and the scale 2^k near the
     * subnormal range; 0 there keeps every path in normal numbers. The range
     * tests work on the bits, because float compares that may trap on NaN keep
     * gcc from vectorising the loops that call this. */
    uint32_t xb;
    memcpy(&xb, &x, sizeof xb);
    uint32_t ab = xb & 0x7fffffffu, neg = xb >> 31;
    /* under: x < -86, -inf or NaN (0x42ac0000 is 86.0f, 0x7f800000 inf). */
    uint32_t under = (uint32_t)(ab > 0x42ac0000u) & (neg | (uint32_t)(ab > 0x7f800000u));
    uint32_t m_under = 0u - under, m_neg = 0u - neg;
    /* x > 0 is read as 0; x < -86 as -86 (0xc2ac0000), its result dropped below. */
    uint32_t cb = (xb & m_neg & ~m_under) | (0xc2ac0000u & m_under);
    float xc;
    memcpy(&xc, &cb, sizeof xc);
    /* k = round-to-nearest(x / ln 2) by the 1.5 * 2^23 shifter: plain adds. */
    const float shifter = 0x1.8p23f;
    float kf = (xc * 1.44269504088896341f + shifter) - shifter;
    /* Cody-Waite: ln2_hi has 9 significant bits, so kf * ln2_hi is exact. */
    float r = (xc - kf * 0.693359375f) - kf * -2.12194440e-4f;
    float p = 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    int32_t k = (int32_t)kf; /* in [-124, 0] */
    uint32_t bits = (uint32_t)(k + 127) << 23;
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    float y = p * scale;
    uint32_t yb;
    memcpy(&yb, &y, sizeof yb);
    yb &= ~m_under;
    memcpy(&y, &yb, sizeof y);
    return y;
}

float blurb_sampler_expf(float x) { return fixed_expf(x); }

/* The halving tree over lanes [0, width); lanes past width are zero and are
 * neither read nor added (adding +0 to a lane, never -0 here, changes no bit),
 * which spares short rows the full 256-lane cost. */
static float tree_fold(float *lane, int width) {
    for (int s = 128; s > 0; s >>= 1) {
        int lim = width - s < s ? width - s : s;
        for (int l = 0; l < lim; l++) lane[l] += lane[l + s];
        if (width > s) width = s;
    }
    return lane[0];
}

static inline int lane_width(int n) { return n < 256 ? (n > 0 ? n : 1) : 256; }

float blurb_sampler_sum(const float *x, int n) {
    /* The order is part of the contract (see sampler_internal.h): it matches a
     * 256-thread CUDA block, strided loads, then a shared-memory tree. */
    float lane[256];
    int width = lane_width(n);
    for (int l = 0; l < width; l++) lane[l] = 0.0f;
    int i = 0;
    for (; n - i >= 256; i += 256)
        for (int l = 0; l < 256; l++) lane[l] += x[i + l];
    for (int l = 0; i + l < n; l++) lane[l] += x[i + l];
    return tree_fold(lane, width);
}

void blurb_sampler_penalize(float *z, int vocab_size, float penalty, const int32_t *history,
                            int n_history, blurb_sampler_scratch *s) {
    if (!z || !s || !history || n_history <= 0 || vocab_size > s->vocab_size) return;
    /* A fresh stamp marks "seen in this call" without clearing V entries per call. */
    if (++s->stamp == 0) {
        memset(s->mark, 0, (size_t)s->vocab_size * sizeof *s->mark);
        s->stamp = 1;
    }
    for (int i = 0; i < n_history; i++) {
        int32_t t = history[i];
        if (t < 0 || t >= vocab_size || s->mark[t] == s->stamp) continue;
        s->mark[t] = s->stamp;
        float v = z[t];
        z[t] = v > 0 ? v / penalty : v * penalty;
    }
}

void blurb_sampler_logit_bias(float *z, int vocab_size, const blurb_logit_bias *bias, int n_bias) {
    for (int i = 0; bias && i < n_bias; i++)
        if (bias[i].id >= 0 && bias[i].id < vocab_size) z[bias[i].id] += bias[i].bias;
}

void blurb_sampler_presence_frequency(float *z, int vocab_size, float presence, float frequency,
                                      const int32_t *generated, int n_generated,
                                      blurb_sampler_scratch *s) {
    if (!z || !s || !generated || n_generated <= 0 || vocab_size > s->vocab_size) return;
    /* count[] is all zero between calls: the second pass applies each distinct
     * token once and zeroes its count again, so no O(V) clear is needed. */
    for (int i = 0; i < n_generated; i++) {
        int32_t t = generated[i];
        if (t >= 0 && t < vocab_size) s->count[t]++;
    }
    for (int i = 0; i < n_generated; i++) {
        int32_t t = generated[i];
        if (t < 0 || t >= vocab_size || s->count[t] == 0) continue;
        float c = (float)s->count[t];
        z[t] = z[t] - (presence + frequency * c);
        s->count[t] = 0;
    }
}

void blurb_sampler_no_repeat_ngram(float *z, int vocab_size, int n, const int32_t *history,
                                   int n_history) {
    if (!z || !history || n <= 0 || n_history < n - 1) return;
    /* An n-gram history[i .. i+n) is banned-completing when its first n - 1
     * tokens equal the last n - 1 of the history; then history[i + n - 1] is
     * banned. i + n - 1 < n_history, so the n-gram lies wholly in the history. */
    const int32_t *tail = history + n_history - (n - 1);
    for (int i = 0; i + n - 1 < n_history; i++) {
        if (n > 1 && memcmp(history + i, tail, (size_t)(n - 1) * sizeof *history) != 0) continue;
        int32_t t = history[i + n - 1];
        if (t >= 0 && t < vocab_size) z[t] = -INFINITY;
    }
}

/* ---- passes over the vocabulary -------------------------------------------- */

/* The long passes get an AVX2 clone next to the baseline one, picked at load
 * time: about twice as fast, and bit-identical, because AVX2 (unlike the FMA
 * extension, which is not enabled here) only widens the same IEEE single
 * operations; -std=c11 keeps gcc from contracting a * b + c in either clone. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__SANITIZE_ADDRESS__)
#define VEC_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define VEC_CLONES
#endif

/* Floats as int32 in the same order (for non-NaN values; -0 just below +0):
 * integer max vectorises where a float compare that may trap on NaN does not. */
static inline int32_t order_key(float f) {
    int32_t b;
    memcpy(&b, &f, sizeof b);
    return b ^ ((b >> 31) & 0x7fffffff);
}

static inline float from_order_key(int32_t k) {
    int32_t b = k ^ ((k >> 31) & 0x7fffffff);
    float f;
    memcpy(&f, &b, sizeof f);
    return f;
}

static float fold_max(const int32_t lane[8]) {
    int32_t m = lane[0];
    for (int l = 1; l < 8; l++) m = lane[l] > m ? lane[l] : m;
    return from_order_key(m);
}

/* Max of x [n], which holds no NaN (-inf when n == 0). */
VEC_CLONES static float max_of(const float *x, int n) {
    int32_t lane[8];
    for (int l = 0; l < 8; l++) lane[l] = order_key(-INFINITY);
    int i = 0;
    for (; n - i >= 8; i += 8)
        for (int l = 0; l < 8; l++) {
            int32_t k = order_key(x[i + l]);
            lane[l] = k > lane[l] ? k : lane[l];
        }
    for (; i < n; i++) {
        int32_t k = order_key(x[i]);
        lane[0] = k > lane[0] ? k : lane[0];
    }
    return fold_max(lane);
}

/* Lowest id holding the maximum of z [n] (z holds no NaN). */
static int argmax_lowest(const float *z, int n) {
    float m = max_of(z, n);
    for (int i = 0; i < n; i++)
        if (z[i] == m) return i;
    return 0;
}

/* z = logits with NaN read as -inf; returns the max (the raw max, for logprob). */
VEC_CLONES static float clean_copy(const float *logits, float *z, int n) {
    int32_t lane[8];
    for (int l = 0; l < 8; l++) lane[l] = order_key(-INFINITY);
    int i = 0;
    for (; n - i >= 8; i += 8)
        for (int l = 0; l < 8; l++) {
            float v = logits[i + l];
            v = v != v ? -INFINITY : v;
            z[i + l] = v;
            int32_t k = order_key(v);
            lane[l] = k > lane[l] ? k : lane[l];
        }
    for (; i < n; i++) {
        float v = logits[i];
        v = v != v ? -INFINITY : v;
        z[i] = v;
        int32_t k = order_key(v);
        lane[0] = k > lane[0] ? k : lane[0];
    }
    return fold_max(lane);
}

/* Sum of exp(x - shift) over x [n], in blurb_sampler_sum's order, no store. */
VEC_CLONES static float exp_sum(const float *x, int n, float shift) {
    float lane[256];
    int width = lane_width(n);
    for (int l = 0; l < width; l++) lane[l] = 0.0f;
    int i = 0;
    for (; n - i >= 256; i += 256)
        for (int l = 0; l < 256; l++) lane[l] += fixed_expf(x[i + l] - shift);
    for (int l = 0; i + l < n; l++) lane[l] += fixed_expf(x[i + l] - shift);
    return tree_fold(lane, width);
}

/* Prefilter levels: the mass of the tokens with w >= 2^-8, 2^-12, 2^-18. On
 * real GPT-2 rows the first two already hold 80-99% of the mass in a few
 * dozen to a few hundred tokens. */
#define N_LEVELS 3
static const float level_tau[N_LEVELS] = {0x1p-8f, 0x1p-12f, 0x1p-18f};

/* w = exp(z - m) over [n]; returns S in blurb_sampler_sum's order, the level
 * masses (fp32, any order: only bounded, never compared exactly) and, per
 * block of 256 ids, the largest w's bits (w >= 0, so bits order like values)
 * so that collecting the tokens above a level can skip whole blocks. */
VEC_CLONES static float weights_all(const float *z, int n, float m, float *w, float level_mass[N_LEVELS],
                         uint32_t *block_max) {
    float lane[256], la[256], lb[256], lc[256];
    int width = lane_width(n);
    for (int l = 0; l < width; l++) lane[l] = la[l] = lb[l] = lc[l] = 0.0f;
    const float ta = level_tau[0], tb = level_tau[1], tc = level_tau[2];
    for (int i = 0; i < n; i += 256) {
        int len = n - i < 256 ? n - i : 256; /* the last block may be short */
        uint32_t bm = 0;
        for (int l = 0; l < len; l++) {
            float v = fixed_expf(z[i + l] - m);
            w[i + l] = v;
            lane[l] += v;
            la[l] += v >= ta ? v : 0.0f;
            lb[l] += v >= tb ? v : 0.0f;
            lc[l] += v >= tc ? v : 0.0f;
            uint32_t b;
            memcpy(&b, &v, sizeof b);
            bm = b > bm ? b : bm;
        }
        block_max[i / 256] = bm;
    }
    level_mass[0] = tree_fold(la, width);
    level_mass[1] = tree_fold(lb, width);
    level_mass[2] = tree_fold(lc, width);
    return tree_fold(lane, width);
}

/* ---- heaps ------------------------------------------------------------------ */

/* Heap entries pack (value, id) in one integer whose order is the order wanted:
 * the value's order bits on top, ~id below so that on equal values the lower
 * id ranks higher. One compare, no indirection into w or z. */
static inline uint64_t pack(uint32_t value_order, int32_t id) {
    return ((uint64_t)value_order << 32) | (uint32_t)~(uint32_t)id;
}

static inline int32_t unpack_id(uint64_t key) { return (int32_t)~(uint32_t)key; }

/* w >= 0: its bits already order like its value. */
static inline uint64_t walk_key(float w, int32_t id) {
    uint32_t b;
    memcpy(&b, &w, sizeof b);
    return pack(b, id);
}

static void heap_sift(uint64_t *h, size_t n, size_t i) {
    uint64_t x = h[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && h[c + 1] > h[c]) c++;
        if (h[c] <= x) break;
        h[i] = h[c];
        i = c;
    }
    h[i] = x;
}

static void heap_build(uint64_t *h, size_t n) {
    for (size_t i = n / 2; i-- > 0;) heap_sift(h, n, i);
}

/* Removes and returns the largest key of a max-heap of n > 0 entries. */
static uint64_t heap_pop(uint64_t *h, size_t *n) {
    uint64_t top = h[0];
    if (--*n > 0) {
        h[0] = h[*n];
        heap_sift(h, *n, 0);
    }
    return top;
}

/* The k largest of z [V] (ties: the lower id) into ids[0..k), O(V log k) at
 * worst. A max-heap of inverted keys keeps the weakest of the k at its root;
 * ids arrive in increasing order, so a newcomer equal in z is the weaker. */
static inline uint64_t topk_inv_key(float z, int32_t id) {
    /* + 0.0f turns -0 into +0: they are equal logits, so the id decides. */
    return ~pack((uint32_t)order_key(z + 0.0f) ^ 0x80000000u, id);
}

static void topk_select(const float *z, int V, int k, uint64_t *h, int32_t *ids) {
    for (int i = 0; i < k; i++) h[i] = topk_inv_key(z[i], i);
    heap_build(h, (size_t)k);
    float weakest = z[unpack_id(~h[0])]; /* most tokens fail this one compare */
    for (int i = k; i < V; i++) {
        if (z[i] > weakest) {
            h[0] = topk_inv_key(z[i], i);
            heap_sift(h, (size_t)k, 0);
            weakest = z[unpack_id(~h[0])];
        }
    }
    for (int i = 0; i < k; i++) ids[i] = unpack_id(~h[i]);
}

/* ---- the one sampling path -------------------------------------------------- */

enum { MODE_DRAW, MODE_LIST };

typedef struct {
    int token;     /* the draw (MODE_DRAW) */
    int greedy;    /* argmax taken; kept/cum not filled */
    size_t n_kept; /* MODE_LIST, and MODE_DRAW with top-p: s->kept/s->cum [0..n_kept) */
    float mass;    /* M */
    float raw_max; /* max of the NaN-cleaned raw logits */
    float raw_sum; /* sum of exp(raw - raw_max) when it came for free, else -1 */
} core_result;

static void core(const float *logits, int V, const blurb_sampling *p, const int32_t *history,
                 int n_history, int n_generated, float u, blurb_sampler_scratch *s, int mode,
                 core_result *res) {
    float *z = s->z, *w = s->w;
    memset(res, 0, sizeof *res);
    res->raw_sum = -1.0f;

    /* Steps 0-2. */
    res->raw_max = clean_copy(logits, z, V);
    int touched = 0; /* z differs from the cleaned logits */
    if (p->logit_bias && p->n_logit_bias > 0) {
        blurb_sampler_logit_bias(z, V, p->logit_bias, p->n_logit_bias);
        touched = 1;
    }
    float r = p->repetition_penalty;
    if (r > 0 && r != 1.0f && isfinite(r) && history && n_history > 0) {
        blurb_sampler_penalize(z, V, r, history, n_history, s);
        touched = 1;
    }
    if ((p->presence_penalty != 0 || p->frequency_penalty != 0) && history && n_history > 0 && n_generated > 0) {
        int n_gen = n_generated < n_history ? n_generated : n_history;
        blurb_sampler_presence_frequency(z, V, p->presence_penalty, p->frequency_penalty,
                                         history + (n_history - n_gen), n_gen, s);
        touched = 1;
    }
    if (p->no_repeat_ngram_size > 0 && history && n_history > 0) {
        blurb_sampler_no_repeat_ngram(z, V, p->no_repeat_ngram_size, history, n_history);
        touched = 1;
    }
    if (n_generated < p->min_new_tokens && p->eos_token_id >= 0 && p->eos_token_id < V) {
        z[p->eos_token_id] = -INFINITY;
        touched = 1;
    }
    for (int i = 0; p->exclude && i < p->n_exclude; i++) {
        if (p->exclude[i] >= 0 && p->exclude[i] < V) z[p->exclude[i]] = -INFINITY;
        touched = 1;
    }

    /* Step 3; unchecked parameters (NaN, inf, negative) also end up greedy. */
    float T = p->temperature, top_p = p->top_p;
    if (!(T > 0 && T <= 3.4e38f) || !(top_p > 0)) {
        res->token = argmax_lowest(z, V);
        res->greedy = 1;
        return;
    }
    if (T != 1.0f) {
        for (int i = 0; i < V; i++) z[i] /= T;
        touched = 1;
    }
    float m = touched ? max_of(z, V) : res->raw_max;
    if (!(m > -INFINITY && m < INFINITY)) {
        res->token = argmax_lowest(z, V);
        res->greedy = 1;
        return;
    }

    /* Step 4, and the weights. */
    int32_t *ids = s->ids;
    int all = !(p->top_k > 0 && p->top_k < V);
    size_t n_surv = all ? (size_t)V : (size_t)p->top_k;
    float level_mass[N_LEVELS], S;
    if (all) {
        S = weights_all(z, V, m, w, level_mass, s->block_max);
        if (!touched) res->raw_sum = S; /* w are then exactly the raw exps */
    } else {
        topk_select(z, V, p->top_k, s->heap, ids);
        memset(w, 0, (size_t)V * sizeof *w);
        for (int l = 0; l < N_LEVELS; l++) level_mass[l] = 0.0f;
        for (size_t j = 0; j < n_surv; j++) {
            float v = fixed_expf(z[ids[j]] - m);
            w[ids[j]] = v;
            for (int l = 0; l < N_LEVELS; l++) level_mass[l] += v >= level_tau[l] ? v : 0.0f;
        }
        S = blurb_sampler_sum(w, V);
    }

    /* Step 5 and the draw share one walk; find how far it can go. The walk
     * stops once C_j >= need (top-p) or C_j > need (draw without top-p). The
     * tokens with w >= tau precede all others in walk order; if their mass
     * exceeds need by more than fp32 summation can be off (relative error
     * under gamma = n 2^-24 for the level mass and for the walk's running
     * sum alike; 3 gamma covers both), the walk stops among them and only
     * they need to enter the heap. */
    int use_top_p = top_p < 1.0f;
    /* min-p (step 5b) cuts the walk at the first w < min_p; its kept mass is
     * then a running sum, not S, so the draw needs the listed walk too. */
    float min_p = p->min_p > 0 && p->min_p <= 1.0f ? p->min_p : 0.0f;
    int list_all = (mode == MODE_LIST || min_p > 0) && !use_top_p;
    float need = use_top_p ? top_p * S : u * S;
    float tau = 0.0f; /* 0: every survivor, zeros included */
    double gamma = (double)n_surv * 0x1p-24;
    if (!list_all && gamma < 0.1) {
        double bound = (double)need * (1.0 + 3.0 * gamma);
        for (int l = 0; l < N_LEVELS; l++) {
            if ((double)level_mass[l] > bound) {
                tau = level_tau[l];
                break;
            }
        }
    }
    /* Tokens with w < min_p are never kept: they need not enter the heap. */
    if (min_p > tau) tau = min_p;
    uint64_t *h = s->heap;
    size_t n = 0;
    if (all) {
        uint32_t tau_bits;
        memcpy(&tau_bits, &tau, sizeof tau_bits);
        for (int b = 0; b < V; b += 256) {
            if (s->block_max[b / 256] < tau_bits) continue;
            int e = V - b < 256 ? V : b + 256;
            for (int i = b; i < e; i++)
                if (w[i] >= tau) h[n++] = walk_key(w[i], i);
        }
    } else {
        for (size_t j = 0; j < n_surv; j++)
            if (w[ids[j]] >= tau) h[n++] = walk_key(w[ids[j]], ids[j]);
    }
    heap_build(h, n);

    int32_t *kept = s->kept;
    float *cum = s->cum;
    float c = 0.0f;
    if (use_top_p || list_all) {
        size_t j = 0;
        while (n > 0) {
            int32_t id = unpack_id(heap_pop(h, &n));
            c += w[id];
            kept[j] = id;
            cum[j] = c;
            j++;
            if (use_top_p && c >= need) break;
        }
        res->n_kept = j;
        res->mass = use_top_p || min_p > 0 ? c : S;
        if (mode == MODE_DRAW) {
            float t = u * res->mass;
            /* cum is non-decreasing: the first index with cum > t by bisection. */
            size_t lo = 0, hi = j;
            while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                if (cum[mid] > t) hi = mid;
                else lo = mid + 1;
            }
            res->token = kept[lo < j ? lo : j - 1];
        }
    } else {
        /* Draw over every survivor, M = S: pop only until the running sum passes t. */
        res->mass = S;
        float t = need;
        int32_t last = unpack_id(h[0]);
        while (n > 0) {
            last = unpack_id(heap_pop(h, &n));
            c += w[last];
            if (c > t) break;
        }
        res->token = last;
    }
}

/* log-softmax of the raw logits at token (NaN read as -inf), given their max
 * rm and their sum S of exp(x - rm) (< 0: not known yet, computed here). */
static float raw_logprob_at(const float *logits, int V, int token, float rm, double S) {
    float lt = logits[token];
    if (lt != lt) lt = -INFINITY;
    if (rm == -INFINITY) return NAN; /* no distribution at all */
    if (rm == INFINITY) {
        int n_inf = 0;
        for (int i = 0; i < V; i++) n_inf += logits[i] == INFINITY;
        return lt == INFINITY ? -logf((float)n_inf) : -INFINITY;
    }
    if (S < 0) S = exp_sum(logits, V, rm); /* NaN, -inf: 0 */
    return (float)((double)lt - (double)rm - log(S));
}

static float raw_logprob(const float *logits, int V, int token, const core_result *res) {
    return raw_logprob_at(logits, V, token, res->raw_max, res->raw_sum >= 0 ? res->raw_sum : -1.0);
}

/* Whether logit a (id ia) ranks before logit b (id ib): larger first, NaN as -inf, ties to the lower id. */
static int ranks_above(float a, int ia, float b, int ib) {
    if (a != a) a = -INFINITY;
    if (b != b) b = -INFINITY;
    return a > b || (a == b && ia < ib);
}

int blurb_top_logprobs(const float *logits, int vocab_size, int k, int32_t *ids, float *logprobs) {
    if (!logits || vocab_size <= 0 || k < 0 || k > BLURB_MAX_TOP_LOGPROBS || (k > 0 && (!ids || !logprobs)))
        return BLURB_E_INVALID;
    if (k > vocab_size) k = vocab_size;
    if (k == 0) return 0;
    /* One pass keeps the k best in order (k <= 5: insertion is cheapest) and the max. */
    int n = 0;
    for (int i = 0; i < vocab_size; i++) {
        if (n == k && !ranks_above(logits[i], i, logits[ids[n - 1]], ids[n - 1])) continue;
        int p = n < k ? n++ : k - 1;
        while (p > 0 && ranks_above(logits[i], i, logits[ids[p - 1]], ids[p - 1])) {
            ids[p] = ids[p - 1];
            p--;
        }
        ids[p] = i;
    }
    float rm = logits[ids[0]];
    if (rm != rm) rm = -INFINITY;
    double S = -1.0;
    if (rm > -INFINITY && rm < INFINITY) S = exp_sum(logits, vocab_size, rm);
    for (int j = 0; j < k; j++) logprobs[j] = raw_logprob_at(logits, vocab_size, ids[j], rm, S);
    return k;
}

int blurb_sample_row(const float *logits, int vocab_size, const blurb_sampling *p,
                     const int32_t *history, int n_history, int n_generated, uint64_t key,
                     uint32_t step, blurb_sampler_scratch *scratch, float *logprob) {
    if (!logits || !p || !scratch || vocab_size <= 0 || vocab_size > scratch->vocab_size)
        return BLURB_E_INVALID;
    core_result res;
    core(logits, vocab_size, p, history, n_history, n_generated,
         blurb_stream_uniform(key, step), scratch, MODE_DRAW, &res);
    if (logprob) *logprob = raw_logprob(logits, vocab_size, res.token, &res);
    return res.token;
}

int blurb_sampler_kept(const float *logits, int vocab_size, const blurb_sampling *p,
                       const int32_t *history, int n_history, int n_generated,
                       blurb_sampler_scratch *scratch, int32_t *kept_ids, float *kept_w,
                       float *mass) {
    if (!logits || !p || !scratch || vocab_size <= 0 || vocab_size > scratch->vocab_size)
        return BLURB_E_INVALID;
    core_result res;
    core(logits, vocab_size, p, history, n_history, n_generated, 0.0f, scratch, MODE_LIST, &res);
    if (res.greedy) {
        if (kept_ids) kept_ids[0] = res.token;
        if (kept_w) kept_w[0] = 1.0f;
        if (mass) *mass = 1.0f;
        return 1;
    }
    for (size_t j = 0; j < res.n_kept; j++) {
        if (kept_ids) kept_ids[j] = scratch->kept[j];
        if (kept_w) kept_w[j] = scratch->w[scratch->kept[j]];
    }
    if (mass) *mass = res.mass;
    return (int)res.n_kept;
}
