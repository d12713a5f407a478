/*
 * api/token.h - issuing and verifying access tokens (JWT, HS256 or RS256).
 *
 * Pure functions: no I/O, no global state, safe on any thread. Signing and
 * the signature check go through libjwt 1.10, which validates no claims,
 * accepts any HS* algorithm a token names and skips the check entirely for
 * a zero-length key; token_verify() therefore pins the algorithm itself,
 * never hands libjwt an empty key, and checks every claim with jansson.
 * The configuration is borrowed: keys and strings belong to the caller and
 * must outlive every call that uses them.
 */
#ifndef CLIENTELE_API_TOKEN_H
#define CLIENTELE_API_TOKEN_H

#include <stddef.h>
#include <stdint.h>

enum { TOKEN_HS256 = 1, TOKEN_RS256 = 2 };

#define TOKEN_MAX_LEN 8192      /* longer tokens are rejected unparsed */
#define TOKEN_MIN_HS_KEY_LEN 32 /* bytes of HS256 secret, at least */
#define TOKEN_DEFAULT_TTL 900   /* seconds, when ttl_s <= 0 */
#define TOKEN_MAX_LEEWAY 30     /* seconds; larger leeway_s values are clamped */

typedef struct st_token_conf_t {
    int alg;                  /* TOKEN_HS256 or TOKEN_RS256 */
    const unsigned char *key; /* HS256 secret (>= 32 bytes), or RS256 private key PEM (for issuing) */
    size_t key_len;
    const unsigned char *pubkey; /* RS256 public key PEM (for verifying); unused for HS256 */
    size_t pubkey_len;
    const char *issuer;   /* "iss", e.g. "clientele" */
    const char *audience; /* "aud", e.g. "clientele-api" */
    int ttl_s;            /* access token lifetime, default 900 */
    int leeway_s;         /* clock skew allowed on exp/nbf/iat, 0..30 */
} token_conf_t;

typedef struct st_token_claims_t {
    int64_t sub;           /* user id (> 0), a JSON string in the JWT per RFC 7519 ("42") */
    char role[33];         /* role name, ^[a-z][a-z0-9_]{0,31}$ as in the roles table */
    int64_t team;          /* team id, 0 = none (claim omitted or null) */
    int64_t ver;           /* the user's token_version at issue time (custom claim "ver") */
    int64_t iat, exp, nbf; /* nbf is 0 when a verified token carries none */
    char jti[37];          /* random id, 32 hex chars (or a UUID); "" when a verified token carries none */
} token_claims_t;

/*
 * Signs a new access token for claims->sub, role, team and ver (set by the
 * caller) and fills in claims->iat = claims->nbf = now, claims->exp =
 * now + ttl and a fresh claims->jti (128 bits from rnd_bytes(), hex; never blocks).
 * On success *out is a NUL-terminated malloc'ed string the caller frees;
 * on failure *out is NULL.
 * Errors: ERR_INVALID for claims that could not be verified back (sub <= 0,
 * a bad role name, team or ver < 0); ERR_INTERNAL for an unusable
 * configuration (short HS256 secret, missing or unreadable private key,
 * no issuer or audience) or a libjwt/random source failure.
 */
int token_issue(const token_conf_t *c, token_claims_t *claims, int64_t now, char **out);

/*
 * Verifies the len bytes at token (no NUL needed; an embedded NUL is an
 * error) at time now and, on success, fills *out. The algorithm must be
 * exactly the configured one, the signature valid, and the claims complete:
 * iss, aud (a string or an array holding ours), sub (a positive integer as
 * a string), role, ver, and integer exp/iat (plus nbf if present) within
 * the leeway.
 * Returns 0, or ERR_UNAUTHENTICATED for any bad token, or ERR_INTERNAL for
 * an unusable configuration or lack of memory. On error *out is zeroed and
 * *why (if why is not NULL) points to a short static English reason for
 * the log, such as "token expired"; it never contains token contents.
 */
int token_verify(const token_conf_t *c, const char *token, size_t len, int64_t now, token_claims_t *out,
                 const char **why);

#endif
