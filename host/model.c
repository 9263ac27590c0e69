/* GPT-2 model loading: config.json (HF GPT2Config) and the tensors of
 * GPT2LMHeadModel, found by name in a safetensors set and checked against the
 * config. Names and defaults follow HF transformers
 * (models/gpt2/configuration_gpt2.py, modeling_gpt2.py). */
#include "blurb/model.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "blurb/safetensors.h"
#include "read_file.h"

#define CONFIG_MAX_BYTES (16u << 20)

typedef struct model_priv {
    blurb_st_set *set; /* loaded models: the mapped files */
    float *owned;      /* random models: every tensor in one buffer */
} model_priv;

size_t blurb_dtype_size(blurb_dtype dtype) {
    switch (dtype) {
    case BLURB_DTYPE_F32: return 4;
    case BLURB_DTYPE_F16: return 2;
    case BLURB_DTYPE_BF16: return 2;
    }
    return 0;
}

const char *blurb_dtype_name(blurb_dtype dtype) {
    switch (dtype) {
    case BLURB_DTYPE_F32: return "F32";
    case BLURB_DTYPE_F16: return "F16";
    case BLURB_DTYPE_BF16: return "BF16";
    }
    return "?";
}

int64_t blurb_tensor_numel(const blurb_tensor *t) {
    return t->shape[0] * t->shape[1];
}

/* IEEE 754 binary16 -> binary32, exact: every half value (subnormals included)
 * is a normal or zero float; inf and NaN keep sign and payload. */
static inline float f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t mant = h & 0x3ffu;
    uint32_t bits;
    if (exp == 0x1f) {
        bits = sign | 0x7f800000u | (mant << 13);
    } else if (exp != 0) {
        bits = sign | ((exp + (127 - 15)) << 23) | (mant << 13);
    } else if (mant == 0) {
        bits = sign;
    } else {
        /* Subnormal mant * 2^-24: shift the leading 1 up to the implicit-bit position. */
        uint32_t e = 127 - 15 + 1;
        while (!(mant & 0x400u)) {
            mant <<= 1;
            e--;
        }
        bits = sign | (e << 23) | ((mant & 0x3ffu) << 13);
    }
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

void blurb_tensor_to_f32(const blurb_tensor *t, float *dst) {
    int64_t n = blurb_tensor_numel(t);
    /* Byte loads: the data is little-endian and, in a mapped file, may be unaligned. */
    const uint8_t *p = t->data;
    switch (t->dtype) {
    case BLURB_DTYPE_F32:
#ifdef _OPENMP
#pragma omp parallel for schedule(static) if (n > (1 << 18))
#endif
        for (int64_t i = 0; i < n; i++) {
            uint32_t b = (uint32_t)p[4 * i] | (uint32_t)p[4 * i + 1] << 8 | (uint32_t)p[4 * i + 2] << 16 |
                         (uint32_t)p[4 * i + 3] << 24;
            memcpy(&dst[i], &b, sizeof b);
        }
        break;
    case BLURB_DTYPE_F16:
#ifdef _OPENMP
#pragma omp parallel for schedule(static) if (n > (1 << 18))
#endif
        for (int64_t i = 0; i < n; i++) dst[i] = f16_to_f32((uint16_t)(p[2 * i] | p[2 * i + 1] << 8));
        break;
    case BLURB_DTYPE_BF16:
        /* bfloat16 is the top half of a binary32. */
#ifdef _OPENMP
#pragma omp parallel for schedule(static) if (n > (1 << 18))
#endif
        for (int64_t i = 0; i < n; i++) {
            uint32_t b = ((uint32_t)p[2 * i] | (uint32_t)p[2 * i + 1] << 8) << 16;
            memcpy(&dst[i], &b, sizeof b);
        }
        break;
    }
}

/* ---- config.json ------------------------------------------------------------ */

