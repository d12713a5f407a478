/*
 * tests/integration/core_test.c - the API core against real PostgreSQL and
 * Redis: routing errors, problem bodies, request ids, CORS, readiness while
 * dependencies go away and come back, graceful shutdown, configuration
 * errors.
 *
 * One API process serves each TCase (an unchecked fixture in the parent);
 * Check forks each test, which talks to it over HTTP. TCases that stop
 * Redis or PostgreSQL restore them before they end.
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <check.h>

#include "tests/support/harness.h"

#define REDIS_DB 1

static th_api_t api;
static const char *db_url;

static const char *const api_env[] = {
    "CLIENTELE_THREADS=2",
    "CLIENTELE_BODY_LIMIT=16KiB",
    "CLIENTELE_BULK_BODY_LIMIT=64KiB",
    "CLIENTELE_REDIS_TIMEOUT=1s",
    "CLIENTELE_DB_TIMEOUT=2s",
    "CLIENTELE_CORS_ORIGINS=https://app.example.com",
    "CLIENTELE_SHUTDOWN_TIMEOUT=8s",
    "CLIENTELE_JWT_SECRET=core-test-secret-0123456789abcdefghij",
    NULL,
};

static void start_api(void)
{
    th_api_start(&api, db_url, th_redis_url(REDIS_DB), api_env);
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

static void assert_problem(th_resp_t *r, int status, const char *type)
{
    char buf[128];
    ck_assert_int_eq(r->status, status);
    ck_assert_ptr_nonnull(th_header(r, "content-type", buf, sizeof(buf)));
    ck_assert_str_eq(buf, "application/problem+json");
    ck_assert_ptr_nonnull(r->json);
    ck_assert_str_eq(json_string_value(json_object_get(r->json, "type")), type);
    ck_assert_int_eq(json_integer_value(json_object_get(r->json, "status")), status);
    ck_assert_ptr_nonnull(json_string_value(json_object_get(r->json, "title")));
}

/* --- routing and problems ------------------------------------------------ */

START_TEST(unknown_path_is_404_problem)
{
    th_resp_t r;
    ck_assert_int_eq(th_http(api.port, "GET", "/no/such/thing?x=1", NULL, NULL, 0, &r), 0);
    assert_problem(&r, 404, "/problems/not-found");
    ck_assert_str_eq(json_string_value(json_object_get(r.json, "instance")), "/no/such/thing");
    th_resp_free(&r);
}
END_TEST

START_TEST(wrong_method_is_405_with_allow)
{
    th_resp_t r;
    char allow[64];
    ck_assert_int_eq(th_http(api.port, "DELETE", "/readyz", NULL, NULL, 0, &r), 0);
    assert_problem(&r, 405, "/problems/method-not-allowed");
    ck_assert_ptr_nonnull(th_header(&r, "allow", allow, sizeof(allow)));
    ck_assert_str_eq(allow, "GET, HEAD, OPTIONS");
    th_resp_free(&r);
}
END_TEST

START_TEST(head_answers_like_get_without_body)
{
    th_resp_t r;
    char len[16];
    ck_assert_int_eq(th_http(api.port, "HEAD", "/healthz", NULL, NULL, 0, &r), 0);
    ck_assert_int_eq(r.status, 200);
    ck_assert_uint_eq(r.body_len, 0);
    ck_assert_ptr_nonnull(th_header(&r, "content-length", len, sizeof(len)));
    ck_assert_str_eq(len, "15");
    th_resp_free(&r);
}
END_TEST

