/*
 * tests/unit/common/kv_test.c - the state machine of common/kv.c against
 * the test stack's Redis: connecting (the host name looked up off the loop,
 * a connect deadline), commands, a killed connection and a restarted
 * server (reconnect with backoff, recovery), and the command deadline.
 *
 * Each test creates its own loop and client and drives the loop itself.
 */
#include <check.h>
#include <stdio.h>

#include "../../../common/kv.c"
#include "loopkit.h"

static h2o_loop_t *loop;
static int redis_port;

typedef struct st_reply_t {
    int done, err, type;
    char str[64];
} reply_t;

static void on_reply(void *data, const redisReply *reply, int err)
{
    reply_t *r = data;
    r->done = 1;
    r->err = err;
    if (reply != NULL) {
        r->type = reply->type;
        if (reply->str != NULL)
            snprintf(r->str, sizeof(r->str), "%s", reply->str);
    }
}

static void setup(void)
{
    redis_port = lk_env_int("STACK_REDIS_PORT", 56479);
    loop = h2o_evloop_create();
}

static kv_t *open_kv(const char *host, int port, int timeout_ms)
{
    kv_config_t conf = {.host = host, .port = port, .db = 0, .timeout_ms = timeout_ms};
    return kv_open(loop, &conf);
}

static int wait_up(kv_t *kv, int ms)
{
    long long until = lk_now_ms() + ms;
    while (!kv_is_up(kv) && lk_now_ms() < until)
        h2o_evloop_run(loop, 10);
    return kv_is_up(kv);
}

static reply_t command(kv_t *kv, int argc, const char **argv)
{
    reply_t r = {0};
    int ret = kv_command(kv, on_reply, &r, argc, argv, NULL);
    if (ret != 0) {
        r.done = 1;
        r.err = ret;
        return r;
    }
    ck_assert_msg(lk_run_until(loop, &r.done, 10000), "command did not finish");
    return r;
}

static reply_t ping(kv_t *kv)
{
    return command(kv, 1, (const char *[]){"PING"});
}

static int stack(const char *cmd)
{
    char buf[128];
    snprintf(buf, sizeof(buf), "scripts/stack.sh %s >/dev/null 2>&1", cmd);
    return system(buf);
}

START_TEST(connects_and_answers)
{
    kv_t *kv = open_kv("127.0.0.1", redis_port, 1000);
    ck_assert(wait_up(kv, 3000));
    reply_t r = ping(kv);
    ck_assert_int_eq(r.err, 0);
    ck_assert_int_eq(r.type, REDIS_REPLY_STATUS);
    ck_assert_str_eq(r.str, "PONG");
    ck_assert_uint_eq(atomic_load(&kv->g->connects), 1);
    kv_close(kv);
}
END_TEST

START_TEST(resolves_the_host_name_off_the_loop)
{
    lk_probe_t probe;
    lk_probe_start(&probe, loop);
    kv_t *kv = open_kv(SLOW_NAME, redis_port, 2000);
    ck_assert(wait_up(kv, 3000));
    ck_assert_msg(probe.worst_ms < SLOW_MS / 2, "the loop stalled for %lld ms while connecting", probe.worst_ms);
    ck_assert_str_eq(ping(kv).str, "PONG");
    lk_probe_stop(&probe);
    kv_close(kv);
}
END_TEST

START_TEST(close_during_a_lookup_is_safe)
{
    kv_t *kv = open_kv(SLOW_NAME, redis_port, 2000);
    lk_run_for(loop, 50);
    ck_assert_ptr_nonnull(kv->resolve);
    kv_close(kv);
    usleep((SLOW_MS + 100) * 1000); /* the lookup ends after its client is gone */
}
END_TEST

