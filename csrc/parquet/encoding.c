#include <string.h>

#include "encoding.h"
#include "thrift.h"

int bit_width_for(uint32_t max_value)
{
    int w = 1;
    while (w < 32 && (max_value >> w) != 0)
        w++;
    return w;
}

/*
** One encoder for both element sizes: get(v, i) reads element i. Runs of 8 or
** more equal values become RLE runs; everything else is bit-packed in groups
** of 8, the last group zero-padded (the page header carries the real count).
*/
#define DEFINE_RLE_HYBRID(NAME, T)                                              \
    static size_t run_at_##NAME(const T *v, size_t n, size_t i)                 \
    {                                                                           \
        size_t j = i + 1;                                                       \
        while (j < n && v[j] == v[i])                                           \
            j++;                                                                \
        return j - i;                                                           \
    }                                                                           \
    int NAME(strbuf *out, const T *v, size_t n, int width)                      \
    {                                                                           \
        size_t i = 0, value_bytes = (size_t)(width + 7) / 8;                    \
        while (i < n) {                                                         \
            size_t run = run_at_##NAME(v, n, i);                                \
            if (run >= 8) {                                                     \
                unsigned char tmp[4];                                           \
                uint32_t x = (uint32_t)v[i];                                    \
                size_t k;                                                       \
                if (put_uvarint(out, (uint64_t)run << 1) != 0)                  \
                    return -1;                                                  \
                for (k = 0; k < value_bytes; k++)                               \
                    tmp[k] = (unsigned char)(x >> (8 * k));                     \
                if (strbuf_append(out, tmp, value_bytes) != 0)                  \
                    return -1;                                                  \
                i += run;                                                       \
            } else {                                                            \
                size_t end = i, groups, nbytes, k;                              \
                unsigned char *p;                                               \
                /* extend group by group until a long run starts a group */     \
                do {                                                            \
                    end += 8;                                                   \
                } while (end < n && run_at_##NAME(v, n, end) < 8);              \
                groups = (end - i) / 8;                                         \
                nbytes = groups * (size_t)width;                                \
                if (put_uvarint(out, ((uint64_t)groups << 1) | 1) != 0)         \
                    return -1;                                                  \
                if (strbuf_reserve(out, nbytes) != 0)                           \
                    return -1;                                                  \
                p = (unsigned char *)out->data + out->len;                      \
                memset(p, 0, nbytes);                                           \
                for (k = 0; k < end - i && i + k < n; k++) {                    \
                    uint64_t bit = (uint64_t)k * (uint64_t)width;               \
                    uint64_t x = (uint64_t)v[i + k];                            \
                    int b;                                                      \
                    for (b = 0; b < width; b += 8 - (int)((bit + b) & 7)) {     \
                        size_t byte = (size_t)((bit + b) >> 3);                 \
                        int shift = (int)((bit + b) & 7);                       \
                        p[byte] |= (unsigned char)((x >> b) << shift);          \
                    }                                                           \
                }                                                               \
                out->len += nbytes;                                             \
                i = end < n ? end : n;                                          \
            }                                                                   \
        }                                                                       \
        return 0;                                                               \
    }

DEFINE_RLE_HYBRID(rle_hybrid_u32, uint32_t)
DEFINE_RLE_HYBRID(rle_hybrid_u8, unsigned char)

int bitpack_bools(strbuf *out, const unsigned char *v, size_t n)
{
    size_t nbytes = (n + 7) / 8, i;
    unsigned char *p;
    if (strbuf_reserve(out, nbytes) != 0)
        return -1;
    p = (unsigned char *)out->data + out->len;
    memset(p, 0, nbytes);
    for (i = 0; i < n; i++)
        if (v[i])
            p[i >> 3] |= (unsigned char)(1u << (i & 7));
    out->len += nbytes;
    return 0;
}
