#include "blurb/output.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "read_file.h"

struct blurb_output {
    FILE *f;
    bool is_stdout;
    bool no_sync;    /* not a regular file (stdout, a pipe, /dev/null): fsync does not apply */
    bool atomic;
    int kind;        /* blurb_output_kind this run writes (resume checks it) */
    char *path;      /* the final path */
    char *tmp_path;  /* atomic: where the records go until the rename */
    long *done;      /* resumed line numbers, sorted, no repeats */
    size_t n_done;
    size_t n_resumed;/* complete records in the resumed file (repeats included) */
    long sync_records;
    double sync_seconds;
    long last_sync_records;
    double last_sync_time;
};

blurb_output_opts blurb_output_opts_default(void) {
    blurb_output_opts o;
    o.resume = false;
    o.kind = BLURB_OUTPUT_ANY;
    o.atomic = false;
    o.sync_records = 64;
    o.sync_seconds = 5.0;
    return o;
}

static double mono_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* The input line number of an output record: blurb's "line", or the L of an
 * openai-batch result's "id": "batch_req_L" (openai_batch.h); NAN if none.
 * *kind receives which of the two it was. */
static double record_line(const cJSON *root, int *kind) {
    const cJSON *ln = cJSON_GetObjectItemCaseSensitive(root, "line");
    *kind = BLURB_OUTPUT_JSONL;
    if (ln) return cJSON_IsNumber(ln) ? ln->valuedouble : NAN;
    *kind = BLURB_OUTPUT_OPENAI;
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(root, "id");
    static const char pre[] = BLURB_OPENAI_BATCH_ID_PREFIX;
    if (!cJSON_IsString(id) || strncmp(id->valuestring, pre, sizeof pre - 1) != 0 ||
        !cJSON_GetObjectItemCaseSensitive(root, "custom_id"))
        return NAN;
    const char *digits = id->valuestring + sizeof pre - 1;
    if (*digits < '1' || *digits > '9' || strlen(digits) > 18) return NAN;
    double d = 0;
    for (const char *p = digits; *p; p++) {
        if (*p < '0' || *p > '9') return NAN;
        d = d * 10 + (*p - '0');
    }
    return d;
}

int blurb_output_scan(const char *data, size_t len, size_t *complete, long **lines, size_t *n_lines, int *kind,
                      blurb_err *err) {
    int file_kind = BLURB_OUTPUT_ANY;
    if (kind) *kind = BLURB_OUTPUT_ANY;
    *complete = 0;
    *lines = NULL;
    *n_lines = 0;
    size_t end = len;
    while (end > 0 && data[end - 1] != '\n') end--;
    size_t cap = 0, n = 0;
    long *v = NULL;
    long file_line = 0;
    for (size_t pos = 0; pos < end;) {
        const char *nl = memchr(data + pos, '\n', end - pos);
        size_t l = (size_t)(nl - (data + pos));
        file_line++;
        cJSON *root = cJSON_ParseWithLength(data + pos, l);
        int k = BLURB_OUTPUT_ANY;
        const double d = root ? record_line(root, &k) : NAN;
        cJSON_Delete(root);
        if (d == d && file_kind != BLURB_OUTPUT_ANY && k != file_kind) {
            free(v);
            return blurb_seterr(err, BLURB_E_FORMAT, "line %ld is %s, the lines before it %s", file_line,
                                k == BLURB_OUTPUT_OPENAI ? "an openai-batch result" : "a blurb jsonl record",
                                k == BLURB_OUTPUT_OPENAI ? "blurb jsonl records" : "openai-batch results");
        }
        if (d == d) file_kind = k;
        if (!(d >= 1 && d < 9e18 && d == floor(d))) { /* 9e18: (long)d stays defined */
            free(v);
            return blurb_seterr(err, BLURB_E_FORMAT,
                                "line %ld is not a blurb output record (no \"line\" number, no "
                                "\"" BLURB_OPENAI_BATCH_ID_PREFIX "N\" id)", file_line);
        }
        if (n == cap) {
            size_t nc = cap ? 2 * cap : 1024;
            long *nv = realloc(v, nc * sizeof *nv);
            if (!nv) {
                free(v);
                return blurb_seterr(err, BLURB_E_NOMEM, "out of memory");
            }
            v = nv;
            cap = nc;
        }
        v[n++] = (long)d;
        pos += l + 1;
    }
    *complete = end;
    *lines = v;
    *n_lines = n;
    if (kind) *kind = file_kind;
    return 0;
}

