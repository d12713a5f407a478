/*
 * tests/unit/api/token_test.c - unit tests for api/token.c.
 *
 * Round trips go through token_issue(); every hostile token is built here
 * by hand (base64url header and payload, HMAC from OpenSSL's HMAC()), so
 * that no rejection depends on libjwt agreeing to produce a bad token. A
 * hand-built good token is accepted first, so each rejection test differs
 * from an accepted token in exactly the one thing it names, and the reason
 * reported in *why is asserted too. Tokens are passed to token_verify() in
 * heap blocks of exactly len bytes with no NUL, so AddressSanitizer catches
 * any read past len. The RSA key pair is generated once per TCase in an
 * unchecked fixture (in the parent, before Check forks).
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "../../../api/token.c"

#define NOW 1700000000
#define ISS "clientele"
#define AUD "clientele-api"
#define HDR_HS256 "{\"alg\":\"HS256\",\"typ\":\"JWT\"}"

static const char SECRET[] = "test-secret-0123456789abcdef-0123456789";
static const char OTHER_SECRET[] = "another-secret-0123456789abcdef-0123456";

static unsigned char *g_priv, *g_pub; /* RSA PEMs, from the unchecked fixture */
static size_t g_priv_len, g_pub_len;

static token_conf_t hs_conf(void)
{
    return (token_conf_t){.alg = TOKEN_HS256,
                          .key = (const unsigned char *)SECRET,
                          .key_len = strlen(SECRET),
                          .issuer = ISS,
                          .audience = AUD,
                          .ttl_s = 900,
                          .leeway_s = 30};
}

static token_conf_t rs_conf(void)
{
    return (token_conf_t){.alg = TOKEN_RS256,
                          .key = g_priv,
                          .key_len = g_priv_len,
                          .pubkey = g_pub,
                          .pubkey_len = g_pub_len,
                          .issuer = ISS,
                          .audience = AUD,
                          .ttl_s = 900,
                          .leeway_s = 30};
}

/* --- building tokens by hand ------------------------------------------ */

/* Concatenates len bytes of a, len bytes of b and all of c (NUL-terminated) into a new heap string. */
static char *concat(const char *a, size_t alen, const char *b, size_t blen, const char *c)
{
    size_t clen = strlen(c);
    char *out = malloc(alen + blen + clen + 1);
    ck_assert_ptr_nonnull(out);
    memcpy(out, a, alen);
    memcpy(out + alen, b, blen);
    memcpy(out + alen + blen, c, clen + 1);
    return out;
}

static char *b64url(const void *data, size_t len)
{
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    const unsigned char *p = data;
    char *out = malloc(len / 3 * 4 + 5), *o = out;
    size_t i;
    ck_assert_ptr_nonnull(out);
    for (i = 0; i + 2 < len; i += 3) {
        *o++ = tbl[p[i] >> 2];
        *o++ = tbl[((p[i] & 3) << 4) | (p[i + 1] >> 4)];
        *o++ = tbl[((p[i + 1] & 15) << 2) | (p[i + 2] >> 6)];
        *o++ = tbl[p[i + 2] & 63];
    }
    if (len - i == 1) {
        *o++ = tbl[p[i] >> 2];
        *o++ = tbl[(p[i] & 3) << 4];
    } else if (len - i == 2) {
        *o++ = tbl[p[i] >> 2];
        *o++ = tbl[((p[i] & 3) << 4) | (p[i + 1] >> 4)];
        *o++ = tbl[(p[i + 1] & 15) << 2];
    }
    *o = '\0';
    return out;
}

/* "<b64 header>.<b64 payload>.<b64 HMAC>"; md NULL leaves the signature empty. */
static char *sign_raw(const char *header, const char *payload, const EVP_MD *md, const void *key, size_t key_len)
{
    char *h = b64url(header, strlen(header)), *p = b64url(payload, strlen(payload)), *s;
    char *input = concat(h, strlen(h), ".", 1, p);
    size_t inlen = strlen(input);
    if (md != NULL) {
        unsigned char mac[EVP_MAX_MD_SIZE];
        unsigned maclen = 0;
        ck_assert_ptr_nonnull(HMAC(md, key, (int)key_len, (const unsigned char *)input, inlen, mac, &maclen));
        s = b64url(mac, maclen);
    } else {
        s = strdup("");
    }
    char *tok = concat(input, inlen, ".", 1, s);
    free(h);
    free(p);
    free(s);
    free(input);
    return tok;
}

/* Signs payload (stolen) under header with the given HMAC and key. */
static char *sign_json(const char *header, json_t *payload, const EVP_MD *md, const void *key, size_t key_len)
{
    char *p = json_dumps(payload, JSON_COMPACT);
    ck_assert_ptr_nonnull(p);
    json_decref(payload);
    char *tok = sign_raw(header, p, md, key, key_len);
    free(p);
    return tok;
}

/* A well-formed HS256 token over payload (stolen), signed with SECRET. */
static char *hs(json_t *payload)
{
    return sign_json(HDR_HS256, payload, EVP_sha256(), SECRET, strlen(SECRET));
}

/* The claims of a token that verifies at NOW. */
static json_t *good_claims(void)
{
    json_t *p =
        json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:s}", "iss", ISS, "aud", AUD, "sub", "42", "role",
                  "manager", "team", (json_int_t)7, "ver", (json_int_t)3, "iat", (json_int_t)NOW - 10, "nbf",
                  (json_int_t)NOW - 10, "exp", (json_int_t)NOW + 890, "jti", "00112233445566778899aabbccddeeff");
    ck_assert_ptr_nonnull(p);
    return p;
}

static json_t *with(json_t *p, const char *name, json_t *value)
{
    if (value == NULL)
        json_object_del(p, name);
    else
        json_object_set_new(p, name, value);
    return p;
}

