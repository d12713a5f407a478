/*
 * common/kv.c - Redis on the h2o event loop (hiredis async + reconnect).
 *
 * hiredis 0.14's async API drives I/O through five hooks (addRead, delRead,
 * addWrite, delWrite, cleanup); the adapter below maps them onto an h2o
 * socket wrapping a dup() of hiredis's descriptor, created with
 * H2O_SOCKET_FLAG_DONT_READ so hiredis does all reading. hiredis closes
 * its own descriptor; the adapter closes the duplicate in cleanup.
 *
 * hiredis 0.14 has no timeouts and no reconnect, so both live here: a
 * connect deadline (covering the name lookup, the TCP connect and the
 * AUTH/SELECT replies), a deadline per command (after which the connection
 * is considered dead and dropped), and a backoff timer for reconnecting.
 * redisAsyncConnect() would resolve a host name with a blocking
 * getaddrinfo(); a name is therefore looked up on a helper thread
 * (common/bg.c) at every attempt, and hiredis is handed the address.
 *
 * Ownership: a kv_cmd_t is malloc'ed per command and freed by the reply
 * callback, which hiredis calls exactly once per command, with a NULL reply
 * when the context is freed. The redisAsyncContext is owned by hiredis and
 * may be freed inside any hiredis call: after one, kv->ac is re-read.
 */
#include <arpa/inet.h>
#include <netdb.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <hiredis/async.h>
#include <h2o/linklist.h>
#include <h2o/timeout.h>

#include "bg.h"
#include "err.h"
#include "kv.h"
#include "log.h"

#define KV_BACKOFF_STEPS 6
static const uint64_t backoff_ms[KV_BACKOFF_STEPS] = {100, 200, 400, 800, 1600, 3000};

typedef struct st_kv_cmd_t {
    kv_t *kv;
    kv_cb cb;
    void *data;
    int done; /* the user callback has run (timeout or shutdown) */
    h2o_timeout_entry_t deadline;
    log_ctx_t log; /* the sender's log context, restored around the callback */
} kv_cmd_t;

typedef struct st_kv_ev_t {
    redisAsyncContext *ac;
    h2o_socket_t *sock;
    int want_write;
} kv_ev_t;

typedef struct st_kv_resolve_t {
    bg_job_t job;
    kv_t *kv; /* NULL once the attempt was given up */
    char host[256];
    char addr[INET6_ADDRSTRLEN];
    char error[400];
} kv_resolve_t;

struct st_kv_t {
    h2o_loop_t *loop;
    char *host;
    int host_is_literal; /* an IP address: nothing to look up */
    int port;
    int db;
    char *password;
    int closing;
    int was_up;
    redisAsyncContext *ac;
    kv_resolve_t *resolve; /* the lookup in flight, if any */
    bg_box_t *box;
    kv_gauges_t own_gauges;
    kv_gauges_t *g;
    unsigned backoff;
    h2o_timeout_t cmd_timeout;
    h2o_timeout_t backoff_timeouts[KV_BACKOFF_STEPS];
    h2o_timeout_entry_t retry;
    h2o_timeout_entry_t connect_deadline;
};

static void kv_connect(kv_t *kv);

/* --- the event adapter ------------------------------------------------- */

static void ev_on_read(h2o_socket_t *sock, const char *err)
{
    kv_ev_t *e = sock->data;
    redisAsyncHandleRead(e->ac); /* may free e through cleanup */
}

static void ev_on_write(h2o_socket_t *sock, const char *err)
{
    kv_ev_t *e = sock->data;
    if (!e->want_write)
        return; /* a stale wake-up: notify_write cannot be cancelled */
    e->want_write = 0;
    redisAsyncHandleWrite(e->ac); /* may free e through cleanup */
}

static void ev_add_read(void *p)
{
    kv_ev_t *e = p;
    h2o_socket_read_start(e->sock, ev_on_read);
}

static void ev_del_read(void *p)
{
    kv_ev_t *e = p;
    h2o_socket_read_stop(e->sock);
}

static void ev_add_write(void *p)
{
    kv_ev_t *e = p;
    e->want_write = 1;
    if (!h2o_socket_is_writing(e->sock))
        h2o_socket_notify_write(e->sock, ev_on_write);
}

static void ev_del_write(void *p)
{
    kv_ev_t *e = p;
    e->want_write = 0;
}

static void ev_cleanup(void *p)
{
    kv_ev_t *e = p;
    h2o_socket_close(e->sock);
    free(e);
}

