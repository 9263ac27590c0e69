/* The job runner (host/job.c) against a fake backend with known behaviour, so
 * that every rule can be checked exactly and fast: stop strings across token
 * boundaries, EOS, max-new-tokens and the n_ctx cap, trimming, mean_logprob,
 * in-order output when later records finish first, chunked prefill, the step
 * token cap, error records, batch-size invariance, write and backend failures.
 *
 * The fake backend implements the ops of include/blurb/backend.h: forward()
 * remembers, per logits row, a hash of the slot's history, and sample() checks
 * that the row it is asked for belongs to the slot it names (a row-mapping bug
 * in the runner fails here). Tokens come from a script per stream key, or from
 * a hash of the history, key and step. The real tokenizer turns them to text. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blurb/backend.h"
#include "blurb/job.h"
#include "blurb/tokenizer.h"
#include "blurb/utf8.h"
#include "check.h"

#define EOS 50256
#define MAX_SCRIPTS 16
#define MAX_FORWARDS 4096

typedef struct script {
    uint64_t key;
    int32_t toks[64];
    int n;
} script;

typedef struct fake {
    blurb_backend base;
    uint64_t *row_hash;           /* [n_slots] history hash of each logits row */
    int *row_slot;                /* [n_slots] */
    script scripts[MAX_SCRIPTS];
    int n_scripts;
    int n_forward;
    int fail_at_forward;          /* forward number that fails (1-based), 0 = never */
    int fwd_tokens[MAX_FORWARDS]; /* tokens fed in each forward */
    int fwd_chunks[MAX_FORWARDS]; /* chunks in each forward */
    int bad_rows;                 /* sample() requests whose row is not their slot's */
    int unscripted;               /* sample() requests past a script's end or without one */
    int decode_calls;             /* multi-step decode calls (fake_decode) */
    int decode_steps_total, decode_max_steps;
    const int32_t *words;         /* hash mode: the tokens drawn from */
    int n_words;
} fake;