/* Verifies len bytes of tok from an exact-size heap copy (no NUL after it). */
static int verify_n(const token_conf_t *c, const char *tok, size_t len, int64_t now, token_claims_t *out,
                    const char **why)
{
    char *copy = malloc(len > 0 ? len : 1);
    ck_assert_ptr_nonnull(copy);
    memcpy(copy, tok, len);
    int ret = token_verify(c, copy, len, now, out, why);
    free(copy);
    return ret;
}

static int verify_at(const token_conf_t *c, const char *tok, int64_t now, token_claims_t *out, const char **why)
{
    return verify_n(c, tok, strlen(tok), now, out, why);
}

/* Asserts that tok (freed here) is rejected under c at NOW for the reason want. */
static void expect_reject_at(const token_conf_t *c, char *tok, int64_t now, const char *want)
{
    token_claims_t out;
    const char *why = NULL;
    memset(&out, 0x5a, sizeof(out));
    int ret = verify_at(c, tok, now, &out, &why);
    ck_assert_msg(ret == ERR_UNAUTHENTICATED, "expected rejection (%s), got %d", want, ret);
    ck_assert_ptr_nonnull(why);
    ck_assert_str_eq(why, want);
    ck_assert_int_eq(out.sub, 0); /* nothing half-filled leaks out */
    ck_assert_str_eq(out.role, "");
    free(tok);
}

static void expect_reject(char *tok, const char *want)
{
    token_conf_t c = hs_conf();
    expect_reject_at(&c, tok, NOW, want);
}

static void expect_accept_at(const token_conf_t *c, char *tok, int64_t now, token_claims_t *out)
{
    const char *why = NULL;
    int ret = verify_at(c, tok, now, out, &why);
    ck_assert_msg(ret == 0, "expected acceptance, got %d (%s)", ret, why ? why : "-");
    free(tok);
}

static void expect_accept(char *tok)
{
    token_conf_t c = hs_conf();
    token_claims_t out;
    expect_accept_at(&c, tok, NOW, &out);
}

/* --- RSA keys ---------------------------------------------------------- */

static unsigned char *bio_take(BIO *bio, size_t *len)
{
    char *data;
    long n = BIO_get_mem_data(bio, &data);
    ck_assert_int_gt(n, 0);
    unsigned char *copy = malloc((size_t)n);
    memcpy(copy, data, (size_t)n);
    *len = (size_t)n;
    BIO_free(bio);
    return copy;
}

static void rsa_setup(void)
{
    EVP_PKEY_CTX *kctx = EVP_PKEY_CTX_new_id(EVP_PKEY_RSA, NULL);
    EVP_PKEY *pkey = NULL;
    ck_assert_ptr_nonnull(kctx);
    ck_assert_int_eq(EVP_PKEY_keygen_init(kctx), 1);
    ck_assert_int_eq(EVP_PKEY_CTX_set_rsa_keygen_bits(kctx, 2048), 1);
    ck_assert_int_eq(EVP_PKEY_keygen(kctx, &pkey), 1);
    EVP_PKEY_CTX_free(kctx);

    BIO *priv = BIO_new(BIO_s_mem()), *pub = BIO_new(BIO_s_mem());
    ck_assert_int_eq(PEM_write_bio_PrivateKey(priv, pkey, NULL, NULL, 0, NULL, NULL), 1);
    ck_assert_int_eq(PEM_write_bio_PUBKEY(pub, pkey), 1);
    EVP_PKEY_free(pkey);
    g_priv = bio_take(priv, &g_priv_len);
    g_pub = bio_take(pub, &g_pub_len);
}

static void rsa_teardown(void)
{
    free(g_priv);
    free(g_pub);
    g_priv = g_pub = NULL;
}

/* --- round trips -------------------------------------------------------- */

START_TEST(test_hs256_round_trip)
{
    token_conf_t c = hs_conf();
    token_claims_t in = {.sub = 42, .role = "manager", .team = 7, .ver = 3}, out;
    char *tok = NULL;

    ck_assert_int_eq(token_issue(&c, &in, NOW, &tok), 0);
    ck_assert_ptr_nonnull(tok);
    ck_assert_int_eq(in.iat, NOW);
    ck_assert_int_eq(in.nbf, NOW);
    ck_assert_int_eq(in.exp, NOW + 900);
    ck_assert_int_eq(strlen(in.jti), 32);
    ck_assert_int_eq(strspn(in.jti, "0123456789abcdef"), 32);

    expect_accept_at(&c, tok, NOW, &out);
    ck_assert_int_eq(out.sub, 42);
    ck_assert_str_eq(out.role, "manager");
    ck_assert_int_eq(out.team, 7);
    ck_assert_int_eq(out.ver, 3);
    ck_assert_int_eq(out.iat, NOW);
    ck_assert_int_eq(out.nbf, NOW);
    ck_assert_int_eq(out.exp, NOW + 900);
    ck_assert_str_eq(out.jti, in.jti);
}
END_TEST

START_TEST(test_hs256_claims_on_the_wire)
{
    /* sub is a JSON string, team is omitted when 0, and the header names HS256. */
    token_conf_t c = hs_conf();
    token_claims_t in = {.sub = 9007199254740993LL, .role = "admin", .team = 0, .ver = 0}, out;
    char *tok = NULL;
    ck_assert_int_eq(token_issue(&c, &in, NOW, &tok), 0);

    char *dot1 = strchr(tok, '.'), *dot2 = strchr(dot1 + 1, '.');
    unsigned char buf[TOKEN_MAX_LEN];
    ssize_t n = b64url_decode(dot1 + 1, (size_t)(dot2 - dot1 - 1), buf);
    ck_assert_int_gt(n, 0);
    json_t *p = json_loadb((const char *)buf, (size_t)n, 0, NULL);
    ck_assert_ptr_nonnull(p);
    ck_assert_str_eq(json_string_value(json_object_get(p, "sub")), "9007199254740993");
    ck_assert_ptr_null(json_object_get(p, "team"));
    ck_assert_str_eq(json_string_value(json_object_get(p, "iss")), ISS);
    ck_assert_str_eq(json_string_value(json_object_get(p, "aud")), AUD);
    ck_assert(json_is_integer(json_object_get(p, "ver")));
    json_decref(p);
    n = b64url_decode(tok, (size_t)(dot1 - tok), buf);
    p = json_loadb((const char *)buf, (size_t)n, 0, NULL);
    ck_assert_str_eq(json_string_value(json_object_get(p, "alg")), "HS256");
    json_decref(p);

    expect_accept_at(&c, tok, NOW, &out);
    ck_assert_int_eq(out.sub, 9007199254740993LL);
    ck_assert_int_eq(out.team, 0);
    ck_assert_int_eq(out.ver, 0);
}
END_TEST

