/*
 * tests/unit/worker/clv_job_test.c - unit tests for worker/clv_job.c: params, the load, fit and score.
 *
 * The CDNOW sample ($CLIENTELE_SHARED_DIR/data/cdnow, default ../shared;
 * never copied into the repository) goes through the run's own path: its
 * transactions are grouped into purchase days the way the run's COPY
 * statement groups them (customer, UTC date, side of as_of; amounts summed),
 * fed to wk_clv_load_day(), fitted by wk_clv_job_fit() and scored by
 * wk_clv_job_score(); the results must match the published numbers.
 */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/tz.h"
#include "worker/clv_job.c"

#define CDNOW_CUSTOMERS 2357
#define US_DAY (INT64_C(86400) * 1000000)

static json_t *params_of(const char *text)
{
    json_error_t e;
    json_t *j = json_loads(text, 0, &e);
    ck_assert_msg(j != NULL, "bad JSON in test: %s", e.text);
    return j;
}

/* --- params ---------------------------------------------------------------------------------- */

START_TEST(params_defaults)
{
    json_t *j = params_of("{\"as_of\":\"1997-09-30T23:59:59Z\"}");
    wk_clv_job_params_t p;
    char err[256];
    ck_assert_int_eq(wk_clv_job_parse_params(j, &p, err, sizeof(err)), 0);
    ck_assert_int_eq(p.as_of_day, (int32_t)tz_days_from_civil(1997, 9, 30));
    ck_assert_int_eq(p.time_unit_days, 7);
    ck_assert_str_eq(p.time_unit, "week");
    ck_assert_int_eq(p.horizon, 52);
    ck_assert_int_eq(p.new_days, 30);
    ck_assert(p.discount_rate == 0 && p.penalizer == 0);
    ck_assert(fabs(p.alive_active - 0.7) < 1e-12 && fabs(p.alive_at_risk - 0.3) < 1e-12);
    ck_assert_ptr_null(p.tag);
    ck_assert(p.first_after_us == INT64_MIN && p.first_before_us == INT64_MAX);
    json_decref(j);
}
END_TEST

START_TEST(params_all)
{
    json_t *j = params_of("{\"as_of\":\"2026-01-01T00:00:00Z\",\"time_unit\":\"day\",\"horizon\":90,"
                          "\"discount_rate\":\"0.01\",\"alive_active\":\"0.8\",\"alive_at_risk\":\"0.2\","
                          "\"penalizer\":\"0.001\",\"tag\":\"vip\",\"new_days\":14,"
                          "\"first_purchase_after\":\"2025-01-01T00:00:00Z\","
                          "\"first_purchase_before\":\"2025-04-01T00:00:00Z\"}");
    wk_clv_job_params_t p;
    char err[256];
    ck_assert_int_eq(wk_clv_job_parse_params(j, &p, err, sizeof(err)), 0);
    ck_assert_int_eq(p.time_unit_days, 1);
    ck_assert_int_eq(p.horizon, 90);
    ck_assert_int_eq(p.new_days, 14);
    ck_assert(fabs(p.discount_rate - 0.01) < 1e-12 && fabs(p.penalizer - 0.001) < 1e-12);
    ck_assert_str_eq(p.tag, "vip");
    ck_assert(p.first_after_us == (int64_t)tz_days_from_civil(2025, 1, 1) * US_DAY);
    ck_assert(p.first_before_us == (int64_t)tz_days_from_civil(2025, 4, 1) * US_DAY);
    json_decref(j);
}
END_TEST

