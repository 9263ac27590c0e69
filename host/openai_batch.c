#include "blurb/openai_batch.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "blurb/output.h"
#include "blurb/utf8.h"
#include "strbuf.h"

struct blurb_openai_batch {
    const blurb_tokenizer *tok;
    char *model_name;      /* JSON-ready content (escaped when written) */
    int vocab_size;
};

/* A logit_bias entry as parsed: the sampler's own type, so a line's entries
 * are handed to blurb_sampling as they are. */
typedef blurb_logit_bias ob_bias;

/* Per-line data, kept from prepare until the line is written. */
typedef struct ob_line {
    char *custom_id;       /* content, NULL when missing or not a string */
    size_t custom_id_len;
    const char *code;      /* error code once prepare refused the line */
    char **stops;
    int n_stops;
    float presence_penalty;  /* OpenAI semantics: see blurb_sampling */
    float frequency_penalty;
    ob_bias *bias;
    int n_bias;
} ob_line;

int blurb_openai_batch_new(const blurb_tokenizer *tok, const char *model_dir, int vocab_size,
                           blurb_openai_batch **out, blurb_err *err) {
    *out = NULL;
    if (!tok || !model_dir || vocab_size <= 0)
        return blurb_seterr(err, BLURB_E_INVALID, "openai-batch: no tokenizer, model directory or vocabulary");
    size_t n = strlen(model_dir);
    while (n > 1 && model_dir[n - 1] == '/') n--;
    size_t a = n;
    while (a > 0 && model_dir[a - 1] != '/') a--;
    blurb_openai_batch *ob = calloc(1, sizeof *ob);
    if (!ob || !(ob->model_name = malloc(n - a + 1))) {
        free(ob);
        return blurb_seterr(err, BLURB_E_NOMEM, "openai-batch: out of memory");
    }
    memcpy(ob->model_name, model_dir + a, n - a);
    ob->model_name[n - a] = '\0';
    ob->tok = tok;
    ob->vocab_size = vocab_size;
    *out = ob;
    return 0;
}

void blurb_openai_batch_free(blurb_openai_batch *ob) {
    if (!ob) return;
    free(ob->model_name);
    free(ob);
}

const char *blurb_openai_batch_model_name(const blurb_openai_batch *ob) { return ob->model_name; }

static void line_free(void *ctx, void *user) {
    (void)ctx;
    ob_line *u = user;
    if (!u) return;
    free(u->custom_id);
    for (int i = 0; i < u->n_stops; i++) free(u->stops[i]);
    free(u->stops);
    free(u->bias);
    free(u);
}

/* Refuses the line with an API error code. */
static int refuse(ob_line *u, const char *code, int rc, blurb_err *why, const char *msg) {
    u->code = code;
    return blurb_seterr(why, rc, "%s", msg);
}

static int bad(ob_line *u, blurb_err *why, const char *fmt, const char *name) {
    char msg[256];
    snprintf(msg, sizeof msg, fmt, name);
    return refuse(u, "invalid_request", BLURB_E_FORMAT, why, msg);
}

/* A JSON number within [lo, hi]; integral when `integer`. */
static bool number_in(const cJSON *v, double lo, double hi, bool integer, double *out) {
    if (!cJSON_IsNumber(v)) return false;
    double d = v->valuedouble;
    if (!isfinite(d) || d < lo || d > hi || (integer && floor(d) != d)) return false;
    *out = d;
    return true;
}

/* seed: the exact integer text (doubles lose bits above 2^53), -2^63..2^64-1. */
static bool parse_seed(const blurb_record *rec, const cJSON *v, uint64_t *out) {
    size_t len;
    const char *t = cJSON_IsNumber(v) ? blurb_record_number_text(rec, v, &len) : NULL;
    if (!t || len == 0 || len > 24) return false;
    char buf[32];
    memcpy(buf, t, len);
    buf[len] = '\0';
    for (size_t i = buf[0] == '-' ? 1 : 0; i < len; i++)
        if (buf[i] < '0' || buf[i] > '9') return false;
    char *end;
    errno = 0;
    if (buf[0] == '-') {
        long long s = strtoll(buf, &end, 10);
        if (errno || *end) return false;
        *out = (uint64_t)s;
    } else {
        unsigned long long s = strtoull(buf, &end, 10);
        if (errno || *end) return false;
        *out = (uint64_t)s;
    }
    return true;
}

