/*
 * tests/integration/scheduler_test.c - the worker's scheduler against real PostgreSQL and Redis.
 *
 * Two schedulers ("worker-a" and "worker-b", each with its own database
 * pool and Redis client, as two workers would have) run on one h2o evloop
 * that the test drives by hand between its blocking checks. The module is
 * compiled in by including its sources (the integration tests link only
 * libcommon.a), which also lets a test force both schedulers to lead at
 * once. Each test runs in Check's forked child and builds and frees the
 * whole set-up, so LeakSanitizer checks every test's exit.
 */
#include "../../worker/scheduler.c"
#include "../../worker/scheduler_db.c"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>
#include <hiredis/hiredis.h>

#include "tests/support/harness.h"

#define REDIS_DB 7
#define PASSWORD "scheduler-test-password-1"

static char db_url[256];
static long long uid; /* created_by of every schedule */

static struct {
    h2o_evloop_t *loop;
    db_t *db[2];
    kv_t *kv[2];
    wk_scheduler_t *s[2];
    int both_led; /* set when both schedulers were seen leading at once */
} fx;

static const char *const names[2] = {"worker-a", "worker-b"};
/* The zones the schedulers look up (loaded once in main, like worker/main.c does). */
static tzdb_t *zones;

/* --- helpers ----------------------------------------------------------------- */

static int redis_port(void)
{
    const char *p = getenv("STACK_REDIS_PORT");
    return p != NULL ? atoi(p) : 56379;
}

/* Runs one Redis command synchronously on the suite's database; returns the reply (freeReplyObject it) or NULL. */
static redisReply *redis_sync(const char *cmd, const char *arg)
{
    redisContext *c = redisConnect("127.0.0.1", redis_port());
    if (c == NULL || c->err) {
        if (c != NULL)
            redisFree(c);
        return NULL;
    }
    redisReply *r = redisCommand(c, "SELECT %d", REDIS_DB);
    if (r != NULL)
        freeReplyObject(r);
    r = redisCommand(c, "%s %s", cmd, arg);
    redisFree(c);
    return r;
}

/* The lock's value copied into buf ("" when there is no lock). */
static const char *lock_holder(char *buf, size_t len)
{
    redisReply *r = redis_sync("GET", LOCK_KEY);
    snprintf(buf, len, "%s", r != NULL && r->type == REDIS_REPLY_STRING ? r->str : "");
    if (r != NULL)
        freeReplyObject(r);
    return buf;
}

static int leaders(void)
{
    return (fx.s[0] != NULL && fx.s[0]->leader) + (fx.s[1] != NULL && fx.s[1]->leader);
}

/* Runs the loop for ms milliseconds, watching that at most one scheduler leads. */
static void pump(int ms)
{
    long long until = th_now_ms() + ms;
    while (th_now_ms() < until) {
        h2o_evloop_run(fx.loop, 20);
        if (leaders() > 1)
            fx.both_led = 1;
    }
}

