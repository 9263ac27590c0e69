/* The quality report (include/blurb/report.h) of a fixed small output file,
 * against figures computed by hand below. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "blurb/report.h"
#include "check.h"

/* 8 records (lines 1, 2, 4, 5, 6, 7, 8, 9 of some input), 3 of them errors,
 * 6 outputs T1..T6; a blank line and a last line without '\n' on purpose. */
static const char OUT[] =
    "{\"id\": \"a\", \"line\": 1, \"prompt_tokens\": 5, \"outputs\": [{\"text\": \"Soft cotton tee, SOFT cotton tee; "
    "soft Cotton tee.\", \"tokens\": 16, \"finish_reason\": \"length\", \"mean_logprob\": -1.0000}]}\n"
    "{\"id\": \"b\", \"line\": 2, \"prompt_tokens\": 5, \"outputs\": [{\"text\": \"Blue denim jeans.\", \"tokens\": 5, "
    "\"finish_reason\": \"stop\", \"mean_logprob\": -1.0000}, {\"text\": \"Blue denim jeans.\", \"tokens\": 5, "
    "\"finish_reason\": \"stop\", \"mean_logprob\": -1.0000}]}\n"
    "{\"id\": \"c\", \"line\": 4, \"error\": \"missing required field 'title'\"}\n"
    "\n"
    "{\"id\": \"d\", \"line\": 5, \"prompt_tokens\": 5, \"outputs\": [{\"text\": \"Blue denim jeans.\", \"tokens\": 40, "
    "\"finish_reason\": \"length\", \"mean_logprob\": -2.0000}]}\n"
    "{\"id\": \"e\", \"line\": 6, \"error\": \"invalid JSON at column 12\"}\n"
    "{\"id\": 7, \"line\": 7, \"error\": \"invalid JSON at column 3\"}\n"
    "{\"id\": \"g\", \"line\": 8, \"prompt_tokens\": 5, \"outputs\": [{\"text\": \"\", \"tokens\": 1, "
    "\"finish_reason\": \"stop\", \"mean_logprob\": null}]}\n"
    "{\"id\": \"h\", \"line\": 9, \"prompt_tokens\": 5, \"outputs\": [{\"text\": \"Men's T-Shirt\", \"tokens\": 33, "
    "\"finish_reason\": \"stop\", \"mean_logprob\": -0.5000}]}";