static uint64_t mix64(uint64_t x) {
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static uint64_t hash_tokens(const int32_t *t, int n) {
    uint64_t h = 1;
    for (int i = 0; i < n; i++) h = mix64(h ^ (uint64_t)(uint32_t)t[i]);
    return h;
}

static int fake_forward(blurb_backend *be, const blurb_chunk *chunks, int n_chunks, bool all_logits, blurb_err *err) {
    fake *f = (fake *)be;
    (void)all_logits;
    f->n_forward++;
    if (f->n_forward == f->fail_at_forward) return blurb_seterr(err, BLURB_E_DEVICE, "fake device failure");
    int toks = 0;
    for (int i = 0; i < n_chunks; i++) {
        const blurb_chunk *c = &chunks[i];
        int len = be->slot_len[c->slot];
        uint64_t h = hash_tokens(be->slot_tokens[c->slot], len);
        for (int t = 0; t < c->n_tokens; t++) h = mix64(h ^ (uint64_t)(uint32_t)c->tokens[t]);
        f->row_hash[i] = h;
        f->row_slot[i] = c->slot;
        toks += c->n_tokens;
    }
    if (f->n_forward <= MAX_FORWARDS) {
        f->fwd_tokens[f->n_forward - 1] = toks;
        f->fwd_chunks[f->n_forward - 1] = n_chunks;
    }
    return 0;
}

static int fake_sample(blurb_backend *be, const blurb_sample_req *reqs, int n, int32_t *tokens, float *logprobs,
                       blurb_err *err) {
    fake *f = (fake *)be;
    (void)err;
    for (int i = 0; i < n; i++) {
        const blurb_sample_req *r = &reqs[i];
        uint64_t h = hash_tokens(be->slot_tokens[r->slot], be->slot_len[r->slot]);
        if (f->row_slot[r->row] != r->slot || f->row_hash[r->row] != h) f->bad_rows++;
        int32_t tok = EOS;
        float lp = -0.25f * (float)(r->n_generated + 1);
        if (f->words) {
            uint64_t x = mix64(h ^ mix64(r->key ^ (uint64_t)r->n_generated));
            tok = (x % 11 == 0 && r->n_generated >= r->params->min_new_tokens) ? EOS : f->words[(x >> 8) % (uint64_t)f->n_words];
            lp = -(float)((x >> 20) % 4096) / 1024.0f;
        } else {
            const script *s = NULL;
            for (int k = 0; k < f->n_scripts; k++)
                if (f->scripts[k].key == r->key) s = &f->scripts[k];
            if (s && r->n_generated < s->n) tok = s->toks[r->n_generated];
            else f->unscripted++;
        }
        /* A token the request excludes (a --ban-words redraw) becomes "x" (87). */
        for (int k = 0; k < r->params->n_exclude; k++)
            if (r->params->exclude[k] == tok) tok = 87;
        tokens[i] = tok;
        if (logprobs) logprobs[i] = lp;
    }
    return 0;
}

static int fake_logits(blurb_backend *be, int row, float *dst, blurb_err *err) {
    (void)be; (void)row; (void)dst;
    return blurb_seterr(err, BLURB_E_UNSUPPORTED, "fake backend has no logits");
}
static int fake_reset(blurb_backend *be, int slot, blurb_err *err) {
    (void)be; (void)slot; (void)err;
    return 0;
}
static void fake_destroy(blurb_backend *be) { (void)be; }

/* Counts multi-step decode calls and hands them to the generic loop (which
 * runs forward + sample above), so the runner's use of it is visible. */
static int fake_decode(blurb_backend *be, const int32_t *tokens, const blurb_sample_req *reqs, int n, int n_steps,
                       int32_t *out_tokens, float *out_logprobs, blurb_err *err) {
    (void)tokens; (void)reqs; (void)out_tokens; (void)out_logprobs; (void)err;
    fake *f = (fake *)be;
    f->decode_calls++;
    f->decode_steps_total += n_steps;
    if (n_steps > f->decode_max_steps) f->decode_max_steps = n_steps;
    (void)n;
    return 1;
}

static const struct blurb_backend_ops fake_ops = {"fake", fake_forward, fake_logits, fake_sample, fake_reset,
                                                   fake_destroy, fake_decode};

static fake *fake_new(int n_slots, int n_ctx) {
    fake *f = calloc(1, sizeof *f);
    REQUIRE(f);
    f->base.ops = &fake_ops;
    f->base.n_slots = n_slots;
    f->base.n_ctx = n_ctx;
    f->base.vocab_size = 50257;
    f->base.slot_len = calloc((size_t)n_slots, sizeof(int));
    f->base.slot_tokens = calloc((size_t)n_slots, sizeof(int32_t *));
    f->row_hash = calloc((size_t)n_slots, sizeof(uint64_t));
    f->row_slot = calloc((size_t)n_slots, sizeof(int));
    REQUIRE(f->base.slot_len && f->base.slot_tokens && f->row_hash && f->row_slot);
    for (int s = 0; s < n_slots; s++) REQUIRE((f->base.slot_tokens[s] = calloc((size_t)n_ctx, sizeof(int32_t))));
    return f;
}

static void fake_free(fake *f) {
    for (int s = 0; s < f->base.n_slots; s++) free(f->base.slot_tokens[s]);
    free(f->base.slot_tokens);
    free(f->base.slot_len);
    free(f->row_hash);
    free(f->row_slot);
    free(f);
}

static blurb_tokenizer *tok;

/* Appends the tokens of text to a script (each piece's tokens end on a token boundary). */
static void script_add(script *s, const char *text) {
    int32_t *ids;
    size_t n;
    blurb_err err;
    REQUIRE(blurb_tokenizer_encode(tok, text, strlen(text), false, &ids, &n, &err) == 0);
    for (size_t i = 0; i < n; i++) {
        REQUIRE(s->n < 64);
        s->toks[s->n++] = ids[i];
    }
    free(ids);
}

static script *script_for(fake *f, uint64_t seed, const char *id, uint32_t sample) {
    REQUIRE(f->n_scripts < MAX_SCRIPTS);
    script *s = &f->scripts[f->n_scripts++];
    s->key = blurb_stream_key(seed, id, strlen(id), sample);
    s->n = 0;
    return s;
}

static int n_tokens(const char *text);

/* A title "z a a ... a" whose prompt "Product: <title>\nDescription:" has
 * exactly `want` tokens. */
static void title_for(char *title, size_t size, int want) {
    char prompt[4096];
    snprintf(title, size, "z");
    for (;;) {
        snprintf(prompt, sizeof prompt, "Product: %s\nDescription:", title);
        int n = n_tokens(prompt);
        if (n == want) return;
        REQUIRE(n < want && strlen(title) + 3 < size);
        strcat(title, " a");
    }
}

static int n_tokens(const char *text) {
    int32_t *ids;
    size_t n;
    blurb_err err;
    REQUIRE(blurb_tokenizer_encode(tok, text, strlen(text), false, &ids, &n, &err) == 0);
    free(ids);
    return (int)n;
}

/* Runs a job over input and returns the output bytes (malloc'ed) in *out. */
static int run(fake *f, const char *input, blurb_job_opts *o, char **out, blurb_job_stats *st, blurb_err *err) {
    blurb_catalog *cat;
    REQUIRE(blurb_catalog_from_memory(input, strlen(input), &cat, err) == 0);
    char *buf = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&buf, &len);
    REQUIRE(mem);
    int rc = blurb_job_run(&f->base, tok, cat, o, mem, st, err);
    REQUIRE(fclose(mem) == 0);
    blurb_catalog_free(cat);
    *out = buf;
    return rc;
}

