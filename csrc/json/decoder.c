/*
** JSON decoder: RFC 8259 text -> Lua values. Recursive descent with a depth
** limit (the C stack never grows past it), strict grammar, exact integers,
** arrays marked with the array metatable and null as lightuserdata NULL.
** It reports errors by return value; only Lua memory errors can raise.
*/
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "json.h"
#include "reader.h"
#include "number.h"
#include "base/utf8.h"

#if defined(__GNUC__)
#define NOINLINE __attribute__((noinline))
#else
#define NOINLINE
#endif

void json_decode_cfg_default(json_decode_cfg *cfg)
{
    cfg->max_depth = ESPIPE_JSON_DEFAULT_DEPTH;
    cfg->utf8 = JSON_UTF8_ERROR;
    cfg->big = JSON_BIG_FLOAT;
}


/* err_at is the 0-based offset of `at`; the binding reports it 1-based. */
static int fail_at(json_decoder *d, const unsigned char *at, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(d->err, ESPIPE_JSON_ERRLEN, fmt, ap);
    va_end(ap);
    d->err_at = (size_t)(at - d->start);
    return -1;
}

/* "expected X", saying what was found instead. */
int json_dec_expected(json_decoder *d, const char *what)
{
    const unsigned char *at = d->p;
    if (at >= d->end)
        return fail_at(d, at, "expected %s, found end of input", what);
    if (*at >= 0x21 && *at < 0x7f)
        return fail_at(d, at, "expected %s, found '%c'", what, *at);
    return fail_at(d, at, "expected %s, found byte 0x%02x", what, *at);
}

void json_dec_space(json_decoder *d)
{
    const unsigned char *p = d->p, *end = d->end;
    while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
        p++;
    d->p = p;
}

int json_dec_closes(json_decoder *d, unsigned char close)
{
    json_dec_space(d);
    if (d->p < d->end && *d->p == close) {
        d->p++;
        d->depth--;
        return 1;
    }
    return 0;
}

int json_dec_colon(json_decoder *d)
{
    json_dec_space(d);
    if (d->p >= d->end || *d->p != ':')
        return json_dec_expected(d, "':'");
    d->p++;
    return 0;
}

int json_dec_next(json_decoder *d, unsigned char close)
{
    json_dec_space(d);
    if (d->p < d->end && *d->p == ',') {
        d->p++;
        json_dec_space(d);
        return 1;
    }
    if (d->p < d->end && *d->p == close) {
        d->p++;
        d->depth--;
        return 0;
    }
    return json_dec_expected(d, close == '}' ? "',' or '}'" : "',' or ']'");
}

static int hex4(const unsigned char *p, unsigned long *out)
{
    unsigned long v = 0;
    int i;
    for (i = 0; i < 4; i++) {
        unsigned c = p[i];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= c - '0';
        else if (c >= 'a' && c <= 'f')
            v |= c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            v |= c - 'A' + 10;
        else
            return -1;
    }
    *out = v;
    return 0;
}

/*
** One \uXXXX escape (and its low surrogate if it is a high one) at p, which
** points at the backslash. Sets *cp and returns the bytes consumed, or 0 for
** a malformed escape, or -(consumed) for a lone surrogate.
*/
static long unicode_escape(const unsigned char *p, const unsigned char *end,
                           unsigned long *cp)
{
    unsigned long hi, lo;

    if (end - p < 6 || hex4(p + 2, &hi) != 0)
        return 0;
    if (hi >= 0xDC00 && hi <= 0xDFFF)
        return -6;
    if (hi < 0xD800 || hi > 0xDBFF) {
        *cp = hi;
        return 6;
    }
    if (end - p < 12 || p[6] != '\\' || p[7] != 'u' || hex4(p + 8, &lo) != 0 ||
        lo < 0xDC00 || lo > 0xDFFF)
        return -6;
    *cp = 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
    return 12;
}

