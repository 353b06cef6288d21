/*
** JSON encoder: Lua value -> JSON text appended to a strbuf. It never raises
** and never calls into Lua code (raw access only, no metamethods), so the bulk
** builder can call it while it holds buffers of its own.
*/
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "json.h"
#include "reader.h"
#include "number.h"
#include "base/utf8.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#if defined(__GNUC__)
#define NOINLINE __attribute__((noinline))
#define ALWAYS_INLINE inline __attribute__((always_inline))
#else
#define NOINLINE
#define ALWAYS_INLINE inline
#endif

/* '"', '\\' and control characters must be escaped; bytes >= 0x80 validated. */
const unsigned char json_char_class[256] = {
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,};

/* The two-character escapes; the other control characters become \u00XX. */
static const char short_escape[256] = {
    ['\b'] = 'b', ['\f'] = 'f', ['\n'] = 'n', ['\r'] = 'r', ['\t'] = 't',
    ['"'] = '"', ['\\'] = '\\',
};

static const char hex_digits[] = "0123456789abcdef";

/* 2^53: beyond it an integral double no longer names one integer. */
#define EXACT_INT_LIMIT 9007199254740992.0

/* Lua stack slots for 8 levels of open tables: key and value each, 4 in passing. */
#define STACK_PER_8_LEVELS (8 * 2 + 4)

void json_encode_cfg_default(json_encode_cfg *cfg)
{
    cfg->max_depth = ESPIPE_JSON_DEFAULT_DEPTH;
    cfg->utf8 = JSON_UTF8_ERROR;
}

/*
** Where the value being encoded sits, for error messages: one frame per open
** container, on the C stack, naming the child being written. The tables
** themselves stay on the Lua stack (at table_idx) while they are open, and
** an object's current key right above its table, where an error message
** reads it: nothing is stored per member.
*/
enum { PATH_NONE, PATH_INDEX, PATH_KEY };

typedef struct enc_path {
    const struct enc_path *up;
    int table_idx;
    int kind;
    size_t index;
} enc_path;

typedef struct encoder {
    lua_State *L;
    strbuf *out;
    const json_encode_cfg *cfg;
    char *err;
    json_key_cache *keys;   /* NULL: no key cache */
    const void *array_mt;   /* lua_topointer of the array metatable */
    int depth;
} encoder;

static int is_identifier(const char *s, size_t n)
{
    size_t i;
    if (n == 0 || (s[0] >= '0' && s[0] <= '9'))
        return 0;
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!(c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9')))
            return 0;
    }
    return 1;
}

typedef struct path_text {
    char buf[ESPIPE_JSON_ERRLEN];
    size_t len;
} path_text;

static void path_add(path_text *t, const char *s, size_t n)
{
    size_t room = sizeof t->buf - 1 - t->len;
    if (n > room)
        n = room;
    memcpy(t->buf + t->len, s, n);
    t->len += n;
    t->buf[t->len] = '\0';
}

static int number_key(lua_State *L, int idx, char *buf, size_t *len);

static void path_render(lua_State *L, const enc_path *p, path_text *t)
{
    char num[32], keybuf[JSON_NUMBER_MAXLEN];
    const char *key;
    size_t i, keylen;

    if (p == NULL)
        return;
    path_render(L, p->up, t);
    if (p->kind == PATH_INDEX) {
        snprintf(num, sizeof num, "[%zu]", p->index);
        path_add(t, num, strlen(num));
    } else if (p->kind == PATH_KEY) {
        /* The member's key is on the stack above its table (a string or a number). */
        if (lua_type(L, p->table_idx + 1) == LUA_TSTRING) {
            key = lua_tolstring(L, p->table_idx + 1, &keylen);
        } else {
            if (number_key(L, p->table_idx + 1, keybuf, &keylen) != 0)
                keylen = 0;
            key = keybuf;
        }
        if (is_identifier(key, keylen)) {
            path_add(t, ".", 1);
            path_add(t, key, keylen);
            return;
        }
        path_add(t, "[\"", 2);
        for (i = 0; i < keylen && t->len < sizeof t->buf - 1; i++) {
            unsigned char c = (unsigned char)key[i];
            if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\') {
                snprintf(num, sizeof num, "\\x%02x", c);
                path_add(t, num, 4);
            } else {
                path_add(t, (const char *)&c, 1);
            }
        }
        path_add(t, "\"]", 2);
    }
}

