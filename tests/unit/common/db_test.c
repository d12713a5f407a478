/*
 * tests/unit/common/db_test.c - the state machine of common/db.c against
 * the test stack's PostgreSQL: connecting (names looked up off the loop, a
 * connect deadline, a socket re-opened on a reused descriptor number),
 * queries, a killed backend and a stopped server (reconnect with backoff,
 * recovery), the queue (full, wait timeout) and execution deadlines
 * (statement_timeout, and the client-side deadline that cancels instead of
 * closing the connection), statements prepared once per connection,
 * hundreds of them, and sessions (a pinned connection: cursors fetched in
 * steps, the cap on pinning, cancel and rollback on close, a lost
 * connection, shutdown), and pipeline mode (batches on one connection,
 * errors kept to their own statement, a failed PREPARE, joining a batch on
 * the wire, deadlines, lost connections and shutdown).
 *
 * Each test creates its own loop and pool and drives the loop itself.
 * Blocking calls (a side connection that kills backends, the stack
 * script) are fine here: the loop under test belongs to the test.
 */
#include <check.h>
#include <signal.h>
#include <stdio.h>

#include "../../../common/db.c"
#include "loopkit.h"

static h2o_loop_t *loop;
static char url[256];

/*
 * libpq's PQcancel, delayed by cancel_delay_ms (an executable's symbol wins
 * over the library's for the pool too): a cancel request that reaches the
 * server only after the statement it was meant for ended on its own.
 */
static _Atomic int cancel_delay_ms;

int PQcancel(PGcancel *cancel, char *errbuf, int errbufsize)
{
    static int (*real)(PGcancel *, char *, int);
    if (real == NULL)
        *(void **)&real = dlsym(RTLD_NEXT, "PQcancel");
    int ms = atomic_load(&cancel_delay_ms);
    if (ms > 0)
        usleep((useconds_t)ms * 1000);
    return real(cancel, errbuf, errbufsize);
}

static const char SQL_ADD[] = "SELECT $1::int + 1";
static const char SQL_PID[] = "SELECT pg_backend_pid()";
static const char SQL_SLEEP[] = "SELECT pg_sleep($1::float8)";

typedef struct st_res_t {
    int done, calls, err;
    char val[64];
    char rows[256]; /* the first column of every row, comma-separated */
    int ntuples;
    char sqlstate[8];
    long long at_ms;
} res_t;

static void on_res(void *data, const PGresult *res, int err)
{
    res_t *r = data;
    r->done = 1;
    r->calls++;
    r->err = err;
    if (res != NULL && PQresultStatus(res) == PGRES_TUPLES_OK) {
        r->ntuples = PQntuples(res);
        size_t len = 0;
        for (int i = 0; i < r->ntuples && len < sizeof(r->rows); i++)
            len +=
                (size_t)snprintf(r->rows + len, sizeof(r->rows) - len, "%s%s", i > 0 ? "," : "", PQgetvalue(res, i, 0));
    }
    r->at_ms = lk_now_ms();
    if (res != NULL && PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) > 0)
        snprintf(r->val, sizeof(r->val), "%s", PQgetvalue(res, 0, 0));
    const char *st = res != NULL ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    if (st != NULL)
        snprintf(r->sqlstate, sizeof(r->sqlstate), "%s", st);
}

static void setup(void)
{
    snprintf(url, sizeof(url), "postgresql://clientele@127.0.0.1:%d/clientele", lk_env_int("STACK_PG_PORT", 55532));
    loop = h2o_evloop_create();
}

static db_t *open_pool(const char *conninfo, int pool, int queue, int timeout_ms, int queue_timeout_ms)
{
    db_config_t conf = {.conninfo = conninfo,
                        .app_name = "db-test",
                        .pool_size = pool,
                        .queue_max = queue,
                        .timeout_ms = timeout_ms,
                        .queue_timeout_ms = queue_timeout_ms};
    return db_open(loop, &conf);
}

static int all_up(db_t *db, int ms)
{
    long long until = lk_now_ms() + ms;
    while (lk_now_ms() < until) {
        db_stats_t st;
        db_stats(db, &st);
        if (st.connections_up == db->pool_size)
            return 1;
        h2o_evloop_run(loop, 10);
    }
    return 0;
}

/* Runs one query to completion. */
static res_t query(db_t *db, const char *sql, const char *param)
{
    res_t r = {0};
    const char *params[1] = {param};
    ck_assert_int_eq(db_query(db, sql, param != NULL ? 1 : 0, params, on_res, &r), 0);
    ck_assert_msg(lk_run_until(loop, &r.done, 15000), "query did not finish");
    return r;
}

static void side_exec(const char *sql)
{
    PGconn *c = PQconnectdb(url);
    ck_assert_int_eq(PQstatus(c), CONNECTION_OK);
    PGresult *r = PQexec(c, sql);
    ck_assert_msg(PQresultStatus(r) == PGRES_TUPLES_OK || PQresultStatus(r) == PGRES_COMMAND_OK, "%s",
                  PQerrorMessage(c));
    PQclear(r);
    PQfinish(c);
}

static int stack(const char *cmd)
{
    char buf[128];
    snprintf(buf, sizeof(buf), "scripts/stack.sh %s >/dev/null 2>&1", cmd);
    return system(buf);
}

START_TEST(connects_and_queries)
{
    db_t *db = open_pool(url, 2, 8, 5000, 1000);
    ck_assert(all_up(db, 5000));
    res_t r = query(db, SQL_ADD, "41");
    ck_assert_int_eq(r.err, 0);
    ck_assert_str_eq(r.val, "42");
    db_stats_t st;
    db_stats(db, &st);
    ck_assert_uint_eq(st.connects, 2);
    ck_assert_int_eq(st.connections_busy, 0);
    db_close(db);
}
END_TEST

/* The session settings: UTC, the statement timeout, and JIT off only where asked (the API's pool). */
START_TEST(sessions_get_their_settings)
{
    for (int no_jit = 0; no_jit <= 1; no_jit++) {
        db_config_t conf = {.conninfo = url,
                            .app_name = "db-test",
                            .pool_size = 1,
                            .queue_max = 4,
                            .timeout_ms = 4321,
                            .queue_timeout_ms = 1000,
                            .no_jit = no_jit};
        db_t *db = db_open(loop, &conf);
        ck_assert(all_up(db, 5000));
        ck_assert_str_eq(query(db, "SELECT current_setting('TimeZone')", NULL).val, "UTC");
        ck_assert_str_eq(query(db, "SELECT current_setting('statement_timeout')", NULL).val, "4321ms");
        ck_assert_str_eq(query(db, "SELECT current_setting('jit')", NULL).val, no_jit ? "off" : "on");
        db_close(db);
    }
}
END_TEST

START_TEST(resolves_host_names_off_the_loop)
{
    /* A lookup that takes 400 ms must not stall the loop: libpq gets hostaddr, resolved elsewhere. */
    char conninfo[256];
    snprintf(conninfo, sizeof(conninfo), "host=%s port=%d user=clientele dbname=clientele", SLOW_NAME,
             lk_env_int("STACK_PG_PORT", 55532));
    lk_probe_t probe;
    lk_probe_start(&probe, loop);
    db_t *db = open_pool(conninfo, 2, 8, 5000, 1000);
    ck_assert(all_up(db, 5000));
    ck_assert_msg(probe.worst_ms < SLOW_MS / 2, "the loop stalled for %lld ms while connecting", probe.worst_ms);
    ck_assert_str_eq(PQhost(db->conns[0].pg), SLOW_NAME); /* kept for TLS verification */
    ck_assert_str_eq(PQhostaddr(db->conns[0].pg), "127.0.0.1");
    ck_assert_str_eq(query(db, SQL_ADD, "1").val, "2");
    lk_probe_stop(&probe);
    db_close(db);
}
END_TEST