START_TEST(test_issue_jti_unique)
{
    token_conf_t c = hs_conf();
    token_claims_t a = {.sub = 1, .role = "rep", .ver = 1}, b = a;
    char *ta, *tb;
    ck_assert_int_eq(token_issue(&c, &a, NOW, &ta), 0);
    ck_assert_int_eq(token_issue(&c, &b, NOW, &tb), 0);
    ck_assert_str_ne(a.jti, b.jti);
    ck_assert_str_ne(ta, tb);
    free(ta);
    free(tb);
}
END_TEST

START_TEST(test_issue_rejects_bad_input)
{
    token_conf_t c = hs_conf();
    token_claims_t cl = {.sub = 0, .role = "rep", .ver = 1};
    char *tok = (char *)1;
    ck_assert_int_eq(token_issue(&c, &cl, NOW, &tok), ERR_INVALID);
    ck_assert_ptr_null(tok);
    cl.sub = 5;
    strcpy(cl.role, "Rep");
    ck_assert_int_eq(token_issue(&c, &cl, NOW, &tok), ERR_INVALID);
    strcpy(cl.role, "");
    ck_assert_int_eq(token_issue(&c, &cl, NOW, &tok), ERR_INVALID);
    strcpy(cl.role, "rep");
    cl.ver = -1;
    ck_assert_int_eq(token_issue(&c, &cl, NOW, &tok), ERR_INVALID);
    cl.ver = 1;
    cl.team = -3;
    ck_assert_int_eq(token_issue(&c, &cl, NOW, &tok), ERR_INVALID);
    cl.team = 0;

    c.key_len = TOKEN_MIN_HS_KEY_LEN - 1;
    ck_assert_int_eq(token_issue(&c, &cl, NOW, &tok), ERR_INTERNAL);
    ck_assert_ptr_null(tok);
    c = hs_conf();
    c.issuer = NULL;
    ck_assert_int_eq(token_issue(&c, &cl, NOW, &tok), ERR_INTERNAL);
    c = hs_conf();
    c.ttl_s = 0; /* the default lifetime */
    ck_assert_int_eq(token_issue(&c, &cl, NOW, &tok), 0);
    ck_assert_int_eq(cl.exp, NOW + TOKEN_DEFAULT_TTL);
    free(tok);
}
END_TEST

START_TEST(test_hand_built_token_accepted)
{
    /* The builder used by every rejection test makes tokens we accept. */
    token_conf_t c = hs_conf();
    token_claims_t out;
    expect_accept_at(&c, hs(good_claims()), NOW, &out);
    ck_assert_int_eq(out.sub, 42);
    ck_assert_str_eq(out.role, "manager");
    ck_assert_int_eq(out.team, 7);
    ck_assert_int_eq(out.ver, 3);
    ck_assert_str_eq(out.jti, "00112233445566778899aabbccddeeff");
    /* No typ is fine, and so is a UUID jti, team null, and no nbf. */
    expect_accept_at(&c, sign_json("{\"alg\":\"HS256\"}", good_claims(), EVP_sha256(), SECRET, strlen(SECRET)), NOW,
                     &out);
    json_t *p = with(good_claims(), "jti", json_string("123e4567-e89b-12d3-a456-426614174000"));
    with(p, "team", json_null());
    with(p, "nbf", NULL);
    expect_accept_at(&c, hs(p), NOW, &out);
    ck_assert_str_eq(out.jti, "123e4567-e89b-12d3-a456-426614174000");
    ck_assert_int_eq(out.team, 0);
    ck_assert_int_eq(out.nbf, 0);
}
END_TEST

START_TEST(test_rs256_round_trip)
{
    token_conf_t c = rs_conf();
    token_claims_t in = {.sub = 77, .role = "director", .team = 2, .ver = 5}, out;
    char *tok = NULL;
    ck_assert_int_eq(token_issue(&c, &in, NOW, &tok), 0);
    ck_assert_ptr_nonnull(tok);
    expect_accept_at(&c, tok, NOW + 60, &out);
    ck_assert_int_eq(out.sub, 77);
    ck_assert_str_eq(out.role, "director");
    ck_assert_int_eq(out.team, 2);
    ck_assert_int_eq(out.ver, 5);
    ck_assert_str_eq(out.jti, in.jti);
}
END_TEST

START_TEST(test_rs256_verify_needs_only_public_key)
{
    token_conf_t c = rs_conf();
    token_claims_t in = {.sub = 77, .role = "director", .ver = 5}, out;
    char *tok = NULL;
    ck_assert_int_eq(token_issue(&c, &in, NOW, &tok), 0);
    c.key = NULL;
    c.key_len = 0;
    expect_accept_at(&c, tok, NOW, &out);
    ck_assert_int_eq(out.sub, 77);
}
END_TEST

START_TEST(test_rs256_tampered_payload)
{
    token_conf_t c = rs_conf();
    token_claims_t a = {.sub = 1, .role = "rep", .ver = 1}, b = {.sub = 2, .role = "admin", .ver = 1};
    char *ta, *tb;
    ck_assert_int_eq(token_issue(&c, &a, NOW, &ta), 0);
    ck_assert_int_eq(token_issue(&c, &b, NOW, &tb), 0);
    /* b's payload under a's header and signature. */
    char *a1 = strchr(ta, '.'), *a2 = strchr(a1 + 1, '.'), *b1 = strchr(tb, '.'), *b2 = strchr(b1 + 1, '.');
    char *forged = concat(ta, (size_t)(a1 - ta), b1, (size_t)(b2 - b1), a2);
    free(ta);
    free(tb);
    expect_reject_at(&c, forged, NOW, "bad signature");
}
END_TEST

