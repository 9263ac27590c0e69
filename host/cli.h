/* Subcommands of the blurb program. Each takes the arguments after its own
 * name (argv[0] is the subcommand), prints errors to stderr and returns the
 * process exit status: 0 success, 1 the job failed, 2 bad usage. */
#ifndef BLURB_CLI_H
#define BLURB_CLI_H

int cli_info(int argc, char **argv);       /* host/cli_info.c */
int cli_tokenize(int argc, char **argv);   /* host/cli_tokenize.c */
int cli_detokenize(int argc, char **argv); /* host/cli_tokenize.c */
int cli_generate(int argc, char **argv);   /* host/cli_generate.c */
int cli_merge(int argc, char **argv);      /* host/cli_merge.c */
int cli_report(int argc, char **argv);     /* host/cli_merge.c */
int cli_bench(int argc, char **argv);      /* host/cli_bench.c */

#endif
