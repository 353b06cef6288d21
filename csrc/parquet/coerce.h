/*
** How a scalar value goes into a column: the typing, coercion and counting
** rules shared by w:write_rows (Lua values) and w:write_page (JSON bytes),
** so both write the same file for the same documents.
*/
#ifndef ESPIPE_PARQUET_COERCE_H
#define ESPIPE_PARQUET_COERCE_H

#include <stddef.h>
#include <stdint.h>

#include "writer.h"

/* 1 when s[0..n) is well-formed UTF-8. */
int pq_utf8_valid(const char *s, size_t n);

/* Each returns 0, or -1 when out of memory (w->err set). */
int pq_put_invalid(pq_writer *w, pq_column *c);   /* null, counted as invalid */
int pq_put_coerced_text(pq_writer *w, pq_column *c, const char *s, size_t n);
int pq_put_string_value(pq_writer *w, pq_column *c, const char *s, size_t n);
/* The same for text already known to be valid UTF-8 (checked by the JSON scan). */
int pq_put_utf8_value(pq_writer *w, pq_column *c, const char *s, size_t n);
int pq_put_bool_value(pq_writer *w, pq_column *c, int b);
/* A number's JSON text into a decimal column (big integers stay exact); other kinds: -1 unused. */
int pq_put_decimal_text(pq_writer *w, pq_column *c, const char *s, size_t n);
/* A number: an integer (is_int, where Lua has integers) or a double. */
int pq_put_number_value(pq_writer *w, pq_column *c, int is_int, int64_t i, double d);

#endif