/* Append s to the NUL-terminated err (len bytes long), as much as fits. */
static void append_truncated(char *err, size_t len, const char *s)
{
    size_t n = strlen(s);
    if (len >= ESPIPE_JSON_ERRLEN - 1)
        return;
    if (n > ESPIPE_JSON_ERRLEN - 1 - len)
        n = ESPIPE_JSON_ERRLEN - 1 - len;
    memcpy(err + len, s, n);
    err[len + n] = '\0';
}

/* Set err to the formatted message followed by " at <path>". Returns -1. */
static int fail(encoder *e, const enc_path *path, const char *fmt, ...)
{
    path_text t;
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(e->err, ESPIPE_JSON_ERRLEN, fmt, ap);
    va_end(ap);
    if (n < 0)
        n = 0;
    if (n > ESPIPE_JSON_ERRLEN - 1)
        n = ESPIPE_JSON_ERRLEN - 1;
    t.len = 0;
    t.buf[0] = '\0';
    path_render(e->L, path, &t);
    /* Truncation is fine: the path's head says where to look. */
    append_truncated(e->err, (size_t)n, " at ");
    append_truncated(e->err, strlen(e->err), t.len ? t.buf : "the top level");
    return -1;
}

static int out_of_memory(encoder *e)
{
    snprintf(e->err, ESPIPE_JSON_ERRLEN, "out of memory while encoding JSON");
    return -1;
}

/* Input bytes handled per reservation; each may become at most 6 output bytes. */
#define STRING_SEGMENT 4096
/* A valid UTF-8 sequence may run up to 3 bytes past a segment's end. */
#define SEGMENT_SLACK 16

/* Does the word hold a quote, a backslash, a control or a high byte? */
static inline int word_has_special(uint64_t v)
{
    const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
    uint64_t quote = v ^ (ones * '"'), bslash = v ^ (ones * '\\');
    return ((v | ((v - ones * 0x20) & ~v) | ((quote - ones) & ~quote) |
             ((bslash - ones) & ~bslash)) & highs) != 0;
}

static inline int half_has_special(uint32_t v)
{
    const uint32_t ones = 0x01010101u, highs = 0x80808080u;
    uint32_t quote = v ^ (ones * '"'), bslash = v ^ (ones * '\\');
    return ((v | ((v - ones * 0x20) & ~v) | ((quote - ones) & ~quote) |
             ((bslash - ones) & ~bslash)) & highs) != 0;
}

