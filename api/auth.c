/*
 * api/auth.c - bearer token checks and the /v1/auth endpoints.
 *
 * Every protected request is authenticated here without I/O: the access
 * token's signature and claims are checked by api/token.c. Whether the user
 * is still active (and the token's `ver` still current) is checked by the
 * request's own SQL statement (see api/scope.h), so deactivation takes
 * effect at once without an extra round trip.
 *
 * Logging in is a chain of asynchronous steps, each owning a malloc'ed
 * login_op_t that holds a reference on the request state:
 *   Redis (throttle counters) -> PostgreSQL (the user) -> the KDF thread
 *   pool (argon2id) -> PostgreSQL (a refresh token) -> the answer.
 * An unknown email is verified against a dummy hash, so it costs the same
 * time as a wrong password and gets the same answer. Refresh tokens are 256
 * random bits handed to the client once and stored only as SHA-256 hashes.
 */
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "api.h"
#include "auth_db.h"
#include "common/jx.h"
#include "common/log.h"
#include "common/rnd.h"

#define LOGIN_MAX_PER_EMAIL 5
#define LOGIN_MAX_PER_ADDRESS 20
#define LOGIN_WINDOW_S 900

static const char KEY_EMAIL[] = "clientele:login:email:";
static const char KEY_ADDR[] = "clientele:login:addr:";

/*
 * Counts one login attempt for an email (KEYS[1]) and a client address
 * (KEYS[2]) in a window of ARGV[1] seconds; answers {1, 0} when both are
 * within their limits (ARGV[2], ARGV[3]), else {0, ms until the fuller
 * counter expires}. Counted before the password check, so concurrent
 * attempts cannot exceed the limits.
 */
static const char LUA_COUNT[] =
    "local e = redis.call('INCR', KEYS[1]) "
    "if e == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end "
    "local a = redis.call('INCR', KEYS[2]) "
    "if a == 1 then redis.call('EXPIRE', KEYS[2], ARGV[1]) end "
    "if e > tonumber(ARGV[2]) then return {0, redis.call('PTTL', KEYS[1])} end "
    "if a > tonumber(ARGV[3]) then return {0, redis.call('PTTL', KEYS[2])} end "
    "return {1, 0}";

/* A successful login: forget the email's failures and take the attempt back from the address. */
static const char LUA_FORGIVE[] =
    "redis.call('DEL', KEYS[1]) "
    "if tonumber(redis.call('GET', KEYS[2]) or '0') > 0 then redis.call('DECR', KEYS[2]) end "
    "return 1";

/* --- bearer tokens ------------------------------------------------------- */

/*
 * Verifying a token (base64, JSON, HMAC or RSA) costs more than the rest of
 * a simple read, and clients send the same token again and again. Each loop
 * thread keeps the last verified tokens in a small direct-mapped cache,
 * compared byte for byte, so a hit is exactly a token already verified; its
 * expiry is still checked on every use. Whether the user is still active
 * is checked by the request's SQL, so caching cannot extend a cut-off.
 */
#define TOKEN_CACHE_SLOTS 256

typedef struct st_token_slot_t {
    char *token;
    size_t len;
    token_claims_t claims;
} token_slot_t;

struct st_api_token_cache_t {
    token_slot_t slots[TOKEN_CACHE_SLOTS];
};

struct st_api_token_cache_t *api_token_cache_new(void)
{
    struct st_api_token_cache_t *c = calloc(1, sizeof(*c));
    if (c == NULL)
        abort();
    return c;
}

void api_token_cache_free(struct st_api_token_cache_t *c)
{
    if (c == NULL)
        return;
    for (size_t i = 0; i < TOKEN_CACHE_SLOTS; i++)
        free(c->slots[i].token);
    free(c);
}

static size_t token_slot(const char *t, size_t len)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)t[i]) * 1099511628211ULL;
    return (size_t)(h % TOKEN_CACHE_SLOTS);
}

/* Verifies through the cache; same contract as token_verify(). */
static int verify_cached(api_req_t *ar, const char *t, size_t len, token_claims_t *claims, const char **why)
{
    struct st_api_token_cache_t *c = ar->thread->tokens;
    const token_conf_t *conf = &ar->thread->server->token;
    int64_t now = (int64_t)time(NULL);
    token_slot_t *slot = c != NULL ? &c->slots[token_slot(t, len)] : NULL;
    if (slot != NULL && slot->token != NULL && slot->len == len && memcmp(slot->token, t, len) == 0) {
        if (slot->claims.exp > now - conf->leeway_s) {
            *claims = slot->claims;
            return 0;
        }
        *why = "token expired";
        return ERR_UNAUTHENTICATED;
    }
    int ret = token_verify(conf, t, len, now, claims, why);
    if (ret == 0 && slot != NULL) {
        free(slot->token);
        slot->token = malloc(len);
        if (slot->token == NULL)
            abort();
        memcpy(slot->token, t, len);
        slot->len = len;
        slot->claims = *claims;
    }
    return ret;
}

