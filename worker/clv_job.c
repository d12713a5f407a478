/*
 * worker/clv_job.c - the analytics run kind "clv": load, fit, score, write.
 *
 * Reading happens in one REPEATABLE READ READ ONLY transaction on the job's
 * connection A, so the population and the purchases come from one snapshot:
 *  1. count the population (customers not deleted, carrying the tag when
 *     given) and allocate the customer and summary arrays;
 *  2. COPY the population's ids (ORDER BY id) in binary;
 *  3. COPY the purchase days in binary: one row per customer, UTC date and
 *     side of as_of (on or before it: calibration; after it: holdout) with
 *     the day's summed total and earliest order time, sorted by customer
 *     and day. PostgreSQL does the grouping and the sort; the worker merges
 *     the rows with the sorted ids, keeps the calibration days of one
 *     customer at a time and summarises them with wk_clv_summarise() when
 *     the next customer starts. Memory: the customers, one summary per
 *     buyer and the days of the largest single customer.
 * Then wk_clv_job_fit() fits BG/NBD and Gamma-Gamma, wk_clv_job_score()
 * scores every customer, and wk_job_write_results() writes the rows (text
 * COPY straight into customer_clv_history, then the upsert of customer_clv
 * from this run's history rows: customers outside this run's population
 * keep their values), the statistics and the model in one transaction.
 *
 * Days are whole days since 1970-01-01 of the UTC date, so a purchase at
 * noon and as_of at 23:59:59 the same day are 0 days apart, and "T" is
 * counted to the date of as_of. Amounts are exact cents until the mean
 * repeat value zbar, the models' only money input, becomes a double.
 *
 * COPY takes no parameters, so its statements are built here, only from
 * values this file printed itself (as_of through wk_rfm_job_format_ts())
 * and the tag quoted by PQescapeLiteral() on the connection that runs the
 * statement (as in worker/rfm_job.c).
 */
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clv_job.h"
#include "common/err.h"
#include "common/jx.h"
#include "common/log.h"
#include "common/runparams.h"
#include "common/tz.h"
#include "pgcopy.h"
#include "rfm_job.h"

#define US_PER_SEC INT64_C(1000000)
#define US_PER_DAY (INT64_C(86400) * US_PER_SEC)
#define PROGRESS_EVERY 65536
#define RESULT_ROW_MAX 512
/* The largest money value written (numeric(20, 2) holds 18 integer digits). */
#define MONEY_MAX 1e15
/* A fit stopped short of its convergence test is still kept below this gradient norm. */
#define NEAR_CONVERGED 1e-3

static const char SQL_READ_BEGIN[] = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY";
/* The purchase days are sorted by PostgreSQL: give the sort room to stay in memory. */
static const char SQL_READ_MEMORY[] = "SET LOCAL work_mem = '256MB'";
static const char SQL_ORDERS_ESTIMATE[] =
    "SELECT greatest(reltuples, 0)::bigint FROM pg_class WHERE oid = 'orders'::regclass";

/* The rows go straight into the history (its primary key is its only index), the current values from there. */
static const char SQL_COPY_HISTORY[] =
    "COPY customer_clv_history (run_id, customer_id, x, t_x, t_cal, zbar, p_alive, expected_purchases,"
    " expected_avg_value, clv, lifecycle) FROM STDIN";
/* %lld: the run id; %d: the horizon, %s: the time unit ("day" or "week"), all from the decoded run. */
static const char SQL_UPSERT_CURRENT_FMT[] =
    "INSERT INTO customer_clv (customer_id, run_id, computed_at, horizon, time_unit, x, t_x, t_cal, zbar, p_alive,"
    " expected_purchases, expected_avg_value, clv, lifecycle)"
    " SELECT customer_id, run_id, now(), %d, '%s', x, t_x, t_cal, zbar, p_alive, expected_purchases,"
    " expected_avg_value, clv, lifecycle FROM customer_clv_history WHERE run_id = %lld"
    " ON CONFLICT (customer_id) DO UPDATE SET run_id = EXCLUDED.run_id, computed_at = EXCLUDED.computed_at,"
    " horizon = EXCLUDED.horizon, time_unit = EXCLUDED.time_unit, x = EXCLUDED.x, t_x = EXCLUDED.t_x,"
    " t_cal = EXCLUDED.t_cal, zbar = EXCLUDED.zbar, p_alive = EXCLUDED.p_alive,"
    " expected_purchases = EXCLUDED.expected_purchases, expected_avg_value = EXCLUDED.expected_avg_value,"
    " clv = EXCLUDED.clv, lifecycle = EXCLUDED.lifecycle";

static const char *const lifecycle_names[WK_CLV_LIFECYCLE__COUNT] = {"prospect", "new", "active", "at_risk", "churned"};