/*
** The rest of a string from str + pos on, after the fast path (put_string)
** met a byte it does not copy as it is; the buffer holds the opening quote
** and str[0..pos). Returns 0, -1 when out of memory, or the 1-based offset
** + 1 of invalid UTF-8 (so >= 2) in error mode.
** Scanning and copying are one pass: the buffer is reserved for the worst
** case of a segment, so clean words are stored as they are loaded. Short
** runs at the end are tested as overlapping words: a clean word's bytes
** were all copied as they are, so writing them again changes nothing.
*/
static NOINLINE long long put_string_rest(encoder *e, const char *str, size_t len, size_t pos)
{
    strbuf *b = e->out;
    const unsigned char *first = (const unsigned char *)str;
    const unsigned char *s = first + pos, *end = first + len, *seg_end;
    unsigned char *d;
    size_t n, bad, rem;
    uint64_t v;
    uint32_t h1, h2;

    for (;;) {
        n = (size_t)(end - s);
        if (strbuf_reserve(b, (n < STRING_SEGMENT ? n : STRING_SEGMENT) * 6 + 1 +
                           SEGMENT_SLACK) != 0)
            return -1;
        d = (unsigned char *)b->data + b->len;
        seg_end = n > STRING_SEGMENT ? s + STRING_SEGMENT : end;
        while (s < seg_end) {
            while (seg_end - s >= 8) {
                memcpy(&v, s, 8);
                if (word_has_special(v))
                    break;
                memcpy(d, &v, 8);
                s += 8;
                d += 8;
            }
            rem = (size_t)(seg_end - s);
            if (rem < 8) {
                if (rem == 0)
                    break;
                if (seg_end - first >= 8) {
                    memcpy(&v, seg_end - 8, 8);
                    if (!word_has_special(v)) {
                        memcpy(d + rem - 8, &v, 8);
                        d += rem;
                        s = seg_end;
                        break;
                    }
                } else if (rem >= 4) {
                    memcpy(&h1, s, 4);
                    memcpy(&h2, seg_end - 4, 4);
                    if (!half_has_special(h1) && !half_has_special(h2)) {
                        memcpy(d, &h1, 4);
                        memcpy(d + rem - 4, &h2, 4);
                        d += rem;
                        s = seg_end;
                        break;
                    }
                }
            }
            while (s < seg_end && json_char_class[*s] == JSON_CH_PLAIN)
                *d++ = *s++;
            if (s >= seg_end)
                break;
            if (json_char_class[*s] == JSON_CH_ESCAPE) {
                unsigned char c = *s++;
                *d++ = '\\';
                if (short_escape[c]) {
                    *d++ = (unsigned char)short_escape[c];
                } else {
                    memcpy(d, "u00", 3);
                    d[3] = (unsigned char)hex_digits[c >> 4];
                    d[4] = (unsigned char)hex_digits[c & 15];
                    d += 5;
                }
            } else if ((n = utf8_sequence(s, (size_t)(end - s), &bad)) != 0) {
                memcpy(d, s, n);
                s += n;
                d += n;
            } else {
                if (e->cfg->utf8 != JSON_UTF8_REPLACE)
                    return (long long)(s - first) + 2;
                memcpy(d, UTF8_REPLACEMENT, 3);
                d += 3;
                s += bad;
            }
        }
        b->len = (size_t)(d - (unsigned char *)b->data);
        if (s >= end)
            break;
    }
    *d++ = '"';
    b->len = (size_t)(d - (unsigned char *)b->data);
    return 0;
}

#if defined(__SSE2__)
/* Bit i set when byte i of v is a quote, a backslash, < 0x20 or >= 0x80. */
static inline unsigned special_mask(__m128i v)
{
    /* Signed: the high bytes are negative, so one test covers them and controls. */
    __m128i low = _mm_cmplt_epi8(v, _mm_set1_epi8(0x20));
    __m128i q = _mm_cmpeq_epi8(v, _mm_set1_epi8('"'));
    __m128i bs = _mm_cmpeq_epi8(v, _mm_set1_epi8('\\'));
    return (unsigned)_mm_movemask_epi8(_mm_or_si128(low, _mm_or_si128(q, bs)));
}

static inline unsigned special_mask16(const unsigned char *p)
{
    return special_mask(_mm_loadu_si128((const __m128i *)(const void *)p));
}

/* Two words tested as one vector. */
static inline int pair_has_special(uint64_t v, uint64_t w)
{
    return special_mask(_mm_set_epi64x((long long)w, (long long)v)) != 0;
}
#else
static inline int pair_has_special(uint64_t v, uint64_t w)
{
    return word_has_special(v) || word_has_special(w);
}
#endif

