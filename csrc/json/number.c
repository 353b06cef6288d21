#include <locale.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "number.h"

const double json_pow10[23] = {
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
    1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22
};

static const char digit_pairs[201] =
    "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
    "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
    "8081828384858687888990919293949596979899";

/* Digits of u written backwards ending at end; returns the first digit. */
static char *put_digits(char *end, uint64_t u)
{
    uint32_t w;

    while (u > UINT32_MAX) {
        unsigned r = (unsigned)(u % 100);
        u /= 100;
        end -= 2;
        memcpy(end, digit_pairs + 2 * r, 2);
    }
    /* The rest in 32 bits, where dividing by 100 is cheaper. */
    w = (uint32_t)u;
    while (w >= 100) {
        unsigned r = w % 100;
        w /= 100;
        end -= 2;
        memcpy(end, digit_pairs + 2 * r, 2);
    }
    if (w >= 10) {
        end -= 2;
        memcpy(end, digit_pairs + 2 * w, 2);
    } else {
        *--end = (char)('0' + w);
    }
    return end;
}

/* 10^k for 0 <= k <= 19: the digit count of u is the first k with u < 10^k. */
static const uint64_t pow10_u64[20] = {
    1ull, 10ull, 100ull, 1000ull, 10000ull, 100000ull, 1000000ull, 10000000ull,
    100000000ull, 1000000000ull, 10000000000ull, 100000000000ull, 1000000000000ull,
    10000000000000ull, 100000000000000ull, 1000000000000000ull, 10000000000000000ull,
    100000000000000000ull, 1000000000000000000ull, 10000000000000000000ull
};

/* Digits straight into place: counted first, so no copy from a scratch buffer. */
size_t json_fmt_integer(char *dst, long long v)
{
    /* Negate in unsigned arithmetic so LLONG_MIN works. */
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    size_t n = 1, neg = v < 0;

    while (n < 20 && u >= pow10_u64[n])
        n++;
    dst[0] = '-';
    put_digits(dst + neg + n, u);
    return neg + n;
}

/* A "C" numeric locale for snprintf/strtod, whatever setlocale says. */
static locale_t c_locale;
static pthread_once_t c_locale_once = PTHREAD_ONCE_INIT;

static void make_c_locale(void)
{
    c_locale = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
}

static locale_t enter_c_locale(void)
{
    pthread_once(&c_locale_once, make_c_locale);
    return c_locale ? uselocale(c_locale) : (locale_t)0;
}

static void leave_c_locale(locale_t old)
{
    if (old)
        uselocale(old);
}

/* m * 10^-k in positional notation, m having no more than 17 digits. */
static size_t put_fixed(char *dst, int neg, uint64_t m, int k, int mark_float)
{
    char tmp[24];
    char *end = tmp + sizeof tmp;
    char *digits = put_digits(end, m);
    int nd = (int)(end - digits);
    char *d = dst;

    if (neg)
        *d++ = '-';
    if (k == 0) {
        memcpy(d, digits, (size_t)nd);
        d += nd;
        if (mark_float) {
            memcpy(d, ".0", 2);
            d += 2;
        }
    } else if (nd <= k) {
        *d++ = '0';
        *d++ = '.';
        memset(d, '0', (size_t)(k - nd));
        d += k - nd;
        memcpy(d, digits, (size_t)nd);
        d += nd;
    } else {
        memcpy(d, digits, (size_t)(nd - k));
        d += nd - k;
        *d++ = '.';
        memcpy(d, digits + nd - k, (size_t)k);
        d += k;
    }
    return (size_t)(d - dst);
}

/* Does x printed with prec significant digits read back as x? */
static int print_reads_back(char *dst, double x, int prec)
{
    snprintf(dst, JSON_NUMBER_MAXLEN, "%.*g", prec, x);
    return strtod(dst, NULL) == x;
}

size_t json_fmt_double(char *dst, double x, int mark_float)
{
    double ax = fabs(x);
    int neg = signbit(x) != 0;
    int prec, k;
    size_t n, i;
    locale_t old;

    if (ax == 0)
        return put_fixed(dst, neg, 0, 0, mark_float);

    /*
    ** Fast path: the fewest decimals k with m / 10^k == x. Both operands are
    ** exact and IEEE division rounds correctly, so this is the very double
    ** strtod returns for the text: the round trip is proven, not hoped for.
    */
    if (ax >= 1e-4 && ax < 1e15) {
        for (k = 0; k <= 17; k++) {
            double scaled = ax * json_pow10[k];
            uint64_t m;
            if (scaled >= 9007199254740992.0)
                break;
            m = (uint64_t)(scaled + 0.5);
            if ((double)m / json_pow10[k] == ax)
                return put_fixed(dst, neg, m, k, mark_float);
        }
    }

    /*
    ** Slow path: the fewest %g digits that read back. Seventeen always do;
    ** when fifteen do, fewer may, and a binary search finds how few.
    */
    old = enter_c_locale();
    if (print_reads_back(dst, x, 15)) {
        int lo = 1, hi = 15;
        while (lo < hi) {
            int mid = (lo + hi) / 2;
            if (print_reads_back(dst, x, mid))
                hi = mid;
            else
                lo = mid + 1;
        }
        prec = lo;
    } else {
        prec = print_reads_back(dst, x, 16) ? 16 : 17;
    }
    n = (size_t)snprintf(dst, JSON_NUMBER_MAXLEN, "%.*g", prec, x);
    leave_c_locale(old);

    if (mark_float) {
        for (i = 0; i < n; i++)
            if (dst[i] == '.' || dst[i] == 'e')
                return n;
        memcpy(dst + n, ".0", 2);
        n += 2;
    }
    return n;
}

int json_strtod(const char *s, size_t len, double *out)
{
    char small[64];
    char *buf = small, *end;
    locale_t old;
    int ok;

    if (len >= sizeof small) {
        buf = malloc(len + 1);
        if (buf == NULL)
            return -1;
    }
    memcpy(buf, s, len);
    buf[len] = '\0';
    old = enter_c_locale();
    *out = strtod(buf, &end);
    leave_c_locale(old);
    ok = len > 0 && end == buf + len;
    if (buf != small)
        free(buf);
    return ok ? 0 : -1;
}
