/*
 * api/validate.c - declarative validation of JSON request bodies, reporting
 * every problem at once.
 *
 * validate_object() walks a field table and the document side by side and
 * appends one {"field","code","message"} per problem through
 * api_error_add(); it never stops at the first one. Field paths and
 * messages are built in malloc'ed scratch strings that live only for the
 * duration of one report (the errors array keeps jansson copies), and an
 * allocation failure aborts, as pool allocations do. The document is only
 * read, except by validate_trim(). Decimals are checked here for their
 * shape and digit counts and then parsed with common/decimal.h, so every
 * accepted value is exactly representable as a dec_t.
 *
 * The embedded code lists (ISO 3166-1 alpha-2, ISO 4217 List One) are
 * reference data that changes a few times a decade; update them from the
 * maintenance agencies' lists, keep them sorted, and adjust the counts in
 * tests/unit/api/validate_test.c.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "api/validate.h"
#include "common/decimal.h"
#include "common/err.h"
#include "common/jx.h"

/* Longest unknown member name echoed back in a field path, in bytes. */
#define UNKNOWN_NAME_MAX 100

/* The base mode without option bits. */
#define MODE_BASE(mode) ((mode)&0xff)

/* --- reference data ----------------------------------------------------- */

/* ISO 3166-1 alpha-2, the 249 officially assigned codes (no user-assigned codes such as XK), sorted. */
static const char COUNTRIES[][3] = {
    "AD", "AE", "AF", "AG", "AI", "AL", "AM", "AO", "AQ", "AR", "AS", "AT", "AU", "AW", "AX", "AZ", "BA", "BB",
    "BD", "BE", "BF", "BG", "BH", "BI", "BJ", "BL", "BM", "BN", "BO", "BQ", "BR", "BS", "BT", "BV", "BW", "BY",
    "BZ", "CA", "CC", "CD", "CF", "CG", "CH", "CI", "CK", "CL", "CM", "CN", "CO", "CR", "CU", "CV", "CW", "CX",
    "CY", "CZ", "DE", "DJ", "DK", "DM", "DO", "DZ", "EC", "EE", "EG", "EH", "ER", "ES", "ET", "FI", "FJ", "FK",
    "FM", "FO", "FR", "GA", "GB", "GD", "GE", "GF", "GG", "GH", "GI", "GL", "GM", "GN", "GP", "GQ", "GR", "GS",
    "GT", "GU", "GW", "GY", "HK", "HM", "HN", "HR", "HT", "HU", "ID", "IE", "IL", "IM", "IN", "IO", "IQ", "IR",
    "IS", "IT", "JE", "JM", "JO", "JP", "KE", "KG", "KH", "KI", "KM", "KN", "KP", "KR", "KW", "KY", "KZ", "LA",
    "LB", "LC", "LI", "LK", "LR", "LS", "LT", "LU", "LV", "LY", "MA", "MC", "MD", "ME", "MF", "MG", "MH", "MK",
    "ML", "MM", "MN", "MO", "MP", "MQ", "MR", "MS", "MT", "MU", "MV", "MW", "MX", "MY", "MZ", "NA", "NC", "NE",
    "NF", "NG", "NI", "NL", "NO", "NP", "NR", "NU", "NZ", "OM", "PA", "PE", "PF", "PG", "PH", "PK", "PL", "PM",
    "PN", "PR", "PS", "PT", "PW", "PY", "QA", "RE", "RO", "RS", "RU", "RW", "SA", "SB", "SC", "SD", "SE", "SG",
    "SH", "SI", "SJ", "SK", "SL", "SM", "SN", "SO", "SR", "SS", "ST", "SV", "SX", "SY", "SZ", "TC", "TD", "TF",
    "TG", "TH", "TJ", "TK", "TL", "TM", "TN", "TO", "TR", "TT", "TV", "TW", "TZ", "UA", "UG", "UM", "US", "UY",
    "UZ", "VA", "VC", "VE", "VG", "VI", "VN", "VU", "WF", "WS", "YE", "YT", "ZA", "ZM", "ZW",
};

/*
 * ISO 4217 List One (currencies and funds) as published 2026-09-17, sorted,
 * without XTS (reserved for testing) and XXX (no currency). Withdrawn
 * recently and therefore absent: HRK (2023), SLL, ZWL (2024), ANG (2025,
 * replaced by XCG), BGN (2026, euro). Added recently: VED, SLE, ZWG, XCG, XAD.
 */
