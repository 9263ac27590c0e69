/* Prompt templates: placeholders, optional lines, literal braces, value
 * rendering (raw numbers, arrays, nested objects), @FILE, and every error. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "blurb/template.h"
#include "check.h"

/* Renders template tmpl for JSON line json; returns rc and the text in *out. */
static int render(const char *tmpl, const char *json, char **out, blurb_err *why) {
    blurb_template *t = NULL;
    blurb_err err;
    *out = NULL;
    if (blurb_template_parse(tmpl, strlen(tmpl), &t, &err) != 0) {
        fprintf(stderr, "template parse failed: %s\n", err.msg);
        return -100;
    }
    blurb_record rec;
    int rc = blurb_record_parse(json, strlen(json), 1, &rec, why);
    if (rc == 0) {
        size_t n;
        rc = blurb_template_render(t, &rec, out, &n, why);
        if (rc == 0 && n != strlen(*out)) rc = -101;
    }
    blurb_record_clear(&rec);
    blurb_template_free(t);
    return rc;
}

static void expect(const char *tmpl, const char *json, const char *want) {
    char *got;
    blurb_err why;
    int rc = render(tmpl, json, &got, &why);
    CHECKF(rc == 0 && strcmp(got, want) == 0, "template '%s' on %s: rc %d, got '%s', want '%s' (%s)", tmpl, json, rc,
           got ? got : "(null)", want, rc ? why.msg : "");
    free(got);
}

static void expect_error(const char *tmpl, const char *json, const char *want) {
    char *got;
    blurb_err why;
    int rc = render(tmpl, json, &got, &why);
    CHECKF(rc == BLURB_E_FORMAT && strstr(why.msg, want), "template '%s' on %s: rc %d, reason '%s', want '%s'", tmpl,
           json, rc, rc ? why.msg : "", want);
    free(got);
}

static void expect_parse_error(const char *tmpl, size_t len, const char *want) {
    blurb_template *t = NULL;
    blurb_err err;
    blurb_err_clear(&err);
    int rc = blurb_template_parse(tmpl, len, &t, &err);
    CHECKF(rc == BLURB_E_INVALID && t == NULL && strstr(err.msg, want), "template '%s': rc %d, '%s', want '%s'", tmpl,
           rc, err.msg, want);
    blurb_template_free(t);
}

static void test_default(void) {
    const char *d = blurb_template_default_text();
    CHECK(strcmp(d, "Product: {title}\nBrand: {brand?}\nCategory: {category?}\nDescription:") == 0);
    expect(d, "{\"title\": \"Kiki top\", \"brand\": \"H&M\", \"category\": \"Divided > Vest top\"}",
           "Product: Kiki top\nBrand: H&M\nCategory: Divided > Vest top\nDescription:");
    /* The Myntra catalog has no category: that line is left out. */
    expect(d, "{\"id\": \"myntra-1\", \"title\": \"DKNY Bag\", \"brand\": \"DKNY\", \"price\": 11745}",
           "Product: DKNY Bag\nBrand: DKNY\nDescription:");
    expect(d, "{\"title\": \"T\", \"brand\": null, \"category\": \"\"}", "Product: T\nDescription:");
    expect(d, "{\"title\": \"T\", \"brand\": [], \"category\": [\"a\", \"b\"]}", "Product: T\nCategory: a, b\nDescription:");
    /* An empty required field is an error, like a missing one. */
    expect_error(d, "{\"title\": \"\"}", "required field 'title' is empty");
    expect_error(d, "{\"title\": []}", "required field 'title' is empty");
    expect_error(d, "{\"title\": \" \\t \"}", "required field 'title' is empty");
    expect_error(d, "{\"title\": [\"\", \" \"]}", "required field 'title' is empty");
    expect(d, "{\"title\": \"T\", \"brand\": \"  \"}", "Product: T\nDescription:");
    expect_error(d, "{\"brand\": \"DKNY\"}", "missing required field 'title'");
    expect_error(d, "{\"title\": null}", "missing required field 'title'");
    expect_error(d, "{\"Title\": \"x\"}", "missing required field 'title'");
    expect_error(d, "{\"title\": {\"en\": \"x\"}}", "field 'title' is an object");

    blurb_template *t = NULL;
    blurb_err err;
    REQUIRE(blurb_template_from_arg(NULL, &t, &err) == 0);
    blurb_record rec;
    const char js[] = "{\"title\": \"A\", \"brand\": \"B\"}";
    REQUIRE(blurb_record_parse(js, sizeof js - 1, 1, &rec, &err) == 0);
    char *out;
    size_t n;
    REQUIRE(blurb_template_render(t, &rec, &out, &n, &err) == 0);
    CHECK(strcmp(out, "Product: A\nBrand: B\nDescription:") == 0 && n == strlen(out));
    free(out);
    blurb_record_clear(&rec);
    blurb_template_free(t);
}

