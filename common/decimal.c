/*
 * common/decimal.c - exact fixed-point decimal arithmetic for money.
 *
 * Values are counts of millionths held in 96 bits (see decimal.h). Every
 * function loads its operands into an __int128, works there, checks the
 * DEC_INT_DIGITS range and stores back, so no intermediate result can wrap:
 * the range limit (10^28 - 1 millionths) is far below 2^127, and sums of two
 * in-range values or an in-range value times an int64 are checked with the
 * compiler's overflow builtins. dec_cmp_mul() needs the full product of two
 * values, up to 2^190, and computes it in 256 bits from 64-bit limbs.
 *
 * Parsers validate the whole input before touching *out and never read past
 * len. The module has no state and allocates nothing.
 */
#include <string.h>

#include "decimal.h"
#include "err.h"

typedef unsigned __int128 u128_t;
typedef __int128 i128_t;

/* 10^DEC_SCALE: units per 1. */
#define UNITS_PER_ONE ((i128_t)1000000)

static const uint64_t pow10_u64[20] = {
    1ull,
    10ull,
    100ull,
    1000ull,
    10000ull,
    100000ull,
    1000000ull,
    10000000ull,
    100000000ull,
    1000000000ull,
    10000000000ull,
    100000000000ull,
    1000000000000ull,
    10000000000000ull,
    100000000000000ull,
    1000000000000000ull,
    10000000000000000ull,
    100000000000000000ull,
    1000000000000000000ull,
    10000000000000000000ull,
};

/* 10^n for n <= 38 as an unsigned 128-bit integer. */
static u128_t power_of_ten(unsigned n)
{
    if (n < 20)
        return pow10_u64[n];
    return (u128_t)pow10_u64[19] * power_of_ten(n - 19);
}

/* The largest magnitude in millionths: 10^(DEC_INT_DIGITS + DEC_SCALE) - 1 = 10^28 - 1, below 2^95. */
_Static_assert(DEC_INT_DIGITS + DEC_SCALE == 28, "MAX_UNITS must follow DEC_INT_DIGITS and DEC_SCALE");
#define MAX_UNITS ((i128_t)10000000000000000000ull * 1000000000 - 1)

static int is_in_range(i128_t u)
{
    return u <= MAX_UNITS && u >= -MAX_UNITS;
}

static i128_t load_units(dec_t v)
{
    u128_t u = ((u128_t)v._w[2] << 64) | ((u128_t)v._w[1] << 32) | v._w[0];
    /* Sign-extend from bit 95; done in unsigned arithmetic to stay clear of shifts of negative values. */
    if (v._w[2] & 0x80000000u)
        u |= ~(((u128_t)1 << 96) - 1);
    return (i128_t)u;
}

/* Callers guarantee is_in_range(u), so the value fits 96 bits. */
static dec_t store_units(i128_t units)
{
    u128_t u = (u128_t)units;
    dec_t v;
    v._w[0] = (uint32_t)u;
    v._w[1] = (uint32_t)(u >> 32);
    v._w[2] = (uint32_t)(u >> 64);
    return v;
}

static u128_t take_magnitude(i128_t u)
{
    return u < 0 ? -(u128_t)u : (u128_t)u;
}

/*
 * Scans s[0..len) as -?D+(.D+)? with at most DEC_INT_DIGITS integer digits
 * and at most max_frac fraction digits kept; fraction digits past max_frac
 * are an error unless zeros_ok, in which case they must be '0' and are
 * dropped. Stores the value in millionths (max_frac <= DEC_SCALE).
 */
static int parse_units(const char *s, size_t len, unsigned max_frac, int zeros_ok, i128_t *units)
{
    size_t i = 0, start;
    int neg = 0;
    i128_t intpart = 0, frac = 0;
    unsigned nfrac = 0;

    if (s == NULL || max_frac > DEC_SCALE)
        return ERR_INVALID;
    if (i < len && s[i] == '-') {
        neg = 1;
        ++i;
    }
    start = i;
    while (i < len && s[i] >= '0' && s[i] <= '9') {
        if (i - start == DEC_INT_DIGITS)
            return ERR_INVALID;
        intpart = intpart * 10 + (s[i] - '0');
        ++i;
    }
    if (i == start)
        return ERR_INVALID; /* no integer digits: "", "-", ".5", "+1", " 1" */
    if (i < len) {
        if (s[i] != '.')
            return ERR_INVALID;
        start = ++i;
        while (i < len && s[i] >= '0' && s[i] <= '9') {
            if (i - start < max_frac) {
                frac = frac * 10 + (s[i] - '0');
                ++nfrac;
            } else if (!zeros_ok || s[i] != '0') {
                return ERR_INVALID;
            }
            ++i;
        }
        if (i == start || i != len)
            return ERR_INVALID; /* "5.", "1.2e3", "1.2 " */
    }
    *units = intpart * UNITS_PER_ONE + frac * (i128_t)pow10_u64[DEC_SCALE - nfrac];
    if (neg)
        *units = -*units;
    return 0;
}

