/*
 * api/cursor.c - opaque, signed pagination cursors (see cursor.h).
 *
 * The JSON half is jx's base64url cursor text; this file adds the MAC. The
 * MAC is truncated to 128 bits, which is plenty against forgery of a value
 * that only positions a page, and keeps cursors short in URLs.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "common/jx.h"
#include "cursor.h"

#define MAC_LEN 16
#define MAC_TEXT_LEN JX_B64URL_ENCLEN(MAC_LEN)

int cursor_key_derive(cursor_key_t *key, const void *secret, size_t len)
{
    static const char label[] = "clientele/pagination-cursor/v1";
    unsigned int outlen = 0;
    if (len == 0 ||
        HMAC(EVP_sha256(), secret, (int)len, (const unsigned char *)label, sizeof(label) - 1, key->k, &outlen) ==
            NULL ||
        outlen != sizeof(key->k))
        return -1;
    return 0;
}

/* Writes the MAC of text[0..len) as base64url into out (MAC_TEXT_LEN + 1 bytes). */
static int mac_text(const cursor_key_t *key, const char *text, size_t len, char *out)
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    if (HMAC(EVP_sha256(), key->k, (int)sizeof(key->k), (const unsigned char *)text, len, mac, &maclen) == NULL ||
        maclen < MAC_LEN)
        return -1;
    jx_b64url_encode(mac, MAC_LEN, out, MAC_TEXT_LEN + 1);
    return 0;
}

char *cursor_encode(const cursor_key_t *key, const json_t *state)
{
    char *body = jx_cursor_encode(state);
    if (body == NULL)
        return NULL;
    size_t blen = strlen(body);
    char *out = NULL;
    if (blen + 1 + MAC_TEXT_LEN <= CURSOR_MAX && (out = malloc(blen + 1 + MAC_TEXT_LEN + 1)) != NULL) {
        memcpy(out, body, blen);
        out[blen] = '.';
        if (mac_text(key, body, blen, out + blen + 1) != 0) {
            free(out);
            out = NULL;
        }
    }
    free(body);
    return out;
}

json_t *cursor_decode(const cursor_key_t *key, const char *s, size_t len)
{
    if (s == NULL || len > CURSOR_MAX || len < MAC_TEXT_LEN + 2)
        return NULL;
    size_t blen = len - MAC_TEXT_LEN - 1;
    if (s[blen] != '.')
        return NULL;
    char want[MAC_TEXT_LEN + 1];
    if (mac_text(key, s, blen, want) != 0 || CRYPTO_memcmp(want, s + blen + 1, MAC_TEXT_LEN) != 0)
        return NULL;
    return jx_cursor_decode(s, blen);
}