START_TEST(test_rs256_wrong_public_key)
{
    /* The right alg, but a signature by a key that is not ours. */
    token_conf_t c = rs_conf();
    token_claims_t in = {.sub = 1, .role = "rep", .ver = 1};
    char *tok;
    EVP_PKEY *other = NULL;
    EVP_PKEY_CTX *kctx = EVP_PKEY_CTX_new_id(EVP_PKEY_RSA, NULL);
    ck_assert_int_eq(EVP_PKEY_keygen_init(kctx), 1);
    ck_assert_int_eq(EVP_PKEY_CTX_set_rsa_keygen_bits(kctx, 2048), 1);
    ck_assert_int_eq(EVP_PKEY_keygen(kctx, &other), 1);
    EVP_PKEY_CTX_free(kctx);
    BIO *bio = BIO_new(BIO_s_mem());
    ck_assert_int_eq(PEM_write_bio_PrivateKey(bio, other, NULL, NULL, 0, NULL, NULL), 1);
    EVP_PKEY_free(other);
    size_t other_len;
    unsigned char *other_pem = bio_take(bio, &other_len);

    c.key = other_pem;
    c.key_len = other_len;
    ck_assert_int_eq(token_issue(&c, &in, NOW, &tok), 0);
    free(other_pem);
    c = rs_conf();
    expect_reject_at(&c, tok, NOW, "bad signature");
}
END_TEST

START_TEST(test_rs256_bad_private_key)
{
    token_conf_t c = rs_conf();
    token_claims_t in = {.sub = 1, .role = "rep", .ver = 1};
    char *tok = (char *)1;
    c.key = (const unsigned char *)"-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n";
    c.key_len = strlen((const char *)c.key);
    ck_assert_int_eq(token_issue(&c, &in, NOW, &tok), ERR_INTERNAL);
    ck_assert_ptr_null(tok);
}
END_TEST

/* --- algorithm ---------------------------------------------------------- */

START_TEST(test_alg_none_any_case)
{
    static const char *const spellings[] = {"none", "None", "NONE", "nOnE"};
    for (size_t i = 0; i < sizeof(spellings) / sizeof(spellings[0]); i++) {
        char hdr[64];
        snprintf(hdr, sizeof(hdr), "{\"alg\":\"%s\",\"typ\":\"JWT\"}", spellings[i]);
        /* Unsigned, as the attack is usually sent, and with a valid HMAC appended. */
        expect_reject(sign_json(hdr, good_claims(), NULL, NULL, 0), "unsigned token (alg none)");
        expect_reject(sign_json(hdr, good_claims(), EVP_sha256(), SECRET, strlen(SECRET)), "unsigned token (alg none)");
    }
}
END_TEST

START_TEST(test_alg_none_under_rs256)
{
    token_conf_t c = rs_conf();
    expect_reject_at(&c, sign_json("{\"alg\":\"none\"}", good_claims(), NULL, NULL, 0), NOW,
                     "unsigned token (alg none)");
}
END_TEST

START_TEST(test_alg_hs512_with_our_secret)
{
    /* libjwt alone would verify this with our key and accept it. */
    expect_reject(sign_json("{\"alg\":\"HS512\",\"typ\":\"JWT\"}", good_claims(), EVP_sha512(), SECRET, strlen(SECRET)),
                  "unexpected alg");
}
END_TEST

START_TEST(test_alg_hs384_with_our_secret)
{
    expect_reject(sign_json("{\"alg\":\"HS384\",\"typ\":\"JWT\"}", good_claims(), EVP_sha384(), SECRET, strlen(SECRET)),
                  "unexpected alg");
}
END_TEST

START_TEST(test_alg_wrong_case)
{
    /* JOSE alg values are case-sensitive; libjwt's own lookup is not. */
    expect_reject(sign_json("{\"alg\":\"hs256\"}", good_claims(), EVP_sha256(), SECRET, strlen(SECRET)),
                  "unexpected alg");
}
END_TEST

START_TEST(test_alg_missing_or_not_string)
{
    expect_reject(sign_json("{\"typ\":\"JWT\"}", good_claims(), EVP_sha256(), SECRET, strlen(SECRET)),
                  "token has no alg");
    expect_reject(sign_json("{\"alg\":256}", good_claims(), EVP_sha256(), SECRET, strlen(SECRET)), "token has no alg");
    expect_reject(sign_json("{\"alg\":null}", good_claims(), EVP_sha256(), SECRET, strlen(SECRET)), "token has no alg");
}
END_TEST

START_TEST(test_alg_duplicate_header_key)
{
    /* Two parsers could disagree on which alg counts; we refuse to pick. */
    expect_reject(
        sign_json("{\"alg\":\"HS256\",\"alg\":\"none\"}", good_claims(), EVP_sha256(), SECRET, strlen(SECRET)),
        "token header is not base64url JSON");
}
END_TEST

START_TEST(test_alg_key_confusion)
{
    /* HS256 keyed with the RS256 public key PEM, the classic confusion attack. */
    token_conf_t c = rs_conf();
    expect_reject_at(&c, sign_json(HDR_HS256, good_claims(), EVP_sha256(), g_pub, g_pub_len), NOW, "unexpected alg");
    /* Also with the PEM's trailing newline dropped, as some libraries hash it. */
    expect_reject_at(&c, sign_json(HDR_HS256, good_claims(), EVP_sha256(), g_pub, g_pub_len - 1), NOW,
                     "unexpected alg");
}
END_TEST

