/*
 * api/token.c - issuing and verifying access tokens (JWT, HS256 or RS256).
 *
 * token_verify() does the cheap structural checks first (length cap, no
 * NUL, exactly three non-empty base64url segments), then parses the header
 * itself and accepts only the configured algorithm, spelled exactly, so
 * that "none", an HS512 token under an HS256 secret, or an HS256 token
 * HMAC'ed with the RS256 public key (key confusion) never reach libjwt's
 * permissive dispatch. libjwt then checks the signature on a NUL-terminated
 * copy with a non-empty key, and the algorithm it saw is compared once
 * more. The claims are parsed by jansson with duplicate keys rejected and
 * validated here, since libjwt 1.10 validates none.
 *
 * Ownership: nothing is kept between calls. The configuration and its keys
 * are borrowed from the caller. The token copy lives on the stack; jansson
 * and libjwt objects are freed before returning. token_issue() hands the
 * caller libjwt's malloc'ed string.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/types.h>

#include <jansson.h>
#include <jwt.h>

#include "common/err.h"
#include "common/rnd.h"
#include "token.h"

_Static_assert(sizeof(long) == sizeof(int64_t), "jwt_add_grant_int takes a long; claims are 64-bit");

#define REJECT(reason)                                                                                                 \
    do {                                                                                                               \
        *why = (reason);                                                                                               \
        ret = ERR_UNAUTHENTICATED;                                                                                     \
        goto Exit;                                                                                                     \
    } while (0)

static const char *alg_name(int alg)
{
    return alg == TOKEN_RS256 ? "RS256" : "HS256";
}

static jwt_alg_t alg_jwt(int alg)
{
    return alg == TOKEN_RS256 ? JWT_ALG_RS256 : JWT_ALG_HS256;
}

/* 0 if c can issue (issuing != 0) or verify tokens. */
static int check_conf(const token_conf_t *c, int issuing)
{
    if (c == NULL || c->issuer == NULL || c->issuer[0] == '\0' || c->audience == NULL || c->audience[0] == '\0')
        return ERR_INTERNAL;
    switch (c->alg) {
    case TOKEN_HS256:
        /* A short (or, fatally for libjwt, empty) secret is a configuration bug, never a fallback. */
        if (c->key == NULL || c->key_len < TOKEN_MIN_HS_KEY_LEN || c->key_len > INT_MAX)
            return ERR_INTERNAL;
        return 0;
    case TOKEN_RS256:
        if (issuing)
            return c->key != NULL && c->key_len > 0 && c->key_len <= INT_MAX ? 0 : ERR_INTERNAL;
        return c->pubkey != NULL && c->pubkey_len > 0 && c->pubkey_len <= INT_MAX ? 0 : ERR_INTERNAL;
    default:
        return ERR_INTERNAL;
    }
}

static int leeway_of(const token_conf_t *c)
{
    if (c->leeway_s < 0)
        return 0;
    return c->leeway_s > TOKEN_MAX_LEEWAY ? TOKEN_MAX_LEEWAY : c->leeway_s;
}

/* Role names follow the roles table's CHECK: ^[a-z][a-z0-9_]{0,31}$. */
static int is_role_name(const char *s, size_t len)
{
    if (len < 1 || len > 32 || s[0] < 'a' || s[0] > 'z')
        return 0;
    for (size_t i = 1; i < len; i++) {
        char ch = s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_'))
            return 0;
    }
    return 1;
}

/* A jti we copy and may log: 1..36 characters of hex digits and dashes. */
static int is_jti(const char *s, size_t len)
{
    if (len < 1 || len > 36)
        return 0;
    for (size_t i = 0; i < len; i++) {
        char ch = s[i];
        if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F') || ch == '-'))
            return 0;
    }
    return 1;
}

/* Parses a canonical positive decimal ("42", not "042", "+42" or "4e1") up to INT64_MAX; 0 if invalid. */
static int64_t parse_sub(const char *s, size_t len)
{
    if (len < 1 || len > 19 || s[0] < '1' || s[0] > '9')
        return 0;
    int64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return 0;
        int d = s[i] - '0';
        if (v > (INT64_MAX - d) / 10)
            return 0;
        v = v * 10 + d;
    }
    return v;
}

