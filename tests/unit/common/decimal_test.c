/*
 * tests/unit/common/decimal_test.c - unit tests for common/decimal.c.
 *
 * One Check suite with a TCase per function group: strict parsing, PostgreSQL
 * text and binary numeric decoding, formatting and rounding, arithmetic with
 * its range checks, and the exact a * share comparison. The file under test
 * is included so the test binary needs nothing else from libcommon.a;
 * values are compared through dec_format() or dec_to_units().
 */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../../common/decimal.c"

/* Parses s (which must be valid) with DEC_SCALE fraction digits allowed. */
static dec_t D(const char *s)
{
    dec_t v;
    ck_assert_msg(dec_parse(s, strlen(s), DEC_SCALE, &v) == 0, "cannot parse \"%s\"", s);
    return v;
}

/* Formats v at `places` into a static buffer; fine in Check's one-test-per-process mode. */
static const char *F(dec_t v, unsigned places)
{
    static char buf[DEC_STR_MAX];
    ck_assert_int_eq(dec_format(v, places, buf, sizeof(buf)), 0);
    return buf;
}

static int parse_str(const char *s, unsigned max_frac, dec_t *v)
{
    return dec_parse(s, strlen(s), max_frac, v);
}

static int pg_text(const char *s, dec_t *v)
{
    return dec_parse_pg_text(s, strlen(s), v);
}

/* A binary numeric: header fields then digits, big-endian, into buf; returns its length. */
static size_t build_numeric(unsigned char *buf, int ndigits, int weight, unsigned sign, unsigned dscale,
                            const int *digits)
{
    unsigned fields[4] = {(uint16_t)ndigits, (uint16_t)weight, sign, dscale};
    size_t len = 0;
    int i;

    for (i = 0; i < 4; ++i) {
        buf[len++] = (unsigned char)(fields[i] >> 8);
        buf[len++] = (unsigned char)fields[i];
    }
    for (i = 0; i < ndigits; ++i) {
        buf[len++] = (unsigned char)((uint16_t)digits[i] >> 8);
        buf[len++] = (unsigned char)digits[i];
    }
    return len;
}

/* Decodes a binary numeric into its 6-place text, or NULL when it is rejected. */
static const char *decode_numeric(int ndigits, int weight, unsigned sign, unsigned dscale, const int *digits)
{
    unsigned char buf[8 + 2 * 16];
    dec_t v = dec_from_int(42), before = v;
    size_t len = build_numeric(buf, ndigits, weight, sign, dscale, digits);

    if (dec_from_pg_binary(buf, len, &v) != 0) {
        ck_assert_int_eq(dec_cmp(v, before), 0); /* untouched on error */
        return NULL;
    }
    return F(v, DEC_SCALE);
}

/* ---- parse ---- */

START_TEST(test_parse_accepts)
{
    static const struct {
        const char *in;
        unsigned max_frac;
        const char *out; /* at 6 places */
    } cases[] = {
        {"0", 0, "0.000000"},
        {"-0", 0, "0.000000"},
        {"7", 2, "7.000000"},
        {"-7", 2, "-7.000000"},
        {"12.3", 2, "12.300000"},
        {"12.34", 2, "12.340000"},
        {"-12.34", 2, "-12.340000"},
        {"0.80", 2, "0.800000"},
        {"0.955", 3, "0.955000"},
        {"0.000001", 6, "0.000001"},
        {"-0.000001", 6, "-0.000001"},
        {"007.50", 2, "7.500000"},
        {"1000000000000", 2, "1000000000000.000000"},
        {"9999999999999999999999", 0, "9999999999999999999999.000000"},
        {"9999999999999999999999.999999", 6, "9999999999999999999999.999999"},
        {"-9999999999999999999999.999999", 6, "-9999999999999999999999.999999"},
    };
    size_t i;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); ++i) {
        dec_t v;
        ck_assert_msg(parse_str(cases[i].in, cases[i].max_frac, &v) == 0, "rejected \"%s\"", cases[i].in);
        ck_assert_str_eq(F(v, 6), cases[i].out);
    }
}
END_TEST

