/* CUDA backend: device set-up, weight upload, KV-cache sizing, logits, reset
 * and teardown. The forward pass is in host/cuda_forward.c, sampling in
 * host/cuda_sample.c, GEMMs in host/cuda_gemm.c, kernels in kernels/.
 *
 * Numerics: weights, KV cache and GEMM inputs in the compute dtype T (bf16 by
 * default, fp16, or fp32); the residual stream, GEMM outputs, LayerNorm,
 * attention scores/softmax and logits in fp32; biases and LayerNorm
 * parameters kept in fp32. The LM head is wte when tied. */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_internal.h"

/* ---- errors ------------------------------------------------------------------ */

static const char *short_path(const char *file) {
    /* "…/host/cuda_backend.c" -> "host/cuda_backend.c" */
    const char *last = strrchr(file, '/');
    if (!last) return file;
    const char *p = last;
    while (p > file && p[-1] != '/') p--;
    return p > file ? p : last + 1;
}

int cuda_fail(blurb_err *err, cudaError_t e, const char *call, const char *file, int line) {
    (void)cudaGetLastError(); /* clear a non-sticky error so later calls are not blamed */
    return blurb_seterr(err, e == cudaErrorMemoryAllocation ? BLURB_E_NOMEM : BLURB_E_DEVICE,
                        "CUDA error at %s:%d: %s: %s (%s)", short_path(file), line, call,
                        cudaGetErrorName(e), cudaGetErrorString(e));
}

int cublas_fail(blurb_err *err, cublasStatus_t st, const char *call, const char *file, int line) {
    return blurb_seterr(err, st == CUBLAS_STATUS_ALLOC_FAILED ? BLURB_E_NOMEM : BLURB_E_DEVICE,
                        "cuBLAS error at %s:%d: %s: %s (%s)", short_path(file), line, call,
                        cublasGetStatusName(st), cublasGetStatusString(st));
}

bool blurb_cuda_available(void) {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        (void)cudaGetLastError();
        return false;
    }
    return n > 0;
}

/* ---- helpers --------------------------------------------------------------------- */

static size_t align256(size_t n) { return (n + 255) & ~(size_t)255; }

static int pow2ceil(int n) {
    int p = 1;
    while (p < n) p <<= 1;
    return p;
}

static int64_t numel(const blurb_tensor *t) { return t->shape[0] * t->shape[1]; }

/* Copies tensor t (file dtype) into staging and converts it into dst. */
static int upload(cuda_backend *be, const blurb_tensor *t, void *staging, void *dst, int dst_dt,
                  bool transpose, const char *what, blurb_err *err) {
    if (!t->data || numel(t) <= 0)
        return blurb_seterr(err, BLURB_E_INVALID, "cuda backend: tensor %s has no data", what);
    const size_t bytes = (size_t)numel(t) * blurb_dtype_size(t->dtype);
    CU_TRY(cudaMemcpyAsync(staging, t->data, bytes, cudaMemcpyHostToDevice, be->stream));
    CU_TRY(blurb_k_convert(staging, (int)t->dtype, dst, dst_dt, t->shape[0], t->shape[1], transpose ? 1 : 0,
                           be->stream));
    return 0;
}

static int check_vec(const blurb_tensor *t, int64_t n, const char *what, blurb_err *err) {
    if (numel(t) != n)
        return blurb_seterr(err, BLURB_E_INVALID, "cuda backend: %s has %lld elements, expected %lld", what,
                            (long long)numel(t), (long long)n);
    return 0;
}
static int check_mat(const blurb_tensor *t, int64_t r, int64_t c, const char *what, blurb_err *err) {
    if (t->shape[0] != r || t->shape[1] != c)
        return blurb_seterr(err, BLURB_E_INVALID, "cuda backend: %s is [%lld, %lld], expected [%lld, %lld]", what,
                            (long long)t->shape[0], (long long)t->shape[1], (long long)r, (long long)c);
    return 0;
}

/* ---- weights ------------------------------------------------------------------------ */