/*
** The string s[0..len) as a JSON string; results as put_string_rest, which
** takes over from the first byte that is not copied as it is. Clean
** strings, nearly all of them, are copied here in whole words: 16 bytes at
** a time where SSE2 is there, the end as one overlapping load (a clean
** load's bytes are written as they are, so writing some twice is harmless).
*/
static ALWAYS_INLINE long long put_string(encoder *e, const char *str, size_t len)
{
    strbuf *b = e->out;
    const unsigned char *s = (const unsigned char *)str, *end = s + len;
    unsigned char *d;
    uint64_t v, w;
    uint32_t h1, h2;

    /* The quotes, and room for a word stored past the string's end. */
    if (len > STRING_SEGMENT || strbuf_reserve(b, len + 2 + 16) != 0)
        goto rest;
    d = (unsigned char *)b->data + b->len;
    *d++ = '"';
#if defined(__SSE2__)
    if (len >= 16) {
        unsigned m;
        while (end - s > 16) {
            if ((m = special_mask16(s)) != 0) {
                memcpy(d, s, 16);
                d += __builtin_ctz(m);
                s += __builtin_ctz(m);
                goto rest_at;
            }
            memcpy(d, s, 16);
            s += 16;
            d += 16;
        }
        if (special_mask16(end - 16) != 0)
            goto rest_at;
        memcpy(d + (end - s) - 16, end - 16, 16);
        d += end - s;
        goto done;
    }
#else
    while (end - s > 8) {
        memcpy(&v, s, 8);
        if (word_has_special(v))
            goto rest_at;
        memcpy(d, &v, 8);
        s += 8;
        d += 8;
    }
    if (len >= 8) {
        memcpy(&v, end - 8, 8);
        if (word_has_special(v))
            goto rest_at;
        memcpy(d + (end - s) - 8, &v, 8);
        d += end - s;
        goto done;
    }
#endif
    if (len >= 8) {
        memcpy(&v, s, 8);
        memcpy(&w, end - 8, 8);
        if (pair_has_special(v, w))
            goto rest_at;
        memcpy(d, &v, 8);
        memcpy(d + len - 8, &w, 8);
        d += len;
    } else if (len >= 4) {
        memcpy(&h1, s, 4);
        memcpy(&h2, end - 4, 4);
        /* Both halves in one word. */
        if (word_has_special(h1 | (uint64_t)h2 << 32))
            goto rest_at;
        memcpy(d, &h1, 4);
        memcpy(d + len - 4, &h2, 4);
        d += len;
    } else {
        for (; s < end; s++, d++) {
            if (json_char_class[*s] != JSON_CH_PLAIN)
                goto rest_at;
            *d = *s;
        }
    }
done:
    *d++ = '"';
    b->len = (size_t)(d - (unsigned char *)b->data);
    return 0;
rest_at:
    b->len = (size_t)(d - (unsigned char *)b->data);
    return put_string_rest(e, str, len, (size_t)(s - (const unsigned char *)str));
rest:
    if (strbuf_putc(b, '"') != 0)
        return -1;
    return put_string_rest(e, str, len, 0);
}

static NOINLINE int string_failed(encoder *e, long long r, const enc_path *path,
                                   const char *what)
{
    if (r < 0)
        return out_of_memory(e);
    return fail(e, path, "invalid UTF-8 at byte %lld of %s", r - 1, what);
}

static ALWAYS_INLINE int encode_string(encoder *e, const char *s, size_t len,
                                       const enc_path *path, const char *what)
{
    long long r = put_string(e, s, len);
    return r == 0 ? 0 : string_failed(e, r, path, what);
}

/* Number text straight into the buffer; 0, or -1 for NaN/inf/OOM. */
static int encode_number(encoder *e, int idx, const enc_path *path)
{
    lua_State *L = e->L;
    strbuf *b = e->out;
    lua_Number x;

    if (strbuf_reserve(b, JSON_NUMBER_MAXLEN) != 0)
        return out_of_memory(e);
#if ESPIPE_HAS_INTEGERS
    if (lua_isinteger(L, idx)) {
        b->len += json_fmt_integer(b->data + b->len, (long long)lua_tointeger(L, idx));
        return 0;
    }
#endif
    x = lua_tonumber(L, idx);
    if (!isfinite(x))
        return fail(e, path, "cannot encode %s", x != x ? "NaN" : (x > 0 ? "inf" : "-inf"));
#if ESPIPE_HAS_INTEGERS
    b->len += json_fmt_double(b->data + b->len, (double)x, 1);
#else
    /* Integral doubles within 2^53 are the integers of 5.1/5.2/LuaJIT. */
    if (fabs(x) <= EXACT_INT_LIMIT && (double)(long long)x == x && !(x == 0 && signbit(x)))
        b->len += json_fmt_integer(b->data + b->len, (long long)x);
    else
        b->len += json_fmt_double(b->data + b->len, (double)x, 0);
#endif
    return 0;
}