static blurb_template *tmpl_title;

static blurb_job_opts opts(void) {
    blurb_job_opts o = blurb_job_opts_default();
    o.tmpl = tmpl_title;
    o.sampling.eos_token_id = EOS;
    o.seed = 7;
    return o;
}

static void test_exact_output(void) {
    fake *f = fake_new(4, 64);
    blurb_job_opts o = opts();
    const char *stops[] = {"###", "never"};
    o.stops = stops;
    o.n_stops = 2;
    o.max_new_tokens = 20;
    /* "a": a stop string across a token boundary ("##" then "#"), leading space trimmed. */
    script *s = script_for(f, 7, "a", 0);
    script_add(s, " Hello");
    script_add(s, " world ##");
    int before = s->n;
    script_add(s, "#");
    int stop_at = s->n;
    script_add(s, " tail");
    /* "b" (a numeric id): ends with EOS, which counts as a token. */
    s = script_for(f, 7, "12.0", 0);
    script_add(s, "\n Soft \"cotton\"\ttop. \n");
    int b_len = s->n;
    s->toks[s->n++] = EOS;
    /* line 3 (no id): runs into max_new_tokens. */
    o.max_new_tokens = 20;
    s = script_for(f, 7, "3", 0);
    for (int i = 0; i < 25; i++) script_add(s, " x");
    const char in[] = "{\"id\": \"a\", \"title\": \"A\"}\n{\"id\": 12.0, \"title\": \"B\"}\r\n{\"title\": \"C\"}";
    char *out;
    blurb_job_stats st;
    blurb_err err;
    REQUIRE(run(f, in, &o, &out, &st, &err) == 0);
    char want[2048];
    int pa = n_tokens("Product: A\nDescription:");
    snprintf(want, sizeof want,
             "{\"id\": \"a\", \"line\": 1, \"prompt_tokens\": %d, \"outputs\": [{\"text\": \"Hello world\", "
             "\"tokens\": %d, \"finish_reason\": \"stop\", \"mean_logprob\": %.4f}]}\n"
             "{\"id\": 12.0, \"line\": 2, \"prompt_tokens\": %d, \"outputs\": [{\"text\": \"Soft \\\"cotton\\\"\\ttop.\", "
             "\"tokens\": %d, \"finish_reason\": \"stop\", \"mean_logprob\": %.4f}]}\n"
             "{\"id\": 3, \"line\": 3, \"prompt_tokens\": %d, \"outputs\": [{\"text\": \"%s\", "
             "\"tokens\": 20, \"finish_reason\": \"length\", \"mean_logprob\": %.4f}]}\n",
             pa, stop_at, -0.25 * (stop_at + 1) / 2.0, pa, b_len + 1, -0.25 * (b_len + 2) / 2.0, pa,
             "x x x x x x x x x x x x x x x x x x x x", -0.25 * 21 / 2.0);
    CHECK(stop_at == before + 1);
    CHECKF(strcmp(out, want) == 0, "\ngot:\n%swant:\n%s", out, want);
    CHECK(st.records == 3 && st.errors == 0 && st.prompt_tokens == 3 * pa);
    CHECK(st.generated_tokens == stop_at + b_len + 1 + 20);
    CHECK(f->bad_rows == 0 && f->unscripted == 0);
    free(out);
    fake_free(f);
}

