/*
 * tests/unit/common/cfg_test.c - unit tests for common/cfg.c.
 *
 * cfg_load() never reads the environment itself, so every test passes a
 * small NULL-terminated table of name/value pairs as the lookup context.
 * Each successful load is paired with cfg_free(): the suite runs under
 * AddressSanitizer and LeakSanitizer, so a leak on either the success or
 * the error path fails the test (the forked child exits non-zero).
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../../common/cfg.c"

typedef struct st_env_t {
    const char *name;
    const char *value;
} env_t;

static const char *table_lookup(const char *name, void *ctx)
{
    for (const env_t *e = ctx; e->name != NULL; e++)
        if (strcmp(e->name, name) == 0)
            return e->value;
    return NULL;
}

static void load_ok(const env_t *env, cfg_t *cfg)
{
    char err[512] = "";
    int r = cfg_load(cfg, table_lookup, (void *)env, err, sizeof(err));
    ck_assert_msg(r == 0, "cfg_load failed: %s", err);
}

static int is_zeroed(const cfg_t *cfg)
{
    static const cfg_t zero;
    return memcmp(cfg, &zero, sizeof(zero)) == 0;
}

/* Loads env, expects a refusal naming `name` first, and a cfg_t left freed. */
static void assert_refused_env(const env_t *env, const char *name)
{
    char err[512] = "";
    cfg_t cfg;
    int r = cfg_load(&cfg, table_lookup, (void *)env, err, sizeof(err));
    if (r == 0)
        cfg_free(&cfg);
    ck_assert_msg(r == ERR_INVALID, "expected %s to be refused (%s=\"%s\"), cfg_load returned %d", name, env[0].name,
                  env[0].value, r);
    size_t n = strlen(name);
    ck_assert_msg(strncmp(err, name, n) == 0 && strncmp(err + n, ": ", 2) == 0 && err[n + 2] != '\0',
                  "error should start with \"%s: \", got \"%s\"", name, err);
    ck_assert_msg(is_zeroed(&cfg), "cfg_t not left freed after refusing %s", name);
}

static void assert_refused(const char *name, const char *value)
{
    env_t env[] = {{name, value}, {NULL, NULL}};
    assert_refused_env(env, name);
}

/* Loads a single variable and returns the config (caller frees). */
static void load_one(const char *name, const char *value, cfg_t *cfg)
{
    env_t env[] = {{name, value}, {NULL, NULL}};
    load_ok(env, cfg);
}

/* "aaa...a" of n bytes, in static storage (n < 4096). */
static const char *repeat_a(size_t n)
{
    static char buf[4096];
    memset(buf, 'a', n);
    buf[n] = '\0';
    return buf;
}

static const char SECRET32[] = "0123456789abcdef0123456789abcdef";

/* --- cfg_load: defaults ----------------------------------------------------- */

START_TEST(test_load_defaults)
{
    env_t env[] = {{NULL, NULL}};
    cfg_t cfg;
    load_ok(env, &cfg);
    ck_assert_str_eq(cfg.listen_host, "127.0.0.1");
    ck_assert_uint_eq(cfg.listen_port, 8080);
    ck_assert_str_eq(cfg.database_url, "postgresql://clientele@127.0.0.1:5432/clientele");
    ck_assert_str_eq(cfg.redis_host, "127.0.0.1");
    ck_assert_uint_eq(cfg.redis_port, 6379);
    ck_assert_int_eq(cfg.redis_db, 0);
    ck_assert_ptr_null(cfg.redis_password);
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    ck_assert_int_eq(cfg.threads, ncpu < 1 ? 1 : ncpu > 256 ? 256 : ncpu);
    ck_assert_int_eq(cfg.db_pool, 8);
    ck_assert_int_eq(cfg.db_queue, 1024);
    ck_assert_int_eq(cfg.db_timeout_ms, 5000);
    ck_assert_int_eq(cfg.db_queue_timeout_ms, 1000);
    ck_assert_int_eq(cfg.redis_timeout_ms, 2000);
    ck_assert_int_eq(cfg.shutdown_timeout_ms, 10000);
    ck_assert_ptr_null(cfg.jwt_secret);
    ck_assert_int_eq(cfg.jwt_rs256, 0);
    ck_assert_ptr_null(cfg.jwt_private_key);
    ck_assert_ptr_null(cfg.jwt_public_key);
    ck_assert_str_eq(cfg.jwt_issuer, "clientele");
    ck_assert_str_eq(cfg.jwt_audience, "clientele-api");
    ck_assert_int_eq(cfg.access_ttl_s, 15 * 60);
    ck_assert_int_eq(cfg.refresh_ttl_s, 30 * 86400);
    ck_assert_int_eq(cfg.kdf_threads, 2);
    ck_assert_int_eq(cfg.log_level, LOG_INFO);
    ck_assert_uint_eq(cfg.body_limit, 1024 * 1024);
    ck_assert_uint_eq(cfg.bulk_body_limit, 32 * 1024 * 1024);
    ck_assert_uint_eq(cfg.attachment_limit, 25 * 1024 * 1024);
    ck_assert_str_eq(cfg.storage_dir, ".run/storage");
    ck_assert_str_eq(cfg.worker_db_role, "clientele_worker");
    ck_assert_str_eq(cfg.timezone, "UTC");
    ck_assert_str_eq(cfg.backup_dir, ".run/backups");
    ck_assert_int_eq(cfg.backup_keep, 14);
    ck_assert_int_eq(cfg.backup_at_min, 2 * 60);
    ck_assert_str_eq(cfg.phone_region->iso, "CN");
    ck_assert_ptr_nonnull(cfg.cors_origins);
    ck_assert_ptr_null(cfg.cors_origins[0]);
    ck_assert_ptr_null(cfg.tls_cert);
    ck_assert_ptr_null(cfg.tls_key);
    ck_assert_str_eq(cfg.worker_listen_host, "127.0.0.1");
    ck_assert_uint_eq(cfg.worker_listen_port, 8081);
    cfg_free(&cfg);
    ck_assert(is_zeroed(&cfg));
}
END_TEST

START_TEST(test_load_empty_means_default)
{
    env_t env[] = {{"CLIENTELE_LISTEN", ""},    {"CLIENTELE_DB_POOL", ""},    {"CLIENTELE_DB_TIMEOUT", ""},
                   {"CLIENTELE_LOG_LEVEL", ""}, {"CLIENTELE_BODY_LIMIT", ""}, {"CLIENTELE_REDIS_URL", ""},
                   {"CLIENTELE_TLS_CERT", ""},  {"CLIENTELE_TLS_KEY", ""},    {NULL, NULL}};
    cfg_t cfg;
    load_ok(env, &cfg);
    ck_assert_str_eq(cfg.listen_host, "127.0.0.1");
    ck_assert_uint_eq(cfg.listen_port, 8080);
    ck_assert_int_eq(cfg.db_pool, 8);
    ck_assert_int_eq(cfg.db_timeout_ms, 5000);
    ck_assert_int_eq(cfg.log_level, LOG_INFO);
    ck_assert_uint_eq(cfg.body_limit, 1024 * 1024);
    ck_assert_uint_eq(cfg.redis_port, 6379);
    ck_assert_ptr_null(cfg.tls_cert);
    cfg_free(&cfg);
}
END_TEST

