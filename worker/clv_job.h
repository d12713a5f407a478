/*
 * worker/clv_job.h - the analytics run kind "clv": BG/NBD + Gamma-Gamma per customer.
 *
 * wk_clv_job_run() runs on the job thread (worker/job.c) with the run's
 * complete params. It streams the population's ids and their purchase days
 * (one row per customer and UTC day, amounts summed, sorted by customer)
 * with binary COPY, summarises each customer with wk_clv_summarise()
 * (worker/clv_model.c) as its days arrive, fits BG/NBD on everyone with a
 * purchase on or before as_of and Gamma-Gamma on the repeat buyers, scores
 * every customer and writes customer_clv, its history, the run's statistics
 * and its model through wk_job_write_results(). Memory is proportional to
 * the customers, plus the purchase days of one customer at a time.
 */
#ifndef CLIENTELE_WORKER_CLV_JOB_H
#define CLIENTELE_WORKER_CLV_JOB_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "clv_model.h"
#include "job.h"

/* The run's params, checked and decoded. */
typedef struct st_wk_clv_job_params_t {
    int64_t as_of_us;        /* end of calibration: microseconds since 1970-01-01T00:00:00Z */
    int32_t as_of_day;       /* its UTC date, days since 1970-01-01 */
    int time_unit_days;      /* 1 (day) or 7 (week) */
    const char *time_unit;   /* "day" or "week" */
    int horizon;             /* in time units */
    double discount_rate;    /* per time unit */
    double alive_active;     /* p_alive at or above: active */
    double alive_at_risk;    /* p_alive at or above: at_risk (else churned) */
    double penalizer;        /* L2 penalty of both fits */
    int32_t new_days;        /* first purchase fewer days before as_of: new */
    const char *tag;         /* borrowed; NULL: every customer */
    int64_t first_after_us;  /* cohort: first purchase strictly after; INT64_MIN: no bound */
    int64_t first_before_us; /* cohort: first purchase strictly before; INT64_MAX: no bound */
} wk_clv_job_params_t;

/* Lifecycles of a clv run (as in rfm, but active / at_risk / churned come from p_alive). */
typedef enum {
    WK_CLV_PROSPECT = 0,
    WK_CLV_NEW,
    WK_CLV_ACTIVE,
    WK_CLV_AT_RISK,
    WK_CLV_CHURNED,
    WK_CLV_LIFECYCLE__COUNT
} wk_clv_lifecycle_t;

#define WK_CLV_NOT_FITTED UINT32_MAX

/* One customer of the population, as loaded. */
typedef struct st_wk_clv_customer_t {
    int64_t id;
    int64_t first_us;      /* earliest completed order (any time), INT64_MAX when none */
    int32_t first_day;     /* first purchase day on or before as_of (days since 1970-01-01); valid when fitted */
    uint32_t holdout_days; /* purchase days after as_of */
    uint32_t fit;          /* index of its summary, or WK_CLV_NOT_FITTED (no purchase on or before as_of) */
    uint8_t excluded;      /* outside the first-purchase cohort: no result is written */
} wk_clv_customer_t;

/*
 * The load: the population in ascending id order, and the summaries of
 * those with a purchase on or before as_of, in the same order. Fed by
 * wk_clv_load_customer() (ids ascending) and then wk_clv_load_day() (rows
 * ascending by customer id then day; rows of customers outside the
 * population are skipped), closed by wk_clv_load_finish().
 */
typedef struct st_wk_clv_load_t {
    const wk_clv_job_params_t *p;
    wk_clv_customer_t *c;
    size_t n, cap;
    wk_clv_summary_t *s; /* s[c[i].fit] */
    size_t nfit;
    int32_t holdout_end_day; /* the last purchase day after as_of of a fitted customer; INT32_MIN: none */
    uint64_t rows, skipped;
    int64_t last_id; /* customer of the last row */
    /* the customer being read */
    size_t cur;
    int open;
    int32_t *days;
    int64_t *cents;
    size_t ndays, days_cap;
    int32_t last_holdout_day;
} wk_clv_load_t;

/* Allocates room for cap customers. 0 or ERR_INTERNAL (out of memory). p is borrowed. */
int wk_clv_load_init(wk_clv_load_t *l, const wk_clv_job_params_t *p, size_t cap);
/* Appends a customer; ids strictly ascending. 0 or ERR_INVALID (order, capacity). */
int wk_clv_load_customer(wk_clv_load_t *l, int64_t id);
/*
 * Feeds one purchase day of a customer: on or before as_of (calibration)
 * or after it, its summed amount in cents and its earliest order time.
 * 0; ERR_INVALID for rows out of order or an amount overflow; ERR_INTERNAL
 * when out of memory.
 */
int wk_clv_load_day(wk_clv_load_t *l, int64_t customer_id, int32_t day, int calibration, int64_t cents,
                    int64_t first_us);
/* Closes the last customer and applies the cohort. 0 or an error as wk_clv_load_day(). */
int wk_clv_load_finish(wk_clv_load_t *l);
void wk_clv_load_free(wk_clv_load_t *l);

/* The fitted models. gg_ok is 0 when no customer has a repeat purchase of positive value. */
typedef struct st_wk_clv_fit_t {
    wk_bgnbd_params_t bg;
    wk_clv_fit_info_t bg_info;
    wk_gg_params_t gg;
    wk_clv_fit_info_t gg_info;
    int gg_ok;
    size_t repeat_customers; /* fitted customers with x > 0 */
} wk_clv_fit_t;

/*
 * Fits BG/NBD on every summary and Gamma-Gamma on the repeat buyers.
 * Returns 0 (a fit that stopped just short of its convergence test with a
 * gradient norm below 1e-3 is kept, with converged = 0), or ERR_INVALID
 * with a sentence in err when there is nothing to fit or a fit failed.
 */
int wk_clv_job_fit(const wk_clv_load_t *l, double penalizer, wk_clv_fit_t *fit, char *err, size_t errlen);

/* One customer's results. value and clv are NaN when Gamma-Gamma gives no finite mean. */
typedef struct st_wk_clv_result_t {
    double p_alive, expected_purchases, value, clv;
    uint8_t lifecycle;
} wk_clv_result_t;

/* Scores customer c (fitted; s its summary). 0, or ERR_INTERNAL when a value cannot be computed. */
int wk_clv_job_score(const wk_clv_job_params_t *p, const wk_clv_fit_t *fit, const wk_clv_customer_t *c,
                     const wk_clv_summary_t *s, wk_clv_result_t *out);

/* Runs one clv run: 0 once the results are committed, WK_JOB_ESTOP, or a failure recorded with wk_job_fail(). */
int wk_clv_job_run(wk_job_ctx_t *ctx, const json_t *params);

/*
 * Checks params the same way the API does (common/runparams.c) and decodes
 * them; as_of must be present. On failure returns ERR_INVALID with a
 * sentence for the run's error in err. The strings stay borrowed from params.
 */
int wk_clv_job_parse_params(const json_t *params, wk_clv_job_params_t *out, char *err, size_t errlen);

#endif
