/* The job's output file (include/blurb/output.h) and blurb merge
 * (include/blurb/merge.h) without a model: resume scanning and truncation of a
 * torn last line, skipping done lines, atomic commit and abort, merging with
 * missing, duplicate and unexpected lines. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "blurb/merge.h"
#include "blurb/output.h"
#include "check.h"
#include "file_test_util.h"

static char dir[256];

#define R(l) "{\"id\": \"x" #l "\", \"line\": " #l ", \"error\": \"e\"}\n"

static void test_scan(void) {
    blurb_err err;
    size_t complete, n;
    long *lines;
    const char a[] = R(1) R(3) R(2) "{\"id\": \"x4\", \"li";
    CHECK(blurb_output_scan(a, sizeof a - 1, &complete, &lines, &n, NULL, &err) == 0);
    CHECK(complete == strlen(R(1) R(3) R(2)));
    CHECK(n == 3 && lines[0] == 1 && lines[1] == 3 && lines[2] == 2);
    free(lines);
    CHECK(blurb_output_scan("", 0, &complete, &lines, &n, NULL, &err) == 0 && complete == 0 && n == 0);
    free(lines);
    CHECK(blurb_output_scan("{\"li", 4, &complete, &lines, &n, NULL, &err) == 0 && complete == 0 && n == 0);
    free(lines);
    const char bad[] = R(1) "not json\n" R(2);
    blurb_err_clear(&err);
    CHECK(blurb_output_scan(bad, sizeof bad - 1, &complete, &lines, &n, NULL, &err) == BLURB_E_FORMAT);
    CHECK(strstr(err.msg, "line 2") != NULL);
    const char huge[] = "{\"line\": 1e300}\n";
    CHECK(blurb_output_scan(huge, sizeof huge - 1, &complete, &lines, &n, NULL, &err) == BLURB_E_FORMAT);
    const char zero[] = "{\"line\": 0}\n";
    CHECK(blurb_output_scan(zero, sizeof zero - 1, &complete, &lines, &n, NULL, &err) == BLURB_E_FORMAT);
}

static void test_resume(void) {
    char path[512];
    snprintf(path, sizeof path, "%s/out.jsonl", dir);
    /* Input lines 1..6 with line 3 blank: records 1 2 4 5 6. Done: 1 and 2
     * (their order in the file does not matter, a repeat neither), torn tail
     * of line 4. */
    spit_str(path, R(2) R(1) R(2) "{\"id\": \"x4\", \"line\": 4, \"er");
    blurb_output_opts o = blurb_output_opts_default();
    o.resume = true;
    blurb_output *w = NULL;
    blurb_err err;
    REQUIRE(blurb_output_open(path, &o, &w, &err) == 0);
    CHECK(blurb_output_resumed(w) == 3);
    const char in[] = "{}\n{}\n\n{}\n{}\n{}\n";
    blurb_catalog *cat = NULL;
    REQUIRE(blurb_catalog_from_memory(in, sizeof in - 1, &cat, &err) == 0);
    CHECK(blurb_output_skip_done(w, cat, &err) == 0);
    CHECK(cat->n_lines == 3 && cat->lines[0].line_no == 4 && cat->lines[1].line_no == 5 && cat->lines[2].line_no == 6);
    /* The torn line is gone before anything is appended. */
    char *t = slurp(path, NULL);
    CHECK(t && strcmp(t, R(2) R(1) R(2)) == 0);
    free(t);
    fputs(R(4), blurb_output_file(w));
    CHECK(blurb_output_tick(w, 1, &err) == 0);
    CHECK(blurb_output_close(w, true, &err) == 0);
    t = slurp(path, NULL);
    CHECK(t && strcmp(t, R(2) R(1) R(2) R(4)) == 0);
    free(t);
    blurb_catalog_free(cat);

    /* Records 1 and 4 without 2: not what a killed run of this input leaves
     * (e.g. a shard's output resumed without its --shard). */
    spit_str(path, R(1) R(4));
    REQUIRE(blurb_output_open(path, &o, &w, &err) == 0);
    REQUIRE(blurb_catalog_from_memory(in, sizeof in - 1, &cat, &err) == 0);
    blurb_err_clear(&err);
    CHECK(blurb_output_skip_done(w, cat, &err) == BLURB_E_FORMAT && strstr(err.msg, "line 4 but not that of line 2"));
    CHECK(blurb_output_close(w, false, &err) == 0);
    blurb_catalog_free(cat);

    /* A file of the other format is refused (and mixed files too). */
    spit_str(path, R(1));
    o.kind = BLURB_OUTPUT_OPENAI;
    blurb_err_clear(&err);
    CHECK(blurb_output_open(path, &o, &w, &err) == BLURB_E_FORMAT && strstr(err.msg, "openai-batch"));
    o.kind = BLURB_OUTPUT_JSONL;
    spit_str(path, R(1) "{\"id\": \"batch_req_2\", \"custom_id\": \"c\", \"response\": null, \"error\": null}\n");
    blurb_err_clear(&err);
    CHECK(blurb_output_open(path, &o, &w, &err) == BLURB_E_FORMAT && strstr(err.msg, "line 2 is an openai-batch"));
    o.kind = BLURB_OUTPUT_ANY;

    /* An output holding a line the input lacks belongs to another input. */
    spit_str(path, R(1) R(9));
    REQUIRE(blurb_output_open(path, &o, &w, &err) == 0);
    REQUIRE(blurb_catalog_from_memory(in, sizeof in - 1, &cat, &err) == 0);
    blurb_err_clear(&err);
    CHECK(blurb_output_skip_done(w, cat, &err) == BLURB_E_FORMAT && strstr(err.msg, "1 of its 2"));
    blurb_output_close(w, false, NULL);
    blurb_catalog_free(cat);

    /* A file that is not an output is refused, and left as it was. */
    spit_str(path, "hello\n");
    blurb_err_clear(&err);
    CHECK(blurb_output_open(path, &o, &w, &err) == BLURB_E_FORMAT && w == NULL);
    t = slurp(path, NULL);
    CHECK(t && strcmp(t, "hello\n") == 0);
    free(t);

    /* Resume without a file starts one. */
    char fresh[600];
    snprintf(fresh, sizeof fresh, "%s/fresh.jsonl", dir);
    REQUIRE(blurb_output_open(fresh, &o, &w, &err) == 0);
    CHECK(blurb_output_resumed(w) == 0);
    fputs(R(1), blurb_output_file(w));
    CHECK(blurb_output_close(w, true, &err) == 0);
    t = slurp(fresh, NULL);
    CHECK(t && strcmp(t, R(1)) == 0);
    free(t);

    /* Usage errors. */
    o.atomic = true;
    CHECK(blurb_output_open(path, &o, &w, &err) == BLURB_E_INVALID);
    o.atomic = false;
    CHECK(blurb_output_open("-", &o, &w, &err) == BLURB_E_INVALID);
}

