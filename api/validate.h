/*
 * api/validate.h - declarative validation of JSON request bodies, reporting
 * every problem at once.
 *
 * A resource describes its body as a static table of validate_field_t and
 * calls validate_object() once per body (or once per item of a bulk body,
 * with a prefix such as "[17]"). Each problem becomes one entry
 * {"field", "code", "message"} appended through api_error_add(), so the
 * handler answers with api_send_invalid(ar, 422, ..., errors) when the
 * count is non-zero. The module keeps no state and never modifies the
 * validated document (validate_trim() is the one function that does, on
 * request). Tables are plain constant data; validate_table_check() is meant
 * for each resource's unit test, so a mistake in a table fails a test
 * rather than a request.
 *
 * Field paths: members are joined with '.', array items get "[i]" (from 0):
 * "name", "address.country", "lines[2].quantity", "tags[0]"; a prefix is
 * put in front ("[3]" gives "[3].email"). An error about the whole body (it
 * is not an object) has the prefix itself as its path, "" at top level.
 *
 * At most one error is reported per scalar value (the first rule it breaks);
 * objects and arrays report one error per offending member or item, except
 * that an array with too many items reports only that, so a huge array
 * cannot produce a huge error list.
 */
#ifndef CLIENTELE_API_VALIDATE_H
#define CLIENTELE_API_VALIDATE_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

/*
 * Error codes (the "code" member). They are part of the API contract: add
 * new ones, never rename.
 *
 *   required       missing, or null, where a value is needed
 *   unknown_field  a member the table does not describe
 *   read_only      a member the server sets (id, created_at) sent by the client
 *   invalid_type   wrong JSON type, or null for a field that cannot be null
 *   too_short      string shorter than min_len code points; array with fewer than min_len items
 *   too_long       string longer than max_len code points
 *   invalid_format malformed string: control characters or NUL, invalid UTF-8,
 *                  email, phone, timestamp, decimal syntax, unknown country or currency
 *   invalid_value  not one of an enum's values
 *   out_of_range   integer or decimal outside its bounds: too many digits before or
 *                  after the decimal point, VF_RANGE bounds, an id that is not positive
 *   too_large      free-form JSON object bigger than max_bytes when serialized
 *   too_many       array with more than max_len items
 */
#define VALIDATE_E_REQUIRED "required"
#define VALIDATE_E_UNKNOWN_FIELD "unknown_field"
#define VALIDATE_E_READ_ONLY "read_only"
#define VALIDATE_E_INVALID_TYPE "invalid_type"
#define VALIDATE_E_TOO_SHORT "too_short"
#define VALIDATE_E_TOO_LONG "too_long"
#define VALIDATE_E_INVALID_FORMAT "invalid_format"
#define VALIDATE_E_INVALID_VALUE "invalid_value"
#define VALIDATE_E_OUT_OF_RANGE "out_of_range"
#define VALIDATE_E_TOO_LARGE "too_large"
#define VALIDATE_E_TOO_MANY "too_many"

typedef enum {
    VT_STRING,       /* one line of text: no control characters at all */
    VT_TEXT,         /* like VT_STRING, but '\n' and '\t' are allowed ('\r' is not) */
    VT_EMAIL,        /* see validate_is_email() */
    VT_PHONE,        /* see validate_is_phone() */
    VT_ENUM,         /* one of enum_values, exactly (case-sensitive) */
    VT_BOOL,         /* true or false */
    VT_INT,          /* a JSON integer (int64); 1.0 is not an integer; bounds with VF_RANGE */
    VT_ID,           /* a JSON integer >= 1 (further bounds with VF_RANGE) */
    VT_DECIMAL,      /* a JSON string holding a decimal: see validate_decimal_str() */
    VT_TIMESTAMP,    /* an RFC 3339 string: see jx_is_rfc3339() in common/jx.h */
    VT_DATE,         /* a calendar date "YYYY-MM-DD" (years 0001-9999) */
    VT_COUNTRY,      /* an assigned ISO 3166-1 alpha-2 code, uppercase: "DE" */
    VT_CURRENCY,     /* an active ISO 4217 alpha-3 code, uppercase: "EUR" */
    VT_OBJECT,       /* a nested object described by fields[0..nfields) */
    VT_ARRAY,        /* an array whose items are all described by fields[0] */
    VT_STRING_ARRAY, /* an array of VT_STRING items, item_min_len..item_max_len code points each */
    VT_JSON_OBJECT,  /* any object, at most max_bytes in compact serialized form */
} validate_type_t;