static int upload_weights(cuda_backend *be, const blurb_model *m, blurb_err *err) {
    const blurb_config *c = &be->cfg;
    const int64_t C = be->C, V = be->V, F = be->n_inner, N = be->n_ctx;
    const size_t ts = be->tsize;
    int rc;
    /* shapes first, so nothing is allocated for a malformed model */
    if ((rc = check_mat(&m->wte, V, C, "wte", err)) < 0) return rc;
    if ((rc = check_mat(&m->wpe, N, C, "wpe", err)) < 0) return rc;
    if (!m->lm_head_tied && (rc = check_mat(&m->lm_head, V, C, "lm_head", err)) < 0) return rc;
    if ((rc = check_vec(&m->ln_f_w, C, "ln_f.weight", err)) < 0) return rc;
    if ((rc = check_vec(&m->ln_f_b, C, "ln_f.bias", err)) < 0) return rc;
    size_t staging_bytes = 0;
#define STAGE(t) do { size_t b_ = (size_t)numel(&(t)) * blurb_dtype_size((t).dtype); \
                      if (b_ > staging_bytes) staging_bytes = b_; } while (0)
    STAGE(m->wte);
    STAGE(m->wpe);
    if (!m->lm_head_tied) STAGE(m->lm_head);
    for (int l = 0; l < c->n_layer; l++) {
        const blurb_layer *L = &m->layers[l];
        char what[64];
        snprintf(what, sizeof what, "h.%d.attn.c_attn.weight", l);
        if ((rc = check_mat(&L->c_attn_w, C, 3 * C, what, err)) < 0) return rc;
        snprintf(what, sizeof what, "h.%d.attn.c_proj.weight", l);
        if ((rc = check_mat(&L->attn_c_proj_w, C, C, what, err)) < 0) return rc;
        snprintf(what, sizeof what, "h.%d.mlp.c_fc.weight", l);
        if ((rc = check_mat(&L->c_fc_w, C, F, what, err)) < 0) return rc;
        snprintf(what, sizeof what, "h.%d.mlp.c_proj.weight", l);
        if ((rc = check_mat(&L->mlp_c_proj_w, F, C, what, err)) < 0) return rc;
        snprintf(what, sizeof what, "h.%d biases / layer norms", l);
        if ((rc = check_vec(&L->c_attn_b, 3 * C, what, err)) < 0 || (rc = check_vec(&L->attn_c_proj_b, C, what, err)) < 0 ||
            (rc = check_vec(&L->c_fc_b, F, what, err)) < 0 || (rc = check_vec(&L->mlp_c_proj_b, C, what, err)) < 0 ||
            (rc = check_vec(&L->ln_1_w, C, what, err)) < 0 || (rc = check_vec(&L->ln_1_b, C, what, err)) < 0 ||
            (rc = check_vec(&L->ln_2_w, C, what, err)) < 0 || (rc = check_vec(&L->ln_2_b, C, what, err)) < 0)
            return rc;
        STAGE(L->c_attn_w);
        STAGE(L->attn_c_proj_w);
        STAGE(L->c_fc_w);
        STAGE(L->mlp_c_proj_w);
        STAGE(L->c_attn_b);
        STAGE(L->c_fc_b);
    }
#undef STAGE

    /* one pool: matrices in T, vectors in fp32, every tensor 256-byte aligned */
    const size_t per_layer = align256(3 * C * C * ts) + align256(C * C * ts) + align256(F * C * ts) +
                             align256(C * F * ts) + 6 * align256(C * 4) + align256(3 * C * 4) + align256(F * 4);
    size_t total = align256(V * C * ts) + (m->lm_head_tied ? 0 : align256(V * C * ts)) + align256(N * C * 4) +
                   2 * align256(C * 4) + per_layer * (size_t)c->n_layer;
    CU_TRY(cudaMalloc(&be->wpool, total));
    char *p = (char *)be->wpool;
