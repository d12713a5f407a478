/*
 * api/metrics.c - request counters and latency histograms, Prometheus text.
 *
 * One process-wide table, indexed by route (plus a slot for requests that
 * matched no route) and by status. Loop threads add to it with relaxed
 * atomic increments; GET /metrics reads it the same way, so a scrape costs
 * no lock and sees each counter exactly, if not all at one instant.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"

static const int tracked_status[] = {200, 201, 202, 204, 304, 400, 401, 403, 404, 405, 409,
                                     412, 413, 415, 422, 429, 499, 500, 502, 503, 504};
#define NSTATUS (sizeof(tracked_status) / sizeof(tracked_status[0]) + 1) /* + "other" */

static const double buckets_s[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
#define NBUCKETS (sizeof(buckets_s) / sizeof(buckets_s[0]))

struct st_api_metrics_t {
    size_t nslots;            /* routes + 1 */
    _Atomic uint64_t *count;  /* [slot][status] */
    _Atomic uint64_t *bucket; /* [slot][bucket], non-cumulative */
    _Atomic uint64_t *sum_ns; /* [slot] */
    _Atomic uint64_t *total;  /* [slot] */
};

api_metrics_t *api_metrics_new(size_t nroutes)
{
    api_metrics_t *m = calloc(1, sizeof(*m));
    if (m == NULL)
        abort();
    m->nslots = nroutes + 1;
    m->count = calloc(m->nslots * NSTATUS, sizeof(*m->count));
    m->bucket = calloc(m->nslots * (NBUCKETS + 1), sizeof(*m->bucket));
    m->sum_ns = calloc(m->nslots, sizeof(*m->sum_ns));
    m->total = calloc(m->nslots, sizeof(*m->total));
    if (m->count == NULL || m->bucket == NULL || m->sum_ns == NULL || m->total == NULL)
        abort();
    return m;
}

void api_metrics_free(api_metrics_t *m)
{
    if (m == NULL)
        return;
    free(m->count);
    free(m->bucket);
    free(m->sum_ns);
    free(m->total);
    free(m);
}

static size_t status_index(int status)
{
    for (size_t i = 0; i < NSTATUS - 1; i++)
        if (tracked_status[i] == status)
            return i;
    return NSTATUS - 1;
}

void api_metrics_observe(api_metrics_t *m, int route, int status, uint64_t duration_ns)
{
    size_t slot = route < 0 ? m->nslots - 1 : (size_t)route;
    atomic_fetch_add_explicit(&m->count[slot * NSTATUS + status_index(status)], 1, memory_order_relaxed);
    double s = (double)duration_ns / 1e9;
    size_t b = 0;
    while (b < NBUCKETS && s > buckets_s[b])
        b++;
    atomic_fetch_add_explicit(&m->bucket[slot * (NBUCKETS + 1) + b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&m->sum_ns[slot], duration_ns, memory_order_relaxed);
    atomic_fetch_add_explicit(&m->total[slot], 1, memory_order_relaxed);
}

typedef struct st_out_t {
    h2o_mem_pool_t *pool;
    char *buf;
    size_t len, cap;
} out_t;

static void out_printf(out_t *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void out_printf(out_t *o, const char *fmt, ...)
{
    va_list ap;
    for (;;) {
        va_start(ap, fmt);
        int n = vsnprintf(o->buf + o->len, o->cap - o->len, fmt, ap);
        va_end(ap);
        if (n >= 0 && (size_t)n < o->cap - o->len) {
            o->len += (size_t)n;
            return;
        }
        size_t ncap = o->cap * 2 + (size_t)n;
        char *nb = h2o_mem_alloc_pool(o->pool, ncap);
        memcpy(nb, o->buf, o->len);
        o->buf = nb;
        o->cap = ncap;
    }
}

/* The route's template as OpenAPI writes it, and its method. */
static void route_label(size_t slot, char *buf, size_t len, const char **method)
{
    static const struct {
        unsigned bit;
        const char *name;
    } names[] = {{ROUTER_GET, "GET"},
                 {ROUTER_POST, "POST"},
                 {ROUTER_PUT, "PUT"},
                 {ROUTER_PATCH, "PATCH"},
                 {ROUTER_DELETE, "DELETE"}};
    *method = "";
    if (slot >= api_nroutes) {
        snprintf(buf, len, "(none)");
        return;
    }
    router_template_label(api_routes[slot].path, buf, len);
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (api_routes[slot].method == names[i].bit)
            *method = names[i].name;
}

void api_metrics_render(api_server_t *server, h2o_mem_pool_t *pool, h2o_iovec_t *result)
{
    api_metrics_t *m = server->metrics;
    out_t o = {pool, h2o_mem_alloc_pool(pool, 8192), 0, 8192};
    char label[256];
    const char *method;

    out_printf(&o, "# HELP clientele_http_requests_total Requests answered, by route template and status.\n"
                   "# TYPE clientele_http_requests_total counter\n");
    for (size_t slot = 0; slot < m->nslots; slot++) {
        route_label(slot, label, sizeof(label), &method);
        for (size_t s = 0; s < NSTATUS; s++) {
            uint64_t c = atomic_load_explicit(&m->count[slot * NSTATUS + s], memory_order_relaxed);
            if (c == 0)
                continue;
            if (s < NSTATUS - 1)
                out_printf(&o, "clientele_http_requests_total{method=\"%s\",route=\"%s\",status=\"%d\"} %llu\n", method,
                           label, tracked_status[s], (unsigned long long)c);
            else
                out_printf(&o, "clientele_http_requests_total{method=\"%s\",route=\"%s\",status=\"other\"} %llu\n",
                           method, label, (unsigned long long)c);
        }
    }
    out_printf(&o, "# HELP clientele_http_request_duration_seconds Time from routing to the end of the request.\n"
                   "# TYPE clientele_http_request_duration_seconds histogram\n");
    for (size_t slot = 0; slot < m->nslots; slot++) {
        uint64_t total = atomic_load_explicit(&m->total[slot], memory_order_relaxed);
        if (total == 0)
            continue;
        route_label(slot, label, sizeof(label), &method);
        uint64_t cum = 0;
        for (size_t b = 0; b <= NBUCKETS; b++) {
            cum += atomic_load_explicit(&m->bucket[slot * (NBUCKETS + 1) + b], memory_order_relaxed);
            if (b < NBUCKETS)
                out_printf(
                    &o, "clientele_http_request_duration_seconds_bucket{method=\"%s\",route=\"%s\",le=\"%g\"} %llu\n",
                    method, label, buckets_s[b], (unsigned long long)cum);
            else
                out_printf(
                    &o, "clientele_http_request_duration_seconds_bucket{method=\"%s\",route=\"%s\",le=\"+Inf\"} %llu\n",
                    method, label, (unsigned long long)cum);
        }
        out_printf(&o, "clientele_http_request_duration_seconds_sum{method=\"%s\",route=\"%s\"} %.6f\n", method, label,
                   (double)atomic_load_explicit(&m->sum_ns[slot], memory_order_relaxed) / 1e9);
        out_printf(&o, "clientele_http_request_duration_seconds_count{method=\"%s\",route=\"%s\"} %llu\n", method,
                   label, (unsigned long long)cum);
    }

    /*
     * Other threads' pools are never touched: each thread's pool and Redis
     * client publish their gauges into the thread's slot, which lives until
     * the process exits, so a scrape during shutdown reads no freed memory.
     */
    int up = 0, busy = 0, pinned = 0, waiting = 0, prepared = 0, redis_up = 0;
    unsigned long long connects = 0, rejected = 0, queue_timeouts = 0, exec_timeouts = 0, cancels = 0, pipelines = 0,
                       pipelined = 0;
    for (int i = 0; i < server->nthreads; i++) {
        api_thread_t *t = &server->threads[i];
        db_stats_t st;
        db_gauges_read(&t->db_gauges, &st);
        up += st.connections_up;
        busy += st.connections_busy;
        pinned += st.pinned;
        waiting += st.waiting;
        prepared += st.prepared;
        connects += st.connects;
        rejected += st.rejected;
        queue_timeouts += st.queue_timeouts;
        exec_timeouts += st.exec_timeouts;
        cancels += st.cancels;
        pipelines += st.pipelines;
        pipelined += st.pipelined;
        redis_up += atomic_load_explicit(&t->kv_gauges.up, memory_order_relaxed) != 0;
    }
    out_printf(
        &o,
        "# HELP clientele_db_connections Database connections: open; of those, in_use (running a query) "
        "and pinned (held by a session).\n"
        "# TYPE clientele_db_connections gauge\n"
        "clientele_db_connections{state=\"open\"} %d\n"
        "clientele_db_connections{state=\"in_use\"} %d\n"
        "clientele_db_connections{state=\"pinned\"} %d\n"
        "# HELP clientele_db_waiting_requests Queries waiting for a free database connection.\n"
        "# TYPE clientele_db_waiting_requests gauge\n"
        "clientele_db_waiting_requests %d\n"
        "# HELP clientele_db_prepared_statements Statements prepared on the open database connections.\n"
        "# TYPE clientele_db_prepared_statements gauge\n"
        "clientele_db_prepared_statements %d\n"
        "# HELP clientele_db_connects_total Database connections established (reconnects included).\n"
        "# TYPE clientele_db_connects_total counter\n"
        "clientele_db_connects_total %llu\n"
        "# HELP clientele_db_queries_rejected_total Queries refused at once: queue full or database down.\n"
        "# TYPE clientele_db_queries_rejected_total counter\n"
        "clientele_db_queries_rejected_total %llu\n"
        "# HELP clientele_db_queue_timeouts_total Queries that waited longer than CLIENTELE_DB_QUEUE_TIMEOUT.\n"
        "# TYPE clientele_db_queue_timeouts_total counter\n"
        "clientele_db_queue_timeouts_total %llu\n"
        "# HELP clientele_db_statement_timeouts_total Statements stopped for running too long.\n"
        "# TYPE clientele_db_statement_timeouts_total counter\n"
        "clientele_db_statement_timeouts_total %llu\n"
        "# HELP clientele_db_cancels_total Cancel requests sent for statements past the client-side deadline or in "
        "closed sessions.\n"
        "# TYPE clientele_db_cancels_total counter\n"
        "clientele_db_cancels_total %llu\n"
        "# HELP clientele_db_pipelines_total Batches of short reads sent together on one connection (pipeline mode).\n"
        "# TYPE clientele_db_pipelines_total counter\n"
        "clientele_db_pipelines_total %llu\n"
        "# HELP clientele_db_pipelined_statements_total Statements sent in those batches.\n"
        "# TYPE clientele_db_pipelined_statements_total counter\n"
        "clientele_db_pipelined_statements_total %llu\n"
        "# HELP clientele_redis_connected 1 when every loop thread has a Redis connection.\n"
        "# TYPE clientele_redis_connected gauge\n"
        "clientele_redis_connected %d\n"
        "# HELP clientele_threads Event loop threads.\n"
        "# TYPE clientele_threads gauge\n"
        "clientele_threads %d\n",
        up, busy, pinned, waiting, prepared, connects, rejected, queue_timeouts, exec_timeouts, cancels, pipelines,
        pipelined, redis_up == server->nthreads ? 1 : 0, server->nthreads);
    *result = h2o_iovec_init(o.buf, o.len);
}
