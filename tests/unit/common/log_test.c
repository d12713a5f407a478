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
#include "../../../common/trace.c"

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

START_TEST(the_thread_context_names_the_request)
{
    int rd = stderr_to_pipe();
    log_init(LOG_INFO, "test");
    char buf[8192];
    log_ctx_t ctx;
    log_ctx_make(&ctx, "req-1", "4bf92f3577b34da6a3ce929d0e0e4736");
    log_ctx_set(&ctx);
    log_msg(LOG_INFO, "inside");
    json_t *f = json_pack("{s:s}", "msg", "json inside");
    log_json(LOG_INFO, f);
    json_decref(f);
    log_ctx_set(NULL);
    log_msg(LOG_INFO, "outside");
    drain(rd, buf, sizeof(buf), 50);
    /* Three lines: the two logged inside name both ids, the one after the clear neither. */
    char *lines[3] = {buf, NULL, NULL};
    for (int i = 0; i < 3; i++) {
        ck_assert_ptr_nonnull(lines[i]);
        char *nl = strchr(lines[i], '\n');
        ck_assert_ptr_nonnull(nl);
        *nl = '\0';
        if (i < 2)
            lines[i + 1] = nl + 1;
    }
    ck_assert_ptr_nonnull(strstr(lines[0], "\"msg\":\"inside\""));
    ck_assert_ptr_nonnull(strstr(lines[1], "\"msg\":\"json inside\""));
    ck_assert_ptr_nonnull(strstr(lines[2], "\"msg\":\"outside\""));
    for (int i = 0; i < 2; i++) {
        ck_assert_ptr_nonnull(strstr(lines[i], "\"request_id\":\"req-1\""));
        ck_assert_ptr_nonnull(strstr(lines[i], "\"trace_id\":\"4bf92f3577b34da6a3ce929d0e0e4736\""));
    }
    ck_assert_ptr_null(strstr(lines[2], "request_id"));
    ck_assert_ptr_null(strstr(lines[2], "trace_id"));

    /* Values read back from outside are kept only when sane. */
    log_ctx_make(&ctx, "bad id\"", "4BF92F3577B34DA6A3CE929D0E0E4736");
    ck_assert_str_eq(ctx.request_id, "");
    ck_assert_str_eq(ctx.trace_id, "");
    log_ctx_make(&ctx, NULL, NULL);
    ck_assert_str_eq(ctx.request_id, "");
    log_ctx_make(&ctx, "ok", NULL);
    ck_assert_str_eq(ctx.request_id, "ok");
    ck_assert_str_eq(log_ctx()->request_id, "");
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
    tcase_add_test(tc, the_thread_context_names_the_request);
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
