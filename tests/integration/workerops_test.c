/*
 * tests/integration/workerops_test.c - operating the worker: its health and
 * metrics listener, and one request id (and W3C trace) followed from the
 * API's front door to the worker's log lines.
 *
 * main() is crew_main(): one API process, every role logged in once. Each
 * test starts the workers it needs (crew_start_worker(): a free port for
 * the listener, killed with the test). What is checked is what an operator
 * sees: HTTP answers of /healthz, /readyz and /metrics, the JSON log lines
 * of both processes (read back from their log files, parsed line by line),
 * the run's row and its stream entry. No timing is asserted: "the listener
 * is not blocked by a run" is shown by answers that come back while the
 * run is still running, held on a lock the test owns.
 */
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <check.h>

#include "tests/support/crew.h"

#define PASSWORD "workerops-suite-password"
#define TRACE_ID "4bf92f3577b34da6a3ce929d0e0e4736"
#define PARENT_ID "00f067aa0ba902b7"

static const char *const api_env[] = {
    "CLIENTELE_THREADS=2",
    "CLIENTELE_JWT_SECRET=workerops-suite-secret-0123456789abcdefgh",
    NULL,
};

static const crew_conf_t conf = {
    .name = "workerops",
    .redis_db = 14, /* shared with body_test, which runs no worker; every test here empties it first */
    .env = api_env,
    .password = PASSWORD,
    .domain = "workerops.test",
    .resource = "customers",
    .item = "record",
};

/* --- data and runs ------------------------------------------------------------- */

/* A few customers with orders, once per database (every test may be the first). */
static void seed(void)
{
    ck_assert_int_eq(th_sql(db_url,
                            "INSERT INTO customers (kind, name, owner_id)"
                            " SELECT 'person', 'Ops customer ' || g, (SELECT id FROM users ORDER BY id LIMIT 1)"
                            " FROM generate_series(1, 30) g WHERE NOT EXISTS (SELECT 1 FROM customers WHERE name LIKE "
                            "'Ops customer %');"
                            "INSERT INTO orders (customer_id, ordered_at, status, currency, total)"
                            " SELECT c.id, now() - (g * 11 % 400) * interval '1 day', 'completed', 'EUR', 10 + g % 7"
                            " FROM customers c, generate_series(1, 4) g WHERE c.name LIKE 'Ops customer %'"
                            " AND NOT EXISTS (SELECT 1 FROM orders o WHERE o.customer_id = c.id)"),
                     0);
}

/* POST /v1/analytics/runs as the analyst with extra headers; the new run's id. */
static long long start_run(const char *h1, const char *h2)
{
    th_resp_t *r = call_as(ANALYST, "POST", "/v1/analytics/runs", JSON_T, "{\"kind\":\"rfm\"}", h1, h2);
    expect_status(r, 202);
    return jint(r->json, "id");
}

static const char *run_status(long long id)
{
    th_resp_t *r = http_get(ANALYST, fmt("/v1/analytics/runs/%lld", id));
    expect_status(r, 200);
    return jstr(r->json, "status");
}

static void wait_run(long long id, const char *status, int timeout_ms)
{
    long long until = th_now_ms() + timeout_ms;
    const char *st;
    while (strcmp(st = run_status(id), status) != 0) {
        ck_assert_msg(th_now_ms() < until, "run %lld is %s after %d ms, expected %s", id, st, timeout_ms, status);
        usleep(50 * 1000);
    }
}

/* --- the worker's listener ------------------------------------------------------ */

static th_resp_t *worker_get(const th_api_t *w, const char *path)
{
    th_resp_t *r = keep(calloc(1, sizeof(*r)));
    if (th_http(w->port, "GET", path, NULL, NULL, 0, r) != 0)
        r->status = 0;
    return r;
}

/* The value of the sample line starting with `series` ("name{labels}" or "name") in a scrape; -1 when absent. */
static double sample(const char *text, const char *series)
{
    size_t n = strlen(series);
    for (const char *p = text; p != NULL && *p != '\0'; p = strchr(p, '\n'), p = p != NULL ? p + 1 : NULL)
        if (strncmp(p, series, n) == 0 && p[n] == ' ')
            return strtod(p + n + 1, NULL);
    return -1;
}

static double worker_sample(const th_api_t *w, const char *series)
{
    th_resp_t *r = worker_get(w, "/metrics");
    expect_status(r, 200);
    return sample(r->body, series);
}

