/* `blurb merge`: the outputs of the shards of a job (shard.h) joined back
 * into input order by their "line" fields.
 *
 * Every line of every shard file must be an output record with an
 * integer "line" (a torn last line, left by a killed shard that was not
 * resumed, is reported as a format error). Records are written ordered by
 * "line"; equal lines keep the order of the files as given. Problems:
 *   - duplicate: a line number held by more than one record (the first one is
 *     written, the others dropped);
 *   - missing: with the input catalog given, every record line of the input
 *     (non-blank physical line) that no shard holds; without it, every line
 *     number between 1 and the highest one seen that no shard holds. An output
 *     cannot know which input lines were blank (they make no record), so a
 *     catalog with blank lines needs the input to be checked exactly;
 *   - unexpected: with the input given, lines the input has no record for.
 * The merged file is written either way; the caller decides (blurb merge
 * exits 1 when any problem was found). */
#ifndef BLURB_MERGE_H
#define BLURB_MERGE_H

#include <stddef.h>
#include <stdio.h>

#include "blurb/catalog.h"
#include "blurb/error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct blurb_merge_result {
    long records;       /* records written */
    long *missing;      /* missing line numbers, ascending (malloc'ed) */
    size_t n_missing;
    long *duplicate;    /* line numbers held more than once, ascending, each once (malloc'ed) */
    size_t n_duplicate;
    long *unexpected;   /* line numbers not in the input, ascending (malloc'ed) */
    size_t n_unexpected;
} blurb_merge_result;

/* Merges n shard files into out. expect (may be NULL) is the input catalog.
 * res is filled (free with blurb_merge_result_free). Returns 0 (problems are
 * in res, not errors), BLURB_E_IO (a file cannot be read or out written),
 * BLURB_E_FORMAT naming the file and line that is not an output record, or
 * BLURB_E_NOMEM. */
int blurb_merge_files(const char *const *paths, int n, const blurb_catalog *expect, FILE *out,
                      blurb_merge_result *res, blurb_err *err);

void blurb_merge_result_free(blurb_merge_result *res);

#ifdef __cplusplus
}
#endif
#endif
