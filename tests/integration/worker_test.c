/*
 * tests/integration/worker_test.c - clientele-worker against real PostgreSQL and Redis.
 *
 * Every test gets a fresh database (clientele_test_worker) seeded by SQL
 * and an empty Redis database 6, starts worker processes itself (fork and
 * exec of $CLIENTELE_TEST_BUILD/clientele-worker, each dying with the test
 * process through PR_SET_PDEATHSIG), and creates runs exactly as the API
 * does: the run row and its outbox row in one statement. Workers run with
 * CLIENTELE_WORKER_CLAIM_IDLE=2s. A run is made slow, when a test needs it
 * running, by holding an ACCESS EXCLUSIVE lock on orders from the test: the
 * worker then waits in its COPY of the orders, heartbeating. Every worker
 * a test stops must exit 0, which under ASan/LSan also means no leak.
 *
 * The correctness oracle is SQL written here from the definitions (see
 * worker/rfm.h), independently of the worker: w is a count of customers
 * with a strictly worse value, the tiers a sum over the customers ahead,
 * all in exact numeric arithmetic; times are whole seconds (floor), as
 * the definitions say. Its CTEs are MATERIALIZED so that the quadratic
 * counts run once, whatever the planner thinks of a fresh database.
 */
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <check.h>
#include <hiredis/hiredis.h>
#include <libpq-fe.h>

#include "tests/support/harness.h"

#define REDIS_DB 6
#define AS_OF "2026-03-01T12:00:00Z"
#define AS_OF_FRAC "2026-03-01T12:00:00.250000Z"

static const char *wdb; /* this test's database URL */

static const char SEED_SQL[] =
    "INSERT INTO users (email, name, password_hash, role_id)"
    " SELECT 'owner@worker.test', 'Owner', 'x', id FROM roles WHERE name = 'admin';"
    /* 600 customers: some tagged, every 50th soft-deleted, 541..600 without orders. */
    "INSERT INTO customers (kind, name, owner_id, tags, deleted_at)"
    " SELECT 'person', 'Customer ' || g, (SELECT id FROM users WHERE email = 'owner@worker.test'),"
    "  CASE WHEN g % 7 = 0 THEN ARRAY['vip', 'gold'] WHEN g % 4 = 0 THEN ARRAY['vip'] WHEN g % 5 = 0 THEN ARRAY['gold']"
    "   ELSE '{}'::text[] END,"
    "  CASE WHEN g % 50 = 3 THEN timestamptz '2026-01-01 00:00:00+00' END"
    " FROM generate_series(1, 600) g;"
    /*
     * 9000 orders full of ties: 13 distinct days 17 days apart, 4 distinct
     * seconds, a few sub-second times (same second as others, or 0.25 s
     * after as_of), some 0.5 s short of a whole day before as_of, some after
     * as_of, 5 distinct totals (0.00 among them, .50 on every third),
     * cancelled, refunded, pending and soft-deleted orders, and orders of
     * soft-deleted customers.
     */
    "INSERT INTO orders (customer_id, ordered_at, status, currency, total, deleted_at)"
    " SELECT 1 + (g * 37) % 540,"
    "  CASE WHEN g % 19 = 0 THEN timestamptz '2026-03-01 12:00:00+00' + (g % 5 + 1) * interval '1 hour'"
    "   WHEN g % 31 = 0 THEN timestamptz '2026-03-01 12:00:00+00' - interval '86399.5 seconds'"
    "   WHEN g % 29 = 0 THEN timestamptz '2026-03-01 12:00:00+00' - (g % 13 * 17) * interval '1 day'"
    "    + interval '0.25 seconds'"
    "   ELSE timestamptz '2026-03-01 12:00:00+00' - (g % 13 * 17) * interval '1 day' - (g % 4) * interval '1 second'"
    "  END,"
    "  CASE WHEN g % 9 = 0 THEN 'cancelled' WHEN g % 11 = 0 THEN 'refunded' WHEN g % 13 = 5 THEN 'pending'"
    "   ELSE 'completed' END,"
    "  'EUR', (g % 5) * 10 + CASE WHEN g % 3 = 0 THEN 0.5 ELSE 0 END,"
    "  CASE WHEN g % 17 = 0 THEN timestamptz '2026-02-01 00:00:00+00' END"
    " FROM generate_series(1, 9000) g;"
    "ANALYZE customers; ANALYZE orders";

/* --- processes, SQL and Redis -------------------------------------------------------- */

static const char *env_or(const char *name, const char *def)
{
    const char *v = getenv(name);
    return v != NULL && *v != '\0' ? v : def;
}

static int log_has(const th_api_t *w, const char *needle)
{
    FILE *f = fopen(w->log_path, "r");
    if (f == NULL)
        return 0;
    char line[4096];
    int found = 0;
    while (!found && fgets(line, sizeof(line), f) != NULL)
        found = strstr(line, needle) != NULL;
    fclose(f);
    return found;
}