/*
 * Waits until a series has the value: the job thread counts a run once
 * its results are committed, a moment after readers of the run see it
 * succeeded.
 */
static void wait_sample(const th_api_t *w, const char *series, double want)
{
    long long until = th_now_ms() + 10000;
    double got;
    while ((got = worker_sample(w, series)) != want) {
        ck_assert_msg(th_now_ms() < until, "%s is %g, expected %g", series, got, want);
        usleep(50 * 1000);
    }
}

/* --- log files -------------------------------------------------------------------- */

/*
 * The JSON lines of a log file whose string field `key` equals `value` and
 * whose "msg" contains msg_part (NULL: any), as a kept array.
 */
static json_t *log_lines(const char *path, const char *key, const char *value, const char *msg_part)
{
    json_t *found = keep(json_array());
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return found;
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, f) > 0) {
        json_t *o = json_loads(line, 0, NULL);
        if (o == NULL)
            continue;
        const char *v = json_string_value(json_object_get(o, key));
        const char *msg = json_string_value(json_object_get(o, "msg"));
        if (v != NULL && strcmp(v, value) == 0 && (msg_part == NULL || (msg != NULL && strstr(msg, msg_part))))
            json_array_append(found, o);
        json_decref(o);
    }
    free(line);
    fclose(f);
    return found;
}

/* Waits (the log writers are threads) until such a line exists; returns the lines. */
static json_t *wait_log(const char *path, const char *key, const char *value, const char *msg_part)
{
    long long until = th_now_ms() + 10000;
    json_t *lines;
    while (json_array_size(lines = log_lines(path, key, value, msg_part)) == 0) {
        ck_assert_msg(th_now_ms() < until, "no line of %s has %s = %s and a msg with \"%s\"", path, key, value,
                      msg_part != NULL ? msg_part : "");
        usleep(50 * 1000);
    }
    return lines;
}

/* The number of lines of a file containing needle. */
static int count_in_file(const char *path, const char *needle)
{
    FILE *f = fopen(path, "r");
    ck_assert_msg(f != NULL, "cannot read %s", path);
    char *line = NULL;
    size_t cap = 0;
    int n = 0;
    while (getline(&line, &cap, f) > 0)
        n += strstr(line, needle) != NULL;
    free(line);
    fclose(f);
    return n;
}

/* --- one id from HTTP to the worker ------------------------------------------------ */

