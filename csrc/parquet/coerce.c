#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "coerce.h"
#include "base/compat.h"
#include "datetime.h"
#include "json/number.h"
#include "base/utf8.h"

int pq_utf8_valid(const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0, len, bad;
    while (i < n) {
        /* ASCII runs eight bytes at a time */
        while (n - i >= 8) {
            uint64_t word;
            memcpy(&word, s + i, 8);
            if (word & 0x8080808080808080u)
                break;
            i += 8;
        }
        if (i == n)
            break;
        if (s[i] < 0x80) {
            i++;
            continue;
        }
        len = utf8_sequence(s + i, n - i, &bad);
        if (len == 0)
            return 0;
        i += len;
    }
    return 1;
}

int pq_put_invalid(pq_writer *w, pq_column *c)
{
    c->invalid++;
    return pq_put_null(w, c);
}

int pq_put_coerced_text(pq_writer *w, pq_column *c, const char *s, size_t n)
{
    c->coerced++;
    return pq_put_bytes(w, c, s, n);
}

/* A plain decimal or decimal-with-fraction/exponent number, nothing else strtod takes. */
static int parse_number_text(const char *s, size_t n, double *out)
{
    char buf[65], *end;
    size_t i;
    if (n == 0 || n > 64)
        return -1;
    for (i = 0; i < n; i++) {
        char ch = s[i];
        if (!((ch >= '0' && ch <= '9') || ch == '.' || ch == '-' || ch == '+' || ch == 'e' || ch == 'E'))
            return -1;
    }
    memcpy(buf, s, n);   /* strtod needs a terminator the caller's bytes may lack */
    buf[n] = '\0';
    *out = strtod(buf, &end);
    return (end == buf + n && isfinite(*out)) ? 0 : -1;
}

/* 2^63 as a double: the first value past the int64 range. */
#define TWO63 9223372036854775808.0

static int put_int64_from_double(pq_writer *w, pq_column *c, double d, int counted)
{
    int64_t v;
    double t;
    if (!isfinite(d) || d < -TWO63 || d >= TWO63)
        return pq_put_invalid(w, c);
    /* ES truncates a long's fraction; a date's epoch_millis counts back in time */
    v = (int64_t)d;   /* in range, so this truncates toward zero */
    t = (double)v;
    if (c->kind == PQ_TIMESTAMP && t > d)
        v--;
    if (counted || t != d)
        c->coerced++;
    return pq_put_int64(w, c, v);
}

/* 2^64 as a double: past the unsigned_long range. */
#define TWO64 18446744073709551616.0

static int put_decimal(pq_writer *w, pq_column *c, uint64_t v)
{
    unsigned char b[PQ_DECIMAL_BYTES];
    int i;
    b[0] = 0;   /* the sign byte: 20 digits need 65 bits of two's complement */
    for (i = 8; i >= 1; i--) {
        b[i] = (unsigned char)v;
        v >>= 8;
    }
    return pq_put_bytes(w, c, (const char *)b, sizeof b);
}

/* An unsigned_long from a double: truncated (*truncated set when it had a fraction). 0 or -1. */
static int decimal_from_double(double d, uint64_t *v, int *truncated)
{
    double t;
    if (!(d >= 0) || d >= TWO64)
        return -1;
    t = floor(d);
    *truncated = t != d;
    *v = (uint64_t)t;
    return 0;
}

/* Digits exactly (to 2^64-1), else any number text through a double. 0 or -1. */
static int decimal_from_text(const char *s, size_t n, uint64_t *v, int *truncated)
{
    size_t i;
    double d;
    *v = 0;
    *truncated = 0;
    for (i = 0; i < n && s[i] >= '0' && s[i] <= '9'; i++) {
        unsigned digit = (unsigned)(s[i] - '0');
        if (*v > (UINT64_MAX - digit) / 10)
            return -1;
        *v = *v * 10 + digit;
    }
    if (i == n && n > 0)
        return 0;
    return parse_number_text(s, n, &d) == 0 ? decimal_from_double(d, v, truncated) : -1;
}

int pq_put_decimal_text(pq_writer *w, pq_column *c, const char *s, size_t n)
{
    uint64_t v;
    int truncated;
    if (decimal_from_text(s, n, &v, &truncated) != 0)
        return pq_put_invalid(w, c);
    if (truncated)
        c->coerced++;
    return put_decimal(w, c, v);
}

