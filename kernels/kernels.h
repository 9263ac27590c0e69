/* C interface to blurb's CUDA kernels (kernels/, one .cu file per layer), used by host/cuda_*.c.
 *
 * Every launcher enqueues its kernel on `stream` and returns the launch status
 * (cudaGetLastError after the launch): errors inside a kernel surface at the
 * next synchronising call. Nothing here allocates or synchronises.
 *
 * Dtype codes are blurb_dtype values: 0 F32, 1 F16, 2 BF16. "T" below means
 * the compute dtype of the backend (weights, KV cache, GEMM inputs); the
 * residual stream, GEMM outputs, LayerNorm statistics and softmax are fp32.
 *
 * KV cache of one layer: [n_slots + 1][n_head][n_ctx][head_dim] of T (the extra
 * slot absorbs padding rows of CUDA-graph buckets). */
#ifndef BLURB_KERNELS_H
#define BLURB_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include <cuda_runtime_api.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Attention splits the context of each query into fixed pieces of this many
 * keys, counted from position 0 of the sequence. The split therefore depends
 * only on the query's own position, never on the batch (batch invariance). */
#define BLURB_ATT_SPLIT 256
/* Queries per block of the prefill attention kernel. */
#define BLURB_ATT_PREFILL_BQ 16

/* One block of attention work: nq consecutive queries of one sequence.
 * tok: row of the first query in the sub-batch; pos0: its position. */
typedef struct blurb_att_tile {
    int32_t tok;
    int32_t nq;
    int32_t slot;
    int32_t pos0;
} blurb_att_tile;

/* One sampling request as the sampling kernel reads it. */
typedef struct blurb_sample_param {
    int32_t row;          /* logits row */
    int32_t slot;         /* history = hist[slot][0 .. hist_len) */
    int32_t hist_len;
    int32_t n_generated;  /* for min_new_tokens; also the Philox counter */
    float temperature;
    float top_p;
    float repetition_penalty;
    int32_t top_k;
    int32_t min_new_tokens;
    int32_t eos_token_id;
    uint32_t key_lo, key_hi; /* 64-bit stream key: key[0] = low, key[1] = high word */
} blurb_sample_param;

/* dst = convert(src), optionally transposed: src is [rows, cols] row-major;
 * transpose 0 writes [rows, cols], 1 writes [cols, rows]. Conversions are
 * exact widening or round-to-nearest-even narrowing. */
cudaError_t blurb_k_convert(const void *src, int src_dt, void *dst, int dst_dt,
                            int64_t rows, int64_t cols, int transpose, cudaStream_t stream);

/* Whether the device can run this build's kernels (cudaSuccess when it can). */
cudaError_t blurb_k_check_image(void);

/* Token + position embedding for M rows: x[i] = wte[tok[i]] + wpe[pos[i]] (fp32 [M, C]);
 * wte is T [vocab, C], wpe fp32 [n_ctx, C]. Also records hist[slot[i]][pos[i]] = tok[i]
 * (the repetition-penalty history). */
cudaError_t blurb_k_embed(const int32_t *tok, const int32_t *slot, const int32_t *pos, int M,
                          const void *wte, int dt, const float *wpe, int C,
                          int32_t *hist, int n_ctx, float *x, cudaStream_t stream);

/* Residual add fused with LayerNorm (Ba et al. 2016), fp32 statistics:
 * for each output row r (input row i = rows ? rows[r] : r):
 *   v = x[i] + (delta[i] + dbias)   (when delta is not NULL; else v = x[i])
 *   x[i] = v                        (when write_x)
 *   out[r] = (v - mean(v)) / sqrt(var(v) + eps) * gamma + beta   (T)
 * x, delta fp32 [*, C]; dbias, gamma, beta fp32 [C]; out T [R, C]. */
cudaError_t blurb_k_resid_layernorm(float *x, const float *delta, const float *dbias,
                                    const int32_t *rows, int R, int C, int write_x,
                                    const float *gamma, const float *beta, float eps,
                                    void *out, int dt, cudaStream_t stream);

