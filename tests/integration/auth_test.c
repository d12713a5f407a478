/*
 * tests/integration/auth_test.c - logging in, access tokens and refresh
 * tokens against real PostgreSQL and Redis: the body checks of the token
 * endpoint, login answers and timing, a matrix of hostile JWTs on GET
 * /v1/me, refresh token rotation and reuse detection, login throttling,
 * and what /v1/me shows for each built-in role.
 *
 * One API process serves each TCase (the crew's unchecked fixture in the
 * parent, tests/support/crew.c); Check forks each test, which talks to it
 * over HTTP. Users are created once in main() with `clientele-api
 * user-add`; tests that deactivate a user or bump its token_version use a
 * user of their own. The crew's checked fixture empties this suite's Redis
 * database before every test, so throttling counters never leak from one
 * test into the next. Hostile tokens are built here from scratch (base64url
 * and OpenSSL's HMAC) with the API's own secret.
 */
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <check.h>

#include "common/jx.h"
#include "tests/support/crew.h"

#define SECRET "auth-test-secret-0123456789abcdefghijklmnop"
#define PASSWORD "correct-horse-battery"
#define TOKEN_PATH "/v1/auth/token"

/* clang-format off */
static const char *const api_env[] = {
    "CLIENTELE_JWT_SECRET=" SECRET,
    "CLIENTELE_BODY_LIMIT=16KiB",
    "CLIENTELE_BULK_BODY_LIMIT=64KiB",
    /* h2o refuses, unread, bodies over the largest limit of any route: bulks' or attachments'. */
    "CLIENTELE_ATTACHMENT_LIMIT=64KiB",
    "CLIENTELE_THREADS=2",
    "CLIENTELE_ACCESS_TTL=15m",
    "CLIENTELE_TRUSTED_PROXIES=127.0.0.5, 127.0.1.0/24",
    NULL,
};
/* clang-format on */

static const crew_conf_t conf = {.name = "auth", .redis_db = 2, .env = api_env};

/* Ids filled in by main() before the runner forks; every test inherits them. */
static long long uid_rep, uid_dave, uid_vera;

/* clang-format off */
static const struct {
    const char *email, *role, *team;
} role_users[] = {
    {"admin@example.com", "admin", NULL},
    {"director@example.com", "director", NULL},
    {"manager@example.com", "manager", "north"},
    {"rep@example.com", "rep", "south"},
    {"analyst@example.com", "analyst", NULL},
    {"integration@example.com", "integration", NULL},
};
/* clang-format on */

/* --- helpers -------------------------------------------------------------- */

static int post(const char *path, const char *ctype, const char *body, size_t len, th_resp_t *r)
{
    char ct[128];
    snprintf(ct, sizeof(ct), "Content-Type: %s", ctype != NULL ? ctype : "");
    const char *h[] = {ctype != NULL ? ct : NULL, NULL};
    return th_http(api.port, "POST", path, h, body, len, r);
}

static int post_json(const char *path, const char *body, th_resp_t *r)
{
    return post(path, "application/json", body, strlen(body), r);
}

/* POST /v1/auth/token with {email, password}; the whole answer in r. */
static void login(const char *email, const char *password, th_resp_t *r)
{
    json_t *b = json_pack("{s:s, s:s}", "email", email, "password", password);
    char *text = json_dumps(b, JSON_COMPACT);
    json_decref(b);
    ck_assert_int_eq(post_json(TOKEN_PATH, text, r), 0);
    free(text);
}

static int refresh_call(const char *path, const char *refresh, th_resp_t *r)
{
    json_t *b = json_pack("{s:s}", "refresh_token", refresh);
    char *text = json_dumps(b, JSON_COMPACT);
    json_decref(b);
    int rc = post_json(path, text, r);
    free(text);
    return rc;
}

/* GET /v1/me with a raw Authorization header value (NULL: none). */
static void get_me(const char *authorization, th_resp_t *r)
{
    char h[9000];
    snprintf(h, sizeof(h), "Authorization: %s", authorization != NULL ? authorization : "");
    const char *hs[] = {authorization != NULL ? h : NULL, NULL};
    ck_assert_int_eq(th_http(api.port, "GET", "/v1/me", hs, NULL, 0, r), 0);
}

static void get_me_bearer(const char *token, th_resp_t *r)
{
    char v[8500];
    snprintf(v, sizeof(v), "Bearer %s", token);
    get_me(v, r);
}

static int count_header(const th_resp_t *r, const char *name)
{
    int n = 0;
    size_t nlen = strlen(name);
    for (const char *line = strstr(r->head, "\r\n"); line != NULL; line = strstr(line, "\r\n")) {
        line += 2;
        if (strncasecmp(line, name, nlen) == 0 && line[nlen] == ':')
            n++;
    }
    return n;
}

/*
 * A problem: status, problem+json, a known type, a title, a detail sentence,
 * and an X-Request-Id header that matches the body's request_id.
 */
static void assert_problem_shape(const th_resp_t *r, int status, const char *type)
{
    char buf[128], id[96];
    ck_assert_msg(r->status == status, "status %d, want %d: %s", r->status, status, r->body);
    ck_assert_ptr_nonnull(th_header(r, "content-type", buf, sizeof(buf)));
    ck_assert_str_eq(buf, "application/problem+json");
    ck_assert_msg(r->json != NULL && json_is_object(r->json), "body is not a JSON object: %s", r->body);
    ck_assert_pstr_eq(jstr(r->json, "type"), type);
    ck_assert_int_eq(json_integer_value(json_object_get(r->json, "status")), status);
    ck_assert_msg(jstr(r->json, "title") != NULL && jstr(r->json, "title")[0] != '\0', "no title: %s", r->body);
    ck_assert_msg(jstr(r->json, "detail") != NULL && jstr(r->json, "detail")[0] != '\0', "no detail: %s", r->body);
    ck_assert_msg(th_header(r, "x-request-id", id, sizeof(id)) != NULL, "no X-Request-Id header");
    ck_assert_msg(id[0] != '\0', "empty X-Request-Id header");
    if (jstr(r->json, "request_id") != NULL)
        ck_assert_str_eq(jstr(r->json, "request_id"), id);
}

/* A complete problem: the above plus an instance, equal to the request path when instance is not NULL. */
static void assert_problem(const th_resp_t *r, int status, const char *type, const char *instance)
{
    assert_problem_shape(r, status, type);
    ck_assert_msg(jstr(r->json, "instance") != NULL, "no instance: %s", r->body);
    if (instance != NULL)
        ck_assert_str_eq(jstr(r->json, "instance"), instance);
}

/* The fields named in a 422's errors[], in order, as ",a,b,"; every code must equal code (if not NULL). */
static void error_fields(const th_resp_t *r, const char *code, char *out, size_t len)
{
    json_t *errors = json_object_get(r->json, "errors"), *e;
    size_t i, n = (size_t)snprintf(out, len, ",");
    ck_assert_msg(json_is_array(errors), "no errors[]: %s", r->body);
    json_array_foreach(errors, i, e)
    {
        ck_assert_ptr_nonnull(jstr(e, "field"));
        ck_assert_ptr_nonnull(jstr(e, "message"));
        if (code != NULL)
            ck_assert_pstr_eq(jstr(e, "code"), code);
        n += (size_t)snprintf(out + n, n < len ? len - n : 0, "%s,", jstr(e, "field"));
    }
}

/* An access token must be refused: 401, unauthenticated, WWW-Authenticate naming invalid_token. */
static void assert_token_refused(const th_resp_t *r, const char *what)
{
    char wa[160];
    ck_assert_msg(r->status == 401, "%s: status %d, want 401: %s", what, r->status, r->body);
    ck_assert_msg(r->json != NULL, "%s: body is not JSON", what);
    ck_assert_msg(jstr(r->json, "type") != NULL && strcmp(jstr(r->json, "type"), "/problems/unauthenticated") == 0,
                  "%s: type %s", what, r->body);
    ck_assert_msg(th_header(r, "www-authenticate", wa, sizeof(wa)) != NULL, "%s: no WWW-Authenticate", what);
    ck_assert_msg(strncmp(wa, "Bearer", 6) == 0 && strstr(wa, "error=\"invalid_token\"") != NULL,
                  "%s: WWW-Authenticate: %s", what, wa);
    ck_assert_msg(count_header(r, "www-authenticate") == 1, "%s: %d WWW-Authenticate headers", what,
                  count_header(r, "www-authenticate"));
}

