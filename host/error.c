#include "blurb/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int blurb_seterr(blurb_err *err, int code, const char *fmt, ...) {
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
        err->code = code;
    }
    return code;
}

int blurb_err_prefix(blurb_err *err, const char *fmt, ...) {
    if (!err) return BLURB_E_INVALID;
    char prefix[BLURB_ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    char old[BLURB_ERR_MSG_MAX];
    memcpy(old, err->msg, sizeof old);
    /* Truncation is acceptable: the message stays NUL-terminated. */
    size_t n = strlen(prefix);
    if (n > sizeof err->msg - 3) n = sizeof err->msg - 3;
    memcpy(err->msg, prefix, n);
    err->msg[n] = ':';
    err->msg[n + 1] = ' ';
    size_t room = sizeof err->msg - (n + 2) - 1;
    size_t m = strlen(old);
    if (m > room) m = room;
    memcpy(err->msg + n + 2, old, m);
    err->msg[n + 2 + m] = '\0';
    return err->code;
}

void blurb_err_clear(blurb_err *err) {
    if (err) {
        err->code = 0;
        err->msg[0] = '\0';
    }
}
