/* GEMMs through cuBLASLt, fp32 accumulation (CUBLAS_COMPUTE_32F: in fp32 mode
 * this is plain fp32, TF32 stays off; in bf16/fp16 mode the inputs are 16-bit
 * and products accumulate in fp32), fp32 output.
 *
 * Batch invariance. cuBLASLt picks its kernel from the whole problem shape and
 * may split the K reduction (split-K, with an in-place or workspace
 * reduction), so by default a row's result can change with the number of rows
 * M. In the batch-invariant mode each weight shape gets one algorithm, chosen
 * once at start-up and then used for every M: the heuristic is asked at a
 * reference M with CUBLASLT_MATMUL_PREF_REDUCTION_SCHEME_MASK = NONE (no split-K
 * reduction allowed) and no workspace, the candidate must report
 * CUBLASLT_ALGO_CONFIG_SPLITK_NUM == 1, and cublasLtMatmulAlgoCheck must accept
 * it for M = 1 and M = m_max. With one fixed kernel and no split of K, every
 * output element is the same sequence of tile MMAs over K whatever M is, so a
 * row's bits do not depend on its batch; tests/test_cuda_batch_invariance.c
 * checks it end to end at batch 1, 64 and 1024. The cost: small M gets no
 * split-K parallelism; blurb_backend_opts.batch_invariant = false trades the
 * guarantee for the heuristic's per-M choice (cached per power-of-two bucket). */
#include <stdio.h>
#include <string.h>

#include "cuda_internal.h"

static cudaDataType_t dt_cuda(int dt) {
    return dt == BLURB_DTYPE_F16 ? CUDA_R_16F : dt == BLURB_DTYPE_BF16 ? CUDA_R_16BF : CUDA_R_32F;
}

static int set_m(cuda_gemm *g, int M, blurb_err *err) {
    if (g->cur_m == M) return 0;
    uint64_t cols = (uint64_t)M;
    LT_TRY(cublasLtMatrixLayoutSetAttribute(g->b, CUBLASLT_MATRIX_LAYOUT_COLS, &cols, sizeof cols));
    LT_TRY(cublasLtMatrixLayoutSetAttribute(g->d, CUBLASLT_MATRIX_LAYOUT_COLS, &cols, sizeof cols));
    g->cur_m = M;
    return 0;
}

static void describe_algo(const cublasLtMatmulAlgo_t *algo, char *buf, size_t size, size_t ws) {
    int32_t id = -1, splitk = -1;
    uint32_t tile = 0, stages = 0, red = 0, swz = 0, custom = 0;
    uint16_t cluster = 0;
    size_t w;
    cublasLtMatmulAlgoConfigGetAttribute(algo, CUBLASLT_ALGO_CONFIG_ID, &id, sizeof id, &w);
    cublasLtMatmulAlgoConfigGetAttribute(algo, CUBLASLT_ALGO_CONFIG_TILE_ID, &tile, sizeof tile, &w);
    cublasLtMatmulAlgoConfigGetAttribute(algo, CUBLASLT_ALGO_CONFIG_STAGES_ID, &stages, sizeof stages, &w);
    cublasLtMatmulAlgoConfigGetAttribute(algo, CUBLASLT_ALGO_CONFIG_SPLITK_NUM, &splitk, sizeof splitk, &w);
    cublasLtMatmulAlgoConfigGetAttribute(algo, CUBLASLT_ALGO_CONFIG_REDUCTION_SCHEME, &red, sizeof red, &w);
    cublasLtMatmulAlgoConfigGetAttribute(algo, CUBLASLT_ALGO_CONFIG_CTA_SWIZZLING, &swz, sizeof swz, &w);
    cublasLtMatmulAlgoConfigGetAttribute(algo, CUBLASLT_ALGO_CONFIG_CUSTOM_OPTION, &custom, sizeof custom, &w);
    cublasLtMatmulAlgoConfigGetAttribute(algo, CUBLASLT_ALGO_CONFIG_CLUSTER_SHAPE_ID, &cluster, sizeof cluster, &w);
    snprintf(buf, size, "algo %d tile %u stages %u split-k %d reduction %u swizzle %u custom %u cluster %u workspace %zu",
             (int)id, tile, stages, (int)splitk, red, swz, custom, (unsigned)cluster, ws);
}