enum {
    VF_REQUIRED = 1 << 0, /* must be present and non-null in CREATE and REPLACE; can never be nulled */
    VF_NULLABLE = 1 << 1, /* null is accepted (in PATCH it means "remove"); never with VF_REQUIRED */
    VF_READONLY = 1 << 2, /* set by the server: present in output, refused in input with read_only */
    VF_TRIM = 1 << 3,     /* strings are judged without leading/trailing " \t\n\r"; store via validate_trim() */
    VF_RANGE = 1 << 4,    /* VT_INT, VT_ID, VT_DECIMAL: value must be within min_value..max_value */
};

typedef enum {
    VALIDATE_CREATE = 0,  /* POST: required fields must be present and non-null */
    VALIDATE_PATCH = 1,   /* merge patch: nothing required; null removes a VF_NULLABLE field */
    VALIDATE_REPLACE = 2, /* PUT: like CREATE */
} validate_mode_t;

/*
 * Or'ed into mode: skip VF_READONLY members instead of refusing them. For
 * re-validating a full representation the server built itself (say, the
 * stored resource with a merge patch applied), never for client input.
 */
#define VALIDATE_ALLOW_READONLY 0x100

typedef struct st_validate_field_t {
    const char *name; /* member name; ignored for VT_ARRAY's item description */
    validate_type_t type;
    unsigned flags; /* VF_* */
    /*
     * Strings: length in Unicode code points (after trimming with VF_TRIM),
     * for every string type. Arrays: item counts. 0 for max_len means no
     * limit, which validate_table_check() refuses for VT_STRING, VT_TEXT and
     * the array types: every input should be bounded (SIZE_MAX if truly none).
     */
    size_t min_len, max_len;
    const char *const *enum_values;           /* VT_ENUM: NULL-terminated list */
    int int_digits, scale;                    /* VT_DECIMAL: 1..DEC_INT_DIGITS, 0..DEC_SCALE */
    const struct st_validate_field_t *fields; /* VT_OBJECT members, or VT_ARRAY's single item */
    size_t nfields;                           /* VT_OBJECT: number of members (VALIDATE_NESTED) */
    size_t max_bytes;                         /* VT_JSON_OBJECT: compact serialized size limit */
    int64_t min_value, max_value;             /* VF_RANGE bounds, inclusive (whole numbers for decimals) */
    size_t item_min_len, item_max_len;        /* VT_STRING_ARRAY: code points per item */
} validate_field_t;

/* Number of entries of a static table. */
#define VALIDATE_COUNT(table) (sizeof(table) / sizeof((table)[0]))
/* Initializes .fields and .nfields of a VT_OBJECT from a static table. */
#define VALIDATE_NESTED(table) .fields = (table), .nfields = VALIDATE_COUNT(table)

/*
 * Checks obj against fields[0..nfields) and appends one entry to errors
 * (a JSON array) for every problem found, using api_error_add(). prefix
 * (NULL or "" at top level) is put in front of every field path.
 *
 * Known members are checked in table order; members the table does not
 * describe follow, in the object's order, as unknown_field. A non-object
 * obj gives a single invalid_type at the prefix. In VALIDATE_PATCH mode,
 * nested VT_OBJECT members are judged as patches too (RFC 7396 merges
 * them), but array items are judged as in VALIDATE_REPLACE, because a merge
 * patch replaces an array whole.
 *
 * Returns the number of errors appended (0 means valid). Nothing is
 * allocated that the caller has to free; errors keeps its entries.
 */