START_TEST(localhost_gets_every_address_libpq_would_try)
{
    /* The server listens on 127.0.0.1 only; localhost may resolve to ::1 first. */
    char conninfo[256];
    snprintf(conninfo, sizeof(conninfo), "host=localhost port=%d user=clientele dbname=clientele",
             lk_env_int("STACK_PG_PORT", 55532));
    db_t *db = open_pool(conninfo, 1, 8, 5000, 1000);
    ck_assert_msg(all_up(db, 5000), "never connected to localhost");
    ck_assert_str_eq(PQhost(db->conns[0].pg), "localhost");
    ck_assert_str_eq(PQhostaddr(db->conns[0].pg), "127.0.0.1");
    db_close(db);
}
END_TEST

START_TEST(connect_has_a_deadline)
{
    /* libpq ignores connect_timeout in non-blocking mode: a server that never answers must not hold a connection. */
    int fd, port = lk_silent_listener(&fd);
    char conninfo[256];
    snprintf(conninfo, sizeof(conninfo), "host=127.0.0.1 port=%d user=clientele dbname=clientele connect_timeout=2",
             port);
    db_t *db = open_pool(conninfo, 1, 8, 5000, 1000);
    lk_run_for(loop, 2600);
    ck_assert_msg(db->conns[0].backoff >= 1, "the connect attempt was never given up");
    ck_assert_int_eq(db_is_up(db), 0);
    db_close(db);
    close(fd);
}
END_TEST

START_TEST(follows_libpq_to_a_new_socket_on_the_same_descriptor)
{
    /*
     * The first host refuses; libpq closes its socket and opens one for the
     * second host, which gets the same descriptor number. The watcher must
     * follow the new socket, not keep waiting on the dead one.
     */
    char conninfo[256];
    snprintf(conninfo, sizeof(conninfo), "host=127.0.0.1,127.0.0.1 port=%d,%d user=clientele dbname=clientele",
             lk_closed_port(), lk_env_int("STACK_PG_PORT", 55532));
    db_t *db = open_pool(conninfo, 1, 8, 5000, 1000);
    ck_assert_msg(all_up(db, 4000), "never connected through the second host");
    /* The watcher wraps the socket libpq uses now (a dead one would leave the loop spinning or deaf). */
    struct stat ours, libpqs;
    ck_assert_int_eq(fstat(h2o_socket_get_fd(db->conns[0].sock), &ours), 0);
    ck_assert_int_eq(fstat(PQsocket(db->conns[0].pg), &libpqs), 0);
    ck_assert_msg(ours.st_ino == libpqs.st_ino, "the watcher still wraps the refused socket");
    ck_assert_str_eq(query(db, SQL_ADD, "2").val, "3");
    db_close(db);
}
END_TEST

START_TEST(killed_backend_reconnects)
{
    db_t *db = open_pool(url, 1, 8, 5000, 1000);
    ck_assert(all_up(db, 5000));
    res_t before = query(db, SQL_PID, NULL);
    char sql[128];
    snprintf(sql, sizeof(sql), "SELECT pg_terminate_backend(%s)", before.val);
    side_exec(sql);
    /* The pool notices the lost connection on its own and re-opens it. */
    long long until = lk_now_ms() + 5000;
    db_stats_t st = {0};
    while (lk_now_ms() < until) {
        h2o_evloop_run(loop, 10);
        db_stats(db, &st);
        if (st.connects == 2 && st.connections_up == 1)
            break;
    }
    ck_assert_uint_eq(st.connects, 2);
    res_t after = query(db, SQL_PID, NULL);
    ck_assert_int_eq(after.err, 0);
    ck_assert_str_ne(after.val, before.val);
    db_close(db);
}
END_TEST

START_TEST(stopped_server_fails_fast_backs_off_and_recovers)
{
    db_t *db = open_pool(url, 2, 8, 5000, 1000);
    ck_assert(all_up(db, 5000));
    ck_assert_int_eq(stack("pg-stop"), 0);
    lk_run_for(loop, 1500);
    ck_assert_int_eq(db_is_up(db), 0);
    /* Known down: refused at once instead of queued. */
    res_t r = {0};
    ck_assert_int_eq(db_query(db, SQL_ADD, 1, (const char *[]){"1"}, on_res, &r), ERR_UNAVAILABLE);
    ck_assert_msg(db->conns[0].backoff >= 2, "no backoff between attempts (step %u)", db->conns[0].backoff);
    ck_assert_int_eq(stack("pg-start"), 0);
    ck_assert_msg(all_up(db, 15000), "the pool did not recover after the server came back");
    ck_assert_str_eq(query(db, SQL_ADD, "5").val, "6");
    ck_assert_uint_eq(db->conns[0].backoff, 0);
    db_close(db);
}
END_TEST

START_TEST(full_queue_is_refused_at_once)
{
    db_t *db = open_pool(url, 1, 1, 5000, 5000);
    ck_assert(all_up(db, 5000));
    res_t a = {0}, b = {0}, c = {0};
    ck_assert_int_eq(db_query(db, SQL_SLEEP, 1, (const char *[]){"0.3"}, on_res, &a), 0);
    lk_run_for(loop, 50); /* a is running, the queue is empty */
    ck_assert_int_eq(db_query(db, SQL_SLEEP, 1, (const char *[]){"0"}, on_res, &b), 0);
    ck_assert_int_eq(db_query(db, SQL_SLEEP, 1, (const char *[]){"0"}, on_res, &c), ERR_UNAVAILABLE);
    ck_assert(lk_run_until(loop, &b.done, 5000));
    ck_assert_int_eq(a.err, 0);
    ck_assert_int_eq(b.err, 0);
    db_stats_t st;
    db_stats(db, &st);
    ck_assert_uint_eq(st.rejected, 1);
    db_close(db);
}
END_TEST

START_TEST(queue_wait_times_out_apart_from_execution)
{
    /* The wait has its own short deadline; the query already running is left alone. */
    db_t *db = open_pool(url, 1, 8, 5000, 200);
    ck_assert(all_up(db, 5000));
    res_t pid = query(db, SQL_PID, NULL), a = {0}, b = {0};
    long long t0 = lk_now_ms();
    ck_assert_int_eq(db_query(db, SQL_SLEEP, 1, (const char *[]){"0.8"}, on_res, &a), 0);
    ck_assert_int_eq(db_query(db, SQL_SLEEP, 1, (const char *[]){"0"}, on_res, &b), 0);
    ck_assert(lk_run_until(loop, &b.done, 5000));
    ck_assert_int_eq(b.err, ERR_UNAVAILABLE);
    ck_assert_int_lt(b.at_ms - t0, 700);
    ck_assert_int_eq(a.done, 0);
    ck_assert(lk_run_until(loop, &a.done, 5000));
    ck_assert_int_eq(a.err, 0);
    ck_assert_str_eq(query(db, SQL_PID, NULL).val, pid.val);
    db_stats_t st;
    db_stats(db, &st);
    ck_assert_uint_eq(st.queue_timeouts, 1);
    ck_assert_uint_eq(st.connects, 1);
    db_close(db);
}
END_TEST

