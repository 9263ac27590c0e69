/* Catalog reading (line numbering, CRLF, blank lines, BOM) and per-record
 * parsing: ids, raw number text, and every kind of bad line with its reason. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "blurb/catalog.h"
#include "check.h"

#define L(lit) lit, sizeof(lit) - 1

/* Parses one line; returns the rc and leaves rec for inspection. */
static int parse(const char *line, size_t len, long no, blurb_record *rec, blurb_err *why) {
    blurb_err_clear(why);
    return blurb_record_parse(line, len, no, rec, why);
}

/* Expects a bad line: error code, reason containing `want`, id = line number. */
static void bad(const char *line, size_t len, const char *want) {
    blurb_record rec;
    blurb_err why;
    int rc = parse(line, len, 42, &rec, &why);
    CHECKF(rc == BLURB_E_FORMAT, "line %.*s: rc %d", (int)len, line, rc);
    CHECKF(strstr(why.msg, want) != NULL, "line %.*s: reason '%s', want '%s'", (int)len, line, why.msg, want);
    CHECK(rec.root == NULL && rec.n_nums == 0);
    CHECK(strcmp(rec.id_json, "42") == 0 && strcmp(rec.id_key, "42") == 0 && rec.id_key_len == 2);
    CHECK(rec.line_no == 42);
    blurb_record_clear(&rec);
}

static void test_split(void) {
    blurb_err err;
    blurb_catalog *cat = NULL;
    /* 1: obj, 2: empty, 3: blanks+CR, 4: obj CRLF, 5: obj without final newline */
    const char in[] = "{\"a\":1}\n\n \t\r\n{\"b\":2}\r\n{\"c\":3}";
    REQUIRE(blurb_catalog_from_memory(in, sizeof in - 1, &cat, &err) == 0);
    CHECK(cat->n_lines == 3);
    CHECK(cat->n_physical == 5);
    CHECK(cat->lines[0].line_no == 1 && cat->lines[1].line_no == 4 && cat->lines[2].line_no == 5);
    CHECK(cat->lines[1].len == 7 && memcmp(cat->data + cat->lines[1].off, "{\"b\":2}", 7) == 0);
    CHECK(cat->lines[2].len == 7 && memcmp(cat->data + cat->lines[2].off, "{\"c\":3}", 7) == 0);
    blurb_catalog_free(cat);

    /* A final newline does not make an extra line; a BOM is skipped. */
    const char in2[] = "\xEF\xBB\xBF{\"a\":1}\n\n";
    REQUIRE(blurb_catalog_from_memory(in2, sizeof in2 - 1, &cat, &err) == 0);
    CHECK(cat->n_lines == 1 && cat->n_physical == 2);
    CHECK(cat->lines[0].off == 3 && cat->lines[0].len == 7);
    blurb_catalog_free(cat);

    REQUIRE(blurb_catalog_from_memory("", 0, &cat, &err) == 0);
    CHECK(cat->n_lines == 0 && cat->n_physical == 0);
    blurb_catalog_free(cat);

    /* A NUL byte is an ordinary byte of its line (the record parser rejects it). */
    const char in3[] = "{\"a\":\0}\n{}";
    REQUIRE(blurb_catalog_from_memory(in3, sizeof in3 - 1, &cat, &err) == 0);
    CHECK(cat->n_lines == 2 && cat->lines[0].len == 7);
    blurb_catalog_free(cat);

    /* From a file, and a missing file. */
    char path[] = "/tmp/blurb_test_catalog_XXXXXX";
    int fd = mkstemp(path);
    REQUIRE(fd >= 0);
    FILE *f = fdopen(fd, "wb");
    REQUIRE(f);
    fputs("{\"id\":\"x\"}\r\n\r\n{\"id\":\"y\"}\r\n", f);
    REQUIRE(fclose(f) == 0);
    REQUIRE(blurb_catalog_read(path, &cat, &err) == 0);
    CHECK(cat->n_lines == 2 && cat->lines[1].line_no == 3 && cat->lines[1].len == 10);
    blurb_catalog_free(cat);
    unlink(path);
    CHECK(blurb_catalog_read("/nonexistent/blurb/catalog.jsonl", &cat, &err) == BLURB_E_IO);
    CHECK(cat == NULL && strstr(err.msg, "/nonexistent/blurb/catalog.jsonl") != NULL);
}

