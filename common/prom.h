/*
 * common/prom.h - Prometheus text exposition for both processes: a writer,
 * metric families any thread may update, and the figures the API and the
 * worker both show.
 *
 * prom_out_t is a growable text buffer in a memory pool (a request's, so a
 * scrape frees everything at once). A prom_registry_t holds the families a
 * process registers at start-up (counters and histograms with labels, in
 * the order registered); each family takes a mutex for an update or a
 * render, which suits events counted per run or per delivery, not per
 * request (the API's per-request table in api/metrics.c stays lock-free).
 * A family is shown with its HELP and TYPE lines even before its first
 * sample, so dashboards and alerts find every name from the start; label
 * sets appear when first updated, or at once through prom_touch().
 *
 * The shared renderers write the loops' watchdog figures, the log
 * writer's drops and the database pool's gauges under the same names in
 * both processes, so one dashboard reads either.
 *
 * Ownership: the registry owns its families; they live until
 * prom_registry_free(), which must come after every thread that updates
 * them has stopped.
 */
#ifndef CLIENTELE_COMMON_PROM_H
#define CLIENTELE_COMMON_PROM_H

#include <stddef.h>

#define H2O_USE_LIBUV 0
#include <h2o/memory.h>

#include "db.h"
#include "watchdog.h"

/* --- the writer ----------------------------------------------------------------------- */

typedef struct st_prom_out_t {
    h2o_mem_pool_t *pool;
    char *buf;
    size_t len, cap;
} prom_out_t;

/* An empty text whose memory comes from pool. */
void prom_out_init(prom_out_t *o, h2o_mem_pool_t *pool);
/* Appends printf-formatted text (grows the buffer as needed). */
void prom_printf(prom_out_t *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The "# HELP" and "# TYPE" lines of a family; type is "counter", "gauge" or "histogram". */
void prom_head(prom_out_t *o, const char *name, const char *type, const char *help);

/* --- families ---------------------------------------------------------------------------- */

#define PROM_MAX_LABELS 4
/* Label sets kept per family; updates of further sets are dropped (and logged once). */
#define PROM_MAX_SERIES 256

typedef struct st_prom_registry_t prom_registry_t;
typedef struct st_prom_family_t prom_family_t;

prom_registry_t *prom_registry_new(void);
void prom_registry_free(prom_registry_t *r);

/*
 * Registers a counter (name should end in _total) with the label names in
 * labels (NULL-terminated, at most PROM_MAX_LABELS; NULL for none). name,
 * help and the label names must outlive the registry (string literals).
 * Start-up only: not safe against concurrent updates or renders.
 */
prom_family_t *prom_counter(prom_registry_t *r, const char *name, const char *help, const char *const *labels);
/* Registers a histogram with the given upper bounds (ascending; +Inf is added), copied. */
prom_family_t *prom_histogram(prom_registry_t *r, const char *name, const char *help, const char *const *labels,
                              const double *bounds, size_t nbounds);

/*
 * Updates the series of the label values in values (one per label name, in
 * order; NULL when the family has no labels; copied). Any thread.
 */
void prom_add(prom_family_t *f, const char *const *values, double n);
void prom_observe(prom_family_t *f, const char *const *values, double v);
/* Creates the series at zero if it does not exist yet, so that it shows before its first event. */
void prom_touch(prom_family_t *f, const char *const *values);
/* A counter series' value, or a histogram series' count; 0 when it does not exist. For tests. */
double prom_value(prom_family_t *f, const char *const *values);

/* Writes every family of the registry, in the order registered. Any thread. */
void prom_registry_render(prom_registry_t *r, prom_out_t *o);

/* --- figures both processes show ------------------------------------------------------------ */

/*
 * clientele_loop_lag_max_seconds{thread}, clientele_loop_stall_max_seconds{thread}
 * and the histogram clientele_loop_lag_seconds over all loops, from their
 * watchdogs (read with relaxed atomics; any thread).
 */
void prom_render_watchdogs(prom_out_t *o, const watchdog_t *const *w, int n);
/* clientele_log_lines_dropped_total. */
void prom_render_log(prom_out_t *o);
/*
 * The database pool's gauges and counters (clientele_db_*, summed over a
 * process's pools) and clientele_redis_connected (1 when every Redis
 * client of the process is connected).
 */
void prom_render_db(prom_out_t *o, const db_stats_t *st, int redis_connected);

#endif
