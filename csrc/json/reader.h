/*
** The JSON reader shared by the codec and every scanner of server bytes
** (search responses, bulk builder raw lines, the Parquet page reader): byte
** classes, string skips, the decoder state and its grammar pieces, plus the
** encoder's key cache (json/encoder.c and the bulk builder share it).
*/
#ifndef ESPIPE_JSON_READER_H
#define ESPIPE_JSON_READER_H

#include <stdint.h>
#include <string.h>

#if defined(__SSE2__) && defined(__GNUC__)
#include <emmintrin.h>
#endif

#include "base/utf8.h"
#include "json.h"

#if defined(__GNUC__) && defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define JSON_LITTLE_ENDIAN_WORDS 1
#else
#define JSON_LITTLE_ENDIAN_WORDS 0
#endif

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

/*
** json_skip_plain, faster on long runs: sixteen bytes per step with SSE2
** (one signed compare flags both control and non-ASCII bytes), else eight
** with a bit scan to finish the word. Keys and most values end in their
** first step. The Parquet page reader's; the decoder keeps json_skip_plain,
** whose cost it was tuned against.
*/
static inline const unsigned char *json_skip_plain_wide(const unsigned char *p,
                                                        const unsigned char *end)
{
#if defined(__SSE2__) && defined(__GNUC__)
    const __m128i quote = _mm_set1_epi8('"'), bslash = _mm_set1_epi8('\\');
    const __m128i space = _mm_set1_epi8(0x20);
    while (end - p >= 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
        __m128i hit = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, bslash)),
                                   _mm_cmplt_epi8(v, space));   /* signed: >= 0x80 is below 0x20 */
        unsigned m = (unsigned)_mm_movemask_epi8(hit);
        if (m != 0)
            return p + __builtin_ctz(m);
        p += 16;
    }
#endif
#if JSON_LITTLE_ENDIAN_WORDS
    {
        const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
        while (end - p >= 8) {
            uint64_t v, quote8, bslash8, m;
            memcpy(&v, p, 8);
            quote8 = v ^ (ones * '"');
            bslash8 = v ^ (ones * '\\');
            /* each test can mark bytes after a true hit, never before one: the lowest mark is exact */
            m = (v | ((v - ones * 0x20) & ~v) | ((quote8 - ones) & ~quote8) | ((bslash8 - ones) & ~bslash8))
                & highs;
            if (m != 0)
                return p + (__builtin_ctzll(m) >> 3);
            p += 8;
        }
    }
#endif
    while (p < end && json_char_class[*p] == JSON_CH_PLAIN)
        p++;
    return p;
}

/*
** First byte at or after p that a string's text cannot copy as it is: past
** plain bytes and valid UTF-8 sequences, so it stops at a quote, a
** backslash, a control byte, invalid UTF-8 or end.
*/
static inline const unsigned char *json_skip_clean(const unsigned char *p,
                                                   const unsigned char *end)
{
    size_t n, bad;

    for (;;) {
        p = json_skip_plain(p, end);
        if (p < end && json_char_class[*p] == JSON_CH_UTF8 &&
            (n = utf8_sequence(p, (size_t)(end - p), &bad)) != 0) {
            p += n;
            continue;
        }
        return p;
    }
}

/*
** The encoder's object-key cache: a key string's address -> its text
** ',"key":' ready to copy. Keys are the same few interned strings in every
** document, so most members cost a lookup and a copy instead of a scan.
** Pointer identity is sound only because each cached string is kept alive:
** slot i's string sits at [i + 1] of an anchor table (a Lua table with an
** array part of JSON_KEY_SLOTS, so setting it never allocates); a live
** string's address cannot belong to another string. Only keys needing no
** escaping (plain or valid UTF-8) and short enough to fit are cached.
*/
#define JSON_KEY_SETS 64
#define JSON_KEY_WAYS 4
#define JSON_KEY_SLOTS (JSON_KEY_SETS * JSON_KEY_WAYS)
#define JSON_KEY_COPY 48        /* bytes copied per hit, whatever the length */
#define JSON_KEY_MAXLEN (JSON_KEY_COPY - 4)