/* --- cfg_load: each variable, good then bad -------------------------------- */

START_TEST(test_load_listen)
{
    cfg_t cfg;
    load_one("CLIENTELE_LISTEN", "0.0.0.0:9000", &cfg);
    ck_assert_str_eq(cfg.listen_host, "0.0.0.0");
    ck_assert_uint_eq(cfg.listen_port, 9000);
    cfg_free(&cfg);
    load_one("CLIENTELE_LISTEN", "[::1]:8443", &cfg);
    ck_assert_str_eq(cfg.listen_host, "::1");
    ck_assert_uint_eq(cfg.listen_port, 8443);
    cfg_free(&cfg);

    assert_refused("CLIENTELE_LISTEN", "localhost");
    assert_refused("CLIENTELE_LISTEN", "localhost:0");
    assert_refused("CLIENTELE_LISTEN", "0.0.0.0:70000");

    /* The message quotes what was given. */
    env_t env[] = {{"CLIENTELE_LISTEN", "nowhere"}, {NULL, NULL}};
    char err[256] = "";
    cfg_t c2;
    ck_assert_int_eq(cfg_load(&c2, table_lookup, env, err, sizeof(err)), ERR_INVALID);
    ck_assert_msg(strstr(err, "\"nowhere\"") != NULL, "message does not quote the value: %s", err);
}
END_TEST

START_TEST(test_load_worker_listen)
{
    cfg_t cfg;
    load_one("CLIENTELE_WORKER_LISTEN", "0.0.0.0:9101", &cfg);
    ck_assert_str_eq(cfg.worker_listen_host, "0.0.0.0");
    ck_assert_uint_eq(cfg.worker_listen_port, 9101);
    cfg_free(&cfg);
    /* Empty turns the listener off (other variables take their default when empty). */
    load_one("CLIENTELE_WORKER_LISTEN", "", &cfg);
    ck_assert_ptr_null(cfg.worker_listen_host);
    cfg_free(&cfg);
    assert_refused("CLIENTELE_WORKER_LISTEN", "8081");
    assert_refused("CLIENTELE_WORKER_LISTEN", "127.0.0.1:0");
}
END_TEST

START_TEST(test_load_database_url)
{
    cfg_t cfg;
    load_one("CLIENTELE_DATABASE_URL", "postgresql://app@db.internal:6543/crm", &cfg);
    ck_assert_str_eq(cfg.database_url, "postgresql://app@db.internal:6543/crm");
    cfg_free(&cfg);
    load_one("CLIENTELE_DATABASE_URL", "host=/run/postgresql dbname=crm", &cfg);
    ck_assert_str_eq(cfg.database_url, "host=/run/postgresql dbname=crm");
    cfg_free(&cfg);

    assert_refused("CLIENTELE_DATABASE_URL", "not a connection string");
    assert_refused("CLIENTELE_DATABASE_URL", "postgresql://h/db?nosuchoption=1");
}
END_TEST

START_TEST(test_load_redis_url)
{
    cfg_t cfg;
    load_one("CLIENTELE_REDIS_URL", "redis://:s3cret@cache.internal:6380/3", &cfg);
    ck_assert_str_eq(cfg.redis_host, "cache.internal");
    ck_assert_uint_eq(cfg.redis_port, 6380);
    ck_assert_int_eq(cfg.redis_db, 3);
    ck_assert_str_eq(cfg.redis_password, "s3cret");
    cfg_free(&cfg);

    assert_refused("CLIENTELE_REDIS_URL", "http://cache.internal:6379/0");
    assert_refused("CLIENTELE_REDIS_URL", "redis://cache.internal:6379/16");
    /* A failure after the password was parsed must not leak it (LeakSanitizer checks). */
    assert_refused("CLIENTELE_REDIS_URL", "redis://:pw@cache.internal:0/0");
}
END_TEST

START_TEST(test_load_threads)
{
    cfg_t cfg;
    load_one("CLIENTELE_THREADS", "4", &cfg);
    ck_assert_int_eq(cfg.threads, 4);
    cfg_free(&cfg);
    load_one("CLIENTELE_THREADS", "256", &cfg);
    ck_assert_int_eq(cfg.threads, 256);
    cfg_free(&cfg);

    assert_refused("CLIENTELE_THREADS", "0");
    assert_refused("CLIENTELE_THREADS", "257");
    assert_refused("CLIENTELE_THREADS", "four");
    assert_refused("CLIENTELE_THREADS", "4x");
    assert_refused("CLIENTELE_THREADS", " 4");
    assert_refused("CLIENTELE_THREADS", "-4");

    env_t env[] = {{"CLIENTELE_THREADS", "lots"}, {NULL, NULL}};
    char err[256] = "";
    ck_assert_int_eq(cfg_load(&cfg, table_lookup, env, err, sizeof(err)), ERR_INVALID);
    ck_assert_msg(strncmp(err, "CLIENTELE_THREADS: ", 19) == 0, "got \"%s\"", err);
    ck_assert_msg(strstr(err, "\"lots\"") != NULL, "message does not quote the value: %s", err);
}
END_TEST

START_TEST(test_load_db_pool_queue)
{
    cfg_t cfg;
    env_t env[] = {{"CLIENTELE_DB_POOL", "16"}, {"CLIENTELE_DB_QUEUE", "0"}, {NULL, NULL}};
    load_ok(env, &cfg);
    ck_assert_int_eq(cfg.db_pool, 16);
    ck_assert_int_eq(cfg.db_queue, 0);
    cfg_free(&cfg);
    load_one("CLIENTELE_DB_QUEUE", "1000000", &cfg);
    ck_assert_int_eq(cfg.db_queue, 1000000);
    cfg_free(&cfg);

    assert_refused("CLIENTELE_DB_POOL", "0");
    assert_refused("CLIENTELE_DB_POOL", "257");
    assert_refused("CLIENTELE_DB_POOL", "8.5");
    assert_refused("CLIENTELE_DB_QUEUE", "-1");
    assert_refused("CLIENTELE_DB_QUEUE", "1000001");
    assert_refused("CLIENTELE_DB_QUEUE", "1e6");
}
END_TEST

START_TEST(test_load_timeouts)
{
    cfg_t cfg;
    env_t env[] = {{"CLIENTELE_DB_TIMEOUT", "250ms"},
                   {"CLIENTELE_REDIS_TIMEOUT", "1s"},
                   {"CLIENTELE_SHUTDOWN_TIMEOUT", "2m"},
                   {NULL, NULL}};
    load_ok(env, &cfg);
    ck_assert_int_eq(cfg.db_timeout_ms, 250);
    ck_assert_int_eq(cfg.redis_timeout_ms, 1000);
    ck_assert_int_eq(cfg.shutdown_timeout_ms, 120000);
    cfg_free(&cfg);
    load_one("CLIENTELE_SHUTDOWN_TIMEOUT", "0s", &cfg);
    ck_assert_int_eq(cfg.shutdown_timeout_ms, 0);
    cfg_free(&cfg);
    load_one("CLIENTELE_DB_TIMEOUT", "30", &cfg); /* a bare number is seconds */
    ck_assert_int_eq(cfg.db_timeout_ms, 30000);
    cfg_free(&cfg);
    load_one("CLIENTELE_DB_TIMEOUT", "60m", &cfg);
    ck_assert_int_eq(cfg.db_timeout_ms, 3600000);
    cfg_free(&cfg);
    load_one("CLIENTELE_DB_TIMEOUT", "1h", &cfg);
    ck_assert_int_eq(cfg.db_timeout_ms, 3600000);
    cfg_free(&cfg);

    assert_refused("CLIENTELE_DB_TIMEOUT", "5ms");
    assert_refused("CLIENTELE_DB_TIMEOUT", "61m");
    assert_refused("CLIENTELE_DB_TIMEOUT", "2h");
    assert_refused("CLIENTELE_REDIS_TIMEOUT", "11m");
    assert_refused("CLIENTELE_REDIS_TIMEOUT", "9ms");
    assert_refused("CLIENTELE_REDIS_TIMEOUT", "fast");
    assert_refused("CLIENTELE_SHUTDOWN_TIMEOUT", "-1");
    assert_refused("CLIENTELE_SHUTDOWN_TIMEOUT", "61m");
}
END_TEST