static const char CURRENCIES[][4] = {
    "AED", "AFN", "ALL", "AMD", "AOA", "ARS", "AUD", "AWG", "AZN", "BAM", "BBD", "BDT", "BHD", "BIF", "BMD", "BND",
    "BOB", "BOV", "BRL", "BSD", "BTN", "BWP", "BYN", "BZD", "CAD", "CDF", "CHE", "CHF", "CHW", "CLF", "CLP", "CNY",
    "COP", "COU", "CRC", "CUP", "CVE", "CZK", "DJF", "DKK", "DOP", "DZD", "EGP", "ERN", "ETB", "EUR", "FJD", "FKP",
    "GBP", "GEL", "GHS", "GIP", "GMD", "GNF", "GTQ", "GYD", "HKD", "HNL", "HTG", "HUF", "IDR", "ILS", "INR", "IQD",
    "IRR", "ISK", "JMD", "JOD", "JPY", "KES", "KGS", "KHR", "KMF", "KPW", "KRW", "KWD", "KYD", "KZT", "LAK", "LBP",
    "LKR", "LRD", "LSL", "LYD", "MAD", "MDL", "MGA", "MKD", "MMK", "MNT", "MOP", "MRU", "MUR", "MVR", "MWK", "MXN",
    "MXV", "MYR", "MZN", "NAD", "NGN", "NIO", "NOK", "NPR", "NZD", "OMR", "PAB", "PEN", "PGK", "PHP", "PKR", "PLN",
    "PYG", "QAR", "RON", "RSD", "RUB", "RWF", "SAR", "SBD", "SCR", "SDG", "SEK", "SGD", "SHP", "SLE", "SOS", "SRD",
    "SSP", "STN", "SVC", "SYP", "SZL", "THB", "TJS", "TMT", "TND", "TOP", "TRY", "TTD", "TWD", "TZS", "UAH", "UGX",
    "USD", "USN", "UYI", "UYU", "UYW", "UZS", "VED", "VES", "VND", "VUV", "WST", "XAD", "XAF", "XAG", "XAU", "XBA",
    "XBB", "XBC", "XBD", "XCD", "XCG", "XDR", "XOF", "XPD", "XPF", "XPT", "XSU", "XUA", "YER", "ZAR", "ZMW", "ZWG",
};

static int cmp_code2(const void *key, const void *elem)
{
    return memcmp(key, elem, 2);
}

static int cmp_code3(const void *key, const void *elem)
{
    return memcmp(key, elem, 3);
}

int validate_is_country(const char *s, size_t len)
{
    return len == 2 && bsearch(s, COUNTRIES, VALIDATE_COUNT(COUNTRIES), sizeof(COUNTRIES[0]), cmp_code2) != NULL;
}

int validate_is_currency(const char *s, size_t len)
{
    return len == 3 && bsearch(s, CURRENCIES, VALIDATE_COUNT(CURRENCIES), sizeof(CURRENCIES[0]), cmp_code3) != NULL;
}

