/* `blurb generate` end to end: the CLI binary (BLURB_CLI) with the default
 * model on the CPU backend, on real products from tests/data/myntra_sample.jsonl.
 *
 * - invariance: fixed seed, sampling on, 50 products: the output file is
 *   byte-identical at --batch 1, 7 (with --decode-steps 5) and 64 (with
 *   --prefill-chunk 7), and each record's line (less its
 *   "line" number) is unchanged when the input lines are shuffled;
 * - bad input: every bad kind among good lines becomes an error record naming
 *   the line and the reason; the good lines' outputs equal a run without them;
 * - greedy (temperature 0) continuations equal the reference greedy tokens of
 *   tests/data/golden.json, whose prompts are the default template's format;
 * - a stop string that spans a token boundary cuts the greedy text exactly;
 * - --n 2: sample 0 equals the --n 1 output; stdin/stdout; usage errors.
 * Sequences stay at <= 32 new tokens to keep the test short under ASan. */
#include <cjson/cJSON.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "blurb/template.h"
#include "blurb/tokenizer.h"
#include "check.h"

#define SAMPLING "--backend cpu --seed 1234 --temperature 0.8 --top-p 0.9 --max-new-tokens 16"
/* A stop string that ends about half of the sequences early, at different
 * steps, so that slots are freed and refilled at staggered times. */
#define STAGGER "--stop ."

static char dir[] = "/tmp/blurb_test_generate_XXXXXX";
#include "cli_test_util.h"
static blurb_tokenizer *tok;

/* The lines of text (each with its '\n'), in a malloc'ed array. */
static int split(const char *text, char ***lines) {
    int n = 0, cap = 64;
    char **v = malloc((size_t)cap * sizeof *v);
    REQUIRE(v);
    for (const char *p = text; *p;) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) + 1 : strlen(p);
        if (n == cap) REQUIRE((v = realloc(v, (size_t)(cap *= 2) * sizeof *v)));
        REQUIRE((v[n] = malloc(len + 1)));
        memcpy(v[n], p, len);
        v[n][len] = '\0';
        n++;
        p += len;
    }
    *lines = v;
    return n;
}

static void free_lines(char **v, int n) {
    for (int i = 0; i < n; i++) free(v[i]);
    free(v);
}