START_TEST(test_load_db_queue_timeout)
{
    cfg_t cfg;
    load_one("CLIENTELE_DB_QUEUE_TIMEOUT", "", &cfg); /* empty: the default */
    ck_assert_int_eq(cfg.db_queue_timeout_ms, 1000);
    cfg_free(&cfg);
    load_one("CLIENTELE_DB_QUEUE_TIMEOUT", "250ms", &cfg);
    ck_assert_int_eq(cfg.db_queue_timeout_ms, 250);
    cfg_free(&cfg);
    load_one("CLIENTELE_DB_QUEUE_TIMEOUT", "1ms", &cfg);
    ck_assert_int_eq(cfg.db_queue_timeout_ms, 1);
    cfg_free(&cfg);
    load_one("CLIENTELE_DB_QUEUE_TIMEOUT", "60m", &cfg);
    ck_assert_int_eq(cfg.db_queue_timeout_ms, 3600000);
    cfg_free(&cfg);

    assert_refused("CLIENTELE_DB_QUEUE_TIMEOUT", "0");
    assert_refused("CLIENTELE_DB_QUEUE_TIMEOUT", "61m");
    assert_refused("CLIENTELE_DB_QUEUE_TIMEOUT", "-1s");
    assert_refused("CLIENTELE_DB_QUEUE_TIMEOUT", "soon");
}
END_TEST

START_TEST(test_load_jwt_secret)
{
    cfg_t cfg;
    load_one("CLIENTELE_JWT_SECRET", SECRET32, &cfg);
    ck_assert_str_eq(cfg.jwt_secret, SECRET32);
    ck_assert_ptr_ne(cfg.jwt_secret, SECRET32); /* owned copy */
    cfg_free(&cfg);

    char shorter[sizeof(SECRET32)];
    memcpy(shorter, SECRET32, 31);
    shorter[31] = '\0';
    assert_refused("CLIENTELE_JWT_SECRET", shorter);
    assert_refused("CLIENTELE_JWT_SECRET", "secret");

    /* Empty means unset, as for every other variable. */
    load_one("CLIENTELE_JWT_SECRET", "", &cfg);
    ck_assert_ptr_null(cfg.jwt_secret);
    cfg_free(&cfg);
}
END_TEST

static char *make_file(const char *content)
{
    char *path = strdup("/tmp/cfg_test_XXXXXX");
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    size_t n = strlen(content);
    ck_assert_int_eq(write(fd, content, n), (ssize_t)n);
    close(fd);
    return path;
}

static void remove_file(char *path)
{
    unlink(path);
    free(path);
}

#define PEM_PRIV "-----BEGIN PRIVATE KEY-----\nMIIBVQIBADANBg\n-----END PRIVATE KEY-----\n"
#define PEM_PUB "-----BEGIN PUBLIC KEY-----\nMFwwDQYJKoZI\n-----END PUBLIC KEY-----\n"

START_TEST(test_load_jwt_alg_keys)
{
    char *priv = make_file(PEM_PRIV), *pub = make_file(PEM_PUB), *junk = make_file("not a key\n");
    cfg_t cfg;
    env_t rs[] = {{"CLIENTELE_JWT_ALG", "RS256"},    {"CLIENTELE_JWT_PRIVATE_KEY", priv},
                  {"CLIENTELE_JWT_PUBLIC_KEY", pub}, {"CLIENTELE_JWT_ISSUER", "https://id.example.com"},
                  {"CLIENTELE_JWT_AUDIENCE", "crm"}, {NULL, NULL}};
    load_ok(rs, &cfg);
    ck_assert_int_eq(cfg.jwt_rs256, 1);
    ck_assert_pstr_eq(cfg.jwt_private_key, PEM_PRIV);
    ck_assert_pstr_eq(cfg.jwt_public_key, PEM_PUB);
    ck_assert_str_eq(cfg.jwt_issuer, "https://id.example.com");
    ck_assert_str_eq(cfg.jwt_audience, "crm");
    cfg_free(&cfg);
    load_one("CLIENTELE_JWT_ALG", "HS256", &cfg);
    ck_assert_int_eq(cfg.jwt_rs256, 0);
    cfg_free(&cfg);

    assert_refused("CLIENTELE_JWT_ALG", "none");
    assert_refused("CLIENTELE_JWT_ALG", "hs256");
    assert_refused("CLIENTELE_JWT_ALG", "ES256");
    assert_refused("CLIENTELE_JWT_PRIVATE_KEY", "/nonexistent/key.pem");
    assert_refused("CLIENTELE_JWT_PRIVATE_KEY", junk);
    assert_refused("CLIENTELE_JWT_PUBLIC_KEY", "/nonexistent/pub.pem");
    assert_refused("CLIENTELE_JWT_PUBLIC_KEY", junk);
    /* A refusal after the private key was read must free it (LeakSanitizer checks). */
    env_t late[] = {{"CLIENTELE_JWT_PRIVATE_KEY", priv}, {"CLIENTELE_JWT_PUBLIC_KEY", junk}, {NULL, NULL}};
    assert_refused_env(late, "CLIENTELE_JWT_PUBLIC_KEY");

    remove_file(priv);
    remove_file(pub);
    remove_file(junk);
}
END_TEST

START_TEST(test_load_token_ttls)
{
    cfg_t cfg;
    env_t env[] = {
        {"CLIENTELE_ACCESS_TTL", "1h"}, {"CLIENTELE_REFRESH_TTL", "7d"}, {"CLIENTELE_KDF_THREADS", "4"}, {NULL, NULL}};
    load_ok(env, &cfg);
    ck_assert_int_eq(cfg.access_ttl_s, 3600);
    ck_assert_int_eq(cfg.refresh_ttl_s, 7 * 86400);
    ck_assert_int_eq(cfg.kdf_threads, 4);
    cfg_free(&cfg);
    env_t edges[] = {{"CLIENTELE_ACCESS_TTL", "1m"},
                     {"CLIENTELE_REFRESH_TTL", "365d"},
                     {"CLIENTELE_KDF_THREADS", "64"},
                     {NULL, NULL}};
    load_ok(edges, &cfg);
    ck_assert_int_eq(cfg.access_ttl_s, 60);
    ck_assert_int_eq(cfg.refresh_ttl_s, 365 * 86400);
    ck_assert_int_eq(cfg.kdf_threads, 64);
    cfg_free(&cfg);

    assert_refused("CLIENTELE_ACCESS_TTL", "30s");
    assert_refused("CLIENTELE_ACCESS_TTL", "25h");
    assert_refused("CLIENTELE_ACCESS_TTL", "soon");
    assert_refused("CLIENTELE_REFRESH_TTL", "59s");
    assert_refused("CLIENTELE_REFRESH_TTL", "366d");
    assert_refused("CLIENTELE_KDF_THREADS", "0");
    assert_refused("CLIENTELE_KDF_THREADS", "65");
    assert_refused("CLIENTELE_KDF_THREADS", "two");
}
END_TEST

