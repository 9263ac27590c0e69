/* Private state of the CUDA backend, shared by host/cuda_backend.c (create,
 * logits, reset, destroy), host/cuda_forward.c (forward, CUDA graphs),
 * host/cuda_gemm.c (cuBLASLt) and host/cuda_sample.c (sampling). */
#ifndef BLURB_HOST_CUDA_INTERNAL_H
#define BLURB_HOST_CUDA_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cublasLt.h>
#include <cuda_runtime_api.h>

#include "../kernels/kernels.h"
#include "blurb/backend.h"
#include "cuda_backend.h"

/* Tokens per sub-batch of a forward (activation buffers are sized for this);
 * also the largest CUDA-graph bucket. */
#define CUDA_TMAX 2048
#define CUDA_GRAPH_BUCKETS 12 /* decode buckets of 1, 2, 4, ..., 2048 rows */
/* Logits rows copied to the host at once for the host-drawn requests. */
#define CUDA_HOST_ROWS 64
/* Requests per sampling launch (the sampling scratch is sized for this many). */
#define CUDA_SAMPLE_CHUNK 256
/* cuBLASLt workspace for the non-invariant mode (split-K and friends). */
#define CUDA_GEMM_WORKSPACE ((size_t)32 << 20)

/* Reports a failed CUDA runtime call: BLURB_E_NOMEM for allocation failures,
 * BLURB_E_DEVICE otherwise, with the call, file:line and CUDA's error name and
 * text. Clears the (non-sticky) error state. Returns the code. */
int cuda_fail(blurb_err *err, cudaError_t e, const char *call, const char *file, int line);
/* Same for a cuBLAS(Lt) status. */
int cublas_fail(blurb_err *err, cublasStatus_t st, const char *call, const char *file, int line);

