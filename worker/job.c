/*
 * worker/job.c - the job thread: claims and runs one analytics run at a time, off the loop.
 *
 * One thread per worker process, started once and fed one stream entry at a
 * time by the loop (worker/runs.c) under a mutex and condition variable. For
 * each entry it claims the run on connection B (an UPDATE that succeeds only
 * for a queued run, a run this worker already holds, or a running run whose
 * heartbeat is older than the claim idle time), runs the run's kind with
 * connection A, and sends the outcome back through the loop's h2o
 * multithread queue. The completion message is embedded in wk_job_t: the
 * loop submits nothing new until it has been delivered, so it is never
 * linked twice.
 *
 * Every wait for PostgreSQL is a poll() of at most 100 ms on the socket, so
 * the thread keeps its promises while the server works or waits on a lock:
 * every 500 ms it writes progress + heartbeat on B (an UPDATE that matches
 * only while the run is still running and still ours). No row means the run
 * was cancelled or taken over: the current statement on A is cancelled
 * (PQcancel), A is closed (so its transaction is rolled back by the server)
 * and nothing is written. The same happens within 100 ms when the loop asks
 * the thread to stop (SIGTERM); the run then stays "running" under this
 * worker's name, its entry stays pending, and a restart with the same name
 * or another worker after the claim idle time redoes it. If B cannot
 * heartbeat for a whole claim idle time, the job stops too, since another
 * worker may already have taken the run over.
 *
 * Results are written by wk_job_write_results() in one transaction on A:
 * the kind's rows go into a temporary table and from there into their
 * tables, or through the kind's own steps (statements and COPYs), while
 * heartbeats go on (so a cancel or a take-over still stops the write within
 * a second and rolls it back), and only then is the run's row
 * locked (SELECT ... FOR UPDATE), checked to be still ours and running,
 * marked succeeded and committed. Locking last keeps the lock short: a
 * cancel (an UPDATE of that row) waits milliseconds, not the whole write,
 * and while the lock is held no heartbeat is sent (it would wait for our
 * own lock). The lock keeps the run ours until the commit, because a
 * take-over or a cancel is an UPDATE of that row and, once our commit
 * lets it through, its WHERE clause no longer matches. A kind's clean-up
 * after the commit (after_sql) runs without heartbeats, since the run is
 * no longer running, and cannot fail the run.

 * Failures a person can act on (bad params, database errors) mark the run
 * failed with the message and acknowledge the entry. A run claimed more
 * than MAX_ATTEMPTS times (a run that keeps killing workers) is failed too.
 * When B itself cannot reach PostgreSQL nothing can be recorded: the entry
 * stays pending and the loop retries it after a pause.
 *
 * Ownership: wk_job_t is owned by the loop side and freed by wk_job_stop();
 * the connections belong to the job thread, which closes them when it ends.
 * A job's wk_job_ctx_t lives on the job thread's stack, with a memory pool
 * cleared when the run ends. The SQL of the job thread is here and in
 * worker/rfm_job.c, not in a *_db.c file (see worker/job.h).
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/err.h"
#include "common/log.h"
#include "job.h"
#include "backup_job.h"
#include "clv_job.h"
#include "rfm_job.h"
#include "transfer_job.h"

#define HEARTBEAT_EVERY_MS 500
#define POLL_MS 100
#define MAX_ATTEMPTS 5
#define ERROR_MAX 1024
#define COPY_CHUNK (256 * 1024)

static const char SQL_CLAIM[] =
    "UPDATE analytics_runs SET status = 'running', worker = $2, attempts = attempts + 1, heartbeat_at = now(),"
    " started_at = coalesce(started_at, now()), progress = 0, customers_done = 0, updated_at = now()"
    " WHERE id = $1 AND (status = 'queued' OR (status = 'running' AND (worker = $2 OR heartbeat_at IS NULL"
    " OR heartbeat_at < now() - $3::bigint * interval '1 millisecond')))"
    " RETURNING kind, params::text, attempts, request_id, trace_id";

static const char SQL_STATUS[] = "SELECT status, coalesce(worker, '') FROM analytics_runs WHERE id = $1";

static const char SQL_HEARTBEAT[] =
    "UPDATE analytics_runs SET progress = $3::real, customers_done = $4::bigint,"
    " customers_total = coalesce($5::bigint, customers_total), heartbeat_at = now(), updated_at = now()"
    " WHERE id = $1 AND worker = $2 AND status = 'running' RETURNING 1";

static const char SQL_FAIL[] =
    "UPDATE analytics_runs SET status = 'failed', error = $3, finished_at = now(), updated_at = now()"
    " WHERE id = $1 AND worker = $2 AND status = 'running'";

static const char SQL_LOCK[] =
    "SELECT 1 FROM analytics_runs WHERE id = $1 AND worker = $2 AND status = 'running' FOR UPDATE";

static const char SQL_SUCCEED[] =
    "UPDATE analytics_runs SET status = 'succeeded', progress = 1, customers_done = $2::bigint,"
    " customers_total = $2::bigint, stats = $3::jsonb, model = $4::jsonb, error = NULL, heartbeat_at = now(),"
    " finished_at = now(), updated_at = now() WHERE id = $1";

typedef enum { STOP_NONE = 0, STOP_SHUTDOWN, STOP_LOST, STOP_STALE } stop_reason_t;

struct st_wk_job_t {
    /* loop side */
    h2o_multithread_receiver_t receiver;
    h2o_multithread_message_t msg; /* the completion of the current entry */
    wk_job_done_cb cb;
    void *cb_data;
    int busy;
    /* configuration, read-only */
    char *conninfo;
    char *name;
    int claim_idle_ms;
    char *role; /* "" for the login role */
    char *backup_dir;
    wk_job_config_t conf; /* the same, as the kinds see it */
    /* hand-over, under mutex */
    pthread_t thread;
    pthread_mutex_t mutex;
    pthread_cond_t cond;
    int has_job;
    int64_t run_id;
    char entry_id[WK_JOB_ENTRY_ID_MAX];
    wk_job_outcome_t outcome; /* written before the message is sent; the queue's mutex orders it */
    _Atomic int stop;
    _Atomic int64_t alive_ms;
    /* metrics (families of the borrowed registry; NULL when none) */
    prom_family_t *runs_total, *run_seconds;
    /* job thread only */
    PGconn *a, *b;
    PGconn *c; /* for the side steps of a write; used by the side thread while it runs */
};

