/*
 * common/phone.c - telephone numbers as E.164 for matching duplicates (see
 * phone.h for what is understood and what is not).
 *
 * A number is first made plain ASCII (full-width digits, '+' and
 * parentheses, the ideographic space), its extension cut off, then read as
 * international ('+' or the region's international prefix, then a country
 * code) or national (the region's country code, its trunk prefix dropped).
 * The key of a stored number (phone_key) is deliberately cruder and
 * independent of any region, so that PostgreSQL can index it with an
 * immutable expression; phone_keys() lists the keys of every way of writing
 * one E.164 number that phone_e164() would read back as that number, so a
 * lookup probes the index with a handful of keys instead of normalising
 * every stored number with the region.
 */
#include <stdio.h>
#include <string.h>

#include "err.h"
#include "phone.h"

/*
 * Regions: ISO code, country calling code, trunk prefix, international
 * prefix. Numbering plans from the ITU-T's national numbering plan
 * notifications; where a country has several international prefixes, the
 * usual one. Countries sharing a code (NANP "1", "7") keep their own rows;
 * the first row of a code gives its trunk prefix for numbers in
 * international form.
 */
static const phone_region_t regions[] = {
    {"CN", "86", "0", "00"},   {"HK", "852", "", "001"},  {"MO", "853", "", "00"},  {"TW", "886", "0", "002"},
    {"JP", "81", "0", "010"},  {"KR", "82", "0", "001"},  {"SG", "65", "", "000"},  {"MY", "60", "0", "00"},
    {"TH", "66", "0", "001"},  {"VN", "84", "0", "00"},   {"PH", "63", "0", "00"},  {"ID", "62", "0", "001"},
    {"IN", "91", "0", "00"},   {"AU", "61", "0", "0011"}, {"NZ", "64", "0", "00"},  {"US", "1", "1", "011"},
    {"CA", "1", "1", "011"},   {"MX", "52", "", "00"},    {"BR", "55", "0", "00"},  {"AR", "54", "0", "00"},
    {"GB", "44", "0", "00"},   {"IE", "353", "0", "00"},  {"DE", "49", "0", "00"},  {"AT", "43", "0", "00"},
    {"CH", "41", "0", "00"},   {"FR", "33", "0", "00"},   {"BE", "32", "0", "00"},  {"NL", "31", "0", "00"},
    {"LU", "352", "", "00"},   {"IT", "39", "", "00"},    {"ES", "34", "", "00"},   {"PT", "351", "", "00"},
    {"DK", "45", "", "00"},    {"NO", "47", "", "00"},    {"SE", "46", "0", "00"},  {"FI", "358", "0", "00"},
    {"PL", "48", "", "00"},    {"CZ", "420", "", "00"},   {"HU", "36", "06", "00"}, {"GR", "30", "", "00"},
    {"TR", "90", "0", "00"},   {"RU", "7", "8", "810"},   {"KZ", "7", "8", "810"},  {"IL", "972", "0", "00"},
    {"AE", "971", "0", "00"},  {"SA", "966", "0", "00"},  {"EG", "20", "0", "00"},  {"ZA", "27", "0", "00"},
    {"NG", "234", "0", "009"},
};

#define NREGIONS (sizeof(regions) / sizeof(regions[0]))

const phone_region_t *phone_region(const char *iso)
{
    for (size_t i = 0; iso != NULL && i < NREGIONS; i++)
        if (strcmp(regions[i].iso, iso) == 0)
            return &regions[i];
    return NULL;
}

/* The first region whose calling code starts the digits d (codes are prefix-free), or NULL. */
static const phone_region_t *country_of(const char *d)
{
    for (size_t i = 0; i < NREGIONS; i++)
        if (strncmp(d, regions[i].cc, strlen(regions[i].cc)) == 0)
            return &regions[i];
    return NULL;
}

/*
 * Copies s[0..len) into out (at most cap - 1 bytes, NUL-terminated) with the
 * full-width characters people type for numbers made ASCII: digits, '+',
 * parentheses, '-' and the ideographic space. Other bytes are copied as they
 * are. Returns 0, or -1 when out is too small.
 */
