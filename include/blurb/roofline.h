/* Analytic work of GPT-2 inference, for the roofline figures of `blurb bench`.
 *
 * The work of a forward call is counted per phase -- the matrix products
 * (GEMMs, LM head included), attention, and the rest (embedding, LayerNorm,
 * GELU, residual adds, sampling) -- as the bytes a perfect implementation must
 * move to or from device memory and the floating-point operations it must do.
 * The roofline time of a call is, per phase, max(bytes / bandwidth,
 * FLOPs / peak), summed over the phases (Williams, Waterman & Patterson 2009,
 * "Roofline: an insightful visual performance model"). It is a lower bound on
 * the time of that call on a device with that bandwidth and peak; measured
 * time divided into it gives the "% of roofline" of the benchmark.
 *
 * Counting conventions (E = n_embd, I = n_inner, V = vocab_size, L = n_layer,
 * T = tokens in the call, R = logits rows, b = bytes per element of weights,
 * activations and KV cache; logits are fp32, 4 bytes):
 *   GEMM  FLOPs = 2 * T * L * (4 E^2 + 2 E I) + 2 * R * E * V (2 FLOPs per
 *         multiply-add of y = x . W; QKV, attention projection, MLP up and
 *         down, LM head; bias adds not counted). Bytes: every weight matrix
 *         and bias read once per call, L * (4 E^2 + 2 E I + 5 E + I) * b +
 *         V * E * b, plus each
 *         GEMM's input read and output written once, T * L * (8 E + 2 I) * b,
 *         plus the LM head's input R * E * b and fp32 logits R * V * 4.
 *   Attention FLOPs = 4 * E * (keys attended) per layer and query token:
 *         q . k and p . v, 2 FLOPs per multiply-add each (the forward half of
 *         Chowdhery et al. 2022, "PaLM", appendix B, 12 * L * H * Q * T for
 *         training). A query at position p attends to p + 1 keys (causal).
 *         Bytes: per layer and sequence the whole KV cache after the call,
 *         2 * (n_past + n_new) * E * b, read once (a fused kernel), plus the
 *         queries read and outputs written, 2 * T * E * b per layer. The new
 *         K and V rows are written by the QKV GEMM (counted there).
 *   Rest  per layer and token: two LayerNorms (read and write E each), GELU
 *         (read and write I), two residual adds (read 2 E, write E each):
 *         (10 E + 2 I) * b bytes and 16 E + 8 I + 2 E FLOPs (8 per LayerNorm
 *         element, 8 per GELU element, 1 per add: a convention of this file;
 *         these phases are memory-bound on any GPU, so the FLOP constants never
 *         bind); LayerNorm weights 4 E * b per layer; embedding T * 3 E * b
 *         (wte row, wpe row, sum written) and T * E FLOPs; final LayerNorm
 *         2 R E * b + 2 E * b bytes and 8 R E FLOPs. Sampling (blurb_work_sample):
 *         one read of the fp32 logits, R * V * 4 bytes, and 4 R V FLOPs.
 * These are the minimal traffic and useful FLOPs, not what any kernel does. */
#ifndef BLURB_ROOFLINE_H
#define BLURB_ROOFLINE_H

#include <stdbool.h>
#include <stdint.h>

#include "blurb/error.h"
#include "blurb/model.h"

#ifdef __cplusplus
extern "C" {
#endif

enum {
    BLURB_PHASE_GEMM = 0,
    BLURB_PHASE_ATTENTION = 1,
    BLURB_PHASE_OTHER = 2,
    BLURB_N_PHASES = 3
};

/* Bytes moved and FLOPs done, per phase. Doubles: integers below 2^53 are exact,
 * far above what one benchmark run counts. */
typedef struct blurb_work {
    double bytes[BLURB_N_PHASES];
    double flops[BLURB_N_PHASES];
} blurb_work;

/* Adds to w the work of one forward call in which each of n_seq sequences
 * holds n_past tokens in its KV cache and appends n_new tokens (a prefill has
 * n_past 0; a decode step n_new 1). all_logits: logits for every token (R = T)
 * rather than the last of each sequence (R = n_seq). elem_bytes: bytes per
 * weight, activation and KV element (2 for BF16/F16, 4 for F32).
 * Returns 0, or BLURB_E_INVALID (w or cfg NULL, a size < 0 or n_seq, n_new < 1,
 * elem_bytes not 1..8, n_past + n_new > n_ctx); w is unchanged on error. */
int blurb_work_forward(const blurb_config *cfg, int elem_bytes, int64_t n_seq, int64_t n_past,
                       int64_t n_new, bool all_logits, blurb_work *w, blurb_err *err);

/* Adds to w the work of drawing one token from each of n_rows fp32 logits rows
 * [vocab_size] (phase "rest"). Returns 0 or BLURB_E_INVALID (n_rows < 0, NULL). */
int blurb_work_sample(const blurb_config *cfg, int64_t n_rows, blurb_work *w, blurb_err *err);

/* acc += w, phase by phase. */
void blurb_work_add(blurb_work *acc, const blurb_work *w);

/* Sums over the phases (bytes, FLOPs). */
double blurb_work_total_bytes(const blurb_work *w);
double blurb_work_total_flops(const blurb_work *w);

/* Roofline time in seconds of work w on a device with bandwidth bytes_per_s
 * (bytes/s) and peak flops_per_s (FLOP/s): sum over phases of
 * max(bytes / bytes_per_s, flops / flops_per_s). Work of several calls must be
 * bounded call by call (a prefill is compute-bound, a decode step memory-bound),
 * so sum this over calls rather than calling it on their sum.
 * Returns a negative value when either rate is not positive. */
double blurb_roofline_seconds(const blurb_work *w, double bytes_per_s, double flops_per_s);

#ifdef __cplusplus
}
#endif
#endif
