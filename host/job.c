#include "blurb/job.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "blurb/utf8.h"
#include "strbuf.h"

blurb_job_opts blurb_job_opts_default(void) {
    blurb_job_opts o;
    memset(&o, 0, sizeof o);
    o.n_samples = 1;
    o.max_new_tokens = 128;
    o.sampling = blurb_sampling_default();
    o.prefill_chunk = 512;
    o.step_tokens = 4096;
    return o;
}

int blurb_job_check(const blurb_job_opts *o, blurb_err *err) {
    if (!o->tmpl) return blurb_seterr(err, BLURB_E_INVALID, "no prompt template given");
    if (o->n_samples < 1) return blurb_seterr(err, BLURB_E_INVALID, "--n must be >= 1 (got %d)", o->n_samples);
    if (o->max_new_tokens < 1)
        return blurb_seterr(err, BLURB_E_INVALID, "--max-new-tokens must be >= 1 (got %d)", o->max_new_tokens);
    if (o->batch < 0) return blurb_seterr(err, BLURB_E_INVALID, "--batch must be >= 0 (got %d)", o->batch);
    if (o->prefill_chunk < 0 || o->step_tokens < 0)
        return blurb_seterr(err, BLURB_E_INVALID, "prefill_chunk and step_tokens must be >= 0");
    if (o->n_stops < 0 || (o->n_stops > 0 && !o->stops))
        return blurb_seterr(err, BLURB_E_INVALID, "bad stop string list");
    for (int i = 0; i < o->n_stops; i++) {
        if (!o->stops[i] || !o->stops[i][0])
            return blurb_seterr(err, BLURB_E_INVALID, "--stop: a stop string must not be empty");
        size_t bad;
        if (!blurb_utf8_valid(o->stops[i], strlen(o->stops[i]), &bad))
            return blurb_seterr(err, BLURB_E_INVALID, "--stop '%s': invalid UTF-8 at byte %zu", o->stops[i], bad);
    }
    if (o->decode_steps < 0 || o->decode_steps > 1024)
        return blurb_seterr(err, BLURB_E_INVALID, "--decode-steps must be in 0..1024 (got %d)", o->decode_steps);
    if (o->best_of < 0 || (o->best_of > 0 && o->best_of < o->n_samples))
        return blurb_seterr(err, BLURB_E_INVALID, "--best-of must be >= --n (got %d and %d)", o->best_of,
                            o->n_samples);
    if (o->n_ban_words < 0 || (o->n_ban_words > 0 && !o->ban_words))
        return blurb_seterr(err, BLURB_E_INVALID, "bad banned phrase list");
    for (int i = 0; i < o->n_ban_words; i++) {
        if (!o->ban_words[i] || !o->ban_words[i][0])
            return blurb_seterr(err, BLURB_E_INVALID, "--ban-words: phrase %d is empty", i + 1);
        size_t bad;
        if (!blurb_utf8_valid(o->ban_words[i], strlen(o->ban_words[i]), &bad))
            return blurb_seterr(err, BLURB_E_INVALID, "--ban-words: phrase %d: invalid UTF-8 at byte %zu", i + 1,
                                bad);
    }
    if (o->sampling.n_exclude != 0)
        return blurb_seterr(err, BLURB_E_INVALID, "the job's sampling must not carry a token exclusion list");
    return blurb_sampling_check(&o->sampling, err);
}

/* ---- per-record and per-sequence state ---------------------------------------- */

typedef struct sample_out {
    char *text;          /* trimmed, owned */
    size_t len;
    int tokens;
    bool stopped;        /* finish_reason "stop" (EOS or stop string), else "length" */
    double sum_logprob;
    int32_t *ids;        /* [tokens] with req.logprobs, owned */
    float *lps;          /* [tokens] with req.logprobs, owned */
    int32_t *top_ids;    /* [tokens][req.top_logprobs] when > 0, owned */
    float *top_lps;
} sample_out;

typedef struct rec_state {
    bool done;           /* output line ready */
    const blurb_catalog_line *src;
    blurb_record rec;    /* id and line; root freed once the prompt is built */
    int32_t *prompt;
    int n_prompt;
    int max_gen;         /* max_new_tokens capped by n_ctx - n_prompt */
    int next_sample;     /* next sample index to start */
    int samples_left;    /* samples not finished */
    sample_out *outs;    /* [n_draw] */
    int n_draw;          /* sequences drawn: max(best_of, req.n_samples) */
    strbuf line;         /* the output line, once done */
    blurb_job_request req; /* this record's options (prompt moved to `prompt`) */
} rec_state;

typedef struct seq {
    bool active;
    size_t rec;
    int sample;
    uint64_t key;
    int fed;             /* prompt tokens fed so far */
    int n_generated;
    int32_t next_token;  /* last drawn token, fed in the next step */
    double sum_logprob;
    strbuf text;         /* detokenized so far (may lack the NUL terminator) */
    blurb_detok *detok;
    int chunk;           /* tokens fed in the current step, 0 when not in it */
    strbuf raw;          /* raw bytes of the generated tokens (ban words) */
    int32_t *excl;       /* tokens refused at this step (ban words) */
    int n_excl, cap_excl;
    int32_t *ids;        /* generated ids and their logprobs (req.logprobs) */
    float *lps;
    int32_t *top_ids;    /* [cap_ids][top_logprobs] alternatives (req.top_logprobs) */
    float *top_lps;
    int cap_ids;
} seq;