START_TEST(test_alg_rs256_token_under_hs256)
{
    token_conf_t rc = rs_conf(), hc = hs_conf();
    token_claims_t in = {.sub = 1, .role = "rep", .ver = 1};
    char *tok;
    ck_assert_int_eq(token_issue(&rc, &in, NOW, &tok), 0);
    expect_reject_at(&hc, tok, NOW, "unexpected alg");
}
END_TEST

START_TEST(test_header_typ_and_crit)
{
    expect_reject(sign_json("{\"alg\":\"HS256\",\"typ\":\"JWS\"}", good_claims(), EVP_sha256(), SECRET, strlen(SECRET)),
                  "unexpected typ");
    expect_reject(sign_json("{\"alg\":\"HS256\",\"typ\":7}", good_claims(), EVP_sha256(), SECRET, strlen(SECRET)),
                  "unexpected typ");
    expect_reject(
        sign_json("{\"alg\":\"HS256\",\"crit\":[\"exp\"]}", good_claims(), EVP_sha256(), SECRET, strlen(SECRET)),
        "unsupported crit header");
    expect_accept(
        sign_json("{\"alg\":\"HS256\",\"typ\":\"jwt\"}", good_claims(), EVP_sha256(), SECRET, strlen(SECRET)));
}
END_TEST

/* --- signature ---------------------------------------------------------- */

START_TEST(test_sig_other_secret)
{
    expect_reject(sign_json(HDR_HS256, good_claims(), EVP_sha256(), OTHER_SECRET, strlen(OTHER_SECRET)),
                  "bad signature");
}
END_TEST

START_TEST(test_sig_tampered_payload)
{
    char *good = hs(good_claims());
    char *evil = hs(with(good_claims(), "role", json_string("admin")));
    /* evil's payload with good's signature */
    char *g1 = strchr(good, '.'), *g2 = strchr(g1 + 1, '.'), *e1 = strchr(evil, '.'), *e2 = strchr(e1 + 1, '.');
    char *forged = concat(good, (size_t)(g1 - good), e1, (size_t)(e2 - e1), g2);
    free(good);
    free(evil);
    expect_reject(forged, "bad signature");
}
END_TEST

START_TEST(test_sig_truncated_or_empty)
{
    char *tok = hs(good_claims());
    tok[strlen(tok) - 2] = '\0';
    expect_reject(tok, "bad signature");
    expect_reject(sign_json(HDR_HS256, good_claims(), NULL, NULL, 0), "token has no signature");
}
END_TEST

START_TEST(test_sig_empty_or_short_key_is_config_error)
{
    /* libjwt skips verification with a zero-length key; the module refuses to run like that. */
    token_conf_t c = hs_conf();
    token_claims_t out;
    const char *why = NULL;
    char *tok = sign_json(HDR_HS256, good_claims(), NULL, NULL, 0);
    c.key_len = 0;
    ck_assert_int_eq(verify_at(&c, tok, NOW, &out, &why), ERR_INTERNAL);
    ck_assert_str_eq(why, "token verifier is misconfigured");
    c.key = NULL;
    ck_assert_int_eq(verify_at(&c, tok, NOW, &out, &why), ERR_INTERNAL);
    c = hs_conf();
    c.key_len = TOKEN_MIN_HS_KEY_LEN - 1;
    ck_assert_int_eq(verify_at(&c, tok, NOW, &out, &why), ERR_INTERNAL);
    free(tok);
    c = rs_conf();
    c.pubkey_len = 0;
    tok = sign_json("{\"alg\":\"RS256\"}", good_claims(), NULL, NULL, 0);
    ck_assert_int_eq(verify_at(&c, tok, NOW, &out, &why), ERR_INTERNAL);
    c = hs_conf();
    c.alg = 99;
    ck_assert_int_eq(verify_at(&c, tok, NOW, &out, &why), ERR_INTERNAL);
    free(tok);
}
END_TEST

/* --- shape -------------------------------------------------------------- */

START_TEST(test_shape_parts)
{
    char *good = hs(good_claims());
    char *dot2 = strrchr(good, '.');
    char *two = strndup(good, (size_t)(dot2 - good));
    expect_reject(two, "token does not have three parts");
    char *four = concat(good, strlen(good), "", 0, ".abcd");
    expect_reject(four, "token does not have three parts");
    expect_reject(strdup("abc"), "token does not have three parts");
    expect_reject(strdup(".."), "empty token header or payload");
    char *nohead = malloc(strlen(good) + 1);
    strcpy(nohead, strchr(good, '.'));
    expect_reject(nohead, "empty token header or payload");
    free(good);
}
END_TEST

START_TEST(test_shape_not_base64url)
{
    char *tok = hs(good_claims());
    tok[1] = '+'; /* standard base64, not base64url */
    expect_reject(tok, "token header is not base64url JSON");
    tok = hs(good_claims());
    char *dot2 = strrchr(tok, '.');
    dot2[1] = '='; /* padding in the signature */
    expect_reject(tok, "token signature is not base64url");
    tok = hs(good_claims());
    char *padded = concat(tok, strlen(tok), "", 0, "==");
    free(tok);
    expect_reject(padded, "token signature is not base64url");
    tok = hs(good_claims());
    tok[3] = ' ';
    expect_reject(tok, "token header is not base64url JSON");
}
END_TEST

START_TEST(test_shape_bad_json)
{
    expect_reject(sign_raw("{\"alg\":\"HS256\"", "{}", EVP_sha256(), SECRET, strlen(SECRET)),
                  "token header is not base64url JSON");
    expect_reject(sign_raw("[\"HS256\"]", "{}", EVP_sha256(), SECRET, strlen(SECRET)),
                  "token header is not base64url JSON");
    expect_reject(sign_raw(HDR_HS256, "{\"sub\":\"42\"", EVP_sha256(), SECRET, strlen(SECRET)),
                  "token payload is not a base64url JSON object");
    expect_reject(sign_raw(HDR_HS256, "[1,2,3]", EVP_sha256(), SECRET, strlen(SECRET)),
                  "token payload is not a base64url JSON object");
    expect_reject(sign_raw(HDR_HS256, "\"x\"", EVP_sha256(), SECRET, strlen(SECRET)),
                  "token payload is not a base64url JSON object");
}
END_TEST