#define TAKE(ptr, bytes) do { (ptr) = (void *)p; p += align256(bytes); } while (0)
    void *tmp;
    TAKE(be->wte, V * C * ts);
    if (m->lm_head_tied) be->lm_head = be->wte;
    else TAKE(be->lm_head, V * C * ts);
    TAKE(tmp, N * C * 4); be->wpe = tmp;
    TAKE(tmp, C * 4); be->lnf_g = tmp;
    TAKE(tmp, C * 4); be->lnf_b = tmp;
    for (int l = 0; l < c->n_layer; l++) {
        cuda_layer *Ly = &be->layers[l];
        TAKE(Ly->w_qkv, 3 * C * C * ts);
        TAKE(Ly->w_proj, C * C * ts);
        TAKE(Ly->w_fc, F * C * ts);
        TAKE(Ly->w_mlp, C * F * ts);
        TAKE(tmp, C * 4); Ly->ln1_g = tmp;
        TAKE(tmp, C * 4); Ly->ln1_b = tmp;
        TAKE(tmp, C * 4); Ly->ln2_g = tmp;
        TAKE(tmp, C * 4); Ly->ln2_b = tmp;
        TAKE(tmp, 3 * C * 4); Ly->b_qkv = tmp;
        TAKE(tmp, C * 4); Ly->b_proj = tmp;
        TAKE(tmp, F * 4); Ly->b_fc = tmp;
        TAKE(tmp, C * 4); Ly->b_mlp = tmp;
    }
#undef TAKE

    void *staging = NULL;
    CU_TRY(cudaMalloc(&staging, staging_bytes));
    const int T = be->dt, F32 = BLURB_DTYPE_F32;
    rc = upload(be, &m->wte, staging, be->wte, T, false, "wte", err);
    if (!rc && !m->lm_head_tied) rc = upload(be, &m->lm_head, staging, be->lm_head, T, false, "lm_head", err);
    if (!rc) rc = upload(be, &m->wpe, staging, be->wpe, F32, false, "wpe", err);
    if (!rc) rc = upload(be, &m->ln_f_w, staging, be->lnf_g, F32, false, "ln_f.weight", err);
    if (!rc) rc = upload(be, &m->ln_f_b, staging, be->lnf_b, F32, false, "ln_f.bias", err);
    for (int l = 0; l < c->n_layer && !rc; l++) {
        const blurb_layer *L = &m->layers[l];
        cuda_layer *Ly = &be->layers[l];
        /* HF Conv1D keeps W as [in, out]; store [out, in] for the transposed-A GEMM */
        rc = upload(be, &L->c_attn_w, staging, Ly->w_qkv, T, true, "c_attn.weight", err);
        if (!rc) rc = upload(be, &L->attn_c_proj_w, staging, Ly->w_proj, T, true, "attn.c_proj.weight", err);
        if (!rc) rc = upload(be, &L->c_fc_w, staging, Ly->w_fc, T, true, "mlp.c_fc.weight", err);
        if (!rc) rc = upload(be, &L->mlp_c_proj_w, staging, Ly->w_mlp, T, true, "mlp.c_proj.weight", err);
        if (!rc) rc = upload(be, &L->ln_1_w, staging, Ly->ln1_g, F32, false, "ln_1.weight", err);
        if (!rc) rc = upload(be, &L->ln_1_b, staging, Ly->ln1_b, F32, false, "ln_1.bias", err);
        if (!rc) rc = upload(be, &L->ln_2_w, staging, Ly->ln2_g, F32, false, "ln_2.weight", err);
        if (!rc) rc = upload(be, &L->ln_2_b, staging, Ly->ln2_b, F32, false, "ln_2.bias", err);
        if (!rc) rc = upload(be, &L->c_attn_b, staging, Ly->b_qkv, F32, false, "c_attn.bias", err);
        if (!rc) rc = upload(be, &L->attn_c_proj_b, staging, Ly->b_proj, F32, false, "attn.c_proj.bias", err);
        if (!rc) rc = upload(be, &L->c_fc_b, staging, Ly->b_fc, F32, false, "mlp.c_fc.bias", err);
        if (!rc) rc = upload(be, &L->mlp_c_proj_b, staging, Ly->b_mlp, F32, false, "mlp.c_proj.bias", err);
        if (rc) blurb_err_prefix(err, "layer %d", l);
    }
    /* the staging buffer is reused tensor after tensor in stream order; wait before freeing */
    cudaError_t e = cudaStreamSynchronize(be->stream);
    const cudaError_t fe = cudaFree(staging);
    if (rc) return rc;
    if (e == cudaSuccess) e = fe;
    if (e != cudaSuccess) return cuda_fail(err, e, "cudaStreamSynchronize or cudaFree (weight upload)", __FILE__, __LINE__);
    return 0;
}

