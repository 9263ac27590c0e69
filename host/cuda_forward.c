/* The forward pass of the CUDA backend.
 *
 * A forward call is cut into sub-batches of at most tmax tokens (a long chunk
 * may straddle two: its later tokens simply see the earlier ones in the KV
 * cache). Per sub-batch the host fills one metadata block (token, slot,
 * position per row; attention tiles; output rows), uploads it with one copy,
 * and enqueues the model with no host synchronisation:
 *   embed -> per layer: [x += mlp_out + b] LN1 -> c_attn GEMM -> bias, q and
 *   K/V into the cache -> attention (decode and prefill kernels) -> combine ->
 *   c_proj GEMM -> [x += . + b] LN2 -> c_fc GEMM -> bias + GELU -> c_proj GEMM
 *   -> [x += . + b] ln_f on the output rows -> LM head GEMM into the logits.
 * Every kernel computes a row from that row alone (attention from its own
 * sequence's cache), so a row's logits do not depend on the batch.
 *
 * Decode steps (every chunk one token) run in a CUDA graph per power-of-two
 * bucket of rows: the step is padded to the bucket with rows on the spare
 * slot n_slots, the first step of a bucket runs eagerly (it loads modules and
 * settles cuBLASLt), the second is captured and later steps replay it. Only
 * the metadata copy precedes each replay. */
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "cuda_internal.h"

void cuda_graphs_reset(cuda_backend *be) {
    for (int i = 0; i < CUDA_GRAPH_BUCKETS; i++) {
        if (be->gexec[i]) cudaGraphExecDestroy(be->gexec[i]);
        be->gexec[i] = NULL;
        be->gstate[i] = 0;
    }
}

/* Waits until the pinned metadata buffer is free again (its last copy done). */
static int meta_acquire(cuda_backend *be, int32_t **hm, blurb_err *err) {
    CU_TRY(cudaEventSynchronize(be->meta_ev[be->meta_i]));
    *hm = be->h_meta[be->meta_i];
    return 0;
}

static int meta_upload(cuda_backend *be, blurb_err *err) {
    const int i = be->meta_i;
    CU_TRY(cudaMemcpyAsync(be->d_meta, be->h_meta[i], (size_t)META_INTS(be->tmax) * sizeof(int32_t),
                           cudaMemcpyHostToDevice, be->stream));
    CU_TRY(cudaEventRecord(be->meta_ev[i], be->stream));
    be->meta_i ^= 1;
    return 0;
}

/* Enqueues the model for the M rows described by d_meta: n_dec decode tiles,
 * n_pre prefill tiles, attention over z_splits splits; ln_f and the LM head on
 * R output rows (d_meta's row list, or rows 0..R-1 when identity) into logits
 * rows row0 .. row0 + R - 1. */