struct st_wk_job_ctx_t {
    wk_job_t *job;
    int64_t run_id;
    h2o_mem_pool_t pool;
    int64_t start_ms;
    int64_t last_beat_try, last_beat_ok;
    int beat_failing;
    int locked; /* holds the run's row lock: no heartbeats */
    stop_reason_t stop_reason;
    const char *ended; /* the status label of a claimed run's end, once known */
    double progress;
    int64_t done, total;
    char error[ERROR_MAX];
};

int64_t wk_job_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* --- connections ----------------------------------------------------------------- */

static PGconn *open_conn(wk_job_t *job, const char *options, const char *which)
{
    /* The role is checked by the configuration (letters, digits, _): safe in an options string. */
    char opts[256];
    snprintf(opts, sizeof(opts), "%s%s%s", options, job->role[0] != '\0' ? " -c role=" : "", job->role);
    const char *keys[] = {"dbname", "application_name", "options", "connect_timeout", NULL};
    const char *vals[] = {job->conninfo, which, opts, "5", NULL};
    PGconn *c = PQconnectdbParams(keys, vals, 1);
    if (c == NULL || PQstatus(c) != CONNECTION_OK) {
        char msg[256];
        snprintf(msg, sizeof(msg), "%s", c != NULL ? PQerrorMessage(c) : "out of memory");
        msg[strcspn(msg, "\n")] = '\0';
        log_msg(LOG_WARN, "job thread cannot connect to PostgreSQL: %s", msg);
        PQfinish(c);
        return NULL;
    }
    return c;
}

/* A for the work: no statement timeout (a run may read for minutes). B for small updates. */
static int ensure_a(wk_job_t *job)
{
    if (job->a != NULL && PQstatus(job->a) != CONNECTION_OK) {
        PQfinish(job->a);
        job->a = NULL;
    }
    if (job->a == NULL)
        job->a = open_conn(job, "-c TimeZone=UTC -c statement_timeout=0", "clientele-worker-job");
    return job->a != NULL;
}

static int ensure_b(wk_job_t *job)
{
    if (job->b != NULL && PQstatus(job->b) != CONNECTION_OK) {
        PQfinish(job->b);
        job->b = NULL;
    }
    if (job->b == NULL)
        job->b = open_conn(job, "-c TimeZone=UTC -c statement_timeout=10000", "clientele-worker-heartbeat");
    return job->b != NULL;
}

static int ensure_c(wk_job_t *job)
{
    if (job->c != NULL && PQstatus(job->c) != CONNECTION_OK) {
        PQfinish(job->c);
        job->c = NULL;
    }
    if (job->c == NULL)
        job->c = open_conn(job, "-c TimeZone=UTC -c statement_timeout=0", "clientele-worker-job-side");
    return job->c != NULL;
}

/* Gives up a connection in the middle of something: the server stops at once and rolls back. */
static void abandon(PGconn **conn)
{
    if (*conn == NULL)
        return;
    PGcancel *cancel = PQgetCancel(*conn);
    if (cancel != NULL) {
        char buf[256];
        PQcancel(cancel, buf, sizeof(buf));
        PQfreeCancel(cancel);
    }
    PQfinish(*conn);
    *conn = NULL;
}

/* Leaves A idle outside any transaction, or closed. */
static void reset_a(wk_job_t *job)
{
    if (job->a == NULL)
        return;
    switch (PQtransactionStatus(job->a)) {
    case PQTRANS_IDLE:
        return;
    case PQTRANS_INTRANS:
    case PQTRANS_INERROR: {
        PGresult *r = PQexec(job->a, "ROLLBACK");
        int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
        PQclear(r);
        if (ok)
            return;
        break;
    }
    default:
        break;
    }
    abandon(&job->a);
}

/* --- waiting for PostgreSQL --------------------------------------------------------- */

static int job_tick(wk_job_ctx_t *ctx, int force);

/* First line of libpq's message for the connection, without a "FATAL:  " severity prefix. */
static void conn_error(PGconn *conn, char *err, size_t errlen)
{
    const char *msg = conn != NULL && *PQerrorMessage(conn) ? PQerrorMessage(conn) : "connection lost";
    static const char *const prefixes[] = {"FATAL:  ", "ERROR:  ", "PANIC:  "};
    for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++)
        if (strncmp(msg, prefixes[i], strlen(prefixes[i])) == 0)
            msg += strlen(prefixes[i]);
    snprintf(err, errlen, "%s", msg);
    err[strcspn(err, "\n")] = '\0';
}

/*
 * Waits until *conn can hand out a result without blocking. With tick set,
 * heartbeats while waiting (connection A); else only watches the stop
 * flag. Returns 0, WK_JOB_ESTOP, or ERR_UNAVAILABLE with err filled.
 */
static int wait_ready(wk_job_ctx_t *ctx, PGconn *conn, int tick, char *err, size_t errlen)
{
    while (PQisBusy(conn)) {
        struct pollfd p = {.fd = PQsocket(conn), .events = POLLIN};
        int n = poll(&p, 1, POLL_MS);
        if (n < 0 && errno != EINTR) {
            snprintf(err, errlen, "poll: %s", strerror(errno));
            return ERR_UNAVAILABLE;
        }
        if (tick) {
            int r = job_tick(ctx, 0);
            if (r != 0)
                return r;
        } else if (atomic_load(&ctx->job->stop)) {
            ctx->stop_reason = STOP_SHUTDOWN;
            return WK_JOB_ESTOP;
        }
        if (n > 0 && !PQconsumeInput(conn)) {
            conn_error(conn, err, errlen);
            return ERR_UNAVAILABLE;
        }
    }
    return 0;
}

static int result_ok(const PGresult *r)
{
    ExecStatusType st = PQresultStatus(r);
    return st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK || st == PGRES_COPY_IN || st == PGRES_COPY_OUT;
}

