/* Catalog input of `blurb generate`: JSON Lines, one product object a line.
 *
 * Lines are numbered from 1, every physical line counted (blank ones too).
 * A line ends at '\n'; one '\r' before it is dropped (CRLF files), and the
 * last line may lack its newline. A line holding only whitespace (space, \t,
 * \v, \f, \r) yields no record. A UTF-8 byte-order mark at the start of the
 * file is ignored. Every other line is one record, parsed on its own with
 * blurb_record_parse, so that a bad line becomes an error record and never
 * stops the job.
 *
 * JSON is RFC 8259, checked strictly: cJSON parses the structure, and blurb
 * itself checks what cJSON lets through or gets wrong (invalid UTF-8, raw
 * control characters in strings, numbers such as 01 or 1., and \u0000 escapes,
 * which cJSON would silently cut the string at). Numbers keep the text they
 * were written with (1.50 stays "1.50", 12345678901234567890 is not rounded). */
#ifndef BLURB_CATALOG_H
#define BLURB_CATALOG_H

#include <stddef.h>
#include <stdio.h>

#include "blurb/error.h"

#ifdef __cplusplus
extern "C" {
#endif

struct cJSON; /* <cjson/cJSON.h> */

/* One non-blank input line: bytes data[off, off + len) of the catalog, without
 * its '\r\n' / '\n'. */
typedef struct blurb_catalog_line {
    size_t off;
    size_t len;
    long line_no; /* physical line number, from 1 */
} blurb_catalog_line;

/* A whole input held in memory, split into records. The input is read at once
 * so that the job knows the record count (progress, ETA) even from a pipe; a
 * catalog costs its size in bytes plus 24 bytes a line. */
typedef struct blurb_catalog {
    char *data;                 /* the input bytes, NUL-terminated (owned) */
    size_t size;                /* bytes */
    blurb_catalog_line *lines;  /* the non-blank lines, in input order (owned) */
    size_t n_lines;             /* records */
    long n_physical;            /* physical lines, blank ones included */
} blurb_catalog;

/* Reads a catalog from path, "-" meaning stdin. Returns 0, BLURB_E_IO (open or
 * read failed, errno text and the path in the message) or BLURB_E_NOMEM. */
int blurb_catalog_read(const char *path, blurb_catalog **out, blurb_err *err);

/* Reads a catalog from an open stream until EOF; name is used in messages. */
int blurb_catalog_read_stream(FILE *f, const char *name, blurb_catalog **out, blurb_err *err);

/* Splits size bytes of data (copied) into a catalog. Returns 0 or BLURB_E_NOMEM. */
int blurb_catalog_from_memory(const char *data, size_t size, blurb_catalog **out, blurb_err *err);

/* Frees the catalog. NULL is allowed. */
void blurb_catalog_free(blurb_catalog *cat);

/* The raw text of a JSON number in a record: text[off, off + len). */
typedef struct blurb_json_number {
    const struct cJSON *node;
    size_t off;
    size_t len;
} blurb_json_number;

/* One parsed catalog line. */
typedef struct blurb_record {
    long line_no;
    struct cJSON *root;        /* the object (owned); NULL when parsing failed */
    char *text;                /* copy of the line, NUL-terminated (owned) */
    size_t text_len;           /* bytes */
    blurb_json_number *nums;   /* every number of the object, in text order (owned) */
    int n_nums;
    /* The record id, always set (also when parsing failed): its `id` value when
     * that is a string or a number, else the line number (an `id` that is an
     * object, array or boolean makes the record an error record). */
    char *id_json;             /* as written to the output: a JSON string literal or the number text */
    char *id_key;              /* as hashed into the random stream: string content or number text */
    size_t id_key_len;         /* bytes */
} blurb_record;

/* Parses one line (len bytes, no newline) into rec. Always fills rec->line_no
 * and the id. Returns 0 with rec->root set, or BLURB_E_FORMAT with `why`
 * holding the reason for the error record (without the line number, e.g.
 * "invalid UTF-8 at byte 17" or "invalid JSON at column 9: lone UTF-16
 * surrogate escape \ud800 (cJSON refuses unpaired surrogates)"), or
 * BLURB_E_NOMEM. The record must be released with blurb_record_clear either way. */
int blurb_record_parse(const char *line, size_t len, long line_no, blurb_record *rec, blurb_err *why);

/* Frees what rec holds and zeroes it. */
void blurb_record_clear(blurb_record *rec);

/* The number text of node as written in the line, or NULL when node is not
 * one of rec's numbers. *len receives its bytes. */
const char *blurb_record_number_text(const blurb_record *rec, const struct cJSON *node, size_t *len);

#ifdef __cplusplus
}
#endif
#endif
