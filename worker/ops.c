/*
 * worker/ops.c - the worker's operations listener: /healthz, /readyz and /metrics (see ops.h).
 *
 * One h2o configuration with a single handler on "/", one context on the
 * worker's loop and one listening socket, accepted on that loop. What the
 * answers read of the worker (leadership, the consumer group, whether a
 * run is on the job thread, the pool's gauges) is read when the request
 * arrives, on the loop, so a probe still waiting for PostgreSQL or Redis
 * never reads the runs or the scheduler after they are gone. The waits are
 * a probe_t that holds the request through a guard on the request's pool:
 * h2o may dispose of the request (the client went away) before the
 * replies, which then only free the probe.
 *
 * h2o 2.2.5 never frees the queue its context creates (see worker/main.c);
 * the last context's queue is kept reachable here, and so is a listener
 * freed with connections still open (their h2o state is left to exit).
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <h2o.h>
#include <hiredis/hiredis.h>

#include "common/err.h"
#include "common/log.h"
#include "ops.h"

/* Connections served at once; more are closed as they arrive (probes and scrapes need a few). */
#define MAX_CONNECTIONS 64

typedef struct st_ops_handler_t {
    h2o_handler_t super;
    struct st_wk_ops_t *ops;
} ops_handler_t;

struct st_wk_ops_t {
    h2o_loop_t *loop;
    wk_ops_config_t conf;
    h2o_globalconf_t globalconf;
    h2o_context_t ctx;
    h2o_accept_ctx_t accept_ctx;
    h2o_socket_t *listener;
    int connections;
    int stopping;
};

/* Kept reachable until exit (volatile: stores the compiler would otherwise drop, as nothing reads them). */
static h2o_multithread_queue_t *volatile kept_queue;
static wk_ops_t *volatile kept_ops;

/* --- answering ------------------------------------------------------------------------------ */

/* Sends a complete answer and closes the connection after it. body is copied. */
static void send_body(h2o_req_t *req, int status, const char *reason, const char *ctype, const char *body, size_t len)
{
    req->res.status = status;
    req->res.reason = reason;
    req->http1_is_persistent = 0;
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, ctype, strlen(ctype));
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL, H2O_STRLIT("no-store"));
    req->res.content_length = len;
    h2o_send_inline(req, body, len);
}

/* Sends a JSON document (stolen). Problems (status >= 400) go out as application/problem+json. */
static void send_json(h2o_req_t *req, int status, const char *reason, json_t *doc)
{
    char *text = json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(doc);
    if (text == NULL)
        abort();
    send_body(req, status, reason, status >= 400 ? "application/problem+json" : "application/json", text, strlen(text));
    free(text);
}

/* An RFC 9457 problem as the API writes them (api/problem.c). */
static json_t *problem(int status, const char *slug, const char *title, const char *detail, const char *instance)
{
    char type[64];
    snprintf(type, sizeof(type), "/problems/%s", slug);
    return json_pack("{s:s,s:s,s:i,s:s,s:s}", "type", type, "title", title, "status", status, "detail", detail,
                     "instance", instance);
}

/* --- probes: a request waiting for PostgreSQL and Redis ---------------------------------------- */

typedef struct st_probe_t probe_t;
typedef void (*probe_done_fn)(probe_t *p, h2o_req_t *req);

struct st_probe_t {
    h2o_req_t *req; /* NULL once h2o has disposed the request */
    probe_t **guard;
    int pending;
    probe_done_fn done;
    /* read when the request arrived */
    int group_joined, reader_up, busy, leader;
    db_stats_t db;
    int redis_up;
    const prom_registry_t *metrics;
    const watchdog_t *watchdog;
    /* the replies */
    int db_ok, redis_ok;
    long long outbox_backlog;             /* -1: unknown */
    long long stream_lag, stream_pending; /* -1: unknown */
};

static void on_guard_dispose(void *p)
{
    probe_t *probe = *(probe_t **)p;
    if (probe != NULL)
        probe->req = NULL;
}

static probe_t *probe_new(wk_ops_t *ops, h2o_req_t *req, probe_done_fn done)
{
    probe_t *p = calloc(1, sizeof(*p));
    if (p == NULL)
        abort();
    p->req = req;
    p->done = done;
    p->pending = 1; /* released by probe_release() at the end of the handler */
    p->outbox_backlog = p->stream_lag = p->stream_pending = -1;
    /* Never called once stopping (see on_req): runs and scheduler are still there. */
    p->group_joined = wk_runs_group_joined(ops->conf.runs);
    p->busy = wk_runs_busy(ops->conf.runs);
    p->leader = wk_scheduler_is_leader(ops->conf.scheduler);
    p->reader_up = kv_is_up(ops->conf.reader);
    p->redis_up = kv_is_up(ops->conf.kv) && p->reader_up;
    db_stats(ops->conf.db, &p->db);
    p->metrics = ops->conf.metrics;
    p->watchdog = ops->conf.watchdog;
    p->guard = h2o_mem_alloc_shared(&req->pool, sizeof(*p->guard), on_guard_dispose);
    *p->guard = p;
    return p;
}

