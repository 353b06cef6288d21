/*
** Thrift compact-protocol encoder, just the writing half Parquet metadata
** needs. Errors (allocation) are sticky: check tc->failed once at the end.
*/
#ifndef ESPIPE_PARQUET_THRIFT_H
#define ESPIPE_PARQUET_THRIFT_H

#include <stddef.h>
#include <stdint.h>

#include "base/strbuf.h"

#define TC_MAX_DEPTH 16

enum tc_type {
    TC_BOOL_TRUE = 1, TC_BOOL_FALSE = 2, TC_I8 = 3, TC_I16 = 4, TC_I32 = 5,
    TC_I64 = 6, TC_DOUBLE = 7, TC_BINARY = 8, TC_LIST = 9, TC_STRUCT = 12
};

typedef struct tc_writer {
    strbuf *out;
    int depth;
    int16_t last_id[TC_MAX_DEPTH];
    int failed;
} tc_writer;

/* Starts a top-level struct (no field header). */
void tc_begin(tc_writer *tc, strbuf *out);
/* Ends the innermost struct with a STOP byte. */
void tc_end(tc_writer *tc);

void tc_i32(tc_writer *tc, int16_t id, int32_t v);
void tc_i64(tc_writer *tc, int16_t id, int64_t v);
void tc_i16(tc_writer *tc, int16_t id, int16_t v);
void tc_bool(tc_writer *tc, int16_t id, int v);
void tc_binary(tc_writer *tc, int16_t id, const void *p, size_t n);
void tc_struct(tc_writer *tc, int16_t id);        /* field header + push */
void tc_list(tc_writer *tc, int16_t id, enum tc_type elem, size_t n);

/* List elements carry no field header. */
void tc_elem_i32(tc_writer *tc, int32_t v);
void tc_elem_binary(tc_writer *tc, const void *p, size_t n);
void tc_elem_struct(tc_writer *tc);               /* push only */
/* Append bytes that already hold one encoded element (e.g. a struct). */
void tc_raw(tc_writer *tc, const void *p, size_t n);

/* Little helpers shared with the page encoders. */
int put_uvarint(strbuf *b, uint64_t v);

#endif
