/* Sampling: the one definition of how a token is drawn from a row of logits.
 *
 * Every backend follows these semantics; blurb_sample_row is the reference
 * implementation (the CPU backend calls it, the CUDA sampling kernel must
 * produce the same token for the same fp32 logits). Order, per step:
 *   0. logit bias: z[id] += bias for each (id, bias) entry (ids outside the
 *      vocabulary ignored; an id listed twice gets both, in list order);
 *   1. penalties, in this order:
 *      a. repetition penalty r (HF RepetitionPenaltyLogitsProcessor): for every
 *         distinct token in the history (prompt + generated so far), a positive
 *         logit is divided by r, a negative one multiplied by r;
 *      b. presence / frequency penalties (OpenAI API semantics, counting the
 *         generated tokens only, i.e. the last n_generated history entries):
 *         z[t] = z[t] - (presence * (c[t] > 0) + frequency * c[t]), fp32,
 *         c[t] = how often t was generated, applied once per distinct t;
 *      c. no-repeat n-gram of size n (HF NoRepeatNGramLogitsProcessor), over
 *         the whole history (prompt and output): when the history holds
 *         h >= n - 1 tokens, every token that follows an earlier occurrence
 *         of the last n - 1 tokens gets -inf (n = 1 bans every history token);
 *   2. EOS masked (-inf) while n_generated < min_new_tokens, and the tokens of
 *      the exclusion list masked (-inf; used to redraw without a token that
 *      was refused, e.g. by --ban-words);
 *   3. temperature T: T == 0 means greedy (argmax, ties to the lower id);
 *      otherwise logits are divided by T;
 *   4. top-k: keep the k largest (ties keep the lower id); 0 = off; k >= vocab = off;
 *   5. top-p (nucleus, Holtzman et al. 2020, "The Curious Case of Neural Text
 *      Degeneration"): over the softmax of the survivors, keep the smallest
 *      prefix of tokens sorted by (probability desc, id asc) whose mass is >= p,
 *      in fp32, at least one token; p >= 1 keeps all; p <= 0 means greedy;
 *   5b. min-p (Nguyen et al. 2024, "Turning Up the Heat: Min-p Sampling"):
 *      of the tokens top-p kept, keep those with probability >= min_p times
 *      the largest one's; 0 = off. With the weights w of sampler_internal.h
 *      (the most likely kept token has w exactly 1) that is w >= min_p in fp32;
 *      the kept mass is then the running sum up to the last kept token;
 *   6. draw: u = a uniform in [0, 1) from the Philox stream (key, counter = step);
 *      walk the kept tokens in that sorted order accumulating probability and
 *      take the first whose running sum exceeds u * (kept mass); rounding that
 *      runs past the end takes the last kept token.
 *
 * Randomness: Philox4x32-10 (Salmon et al. 2011, "Parallel Random Numbers: As
 * Easy as 1, 2, 3"), keyed per (seed, record id, sample index), counter = step,
 * so a record's draws never depend on batching or input order.
 *
 * The exact fp32 arithmetic behind steps 3-6 (the exp, the summation order,
 * the walk) is specified in host/sampler_internal.h; a backend that follows
 * it draws the same token from the same fp32 logits. */
#ifndef BLURB_SAMPLER_H
#define BLURB_SAMPLER_H

#include <stddef.h>
#include <stdint.h>

#include "blurb/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One logit bias entry: logits[id] += bias (OpenAI's logit_bias). */
typedef struct blurb_logit_bias {
    int32_t id;   /* token id; ids outside [0, vocab_size) are ignored */
    float bias;   /* finite; OpenAI allows -100..100, blurb any finite value */
} blurb_logit_bias;

/* Every option of one sequence's sampling. A per-record option set is just a
 * different blurb_sampling; pointers (logit_bias) are borrowed, and must stay
 * valid while the sampling is in use. */
typedef struct blurb_sampling {
    float temperature;        /* >= 0; 0 = greedy */
    int top_k;                /* >= 0; 0 = off */
    float top_p;              /* (0, 1]; <= 0 = greedy; >= 1 = off */
    float repetition_penalty; /* > 0; 1 = off */
    int min_new_tokens;       /* EOS is masked while fewer have been generated */
    int eos_token_id;         /* from the model config; < 0 = none */
    /* Added for issue 7; all off by default (zero). */
    const blurb_logit_bias *logit_bias; /* n_logit_bias entries (NULL when 0) */
    int n_logit_bias;
    float presence_penalty;   /* finite; 0 = off (OpenAI: -2..2) */
    float frequency_penalty;  /* finite; 0 = off (OpenAI: -2..2) */
    float min_p;              /* [0, 1]; 0 = off */
    int no_repeat_ngram_size; /* >= 0; 0 = off */
    /* Tokens masked (-inf) at step 2 of this draw, ids outside the vocabulary
     * ignored. Meant for one draw, not a whole sequence: the job redraws a
     * token refused by --ban-words with a copy of its blurb_sampling listing
     * that token, and the draw uses the same uniform (key, step), so the
     * redraw depends only on this row, never on the batch. If every token is
     * masked the draw falls back to the lowest id (see sampler_internal.h),
     * possibly an excluded one: callers must check. */
    const int32_t *exclude;
    int n_exclude;
} blurb_sampling;