static int put_string_value(pq_writer *w, pq_column *c, const char *s, size_t n, int utf8_checked)
{
    int64_t v;
    double d;

    switch (c->kind) {
    case PQ_STRING:
        return utf8_checked || pq_utf8_valid(s, n) ? pq_put_bytes(w, c, s, n) : pq_put_invalid(w, c);
    case PQ_TIMESTAMP:
        return parse_es_date(s, n, &v) == 0 ? pq_put_int64(w, c, v) : pq_put_invalid(w, c);
    case PQ_TIMESTAMP_NS:
        return parse_es_date_nanos(s, n, &v) == 0 ? pq_put_int64(w, c, v) : pq_put_invalid(w, c);
    case PQ_DECIMAL: {
        uint64_t u;
        int truncated;
        if (decimal_from_text(s, n, &u, &truncated) != 0)
            return pq_put_invalid(w, c);
        c->coerced++;   /* a number in a string */
        return put_decimal(w, c, u);
    }
    case PQ_INT64:
        if (parse_epoch_millis(s, n, &v) == 0) {
            c->coerced++;
            return pq_put_int64(w, c, v);
        }
        if (parse_number_text(s, n, &d) == 0)
            return put_int64_from_double(w, c, d, 1);
        return pq_put_invalid(w, c);
    case PQ_DOUBLE:
        if (parse_number_text(s, n, &d) == 0) {
            c->coerced++;
            return pq_put_double(w, c, d);
        }
        return pq_put_invalid(w, c);
    case PQ_BOOLEAN:
        if (n == 4 && memcmp(s, "true", 4) == 0) {
            c->coerced++;
            return pq_put_bool(w, c, 1);
        }
        if ((n == 5 && memcmp(s, "false", 5) == 0) || n == 0) {
            c->coerced++;
            return pq_put_bool(w, c, 0);
        }
        return pq_put_invalid(w, c);
    default:
        return pq_put_invalid(w, c);
    }
}

int pq_put_string_value(pq_writer *w, pq_column *c, const char *s, size_t n)
{
    return put_string_value(w, c, s, n, 0);
}

int pq_put_utf8_value(pq_writer *w, pq_column *c, const char *s, size_t n)
{
    return put_string_value(w, c, s, n, 1);
}

int pq_put_bool_value(pq_writer *w, pq_column *c, int b)
{
    if (c->kind == PQ_BOOLEAN)
        return pq_put_bool(w, c, b);
    if (c->kind == PQ_STRING)
        return b ? pq_put_coerced_text(w, c, "true", 4) : pq_put_coerced_text(w, c, "false", 5);
    return pq_put_invalid(w, c);
}

/* The number's text as espipe.json writes it: what ES indexes for a keyword. */
static size_t number_text(char *buf, int is_int, int64_t i, double x)
{
    if (is_int)
        return json_fmt_integer(buf, (long long)i);
#if ESPIPE_HAS_INTEGERS
    return json_fmt_double(buf, x, 1);
#else
    /* Integral doubles within 2^53 are the integers of 5.1/5.2/LuaJIT. */
    if (fabs(x) <= 9007199254740992.0 && (double)(long long)x == x && !(x == 0 && signbit(x)))
        return json_fmt_integer(buf, (long long)x);
    return json_fmt_double(buf, x, 0);
#endif
}

int pq_put_number_value(pq_writer *w, pq_column *c, int is_int, int64_t i, double d)
{
    char buf[JSON_NUMBER_MAXLEN];

    switch (c->kind) {
    case PQ_STRING:
        if (!is_int && !isfinite(d))
            return pq_put_invalid(w, c);
        return pq_put_coerced_text(w, c, buf, number_text(buf, is_int, i, d));
    case PQ_INT64:
    case PQ_TIMESTAMP:
        return is_int ? pq_put_int64(w, c, i) : put_int64_from_double(w, c, d, 0);
    case PQ_TIMESTAMP_NS: {
        int64_t ns;
        if (is_int)
            return millis_to_nanos(i, &ns) == 0 ? pq_put_int64(w, c, ns) : pq_put_invalid(w, c);
        if (!isfinite(d) || d < -TWO63 || d >= TWO63)
            return pq_put_invalid(w, c);
        {
            /* whole milliseconds exactly (doubles hold them to 2^53), then the fraction */
            double whole = floor(d);
            int64_t frac = (int64_t)floor((d - whole) * 1e6);
            if (millis_to_nanos((int64_t)whole, &ns) != 0 || ns > INT64_MAX - frac)
                return pq_put_invalid(w, c);
            return pq_put_int64(w, c, ns + frac);
        }
    }
    case PQ_DECIMAL:
        if (is_int)
            return i >= 0 ? put_decimal(w, c, (uint64_t)i) : pq_put_invalid(w, c);
        {
            uint64_t u;
            int truncated;
            if (decimal_from_double(d, &u, &truncated) != 0)
                return pq_put_invalid(w, c);
            if (truncated)
                c->coerced++;
            return put_decimal(w, c, u);
        }
    case PQ_DOUBLE:
        if (is_int)
            d = (double)i;
        return isfinite(d) ? pq_put_double(w, c, d) : pq_put_invalid(w, c);
    default:
        return pq_put_invalid(w, c);
    }
}