START_TEST(connect_has_a_deadline)
{
    int fd, port = lk_silent_listener(&fd);
    kv_t *kv = open_kv("127.0.0.1", port, 300);
    lk_run_for(loop, 800);
    ck_assert_int_eq(kv_is_up(kv), 0);
    ck_assert_msg(kv->backoff >= 1, "the connect attempt was never given up");
    reply_t r = ping(kv);
    ck_assert_int_eq(r.err, ERR_UNAVAILABLE);
    kv_close(kv);
    close(fd);
}
END_TEST

START_TEST(killed_connection_reconnects)
{
    kv_t *kv = open_kv("127.0.0.1", redis_port, 1000);
    ck_assert(wait_up(kv, 3000));
    redisContext *side = redisConnect("127.0.0.1", redis_port);
    ck_assert(side != NULL && side->err == 0);
    redisReply *rr = redisCommand(side, "CLIENT KILL TYPE normal SKIPME yes");
    ck_assert_ptr_nonnull(rr);
    ck_assert_int_ge(rr->integer, 1);
    freeReplyObject(rr);
    redisFree(side);
    long long until = lk_now_ms() + 3000;
    while (atomic_load(&kv->g->connects) < 2 && lk_now_ms() < until)
        h2o_evloop_run(loop, 10);
    ck_assert_uint_eq(atomic_load(&kv->g->connects), 2);
    ck_assert(wait_up(kv, 1000));
    ck_assert_str_eq(ping(kv).str, "PONG");
    kv_close(kv);
}
END_TEST

START_TEST(restarted_server_fails_fast_and_recovers)
{
    kv_t *kv = open_kv("127.0.0.1", redis_port, 1000);
    ck_assert(wait_up(kv, 3000));
    ck_assert_int_eq(stack("redis-stop"), 0);
    lk_run_for(loop, 1000);
    ck_assert_int_eq(kv_is_up(kv), 0);
    ck_assert_int_eq(ping(kv).err, ERR_UNAVAILABLE); /* at once, not after a timeout */
    ck_assert_msg(kv->backoff >= 2, "no backoff between attempts (step %u)", kv->backoff);
    ck_assert_int_eq(stack("redis-start"), 0);
    ck_assert_msg(wait_up(kv, 6000), "the client did not recover after Redis came back");
    ck_assert_str_eq(ping(kv).str, "PONG");
    kv_close(kv);
}
END_TEST

START_TEST(silent_server_times_the_command_out)
{
    /* A server that stops answering: the command gets ERR_TIMEOUT and the connection is dropped and re-opened. */
    kv_t *kv = open_kv("127.0.0.1", redis_port, 300);
    ck_assert(wait_up(kv, 3000));
    redisContext *side = redisConnect("127.0.0.1", redis_port);
    ck_assert(side != NULL && side->err == 0);
    redisReply *rr = redisCommand(side, "CLIENT PAUSE 800 ALL");
    ck_assert(rr != NULL && rr->type == REDIS_REPLY_STATUS);
    freeReplyObject(rr);
    redisFree(side);
    reply_t r = ping(kv);
    ck_assert_int_eq(r.err, ERR_TIMEOUT);
    ck_assert_int_eq(kv_is_up(kv), 0);
    lk_run_for(loop, 700); /* the pause lasts until then */
    ck_assert_msg(wait_up(kv, 3000), "no reconnect after the timeout");
    ck_assert_str_eq(ping(kv).str, "PONG");
    kv_close(kv);
}
END_TEST

static Suite *kv_suite(void)
{
    Suite *s = suite_create("kv");
    TCase *tc = tcase_create("connect");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, connects_and_answers);
    tcase_add_test(tc, resolves_the_host_name_off_the_loop);
    tcase_add_test(tc, close_during_a_lookup_is_safe);
    tcase_add_test(tc, connect_has_a_deadline);
    suite_add_tcase(s, tc);

    tc = tcase_create("recovery");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, killed_connection_reconnects);
    tcase_add_test(tc, restarted_server_fails_fast_and_recovers);
    tcase_add_test(tc, silent_server_times_the_command_out);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(kv_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