START_TEST(test_shape_duplicate_claim)
{
    char payload[512];
    snprintf(payload, sizeof(payload),
             "{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"sub\":\"42\",\"sub\":\"1\",\"role\":\"rep\",\"ver\":1,"
             "\"iat\":%d,\"exp\":%d}",
             NOW, NOW + 60);
    expect_reject(sign_raw(HDR_HS256, payload, EVP_sha256(), SECRET, strlen(SECRET)),
                  "token payload is not a base64url JSON object");
}
END_TEST

START_TEST(test_shape_too_long)
{
    /* A valid token just under the cap passes; anything over it is refused unread. */
    char pad[5400];
    memset(pad, 'a', sizeof(pad) - 1);
    pad[sizeof(pad) - 1] = '\0';
    char *tok = hs(with(good_claims(), "pad", json_string(pad)));
    ck_assert_int_le(strlen(tok), TOKEN_MAX_LEN);
    ck_assert_int_gt(strlen(tok), TOKEN_MAX_LEN - 1000);
    expect_accept(tok);

    char pad2[6500];
    memset(pad2, 'a', sizeof(pad2) - 1);
    pad2[sizeof(pad2) - 1] = '\0';
    tok = hs(with(good_claims(), "pad", json_string(pad2)));
    ck_assert_int_gt(strlen(tok), TOKEN_MAX_LEN);
    expect_reject(tok, "token too long");

    /* Exactly one byte over. */
    char *big = malloc(TOKEN_MAX_LEN + 2);
    memset(big, 'A', TOKEN_MAX_LEN + 1);
    big[10] = '.';
    big[20] = '.';
    big[TOKEN_MAX_LEN + 1] = '\0';
    expect_reject(big, "token too long");
}
END_TEST

START_TEST(test_shape_embedded_nul_and_len)
{
    token_conf_t c = hs_conf();
    token_claims_t out;
    const char *why = NULL;
    char *tok = hs(good_claims());
    size_t len = strlen(tok);
    char *buf = malloc(len + 2);
    memcpy(buf, tok, len);
    buf[len] = '\0';
    buf[len + 1] = 'x';
    ck_assert_int_eq(verify_n(&c, buf, len + 2, NOW, &out, &why), ERR_UNAUTHENTICATED);
    ck_assert_str_eq(why, "NUL byte in token");
    buf[5] = '\0';
    ck_assert_int_eq(verify_n(&c, buf, len, NOW, &out, &why), ERR_UNAUTHENTICATED);
    ck_assert_str_eq(why, "NUL byte in token");
    free(buf);
    /* len is honoured: one byte short is a different (bad) signature. */
    ck_assert_int_eq(verify_n(&c, tok, len - 1, NOW, &out, &why), ERR_UNAUTHENTICATED);
    ck_assert_str_eq(why, "bad signature");
    ck_assert_int_eq(verify_n(&c, tok, len, NOW, &out, &why), 0);
    ck_assert_int_eq(verify_n(&c, tok, 0, NOW, &out, &why), ERR_UNAUTHENTICATED);
    ck_assert_str_eq(why, "empty token");
    ck_assert_int_eq(token_verify(&c, NULL, 10, NOW, &out, &why), ERR_UNAUTHENTICATED);
    ck_assert_int_eq(token_verify(&c, tok, len, NOW, &out, NULL), 0); /* why is optional */
    free(tok);
}
END_TEST

START_TEST(test_b64url_decoder_is_strict)
{
    unsigned char out[16];
    ck_assert_int_eq(b64url_decode("YQ", 2, out), 1);
    ck_assert_int_eq(out[0], 'a');
    ck_assert_int_eq(b64url_decode("YR", 2, out), -1); /* non-zero trailing bits */
    ck_assert_int_eq(b64url_decode("Y", 1, out), -1);
    ck_assert_int_eq(b64url_decode("YQ==", 4, out), -1);
    ck_assert_int_eq(b64url_decode("-_-_", 4, out), 3);
    ck_assert_int_eq(b64url_decode("+/+/", 4, out), -1);
    ck_assert_int_eq(b64url_decode("", 0, out), 0);
}
END_TEST

/* --- claims -------------------------------------------------------------- */

START_TEST(test_claim_exp)
{
    expect_reject(hs(with(good_claims(), "exp", NULL)), "token has no exp");
    expect_reject(hs(with(good_claims(), "exp", json_string("1700000900"))), "exp is not an integer");
    expect_reject(hs(with(good_claims(), "exp", json_real(1700000900.0))), "exp is not an integer");
    expect_reject(hs(with(good_claims(), "exp", json_true())), "exp is not an integer");
    expect_reject(hs(with(good_claims(), "exp", json_null())), "exp is not an integer");
    expect_reject(hs(with(good_claims(), "exp", json_integer(NOW - 3600))), "token expired");
}
END_TEST

START_TEST(test_claim_iat)
{
    expect_reject(hs(with(good_claims(), "iat", NULL)), "token has no iat");
    expect_reject(hs(with(good_claims(), "iat", json_string("1700000000"))), "iat is not an integer");
    expect_reject(hs(with(good_claims(), "iat", json_real(1.7e9))), "iat is not an integer");
}
END_TEST

START_TEST(test_claim_nbf)
{
    expect_reject(hs(with(good_claims(), "nbf", json_string("1700000000"))), "nbf is not an integer");
    expect_reject(hs(with(good_claims(), "nbf", json_real(1.7e9))), "nbf is not an integer");
    expect_reject(hs(with(good_claims(), "nbf", json_integer(NOW + 3600))), "token not yet valid (nbf)");
}
END_TEST