/* --ban-words "by": "BY" after a stray byte 0x84 (a U+FFFD in the text)
 * starts at a word boundary and is refused; after "é" (a letter) it is
 * inside a word and stays. */
static void test_ban_boundary(void) {
    size_t n = 0;
    const char *b = blurb_tokenizer_token_bytes(tok, 226, &n);
    REQUIRE(b && n == 1 && (unsigned char)b[0] == 0x84);
    b = blurb_tokenizer_token_bytes(tok, 17513, &n);
    REQUIRE(b && n == 2 && memcmp(b, "BY", 2) == 0);
    b = blurb_tokenizer_token_bytes(tok, 87, &n);
    REQUIRE(b && n == 1 && b[0] == 'x');
    fake *f = fake_new(2, 64);
    blurb_job_opts o = opts();
    const char *ban[] = {"by"};
    o.ban_words = ban;
    o.n_ban_words = 1;
    script *s = script_for(f, 7, "stray", 0);
    script_add(s, " \"");
    s->toks[s->n++] = 226;
    s->toks[s->n++] = 17513;
    s->toks[s->n++] = EOS;
    s = script_for(f, 7, "letter", 0);
    script_add(s, " caf\xc3\xa9");
    s->toks[s->n++] = 17513;
    s->toks[s->n++] = EOS;
    const char in[] = "{\"id\": \"stray\", \"title\": \"A\"}\n{\"id\": \"letter\", \"title\": \"B\"}\n";
    char *out;
    blurb_job_stats st;
    blurb_err err;
    REQUIRE(run(f, in, &o, &out, &st, &err) == 0);
    CHECKF(strstr(out, "\"text\": \"\\\"\xef\xbf\xbd" "x\"") != NULL, "stray byte: %s", out);
    CHECKF(strstr(out, "\"text\": \"caf\xc3\xa9" "BY\"") != NULL, "letter: %s", out);
    free(out);
    fake_free(f);
}