/* ---- buffers sized by tmax ------------------------------------------------------------------- */

static int alloc_activations(cuda_backend *be, blurb_err *err) {
    const size_t T = (size_t)be->tmax, C = (size_t)be->C, F = (size_t)be->n_inner, ts = be->tsize;
    const size_t wide = 3 * C > F ? 3 * C : F;
    const size_t gw = C > F ? C : F;
    const size_t sizes[7] = {
        T * C * 4,                                                   /* x */
        T * C * 4,                                                   /* delta */
        T * wide * 4,                                                /* wide */
        T * C * 4,                                                   /* q */
        T * (size_t)be->H * (size_t)be->max_splits * (size_t)(be->hd + 2) * 4, /* partial */
        T * C * ts,                                                  /* h */
        T * gw * ts,                                                 /* g */
    };
    size_t total = 0;
    for (int i = 0; i < 7; i++) total += align256(sizes[i]);
    CU_TRY(cudaMalloc(&be->act, total));
    char *p = (char *)be->act;
    void *ptr[7];
    for (int i = 0; i < 7; i++) {
        ptr[i] = p;
        p += align256(sizes[i]);
    }
    be->x = ptr[0];
    be->delta = ptr[1];
    be->wide = ptr[2];
    be->q = ptr[3];
    be->partial = ptr[4];
    be->h = ptr[5];
    be->g = ptr[6];

    CU_TRY(cudaMalloc((void **)&be->d_meta, (size_t)META_INTS(be->tmax) * sizeof(int32_t)));
    for (int i = 0; i < 2; i++) {
        CU_TRY(cudaMallocHost((void **)&be->h_meta[i], (size_t)META_INTS(be->tmax) * sizeof(int32_t)));
        memset(be->h_meta[i], 0, (size_t)META_INTS(be->tmax) * sizeof(int32_t));
        CU_TRY(cudaEventCreateWithFlags(&be->meta_ev[i], cudaEventDisableTiming));
    }
    CU_TRY(cudaMalloc(&be->smp_scratch, (size_t)CUDA_SAMPLE_CHUNK * blurb_k_sample_scratch_bytes(be->V)));
    return 0;
}

int cuda_ensure_logits(cuda_backend *be, int rows, blurb_err *err) {
    if (rows <= be->logits_cap) return 0;
    int cap = be->logits_cap > 0 ? be->logits_cap : 1;
    while (cap < rows) cap = cap > INT_MAX / 2 ? rows : cap * 2;
    CU_TRY(cudaStreamSynchronize(be->stream));
    cuda_graphs_reset(be); /* graphs hold the old address */
    if (be->logits) CU_TRY(cudaFree(be->logits));
    be->logits = NULL;
    be->logits_cap = 0;
    CU_TRY(cudaMalloc((void **)&be->logits, (size_t)cap * (size_t)be->Vpad * sizeof(float)));
    be->logits_cap = cap;
    return 0;
}

/* ---- ops ---------------------------------------------------------------------------------------- */

static int cuda_op_logits(blurb_backend *b, int row, float *dst, blurb_err *err) {
    cuda_backend *be = (cuda_backend *)b;
    CU_TRY(cudaSetDevice(be->device));
    CU_TRY(cudaMemcpyAsync(dst, be->logits + (size_t)row * (size_t)be->Vpad, (size_t)be->V * sizeof(float),
                           cudaMemcpyDeviceToHost, be->stream));
    CU_TRY(cudaStreamSynchronize(be->stream));
    return 0;
}

static int cuda_op_reset(blurb_backend *b, int slot, blurb_err *err) {
    /* A slot's cache rows are only ever read below its length, so emptying it
     * needs no device work: the next sequence overwrites them position by position. */
    (void)b;
    (void)slot;
    (void)err;
    return 0;
}

