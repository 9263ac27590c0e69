/* blurb generate: the catalog job (include/blurb/job.h) as a command. */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "blurb/backend.h"
#include "blurb/catalog.h"
#include "blurb/examples.h"
#include "blurb/job.h"
#include "blurb/model.h"
#include "blurb/openai_batch.h"
#include "blurb/output.h"
#include "blurb/report.h"
#include "blurb/shard.h"
#include "blurb/template.h"
#include "blurb/tokenizer.h"
#include "cli.h"
#include "read_file.h"

static void usage(FILE *f) {
    fprintf(f,
        "usage: blurb generate [--model DIR] --input FILE --output FILE [options]\n"
        "\n"
        "Builds a prompt for every product of a JSON Lines catalog, samples descriptions\n"
        "with the model and writes one JSON line per product, in input order:\n"
        "  {\"id\": ..., \"line\": L, \"prompt_tokens\": N, \"outputs\": [{\"text\": ..., \"tokens\": N,\n"
        "   \"finish_reason\": \"stop\"|\"length\", \"mean_logprob\": x}]}\n"
        "or, for a line that cannot be used, {\"id\": ..., \"line\": L, \"error\": \"...\"}.\n"
        "Bad lines never stop the job; the exit status is 1 only when the job itself fails\n"
        "(model, input or output file, backend) and 2 for bad options (including an\n"
        "unreadable --template @FILE, --ban-words or --examples file).\n"
        "\n"
        "Input and output:\n"
        "  --model DIR             model directory: config.json + model.safetensors\n"
        "                          (default: $BLURB_MODEL, else the shipped weights/default)\n"
        "  --input FILE            catalog, one JSON object a line; '-' reads stdin. Blank lines\n"
        "                          are skipped; a record's id is its \"id\" (string or number),\n"
        "                          else its line number\n"
        "  --output FILE           where the JSON lines go; '-' writes stdout\n"
        "  --template TEXT|@FILE   prompt template: {field} is replaced by the product's field\n"
        "                          (strings as they are, numbers as written, arrays joined\n"
        "                          with \", \"), {a.b} reads nested objects, a line holding\n"
        "                          {field?} is left out when the field is missing, null or\n"
        "                          empty, {{ and }} are literal braces. @FILE reads the\n"
        "                          template from FILE without its final newline. A missing\n"
        "                          required field makes an error record. Default (the\n"
        "                          default model's prompt format):\n"
        "                            Product: {title}\\nBrand: {brand?}\\nCategory: {category?}\\nDescription:\n"
        "                          (\\n here means a newline; TEXT itself is taken literally)\n"
        "  --format jsonl|openai-batch\n"
        "                          jsonl: the catalog and output above. openai-batch: the\n"
        "                          input is an OpenAI Batch API file of /v1/completions\n"
        "                          requests ({\"custom_id\", \"method\", \"url\", \"body\": {\"prompt\",\n"
        "                          \"max_tokens\", \"temperature\", \"top_p\", \"n\", \"best_of\",\n"
        "                          \"stop\", \"seed\", \"presence_penalty\", \"frequency_penalty\",\n"
        "                          \"logit_bias\", \"logprobs\", \"model\" and \"user\" (ignored)}}),\n"
        "                          each line's body overriding the options below for that\n"
        "                          line (a member left out takes the option's value, not\n"
        "                          the API's default); the output is the API's result\n"
        "                          lines, model = the model directory's name, no\n"
        "                          timestamps (see include/blurb/openai_batch.h) [jsonl]\n"
        "  --examples FILE         brand voice: JSON Lines of a brand's own products with a\n"
        "                          \"brand\" and a \"description\"; up to K of the product's\n"
        "                          brand (closest titles) are put before its prompt, each\n"
        "                          rendered with the template + \" \" + description and\n"
        "                          followed by <|endoftext|>, the default model's training\n"
        "                          format (see include/blurb/examples.h). jsonl only\n"
        "  --examples-k K          examples per product [3]\n"
        "\n"
        "Sampling (applied in this order each step):\n"
        "  --logit-bias ID:BIAS    add BIAS to the logit of token ID; repeatable [none]\n"
        "  --repetition-penalty R  divide positive / multiply negative logits of tokens already\n"
        "                          in the prompt or output by R (HF semantics); 1 = off [1.0]\n"
        "  --presence-penalty P    subtract P from the logit of every token generated so far\n"
        "                          (OpenAI semantics; prompt tokens do not count); 0 = off [0]\n"
        "  --frequency-penalty F   subtract F times the count of each token generated so far\n"
        "                          (OpenAI semantics); 0 = off [0]\n"
        "  --no-repeat-ngram-size N  never complete an N-gram already in the prompt or\n"
        "                          output (HF semantics); 0 = off [0]\n"
        "  --min-new-tokens N      EOS is not allowed before N new tokens [0]\n"
        "  --temperature T         divide logits by T; 0 = greedy (argmax) [0.8]\n"
        "  --top-k K               keep the K most likely tokens; 0 = off [0]\n"
        "  --top-p P               keep the smallest most-likely set with mass >= P;\n"
        "                          1 = off, <= 0 = greedy [0.9]\n"
        "  --min-p M               then keep only tokens at least M times as likely as the\n"
        "                          most likely one; 0 = off [0]\n"
        "  --ban-words FILE        one word or phrase a line: no output contains one (ASCII\n"
        "                          case-insensitive, starting at a word boundary, so \"cheap\"\n"
        "                          also bans \"Cheaper\"); a token that would complete one is\n"
        "                          redrawn without it, exactly, while sampling [none]\n"
        "  --seed S                random seed (0..2^64-1); a record's samples depend only\n"
        "                          on the model, its prompt, the options and S, never on\n"
        "                          batching or input order; use e.g. the date for nightly\n"
        "                          variety [0]\n"
        "  --n N                   descriptions written per product [1]\n"
        "  --best-of K             sample K (>= N) descriptions per product and write the N\n"
        "                          with the highest mean_logprob, best first [N]\n"
        "  --logprobs              add per-token \"logprobs\": {\"token_ids\": [...],\n"
        "                          \"token_logprobs\": [...]} to every output\n"
        "  --max-new-tokens N      at most N new tokens per description (also capped by the\n"
        "                          model's context) [128]\n"
        "  --stop STR              end a description where STR appears (may span tokens; STR\n"
        "                          is cut from the text); repeatable. EOS always ends one\n"
        "\n"
        "Execution:\n"
        "  --backend auto|cpu|cuda where the model runs; auto = cuda when built with CUDA and\n"
        "                          a GPU is visible, else cpu [auto]\n"
        "  --batch N               most sequences (product x sample) in flight; 0 = the\n"
        "                          backend's choice [0]. Does not change the output\n"
        "  --prefill-chunk N       prompt tokens fed per step for one sequence, cut from the\n"
        "                          prompt's start, so a long prompt never stalls the others'\n"
        "                          decoding for long; 0 = whole prompts [512]. Does not\n"
        "                          change the output\n"
        "  --decode-steps N        decode steps per backend call while no prompt is being\n"
        "                          prefilled (the GPU keeps the tokens between them); 0 = the\n"
        "                          backend's choice (cuda 8, cpu 1) [0]. Does not change the\n"
        "                          output\n"
        "  --dtype bf16|fp16|fp32  cuda compute type; the cpu backend always uses fp32 [bf16]\n"
        "  --threads N             cpu threads; 0 = OpenMP's default [0]\n"
        "  --progress-interval S   seconds between progress lines when stderr is not a\n"
        "                          terminal (on a terminal one line is redrawn) [10]\n"
        "  --quiet                 no progress and no summary on stderr\n"
        "\n"
        "Nightly runs (see include/blurb/output.h and shard.h):\n"
        "  --resume                keep the complete records of an existing OUTPUT (a torn\n"
        "                          last line is cut off), skip their input lines and append\n"
        "                          the rest: byte-identical to an uninterrupted run with the\n"
        "                          same options. A missing OUTPUT starts a new one\n"
        "  --atomic                write OUTPUT.tmp-PID and rename it to OUTPUT only when the\n"
        "                          job succeeds (not with --resume)\n"
        "  --sync-records N        fsync the output every N records; 0 = by time only [64]\n"
        "  --sync-seconds S        ... and at least every S seconds [5]\n"
        "  --shard I/N             only the input lines L with L mod N == I (lines count\n"
        "                          from 1). Default: from a Slurm array (SLURM_ARRAY_TASK_*)\n"
        "                          or an MPI launcher (OMPI_COMM_WORLD_RANK/SIZE, PMI_RANK/SIZE).\n"
        "                          A sharded run writes OUTPUT.I-of-N, or OUTPUT with every\n"
        "                          {shard} replaced by I-of-N; join them with `blurb merge`.\n"
        "                          The GPU is the local rank (OMPI_COMM_WORLD_LOCAL_RANK or\n"
        "                          SLURM_LOCALID) mod the GPU count\n"
        "  --report FILE           after the job, a JSON quality report of the whole output\n"
        "                          file (as `blurb report`; not with --output -)\n"
        "  --help                  this text\n");
}