int api_send_unauthenticated(api_req_t *ar, int invalid, const char *detail)
{
    api_add_header(ar, "www-authenticate", invalid ? "Bearer error=\"invalid_token\"" : "Bearer");
    h2o_req_t *req = ar->req;
    size_t plen = req->query_at != SIZE_MAX ? req->query_at : req->path.len;
    json_t *p = api_problem_new(401, detail, h2o_strdup(&req->pool, req->path.base, plen).base);
    json_object_set_new(p, "request_id", json_string(ar->request_id));
    return api_send_json(ar, 401, p);
}

int api_authenticate(api_req_t *ar)
{
    h2o_req_t *req = ar->req;
    ssize_t i = h2o_find_header(&req->headers, H2O_TOKEN_AUTHORIZATION, -1);
    if (i < 0) {
        api_send_unauthenticated(ar, 0, "This endpoint needs an access token: send Authorization: Bearer <token>.");
        return ERR_UNAUTHENTICATED;
    }
    h2o_iovec_t v = req->headers.entries[i].value;
    if (v.len < 8 || strncasecmp(v.base, "Bearer ", 7) != 0) {
        api_send_unauthenticated(ar, 1, "The Authorization header must be: Bearer <token>.");
        return ERR_UNAUTHENTICATED;
    }
    const char *why = NULL;
    int ret = verify_cached(ar, v.base + 7, v.len - 7, &ar->claims, &why);
    if (ret != 0) {
        log_msg(LOG_INFO, "request %s: access token refused: %s", ar->request_id, why != NULL ? why : "-");
        api_send_unauthenticated(ar, 1, "The access token is invalid or expired.");
        return ERR_UNAUTHENTICATED;
    }
    ar->user_id = ar->claims.sub;
    return 0;
}

void api_caller_params(api_req_t *ar, char uid[24], char ver[24])
{
    db_fmt_i64(uid, ar->claims.sub);
    db_fmt_i64(ver, ar->claims.ver);
}

/* --- shared pieces of the token endpoints ---------------------------------- */

static void sha256_hex(const char *s, size_t len, char out[65])
{
    unsigned char d[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)s, len, d);
    for (int i = 0; i < SHA256_DIGEST_LENGTH; i++)
        snprintf(out + 2 * i, 3, "%02x", d[i]);
}

/* A new refresh token (base64url of 32 random bytes) and its hash. */
static int new_refresh_token(char token[48], char hash[65])
{
    unsigned char raw[32];
    if (rnd_bytes(raw, sizeof(raw)) != 0)
        return ERR_INTERNAL;
    jx_b64url_encode(raw, sizeof(raw), token, 48);
    sha256_hex(token, strlen(token), hash);
    return 0;
}

static int send_tokens(api_req_t *ar, int64_t uid, const char *role, int64_t team, int64_t ver, const char *refresh)
{
    api_server_t *server = ar->thread->server;
    token_claims_t claims = {.sub = uid, .team = team, .ver = ver};
    snprintf(claims.role, sizeof(claims.role), "%s", role);
    char *access = NULL;
    int ret = token_issue(&server->token, &claims, (int64_t)time(NULL), &access);
    if (ret != 0) {
        log_msg(LOG_ERROR, "request %s: cannot issue an access token (%d)", ar->request_id, ret);
        return api_send_error(ar, ERR_INTERNAL, NULL);
    }
    json_t *o = json_object();
    json_object_set_new(o, "access_token", json_string(access));
    json_object_set_new(o, "token_type", json_string("Bearer"));
    json_object_set_new(o, "expires_in", json_integer(claims.exp - claims.iat));
    json_object_set_new(o, "refresh_token", json_string(refresh));
    free(access);
    ar->user_id = uid;
    api_add_header(ar, "cache-control", "no-store");
    return api_send_json(ar, 200, o);
}

/* Reads a required string member of the body; records an error otherwise. */
static const char *body_string(json_t *body, const char *name, size_t max, json_t *errors)
{
    json_t *v = json_object_get(body, name);
    if (v == NULL) {
        api_error_add(errors, name, "required", "is required");
        return NULL;
    }
    if (!json_is_string(v)) {
        api_error_add(errors, name, "invalid_type", "must be a string");
        return NULL;
    }
    if (json_string_length(v) == 0 || json_string_length(v) > max || strlen(json_string_value(v)) != json_string_length(v)) {
        api_error_add(errors, name, "invalid_value", "must be a non-empty string of reasonable length");
        return NULL;
    }
    return json_string_value(v);
}