START_TEST(statement_timeout_keeps_connection_and_statements)
{
    db_t *db = open_pool(url, 1, 8, 300, 1000);
    ck_assert(all_up(db, 5000));
    res_t pid = query(db, SQL_PID, NULL);
    ck_assert_str_eq(query(db, SQL_ADD, "1").val, "2");
    int nprepared = db->conns[0].nprepared;
    res_t r = query(db, SQL_SLEEP, "3");
    ck_assert_int_eq(r.err, ERR_TIMEOUT);
    ck_assert_str_eq(r.sqlstate, "57014");
    ck_assert_str_eq(query(db, SQL_PID, NULL).val, pid.val);
    ck_assert_str_eq(query(db, SQL_ADD, "2").val, "3");
    ck_assert_int_eq(db->conns[0].nprepared, nprepared + 1);
    /* The server agrees: the statements prepared before the timeout still exist. */
    static const char SQL_NPREP[] = "SELECT count(*) FROM pg_prepared_statements";
    ck_assert_int_ge(atoi(query(db, SQL_NPREP, NULL).val), nprepared + 1);
    db_stats_t st;
    db_stats(db, &st);
    ck_assert_uint_eq(st.connects, 1);
    ck_assert_uint_eq(st.exec_timeouts, 1);
    db_close(db);
}
END_TEST

START_TEST(client_deadline_cancels_instead_of_closing)
{
    /*
     * A backend that does not answer at all (stopped with SIGSTOP): the
     * server's statement_timeout cannot fire, so the client-side deadline
     * (timeout + 1 s) answers ERR_TIMEOUT and sends a cancel request from a
     * helper thread. Once the backend runs again it cancels the statement,
     * and the same connection serves the next query.
     */
    db_t *db = open_pool(url, 1, 8, 300, 1000);
    ck_assert(all_up(db, 5000));
    res_t pid = query(db, SQL_PID, NULL), r = {0};
    ck_assert_str_eq(query(db, SQL_SLEEP, "0").val, "");
    ck_assert_int_eq(kill((pid_t)atoi(pid.val), SIGSTOP), 0);
    long long t0 = lk_now_ms();
    ck_assert_int_eq(db_query(db, SQL_SLEEP, 1, (const char *[]){"0.1"}, on_res, &r), 0);
    lk_probe_t probe;
    lk_probe_start(&probe, loop);
    int done = lk_run_until(loop, &r.done, 5000);
    lk_probe_stop(&probe);
    kill((pid_t)atoi(pid.val), SIGCONT);
    ck_assert(done);
    ck_assert_int_eq(r.err, ERR_TIMEOUT);
    ck_assert_int_ge(r.at_ms - t0, 1200);
    ck_assert_msg(probe.worst_ms < 200, "the loop stalled for %lld ms", probe.worst_ms);
    ck_assert_str_eq(query(db, SQL_PID, NULL).val, pid.val);
    db_stats_t st;
    db_stats(db, &st);
    ck_assert_uint_eq(st.cancels, 1);
    ck_assert_uint_eq(st.connects, 1);
    db_close(db);
}
END_TEST

/*
 * A process prepares as many statements as its code has texts (a resource
 * engine generates hundreds at start-up): every one is prepared once per
 * connection, and every later run executes it by name.
 */
START_TEST(prepares_hundreds_of_statements_on_one_connection)
{
    enum { N = 320 };
    static char *texts[N]; /* generated once and kept, like static SQL text */
    for (int i = 0; i < N; i++)
        ck_assert_int_gt(asprintf(&texts[i], "SELECT $1::int + %d", i), 0);
    db_t *db = open_pool(url, 1, 8, 5000, 1000);
    ck_assert(all_up(db, 5000));
    db_stats_t st;
    for (int pass = 0; pass < 2; pass++) {
        for (int i = 0; i < N; i++) {
            res_t r = query(db, texts[i], "1000");
            ck_assert_int_eq(r.err, 0);
            ck_assert_int_eq(atoi(r.val), 1000 + i);
        }
        db_stats(db, &st);
        ck_assert_int_eq(st.prepared, N); /* the second pass prepared nothing */
    }
    /* The server ran each statement twice, both times in its prepared form. */
    static const char SQL_RUNS[] = "SELECT count(*) FILTER (WHERE generic_plans + custom_plans = 2), count(*) "
                                   "FROM pg_prepared_statements WHERE statement LIKE 'SELECT $1::int + %'";
    res_t r = {0};
    ck_assert_int_eq(db_query(db, SQL_RUNS, 0, NULL, on_res, &r), 0);
    ck_assert(lk_run_until(loop, &r.done, 5000));
    ck_assert_int_eq(r.err, 0);
    ck_assert_int_eq(atoi(r.val), N);
    db_stats(db, &st);
    ck_assert_int_eq(st.prepared, N + 1);

    /* A new session starts with none: the pool forgets them and prepares again. */
    res_t pid = query(db, SQL_PID, NULL);
    char sql[128];
    snprintf(sql, sizeof(sql), "SELECT pg_terminate_backend(%s)", pid.val);
    side_exec(sql);
    long long until = lk_now_ms() + 5000;
    do {
        h2o_evloop_run(loop, 10);
        db_stats(db, &st);
    } while (!(st.connects == 2 && st.connections_up == 1) && lk_now_ms() < until);
    ck_assert_int_eq(st.prepared, 0);
    ck_assert_int_eq(atoi(query(db, texts[N - 1], "1").val), N);
    db_stats(db, &st);
    ck_assert_int_eq(st.prepared, 1);
    db_close(db);
    for (int i = 0; i < N; i++)
        free(texts[i]);
}
END_TEST

/* --- sessions ----------------------------------------------------------- */

static const char SQL_BEGIN_RR[] = "BEGIN READ ONLY ISOLATION LEVEL REPEATABLE READ";
static const char SQL_DECLARE[] =
    "DECLARE c NO SCROLL CURSOR FOR SELECT id FROM db_test_rows WHERE id > $1 ORDER BY id";
static const char SQL_FETCH[] = "FETCH 4 FROM c";
static const char SQL_COMMIT[] = "COMMIT";

typedef struct st_opened_t {
    int done, calls, err;
    db_session_t *s;
} opened_t;

static void on_opened(void *data, db_session_t *s, int err)
{
    opened_t *o = data;
    o->done = 1;
    o->calls++;
    o->err = err;
    o->s = s;
}

static db_session_t *session_open(db_t *db)
{
    opened_t o = {0};
    ck_assert_int_eq(db_session_open(db, on_opened, &o), 0);
    ck_assert_int_eq(o.done, 0); /* never from inside db_session_open() */
    ck_assert_msg(lk_run_until(loop, &o.done, 5000), "no connection for the session");
    ck_assert_int_eq(o.err, 0);
    ck_assert_ptr_nonnull(o.s);
    return o.s;
}