/* Removes the "line": L member, which legitimately changes when lines move. */
static void strip_line_no(char *s) {
    char *a = strstr(s, ", \"line\": ");
    REQUIRE(a);
    char *b = strstr(a + 2, ", ");
    REQUIRE(b);
    memmove(a, b, strlen(b) + 1);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static const char *json_str(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}
static int json_int(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valueint : -1;
}

/* ---- invariance over batch size and input order ---------------------------- */

static char *products50;   /* the first 50 catalog lines */
static char *out_batch7;

static void test_invariance(void) {
    size_t n;
    char *all = slurp(BLURB_TEST_DATA "/myntra_sample.jsonl", &n);
    REQUIRE(all);
    char **lines;
    int nl = split(all, &lines);
    REQUIRE(nl >= 60);
    size_t len = 0;
    for (int i = 0; i < 50; i++) len += strlen(lines[i]);
    products50 = malloc(len + 1);
    REQUIRE(products50);
    products50[0] = '\0';
    for (int i = 0; i < 50; i++) strcat(products50, lines[i]);
    spit(path_in("in50.jsonl"), products50, strlen(products50));
    /* Shuffled: a fixed permutation (37 is coprime with 50). */
    char *shuf = malloc(len + 1);
    REQUIRE(shuf);
    shuf[0] = '\0';
    for (int i = 0; i < 50; i++) strcat(shuf, lines[(i * 37 + 11) % 50]);
    spit(path_in("shuf50.jsonl"), shuf, strlen(shuf));
    free(shuf);
    free_lines(lines, nl);
    free(all);

    CHECK(cli(SAMPLING " " STAGGER " --batch 1 --input %s --output %s 2>%s", path_in("in50.jsonl"), path_in("b1.jsonl"),
              path_in("b1.err")) == 0);
    /* stdin and stdout ('-') for this one. */
    /* ... and 5 decode steps per backend call (blurb_backend_decode). */
    CHECK(cli(SAMPLING " " STAGGER " --batch 7 --decode-steps 5 --input - --output - <%s >%s 2>%s", path_in("in50.jsonl"), path_in("b7.jsonl"),
              path_in("b7.err")) == 0);
    /* ... and prompts fed 7 tokens a step (--prefill-chunk). */
    CHECK(cli(SAMPLING " " STAGGER " --batch 64 --prefill-chunk 7 --input %s --output %s 2>/dev/null", path_in("in50.jsonl"),
              path_in("b64.jsonl")) == 0);
    CHECK(cli(SAMPLING " " STAGGER " --batch 16 --input %s --output %s 2>/dev/null", path_in("shuf50.jsonl"),
              path_in("shuf.jsonl")) == 0);
    char *b1 = slurp(path_in("b1.jsonl"), NULL), *b7 = slurp(path_in("b7.jsonl"), NULL);
    char *b64 = slurp(path_in("b64.jsonl"), NULL), *sh = slurp(path_in("shuf.jsonl"), NULL);
    REQUIRE(b1 && b7 && b64 && sh);
    CHECK(strcmp(b1, b7) == 0);
    CHECK(strcmp(b1, b64) == 0);

    /* 50 complete records, in input order, with sane fields. */
    char **v;
    int nv = split(b1, &v);
    CHECK(nv == 50);
    int stops = 0, lengths = 0;
    for (int i = 0; i < nv; i++) {
        cJSON *o = cJSON_Parse(v[i]);
        REQUIRE(o);
        CHECK(json_int(o, "line") == i + 1);
        CHECK(json_str(o, "id") && strncmp(json_str(o, "id"), "myntra-", 7) == 0);
        CHECK(json_int(o, "prompt_tokens") > 5);
        const cJSON *outs = cJSON_GetObjectItemCaseSensitive(o, "outputs");
        CHECK(cJSON_GetArraySize(outs) == 1);
        const cJSON *o0 = cJSON_GetArrayItem(outs, 0);
        int t = json_int(o0, "tokens");
        CHECK(t >= 1 && t <= 16);
        const char *fr = json_str(o0, "finish_reason");
        REQUIRE(fr);
        stops += strcmp(fr, "stop") == 0;
        lengths += strcmp(fr, "length") == 0;
        CHECK(strcmp(fr, "length") != 0 || t == 16);
        const cJSON *lp = cJSON_GetObjectItemCaseSensitive(o0, "mean_logprob");
        CHECK(cJSON_IsNumber(lp) && lp->valuedouble < 0 && lp->valuedouble > -20);
        const char *text = json_str(o0, "text");
        CHECK(text && (!*text || (text[0] != ' ' && text[strlen(text) - 1] != ' ')));
        CHECK(text && !strchr(text, '.')); /* the stop string never survives */
        cJSON_Delete(o);
    }
    CHECK(stops + lengths == 50 && stops >= 10 && lengths >= 10);
    /* The shuffled run: the same set of lines once line numbers are removed. */
    char **w;
    int nw = split(sh, &w);
    CHECK(nw == 50);
    if (nw == nv) {
        for (int i = 0; i < nv; i++) {
            strip_line_no(v[i]);
            strip_line_no(w[i]);
        }
        qsort(v, (size_t)nv, sizeof *v, cmp_str);
        qsort(w, (size_t)nw, sizeof *w, cmp_str);
        for (int i = 0; i < nv; i++) CHECKF(strcmp(v[i], w[i]) == 0, "shuffled output differs:\n%s%s", v[i], w[i]);
    }
    free_lines(v, nv);
    free_lines(w, nw);

    /* Progress and summary go to stderr. */
    char *err = slurp(path_in("b7.err"), NULL);
    REQUIRE(err);
    CHECKF(strstr(err, "50 records (0 errors)") && strstr(err, "generated tok/s"), "stderr: %s", err);
    free(err);
    out_batch7 = b7;
    free(b1);
    free(b64);
    free(sh);
}

/* ---- --n 2 ------------------------------------------------------------------ */

static void test_two_samples(void) {
    /* The first 5 products again with --n 2: sample 0 is what --n 1 gave. */
    char **lines;
    int n = split(products50, &lines);
    char five[8192] = "";
    for (int i = 0; i < 5; i++) strcat(five, lines[i]);
    free_lines(lines, n);
    spit(path_in("in5.jsonl"), five, strlen(five));
    CHECK(cli(SAMPLING " " STAGGER " --n 2 --batch 4 --input %s --output %s 2>/dev/null", path_in("in5.jsonl"),
              path_in("n2.jsonl")) == 0);
    char *two = slurp(path_in("n2.jsonl"), NULL);
    REQUIRE(two && out_batch7);
    char **a, **b;
    int na = split(two, &a), nb = split(out_batch7, &b);
    CHECK(na == 5);
    int differ = 0;
    for (int i = 0; i < na && i < nb; i++) {
        cJSON *x = cJSON_Parse(a[i]), *y = cJSON_Parse(b[i]);
        REQUIRE(x && y);
        const cJSON *xo = cJSON_GetObjectItemCaseSensitive(x, "outputs");
        const cJSON *yo = cJSON_GetObjectItemCaseSensitive(y, "outputs");
        CHECK(cJSON_GetArraySize(xo) == 2);
        char *x0 = cJSON_PrintUnformatted(cJSON_GetArrayItem(xo, 0));
        char *x1 = cJSON_PrintUnformatted(cJSON_GetArrayItem(xo, 1));
        char *y0 = cJSON_PrintUnformatted(cJSON_GetArrayItem(yo, 0));
        CHECKF(strcmp(x0, y0) == 0, "record %d: sample 0 with --n 2 differs from --n 1:\n%s\n%s", i, x0, y0);
        differ += strcmp(x0, x1) != 0;
        cJSON_free(x0);
        cJSON_free(x1);
        cJSON_free(y0);
        cJSON_Delete(x);
        cJSON_Delete(y);
    }
    CHECK(differ > 0); /* samples 0 and 1 draw from different streams */
    free_lines(a, na);
    free_lines(b, nb);
    free(two);
}

/* ---- bad input -------------------------------------------------------------- */

static void test_bad_input(void) {
    char **lines;
    int n = split(products50, &lines);
    /* Good lines interleaved with one line of each bad kind, a blank line and CRLF. */
    char long_title[4096] = "";
    for (int i = 0; i < 600; i++) strcat(long_title, " a");
    static char mixed[65536], good[16384];
    mixed[0] = good[0] = '\0';
    const char *bad[] = {
        "{\"id\": \"bad-json\", \"title\": \"x\",}\n",
        "{\"id\": \"bad-surrogate\", \"title\": \"x\\ud800\"}\n",
        "[\"not\", \"an\", \"object\"]\n",
        "{\"id\": \"bad-utf8\", \"title\": \"caf\xC3(\"}\n",
        "{\"id\": \"bad-nul\", \"title\": \"a\\u0000b\"}\n",
        "{\"id\": \"bad-missing\", \"brand\": \"Roadster\"}\n",
        NULL, /* too long, built below */
        "\n",
    };
    /* Columns are 1-based byte positions in the bad line. */
    char reason[7][256];
    snprintf(reason[0], sizeof reason[0], "\"line\": 2, \"error\": \"invalid JSON at the end of the line (column %d)\"}",
             (int)strlen(bad[0]) - 1);
    snprintf(reason[1], sizeof reason[1],
             "\"line\": 4, \"error\": \"invalid JSON at column %d: lone UTF-16 surrogate escape \\\\ud800 (cJSON "
             "refuses unpaired surrogates)\"}", (int)(strstr(bad[1], "\\ud800") - bad[1]) + 1);
    snprintf(reason[2], sizeof reason[2], "\"line\": 6, \"error\": \"not a JSON object (an array)\"}");
    int at = (int)(strchr(bad[3], '\xC3') - bad[3]);
    snprintf(reason[3], sizeof reason[3], "\"line\": 8, \"error\": \"invalid UTF-8 at byte %d (column %d)\"}", at,
             at + 1);
    snprintf(reason[4], sizeof reason[4],
             "\"line\": 10, \"error\": \"string holds an escaped NUL (\\\\u0000) at column %d\"}",
             (int)(strstr(bad[4], "\\u0000") - bad[4]) + 1);
    snprintf(reason[5], sizeof reason[5], "\"line\": 12, \"error\": \"missing required field 'title'\"}");
    snprintf(reason[6], sizeof reason[6], "\"line\": 14, \"error\": \"prompt too long: ");
    char too_long[8192];
    snprintf(too_long, sizeof too_long, "{\"id\": \"bad-long\", \"title\": \"%s\"}\n", long_title);
    bad[6] = too_long;
    for (int i = 0; i < 8; i++) {
        /* good line i (CRLF for one of them), then bad line i */
        char g[4096];
        snprintf(g, sizeof g, "%s", lines[10 + i]);
        strcat(good, g);
        if (i == 3) strcpy(g + strlen(g) - 1, "\r\n");
        strcat(mixed, g);
        strcat(mixed, bad[i]);
    }
    free_lines(lines, n);
    spit(path_in("mixed.jsonl"), mixed, strlen(mixed));
    spit(path_in("good.jsonl"), good, strlen(good));
    CHECK(cli(SAMPLING " --batch 8 --input %s --output %s 2>%s", path_in("mixed.jsonl"), path_in("mixed.out"),
              path_in("mixed.err")) == 0);
    CHECK(cli(SAMPLING " --batch 5 --input %s --output %s 2>/dev/null", path_in("good.jsonl"),
              path_in("good.out")) == 0);
    char *mo = slurp(path_in("mixed.out"), NULL), *go = slurp(path_in("good.out"), NULL);
    REQUIRE(mo && go);
    char **m, **g;
    int nm = split(mo, &m), ng = split(go, &g);
    CHECK(nm == 15 && ng == 8); /* 8 good + 7 bad records; the blank line yields none */
    int gi = 0, bi = 0;
    for (int i = 0; i < nm; i++) {
        if (strstr(m[i], "\"error\": ")) {
            REQUIRE(bi < 7);
            CHECKF(strstr(m[i], reason[bi]) != NULL, "bad line %d:\n%swant: %s", bi, m[i], reason[bi]);
            bi++;
            continue;
        }
        REQUIRE(gi < ng);
        strip_line_no(m[i]);
        strip_line_no(g[gi]);
        CHECKF(strcmp(m[i], g[gi]) == 0, "good line %d differs:\n%s%s", gi, m[i], g[gi]);
        gi++;
    }
    CHECK(gi == 8 && bi == 7);
    char *err = slurp(path_in("mixed.err"), NULL);
    CHECKF(err && strstr(err, "15 records (7 errors)"), "stderr: %s", err ? err : "");
    free(err);
    free_lines(m, nm);
    free_lines(g, ng);
    free(mo);
    free(go);
}

/* ---- greedy against the reference ------------------------------------------- */

static char *decode(const int32_t *ids, int n) {
    char *s = NULL;
    size_t len;
    blurb_err err;
    REQUIRE(blurb_tokenizer_decode(tok, ids, (size_t)n, &s, &len, &err) == 0);
    char *copy = strdup(s);
    REQUIRE(copy);
    free(s);
    return copy;
}

static char *trim(char *s) {
    while (*s == ' ' || *s == '\n' || *s == '\t' || *s == '\r') s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\n' || s[n - 1] == '\t' || s[n - 1] == '\r')) s[--n] = '\0';
    return s;
}

static void test_greedy_golden(void) {
    char *gj = slurp(BLURB_TEST_DATA "/golden.json", NULL);
    REQUIRE(gj);
    cJSON *golden = cJSON_Parse(gj);
    free(gj);
    REQUIRE(cJSON_IsArray(golden));
    /* The product prompts (the first 6) as catalog records. */
    char catalog[16384] = "";
    int n = 0;
    int32_t greedy[6][40];
    int n_greedy[6], n_prompt[6];
    blurb_template *t;
    blurb_err err;
    REQUIRE(blurb_template_from_arg(NULL, &t, &err) == 0);
    for (const cJSON *g = golden->child; g && n < 6; g = g->next) {
        const char *prompt = json_str(g, "prompt");
        REQUIRE(prompt && strncmp(prompt, "Product: ", 9) == 0);
        char title[256], brand[256], cat[256];
        REQUIRE(sscanf(prompt, "Product: %255[^\n]\nBrand: %255[^\n]\nCategory: %255[^\n]\n", title, brand, cat) == 3);
        cJSON *rec = cJSON_CreateObject();
        char id[16];
        snprintf(id, sizeof id, "golden-%d", n);
        cJSON_AddStringToObject(rec, "id", id);
        cJSON_AddStringToObject(rec, "title", title);
        cJSON_AddStringToObject(rec, "brand", brand);
        cJSON_AddStringToObject(rec, "category", cat);
        char *line = cJSON_PrintUnformatted(rec);
        /* The default template rebuilds the reference prompt exactly. */
        blurb_record r;
        REQUIRE(blurb_record_parse(line, strlen(line), 1, &r, &err) == 0);
        char *rendered;
        size_t rlen;
        REQUIRE(blurb_template_render(t, &r, &rendered, &rlen, &err) == 0);
        CHECKF(strcmp(rendered, prompt) == 0, "rendered %s\nwant %s", rendered, prompt);
        free(rendered);
        blurb_record_clear(&r);
        strcat(catalog, line);
        strcat(catalog, "\n");
        cJSON_free(line);
        cJSON_Delete(rec);
        n_prompt[n] = cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(g, "ids"));
        const cJSON *gr = cJSON_GetObjectItemCaseSensitive(g, "greedy_32");
        n_greedy[n] = 0;
        for (const cJSON *x = gr->child; x; x = x->next) greedy[n][n_greedy[n]++] = x->valueint;
        n++;
    }
    blurb_template_free(t);
    REQUIRE(n == 6);
    spit(path_in("golden.jsonl"), catalog, strlen(catalog));
    CHECK(cli("--backend cpu --temperature 0 --max-new-tokens 32 --batch 3 --input %s --output %s 2>/dev/null",
              path_in("golden.jsonl"), path_in("golden.out")) == 0);
    char *out = slurp(path_in("golden.out"), NULL);
    REQUIRE(out);
    char **v;
    int nv = split(out, &v);
    CHECK(nv == 6);
    for (int i = 0; i < nv && i < 6; i++) {
        cJSON *o = cJSON_Parse(v[i]);
        REQUIRE(o);
        const cJSON *o0 = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(o, "outputs"), 0);
        bool eos = greedy[i][n_greedy[i] - 1] == 50256;
        char *want_raw = decode(greedy[i], eos ? n_greedy[i] - 1 : n_greedy[i]);
        const char *text = json_str(o0, "text");
        CHECK(json_int(o, "prompt_tokens") == n_prompt[i]);
        CHECKF(json_int(o0, "tokens") == n_greedy[i], "golden %d: %d tokens, want %d", i, json_int(o0, "tokens"),
               n_greedy[i]);
        CHECK(strcmp(json_str(o0, "finish_reason"), eos ? "stop" : "length") == 0);
        CHECKF(text && strcmp(text, trim(want_raw)) == 0, "golden %d:\n got  %s\n want %s", i, text, want_raw);
        free(want_raw);
        cJSON_Delete(o);
    }
    free_lines(v, nv);
    free(out);

    /* A stop string across a token boundary of golden 0's greedy text: the
     * text ends before it, and the token that completes it is the last. */
    const int32_t *g0 = greedy[0];
    int ng = n_greedy[0] - (g0[n_greedy[0] - 1] == 50256);
    char *full = decode(g0, ng);
    char stop[16] = "";
    int want_tokens = -1;
    for (int k = 2; k + 1 < ng && want_tokens < 0; k++) {
        char *a = decode(g0 + k, 1), *b = decode(g0 + k + 1, 1);
        if (strlen(a) >= 2 && strlen(b) >= 2) {
            snprintf(stop, sizeof stop, "%s%.2s", a + strlen(a) - 2, b);
            char *prefix = decode(g0, k + 1);
            /* Only when its first occurrence is the one spanning tokens k, k+1. */
            const char *at = strstr(full, stop);
            if (at && (size_t)(at - full) == strlen(prefix) - 2) want_tokens = k + 2;
            free(prefix);
        }
        free(a);
        free(b);
    }
    REQUIRE(want_tokens > 0);
    char want_text[1024];
    snprintf(want_text, sizeof want_text, "%.*s", (int)(strstr(full, stop) - full), full);
    char one[1024];
    snprintf(one, sizeof one, "%.*s", (int)strcspn(catalog, "\n") + 1, catalog);
    spit(path_in("stop.jsonl"), one, strlen(one));
    CHECK(cli("--backend cpu --temperature 0 --max-new-tokens 32 --stop '%s' --stop 'never appears' --input %s "
              "--output %s 2>/dev/null", stop, path_in("stop.jsonl"), path_in("stop.out")) == 0);
    out = slurp(path_in("stop.out"), NULL);
    REQUIRE(out);
    cJSON *o = cJSON_Parse(out);
    REQUIRE(o);
    const cJSON *o0 = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(o, "outputs"), 0);
    CHECKF(strcmp(json_str(o0, "text"), trim(want_text)) == 0, "stop '%s': got '%s' want '%s'", stop,
           json_str(o0, "text"), want_text);
    CHECK(json_int(o0, "tokens") == want_tokens);
    CHECK(strcmp(json_str(o0, "finish_reason"), "stop") == 0);
    cJSON_Delete(o);
    free(out);
    free(full);
    cJSON_Delete(golden);
}

