/* Internals of host/sampler.c that tests (and the CUDA sampling kernel's author)
 * need to see. blurb_sample_row stays the one code path: the functions here
 * are the pieces it is built from, not a second implementation.
 *
 * Exact fp32 arithmetic of blurb_sample_row (what a backend must replicate to
 * draw the same token from the same fp32 logits; no FMA contraction anywhere,
 * every operation an IEEE single-precision op rounded to nearest, no flushing
 * of subnormal logits):
 *   z_i  = logits_i, NaN read as -inf; then the logit bias (z + bias, list
 *          order), the penalty (z / r if z > 0 else z * r, once per distinct
 *          history id in range), presence/frequency (z - (pres + freq * (float)c),
 *          once per distinct generated id), the no-repeat n-gram ban (-inf),
 *          the EOS mask and exclusions (-inf), and for T != 1 the division
 *          z / T. Compares treat -0 == +0.
 *   greedy (T == 0 or top_p <= 0): the lowest id holding the max of z before
 *          the division by T. If the max of z after the division is not
 *          finite (all -inf, or an inf), the same rule on that z instead, so
 *          that no weight is ever NaN.
 *   top-k: the k largest z, ties to the lower id.
 *   m    = max z; w_i = blurb_sampler_expf(z_i - m) for survivors, 0 otherwise
 *          (so w of the most likely survivor is exactly 1).
 *   S    = blurb_sampler_sum(w, vocab_size): 256 lanes, lane l adds w[l],
 *          w[l + 256], ... in id order starting from +0, then a halving tree
 *          (lane l += lane l + s for s = 128, 64, ..., 1) -- one CUDA block of
 *          256 threads with a shared-memory reduction computes the same bits.
 *   walk order: survivors by (w desc, id asc); C_j = fp32 running sum of w
 *          over the first j in that order, starting from +0.
 *   top-p (0 < p < 1): the kept set is the first j survivors for the first j
 *          with C_j >= p * S (fp32 product); all survivors if there is none.
 *          The kept mass M = C_j.
 *   top-p off (p >= 1): every survivor is kept and M = S.
 *   min-p (0 < min_p <= 1): of those kept, only the first j in walk order
 *          with w >= min_p (fp32 compare; w of the first is 1); M = C_j of the
 *          last one kept (so with top-p off M is this running sum, not S).
 *   draw: t = u * M (fp32), u = blurb_stream_uniform(key, step); the token is
 *          the first kept in walk order with C_j > t; if the running sum never
 *          exceeds t (possible only when M = S, summed in another order), the
 *          last kept token.
 *   logprob: log of the raw softmax, (l - max l) - log(sum exp(l - max l)) with
 *          the sum as S above (blurb_sampler_expf, 256 lanes) and the log in
 *          double; it is reported, never used to draw.
 * Performance: no full sort. The pass that computes w also sums the mass of
 * the tokens with w >= 2^-8, 2^-12 and 2^-18. Those tokens precede all others
 * in walk order; when the mass of one such set exceeds the point where the
 * walk stops (p * S, or t) by more than fp32 summation error can account for
 * (3 n 2^-24 relative), the walk provably stops inside it, so only that set,
 * usually tens to hundreds of tokens, goes into a binary heap that is popped
 * in walk order. Otherwise every survivor goes in. */
#ifndef BLURB_SAMPLER_INTERNAL_H
#define BLURB_SAMPLER_INTERNAL_H

#include <stdint.h>

#include "blurb/sampler.h"

#ifdef __cplusplus
extern "C" {
#endif

/* exp(x) for x <= 0 in plain fp32 operations (Cody-Waite reduction by ln 2,
 * degree-6 Taylor polynomial on |r| <= ln2/2, scaling by 2^k through the
 * exponent bits), so that every backend and every libm gives the same bits.
 * Returns 0 for x < -86 (and -inf, NaN), where exp(x) < 4.5e-38 would need
 * subnormals; exactly 1 for x == 0 (x > 0 is read as 0). Relative error below
 * 4e-7 elsewhere (checked against libm on a 1e-4 grid in tests). */
float blurb_sampler_expf(float x);

/* Sum of x[0..n) in the fixed 256-lane-then-tree order described above. */
float blurb_sampler_sum(const float *x, int n);

/* Step 1 alone, in place on logits [vocab_size]: each distinct id of history
 * that lies in [0, vocab_size) gets z / r if z > 0, else z * r (HF
 * RepetitionPenaltyLogitsProcessor). Out-of-range ids are ignored. */
void blurb_sampler_penalize(float *logits, int vocab_size, float penalty,
                            const int32_t *history, int n_history,
                            blurb_sampler_scratch *scratch);

/* Step 0 alone, in place: z[id] += bias for each entry, in list order; ids
 * outside [0, vocab_size) ignored. */
void blurb_sampler_logit_bias(float *logits, int vocab_size, const blurb_logit_bias *bias, int n_bias);

/* Step 1b alone, in place: generated [n_generated] are the generated tokens;
 * each distinct id t in range gets z - (presence + frequency * c) with c its
 * count, in fp32 (OpenAI's presence/frequency penalty). */
void blurb_sampler_presence_frequency(float *logits, int vocab_size, float presence, float frequency,
                                      const int32_t *generated, int n_generated,
                                      blurb_sampler_scratch *scratch);

/* Step 1c alone, in place: -inf for every token that would complete an n-gram
 * (n >= 1) already in history (HF NoRepeatNGramLogitsProcessor). */
void blurb_sampler_no_repeat_ngram(float *logits, int vocab_size, int n, const int32_t *history,
                                   int n_history);

/* Steps 1-5 of blurb_sample_row, for inspection: writes the kept tokens in
 * walk order to kept_ids [vocab_size] and their weights w (unnormalised, the
 * first is 1) to kept_w [vocab_size] (either may be NULL), and the mass M
 * the draw scales u by to *mass (may be NULL). Greedy gives the argmax alone,
 * w 1, M 1. Unlike blurb_sample_row this pops the whole kept set, so it is
 * slow when that set is large. Returns the number kept (>= 1), or
 * BLURB_E_INVALID for a NULL or too small scratch. */
int blurb_sampler_kept(const float *logits, int vocab_size, const blurb_sampling *p,
                       const int32_t *history, int n_history, int n_generated,
                       blurb_sampler_scratch *scratch, int32_t *kept_ids, float *kept_w,
                       float *mass);

#ifdef __cplusplus
}
#endif
#endif