/* Collects the results of the statement sent on *conn; COPY results are returned at once. */
static int collect(wk_job_ctx_t *ctx, PGconn **conn, int tick, PGresult **out, char *err, size_t errlen)
{
    PGresult *keep = NULL;
    *out = NULL;
    for (;;) {
        int r = wait_ready(ctx, *conn, tick, err, errlen);
        if (r != 0) {
            PQclear(keep);
            abandon(conn);
            return r;
        }
        PGresult *res = PQgetResult(*conn);
        if (res == NULL)
            break;
        ExecStatusType st = PQresultStatus(res);
        if (st == PGRES_COPY_IN || st == PGRES_COPY_OUT) {
            PQclear(keep);
            *out = res;
            return 0;
        }
        /* Keep the first error, else the last result. */
        if (keep == NULL || result_ok(keep)) {
            PQclear(keep);
            keep = res;
        } else {
            PQclear(res);
        }
    }
    if (keep != NULL && result_ok(keep)) {
        *out = keep;
        return 0;
    }
    if (keep != NULL && PQresultErrorField(keep, PG_DIAG_SQLSTATE) != NULL) {
        const char *primary = PQresultErrorField(keep, PG_DIAG_MESSAGE_PRIMARY);
        snprintf(err, errlen, "%s", primary != NULL ? primary : PQresultErrorMessage(keep));
        PQclear(keep);
        return ERR_INTERNAL;
    }
    PQclear(keep);
    conn_error(*conn, err, errlen);
    if (PQstatus(*conn) != CONNECTION_OK)
        abandon(conn);
    return ERR_UNAVAILABLE;
}

/* Sends one statement on *conn (which must be open) and collects its result. */
static int run_query(wk_job_ctx_t *ctx, PGconn **conn, const char *sql, int nparams, const char *const *params,
                     int tick, PGresult **out, char *err, size_t errlen)
{
    *out = NULL;
    if (*conn == NULL) {
        snprintf(err, errlen, "not connected");
        return ERR_UNAVAILABLE;
    }
    if (!PQsendQueryParams(*conn, sql, nparams, NULL, params, NULL, NULL, 0)) {
        conn_error(*conn, err, errlen);
        abandon(conn);
        return ERR_UNAVAILABLE;
    }
    return collect(ctx, conn, tick, out, err, errlen);
}

/* --- progress, heartbeat and cancellation ------------------------------------------------ */

static int heartbeat(wk_job_ctx_t *ctx, int64_t now)
{
    wk_job_t *job = ctx->job;
    char id[24], progress[32], done[24], total[24], err[256];
    snprintf(id, sizeof(id), "%" PRId64, ctx->run_id);
    snprintf(progress, sizeof(progress), "%.4f", ctx->progress < 0 ? 0 : ctx->progress > 1 ? 1 : ctx->progress);
    snprintf(done, sizeof(done), "%" PRId64, ctx->done);
    snprintf(total, sizeof(total), "%" PRId64, ctx->total);
    const char *params[] = {id, job->name, progress, done, ctx->total >= 0 ? total : NULL};
    PGresult *res = NULL;
    int r = ensure_b(job) ? run_query(ctx, &job->b, SQL_HEARTBEAT, 5, params, 0, &res, err, sizeof(err))
                          : (snprintf(err, sizeof(err), "cannot connect"), ERR_UNAVAILABLE);
    if (r == WK_JOB_ESTOP)
        return r;
    if (r == 0) {
        int ours = PQntuples(res) == 1;
        PQclear(res);
        if (!ours) {
            ctx->stop_reason = STOP_LOST;
            return WK_JOB_ESTOP;
        }
        if (ctx->beat_failing)
            log_msg(LOG_INFO, "run %" PRId64 ": heartbeat written again", ctx->run_id);
        ctx->beat_failing = 0;
        ctx->last_beat_ok = now;
        atomic_store(&job->alive_ms, now);
        return 0;
    }
    if (!ctx->beat_failing)
        log_msg(LOG_WARN, "run %" PRId64 ": cannot write the heartbeat: %s", ctx->run_id, err);
    ctx->beat_failing = 1;
    if (now - ctx->last_beat_ok > job->claim_idle_ms) {
        /* Another worker may have taken the run over by now; whatever we write could be stale. */
        ctx->stop_reason = STOP_STALE;
        return WK_JOB_ESTOP;
    }
    return 0;
}

static int job_tick(wk_job_ctx_t *ctx, int force)
{
    if (ctx->stop_reason != STOP_NONE)
        return WK_JOB_ESTOP;
    if (atomic_load(&ctx->job->stop)) {
        ctx->stop_reason = STOP_SHUTDOWN;
        return WK_JOB_ESTOP;
    }
    int64_t now = wk_job_now_ms();
    if (ctx->locked) {
        atomic_store(&ctx->job->alive_ms, now);
        return 0;
    }
    if (!force && now - ctx->last_beat_try < HEARTBEAT_EVERY_MS)
        return 0;
    ctx->last_beat_try = now;
    return heartbeat(ctx, now);
}

int wk_job_progress(wk_job_ctx_t *ctx, double progress, int64_t done, int64_t total, int force)
{
    ctx->progress = progress;
    ctx->done = done;
    if (total >= 0)
        ctx->total = total;
    return job_tick(ctx, force);
}

/* --- the kinds' helpers ---------------------------------------------------------------- */

int64_t wk_job_run_id(const wk_job_ctx_t *ctx)
{
    return ctx->run_id;
}

h2o_mem_pool_t *wk_job_pool(wk_job_ctx_t *ctx)
{
    return &ctx->pool;
}

PGconn *wk_job_conn(wk_job_ctx_t *ctx)
{
    return ctx->job->a;
}

const wk_job_config_t *wk_job_config(const wk_job_ctx_t *ctx)
{
    return &ctx->job->conf;
}

int wk_job_fail(wk_job_ctx_t *ctx, const char *fmt, ...)
{
    if (ctx->error[0] == '\0') {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(ctx->error, sizeof(ctx->error), fmt, ap);
        va_end(ap);
    }
    return ERR_INVALID;
}

static int record_db_failure(wk_job_ctx_t *ctx, int code, const char *msg, const char *doing)
{
    if (code == WK_JOB_ESTOP)
        return code;
    if (code == ERR_UNAVAILABLE)
        wk_job_fail(ctx, "the database connection was lost while %s: %s", doing, msg);
    else
        wk_job_fail(ctx, "the database reported an error while %s: %s", doing, msg);
    return code;
}

