/* `blurb generate --format openai-batch` end to end: the CLI (BLURB_CLI) with
 * the default model on the CPU backend, one request file whose lines carry
 * their own options:
 * - a greedy line (temperature 0) whose text equals a plain `blurb generate
 *   --temperature 0` of the same prompt (and whose usage counts match it);
 * - an n 3 line giving 3 choices, and the same request again later in the file
 *   giving the same choices (the random stream follows custom_id, not the line);
 * - a per-line stop list cutting the greedy text where the stop string starts;
 * - a greedy line with logprobs 2: its tokens, their logprobs (equal to a
 *   plain `--logprobs` run's), the top 2 per step (the drawn token first),
 *   text offsets; a sampled n 2 line with logprobs 0 (top_logprobs null);
 * - lines blurb cannot serve: /v1/chat/completions, a list prompt, an unknown
 *   field, a missing custom_id, a line that is not JSON, an out-of-vocabulary
 *   logit_bias id, each with its exact error code;
 * every output line is valid JSON with exactly the members, in order, of the
 * format (include/blurb/openai_batch.h); a rerun, a --batch 1 run, a run
 * resumed after a torn write and two shards joined by `blurb merge` give the
 * same bytes. At most 16 new tokens per sequence. */
#include <cjson/cJSON.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"

static char dir[] = "/tmp/blurb_test_openai_XXXXXX";
#define CLI_FIXED "--backend cpu --quiet"
#include "cli_test_util.h"

/* s as a JSON string literal, escaped as blurb writes it (job.h). */
static void json_lit(const char *s, char *buf, size_t size) {
    size_t n = 0;
    buf[n++] = '"';
    for (; *s && n + 8 < size; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') { buf[n++] = '\\'; buf[n++] = (char)c; }
        else if (c == '\n') { buf[n++] = '\\'; buf[n++] = 'n'; }
        else if (c == '\t') { buf[n++] = '\\'; buf[n++] = 't'; }
        else if (c == '\r') { buf[n++] = '\\'; buf[n++] = 'r'; }
        else if (c < 0x20) n += (size_t)snprintf(buf + n, size - n, "\\u%04x", c);
        else buf[n++] = (char)c;
    }
    REQUIRE(n + 2 < size);
    buf[n++] = '"';
    buf[n] = '\0';
}

static int split(char *text, char **lines, int max) {
    int n = 0;
    for (char *p = text; *p && n < max;) {
        char *nl = strchr(p, '\n');
        REQUIRE(nl); /* every output line ends with '\n' */
        *nl = '\0';
        lines[n++] = p;
        p = nl + 1;
    }
    return n;
}

/* The member names of object o, in order, joined with ','. */
static void keys_of(const cJSON *o, char *buf, size_t size) {
    buf[0] = '\0';
    for (const cJSON *e = o ? o->child : NULL; e; e = e->next) {
        if (buf[0]) strncat(buf, ",", size - strlen(buf) - 1);
        strncat(buf, e->string ? e->string : "?", size - strlen(buf) - 1);
    }
}

static bool has_keys(const cJSON *o, const char *want) {
    char got[512];
    keys_of(o, got, sizeof got);
    if (strcmp(got, want) != 0) {
        fprintf(stderr, "members '%s', want '%s'\n", got, want);
        return false;
    }
    return true;
}

