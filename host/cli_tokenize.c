/* blurb tokenize / blurb detokenize: text <-> GPT-2 token ids with a model's
 * tokenizer (its tokenizer.json or encoder.json + vocab.bpe, else GPT-2's). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blurb/model.h"
#include "blurb/tokenizer.h"
#include "cli.h"

static void tokenize_usage(FILE *f) {
    fprintf(f, "usage: blurb tokenize [--model DIR] [--text TEXT] [--allow-special]\n\n"
               "Prints the token ids of TEXT (else of all of standard input, byte for byte: a\n"
               "trailing newline is text too) as one line of space-separated integers.\n"
               "\"<|endoftext|>\" in the text is ordinary text unless --allow-special is given.\n"
               "Without --model: $BLURB_MODEL, else the default model.\n");
}

static void detokenize_usage(FILE *f) {
    fprintf(f, "usage: blurb detokenize [--model DIR] [--ids \"ID ID ...\"]\n\n"
               "Prints the text of the token ids (else of standard input), exactly, with no\n"
               "newline added. Ids are separated by spaces, newlines or commas; [ ] are ignored,\n"
               "so a JSON list works too. Bytes that are not UTF-8 come out as U+FFFD.\n"
               "Without --model: $BLURB_MODEL, else the default model.\n");
}

/* Reads all of stdin; returns 0 or 1 (message printed). */
static int read_stdin(const char *cmd, char **out, size_t *len) {
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    if (!buf) {
        fprintf(stderr, "blurb %s: out of memory\n", cmd);
        return 1;
    }
    for (;;) {
        if (n == cap) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                fprintf(stderr, "blurb %s: out of memory reading standard input\n", cmd);
                return 1;
            }
            buf = nb;
            cap *= 2;
        }
        size_t got = fread(buf + n, 1, cap - n, stdin);
        n += got;
        if (got == 0) {
            if (ferror(stdin)) {
                fprintf(stderr, "blurb %s: cannot read standard input: %s\n", cmd, strerror(errno));
                free(buf);
                return 1;
            }
            break;
        }
    }
    *out = buf;
    *len = n;
    return 0;
}

/* Loads the tokenizer for --model DIR (or the default model), checked against
 * the model's vocab_size. Returns 0 or 1 (message printed). */
static int open_tokenizer(const char *cmd, const char *dir, blurb_tokenizer **tok) {
    blurb_err err = {0};
    char def[4096];
    if (!dir) {
        if (blurb_default_model_dir(def, sizeof def, &err) != 0) {
            fprintf(stderr, "blurb %s: %s\n", cmd, err.msg);
            return 1;
        }
        dir = def;
    }
    blurb_model *m = NULL;
    if (blurb_model_load(dir, &m, &err) != 0) {
        fprintf(stderr, "blurb %s: %s\n", cmd, err.msg);
        return 1;
    }
    int vocab_size = m->cfg.vocab_size;
    blurb_model_free(m);
    if (blurb_tokenizer_load(dir, vocab_size, tok, &err) != 0) {
        fprintf(stderr, "blurb %s: %s\n", cmd, err.msg);
        return 1;
    }
    return 0;
}

static int finish_output(const char *cmd) {
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "blurb %s: cannot write the output\n", cmd);
        return 1;
    }
    return 0;
}

int cli_tokenize(int argc, char **argv) {
    const char *dir = NULL, *text = NULL;
    bool special = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            tokenize_usage(stdout);
            return 0;
        } else if (strcmp(argv[i], "--model") == 0 || strcmp(argv[i], "--text") == 0) {
            if (i + 1 >= argc) {
                fprintf(stderr, "blurb tokenize: %s needs a value\n", argv[i]);
                return 2;
            }
            if (argv[i][2] == 'm') dir = argv[++i];
            else text = argv[++i];
        } else if (strcmp(argv[i], "--allow-special") == 0) {
            special = true;
        } else {
            fprintf(stderr, "blurb tokenize: unexpected argument '%s'\n\n", argv[i]);
            tokenize_usage(stderr);
            return 2;
        }
    }
    char *input = NULL;
    size_t len = 0;
    if (text) {
        len = strlen(text);
    } else {
        if (read_stdin("tokenize", &input, &len)) return 1;
        text = input;
    }
    blurb_tokenizer *tok = NULL;
    if (open_tokenizer("tokenize", dir, &tok)) {
        free(input);
        return 1;
    }
    blurb_err err = {0};
    int32_t *ids = NULL;
    size_t n = 0;
    int rc = blurb_tokenizer_encode(tok, text, len, special, &ids, &n, &err);
    free(input);
    blurb_tokenizer_free(tok);
    if (rc) {
        fprintf(stderr, "blurb tokenize: %s\n", err.msg);
        return 1;
    }
    for (size_t i = 0; i < n; i++) printf(i ? " %d" : "%d", (int)ids[i]);
    putchar('\n');
    free(ids);
    return finish_output("tokenize");
}