START_TEST(test_claim_iss)
{
    expect_reject(hs(with(good_claims(), "iss", NULL)), "wrong or missing issuer");
    expect_reject(hs(with(good_claims(), "iss", json_string("clientele-evil"))), "wrong or missing issuer");
    expect_reject(hs(with(good_claims(), "iss", json_string("Clientele"))), "wrong or missing issuer");
    expect_reject(hs(with(good_claims(), "iss", json_stringn("clientele\0x", 11))),
                  "token payload is not a base64url JSON object"); /* jansson refuses \u0000 */
    expect_reject(hs(with(good_claims(), "iss", json_pack("[s]", ISS))), "wrong or missing issuer");
}
END_TEST

START_TEST(test_claim_aud)
{
    expect_reject(hs(with(good_claims(), "aud", NULL)), "token has no aud");
    expect_reject(hs(with(good_claims(), "aud", json_string("clientele-admin"))), "wrong audience");
    expect_reject(hs(with(good_claims(), "aud", json_integer(1))), "wrong audience");
    expect_reject(hs(with(good_claims(), "aud", json_pack("[s,s]", "billing", "reports"))), "wrong audience");
    expect_reject(hs(with(good_claims(), "aud", json_array())), "wrong audience");
    expect_reject(hs(with(good_claims(), "aud", json_pack("[s,i]", AUD, 5))), "aud array holds a non-string");
}
END_TEST

START_TEST(test_claim_aud_array_accepted)
{
    token_conf_t c = hs_conf();
    token_claims_t out;
    expect_accept_at(&c, hs(with(good_claims(), "aud", json_pack("[s,s]", "billing", AUD))), NOW, &out);
    ck_assert_int_eq(out.sub, 42);
    expect_accept(hs(with(good_claims(), "aud", json_pack("[s]", AUD))));
}
END_TEST

