/*
 * common/prom.c - Prometheus text exposition (see prom.h).
 *
 * A family keeps its series in an array in the order they first appeared,
 * each with its label set already written out as text (escaped once, when
 * the series is created), so a render only copies. Lookups are a linear
 * scan: families hold a handful of series (kinds times outcomes), and an
 * update happens per run or per delivery. Counters and sums are doubles,
 * which count exactly up to 2^53.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "prom.h"

/* --- the writer ------------------------------------------------------------------------------ */

void prom_out_init(prom_out_t *o, h2o_mem_pool_t *pool)
{
    o->pool = pool;
    o->cap = 8192;
    o->buf = h2o_mem_alloc_pool(pool, o->cap);
    o->len = 0;
}

void prom_printf(prom_out_t *o, const char *fmt, ...)
{
    va_list ap;
    for (;;) {
        va_start(ap, fmt);
        int n = vsnprintf(o->buf + o->len, o->cap - o->len, fmt, ap);
        va_end(ap);
        if (n < 0)
            return;
        if ((size_t)n < o->cap - o->len) {
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

void prom_head(prom_out_t *o, const char *name, const char *type, const char *help)
{
    prom_printf(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* --- families --------------------------------------------------------------------------------- */

typedef struct st_prom_series_t {
    char *labels;      /* `a="x",b="y"`, escaped; "" without labels */
    char **values;     /* the raw label values, for lookups */
    double value;      /* counter: the count; histogram: the sum */
    uint64_t count;    /* histogram: observations */
    uint64_t *buckets; /* histogram: nbounds + 1, not cumulative */
} prom_series_t;

struct st_prom_family_t {
    const char *name, *help;
    const char *labels[PROM_MAX_LABELS];
    size_t nlabels;
    int histogram;
    double *bounds;
    size_t nbounds;
    pthread_mutex_t mutex;
    prom_series_t *series;
    size_t nseries, cap;
    int overflow_logged;
    struct st_prom_family_t *next;
};

struct st_prom_registry_t {
    prom_family_t *first, *last;
};

prom_registry_t *prom_registry_new(void)
{
    prom_registry_t *r = calloc(1, sizeof(*r));
    if (r == NULL)
        abort();
    return r;
}

void prom_registry_free(prom_registry_t *r)
{
    if (r == NULL)
        return;
    for (prom_family_t *f = r->first, *next; f != NULL; f = next) {
        next = f->next;
        for (size_t i = 0; i < f->nseries; i++) {
            prom_series_t *s = &f->series[i];
            for (size_t l = 0; l < f->nlabels; l++)
                free(s->values[l]);
            free(s->values);
            free(s->labels);
            free(s->buckets);
        }
        free(f->series);
        free(f->bounds);
        pthread_mutex_destroy(&f->mutex);
        free(f);
    }
    free(r);
}

static prom_family_t *family_new(prom_registry_t *r, const char *name, const char *help, const char *const *labels)
{
    prom_family_t *f = calloc(1, sizeof(*f));
    if (f == NULL)
        abort();
    f->name = name;
    f->help = help;
    for (; labels != NULL && labels[f->nlabels] != NULL; f->nlabels++) {
        if (f->nlabels == PROM_MAX_LABELS)
            abort(); /* a programming error, found at start-up */
        f->labels[f->nlabels] = labels[f->nlabels];
    }
    pthread_mutex_init(&f->mutex, NULL);
    if (r->last != NULL)
        r->last->next = f;
    else
        r->first = f;
    r->last = f;
    return f;
}

prom_family_t *prom_counter(prom_registry_t *r, const char *name, const char *help, const char *const *labels)
{
    return family_new(r, name, help, labels);
}

prom_family_t *prom_histogram(prom_registry_t *r, const char *name, const char *help, const char *const *labels,
                              const double *bounds, size_t nbounds)
{
    prom_family_t *f = family_new(r, name, help, labels);
    f->histogram = 1;
    f->nbounds = nbounds;
    f->bounds = malloc(sizeof(double) * (nbounds > 0 ? nbounds : 1));
    if (f->bounds == NULL)
        abort();
    memcpy(f->bounds, bounds, sizeof(double) * nbounds);
    return f;
}

/* Appends a label value escaped as the text format wants: backslash, double quote and newline. */
static void put_escaped(char **p, const char *v)
{
    for (; *v != '\0'; v++) {
        if (*v == '\\' || *v == '"') {
            *(*p)++ = '\\';
            *(*p)++ = *v;
        } else if (*v == '\n') {
            *(*p)++ = '\\';
            *(*p)++ = 'n';
        } else {
            *(*p)++ = *v;
        }
    }
}

static char *render_labels(const prom_family_t *f, const char *const *values)
{
    size_t cap = 1;
    for (size_t l = 0; l < f->nlabels; l++)
        cap += strlen(f->labels[l]) + 2 * strlen(values[l]) + 4;
    char *s = malloc(cap), *p = s;
    if (s == NULL)
        abort();
    for (size_t l = 0; l < f->nlabels; l++) {
        if (l > 0)
            *p++ = ',';
        memcpy(p, f->labels[l], strlen(f->labels[l]));
        p += strlen(f->labels[l]);
        *p++ = '=';
        *p++ = '"';
        put_escaped(&p, values[l]);
        *p++ = '"';
    }
    *p = '\0';
    return s;
}

/* The series of values, created when create is set; NULL when absent or full. Under f->mutex. */
static prom_series_t *find_series(prom_family_t *f, const char *const *values, int create)
{
    for (size_t i = 0; i < f->nseries; i++) {
        size_t l = 0;
        while (l < f->nlabels && strcmp(f->series[i].values[l], values[l] != NULL ? values[l] : "") == 0)
            l++;
        if (l == f->nlabels)
            return &f->series[i];
    }
    if (!create)
        return NULL;
    if (f->nseries == PROM_MAX_SERIES) {
        if (!f->overflow_logged)
            log_msg(LOG_WARN, "metric %s has %d label sets; updates of further ones are dropped", f->name,
                    PROM_MAX_SERIES);
        f->overflow_logged = 1;
        return NULL;
    }
    if (f->nseries == f->cap) {
        size_t ncap = f->cap == 0 ? 8 : f->cap * 2;
        prom_series_t *ns = realloc(f->series, ncap * sizeof(*ns));
        if (ns == NULL)
            abort();
        f->series = ns;
        f->cap = ncap;
    }
    prom_series_t *s = &f->series[f->nseries++];
    memset(s, 0, sizeof(*s));
    const char *vals[PROM_MAX_LABELS];
    s->values = calloc(f->nlabels > 0 ? f->nlabels : 1, sizeof(char *));
    if (s->values == NULL)
        abort();
    for (size_t l = 0; l < f->nlabels; l++) {
        vals[l] = values[l] != NULL ? values[l] : "";
        if ((s->values[l] = strdup(vals[l])) == NULL)
            abort();
    }
    s->labels = render_labels(f, vals);
    if (f->histogram && (s->buckets = calloc(f->nbounds + 1, sizeof(uint64_t))) == NULL)
        abort();
    return s;
}

void prom_add(prom_family_t *f, const char *const *values, double n)
{
    pthread_mutex_lock(&f->mutex);
    prom_series_t *s = find_series(f, values, 1);
    if (s != NULL)
        s->value += n;
    pthread_mutex_unlock(&f->mutex);
}

void prom_observe(prom_family_t *f, const char *const *values, double v)
{
    pthread_mutex_lock(&f->mutex);
    prom_series_t *s = find_series(f, values, 1);
    if (s != NULL) {
        size_t b = 0;
        while (b < f->nbounds && v > f->bounds[b])
            b++;
        s->buckets[b]++;
        s->count++;
        s->value += v;
    }
    pthread_mutex_unlock(&f->mutex);
}

void prom_touch(prom_family_t *f, const char *const *values)
{
    pthread_mutex_lock(&f->mutex);
    find_series(f, values, 1);
    pthread_mutex_unlock(&f->mutex);
}

double prom_value(prom_family_t *f, const char *const *values)
{
    pthread_mutex_lock(&f->mutex);
    prom_series_t *s = find_series(f, values, 0);
    double v = s == NULL ? 0 : f->histogram ? (double)s->count : s->value;
    pthread_mutex_unlock(&f->mutex);
    return v;
}

static void render_histogram(const prom_family_t *f, const prom_series_t *s, prom_out_t *o)
{
    const char *sep = s->labels[0] != '\0' ? "," : "";
    uint64_t cum = 0;
    for (size_t b = 0; b < f->nbounds; b++) {
        cum += s->buckets[b];
        prom_printf(o, "%s_bucket{%s%sle=\"%g\"} %llu\n", f->name, s->labels, sep, f->bounds[b],
                    (unsigned long long)cum);
    }
    prom_printf(o, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", f->name, s->labels, sep, (unsigned long long)s->count);
    if (s->labels[0] != '\0') {
        prom_printf(o, "%s_sum{%s} %.6f\n", f->name, s->labels, s->value);
        prom_printf(o, "%s_count{%s} %llu\n", f->name, s->labels, (unsigned long long)s->count);
    } else {
        prom_printf(o, "%s_sum %.6f\n", f->name, s->value);
        prom_printf(o, "%s_count %llu\n", f->name, (unsigned long long)s->count);
    }
}

void prom_registry_render(prom_registry_t *r, prom_out_t *o)
{
    for (prom_family_t *f = r->first; f != NULL; f = f->next) {
        pthread_mutex_lock(&f->mutex);
        prom_head(o, f->name, f->histogram ? "histogram" : "counter", f->help);
        for (size_t i = 0; i < f->nseries; i++) {
            const prom_series_t *s = &f->series[i];
            if (f->histogram)
                render_histogram(f, s, o);
            else if (s->labels[0] != '\0')
                prom_printf(o, "%s{%s} %.17g\n", f->name, s->labels, s->value);
            else
                prom_printf(o, "%s %.17g\n", f->name, s->value);
        }
        pthread_mutex_unlock(&f->mutex);
    }
}

/* --- figures both processes show --------------------------------------------------------------- */

void prom_render_watchdogs(prom_out_t *o, const watchdog_t *const *w, int n)
{
    uint64_t buckets[WATCHDOG_NBUCKETS + 1] = {0}, sum_us = 0, ticks = 0;
    prom_printf(o,
                "# HELP clientele_loop_lag_max_seconds Worst delay of each event loop's watchdog timer since start-up"
                " (how long one loop iteration kept requests waiting, within %d ms).\n"
                "# TYPE clientele_loop_lag_max_seconds gauge\n",
                WATCHDOG_INTERVAL_MS);
    for (int i = 0; i < n; i++) {
        prom_printf(o, "clientele_loop_lag_max_seconds{thread=\"%d\"} %.6f\n", i,
                    (double)atomic_load_explicit(&w[i]->max_us, memory_order_relaxed) / 1e6);
        for (size_t b = 0; b <= WATCHDOG_NBUCKETS; b++)
            buckets[b] += atomic_load_explicit(&w[i]->buckets[b], memory_order_relaxed);
        sum_us += atomic_load_explicit(&w[i]->sum_us, memory_order_relaxed);
        ticks += atomic_load_explicit(&w[i]->ticks, memory_order_relaxed);
    }
    prom_head(o, "clientele_loop_stall_max_seconds", "gauge",
              "Worst delay of each loop's watchdog timer less the time the thread waited for a CPU meanwhile:"
              " what the loop's own code held it for.");
    for (int i = 0; i < n; i++)
        prom_printf(o, "clientele_loop_stall_max_seconds{thread=\"%d\"} %.6f\n", i,
                    (double)atomic_load_explicit(&w[i]->stall_max_us, memory_order_relaxed) / 1e6);
    prom_printf(o,
                "# HELP clientele_loop_lag_seconds Delay of the loops' watchdog timers (one every %d ms per loop).\n"
                "# TYPE clientele_loop_lag_seconds histogram\n",
                WATCHDOG_INTERVAL_MS);
    uint64_t cum = 0;
    for (size_t b = 0; b < WATCHDOG_NBUCKETS; b++) {
        cum += buckets[b];
        prom_printf(o, "clientele_loop_lag_seconds_bucket{le=\"%g\"} %llu\n", watchdog_buckets_ms[b] / 1000.0,
                    (unsigned long long)cum);
    }
    prom_printf(o, "clientele_loop_lag_seconds_bucket{le=\"+Inf\"} %llu\n", (unsigned long long)ticks);
    prom_printf(o, "clientele_loop_lag_seconds_sum %.6f\n", (double)sum_us / 1e6);
    prom_printf(o, "clientele_loop_lag_seconds_count %llu\n", (unsigned long long)ticks);
}

void prom_render_log(prom_out_t *o)
{
    prom_head(o, "clientele_log_lines_dropped_total", "counter",
              "Log lines dropped because the log writer's buffer was full.");
    prom_printf(o, "clientele_log_lines_dropped_total %llu\n", (unsigned long long)log_dropped());
}

void prom_render_db(prom_out_t *o, const db_stats_t *st, int redis_connected)
{
    prom_printf(o,
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
                "# HELP clientele_db_cancels_total Cancel requests sent for statements past the client-side deadline "
                "or in closed sessions.\n"
                "# TYPE clientele_db_cancels_total counter\n"
                "clientele_db_cancels_total %llu\n"
                "# HELP clientele_db_pipelines_total Batches of short reads sent together on one connection (pipeline "
                "mode).\n"
                "# TYPE clientele_db_pipelines_total counter\n"
                "clientele_db_pipelines_total %llu\n"
                "# HELP clientele_db_pipelined_statements_total Statements sent in those batches.\n"
                "# TYPE clientele_db_pipelined_statements_total counter\n"
                "clientele_db_pipelined_statements_total %llu\n"
                "# HELP clientele_redis_connected 1 when every Redis client of the process is connected.\n"
                "# TYPE clientele_redis_connected gauge\n"
                "clientele_redis_connected %d\n",
                st->connections_up, st->connections_busy, st->pinned, st->waiting, st->prepared, st->connects,
                st->rejected, st->queue_timeouts, st->exec_timeouts, st->cancels, st->pipelines, st->pipelined,
                redis_connected ? 1 : 0);
}