/* Parses ids separated by whitespace or commas ([ ] ignored). Returns 0 or 1 (message printed). */
static int parse_ids(const char *s, int32_t **out, size_t *n_out) {
    size_t n = 0, cap = 64;
    int32_t *ids = malloc(cap * sizeof *ids);
    if (!ids) {
        fprintf(stderr, "blurb detokenize: out of memory\n");
        return 1;
    }
    const char *p = s;
    for (;;) {
        while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r' || *p == ',' || *p == '[' || *p == ']') p++;
        if (!*p) break;
        char *end;
        errno = 0;
        long v = strtol(p, &end, 10);
        if (end == p || errno || v < INT32_MIN || v > INT32_MAX ||
            !(*end == '\0' || *end == ' ' || *end == '\t' || *end == '\n' || *end == '\r' || *end == ',' ||
              *end == ']')) {
            const char *e = p;
            while (*e && *e != ' ' && *e != '\t' && *e != '\n' && *e != ',') e++;
            fprintf(stderr, "blurb detokenize: '%.*s' (id number %zu) is not a token id\n",
                    (int)(e - p > 40 ? 40 : e - p), p, n + 1);
            free(ids);
            return 1;
        }
        if (n == cap) {
            int32_t *ni = realloc(ids, cap * 2 * sizeof *ids);
            if (!ni) {
                free(ids);
                fprintf(stderr, "blurb detokenize: out of memory\n");
                return 1;
            }
            ids = ni;
            cap *= 2;
        }
        ids[n++] = (int32_t)v;
        p = end;
    }
    *out = ids;
    *n_out = n;
    return 0;
}

int cli_detokenize(int argc, char **argv) {
    const char *dir = NULL, *id_text = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            detokenize_usage(stdout);
            return 0;
        } else if (strcmp(argv[i], "--model") == 0 || strcmp(argv[i], "--ids") == 0) {
            if (i + 1 >= argc) {
                fprintf(stderr, "blurb detokenize: %s needs a value\n", argv[i]);
                return 2;
            }
            if (argv[i][2] == 'm') dir = argv[++i];
            else id_text = argv[++i];
        } else {
            fprintf(stderr, "blurb detokenize: unexpected argument '%s'\n\n", argv[i]);
            detokenize_usage(stderr);
            return 2;
        }
    }
    char *input = NULL;
    if (!id_text) {
        size_t len;
        if (read_stdin("detokenize", &input, &len)) return 1;
        if (memchr(input, '\0', len)) {
            fprintf(stderr, "blurb detokenize: standard input holds a NUL byte, not ids\n");
            free(input);
            return 1;
        }
        char *nb = realloc(input, len + 1);
        if (!nb) {
            free(input);
            fprintf(stderr, "blurb detokenize: out of memory\n");
            return 1;
        }
        input = nb;
        input[len] = '\0';
        id_text = input;
    }
    int32_t *ids = NULL;
    size_t n = 0;
    int rc = parse_ids(id_text, &ids, &n);
    free(input);
    if (rc) return 1;
    blurb_tokenizer *tok = NULL;
    if (open_tokenizer("detokenize", dir, &tok)) {
        free(ids);
        return 1;
    }
    blurb_err err = {0};
    char *text = NULL;
    size_t len = 0;
    rc = blurb_tokenizer_decode(tok, ids, n, &text, &len, &err);
    free(ids);
    blurb_tokenizer_free(tok);
    if (rc) {
        fprintf(stderr, "blurb detokenize: %s\n", err.msg);
        return 1;
    }
    if (len && fwrite(text, 1, len, stdout) != len) {
        free(text);
        fprintf(stderr, "blurb detokenize: cannot write the output\n");
        return 1;
    }
    free(text);
    return finish_output("detokenize");
}
