/* Tokenizer loading: HF tokenizer.json written here from GPT-2's encoder.json
 * and vocab.bpe (merges both as "a b" strings and as [a, b] pairs) must give
 * the golden ids; the options blurb implements (add_prefix_space,
 * ignore_merges, <|endoftext|> as an added token) behave as in HF tokenizers
 * (expected ids from HF tokenizers); everything else is refused with a clear
 * error; a model directory without tokenizer files falls back to GPT-2's. */
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "blurb/tokenizer.h"
#include "blurb/utf8.h"
#include "check.h"
#include "file_test_util.h"
#include "tokenizer_golden_read.h"

static char tmpdir[64];
static golden_case *golden;
static size_t n_golden;

/* GPT-2 byte -> code point (openai/gpt-2 encoder.py bytes_to_unicode). */
static unsigned byte_cp(unsigned b) {
    if ((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255)) return b;
    unsigned k = 0;
    for (unsigned x = 0; x < b; x++)
        if (!((x >= 33 && x <= 126) || (x >= 161 && x <= 172) || (x >= 174 && x <= 255))) k++;
    return 256 + k;
}

static void byte_str(unsigned b, char out[3]) {
    unsigned cp = byte_cp(b);
    if (cp < 0x80) { out[0] = (char)cp; out[1] = 0; }
    else { out[0] = (char)(0xC0 | cp >> 6); out[1] = (char)(0x80 | (cp & 0x3F)); out[2] = 0; }
}

/* The file, which must exist. */
static char *must_slurp(const char *path) {
    char *s = slurp(path, NULL);
    REQUIRE(s);
    return s;
}

static char *in_tmp(const char *name) {
    static char path[256];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    return path;
}

static void clear_tmp(void) {
    const char *names[] = {"tokenizer.json", "encoder.json", "vocab.bpe"};
    for (size_t i = 0; i < 3; i++) unlink(in_tmp(names[i]));
}

/* tokenizer.json as HF's GPT-2 has it, from the shipped files. */
static cJSON *gpt2_json(bool pairs) {
    char *enc = must_slurp(BLURB_SOURCE_DIR "/weights/tokenizer/encoder.json");
    char *bpe = must_slurp(BLURB_SOURCE_DIR "/weights/tokenizer/vocab.bpe");
    cJSON *vocab = cJSON_Parse(enc);
    REQUIRE(vocab);
    cJSON *merges = cJSON_CreateArray();
    char *save = NULL;
    for (char *line = strtok_r(bpe, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (strncmp(line, "#version", 8) == 0) continue;
        if (pairs) {
            char *sp = strchr(line, ' ');
            REQUIRE(sp);
            *sp = 0;
            cJSON *pair = cJSON_CreateArray();
            cJSON_AddItemToArray(pair, cJSON_CreateString(line));
            cJSON_AddItemToArray(pair, cJSON_CreateString(sp + 1));
            cJSON_AddItemToArray(merges, pair);
        } else {
            cJSON_AddItemToArray(merges, cJSON_CreateString(line));
        }
    }
    free(enc);
    free(bpe);
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "version", "1.0");
    cJSON *added = cJSON_AddArrayToObject(root, "added_tokens");
    cJSON *eot = cJSON_CreateObject();
    cJSON_AddNumberToObject(eot, "id", 50256);
    cJSON_AddStringToObject(eot, "content", "<|endoftext|>");
    cJSON_AddBoolToObject(eot, "special", 1);
    cJSON_AddItemToArray(added, eot);
    cJSON_AddNullToObject(root, "normalizer");
    cJSON *pre = cJSON_AddObjectToObject(root, "pre_tokenizer");
    cJSON_AddStringToObject(pre, "type", "ByteLevel");
    cJSON_AddBoolToObject(pre, "add_prefix_space", 0);
    cJSON_AddBoolToObject(pre, "trim_offsets", 1);
    cJSON_AddBoolToObject(pre, "use_regex", 1);
    cJSON *dec = cJSON_AddObjectToObject(root, "decoder");
    cJSON_AddStringToObject(dec, "type", "ByteLevel");
    cJSON *model = cJSON_AddObjectToObject(root, "model");
    cJSON_AddStringToObject(model, "type", "BPE");
    cJSON_AddNullToObject(model, "dropout");
    cJSON_AddNullToObject(model, "unk_token");
    cJSON_AddStringToObject(model, "continuing_subword_prefix", "");
    cJSON_AddStringToObject(model, "end_of_word_suffix", "");
    cJSON_AddBoolToObject(model, "fuse_unk", 0);
    cJSON_AddBoolToObject(model, "byte_fallback", 0);
    cJSON_AddBoolToObject(model, "ignore_merges", 0);
    cJSON_AddItemToObject(model, "vocab", vocab);
    cJSON_AddItemToObject(model, "merges", merges);
    return root;
}

