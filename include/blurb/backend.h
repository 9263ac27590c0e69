/* Backend interface: the only way the job runner, the benchmark and the tests
 * run the model. Two implementations: "cpu" (fp32 reference, host/backend_cpu.c)
 * and "cuda" (kernels/ + host/backend_cuda.c).
 *
 * A backend owns `n_slots` sequence slots, each with its own KV cache of up to
 * n_ctx tokens. A slot's sequence grows by forward() calls: the first call on an
 * empty slot is its prefill (positions 0..n-1), later calls continue it (a decode
 * step appends one token; a long prompt may be prefilled in several chunks).
 * Sequences never see each other: a slot's logits are bit-identical whatever
 * else is in the batch (same operations in the same order for every row).
 *
 * Logits stay in the backend (on the GPU for cuda): sample() draws from them
 * following include/blurb/sampler.h, and logits() copies a row out for tests. */
#ifndef BLURB_BACKEND_H
#define BLURB_BACKEND_H

#include <stdbool.h>
#include <stdint.h>

#include "blurb/error.h"
#include "blurb/model.h"
#include "blurb/sampler.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum blurb_backend_kind {
    BLURB_BACKEND_AUTO = 0, /* cuda when built with CUDA and a device is present, else cpu */
    BLURB_BACKEND_CPU = 1,
    BLURB_BACKEND_CUDA = 2
} blurb_backend_kind;

typedef struct blurb_backend_opts {
    blurb_backend_kind kind;
    int max_slots;     /* sequences in flight (KV cache slots); 0 = backend's choice */
    blurb_dtype dtype; /* cuda compute dtype (BF16 default, F16, F32); cpu is always F32 */
    int device;        /* cuda device ordinal */
    int n_threads;     /* cpu threads; 0 = OpenMP default */
    bool batch_invariant; /* cuda: pinned batch-invariant GEMM algorithms (default true) */
} blurb_backend_opts;

/* Defaults: AUTO, max_slots 0, BF16, device 0, n_threads 0, batch_invariant true. */
blurb_backend_opts blurb_backend_opts_default(void);

/* Parses "auto" | "cpu" | "cuda". Returns 0 or BLURB_E_INVALID. */
int blurb_backend_kind_parse(const char *s, blurb_backend_kind *out, blurb_err *err);

/* One sequence's part of a forward call: append tokens[0..n_tokens) to slot. */
typedef struct blurb_chunk {
    int slot;
    const int32_t *tokens;
    int n_tokens;      /* >= 1; slot length + n_tokens <= n_ctx */
} blurb_chunk;

/* One sampling request: draw from logits row `row` of the last forward() for `slot`. */
typedef struct blurb_sample_req {
    int row;                     /* logits row (see forward) */
    int slot;                    /* its history (all tokens fed so far) feeds the repetition penalty */
    const blurb_sampling *params;
    uint64_t key;                /* blurb_stream_key of this sample */
    int n_generated;             /* tokens generated so far; also the Philox counter */
} blurb_sample_req;

typedef struct blurb_backend blurb_backend;

struct blurb_backend_ops {
    const char *name;
    int (*forward)(blurb_backend *be, const blurb_chunk *chunks, int n_chunks, bool all_logits, blurb_err *err);
    int (*logits)(blurb_backend *be, int row, float *dst, blurb_err *err);
    int (*sample)(blurb_backend *be, const blurb_sample_req *reqs, int n, int32_t *tokens, float *logprobs, blurb_err *err);
    int (*reset)(blurb_backend *be, int slot, blurb_err *err);
    void (*destroy)(blurb_backend *be);
    /* Optional (NULL: the generic loop of blurb_backend_decode). Returns 1 to
     * hand a call it does not serve back to the generic loop. */
    int (*decode)(blurb_backend *be, const int32_t *tokens, const blurb_sample_req *reqs, int n, int n_steps,
                  int32_t *out_tokens, float *out_logprobs, blurb_err *err);
};

