/*
 * common/watchdog.h - measures how late an event loop runs its timers.
 *
 * A repeating timer every WATCHDOG_INTERVAL_MS; each time it fires it
 * records how much later than due it ran. A loop blocked by one long
 * iteration (a blocking call, a long computation) fires it late by about
 * that iteration's length, less at most one interval. Two figures:
 *  - lag: the lateness itself, what requests on the loop feel;
 *  - stall: the lateness less the time the thread spent waiting for a CPU
 *    meanwhile (the runqueue wait from /proc/thread-self/schedstat), i.e.
 *    what the loop's own code took, computing or blocked in a call. On an
 *    overloaded host lag grows while stall does not; stall is the figure
 *    that says whether the code blocks its loop. Without schedstat, stall
 *    equals lag.
 * The figures are atomics written by the loop's thread and readable from
 * any thread (GET /metrics reads them); a stall beyond WATCHDOG_WARN_MS is
 * also logged.
 *
 * Ownership: the watchdog_t belongs to its creator (embedded in a thread's
 * struct); start and stop on the loop's own thread.
 */
#ifndef CLIENTELE_COMMON_WATCHDOG_H
#define CLIENTELE_COMMON_WATCHDOG_H

#include <stdatomic.h>
#include <stdint.h>

#define H2O_USE_LIBUV 0
#include <h2o/socket.h>
#include <h2o/timeout.h>

#define WATCHDOG_INTERVAL_MS 10
#define WATCHDOG_WARN_MS 50
#define WATCHDOG_NBUCKETS 10
/* Upper bounds of the lag histogram's buckets, in milliseconds (plus +Inf). */
extern const double watchdog_buckets_ms[WATCHDOG_NBUCKETS];

typedef struct st_watchdog_t {
    _Atomic uint64_t max_us;                         /* worst lag since start */
    _Atomic uint64_t stall_max_us;                   /* worst stall since start */
    _Atomic uint64_t sum_us;                         /* all lags added up */
    _Atomic uint64_t ticks;                          /* timer firings */
    _Atomic uint64_t buckets[WATCHDOG_NBUCKETS + 1]; /* non-cumulative, last is +Inf */
    const char *name;                                /* for the warning: "api loop 0" */
    h2o_loop_t *_loop;
    h2o_timeout_t _timeout;
    h2o_timeout_entry_t _entry;
    uint64_t _due_us;
    uint64_t _wait_ns; /* runqueue wait when armed */
    int _schedstat;    /* fd of /proc/thread-self/schedstat, or -1 */
    int _running;
} watchdog_t;

/* Starts the timer on loop (the caller's thread). name must outlive the watchdog. */
void watchdog_start(watchdog_t *w, h2o_loop_t *loop, const char *name);
/* Stops the timer; the figures stay readable. */
void watchdog_stop(watchdog_t *w);

#endif
