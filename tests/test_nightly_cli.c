/* Nightly runs of `blurb generate` end to end (the CLI binary BLURB_CLI, the
 * default model on the CPU backend) on 300 real products of
 * tests/data/myntra_sample.jsonl, plus a blank line and a bad line:
 * - kill -9 at random points (random output sizes, several times), --resume
 *   after each: the final file is byte-identical to an uninterrupted run; a
 *   torn last line (left by the kill, or made by hand) is cut by resume;
 * - shards 0/3 (--shard), 1/3 (Open MPI variables), 2/3 (Slurm array
 *   variables, {shard} in the path) merged with `blurb merge --input` equal the
 *   unsharded output byte for byte; merge without --input reports the blank
 *   line as missing, merge of two shards fails;
 * - --atomic writes the same bytes; --report equals `blurb report`;
 * - usage errors. At most 8 new tokens per sequence, to stay short under ASan. */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "file_test_util.h"

#define MODEL BLURB_SOURCE_DIR "/weights/default"
#define OPTS "--backend cpu --seed 7 --temperature 0.8 --top-p 0.9 --max-new-tokens 8 --quiet --sync-records 16"
#define N_PRODUCTS 300

static char dir[] = "/tmp/blurb_test_nightly_XXXXXX";

/* dir/name; each call gets its own string, kept in a pool freed at the end. */
static char *paths[64];
static int n_paths;
static char *path_in(const char *name) {
    size_t n = strlen(dir) + strlen(name) + 2;
    REQUIRE(n_paths < 64);
    char *p = paths[n_paths++] = malloc(n);
    REQUIRE(p);
    snprintf(p, n, "%s/%s", dir, name);
    return p;
}

static int sh(const char *fmt, ...) {
    char cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    int st = system(cmd);
    REQUIRE(st != -1 && WIFEXITED(st));
    return WEXITSTATUS(st);
}

static bool same_file(const char *a, const char *b) {
    size_t la, lb;
    char *x = slurp(a, &la), *y = slurp(b, &lb);
    bool same = x && y && la == lb && memcmp(x, y, la) == 0;
    free(x);
    free(y);
    return same;
}

static long count_lines(const char *path) {
    char *t = slurp(path, NULL);
    long n = 0;
    for (char *p = t; p && *p; p++) n += *p == '\n';
    free(t);
    return n;
}

static off_t file_size(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 ? st.st_size : -1;
}

/* Starts `blurb generate --resume` on the input into out (fsync every 40
 * records, about 10 KB, so stdio's 4 KB buffer also spills mid-line in
 * between, which a kill turns into a torn last line); kills it with
 * SIGKILL once out holds at least `at` bytes. Returns 1 when killed, 0 when
 * it finished first (then *status is its exit status). */