int wk_job_exec(wk_job_ctx_t *ctx, const char *sql, int nparams, const char *const *params, const char *doing,
                PGresult **res)
{
    char err[512];
    int r = run_query(ctx, &ctx->job->a, sql, nparams, params, 1, res, err, sizeof(err));
    if (r == 0 && (PQresultStatus(*res) == PGRES_COPY_IN || PQresultStatus(*res) == PGRES_COPY_OUT)) {
        /* Not a plain statement; COPY goes through wk_job_copy_out() or wk_job_write_results(). */
        PQclear(*res);
        *res = NULL;
        abandon(&ctx->job->a);
        return wk_job_fail(ctx, "internal error: unexpected COPY while %s", doing);
    }
    return r == 0 ? 0 : record_db_failure(ctx, r, err, doing);
}

int wk_job_copy_out(wk_job_ctx_t *ctx, const char *sql, wk_job_copy_cb cb, void *arg, const char *doing)
{
    wk_job_t *job = ctx->job;
    char err[512];
    PGresult *res;
    int r = run_query(ctx, &job->a, sql, 0, NULL, 1, &res, err, sizeof(err));
    if (r != 0)
        return record_db_failure(ctx, r, err, doing);
    if (PQresultStatus(res) != PGRES_COPY_OUT) {
        PQclear(res);
        return wk_job_fail(ctx, "internal error: expected COPY data while %s", doing);
    }
    PQclear(res);
    unsigned messages = 0;
    for (;;) {
        char *buf;
        int len = PQgetCopyData(job->a, &buf, 1);
        if (len > 0) {
            r = cb(arg, buf, (size_t)len);
            PQfreemem(buf);
            if (r == 0 && (++messages & 4095) == 0)
                r = job_tick(ctx, 0);
            if (r != 0) {
                abandon(&job->a);
                return r;
            }
            continue;
        }
        if (len == 0) {
            struct pollfd p = {.fd = PQsocket(job->a), .events = POLLIN};
            if (poll(&p, 1, POLL_MS) < 0 && errno != EINTR) {
                abandon(&job->a);
                return record_db_failure(ctx, ERR_UNAVAILABLE, strerror(errno), doing);
            }
            if ((r = job_tick(ctx, 0)) != 0) {
                abandon(&job->a);
                return r;
            }
            if (!PQconsumeInput(job->a)) {
                conn_error(job->a, err, sizeof(err));
                abandon(&job->a);
                return record_db_failure(ctx, ERR_UNAVAILABLE, err, doing);
            }
            continue;
        }
        if (len == -1)
            break;
        conn_error(job->a, err, sizeof(err));
        abandon(&job->a);
        return record_db_failure(ctx, ERR_UNAVAILABLE, err, doing);
    }
    /* The COPY's own result says whether it completed. */
    r = collect(ctx, &job->a, 1, &res, err, sizeof(err));
    if (r != 0)
        return record_db_failure(ctx, r, err, doing);
    PQclear(res);
    return 0;
}

/* Runs a statement on A that must succeed, for the write transaction. */
static int write_step(wk_job_ctx_t *ctx, const char *sql, int nparams, const char *const *params, PGresult **out)
{
    PGresult *res;
    int r = wk_job_exec(ctx, sql, nparams, params, "writing the results", &res);
    if (r != 0)
        return r;
    if (out != NULL)
        *out = res;
    else
        PQclear(res);
    return 0;
}

static int copy_results_in(wk_job_ctx_t *ctx, const char *copy_sql, wk_job_produce_cb produce, void *arg)
{
    wk_job_t *job = ctx->job;
    char err[512];
    PGresult *res;
    int r = run_query(ctx, &job->a, copy_sql, 0, NULL, 1, &res, err, sizeof(err));
    if (r != 0)
        return record_db_failure(ctx, r, err, "writing the results");
    int copy_in = PQresultStatus(res) == PGRES_COPY_IN;
    PQclear(res);
    if (!copy_in)
        return wk_job_fail(ctx, "internal error: expected COPY FROM STDIN while writing the results");
    char *buf = h2o_mem_alloc_pool(&ctx->pool, COPY_CHUNK);
    size_t n;
    while ((n = produce(arg, buf, COPY_CHUNK)) > 0) {
        if (PQputCopyData(job->a, buf, (int)n) != 1) {
            conn_error(job->a, err, sizeof(err));
            abandon(&job->a);
            return record_db_failure(ctx, ERR_UNAVAILABLE, err, "writing the results");
        }
        if ((r = job_tick(ctx, 0)) != 0) {
            abandon(&job->a);
            return r;
        }
    }
    if (PQputCopyEnd(job->a, NULL) != 1) {
        conn_error(job->a, err, sizeof(err));
        abandon(&job->a);
        return record_db_failure(ctx, ERR_UNAVAILABLE, err, "writing the results");
    }
    r = collect(ctx, &job->a, 1, &res, err, sizeof(err));
    if (r != 0)
        return record_db_failure(ctx, r, err, "writing the results");
    PQclear(res);
    return 0;
}

/* Runs one step on A, in the run's transaction, and reports the progress it reaches. */
static int run_step(wk_job_ctx_t *ctx, const wk_job_step_t *step)
{
    int r = step->produce != NULL ? copy_results_in(ctx, step->sql, step->produce, step->arg)
                                  : write_step(ctx, step->sql, 0, NULL, NULL);
    if (r == 0 && step->progress > 0)
        r = wk_job_progress(ctx, step->progress, step->done, -1, 0);
    return r;
}

static int run_steps(wk_job_ctx_t *ctx, const wk_job_step_t *steps)
{
    for (const wk_job_step_t *step = steps; step->sql != NULL; step++) {
        int r = run_step(ctx, step);
        if (r != 0)
            return r;
    }
    return 0;
}

/* --- side steps: a transaction of their own on C, in a thread of their own ------------------- */

typedef struct st_side_t {
    wk_job_t *job;
    const wk_job_step_t *steps;
    pthread_t thread;
    _Atomic int stop; /* set by the job thread: stop at the next chance */
    pthread_mutex_t mutex;
    pthread_cond_t cond;
    int done;   /* under mutex: the side thread is about to end */
    int failed; /* valid once done: 1 if err describes a failure, -1 if stopped */
    char err[ERROR_MAX];
} side_t;

