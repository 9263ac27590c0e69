/* blurb tokenize / detokenize as a user runs them: exact output bytes and exit
 * statuses (ids from the reference, as in test_tokenizer_cases.c). */
#include <stdbool.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"

static char tmpdir[64];

/* Runs a shell command; returns its exit status and stdout (malloc'ed) in *out. */
static int run(const char *cmd, char **out, size_t *len) {
    FILE *p = popen(cmd, "r");
    REQUIRE(p);
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    REQUIRE(buf);
    size_t got;
    while ((got = fread(buf + n, 1, cap - n, p)) > 0) {
        n += got;
        if (n == cap) {
            cap *= 2;
            buf = realloc(buf, cap);
            REQUIRE(buf);
        }
    }
    int st = pclose(p);
    *out = buf;
    *len = n;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static bool out_is(const char *cmd, int want_rc, const char *want, size_t want_len) {
    char *out;
    size_t len;
    int rc = run(cmd, &out, &len);
    bool ok = rc == want_rc && len == want_len && memcmp(out, want, len) == 0;
    if (!ok) fprintf(stderr, "%s: exit %d, %zu bytes: %.*s\n", cmd, rc, len, (int)len, out);
    free(out);
    return ok;
}
#define OUT(cmd, rc, want) CHECK(out_is(cmd, rc, want, sizeof(want) - 1))

static const char *write_tmp(const char *name, const char *data, size_t len) {
    static char path[128];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "wb");
    REQUIRE(f && fwrite(data, 1, len, f) == len && fclose(f) == 0);
    return path;
}

int main(void) {
    /* The default model is the one in the source tree, whatever the caller's environment says. */
    unsetenv("BLURB_MODEL");
    snprintf(tmpdir, sizeof tmpdir, "/tmp/blurb_tokcli_XXXXXX");
    REQUIRE(mkdtemp(tmpdir));
    char cmd[1024];
    const char *cli = BLURB_CLI;

    snprintf(cmd, sizeof cmd, "'%s' tokenize --text 'Hello world'", cli);
    OUT(cmd, 0, "15496 995\n");
    snprintf(cmd, sizeof cmd, "'%s' tokenize --model '%s/weights/default' --text 'y is ?'", cli, BLURB_SOURCE_DIR);
    OUT(cmd, 0, "88 318 5633\n");
    snprintf(cmd, sizeof cmd, "'%s' tokenize --text ''", cli);
    OUT(cmd, 0, "\n");

    /* Standard input is taken byte for byte, trailing newlines included. */
    static const char good[] = "This is good.\n\n";
    const char *f = write_tmp("good.txt", good, sizeof good - 1);
    snprintf(cmd, sizeof cmd, "'%s' tokenize < '%s'", cli, f);
    OUT(cmd, 0, "1212 318 922 13 628\n");
    snprintf(cmd, sizeof cmd, "'%s' detokenize --ids '1212 318 922 13 628'", cli);
    OUT(cmd, 0, "This is good.\n\n");

    /* Pipe round trip of the streaming text; ids as a JSON list. */
    static const char quoted[] = "\xE2\x80\x9Cquoted\xE2\x80\x9D \xF0\x9F\x91\x8B \xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E";
    f = write_tmp("quoted.txt", quoted, sizeof quoted - 1);
    snprintf(cmd, sizeof cmd, "'%s' tokenize < '%s' | '%s' detokenize", cli, f, cli);
    OUT(cmd, 0, "\xE2\x80\x9Cquoted\xE2\x80\x9D \xF0\x9F\x91\x8B \xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E");
    snprintf(cmd, sizeof cmd, "'%s' detokenize --ids '[447, 250, 421]'", cli);
    OUT(cmd, 0, "\xE2\x80\x9Cqu");
    /* A lone half of a character comes out as U+FFFD. */
    snprintf(cmd, sizeof cmd, "'%s' detokenize --ids '447'", cli);
    OUT(cmd, 0, "\xEF\xBF\xBD");

    /* Special tokens only when asked for. */
    snprintf(cmd, sizeof cmd, "'%s' tokenize --text 'a <|endoftext|> b'", cli);
    OUT(cmd, 0, "64 1279 91 437 1659 5239 91 29 275\n");
    snprintf(cmd, sizeof cmd, "'%s' tokenize --allow-special --text 'a <|endoftext|> b'", cli);
    OUT(cmd, 0, "64 220 50256 275\n");

    /* Errors: bad input is exit 1 with a message, bad usage exit 2, nothing on stdout. */
    f = write_tmp("bad.txt", "a\xFF" "b", 3);
    snprintf(cmd, sizeof cmd, "'%s' tokenize < '%s' 2>/dev/null", cli, f);
    OUT(cmd, 1, "");
    snprintf(cmd, sizeof cmd, "'%s' tokenize < '%s' 2>&1 >/dev/null", cli, f);
    OUT(cmd, 1, "blurb tokenize: text is not valid UTF-8 (byte offset 1)\n");
    snprintf(cmd, sizeof cmd, "'%s' detokenize --ids '15496 50257' 2>&1", cli);
    OUT(cmd, 1, "blurb detokenize: decode: id 50257 at position 1 is outside 0..50256\n");
    snprintf(cmd, sizeof cmd, "'%s' detokenize --ids '12 x3' 2>&1", cli);
    OUT(cmd, 1, "blurb detokenize: 'x3' (id number 2) is not a token id\n");
    snprintf(cmd, sizeof cmd, "'%s' tokenize --frobnicate 2>/dev/null", cli);
    OUT(cmd, 2, "");
    snprintf(cmd, sizeof cmd, "'%s' detokenize --ids 2>/dev/null", cli);
    OUT(cmd, 2, "");
    snprintf(cmd, sizeof cmd, "'%s' tokenize --model '%s/nowhere' --text hi 2>/dev/null", cli, tmpdir);
    OUT(cmd, 1, "");

    static const char *const names[] = {"good.txt", "quoted.txt", "bad.txt"};
    for (size_t i = 0; i < 3; i++) {
        snprintf(cmd, sizeof cmd, "%s/%s", tmpdir, names[i]);
        unlink(cmd);
    }
    rmdir(tmpdir);
    return check_finish("tokenizer_cli");
}