/* --- scalar checks ------------------------------------------------------ */

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static int is_alnum(char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

int validate_is_email(const char *s, size_t len)
{
    static const char LOCAL_SPECIALS[] = "!#$%&'*+/=?^_`{|}~-";
    size_t at = len, i, start, last_start = 0, nlabels = 0;
    const char *d;
    size_t dlen;

    if (s == NULL || len > 254)
        return 0;
    for (i = 0; i < len; ++i) {
        if (s[i] == '@') {
            if (at != len)
                return 0;
            at = i;
        }
    }
    if (at == len || at == 0 || at > 64)
        return 0;
    for (i = 0; i < at; ++i) {
        char c = s[i];
        if (c == '.') {
            if (i == 0 || i == at - 1 || s[i - 1] == '.')
                return 0;
        } else if (!is_alnum(c) && (c == '\0' || strchr(LOCAL_SPECIALS, c) == NULL)) {
            return 0;
        }
    }
    d = s + at + 1;
    dlen = len - at - 1;
    if (dlen == 0)
        return 0;
    for (start = 0, i = 0; i <= dlen; ++i) {
        if (i == dlen || d[i] == '.') {
            if (i == start || i - start > 63 || d[start] == '-' || d[i - 1] == '-')
                return 0;
            ++nlabels;
            last_start = start;
            start = i + 1;
        } else if (!is_alnum(d[i]) && d[i] != '-') {
            return 0;
        }
    }
    if (nlabels < 2)
        return 0;
    /* A numeric top-level label means an IP address, not a domain. */
    for (i = last_start; i < dlen; ++i)
        if (!is_digit(d[i]))
            return 1;
    return 0;
}

int validate_is_phone(const char *s, size_t len)
{
    size_t i, digits = 0;
    int open = 0;

    if (s == NULL || len < 3 || len > 32)
        return 0;
    for (i = 0; i < len; ++i) {
        char c = s[i];
        if (is_digit(c)) {
            ++digits;
        } else if (c == '+') {
            if (i != 0)
                return 0;
        } else if (c == '(') {
            if (open)
                return 0;
            open = 1;
        } else if (c == ')') {
            if (!open || s[i - 1] == '(')
                return 0;
            open = 0;
        } else if (c != ' ' && c != '-' && c != '.') {
            return 0;
        }
    }
    if (open || digits < 3)
        return 0;
    if (!(s[0] == '+' || s[0] == '(' || is_digit(s[0])) || !(is_digit(s[len - 1]) || s[len - 1] == ')'))
        return 0;
    return 1;
}

typedef enum { DECIMAL_OK, DECIMAL_FORMAT, DECIMAL_INT_DIGITS, DECIMAL_SCALE } decimal_check_t;

/* Judges s[0..len) as a decimal with the given limits; on DECIMAL_OK the value is in *out. */
static decimal_check_t check_decimal(const char *s, size_t len, int int_digits, int scale, dec_t *out)
{
    size_t i = 0, start, nint, nfrac = 0;

    if (i < len && s[i] == '-')
        ++i;
    for (start = i; i < len && is_digit(s[i]); ++i)
        ;
    nint = i - start;
    /* One spelling per value, as in JSON numbers: no "", "-", ".5" and no leading zeros. */
    if (nint == 0 || (nint > 1 && s[start] == '0'))
        return DECIMAL_FORMAT;
    if (i < len && s[i] == '.') {
        size_t fstart = ++i;
        for (; i < len && is_digit(s[i]); ++i)
            ;
        if ((nfrac = i - fstart) == 0)
            return DECIMAL_FORMAT;
    }
    if (i != len)
        return DECIMAL_FORMAT;
    if (nint > (size_t)int_digits)
        return DECIMAL_INT_DIGITS;
    if (nfrac > (size_t)scale)
        return DECIMAL_SCALE;
    /* Cannot fail within decimal.h's limits, which validate_table_check() enforces. */
    if (dec_parse(s, len, (unsigned)scale, out) != 0)
        return DECIMAL_FORMAT;
    return DECIMAL_OK;
}

int validate_decimal_str(const char *s, int int_digits, int scale)
{
    dec_t v;

    if (s == NULL || int_digits < 1 || int_digits > DEC_INT_DIGITS || scale < 0 || scale > DEC_SCALE)
        return ERR_INVALID;
    return check_decimal(s, strlen(s), int_digits, scale, &v) == DECIMAL_OK ? 0 : ERR_INVALID;
}

int validate_id_value(const json_t *v, int64_t *out)
{
    if (!json_is_integer(v) || json_integer_value(v) < 1)
        return ERR_INVALID;
    if (out != NULL)
        *out = json_integer_value(v);
    return 0;
}

/*
 * Checks that s[0..len) is valid UTF-8 without NUL or control characters
 * (C0, DEL and C1; VT_TEXT lets '\n' and '\t' through) and counts its code
 * points. jansson already guarantees UTF-8 for what it parsed, but values
 * built with the _nocheck setters are not, and NUL comes through "\u0000".
 * Returns NULL, or the message to report.
 */
static const char *scan_text(const char *s, size_t len, int multiline, size_t *ncodepoints)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + len;
    size_t n = 0, k, i;

    while (p < end) {
        uint32_t c = *p;
        if (c < 0x80) {
            k = 1;
        } else if (c >= 0xc2 && c <= 0xdf) {
            k = 2;
            c &= 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            k = 3;
            c &= 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            k = 4;
            c &= 0x07;
        } else {
            return "must be valid UTF-8";
        }
        if ((size_t)(end - p) < k)
            return "must be valid UTF-8";
        for (i = 1; i < k; ++i) {
            if ((p[i] & 0xc0) != 0x80)
                return "must be valid UTF-8";
            c = c << 6 | (p[i] & 0x3f);
        }
        if ((k == 3 && (c < 0x800 || (c >= 0xd800 && c <= 0xdfff))) || (k == 4 && (c < 0x10000 || c > 0x10ffff)))
            return "must be valid UTF-8";
        if (c == 0)
            return "must not contain NUL characters";
        if ((c < 0x20 && !(multiline && (c == '\n' || c == '\t'))) || (c >= 0x7f && c <= 0x9f))
            return multiline ? "must not contain control characters other than line breaks and tabs"
                             : "must not contain control characters";
        p += k;
        ++n;
    }
    *ncodepoints = n;
    return NULL;
}

static int is_trim_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static void trim_span(const char **s, size_t *len)
{
    while (*len > 0 && is_trim_space((*s)[0])) {
        ++*s;
        --*len;
    }
    while (*len > 0 && is_trim_space((*s)[*len - 1]))
        --*len;
}