START_TEST(test_parse_rejects)
{
    static const struct {
        const char *in;
        unsigned max_frac;
    } cases[] = {
        {"", 2},
        {"-", 2},
        {"+1", 2},
        {"+1.00", 2},
        {" 1", 2},
        {"1 ", 2},
        {"1 .00", 2},
        {"- 1", 2},
        {"--1", 2},
        {".", 2},
        {"-.", 2},
        {".5", 2},
        {"-.5", 2},
        {"5.", 2},
        {"-5.", 2},
        {"1e3", 2},
        {"1E3", 2},
        {"1.5e3", 2},
        {"1.2.3", 2},
        {"1,00", 2},
        {"0x10", 2},
        {"NaN", 2},
        {"Infinity", 2},
        {"abc", 2},
        {"1a", 2},
        {"12.345", 2},                  /* too many fraction digits */
        {"12.3", 0},                    /* no fraction allowed */
        {"1.0000000", 6},               /* 7 fraction digits */
        {"10000000000000000000000", 6}, /* 23 integer digits: past DEC_INT_DIGITS */
        {"-10000000000000000000000", 6},
        {"00000000000000000000001", 6}, /* leading zeros count */
        {"99999999999999999999999999999999999999999", 6},
        {"1", 7}, /* max_frac above DEC_SCALE */
    };
    size_t i;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); ++i) {
        dec_t v = dec_from_int(42);
        ck_assert_msg(parse_str(cases[i].in, cases[i].max_frac, &v) == ERR_INVALID, "accepted \"%s\"", cases[i].in);
        ck_assert_msg(dec_cmp(v, dec_from_int(42)) == 0, "\"%s\" changed *out", cases[i].in);
    }
}
END_TEST

START_TEST(test_parse_len)
{
    static const char nul_inside[3] = {'1', '\0', '2'};
    dec_t v;

    /* Only s[0..len) is read: a prefix parses, an embedded NUL is rejected, len 0 is empty. */
    ck_assert_int_eq(dec_parse("12.34xyz", 5, 2, &v), 0);
    ck_assert_str_eq(F(v, 2), "12.34");
    ck_assert_int_eq(dec_parse("12.34", 4, 2, &v), 0);
    ck_assert_str_eq(F(v, 2), "12.30");
    ck_assert_int_eq(dec_parse("12.34", 3, 2, &v), ERR_INVALID); /* "12." */
    ck_assert_int_eq(dec_parse(nul_inside, sizeof(nul_inside), 2, &v), ERR_INVALID);
    ck_assert_int_eq(dec_parse("1", 0, 2, &v), ERR_INVALID);
    ck_assert_int_eq(dec_parse(NULL, 0, 2, &v), ERR_INVALID);
}
END_TEST

/* ---- PostgreSQL text ---- */

START_TEST(test_pg_text)
{
    dec_t v;

    ck_assert_int_eq(pg_text("1234.50", &v), 0);
    ck_assert_str_eq(F(v, 2), "1234.50");
    ck_assert_int_eq(pg_text("-0.50", &v), 0);
    ck_assert_str_eq(F(v, 2), "-0.50");
    ck_assert_int_eq(pg_text("0", &v), 0);
    ck_assert(dec_is_zero(v));
    /* numeric(20,8) and unconstrained numeric print trailing zeros past our scale. */
    ck_assert_int_eq(pg_text("1.50000000", &v), 0);
    ck_assert_str_eq(F(v, 6), "1.500000");
    ck_assert_int_eq(pg_text("0.12345600000000000000000000000000000000", &v), 0);
    ck_assert_str_eq(F(v, 6), "0.123456");
    ck_assert_int_eq(pg_text("100000000.01", &v), 0);
    ck_assert_str_eq(F(v, 2), "100000000.01");

    ck_assert_int_eq(pg_text("1.0000001", &v), ERR_INVALID); /* would be rounded */
    ck_assert_int_eq(pg_text("0.00000050", &v), ERR_INVALID);
    ck_assert_int_eq(pg_text("NaN", &v), ERR_INVALID);
    ck_assert_int_eq(pg_text("Infinity", &v), ERR_INVALID);
    ck_assert_int_eq(pg_text("-Infinity", &v), ERR_INVALID);
    ck_assert_int_eq(pg_text("", &v), ERR_INVALID);
    ck_assert_int_eq(pg_text("1.", &v), ERR_INVALID);
    ck_assert_int_eq(pg_text(".5", &v), ERR_INVALID);
    ck_assert_int_eq(pg_text("1e5", &v), ERR_INVALID);
    ck_assert_int_eq(pg_text("10000000000000000000000", &v), ERR_INVALID);
}
END_TEST