static void me_refused(const char *authorization, const char *what)
{
    th_resp_t r;
    get_me(authorization, &r);
    assert_token_refused(&r, what);
    th_resp_free(&r);
}

static void me_token_refused(const char *token, const char *what)
{
    th_resp_t r;
    get_me_bearer(token, &r);
    assert_token_refused(&r, what);
    th_resp_free(&r);
}

static void me_token_accepted(const char *token, long long uid, const char *what)
{
    th_resp_t r;
    get_me_bearer(token, &r);
    ck_assert_msg(r.status == 200, "%s: status %d, want 200: %s", what, r.status, r.body);
    ck_assert_int_eq(json_integer_value(json_object_get(r.json, "id")), uid);
    th_resp_free(&r);
}

/* --- building tokens -------------------------------------------------------- */

static void b64url(const void *src, size_t len, char *out, size_t outlen)
{
    size_t n = jx_b64url_encode(src, len, out, outlen);
    ck_assert_msg(n < outlen, "token buffer too small");
}

/*
 * Signs header {"alg":alg,"typ":"JWT"} and payload (consumed) into out:
 * HMAC with the SHA size the alg names, keyed with key; alg "none" gets an
 * empty signature.
 */
static void make_token(const char *alg, const char *key, json_t *payload, char *out, size_t outlen)
{
    json_t *header = json_pack("{s:s, s:s}", "alg", alg, "typ", "JWT");
    char *h = json_dumps(header, JSON_COMPACT), *p = json_dumps(payload, JSON_COMPACT);
    json_decref(header);
    json_decref(payload);
    char hb[512], pb[2048];
    b64url(h, strlen(h), hb, sizeof(hb));
    b64url(p, strlen(p), pb, sizeof(pb));
    free(h);
    free(p);
    int n = snprintf(out, outlen, "%s.%s.", hb, pb);
    ck_assert_int_lt(n, (int)outlen);
    const EVP_MD *md = strcasecmp(alg, "HS256") == 0   ? EVP_sha256()
                       : strcasecmp(alg, "HS384") == 0 ? EVP_sha384()
                       : strcasecmp(alg, "HS512") == 0 ? EVP_sha512()
                                                       : NULL;
    if (md == NULL)
        return;
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    ck_assert_ptr_nonnull(HMAC(md, key, (int)strlen(key), (const unsigned char *)out, (size_t)n - 1, mac, &maclen));
    b64url(mac, maclen, out + n, outlen - (size_t)n);
}

/* The claims the API issues for the rep user, with times relative to now. */
static json_t *rep_claims(long long iat_off, long long nbf_off, long long exp_off)
{
    long long now = (long long)time(NULL);
    char sub[24];
    snprintf(sub, sizeof(sub), "%lld", uid_rep);
    return json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:s}", "iss", "clientele", "aud", "clientele-api",
                     "sub", sub, "role", "rep", "team", (json_int_t)team_south, "ver", (json_int_t)1, "iat",
                     (json_int_t)(now + iat_off), "nbf", (json_int_t)(now + nbf_off), "exp",
                     (json_int_t)(now + exp_off), "jti", "0123456789abcdef0123456789abcdef");
}

/* --- 1. the body pipeline on POST /v1/auth/token ----------------------------- */

START_TEST(malformed_json_is_400_problem)
{
    static const char *const bodies[] = {"{\"email\":", "{\"email\":\"a@b.c\",}", "not json at all",
                                         "{\"email\":\"a@b.c\",\"email\":\"d@e.f\",\"password\":\"xxxxxxxxxxxx\"}"};
    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        th_resp_t r;
        ck_assert_int_eq(post_json(TOKEN_PATH, bodies[i], &r), 0);
        assert_problem(&r, 400, "/problems/bad-request", TOKEN_PATH);
        th_resp_free(&r);
    }
}
END_TEST

START_TEST(body_without_json_content_type_is_415)
{
    const char body[] = "{\"email\":\"rep@example.com\",\"password\":\"" PASSWORD "\"}";
    static const char *const types[] = {NULL, "text/plain", "application/x-www-form-urlencoded", "application/jsonx"};
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        th_resp_t r;
        ck_assert_int_eq(post(TOKEN_PATH, types[i], body, strlen(body), &r), 0);
        assert_problem(&r, 415, "/problems/unsupported-media-type", TOKEN_PATH);
        th_resp_free(&r);
    }
    /* Parameters and case do not matter: this one passes the media type check and fails validation. */
    th_resp_t r;
    ck_assert_int_eq(post(TOKEN_PATH, "Application/JSON; charset=utf-8", "{}", 2, &r), 0);
    assert_problem(&r, 422, "/problems/validation-failed", TOKEN_PATH);
    th_resp_free(&r);
}
END_TEST

START_TEST(body_over_limit_is_413_problem)
{
    /* 20 KiB of valid JSON: over CLIENTELE_BODY_LIMIT (16 KiB), under the bulk limit h2o enforces. */
    size_t pwlen = 20 * 1024;
    char *body = malloc(pwlen + 64);
    int n = snprintf(body, 64, "{\"email\":\"rep@example.com\",\"password\":\"");
    memset(body + n, 'p', pwlen);
    strcpy(body + n + pwlen, "\"}");
    json_t *valid = json_loads(body, 0, NULL);
    ck_assert_ptr_nonnull(valid);
    json_decref(valid);
    th_resp_t r;
    ck_assert_int_eq(post_json(TOKEN_PATH, body, &r), 0);
    free(body);
    assert_problem(&r, 413, "/problems/payload-too-large", TOKEN_PATH);
    th_resp_free(&r);
}
END_TEST

/* Sends the bytes without closing our side; returns what came back within timeout_ms (malloc'ed). */
static char *send_and_wait(const char *bytes, size_t len, int timeout_ms, long long *took_ms)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)api.port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    long long t0 = th_now_ms();
    ck_assert_int_eq(write(fd, bytes, len), (ssize_t)len);
    size_t cap = 65536, got = 0;
    char *buf = calloc(1, cap);
    for (;;) {
        ssize_t r = read(fd, buf + got, cap - got - 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
        /* Stop once the headers and the declared body are in: the server may keep the socket open. */
        char *sep = strstr(buf, "\r\n\r\n");
        const char *cl = strcasestr(buf, "\r\ncontent-length:");
        if (sep != NULL && cl != NULL && cl < sep && got >= (size_t)(sep + 4 - buf) + strtoul(cl + 17, NULL, 10))
            break;
    }
    *took_ms = th_now_ms() - t0;
    close(fd);
    return buf;
}

