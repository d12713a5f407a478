/*
 * tests/unit/common/loopkit.h - what the db and kv state-machine tests share:
 * an h2o loop driven by the test, a lag probe, a silent TCP listener, and
 * a getaddrinfo() that is slow for one name.
 *
 * The tests run against the stack scripts/test.sh starts (STACK_PG_PORT,
 * STACK_REDIS_PORT). getaddrinfo() is interposed (an executable's symbol
 * wins over libc's for libpq and hiredis too): the name "slow.test" takes
 * 400 ms and then means 127.0.0.1, so a lookup on the loop thread shows as
 * a loop lag of 400 ms, and a lookup on a helper thread as none.
 */
#ifndef CLIENTELE_TESTS_LOOPKIT_H
#define CLIENTELE_TESTS_LOOPKIT_H

#include <arpa/inet.h>
#include <dlfcn.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define H2O_USE_LIBUV 0
#include <h2o/socket.h>
#include <h2o/timeout.h>

#define SLOW_NAME "slow.test"
#define SLOW_MS 400

int getaddrinfo(const char *node, const char *service, const struct addrinfo *hints, struct addrinfo **res)
{
    static int (*real)(const char *, const char *, const struct addrinfo *, struct addrinfo **);
    if (real == NULL)
        *(void **)&real = dlsym(RTLD_NEXT, "getaddrinfo");
    if (node != NULL && strcmp(node, SLOW_NAME) == 0) {
        usleep(SLOW_MS * 1000);
        node = "127.0.0.1";
    }
    return real(node, service, hints, res);
}

static long long lk_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int lk_env_int(const char *name, int def)
{
    const char *v = getenv(name);
    return v != NULL && *v != '\0' ? atoi(v) : def;
}

/* Runs the loop until *flag is non-zero or ms pass; returns *flag. */
static inline int lk_run_until(h2o_loop_t *loop, volatile int *flag, int ms)
{
    long long until = lk_now_ms() + ms;
    while (!*flag && lk_now_ms() < until)
        h2o_evloop_run(loop, 10);
    return *flag;
}

static inline void lk_run_for(h2o_loop_t *loop, int ms)
{
    long long until = lk_now_ms() + ms;
    while (lk_now_ms() < until)
        h2o_evloop_run(loop, 10);
}

/* A 10 ms timer that records the longest gap between its runs: the loop's worst lag. */
typedef struct st_lk_probe_t {
    h2o_timeout_t timeout;
    h2o_timeout_entry_t entry;
    h2o_loop_t *loop;
    long long last_ms, worst_ms;
} lk_probe_t;

static void lk_on_probe(h2o_timeout_entry_t *e)
{
    lk_probe_t *p = H2O_STRUCT_FROM_MEMBER(lk_probe_t, entry, e);
    long long now = lk_now_ms();
    if (now - p->last_ms > p->worst_ms)
        p->worst_ms = now - p->last_ms;
    p->last_ms = now;
    h2o_timeout_link(p->loop, &p->timeout, &p->entry);
}

static inline void lk_probe_start(lk_probe_t *p, h2o_loop_t *loop)
{
    memset(p, 0, sizeof(*p));
    p->loop = loop;
    h2o_timeout_init(loop, &p->timeout, 10);
    p->entry.cb = lk_on_probe;
    p->last_ms = lk_now_ms();
    h2o_timeout_link(loop, &p->timeout, &p->entry);
}

static inline void lk_probe_stop(lk_probe_t *p)
{
    if (h2o_timeout_is_linked(&p->entry))
        h2o_timeout_unlink(&p->entry);
    h2o_timeout_dispose(p->loop, &p->timeout);
}

/* A listener that completes TCP handshakes (the kernel does) but never answers. Returns its port; fd in *fd. */
static inline int lk_silent_listener(int *fd)
{
    struct sockaddr_in sa = {.sin_family = AF_INET};
    socklen_t len = sizeof(sa);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    *fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (*fd < 0 || bind(*fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(*fd, 16) != 0 ||
        getsockname(*fd, (struct sockaddr *)&sa, &len) != 0)
        abort();
    return ntohs(sa.sin_port);
}

/* A port on 127.0.0.1 where nothing listens (connections are refused). */
static inline int lk_closed_port(void)
{
    int fd;
    int port = lk_silent_listener(&fd);
    close(fd);
    return port;
}

#endif