static const char *str_of(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static double num_of(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : -1;
}

static char *trim(char *s) {
    while (*s == ' ' || *s == '\n' || *s == '\t' || *s == '\r') s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\n' || s[n - 1] == '\t' || s[n - 1] == '\r')) s[--n] = '\0';
    return s;
}

/* A served line: checks the exact structure; returns its body. Its choices'
 * "logprobs" must be objects when with_logprobs, else null. */
static const cJSON *served_lp(const cJSON *o, int line, const char *custom_id, int n_choices, bool with_logprobs) {
    char want[64];
    CHECK(has_keys(o, "id,custom_id,response,error"));
    snprintf(want, sizeof want, "batch_req_%d", line);
    CHECK(str_of(o, "id") && strcmp(str_of(o, "id"), want) == 0);
    CHECK(str_of(o, "custom_id") && strcmp(str_of(o, "custom_id"), custom_id) == 0);
    CHECK(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(o, "error")));
    const cJSON *r = cJSON_GetObjectItemCaseSensitive(o, "response");
    CHECK(has_keys(r, "status_code,request_id,body"));
    CHECK(num_of(r, "status_code") == 200);
    snprintf(want, sizeof want, "%d", line);
    CHECK(str_of(r, "request_id") && strcmp(str_of(r, "request_id"), want) == 0);
    const cJSON *b = cJSON_GetObjectItemCaseSensitive(r, "body");
    CHECK(has_keys(b, "object,model,choices,usage"));
    CHECK(str_of(b, "object") && strcmp(str_of(b, "object"), "text_completion") == 0);
    CHECK(str_of(b, "model") && strcmp(str_of(b, "model"), "default") == 0);
    const cJSON *ch = cJSON_GetObjectItemCaseSensitive(b, "choices");
    CHECK(cJSON_IsArray(ch) && cJSON_GetArraySize(ch) == n_choices);
    int i = 0;
    for (const cJSON *c = ch ? ch->child : NULL; c; c = c->next, i++) {
        CHECK(has_keys(c, "index,text,finish_reason,logprobs"));
        CHECK(num_of(c, "index") == i);
        CHECK(str_of(c, "text") != NULL);
        const char *fr = str_of(c, "finish_reason");
        CHECK(fr && (strcmp(fr, "stop") == 0 || strcmp(fr, "length") == 0));
        const cJSON *lp = cJSON_GetObjectItemCaseSensitive(c, "logprobs");
        if (with_logprobs)
            CHECK(has_keys(lp, "tokens,token_logprobs,top_logprobs,text_offset"));
        else
            CHECK(cJSON_IsNull(lp));
    }
    const cJSON *u = cJSON_GetObjectItemCaseSensitive(b, "usage");
    CHECK(has_keys(u, "prompt_tokens,completion_tokens,total_tokens"));
    CHECK(num_of(u, "prompt_tokens") > 0 && num_of(u, "completion_tokens") > 0);
    CHECK(num_of(u, "total_tokens") == num_of(u, "prompt_tokens") + num_of(u, "completion_tokens"));
    return b;
}

static const cJSON *served(const cJSON *o, int line, const char *custom_id, int n_choices) {
    return served_lp(o, line, custom_id, n_choices, false);
}

static void refused(const cJSON *o, int line, const char *custom_id, const char *code, const char *msg_part) {
    char want[64];
    CHECK(has_keys(o, "id,custom_id,response,error"));
    snprintf(want, sizeof want, "batch_req_%d", line);
    CHECK(str_of(o, "id") && strcmp(str_of(o, "id"), want) == 0);
    if (custom_id)
        CHECK(str_of(o, "custom_id") && strcmp(str_of(o, "custom_id"), custom_id) == 0);
    else
        CHECK(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(o, "custom_id")));
    CHECK(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(o, "response")));
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(o, "error");
    CHECK(has_keys(e, "code,message"));
    CHECKF(str_of(e, "code") && strcmp(str_of(e, "code"), code) == 0, "line %d code %s, want %s", line,
           str_of(e, "code") ? str_of(e, "code") : "?", code);
    CHECKF(str_of(e, "message") && strstr(str_of(e, "message"), msg_part), "line %d message '%s'", line,
           str_of(e, "message") ? str_of(e, "message") : "?");
}

/* Line 8: greedy with logprobs 2, against line 1 (the same request without
 * logprobs) and p0 (the plain greedy run's output, with --logprobs). */
