/*
 * worker/job.h - the job thread: claims and runs one run at a time, off the loop.
 *
 * The loop thread (worker/runs.c) hands the job thread one stream entry at
 * a time with wk_job_submit(); the job thread claims the run in PostgreSQL,
 * runs its kind (worker/rfm_job.c), writes the results and reports an
 * outcome back to the loop through an h2o multithread message, so the done
 * callback always runs on the loop thread. Blocking libpq is fine here: the
 * job thread owns two connections of its own, A for the work (long reads
 * and the one result transaction) and B for small autocommit updates
 * (claim, progress + heartbeat, marking a run failed), and a third, C, that
 * a short-lived side thread uses for work a write does beside A's
 * transaction (see side_steps).
 *
 * A kind's code sees a wk_job_ctx_t: connection A, progress reporting
 * (which is also the heartbeat and the cancellation check), query and COPY
 * helpers that keep heartbeating while PostgreSQL works, and
 * wk_job_write_results(), which writes a kind's results in one transaction
 * only while the run is still this worker's and still running. The SQL of
 * the job thread lives in worker/job.c and worker/rfm_job.c rather than in
 * a *_db.c file: it runs on blocking connections that the asynchronous
 * db_t of the loop cannot serve, and the COPY statements must be built.
 */
#ifndef CLIENTELE_WORKER_JOB_H
#define CLIENTELE_WORKER_JOB_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "common/prom.h"

#define H2O_USE_LIBUV 0
#include <h2o/memory.h>
#include <h2o/multithread.h>

typedef struct st_wk_job_t wk_job_t;
typedef struct st_wk_job_ctx_t wk_job_ctx_t;

/* What the loop does with the stream entry once the job thread is done with it. */
typedef enum {
    WK_JOB_ACK = 0, /* finished, failed, cancelled, unknown or a duplicate: acknowledge the entry */
    WK_JOB_KEEP,    /* stopped for shutdown or lost to another worker: leave the entry pending */
    WK_JOB_RETRY,   /* PostgreSQL could not be reached: leave the entry pending and try it again later */
} wk_job_outcome_t;

/* Runs on the loop thread, once per submitted entry. entry_id is only valid during the call. */
typedef void (*wk_job_done_cb)(void *data, int64_t run_id, const char *entry_id, wk_job_outcome_t outcome);

typedef struct st_wk_job_config_t {
    const char *conninfo;     /* copied */
    const char *worker_name;  /* copied; written to analytics_runs.worker */
    int claim_idle_ms;        /* a run whose heartbeat is older than this may be taken over */
    prom_registry_t *metrics; /* borrowed; where the job thread counts its runs (NULL: nowhere) */
    const char *role;        /* copied; NULL or "": the login role. Else every session acts as it (SET ROLE) */
    const char *backup_dir;  /* copied; where runs of kind backup write their files */
    int backup_keep;         /* backup files kept (the newest) */
} wk_job_config_t;

/*
 * How a run claimed by this worker ended, the `status` label of
 * clientele_worker_runs_total: succeeded, failed, cancelled (while it ran),
 * lost (another worker holds it now) or interrupted (shutdown, or the
 * database was lost: the run is retried).
 */
#define WK_JOB_RUN_STATUSES                                                                                            \
    {                                                                                                                  \
        "succeeded", "failed", "cancelled", "lost", "interrupted", NULL                                                \
    }
/* The kinds this worker runs, shown in its metrics from the start. */
#define WK_JOB_KINDS                                                                                                   \
    {                                                                                                                  \
        "rfm", "clv", "backup", NULL                                                                                   \
    }

/* Longest stream entry id kept ("1700000000000-12345"). */
#define WK_JOB_ENTRY_ID_MAX 48

/*
 * Starts the job thread. Completions are sent through `queue` (of the
 * calling loop thread) to cb. Never fails (it aborts if no thread can be
 * created); connections are opened when the first run arrives.
 */
wk_job_t *wk_job_start(h2o_multithread_queue_t *queue, const wk_job_config_t *conf, wk_job_done_cb cb, void *data);
/*
 * Hands one stream entry to the job thread (entry_id is copied). Returns 0
 * and calls the done callback later from the loop, never from inside this
 * call; or returns ERR_CONFLICT while a job is still running (or its
 * completion not yet delivered), or ERR_INVALID for an entry id longer than
 * WK_JOB_ENTRY_ID_MAX - 1, without calling it.
 */
int wk_job_submit(wk_job_t *job, int64_t run_id, const char *entry_id);
/* 1 from wk_job_submit() until the done callback has run. Loop thread. */
int wk_job_busy(wk_job_t *job);
/*
 * Monotonic milliseconds (wk_job_now_ms()) when the running job last showed
 * it still holds its run: a successful heartbeat, or progress while it holds
 * the run's row lock. The loop keeps the stream entry claimed only while
 * this is recent.
 */
int64_t wk_job_alive_ms(wk_job_t *job);
/*
 * Asks a running job to stop (it writes nothing and its entry stays
 * pending), joins the thread, closes its connections and frees job. A
 * completion that was sent but not yet delivered is delivered from inside
 * this call, so the caller may still acknowledge a finished run.
 */
void wk_job_stop(wk_job_t *job);
/* CLOCK_MONOTONIC in milliseconds. Any thread. */
int64_t wk_job_now_ms(void);

/* --- for the kinds of runs (job thread only) --------------------------------- */

/* A kind returns this when the run must end without writing (cancelled, taken over, shutting down). */
#define WK_JOB_ESTOP (-100)