static int run_and_kill(const char *in, const char *out, off_t at, int *status) {
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        char *argv[] = {(char *)BLURB_CLI, "generate", "--model", (char *)MODEL, "--input", (char *)in, "--output",
                        (char *)out, "--resume", "--backend", "cpu", "--seed", "7", "--temperature", "0.8",
                        "--top-p", "0.9", "--max-new-tokens", "8", "--quiet", "--sync-records", "40", NULL};
        execv(BLURB_CLI, argv);
        _exit(127);
    }
    for (;;) {
        int st;
        pid_t r = waitpid(pid, &st, WNOHANG);
        REQUIRE(r >= 0);
        if (r == pid) {
            REQUIRE(WIFEXITED(st));
            *status = WEXITSTATUS(st);
            return 0;
        }
        if (file_size(out) >= at) {
            REQUIRE(kill(pid, SIGKILL) == 0);
            REQUIRE(waitpid(pid, &st, 0) == pid);
            /* It may have exited on its own just before the signal. */
            if (WIFEXITED(st)) {
                *status = WEXITSTATUS(st);
                return 0;
            }
            REQUIRE(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
            return 1;
        }
        struct timespec ts = {0, 2 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

static int cmp_off(const void *a, const void *b) {
    off_t x = *(const off_t *)a, y = *(const off_t *)b;
    return (x > y) - (x < y);
}

int main(void) {
    REQUIRE(mkdtemp(dir));
    /* The input: 300 products with a blank line after product 100 and a bad
     * line after product 200 (302 physical lines, 301 records). */
    const char *in = path_in("in.jsonl");
    REQUIRE(sh("awk 'NR<=%d{print} NR==100{print \"\"} NR==200{print \"{bad\"}' '%s/myntra_sample.jsonl' > '%s'",
               N_PRODUCTS, BLURB_TEST_DATA, in) == 0);
    REQUIRE(count_lines(in) == N_PRODUCTS + 2);

    /* The uninterrupted run, with its report. */
    const char *ref = path_in("ref.jsonl");
    REQUIRE(sh("'%s' generate --model '%s' --input '%s' --output '%s' --report '%s/ref.report.json' " OPTS,
               BLURB_CLI, MODEL, in, ref, dir) == 0);
    CHECK(count_lines(ref) == N_PRODUCTS + 1);
    CHECK(sh("'%s' report --input '%s' --output '%s/report2.json'", BLURB_CLI, ref, dir) == 0);
    CHECK(same_file(path_in("ref.report.json"), path_in("report2.json")));
    char *rep = slurp(path_in("ref.report.json"), NULL);
    CHECK(rep && strstr(rep, "\"records\":\t301,") && strstr(rep, "\"error_records\":\t1,") &&
          strstr(rep, "\"outputs\":\t300,"));
    free(rep);

    /* Kill -9 at random output sizes, resuming each time. */
    unsigned seed = (unsigned)time(NULL) ^ (unsigned)getpid();
    printf("kill points seed %u\n", seed);
    srand(seed);
    off_t full = file_size(ref);
    enum { KILLS = 5 };
    off_t at[KILLS];
    at[0] = 1; /* as soon as anything is written */
    for (int k = 1; k < KILLS; k++) at[k] = 1 + (off_t)((double)rand() / RAND_MAX * 0.85 * (double)full);
    qsort(at, KILLS, sizeof at[0], cmp_off);
    const char *out = path_in("killed.jsonl");
    int killed = 0, torn = 0, status = 0;
    for (int k = 0; k < KILLS; k++) {
        if (run_and_kill(in, out, at[k], &status)) {
            killed++;
            size_t n;
            char *t = slurp(out, &n);
            if (t && n > 0 && t[n - 1] != '\n') {
                torn++;
            } else if (t && n > 40 && k % 2 == 1) {
                /* glibc writes whole lines at the flush points we saw, so a kill
                 * rarely tears one; a crash of the machine (or a full disk) can.
                 * Tear the last record by hand every other kill. */
                REQUIRE(truncate(out, (off_t)n - 40) == 0);
                torn++;
            }
            free(t);
        } else {
            CHECKF(status == 0, "exit status %d", status);
        }
    }
    printf("%d kills, %d left a torn last line (natural or by hand)\n", killed, torn);
    CHECK(killed >= 3);
    CHECK(torn >= 1);
    CHECK(sh("'%s' generate --model '%s' --input '%s' --output '%s' --resume " OPTS, BLURB_CLI, MODEL, in, out) == 0);
    CHECK(same_file(out, ref));
    /* Resuming a finished file changes nothing. */
    CHECK(sh("'%s' generate --model '%s' --input '%s' --output '%s' --resume " OPTS, BLURB_CLI, MODEL, in, out) == 0);
    CHECK(same_file(out, ref));

    /* Shards: --shard, Open MPI ranks, a Slurm array (IDs 5, 7, 9: --array=5-9:2). */
    CHECK(sh("'%s' generate --model '%s' --input '%s' --output '%s/sh.jsonl' --shard 0/3 " OPTS, BLURB_CLI, MODEL, in,
             dir) == 0);
    CHECK(sh("OMPI_COMM_WORLD_RANK=1 OMPI_COMM_WORLD_SIZE=3 '%s' generate --model '%s' --input '%s' "
             "--output '%s/sh.jsonl' " OPTS, BLURB_CLI, MODEL, in, dir) == 0);
    CHECK(sh("SLURM_ARRAY_TASK_ID=9 SLURM_ARRAY_TASK_MIN=5 SLURM_ARRAY_TASK_STEP=2 SLURM_ARRAY_TASK_COUNT=3 "
             "'%s' generate --model '%s' --input '%s' --output '%s/part-{shard}.jsonl' " OPTS, BLURB_CLI, MODEL, in,
             dir) == 0);
    /* Records by line mod 3 (lines 1..302; 101 blank): 0 -> 100, 1 -> 101, 2 -> 100 (101 is blank). */
    CHECK(count_lines(path_in("sh.jsonl.0-of-3")) == 100);
    CHECK(count_lines(path_in("sh.jsonl.1-of-3")) == 101);
    CHECK(count_lines(path_in("part-2-of-3.jsonl")) == 100);
    const char *merged = path_in("merged.jsonl");
    CHECK(sh("'%s' merge --input '%s' --output '%s' '%s/part-2-of-3.jsonl' '%s/sh.jsonl.0-of-3' '%s/sh.jsonl.1-of-3'",
             BLURB_CLI, in, merged, dir, dir, dir) == 0);
    CHECK(same_file(merged, ref));
    /* Without the input, the blank line 101 looks missing (documented). */
    CHECK(sh("'%s' merge --output '%s/m2' '%s/sh.jsonl.0-of-3' '%s/sh.jsonl.1-of-3' '%s/part-2-of-3.jsonl' 2> '%s/err'",
             BLURB_CLI, dir, dir, dir, dir, dir) == 1);
    char *e = slurp(path_in("err"), NULL);
    CHECK(e && strstr(e, "1 missing line: 101\n"));
    free(e);
    CHECK(sh("'%s' merge --input '%s' --output '%s/m3' '%s/sh.jsonl.0-of-3' '%s/sh.jsonl.1-of-3' 2> '%s/err'",
             BLURB_CLI, in, dir, dir, dir, dir) == 1);
    e = slurp(path_in("err"), NULL);
    CHECK(e && strstr(e, "100 missing lines: 2 5 8 11"));
    free(e);
    CHECK(sh("'%s' merge --output '%s/m4' '%s/sh.jsonl.0-of-3' '%s/sh.jsonl.0-of-3' 2> '%s/err'", BLURB_CLI, dir, dir,
             dir, dir) == 1);
    e = slurp(path_in("err"), NULL);
    CHECK(e && strstr(e, "100 duplicate lines: 3 6 9"));
    free(e);

    /* --atomic: the records of shard 0/10 (lines 10, 20, ..., 300), as in the full run. */
    CHECK(sh("'%s' generate --model '%s' --input '%s' --output '%s/atomic.jsonl' --atomic --shard 0/10 " OPTS,
             BLURB_CLI, MODEL, in, dir) == 0);
    CHECK(sh("grep -E '\"line\": [0-9]*0,' '%s' | cmp - '%s/atomic.jsonl.0-of-10'", ref, dir) == 0);
    CHECK(sh("ls '%s' | grep -c tmp- > /dev/null", dir) == 1); /* no temporary left */

    /* Usage errors (exit 2, nothing run). */
    CHECK(sh("'%s' generate --input '%s' --output '%s/u' --resume --atomic 2>/dev/null", BLURB_CLI, in, dir) == 2);
    CHECK(sh("'%s' generate --input '%s' --output - --resume 2>/dev/null", BLURB_CLI, in) == 2);
    CHECK(sh("'%s' generate --input '%s' --output '%s/u' --shard 3/3 2>/dev/null", BLURB_CLI, in, dir) == 2);
    CHECK(sh("PMI_RANK=4 PMI_SIZE=4 '%s' generate --input '%s' --output '%s/u' 2>/dev/null", BLURB_CLI, in, dir) == 2);
    CHECK(sh("'%s' merge --output '%s/u' 2>/dev/null", BLURB_CLI, dir) == 2);

    sh("rm -rf '%s'", dir);
    for (int i = 0; i < n_paths; i++) free(paths[i]);
    return check_finish("test_nightly_cli");
}