START_TEST(declared_body_over_bulk_limit_is_413_before_reading)
{
    /* Declares 70000 bytes (over the 64 KiB bulk and attachment limits) and sends 11: no wait for the rest. */
    const char req[] = "POST " TOKEN_PATH " HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                       "Content-Length: 70000\r\n\r\n{\"email\":\"a";
    long long took;
    char *out = send_and_wait(req, sizeof(req) - 1, 5000, &took);
    ck_assert_msg(strncmp(out, "HTTP/1.1 413", 12) == 0, "got: %.120s", out);
    ck_assert_int_lt(took, 3000);
    char *sep = strstr(out, "\r\n\r\n");
    ck_assert_ptr_nonnull(sep);
    *sep = '\0';
    th_resp_t r = {.status = 413, .head = out, .body = sep + 4, .body_len = strlen(sep + 4)};
    r.json = json_loads(r.body, 0, NULL);
    assert_problem(&r, 413, "/problems/payload-too-large", NULL);
    json_decref(r.json);
    free(out);
}
END_TEST

START_TEST(unknown_fields_are_422_naming_them)
{
    th_resp_t r;
    char fields[256];
    ck_assert_int_eq(
        post_json(TOKEN_PATH,
                  "{\"email\":\"rep@example.com\",\"password\":\"" PASSWORD "\",\"admin\":true,\"remember_me\":1}", &r),
        0);
    assert_problem(&r, 422, "/problems/validation-failed", TOKEN_PATH);
    error_fields(&r, "unknown_field", fields, sizeof(fields));
    ck_assert_str_eq(fields, ",admin,remember_me,");
    th_resp_free(&r);
}
END_TEST

START_TEST(missing_credentials_are_listed_together)
{
    th_resp_t r;
    char fields[256];
    ck_assert_int_eq(post_json(TOKEN_PATH, "{}", &r), 0);
    assert_problem(&r, 422, "/problems/validation-failed", TOKEN_PATH);
    error_fields(&r, "required", fields, sizeof(fields));
    ck_assert_str_eq(fields, ",email,password,");
    th_resp_free(&r);

    /* Wrong types are reported for both fields at once too. */
    ck_assert_int_eq(post_json(TOKEN_PATH, "{\"email\":5,\"password\":null}", &r), 0);
    assert_problem(&r, 422, "/problems/validation-failed", TOKEN_PATH);
    error_fields(&r, "invalid_type", fields, sizeof(fields));
    ck_assert_str_eq(fields, ",email,password,");
    th_resp_free(&r);
}
END_TEST

/* --- 2. logging in ------------------------------------------------------------ */

START_TEST(right_password_gets_tokens)
{
    th_resp_t r;
    char cc[64];
    login("rep@example.com", PASSWORD, &r);
    ck_assert_msg(r.status == 200, "status %d: %s", r.status, r.body);
    ck_assert_ptr_nonnull(th_header(&r, "content-type", cc, sizeof(cc)));
    ck_assert_str_eq(cc, "application/json");
    ck_assert_ptr_nonnull(th_header(&r, "cache-control", cc, sizeof(cc)));
    ck_assert_str_eq(cc, "no-store");
    const char *access = jstr(r.json, "access_token"), *refresh = jstr(r.json, "refresh_token");
    ck_assert_msg(access != NULL && strlen(access) > 20, "access_token: %s", r.body);
    ck_assert_msg(refresh != NULL && strlen(refresh) >= 32, "refresh_token: %s", r.body);
    ck_assert_str_eq(jstr(r.json, "token_type"), "Bearer");
    ck_assert_msg(json_is_integer(json_object_get(r.json, "expires_in")), "expires_in: %s", r.body);
    ck_assert_int_eq(json_integer_value(json_object_get(r.json, "expires_in")), 900);
    /* The email is matched case-insensitively, and the token works. */
    char access2[2048];
    ck_assert_int_eq(th_login(api.port, "Rep@Example.COM", PASSWORD, access2, NULL), 200);
    me_token_accepted(access, uid_rep, "fresh login token");
    th_resp_free(&r);
}
END_TEST

/* One login's time in ms, with its answer copied to r. */
static long long timed_login(const char *email, const char *password, th_resp_t *r)
{
    long long t0 = th_now_ms();
    login(email, password, r);
    return th_now_ms() - t0;
}

START_TEST(wrong_password_and_unknown_email_look_the_same)
{
    th_resp_t wrong, unknown;
    long long t_wrong = 0, t_unknown = 0;
    for (int i = 0; i < 3; i++) {
        t_wrong += timed_login("rep@example.com", "not-the-password", &wrong);
        t_unknown += timed_login("nobody-at-all@example.com", "not-the-password", &unknown);
        assert_problem(&wrong, 401, "/problems/unauthenticated", TOKEN_PATH);
        assert_problem(&unknown, 401, "/problems/unauthenticated", TOKEN_PATH);
        ck_assert_str_eq(jstr(wrong.json, "title"), jstr(unknown.json, "title"));
        ck_assert_str_eq(jstr(wrong.json, "detail"), jstr(unknown.json, "detail"));
        ck_assert_ptr_null(json_object_get(wrong.json, "access_token"));
        th_resp_free(&wrong);
        th_resp_free(&unknown);
    }
    /* Both run argon2: an unknown email that skipped it would answer many times faster. */
    ck_assert_msg(t_unknown * 3 >= t_wrong, "unknown email took %lld ms, wrong password %lld ms (3 tries each)",
                  t_unknown, t_wrong);
    ck_assert_msg(t_wrong * 3 >= t_unknown, "wrong password took %lld ms, unknown email %lld ms (3 tries each)",
                  t_wrong, t_unknown);
}
END_TEST

START_TEST(deactivated_user_cannot_log_in)
{
    char access[2048];
    /* The password is right, so only the deactivation can explain a refusal. */
    ck_assert_int_eq(th_login(api.port, "gone@example.com", PASSWORD, access, NULL), 200);
    ck_assert_int_eq(th_sql(db_url, "UPDATE users SET active = false WHERE email = 'gone@example.com'"), 0);
    th_resp_t r;
    login("gone@example.com", PASSWORD, &r);
    assert_problem(&r, 401, "/problems/unauthenticated", TOKEN_PATH);
    ck_assert_ptr_null(json_object_get(r.json, "access_token"));
    th_resp_free(&r);
}
END_TEST

/* --- 3. the JWT matrix on GET /v1/me ------------------------------------------ */

START_TEST(valid_token_shows_the_caller)
{
    char access[2048];
    login_ok("rep@example.com", PASSWORD, access, NULL);
    th_resp_t r;
    get_me_bearer(access, &r);
    ck_assert_msg(r.status == 200, "status %d: %s", r.status, r.body);
    ck_assert_int_eq(json_integer_value(json_object_get(r.json, "id")), uid_rep);
    ck_assert_str_eq(jstr(r.json, "email"), "rep@example.com");
    ck_assert_str_eq(jstr(r.json, "role"), "rep");
    ck_assert_int_eq(json_integer_value(json_object_get(r.json, "team_id")), team_south);
    ck_assert_pstr_eq(jstr(r.json, "team"), "south");
    ck_assert_msg(json_is_object(json_object_get(r.json, "permissions")), "permissions: %s", r.body);
    th_resp_free(&r);
    /* A token built here with the same secret and claims is accepted too: the refusals below are not artefacts. */
    char tok[4096];
    make_token("HS256", SECRET, rep_claims(0, 0, 900), tok, sizeof(tok));
    me_token_accepted(tok, uid_rep, "self-made HS256 token");
}
END_TEST

START_TEST(missing_authorization_is_401_plain_bearer)
{
    th_resp_t r;
    char wa[128];
    get_me(NULL, &r);
    assert_problem_shape(&r, 401, "/problems/unauthenticated");
    ck_assert_ptr_nonnull(th_header(&r, "www-authenticate", wa, sizeof(wa)));
    ck_assert_str_eq(wa, "Bearer");
    ck_assert_int_eq(count_header(&r, "www-authenticate"), 1);
    th_resp_free(&r);
}
END_TEST

START_TEST(refused_tokens_are_complete_problems)
{
    /* Every 401 names the path it answers, like every other problem (and like a refused login does). */
    th_resp_t r;
    get_me(NULL, &r);
    assert_problem(&r, 401, "/problems/unauthenticated", "/v1/me");
    th_resp_free(&r);
    get_me("Bearer abc", &r);
    assert_token_refused(&r, "abc");
    assert_problem(&r, 401, "/problems/unauthenticated", "/v1/me");
    th_resp_free(&r);
    ck_assert_int_eq(refresh_call("/v1/auth/refresh", "q8Yh1fB2m3n4p5r6s7t8u9v0w1x2y3z4A5B6C7D8E9F", &r), 0);
    assert_problem(&r, 401, "/problems/unauthenticated", "/v1/auth/refresh");
    th_resp_free(&r);
}
END_TEST

START_TEST(unsigned_and_foreign_algorithms_are_refused)
{
    char tok[4096], sig[256];
    make_token("none", NULL, rep_claims(0, 0, 900), tok, sizeof(tok));
    me_token_refused(tok, "alg none, empty signature");
    /* alg none with a real HS256 signature attached. */
    make_token("HS256", SECRET, rep_claims(0, 0, 900), tok, sizeof(tok));
    snprintf(sig, sizeof(sig), "%s", strrchr(tok, '.') + 1);
    make_token("none", NULL, rep_claims(0, 0, 900), tok, sizeof(tok));
    strncat(tok, sig, sizeof(tok) - strlen(tok) - 1);
    me_token_refused(tok, "alg none with a signature");
    make_token("HS512", SECRET, rep_claims(0, 0, 900), tok, sizeof(tok));
    me_token_refused(tok, "HS512 with the same secret");
    make_token("HS384", SECRET, rep_claims(0, 0, 900), tok, sizeof(tok));
    me_token_refused(tok, "HS384 with the same secret");
    make_token("hs256", SECRET, rep_claims(0, 0, 900), tok, sizeof(tok));
    me_token_refused(tok, "alg spelled hs256");
}
END_TEST

START_TEST(bad_signature_is_refused)
{
    char access[2048], tok[4096];
    login_ok("rep@example.com", PASSWORD, access, NULL);
    me_token_accepted(access, uid_rep, "login token before tampering");
    char *sig = strrchr(access, '.') + 1;
    sig[3] = sig[3] == 'A' ? 'B' : 'A';
    me_token_refused(access, "login token with one signature character changed");
    /* Signed with another secret of the same length. */
    make_token("HS256", "auth-test-secret-0123456789abcdefghijklmnoX", rep_claims(0, 0, 900), tok, sizeof(tok));
    me_token_refused(tok, "HS256 with another secret");
    /* The payload changed after signing (role rep -> admin). */
    make_token("HS256", SECRET, rep_claims(0, 0, 900), tok, sizeof(tok));
    char *dot1 = strchr(tok, '.'), *dot2 = strchr(dot1 + 1, '.');
    json_t *claims = rep_claims(0, 0, 900);
    json_object_set_new(claims, "role", json_string("admin"));
    char *p = json_dumps(claims, JSON_COMPACT), pb[2048], forged[4096];
    json_decref(claims);
    b64url(p, strlen(p), pb, sizeof(pb));
    free(p);
    snprintf(forged, sizeof(forged), "%.*s.%s%s", (int)(dot1 - tok), tok, pb, dot2);
    me_token_refused(forged, "payload changed after signing");
}
END_TEST

START_TEST(time_claims_are_enforced_with_leeway)
{
    char tok[4096];
    make_token("HS256", SECRET, rep_claims(-960, -960, -60), tok, sizeof(tok));
    me_token_refused(tok, "expired 60 s ago");
    make_token("HS256", SECRET, rep_claims(-920, -920, -20), tok, sizeof(tok));
    me_token_accepted(tok, uid_rep, "expired 20 s ago (inside the 30 s leeway)");
    make_token("HS256", SECRET, rep_claims(0, 120, 900), tok, sizeof(tok));
    me_token_refused(tok, "nbf 120 s ahead");
    make_token("HS256", SECRET, rep_claims(600, 600, 1500), tok, sizeof(tok));
    me_token_refused(tok, "issued 600 s in the future");
    json_t *c = rep_claims(0, 0, 900);
    json_object_del(c, "exp");
    make_token("HS256", SECRET, c, tok, sizeof(tok));
    me_token_refused(tok, "no exp");
}
END_TEST

START_TEST(wrong_issuer_or_audience_is_refused)
{
    char tok[4096];
    json_t *c = rep_claims(0, 0, 900);
    json_object_set_new(c, "iss", json_string("someone-else"));
    make_token("HS256", SECRET, c, tok, sizeof(tok));
    me_token_refused(tok, "wrong iss");
    c = rep_claims(0, 0, 900);
    json_object_del(c, "iss");
    make_token("HS256", SECRET, c, tok, sizeof(tok));
    me_token_refused(tok, "no iss");
    c = rep_claims(0, 0, 900);
    json_object_set_new(c, "aud", json_string("other-api"));
    make_token("HS256", SECRET, c, tok, sizeof(tok));
    me_token_refused(tok, "wrong aud");
    c = rep_claims(0, 0, 900);
    json_object_set_new(c, "aud", json_pack("[s, s]", "other-api", "clientele-api-x"));
    make_token("HS256", SECRET, c, tok, sizeof(tok));
    me_token_refused(tok, "aud array without ours");
    /* An aud array that holds ours is fine (RFC 7519 section 4.1.3). */
    c = rep_claims(0, 0, 900);
    json_object_set_new(c, "aud", json_pack("[s, s]", "other-api", "clientele-api"));
    make_token("HS256", SECRET, c, tok, sizeof(tok));
    me_token_accepted(tok, uid_rep, "aud array holding ours");
}
END_TEST

START_TEST(malformed_tokens_are_refused)
{
    char good[4096], tok[8200];
    make_token("HS256", SECRET, rep_claims(0, 0, 900), good, sizeof(good));
    static const char *const junk[] = {
        "abc", "a.b", "a.b.c.d", "...", "a..c", "!!!.???.***", "eyJhbGciOiJIUzI1NiJ9.%%%%.abc", "====.====.====",
    };
    for (size_t i = 0; i < sizeof(junk) / sizeof(junk[0]); i++)
        me_token_refused(junk[i], junk[i]);
    /* A valid token with an extra segment, and one with padding added. */
    snprintf(tok, sizeof(tok), "%s.%s", good, strrchr(good, '.') + 1);
    me_token_refused(tok, "valid token plus a fourth segment");
    snprintf(tok, sizeof(tok), "%s=", good);
    me_token_refused(tok, "valid token with '=' padding");
    /* The payload is not JSON, correctly signed. */
    char hb[64], pb[64], mac_in[256];
    b64url("{\"alg\":\"HS256\",\"typ\":\"JWT\"}", 27, hb, sizeof(hb));
    b64url("not json", 8, pb, sizeof(pb));
    int n = snprintf(mac_in, sizeof(mac_in), "%s.%s", hb, pb);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    HMAC(EVP_sha256(), SECRET, (int)strlen(SECRET), (unsigned char *)mac_in, (size_t)n, mac, &maclen);
    char sb[128];
    b64url(mac, maclen, sb, sizeof(sb));
    snprintf(tok, sizeof(tok), "%s.%s", mac_in, sb);
    me_token_refused(tok, "signed payload that is not JSON");
    /* Over the 8 KiB cap (sent raw: th_http builds its headers in a 4 KiB buffer). */
    size_t cap = 8300 + 200;
    char *req = malloc(cap);
    int off = snprintf(req, cap, "GET /v1/me HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer ");
    memset(req + off, 'A', 8300);
    req[off + 2000] = '.', req[off + 4000] = '.';
    off += 8300;
    off += snprintf(req + off, cap - (size_t)off, "\r\n\r\n");
    char *out = th_raw(api.port, req, (size_t)off);
    free(req);
    ck_assert_ptr_nonnull(out);
    ck_assert_msg(strncmp(out, "HTTP/1.1 401", 12) == 0, "8 KiB token: %.80s", out);
    ck_assert_ptr_nonnull(strstr(out, "error=\"invalid_token\""));
    free(out);
}
END_TEST

START_TEST(wrong_authorization_schemes_are_refused)
{
    char access[2048], v[2200];
    login_ok("rep@example.com", PASSWORD, access, NULL);
    me_refused("Bearer", "Bearer without a token");
    me_refused("Bearer ", "Bearer and a space");
    me_refused("Basic xyz", "Basic xyz");
    me_refused("Basic cmVwQGV4YW1wbGUuY29tOmNvcnJlY3QtaG9yc2UtYmF0dGVyeQ==", "Basic with the right credentials");
    snprintf(v, sizeof(v), "Token %s", access);
    me_refused(v, "valid token under another scheme");
}
END_TEST

START_TEST(deactivation_stops_a_live_token_at_once)
{
    char access[2048];
    login_ok("dave@example.com", PASSWORD, access, NULL);
    me_token_accepted(access, uid_dave, "dave before deactivation");
    char ver[24], sql[160];
    ck_assert_int_eq(
        th_sql_value(db_url, "SELECT token_version FROM users WHERE email = 'dave@example.com'", ver, sizeof(ver)), 0);
    ck_assert_int_eq(th_sql(db_url, "UPDATE users SET active = false WHERE email = 'dave@example.com'"), 0);
    me_token_refused(access, "the same token after deactivation");
    /*
     * A trigger also bumps token_version on deactivation; put it back so that
     * the active flag alone has to refuse the token.
     */
    snprintf(sql, sizeof(sql), "UPDATE users SET token_version = %s WHERE email = 'dave@example.com'", ver);
    ck_assert_int_eq(th_sql(db_url, sql), 0);
    me_token_refused(access, "the same token, deactivated user with an unchanged token_version");
}
END_TEST

START_TEST(older_token_version_is_refused)
{
    char access[2048];
    login_ok("vera@example.com", PASSWORD, access, NULL);
    me_token_accepted(access, uid_vera, "vera before the version bump");
    ck_assert_int_eq(
        th_sql(db_url, "UPDATE users SET token_version = token_version + 1 WHERE email = 'vera@example.com'"), 0);
    me_token_refused(access, "token with ver older than users.token_version");
    /* A new login carries the new ver and works. */
    char access2[2048];
    login_ok("vera@example.com", PASSWORD, access2, NULL);
    me_token_accepted(access2, uid_vera, "vera after logging in again");
}
END_TEST

/* --- 4. refresh tokens ---------------------------------------------------------- */

START_TEST(refresh_rotates_to_a_new_working_pair)
{
    char access[2048], refresh[256], cc[64];
    login_ok("rick@example.com", PASSWORD, access, refresh);
    th_resp_t r;
    ck_assert_int_eq(refresh_call("/v1/auth/refresh", refresh, &r), 0);
    ck_assert_msg(r.status == 200, "status %d: %s", r.status, r.body);
    ck_assert_ptr_nonnull(th_header(&r, "cache-control", cc, sizeof(cc)));
    ck_assert_str_eq(cc, "no-store");
    ck_assert_str_eq(jstr(r.json, "token_type"), "Bearer");
    ck_assert_int_eq(json_integer_value(json_object_get(r.json, "expires_in")), 900);
    const char *new_refresh = jstr(r.json, "refresh_token"), *new_access = jstr(r.json, "access_token");
    ck_assert_ptr_nonnull(new_refresh);
    ck_assert_ptr_nonnull(new_access);
    ck_assert_str_ne(new_refresh, refresh);
    ck_assert_uint_ge(strlen(new_refresh), 32);
    th_resp_t me;
    get_me_bearer(new_access, &me);
    ck_assert_msg(me.status == 200, "new access token: status %d: %s", me.status, me.body);
    ck_assert_str_eq(jstr(me.json, "email"), "rick@example.com");
    th_resp_free(&me);
    /* The new refresh token rotates again. */
    th_resp_t r2;
    ck_assert_int_eq(refresh_call("/v1/auth/refresh", new_refresh, &r2), 0);
    ck_assert_msg(r2.status == 200, "second rotation: status %d: %s", r2.status, r2.body);
    th_resp_free(&r2);
    th_resp_free(&r);
}
END_TEST

START_TEST(reused_refresh_token_revokes_its_family)
{
    char access[2048], first[256], other[256], second[256];
    login_ok("rick@example.com", PASSWORD, access, first);
    login_ok("rick@example.com", PASSWORD, access, other); /* another session of the same user */
    th_resp_t r;
    ck_assert_int_eq(refresh_call("/v1/auth/refresh", first, &r), 0);
    ck_assert_msg(r.status == 200, "status %d: %s", r.status, r.body);
    snprintf(second, sizeof(second), "%s", jstr(r.json, "refresh_token"));
    th_resp_free(&r);
    /* The used token comes back: refused... */
    ck_assert_int_eq(refresh_call("/v1/auth/refresh", first, &r), 0);
    assert_token_refused(&r, "already used refresh token");
    th_resp_free(&r);
    /* ...and its successor, never used, is revoked with it. */
    ck_assert_int_eq(refresh_call("/v1/auth/refresh", second, &r), 0);
    assert_token_refused(&r, "successor of a reused refresh token");
    th_resp_free(&r);
    /* The other session is not touched. */
    ck_assert_int_eq(refresh_call("/v1/auth/refresh", other, &r), 0);
    ck_assert_msg(r.status == 200, "other family: status %d: %s", r.status, r.body);
    th_resp_free(&r);
}
END_TEST

START_TEST(logout_ends_the_refresh_token)
{
    char access[2048], refresh[256];
    login_ok("rick@example.com", PASSWORD, access, refresh);
    th_resp_t r;
    ck_assert_int_eq(refresh_call("/v1/auth/logout", refresh, &r), 0);
    ck_assert_msg(r.status == 204, "logout: status %d: %s", r.status, r.body);
    ck_assert_uint_eq(r.body_len, 0);
    th_resp_free(&r);
    ck_assert_int_eq(refresh_call("/v1/auth/refresh", refresh, &r), 0);
    assert_token_refused(&r, "refresh after logout");
    th_resp_free(&r);
}
END_TEST

START_TEST(unknown_refresh_token_is_401)
{
    th_resp_t r;
    ck_assert_int_eq(refresh_call("/v1/auth/refresh", "q8Yh1fB2m3n4p5r6s7t8u9v0w1x2y3z4A5B6C7D8E9F", &r), 0);
    assert_token_refused(&r, "unknown refresh token");
    assert_problem_shape(&r, 401, "/problems/unauthenticated");
    th_resp_free(&r);
    /* An access token is not a refresh token (it is also too long to be one: 401 or 422). */
    char access[2048];
    login_ok("rick@example.com", PASSWORD, access, NULL);
    ck_assert_int_eq(refresh_call("/v1/auth/refresh", access, &r), 0);
    ck_assert_msg(r.status == 401 || r.status == 422, "access token as refresh token: status %d", r.status);
    ck_assert_ptr_null(json_object_get(r.json, "access_token"));
    th_resp_free(&r);
}
END_TEST

START_TEST(deactivated_user_cannot_refresh)
{
    char access[2048], refresh[256];
    login_ok("fred@example.com", PASSWORD, access, refresh);
    ck_assert_int_eq(th_sql(db_url, "UPDATE users SET active = false WHERE email = 'fred@example.com'"), 0);
    th_resp_t r;
    ck_assert_int_eq(refresh_call("/v1/auth/refresh", refresh, &r), 0);
    assert_token_refused(&r, "refresh for a deactivated user");
    ck_assert_ptr_null(json_object_get(r.json, "access_token"));
    th_resp_free(&r);
}
END_TEST

/* --- 5. throttling ----------------------------------------------------------------- */

/* A throttling counter's value in Redis ("(none)" when absent), for failure messages. */
static const char *counter(const char *key, char *buf, size_t len)
{
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "%s HGET 'clientele:login:%s' n", crew_redis_cli(), key);
    FILE *f = popen(cmd, "r");
    snprintf(buf, len, "(none)");
    if (f != NULL) {
        if (fgets(buf, (int)len, f) != NULL)
            buf[strcspn(buf, "\n")] = '\0';
        pclose(f);
    }
    return buf[0] != '\0' ? buf : "(none)";
}

