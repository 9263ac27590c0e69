/* Generic part of the backend interface (include/blurb/backend.h): option
 * parsing, dispatch to an implementation, argument validation and the
 * per-slot bookkeeping (lengths and token history) shared by all backends. */
#include "blurb/backend.h"

#include <stdlib.h>
#include <string.h>

#include "backend_impl.h"

blurb_backend_opts blurb_backend_opts_default(void) {
    blurb_backend_opts o;
    memset(&o, 0, sizeof o);
    o.kind = BLURB_BACKEND_AUTO;
    o.max_slots = 0;
    o.dtype = BLURB_DTYPE_BF16;
    o.device = 0;
    o.n_threads = 0;
    o.batch_invariant = true;
    return o;
}

int blurb_backend_kind_parse(const char *s, blurb_backend_kind *out, blurb_err *err) {
    if (!s) return blurb_seterr(err, BLURB_E_INVALID, "backend: no name given (expected auto, cpu or cuda)");
    if (strcmp(s, "auto") == 0) *out = BLURB_BACKEND_AUTO;
    else if (strcmp(s, "cpu") == 0) *out = BLURB_BACKEND_CPU;
    else if (strcmp(s, "cuda") == 0) *out = BLURB_BACKEND_CUDA;
    else return blurb_seterr(err, BLURB_E_INVALID, "unknown backend '%s' (expected auto, cpu or cuda)", s);
    return 0;
}

#ifndef BLURB_HAVE_CUDA
/* With CUDA this is defined next to the CUDA backend (host/cuda_*.c). */
bool blurb_cuda_available(void) { return false; }
#endif

static void free_bookkeeping(blurb_backend *be) {
    if (be->slot_tokens) free(be->slot_tokens[0]);
    free(be->slot_tokens);
    free(be->slot_len);
    be->slot_tokens = NULL;
    be->slot_len = NULL;
}

/* Slot lengths and histories live here so that every backend keeps them the
 * same way (the sampler's repetition penalty reads the history). */
static int alloc_bookkeeping(blurb_backend *be, blurb_err *err) {
    size_t n_slots = (size_t)be->n_slots, n_ctx = (size_t)be->n_ctx;
    be->slot_len = calloc(n_slots, sizeof *be->slot_len);
    be->slot_tokens = calloc(n_slots, sizeof *be->slot_tokens);
    int32_t *block = calloc(n_slots * n_ctx, sizeof *block);
    if (!be->slot_len || !be->slot_tokens || !block) {
        free(block);
        free_bookkeeping(be);
        return blurb_seterr(err, BLURB_E_NOMEM, "backend: out of memory for %zu slots of %zu tokens",
                            n_slots, n_ctx);
    }
    for (size_t s = 0; s < n_slots; s++) be->slot_tokens[s] = block + s * n_ctx;
    return 0;
}

int blurb_backend_create(const blurb_model *model, const blurb_backend_opts *opts,
                         blurb_backend **out, blurb_err *err) {
    if (!model || !out) return blurb_seterr(err, BLURB_E_INVALID, "backend: model and out must not be NULL");
    *out = NULL;
    blurb_backend_opts def = blurb_backend_opts_default();
    if (!opts) opts = &def;
    if (opts->max_slots < 0)
        return blurb_seterr(err, BLURB_E_INVALID, "backend: max_slots %d is negative", opts->max_slots);
    if (opts->n_threads < 0)
        return blurb_seterr(err, BLURB_E_INVALID, "backend: n_threads %d is negative", opts->n_threads);

    blurb_backend_kind kind = opts->kind;
    if (kind == BLURB_BACKEND_AUTO) kind = blurb_cuda_available() ? BLURB_BACKEND_CUDA : BLURB_BACKEND_CPU;

    blurb_backend *be = NULL;
    int rc;
    switch (kind) {
    case BLURB_BACKEND_CPU:
        rc = blurb_cpu_backend_create(model, opts, &be, err);
        break;
    case BLURB_BACKEND_CUDA:
#ifdef BLURB_HAVE_CUDA
        rc = blurb_cuda_backend_create(model, opts, &be, err);
#else
        rc = blurb_seterr(err, BLURB_E_UNSUPPORTED, "this blurb was built without CUDA");
#endif
        break;
    default:
        rc = blurb_seterr(err, BLURB_E_INVALID, "backend: unknown kind %d", (int)kind);
        break;
    }
    if (rc < 0) return rc;

    be->slot_len = NULL;
    be->slot_tokens = NULL;
    be->n_rows = 0;
    if (!be->ops->decode || be->decode_steps < 1) be->decode_steps = 1;
    rc = alloc_bookkeeping(be, err);
    if (rc < 0) {
        be->ops->destroy(be);
        return rc;
    }
    *out = be;
    return 0;
}

/* The checks forward and decode share for `what` i (e.g. "forward: chunk 2")
 * feeding n_new tokens to slot: in range, once per call, room in the context. */