/* Reads an integer field; absent or null gives def when not required. */
static int cfg_int_item(const char *path, const cJSON *v, const char *key, bool required, int def, int lo,
                        int hi, int *out, blurb_err *err) {
    if (!v || cJSON_IsNull(v)) {
        if (required) return blurb_seterr(err, BLURB_E_FORMAT, "%s: missing required field \"%s\"", path, key);
        *out = def;
        return 0;
    }
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble))
        return blurb_seterr(err, BLURB_E_FORMAT, "%s: field \"%s\" must be an integer", path, key);
    if (v->valuedouble < lo || v->valuedouble > hi)
        return blurb_seterr(err, BLURB_E_FORMAT, "%s: field \"%s\" is %.17g, outside [%d, %d]", path, key,
                            v->valuedouble, lo, hi);
    *out = (int)v->valuedouble;
    return 0;
}

static int cfg_int(const char *path, const cJSON *root, const char *key, bool required, int def, int lo, int hi,
                   int *out, blurb_err *err) {
    return cfg_int_item(path, cJSON_GetObjectItemCaseSensitive(root, key), key, required, def, lo, hi, out, err);
}

static int cfg_bool(const char *path, const cJSON *root, const char *key, bool def, bool *out, blurb_err *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!v || cJSON_IsNull(v)) {
        *out = def;
        return 0;
    }
    if (!cJSON_IsBool(v))
        return blurb_seterr(err, BLURB_E_FORMAT, "%s: field \"%s\" must be true or false", path, key);
    *out = cJSON_IsTrue(v);
    return 0;
}

/* Limits that keep every size computation far from overflow; real GPT-2s are well inside. */
static int validate_config(const char *what, const blurb_config *c, int code, blurb_err *err) {
    if (c->n_layer < 1 || c->n_layer > 1024 || c->n_head < 1 || c->n_head > 1024 || c->n_embd < 1 ||
        c->n_embd > 65536 || c->n_ctx < 1 || c->n_ctx > (1 << 20) || c->n_inner < 1 || c->n_inner > (1 << 20) ||
        c->vocab_size < 1 || c->vocab_size > (1 << 24))
        return blurb_seterr(err, code,
                            "%s: sizes out of range (n_layer %d, n_head %d, n_embd %d, n_ctx %d, n_inner %d, "
                            "vocab_size %d)", what, c->n_layer, c->n_head, c->n_embd, c->n_ctx, c->n_inner,
                            c->vocab_size);
    if (c->n_embd % c->n_head != 0)
        return blurb_seterr(err, code, "%s: n_embd %d is not a multiple of n_head %d", what, c->n_embd,
                            c->n_head);
    if (!(c->layer_norm_epsilon > 0.0f) || !isfinite(c->layer_norm_epsilon))
        return blurb_seterr(err, code, "%s: layer_norm_epsilon %g must be a positive number", what,
                            (double)c->layer_norm_epsilon);
    if (c->eos_token_id < 0 || c->eos_token_id >= c->vocab_size)
        return blurb_seterr(err, code,
                            "%s: eos_token_id %d is not a token id (vocab_size %d; GPT-2's default is 50256)",
                            what, c->eos_token_id, c->vocab_size);
    return 0;
}

