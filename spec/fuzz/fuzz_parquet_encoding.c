/*
** libFuzzer target for the Parquet encoders: the RLE/bit-packed hybrid must
** decode (with the small reference decoder below) to exactly its input, and
** the date parser must never misbehave on any bytes. The parquet sources are
** compiled in here because `make check` links fuzz targets with the top-level
** csrc sources only.
*/
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "parquet/datetime.c"
#include "parquet/encoding.c"
#include "parquet/thrift.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint64_t read_uvarint(const unsigned char *p, size_t n, size_t *at)
{
    uint64_t v = 0;
    int shift = 0;
    while (*at < n) {
        unsigned char b = p[(*at)++];
        v |= (uint64_t)(b & 0x7F) << shift;
        if (!(b & 0x80))
            return v;
        shift += 7;
        if (shift > 63)
            abort();
    }
    abort();   /* truncated varint: the encoder wrote something wrong */
}

/* Decode exactly count values of the given width; abort on any inconsistency. */
static void decode_check(const unsigned char *p, size_t n, int width, const uint32_t *want, size_t count)
{
    size_t at = 0, got = 0, vbytes = (size_t)(width + 7) / 8;
    while (got < count) {
        uint64_t h = read_uvarint(p, n, &at);
        if (h & 1) {
            size_t groups = (size_t)(h >> 1), k;
            if (groups == 0 || at + groups * (size_t)width > n)
                abort();
            for (k = 0; k < groups * 8; k++) {
                uint64_t bit = (uint64_t)k * (uint64_t)width, v = 0;
                int b;
                for (b = 0; b < width; b++) {
                    uint64_t pos = bit + (uint64_t)b;
                    if ((p[at + pos / 8] >> (pos % 8)) & 1)
                        v |= (uint64_t)1 << b;
                }
                if (got < count && v != want[got++])
                    abort();
            }
            at += groups * (size_t)width;
        } else {
            size_t run = (size_t)(h >> 1), k;
            uint32_t v = 0;
            if (run == 0 || at + vbytes > n || got + run > count)
                abort();
            for (k = 0; k < vbytes; k++)
                v |= (uint32_t)p[at + k] << (8 * k);
            at += vbytes;
            for (k = 0; k < run; k++)
                if (want[got++] != v)
                    abort();
        }
    }
    if (at != n)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int64_t ms;
    strbuf out;
    uint32_t *vals;
    unsigned char *bytes;
    size_t i, count;
    int width;

    (void)parse_es_date((const char *)data, size, &ms);
    if (size < 2)
        return 0;
    /* first byte: bit width 1..32; the rest: values, repeats kept so runs occur */
    width = data[0] % 32 + 1;
    count = (size - 1);
    vals = malloc(count * sizeof *vals);
    bytes = malloc(count);
    if (vals == NULL || bytes == NULL) {
        free(vals);
        free(bytes);
        return 0;
    }
    for (i = 0; i < count; i++) {
        uint32_t v = data[1 + i];
        v = (v * 0x9E3779B1u) ^ (v << 24);
        vals[i] = width == 32 ? v : (v & ((1u << width) - 1));
        bytes[i] = data[1 + i] & 1;
    }
    strbuf_init(&out);
    if (rle_hybrid_u32(&out, vals, count, width) == 0)
        decode_check((const unsigned char *)out.data, out.len, width, vals, count);
    out.len = 0;
    for (i = 0; i < count; i++)
        vals[i] = bytes[i];
    if (rle_hybrid_u8(&out, bytes, count, 1) == 0)
        decode_check((const unsigned char *)out.data, out.len, 1, vals, count);
    strbuf_free(&out);
    free(vals);
    free(bytes);
    return 0;
}