int validate_object(const json_t *obj, const validate_field_t *fields, size_t nfields, unsigned mode,
                    const char *prefix, json_t *errors);

/*
 * Trims leading and trailing " \t\n\r" in place from every string that a
 * VF_TRIM field describes, recursing into nested objects and arrays;
 * anything that does not match the table is left alone. Call it before
 * storing a body that validate_object() accepted, so the stored text is
 * what was judged.
 */
void validate_trim(json_t *obj, const validate_field_t *fields, size_t nfields);

/*
 * Checks that a table is well formed, recursively: names present and
 * unique, an enum list for VT_ENUM, decimal digits within common/decimal.h's
 * limits, a nested table for VT_OBJECT and VT_ARRAY, explicit upper bounds
 * for strings, arrays and free-form objects, min <= max, and no
 * contradictory flags (VF_REQUIRED with VF_NULLABLE or VF_READONLY).
 * Returns 0, or ERR_INVALID with a sentence naming the first bad field in
 * err (NUL-terminated, truncated to errlen; err may be NULL).
 */
int validate_table_check(const validate_field_t *fields, size_t nfields, char *err, size_t errlen);

/*
 * Checks a NUL-terminated decimal string: an optional '-', then "0" or a
 * digit 1-9 followed by digits (no leading zeros), at most int_digits of
 * them, then optionally '.' and 1 to scale digits. "12.5" passes with scale
 * 2; "1e3", "+1", ".5", "1.", "", " 1", "01", "1.234" (scale 2) do not.
 * int_digits must be 1..DEC_INT_DIGITS and scale 0..DEC_SCALE, so that
 * every accepted string fits a dec_t exactly. Returns 0 or ERR_INVALID.
 */
int validate_decimal_str(const char *s, int int_digits, int scale);

/* Stores a positive JSON integer in *out (out may be NULL) and returns 0; ERR_INVALID for anything else. */
int validate_id_value(const json_t *v, int64_t *out);

/*
 * The pragmatic email check used for VT_EMAIL, on s[0..len): ASCII only, at
 * most 254 characters, exactly one '@'; a local part of 1 to 64 characters
 * from letters, digits and !#$%&'*+/=?^_`{|}~.- with no leading, trailing or
 * doubled '.'; a domain of at least two dot-separated labels of 1 to 63
 * letters, digits and hyphens (not at either end of a label), the last of
 * which is not all digits. Quoted local parts, IP literals, comments and
 * non-ASCII addresses (send the domain as punycode) are refused.
 * Returns 1 if acceptable, else 0.
 */
int validate_is_email(const char *s, size_t len);

/*
 * The phone check used for VT_PHONE, on s[0..len): 3 to 32 characters from
 * digits, spaces, '-', '.', '(' and ')', with an optional leading '+'; at
 * least 3 digits; parentheses paired and not nested; starting with '+', '('
 * or a digit and ending with a digit or ')'. Returns 1 if acceptable, else 0.
 */
int validate_is_phone(const char *s, size_t len);

/* 1 if s[0..len) is a calendar date YYYY-MM-DD (years 0001-9999, leap years counted), else 0. */
int validate_is_date(const char *s, size_t len);
/* 1 if s[0..len) is an assigned ISO 3166-1 alpha-2 code (uppercase), else 0. */
int validate_is_country(const char *s, size_t len);

/*
 * 1 if s[0..len) is an active ISO 4217 alpha-3 code (uppercase), else 0.
 * The list is List One as published 2026-09-17, without XTS (testing) and
 * XXX (no currency), which cannot price anything.
 */
int validate_is_currency(const char *s, size_t len);

#endif