/* A 260-token byte-level vocabulary: the 256 bytes, "bc", "ab", "abc",
 * <|endoftext|>; merges b+c, a+b, ab+c in that rank order. */
static cJSON *tiny_json(bool ignore_merges) {
    cJSON *root = cJSON_CreateObject();
    cJSON_AddNullToObject(root, "normalizer");
    cJSON *pre = cJSON_AddObjectToObject(root, "pre_tokenizer");
    cJSON_AddStringToObject(pre, "type", "ByteLevel");
    cJSON_AddBoolToObject(pre, "add_prefix_space", 0);
    cJSON *model = cJSON_AddObjectToObject(root, "model");
    cJSON_AddStringToObject(model, "type", "BPE");
    cJSON_AddBoolToObject(model, "ignore_merges", ignore_merges);
    cJSON *vocab = cJSON_AddObjectToObject(model, "vocab");
    for (unsigned b = 0; b < 256; b++) {
        char s[3];
        byte_str(b, s);
        cJSON_AddNumberToObject(vocab, s, b);
    }
    cJSON_AddNumberToObject(vocab, "bc", 256);
    cJSON_AddNumberToObject(vocab, "ab", 257);
    cJSON_AddNumberToObject(vocab, "abc", 258);
    cJSON_AddNumberToObject(vocab, "<|endoftext|>", 259);
    cJSON *merges = cJSON_AddArrayToObject(model, "merges");
    cJSON_AddItemToArray(merges, cJSON_CreateString("b c"));
    cJSON_AddItemToArray(merges, cJSON_CreateString("a b"));
    cJSON_AddItemToArray(merges, cJSON_CreateString("ab c"));
    return root;
}

static void write_json(cJSON *root) {
    char *s = cJSON_PrintUnformatted(root);
    REQUIRE(s);
    spit_str(in_tmp("tokenizer.json"), s);
    free(s);
}

/* Loads tmpdir with vocab_size; returns the error code, *tok on success. */
static int load_tmp(int vocab_size, blurb_tokenizer **tok, blurb_err *err) {
    blurb_err_clear(err);
    return blurb_tokenizer_load(tmpdir, vocab_size, tok, err);
}

static size_t golden_exact(const blurb_tokenizer *tok) {
    size_t exact = 0;
    blurb_err err = {0};
    for (size_t i = 0; i < n_golden; i++) {
        int32_t *ids = NULL;
        size_t n = 0;
        if (blurb_tokenizer_encode(tok, golden[i].text, golden[i].len, false, &ids, &n, &err) == 0 &&
            n == golden[i].n_ids && memcmp(ids, golden[i].ids, n * sizeof *ids) == 0)
            exact++;
        free(ids);
    }
    return exact;
}

static bool encodes_to(const blurb_tokenizer *tok, const char *text, bool special, const int32_t *want, size_t n_want) {
    blurb_err err = {0};
    int32_t *ids = NULL;
    size_t n = 0;
    bool ok = blurb_tokenizer_encode(tok, text, strlen(text), special, &ids, &n, &err) == 0 && n == n_want &&
              memcmp(ids, want, n * sizeof *ids) == 0;
    free(ids);
    return ok;
}
#define ENC(tok, text, special, ...)                                                           \
    do {                                                                                       \
        static const int32_t want_[] = {__VA_ARGS__};                                          \
        CHECKF(encodes_to(tok, text, special, want_, sizeof want_ / sizeof *want_), "%s", text); \
    } while (0)

