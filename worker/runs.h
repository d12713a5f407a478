/*
 * worker/runs.h - the loop side of analytics runs: outbox relay, stream consumption, dispatch.
 *
 * On the worker's event loop, wk_runs_t
 *  - relays the outbox: every 500 ms it publishes unpublished "runs"
 *    messages to the Redis stream clientele:runs (XADD) and marks them
 *    published once Redis has them; while Redis is down they simply wait;
 *  - consumes the stream as a member of consumer group "workers": first its
 *    own pending entries (a restart under the same name resumes them), then
 *    new ones (XREADGROUP ... BLOCK 1000 on a Redis connection of its own),
 *    and every 5 s while idle it takes over entries another worker left
 *    pending for longer than the claim idle time (XAUTOCLAIM);
 *  - hands one entry at a time to the job thread (worker/job.c), keeps the
 *    entry claimed while the job is alive (XCLAIM ... JUSTID, so no other
 *    worker takes it over), and acknowledges it (XACK) when the job says so.
 *
 * Redis >= 6.2 is needed (XAUTOCLAIM). Ownership: wk_runs_t borrows the loop,
 * the queue, the db_t and both kv_t clients, and owns the job thread.
 */
#ifndef CLIENTELE_WORKER_RUNS_H
#define CLIENTELE_WORKER_RUNS_H

#include <stdint.h>

#include "common/db.h"
#include "common/kv.h"
#include "common/prom.h"

#define H2O_USE_LIBUV 0
#include <h2o/multithread.h>

/* The stream runs are published to, and the consumer group of the workers. */
#define WK_RUNS_STREAM "clientele:runs"
#define WK_RUNS_GROUP "workers"

typedef struct st_wk_runs_t wk_runs_t;

typedef struct st_wk_runs_config_t {
    const char *worker_name;  /* consumer name and lease name; copied */
    int claim_idle_ms;        /* CLIENTELE_WORKER_CLAIM_IDLE */
    const char *conninfo;     /* for the job thread's own connections; copied */
    prom_registry_t *metrics; /* where the job thread registers its families (NULL: none) */
    const char *role;        /* the role the job's sessions act as (SET ROLE), NULL or "" for the login role; copied */
    const char *backup_dir;  /* where runs of kind backup write (CLIENTELE_BACKUP_DIR); copied */
    int backup_keep;         /* backup files kept (CLIENTELE_BACKUP_KEEP) */
} wk_runs_config_t;

/*
 * Starts relaying and consuming, and the job thread. kv is for short
 * commands; reader must be a client of its own, used only for the blocking
 * XREADGROUP. Never fails.
 */
wk_runs_t *wk_runs_start(h2o_loop_t *loop, h2o_multithread_queue_t *queue, db_t *db, kv_t *kv, kv_t *reader,
                         const wk_runs_config_t *conf);
/*
 * Stops reading new entries, asks a running job to stop (nothing of it is
 * written; its entry stays pending), and joins the job thread. A run that
 * finished just before is still acknowledged: keep running the loop until
 * wk_runs_idle() (or a deadline) before closing db and kv.
 */
void wk_runs_stop(wk_runs_t *runs);
/* 1 when no acknowledgement or relay step is in flight (the blocking read does not count). */
int wk_runs_idle(wk_runs_t *runs);
/* 1 while this worker is a member of the consumer group (created or found) and reading. Loop thread. */
int wk_runs_group_joined(const wk_runs_t *runs);
/* 1 while a run is handed to the job thread. Loop thread. */
int wk_runs_busy(const wk_runs_t *runs);
/* Frees runs. Call after wk_runs_stop() and after db_close()/kv_close(), which fire the callbacks still pending. */
void wk_runs_free(wk_runs_t *runs);

/* --- module-internal: the statements in worker/runs_db.c ----------------------------------- */

/*
 * Up to 100 unpublished "runs" messages, oldest first: columns id, run_id,
 * request_id, trace_id (text; NULL if absent).
 */
int wk_runs_db_outbox_pending(db_t *db, db_cb cb, void *data);
/* Adds a message for every queued or running run that has none waiting. */
int wk_runs_db_republish(db_t *db, db_cb cb, void *data);
/* Marks the messages whose ids are in `ids` (a PostgreSQL array literal such as "{1,2}") published. */
int wk_runs_db_outbox_published(db_t *db, const char *ids, db_cb cb, void *data);

#endif