/*
** A string with escapes (or bytes to replace), from the opening quote q
** with p at the first special byte: built in a luaL_Buffer, which the Lua
** stack owns. On failure the buffer is closed and dropped before returning.
*/
static NOINLINE int string_slow(json_decoder *d, const unsigned char *q, const unsigned char *p)
{
    lua_State *L = d->L;
    const unsigned char *end = d->end, *run;
    luaL_Buffer b;
    size_t n, bad;
    unsigned long cp;
    long used;
    char utf[4];
    const char *msg = NULL;
    const unsigned char *at = NULL;

    luaL_buffinit(L, &b);
    luaL_addlstring(&b, (const char *)q + 1, (size_t)(p - q - 1));
    for (;;) {
        run = p;
        for (;;) {
            while (p < end && json_char_class[*p] == JSON_CH_PLAIN)
                p++;
            if (p < end && json_char_class[*p] == JSON_CH_UTF8 &&
                (n = utf8_sequence(p, (size_t)(end - p), &bad)) != 0) {
                p += n;
                continue;
            }
            break;
        }
        luaL_addlstring(&b, (const char *)run, (size_t)(p - run));
        if (p >= end) {
            msg = "unterminated string";
            at = q;
            break;
        }
        if (*p == '"') {
            p++;
            break;
        }
        if (*p == '\\') {
            if (p + 1 >= end) {
                msg = "unterminated string";
                at = q;
                break;
            }
            switch (p[1]) {
            case '"': luaL_addchar(&b, '"'); p += 2; continue;
            case '\\': luaL_addchar(&b, '\\'); p += 2; continue;
            case '/': luaL_addchar(&b, '/'); p += 2; continue;
            case 'b': luaL_addchar(&b, '\b'); p += 2; continue;
            case 'f': luaL_addchar(&b, '\f'); p += 2; continue;
            case 'n': luaL_addchar(&b, '\n'); p += 2; continue;
            case 'r': luaL_addchar(&b, '\r'); p += 2; continue;
            case 't': luaL_addchar(&b, '\t'); p += 2; continue;
            case 'u':
                used = unicode_escape(p, end, &cp);
                if (used > 0) {
                    luaL_addlstring(&b, utf, utf8_put(utf, cp));
                    p += used;
                    continue;
                }
                if (used < 0 && d->cfg->utf8 == JSON_UTF8_REPLACE) {
                    luaL_addlstring(&b, UTF8_REPLACEMENT, 3);
                    p += -used;
                    continue;
                }
                msg = used < 0 ? "lone UTF-16 surrogate in \\u escape"
                               : "expected 4 hex digits after \\u";
                at = p;
                break;
            default:
                msg = "invalid escape in string";
                at = p;
                break;
            }
            break;
        }
        if (*p < 0x20) {
            msg = "control character in string (must be escaped)";
            at = p;
            break;
        }
        /* An invalid UTF-8 sequence. */
        if (d->cfg->utf8 != JSON_UTF8_REPLACE) {
            msg = "invalid UTF-8 in string";
            at = p;
            break;
        }
        luaL_addlstring(&b, UTF8_REPLACEMENT, 3);
        p += bad;
    }
    luaL_pushresult(&b);
    if (msg != NULL) {
        lua_pop(L, 1);
        return fail_at(d, at, "%s", msg);
    }
    d->p = p;
    return 0;
}

/* The string at d->p (an opening quote), pushed. */
int json_dec_string(json_decoder *d)
{
    const unsigned char *q = d->p, *p = q + 1, *end = d->end;

    p = json_skip_clean(p, end);
    if (p < end && *p == '"') {
        lua_pushlstring(d->L, (const char *)q + 1, (size_t)(p - q - 1));
        d->p = p + 1;
        return 0;
    }
    return string_slow(d, q, p);
}

#define IS_DIGIT(c) ((unsigned)((c) - '0') < 10u)

