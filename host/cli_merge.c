/* blurb merge: shard outputs (include/blurb/merge.h) back into one file in
 * input order; blurb report: the quality report (report.h) of an output file. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blurb/catalog.h"
#include "blurb/merge.h"
#include "blurb/output.h"
#include "blurb/report.h"
#include "cli.h"

static void merge_usage(FILE *f) {
    fprintf(f,
        "usage: blurb merge --output FILE [--input CATALOG] SHARD_FILE...\n"
        "\n"
        "Joins the outputs of a sharded `blurb generate` (OUTPUT.I-of-N files) into one\n"
        "file ordered by their \"line\" fields, which equals the output of an unsharded run.\n"
        "Reports duplicate lines (kept once) and missing lines and exits 1 if there are any;\n"
        "the merged file is written either way.\n"
        "  --output FILE    the merged output; '-' writes stdout. Written atomically\n"
        "                   (FILE.tmp-PID, then renamed)\n"
        "  --input CATALOG  the input of the job: missing lines are then exactly its records\n"
        "                   that no shard holds, and shard lines it lacks are reported.\n"
        "                   Without it, missing lines are the numbers from 1 to the highest\n"
        "                   line seen that no shard holds (an output cannot tell blank input\n"
        "                   lines, which make no record, from lost ones)\n");
}

static void print_lines(const char *what, const long *v, size_t n) {
    if (!n) return;
    fprintf(stderr, "blurb merge: %zu %s line%s:", n, what, n == 1 ? "" : "s");
    for (size_t i = 0; i < n && i < 20; i++) fprintf(stderr, " %ld", v[i]);
    fprintf(stderr, "%s\n", n > 20 ? " ..." : "");
}

int cli_merge(int argc, char **argv) {
    const char *output = NULL, *input = NULL;
    const char **files = calloc((size_t)argc + 1, sizeof *files);
    int n_files = 0;
    if (!files) {
        fprintf(stderr, "blurb merge: out of memory\n");
        return 1;
    }
    int status = 2;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            merge_usage(stdout);
            free(files);
            return 0;
        }
        if (strcmp(a, "--output") == 0 || strcmp(a, "--input") == 0) {
            if (i + 1 >= argc) {
                fprintf(stderr, "blurb merge: %s needs a value\n", a);
                goto out;
            }
            *(a[2] == 'o' ? &output : &input) = argv[++i];
        } else if (strncmp(a, "--output=", 9) == 0) {
            output = a + 9;
        } else if (strncmp(a, "--input=", 8) == 0) {
            input = a + 8;
        } else if (strncmp(a, "--", 2) == 0) {
            fprintf(stderr, "blurb merge: unknown option '%s' (see --help)\n", a);
            goto out;
        } else {
            files[n_files++] = a;
        }
    }
    if (!output || n_files == 0) {
        fprintf(stderr, "blurb merge: --output and at least one shard file are required (see --help)\n");
        goto out;
    }
    status = 1;
    blurb_err err;
    blurb_err_clear(&err);
    blurb_catalog *cat = NULL;
    if (input && blurb_catalog_read(input, &cat, &err)) {
        fprintf(stderr, "blurb merge: %s\n", err.msg);
        goto out;
    }
    blurb_output_opts oo = blurb_output_opts_default();
    oo.atomic = strcmp(output, "-") != 0;
    oo.sync_records = 0;
    oo.sync_seconds = 0;
    blurb_output *ow = NULL;
    blurb_merge_result res;
    memset(&res, 0, sizeof res);
    int rc = blurb_output_open(output, &oo, &ow, &err);
    if (!rc) rc = blurb_merge_files(files, n_files, cat, blurb_output_file(ow), &res, &err);
    if (ow) {
        blurb_err e;
        blurb_err_clear(&e);
        int crc = blurb_output_close(ow, rc == 0, &e);
        if (crc && !rc) {
            rc = crc;
            err = e;
        }
    }
    if (rc) {
        fprintf(stderr, "blurb merge: %s\n", err.msg);
    } else {
        print_lines("missing", res.missing, res.n_missing);
        if (res.n_missing && !cat)
            fprintf(stderr, "blurb merge: (without --input, blank input lines also count as missing: "
                            "give --input CATALOG to check exactly)\n");
        print_lines("duplicate", res.duplicate, res.n_duplicate);
        print_lines("unexpected (not records of the input)", res.unexpected, res.n_unexpected);
        fprintf(stderr, "blurb merge: %ld records from %d file%s into %s\n", res.records, n_files,
                n_files == 1 ? "" : "s", output);
        status = res.n_missing || res.n_duplicate || res.n_unexpected ? 1 : 0;
    }
    blurb_merge_result_free(&res);
    blurb_catalog_free(cat);
out:
    free(files);
    return status;
}

int cli_report(int argc, char **argv) {
    const char *input = NULL, *output = "-";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            printf("usage: blurb report --input OUTPUT.jsonl [--output REPORT.json]\n"
                   "\n"
                   "The quality report of a `blurb generate` output file as JSON (default stdout):\n"
                   "length histogram (bins of 16 tokens), distinct-1/2 over words, share of outputs\n"
                   "with a repeated word 4-gram, that hit the token limit, identical to another\n"
                   "product's output, and error records by reason (see include/blurb/report.h).\n");
            return 0;
        }
        if ((strcmp(a, "--input") == 0 || strcmp(a, "--output") == 0) && i + 1 < argc) {
            *(a[2] == 'i' ? &input : &output) = argv[++i];
        } else {
            fprintf(stderr, "blurb report: unexpected argument '%s' (see --help)\n", a);
            return 2;
        }
    }
    if (!input) {
        fprintf(stderr, "blurb report: --input is required (see --help)\n");
        return 2;
    }
    blurb_err err;
    blurb_err_clear(&err);
    if (blurb_report_file(input, output, &err)) {
        fprintf(stderr, "blurb report: %s\n", err.msg);
        return 1;
    }
    return 0;
}
