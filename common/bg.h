/*
 * common/bg.h - blocking calls (name resolution, query cancels) on helper
 * threads, with their completions delivered back on an event loop.
 *
 * A loop must never block, yet getaddrinfo() and PQcancel() do. Callers
 * embed a bg_job_t in their own struct, set `run` (called on a helper
 * thread) and `done` (called later on the loop that owns the box), and
 * submit it. A box is one loop's mailbox: an eventfd watched by the loop
 * plus a locked list of finished jobs. Boxes are reference-counted by the
 * jobs in flight, so closing a box while a lookup still runs is safe: the
 * late job is handed to its `discard` hook on the helper thread instead of
 * `done`, and the box's memory goes with its last job.
 *
 * The helper threads are process-wide, created on first use and never
 * joined; a fork()ed child (Check's test runner) starts its own.
 */
#ifndef CLIENTELE_COMMON_BG_H
#define CLIENTELE_COMMON_BG_H

#define H2O_USE_LIBUV 0
#include <h2o/linklist.h>
#include <h2o/socket.h>

typedef struct st_bg_box_t bg_box_t;
typedef struct st_bg_job_t bg_job_t;

struct st_bg_job_t {
    void (*run)(bg_job_t *job);     /* on a helper thread: the blocking call */
    void (*done)(bg_job_t *job);    /* on the box's loop, once run returned; owns job again */
    void (*discard)(bg_job_t *job); /* instead of done when the box was closed; any thread; frees job */
    bg_box_t *_box;
    h2o_linklist_t _link;
};

/* Creates a mailbox delivering completions on loop. Never fails (aborts on exhaustion). */
bg_box_t *bg_box_open(h2o_loop_t *loop);
/* Stops delivery: finished and later jobs go to their discard hook. Call on the box's loop. */
void bg_box_close(bg_box_t *box);
/*
 * Queues job for a helper thread. With box NULL the job is fire-and-forget
 * (done is never called; discard, if set, runs after run on the helper
 * thread). Never calls back before it returns.
 */
void bg_submit(bg_box_t *box, bg_job_t *job);

#endif