static int cmp_long(const void *a, const void *b) {
    long x = *(const long *)a, y = *(const long *)b;
    return (x > y) - (x < y);
}

/* Resume: scan, truncate the torn tail, keep the done set. *exists = false when there is no file. */
static int resume_scan(blurb_output *w, bool *exists, blurb_err *err) {
    *exists = false;
    struct stat st;
    if (stat(w->path, &st) != 0) {
        if (errno == ENOENT) return 0;
        return blurb_seterr(err, BLURB_E_IO, "%s: %s", w->path, strerror(errno));
    }
    *exists = true;
    char *data = NULL;
    size_t len = 0;
    int rc = blurb_read_file(w->path, SIZE_MAX / 2, &data, &len, err);
    if (rc) return rc;
    size_t complete;
    int kind = BLURB_OUTPUT_ANY;
    rc = blurb_output_scan(data, len, &complete, &w->done, &w->n_done, &kind, err);
    free(data);
    if (rc) return blurb_err_prefix(err, "--resume %s", w->path);
    if (w->kind != BLURB_OUTPUT_ANY && kind != BLURB_OUTPUT_ANY && kind != w->kind)
        return blurb_seterr(err, BLURB_E_FORMAT, "--resume %s: it holds %s, but this run writes %s (--format)", w->path,
                            kind == BLURB_OUTPUT_OPENAI ? "openai-batch results" : "blurb jsonl records",
                            w->kind == BLURB_OUTPUT_OPENAI ? "openai-batch results" : "blurb jsonl records");
    w->n_resumed = w->n_done;
    if (w->n_done) {
        qsort(w->done, w->n_done, sizeof *w->done, cmp_long);
        size_t k = 1;
        for (size_t i = 1; i < w->n_done; i++)
            if (w->done[i] != w->done[k - 1]) w->done[k++] = w->done[i];
        w->n_done = k;
    }
    if (complete < len && truncate(w->path, (off_t)complete) != 0)
        return blurb_seterr(err, BLURB_E_IO, "%s: cannot drop the torn last line: %s", w->path, strerror(errno));
    return 0;
}

int blurb_output_open(const char *path, const blurb_output_opts *o, blurb_output **out, blurb_err *err) {
    *out = NULL;
    bool is_stdout = strcmp(path, "-") == 0;
    if (o->resume && o->atomic) return blurb_seterr(err, BLURB_E_INVALID, "--resume and --atomic exclude each other");
    if (is_stdout && (o->resume || o->atomic))
        return blurb_seterr(err, BLURB_E_INVALID, "--resume and --atomic need an output file, not stdout");
    blurb_output *w = calloc(1, sizeof *w);
    if (!w || !(w->path = strdup(path))) {
        free(w);
        return blurb_seterr(err, BLURB_E_NOMEM, "out of memory");
    }
    w->is_stdout = is_stdout;
    w->atomic = o->atomic;
    w->kind = o->kind;
    w->sync_records = o->sync_records;
    w->sync_seconds = o->sync_seconds;
    w->last_sync_time = mono_now();
    int rc = 0;
    if (is_stdout) {
        w->f = stdout;
    } else if (o->atomic) {
        size_t n = strlen(path) + 32;
        if (!(w->tmp_path = malloc(n))) {
            rc = blurb_seterr(err, BLURB_E_NOMEM, "out of memory");
            goto fail;
        }
        snprintf(w->tmp_path, n, "%s.tmp-%ld", path, (long)getpid());
        if (!(w->f = fopen(w->tmp_path, "wb"))) {
            rc = blurb_seterr(err, BLURB_E_IO, "%s: cannot open for writing: %s", w->tmp_path, strerror(errno));
            goto fail;
        }
    } else {
        bool exists = false;
        if (o->resume && (rc = resume_scan(w, &exists, err))) goto fail;
        if (!(w->f = fopen(path, exists ? "ab" : "wb"))) {
            rc = blurb_seterr(err, BLURB_E_IO, "%s: cannot open for writing: %s", path, strerror(errno));
            goto fail;
        }
    }
    struct stat st;
    w->no_sync = fstat(fileno(w->f), &st) != 0 || !S_ISREG(st.st_mode);
    *out = w;
    return 0;
fail:
    free(w->path);
    free(w->tmp_path);
    free(w->done);
    free(w);
    return rc;
}

