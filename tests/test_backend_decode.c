/* blurb_backend_decode on the CPU backend (the generic loop of host/backend.c):
 * several calls of 1, 6 and 3 steps give bit-for-bit the draws, logprobs,
 * histories and logits of forward + sample step by step (decode_test_util.h),
 * and bad calls are refused up front with the slot, the count or the limit
 * named, leaving every slot as it was. */
#include "decode_test_util.h"
#include "model_test_util.h"

int main(void) {
    blurb_model *m = test_load_default_model();
    blurb_backend *a = test_cpu_backend(m, 6, 2), *b = test_cpu_backend(m, 6, 2);
    CHECK(a->decode_steps == 1); /* nothing to gain from longer calls on the cpu */
    const int steps[] = {1, 6, 3};
    int n = decode_parity(a, b, steps, 3, true);
    printf("decode: %d draws equal to forward + sample\n", n);

    /* Refusals. */
    blurb_err err;
    blurb_err_clear(&err);
    blurb_sampling sp = blurb_sampling_default();
    int32_t tok[2] = {5, 6}, out[4096];
    blurb_sample_req rq[2] = {{0, 0, &sp, 1, 0}, {0, 0, &sp, 2, 0}};
    int len0 = a->slot_len[0];
    CHECK(blurb_backend_decode(a, tok, rq, 2, 2, out, NULL, &err) == BLURB_E_INVALID && strstr(err.msg, "twice"));
    rq[1].slot = 1;
    CHECK(blurb_backend_decode(a, tok, rq, 2, a->n_ctx, out, NULL, &err) == BLURB_E_INVALID &&
          strstr(err.msg, "context overflow"));
    CHECK(blurb_backend_decode(a, tok, rq, 2, 0, out, NULL, &err) == BLURB_E_INVALID);
    CHECK(blurb_backend_decode(a, tok, rq, 7, 1, out, NULL, &err) == BLURB_E_INVALID);
    tok[1] = a->vocab_size;
    CHECK(blurb_backend_decode(a, tok, rq, 2, 1, out, NULL, &err) == BLURB_E_INVALID && strstr(err.msg, "vocabulary"));
    tok[1] = 6;
    sp.temperature = -1.0f;
    CHECK(blurb_backend_decode(a, tok, rq, 2, 1, out, NULL, &err) == BLURB_E_INVALID && strstr(err.msg, "sequence 0"));
    CHECK(a->slot_len[0] == len0);
    sp.temperature = 0.0f;
    /* Exactly the room left is fine. */
    const int room = a->n_ctx - (a->slot_len[0] > a->slot_len[1] ? a->slot_len[0] : a->slot_len[1]);
    REQUIRE(room >= 1 && 2 * room <= 4096);
    CHECK(blurb_backend_decode(a, tok, rq, 2, room, out, NULL, &err) == 0);
    CHECK(a->slot_len[0] == len0 + room);
    blurb_backend_free(a);
    blurb_backend_free(b);
    blurb_model_free(m);
    return check_finish("backend_decode");
}