START_TEST(a_request_id_and_trace_follow_a_run_into_the_worker)
{
    crew_flush_redis();
    seed();
    th_api_t w;
    crew_start_worker(&w, "w-trace", NULL);
    const char *rid = uniq("ops-trace");
    long long id = start_run(fmt("X-Request-Id: %s", rid), "traceparent: 00-" TRACE_ID "-" PARENT_ID "-01");
    wait_run(id, "succeeded", 60000);

    /* The API's access line names the request and its trace; the caller's span is there too. */
    json_t *api_lines = wait_log(api.log_path, "request_id", rid, "request");
    json_t *access = json_array_get(api_lines, 0);
    ck_assert_str_eq(jstr(access, "trace_id"), TRACE_ID);
    ck_assert_str_eq(jstr(access, "parent_id"), PARENT_ID);
    ck_assert_str_eq(jstr(access, "method"), "POST");
    ck_assert_int_eq(jint(access, "status"), 202);

    /* The run's row and its outbox message carry both ids. */
    char out[128];
    ck_assert_int_eq(th_sql_value(db_url,
                                  fmt("SELECT request_id || ' ' || trace_id FROM analytics_runs WHERE id = %lld", id),
                                  out, sizeof(out)),
                     0);
    ck_assert_str_eq(out, fmt("%s %s", rid, TRACE_ID));
    ck_assert_int_eq(
        th_sql_value(db_url, fmt("SELECT payload ->> 'request_id' FROM outbox WHERE payload ->> 'run_id' = '%lld'", id),
                     out, sizeof(out)),
        0);
    ck_assert_str_eq(out, rid);

    /* The stream entry the relay published names the request too. */
    FILE *p = popen(fmt("%s XRANGE clientele:runs - +", crew_redis_cli()), "r");
    ck_assert_ptr_nonnull(p);
    char buf[8192];
    size_t n = fread(buf, 1, sizeof(buf) - 1, p);
    buf[n] = '\0';
    pclose(p);
    ck_assert_msg(strstr(buf, rid) != NULL && strstr(buf, TRACE_ID) != NULL, "stream entries: %s", buf);

    /* The worker's lines about the run: claimed and succeeded, each with the request id and trace id. */
    json_t *claimed = wait_log(w.log_path, "request_id", rid, fmt("run %lld (rfm) claimed", id));
    ck_assert_str_eq(jstr(json_array_get(claimed, 0), "trace_id"), TRACE_ID);
    json_t *done = wait_log(w.log_path, "request_id", rid, fmt("run %lld succeeded", id));
    ck_assert_str_eq(jstr(json_array_get(done, 0), "trace_id"), TRACE_ID);
    /* And the worker's lines about nothing in particular name no request. */
    json_t *start = log_lines(w.log_path, "msg", "consuming clientele:runs as w-trace in group workers", NULL);
    ck_assert_uint_eq(json_array_size(start), 1);
    ck_assert_ptr_null(json_object_get(json_array_get(start, 0), "request_id"));

    /* A run the client named no request for still gets the id the API made up. */
    th_resp_t *r = call_as(ANALYST, "POST", "/v1/analytics/runs", JSON_T, "{\"kind\":\"rfm\"}", NULL, NULL);
    expect_status(r, 202);
    const char *made = header(r, "x-request-id");
    ck_assert_ptr_nonnull(made);
    long long id2 = jint(r->json, "id");
    wait_run(id2, "succeeded", 60000);
    json_t *lines = wait_log(w.log_path, "request_id", made, fmt("run %lld (rfm) claimed", id2));
    ck_assert_ptr_null(json_object_get(json_array_get(lines, 0), "trace_id"));

    /* /metrics counts both finished runs and their durations. */
    wait_sample(&w, "clientele_worker_runs_total{kind=\"rfm\",status=\"succeeded\"}", 2);
    ck_assert(worker_sample(&w, "clientele_worker_runs_total{kind=\"rfm\",status=\"failed\"}") == 0);
    wait_sample(&w, "clientele_worker_run_duration_seconds_count{kind=\"rfm\"}", 2);
    ck_assert(worker_sample(&w, "clientele_worker_run_duration_seconds_bucket{kind=\"rfm\",le=\"+Inf\"}") == 2);
    wait_sample(&w, "clientele_worker_busy", 0);
    crew_stop_worker(&w);
}
END_TEST

START_TEST(a_bad_traceparent_or_request_id_is_ignored_and_never_logged)
{
    static const char *const bad[] = {
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00F067AA0BA902B7-01",            /* uppercase */
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",            /* zero trace id */
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",            /* version ff */
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-injected",   /* version 00 with more */
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\",\"x\":\"", /* quotes */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        const char *rid = uniq("ops-bad-trace");
        th_resp_t *r =
            call_as(ANALYST, "GET", "/v1/me", NULL, NULL, fmt("X-Request-Id: %s", rid), fmt("traceparent: %s", bad[i]));
        expect_status(r, 200);
        json_t *line = json_array_get(wait_log(api.log_path, "request_id", rid, "request"), 0);
        ck_assert_msg(json_object_get(line, "trace_id") == NULL, "traceparent %s was believed", bad[i]);
        ck_assert_ptr_null(json_object_get(line, "parent_id"));
        /* The header never comes back to the client either. */
        ck_assert_ptr_null(header(r, "traceparent"));
    }
    ck_assert_int_eq(count_in_file(api.log_path, "injected"), 0);
    ck_assert_int_eq(count_in_file(api.log_path, "4BF92F3577B34DA6"), 0);

    /* Two traceparent headers are as good as none. */
    const char *rid = uniq("ops-two-traces");
    const char *h[] = {th_bearer(users[ANALYST].token, (char[2200]){0}, 2200), fmt("X-Request-Id: %s", rid),
                       "traceparent: 00-" TRACE_ID "-" PARENT_ID "-01", "traceparent: 00-" TRACE_ID "-" PARENT_ID "-00",
                       NULL};
    th_resp_t two = {0};
    ck_assert_int_eq(th_http(api.port, "GET", "/v1/me", h, NULL, 0, &two), 0);
    ck_assert_int_eq(two.status, 200);
    th_resp_free(&two);
    json_t *line = json_array_get(wait_log(api.log_path, "request_id", rid, "request"), 0);
    ck_assert_ptr_null(json_object_get(line, "trace_id"));

    /* A request id the server will not repeat: a fresh one is made, the sent one is in no log line. */
    th_resp_t *r = call_as(ANALYST, "GET", "/v1/me", NULL, NULL, "X-Request-Id: has space;and-\"quotes\"", NULL);
    expect_status(r, 200);
    const char *made = header(r, "x-request-id");
    ck_assert_ptr_nonnull(made);
    ck_assert_int_eq(strlen(made), 32);
    wait_log(api.log_path, "request_id", made, "request");
    ck_assert_int_eq(count_in_file(api.log_path, "and-\\\"quotes"), 0);

    /* A valid traceparent on any request: its trace id is on the request's access line. */
    rid = uniq("ops-good-trace");
    r = call_as(ANALYST, "GET", "/v1/me", NULL, NULL, fmt("X-Request-Id: %s", rid),
                "traceparent: 01-" TRACE_ID "-" PARENT_ID "-00-future-fields");
    expect_status(r, 200);
    line = json_array_get(wait_log(api.log_path, "request_id", rid, "request"), 0);
    ck_assert_str_eq(jstr(line, "trace_id"), TRACE_ID);
    ck_assert_int_eq(count_in_file(api.log_path, "future-fields"), 0);
}
END_TEST