static void assert_require_auth(const env_t *env, const char *refused_name)
{
    cfg_t cfg;
    char err[256] = "";
    load_ok(env, &cfg);
    int r = cfg_require_auth(&cfg, err, sizeof(err));
    cfg_free(&cfg);
    if (refused_name == NULL) {
        ck_assert_msg(r == 0, "cfg_require_auth refused: %s", err);
    } else {
        ck_assert_int_eq(r, ERR_INVALID);
        size_t n = strlen(refused_name);
        ck_assert_msg(strncmp(err, refused_name, n) == 0 && strncmp(err + n, ": ", 2) == 0,
                      "error should start with \"%s: \", got \"%s\"", refused_name, err);
    }
}

START_TEST(test_require_auth)
{
    char *priv = make_file(PEM_PRIV), *pub = make_file(PEM_PUB);
    env_t none[] = {{NULL, NULL}};
    assert_require_auth(none, "CLIENTELE_JWT_SECRET");
    env_t hs[] = {{"CLIENTELE_JWT_SECRET", SECRET32}, {NULL, NULL}};
    assert_require_auth(hs, NULL);
    env_t rs_none[] = {{"CLIENTELE_JWT_ALG", "RS256"}, {"CLIENTELE_JWT_SECRET", SECRET32}, {NULL, NULL}};
    assert_require_auth(rs_none, "CLIENTELE_JWT_PRIVATE_KEY");
    env_t rs_priv[] = {{"CLIENTELE_JWT_ALG", "RS256"}, {"CLIENTELE_JWT_PRIVATE_KEY", priv}, {NULL, NULL}};
    assert_require_auth(rs_priv, "CLIENTELE_JWT_PUBLIC_KEY");
    env_t rs_both[] = {{"CLIENTELE_JWT_ALG", "RS256"},
                       {"CLIENTELE_JWT_PRIVATE_KEY", priv},
                       {"CLIENTELE_JWT_PUBLIC_KEY", pub},
                       {NULL, NULL}};
    assert_require_auth(rs_both, NULL);
    remove_file(priv);
    remove_file(pub);
}
END_TEST

START_TEST(test_load_log_level)
{
    static const struct {
        const char *s;
        int level;
    } ok[] = {{"debug", LOG_DEBUG}, {"info", LOG_INFO}, {"warn", LOG_WARN}, {"error", LOG_ERROR}};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        cfg_t cfg;
        load_one("CLIENTELE_LOG_LEVEL", ok[i].s, &cfg);
        ck_assert_int_eq(cfg.log_level, ok[i].level);
        cfg_free(&cfg);
    }
    assert_refused("CLIENTELE_LOG_LEVEL", "verbose");
    assert_refused("CLIENTELE_LOG_LEVEL", "INFOX");
}
END_TEST

START_TEST(test_load_body_limits)
{
    cfg_t cfg;
    env_t env[] = {{"CLIENTELE_BODY_LIMIT", "64KiB"}, {"CLIENTELE_BULK_BODY_LIMIT", "64MiB"}, {NULL, NULL}};
    load_ok(env, &cfg);
    ck_assert_uint_eq(cfg.body_limit, 64 * 1024);
    ck_assert_uint_eq(cfg.bulk_body_limit, 64 * 1024 * 1024);
    cfg_free(&cfg);
    load_one("CLIENTELE_BODY_LIMIT", "1KiB", &cfg);
    ck_assert_uint_eq(cfg.body_limit, 1024);
    cfg_free(&cfg);

    assert_refused("CLIENTELE_BODY_LIMIT", "512");
    assert_refused("CLIENTELE_BODY_LIMIT", "2GiB");
    assert_refused("CLIENTELE_BODY_LIMIT", "12x");
    assert_refused("CLIENTELE_BULK_BODY_LIMIT", "1023");
    assert_refused("CLIENTELE_BULK_BODY_LIMIT", "lots");

    /* The bulk limit may not be below the ordinary one. */
    env_t inverted[] = {{"CLIENTELE_BODY_LIMIT", "2MiB"}, {"CLIENTELE_BULK_BODY_LIMIT", "1MiB"}, {NULL, NULL}};
    assert_refused_env(inverted, "CLIENTELE_BULK_BODY_LIMIT");
    env_t equal[] = {{"CLIENTELE_BODY_LIMIT", "2MiB"}, {"CLIENTELE_BULK_BODY_LIMIT", "2MiB"}, {NULL, NULL}};
    load_ok(equal, &cfg);
    ck_assert_uint_eq(cfg.bulk_body_limit, 2 * 1024 * 1024);
    cfg_free(&cfg);
}
END_TEST

START_TEST(test_load_attachments)
{
    cfg_t cfg;
    env_t env[] = {
        {"CLIENTELE_ATTACHMENT_LIMIT", "64KiB"}, {"CLIENTELE_STORAGE_DIR", "/srv/clientele/files"}, {NULL, NULL}};
    load_ok(env, &cfg);
    ck_assert_uint_eq(cfg.attachment_limit, 64 * 1024);
    ck_assert_str_eq(cfg.storage_dir, "/srv/clientele/files");
    cfg_free(&cfg);
    /* Independent of the body limits: larger than the bulk limit is fine. */
    env_t big[] = {{"CLIENTELE_ATTACHMENT_LIMIT", "100MiB"}, {"CLIENTELE_BULK_BODY_LIMIT", "2MiB"}, {NULL, NULL}};
    load_ok(big, &cfg);
    ck_assert_uint_eq(cfg.attachment_limit, 100 * 1024 * 1024);
    cfg_free(&cfg);

    assert_refused("CLIENTELE_ATTACHMENT_LIMIT", "1023");
    assert_refused("CLIENTELE_ATTACHMENT_LIMIT", "2GiB");
    assert_refused("CLIENTELE_ATTACHMENT_LIMIT", "25 MiB");
    assert_refused("CLIENTELE_STORAGE_DIR", repeat_a(3901));
}
END_TEST