static int parse_config(const char *path, const char *text, size_t len, blurb_config *c, bool *tie,
                        blurb_err *err) {
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    if (!root) {
        int line, col;
        blurb_text_line_col(text, len, end && end >= text ? (size_t)(end - text) : 0, &line, &col);
        return blurb_seterr(err, BLURB_E_FORMAT, "%s: malformed JSON near line %d column %d", path, line, col);
    }
    int rc = 0;
    for (const char *p = end; p < text + len; p++)
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') {
            int line, col;
            blurb_text_line_col(text, len, (size_t)(p - text), &line, &col);
            rc = blurb_seterr(err, BLURB_E_FORMAT, "%s: malformed JSON: extra text at line %d column %d", path,
                              line, col);
            goto done;
        }
    if (!cJSON_IsObject(root)) {
        rc = blurb_seterr(err, BLURB_E_FORMAT, "%s: not a JSON object", path);
        goto done;
    }
    /* cJSON would read the first of two equal keys and Python's json the last: refuse to guess
     * (checked only for the fields blurb reads, so a huge file cannot make this quadratic). */
    static const char *const used[] = {"model_type", "activation_function", "add_cross_attention", "n_layer",
                                       "n_head", "n_embd", "n_positions", "n_ctx", "n_inner", "vocab_size",
                                       "layer_norm_epsilon", "eos_token_id", "scale_attn_weights",
                                       "scale_attn_by_inverse_layer_idx", "reorder_and_upcast_attn",
                                       "tie_word_embeddings"};
    for (size_t u = 0; u < sizeof used / sizeof used[0]; u++) {
        int seen = 0;
        for (const cJSON *a = root->child; a; a = a->next) seen += a->string && strcmp(a->string, used[u]) == 0;
        if (seen > 1) {
            rc = blurb_seterr(err, BLURB_E_FORMAT, "%s: field \"%s\" appears %d times", path, used[u], seen);
            goto done;
        }
    }
    memset(c, 0, sizeof *c);
    const cJSON *mt = cJSON_GetObjectItemCaseSensitive(root, "model_type");
    if (cJSON_IsString(mt) && strcmp(mt->valuestring, "gpt2") != 0) {
        rc = blurb_seterr(err, BLURB_E_UNSUPPORTED, "%s: model_type \"%s\" is not supported (blurb runs gpt2)",
                          path, mt->valuestring);
        goto done;
    }
    const cJSON *act = cJSON_GetObjectItemCaseSensitive(root, "activation_function");
    if (act && !cJSON_IsNull(act)) {
        if (!cJSON_IsString(act)) {
            rc = blurb_seterr(err, BLURB_E_FORMAT, "%s: field \"activation_function\" must be a string", path);
            goto done;
        }
        if (strcmp(act->valuestring, "gelu_new") != 0) {
            rc = blurb_seterr(err, BLURB_E_UNSUPPORTED,
                              "%s: activation_function \"%s\" is not supported: blurb implements only gelu_new "
                              "(the tanh GELU of GPT-2)", path, act->valuestring);
            goto done;
        }
    }
    bool cross = false;
    if ((rc = cfg_bool(path, root, "add_cross_attention", false, &cross, err))) goto done;
    if (cross) {
        rc = blurb_seterr(err, BLURB_E_UNSUPPORTED, "%s: add_cross_attention is not supported", path);
        goto done;
    }
    if ((rc = cfg_int(path, root, "n_layer", true, 0, 1, 1024, &c->n_layer, err))) goto done;
    if ((rc = cfg_int(path, root, "n_head", true, 0, 1, 1024, &c->n_head, err))) goto done;
    if ((rc = cfg_int(path, root, "n_embd", true, 0, 1, 65536, &c->n_embd, err))) goto done;
    /* n_positions is the HF name; very old configs only carry n_ctx. */
    const char *pos_key = cJSON_GetObjectItemCaseSensitive(root, "n_positions") ? "n_positions" : "n_ctx";
    if (!cJSON_GetObjectItemCaseSensitive(root, pos_key)) pos_key = "n_positions";
    if ((rc = cfg_int(path, root, pos_key, true, 0, 1, 1 << 20, &c->n_ctx, err))) goto done;
    if ((rc = cfg_int(path, root, "n_inner", false, 4 * c->n_embd, 1, 1 << 20, &c->n_inner, err))) goto done;
    if ((rc = cfg_int(path, root, "vocab_size", true, 0, 1, 1 << 24, &c->vocab_size, err))) goto done;
    const cJSON *eps = cJSON_GetObjectItemCaseSensitive(root, "layer_norm_epsilon");
    if (!eps || cJSON_IsNull(eps)) {
        c->layer_norm_epsilon = 1e-5f;
    } else if (!cJSON_IsNumber(eps)) {
        rc = blurb_seterr(err, BLURB_E_FORMAT, "%s: field \"layer_norm_epsilon\" must be a number", path);
        goto done;
    } else {
        c->layer_norm_epsilon = (float)eps->valuedouble;
    }
    /* eos_token_id may be a list in newer configs; generation stops at the first. */
    const cJSON *eos = cJSON_GetObjectItemCaseSensitive(root, "eos_token_id");
    if (cJSON_IsArray(eos)) eos = cJSON_GetArrayItem(eos, 0);
    if ((rc = cfg_int_item(path, eos, "eos_token_id", false, 50256, 0, 1 << 24, &c->eos_token_id, err))) goto done;
    if ((rc = cfg_bool(path, root, "scale_attn_weights", true, &c->scale_attn_weights, err))) goto done;
    if ((rc = cfg_bool(path, root, "scale_attn_by_inverse_layer_idx", false, &c->scale_attn_by_inverse_layer_idx,
                       err)))
        goto done;
    /* reorder_and_upcast_attn only asks for fp32 attention, which blurb always computes. */
    bool upcast;
    if ((rc = cfg_bool(path, root, "reorder_and_upcast_attn", false, &upcast, err))) goto done;
    if ((rc = cfg_bool(path, root, "tie_word_embeddings", true, tie, err))) goto done;
    rc = validate_config(path, c, BLURB_E_FORMAT, err);