static void assert_throttled(const th_resp_t *r, const char *what, const char *key)
{
    char ra[32], c[64];
    ck_assert_msg(r->status == 429, "%s: status %d, want 429 (counter %s is %s): %s", what, r->status, key,
                  counter(key, c, sizeof(c)), r->body);
    assert_problem(r, 429, "/problems/too-many-requests", TOKEN_PATH);
    ck_assert_msg(th_header(r, "retry-after", ra, sizeof(ra)) != NULL, "429 without Retry-After");
    ck_assert_msg(ra[0] != '\0' && strspn(ra, "0123456789") == strlen(ra), "Retry-After not integer seconds: %s", ra);
    long secs = strtol(ra, NULL, 10);
    ck_assert_msg(secs > 0 && secs <= 900, "Retry-After %ld out of (0, 900]", secs);
    ck_assert_ptr_null(json_object_get(r->json, "access_token"));
}

START_TEST(five_failures_lock_the_email)
{
    th_resp_t r;
    for (int i = 0; i < 5; i++) {
        login("tina@example.com", "wrong-password-1", &r);
        ck_assert_msg(r.status == 401, "failure %d: status %d", i + 1, r.status);
        th_resp_free(&r);
    }
    login("tina@example.com", PASSWORD, &r);
    assert_throttled(&r, "right password after 5 failures", "pair:127.0.0.1 tina@example.com");
    th_resp_free(&r);
    /* The lock is on the address, not on its spelling. */
    login("Tina@Example.com", PASSWORD, &r);
    assert_throttled(&r, "same email, other case", "pair:127.0.0.1 tina@example.com");
    th_resp_free(&r);
    /* Another account is unaffected. */
    login("tom@example.com", PASSWORD, &r);
    ck_assert_msg(r.status == 200, "other email: status %d: %s", r.status, r.body);
    th_resp_free(&r);
}
END_TEST