typedef struct progress_state {
    bool tty;
    bool quiet;
    double interval;      /* seconds between plain lines */
    double last;          /* when the last line was printed */
    bool drawn;           /* a TTY line is on screen */
    blurb_output *out;    /* fsync batches ride on the progress calls */
    int sync_rc;          /* first fsync failure; fails the run at the end */
    blurb_err sync_err;
} progress_state;

static void on_progress(void *ctx, const blurb_job_progress *p) {
    progress_state *ps = ctx;
    if (ps->out && !ps->sync_rc) ps->sync_rc = blurb_output_tick(ps->out, p->records_done, &ps->sync_err);
    if (ps->quiet) return;
    char line[256];
    if (p->final) {
        if (ps->tty && ps->drawn) {
            blurb_job_progress_format(p, line, sizeof line);
            fprintf(stderr, "\r%-79s\n", line);
        }
        return;
    }
    double gap = ps->tty ? 0.2 : ps->interval;
    if (p->seconds - ps->last < gap && ps->last > 0) return;
    ps->last = p->seconds;
    blurb_job_progress_format(p, line, sizeof line);
    if (ps->tty) {
        fprintf(stderr, "\r%-79s", line);
        ps->drawn = true;
    } else {
        fprintf(stderr, "blurb generate: %s\n", line);
    }
    fflush(stderr);
}