/* --- reporting ---------------------------------------------------------- */

typedef struct st_vctx_t {
    json_t *errors;
    int count;
} vctx_t;

static void *check_alloc(void *p)
{
    /* Like pool allocations, running out of memory here is fatal. */
    if (p == NULL)
        abort();
    return p;
}

__attribute__((format(printf, 2, 3))) static char *format_alloc(char **out, const char *fmt, ...)
{
    va_list ap;
    int r;

    va_start(ap, fmt);
    r = vasprintf(out, fmt, ap);
    va_end(ap);
    if (r < 0)
        abort();
    return *out;
}

__attribute__((format(printf, 4, 5))) static void report(vctx_t *cx, const char *path, const char *code,
                                                         const char *fmt, ...)
{
    va_list ap;
    char *msg;
    int r;

    va_start(ap, fmt);
    r = vasprintf(&msg, fmt, ap);
    va_end(ap);
    if (r < 0)
        abort();
    api_error_add(cx->errors, path, code, msg);
    free(msg);
    ++cx->count;
}

/* "prefix.name", or "name" at top level; the result is malloc'ed. */
static char *member_path(const char *prefix, const char *name, size_t namelen)
{
    char *path;

    if (prefix == NULL || *prefix == '\0')
        return check_alloc(strndup(name, namelen));
    return format_alloc(&path, "%s.%.*s", prefix, (int)namelen, name);
}

/* "prefix[i]"; the result is malloc'ed. */
static char *item_path(const char *prefix, size_t i)
{
    char *path;
    return format_alloc(&path, "%s[%zu]", prefix, i);
}

static const char *plural(size_t n)
{
    return n == 1 ? "" : "s";
}

static void report_length(vctx_t *cx, const char *path, const validate_field_t *f, size_t n)
{
    if (n < f->min_len) {
        if (f->min_len == 1)
            report(cx, path, VALIDATE_E_TOO_SHORT, "must not be empty");
        else
            report(cx, path, VALIDATE_E_TOO_SHORT, "must be at least %zu characters", f->min_len);
    } else {
        report(cx, path, VALIDATE_E_TOO_LONG, "must be at most %zu character%s", f->max_len, plural(f->max_len));
    }
}

static void report_range(vctx_t *cx, const char *path, const validate_field_t *f)
{
    if (f->min_value == INT64_MIN)
        report(cx, path, VALIDATE_E_OUT_OF_RANGE, "must be at most %" PRId64, f->max_value);
    else if (f->max_value == INT64_MAX)
        report(cx, path, VALIDATE_E_OUT_OF_RANGE, "must be at least %" PRId64, f->min_value);
    else
        report(cx, path, VALIDATE_E_OUT_OF_RANGE, "must be between %" PRId64 " and %" PRId64, f->min_value,
               f->max_value);
}

static void report_enum(vctx_t *cx, const char *path, const validate_field_t *f)
{
    size_t len = 1, i;
    char *list, *p;

    for (i = 0; f->enum_values[i] != NULL; ++i)
        len += strlen(f->enum_values[i]) + 2;
    p = list = check_alloc(malloc(len));
    *p = '\0';
    for (i = 0; f->enum_values[i] != NULL; ++i)
        p += sprintf(p, "%s%s", i == 0 ? "" : ", ", f->enum_values[i]);
    report(cx, path, VALIDATE_E_INVALID_VALUE, "must be one of %s", list);
    free(list);
}

/* --- the walk ----------------------------------------------------------- */

static void check_members(vctx_t *cx, const json_t *obj, const validate_field_t *fields, size_t nfields, unsigned mode,
                          const char *prefix);
static void check_present(vctx_t *cx, const validate_field_t *f, const json_t *v, unsigned mode, const char *path);

/* The decimal types: digits before and after the point, and the range. */
static void check_decimal_value(vctx_t *cx, const validate_field_t *f, const char *s, size_t len, const char *path)
{
    dec_t d;
    switch (check_decimal(s, len, f->int_digits, f->scale, &d)) {
    case DECIMAL_OK:
        if ((f->flags & VF_RANGE) &&
            (dec_cmp(d, dec_from_int(f->min_value)) < 0 || dec_cmp(d, dec_from_int(f->max_value)) > 0))
            report_range(cx, path, f);
        break;
    case DECIMAL_FORMAT:
        report(cx, path, VALIDATE_E_INVALID_FORMAT,
               "must be a decimal number written like \"1234.50\", without exponent, '+' or spaces");
        break;
    case DECIMAL_INT_DIGITS:
        report(cx, path, VALIDATE_E_OUT_OF_RANGE, "must have at most %d digit%s before the decimal point",
               f->int_digits, plural((size_t)f->int_digits));
        break;
    case DECIMAL_SCALE:
        if (f->scale == 0)
            report(cx, path, VALIDATE_E_OUT_OF_RANGE, "must be a whole number");
        else
            report(cx, path, VALIDATE_E_OUT_OF_RANGE, "must have at most %d digit%s after the decimal point", f->scale,
                   plural((size_t)f->scale));
        break;
    }
}

