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
#include <arpa/inet.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "api.h"
#include "auth_db.h"
#include "modules.h"
#include "common/jx.h"
#include "common/log.h"
#include "common/rnd.h"

/*
 * Login throttling. Failures are counted per (email, client address) and
 * per client address. Up to LOGIN_FREE_PER_PAIR failures for one email from
 * one address (LOGIN_FREE_PER_ADDRESS from one address over every email)
 * cost nothing; each failure from then on blocks that pair (or address)
 * for a delay starting at LOGIN_DELAY_MS and doubling with every further
 * failure up to LOGIN_DELAY_MAX_MS. A counter is forgotten
 * LOGIN_FORGET_MS after its last failure (or after the end of its delay).
 * Nothing is counted by email alone, so failures from one address never
 * lock the account for anyone logging in from another.
 */
#define LOGIN_FREE_PER_PAIR 5
#define LOGIN_FREE_PER_ADDRESS 20
#define LOGIN_DELAY_MS 30000
#define LOGIN_DELAY_MAX_MS 900000
#define LOGIN_FORGET_MS 900000

static const char KEY_PAIR[] = "clientele:login:pair:";
static const char KEY_ADDR[] = "clientele:login:addr:";

/*
 * Counts one login attempt for a pair (KEYS[1]) and an address (KEYS[2]),
 * each a hash {n: attempts counted, until: ms time before which it is
 * blocked}. ARGV: free attempts of the pair and of the address, first
 * delay, largest delay, forget time (ms). Answers {1, 0} when neither is
 * blocked, having counted the attempt (and blocked a counter whose free
 * attempts this one used up); else {0, ms until the later block ends},
 * counting nothing. Counted before the password check, so concurrent
 * attempts cannot exceed the limits.
 */
static const char LUA_COUNT[] = "local t = redis.call('TIME') "
                                "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) "
                                "local wait = 0 "
                                "for i = 1, 2 do "
                                "  local u = tonumber(redis.call('HGET', KEYS[i], 'until') or '0') "
                                "  if u - now > wait then wait = u - now end "
                                "end "
                                "if wait > 0 then return {0, wait} end "
                                "for i = 1, 2 do "
                                "  local free = tonumber(ARGV[i]) "
                                "  local n = redis.call('HINCRBY', KEYS[i], 'n', 1) "
                                "  local keep = tonumber(ARGV[5]) "
                                "  if n >= free then "
                                "    local d = tonumber(ARGV[3]) * 2 ^ math.min(n - free, 30) "
                                "    if d > tonumber(ARGV[4]) then d = tonumber(ARGV[4]) end "
                                "    redis.call('HSET', KEYS[i], 'until', now + d) "
                                "    keep = keep + d "
                                "  end "
                                "  redis.call('PEXPIRE', KEYS[i], keep) "
                                "end "
                                "return {1, 0}";

/*
 * A successful login: forget the pair's failures and take the attempt back
 * from the address (ARGV[1]: its free attempts), unblocking it when this
 * attempt was the one that blocked it.
 */
static const char LUA_FORGIVE[] =
    "redis.call('DEL', KEYS[1]) "
    "if tonumber(redis.call('HGET', KEYS[2], 'n') or '0') > 0 then "
    "  if redis.call('HINCRBY', KEYS[2], 'n', -1) < tonumber(ARGV[1]) then redis.call('HDEL', KEYS[2], 'until') end "
    "end "
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
    /* The same leeway token_verify() allows, clamped the same way: a hit must never outlive a full check. */
    int leeway = conf->leeway_s < 0 ? 0 : conf->leeway_s > TOKEN_MAX_LEEWAY ? TOKEN_MAX_LEEWAY : conf->leeway_s;
    token_slot_t *slot = c != NULL ? &c->slots[token_slot(t, len)] : NULL;
    if (slot != NULL && slot->token != NULL && slot->len == len && memcmp(slot->token, t, len) == 0) {
        if (slot->claims.exp > now - leeway) {
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
        api_log(ar, LOG_INFO, "access token refused: %s", why != NULL ? why : "-");
        api_send_unauthenticated(ar, 1, "The access token is invalid or expired.");
        return ERR_UNAUTHENTICATED;
    }
    ar->user_id = ar->claims.sub;
    return 0;
}