done:
    cJSON_Delete(root);
    return rc;
}

/* ---- tensors ------------------------------------------------------------------- */

/* Every distinct tensor of m (lm_head only when untied), for counting and filling. */
static int model_tensor_list(blurb_model *m, blurb_tensor **list) {
    int k = 0;
    list[k++] = &m->wte;
    list[k++] = &m->wpe;
    for (int i = 0; i < m->cfg.n_layer; i++) {
        blurb_layer *L = &m->layers[i];
        blurb_tensor *ts[] = {&L->ln_1_w, &L->ln_1_b, &L->c_attn_w, &L->c_attn_b, &L->attn_c_proj_w,
                              &L->attn_c_proj_b, &L->ln_2_w, &L->ln_2_b, &L->c_fc_w, &L->c_fc_b,
                              &L->mlp_c_proj_w, &L->mlp_c_proj_b};
        for (size_t j = 0; j < sizeof ts / sizeof ts[0]; j++) list[k++] = ts[j];
    }
    list[k++] = &m->ln_f_w;
    list[k++] = &m->ln_f_b;
    if (!m->lm_head_tied) list[k++] = &m->lm_head;
    return k;
}

#define TENSORS_PER_LAYER 12
#define MAX_TENSORS(n_layer) (5 + TENSORS_PER_LAYER * (n_layer))

static int64_t model_sum(const blurb_model *m, bool bytes) {
    if (!m || !m->layers) return 0;
    blurb_tensor **list = malloc(sizeof *list * (size_t)MAX_TENSORS(m->cfg.n_layer));
    if (!list) return -1;
    int n = model_tensor_list((blurb_model *)m, list);
    int64_t s = 0;
    for (int i = 0; i < n; i++)
        s += blurb_tensor_numel(list[i]) * (bytes ? (int64_t)blurb_dtype_size(list[i]->dtype) : 1);
    free(list);
    return s;
}

int64_t blurb_model_n_params(const blurb_model *m) { return model_sum(m, false); }
int64_t blurb_model_n_bytes(const blurb_model *m) { return model_sum(m, true); }

typedef struct loader {
    const char *weights; /* file named in messages: model.safetensors or the index */
    bool tie;            /* config tie_word_embeddings (HF default true) */
    const char *prefix;  /* "transformer." or "" */
    const blurb_st_set *set;
} loader;

/* Finds prefix+name, checks its dtype and that its shape is [d0] (d1 < 0) or
 * [d0, d1]; dims names the expected shape in config terms for the message. */