/* The string types: shape, characters and length, then what the type means. */
static void check_string(vctx_t *cx, const validate_field_t *f, const json_t *v, const char *path)
{
    const char *s, *msg;
    size_t len, n;

    if (f->type == VT_DECIMAL && json_is_number(v)) {
        /* A JSON number stands for the decimal it reads as; validate_trim() stores that text. */
        char *text = jx_number_decimal(v);
        if (text == NULL)
            report(cx, path, VALIDATE_E_INVALID_TYPE,
                   "must be a decimal number: a string such as \"12.50\", or a JSON number of at most 15 significant"
                   " digits");
        else
            check_decimal_value(cx, f, text, strlen(text), path);
        free(text);
        return;
    }
    if (!json_is_string(v)) {
        if (f->type == VT_DECIMAL)
            report(cx, path, VALIDATE_E_INVALID_TYPE, "must be a string holding a decimal number, such as \"12.50\"");
        else
            report(cx, path, VALIDATE_E_INVALID_TYPE, "must be a string");
        return;
    }
    s = json_string_value(v);
    len = json_string_length(v);
    if (f->flags & VF_TRIM)
        trim_span(&s, &len);
    if ((msg = scan_text(s, len, f->type == VT_TEXT, &n)) != NULL) {
        report(cx, path, VALIDATE_E_INVALID_FORMAT, "%s", msg);
        return;
    }
    if (n < f->min_len || (f->max_len != 0 && n > f->max_len)) {
        report_length(cx, path, f, n);
        return;
    }

    switch (f->type) {
    case VT_EMAIL:
        if (!validate_is_email(s, len))
            report(cx, path, VALIDATE_E_INVALID_FORMAT, "must be an email address, such as name@example.com");
        break;
    case VT_PHONE:
        if (!validate_is_phone(s, len))
            report(cx, path, VALIDATE_E_INVALID_FORMAT,
                   "must be a phone number of digits, spaces, hyphens, dots and parentheses, such as +49 30 1234567");
        break;
    case VT_ENUM: {
        size_t i;
        for (i = 0; f->enum_values[i] != NULL; ++i)
            if (strlen(f->enum_values[i]) == len && memcmp(f->enum_values[i], s, len) == 0)
                break;
        if (f->enum_values[i] == NULL)
            report_enum(cx, path, f);
        break;
    }
    case VT_DECIMAL:
        check_decimal_value(cx, f, s, len, path);
        break;
    case VT_TIMESTAMP: {
        /* jx_is_rfc3339() wants a NUL-terminated string; no valid timestamp is longer than 32 bytes. */
        char buf[40];
        int ok = 0;
        if (len < sizeof(buf)) {
            memcpy(buf, s, len);
            buf[len] = '\0';
            ok = jx_is_rfc3339(buf);
        }
        if (!ok)
            report(cx, path, VALIDATE_E_INVALID_FORMAT,
                   "must be an RFC 3339 timestamp with an offset, such as 2024-05-01T12:00:00Z");
        break;
    }
    case VT_DATE:
        if (!validate_is_date(s, len))
            report(cx, path, VALIDATE_E_INVALID_FORMAT, "must be a date YYYY-MM-DD, such as 2024-05-01");
        break;
    case VT_COUNTRY:
        if (!validate_is_country(s, len))
            report(cx, path, VALIDATE_E_INVALID_FORMAT, "must be an ISO 3166-1 alpha-2 country code, such as DE");
        break;
    case VT_CURRENCY:
        if (!validate_is_currency(s, len))
            report(cx, path, VALIDATE_E_INVALID_FORMAT, "must be an ISO 4217 currency code, such as EUR");
        break;
    default:
        break;
    }
}

