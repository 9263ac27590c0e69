/* Internals of host/sampler.c that tests (and the CUDA sampling kernel's author)
 * need to see. blurb_sample_row stays the one code path: the functions here
 * are the pieces it is built from, not a second implementation.
 *
 * Exact fp32 arithmetic of blurb_sample_row (what a backend must replicate to
 * draw the same token from the same fp32 logits; no FMA contraction anywhere,
 * every operation an IEEE single-precision op rounded to nearest):
 *   z_i  = logits_i, NaN read as -inf; then the penalty (z / r if z > 0 else
 *          z * r, once per distinct history id in range), the EOS mask (-inf),
 *          and for T != 1 the division z / T.
 *   greedy (T == 0 or top_p <= 0): argmax of z before the division by T, ties
 *          to the lower id. Also the fallback when max z is not finite (all
 *          -inf, or an inf after the division), so a draw never sees NaN.
 *   top-k: the k largest z, ties to the lower id.
 *   m    = max z; w_i = blurb_sampler_expf(z_i - m) for survivors, 0 otherwise
 *          (so w of the most likely survivor is exactly 1).
 *   S    = blurb_sampler_sum(w, vocab_size): 256 lanes, lane l adds w[l],
 *          w[l + 256], ... in id order starting from 0, then a halving tree
 *          (lane l += lane l + s for s = 128, 64, ..., 1) -- one CUDA block of
 *          256 threads with a shared-memory reduction computes the same bits.
 *   walk order: survivors by (w desc, id asc); C_j = fp32 running sum of w in
 *          that order, starting from 0.
 *   top-p (0 < p < 1): the kept set is the first j survivors where j is the
 *          first with C_j >= p * S (fp32 product); all survivors if none.
 *          The kept mass M = C_j.
 *   top-p off (p >= 1): every survivor is kept and M = S.
 *   draw: t = u * M (fp32), u = blurb_stream_uniform(key, step); the token is
 *          the first in walk order with C_j > t; if the running sum never
 *          exceeds t (only possible when M = S was summed in another order),
 *          the last kept token.
 * Performance: no full sort. A per-exponent histogram of w finds a set of
 * tokens, w >= 2^e, whose mass provably (with a bound on fp32 summation
 * error) carries the walk past its stopping point; only those go into a
 * binary heap, popped in walk order. */
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
 * subnormals; exactly 1 for x == 0. Relative error below 4e-7 elsewhere. */
float blurb_sampler_expf(float x);

/* Sum of x[0..n) in the fixed 256-lane-then-tree order described above. */
float blurb_sampler_sum(const float *x, int n);

/* Step 1 alone, in place on logits [vocab_size]: each distinct id of history
 * that lies in [0, vocab_size) gets z / r if z > 0, else z * r (HF
 * RepetitionPenaltyLogitsProcessor). Out-of-range ids are ignored. */
void blurb_sampler_penalize(float *logits, int vocab_size, float penalty,
                            const int32_t *history, int n_history,
                            blurb_sampler_scratch *scratch);

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
