/* Brand voice for `blurb generate --examples FILE`: before each product's
 * prompt, up to k of that brand's own products with their descriptions, so the
 * model continues in the brand's style (few-shot prompting, Brown et al. 2020,
 * "Language Models are Few-Shot Learners").
 *
 * FILE is JSON Lines, one of the brand's products a line, with the fields the
 * prompt template uses plus:
 *   "brand": STR         required; compared byte for byte with the product's
 *                        "brand" field (a product without one gets no examples)
 *   "description": STR   required, non-empty: the brand's own description
 *   "id": STR|NUM        optional; an example with the product's own id is
 *                        never shown for it (no copying the answer)
 * Blank lines are skipped; any other bad line fails the load, naming the line.
 *
 * Layout, from the default model's training format (weights/default/CARD.md:
 * texts were prompt + " " + description + <|endoftext|>, packed one after the
 * other): each example is encode(render(template, example) + " " +
 * description) followed by the EOS id, and the product's own encoded prompt
 * comes last:
 *   [example 1 ids] EOS [example 2 ids] EOS ... [product prompt ids]
 * The EOS ids are inserted by blurb; text is always encoded as ordinary text,
 * so a description holding "<|endoftext|>" never yields the EOS id.
 *
 * Which examples: those of the product's brand, ranked by the Jaccard overlap
 * of lower-cased title words (ASCII letters and digits; other bytes split
 * words, except non-ASCII ones, which belong to words) with the product's
 * "title", ties by file order; the k best are used, the best placed last,
 * next to the product. Examples are dropped, the least similar first, until
 * prompt tokens + max_new_tokens fit in n_ctx. */
#ifndef BLURB_EXAMPLES_H
#define BLURB_EXAMPLES_H

#include <stddef.h>
#include <stdint.h>

#include "blurb/catalog.h"
#include "blurb/error.h"
#include "blurb/job.h"
#include "blurb/template.h"
#include "blurb/tokenizer.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct blurb_examples blurb_examples;

/* Loads FILE (see above), rendering each example with tmpl and encoding it
 * with tok. k: examples per product (>= 0; 0 = none); n_ctx: the model's
 * context in tokens. tmpl and tok must outlive the set. Returns 0,
 * BLURB_E_IO (file), BLURB_E_FORMAT ("FILE line L: missing required field
 * 'description'"), BLURB_E_INVALID (k < 0, n_ctx < 1) or BLURB_E_NOMEM. */
int blurb_examples_load(const char *path, const blurb_template *tmpl, const blurb_tokenizer *tok, int k, int n_ctx,
                        blurb_examples **out, blurb_err *err);

/* Examples loaded (all brands). */
size_t blurb_examples_count(const blurb_examples *ex);

/* The prompt of a parsed record: the chosen examples and the record's own
 * prompt, laid out as above, in *ids (malloc'ed, caller frees) and *n_ids
 * tokens; *n_used receives the number of examples used (may be NULL).
 * eos_id < 0 puts no separator. Returns 0, BLURB_E_FORMAT (the template cannot
 * render the record; reason in why) or BLURB_E_NOMEM. */
int blurb_examples_prompt(const blurb_examples *ex, const blurb_record *rec, int max_new_tokens, int eos_id,
                          int32_t **ids, size_t *n_ids, int *n_used, blurb_err *why);

/* Hooks for blurb_job_run: a `prepare` that builds each prompt with
 * blurb_examples_prompt (job-wide options otherwise, default output format). */
blurb_job_hooks blurb_examples_hooks(blurb_examples *ex);

/* Frees the set. NULL is allowed. */
void blurb_examples_free(blurb_examples *ex);

#ifdef __cplusplus
}
#endif
#endif
