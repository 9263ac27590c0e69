/* safetensors reader: well-formed files in their variants load with the exact
 * tensors written; each kind of bad file is rejected with its own message that
 * names the file; sets (single file, index + shards) find tensors across shards. */
#include <string.h>

#include "blurb/safetensors.h"
#include "check.h"
#include "st_write.h"

static char *tmp;

/* Opens path expecting failure with code and a message holding both needles and the path. */
static void expect_fail(const char *path, int code, const char *needle1, const char *needle2) {
    blurb_st_file *f = NULL;
    blurb_err err = {0};
    int rc = blurb_st_open(path, &f, &err);
    if (getenv("BLURB_TEST_VERBOSE")) fprintf(stderr, "rejected: %s\n", err.msg);
    CHECKF(rc == code, "%s: rc %d, want %d (%s)", path, rc, code, err.msg);
    CHECK(f == NULL);
    CHECKF(strstr(err.msg, path) != NULL, "message does not name the file: %s", err.msg);
    CHECKF(strstr(err.msg, needle1) != NULL, "want '%s' in: %s", needle1, err.msg);
    if (needle2) CHECKF(strstr(err.msg, needle2) != NULL, "want '%s' in: %s", needle2, err.msg);
    blurb_st_close(f);
}

/* Writes a file whose header text is hdr (padded by the caller if wanted) and data. */
static char *raw_file(const char *name, const char *hdr, const void *data, size_t data_len) {
    char *p = stw_path(tmp, name);
    stw_write_raw(p, strlen(hdr), hdr, strlen(hdr), data, data_len);
    return p;
}

static void test_good_files(void) {
    float a[6] = {1.5f, -2.0f, 3.25f, 0.0f, -0.0f, 1e-30f};
    uint16_t h[4] = {0x3c00, 0xc000, 0x0001, 0x7c00};
    uint16_t bf = 0x3f80;
    uint8_t mask[2] = {1, 0};
    stw_tensor ts[] = {
        {"a.weight", "F32", 2, {2, 3}, a, sizeof a},
        {"h.0.bias", "F16", 1, {4}, h, sizeof h},
        {"scalar", "BF16", 0, {0}, &bf, 2},
        {"empty", "F32", 2, {0, 5}, NULL, 0},
        {"attn.bias", "BOOL", 1, {2}, mask, 2},
        {"q", "Q4_K", 1, {7}, "abc", 3}, /* unknown dtype: listed, size not checkable */
    };
    int nt = (int)(sizeof ts / sizeof ts[0]);
    const char *metas[] = {"{\"format\":\"pt\",\"note\":\"x\"}", "{}", NULL};
    for (int m = 0; m < 3; m++) {
        char name[32];
        snprintf(name, sizeof name, "good%d.safetensors", m);
        char *p = stw_path(tmp, name);
        stw_write_file(p, ts, nt, metas[m]);
        blurb_st_file *f = NULL;
        blurb_err err = {0};
        int rc = blurb_st_open(p, &f, &err);
        CHECKF(rc == 0, "%s", err.msg);
        if (rc == 0) {
            CHECK(f->n_tensors == nt);
            CHECK(f->n_metadata == (m == 0 ? 2 : 0));
            CHECK((8 + f->header_len) % 8 == 0); /* the writer padded with spaces */
            CHECK(f->data_len == sizeof a + sizeof h + 2 + 2 + 3);
            const blurb_st_tensor *t = blurb_st_find(f, "a.weight");
            CHECK(t && t->dtype == BLURB_ST_F32 && t->ndim == 2 && t->shape[0] == 2 && t->shape[1] == 3 &&
                  t->numel == 6 && t->nbytes == 24 && t->offset == 0 && strcmp(t->dtype_name, "F32") == 0);
            CHECK(t && memcmp(t->data, a, sizeof a) == 0);
            t = blurb_st_find(f, "h.0.bias");
            CHECK(t && t->dtype == BLURB_ST_F16 && t->ndim == 1 && t->shape[0] == 4 && t->offset == 24 &&
                  memcmp(t->data, h, sizeof h) == 0);
            t = blurb_st_find(f, "scalar");
            CHECK(t && t->dtype == BLURB_ST_BF16 && t->ndim == 0 && t->numel == 1 && t->nbytes == 2 &&
                  memcmp(t->data, &bf, 2) == 0);
            t = blurb_st_find(f, "empty");
            CHECK(t && t->numel == 0 && t->nbytes == 0 && t->shape[0] == 0 && t->shape[1] == 5);
            t = blurb_st_find(f, "attn.bias");
            CHECK(t && t->dtype == BLURB_ST_BOOL && memcmp(t->data, mask, 2) == 0);
            t = blurb_st_find(f, "q");
            CHECK(t && t->dtype == BLURB_ST_UNKNOWN && strcmp(t->dtype_name, "Q4_K") == 0 && t->nbytes == 3 &&
                  memcmp(t->data, "abc", 3) == 0);
            CHECK(blurb_st_find(f, "nope") == NULL);
            CHECK(blurb_st_find(f, "a.weigh") == NULL);
            /* Sorted by name. */
            for (int i = 1; i < f->n_tensors; i++) CHECK(strcmp(f->tensors[i - 1].name, f->tensors[i].name) < 0);
        }
        blurb_st_close(f);
        free(p);
    }
    /* Header with no tensors and no data; header with whitespace padding other than spaces. */
    char *p = raw_file("empty.safetensors", "{}", NULL, 0);
    blurb_st_file *f = NULL;
    blurb_err err = {0};
    CHECK(blurb_st_open(p, &f, &err) == 0 && f && f->n_tensors == 0);
    blurb_st_close(f);
    free(p);
    p = raw_file("pad.safetensors", "{\"x\":{\"dtype\":\"U8\",\"shape\":[3],\"data_offsets\":[0,3]}}  \n ", "xyz", 3);
    f = NULL;
    CHECKF(blurb_st_open(p, &f, &err) == 0, "%s", err.msg);
    CHECK(f && f->n_tensors == 1 && f->tensors[0].nbytes == 3);
    blurb_st_close(f);
    free(p);

    CHECK(blurb_st_dtype_from_name("BF16") == BLURB_ST_BF16);
    CHECK(blurb_st_dtype_from_name("F8_E4M3") == BLURB_ST_F8_E4M3);
    CHECK(blurb_st_dtype_from_name("bf16") == BLURB_ST_UNKNOWN);
    CHECK(blurb_st_dtype_bits(BLURB_ST_F64) == 64 && blurb_st_dtype_bits(BLURB_ST_F4) == 4 &&
          blurb_st_dtype_bits(BLURB_ST_UNKNOWN) == 0);
}

