#include "read_file.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int blurb_read_file(const char *path, size_t max_bytes, char **out, size_t *len, blurb_err *err) {
    *out = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return blurb_seterr(err, BLURB_E_IO, "%s: cannot open: %s", path, strerror(errno));
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap + 1);
    if (!buf) {
        fclose(f);
        return blurb_seterr(err, BLURB_E_NOMEM, "%s: out of memory", path);
    }
    for (;;) {
        if (n == cap) {
            if (cap >= max_bytes) {
                free(buf);
                fclose(f);
                return blurb_seterr(err, BLURB_E_FORMAT, "%s: larger than %zu bytes, refusing to read it",
                                    path, max_bytes);
            }
            size_t ncap = cap * 2 > max_bytes ? max_bytes : cap * 2;
            char *nb = realloc(buf, ncap + 1);
            if (!nb) {
                free(buf);
                fclose(f);
                return blurb_seterr(err, BLURB_E_NOMEM, "%s: out of memory", path);
            }
            buf = nb;
            cap = ncap;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0) {
            if (ferror(f)) {
                int e = errno;
                free(buf);
                fclose(f);
                return blurb_seterr(err, BLURB_E_IO, "%s: read error: %s", path, strerror(e));
            }
            break;
        }
    }
    if (fclose(f) != 0) {
        int e = errno;
        free(buf);
        return blurb_seterr(err, BLURB_E_IO, "%s: close failed: %s", path, strerror(e));
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return 0;
}

void blurb_text_line_col(const char *text, size_t len, size_t pos, int *line, int *col) {
    int l = 1, c = 1;
    if (pos > len) pos = len;
    for (size_t i = 0; i < pos; i++) {
        if (text[i] == '\n') {
            l++;
            c = 1;
        } else {
            c++;
        }
    }
    *line = l;
    *col = c;
}