static void check_logprobs_line(const cJSON *o, const cJSON *greedy, const cJSON *p0) {
    const cJSON *b = served_lp(o, 8, "logprobs", 1, true);
    const cJSON *c0 = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(b, "choices"), 0);
    const cJSON *g0 = cJSON_GetArrayItem(
        cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(greedy, "response"), "body"), "choices"),
        0);
    const char *text = str_of(c0, "text");
    REQUIRE(text && str_of(g0, "text"));
    CHECK(strcmp(text, str_of(g0, "text")) == 0); /* logprobs change nothing of the draw */
    const cJSON *lp = cJSON_GetObjectItemCaseSensitive(c0, "logprobs");
    const cJSON *toks = cJSON_GetObjectItemCaseSensitive(lp, "tokens");
    const cJSON *tlp = cJSON_GetObjectItemCaseSensitive(lp, "token_logprobs");
    const cJSON *top = cJSON_GetObjectItemCaseSensitive(lp, "top_logprobs");
    const cJSON *off = cJSON_GetObjectItemCaseSensitive(lp, "text_offset");
    const cJSON *ref = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(p0, "logprobs"),
                                                        "token_logprobs");
    const int n = (int)num_of(p0, "tokens");
    REQUIRE(n > 0 && cJSON_GetArraySize(toks) == n && cJSON_GetArraySize(tlp) == n && cJSON_GetArraySize(top) == n &&
            cJSON_GetArraySize(off) == n && cJSON_GetArraySize(ref) == n);
    char joined[4096] = "";
    long want_off = 0;
    for (int t = 0; t < n; t++) {
        const cJSON *tok = cJSON_GetArrayItem(toks, t);
        REQUIRE(cJSON_IsString(tok));
        const char *ts = tok->valuestring;
        const bool eos = strcmp(ts, "<|endoftext|>") == 0;
        CHECKF(eos ? t == n - 1 : true, "EOS at step %d of %d", t, n);
        /* This prompt's greedy text is ASCII, so every token is whole text. */
        CHECKF(strncmp(ts, "bytes:", 6) != 0, "token %d is '%s'", t, ts);
        if (!eos) strncat(joined, ts, sizeof joined - strlen(joined) - 1);
        /* The same logprob as the plain run's (same model, same CPU sampler). */
        double x = cJSON_GetArrayItem(tlp, t)->valuedouble, xr = cJSON_GetArrayItem(ref, t)->valuedouble;
        CHECKF(cJSON_IsNumber(cJSON_GetArrayItem(tlp, t)) && x == xr && x <= 0, "step %d: logprob %g vs %g", t, x, xr);
        /* Greedy: the drawn token is the most likely, listed first with its
         * own logprob; 2 entries, the second no more likely. */
        const cJSON *d = cJSON_GetArrayItem(top, t);
        CHECKF(cJSON_IsObject(d) && cJSON_GetArraySize(d) == 2, "step %d: top_logprobs size", t);
        if (cJSON_IsObject(d) && d->child && d->child->next) {
            CHECKF(strcmp(d->child->string, ts) == 0, "step %d: top token '%s', drawn '%s'", t, d->child->string, ts);
            CHECK(d->child->valuedouble == x);
            CHECK(strcmp(d->child->next->string, ts) != 0 && d->child->next->valuedouble <= x);
        }
        CHECKF(cJSON_IsNumber(cJSON_GetArrayItem(off, t)) && cJSON_GetArrayItem(off, t)->valuedouble == want_off,
               "step %d: text_offset %g, want %ld", t, cJSON_GetArrayItem(off, t)->valuedouble, want_off);
        if (!eos) want_off += (long)strlen(ts);
    }
    CHECKF(strcmp(joined, text) == 0, "tokens join to '%s', text '%s'", joined, text);
}

