/* Brand voice (`blurb generate --examples`, include/blurb/examples.h).
 *
 * Layout, with the shipped weights/templates/parx_examples.jsonl and the
 * default template: a Parx shirt gets the 3 Parx examples with the closest
 * titles, least similar first, each encode(prompt + " " + description) then
 * EOS (50256), then its own prompt: exact token ids. A description holding
 * "<|endoftext|>" adds no EOS id; k 0, another brand, or the product's own id
 * in the file leave out examples; a small n_ctx drops the least similar first;
 * a bad example file names the line.
 *
 * Effect, end to end on the default model: 20 Parx products of the first 200
 * lines of tests/data/myntra_sample.jsonl (the examples come from later lines),
 * greedy, 32 new tokens, with and without --examples: the mean Jaccard
 * overlap of the word sets of each output and the product's own (held-out)
 * description is higher with examples, by a margin below the one measured
 * (see GREEDY_MARGIN; sampled runs are not asserted, see there). A product of a brand without examples gets the same output
 * either way. */
#include <cjson/cJSON.h>
#include <ctype.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "blurb/examples.h"
#include "blurb/template.h"
#include "blurb/tokenizer.h"
#include "check.h"

#define EXAMPLES BLURB_SOURCE_DIR "/weights/templates/parx_examples.jsonl"

static char dir[] = "/tmp/blurb_test_brand_XXXXXX";
#define CLI_FIXED "--backend cpu --quiet"
#include "cli_test_util.h"
static blurb_tokenizer *tok;
static blurb_template *tmpl;

