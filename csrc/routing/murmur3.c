#include <string.h>

#include "murmur3.h"

#define C1 0xcc9e2d51u
#define C2 0x1b873593u

static inline uint32_t rotl32(uint32_t x, int r)
{
    return (x << r) | (x >> (32 - r));
}

static inline uint32_t mix_k(uint32_t k)
{
    k *= C1;
    k = rotl32(k, 15);
    return k * C2;
}

static inline uint32_t mix_h(uint32_t h, uint32_t k)
{
    h ^= mix_k(k);
    h = rotl32(h, 13);
    return h * 5 + 0xe6546b64u;
}

static inline uint32_t fmix32(uint32_t h)
{
    h ^= h >> 16;
    h *= 0x85ebca6bu;
    h ^= h >> 13;
    h *= 0xc2b2ae35u;
    h ^= h >> 16;
    return h;
}

/* Little-endian load whatever the host order or alignment. */
static inline uint32_t load_le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

uint32_t murmur3_x86_32(const void *data, size_t len, uint32_t seed)
{
    const unsigned char *p = data;
    size_t nblocks = len / 4, i;
    uint32_t h = seed, k = 0;

    for (i = 0; i < nblocks; i++)
        h = mix_h(h, load_le32(p + 4 * i));
    p += 4 * nblocks;
    switch (len & 3) {
    case 3: k ^= (uint32_t)p[2] << 16; /* fall through */
    case 2: k ^= (uint32_t)p[1] << 8;  /* fall through */
    case 1: k ^= p[0]; h ^= mix_k(k);
    }
    h ^= (uint32_t)len;
    return fmix32(h);
}

/*
** The UTF-16LE byte stream is never materialised: code units are fed two at
** a time (one 4-byte block) into the hash, so any length hashes in O(1) space.
*/
typedef struct u16_hasher {
    uint32_t h;
    uint32_t pending;   /* a code unit waiting for its block partner */
    int has_pending;
    size_t nbytes;
} u16_hasher;

static inline void feed_unit(u16_hasher *st, uint32_t unit)
{
    st->nbytes += 2;
    if (st->has_pending) {
        st->h = mix_h(st->h, st->pending | unit << 16);
        st->has_pending = 0;
    } else {
        st->pending = unit;
        st->has_pending = 1;
    }
}

/* Length of the valid UTF-8 sequence at s[i] (code point in *cp), or 0. */
static size_t utf8_next(const unsigned char *s, size_t len, size_t i, uint32_t *cp)
{
    unsigned c = s[i];
    unsigned lo = 0x80, hi = 0xbf;
    size_t n, j;
    uint32_t v;

    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    if (c >= 0xc2 && c <= 0xdf) {
        n = 2;
        v = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        v = c & 0x0f;
        if (c == 0xe0) lo = 0xa0;          /* overlong */
        else if (c == 0xed) hi = 0x9f;     /* UTF-16 surrogates */
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        v = c & 0x07;
        if (c == 0xf0) lo = 0x90;          /* overlong */
        else if (c == 0xf4) hi = 0x8f;     /* beyond U+10FFFF */
    } else {
        return 0;
    }
    if (len - i < n)
        return 0;
    for (j = 1; j < n; j++) {
        unsigned b = s[i + j];
        if (b < lo || b > hi)
            return 0;
        lo = 0x80;
        hi = 0xbf;
        v = v << 6 | (b & 0x3f);
    }
    *cp = v;
    return n;
}

int es_routing_hash(const char *str, size_t len, int32_t *out, size_t *bad_offset)
{
    const unsigned char *s = (const unsigned char *)str;
    u16_hasher st = { 0, 0, 0, 0 };
    size_t i = 0;
    uint32_t h;

    while (i < len) {
        uint32_t cp;
        size_t n;

        /* ASCII pairs go straight in: the common case for ids. */
        if (!st.has_pending && len - i >= 2 && s[i] < 0x80 && s[i + 1] < 0x80) {
            st.h = mix_h(st.h, (uint32_t)s[i] | (uint32_t)s[i + 1] << 16);
            st.nbytes += 4;
            i += 2;
            continue;
        }
        n = utf8_next(s, len, i, &cp);
        if (n == 0) {
            *bad_offset = i;
            return -1;
        }
        if (cp >= 0x10000) {
            cp -= 0x10000;
            feed_unit(&st, 0xd800 + (cp >> 10));
            feed_unit(&st, 0xdc00 + (cp & 0x3ff));
        } else {
            feed_unit(&st, cp);
        }
        i += n;
    }
    h = st.h;
    if (st.has_pending)
        h ^= mix_k(st.pending);
    h ^= (uint32_t)st.nbytes;
    h = fmix32(h);
    /* Two's complement reinterpretation without implementation-defined conversion. */
    *out = (h <= INT32_MAX) ? (int32_t)h : -(int32_t)(UINT32_MAX - h) - 1;
    return 0;
}