/* ---- PostgreSQL binary ---- */

START_TEST(test_pg_binary_values)
{
    static const int one_half[] = {1, 5000};
    static const int cents[] = {1, 2345, 6700};
    static const int hundred_million[] = {1, 0, 0, 100};
    static const int five_hundredths[] = {500};
    static const int millionth[] = {100};
    static const int max[] = {99, 9999, 9999, 9999, 9999, 9999, 9999, 9900};
    static const int trailing_zero_groups[] = {12, 0, 0};
    static const int leading_zero_group[] = {0, 7};

    ck_assert_str_eq(decode_numeric(0, 0, 0x0000, 0, NULL), "0.000000");
    ck_assert_str_eq(decode_numeric(0, 0, 0x4000, 2, NULL), "0.000000"); /* negative zero */
    ck_assert_str_eq(decode_numeric(2, 0, 0x0000, 1, one_half), "1.500000");
    ck_assert_str_eq(decode_numeric(3, 1, 0x4000, 2, cents), "-12345.670000");
    ck_assert_str_eq(decode_numeric(4, 2, 0x0000, 2, hundred_million), "100000000.010000");
    ck_assert_str_eq(decode_numeric(1, -1, 0x0000, 2, five_hundredths), "0.050000");
    ck_assert_str_eq(decode_numeric(1, -2, 0x0000, 6, millionth), "0.000001");
    ck_assert_str_eq(decode_numeric(8, 5, 0x0000, 6, max), "9999999999999999999999.999999");
    ck_assert_str_eq(decode_numeric(8, 5, 0x4000, 6, max), "-9999999999999999999999.999999");
    ck_assert_str_eq(decode_numeric(3, 2, 0x0000, 0, trailing_zero_groups), "1200000000.000000");
    ck_assert_str_eq(decode_numeric(2, 0, 0x0000, 4, leading_zero_group), "0.000700");
}
END_TEST

START_TEST(test_pg_binary_from_server)
{
    /* numeric_send() output captured from PostgreSQL 15: SELECT encode(numeric_send(x::numeric), 'hex'). */
    static const struct {
        const char *hex;
        const char *text; /* NULL: must be rejected */
    } cases[] = {
        {"0000000000000000", "0.000000"},
        {"000200000000000100011388", "1.500000"},
        {"0003000140000002000109291a2c", "-12345.670000"},
        {"00040002000000020001000000000064", "100000000.010000"},
        {"00000000c0000000", NULL}, /* NaN */
        {"0001fffe000000060064", "0.000001"},
        {"00080005000000060063270f270f270f270f270f270f26ac", "9999999999999999999999.999999"},
        {"0001ffff0000000201f4", "0.050000"},
        {"000200000000000800011388", "1.500000"}, /* 1.50000000 */
        {"0001ffff400000021388", "-0.500000"},
        {"000100020000000004b0", "120000000000.000000"},
        {"0001fffe00000007000a", NULL}, /* 1e-7 */
    };
    size_t i, k;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); ++i) {
        unsigned char buf[64];
        size_t len = strlen(cases[i].hex) / 2;
        dec_t v;
        int ret;
        for (k = 0; k < len; ++k) {
            unsigned byte;
            ck_assert_int_eq(sscanf(cases[i].hex + 2 * k, "%2x", &byte), 1);
            buf[k] = (unsigned char)byte;
        }
        ret = dec_from_pg_binary(buf, len, &v);
        if (cases[i].text == NULL) {
            ck_assert_msg(ret == ERR_INVALID, "accepted %s", cases[i].hex);
        } else {
            ck_assert_msg(ret == 0, "rejected %s", cases[i].hex);
            ck_assert_str_eq(F(v, 6), cases[i].text);
        }
    }
}
END_TEST

