/* Entry points of the CUDA backend (host/cuda_*.c, kernels/), compiled only in
 * CUDA builds (BLURB_HAVE_CUDA). host/backend.c dispatches to
 * blurb_cuda_backend_create; blurb_cuda_available is declared in
 * include/blurb/backend.h. */
#ifndef BLURB_HOST_CUDA_BACKEND_H
#define BLURB_HOST_CUDA_BACKEND_H

#include <stdint.h>

#include "blurb/backend.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Creates the CUDA backend for model on opts->device: uploads the weights once
 * (converted from the file dtype to opts->dtype: BF16, F16 or F32), pins the
 * cuBLASLt algorithms, and sizes the KV cache from the free device memory
 * into n_slots sequence slots (at most opts->max_slots when > 0). Fills the
 * blurb_backend fields ops, model, n_slots, n_ctx, vocab_size (host/backend.c
 * allocates slot_len and slot_tokens).
 * opts->batch_invariant (default true) pins one split-K-free cuBLASLt algorithm
 * per GEMM shape for every batch size (host/cuda_gemm.c explains why that makes
 * a row's logits independent of its batch); false lets cuBLASLt's heuristic
 * choose per batch size, split-K included: faster at small batches, and a
 * record's output may then change with what it is batched with.
 * Environment: BLURB_CUDA_GRAPHS=0 disables the CUDA graphs of the decode
 * step (same results); BLURB_CUDA_GEMM_MREF (default 128) is the batch size
 * the pinned algorithms are chosen for: another value may pin another
 * algorithm and so change the last bits of the logits (and possibly a
 * sampled token) from one run to the next, never within a run.
 * Returns 0, BLURB_E_DEVICE (no device, CUDA or cuBLAS failure, message names
 * the call, file and line), BLURB_E_NOMEM (device memory), BLURB_E_UNSUPPORTED
 * (head_dim other than 32, 64, 128; n_embd > 12256; dtype) or BLURB_E_INVALID. */
int blurb_cuda_backend_create(const blurb_model *model, const blurb_backend_opts *opts,
                              blurb_backend **out, blurb_err *err);

/* For tests: runs the CUDA sampling kernel on n rows of fp32 logits given on
 * the host (logits [n][vocab_size]) with the same requests the backend would
 * see; history [n][n_history[i]] gives each row's token history. Writes
 * tokens[n] and logprobs[n] (may be NULL). Uses device `device`.
 * Returns 0, BLURB_E_DEVICE, BLURB_E_NOMEM or BLURB_E_INVALID. */
int blurb_cuda_sample_rows(int device, const float *logits, int n, int vocab_size,
                           const blurb_sample_req *reqs, const int32_t *const *history,
                           const int *n_history, int32_t *tokens, float *logprobs, blurb_err *err);

/* Describes the pinned cuBLASLt algorithms of a CUDA backend in buf (one line
 * per GEMM shape: algorithm id, tile, stages, split-K, workspace), for the
 * benchmark and the batch-invariance documentation. Returns 0 or BLURB_E_INVALID
 * when be is not a CUDA backend. */
int blurb_cuda_describe(const blurb_backend *be, char *buf, size_t size);

#ifdef __cplusplus
}
#endif
#endif