static int enqueue_model(cuda_backend *be, int M, int n_dec, int n_pre, int z_splits, int R, bool identity,
                         int row0, blurb_err *err) {
    const int T = be->tmax, C = be->C, dt = be->dt;
    const int32_t *tok = be->d_meta + META_TOK(T), *slot = be->d_meta + META_SLOT(T),
                  *pos = be->d_meta + META_POS(T), *rows = be->d_meta + META_ROWS(T);
    const blurb_att_tile *dec = (const blurb_att_tile *)(be->d_meta + META_DEC(T));
    const blurb_att_tile *pre = (const blurb_att_tile *)(be->d_meta + META_PRE(T));
    cudaStream_t s = be->stream;
    int rc;
    CU_TRY(blurb_k_embed(tok, slot, pos, M, be->wte, dt, be->wpe, C, be->hist, be->n_ctx, be->x, s));
    for (int l = 0; l < be->L; l++) {
        const cuda_layer *Ly = &be->layers[l];
        const float *dl = l ? be->delta : NULL, *db = l ? be->layers[l - 1].b_mlp : NULL;
        CU_TRY(blurb_k_resid_layernorm(be->x, dl, db, NULL, M, C, 1, Ly->ln1_g, Ly->ln1_b, be->eps, be->h, dt, s));
        if ((rc = cuda_gemm_run(&be->g_qkv, be->lt, Ly->w_qkv, be->h, be->wide, M, be->ws, be->ws_size, s, err)) < 0)
            return rc;
        CU_TRY(blurb_k_qkv_split(be->wide, Ly->b_qkv, slot, pos, M, be->H, be->hd, be->n_ctx, be->q, Ly->k, Ly->v,
                                 dt, s));
        if (n_dec > 0)
            CU_TRY(blurb_k_attention_decode(dec, n_dec, be->q, Ly->k, Ly->v, dt, be->H, be->hd, be->n_ctx, z_splits,
                                            Ly->scale, be->g, be->partial, s));
        if (n_pre > 0)
            CU_TRY(blurb_k_attention_prefill(pre, n_pre, be->q, Ly->k, Ly->v, dt, be->H, be->hd, be->n_ctx, z_splits,
                                             Ly->scale, be->g, be->partial, s));
        if (z_splits > 1)
            CU_TRY(blurb_k_attention_combine(pos, M, be->partial, be->H, be->hd, z_splits, be->g, dt, s));
        if ((rc = cuda_gemm_run(&be->g_proj, be->lt, Ly->w_proj, be->g, be->delta, M, be->ws, be->ws_size, s, err)) < 0)
            return rc;
        CU_TRY(blurb_k_resid_layernorm(be->x, be->delta, Ly->b_proj, NULL, M, C, 1, Ly->ln2_g, Ly->ln2_b, be->eps,
                                       be->h, dt, s));
        if ((rc = cuda_gemm_run(&be->g_fc, be->lt, Ly->w_fc, be->h, be->wide, M, be->ws, be->ws_size, s, err)) < 0)
            return rc;
        CU_TRY(blurb_k_bias_gelu(be->wide, Ly->b_fc, M, be->n_inner, be->g, dt, s));
        if ((rc = cuda_gemm_run(&be->g_mlp, be->lt, Ly->w_mlp, be->g, be->delta, M, be->ws, be->ws_size, s, err)) < 0)
            return rc;
    }
    if (R <= 0) return 0; /* no chunk ends in this sub-batch */
    CU_TRY(blurb_k_resid_layernorm(be->x, be->delta, be->layers[be->L - 1].b_mlp, identity ? NULL : rows, R, C, 0,
                                   be->lnf_g, be->lnf_b, be->eps, be->h, dt, s));
    return cuda_gemm_run(&be->g_lm, be->lt, be->lm_head, be->h, be->logits + (size_t)row0 * (size_t)be->Vpad, R,
                         be->ws, be->ws_size, s, err);
}

/* Captures the bucket's step into a graph and launches it. Returns 0, or 1
 * when capture is not possible here (the caller runs the step eagerly). */
static int capture_and_launch(cuda_backend *be, int bi, int Mb, blurb_err *err) {
    cudaGraph_t graph = NULL;
    cudaGraphExec_t exec = NULL;
    if (cudaStreamBeginCapture(be->stream, cudaStreamCaptureModeThreadLocal) != cudaSuccess) {
        (void)cudaGetLastError();
        return 1;
    }
    blurb_err cap_err;
    blurb_err_clear(&cap_err);
    const int rc = enqueue_model(be, Mb, Mb, 0, be->max_splits, Mb, true, 0, &cap_err);
    const cudaError_t e = cudaStreamEndCapture(be->stream, &graph);
    if (rc < 0 || e != cudaSuccess || !graph) {
        /* kept for blurb_cuda_describe: the bucket runs eagerly from now on */
        snprintf(be->graph_note, sizeof be->graph_note, "bucket %d not captured: %.120s", Mb,
                 rc < 0 ? cap_err.msg : cudaGetErrorString(e));
        if (graph) (void)cudaGraphDestroy(graph);
        (void)cudaGetLastError();
        return 1;
    }
    const cudaError_t ie = cudaGraphInstantiate(&exec, graph, 0);
    (void)cudaGraphDestroy(graph);
    if (ie != cudaSuccess) {
        snprintf(be->graph_note, sizeof be->graph_note, "bucket %d not instantiated: %.120s", Mb,
                 cudaGetErrorString(ie));
        (void)cudaGetLastError();
        return 1;
    }
    be->gexec[bi] = exec;
    be->gstate[bi] = 2;
    CU_TRY(cudaGraphLaunch(exec, be->stream));
    return 0;
}