/* Rejects members other than the allowed ones. Returns the number of errors added. */
static int only_members(json_t *body, const char *const *allowed, json_t *errors)
{
    const char *key;
    json_t *v;
    int n = 0;
    json_object_foreach(body, key, v)
    {
        int ok = 0;
        for (const char *const *a = allowed; *a != NULL; a++)
            ok |= strcmp(key, *a) == 0;
        if (!ok) {
            api_error_add(errors, key, "unknown_field", "is not a field of this request");
            n++;
        }
    }
    return n;
}

static int check_body(api_req_t *ar, const char *const *fields, size_t maxlen, const char **values)
{
    json_t *errors = json_array();
    if (!json_is_object(ar->body)) {
        api_error_add(errors, "", "invalid_type", "the body must be a JSON object");
    } else {
        only_members(ar->body, fields, errors);
        for (size_t i = 0; fields[i] != NULL; i++)
            values[i] = body_string(ar->body, fields[i], maxlen, errors);
    }
    if (json_array_size(errors) > 0) {
        api_send_invalid(ar, 422, "The request body has invalid fields.", errors);
        return -1;
    }
    json_decref(errors);
    return 0;
}

/* --- POST /v1/auth/token ------------------------------------------------ */

typedef struct st_login_op_t {
    api_req_t *ar;
    const char *email;    /* in ar->body */
    const char *password; /* in ar->body */
    char email_key[300];
    char addr_key[96];
    int64_t uid, team, ver;
    char role[33];
    int active;
    char refresh[48];
    char refresh_hash[65];
} login_op_t;

static void login_done(login_op_t *op)
{
    api_req_release(op->ar);
    free(op);
}

static void refuse_login(login_op_t *op)
{
    /* The attempt was counted before the password was checked; a failure leaves it counted. */
    api_send_error(op->ar, ERR_UNAUTHENTICATED, "The email or password is wrong, or the account is disabled.");
    login_done(op);
}

static void on_forgiven(void *data, const redisReply *reply, int err)
{
    login_op_t *op = data;
    /* Answer only once the counters are cleared, so the next attempt cannot see stale ones. */
    if (op->ar->req != NULL)
        send_tokens(op->ar, op->uid, op->role, op->team, op->ver, op->refresh);
    login_done(op);
}

static void on_refresh_stored(void *data, const PGresult *res, int err)
{
    login_op_t *op = data;
    if (op->ar->req == NULL) {
        login_done(op);
        return;
    }
    if (err != 0) {
        api_send_error(op->ar, err, NULL);
        login_done(op);
        return;
    }
    /* A success clears the email's failures and does not count against the address. */
    const char *forgive[] = {"EVAL", LUA_FORGIVE, "2", op->email_key, op->addr_key};
    if (kv_command(op->ar->thread->kv, on_forgiven, op, 5, forgive, NULL) != 0)
        on_forgiven(op, NULL, ERR_UNAVAILABLE);
}

static void on_password_checked(void *data, int match, int err)
{
    login_op_t *op = data;
    if (op->ar->req == NULL) {
        login_done(op);
        return;
    }
    if (err != 0) {
        api_send_error(op->ar, err == ERR_INVALID ? ERR_UNAUTHENTICATED : err, NULL);
        login_done(op);
        return;
    }
    if (!match || !op->active || op->uid == 0) {
        refuse_login(op);
        return;
    }
    int ret = new_refresh_token(op->refresh, op->refresh_hash);
    if (ret == 0)
        ret = auth_db_insert_refresh(op->ar->thread->db, op->refresh_hash, op->uid,
                                     op->ar->thread->server->cfg->refresh_ttl_s, on_refresh_stored, op);
    if (ret != 0) {
        api_send_error(op->ar, ret, NULL);
        login_done(op);
    }
}

