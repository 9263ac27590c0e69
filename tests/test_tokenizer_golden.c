/* The tokenizer against the reference: every text of tokenizer_golden.jsonl
 * (HF tokenizers' GPT-2 BPE ids) must encode to exactly the golden ids, decode
 * back to its exact bytes, and stream back to the same bytes one id at a time. */
#include <string.h>

#include "blurb/tokenizer.h"
#include "check.h"
#include "tokenizer_golden_read.h"

int main(void) {
    blurb_err err = {0};
    blurb_tokenizer *tok = NULL;
    REQUIRE(blurb_tokenizer_load(NULL, 50257, &tok, &err) == 0);
    golden_case *cases = NULL;
    size_t n = golden_load(BLURB_TEST_DATA "/tokenizer_golden.jsonl", &cases);
    REQUIRE(n == 1364);

    size_t exact = 0, nul_cases = 0;
    blurb_detok *d = blurb_detok_new(tok);
    REQUIRE(d);
    for (size_t i = 0; i < n; i++) {
        const golden_case *c = &cases[i];
        if (memchr(c->text, '\0', c->len)) nul_cases++;
        int32_t *ids = NULL;
        size_t n_ids = 0;
        int rc = blurb_tokenizer_encode(tok, c->text, c->len, false, &ids, &n_ids, &err);
        CHECKF(rc == 0, "line %zu: %s", i + 1, err.msg);
        bool same = rc == 0 && n_ids == c->n_ids && memcmp(ids, c->ids, n_ids * sizeof *ids) == 0;
        CHECKF(same, "line %zu: %zu ids, golden %zu", i + 1, n_ids, c->n_ids);
        exact += same;

        char *text = NULL;
        size_t len = 0;
        rc = blurb_tokenizer_decode(tok, c->ids, c->n_ids, &text, &len, &err);
        CHECKF(rc == 0 && len == c->len && memcmp(text, c->text, len) == 0, "line %zu: decode differs", i + 1);
        free(text);

        char *s = NULL;
        size_t s_len = 0, s_cap = 0;
        blurb_detok_reset(d);
        for (size_t k = 0; k < c->n_ids; k++) CHECK(blurb_detok_push(d, c->ids[k], &s, &s_len, &s_cap, &err) == 0);
        CHECK(blurb_detok_flush(d, &s, &s_len, &s_cap, &err) == 0);
        CHECKF(s_len == c->len && (c->len == 0 || memcmp(s, c->text, s_len) == 0), "line %zu: stream differs",
               i + 1);
        free(s);
        free(ids);
    }
    printf("golden: %zu of %zu id-exact (%zu with NUL bytes)\n", exact, n, nul_cases);
    CHECK(exact == n);
    CHECK(nul_cases == 1);
    blurb_detok_free(d);
    golden_free(cases, n);
    blurb_tokenizer_free(tok);
    return check_finish("tokenizer_golden");
}
