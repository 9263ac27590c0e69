#include <string.h>

#include "blurb/error.h"
#include "check.h"

int main(void) {
    blurb_err err;
    blurb_err_clear(&err);
    CHECK(err.code == 0 && err.msg[0] == '\0');
    CHECK(blurb_seterr(&err, BLURB_E_IO, "cannot open %s", "x.bin") == BLURB_E_IO);
    CHECK(strcmp(err.msg, "cannot open x.bin") == 0);
    blurb_err_prefix(&err, "model %s", "dir");
    CHECK(strcmp(err.msg, "model dir: cannot open x.bin") == 0);
    CHECK(err.code == BLURB_E_IO);
    return check_finish("error");
}
