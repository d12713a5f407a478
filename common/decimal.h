/*
 * common/decimal.h - exact fixed-point decimal arithmetic for money.
 *
 * A dec_t is a signed count of millionths (scale DEC_SCALE = 6 fraction
 * digits), so 0.955 and 12.34 are both exact and every value has exactly one
 * representation. The count is a 96-bit two's-complement integer kept in
 * three 32-bit words: an array element is 12 bytes with 4-byte alignment,
 * which keeps the analytics worker's per-customer records small, while all
 * arithmetic widens to __int128 internally. Magnitudes are limited to
 * DEC_INT_DIGITS = 22 integer digits (|v| <= 9999999999999999999999.999999);
 * that holds 10,000,000 order totals of 10^12 each (10^19) with room to
 * spare. Every operation checks that limit and fails with ERR_INVALID instead
 * of wrapping; nothing here uses floating point.
 *
 * dec_t is a plain value: copy it freely, pass it by value. A zeroed dec_t
 * (static storage, memset, `(dec_t){0}`) is the value 0. The fields are
 * private. The module keeps no state and allocates nothing, so every
 * function is safe to call from any thread.
 */
#ifndef CLIENTELE_COMMON_DECIMAL_H
#define CLIENTELE_COMMON_DECIMAL_H

#include <stddef.h>
#include <stdint.h>

/* Fraction digits stored. */
#define DEC_SCALE 6
/* Most integer digits a value (and a parsed string) may have. */
#define DEC_INT_DIGITS 22
/* Buffer size dec_format() needs for any value and any number of places. */
#define DEC_STR_MAX 32

typedef struct st_dec_t {
    uint32_t _w[3]; /* two's-complement millionths, least significant word first */
} dec_t;

/*
 * Parses s[0..len) strictly: an optional '-', 1 to DEC_INT_DIGITS digits,
 * then optionally '.' and 1 to max_frac digits (max_frac <= DEC_SCALE).
 * Rejected with ERR_INVALID: an empty string, '+', spaces anywhere, "."
 * alone, ".5", "5.", "-", exponents, any other character (including NUL
 * inside len), more integer or fraction digits than allowed, max_frac >
 * DEC_SCALE. Leading zeros count towards the integer-digit limit. "-0" is 0.
 * On error *out is left unchanged.
 */
int dec_parse(const char *s, size_t len, unsigned max_frac, dec_t *out);

/*
 * Parses PostgreSQL's text output of a numeric (e.g. from PQgetvalue()).
 * Same grammar as dec_parse() except that any number of fraction digits is
 * accepted as long as those past DEC_SCALE are all '0' (numeric(20,8) gives
 * "1.50000000"), so no value is ever rounded. "NaN", "Infinity",
 * "-Infinity" and values past DEC_INT_DIGITS give ERR_INVALID.
 */
int dec_parse_pg_text(const char *s, size_t len, dec_t *out);

/*
 * Decodes PostgreSQL's binary numeric format (binary COPY, binary results):
 * int16 ndigits, int16 weight, uint16 sign, uint16 dscale, then ndigits
 * base-10000 int16 digits, all big-endian; the value is
 * sum(digit[i] * 10000^(weight - i)). len must be exactly 8 + 2 * ndigits.
 * Gives ERR_INVALID for a short or long buffer, negative ndigits, a digit
 * outside 0..9999, NaN (0xC000), +-Infinity (0xD000, 0xF000) or any other
 * sign word, a dscale above 0x3FFF, nonzero digits beyond dscale or beyond
 * DEC_SCALE fraction digits (they would be lost), and values past
 * DEC_INT_DIGITS. On error *out is left unchanged.
 */
int dec_from_pg_binary(const void *buf, size_t len, dec_t *out);

/*
 * Writes v with exactly `places` (0..DEC_SCALE) fraction digits into buf,
 * NUL-terminated: "-12.30", "0.000", "7". Extra digits are rounded half away
 * from zero (as PostgreSQL's round() does); a result of zero never gets a
 * '-'. Gives ERR_INVALID when places > DEC_SCALE or size is too small (a
 * buffer of DEC_STR_MAX bytes is always enough); buf is then left as "" if
 * size > 0.
 */
int dec_format(dec_t v, unsigned places, char *buf, size_t size);

/* The integer i as a decimal; every int64_t fits. */
dec_t dec_from_int(int64_t i);

/* v in millionths (v * 10^DEC_SCALE), for integer ordering such as radix sort keys. */
__int128 dec_to_units(dec_t v);
/* *out = units / 10^DEC_SCALE; ERR_INVALID (and *out unchanged) past DEC_INT_DIGITS. */
int dec_from_units(__int128 units, dec_t *out);

/* *out = a + b, a - b; ERR_INVALID (and *out unchanged) if out of range. */
int dec_add(dec_t a, dec_t b, dec_t *out);
int dec_sub(dec_t a, dec_t b, dec_t *out);

/* *out = a * k; ERR_INVALID (and *out unchanged) if out of range. */
int dec_mul_int(dec_t a, int64_t k, dec_t *out);

/* -1, 0 or 1 as a <, == or > b. */
int dec_cmp(dec_t a, dec_t b);

/* 1 if v is zero, else 0. */
int dec_is_zero(dec_t v);

/*
 * Compares the exact product a * share with b, without rounding the product
 * and without any overflow: -1, 0 or 1 as a * share <, == or > b. This is
 * how "partial sum < 0.80 of the total" is decided: dec_cmp_mul(total,
 * share, partial) > 0.
 */
int dec_cmp_mul(dec_t a, dec_t share, dec_t b);

/* 1 if a * share < b exactly, else 0 (dec_cmp_mul(a, share, b) < 0). */
int dec_mul_lt(dec_t a, dec_t share, dec_t b);

#endif