START_TEST(oversized_body_is_413_problem_before_reading_it)
{
    /* Declares 100 MB but sends 3 bytes: the answer must come without the rest. */
    const char req[] = "POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                       "Content-Length: 100000000\r\n\r\n{\"a";
    char *out = th_raw(api.port, req, sizeof(req) - 1);
    ck_assert_ptr_nonnull(out);
    ck_assert_msg(strncmp(out, "HTTP/1.1 413", 12) == 0, "got: %.80s", out);
    ck_assert_ptr_nonnull(strstr(out, "application/problem+json"));
    ck_assert_ptr_nonnull(strstr(out, "\"type\":\"/problems/payload-too-large\""));
    ck_assert_ptr_nonnull(strcasestr(out, "x-request-id:"));
    free(out);
}
END_TEST

START_TEST(malformed_requests_never_crash_the_server)
{
    static const char *const junk[] = {
        "GARBAGE\r\n\r\n",
        "GET /%%%%%00 HTTP/1.1\r\nHost: x\r\n\r\n",
        "GET /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        "GET /v1/../../etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n",
        "POST /readyz HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof(junk) / sizeof(junk[0]); i++) {
        char *out = th_raw(api.port, junk[i], strlen(junk[i]));
        if (out != NULL && strncmp(out, "HTTP/1.1 5", 10) == 0)
            ck_abort_msg("request %zu got a 5xx: %.80s", i, out);
        free(out);
    }
    th_resp_t r;
    ck_assert_int_eq(th_http(api.port, "GET", "/healthz", NULL, NULL, 0, &r), 0);
    ck_assert_int_eq(r.status, 200);
    th_resp_free(&r);
}
END_TEST

/* --- request ids --------------------------------------------------------- */

START_TEST(request_id_is_echoed_when_sane)
{
    th_resp_t r;
    char id[80];
    const char *h[] = {"X-Request-Id: client-abc.123:9", NULL};
    ck_assert_int_eq(th_http(api.port, "GET", "/healthz", h, NULL, 0, &r), 0);
    ck_assert_ptr_nonnull(th_header(&r, "x-request-id", id, sizeof(id)));
    ck_assert_str_eq(id, "client-abc.123:9");
    th_resp_free(&r);
}
END_TEST

START_TEST(request_id_is_replaced_when_not_sane)
{
    th_resp_t r;
    char id[80];
    const char *h[] = {"X-Request-Id: has spaces<script>", NULL};
    ck_assert_int_eq(th_http(api.port, "GET", "/nope", h, NULL, 0, &r), 0);
    ck_assert_ptr_nonnull(th_header(&r, "x-request-id", id, sizeof(id)));
    ck_assert_uint_eq(strlen(id), 32);
    ck_assert_ptr_null(strchr(id, ' '));
    /* The problem body carries the same id, so a client can quote it. */
    ck_assert_str_eq(json_string_value(json_object_get(r.json, "request_id")), id);
    th_resp_free(&r);

    const char *h2[] = {"X-Request-Id: "
                        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
                        NULL};
    ck_assert_int_eq(th_http(api.port, "GET", "/healthz", h2, NULL, 0, &r), 0);
    ck_assert_ptr_nonnull(th_header(&r, "x-request-id", id, sizeof(id)));
    ck_assert_uint_eq(strlen(id), 32);
    th_resp_free(&r);
}
END_TEST

/* --- CORS ---------------------------------------------------------------- */

START_TEST(cors_preflight_for_configured_origin)
{
    th_resp_t r;
    char v[128];
    const char *h[] = {"Origin: https://app.example.com", "Access-Control-Request-Method: GET", NULL};
    ck_assert_int_eq(th_http(api.port, "OPTIONS", "/readyz", h, NULL, 0, &r), 0);
    ck_assert_int_eq(r.status, 204);
    ck_assert_str_eq(th_header(&r, "access-control-allow-origin", v, sizeof(v)), "https://app.example.com");
    ck_assert_ptr_nonnull(th_header(&r, "access-control-allow-methods", v, sizeof(v)));
    ck_assert_ptr_nonnull(strstr(v, "GET"));
    ck_assert_ptr_nonnull(th_header(&r, "access-control-allow-headers", v, sizeof(v)));
    ck_assert_ptr_nonnull(strstr(v, "Authorization"));
    th_resp_free(&r);
}
END_TEST

START_TEST(cors_ignores_other_origins)
{
    th_resp_t r;
    char v[128];
    const char *h[] = {"Origin: https://evil.example.net", "Access-Control-Request-Method: GET", NULL};
    ck_assert_int_eq(th_http(api.port, "OPTIONS", "/readyz", h, NULL, 0, &r), 0);
    ck_assert_int_eq(r.status, 204);
    ck_assert_ptr_null(th_header(&r, "access-control-allow-origin", v, sizeof(v)));
    th_resp_free(&r);
    const char *h2[] = {"Origin: https://app.example.com", NULL};
    ck_assert_int_eq(th_http(api.port, "GET", "/healthz", h2, NULL, 0, &r), 0);
    ck_assert_str_eq(th_header(&r, "access-control-allow-origin", v, sizeof(v)), "https://app.example.com");
    th_resp_free(&r);
}
END_TEST

/* --- documents and metrics ----------------------------------------------- */

START_TEST(openapi_is_served_as_yaml_and_json)
{
    th_resp_t r;
    ck_assert_int_eq(th_http(api.port, "GET", "/openapi.json", NULL, NULL, 0, &r), 0);
    ck_assert_int_eq(r.status, 200);
    ck_assert_ptr_nonnull(r.json);
    ck_assert_ptr_nonnull(json_object_get(json_object_get(r.json, "paths"), "/readyz"));
    th_resp_free(&r);
    ck_assert_int_eq(th_http(api.port, "GET", "/openapi.yaml", NULL, NULL, 0, &r), 0);
    ck_assert_int_eq(r.status, 200);
    ck_assert_ptr_nonnull(strstr(r.body, "openapi: 3.1"));
    th_resp_free(&r);
}
END_TEST

START_TEST(metrics_count_requests_by_route_and_status)
{
    th_resp_t r;
    for (int i = 0; i < 3; i++) {
        th_http(api.port, "GET", "/healthz", NULL, NULL, 0, &r);
        th_resp_free(&r);
    }
    ck_assert_int_eq(th_http(api.port, "GET", "/metrics", NULL, NULL, 0, &r), 0);
    ck_assert_int_eq(r.status, 200);
    const char *line = strstr(r.body, "clientele_http_requests_total{method=\"GET\",route=\"/healthz\",status=\"200\"} ");
    ck_assert_ptr_nonnull(line);
    ck_assert_int_ge(atoi(strchr(line, '}') + 2), 3);
    ck_assert_ptr_nonnull(strstr(r.body, "clientele_http_request_duration_seconds_bucket{method=\"GET\",route=\"/healthz\""));
    ck_assert_ptr_nonnull(strstr(r.body, "clientele_db_connections{state=\"open\"}"));
    ck_assert_ptr_nonnull(strstr(r.body, "clientele_db_waiting_requests"));
    ck_assert_ptr_nonnull(strstr(r.body, "clientele_redis_connected 1"));
    th_resp_free(&r);
}
END_TEST

/* --- dependencies going away --------------------------------------------- */

static int wait_ready(int want_status, int timeout_ms, th_resp_t *last)
{
    long long until = th_now_ms() + timeout_ms;
    while (th_now_ms() < until) {
        th_resp_free(last);
        if (th_http(api.port, "GET", "/readyz", NULL, NULL, 0, last) == 0 && last->status == want_status)
            return 1;
        usleep(100 * 1000);
    }
    return 0;
}

START_TEST(readyz_follows_redis_down_and_back)
{
    th_resp_t r = {0};
    ck_assert(wait_ready(200, 5000, &r));
    ck_assert_int_eq(th_stack("redis-stop"), 0);
    int down = wait_ready(503, 5000, &r);
    if (down) {
        char ra[16];
        assert_problem(&r, 503, "/problems/unavailable");
        json_t *checks = json_object_get(r.json, "checks");
        ck_assert_str_eq(json_string_value(json_object_get(checks, "redis")), "down");
        ck_assert_str_eq(json_string_value(json_object_get(checks, "postgres")), "up");
        ck_assert_ptr_nonnull(strstr(json_string_value(json_object_get(r.json, "detail")), "Redis"));
        ck_assert_ptr_nonnull(th_header(&r, "retry-after", ra, sizeof(ra)));
    }
    ck_assert_int_eq(th_stack("redis-start"), 0);
    ck_assert_msg(down, "readyz did not turn 503 with Redis stopped");
    ck_assert_msg(wait_ready(200, 10000, &r), "readyz did not recover after Redis came back");
    th_resp_free(&r);
}
END_TEST

START_TEST(postgres_restart_during_traffic_recovers_unaided)
{
    th_resp_t r = {0};
    ck_assert(wait_ready(200, 5000, &r));
    pid_t child = fork();
    if (child == 0)
        _exit(th_stack("pg-restart"));
    /* Keep requests flowing through the restart: none may be a 500 or hang. */
    int n = 0, errors = 0;
    long long until = th_now_ms() + 3000;
    while (th_now_ms() < until) {
        th_resp_free(&r);
        if (th_http(api.port, "GET", "/readyz", NULL, NULL, 0, &r) != 0)
            errors++;
        else
            ck_assert_msg(r.status == 200 || r.status == 503 || r.status == 504, "status %d during restart", r.status);
        n++;
    }
    int st;
    waitpid(child, &st, 0);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "pg-restart failed");
    ck_assert_int_eq(errors, 0);
    ck_assert_int_gt(n, 5);
    ck_assert_msg(wait_ready(200, 15000, &r), "readyz did not recover after the PostgreSQL restart");
    /* Ready means every loop has reconnected, so the requests after it never meet a loop still waiting. */
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(r.json, "checks"), "loops")), "up");
    for (int i = 0; i < 20; i++) {
        th_resp_free(&r);
        ck_assert_int_eq(th_http(api.port, "GET", "/readyz", NULL, NULL, 0, &r), 0);
        ck_assert_int_eq(r.status, 200);
    }
    th_resp_free(&r);
}
END_TEST