/* Runs one statement of a session to completion. */
static res_t session_query(db_session_t *s, const char *sql, const char *param, unsigned flags)
{
    res_t r = {0};
    const char *params[1] = {param};
    ck_assert_int_eq(db_session_query(s, sql, param != NULL ? 1 : 0, params, flags, on_res, &r), 0);
    ck_assert_int_eq(r.done, 0); /* never from inside db_session_query() */
    ck_assert_msg(lk_run_until(loop, &r.done, 15000), "statement did not finish");
    ck_assert_int_eq(r.calls, 1);
    return r;
}

static db_stats_t stats(db_t *db)
{
    db_stats_t st;
    db_stats(db, &st);
    return st;
}

/* Runs the loop until no connection is pinned any more (the closed sessions cleaned up). */
static int unpinned(db_t *db, int ms)
{
    long long until = lk_now_ms() + ms;
    while (stats(db).pinned > 0 && lk_now_ms() < until)
        h2o_evloop_run(loop, 10);
    return stats(db).pinned == 0;
}

/*
 * Two queries sent together run one on each connection of a pool of two:
 * both answer, and then each connection is outside any transaction block
 * (as the server reports after every statement). Returns their backends.
 */
static void both_connections_clean(db_t *db, char pids[2][64])
{
    res_t a = {0}, b = {0};
    ck_assert_int_eq(db_query(db, SQL_PID, 0, NULL, on_res, &a), 0);
    ck_assert_int_eq(db_query(db, SQL_PID, 0, NULL, on_res, &b), 0);
    ck_assert(lk_run_until(loop, &a.done, 5000) && lk_run_until(loop, &b.done, 5000));
    ck_assert_int_eq(a.err, 0);
    ck_assert_int_eq(b.err, 0);
    ck_assert_str_ne(a.val, b.val);
    for (int i = 0; i < 2; i++)
        ck_assert_msg(PQtransactionStatus(db->conns[i].pg) == PQTRANS_IDLE,
                      "connection %d is still inside a transaction", i);
    snprintf(pids[0], 64, "%s", a.val);
    snprintf(pids[1], 64, "%s", b.val);
}

static void rows_table(void)
{
    side_exec("SET client_min_messages = warning; DROP TABLE IF EXISTS db_test_rows;"
              "CREATE TABLE db_test_rows (id int PRIMARY KEY);"
              "INSERT INTO db_test_rows SELECT generate_series(1, 10)");
}

/*
 * An export: a cursor in a repeatable-read transaction, fetched a chunk at
 * a time, sees the rows of its snapshot while other queries change the
 * table through the pool's other connection; then the connection goes back
 * to the pool. The cursor's statement is prepared, or sent unnamed.
 */
START_TEST(session_fetches_a_cursor_in_steps_from_one_snapshot)
{
    db_t *db = open_pool(url, 2, 8, 5000, 1000);
    ck_assert(all_up(db, 5000));
    static const char SQL_INSERT[] = "INSERT INTO db_test_rows VALUES ($1::int)";
    static const char SQL_DELETE[] = "DELETE FROM db_test_rows WHERE id = $1::int";
    static const char SQL_COUNT[] = "SELECT count(*) FROM db_test_rows";
    unsigned flags[2] = {0, DB_ONESHOT};
    for (int k = 0; k < 2; k++) {
        rows_table();
        db_session_t *s = session_open(db);
        ck_assert_int_eq(stats(db).pinned, 1);
        ck_assert_int_eq(session_query(s, SQL_BEGIN_RR, NULL, 0).err, 0);
        res_t r = session_query(s, SQL_DECLARE, "0", flags[k]);
        ck_assert_int_eq(r.err, 0);
        r = session_query(s, SQL_FETCH, NULL, 0);
        ck_assert_str_eq(r.rows, "1,2,3,4");

        /* Meanwhile the table changes; the pool answers through its other connection. */
        ck_assert_int_eq(query(db, SQL_DELETE, "5").err, 0);
        ck_assert_int_eq(query(db, SQL_INSERT, "11").err, 0);
        ck_assert_str_eq(query(db, SQL_COUNT, NULL).val, "10");

        ck_assert_str_eq(session_query(s, SQL_FETCH, NULL, 0).rows, "5,6,7,8");
        ck_assert_str_eq(session_query(s, SQL_FETCH, NULL, 0).rows, "9,10");
        r = session_query(s, SQL_FETCH, NULL, 0);
        ck_assert_int_eq(r.err, 0);
        ck_assert_int_eq(r.ntuples, 0);
        ck_assert_int_eq(session_query(s, SQL_COMMIT, NULL, 0).err, 0);
        db_session_close(s);
        ck_assert(unpinned(db, 2000));
        char pids[2][64];
        both_connections_clean(db, pids);
    }
    db_stats_t st = stats(db);
    ck_assert_int_eq(st.connections_up, 2);
    ck_assert_uint_eq(st.connects, 2);
    ck_assert_uint_eq(st.cancels, 0);
    db_close(db);
}
END_TEST

/* A statement's result, and the session its callback closes. */
typedef struct st_closer_t {
    res_t r;
    db_session_t *s;
} closer_t;

static void on_res_then_close(void *data, const PGresult *res, int err)
{
    closer_t *k = data;
    on_res(&k->r, res, err);
    db_session_close(k->s);
}

/* The callback of a session's statement may close the session; a statement at a time. */
START_TEST(session_runs_one_statement_at_a_time_and_closes_from_its_callback)
{
    db_t *db = open_pool(url, 2, 8, 5000, 1000);
    ck_assert(all_up(db, 5000));
    db_session_t *s = session_open(db);
    closer_t a = {.s = s};
    res_t b = {0};
    ck_assert_int_eq(db_session_query(s, SQL_ADD, 1, (const char *[]){"1"}, 0, on_res_then_close, &a), 0);
    ck_assert_int_eq(db_session_query(s, SQL_ADD, 1, (const char *[]){"2"}, 0, on_res, &b), ERR_CONFLICT);
    ck_assert(lk_run_until(loop, &a.r.done, 5000));
    ck_assert_int_eq(a.r.err, 0);
    ck_assert_str_eq(a.r.val, "2");
    ck_assert(unpinned(db, 2000));
    lk_run_for(loop, 50);
    ck_assert_int_eq(a.r.calls, 1);
    ck_assert_int_eq(b.calls, 0);
    db_close(db);
}
END_TEST

START_TEST(ordinary_queries_keep_a_connection_while_a_session_is_pinned)
{
    db_t *db = open_pool(url, 2, 8, 5000, 1000);
    ck_assert(all_up(db, 5000));
    db_session_t *s = session_open(db);
    res_t spid = session_query(s, SQL_PID, NULL, 0);
    ck_assert_int_eq(session_query(s, SQL_BEGIN_RR, NULL, 0).err, 0);
    /* A second session would leave queries nothing: refused at once, its callback never called. */
    opened_t o = {0};
    ck_assert_int_eq(db_session_open(db, on_opened, &o), ERR_UNAVAILABLE);
    ck_assert_uint_eq(stats(db).rejected, 1);
    /* Queries queue for the free connection, and never run on the pinned one. */
    res_t r[6];
    memset(r, 0, sizeof(r));
    for (int i = 0; i < 6; i++)
        ck_assert_int_eq(db_query(db, SQL_PID, 0, NULL, on_res, &r[i]), 0);
    for (int i = 0; i < 6; i++) {
        ck_assert(lk_run_until(loop, &r[i].done, 5000));
        ck_assert_int_eq(r[i].err, 0);
        ck_assert_str_ne(r[i].val, spid.val);
    }
    db_stats_t st = stats(db);
    ck_assert_int_eq(st.pinned, 1);
    ck_assert_int_eq(st.connections_up, 2);
    ck_assert_int_eq(st.connections_busy, 0);
    db_session_close(s);
    ck_assert(unpinned(db, 2000));
    /* Given back: a session can be had again. */
    s = session_open(db);
    db_session_close(s);
    lk_run_for(loop, 50);
    ck_assert_int_eq(o.calls, 0);
    db_close(db);
}
END_TEST