/* Text of a numeric table key into buf; 0 or -1 when it has none (inf). */
static int number_key(lua_State *L, int idx, char *buf, size_t *len)
{
    lua_Number x;
#if ESPIPE_HAS_INTEGERS
    if (lua_isinteger(L, idx)) {
        *len = json_fmt_integer(buf, (long long)lua_tointeger(L, idx));
        return 0;
    }
#endif
    x = lua_tonumber(L, idx);
    if (!isfinite(x))
        return -1;
    if (fabs(x) <= EXACT_INT_LIMIT && (double)(long long)x == x)
        *len = json_fmt_integer(buf, (long long)x);
    else
        *len = json_fmt_double(buf, (double)x, 0);
    return 0;
}

static ALWAYS_INLINE int encode_value(encoder *e, int idx, const enc_path *path);

/* Is the key at stack index -1 an integer in 1..n? */
static int is_index_key(lua_State *L, size_t n)
{
    if (lua_type(L, -1) != LUA_TNUMBER)
        return 0;
#if ESPIPE_HAS_INTEGERS
    if (lua_isinteger(L, -1)) {
        lua_Integer k = lua_tointeger(L, -1);
        return k >= 1 && (lua_Unsigned)k <= (lua_Unsigned)n;
    } else {
        return 0;
    }
#else
    {
        lua_Number k = lua_tonumber(L, -1);
        return k >= 1 && k <= (lua_Number)n && (lua_Number)(size_t)k == k;
    }
#endif
}

/*
** Is the key at stack index -2 the integer i? Lua stores a float key with
** an integral value as that integer, so a float key is never integral and
** comparing as numbers is exact (i stays far below 2^53: it counts elements).
*/
static int key_is(lua_State *L, lua_Integer i)
{
#if ESPIPE_HAS_INTEGERS
    int isnum;
    return lua_type(L, -2) == LUA_TNUMBER && lua_tointegerx(L, -2, &isnum) == i && isnum;
#else
    return lua_type(L, -2) == LUA_TNUMBER && lua_tonumber(L, -2) == (lua_Number)i;
#endif
}

/* Keys exactly 1..n, nothing else: then an unmarked table is an array. */
static int is_dense(lua_State *L, int idx, size_t n)
{
    size_t count = 0;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_pop(L, 1);
        if (!is_index_key(L, n)) {
            lua_pop(L, 1);
            return 0;
        }
        count++;
    }
    return count == n;
}

/* Called when the depth limit is hit: a cycle, or just deep data? */
static int depth_error(encoder *e, int idx, const enc_path *path)
{
    lua_State *L = e->L;
    const enc_path *p, *q, *first = NULL;

    /* Report the shallowest table that repeats one of its ancestors. */
    for (q = path; q != NULL; q = q->up)
        if (lua_rawequal(L, q->table_idx, idx)) {
            first = path;
            break;
        }
    for (p = path; p != NULL; p = p->up)
        for (q = p->up; q != NULL; q = q->up)
            if (lua_rawequal(L, q->table_idx, p->table_idx)) {
                first = p->up;
                break;
            }
    if (first != NULL)
        return fail(e, first, "cycle detected");
    return fail(e, path, "nesting deeper than %d", e->cfg->max_depth);
}

/* t[1..n] by index: marked arrays, and dense tables lua_next saw out of order. */
static int encode_indexed(encoder *e, int idx, size_t n, enc_path *here)
{
    lua_State *L = e->L;
    strbuf *b = e->out;
    size_t i;

    if (strbuf_putc(b, '[') != 0)
        return out_of_memory(e);
    here->kind = PATH_INDEX;
    for (i = 1; i <= n; i++) {
        if (i > 1 && strbuf_putc(b, ',') != 0)
            return out_of_memory(e);
        lua_rawgeti(L, idx, (lua_Integer)i);
        here->index = i;
        if (encode_value(e, idx + 1, here) != 0)
            return -1;
        lua_settop(L, idx);
    }
    return strbuf_putc(b, ']') != 0 ? out_of_memory(e) : 0;
}

static void json_key_cache_init(json_key_cache *c)
{
    memset(c, 0, sizeof *c);
}