START_TEST(test_pg_binary_rejects)
{
    static const int one[] = {1};
    static const int bad_digit[] = {10000};
    static const int negative_digit[] = {-1};
    static const int one_half[] = {1, 5000};
    static const int ten_millionths[] = {10};
    static const int too_big[] = {1};
    static const int just_too_big[] = {100, 0, 0, 0, 0, 0};
    unsigned char buf[64];
    size_t len;
    dec_t v;

    ck_assert_ptr_null(decode_numeric(0, 0, 0xC000, 0, NULL)); /* NaN */
    ck_assert_ptr_null(decode_numeric(0, 0, 0xD000, 0, NULL)); /* +Infinity */
    ck_assert_ptr_null(decode_numeric(0, 0, 0xF000, 0, NULL)); /* -Infinity */
    ck_assert_ptr_null(decode_numeric(1, 0, 0x8000, 0, one));  /* unknown sign word */
    ck_assert_ptr_null(decode_numeric(1, 0, 0x0001, 0, one));
    ck_assert_ptr_null(decode_numeric(1, 0, 0x0000, 0, bad_digit));
    ck_assert_ptr_null(decode_numeric(1, 0, 0x0000, 0, negative_digit));
    ck_assert_ptr_null(decode_numeric(2, 0, 0x0000, 0, one_half));        /* 0.5 hidden by dscale 0 */
    ck_assert_ptr_null(decode_numeric(1, -2, 0x0000, 7, ten_millionths)); /* 0.0000001: below our scale */
    ck_assert_ptr_null(decode_numeric(1, 0, 0x0000, 0x4000, one));        /* dscale out of range */
    ck_assert_ptr_null(decode_numeric(1, 6, 0x0000, 0, too_big));         /* 10^24 */
    ck_assert_ptr_null(decode_numeric(1, 32767, 0x0000, 0, too_big));
    ck_assert_ptr_null(decode_numeric(6, 5, 0x0000, 0, just_too_big)); /* 10^22 */

    /* Lengths: short header, ndigits disagreeing with the buffer, negative ndigits. */
    len = build_numeric(buf, 2, 0, 0x0000, 1, one_half);
    ck_assert_int_eq(dec_from_pg_binary(buf, len, &v), 0);
    ck_assert_int_eq(dec_from_pg_binary(buf, len - 1, &v), ERR_INVALID);
    ck_assert_int_eq(dec_from_pg_binary(buf, len + 1, &v), ERR_INVALID);
    ck_assert_int_eq(dec_from_pg_binary(buf, 7, &v), ERR_INVALID);
    ck_assert_int_eq(dec_from_pg_binary(buf, 0, &v), ERR_INVALID);
    ck_assert_int_eq(dec_from_pg_binary(NULL, 8, &v), ERR_INVALID);
    len = build_numeric(buf, -1, 0, 0x0000, 0, NULL);
    ck_assert_int_eq(dec_from_pg_binary(buf, len, &v), ERR_INVALID);
}
END_TEST

/* ---- format ---- */

START_TEST(test_format_rounding)
{
    ck_assert_str_eq(F(D("1.005"), 2), "1.01");
    ck_assert_str_eq(F(D("1.004999"), 2), "1.00");
    ck_assert_str_eq(F(D("-1.005"), 2), "-1.01");
    ck_assert_str_eq(F(D("-1.004999"), 2), "-1.00");
    ck_assert_str_eq(F(D("2.5"), 0), "3");
    ck_assert_str_eq(F(D("-2.5"), 0), "-3");
    ck_assert_str_eq(F(D("2.499999"), 0), "2");
    ck_assert_str_eq(F(D("0.999999"), 2), "1.00");
    ck_assert_str_eq(F(D("-0.004"), 2), "0.00"); /* no negative zero */
    ck_assert_str_eq(F(D("-0.4"), 0), "0");
    ck_assert_str_eq(F(D("-0.5"), 0), "-1");
    ck_assert_str_eq(F(D("0"), 0), "0");
    ck_assert_str_eq(F(D("0"), 3), "0.000");
    ck_assert_str_eq(F(D("12.3"), 2), "12.30");
    ck_assert_str_eq(F(D("-12.3"), 6), "-12.300000");
    ck_assert_str_eq(F(D("0.955"), 3), "0.955");
    ck_assert_str_eq(F(D("9999999999999999999999.999999"), 6), "9999999999999999999999.999999");
    ck_assert_str_eq(F(D("9999999999999999999999.5"), 0), "10000000000000000000000");
    ck_assert_str_eq(F(D("-9999999999999999999999.999999"), 2), "-10000000000000000000000.00");
}
END_TEST