int dec_parse(const char *s, size_t len, unsigned max_frac, dec_t *out)
{
    i128_t u;
    int ret;

    if ((ret = parse_units(s, len, max_frac, 0, &u)) != 0)
        return ret;
    *out = store_units(u);
    return 0;
}

int dec_parse_pg_text(const char *s, size_t len, dec_t *out)
{
    i128_t u;
    int ret;

    /* "NaN" and "Infinity" fail the grammar like any other word. */
    if ((ret = parse_units(s, len, DEC_SCALE, 1, &u)) != 0)
        return ret;
    *out = store_units(u);
    return 0;
}

static unsigned read_be16(const unsigned char *p)
{
    return (unsigned)p[0] << 8 | p[1];
}

/* Number of significant decimal places in a base-10000 fraction digit (1..4), d != 0. */
static unsigned count_frac_places(unsigned d)
{
    unsigned places = 4;
    while (d % 10 == 0) {
        d /= 10;
        --places;
    }
    return places;
}

int dec_from_pg_binary(const void *buf, size_t len, dec_t *out)
{
    const unsigned char *p = buf;
    int ndigits, weight, i;
    unsigned sign, dscale;
    i128_t units = 0;

    if (p == NULL || len < 8)
        return ERR_INVALID;
    ndigits = (int16_t)read_be16(p);
    weight = (int16_t)read_be16(p + 2);
    sign = read_be16(p + 4);
    dscale = read_be16(p + 6);
    if (ndigits < 0 || len != 8 + 2 * (size_t)ndigits)
        return ERR_INVALID;
    if (sign != 0x0000 && sign != 0x4000)
        return ERR_INVALID; /* NaN, +-Infinity, garbage */
    if (dscale > 0x3FFF)
        return ERR_INVALID;

    for (i = 0; i < ndigits; ++i) {
        unsigned d = read_be16(p + 8 + 2 * i);
        int e = weight - i; /* this digit is worth d * 10000^e */
        if (d > 9999)
            return ERR_INVALID;
        if (d == 0)
            continue;
        if (e < 0) {
            /* Fraction digits: every nonzero place must be within dscale and within our scale. */
            unsigned last = 4 * (unsigned)(-e - 1) + count_frac_places(d);
            if (last > dscale || last > DEC_SCALE)
                return ERR_INVALID;
            /* e is -1 (d * 100 millionths) or -2 (d / 100, exact because last <= 6). */
            units += e == -1 ? (i128_t)d * 100 : (i128_t)(d / 100);
        } else {
            /* d * 10^(4e + 6) millionths; 10^30 already exceeds the range, so stop before computing it. */
            if (e > (DEC_INT_DIGITS - 1) / 4)
                return ERR_INVALID;
            units += (i128_t)d * (i128_t)power_of_ten(4 * (unsigned)e + DEC_SCALE);
            if (units > MAX_UNITS)
                return ERR_INVALID;
        }
    }
    if (units > MAX_UNITS)
        return ERR_INVALID;
    *out = store_units(sign == 0x4000 ? -units : units);
    return 0;
}