/* Strict number parsing: the whole argument, within range. */
/* Options that take a value (the others are flags): a name missing from both
 * is an unknown option, also when nothing follows it. */
static const char *const value_options[] = {
    "--backend", "--ban-words", "--batch", "--best-of", "--decode-steps", "--dtype", "--examples",
    "--examples-k", "--format", "--frequency-penalty", "--input", "--logit-bias", "--max-new-tokens",
    "--min-new-tokens", "--min-p", "--model", "--n", "--no-repeat-ngram-size", "--output", "--prefill-chunk",
    "--presence-penalty",
    "--progress-interval", "--repetition-penalty", "--report", "--seed", "--shard", "--stop", "--sync-records",
    "--sync-seconds", "--temperature", "--template", "--threads", "--top-k", "--top-p"};

static bool takes_value(const char *name) {
    for (size_t i = 0; i < sizeof value_options / sizeof *value_options; i++)
        if (strcmp(name, value_options[i]) == 0) return true;
    return false;
}

/* Numbers are written plainly: no leading space or sign strtol would skip. */
static bool plain_number(const char *s) { return s[0] && !isspace((unsigned char)s[0]); }

static bool parse_int(const char *s, long lo, long hi, int *out) {
    if (!plain_number(s)) return false;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) return false;
    *out = (int)v;
    return true;
}