static const char *lifecycle_name(int lifecycle)
{
    return lifecycle >= 0 && lifecycle < WK_CLV_LIFECYCLE__COUNT ? lifecycle_names[lifecycle] : NULL;
}

/* --- params --------------------------------------------------------------------------- */

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

static int param_double(const json_t *complete, const char *name, double *out)
{
    const char *s = json_string_value(json_object_get(complete, name));
    char *end;
    if (s == NULL)
        return ERR_INVALID;
    *out = strtod(s, &end);
    return *end == '\0' && isfinite(*out) ? 0 : ERR_INVALID;
}

static int param_time(const json_t *params, const char *name, int64_t *out_us)
{
    const json_t *v = json_object_get(params, name);
    int64_t secs;
    int32_t micros;
    if (v == NULL || json_is_null(v))
        return 1;
    if (!json_is_string(v) || jx_parse_rfc3339(json_string_value(v), &secs, &micros) != 0)
        return ERR_INVALID;
    *out_us = secs * US_PER_SEC + micros;
    return 0;
}

int wk_clv_job_parse_params(const json_t *params, wk_clv_job_params_t *out, char *err, size_t errlen)
{
    int64_t secs;

    memset(out, 0, sizeof(*out));
    if (wk_job_params_as_of(params, &out->as_of_us, &secs, err, errlen) != 0)
        return ERR_INVALID;
    out->as_of_day = (int32_t)floor_div(secs, 86400);

    /* The rest is checked by the API's own rules, so both sides accept the same runs. */
    json_t *complete = runparams_complete_text("clv", params, secs, err, errlen);
    if (complete == NULL)
        return ERR_INVALID;

    const char *unit = json_string_value(json_object_get(complete, "time_unit"));
    int week = unit != NULL && strcmp(unit, "week") == 0;
    out->time_unit = week ? "week" : "day";
    out->time_unit_days = week ? 7 : 1;
    out->horizon = (int)json_integer_value(json_object_get(complete, "horizon"));
    out->new_days = (int32_t)json_integer_value(json_object_get(complete, "new_days"));
    const json_t *tag = json_object_get(params, "tag");
    out->tag = json_is_string(tag) ? json_string_value(tag) : NULL;
    int bad = param_double(complete, "discount_rate", &out->discount_rate) != 0 ||
              param_double(complete, "alive_active", &out->alive_active) != 0 ||
              param_double(complete, "alive_at_risk", &out->alive_at_risk) != 0 ||
              param_double(complete, "penalizer", &out->penalizer) != 0;
    json_decref(complete);
    if (bad) {
        snprintf(err, errlen, "discount_rate, alive_active, alive_at_risk and penalizer must be decimal strings");
        return ERR_INVALID;
    }
    out->first_after_us = INT64_MIN;
    out->first_before_us = INT64_MAX;
    if (param_time(params, "first_purchase_after", &out->first_after_us) < 0 ||
        param_time(params, "first_purchase_before", &out->first_before_us) < 0) {
        snprintf(err, errlen, "first_purchase_after and first_purchase_before must be RFC 3339 timestamps");
        return ERR_INVALID;
    }
    return 0;
}

/* --- the load ----------------------------------------------------------------------------- */

int wk_clv_load_init(wk_clv_load_t *l, const wk_clv_job_params_t *p, size_t cap)
{
    memset(l, 0, sizeof(*l));
    l->p = p;
    l->cap = cap;
    l->holdout_end_day = INT32_MIN;
    l->last_holdout_day = INT32_MIN;
    if (cap > 0) {
        l->c = malloc(cap * sizeof(*l->c));
        l->s = malloc(cap * sizeof(*l->s));
        if (l->c == NULL || l->s == NULL) {
            wk_clv_load_free(l);
            return ERR_INTERNAL;
        }
    }
    return 0;
}

void wk_clv_load_free(wk_clv_load_t *l)
{
    free(l->c);
    free(l->s);
    free(l->days);
    free(l->cents);
    l->c = NULL;
    l->s = NULL;
    l->days = NULL;
    l->cents = NULL;
    l->n = l->cap = l->nfit = l->ndays = l->days_cap = 0;
}

int wk_clv_load_customer(wk_clv_load_t *l, int64_t id)
{
    if (l->n == l->cap || (l->n > 0 && id <= l->c[l->n - 1].id) || l->rows > 0)
        return ERR_INVALID;
    wk_clv_customer_t *c = &l->c[l->n++];
    memset(c, 0, sizeof(*c));
    c->id = id;
    c->first_us = INT64_MAX;
    c->fit = WK_CLV_NOT_FITTED;
    return 0;
}