START_TEST(twenty_failures_from_one_address_lock_every_email)
{
    th_resp_t r;
    for (int i = 0; i < 20; i++) {
        char email[64];
        snprintf(email, sizeof(email), "spray%02d@example.com", i);
        login(email, "wrong-password-1", &r);
        ck_assert_msg(r.status == 401, "attempt %d: status %d", i + 1, r.status);
        th_resp_free(&r);
    }
    login("fresh-never-seen@example.com", "wrong-password-1", &r);
    assert_throttled(&r, "fresh email after 20 failures", "addr:127.0.0.1");
    th_resp_free(&r);
    login("tom@example.com", PASSWORD, &r);
    assert_throttled(&r, "real user after 20 failures", "addr:127.0.0.1");
    th_resp_free(&r);
}
END_TEST

START_TEST(success_resets_the_email_counter)
{
    th_resp_t r;
    char c[64];
    for (int i = 0; i < 4; i++) {
        login("tina@example.com", "wrong-password-1", &r);
        ck_assert_msg(r.status == 401, "failure %d: status %d", i + 1, r.status);
        th_resp_free(&r);
    }
    login("tina@example.com", PASSWORD, &r);
    ck_assert_msg(r.status == 200, "success after 4 failures: status %d: %s", r.status, r.body);
    th_resp_free(&r);
    for (int i = 0; i < 4; i++) {
        login("tina@example.com", "wrong-password-1", &r);
        ck_assert_msg(r.status == 401, "failure %d after the success: status %d (counter email:tina@example.com is %s)",
                      i + 1, r.status, counter("pair:127.0.0.1 tina@example.com", c, sizeof(c)));
        th_resp_free(&r);
    }
    /* The counter still counts: a fifth failure locks the email. */
    login("tina@example.com", "wrong-password-1", &r);
    ck_assert_int_eq(r.status, 401);
    th_resp_free(&r);
    login("tina@example.com", PASSWORD, &r);
    assert_throttled(&r, "right password after 5 failures", "pair:127.0.0.1 tina@example.com");
    th_resp_free(&r);
}
END_TEST