static int take_stops(ob_line *u, const cJSON *v, blurb_err *why) {
    int n = cJSON_IsString(v) ? 1 : cJSON_IsArray(v) ? cJSON_GetArraySize(v) : -1;
    if (cJSON_IsNull(v)) return 0;
    if (n < 0 || n > 4) return bad(u, why, "%s must be a string or a list of at most 4 strings", "stop");
    if (n == 0) return 0;
    if (!(u->stops = calloc((size_t)n, sizeof *u->stops))) return BLURB_E_NOMEM;
    const cJSON *e = cJSON_IsString(v) ? v : v->child;
    for (; e && u->n_stops < n; e = cJSON_IsString(v) ? NULL : e->next) {
        if (!cJSON_IsString(e) || !e->valuestring[0])
            return bad(u, why, "%s must hold non-empty strings", "stop");
        if (!(u->stops[u->n_stops] = strdup(e->valuestring))) return BLURB_E_NOMEM;
        u->n_stops++;
    }
    return 0;
}

static int check_logit_bias(const blurb_openai_batch *ob, ob_line *u, const cJSON *v, bool *nonzero,
                            blurb_err *why) {
    *nonzero = false;
    if (cJSON_IsNull(v)) return 0;
    if (!cJSON_IsObject(v)) return bad(u, why, "%s must be an object of token id: bias", "logit_bias");
    int n = cJSON_GetArraySize(v);
    free(u->bias);
    u->n_bias = 0;
    if (!(u->bias = calloc(n ? (size_t)n : 1, sizeof *u->bias))) return blurb_seterr(why, BLURB_E_NOMEM, "out of memory");
    for (const cJSON *e = v->child; e; e = e->next) {
        const char *k = e->string;
        char *end;
        errno = 0;
        long id = strtol(k, &end, 10);
        double b;
        /* the id's decimal digits exactly: no sign, space or leading zero */
        if (k[0] < '0' || k[0] > '9' || (k[0] == '0' && k[1]) || *end || errno || id >= ob->vocab_size) {
            char msg[200];
            snprintf(msg, sizeof msg, "logit_bias: '%.40s' is not a token id of the vocabulary (0..%d)", k,
                     ob->vocab_size - 1);
            return refuse(u, "invalid_request", BLURB_E_FORMAT, why, msg);
        }
        if (!number_in(e, -100, 100, false, &b)) return bad(u, why, "%s values must be numbers in -100..100", "logit_bias");
        if (b != 0) *nonzero = true;
        u->bias[u->n_bias++] = (ob_bias){(int32_t)id, (float)b};
    }
    return 0;
}

