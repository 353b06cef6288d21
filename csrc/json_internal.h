/* Private to the JSON codec's C files. */
#ifndef ESPIPE_JSON_INTERNAL_H
#define ESPIPE_JSON_INTERNAL_H

#include <stdint.h>
#include <string.h>

/* Byte classes inside strings, the same for both directions. */
enum { JSON_CH_PLAIN = 0, JSON_CH_ESCAPE = 1, JSON_CH_UTF8 = 2 };
extern const unsigned char json_char_class[256];

/*
** First byte at or after p that is not JSON_CH_PLAIN: eight bytes at a time
** (a word holds a quote, a backslash, a control or a high byte exactly when
** one of the has-byte tests below is non-zero), then one at a time.
*/
static inline const unsigned char *json_skip_plain(const unsigned char *p,
                                                   const unsigned char *end)
{
    const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
    while (end - p >= 8) {
        uint64_t v, quote, bslash;
        memcpy(&v, p, 8);
        quote = v ^ (ones * '"');
        bslash = v ^ (ones * '\\');
        if (((v | ((v - ones * 0x20) & ~v) | ((quote - ones) & ~quote) |
              ((bslash - ones) & ~bslash)) & highs) != 0)
            break;
        p += 8;
    }
    while (p < end && json_char_class[*p] == JSON_CH_PLAIN)
        p++;
    return p;
}

/* Past this nesting the C stack, not the data, would be at risk. */
#define JSON_DEPTH_CEILING 10000

#endif
