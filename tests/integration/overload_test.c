/*
 * tests/integration/overload_test.c - the API under database overload, and
 * clients that leave while their query runs.
 *
 * The API runs with one loop thread, one database connection and a queue
 * of one, so a single slow statement saturates it. Statements are made
 * slow by a side connection holding an ACCESS EXCLUSIVE lock on customers.
 * What a client must see: a full queue or a long wait for a connection is
 * 503 with Retry-After (retry later), a statement running too long is 504;
 * and afterwards the pool still has its connection, the same backend (so
 * its prepared statements), and answers normally. A client that resets its
 * HTTP/2 stream or closes its connection while its query runs must not
 * crash the API (the suite runs under ASan) nor cost the pool anything.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <check.h>
#include <libpq-fe.h>

#include "tests/support/harness.h"

#define REDIS_DB 13
#define PASSWORD "overload-suite-password"

static th_api_t api;
static const char *db_url;
static char token[2048];
static char auth[2200];
static long long customer_id;
static char customer_path[64];

static const char *const api_env[] = {
    "CLIENTELE_THREADS=1",
    "CLIENTELE_DB_POOL=1",
    "CLIENTELE_DB_QUEUE=1",
    "CLIENTELE_DB_QUEUE_TIMEOUT=300ms",
    "CLIENTELE_DB_TIMEOUT=1s",
    "CLIENTELE_JWT_SECRET=overload-suite-secret-0123456789abcdefgh",
    NULL,
};

static void start_api(void)
{
    th_api_start(&api, db_url, th_redis_url(REDIS_DB), api_env);
    if (th_login(api.port, "admin@overload.test", PASSWORD, token, NULL) != 200) {
        fprintf(stderr, "overload_test: login failed\n");
        exit(1);
    }
    th_bearer(token, auth, sizeof(auth));
}

static void stop_api(void)
{
    if (api.pid > 0) {
        int st = th_api_stop(&api, SIGTERM, 15);
        if (st != 0) {
            fprintf(stderr, "clientele-api exited with %d (sanitizer report?); see %s\n", st, api.log_path);
            exit(1);
        }
    }
}

/* --- helpers ------------------------------------------------------------- */

static PGconn *lock_customers(void)
{
    PGconn *c = PQconnectdb(db_url);
    ck_assert_int_eq(PQstatus(c), CONNECTION_OK);
    PGresult *r = PQexec(c, "BEGIN; LOCK TABLE customers IN ACCESS EXCLUSIVE MODE");
    ck_assert_int_eq(PQresultStatus(r), PGRES_COMMAND_OK);
    PQclear(r);
    return c;
}

static void unlock_customers(PGconn *c)
{
    PGresult *r = PQexec(c, "ROLLBACK");
    PQclear(r);
    PQfinish(c);
}

/* A metric's value from /metrics (the first line starting with name followed by a space). */
static long long metric(const char *name)
{
    th_resp_t r;
    ck_assert_int_eq(th_http(api.port, "GET", "/metrics", NULL, NULL, 0, &r), 0);
    ck_assert_int_eq(r.status, 200);
    char want[128];
    snprintf(want, sizeof(want), "\n%s ", name);
    const char *p = strstr(r.body, want);
    ck_assert_msg(p != NULL, "no metric %s", name);
    long long v = atoll(p + strlen(want));
    th_resp_free(&r);
    return v;
}

/* The API's database backends, as PostgreSQL sees them. */
static void backends(char *out, size_t len)
{
    ck_assert_int_eq(th_sql_value(db_url,
                                  "SELECT coalesce(string_agg(pid::text, ',' ORDER BY pid), '') FROM pg_stat_activity "
                                  "WHERE application_name = 'clientele-api'",
                                  out, len),
                     0);
}

typedef struct {
    th_resp_t resp;
    long long ms;
} call_t;

static void *get_customer(void *p)
{
    call_t *c = p;
    const char *h[] = {auth, NULL};
    long long t0 = th_now_ms();
    th_http(api.port, "GET", customer_path, h, NULL, 0, &c->resp);
    c->ms = th_now_ms() - t0;
    return NULL;
}

static void expect_problem(th_resp_t *r, int status, const char *type)
{
    ck_assert_int_eq(r->status, status);
    ck_assert_ptr_nonnull(r->json);
    ck_assert_str_eq(json_string_value(json_object_get(r->json, "type")), type);
}

static void expect_customer_ok(void)
{
    call_t c = {0};
    get_customer(&c);
    ck_assert_int_eq(c.resp.status, 200);
    th_resp_free(&c.resp);
}

/* --- overload ------------------------------------------------------------ */