#define CU_TRY(call)                                                                   \
    do {                                                                               \
        cudaError_t e_ = (call);                                                       \
        if (e_ != cudaSuccess) return cuda_fail(err, e_, #call, __FILE__, __LINE__);   \
    } while (0)
#define LT_TRY(call)                                                                   \
    do {                                                                               \
        cublasStatus_t s_ = (call);                                                    \
        if (s_ != CUBLAS_STATUS_SUCCESS) return cublas_fail(err, s_, #call, __FILE__, __LINE__); \
    } while (0)

/* One GEMM shape Y[M, N] (fp32, row stride ldd) = X[M, K] (T) . W^T, with W
 * stored [N, K] (T), for any M <= m_max. Column-major view for cuBLASLt:
 * D (N x M) = op_T(A: K x N) . B (K x M). */
typedef struct cuda_gemm {
    const char *name;
    int N, K, ldd, m_max;
    bool invariant;
    cublasLtMatmulDesc_t op;
    cublasLtMatrixLayout_t a, b, d;
    int cur_m;              /* columns currently set on b and d */
    /* batch-invariant mode: one algorithm for every M, without split-K */
    cublasLtMatmulAlgo_t algo;
    size_t algo_ws;
    /* otherwise: heuristic's pick per power-of-two bucket of M */
    cublasLtMatmulAlgo_t bucket_algo[16];
    size_t bucket_ws[16];
    bool bucket_ok[16];
    char desc[160];         /* the pinned algorithm, for blurb_cuda_describe */
} cuda_gemm;

/* Creates the descriptors and, when invariant, pins the algorithm: cuBLASLt's
 * heuristic for M = m_ref restricted to no reduction scheme (no split-K) and no
 * workspace (then, failing that, up to ws_size bytes), keeping the first
 * candidate with split-K 1 that cublasLtMatmulAlgoCheck accepts for both M = 1
 * and M = m_max. */
int cuda_gemm_init(cuda_gemm *g, const char *name, cublasLtHandle_t lt, int dt, int N, int K,
                   int ldd, int m_ref, int m_max, bool invariant, size_t ws_size, blurb_err *err);
/* Enqueues Y = X . W^T for M rows on stream. */
int cuda_gemm_run(cuda_gemm *g, cublasLtHandle_t lt, const void *W, const void *X, float *Y, int M,
                  void *ws, size_t ws_size, cudaStream_t stream, blurb_err *err);
void cuda_gemm_free(cuda_gemm *g);

typedef struct cuda_layer {
    void *w_qkv, *w_proj, *w_fc, *w_mlp;  /* T, [N, K] (transposed from HF Conv1D [K, N]) */
    float *ln1_g, *ln1_b, *ln2_g, *ln2_b; /* [C] */
    float *b_qkv, *b_proj, *b_fc, *b_mlp; /* [3C], [C], [n_inner], [C] */
    void *k, *v;                          /* KV cache of this layer, see kernels/kernels.h */
    float scale;                          /* attention score scale of this layer */
} cuda_layer;

/* Offsets (in int32) of the per-sub-batch metadata in d_meta / h_meta. */
#define META_TOK(t) 0
#define META_SLOT(t) (t)
#define META_POS(t) (2 * (t))
#define META_ROWS(t) (3 * (t))
#define META_DEC(t) (4 * (t))
#define META_PRE(t) (8 * (t))
#define META_INTS(t) (12 * (t))

typedef struct cuda_backend {
    blurb_backend base; /* first member: host/backend.c sees only this */
    blurb_config cfg;
    int device, dt;
    size_t tsize;        /* bytes per element of the compute dtype */
    bool invariant;
    int C, H, hd, L, V, Vpad, n_ctx, n_inner, max_splits, tmax;
    float eps;

    cudaStream_t stream;
    cublasLtHandle_t lt;
    void *ws;
    size_t ws_size;

    void *wpool;         /* every weight, one allocation */
    void *wte;           /* T [V, C]; also the LM head when tied */
    void *lm_head;       /* T [V, C] */
    float *wpe;          /* fp32 [n_ctx, C] */
    float *lnf_g, *lnf_b;
    cuda_layer *layers;

    void *kv;            /* every layer's K and V, one allocation */
    int32_t *hist;       /* [(n_slots + 1) * n_ctx] tokens fed, for the repetition penalty */

    void *act;           /* activations, one allocation */
    float *x;            /* residual stream fp32 [tmax, C] */
    float *delta;        /* attention / MLP projection output fp32 [tmax, C] */
    float *wide;         /* c_attn or c_fc output fp32 [tmax, max(3C, n_inner)] */
    float *q;            /* fp32 [tmax, C] */
    float *partial;      /* attention split states [tmax][H][max_splits][hd + 2] */
    void *h;             /* LayerNorm output T [tmax, C] */
    void *g;             /* attention output T [tmax, C] / GELU output T [tmax, n_inner] */

    float *logits;       /* fp32 [logits_cap, Vpad] */
    int logits_cap;

    int32_t *d_meta;     /* META_INTS(tmax) */
    int32_t *h_meta[2];  /* pinned, double-buffered */
    cudaEvent_t meta_ev[2];
    int meta_i;

    blurb_sample_param *d_sp, *h_sp; /* [sp_cap] */
    int32_t *d_tok, *h_tok;
    float *d_lp, *h_lp;
    int sp_cap;
    /* Host fallback for the issue-7 sampling controls the kernel lacks
     * (cuda_sample.c): one logits row and a reference-sampler scratch. */
    float *h_rows;                        /* pinned [CUDA_HOST_ROWS][V] */
    blurb_sampler_scratch **host_scratch; /* one per host thread */
    int n_host_scratch;
    void *smp_scratch;   /* CUDA_SAMPLE_CHUNK requests */

    cuda_gemm g_qkv, g_proj, g_fc, g_mlp, g_lm;

    bool graphs;
    cudaGraphExec_t gexec[CUDA_GRAPH_BUCKETS];
    unsigned char gstate[CUDA_GRAPH_BUCKETS]; /* 0 unseen, 1 ran eagerly, 2 captured, 3 capture failed */
    char graph_note[160]; /* why the last refused capture failed (blurb_cuda_describe) */
} cuda_backend;

/* host/cuda_plan.c: one sub-batch of a forward, from chunk *ci token *toff on
 * (both advanced), written into the metadata block hm (META_* layout for
 * tmax): rows (token, slot, position), decode tiles for one-token pieces,
 * prefill tiles of up to BLURB_ATT_PREFILL_BQ queries, and the output rows
 * (every row with all_logits, else the last row of each chunk ending here). */
typedef struct cuda_plan {
    int M, n_dec, n_pre, R, maxpos;
} cuda_plan;
void cuda_plan_next(const blurb_chunk *chunks, int n_chunks, const int *slot_len, bool all_logits, int tmax,
                    int *ci, int *toff, int32_t *hm, cuda_plan *p);
/* A decode step of n <= tmax one-token chunks padded to the next power of two
 * Mb with rows on spare_slot at position 0; returns log2(Mb). */
int cuda_plan_decode(const blurb_chunk *chunks, int n, const int *slot_len, int spare_slot, int tmax, int32_t *hm);

/* host/cuda_forward.c */
/* Enqueues one decode step of n <= tmax one-token chunks, padded to a
 * power-of-two bucket (CUDA graph per bucket when graphs are on); lens[slot]
 * is each slot's length before the step. d_tokens (device, [n], may be NULL)
 * replaces the chunks' tokens: a step fed by the previous step's draws. */
int cuda_decode_step(cuda_backend *be, const blurb_chunk *chunks, int n, const int *lens, const int32_t *d_tokens,
                     blurb_err *err);
int cuda_op_forward(blurb_backend *b, const blurb_chunk *chunks, int n_chunks, bool all_logits,
                    blurb_err *err);
void cuda_graphs_reset(cuda_backend *be);
/* host/cuda_sample.c */
int cuda_op_sample(blurb_backend *b, const blurb_sample_req *reqs, int n, int32_t *tokens,
                   float *logprobs, blurb_err *err);
void cuda_sample_free(cuda_backend *be);
/* The decode op (include/blurb/backend.h, blurb_backend_decode): n_steps
 * steps with the draws fed back on the device, one synchronisation at the
 * end. Returns 1 (the generic loop serves it) for requests the sampling
 * kernel does not implement or n > tmax. */
int cuda_op_decode(blurb_backend *b, const int32_t *tokens, const blurb_sample_req *reqs, int n, int n_steps,
                   int32_t *out_tokens, float *out_logprobs, blurb_err *err);
/* Grows the logits buffer (and the sampling request arrays) to hold rows; drops
 * the CUDA graphs, which captured the old address. */
int cuda_ensure_logits(cuda_backend *be, int rows, blurb_err *err);

#endif