/* out = gelu_tanh(in + bias) (T [M, N]); in fp32 [M, N], bias fp32 [N].
 * GELU tanh form ("gelu_new"): Hendrycks & Gimpel 2016. */
cudaError_t blurb_k_bias_gelu(const float *in, const float *bias, int M, int N,
                              void *out, int dt, cudaStream_t stream);

/* Adds the c_attn bias to the fused QKV GEMM output qkv (fp32 [M, 3C]) and
 * splits it: q (fp32 [M, C]) and K, V written into the layer's cache at
 * (slot[i], pos[i]). */
cudaError_t blurb_k_qkv_split(const float *qkv, const float *bias, const int32_t *slot,
                              const int32_t *pos, int M, int n_head, int head_dim, int n_ctx,
                              float *q, void *k_cache, void *v_cache, int dt, cudaStream_t stream);

/* Causal attention for query tiles over the KV cache (fp32 scores and online
 * softmax; Milakov & Gimelshein 2018, Dao et al. 2022). q fp32 [M, C], out T [M, C].
 * Queries whose position is >= BLURB_ATT_SPLIT leave one partial state per split
 * in `partial` ([M][n_head][max_splits][head_dim + 2] fp32) for
 * blurb_k_attention_combine; the others are written to out directly.
 * grid: n_tiles x n_head x max_splits. decode: tiles of one query each (nq == 1);
 * prefill: tiles of up to BLURB_ATT_PREFILL_BQ queries. Both compute each query
 * with the same sequence of fp32 operations, so a query's result does not depend
 * on which kernel ran it or on its neighbours. head_dim: 32, 64 or 128. */
cudaError_t blurb_k_attention_decode(const blurb_att_tile *tiles, int n_tiles, const float *q,
                                     const void *k_cache, const void *v_cache, int dt,
                                     int n_head, int head_dim, int n_ctx, int max_splits,
                                     float scale, void *out, float *partial, cudaStream_t stream);
cudaError_t blurb_k_attention_prefill(const blurb_att_tile *tiles, int n_tiles, const float *q,
                                      const void *k_cache, const void *v_cache, int dt,
                                      int n_head, int head_dim, int n_ctx, int max_splits,
                                      float scale, void *out, float *partial, cudaStream_t stream);
/* Merges the per-split partial states of rows whose position is >= BLURB_ATT_SPLIT,
 * in split order. */
cudaError_t blurb_k_attention_combine(const int32_t *pos, int M, const float *partial,
                                      int n_head, int head_dim, int max_splits,
                                      void *out, int dt, cudaStream_t stream);
/* Raises the dynamic shared-memory limit of the attention kernels for head_dim
 * (needed once per process before the first launch; not allowed during capture). */
cudaError_t blurb_k_attention_setup(int head_dim, int dt);
/* Whether the attention kernels support head_dim. */
int blurb_k_attention_supports(int head_dim);

/* Draws one token per request (include/blurb/sampler.h semantics, the exact
 * fp32 arithmetic of host/sampler.c) from logits rows (fp32, row stride ld
 * floats). hist: [n_slots + 1][n_ctx] token history. tokens[n] and logprobs[n]
 * (may be NULL) receive the results. One block per request; scratch holds
 * blurb_k_sample_scratch_bytes(vocab_size) bytes per request. */
cudaError_t blurb_k_sample(const blurb_sample_param *params, int n, const float *logits,
                           int64_t ld, int vocab_size, const int32_t *hist, int n_ctx,
                           void *scratch, int32_t *tokens, float *logprobs, cudaStream_t stream);
size_t blurb_k_sample_scratch_bytes(int vocab_size);
/* Raises the sampling kernel's dynamic shared-memory limit (once, before capture). */
cudaError_t blurb_k_sample_setup(int vocab_size);

#ifdef __cplusplus
}
#endif
#endif