static void test_good(void) {
    blurb_record rec;
    blurb_err why;

    REQUIRE(parse(L("{\"id\": \"myntra-1\", \"title\": \"T\", \"price\": 1.50, \"big\": 12345678901234567890,"
                    " \"n\": {\"x\": [1e3, -0.0, \"s\", 7]}}"), 3, &rec, &why) == 0);
    CHECK(strcmp(rec.id_json, "\"myntra-1\"") == 0);
    CHECK(strcmp(rec.id_key, "myntra-1") == 0 && rec.id_key_len == 8);
    CHECK(rec.n_nums == 5);
    size_t n;
    const char *s = blurb_record_number_text(&rec, cJSON_GetObjectItemCaseSensitive(rec.root, "price"), &n);
    CHECK(s && n == 4 && memcmp(s, "1.50", 4) == 0);
    s = blurb_record_number_text(&rec, cJSON_GetObjectItemCaseSensitive(rec.root, "big"), &n);
    CHECK(s && n == 20 && memcmp(s, "12345678901234567890", 20) == 0);
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(rec.root, "n"), "x");
    s = blurb_record_number_text(&rec, cJSON_GetArrayItem(x, 0), &n);
    CHECK(s && n == 3 && memcmp(s, "1e3", 3) == 0);
    s = blurb_record_number_text(&rec, cJSON_GetArrayItem(x, 1), &n);
    CHECK(s && n == 4 && memcmp(s, "-0.0", 4) == 0);
    s = blurb_record_number_text(&rec, cJSON_GetArrayItem(x, 3), &n);
    CHECK(s && n == 1 && s[0] == '7');
    CHECK(blurb_record_number_text(&rec, cJSON_GetArrayItem(x, 2), &n) == NULL);
    blurb_record_clear(&rec);

    /* Numeric id: copied as written; quotes and control characters re-escaped. */
    REQUIRE(parse(L("{\"id\": 1.0e2}"), 1, &rec, &why) == 0);
    CHECK(strcmp(rec.id_json, "1.0e2") == 0 && strcmp(rec.id_key, "1.0e2") == 0);
    blurb_record_clear(&rec);
    REQUIRE(parse(L("{\"id\": \"a\\\"b\\n\\u00e9\"}"), 1, &rec, &why) == 0);
    CHECK(strcmp(rec.id_json, "\"a\\\"b\\n\xC3\xA9\"") == 0);
    CHECK(strcmp(rec.id_key, "a\"b\n\xC3\xA9") == 0 && rec.id_key_len == 6);
    blurb_record_clear(&rec);

    /* No id, or a null one: the line number. "ID" is not "id". */
    const char *noid[] = {"{\"title\": \"x\"}", "{\"id\": null}", "{\"ID\": \"z\"}"};
    for (size_t i = 0; i < sizeof noid / sizeof *noid; i++) {
        REQUIRE(parse(noid[i], strlen(noid[i]), 17, &rec, &why) == 0);
        CHECK(strcmp(rec.id_json, "17") == 0 && strcmp(rec.id_key, "17") == 0 && rec.id_key_len == 2);
        blurb_record_clear(&rec);
    }
    /* An id that is neither string nor number: an error record, written under the line number. */
    const char *badid[] = {"{\"id\": true}", "{\"id\": [1]}", "{\"id\": {\"a\": 1}}"};
    for (size_t i = 0; i < sizeof badid / sizeof *badid; i++) {
        CHECK(parse(badid[i], strlen(badid[i]), 17, &rec, &why) == BLURB_E_FORMAT && strstr(why.msg, "field 'id'"));
        CHECK(strcmp(rec.id_json, "17") == 0 && !rec.root);
        blurb_record_clear(&rec);
    }

    /* Duplicate keys: the first wins (as cJSON's lookup). Surrogate pairs decode. */
    REQUIRE(parse(L("{\"id\": \"a\", \"id\": \"b\", \"e\": \"\\ud83d\\ude00\"}"), 1, &rec, &why) == 0);
    CHECK(strcmp(rec.id_key, "a") == 0);
    CHECK(strcmp(cJSON_GetObjectItemCaseSensitive(rec.root, "e")->valuestring, "\xF0\x9F\x98\x80") == 0);
    blurb_record_clear(&rec);

    /* Surrounding whitespace is fine; raw non-ASCII UTF-8 in strings is fine. */
    REQUIRE(parse(L(" \t{\"t\": \"caf\xC3\xA9 \xE6\x97\xA5\"}\t "), 1, &rec, &why) == 0);
    CHECK(strcmp(cJSON_GetObjectItemCaseSensitive(rec.root, "t")->valuestring, "caf\xC3\xA9 \xE6\x97\xA5") == 0);
    blurb_record_clear(&rec);
}