static int in_cohort(const wk_clv_job_params_t *p, const wk_clv_customer_t *c)
{
    if (p->first_after_us == INT64_MIN && p->first_before_us == INT64_MAX)
        return 1;
    return c->first_us != INT64_MAX && c->first_us > p->first_after_us && c->first_us < p->first_before_us;
}

/* Summarises the open customer from its calibration days and applies the cohort. */
static int close_customer(wk_clv_load_t *l)
{
    wk_clv_customer_t *c = &l->c[l->cur];
    int r;
    l->open = 0;
    if (!in_cohort(l->p, c)) {
        c->excluded = 1;
        return 0;
    }
    if (l->ndays > 0) {
        wk_clv_summary_t *s = &l->s[l->nfit];
        r = wk_clv_summarise(l->days, l->cents, l->ndays, l->p->as_of_day, (double)l->p->time_unit_days, s);
        if (r != 0)
            return r;
        c->first_day = l->days[0];
        c->fit = (uint32_t)l->nfit++;
        if (c->holdout_days > 0 && l->last_holdout_day > l->holdout_end_day)
            l->holdout_end_day = l->last_holdout_day;
    }
    return 0;
}

int wk_clv_load_day(wk_clv_load_t *l, int64_t customer_id, int32_t day, int calibration, int64_t cents,
                    int64_t first_us)
{
    int r;
    if (l->rows++ > 0 && customer_id < l->last_id)
        return ERR_INVALID;
    l->last_id = customer_id;
    if (l->open) {
        wk_clv_customer_t *c = &l->c[l->cur];
        if (customer_id < c->id)
            return ERR_INVALID;
        if (customer_id > c->id) {
            if ((r = close_customer(l)) != 0)
                return r;
            l->cur++;
        }
    }
    while (l->cur < l->n && l->c[l->cur].id < customer_id)
        l->cur++;
    if (l->cur == l->n || l->c[l->cur].id != customer_id) {
        l->skipped++; /* not in the population */
        return 0;
    }
    wk_clv_customer_t *c = &l->c[l->cur];
    if (!l->open) {
        l->open = 1;
        l->ndays = 0;
        l->last_holdout_day = INT32_MIN;
    }
    if (first_us < c->first_us)
        c->first_us = first_us;
    if (!calibration) {
        if (day < l->last_holdout_day)
            return ERR_INVALID;
        if (day != l->last_holdout_day)
            c->holdout_days++;
        l->last_holdout_day = day;
        return 0;
    }
    if (l->ndays > 0 && day < l->days[l->ndays - 1])
        return ERR_INVALID;
    if (l->ndays == l->days_cap) {
        size_t cap = l->days_cap == 0 ? 64 : l->days_cap * 2;
        int32_t *days = realloc(l->days, cap * sizeof(*days));
        if (days == NULL)
            return ERR_INTERNAL;
        l->days = days;
        int64_t *amounts = realloc(l->cents, cap * sizeof(*amounts));
        if (amounts == NULL)
            return ERR_INTERNAL;
        l->cents = amounts;
        l->days_cap = cap;
    }
    l->days[l->ndays] = day;
    l->cents[l->ndays] = cents;
    l->ndays++;
    return 0;
}

int wk_clv_load_finish(wk_clv_load_t *l)
{
    int r;
    if (l->open && (r = close_customer(l)) != 0)
        return r;
    /* Customers without any purchase have no first purchase: outside any cohort. */
    for (size_t i = 0; i < l->n; i++)
        if (l->c[i].first_us == INT64_MAX && !in_cohort(l->p, &l->c[i]))
            l->c[i].excluded = 1;
    free(l->days);
    free(l->cents);
    l->days = NULL;
    l->cents = NULL;
    l->ndays = l->days_cap = 0;
    return 0;
}

/* --- fit and score ------------------------------------------------------------------------ */

static int fit_ok(int rc, const wk_clv_fit_info_t *info)
{
    return rc == 0 || (rc == ERR_INTERNAL && info->grad_norm >= 0 && info->grad_norm < NEAR_CONVERGED);
}