START_TEST(test_format_buffer)
{
    char buf[DEC_STR_MAX];
    dec_t v = D("-12.34");

    ck_assert_int_eq(dec_format(v, 2, buf, 7), 0); /* "-12.34" + NUL */
    ck_assert_str_eq(buf, "-12.34");
    ck_assert_int_eq(dec_format(v, 2, buf, 6), ERR_INVALID);
    ck_assert_str_eq(buf, "");
    ck_assert_int_eq(dec_format(v, 2, buf, 0), ERR_INVALID);
    ck_assert_int_eq(dec_format(v, 7, buf, sizeof(buf)), ERR_INVALID);
    ck_assert_int_eq(dec_format(D("-9999999999999999999999.999999"), 6, buf, sizeof(buf)), 0);
    ck_assert_uint_lt(strlen(buf), DEC_STR_MAX);
}
END_TEST

START_TEST(test_format_round_trip)
{
    uint64_t state = 0x9E3779B97F4A7C15ull;
    int i;

    for (i = 0; i < 20000; ++i) {
        char buf[DEC_STR_MAX];
        unsigned places = (unsigned)(i % (DEC_SCALE + 1));
        __int128 units;
        dec_t v, w;

        state ^= state << 13, state ^= state >> 7, state ^= state << 17;
        /* Values of every size, negative half the time, cut to `places` digits so the round trip is exact. */
        units = (__int128)(state >> (state % 64)) * (__int128)(state % 1000003) * (i % 3 == 0 ? 1000000 : 1);
        units -= units % (__int128)pow10_u64[DEC_SCALE - places];
        if (i & 1)
            units = -units;
        if (dec_from_units(units, &v) != 0)
            continue;
        ck_assert_int_eq(dec_format(v, places, buf, sizeof(buf)), 0);
        ck_assert_int_eq(dec_parse(buf, strlen(buf), places, &w), 0);
        ck_assert_msg(dec_cmp(v, w) == 0, "round trip of %s", buf);
        ck_assert_int_eq(dec_parse_pg_text(buf, strlen(buf), &w), 0);
        ck_assert(dec_cmp(v, w) == 0);
    }
}
END_TEST

/* ---- arithmetic ---- */

START_TEST(test_arith_add_sub)
{
    dec_t max = D("9999999999999999999999.999999"), min = D("-9999999999999999999999.999999");
    dec_t tiny = D("0.000001"), r = dec_from_int(5), sum = {{0}};
    int i;

    ck_assert_int_eq(dec_add(D("0.10"), D("0.20"), &r), 0);
    ck_assert_int_eq(dec_cmp(r, D("0.3")), 0);
    ck_assert_int_eq(dec_sub(D("0.10"), D("0.20"), &r), 0);
    ck_assert_str_eq(F(r, 2), "-0.10");
    ck_assert_int_eq(dec_add(max, min, &r), 0);
    ck_assert(dec_is_zero(r));

    r = dec_from_int(5);
    ck_assert_int_eq(dec_add(max, tiny, &r), ERR_INVALID);
    ck_assert_int_eq(dec_cmp(r, dec_from_int(5)), 0); /* untouched */
    ck_assert_int_eq(dec_sub(min, tiny, &r), ERR_INVALID);
    ck_assert_int_eq(dec_add(max, max, &r), ERR_INVALID);
    ck_assert_int_eq(dec_sub(max, min, &r), ERR_INVALID);
    ck_assert_int_eq(dec_sub(max, tiny, &r), 0);
    ck_assert_str_eq(F(r, 6), "9999999999999999999999.999998");

    /* The product's requirement: 10,000,000 totals of 10^12 each sum without overflow. */
    for (i = 0; i < 1000; ++i)
        ck_assert_int_eq(dec_add(sum, D("1000000000000.00"), &sum), 0);
    ck_assert_int_eq(dec_mul_int(sum, 10000, &sum), 0);
    ck_assert_str_eq(F(sum, 2), "10000000000000000000.00");
}
END_TEST