static void test_values(void) {
    /* Numbers exactly as written, not as a double would print. */
    expect("{p} {q} {r} {s}", "{\"p\": 1.50, \"q\": 1e3, \"r\": 12345678901234567890, \"s\": -0.0}",
           "1.50 1e3 12345678901234567890 -0.0");
    expect("{a}", "{\"a\": [\"x\", 2.0, true, \"y z\"]}", "x, 2.0, true, y z");
    expect("{a}|{b}", "{\"a\": true, \"b\": false}", "true|false");
    expect("{a.b.c} {a.d}", "{\"a\": {\"b\": {\"c\": \"deep\"}, \"d\": 5}}", "deep 5");
    expect("x{a.b?}\ny", "{\"a\": \"not an object\"}", "y");
    expect("x{a.b?}\ny", "{}", "y");
    expect_error("{a.b}", "{\"a\": {}}", "missing required field 'a.b'");
    expect_error("{a.b}", "{\"a\": 3}", "missing required field 'a.b'");
    expect_error("{a}", "{\"a\": [1, [2]]}", "field 'a': an array may hold only strings, numbers and booleans");
    expect_error("{a}", "{\"a\": [null]}", "an array may hold only");
    /* Strings as they are: newlines, braces, quotes, non-ASCII. */
    expect("<{a}>", "{\"a\": \"l1\\nl2 {x} \\\"q\\\" caf\\u00e9\"}", "<l1\nl2 {x} \"q\" caf\xC3\xA9>");
    /* Keys with spaces and non-ASCII. */
    expect("{my key}/{pr\xC3\xA9is}", "{\"my key\": 1, \"pr\xC3\xA9is\": 2}", "1/2");
}

static void test_syntax(void) {
    expect("{{title}} {{{title}}}", "{\"title\": \"T\"}", "{title} {T}");
    expect("a}}b{{c", "{}", "a}b{c");
    expect("", "{}", "");
    expect("no fields\n", "{}", "no fields\n");
    /* Optional lines: the line and its newline go; several on one line. */
    expect("A\n{b?} and {c?}\nD", "{\"b\": 1}", "A\nD");
    expect("A\n{b?} and {c?}\nD", "{\"b\": 1, \"c\": 2}", "A\n1 and 2\nD");
    /* Last line dropped: the newline before it goes. */
    expect("A\nB: {b?}", "{}", "A");
    expect("A\r\nB: {b?}", "{}", "A");
    expect("A\n{b?}\n{c?}", "{}", "A");
    expect("{b?}", "{}", "");
    expect("{b?}\n{c?}\n", "{\"c\": \"x\"}", "x\n");
    /* A dropped line takes its required fields with it. */
    expect("{missing} {b?}\nok", "{}", "ok");
    expect_error("{missing} {b?}\nok", "{\"b\": 1}", "missing required field 'missing'");
    /* CR stays part of the text (CRLF templates give CRLF prompts). */
    expect("A: {a}\r\nB", "{\"a\": 1}", "A: 1\r\nB");

    expect_parse_error("{", 1, "line 1 column 1: unclosed '{'");
    expect_parse_error("ab\ncd {x", 8, "line 2 column 4: unclosed '{'");
    expect_parse_error("x}", 2, "line 1 column 2: unmatched '}'");
    expect_parse_error("{}", 2, "bad field name '{}'");
    expect_parse_error("{?}", 3, "bad field name '{?}'");
    expect_parse_error("{a..b}", 6, "bad field name");
    expect_parse_error("{.a}", 4, "bad field name");
    expect_parse_error("{a.}", 4, "bad field name");
    expect_parse_error("{a\n}", 4, "unclosed '{'");
    expect_parse_error("{a{b}}", 6, "unclosed '{'");
    expect_parse_error("ok \xFF", 4, "invalid UTF-8 at byte 3");
}