static int prepare(void *ctx, const blurb_record *rec, blurb_job_request *req, blurb_err *why) {
    blurb_openai_batch *ob = ctx;
    ob_line *u = calloc(1, sizeof *u);
    if (!u) return blurb_seterr(why, BLURB_E_NOMEM, "out of memory");
    req->user = u;
    const cJSON *root = rec->root;
    const cJSON *cid = cJSON_GetObjectItemCaseSensitive(root, "custom_id");
    if (cJSON_IsString(cid)) {
        u->custom_id_len = strlen(cid->valuestring);
        if (!(u->custom_id = strdup(cid->valuestring))) return blurb_seterr(why, BLURB_E_NOMEM, "out of memory");
    }
    const cJSON *method = NULL, *url = NULL, *body = NULL;
    for (const cJSON *e = root->child; e; e = e->next) {
        if (strcmp(e->string, "custom_id") == 0) continue;
        if (strcmp(e->string, "method") == 0) method = e;
        else if (strcmp(e->string, "url") == 0) url = e;
        else if (strcmp(e->string, "body") == 0) body = e;
        else return bad(u, why, "unknown field '%.60s'", e->string);
    }
    if (!cid) return bad(u, why, "missing required field '%s'", "custom_id");
    if (!u->custom_id) return bad(u, why, "%s must be a string", "custom_id");
    if (!method) return bad(u, why, "missing required field '%s'", "method");
    if (!cJSON_IsString(method) || strcmp(method->valuestring, "POST") != 0)
        return bad(u, why, "%s must be \"POST\"", "method");
    if (!url) return bad(u, why, "missing required field '%s'", "url");
    if (!cJSON_IsString(url)) return bad(u, why, "%s must be a string", "url");
    if (strcmp(url->valuestring, "/v1/completions") != 0) {
        char msg[200];
        snprintf(msg, sizeof msg, "url '%.60s' is not supported: blurb serves only /v1/completions%s",
                 url->valuestring, strstr(url->valuestring, "chat") ? " (GPT-2 models have no chat template)" : "");
        return refuse(u, "unsupported_url", BLURB_E_UNSUPPORTED, why, msg);
    }
    if (!body) return bad(u, why, "missing required field '%s'", "body");
    if (!cJSON_IsObject(body)) return bad(u, why, "%s must be an object", "body");

    const cJSON *prompt = NULL;
    double d;
    int best_of = 0;
    for (const cJSON *e = body->child; e; e = e->next) {
        const char *k = e->string;
        if (strcmp(k, "prompt") == 0) {
            prompt = e;
        } else if (strcmp(k, "model") == 0) {
            if (!cJSON_IsString(e)) return bad(u, why, "body.%s must be a string", k);
        } else if (strcmp(k, "max_tokens") == 0) {
            if (cJSON_IsNull(e)) continue;
            if (!number_in(e, 1, 1 << 30, true, &d)) return bad(u, why, "body.%s must be an integer >= 1", k);
            req->max_new_tokens = (int)d;
        } else if (strcmp(k, "temperature") == 0) {
            if (cJSON_IsNull(e)) continue;
            if (!number_in(e, 0, 2, false, &d)) return bad(u, why, "body.%s must be a number in 0..2", k);
            req->sampling.temperature = (float)d;
        } else if (strcmp(k, "top_p") == 0) {
            if (cJSON_IsNull(e)) continue;
            if (!number_in(e, 0, 1, false, &d)) return bad(u, why, "body.%s must be a number in 0..1", k);
            req->sampling.top_p = (float)d;
        } else if (strcmp(k, "n") == 0) {
            if (cJSON_IsNull(e)) continue;
            if (!number_in(e, 1, 128, true, &d)) return bad(u, why, "body.%s must be an integer in 1..128", k);
            req->n_samples = (int)d;
        } else if (strcmp(k, "stop") == 0) {
            int rc = take_stops(u, e, why);
            if (rc) return rc == BLURB_E_NOMEM ? blurb_seterr(why, rc, "out of memory") : rc;
            if (!cJSON_IsNull(e)) {
                req->stops = (const char *const *)u->stops;
                req->n_stops = u->n_stops;
            }
        } else if (strcmp(k, "seed") == 0) {
            if (cJSON_IsNull(e)) continue;
            if (!parse_seed(rec, e, &req->seed)) return bad(u, why, "body.%s must be a 64-bit integer", k);
        } else if (strcmp(k, "presence_penalty") == 0 || strcmp(k, "frequency_penalty") == 0) {
            if (cJSON_IsNull(e)) continue;
            if (!number_in(e, -2, 2, false, &d)) return bad(u, why, "body.%s must be a number in -2..2", k);
            if (k[0] == 'p') u->presence_penalty = (float)d;
            else u->frequency_penalty = (float)d;
        } else if (strcmp(k, "logit_bias") == 0) {
            bool nonzero;
            int rc = check_logit_bias(ob, u, e, &nonzero, why);
            if (rc) return rc;
        } else if (strcmp(k, "best_of") == 0) {
            if (cJSON_IsNull(e)) continue;
            if (!number_in(e, 1, 128, true, &d)) return bad(u, why, "body.%s must be an integer in 1..128", k);
            best_of = (int)d;
        } else if (strcmp(k, "user") == 0) {
            if (!cJSON_IsString(e) && !cJSON_IsNull(e)) return bad(u, why, "body.%s must be a string", k);
        } else if (strcmp(k, "stream") == 0 || strcmp(k, "echo") == 0) {
            if (cJSON_IsNull(e) || cJSON_IsFalse(e)) continue;
            if (!cJSON_IsTrue(e)) return bad(u, why, "body.%s must be a boolean", k);
            return bad(u, why, k[0] == 's' ? "body.%s: a batch result is never streamed; leave it false"
                                           : "body.%s is not supported: the text holds the completion only", k);
        } else if (strcmp(k, "suffix") == 0) {
            if (cJSON_IsNull(e)) continue;
            return bad(u, why, "body.%s is not supported: GPT-2 models have no insertion mode", k);
        } else if (strcmp(k, "logprobs") == 0) {
            if (cJSON_IsNull(e)) continue;
            if (!number_in(e, 0, BLURB_MAX_TOP_LOGPROBS, true, &d))
                return bad(u, why, "body.%s must be null or an integer in 0..5", k);
            req->logprobs = true;
            req->top_logprobs = (int)d;
        } else {
            return bad(u, why, "unknown field 'body.%.60s'", k);
        }
    }
    if (!prompt) return bad(u, why, "missing required field '%s'", "body.prompt");
    if (cJSON_IsArray(prompt))
        return bad(u, why, "%s: a list prompt is not supported; give one prompt string per line", "body.prompt");
    if (!cJSON_IsString(prompt)) return bad(u, why, "%s must be a string", "body.prompt");
    if (best_of > 0 && best_of < req->n_samples)
        return bad(u, why, "body.%s must be >= n", "best_of");
    req->best_of = best_of;

    req->sampling.presence_penalty = u->presence_penalty;
    req->sampling.frequency_penalty = u->frequency_penalty;
    req->sampling.logit_bias = u->n_bias ? u->bias : NULL;
    req->sampling.n_logit_bias = u->n_bias;
    req->key_id = u->custom_id;
    req->key_id_len = u->custom_id_len;
    req->keep_space = true;
    int rc = blurb_tokenizer_encode(ob->tok, prompt->valuestring, strlen(prompt->valuestring), false, &req->prompt,
                                    &req->n_prompt, why);
    if (rc == BLURB_E_NOMEM) return rc;
    if (rc) return refuse(u, "invalid_request", BLURB_E_FORMAT, why, why->msg);
    return 0;
}