static int heuristic(cuda_gemm *g, cublasLtHandle_t lt, int M, size_t max_ws, uint32_t red_mask,
                     cublasLtMatmulHeuristicResult_t *res, int want, int *got, blurb_err *err) {
    cublasLtMatmulPreference_t pref = NULL;
    int rc = set_m(g, M, err);
    if (rc < 0) return rc;
    LT_TRY(cublasLtMatmulPreferenceCreate(&pref));
    cublasStatus_t st = cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                                             &max_ws, sizeof max_ws);
    if (st == CUBLAS_STATUS_SUCCESS)
        st = cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_REDUCTION_SCHEME_MASK, &red_mask,
                                                  sizeof red_mask);
    if (st == CUBLAS_STATUS_SUCCESS)
        st = cublasLtMatmulAlgoGetHeuristic(lt, g->op, g->a, g->b, g->d, g->d, pref, want, res, got);
    (void)cublasLtMatmulPreferenceDestroy(pref);
    /* "Nothing fits these preferences" may come back as NOT_SUPPORTED rather
     * than zero results: the caller then tries its next preference. */
    if (st == CUBLAS_STATUS_NOT_SUPPORTED) {
        *got = 0;
        return 0;
    }
    if (st != CUBLAS_STATUS_SUCCESS)
        return cublas_fail(err, st, "cublasLtMatmulAlgoGetHeuristic", __FILE__, __LINE__);
    return 0;
}