static int big_integer(json_decoder *d, const unsigned char *s, const unsigned char *e)
{
    double x;

    switch (d->cfg->big) {
    case JSON_BIG_STRING:
        lua_pushlstring(d->L, (const char *)s, (size_t)(e - s));
        return 0;
    case JSON_BIG_ERROR:
        return fail_at(d, s, "integer out of range");
    default:
        if (json_strtod((const char *)s, (size_t)(e - s), &x) != 0)
            return fail_at(d, s, "out of memory reading a number");
        if (x - x != 0)
            return fail_at(d, s, "number out of range");
        lua_pushnumber(d->L, (lua_Number)x);
        return 0;
    }
}

/*
** The number at d->p, classified the way the decoder pushes it: an exact
** integer (lua_Integer on 5.3+, a double within 2^53 elsewhere), a double,
** or an integer too big for either (its text, for the caller's big mode).
*/
int json_dec_number(json_decoder *d, json_num *out)
{
    const unsigned char *s = d->p, *p = s, *end = d->end;
    uint64_t m = 0;
    int neg = 0, digits = 0, frac_digits = 0, is_float = 0;
    long exp10 = 0;
    double x;

    if (*p == '-') {
        neg = 1;
        p++;
    }
    if (p >= end || !IS_DIGIT(*p)) {
        d->p = p;
        return json_dec_expected(d, "a digit");
    }
    if (*p == '0') {
        p++;
        if (p < end && IS_DIGIT(*p))
            return fail_at(d, s, "leading zero in number");
    } else {
        while (p < end && IS_DIGIT(*p)) {
            if (digits < 19)
                m = m * 10 + (uint64_t)(*p - '0');
            digits++;
            p++;
        }
    }
    if (p < end && *p == '.') {
        is_float = 1;
        p++;
        if (p >= end || !IS_DIGIT(*p)) {
            d->p = p;
            return json_dec_expected(d, "a digit after '.'");
        }
        while (p < end && IS_DIGIT(*p)) {
            if (m != 0 || *p != '0')
                digits++;
            if (digits <= 19)
                m = m * 10 + (uint64_t)(*p - '0');
            frac_digits++;
            p++;
        }
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        int eneg = 0;
        long e = 0;
        is_float = 1;
        p++;
        if (p < end && (*p == '+' || *p == '-'))
            eneg = *p++ == '-';
        if (p >= end || !IS_DIGIT(*p)) {
            d->p = p;
            return json_dec_expected(d, "a digit in the exponent");
        }
        while (p < end && IS_DIGIT(*p)) {
            if (e < 100000)
                e = e * 10 + (*p - '0');
            p++;
        }
        exp10 = eneg ? -e : e;
    }
    d->p = p;
    out->start = s;
    out->end = p;

    if (!is_float) {
        if (digits <= 19) {
#if ESPIPE_HAS_INTEGERS
            if (m <= (uint64_t)INT64_MAX) {
                out->kind = JSON_NUM_INTEGER;
                out->i = neg ? -(int64_t)m : (int64_t)m;
                return 0;
            }
            if (neg && m == (uint64_t)INT64_MAX + 1) {
                out->kind = JSON_NUM_INTEGER;
                out->i = INT64_MIN;
                return 0;
            }
#else
            if (m <= ((uint64_t)1 << 53)) {
                x = (double)m;
                out->kind = JSON_NUM_DOUBLE;
                out->d = neg ? -x : x;
                return 0;
            }
#endif
        }
        out->kind = JSON_NUM_BIG;
        return 0;
    }

    /* Exact when both the digits and the power of ten are exact doubles. */
    exp10 -= frac_digits;
    if (digits <= 19 && m <= ((uint64_t)1 << 53) && exp10 >= -22 && exp10 <= 22) {
        x = (double)m;
        x = exp10 < 0 ? x / json_pow10[-exp10] : x * json_pow10[exp10];
    } else if (json_strtod((const char *)s, (size_t)(p - s), &x) != 0) {
        return fail_at(d, s, "out of memory reading a number");
    } else {
        neg = 0;    /* strtod read the sign */
    }
    if (x - x != 0)
        return fail_at(d, s, "number out of range");
    out->kind = JSON_NUM_DOUBLE;
    out->d = neg ? -x : x;
    return 0;
}

