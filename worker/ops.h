/*
 * worker/ops.h - the worker's operations listener: /healthz, /readyz and /metrics.
 *
 * An HTTP/1.1 server (h2o) on the worker's event loop, at
 * CLIENTELE_WORKER_LISTEN. The loop runs no job (runs are computed on the
 * job thread, worker/job.c), so a run that takes minutes never delays
 * these answers; the loop's watchdog in /metrics shows it.
 *
 *  - GET /healthz: 200 {"status":"ok"} while the process serves its loop.
 *  - GET /readyz: 200 when PostgreSQL answers a query, Redis answers a
 *    PING (and the stream reader's connection is up) and the consumer
 *    group is joined; else 503, a problem naming each check in `checks`.
 *  - GET /metrics: Prometheus text: the families registered on the
 *    process's registry (runs by kind and status, run durations; later
 *    features register their own counters there), whether this worker
 *    is busy, the schedule leader and in the consumer group, the stream's
 *    lag and pending entries (XINFO GROUPS), the outbox backlog, and the
 *    figures the API shows too (loop lag, log drops, database pool, Redis).
 *
 * Every answer closes its connection (probes and scrapes open one per
 * request), so shutdown rarely finds one open. No request body is read.
 *
 * Ownership: wk_ops_t borrows the loop, db, both kv clients, runs,
 * scheduler, the registry and the watchdog; wk_ops_stop() drops the
 * borrowed runs and scheduler (call it before freeing those). It owns its
 * h2o configuration and context and the listening socket.
 */
#ifndef CLIENTELE_WORKER_OPS_H
#define CLIENTELE_WORKER_OPS_H

#include <stdint.h>

#include "common/db.h"
#include "common/kv.h"
#include "common/prom.h"
#include "common/watchdog.h"
#include "runs.h"
#include "scheduler.h"

typedef struct st_wk_ops_t wk_ops_t;

typedef struct st_wk_ops_config_t {
    const char *host; /* CLIENTELE_WORKER_LISTEN */
    uint16_t port;
    db_t *db;
    kv_t *kv, *reader;
    wk_runs_t *runs;
    wk_scheduler_t *scheduler;
    prom_registry_t *metrics;
    const watchdog_t *watchdog; /* the loop's */
} wk_ops_config_t;

/*
 * Resolves and binds the address (start-up only: this blocks on name
 * resolution) and starts accepting on loop. Returns NULL with a message in
 * err when the address cannot be used.
 */
wk_ops_t *wk_ops_start(h2o_loop_t *loop, const wk_ops_config_t *conf, char *err, size_t errlen);
/*
 * Stops accepting; /readyz answers 503 from now on and the borrowed runs
 * and scheduler are no longer read. Connections being answered finish.
 */
void wk_ops_stop(wk_ops_t *ops);
/* 1 when no connection is open any more (keep running the loop until then, or a deadline). */
int wk_ops_idle(wk_ops_t *ops);
/*
 * Frees ops; call after wk_ops_stop() and after db_close()/kv_close() (which
 * answer the probes still waiting). Returns 0, or -1 when a connection was
 * still open: its h2o state then stays (reachable) until the process exits,
 * and the loop must not be destroyed.
 */
int wk_ops_free(wk_ops_t *ops);

/* --- module-internal: the statements in worker/ops_db.c ---------------------------------- */

/* SELECT 1: the pool reaches PostgreSQL. */
int wk_ops_db_ping(db_t *db, db_cb cb, void *data);
/* One row: the number of "runs" outbox messages not yet published. */
int wk_ops_db_outbox_backlog(db_t *db, db_cb cb, void *data);

#endif
