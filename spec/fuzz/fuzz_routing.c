/*
** libFuzzer target for the routing hash: for any bytes, es_routing_hash must
** either agree with murmur3_x86_32 over a UTF-16LE copy made here by a
** separate decoder, or reject at an offset where that decoder also stops
** (and accept everything before it).
** Build: clang -fsanitize=fuzzer,address,undefined -Icsrc \
**        spec/fuzz/fuzz_routing.c csrc/routing/murmur3.c
*/
#include <stdint.h>
#include <stdlib.h>

#include "routing/murmur3.h"

/* Decodes one UTF-8 sequence the slow, obvious way; 0 when invalid. */
static size_t decode(const uint8_t *s, size_t n, uint32_t *cp)
{
    static const uint32_t min[5] = { 0, 0, 0x80, 0x800, 0x10000 };
    size_t len, i;
    uint32_t v;

    if (s[0] < 0x80) { *cp = s[0]; return 1; }
    if ((s[0] & 0xe0) == 0xc0) { len = 2; v = s[0] & 0x1f; }
    else if ((s[0] & 0xf0) == 0xe0) { len = 3; v = s[0] & 0x0f; }
    else if ((s[0] & 0xf8) == 0xf0) { len = 4; v = s[0] & 0x07; }
    else return 0;
    if (n < len)
        return 0;
    for (i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        v = (v << 6) | (s[i] & 0x3f);
    }
    if (v < min[len] || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
        return 0;
    *cp = v;
    return len;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *u16 = malloc(size * 4 + 1);
    size_t i = 0, n = 0, bad = 0;
    int32_t got = 0, prefix = 0;
    int rc = es_routing_hash((const char *)data, size, &got, &bad);

    if (u16 == NULL)
        abort();
    while (i < size) {
        uint32_t cp, units[2];
        size_t len = decode(data + i, size - i, &cp), k, m = 1;

        if (len == 0)
            break;
        units[0] = cp;
        if (cp >= 0x10000) {
            units[0] = 0xd800 + ((cp - 0x10000) >> 10);
            units[1] = 0xdc00 + ((cp - 0x10000) & 0x3ff);
            m = 2;
        }
        for (k = 0; k < m; k++) {
            u16[n++] = (uint8_t)(units[k] & 0xff);
            u16[n++] = (uint8_t)(units[k] >> 8);
        }
        i += len;
    }
    if (i == size) {
        if (rc != 0 || (uint32_t)got != murmur3_x86_32(u16, n, 0))
            abort();
    } else {
        if (rc != -1 || bad != i)
            abort();
        if (es_routing_hash((const char *)data, bad, &prefix, &bad) != 0
            || (uint32_t)prefix != murmur3_x86_32(u16, n, 0))
            abort();
    }
    free(u16);
    return 0;
}
