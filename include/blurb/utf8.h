/* UTF-8 validation (RFC 3629: no overlongs, no surrogates U+D800..U+DFFF,
 * nothing above U+10FFFF). NUL bytes are valid characters. */
#ifndef BLURB_UTF8_H
#define BLURB_UTF8_H

#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Length in bytes (1..4) of the valid UTF-8 character starting at s[0] within
 * n bytes, or 0 when the bytes there are not a complete valid character. */
size_t blurb_utf8_char_len(const unsigned char *s, size_t n);

/* True when s[0..n) is entirely valid UTF-8. If not and bad_offset is non-NULL,
 * it receives the byte offset of the first invalid sequence. */
bool blurb_utf8_valid(const char *s, size_t n, size_t *bad_offset);

#ifdef __cplusplus
}
#endif
#endif
