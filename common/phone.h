/*
 * common/phone.h - telephone numbers as E.164 for matching duplicates.
 *
 * Not a validator: a small normaliser for the ways people write the same
 * number, so that "010-1234 5678", "(010) 12345678", "+86 10 1234 5678",
 * "0086 10 12345678" and "+86 (0)10 12345678" all read as +861012345678
 * under the default region CN. What it understands:
 *   - separators: spaces, '-', '.', '/', parentheses; full-width digits and
 *     '+' (U+FF10..U+FF19, U+FF0B) as typed by Chinese and Japanese input
 *     methods; an extension after "x", "ext", "#", ',' or ';' is dropped;
 *   - international forms: a leading '+', or the region's international
 *     prefix (00 in most regions, 011 in North America, ...), followed by
 *     the country code; "(0)" after the country code, and a national trunk
 *     0 written after it ("+86 010 ...", "+44 020 ..."), are dropped for
 *     countries whose trunk prefix is 0 (never for Italy, whose leading 0
 *     belongs to the number);
 *   - national forms: the number in the default region, with or without
 *     its trunk prefix (0 in China and most of Europe, 1 in North America,
 *     8 in Russia).
 * Limits: the country code table (phone_region()) covers the regions
 * listed in phone.c; numbers of other countries are still read in
 * international form, but their trunk 0 after the country code is kept.
 * The number's length is only checked against E.164's bounds (8 to 15
 * digits with the country code), not per country or per area, so a wrong
 * number of digits is not noticed; a country code written without '+' or
 * an international prefix ("86 138...") is read as part of a national
 * number; letters (vanity numbers) are refused; national numbers are
 * assumed to be of the default region, whatever the record's address says.
 *
 * Pure functions over caller-owned buffers; no state, any thread.
 */
#ifndef CLIENTELE_COMMON_PHONE_H
#define CLIENTELE_COMMON_PHONE_H

#include <stddef.h>

/* Room for "+" and 15 digits and the NUL. */
#define PHONE_E164_MAX 17
/* Room for a matching key (see phone_keys) and the NUL. */
#define PHONE_KEY_MAX 24
/* The most keys phone_keys() gives. */
#define PHONE_KEYS_MAX 8

typedef struct st_phone_region_t {
    const char *iso;   /* ISO 3166-1 alpha-2: "CN" */
    const char *cc;    /* country calling code: "86" */
    const char *trunk; /* national trunk prefix ("0"), "" when none */
    const char *idd;   /* international call prefix from this region ("00") */
} phone_region_t;

/* The region of an ISO 3166-1 alpha-2 code (upper case), or NULL when the table has none. */
const phone_region_t *phone_region(const char *iso);

/*
 * Normalises the number s[0..len) written in `region` to E.164 ("+" and
 * digits) in out. Returns 0, or ERR_INVALID when it is not a number this
 * normaliser reads (out is then "").
 */
int phone_e164(const char *s, size_t len, const phone_region_t *region, char out[PHONE_E164_MAX]);

/*
 * The matching key of a stored number, exactly as the SQL function
 * phone_key() of schema/0021_duplicates.sql computes it, which indexes
 * stored numbers whatever the region: full-width characters made ASCII,
 * the extension cut off, then "+" and the digits when the number starts
 * with '+' (with every "(0)" removed), else the digits alone. out holds
 * PHONE_KEY_MAX bytes; longer keys are cut (they match nothing).
 */
void phone_key(const char *s, size_t len, char out[PHONE_KEY_MAX]);

/*
 * Every key (phone_key()) of a way of writing the E.164 number e164 that
 * phone_e164() reads as e164 in `region`: "+" form, with a trunk 0 after
 * the country code, with the region's international prefix, and, for
 * numbers of the region's own country, the national forms with and
 * without the trunk prefix. Fills keys[0..n) and returns n (at least 1),
 * or 0 when e164 is not E.164.
 */
int phone_keys(const char *e164, const phone_region_t *region, char keys[PHONE_KEYS_MAX][PHONE_KEY_MAX]);

#endif