static void test_order_and_ctx(void) {
    /* n_ctx 40: the prompt "Product: <title>\nDescription:" is padded with
     * " a" tokens to a chosen length. */
    const int n_ctx = 40;
    char title[4][256];
    int lens[4] = {n_ctx - 3, n_ctx - 1, n_ctx, 10}; /* prompt tokens wanted */
    for (int k = 0; k < 4; k++) title_for(title[k], sizeof title[k], lens[k]);
    fake *f = fake_new(2, n_ctx);
    blurb_job_opts o = opts();
    o.max_new_tokens = 10;
    script *s = script_for(f, 7, "long", 0);
    for (int i = 0; i < 12; i++) script_add(s, " y");
    s = script_for(f, 7, "one", 0);
    for (int i = 0; i < 12; i++) script_add(s, " y");
    s = script_for(f, 7, "short", 0);
    s->toks[s->n++] = EOS;
    char in[4096];
    snprintf(in, sizeof in,
             "{\"id\": \"long\", \"title\": \"%s\"}\n{\"id\": \"one\", \"title\": \"%s\"}\n"
             "{\"id\": \"full\", \"title\": \"%s\"}\n{\"id\": \"short\", \"title\": \"%s\"}\n",
             title[0], title[1], title[2], title[3]);
    char *out;
    blurb_job_stats st;
    blurb_err err;
    REQUIRE(run(f, in, &o, &out, &st, &err) == 0);
    /* "long" leaves room for 3 tokens, "one" for 1; "full" has none; "short"
     * finishes while "long" runs but is written after it. */
    char want[2048];
    snprintf(want, sizeof want,
             "{\"id\": \"long\", \"line\": 1, \"prompt_tokens\": %d, \"outputs\": [{\"text\": \"y y y\", \"tokens\": 3, "
             "\"finish_reason\": \"length\", \"mean_logprob\": -0.5000}]}\n"
             "{\"id\": \"one\", \"line\": 2, \"prompt_tokens\": %d, \"outputs\": [{\"text\": \"y\", \"tokens\": 1, "
             "\"finish_reason\": \"length\", \"mean_logprob\": -0.2500}]}\n"
             "{\"id\": \"full\", \"line\": 3, \"error\": \"prompt too long: %d tokens + 1 new token exceed the context of "
             "%d tokens\"}\n"
             "{\"id\": \"short\", \"line\": 4, \"prompt_tokens\": %d, \"outputs\": [{\"text\": \"\", \"tokens\": 1, "
             "\"finish_reason\": \"stop\", \"mean_logprob\": -0.2500}]}\n",
             lens[0], lens[1], lens[2], n_ctx, lens[3]);
    CHECKF(strcmp(out, want) == 0, "\ngot:\n%swant:\n%s", out, want);
    CHECK(st.records == 4 && st.errors == 1 && st.generated_tokens == 5);
    CHECK(f->bad_rows == 0 && f->unscripted == 0);
    free(out);

    /* min_new_tokens 2: a prompt of n_ctx - 1 tokens no longer fits. */
    o.sampling.min_new_tokens = 2;
    snprintf(in, sizeof in, "{\"id\": \"one\", \"title\": \"%s\"}\n", title[1]);
    REQUIRE(run(f, in, &o, &out, &st, &err) == 0);
    snprintf(want, sizeof want,
             "{\"id\": \"one\", \"line\": 1, \"error\": \"prompt too long: %d tokens + 2 new tokens exceed the context "
             "of %d tokens\"}\n", lens[1], n_ctx);
    CHECKF(strcmp(out, want) == 0, "\ngot:\n%swant:\n%s", out, want);
    free(out);
    fake_free(f);
}

static void test_chunked_prefill(void) {
    fake *f = fake_new(3, 128);
    blurb_job_opts o = opts();
    o.prefill_chunk = 8;
    o.step_tokens = 10;
    o.max_new_tokens = 2;
    char title[256];
    const int np = 21;
    title_for(title, sizeof title, np);
    char in[1024];
    snprintf(in, sizeof in, "{\"id\": \"p\", \"title\": \"%s\"}\n", title);
    script *s = script_for(f, 7, "p", 0);
    script_add(s, " u v");
    char *out;
    blurb_job_stats st;
    blurb_err err;
    REQUIRE(run(f, in, &o, &out, &st, &err) == 0);
    /* Chunks of 8, 8, ..., the rest, then one decode step. */
    int n_chunks = (np + 7) / 8;
    CHECK(f->n_forward == n_chunks + 1);
    for (int i = 0; i < n_chunks; i++)
        CHECKF(f->fwd_tokens[i] == (i < n_chunks - 1 ? 8 : np - 8 * (n_chunks - 1)), "forward %d fed %d", i,
               f->fwd_tokens[i]);
    CHECK(f->fwd_tokens[n_chunks] == 1);
    CHECK(strstr(out, "\"text\": \"u v\", \"tokens\": 2, \"finish_reason\": \"length\"") != NULL);
    CHECK(f->bad_rows == 0 && f->unscripted == 0);
    free(out);

    /* Three 8-token chunks do not fit a 10-token step: at most one prefill chunk
     * joins the decode tokens, and a step never exceeds the cap unless it holds
     * a single chunk. */
    fake_free(f);
    f = fake_new(3, 128);
    o.step_tokens = 10;
    int32_t words[] = {257, 1000, 2000, 3000};
    f->words = words;
    f->n_words = 4;
    snprintf(in, sizeof in, "{\"title\": \"%s\"}\n{\"title\": \"%s\"}\n{\"title\": \"%s\"}\n", title, title, title);
    REQUIRE(run(f, in, &o, &out, &st, &err) == 0);
    for (int i = 0; i < f->n_forward; i++) CHECKF(f->fwd_tokens[i] <= 10 || f->fwd_chunks[i] == 1, "forward %d", i);
    CHECK(f->bad_rows == 0);
    free(out);
    fake_free(f);
}