/* --- health while a run holds the job thread ------------------------------------------ */

START_TEST(health_and_metrics_answer_while_a_run_is_held)
{
    crew_flush_redis();
    seed();
    th_api_t w;
    crew_start_worker(&w, "w-held", NULL);
    /* The run's read of the orders waits for this lock: the job thread is busy for as long as the test likes. */
    PGconn *lock = pg_open();
    ck_assert_int_eq(pg_do(lock, "BEGIN"), 0);
    ck_assert_int_eq(pg_do(lock, "LOCK TABLE orders IN ACCESS EXCLUSIVE MODE"), 0);
    long long id = start_run(NULL, NULL);
    wait_run(id, "running", 30000);
    for (int i = 0; i < 5; i++) {
        th_resp_t *h = worker_get(&w, "/healthz");
        expect_status(h, 200);
        ck_assert_str_eq(jstr(h->json, "status"), "ok");
        ck_assert_str_eq(header(h, "connection"), "close");
        th_resp_t *ready = worker_get(&w, "/readyz");
        expect_status(ready, 200);
        ck_assert_str_eq(jstr(ready->json, "status"), "ready");
        ck_assert(worker_sample(&w, "clientele_worker_busy") == 1);
        usleep(200 * 1000);
    }
    /* Everything above was answered while the run was still held. */
    ck_assert_str_eq(run_status(id), "running");
    th_resp_t *m = worker_get(&w, "/metrics");
    expect_status(m, 200);
    ck_assert_ptr_nonnull(strstr(header(m, "content-type"), "text/plain; version=0.0.4"));
    ck_assert(sample(m->body, "clientele_worker_consumer_group_joined") == 1);
    ck_assert(sample(m->body, "clientele_worker_stream_pending") == 1); /* the held run's entry */
    ck_assert(sample(m->body, "clientele_worker_stream_lag") == 0);
    ck_assert(sample(m->body, "clientele_worker_outbox_pending") == 0);
    ck_assert(sample(m->body, "clientele_worker_leader") == 1); /* the only worker */
    ck_assert(sample(m->body, "clientele_loop_lag_max_seconds{thread=\"0\"}") >= 0);
    ck_assert(sample(m->body, "clientele_redis_connected") == 1);
    ck_assert(sample(m->body, "clientele_db_connections{state=\"open\"}") >= 1);

    ck_assert_int_eq(pg_do(lock, "ROLLBACK"), 0);
    PQfinish(lock);
    wait_run(id, "succeeded", 60000);
    wait_sample(&w, "clientele_worker_runs_total{kind=\"rfm\",status=\"succeeded\"}", 1);
    wait_sample(&w, "clientele_worker_busy", 0);
    wait_sample(&w, "clientele_worker_stream_pending", 0); /* acknowledged */

    /* Only GET on the three paths. */
    th_resp_t *nf = worker_get(&w, "/v1/customers");
    expect_problem(nf, 404, "not-found");
    th_resp_t post = {0};
    ck_assert_int_eq(th_http(w.port, "POST", "/metrics", NULL, "x", 1, &post), 0);
    ck_assert_int_eq(post.status, 405);
    char allow[32];
    ck_assert_str_eq(th_header(&post, "allow", allow, sizeof(allow)), "GET");
    th_resp_free(&post);
    crew_stop_worker(&w);
}
END_TEST

/* --- readiness follows Redis ---------------------------------------------------------- */