/* Expects loading to fail with code and a message containing needle. */
static void expect_fail(int vocab_size, int code, const char *needle) {
    blurb_err err = {0};
    blurb_tokenizer *tok = (blurb_tokenizer *)1;
    int rc = load_tmp(vocab_size, &tok, &err);
    CHECKF(rc == code && tok == NULL && strstr(err.msg, needle), "want %d '%s', got %d '%s'", code, needle, rc,
           err.msg);
    if (rc == 0) blurb_tokenizer_free(tok);
}

int main(void) {
    blurb_err err = {0};
    blurb_tokenizer *tok = NULL;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/blurb_tok_XXXXXX");
    REQUIRE(mkdtemp(tmpdir));
    n_golden = golden_load(BLURB_TEST_DATA "/tokenizer_golden.jsonl", &golden);
    REQUIRE(n_golden == 1364);

    /* HF tokenizer.json, both merges formats. */
    for (int pairs = 0; pairs < 2; pairs++) {
        cJSON *root = gpt2_json(pairs);
        write_json(root);
        cJSON_Delete(root);
        CHECK(load_tmp(50257, &tok, &err) == 0);
        if (!tok) continue;
        CHECK(blurb_tokenizer_vocab_size(tok) == 50257 && blurb_tokenizer_eot_id(tok) == 50256);
        size_t exact = golden_exact(tok);
        printf("tokenizer.json (merges as %s): %zu of %zu golden texts id-exact\n", pairs ? "pairs" : "strings",
               exact, n_golden);
        CHECK(exact == n_golden);
        ENC(tok, "a <|endoftext|> b", true, 64, 220, 50256, 275);
        blurb_tokenizer_free(tok);
        tok = NULL;
    }
    /* A vocab_size above the tokenizer's (padded embedding) is fine. */
    CHECK(load_tmp(50304, &tok, &err) == 0);
    blurb_tokenizer_free(tok);
    tok = NULL;
    expect_fail(50000, BLURB_E_UNSUPPORTED, "50257 tokens but the model's vocab_size is 50000");

    /* HF ByteLevel add_prefix_space=true (ids from HF tokenizers). */
    {
        cJSON *root = gpt2_json(false);
        cJSON_ReplaceItemInObject(cJSON_GetObjectItem(root, "pre_tokenizer"), "add_prefix_space", cJSON_CreateTrue());
        write_json(root);
        cJSON_Delete(root);
        CHECK(load_tmp(50257, &tok, &err) == 0);
        if (tok) {
            ENC(tok, "Hello world", false, 18435, 995);
            ENC(tok, " Hello", false, 18435);
            ENC(tok, "\nHi", false, 220, 198, 17250);
            ENC(tok, "a <|endoftext|> b", false, 257, 1279, 91, 437, 1659, 5239, 91, 29, 275);
            /* Each segment between special tokens gets its own prefix space. */
            ENC(tok, "a <|endoftext|> b", true, 257, 220, 50256, 275);
            ENC(tok, "<|endoftext|>x", true, 50256, 2124);
            ENC(tok, "x<|endoftext|>", true, 2124, 50256);
            blurb_tokenizer_free(tok);
            tok = NULL;
        }
    }
    /* <|endoftext|> only in added_tokens, not in model.vocab. */
    {
        cJSON *root = gpt2_json(true);
        cJSON *vocab = cJSON_GetObjectItem(cJSON_GetObjectItem(root, "model"), "vocab");
        cJSON_DeleteItemFromObjectCaseSensitive(vocab, "<|endoftext|>");
        write_json(root);
        cJSON_Delete(root);
        CHECK(load_tmp(50257, &tok, &err) == 0);
        if (tok) {
            CHECK(blurb_tokenizer_eot_id(tok) == 50256 && blurb_tokenizer_vocab_size(tok) == 50257);
            ENC(tok, "x<|endoftext|>", true, 87, 50256);
            ENC(tok, "x<|endoftext|>", false, 87, 27, 91, 437, 1659, 5239, 91, 29);
            blurb_tokenizer_free(tok);
            tok = NULL;
        }
    }
    /* ignore_merges on a tiny vocabulary (ids from HF tokenizers): "abc" merges
     * b+c first and then finds no a+bc, unless whole-token lookup comes first. */
    for (int ignore = 0; ignore < 2; ignore++) {
        cJSON *root = tiny_json(ignore);
        write_json(root);
        cJSON_Delete(root);
        CHECK(load_tmp(260, &tok, &err) == 0);
        if (!tok) continue;
        if (ignore) {
            ENC(tok, "abc", false, 258);
        } else {
            ENC(tok, "abc", false, 97, 256);
        }
        ENC(tok, "ab", false, 257);
        ENC(tok, "abcabc x abc", false, 97, 256, 97, 256, 32, 120, 32, 97, 256);
        ENC(tok, "aabcc", false, 97, 97, 256, 99);
        blurb_tokenizer_free(tok);
        tok = NULL;
    }

    /* Refused: other added tokens, other pipelines, broken files. */
    struct { const char *path, *key, *json; int code; const char *needle; } bad[] = {
        {"", "added_tokens", "[{\"id\":50257,\"content\":\"<|pad|>\",\"special\":true}]", BLURB_E_UNSUPPORTED,
         "added token '<|pad|>' (id 50257) is not supported"},
        {"", "normalizer", "{\"type\":\"NFC\"}", BLURB_E_UNSUPPORTED, "normalizer"},
        {"", "pre_tokenizer", "{\"type\":\"Whitespace\"}", BLURB_E_UNSUPPORTED, "pre_tokenizer must be ByteLevel"},
        {"model", "type", "\"WordPiece\"", BLURB_E_UNSUPPORTED, "model type WordPiece"},
        {"model", "dropout", "0.1", BLURB_E_UNSUPPORTED, "dropout"},
        {"model", "continuing_subword_prefix", "\"##\"", BLURB_E_UNSUPPORTED, "continuing_subword_prefix"},
        {"model", "merges", "[\"a b\", \"x zzzq\"]", BLURB_E_FORMAT, "model.merges[1]"},
        {"model", "merges", "[\"a b c\"]", BLURB_E_FORMAT, "model.merges[0]: expected"},
        {"model", "merges", "[[\"a\"]]", BLURB_E_FORMAT, "model.merges[0]: expected"},
        {"model", "vocab", "{\"a\": 0, \"\\u4e00\": 1}", BLURB_E_FORMAT, "not in the GPT-2 byte-level alphabet"},
        {"model", "vocab", "{\"a\": 0, \"b\": 0}", BLURB_E_FORMAT, "id 0 is used by two tokens"},
        {"model", "vocab", "{\"a\": 0, \"b\": 2}", BLURB_E_FORMAT, "outside 0..1"},
        {"model", "vocab", "{\"a\": 0, \"b\": 1}", BLURB_E_FORMAT, "no token for byte 0x00"},
        {"model", "vocab", "[]", BLURB_E_FORMAT, "not a JSON object"},
        {"model", "vocab", "{\"a\": 1e12}", BLURB_E_FORMAT, "vocabulary entry 'a' has no valid id"},
        {"model", "vocab", "{\"a\": 0.5}", BLURB_E_FORMAT, "vocabulary entry 'a' has no valid id"},
        {"", "added_tokens", "[{\"id\":-1,\"content\":\"<|endoftext|>\"}]", BLURB_E_FORMAT,
         "added_tokens[0] lacks content or a valid id"},
        {"", "added_tokens", "[{\"id\":7,\"content\":\"<|endoftext|>\"}]", BLURB_E_FORMAT,
         "<|endoftext|> has id 7 in added_tokens but another in model.vocab"},
    };
    cJSON *base = gpt2_json(false);
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        cJSON *root = cJSON_Duplicate(base, 1);
        cJSON *obj = bad[i].path[0] ? cJSON_GetObjectItem(root, bad[i].path) : root;
        cJSON *val = cJSON_Parse(bad[i].json);
        REQUIRE(val);
        if (cJSON_GetObjectItem(obj, bad[i].key)) cJSON_ReplaceItemInObject(obj, bad[i].key, val);
        else cJSON_AddItemToObject(obj, bad[i].key, val);
        /* The vocabulary cases stand alone: no <|endoftext|> to add. */
        if (strcmp(bad[i].key, "vocab") == 0) cJSON_DeleteItemFromObject(root, "added_tokens");
        write_json(root);
        cJSON_Delete(root);
        expect_fail(50257, bad[i].code, bad[i].needle);
    }
    /* A long quoted token is cut at a character boundary: messages stay UTF-8. */
    {
        cJSON *root = cJSON_Duplicate(base, 1);
        char content[128] = "";
        for (int i = 0; i < 30; i++) strcat(content, "\xE6\x97\xA5");
        cJSON *added = cJSON_CreateArray();
        cJSON *t = cJSON_CreateObject();
        cJSON_AddNumberToObject(t, "id", 50257);
        cJSON_AddStringToObject(t, "content", content);
        cJSON_AddItemToArray(added, t);
        cJSON_ReplaceItemInObject(root, "added_tokens", added);
        write_json(root);
        cJSON_Delete(root);
        blurb_tokenizer *none = NULL;
        CHECK(load_tmp(50257, &none, &err) == BLURB_E_UNSUPPORTED);
        CHECKF(blurb_utf8_valid(err.msg, strlen(err.msg), NULL) && strstr(err.msg, "\xA5...' (id 50257)"), "%s",
               err.msg);
    }
    cJSON_Delete(base);
    spit_str(in_tmp("tokenizer.json"), "{\"model\": {\"vocab\": {");
    expect_fail(50257, BLURB_E_FORMAT, "tokenizer.json: not valid JSON");
    unlink(in_tmp("tokenizer.json"));

    /* encoder.json + vocab.bpe in the model directory. */
    {
        char *enc = must_slurp(BLURB_SOURCE_DIR "/weights/tokenizer/encoder.json");
        char *bpe = must_slurp(BLURB_SOURCE_DIR "/weights/tokenizer/vocab.bpe");
        spit_str(in_tmp("encoder.json"), enc);
        expect_fail(50257, BLURB_E_FORMAT, "has encoder.json but not vocab.bpe");
        spit_str(in_tmp("vocab.bpe"), bpe);
        CHECK(load_tmp(50257, &tok, &err) == 0);
        if (tok) CHECK(golden_exact(tok) == n_golden);
        blurb_tokenizer_free(tok);
        tok = NULL;
        spit_str(in_tmp("vocab.bpe"), "#version: 0.2\n\xC4\xA0 t\n\xC4\xA0 a b\n");
        expect_fail(50257, BLURB_E_FORMAT, "vocab.bpe: line 3: expected two tokens");
        spit_str(in_tmp("vocab.bpe"), "#version: 0.2\nzzzq t\n");
        expect_fail(50257, BLURB_E_FORMAT, "vocab.bpe: line 2: merge 'zzzq t' uses a token not in the vocabulary");
        free(enc);
        free(bpe);
    }
    clear_tmp();
    /* No tokenizer files: GPT-2's shipped ones. */
    CHECK(load_tmp(50257, &tok, &err) == 0);
    if (tok) CHECK(blurb_tokenizer_vocab_size(tok) == 50257 && golden_exact(tok) == n_golden);
    blurb_tokenizer_free(tok);
    tok = NULL;

    /* Missing files name the path. */
    int rc = blurb_tokenizer_load_files("/nonexistent/encoder.json", "/nonexistent/vocab.bpe", &tok, &err);
    CHECK(rc == BLURB_E_IO && tok == NULL && strstr(err.msg, "/nonexistent/encoder.json: cannot open"));

    rmdir(tmpdir);
    golden_free(golden, n_golden);
    return check_finish("tokenizer_load");
}