static void on_user_found(void *data, const PGresult *res, int err)
{
    login_op_t *op = data;
    if (op->ar->req == NULL) {
        login_done(op);
        return;
    }
    if (err != 0) {
        api_send_error(op->ar, err, NULL);
        login_done(op);
        return;
    }
    const char *hash = NULL;
    if (PQntuples(res) == 1) {
        op->uid = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
        hash = PQgetvalue(res, 0, 1);
        op->active = PQgetvalue(res, 0, 2)[0] == 't';
        snprintf(op->role, sizeof(op->role), "%s", PQgetvalue(res, 0, 3));
        op->team = PQgetisnull(res, 0, 4) ? 0 : strtoll(PQgetvalue(res, 0, 4), NULL, 10);
        op->ver = strtoll(PQgetvalue(res, 0, 5), NULL, 10);
    }
    /* hash NULL: a dummy verification, so unknown emails take as long as wrong passwords. */
    int ret = kdf_verify(op->ar->thread->kdf, hash, op->password, strlen(op->password), on_password_checked, op);
    if (ret != 0) {
        api_send_error(op->ar, ret, NULL);
        login_done(op);
    }
}

static void on_counts(void *data, const redisReply *reply, int err)
{
    login_op_t *op = data;
    if (op->ar->req == NULL) {
        login_done(op);
        return;
    }
    if (err != 0 || reply == NULL || reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 ||
        reply->element[0]->type != REDIS_REPLY_INTEGER || reply->element[1]->type != REDIS_REPLY_INTEGER) {
        /* Without the counters we cannot throttle: refuse rather than allow unlimited guessing. */
        api_send_error(op->ar, ERR_UNAVAILABLE, "Logging in is unavailable right now. Retry later.");
        login_done(op);
        return;
    }
    if (reply->element[0]->integer == 0) {
        long long ms = reply->element[1]->integer;
        char secs[24];
        snprintf(secs, sizeof(secs), "%lld", ms > 0 ? (ms + 999) / 1000 : (long long)LOGIN_WINDOW_S);
        json_t *p = api_problem_new(429, "Too many failed logins. Wait before trying again.", "/v1/auth/token");
        json_object_set_new(p, "request_id", json_string(op->ar->request_id));
        api_add_header(op->ar, "retry-after", secs);
        api_send_json(op->ar, 429, p);
        login_done(op);
        return;
    }
    int ret = auth_db_find_login(op->ar->thread->db, op->email, on_user_found, op);
    if (ret != 0) {
        api_send_error(op->ar, ret, NULL);
        login_done(op);
    }
}

static void client_address(h2o_req_t *req, char *buf, size_t len)
{
    struct sockaddr_storage ss;
    socklen_t sl = req->conn->callbacks->get_peername(req->conn, (struct sockaddr *)&ss);
    char host[NI_MAXHOST];
    size_t n = sl > 0 ? h2o_socket_getnumerichost((struct sockaddr *)&ss, sl, host) : SIZE_MAX;
    if (n == SIZE_MAX)
        snprintf(buf, len, "unknown");
    else
        snprintf(buf, len, "%.*s", (int)n, host);
}

int auth_token(api_req_t *ar)
{
    static const char *const fields[] = {"email", "password", NULL};
    const char *values[2];
    if (check_body(ar, fields, 1024, values) != 0)
        return 0;
    login_op_t *op = calloc(1, sizeof(*op));
    if (op == NULL)
        abort();
    op->ar = ar;
    op->email = values[0];
    op->password = values[1];
    size_t n = snprintf(op->email_key, sizeof(op->email_key), "%s%s", KEY_EMAIL, op->email);
    for (size_t i = sizeof(KEY_EMAIL) - 1; i < n && i < sizeof(op->email_key); i++)
        if (op->email_key[i] >= 'A' && op->email_key[i] <= 'Z')
            op->email_key[i] += 'a' - 'A';
    char addr[64];
    client_address(ar->req, addr, sizeof(addr));
    snprintf(op->addr_key, sizeof(op->addr_key), "%s%s", KEY_ADDR, addr);
    api_req_hold(ar);
    /* Count the attempt first, atomically: concurrent guesses cannot slip under the limit. */
    char window[16], max_email[16], max_addr[16];
    snprintf(window, sizeof(window), "%d", LOGIN_WINDOW_S);
    snprintf(max_email, sizeof(max_email), "%d", LOGIN_MAX_PER_EMAIL);
    snprintf(max_addr, sizeof(max_addr), "%d", LOGIN_MAX_PER_ADDRESS);
    const char *count[] = {"EVAL", LUA_COUNT, "2", op->email_key, op->addr_key, window, max_email, max_addr};
    if (kv_command(ar->thread->kv, on_counts, op, 8, count, NULL) != 0) {
        api_send_error(ar, ERR_UNAVAILABLE, "Logging in is unavailable right now. Retry later.");
        login_done(op);
    }
    return 0;
}

/* --- POST /v1/auth/refresh ----------------------------------------------- */

typedef struct st_refresh_op_t {
    api_req_t *ar;
    char refresh[48];
    char hash[65];
} refresh_op_t;