static void check_array(vctx_t *cx, const validate_field_t *f, const json_t *v, unsigned mode, const char *path)
{
    validate_field_t string_item;
    const validate_field_t *item = f->fields;
    size_t n, i;

    if (!json_is_array(v)) {
        report(cx, path, VALIDATE_E_INVALID_TYPE, "must be an array");
        return;
    }
    n = json_array_size(v);
    if (f->max_len != 0 && n > f->max_len) {
        /* Judging the items of an oversized array could flood the answer; the count is enough. */
        report(cx, path, VALIDATE_E_TOO_MANY, "must have at most %zu item%s", f->max_len, plural(f->max_len));
        return;
    }
    if (n < f->min_len)
        report(cx, path, VALIDATE_E_TOO_SHORT, "must have at least %zu item%s", f->min_len, plural(f->min_len));
    if (f->type == VT_STRING_ARRAY) {
        memset(&string_item, 0, sizeof(string_item));
        string_item.type = VT_STRING;
        string_item.flags = f->flags & VF_TRIM;
        string_item.min_len = f->item_min_len;
        string_item.max_len = f->item_max_len;
        item = &string_item;
    }
    if (item == NULL)
        return;
    /* A merge patch replaces arrays whole, so their items are judged as complete values. */
    if (MODE_BASE(mode) == VALIDATE_PATCH)
        mode = (mode & ~0xffu) | VALIDATE_REPLACE;
    for (i = 0; i < n; ++i) {
        char *ipath = item_path(path, i);
        check_present(cx, item, json_array_get(v, i), mode, ipath);
        free(ipath);
    }
}

/* Judges a value that is not JSON null. */
static void check_value(vctx_t *cx, const validate_field_t *f, const json_t *v, unsigned mode, const char *path)
{
    switch (f->type) {
    case VT_STRING:
    case VT_TEXT:
    case VT_EMAIL:
    case VT_PHONE:
    case VT_ENUM:
    case VT_DECIMAL:
    case VT_TIMESTAMP:
    case VT_DATE:
    case VT_COUNTRY:
    case VT_CURRENCY:
        check_string(cx, f, v, path);
        break;
    case VT_BOOL:
        if (!json_is_boolean(v))
            report(cx, path, VALIDATE_E_INVALID_TYPE, "must be true or false");
        break;
    case VT_INT:
    case VT_ID: {
        json_int_t i;
        if (!json_is_integer(v)) {
            report(cx, path, VALIDATE_E_INVALID_TYPE,
                   f->type == VT_ID ? "must be a positive integer" : "must be an integer");
            break;
        }
        i = json_integer_value(v);
        if (f->type == VT_ID && i < 1)
            report(cx, path, VALIDATE_E_OUT_OF_RANGE, "must be a positive integer");
        else if ((f->flags & VF_RANGE) && (i < f->min_value || i > f->max_value))
            report_range(cx, path, f);
        break;
    }
    case VT_OBJECT:
        check_members(cx, v, f->fields, f->nfields, mode, path);
        break;
    case VT_ARRAY:
    case VT_STRING_ARRAY:
        check_array(cx, f, v, mode, path);
        break;
    case VT_JSON_OBJECT: {
        size_t size;
        if (!json_is_object(v)) {
            report(cx, path, VALIDATE_E_INVALID_TYPE, "must be an object");
            break;
        }
        /* With a NULL buffer json_dumpb() only measures. */
        size = json_dumpb(v, NULL, 0, JSON_COMPACT);
        if (f->max_bytes != 0 && size > f->max_bytes)
            report(cx, path, VALIDATE_E_TOO_LARGE, "must be at most %zu bytes when serialized as compact JSON",
                   f->max_bytes);
        break;
    }
    }
}

/* Judges a value that is present, possibly JSON null. */
static void check_present(vctx_t *cx, const validate_field_t *f, const json_t *v, unsigned mode, const char *path)
{
    if (!json_is_null(v)) {
        check_value(cx, f, v, mode, path);
    } else if (f->flags & VF_REQUIRED) {
        report(cx, path, VALIDATE_E_REQUIRED,
               MODE_BASE(mode) == VALIDATE_PATCH ? "is required and cannot be removed" : "is required");
    } else if (!(f->flags & VF_NULLABLE)) {
        report(cx, path, VALIDATE_E_INVALID_TYPE, "must not be null");
    }
}

static const validate_field_t *find_field(const validate_field_t *fields, size_t nfields, const char *key,
                                          size_t keylen)
{
    size_t i;

    for (i = 0; i < nfields; ++i)
        if (strlen(fields[i].name) == keylen && memcmp(fields[i].name, key, keylen) == 0)
            return &fields[i];
    return NULL;
}

/* The longest prefix of s[0..len) of at most max bytes that ends on a UTF-8 character boundary. */
static size_t utf8_clip(const char *s, size_t len, size_t max)
{
    if (len <= max)
        return len;
    while (max > 0 && ((unsigned char)s[max] & 0xc0) == 0x80)
        --max;
    return max;
}