static void cuda_op_destroy(blurb_backend *b) {
    cuda_backend *be = (cuda_backend *)b;
    if (!be) return;
    cudaSetDevice(be->device);
    if (be->stream) cudaStreamSynchronize(be->stream);
    cuda_graphs_reset(be);
    cuda_gemm_free(&be->g_qkv);
    cuda_gemm_free(&be->g_proj);
    cuda_gemm_free(&be->g_fc);
    cuda_gemm_free(&be->g_mlp);
    cuda_gemm_free(&be->g_lm);
    cuda_sample_free(be);
    for (int i = 0; i < 2; i++) {
        if (be->h_meta[i]) cudaFreeHost(be->h_meta[i]);
        if (be->meta_ev[i]) cudaEventDestroy(be->meta_ev[i]);
    }
    void *bufs[] = {be->wpool, be->kv, be->hist, be->act, be->logits, be->d_meta, be->ws, be->smp_scratch};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        if (bufs[i]) cudaFree(bufs[i]);
    if (be->lt) cublasLtDestroy(be->lt);
    if (be->stream) cudaStreamDestroy(be->stream);
    (void)cudaGetLastError();
    free(be->layers);
    free(be);
}

static const struct blurb_backend_ops cuda_ops = {
    .name = "cuda",
    .forward = cuda_op_forward,
    .logits = cuda_op_logits,
    .sample = cuda_op_sample,
    .decode = cuda_op_decode,
    .reset = cuda_op_reset,
    .destroy = cuda_op_destroy,
};

/* ---- create ------------------------------------------------------------------------------------- */

static int env_int(const char *name, int def) {
    const char *s = getenv(name);
    if (!s || !*s) return def;
    char *end;
    long v = strtol(s, &end, 10);
    return *end == '\0' && v >= INT_MIN && v <= INT_MAX ? (int)v : def;
}