typedef struct job {
    blurb_backend *be;
    const blurb_tokenizer *tok;
    const blurb_catalog *cat;
    const blurb_job_opts *o;
    FILE *out;
    rec_state **recs;    /* [n_records]; NULL before preparation and after writing */
    size_t n_records;
    size_t next_admit;   /* first record not fully started */
    size_t next_write;   /* first record not yet written */
    seq *seqs;           /* [n_slots] */
    int n_slots;
    blurb_job_stats st;
    struct timespec t0;
    size_t max_stop_len;
    float *row;          /* [vocab_size] one logits row, for top logprobs */
    int decode_steps;    /* most decode steps per backend call */
    size_t max_tok_bytes; /* bytes of the vocabulary's longest token */
    int32_t *feed;       /* [n_slots] first tokens of a multi-step decode */
    char **ban;          /* banned phrases, ASCII lower-cased */
    size_t *ban_len;
    int n_ban;
} job;

static double now_since(const struct timespec *t0) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)(t.tv_sec - t0->tv_sec) + 1e-9 * (double)(t.tv_nsec - t0->tv_nsec);
}

static void rec_free(const job *j, rec_state *r) {
    if (!r) return;
    const blurb_job_hooks *h = j->o->hooks;
    if (h && h->free_user && r->req.user) h->free_user(h->ctx, r->req.user);
    free(r->req.prompt);
    blurb_record_clear(&r->rec);
    free(r->prompt);
    if (r->outs)
        for (int i = 0; i < r->n_draw; i++) {
            free(r->outs[i].text);
            free(r->outs[i].ids);
            free(r->outs[i].lps);
            free(r->outs[i].top_ids);
            free(r->outs[i].top_lps);
        }
    free(r->outs);
    sb_free(&r->line);
    free(r);
}

static int line_head(strbuf *b, const rec_state *r) {
    return sb_printf(b, "{\"id\": %s, \"line\": %ld, ", r->rec.id_json, r->rec.line_no);
}

/* Makes r an error record with the given reason. */
static int rec_fail(job *j, rec_state *r, int code, const char *reason) {
    r->line.len = 0;
    const blurb_job_hooks *h = j->o->hooks;
    if (h && h->format_error) {
        char *line = NULL;
        size_t len = 0;
        int rc = h->format_error(h->ctx, &r->rec, r->req.user, code, reason, &line, &len);
        if (!rc) rc = sb_put(&r->line, line, len);
        free(line);
        if (rc) return BLURB_E_NOMEM;
    } else if (line_head(&r->line, r) || sb_puts(&r->line, "\"error\": ") ||
        sb_json_string(&r->line, reason, strlen(reason)) || sb_put(&r->line, "}\n", 2))
        return BLURB_E_NOMEM;
    r->done = true;
    j->st.errors++;
    j->st.records++;
    return 0;
}

/* rec_fail for a bad record: only running out of memory fails the job. */
static int rec_bad_code(job *j, rec_state *r, int code, const char *reason, blurb_err *err) {
    if (rec_fail(j, r, code, reason)) return blurb_seterr(err, BLURB_E_NOMEM, "out of memory at line %ld", r->rec.line_no);
    return 0;
}

static int rec_bad(job *j, rec_state *r, const char *reason, blurb_err *err) {
    return rec_bad_code(j, r, BLURB_E_FORMAT, reason, err);
}

/* Parses, renders and tokenizes record i. Bad input makes an error record (rc 0);
 * only running out of memory fails. */