static void test_bad_files(void) {
    uint8_t data[64] = {0};
    char *p;

    /* Git LFS pointer: what a clone without git-lfs leaves in place of the weights. */
    p = stw_path(tmp, "lfs.safetensors");
    stw_write_text(p, "version https://git-lfs.github.com/spec/v1\n"
                      "oid sha256:8290243d2a763e1e550ecae22264d1e978c027d85e7e88b104eab720cdb58615\n"
                      "size 35479280\n");
    expect_fail(p, BLURB_E_FORMAT, "not a safetensors file", "Git LFS pointer");
    free(p);

    /* Absurd header length: an HTML error page saved under the weights' name. */
    p = stw_path(tmp, "html.safetensors");
    stw_write_text(p, "<!DOCTYPE html><html><body>404 Not Found</body></html>");
    expect_fail(p, BLURB_E_FORMAT, "not a safetensors file", "absurd header length");
    free(p);

    /* Header that is not a JSON object. */
    p = raw_file("array.safetensors", "[1, 2, 3]", NULL, 0);
    expect_fail(p, BLURB_E_FORMAT, "not a safetensors file", "not a JSON object");
    free(p);
    p = raw_file("string.safetensors", "\"abc\"", NULL, 0);
    expect_fail(p, BLURB_E_FORMAT, "not a safetensors file", "not a JSON object");
    free(p);

    /* Truncated: before the 8-byte length, inside the header, inside the data. */
    p = stw_path(tmp, "short.safetensors");
    stw_write_bytes(p, "\x10\x00\x00", 3, NULL, 0);
    expect_fail(p, BLURB_E_FORMAT, "truncated", "8-byte header length");
    free(p);
    p = stw_path(tmp, "zero.safetensors");
    stw_write_bytes(p, NULL, 0, NULL, 0);
    expect_fail(p, BLURB_E_FORMAT, "truncated", "8-byte header length");
    free(p);
    p = stw_path(tmp, "cut_header.safetensors");
    {
        const char *h = "{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";
        stw_write_raw(p, strlen(h), h, strlen(h) - 10, NULL, 0);
    }
    expect_fail(p, BLURB_E_FORMAT, "truncated", "end of its header");
    free(p);
    p = raw_file("cut_data.safetensors",
                 "{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                 "\"y\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[8,24]}}", data, 20);
    expect_fail(p, BLURB_E_FORMAT, "truncated", "declares 24 bytes of tensor data but the file holds 20");
    free(p);

    /* Overlap, gap, decreasing offsets, bytes after the last tensor. */
    p = raw_file("overlap.safetensors",
                 "{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                 "\"y\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", data, 12);
    expect_fail(p, BLURB_E_FORMAT, "overlap", "'y' [4, 12)");
    free(p);
    p = raw_file("same.safetensors",
                 "{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                 "\"y\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", data, 8);
    expect_fail(p, BLURB_E_FORMAT, "overlap", NULL);
    free(p);
    p = raw_file("gap.safetensors",
                 "{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                 "\"y\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[12,20]}}", data, 20);
    expect_fail(p, BLURB_E_FORMAT, "leave a gap", "bytes [8, 12)");
    free(p);
    p = raw_file("gap0.safetensors", "{\"y\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", data, 12);
    expect_fail(p, BLURB_E_FORMAT, "leave a gap", "bytes [0, 4)");
    free(p);
    p = raw_file("decreasing.safetensors",
                 "{\"x\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,0]}}", data, 8);
    expect_fail(p, BLURB_E_FORMAT, "not in increasing order", NULL);
    free(p);
    p = raw_file("trailing.safetensors", "{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", data,
                 16);
    expect_fail(p, BLURB_E_FORMAT, "8 bytes after the end of the last tensor", "gap");
    free(p);

    /* Byte size inconsistent with dtype x shape. */
    p = raw_file("size.safetensors", "{\"x\":{\"dtype\":\"F16\",\"shape\":[2,3],\"data_offsets\":[0,8]}}", data, 8);
    expect_fail(p, BLURB_E_FORMAT, "byte size inconsistent", "needs 12 bytes");
    free(p);

    /* Malformed JSON: cut short (then padded), trailing garbage, bad token. */
    {
        char h[128];
        snprintf(h, sizeof h, "%-64s", "{\"x\":{\"dtype\":\"F32\",\"shape\":[2],");
        p = raw_file("badjson1.safetensors", h, data, 8);
        expect_fail(p, BLURB_E_FORMAT, "malformed JSON header", NULL);
        free(p);
    }
    p = raw_file("badjson2.safetensors", "{} x", NULL, 0);
    expect_fail(p, BLURB_E_FORMAT, "malformed JSON header", "unexpected byte 0x78");
    free(p);
    p = raw_file("badjson3.safetensors", "{\"x\": tru}", NULL, 0);
    expect_fail(p, BLURB_E_FORMAT, "malformed JSON header", NULL);
    free(p);

    /* Bad entries and duplicates. */
    p = raw_file("nodtype.safetensors", "{\"x\":{\"shape\":[2],\"data_offsets\":[0,8]}}", data, 8);
    expect_fail(p, BLURB_E_FORMAT, "tensor 'x'", "\"dtype\" missing");
    free(p);
    p = raw_file("negshape.safetensors", "{\"x\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", data,
                 8);
    expect_fail(p, BLURB_E_FORMAT, "tensor 'x'", "shape[0] is not a non-negative integer");
    free(p);
    p = raw_file("offs3.safetensors", "{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4,8]}}", data,
                 8);
    expect_fail(p, BLURB_E_FORMAT, "tensor 'x'", "data_offsets");
    free(p);
    p = raw_file("notobj.safetensors", "{\"x\":[1,2]}", NULL, 0);
    expect_fail(p, BLURB_E_FORMAT, "tensor 'x'", "not a JSON object");
    free(p);
    p = raw_file("meta.safetensors", "{\"__metadata__\":[1]}", NULL, 0);
    expect_fail(p, BLURB_E_FORMAT, "__metadata__", NULL);
    free(p);
    p = raw_file("dup.safetensors",
                 "{\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                 "\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", data, 8);
    expect_fail(p, BLURB_E_FORMAT, "'x' appears twice", NULL);
    free(p);
    p = raw_file("huge.safetensors",
                 "{\"x\":{\"dtype\":\"F64\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,8]}}", data, 8);
    expect_fail(p, BLURB_E_FORMAT, "shape too large", NULL);
    free(p);

    /* Not a file at all. */
    p = stw_path(tmp, "missing.safetensors");
    expect_fail(p, BLURB_E_IO, "cannot open", NULL);
    free(p);
    expect_fail(tmp, BLURB_E_IO, "not a regular file", NULL);
}

/* Every prefix of a good file is rejected (never read out of bounds: ASan), and
 * flipping any single header byte either still parses or is rejected cleanly. */
static void test_robustness(void) {
    float a[3] = {1, 2, 3};
    uint16_t h[2] = {1, 2};
    stw_tensor ts[] = {{"w", "F32", 1, {3}, a, sizeof a}, {"b", "BF16", 2, {1, 2}, h, sizeof h}};
    char *p = stw_path(tmp, "robust.safetensors");
    stw_write_file(p, ts, 2, "{\"format\":\"pt\"}");
    blurb_st_file *f = NULL;
    blurb_err err = {0};
    REQUIRE(blurb_st_open(p, &f, &err) == 0);
    size_t size = 8 + f->header_len + f->data_len;
    uint8_t *buf = malloc(size);
    REQUIRE(buf);
    memcpy(buf, f->map, size);
    blurb_st_close(f);
    int rejected = 0;
    for (size_t n = 0; n < size; n++) {
        /* An exact-size heap copy so ASan sees any read past the end. */
        uint8_t *cut = malloc(n ? n : 1);
        REQUIRE(cut);
        memcpy(cut, buf, n);
        blurb_st_file *g = NULL;
        if (blurb_st_parse("cut", cut, n, &g, &err) < 0) rejected++;
        blurb_st_close(g);
        free(cut);
    }
    CHECKF(rejected == (int)size, "%d of %zu truncations rejected", rejected, size);
    int ok = 0, bad = 0;
    for (size_t i = 0; i < 8 + (size_t)(size - sizeof a - sizeof h - 8); i++) {
        for (int bit = 0; bit < 8; bit++) {
            uint8_t *m = malloc(size);
            REQUIRE(m);
            memcpy(m, buf, size);
            m[i] ^= (uint8_t)(1u << bit);
            blurb_st_file *g = NULL;
            int rc = blurb_st_parse("flip", m, size, &g, &err);
            if (rc == 0) {
                ok++;
                for (int k = 0; k < g->n_tensors; k++)
                    CHECK(g->tensors[k].offset + g->tensors[k].nbytes <= g->data_len);
            } else {
                bad++;
                CHECK(rc == BLURB_E_FORMAT && strstr(err.msg, "flip") == err.msg);
            }
            blurb_st_close(g);
            free(m);
        }
    }
    CHECK(bad > 0);
    printf("robustness: %zu truncations rejected; bit flips: %d parsed, %d rejected\n", size, ok, bad);
    free(buf);
    free(p);
}

static void test_sets(void) {
    float w0[4] = {1, 2, 3, 4}, w1[2] = {5, 6}, w2[3] = {7, 8, 9};
    stw_tensor s1[] = {{"h.0.w", "F32", 2, {2, 2}, w0, sizeof w0}, {"h.1.w", "F32", 1, {2}, w1, sizeof w1}};
    stw_tensor s2[] = {{"ln_f.w", "F32", 1, {3}, w2, sizeof w2}};
    blurb_err err = {0};
    blurb_st_set *s = NULL;

    /* One file. */
    char *d = stw_subdir(tmp, "single");
    char *p = stw_path(d, "model.safetensors");
    stw_write_file(p, s1, 2, NULL);
    CHECKF(blurb_st_set_open(d, &s, &err) == 0, "%s", err.msg);
    if (s) {
        CHECK(s->n_files == 1 && s->n_tensors == 2 && s->index_path == NULL);
        const blurb_st_file *in = NULL;
        const blurb_st_tensor *t = blurb_st_set_find(s, "h.1.w", &in);
        CHECK(t && in == s->files[0] && memcmp(t->data, w1, sizeof w1) == 0);
        CHECK(blurb_st_set_find(s, "ln_f.w", &in) == NULL && in == NULL);
    }
    blurb_st_set_close(s);
    s = NULL;
    free(p);
    free(d);

    /* Index + 2 shards. */
    d = stw_subdir(tmp, "sharded");
    char *a = stw_path(d, "model-00001-of-00002.safetensors");
    char *b = stw_path(d, "model-00002-of-00002.safetensors");
    char *ix = stw_path(d, "model.safetensors.index.json");
    stw_write_file(a, s1, 2, "{\"format\":\"pt\"}");
    stw_write_file(b, s2, 1, "{\"format\":\"pt\"}");
    const char *good_index =
        "{\n  \"metadata\": {\"total_size\": 36},\n  \"weight_map\": {\n"
        "    \"h.0.w\": \"model-00001-of-00002.safetensors\",\n"
        "    \"h.1.w\": \"model-00001-of-00002.safetensors\",\n"
        "    \"ln_f.w\": \"model-00002-of-00002.safetensors\"\n  }\n}\n";
    stw_write_text(ix, good_index);
    CHECKF(blurb_st_set_open(d, &s, &err) == 0, "%s", err.msg);
    if (s) {
        CHECK(s->n_files == 2 && s->n_tensors == 3 && s->index_path && strcmp(s->index_path, ix) == 0);
        const blurb_st_file *in = NULL;
        const blurb_st_tensor *t = blurb_st_set_find(s, "ln_f.w", &in);
        CHECK(t && in && strcmp(in->path, b) == 0 && memcmp(t->data, w2, sizeof w2) == 0);
        t = blurb_st_set_find(s, "h.0.w", &in);
        CHECK(t && in && strcmp(in->path, a) == 0 && memcmp(t->data, w0, sizeof w0) == 0);
    }
    blurb_st_set_close(s);
    s = NULL;

    struct {
        const char *index;
        int code;
        const char *needle1, *needle2;
    } bad[] = {
        {"{\"weight_map\": {\"h.0.w\": \"model-00001-of-00002.safetensors\",", BLURB_E_FORMAT, "malformed JSON",
         "line 1"},
        {"{\"metadata\": {}}", BLURB_E_FORMAT, "no \"weight_map\"", NULL},
        {"{\"weight_map\": {}}", BLURB_E_FORMAT, "\"weight_map\" is empty", NULL},
        {"{\"weight_map\": {\"h.0.w\": \"../model-00001-of-00002.safetensors\"}}", BLURB_E_FORMAT,
         "plain file names", NULL},
        {"{\"weight_map\": {\"h.0.w\": \"model-00001-of-00002.safetensors\", \"x\": \"gone.safetensors\"}}",
         BLURB_E_IO, "gone.safetensors", "cannot open"},
        {"{\"weight_map\": {\"h.0.w\": \"model-00002-of-00002.safetensors\","
         " \"ln_f.w\": \"model-00001-of-00002.safetensors\"}}",
         BLURB_E_FORMAT, "weight_map puts tensor 'h.0.w' in model-00002-of-00002.safetensors", "another shard"},
        {"{\"weight_map\": {\"h.0.w\": \"model-00001-of-00002.safetensors\","
         " \"nope\": \"model-00002-of-00002.safetensors\"}}",
         BLURB_E_FORMAT, "tensor 'nope'", "does not hold it"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        stw_write_text(ix, bad[i].index);
        blurb_err e2 = {0};
        int rc = blurb_st_set_open(d, &s, &e2);
        CHECKF(rc == bad[i].code, "index %zu: rc %d (%s)", i, rc, e2.msg);
        CHECK(s == NULL);
        CHECKF(strstr(e2.msg, bad[i].needle1) != NULL, "index %zu: want '%s' in: %s", i, bad[i].needle1, e2.msg);
        if (bad[i].needle2)
            CHECKF(strstr(e2.msg, bad[i].needle2) != NULL, "index %zu: want '%s' in: %s", i, bad[i].needle2,
                   e2.msg);
        CHECKF(strstr(e2.msg, d) != NULL, "index %zu: message does not name the directory: %s", i, e2.msg);
        blurb_st_set_close(s);
        s = NULL;
    }
    /* The same tensor in two shards. */
    stw_write_file(b, s1, 1, NULL);
    stw_write_text(ix, good_index);
    CHECK(blurb_st_set_open(d, &s, &err) == BLURB_E_FORMAT && s == NULL);
    CHECKF(strstr(err.msg, "tensor 'h.0.w' is in two shards") != NULL, "%s", err.msg);
    /* A bad shard is reported with the shard's own path and its problem. */
    stw_write_text(b, "version https://git-lfs.github.com/spec/v1\n");
    CHECK(blurb_st_set_open(d, &s, &err) == BLURB_E_FORMAT && s == NULL);
    CHECKF(strstr(err.msg, b) && strstr(err.msg, "Git LFS pointer"), "%s", err.msg);
    free(a);
    free(b);
    free(ix);
    free(d);

    /* No weights at all. */
    d = stw_subdir(tmp, "nothing");
    CHECK(blurb_st_set_open(d, &s, &err) == BLURB_E_IO && s == NULL);
    CHECKF(strstr(err.msg, d) && strstr(err.msg, "neither model.safetensors nor model.safetensors.index.json"),
           "%s", err.msg);
    free(d);
}

int main(void) {
    tmp = stw_mkdtemp();
    test_good_files();
    test_bad_files();
    test_robustness();
    test_sets();
    stw_rmtree(tmp);
    free(tmp);
    return check_finish("safetensors");
}