/* Waits until C can hand out a result without blocking; 0, or -1 when stopped or the connection failed. */
static int side_wait_ready(side_t *side)
{
    PGconn *c = side->job->c;
    while (PQisBusy(c)) {
        if (atomic_load(&side->stop))
            return -1;
        struct pollfd p = {.fd = PQsocket(c), .events = POLLIN};
        if (poll(&p, 1, POLL_MS) < 0 && errno != EINTR) {
            snprintf(side->err, sizeof(side->err), "the database connection was lost while writing the results: %s",
                     strerror(errno));
            return -1;
        }
        if (!PQconsumeInput(c)) {
            char msg[512];
            conn_error(c, msg, sizeof(msg));
            snprintf(side->err, sizeof(side->err), "the database connection was lost while writing the results: %s",
                     msg);
            return -1;
        }
    }
    return 0;
}

/* Collects the results of what was sent on C; 0, 1 for COPY IN started, or -1 with side->err set or stopped. */
static int side_collect(side_t *side)
{
    PGconn *c = side->job->c;
    int ret = 0;
    for (;;) {
        if (side_wait_ready(side) != 0)
            return -1;
        PGresult *res = PQgetResult(c);
        if (res == NULL)
            return ret;
        ExecStatusType st = PQresultStatus(res);
        if (st == PGRES_COPY_IN) {
            PQclear(res);
            return 1;
        }
        if (!result_ok(res) && ret == 0) {
            const char *primary = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
            char msg[512];
            if (primary == NULL)
                conn_error(c, msg, sizeof(msg));
            snprintf(side->err, sizeof(side->err), "the database reported an error while writing the results: %s",
                     primary != NULL ? primary : msg);
            ret = -1;
        }
        PQclear(res);
    }
}

static int side_step(side_t *side, const wk_job_step_t *step, char *buf)
{
    PGconn *c = side->job->c;
    if (!PQsendQueryParams(c, step->sql, 0, NULL, NULL, NULL, NULL, 0)) {
        char msg[512];
        conn_error(c, msg, sizeof(msg));
        snprintf(side->err, sizeof(side->err), "the database connection was lost while writing the results: %s", msg);
        return -1;
    }
    int r = side_collect(side);
    if (r <= 0 || step->produce == NULL)
        return r < 0 ? -1 : 0;
    size_t n;
    while ((n = step->produce(step->arg, buf, COPY_CHUNK)) > 0) {
        if (atomic_load(&side->stop))
            return -1;
        if (PQputCopyData(c, buf, (int)n) != 1)
            break;
    }
    if (n > 0 || PQputCopyEnd(c, NULL) != 1) {
        char msg[512];
        conn_error(c, msg, sizeof(msg));
        snprintf(side->err, sizeof(side->err), "the database connection was lost while writing the results: %s", msg);
        return -1;
    }
    return side_collect(side) == 0 ? 0 : -1;
}

static void *side_main(void *arg)
{
    side_t *side = arg;
    char *buf = malloc(COPY_CHUNK);
    static const wk_job_step_t begin = {.sql = "BEGIN ISOLATION LEVEL READ COMMITTED"};
    static const wk_job_step_t commit = {.sql = "COMMIT"};
    int r = buf != NULL ? side_step(side, &begin, buf) : -1;
    if (buf == NULL)
        snprintf(side->err, sizeof(side->err), "the worker is out of memory");
    for (const wk_job_step_t *step = side->steps; r == 0 && step->sql != NULL; step++) {
        if (step->new_txn && (r = side_step(side, &commit, buf)) == 0)
            r = side_step(side, &begin, buf);
        if (r == 0)
            r = side_step(side, step, buf);
    }
    if (r == 0)
        r = side_step(side, &commit, buf);
    free(buf);
    pthread_mutex_lock(&side->mutex);
    side->failed = r == 0 ? 0 : side->err[0] != '\0' ? 1 : -1;
    side->done = 1;
    pthread_cond_signal(&side->cond);
    pthread_mutex_unlock(&side->mutex);
    return NULL;
}

/* Starts the side steps on C in a thread of their own; 0, or -1 when there is no C (run them on A). */
static int side_start(wk_job_ctx_t *ctx, side_t *side, const wk_job_step_t *steps)
{
    memset(side, 0, sizeof(*side));
    side->job = ctx->job;
    side->steps = steps;
    if (!ensure_c(ctx->job))
        return -1;
    pthread_mutex_init(&side->mutex, NULL);
    pthread_cond_init(&side->cond, NULL);
    if (pthread_create(&side->thread, NULL, side_main, side) != 0) {
        log_msg(LOG_WARN, "run %" PRId64 ": cannot start a thread for the side steps; running them in line",
                ctx->run_id);
        pthread_cond_destroy(&side->cond);
        pthread_mutex_destroy(&side->mutex);
        return -1;
    }
    return 0;
}

/* Stops the side thread if it still runs, joins it, and closes C unless it ended cleanly. */
static void side_end(side_t *side)
{
    atomic_store(&side->stop, 1);
    pthread_join(side->thread, NULL);
    pthread_cond_destroy(&side->cond);
    pthread_mutex_destroy(&side->mutex);
    if (side->failed != 0 || PQtransactionStatus(side->job->c) != PQTRANS_IDLE)
        abandon(&side->job->c);
}

/*
 * Waits, heartbeating, for the side steps to commit, and ends the side
 * thread in any case. 0, WK_JOB_ESTOP, or their recorded failure.
 */
static int side_finish(wk_job_ctx_t *ctx, side_t *side)
{
    int r = 0;
    pthread_mutex_lock(&side->mutex);
    while (!side->done && r == 0) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += POLL_MS * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&side->cond, &side->mutex, &until);
        if (!side->done) {
            pthread_mutex_unlock(&side->mutex);
            r = job_tick(ctx, 0);
            pthread_mutex_lock(&side->mutex);
        }
    }
    pthread_mutex_unlock(&side->mutex);
    side_end(side);
    if (r != 0)
        return r;
    if (side->failed > 0)
        return wk_job_fail(ctx, "%s", side->err);
    return side->failed == 0 ? 0 : WK_JOB_ESTOP;
}