static int setup(cuda_backend *be, const blurb_model *m, const blurb_backend_opts *o, blurb_err *err) {
    int n_dev = 0;
    cudaError_t e = cudaGetDeviceCount(&n_dev);
    if (e != cudaSuccess || n_dev == 0) {
        (void)cudaGetLastError();
        return blurb_seterr(err, BLURB_E_DEVICE, "no CUDA device available (%s)",
                            e != cudaSuccess ? cudaGetErrorString(e) : "device count 0");
    }
    if (o->device < 0 || o->device >= n_dev)
        return blurb_seterr(err, BLURB_E_DEVICE, "CUDA device %d does not exist (%d visible)", o->device, n_dev);
    be->device = o->device;
    CU_TRY(cudaSetDevice(be->device));
    e = blurb_k_check_image();
    if (e != cudaSuccess) {
        struct cudaDeviceProp prop;
        int rc2 = cudaGetDeviceProperties(&prop, be->device);
        (void)cudaGetLastError();
        return blurb_seterr(err, BLURB_E_UNSUPPORTED,
                            "this build's kernels cannot run on CUDA device %d (%s, compute capability %d.%d): %s; "
                            "rebuild with CMAKE_CUDA_ARCHITECTURES for it", be->device,
                            rc2 == cudaSuccess ? prop.name : "?", rc2 == cudaSuccess ? prop.major : 0,
                            rc2 == cudaSuccess ? prop.minor : 0, cudaGetErrorString(e));
    }
    CU_TRY(cudaStreamCreateWithFlags(&be->stream, cudaStreamNonBlocking));
    LT_TRY(cublasLtCreate(&be->lt));

    int rc = upload_weights(be, m, err);
    if (rc < 0) return rc;
    rc = alloc_activations(be, err);
    if (rc < 0) return rc;
    be->ws_size = CUDA_GEMM_WORKSPACE;
    CU_TRY(cudaMalloc(&be->ws, be->ws_size));

    /* GEMM shapes; batch-invariant mode pins one algorithm each (cuda_gemm.c) */
    int m_ref = env_int("BLURB_CUDA_GEMM_MREF", 128);
    if (m_ref < 1) m_ref = 1;
    if (m_ref > be->tmax) m_ref = be->tmax;
    const int C = be->C, F = be->n_inner;
    if ((rc = cuda_gemm_init(&be->g_qkv, "c_attn", be->lt, be->dt, 3 * C, C, 3 * C, m_ref, be->tmax, be->invariant, be->ws_size, err)) < 0 ||
        (rc = cuda_gemm_init(&be->g_proj, "attn.c_proj", be->lt, be->dt, C, C, C, m_ref, be->tmax, be->invariant, be->ws_size, err)) < 0 ||
        (rc = cuda_gemm_init(&be->g_fc, "mlp.c_fc", be->lt, be->dt, F, C, F, m_ref, be->tmax, be->invariant, be->ws_size, err)) < 0 ||
        (rc = cuda_gemm_init(&be->g_mlp, "mlp.c_proj", be->lt, be->dt, C, F, C, m_ref, be->tmax, be->invariant, be->ws_size, err)) < 0 ||
        (rc = cuda_gemm_init(&be->g_lm, "lm_head", be->lt, be->dt, be->V, C, be->Vpad, m_ref, be->tmax, be->invariant, be->ws_size, err)) < 0)
        return rc;

    CU_TRY(blurb_k_attention_setup(be->hd, be->dt));
    CU_TRY(blurb_k_sample_setup(be->V));

    /* KV cache slots from what is left, keeping a reserve for cuBLAS, graphs
     * and the allocator; the extra (dummy) slot takes CUDA-graph padding rows. */
    size_t free_b = 0, total_b = 0;
    CU_TRY(cudaMemGetInfo(&free_b, &total_b));
    const size_t kv_slot = 2 * (size_t)be->L * (size_t)C * (size_t)be->n_ctx * be->tsize;
    const size_t per_slot = kv_slot + (size_t)be->n_ctx * 4 + 2 * (size_t)be->Vpad * 4 + 64;
    const size_t reserve = ((size_t)512 << 20) + total_b / 50 + kv_slot + (size_t)be->n_ctx * 4;
    const size_t fit = free_b > reserve ? (free_b - reserve) / per_slot : 0;
    if (fit < 1)
        return blurb_seterr(err, BLURB_E_NOMEM,
                            "not enough GPU memory for one sequence slot: %.1f MiB per slot (KV cache of %d tokens), "
                            "%.1f MiB free after the weights", (double)per_slot / 1048576.0, be->n_ctx,
                            (double)free_b / 1048576.0);
    int cap = o->max_slots > 0 ? o->max_slots : 1024;
    int n_slots = fit < (size_t)cap ? (int)fit : cap;
    be->base.n_slots = n_slots;
    const size_t slots = (size_t)n_slots + 1;
    CU_TRY(cudaMalloc(&be->kv, slots * kv_slot));
    const size_t layer_bytes = slots * (size_t)C * (size_t)be->n_ctx * be->tsize;
    for (int l = 0; l < be->L; l++) {
        be->layers[l].k = (char *)be->kv + (2 * (size_t)l) * layer_bytes;
        be->layers[l].v = (char *)be->kv + (2 * (size_t)l + 1) * layer_bytes;
    }
    CU_TRY(cudaMalloc((void **)&be->hist, slots * (size_t)be->n_ctx * sizeof(int32_t)));
    CU_TRY(cudaMemsetAsync(be->hist, 0, slots * (size_t)be->n_ctx * sizeof(int32_t), be->stream));
    /* graph buckets need pow2ceil(rows) logits rows */
    const int dec_rows = n_slots < be->tmax ? n_slots : be->tmax;
    const int lcap = pow2ceil(dec_rows) > n_slots ? pow2ceil(dec_rows) : n_slots;
    rc = cuda_ensure_logits(be, lcap, err);
    if (rc < 0) return rc;
    CU_TRY(cudaStreamSynchronize(be->stream));
    be->graphs = env_int("BLURB_CUDA_GRAPHS", 1) != 0;
    /* Steps per decode call: each call costs one host round trip; a sequence
     * that ends inside a call idles for the rest of it (the job's trade-off). */
    be->base.decode_steps = 8;
    return 0;
}