/* The set of a key string's address: its high bits after a multiply mix them. */
static inline size_t key_set(const char *s)
{
    return (size_t)(((uint64_t)(uintptr_t)s * 0x9E3779B97F4A7C15ull) >> 58) &
           (JSON_KEY_SETS - 1);
}

/* Registry keys of the encoder context: addresses, unique per copy of this file. */
static const char context_key = 0, anchors_key = 0;

/*
** Remember the string key at kidx (bytes s[0..n)) if it needs no escaping:
** anchor it in its slot first, so the address stays its own.
*/
static void key_remember(encoder *e, int kidx, const char *s, size_t n)
{
    json_key_cache *c = e->keys;
    size_t set = key_set(s), i = set * JSON_KEY_WAYS;
    json_key_entry *k;

    if (n > JSON_KEY_MAXLEN ||
        json_skip_clean((const unsigned char *)s, (const unsigned char *)s + n) !=
            (const unsigned char *)s + n)
        return;
    {
        size_t w = 0;

        while (w < JSON_KEY_WAYS && c->slot[i + w].str != NULL)
            w++;
        if (w == JSON_KEY_WAYS) {
            /* every way taken: replace them in turn */
            w = c->victim[set];
            c->victim[set] = (unsigned char)((w + 1) % JSON_KEY_WAYS);
        }
        i += w;
    }
    lua_pushlightuserdata(e->L, (void *)&anchors_key);
    lua_rawget(e->L, LUA_REGISTRYINDEX);
    if (lua_type(e->L, -1) != LUA_TTABLE) {
        lua_pop(e->L, 1);
        return;
    }
    /* A preallocated array slot: lua_rawseti neither allocates nor raises. */
    lua_pushvalue(e->L, kidx);
    lua_rawseti(e->L, -2, (lua_Integer)i + 1);
    lua_pop(e->L, 1);
    k = &c->slot[i];
    k->str = s;
    k->len = (unsigned char)(n + 4);
    memcpy(k->text, ",\"", 2);
    memcpy(k->text + 2, s, n);
    memcpy(k->text + 2 + n, "\":", 2);
}

/* A key that is not in the cache: ',' (unless first), the key, ':'. */
static NOINLINE int put_key_slow(encoder *e, int kidx, int first, const enc_path *here)
{
    lua_State *L = e->L;
    strbuf *b = e->out;
    char keybuf[JSON_NUMBER_MAXLEN];
    const char *key;
    size_t keylen;
    int kt = lua_type(L, kidx);

    if (kt == LUA_TSTRING) {
        key = lua_tolstring(L, kidx, &keylen);
    } else if (kt == LUA_TNUMBER) {
        if (number_key(L, kidx, keybuf, &keylen) != 0)
            return fail(e, here->up, "cannot encode table key inf");
        key = keybuf;
    } else {
        return fail(e, here->up, "cannot encode table key of type %s", lua_typename(L, kt));
    }
    if (!first && strbuf_putc(b, ',') != 0)
        return out_of_memory(e);
    if (encode_string(e, key, keylen, here, "key") != 0)
        return -1;
    if (strbuf_putc(b, ':') != 0)
        return out_of_memory(e);
    if (kt == LUA_TSTRING && e->keys != NULL)
        key_remember(e, kidx, key, keylen);
    return 0;
}

/*
** The members of an object, the first key and value already pushed by
** lua_next (at idx + 1 and idx + 2). A cached key is one fixed-size copy of
** its ',"key":' text, starting past the comma for the first member.
*/
static int encode_members(encoder *e, int idx, enc_path *here)
{
    lua_State *L = e->L;
    strbuf *b = e->out;
    json_key_cache *c = e->keys;
    int first = 1;

    if (strbuf_putc(b, '{') != 0)
        return out_of_memory(e);
    here->kind = PATH_KEY;
    do {
        const char *s;
        json_key_entry *k;
        if (c != NULL && lua_type(L, idx + 1) == LUA_TSTRING) {
            s = lua_tolstring(L, idx + 1, NULL);
            json_key_entry *end;

            k = &c->slot[key_set(s) * JSON_KEY_WAYS];
            end = k + JSON_KEY_WAYS;
            while (k->str != s && ++k < end)
                ;
            if (k < end) {
                if (strbuf_reserve(b, JSON_KEY_COPY) != 0)
                    return out_of_memory(e);
                memcpy(b->data + b->len, k->text + first, JSON_KEY_COPY);
                b->len += (size_t)k->len - (size_t)first;
                goto value;
            }
        }
        if (put_key_slow(e, idx + 1, first, here) != 0)
            return -1;
    value:
        if (encode_value(e, idx + 2, here) != 0)
            return -1;
        lua_pop(L, 1);  /* the value: encoding leaves the stack as it found it */
        first = 0;
    } while (lua_next(L, idx));
    return strbuf_putc(b, '}') != 0 ? out_of_memory(e) : 0;
}