/* ---- usage ------------------------------------------------------------------- */

static void test_usage(void) {
    CHECK(cli("--help >%s", path_in("help.txt")) == 0);
    char *help = slurp(path_in("help.txt"), NULL);
    REQUIRE(help);
    const char *opts[] = {"--model", "--input", "--output", "--template", "--n ", "--max-new-tokens",
                          "--min-new-tokens", "--temperature", "--top-k", "--top-p", "--repetition-penalty",
                          "--seed", "--stop", "--backend", "--batch", "--dtype", "--threads"};
    for (size_t i = 0; i < sizeof opts / sizeof *opts; i++) CHECKF(strstr(help, opts[i]), "--help lacks %s", opts[i]);
    free(help);
    const char *in = path_in("in5.jsonl");
    CHECK(cli("--input %s 2>/dev/null", in) == 2);                                     /* no --output */
    CHECK(cli("--input %s --output /dev/null --frobnicate 1 2>/dev/null", in) == 2);
    CHECK(cli("--input %s --output /dev/null --temperature -1 2>/dev/null", in) == 2);
    CHECK(cli("--input %s --output /dev/null --top-k x 2>/dev/null", in) == 2);
    CHECK(cli("--input %s --output /dev/null --backend tpu 2>/dev/null", in) == 2);
    CHECK(cli("--input %s --output /dev/null --template '{title' 2>/dev/null", in) == 2);
    CHECK(cli("--input %s --output /dev/null --stop '' 2>/dev/null", in) == 2);
    CHECK(cli("--input %s --output /dev/null --template '' 2>/dev/null", in) == 2);
    CHECK(cli("--input %s/missing.jsonl --output /dev/null 2>%s", dir, path_in("missing.err")) == 1);
    char *e = slurp(path_in("missing.err"), NULL);
    CHECK(e && strstr(e, "missing.jsonl"));
    free(e);
    CHECK(cli("--input %s --output %s/no/such/dir/out.jsonl 2>/dev/null", in, dir) == 1);
    /* --output naming the input file is refused and leaves the catalog intact. */
    size_t before = 0, after = 0;
    char *cat0 = slurp(in, &before);
    CHECK(cli("--input %s --output %s 2>/dev/null", in, in) == 2);
    char *cat1 = slurp(in, &after);
    CHECK(cat0 && cat1 && before == after && memcmp(cat0, cat1, before) == 0);
    free(cat0);
    free(cat1);
}

int main(void) {
    REQUIRE(mkdtemp(dir));
    blurb_err err;
    if (blurb_tokenizer_load(MODEL, 50257, &tok, &err) != 0) {
        fprintf(stderr, "tokenizer: %s\n", err.msg);
        return 1;
    }
    test_invariance();
    test_two_samples();
    test_bad_input();
    test_greedy_golden();
    test_usage();
    free(products50);
    free(out_batch7);
    blurb_tokenizer_free(tok);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
    return check_finish("generate");
}
