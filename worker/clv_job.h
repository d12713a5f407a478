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

#include <stdint.h>

#include <jansson.h>

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

/* Runs one clv run: 0 once the results are committed, WK_JOB_ESTOP, or a failure recorded with wk_job_fail(). */
int wk_clv_job_run(wk_job_ctx_t *ctx, const json_t *params);

/*
 * Checks params the same way the API does (common/runparams.c) and decodes
 * them; as_of must be present. On failure returns ERR_INVALID with a
 * sentence for the run's error in err. The strings stay borrowed from params.
 */
int wk_clv_job_parse_params(const json_t *params, wk_clv_job_params_t *out, char *err, size_t errlen);

#endif
