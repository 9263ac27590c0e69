/* Sampling: the one definition of how a token is drawn from a row of logits.
 *
 * Every backend follows these semantics; blurb_sample_row is the reference
 * implementation (the CPU backend calls it, the CUDA sampling kernel must
 * produce the same token for the same fp32 logits). Order, per step:
 *   1. repetition penalty r (HF RepetitionPenaltyLogitsProcessor): for every
 *      distinct token in the history (prompt + generated so far), a positive
 *      logit is divided by r, a negative one multiplied by r;
 *   2. EOS masked (-inf) while n_generated < min_new_tokens;
 *   3. temperature T: T == 0 means greedy (argmax, ties to the lower id);
 *      otherwise logits are divided by T;
 *   4. top-k: keep the k largest (ties keep the lower id); 0 = off; k >= vocab = off;
 *   5. top-p (nucleus, Holtzman et al. 2020, "The Curious Case of Neural Text
 *      Degeneration"): over the softmax of the survivors, keep the smallest
 *      prefix of tokens sorted by (probability desc, id asc) whose mass is >= p,
 *      in fp32, at least one token; p >= 1 keeps all; p <= 0 means greedy;
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

typedef struct blurb_sampling {
    float temperature;        /* >= 0; 0 = greedy */
    int top_k;                /* >= 0; 0 = off */
    float top_p;              /* (0, 1]; <= 0 = greedy; >= 1 = off */
    float repetition_penalty; /* > 0; 1 = off */
    int min_new_tokens;       /* EOS is masked while fewer have been generated */
    int eos_token_id;         /* from the model config; < 0 = none */
} blurb_sampling;

/* Defaults of `blurb generate`: T 0.8, top-k 0, top-p 0.9, r 1.0, min 0, eos 50256. */
blurb_sampling blurb_sampling_default(void);

/* Checks ranges (temperature >= 0, top_k >= 0, repetition_penalty > 0,
 * min_new_tokens >= 0, finite values). Returns 0 or BLURB_E_INVALID naming the option. */
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

/* Scratch buffers for blurb_sample_row, sized for one vocabulary (32 bytes
 * per token). _new returns NULL for vocab_size outside (0, 2^30] or when out of
 * memory. */
typedef struct blurb_sampler_scratch blurb_sampler_scratch;
blurb_sampler_scratch *blurb_sampler_scratch_new(int vocab_size);
void blurb_sampler_scratch_free(blurb_sampler_scratch *s);

/* Draws one token from logits [vocab_size] (fp32, not modified).
 * history: n_history token ids (prompt then generated) for the repetition penalty.
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