START_TEST(a_pool_of_one_refuses_sessions)
{
    db_t *db = open_pool(url, 1, 8, 5000, 1000);
    ck_assert(all_up(db, 5000));
    opened_t o = {0};
    ck_assert_int_eq(db_session_open(db, on_opened, &o), ERR_UNAVAILABLE);
    lk_run_for(loop, 50);
    ck_assert_int_eq(o.calls, 0);
    ck_assert_int_eq(stats(db).pinned, 0);
    ck_assert_str_eq(query(db, SQL_ADD, "1").val, "2");
    db_close(db);
}
END_TEST

START_TEST(session_requests_wait_in_the_queue_under_its_timeout)
{
    db_t *db = open_pool(url, 2, 8, 5000, 300);
    ck_assert(all_up(db, 5000));
    res_t a = {0}, b = {0};
    ck_assert_int_eq(db_query(db, SQL_SLEEP, 1, (const char *[]){"0.5"}, on_res, &a), 0);
    ck_assert_int_eq(db_query(db, SQL_SLEEP, 1, (const char *[]){"0.5"}, on_res, &b), 0);
    lk_run_for(loop, 50);
    /* Both connections busy: the request waits (and counts: no second one), then gives up with the queue timeout. */
    opened_t o = {0}, p = {0};
    long long t0 = lk_now_ms();
    ck_assert_int_eq(db_session_open(db, on_opened, &o), 0);
    ck_assert_int_eq(db_session_open(db, on_opened, &p), ERR_UNAVAILABLE);
    ck_assert(lk_run_until(loop, &o.done, 5000));
    ck_assert_int_eq(o.err, ERR_UNAVAILABLE);
    ck_assert_ptr_null(o.s);
    ck_assert_int_lt(lk_now_ms() - t0, 450);
    ck_assert_uint_eq(stats(db).queue_timeouts, 1);
    ck_assert_int_eq(a.done, 0);
    /* Its reservation is given back: the next request waits and gets the first connection freed. */
    ck_assert_int_eq(db_session_open(db, on_opened, &p), 0);
    ck_assert(lk_run_until(loop, &a.done, 5000));
    ck_assert(lk_run_until(loop, &p.done, 1000));
    ck_assert_int_eq(p.err, 0);
    ck_assert_int_eq(stats(db).pinned, 1);
    db_session_close(p.s);
    ck_assert(unpinned(db, 2000));
    ck_assert_int_eq(o.calls, 1);
    db_close(db);
}
END_TEST

/* A callback that, during the close abandoning its statement, tries the session again. */
typedef struct st_reentry_t {
    res_t r;
    db_session_t *s;
    int query_err;
} reentry_t;

static void on_res_reenter(void *data, const PGresult *res, int err)
{
    reentry_t *e = data;
    on_res(&e->r, res, err);
    e->query_err = db_session_query(e->s, SQL_ADD, 1, (const char *[]){"1"}, 0, on_res, &e->r);
    db_session_close(e->s); /* already closing: does nothing */
}

/*
 * The HTTP client went away during a long statement: closing the session
 * answers the statement's callback at once (ERR_UNAVAILABLE, once), cancels
 * it on the server, rolls the transaction back and gives the connection,
 * with its prepared statements, back to the pool.
 */
START_TEST(closing_during_a_statement_cancels_it_and_cleans_the_connection)
{
    db_t *db = open_pool(url, 2, 8, 30000, 1000);
    ck_assert(all_up(db, 5000));
    db_session_t *s = session_open(db);
    res_t spid = session_query(s, SQL_PID, NULL, 0);
    ck_assert_int_eq(session_query(s, SQL_BEGIN_RR, NULL, 0).err, 0);
    reentry_t e = {.s = s};
    ck_assert_int_eq(db_session_query(s, SQL_SLEEP, 1, (const char *[]){"20"}, 0, on_res_reenter, &e), 0);
    lk_run_for(loop, 200);
    ck_assert_int_eq(e.r.done, 0);
    long long t0 = lk_now_ms();
    db_session_close(s);
    ck_assert_int_eq(e.r.calls, 1);
    ck_assert_int_eq(e.r.err, ERR_UNAVAILABLE);
    ck_assert_int_eq(e.query_err, ERR_UNAVAILABLE);
    ck_assert_int_eq(stats(db).pinned, 1); /* until the server has cancelled the statement */
    ck_assert_msg(unpinned(db, 5000), "the cancelled statement never ended");
    ck_assert_int_lt(lk_now_ms() - t0, 3000);
    char pids[2][64];
    both_connections_clean(db, pids);
    ck_assert_msg(strcmp(pids[0], spid.val) == 0 || strcmp(pids[1], spid.val) == 0,
                  "the session's connection was not given back");
    lk_run_for(loop, 50);
    ck_assert_int_eq(e.r.calls, 1);
    db_stats_t st = stats(db);
    ck_assert_uint_eq(st.cancels, 1);
    ck_assert_uint_eq(st.connects, 2);
    ck_assert_int_eq(st.connections_up, 2);
    db_close(db);
}
END_TEST

/*
 * The statement of a closed session ends on its own before the cancel
 * request reaches the server: the connection waits for the request to be
 * delivered before it serves anyone else, so the late cancel never stops
 * the next query that gets the connection.
 */
START_TEST(a_late_cancel_never_hits_the_next_query)
{
    atomic_store(&cancel_delay_ms, 600);
    db_t *db = open_pool(url, 2, 8, 5000, 3000);
    ck_assert(all_up(db, 5000));
    db_session_t *s = session_open(db);
    res_t r = {0}, a = {0}, b = {0};
    ck_assert_int_eq(db_session_query(s, SQL_SLEEP, 1, (const char *[]){"0.2"}, 0, on_res, &r), 0);
    lk_run_for(loop, 50);
    db_session_close(s);
    /* One runs on the free connection, the other gets the session's when it is clean. */
    ck_assert_int_eq(db_query(db, SQL_SLEEP, 1, (const char *[]){"0.5"}, on_res, &a), 0);
    ck_assert_int_eq(db_query(db, SQL_SLEEP, 1, (const char *[]){"0.5"}, on_res, &b), 0);
    ck_assert(lk_run_until(loop, &a.done, 5000) && lk_run_until(loop, &b.done, 5000));
    ck_assert_int_eq(r.err, ERR_UNAVAILABLE);
    ck_assert_msg(a.err == 0 && b.err == 0, "a query was cancelled: sqlstate %s%s", a.sqlstate, b.sqlstate);
    ck_assert(unpinned(db, 1000));
    ck_assert_uint_eq(stats(db).connects, 2);
    db_close(db);
}
END_TEST

