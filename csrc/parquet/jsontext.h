/*
** Text forms of Lua values for BYTE_ARRAY columns: JSON for the JSON columns
** and the strings a keyword field would hold for numbers.
*/
#ifndef ESPIPE_PARQUET_JSONTEXT_H
#define ESPIPE_PARQUET_JSONTEXT_H

#include <stddef.h>

#include "compat.h"
#include "strbuf.h"

#define JSONTEXT_MAX_DEPTH 64

/* Shortest %.{15,16,17}g form that reads back as the same double. */
size_t format_double(char *buf, size_t size, double d);
/*
** The text espipe.json gives a Lua number: integers as integers; on 5.3+ a
** float keeps a '.' or exponent (1.0 -> "1.0"). 0 for NaN/inf (no text).
*/
size_t number_text(lua_State *L, int idx, char *buf, size_t size);
/* 1 when s[0..n) is well-formed UTF-8 (no surrogates, nothing past U+10FFFF). */
int utf8_valid(const char *s, size_t n);
/*
** Append the JSON text of the value at idx. Tables are arrays when they carry
** the espipe.json array metatable or are non-empty sequences, objects
** otherwise; the null lightuserdata is null. 0, or -1 with a reason in *why
** (a static string) for values JSON cannot carry: NaN/inf, invalid UTF-8,
** functions, nesting deeper than JSONTEXT_MAX_DEPTH. Never raises.
*/
int jsontext_append(lua_State *L, int idx, strbuf *out, const char **why);
/* 1 when the table at idx is a JSON array by the rule above. */
int jsontext_is_array(lua_State *L, int idx);

#endif