static void test_bad(void) {
    bad(L("{\"title\": \"x\""), "invalid JSON at the end of the line (column 13)");
    bad(L("{\"title\": \"x\"} trailing"), "invalid JSON at column 16");
    bad(L("{\"a\": tru}"), "invalid JSON at column 7");
    bad(L("{\"a\": 1,}"), "invalid JSON at the end of the line (column 9)");
    bad(L("title: x"), "invalid JSON at column 1");
    bad(L("{\"a\": \"\\ud800\"}"), "lone UTF-16 surrogate escape \\ud800 (cJSON refuses unpaired surrogates)");
    bad(L("{\"a\": \"ok \\uDC00\"}"), "lone UTF-16 surrogate escape \\uDC00");
    bad(L("{\"a\": \"\\ud83d x\"}"), "surrogate");
    bad(L("[1, 2]"), "not a JSON object (an array)");
    bad(L("{\"id\": [1], \"title\": \"x\"}"), "field 'id' must be a string or a number, not an array");
    bad(L("{\"id\": true, \"title\": \"x\"}"), "field 'id' must be a string or a number");
    /* Valid JSON nested deeper than cJSON parses: named as such, not as a syntax error. */
    {
        static char deep[4004];
        size_t n = 0;
        memcpy(deep, "{\"a\": ", 6);
        n = 6;
        for (int i = 0; i < 1500; i++) deep[n++] = '[';
        for (int i = 0; i < 1500; i++) deep[n++] = ']';
        deep[n++] = '}';
        bad(deep, n, "JSON nested more than 1000 levels deep");
    }
    bad(L("\"just a string\""), "not a JSON object (a string)");
    bad(L("3"), "not a JSON object (a number)");
    bad(L("null"), "not a JSON object (null)");
    bad(L("{\"t\": \"caf\xC3\"}"), "invalid UTF-8 at byte 10");
    bad(L("{\"t\": \"\xED\xA0\x80\"}"), "invalid UTF-8 at byte 7");    /* raw surrogate */
    bad(L("{\"t\": \"\xC0\xAF\"}"), "invalid UTF-8");                    /* overlong */
    bad(L("{\"t\": \"a\\u0000b\"}"), "escaped NUL (\\u0000) at column 9");
    bad(L("{\"a\\u0000\": 1}"), "escaped NUL");
    bad(L("{\"t\": \"a\tb\"}"), "unescaped control character U+0009");
    bad(L("{\"t\": \"a\0b\"}"), "unescaped control character U+0000");
    bad(L("{\"t\":\0 1}"), "unexpected byte 0x00");
    bad(L("{\"t\":\x01 1}"), "unexpected byte 0x01");
    bad(L("\xEF\xBB\xBF{\"t\": 1}"), "unexpected byte 0xEF");
    bad(L("{\"p\": 01}"), "malformed number '01'");
    bad(L("{\"p\": 1.}"), "malformed number '1.'");
    bad(L("{\"p\": -01}"), "malformed number '-01'");
    bad(L("{\"p\": [1, 2e+]}"), "invalid JSON");
    bad(L(""), "invalid JSON");
}

int main(void) {
    test_split();
    test_good();
    test_bad();
    return check_finish("catalog");
}
