/* `blurb bench --json` on the CPU backend with the default model: one JSON
 * line per batch size with the documented fields, and byte/FLOP counts equal
 * to the roofline functions summed over the calls a run makes (prefill split
 * by --prefill-tokens, then new_tokens - 1 decode steps, a sample after each
 * call). Timing figures are only checked for consistency with each other
 * (gen_tok_s = generated_tokens / total_s), never against a speed. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "blurb/model.h"
#include "blurb/roofline.h"
#include "check.h"

static const char *default_dir(void) { return BLURB_SOURCE_DIR "/weights/default"; }

/* Runs cmd; stdout into *out (malloc'ed). Returns the exit status. */
static int run_cmd(const char *cmd, char **out) {
    FILE *p = popen(cmd, "r");
    REQUIRE(p);
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    REQUIRE(buf);
    size_t got;
    while ((got = fread(buf + len, 1, cap - len - 1, p)) > 0) {
        len += got;
        if (cap - len - 1 == 0) {
            cap *= 2;
            buf = realloc(buf, cap);
            REQUIRE(buf);
        }
    }
    buf[len] = '\0';
    int st = pclose(p);
    *out = buf;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static double num(const cJSON *j, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
    CHECKF(cJSON_IsNumber(v), "field %s missing or not a number", key);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

static bool is_null(const cJSON *j, const char *key) {
    return cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(j, key));
}

static const char *str(const cJSON *j, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
    CHECKF(cJSON_IsString(v), "field %s missing or not a string", key);
    return cJSON_IsString(v) ? v->valuestring : "";
}

static bool near(double a, double b) { return fabs(a - b) <= 1e-9 * fabs(b); }

/* Work of one run as cli_bench.c documents it: prompts in calls of
 * floor(prefill_tokens / prompt_len) sequences, then decode steps. */
static blurb_work expected_work(const blurb_config *c, int batch, int prompt, int new_tokens, int prefill_tokens) {
    blurb_work w;
    memset(&w, 0, sizeof w);
    int per_call = prefill_tokens / prompt;
    for (int first = 0; first < batch; first += per_call) {
        int n = batch - first < per_call ? batch - first : per_call;
        REQUIRE(blurb_work_forward(c, 4, n, 0, prompt, false, &w, NULL) == 0);
        REQUIRE(blurb_work_sample(c, n, &w, NULL) == 0);
    }
    for (int g = 1; g < new_tokens; g++) {
        REQUIRE(blurb_work_forward(c, 4, batch, prompt + g - 1, 1, false, &w, NULL) == 0);
        REQUIRE(blurb_work_sample(c, batch, &w, NULL) == 0);
    }
    return w;
}

int main(void) {
    blurb_model *m = NULL;
    blurb_err err = {0};
    REQUIRE(blurb_model_load(default_dir(), &m, &err) == 0);

    /* Batch 3 with 10 prefill tokens per call of 5-token prompts: calls of 2 and 1 sequences. */
    char cmd[8192], *out = NULL;
    snprintf(cmd, sizeof cmd,
             "'%s' bench --backend cpu --threads 1 --model '%s' --batch 1,3 --prompt-len 5 --new-tokens 4 "
             "--warmup 0 --runs 2 --prefill-tokens 10 --top-k 7 --top-p 0.9 --temperature 0.8 --seed 5 --json "
             "2>/dev/null",
             BLURB_CLI, default_dir());
    CHECK(run_cmd(cmd, &out) == 0);
    const int batches[2] = {1, 3};
    char *line = out;
    int n_lines = 0;
    while (*line) {
        char *nl = strchr(line, '\n');
        REQUIRE(nl);
        *nl = '\0';
        REQUIRE(n_lines < 2);
        cJSON *j = cJSON_Parse(line);
        CHECKF(j != NULL, "not JSON: %s", line);
        if (j) {
            int batch = batches[n_lines];
            CHECK(strcmp(str(j, "system"), "blurb") == 0);
            CHECK(strcmp(str(j, "backend"), "cpu") == 0);
            CHECK(strcmp(str(j, "device"), "cpu") == 0);
            CHECK(strcmp(str(j, "dtype"), "fp32") == 0);
            CHECK(strstr(str(j, "model"), "weights/default") != NULL);
            CHECK(num(j, "batch") == batch);
            CHECK(num(j, "n_layer") == 6 && num(j, "n_embd") == 256 && num(j, "n_ctx") == 512);
            CHECK(num(j, "n_params") == 17735936);
            CHECK(num(j, "prompt_len") == 5 && num(j, "new_tokens") == 4);
            CHECK(num(j, "top_k") == 7 && num(j, "top_p") == 0.9 && num(j, "temperature") == 0.8);
            CHECK(num(j, "warmup") == 0 && num(j, "runs") == 2 && num(j, "prefill_tokens") == 10);
            CHECK(num(j, "generated_tokens") == 4.0 * batch);

            blurb_work w = expected_work(&m->cfg, batch, 5, 4, 10);
            CHECKF(num(j, "bytes") == blurb_work_total_bytes(&w), "bytes %.17g want %.17g", num(j, "bytes"),
                   blurb_work_total_bytes(&w));
            CHECKF(num(j, "flops") == blurb_work_total_flops(&w), "flops %.17g want %.17g", num(j, "flops"),
                   blurb_work_total_flops(&w));

            double total = num(j, "total_s"), prefill = num(j, "prefill_s");
            CHECK(total > 0.0 && prefill > 0.0 && prefill < total);
            CHECK(near(num(j, "gen_tok_s"), 4.0 * batch / total));
            CHECK(near(num(j, "prompt_tok_s"), 5.0 * batch / prefill));
            CHECK(near(num(j, "bytes_per_s"), blurb_work_total_bytes(&w) / total));
            CHECK(near(num(j, "flop_per_s"), blurb_work_total_flops(&w) / total));
            CHECK(num(j, "step_ms_median") > 0.0);
            /* The CPU has no measured peaks: the roofline figures are null, not zero. */
            CHECK(is_null(j, "roofline_pct") && is_null(j, "roofline_s") && is_null(j, "decode_roofline_pct"));
            CHECK(is_null(j, "decode_roofline_s"));
            CHECK(is_null(j, "peak_bw_bytes_s") && is_null(j, "peak_flop_s") && is_null(j, "peak_mem_bytes"));
            CHECK(cJSON_IsString(cJSON_GetObjectItemCaseSensitive(j, "commit")));
            CHECK(strlen(str(j, "date")) == 20);
            cJSON_Delete(j);
        }
        n_lines++;
        line = nl + 1;
    }
    CHECK(n_lines == 2);
    free(out);

    /* Without --json: a header, a column line and one row per batch size. */
    snprintf(cmd, sizeof cmd,
             "'%s' bench --backend cpu --threads 1 --model '%s' --batch 2 --prompt-len 3 --new-tokens 2 "
             "--warmup 0 --runs 1 2>&1",
             BLURB_CLI, default_dir());
    CHECK(run_cmd(cmd, &out) == 0);
    CHECKF(strstr(out, "gen tok/s") != NULL && strstr(out, "roofline%") != NULL, "%s", out);
    CHECKF(strstr(out, " cpu  fp32       2 ") != NULL, "%s", out);
    free(out);

    /* Bad usage exits 2 with a reason; a prompt longer than n_ctx too. */
    snprintf(cmd, sizeof cmd, "'%s' bench --batch 4,0 2>&1", BLURB_CLI);
    CHECK(run_cmd(cmd, &out) == 2);
    CHECKF(strstr(out, "--batch needs") != NULL, "%s", out);
    free(out);
    snprintf(cmd, sizeof cmd, "'%s' bench --backend cpu --model '%s' --prompt-len 510 --new-tokens 3 2>&1",
             BLURB_CLI, default_dir());
    CHECK(run_cmd(cmd, &out) == 2);
    CHECKF(strstr(out, "exceed the model's n_ctx 512") != NULL, "%s", out);
    free(out);
    snprintf(cmd, sizeof cmd, "'%s' bench --top-p nan 2>&1", BLURB_CLI);
    CHECK(run_cmd(cmd, &out) == 2);
    free(out);

    blurb_model_free(m);
    return check_finish("bench_cli");
}