int dec_format(dec_t v, unsigned places, char *buf, size_t size)
{
    char tmp[DEC_STR_MAX];
    char *end = tmp + sizeof(tmp), *q = end;
    i128_t u = load_units(v);
    u128_t mag = take_magnitude(u), div, rem;
    unsigned k;

    if (size > 0)
        buf[0] = '\0';
    if (places > DEC_SCALE)
        return ERR_INVALID;

    /* Round half away from zero to `places`, then print the scaled integer. */
    div = pow10_u64[DEC_SCALE - places];
    rem = mag % div;
    mag /= div;
    if (rem * 2 >= div)
        ++mag;
    for (k = 0; k < places; ++k) {
        *--q = (char)('0' + (unsigned)(mag % 10));
        mag /= 10;
    }
    if (places > 0)
        *--q = '.';
    do {
        *--q = (char)('0' + (unsigned)(mag % 10));
        mag /= 10;
    } while (mag != 0);
    if (u < 0) {
        /* Skip the sign when every printed digit is zero ("-0.001" at 2 places is "0.00"). */
        const char *c;
        for (c = q; c < end && (*c == '0' || *c == '.'); ++c)
            ;
        if (c < end)
            *--q = '-';
    }
    if ((size_t)(end - q) + 1 > size)
        return ERR_INVALID;
    memcpy(buf, q, (size_t)(end - q));
    buf[end - q] = '\0';
    return 0;
}

dec_t dec_from_int(int64_t i)
{
    return store_units((i128_t)i * UNITS_PER_ONE);
}

__int128 dec_to_units(dec_t v)
{
    return load_units(v);
}

int dec_from_units(__int128 units, dec_t *out)
{
    if (!is_in_range(units))
        return ERR_INVALID;
    *out = store_units(units);
    return 0;
}

int dec_add(dec_t a, dec_t b, dec_t *out)
{
    /* Both operands are below 10^28 in magnitude, so the sum cannot wrap an __int128. */
    i128_t r = load_units(a) + load_units(b);
    if (!is_in_range(r))
        return ERR_INVALID;
    *out = store_units(r);
    return 0;
}

int dec_sub(dec_t a, dec_t b, dec_t *out)
{
    i128_t r = load_units(a) - load_units(b);
    if (!is_in_range(r))
        return ERR_INVALID;
    *out = store_units(r);
    return 0;
}

int dec_mul_int(dec_t a, int64_t k, dec_t *out)
{
    i128_t r;
    if (__builtin_mul_overflow(load_units(a), (i128_t)k, &r) || !is_in_range(r))
        return ERR_INVALID;
    *out = store_units(r);
    return 0;
}

int dec_cmp(dec_t a, dec_t b)
{
    i128_t x = load_units(a), y = load_units(b);
    return (x > y) - (x < y);
}

int dec_is_zero(dec_t v)
{
    return (v._w[0] | v._w[1] | v._w[2]) == 0;
}

/* The full 256-bit product x * y as hi:lo. */
static void multiply_wide(u128_t x, u128_t y, u128_t *hi, u128_t *lo)
{
    uint64_t x0 = (uint64_t)x, x1 = (uint64_t)(x >> 64), y0 = (uint64_t)y, y1 = (uint64_t)(y >> 64);
    u128_t p00 = (u128_t)x0 * y0, p01 = (u128_t)x0 * y1, p10 = (u128_t)x1 * y0, p11 = (u128_t)x1 * y1;
    /* Each term is below 2^64, so the middle column cannot wrap 128 bits. */
    u128_t mid = (p00 >> 64) + (uint64_t)p01 + (uint64_t)p10;
    *lo = (mid << 64) | (uint64_t)p00;
    *hi = p11 + (p01 >> 64) + (p10 >> 64) + (mid >> 64);
}

static int get_sign(i128_t u)
{
    return (u > 0) - (u < 0);
}

int dec_cmp_mul(dec_t a, dec_t share, dec_t b)
{
    /*
     * a * share has 12 fraction digits and b has 6, so compare a.units *
     * share.units with b.units * 10^6, exactly. The right side is below
     * 2^115; the left needs up to 190 bits.
     */
    i128_t x = load_units(a), y = load_units(share), z = load_units(b);
    int sl = get_sign(x) * get_sign(y), sr = get_sign(z), mag_cmp;
    u128_t lhi, llo, rlo;

    if (sl != sr)
        return sl < sr ? -1 : 1;
    if (sl == 0)
        return 0;
    multiply_wide(take_magnitude(x), take_magnitude(y), &lhi, &llo);
    rlo = take_magnitude(z) * (u128_t)UNITS_PER_ONE;
    if (lhi != 0)
        mag_cmp = 1;
    else
        mag_cmp = (llo > rlo) - (llo < rlo);
    return sl > 0 ? mag_cmp : -mag_cmp;
}

int dec_mul_lt(dec_t a, dec_t share, dec_t b)
{
    return dec_cmp_mul(a, share, b) < 0;
}