static int get_tensor(const loader *ld, const char *prefix, const char *name, int64_t d0, int64_t d1,
                      const char *dims, blurb_tensor *out, blurb_err *err) {
    char full[256];
    snprintf(full, sizeof full, "%s%s", prefix, name);
    const blurb_st_file *file = NULL;
    const blurb_st_tensor *t = blurb_st_set_find(ld->set, full, &file);
    if (!t) return blurb_seterr(err, BLURB_E_FORMAT, "%s: missing tensor '%s'", ld->weights, full);
    blurb_dtype dt;
    switch (t->dtype) {
    case BLURB_ST_F32: dt = BLURB_DTYPE_F32; break;
    case BLURB_ST_F16: dt = BLURB_DTYPE_F16; break;
    case BLURB_ST_BF16: dt = BLURB_DTYPE_BF16; break;
    default:
        return blurb_seterr(err, BLURB_E_UNSUPPORTED,
                            "%s: tensor '%s' has unsupported dtype %s (blurb reads F32, F16 and BF16)",
                            file->path, full, t->dtype_name);
    }
    int want_nd = d1 < 0 ? 1 : 2;
    bool ok = t->ndim == want_nd && t->shape[0] == d0 && (want_nd == 1 || t->shape[1] == d1);
    if (!ok) {
        char got[160];
        size_t n = 0;
        n += (size_t)snprintf(got + n, sizeof got - n, "[");
        for (int d = 0; d < t->ndim && n < sizeof got; d++)
            n += (size_t)snprintf(got + n, sizeof got - n, "%s%lld", d ? ", " : "", (long long)t->shape[d]);
        if (n < sizeof got) snprintf(got + n, sizeof got - n, "]");
        char want[64];
        if (want_nd == 1)
            snprintf(want, sizeof want, "[%lld]", (long long)d0);
        else
            snprintf(want, sizeof want, "[%lld, %lld]", (long long)d0, (long long)d1);
        return blurb_seterr(err, BLURB_E_FORMAT,
                            "%s: tensor '%s' has shape %s but config.json expects %s (%s)", file->path, full, got,
                            want, dims);
    }
    out->dtype = dt;
    out->ndim = want_nd;
    out->shape[0] = d0;
    out->shape[1] = want_nd == 1 ? 1 : d1;
    out->data = t->data;
    return 0;
}

/* A tensor h.N.* with N >= n_layer means config.json and the weights disagree. */
static int check_extra_layers(const loader *ld, const blurb_config *c, blurb_err *err) {
    size_t pl = strlen(ld->prefix);
    for (int f = 0; f < ld->set->n_files; f++) {
        const blurb_st_file *file = ld->set->files[f];
        for (int i = 0; i < file->n_tensors; i++) {
            const char *name = file->tensors[i].name;
            if (strncmp(name, ld->prefix, pl) != 0 || strncmp(name + pl, "h.", 2) != 0) continue;
            char *end;
            errno = 0;
            long layer = strtol(name + pl + 2, &end, 10);
            if (end != name + pl + 2 && *end == '.' && (layer >= c->n_layer || errno == ERANGE))
                return blurb_seterr(err, BLURB_E_FORMAT,
                                    "%s: tensor '%s' is for layer %ld but config.json has n_layer %d", file->path,
                                    name, layer, c->n_layer);
        }
    }
    return 0;
}