/* A session closed inside a transaction (open, or failed) leaves nothing of it behind. */
START_TEST(closing_inside_a_transaction_rolls_it_back)
{
    static const char SQL_BEGIN[] = "BEGIN";
    static const char SQL_INSERT[] = "INSERT INTO db_test_rows VALUES ($1::int)";
    static const char SQL_FAIL[] = "SELECT 1 / $1::int";
    static const char SQL_COUNT[] = "SELECT count(*) FROM db_test_rows WHERE id > 100";
    db_t *db = open_pool(url, 2, 8, 5000, 1000);
    ck_assert(all_up(db, 5000));
    for (int failed = 0; failed <= 1; failed++) {
        rows_table();
        db_session_t *s = session_open(db);
        res_t spid = session_query(s, SQL_PID, NULL, 0);
        ck_assert_int_eq(session_query(s, SQL_BEGIN, NULL, 0).err, 0);
        ck_assert_int_eq(session_query(s, SQL_INSERT, "101", 0).err, 0);
        if (failed)
            ck_assert_int_eq(session_query(s, SQL_FAIL, "0", 0).err, ERR_INVALID);
        /* Not visible outside the session's transaction yet. */
        ck_assert_str_eq(query(db, SQL_COUNT, NULL).val, "0");
        db_session_close(s);
        ck_assert(unpinned(db, 2000));
        char pids[2][64];
        both_connections_clean(db, pids);
        ck_assert(strcmp(pids[0], spid.val) == 0 || strcmp(pids[1], spid.val) == 0);
        ck_assert_str_eq(query(db, SQL_COUNT, NULL).val, "0");
    }
    db_stats_t st = stats(db);
    ck_assert_uint_eq(st.connects, 2);
    ck_assert_uint_eq(st.cancels, 0);
    db_close(db);
}
END_TEST

/*
 * A statement past its deadline in a session: statement_timeout answers
 * ERR_TIMEOUT and the session goes on. With a backend that does not answer
 * at all, the client-side deadline answers and cancels, and a statement
 * asked for meanwhile starts once the cancelled one is over.
 */
START_TEST(session_statements_have_the_pools_deadlines)
{
    static const char SQL_ROLLBACK[] = "ROLLBACK";
    db_t *db = open_pool(url, 2, 8, 300, 1000);
    ck_assert(all_up(db, 5000));
    db_session_t *s = session_open(db);
    res_t spid = session_query(s, SQL_PID, NULL, 0);
    ck_assert_int_eq(session_query(s, SQL_BEGIN_RR, NULL, 0).err, 0);
    res_t r = session_query(s, SQL_SLEEP, "3", 0);
    ck_assert_int_eq(r.err, ERR_TIMEOUT);
    ck_assert_str_eq(r.sqlstate, "57014");
    ck_assert_int_eq(session_query(s, SQL_ROLLBACK, NULL, 0).err, 0);
    ck_assert_str_eq(session_query(s, SQL_ADD, "1", 0).val, "2");

    ck_assert_int_eq(kill((pid_t)atoi(spid.val), SIGSTOP), 0);
    res_t a = {0}, b = {0};
    ck_assert_int_eq(db_session_query(s, SQL_SLEEP, 1, (const char *[]){"0.1"}, 0, on_res, &a), 0);
    int done = lk_run_until(loop, &a.done, 5000);
    /* Answered, cancel under way: the next statement waits for the connection. */
    int err = db_session_query(s, SQL_ADD, 1, (const char *[]){"2"}, 0, on_res, &b);
    lk_run_for(loop, 100);
    int early = b.done;
    kill((pid_t)atoi(spid.val), SIGCONT);
    ck_assert(done);
    ck_assert_int_eq(a.err, ERR_TIMEOUT);
    ck_assert_int_eq(err, 0);
    ck_assert_int_eq(early, 0);
    ck_assert(lk_run_until(loop, &b.done, 5000));
    ck_assert_int_eq(b.err, 0);
    ck_assert_str_eq(b.val, "3");
    ck_assert_str_eq(session_query(s, SQL_PID, NULL, 0).val, spid.val);
    db_session_close(s);
    ck_assert(unpinned(db, 2000));
    db_stats_t st = stats(db);
    ck_assert_uint_eq(st.cancels, 1);
    ck_assert_uint_eq(st.exec_timeouts, 2);
    ck_assert_uint_eq(st.connects, 2);
    db_close(db);
}
END_TEST

/* A killed backend ends the session: its statement fails, later ones are refused, the pool recovers. */
START_TEST(a_lost_connection_ends_the_session)
{
    db_t *db = open_pool(url, 2, 8, 5000, 1000);
    ck_assert(all_up(db, 5000));
    db_session_t *s = session_open(db);
    res_t spid = session_query(s, SQL_PID, NULL, 0);
    res_t r = {0};
    ck_assert_int_eq(db_session_query(s, SQL_SLEEP, 1, (const char *[]){"5"}, 0, on_res, &r), 0);
    lk_run_for(loop, 100);
    char sql[128];
    snprintf(sql, sizeof(sql), "SELECT pg_terminate_backend(%s)", spid.val);
    side_exec(sql);
    ck_assert(lk_run_until(loop, &r.done, 5000));
    ck_assert_int_eq(r.err, ERR_UNAVAILABLE);
    ck_assert_int_eq(stats(db).pinned, 0);
    res_t later = {0};
    ck_assert_int_eq(db_session_query(s, SQL_ADD, 1, (const char *[]){"1"}, 0, on_res, &later), ERR_UNAVAILABLE);
    db_session_close(s);
    ck_assert(all_up(db, 5000));
    ck_assert_str_eq(query(db, SQL_ADD, "1").val, "2");
    lk_run_for(loop, 50);
    ck_assert_int_eq(r.calls, 1);
    ck_assert_int_eq(later.calls, 0);
    ck_assert_uint_eq(stats(db).connects, 3);
    db_close(db);
}
END_TEST

/* Shutdown with sessions in every state: each callback once, nothing leaked, closing afterwards is fine. */
START_TEST(closing_the_pool_fails_its_sessions)
{
    db_t *db = open_pool(url, 4, 8, 5000, 5000);
    ck_assert(all_up(db, 5000));
    db_session_t *running = session_open(db), *idle = session_open(db);
    ck_assert_int_eq(session_query(idle, SQL_BEGIN_RR, NULL, 0).err, 0);
    res_t r = {0}, q1 = {0}, q2 = {0};
    ck_assert_int_eq(db_session_query(running, SQL_SLEEP, 1, (const char *[]){"5"}, 0, on_res, &r), 0);
    ck_assert_int_eq(db_query(db, SQL_SLEEP, 1, (const char *[]){"5"}, on_res, &q1), 0);
    ck_assert_int_eq(db_query(db, SQL_SLEEP, 1, (const char *[]){"5"}, on_res, &q2), 0);
    lk_run_for(loop, 100);
    opened_t waiting = {0};
    ck_assert_int_eq(db_session_open(db, on_opened, &waiting), 0);
    lk_run_for(loop, 50);
    ck_assert_int_eq(waiting.calls, 0);
    db_close(db);
    ck_assert_int_eq(r.calls, 1);
    ck_assert_int_eq(r.err, ERR_UNAVAILABLE);
    ck_assert_int_eq(q1.err, ERR_UNAVAILABLE);
    ck_assert_int_eq(q2.err, ERR_UNAVAILABLE);
    ck_assert_int_eq(waiting.calls, 1);
    ck_assert_int_eq(waiting.err, ERR_UNAVAILABLE);
    ck_assert_ptr_null(waiting.s);
    res_t later = {0};
    ck_assert_int_eq(db_session_query(idle, SQL_ADD, 1, (const char *[]){"1"}, 0, on_res, &later), ERR_UNAVAILABLE);
    db_session_close(running);
    db_session_close(idle);
    ck_assert_int_eq(r.calls, 1);
    ck_assert_int_eq(later.calls, 0);
}
END_TEST