int wk_clv_job_fit(const wk_clv_load_t *l, double penalizer, wk_clv_fit_t *fit, char *err, size_t errlen)
{
    memset(fit, 0, sizeof(*fit));
    if (l->nfit == 0) {
        snprintf(err, errlen,
                 "no customer of the population has a completed order on or before as_of: there is "
                 "nothing to fit");
        return ERR_INVALID;
    }
    for (size_t i = 0; i < l->nfit; i++)
        fit->repeat_customers += l->s[i].x > 0;
    if (fit->repeat_customers == 0) {
        snprintf(err, errlen,
                 "none of the %zu customers with a completed order on or before as_of bought again on a later day; "
                 "the model needs repeat purchases (choose a later as_of or a larger population)",
                 l->nfit);
        return ERR_INVALID;
    }
    int rc = wk_bgnbd_fit_rows(l->s, l->nfit, penalizer, &fit->bg, &fit->bg_info);
    if (!fit_ok(rc, &fit->bg_info)) {
        snprintf(err, errlen,
                 "the BG/NBD model did not converge on %zu customers (%d iterations, gradient norm %.3g); "
                 "a small penalizer such as \"0.001\" usually helps",
                 l->nfit, fit->bg_info.iterations, fit->bg_info.grad_norm);
        return ERR_INVALID;
    }
    rc = wk_gg_fit_rows(l->s, l->nfit, penalizer, &fit->gg, &fit->gg_info);
    if (rc == ERR_NOT_FOUND)
        return 0; /* no repeat purchase of positive value: no spend model, no values */
    if (!fit_ok(rc, &fit->gg_info)) {
        snprintf(err, errlen,
                 "the Gamma-Gamma spend model did not converge on %zu repeat customers (%d iterations, gradient "
                 "norm %.3g); a small penalizer such as \"0.001\" usually helps",
                 (size_t)fit->gg_info.customers, fit->gg_info.iterations, fit->gg_info.grad_norm);
        return ERR_INVALID;
    }
    fit->gg_ok = 1;
    return 0;
}

int wk_clv_job_score(const wk_clv_job_params_t *p, const wk_clv_fit_t *fit, const wk_clv_customer_t *c,
                     const wk_clv_summary_t *s, wk_clv_result_t *out)
{
    int r;
    out->value = out->clv = NAN;
    if ((r = wk_bgnbd_p_alive(&fit->bg, s->x, s->t_x, s->T, &out->p_alive)) != 0 ||
        (r = wk_bgnbd_expected_conditional(&fit->bg, s->x, s->t_x, s->T, p->horizon, &out->expected_purchases)) != 0)
        return ERR_INTERNAL;
    if (fit->gg_ok) {
        /* A repeat spend of zero or less (refunds) says nothing about value: use the population's mean. */
        double x = s->zbar > 0 ? s->x : 0, zbar = s->zbar > 0 ? s->zbar : 0;
        if (wk_gg_expected_value(&fit->gg, x, zbar, &out->value) != 0)
            out->value = NAN; /* q <= 1: the mean spend is not finite */
        if (isfinite(out->value)) {
            if (p->discount_rate == 0)
                out->clv = out->expected_purchases * out->value;
            else if (wk_clv_lifetime_value(&fit->bg, s->x, s->t_x, s->T, out->value, p->horizon, p->discount_rate,
                                           &out->clv) != 0)
                return ERR_INTERNAL;
        }
    }
    if ((int64_t)p->as_of_day - c->first_day < p->new_days)
        out->lifecycle = WK_CLV_NEW;
    else if (out->p_alive >= p->alive_active)
        out->lifecycle = WK_CLV_ACTIVE;
    else if (out->p_alive >= p->alive_at_risk)
        out->lifecycle = WK_CLV_AT_RISK;
    else
        out->lifecycle = WK_CLV_CHURNED;
    return 0;
}

/* --- loading from PostgreSQL --------------------------------------------------------------- */

typedef struct st_reader_t {
    wk_job_ctx_t *ctx;
    wk_clv_load_t *l;
    wk_pgcopy_reader_t copy;
    double expected_rows;
} reader_t;

static int on_customer(void *arg, const char *data, size_t len)
{
    reader_t *rd = arg;
    const unsigned char *f[1];
    int32_t flen[1];
    int r = wk_pgcopy_next(&rd->copy, data, len, 1, f, flen);
    if (r == 0)
        return 0;
    if (r < 0 || flen[0] != 8)
        return wk_job_fail(rd->ctx, "internal error: unexpected COPY data while loading customers");
    if (wk_clv_load_customer(rd->l, (int64_t)wk_pgcopy_rd64(f[0])) != 0)
        return wk_job_fail(rd->ctx, "internal error: customers did not arrive once each in ascending id order");
    return 0;
}

/* A numeric with 2 or fewer fraction digits (orders.total is numeric(14, 2)) to cents. */
static int numeric_cents(const unsigned char *buf, int32_t len, int64_t *out)
{
    dec_t d;
    if (buf == NULL) {
        *out = 0;
        return 0;
    }
    if (dec_from_pg_binary(buf, (size_t)len, &d) != 0)
        return ERR_INVALID;
    __int128 units = dec_to_units(d), cents = units / 10000, rest = units % 10000;
    if (rest >= 5000)
        cents++;
    else if (rest <= -5000)
        cents--;
    if (cents > INT64_MAX / 4 || cents < -(INT64_MAX / 4))
        return ERR_INVALID;
    *out = (int64_t)cents;
    return 0;
}

