/*
 * common/jx.c - small JSON helpers: merge patch, base64url, pagination
 * cursors, RFC 3339 timestamps, compact dumps.
 *
 * Everything here is a pure function of its arguments: no globals, no
 * locale, no floating point, no clock. Allocation goes through jansson and
 * malloc; returned strings belong to the caller and are released with
 * free(), returned jansson values are new references. See jx.h for the
 * exact ownership rule of jx_merge_patch(), which reuses its target.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/jx.h"

/* --- RFC 7396 merge patch --------------------------------------------- */

json_t *jx_merge_patch(json_t *target, const json_t *patch)
{
    const char *key;
    size_t keylen;
    json_t *value;

    if (!json_is_object(patch)) {
        json_decref(target);
        return json_deep_copy(patch);
    }
    if (!json_is_object(target)) {
        json_decref(target);
        if ((target = json_object()) == NULL)
            return NULL;
    }
    /* The foreach macro wants a non-const object; it only reads it. */
    json_object_keylen_foreach((json_t *)patch, key, keylen, value)
    {
        json_t *merged;

        if (json_is_null(value)) {
            json_object_deln(target, key, keylen); /* absent already is fine */
            continue;
        }
        /* The recursive call consumes a reference, so lend it one of its own. */
        merged = jx_merge_patch(json_incref(json_object_getn(target, key, keylen)), value);
        if (merged == NULL || json_object_setn_new(target, key, keylen, merged) != 0) {
            json_decref(target);
            return NULL;
        }
    }
    return target;
}

/* --- base64url ---------------------------------------------------------- */

static const char B64URL[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

size_t jx_b64url_encode(const void *src, size_t len, char *dst, size_t dstlen)
{
    const unsigned char *in = src;
    size_t need = JX_B64URL_ENCLEN(len), i, o = 0;

    if (dstlen <= need) {
        if (dstlen > 0)
            dst[0] = '\0';
        return need;
    }
    for (i = 0; i + 3 <= len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        dst[o++] = B64URL[v >> 18];
        dst[o++] = B64URL[(v >> 12) & 63];
        dst[o++] = B64URL[(v >> 6) & 63];
        dst[o++] = B64URL[v & 63];
    }
    if (len - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        dst[o++] = B64URL[v >> 18];
        dst[o++] = B64URL[(v >> 12) & 63];
    } else if (len - i == 2) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        dst[o++] = B64URL[v >> 18];
        dst[o++] = B64URL[(v >> 12) & 63];
        dst[o++] = B64URL[(v >> 6) & 63];
    }
    dst[o] = '\0';
    return o;
}

/* The 6-bit value of a base64url character, or -1. */
static int b64url_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    return -1;
}

int jx_b64url_decode(const char *src, size_t len, void *dst, size_t dstlen, size_t *outlen)
{
    unsigned char *out = dst;
    size_t i, o = 0, rest = len % 4;
    uint32_t v = 0;

    if (rest == 1 || JX_B64URL_DECLEN(len) > dstlen)
        return ERR_INVALID;
    for (i = 0; i < len; ++i) {
        int d = b64url_value((unsigned char)src[i]);
        if (d < 0)
            return ERR_INVALID;
        v = v << 6 | (uint32_t)d;
        if (i % 4 == 3) {
            out[o++] = (unsigned char)(v >> 16);
            out[o++] = (unsigned char)(v >> 8);
            out[o++] = (unsigned char)v;
            v = 0;
        }
    }
    /*
     * A tail of 2 characters carries 12 bits for 1 byte, 3 carry 18 bits for
     * 2 bytes; the leftover 4 or 2 bits must be zero or two spellings would
     * decode to the same bytes.
     */
    if (rest == 2) {
        if (v & 0xf)
            return ERR_INVALID;
        out[o++] = (unsigned char)(v >> 4);
    } else if (rest == 3) {
        if (v & 0x3)
            return ERR_INVALID;
        out[o++] = (unsigned char)(v >> 10);
        out[o++] = (unsigned char)(v >> 2);
    }
    if (outlen != NULL)
        *outlen = o;
    return 0;
}

/* --- pagination cursors ------------------------------------------------- */

char *jx_cursor_encode(const json_t *state)
{
    char *dumped, *cursor = NULL;
    size_t len, enclen;

    if (!json_is_object(state))
        return NULL;
    /* Sorted keys make equal states give equal cursors, which keeps caches and tests simple. */
    if ((dumped = json_dumps(state, JSON_COMPACT | JSON_SORT_KEYS)) == NULL)
        return NULL;
    len = strlen(dumped);
    enclen = JX_B64URL_ENCLEN(len);
    if (enclen <= JX_CURSOR_MAX && (cursor = malloc(enclen + 1)) != NULL)
        jx_b64url_encode(dumped, len, cursor, enclen + 1);
    free(dumped);
    return cursor;
}

json_t *jx_cursor_decode(const char *s, size_t len)
{
    unsigned char buf[JX_B64URL_DECLEN(JX_CURSOR_MAX)];
    size_t n;
    json_t *state;

    if (s == NULL || len == 0 || len > JX_CURSOR_MAX)
        return NULL;
    if (jx_b64url_decode(s, len, buf, sizeof(buf), &n) != 0)
        return NULL;
    /* Without JSON_ALLOW_NUL jansson also refuses "\u0000" inside strings. */
    if ((state = json_loadb((const char *)buf, n, JSON_REJECT_DUPLICATES, NULL)) == NULL)
        return NULL;
    if (!json_is_object(state)) {
        json_decref(state);
        return NULL;
    }
    return state;
}

