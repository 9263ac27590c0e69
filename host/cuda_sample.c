/* Sampling for the CUDA backend: the requests go to the GPU, the sampling
 * kernel (kernels/sampling.cu) draws from the logits where they are, and only
 * the drawn ids and log-probabilities come back: one copy each way and the
 * one synchronisation the interface needs (the caller wants the tokens). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#define OMP(directive) _Pragma(directive)
#else
#define OMP(directive)
#endif

#include "cuda_internal.h"

static void fill_param(blurb_sample_param *d, const blurb_sample_req *r, int row, int slot, int hist_len) {
    const blurb_sampling *p = r->params;
    d->row = row;
    d->slot = slot;
    d->hist_len = hist_len;
    d->n_generated = r->n_generated;
    d->temperature = p->temperature;
    d->top_p = p->top_p;
    d->repetition_penalty = p->repetition_penalty;
    d->top_k = p->top_k;
    d->min_new_tokens = p->min_new_tokens;
    d->eos_token_id = p->eos_token_id;
    d->key_lo = (uint32_t)r->key;
    d->key_hi = (uint32_t)(r->key >> 32);
}

void cuda_sample_free(cuda_backend *be) {
    if (be->d_sp) cudaFree(be->d_sp);
    if (be->d_tok) cudaFree(be->d_tok);
    if (be->d_lp) cudaFree(be->d_lp);
    if (be->h_sp) cudaFreeHost(be->h_sp);
    if (be->h_tok) cudaFreeHost(be->h_tok);
    if (be->h_lp) cudaFreeHost(be->h_lp);
    be->d_sp = be->h_sp = NULL;
    be->d_tok = be->h_tok = NULL;
    be->d_lp = be->h_lp = NULL;
    be->sp_cap = 0;
    if (be->h_rows) cudaFreeHost(be->h_rows);
    be->h_rows = NULL;
    for (int t = 0; t < be->n_host_scratch; t++) blurb_sampler_scratch_free(be->host_scratch[t]);
    free(be->host_scratch);
    be->host_scratch = NULL;
    be->n_host_scratch = 0;
}

static int ensure_requests(cuda_backend *be, int n, blurb_err *err) {
    if (n <= be->sp_cap) return 0;
    int cap = be->sp_cap > 0 ? be->sp_cap : 64;
    while (cap < n) cap *= 2;
    CU_TRY(cudaStreamSynchronize(be->stream));
    cuda_sample_free(be);
    CU_TRY(cudaMalloc((void **)&be->d_sp, (size_t)cap * sizeof *be->d_sp));
    CU_TRY(cudaMalloc((void **)&be->d_tok, (size_t)cap * sizeof *be->d_tok));
    CU_TRY(cudaMalloc((void **)&be->d_lp, (size_t)cap * sizeof *be->d_lp));
    CU_TRY(cudaMallocHost((void **)&be->h_sp, (size_t)cap * sizeof *be->h_sp));
    CU_TRY(cudaMallocHost((void **)&be->h_tok, (size_t)cap * sizeof *be->h_tok));
    CU_TRY(cudaMallocHost((void **)&be->h_lp, (size_t)cap * sizeof *be->h_lp));
    be->sp_cap = cap;
    return 0;
}

static int host_buffers(cuda_backend *be, blurb_err *err) {
    if (be->h_rows && be->host_scratch) return 0;
    int nt = 1;
#ifdef _OPENMP
    nt = omp_get_max_threads();
#endif
    if (!be->h_rows)
        CU_TRY(cudaMallocHost((void **)&be->h_rows, (size_t)CUDA_HOST_ROWS * (size_t)be->V * sizeof(float)));
    if (!be->host_scratch) {
        be->host_scratch = calloc((size_t)nt, sizeof *be->host_scratch);
        if (!be->host_scratch) return blurb_seterr(err, BLURB_E_NOMEM, "cuda backend: out of memory for host sampling");
        be->n_host_scratch = nt;
        for (int t = 0; t < nt; t++)
            if (!(be->host_scratch[t] = blurb_sampler_scratch_new(be->V))) {
                cuda_sample_free(be);
                return blurb_seterr(err, BLURB_E_NOMEM, "cuda backend: out of memory for host sampling");
            }
    }
    return 0;
}

/* The kernel knows the issue-4 controls only. A request that uses logit
 * bias, presence/frequency, min-p, no-repeat n-grams or an exclusion list
 * (--ban-words redraws) is drawn again on the host by the reference
 * blurb_sample_row from its fp32 logits row, so its result is exactly the CPU
 * backend's for the same logits and never silently differs; the kernel's draw
 * for it is discarded. Rows come over CUDA_HOST_ROWS at a time with one
 * synchronisation, and are drawn on the host threads in parallel (each
 * request's draw depends only on its own row, history and stream). */