static int on_day(void *arg, const char *data, size_t len)
{
    reader_t *rd = arg;
    const unsigned char *f[5];
    int32_t flen[5];
    int r = wk_pgcopy_next(&rd->copy, data, len, 5, f, flen);
    if (r == 0)
        return 0;
    if (r < 0 || flen[0] != 8 || flen[1] != 4 || flen[2] != 1 || flen[4] != 8)
        return wk_job_fail(rd->ctx, "internal error: unexpected COPY data while loading purchases");
    if ((rd->l->rows + 1) % PROGRESS_EVERY == 0) {
        double frac = rd->expected_rows > (double)rd->l->rows ? (double)rd->l->rows / rd->expected_rows : 1.0;
        if ((r = wk_job_progress(rd->ctx, 0.05 + 0.65 * frac, 0, -1, 0)) != 0)
            return r;
    }
    int64_t id = (int64_t)wk_pgcopy_rd64(f[0]);
    int64_t cents;
    if (numeric_cents(f[3], flen[3], &cents) != 0)
        return wk_job_fail(rd->ctx, "the orders of customer %" PRId64 " have totals that cannot be added up", id);
    int32_t day = (int32_t)wk_pgcopy_rd32(f[1]);
    int64_t first_us = (int64_t)wk_pgcopy_rd64(f[4]) + WK_PG_EPOCH_SECS * US_PER_SEC;
    r = wk_clv_load_day(rd->l, id, day, f[2][0] != 0, cents, first_us);
    if (r == ERR_INTERNAL)
        return wk_job_fail(rd->ctx, "the worker cannot allocate memory for the purchases of customer %" PRId64, id);
    if (r != 0)
        return wk_job_fail(rd->ctx, "internal error: the purchases of customer %" PRId64 " did not arrive in order",
                           id);
    return 0;
}

/* Builds the statements from the checked params (see the file comment on why this is safe). */
/* tag_cond: the population's condition from wk_job_population(). */
static int build_sql(wk_job_ctx_t *ctx, const wk_clv_job_params_t *p, const char *tag_cond, char **days_sql)
{
    char in_pop[384] = "", as_of[40];
    if (*tag_cond != '\0' &&
        snprintf(in_pop, sizeof(in_pop), " AND o.customer_id IN (SELECT id FROM customers WHERE deleted_at IS NULL%s)",
                 tag_cond) >= (int)sizeof(in_pop))
        return wk_job_fail(ctx, "tag is too long");
    if (wk_rfm_job_format_ts(p->as_of_us, as_of, sizeof(as_of)) != 0)
        return wk_job_fail(ctx, "as_of is out of range (years 0001 to 9999)");

    static const char days_fmt[] =
        "COPY (SELECT o.customer_id, (o.ordered_at AT TIME ZONE 'UTC')::date - DATE '1970-01-01',"
        " o.ordered_at <= '%s'::timestamptz, sum(o.total), min(o.ordered_at)"
        " FROM orders o WHERE o.status = 'completed' AND o.deleted_at IS NULL%s"
        " GROUP BY 1, 2, 3 ORDER BY 1, 2) TO STDOUT (FORMAT binary)";
    size_t len = sizeof(days_fmt) + strlen(as_of) + strlen(in_pop);
    *days_sql = h2o_mem_alloc_pool(wk_job_pool(ctx), len);
    snprintf(*days_sql, len, days_fmt, as_of, in_pop);
    return 0;
}