static int parse_number(json_decoder *d)
{
    json_num n;

    if (json_dec_number(d, &n) != 0)
        return -1;
    switch (n.kind) {
#if ESPIPE_HAS_INTEGERS
    case JSON_NUM_INTEGER:
        lua_pushinteger(d->L, (lua_Integer)n.i);
        return 0;
#endif
    case JSON_NUM_DOUBLE:
        lua_pushnumber(d->L, (lua_Number)n.d);
        return 0;
    default:
        return big_integer(d, n.start, n.end);
    }
}


int json_dec_enter(json_decoder *d)
{
    if (d->depth >= d->cfg->max_depth)
        return fail_at(d, d->p, "nesting deeper than %d", d->cfg->max_depth);
    if (d->L != NULL && !lua_checkstack(d->L, 4))
        return fail_at(d, d->p, "nesting too deep for the Lua stack");
    d->depth++;
    d->p++;
    return 0;
}

/*
** search/search_response.c's read_object is this loop with the member's
** value read by level; kept apart so decode's hot loop calls no hook.
*/
static int parse_object(json_decoder *d)
{
    lua_State *L = d->L;

    if (json_dec_enter(d) != 0)
        return -1;
    lua_createtable(L, 0, 4);
    if (json_dec_closes(d, '}'))
        return 0;
    for (;;) {
        if (d->p >= d->end || *d->p != '"')
            return json_dec_expected(d, "a string key");
        if (json_dec_string(d) != 0)
            return -1;
        if (json_dec_colon(d) != 0)
            return -1;
        if (json_dec_value(d) != 0)
            return -1;
        lua_rawset(L, -3);
        const int more = json_dec_next(d, '}');
        if (more <= 0)
            return more;
    }
}

static int parse_array(json_decoder *d)
{
    lua_State *L = d->L;
    lua_Integer i = 0;

    if (json_dec_enter(d) != 0)
        return -1;
    lua_createtable(L, 4, 0);
    lua_pushvalue(L, d->array_mt);
    lua_setmetatable(L, -2);
    if (json_dec_closes(d, ']'))
        return 0;
    for (;;) {
        if (json_dec_value(d) != 0)
            return -1;
        lua_rawseti(L, -2, ++i);
        const int more = json_dec_next(d, ']');
        if (more <= 0)
            return more;
    }
}

static int literal(json_decoder *d, const char *word, size_t n)
{
    if ((size_t)(d->end - d->p) < n || memcmp(d->p, word, n) != 0)
        return fail_at(d, d->p, "invalid literal, expected '%s'", word);
    d->p += n;
    return 0;
}

int json_dec_value(json_decoder *d)
{
    json_dec_space(d);
    if (d->p >= d->end)
        return json_dec_expected(d, "a value");
    switch (*d->p) {
    case '"':
        return json_dec_string(d);
    case '{':
        return parse_object(d);
    case '[':
        return parse_array(d);
    case 't':
        if (literal(d, "true", 4) != 0)
            return -1;
        lua_pushboolean(d->L, 1);
        return 0;
    case 'f':
        if (literal(d, "false", 5) != 0)
            return -1;
        lua_pushboolean(d->L, 0);
        return 0;
    case 'n':
        if (literal(d, "null", 4) != 0)
            return -1;
        lua_pushlightuserdata(d->L, NULL);
        return 0;
    case '-': case '0': case '1': case '2': case '3': case '4':
    case '5': case '6': case '7': case '8': case '9':
        return parse_number(d);
    default:
        return json_dec_expected(d, "a value");
    }
}