int cuda_gemm_init(cuda_gemm *g, const char *name, cublasLtHandle_t lt, int dt, int N, int K,
                   int ldd, int m_ref, int m_max, bool invariant, size_t ws_size, blurb_err *err) {
    memset(g, 0, sizeof *g);
    g->name = name;
    g->N = N;
    g->K = K;
    g->ldd = ldd;
    g->m_max = m_max;
    g->invariant = invariant;
    g->cur_m = m_ref;
    const cudaDataType_t ab = dt_cuda(dt);
    LT_TRY(cublasLtMatmulDescCreate(&g->op, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    const cublasOperation_t tA = CUBLAS_OP_T, tB = CUBLAS_OP_N;
    LT_TRY(cublasLtMatmulDescSetAttribute(g->op, CUBLASLT_MATMUL_DESC_TRANSA, &tA, sizeof tA));
    LT_TRY(cublasLtMatmulDescSetAttribute(g->op, CUBLASLT_MATMUL_DESC_TRANSB, &tB, sizeof tB));
    LT_TRY(cublasLtMatrixLayoutCreate(&g->a, ab, (uint64_t)K, (uint64_t)N, (int64_t)K));
    LT_TRY(cublasLtMatrixLayoutCreate(&g->b, ab, (uint64_t)K, (uint64_t)m_ref, (int64_t)K));
    LT_TRY(cublasLtMatrixLayoutCreate(&g->d, CUDA_R_32F, (uint64_t)N, (uint64_t)m_ref, (int64_t)ldd));
    if (!invariant) {
        snprintf(g->desc, sizeof g->desc, "heuristic per power-of-two M (split-K allowed)");
        return 0;
    }

    /* First without workspace; if nothing qualifies, with workspace (still no
     * reduction scheme and split-K 1: the workspace then serves the kernel's
     * own staging, not a split of K). */
    const size_t ws_try[2] = {0, ws_size};
    int got = 0;
    for (int attempt = 0; attempt < 2; attempt++) {
        if (attempt == 1 && ws_size == 0) break;
        cublasLtMatmulHeuristicResult_t res[16];
        int rc = heuristic(g, lt, m_ref, ws_try[attempt], CUBLASLT_REDUCTION_SCHEME_NONE, res, 16, &got, err);
        if (rc < 0) return rc;
        for (int i = 0; i < got; i++) {
            if (res[i].state != CUBLAS_STATUS_SUCCESS || res[i].workspaceSize > ws_try[attempt]) continue;
            int32_t splitk = 0;
            uint32_t red = 1;
            size_t w;
            if (cublasLtMatmulAlgoConfigGetAttribute(&res[i].algo, CUBLASLT_ALGO_CONFIG_SPLITK_NUM, &splitk,
                                                     sizeof splitk, &w) != CUBLAS_STATUS_SUCCESS ||
                cublasLtMatmulAlgoConfigGetAttribute(&res[i].algo, CUBLASLT_ALGO_CONFIG_REDUCTION_SCHEME, &red,
                                                     sizeof red, &w) != CUBLAS_STATUS_SUCCESS)
                continue;
            if (splitk > 1 || red != CUBLASLT_REDUCTION_SCHEME_NONE) continue;
            bool ok = true;
            size_t need_ws = res[i].workspaceSize;
            const int ms[2] = {1, m_max};
            for (int j = 0; j < 2 && ok; j++) {
                cublasLtMatmulHeuristicResult_t chk;
                memset(&chk, 0, sizeof chk);
                rc = set_m(g, ms[j], err);
                if (rc < 0) return rc;
                ok = cublasLtMatmulAlgoCheck(lt, g->op, g->a, g->b, g->d, g->d, &res[i].algo, &chk) ==
                         CUBLAS_STATUS_SUCCESS &&
                     chk.workspaceSize <= ws_try[attempt];
                if (ok && chk.workspaceSize > need_ws) need_ws = chk.workspaceSize;
            }
            if (!ok) continue;
            g->algo = res[i].algo;
            g->algo_ws = need_ws;
            describe_algo(&g->algo, g->desc, sizeof g->desc, g->algo_ws);
            return 0;
        }
    }
    return blurb_seterr(err, BLURB_E_DEVICE,
                        "cuBLASLt offers no algorithm without split-K for the %s GEMM (N %d, K %d, M 1..%d, "
                        "%s inputs, fp32 output; %d candidates at M %d): use batch_invariant = false",
                        name, N, K, m_max, dt == BLURB_DTYPE_F32 ? "fp32" : dt == BLURB_DTYPE_F16 ? "fp16" : "bf16",
                        got, m_ref);
}

static int bucket_of(int M) {
    int b = 0;
    while ((1 << b) < M && b < 15) b++;
    return b;
}

int cuda_gemm_run(cuda_gemm *g, cublasLtHandle_t lt, const void *W, const void *X, float *Y, int M,
                  void *ws, size_t ws_size, cudaStream_t stream, blurb_err *err) {
    if (M <= 0) return 0;
    if (M > g->m_max)
        return blurb_seterr(err, BLURB_E_INVALID, "%s GEMM: %d rows exceed the %d it was set up for",
                            g->name, M, g->m_max);
    const float one = 1.0f, zero = 0.0f;
    const cublasLtMatmulAlgo_t *algo;
    size_t algo_ws;
    if (g->invariant) {
        algo = &g->algo;
        algo_ws = g->algo_ws;
    } else {
        const int b = bucket_of(M);
        if (!g->bucket_ok[b]) {
            cublasLtMatmulHeuristicResult_t res;
            int got = 0;
            int rc = heuristic(g, lt, (1 << b) < g->m_max ? (1 << b) : g->m_max, ws_size, CUBLASLT_REDUCTION_SCHEME_MASK,
                               &res, 1, &got, err);
            if (rc < 0) return rc;
            if (got < 1 || res.state != CUBLAS_STATUS_SUCCESS)
                return blurb_seterr(err, BLURB_E_DEVICE, "cuBLASLt has no algorithm for the %s GEMM (N %d, K %d, M %d)",
                                    g->name, g->N, g->K, M);
            g->bucket_algo[b] = res.algo;
            g->bucket_ws[b] = res.workspaceSize;
            g->bucket_ok[b] = true;
        }
        algo = &g->bucket_algo[b];
        algo_ws = g->bucket_ws[b];
    }
    int rc = set_m(g, M, err);
    if (rc < 0) return rc;
    /* The pinned algorithm's workspace need was checked at M = 1, m_ref and
     * m_max only: it gets the whole buffer (more workspace never changes a
     * fixed algorithm's arithmetic). */
    LT_TRY(cublasLtMatmul(lt, g->op, &one, W, g->a, X, g->b, &zero, Y, g->d, Y, g->d, algo, ws,
                          g->invariant ? ws_size : algo_ws <= ws_size ? algo_ws : ws_size, stream));
    return 0;
}

void cuda_gemm_free(cuda_gemm *g) {
    if (g->a) cublasLtMatrixLayoutDestroy(g->a);
    if (g->b) cublasLtMatrixLayoutDestroy(g->b);
    if (g->d) cublasLtMatrixLayoutDestroy(g->d);
    if (g->op) cublasLtMatmulDescDestroy(g->op);
    memset(g, 0, sizeof *g);
}