static int line_head(strbuf *b, const blurb_record *rec, const ob_line *u) {
    if (sb_printf(b, "{\"id\": \"" BLURB_OPENAI_BATCH_ID_PREFIX "%ld\", \"custom_id\": ", rec->line_no))
        return BLURB_E_NOMEM;
    if (u && u->custom_id) return sb_json_string(b, u->custom_id, u->custom_id_len);
    return sb_puts(b, "null");
}

/* A token as the API names it: its text when its bytes are valid UTF-8 on
 * their own, else "bytes:" and each byte as \xNN (as OpenAI writes a partial
 * character). */
static int put_token(strbuf *b, const blurb_tokenizer *tok, int32_t id) {
    size_t n = 0;
    const char *t = blurb_tokenizer_token_bytes(tok, id, &n);
    if (!t) return sb_puts(b, "null");
    if (blurb_utf8_valid(t, n, NULL)) return sb_json_string(b, t, n);
    if (sb_puts(b, "\"bytes:")) return BLURB_E_NOMEM;
    for (size_t i = 0; i < n; i++)
        if (sb_printf(b, "\\\\x%02x", (unsigned)(unsigned char)t[i])) return BLURB_E_NOMEM;
    return sb_putc(b, '"');
}

static int put_lp(strbuf *b, float lp) {
    if (!isfinite(lp)) return sb_puts(b, "null");
    char buf[64];
    snprintf(buf, sizeof buf, "%.4f", (double)lp);
    return sb_puts(b, strcmp(buf, "-0.0000") == 0 ? "0.0000" : buf);
}

/* The legacy completions "logprobs" object of one choice. */
static int put_logprobs(strbuf *b, const blurb_openai_batch *ob, const blurb_job_request *req,
                        const blurb_job_sample *o) {
    const int k = req->top_logprobs, eos = req->sampling.eos_token_id;
    int rc = sb_puts(b, "{\"tokens\": [");
    for (int t = 0; !rc && t < o->tokens; t++) rc = (t && sb_puts(b, ", ")) || put_token(b, ob->tok, o->ids[t]);
    if (!rc) rc = sb_puts(b, "], \"token_logprobs\": [");
    for (int t = 0; !rc && t < o->tokens; t++) rc = (t && sb_puts(b, ", ")) || put_lp(b, o->lps[t]);
    if (!rc) rc = sb_puts(b, k ? "], \"top_logprobs\": [" : "], \"top_logprobs\": null");
    for (int t = 0; !rc && k && t < o->tokens; t++) {
        const int32_t *ids = o->top_ids + (size_t)t * (size_t)k;
        const float *lps = o->top_lps + (size_t)t * (size_t)k;
        bool drawn_listed = false;
        rc = sb_puts(b, t ? ", {" : "{");
        for (int a = 0; !rc && a < k; a++) {
            drawn_listed |= ids[a] == o->ids[t];
            rc = (a && sb_puts(b, ", ")) || put_token(b, ob->tok, ids[a]) || sb_puts(b, ": ") || put_lp(b, lps[a]);
        }
        /* Like the API, the drawn token is always listed (up to k + 1 entries). */
        if (!rc && !drawn_listed)
            rc = sb_puts(b, ", ") || put_token(b, ob->tok, o->ids[t]) || sb_puts(b, ": ") || put_lp(b, o->lps[t]);
        if (!rc) rc = sb_putc(b, '}');
    }
    if (!rc && k) rc = sb_putc(b, ']');
    if (!rc) rc = sb_puts(b, ", \"text_offset\": [");
    /* The text as the job built it, token by token: a streaming detokenizer
     * releases complete characters and U+FFFD for bytes that cannot become
     * one, so the offsets index the choice's text. */
    blurb_detok *d = rc ? NULL : blurb_detok_new(ob->tok);
    if (!rc && !d) rc = BLURB_E_NOMEM;
    char *txt = NULL;
    size_t txt_len = 0, txt_cap = 0, seen = 0;
    long off = 0;
    blurb_err e;
    for (int t = 0; !rc && t < o->tokens; t++) {
        rc = sb_printf(b, t ? ", %ld" : "%ld", off);
        if (!rc && o->ids[t] != eos && blurb_detok_push(d, o->ids[t], &txt, &txt_len, &txt_cap, &e) == BLURB_E_NOMEM)
            rc = BLURB_E_NOMEM;
        for (; seen < txt_len; seen++) off += ((unsigned char)txt[seen] & 0xC0) != 0x80;
    }
    free(txt);
    blurb_detok_free(d);
    if (!rc) rc = sb_puts(b, "]}");
    return rc ? BLURB_E_NOMEM : 0;
}