/* --- pipeline mode (DB_PIPELINE) ---------------------------------------- */

static int pipelined(db_t *db, const char *sql, const char *param, res_t *r)
{
    const char *params[1] = {param};
    return db_query_flags(db, sql, param != NULL ? 1 : 0, params, DB_PIPELINE, on_res, r);
}

static int all_done(res_t *r, int n)
{
    for (int i = 0; i < n; i++)
        if (!r[i].done)
            return 0;
    return 1;
}

static int run_until_all(res_t *r, int n, int ms)
{
    long long until = lk_now_ms() + ms;
    while (!all_done(r, n) && lk_now_ms() < until)
        h2o_evloop_run(loop, 10);
    return all_done(r, n);
}

/*
 * Reads asked for together go out on one connection as one batch, each
 * answered with its own result; a statement not yet prepared is prepared
 * once, in the batch, for every op of the batch that uses it.
 */
START_TEST(pipelined_reads_share_one_connection_in_order)
{
    enum { N = 12 };
    db_t *db = open_pool(url, 4, 32, 5000, 1000);
    ck_assert(all_up(db, 5000));
    res_t r[N] = {{0}}, pid[2] = {{0}};
    char args[N][8];
    for (int i = 0; i < N; i++) {
        snprintf(args[i], sizeof(args[i]), "%d", i * 10);
        ck_assert_int_eq(pipelined(db, SQL_ADD, args[i], &r[i]), 0);
    }
    ck_assert_int_eq(pipelined(db, SQL_PID, NULL, &pid[0]), 0);
    ck_assert_int_eq(pipelined(db, SQL_PID, NULL, &pid[1]), 0);
    ck_assert(run_until_all(r, N, 5000) && run_until_all(pid, 2, 5000));
    for (int i = 0; i < N; i++) {
        char want[8];
        snprintf(want, sizeof(want), "%d", i * 10 + 1);
        ck_assert_int_eq(r[i].err, 0);
        ck_assert_int_eq(r[i].calls, 1);
        ck_assert_str_eq(r[i].val, want);
        if (i > 0)
            ck_assert_int_le(r[i - 1].at_ms, r[i].at_ms);
    }
    ck_assert_str_eq(pid[0].val, pid[1].val); /* one server process served the batch */
    db_stats_t st = stats(db);
    ck_assert_uint_eq(st.pipelines, 1);
    ck_assert_uint_eq(st.pipelined, N + 2);
    ck_assert_int_eq(st.connections_busy, 0);
    ck_assert_int_eq(st.prepared, 2); /* SQL_ADD and SQL_PID, once each */
    /* The connection left pipeline mode: an ordinary query and a session work on it as before. */
    ck_assert_str_eq(query(db, SQL_ADD, "41").val, "42");
    db_session_t *s = session_open(db);
    ck_assert_int_eq(session_query(s, SQL_ADD, "1", 0).err, 0);
    db_session_close(s);
    db_close(db);
}
END_TEST

/* Each statement of a batch is its own transaction: an error or a statement_timeout touches only its own. */
START_TEST(an_error_in_a_pipeline_touches_only_its_own_statement)
{
    static const char SQL_INT[] = "SELECT $1::int";
    db_t *db = open_pool(url, 2, 32, 300, 1000);
    ck_assert(all_up(db, 5000));
    ck_assert_str_eq(query(db, SQL_INT, "7").val, "7"); /* prepared before: its failure below is the execution's */
    ck_assert_str_eq(query(db, SQL_SLEEP, "0").val, "");
    res_t r[5] = {{0}};
    ck_assert_int_eq(pipelined(db, SQL_INT, "1", &r[0]), 0);
    ck_assert_int_eq(pipelined(db, SQL_INT, "not a number", &r[1]), 0);
    ck_assert_int_eq(pipelined(db, SQL_INT, "3", &r[2]), 0);
    ck_assert_int_eq(pipelined(db, SQL_SLEEP, "3", &r[3]), 0);
    ck_assert_int_eq(pipelined(db, SQL_INT, "5", &r[4]), 0);
    ck_assert(run_until_all(r, 5, 5000));
    ck_assert_str_eq(r[0].val, "1");
    ck_assert_int_eq(r[1].err, ERR_INVALID);
    ck_assert_str_eq(r[1].sqlstate, "22P02");
    ck_assert_str_eq(r[2].val, "3");
    ck_assert_int_eq(r[3].err, ERR_TIMEOUT);
    ck_assert_str_eq(r[3].sqlstate, "57014");
    ck_assert_int_eq(r[4].err, 0);
    ck_assert_str_eq(r[4].val, "5");
    db_stats_t st = stats(db);
    ck_assert_uint_eq(st.connects, 2); /* no connection was given up */
    ck_assert_uint_eq(st.exec_timeouts, 1);
    db_close(db);
}
END_TEST

/*
 * A statement prepared in a batch whose op fails may have failed to
 * prepare: the connection is re-opened once the batch is over, so no name
 * that does not exist on the server is trusted; the other ops are answered.
 */
START_TEST(a_failed_prepare_in_a_pipeline_reopens_the_connection)
{
    static const char SQL_BAD[] = "SELEC $1::int";
    static const char SQL_TWICE[] = "SELECT $1::int * 2";
    db_t *db = open_pool(url, 1, 32, 5000, 1000);
    ck_assert(all_up(db, 5000));
    res_t r[3] = {{0}};
    ck_assert_int_eq(pipelined(db, SQL_TWICE, "2", &r[0]), 0);
    ck_assert_int_eq(pipelined(db, SQL_BAD, "1", &r[1]), 0);
    ck_assert_int_eq(pipelined(db, SQL_TWICE, "3", &r[2]), 0);
    ck_assert(run_until_all(r, 3, 5000));
    ck_assert_str_eq(r[0].val, "4");
    ck_assert_int_eq(r[1].err, ERR_INTERNAL);
    ck_assert_str_eq(r[1].sqlstate, "42601");
    ck_assert_str_eq(r[2].val, "6");
    ck_assert(all_up(db, 5000));
    db_stats_t st = stats(db);
    ck_assert_uint_eq(st.connects, 2);
    /* On the new connection both statements are prepared afresh. */
    res_t again[2] = {{0}};
    ck_assert_int_eq(pipelined(db, SQL_TWICE, "5", &again[0]), 0);
    ck_assert_int_eq(pipelined(db, SQL_BAD, "1", &again[1]), 0);
    ck_assert(run_until_all(again, 2, 5000));
    ck_assert_str_eq(again[0].val, "10");
    ck_assert_str_eq(again[1].sqlstate, "42601");
    ck_assert(all_up(db, 5000));
    ck_assert_str_eq(query(db, SQL_TWICE, "21").val, "42");
    db_close(db);
}
END_TEST

/*
 * Reads asked for while a pipeline is on the wire and moving join it rather
 * than wake another server process; one that answered nothing for a while
 * (here a sleep standing for a lock wait) takes no more: later reads go to
 * another connection instead of waiting behind it.
 */
