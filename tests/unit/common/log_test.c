/*
 * tests/unit/common/log_test.c - unit tests for common/log.c.
 *
 * Without the writer thread a line is written at once; with it, a line is
 * only copied into the bounded buffer, so a log consumer that stops
 * reading (a pipe nobody drains) never blocks the caller: lines that do
 * not fit are dropped and counted, and what was buffered comes out in
 * order once the consumer reads again. Each test points standard error at
 * a pipe of its own (Check forks every test).
 */
#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../../../common/log.c"

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Points stderr at a new pipe; returns its read end. */
static int stderr_to_pipe(void)
{
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    ck_assert_int_ge(dup2(fds[1], STDERR_FILENO), 0);
    close(fds[1]);
    return fds[0];
}

/* Reads what is in the pipe now and until it has been quiet for quiet_ms. */
static size_t drain(int fd, char *buf, size_t cap, int quiet_ms)
{
    size_t n = 0;
    fcntl(fd, F_SETFL, O_NONBLOCK);
    long long last = now_ms();
    while (now_ms() - last < quiet_ms && n + 1 < cap) {
        ssize_t r = read(fd, buf + n, cap - n - 1);
        if (r > 0) {
            n += (size_t)r;
            last = now_ms();
        } else {
            usleep(1000);
        }
    }
    buf[n] = '\0';
    return n;
}

START_TEST(synchronous_without_the_writer)
{
    int rd = stderr_to_pipe();
    log_init(LOG_INFO, "test");
    log_msg(LOG_INFO, "hello %d", 42);
    char buf[4096];
    drain(rd, buf, sizeof(buf), 50);
    ck_assert_ptr_nonnull(strstr(buf, "\"msg\":\"hello 42\""));
    ck_assert_ptr_nonnull(strstr(buf, "\"component\":\"test\""));
}
END_TEST

START_TEST(a_stuck_consumer_never_blocks_the_caller)
{
    int rd = stderr_to_pipe();
    log_init(LOG_INFO, "test");
    ck_assert_int_eq(log_writer_start(64 * 1024), 0);
    /* Nobody reads: the pipe (64 KiB) and both 64 KiB buffers fill up, then lines are dropped. */
    char pad[512];
    memset(pad, 'x', sizeof(pad) - 1);
    pad[sizeof(pad) - 1] = '\0';
    long long t0 = now_ms();
    for (int i = 0; i < 5000; i++)
        log_msg(LOG_INFO, "line %d %s", i, pad);
    long long took = now_ms() - t0;
    /* 5000 lines of 600 bytes: about 3 MB, far more than the pipe and the buffers hold. */
    ck_assert_msg(took < 2000, "logging took %lld ms with a stuck consumer", took);
    ck_assert_uint_gt(log_dropped(), 0);
    /* The consumer comes back: what was kept comes out, whole lines in order. */
    static char buf[1 << 20];
    size_t n = drain(rd, buf, sizeof(buf), 300);
    ck_assert_uint_gt(n, 0);
    ck_assert_ptr_nonnull(strstr(buf, "\"msg\":\"line 0 "));
    int last = -1;
    for (char *p = buf; (p = strstr(p, "\"msg\":\"line ")) != NULL; p++) {
        int v = atoi(p + 12);
        ck_assert_int_gt(v, last);
        last = v;
    }
    log_writer_stop();
}
END_TEST

START_TEST(stop_writes_out_what_is_buffered)
{
    int rd = stderr_to_pipe();
    log_init(LOG_INFO, "test");
    ck_assert_int_eq(log_writer_start(1024 * 1024), 0);
    for (int i = 0; i < 100; i++)
        log_msg(LOG_INFO, "kept %d", i);
    log_writer_stop();
    char buf[65536];
    drain(rd, buf, sizeof(buf), 50);
    ck_assert_ptr_nonnull(strstr(buf, "\"msg\":\"kept 0\""));
    ck_assert_ptr_nonnull(strstr(buf, "\"msg\":\"kept 99\""));
    ck_assert_uint_eq(log_dropped(), 0);
    /* After stop, lines are written at once again. */
    log_msg(LOG_INFO, "after");
    drain(rd, buf, sizeof(buf), 50);
    ck_assert_ptr_nonnull(strstr(buf, "\"msg\":\"after\""));
}
END_TEST

static Suite *log_suite(void)
{
    Suite *s = suite_create("log");
    TCase *tc = tcase_create("writer");
    tcase_set_timeout(tc, 20);
    tcase_add_test(tc, synchronous_without_the_writer);
    tcase_add_test(tc, a_stuck_consumer_never_blocks_the_caller);
    tcase_add_test(tc, stop_writes_out_what_is_buffered);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(log_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