START_TEST(readyz_turns_503_while_redis_is_down)
{
    crew_flush_redis();
    th_api_t w;
    crew_start_worker(&w, "w-ready", NULL);
    expect_status(worker_get(&w, "/readyz"), 200);
    ck_assert_int_eq(th_stack("redis-stop"), 0);
    long long until = th_now_ms() + 15000;
    th_resp_t *r;
    while ((r = worker_get(&w, "/readyz"))->status != 503) {
        ck_assert_msg(th_now_ms() < until, "/readyz still answers %d with Redis stopped", r->status);
        usleep(100 * 1000);
    }
    expect_problem(r, 503, "unavailable");
    ck_assert_str_eq(header(r, "retry-after"), "1");
    json_t *checks = jget(r, "checks");
    ck_assert_str_eq(jstr(checks, "redis"), "down");
    ck_assert_str_eq(jstr(checks, "postgres"), "up");
    ck_assert_ptr_nonnull(strstr(jstr(r->json, "detail"), "Redis is unreachable"));
    /* Alive all the same, and /metrics says what it can (the stream's figures are left out). */
    expect_status(worker_get(&w, "/healthz"), 200);
    th_resp_t *m = worker_get(&w, "/metrics");
    expect_status(m, 200);
    ck_assert(sample(m->body, "clientele_redis_connected") == 0);
    ck_assert(sample(m->body, "clientele_worker_stream_lag") == -1);
    ck_assert_ptr_nonnull(strstr(m->body, "# TYPE clientele_worker_stream_lag gauge\n"));

    int restarted = th_stack("redis-start");
    ck_assert_int_eq(restarted, 0);
    until = th_now_ms() + 20000;
    while ((r = worker_get(&w, "/readyz"))->status != 200) {
        ck_assert_msg(th_now_ms() < until, "/readyz still answers %d after Redis came back: %s", r->status, r->body);
        usleep(100 * 1000);
    }
    ck_assert_str_eq(jstr(jget(r, "checks"), "consumer_group"), "joined");
    crew_stop_worker(&w);
}
END_TEST

/* --- the listener's configuration ------------------------------------------------------- */

/* Runs the worker with one extra variable until it exits by itself (or 20 s); its exit status. */
static int run_worker_until_exit(const char *var, const char *log_path)
{
    const char *build = getenv("CLIENTELE_TEST_BUILD") != NULL ? getenv("CLIENTELE_TEST_BUILD") : "build/asan";
    const char *bin = fmt("%s/clientele-worker", build);
    const char *redis = fmt("%s", th_redis_url(conf.redis_db));
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        setenv("CLIENTELE_DATABASE_URL", db_url, 1);
        setenv("CLIENTELE_REDIS_URL", redis, 1);
        setenv("CLIENTELE_WORKER_NAME", "w-config", 1);
        putenv((char *)var);
        if (freopen(log_path, "w", stderr) == NULL)
            _exit(126);
        execl(bin, "clientele-worker", (char *)NULL);
        _exit(127);
    }
    long long until = th_now_ms() + 20000;
    int st;
    while (waitpid(pid, &st, WNOHANG) != pid) {
        if (th_now_ms() > until) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            return -1;
        }
        usleep(50 * 1000);
    }
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

START_TEST(the_listener_is_configured_by_clientele_worker_listen)
{
    crew_flush_redis();
    /* Empty: no listener at all, and the worker runs as before. */
    th_api_t w;
    crew_start_worker(&w, "w-quiet", (const char *const[]){"CLIENTELE_WORKER_LISTEN=", NULL});
    ck_assert(!crew_log_has(w.log_path, "health and metrics on"));
    th_resp_t r = {0};
    ck_assert_int_eq(th_http(w.port, "GET", "/healthz", NULL, NULL, 0, &r), -1);
    crew_stop_worker(&w);

    /* An address in use: the worker refuses to start, naming the variable. */
    th_api_t busy;
    crew_start_worker(&busy, "w-busy", NULL);
    const char *log_path = fmt("%s/logs/worker-workerops-config-%d.log",
                               getenv("STACK_DIR") != NULL ? getenv("STACK_DIR") : ".test", (int)getpid());
    int st = run_worker_until_exit(fmt("CLIENTELE_WORKER_LISTEN=127.0.0.1:%d", busy.port), log_path);
    ck_assert_msg(st == 2, "a worker whose address is taken exited %d; see %s", st, log_path);
    ck_assert(crew_log_has(log_path, "CLIENTELE_WORKER_LISTEN: cannot listen on 127.0.0.1"));
    /* A malformed address is refused before anything starts. */
    st = run_worker_until_exit("CLIENTELE_WORKER_LISTEN=8081", log_path);
    ck_assert_int_eq(st, 2);
    ck_assert(crew_log_has(log_path, "CLIENTELE_WORKER_LISTEN"));
    crew_stop_worker(&busy);
}
END_TEST

