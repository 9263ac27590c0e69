#include <string.h>

#include "blurb/utf8.h"
#include "check.h"

#define V(lit) blurb_utf8_valid(lit, sizeof(lit) - 1, NULL)

int main(void) {
    CHECK(V(""));
    CHECK(V("plain ascii"));
    CHECK(V("a\0b"));                        /* NUL is a character */
    CHECK(V("\xC3\xA9"));                    /* é */
    CHECK(V("\xE6\x97\xA5\xE6\x9C\xAC"));    /* 日本 */
    CHECK(V("\xF0\x9F\x91\x8B"));            /* 👋 */
    CHECK(V("\xF4\x8F\xBF\xBF"));            /* U+10FFFF */
    CHECK(!V("\xC0\xAF"));                   /* overlong '/' */
    CHECK(!V("\xE0\x80\xAF"));               /* overlong */
    CHECK(!V("\xED\xA0\x80"));               /* surrogate U+D800 */
    CHECK(!V("\xF4\x90\x80\x80"));           /* above U+10FFFF */
    CHECK(!V("\xF5\x80\x80\x80"));
    CHECK(!V("\x80"));                       /* lone continuation */
    CHECK(!V("\xC3"));                       /* truncated */
    CHECK(!V("\xE6\x97"));
    size_t off = 99;
    CHECK(!blurb_utf8_valid("ok\xFFno", 5, &off) && off == 2);
    CHECK(blurb_utf8_char_len((const unsigned char *)"\xF0\x9F\x91\x8B", 4) == 4);
    CHECK(blurb_utf8_char_len((const unsigned char *)"\xF0\x9F\x91", 3) == 0);
    return check_finish("utf8");
}