static int ascii(const char *s, size_t len, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        const unsigned char *u = (const unsigned char *)s + i;
        char c = s[i];
        if (i + 2 < len && u[0] == 0xEF && u[1] == 0xBC && u[2] >= 0x90 && u[2] <= 0x99)
            c = (char)('0' + (u[2] - 0x90)), i += 2; /* U+FF10..U+FF19 */
        else if (i + 2 < len && u[0] == 0xEF && u[1] == 0xBC && u[2] == 0x8B)
            c = '+', i += 2; /* U+FF0B */
        else if (i + 2 < len && u[0] == 0xEF && u[1] == 0xBC && u[2] == 0x88)
            c = '(', i += 2; /* U+FF08 */
        else if (i + 2 < len && u[0] == 0xEF && u[1] == 0xBC && u[2] == 0x89)
            c = ')', i += 2; /* U+FF09 */
        if (o + 1 >= cap)
            return -1;
        out[o++] = c;
    }
    out[o] = '\0';
    return 0;
}

/* Where an extension starts ("x", "ext", "#", ',' or ';'), or the end. */
static size_t extension_at(const char *s)
{
    size_t i = 0;
    for (; s[i] != '\0'; i++) {
        char c = s[i];
        if (c == 'x' || c == 'X' || c == '#' || c == ',' || c == ';')
            break;
        if ((c == 'e' || c == 'E') && (s[i + 1] == 'x' || s[i + 1] == 'X'))
            break;
    }
    return i;
}

/* Removes every "(0)" of s in place, left to right, as PostgreSQL's replace() does. */
static void drop_zero_in_parens(char *s)
{
    char *o = s;
    for (const char *p = s; *p != '\0';) {
        if (p[0] == '(' && p[1] == '0' && p[2] == ')') {
            p += 3;
            continue;
        }
        *o++ = *p++;
    }
    *o = '\0';
}

void phone_key(const char *s, size_t len, char out[PHONE_KEY_MAX])
{
    char buf[256];
    size_t o = 0;
    out[0] = '\0';
    if (len >= sizeof(buf) || ascii(s, len, buf, sizeof(buf)) != 0)
        return; /* longer than any number anyone types: a key of nothing */
    buf[extension_at(buf)] = '\0';
    const char *p = buf;
    while (*p == ' ')
        p++;
    if (*p == '+') {
        drop_zero_in_parens(buf);
        out[o++] = '+';
    }
    for (p = buf; *p != '\0' && o + 1 < PHONE_KEY_MAX; p++)
        if (*p >= '0' && *p <= '9')
            out[o++] = *p;
    out[o] = '\0';
}