static int rec_prepare(job *j, size_t i, blurb_err *err) {
    rec_state *r = calloc(1, sizeof *r);
    if (!r) return blurb_seterr(err, BLURB_E_NOMEM, "out of memory");
    j->recs[i] = r;
    r->src = &j->cat->lines[i];
    blurb_err why;
    blurb_err_clear(&why);
    int rc = blurb_record_parse(j->cat->data + r->src->off, r->src->len, r->src->line_no, &r->rec, &why);
    blurb_job_request *q = &r->req;
    q->sampling = j->o->sampling;
    q->n_samples = j->o->n_samples;
    q->max_new_tokens = j->o->max_new_tokens;
    q->seed = j->o->seed;
    q->key_id = r->rec.id_key;
    q->key_id_len = r->rec.id_key_len;
    q->stops = j->o->stops;
    q->n_stops = j->o->n_stops;
    q->logprobs = j->o->logprobs;
    if (rc == BLURB_E_NOMEM) return blurb_seterr(err, rc, "line %ld: %s", r->src->line_no, why.msg);
    if (rc) return rec_bad(j, r, why.msg, err);

    size_t n_ids = 0;
    const blurb_job_hooks *h = j->o->hooks;
    if (h && h->prepare) {
        rc = h->prepare(h->ctx, &r->rec, q, &why);
        if (rc == BLURB_E_NOMEM) return blurb_seterr(err, rc, "line %ld: %s", r->src->line_no, why.msg);
        if (rc) return rec_bad_code(j, r, rc, why.msg, err);
        q->sampling.eos_token_id = j->o->sampling.eos_token_id;
        r->prompt = q->prompt;
        n_ids = q->n_prompt;
        q->prompt = NULL;
        /* A hook's values are checked like the command line's, but a bad one
         * only makes this record an error record. */
        if (q->n_samples < 1 || q->max_new_tokens < 1 || q->n_stops < 0 || (q->n_stops && !q->stops))
            return rec_bad_code(j, r, BLURB_E_INVALID, "n and max_tokens must be >= 1", err);
        if (q->best_of < 0 || (q->best_of > 0 && q->best_of < q->n_samples) || q->best_of > 1024)
            return rec_bad_code(j, r, BLURB_E_INVALID, "best_of must be >= n (and at most 1024)", err);
        if (q->top_logprobs < 0 || q->top_logprobs > BLURB_MAX_TOP_LOGPROBS || (q->top_logprobs && !q->logprobs))
            return rec_bad_code(j, r, BLURB_E_INVALID, "top logprobs must be 0..5, with logprobs on", err);
        if (blurb_sampling_check(&q->sampling, &why)) return rec_bad_code(j, r, BLURB_E_INVALID, why.msg, err);
        for (int k = 0; k < q->n_stops; k++)
            if (!q->stops[k] || !q->stops[k][0])
                return rec_bad_code(j, r, BLURB_E_INVALID, "a stop string must not be empty", err);
    } else {
        char *prompt = NULL;
        size_t prompt_len = 0;
        rc = blurb_template_render(j->o->tmpl, &r->rec, &prompt, &prompt_len, &why);
        if (rc == BLURB_E_NOMEM) return blurb_seterr(err, rc, "line %ld: %s", r->src->line_no, why.msg);
        if (rc) return rec_bad(j, r, why.msg, err);

        /* No token is longer than max_tok_bytes: a longer prompt cannot fit,
         * and encoding megabytes only to say so would cost memory and time. */
        if (j->max_tok_bytes > 0 && prompt_len / j->max_tok_bytes > (size_t)j->be->n_ctx) {
            char reason[256];
            snprintf(reason, sizeof reason, "prompt too long: %zu bytes are more than the context of %d tokens holds",
                     prompt_len, j->be->n_ctx);
            free(prompt);
            return rec_bad(j, r, reason, err);
        }
        rc = blurb_tokenizer_encode(j->tok, prompt, prompt_len, false, &r->prompt, &n_ids, &why);
        free(prompt);
        if (rc == BLURB_E_NOMEM) return blurb_seterr(err, rc, "line %ld: %s", r->src->line_no, why.msg);
        if (rc) return rec_bad(j, r, why.msg, err);
    }
    /* The JSON tree is not needed any more; only the id stays. */
    cJSON_Delete(r->rec.root);
    r->rec.root = NULL;
    free(r->rec.nums);
    r->rec.nums = NULL;
    r->rec.n_nums = 0;

    int n_ctx = j->be->n_ctx;
    int need = q->sampling.min_new_tokens > 1 ? q->sampling.min_new_tokens : 1;
    char reason[256];
    if (n_ids == 0) return rec_bad(j, r, "the prompt is empty (0 tokens)", err);
    if (n_ids > (size_t)n_ctx || (int)n_ids + need > n_ctx) {
        snprintf(reason, sizeof reason,
                 "prompt too long: %zu tokens + %d new token%s exceed the context of %d tokens", n_ids, need,
                 need == 1 ? "" : "s", n_ctx);
        return rec_bad(j, r, reason, err);
    }
    r->n_prompt = (int)n_ids;
    r->max_gen = n_ctx - r->n_prompt < q->max_new_tokens ? n_ctx - r->n_prompt : q->max_new_tokens;
    const int best_of = q->best_of > 0 ? q->best_of : j->o->best_of;
    r->n_draw = best_of > q->n_samples ? best_of : q->n_samples;
    r->samples_left = r->n_draw;
    r->outs = calloc((size_t)r->n_draw, sizeof *r->outs);
    if (!r->outs) return blurb_seterr(err, BLURB_E_NOMEM, "out of memory");
    j->st.prompt_tokens += r->n_prompt;
    return 0;
}

static void format_logprob(char *buf, size_t size, double mean) {
    if (!isfinite(mean)) {
        snprintf(buf, size, "null");
        return;
    }
    snprintf(buf, size, "%.4f", mean);
    if (strcmp(buf, "-0.0000") == 0) snprintf(buf, size, "0.0000");
}

static double out_mean(const sample_out *o) { return o->tokens ? o->sum_logprob / o->tokens : NAN; }

/* Whether sample a ranks before sample b for best-of: higher mean first,
 * a non-finite mean last, ties to the lower index. */
static bool ranks_before(const rec_state *r, int a, int b) {
    double ma = out_mean(&r->outs[a]), mb = out_mean(&r->outs[b]);
    bool fa = isfinite(ma), fb = isfinite(mb);
    if (fa != fb) return fa;
    if (fa && ma != mb) return ma > mb;
    return a < b;
}

static int put_logprobs(strbuf *b, const sample_out *o) {
    if (sb_puts(b, ", \"logprobs\": {\"token_ids\": [")) return BLURB_E_NOMEM;
    for (int t = 0; t < o->tokens; t++)
        if (sb_printf(b, t ? ", %d" : "%d", (int)o->ids[t])) return BLURB_E_NOMEM;
    if (sb_puts(b, "], \"token_logprobs\": [")) return BLURB_E_NOMEM;
    for (int t = 0; t < o->tokens; t++) {
        char lp[64];
        format_logprob(lp, sizeof lp, (double)o->lps[t]);
        if ((t && sb_put(b, ", ", 2)) || sb_puts(b, lp)) return BLURB_E_NOMEM;
    }
    return sb_puts(b, "]}") ? BLURB_E_NOMEM : 0;
}

/* The samples a record writes, best first with best-of, else in index
 * order: order[0..n_samples) of r->outs. */
static void rec_order(const rec_state *r, int *order) {
    for (int s = 0; s < r->n_draw; s++) {
        int k = s;
        if (r->n_draw > r->req.n_samples) /* insertion sort: n_draw is small */
            for (; k > 0 && ranks_before(r, s, order[k - 1]); k--) order[k] = order[k - 1];
        order[k] = s;
    }
}