static int host_redraw(cuda_backend *be, const blurb_sample_req *reqs, int n, int32_t *tokens, float *logprobs,
                       blurb_err *err) {
    const blurb_backend *b = &be->base;
    int idx[CUDA_HOST_ROWS];
    for (int i0 = 0; i0 < n;) {
        int m = 0;
        for (; i0 < n && m < CUDA_HOST_ROWS; i0++)
            if (blurb_sampling_uses_extended(reqs[i0].params)) idx[m++] = i0;
        if (m == 0) break;
        int rc = host_buffers(be, err);
        if (rc < 0) return rc;
        for (int k = 0; k < m; k++)
            CU_TRY(cudaMemcpyAsync(be->h_rows + (size_t)k * (size_t)be->V,
                                   be->logits + (size_t)reqs[idx[k]].row * (size_t)be->Vpad,
                                   (size_t)be->V * sizeof(float), cudaMemcpyDeviceToHost, be->stream));
        CU_TRY(cudaStreamSynchronize(be->stream));
        int failed = -1;
        const int nt = be->n_host_scratch;
        (void)nt;
        OMP("omp parallel for num_threads(nt) schedule(dynamic, 1)")
        for (int k = 0; k < m; k++) {
            int t = 0;
#ifdef _OPENMP
            t = omp_get_thread_num();
#endif
            const blurb_sample_req *r = &reqs[idx[k]];
            float lp = 0.0f;
            const int tok = blurb_sample_row(be->h_rows + (size_t)k * (size_t)be->V, be->V, r->params,
                                             b->slot_tokens[r->slot], b->slot_len[r->slot], r->n_generated, r->key,
                                             (uint32_t)r->n_generated, be->host_scratch[t], logprobs ? &lp : NULL);
            if (tok < 0) {
                OMP("omp critical(blurb_cuda_host_redraw)")
                failed = idx[k];
            } else {
                tokens[idx[k]] = tok;
                if (logprobs) logprobs[idx[k]] = lp;
            }
        }
        if (failed >= 0)
            return blurb_seterr(err, BLURB_E_INVALID, "cuda backend: the host sampler refused request %d", failed);
    }
    return 0;
}

int cuda_op_sample(blurb_backend *b, const blurb_sample_req *reqs, int n, int32_t *tokens, float *logprobs,
                   blurb_err *err) {
    cuda_backend *be = (cuda_backend *)b;
    CU_TRY(cudaSetDevice(be->device));
    int rc = ensure_requests(be, n, err);
    if (rc < 0) return rc;
    for (int i = 0; i < n; i++) {
        const int slot = reqs[i].slot;
        /* the history is every token fed to the slot so far (prompt + generated) */
        fill_param(&be->h_sp[i], &reqs[i], reqs[i].row, slot, b->slot_len[slot]);
    }
    CU_TRY(cudaMemcpyAsync(be->d_sp, be->h_sp, (size_t)n * sizeof *be->h_sp, cudaMemcpyHostToDevice, be->stream));
    for (int c0 = 0; c0 < n; c0 += CUDA_SAMPLE_CHUNK) {
        const int cnt = n - c0 < CUDA_SAMPLE_CHUNK ? n - c0 : CUDA_SAMPLE_CHUNK;
        CU_TRY(blurb_k_sample(be->d_sp + c0, cnt, be->logits, be->Vpad, be->V, be->hist, be->n_ctx,
                              be->smp_scratch, be->d_tok + c0, be->d_lp + c0, be->stream));
    }
    CU_TRY(cudaMemcpyAsync(be->h_tok, be->d_tok, (size_t)n * sizeof *be->h_tok, cudaMemcpyDeviceToHost, be->stream));
    if (logprobs)
        CU_TRY(cudaMemcpyAsync(be->h_lp, be->d_lp, (size_t)n * sizeof *be->h_lp, cudaMemcpyDeviceToHost, be->stream));
    CU_TRY(cudaStreamSynchronize(be->stream));
    memcpy(tokens, be->h_tok, (size_t)n * sizeof *tokens);
    if (logprobs) memcpy(logprobs, be->h_lp, (size_t)n * sizeof *logprobs);
    return host_redraw(be, reqs, n, tokens, logprobs, err);
}

/* ---- decode: several steps, the draws fed back on the device ------------------------------ */

