/* Internal helpers of libblurb (not installed): whole-file reads for small
 * text files (config.json, index files) and line/column of a byte offset for
 * error messages. */
#ifndef BLURB_HOST_READ_FILE_H
#define BLURB_HOST_READ_FILE_H

#include <stddef.h>

#include "blurb/error.h"

/* Reads all of path into a malloc'ed buffer with a NUL appended (*len excludes it).
 * Files over max_bytes are refused. Returns 0, BLURB_E_IO (errno text, names path),
 * BLURB_E_FORMAT (over max_bytes) or BLURB_E_NOMEM. */
int blurb_read_file(const char *path, size_t max_bytes, char **out, size_t *len, blurb_err *err);

/* 1-based line and column of byte offset pos in text[0..len). */
void blurb_text_line_col(const char *text, size_t len, size_t pos, int *line, int *col);

#endif