/* The options of the invariance runs: 3 samples of up to 12 tokens, prompts
 * cut in chunks of 5, at most 9 tokens a step, stop at ",". */
static blurb_job_opts invariance_opts(const char *const *stops, int decode_steps) {
    blurb_job_opts o = opts();
    o.n_samples = 3;
    o.max_new_tokens = 12;
    o.prefill_chunk = 5;
    o.step_tokens = 9;
    o.stops = stops;
    o.n_stops = 1;
    o.decode_steps = decode_steps;
    return o;
}

/* Many records, several samples each, random lengths: the output must not
 * depend on the number of slots, and each record's line must not depend on
 * the input order. */
static void test_invariance(void) {
    int32_t words[] = {257, 1000, 2000, 3000, 464, 290, 11, 13};
    char in[16384] = "", shuffled[16384] = "";
    const int n = 40;
    char lines[40][128];
    for (int i = 0; i < n; i++) {
        snprintf(lines[i], sizeof lines[i], "{\"id\": \"r%d\", \"title\": \"item %d%s\"}\n", i, i * 7,
                 i % 5 == 0 ? " with a somewhat longer title here" : "");
        strcat(in, lines[i]);
    }
    for (int i = 0; i < n; i++) strcat(shuffled, lines[(i * 17 + 5) % n]);
    char *outs[4];
    int slots[] = {1, 3, 16, 7};
    const char *stops[] = {","};
    for (int k = 0; k < 4; k++) {
        fake *f = fake_new(slots[k], 64);
        f->words = words;
        f->n_words = 8;
        blurb_job_opts o = invariance_opts(stops, 1);
        blurb_job_stats st;
        blurb_err err;
        REQUIRE(run(f, k == 3 ? shuffled : in, &o, &outs[k], &st, &err) == 0);
        CHECK(st.records == n && st.errors == 0);
        CHECK(f->bad_rows == 0);
        fake_free(f);
    }
    CHECK(strcmp(outs[0], outs[1]) == 0);
    CHECK(strcmp(outs[0], outs[2]) == 0);
    /* Several decode steps per backend call (blurb_backend_decode): the same
     * bytes, also when the n_ctx of 40 caps the steps of a call. */
    const int steps[] = {2, 5, 8, 1024};
    for (int k = 0; k < 4; k++) {
        fake *f = fake_new(k == 3 ? 7 : 16, k == 3 ? 40 : 64);
        f->words = words;
        f->n_words = 8;
        blurb_job_opts o = invariance_opts(stops, steps[k]);
        blurb_job_stats st;
        blurb_err err;
        char *out = NULL;
        REQUIRE(run(f, in, &o, &out, &st, &err) == 0);
        CHECKF(strcmp(out, outs[0]) == 0, "decode_steps %d changed the output", steps[k]);
        CHECKF(f->decode_calls > 0 && f->decode_max_steps <= steps[k] && f->decode_max_steps <= 12,
               "decode_steps %d: %d calls, longest %d steps", steps[k], f->decode_calls, f->decode_max_steps);
        CHECK(f->bad_rows == 0);
        free(out);
        fake_free(f);
    }
    CHECK(strstr(outs[0], "\"finish_reason\": \"stop\"") && strstr(outs[0], "\"finish_reason\": \"length\""));
    /* Shuffled: same line per id once "line": L is taken out. */
    for (int i = 0; i < n; i++) {
        char key[32];
        snprintf(key, sizeof key, "{\"id\": \"r%d\", \"line\": ", i);
        const char *a = strstr(outs[0], key), *b = strstr(outs[3], key);
        REQUIRE(a && b);
        a = strstr(a, ", \"prompt_tokens\"");
        b = strstr(b, ", \"prompt_tokens\"");
        size_t la = strcspn(a, "\n"), lb = strcspn(b, "\n");
        CHECKF(la == lb && memcmp(a, b, la) == 0, "record r%d differs when shuffled", i);
    }
    for (int k = 0; k < 4; k++) free(outs[k]);
}

