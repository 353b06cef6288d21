/*
** UTF-8 validation for the JSON codec (RFC 3629: no surrogates, no overlong
** forms, nothing above U+10FFFF).
*/
#ifndef ESPIPE_UTF8_H
#define ESPIPE_UTF8_H

#include <stddef.h>

/*
** Length of the valid sequence starting at s[0] (1..4), or 0 when it is
** invalid; then *bad is the length of its maximal invalid prefix (>= 1), the
** span one U+FFFD replaces (the Unicode "maximal subpart" practice).
*/
size_t utf8_sequence(const unsigned char *s, size_t n, size_t *bad);

/* Write code point cp (<= 0x10FFFF, not a surrogate) as UTF-8; returns its length. */
size_t utf8_put(char *dst, unsigned long cp);

#define UTF8_REPLACEMENT "\xEF\xBF\xBD"

#endif