typedef struct json_key_entry {
    const char *str;            /* the anchored key's bytes, NULL when empty */
    unsigned char len;          /* bytes of text, comma included */
    char text[JSON_KEY_COPY + 1];   /* ',"key":' then anything */
} json_key_entry;

typedef struct json_key_cache {
    json_key_entry slot[JSON_KEY_SLOTS];
    unsigned char victim[JSON_KEY_SETS];    /* the way the next miss replaces */
    const void *array_mt;   /* the array metatable, kept alive by the anchor table */
} json_key_cache;

/*
** The encoder context of a Lua state, shared by encode and the bulk
** builder: the key cache (a userdata) and its anchor table, both in the
** registry under keys private to json_encode.c. The anchor table's
** [1..JSON_KEY_SLOTS] are the cached keys, [JSON_KEY_SLOTS + 1] the array
** metatable. json_context returns the cache, made on first use (it may
** raise then: call it when opening the module).
*/
json_key_cache *json_context(lua_State *L);

/*
** json_encode_value with the context's cache at hand (encode keeps it in an
** upvalue), which saves the registry lookup of json_encode_value.
*/
int json_encode_with(lua_State *L, int idx, json_key_cache *keys, strbuf *out,
                     const json_encode_cfg *cfg, char *err);

/*
** The decoder's state, shared with parsers built on its pieces (the search
** response reader). Offsets in errors are err_at, 0-based.
*/
typedef struct json_decoder {
    lua_State *L;
    const unsigned char *p;
    const unsigned char *start;
    const unsigned char *end;
    const json_decode_cfg *cfg;
    char *err;
    size_t err_at;
    int array_mt;       /* stack index of the array metatable */
    int depth;
} json_decoder;

/* Each returns 0, or -1 with err/err_at set. */
int json_dec_value(json_decoder *d);    /* push the value at d->p (spaces first) */
int json_dec_string(json_decoder *d);   /* push the string at d->p, a quote */
int json_dec_skip(json_decoder *d);     /* check the value at d->p, push nothing */
int json_dec_enter(json_decoder *d);    /* past '[' or '{', within the depth limit */
int json_dec_expected(json_decoder *d, const char *what);
void json_dec_space(json_decoder *d);
/*
** The punctuation of objects and arrays, in one place for every reader:
** json_dec_closes: at the start of a container (past '{' or '['), 1 when it
**   is empty (the closing byte consumed), else 0 with d->p on its content;
** json_dec_colon: the ':' after a member's key, 0 or -1;
** json_dec_next: after a member or element, 1 when ',' follows (consumed),
**   0 when the closing byte ends the container (consumed), -1 otherwise.
*/
int json_dec_closes(json_decoder *d, unsigned char close);
int json_dec_colon(json_decoder *d);
int json_dec_next(json_decoder *d, unsigned char close);

/*
** Without Lua (d->L == NULL) only these may be used: json_dec_skip,
** json_dec_enter, json_dec_space, json_dec_expected, json_dec_closes,
** json_dec_colon, json_dec_next, json_dec_number and json_dec_unescape.
*/
enum json_num_kind { JSON_NUM_INTEGER, JSON_NUM_DOUBLE, JSON_NUM_BIG };
typedef struct json_num {
    enum json_num_kind kind;
    int64_t i;      /* JSON_NUM_INTEGER (only where Lua has integers) */
    double d;       /* JSON_NUM_DOUBLE */
    const unsigned char *start, *end;   /* the number's text */
} json_num;
int json_dec_number(json_decoder *d, json_num *out);  /* the number at d->p */
/* The string at d->p (a quote), its escapes resolved, appended to out. */
int json_dec_unescape(json_decoder *d, strbuf *out);

/* Past this nesting the C stack, not the data, would be at risk. */
#define JSON_DEPTH_CEILING 10000

#endif
