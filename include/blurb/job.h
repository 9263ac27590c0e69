/* The job of `blurb generate`: a catalog in, one JSON line of descriptions per
 * record out, with continuous batching over the backend's sequence slots.
 *
 * Each (record, sample index) is one sequence. Up to `batch` sequences are in
 * flight; a free slot takes the next sequence in input order, prefills its
 * prompt (in fixed chunks of `prefill_chunk` tokens, so a prompt is always cut
 * the same way), then every step decodes one token for every active sequence
 * with one blurb_backend_forward and one blurb_backend_sample. A sequence ends
 * at EOS (the model config's eos_token_id), at a stop string (matched on the
 * detokenized text, so it may span tokens, and cut from the text), or after
 * max_new_tokens tokens or when prompt + new tokens reach n_ctx; its slot is
 * then reset and refilled.
 *
 * Randomness: the draw of sample s of a record at step t uses the Philox stream
 * blurb_stream_key(seed, record id text, s) at counter t (sampler.h), and the
 * backend promises logits that do not depend on the other rows of a batch. So
 * a record's output depends only on the model, its prompt, the options and the
 * seed: never on the batch size, the input order or its neighbours.
 *
 * Output (one line per non-blank input line, strictly in input order; a record
 * that finishes early waits until all earlier ones are written). Exact bytes:
 *   {"id": ID, "line": L, "prompt_tokens": P, "outputs": [O, O, ...]}\n
 *   O = {"text": TEXT, "tokens": N, "finish_reason": "stop"|"length", "mean_logprob": X}
 *   {"id": ID, "line": L, "error": REASON}\n
 * with ", " between members and ": " after keys, members in this order and no
 * other spaces. ID is the record's id as blurb_record holds it (a JSON string,
 * the number text as written, or the line number); strings escape only '"',
 * '\\' and U+0000..U+001F, the latter as \b \f \n \r \t or \u00XX (lower-case
 * hex); all other UTF-8 is written as is. TEXT is the
 * generated text, stop string cut, trimmed of leading and trailing ASCII
 * whitespace (space, \t, \n, \v, \f, \r); N counts the generated tokens, a
 * final EOS included; X is the mean over those N tokens of the log-probability
 * under the raw model distribution (log-softmax of the logits at temperature 1,
 * before penalty or filters) printed with printf "%.4f" ("-0.0000" written as
 * "0.0000"; null if not finite). REASON names the problem, e.g.
 * "invalid JSON at column 12" or "missing required field 'title'". */
#ifndef BLURB_JOB_H
#define BLURB_JOB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "blurb/backend.h"
#include "blurb/catalog.h"
#include "blurb/error.h"
#include "blurb/sampler.h"
#include "blurb/template.h"
#include "blurb/tokenizer.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Progress of a running job, handed to the progress callback. */
typedef struct blurb_job_progress {
    long records_done;         /* records completed (error records included) */
    long records_total;        /* records in the catalog */
    long errors;               /* error records so far */
    long long prompt_tokens;   /* prompt tokens of the records started so far (once per record) */
    long long generated_tokens;/* tokens generated so far, EOS included */
    double seconds;            /* since the job started */
    bool final;                /* the last call, after every record is written */
} blurb_job_progress;

typedef void (*blurb_job_progress_fn)(void *ctx, const blurb_job_progress *p);

typedef struct blurb_job_opts {
    const blurb_template *tmpl;   /* required */
    int n_samples;                /* samples per record (--n), >= 1 */
    int max_new_tokens;           /* >= 1; also capped by n_ctx - prompt tokens */
    blurb_sampling sampling;      /* eos_token_id is the model config's */
    uint64_t seed;
    const char *const *stops;     /* stop strings (UTF-8, non-empty), n_stops of them */
    int n_stops;
    int batch;                    /* sequences in flight; 0 or > backend slots = all slots */
    int prefill_chunk;            /* prompt tokens per forward for one sequence; 0 = n_ctx (no chunking) */
    int step_tokens;              /* soft cap on tokens per forward (new prefill chunks wait); 0 = none */
    blurb_job_progress_fn progress; /* may be NULL; called after every step and once at the end */
    void *progress_ctx;
} blurb_job_opts;

/* n_samples 1, max_new_tokens 128, blurb_sampling_default(), seed 0, no stops,
 * batch 0, prefill_chunk 0, step_tokens 4096, no progress; tmpl NULL (must be set). */
blurb_job_opts blurb_job_opts_default(void);

/* Checks the options against the backend's model (ranges, stop strings).
 * Returns 0 or BLURB_E_INVALID naming the option. */
int blurb_job_check(const blurb_job_opts *o, blurb_err *err);

/* Final counts of a job. */
typedef struct blurb_job_stats {
    long records;
    long errors;
    long long prompt_tokens;
    long long generated_tokens;
    double seconds;
} blurb_job_stats;

/* Runs the whole job: every record of cat through be (whose slots must be
 * empty) and tok, writing JSON lines to out. Bad records become error records
 * and do not fail the job. Returns 0, or a negative BLURB_E_* when the job
 * itself fails: BLURB_E_IO (writing out failed), BLURB_E_DEVICE / BLURB_E_NOMEM /
 * BLURB_E_INVALID from the backend, with err saying which record was running.
 * stats (may be NULL) is filled either way. */
int blurb_job_run(blurb_backend *be, const blurb_tokenizer *tok, const blurb_catalog *cat,
                  const blurb_job_opts *o, FILE *out, blurb_job_stats *stats, blurb_err *err);

/* One progress line without newline, e.g.
 * "120/200 records (2 errors), 3456 tokens, 210.3 tok/s, ETA 0:00:41",
 * into buf (size bytes). ETA extrapolates the record rate so far. */
void blurb_job_progress_format(const blurb_job_progress *p, char *buf, size_t size);

/* The summary line, e.g. "200 records (2 errors), 5871 prompt tokens, 12034
 * generated tokens, 95.2 s, 126.4 generated tok/s", into buf. */
void blurb_job_summary_format(const blurb_job_stats *s, char *buf, size_t size);

#ifdef __cplusplus
}
#endif
#endif
