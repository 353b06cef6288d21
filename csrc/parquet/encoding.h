/* Parquet value encodings: the RLE/bit-packed hybrid and bit-packed booleans. */
#ifndef ESPIPE_PARQUET_ENCODING_H
#define ESPIPE_PARQUET_ENCODING_H

#include <stddef.h>
#include <stdint.h>

#include "base/strbuf.h"

/* Bits needed to store max_value (at least 1: readers expect a non-zero width). */
int bit_width_for(uint32_t max_value);

/* RLE/bit-packed hybrid of n values of the given width, no length prefix. */
int rle_hybrid_u32(strbuf *out, const uint32_t *v, size_t n, int width);
/* The same over byte-sized values (definition levels). */
int rle_hybrid_u8(strbuf *out, const unsigned char *v, size_t n, int width);

/* PLAIN booleans: one bit per value, LSB first. */
int bitpack_bools(strbuf *out, const unsigned char *v, size_t n);

static inline void put_le32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
    p[2] = (unsigned char)(v >> 16);
    p[3] = (unsigned char)(v >> 24);
}

static inline void put_le64(unsigned char *p, uint64_t v)
{
    put_le32(p, (uint32_t)v);
    put_le32(p + 4, (uint32_t)(v >> 32));
}

static inline uint32_t get_le32(const unsigned char *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static inline uint64_t get_le64(const unsigned char *p)
{
    return (uint64_t)get_le32(p) | ((uint64_t)get_le32(p + 4) << 32);
}

#endif
