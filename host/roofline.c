/* Analytic bytes and FLOPs of GPT-2 inference (include/blurb/roofline.h gives
 * every formula and its source), and the CUDA peak/device queries' stubs for
 * builds without CUDA (include/blurb/cuda_peaks.h). */
#include "blurb/roofline.h"

#include <stddef.h>

#include "blurb/cuda_peaks.h"

int blurb_work_forward(const blurb_config *cfg, int elem_bytes, int64_t n_seq, int64_t n_past,
                       int64_t n_new, bool all_logits, blurb_work *w, blurb_err *err) {
    if (!cfg || !w) return blurb_seterr(err, BLURB_E_INVALID, "roofline: config and work must not be NULL");
    if (elem_bytes < 1 || elem_bytes > 8)
        return blurb_seterr(err, BLURB_E_INVALID, "roofline: %d bytes per element (expected 1..8)", elem_bytes);
    if (n_seq < 1 || n_new < 1 || n_past < 0)
        return blurb_seterr(err, BLURB_E_INVALID,
                            "roofline: %lld sequences of %lld past + %lld new tokens (need >= 1, >= 0, >= 1)",
                            (long long)n_seq, (long long)n_past, (long long)n_new);
    if (cfg->n_layer < 1 || cfg->n_embd < 1 || cfg->n_inner < 1 || cfg->vocab_size < 1 || cfg->n_ctx < 1)
        return blurb_seterr(err, BLURB_E_INVALID, "roofline: config sizes must be positive");
    if (n_past > cfg->n_ctx || n_new > cfg->n_ctx - n_past)
        return blurb_seterr(err, BLURB_E_INVALID, "roofline: %lld + %lld tokens exceed n_ctx %d",
                            (long long)n_past, (long long)n_new, cfg->n_ctx);

    const double L = cfg->n_layer, E = cfg->n_embd, I = cfg->n_inner, V = cfg->vocab_size;
    const double b = elem_bytes, logit_b = 4.0;
    const double T = (double)n_seq * (double)n_new;
    const double R = all_logits ? T : (double)n_seq;

    blurb_work add = {{0}, {0}};

    /* Matrix products: weights once per call, each input and output once. */
    add.flops[BLURB_PHASE_GEMM] = 2.0 * T * L * (4.0 * E * E + 2.0 * E * I) + 2.0 * R * E * V;
    add.bytes[BLURB_PHASE_GEMM] = L * (4.0 * E * E + 2.0 * E * I + 5.0 * E + I) * b + V * E * b +
                                  T * L * (8.0 * E + 2.0 * I) * b + R * E * b + R * V * logit_b;

    /* Attention: query p attends to p + 1 keys, so the keys attended by one
     * sequence's new tokens sum to n_new * n_past + n_new (n_new + 1) / 2. */
    const double np = (double)n_past, nn = (double)n_new;
    const double keys = nn * np + nn * (nn + 1.0) / 2.0;
    add.flops[BLURB_PHASE_ATTENTION] = 4.0 * E * keys * L * (double)n_seq;
    add.bytes[BLURB_PHASE_ATTENTION] = L * (double)n_seq * 2.0 * (np + nn) * E * b + L * 2.0 * T * E * b;

    /* The rest: elementwise and row-wise passes, embedding and final LayerNorm. */
    add.flops[BLURB_PHASE_OTHER] = T * L * (16.0 * E + 8.0 * I + 2.0 * E) + T * E + 8.0 * R * E;
    add.bytes[BLURB_PHASE_OTHER] = T * L * (10.0 * E + 2.0 * I) * b + L * 4.0 * E * b + T * 3.0 * E * b +
                                   2.0 * R * E * b + 2.0 * E * b;

    blurb_work_add(w, &add);
    return 0;
}

int blurb_work_sample(const blurb_config *cfg, int64_t n_rows, blurb_work *w, blurb_err *err) {
    if (!cfg || !w) return blurb_seterr(err, BLURB_E_INVALID, "roofline: config and work must not be NULL");
    if (n_rows < 0 || cfg->vocab_size < 1)
        return blurb_seterr(err, BLURB_E_INVALID, "roofline: %lld rows of vocab_size %d", (long long)n_rows,
                            cfg->vocab_size);
    const double R = (double)n_rows, V = cfg->vocab_size;
    w->bytes[BLURB_PHASE_OTHER] += R * V * 4.0;
    w->flops[BLURB_PHASE_OTHER] += 4.0 * R * V;
    return 0;
}

void blurb_work_add(blurb_work *acc, const blurb_work *w) {
    for (int p = 0; p < BLURB_N_PHASES; p++) {
        acc->bytes[p] += w->bytes[p];
        acc->flops[p] += w->flops[p];
    }
}

double blurb_work_total_bytes(const blurb_work *w) {
    double s = 0.0;
    for (int p = 0; p < BLURB_N_PHASES; p++) s += w->bytes[p];
    return s;
}

double blurb_work_total_flops(const blurb_work *w) {
    double s = 0.0;
    for (int p = 0; p < BLURB_N_PHASES; p++) s += w->flops[p];
    return s;
}

double blurb_roofline_seconds(const blurb_work *w, double bytes_per_s, double flops_per_s) {
    if (!w || !(bytes_per_s > 0.0) || !(flops_per_s > 0.0)) return -1.0;
    double s = 0.0;
    for (int p = 0; p < BLURB_N_PHASES; p++) {
        double tm = w->bytes[p] / bytes_per_s, tc = w->flops[p] / flops_per_s;
        s += tm > tc ? tm : tc;
    }
    return s;
}

#ifndef BLURB_HAVE_CUDA
/* Without CUDA there is no device to measure (host/cuda_peaks.c has the real ones). */
int blurb_cuda_measure_peaks(int device, double *bytes_per_s, double *flops_per_s, blurb_err *err) {
    (void)device;
    if (bytes_per_s) *bytes_per_s = 0.0;
    if (flops_per_s) *flops_per_s = 0.0;
    return blurb_seterr(err, BLURB_E_UNSUPPORTED, "this blurb was built without CUDA: no device peaks to measure");
}

int blurb_cuda_device_query(int device, blurb_cuda_device_info *info, blurb_err *err) {
    (void)device;
    (void)info;
    return blurb_seterr(err, BLURB_E_UNSUPPORTED, "this blurb was built without CUDA: no device to query");
}

int blurb_cuda_mem_used(int device, int64_t *used_bytes, blurb_err *err) {
    (void)device;
    if (used_bytes) *used_bytes = 0;
    return blurb_seterr(err, BLURB_E_UNSUPPORTED, "this blurb was built without CUDA: no device memory");
}
#endif