static bool parse_float(const char *s, float *out) {
    if (!plain_number(s)) return false;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v)) return false;
    *out = (float)v;
    return true;
}

static bool parse_u64(const char *s, uint64_t *out) {
    if (!plain_number(s) || *s == '-' || *s == '+') return false;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end) return false;
    *out = (uint64_t)v;
    return true;
}

static int bad_value(const char *opt, const char *val, const char *want) {
    fprintf(stderr, "blurb generate: %s '%s': expected %s\n", opt, val, want);
    return 2;
}

int cli_generate(int argc, char **argv) {
    const char *model_dir = NULL, *input = NULL, *output = NULL, *template_arg = NULL;
    blurb_job_opts jo = blurb_job_opts_default();
    blurb_backend_opts bo = blurb_backend_opts_default();
    progress_state ps = {false, false, 10.0, 0.0, false, NULL, 0, {0}};
    blurb_output_opts oo = blurb_output_opts_default();
    const char *shard_arg = NULL, *report_path = NULL;
    char *out_path = NULL;
    int batch = 0;
    const char **stops = calloc((size_t)argc + 1, sizeof *stops);
    blurb_logit_bias *biases = calloc((size_t)argc + 1, sizeof *biases);
    int n_biases = 0;
    const char *ban_file = NULL;
    char *ban_text = NULL;
    const char **ban = NULL;
    if (!stops || !biases) {
        free(stops);
        free(biases);
        fprintf(stderr, "blurb generate: out of memory\n");
        return 1;
    }
    int n_stops = 0;
    int status = 2;
    bool openai = false;
    const char *examples_path = NULL;
    int examples_k = 3;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            free(stops);
            free(biases);
            return 0;
        }
        if (strncmp(a, "--", 2) != 0) {
            fprintf(stderr, "blurb generate: unexpected argument '%s' (see --help)\n", a);
            goto out;
        }
        /* --flag, --opt VALUE or --opt=VALUE */
        char name[64];
        const char *eq = strchr(a, '=');
        const size_t name_len = eq ? (size_t)(eq - a) : strlen(a);
        snprintf(name, sizeof name, "%.*s", (int)(name_len < sizeof name ? name_len : sizeof name - 1), a);
        bool *const flags[] = {&ps.quiet, &jo.logprobs, &oo.resume, &oo.atomic};
        static const char *const flag_names[] = {"--quiet", "--logprobs", "--resume", "--atomic"};
        int flag = -1;
        for (int k = 0; k < 4; k++)
            if (strcmp(name, flag_names[k]) == 0) flag = k;
        if (flag >= 0) {
            if (eq) {
                fprintf(stderr, "blurb generate: %s takes no value (see --help)\n", name);
                goto out;
            }
            *flags[flag] = true;
            continue;
        }
        if (!takes_value(name)) {
            fprintf(stderr, "blurb generate: unknown option '%s' (see --help)\n", name);
            goto out;
        }
        const char *val;
        if (eq) {
            val = eq + 1;
        } else {
            if (i + 1 >= argc) {
                fprintf(stderr, "blurb generate: %s needs a value (see --help)\n", a);
                goto out;
            }
            val = argv[++i];
        }
        float f;
        if (strcmp(name, "--model") == 0) model_dir = val;
        else if (strcmp(name, "--input") == 0) input = val;
        else if (strcmp(name, "--output") == 0) output = val;
        else if (strcmp(name, "--template") == 0) template_arg = val;
        else if (strcmp(name, "--examples") == 0) examples_path = val;
        else if (strcmp(name, "--examples-k") == 0) {
            if (!parse_int(val, 0, 1 << 20, &examples_k)) { status = bad_value(name, val, "an integer >= 0"); goto out; }
        } else if (strcmp(name, "--format") == 0) {
            if (strcmp(val, "jsonl") == 0) openai = false;
            else if (strcmp(val, "openai-batch") == 0) openai = true;
            else { status = bad_value(name, val, "jsonl or openai-batch"); goto out; }
        }
        else if (strcmp(name, "--n") == 0) {
            if (!parse_int(val, 1, 1000000, &jo.n_samples)) { status = bad_value(name, val, "an integer >= 1"); goto out; }
        } else if (strcmp(name, "--max-new-tokens") == 0) {
            if (!parse_int(val, 1, INT_MAX, &jo.max_new_tokens)) { status = bad_value(name, val, "an integer >= 1"); goto out; }
        } else if (strcmp(name, "--min-new-tokens") == 0) {
            if (!parse_int(val, 0, INT_MAX, &jo.sampling.min_new_tokens)) { status = bad_value(name, val, "an integer >= 0"); goto out; }
        } else if (strcmp(name, "--temperature") == 0) {
            if (!parse_float(val, &f) || f < 0) { status = bad_value(name, val, "a number >= 0"); goto out; }
            jo.sampling.temperature = f;
        } else if (strcmp(name, "--top-k") == 0) {
            if (!parse_int(val, 0, INT_MAX, &jo.sampling.top_k)) { status = bad_value(name, val, "an integer >= 0"); goto out; }
        } else if (strcmp(name, "--top-p") == 0) {
            if (!parse_float(val, &f)) { status = bad_value(name, val, "a number"); goto out; }
            jo.sampling.top_p = f;
        } else if (strcmp(name, "--repetition-penalty") == 0) {
            if (!parse_float(val, &f) || !(f > 0)) { status = bad_value(name, val, "a number > 0"); goto out; }
            jo.sampling.repetition_penalty = f;
        } else if (strcmp(name, "--seed") == 0) {
            if (!parse_u64(val, &jo.seed)) { status = bad_value(name, val, "an integer 0..18446744073709551615"); goto out; }
        } else if (strcmp(name, "--stop") == 0) {
            if (!*val) { status = bad_value(name, val, "a non-empty string"); goto out; }
            stops[n_stops++] = val;
        } else if (strcmp(name, "--logit-bias") == 0) {
            const char *colon = strchr(val, ':');
            char idbuf[32];
            int id;
            if (!colon || (size_t)(colon - val) >= sizeof idbuf) { status = bad_value(name, val, "ID:BIAS"); goto out; }
            memcpy(idbuf, val, (size_t)(colon - val));
            idbuf[colon - val] = '\0';
            if (!parse_int(idbuf, 0, INT_MAX, &id) || !parse_float(colon + 1, &f)) {
                status = bad_value(name, val, "ID:BIAS (a token id >= 0 and a number)");
                goto out;
            }
            biases[n_biases].id = id;
            biases[n_biases++].bias = f;
        } else if (strcmp(name, "--presence-penalty") == 0) {
            if (!parse_float(val, &f)) { status = bad_value(name, val, "a number"); goto out; }
            jo.sampling.presence_penalty = f;
        } else if (strcmp(name, "--frequency-penalty") == 0) {
            if (!parse_float(val, &f)) { status = bad_value(name, val, "a number"); goto out; }
            jo.sampling.frequency_penalty = f;
        } else if (strcmp(name, "--min-p") == 0) {
            if (!parse_float(val, &f) || f < 0 || f > 1) { status = bad_value(name, val, "a number in [0, 1]"); goto out; }
            jo.sampling.min_p = f;
        } else if (strcmp(name, "--no-repeat-ngram-size") == 0) {
            if (!parse_int(val, 0, INT_MAX, &jo.sampling.no_repeat_ngram_size)) { status = bad_value(name, val, "an integer >= 0"); goto out; }
        } else if (strcmp(name, "--ban-words") == 0) {
            ban_file = val;
        } else if (strcmp(name, "--best-of") == 0) {
            if (!parse_int(val, 1, 1000000, &jo.best_of)) { status = bad_value(name, val, "an integer >= 1"); goto out; }
        } else if (strcmp(name, "--backend") == 0) {
            blurb_err e;
            if (blurb_backend_kind_parse(val, &bo.kind, &e)) { status = bad_value(name, val, "auto, cpu or cuda"); goto out; }
        } else if (strcmp(name, "--batch") == 0) {
            if (!parse_int(val, 0, 1 << 20, &batch)) { status = bad_value(name, val, "an integer >= 0"); goto out; }
        } else if (strcmp(name, "--prefill-chunk") == 0) {
            if (!parse_int(val, 0, 1 << 20, &jo.prefill_chunk)) { status = bad_value(name, val, "an integer >= 0"); goto out; }
        } else if (strcmp(name, "--decode-steps") == 0) {
            if (!parse_int(val, 0, 1024, &jo.decode_steps)) { status = bad_value(name, val, "an integer in 0..1024"); goto out; }
        } else if (strcmp(name, "--dtype") == 0) {
            if (strcmp(val, "bf16") == 0) bo.dtype = BLURB_DTYPE_BF16;
            else if (strcmp(val, "fp16") == 0) bo.dtype = BLURB_DTYPE_F16;
            else if (strcmp(val, "fp32") == 0) bo.dtype = BLURB_DTYPE_F32;
            else { status = bad_value(name, val, "bf16, fp16 or fp32"); goto out; }
        } else if (strcmp(name, "--threads") == 0) {
            if (!parse_int(val, 0, 4096, &bo.n_threads)) { status = bad_value(name, val, "an integer >= 0"); goto out; }
        } else if (strcmp(name, "--shard") == 0) {
            shard_arg = val;
        } else if (strcmp(name, "--report") == 0) {
            report_path = val;
        } else if (strcmp(name, "--sync-records") == 0) {
            int n;
            if (!parse_int(val, 0, INT_MAX, &n)) { status = bad_value(name, val, "an integer >= 0"); goto out; }
            oo.sync_records = n;
        } else if (strcmp(name, "--sync-seconds") == 0) {
            if (!parse_float(val, &f) || f < 0) { status = bad_value(name, val, "a number of seconds >= 0"); goto out; }
            oo.sync_seconds = f;
        } else if (strcmp(name, "--progress-interval") == 0) {
            if (!parse_float(val, &f) || f < 0) { status = bad_value(name, val, "a number of seconds >= 0"); goto out; }
            ps.interval = f;
        } else {
            fprintf(stderr, "blurb generate: unknown option '%s' (see --help)\n", name);
            goto out;
        }
    }
    if (!input || !output) {
        fprintf(stderr, "blurb generate: --input and --output are required (see --help)\n");
        goto out;
    }
    if (openai && (examples_path || template_arg)) {
        fprintf(stderr, "blurb generate: --format openai-batch takes the prompts as given: no --template or --examples\n");
        goto out;
    }
    /* The report reads blurb's own "outputs"; resume and merge read both formats. */
    if (openai && report_path) {
        fprintf(stderr, "blurb generate: --report reads blurb's own output format, not openai-batch\n");
        goto out;
    }
    oo.kind = openai ? BLURB_OUTPUT_OPENAI : BLURB_OUTPUT_JSONL;
    if (oo.resume && oo.atomic) {
        fprintf(stderr, "blurb generate: --resume and --atomic exclude each other\n");
        goto out;
    }
    if (strcmp(output, "-") == 0 && (oo.resume || oo.atomic || report_path)) {
        fprintf(stderr, "blurb generate: --resume, --atomic and --report need --output FILE, not stdout\n");
        goto out;
    }
    blurb_shard shard;
    {
        blurb_err e;
        blurb_err_clear(&e);
        if (blurb_shard_detect(NULL, shard_arg, &shard, &e) ||
            (strcmp(output, "-") != 0 && blurb_shard_output_path(output, &shard, &out_path, &e))) {
            fprintf(stderr, "blurb generate: %s\n", e.msg);
            goto out;
        }
        if (out_path) output = out_path;
        /* Writing over the catalog being read would destroy it. */
        struct stat si, so;
        if (strcmp(input, "-") != 0 && strcmp(output, "-") != 0 && stat(input, &si) == 0 && stat(output, &so) == 0 &&
            si.st_dev == so.st_dev && si.st_ino == so.st_ino) {
            fprintf(stderr, "blurb generate: --output %s is the input file: choose another path\n", output);
            goto out;
        }
        if (shard.local_rank > 0) bo.device = blurb_shard_device(shard.local_rank, blurb_shard_gpu_count());
    }
    jo.stops = stops;
    jo.n_stops = n_stops;
    jo.sampling.logit_bias = n_biases ? biases : NULL;
    jo.sampling.n_logit_bias = n_biases;
    if (ban_file) {
        blurb_err e;
        size_t len;
        if (blurb_read_file(ban_file, (size_t)64 << 20, &ban_text, &len, &e)) {
            fprintf(stderr, "blurb generate: --ban-words: %s\n", e.msg);
            goto out;
        }
        if (memchr(ban_text, '\0', len)) {
            fprintf(stderr, "blurb generate: --ban-words: %s holds a NUL byte\n", ban_file);
            goto out;
        }
        size_t n_lines = 1;
        for (size_t k = 0; k < len; k++) n_lines += ban_text[k] == '\n';
        if (!(ban = calloc(n_lines, sizeof *ban))) {
            fprintf(stderr, "blurb generate: out of memory\n");
            goto out;
        }
        /* One phrase a line, surrounding ASCII whitespace (and CR) dropped, blank lines skipped. */
        int n_ban = 0;
        for (char *line = ban_text; line;) {
            char *nl = strchr(line, '\n');
            if (nl) *nl = '\0';
            char *e2 = line + strlen(line);
            while (*line == ' ' || *line == '\t' || *line == '\r') line++;
            while (e2 > line && (e2[-1] == ' ' || e2[-1] == '\t' || e2[-1] == '\r')) *--e2 = '\0';
            if (*line) ban[n_ban++] = line;
            line = nl ? nl + 1 : NULL;
        }
        jo.ban_words = ban;
        jo.n_ban_words = n_ban;
    }
    jo.batch = batch;
    bo.max_slots = batch;

    blurb_err err;
    blurb_err_clear(&err);
    blurb_template *tmpl = NULL;
    blurb_catalog *cat = NULL;
    blurb_model *model = NULL;
    blurb_tokenizer *tok = NULL;
    blurb_backend *be = NULL;
    blurb_openai_batch *ob = NULL;
    blurb_examples *ex = NULL;
    blurb_job_hooks hooks;
    FILE *out = NULL;
    blurb_output *ow = NULL;
    char dirbuf[4096];

    if (template_arg && template_arg[0] == '\0') {
        fprintf(stderr, "blurb generate: --template is empty: every prompt would be empty\n");
        status = 2;
        goto out;
    }
    if (blurb_template_from_arg(template_arg, &tmpl, &err)) {
        fprintf(stderr, "blurb generate: --template: %s\n", err.msg);
        goto out;
    }
    jo.tmpl = tmpl;
    if (blurb_job_check(&jo, &err)) {
        fprintf(stderr, "blurb generate: %s\n", err.msg);
        goto cleanup;
    }
    status = 1;
    if (!model_dir) {
        if (blurb_default_model_dir(dirbuf, sizeof dirbuf, &err)) {
            fprintf(stderr, "blurb generate: no model: %s (give --model DIR)\n", err.msg);
            goto cleanup;
        }
        model_dir = dirbuf;
    }
    if (blurb_catalog_read(input, &cat, &err)) {
        fprintf(stderr, "blurb generate: %s\n", err.msg);
        goto cleanup;
    }
    if (blurb_model_load(model_dir, &model, &err)) {
        fprintf(stderr, "blurb generate: %s\n", err.msg);
        goto cleanup;
    }
    if (blurb_tokenizer_load(model_dir, model->cfg.vocab_size, &tok, &err)) {
        fprintf(stderr, "blurb generate: %s\n", err.msg);
        goto cleanup;
    }
    jo.sampling.eos_token_id = model->cfg.eos_token_id;
    for (int k = 0; k < n_biases; k++)
        if (biases[k].id >= model->cfg.vocab_size) {
            fprintf(stderr, "blurb generate: --logit-bias: token id %d is outside the vocabulary of %d tokens\n",
                    (int)biases[k].id, model->cfg.vocab_size);
            status = 2;
            goto cleanup;
        }
    if (openai) {
        if (blurb_openai_batch_new(tok, model_dir, model->cfg.vocab_size, &ob, &err)) {
            fprintf(stderr, "blurb generate: %s\n", err.msg);
            goto cleanup;
        }
        hooks = blurb_openai_batch_hooks(ob);
        jo.hooks = &hooks;
    } else if (examples_path) {
        if (blurb_examples_load(examples_path, tmpl, tok, examples_k, model->cfg.n_ctx, &ex, &err)) {
            fprintf(stderr, "blurb generate: --examples: %s\n", err.msg);
            status = 2; /* a bad option file, like --ban-words and --template @FILE */
            goto cleanup;
        }
        hooks = blurb_examples_hooks(ex);
        jo.hooks = &hooks;
    }
    if (blurb_backend_create(model, &bo, &be, &err)) {
        fprintf(stderr, "blurb generate: %s\n", err.msg);
        goto cleanup;
    }
    blurb_shard_filter(cat, &shard);
    if (blurb_output_open(output, &oo, &ow, &err) || blurb_output_skip_done(ow, cat, &err)) {
        fprintf(stderr, "blurb generate: %s\n", err.msg);
        goto cleanup;
    }
    out = blurb_output_file(ow);
    ps.out = ow;
    ps.tty = isatty(STDERR_FILENO) == 1;
    jo.progress = on_progress;
    jo.progress_ctx = &ps;
    if (!ps.quiet && shard.count > 1)
        fprintf(stderr, "blurb generate: shard %ld of %ld (from %s), writing %s\n", shard.index, shard.count,
                shard.source, output);
    if (!ps.quiet && blurb_output_resumed(ow))
        fprintf(stderr, "blurb generate: resuming %s: %zu records already written\n", output, blurb_output_resumed(ow));
    if (!ps.quiet)
        fprintf(stderr, "blurb generate: %zu records from %s, model %s, backend %s, %d slots\n", cat->n_lines,
                strcmp(input, "-") == 0 ? "stdin" : input, model_dir, be->ops->name,
                batch > 0 && batch < be->n_slots ? batch : be->n_slots);
    blurb_job_stats st;
    int rc = blurb_job_run(be, tok, cat, &jo, out, &st, &err);
    if (!rc && ps.sync_rc) {
        rc = ps.sync_rc;
        err = ps.sync_err;
    }
    ps.out = NULL;
    out = NULL;
    {
        blurb_err e;
        blurb_err_clear(&e);
        int crc = blurb_output_close(ow, rc == 0, &e);
        ow = NULL;
        if (crc && !rc) {
            rc = crc;
            err = e;
        }
    }
    if (!rc && report_path && blurb_report_file(output, report_path, &err)) {
        rc = err.code ? err.code : BLURB_E_IO;
        fprintf(stderr, "blurb generate: --report: %s\n", err.msg);
        err.msg[0] = '\0';
    }
    if (rc && err.msg[0]) fprintf(stderr, "blurb generate: job failed: %s\n", err.msg);
    if (!ps.quiet) {
        char line[256];
        blurb_job_summary_format(&st, line, sizeof line);
        fprintf(stderr, "blurb generate: %s\n", line);
    }
    status = rc ? 1 : 0;

cleanup:
    blurb_output_close(ow, false, NULL);
    blurb_backend_free(be);
    blurb_openai_batch_free(ob);
    blurb_examples_free(ex);
    blurb_tokenizer_free(tok);
    blurb_model_free(model);
    blurb_catalog_free(cat);
    blurb_template_free(tmpl);
out:
    free(out_path);
    free(stops);
    free(biases);
    free(ban);
    free(ban_text);
    return status;
}
