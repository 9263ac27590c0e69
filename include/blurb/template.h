/* Prompt templates of `blurb generate`: text with {field} placeholders filled
 * from a catalog record (include/blurb/catalog.h).
 *
 * Syntax:
 *   {name}      the record's field `name` (a required field);
 *   {a.b.c}     nested objects: field c of object b of object a;
 *   {name?}     an optional field: when it is empty (missing, null, a string of
 *               whitespace only, or an array of nothing but such strings), the whole
 *               template line holding it (with its newline) is left out; when that
 *               is the last line, the newline before it goes instead;
 *   {{ and }}   a literal { and }.
 * A name is any text without '{', '}', '\n' or '\r'; '.' separates the path.
 *
 * Values: strings as they are; numbers as written in the input (1.50 stays
 * 1.50); true / false; arrays of those joined with ", ". A required field that
 * is missing or null ("missing required field 'NAME'") or otherwise empty as
 * above ("required field 'NAME' is empty"), an object where a value is expected, or
 * an array holding anything else makes the record an error record. The prompt is exactly the
 * rendered text: nothing is added, trimmed or escaped. */
#ifndef BLURB_TEMPLATE_H
#define BLURB_TEMPLATE_H

#include <stddef.h>

#include "blurb/catalog.h"
#include "blurb/error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct blurb_template blurb_template;

/* The default model's prompt format (weights/default/CARD.md): the title
 * required, brand and category optional, then "Description:" with nothing after:
 *   "Product: {title}\nBrand: {brand?}\nCategory: {category?}\nDescription:" */
const char *blurb_template_default_text(void);

/* Parses template text (len bytes, UTF-8). Returns 0, or BLURB_E_INVALID with
 * the column of the problem (unmatched brace, empty name, a name spanning a
 * line, invalid UTF-8), or BLURB_E_NOMEM. */
int blurb_template_parse(const char *text, size_t len, blurb_template **out, blurb_err *err);

/* The --template argument: "@FILE" reads the file and drops a single trailing
 * newline ("\n" or "\r\n"); any other text is the template itself. NULL means
 * the default. Returns 0, BLURB_E_IO (file), or what blurb_template_parse returns. */
int blurb_template_from_arg(const char *arg, blurb_template **out, blurb_err *err);

/* Renders the prompt for rec (which must have parsed) into *out (malloc'ed,
 * NUL-terminated, caller frees), *out_len bytes. Returns 0, or BLURB_E_FORMAT
 * with the reason for the error record in why (e.g. "missing required field
 * 'title'"), or BLURB_E_NOMEM. */
int blurb_template_render(const blurb_template *t, const blurb_record *rec, char **out, size_t *out_len,
                          blurb_err *why);

/* Frees the template. NULL is allowed. */
void blurb_template_free(blurb_template *t);

#ifdef __cplusplus
}
#endif
#endif