static int ev_attach(kv_t *kv, redisAsyncContext *ac)
{
    int fd = dup(ac->c.fd);
    if (fd < 0)
        return -1;
    kv_ev_t *e = calloc(1, sizeof(*e));
    if (e == NULL)
        abort();
    e->ac = ac;
    e->sock = h2o_evloop_socket_create(kv->loop, fd, H2O_SOCKET_FLAG_DONT_READ);
    e->sock->data = e;
    ac->ev.data = e;
    ac->ev.addRead = ev_add_read;
    ac->ev.delRead = ev_del_read;
    ac->ev.addWrite = ev_add_write;
    ac->ev.delWrite = ev_del_write;
    ac->ev.cleanup = ev_cleanup;
    return 0;
}

/* --- connection life cycle --------------------------------------------- */

static void schedule_retry(kv_t *kv)
{
    if (kv->closing || h2o_timeout_is_linked(&kv->retry))
        return;
    h2o_timeout_link(kv->loop, &kv->backoff_timeouts[kv->backoff], &kv->retry);
    if (kv->backoff + 1 < KV_BACKOFF_STEPS)
        kv->backoff++;
}

static void set_down(kv_t *kv, const char *why)
{
    if ((atomic_load(&kv->g->up) || kv->was_up) && !kv->closing)
        log_msg(LOG_WARN, "redis connection lost: %s", why);
    kv->was_up = 0;
    atomic_store(&kv->g->up, 0);
    kv->ac = NULL;
    if (h2o_timeout_is_linked(&kv->connect_deadline))
        h2o_timeout_unlink(&kv->connect_deadline);
    schedule_retry(kv);
}

static void on_connect(const redisAsyncContext *ac, int status)
{
    kv_t *kv = ac->data;
    if (status != REDIS_OK) {
        /* hiredis frees the context after this callback returns. */
        set_down(kv, ac->errstr);
        return;
    }
    /* Connected at the TCP level; "up" waits for the SELECT reply. */
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    kv_t *kv = ac->data;
    set_down(kv, status == REDIS_OK ? "disconnected" : ac->errstr);
}

static void on_select(redisAsyncContext *ac, void *r, void *privdata)
{
    kv_t *kv = privdata;
    redisReply *reply = r;
    if (reply == NULL)
        return; /* the context is being freed; on_disconnect handles it */
    if (reply->type == REDIS_REPLY_ERROR) {
        log_msg(LOG_ERROR, "redis rejected AUTH/SELECT: %s", reply->str);
        if (kv->ac != NULL)
            redisAsyncDisconnect(kv->ac);
        return;
    }
    if (h2o_timeout_is_linked(&kv->connect_deadline))
        h2o_timeout_unlink(&kv->connect_deadline);
    kv->backoff = 0;
    if (!kv->was_up)
        log_msg(LOG_INFO, "redis connected to %s:%d db %d", kv->host, kv->port, kv->db);
    kv->was_up = 1;
    atomic_fetch_add_explicit(&kv->g->connects, 1, memory_order_relaxed);
    atomic_store(&kv->g->up, 1);
}

static void on_auth(redisAsyncContext *ac, void *r, void *privdata)
{
    redisReply *reply = r;
    if (reply != NULL && reply->type == REDIS_REPLY_ERROR)
        log_msg(LOG_ERROR, "redis rejected AUTH: %s", reply->str);
}

static void on_connect_deadline(h2o_timeout_entry_t *entry)
{
    kv_t *kv = H2O_STRUCT_FROM_MEMBER(kv_t, connect_deadline, entry);
    log_msg(LOG_WARN, "redis connect to %s:%d timed out%s", kv->host, kv->port,
            kv->resolve != NULL ? " (looking up the host name)" : "");
    if (kv->resolve != NULL) {
        kv->resolve->kv = NULL; /* dropped when it ends */
        kv->resolve = NULL;
    }
    if (kv->ac != NULL)
        redisAsyncFree(kv->ac); /* calls on_disconnect only if connected; make sure we are down */
    kv->ac = NULL;
    atomic_store(&kv->g->up, 0);
    schedule_retry(kv);
}

static void on_retry(h2o_timeout_entry_t *entry)
{
    kv_t *kv = H2O_STRUCT_FROM_MEMBER(kv_t, retry, entry);
    kv_connect(kv);
}

/* --- name lookup, off the loop ----------------------------------------- */

