/* GPT-2 model: config.json + safetensors weights mapped to a GPT-2 layout.
 *
 * The model layer knows GPT-2 (HF GPT2LMHeadModel naming, Conv1D [in, out]
 * layout) and nothing of any backend: tensors stay in the file's dtype
 * (F32, F16 or BF16), memory-mapped, and each backend converts them once
 * (blurb_tensor_to_f32 for the CPU reference).
 *
 * Reference: HF transformers modeling_gpt2.py (GPT2Model, GPT2Attention, GPT2MLP)
 * and Radford et al. 2019, "Language Models are Unsupervised Multitask Learners". */
#ifndef BLURB_MODEL_H
#define BLURB_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "blurb/error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum blurb_dtype {
    BLURB_DTYPE_F32 = 0,
    BLURB_DTYPE_F16 = 1,
    BLURB_DTYPE_BF16 = 2
} blurb_dtype;

/* Bytes per element of dtype (4, 2, 2). */
size_t blurb_dtype_size(blurb_dtype dtype);
/* "F32", "F16", "BF16" (the safetensors spelling). */
const char *blurb_dtype_name(blurb_dtype dtype);

/* A read-only view of one weight tensor, row-major, usually into an mmap.
 * 1-D tensors have ndim 1 and shape[1] == 1. */
typedef struct blurb_tensor {
    blurb_dtype dtype;
    int ndim;          /* 1 or 2 */
    int64_t shape[2];  /* elements */
    const void *data;  /* shape[0]*shape[1] elements of dtype, little-endian */
} blurb_tensor;

/* Number of elements (shape[0] * shape[1]). */
int64_t blurb_tensor_numel(const blurb_tensor *t);

/* Converts the whole tensor to fp32 into dst (numel floats). F16 and BF16 are
 * widened exactly (IEEE 754 binary16 / bfloat16, subnormals, inf and NaN kept). */
void blurb_tensor_to_f32(const blurb_tensor *t, float *dst);

/* Hyper-parameters from config.json (HF GPT2Config names). */
typedef struct blurb_config {
    int n_layer;
    int n_head;
    int n_embd;
    int n_ctx;          /* n_positions: most tokens (prompt + generated) in a sequence */
    int n_inner;        /* MLP width; config null -> 4 * n_embd */
    int vocab_size;
    float layer_norm_epsilon;
    int eos_token_id;   /* 50256 for GPT-2 */
    bool scale_attn_weights;               /* divide scores by sqrt(head_dim) (HF default true) */
    bool scale_attn_by_inverse_layer_idx;  /* also divide layer i's scores by (i + 1) */
} blurb_config;

/* Weights of one transformer block, HF Conv1D layout: y = x . W + b with W [in, out]. */
typedef struct blurb_layer {
    blurb_tensor ln_1_w, ln_1_b;        /* [n_embd] */
    blurb_tensor c_attn_w;              /* [n_embd, 3*n_embd]: q | k | v along out */
    blurb_tensor c_attn_b;              /* [3*n_embd] */
    blurb_tensor attn_c_proj_w;         /* [n_embd, n_embd] */
    blurb_tensor attn_c_proj_b;         /* [n_embd] */
    blurb_tensor ln_2_w, ln_2_b;        /* [n_embd] */
    blurb_tensor c_fc_w;                /* [n_embd, n_inner] */
    blurb_tensor c_fc_b;                /* [n_inner] */
    blurb_tensor mlp_c_proj_w;          /* [n_inner, n_embd] */
    blurb_tensor mlp_c_proj_b;          /* [n_embd] */
} blurb_layer;

typedef struct blurb_model {
    blurb_config cfg;
    blurb_tensor wte;       /* [vocab_size, n_embd] token embedding */
    blurb_tensor wpe;       /* [n_ctx, n_embd] position embedding */
    blurb_tensor ln_f_w, ln_f_b; /* [n_embd] */
    blurb_tensor lm_head;   /* [vocab_size, n_embd]; equals wte when tied */
    bool lm_head_tied;      /* true when the file has no lm_head.weight */
    blurb_layer *layers;    /* n_layer entries */
    char *dir;              /* model directory as given (owned) */
    void *priv;             /* loader state: mapped files or owned buffers */
} blurb_model;

/* Loads a model directory: config.json plus model.safetensors, or
 * model.safetensors.index.json and its shards (HF hub layout). Tensor data is
 * mmap'ed, not copied. Every shape is checked against config.json.
 * Returns 0, or a negative BLURB_E_* with err naming the file and the problem
 * (not a safetensors file, truncated, overlapping/gapped data, missing tensor,
 * shape mismatch, unsupported dtype, malformed JSON, unsupported activation). */
int blurb_model_load(const char *dir, blurb_model **out, blurb_err *err);

/* A model of the given shape with random weights (fp32, normal(0, 0.02) for
 * matrices, ones/zeros for LayerNorm, zero biases, as HF's init), deterministic
 * in seed. Used by benchmarks and tests that need gpt2-sized shapes without files.
 * cfg fields must be set (n_inner > 0). Returns 0 or BLURB_E_INVALID/BLURB_E_NOMEM. */
int blurb_model_random(const blurb_config *cfg, uint64_t seed, blurb_model **out, blurb_err *err);

/* Frees the model and unmaps its files. NULL is allowed. */
void blurb_model_free(blurb_model *m);

/* Total parameters (tied lm_head counted once) and total weight bytes in the file dtypes. */
int64_t blurb_model_n_params(const blurb_model *m);
int64_t blurb_model_n_bytes(const blurb_model *m);

/* Finds the default model directory: $BLURB_MODEL if set, else weights/default
 * next to the source tree (BLURB_SOURCE_DIR), else <prefix>/share/blurb/default.
 * Writes the path into buf (size bytes). Returns 0, or BLURB_E_IO naming the places tried. */
int blurb_default_model_dir(char *buf, size_t size, blurb_err *err);

#ifdef __cplusplus
}
#endif
#endif