static const char *str_of(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* Appends encode(text) to ids. */
static void append_enc(int32_t *ids, size_t *n, size_t cap, const char *text) {
    int32_t *e = NULL;
    size_t ne = 0;
    blurb_err err;
    REQUIRE(blurb_tokenizer_encode(tok, text, strlen(text), false, &e, &ne, &err) == 0);
    REQUIRE(*n + ne <= cap);
    memcpy(ids + *n, e, ne * sizeof *e);
    *n += ne;
    free(e);
}

/* The shipped example with this id: "Product: T\nBrand: B\nDescription: D". */
static void example_text(const char *id, char *buf, size_t size) {
    char *all = slurp(EXAMPLES, NULL);
    REQUIRE(all);
    char *p = all;
    buf[0] = '\0';
    while (*p) {
        char *nl = strchr(p, '\n');
        if (nl) *nl = '\0';
        cJSON *o = cJSON_Parse(p);
        REQUIRE(o);
        if (strcmp(str_of(o, "id"), id) == 0)
            snprintf(buf, size, "Product: %s\nBrand: %s\nDescription: %s", str_of(o, "title"), str_of(o, "brand"),
                     str_of(o, "description"));
        cJSON_Delete(o);
        if (!nl) break;
        p = nl + 1;
    }
    free(all);
    REQUIRE(buf[0]);
}

static void parse(const char *line, blurb_record *rec) {
    blurb_err why;
    REQUIRE(blurb_record_parse(line, strlen(line), 1, rec, &why) == 0);
}

#define SHIRT_TITLE "Parx Men Brown & Off-White Slim Fit Printed Casual Shirt"
#define SHIRT "{\"id\": \"myntra-10017833\", \"title\": \"" SHIRT_TITLE "\", \"brand\": \"Parx\"}"
#define SHIRT_PROMPT "Product: " SHIRT_TITLE "\nBrand: Parx\nDescription:"

static void test_layout(void) {
    blurb_err err;
    blurb_examples *ex = NULL;
    REQUIRE(blurb_examples_load(EXAMPLES, tmpl, tok, 3, 512, &ex, &err) == 0);
    CHECK(blurb_examples_count(ex) == 14);
    blurb_record rec;
    parse(SHIRT, &rec);
    int32_t *ids = NULL;
    size_t n = 0;
    int used = -1;
    REQUIRE(blurb_examples_prompt(ex, &rec, 32, 50256, &ids, &n, &used, &err) == 0);
    /* Title word Jaccard with the product: White & Blue ... Printed Casual Shirt
     * (line 205) 8/11; Blue & Yellow ... Checked (213) and Red & Blue ... Checked
     * (222) 6/13 each, tie kept in file order; everything else lower. */
    int32_t want[1024];
    size_t nw = 0;
    char text[2048];
    const char *order[3] = {"myntra-10017587", "myntra-10017651", "myntra-10017847"}; /* 222, 213, 205 */
    for (int i = 0; i < 3; i++) {
        example_text(order[i], text, sizeof text);
        append_enc(want, &nw, 1024, text);
        want[nw++] = 50256;
    }
    append_enc(want, &nw, 1024, SHIRT_PROMPT);
    CHECK(used == 3);
    CHECKF(n == nw && memcmp(ids, want, n * sizeof *ids) == 0, "%zu ids, want %zu", n, nw);
    free(ids);

    /* The context only holds the best example: it alone stays. */
    size_t n_best = 0;
    int32_t best[512];
    example_text("myntra-10017847", text, sizeof text);
    append_enc(best, &n_best, 512, text);
    size_t n_own = 0;
    int32_t own[512];
    append_enc(own, &n_own, 512, SHIRT_PROMPT);
    blurb_examples *small = NULL;
    int n_ctx = (int)(n_best + 1 + n_own + 32);
    REQUIRE(blurb_examples_load(EXAMPLES, tmpl, tok, 3, n_ctx, &small, &err) == 0);
    REQUIRE(blurb_examples_prompt(small, &rec, 32, 50256, &ids, &n, &used, &err) == 0);
    CHECK(used == 1 && n == n_best + 1 + n_own && memcmp(ids, best, n_best * sizeof *ids) == 0 &&
          ids[n_best] == 50256 && memcmp(ids + n_best + 1, own, n_own * sizeof *ids) == 0);
    free(ids);
    /* One token less and none fits. */
    blurb_examples_free(small);
    REQUIRE(blurb_examples_load(EXAMPLES, tmpl, tok, 3, n_ctx - 1, &small, &err) == 0);
    REQUIRE(blurb_examples_prompt(small, &rec, 32, 50256, &ids, &n, &used, &err) == 0);
    CHECK(used == 0 && n == n_own && memcmp(ids, own, n_own * sizeof *ids) == 0);
    free(ids);
    blurb_examples_free(small);
    blurb_record_clear(&rec);

    /* Another brand, or no brand: the plain prompt. */
    parse("{\"title\": \"" SHIRT_TITLE "\", \"brand\": \"DKNY\"}", &rec);
    REQUIRE(blurb_examples_prompt(ex, &rec, 32, 50256, &ids, &n, &used, &err) == 0);
    n_own = 0;
    append_enc(own, &n_own, 512, "Product: " SHIRT_TITLE "\nBrand: DKNY\nDescription:");
    CHECK(used == 0 && n == n_own && memcmp(ids, own, n * sizeof *ids) == 0);
    free(ids);
    blurb_record_clear(&rec);

    /* The product's own id in the file: that example is never shown. */
    parse("{\"id\": \"myntra-10017847\", \"title\": \"Parx Men White & Blue Slim Fit Printed Casual Shirt\", "
          "\"brand\": \"Parx\"}", &rec);
    REQUIRE(blurb_examples_prompt(ex, &rec, 32, 50256, &ids, &n, &used, &err) == 0);
    example_text("myntra-10017847", text, sizeof text);
    n_best = 0;
    append_enc(best, &n_best, 512, text);
    CHECK(used == 3);
    bool found = false;
    for (size_t i = 0; i + n_best <= n; i++)
        if (memcmp(ids + i, best, n_best * sizeof *ids) == 0) found = true;
    CHECK(!found);
    free(ids);
    blurb_record_clear(&rec);
    blurb_examples_free(ex);

    /* k 0: no examples. */
    REQUIRE(blurb_examples_load(EXAMPLES, tmpl, tok, 0, 512, &ex, &err) == 0);
    parse(SHIRT, &rec);
    REQUIRE(blurb_examples_prompt(ex, &rec, 32, 50256, &ids, &n, &used, &err) == 0);
    n_own = 0;
    append_enc(own, &n_own, 512, SHIRT_PROMPT);
    CHECK(used == 0 && n == n_own && memcmp(ids, own, n * sizeof *ids) == 0);
    free(ids);
    blurb_examples_free(ex);

    /* "<|endoftext|>" in a description is text: the only EOS ids are blurb's. */
    spit_str(path_in("eot.jsonl"), "{\"title\": \"A\", \"brand\": \"Parx\", \"description\": \"x<|endoftext|>y\"}\n"
                               "\n"
                               "{\"title\": \"B\", \"brand\": \"Parx\", \"description\": \"<|endoftext|>\"}\n");
    REQUIRE(blurb_examples_load(path_in("eot.jsonl"), tmpl, tok, 3, 512, &ex, &err) == 0);
    REQUIRE(blurb_examples_prompt(ex, &rec, 32, 50256, &ids, &n, &used, &err) == 0);
    int eos = 0;
    for (size_t i = 0; i < n; i++) eos += ids[i] == 50256;
    CHECK(used == 2 && eos == 2);
    free(ids);
    blurb_examples_free(ex);
    blurb_record_clear(&rec);

    /* Bad files name the line. */
    spit_str(path_in("bad.jsonl"), "{\"title\": \"A\", \"brand\": \"Parx\", \"description\": \"d\"}\n"
                               "{\"title\": \"B\", \"brand\": \"Parx\"}\n");
    CHECK(blurb_examples_load(path_in("bad.jsonl"), tmpl, tok, 3, 512, &ex, &err) == BLURB_E_FORMAT &&
          strstr(err.msg, "line 2") && strstr(err.msg, "description"));
    spit_str(path_in("bad2.jsonl"), "{\"title\": \"A\", \"description\": \"d\"}\n");
    CHECK(blurb_examples_load(path_in("bad2.jsonl"), tmpl, tok, 3, 512, &ex, &err) == BLURB_E_FORMAT &&
          strstr(err.msg, "line 1") && strstr(err.msg, "brand"));
    spit_str(path_in("bad3.jsonl"), "{\"brand\": \"Parx\", \"description\": \"d\"}\n"); /* no title for the template */
    CHECK(blurb_examples_load(path_in("bad3.jsonl"), tmpl, tok, 3, 512, &ex, &err) == BLURB_E_FORMAT &&
          strstr(err.msg, "title"));
    CHECK(blurb_examples_load(path_in("missing.jsonl"), tmpl, tok, 3, 512, &ex, &err) == BLURB_E_IO);
}

/* ---- effect on the outputs --------------------------------------------------- */

#define N_WORDS 256
typedef struct wordset {
    char w[N_WORDS][32];
    int n;
} wordset;

/* Lower-cased runs of ASCII letters and digits, each once. */
static void words(const char *s, wordset *ws) {
    ws->n = 0;
    while (*s) {
        while (*s && !isalnum((unsigned char)*s)) s++;
        char w[32];
        size_t n = 0;
        while (*s && isalnum((unsigned char)*s)) {
            if (n < sizeof w - 1) w[n++] = (char)tolower((unsigned char)*s);
            s++;
        }
        if (!n) continue;
        w[n] = '\0';
        bool dup = false;
        for (int i = 0; i < ws->n && !dup; i++) dup = strcmp(ws->w[i], w) == 0;
        if (!dup && ws->n < N_WORDS) strcpy(ws->w[ws->n++], w);
    }
}

static double jaccard(const wordset *a, const wordset *b) {
    int shared = 0;
    for (int i = 0; i < a->n; i++)
        for (int j = 0; j < b->n; j++)
            if (strcmp(a->w[i], b->w[j]) == 0) {
                shared++;
                break;
            }
    int uni = a->n + b->n - shared;
    return uni ? (double)shared / uni : 0.0;
}

#define N_PRODUCTS 20

/* Mean Jaccard of every output with its product's description; also returns
 * the output line of the extra (non-Parx) product, the input's last line. */
static double mean_overlap(const char *out_path, char descs[][2048], int n_samples, char **other_line) {
    char *out = slurp(out_path, NULL);
    REQUIRE(out);
    char *p = out;
    double sum = 0;
    int count = 0;
    static wordset wd, wo;
    for (int i = 0; i <= N_PRODUCTS; i++) {
        char *nl = strchr(p, '\n');
        REQUIRE(nl);
        *nl = '\0';
        if (i == N_PRODUCTS) {
            *other_line = strdup(p);
            break;
        }
        cJSON *o = cJSON_Parse(p);
        REQUIRE(o);
        const cJSON *outs = cJSON_GetObjectItemCaseSensitive(o, "outputs");
        REQUIRE(cJSON_GetArraySize(outs) == n_samples);
        words(descs[i], &wd);
        for (const cJSON *s = outs->child; s; s = s->next) {
            words(str_of(s, "text"), &wo);
            sum += jaccard(&wo, &wd);
            count++;
        }
        cJSON_Delete(o);
        p = nl + 1;
    }
    free(out);
    return sum / count;
}

/* Measured (CPU backend, greedy, 32 new tokens): 0.0345 without, 0.0607 with
 * examples; the margin asserted is about 60% of that gap. Sampling is not
 * asserted: at temperature 0.5, top-p 0.9, n 3 the default 17M-parameter model
 * gained with seed 7 (0.0425 -> 0.0524) but lost with seeds 1 (0.0456 ->
 * 0.0404) and 2 (0.0578 -> 0.0420), so no sampled claim would be honest. */
#define GREEDY_MARGIN 0.015

static void test_effect(void) {
    static char descs[N_PRODUCTS][2048];
    char *cat = slurp(BLURB_TEST_DATA "/myntra_sample.jsonl", NULL);
    REQUIRE(cat);
    FILE *f = fopen(path_in("parx.jsonl"), "wb");
    REQUIRE(f);
    int got = 0, line = 0;
    char *first = NULL;
    for (char *p = cat; *p && line < 200 && got < N_PRODUCTS; line++) {
        char *nl = strchr(p, '\n');
        REQUIRE(nl);
        *nl = '\0';
        cJSON *o = cJSON_Parse(p);
        REQUIRE(o);
        if (!first) first = p;
        if (strcmp(str_of(o, "brand"), "Parx") == 0) {
            snprintf(descs[got++], sizeof descs[0], "%s", str_of(o, "original_description"));
            fprintf(f, "{\"id\": \"%s\", \"title\": \"%s\", \"brand\": \"Parx\"}\n", str_of(o, "id"),
                    str_of(o, "title"));
        }
        cJSON_Delete(o);
        p = nl + 1;
    }
    REQUIRE(got == N_PRODUCTS);
    fprintf(f, "%s\n", first); /* the DKNY bag of line 1: no examples for its brand */
    REQUIRE(fclose(f) == 0);
    free(cat);

    const char *runs[1] = {"--temperature 0 --max-new-tokens 32"};
    const int n_samples[1] = {1};
    const double margin[1] = {GREEDY_MARGIN};
    for (int r = 0; r < 1; r++) {
        REQUIRE(cli("%s --input %s --output %s", runs[r], path_in("parx.jsonl"), path_in("plain.out")) == 0);
        REQUIRE(cli("%s --examples %s --input %s --output %s", runs[r], EXAMPLES, path_in("parx.jsonl"),
                    path_in("voice.out")) == 0);
        char *other_plain = NULL, *other_voice = NULL;
        double a = mean_overlap(path_in("plain.out"), descs, n_samples[r], &other_plain);
        double b = mean_overlap(path_in("voice.out"), descs, n_samples[r], &other_voice);
        printf("%s: mean Jaccard with the brand's descriptions %.4f without, %.4f with examples\n", runs[r], a, b);
        CHECKF(b > a + margin[r], "%s: %.4f with examples, %.4f without", runs[r], b, a);
        CHECK(other_plain && other_voice && strcmp(other_plain, other_voice) == 0);
        free(other_plain);
        free(other_voice);
    }
    /* --examples-k 0 is the plain run. */
    REQUIRE(cli("%s --examples %s --examples-k 0 --input %s --output %s", runs[0], EXAMPLES, path_in("parx.jsonl"),
                path_in("k0.out")) == 0);
    char *k0 = slurp(path_in("k0.out"), NULL), *plain = slurp(path_in("plain.out"), NULL);
    CHECK(k0 && plain && strcmp(k0, plain) == 0);
    free(k0);
    free(plain);
    CHECK(cli("--examples %s/none.jsonl --input %s --output /dev/null 2>/dev/null", dir, path_in("parx.jsonl")) == 2); /* a bad option file */
}

int main(void) {
    REQUIRE(mkdtemp(dir));
    blurb_err err;
    if (blurb_tokenizer_load(MODEL, 50257, &tok, &err) != 0) {
        fprintf(stderr, "tokenizer: %s\n", err.msg);
        return 1;
    }
    REQUIRE(blurb_template_from_arg(NULL, &tmpl, &err) == 0);
    test_layout();
    test_effect();
    blurb_template_free(tmpl);
    blurb_tokenizer_free(tok);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
    return check_finish("brand_voice");
}
