/* The generic backend layer (host/backend.c): option defaults, kind parsing,
 * dispatch, argument validation with its messages, and the slot bookkeeping
 * (lengths and token histories) — on the CPU backend with a tiny random model. */
#include <string.h>

#include "blurb/backend.h"
#include "blurb/model.h"
#include "blurb/sampler.h"
#include "check.h"

static blurb_err err;

/* rc is the expected error code and err.msg contains every given fragment. */
static bool fails_with(int rc, int code, const char *frag1, const char *frag2) {
    bool ok = rc == code && err.code == code && strstr(err.msg, frag1) && (!frag2 || strstr(err.msg, frag2));
    if (!ok) fprintf(stderr, "  got rc %d, message '%s'\n", rc, err.msg);
    blurb_err_clear(&err);
    return ok;
}

int main(void) {
    blurb_err_clear(&err);
    blurb_backend_opts o = blurb_backend_opts_default();
    CHECK(o.kind == BLURB_BACKEND_AUTO && o.max_slots == 0 && o.dtype == BLURB_DTYPE_BF16 && o.device == 0 &&
          o.n_threads == 0 && o.batch_invariant);

    blurb_backend_kind k = BLURB_BACKEND_CUDA;
    CHECK(blurb_backend_kind_parse("cpu", &k, &err) == 0 && k == BLURB_BACKEND_CPU);
    CHECK(blurb_backend_kind_parse("cuda", &k, &err) == 0 && k == BLURB_BACKEND_CUDA);
    CHECK(blurb_backend_kind_parse("auto", &k, &err) == 0 && k == BLURB_BACKEND_AUTO);
    CHECK(fails_with(blurb_backend_kind_parse("gpu", &k, &err), BLURB_E_INVALID, "unknown backend 'gpu'", "cpu"));
    CHECK(fails_with(blurb_backend_kind_parse(NULL, &k, &err), BLURB_E_INVALID, "backend", NULL));

    blurb_config cfg = {0};
    cfg.n_layer = 2;
    cfg.n_head = 2;
    cfg.n_embd = 16;
    cfg.n_ctx = 8;
    cfg.n_inner = 64;
    cfg.vocab_size = 50;
    cfg.layer_norm_epsilon = 1e-5f;
    cfg.eos_token_id = 49;
    cfg.scale_attn_weights = true;
    blurb_model *m = NULL;
    REQUIRE(blurb_model_random(&cfg, 1, &m, &err) == 0);

    blurb_backend *be = NULL;
#ifndef BLURB_HAVE_CUDA
    o.kind = BLURB_BACKEND_CUDA;
    CHECK(fails_with(blurb_backend_create(m, &o, &be, &err), BLURB_E_UNSUPPORTED, "built without CUDA", NULL));
    CHECK(be == NULL);
    CHECK(!blurb_cuda_available());
    o.kind = BLURB_BACKEND_AUTO; /* without CUDA: the cpu backend */
    REQUIRE(blurb_backend_create(m, &o, &be, &err) == 0);
    CHECK(strcmp(be->ops->name, "cpu") == 0);
    blurb_backend_free(be);
    be = NULL;
#endif
    o.kind = BLURB_BACKEND_CPU;
    o.max_slots = -1;
    CHECK(fails_with(blurb_backend_create(m, &o, &be, &err), BLURB_E_INVALID, "max_slots", NULL));
    o.max_slots = 3;
    REQUIRE(blurb_backend_create(m, &o, &be, &err) == 0);
    CHECK(be->n_slots == 3 && be->n_ctx == 8 && be->vocab_size == 50 && be->n_rows == 0);
    for (int s = 0; s < 3; s++) CHECK(be->slot_len[s] == 0);

    const int32_t toks[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    const int32_t bad_hi[2] = {3, 50}, bad_lo[1] = {-1};
    blurb_chunk c[4];

    /* Rejected calls leave every slot as it was. */
    CHECK(fails_with(blurb_backend_forward(be, c, 0, false, &err), BLURB_E_INVALID, "no chunks", NULL));
    c[0] = (blurb_chunk){3, toks, 1};
    CHECK(fails_with(blurb_backend_forward(be, c, 1, false, &err), BLURB_E_INVALID, "slot 3 out of range", NULL));
    c[0] = (blurb_chunk){-1, toks, 1};
    CHECK(fails_with(blurb_backend_forward(be, c, 1, false, &err), BLURB_E_INVALID, "slot -1 out of range", NULL));
    c[0] = (blurb_chunk){1, toks, 2};
    c[1] = (blurb_chunk){1, toks, 1};
    CHECK(fails_with(blurb_backend_forward(be, c, 2, false, &err), BLURB_E_INVALID, "chunk 1", "slot 1 appears twice"));
    c[0] = (blurb_chunk){0, toks, 0};
    CHECK(fails_with(blurb_backend_forward(be, c, 1, false, &err), BLURB_E_INVALID, "at least one token", NULL));
    c[0] = (blurb_chunk){0, toks, 9};
    CHECK(fails_with(blurb_backend_forward(be, c, 1, false, &err), BLURB_E_INVALID, "context overflow",
                     "0 tokens held + 9 new > n_ctx 8"));
    c[0] = (blurb_chunk){2, bad_hi, 2};
    CHECK(fails_with(blurb_backend_forward(be, c, 1, false, &err), BLURB_E_INVALID, "token 1 is 50",
                     "outside the vocabulary [0, 50)"));
    c[0] = (blurb_chunk){2, bad_lo, 1};
    CHECK(fails_with(blurb_backend_forward(be, c, 1, false, &err), BLURB_E_INVALID, "token 0 is -1", NULL));
    c[0] = (blurb_chunk){0, toks, 1};
    c[1] = (blurb_chunk){1, toks, 1};
    c[2] = (blurb_chunk){2, toks, 1};
    c[3] = (blurb_chunk){0, toks, 1};
    CHECK(fails_with(blurb_backend_forward(be, c, 4, false, &err), BLURB_E_INVALID, "4 chunks but only 3 slots", NULL));
    for (int s = 0; s < 3; s++) CHECK(be->slot_len[s] == 0);
    CHECK(be->n_rows == 0);

    /* A ragged forward: slot lengths, histories and row counts. */
    c[0] = (blurb_chunk){2, toks, 5};
    c[1] = (blurb_chunk){0, toks + 5, 2};
    CHECK(blurb_backend_forward(be, c, 2, true, &err) == 0);
    CHECK(be->n_rows == 7);
    CHECK(be->slot_len[0] == 2 && be->slot_len[1] == 0 && be->slot_len[2] == 5);
    CHECK(memcmp(be->slot_tokens[2], toks, 5 * sizeof(int32_t)) == 0);
    CHECK(memcmp(be->slot_tokens[0], toks + 5, 2 * sizeof(int32_t)) == 0);
    float row[50];
    CHECK(blurb_backend_logits(be, 6, row, &err) == 0);
    CHECK(fails_with(blurb_backend_logits(be, 7, row, &err), BLURB_E_INVALID, "row 7 out of range [0, 7)", NULL));
    c[0] = (blurb_chunk){2, toks, 1};
    c[1] = (blurb_chunk){1, toks + 8, 1};
    CHECK(blurb_backend_forward(be, c, 2, false, &err) == 0);
    CHECK(be->n_rows == 2 && be->slot_len[2] == 6 && be->slot_len[1] == 1 && be->slot_tokens[2][5] == 1);
    CHECK(fails_with(blurb_backend_logits(be, 2, row, &err), BLURB_E_INVALID, "row 2 out of range [0, 2)", NULL));
    c[0] = (blurb_chunk){2, toks, 3};
    CHECK(fails_with(blurb_backend_forward(be, c, 1, false, &err), BLURB_E_INVALID, "context overflow",
                     "6 tokens held + 3 new > n_ctx 8"));
    CHECK(be->slot_len[2] == 6 && be->n_rows == 0);
    c[0] = (blurb_chunk){2, toks, 2}; /* exactly fills the context */
    CHECK(blurb_backend_forward(be, c, 1, false, &err) == 0);
    CHECK(be->slot_len[2] == 8);

    /* Sampling requests are checked before anything is drawn. */
    blurb_sampling sp = blurb_sampling_default();
    sp.temperature = 0.0f;
    blurb_sample_req req = {0, 2, &sp, 1, 0};
    int32_t tok = -1;
    float lp = 1.0f;
    CHECK(blurb_backend_sample(be, &req, 1, &tok, &lp, &err) == 0);
    CHECK(blurb_backend_logits(be, 0, row, &err) == 0);
    int best = 0;
    for (int i = 1; i < 50; i++)
        if (row[i] > row[best]) best = i;
    CHECK(tok == best); /* greedy */
    CHECK(lp <= 0.0f);
    /* Random draws with a repetition penalty: each request gets exactly what
     * blurb_sample_row gives for its row's logits and its slot's history. */
    c[0] = (blurb_chunk){0, toks, 3};
    c[1] = (blurb_chunk){1, toks + 2, 4};
    CHECK(blurb_backend_forward(be, c, 2, false, &err) == 0);
    blurb_sampling warm = blurb_sampling_default();
    warm.temperature = 1.5f;
    warm.top_p = 0.95f;
    warm.repetition_penalty = 1.3f;
    blurb_sampler_scratch *scratch = blurb_sampler_scratch_new(50);
    REQUIRE(scratch);
    for (int n_gen = 0; n_gen < 20; n_gen++) {
        blurb_sample_req two[2] = {{1, 1, &warm, 77, n_gen}, {0, 0, &warm, 78, n_gen}};
        int32_t got[2];
        float got_lp[2];
        CHECK(blurb_backend_sample(be, two, 2, got, got_lp, &err) == 0);
        for (int i = 0; i < 2; i++) {
            CHECK(blurb_backend_logits(be, two[i].row, row, &err) == 0);
            float want_lp = 0.0f;
            int want = blurb_sample_row(row, 50, &warm, be->slot_tokens[two[i].slot], be->slot_len[two[i].slot],
                                        n_gen, two[i].key, (uint32_t)n_gen, scratch, &want_lp);
            CHECKF(got[i] == want && got_lp[i] == want_lp, "draw %d of request %d: %d (%g) vs %d (%g)", n_gen, i,
                   got[i], got_lp[i], want, want_lp);
        }
    }
    blurb_sampler_scratch_free(scratch);
    c[0] = (blurb_chunk){0, toks, 1}; /* one row again */
    CHECK(blurb_backend_forward(be, c, 1, false, &err) == 0);
    req.row = 1;
    CHECK(fails_with(blurb_backend_sample(be, &req, 1, &tok, NULL, &err), BLURB_E_INVALID, "row 1 out of range", NULL));
    req.row = 0;
    req.slot = 5;
    CHECK(fails_with(blurb_backend_sample(be, &req, 1, &tok, NULL, &err), BLURB_E_INVALID, "slot 5 out of range", NULL));
    req.slot = 2;
    sp.temperature = -1.0f;
    CHECK(fails_with(blurb_backend_sample(be, &req, 1, &tok, NULL, &err), BLURB_E_INVALID, "request 0", NULL));

    /* Reset empties one slot only. */
    CHECK(fails_with(blurb_backend_reset(be, 3, &err), BLURB_E_INVALID, "slot 3 out of range", NULL));
    CHECK(blurb_backend_reset(be, 2, &err) == 0);
    CHECK(be->slot_len[2] == 0 && be->slot_len[0] == 6 && be->slot_len[1] == 5);
    c[0] = (blurb_chunk){2, toks, 8};
    CHECK(blurb_backend_forward(be, c, 1, false, &err) == 0);

    blurb_backend_free(be);
    blurb_backend_free(NULL);
    blurb_model_free(m);
    return check_finish("backend_api");
}
