/*
 * api/cursor.h - opaque, signed pagination cursors.
 *
 * A cursor is base64url(compact JSON state) "." base64url(first 16 bytes of
 * HMAC-SHA256(key, that text)). The state is the server's own (a list's
 * sort, last id and, when it is short, last sort key; a feed's position), so
 * a client can hand it back but never forge or edit one: decoding checks
 * the MAC before the JSON is parsed, and statements may trust its values.
 * The key is derived once at start-up from the token signing secret, so
 * every instance behind a load balancer accepts every other's cursors, and
 * rotating that secret invalidates outstanding cursors with the tokens.
 *
 * Ownership: the key is a plain value owned by whoever holds it (the
 * server); strings from cursor_encode() are malloc'ed and the caller's;
 * values from cursor_decode() are new jansson references. No global state;
 * safe on any thread.
 */
#ifndef CLIENTELE_API_CURSOR_H
#define CLIENTELE_API_CURSOR_H

#include <stddef.h>

#include <jansson.h>

/* Longest cursor accepted or produced, MAC included. */
#define CURSOR_MAX 1100

typedef struct st_cursor_key_t {
    unsigned char k[32];
} cursor_key_t;

/* Derives the cursor key from a secret of len bytes (len > 0). Returns 0, or -1 when the crypto library fails. */
int cursor_key_derive(cursor_key_t *key, const void *secret, size_t len);

/*
 * Encodes a JSON object. Returns a malloc'ed NUL-terminated string, or NULL
 * when state is not an object, the cursor would exceed CURSOR_MAX, or
 * memory or the crypto library failed. Callers must answer (never crash) on
 * NULL; crud's list answer drops an over-long sort key and encodes again.
 */
char *cursor_encode(const cursor_key_t *key, const json_t *state);

/* Decodes s[0..len): a new reference to the state object, or NULL when it is malformed or not signed by key. */
json_t *cursor_decode(const cursor_key_t *key, const char *s, size_t len);

#endif