/*
 * The results are committed: clean-up statements may fail (they are logged)
 * without failing the run. No heartbeat (the run is no longer running, so
 * one would read as a lost run), but a stop request still ends them at once.
 */
static void run_after_commit(wk_job_ctx_t *ctx, const char *const *after_sql)
{
    wk_job_t *job = ctx->job;
    for (const char *const *sql = after_sql; *sql != NULL && job->a != NULL; sql++) {
        char err[512];
        PGresult *res;
        int r = run_query(ctx, &job->a, *sql, 0, NULL, 0, &res, err, sizeof(err));
        if (r != 0) {
            log_msg(LOG_WARN, "run %" PRId64 ": clean-up after the commit did not finish: %s", ctx->run_id,
                    r == WK_JOB_ESTOP ? "the worker is stopping" : err);
            if (r == WK_JOB_ESTOP)
                return;
            continue;
        }
        PQclear(res);
    }
}

int wk_job_write_results(wk_job_ctx_t *ctx, const wk_job_results_t *results)
{
    wk_job_t *job = ctx->job;
    char id[24], count[24];
    snprintf(id, sizeof(id), "%" PRId64, ctx->run_id);
    snprintf(count, sizeof(count), "%" PRId64, results->customers);
    const char *lockparams[] = {id, job->name};
    PGresult *res;
    int r;

    if ((r = write_step(ctx, "BEGIN ISOLATION LEVEL READ COMMITTED", 0, NULL, NULL)) != 0)
        return r;
    /* Heartbeats go on meanwhile, so a cancel or a take-over stops these statements within a second. */
    side_t side;
    int side_pending = results->side_steps != NULL;
    int side_running = side_pending && side_start(ctx, &side, results->side_steps) == 0;
    for (size_t i = 0; r == 0; i++) {
        const wk_job_step_t *step = &results->steps[i];
        if (side_pending && (i == results->side_before || step->sql == NULL)) {
            side_pending = 0;
            if (side_running) {
                side_running = 0; /* side_finish() ends it, whatever happens */
                r = side_finish(ctx, &side);
            } else {
                r = run_steps(ctx, results->side_steps);
            }
            if (r != 0)
                break;
        }
        if (step->sql == NULL)
            break;
        r = run_step(ctx, step);
    }
    if (side_running)
        side_end(&side);
    if (r != 0)
        return r;
    /*
     * Only now lock the run, so a cancel waits milliseconds, not the whole
     * write. No heartbeat from here on, not even while this statement runs:
     * once it holds the row, a heartbeat would wait for our own lock.
     */
    ctx->locked = 1;
    if ((r = write_step(ctx, SQL_LOCK, 2, lockparams, &res)) != 0) {
        ctx->locked = 0;
        return r;
    }
    int ours = PQntuples(res) == 1;
    PQclear(res);
    if (!ours) {
        ctx->locked = 0;
        ctx->stop_reason = STOP_LOST;
        return WK_JOB_ESTOP; /* the caller rolls back */
    }
    json_object_set_new(results->stats, "duration_ms", json_integer(wk_job_now_ms() - ctx->start_ms));
    char *stats = json_dumps(results->stats, JSON_COMPACT);
    if (stats == NULL)
        abort();
    char *model = results->model != NULL ? json_dumps(results->model, JSON_COMPACT) : NULL;
    if (results->model != NULL && model == NULL)
        abort();
    const char *params[] = {id, count, stats, model};
    r = write_step(ctx, SQL_SUCCEED, 4, params, NULL);
    free(stats);
    free(model);
    if (r == 0)
        r = write_step(ctx, "COMMIT", 0, NULL, NULL);
    ctx->locked = 0;
    if (r == 0 && results->after_sql != NULL)
        run_after_commit(ctx, results->after_sql);
    return r;
}

/* --- one run ------------------------------------------------------------------------- */

/* Marks the run failed with ctx->error. 0, or an error when nothing could be recorded. */
static int mark_failed(wk_job_ctx_t *ctx)
{
    wk_job_t *job = ctx->job;
    char id[24], err[256];
    snprintf(id, sizeof(id), "%" PRId64, ctx->run_id);
    const char *params[] = {id, job->name, ctx->error[0] != '\0' ? ctx->error : "the run failed for an unknown reason"};
    PGresult *res;
    int r = ensure_b(job) ? run_query(ctx, &job->b, SQL_FAIL, 3, params, 0, &res, err, sizeof(err)) : ERR_UNAVAILABLE;
    if (r != 0) {
        log_msg(LOG_WARN, "run %" PRId64 ": cannot mark it failed (%s); will retry", ctx->run_id, ctx->error);
        return r;
    }
    PQclear(res);
    log_msg(LOG_WARN, "run %" PRId64 " failed: %s", ctx->run_id, ctx->error);
    return 0;
}

/*
 * After a claim that found no row (ran = 0) or a run lost midway (ran = 1):
 * acknowledge, except when we lost a run we were running to another worker,
 * because our entry may have passed to that worker (XAUTOCLAIM) and an
 * acknowledgement would take it from under it. A merely duplicate entry is
 * still ours; the loop reads it again, finds the run held and acknowledges.
 */
static wk_job_outcome_t settle_lost(wk_job_ctx_t *ctx, int ran, const char *what)
{
    wk_job_t *job = ctx->job;
    char id[24], err[256];
    snprintf(id, sizeof(id), "%" PRId64, ctx->run_id);
    const char *params[] = {id};
    PGresult *res;
    if (!ensure_b(job) || run_query(ctx, &job->b, SQL_STATUS, 1, params, 0, &res, err, sizeof(err)) != 0)
        return WK_JOB_RETRY;
    wk_job_outcome_t outcome = WK_JOB_ACK;
    if (PQntuples(res) == 0) {
        log_msg(LOG_WARN, "run %" PRId64 " does not exist; acknowledging its entry", ctx->run_id);
    } else {
        const char *status = PQgetvalue(res, 0, 0), *worker = PQgetvalue(res, 0, 1);
        if (ran)
            ctx->ended = strcmp(status, "cancelled") == 0 ? "cancelled" : "lost";
        if (strcmp(status, "running") == 0 && strcmp(worker, job->name) != 0) {
            log_msg(LOG_INFO, "run %" PRId64 " %s: worker %s holds it", ctx->run_id, what, worker);
            outcome = ran ? WK_JOB_KEEP : WK_JOB_ACK;
        } else {
            log_msg(LOG_INFO, "run %" PRId64 " %s: it is %s", ctx->run_id, what, status);
        }
    }
    PQclear(res);
    return outcome;
}