static void connect_addr(kv_t *kv, const char *addr);

static void resolve_run(bg_job_t *job)
{
    kv_resolve_t *r = H2O_STRUCT_FROM_MEMBER(kv_resolve_t, job, job);
    /* IPv4 first, as hiredis itself does for the names it resolves. */
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *res = NULL;
    int gai = getaddrinfo(r->host, NULL, &hints, &res);
    if (gai != 0) {
        hints.ai_family = AF_INET6;
        gai = getaddrinfo(r->host, NULL, &hints, &res);
    }
    if (gai != 0 || res == NULL)
        snprintf(r->error, sizeof(r->error), "could not resolve \"%s\": %s", r->host,
                 gai != 0 ? gai_strerror(gai) : "no address");
    else if (getnameinfo(res->ai_addr, res->ai_addrlen, r->addr, sizeof(r->addr), NULL, 0, NI_NUMERICHOST) != 0)
        snprintf(r->error, sizeof(r->error), "could not format the address of \"%s\"", r->host);
    if (res != NULL)
        freeaddrinfo(res);
}

static void resolve_discard(bg_job_t *job)
{
    free(H2O_STRUCT_FROM_MEMBER(kv_resolve_t, job, job));
}

static void resolve_done(bg_job_t *job)
{
    kv_resolve_t *r = H2O_STRUCT_FROM_MEMBER(kv_resolve_t, job, job);
    kv_t *kv = r->kv;
    if (kv != NULL) {
        kv->resolve = NULL;
        if (r->error[0] != '\0') {
            if (kv->was_up || kv->backoff == 0)
                log_msg(LOG_WARN, "redis connect to %s:%d failed: %s", kv->host, kv->port, r->error);
            if (h2o_timeout_is_linked(&kv->connect_deadline))
                h2o_timeout_unlink(&kv->connect_deadline);
            schedule_retry(kv);
        } else {
            connect_addr(kv, r->addr);
        }
    }
    free(r);
}

static void kv_connect(kv_t *kv)
{
    /* One deadline for the whole attempt: lookup, connect, AUTH and SELECT. */
    if (h2o_timeout_is_linked(&kv->connect_deadline))
        h2o_timeout_unlink(&kv->connect_deadline);
    h2o_timeout_link(kv->loop, &kv->cmd_timeout, &kv->connect_deadline);
    if (kv->host_is_literal) {
        connect_addr(kv, kv->host);
        return;
    }
    kv_resolve_t *r = calloc(1, sizeof(*r));
    if (r == NULL)
        abort();
    snprintf(r->host, sizeof(r->host), "%s", kv->host);
    r->kv = kv;
    r->job.run = resolve_run;
    r->job.done = resolve_done;
    r->job.discard = resolve_discard;
    kv->resolve = r;
    bg_submit(kv->box, &r->job);
}

static void connect_failed(kv_t *kv)
{
    if (h2o_timeout_is_linked(&kv->connect_deadline))
        h2o_timeout_unlink(&kv->connect_deadline);
    schedule_retry(kv);
}

/* Connects to an address literal: hiredis's getaddrinfo() then needs no lookup. */
static void connect_addr(kv_t *kv, const char *addr)
{
    redisAsyncContext *ac = redisAsyncConnect(addr, kv->port);
    if (ac == NULL) {
        connect_failed(kv);
        return;
    }
    if (ac->err) {
        if (kv->was_up || kv->backoff == 0)
            log_msg(LOG_WARN, "redis connect to %s:%d failed: %s", kv->host, kv->port, ac->errstr);
        redisAsyncFree(ac);
        connect_failed(kv);
        return;
    }
    ac->data = kv;
    if (ev_attach(kv, ac) != 0) {
        redisAsyncFree(ac);
        connect_failed(kv);
        return;
    }
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    kv->ac = ac;
    /* These queue the first writes; the connection completes on the first writable event. */
    if (kv->password != NULL)
        redisAsyncCommand(ac, on_auth, kv, "AUTH %s", kv->password);
    redisAsyncCommand(ac, on_select, kv, "SELECT %d", kv->db);
}

/* --- commands ---------------------------------------------------------- */

static void on_cmd_reply(redisAsyncContext *ac, void *r, void *privdata)
{
    kv_cmd_t *cmd = privdata;
    if (h2o_timeout_is_linked(&cmd->deadline))
        h2o_timeout_unlink(&cmd->deadline);
    if (!cmd->done) {
        cmd->done = 1;
        log_ctx_t saved = *log_ctx();
        log_ctx_set(&cmd->log);
        cmd->cb(cmd->data, r, r != NULL ? 0 : ERR_UNAVAILABLE);
        log_ctx_set(&saved);
    }
    free(cmd);
}

