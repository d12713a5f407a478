/*
 * api/health.c - liveness, readiness and metrics endpoints.
 *
 * /healthz answers from the loop alone. /readyz asks PostgreSQL (SELECT 1
 * through the thread's pool) and Redis (PING) at the same time and answers
 * when both have replied or failed, naming whichever is down. The probe
 * state is malloc'ed because it outlives the handler call; it holds a
 * reference on the request state until both replies are in. /metrics adds
 * the loops' watchdog figures and the log writer's drops to the request
 * metrics of api/metrics.c.
 */
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "common/log.h"

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

/* The loops' watchdogs (common/watchdog.h) and the log writer's drops, in Prometheus text; bounded size. */
static h2o_iovec_t render_loops(api_server_t *server, h2o_mem_pool_t *pool)
{
    size_t cap = 4096 + (size_t)server->nthreads * 128, n = 0;
    char *buf = h2o_mem_alloc_pool(pool, cap);
    uint64_t buckets[WATCHDOG_NBUCKETS + 1] = {0}, sum_us = 0, ticks = 0;
#define PUT(...) (n < cap ? (n += (size_t)snprintf(buf + n, cap - n, __VA_ARGS__)) : n)
    PUT("# HELP clientele_loop_lag_max_seconds Worst delay of each event loop's watchdog timer since start-up"
        " (how long one loop iteration kept requests waiting, within %d ms).\n"
        "# TYPE clientele_loop_lag_max_seconds gauge\n",
        WATCHDOG_INTERVAL_MS);
    for (int i = 0; i < server->nthreads; i++) {
        watchdog_t *w = &server->threads[i].watchdog;
        PUT("clientele_loop_lag_max_seconds{thread=\"%d\"} %.6f\n", i,
            (double)atomic_load_explicit(&w->max_us, memory_order_relaxed) / 1e6);
        for (size_t b = 0; b <= WATCHDOG_NBUCKETS; b++)
            buckets[b] += atomic_load_explicit(&w->buckets[b], memory_order_relaxed);
        sum_us += atomic_load_explicit(&w->sum_us, memory_order_relaxed);
        ticks += atomic_load_explicit(&w->ticks, memory_order_relaxed);
    }
    PUT("# HELP clientele_loop_stall_max_seconds Worst delay of each loop's watchdog timer less the time the thread"
        " waited for a CPU meanwhile: what the loop's own code held it for.\n"
        "# TYPE clientele_loop_stall_max_seconds gauge\n");
    for (int i = 0; i < server->nthreads; i++)
        PUT("clientele_loop_stall_max_seconds{thread=\"%d\"} %.6f\n", i,
            (double)atomic_load_explicit(&server->threads[i].watchdog.stall_max_us, memory_order_relaxed) / 1e6);
    PUT("# HELP clientele_loop_lag_seconds Delay of the loops' watchdog timers (one every %d ms per loop).\n"
        "# TYPE clientele_loop_lag_seconds histogram\n",
        WATCHDOG_INTERVAL_MS);
    uint64_t cum = 0;
    for (size_t b = 0; b < WATCHDOG_NBUCKETS; b++) {
        cum += buckets[b];
        PUT("clientele_loop_lag_seconds_bucket{le=\"%g\"} %llu\n", watchdog_buckets_ms[b] / 1000.0,
            (unsigned long long)cum);
    }
    PUT("clientele_loop_lag_seconds_bucket{le=\"+Inf\"} %llu\n", (unsigned long long)ticks);
    PUT("clientele_loop_lag_seconds_sum %.6f\n", (double)sum_us / 1e6);
    PUT("clientele_loop_lag_seconds_count %llu\n", (unsigned long long)ticks);
    PUT("# HELP clientele_log_lines_dropped_total Log lines dropped because the log writer's buffer was full.\n"
        "# TYPE clientele_log_lines_dropped_total counter\n"
        "clientele_log_lines_dropped_total %llu\n",
        (unsigned long long)log_dropped());
#undef PUT
    return h2o_iovec_init(buf, n < cap ? n : cap - 1);
}

int health_metrics(api_req_t *ar)
{
    h2o_iovec_t body, loops;
    api_metrics_render(ar->thread->server, &ar->req->pool, &body);
    loops = render_loops(ar->thread->server, &ar->req->pool);
    char *all = h2o_mem_alloc_pool(&ar->req->pool, body.len + loops.len);
    memcpy(all, body.base, body.len);
    memcpy(all + body.len, loops.base, loops.len);
    return api_send_raw(ar, 200, "text/plain; version=0.0.4; charset=utf-8", all, body.len + loops.len);
}