static int load(wk_job_ctx_t *ctx, const wk_clv_job_params_t *p, wk_clv_load_t *l)
{
    char *customers_sql = NULL, *days_sql = NULL;
    const char *tag_cond;
    size_t count;
    reader_t rd = {.ctx = ctx, .l = l};
    PGresult *res;
    int r;
    int64_t t0 = wk_job_now_ms();

    if ((r = wk_job_exec(ctx, SQL_READ_BEGIN, 0, NULL, "starting to read", &res)) != 0)
        return r;
    PQclear(res);
    if ((r = wk_job_exec(ctx, SQL_READ_MEMORY, 0, NULL, "starting to read", &res)) != 0)
        return r;
    PQclear(res);
    if ((r = wk_job_population(ctx, p->tag, &tag_cond, &count, &customers_sql)) != 0 ||
        (r = build_sql(ctx, p, tag_cond, &days_sql)) != 0)
        return r;
    if (wk_clv_load_init(l, p, count) != 0)
        return wk_job_fail(ctx, "the worker cannot allocate memory for %zu customers", count);
    if ((r = wk_job_copy_out(ctx, customers_sql, on_customer, &rd, "loading customers")) != 0)
        return r;
    if (l->n != l->cap)
        return wk_job_fail(ctx, "internal error: %zu customers arrived, %zu were counted", l->n, l->cap);
    int64_t t1 = wk_job_now_ms();
    if ((r = wk_job_progress(ctx, 0.05, 0, -1, 0)) != 0)
        return r;
    if (l->n > 0) {
        if ((r = wk_job_exec(ctx, SQL_ORDERS_ESTIMATE, 0, NULL, "estimating orders", &res)) != 0)
            return r;
        rd.expected_rows = PQntuples(res) == 1 ? atof(PQgetvalue(res, 0, 0)) : 0;
        PQclear(res);
        rd.copy = (wk_pgcopy_reader_t){0};
        if ((r = wk_job_copy_out(ctx, days_sql, on_day, &rd, "loading purchases")) != 0)
            return r;
    }
    if (wk_clv_load_finish(l) != 0)
        return wk_job_fail(ctx, "internal error: the last customer's purchases cannot be summarised");
    if ((r = wk_job_exec(ctx, "COMMIT", 0, NULL, "finishing the reads", &res)) != 0)
        return r;
    PQclear(res);
    log_msg(LOG_INFO,
            "run %" PRId64 ": %zu customers loaded in %" PRId64 " ms, %" PRIu64 " purchase days (%" PRIu64
            " of other customers) in %" PRId64 " ms, %zu customers to fit",
            wk_job_run_id(ctx), l->n, t1 - t0, l->rows, l->skipped, wk_job_now_ms() - t1, l->nfit);
    return 0;
}

/* --- results ---------------------------------------------------------------------------- */

typedef struct st_produce_t {
    const wk_clv_load_t *l;
    const wk_clv_result_t *res; /* res[c.fit] */
    int64_t run_id;             /* the first column of every row */
    size_t next;
} produce_t;

static int put_double(char *p, size_t cap, double v)
{
    return isfinite(v) ? snprintf(p, cap, "%.17g", v) : snprintf(p, cap, "\\N");
}

/*
 * Money to 2 decimals, half away from zero as PostgreSQL rounds numerics.
 * The values are ratios of cents (a sum over a count) whose decimal half
 * may sit an ulp or two below .5 in binary: nudge by two ulps first, so
 * 4469 cents over 2 days prints 22.35, not 22.34.
 */
static int put_money(char *p, size_t cap, double v)
{
    if (!isfinite(v))
        return snprintf(p, cap, "\\N");
    double c = v * 100;
    c += copysign(fabs(c) * 2 * DBL_EPSILON, c);
    long long cents = llround(c), mag = cents < 0 ? -cents : cents;
    return snprintf(p, cap, "%s%lld.%02lld", cents < 0 ? "-" : "", mag / 100, mag % 100);
}

static size_t produce_results(void *arg, char *buf, size_t cap)
{
    produce_t *pr = arg;
    const wk_clv_load_t *l = pr->l;
    size_t off = 0;
    while (pr->next < l->n && cap - off >= RESULT_ROW_MAX) {
        const wk_clv_customer_t *c = &l->c[pr->next++];
        char *p = buf + off, *start = p;
        size_t room = cap - off;
        if (c->excluded)
            continue;
        p += snprintf(p, room, "%" PRId64 "\t%" PRId64 "\t", pr->run_id, c->id);
        if (c->fit == WK_CLV_NOT_FITTED) {
            p += snprintf(p, room - (size_t)(p - start), "\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\tprospect\n");
        } else {
            const wk_clv_summary_t *s = &l->s[c->fit];
            const wk_clv_result_t *r = &pr->res[c->fit];
            p += snprintf(p, room - (size_t)(p - start), "%.0f\t", s->x);
            p += put_double(p, room - (size_t)(p - start), s->t_x);
            *p++ = '\t';
            p += put_double(p, room - (size_t)(p - start), s->T);
            *p++ = '\t';
            p += put_money(p, room - (size_t)(p - start), s->zbar);
            *p++ = '\t';
            p += put_double(p, room - (size_t)(p - start), r->p_alive);
            *p++ = '\t';
            p += put_double(p, room - (size_t)(p - start), r->expected_purchases);
            *p++ = '\t';
            p += put_money(p, room - (size_t)(p - start), r->value);
            *p++ = '\t';
            p += put_money(p, room - (size_t)(p - start), r->clv);
            p += snprintf(p, room - (size_t)(p - start), "\t%s\n", lifecycle_name(r->lifecycle));
        }
        off += (size_t)(p - start);
    }
    return off;
}