typedef struct {
    int status;
} parallel_login_t;

static void *wrong_password_login(void *p)
{
    parallel_login_t *c = p;
    th_resp_t r;
    const char body[] = "{\"email\":\"tina@example.com\",\"password\":\"wrong-password-1\"}";
    const char *h[] = {"Content-Type: application/json", NULL};
    c->status = th_http(api.port, "POST", TOKEN_PATH, h, body, sizeof(body) - 1, &r) == 0 ? r.status : 0;
    th_resp_free(&r);
    return NULL;
}

START_TEST(concurrent_failures_do_not_exceed_the_email_limit)
{
    /* Twelve guesses at once: the limit is on password checks, so at most five may be answered 401. */
    enum { N = 12 };
    pthread_t t[N];
    parallel_login_t c[N];
    for (int i = 0; i < N; i++)
        pthread_create(&t[i], NULL, wrong_password_login, &c[i]);
    int refused = 0, throttled = 0;
    for (int i = 0; i < N; i++) {
        pthread_join(t[i], NULL);
        refused += c[i].status == 401;
        throttled += c[i].status == 429;
    }
    ck_assert_msg(refused + throttled == N, "%d answers were neither 401 nor 429", N - refused - throttled);
    ck_assert_msg(refused <= 5, "%d of %d concurrent wrong passwords were checked (401), the limit is 5", refused, N);
    th_resp_t r;
    login("tina@example.com", PASSWORD, &r);
    assert_throttled(&r, "right password after 5 failures", "pair:127.0.0.1 tina@example.com");
    th_resp_free(&r);
}
END_TEST

/* POST /v1/auth/token from local address `from` with an optional X-Forwarded-For value. */
static void login_via(const char *from, const char *xff, const char *email, const char *password, th_resp_t *r)
{
    json_t *b = json_pack("{s:s, s:s}", "email", email, "password", password);
    char *text = json_dumps(b, JSON_COMPACT), xh[256];
    json_decref(b);
    snprintf(xh, sizeof(xh), "X-Forwarded-For: %s", xff != NULL ? xff : "");
    const char *h[] = {"Content-Type: application/json", xff != NULL ? xh : NULL, NULL};
    th_set_source(from);
    int rc = th_http(api.port, "POST", TOKEN_PATH, h, text, strlen(text), r);
    th_set_source(NULL);
    free(text);
    ck_assert_msg(rc == 0, "no answer to a login from %s", from);
}

static long retry_after(const th_resp_t *r)
{
    char ra[32];
    ck_assert_msg(r->status == 429, "status %d, want 429: %s", r->status, r->body);
    ck_assert_ptr_nonnull(th_header(r, "retry-after", ra, sizeof(ra)));
    return strtol(ra, NULL, 10);
}

/* Ends a throttling counter's current delay in Redis, as if the time had passed. */
static void end_delay(const char *key)
{
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "%s HSET 'clientele:login:%s' until 0 >/dev/null", crew_redis_cli(), key);
    ck_assert_int_eq(system(cmd), 0);
}

START_TEST(failures_from_one_address_do_not_lock_the_user_out_elsewhere)
{
    /* An attacker at 127.0.0.2 guesses the administrator's password until throttled ... */
    th_resp_t r;
    for (int i = 0; i < 5; i++) {
        login_via("127.0.0.2", NULL, "admin@example.com", "wrong-password-1", &r);
        ck_assert_msg(r.status == 401, "guess %d: status %d", i + 1, r.status);
        th_resp_free(&r);
    }
    for (int i = 0; i < 3; i++) {
        login_via("127.0.0.2", NULL, "admin@example.com", PASSWORD, &r);
        assert_throttled(&r, "the attacker's address", "pair:127.0.0.2 admin@example.com");
        th_resp_free(&r);
    }
    /* ... and the administrator, from another address, logs in as usual, at once and repeatedly. */
    for (int i = 0; i < 3; i++) {
        login_via("127.0.0.3", NULL, "admin@example.com", PASSWORD, &r);
        ck_assert_msg(r.status == 200, "admin from another address: status %d: %s", r.status, r.body);
        th_resp_free(&r);
    }
    /* Other accounts from the attacker's address are not blocked by that pair either. */
    login_via("127.0.0.2", NULL, "tom@example.com", PASSWORD, &r);
    ck_assert_msg(r.status == 200, "other email from the attacker's address: status %d: %s", r.status, r.body);
    th_resp_free(&r);
    /* Nor does the user's success from elsewhere lift the attacker's block. */
    login_via("127.0.0.2", NULL, "admin@example.com", PASSWORD, &r);
    assert_throttled(&r, "the attacker's address after the user's success", "pair:127.0.0.2 admin@example.com");
    th_resp_free(&r);
}
END_TEST