static void write_file(const char *path, const char *s) {
    FILE *f = fopen(path, "wb");
    REQUIRE(f);
    REQUIRE(fputs(s, f) >= 0);
    REQUIRE(fclose(f) == 0);
}

static void check_file_template(const char *content, const char *json, const char *want) {
    char path[] = "/tmp/blurb_test_template_XXXXXX";
    int fd = mkstemp(path);
    REQUIRE(fd >= 0);
    close(fd);
    write_file(path, content);
    char arg[64];
    snprintf(arg, sizeof arg, "@%s", path);
    blurb_template *t = NULL;
    blurb_err err;
    REQUIRE(blurb_template_from_arg(arg, &t, &err) == 0);
    blurb_record rec;
    REQUIRE(blurb_record_parse(json, strlen(json), 1, &rec, &err) == 0);
    char *out = NULL;
    size_t n;
    CHECK(blurb_template_render(t, &rec, &out, &n, &err) == 0);
    CHECKF(out && strcmp(out, want) == 0, "@FILE '%s': got '%s', want '%s'", content, out ? out : "", want);
    free(out);
    blurb_record_clear(&rec);
    blurb_template_free(t);
    unlink(path);
}

static void test_file(void) {
    check_file_template("Product: {title}\nDescription:\n", "{\"title\": \"T\"}", "Product: T\nDescription:");
    check_file_template("Product: {title}\nDescription:\n\n", "{\"title\": \"T\"}", "Product: T\nDescription:\n");
    check_file_template("P: {title}\r\nD:\r\n", "{\"title\": \"T\"}", "P: T\r\nD:");
    check_file_template("no newline {title}", "{\"title\": \"T\"}", "no newline T");

    blurb_template *t = NULL;
    blurb_err err;
    CHECK(blurb_template_from_arg("@/nonexistent/blurb.tmpl", &t, &err) == BLURB_E_IO && t == NULL);
    CHECK(strstr(err.msg, "/nonexistent/blurb.tmpl") != NULL);
    /* A plain argument is the template itself. */
    REQUIRE(blurb_template_from_arg("T={title}", &t, &err) == 0);
    blurb_record rec;
    REQUIRE(blurb_record_parse("{\"title\":1}", 11, 1, &rec, &err) == 0);
    char *out;
    size_t n;
    REQUIRE(blurb_template_render(t, &rec, &out, &n, &err) == 0);
    CHECK(strcmp(out, "T=1") == 0);
    free(out);
    blurb_record_clear(&rec);
    blurb_template_free(t);
    /* A bad @FILE template names the file. */
    char path[] = "/tmp/blurb_test_template_XXXXXX";
    int fd = mkstemp(path);
    REQUIRE(fd >= 0);
    close(fd);
    write_file(path, "oops {");
    char arg[64];
    snprintf(arg, sizeof arg, "@%s", path);
    CHECK(blurb_template_from_arg(arg, &t, &err) == BLURB_E_INVALID && t == NULL);
    CHECK(strstr(err.msg, path) != NULL && strstr(err.msg, "unclosed") != NULL);
    unlink(path);
}

int main(void) {
    test_default();
    test_values();
    test_syntax();
    test_file();
    return check_finish("template");
}