static int dispatch_kind(wk_job_ctx_t *ctx, const char *kind, const char *params_text)
{
    json_error_t jerr;
    json_t *params = json_loads(params_text, JSON_REJECT_DUPLICATES, &jerr);
    int r;
    if (params == NULL || !json_is_object(params))
        r = wk_job_fail(ctx, "the run's params are not a JSON object");
    else if (strcmp(kind, "rfm") == 0)
        r = wk_rfm_job_run(ctx, params);
    else if (strcmp(kind, "clv") == 0)
        r = wk_clv_job_run(ctx, params);
    else if (strcmp(kind, "backup") == 0)
        r = wk_backup_job_run(ctx, params);
    else if (strcmp(kind, "ownership_transfer") == 0)
        r = wk_transfer_job_run(ctx, params);
    else
        r = wk_job_fail(ctx, "kind %s is not known to this worker", kind);
    json_decref(params);
    return r;
}

/* Counts a claimed run's end in the metrics, and its duration when it succeeded or failed. */
static void count_run(wk_job_t *job, const wk_job_ctx_t *ctx, const char *kind)
{
    if (job->runs_total == NULL)
        return;
    const char *status = ctx->ended != NULL ? ctx->ended : "interrupted";
    prom_add(job->runs_total, (const char *const[]){kind, status}, 1);
    if (strcmp(status, "succeeded") == 0 || strcmp(status, "failed") == 0)
        prom_observe(job->run_seconds, (const char *const[]){kind}, (double)(wk_job_now_ms() - ctx->start_ms) / 1000.0);
}

static wk_job_outcome_t run_job(wk_job_t *job, int64_t run_id, const char *entry_id)
{
    wk_job_ctx_t ctx = {.job = job, .run_id = run_id, .total = -1};
    char id[24], idle[24], err[256];
    snprintf(id, sizeof(id), "%" PRId64, run_id);
    snprintf(idle, sizeof(idle), "%d", job->claim_idle_ms);
    const char *params[] = {id, job->name, idle};
    PGresult *res;
    wk_job_outcome_t outcome;

    if (!ensure_b(job))
        return WK_JOB_RETRY;
    int r = run_query(&ctx, &job->b, SQL_CLAIM, 3, params, 0, &res, err, sizeof(err));
    if (r == WK_JOB_ESTOP)
        return WK_JOB_KEEP;
    if (r != 0) {
        log_msg(LOG_WARN, "run %" PRId64 ": cannot claim it: %s", run_id, err);
        return WK_JOB_RETRY;
    }
    if (PQntuples(res) == 0) {
        PQclear(res);
        return settle_lost(&ctx, 0, "was not claimed");
    }
    char kind[32];
    snprintf(kind, sizeof(kind), "%s", PQgetvalue(res, 0, 0));
    int attempts = atoi(PQgetvalue(res, 0, 2));
    /* Every line of the run names the request that started it (none for scheduled runs). */
    log_ctx_t logctx;
    log_ctx_make(&logctx, PQgetisnull(res, 0, 3) ? NULL : PQgetvalue(res, 0, 3),
                 PQgetisnull(res, 0, 4) ? NULL : PQgetvalue(res, 0, 4));
    log_ctx_set(&logctx);
    h2o_mem_init_pool(&ctx.pool);
    char *params_text = h2o_mem_alloc_pool(&ctx.pool, (size_t)PQgetlength(res, 0, 1) + 1);
    memcpy(params_text, PQgetvalue(res, 0, 1), (size_t)PQgetlength(res, 0, 1) + 1);
    PQclear(res);
    ctx.start_ms = ctx.last_beat_try = ctx.last_beat_ok = wk_job_now_ms();
    atomic_store(&job->alive_ms, ctx.start_ms);
    log_msg(LOG_INFO, "run %" PRId64 " (%s) claimed from entry %s, attempt %d", run_id, kind, entry_id, attempts);

    if (attempts > MAX_ATTEMPTS) {
        wk_job_fail(&ctx, "the run was started %d times without finishing; the last attempts may have crashed workers",
                    attempts - 1);
        r = ERR_INVALID;
    } else if (!ensure_a(job)) {
        r = WK_JOB_ESTOP;
        ctx.stop_reason = STOP_STALE; /* retried later, still ours */
    } else {
        r = dispatch_kind(&ctx, kind, params_text);
    }
    reset_a(job);

    if (r == 0) {
        log_msg(LOG_INFO, "run %" PRId64 " succeeded in %" PRId64 " ms", run_id, wk_job_now_ms() - ctx.start_ms);
        outcome = WK_JOB_ACK;
        ctx.ended = "succeeded";
    } else if (r == WK_JOB_ESTOP) {
        switch (ctx.stop_reason) {
        case STOP_LOST:
            outcome = settle_lost(&ctx, 1, "stopped without writing results");
            break;
        case STOP_STALE:
            log_msg(LOG_WARN, "run %" PRId64 ": stopped; will retry", run_id);
            outcome = WK_JOB_RETRY;
            break;
        default:
            log_msg(LOG_INFO, "run %" PRId64 ": stopped for shutdown; its entry stays pending", run_id);
            outcome = WK_JOB_KEEP;
            break;
        }
    } else {
        outcome = mark_failed(&ctx) == 0 ? WK_JOB_ACK : WK_JOB_RETRY;
        if (outcome == WK_JOB_ACK)
            ctx.ended = "failed";
    }
    count_run(job, &ctx, kind);
    h2o_mem_clear_pool(&ctx.pool);
    log_ctx_set(NULL);
    return outcome;
}

/* --- the thread and its hand-over -------------------------------------------------------- */

