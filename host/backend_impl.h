/* Private contract between host/backend.c (the generic part of
 * include/blurb/backend.h) and the backend implementations.
 *
 * An implementation's create function allocates its own struct whose first
 * member is a blurb_backend, and fills ops, model, n_slots, n_ctx and
 * vocab_size. It leaves slot_len and slot_tokens NULL: backend.c allocates
 * them after create returns, keeps them up to date (forward appends the
 * chunk's tokens after a successful ops->forward, reset sets the length to 0)
 * and frees them before calling ops->destroy, which frees the struct.
 *
 * backend.c validates every argument before calling an op, so ops may assume:
 * forward: 1 <= n_chunks <= n_slots, distinct slots in [0, n_slots),
 *   n_tokens >= 1, slot_len[slot] + n_tokens <= n_ctx, token ids in
 *   [0, vocab_size); slot_len still holds the lengths *before* this call
 *   (the first new token of chunk i sits at position slot_len[chunks[i].slot]);
 * logits: 0 <= row < n_rows; sample: rows, slots and params checked, n >= 1;
 * reset: slot in range (backend.c sets slot_len to 0 after it returns 0);
 * decode (optional): everything blurb_backend_decode promises of its
 *   arguments checked, n >= 1, n_steps >= 1; slot_len holds the lengths
 *   before the call and must be left alone (backend.c appends the fed tokens
 *   after the op returns 0). create sets decode_steps (1 when decode is NULL). */
#ifndef BLURB_HOST_BACKEND_IMPL_H
#define BLURB_HOST_BACKEND_IMPL_H

#include "blurb/backend.h"

/* host/backend_cpu.c: fp32 reference backend. Returns 0, BLURB_E_NOMEM or
 * BLURB_E_INVALID (bad opts). */
int blurb_cpu_backend_create(const blurb_model *model, const blurb_backend_opts *opts,
                             blurb_backend **out, blurb_err *err);

#ifdef BLURB_HAVE_CUDA
/* host/cuda_*.c (CUDA builds only). Returns 0, BLURB_E_DEVICE, BLURB_E_NOMEM
 * or BLURB_E_UNSUPPORTED. */
int blurb_cuda_backend_create(const blurb_model *model, const blurb_backend_opts *opts,
                              blurb_backend **out, blurb_err *err);
#endif

#endif