static int load_tensors(blurb_model *m, const loader *ld0, blurb_err *err) {
    loader ld = *ld0;
    const blurb_config *c = &m->cfg;
    int64_t E = c->n_embd, I = c->n_inner, V = c->vocab_size, P = c->n_ctx;
    if (blurb_st_set_find(ld.set, "transformer.wte.weight", NULL))
        ld.prefix = "transformer.";
    else if (blurb_st_set_find(ld.set, "wte.weight", NULL))
        ld.prefix = "";
    else
        return blurb_seterr(err, BLURB_E_FORMAT, "%s: missing tensor 'transformer.wte.weight' (or 'wte.weight')",
                            ld.weights);
    const char *p = ld.prefix;
    int rc;
    if ((rc = get_tensor(&ld, p, "wte.weight", V, E, "[vocab_size, n_embd]", &m->wte, err))) return rc;
    if ((rc = get_tensor(&ld, p, "wpe.weight", P, E, "[n_positions, n_embd]", &m->wpe, err))) return rc;
    for (int i = 0; i < c->n_layer; i++) {
        blurb_layer *L = &m->layers[i];
        struct {
            const char *name;
            int64_t d0, d1;
            const char *dims;
            blurb_tensor *dst;
        } spec[] = {
            {"ln_1.weight", E, -1, "[n_embd]", &L->ln_1_w},
            {"ln_1.bias", E, -1, "[n_embd]", &L->ln_1_b},
            {"attn.c_attn.weight", E, 3 * E, "[n_embd, 3*n_embd]", &L->c_attn_w},
            {"attn.c_attn.bias", 3 * E, -1, "[3*n_embd]", &L->c_attn_b},
            {"attn.c_proj.weight", E, E, "[n_embd, n_embd]", &L->attn_c_proj_w},
            {"attn.c_proj.bias", E, -1, "[n_embd]", &L->attn_c_proj_b},
            {"ln_2.weight", E, -1, "[n_embd]", &L->ln_2_w},
            {"ln_2.bias", E, -1, "[n_embd]", &L->ln_2_b},
            {"mlp.c_fc.weight", E, I, "[n_embd, n_inner]", &L->c_fc_w},
            {"mlp.c_fc.bias", I, -1, "[n_inner]", &L->c_fc_b},
            {"mlp.c_proj.weight", I, E, "[n_inner, n_embd]", &L->mlp_c_proj_w},
            {"mlp.c_proj.bias", E, -1, "[n_embd]", &L->mlp_c_proj_b},
        };
        for (size_t j = 0; j < sizeof spec / sizeof spec[0]; j++) {
            char name[128];
            snprintf(name, sizeof name, "h.%d.%s", i, spec[j].name);
            if ((rc = get_tensor(&ld, p, name, spec[j].d0, spec[j].d1, spec[j].dims, spec[j].dst, err))) return rc;
        }
    }
    if ((rc = get_tensor(&ld, p, "ln_f.weight", E, -1, "[n_embd]", &m->ln_f_w, err))) return rc;
    if ((rc = get_tensor(&ld, p, "ln_f.bias", E, -1, "[n_embd]", &m->ln_f_b, err))) return rc;
    /* HF saves GPT2LMHeadModel's tied head without a tensor; untied fine-tunes carry lm_head.weight
     * (never with the transformer. prefix: the head sits outside GPT2Model). The attn.bias /
     * attn.masked_bias causal-mask buffers of older files are simply never looked up. */
    if (blurb_st_set_find(ld.set, "lm_head.weight", NULL)) {
        if ((rc = get_tensor(&ld, "", "lm_head.weight", V, E, "[vocab_size, n_embd]", &m->lm_head, err))) return rc;
        m->lm_head_tied = false;
    } else if (ld.tie) {
        m->lm_head = m->wte;
        m->lm_head_tied = true;
    } else {
        /* HF would initialise the head randomly here; a model without its head is unusable. */
        return blurb_seterr(err, BLURB_E_FORMAT,
                            "%s: missing tensor 'lm_head.weight' (config.json has tie_word_embeddings false)",
                            ld.weights);
    }
    return check_extra_layers(&ld, c, err);
}

static blurb_model *model_alloc(const blurb_config *c, const char *dir, blurb_err *err) {
    blurb_model *m = calloc(1, sizeof *m);
    model_priv *pv = calloc(1, sizeof *pv);
    blurb_layer *layers = calloc((size_t)c->n_layer, sizeof *layers);
    char *d = strdup(dir);
    if (!m || !pv || !layers || !d) {
        free(m);
        free(pv);
        free(layers);
        free(d);
        blurb_seterr(err, BLURB_E_NOMEM, "%s: out of memory", dir);
        return NULL;
    }
    m->cfg = *c;
    m->layers = layers;
    m->dir = d;
    m->priv = pv;
    return m;
}

