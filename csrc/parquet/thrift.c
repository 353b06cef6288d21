#include "thrift.h"

int put_uvarint(strbuf *b, uint64_t v)
{
    unsigned char tmp[10];
    size_t n = 0;
    while (v >= 0x80) {
        tmp[n++] = (unsigned char)(v | 0x80);
        v >>= 7;
    }
    tmp[n++] = (unsigned char)v;
    return strbuf_append(b, tmp, n);
}

static uint64_t zigzag64(int64_t v)
{
    /* all ones for a negative v, without a signed shift (implementation-defined) */
    return ((uint64_t)v << 1) ^ ((uint64_t)0 - ((uint64_t)v >> 63));
}

static void put_byte(tc_writer *tc, unsigned char c)
{
    if (strbuf_putc(tc->out, (char)c) != 0)
        tc->failed = 1;
}

static void put_varint(tc_writer *tc, uint64_t v)
{
    if (put_uvarint(tc->out, v) != 0)
        tc->failed = 1;
}

static void push(tc_writer *tc)
{
    if (tc->depth + 1 >= TC_MAX_DEPTH) {
        tc->failed = 1;
        return;
    }
    tc->last_id[++tc->depth] = 0;
}

static void field_header(tc_writer *tc, int16_t id, enum tc_type type)
{
    int delta = id - tc->last_id[tc->depth];
    if (delta > 0 && delta <= 15) {
        put_byte(tc, (unsigned char)((delta << 4) | type));
    } else {
        put_byte(tc, (unsigned char)type);
        put_varint(tc, zigzag64(id));
    }
    tc->last_id[tc->depth] = id;
}

void tc_begin(tc_writer *tc, strbuf *out)
{
    tc->out = out;
    tc->depth = 0;
    tc->last_id[0] = 0;
    tc->failed = 0;
}

void tc_end(tc_writer *tc)
{
    put_byte(tc, 0);
    if (tc->depth > 0)
        tc->depth--;
}

void tc_i32(tc_writer *tc, int16_t id, int32_t v)
{
    field_header(tc, id, TC_I32);
    put_varint(tc, zigzag64(v));
}

void tc_i16(tc_writer *tc, int16_t id, int16_t v)
{
    field_header(tc, id, TC_I16);
    put_varint(tc, zigzag64(v));
}

void tc_i64(tc_writer *tc, int16_t id, int64_t v)
{
    field_header(tc, id, TC_I64);
    put_varint(tc, zigzag64(v));
}

void tc_bool(tc_writer *tc, int16_t id, int v)
{
    field_header(tc, id, v ? TC_BOOL_TRUE : TC_BOOL_FALSE);
}

void tc_binary(tc_writer *tc, int16_t id, const void *p, size_t n)
{
    field_header(tc, id, TC_BINARY);
    tc_elem_binary(tc, p, n);
}

void tc_struct(tc_writer *tc, int16_t id)
{
    field_header(tc, id, TC_STRUCT);
    push(tc);
}

void tc_list(tc_writer *tc, int16_t id, enum tc_type elem, size_t n)
{
    field_header(tc, id, TC_LIST);
    if (n < 15) {
        put_byte(tc, (unsigned char)((n << 4) | elem));
    } else {
        put_byte(tc, (unsigned char)(0xF0 | elem));
        put_varint(tc, n);
    }
}

void tc_elem_i32(tc_writer *tc, int32_t v)
{
    put_varint(tc, zigzag64(v));
}

void tc_elem_binary(tc_writer *tc, const void *p, size_t n)
{
    put_varint(tc, n);
    if (strbuf_append(tc->out, p, n) != 0)
        tc->failed = 1;
}

void tc_elem_struct(tc_writer *tc)
{
    push(tc);
}

void tc_raw(tc_writer *tc, const void *p, size_t n)
{
    if (strbuf_append(tc->out, p, n) != 0)
        tc->failed = 1;
}