static void test_errors(void) {
    fake *f = fake_new(2, 64);
    int32_t words[] = {1000, 2000};
    f->words = words;
    f->n_words = 2;
    blurb_job_opts o = opts();
    o.max_new_tokens = 3;
    const char in[] =
        "{\"id\": \"ok1\", \"title\": \"A\"}\n"
        "{\"id\": \"x\", \"title\": \"A\"\n"
        "\n"
        "[\"not\", \"an object\"]\n"
        "{\"title\": \"caf\xC3\"}\n"
        "{\"title\": \"a\\u0000b\"}\n"
        "{\"id\": 5, \"brand\": \"no title\"}\n"
        "{\"title\": \"\\udc00\"}\n"
        "   \t \r\n"
        "{\"id\": \"ok2\", \"title\": \"B\"}";
    char *out;
    blurb_job_stats st;
    blurb_err err;
    REQUIRE(run(f, in, &o, &out, &st, &err) == 0);
    const char *want_errors[] = {
        "{\"id\": 2, \"line\": 2, \"error\": \"invalid JSON at the end of the line (column 24)\"}\n",
        "{\"id\": 4, \"line\": 4, \"error\": \"not a JSON object (an array)\"}\n",
        "{\"id\": 5, \"line\": 5, \"error\": \"invalid UTF-8 at byte 14 (column 15)\"}\n",
        "{\"id\": 6, \"line\": 6, \"error\": \"string holds an escaped NUL (\\\\u0000) at column 13\"}\n",
        "{\"id\": 5, \"line\": 7, \"error\": \"missing required field 'title'\"}\n",
        "{\"id\": 8, \"line\": 8, \"error\": \"invalid JSON at column 12: lone UTF-16 surrogate escape \\\\udc00 (cJSON "
        "refuses unpaired surrogates)\"}\n",
    };
    const char *p = out;
    REQUIRE(strncmp(p, "{\"id\": \"ok1\", \"line\": 1, ", 25) == 0);
    p = strchr(p, '\n') + 1;
    for (size_t i = 0; i < sizeof want_errors / sizeof *want_errors; i++) {
        CHECKF(strncmp(p, want_errors[i], strlen(want_errors[i])) == 0, "\ngot:  %.*swant: %s", (int)strcspn(p, "\n") + 1,
               p, want_errors[i]);
        p = strchr(p, '\n') + 1;
    }
    CHECK(strncmp(p, "{\"id\": \"ok2\", \"line\": 10, ", 26) == 0);
    CHECK(st.records == 8 && st.errors == 6);
    CHECK(blurb_utf8_valid(out, strlen(out), NULL));
    free(out);
    fake_free(f);
}

static int progress_calls, progress_final;
static blurb_job_progress last_progress;
static void on_progress(void *ctx, const blurb_job_progress *p) {
    (void)ctx;
    progress_calls++;
    progress_final += p->final;
    last_progress = *p;
}