int blurb_model_load(const char *dir, blurb_model **out, blurb_err *err) {
    *out = NULL;
    if (!dir || !dir[0]) return blurb_seterr(err, BLURB_E_INVALID, "model directory not given");
    size_t dl = strlen(dir);
    char *cfg_path = malloc(dl + sizeof "/config.json");
    if (!cfg_path) return blurb_seterr(err, BLURB_E_NOMEM, "%s: out of memory", dir);
    snprintf(cfg_path, dl + sizeof "/config.json", "%s/config.json", dir);
    char *text = NULL;
    size_t len = 0;
    blurb_config cfg;
    bool tie = true;
    int rc = blurb_read_file(cfg_path, CONFIG_MAX_BYTES, &text, &len, err);
    if (rc == 0) rc = parse_config(cfg_path, text, len, &cfg, &tie, err);
    free(text);
    free(cfg_path);
    if (rc) return rc;

    blurb_st_set *set = NULL;
    if ((rc = blurb_st_set_open(dir, &set, err))) return rc;
    blurb_model *m = model_alloc(&cfg, dir, err);
    if (!m) {
        blurb_st_set_close(set);
        return BLURB_E_NOMEM;
    }
    ((model_priv *)m->priv)->set = set;
    char *weights = set->index_path ? NULL : set->files[0]->path;
    loader ld = {set->index_path ? set->index_path : weights, tie, "", set};
    rc = load_tensors(m, &ld, err);
    if (rc) {
        blurb_model_free(m);
        return rc;
    }
    *out = m;
    return 0;
}

/* ---- random model ------------------------------------------------------------- */

