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
#include "common/prom.h"

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
    prom_out_t o;
    prom_out_init(&o, pool);
    char label[256];
    const char *method;

    prom_printf(&o, "# HELP clientele_http_requests_total Requests answered, by route template and status.\n"
                    "# TYPE clientele_http_requests_total counter\n");
    for (size_t slot = 0; slot < m->nslots; slot++) {
        route_label(slot, label, sizeof(label), &method);
        for (size_t s = 0; s < NSTATUS; s++) {
            uint64_t c = atomic_load_explicit(&m->count[slot * NSTATUS + s], memory_order_relaxed);
            if (c == 0)
                continue;
            if (s < NSTATUS - 1)
                prom_printf(&o, "clientele_http_requests_total{method=\"%s\",route=\"%s\",status=\"%d\"} %llu\n",
                            method, label, tracked_status[s], (unsigned long long)c);
            else
                prom_printf(&o, "clientele_http_requests_total{method=\"%s\",route=\"%s\",status=\"other\"} %llu\n",
                            method, label, (unsigned long long)c);
        }
    }
    prom_printf(&o, "# HELP clientele_http_request_duration_seconds Time from routing to the end of the request.\n"
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
                prom_printf(
                    &o, "clientele_http_request_duration_seconds_bucket{method=\"%s\",route=\"%s\",le=\"%g\"} %llu\n",
                    method, label, buckets_s[b], (unsigned long long)cum);
            else
                prom_printf(
                    &o, "clientele_http_request_duration_seconds_bucket{method=\"%s\",route=\"%s\",le=\"+Inf\"} %llu\n",
                    method, label, (unsigned long long)cum);
        }
        prom_printf(&o, "clientele_http_request_duration_seconds_sum{method=\"%s\",route=\"%s\"} %.6f\n", method, label,
                    (double)atomic_load_explicit(&m->sum_ns[slot], memory_order_relaxed) / 1e9);
        prom_printf(&o, "clientele_http_request_duration_seconds_count{method=\"%s\",route=\"%s\"} %llu\n", method,
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
    db_stats_t sum = {.connections_up = up,
                      .connections_busy = busy,
                      .pinned = pinned,
                      .waiting = waiting,
                      .prepared = prepared,
                      .connects = connects,
                      .rejected = rejected,
                      .queue_timeouts = queue_timeouts,
                      .exec_timeouts = exec_timeouts,
                      .cancels = cancels,
                      .pipelines = pipelines,
                      .pipelined = pipelined};
    prom_render_db(&o, &sum, redis_up == server->nthreads);
    prom_head(&o, "clientele_threads", "gauge", "Event loop threads.");
    prom_printf(&o, "clientele_threads %d\n", server->nthreads);
    *result = h2o_iovec_init(o.buf, o.len);
}
