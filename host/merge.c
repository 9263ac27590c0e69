#include "blurb/merge.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "blurb/output.h"
#include "read_file.h"

typedef struct mrec {
    long line;
    int file;
    size_t off, len; /* the record's bytes with its '\n' */
} mrec;

static int cmp_mrec(const void *a, const void *b) {
    const mrec *x = a, *y = b;
    if (x->line != y->line) return x->line < y->line ? -1 : 1;
    if (x->file != y->file) return x->file < y->file ? -1 : 1;
    return (x->off > y->off) - (x->off < y->off);
}

static int push(long **v, size_t *n, size_t *cap, long x) {
    if (*n == *cap) {
        size_t nc = *cap ? 2 * *cap : 64;
        long *nv = realloc(*v, nc * sizeof *nv);
        if (!nv) return -1;
        *v = nv;
        *cap = nc;
    }
    (*v)[(*n)++] = x;
    return 0;
}

void blurb_merge_result_free(blurb_merge_result *res) {
    if (!res) return;
    free(res->missing);
    free(res->duplicate);
    free(res->unexpected);
    memset(res, 0, sizeof *res);
}

int blurb_merge_files(const char *const *paths, int n, const blurb_catalog *expect, FILE *out,
                      blurb_merge_result *res, blurb_err *err) {
    memset(res, 0, sizeof *res);
    char **data = calloc(n > 0 ? (size_t)n : 1, sizeof *data);
    mrec *recs = NULL;
    size_t n_recs = 0, cap_recs = 0, cap_m = 0, cap_d = 0, cap_u = 0;
    int rc = 0;
    if (!data) return blurb_seterr(err, BLURB_E_NOMEM, "out of memory");
    int merged_kind = BLURB_OUTPUT_ANY;
    for (int f = 0; f < n; f++) {
        size_t len = 0;
        rc = blurb_read_file(paths[f], SIZE_MAX / 2, &data[f], &len, err);
        if (rc) goto done;
        if (len && data[f][len - 1] != '\n') {
            rc = blurb_seterr(err, BLURB_E_FORMAT,
                              "%s: the last line is incomplete (a killed run? finish it with --resume)", paths[f]);
            goto done;
        }
        size_t complete, n_lines;
        long *lines = NULL;
        int kind = BLURB_OUTPUT_ANY;
        rc = blurb_output_scan(data[f], len, &complete, &lines, &n_lines, &kind, err);
        if (rc) {
            blurb_err_prefix(err, "%s", paths[f]);
            goto done;
        }
        if (kind != BLURB_OUTPUT_ANY && merged_kind != BLURB_OUTPUT_ANY && kind != merged_kind) {
            free(lines);
            rc = blurb_seterr(err, BLURB_E_FORMAT, "%s holds %s, the files before it %s: not shards of one job",
                              paths[f], kind == BLURB_OUTPUT_OPENAI ? "openai-batch results" : "blurb jsonl records",
                              kind == BLURB_OUTPUT_OPENAI ? "blurb jsonl records" : "openai-batch results");
            goto done;
        }
        if (kind != BLURB_OUTPUT_ANY) merged_kind = kind;
        size_t pos = 0;
        for (size_t i = 0; i < n_lines; i++) {
            const char *nl = memchr(data[f] + pos, '\n', len - pos);
            size_t l = (size_t)(nl - (data[f] + pos)) + 1;
            if (n_recs == cap_recs) {
                size_t nc = cap_recs ? 2 * cap_recs : 1024;
                mrec *nr = realloc(recs, nc * sizeof *nr);
                if (!nr) {
                    free(lines);
                    rc = blurb_seterr(err, BLURB_E_NOMEM, "out of memory");
                    goto done;
                }
                recs = nr;
                cap_recs = nc;
            }
            recs[n_recs++] = (mrec){lines[i], f, pos, l};
            pos += l;
        }
        free(lines);
    }
    if (n_recs) qsort(recs, n_recs, sizeof *recs, cmp_mrec);

    size_t c = 0; /* next catalog line to expect */
    long next = 1;  /* without a catalog: the next line number expected */
    for (size_t i = 0; i < n_recs; i++) {
        long ln = recs[i].line;
        if (i > 0 && recs[i - 1].line == ln) {
            if ((i < 2 || recs[i - 2].line != ln) && push(&res->duplicate, &res->n_duplicate, &cap_d, ln)) goto nomem;
            continue;
        }
        if (expect) {
            while (c < expect->n_lines && expect->lines[c].line_no < ln)
                if (push(&res->missing, &res->n_missing, &cap_m, expect->lines[c++].line_no)) goto nomem;
            if (c < expect->n_lines && expect->lines[c].line_no == ln) c++;
            else if (push(&res->unexpected, &res->n_unexpected, &cap_u, ln)) goto nomem;
        } else {
            for (; next < ln; next++)
                if (push(&res->missing, &res->n_missing, &cap_m, next)) goto nomem;
            next = ln + 1;
        }
        if (fwrite(data[recs[i].file] + recs[i].off, 1, recs[i].len, out) != recs[i].len) {
            rc = blurb_seterr(err, BLURB_E_IO, "writing the merged output failed: %s", strerror(errno));
            goto done;
        }
        res->records++;
    }
    while (expect && c < expect->n_lines)
        if (push(&res->missing, &res->n_missing, &cap_m, expect->lines[c++].line_no)) goto nomem;
    if (fflush(out) != 0) rc = blurb_seterr(err, BLURB_E_IO, "writing the merged output failed: %s", strerror(errno));
    goto done;
nomem:
    rc = blurb_seterr(err, BLURB_E_NOMEM, "out of memory");
done:
    for (int f = 0; f < n; f++) free(data[f]);
    free(data);
    free(recs);
    return rc;
}