/* --- shutdown and configuration ------------------------------------------ */

typedef struct {
    int port;
    th_resp_t resp;
    int rc;
} slow_call_t;

static void *slow_readyz(void *p)
{
    slow_call_t *c = p;
    c->rc = th_http(c->port, "GET", "/readyz", NULL, NULL, 0, &c->resp);
    return NULL;
}

START_TEST(sigterm_lets_an_inflight_request_finish)
{
    th_api_t own;
    th_api_start(&own, db_url, th_redis_url(REDIS_DB), api_env);
    pid_t redis = th_redis_pid();
    ck_assert_int_gt(redis, 0);
    /* A paused Redis makes /readyz wait for its 1 s command timeout: a request in flight. */
    kill(redis, SIGSTOP);
    slow_call_t call = {.port = own.port};
    pthread_t t;
    pthread_create(&t, NULL, slow_readyz, &call);
    usleep(300 * 1000);
    long long t0 = th_now_ms();
    int st = th_api_stop(&own, SIGTERM, 15);
    long long took = th_now_ms() - t0;
    kill(redis, SIGCONT);
    pthread_join(t, NULL);
    ck_assert_int_eq(st, 0);
    ck_assert_int_eq(call.rc, 0);
    ck_assert_int_eq(call.resp.status, 503); /* Redis timed out, but the answer was delivered */
    ck_assert_int_lt(took, 8000);
    th_resp_free(&call.resp);
    /* The port is closed afterwards. */
    th_resp_t r;
    ck_assert_int_ne(th_http(own.port, "GET", "/healthz", NULL, NULL, 0, &r), 0);
}
END_TEST

