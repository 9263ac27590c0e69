/* Errors of the CUDA backend are reported, never fatal: asking for the cuda
 * backend where it cannot run returns BLURB_E_DEVICE (no device, or a device
 * ordinal that does not exist) or BLURB_E_UNSUPPORTED (a build without CUDA)
 * with a message saying why, while --backend auto falls back to the CPU.
 * Runs everywhere (no skip): this is the part of the CUDA backend that a
 * machine without a GPU can check. */
#include "cuda_test_util.h"
#ifdef BLURB_HAVE_CUDA
#include "../host/cuda_backend.h"
#endif

static blurb_model *tiny(void) {
    blurb_config c;
    memset(&c, 0, sizeof c);
    c.n_layer = 1;
    c.n_head = 2;
    c.n_embd = 64;
    c.n_ctx = 32;
    c.n_inner = 256;
    c.vocab_size = 100;
    c.layer_norm_epsilon = 1e-5f;
    c.eos_token_id = 99;
    c.scale_attn_weights = true;
    blurb_model *m = NULL;
    blurb_err err;
    blurb_err_clear(&err);
    REQUIRE(blurb_model_random(&c, 1, &m, &err) == 0);
    return m;
}

int main(void) {
    blurb_model *m = tiny();
    blurb_backend_opts o = blurb_backend_opts_default();
    blurb_backend *be = NULL;
    blurb_err err;

    o.kind = BLURB_BACKEND_CUDA;
    blurb_err_clear(&err);
#ifndef BLURB_HAVE_CUDA
    CHECK(!blurb_cuda_available());
    CHECK(blurb_backend_create(m, &o, &be, &err) == BLURB_E_UNSUPPORTED);
    CHECK(be == NULL);
    CHECKF(strstr(err.msg, "CUDA") != NULL, "message: %s", err.msg);
    printf("no CUDA build: %s\n", err.msg);
#else
    if (!blurb_cuda_available()) {
        CHECK(blurb_backend_create(m, &o, &be, &err) == BLURB_E_DEVICE);
        CHECK(be == NULL);
        CHECKF(strstr(err.msg, "no CUDA device") != NULL, "message: %s", err.msg);
        printf("no device: %s\n", err.msg);
        /* the kernel test hook fails the same way */
        float row[4] = {0, 1, 2, 3};
        blurb_sampling s = blurb_sampling_default();
        blurb_sample_req r = {0, 0, &s, 1, 0};
        const int32_t *h[1] = {NULL};
        int nh[1] = {0};
        int32_t tok;
        blurb_err_clear(&err);
        CHECK(blurb_cuda_sample_rows(0, row, 1, 4, &r, h, nh, &tok, NULL, &err) == BLURB_E_DEVICE);
        CHECKF(strstr(err.msg, "CUDA error") != NULL, "message: %s", err.msg);
        printf("no device (sample_rows): %s\n", err.msg);
    } else {
        o.device = 999;
        CHECK(blurb_backend_create(m, &o, &be, &err) == BLURB_E_DEVICE);
        CHECK(be == NULL);
        CHECKF(strstr(err.msg, "999") != NULL, "message: %s", err.msg);
        printf("bad ordinal: %s\n", err.msg);
        /* a device that works: a tiny model runs a forward and a draw */
        o.device = 0;
        blurb_err_clear(&err);
        REQUIRE(blurb_backend_create(m, &o, &be, &err) == 0);
        int32_t toks[5] = {1, 2, 3, 4, 5}, out = -1;
        blurb_chunk c = {0, toks, 5};
        CHECK(blurb_backend_forward(be, &c, 1, false, &err) == 0);
        blurb_sampling s = blurb_sampling_default();
        blurb_sample_req r = {0, 0, &s, 7, 0};
        CHECK(blurb_backend_sample(be, &r, 1, &out, NULL, &err) == 0);
        CHECK(out >= 0 && out < 100);
        blurb_backend_free(be);
        be = NULL;
    }
#endif
    /* auto never fails for want of a GPU */
    o = blurb_backend_opts_default();
    blurb_err_clear(&err);
    REQUIRE(blurb_backend_create(m, &o, &be, &err) == 0);
    CHECK(strcmp(be->ops->name, blurb_cuda_available() ? "cuda" : "cpu") == 0);
    blurb_backend_free(be);
    blurb_model_free(m);
    return check_finish("cuda_errors");
}