/* Line 14: logprobs 0 on two sampled choices: no alternatives. */
static void check_lp0_line(const cJSON *o) {
    const cJSON *b = served_lp(o, 14, "lp0", 2, true);
    double total = 0;
    for (const cJSON *c = cJSON_GetObjectItemCaseSensitive(b, "choices")->child; c; c = c->next) {
        const cJSON *lp = cJSON_GetObjectItemCaseSensitive(c, "logprobs");
        CHECK(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(lp, "top_logprobs")));
        int nt = cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(lp, "tokens"));
        CHECK(nt > 0 && cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(lp, "token_logprobs")) == nt);
        for (const cJSON *x = cJSON_GetObjectItemCaseSensitive(lp, "token_logprobs")->child; x; x = x->next)
            CHECK(cJSON_IsNumber(x) && x->valuedouble <= 0);
        total += nt;
    }
    CHECK(total == num_of(cJSON_GetObjectItemCaseSensitive(b, "usage"), "completion_tokens"));
}

/* Line 15: six lone bytes 0x97, so six U+FFFD in the text; the tokens are
 * written "bytes:\x97" and text_offset counts the U+FFFD (0..5). */
static void check_bytes_line(const cJSON *o) {
    const cJSON *b = served_lp(o, 15, "bytes", 1, true);
    const cJSON *c0 = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(b, "choices"), 0);
    const char *text = str_of(c0, "text");
    CHECKF(text && strcmp(text, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd") == 0,
           "text '%s'", text ? text : "?");
    const cJSON *lp = cJSON_GetObjectItemCaseSensitive(c0, "logprobs");
    const cJSON *toks = cJSON_GetObjectItemCaseSensitive(lp, "tokens");
    const cJSON *off = cJSON_GetObjectItemCaseSensitive(lp, "text_offset");
    REQUIRE(cJSON_GetArraySize(toks) == 6 && cJSON_GetArraySize(off) == 6);
    for (int t = 0; t < 6; t++) {
        CHECKF(strcmp(cJSON_GetArrayItem(toks, t)->valuestring, "bytes:\\x97") == 0, "token %d '%s'", t,
               cJSON_GetArrayItem(toks, t)->valuestring);
        CHECK(cJSON_GetArrayItem(off, t)->valuedouble == t);
    }
}

/* Lines 16 and 17: the 4 draws of "bo", and n 2 of best_of 4 of the same
 * stream: the 2 with the highest mean token logprob, best first. */
static void check_best_of(const cJSON *all4, const cJSON *best2) {
    const cJSON *b4 = served_lp(all4, 16, "bo", 4, true);
    const cJSON *b2 = served(best2, 17, "bo", 2);
    double mean[4];
    const char *text[4];
    int i = 0;
    for (const cJSON *c = cJSON_GetObjectItemCaseSensitive(b4, "choices")->child; c && i < 4; c = c->next, i++) {
        text[i] = str_of(c, "text");
        double sum = 0;
        int nt = 0;
        for (const cJSON *x = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(c, "logprobs"),
                                                               "token_logprobs")->child; x; x = x->next, nt++)
            sum += x->valuedouble;
        mean[i] = nt ? sum / nt : -1e30;
    }
    REQUIRE(i == 4);
    int first = 0;
    for (int k = 1; k < 4; k++)
        if (mean[k] > mean[first]) first = k;
    int second = first == 0 ? 1 : 0;
    for (int k = 0; k < 4; k++)
        if (k != first && mean[k] > mean[second]) second = k;
    const cJSON *ch = cJSON_GetObjectItemCaseSensitive(b2, "choices");
    CHECKF(strcmp(str_of(cJSON_GetArrayItem(ch, 0), "text"), text[first]) == 0 &&
               strcmp(str_of(cJSON_GetArrayItem(ch, 1), "text"), text[second]) == 0,
           "best_of kept '%s' and '%s', the best are %d and %d", str_of(cJSON_GetArrayItem(ch, 0), "text"),
           str_of(cJSON_GetArrayItem(ch, 1), "text"), first, second);
}