START_TEST(test_load_backups)
{
    cfg_t cfg;
    env_t env[] = {{"CLIENTELE_BACKUP_DIR", "/srv/backups"},  {"CLIENTELE_BACKUP_KEEP", "1"},
                   {"CLIENTELE_BACKUP_AT", "23:59"},          {"CLIENTELE_TIMEZONE", "America/Argentina/Buenos_Aires"},
                   {"CLIENTELE_WORKER_DB_ROLE", "crm_jobs2"}, {NULL, NULL}};
    load_ok(env, &cfg);
    ck_assert_str_eq(cfg.backup_dir, "/srv/backups");
    ck_assert_int_eq(cfg.backup_keep, 1);
    ck_assert_int_eq(cfg.backup_at_min, 23 * 60 + 59);
    ck_assert_str_eq(cfg.timezone, "America/Argentina/Buenos_Aires");
    ck_assert_str_eq(cfg.worker_db_role, "crm_jobs2");
    cfg_free(&cfg);
    load_one("CLIENTELE_BACKUP_AT", "off", &cfg);
    ck_assert_int_eq(cfg.backup_at_min, -1);
    cfg_free(&cfg);
    load_one("CLIENTELE_BACKUP_AT", "00:00", &cfg);
    ck_assert_int_eq(cfg.backup_at_min, 0);
    cfg_free(&cfg);
    load_one("CLIENTELE_TIMEZONE", "Etc/GMT+2", &cfg);
    ck_assert_str_eq(cfg.timezone, "Etc/GMT+2");
    cfg_free(&cfg);

    assert_refused("CLIENTELE_BACKUP_KEEP", "0");
    assert_refused("CLIENTELE_BACKUP_KEEP", "10001");
    assert_refused("CLIENTELE_BACKUP_KEEP", "seven");
    assert_refused("CLIENTELE_BACKUP_AT", "24:00");
    assert_refused("CLIENTELE_BACKUP_AT", "2:00");
    assert_refused("CLIENTELE_BACKUP_AT", "02:60");
    assert_refused("CLIENTELE_BACKUP_AT", "02:00:00");
    assert_refused("CLIENTELE_BACKUP_AT", "never");
    assert_refused("CLIENTELE_TIMEZONE", "../../etc/passwd");
    assert_refused("CLIENTELE_TIMEZONE", "/etc/localtime");
    assert_refused("CLIENTELE_TIMEZONE", "Europe/Berlin ");
    assert_refused("CLIENTELE_TIMEZONE", repeat_a(65));
    assert_refused("CLIENTELE_WORKER_DB_ROLE", "Worker");
    assert_refused("CLIENTELE_WORKER_DB_ROLE", "1worker");
    assert_refused("CLIENTELE_WORKER_DB_ROLE", "worker;drop");
    assert_refused("CLIENTELE_BACKUP_DIR", repeat_a(3901));
}
END_TEST

START_TEST(test_load_phone_region)
{
    cfg_t cfg;
    env_t env[] = {{"CLIENTELE_PHONE_REGION", "US"}, {NULL, NULL}};
    load_ok(env, &cfg);
    ck_assert_str_eq(cfg.phone_region->iso, "US");
    ck_assert_str_eq(cfg.phone_region->cc, "1");
    cfg_free(&cfg);
    assert_refused("CLIENTELE_PHONE_REGION", "cn");
    assert_refused("CLIENTELE_PHONE_REGION", "XX");
    assert_refused("CLIENTELE_PHONE_REGION", "CHN");
}
END_TEST

START_TEST(test_load_cors_origins)
{
    cfg_t cfg;
    load_one("CLIENTELE_CORS_ORIGINS", "*", &cfg);
    ck_assert_str_eq(cfg.cors_origins[0], "*");
    ck_assert_ptr_null(cfg.cors_origins[1]);
    cfg_free(&cfg);

    load_one("CLIENTELE_CORS_ORIGINS", "https://app.example.com, http://localhost:3000", &cfg);
    ck_assert_str_eq(cfg.cors_origins[0], "https://app.example.com");
    ck_assert_str_eq(cfg.cors_origins[1], "http://localhost:3000");
    ck_assert_ptr_null(cfg.cors_origins[2]);
    cfg_free(&cfg);

    assert_refused("CLIENTELE_CORS_ORIGINS", "app.example.com");
    assert_refused("CLIENTELE_CORS_ORIGINS", "https://app.example.com/path");
    assert_refused("CLIENTELE_CORS_ORIGINS", "https://ok.example.com,ftp://x.example.com");
    assert_refused("CLIENTELE_CORS_ORIGINS", ",https://app.example.com");
    assert_refused("CLIENTELE_CORS_ORIGINS", "https://app .example.com");
}
END_TEST

START_TEST(test_load_cors_origins_no_path)
{
    /* An origin never has a path: a browser's Origin header could never match these. */
    assert_refused("CLIENTELE_CORS_ORIGINS", "https://app.example.com/");
    assert_refused("CLIENTELE_CORS_ORIGINS", "http://a/");
    assert_refused("CLIENTELE_CORS_ORIGINS", "http:///");
}
END_TEST

/* Is the textual address `ip` inside the configured trusted proxies? */
static int trusted(const cfg_t *cfg, const char *ip)
{
    int family;
    unsigned char a[16];
    ck_assert_msg(cfg_parse_ip(ip, strlen(ip), &family, a) == 0, "%s does not parse", ip);
    return cfg_nets_contain(cfg->trusted_proxies, cfg->ntrusted_proxies, family, a);
}

START_TEST(test_load_trusted_proxies)
{
    cfg_t cfg;
    load_one("CLIENTELE_TRUSTED_PROXIES", "", &cfg);
    ck_assert_ptr_null(cfg.trusted_proxies);
    ck_assert_uint_eq(cfg.ntrusted_proxies, 0);
    ck_assert_int_eq(trusted(&cfg, "127.0.0.1"), 0);
    cfg_free(&cfg);

    load_one("CLIENTELE_TRUSTED_PROXIES", "   ", &cfg);
    ck_assert_uint_eq(cfg.ntrusted_proxies, 0);
    cfg_free(&cfg);
}
END_TEST

START_TEST(test_trusted_proxies_match)
{
    cfg_t cfg;
    load_one("CLIENTELE_TRUSTED_PROXIES", " 10.1.0.0/16, 192.168.7.9 ,fd00:1::/32, 2001:db8::5, 172.16.5.77/12", &cfg);
    ck_assert_uint_eq(cfg.ntrusted_proxies, 5);
    ck_assert_int_eq(trusted(&cfg, "10.1.0.0"), 1);
    ck_assert_int_eq(trusted(&cfg, "10.1.255.254"), 1);
    ck_assert_int_eq(trusted(&cfg, "10.2.0.1"), 0);
    ck_assert_int_eq(trusted(&cfg, "192.168.7.9"), 1);
    ck_assert_int_eq(trusted(&cfg, "192.168.7.10"), 0);
    ck_assert_int_eq(trusted(&cfg, "fd00:1:ffff::1"), 1);
    ck_assert_int_eq(trusted(&cfg, "fd00:2::1"), 0);
    ck_assert_int_eq(trusted(&cfg, "2001:db8::5"), 1);
    ck_assert_int_eq(trusted(&cfg, "2001:db8::6"), 0);
    /* Host bits in the network are cleared: 172.16.5.77/12 is 172.16.0.0/12. */
    ck_assert_int_eq(trusted(&cfg, "172.31.0.1"), 1);
    ck_assert_int_eq(trusted(&cfg, "172.32.0.1"), 0);
    /* An IPv4-mapped IPv6 peer is its IPv4 address; IPv4 networks never match IPv6 addresses. */
    ck_assert_int_eq(trusted(&cfg, "::ffff:10.1.2.3"), 1);
    ck_assert_int_eq(trusted(&cfg, "::a01:203"), 0);
    cfg_free(&cfg);

    load_one("CLIENTELE_TRUSTED_PROXIES", "0.0.0.0/0", &cfg);
    ck_assert_int_eq(trusted(&cfg, "203.0.113.9"), 1);
    ck_assert_int_eq(trusted(&cfg, "2001:db8::1"), 0);
    cfg_free(&cfg);
    load_one("CLIENTELE_TRUSTED_PROXIES", "::/0", &cfg);
    ck_assert_int_eq(trusted(&cfg, "2001:db8::1"), 1);
    ck_assert_int_eq(trusted(&cfg, "203.0.113.9"), 0);
    cfg_free(&cfg);
}
END_TEST

