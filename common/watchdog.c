/*
 * common/watchdog.c - measures how late an event loop runs its timers (see
 * watchdog.h).
 *
 * The due time is taken from CLOCK_MONOTONIC when the timer is armed, not
 * from the loop's cached clock, so an iteration that was already long when
 * it armed the timer is still measured. A timer firing early (h2o rounds
 * to its cached clock) counts as no lag.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "watchdog.h"

const double watchdog_buckets_ms[WATCHDOG_NBUCKETS] = {1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000};

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/*
 * Nanoseconds this thread has waited on a runqueue (second field of
 * schedstat). procfs answers from memory: this pread never waits on I/O.
 */
static uint64_t wait_ns(watchdog_t *w)
{
    char buf[96];
    if (w->_schedstat < 0)
        return 0;
    ssize_t n = pread(w->_schedstat, buf, sizeof(buf) - 1, 0);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    char *p;
    strtoull(buf, &p, 10);
    return strtoull(p, NULL, 10);
}

static void arm(watchdog_t *w)
{
    w->_wait_ns = wait_ns(w);
    w->_due_us = now_us() + WATCHDOG_INTERVAL_MS * 1000u;
    h2o_timeout_link(w->_loop, &w->_timeout, &w->_entry);
}

static void on_tick(h2o_timeout_entry_t *entry)
{
    watchdog_t *w = H2O_STRUCT_FROM_MEMBER(watchdog_t, _entry, entry);
    uint64_t now = now_us();
    uint64_t lag = now > w->_due_us ? now - w->_due_us : 0;
    uint64_t waited_us = (wait_ns(w) - w->_wait_ns) / 1000u;
    uint64_t stall = lag > waited_us ? lag - waited_us : 0;
    size_t b = 0;
    while (b < WATCHDOG_NBUCKETS && (double)lag > watchdog_buckets_ms[b] * 1000.0)
        b++;
    atomic_fetch_add_explicit(&w->buckets[b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&w->sum_us, lag, memory_order_relaxed);
    atomic_fetch_add_explicit(&w->ticks, 1, memory_order_relaxed);
    if (lag > atomic_load_explicit(&w->max_us, memory_order_relaxed))
        atomic_store_explicit(&w->max_us, lag, memory_order_relaxed);
    if (stall > atomic_load_explicit(&w->stall_max_us, memory_order_relaxed))
        atomic_store_explicit(&w->stall_max_us, stall, memory_order_relaxed);
    if (stall > WATCHDOG_WARN_MS * 1000u)
        log_msg(LOG_WARN, "%s: an iteration held the loop for about %llu ms", w->name,
                (unsigned long long)(stall / 1000u));
    arm(w);
}

void watchdog_start(watchdog_t *w, h2o_loop_t *loop, const char *name)
{
    w->name = name;
    w->_loop = loop;
    h2o_timeout_init(loop, &w->_timeout, WATCHDOG_INTERVAL_MS);
    w->_entry = (h2o_timeout_entry_t){0};
    w->_entry.cb = on_tick;
    w->_running = 1;
    w->_schedstat = open("/proc/thread-self/schedstat", O_RDONLY | O_CLOEXEC);
    arm(w);
}

void watchdog_stop(watchdog_t *w)
{
    if (!w->_running)
        return;
    if (h2o_timeout_is_linked(&w->_entry))
        h2o_timeout_unlink(&w->_entry);
    h2o_timeout_dispose(w->_loop, &w->_timeout);
    if (w->_schedstat >= 0)
        close(w->_schedstat);
    w->_schedstat = -1;
    w->_running = 0;
}