struct blurb_backend {
    const struct blurb_backend_ops *ops;
    const blurb_model *model;
    int n_slots;
    int n_ctx;
    int vocab_size;
    int *slot_len;     /* tokens held in each slot's KV cache [n_slots] */
    int32_t **slot_tokens; /* tokens fed to each slot so far [n_slots][n_ctx] */
    int n_rows;        /* logits rows of the last forward */
    int decode_steps;  /* decode steps per blurb_backend_decode call this backend
                          prefers (1: no gain from more; cuda: a few, to save
                          host round trips) */
};

/* Creates a backend for model (which must outlive it). kind AUTO picks cuda when
 * available. Returns 0, or BLURB_E_DEVICE / BLURB_E_NOMEM / BLURB_E_UNSUPPORTED
 * (e.g. cuda asked for in a build without CUDA) with a message. */
int blurb_backend_create(const blurb_model *model, const blurb_backend_opts *opts,
                         blurb_backend **out, blurb_err *err);

/* Runs the model on n_chunks sequences (distinct slots) at once.
 * Afterwards the backend holds logits [n_rows, vocab_size]: with all_logits false
 * one row per chunk (its last position, row i = chunks[i]); with all_logits true
 * one row per token, chunk by chunk in order (sum of n_tokens rows).
 * Returns 0, or BLURB_E_INVALID (bad slot, context overflow, token >= vocab_size),
 * BLURB_E_DEVICE, BLURB_E_NOMEM. */
int blurb_backend_forward(blurb_backend *be, const blurb_chunk *chunks, int n_chunks,
                          bool all_logits, blurb_err *err);

/* Copies logits row `row` [vocab_size] of the last forward into dst (fp32). */
int blurb_backend_logits(blurb_backend *be, int row, float *dst, blurb_err *err);

/* Draws one token per request from the last forward's logits, following sampler.h.
 * tokens[n] receive the ids; logprobs[n] (may be NULL) the raw log-softmax of each.
 * The drawn tokens are not fed back: pass them to the next forward(). */
int blurb_backend_sample(blurb_backend *be, const blurb_sample_req *reqs, int n,
                         int32_t *tokens, float *logprobs, blurb_err *err);

/* Runs n_steps decode steps on n sequences at once, each step feeding the
 * previous step's draw back as the next input, so that a backend can keep the
 * tokens where they are between steps (cuda: one host synchronisation per
 * call instead of one per step).
 * tokens[n]: the first token to feed to sequence i, in slot reqs[i].slot (the
 * slots distinct, each with n_steps positions left: slot length + n_steps <=
 * n_ctx). reqs[n]: each sequence's sampling as for blurb_backend_sample; row
 * is ignored (the sequence's row is i) and step s draws with n_generated =
 * reqs[i].n_generated + s.
 * out_tokens[n_steps * n] receives draw s of sequence i at [s * n + i];
 * out_logprobs (same layout, may be NULL) its raw log-softmax.
 * Exactly the tokens of n_steps rounds of blurb_backend_forward (one token per
 * slot, all_logits false) + blurb_backend_sample: afterwards each slot holds
 * n_steps more tokens (tokens[i] and draws 0 .. n_steps-2; the last draw is
 * not fed), and the logits are those of the last step (n rows).
 * Returns 0, or BLURB_E_INVALID (n or n_steps < 1, bad slot or params,
 * context overflow, token outside the vocabulary), BLURB_E_DEVICE,
 * BLURB_E_NOMEM. */
int blurb_backend_decode(blurb_backend *be, const int32_t *tokens, const blurb_sample_req *reqs, int n, int n_steps,
                         int32_t *out_tokens, float *out_logprobs, blurb_err *err);

/* Empties a slot (length 0) so a new sequence can start in it. */
int blurb_backend_reset(blurb_backend *be, int slot, blurb_err *err);

/* Frees the backend. NULL is allowed. */
void blurb_backend_free(blurb_backend *be);

/* Whether this build has CUDA and at least one device is visible (no error when not). */
bool blurb_cuda_available(void);

#ifdef __cplusplus
}
#endif
#endif