START_TEST(test_claim_sub)
{
    expect_reject(hs(with(good_claims(), "sub", NULL)), "token has no sub");
    static const char *const bad[] = {
        "0", "-5", "+5", "042", "abc", "42x", "4 2", "", "4.2", "1e3", "9223372036854775808", "99999999999999999999"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        expect_reject(hs(with(good_claims(), "sub", json_string(bad[i]))), "sub is not a positive integer string");
    expect_reject(hs(with(good_claims(), "sub", json_integer(42))), "sub is not a positive integer string");
    expect_reject(hs(with(good_claims(), "sub", json_stringn("42\0", 3))),
                  "token payload is not a base64url JSON object");

    token_conf_t c = hs_conf();
    token_claims_t out;
    expect_accept_at(&c, hs(with(good_claims(), "sub", json_string("9223372036854775807"))), NOW, &out);
    ck_assert_int_eq(out.sub, INT64_MAX);
}
END_TEST

START_TEST(test_claim_role)
{
    expect_reject(hs(with(good_claims(), "role", NULL)), "token has no role");
    static const char *const bad[] = {
        "", "Admin", "9lives", "sales rep", "rep\n", "_rep", "a23456789012345678901234567890123"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        expect_reject(hs(with(good_claims(), "role", json_string(bad[i]))), "role is not a valid role name");
    expect_reject(hs(with(good_claims(), "role", json_integer(1))), "role is not a valid role name");
    expect_reject(hs(with(good_claims(), "role", json_stringn("rep\0admin", 9))),
                  "token payload is not a base64url JSON object");

    token_conf_t c = hs_conf();
    token_claims_t out;
    expect_accept_at(&c, hs(with(good_claims(), "role", json_string("a2345678901234567890123456789012"))), NOW, &out);
    ck_assert_str_eq(out.role, "a2345678901234567890123456789012");
}
END_TEST

START_TEST(test_claim_ver)
{
    expect_reject(hs(with(good_claims(), "ver", NULL)), "token has no ver");
    expect_reject(hs(with(good_claims(), "ver", json_string("3"))), "ver is not a non-negative integer");
    expect_reject(hs(with(good_claims(), "ver", json_real(3.0))), "ver is not a non-negative integer");
    expect_reject(hs(with(good_claims(), "ver", json_null())), "ver is not a non-negative integer");
    expect_reject(hs(with(good_claims(), "ver", json_integer(-1))), "ver is not a non-negative integer");
}
END_TEST

START_TEST(test_claim_team_and_jti)
{
    expect_reject(hs(with(good_claims(), "team", json_string("7"))), "team is not a positive integer");
    expect_reject(hs(with(good_claims(), "team", json_integer(-7))), "team is not a positive integer");
    expect_reject(hs(with(good_claims(), "team", json_integer(0))), "team is not a positive integer");
    expect_reject(hs(with(good_claims(), "jti", json_string("not-hex!"))), "jti is malformed");
    expect_reject(hs(with(good_claims(), "jti", json_string("0123456789abcdef0123456789abcdef01234"))),
                  "jti is malformed");
    expect_reject(hs(with(good_claims(), "jti", json_integer(5))), "jti is malformed");
}
END_TEST

/* --- time and leeway ------------------------------------------------------ */

static char *at_times(int64_t iat, int64_t nbf, int64_t exp)
{
    json_t *p = good_claims();
    with(p, "iat", json_integer(iat));
    with(p, "nbf", json_integer(nbf));
    with(p, "exp", json_integer(exp));
    return hs(p);
}

START_TEST(test_time_exp_boundary)
{
    /* leeway 30: exp = now - 29 is still good, exp = now - 30 is not. */
    expect_accept(at_times(NOW - 900, NOW - 900, NOW - 30 + 1));
    expect_reject(at_times(NOW - 900, NOW - 900, NOW - 30), "token expired");
    expect_reject(at_times(NOW - 900, NOW - 900, NOW - 31), "token expired");
}
END_TEST

START_TEST(test_time_nbf_boundary)
{
    expect_accept(at_times(NOW, NOW + 30, NOW + 900));
    expect_reject(at_times(NOW, NOW + 31, NOW + 900), "token not yet valid (nbf)");
}
END_TEST

START_TEST(test_time_iat_boundary)
{
    expect_accept(at_times(NOW + 30, NOW, NOW + 900));
    expect_reject(at_times(NOW + 31, NOW, NOW + 900), "token issued in the future (iat)");
}
END_TEST

START_TEST(test_time_zero_leeway)
{
    token_conf_t c = hs_conf();
    token_claims_t out;
    c.leeway_s = 0;
    expect_accept_at(&c, at_times(NOW, NOW, NOW + 1), NOW, &out);
    expect_reject_at(&c, at_times(NOW - 10, NOW - 10, NOW), NOW, "token expired");
    expect_reject_at(&c, at_times(NOW, NOW + 1, NOW + 60), NOW, "token not yet valid (nbf)");
    expect_reject_at(&c, at_times(NOW + 1, NOW, NOW + 60), NOW, "token issued in the future (iat)");
}
END_TEST

START_TEST(test_time_leeway_clamped)
{
    /* A configured leeway above 30 s acts as 30 s. */
    token_conf_t c = hs_conf();
    token_claims_t out;
    c.leeway_s = 3600;
    expect_accept_at(&c, at_times(NOW - 900, NOW - 900, NOW - 29), NOW, &out);
    expect_reject_at(&c, at_times(NOW - 900, NOW - 900, NOW - 30), NOW, "token expired");
    expect_reject_at(&c, at_times(NOW, NOW + 31, NOW + 900), NOW, "token not yet valid (nbf)");
    c.leeway_s = -5;
    expect_reject_at(&c, at_times(NOW - 10, NOW - 10, NOW), NOW, "token expired");
}
END_TEST

START_TEST(test_time_issued_token_lifetime)
{
    token_conf_t c = hs_conf();
    token_claims_t in = {.sub = 3, .role = "rep", .ver = 1}, out;
    char *tok;
    ck_assert_int_eq(token_issue(&c, &in, NOW, &tok), 0);
    char *copy = strdup(tok);
    expect_accept_at(&c, tok, NOW + 900 + 29, &out);
    expect_reject_at(&c, copy, NOW + 900 + 30, "token expired");
}
END_TEST

static Suite *token_suite(void)
{
    Suite *s = suite_create("token");
    TCase *tc;

    tc = tcase_create("round_trip");
    tcase_set_timeout(tc, 20);
    tcase_add_test(tc, test_hs256_round_trip);
    tcase_add_test(tc, test_hs256_claims_on_the_wire);
    tcase_add_test(tc, test_issue_jti_unique);
    tcase_add_test(tc, test_issue_rejects_bad_input);
    tcase_add_test(tc, test_hand_built_token_accepted);
    suite_add_tcase(s, tc);

    tc = tcase_create("rs256");
    tcase_add_unchecked_fixture(tc, rsa_setup, rsa_teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_rs256_round_trip);
    tcase_add_test(tc, test_rs256_verify_needs_only_public_key);
    tcase_add_test(tc, test_rs256_tampered_payload);
    tcase_add_test(tc, test_rs256_wrong_public_key);
    tcase_add_test(tc, test_rs256_bad_private_key);
    suite_add_tcase(s, tc);

    tc = tcase_create("alg");
    tcase_add_unchecked_fixture(tc, rsa_setup, rsa_teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_alg_none_any_case);
    tcase_add_test(tc, test_alg_none_under_rs256);
    tcase_add_test(tc, test_alg_hs512_with_our_secret);
    tcase_add_test(tc, test_alg_hs384_with_our_secret);
    tcase_add_test(tc, test_alg_wrong_case);
    tcase_add_test(tc, test_alg_missing_or_not_string);
    tcase_add_test(tc, test_alg_duplicate_header_key);
    tcase_add_test(tc, test_alg_key_confusion);
    tcase_add_test(tc, test_alg_rs256_token_under_hs256);
    tcase_add_test(tc, test_header_typ_and_crit);
    suite_add_tcase(s, tc);

    tc = tcase_create("signature");
    tcase_add_unchecked_fixture(tc, rsa_setup, rsa_teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_sig_other_secret);
    tcase_add_test(tc, test_sig_tampered_payload);
    tcase_add_test(tc, test_sig_truncated_or_empty);
    tcase_add_test(tc, test_sig_empty_or_short_key_is_config_error);
    suite_add_tcase(s, tc);

    tc = tcase_create("shape");
    tcase_set_timeout(tc, 20);
    tcase_add_test(tc, test_shape_parts);
    tcase_add_test(tc, test_shape_not_base64url);
    tcase_add_test(tc, test_shape_bad_json);
    tcase_add_test(tc, test_shape_duplicate_claim);
    tcase_add_test(tc, test_shape_too_long);
    tcase_add_test(tc, test_shape_embedded_nul_and_len);
    tcase_add_test(tc, test_b64url_decoder_is_strict);
    suite_add_tcase(s, tc);

    tc = tcase_create("claims");
    tcase_set_timeout(tc, 20);
    tcase_add_test(tc, test_claim_exp);
    tcase_add_test(tc, test_claim_iat);
    tcase_add_test(tc, test_claim_nbf);
    tcase_add_test(tc, test_claim_iss);
    tcase_add_test(tc, test_claim_aud);
    tcase_add_test(tc, test_claim_aud_array_accepted);
    tcase_add_test(tc, test_claim_sub);
    tcase_add_test(tc, test_claim_role);
    tcase_add_test(tc, test_claim_ver);
    tcase_add_test(tc, test_claim_team_and_jti);
    suite_add_tcase(s, tc);

    tc = tcase_create("time");
    tcase_set_timeout(tc, 20);
    tcase_add_test(tc, test_time_exp_boundary);
    tcase_add_test(tc, test_time_nbf_boundary);
    tcase_add_test(tc, test_time_iat_boundary);
    tcase_add_test(tc, test_time_zero_leeway);
    tcase_add_test(tc, test_time_leeway_clamped);
    tcase_add_test(tc, test_time_issued_token_lifetime);
    suite_add_tcase(s, tc);

    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(token_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