/*
** An unmarked table. lua_next walks the array part first and in order, so
** a dense array is written in one pass as long as its keys arrive as 1, 2,
** 3 ...; anything else rewinds the output and decides with a full scan.
*/
static NOINLINE int encode_table(encoder *e, int idx, const enc_path *path)
{
    lua_State *L = e->L;
    strbuf *b = e->out;
    enc_path here;
    size_t save = b->len, n;
    lua_Integer i;
    int marked = 0;

    if (e->depth >= e->cfg->max_depth)
        return depth_error(e, idx, path);
    /* A level holds at most 2 slots (key, value) plus 2 in passing; the
       first 8 levels' are made sure of on entry. */
    if ((e->depth & 7) == 0 && e->depth > 0 && !lua_checkstack(L, STACK_PER_8_LEVELS))
        return fail(e, path, "nesting too deep for the Lua stack");
    if (lua_getmetatable(L, idx)) {
        marked = lua_topointer(L, -1) == e->array_mt;
        lua_settop(L, idx);
    }
    e->depth++;
    here.up = path;
    here.table_idx = idx;
    here.kind = PATH_NONE;
    if (marked) {
        if (encode_indexed(e, idx, espipe_rawlen(L, idx), &here) != 0)
            return -1;
        e->depth--;
        return 0;
    }

    lua_pushnil(L);
    if (!lua_next(L, idx)) {
        e->depth--;
        return strbuf_append(b, "{}", 2) != 0 ? out_of_memory(e) : 0;
    }
    if (key_is(L, 1)) {
        if (strbuf_putc(b, '[') != 0)
            return out_of_memory(e);
        here.kind = PATH_INDEX;
        for (i = 1;; i++) {
            here.index = (size_t)i;
            if (encode_value(e, idx + 2, &here) != 0)
                return -1;
            lua_pop(L, 1);
            if (!lua_next(L, idx)) {
                e->depth--;
                return strbuf_putc(b, ']') != 0 ? out_of_memory(e) : 0;
            }
            if (!key_is(L, i + 1))
                break;
            if (strbuf_putc(b, ',') != 0)
                return out_of_memory(e);
        }
        /* Not keys 1, 2, 3 ... in order: start again knowing all. */
        lua_settop(L, idx);
        b->len = save;
        n = espipe_rawlen(L, idx);
        if (n > 0 && is_dense(L, idx, n)) {
            if (encode_indexed(e, idx, n, &here) != 0)
                return -1;
            e->depth--;
            return 0;
        }
        lua_pushnil(L);
        lua_next(L, idx);
    }

    if (encode_members(e, idx, &here) != 0)
        return -1;
    e->depth--;
    return 0;
}

/* Booleans, nil, null and the types JSON cannot hold: rare in documents. */
static NOINLINE int encode_other(encoder *e, int idx, int t, const enc_path *path)
{
    lua_State *L = e->L;

    switch (t) {
    case LUA_TBOOLEAN:
        if (lua_toboolean(L, idx))
            return strbuf_append(e->out, "true", 4) != 0 ? out_of_memory(e) : 0;
        return strbuf_append(e->out, "false", 5) != 0 ? out_of_memory(e) : 0;
    case LUA_TNIL:
        return strbuf_append(e->out, "null", 4) != 0 ? out_of_memory(e) : 0;
    case LUA_TLIGHTUSERDATA:
        if (lua_touserdata(L, idx) == NULL)
            return strbuf_append(e->out, "null", 4) != 0 ? out_of_memory(e) : 0;
        return fail(e, path, "cannot encode lightuserdata other than null");
    default:
        return fail(e, path, "cannot encode %s", lua_typename(L, t));
    }
}