START_TEST(full_queue_503_slow_statement_504_and_the_pool_survives)
{
    expect_customer_ok();
    char before[256], after[256], ra[16];
    backends(before, sizeof(before));
    ck_assert_str_ne(before, "");
    long long connects = metric("clientele_db_connects_total");

    PGconn *lock = lock_customers();
    call_t a = {0}, b = {0}, c = {0};
    pthread_t ta, tb;
    pthread_create(&ta, NULL, get_customer, &a); /* runs, waits for the lock: statement_timeout */
    usleep(150 * 1000);
    pthread_create(&tb, NULL, get_customer, &b); /* queued behind it: queue timeout */
    usleep(80 * 1000);
    get_customer(&c); /* the queue (of one) is full: refused at once */
    pthread_join(tb, NULL);
    pthread_join(ta, NULL);
    unlock_customers(lock);

    expect_problem(&c.resp, 503, "/problems/unavailable");
    ck_assert_ptr_nonnull(th_header(&c.resp, "retry-after", ra, sizeof(ra)));
    ck_assert_int_lt(c.ms, 250);
    expect_problem(&b.resp, 503, "/problems/unavailable");
    ck_assert_ptr_nonnull(th_header(&b.resp, "retry-after", ra, sizeof(ra)));
    ck_assert_int_lt(b.ms, 900);
    expect_problem(&a.resp, 504, "/problems/timeout");
    th_resp_free(&a.resp);
    th_resp_free(&b.resp);
    th_resp_free(&c.resp);

    /* Afterwards: the same connection to the same backend (its prepared statements with it), answering. */
    expect_customer_ok();
    backends(after, sizeof(after));
    ck_assert_str_eq(after, before);
    ck_assert_int_eq(metric("clientele_db_connects_total"), connects);
    ck_assert_int_eq(metric("clientele_db_connections{state=\"open\"}"), 1);
    ck_assert_int_ge(metric("clientele_db_queue_timeouts_total"), 1);
    ck_assert_int_ge(metric("clientele_db_statement_timeouts_total"), 1);
    ck_assert_int_ge(metric("clientele_db_queries_rejected_total"), 1);
}
END_TEST

/* --- clients that leave -------------------------------------------------- */

static int connect_api(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)api.port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    return fd;
}

static size_t frame(unsigned char *out, unsigned type, unsigned flags, unsigned stream, const void *payload, size_t len)
{
    out[0] = (unsigned char)(len >> 16), out[1] = (unsigned char)(len >> 8), out[2] = (unsigned char)len;
    out[3] = (unsigned char)type, out[4] = (unsigned char)flags;
    out[5] = (unsigned char)(stream >> 24), out[6] = (unsigned char)(stream >> 16);
    out[7] = (unsigned char)(stream >> 8), out[8] = (unsigned char)stream;
    if (len > 0)
        memcpy(out + 9, payload, len);
    return 9 + len;
}

/* An HPACK string literal (no Huffman) with a 7-bit prefixed length. */
static size_t hpack_str(unsigned char *out, const char *s)
{
    size_t len = strlen(s), n = 0;
    if (len < 127) {
        out[n++] = (unsigned char)len;
    } else {
        out[n++] = 127;
        size_t v = len - 127;
        while (v >= 128) {
            out[n++] = (unsigned char)(v % 128 + 128);
            v /= 128;
        }
        out[n++] = (unsigned char)v;
    }
    memcpy(out + n, s, len);
    return n + len;
}

/* HEADERS for GET path (with the bearer token when with_auth), END_STREAM. */
static size_t h2_get(unsigned char *out, unsigned stream, const char *path, int with_auth)
{
    unsigned char block[4096];
    size_t n = 0;
    block[n++] = 0x82; /* :method GET */
    block[n++] = 0x86; /* :scheme http */
    block[n++] = 0x04; /* :path, literal without indexing */
    n += hpack_str(block + n, path);
    block[n++] = 0x01; /* :authority */
    n += hpack_str(block + n, "127.0.0.1");
    if (with_auth) {
        block[n++] = 0x0f, block[n++] = 0x08; /* authorization (static index 23) */
        n += hpack_str(block + n, strchr(auth, ' ') + 1);
    }
    return frame(out, 1, 0x5, stream, block, n);
}

static void write_all(int fd, const void *p, size_t len)
{
    ck_assert_int_eq(write(fd, p, len), (ssize_t)len);
}