static void *thread_main(void *arg)
{
    wk_job_t *job = arg;
    for (;;) {
        pthread_mutex_lock(&job->mutex);
        while (!job->has_job && !atomic_load(&job->stop))
            pthread_cond_wait(&job->cond, &job->mutex);
        if (!job->has_job) {
            pthread_mutex_unlock(&job->mutex);
            break;
        }
        int64_t run_id = job->run_id;
        char entry_id[WK_JOB_ENTRY_ID_MAX];
        memcpy(entry_id, job->entry_id, sizeof(entry_id));
        job->has_job = 0;
        pthread_mutex_unlock(&job->mutex);

        wk_job_outcome_t outcome = atomic_load(&job->stop) ? WK_JOB_KEEP : run_job(job, run_id, entry_id);
        pthread_mutex_lock(&job->mutex);
        job->outcome = outcome;
        pthread_mutex_unlock(&job->mutex);
        h2o_multithread_send_message(&job->receiver, &job->msg);
    }
    if (job->a != NULL)
        reset_a(job);
    PQfinish(job->a);
    PQfinish(job->b);
    PQfinish(job->c);
    job->a = job->b = job->c = NULL;
    return NULL;
}

static void deliver(wk_job_t *job)
{
    pthread_mutex_lock(&job->mutex);
    wk_job_outcome_t outcome = job->outcome;
    int64_t run_id = job->run_id;
    char entry_id[WK_JOB_ENTRY_ID_MAX];
    memcpy(entry_id, job->entry_id, sizeof(entry_id));
    pthread_mutex_unlock(&job->mutex);
    job->busy = 0;
    job->cb(job->cb_data, run_id, entry_id, outcome);
}

static void on_message(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages)
{
    wk_job_t *job = H2O_STRUCT_FROM_MEMBER(wk_job_t, receiver, receiver);
    while (!h2o_linklist_is_empty(messages)) {
        h2o_multithread_message_t *m = H2O_STRUCT_FROM_MEMBER(h2o_multithread_message_t, link, messages->next);
        h2o_linklist_unlink(&m->link);
        deliver(job);
    }
}

/* Registers the runs' families, every known kind and status shown at zero from the start. */
static void register_metrics(wk_job_t *job, prom_registry_t *reg)
{
    static const char *const kinds[] = WK_JOB_KINDS, *const statuses[] = WK_JOB_RUN_STATUSES;
    /* Runs last seconds to hours. */
    static const double bounds[] = {0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200};
    job->runs_total = prom_counter(reg, "clientele_worker_runs_total",
                                   "Runs this worker claimed and ended, by kind and how they ended: succeeded, failed,"
                                   " cancelled (while running), lost (to another worker) or interrupted (shutdown or"
                                   " database lost; retried).",
                                   (const char *const[]){"kind", "status", NULL});
    job->run_seconds = prom_histogram(reg, "clientele_worker_run_duration_seconds",
                                      "Time from claiming a run to its end, for runs that succeeded or failed.",
                                      (const char *const[]){"kind", NULL}, bounds, sizeof(bounds) / sizeof(bounds[0]));
    for (size_t k = 0; kinds[k] != NULL; k++) {
        for (size_t st = 0; statuses[st] != NULL; st++)
            prom_touch(job->runs_total, (const char *const[]){kinds[k], statuses[st]});
        prom_touch(job->run_seconds, (const char *const[]){kinds[k]});
    }
}

wk_job_t *wk_job_start(h2o_multithread_queue_t *queue, const wk_job_config_t *conf, wk_job_done_cb cb, void *data)
{
    wk_job_t *job = calloc(1, sizeof(*job));
    if (job == NULL)
        abort();
    job->cb = cb;
    job->cb_data = data;
    job->conninfo = strdup(conf->conninfo);
    job->name = strdup(conf->worker_name);
    job->claim_idle_ms = conf->claim_idle_ms;
    job->role = strdup(conf->role != NULL ? conf->role : "");
    job->backup_dir = strdup(conf->backup_dir != NULL ? conf->backup_dir : ".run/backups");
    if (job->conninfo == NULL || job->name == NULL || job->role == NULL || job->backup_dir == NULL)
        abort();
    job->conf = (wk_job_config_t){.conninfo = job->conninfo,
                                  .worker_name = job->name,
                                  .claim_idle_ms = job->claim_idle_ms,
                                  .role = job->role,
                                  .backup_dir = job->backup_dir,
                                  .backup_keep = conf->backup_keep > 0 ? conf->backup_keep : 1};
    pthread_mutex_init(&job->mutex, NULL);
    pthread_cond_init(&job->cond, NULL);
    if (conf->metrics != NULL)
        register_metrics(job, conf->metrics);
    h2o_multithread_register_receiver(queue, &job->receiver, on_message);
    if (pthread_create(&job->thread, NULL, thread_main, job) != 0) {
        log_msg(LOG_ERROR, "cannot create the job thread");
        abort();
    }
    return job;
}

int wk_job_submit(wk_job_t *job, int64_t run_id, const char *entry_id)
{
    if (job->busy)
        return ERR_CONFLICT;
    if (strlen(entry_id) >= WK_JOB_ENTRY_ID_MAX)
        return ERR_INVALID;
    job->busy = 1;
    atomic_store(&job->alive_ms, wk_job_now_ms());
    pthread_mutex_lock(&job->mutex);
    job->run_id = run_id;
    snprintf(job->entry_id, sizeof(job->entry_id), "%s", entry_id);
    job->has_job = 1;
    pthread_cond_signal(&job->cond);
    pthread_mutex_unlock(&job->mutex);
    return 0;
}

int wk_job_busy(wk_job_t *job)
{
    return job->busy;
}

int64_t wk_job_alive_ms(wk_job_t *job)
{
    return atomic_load(&job->alive_ms);
}

void wk_job_stop(wk_job_t *job)
{
    atomic_store(&job->stop, 1);
    pthread_mutex_lock(&job->mutex);
    pthread_cond_signal(&job->cond);
    pthread_mutex_unlock(&job->mutex);
    pthread_join(job->thread, NULL);
    /* The thread is gone and the queue is only read on this thread: a pending completion is ours to take. */
    if (h2o_linklist_is_linked(&job->msg.link)) {
        h2o_linklist_unlink(&job->msg.link);
        deliver(job);
    }
    h2o_multithread_unregister_receiver(job->receiver.queue, &job->receiver);
    pthread_cond_destroy(&job->cond);
    pthread_mutex_destroy(&job->mutex);
    free(job->conninfo);
    free(job->name);
    free(job->role);
    free(job->backup_dir);
    free(job);
}
