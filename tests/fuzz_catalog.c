/* libFuzzer target for catalog input: splitting, per-record parsing and prompt
 * rendering. Input: the raw bytes of a catalog. Properties checked on every
 * record: parsing returns 0 or BLURB_E_FORMAT (never anything else, never a
 * crash), the id is always set and is a valid JSON string or number, the
 * reason of a bad line is valid UTF-8, and a rendered prompt is valid UTF-8
 * without NUL bytes (cJSON would have cut a string at an escaped NUL).
 *
 * Build as in fuzz_tokenizer_encode.c, target fuzz_catalog:
 *   build-fuzz/tests/fuzz_catalog -max_len=4096 CORPUS_DIR */
#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "blurb/catalog.h"
#include "blurb/template.h"
#include "blurb/utf8.h"

static blurb_template *tmpls[3];

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    blurb_err err;
    const char *texts[] = {NULL, "{a.b} {c?}\n{{{d}}} {e.f.g?}\n{id}", "x{title?}"};
    for (int i = 0; i < 3; i++)
        if (blurb_template_from_arg(texts[i], &tmpls[i], &err) != 0) abort();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    blurb_catalog *cat;
    blurb_err err;
    if (blurb_catalog_from_memory((const char *)data, size, &cat, &err) != 0) abort();
    for (size_t i = 0; i < cat->n_lines; i++) {
        const blurb_catalog_line *l = &cat->lines[i];
        if (l->off + l->len > cat->size || l->line_no < 1 || l->line_no > cat->n_physical) abort();
        blurb_record rec;
        blurb_err why;
        blurb_err_clear(&why);
        int rc = blurb_record_parse(cat->data + l->off, l->len, l->line_no, &rec, &why);
        if (rc != 0 && rc != BLURB_E_FORMAT) abort();
        if (!rec.id_json || !rec.id_key) abort();
        cJSON *id = cJSON_Parse(rec.id_json);
        if (!id || !(cJSON_IsString(id) || cJSON_IsNumber(id))) abort();
        cJSON_Delete(id);
        if (rc != 0) {
            if (!why.msg[0] || !blurb_utf8_valid(why.msg, strlen(why.msg), NULL)) abort();
            if (rec.root) abort();
        } else {
            if (!cJSON_IsObject(rec.root)) abort();
            for (int t = 0; t < 3; t++) {
                char *out;
                size_t n;
                int r = blurb_template_render(tmpls[t], &rec, &out, &n, &why);
                if (r != 0 && r != BLURB_E_FORMAT) abort();
                if (r == 0) {
                    if (!blurb_utf8_valid(out, n, NULL) || memchr(out, 0, n) || out[n] != '\0') abort();
                    free(out);
                }
            }
        }
        blurb_record_clear(&rec);
    }
    blurb_catalog_free(cat);
    return 0;
}