static void on_rotated(void *data, const PGresult *res, int err)
{
    refresh_op_t *op = data;
    api_req_t *ar = op->ar;
    if (ar->req != NULL) {
        if (err != 0) {
            api_send_error(ar, err, NULL);
        } else if (PQntuples(res) != 1 || strcmp(PQgetvalue(res, 0, 0), "ok") != 0) {
            const char *outcome = PQntuples(res) == 1 ? PQgetvalue(res, 0, 0) : "unknown";
            log_msg(LOG_INFO, "request %s: refresh refused: %s", ar->request_id, outcome);
            api_send_unauthenticated(ar, 1,
                                     strcmp(outcome, "reused") == 0
                                         ? "This refresh token was already used; its whole session has been revoked."
                                         : "The refresh token is invalid, expired or revoked.");
        } else {
            int64_t team = PQgetisnull(res, 0, 3) ? 0 : strtoll(PQgetvalue(res, 0, 3), NULL, 10);
            send_tokens(ar, strtoll(PQgetvalue(res, 0, 1), NULL, 10), PQgetvalue(res, 0, 2), team,
                        strtoll(PQgetvalue(res, 0, 4), NULL, 10), op->refresh);
        }
    }
    api_req_release(ar);
    free(op);
}

int auth_refresh(api_req_t *ar)
{
    static const char *const fields[] = {"refresh_token", NULL};
    const char *values[1];
    if (check_body(ar, fields, 256, values) != 0)
        return 0;
    refresh_op_t *op = calloc(1, sizeof(*op));
    if (op == NULL)
        abort();
    op->ar = ar;
    char presented[65];
    sha256_hex(values[0], strlen(values[0]), presented);
    int ret = new_refresh_token(op->refresh, op->hash);
    if (ret == 0)
        ret = auth_db_rotate(ar->thread->db, presented, op->hash, ar->thread->server->cfg->refresh_ttl_s, on_rotated, op);
    if (ret != 0) {
        free(op);
        return ret;
    }
    api_req_hold(ar);
    return 0;
}

/* --- POST /v1/auth/logout ------------------------------------------------ */

static void on_revoked(void *data, const PGresult *res, int err)
{
    api_req_t *ar = data;
    if (ar->req != NULL) {
        if (err != 0)
            api_send_error(ar, err, NULL);
        else
            api_send_json(ar, 204, NULL);
    }
    api_req_release(ar);
}

int auth_logout(api_req_t *ar)
{
    static const char *const fields[] = {"refresh_token", NULL};
    const char *values[1];
    if (check_body(ar, fields, 256, values) != 0)
        return 0;
    char hash[65];
    sha256_hex(values[0], strlen(values[0]), hash);
    int ret = auth_db_revoke_family(ar->thread->db, hash, on_revoked, ar);
    if (ret == 0)
        api_req_hold(ar);
    return ret;
}

/* --- GET /v1/me ---------------------------------------------------------- */

static void on_me(void *data, const PGresult *res, int err)
{
    api_req_t *ar = data;
    if (ar->req != NULL) {
        if (err != 0) {
            api_send_error(ar, err, NULL);
        } else if (PQntuples(res) != 1) {
            api_send_unauthenticated(ar, 1, "The access token is no longer valid.");
        } else {
            json_t *o = json_object();
            json_object_set_new(o, "id", json_integer(strtoll(PQgetvalue(res, 0, 0), NULL, 10)));
            json_object_set_new(o, "email", json_string(PQgetvalue(res, 0, 1)));
            json_object_set_new(o, "name", json_string(PQgetvalue(res, 0, 2)));
            json_object_set_new(o, "role", json_string(PQgetvalue(res, 0, 3)));
            json_object_set_new(o, "team_id", PQgetisnull(res, 0, 4)
                                                  ? json_null()
                                                  : json_integer(strtoll(PQgetvalue(res, 0, 4), NULL, 10)));
            json_object_set_new(o, "team", PQgetisnull(res, 0, 5) ? json_null() : json_string(PQgetvalue(res, 0, 5)));
            json_t *perms = json_loads(PQgetvalue(res, 0, 6), 0, NULL);
            json_object_set_new(o, "permissions", perms != NULL ? perms : json_object());
            json_object_set_new(o, "created_at", json_string(PQgetvalue(res, 0, 7)));
            api_send_json(ar, 200, o);
        }
    }
    api_req_release(ar);
}

int auth_me(api_req_t *ar)
{
    char uid[24], ver[24];
    api_caller_params(ar, uid, ver);
    int ret = auth_db_me(ar->thread->db, uid, ver, on_me, ar);
    if (ret == 0)
        api_req_hold(ar);
    return ret;
}
