/*
 * worker/rfm_job.h - the analytics run kind "rfm": load, score, write.
 *
 * wk_rfm_job_run() runs on the job thread (worker/job.c) with the run's
 * complete params: it streams the population and the qualifying orders
 * with binary COPY into one wk_rfm_customer_t per customer, scores them
 * with wk_rfm_score() (worker/rfm.c) and writes results and statistics
 * through wk_job_write_results(). Memory is the three arrays wk_rfm_score()
 * needs (48 + 12 + 4 = 64 bytes per customer), whatever the number of
 * orders. The parsers and encoders are exposed for unit tests.
 */
#ifndef CLIENTELE_WORKER_RFM_JOB_H
#define CLIENTELE_WORKER_RFM_JOB_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "common/decimal.h"
#include "job.h"
#include "rfm.h"

/* The run's params, checked and decoded. */
typedef struct st_wk_rfm_job_params_t {
    int64_t as_of_us;        /* microseconds since 1970-01-01T00:00:00Z */
    int32_t lookback_days;   /* 0: no lookback (params null) */
    const char *tag;         /* borrowed from the params object; NULL: every customer */
    wk_rfm_params_t scoring; /* as_of in whole seconds (floor), days and shares */
} wk_rfm_job_params_t;

/*
 * Runs one rfm run: returns 0 once the results are committed, WK_JOB_ESTOP,
 * or a failure recorded with wk_job_fail(). params is borrowed.
 */
int wk_rfm_job_run(wk_job_ctx_t *ctx, const json_t *params);

/*
 * Checks params the same way the API does (common/runparams.c) and decodes
 * them. as_of must be present. On failure returns ERR_INVALID with a
 * sentence for the run's error in err ("as_of is not a valid timestamp ...").
 */
int wk_rfm_job_parse_params(const json_t *params, wk_rfm_job_params_t *out, char *err, size_t errlen);

/*
 * Reads the required as_of of a run's params (both kinds): microseconds and
 * whole seconds (floor) since the Unix epoch. On failure returns
 * ERR_INVALID with a sentence for the run's error in err.
 */
int wk_job_params_as_of(const json_t *params, int64_t *as_of_us, int64_t *as_of_secs, char *err, size_t errlen);

/*
 * The population of a run (both kinds), in the open read transaction:
 * customers not deleted, carrying tag when not NULL. Counts it into *count
 * (and reports it as the run's total), and sets *cond (unless NULL) to its SQL condition
 * (" AND tags @> ARRAY['...']::text[]" quoted on the job's connection, or
 * "") and *ids_sql to a binary COPY of its ids in ascending order, both in
 * the job's pool. Returns 0, WK_JOB_ESTOP or a recorded failure.
 */
int wk_job_population(wk_job_ctx_t *ctx, const char *tag, const char **cond, size_t *count, char **ids_sql);

/*
 * Formats microseconds since the Unix epoch as a PostgreSQL timestamptz
 * literal body, "2026-01-31 12:00:00.000000+00" (no quotes), into buf (at
 * least 40 bytes). Returns 0, or ERR_INVALID outside years 1 to 9999.
 */
int wk_rfm_job_format_ts(int64_t us, char *buf, size_t len);

/*
 * Encodes v, rounded to 2 fraction digits like dec_format(), as PostgreSQL's
 * binary numeric with dscale 2 into buf (at least 24 bytes); returns the
 * number of bytes written.
 */
size_t wk_rfm_job_numeric2(dec_t v, unsigned char *buf);

#endif