START_TEST(test_trusted_proxies_refused)
{
    static const char *const bad[] = {
        "10.0.0.0/33", "fd00::/129",     "10.0.0.0/",           "10.0.0.0/-1", "10.0.0.0/8/8",
        "10.0.0",      "lb.example.com", "10.0.0.1,,10.0.0.2",  ",10.0.0.1",   "10.0.0.1,",
        "[::1]",       "10.0.0.0/1a",    "::ffff:10.0.0.0/104", "*",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_refused("CLIENTELE_TRUSTED_PROXIES", bad[i]);
}
END_TEST

START_TEST(test_load_tls)
{
    char *cert = make_file("x\n"), *key = make_file("x\n");
    cfg_t cfg;
    env_t both[] = {{"CLIENTELE_TLS_CERT", cert}, {"CLIENTELE_TLS_KEY", key}, {NULL, NULL}};
    load_ok(both, &cfg);
    ck_assert_str_eq(cfg.tls_cert, cert);
    ck_assert_str_eq(cfg.tls_key, key);
    cfg_free(&cfg);

    env_t cert_only[] = {{"CLIENTELE_TLS_CERT", cert}, {NULL, NULL}};
    assert_refused_env(cert_only, "CLIENTELE_TLS_KEY");
    env_t cert_empty_key[] = {{"CLIENTELE_TLS_CERT", cert}, {"CLIENTELE_TLS_KEY", ""}, {NULL, NULL}};
    assert_refused_env(cert_empty_key, "CLIENTELE_TLS_KEY");
    env_t key_only[] = {{"CLIENTELE_TLS_KEY", key}, {NULL, NULL}};
    assert_refused_env(key_only, "CLIENTELE_TLS_CERT");
    env_t missing_cert[] = {{"CLIENTELE_TLS_CERT", "/nonexistent/cert.pem"}, {"CLIENTELE_TLS_KEY", key}, {NULL, NULL}};
    assert_refused_env(missing_cert, "CLIENTELE_TLS_CERT");
    env_t missing_key[] = {{"CLIENTELE_TLS_CERT", cert}, {"CLIENTELE_TLS_KEY", "/nonexistent/key.pem"}, {NULL, NULL}};
    assert_refused_env(missing_key, "CLIENTELE_TLS_KEY");

    /* A late failure (TLS is checked last) frees everything loaded before it. */
    env_t late[] = {{"CLIENTELE_REDIS_URL", "redis://:pw@h:1/1"},
                    {"CLIENTELE_JWT_SECRET", SECRET32},
                    {"CLIENTELE_CORS_ORIGINS", "https://a.example.com,https://b.example.com"},
                    {"CLIENTELE_TLS_CERT", cert},
                    {NULL, NULL}};
    assert_refused_env(late, "CLIENTELE_TLS_KEY");

    remove_file(cert);
    remove_file(key);
}
END_TEST

START_TEST(test_load_first_failure_wins)
{
    /* Variables are checked in a fixed order and the first bad one is reported. */
    env_t env[] = {{"CLIENTELE_DB_POOL", "0"}, {"CLIENTELE_LOG_LEVEL", "loud"}, {NULL, NULL}};
    assert_refused_env(env, "CLIENTELE_DB_POOL");

    /* A tiny error buffer is truncated, not overrun. */
    env_t bad[] = {{"CLIENTELE_THREADS", "x"}, {NULL, NULL}};
    char *err = malloc(8); /* exact size for ASan */
    cfg_t cfg;
    ck_assert_int_eq(cfg_load(&cfg, table_lookup, bad, err, 8), ERR_INVALID);
    ck_assert_str_eq(err, "CLIENTE");
    free(err);
}
END_TEST

/* --- cfg_parse_duration_ms -------------------------------------------------- */

static long dur_ok(const char *s)
{
    long v = -42;
    const char *why = NULL;
    int r = cfg_parse_duration_ms(s, 0, LONG_MAX, &v, &why);
    ck_assert_msg(r == 0, "\"%s\" refused: %s", s, why != NULL ? why : "(no reason)");
    return v;
}

static void dur_bad(const char *s, long min, long max)
{
    long v = -42;
    const char *why = NULL;
    ck_assert_msg(cfg_parse_duration_ms(s, min, max, &v, &why) == ERR_INVALID, "\"%s\" accepted", s);
    ck_assert_msg(why != NULL && why[0] != '\0', "\"%s\": no reason given", s);
    ck_assert_msg(v == -42, "\"%s\": output written on failure", s);
}

START_TEST(test_duration_units)
{
    ck_assert_int_eq(dur_ok("500ms"), 500);
    ck_assert_int_eq(dur_ok("5s"), 5000);
    ck_assert_int_eq(dur_ok("2m"), 120000);
    ck_assert_int_eq(dur_ok("5"), 5000);
    ck_assert_int_eq(dur_ok("0"), 0);
    ck_assert_int_eq(dur_ok("0ms"), 0);
    ck_assert_int_eq(dur_ok("007s"), 7000);
    ck_assert_int_eq(dur_ok("5h"), 5L * 3600000);
    ck_assert_int_eq(dur_ok("2d"), 2L * 86400000);
}
END_TEST

START_TEST(test_duration_bad)
{
    dur_bad("-1", 0, LONG_MAX);
    dur_bad("-1s", 0, LONG_MAX);
    dur_bad("+1s", 0, LONG_MAX);
    dur_bad("5w", 0, LONG_MAX);
    dur_bad("5hr", 0, LONG_MAX);
    dur_bad("5H", 0, LONG_MAX);
    dur_bad("1d12h", 0, LONG_MAX);
    dur_bad("", 0, LONG_MAX);
    dur_bad("ms", 0, LONG_MAX);
    dur_bad("s", 0, LONG_MAX);
    dur_bad("1.5s", 0, LONG_MAX);
    dur_bad("5 s", 0, LONG_MAX);
    dur_bad(" 5s", 0, LONG_MAX);
    dur_bad("5s ", 0, LONG_MAX);
    dur_bad("5S", 0, LONG_MAX);
    dur_bad("5MS", 0, LONG_MAX);
    dur_bad("5sec", 0, LONG_MAX);
    dur_bad("1m30s", 0, LONG_MAX);
}
END_TEST

START_TEST(test_duration_range)
{
    long v;
    const char *why;
    ck_assert_int_eq(cfg_parse_duration_ms("10ms", 10, 100, &v, &why), 0);
    ck_assert_int_eq(v, 10);
    ck_assert_int_eq(cfg_parse_duration_ms("100ms", 10, 100, &v, &why), 0);
    ck_assert_int_eq(v, 100);
    dur_bad("9ms", 10, 100);
    dur_bad("101ms", 10, 100);
    dur_bad("1s", 10, 100);
    /* Overflow: of the digits, and of the multiplication by the unit. */
    dur_bad("99999999999999999999999", 0, LONG_MAX);
    dur_bad("18446744073709551616ms", 0, LONG_MAX);
    dur_bad("9223372036854775808ms", 0, LONG_MAX);
    dur_bad("9223372036854775807s", 0, LONG_MAX);
    dur_bad("9223372036854775807", 0, LONG_MAX);
    dur_bad("153722867280912931m", 0, LONG_MAX);
    dur_bad("106751991167301d", 0, LONG_MAX);
    ck_assert_int_eq(dur_ok("106751991167d"), 106751991167L * 86400000);
    ck_assert_int_eq(dur_ok("9223372036854775807ms"), LONG_MAX);
    ck_assert_int_eq(dur_ok("9223372036854775s"), 9223372036854775000L);
}
END_TEST

/* --- cfg_parse_size --------------------------------------------------------- */

static size_t size_ok(const char *s)
{
    size_t v = 42;
    const char *why = NULL;
    int r = cfg_parse_size(s, 0, SIZE_MAX, &v, &why);
    ck_assert_msg(r == 0, "\"%s\" refused: %s", s, why != NULL ? why : "(no reason)");
    return v;
}

static void size_bad(const char *s, size_t min, size_t max)
{
    size_t v = 42;
    const char *why = NULL;
    ck_assert_msg(cfg_parse_size(s, min, max, &v, &why) == ERR_INVALID, "\"%s\" accepted", s);
    ck_assert_msg(why != NULL && why[0] != '\0', "\"%s\": no reason given", s);
    ck_assert_msg(v == 42, "\"%s\": output written on failure", s);
}

START_TEST(test_size_units)
{
    ck_assert_uint_eq(size_ok("65536"), 65536);
    ck_assert_uint_eq(size_ok("100B"), 100);
    ck_assert_uint_eq(size_ok("64KiB"), 64 * 1024);
    ck_assert_uint_eq(size_ok("64K"), 64 * 1024);
    ck_assert_uint_eq(size_ok("64k"), 64 * 1024);
    ck_assert_uint_eq(size_ok("1MiB"), 1024 * 1024);
    ck_assert_uint_eq(size_ok("3M"), 3 * 1024 * 1024);
    ck_assert_uint_eq(size_ok("1G"), 1024ULL * 1024 * 1024);
    ck_assert_uint_eq(size_ok("2GiB"), 2ULL * 1024 * 1024 * 1024);
    ck_assert_uint_eq(size_ok("0"), 0);
}
END_TEST

START_TEST(test_size_bad)
{
    size_bad("12x", 0, SIZE_MAX);
    size_bad("", 0, SIZE_MAX);
    size_bad("KiB", 0, SIZE_MAX);
    size_bad("-1", 0, SIZE_MAX);
    size_bad("1.5MiB", 0, SIZE_MAX);
    size_bad("1 MiB", 0, SIZE_MAX);
    size_bad("1mib", 0, SIZE_MAX);
    size_bad("1KB", 0, SIZE_MAX);
    size_bad("1T", 0, SIZE_MAX);
    /* Overflow of the digits and of the multiplication. */
    size_bad("99999999999999999999999", 0, SIZE_MAX);
    size_bad("17179869184GiB", 0, SIZE_MAX);
    size_bad("18014398509481984KiB", 0, SIZE_MAX);
    /* Range. */
    size_bad("1023", 1024, 4096);
    size_bad("5KiB", 1024, 4096);
    size_t v;
    const char *why;
    ck_assert_int_eq(cfg_parse_size("4KiB", 1024, 4096, &v, &why), 0);
    ck_assert_uint_eq(v, 4096);
    ck_assert_int_eq(cfg_parse_size("1KiB", 1024, 4096, &v, &why), 0);
    ck_assert_uint_eq(v, 1024);
}
END_TEST

/* --- cfg_parse_hostport ----------------------------------------------------- */

static void hp_ok(const char *s, const char *host, unsigned port)
{
    char *h = NULL;
    uint16_t p = 0;
    const char *why = NULL;
    int r = cfg_parse_hostport(s, &h, &p, &why);
    ck_assert_msg(r == 0, "\"%s\" refused: %s", s, why != NULL ? why : "(no reason)");
    ck_assert_str_eq(h, host);
    ck_assert_uint_eq(p, port);
    free(h);
}

static void hp_bad(const char *s)
{
    char *h = NULL;
    uint16_t p = 0;
    const char *why = NULL;
    ck_assert_msg(cfg_parse_hostport(s, &h, &p, &why) == ERR_INVALID, "\"%s\" accepted", s);
    ck_assert_ptr_null(h);
    ck_assert_msg(why != NULL && why[0] != '\0', "\"%s\": no reason given", s);
}

START_TEST(test_hostport_good)
{
    hp_ok("127.0.0.1:80", "127.0.0.1", 80);
    hp_ok("[::1]:8080", "::1", 8080);
    hp_ok("[2001:db8::1]:443", "2001:db8::1", 443);
    hp_ok("localhost:1", "localhost", 1);
    hp_ok("db-1.internal_zone:65535", "db-1.internal_zone", 65535);
}
END_TEST

START_TEST(test_hostport_bad)
{
    hp_bad("localhost:0");
    hp_bad("host:65536");
    hp_bad("host:99999999999999999999");
    hp_bad("no-port");
    hp_bad("::1:80");
    hp_bad(":80");
    hp_bad("host:");
    hp_bad("host:+80");
    hp_bad("host:-80");
    hp_bad("host: 80");
    hp_bad("host:80x");
    hp_bad("[::1]");
    hp_bad("[::1]8080");
    hp_bad("[::1:8080");
    hp_bad("[]:80");
    hp_bad("ho st:80");
    hp_bad("host/x:80");
    hp_bad("");

    char longhost[300], host253[254];
    memset(host253, 'a', 253);
    host253[253] = '\0';
    snprintf(longhost, sizeof(longhost), "%s:80", host253);
    hp_ok(longhost, host253, 80);
    memset(longhost, 'a', 254);
    strcpy(longhost + 254, ":80");
    hp_bad(longhost);
}
END_TEST

/* --- cfg_parse_redis_url ---------------------------------------------------- */

static void redis_ok(const char *url, const char *host, unsigned port, int db, const char *password)
{
    cfg_t cfg;
    memset(&cfg, 0, sizeof(cfg));
    const char *why = NULL;
    int r = cfg_parse_redis_url(url, &cfg, &why);
    ck_assert_msg(r == 0, "\"%s\" refused: %s", url, why != NULL ? why : "(no reason)");
    ck_assert_str_eq(cfg.redis_host, host);
    ck_assert_uint_eq(cfg.redis_port, port);
    ck_assert_int_eq(cfg.redis_db, db);
    if (password == NULL)
        ck_assert_ptr_null(cfg.redis_password);
    else
        ck_assert_pstr_eq(cfg.redis_password, password);
    cfg_free(&cfg);
}

static void redis_bad(const char *url)
{
    cfg_t cfg;
    memset(&cfg, 0, sizeof(cfg));
    const char *why = NULL;
    ck_assert_msg(cfg_parse_redis_url(url, &cfg, &why) == ERR_INVALID, "\"%s\" accepted", url);
    ck_assert_msg(why != NULL && why[0] != '\0', "\"%s\": no reason given", url);
    ck_assert(is_zeroed(&cfg));
}

START_TEST(test_redis_url_good)
{
    redis_ok("redis://127.0.0.1:6379/2", "127.0.0.1", 6379, 2, NULL);
    redis_ok("redis://:secret@h:1/0", "h", 1, 0, "secret");
    redis_ok("redis://cache.internal/5", "cache.internal", 6379, 5, NULL);
    redis_ok("redis://cache.internal", "cache.internal", 6379, 0, NULL);
    redis_ok("redis://cache.internal:7000", "cache.internal", 7000, 0, NULL);
    redis_ok("redis://cache.internal:7000/", "cache.internal", 7000, 0, NULL);
    redis_ok("redis://[::1]:6380/15", "::1", 6380, 15, NULL);
    redis_ok("redis://:pw@cache.internal/1", "cache.internal", 6379, 1, "pw");
}
END_TEST

START_TEST(test_redis_url_replaces)
{
    /* Parsing into a loaded cfg_t replaces (and frees) the previous values. */
    cfg_t cfg;
    memset(&cfg, 0, sizeof(cfg));
    const char *why;
    ck_assert_int_eq(cfg_parse_redis_url("redis://:one@a:1/1", &cfg, &why), 0);
    ck_assert_int_eq(cfg_parse_redis_url("redis://b:2/2", &cfg, &why), 0);
    ck_assert_str_eq(cfg.redis_host, "b");
    ck_assert_uint_eq(cfg.redis_port, 2);
    ck_assert_int_eq(cfg.redis_db, 2);
    ck_assert_ptr_null(cfg.redis_password);
    /* A refused URL leaves the previous values alone. */
    ck_assert_int_eq(cfg_parse_redis_url("redis://c:3/99", &cfg, &why), ERR_INVALID);
    ck_assert_str_eq(cfg.redis_host, "b");
    ck_assert_int_eq(cfg.redis_db, 2);
    cfg_free(&cfg);
}
END_TEST

START_TEST(test_redis_url_bad)
{
    redis_bad("http://x");
    redis_bad("http://x:6379/0");
    redis_bad("rediss://x:6379/0");
    redis_bad("REDIS://x:6379/0");
    redis_bad("redis://");
    redis_bad("redis:///0");
    redis_bad("redis://h:6379/16");
    redis_bad("redis://h:6379/-1");
    redis_bad("redis://h:6379/x");
    redis_bad("redis://h:6379/1/2");
    redis_bad("redis://h:0/0");
    redis_bad("redis://h:65536/0");
    redis_bad("redis://user:pw@h:6379/0");
    redis_bad("redis://:pw@h:0/0");
    redis_bad("redis://:pw@/0");
}
END_TEST

START_TEST(test_redis_url_ipv6_default_port)
{
    /* "missing port defaults to 6379" holds for IPv6 literals too. */
    redis_ok("redis://[::1]/0", "::1", 6379, 0, NULL);
    redis_ok("redis://[::1]", "::1", 6379, 0, NULL);
}
END_TEST

/* --- cfg_parse_int ---------------------------------------------------------- */

START_TEST(test_parse_int)
{
    long v = 0;
    const char *why;
    ck_assert_int_eq(cfg_parse_int("42", 0, 100, &v, &why), 0);
    ck_assert_int_eq(v, 42);
    ck_assert_int_eq(cfg_parse_int("-5", -10, 10, &v, &why), 0);
    ck_assert_int_eq(v, -5);
    ck_assert_int_eq(cfg_parse_int("101", 0, 100, &v, &why), ERR_INVALID);
    ck_assert_int_eq(cfg_parse_int("", 0, 100, &v, &why), ERR_INVALID);
    ck_assert_int_eq(cfg_parse_int(" 1", 0, 100, &v, &why), ERR_INVALID);
    ck_assert_int_eq(cfg_parse_int("1 ", 0, 100, &v, &why), ERR_INVALID);
    ck_assert_int_eq(cfg_parse_int("99999999999999999999", 0, LONG_MAX, &v, &why), ERR_INVALID);
    ck_assert_int_eq(v, -5);
}
END_TEST

static Suite *cfg_suite(void)
{
    Suite *s = suite_create("common/cfg");
    TCase *tc;

    tc = tcase_create("load");
    tcase_set_timeout(tc, 10);
    tcase_add_test(tc, test_load_defaults);
    tcase_add_test(tc, test_load_empty_means_default);
    tcase_add_test(tc, test_load_listen);
    tcase_add_test(tc, test_load_worker_listen);
    tcase_add_test(tc, test_load_database_url);
    tcase_add_test(tc, test_load_redis_url);
    tcase_add_test(tc, test_load_threads);
    tcase_add_test(tc, test_load_db_pool_queue);
    tcase_add_test(tc, test_load_timeouts);
    tcase_add_test(tc, test_load_db_queue_timeout);
    tcase_add_test(tc, test_load_jwt_secret);
    tcase_add_test(tc, test_load_jwt_alg_keys);
    tcase_add_test(tc, test_load_token_ttls);
    tcase_add_test(tc, test_load_log_level);
    tcase_add_test(tc, test_load_body_limits);
    tcase_add_test(tc, test_load_attachments);
    tcase_add_test(tc, test_load_backups);
    tcase_add_test(tc, test_load_phone_region);
    tcase_add_test(tc, test_load_cors_origins);
    tcase_add_test(tc, test_load_cors_origins_no_path);
    tcase_add_test(tc, test_load_trusted_proxies);
    tcase_add_test(tc, test_trusted_proxies_match);
    tcase_add_test(tc, test_trusted_proxies_refused);
    tcase_add_test(tc, test_load_tls);
    tcase_add_test(tc, test_load_first_failure_wins);
    suite_add_tcase(s, tc);

    tc = tcase_create("require_auth");
    tcase_set_timeout(tc, 10);
    tcase_add_test(tc, test_require_auth);
    suite_add_tcase(s, tc);

    tc = tcase_create("parse_duration_ms");
    tcase_set_timeout(tc, 10);
    tcase_add_test(tc, test_duration_units);
    tcase_add_test(tc, test_duration_bad);
    tcase_add_test(tc, test_duration_range);
    suite_add_tcase(s, tc);

    tc = tcase_create("parse_size");
    tcase_set_timeout(tc, 10);
    tcase_add_test(tc, test_size_units);
    tcase_add_test(tc, test_size_bad);
    suite_add_tcase(s, tc);

    tc = tcase_create("parse_hostport");
    tcase_set_timeout(tc, 10);
    tcase_add_test(tc, test_hostport_good);
    tcase_add_test(tc, test_hostport_bad);
    suite_add_tcase(s, tc);

    tc = tcase_create("parse_redis_url");
    tcase_set_timeout(tc, 10);
    tcase_add_test(tc, test_redis_url_good);
    tcase_add_test(tc, test_redis_url_replaces);
    tcase_add_test(tc, test_redis_url_bad);
    tcase_add_test(tc, test_redis_url_ipv6_default_port);
    suite_add_tcase(s, tc);

    tc = tcase_create("parse_int");
    tcase_set_timeout(tc, 10);
    tcase_add_test(tc, test_parse_int);
    suite_add_tcase(s, tc);

    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(cfg_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