/* Starts a worker named `name` and waits until it consumes the stream. */
static void worker_start(th_api_t *w, const char *name)
{
    static int seq;
    snprintf(w->log_path, sizeof(w->log_path), "%s/logs/worker-%d-%d-%s.log", env_or("STACK_DIR", ".test"),
             (int)getpid(), seq++, name);
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "mkdir -p %s/logs", env_or("STACK_DIR", ".test"));
    ck_assert_int_eq(system(cmd), 0);
    char bin[256];
    snprintf(bin, sizeof(bin), "%s/clientele-worker", env_or("CLIENTELE_TEST_BUILD", "build/asan"));
    w->port = th_free_port();
    char listen[32];
    snprintf(listen, sizeof(listen), "127.0.0.1:%d", w->port);
    pid_t parent = getpid();
    char svc_url[512];
    const char *url = th_db_url_as(wdb, "clientele_worker", svc_url, sizeof(svc_url));
    w->pid = fork();
    if (w->pid == 0) {
        /* The worker dies with this test process, even when an assertion ends it early. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        setenv("CLIENTELE_DATABASE_URL", url, 1);
        setenv("CLIENTELE_BACKUP_AT", "off", 1);
        setenv("CLIENTELE_REDIS_URL", th_redis_url(REDIS_DB), 1);
        setenv("CLIENTELE_WORKER_NAME", name, 1);
        setenv("CLIENTELE_WORKER_CLAIM_IDLE", "2s", 1);
        setenv("CLIENTELE_REDIS_TIMEOUT", "1s", 1);
        setenv("CLIENTELE_LOG_LEVEL", "debug", 1);
        setenv("CLIENTELE_WORKER_LISTEN", listen, 1);
        int fd = open(w->log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
        dup2(fd, 1);
        dup2(fd, 2);
        execl(bin, "clientele-worker", (char *)NULL);
        _exit(127);
    }
    long long until = th_now_ms() + 20000;
    while (!log_has(w, "\"consuming clientele:runs")) {
        int st;
        if (waitpid(w->pid, &st, WNOHANG) == w->pid) {
            w->pid = 0;
            ck_abort_msg("worker %s exited during start-up; see %s", name, w->log_path);
        }
        if (th_now_ms() > until)
            ck_abort_msg("worker %s did not start consuming within 20 s; see %s", name, w->log_path);
        usleep(50 * 1000);
    }
}

/* SIGTERM (or sig) and the exit status, which must be 0 for SIGTERM. */
static int worker_stop(th_api_t *w, int sig)
{
    if (w->pid <= 0)
        return -1;
    return th_api_stop(w, sig, 15);
}

static void worker_stop_ok(th_api_t *w)
{
    int st = worker_stop(w, SIGTERM);
    ck_assert_msg(st == 0, "worker exited with %d (sanitizer report?); see %s", st, w->log_path);
}

static long long sql_ll(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static long long sql_ll(const char *fmt, ...)
{
    char sql[32768], out[64];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(sql, sizeof(sql), fmt, ap);
    va_end(ap);
    ck_assert_msg(th_sql_value(wdb, sql, out, sizeof(out)) == 0, "no row: %s", sql);
    return atoll(out);
}

static void sql_text(char *out, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void sql_text(char *out, size_t len, const char *fmt, ...)
{
    char sql[32768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(sql, sizeof(sql), fmt, ap);
    va_end(ap);
    ck_assert_msg(th_sql_value(wdb, sql, out, len) == 0, "no row: %s", sql);
}

/* Polls a query until its first value equals `want`; returns the milliseconds it took, or -1. */
static long long wait_value(const char *sql, const char *want, int timeout_ms)
{
    long long t0 = th_now_ms();
    char out[256];
    while (th_now_ms() - t0 < timeout_ms) {
        if (th_sql_value(wdb, sql, out, sizeof(out)) == 0 && strcmp(out, want) == 0)
            return th_now_ms() - t0;
        usleep(20 * 1000);
    }
    return -1;
}

static void wait_status(long long run, const char *status, int timeout_ms)
{
    char sql[128], last[64] = "";
    snprintf(sql, sizeof(sql), "SELECT status FROM analytics_runs WHERE id = %lld", run);
    if (wait_value(sql, status, timeout_ms) < 0) {
        th_sql_value(wdb, sql, last, sizeof(last));
        ck_abort_msg("run %lld did not become %s within %d ms (it is %s)", run, status, timeout_ms, last);
    }
}

/* Creates a run as POST /v1/analytics/runs does: the run and its outbox message in one statement. */
static long long create_run(const char *kind, const char *params, int messages)
{
    char sql[2048];
    snprintf(sql, sizeof(sql),
             "WITH ins AS (INSERT INTO analytics_runs (kind, params, requested_by) VALUES ('%s', '%s'::jsonb, NULL)"
             " RETURNING id),"
             " ob AS (INSERT INTO outbox (topic, payload) SELECT 'runs', json_build_object('run_id', ins.id)"
             "  FROM ins, generate_series(1, %d))"
             " SELECT id FROM ins",
             kind, params, messages);
    return sql_ll("%s", sql);
}

static const char *rfm_params(char *buf, size_t len, const char *as_of, const char *lookback, const char *tag,
                              int new_days, int active_days, int churn_days, const char *a, const char *b)
{
    snprintf(buf, len,
             "{\"as_of\": \"%s\", \"lookback_days\": %s, \"tag\": %s, \"new_days\": %d, \"active_days\": %d,"
             " \"churn_days\": %d, \"a_share\": \"%s\", \"b_share\": \"%s\"}",
             as_of, lookback, tag, new_days, active_days, churn_days, a, b);
    return buf;
}

static const char *default_params(char *buf, size_t len)
{
    return rfm_params(buf, len, AS_OF, "null", "null", 30, 90, 180, "0.80", "0.95");
}

static redisContext *redis(void)
{
    redisContext *c = redisConnect("127.0.0.1", atoi(env_or("STACK_REDIS_PORT", "56379")));
    ck_assert_msg(c != NULL && c->err == 0, "cannot connect to Redis");
    redisReply *r = redisCommand(c, "SELECT %d", REDIS_DB);
    freeReplyObject(r);
    return c;
}

/* Entries delivered to the group and not yet acknowledged. */
static long long pending_entries(void)
{
    redisContext *c = redis();
    redisReply *r = redisCommand(c, "XPENDING clientele:runs workers");
    long long n = r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements > 0 ? r->element[0]->integer : -1;
    freeReplyObject(r);
    redisFree(c);
    return n;
}

/* 1 when every entry of the stream was delivered to the group and acknowledged. */
static int group_settled(void)
{
    redisContext *c = redis();
    redisReply *r = redisCommand(c, "XINFO GROUPS clientele:runs");
    long long pending = -1, lag = -1;
    if (r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements == 1 && r->element[0]->type == REDIS_REPLY_ARRAY) {
        redisReply *g = r->element[0];
        for (size_t i = 0; i + 1 < g->elements; i += 2) {
            if (strcmp(g->element[i]->str, "pending") == 0)
                pending = g->element[i + 1]->integer;
            else if (strcmp(g->element[i]->str, "lag") == 0 && g->element[i + 1]->type == REDIS_REPLY_INTEGER)
                lag = g->element[i + 1]->integer;
        }
    }
    freeReplyObject(r);
    redisFree(c);
    return pending == 0 && lag == 0;
}

static long long stream_length(void)
{
    redisContext *c = redis();
    redisReply *r = redisCommand(c, "XLEN clientele:runs");
    long long n = r != NULL && r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
    freeReplyObject(r);
    redisFree(c);
    return n;
}

static int wait_settled(int timeout_ms)
{
    long long t0 = th_now_ms();
    while (th_now_ms() - t0 < timeout_ms) {
        if (group_settled())
            return 1;
        usleep(20 * 1000);
    }
    return 0;
}

/* Holds ACCESS EXCLUSIVE on orders until orders_unlock(): a run waits in its COPY of the orders. */
static PGconn *orders_lock(void)
{
    PGconn *c = PQconnectdb(wdb);
    ck_assert_int_eq(PQstatus(c), CONNECTION_OK);
    PGresult *r = PQexec(c, "BEGIN; LOCK TABLE orders IN ACCESS EXCLUSIVE MODE");
    ck_assert_int_eq(PQresultStatus(r), PGRES_COMMAND_OK);
    PQclear(r);
    return c;
}

static void orders_unlock(PGconn *c)
{
    PQclear(PQexec(c, "ROLLBACK"));
    PQfinish(c);
}

static void teardown(void)
{
    /* A test that failed with Redis stopped must not leave it stopped. */
    th_stack("redis-start");
}

static void setup(void)
{
    wdb = th_db_create("worker");
    if (th_sql(wdb, SEED_SQL) != 0)
        ck_abort_msg("seeding failed");
    redisContext *c = redis();
    freeReplyObject(redisCommand(c, "FLUSHDB"));
    redisFree(c);
}

/* --- the oracle ------------------------------------------------------------------------ */

typedef struct st_oracle_t {
    const char *as_of;
    int lookback; /* 0: none */
    const char *tag;
    int new_days, active_days, churn_days;
    const char *a_share, *b_share;
} oracle_t;

/*
 * One row per customer of the population: customer_id, recency_days,
 * frequency, monetary, r, f, m, segment, lifecycle, tier - straight from
 * the definitions.
 */
static void oracle_sql(char *buf, size_t len, const oracle_t *o)
{
    char tag[128] = "", window[160] = "";
    if (o->tag != NULL)
        snprintf(tag, sizeof(tag), " AND tags @> ARRAY['%s']", o->tag);
    if (o->lookback > 0)
        snprintf(window, sizeof(window), " AND o.ordered_at > p.as_of - %d * interval '86400 seconds'", o->lookback);
    snprintf(
        buf, len,
        "WITH p AS MATERIALIZED (SELECT timestamptz '%s' AS as_of,"
        "   floor(extract(epoch FROM timestamptz '%s'))::bigint AS as_s),"
        " pop AS MATERIALIZED (SELECT id FROM customers WHERE deleted_at IS NULL%s),"
        " q AS MATERIALIZED (SELECT o.customer_id, floor(extract(epoch FROM o.ordered_at))::bigint AS s, o.total"
        "   FROM orders o, p"
        "   WHERE o.status = 'completed' AND o.deleted_at IS NULL AND o.ordered_at <= p.as_of%s"
        "   AND o.customer_id IN (SELECT id FROM pop)),"
        " agg AS MATERIALIZED (SELECT customer_id, min(s) AS first_s, max(s) AS last_s, count(*) AS freq,"
        "   sum(total) AS monetary"
        "   FROM q GROUP BY customer_id),"
        " n AS MATERIALIZED (SELECT count(*) AS n, sum(monetary) AS total FROM agg),"
        " w AS MATERIALIZED (SELECT a.*,"
        "   (SELECT count(*) FROM agg b WHERE b.last_s < a.last_s) AS wr,"
        "   (SELECT count(*) FROM agg b WHERE b.freq < a.freq) AS wf,"
        "   (SELECT count(*) FROM agg b WHERE b.monetary < a.monetary) AS wm,"
        "   (SELECT coalesce(sum(b.monetary), 0) FROM agg b WHERE b.monetary > a.monetary"
        "     OR (b.monetary = a.monetary AND b.customer_id < a.customer_id)) AS ahead"
        "   FROM agg a),"
        " s AS MATERIALIZED (SELECT w.customer_id, w.freq, w.monetary,"
        "   floor((p.as_s - w.last_s) / 86400.0)::int AS recency, floor((p.as_s - w.first_s) / 86400.0) AS age,"
        "   1 + (5 * w.wr) / n.n AS r, 1 + (5 * w.wf) / n.n AS f, 1 + (5 * w.wm) / n.n AS m,"
        "   CASE WHEN w.ahead < %s * n.total THEN 'A' WHEN w.ahead < %s * n.total THEN 'B' ELSE 'C' END AS tier"
        "   FROM w, n, p)"
        " SELECT pop.id AS customer_id, s.recency AS recency_days, s.freq AS frequency,"
        "  s.monetary::numeric(20, 2) AS monetary, s.r, s.f, s.m,"
        "  CASE WHEN s.customer_id IS NULL THEN 'prospect'"
        "   WHEN s.r = 5 AND s.f = 1 THEN 'new_customers' WHEN s.r = 5 AND s.f <= 3 THEN 'potential_loyalists'"
        "   WHEN s.r = 5 THEN 'champions'"
        "   WHEN s.r = 4 AND s.f = 1 THEN 'promising' WHEN s.r = 4 AND s.f <= 3 THEN 'potential_loyalists'"
        "   WHEN s.r = 4 THEN 'loyal_customers'"
        "   WHEN s.r = 3 AND s.f <= 2 THEN 'about_to_sleep' WHEN s.r = 3 AND s.f = 3 THEN 'need_attention'"
        "   WHEN s.r = 3 THEN 'loyal_customers'"
        "   WHEN s.f <= 2 THEN 'hibernating' WHEN s.f <= 4 THEN 'at_risk' ELSE 'cant_lose_them' END AS segment,"
        "  CASE WHEN s.customer_id IS NULL THEN 'prospect' WHEN s.age < %d THEN 'new'"
        "   WHEN s.recency <= %d THEN 'active' WHEN s.recency <= %d THEN 'at_risk' ELSE 'churned' END AS lifecycle,"
        "  s.tier"
        " FROM pop LEFT JOIN s ON s.customer_id = pop.id",
        o->as_of, o->as_of, tag, window, o->a_share, o->b_share, o->new_days, o->active_days, o->churn_days);
}

#define RESULT_COLS "customer_id, recency_days, frequency, monetary, r, f, m, segment, lifecycle, tier"

/* The run's history rows must equal the oracle, row for row, and the statistics must add up. */
static void assert_run_matches(long long run, const oracle_t *o)
{
    char oracle[8192], sql[20480];
    oracle_sql(oracle, sizeof(oracle), o);
    long long population = sql_ll("SELECT count(*) FROM (%s) x", oracle);
    ck_assert_int_gt(population, 0);
    ck_assert_int_eq(sql_ll("SELECT count(*) FROM customer_analytics_history WHERE run_id = %lld", run), population);
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM ((SELECT " RESULT_COLS " FROM customer_analytics_history WHERE run_id = %lld"
             " EXCEPT SELECT " RESULT_COLS " FROM (%s) o1)"
             " UNION ALL (SELECT " RESULT_COLS " FROM (%s) o2"
             " EXCEPT SELECT " RESULT_COLS " FROM customer_analytics_history WHERE run_id = %lld)) d",
             run, oracle, oracle, run);
    long long diff = sql_ll("%s", sql);
    if (diff != 0) {
        char example[1024] = "";
        snprintf(sql, sizeof(sql),
                 "SELECT (SELECT row(h.*)::text FROM customer_analytics_history h WHERE h.run_id = %lld"
                 " AND h.customer_id = x.customer_id) || ' vs ' || row(x.*)::text FROM (SELECT " RESULT_COLS
                 " FROM (%s) o1 EXCEPT SELECT " RESULT_COLS
                 " FROM customer_analytics_history WHERE run_id = %lld) x LIMIT 1",
                 run, oracle, run);
        th_sql_value(wdb, sql, example, sizeof(example));
        ck_abort_msg("run %lld: %lld rows differ from the oracle, e.g. %s", run, diff, example);
    }
    /* A mix worth testing: every score, prospects, several segments, lifecycles and all three tiers. */
    ck_assert_int_gt(sql_ll("SELECT count(*) FROM customer_analytics_history WHERE run_id = %lld AND r IS NULL", run),
                     0);
    ck_assert_int_eq(sql_ll("SELECT count(DISTINCT tier) FROM customer_analytics_history WHERE run_id = %lld", run), 3);
    ck_assert_int_ge(sql_ll("SELECT count(DISTINCT segment) FROM customer_analytics_history WHERE run_id = %lld", run),
                     4);

    /* The statistics agree with the rows. */
    ck_assert_int_eq(sql_ll("SELECT (stats ->> 'customers')::bigint FROM analytics_runs WHERE id = %lld", run),
                     population);
    ck_assert_int_eq(sql_ll("SELECT (stats ->> 'scored')::bigint - (SELECT count(r) FROM customer_analytics_history"
                            " WHERE run_id = %lld) FROM analytics_runs WHERE id = %lld",
                            run, run),
                     0);
    static const char *const groups[] = {"segment", "lifecycle", "tier"};
    static const char *const keys[] = {"segments", "lifecycles", "tiers"};
    for (int i = 0; i < 3; i++) {
        ck_assert_msg(sql_ll("SELECT count(*) FROM (SELECT %s AS k, count(*) AS n FROM customer_analytics_history"
                             " WHERE run_id = %lld AND %s IS NOT NULL GROUP BY 1) g, analytics_runs r"
                             " WHERE r.id = %lld AND coalesce((r.stats -> '%s' ->> g.k)::bigint, -1) <> g.n",
                             groups[i], run, groups[i], run, keys[i]) == 0,
                      "run %lld: stats.%s disagree with the rows", run, keys[i]);
    }
    ck_assert_int_eq(sql_ll("SELECT (SELECT sum(value::bigint) FROM jsonb_each_text(stats -> 'segments'))"
                            " FROM analytics_runs WHERE id = %lld",
                            run),
                     population);
    char got[64], want[64];
    sql_text(got, sizeof(got), "SELECT stats ->> 'revenue' FROM analytics_runs WHERE id = %lld", run);
    sql_text(want, sizeof(want),
             "SELECT coalesce(sum(monetary), 0)::numeric(20, 2)::text FROM customer_analytics_history"
             " WHERE run_id = %lld",
             run);
    ck_assert_str_eq(got, want);
    sql_text(got, sizeof(got), "SELECT stats -> 'tier_revenue' ->> 'B' FROM analytics_runs WHERE id = %lld", run);
    sql_text(want, sizeof(want),
             "SELECT coalesce(sum(monetary), 0)::numeric(20, 2)::text FROM customer_analytics_history"
             " WHERE run_id = %lld AND tier = 'B'",
             run);
    ck_assert_str_eq(got, want);
    ck_assert_int_eq(sql_ll("SELECT count(*) FROM analytics_runs WHERE id = %lld AND progress = 1"
                            " AND customers_done = %lld AND customers_total = %lld AND finished_at IS NOT NULL"
                            " AND (stats ->> 'duration_ms')::bigint >= 0",
                            run, population, population),
                     1);
}

/* --- (a) exact results ------------------------------------------------------------------ */

START_TEST(results_equal_the_definitions)
{
    th_api_t w;
    char params[512];
    worker_start(&w, "w-exact");

    long long a = create_run("rfm", default_params(params, sizeof(params)), 1);
    wait_status(a, "succeeded", 30000);
    oracle_t oa = {AS_OF, 0, NULL, 30, 90, 180, "0.80", "0.95"};
    assert_run_matches(a, &oa);
    /* customer_analytics holds exactly run a's rows. */
    ck_assert_int_eq(sql_ll("SELECT count(*) FROM ((SELECT " RESULT_COLS " FROM customer_analytics WHERE run_id = %lld"
                            " EXCEPT SELECT " RESULT_COLS " FROM customer_analytics_history WHERE run_id = %lld)"
                            " UNION ALL (SELECT " RESULT_COLS " FROM customer_analytics_history WHERE run_id = %lld"
                            " EXCEPT SELECT " RESULT_COLS " FROM customer_analytics)) d",
                            a, a, a),
                     0);
    ck_assert_int_eq(sql_ll("SELECT count(*) FROM customer_analytics WHERE run_id <> %lld", a), 0);

    /* A tag, a lookback, other day limits and shares, and a fractional as_of. */
    long long b = create_run(
        "rfm", rfm_params(params, sizeof(params), AS_OF_FRAC, "120", "\"vip\"", 45, 60, 150, "0.5", "0.9"), 1);
    wait_status(b, "succeeded", 30000);
    oracle_t ob = {AS_OF_FRAC, 120, "vip", 45, 60, 150, "0.5", "0.9"};
    assert_run_matches(b, &ob);
    /* Run b replaced the current values of its population only. */
    ck_assert_int_eq(sql_ll("SELECT count(*) FROM customer_analytics c JOIN customers k ON k.id = c.customer_id"
                            " WHERE (k.tags @> ARRAY['vip']) <> (c.run_id = %lld)",
                            b),
                     0);
    ck_assert_int_eq(sql_ll("SELECT count(*) FROM ((SELECT " RESULT_COLS " FROM customer_analytics)"
                            " EXCEPT (SELECT " RESULT_COLS " FROM customer_analytics_history WHERE run_id = %lld"
                            " UNION ALL SELECT " RESULT_COLS " FROM customer_analytics_history h WHERE run_id = %lld"
                            " AND NOT EXISTS (SELECT 1 FROM customer_analytics_history x WHERE x.run_id = %lld"
                            " AND x.customer_id = h.customer_id))) d",
                            b, a, b),
                     0);
    ck_assert(wait_settled(5000));
    worker_stop_ok(&w);
}
END_TEST

START_TEST(failures_are_recorded_and_acknowledged)
{
    th_api_t w;
    worker_start(&w, "w-fail");
    long long bad = create_run("rfm", "{\"as_of\": \"yesterday\", \"new_days\": 30}", 1);
    long long clv = create_run("clv", "{\"as_of\": \"" AS_OF "\", \"time_unit\": \"month\"}", 1);
    long long range = create_run("rfm",
                                 "{\"as_of\": \"" AS_OF
                                 "\", \"lookback_days\": 0, \"tag\": null, \"new_days\": 30, \"active_days\": 90,"
                                 " \"churn_days\": 180, \"a_share\": \"0.80\", \"b_share\": \"0.95\"}",
                                 1);
    wait_status(bad, "failed", 20000);
    wait_status(clv, "failed", 20000);
    wait_status(range, "failed", 20000);
    char err[512];
    sql_text(err, sizeof(err), "SELECT error FROM analytics_runs WHERE id = %lld", bad);
    ck_assert_msg(strstr(err, "as_of is not a valid timestamp") != NULL, "got: %s", err);
    sql_text(err, sizeof(err), "SELECT error FROM analytics_runs WHERE id = %lld", clv);
    ck_assert_msg(strstr(err, "time_unit must be day or week") != NULL, "got: %s", err);
    sql_text(err, sizeof(err), "SELECT error FROM analytics_runs WHERE id = %lld", range);
    ck_assert_msg(strstr(err, "lookback_days") != NULL, "got: %s", err);
    ck_assert_int_eq(sql_ll("SELECT count(*) FROM customer_analytics_history"), 0);
    ck_assert(wait_settled(5000));
    worker_stop_ok(&w);
}
END_TEST

START_TEST(lost_database_connection_fails_the_run_with_a_reason)
{
    th_api_t w;
    char params[512], err[512];
    PGconn *lock = orders_lock();
    worker_start(&w, "w-lost");
    long long run = create_run("rfm", default_params(params, sizeof(params)), 1);
    ck_assert(wait_value("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'clientele-worker-job'"
                         " AND datname = current_database() AND wait_event_type = 'Lock'",
                         "1", 10000) >= 0);
    ck_assert_int_eq(sql_ll("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                            " WHERE application_name = 'clientele-worker-job' AND datname = current_database()"),
                     1);
    wait_status(run, "failed", 10000);
    orders_unlock(lock);
    sql_text(err, sizeof(err), "SELECT error FROM analytics_runs WHERE id = %lld", run);
    ck_assert_str_eq(err, "the database connection was lost while loading orders: terminating connection due to"
                          " administrator command");
    ck_assert(wait_settled(5000));
    /* The job reconnects for the next run. */
    long long next = create_run("rfm", default_params(params, sizeof(params)), 1);
    wait_status(next, "succeeded", 30000);
    worker_stop_ok(&w);
}
END_TEST

/* --- (b) + (f) a killed worker's run is finished by another, and progress shows -------------------- */

START_TEST(killed_worker_run_is_taken_over)
{
    th_api_t w1, w2;
    char params[512], hb1[64], hb2[64];
    long long population = sql_ll("SELECT count(*) FROM customers WHERE deleted_at IS NULL");
    PGconn *lock = orders_lock();
    worker_start(&w1, "w-one");
    long long run = create_run("rfm", default_params(params, sizeof(params)), 1);

    /* (f) While it waits for the orders: running, the population counted, progress above 0, a live heartbeat. */
    char sql[256];
    snprintf(sql, sizeof(sql),
             "SELECT status || ' ' || worker || ' ' || coalesce(customers_total, -1) || ' ' || (progress > 0)"
             " FROM analytics_runs WHERE id = %lld",
             run);
    char want[64];
    snprintf(want, sizeof(want), "running w-one %lld true", population);
    ck_assert_msg(wait_value(sql, want, 10000) >= 0, "run %lld never showed progress", run);
    sql_text(hb1, sizeof(hb1), "SELECT heartbeat_at FROM analytics_runs WHERE id = %lld", run);
    usleep(1200 * 1000);
    sql_text(hb2, sizeof(hb2), "SELECT heartbeat_at FROM analytics_runs WHERE id = %lld", run);
    ck_assert_str_ne(hb1, hb2);
    ck_assert_int_eq(sql_ll("SELECT count(*) FROM analytics_runs WHERE id = %lld AND progress < 1"
                            " AND heartbeat_at > now() - interval '1 second'",
                            run),
                     1);

    /* A second worker leaves a live worker's run alone, well past the claim idle time. */
    worker_start(&w2, "w-two");
    usleep(6000 * 1000);
    ck_assert_int_eq(sql_ll("SELECT count(*) FROM analytics_runs WHERE id = %lld AND status = 'running'"
                            " AND worker = 'w-one' AND attempts = 1",
                            run),
                     1);

    /* kill -9 the first; the second takes the entry over after the claim idle time and finishes. */
    ck_assert_int_eq(worker_stop(&w1, SIGKILL), 128 + SIGKILL);
    orders_unlock(lock);
    wait_status(run, "succeeded", 30000);
    ck_assert_int_eq(sql_ll("SELECT count(*) FROM analytics_runs WHERE id = %lld AND worker = 'w-two'"
                            " AND attempts = 2",
                            run),
                     1);
    ck_assert_int_eq(sql_ll("SELECT count(*) FROM customer_analytics_history WHERE run_id = %lld", run), population);
    ck_assert_int_eq(sql_ll("SELECT count(DISTINCT customer_id) FROM customer_analytics_history"), population);
    ck_assert_int_eq(sql_ll("SELECT count(*) FROM customer_analytics"), population);
    oracle_t o = {AS_OF, 0, NULL, 30, 90, 180, "0.80", "0.95"};
    assert_run_matches(run, &o);
    ck_assert(wait_settled(5000));
    ck_assert(log_has(&w2, "took over stream entry"));
    worker_stop_ok(&w2);
}
END_TEST

/* --- (c) Redis down when the run is requested ------------------------------------------------ */

START_TEST(run_requested_while_redis_is_down_completes_later)
{
    th_api_t w;
    char params[512];
    worker_start(&w, "w-redis");
    ck_assert_int_eq(th_stack("redis-stop"), 0);
    long long run = create_run("rfm", default_params(params, sizeof(params)), 1);
    usleep(1500 * 1000);
    ck_assert_int_eq(sql_ll("SELECT count(*) FROM analytics_runs WHERE id = %lld AND status = 'queued'", run), 1);
    ck_assert_int_eq(sql_ll("SELECT count(*) FROM outbox WHERE published_at IS NULL"), 1);
    ck_assert_int_eq(th_stack("redis-start"), 0);
    wait_status(run, "succeeded", 30000);
    ck_assert_int_eq(sql_ll("SELECT count(*) FROM outbox WHERE published_at IS NULL"), 0);
    oracle_t o = {AS_OF, 0, NULL, 30, 90, 180, "0.80", "0.95"};
    assert_run_matches(run, &o);
    ck_assert(wait_settled(5000));
    worker_stop_ok(&w);
}
END_TEST

/*
 * Redis loses its data (restart without persistence, flush, failover to an
 * empty replica) after the relay published a run and before any worker read
 * it: the outbox says published, the stream entry is gone. The next worker
 * to create the consumer group afresh publishes unfinished runs again.
 */
START_TEST(runs_lost_with_redis_data_are_published_again)
{
    th_api_t w;
    char params[512];
    long long run = create_run("rfm", default_params(params, sizeof(params)), 1);
    ck_assert_int_eq(sql_ll("WITH m AS (UPDATE outbox SET published_at = now() RETURNING 1) SELECT count(*) FROM m"),
                     1);
    redisContext *c = redis();
    freeReplyObject(redisCommand(c, "FLUSHDB"));
    redisFree(c);
    worker_start(&w, "w-flushed");
    wait_status(run, "succeeded", 30000);
    oracle_t o = {AS_OF, 0, NULL, 30, 90, 180, "0.80", "0.95"};
    assert_run_matches(run, &o);
    ck_assert(log_has(&w, "re-publishing runs not yet finished"));
    ck_assert(wait_settled(5000));
    /* A restart finds the group: nothing is published again. */
    worker_stop_ok(&w);
    long long messages = sql_ll("SELECT count(*) FROM outbox");
    worker_start(&w, "w-flushed");
    usleep(1000 * 1000);
    ck_assert_int_eq(sql_ll("SELECT count(*) FROM outbox"), messages);
    ck_assert(!log_has(&w, "re-publishing runs not yet finished"));
    worker_stop_ok(&w);
}
END_TEST

/* --- the swap of customer_analytics (schema/0011_rfm_write.sql) ------------------------------- */

static long long analytics_oid(void)
{
    return sql_ll("SELECT 'customer_analytics'::regclass::oid");
}

/* One value from a connection the caller keeps open (a reader with its own session). */
static long long conn_ll(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    ck_assert_msg(PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1, "%s: %s", sql, PQerrorMessage(c));
    long long v = atoll(PQgetvalue(r, 0, 0));
    PQclear(r);
    return v;
}

static void conn_ok(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    ck_assert_msg(PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK, "%s: %s", sql,
                  PQerrorMessage(c));
    PQclear(r);
}

/* Waits until the job has run its clean-up after a run's commit (customer_analytics_drop_retired). */
static void wait_cleanup_done(void)
{
    ck_assert(wait_value("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'clientele-worker-job'"
                         " AND datname = current_database() AND state = 'idle'"
                         " AND query LIKE '%customer_analytics_drop_retired%'",
                         "1", 10000) >= 0);
}

#define JOB_WAITS_FOR_A_LOCK                                                                                           \
    "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'clientele-worker-job'"                            \
    " AND datname = current_database() AND wait_event_type = 'Lock'"

/*
 * A run over every customer builds a new customer_analytics and swaps it in:
 * same columns, constraints, keys and storage options, the old table gone,
 * and sessions that were open before read the new one. A reader holding the
 * table makes the swap wait and try again; one holding it for longer makes
 * the run upsert instead. The results are the same either way.
 */
START_TEST(full_runs_swap_customer_analytics)
{
    th_api_t w;
    char params[512], shape[4096], after[4096];
    oracle_t o = {AS_OF, 0, NULL, 30, 90, 180, "0.80", "0.95"};
    const char *shape_sql = "SELECT customer_analytics_shape('customer_analytics') || ' | ' || (SELECT string_agg("
                            "conname || ' ' || pg_get_constraintdef(oid), ', ' ORDER BY conname) FROM pg_constraint"
                            " WHERE conrelid = 'customer_analytics'::regclass)";
    sql_text(shape, sizeof(shape), "%s", shape_sql);
    const char *fk_triggers_sql = "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'customers'::regclass"
                                  " AND tgconstrrelid = 'customer_analytics'::regclass";
    long long fk_triggers = sql_ll("%s", fk_triggers_sql);
    ck_assert_int_gt(fk_triggers, 0);
    long long oid0 = analytics_oid();

    /*
     * A session opened before the run, that has already read customer_analytics through a prepared statement
     * (as the API's sessions do: their statements name the table).
     */
    PGconn *reader = PQconnectdb(wdb);
    ck_assert_int_eq(PQstatus(reader), CONNECTION_OK);
    conn_ok(reader, "PREPARE scored(bigint) AS SELECT count(*) FROM customers c WHERE c.deleted_at IS NULL"
                    " AND (SELECT a.run_id FROM customer_analytics a WHERE a.customer_id = c.id) = $1");
    ck_assert_int_eq(conn_ll(reader, "EXECUTE scored(0)"), 0);

    worker_start(&w, "w-swap");
    long long a = create_run("rfm", default_params(params, sizeof(params)), 1);
    wait_status(a, "succeeded", 30000);
    wait_cleanup_done(); /* before the oracle's reads of customers, which would hold the drop off */
    assert_run_matches(a, &o);
    long long oid1 = analytics_oid();
    ck_assert_int_ne(oid1, oid0);
    sql_text(after, sizeof(after), "%s", shape_sql);
    ck_assert_str_eq(after, shape);
    ck_assert_int_eq(sql_ll("%s", fk_triggers_sql), fk_triggers);
    ck_assert_int_eq(sql_ll("SELECT count(*) FROM pg_class WHERE relname ~ '^customer_analytics_(next|retired)_'"), 0);
    ck_assert_int_eq(sql_ll("SELECT count(*) FROM pg_indexes WHERE tablename = 'customer_analytics'"
                            " AND indexname = 'customer_analytics_pkey'"),
                     1);
    /* The old session reads the new table, by name, through its prepared statement too. */
    char sql[512];
    snprintf(sql, sizeof(sql), "EXECUTE scored(%lld)", a);
    ck_assert_int_eq(conn_ll(reader, sql), sql_ll("SELECT count(*) FROM customers WHERE deleted_at IS NULL"));
    /* The foreign key still cascades. */
    long long victim = sql_ll("SELECT min(customer_id) FROM customer_analytics");
    snprintf(sql, sizeof(sql), "DELETE FROM orders WHERE customer_id = %lld; DELETE FROM customers WHERE id = %lld",
             victim, victim);
    ck_assert_int_eq(th_sql(wdb, sql), 0);
    ck_assert_int_eq(sql_ll("SELECT count(*) FROM customer_analytics WHERE customer_id = %lld", victim), 0);

    /* A reader inside a transaction holds the table: the swap waits, and gets it once the reader is done. */
    conn_ok(reader, "BEGIN");
    ck_assert_int_gt(conn_ll(reader, "SELECT count(*) FROM customer_analytics"), 0);
    long long b = create_run("rfm", default_params(params, sizeof(params)), 1);
    ck_assert(wait_value(JOB_WAITS_FOR_A_LOCK, "1", 20000) >= 0);
    conn_ok(reader, "COMMIT");
    wait_status(b, "succeeded", 30000);
    wait_cleanup_done();
    ck_assert_int_eq(sql_ll("SELECT count(*) FROM pg_class WHERE relname ~ '^customer_analytics_(next|retired)_'"), 0);
    assert_run_matches(b, &o);
    long long oid2 = analytics_oid();
    ck_assert_int_ne(oid2, oid1);
    ck_assert_int_eq(sql_ll("SELECT count(*) FROM customer_analytics WHERE run_id <> %lld", b), 0);

    /*
     * A reader of customers keeps the old table from being dropped after the
     * commit (the drop locks customers): it stays, and a later run drops it.
     */
    conn_ok(reader, "BEGIN");
    ck_assert_int_gt(conn_ll(reader, "SELECT count(*) FROM customers"), 0);
    long long b2 = create_run("rfm", default_params(params, sizeof(params)), 1);
    wait_status(b2, "succeeded", 30000);
    ck_assert_int_ne(analytics_oid(), oid2);
    oid2 = analytics_oid();
    wait_cleanup_done();
    ck_assert_int_eq(sql_ll("SELECT count(*) FROM pg_class WHERE relname = 'customer_analytics_retired_%lld'", b2), 1);
    conn_ok(reader, "COMMIT");

    /* Held through every attempt: the run upserts into the same table instead, which a reader does not hold up. */
    conn_ok(reader, "BEGIN");
    ck_assert_int_gt(conn_ll(reader, "SELECT count(*) FROM customer_analytics"), 0);
    long long c = create_run("rfm", default_params(params, sizeof(params)), 1);
    wait_status(c, "succeeded", 30000);
    wait_cleanup_done(); /* which also dropped the table left behind above */
    ck_assert_int_eq(conn_ll(reader, "SELECT count(*) FROM customer_analytics"),
                     sql_ll("SELECT count(*) FROM customer_analytics_history WHERE run_id = %lld", b));
    conn_ok(reader, "COMMIT");
    ck_assert_int_eq(sql_ll("SELECT count(*) FROM pg_class WHERE relname ~ '^customer_analytics_(next|retired)_'"), 0);
    assert_run_matches(c, &o);
    ck_assert_int_eq(analytics_oid(), oid2);
    ck_assert_int_eq(sql_ll("SELECT count(*) FROM customer_analytics WHERE run_id <> %lld", c), 0);

    /*
     * Staged tables left behind by interrupted writes (committed on the side
     * connection): the clean-up drops those of runs no longer running and
     * keeps that of a run still running, whose write may yet swap it in.
     */
    long long running = sql_ll("INSERT INTO analytics_runs (kind, params, status) VALUES ('rfm', '{}', 'running')"
                               " RETURNING id");
    snprintf(sql, sizeof(sql),
             "SELECT customer_analytics_stage('customer_analytics_next_%lld_0a', %lld);"
             " SELECT customer_analytics_seal('customer_analytics_next_%lld_0a', 1000);"
             " SELECT customer_analytics_stage('customer_analytics_next_%lld_0b', %lld);"
             " SELECT customer_analytics_seal('customer_analytics_next_%lld_0b', 1000)",
             c, c, c, running, running, running);
    ck_assert_int_eq(th_sql(wdb, sql), 0);
    long long d = create_run("rfm", default_params(params, sizeof(params)), 1);
    wait_status(d, "succeeded", 30000);
    wait_cleanup_done();
    char left[256], want[96];
    sql_text(left, sizeof(left),
             "SELECT string_agg(relname, ',') FROM pg_class"
             " WHERE relname ~ '^customer_analytics_(next|retired)_' AND relkind = 'r'");
    snprintf(want, sizeof(want), "customer_analytics_next_%lld_0b", running);
    ck_assert_str_eq(left, want);
    ck_assert_int_eq(sql_ll("WITH u AS (UPDATE analytics_runs SET status = 'failed' WHERE id = %lld RETURNING 1)"
                            " SELECT count(*) FROM u",
                            running),
                     1);
    ck_assert_int_eq(sql_ll("SELECT customer_analytics_drop_retired(1000)"), 0);
    ck_assert_int_eq(sql_ll("SELECT count(*) FROM pg_class WHERE relname ~ '^customer_analytics_(next|retired)_'"), 0);
    assert_run_matches(d, &o);
    PQfinish(reader);
    ck_assert(wait_settled(5000));
    worker_stop_ok(&w);
}
END_TEST

/* The modes `c`'s session holds on customers, in alphabetical order, comma-separated ("" when none). */
static void conn_customer_locks(PGconn *c, char *out, size_t len)
{
    char sql[512];
    snprintf(sql, sizeof(sql),
             "SELECT coalesce(string_agg(mode, ',' ORDER BY mode), '') FROM pg_locks"
             " WHERE pid = %d AND relation = 'customers'::regclass AND granted",
             PQbackendPID(c));
    ck_assert_msg(th_sql_value(wdb, sql, out, len) == 0, "no row: %s", sql);
}

/* One single-row customer update in a session of its own; its milliseconds, or -1 when it failed. */
static long long timed_customer_write(PGconn *w, long long id)
{
    char sql[160];
    snprintf(sql, sizeof(sql), "UPDATE customers SET phone = '+49 30 %lld' WHERE id = %lld", th_now_ms() % 100000, id);
    long long t0 = th_now_ms();
    PGresult *r = PQexec(w, sql);
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    PQclear(r);
    return ok ? th_now_ms() - t0 : -1;
}

/*
 * Sealing the staged customer_analytics: its foreign key to customers is
 * added NOT VALID (a SHARE ROW EXCLUSIVE lock, for a catalog change, in a
 * transaction that commits at once), and validated in a transaction that
 * holds no lock on customers that a write waits for.
 */
START_TEST(staged_key_is_validated_without_blocking_customer_writes)
{
    const char *staged = "customer_analytics_next_999999_5ea1";
    char locks[256], sql[1024];
    PGconn *x = PQconnectdb(wdb), *w = PQconnectdb(wdb);
    ck_assert_int_eq(PQstatus(x), CONNECTION_OK);
    ck_assert_int_eq(PQstatus(w), CONNECTION_OK);
    conn_ok(w, "SET lock_timeout = '2s'");
    snprintf(sql, sizeof(sql),
             "BEGIN; SELECT customer_analytics_stage('%s', 999999);"
             " INSERT INTO %s (customer_id, segment, lifecycle) SELECT id, 'prospect', 'prospect' FROM customers",
             staged, staged);
    conn_ok(x, sql);
    snprintf(sql, sizeof(sql), "SELECT customer_analytics_seal('%s', 100)::int", staged);
    ck_assert_int_eq(conn_ll(x, sql), 1);
    conn_ok(x, "COMMIT");
    snprintf(
        sql, sizeof(sql),
        "SELECT count(*) FROM pg_constraint WHERE conrelid = '%s'::regclass AND contype = 'f' AND NOT convalidated",
        staged);
    ck_assert_int_eq(sql_ll("%s", sql), 1);

    /* Validation, held open: customer writes go on. */
    snprintf(sql, sizeof(sql), "BEGIN; SELECT customer_analytics_validate('%s')", staged);
    conn_ok(x, sql);
    conn_customer_locks(x, locks, sizeof(locks));
    ck_assert_msg(strcmp(locks, "AccessShareLock,RowShareLock") == 0 || strcmp(locks, "RowShareLock") == 0 ||
                      strcmp(locks, "AccessShareLock") == 0,
                  "validation holds %s on customers", locks);
    long long ms = timed_customer_write(w, 1);
    ck_assert_msg(ms >= 0 && ms < 1000, "a customer write during validation took %lld ms", ms);
    conn_ok(x, "COMMIT");
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM pg_constraint WHERE conrelid = '%s'::regclass AND contype = 'f' AND convalidated",
             staged);
    ck_assert_int_eq(sql_ll("%s", sql), 1);

    /* An open customer write keeps the key's lock away: the seal gives up within its attempts, keyless. */
    snprintf(sql, sizeof(sql), "SELECT customer_analytics_drop_retired(1000)");
    ck_assert_int_eq(sql_ll("%s", sql), 0);
    snprintf(sql, sizeof(sql),
             "BEGIN; SELECT customer_analytics_stage('%s', 999999);"
             " INSERT INTO %s (customer_id, segment, lifecycle) SELECT id, 'prospect', 'prospect' FROM customers",
             staged, staged);
    conn_ok(x, sql);
    conn_ok(w, "BEGIN");
    ck_assert_int_ge(timed_customer_write(w, 2), 0);
    long long t0 = th_now_ms();
    snprintf(sql, sizeof(sql), "SELECT customer_analytics_seal('%s', 100)::int", staged);
    ck_assert_int_eq(conn_ll(x, sql), 0);
    ck_assert_int_lt(th_now_ms() - t0, 5000);
    conn_ok(x, "COMMIT");
    conn_ok(w, "COMMIT");
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM pg_constraint WHERE conrelid = '%s'::regclass AND contype = 'f'",
             staged);
    ck_assert_int_eq(sql_ll("%s", sql), 0);
    ck_assert_int_eq(sql_ll("SELECT customer_analytics_drop_retired(1000)"), 0);
    PQfinish(w);
    PQfinish(x);
}
END_TEST

/*
 * A full run while a customer write stays open (its transaction holds
 * customers in ROW EXCLUSIVE mode): the run's foreign key cannot get its lock,
 * so it gives up within its bounded attempts and the run upserts, with the
 * same results; meanwhile other customer writes never wait long behind it.
 */
START_TEST(full_run_never_holds_customer_writes)
{
    th_api_t w;
    char params[512], sql[128];
    oracle_t o = {AS_OF, 0, NULL, 30, 90, 180, "0.80", "0.95"};
    PGconn *open_write = PQconnectdb(wdb), *writer = PQconnectdb(wdb);
    ck_assert_int_eq(PQstatus(open_write), CONNECTION_OK);
    ck_assert_int_eq(PQstatus(writer), CONNECTION_OK);
    conn_ok(writer, "SET lock_timeout = '3s'");
    conn_ok(open_write, "BEGIN");
    ck_assert_int_ge(timed_customer_write(open_write, 1), 0);

    worker_start(&w, "w-writes");
    long long run = create_run("rfm", default_params(params, sizeof(params)), 1);
    snprintf(sql, sizeof(sql), "SELECT status FROM analytics_runs WHERE id = %lld", run);
    long long t0 = th_now_ms(), worst = 0, writes = 0;
    char status[64] = "";
    while (th_now_ms() - t0 < 30000) {
        long long ms = timed_customer_write(writer, 2 + writes % 500);
        ck_assert_msg(ms >= 0, "a customer write failed during the run: %s", PQerrorMessage(writer));
        worst = ms > worst ? ms : worst;
        writes++;
        ck_assert_int_eq(th_sql_value(wdb, sql, status, sizeof(status)), 0);
        if (strcmp(status, "succeeded") == 0 || strcmp(status, "failed") == 0)
            break;
        usleep(5 * 1000);
    }
    ck_assert_msg(strcmp(status, "succeeded") == 0, "run %lld is %s after 30 s with a customer write open", run,
                  status);
    ck_assert_msg(worst < 1000, "the longest of %lld customer writes during the run took %lld ms", writes, worst);
    conn_ok(open_write, "COMMIT");
    wait_cleanup_done();
    assert_run_matches(run, &o);
    ck_assert_int_eq(sql_ll("SELECT count(*) FROM pg_class WHERE relname ~ '^customer_analytics_(next|retired)_'"), 0);
    PQfinish(writer);
    PQfinish(open_write);
    ck_assert(wait_settled(5000));
    worker_stop_ok(&w);
}
END_TEST

/* --- (d) cancel ------------------------------------------------------------------------ */

START_TEST(cancelled_run_writes_nothing_and_frees_the_worker)
{
    th_api_t w;
    char params[512], sql[256];
    PGconn *lock = orders_lock();
    worker_start(&w, "w-cancel");
    long long run = create_run("rfm", default_params(params, sizeof(params)), 1);
    snprintf(sql, sizeof(sql),
             "SELECT status || ' ' || (customers_total IS NOT NULL) FROM analytics_runs WHERE id = %lld", run);
    ck_assert(wait_value(sql, "running true", 10000) >= 0);
    usleep(300 * 1000);

    /* What DELETE /v1/analytics/runs/{id} does. */
    long long t0 = th_now_ms();
    ck_assert_int_eq(sql_ll("WITH u AS (UPDATE analytics_runs SET status = 'cancelled', finished_at = now(),"
                            " updated_at = now() WHERE id = %lld AND status IN ('queued', 'running') RETURNING 1)"
                            " SELECT count(*) FROM u",
                            run),
                     1);
    /* Within 2 s the worker has let go: entry acknowledged, no statement of its job left running. */
    ck_assert(wait_settled(2000));
    ck_assert(wait_value("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'clientele-worker-job'"
                         " AND datname = current_database() AND state = 'active'",
                         "0", 2000) >= 0);
    ck_assert_int_le(th_now_ms() - t0, 2000);
    orders_unlock(lock);
    usleep(1000 * 1000);
    ck_assert_int_eq(sql_ll("SELECT count(*) FROM analytics_runs WHERE id = %lld AND status = 'cancelled'", run), 1);
    ck_assert_int_eq(sql_ll("SELECT count(*) FROM customer_analytics_history"), 0);
    ck_assert_int_eq(sql_ll("SELECT count(*) FROM customer_analytics"), 0);

    /* The worker is idle and takes the next run. */
    long long next = create_run("rfm", default_params(params, sizeof(params)), 1);
    wait_status(next, "succeeded", 30000);
    worker_stop_ok(&w);
}
END_TEST

START_TEST(cancel_during_the_write_rolls_it_back)
{
    th_api_t w;
    char params[512];
    /*
     * The run stops in its write: its history rows went in, and building the
     * new customer_analytics beside them (on the job's side connection) waits
     * for customer_analytics's definition.
     */
    PGconn *lock = PQconnectdb(wdb);
    ck_assert_int_eq(PQstatus(lock), CONNECTION_OK);
    PGresult *r = PQexec(lock, "BEGIN; LOCK TABLE customer_analytics IN ACCESS EXCLUSIVE MODE");
    ck_assert_int_eq(PQresultStatus(r), PGRES_COMMAND_OK);
    PQclear(r);
    worker_start(&w, "w-cancel-write");
    long long run = create_run("rfm", default_params(params, sizeof(params)), 1);
    ck_assert(wait_value("SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'clientele-worker-job%'"
                         " AND datname = current_database() AND wait_event_type = 'Lock'",
                         "1", 10000) >= 0);
    long long t0 = th_now_ms();
    ck_assert_int_eq(sql_ll("WITH u AS (UPDATE analytics_runs SET status = 'cancelled', finished_at = now(),"
                            " updated_at = now() WHERE id = %lld AND status IN ('queued', 'running') RETURNING 1)"
                            " SELECT count(*) FROM u",
                            run),
                     1);
    ck_assert(wait_settled(2000));
    ck_assert_int_le(th_now_ms() - t0, 2000);
    orders_unlock(lock);
    usleep(500 * 1000);
    ck_assert_int_eq(sql_ll("SELECT count(*) FROM analytics_runs WHERE id = %lld AND status = 'cancelled'", run), 1);
    ck_assert_int_eq(sql_ll("SELECT count(*) FROM customer_analytics_history"), 0);
    ck_assert_int_eq(sql_ll("SELECT count(*) FROM customer_analytics"), 0);
    ck_assert_int_eq(sql_ll("SELECT count(*) FROM pg_class WHERE relname ~ '^customer_analytics_next_'"), 0);
    worker_stop_ok(&w);
}
END_TEST

/* --- (e) a run published twice ----------------------------------------------------------------- */

START_TEST(duplicate_message_is_processed_once)
{
    th_api_t w1, w2;
    char params[512];
    worker_start(&w1, "w-dup1");
    worker_start(&w2, "w-dup2");
    long long population = sql_ll("SELECT count(*) FROM customers WHERE deleted_at IS NULL");
    long long run = create_run("rfm", default_params(params, sizeof(params)), 2);
    wait_status(run, "succeeded", 30000);
    ck_assert(wait_settled(5000));
    ck_assert_int_eq(stream_length(), 2);
    ck_assert_int_eq(sql_ll("SELECT count(*) FROM outbox WHERE published_at IS NOT NULL"), 2);
    usleep(500 * 1000);
    ck_assert_int_eq(sql_ll("SELECT attempts FROM analytics_runs WHERE id = %lld", run), 1);
    ck_assert_int_eq(sql_ll("SELECT count(*) FROM customer_analytics_history WHERE run_id = %lld", run), population);
    /* A run that already succeeded, published again, changes nothing. */
    char before[64], after[64];
    sql_text(before, sizeof(before), "SELECT finished_at FROM analytics_runs WHERE id = %lld", run);
    ck_assert_int_eq(sql_ll("WITH o AS (INSERT INTO outbox (topic, payload) VALUES ('runs', json_build_object("
                            "'run_id', %lld)) RETURNING 1) SELECT count(*) FROM o",
                            run),
                     1);
    ck_assert(wait_value("SELECT count(*) FROM outbox WHERE published_at IS NULL", "0", 5000) >= 0);
    ck_assert(wait_settled(5000));
    sql_text(after, sizeof(after), "SELECT finished_at FROM analytics_runs WHERE id = %lld", run);
    ck_assert_str_eq(before, after);
    ck_assert_int_eq(sql_ll("SELECT attempts FROM analytics_runs WHERE id = %lld", run), 1);
    worker_stop_ok(&w1);
    worker_stop_ok(&w2);
}
END_TEST

/* --- (g) SIGTERM ----------------------------------------------------------------------------- */

START_TEST(sigterm_stops_an_idle_worker_with_exit_0)
{
    th_api_t w;
    worker_start(&w, "w-term");
    long long t0 = th_now_ms();
    worker_stop_ok(&w);
    ck_assert_int_lt(th_now_ms() - t0, 5000);
}
END_TEST

START_TEST(sigterm_during_a_run_leaves_it_to_a_restart)
{
    th_api_t w;
    char params[512], sql[256];
    long long population = sql_ll("SELECT count(*) FROM customers WHERE deleted_at IS NULL");
    PGconn *lock = orders_lock();
    worker_start(&w, "w-restart");
    long long run = create_run("rfm", default_params(params, sizeof(params)), 1);
    snprintf(sql, sizeof(sql),
             "SELECT status || ' ' || (customers_total IS NOT NULL) FROM analytics_runs WHERE id = %lld", run);
    ck_assert(wait_value(sql, "running true", 10000) >= 0);

    long long t0 = th_now_ms();
    worker_stop_ok(&w);
    ck_assert_int_lt(th_now_ms() - t0, 5000);
    orders_unlock(lock);
    usleep(500 * 1000);
    /* Nothing written, nothing marked: the run waits, its entry pending. */
    ck_assert_int_eq(sql_ll("SELECT count(*) FROM analytics_runs WHERE id = %lld AND status = 'running'", run), 1);
    ck_assert_int_eq(sql_ll("SELECT count(*) FROM customer_analytics_history"), 0);
    ck_assert_int_eq(pending_entries(), 1);

    /* The same worker, restarted, resumes its own pending entry at once. */
    worker_start(&w, "w-restart");
    wait_status(run, "succeeded", 30000);
    ck_assert_int_eq(sql_ll("SELECT attempts FROM analytics_runs WHERE id = %lld", run), 2);
    ck_assert_int_eq(sql_ll("SELECT count(*) FROM customer_analytics_history WHERE run_id = %lld", run), population);
    ck_assert(wait_settled(5000));
    worker_stop_ok(&w);
}
END_TEST

static Suite *worker_suite(void)
{
    Suite *s = suite_create("worker");
    TCase *tc = tcase_create("runs");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, results_equal_the_definitions);
    tcase_add_test(tc, failures_are_recorded_and_acknowledged);
    tcase_add_test(tc, lost_database_connection_fails_the_run_with_a_reason);
    tcase_add_test(tc, killed_worker_run_is_taken_over);
    tcase_add_test(tc, run_requested_while_redis_is_down_completes_later);
    tcase_add_test(tc, runs_lost_with_redis_data_are_published_again);
    tcase_add_test(tc, full_runs_swap_customer_analytics);
    tcase_add_test(tc, staged_key_is_validated_without_blocking_customer_writes);
    tcase_add_test(tc, full_run_never_holds_customer_writes);
    tcase_add_test(tc, cancelled_run_writes_nothing_and_frees_the_worker);
    tcase_add_test(tc, cancel_during_the_write_rolls_it_back);
    tcase_add_test(tc, duplicate_message_is_processed_once);
    tcase_add_test(tc, sigterm_stops_an_idle_worker_with_exit_0);
    tcase_add_test(tc, sigterm_during_a_run_leaves_it_to_a_restart);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(worker_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