int phone_e164(const char *s, size_t len, const phone_region_t *region, char out[PHONE_E164_MAX])
{
    char buf[256], d[32];
    size_t nd = 0;
    out[0] = '\0';
    if (region == NULL || len >= sizeof(buf) || ascii(s, len, buf, sizeof(buf)) != 0)
        return ERR_INVALID;
    buf[extension_at(buf)] = '\0';
    char *p = buf;
    while (*p == ' ' || *p == '\t')
        p++;
    int intl = *p == '+';
    if (intl) {
        p++;
        drop_zero_in_parens(p);
    }
    for (; *p != '\0'; p++) {
        unsigned char c = (unsigned char)*p;
        if (c >= '0' && c <= '9') {
            if (nd + 1 >= sizeof(d))
                return ERR_INVALID;
            d[nd++] = (char)c;
        } else if (c == 0xE3 && (unsigned char)p[1] == 0x80 && (unsigned char)p[2] == 0x80) {
            p += 2; /* U+3000, the ideographic space */
        } else if (c == 0xEF && (unsigned char)p[1] == 0xBC && (unsigned char)p[2] == 0x8D) {
            p += 2; /* U+FF0D, the full-width hyphen-minus */
        } else if (!(c == ' ' || c == '\t' || c == '-' || c == '.' || c == '/' || c == '(' || c == ')')) {
            return ERR_INVALID; /* letters, a second '+', anything else */
        }
    }
    d[nd] = '\0';
    const char *digits = d;
    size_t idd = strlen(region->idd);
    if (!intl && idd > 0 && strncmp(d, region->idd, idd) == 0) {
        intl = 1;
        digits += idd;
    }
    char e[40];
    if (intl && digits[0] == '0')
        return ERR_INVALID; /* no country code starts with 0 */
    if (intl) {
        const phone_region_t *c = country_of(digits);
        size_t ccl = c != NULL ? strlen(c->cc) : 0;
        /* "+86 010 ...": a trunk 0 written after the country code is not part of the number. */
        if (c != NULL && strcmp(c->trunk, "0") == 0 && digits[ccl] == '0')
            snprintf(e, sizeof(e), "%.*s%s", (int)ccl, digits, digits + ccl + 1);
        else
            snprintf(e, sizeof(e), "%s", digits);
    } else {
        size_t tl = strlen(region->trunk);
        if (tl > 0 && strncmp(digits, region->trunk, tl) == 0)
            digits += tl;
        if (*digits == '\0')
            return ERR_INVALID;
        snprintf(e, sizeof(e), "%s%s", region->cc, digits);
    }
    size_t n = strlen(e);
    if (n < 8 || n > 15)
        return ERR_INVALID;
    out[0] = '+';
    memcpy(out + 1, e, n + 1);
    return 0;
}

/* Appends key to keys[0..*n) unless it is there already. */
static void add_key(char keys[PHONE_KEYS_MAX][PHONE_KEY_MAX], int *n, const char *a, const char *b, const char *c)
{
    char k[PHONE_KEY_MAX];
    if (*n == PHONE_KEYS_MAX || (size_t)snprintf(k, sizeof(k), "%s%s%s", a, b, c) >= sizeof(k))
        return;
    for (int i = 0; i < *n; i++)
        if (strcmp(keys[i], k) == 0)
            return;
    memcpy(keys[(*n)++], k, sizeof(k));
}

int phone_keys(const char *e164, const phone_region_t *region, char keys[PHONE_KEYS_MAX][PHONE_KEY_MAX])
{
    size_t len = e164 != NULL ? strlen(e164) : 0;
    if (region == NULL || len < 9 || len > 16 || e164[0] != '+')
        return 0;
    for (size_t i = 1; i < len; i++)
        if (e164[i] < '0' || e164[i] > '9')
            return 0;
    const char *d = e164 + 1;
    int n = 0;
    add_key(keys, &n, "+", d, "");
    const phone_region_t *c = country_of(d);
    char cc[8] = "", nsn[PHONE_KEY_MAX] = "";
    if (c != NULL) {
        snprintf(cc, sizeof(cc), "%s", c->cc);
        snprintf(nsn, sizeof(nsn), "%s", d + strlen(c->cc));
    }
    int trunk0 = c != NULL && strcmp(c->trunk, "0") == 0;
    char cc0[12];
    snprintf(cc0, sizeof(cc0), "%s0", cc);
    if (trunk0)
        add_key(keys, &n, "+", cc0, nsn);
    if (region->idd[0] != '\0') {
        add_key(keys, &n, region->idd, d, "");
        if (trunk0)
            add_key(keys, &n, region->idd, cc0, nsn);
    }
    if (c != NULL && strcmp(cc, region->cc) == 0) {
        size_t tl = strlen(region->trunk);
        char national[PHONE_KEY_MAX];
        snprintf(national, sizeof(national), "%s%s", region->trunk, nsn);
        if (tl > 0 && (region->idd[0] == '\0' || strncmp(national, region->idd, strlen(region->idd)) != 0))
            add_key(keys, &n, national, "", "");
        /* The number alone reads back as itself unless it starts like a prefix. */
        if ((tl == 0 || strncmp(nsn, region->trunk, tl) != 0) &&
            (region->idd[0] == '\0' || strncmp(nsn, region->idd, strlen(region->idd)) != 0))
            add_key(keys, &n, nsn, "", "");
    }
    return n;
}