/* The run being worked on, its worker name, and a pool cleared when the run ends. */
int64_t wk_job_run_id(const wk_job_ctx_t *ctx);
h2o_mem_pool_t *wk_job_pool(wk_job_ctx_t *ctx);
/* Connection A, connected and outside any transaction when a kind starts. Do not close it. */
PGconn *wk_job_conn(wk_job_ctx_t *ctx);
/* The job's configuration (connection string, role, backup directory): for kinds that open their own sessions. */
const wk_job_config_t *wk_job_config(const wk_job_ctx_t *ctx);

/*
 * Records why the run failed, in words a person can act on; the run is
 * marked failed with this message. Returns ERR_INVALID, for `return
 * wk_job_fail(...)`. The first message recorded wins.
 */
int wk_job_fail(wk_job_ctx_t *ctx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/*
 * Sets the run's progress (0..1), customers_done and, when total >= 0,
 * customers_total, and writes them together with the heartbeat when one is
 * due (every 500 ms; at once when force). Cheap when nothing is due: call
 * it every few thousand rows. Returns 0, or WK_JOB_ESTOP when the run was
 * cancelled or taken over or the worker is shutting down.
 */
int wk_job_progress(wk_job_ctx_t *ctx, double progress, int64_t done, int64_t total, int force);

/*
 * Runs one statement on A (text parameters; NULL is SQL NULL), heartbeating
 * while the server works. sql needs no static storage. On success returns
 * 0 and the result in *res (the caller PQclear()s it). Otherwise returns
 * WK_JOB_ESTOP or a database failure recorded with `doing` ("the database
 * connection was lost while <doing>: ..." or "the database reported an
 * error while <doing>: ..."); *res is then NULL.
 */
int wk_job_exec(wk_job_ctx_t *ctx, const char *sql, int nparams, const char *const *params, const char *doing,
                PGresult **res);

/*
 * Called with each COPY data message of a COPY ... TO STDOUT, in order.
 * Return 0 to go on, or a negative value (after wk_job_fail()) to abort.
 * data is only valid during the call.
 */
typedef int (*wk_job_copy_cb)(void *arg, const char *data, size_t len);

/*
 * Runs a COPY ... TO STDOUT on A and passes every message to cb,
 * heartbeating in between (as wk_job_progress() does). Returns 0 when the
 * COPY completed, cb's negative value, WK_JOB_ESTOP, or a database failure
 * recorded with `doing`.
 */
int wk_job_copy_out(wk_job_ctx_t *ctx, const char *sql, wk_job_copy_cb cb, void *arg, const char *doing);

/* Writes the next at most `cap` bytes of COPY data into buf; returns their count, 0 when done. */
typedef size_t (*wk_job_produce_cb)(void *arg, char *buf, size_t cap);

/* One step of a write transaction: a statement, or with produce set a COPY ... FROM STDIN fed by it. */
typedef struct st_wk_job_step_t {
    const char *sql; /* no parameters; needs no static storage */
    wk_job_produce_cb produce;
    void *arg;
    /*
     * Side steps only: commit what the steps before did and run this one and
     * the rest in a new transaction (e.g. to give back a strong lock at once).
     * Ignored when the side steps run in line in the run's transaction.
     */
    int new_txn;
    /*
     * Steps of the run's transaction only: when progress > 0, the run's
     * progress (0..1) and records done (`done`) once this step has run,
     * written with the next heartbeat (what happened so far is still
     * uncommitted; the progress only says how far the write is).
     */
    double progress;
    int64_t done;
} wk_job_step_t;

/* A kind's results, for wk_job_write_results(). */
typedef struct st_wk_job_results_t {
    /* The steps of the write, in order, up to one whose sql is NULL. */
    const wk_job_step_t *steps;
    /*
     * May be NULL: steps (same form) that run meanwhile on a connection of
     * their own, in a transaction of their own that has committed before
     * steps[side_before] starts (before the run's row is locked when
     * side_before is past the last step); they fail the write if they fail.
     * A step with new_txn set starts a new transaction of theirs (see
     * wk_job_step_t). What they commit must stay unseen by readers until the run's
     * transaction commits (e.g. a table only a later step puts to use), and
     * a failure of the run's transaction leaves it behind: the kind cleans
     * up. Without a free connection they run on A, in the run's
     * transaction, just before steps[side_before].
     */
    const wk_job_step_t *side_steps;
    size_t side_before;
    /*
     * May be NULL: statements without parameters run after the commit, each
     * in a transaction of its own, up to a NULL; clean-up whose failure is
     * only logged.
     */
    const char *const *after_sql;
    int64_t customers; /* customers_done and customers_total of the finished run */
    json_t *stats;     /* borrowed; "duration_ms" is added */
    json_t *model;     /* borrowed, may be NULL: the run's fitted model (kind clv) */
} wk_job_results_t;

/*
 * In one transaction on A: runs the steps (and the side steps beside
 * them; heartbeating all along: a cancel stops them), then locks the run's
 * row and checks that it is still this worker's and running (if not: rolls back and returns WK_JOB_ESTOP),
 * marks the run succeeded with its statistics, and commits; then runs
 * after_sql. Returns 0, WK_JOB_ESTOP, or a recorded database failure;
 * anything but 0 leaves nothing written in the run's transaction (side
 * steps may have committed; see side_steps).
 */
int wk_job_write_results(wk_job_ctx_t *ctx, const wk_job_results_t *results);

#endif