/*
** Checking without building: the same grammar, escapes and UTF-8 rules as
** the parsers above, for spans a caller keeps as text (raw _source).
*/
/* json_dec_unescape below reads by the same rules; this one copies nothing. */
static int skip_string(json_decoder *d)
{
    const unsigned char *q = d->p, *p = q + 1, *end = d->end;
    unsigned long cp;
    size_t n, bad;
    long used;

    for (;;) {
        p = json_skip_plain(p, end);
        if (p >= end)
            return fail_at(d, q, "unterminated string");
        if (*p == '"') {
            d->p = p + 1;
            return 0;
        }
        if (*p == '\\') {
            if (p + 1 >= end)
                return fail_at(d, q, "unterminated string");
            switch (p[1]) {
            case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't':
                p += 2;
                continue;
            case 'u':
                used = unicode_escape(p, end, &cp);
                if (used > 0 || (used < 0 && d->cfg->utf8 == JSON_UTF8_REPLACE)) {
                    p += used > 0 ? used : -used;
                    continue;
                }
                return fail_at(d, p, "%s", used < 0 ? "lone UTF-16 surrogate in \\u escape"
                                                    : "expected 4 hex digits after \\u");
            default:
                return fail_at(d, p, "invalid escape in string");
            }
        }
        if (*p < 0x20)
            return fail_at(d, p, "control character in string (must be escaped)");
        if ((n = utf8_sequence(p, (size_t)(end - p), &bad)) == 0)
            return fail_at(d, p, "invalid UTF-8 in string");
        p += n;
    }
}

/*
** The string at d->p with its escapes resolved, for readers that keep no
** Lua values: the same rules as string_slow, appending to a strbuf.
** skip_string above walks the same escapes copying nothing; kept apart so
** raw _source checking pays no append per run.
*/
int json_dec_unescape(json_decoder *d, strbuf *out)
{
    const unsigned char *q = d->p, *p = q + 1, *end = d->end, *run;
    unsigned long cp;
    size_t bad;
    long used;
    char one, utf[4];

    for (;;) {
        run = p;
        p = json_skip_clean(p, end);
        if (strbuf_append(out, run, (size_t)(p - run)) != 0)
            return fail_at(d, q, "out of memory reading a string");
        if (p >= end)
            return fail_at(d, q, "unterminated string");
        if (*p == '"') {
            d->p = p + 1;
            return 0;
        }
        if (*p == '\\') {
            if (p + 1 >= end)
                return fail_at(d, q, "unterminated string");
            switch (p[1]) {
            case '"': one = '"'; break;
            case '\\': one = '\\'; break;
            case '/': one = '/'; break;
            case 'b': one = '\b'; break;
            case 'f': one = '\f'; break;
            case 'n': one = '\n'; break;
            case 'r': one = '\r'; break;
            case 't': one = '\t'; break;
            case 'u':
                used = unicode_escape(p, end, &cp);
                if (used > 0) {
                    if (strbuf_append(out, utf, utf8_put(utf, cp)) != 0)
                        return fail_at(d, q, "out of memory reading a string");
                    p += used;
                    continue;
                }
                if (used < 0 && d->cfg->utf8 == JSON_UTF8_REPLACE) {
                    if (strbuf_append(out, UTF8_REPLACEMENT, 3) != 0)
                        return fail_at(d, q, "out of memory reading a string");
                    p += -used;
                    continue;
                }
                return fail_at(d, p, "%s", used < 0 ? "lone UTF-16 surrogate in \\u escape"
                                                    : "expected 4 hex digits after \\u");
            default:
                return fail_at(d, p, "invalid escape in string");
            }
            if (strbuf_putc(out, one) != 0)
                return fail_at(d, q, "out of memory reading a string");
            p += 2;
            continue;
        }
        if (*p < 0x20)
            return fail_at(d, p, "control character in string (must be escaped)");
        if (d->cfg->utf8 != JSON_UTF8_REPLACE)
            return fail_at(d, p, "invalid UTF-8 in string");
        if (strbuf_append(out, UTF8_REPLACEMENT, 3) != 0)
            return fail_at(d, q, "out of memory reading a string");
        (void)utf8_sequence(p, (size_t)(end - p), &bad);   /* rare: how much to replace */
        p += bad;
    }
}