START_TEST(test_arith_mul_int)
{
    dec_t r;

    ck_assert_int_eq(dec_mul_int(D("12.34"), 3, &r), 0);
    ck_assert_str_eq(F(r, 2), "37.02");
    ck_assert_int_eq(dec_mul_int(D("12.34"), -3, &r), 0);
    ck_assert_str_eq(F(r, 2), "-37.02");
    ck_assert_int_eq(dec_mul_int(D("12.34"), 0, &r), 0);
    ck_assert(dec_is_zero(r));
    ck_assert_int_eq(dec_mul_int(D("1000"), INT64_MAX, &r), 0);
    ck_assert_str_eq(F(r, 0), "9223372036854775807000");
    ck_assert_int_eq(dec_mul_int(D("-1000"), INT64_MIN, &r), 0);
    ck_assert_str_eq(F(r, 0), "9223372036854775808000");
    r = dec_from_int(1);
    ck_assert_int_eq(dec_mul_int(D("10000"), INT64_MAX, &r), ERR_INVALID);
    ck_assert_int_eq(dec_mul_int(D("9999999999999999999999.999999"), -1, &r), 0);
    ck_assert_int_eq(dec_mul_int(D("9999999999999999999999.999999"), 2, &r), ERR_INVALID);
    ck_assert_int_eq(dec_mul_int(D("9999999999999999999999.999999"), INT64_MIN, &r), ERR_INVALID);
}
END_TEST

START_TEST(test_arith_cmp)
{
    ck_assert_int_eq(dec_cmp(D("1.5"), D("1.50")), 0);
    ck_assert_int_eq(dec_cmp(D("1.5"), D("1.500001")), -1);
    ck_assert_int_eq(dec_cmp(D("-1.5"), D("-1.500001")), 1);
    ck_assert_int_eq(dec_cmp(D("-0.000001"), D("0")), -1);
    ck_assert_int_eq(dec_cmp(D("-9999999999999999999999.999999"), D("9999999999999999999999.999999")), -1);
    ck_assert_int_eq(dec_cmp(D("-0"), D("0")), 0);
    ck_assert(dec_is_zero(D("-0.000")));
    ck_assert(!dec_is_zero(D("-0.000001")));
}
END_TEST

START_TEST(test_arith_int_units)
{
    dec_t v;

    ck_assert_str_eq(F(dec_from_int(INT64_MIN), 0), "-9223372036854775808");
    ck_assert_str_eq(F(dec_from_int(INT64_MAX), 1), "9223372036854775807.0");
    ck_assert_str_eq(F(dec_from_int(-1), 2), "-1.00");
    ck_assert(dec_to_units(D("-1.5")) == -1500000);
    ck_assert_int_eq(dec_from_units(-1, &v), 0);
    ck_assert_str_eq(F(v, 6), "-0.000001");
    ck_assert_int_eq(dec_from_units((__int128)10000000000000000000ull * 1000000000, &v), ERR_INVALID);
    ck_assert_int_eq(dec_from_units(-(__int128)10000000000000000000ull * 1000000000, &v), ERR_INVALID);
    ck_assert_int_eq(dec_from_units((__int128)10000000000000000000ull * 1000000000 - 1, &v), 0);
    ck_assert_str_eq(F(v, 6), "9999999999999999999999.999999");
}
END_TEST

/* ---- exact a * share comparison ---- */