START_TEST(delays_grow_with_each_failure_up_to_a_cap)
{
    const char *key = "pair:127.0.0.4 tina@example.com";
    th_resp_t r;
    for (int i = 0; i < 5; i++) {
        login_via("127.0.0.4", NULL, "tina@example.com", "wrong-password-1", &r);
        ck_assert_msg(r.status == 401, "failure %d: status %d", i + 1, r.status);
        th_resp_free(&r);
    }
    login_via("127.0.0.4", NULL, "tina@example.com", PASSWORD, &r);
    long prev = retry_after(&r);
    th_resp_free(&r);
    ck_assert_msg(prev >= 1 && prev <= 30, "first delay %ld s, want 1..30", prev);
    for (int step = 0; step < 3; step++) {
        end_delay(key);
        /* The delay is over: one more guess is checked (and fails), and the next delay is twice as long. */
        login_via("127.0.0.4", NULL, "tina@example.com", "wrong-password-1", &r);
        ck_assert_msg(r.status == 401, "step %d: status %d: %s", step, r.status, r.body);
        th_resp_free(&r);
        login_via("127.0.0.4", NULL, "tina@example.com", PASSWORD, &r);
        long next = retry_after(&r);
        th_resp_free(&r);
        ck_assert_msg(next >= 2 * prev - 2 && next <= 2 * prev + 1, "step %d: delay %ld s after %ld s", step, next,
                      prev);
        prev = next;
    }
    /* However many failures, the delay stops growing at 15 minutes. */
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "%s HSET 'clientele:login:%s' n 60 >/dev/null", crew_redis_cli(), key);
    ck_assert_int_eq(system(cmd), 0);
    end_delay(key);
    login_via("127.0.0.4", NULL, "tina@example.com", "wrong-password-1", &r);
    ck_assert_int_eq(r.status, 401);
    th_resp_free(&r);
    login_via("127.0.0.4", NULL, "tina@example.com", PASSWORD, &r);
    long capped = retry_after(&r);
    th_resp_free(&r);
    ck_assert_msg(capped > 890 && capped <= 900, "capped delay %ld s", capped);

    /* The address's overall failures grow the same way. */
    for (int i = 0; i < 20; i++) {
        login_via("127.0.0.6", NULL, fmt("spray%02d@example.com", i), "wrong-password-1", &r);
        ck_assert_msg(r.status == 401, "spray %d: status %d", i + 1, r.status);
        th_resp_free(&r);
    }
    login_via("127.0.0.6", NULL, "tom@example.com", PASSWORD, &r);
    long a1 = retry_after(&r);
    th_resp_free(&r);
    end_delay("addr:127.0.0.6");
    login_via("127.0.0.6", NULL, "spray99@example.com", "wrong-password-1", &r);
    ck_assert_int_eq(r.status, 401);
    th_resp_free(&r);
    login_via("127.0.0.6", NULL, "tom@example.com", PASSWORD, &r);
    long a2 = retry_after(&r);
    th_resp_free(&r);
    ck_assert_msg(a2 >= 2 * a1 - 2, "address delay %ld s after %ld s", a2, a1);
    /* Another address is not affected. */
    login_via("127.0.0.7", NULL, "tom@example.com", PASSWORD, &r);
    ck_assert_msg(r.status == 200, "another address: status %d", r.status);
    th_resp_free(&r);
}
END_TEST

START_TEST(forwarded_for_is_believed_only_from_trusted_proxies)
{
    th_resp_t r;
    /* From an untrusted peer, X-Forwarded-For is ignored: changing it does not escape a block. */
    for (int i = 0; i < 5; i++) {
        login_via("127.0.0.8", fmt("203.0.113.%d", i + 1), "tina@example.com", "wrong-password-1", &r);
        ck_assert_msg(r.status == 401, "failure %d: status %d", i + 1, r.status);
        th_resp_free(&r);
    }
    login_via("127.0.0.8", "203.0.113.99", "tina@example.com", PASSWORD, &r);
    assert_throttled(&r, "untrusted peer with a new X-Forwarded-For", "pair:127.0.0.8 tina@example.com");
    th_resp_free(&r);

    /* Through a trusted proxy (127.0.0.5), each forwarded client is counted on its own. */
    for (int i = 0; i < 5; i++) {
        login_via("127.0.0.5", "198.51.100.7", "tina@example.com", "wrong-password-1", &r);
        ck_assert_msg(r.status == 401, "proxied failure %d: status %d", i + 1, r.status);
        th_resp_free(&r);
    }
    login_via("127.0.0.5", "198.51.100.7", "tina@example.com", PASSWORD, &r);
    assert_throttled(&r, "forwarded client", "pair:198.51.100.7 tina@example.com");
    th_resp_free(&r);
    /* A prefix the client wrote itself is ignored: the right-most untrusted address counts. */
    login_via("127.0.0.5", "10.0.0.1, 198.51.100.7", "tina@example.com", PASSWORD, &r);
    assert_throttled(&r, "forged prefix", "pair:198.51.100.7 tina@example.com");
    th_resp_free(&r);
    /* Trusted hops on the right are skipped (127.0.1.0/24 is trusted). */
    login_via("127.0.0.5", "198.51.100.7, 127.0.1.9", "tina@example.com", PASSWORD, &r);
    assert_throttled(&r, "behind two proxies", "pair:198.51.100.7 tina@example.com");
    th_resp_free(&r);
    /* Another forwarded client, and the proxy's own address, are not blocked. */
    login_via("127.0.0.5", "198.51.100.8", "tina@example.com", PASSWORD, &r);
    ck_assert_msg(r.status == 200, "another forwarded client: status %d: %s", r.status, r.body);
    th_resp_free(&r);
    login_via("127.0.0.5", NULL, "tina@example.com", PASSWORD, &r);
    ck_assert_msg(r.status == 200, "the proxy itself: status %d: %s", r.status, r.body);
    th_resp_free(&r);
    /* The failures were counted against the forwarded address, not the proxy's or the untrusted peer's. */
    char c[64];
    ck_assert_str_eq(counter("addr:198.51.100.7", c, sizeof(c)), "5");
    ck_assert_str_eq(counter("addr:127.0.0.8", c, sizeof(c)), "5");
    ck_assert_str_eq(counter("addr:127.0.0.5", c, sizeof(c)), "0"); /* its one success was taken back */
}
END_TEST

START_TEST(login_while_redis_is_down_is_503)
{
    th_resp_t r;
    login("tom@example.com", PASSWORD, &r);
    ck_assert_int_eq(r.status, 200);
    th_resp_free(&r);
    ck_assert_int_eq(th_stack("redis-stop"), 0);
    /* Without the throttling counters no password is checked: 503, never a token and never a 500. */
    th_resp_t down = {0};
    int got503 = 0, other = 0, wrong503 = 0;
    long long until = th_now_ms() + 5000;
    while (th_now_ms() < until && !got503) {
        login("tom@example.com", PASSWORD, &r);
        if (r.status == 503) {
            got503 = 1;
            down = r; /* checked once Redis runs again, so a failed check cannot leave it stopped */
            continue;
        }
        other += r.status != 200;
        th_resp_free(&r);
        usleep(100 * 1000);
    }
    /* A wrong password gets the same 503: Redis being down does not reveal whether a guess was right. */
    if (got503) {
        login("tom@example.com", "wrong-password-1", &r);
        wrong503 = r.status == 503;
        th_resp_free(&r);
    }
    int restarted = th_stack("redis-start");
    ck_assert_msg(got503, "logins did not answer 503 with Redis stopped");
    ck_assert_msg(other == 0, "%d logins answered neither 200 nor 503 while Redis stopped", other);
    ck_assert_msg(wrong503, "a wrong password did not answer 503 with Redis stopped");
    ck_assert_int_eq(restarted, 0);
    char ra[16];
    assert_problem(&down, 503, "/problems/unavailable", TOKEN_PATH);
    ck_assert_ptr_nonnull(th_header(&down, "retry-after", ra, sizeof(ra)));
    ck_assert_ptr_null(json_object_get(down.json, "access_token"));
    th_resp_free(&down);
    /* Redis back: logins work again without a restart of the API. */
    int ok = 0;
    until = th_now_ms() + 10000;
    while (th_now_ms() < until && !ok) {
        login("tom@example.com", PASSWORD, &r);
        ok = r.status == 200;
        th_resp_free(&r);
        if (!ok)
            usleep(200 * 1000);
    }
    ck_assert_msg(ok, "logins did not recover after Redis came back");
}
END_TEST