static int skip_digits(json_decoder *d, const unsigned char **pp, const char *what)
{
    const unsigned char *p = *pp;
    if (p >= d->end || !IS_DIGIT(*p)) {
        d->p = p;
        return json_dec_expected(d, what);
    }
    while (p < d->end && IS_DIGIT(*p))
        p++;
    *pp = p;
    return 0;
}

static int skip_number(json_decoder *d)
{
    const unsigned char *s = d->p, *p = s, *end = d->end;

    if (*p == '-')
        p++;
    if (p < end && *p == '0') {
        p++;
        if (p < end && IS_DIGIT(*p))
            return fail_at(d, s, "leading zero in number");
    } else if (skip_digits(d, &p, "a digit") != 0) {
        return -1;
    }
    if (p < end && *p == '.') {
        p++;
        if (skip_digits(d, &p, "a digit after '.'") != 0)
            return -1;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < end && (*p == '+' || *p == '-'))
            p++;
        if (skip_digits(d, &p, "a digit in the exponent") != 0)
            return -1;
    }
    d->p = p;
    return 0;
}

static int skip_container(json_decoder *d)
{
    int object = *d->p == '{';
    unsigned char close = object ? '}' : ']';

    if (json_dec_enter(d) != 0)
        return -1;
    if (json_dec_closes(d, close))
        return 0;
    for (;;) {
        if (object) {
            if (d->p >= d->end || *d->p != '"')
                return json_dec_expected(d, "a string key");
            if (skip_string(d) != 0)
                return -1;
            if (json_dec_colon(d) != 0)
                return -1;
        }
        if (json_dec_skip(d) != 0)
            return -1;
        const int more = json_dec_next(d, close);
        if (more <= 0)
            return more;
    }
}

int json_dec_skip(json_decoder *d)
{
    json_dec_space(d);
    if (d->p >= d->end)
        return json_dec_expected(d, "a value");
    switch (*d->p) {
    case '"':
        return skip_string(d);
    case '{': case '[':
        return skip_container(d);
    case 't':
        return literal(d, "true", 4);
    case 'f':
        return literal(d, "false", 5);
    case 'n':
        return literal(d, "null", 4);
    case '-': case '0': case '1': case '2': case '3': case '4':
    case '5': case '6': case '7': case '8': case '9':
        return skip_number(d);
    default:
        return json_dec_expected(d, "a value");
    }
}

int json_decode_push(lua_State *L, const char *text, size_t len,
                     const json_decode_cfg *cfg, char *err, size_t *offset)
{
    json_decoder d;
    json_decode_cfg capped = *cfg;
    int top = lua_gettop(L);

    if (capped.max_depth > JSON_DEPTH_CEILING)
        capped.max_depth = JSON_DEPTH_CEILING;
    if (!lua_checkstack(L, 4)) {
        snprintf(err, ESPIPE_JSON_ERRLEN, "no Lua stack space to decode JSON");
        *offset = 0;
        return -1;
    }
    lua_getfield(L, LUA_REGISTRYINDEX, ESPIPE_JSON_ARRAY_MT);
    d.L = L;
    d.start = d.p = (const unsigned char *)text;
    d.end = d.start + len;
    d.cfg = &capped;
    d.err = err;
    d.err_at = 0;
    d.array_mt = lua_gettop(L);
    d.depth = 0;
    err[0] = '\0';
    if (json_dec_value(&d) == 0) {
        json_dec_space(&d);
        if (d.p == d.end) {
            lua_remove(L, d.array_mt);
            return 0;
        }
        json_dec_expected(&d, "end of input");
    }
    lua_settop(L, top);
    *offset = d.err_at;
    return -1;
}