/* Is v a JSON string equal to s, byte for byte (an embedded \u0000 never matches)? */
static int str_value_eq(json_t *v, const char *s)
{
    size_t n = strlen(s);
    return json_is_string(v) && json_string_length(v) == n && memcmp(json_string_value(v), s, n) == 0;
}

static int b64url_value(unsigned char ch)
{
    if (ch >= 'A' && ch <= 'Z')
        return ch - 'A';
    if (ch >= 'a' && ch <= 'z')
        return ch - 'a' + 26;
    if (ch >= '0' && ch <= '9')
        return ch - '0' + 52;
    if (ch == '-')
        return 62;
    if (ch == '_')
        return 63;
    return -1;
}

/*
 * Strict unpadded base64url (RFC 7515 section 2): no '=', no whitespace,
 * zero trailing bits, so each decoded value has exactly one encoding.
 * out must hold len * 3 / 4 + 1 bytes; returns the decoded length or -1.
 */
static ssize_t b64url_decode(const char *in, size_t len, unsigned char *out)
{
    uint32_t acc = 0;
    int bits = 0;
    size_t n = 0;

    if (len % 4 == 1)
        return -1;
    for (size_t i = 0; i < len; i++) {
        int v = b64url_value((unsigned char)in[i]);
        if (v < 0)
            return -1;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[n++] = (unsigned char)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    if (acc != 0)
        return -1;
    return (ssize_t)n;
}

/* Decodes one segment and parses it as a JSON object; NULL if either fails. */
static json_t *decode_segment(const char *seg, size_t len)
{
    unsigned char buf[TOKEN_MAX_LEN];
    ssize_t n = b64url_decode(seg, len, buf);
    if (n < 0)
        return NULL;
    json_t *obj = json_loadb((const char *)buf, (size_t)n, JSON_REJECT_DUPLICATES, NULL);
    if (obj != NULL && !json_is_object(obj)) {
        json_decref(obj);
        obj = NULL;
    }
    return obj;
}

/* Reads an optional integer claim: 0 if absent, 1 if present (in *v), -1 if not a JSON integer. */
static int get_int_claim(json_t *payload, const char *name, int64_t *v)
{
    json_t *j = json_object_get(payload, name);
    if (j == NULL)
        return 0;
    if (!json_is_integer(j))
        return -1;
    *v = (int64_t)json_integer_value(j);
    return 1;
}

static int check_claims(const token_conf_t *c, json_t *payload, int64_t now, token_claims_t *out, const char **why)
{
    int leeway = leeway_of(c), ret = 0, r;
    json_t *j;

    /* Times first: they are what most often fails for honest clients. */
    if ((r = get_int_claim(payload, "exp", &out->exp)) == 0)
        REJECT("token has no exp");
    if (r < 0)
        REJECT("exp is not an integer");
    if ((r = get_int_claim(payload, "iat", &out->iat)) == 0)
        REJECT("token has no iat");
    if (r < 0)
        REJECT("iat is not an integer");
    if (get_int_claim(payload, "nbf", &out->nbf) < 0)
        REJECT("nbf is not an integer");
    if (out->exp <= now - leeway)
        REJECT("token expired");
    if (json_object_get(payload, "nbf") != NULL && out->nbf > now + leeway)
        REJECT("token not yet valid (nbf)");
    if (out->iat > now + leeway)
        REJECT("token issued in the future (iat)");

    if (!str_value_eq(json_object_get(payload, "iss"), c->issuer))
        REJECT("wrong or missing issuer");

    j = json_object_get(payload, "aud");
    if (json_is_array(j)) {
        size_t i;
        json_t *e;
        int found = 0;
        json_array_foreach(j, i, e)
        {
            if (!json_is_string(e))
                REJECT("aud array holds a non-string");
            found |= str_value_eq(e, c->audience);
        }
        if (!found)
            REJECT("wrong audience");
    } else if (j == NULL) {
        REJECT("token has no aud");
    } else if (!str_value_eq(j, c->audience)) {
        REJECT("wrong audience");
    }

    j = json_object_get(payload, "sub");
    if (j == NULL)
        REJECT("token has no sub");
    if (!json_is_string(j) || (out->sub = parse_sub(json_string_value(j), json_string_length(j))) == 0)
        REJECT("sub is not a positive integer string");

    j = json_object_get(payload, "role");
    if (j == NULL)
        REJECT("token has no role");
    if (!json_is_string(j) || !is_role_name(json_string_value(j), json_string_length(j)))
        REJECT("role is not a valid role name");
    memcpy(out->role, json_string_value(j), json_string_length(j) + 1);

    j = json_object_get(payload, "team");
    if (j != NULL && !json_is_null(j)) {
        if (!json_is_integer(j) || json_integer_value(j) <= 0)
            REJECT("team is not a positive integer");
        out->team = (int64_t)json_integer_value(j);
    }

    if ((r = get_int_claim(payload, "ver", &out->ver)) == 0)
        REJECT("token has no ver");
    if (r < 0 || out->ver < 0)
        REJECT("ver is not a non-negative integer");

    j = json_object_get(payload, "jti");
    if (j != NULL) {
        if (!json_is_string(j) || !is_jti(json_string_value(j), json_string_length(j)))
            REJECT("jti is malformed");
        memcpy(out->jti, json_string_value(j), json_string_length(j) + 1);
    }

Exit:
    return ret;
}

int token_verify(const token_conf_t *c, const char *token, size_t len, int64_t now, token_claims_t *out,
                 const char **why)
{
    const char *why_unused, *dot1, *dot2, *sig;
    char copy[TOKEN_MAX_LEN + 1];
    json_t *header = NULL, *payload = NULL, *j;
    jwt_t *jwt = NULL;
    int ret = 0;

    if (why == NULL)
        why = &why_unused;
    *why = NULL;
    memset(out, 0, sizeof(*out));

    if (check_conf(c, 0) != 0) {
        *why = "token verifier is misconfigured";
        ret = ERR_INTERNAL;
        goto Exit;
    }

    /* Structure: three segments of base64url characters, the first two non-empty. */
    if (token == NULL || len == 0)
        REJECT("empty token");
    if (len > TOKEN_MAX_LEN)
        REJECT("token too long");
    if (memchr(token, '\0', len) != NULL)
        REJECT("NUL byte in token");
    if ((dot1 = memchr(token, '.', len)) == NULL ||
        (dot2 = memchr(dot1 + 1, '.', len - (size_t)(dot1 + 1 - token))) == NULL)
        REJECT("token does not have three parts");
    sig = dot2 + 1;
    if (memchr(sig, '.', len - (size_t)(sig - token)) != NULL)
        REJECT("token does not have three parts");
    if (dot1 == token || dot2 == dot1 + 1)
        REJECT("empty token header or payload");

    /* The header, checked by us before libjwt dispatches on it. */
    if ((header = decode_segment(token, (size_t)(dot1 - token))) == NULL)
        REJECT("token header is not base64url JSON");
    j = json_object_get(header, "alg");
    if (!json_is_string(j))
        REJECT("token has no alg");
    if (strcasecmp(json_string_value(j), "none") == 0)
        REJECT("unsigned token (alg none)");
    if (!str_value_eq(j, alg_name(c->alg)))
        REJECT("unexpected alg");
    if ((j = json_object_get(header, "typ")) != NULL &&
        !(json_is_string(j) && json_string_length(j) == 3 && strcasecmp(json_string_value(j), "JWT") == 0))
        REJECT("unexpected typ");
    if (json_object_get(header, "crit") != NULL)
        REJECT("unsupported crit header");
    if (sig == token + len)
        REJECT("token has no signature");
    for (const char *p = sig; p < token + len; p++)
        if (b64url_value((unsigned char)*p) < 0)
            REJECT("token signature is not base64url");

    /*
     * The payload is parsed (strictly) before the signature is checked, as
     * libjwt does too, so that a malformed one is reported as such; nothing
     * in it is trusted until the check below has passed.
     */
    if ((payload = decode_segment(dot1 + 1, (size_t)(dot2 - dot1 - 1))) == NULL)
        REJECT("token payload is not a base64url JSON object");

    /* The signature. The key length is never 0 here (check_conf), so libjwt cannot skip the check. */
    memcpy(copy, token, len);
    copy[len] = '\0';
    {
        const unsigned char *key = c->alg == TOKEN_RS256 ? c->pubkey : c->key;
        size_t key_len = c->alg == TOKEN_RS256 ? c->pubkey_len : c->key_len;
        int jr = jwt_decode(&jwt, copy, key, (int)key_len);
        if (jr == ENOMEM) {
            *why = "out of memory";
            ret = ERR_INTERNAL;
            goto Exit;
        }
        if (jr != 0 || jwt == NULL)
            REJECT("bad signature");
    }
    if (jwt_get_alg(jwt) != alg_jwt(c->alg))
        REJECT("unexpected alg");

    /* The claims, from the bytes just verified. */
    ret = check_claims(c, payload, now, out, why);

Exit:
    if (jwt != NULL)
        jwt_free(jwt);
    json_decref(header);
    json_decref(payload);
    if (ret != 0)
        memset(out, 0, sizeof(*out));
    return ret;
}

int token_issue(const token_conf_t *c, token_claims_t *claims, int64_t now, char **out)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char rnd[16];
    char sub[24];
    jwt_t *jwt = NULL;
    int ret = 0;

    *out = NULL;
    if (check_conf(c, 1) != 0)
        return ERR_INTERNAL;
    if (claims->sub <= 0 || claims->team < 0 || claims->ver < 0 ||
        !is_role_name(claims->role, strnlen(claims->role, sizeof(claims->role))))
        return ERR_INVALID;

    if (rnd_bytes(rnd, sizeof(rnd)) != 0)
        return ERR_INTERNAL;
    for (size_t i = 0; i < sizeof(rnd); i++) {
        claims->jti[2 * i] = hex[rnd[i] >> 4];
        claims->jti[2 * i + 1] = hex[rnd[i] & 15];
    }
    claims->jti[2 * sizeof(rnd)] = '\0';
    claims->iat = now;
    claims->nbf = now;
    claims->exp = now + (c->ttl_s > 0 ? c->ttl_s : TOKEN_DEFAULT_TTL);
    snprintf(sub, sizeof(sub), "%lld", (long long)claims->sub);

    if (jwt_new(&jwt) != 0) {
        jwt = NULL;
        ret = ERR_INTERNAL;
        goto Exit;
    }
    if (jwt_set_alg(jwt, alg_jwt(c->alg), c->key, (int)c->key_len) != 0 || jwt_add_grant(jwt, "iss", c->issuer) != 0 ||
        jwt_add_grant(jwt, "aud", c->audience) != 0 || jwt_add_grant(jwt, "sub", sub) != 0 ||
        jwt_add_grant(jwt, "role", claims->role) != 0 ||
        (claims->team > 0 && jwt_add_grant_int(jwt, "team", (long)claims->team) != 0) ||
        jwt_add_grant_int(jwt, "ver", (long)claims->ver) != 0 || jwt_add_grant_int(jwt, "iat", (long)now) != 0 ||
        jwt_add_grant_int(jwt, "nbf", (long)now) != 0 || jwt_add_grant_int(jwt, "exp", (long)claims->exp) != 0 ||
        jwt_add_grant(jwt, "jti", claims->jti) != 0) {
        ret = ERR_INTERNAL;
        goto Exit;
    }
    /* NULL here means libjwt could not sign, e.g. an unreadable RS256 private key. */
    if ((*out = jwt_encode_str(jwt)) == NULL)
        ret = ERR_INTERNAL;

Exit:
    if (jwt != NULL)
        jwt_free(jwt); /* scrubs its copy of the key */
    return ret;
}