static json_t *fit_info_json(const wk_clv_fit_info_t *info, json_t *o)
{
    json_object_set_new(o, "log_likelihood", json_real(info->log_likelihood));
    json_object_set_new(o, "iterations", json_integer(info->iterations));
    json_object_set_new(o, "grad_norm", json_real(info->grad_norm));
    json_object_set_new(o, "converged", json_boolean(info->converged));
    json_object_set_new(o, "customers", json_integer((json_int_t)info->customers));
    return o;
}

static json_t *make_model(const wk_clv_load_t *l, const wk_clv_fit_t *fit)
{
    json_t *bg =
        json_pack("{s:f, s:f, s:f, s:f}", "r", fit->bg.r, "alpha", fit->bg.alpha, "a", fit->bg.a, "b", fit->bg.b);
    json_t *gg =
        fit->gg_ok ? json_pack("{s:f, s:f, s:f}", "p", fit->gg.p, "q", fit->gg.q, "gamma", fit->gg.gamma) : json_null();
    fit_info_json(&fit->bg_info, bg);
    if (fit->gg_ok)
        fit_info_json(&fit->gg_info, gg);
    json_t *m = json_object();
    json_object_set_new(m, "bgnbd", bg);
    json_object_set_new(m, "gamma_gamma", gg);
    json_object_set_new(m, "customers_fitted", json_integer((json_int_t)l->nfit));
    json_object_set_new(m, "repeat_customers", json_integer((json_int_t)fit->repeat_customers));
    json_object_set_new(m, "converged",
                        json_boolean(fit->bg_info.converged && (!fit->gg_ok || fit->gg_info.converged)));
    return m;
}

static void format_day(int32_t day, char *buf, size_t len)
{
    tz_civil_t civ;
    if (tz_civil_from_seconds((int64_t)day * 86400, &civ) == 0)
        snprintf(buf, len, "%04" PRId64 "-%02d-%02d", civ.year, civ.month, civ.day);
    else
        snprintf(buf, len, "?");
}

/* Scores everyone into res (indexed like the summaries) and makes the statistics. */
static int score_all(wk_job_ctx_t *ctx, const wk_clv_job_params_t *p, const wk_clv_load_t *l, const wk_clv_fit_t *fit,
                     wk_clv_result_t *res, json_t **stats)
{
    size_t lifecycles[WK_CLV_LIFECYCLE__COUNT] = {0}, written = 0, excluded = 0;
    double expected = 0, value = 0, predicted = 0, duration = 0;
    uint64_t actual = 0;
    int calibrate = l->holdout_end_day != INT32_MIN;
    int r;

    if (calibrate)
        duration = (double)((int64_t)l->holdout_end_day - p->as_of_day) / p->time_unit_days;
    for (size_t i = 0; i < l->n; i++) {
        const wk_clv_customer_t *c = &l->c[i];
        if (c->excluded) {
            excluded++;
            continue;
        }
        written++;
        if (c->fit == WK_CLV_NOT_FITTED) {
            lifecycles[WK_CLV_PROSPECT]++;
            continue;
        }
        const wk_clv_summary_t *s = &l->s[c->fit];
        wk_clv_result_t *out = &res[c->fit];
        if (wk_clv_job_score(p, fit, c, s, out) != 0)
            return wk_job_fail(ctx,
                               "the expected purchases of customer %" PRId64 " (x = %.0f, t_x = %.4g, T = %.4g) cannot "
                               "be computed over a horizon of %d; try a shorter horizon",
                               c->id, s->x, s->t_x, s->T, p->horizon);
        if (isfinite(out->value) && (out->value > MONEY_MAX || out->clv > MONEY_MAX || s->zbar > MONEY_MAX))
            return wk_job_fail(ctx, "the values of customer %" PRId64 " are too large to be stored", c->id);
        lifecycles[out->lifecycle]++;
        expected += out->expected_purchases;
        if (isfinite(out->clv))
            value += out->clv;
        if (calibrate) {
            double e;
            if (wk_bgnbd_expected_conditional(&fit->bg, s->x, s->t_x, s->T, duration, &e) == 0)
                predicted += e;
            actual += c->holdout_days;
        }
        if ((c->fit + 1) % PROGRESS_EVERY == 0 &&
            (r = wk_job_progress(ctx, 0.75 + 0.15 * (double)c->fit / (double)l->nfit, (int64_t)i, -1, 0)) != 0)
            return r;
    }

    json_t *lc = json_object();
    for (int i = 0; i < WK_CLV_LIFECYCLE__COUNT; i++)
        json_object_set_new(lc, lifecycle_name(i), json_integer((json_int_t)lifecycles[i]));
    char money[64], end[16];
    put_money(money, sizeof(money), value);
    json_t *o = json_object();
    json_object_set_new(o, "customers", json_integer((json_int_t)written));
    json_object_set_new(o, "fitted", json_integer((json_int_t)l->nfit));
    json_object_set_new(o, "prospects", json_integer((json_int_t)lifecycles[WK_CLV_PROSPECT]));
    json_object_set_new(o, "excluded_by_cohort", json_integer((json_int_t)excluded));
    json_object_set_new(o, "lifecycles", lc);
    json_object_set_new(o, "expected_purchases", json_real(expected));
    json_object_set_new(o, "clv", json_string(money));
    if (calibrate) {
        format_day(l->holdout_end_day, end, sizeof(end));
        json_object_set_new(o, "calibration",
                            json_pack("{s:s, s:f, s:f, s:I}", "period_end", end, "duration", duration, "predicted",
                                      predicted, "actual", (json_int_t)actual));
    } else {
        json_object_set_new(o, "calibration", json_null());
    }
    *stats = o;
    return 0;
}

