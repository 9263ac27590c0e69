/* Quality report of a catalog job's output (the JSON lines of job.h), for
 * `blurb generate --report FILE` and `blurb report`.
 *
 * It is computed from the output records alone, so it works on any finished
 * or resumed output file. Definitions:
 *   - records, error_records (records with "error"), outputs (every element of
 *     every "outputs" array, i.e. records x --n);
 *   - length_histogram: outputs by their "tokens" in bins of 16 tokens,
 *     [{"from": 0, "to": 15, "count": c}, {"from": 16, "to": 31, ...}, ...]
 *     from bin 0 up to the highest non-empty bin (empty bins in between
 *     listed with count 0);
 *   - words: an output's text is lowercased (ASCII A-Z only) and split at every
 *     ASCII whitespace or ASCII punctuation byte (C ispunct: !"#$%&'()*+,-./:;<=>?@[\]^_`{|}~),
 *     so "Men's T-Shirt" is men, s, t, shirt; bytes >= 0x80 (other UTF-8) are
 *     word characters;
 *   - distinct_1 / distinct_2: distinct word unigrams / bigrams over all
 *     outputs divided by the number of unigrams / bigrams (bigrams do not cross
 *     outputs). Li et al. 2016, "A Diversity-Promoting Objective Function for
 *     Neural Conversation Models", section 4.3. null when there are none;
 *   - repeated_4gram_share: share of outputs in which some word 4-gram occurs
 *     at least twice (overlaps count: "a a a a a" repeats "a a a a");
 *   - length_share: share of outputs with finish_reason "length" (hit
 *     --max-new-tokens or the context);
 *   - duplicate_share: share of outputs whose text is byte-identical to an
 *     output of another record (another "line"); samples of one product that
 *     equal each other do not count;
 *   - errors_by_reason: {"reason": count} over error records, by reason with
 *     every number that stands alone (-1, 12, 2.5, 1e5; not the digits of a
 *     word such as UTF-8 or size2) written as N, so "invalid JSON at column 3"
 *     and "... column 12" count as one reason, "invalid JSON at column N".
 * Shares are fractions of outputs in [0, 1], null when there are no outputs. */
#ifndef BLURB_REPORT_H
#define BLURB_REPORT_H

#include <stddef.h>

#include "blurb/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Computes the report of len bytes of output lines (a last line without '\n'
 * is used too; blank lines are skipped) into *json (malloc'ed, NUL-terminated,
 * pretty-printed, ending in '\n'). Returns 0, BLURB_E_FORMAT naming the first
 * line that is not an output record, or BLURB_E_NOMEM. */
int blurb_report_compute(const char *data, size_t len, char **json, blurb_err *err);

/* Reads the output file in_path and writes its report to out_path ("-" =
 * stdout). Returns 0, BLURB_E_IO, BLURB_E_FORMAT or BLURB_E_NOMEM. */
int blurb_report_file(const char *in_path, const char *out_path, blurb_err *err);

#ifdef __cplusplus
}
#endif
#endif
