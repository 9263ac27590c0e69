/* Error reporting shared by every blurb library function.
 *
 * Library functions never print and never exit: they return 0 on success or a
 * negative BLURB_E_* code, and fill a caller-owned blurb_err with one line of
 * text that names the file, line or record concerned. Only main() exits. */
#ifndef BLURB_ERROR_H
#define BLURB_ERROR_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

enum {
    BLURB_OK = 0,
    BLURB_E_IO = -1,       /* open/read/write/mmap failed (errno text included) */
    BLURB_E_FORMAT = -2,   /* a file or record is malformed */
    BLURB_E_INVALID = -3,  /* an argument or option is out of range */
    BLURB_E_NOMEM = -4,    /* host or device allocation failed */
    BLURB_E_DEVICE = -5,   /* a CUDA / cuBLAS call failed or no device */
    BLURB_E_UNSUPPORTED = -6 /* valid input that blurb does not handle */
};

#define BLURB_ERR_MSG_MAX 1024

typedef struct blurb_err {
    int code;                    /* last BLURB_E_* set, 0 when none */
    char msg[BLURB_ERR_MSG_MAX]; /* NUL-terminated, one line, no trailing newline */
} blurb_err;

/* Records code and a printf-style message in err (err may be NULL).
 * Returns code, so that `return blurb_seterr(err, BLURB_E_IO, ...)` reads well. */
int blurb_seterr(blurb_err *err, int code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* Prepends "prefix: " to an existing message (e.g. the model directory). Returns err->code. */
int blurb_err_prefix(blurb_err *err, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* Clears err (code 0, empty message). */
void blurb_err_clear(blurb_err *err);

#ifdef __cplusplus
}
#endif
#endif