/* --- the run ---------------------------------------------------------------------------------- */

int wk_clv_job_run(wk_job_ctx_t *ctx, const json_t *params)
{
    wk_clv_job_params_t p;
    wk_clv_load_t l = {0};
    wk_clv_fit_t fit;
    wk_clv_result_t *res = NULL;
    json_t *stats = NULL, *model = NULL;
    char err[512];
    int r;

    if (wk_clv_job_parse_params(params, &p, err, sizeof(err)) != 0) {
        r = wk_job_fail(ctx, "%s", err);
        goto Exit;
    }
    if ((r = load(ctx, &p, &l)) != 0)
        goto Exit;
    if ((r = wk_job_progress(ctx, 0.7, 0, -1, 1)) != 0)
        goto Exit;

    int64_t t0 = wk_job_now_ms();
    if (wk_clv_job_fit(&l, p.penalizer, &fit, err, sizeof(err)) != 0) {
        r = wk_job_fail(ctx, "%s", err);
        goto Exit;
    }
    log_msg(LOG_INFO,
            "run %" PRId64 ": fitted BG/NBD on %zu customers (%zu distinct rows, %d iterations) and Gamma-Gamma on"
            " %.0f in %" PRId64 " ms: r=%.6g alpha=%.6g a=%.6g b=%.6g LL=%.4f p=%.6g q=%.6g gamma=%.6g",
            wk_job_run_id(ctx), l.nfit, fit.bg_info.unique_rows, fit.bg_info.iterations, fit.gg_info.customers,
            wk_job_now_ms() - t0, fit.bg.r, fit.bg.alpha, fit.bg.a, fit.bg.b, fit.bg_info.log_likelihood, fit.gg.p,
            fit.gg.q, fit.gg.gamma);
    if ((r = wk_job_progress(ctx, 0.75, 0, -1, 1)) != 0)
        goto Exit;

    if ((res = malloc((l.nfit > 0 ? l.nfit : 1) * sizeof(*res))) == NULL) {
        r = wk_job_fail(ctx, "the worker cannot allocate memory for %zu results", l.nfit);
        goto Exit;
    }
    int64_t t1 = wk_job_now_ms();
    if ((r = score_all(ctx, &p, &l, &fit, res, &stats)) != 0)
        goto Exit;
    log_msg(LOG_INFO, "run %" PRId64 ": scored %zu customers in %" PRId64 " ms", wk_job_run_id(ctx), l.nfit,
            wk_job_now_ms() - t1);
    if ((r = wk_job_progress(ctx, 0.9, (int64_t)l.n, -1, 1)) != 0)
        goto Exit;

    model = make_model(&l, &fit);
    /* The run's constants go into the statement as printed integers and one of two fixed words. */
    size_t len = sizeof(SQL_UPSERT_CURRENT_FMT) + 48;
    char *upsert = h2o_mem_alloc_pool(wk_job_pool(ctx), len);
    snprintf(upsert, len, SQL_UPSERT_CURRENT_FMT, p.horizon, p.time_unit_days == 7 ? "week" : "day",
             (long long)wk_job_run_id(ctx));
    produce_t pr = {.l = &l, .res = res, .run_id = wk_job_run_id(ctx)};
    wk_job_step_t steps[] = {
        {.sql = SQL_COPY_HISTORY, .produce = produce_results, .arg = &pr}, {.sql = upsert}, {.sql = NULL}};
    wk_job_results_t out = {
        .steps = steps,
        .customers = json_integer_value(json_object_get(stats, "customers")),
        .stats = stats,
        .model = model,
    };
    r = wk_job_write_results(ctx, &out);

Exit:
    if (stats != NULL)
        json_decref(stats);
    if (model != NULL)
        json_decref(model);
    free(res);
    wk_clv_load_free(&l);
    return r;
}