static void probe_release(probe_t *p)
{
    if (--p->pending > 0)
        return;
    if (p->req != NULL) {
        *p->guard = NULL; /* the request outlives the probe: its guard must not point here */
        p->done(p, p->req);
    }
    free(p);
}

static void on_ping(void *data, const PGresult *res, int err)
{
    probe_t *p = data;
    p->db_ok = err == 0;
    probe_release(p);
}

static void on_redis_ping(void *data, const redisReply *reply, int err)
{
    probe_t *p = data;
    p->redis_ok = err == 0 && reply != NULL && reply->type == REDIS_REPLY_STATUS;
    probe_release(p);
}

static void on_backlog(void *data, const PGresult *res, int err)
{
    probe_t *p = data;
    if (err == 0 && PQntuples(res) == 1)
        p->outbox_backlog = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    probe_release(p);
}

/* The value of `name` in a flat [name, value, ...] reply: an integer, or -1 (absent, nil: Redis cannot tell). */
static long long field_int(const redisReply *fields, const char *name)
{
    for (size_t i = 0; i + 1 < fields->elements; i += 2) {
        const redisReply *k = fields->element[i], *v = fields->element[i + 1];
        if ((k->type == REDIS_REPLY_STRING || k->type == REDIS_REPLY_STATUS) && strcmp(k->str, name) == 0)
            return v->type == REDIS_REPLY_INTEGER && v->integer >= 0 ? v->integer : -1;
    }
    return -1;
}

/* XINFO GROUPS: the workers' group's pending entries and lag (Redis 7: entries not yet delivered). */
static void on_groups(void *data, const redisReply *reply, int err)
{
    probe_t *p = data;
    for (size_t i = 0; err == 0 && reply != NULL && reply->type == REDIS_REPLY_ARRAY && i < reply->elements; i++) {
        const redisReply *g = reply->element[i];
        if (g->type != REDIS_REPLY_ARRAY)
            continue;
        for (size_t f = 0; f + 1 < g->elements; f += 2) {
            const redisReply *k = g->element[f], *v = g->element[f + 1];
            if (k->type == REDIS_REPLY_STRING && strcmp(k->str, "name") == 0 && v->type == REDIS_REPLY_STRING &&
                strcmp(v->str, WK_RUNS_GROUP) == 0) {
                p->stream_pending = field_int(g, "pending");
                p->stream_lag = field_int(g, "lag");
            }
        }
    }
    probe_release(p);
}

/* --- the endpoints ---------------------------------------------------------------------------- */

static void ready_done(probe_t *p, h2o_req_t *req)
{
    int ok = p->db_ok && p->redis_ok && p->reader_up && p->group_joined;
    json_t *checks = json_pack("{s:s,s:s,s:s}", "postgres", p->db_ok ? "up" : "down", "redis",
                               p->redis_ok && p->reader_up ? "up" : "down", "consumer_group",
                               p->group_joined ? "joined" : "not_joined");
    if (ok) {
        send_json(req, 200, "OK", json_pack("{s:s,s:o}", "status", "ready", "checks", checks));
        return;
    }
    char detail[256];
    snprintf(detail, sizeof(detail), "%s%s%s%s", !p->db_ok ? "PostgreSQL is unreachable. " : "",
             !(p->redis_ok && p->reader_up) ? "Redis is unreachable. " : "",
             !p->group_joined ? "The worker has not joined the consumer group of the runs stream. " : "",
             "Retry later.");
    json_t *prob = problem(503, "unavailable", "service unavailable", detail, "/readyz");
    json_object_set_new(prob, "checks", checks);
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_RETRY_AFTER, NULL, H2O_STRLIT("1"));
    send_json(req, 503, "Service Unavailable", prob);
}

static void readyz(wk_ops_t *ops, h2o_req_t *req)
{
    probe_t *p = probe_new(ops, req, ready_done);
    p->pending++;
    if (wk_ops_db_ping(ops->conf.db, on_ping, p) != 0)
        p->pending--;
    p->pending++;
    const char *argv[] = {"PING"};
    if (kv_command(ops->conf.kv, on_redis_ping, p, 1, argv, NULL) != 0)
        p->pending--;
    probe_release(p);
}