static void test_atomic(void) {
    char path[512], tmp[600];
    snprintf(path, sizeof path, "%s/atomic.jsonl", dir);
    snprintf(tmp, sizeof tmp, "%s.tmp-%ld", path, (long)getpid());
    spit_str(path, "old\n");
    blurb_output_opts o = blurb_output_opts_default();
    o.atomic = true;
    blurb_output *w = NULL;
    blurb_err err;
    REQUIRE(blurb_output_open(path, &o, &w, &err) == 0);
    fputs(R(1), blurb_output_file(w));
    CHECK(blurb_output_tick(w, 100, &err) == 0);
    /* Until the end, the old file stands and the records are in the temporary one. */
    char *t = slurp(path, NULL);
    CHECK(t && strcmp(t, "old\n") == 0);
    free(t);
    t = slurp(tmp, NULL);
    CHECK(t && strcmp(t, R(1)) == 0);
    free(t);
    CHECK(blurb_output_close(w, true, &err) == 0);
    t = slurp(path, NULL);
    CHECK(t && strcmp(t, R(1)) == 0);
    free(t);
    CHECK(access(tmp, F_OK) != 0);
    /* A failed job leaves the old file and no temporary. */
    REQUIRE(blurb_output_open(path, &o, &w, &err) == 0);
    fputs(R(2), blurb_output_file(w));
    CHECK(blurb_output_close(w, false, &err) == 0);
    t = slurp(path, NULL);
    CHECK(t && strcmp(t, R(1)) == 0);
    free(t);
    CHECK(access(tmp, F_OK) != 0);
}

