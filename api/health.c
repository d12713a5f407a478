/*
 * api/health.c - liveness, readiness and metrics endpoints.
 *
 * /healthz answers from the loop alone. /readyz asks PostgreSQL (SELECT 1
 * through the thread's pool) and Redis (PING) at the same time and answers
 * when both have replied or failed, naming whichever is down. The probe
 * state is malloc'ed because it outlives the handler call; it holds a
 * reference on the request state until both replies are in. /metrics adds
 * the loops' watchdog figures and the log writer's drops (common/prom.c,
 * shared with the worker) to the request metrics of api/metrics.c.
 */
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "common/log.h"
#include "common/prom.h"

static const char SQL_PING[] = "SELECT 1";

int health_live(api_req_t *ar)
{
    json_t *o = json_object();
    json_object_set_new(o, "status", json_string("ok"));
    return api_send_json(ar, 200, o);
}

typedef struct st_ready_probe_t {
    api_req_t *ar;
    int pending;
    int db_ok;
    int redis_ok;
} ready_probe_t;

/*
 * Does every loop have a usable PostgreSQL and Redis connection? A probe
 * lands on one loop; after an outage the others may still be waiting to
 * reconnect, and requests the balancer then sends would land there. Reads
 * only the gauges each loop publishes (atomics in its thread's slot).
 */
static int every_loop_connected(const api_server_t *server)
{
    for (int i = 0; i < server->nthreads; i++) {
        const api_thread_t *t = &server->threads[i];
        if (atomic_load_explicit(&t->db_gauges.up, memory_order_relaxed) <= 0 ||
            atomic_load_explicit(&t->kv_gauges.up, memory_order_relaxed) <= 0)
            return 0;
    }
    return 1;
}

static void ready_finish(ready_probe_t *p)
{
    if (--p->pending > 0)
        return;
    api_req_t *ar = p->ar;
    if (ar->req != NULL) {
        int shutting = atomic_load(&ar->thread->server->shutting_down);
        int loops = every_loop_connected(ar->thread->server);
        int ok = p->db_ok && p->redis_ok && loops && !shutting;
        json_t *o = json_object();
        json_t *checks = json_object();
        json_object_set_new(checks, "postgres", json_string(p->db_ok ? "up" : "down"));
        json_object_set_new(checks, "redis", json_string(p->redis_ok ? "up" : "down"));
        json_object_set_new(checks, "loops", json_string(loops ? "up" : "reconnecting"));
        if (ok) {
            json_object_set_new(o, "status", json_string("ready"));
            json_object_set_new(o, "checks", checks);
            api_send_json(ar, 200, o);
        } else {
            json_decref(o);
            char detail[192];
            snprintf(detail, sizeof(detail), "%s%s%s%s%s", shutting ? "The server is shutting down. " : "",
                     !p->db_ok ? "PostgreSQL is unreachable. " : "", !p->redis_ok ? "Redis is unreachable. " : "",
                     p->db_ok && p->redis_ok && !loops ? "Some event loops are still reconnecting. " : "",
                     "Retry later.");
            /* The problem body names the failing dependencies in `checks` as well. */
            api_add_header(ar, "retry-after", "1");
            json_t *prob = api_problem_new(503, detail, "/readyz");
            json_object_set_new(prob, "checks", checks);
            json_object_set_new(prob, "request_id", json_string(ar->request_id));
            api_send_json(ar, 503, prob);
        }
    }
    api_req_release(ar);
    free(p);
}

static void on_db_ping(void *data, const PGresult *res, int err)
{
    ready_probe_t *p = data;
    p->db_ok = err == 0;
    ready_finish(p);
}

static void on_redis_ping(void *data, const redisReply *reply, int err)
{
    ready_probe_t *p = data;
    p->redis_ok = err == 0 && reply != NULL && reply->type == REDIS_REPLY_STATUS;
    ready_finish(p);
}

int health_ready(api_req_t *ar)
{
    ready_probe_t *p = calloc(1, sizeof(*p));
    if (p == NULL)
        abort();
    p->ar = ar;
    p->pending = 1; /* released at the end of this function */
    api_req_hold(ar);
    p->pending++;
    if (db_query(ar->thread->db, SQL_PING, 0, NULL, on_db_ping, p) != 0)
        p->pending--;
    const char *argv[] = {"PING"};
    p->pending++;
    if (kv_command(ar->thread->kv, on_redis_ping, p, 1, argv, NULL) != 0)
        p->pending--;
    ready_finish(p);
    return 0;
}

int health_metrics(api_req_t *ar)
{
    api_server_t *server = ar->thread->server;
    h2o_iovec_t body;
    api_metrics_render(server, &ar->req->pool, &body);
    prom_out_t o;
    prom_out_init(&o, &ar->req->pool);
    prom_printf(&o, "%.*s", (int)body.len, body.base);
    /* The loops' watchdogs (common/watchdog.h) and the log writer's drops, as the worker shows its own. */
    const watchdog_t **w = h2o_mem_alloc_pool(&ar->req->pool, sizeof(*w) * (size_t)server->nthreads);
    for (int i = 0; i < server->nthreads; i++)
        w[i] = &server->threads[i].watchdog;
    prom_render_watchdogs(&o, w, server->nthreads);
    prom_render_log(&o);
    return api_send_raw(ar, 200, "text/plain; version=0.0.4; charset=utf-8", o.buf, o.len);
}