int blurb_cuda_backend_create(const blurb_model *model, const blurb_backend_opts *opts,
                              blurb_backend **out, blurb_err *err) {
    if (!model || !opts || !out)
        return blurb_seterr(err, BLURB_E_INVALID, "cuda backend: model, opts and out must not be NULL");
    *out = NULL;
    const blurb_config *c = &model->cfg;
    if (opts->dtype != BLURB_DTYPE_BF16 && opts->dtype != BLURB_DTYPE_F16 && opts->dtype != BLURB_DTYPE_F32)
        return blurb_seterr(err, BLURB_E_UNSUPPORTED, "cuda backend: unknown compute dtype %d", (int)opts->dtype);
    if (c->n_layer < 1 || c->n_head < 1 || c->n_embd < 1 || c->n_ctx < 1 || c->vocab_size < 1 || c->n_inner < 1 ||
        !model->layers)
        return blurb_seterr(err, BLURB_E_INVALID, "cuda backend: model config has an empty dimension");
    if (c->n_embd % c->n_head != 0 || !blurb_k_attention_supports(c->n_embd / c->n_head))
        return blurb_seterr(err, BLURB_E_UNSUPPORTED,
                            "cuda backend: head_dim n_embd/n_head = %d/%d is not one of 32, 64, 128",
                            c->n_embd, c->n_head);
    if (c->n_embd > 12256) /* LayerNorm keeps a row in 48 KiB of shared memory */
        return blurb_seterr(err, BLURB_E_UNSUPPORTED, "cuda backend: n_embd %d > 12256", c->n_embd);
    if (c->n_ctx > (1 << 20) || c->vocab_size > (1 << 24))
        return blurb_seterr(err, BLURB_E_UNSUPPORTED, "cuda backend: n_ctx %d or vocab_size %d too large",
                            c->n_ctx, c->vocab_size);

    cuda_backend *be = calloc(1, sizeof *be);
    if (!be) return blurb_seterr(err, BLURB_E_NOMEM, "cuda backend: out of host memory");
    be->layers = calloc((size_t)c->n_layer, sizeof *be->layers);
    if (!be->layers) {
        free(be);
        return blurb_seterr(err, BLURB_E_NOMEM, "cuda backend: out of host memory");
    }
    be->base.ops = &cuda_ops;
    be->base.model = model;
    be->base.n_ctx = c->n_ctx;
    be->base.vocab_size = c->vocab_size;
    be->cfg = *c;
    be->dt = (int)opts->dtype;
    be->tsize = blurb_dtype_size(opts->dtype);
    be->invariant = opts->batch_invariant;
    be->C = c->n_embd;
    be->H = c->n_head;
    be->hd = c->n_embd / c->n_head;
    be->L = c->n_layer;
    be->V = c->vocab_size;
    be->Vpad = (c->vocab_size + 63) & ~63;
    be->n_ctx = c->n_ctx;
    be->n_inner = c->n_inner;
    be->eps = c->layer_norm_epsilon;
    be->max_splits = (c->n_ctx + BLURB_ATT_SPLIT - 1) / BLURB_ATT_SPLIT;
    be->tmax = CUDA_TMAX;
    for (int l = 0; l < c->n_layer; l++) {
        /* HF: scores / sqrt(head_dim) (scale_attn_weights), / (layer + 1) (by inverse layer idx) */
        float s = c->scale_attn_weights ? 1.0f / sqrtf((float)be->hd) : 1.0f;
        if (c->scale_attn_by_inverse_layer_idx) s /= (float)(l + 1);
        be->layers[l].scale = s;
    }
    int rc = setup(be, model, opts, err);
    if (rc < 0) {
        blurb_err_prefix(err, "cuda backend (device %d, %s)", opts->device, blurb_dtype_name(opts->dtype));
        cuda_op_destroy(&be->base);
        return rc;
    }
    *out = &be->base;
    return 0;
}

int blurb_cuda_describe(const blurb_backend *b, char *buf, size_t size) {
    if (!b || !buf || size == 0 || !b->ops || strcmp(b->ops->name, "cuda") != 0) return BLURB_E_INVALID;
    const cuda_backend *be = (const cuda_backend *)b;
    snprintf(buf, size,
             "dtype %s, batch_invariant %d, slots %d, graphs %d%s%s\n"
             "  c_attn     %s\n  attn.c_proj %s\n  mlp.c_fc   %s\n  mlp.c_proj %s\n  lm_head    %s\n",
             blurb_dtype_name((blurb_dtype)be->dt), (int)be->invariant, be->base.n_slots, (int)be->graphs,
             be->graph_note[0] ? ", " : "", be->graph_note, be->g_qkv.desc, be->g_proj.desc, be->g_fc.desc,
             be->g_mlp.desc, be->g_lm.desc);
    return 0;
}