START_TEST(bad_configuration_exits_2_naming_the_variable)
{
    static const struct {
        const char *env;
        const char *name;
    } cases[] = {
        {"CLIENTELE_THREADS=zero", "CLIENTELE_THREADS"},
        {"CLIENTELE_LISTEN=nowhere", "CLIENTELE_LISTEN"},
        {"CLIENTELE_DB_POOL=0", "CLIENTELE_DB_POOL"},
        {"CLIENTELE_JWT_SECRET=short", "CLIENTELE_JWT_SECRET"},
        {"CLIENTELE_REDIS_URL=http://x", "CLIENTELE_REDIS_URL"},
        {"CLIENTELE_BODY_LIMIT=lots", "CLIENTELE_BODY_LIMIT"},
        {"CLIENTELE_JWT_SECRET=", "CLIENTELE_JWT_SECRET"}, /* the API cannot sign tokens without one */
        {"CLIENTELE_JWT_ALG=none", "CLIENTELE_JWT_ALG"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *env[] = {cases[i].env, NULL};
        char err[512];
        int st = th_api_run(env, NULL, err, sizeof(err));
        ck_assert_msg(st == 2, "%s: exit %d", cases[i].env, st);
        ck_assert_msg(strstr(err, cases[i].name) != NULL, "%s: stderr %s", cases[i].env, err);
        ck_assert_msg(strchr(err, '\n') == err + strlen(err) - 1, "%s: not one line: %s", cases[i].env, err);
    }
}
END_TEST

START_TEST(migrate_is_idempotent)
{
    char url[300], err[2048];
    snprintf(url, sizeof(url), "CLIENTELE_DATABASE_URL=%s", db_url);
    const char *env[] = {url, NULL};
    ck_assert_int_eq(th_api_run(env, "migrate", err, sizeof(err)), 0);
    ck_assert_int_eq(th_api_run(env, "migrate", err, sizeof(err)), 0);
    ck_assert_ptr_nonnull(strstr(err, "0 applied now"));
}
END_TEST

START_TEST(https_with_http2)
{
    char cmd[1024], cert[256], key[256];
    const char *dir = getenv("STACK_DIR") != NULL ? getenv("STACK_DIR") : ".test";
    snprintf(cert, sizeof(cert), "%s/tls-cert.pem", dir);
    snprintf(key, sizeof(key), "%s/tls-key.pem", dir);
    snprintf(cmd, sizeof(cmd),
             "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1 -keyout %s -out %s 2>/dev/null",
             key, cert);
    ck_assert_int_eq(system(cmd), 0);
    char certenv[300], keyenv[300];
    snprintf(certenv, sizeof(certenv), "CLIENTELE_TLS_CERT=%s", cert);
    snprintf(keyenv, sizeof(keyenv), "CLIENTELE_TLS_KEY=%s", key);
    const char *env[] = {"CLIENTELE_JWT_SECRET=core-test-secret-0123456789abcdefghij", certenv, keyenv, NULL};
    th_api_t own;
    th_api_start(&own, db_url, th_redis_url(REDIS_DB), env);
    snprintf(cmd, sizeof(cmd),
             "curl -sk --http2 -o /dev/null -w '%%{http_version} %%{http_code}' https://127.0.0.1:%d/readyz", own.port);
    FILE *f = popen(cmd, "r");
    char out[64] = {0};
    ck_assert_ptr_nonnull(fgets(out, sizeof(out), f));
    pclose(f);
    ck_assert_str_eq(out, "2 200");
    /* HTTP/2 streams reset mid-request must not hurt the server (the request guard). */
    snprintf(cmd, sizeof(cmd),
             "for i in 1 2 3 4 5; do curl -sk --http2 --max-time 0.001 https://127.0.0.1:%d/readyz >/dev/null 2>&1; done; "
             "curl -sk --http2 -o /dev/null -w '%%{http_code}' https://127.0.0.1:%d/healthz",
             own.port, own.port);
    f = popen(cmd, "r");
    memset(out, 0, sizeof(out));
    ck_assert_ptr_nonnull(fgets(out, sizeof(out), f));
    pclose(f);
    ck_assert_str_eq(out, "200");
    ck_assert_int_eq(th_api_stop(&own, SIGTERM, 15), 0);
}
END_TEST

static Suite *core_suite(void)
{
    Suite *s = suite_create("core");
    TCase *tc = tcase_create("routing");
    tcase_add_unchecked_fixture(tc, start_api, stop_api);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, unknown_path_is_404_problem);
    tcase_add_test(tc, wrong_method_is_405_with_allow);
    tcase_add_test(tc, head_answers_like_get_without_body);
    tcase_add_test(tc, oversized_body_is_413_problem_before_reading_it);
    tcase_add_test(tc, malformed_requests_never_crash_the_server);
    tcase_add_test(tc, request_id_is_echoed_when_sane);
    tcase_add_test(tc, request_id_is_replaced_when_not_sane);
    tcase_add_test(tc, cors_preflight_for_configured_origin);
    tcase_add_test(tc, cors_ignores_other_origins);
    tcase_add_test(tc, openapi_is_served_as_yaml_and_json);
    tcase_add_test(tc, metrics_count_requests_by_route_and_status);
    suite_add_tcase(s, tc);

    tc = tcase_create("dependencies");
    tcase_add_unchecked_fixture(tc, start_api, stop_api);
    tcase_set_timeout(tc, 90);
    tcase_add_test(tc, readyz_follows_redis_down_and_back);
    tcase_add_test(tc, postgres_restart_during_traffic_recovers_unaided);
    suite_add_tcase(s, tc);

    tc = tcase_create("process");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, sigterm_lets_an_inflight_request_finish);
    tcase_add_test(tc, bad_configuration_exits_2_naming_the_variable);
    tcase_add_test(tc, migrate_is_idempotent);
    tcase_add_test(tc, https_with_http2);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    db_url = th_db_create("core");
    SRunner *sr = srunner_create(core_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
