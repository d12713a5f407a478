/*
 * tests/support/harness.h - what integration tests need: a tiny blocking
 * HTTP/1.1 client, the API process, and control of the test stack.
 *
 * scripts/test.sh exports STACK_DIR, STACK_PG_PORT, STACK_REDIS_PORT and
 * CLIENTELE_TEST_BUILD before running a suite. Each suite gets its own
 * database (cloned from the migrated template) and its own Redis database
 * number, so suites never see each other's data.
 */
#ifndef CLIENTELE_TESTS_HARNESS_H
#define CLIENTELE_TESTS_HARNESS_H

#include <stddef.h>
#include <sys/types.h>

#include <jansson.h>

typedef struct st_th_resp_t {
    int status;
    char *head; /* status line and headers, NUL-terminated */
    char *body; /* NUL-terminated */
    size_t body_len;
    json_t *json; /* the body parsed, when it is JSON; else NULL */
} th_resp_t;

typedef struct st_th_api_t {
    pid_t pid;
    int port;
    char log_path[256];
} th_api_t;

/*
 * Sends one request (Connection: close) and reads the whole answer.
 * headers: NULL-terminated "Name: value" strings, or NULL. Returns 0, or -1
 * when the connection failed (resp->status is then 0).
 */
int th_http(int port, const char *method, const char *path, const char *const *headers, const char *body,
            size_t body_len, th_resp_t *resp);
/*
 * Makes this thread's later requests come from a local IPv4 address such as
 * "127.0.0.2" (anything in 127.0.0.0/8 works on loopback), so a test can
 * act as several clients; NULL goes back to the default.
 */
void th_set_source(const char *addr);
/* A response header's value (case-insensitive name) copied into buf; NULL if absent. */
const char *th_header(const th_resp_t *r, const char *name, char *buf, size_t len);
void th_resp_free(th_resp_t *r);
/* Sends raw bytes and returns what came back before the server closed (malloc'ed). */
char *th_raw(int port, const char *bytes, size_t len);

/* Creates (or re-creates) database clientele_test_<name> from the migrated template; returns its URL (static). */
const char *th_db_create(const char *name);
/*
 * The URL a service logs in with: db_url (a suite database's URL as
 * th_db_create() gives it, which logs in as the owner) for `role`
 * (clientele_api or clientele_worker) with the password scripts/test.sh gave
 * those roles (CLIENTELE_TEST_DB_PASSWORD), written into buf. Returns buf,
 * or db_url itself when that variable is unset or db_url is another
 * server's (PgBouncer's): the owner's sessions then SET ROLE to the role.
 */
const char *th_db_url_as(const char *db_url, const char *role, char *buf, size_t len);
/* The Redis URL for a suite's database number. */
const char *th_redis_url(int db);
/* Runs scripts/stack.sh with one command ("redis-stop", "pg-restart", ...); returns its exit status. */
int th_stack(const char *cmd);
/* The Redis server's pid (from its pid file), or -1. */
pid_t th_redis_pid(void);

/*
 * Starts build/.../clientele-api on a free port with the given extra
 * environment ("NAME=value", NULL-terminated) on top of the suite's
 * database and Redis URLs and a file store of the database's own
 * ($STACK_DIR/storage/<database>), and waits until /healthz answers. Aborts the
 * test run if it does not start within 20 seconds.
 */
void th_api_start(th_api_t *api, const char *db_url, const char *redis_url, const char *const *env);
/* Sends sig and waits up to timeout_s for exit; returns the exit status, 128+signal, or -1 on timeout (then kills). */
int th_api_stop(th_api_t *api, int sig, int timeout_s);
/* Runs the API binary with env and args to completion; returns its exit status, stderr copied to err. */
int th_api_run(const char *const *env, const char *arg, char *err, size_t errlen);
/* A free TCP port on 127.0.0.1. */
int th_free_port(void);
/* Milliseconds since an arbitrary point. */
long long th_now_ms(void);

#endif

/* --- identities ------------------------------------------------------------ */

/* Runs `clientele-api user-add` against db_url; returns the new user's id (aborts the run on failure). */
long long th_user_add(const char *db_url, const char *email, const char *name, const char *role, const char *team,
                      const char *password);
/* Runs one SQL command (test set-up only) against db_url; returns 0, or -1 with the error printed. */
int th_sql(const char *db_url, const char *sql);
/* Runs a query and copies the first column of the first row into out; returns 0 when there was a row. */
int th_sql_value(const char *db_url, const char *sql, char *out, size_t outlen);
/*
 * Logs in with POST /v1/auth/token. Copies the access token into access (at
 * least 2048 bytes) and the refresh token into refresh (may be NULL);
 * returns the HTTP status.
 */
int th_login(int port, const char *email, const char *password, char *access, char *refresh);
/* "Authorization: Bearer <token>" in buf, for a headers array. */
const char *th_bearer(const char *token, char *buf, size_t len);