/* --- 6. /v1/me per role ------------------------------------------------------------ */

START_TEST(me_shows_each_roles_permissions)
{
    for (size_t i = 0; i < sizeof(role_users) / sizeof(role_users[0]); i++) {
        char access[2048], sql[200], perms[2048];
        login_ok(role_users[i].email, PASSWORD, access, NULL);
        th_resp_t r;
        get_me_bearer(access, &r);
        ck_assert_msg(r.status == 200, "%s: status %d: %s", role_users[i].role, r.status, r.body);
        ck_assert_str_eq(jstr(r.json, "email"), role_users[i].email);
        ck_assert_str_eq(jstr(r.json, "role"), role_users[i].role);
        json_t *team_id = json_object_get(r.json, "team_id");
        if (role_users[i].team == NULL) {
            ck_assert_msg(json_is_null(team_id), "%s: team_id %s", role_users[i].role, r.body);
        } else {
            long long want = strcmp(role_users[i].team, "north") == 0 ? team_north : team_south;
            ck_assert_msg(json_is_integer(team_id) && json_integer_value(team_id) == want, "%s: team_id %s",
                          role_users[i].role, r.body);
        }
        snprintf(sql, sizeof(sql), "SELECT permissions::text FROM roles WHERE name = '%s'", role_users[i].role);
        ck_assert_int_eq(th_sql_value(db_url, sql, perms, sizeof(perms)), 0);
        json_t *want = json_loads(perms, 0, NULL);
        ck_assert_ptr_nonnull(want);
        ck_assert_msg(json_equal(json_object_get(r.json, "permissions"), want), "%s: permissions %s, want %s",
                      role_users[i].role, r.body, perms);
        json_decref(want);
        json_t *p = json_object_get(r.json, "permissions");
        const char *role = role_users[i].role;
        if (strcmp(role, "rep") == 0) {
            ck_assert_pstr_eq(json_string_value(json_object_get(json_object_get(p, "customers"), "read")), "own");
            ck_assert_ptr_null(json_object_get(p, "users"));
        } else if (strcmp(role, "analyst") == 0) {
            ck_assert_pstr_eq(json_string_value(json_object_get(json_object_get(p, "customers"), "read")), "all");
            ck_assert_ptr_null(json_object_get(json_object_get(p, "customers"), "create"));
        } else if (strcmp(role, "admin") == 0) {
            ck_assert_pstr_eq(json_string_value(json_object_get(json_object_get(p, "users"), "create")), "all");
        } else if (strcmp(role, "manager") == 0) {
            ck_assert_pstr_eq(json_string_value(json_object_get(json_object_get(p, "customers"), "read")), "team");
        } else if (strcmp(role, "director") == 0) {
            ck_assert_ptr_null(json_object_get(json_object_get(p, "users"), "create"));
        } else if (strcmp(role, "integration") == 0) {
            ck_assert_ptr_null(json_object_get(p, "users"));
        }
        th_resp_free(&r);
    }
}
END_TEST

static Suite *auth_suite(void)
{
    Suite *s = suite_create("auth");
    TCase *tc = crew_tcase("body", 30);
    tcase_add_test(tc, malformed_json_is_400_problem);
    tcase_add_test(tc, body_without_json_content_type_is_415);
    tcase_add_test(tc, body_over_limit_is_413_problem);
    tcase_add_test(tc, declared_body_over_bulk_limit_is_413_before_reading);
    tcase_add_test(tc, unknown_fields_are_422_naming_them);
    tcase_add_test(tc, missing_credentials_are_listed_together);
    suite_add_tcase(s, tc);

    tc = crew_tcase("login", 60);
    tcase_add_test(tc, right_password_gets_tokens);
    tcase_add_test(tc, wrong_password_and_unknown_email_look_the_same);
    tcase_add_test(tc, deactivated_user_cannot_log_in);
    suite_add_tcase(s, tc);

    tc = crew_tcase("jwt", 60);
    tcase_add_test(tc, valid_token_shows_the_caller);
    tcase_add_test(tc, missing_authorization_is_401_plain_bearer);
    tcase_add_test(tc, refused_tokens_are_complete_problems);
    tcase_add_test(tc, unsigned_and_foreign_algorithms_are_refused);
    tcase_add_test(tc, bad_signature_is_refused);
    tcase_add_test(tc, time_claims_are_enforced_with_leeway);
    tcase_add_test(tc, wrong_issuer_or_audience_is_refused);
    tcase_add_test(tc, malformed_tokens_are_refused);
    tcase_add_test(tc, wrong_authorization_schemes_are_refused);
    tcase_add_test(tc, deactivation_stops_a_live_token_at_once);
    tcase_add_test(tc, older_token_version_is_refused);
    suite_add_tcase(s, tc);

    tc = crew_tcase("refresh", 60);
    tcase_add_test(tc, refresh_rotates_to_a_new_working_pair);
    tcase_add_test(tc, reused_refresh_token_revokes_its_family);
    tcase_add_test(tc, logout_ends_the_refresh_token);
    tcase_add_test(tc, unknown_refresh_token_is_401);
    tcase_add_test(tc, deactivated_user_cannot_refresh);
    suite_add_tcase(s, tc);

    tc = crew_tcase("throttling", 90);
    tcase_add_test(tc, five_failures_lock_the_email);
    tcase_add_test(tc, twenty_failures_from_one_address_lock_every_email);
    tcase_add_test(tc, success_resets_the_email_counter);
    tcase_add_test(tc, concurrent_failures_do_not_exceed_the_email_limit);
    tcase_add_test(tc, failures_from_one_address_do_not_lock_the_user_out_elsewhere);
    tcase_add_test(tc, delays_grow_with_each_failure_up_to_a_cap);
    tcase_add_test(tc, forwarded_for_is_believed_only_from_trusted_proxies);
    tcase_add_test(tc, login_while_redis_is_down_is_503);
    suite_add_tcase(s, tc);

    tc = crew_tcase("roles", 60);
    tcase_add_test(tc, me_shows_each_roles_permissions);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    crew_setup(&conf);
    for (size_t i = 0; i < sizeof(role_users) / sizeof(role_users[0]); i++) {
        long long id = th_user_add(db_url, role_users[i].email, role_users[i].role, role_users[i].role,
                                   role_users[i].team, PASSWORD);
        if (strcmp(role_users[i].role, "rep") == 0)
            uid_rep = id;
    }
    th_user_add(db_url, "gone@example.com", "Gone", "rep", "north", PASSWORD);
    uid_dave = th_user_add(db_url, "dave@example.com", "Dave", "rep", "north", PASSWORD);
    uid_vera = th_user_add(db_url, "vera@example.com", "Vera", "rep", "north", PASSWORD);
    th_user_add(db_url, "rick@example.com", "Rick", "rep", "north", PASSWORD);
    th_user_add(db_url, "fred@example.com", "Fred", "rep", "north", PASSWORD);
    th_user_add(db_url, "tina@example.com", "Tina", "rep", "south", PASSWORD);
    th_user_add(db_url, "tom@example.com", "Tom", "rep", "south", PASSWORD);

    long long t0 = th_now_ms();
    int failed = crew_srun(auth_suite());
    fprintf(stderr, "auth_test: ran in %.1f s\n", (double)(th_now_ms() - t0) / 1000.0);
    return crew_exit_status(failed);
}