static void check_members(vctx_t *cx, const json_t *obj, const validate_field_t *fields, size_t nfields, unsigned mode,
                          const char *prefix)
{
    const char *key;
    size_t keylen, i;
    json_t *value;

    if (!json_is_object(obj)) {
        report(cx, prefix != NULL ? prefix : "", VALIDATE_E_INVALID_TYPE, "must be an object");
        return;
    }
    for (i = 0; i < nfields; ++i) {
        const validate_field_t *f = &fields[i];
        const json_t *v = json_object_get(obj, f->name);
        char *path;

        if (f->flags & VF_READONLY) {
            if (v != NULL && !(mode & VALIDATE_ALLOW_READONLY)) {
                path = member_path(prefix, f->name, strlen(f->name));
                report(cx, path, VALIDATE_E_READ_ONLY, "is read-only and set by the server");
                free(path);
            }
            continue;
        }
        if (v == NULL) {
            if ((f->flags & VF_REQUIRED) && MODE_BASE(mode) != VALIDATE_PATCH) {
                path = member_path(prefix, f->name, strlen(f->name));
                report(cx, path, VALIDATE_E_REQUIRED, "is required");
                free(path);
            }
            continue;
        }
        path = member_path(prefix, f->name, strlen(f->name));
        check_present(cx, f, v, mode, path);
        free(path);
    }
    /* The foreach macro wants a non-const object; it only reads it. */
    json_object_keylen_foreach((json_t *)obj, key, keylen, value)
    {
        char *path, *shown = NULL;
        size_t n;

        if (find_field(fields, nfields, key, keylen) != NULL)
            continue;
        /* The name is the client's own text; clip it so a huge key cannot make a huge answer. */
        n = utf8_clip(key, keylen, UNKNOWN_NAME_MAX);
        if (n < keylen)
            format_alloc(&shown, "%.*s...", (int)n, key);
        path = shown != NULL ? member_path(prefix, shown, strlen(shown)) : member_path(prefix, key, keylen);
        report(cx, path, VALIDATE_E_UNKNOWN_FIELD, "is not a known field");
        free(path);
        free(shown);
    }
}

int validate_object(const json_t *obj, const validate_field_t *fields, size_t nfields, unsigned mode,
                    const char *prefix, json_t *errors)
{
    vctx_t cx = {errors, 0};

    check_members(&cx, obj, fields, nfields, mode, prefix);
    return cx.count;
}

/* --- trimming ----------------------------------------------------------- */

static void trim_string(json_t *v)
{
    const char *s;
    size_t len, n;

    if (!json_is_string(v))
        return;
    s = json_string_value(v);
    n = len = json_string_length(v);
    trim_span(&s, &n);
    /* json_string_setn() copies before it frees the old text, so s may point into it. */
    if (n != len)
        json_string_setn(v, s, n);
}

static void trim_value(const validate_field_t *f, json_t *v)
{
    size_t i;

    switch (f->type) {
    case VT_OBJECT:
        validate_trim(v, f->fields, f->nfields);
        break;
    case VT_ARRAY:
        if (f->fields != NULL && json_is_array(v))
            for (i = 0; i < json_array_size(v); ++i)
                trim_value(f->fields, json_array_get(v, i));
        break;
    case VT_STRING_ARRAY:
        if ((f->flags & VF_TRIM) && json_is_array(v))
            for (i = 0; i < json_array_size(v); ++i)
                trim_string(json_array_get(v, i));
        break;
    case VT_JSON_OBJECT:
        break;
    default:
        if (f->flags & VF_TRIM)
            trim_string(v);
        break;
    }
}

void validate_trim(json_t *obj, const validate_field_t *fields, size_t nfields)
{
    size_t i;

    if (!json_is_object(obj))
        return;
    for (i = 0; i < nfields; ++i) {
        json_t *v = json_object_get(obj, fields[i].name);
        if (v != NULL && fields[i].type == VT_DECIMAL && json_is_number(v)) {
            /* Money never travels as a float: the number becomes the decimal text it stands for. */
            char *text = jx_number_decimal(v);
            if (text != NULL)
                json_object_set_new(obj, fields[i].name, json_string(text));
            free(text);
        } else if (v != NULL) {
            trim_value(&fields[i], v);
        }
    }
}

/* --- table checks ------------------------------------------------------- */

static int check_table(const validate_field_t *fields, size_t nfields, const char *prefix, char *err, size_t errlen);