static int rec_format_hook(job *j, rec_state *r, const int *order) {
    const blurb_job_hooks *h = j->o->hooks;
    blurb_job_sample *outs = calloc((size_t)r->req.n_samples, sizeof *outs);
    if (!outs) return BLURB_E_NOMEM;
    for (int i = 0; i < r->req.n_samples; i++) {
        const sample_out *o = &r->outs[order[i]];
        outs[i] = (blurb_job_sample){o->text, o->len, o->tokens, o->stopped, o->sum_logprob,
                                     o->ids, o->lps, o->top_ids, o->top_lps};
    }
    char *line = NULL;
    size_t len = 0;
    int rc = h->format(h->ctx, &r->rec, &r->req, outs, &line, &len);
    free(outs);
    if (!rc) rc = sb_put(&r->line, line, len);
    free(line);
    return rc ? BLURB_E_NOMEM : 0;
}

static int rec_format_default(rec_state *r, const int *order) {
    strbuf *b = &r->line;
    if (line_head(b, r) || sb_printf(b, "\"prompt_tokens\": %d, \"outputs\": [", r->n_prompt)) return BLURB_E_NOMEM;
    for (int i = 0; i < r->req.n_samples; i++) {
        const sample_out *o = &r->outs[order[i]];
        char lp[64];
        format_logprob(lp, sizeof lp, out_mean(o));
        if ((i && sb_put(b, ", ", 2)) || sb_puts(b, "{\"text\": ") || sb_json_string(b, o->text, o->len) ||
            sb_printf(b, ", \"tokens\": %d, \"finish_reason\": \"%s\", \"mean_logprob\": %s", o->tokens,
                      o->stopped ? "stop" : "length", lp) ||
            (r->req.logprobs && put_logprobs(b, o)) || sb_putc(b, '}'))
            return BLURB_E_NOMEM;
    }
    return sb_put(b, "]}\n", 3) ? BLURB_E_NOMEM : 0;
}

static int rec_finish(job *j, rec_state *r) {
    int order_buf[64];
    int *order = r->n_draw <= 64 ? order_buf : malloc((size_t)r->n_draw * sizeof *order);
    if (!order) return BLURB_E_NOMEM;
    rec_order(r, order);
    const blurb_job_hooks *h = j->o->hooks;
    int rc = h && h->format ? rec_format_hook(j, r, order) : rec_format_default(r, order);
    if (order != order_buf) free(order);
    if (rc) return rc;
    r->done = true;
    j->st.records++;
    return 0;
}

/* Writes every finished record at the head of the queue, in input order. */
static int write_ready(job *j, blurb_err *err) {
    while (j->next_write < j->n_records && j->recs[j->next_write] && j->recs[j->next_write]->done) {
        rec_state *r = j->recs[j->next_write];
        if (fwrite(r->line.p, 1, r->line.len, j->out) != r->line.len)
            return blurb_seterr(err, BLURB_E_IO, "writing the output failed at line %ld: %s", r->rec.line_no,
                                strerror(errno));
        rec_free(j, r);
        j->recs[j->next_write] = NULL;
        j->next_write++;
    }
    return 0;
}

/* Starts the next sequences in input order in every free slot. */
static int fill_slots(job *j, blurb_err *err) {
    for (int s = 0; s < j->n_slots; s++) {
        seq *q = &j->seqs[s];
        if (q->active) continue;
        while (j->next_admit < j->n_records) {
            size_t i = j->next_admit;
            if (!j->recs[i]) {
                int rc = rec_prepare(j, i, err);
                if (rc) return rc;
            }
            rec_state *r = j->recs[i];
            if (r->done || r->next_sample >= r->n_draw) {
                j->next_admit++;
                continue;
            }
            int rc = blurb_backend_reset(j->be, s, err);
            if (rc) return rc;
            q->active = true;
            q->rec = i;
            q->sample = r->next_sample++;
            q->key = blurb_stream_key(r->req.seed, r->req.key_id, r->req.key_id_len, (uint32_t)q->sample);
            q->fed = 0;
            q->n_generated = 0;
            q->sum_logprob = 0.0;
            q->text.len = 0;
            q->raw.len = 0;
            blurb_detok_reset(q->detok);
            if (r->next_sample == r->n_draw) j->next_admit++;
            break;
        }
    }
    return 0;
}

/* The earliest occurrence of any stop string that ends after byte `from`
 * of the text; returns its offset or -1. */
static long find_stop(const blurb_job_request *q, const strbuf *t, size_t from) {
    long best = -1;
    for (int k = 0; k < q->n_stops; k++) {
        const char *s = q->stops[k];
        size_t n = strlen(s);
        if (n > t->len) continue;
        size_t start = from >= n - 1 ? from - (n - 1) : 0;
        for (size_t p = start; p + n <= t->len; p++) {
            if (best >= 0 && (long)p >= best) break;
            if (t->p[p] == s[0] && memcmp(t->p + p, s, n) == 0) {
                best = (long)p;
                break;
            }
        }
    }
    return best;
}