/* Reads frames until a HEADERS frame on stream; returns the first byte of its header block, or -1. */
static int h2_wait_headers(int fd, unsigned stream)
{
    unsigned char hdr[9], payload[16384];
    for (;;) {
        size_t got = 0;
        while (got < 9) {
            ssize_t r = read(fd, hdr + got, 9 - got);
            if (r <= 0)
                return -1;
            got += (size_t)r;
        }
        size_t len = (size_t)hdr[0] << 16 | (size_t)hdr[1] << 8 | hdr[2];
        unsigned sid = ((unsigned)hdr[5] & 0x7f) << 24 | (unsigned)hdr[6] << 16 | (unsigned)hdr[7] << 8 | hdr[8];
        if (len > sizeof(payload))
            return -1;
        for (got = 0; got < len;) {
            ssize_t r = read(fd, payload + got, len - got);
            if (r <= 0)
                return -1;
            got += (size_t)r;
        }
        if (hdr[3] == 1 && sid == stream)
            return len > 0 ? payload[0] : -1;
    }
}

START_TEST(http2_stream_reset_while_the_query_runs)
{
    PGconn *lock = lock_customers();
    int fd = connect_api();
    unsigned char buf[8192];
    size_t n = 0;
    memcpy(buf, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 24);
    n = 24;
    n += frame(buf + n, 4, 0, 0, NULL, 0); /* SETTINGS */
    n += h2_get(buf + n, 1, customer_path, 1);
    write_all(fd, buf, n);
    usleep(200 * 1000);                   /* the query is waiting for the lock now */
    unsigned char code[4] = {0, 0, 0, 8}; /* CANCEL */
    n = frame(buf, 3, 0, 1, code, 4);     /* RST_STREAM */
    write_all(fd, buf, n);
    usleep(100 * 1000);
    unlock_customers(lock); /* the query completes for a request that is gone */
    /* The same connection still serves another stream; h2o encodes :status 200 as static index 8. */
    n = h2_get(buf, 3, "/healthz", 0);
    write_all(fd, buf, n);
    ck_assert_int_eq(h2_wait_headers(fd, 3), 0x88);
    close(fd);
    expect_customer_ok();
    ck_assert_int_eq(metric("clientele_db_connections{state=\"open\"}"), 1);
}
END_TEST

START_TEST(http2_connection_closed_while_the_query_runs)
{
    PGconn *lock = lock_customers();
    char cmd[3000];
    snprintf(cmd, sizeof(cmd),
             "curl -s -o /dev/null --http2-prior-knowledge --max-time 0.3 -H '%s' http://127.0.0.1:%d%s", auth,
             api.port, customer_path);
    int rc = system(cmd);
    ck_assert_msg(WEXITSTATUS(rc) == 28, "curl did not time out (exit %d)", WEXITSTATUS(rc));
    usleep(100 * 1000);
    unlock_customers(lock);
    expect_customer_ok();
    ck_assert_int_eq(metric("clientele_db_connections{state=\"open\"}"), 1);
}
END_TEST

START_TEST(http1_connection_closed_while_the_query_runs)
{
    PGconn *lock = lock_customers();
    int fd = connect_api();
    char req[2600];
    int n = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: x\r\n%s\r\n\r\n", customer_path, auth);
    write_all(fd, req, (size_t)n);
    usleep(200 * 1000);
    close(fd);
    usleep(100 * 1000);
    unlock_customers(lock);
    usleep(200 * 1000);
    expect_customer_ok();
    ck_assert_int_eq(metric("clientele_db_connections{state=\"open\"}"), 1);
}
END_TEST

static Suite *overload_suite(void)
{
    Suite *s = suite_create("overload");
    TCase *tc = tcase_create("overload");
    tcase_add_unchecked_fixture(tc, start_api, stop_api);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, full_queue_503_slow_statement_504_and_the_pool_survives);
    suite_add_tcase(s, tc);

    tc = tcase_create("client_gone");
    tcase_add_unchecked_fixture(tc, start_api, stop_api);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, http2_stream_reset_while_the_query_runs);
    tcase_add_test(tc, http2_connection_closed_while_the_query_runs);
    tcase_add_test(tc, http1_connection_closed_while_the_query_runs);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    db_url = th_db_create("overload");
    char id[32];
    long long admin = th_user_add(db_url, "admin@overload.test", "Admin", "admin", NULL, PASSWORD);
    char sql[256];
    snprintf(sql, sizeof(sql),
             "INSERT INTO customers (kind, name, owner_id) VALUES ('person', 'Slow Sam', %lld) RETURNING id", admin);
    if (th_sql_value(db_url, sql, id, sizeof(id)) != 0) {
        fprintf(stderr, "overload_test: cannot create the customer\n");
        return 1;
    }
    customer_id = atoll(id);
    snprintf(customer_path, sizeof(customer_path), "/v1/customers/%lld", customer_id);

    SRunner *sr = srunner_create(overload_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