/* A bad param gives a sentence naming it, as the run's error. */
START_TEST(params_rejected)
{
    static const char *const cases[][2] = {
        {"{}", "as_of is missing"},
        {"{\"as_of\":\"yesterday\"}", "as_of is not a valid timestamp"},
        {"{\"as_of\":\"2026-01-01T00:00:00Z\",\"time_unit\":\"month\"}", "time_unit"},
        {"{\"as_of\":\"2026-01-01T00:00:00Z\",\"horizon\":0}", "horizon"},
        {"{\"as_of\":\"2026-01-01T00:00:00Z\",\"alive_active\":\"0.2\",\"alive_at_risk\":\"0.5\"}", "alive_at_risk"},
        {"{\"as_of\":\"2026-01-01T00:00:00Z\",\"lookback_days\":3}", "lookback_days"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *j = params_of(cases[i][0]);
        wk_clv_job_params_t p;
        char err[256];
        ck_assert_int_eq(wk_clv_job_parse_params(j, &p, err, sizeof(err)), ERR_INVALID);
        ck_assert_msg(strstr(err, cases[i][1]) != NULL, "case %zu: \"%s\" lacks \"%s\"", i, err, cases[i][1]);
        json_decref(j);
    }
}
END_TEST

/* --- the load -------------------------------------------------------------------------------- */

static wk_clv_job_params_t week_params(int32_t as_of_day)
{
    wk_clv_job_params_t p = {
        .as_of_us = ((int64_t)as_of_day + 1) * US_DAY - 1000000,
        .as_of_day = as_of_day,
        .time_unit_days = 7,
        .time_unit = "week",
        .horizon = 39,
        .alive_active = 0.7,
        .alive_at_risk = 0.3,
        .new_days = 30,
        .first_after_us = INT64_MIN,
        .first_before_us = INT64_MAX,
    };
    return p;
}

/* Customers without rows are prospects; rows of customers outside the population are skipped. */
START_TEST(load_merges_population)
{
    wk_clv_job_params_t p = week_params(100);
    wk_clv_load_t l;
    ck_assert_int_eq(wk_clv_load_init(&l, &p, 3), 0);
    ck_assert_int_eq(wk_clv_load_customer(&l, 10), 0);
    ck_assert_int_eq(wk_clv_load_customer(&l, 20), 0);
    ck_assert_int_eq(wk_clv_load_customer(&l, 30), 0);
    ck_assert_int_eq(wk_clv_load_customer(&l, 40), ERR_INVALID); /* over capacity */
    ck_assert_int_eq(wk_clv_load_day(&l, 5, 50, 1, 100, 0), 0);  /* not in the population */
    ck_assert_int_eq(wk_clv_load_day(&l, 20, 30, 1, 1000, 30 * US_DAY), 0);
    ck_assert_int_eq(wk_clv_load_day(&l, 20, 44, 1, 2000, 44 * US_DAY), 0);
    ck_assert_int_eq(wk_clv_load_day(&l, 20, 58, 1, 4000, 58 * US_DAY), 0);
    ck_assert_int_eq(wk_clv_load_day(&l, 20, 120, 0, 500, 120 * US_DAY), 0);
    ck_assert_int_eq(wk_clv_load_day(&l, 20, 130, 0, 500, 130 * US_DAY), 0);
    ck_assert_int_eq(wk_clv_load_day(&l, 25, 1, 1, 100, 0), 0);              /* not in the population */
    ck_assert_int_eq(wk_clv_load_day(&l, 30, 140, 0, 100, 140 * US_DAY), 0); /* only after as_of */
    ck_assert_int_eq(wk_clv_load_finish(&l), 0);
    ck_assert_uint_eq(l.skipped, 2);
    ck_assert_uint_eq(l.nfit, 1);
    ck_assert_uint_eq(l.c[0].fit, WK_CLV_NOT_FITTED);
    ck_assert_uint_eq(l.c[2].fit, WK_CLV_NOT_FITTED);
    ck_assert_uint_eq(l.c[1].fit, 0);
    const wk_clv_summary_t *s = &l.s[0];
    ck_assert(s->x == 2 && fabs(s->t_x - 4.0) < 1e-12 && fabs(s->T - 10.0) < 1e-12);
    ck_assert(fabs(s->zbar - 30.0) < 1e-12); /* (20.00 + 40.00) / 2 */
    ck_assert_uint_eq(l.c[1].holdout_days, 2);
    ck_assert_int_eq(l.holdout_end_day, 130); /* customer 30 is not fitted: its day does not count */
    ck_assert(!l.c[0].excluded && !l.c[1].excluded && !l.c[2].excluded);
    wk_clv_load_free(&l);
}
END_TEST

START_TEST(load_refuses_disorder)
{
    wk_clv_job_params_t p = week_params(100);
    wk_clv_load_t l;
    ck_assert_int_eq(wk_clv_load_init(&l, &p, 2), 0);
    ck_assert_int_eq(wk_clv_load_customer(&l, 2), 0);
    ck_assert_int_eq(wk_clv_load_customer(&l, 1), ERR_INVALID);
    ck_assert_int_eq(wk_clv_load_customer(&l, 3), 0);
    ck_assert_int_eq(wk_clv_load_day(&l, 3, 50, 1, 100, 0), 0);
    ck_assert_int_eq(wk_clv_load_day(&l, 2, 50, 1, 100, 0), ERR_INVALID); /* customer went backwards */
    wk_clv_load_free(&l);
    ck_assert_int_eq(wk_clv_load_init(&l, &p, 1), 0);
    ck_assert_int_eq(wk_clv_load_customer(&l, 2), 0);
    ck_assert_int_eq(wk_clv_load_day(&l, 2, 50, 1, 100, 0), 0);
    ck_assert_int_eq(wk_clv_load_day(&l, 2, 40, 1, 100, 0), ERR_INVALID); /* day went backwards */
    wk_clv_load_free(&l);
}
END_TEST

/* first_purchase_after / _before select a cohort by the first order's time; others get no row at all. */
START_TEST(load_cohort)
{
    wk_clv_job_params_t p = week_params(100);
    p.first_after_us = 20 * US_DAY;
    p.first_before_us = 40 * US_DAY;
    wk_clv_load_t l;
    ck_assert_int_eq(wk_clv_load_init(&l, &p, 4), 0);
    for (int64_t id = 1; id <= 4; id++)
        ck_assert_int_eq(wk_clv_load_customer(&l, id), 0);
    ck_assert_int_eq(wk_clv_load_day(&l, 1, 10, 1, 100, 10 * US_DAY), 0); /* too early */
    ck_assert_int_eq(wk_clv_load_day(&l, 1, 30, 1, 100, 30 * US_DAY), 0);
    ck_assert_int_eq(wk_clv_load_day(&l, 2, 30, 1, 100, 30 * US_DAY), 0); /* in */
    ck_assert_int_eq(wk_clv_load_day(&l, 3, 40, 1, 100, 40 * US_DAY), 0); /* the bound is exclusive */
    ck_assert_int_eq(wk_clv_load_finish(&l), 0);                          /* 4: no purchase at all */
    ck_assert(l.c[0].excluded && !l.c[1].excluded && l.c[2].excluded && l.c[3].excluded);
    ck_assert_uint_eq(l.nfit, 1);
    ck_assert_uint_eq(l.c[1].fit, 0);
    wk_clv_load_free(&l);
}
END_TEST

/* --- CDNOW through the run's path -------------------------------------------------------------- */

struct st_txn_t {
    int id;
    int32_t day;
    int64_t cents;
};

static int compare_txn(const void *pa, const void *pb)
{
    const struct st_txn_t *a = pa, *b = pb;
    if (a->id != b->id)
        return a->id < b->id ? -1 : 1;
    return a->day < b->day ? -1 : a->day > b->day;
}

static void cdnow_path(char *buf, size_t size, const char *file)
{
    const char *dir = getenv("CLIENTELE_SHARED_DIR");
    snprintf(buf, size, "%s/data/cdnow/%s", dir != NULL && *dir != '\0' ? dir : "../shared", file);
}

/* Loads the sample as the run would see it from its COPY: one row per customer, day and side of as_of. */
static void load_cdnow(wk_clv_load_t *l, const wk_clv_job_params_t *p, uint64_t *holdout_days)
{
    char path[1024], line[256];
    cdnow_path(path, sizeof(path), "CDNOW_sample.txt");
    FILE *fp = fopen(path, "r");
    ck_assert_msg(fp != NULL, "cannot open %s (set CLIENTELE_SHARED_DIR)", path);
    size_t n = 0, cap = 8192;
    struct st_txn_t *t = malloc(cap * sizeof(*t));
    while (fgets(line, sizeof(line), fp) != NULL) {
        long master, id, date, cds;
        double value;
        if (sscanf(line, "%ld %ld %ld %ld %lf", &master, &id, &date, &cds, &value) != 5)
            continue;
        ck_assert(n < cap);
        t[n].id = (int)id;
        t[n].day = (int32_t)tz_days_from_civil(date / 10000, (int)(date / 100 % 100), (int)(date % 100));
        t[n].cents = llround(value * 100);
        n++;
    }
    fclose(fp);
    ck_assert_uint_eq(n, 6919);
    qsort(t, n, sizeof(*t), compare_txn);

    ck_assert_int_eq(wk_clv_load_init(l, p, CDNOW_CUSTOMERS), 0);
    for (int id = 1; id <= CDNOW_CUSTOMERS; id++)
        ck_assert_int_eq(wk_clv_load_customer(l, id), 0);
    *holdout_days = 0;
    for (size_t i = 0; i < n;) {
        size_t j = i;
        int64_t cents = 0;
        while (j < n && t[j].id == t[i].id && t[j].day == t[i].day)
            cents += t[j++].cents;
        int cal = t[i].day <= p->as_of_day;
        *holdout_days += !cal;
        /* orders at noon UTC */
        ck_assert_int_eq(wk_clv_load_day(l, t[i].id, t[i].day, cal, cents, (int64_t)t[i].day * US_DAY + US_DAY / 2), 0);
        i = j;
    }
    ck_assert_int_eq(wk_clv_load_finish(l), 0);
    free(t);
}

/* Every customer's summary equals the published one, and the fits give the published parameters. */
START_TEST(cdnow_through_the_run)
{
    wk_clv_job_params_t p = week_params((int32_t)tz_days_from_civil(1997, 9, 30));
    wk_clv_load_t l;
    uint64_t holdout;
    load_cdnow(&l, &p, &holdout);
    ck_assert_uint_eq(l.nfit, CDNOW_CUSTOMERS);

    char path[1024], line[256];
    cdnow_path(path, sizeof(path), "cdnow_customers_summary_with_transactions.csv");
    FILE *fp = fopen(path, "r");
    ck_assert_msg(fp != NULL, "cannot open %s", path);
    int rows = 0;
    while (fgets(line, sizeof(line), fp) != NULL) {
        int id;
        double x, t_x, T, zbar;
        if (sscanf(line, "%d,%lf,%lf,%lf,%lf", &id, &x, &t_x, &T, &zbar) != 5)
            continue;
        ck_assert(id >= 1 && id <= CDNOW_CUSTOMERS);
        const wk_clv_customer_t *c = &l.c[id - 1];
        ck_assert_uint_ne(c->fit, WK_CLV_NOT_FITTED);
        const wk_clv_summary_t *s = &l.s[c->fit];
        ck_assert_msg(s->x == x && fabs(s->t_x - t_x) < 0.0051 && fabs(s->T - T) < 0.0051 &&
                          fabs(s->zbar - zbar) < 0.0051,
                      "customer %d: got (%g, %g, %g, %g), published (%g, %g, %g, %g)", id, s->x, s->t_x, s->T, s->zbar,
                      x, t_x, T, zbar);
        rows++;
    }
    fclose(fp);
    ck_assert_int_eq(rows, CDNOW_CUSTOMERS);

    wk_clv_fit_t fit;
    char err[256];
    ck_assert_int_eq(wk_clv_job_fit(&l, 0, &fit, err, sizeof(err)), 0);
    ck_assert(fabs(fit.bg.r / 0.2426 - 1) < 1e-3);
    ck_assert(fabs(fit.bg.alpha / 4.4135 - 1) < 1e-3);
    ck_assert(fabs(fit.bg.a / 0.7929 - 1) < 1e-3);
    ck_assert(fabs(fit.bg.b / 2.4258 - 1) < 1e-3);
    ck_assert(fabs(fit.bg_info.log_likelihood + 9582.43) < 0.01);
    ck_assert_uint_eq(fit.repeat_customers, 946);
    ck_assert(fit.gg_ok);
    ck_assert(fabs(fit.gg.p - 6.25) < 0.01 && fabs(fit.gg.q - 3.74) < 0.01 && fabs(fit.gg.gamma - 15.44) < 0.01);

    /* Customer 1 (x = 2, t_x = 30.43, T = 38.86): P(alive) 0.7266, 1.226 purchases in the next 39 weeks. */
    wk_clv_result_t r;
    ck_assert_int_eq(wk_clv_job_score(&p, &fit, &l.c[0], &l.s[l.c[0].fit], &r), 0);
    ck_assert_msg(fabs(r.p_alive - 0.7266) < 5e-4, "p_alive %g", r.p_alive);
    ck_assert_msg(fabs(r.expected_purchases - 1.226) < 2e-3, "expected %g", r.expected_purchases);
    ck_assert_int_eq(r.lifecycle, WK_CLV_ACTIVE);
    double value;
    ck_assert_int_eq(wk_gg_expected_value(&fit.gg, 2, l.s[0].zbar, &value), 0);
    ck_assert(fabs(r.value - value) < 1e-9 && fabs(r.clv - r.expected_purchases * value) < 1e-9);

    /* Every customer gets finite numbers, and the lifecycles follow the thresholds. */
    size_t lifecycles[WK_CLV_LIFECYCLE__COUNT] = {0};
    for (size_t i = 0; i < l.n; i++) {
        ck_assert_int_eq(wk_clv_job_score(&p, &fit, &l.c[i], &l.s[l.c[i].fit], &r), 0);
        ck_assert(isfinite(r.p_alive) && r.p_alive >= 0 && r.p_alive <= 1);
        ck_assert(isfinite(r.expected_purchases) && r.expected_purchases >= 0);
        ck_assert(isfinite(r.value) && r.value > 0 && isfinite(r.clv) && r.clv >= 0);
        if (r.lifecycle == WK_CLV_ACTIVE)
            ck_assert(r.p_alive >= 0.7);
        else if (r.lifecycle == WK_CLV_AT_RISK)
            ck_assert(r.p_alive >= 0.3 && r.p_alive < 0.7);
        else if (r.lifecycle == WK_CLV_CHURNED)
            ck_assert(r.p_alive < 0.3);
        lifecycles[r.lifecycle]++;
    }
    /* T >= 27 weeks for everyone: nobody is new, and every class is populated. */
    ck_assert_uint_eq(lifecycles[WK_CLV_NEW], 0);
    ck_assert_uint_eq(lifecycles[WK_CLV_PROSPECT], 0);
    ck_assert(lifecycles[WK_CLV_ACTIVE] > 0 && lifecycles[WK_CLV_AT_RISK] > 0 && lifecycles[WK_CLV_CHURNED] > 0);

    /* The holdout: 39 weeks to 1998-06-30; every holdout day was counted on its customer. */
    ck_assert_int_eq(l.holdout_end_day, (int32_t)tz_days_from_civil(1998, 6, 30));
    uint64_t counted = 0;
    for (size_t i = 0; i < l.n; i++)
        counted += l.c[i].holdout_days;
    ck_assert_uint_eq(counted, holdout);
    wk_clv_load_free(&l);
}
END_TEST

/* A discount rate lowers the value; a horizon of days changes units consistently. */
START_TEST(score_discount_and_new)
{
    wk_clv_job_params_t p = week_params(1000);
    wk_clv_fit_t fit = {.bg = {0.242594150135163, 4.41359212062015, 0.792919156875463, 2.4258950494563},
                        .gg = {6.25, 3.74, 15.44},
                        .gg_ok = 1};
    wk_clv_customer_t c = {.id = 1, .first_day = 1000 - 10, .fit = 0};
    wk_clv_summary_t s = {.x = 1, .t_x = 1, .T = 10.0 / 7, .zbar = 20};
    wk_clv_result_t plain, discounted;
    ck_assert_int_eq(wk_clv_job_score(&p, &fit, &c, &s, &plain), 0);
    ck_assert_int_eq(plain.lifecycle, WK_CLV_NEW); /* 10 days < new_days */
    p.discount_rate = 0.01;
    ck_assert_int_eq(wk_clv_job_score(&p, &fit, &c, &s, &discounted), 0);
    ck_assert(discounted.clv < plain.clv && discounted.clv > 0.5 * plain.clv);
    ck_assert(discounted.expected_purchases == plain.expected_purchases);
    /* a zero repeat spend (refunds) falls back to the population's mean value */
    s.zbar = 0;
    ck_assert_int_eq(wk_clv_job_score(&p, &fit, &c, &s, &plain), 0);
    ck_assert(fabs(plain.value - 6.25 * 15.44 / 2.74) < 1e-9);
    /* no spend model: value and clv are unknown, the rest is there */
    fit.gg_ok = 0;
    ck_assert_int_eq(wk_clv_job_score(&p, &fit, &c, &s, &plain), 0);
    ck_assert(isnan(plain.value) && isnan(plain.clv) && isfinite(plain.p_alive));
}
END_TEST

START_TEST(fit_needs_repeat_buyers)
{
    wk_clv_job_params_t p = week_params(100);
    wk_clv_load_t l;
    wk_clv_fit_t fit;
    char err[256];
    ck_assert_int_eq(wk_clv_load_init(&l, &p, 2), 0);
    ck_assert_int_eq(wk_clv_load_customer(&l, 1), 0);
    ck_assert_int_eq(wk_clv_load_customer(&l, 2), 0);
    ck_assert_int_eq(wk_clv_load_finish(&l), 0);
    ck_assert_int_eq(wk_clv_job_fit(&l, 0, &fit, err, sizeof(err)), ERR_INVALID);
    ck_assert_ptr_nonnull(strstr(err, "nothing to fit"));
    wk_clv_load_free(&l);

    ck_assert_int_eq(wk_clv_load_init(&l, &p, 2), 0);
    ck_assert_int_eq(wk_clv_load_customer(&l, 1), 0);
    ck_assert_int_eq(wk_clv_load_customer(&l, 2), 0);
    ck_assert_int_eq(wk_clv_load_day(&l, 1, 10, 1, 100, 0), 0);
    ck_assert_int_eq(wk_clv_load_day(&l, 2, 20, 1, 100, 0), 0);
    ck_assert_int_eq(wk_clv_load_finish(&l), 0);
    ck_assert_int_eq(wk_clv_job_fit(&l, 0, &fit, err, sizeof(err)), ERR_INVALID);
    ck_assert_ptr_nonnull(strstr(err, "repeat purchases"));
    wk_clv_load_free(&l);
}
END_TEST

/* The text COPY rows: prospects with \N, excluded customers absent, money with 2 decimals. */
START_TEST(produce_rows)
{
    wk_clv_job_params_t p = week_params(100);
    wk_clv_load_t l;
    ck_assert_int_eq(wk_clv_load_init(&l, &p, 3), 0);
    for (int64_t id = 1; id <= 3; id++)
        ck_assert_int_eq(wk_clv_load_customer(&l, id), 0);
    ck_assert_int_eq(wk_clv_load_day(&l, 2, 30, 1, 1000, 0), 0);
    ck_assert_int_eq(wk_clv_load_day(&l, 2, 44, 1, 2550, 0), 0);
    ck_assert_int_eq(wk_clv_load_finish(&l), 0);
    l.c[2].excluded = 1;
    wk_clv_result_t res[1] = {
        {.p_alive = 0.5, .expected_purchases = 1.25, .value = 30.456, .clv = NAN, .lifecycle = WK_CLV_AT_RISK}};
    produce_t pr = {.l = &l, .res = res, .run_id = 7};
    char buf[4096];
    size_t n = produce_results(&pr, buf, sizeof(buf));
    buf[n] = '\0';
    ck_assert_str_eq(buf, "7\t1\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\tprospect\n"
                          "7\t2\t1\t2\t10\t25.50\t0.5\t1.25\t30.46\t\\N\tat_risk\n");
    ck_assert_uint_eq(produce_results(&pr, buf, sizeof(buf)), 0);
    /* half a cent rounds away from zero, whatever the binary representation */
    put_money(buf, sizeof(buf), 4469 / 100.0 / 2);
    ck_assert_str_eq(buf, "22.35");
    put_money(buf, sizeof(buf), -0.125);
    ck_assert_str_eq(buf, "-0.13");
    put_money(buf, sizeof(buf), 1e12 + 0.004);
    ck_assert_str_eq(buf, "1000000000000.00");
    wk_clv_load_free(&l);
}
END_TEST

static Suite *clv_job_suite(void)
{
    Suite *s = suite_create("clv_job");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, params_defaults);
    tcase_add_test(tc, params_all);
    tcase_add_test(tc, params_rejected);
    tcase_add_test(tc, load_merges_population);
    tcase_add_test(tc, load_refuses_disorder);
    tcase_add_test(tc, load_cohort);
    tcase_add_test(tc, cdnow_through_the_run);
    tcase_add_test(tc, score_discount_and_new);
    tcase_add_test(tc, fit_needs_repeat_buyers);
    tcase_add_test(tc, produce_rows);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(clv_job_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
