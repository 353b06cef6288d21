#include "datetime.h"

static int digits(const char *s, size_t n, size_t at, size_t count, int *out)
{
    int v = 0;
    size_t i;
    if (at + count > n)
        return -1;
    for (i = at; i < at + count; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

static int is_leap(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int month_days(int y, int m)
{
    static const int d[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    return m == 2 && is_leap(y) ? 29 : d[m - 1];
}

/* Days since 1970-01-01 of a proleptic Gregorian date (era arithmetic). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    int64_t era, yoe, doy, doe;
    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = y - era * 400;
    doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* The two digits after the separator sep at s[*i], within lo..hi: 1 with *i
   past them, 0 when s[*i] is not sep, -1 when malformed. */
static int field2(const char *s, size_t n, size_t *i, char sep, int lo, int hi, int *v)
{
    if (*i >= n || s[*i] != sep)
        return 0;
    if (digits(s, n, *i + 1, 2, v) != 0 || *v < lo || *v > hi)
        return -1;
    *i += 3;
    return 1;
}

/* An optional ".123" or ",5" (up to 9 digits) as nanoseconds; 0 or -1. */
static int fraction(const char *s, size_t n, size_t *i, int32_t *frac)
{
    size_t k = 0;
    if (*i >= n || (s[*i] != '.' && s[*i] != ','))
        return 0;
    for ((*i)++; *i < n && s[*i] >= '0' && s[*i] <= '9' && k < 9; (*i)++, k++)
        *frac = *frac * 10 + (s[*i] - '0');
    if (k == 0)
        return -1;
    for (; k < 9; k++)
        *frac *= 10;
    return 0;
}

/* An optional "Z", "+hh", "+hh:mm" or "+hhmm" as minutes east; 0 or -1. */
static int zone(const char *s, size_t n, size_t *i, int64_t *offset_min)
{
    int oh, om = 0, sign;
    if (*i < n && s[*i] == 'Z') {
        (*i)++;
        return 0;
    }
    if (*i >= n || (s[*i] != '+' && s[*i] != '-'))
        return 0;
    sign = s[*i] == '-' ? -1 : 1;
    if (digits(s, n, *i + 1, 2, &oh) != 0 || oh > 18)
        return -1;
    *i += 3;
    if (*i < n && s[*i] == ':') {
        if (field2(s, n, i, ':', 0, 59, &om) < 0)
            return -1;
    } else if (*i + 2 <= n && digits(s, n, *i, 2, &om) == 0) {
        if (om > 59)
            return -1;
        *i += 2;
    }
    *offset_min = sign * (oh * 60 + om);
    return 0;
}

/* The two digits at s[0..1] (not checked): 0..99, or -1 when either is no digit. */
static int two_digits(const char *s)
{
    unsigned a = (unsigned)(s[0] - '0'), b = (unsigned)(s[1] - '0');
    return a <= 9 && b <= 9 ? (int)(a * 10 + b) : -1;
}

/*
** "yyyy-MM-ddTHH:mm:ss" at s (19 bytes or more), the form nearly every
** document holds, read in place into f (year, month, day, hour, minute,
** second) with the ranges of general_fields. 1 when it is that form and
** valid, -1 when it is that form out of range, 0 when it is another form.
*/
static int fixed_fields(const char *s, int *f)
{
    static const int at[5] = { 5, 8, 11, 14, 17 };
    int hi, lo, i;
    if (s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':'
        || (hi = two_digits(s)) < 0 || (lo = two_digits(s + 2)) < 0)
        return 0;
    f[0] = hi * 100 + lo;
    for (i = 0; i < 5; i++)
        if ((f[i + 1] = two_digits(s + at[i])) < 0)
            return 0;
    if (f[1] < 1 || f[1] > 12 || f[2] < 1 || f[2] > month_days(f[0], f[1]) || f[3] > 23
        || f[4] > 59 || f[5] > 59)
        return -1;
    return 1;
}

/* Any other form: the date, then optionally the time, into f; *i past what was read. 0 or -1. */
static int general_fields(const char *s, size_t n, int *f, size_t *i, int32_t *frac,
                          int64_t *offset_min)
{
    int rc;
    *i = 4;
    if (digits(s, n, 0, 4, &f[0]) != 0)
        return -1;
    if ((rc = field2(s, n, i, '-', 1, 12, &f[1])) > 0)
        rc = field2(s, n, i, '-', 1, month_days(f[0], f[1]), &f[2]);
    if (rc < 0)
        return -1;
    if ((rc = field2(s, n, i, 'T', 0, 23, &f[3])) > 0) {
        if ((rc = field2(s, n, i, ':', 0, 59, &f[4])) > 0
            && (rc = field2(s, n, i, ':', 0, 59, &f[5])) > 0)
            rc = fraction(s, n, i, frac);
        if (rc < 0 || zone(s, n, i, offset_min) != 0)
            return -1;
    }
    return rc < 0 ? -1 : 0;
}

/* Seconds since the epoch and the nanoseconds of the fraction (0..999999999). */
static int parse_iso8601(const char *s, size_t n, int64_t *secs, int32_t *nanos)
{
    int f[6] = { 0, 1, 1, 0, 0, 0 }, rc = n >= 19 ? fixed_fields(s, f) : 0;
    int32_t frac = 0;
    int64_t offset_min = 0;
    size_t i = 19;

    if (rc < 0)
        return -1;
    if (rc > 0 ? fraction(s, n, &i, &frac) != 0 || zone(s, n, &i, &offset_min) != 0
               : general_fields(s, n, f, &i, &frac, &offset_min) != 0)
        return -1;
    if (i != n)
        return -1;
    *secs = days_from_civil(f[0], f[1], f[2]) * 86400 + f[3] * 3600 + f[4] * 60 + f[5]
            - offset_min * 60;
    *nanos = frac;
    return 0;
}

int parse_iso8601_ms(const char *s, size_t n, int64_t *ms)
{
    int64_t secs;
    int32_t nanos;
    if (parse_iso8601(s, n, &secs, &nanos) != 0)
        return -1;
    *ms = secs * 1000 + nanos / 1000000;
    return 0;
}

/* About +-292 years around 1970 fit int64 nanoseconds. */
#define NS_SECS_LIMIT 9223372035LL

int parse_iso8601_ns(const char *s, size_t n, int64_t *ns)
{
    int64_t secs;
    int32_t nanos;
    if (parse_iso8601(s, n, &secs, &nanos) != 0 || secs >= NS_SECS_LIMIT || secs <= -NS_SECS_LIMIT)
        return -1;
    *ns = secs * 1000000000 + nanos;
    return 0;
}

int millis_to_nanos(int64_t ms, int64_t *ns)
{
    if (ms > INT64_MAX / 1000000 || ms < INT64_MIN / 1000000)
        return -1;
    *ns = ms * 1000000;
    return 0;
}

int parse_epoch_millis(const char *s, size_t n, int64_t *ms)
{
    uint64_t v = 0, limit;
    size_t i = 0;
    int neg = 0;

    if (n > 0 && (s[0] == '-' || s[0] == '+')) {
        neg = s[0] == '-';
        i = 1;
    }
    if (i == n)
        return -1;
    limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    for (; i < n; i++) {
        unsigned d;
        if (s[i] < '0' || s[i] > '9')
            return -1;
        d = (unsigned)(s[i] - '0');
        if (v > (limit - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    *ms = neg ? (int64_t)(0 - v) : (int64_t)v;
    return 0;
}

int parse_es_date(const char *s, size_t n, int64_t *ms)
{
    if (parse_iso8601_ms(s, n, ms) == 0)
        return 0;
    return parse_epoch_millis(s, n, ms);
}

int parse_es_date_nanos(const char *s, size_t n, int64_t *ns)
{
    int64_t ms;
    if (parse_iso8601_ns(s, n, ns) == 0)
        return 0;
    return parse_epoch_millis(s, n, &ms) == 0 ? millis_to_nanos(ms, ns) : -1;
}