static void on_cmd_deadline(h2o_timeout_entry_t *entry)
{
    kv_cmd_t *cmd = H2O_STRUCT_FROM_MEMBER(kv_cmd_t, deadline, entry);
    kv_t *kv = cmd->kv;
    cmd->done = 1;
    log_ctx_t saved = *log_ctx();
    log_ctx_set(&cmd->log);
    cmd->cb(cmd->data, NULL, ERR_TIMEOUT);
    log_ctx_set(&saved);
    /* A silent server is as good as gone: drop the connection (which frees cmd). */
    if (kv->ac != NULL) {
        log_msg(LOG_WARN, "redis command timed out; reconnecting");
        redisAsyncContext *ac = kv->ac;
        kv->ac = NULL;
        atomic_store(&kv->g->up, 0);
        redisAsyncFree(ac);
        schedule_retry(kv);
    }
}

int kv_command(kv_t *kv, kv_cb cb, void *data, int argc, const char **argv, const size_t *argvlen)
{
    if (kv->closing || kv->ac == NULL || !atomic_load(&kv->g->up))
        return ERR_UNAVAILABLE;
    kv_cmd_t *cmd = calloc(1, sizeof(*cmd));
    if (cmd == NULL)
        abort();
    cmd->kv = kv;
    cmd->cb = cb;
    cmd->data = data;
    cmd->deadline.cb = on_cmd_deadline;
    cmd->log = *log_ctx();
    if (redisAsyncCommandArgv(kv->ac, on_cmd_reply, cmd, argc, argv, argvlen) != REDIS_OK) {
        free(cmd);
        return ERR_UNAVAILABLE;
    }
    h2o_timeout_link(kv->loop, &kv->cmd_timeout, &cmd->deadline);
    return 0;
}

int kv_is_up(kv_t *kv)
{
    return atomic_load(&kv->g->up);
}

static int is_literal(const char *h)
{
    unsigned char buf[sizeof(struct in6_addr)];
    return inet_pton(AF_INET, h, buf) == 1 || inet_pton(AF_INET6, h, buf) == 1;
}

kv_t *kv_open(h2o_loop_t *loop, const kv_config_t *conf)
{
    kv_t *kv = calloc(1, sizeof(*kv));
    if (kv == NULL)
        abort();
    kv->loop = loop;
    kv->host = strdup(conf->host);
    kv->host_is_literal = is_literal(conf->host);
    kv->g = conf->gauges != NULL ? conf->gauges : &kv->own_gauges;
    kv->box = bg_box_open(loop);
    kv->port = conf->port;
    kv->db = conf->db;
    kv->password = conf->password != NULL ? strdup(conf->password) : NULL;
    h2o_timeout_init(loop, &kv->cmd_timeout, (uint64_t)conf->timeout_ms);
    for (int i = 0; i < KV_BACKOFF_STEPS; i++)
        h2o_timeout_init(loop, &kv->backoff_timeouts[i], backoff_ms[i]);
    kv->retry.cb = on_retry;
    kv->connect_deadline.cb = on_connect_deadline;
    kv_connect(kv);
    return kv;
}

void kv_close(kv_t *kv)
{
    kv->closing = 1;
    if (h2o_timeout_is_linked(&kv->retry))
        h2o_timeout_unlink(&kv->retry);
    if (h2o_timeout_is_linked(&kv->connect_deadline))
        h2o_timeout_unlink(&kv->connect_deadline);
    if (kv->resolve != NULL) {
        kv->resolve->kv = NULL;
        kv->resolve = NULL;
    }
    if (kv->ac != NULL) {
        redisAsyncContext *ac = kv->ac;
        kv->ac = NULL;
        redisAsyncFree(ac); /* replies NULL to pending commands, which unlinks their deadlines */
    }
    atomic_store(&kv->g->up, 0);
    bg_box_close(kv->box);
    h2o_timeout_dispose(kv->loop, &kv->cmd_timeout);
    for (int i = 0; i < KV_BACKOFF_STEPS; i++)
        h2o_timeout_dispose(kv->loop, &kv->backoff_timeouts[i]);
    free(kv->host);
    free(kv->password);
    free(kv);
}