static int check_slot(const blurb_backend *be, const char *what, int i, int slot, int n_new, unsigned char *seen,
                      blurb_err *err) {
    if (slot < 0 || slot >= be->n_slots)
        return blurb_seterr(err, BLURB_E_INVALID, "%s %d: slot %d out of range [0, %d)", what, i, slot, be->n_slots);
    if (seen[slot])
        return blurb_seterr(err, BLURB_E_INVALID, "%s %d: slot %d appears twice in one batch", what, i, slot);
    if (n_new > be->n_ctx - be->slot_len[slot])
        return blurb_seterr(err, BLURB_E_INVALID, "%s %d (slot %d): context overflow: %d tokens held + %d new > n_ctx %d",
                            what, i, slot, be->slot_len[slot], n_new, be->n_ctx);
    seen[slot] = 1;
    return 0;
}

/* The checks sample and decode share for request i. */
static int check_request(const char *what, int i, const blurb_sample_req *r, blurb_err *err) {
    if (r->n_generated < 0)
        return blurb_seterr(err, BLURB_E_INVALID, "%s %d: n_generated %d is negative", what, i, r->n_generated);
    if (!r->params) return blurb_seterr(err, BLURB_E_INVALID, "%s %d: no sampling params", what, i);
    if (blurb_sampling_check(r->params, err) < 0) return blurb_err_prefix(err, "%s %d", what, i);
    return 0;
}

int blurb_backend_forward(blurb_backend *be, const blurb_chunk *chunks, int n_chunks,
                          bool all_logits, blurb_err *err) {
    if (!be) return blurb_seterr(err, BLURB_E_INVALID, "forward: backend is NULL");
    /* The previous logits are gone once a new forward starts (even one that fails). */
    be->n_rows = 0;
    if (n_chunks < 1 || !chunks)
        return blurb_seterr(err, BLURB_E_INVALID, "forward: no chunks given (n_chunks %d)", n_chunks);
    if (n_chunks > be->n_slots)
        return blurb_seterr(err, BLURB_E_INVALID, "forward: %d chunks but only %d slots", n_chunks, be->n_slots);

    unsigned char *seen = calloc((size_t)be->n_slots, 1);
    if (!seen) return blurb_seterr(err, BLURB_E_NOMEM, "forward: out of memory");
    int64_t n_tokens_total = 0;
    int rc = 0;
    for (int i = 0; i < n_chunks && rc == 0; i++) {
        const blurb_chunk *c = &chunks[i];
        if (c->n_tokens < 1 || !c->tokens) {
            rc = blurb_seterr(err, BLURB_E_INVALID, "forward: chunk %d (slot %d): needs at least one token, got %d",
                              i, c->slot, c->n_tokens);
        } else if (!(rc = check_slot(be, "forward: chunk", i, c->slot, c->n_tokens, seen, err))) {
            n_tokens_total += c->n_tokens;
            for (int t = 0; t < c->n_tokens; t++) {
                if (c->tokens[t] < 0 || c->tokens[t] >= be->vocab_size) {
                    rc = blurb_seterr(err, BLURB_E_INVALID,
                                      "forward: chunk %d (slot %d): token %d is %d, outside the vocabulary [0, %d)",
                                      i, c->slot, t, (int)c->tokens[t], be->vocab_size);
                    break;
                }
            }
        }
    }
    free(seen);
    if (rc < 0) return rc;

    rc = be->ops->forward(be, chunks, n_chunks, all_logits, err);
    if (rc < 0) return rc;

    for (int i = 0; i < n_chunks; i++) {
        const blurb_chunk *c = &chunks[i];
        memcpy(be->slot_tokens[c->slot] + be->slot_len[c->slot], c->tokens,
               (size_t)c->n_tokens * sizeof *c->tokens);
        be->slot_len[c->slot] += c->n_tokens;
    }
    be->n_rows = all_logits ? (int)n_tokens_total : n_chunks;
    return 0;
}

int blurb_backend_logits(blurb_backend *be, int row, float *dst, blurb_err *err) {
    if (!be || !dst) return blurb_seterr(err, BLURB_E_INVALID, "logits: backend and dst must not be NULL");
    if (row < 0 || row >= be->n_rows)
        return blurb_seterr(err, BLURB_E_INVALID, "logits: row %d out of range [0, %d) of the last forward",
                            row, be->n_rows);
    return be->ops->logits(be, row, dst, err);
}

int blurb_backend_sample(blurb_backend *be, const blurb_sample_req *reqs, int n,
                         int32_t *tokens, float *logprobs, blurb_err *err) {
    if (!be) return blurb_seterr(err, BLURB_E_INVALID, "sample: backend is NULL");
    if (n < 0) return blurb_seterr(err, BLURB_E_INVALID, "sample: negative request count %d", n);
    if (n == 0) return 0;
    if (!reqs || !tokens) return blurb_seterr(err, BLURB_E_INVALID, "sample: reqs and tokens must not be NULL");
    for (int i = 0; i < n; i++) {
        const blurb_sample_req *r = &reqs[i];
        if (r->row < 0 || r->row >= be->n_rows)
            return blurb_seterr(err, BLURB_E_INVALID, "sample: request %d: row %d out of range [0, %d)",
                                i, r->row, be->n_rows);
        if (r->slot < 0 || r->slot >= be->n_slots)
            return blurb_seterr(err, BLURB_E_INVALID, "sample: request %d: slot %d out of range [0, %d)",
                                i, r->slot, be->n_slots);
        int rc = check_request("sample: request", i, r, err);
        if (rc < 0) return rc;
    }
    return be->ops->sample(be, reqs, n, tokens, logprobs, err);
}

