/*
 * tests/unit/common/watchdog_test.c - unit tests for common/watchdog.c.
 *
 * A real h2o evloop with the watchdog and a timer whose callback holds the
 * loop: busy computing (80 ms of CPU time, so a busy host cannot shorten it),
 * or asleep in a blocking call. Both must show as a
 * stall of about that length; an idle loop shows none.
 */
#include <check.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "../../../common/watchdog.c"

static uint64_t hold_ms;
static int hold_sleep;
static uint64_t held_at_us; /* when the hold ended; 0 before */

static uint64_t cpu_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* Holds the loop: hold_ms of this thread's CPU time (however long that takes on a busy host), or a sleep. */
static void on_hold(h2o_timeout_entry_t *e)
{
    uint64_t until = cpu_us() + hold_ms * 1000;
    if (hold_sleep)
        usleep((useconds_t)hold_ms * 1000);
    else
        while (cpu_us() < until)
            ;
    held_at_us = now_us();
}

/*
 * Runs the loop for at least ms, and, when a hold is due, until 100 ms after
 * it ended (at most 20 s): on a loaded host the timer may fire late, and the
 * watchdog needs ticks after the hold to see it, whatever the wall clock did.
 */
static void run_for(h2o_evloop_t *loop, int ms, int hold_due)
{
    uint64_t start = now_us(), until = start + (uint64_t)ms * 1000;
    for (;;) {
        uint64_t t = now_us();
        if (t >= until && (!hold_due || (held_at_us != 0 && t >= held_at_us + 100000) || t >= start + 20000000))
            break;
        h2o_evloop_run(loop, 5);
    }
}

/* Runs a loop with a watchdog for 300 ms, holding it once for hold ms after 100 ms; returns the worst stall (us). */
static uint64_t stall_with(uint64_t hold, int sleep_)
{
    h2o_evloop_t *loop = h2o_evloop_create();
    watchdog_t w = {0};
    watchdog_start(&w, loop, "test loop");
    h2o_timeout_t t;
    h2o_timeout_entry_t e = {.cb = on_hold};
    hold_ms = hold;
    hold_sleep = sleep_;
    held_at_us = 0;
    h2o_timeout_init(loop, &t, 100);
    if (hold > 0)
        h2o_timeout_link(loop, &t, &e);
    run_for(loop, 300, hold > 0);
    if (h2o_timeout_is_linked(&e))
        h2o_timeout_unlink(&e);
    h2o_timeout_dispose(loop, &t);
    watchdog_stop(&w);
    h2o_evloop_run(loop, 0);
    h2o_evloop_destroy(loop);
    ck_assert_uint_gt(atomic_load(&w.ticks), 5);
    ck_assert_uint_ge(atomic_load(&w.max_us), atomic_load(&w.stall_max_us));
    return atomic_load(&w.stall_max_us);
}

START_TEST(a_busy_iteration_is_a_stall)
{
    uint64_t s = stall_with(80, 0);
    ck_assert_msg(s >= 65000, "stall %llu us for an 80 ms computation", (unsigned long long)s);
}
END_TEST

START_TEST(a_blocking_call_is_a_stall)
{
    uint64_t s = stall_with(80, 1);
    ck_assert_msg(s >= 65000, "stall %llu us for an 80 ms sleep", (unsigned long long)s);
}
END_TEST

START_TEST(an_idle_loop_has_no_stall)
{
    uint64_t s = stall_with(0, 0);
    ck_assert_msg(s < 30000, "stall %llu us with nothing running", (unsigned long long)s);
}
END_TEST

static Suite *watchdog_suite(void)
{
    Suite *s = suite_create("watchdog");
    TCase *tc = tcase_create("watchdog");
    tcase_set_timeout(tc, 20);
    tcase_add_test(tc, a_busy_iteration_is_a_stall);
    tcase_add_test(tc, a_blocking_call_is_a_stall);
    tcase_add_test(tc, an_idle_loop_has_no_stall);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    log_init(LOG_ERROR, "test");
    SRunner *sr = srunner_create(watchdog_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