FILE *blurb_output_file(blurb_output *w) { return w->f; }

size_t blurb_output_resumed(const blurb_output *w) { return w->n_resumed; }

int blurb_output_skip_done(const blurb_output *w, blurb_catalog *cat, blurb_err *err) {
    if (!w->n_done) return 0;
    size_t wr = 0, d = 0, matched = 0;
    long first_gap = 0; /* the first input line the file lacks */
    for (size_t i = 0; i < cat->n_lines; i++) {
        long ln = cat->lines[i].line_no;
        while (d < w->n_done && w->done[d] < ln) d++;
        if (d < w->n_done && w->done[d] == ln) {
            if (first_gap)
                return blurb_seterr(err, BLURB_E_FORMAT,
                                    "--resume %s: it holds the record of line %ld but not that of line %ld before "
                                    "it, so another run wrote it (another input, or a shard's output resumed without its "
                                    "--shard I/N?)",
                                    w->path, ln, first_gap);
            matched++;
            continue;
        }
        if (!first_gap) first_gap = ln;
        cat->lines[wr++] = cat->lines[i];
    }
    if (matched != w->n_done) {
        return blurb_seterr(err, BLURB_E_FORMAT,
                            "--resume %s: %zu of its %zu line numbers are not records of this input (or shard): "
                            "is it the output of another input?",
                            w->path, w->n_done - matched, w->n_done);
    }
    cat->n_lines = wr;
    return 0;
}

static int sync_now(blurb_output *w, blurb_err *err) {
    if (fflush(w->f) != 0)
        return blurb_seterr(err, BLURB_E_IO, "writing %s failed: %s", w->tmp_path ? w->tmp_path : w->path,
                            strerror(errno));
    if (w->no_sync) return 0;
    if (fsync(fileno(w->f)) != 0)
        return blurb_seterr(err, BLURB_E_IO, "fsync of %s failed: %s", w->tmp_path ? w->tmp_path : w->path,
                            strerror(errno));
    return 0;
}

int blurb_output_tick(blurb_output *w, long records_written, blurb_err *err) {
    if (w->no_sync) return 0;
    bool due = w->sync_records > 0 && records_written - w->last_sync_records >= w->sync_records;
    double t = 0;
    if (!due && w->sync_seconds > 0) {
        t = mono_now();
        due = t - w->last_sync_time >= w->sync_seconds && records_written != w->last_sync_records;
    }
    if (!due) return 0;
    w->last_sync_records = records_written;
    w->last_sync_time = t > 0 ? t : mono_now();
    return sync_now(w, err);
}

/* fsync of the directory holding path, so that a rename survives a crash. */
static int sync_dir(const char *path, blurb_err *err) {
    const char *slash = strrchr(path, '/');
    char *dir = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : strdup(".");
    if (!dir) return blurb_seterr(err, BLURB_E_NOMEM, "out of memory");
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    int rc = 0;
    if (fd < 0 || fsync(fd) != 0) rc = blurb_seterr(err, BLURB_E_IO, "fsync of directory %s failed: %s", dir, strerror(errno));
    if (fd >= 0) close(fd);
    free(dir);
    return rc;
}

int blurb_output_close(blurb_output *w, bool commit, blurb_err *err) {
    if (!w) return 0;
    int rc = 0;
    if (commit) rc = sync_now(w, err);
    if (!w->is_stdout && fclose(w->f) != 0 && commit && !rc)
        rc = blurb_seterr(err, BLURB_E_IO, "closing %s failed: %s", w->tmp_path ? w->tmp_path : w->path,
                          strerror(errno));
    if (w->atomic) {
        if (commit && !rc) {
            if (rename(w->tmp_path, w->path) != 0)
                rc = blurb_seterr(err, BLURB_E_IO, "renaming %s to %s failed: %s", w->tmp_path, w->path,
                                  strerror(errno));
            else
                rc = sync_dir(w->path, err);
        }
        if (!commit || rc) remove(w->tmp_path);
    }
    free(w->path);
    free(w->tmp_path);
    free(w->done);
    free(w);
    return rc;
}