/* --- RFC 3339 ----------------------------------------------------------- */

/* Reads exactly n ASCII digits at s; -1 if any of them is not a digit. */
static int read_digits(const char *s, int n)
{
    int v = 0, i;

    for (i = 0; i < n; ++i) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

static int is_leap_year(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(int y, int m)
{
    static const unsigned char DAYS[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap_year(y) ? 29 : DAYS[m - 1];
}

/* Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar (H. Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    int64_t era, yoe, doy, doe;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = y - era * 400;
    doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

int jx_parse_rfc3339(const char *s, int64_t *unix_seconds, int32_t *micros)
{
    int year, month, day, hour, minute, second, us = 0, off = 0;
    const char *p;

    if (s == NULL)
        return ERR_INVALID;
    /* Fixed-width part "YYYY-MM-DDTHH:MM:SS"; the checks stop at the first NUL, so no overread. */
    if ((year = read_digits(s, 4)) < 0 || s[4] != '-' || (month = read_digits(s + 5, 2)) < 0 || s[7] != '-' ||
        (day = read_digits(s + 8, 2)) < 0 || (s[10] != 'T' && s[10] != 't') || (hour = read_digits(s + 11, 2)) < 0 ||
        s[13] != ':' || (minute = read_digits(s + 14, 2)) < 0 || s[16] != ':' || (second = read_digits(s + 17, 2)) < 0)
        return ERR_INVALID;
    if (year < 1 || month < 1 || month > 12 || day < 1 || day > days_in_month(year, month) || hour > 23 ||
        minute > 59 || second > 59)
        return ERR_INVALID;
    p = s + 19;
    if (*p == '.') {
        int ndigits = 0;
        for (++p; *p >= '0' && *p <= '9'; ++p) {
            if (++ndigits > 6)
                return ERR_INVALID;
            us = us * 10 + (*p - '0');
        }
        if (ndigits == 0)
            return ERR_INVALID;
        for (; ndigits < 6; ++ndigits)
            us *= 10;
    }
    if (*p == 'Z' || *p == 'z') {
        ++p;
    } else if (*p == '+' || *p == '-') {
        int oh, om;
        if ((oh = read_digits(p + 1, 2)) < 0 || p[3] != ':' || (om = read_digits(p + 4, 2)) < 0 || oh > 23 || om > 59)
            return ERR_INVALID;
        off = (oh * 60 + om) * 60;
        if (*p == '-')
            off = -off;
        p += 6;
    } else {
        return ERR_INVALID;
    }
    if (*p != '\0')
        return ERR_INVALID;
    /* The string shows local time; UTC is local time minus the offset. */
    if (unix_seconds != NULL)
        *unix_seconds = days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second - off;
    if (micros != NULL)
        *micros = us;
    return 0;
}

int jx_is_rfc3339(const char *s)
{
    return jx_parse_rfc3339(s, NULL, NULL) == 0;
}

/* --- dumping ------------------------------------------------------------ */

char *jx_dump_compact(const json_t *v)
{
    if (v == NULL)
        return NULL;
    return json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
}

/* --- JSON numbers as decimals ----------------------------------------------- */

char *jx_number_decimal(const json_t *v)
{
    char buf[64];
    if (json_is_integer(v)) {
        snprintf(buf, sizeof(buf), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        return strdup(buf);
    }
    if (!json_is_real(v))
        return NULL;
    double d = json_real_value(v);
    if (!isfinite(d))
        return NULL;
    if (d == 0)
        return strdup("0");
    /* The fewest significant digits that read back exactly: "d.ddde[+-]X". */
    int p;
    for (p = 1; p <= 15; p++) {
        snprintf(buf, sizeof(buf), "%.*e", p - 1, d);
        if (strtod(buf, NULL) == d)
            break;
    }
    if (p > 15)
        return NULL;
    char digits[20];
    size_t nd = 0;
    const char *c = buf;
    int neg = *c == '-';
    c += neg;
    for (; *c != 'e'; c++)
        if (*c != '.')
            digits[nd++] = *c;
    int exp10 = atoi(c + 1);
    while (nd > 1 && digits[nd - 1] == '0')
        nd--;
    if (exp10 > 40 || exp10 < -40)
        return NULL;
    /* The value is 0.digits x 10^(exp10 + 1). */
    char *out = malloc(nd + 48), *o = out;
    if (out == NULL)
        return NULL;
    if (neg)
        *o++ = '-';
    if (exp10 < 0) {
        *o++ = '0';
        *o++ = '.';
        for (int z = 0; z < -exp10 - 1; z++)
            *o++ = '0';
        memcpy(o, digits, nd);
        o += nd;
    } else {
        for (int k = 0; k <= exp10; k++)
            *o++ = (size_t)k < nd ? digits[k] : '0';
        if (nd > (size_t)exp10 + 1) {
            *o++ = '.';
            memcpy(o, digits + exp10 + 1, nd - (size_t)exp10 - 1);
            o += nd - (size_t)exp10 - 1;
        }
    }
    *o = '\0';
    return out;
}