__attribute__((format(printf, 3, 4))) static int table_error(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (err != NULL && errlen > 0) {
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return ERR_INVALID;
}

static int check_field(const validate_field_t *f, const char *path, char *err, size_t errlen)
{
    char *sub;
    int ret;

    if ((unsigned)f->type > VT_JSON_OBJECT)
        return table_error(err, errlen, "Field \"%s\" has an unknown type %d.", path, (int)f->type);
    if ((f->flags & VF_REQUIRED) && (f->flags & (VF_NULLABLE | VF_READONLY)))
        return table_error(err, errlen, "Field \"%s\" is VF_REQUIRED and also VF_NULLABLE or VF_READONLY.", path);
    if (f->max_len != 0 && f->min_len > f->max_len)
        return table_error(err, errlen, "Field \"%s\" has min_len above max_len.", path);
    if ((f->flags & VF_RANGE) && (f->type != VT_INT && f->type != VT_ID && f->type != VT_DECIMAL))
        return table_error(err, errlen, "Field \"%s\" has VF_RANGE but is not a number.", path);
    if ((f->flags & VF_RANGE) && f->min_value > f->max_value)
        return table_error(err, errlen, "Field \"%s\" has min_value above max_value.", path);

    switch (f->type) {
    case VT_STRING:
    case VT_TEXT:
    case VT_ARRAY:
    case VT_STRING_ARRAY:
        if (f->max_len == 0)
            return table_error(err, errlen, "Field \"%s\" has no max_len.", path);
        break;
    default:
        break;
    }
    switch (f->type) {
    case VT_ENUM:
        if (f->enum_values == NULL || f->enum_values[0] == NULL)
            return table_error(err, errlen, "Field \"%s\" is an enum without values.", path);
        break;
    case VT_DECIMAL:
        if (f->int_digits < 1 || f->int_digits > DEC_INT_DIGITS || f->scale < 0 || f->scale > DEC_SCALE)
            return table_error(err, errlen, "Field \"%s\" needs int_digits 1..%d and scale 0..%d.", path,
                               DEC_INT_DIGITS, DEC_SCALE);
        break;
    case VT_STRING_ARRAY:
        if (f->item_max_len == 0 || f->item_min_len > f->item_max_len)
            return table_error(err, errlen, "Field \"%s\" needs item_min_len <= item_max_len, item_max_len > 0.", path);
        break;
    case VT_JSON_OBJECT:
        if (f->max_bytes == 0)
            return table_error(err, errlen, "Field \"%s\" has no max_bytes.", path);
        break;
    case VT_OBJECT:
        if (f->fields == NULL || f->nfields == 0)
            return table_error(err, errlen, "Field \"%s\" is an object without a field table.", path);
        return check_table(f->fields, f->nfields, path, err, errlen);
    case VT_ARRAY:
        if (f->fields == NULL)
            return table_error(err, errlen, "Field \"%s\" is an array without an item description.", path);
        if (f->fields->flags & (VF_REQUIRED | VF_READONLY))
            return table_error(err, errlen, "Items of \"%s\" cannot be VF_REQUIRED or VF_READONLY.", path);
        format_alloc(&sub, "%s[]", path);
        ret = check_field(f->fields, sub, err, errlen);
        free(sub);
        return ret;
    default:
        break;
    }
    return 0;
}

static int check_table(const validate_field_t *fields, size_t nfields, const char *prefix, char *err, size_t errlen)
{
    size_t i, j;
    int ret;

    if (fields == NULL && nfields != 0)
        return table_error(err, errlen, "A table under \"%s\" is NULL.", prefix);
    for (i = 0; i < nfields; ++i) {
        const validate_field_t *f = &fields[i];
        char *path;

        if (f->name == NULL || f->name[0] == '\0' || strpbrk(f->name, ".[]") != NULL)
            return table_error(err, errlen, "Field %zu under \"%s\" has no name or one with '.', '[' or ']'.", i,
                               prefix);
        for (j = 0; j < i; ++j)
            if (strcmp(fields[j].name, f->name) == 0)
                return table_error(err, errlen, "Field \"%s\" appears twice under \"%s\".", f->name, prefix);
        path = member_path(prefix, f->name, strlen(f->name));
        ret = check_field(f, path, err, errlen);
        free(path);
        if (ret != 0)
            return ret;
    }
    return 0;
}

int validate_table_check(const validate_field_t *fields, size_t nfields, char *err, size_t errlen)
{
    if (err != NULL && errlen > 0)
        err[0] = '\0';
    return check_table(fields, nfields, "", err, errlen);
}

int validate_is_date(const char *s, size_t len)
{
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (len != 10 || s[4] != '-' || s[7] != '-')
        return 0;
    for (size_t i = 0; i < len; i++)
        if (i != 4 && i != 7 && (s[i] < '0' || s[i] > '9'))
            return 0;
    int y = (s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 + (s[3] - '0');
    int m = (s[5] - '0') * 10 + (s[6] - '0'), d = (s[8] - '0') * 10 + (s[9] - '0');
    if (y < 1 || m < 1 || m > 12 || d < 1 || d > mdays[m - 1])
        return 0;
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return !(m == 2 && d == 29 && !leap);
}