/* n_steps rounds of forward + sample: what every backend's decode must equal. */
static int decode_generic(blurb_backend *be, const int32_t *tokens, const blurb_sample_req *reqs, int n,
                          int n_steps, int32_t *out_tokens, float *out_logprobs, blurb_err *err) {
    blurb_chunk *chunks = malloc((size_t)n * sizeof *chunks);
    blurb_sample_req *rq = malloc((size_t)n * sizeof *rq);
    int rc = 0;
    if (!chunks || !rq) rc = blurb_seterr(err, BLURB_E_NOMEM, "decode: out of memory");
    for (int s = 0; s < n_steps && !rc; s++) {
        const int32_t *feed = s ? out_tokens + (size_t)(s - 1) * (size_t)n : tokens;
        for (int i = 0; i < n; i++) {
            chunks[i] = (blurb_chunk){reqs[i].slot, feed + i, 1};
            rq[i] = reqs[i];
            rq[i].row = i;
            rq[i].n_generated = reqs[i].n_generated + s;
        }
        rc = blurb_backend_forward(be, chunks, n, false, err);
        if (!rc)
            rc = blurb_backend_sample(be, rq, n, out_tokens + (size_t)s * (size_t)n,
                                      out_logprobs ? out_logprobs + (size_t)s * (size_t)n : NULL, err);
        if (rc) blurb_err_prefix(err, "decode step %d of %d", s + 1, n_steps);
    }
    free(chunks);
    free(rq);
    return rc;
}

int blurb_backend_decode(blurb_backend *be, const int32_t *tokens, const blurb_sample_req *reqs, int n, int n_steps,
                         int32_t *out_tokens, float *out_logprobs, blurb_err *err) {
    if (!be) return blurb_seterr(err, BLURB_E_INVALID, "decode: backend is NULL");
    if (n < 1 || n > be->n_slots || n_steps < 1)
        return blurb_seterr(err, BLURB_E_INVALID, "decode: %d sequences (of %d slots), %d steps", n, be->n_slots,
                            n_steps);
    if (!tokens || !reqs || !out_tokens)
        return blurb_seterr(err, BLURB_E_INVALID, "decode: tokens, reqs and out_tokens must not be NULL");
    /* Checked up front: a failure half-way would leave the slots part fed, and
     * an op never sees the tokens it feeds itself. */
    unsigned char *seen = calloc((size_t)be->n_slots, 1);
    if (!seen) return blurb_seterr(err, BLURB_E_NOMEM, "decode: out of memory");
    int rc = 0;
    for (int i = 0; i < n && !rc; i++) {
        const blurb_sample_req *r = &reqs[i];
        if (tokens[i] < 0 || tokens[i] >= be->vocab_size)
            rc = blurb_seterr(err, BLURB_E_INVALID, "decode: sequence %d: token %d outside the vocabulary [0, %d)", i,
                              (int)tokens[i], be->vocab_size);
        else if (!(rc = check_slot(be, "decode: sequence", i, r->slot, n_steps, seen, err)))
            rc = check_request("decode: sequence", i, r, err);
    }
    free(seen);
    if (rc) return rc;
    be->n_rows = 0;
    if (!be->ops->decode) return decode_generic(be, tokens, reqs, n, n_steps, out_tokens, out_logprobs, err);
    rc = be->ops->decode(be, tokens, reqs, n, n_steps, out_tokens, out_logprobs, err);
    if (rc > 0) return decode_generic(be, tokens, reqs, n, n_steps, out_tokens, out_logprobs, err);
    if (rc < 0) return rc;
    for (int i = 0; i < n; i++) {
        int32_t *h = be->slot_tokens[reqs[i].slot] + be->slot_len[reqs[i].slot];
        h[0] = tokens[i];
        for (int s = 1; s < n_steps; s++) h[s] = out_tokens[(size_t)(s - 1) * (size_t)n + (size_t)i];
        be->slot_len[reqs[i].slot] += n_steps;
    }
    be->n_rows = n;
    return 0;
}

int blurb_backend_reset(blurb_backend *be, int slot, blurb_err *err) {
    if (!be) return blurb_seterr(err, BLURB_E_INVALID, "reset: backend is NULL");
    if (slot < 0 || slot >= be->n_slots)
        return blurb_seterr(err, BLURB_E_INVALID, "reset: slot %d out of range [0, %d)", slot, be->n_slots);
    int rc = be->ops->reset(be, slot, err);
    if (rc < 0) return rc;
    be->slot_len[slot] = 0;
    return 0;
}

void blurb_backend_free(blurb_backend *be) {
    if (!be) return;
    free_bookkeeping(be);
    be->ops->destroy(be);
}