START_TEST(test_cmp_mul)
{
    dec_t max = D("9999999999999999999999.999999");

    ck_assert_int_eq(dec_cmp_mul(D("100"), D("0.80"), D("80")), 0);
    ck_assert_int_eq(dec_cmp_mul(D("100"), D("0.80"), D("79.999999")), 1);
    ck_assert_int_eq(dec_cmp_mul(D("100"), D("0.80"), D("80.000001")), -1);
    ck_assert_int_eq(dec_cmp_mul(D("1000.00"), D("0.955"), D("955.00")), 0);
    ck_assert_int_eq(dec_cmp_mul(D("1000.00"), D("0.955"), D("954.99")), 1);
    /* The product has 12 fraction digits: 0.000001 * 0.5 is 0.0000005, strictly between 0 and 0.000001. */
    ck_assert_int_eq(dec_cmp_mul(D("0.000001"), D("0.5"), D("0")), 1);
    ck_assert_int_eq(dec_cmp_mul(D("0.000001"), D("0.5"), D("0.000001")), -1);
    ck_assert_int_eq(dec_cmp_mul(D("0.000003"), D("0.333333"), D("0.000001")), -1);
    /* Signs and zeros. */
    ck_assert_int_eq(dec_cmp_mul(D("-100"), D("0.80"), D("-80")), 0);
    ck_assert_int_eq(dec_cmp_mul(D("-100"), D("0.80"), D("-80.000001")), 1);
    ck_assert_int_eq(dec_cmp_mul(D("-100"), D("0.80"), D("-79.999999")), -1);
    ck_assert_int_eq(dec_cmp_mul(D("-100"), D("-0.80"), D("80")), 0);
    ck_assert_int_eq(dec_cmp_mul(D("-100"), D("0.80"), D("0")), -1);
    ck_assert_int_eq(dec_cmp_mul(D("100"), D("0.80"), D("-1")), 1);
    ck_assert_int_eq(dec_cmp_mul(D("0"), D("0.80"), D("0")), 0);
    ck_assert_int_eq(dec_cmp_mul(D("0"), D("0.80"), D("0.000001")), -1);
    ck_assert_int_eq(dec_cmp_mul(D("0"), D("0.80"), D("-0.000001")), 1);
    ck_assert_int_eq(dec_cmp_mul(D("100"), D("0"), D("0")), 0);
    /* Extremes: products far beyond 128 bits are still compared exactly. */
    ck_assert_int_eq(dec_cmp_mul(max, max, max), 1);
    ck_assert_int_eq(dec_cmp_mul(max, D("1"), max), 0);
    ck_assert_int_eq(dec_cmp_mul(max, D("0.999999"), max), -1);
    ck_assert_int_eq(dec_cmp_mul(max, D("-9999999999999999999999.999999"), D("-1")), -1);
    ck_assert_int_eq(dec_cmp_mul(D("10000000000000000000.00"), D("0.80"), D("8000000000000000000.00")), 0);
    ck_assert_int_eq(dec_cmp_mul(D("10000000000000000000.00"), D("0.80"), D("7999999999999999999.999999")), 1);

    ck_assert_int_eq(dec_mul_lt(D("100"), D("0.80"), D("80.000001")), 1);
    ck_assert_int_eq(dec_mul_lt(D("100"), D("0.80"), D("80")), 0);
    ck_assert_int_eq(dec_mul_lt(D("100"), D("0.80"), D("79")), 0);
}
END_TEST

START_TEST(test_cmp_mul_wide)
{
    /* multiply_wide() against products small enough to check in 128 bits, and a known 256-bit square. */
    uint64_t state = 12345;
    u128_t hi, lo;
    int i;

    for (i = 0; i < 10000; ++i) {
        uint64_t x, y;
        state ^= state << 13, state ^= state >> 7, state ^= state << 17;
        x = state;
        state ^= state << 13, state ^= state >> 7, state ^= state << 17;
        y = state;
        multiply_wide(x, y, &hi, &lo);
        ck_assert(hi == 0 && lo == (u128_t)x * y);
    }
    multiply_wide(~(u128_t)0, ~(u128_t)0, &hi, &lo); /* (2^128 - 1)^2 = 2^256 - 2^129 + 1 */
    ck_assert(hi == ~(u128_t)0 - 1 && lo == 1);
    multiply_wide((u128_t)1 << 64, (u128_t)1 << 64, &hi, &lo);
    ck_assert(hi == 1 && lo == 0);
}
END_TEST

static Suite *decimal_suite(void)
{
    Suite *s = suite_create("decimal");
    TCase *tc;

    tc = tcase_create("parse");
    tcase_add_test(tc, test_parse_accepts);
    tcase_add_test(tc, test_parse_rejects);
    tcase_add_test(tc, test_parse_len);
    suite_add_tcase(s, tc);

    tc = tcase_create("pg_text");
    tcase_add_test(tc, test_pg_text);
    suite_add_tcase(s, tc);

    tc = tcase_create("pg_binary");
    tcase_add_test(tc, test_pg_binary_values);
    tcase_add_test(tc, test_pg_binary_from_server);
    tcase_add_test(tc, test_pg_binary_rejects);
    suite_add_tcase(s, tc);

    tc = tcase_create("format");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_format_rounding);
    tcase_add_test(tc, test_format_buffer);
    tcase_add_test(tc, test_format_round_trip);
    suite_add_tcase(s, tc);

    tc = tcase_create("arith");
    tcase_add_test(tc, test_arith_add_sub);
    tcase_add_test(tc, test_arith_mul_int);
    tcase_add_test(tc, test_arith_cmp);
    tcase_add_test(tc, test_arith_int_units);
    suite_add_tcase(s, tc);

    tc = tcase_create("cmp_mul");
    tcase_add_test(tc, test_cmp_mul);
    tcase_add_test(tc, test_cmp_mul_wide);
    suite_add_tcase(s, tc);

    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(decimal_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