int api_authenticate_quiet(api_req_t *ar)
{
    h2o_req_t *req = ar->req;
    ssize_t i = h2o_find_header(&req->headers, H2O_TOKEN_AUTHORIZATION, -1);
    if (i < 0)
        return ERR_UNAUTHENTICATED;
    h2o_iovec_t v = req->headers.entries[i].value;
    const char *why = NULL;
    if (v.len < 8 || strncasecmp(v.base, "Bearer ", 7) != 0 ||
        verify_cached(ar, v.base + 7, v.len - 7, &ar->claims, &why) != 0)
        return ERR_UNAUTHENTICATED;
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
        api_log(ar, LOG_ERROR, "cannot issue an access token (%d)", ret);
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
    if (json_string_length(v) == 0 || json_string_length(v) > max ||
        strlen(json_string_value(v)) != json_string_length(v)) {
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
    char pair_key[400];
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
    /* A success clears the pair's failures and does not count against the address. */
    char free_addr[16];
    snprintf(free_addr, sizeof(free_addr), "%d", LOGIN_FREE_PER_ADDRESS);
    const char *forgive[] = {"EVAL", LUA_FORGIVE, "2", op->pair_key, op->addr_key, free_addr};
    if (kv_command(op->ar->thread->kv, on_forgiven, op, 6, forgive, NULL) != 0)
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
        snprintf(secs, sizeof(secs), "%lld", ms > 0 ? (ms + 999) / 1000 : 1LL);
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

/* The peer's address as (family, bytes); 0, or -1 when it has none (a UNIX socket). */
static int peer_address(h2o_req_t *req, int *family, unsigned char addr[16])
{
    struct sockaddr_storage ss;
    socklen_t sl = req->conn->callbacks->get_peername(req->conn, (struct sockaddr *)&ss);
    char host[NI_MAXHOST];
    size_t n = sl > 0 ? h2o_socket_getnumerichost((struct sockaddr *)&ss, sl, host) : SIZE_MAX;
    if (n == SIZE_MAX)
        return -1;
    return cfg_parse_ip(host, n, family, addr) == 0 ? 0 : -1;
}

/*
 * The client's address, as text in buf. It is the peer's address, unless
 * the peer is a trusted proxy (CLIENTELE_TRUSTED_PROXIES): then the
 * X-Forwarded-For entries (every such header, in order) are walked from the
 * right, and the first address that is not a trusted proxy is the client
 * (the left-most entry when all are trusted). Entries left of it are
 * whatever the client claimed and are ignored; an entry that is not an IP
 * address ends the walk at the last trusted hop.
 */
static void client_address(api_req_t *ar, char *buf, size_t len)
{
    h2o_req_t *req = ar->req;
    const cfg_t *cfg = ar->thread->server->cfg;
    int family;
    unsigned char addr[16];
    if (peer_address(req, &family, addr) != 0) {
        snprintf(buf, len, "unknown");
        return;
    }
    if (cfg->ntrusted_proxies > 0 && cfg_nets_contain(cfg->trusted_proxies, cfg->ntrusted_proxies, family, addr)) {
        /* Join every X-Forwarded-For header, in order, with commas. */
        h2o_iovec_t all = {NULL, 0};
        for (ssize_t i = -1; (i = h2o_find_header(&req->headers, H2O_TOKEN_X_FORWARDED_FOR, i)) != -1;) {
            h2o_iovec_t v = req->headers.entries[i].value;
            all = all.base == NULL ? v : h2o_concat(&req->pool, all, h2o_iovec_init(H2O_STRLIT(",")), v);
        }
        size_t end = all.len;
        while (all.base != NULL && cfg_nets_contain(cfg->trusted_proxies, cfg->ntrusted_proxies, family, addr)) {
            size_t start = end;
            while (start > 0 && all.base[start - 1] != ',')
                start--;
            size_t a = start, b = end;
            while (a < b && (all.base[a] == ' ' || all.base[a] == '\t'))
                a++;
            while (b > a && (all.base[b - 1] == ' ' || all.base[b - 1] == '\t'))
                b--;
            int f;
            unsigned char next[16];
            if (cfg_parse_ip(all.base + a, b - a, &f, next) != 0)
                break;
            family = f;
            memcpy(addr, next, sizeof(next));
            if (start == 0)
                break;
            end = start - 1;
        }
    }
    char text[INET6_ADDRSTRLEN];
    if (inet_ntop(family, addr, text, sizeof(text)) == NULL)
        snprintf(buf, len, "unknown");
    else
        snprintf(buf, len, "%s", text);
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
    char addr[64];
    client_address(ar, addr, sizeof(addr));
    snprintf(op->addr_key, sizeof(op->addr_key), "%s%s", KEY_ADDR, addr);
    /* The address first: it holds no spaces, so "<address> <email>" cannot be read two ways. */
    size_t n = snprintf(op->pair_key, sizeof(op->pair_key), "%s%s %s", KEY_PAIR, addr, op->email);
    for (size_t i = sizeof(KEY_PAIR) - 1 + strlen(addr); i < n && i < sizeof(op->pair_key); i++)
        if (op->pair_key[i] >= 'A' && op->pair_key[i] <= 'Z')
            op->pair_key[i] += 'a' - 'A';
    api_req_hold(ar);
    /* Count the attempt first, atomically: concurrent guesses cannot slip under the limit. */
    char free_pair[16], free_addr[16], delay[16], delay_max[16], forget[16];
    snprintf(free_pair, sizeof(free_pair), "%d", LOGIN_FREE_PER_PAIR);
    snprintf(free_addr, sizeof(free_addr), "%d", LOGIN_FREE_PER_ADDRESS);
    snprintf(delay, sizeof(delay), "%d", LOGIN_DELAY_MS);
    snprintf(delay_max, sizeof(delay_max), "%d", LOGIN_DELAY_MAX_MS);
    snprintf(forget, sizeof(forget), "%d", LOGIN_FORGET_MS);
    const char *count[] = {"EVAL",    LUA_COUNT, "2",   op->pair_key, op->addr_key,
                           free_pair, free_addr, delay, delay_max,    forget};
    if (kv_command(ar->thread->kv, on_counts, op, 10, count, NULL) != 0) {
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
            api_log(ar, LOG_INFO, "refresh refused: %s", outcome);
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
        ret =
            auth_db_rotate(ar->thread->db, presented, op->hash, ar->thread->server->cfg->refresh_ttl_s, on_rotated, op);
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
            json_object_set_new(o, "team_id",
                                PQgetisnull(res, 0, 4) ? json_null()
                                                       : json_integer(strtoll(PQgetvalue(res, 0, 4), NULL, 10)));
            json_object_set_new(o, "team", PQgetisnull(res, 0, 5) ? json_null() : json_string(PQgetvalue(res, 0, 5)));
            json_t *perms = json_loads(PQgetvalue(res, 0, 6), 0, NULL);
            json_t *rules = json_object_get(perms, "fields");
            json_object_set_new(o, "field_rules", json_is_object(rules) ? json_deep_copy(rules) : json_object());
            json_object_set_new(o, "permissions", perms != NULL ? perms : json_object());
            json_object_set_new(o, "created_at", json_string(PQgetvalue(res, 0, 7)));
            /* The modules this role may use and that are on (api/modules.h); administrators use every one. */
            json_object_set_new(o, "modules",
                                api_modules_usable(ar->thread->server->modules, json_object_get(o, "permissions"),
                                                   strcmp(PQgetvalue(res, 0, 3), "admin") == 0, PQgetvalue(res, 0, 8)));
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