/* --- the dashboard ---------------------------------------------------------------------- */

#define DASHBOARD "docker/grafana/clientele.json"

/* Adds every metric name in an expression ("clientele_..." up to a character that cannot be in one). */
static void names_in(const char *expr, json_t *names)
{
    for (const char *p = strstr(expr, "clientele_"); p != NULL; p = strstr(p, "clientele_")) {
        size_t n = strspn(p, "abcdefghijklmnopqrstuvwxyz0123456789_");
        char *name = strndup(p, n);
        json_object_set_new(names, name, json_true());
        free(name);
        p += n;
    }
}

/* Every "expr" string anywhere in the dashboard; returns the number of panels with targets. */
static int collect_exprs(json_t *v, json_t *names)
{
    int panels = 0;
    if (json_is_object(v)) {
        const char *key;
        json_t *member;
        if (json_is_array(json_object_get(v, "targets")) && json_array_size(json_object_get(v, "targets")) > 0) {
            panels++;
            ck_assert_msg(json_is_string(json_object_get(v, "title")), "a panel without a title");
        }
        json_object_foreach(v, key, member)
        {
            if (strcmp(key, "expr") == 0 && json_is_string(member))
                names_in(json_string_value(member), names);
            else
                panels += collect_exprs(member, names);
        }
    } else if (json_is_array(v)) {
        size_t i;
        json_t *item;
        json_array_foreach(v, i, item) panels += collect_exprs(item, names);
    }
    return panels;
}

/* A family name of the scrapes: "# TYPE <name> " directly, or a histogram's _bucket, _sum or _count. */
static int exported(const char *scrapes, const char *name)
{
    if (strstr(scrapes, fmt("# TYPE %s ", name)) != NULL)
        return 1;
    static const char *const suffixes[] = {"_bucket", "_sum", "_count"};
    size_t n = strlen(name);
    for (size_t i = 0; i < 3; i++) {
        size_t k = strlen(suffixes[i]);
        if (n > k && strcmp(name + n - k, suffixes[i]) == 0 &&
            strstr(scrapes, fmt("# TYPE %.*s histogram\n", (int)(n - k), name)) != NULL)
            return 1;
    }
    return 0;
}

START_TEST(the_dashboard_names_only_metrics_that_exist)
{
    json_error_t err;
    json_t *dash = json_load_file(DASHBOARD, 0, &err);
    ck_assert_msg(dash != NULL, "%s: %s (line %d)", DASHBOARD, err.text, err.line);
    json_t *names = json_object();
    int panels = collect_exprs(dash, names);
    ck_assert_int_ge(panels, 10);
    ck_assert_int_ge(json_object_size(names), 20);

    crew_flush_redis();
    th_api_t w;
    crew_start_worker(&w, "w-dashboard", NULL);
    th_resp_t *api_metrics = http_get(-1, "/metrics");
    expect_status(api_metrics, 200);
    th_resp_t *worker_metrics = worker_get(&w, "/metrics");
    expect_status(worker_metrics, 200);
    const char *scrapes = fmt("%s\n%s", api_metrics->body, worker_metrics->body);
    const char *name;
    json_t *unused;
    json_object_foreach(names, name, unused)
    {
        ck_assert_msg(exported(scrapes, name), "the dashboard asks for %s, which neither /metrics has", name);
    }
    json_decref(names);
    json_decref(dash);
    crew_stop_worker(&w);
}
END_TEST

static Suite *workerops_suite(void)
{
    Suite *s = suite_create("workerops");
    TCase *tc = tcase_create("workerops");
    tcase_set_timeout(tc, 180);
    tcase_add_test(tc, a_request_id_and_trace_follow_a_run_into_the_worker);
    tcase_add_test(tc, a_bad_traceparent_or_request_id_is_ignored_and_never_logged);
    tcase_add_test(tc, health_and_metrics_answer_while_a_run_is_held);
    tcase_add_test(tc, readyz_turns_503_while_redis_is_down);
    tcase_add_test(tc, the_listener_is_configured_by_clientele_worker_listen);
    tcase_add_test(tc, the_dashboard_names_only_metrics_that_exist);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return crew_main(&conf, workerops_suite);
}