static void test_merge(void) {
    char a[512], b[512], c[512], m[512];
    snprintf(a, sizeof a, "%s/s0", dir);
    snprintf(b, sizeof b, "%s/s1", dir);
    snprintf(c, sizeof c, "%s/s2", dir);
    snprintf(m, sizeof m, "%s/merged", dir);
    spit_str(a, R(2) R(4) R(6));
    spit_str(b, R(1) R(5));
    spit_str(c, "");
    const char *files[] = {a, b, c};
    blurb_merge_result res;
    blurb_err err;
    FILE *f = fopen(m, "wb");
    REQUIRE(f);
    /* Without the input: 3 is a gap between 1 and 6. */
    CHECK(blurb_merge_files(files, 3, NULL, f, &res, &err) == 0);
    fclose(f);
    CHECK(res.records == 5 && res.n_missing == 1 && res.missing[0] == 3 && res.n_duplicate == 0);
    blurb_merge_result_free(&res);
    char *t = slurp(m, NULL);
    CHECK(t && strcmp(t, R(1) R(2) R(4) R(5) R(6)) == 0);
    free(t);
    /* With the input (line 3 blank, 7 a record): 3 is fine, 7 is missing. */
    const char in[] = "{}\n{}\n \n{}\n{}\n{}\n{}\n";
    blurb_catalog *cat = NULL;
    REQUIRE(blurb_catalog_from_memory(in, sizeof in - 1, &cat, &err) == 0);
    f = fopen(m, "wb");
    REQUIRE(f);
    CHECK(blurb_merge_files(files, 3, cat, f, &res, &err) == 0);
    fclose(f);
    CHECK(res.records == 5 && res.n_missing == 1 && res.missing[0] == 7 && res.n_unexpected == 0);
    blurb_merge_result_free(&res);
    /* Duplicates (line 4 thrice, the first kept) and a line the input lacks (9). */
    spit_str(c, "{\"id\": \"dup\", \"line\": 4, \"error\": \"e\"}\n" R(4) R(7) R(9));
    f = fopen(m, "wb");
    REQUIRE(f);
    CHECK(blurb_merge_files(files, 3, cat, f, &res, &err) == 0);
    fclose(f);
    CHECK(res.records == 7 && res.n_missing == 0 && res.n_duplicate == 1 && res.duplicate[0] == 4);
    CHECK(res.n_unexpected == 1 && res.unexpected[0] == 9);
    blurb_merge_result_free(&res);
    t = slurp(m, NULL);
    CHECK(t && strcmp(t, R(1) R(2) R(4) R(5) R(6) R(7) R(9)) == 0);
    free(t);
    /* A torn shard is refused, naming it. */
    spit_str(c, R(3) "{\"id\"");
    f = fopen(m, "wb");
    REQUIRE(f);
    blurb_err_clear(&err);
    CHECK(blurb_merge_files(files, 3, cat, f, &res, &err) == BLURB_E_FORMAT && strstr(err.msg, c));
    fclose(f);
    blurb_merge_result_free(&res);
    blurb_catalog_free(cat);
}

int main(void) {
    snprintf(dir, sizeof dir, "/tmp/blurb_test_output_%ld", (long)getpid());
    REQUIRE(mkdir(dir, 0700) == 0);
    test_scan();
    test_resume();
    test_atomic();
    test_merge();
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
    return check_finish("test_output");
}