static void gauge(prom_out_t *o, const char *name, const char *help, long long value)
{
    prom_head(o, name, "gauge", help);
    if (value >= 0)
        prom_printf(o, "%s %lld\n", name, value);
}

static void metrics_done(probe_t *p, h2o_req_t *req)
{
    prom_out_t o;
    prom_out_init(&o, &req->pool);
    prom_registry_render((prom_registry_t *)p->metrics, &o);
    gauge(&o, "clientele_worker_busy", "1 while a run is on this worker's job thread.", p->busy);
    gauge(&o, "clientele_worker_leader", "1 while this worker is the schedule leader (it enqueues due runs).",
          p->leader);
    gauge(&o, "clientele_worker_consumer_group_joined", "1 while this worker reads the runs stream in its group.",
          p->group_joined);
    /* Unknown figures (Redis or PostgreSQL did not answer) are left out rather than shown as 0. */
    gauge(&o, "clientele_worker_stream_lag",
          "Entries of the runs stream not yet delivered to any worker (XINFO GROUPS lag).", p->stream_lag);
    gauge(&o, "clientele_worker_stream_pending",
          "Entries of the runs stream delivered to a worker and not yet acknowledged.", p->stream_pending);
    gauge(&o, "clientele_worker_outbox_pending", "Run messages in the outbox not yet published to the stream.",
          p->outbox_backlog);
    const watchdog_t *w[] = {p->watchdog};
    prom_render_watchdogs(&o, w, p->watchdog != NULL ? 1 : 0);
    prom_render_log(&o);
    prom_render_db(&o, &p->db, p->redis_up);
    req->res.status = 200;
    req->res.reason = "OK";
    req->http1_is_persistent = 0;
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL,
                   H2O_STRLIT("text/plain; version=0.0.4; charset=utf-8"));
    req->res.content_length = o.len;
    h2o_send_inline(req, o.buf, o.len);
}

static void metrics(wk_ops_t *ops, h2o_req_t *req)
{
    probe_t *p = probe_new(ops, req, metrics_done);
    p->pending++;
    if (wk_ops_db_outbox_backlog(ops->conf.db, on_backlog, p) != 0)
        p->pending--;
    p->pending++;
    const char *argv[] = {"XINFO", "GROUPS", WK_RUNS_STREAM};
    if (kv_command(ops->conf.kv, on_groups, p, 3, argv, NULL) != 0)
        p->pending--;
    probe_release(p);
}

static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
    wk_ops_t *ops = ((ops_handler_t *)self)->ops;
    size_t path_len = req->query_at != SIZE_MAX ? req->query_at : req->path.len;
    h2o_iovec_t path = h2o_iovec_init(req->path.base, path_len);
    int known = h2o_memis(path.base, path.len, H2O_STRLIT("/healthz")) ||
                h2o_memis(path.base, path.len, H2O_STRLIT("/readyz")) ||
                h2o_memis(path.base, path.len, H2O_STRLIT("/metrics"));
    if (!known) {
        send_json(req, 404, "Not Found",
                  problem(404, "not-found", "resource not found",
                          "The worker answers /healthz, /readyz and /metrics only.", "/"));
        return 0;
    }
    if (!h2o_memis(req->method.base, req->method.len, H2O_STRLIT("GET"))) {
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ALLOW, NULL, H2O_STRLIT("GET"));
        char *instance = h2o_mem_alloc_pool(&req->pool, path.len + 1); /* one of the three paths above */
        memcpy(instance, path.base, path.len);
        instance[path.len] = '\0';
        send_json(req, 405, "Method Not Allowed",
                  problem(405, "method-not-allowed", "method not allowed", "This resource supports GET.", instance));
        return 0;
    }
    if (path.base[1] == 'h') {
        send_json(req, 200, "OK", json_pack("{s:s}", "status", "ok"));
    } else if (ops->stopping) {
        /* The pool and the clients are being closed: nothing may be asked of them any more. */
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_RETRY_AFTER, NULL, H2O_STRLIT("1"));
        send_json(req, 503, "Service Unavailable",
                  problem(503, "unavailable", "service unavailable", "The worker is shutting down.",
                          path.base[1] == 'r' ? "/readyz" : "/metrics"));
    } else if (path.base[1] == 'r') {
        readyz(ops, req);
    } else {
        metrics(ops, req);
    }
    return 0;
}

/* --- the listener ------------------------------------------------------------------------------ */