int cuda_op_decode(blurb_backend *b, const int32_t *tokens, const blurb_sample_req *reqs, int n, int n_steps,
                   int32_t *out_tokens, float *out_logprobs, blurb_err *err) {
    cuda_backend *be = (cuda_backend *)b;
    if (n > be->tmax) return 1;
    for (int i = 0; i < n; i++)
        if (blurb_sampling_uses_extended(reqs[i].params)) return 1; /* drawn on the host: see cuda_op_sample */
    if ((int64_t)n * n_steps > INT32_MAX / 2) return 1;
    CU_TRY(cudaSetDevice(be->device));
    int rc = cuda_ensure_logits(be, n, err);
    if (rc < 0) return rc;
    if ((rc = ensure_requests(be, n * n_steps, err)) < 0) return rc;
    /* h_sp is free: every call that copies from it (sample, decode) waits for
     * its stream before returning. */
    int *lens = malloc((size_t)b->n_slots * sizeof *lens);
    blurb_chunk *chunks = malloc((size_t)n * sizeof *chunks);
    if (!lens || !chunks) {
        free(lens);
        free(chunks);
        return blurb_seterr(err, BLURB_E_NOMEM, "cuda decode: out of memory");
    }
    memcpy(lens, b->slot_len, (size_t)b->n_slots * sizeof *lens);
    /* Every step's parameters at once: step s differs only in the Philox
     * counter and the history length. */
    for (int s = 0; s < n_steps; s++)
        for (int i = 0; i < n; i++) {
            blurb_sample_req r = reqs[i];
            r.n_generated += s;
            fill_param(&be->h_sp[(size_t)s * n + i], &r, i, r.slot, lens[r.slot] + s + 1);
        }
    for (int i = 0; i < n; i++) chunks[i] = (blurb_chunk){reqs[i].slot, &tokens[i], 1};
    cudaError_t e = cudaMemcpyAsync(be->d_sp, be->h_sp, (size_t)n * (size_t)n_steps * sizeof *be->h_sp,
                                    cudaMemcpyHostToDevice, be->stream);
    if (e != cudaSuccess) rc = cuda_fail(err, e, "cudaMemcpyAsync(params)", __FILE__, __LINE__);
    for (int s = 0; s < n_steps && !rc; s++) {
        const size_t off = (size_t)s * (size_t)n;
        rc = cuda_decode_step(be, chunks, n, lens, s ? be->d_tok + off - n : NULL, err);
        for (int c0 = 0; c0 < n && !rc; c0 += CUDA_SAMPLE_CHUNK) {
            const int cnt = n - c0 < CUDA_SAMPLE_CHUNK ? n - c0 : CUDA_SAMPLE_CHUNK;
            e = blurb_k_sample(be->d_sp + off + c0, cnt, be->logits, be->Vpad, be->V, be->hist, be->n_ctx,
                               be->smp_scratch, be->d_tok + off + c0, be->d_lp + off + c0, be->stream);
            if (e != cudaSuccess) rc = cuda_fail(err, e, "blurb_k_sample", __FILE__, __LINE__);
        }
        for (int i = 0; i < n; i++) lens[reqs[i].slot]++;
    }
    free(lens);
    free(chunks);
    if (rc) {
        /* h_sp's upload may still be queued: let it finish before anyone reuses h_sp. */
        (void)cudaStreamSynchronize(be->stream);
        (void)cudaGetLastError();
        return rc;
    }
    const size_t total = (size_t)n * (size_t)n_steps;
    CU_TRY(cudaMemcpyAsync(be->h_tok, be->d_tok, total * sizeof *be->h_tok, cudaMemcpyDeviceToHost, be->stream));
    if (out_logprobs)
        CU_TRY(cudaMemcpyAsync(be->h_lp, be->d_lp, total * sizeof *be->h_lp, cudaMemcpyDeviceToHost, be->stream));
    CU_TRY(cudaStreamSynchronize(be->stream)); /* the one synchronisation of the call */
    memcpy(out_tokens, be->h_tok, total * sizeof *out_tokens);
    if (out_logprobs) memcpy(out_logprobs, be->h_lp, total * sizeof *out_logprobs);
    return 0;
}

/* ---- test entry point: the kernel on logits given by the caller ---------------------------- */

typedef struct rows_ctx {
    cudaStream_t stream;
    float *logits;
    int32_t *hist, *tok;
    float *lp;
    blurb_sample_param *sp;
    void *scratch;
} rows_ctx;