static void test_failures_and_progress(void) {
    int32_t words[] = {1000, 2000};
    const char in[] = "{\"id\": \"a\", \"title\": \"A\"}\n{\"id\": \"b\", \"title\": \"B\"}\n";
    blurb_job_stats st;
    blurb_err err;

    /* Progress: called after steps and exactly once with final set. */
    fake *f = fake_new(1, 64);
    f->words = words;
    f->n_words = 2;
    blurb_job_opts o = opts();
    o.max_new_tokens = 4;
    o.progress = on_progress;
    char *out;
    REQUIRE(run(f, in, &o, &out, &st, &err) == 0);
    CHECK(progress_calls >= 2 && progress_final == 1 && last_progress.final);
    CHECK(last_progress.records_done == 2 && last_progress.records_total == 2);
    CHECK(last_progress.generated_tokens == st.generated_tokens);
    free(out);
    fake_free(f);

    /* The backend fails on the third forward: the job fails and says where. */
    f = fake_new(1, 64);
    f->words = words;
    f->n_words = 2;
    f->fail_at_forward = 3;
    o = opts();
    o.max_new_tokens = 4;
    REQUIRE(run(f, in, &o, &out, &st, &err) == BLURB_E_DEVICE);
    CHECKF(strstr(err.msg, "fake device failure") && strstr(err.msg, "line 1"), "%s", err.msg);
    free(out);
    fake_free(f);

    /* Writing fails (a full disk). */
    FILE *full = fopen("/dev/full", "w");
    if (full) {
        f = fake_new(1, 64);
        f->words = words;
        f->n_words = 2;
        blurb_catalog *cat;
        REQUIRE(blurb_catalog_from_memory(in, strlen(in), &cat, &err) == 0);
        int rc = blurb_job_run(&f->base, tok, cat, &o, full, &st, &err);
        CHECKF(rc == BLURB_E_IO, "rc %d %s", rc, err.msg);
        fclose(full);
        blurb_catalog_free(cat);
        fake_free(f);
    }

    /* Bad options. */
    f = fake_new(1, 64);
    const char *empty_stop[] = {""};
    blurb_job_opts bad = opts();
    bad.stops = empty_stop;
    bad.n_stops = 1;
    CHECK(run(f, in, &bad, &out, &st, &err) == BLURB_E_INVALID && strstr(err.msg, "--stop"));
    free(out);
    bad = opts();
    bad.max_new_tokens = 0;
    CHECK(run(f, in, &bad, &out, &st, &err) == BLURB_E_INVALID && strstr(err.msg, "--max-new-tokens"));
    free(out);
    bad = opts();
    bad.n_samples = 0;
    CHECK(run(f, in, &bad, &out, &st, &err) == BLURB_E_INVALID && strstr(err.msg, "--n"));
    free(out);
    bad = opts();
    bad.sampling.temperature = -1;
    CHECK(run(f, in, &bad, &out, &st, &err) == BLURB_E_INVALID);
    free(out);
    fake_free(f);

    /* The formatted lines. */
    blurb_job_progress p = {50, 200, 2, 1000, 4000, 20.0, false};
    char line[256];
    blurb_job_progress_format(&p, line, sizeof line);
    CHECKF(strcmp(line, "50/200 records (2 errors), 4000 tokens, 200.0 tok/s, ETA 0:01:00") == 0, "%s", line);
    p.records_done = 0;
    blurb_job_progress_format(&p, line, sizeof line);
    CHECKF(strcmp(line, "0/200 records (2 errors), 4000 tokens, 200.0 tok/s, ETA ?") == 0, "%s", line);
    blurb_job_stats s = {200, 1, 5871, 12034, 95.2, };
    blurb_job_summary_format(&s, line, sizeof line);
    CHECKF(strcmp(line, "200 records (1 error), 5871 prompt tokens, 12034 generated tokens, 95.2 s, "
                        "126.4 generated tok/s") == 0, "%s", line);
}

int main(void) {
    blurb_err err;
    if (blurb_tokenizer_load(BLURB_SOURCE_DIR "/weights/default", 50257, &tok, &err) != 0) {
        fprintf(stderr, "tokenizer: %s\n", err.msg);
        return 1;
    }
    REQUIRE(blurb_template_from_arg("Product: {title}\nDescription:", &tmpl_title, &err) == 0);
    test_exact_output();
    test_order_and_ctx();
    test_chunked_prefill();
    test_invariance();
    test_ban_boundary();
    test_errors();
    test_failures_and_progress();
    blurb_template_free(tmpl_title);
    blurb_tokenizer_free(tok);
    return check_finish("job");
}
