/* Attention for prefill: tiles of up to BLURB_ATT_PREFILL_BQ consecutive queries
 * of one sequence share each K/V tile through shared memory (causal, tiled,
 * online softmax in fp32; attention_common.cuh). */
#include "attention_common.cuh"

/* Kernel attributes are per module (no separable compilation), so the prefill
 * kernel's shared-memory limit is raised from this file. */
extern "C" cudaError_t blurb_k_attention_prefill_setup(int head_dim, int dt) {
    return bk_attention_setup<BLURB_ATT_PREFILL_BQ>(head_dim, dt);
}

extern "C" cudaError_t blurb_k_attention_prefill(const blurb_att_tile *tiles, int n_tiles,
                                                 const float *q, const void *k_cache,
                                                 const void *v_cache, int dt, int n_head,
                                                 int head_dim, int n_ctx, int max_splits,
                                                 float scale, void *out, float *partial,
                                                 cudaStream_t stream) {
    return bk_attention_launch<BLURB_ATT_PREFILL_BQ>(tiles, n_tiles, q, k_cache, v_cache, dt, n_head,
                                                     head_dim, n_ctx, max_splits, scale, out,
                                                     partial, stream);
}