static bool is_ascii_space(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

/* Ends sequence q: stores its sample output and frees its slot. */
static int seq_end(job *j, seq *q, bool stopped, blurb_err *err) {
    rec_state *r = j->recs[q->rec];
    sample_out *o = &r->outs[q->sample];
    size_t a = 0, e = q->text.len;
    while (!r->req.keep_space && a < e && is_ascii_space(q->text.p[a])) a++;
    while (!r->req.keep_space && e > a && is_ascii_space(q->text.p[e - 1])) e--;
    o->text = malloc(e - a + 1);
    if (!o->text) return blurb_seterr(err, BLURB_E_NOMEM, "out of memory");
    if (e > a) memcpy(o->text, q->text.p + a, e - a);
    o->text[e - a] = '\0';
    o->len = e - a;
    o->tokens = q->n_generated;
    o->stopped = stopped;
    o->sum_logprob = q->sum_logprob;
    if (r->req.logprobs) {
        /* The buffers move to the output; the sequence grows new ones. */
        o->ids = q->ids;
        o->lps = q->lps;
        o->top_ids = q->top_ids;
        o->top_lps = q->top_lps;
        q->ids = NULL;
        q->lps = NULL;
        q->top_ids = NULL;
        q->top_lps = NULL;
        q->cap_ids = 0;
    }
    q->active = false;
    if (--r->samples_left == 0 && rec_finish(j, r)) return blurb_seterr(err, BLURB_E_NOMEM, "out of memory");
    return 0;
}

/* Grows q's per-token logprob buffers to hold cap tokens (k alternatives each). */
static int seq_grow_logprobs(seq *q, int cap, int k) {
    int32_t *ids = realloc(q->ids, (size_t)cap * sizeof *ids);
    if (!ids) return BLURB_E_NOMEM;
    q->ids = ids;
    float *lps = realloc(q->lps, (size_t)cap * sizeof *lps);
    if (!lps) return BLURB_E_NOMEM;
    q->lps = lps;
    if (k > 0) {
        int32_t *ti = realloc(q->top_ids, (size_t)cap * (size_t)k * sizeof *ti);
        if (!ti) return BLURB_E_NOMEM;
        q->top_ids = ti;
        float *tl = realloc(q->top_lps, (size_t)cap * (size_t)k * sizeof *tl);
        if (!tl) return BLURB_E_NOMEM;
        q->top_lps = tl;
    }
    q->cap_ids = cap;
    return 0;
}

/* Takes the token drawn for q: stop checks, text, end of sequence. top_ids /
 * top_lps hold the step's req.top_logprobs alternatives (NULL when none). */
static int seq_take(job *j, seq *q, int32_t tok, float logprob, const int32_t *top_ids, const float *top_lps,
                    blurb_err *err) {
    rec_state *r = j->recs[q->rec];
    if (r->req.logprobs) {
        const int k = r->req.top_logprobs;
        if (q->n_generated >= q->cap_ids && seq_grow_logprobs(q, q->cap_ids ? 2 * q->cap_ids : 64, k))
            return blurb_seterr(err, BLURB_E_NOMEM, "out of memory at line %ld", r->rec.line_no);
        q->ids[q->n_generated] = tok;
        q->lps[q->n_generated] = logprob;
        if (k > 0) {
            memcpy(q->top_ids + (size_t)q->n_generated * (size_t)k, top_ids, (size_t)k * sizeof *top_ids);
            memcpy(q->top_lps + (size_t)q->n_generated * (size_t)k, top_lps, (size_t)k * sizeof *top_lps);
        }
    }
    q->n_generated++;
    q->sum_logprob += (double)logprob;
    j->st.generated_tokens++;
    int eos = r->req.sampling.eos_token_id;
    bool at_eos = eos >= 0 && tok == eos;
    size_t old = q->text.len;
    int rc = at_eos ? 0 : blurb_detok_push(q->detok, tok, &q->text.p, &q->text.len, &q->text.cap, err);
    if (rc) return blurb_err_prefix(err, "line %ld", r->rec.line_no);
    bool ending = at_eos || q->n_generated >= r->max_gen;
    if (ending) {
        /* Bytes of an unfinished character are released (as U+FFFD) or dropped. */
        rc = blurb_detok_flush(q->detok, &q->text.p, &q->text.len, &q->text.cap, err);
        if (rc) return blurb_err_prefix(err, "line %ld", r->rec.line_no);
    }
    long cut = r->req.n_stops ? find_stop(&r->req, &q->text, old) : -1;
    if (cut >= 0) {
        q->text.len = (size_t)cut;
        return seq_end(j, q, true, err);
    }
    if (ending) return seq_end(j, q, at_eos, err);
    q->next_token = tok;
    return 0;
}

/* ---- banned phrases --------------------------------------------------------- */

static inline unsigned char ascii_lower(unsigned char c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; }

static inline bool is_ascii_word(unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

/* Byte k of text [0, old) + add. */
#define AT(k) ((unsigned char)((k) < old ? text[(k)] : add[(k) - old]))

/* Whether the byte before p belongs to a word: an ASCII letter, digit or '_',
 * or the last byte of a valid multi-byte character (a stray byte, shown as
 * U+FFFD in the text, is a boundary). */
static bool word_before_at(const char *text, size_t old, const char *add, size_t p) {
    unsigned char c = AT(p - 1);
    if (c < 0x80) return is_ascii_word(c);
    size_t k = p - 1;
    while (k > 0 && p - k < 4 && (AT(k) & 0xC0) == 0x80) k--;
    char seq[4];
    size_t n = p - k;
    if (n < 2 || n > 4) return false;
    for (size_t i = 0; i < n; i++) seq[i] = (char)AT(k + i);
    return blurb_utf8_valid(seq, n, NULL);
}
#undef AT

/* Whether text [0, old) + add [0, n_add) holds a banned phrase starting at a
 * word boundary and ending inside add. Earlier matches cannot exist: every
 * token before was checked the same way. */
static bool ban_hit(const job *j, const char *text, size_t old, const char *add, size_t n_add) {
    size_t total = old + n_add;
#define AT(k) ((unsigned char)((k) < old ? text[(k)] : add[(k) - old]))
    for (int b = 0; b < j->n_ban; b++) {
        const char *ph = j->ban[b];
        size_t n = j->ban_len[b];
        if (n > total) continue;
        size_t start = old + 1 > n ? old + 1 - n : 0;
        for (size_t p = start; p + n <= total; p++) {
            if (ascii_lower(AT(p)) != (unsigned char)ph[0]) continue;
            if (p > 0 && word_before_at(text, old, add, p)) continue;
            size_t k = 1;
            while (k < n && ascii_lower(AT(p + k)) == (unsigned char)ph[k]) k++;
            if (k == n) return true;
        }
    }
#undef AT
    return false;
}

/* Refuses and redraws q's drawn token while it would complete a banned
 * phrase; see job.h. On return *tok / *lp hold the allowed draw, or
 * *all_refused is set when the sampler had nothing left to give. */
static int ban_redraw(job *j, seq *q, const blurb_sample_req *req, int32_t *tok, float *lp, bool *all_refused,
                      blurb_err *err) {
    blurb_sampling sp = *req->params; /* the record's own options */
    const int eos = sp.eos_token_id;
    q->n_excl = 0;
    for (;;) {
        if (*tok == eos) break;
        size_t n_add = 0;
        const char *add = blurb_tokenizer_token_bytes(j->tok, *tok, &n_add);
        if (!add || !ban_hit(j, q->raw.p, q->raw.len, add, n_add)) {
            if (add && n_add && sb_put(&q->raw, add, n_add))
                return blurb_seterr(err, BLURB_E_NOMEM, "out of memory");
            break;
        }
        for (int k = 0; k < q->n_excl; k++)
            if (q->excl[k] == *tok) { /* the sampler had nothing else left */
                *all_refused = true;
                return 0;
            }
        if (q->n_excl == q->cap_excl) {
            int cap = q->cap_excl ? 2 * q->cap_excl : 16;
            int32_t *e = realloc(q->excl, (size_t)cap * sizeof *e);
            if (!e) return blurb_seterr(err, BLURB_E_NOMEM, "out of memory");
            q->excl = e;
            q->cap_excl = cap;
        }
        q->excl[q->n_excl++] = *tok;
        sp.exclude = q->excl;
        sp.n_exclude = q->n_excl;
        blurb_sample_req one = *req;
        one.params = &sp;
        int rc = blurb_backend_sample(j->be, &one, 1, tok, lp, err);
        if (rc) return blurb_err_prefix(err, "redrawing a banned token (line %ld)", j->recs[q->rec]->rec.line_no);
    }
    return 0;
}

static void report(job *j, bool final) {
    if (!j->o->progress) return;
    blurb_job_progress p;
    p.records_done = j->st.records;
    p.records_total = (long)j->n_records;
    p.errors = j->st.errors;
    p.prompt_tokens = j->st.prompt_tokens;
    p.generated_tokens = j->st.generated_tokens;
    p.seconds = now_since(&j->t0);
    p.final = final;
    j->o->progress(j->o->progress_ctx, &p);
}

/* The k most likely tokens of logits row `row` (blurb_top_logprobs). The
 * drawn token's entry gets exactly its logprob `lp` from the sampler, so both
 * places of the output agree even where a backend's sampler rounds differently
 * from the host's. */
static int top_logprobs(job *j, int row, int k, int32_t tok, float lp, int32_t *ids, float *lps, blurb_err *err) {
    if (!j->row && !(j->row = malloc((size_t)j->be->vocab_size * sizeof *j->row)))
        return blurb_seterr(err, BLURB_E_NOMEM, "out of memory");
    int rc = blurb_backend_logits(j->be, row, j->row, err);
    if (rc) return rc;
    if (blurb_top_logprobs(j->row, j->be->vocab_size, k, ids, lps) != k)
        return blurb_seterr(err, BLURB_E_INVALID, "top logprobs: %d alternatives asked of a vocabulary of %d", k,
                            j->be->vocab_size);
    for (int t = 0; t < k; t++)
        if (ids[t] == tok) lps[t] = lp;
    return 0;
}

/* How many decode steps one backend call may run now: > 1 only when every
 * active sequence is decoding, none needs to see each draw at once (banned
 * phrases, top logprobs), and at most what the longest one still needs and
 * the fullest slot still holds. */
static int multi_steps(const job *j) {
    if (j->decode_steps <= 1 || j->n_ban) return 1;
    int n = 0, need = 0, room = j->be->n_ctx;
    for (int s = 0; s < j->n_slots; s++) {
        const seq *q = &j->seqs[s];
        if (!q->active) continue;
        const rec_state *r = j->recs[q->rec];
        if (q->fed < r->n_prompt || (r->req.logprobs && r->req.top_logprobs > 0)) return 1;
        n++;
        if (r->max_gen - q->n_generated > need) need = r->max_gen - q->n_generated;
        if (j->be->n_ctx - j->be->slot_len[s] < room) room = j->be->n_ctx - j->be->slot_len[s];
    }
    int k = j->decode_steps;
    if (need < k) k = need;
    if (room < k) k = room;
    return n > 0 && k > 1 ? k : 1;
}

/* k decode steps of every active sequence in one backend call; the draws are
 * then taken step by step as step() would have taken them. */
static int step_multi(job *j, int k, blurb_sample_req *reqs, int *req_seq, int32_t *toks, float *lps, blurb_err *err) {
    int n = 0;
    for (int s = 0; s < j->n_slots; s++) {
        seq *q = &j->seqs[s];
        if (!q->active) continue;
        j->feed[n] = q->next_token;
        reqs[n] = (blurb_sample_req){n, s, &j->recs[q->rec]->req.sampling, q->key, q->n_generated};
        req_seq[n++] = s;
    }
    int rc = blurb_backend_decode(j->be, j->feed, reqs, n, k, toks, lps, err);
    if (rc) return blurb_err_prefix(err, "decoding %d sequences for %d steps", n, k);
    for (int t = 0; t < k; t++)
        for (int i = 0; i < n; i++) {
            seq *q = &j->seqs[req_seq[i]];
            if (!q->active) continue; /* ended at an earlier step: the rest is dropped */
            rc = seq_take(j, q, toks[(size_t)t * n + i], lps[(size_t)t * n + i], NULL, NULL, err);
            if (rc) return rc;
        }
    return 0;
}

/* One forward + sample over every active sequence (or several decode steps
 * at once, see multi_steps). */
static int step(job *j, blurb_chunk *chunks, int *chunk_seq, blurb_sample_req *reqs, int *req_seq, int32_t *toks,
                float *lps, blurb_err *err) {
    const int k = multi_steps(j);
    if (k > 1) return step_multi(j, k, reqs, req_seq, toks, lps, err);
    int n_chunks = 0, n_tokens = 0;
    int prefill_chunk = j->o->prefill_chunk > 0 ? j->o->prefill_chunk : j->be->n_ctx;
    /* Decode steps first: one token each, never held back. */
    for (int s = 0; s < j->n_slots; s++) {
        seq *q = &j->seqs[s];
        q->chunk = 0;
        if (!q->active || q->fed < j->recs[q->rec]->n_prompt) continue;
        chunks[n_chunks] = (blurb_chunk){s, &q->next_token, 1};
        chunk_seq[n_chunks++] = s;
        q->chunk = 1;
        n_tokens++;
    }
    /* Then prompt chunks, cut at fixed offsets (never by what else runs, so a
     * prompt's logits do not depend on the batch), until the step is full. */
    for (int s = 0; s < j->n_slots; s++) {
        seq *q = &j->seqs[s];
        if (!q->active || q->chunk) continue;
        rec_state *r = j->recs[q->rec];
        int c = r->n_prompt - q->fed < prefill_chunk ? r->n_prompt - q->fed : prefill_chunk;
        if (j->o->step_tokens > 0 && n_chunks > 0 && n_tokens + c > j->o->step_tokens) continue;
        chunks[n_chunks] = (blurb_chunk){s, r->prompt + q->fed, c};
        chunk_seq[n_chunks++] = s;
        q->chunk = c;
        n_tokens += c;
    }
    if (n_chunks == 0) return 0;
    int rc = blurb_backend_forward(j->be, chunks, n_chunks, false, err);
    if (rc) return blurb_err_prefix(err, "forward of %d sequences (first: line %ld)", n_chunks,
                                    j->recs[j->seqs[chunk_seq[0]].rec]->rec.line_no);
    int n_reqs = 0;
    for (int i = 0; i < n_chunks; i++) {
        seq *q = &j->seqs[chunk_seq[i]];
        rec_state *r = j->recs[q->rec];
        if (q->fed < r->n_prompt) q->fed += q->chunk;
        if (q->fed < r->n_prompt) continue; /* more prompt to come: these logits are not used */
        reqs[n_reqs] = (blurb_sample_req){i, chunk_seq[i], &r->req.sampling, q->key, q->n_generated};
        req_seq[n_reqs++] = chunk_seq[i];
    }
    if (n_reqs == 0) return 0;
    rc = blurb_backend_sample(j->be, reqs, n_reqs, toks, lps, err);
    if (rc) return blurb_err_prefix(err, "sampling %d sequences", n_reqs);
    for (int i = 0; i < n_reqs; i++) {
        seq *q = &j->seqs[req_seq[i]];
        if (j->n_ban) {
            bool all_refused = false;
            rc = ban_redraw(j, q, &reqs[i], &toks[i], &lps[i], &all_refused, err);
            if (rc) return rc;
            if (all_refused) {
                rc = seq_end(j, q, true, err);
                if (rc) return rc;
                continue;
            }
        }
        rec_state *r = j->recs[q->rec];
        int32_t top_ids[BLURB_MAX_TOP_LOGPROBS];
        float top_lps[BLURB_MAX_TOP_LOGPROBS];
        const int k = r->req.logprobs ? r->req.top_logprobs : 0;
        if (k > 0) {
            rc = top_logprobs(j, reqs[i].row, k, toks[i], lps[i], top_ids, top_lps, err);
            if (rc) return blurb_err_prefix(err, "line %ld", r->rec.line_no);
        }
        rc = seq_take(j, q, toks[i], lps[i], k ? top_ids : NULL, k ? top_lps : NULL, err);
        if (rc) return rc;
    }
    return 0;
}

int blurb_job_run(blurb_backend *be, const blurb_tokenizer *tok, const blurb_catalog *cat,
                  const blurb_job_opts *o, FILE *out, blurb_job_stats *stats, blurb_err *err) {
    if (stats) memset(stats, 0, sizeof *stats);
    int rc = blurb_job_check(o, err);
    if (rc) return rc;
    job j;
    memset(&j, 0, sizeof j);
    clock_gettime(CLOCK_MONOTONIC, &j.t0);
    j.be = be;
    j.tok = tok;
    j.cat = cat;
    j.o = o;
    j.out = out;
    j.n_records = cat->n_lines;
    j.n_slots = be->n_slots;
    if (o->batch > 0 && o->batch < j.n_slots) j.n_slots = o->batch;
    if (j.n_slots < 1) return blurb_seterr(err, BLURB_E_INVALID, "the backend has no sequence slots");

    blurb_chunk *chunks = NULL;
    blurb_sample_req *reqs = NULL;
    int *chunk_seq = NULL, *req_seq = NULL;
    int32_t *toks = NULL;
    float *lps = NULL;
    j.recs = calloc(j.n_records ? j.n_records : 1, sizeof *j.recs);
    j.seqs = calloc((size_t)j.n_slots, sizeof *j.seqs);
    chunks = calloc((size_t)j.n_slots, sizeof *chunks);
    reqs = calloc((size_t)j.n_slots, sizeof *reqs);
    chunk_seq = calloc((size_t)j.n_slots, sizeof *chunk_seq);
    req_seq = calloc((size_t)j.n_slots, sizeof *req_seq);
    for (int32_t id = 0; id < be->vocab_size; id++) {
        size_t n = 0;
        if (blurb_tokenizer_token_bytes(tok, id, &n) && n > j.max_tok_bytes) j.max_tok_bytes = n;
    }
    j.decode_steps = o->decode_steps > 0 ? o->decode_steps : be->decode_steps > 0 ? be->decode_steps : 1;
    toks = calloc((size_t)j.n_slots * (size_t)j.decode_steps, sizeof *toks);
    lps = calloc((size_t)j.n_slots * (size_t)j.decode_steps, sizeof *lps);
    j.feed = calloc((size_t)j.n_slots, sizeof *j.feed);
    if (!j.recs || !j.seqs || !chunks || !reqs || !chunk_seq || !req_seq || !toks || !lps || !j.feed) {
        rc = blurb_seterr(err, BLURB_E_NOMEM, "out of memory for %zu records", j.n_records);
        goto done;
    }
    for (int s = 0; s < j.n_slots; s++)
        if (!(j.seqs[s].detok = blurb_detok_new(tok))) {
            rc = blurb_seterr(err, BLURB_E_NOMEM, "out of memory");
            goto done;
        }
    if (o->n_ban_words > 0) {
        j.ban = calloc((size_t)o->n_ban_words, sizeof *j.ban);
        j.ban_len = calloc((size_t)o->n_ban_words, sizeof *j.ban_len);
        if (!j.ban || !j.ban_len) {
            rc = blurb_seterr(err, BLURB_E_NOMEM, "out of memory");
            goto done;
        }
        for (int b = 0; b < o->n_ban_words; b++) {
            size_t n = strlen(o->ban_words[b]);
            if (!(j.ban[b] = malloc(n + 1))) {
                rc = blurb_seterr(err, BLURB_E_NOMEM, "out of memory");
                goto done;
            }
            for (size_t k = 0; k <= n; k++) j.ban[b][k] = (char)ascii_lower((unsigned char)o->ban_words[b][k]);
            j.ban_len[b] = n;
            j.n_ban = b + 1;
        }
    }

    while (j.next_write < j.n_records) {
        rc = fill_slots(&j, err);
        if (!rc) rc = write_ready(&j, err);
        if (!rc) rc = step(&j, chunks, chunk_seq, reqs, req_seq, toks, lps, err);
        if (!rc) rc = write_ready(&j, err);
        if (rc) goto done;
        report(&j, false);
    }
    if (fflush(out) != 0) rc = blurb_seterr(err, BLURB_E_IO, "writing the output failed: %s", strerror(errno));

done:
    j.st.seconds = now_since(&j.t0);
    if (!rc) report(&j, true);
    if (stats) *stats = j.st;
    for (size_t i = 0; j.recs && i < j.n_records; i++) rec_free(&j, j.recs[i]);
    for (int s = 0; j.seqs && s < j.n_slots; s++) {
        blurb_detok_free(j.seqs[s].detok);
        sb_free(&j.seqs[s].text);
        sb_free(&j.seqs[s].raw);
        free(j.seqs[s].excl);
        free(j.seqs[s].ids);
        free(j.seqs[s].lps);
        free(j.seqs[s].top_ids);
        free(j.seqs[s].top_lps);
    }
    free(j.row);
    free(j.feed);
    for (int b = 0; b < j.n_ban; b++) free(j.ban[b]);
    free(j.ban);
    free(j.ban_len);
    free(j.recs);
    free(j.seqs);
    free(chunks);
    free(reqs);
    free(chunk_seq);
    free(req_seq);
    free(toks);
    free(lps);
    return rc;
}

static void format_hms(char *buf, size_t size, double s) {
    if (!isfinite(s) || s < 0) {
        snprintf(buf, size, "?");
        return;
    }
    long t = (long)(s + 0.5);
    snprintf(buf, size, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
}

void blurb_job_progress_format(const blurb_job_progress *p, char *buf, size_t size) {
    char eta[32];
    if (p->records_done > 0 && p->seconds > 0)
        format_hms(eta, sizeof eta, p->seconds / (double)p->records_done * (double)(p->records_total - p->records_done));
    else
        snprintf(eta, sizeof eta, "?");
    double tps = p->seconds > 0 ? (double)p->generated_tokens / p->seconds : 0.0;
    snprintf(buf, size, "%ld/%ld records (%ld error%s), %lld tokens, %.1f tok/s, ETA %s", p->records_done,
             p->records_total, p->errors, p->errors == 1 ? "" : "s", p->generated_tokens, tps, eta);
}

void blurb_job_summary_format(const blurb_job_stats *s, char *buf, size_t size) {
    double tps = s->seconds > 0 ? (double)s->generated_tokens / s->seconds : 0.0;
    snprintf(buf, size,
             "%ld records (%ld error%s), %lld prompt tokens, %lld generated tokens, %.1f s, %.1f generated tok/s",
             s->records, s->errors, s->errors == 1 ? "" : "s", s->prompt_tokens, s->generated_tokens, s->seconds, tps);
}