/* Defaults of `blurb generate`: T 0.8, top-k 0, top-p 0.9, r 1.0, min 0, eos
 * 50256, no logit bias, presence/frequency 0, min-p 0, no-repeat 0. */
blurb_sampling blurb_sampling_default(void);

/* Whether any of the issue-7 controls (logit bias, presence/frequency
 * penalty, min-p, no-repeat n-gram, exclusions) is on: a backend whose own
 * sampler does not implement them must draw such a request with
 * blurb_sample_row on the host (the CUDA backend does: host/cuda_sample.c) or
 * refuse it (BLURB_E_UNSUPPORTED), so that results never silently differ. */
int blurb_sampling_uses_extended(const blurb_sampling *s);

/* Checks ranges (temperature >= 0, top_k >= 0, repetition_penalty > 0,
 * min_new_tokens >= 0, finite values, logit bias list present with ids >= 0
 * and finite biases, min_p in [0, 1], no_repeat_ngram_size >= 0, exclusion
 * list present when n_exclude > 0). Returns 0 or
 * BLURB_E_INVALID naming the option. */
int blurb_sampling_check(const blurb_sampling *s, blurb_err *err);

/* Philox4x32-10 block: 4 x 32-bit outputs for a 128-bit counter and 64-bit key. */
void blurb_philox4x32_10(const uint32_t counter[4], const uint32_t key[2], uint32_t out[4]);

/* Stream key of one sample: a 64-bit hash of (seed, record id bytes, sample index).
 * id is the record id as text (a JSON string's content, or a number as written);
 * id_len bytes are hashed (no NUL needed; id may be NULL when id_len is 0).
 * Definition (every backend and every later version must keep it, or reruns
 * stop reproducing): h = FNV-1a 64 (offset basis 0xcbf29ce484222325, prime
 * 0x100000001b3) over the bytes seed (8, little-endian), sample_index (4,
 * little-endian), then the id bytes; key = splitmix64 finalizer of h (Steele
 * et al. 2014): z = h + 0x9e3779b97f4a7c15; z = (z ^ z>>30) * 0xbf58476d1ce4e5b9;
 * z = (z ^ z>>27) * 0x94d049bb133111eb; key = z ^ z>>31.
 * The Philox key is {low 32 bits of key, high 32 bits}. */
uint64_t blurb_stream_key(uint64_t seed, const char *id, size_t id_len, uint32_t sample_index);

/* The uniform in [0, 1) used at `step` of stream `key`: the top 24 bits of
 * Philox output word 0 for counter {step, 0, 0, 0}, times 2^-24. */
float blurb_stream_uniform(uint64_t key, uint32_t step);

/* Most alternatives blurb_top_logprobs gives (OpenAI's completions API allows 0..5). */
#define BLURB_MAX_TOP_LOGPROBS 5

/* The k most likely tokens of the raw model distribution of one row: the
 * log-softmax of logits [vocab_size] at temperature 1, before any penalty or
 * filter (the distribution blurb_sample_row's logprob reads), most likely
 * first, ties to the lower id; NaN logits count as -inf. ids[k] and
 * logprobs[k] receive them (nats). The values are computed exactly as
 * blurb_sample_row's logprob (same max, same sum in the same order), so a
 * token found by both gets the same float from both.
 * Returns the number written, min(k, vocab_size), or BLURB_E_INVALID for k
 * outside 0..BLURB_MAX_TOP_LOGPROBS, vocab_size <= 0 or a NULL pointer.
 * Cost: two passes over the row, no allocation. */
int blurb_top_logprobs(const float *logits, int vocab_size, int k, int32_t *ids, float *logprobs);

/* Scratch buffers for blurb_sample_row, sized for one vocabulary (32 bytes
 * per token). _new returns NULL for vocab_size outside (0, 2^30] or when out of
 * memory. */
typedef struct blurb_sampler_scratch blurb_sampler_scratch;
blurb_sampler_scratch *blurb_sampler_scratch_new(int vocab_size);
void blurb_sampler_scratch_free(blurb_sampler_scratch *s);

/* Draws one token from logits [vocab_size] (fp32, not modified).
 * history: n_history token ids (prompt then generated) for the repetition penalty
 *   and no-repeat n-grams; its last n_generated entries (all of it when shorter)
 *   are the generated tokens that presence / frequency penalties count.
 * n_generated: tokens generated so far in this sequence (for min_new_tokens).
 * key/step: the Philox stream and counter (step = n_generated).
 * logprob (optional): log-softmax of the *raw* logits at the drawn token
 *   (temperature 1, before penalty or filtering), for mean_logprob.
 * Returns the token id (0 <= id < vocab_size); never fails for checked params
 * (unchecked ones -- NaN, negative temperature -- fall back to greedy). Returns
 * BLURB_E_INVALID only for a programming error: logits, p or scratch NULL,
 * vocab_size <= 0 or larger than the scratch was made for.
 * Cost: O(vocab_size) plus O(c log c) for the c most likely tokens the walk
 * visits; no full sort. scratch is not thread-safe: one per thread. */
int blurb_sample_row(const float *logits, int vocab_size, const blurb_sampling *p,
                     const int32_t *history, int n_history, int n_generated,
                     uint64_t key, uint32_t step, blurb_sampler_scratch *scratch,
                     float *logprob);

#ifdef __cplusplus
}
#endif
#endif