static double num(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

static void test_fixed_file(void) {
    char *json = NULL;
    blurb_err err;
    blurb_err_clear(&err);
    REQUIRE(blurb_report_compute(OUT, sizeof OUT - 1, &json, &err) == 0);
    size_t jl = strlen(json);
    CHECK(jl > 0 && json[jl - 1] == '\n');
    cJSON *r = cJSON_Parse(json);
    REQUIRE(r != NULL);
    /* Records: 8 lines holding a record; errors: lines 4, 6, 7. */
    CHECK(num(r, "records") == 8);
    CHECK(num(r, "error_records") == 3);
    /* Outputs: T1 (line 1), T2 T3 (line 2, --n 2), T4 (line 5), T5 (line 8), T6 (line 9). */
    CHECK(num(r, "outputs") == 6);
    /* Tokens 16, 5, 5, 40, 1, 33 -> bin 0-15: 5, 5, 1 = 3; bin 16-31: 16 = 1; bin 32-47: 40, 33 = 2. */
    const cJSON *h = cJSON_GetObjectItemCaseSensitive(r, "length_histogram");
    REQUIRE(cJSON_IsArray(h) && cJSON_GetArraySize(h) == 3);
    double want_h[3][3] = {{0, 15, 3}, {16, 31, 1}, {32, 47, 2}};
    for (int b = 0; b < 3; b++) {
        const cJSON *e = cJSON_GetArrayItem(h, b);
        CHECK(num(e, "from") == want_h[b][0] && num(e, "to") == want_h[b][1] && num(e, "count") == want_h[b][2]);
    }
    /* Words (lowercased, split at whitespace and punctuation):
     *   T1 soft cotton tee soft cotton tee soft cotton tee   9 words
     *   T2 blue denim jeans                                  3
     *   T3 blue denim jeans                                  3
     *   T4 blue denim jeans                                  3
     *   T5 (empty)                                           0
     *   T6 men s t shirt                                     4   ("Men's T-Shirt")
     * unigrams 22, distinct {soft cotton tee blue denim jeans men s t shirt} = 10: distinct_1 = 10/22.
     * bigrams per output: T1 8 (distinct: soft cotton, cotton tee, tee soft), T2-T4 2 each
     * (blue denim, denim jeans), T5 0, T6 3 (men s, s t, t shirt): 17 in all, none across
     * outputs; distinct 3 + 2 + 3 = 8: distinct_2 = 8/17. */
    CHECK(fabs(num(r, "distinct_1") - 10.0 / 22.0) < 1e-12);
    CHECK(fabs(num(r, "distinct_2") - 8.0 / 17.0) < 1e-12);
    /* T1's 4-gram "soft cotton tee soft" occurs at words 0 and 3; no other output
     * has 4 words or more except T6 (one 4-gram): 1/6. */
    CHECK(fabs(num(r, "repeated_4gram_share") - 1.0 / 6.0) < 1e-12);
    /* finish_reason "length": T1, T4: 2/6. */
    CHECK(fabs(num(r, "length_share") - 2.0 / 6.0) < 1e-12);
    /* "Blue denim jeans." is written for lines 2 (T2, T3) and 5 (T4): all three equal an
     * output of another product; the empty T5 is alone: 3/6. */
    CHECK(fabs(num(r, "duplicate_share") - 3.0 / 6.0) < 1e-12);
    const cJSON *ebr = cJSON_GetObjectItemCaseSensitive(r, "errors_by_reason");
    CHECK(cJSON_GetArraySize(ebr) == 2);
    /* numbers read as N: columns 12 and 3 are one reason */
    CHECK(num(ebr, "missing required field 'title'") == 1);
    CHECK(num(ebr, "invalid JSON at column N") == 2);
    cJSON_Delete(r);
    free(json);
}

static void test_edge_cases(void) {
    char *json = NULL;
    blurb_err err;
    /* No outputs at all: counts 0, ratios null. */
    const char only_err[] = "{\"id\": 1, \"line\": 1, \"error\": \"x\"}\n";
    REQUIRE(blurb_report_compute(only_err, sizeof only_err - 1, &json, &err) == 0);
    cJSON *r = cJSON_Parse(json);
    REQUIRE(r);
    CHECK(num(r, "outputs") == 0 && num(r, "error_records") == 1);
    CHECK(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(r, "distinct_1")));
    CHECK(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(r, "duplicate_share")));
    CHECK(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(r, "length_histogram")) == 0);
    cJSON_Delete(r);
    free(json);
    /* A line that is not an output record is named. */
    const char bad[] = "{\"id\": 1, \"line\": 1, \"error\": \"x\"}\n{\"id\": 2}\n";
    blurb_err_clear(&err);
    CHECK(blurb_report_compute(bad, sizeof bad - 1, &json, &err) == BLURB_E_FORMAT && strstr(err.msg, "line 2"));
    CHECK(json == NULL);
    /* Absurd numbers are refused, not cast (a cast of 1e300 to an integer is undefined). */
    const char huge_tokens[] = "{\"id\": 1, \"line\": 1, \"outputs\": [{\"text\": \"a\", \"tokens\": 1e300, "
                               "\"finish_reason\": \"stop\"}]}\n";
    CHECK(blurb_report_compute(huge_tokens, sizeof huge_tokens - 1, &json, &err) == BLURB_E_FORMAT);
    const char huge_line[] = "{\"id\": 1, \"line\": 1e300, \"error\": \"x\"}\n";
    CHECK(blurb_report_compute(huge_line, sizeof huge_line - 1, &json, &err) == BLURB_E_FORMAT);
    const char torn[] = "{\"id\": 1, \"line\": 1, \"err";
    CHECK(blurb_report_compute(torn, sizeof torn - 1, &json, &err) == BLURB_E_FORMAT);
}

/* errors_by_reason: standalone numbers (signed, decimal, exponent) read as N;
 * digits inside words (UTF-8, size2, 0xEF, \ud800) stay. */
static void test_reason_keys(void) {
    static const char *reasons[] = {
        "invalid UTF-8 at byte 5 (column 6)", "invalid UTF-8 at byte 120 (column 121)",
        "field 'size2' is empty", "field 'size3' is empty", "x value -3.5", "x value 2.25", "x value 1e5",
        "x value 7", "unexpected byte 0xEF", "lone UTF-16 surrogate escape \\\\ud800"}; /* a JSON-escaped backslash */
    const int n = (int)(sizeof reasons / sizeof *reasons);
    char buf[4096];
    size_t len = 0;
    for (int i = 0; i < n; i++)
        len += (size_t)snprintf(buf + len, sizeof buf - len, "{\"id\": %d, \"line\": %d, \"error\": \"%s\"}\n", i + 1,
                                i + 1, reasons[i]);
    char *json = NULL;
    blurb_err err;
    REQUIRE(blurb_report_compute(buf, len, &json, &err) == 0);
    cJSON *r = cJSON_Parse(json);
    REQUIRE(r);
    const cJSON *ebr = cJSON_GetObjectItemCaseSensitive(r, "errors_by_reason");
    CHECK(num(ebr, "invalid UTF-8 at byte N (column N)") == 2);
    CHECK(num(ebr, "field 'size2' is empty") == 1 && num(ebr, "field 'size3' is empty") == 1);
    CHECK(num(ebr, "x value N") == 4);
    CHECK(num(ebr, "unexpected byte 0xEF") == 1);
    CHECK(num(ebr, "lone UTF-16 surrogate escape \\ud800") == 1);
    CHECKF(cJSON_GetArraySize(ebr) == 6, "%s", json);
    cJSON_Delete(r);
    free(json);
}

int main(void) {
    test_fixed_file();
    test_reason_keys();
    test_edge_cases();
    return check_finish("test_report");
}
