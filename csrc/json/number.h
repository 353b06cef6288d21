/*
** Locale-independent number text for the JSON codec: integers without
** snprintf, doubles in the shortest form that reads back to the same double.
*/
#ifndef ESPIPE_JSON_NUMBER_H
#define ESPIPE_JSON_NUMBER_H

#include <stddef.h>

/* Longest text either formatter writes, with room to spare. */
#define JSON_NUMBER_MAXLEN 40

/* Decimal text of v into dst (>= JSON_NUMBER_MAXLEN bytes); returns the length. */
size_t json_fmt_integer(char *dst, long long v);

/*
** Shortest round-trip text of the finite double x. With mark_float, text
** that would read back as an integer gets ".0" appended (Lua 5.3+ keeps the
** float subtype that way; -0.0 becomes "-0.0").
*/
size_t json_fmt_double(char *dst, double x, int mark_float);

/*
** strtod in the "C" locale over s[0..len) (no NUL needed). Returns 0, or -1
** when the text is not entirely a number or memory for a long one ran out.
*/
int json_strtod(const char *s, size_t len, double *out);

/* 10^k for 0 <= k <= 22, all exact doubles. */
extern const double json_pow10[23];

#endif