static int sample_rows_run(rows_ctx *x, const float *logits, int n, int V, const blurb_sample_req *reqs,
                           const int32_t *const *history, const int *n_history, int32_t *tokens, float *logprobs,
                           blurb_err *err) {
    int hmax = 1;
    for (int i = 0; i < n; i++) {
        if (n_history[i] < 0) return blurb_seterr(err, BLURB_E_INVALID, "sample_rows: negative history length");
        if (n_history[i] > hmax) hmax = n_history[i];
    }
    /* A blocking stream: the plain cudaMemcpy uploads below run on the legacy
     * default stream, and a pageable upload may return before its data has
     * landed; a non-blocking stream would not wait for it. */
    CU_TRY(cudaStreamCreate(&x->stream));
    CU_TRY(blurb_k_sample_setup(V));
    CU_TRY(cudaMalloc((void **)&x->logits, (size_t)n * (size_t)V * sizeof(float)));
    CU_TRY(cudaMalloc((void **)&x->hist, (size_t)n * (size_t)hmax * sizeof(int32_t)));
    CU_TRY(cudaMalloc((void **)&x->tok, (size_t)n * sizeof(int32_t)));
    CU_TRY(cudaMalloc((void **)&x->lp, (size_t)n * sizeof(float)));
    CU_TRY(cudaMalloc((void **)&x->sp, (size_t)n * sizeof(blurb_sample_param)));
    CU_TRY(cudaMalloc(&x->scratch, (size_t)CUDA_SAMPLE_CHUNK * blurb_k_sample_scratch_bytes(V)));
    blurb_sample_param *sp = malloc((size_t)n * sizeof *sp);
    if (!sp) return blurb_seterr(err, BLURB_E_NOMEM, "sample_rows: out of memory");
    for (int i = 0; i < n; i++) fill_param(&sp[i], &reqs[i], i, i, n_history[i]);
    cudaError_t e = cudaMemcpy(x->sp, sp, (size_t)n * sizeof *sp, cudaMemcpyHostToDevice);
    free(sp);
    if (e != cudaSuccess) return cuda_fail(err, e, "cudaMemcpy(params)", __FILE__, __LINE__);
    CU_TRY(cudaMemcpy(x->logits, logits, (size_t)n * (size_t)V * sizeof(float), cudaMemcpyHostToDevice));
    for (int i = 0; i < n; i++)
        if (n_history[i] > 0)
            CU_TRY(cudaMemcpy(x->hist + (size_t)i * (size_t)hmax, history[i], (size_t)n_history[i] * sizeof(int32_t),
                              cudaMemcpyHostToDevice));
    for (int c0 = 0; c0 < n; c0 += CUDA_SAMPLE_CHUNK) {
        const int cnt = n - c0 < CUDA_SAMPLE_CHUNK ? n - c0 : CUDA_SAMPLE_CHUNK;
        CU_TRY(blurb_k_sample(x->sp + c0, cnt, x->logits, V, V, x->hist, hmax, x->scratch, x->tok + c0, x->lp + c0,
                              x->stream));
    }
    CU_TRY(cudaStreamSynchronize(x->stream));
    CU_TRY(cudaMemcpy(tokens, x->tok, (size_t)n * sizeof(int32_t), cudaMemcpyDeviceToHost));
    if (logprobs) CU_TRY(cudaMemcpy(logprobs, x->lp, (size_t)n * sizeof(float), cudaMemcpyDeviceToHost));
    return 0;
}

int blurb_cuda_sample_rows(int device, const float *logits, int n, int vocab_size, const blurb_sample_req *reqs,
                           const int32_t *const *history, const int *n_history, int32_t *tokens, float *logprobs,
                           blurb_err *err) {
    if (!logits || n < 1 || vocab_size < 1 || !reqs || !history || !n_history || !tokens)
        return blurb_seterr(err, BLURB_E_INVALID, "sample_rows: bad arguments");
    for (int i = 0; i < n; i++)
        if (!reqs[i].params) return blurb_seterr(err, BLURB_E_INVALID, "sample_rows: request %d has no params", i);
    CU_TRY(cudaSetDevice(device));
    rows_ctx x;
    memset(&x, 0, sizeof x);
    int rc = sample_rows_run(&x, logits, n, vocab_size, reqs, history, n_history, tokens, logprobs, err);
    if (x.stream) cudaStreamSynchronize(x.stream);
    void *bufs[] = {x.logits, x.hist, x.tok, x.lp, x.sp, x.scratch};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        if (bufs[i]) cudaFree(bufs[i]);
    if (x.stream) cudaStreamDestroy(x.stream);
    (void)cudaGetLastError();
    return rc;
}
