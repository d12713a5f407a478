/*
 * worker/scheduler.h - turns analytics schedules into queued runs, with one leader among the workers.
 *
 * Every worker runs a scheduler on its loop. The schedulers elect one
 * leader through a Redis lock ("clientele:scheduler:leader", SET NX PX,
 * renewed by a compare-and-expire script); only the leader enqueues runs.
 * Correctness does not rest on the lock alone: a run is inserted under the
 * unique index (schedule_id, due_at) and the schedule is advanced only if
 * its next_run_at is still the due time read, so even two leaders at once
 * yield one run per due time. next_run_at moves to the first fire time
 * after now, not after the due time, so a schedule that missed several
 * slots while every worker was down gets exactly one run.
 *
 * The daily backup is one more schedule, of kind `backup` (cron "M H * * *"
 * in CLIENTELE_TIMEZONE for CLIENTELE_BACKUP_AT, params {}): whenever a
 * worker becomes the leader it writes its configuration into that schedule
 * (creating it, or disabling it for "off"), so the leader's configuration
 * is the one that holds, and due backups are enqueued like any other run:
 * one per day however many workers run.
 *
 * Ownership: the scheduler borrows the loop, db and kv; it owns its
 * timers, its copy of the worker name and its cache of time zones.
 */
#ifndef CLIENTELE_WORKER_SCHEDULER_H
#define CLIENTELE_WORKER_SCHEDULER_H

#include <stdint.h>

#include "common/db.h"
#include "common/kv.h"
#include "common/tzdb.h"

typedef struct st_wk_scheduler_t wk_scheduler_t;

/* The daily backup a leader writes into the schedule of kind backup. */
typedef struct st_wk_scheduler_backup_t {
    int at_min;           /* minutes after midnight (CLIENTELE_BACKUP_AT); -1: no daily backup */
    const char *timezone; /* IANA zone (CLIENTELE_TIMEZONE); copied */
} wk_scheduler_backup_t;

/*
 * Starts the scheduler on the worker's loop: leader election and, while
 * leader, enqueuing due runs. worker_name is copied and must be unique
 * among the workers (it is the lock's value). Zones are looked up in tzdb
 * (loaded before the loop starts, so the loop never reads zoneinfo files).
 * backup, when not NULL, is the daily backup to keep the backup schedule at
 * (copied); NULL leaves that schedule as it is. Never fails; db, kv and
 * tzdb must outlive the scheduler (see wk_scheduler_free()).
 */
wk_scheduler_t *wk_scheduler_new(h2o_loop_t *loop, db_t *db, kv_t *kv, const tzdb_t *tzdb, const char *worker_name,
                                 const wk_scheduler_backup_t *backup);

/*
 * Gives up leadership (sends a script that deletes the lock if it still
 * holds our name), cancels timers and frees everything. Call it before
 * db_close() and kv_close(): a query or command still in flight keeps a
 * small remnant of the scheduler alive until its callback, which those
 * calls fire at the latest. The lock release goes out the next time the
 * loop runs; without that, the lock simply expires within 10 s.
 */
void wk_scheduler_free(wk_scheduler_t *s);

/* 1 while this worker holds the leader lock (its lease not yet run out). Loop thread. */
int wk_scheduler_is_leader(const wk_scheduler_t *s);

/* --- module-internal: the statements in worker/scheduler_db.c ------------- */

/*
 * Columns of the due-schedule rows, in order: id, kind, cron, timezone,
 * params (JSON text), next_run_at (microseconds since the epoch; NULL when
 * not computed yet), version, now() (microseconds since the epoch).
 */
enum {
    WK_SCHED_COL_ID,
    WK_SCHED_COL_KIND,
    WK_SCHED_COL_CRON,
    WK_SCHED_COL_TIMEZONE,
    WK_SCHED_COL_PARAMS,
    WK_SCHED_COL_NEXT_US,
    WK_SCHED_COL_VERSION,
    WK_SCHED_COL_NOW_US,
};

/* Up to `limit` enabled schedules with next_run_at NULL or <= now() and id > after_id, by id. */
int wk_scheduler_db__due(db_t *db, int64_t after_id, int limit, db_cb cb, void *data);

/*
 * Sets next_run_at (RFC 3339) of a schedule whose next_run_at is still NULL
 * and whose version is still `version`. Command result; no rows.
 */
int wk_scheduler_db__init_next(db_t *db, int64_t id, int64_t version, const char *next_run_at, db_cb cb, void *data);

/*
 * In one statement: inserts the run for (schedule id, due_at) with the
 * given kind and complete params (JSON text), unless one exists; writes
 * its outbox message when it was inserted; and sets last_run_at = due_at,
 * last_run_id and next_run_at - all only while the schedule is enabled,
 * still of `kind`, at `version` and with next_run_at = due_at. One row:
 * the new run's id (NULL when none was inserted) and whether the schedule
 * was advanced ("t"/"f").
 */
int wk_scheduler_db__enqueue(db_t *db, int64_t id, int64_t version, const char *kind, const char *params,
                             const char *due_at, const char *next_run_at, db_cb cb, void *data);

/*
 * Makes the backup schedule run daily at `cron` in `timezone` (creating it,
 * or changing it and resetting next_run_at), or, with cron NULL, disables
 * it. One row (the schedule's id) when something changed, none otherwise.
 */
int wk_scheduler_db__sync_backup(db_t *db, const char *cron, const char *timezone, db_cb cb, void *data);

#endif