/* One request line: {"custom_id", "method", "url", "body": {"prompt", ...extra}}. */
static void add_req(FILE *f, const char *custom_id, const char *url, const char *prompt, const char *extra_json) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "custom_id", custom_id);
    cJSON_AddStringToObject(o, "method", "POST");
    cJSON_AddStringToObject(o, "url", url);
    cJSON *b = extra_json ? cJSON_Parse(extra_json) : cJSON_CreateObject();
    REQUIRE(b);
    cJSON_AddStringToObject(b, "model", "blurb-default");
    if (prompt) cJSON_AddStringToObject(b, "prompt", prompt);
    cJSON_AddItemToObject(o, "body", b);
    char *s = cJSON_PrintUnformatted(o);
    REQUIRE(s);
    fprintf(f, "%s\n", s);
    free(s);
    cJSON_Delete(o);
}

int main(void) {
    REQUIRE(mkdtemp(dir));
    /* A real product: the first line of the Myntra sample, in the default
     * template's format. */
    char *cat = slurp(BLURB_TEST_DATA "/myntra_sample.jsonl", NULL);
    REQUIRE(cat);
    *strchr(cat, '\n') = '\0';
    cJSON *prod = cJSON_Parse(cat);
    REQUIRE(prod);
    char prompt[1024];
    snprintf(prompt, sizeof prompt, "Product: %s\nBrand: %s\nDescription:", str_of(prod, "title"),
             str_of(prod, "brand"));
    char plain_line[1024];
    snprintf(plain_line, sizeof plain_line, "{\"id\": \"p\", \"title\": \"%s\", \"brand\": \"%s\"}\n",
             str_of(prod, "title"), str_of(prod, "brand"));
    spit_str(path_in("plain.jsonl"), plain_line);
    REQUIRE(cli("--temperature 0 --max-new-tokens 16 --logprobs --input %s --output %s", path_in("plain.jsonl"),
                path_in("plain.out")) == 0);
    char *plain_out = slurp(path_in("plain.out"), NULL);
    REQUIRE(plain_out);
    cJSON *plain = cJSON_Parse(plain_out);
    REQUIRE(plain);
    const cJSON *p0 = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(plain, "outputs"), 0);
    REQUIRE(p0);
    const char *plain_text = str_of(p0, "text");
    REQUIRE(plain_text && strlen(plain_text) > 20);

    /* The stop string: 4 bytes from the middle of the greedy text. */
    char stop[8];
    size_t stop_at = strlen(plain_text) / 2;
    memcpy(stop, plain_text + stop_at, 4);
    stop[4] = '\0';
    REQUIRE(!strpbrk(stop, "\"\\") && (unsigned char)stop[0] < 0x80);
    size_t cut = (size_t)(strstr(plain_text, stop) - plain_text);
    char extra[256];

    FILE *f = fopen(path_in("req.jsonl"), "wb");
    REQUIRE(f);
    add_req(f, "greedy", "/v1/completions", prompt, "{\"max_tokens\": 16, \"temperature\": 0}");         /* 1 */
    add_req(f, "three", "/v1/completions", prompt,
            "{\"max_tokens\": 12, \"temperature\": 1.0, \"top_p\": 1, \"n\": 3, \"seed\": 42}");            /* 2 */
    add_req(f, "chat", "/v1/chat/completions", NULL, "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}]}"); /* 3 */
    add_req(f, "list", "/v1/completions", NULL, "{\"prompt\": [\"a\", \"b\"]}");                            /* 4 */
    add_req(f, "unknown", "/v1/completions", prompt, "{\"frobnicate\": 2}");                                 /* 5 */
    add_req(f, "presence", "/v1/completions", prompt, "{\"presence_penalty\": 0.5}");                        /* 6 */
    add_req(f, "presence0", "/v1/completions", prompt,
            "{\"presence_penalty\": 0, \"frequency_penalty\": 0, \"logit_bias\": {}, \"logprobs\": null, "
            "\"max_tokens\": 16, \"temperature\": 0}");                                                      /* 7 */
    add_req(f, "logprobs", "/v1/completions", prompt, "{\"logprobs\": 2, \"max_tokens\": 16, \"temperature\": 0}"); /* 8 */
    snprintf(extra, sizeof extra, "{\"max_tokens\": 16, \"temperature\": 0, \"stop\": [\"\\u0001\", \"%s\"]}", stop);
    add_req(f, "stop", "/v1/completions", prompt, extra);                                                    /* 9 */
    fputs("{\"method\": \"POST\", \"url\": \"/v1/completions\", \"body\": {\"prompt\": \"x\"}}\n", f);      /* 10 */
    fputs("this is not JSON\n", f);                                                                          /* 11 */
    add_req(f, "three", "/v1/completions", prompt,
            "{\"max_tokens\": 12, \"temperature\": 1.0, \"top_p\": 1, \"n\": 3, \"seed\": 42}");            /* 12 */
    add_req(f, "bias", "/v1/completions", prompt, "{\"logit_bias\": {\"99999999\": 5}}");                   /* 13 */
    add_req(f, "lp0", "/v1/completions", prompt, "{\"logprobs\": 0, \"n\": 2, \"temperature\": 1}");          /* 14 */
    /* Token 245 is the lone byte 0x97: each draw is a U+FFFD of the text. */
    add_req(f, "bytes", "/v1/completions", prompt,
            "{\"logprobs\": 1, \"max_tokens\": 6, \"temperature\": 0, \"logit_bias\": {\"245\": 100}}");   /* 15 */
    /* best_of: the same stream drawn 4 times; n 2 of best_of 4 keeps the 2 best. */
    add_req(f, "bo", "/v1/completions", prompt, "{\"n\": 4, \"temperature\": 1, \"logprobs\": 0, \"user\": \"u1\"}"); /* 16 */
    add_req(f, "bo", "/v1/completions", prompt,
            "{\"n\": 2, \"best_of\": 4, \"temperature\": 1, \"stream\": false, \"echo\": null}");             /* 17 */
    add_req(f, "stream", "/v1/completions", prompt, "{\"stream\": true}");                                    /* 18 */
    REQUIRE(fclose(f) == 0);

    REQUIRE(cli("--format openai-batch --max-new-tokens 8 --input %s --output %s", path_in("req.jsonl"),
                path_in("a.out")) == 0);
    size_t len_a = 0;
    char *out_a = slurp(path_in("a.out"), &len_a);
    REQUIRE(out_a);
    char *copy = strdup(out_a);
    REQUIRE(copy);
    char *lines[32];
    int n = split(copy, lines, 32);
    CHECK(n == 18);
    cJSON *o[18] = {0};
    for (int i = 0; i < n && i < 18; i++) {
        o[i] = cJSON_Parse(lines[i]);
        CHECKF(o[i] != NULL, "line %d is not JSON: %s", i + 1, lines[i]);
    }
    if (n == 18 && o[0] && o[1] && o[2] && o[3] && o[4] && o[5] && o[6] && o[7] && o[8] && o[9] && o[10] &&
        o[11] && o[12] && o[13] && o[14] && o[15] && o[16] && o[17]) {
        /* 1: greedy equals the plain greedy run (which trims the text). */
        const cJSON *b = served(o[0], 1, "greedy", 1);
        const cJSON *c0 = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(b, "choices"), 0);
        char *t = strdup(str_of(c0, "text") ? str_of(c0, "text") : "");
        REQUIRE(t);
        CHECK(t[0] == ' '); /* the API's text is not trimmed: the model's leading space stays */
        CHECKF(strcmp(trim(t), plain_text) == 0, "greedy '%s' vs plain '%s'", t, plain_text);
        free(t);
        CHECK(strcmp(str_of(c0, "finish_reason"), str_of(p0, "finish_reason")) == 0);
        const cJSON *u = cJSON_GetObjectItemCaseSensitive(b, "usage");
        CHECK(num_of(u, "prompt_tokens") == num_of(plain, "prompt_tokens"));
        CHECK(num_of(u, "completion_tokens") == num_of(p0, "tokens"));
        /* The exact bytes of the line. */
        char lit[2048], want[4096];
        json_lit(str_of(c0, "text"), lit, sizeof lit);
        snprintf(want, sizeof want,
                 "{\"id\": \"batch_req_1\", \"custom_id\": \"greedy\", \"response\": {\"status_code\": 200, "
                 "\"request_id\": \"1\", \"body\": {\"object\": \"text_completion\", \"model\": \"default\", "
                 "\"choices\": [{\"index\": 0, \"text\": %s, \"finish_reason\": \"%s\", \"logprobs\": null}], "
                 "\"usage\": {\"prompt_tokens\": %d, \"completion_tokens\": %d, \"total_tokens\": %d}}}, "
                 "\"error\": null}",
                 lit, str_of(c0, "finish_reason"), (int)num_of(u, "prompt_tokens"), (int)num_of(u, "completion_tokens"),
                 (int)num_of(u, "total_tokens"));
        CHECKF(strcmp(lines[0], want) == 0, "line 1:\n%s\nwant\n%s", lines[0], want);
        CHECK(strcmp(lines[2], "{\"id\": \"batch_req_3\", \"custom_id\": \"chat\", \"response\": null, \"error\": "
                               "{\"code\": \"unsupported_url\", \"message\": \"url '/v1/chat/completions' is not "
                               "supported: blurb serves only /v1/completions (GPT-2 models have no chat template)\"}}") == 0);
        CHECK(strcmp(lines[10], "{\"id\": \"batch_req_11\", \"custom_id\": null, \"response\": null, \"error\": "
                                "{\"code\": \"invalid_json\", \"message\": \"invalid JSON at column 1\"}}") == 0);
        /* 2: three choices, per-line max_tokens 12 (the command line says 8). */
        b = served(o[1], 2, "three", 3);
        const cJSON *ch = cJSON_GetObjectItemCaseSensitive(b, "choices");
        u = cJSON_GetObjectItemCaseSensitive(b, "usage");
        CHECK(num_of(u, "completion_tokens") > 24 && num_of(u, "completion_tokens") <= 36);
        const char *t0 = str_of(cJSON_GetArrayItem(ch, 0), "text"), *t1 = str_of(cJSON_GetArrayItem(ch, 1), "text"),
                   *t2 = str_of(cJSON_GetArrayItem(ch, 2), "text");
        CHECK(t0 && t1 && t2 && !(strcmp(t0, t1) == 0 && strcmp(t1, t2) == 0));
        /* 12: the same request at another line draws the same choices. */
        served(o[11], 12, "three", 3);
        cJSON *r2 = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(o[1], "response"), "body");
        cJSON *r12 = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(o[11], "response"), "body");
        CHECK(cJSON_Compare(r2, r12, true));
        refused(o[2], 3, "chat", "unsupported_url", "/v1/chat/completions");
        refused(o[3], 4, "list", "invalid_request", "list prompt");
        refused(o[4], 5, "unknown", "invalid_request", "unknown field 'body.frobnicate'");
        served(o[5], 6, "presence", 1); /* presence_penalty is applied by the sampler */
        /* 7: default values of the unsupported parameters are fine: same as 1. */
        b = served(o[6], 7, "presence0", 1);
        CHECK(cJSON_Compare(b, cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(o[0], "response"),
                                                                "body"), true));
        check_logprobs_line(o[7], o[0], p0);
        check_lp0_line(o[13]);
        check_bytes_line(o[14]);
        check_best_of(o[15], o[16]);
        refused(o[17], 18, "stream", "invalid_request", "never streamed");
        /* 9: the per-line stop cuts the greedy text where the stop string starts. */
        b = served(o[8], 9, "stop", 1);
        c0 = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(b, "choices"), 0);
        t = strdup(str_of(c0, "text") ? str_of(c0, "text") : "");
        REQUIRE(t);
        CHECKF(strncmp(trim(t), plain_text, cut) == 0 && strlen(trim(t)) <= cut, "stop text '%s' (stop '%s')", t,
               stop);
        free(t);
        CHECK(strcmp(str_of(c0, "finish_reason"), "stop") == 0);
        refused(o[9], 10, NULL, "invalid_request", "missing required field 'custom_id'");
        refused(o[10], 11, NULL, "invalid_json", "invalid JSON");
        refused(o[12], 13, "bias", "invalid_request", "not a token id");
    }
    for (int i = 0; i < 18; i++) cJSON_Delete(o[i]);

    /* Reruns: the same bytes, also at --batch 1. */
    REQUIRE(cli("--format openai-batch --max-new-tokens 8 --input %s --output %s", path_in("req.jsonl"),
                path_in("b.out")) == 0);
    REQUIRE(cli("--format openai-batch --max-new-tokens 8 --batch 1 --input %s --output %s", path_in("req.jsonl"),
                path_in("c.out")) == 0);
    size_t len_b = 0, len_c = 0;
    char *out_b = slurp(path_in("b.out"), &len_b), *out_c = slurp(path_in("c.out"), &len_c);
    CHECK(out_b && len_b == len_a && memcmp(out_a, out_b, len_a) == 0);
    CHECK(out_c && len_c == len_a && memcmp(out_a, out_c, len_a) == 0);

    /* Usage errors. */
    CHECK(cli("--format openai-batch --template x --input %s --output /dev/null 2>/dev/null", path_in("req.jsonl")) == 2);
    CHECK(cli("--format xml --input %s --output /dev/null 2>/dev/null", path_in("req.jsonl")) == 2);
    CHECK(cli("--format openai-batch --report %s --input %s --output %s 2>/dev/null", path_in("rep.json"),
              path_in("req.jsonl"), path_in("r.out")) == 2);

    /* --resume after a kill: the first 6 lines and half of the 7th were
     * written; the resumed file is the uninterrupted run's bytes. */
    {
        size_t cut6 = 0;
        for (int k = 0; k < 6; k++) cut6 += strcspn(out_a + cut6, "\n") + 1;
        size_t half = cut6 + strcspn(out_a + cut6, "\n") / 2;
        FILE *r = fopen(path_in("r.out"), "wb");
        REQUIRE(r && fwrite(out_a, 1, half, r) == half && fclose(r) == 0);
        REQUIRE(cli("--format openai-batch --max-new-tokens 8 --resume --input %s --output %s", path_in("req.jsonl"),
                    path_in("r.out")) == 0);
        size_t len_r = 0;
        char *out_r = slurp(path_in("r.out"), &len_r);
        CHECK(out_r && len_r == len_a && memcmp(out_a, out_r, len_a) == 0);
        free(out_r);
    }
    /* Shards 0/2 and 1/2, then `blurb merge`: the unsharded bytes. */
    {
        for (int k = 0; k < 2; k++)
            REQUIRE(cli("--format openai-batch --max-new-tokens 8 --shard %d/2 --input %s --output %s", k,
                        path_in("req.jsonl"), path_in("s.{shard}.out")) == 0);
        char cmd[2048];
        snprintf(cmd, sizeof cmd, "'%s' merge --output '%s' --input '%s' '%s' '%s'", BLURB_CLI, path_in("m.out"),
                 path_in("req.jsonl"), path_in("s.0-of-2.out"), path_in("s.1-of-2.out"));
        int st = system(cmd);
        CHECK(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0);
        size_t len_m = 0;
        char *out_m = slurp(path_in("m.out"), &len_m);
        CHECK(out_m && len_m == len_a && memcmp(out_a, out_m, len_a) == 0);
        free(out_m);
    }

    free(out_a);
    free(out_b);
    free(out_c);
    free(copy);
    cJSON_Delete(plain);
    free(plain_out);
    cJSON_Delete(prod);
    free(cat);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
    return check_finish("openai_batch");
}
