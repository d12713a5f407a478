/*
 * common/jx.h - small JSON helpers: merge patch, base64url, pagination
 * cursors, RFC 3339 timestamps, compact dumps.
 *
 * Nothing here knows about HTTP, so api/ and worker/ can both use it. The
 * module keeps no state; every function is safe to call from any thread as
 * long as the jansson values it is given are not being changed by another
 * thread at the same time. Strings returned by jx_cursor_encode() and
 * jx_dump_compact() are malloc'ed and belong to the caller (free()); jansson
 * values follow jansson's reference rules as spelled out on each function.
 */
#ifndef CLIENTELE_COMMON_JX_H
#define CLIENTELE_COMMON_JX_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

/* Longest cursor string jx_cursor_decode() accepts and jx_cursor_encode() produces. */
#define JX_CURSOR_MAX 1024

/* Characters (without the NUL) base64url without padding needs for n bytes. */
#define JX_B64URL_ENCLEN(n) (((n) / 3) * 4 + ((n) % 3 == 0 ? 0 : (n) % 3 + 1))
/* Most bytes n base64url characters can decode to. */
#define JX_B64URL_DECLEN(n) (((n) / 4) * 3 + ((n) % 4 == 0 ? 0 : (n) % 4 - 1))

/*
 * Applies an RFC 7396 JSON Merge Patch and returns the result.
 *
 * Ownership: the caller gives up its reference to target (which may be
 * NULL, meaning "absent") and receives a new reference to the result. When
 * both target and patch are objects, target itself is modified in place and
 * returned, and so are the objects nested in it that the patch reaches;
 * anything else in target is decref'd. Callers that share target (or any
 * object inside it) with someone else must pass json_deep_copy(target).
 * patch is never modified and never shared with the result: the values it
 * contributes are deep copies. A null patch gives json_null().
 *
 * Returns NULL only when jansson cannot allocate; target is consumed even then.
 */
json_t *jx_merge_patch(json_t *target, const json_t *patch);

/*
 * Encodes src[0..len) as base64url (RFC 4648 section 5) without padding.
 * Works like snprintf: returns the length of the full encoding, without the
 * NUL, which is JX_B64URL_ENCLEN(len), and writes it NUL-terminated only
 * when dstlen is larger than that; otherwise dst is left as "" (if dstlen >
 * 0) and nothing else is written.
 */
size_t jx_b64url_encode(const void *src, size_t len, char *dst, size_t dstlen);

/*
 * Decodes base64url without padding, strictly: only A-Z a-z 0-9 - _ are
 * accepted (no '=', '+', '/', whitespace or NUL), len % 4 == 1 is refused,
 * and the unused low bits of the last character must be zero, so every byte
 * string has exactly one accepted spelling. Writes the bytes to dst (no NUL
 * is added) and their count to *outlen (may be NULL).
 *
 * Returns 0, or ERR_INVALID for bad input or when dstlen is smaller than the
 * decoded size (JX_B64URL_DECLEN(len) is always enough); dst may then hold
 * a partial result and *outlen is not set.
 */
int jx_b64url_decode(const char *src, size_t len, void *dst, size_t dstlen, size_t *outlen);

/*
 * Turns pagination state (a JSON object) into an opaque cursor: the compact
 * JSON with sorted keys, base64url-encoded. Cursors are opaque to clients
 * but not secret and not signed: never put anything in the state that a
 * client must not read, and treat a decoded state as untrusted input.
 *
 * Returns a malloc'ed NUL-terminated string (free() it), or NULL when state
 * is not an object, the cursor would be longer than JX_CURSOR_MAX (so
 * jx_cursor_decode() could not read it back), or on allocation failure.
 */
char *jx_cursor_encode(const json_t *state);

/*
 * Reads back a cursor made by jx_cursor_encode(): s[0..len) must be strict
 * base64url of at most JX_CURSOR_MAX characters holding one JSON object
 * (duplicate keys and trailing data refused). Returns a new reference (the
 * caller decrefs it), or NULL for anything else, including an empty string.
 */
json_t *jx_cursor_decode(const char *s, size_t len);

/*
 * RFC 3339 date-time checks on a NUL-terminated string:
 *
 *   YYYY-MM-DDTHH:MM:SS[.F{1,6}](Z|+HH:MM|-HH:MM)
 *
 * 'T' and 'Z' may be lowercase. The day must exist in that month of that
 * year (Gregorian leap years). Refused: years before 0001 (PostgreSQL has no
 * year 0), hour 24, minute or offset past 59, more than 6 fraction digits
 * (they would be silently lost in PostgreSQL), a missing offset, a space or
 * anything else instead of 'T', and trailing characters. Leap seconds
 * (second 60) are refused too: no clock a client is likely to use produces
 * them, and accepting one would mean silently turning it into another
 * instant. "-00:00" is accepted and means UTC.
 */

/* 1 if s is such a timestamp, else 0 (also for NULL). */
int jx_is_rfc3339(const char *s);

/*
 * Parses such a timestamp into seconds since 1970-01-01T00:00:00Z (negative
 * before) and microseconds 0..999999 past that second; either output may be
 * NULL. Returns 0, or ERR_INVALID with the outputs untouched.
 */
int jx_parse_rfc3339(const char *s, int64_t *unix_seconds, int32_t *micros);

/*
 * Serializes any JSON value (not only objects and arrays) without
 * whitespace, in the object's own key order. Returns a malloc'ed string
 * (free() it), or NULL for a NULL value or on allocation failure.
 */
char *jx_dump_compact(const json_t *v);

/*
 * The decimal text a JSON number stands for, without exponent: integers as
 * they are; a real as the shortest text of at most 15 significant digits
 * that reads back as the same double (so 0.7 gives "0.7", never
 * "0.69999999999999996"). NULL for a real that needs more digits (the
 * client must send such a value as a string), for magnitudes beyond 1e40 or
 * below 1e-40, for infinities and for values that are not numbers.
 * malloc'ed; the caller frees it.
 */
char *jx_number_decimal(const json_t *v);

#endif