int cuda_decode_step(cuda_backend *be, const blurb_chunk *chunks, int n, const int *lens, const int32_t *d_tokens,
                     blurb_err *err) {
    int32_t *hm = NULL;
    int rc = meta_acquire(be, &hm, err);
    if (rc < 0) return rc;
    const int bi = cuda_plan_decode(chunks, n, lens, be->base.n_slots, be->tmax, hm);
    const int Mb = 1 << bi;
    if ((rc = meta_upload(be, err)) < 0) return rc;
    /* Rows 0..n-1 are the chunks in order: the device's tokens replace the
     * metadata's, stream-ordered after the upload, before the model reads them. */
    if (d_tokens)
        CU_TRY(cudaMemcpyAsync(be->d_meta + META_TOK(be->tmax), d_tokens, (size_t)n * sizeof(int32_t),
                               cudaMemcpyDeviceToDevice, be->stream));
    if (!be->graphs) return enqueue_model(be, Mb, Mb, 0, be->max_splits, Mb, true, 0, err);
    if (be->gstate[bi] == 2) {
        CU_TRY(cudaGraphLaunch(be->gexec[bi], be->stream));
        return 0;
    }
    if (be->gstate[bi] == 1) {
        rc = capture_and_launch(be, bi, Mb, err);
        if (rc <= 0) return rc;
        be->gstate[bi] = 3; /* capture refused: this bucket stays eager */
    }
    rc = enqueue_model(be, Mb, Mb, 0, be->max_splits, Mb, true, 0, err);
    if (rc == 0 && be->gstate[bi] == 0) be->gstate[bi] = 1;
    return rc;
}

int cuda_op_forward(blurb_backend *b, const blurb_chunk *chunks, int n_chunks, bool all_logits, blurb_err *err) {
    cuda_backend *be = (cuda_backend *)b;
    CU_TRY(cudaSetDevice(be->device));
    int64_t total = 0;
    bool decode = true;
    for (int i = 0; i < n_chunks; i++) {
        total += chunks[i].n_tokens;
        if (chunks[i].n_tokens != 1) decode = false;
    }
    const int64_t rows = all_logits ? total : n_chunks;
    if (rows > INT_MAX / 2)
        return blurb_seterr(err, BLURB_E_INVALID, "cuda forward: %lld logits rows is too many", (long long)rows);
    int rc = cuda_ensure_logits(be, (int)rows, err);
    if (rc < 0) return rc;
    if (decode && be->graphs && n_chunks <= be->tmax) return cuda_decode_step(be, chunks, n_chunks, b->slot_len, NULL, err);

    int ci = 0, toff = 0;
    int64_t row_next = 0;
    while (ci < n_chunks) {
        int32_t *hm = NULL;
        if ((rc = meta_acquire(be, &hm, err)) < 0) return rc;
        cuda_plan p;
        cuda_plan_next(chunks, n_chunks, b->slot_len, all_logits, be->tmax, &ci, &toff, hm, &p);
        if ((rc = meta_upload(be, err)) < 0) return rc;
        rc = enqueue_model(be, p.M, p.n_dec, p.n_pre, p.maxpos / BLURB_ATT_SPLIT + 1, p.R, all_logits, (int)row_next,
                           err);
        if (rc < 0) return rc;
        row_next += p.R;
    }
    return 0;
}