static int format(void *ctx, const blurb_record *rec, const blurb_job_request *req, const blurb_job_sample *outs,
                  char **line, size_t *len) {
    blurb_openai_batch *ob = ctx;
    const ob_line *u = req->user;
    strbuf b = {0};
    long long gen = 0;
    int rc = line_head(&b, rec, u);
    if (!rc)
        rc = sb_printf(&b,
                       ", \"response\": {\"status_code\": 200, \"request_id\": \"%ld\", \"body\": "
                       "{\"object\": \"text_completion\", \"model\": ",
                       rec->line_no);
    if (!rc) rc = sb_json_string(&b, ob->model_name, strlen(ob->model_name));
    if (!rc) rc = sb_puts(&b, ", \"choices\": [");
    for (int s = 0; !rc && s < req->n_samples; s++) {
        gen += outs[s].tokens;
        rc = sb_printf(&b, "%s{\"index\": %d, \"text\": ", s ? ", " : "", s);
        if (!rc) rc = sb_json_string(&b, outs[s].text, outs[s].len);
        if (!rc)
            rc = sb_printf(&b, ", \"finish_reason\": \"%s\", \"logprobs\": ", outs[s].stopped ? "stop" : "length");
        if (!rc) rc = req->logprobs && outs[s].ids ? put_logprobs(&b, ob, req, &outs[s]) : sb_puts(&b, "null");
        if (!rc) rc = sb_putc(&b, '}');
    }
    if (!rc)
        rc = sb_printf(&b,
                       "], \"usage\": {\"prompt_tokens\": %zu, \"completion_tokens\": %lld, \"total_tokens\": %lld}}}, "
                       "\"error\": null}\n",
                       req->n_prompt, gen, (long long)req->n_prompt + gen);
    if (rc) {
        sb_free(&b);
        return BLURB_E_NOMEM;
    }
    *line = b.p;
    *len = b.len;
    return 0;
}

static int format_error(void *ctx, const blurb_record *rec, void *user, int code, const char *reason, char **line,
                        size_t *len) {
    (void)ctx;
    (void)code;
    const ob_line *u = user;
    /* No per-line data: prepare never ran, so the line itself did not parse. */
    const char *c = !u ? "invalid_json" : u->code ? u->code : "invalid_request";
    strbuf b = {0};
    int rc = line_head(&b, rec, u);
    if (!rc) rc = sb_printf(&b, ", \"response\": null, \"error\": {\"code\": \"%s\", \"message\": ", c);
    if (!rc) rc = sb_json_string(&b, reason, strlen(reason));
    if (!rc) rc = sb_puts(&b, "}}\n");
    if (rc) {
        sb_free(&b);
        return BLURB_E_NOMEM;
    }
    *line = b.p;
    *len = b.len;
    return 0;
}

blurb_job_hooks blurb_openai_batch_hooks(blurb_openai_batch *ob) {
    blurb_job_hooks h;
    memset(&h, 0, sizeof h);
    h.ctx = ob;
    h.prepare = prepare;
    h.format = format;
    h.format_error = format_error;
    h.free_user = line_free;
    return h;
}
