/* The output file of a catalog job: exactly-once, resumable, or atomic.
 *
 * The job (job.h) writes whole records in input order. This module owns the
 * file around it:
 *   - durability in batches: blurb_output_tick flushes stdio and fsyncs the
 *     file after every sync_records records or sync_seconds seconds, so a
 *     crash loses at most one batch (plus a torn last line), never more;
 *   - resume: an existing output is scanned, a torn last line (bytes after the
 *     last '\n', left by kill -9 in the middle of a write) is truncated away,
 *     and the "line" numbers of the complete records are kept, so that the
 *     caller skips those input lines and appends the rest. Because a record's
 *     bytes depend only on the model, its line, the options and the seed (job.h),
 *     the resumed file is byte-identical to an uninterrupted run with the same
 *     options. Nothing checks that the options are the same: resume with the
 *     options of the first run;
 *   - atomic: the records go to PATH.tmp-PID, which is fsynced, renamed to
 *     PATH and the directory fsynced only when the job succeeds; a failed job
 *     removes it. A kill -9 leaves PATH untouched (and the .tmp-PID behind).
 *     Atomic and resume exclude each other.
 * "-" means stdout: no resume, no atomic, no fsync (a pipe cannot be synced). */
#ifndef BLURB_OUTPUT_H
#define BLURB_OUTPUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "blurb/catalog.h"
#include "blurb/error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct blurb_output_opts {
    bool resume;         /* keep the complete records of an existing file and append */
    int kind;            /* blurb_output_kind this run writes; resume refuses a file of another
                            kind (BLURB_OUTPUT_ANY: no check) */
    bool atomic;         /* write PATH.tmp-PID and rename at the end */
    long sync_records;   /* fsync after this many more records; <= 0 = only by time */
    double sync_seconds; /* fsync when this many seconds passed since the last one; <= 0 = only by count */
} blurb_output_opts;

/* What an output file's records are: blurb's own lines (job.h) or
 * openai-batch results (openai_batch.h). */
typedef enum blurb_output_kind {
    BLURB_OUTPUT_ANY = 0,     /* no records yet / no check wanted */
    BLURB_OUTPUT_JSONL = 1,
    BLURB_OUTPUT_OPENAI = 2
} blurb_output_kind;

/* The prefix of an openai-batch result's "id" ("batch_req_L", L the input
 * line): openai_batch.c writes it, blurb_output_scan reads L back. */
#define BLURB_OPENAI_BATCH_ID_PREFIX "batch_req_"

/* resume false, kind ANY, atomic false, sync every 64 records or 5 seconds. */
blurb_output_opts blurb_output_opts_default(void);

typedef struct blurb_output blurb_output;

/* Scans an existing output (data, len bytes): *complete receives the bytes up
 * to and including the last '\n' (0 when there is none), and *lines /
 * *n_lines (malloc'ed, may be NULL when 0) the input line number of every
 * complete line, in file order: its "line" value, or for an openai-batch
 * result (openai_batch.h, which has no "line") the L of its "id":
 * "batch_req_L". *kind (may be NULL) receives the file's blurb_output_kind
 * (ANY when it holds no complete line). Returns 0, BLURB_E_FORMAT when a
 * complete line is not a JSON object with either (an integer >= 1; naming the
 * line of the file) or the file mixes the two kinds, or BLURB_E_NOMEM. */
int blurb_output_scan(const char *data, size_t len, size_t *complete, long **lines, size_t *n_lines, int *kind,
                      blurb_err *err);

/* Opens path for a job. With resume and an existing file: scans it as above,
 * truncates it to its complete lines and opens it for appending (a missing
 * file simply starts a new one). Returns 0, BLURB_E_INVALID (resume with
 * atomic, or either with "-"), BLURB_E_FORMAT (the existing file is not a
 * blurb output) or BLURB_E_IO, with the path in the message. */
int blurb_output_open(const char *path, const blurb_output_opts *o, blurb_output **out, blurb_err *err);

/* The stream the job writes to. */
FILE *blurb_output_file(blurb_output *w);

/* Complete records found by resume (0 without resume). */
size_t blurb_output_resumed(const blurb_output *w);

/* Removes from cat (in place, keeping order) every line that the resumed
 * file already holds. Returns 0, or BLURB_E_FORMAT when the file holds a line
 * number that cat lacks, or holds a later record but not an earlier one of
 * cat (a run writes in input order, so a killed run leaves the first records
 * of its input: anything else belongs to another input or shard). */
int blurb_output_skip_done(const blurb_output *w, blurb_catalog *cat, blurb_err *err);

/* Called as records get written (records_written = records the job finished
 * so far in this run): flushes and fsyncs when a batch is due. Returns 0 or
 * BLURB_E_IO. */
int blurb_output_tick(blurb_output *w, long records_written, blurb_err *err);

/* Ends the output and frees w (NULL allowed): with commit, flushes, fsyncs,
 * closes and (atomic) renames into place and fsyncs the directory; without
 * commit, closes and (atomic) removes the temporary file. Returns 0 or
 * BLURB_E_IO (w is freed either way). */
int blurb_output_close(blurb_output *w, bool commit, blurb_err *err);

#ifdef __cplusplus
}
#endif
#endif
