/*
 * api/offload.h - a small thread pool for CPU work that must not run on an
 * event loop: parsing and freeing large request bodies.
 *
 * main.c creates one offload_pool_t before the loop threads start; each
 * loop thread creates an offload_client_t on its h2o multithread queue. A
 * job is a struct the caller allocates with an offload_job_t as its first
 * member: `work` runs on a pool thread, then `done` runs on the submitting
 * loop thread (posted with h2o_multithread_send_message), later, exactly
 * once. `done` owns the job and frees it.
 *
 * Ownership: the pool outlives every client. A client is destroyed on its
 * own loop thread during shutdown: it waits for its running jobs (blocking
 * is acceptable then: the loop serves nothing any more) and calls `done`
 * with cancelled = 1 for every job not yet delivered, so callers can drop
 * what they hold (a request reference) without answering.
 */
#ifndef CLIENTELE_API_OFFLOAD_H
#define CLIENTELE_API_OFFLOAD_H

#include <stddef.h>

#define H2O_USE_LIBUV 0
#include <h2o/multithread.h>

#include "common/log.h"

#define OFFLOAD_THREADS 2    /* pool threads; a body parse is memory-bound, more would not help on small hosts */
#define OFFLOAD_NICE 10      /* pool threads run below the loops in priority (nice value of the thread) */
#define OFFLOAD_QUEUE_CAP 64 /* jobs accepted and not finished, per pool; more are ERR_UNAVAILABLE */

typedef struct st_offload_pool_t offload_pool_t;     /* process-wide */
typedef struct st_offload_client_t offload_client_t; /* one per loop thread */
typedef struct st_offload_job_t offload_job_t;

/* Runs on a pool thread: may touch only the job's own data. */
typedef void (*offload_work_fn)(offload_job_t *job);
/* Runs on the loop thread after work (cancelled = 0) or at client destruction (cancelled = 1); frees the job. */
typedef void (*offload_done_fn)(offload_job_t *job, int cancelled);

struct st_offload_job_t {
    h2o_multithread_message_t super; /* linked into the receiver's messages once done */
    h2o_linklist_t _link;            /* pool->_pending while queued, client->_running while running */
    offload_client_t *_client;
    offload_work_fn work;
    offload_done_fn done;
    log_ctx_t _log; /* the submitter's log context, restored around done */
};

/* Starts nthreads (1-64) threads; NULL if one cannot be started. */
offload_pool_t *offload_pool_create(int nthreads, size_t cap);
/* Stops and joins the threads; every client must be destroyed first. */
void offload_pool_destroy(offload_pool_t *pool);

offload_client_t *offload_client_create(offload_pool_t *pool, h2o_multithread_queue_t *queue);
/* See above: waits for running jobs, cancels the rest. On the client's loop thread, outside its callbacks. */
void offload_client_destroy(offload_client_t *c);

/*
 * Queues job (work and done set by the caller). Returns 0, and done runs
 * later on this loop thread; or ERR_UNAVAILABLE (queue full, stopping) and
 * nothing is called: the caller still owns job.
 */
int offload_submit(offload_client_t *c, offload_job_t *job);

#endif