static uint64_t splitmix64(uint64_t *s) {
    /* Steele, Lea, Flood 2014, "Fast splittable pseudorandom number generators" (SplitMix64). */
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

#define RAND_CHUNK 65536

/* normal(0, std) by Box-Muller. Each chunk of RAND_CHUNK values has its own
 * stream derived from (seed, tensor, chunk), so the result does not depend on
 * how chunks are spread over threads. */
static void fill_normal(float *dst, int64_t n, uint64_t seed, int tensor, float std) {
    int64_t n_chunks = (n + RAND_CHUNK - 1) / RAND_CHUNK;
#ifdef _OPENMP
#pragma omp parallel for schedule(static)
#endif
    for (int64_t ch = 0; ch < n_chunks; ch++) {
        uint64_t s = seed ^ ((uint64_t)tensor << 40) ^ (uint64_t)ch;
        s = splitmix64(&s) ^ seed;
        int64_t lo = ch * RAND_CHUNK, hi = lo + RAND_CHUNK < n ? lo + RAND_CHUNK : n;
        for (int64_t i = lo; i < hi; i += 2) {
            double u1 = ((double)(splitmix64(&s) >> 11) + 1.0) * 0x1p-53; /* (0, 1]: log is finite */
            double u2 = (double)(splitmix64(&s) >> 11) * 0x1p-53;
            double r = sqrt(-2.0 * log(u1)) * std;
            dst[i] = (float)(r * cos(2.0 * M_PI * u2));
            if (i + 1 < hi) dst[i + 1] = (float)(r * sin(2.0 * M_PI * u2));
        }
    }
}

int blurb_model_random(const blurb_config *cfg, uint64_t seed, blurb_model **out, blurb_err *err) {
    *out = NULL;
    if (!cfg) return blurb_seterr(err, BLURB_E_INVALID, "random model: no config");
    int rc = validate_config("random model", cfg, BLURB_E_INVALID, err);
    if (rc) return rc;
    blurb_model *m = model_alloc(cfg, "(random)", err);
    if (!m) return BLURB_E_NOMEM;
    m->lm_head_tied = true;
    int64_t E = cfg->n_embd, I = cfg->n_inner;
    /* Shapes first (data NULL), then one buffer for all. */
    m->wte = (blurb_tensor){BLURB_DTYPE_F32, 2, {cfg->vocab_size, E}, NULL};
    m->wpe = (blurb_tensor){BLURB_DTYPE_F32, 2, {cfg->n_ctx, E}, NULL};
    m->ln_f_w = m->ln_f_b = (blurb_tensor){BLURB_DTYPE_F32, 1, {E, 1}, NULL};
    for (int i = 0; i < cfg->n_layer; i++) {
        blurb_layer *L = &m->layers[i];
        blurb_tensor vec = {BLURB_DTYPE_F32, 1, {E, 1}, NULL};
        L->ln_1_w = L->ln_1_b = L->ln_2_w = L->ln_2_b = L->attn_c_proj_b = L->mlp_c_proj_b = vec;
        L->c_attn_w = (blurb_tensor){BLURB_DTYPE_F32, 2, {E, 3 * E}, NULL};
        L->c_attn_b = (blurb_tensor){BLURB_DTYPE_F32, 1, {3 * E, 1}, NULL};
        L->attn_c_proj_w = (blurb_tensor){BLURB_DTYPE_F32, 2, {E, E}, NULL};
        L->c_fc_w = (blurb_tensor){BLURB_DTYPE_F32, 2, {E, I}, NULL};
        L->c_fc_b = (blurb_tensor){BLURB_DTYPE_F32, 1, {I, 1}, NULL};
        L->mlp_c_proj_w = (blurb_tensor){BLURB_DTYPE_F32, 2, {I, E}, NULL};
    }
    blurb_tensor **list = malloc(sizeof *list * (size_t)MAX_TENSORS(cfg->n_layer));
    if (!list) {
        blurb_model_free(m);
        return blurb_seterr(err, BLURB_E_NOMEM, "random model: out of memory");
    }
    int n = model_tensor_list(m, list);
    int64_t total = 0;
    for (int i = 0; i < n; i++) total += blurb_tensor_numel(list[i]);
    float *buf = (uint64_t)total <= SIZE_MAX / sizeof(float) ? malloc((size_t)total * sizeof(float)) : NULL;
    if (!buf) {
        free(list);
        blurb_model_free(m);
        return blurb_seterr(err, BLURB_E_NOMEM, "random model: cannot allocate %lld parameters",
                            (long long)total);
    }
    ((model_priv *)m->priv)->owned = buf;
    int64_t at = 0;
    for (int i = 0; i < n; i++) {
        blurb_tensor *t = list[i];
        int64_t k = blurb_tensor_numel(t);
        float *d = buf + at;
        t->data = d;
        at += k;
        /* HF GPT2PreTrainedModel._init_weights: matrices and embeddings normal(0, 0.02),
         * biases 0, LayerNorm weight 1 (2-D tensors are exactly the matrices here). */
        bool is_ln_w = t == &m->ln_f_w;
        for (int l = 0; l < cfg->n_layer && !is_ln_w; l++)
            is_ln_w = t == &m->layers[l].ln_1_w || t == &m->layers[l].ln_2_w;
        if (t->ndim == 2)
            fill_normal(d, k, seed, i, 0.02f);
        else
            for (int64_t j = 0; j < k; j++) d[j] = is_ln_w ? 1.0f : 0.0f;
    }
    free(list);
    m->lm_head = m->wte;
    *out = m;
    return 0;
}

void blurb_model_free(blurb_model *m) {
    if (!m) return;
    model_priv *pv = m->priv;
    if (pv) {
        blurb_st_set_close(pv->set);
        free(pv->owned);
        free(pv);
    }
    free(m->layers);
    free(m->dir);
    free(m);
}

/* ---- default model --------------------------------------------------------- */

#ifndef BLURB_SOURCE_DIR
#define BLURB_SOURCE_DIR "."
#endif
#ifndef BLURB_INSTALL_DATADIR
#define BLURB_INSTALL_DATADIR "/usr/local/share/blurb"
#endif

static bool has_config(const char *dir) {
    char p[4096];
    struct stat st;
    int n = snprintf(p, sizeof p, "%s/config.json", dir);
    return n > 0 && (size_t)n < sizeof p && stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

int blurb_default_model_dir(char *buf, size_t size, blurb_err *err) {
    const char *env = getenv("BLURB_MODEL");
    const char *src = BLURB_SOURCE_DIR "/weights/default";
    const char *inst = BLURB_INSTALL_DATADIR "/default";
    /* An explicit $BLURB_MODEL wins even if it is wrong: loading then says what is wrong with it,
     * rather than silently running another model. */
    const char *pick = env && env[0] ? env : has_config(src) ? src : has_config(inst) ? inst : NULL;
    if (!pick)
        return blurb_seterr(err, BLURB_E_IO,
                            "no default model: $BLURB_MODEL is not set, and neither %s nor %s holds a config.json "
                            "(use --model DIR)", src, inst);
    if (strlen(pick) + 1 > size)
        return blurb_seterr(err, BLURB_E_INVALID, "model path %s is longer than the %zu-byte buffer", pick, size);
    memcpy(buf, pick, strlen(pick) + 1);
    return 0;
}