START_TEST(reads_join_a_moving_pipeline_not_a_stalled_one)
{
    db_t *db = open_pool(url, 4, 32, 5000, 1000);
    ck_assert(all_up(db, 5000));
    res_t first = {0}, joined = {0}, later = {0}, plain = {0};
    ck_assert_int_eq(pipelined(db, SQL_SLEEP, "0.3", &first), 0);
    h2o_evloop_run(loop, 0); /* the pipeline goes out */
    ck_assert_int_eq(pipelined(db, SQL_ADD, "1", &joined), 0);
    h2o_evloop_run(loop, 0);
    lk_run_for(loop, 100);
    ck_assert_int_eq(first.done, 0);
    ck_assert_int_eq(joined.done, 0); /* behind the sleep, on its connection */
    ck_assert_int_eq(pipelined(db, SQL_ADD, "2", &later), 0);
    ck_assert_int_eq(db_query(db, SQL_ADD, 1, (const char *[]){"3"}, on_res, &plain), 0);
    ck_assert(lk_run_until(loop, &later.done, 5000));
    ck_assert(lk_run_until(loop, &plain.done, 5000));
    ck_assert_int_eq(first.done, 0); /* the stalled pipeline was passed by */
    ck_assert(lk_run_until(loop, &joined.done, 5000));
    ck_assert_int_eq(first.done, 1);
    ck_assert_str_eq(joined.val, "2");
    ck_assert_str_eq(later.val, "3");
    ck_assert_str_eq(plain.val, "4");
    db_stats_t st = stats(db);
    ck_assert_uint_eq(st.pipelines, 2);
    ck_assert_uint_eq(st.pipelined, 3);
    db_close(db);
}
END_TEST

/*
 * A batch whose server process does not answer (SIGSTOP): the first op
 * past the client-side deadline gets ERR_TIMEOUT and the connection is
 * closed (a cancel could stop another op of the batch); the others get
 * ERR_UNAVAILABLE; the pool reconnects and serves again.
 */
START_TEST(a_pipeline_past_its_deadline_closes_the_connection)
{
    db_t *db = open_pool(url, 1, 8, 300, 1000);
    ck_assert(all_up(db, 5000));
    res_t pid = query(db, SQL_PID, NULL), r[3] = {{0}};
    ck_assert_int_eq(kill((pid_t)atoi(pid.val), SIGSTOP), 0);
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(pipelined(db, SQL_ADD, "1", &r[i]), 0);
    int done = run_until_all(r, 3, 5000);
    kill((pid_t)atoi(pid.val), SIGCONT);
    ck_assert(done);
    int timeouts = 0, unavailable = 0;
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(r[i].calls, 1);
        timeouts += r[i].err == ERR_TIMEOUT;
        unavailable += r[i].err == ERR_UNAVAILABLE;
    }
    ck_assert_int_eq(timeouts, 1);
    ck_assert_int_eq(unavailable, 2);
    ck_assert(all_up(db, 5000));
    ck_assert_str_eq(query(db, SQL_ADD, "1").val, "2");
    db_stats_t st = stats(db);
    ck_assert_uint_eq(st.connects, 2);
    ck_assert_uint_eq(st.cancels, 0);
    db_close(db);
}
END_TEST

/* A killed server process and a closed pool answer every op of a batch, once. */
START_TEST(a_lost_or_closed_pipeline_answers_every_op)
{
    db_t *db = open_pool(url, 1, 8, 5000, 1000);
    ck_assert(all_up(db, 5000));
    res_t pid = query(db, SQL_PID, NULL), r[3] = {{0}};
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(pipelined(db, SQL_SLEEP, "2", &r[i]), 0);
    lk_run_for(loop, 100);
    char sql[128];
    snprintf(sql, sizeof(sql), "SELECT pg_terminate_backend(%s)", pid.val);
    side_exec(sql);
    ck_assert(run_until_all(r, 3, 5000));
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(r[i].calls, 1);
        ck_assert_int_eq(r[i].err, ERR_UNAVAILABLE);
    }
    ck_assert(all_up(db, 5000));
    res_t c[2] = {{0}};
    for (int i = 0; i < 2; i++)
        ck_assert_int_eq(pipelined(db, SQL_SLEEP, "2", &c[i]), 0);
    lk_run_for(loop, 100);
    db_close(db);
    for (int i = 0; i < 2; i++) {
        ck_assert_int_eq(c[i].calls, 1);
        ck_assert_int_eq(c[i].err, ERR_UNAVAILABLE);
    }
}
END_TEST

static Suite *db_suite(void)
{
    Suite *s = suite_create("db");
    TCase *tc = tcase_create("connect");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, connects_and_queries);
    tcase_add_test(tc, sessions_get_their_settings);
    tcase_add_test(tc, resolves_host_names_off_the_loop);
    tcase_add_test(tc, localhost_gets_every_address_libpq_would_try);
    tcase_add_test(tc, connect_has_a_deadline);
    tcase_add_test(tc, follows_libpq_to_a_new_socket_on_the_same_descriptor);
    suite_add_tcase(s, tc);

    tc = tcase_create("recovery");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, killed_backend_reconnects);
    tcase_add_test(tc, stopped_server_fails_fast_backs_off_and_recovers);
    suite_add_tcase(s, tc);

    tc = tcase_create("overload");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, full_queue_is_refused_at_once);
    tcase_add_test(tc, queue_wait_times_out_apart_from_execution);
    tcase_add_test(tc, statement_timeout_keeps_connection_and_statements);
    tcase_add_test(tc, client_deadline_cancels_instead_of_closing);
    suite_add_tcase(s, tc);

    tc = tcase_create("statements");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, prepares_hundreds_of_statements_on_one_connection);
    suite_add_tcase(s, tc);

    tc = tcase_create("sessions");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, session_fetches_a_cursor_in_steps_from_one_snapshot);
    tcase_add_test(tc, session_runs_one_statement_at_a_time_and_closes_from_its_callback);
    tcase_add_test(tc, ordinary_queries_keep_a_connection_while_a_session_is_pinned);
    tcase_add_test(tc, a_pool_of_one_refuses_sessions);
    tcase_add_test(tc, session_requests_wait_in_the_queue_under_its_timeout);
    tcase_add_test(tc, closing_during_a_statement_cancels_it_and_cleans_the_connection);
    tcase_add_test(tc, a_late_cancel_never_hits_the_next_query);
    tcase_add_test(tc, closing_inside_a_transaction_rolls_it_back);
    tcase_add_test(tc, session_statements_have_the_pools_deadlines);
    tcase_add_test(tc, a_lost_connection_ends_the_session);
    tcase_add_test(tc, closing_the_pool_fails_its_sessions);
    suite_add_tcase(s, tc);

    tc = tcase_create("pipeline");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, pipelined_reads_share_one_connection_in_order);
    tcase_add_test(tc, an_error_in_a_pipeline_touches_only_its_own_statement);
    tcase_add_test(tc, a_failed_prepare_in_a_pipeline_reopens_the_connection);
    tcase_add_test(tc, reads_join_a_moving_pipeline_not_a_stalled_one);
    tcase_add_test(tc, a_pipeline_past_its_deadline_closes_the_connection);
    tcase_add_test(tc, a_lost_or_closed_pipeline_answers_every_op);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(db_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