/*
** Tests in the order of how common each type is in documents. Inlined into
** the loops over members and elements: only tables cost a call.
*/
static ALWAYS_INLINE int encode_value(encoder *e, int idx, const enc_path *path)
{
    lua_State *L = e->L;
    int t = lua_type(L, idx);

    if (t == LUA_TSTRING) {
        size_t len;
        const char *s = lua_tolstring(L, idx, &len);
        return encode_string(e, s, len, path, "string");
    }
    if (t == LUA_TTABLE)
        return encode_table(e, idx, path);
    if (t == LUA_TNUMBER)
        return encode_number(e, idx, path);
    return encode_other(e, idx, t, path);
}

int json_encode_with(lua_State *L, int idx, json_key_cache *keys, strbuf *out,
                     const json_encode_cfg *cfg, char *err)
{
    encoder e;
    json_encode_cfg capped;
    int top = lua_gettop(L), r;

    idx = espipe_absindex(L, idx);
    if (!lua_checkstack(L, 1 + STACK_PER_8_LEVELS)) {
        snprintf(err, ESPIPE_JSON_ERRLEN, "no Lua stack space to encode JSON");
        return -1;
    }
    if (keys != NULL) {
        e.array_mt = keys->array_mt;
    } else {
        lua_getfield(L, LUA_REGISTRYINDEX, ESPIPE_JSON_ARRAY_MT);
        e.array_mt = lua_topointer(L, -1);
        lua_pop(L, 1);
    }
    capped = *cfg;
    if (capped.max_depth > JSON_DEPTH_CEILING)
        capped.max_depth = JSON_DEPTH_CEILING;
    e.L = L;
    e.out = out;
    e.cfg = &capped;
    e.err = err;
    e.keys = keys;
    e.depth = 0;
    err[0] = '\0';
    /* encode_table expects its table on top of the stack. */
    if (idx != top) {
        lua_pushvalue(L, idx);
        idx = top + 1;
    }
    r = encode_value(&e, idx, NULL);
    /* Success leaves the stack as it found it, but for the copy above. */
    if (r != 0 || idx != top)
        lua_settop(L, top);
    return r;
}

json_key_cache *json_context(lua_State *L)
{
    json_key_cache *c;

    lua_pushlightuserdata(L, (void *)&context_key);
    lua_rawget(L, LUA_REGISTRYINDEX);
    c = (json_key_cache *)lua_touserdata(L, -1);
    lua_pop(L, 1);
    if (c != NULL)
        return c;
    c = (json_key_cache *)espipe_newuserdata(L, sizeof *c);
    json_key_cache_init(c);
    luaL_newmetatable(L, ESPIPE_JSON_ARRAY_MT);
    c->array_mt = lua_topointer(L, -1);
    /* The anchors, every slot preallocated in the array part; the metatable last. */
    lua_createtable(L, JSON_KEY_SLOTS + 1, 0);
    lua_insert(L, -2);
    lua_rawseti(L, -2, JSON_KEY_SLOTS + 1);
    lua_pushlightuserdata(L, (void *)&anchors_key);
    lua_insert(L, -2);
    lua_rawset(L, LUA_REGISTRYINDEX);
    lua_pushlightuserdata(L, (void *)&context_key);
    lua_insert(L, -2);
    lua_rawset(L, LUA_REGISTRYINDEX);
    return c;
}

int json_encode_value(lua_State *L, int idx, strbuf *out,
                      const json_encode_cfg *cfg, char *err)
{
    json_key_cache *keys;

    /* No context: a state without espipe.core, using another module's copy of the codec. */
    lua_pushlightuserdata(L, (void *)&context_key);
    lua_rawget(L, LUA_REGISTRYINDEX);
    keys = (json_key_cache *)lua_touserdata(L, -1);
    lua_pop(L, 1);
    return json_encode_with(L, idx, keys, out, cfg, err);
}