static void on_conn_close(void *data)
{
    wk_ops_t *ops = data;
    ops->connections--;
}

static void on_accept(h2o_socket_t *listener, const char *err)
{
    wk_ops_t *ops = listener->data;
    if (err != NULL)
        return;
    for (int i = 0; i < 16; i++) {
        h2o_socket_t *sock = h2o_evloop_socket_accept(listener);
        if (sock == NULL)
            break;
        if (ops->connections >= MAX_CONNECTIONS) {
            h2o_socket_close(sock);
            continue;
        }
        ops->connections++;
        sock->on_close.cb = on_conn_close;
        sock->on_close.data = ops;
        h2o_accept(&ops->accept_ctx, sock);
    }
}

static int open_listener(const char *host, uint16_t port, char *err, size_t errlen)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE}, *res;
    char service[8];
    snprintf(service, sizeof(service), "%u", port);
    int gai = getaddrinfo(host, service, &hints, &res);
    if (gai != 0) {
        snprintf(err, errlen, "CLIENTELE_WORKER_LISTEN: cannot resolve %s: %s", host, gai_strerror(gai));
        return -1;
    }
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), on = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) != 0 ||
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on)) != 0 ||
        bind(fd, res->ai_addr, res->ai_addrlen) != 0 || listen(fd, 64) != 0) {
        snprintf(err, errlen, "CLIENTELE_WORKER_LISTEN: cannot listen on %s:%u: %s", host, port, strerror(errno));
        if (fd >= 0)
            close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    return fd;
}

wk_ops_t *wk_ops_start(h2o_loop_t *loop, const wk_ops_config_t *conf, char *err, size_t errlen)
{
    int fd = open_listener(conf->host, conf->port, err, errlen);
    if (fd < 0)
        return NULL;
    wk_ops_t *ops = calloc(1, sizeof(*ops));
    if (ops == NULL)
        abort();
    ops->loop = loop;
    ops->conf = *conf;
    h2o_config_init(&ops->globalconf);
    ops->globalconf.server_name = h2o_iovec_init(H2O_STRLIT("clientele-worker"));
    /* No endpoint takes a body, and HTTP/1.1 is all probes and scrapers need. */
    ops->globalconf.max_request_entity_size = 4096;
    ops->globalconf.http1.upgrade_to_http2 = 0;
    ops->globalconf.http1.req_timeout = 5000;
    h2o_hostconf_t *host = h2o_config_register_host(&ops->globalconf, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    h2o_pathconf_t *path = h2o_config_register_path(host, "/", 0);
    ops_handler_t *h = (ops_handler_t *)h2o_create_handler(path, sizeof(*h));
    h->super.on_req = on_req;
    h->ops = ops;
    h2o_context_init(&ops->ctx, loop, &ops->globalconf);
    ops->accept_ctx.ctx = &ops->ctx;
    ops->accept_ctx.hosts = ops->globalconf.hosts;
    ops->listener = h2o_evloop_socket_create(loop, fd, H2O_SOCKET_FLAG_DONT_READ);
    ops->listener->data = ops;
    h2o_socket_read_start(ops->listener, on_accept);
    log_msg(LOG_INFO, "health and metrics on http://%s:%u (/healthz, /readyz, /metrics)", conf->host, conf->port);
    return ops;
}

void wk_ops_stop(wk_ops_t *ops)
{
    if (ops->stopping)
        return;
    ops->stopping = 1;
    ops->conf.runs = NULL;
    ops->conf.scheduler = NULL;
    h2o_socket_read_stop(ops->listener);
    h2o_socket_close(ops->listener);
    ops->listener = NULL;
    h2o_context_request_shutdown(&ops->ctx);
}

int wk_ops_idle(wk_ops_t *ops)
{
    return ops->connections == 0;
}

int wk_ops_free(wk_ops_t *ops)
{
    if (ops->connections > 0) {
        /* Their h2o state is linked into the context's timeouts: leave all of it to the process's exit. */
        log_msg(LOG_WARN, "%d health or metrics connection(s) still open at shutdown", ops->connections);
        kept_ops = ops;
        return -1;
    }
    /* request_shutdown() may have armed HTTP/2's graceful-shutdown timer; no HTTP/2 connection is left. */
    if (h2o_timeout_is_linked(&ops->ctx.http2._graceful_shutdown_timeout))
        h2o_timeout_unlink(&ops->ctx.http2._graceful_shutdown_timeout);
    kept_queue = ops->ctx.queue;
    h2o_context_dispose(&ops->ctx);
    h2o_config_dispose(&ops->globalconf);
    free(ops);
    return 0;
}