static long long q_ll(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static long long q_ll(const char *fmt, ...)
{
    char sql[2048], out[64];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(sql, sizeof(sql), fmt, ap);
    va_end(ap);
    if (th_sql_value(db_url, sql, out, sizeof(out)) != 0)
        return -1;
    return atoll(out);
}

static int q_true(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int q_true(const char *fmt, ...)
{
    char sql[2048], out[64];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(sql, sizeof(sql), fmt, ap);
    va_end(ap);
    return th_sql_value(db_url, sql, out, sizeof(out)) == 0 && strcmp(out, "t") == 0;
}

static void exec_sql(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void exec_sql(const char *fmt, ...)
{
    char sql[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(sql, sizeof(sql), fmt, ap);
    va_end(ap);
    ck_assert_msg(th_sql(db_url, sql) == 0, "failed: %s", sql);
}

/* Pumps the loop until the count query answers `want` or ms pass; returns the last count. */
static long long wait_count(long long want, int ms, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static long long wait_count(long long want, int ms, const char *fmt, ...)
{
    char sql[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(sql, sizeof(sql), fmt, ap);
    va_end(ap);
    long long until = th_now_ms() + ms, n;
    for (;;) {
        n = q_ll("%s", sql);
        if (n == want || th_now_ms() >= until)
            return n;
        pump(100);
    }
}

/* Pumps until exactly one scheduler leads; returns its index, or -1 after ms. */
static int wait_leader(int ms)
{
    long long until = th_now_ms() + ms;
    while (th_now_ms() < until) {
        pump(50);
        if (leaders() == 1)
            return fx.s[0] != NULL && fx.s[0]->leader ? 0 : 1;
    }
    return -1;
}

/* Inserts a schedule created by uid; next_expr is an SQL expression. Returns its id. */
static long long add_schedule(const char *cron, const char *zone, const char *params, const char *next_expr,
                              int enabled)
{
    long long id =
        q_ll("INSERT INTO analytics_schedules (kind, cron, timezone, params, enabled, next_run_at, created_by)"
             " VALUES ('rfm', '%s', '%s', '%s', %s, %s, %lld) RETURNING id",
             cron, zone, params, enabled ? "true" : "false", next_expr, uid);
    ck_assert_int_gt(id, 0);
    return id;
}

static long long runs_of(long long sid)
{
    return q_ll("SELECT count(*) FROM analytics_runs WHERE schedule_id = %lld", sid);
}

/* Every run of the schedule has an outbox message naming it, and there are no others for it. */
static void assert_outbox_matches_runs(long long sid)
{
    long long runs = runs_of(sid);
    ck_assert_int_eq(q_ll("SELECT count(*) FROM outbox o JOIN analytics_runs r ON r.id = (o.payload->>'run_id')::bigint"
                          " WHERE o.topic = 'runs' AND r.schedule_id = %lld",
                          sid),
                     runs);
    ck_assert_int_eq(q_ll("SELECT count(*) FROM outbox WHERE topic = 'runs' AND (payload->>'run_id')::bigint IN"
                          " (SELECT id FROM analytics_runs WHERE schedule_id = %lld)",
                          sid),
                     runs);
}

/* A schedule column as microseconds since the epoch. */
static long long schedule_us(long long sid, const char *column)
{
    return q_ll("SELECT (extract(epoch FROM %s) * 1000000)::bigint FROM analytics_schedules WHERE id = %lld", column,
                sid);
}

static long long runs_at(long long sid, long long due_us)
{
    return q_ll("SELECT count(*) FROM analytics_runs WHERE schedule_id = %lld"
                " AND due_at = timestamptz 'epoch' + %lld * interval '1 microsecond'",
                sid, due_us);
}

/*
 * The invariants of a schedule's runs, whatever the clock did during the
 * test (a minute may turn, and then a "* * * * *" schedule legitimately
 * fires once more): one run per due time, each with as_of = due_at and
 * requested by the schedule's creator, the schedule's last run being the
 * last one enqueued, and next_run_at a whole minute after it that is not in a
 * past minute.
 */
static void assert_schedule_consistent(long long sid)
{
    ck_assert_int_eq(q_ll("SELECT count(DISTINCT due_at) FROM analytics_runs WHERE schedule_id = %lld", sid),
                     runs_of(sid));
    ck_assert_int_eq(q_ll("SELECT count(*) FROM analytics_runs WHERE schedule_id = %lld"
                          " AND ((params->>'as_of')::timestamptz <> due_at OR requested_by IS DISTINCT FROM %lld"
                          " OR status <> 'queued' OR kind <> 'rfm')",
                          sid, uid),
                     0);
    ck_assert(q_true("SELECT s.last_run_at = r.due_at AND s.last_run_id = r.id AND s.next_run_at > r.due_at"
                     " AND s.next_run_at = date_trunc('minute', s.next_run_at)"
                     " AND s.next_run_at >= date_trunc('minute', now()) AND s.next_run_at <= now() + interval '1 hour'"
                     " FROM analytics_schedules s JOIN analytics_runs r ON r.schedule_id = s.id"
                     " WHERE s.id = %lld ORDER BY r.id DESC LIMIT 1",
                     sid));
    assert_outbox_matches_runs(sid);
}

/* --- fixture ----------------------------------------------------------------- */

static void open_worker(int i)
{
    /* As the worker connects: as its own role. */
    static char svc_url[512];
    db_config_t dbconf = {.conninfo = th_db_url_as(db_url, "clientele_worker", svc_url, sizeof(svc_url)),
                          .app_name = "scheduler-test",
                          .pool_size = 2,
                          .queue_max = 64,
                          .timeout_ms = 5000,
                          .role = "clientele_worker"};
    kv_config_t kvconf = {.host = "127.0.0.1", .port = redis_port(), .db = REDIS_DB, .timeout_ms = 1000};
    fx.db[i] = db_open(fx.loop, &dbconf);
    fx.kv[i] = kv_open(fx.loop, &kvconf);
    fx.s[i] = wk_scheduler_new(fx.loop, fx.db[i], fx.kv[i], zones, names[i], NULL);
}

/* What worker/main.c does at shutdown: free the scheduler, let the loop send its last command, close. */
static void close_worker(int i)
{
    if (fx.s[i] != NULL)
        wk_scheduler_free(fx.s[i]);
    fx.s[i] = NULL;
    h2o_evloop_run(fx.loop, 0);
    if (fx.db[i] != NULL)
        db_close(fx.db[i]);
    if (fx.kv[i] != NULL)
        kv_close(fx.kv[i]);
    fx.db[i] = NULL;
    fx.kv[i] = NULL;
}

static void setup(void)
{
    memset(&fx, 0, sizeof(fx));
    if (th_sql(db_url, "TRUNCATE analytics_runs, outbox, analytics_schedules RESTART IDENTITY CASCADE") != 0)
        ck_abort_msg("could not empty the tables");
    redisReply *r = redis_sync("DEL", LOCK_KEY);
    if (r != NULL)
        freeReplyObject(r);
    fx.loop = h2o_evloop_create();
    open_worker(0);
    open_worker(1);
}

static void teardown(void)
{
    close_worker(0);
    close_worker(1);
    h2o_evloop_run(fx.loop, 0); /* lets the loop free closed sockets */
    h2o_evloop_destroy(fx.loop);
}

/* --- tests ------------------------------------------------------------------- */

START_TEST(each_due_time_yields_one_run)
{
    long long sid = add_schedule("* * * * *", "UTC", "{\"new_days\": 45}", "now() - interval '5.25 seconds'", 1);
    long long due1 = schedule_us(sid, "next_run_at");
    ck_assert_int_eq(wait_count(1, 5000, "SELECT count(*) FROM analytics_runs WHERE schedule_id = %lld", sid), 1);
    pump(1500); /* more passes, by whichever leads */
    ck_assert_int_eq(runs_at(sid, due1), 1);
    /* Complete params: the schedule's own, the defaults, and as_of = the due time (to the microsecond). */
    ck_assert(q_true("SELECT params->>'new_days' = '45' AND params->>'b_share' = '0.95' AND params ? 'churn_days'"
                     " AND (params->>'as_of')::timestamptz = due_at FROM analytics_runs WHERE schedule_id = %lld"
                     " AND due_at = timestamptz 'epoch' + %lld * interval '1 microsecond'",
                     sid, due1));
    assert_schedule_consistent(sid);

    /* Force a second due time: one more run, for that time. */
    exec_sql("UPDATE analytics_schedules SET next_run_at = now() - interval '2.5 seconds' WHERE id = %lld", sid);
    long long due2 = schedule_us(sid, "next_run_at");
    ck_assert_int_eq(wait_count(1, 5000,
                                "SELECT count(*) FROM analytics_runs WHERE schedule_id = %lld"
                                " AND due_at = timestamptz 'epoch' + %lld * interval '1 microsecond'",
                                sid, due2),
                     1);
    pump(1500);
    ck_assert_int_eq(runs_at(sid, due1), 1);
    ck_assert_int_eq(runs_at(sid, due2), 1);
    /* Anything else can only be a minute that began during the test. */
    ck_assert_int_eq(q_ll("SELECT count(*) FROM analytics_runs WHERE schedule_id = %lld AND due_at NOT IN"
                          " (timestamptz 'epoch' + %lld * interval '1 microsecond',"
                          "  timestamptz 'epoch' + %lld * interval '1 microsecond')"
                          " AND (due_at <> date_trunc('minute', due_at) OR due_at < now() - interval '30 seconds')",
                          sid, due1, due2),
                     0);
    assert_schedule_consistent(sid);
    ck_assert_int_eq(q_ll("SELECT count(*) FROM outbox"), runs_of(sid));
    ck_assert_int_eq(fx.both_led, 0);
}
END_TEST

START_TEST(two_leaders_at_once_still_yield_one_run_per_due_time)
{
    /* Both act as leaders, bypassing the lock: only the database's guards stand between them. */
    for (int i = 0; i < 2; i++) {
        fx.s[i]->leader = 1;
        fx.s[i]->lease_until = UINT64_MAX;
        fx.s[i]->next_elect = UINT64_MAX;
    }
    long long sid = add_schedule("* * * * *", "UTC", "{}", "now() + interval '1 hour'", 1);
    const int rounds = 6;
    long long due[6];
    for (int k = 0; k < rounds; k++) {
        exec_sql("UPDATE analytics_schedules SET next_run_at = now() - interval '%d seconds' WHERE id = %lld",
                 100 - 10 * k, sid);
        due[k] = schedule_us(sid, "next_run_at");
        /* Both passes start in the same loop iteration, so both read the same due time. */
        start_pass(fx.s[0]);
        start_pass(fx.s[1]);
        long long until = th_now_ms() + 5000;
        while ((fx.s[0]->passing || fx.s[1]->passing) && th_now_ms() < until)
            h2o_evloop_run(fx.loop, 20);
        ck_assert_int_eq(runs_at(sid, due[k]), 1);
    }
    pump(1200);
    for (int k = 0; k < rounds; k++)
        ck_assert_int_eq(runs_at(sid, due[k]), 1);
    assert_schedule_consistent(sid);
    ck_assert_int_eq(q_ll("SELECT count(*) FROM outbox"), runs_of(sid));
}
END_TEST

START_TEST(missed_slots_collapse_into_one_run)
{
    /* Every worker was down through 10 minutely and 5 hourly slots. */
    long long sid =
        add_schedule("* * * * *", "Europe/Berlin", "{}", "date_trunc('minute', now()) - interval '10 minutes'", 1);
    long long hourly =
        add_schedule("0 * * * *", "America/New_York", "{}", "date_trunc('hour', now()) - interval '5 hours'", 1);
    long long due = schedule_us(sid, "next_run_at"), due_hourly = schedule_us(hourly, "next_run_at");
    long long start_us = q_ll("SELECT (extract(epoch FROM now()) * 1000000)::bigint");
    ck_assert_int_eq(wait_count(2, 5000,
                                "SELECT count(*) FROM analytics_runs WHERE due_at IN"
                                " (timestamptz 'epoch' + %lld * interval '1 microsecond',"
                                "  timestamptz 'epoch' + %lld * interval '1 microsecond')",
                                due, due_hourly),
                     2);
    pump(1500);
    /* One run for all the missed slots: the earliest, and none for the others. */
    ck_assert_int_eq(runs_at(sid, due), 1);
    ck_assert_int_eq(runs_at(hourly, due_hourly), 1);
    ck_assert_int_eq(q_ll("SELECT count(*) FROM analytics_runs WHERE due_at <= timestamptz 'epoch' + %lld * interval "
                          "'1 microsecond'",
                          start_us),
                     2);
    /* next_run_at moved past all of them, to the future. */
    assert_schedule_consistent(sid);
    assert_schedule_consistent(hourly);
    ck_assert(q_true("SELECT next_run_at > timestamptz 'epoch' + %lld * interval '1 microsecond'"
                     " AND next_run_at = date_trunc('hour', next_run_at) FROM analytics_schedules WHERE id = %lld",
                     start_us, hourly));
    ck_assert(q_true("SELECT next_run_at > timestamptz 'epoch' + %lld * interval '1 microsecond'"
                     " FROM analytics_schedules WHERE id = %lld",
                     start_us, sid));
}
END_TEST

START_TEST(one_leader_and_fast_failover_when_it_is_freed)
{
    char holder[64];
    int l = wait_leader(5000);
    ck_assert_int_ge(l, 0);
    pump(3500); /* at least one renewal */
    ck_assert_int_eq(leaders(), 1);
    ck_assert(fx.s[l]->leader);
    ck_assert_str_eq(lock_holder(holder, sizeof(holder)), names[l]);
    ck_assert_int_eq(fx.both_led, 0);

    /* Freeing the leader releases the lock, so the other takes over at its next attempt (3 s), not at expiry. */
    long long t0 = th_now_ms();
    close_worker(l);
    /* Redis may not have run the release yet when our own connection asks; give it a moment (no pumping). */
    for (int i = 0; i < 50 && lock_holder(holder, sizeof(holder))[0] != '\0'; i++)
        usleep(10 * 1000);
    ck_assert_str_eq(holder, "");
    int other = wait_leader(5000);
    long long took = th_now_ms() - t0;
    ck_assert_int_eq(other, 1 - l);
    ck_assert_msg(took < 4500, "took over after %lld ms", took);
    ck_assert_str_eq(lock_holder(holder, sizeof(holder)), names[other]);

    /* And it enqueues. */
    long long sid = add_schedule("0 0 1 1 *", "UTC", "{}", "now() - interval '1 second'", 1);
    ck_assert_int_eq(wait_count(1, 4000, "SELECT count(*) FROM analytics_runs WHERE schedule_id = %lld", sid), 1);
    assert_outbox_matches_runs(sid);
    ck_assert_int_eq(fx.both_led, 0);
}
END_TEST

START_TEST(disabled_and_broken_schedules_yield_nothing)
{
    long long disabled = add_schedule("* * * * *", "UTC", "{}", "'2020-01-01T00:00:00Z'", 0);
    long long bad_cron = add_schedule("61 * * * *", "UTC", "{}", "now() - interval '1 minute'", 1);
    long long bad_zone = add_schedule("* * * * *", "Mars/Olympus_Mons", "{}", "now() - interval '1 minute'", 1);
    long long bad_params = add_schedule("* * * * *", "UTC", "{\"bogus\": 1}", "now() - interval '1 minute'", 1);
    long long bad_value = add_schedule("* * * * *", "UTC", "{\"a_share\": \"0.99\"}", "now() - interval '1 minute'", 1);
    long long no_next = add_schedule("0 3 * * *", "Asia/Tokyo", "{}", "NULL", 1);
    long long good = add_schedule("0 0 1 1 *", "UTC", "{}", "now() - interval '1 minute'", 1);
    ck_assert_int_eq(wait_count(1, 5000, "SELECT count(*) FROM analytics_runs WHERE schedule_id = %lld", good), 1);
    pump(2200); /* two more passes over the broken ones */
    ck_assert_int_eq(q_ll("SELECT count(*) FROM analytics_runs"), 1);
    ck_assert_int_eq(q_ll("SELECT count(*) FROM outbox"), 1);
    assert_outbox_matches_runs(good);
    ck_assert(q_true("SELECT next_run_at = '2020-01-01T00:00:00Z' AND last_run_at IS NULL AND version = 1"
                     " FROM analytics_schedules WHERE id = %lld",
                     disabled));
    ck_assert_int_eq(q_ll("SELECT count(*) FROM analytics_schedules WHERE id IN (%lld, %lld, %lld, %lld)"
                          " AND last_run_at IS NULL AND next_run_at < now() AND version = 1",
                          bad_cron, bad_zone, bad_params, bad_value),
                     4);
    /* A schedule without next_run_at gets one (03:00 in Tokyo), and no run. */
    ck_assert(q_true("SELECT next_run_at > now() AND next_run_at <= now() + interval '1 day'"
                     " AND extract(hour FROM next_run_at AT TIME ZONE 'Asia/Tokyo') = 3"
                     " AND extract(minute FROM next_run_at AT TIME ZONE 'Asia/Tokyo') = 0"
                     " AND last_run_at IS NULL FROM analytics_schedules WHERE id = %lld",
                     no_next));
}
END_TEST

/*
 * The scheduler never reads zoneinfo on its loop: it looks zones up in the
 * set loaded before the loop started. With a set holding only UTC, a
 * schedule in Asia/Tokyo (a zone the system has) stays without next_run_at
 * instead of being loaded from disk on first use.
 */
START_TEST(zones_come_only_from_the_set_loaded_before_the_loop)
{
    char dir[] = "/tmp/scheduler-zones-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "cp /usr/share/zoneinfo/UTC %s/UTC", dir);
    ck_assert_int_eq(system(cmd), 0);
    tzdb_t *only_utc = tzdb_open(dir);
    ck_assert_ptr_nonnull(tzdb_get(only_utc, "UTC"));
    ck_assert_ptr_null(tzdb_get(only_utc, "Asia/Tokyo"));
    close_worker(0);
    close_worker(1);
    tzdb_t *all = zones;
    zones = only_utc;
    open_worker(0);
    zones = all;
    long long tokyo = add_schedule("0 3 * * *", "Asia/Tokyo", "{}", "NULL", 1);
    long long utc = add_schedule("0 3 * * *", "UTC", "{}", "NULL", 1);
    ck_assert_int_eq(wait_count(1, 6000,
                                "SELECT count(*) FROM analytics_schedules WHERE id = %lld"
                                " AND next_run_at IS NOT NULL",
                                utc),
                     1);
    pump(1200);
    ck_assert(q_true("SELECT next_run_at IS NULL FROM analytics_schedules WHERE id = %lld", tokyo));
    close_worker(0);
    tzdb_close(only_utc);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    ck_assert_int_eq(system(cmd), 0);
}
END_TEST

START_TEST(nothing_is_enqueued_while_redis_is_down)
{
    int l = wait_leader(5000);
    ck_assert_int_ge(l, 0);

    ck_assert_int_eq(th_stack("redis-stop"), 0);
    pump(1500);
    int leaders_down = leaders();
    long long sid = add_schedule("0 0 1 1 *", "UTC", "{}", "now() - interval '3 seconds'", 1);
    pump(3000);
    long long runs_down = runs_of(sid);
    int restarted = th_stack("redis-start");
    /* Assert only once Redis is back, so that a failure here does not leave it stopped. */
    ck_assert_int_eq(restarted, 0);
    ck_assert_int_eq(leaders_down, 0);
    ck_assert_int_eq(runs_down, 0);

    /* The lock written before the stop may come back from the append-only file; it expires within 10 s. */
    ck_assert_int_ge(wait_leader(15000), 0);
    ck_assert_int_eq(wait_count(1, 4000, "SELECT count(*) FROM analytics_runs WHERE schedule_id = %lld", sid), 1);
    pump(1200);
    ck_assert_int_eq(runs_of(sid), 1);
    assert_outbox_matches_runs(sid);
    ck_assert_int_eq(fx.both_led, 0);
}
END_TEST

static Suite *scheduler_suite(void)
{
    Suite *s = suite_create("scheduler");
    TCase *tc = tcase_create("scheduler");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 40);
    tcase_add_test(tc, each_due_time_yields_one_run);
    tcase_add_test(tc, two_leaders_at_once_still_yield_one_run_per_due_time);
    tcase_add_test(tc, missed_slots_collapse_into_one_run);
    tcase_add_test(tc, one_leader_and_fast_failover_when_it_is_freed);
    tcase_add_test(tc, disabled_and_broken_schedules_yield_nothing);
    tcase_add_test(tc, nothing_is_enqueued_while_redis_is_down);
    tcase_add_test(tc, zones_come_only_from_the_set_loaded_before_the_loop);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    log_init(LOG_INFO, "scheduler-test");
    snprintf(db_url, sizeof(db_url), "%s", th_db_create("scheduler"));
    uid = th_user_add(db_url, "scheduler@example.com", "Scheduler", "admin", NULL, PASSWORD);
    zones = tzdb_open(NULL);

    SRunner *sr = srunner_create(scheduler_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    tzdb_close(zones);
    return failed == 0 ? 0 : 1;
}
