/* blurb command-line program: picks the subcommand; the work is in libblurb. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *help;
};

static const struct command commands[] = {
    /* Subcommands register here as they land. */
    {"info", cli_info, "print a model's config, parameter count, dtypes and bytes"},
    {"tokenize", cli_tokenize, "print the token ids of a text (stdin or --text)"},
    {"detokenize", cli_detokenize, "print the text of token ids (stdin or --ids)"},
    {"generate", cli_generate, "descriptions for a JSON Lines catalog (the main job)"},
    {"merge", cli_merge, "join the shard outputs of a sharded generate into input order"},
    {"report", cli_report, "quality report (lengths, diversity, repeats) of a generate output"},
    {"bench", cli_bench, "measure generation throughput and the roofline (random or real weights)"},
    {NULL, NULL, NULL},
};

static void usage(FILE *f) {
    fprintf(f, "blurb %s: GPT-2 text generation for product catalogs\n\n"
               "usage: blurb COMMAND [options]   (blurb COMMAND --help for its options)\n\n"
               "commands:\n", BLURB_VERSION);
    for (const struct command *c = commands; c->name; c++)
        fprintf(f, "  %-12s %s\n", c->name, c->help);
    fprintf(f, "  %-12s %s\n", "--version", "print the version");
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "version") == 0) {
        printf("blurb %s\n", BLURB_VERSION);
        return 0;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return 0;
    }
    for (const struct command *c = commands; c->name; c++)
        if (strcmp(argv[1], c->name) == 0) return c->run(argc - 1, argv + 1);
    fprintf(stderr, "blurb: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return 2;
}
