/*
 * tests/unit/worker/clv_model_test.c - unit tests for worker/clv_model.c (BG/NBD, Gamma-Gamma, summaries).
 *
 * The acceptance tests use the CDNOW sample of Fader, Hardie & Lee (2005),
 * read at run time from $CLIENTELE_SHARED_DIR/data/cdnow (default
 * ../shared, relative to the repository root, which is the working
 * directory of the tests); the data are never copied into the repository.
 * The per-customer summaries are built from the raw transactions exactly
 * as the worker does (wk_clv_summarise()) and checked against the
 * published summary file before any model is fitted. Reference values:
 * FHL 2005 and the lifetimes library (BG/NBD), Fader & Hardie 2013
 * (Gamma-Gamma). A simulation test generates customers from known BG/NBD
 * parameters with a fixed-seed generator and checks that the fit finds
 * them again.
 */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/err.h"
#include "worker/clv_model.h"
#include "worker/hyp2f1.h"

#define CDNOW_CUSTOMERS 2357

/* The published BG/NBD estimates on CDNOW (lifetimes / BTYD, full precision). */
static const wk_bgnbd_params_t CDNOW_BGNBD = {0.242594150135163, 4.41359212062015, 0.792919156875463, 2.4258950494563};

/* ---- CDNOW loading ------------------------------------------------------------------------------------------ */

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil). */
static int32_t days_from_civil(int y, int m, int d)
{
    int era, yoe, doy, doe;
    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = y - era * 400;
    doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int32_t day_of_yyyymmdd(long v)
{
    return days_from_civil((int)(v / 10000), (int)(v / 100 % 100), (int)(v % 100));
}

static void cdnow_path(char *buf, size_t size, const char *file)
{
    const char *dir = getenv("CLIENTELE_SHARED_DIR");
    snprintf(buf, size, "%s/data/cdnow/%s", dir != NULL && *dir != '\0' ? dir : "../shared", file);
}

struct st_txn_t {
    int id;
    int32_t day;
    int64_t cents;
};

static int compare_txns(const void *pa, const void *pb)
{
    const struct st_txn_t *a = pa, *b = pb;
    if (a->id != b->id)
        return a->id < b->id ? -1 : 1;
    return (a->day > b->day) - (a->day < b->day);
}

/* Reads CDNOW_sample.txt and fills sums[0..2357) (index = sample id - 1) with wk_clv_summarise(). */
static void load_cdnow(wk_clv_summary_t *sums)
{
    char path[4096], line[256];
    struct st_txn_t *txns;
    size_t n = 0, cap = 8192;
    int32_t end_day = days_from_civil(1997, 9, 30), *days;
    int64_t *cents;
    FILE *fp;

    cdnow_path(path, sizeof(path), "CDNOW_sample.txt");
    fp = fopen(path, "r");
    ck_assert_msg(fp != NULL, "cannot open %s (set CLIENTELE_SHARED_DIR)", path);
    txns = malloc(cap * sizeof(*txns));
    ck_assert_ptr_nonnull(txns);
    while (fgets(line, sizeof(line), fp) != NULL) {
        long master, id, date, cds;
        double value;
        if (sscanf(line, "%ld %ld %ld %ld %lf", &master, &id, &date, &cds, &value) != 5)
            continue;
        ck_assert(n < cap);
        txns[n].id = (int)id;
        txns[n].day = day_of_yyyymmdd(date);
        txns[n].cents = llround(value * 100);
        n++;
    }
    fclose(fp);
    ck_assert_uint_eq(n, 6919);
    qsort(txns, n, sizeof(*txns), compare_txns);

    days = malloc(n * sizeof(*days));
    cents = malloc(n * sizeof(*cents));
    ck_assert(days != NULL && cents != NULL);
    memset(sums, 0, CDNOW_CUSTOMERS * sizeof(*sums));
    for (size_t i = 0; i < n;) {
        size_t j = i, k = 0;
        int id = txns[i].id;
        for (; j < n && txns[j].id == id; j++, k++) {
            days[k] = txns[j].day;
            cents[k] = txns[j].cents;
        }
        ck_assert(id >= 1 && id <= CDNOW_CUSTOMERS);
        ck_assert_int_eq(wk_clv_summarise(days, cents, k, end_day, 7, &sums[id - 1]), 0);
        i = j;
    }
    free(days);
    free(cents);
    free(txns);
}

static double elapsed_since(const struct timespec *t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) + (double)(t1.tv_nsec - t0->tv_nsec) * 1e-9;
}

/* ---- summarise ---------------------------------------------------------------------------------------------- */

START_TEST(summarise_basic)
{
    /* Day 10 twice (merged), day 17, day 24 twice (merged), day 40 after the end. */
    const int32_t days[] = {10, 10, 17, 24, 24, 40};
    const int64_t cents[] = {1000, 250, 500, 100, 199, 9999};
    wk_clv_summary_t s;

    ck_assert_int_eq(wk_clv_summarise(days, cents, 6, 31, 7, &s), 0);
    ck_assert_double_eq(s.x, 2);
    ck_assert_double_eq_tol(s.t_x, 14.0 / 7, 1e-15);
    ck_assert_double_eq_tol(s.T, 21.0 / 7, 1e-15);
    ck_assert_double_eq_tol(s.zbar, (5.00 + 2.99) / 2, 1e-12);

    /* Only the first day (two rows) before the end: no repeat purchase. */
    ck_assert_int_eq(wk_clv_summarise(days, cents, 6, 16, 1, &s), 0);
    ck_assert_double_eq(s.x, 0);
    ck_assert_double_eq(s.t_x, 0);
    ck_assert_double_eq(s.T, 6);
    ck_assert_double_eq(s.zbar, 0);

    /* A refund day can make the repeat spend negative; that is reported, not rejected. */
    {
        const int32_t d2[] = {1, 5};
        const int64_t c2[] = {500, -300};
        ck_assert_int_eq(wk_clv_summarise(d2, c2, 2, 5, 1, &s), 0);
        ck_assert_double_eq(s.x, 1);
        ck_assert_double_eq_tol(s.zbar, -3, 1e-12);
    }
}
END_TEST

START_TEST(summarise_errors)
{
    const int32_t days[] = {10, 9};
    const int64_t cents[] = {100, 100};
    const int64_t huge[] = {0, INT64_MAX, INT64_MAX};
    const int32_t hdays[] = {1, 2, 3};
    wk_clv_summary_t s;

    ck_assert_int_eq(wk_clv_summarise(days, cents, 2, 20, 7, &s), ERR_INVALID);  /* unsorted */
    ck_assert_int_eq(wk_clv_summarise(days, cents, 1, 5, 7, &s), ERR_NOT_FOUND); /* first day after end */
    ck_assert_int_eq(wk_clv_summarise(days, cents, 0, 5, 7, &s), ERR_NOT_FOUND);
    ck_assert_int_eq(wk_clv_summarise(days, cents, 1, 20, 0, &s), ERR_INVALID);
    ck_assert_int_eq(wk_clv_summarise(days, cents, 1, 20, NAN, &s), ERR_INVALID);
    ck_assert_int_eq(wk_clv_summarise(NULL, cents, 1, 20, 7, &s), ERR_INVALID);
    ck_assert_int_eq(wk_clv_summarise(days, cents, 1, 20, 7, NULL), ERR_INVALID);
    ck_assert_int_eq(wk_clv_summarise(hdays, huge, 3, 20, 7, &s), ERR_INVALID); /* overflowing sum */
}
END_TEST

/*
 * v rounds to the 2-decimal value printed: |v - printed| <= 0.005. Exact
 * halves (zbar = 32.535) count as either neighbour, because the file was
 * written from binary floats whose rounding direction at .xx5 is arbitrary.
 */
static int same_to_2_decimals(double v, double printed)
{
    return fabs(v - printed) <= 0.005 + 1e-9;
}

/* Every customer's (x, t_x, T) equals cdnow_customers_summary.csv to 2 decimals, zbar the _with_transactions file. */
START_TEST(summarise_cdnow)
{
    wk_clv_summary_t *sums = malloc(CDNOW_CUSTOMERS * sizeof(*sums));
    char path[4096], line[256];
    int seen = 0, repeaters = 0, max_x = 0;
    double sum_x = 0, min_T = INFINITY, max_T = 0;
    FILE *fp;

    ck_assert_ptr_nonnull(sums);
    load_cdnow(sums);

    cdnow_path(path, sizeof(path), "cdnow_customers_summary.csv");
    ck_assert_msg((fp = fopen(path, "r")) != NULL, "cannot open %s", path);
    ck_assert_ptr_nonnull(fgets(line, sizeof(line), fp)); /* header */
    while (fgets(line, sizeof(line), fp) != NULL) {
        int id;
        double x, t_x, T;
        ck_assert_int_eq(sscanf(line, "%d,%lf,%lf,%lf", &id, &x, &t_x, &T), 4);
        ck_assert(id >= 1 && id <= CDNOW_CUSTOMERS);
        ck_assert_msg(sums[id - 1].x == x, "customer %d: x %g, expected %g", id, sums[id - 1].x, x);
        ck_assert_msg(same_to_2_decimals(sums[id - 1].t_x, t_x), "customer %d: t_x %.4f, expected %.2f", id,
                      sums[id - 1].t_x, t_x);
        ck_assert_msg(same_to_2_decimals(sums[id - 1].T, T), "customer %d: T %.4f, expected %.2f", id, sums[id - 1].T,
                      T);
        seen++;
    }
    fclose(fp);
    ck_assert_int_eq(seen, CDNOW_CUSTOMERS);

    cdnow_path(path, sizeof(path), "cdnow_customers_summary_with_transactions.csv");
    ck_assert_msg((fp = fopen(path, "r")) != NULL, "cannot open %s", path);
    ck_assert_ptr_nonnull(fgets(line, sizeof(line), fp));
    seen = 0;
    while (fgets(line, sizeof(line), fp) != NULL) {
        int id;
        double x, t_x, T, zbar;
        ck_assert_int_eq(sscanf(line, "%d,%lf,%lf,%lf,%lf", &id, &x, &t_x, &T, &zbar), 5);
        ck_assert_msg(same_to_2_decimals(sums[id - 1].zbar, zbar), "customer %d: zbar %.4f, expected %.2f", id,
                      sums[id - 1].zbar, zbar);
        seen++;
    }
    fclose(fp);
    ck_assert_int_eq(seen, CDNOW_CUSTOMERS);

    for (int i = 0; i < CDNOW_CUSTOMERS; i++) {
        repeaters += sums[i].x > 0;
        sum_x += sums[i].x;
        max_x = sums[i].x > max_x ? (int)sums[i].x : max_x;
        min_T = fmin(min_T, sums[i].T);
        max_T = fmax(max_T, sums[i].T);
    }
    ck_assert_int_eq(repeaters, 946);
    ck_assert_double_eq(sum_x, 2457);
    ck_assert_int_eq(max_x, 29);
    ck_assert_int_eq(llround(min_T * 100), 2700);
    ck_assert_int_eq(llround(max_T * 100), 3886);
    free(sums);
}
END_TEST

/* ---- data sets ---------------------------------------------------------------------------------------------- */

START_TEST(data_collapse)
{
    const wk_clv_summary_t rows[] = {
        {2, 5, 10, 3}, {0, 0, 10, 0}, {2, 5, 10, 4}, {0, 3, 10, 0}, /* x = 0 ignores t_x: same row as {0, 0, 10} */
        {1, 2, 10, 5}, {0, 0, 12, 0}, {2, 5, 10, 3},
    };
    wk_bgnbd_data_t d;
    wk_gg_data_t g;
    double wsum = 0;

    ck_assert_int_eq(wk_bgnbd_data_init(&d, rows, 7), 0);
    ck_assert_uint_eq(d.n, 4); /* (0,0,10) x2, (0,0,12), (1,2,10), (2,5,10) x3 */
    ck_assert_double_eq(d.weight, 7);
    for (size_t i = 0; i < d.n; i++) {
        wsum += d.w[i];
        if (i > 0)
            ck_assert(d.x[i - 1] <= d.x[i]);
    }
    ck_assert_double_eq(wsum, 7);
    ck_assert_double_eq(d.x[0], 0);
    ck_assert_double_eq(d.T[0], 10);
    ck_assert_double_eq(d.w[0], 2);
    ck_assert_double_eq(d.x[3], 2);
    ck_assert_double_eq(d.w[3], 3);
    wk_bgnbd_data_free(&d);
    ck_assert_ptr_null(d._mem);
    wk_bgnbd_data_free(&d); /* idempotent */

    ck_assert_int_eq(wk_gg_data_init(&g, rows, 7), 0);
    ck_assert_uint_eq(g.n, 3); /* (1,5), (2,3) x2, (2,4) */
    ck_assert_double_eq(g.weight, 4);
    ck_assert_uint_eq(g.excluded, 3);
    ck_assert_double_eq(g.w[1], 2);
    wk_gg_data_free(&g);
}
END_TEST

START_TEST(data_invalid)
{
    wk_bgnbd_data_t d;
    wk_gg_data_t g;
    const wk_clv_summary_t frac[] = {{1.5, 1, 2, 0}}, late[] = {{1, 3, 2, 0}}, neg_T[] = {{0, 0, -1, 0}},
                           neg[] = {{-1, 0, 2, 0}}, nan_T[] = {{0, 0, NAN, 0}}, inf_z[] = {{1, 1, 2, INFINITY}},
                           none[] = {{0, 0, 5, 0}, {2, 1, 5, 0}};

    ck_assert_int_eq(wk_bgnbd_data_init(&d, frac, 1), ERR_INVALID);
    ck_assert_int_eq(wk_bgnbd_data_init(&d, late, 1), ERR_INVALID);
    ck_assert_int_eq(wk_bgnbd_data_init(&d, neg_T, 1), ERR_INVALID);
    ck_assert_int_eq(wk_bgnbd_data_init(&d, neg, 1), ERR_INVALID);
    ck_assert_int_eq(wk_bgnbd_data_init(&d, nan_T, 1), ERR_INVALID);
    ck_assert_int_eq(wk_bgnbd_data_init(&d, late, 0), ERR_INVALID);
    ck_assert_int_eq(wk_bgnbd_data_init(&d, NULL, 1), ERR_INVALID);
    ck_assert_int_eq(wk_bgnbd_data_init(NULL, late, 1), ERR_INVALID);
    wk_bgnbd_data_free(&d); /* safe after a failed init */
    ck_assert_int_eq(wk_gg_data_init(&g, inf_z, 1), ERR_INVALID);
    ck_assert_int_eq(wk_gg_data_init(&g, frac, 1), ERR_INVALID);
    ck_assert_int_eq(wk_gg_data_init(&g, none, 2), ERR_NOT_FOUND);
    wk_gg_data_free(&g);
}
END_TEST

/* ---- BG/NBD fit --------------------------------------------------------------------------------------------- */

START_TEST(bgnbd_fit_cdnow)
{
    wk_clv_summary_t *sums = malloc(CDNOW_CUSTOMERS * sizeof(*sums));
    wk_bgnbd_params_t p;
    wk_clv_fit_info_t info;
    struct timespec t0;
    double secs;

    ck_assert_ptr_nonnull(sums);
    load_cdnow(sums);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    ck_assert_int_eq(wk_bgnbd_fit_rows(sums, CDNOW_CUSTOMERS, 0, &p, &info), 0);
    secs = elapsed_since(&t0);
    printf("BG/NBD CDNOW: r=%.6f alpha=%.6f a=%.6f b=%.6f LL=%.4f iter=%d fevals=%d |g|=%.2e unique=%zu %.4fs\n", p.r,
           p.alpha, p.a, p.b, info.log_likelihood, info.iterations, info.fevals, info.grad_norm, info.unique_rows,
           secs);
    fflush(stdout);
    ck_assert_double_eq_tol(p.r, 0.2426, 0.2426e-3);
    ck_assert_double_eq_tol(p.alpha, 4.4135, 4.4135e-3);
    ck_assert_double_eq_tol(p.a, 0.7929, 0.7929e-3);
    ck_assert_double_eq_tol(p.b, 2.4258, 2.4258e-3);
    ck_assert_double_eq_tol(info.log_likelihood, -9582.43, 0.01);
    ck_assert_int_eq(info.converged, 1);
    ck_assert_int_eq(info.used_fallback, 0); /* the analytic gradient is right, so BFGS converges on its own */
    ck_assert(info.grad_norm >= 0 && info.grad_norm <= 1e-6);
    ck_assert_double_eq(info.customers, CDNOW_CUSTOMERS);
    ck_assert(info.unique_rows < CDNOW_CUSTOMERS);
    ck_assert_double_eq_tol(info.objective, -info.log_likelihood / CDNOW_CUSTOMERS, 1e-12);
    free(sums);
}
END_TEST

START_TEST(bgnbd_loglik_published)
{
    wk_clv_summary_t *sums = malloc(CDNOW_CUSTOMERS * sizeof(*sums));
    wk_bgnbd_data_t d;
    wk_bgnbd_params_t bad = CDNOW_BGNBD;
    double ll;

    ck_assert_ptr_nonnull(sums);
    load_cdnow(sums);
    ck_assert_int_eq(wk_bgnbd_data_init(&d, sums, CDNOW_CUSTOMERS), 0);
    ck_assert_int_eq(wk_bgnbd_loglik(&d, &CDNOW_BGNBD, &ll), 0);
    ck_assert_double_eq_tol(ll, -9582.43, 0.01);
    wk_bgnbd_data_free(&d);
    /* A customer whose first purchase is on the last calibration day (T = 0) adds nothing. */
    {
        double ll0;
        wk_clv_summary_t *more = realloc(sums, (CDNOW_CUSTOMERS + 1) * sizeof(*sums));
        ck_assert_ptr_nonnull(more);
        sums = more;
        sums[CDNOW_CUSTOMERS] = (wk_clv_summary_t){0, 0, 0, 0};
        ck_assert_int_eq(wk_bgnbd_data_init(&d, sums, CDNOW_CUSTOMERS + 1), 0);
        ck_assert_int_eq(wk_bgnbd_loglik(&d, &CDNOW_BGNBD, &ll0), 0);
        ck_assert_double_eq_tol(ll0, ll, 1e-9);
    }
    bad.a = 0;
    ck_assert_int_eq(wk_bgnbd_loglik(&d, &bad, &ll), ERR_INVALID);
    bad.a = NAN;
    ck_assert_int_eq(wk_bgnbd_loglik(&d, &bad, &ll), ERR_INVALID);
    wk_bgnbd_data_free(&d);
    free(sums);
}
END_TEST

/* In days instead of weeks: alpha scales by 7, r, a, b stay, LL shifts by -sum(x) log 7. */
START_TEST(bgnbd_fit_time_unit)
{
    wk_clv_summary_t *sums = malloc(CDNOW_CUSTOMERS * sizeof(*sums));
    wk_bgnbd_params_t pw, pd;
    wk_clv_fit_info_t iw, id;
    double sum_x = 0;

    ck_assert_ptr_nonnull(sums);
    load_cdnow(sums);
    ck_assert_int_eq(wk_bgnbd_fit_rows(sums, CDNOW_CUSTOMERS, 0, &pw, &iw), 0);
    for (int i = 0; i < CDNOW_CUSTOMERS; i++) {
        sums[i].t_x *= 7;
        sums[i].T *= 7;
        sum_x += sums[i].x;
    }
    ck_assert_int_eq(wk_bgnbd_fit_rows(sums, CDNOW_CUSTOMERS, 0, &pd, &id), 0);
    ck_assert_double_eq_tol(pd.r, pw.r, 1e-6 * pw.r);
    ck_assert_double_eq_tol(pd.alpha, 7 * pw.alpha, 1e-6 * 7 * pw.alpha);
    ck_assert_double_eq_tol(pd.a, pw.a, 1e-6 * pw.a);
    ck_assert_double_eq_tol(pd.b, pw.b, 1e-6 * pw.b);
    ck_assert_double_eq_tol(id.log_likelihood, iw.log_likelihood - sum_x * log(7), 1e-6);
    free(sums);
}
END_TEST

START_TEST(bgnbd_fit_penalizer)
{
    wk_clv_summary_t *sums = malloc(CDNOW_CUSTOMERS * sizeof(*sums));
    wk_bgnbd_data_t d;
    wk_bgnbd_params_t p0, p1;
    wk_clv_fit_info_t i0, i1;
    double ss0, ss1;

    ck_assert_ptr_nonnull(sums);
    load_cdnow(sums);
    ck_assert_int_eq(wk_bgnbd_data_init(&d, sums, CDNOW_CUSTOMERS), 0);
    ck_assert_int_eq(wk_bgnbd_fit(&d, 0, NULL, &p0, &i0), 0);
    ck_assert_int_eq(wk_bgnbd_fit(&d, 0.01, NULL, &p1, &i1), 0);
    ss0 = p0.r * p0.r + p0.alpha * p0.alpha + p0.a * p0.a + p0.b * p0.b;
    ss1 = p1.r * p1.r + p1.alpha * p1.alpha + p1.a * p1.a + p1.b * p1.b;
    ck_assert(ss1 < ss0);                             /* shrunk */
    ck_assert(i1.log_likelihood < i0.log_likelihood); /* at the cost of fit */
    ck_assert_double_eq_tol(i1.objective, -i1.log_likelihood / CDNOW_CUSTOMERS + 0.01 * ss1, 1e-12);
    /* A warm start at the published values converges to the same estimate. */
    ck_assert_int_eq(wk_bgnbd_fit(&d, 0, &CDNOW_BGNBD, &p1, &i1), 0);
    ck_assert_double_eq_tol(p1.alpha, p0.alpha, 1e-5 * p0.alpha);
    ck_assert_double_eq_tol(p1.b, p0.b, 1e-5 * p0.b);
    ck_assert_int_eq(wk_bgnbd_fit(&d, -1, NULL, &p1, &i1), ERR_INVALID);
    ck_assert_int_eq(wk_bgnbd_fit(&d, NAN, NULL, &p1, &i1), ERR_INVALID);
    ck_assert_int_eq(wk_bgnbd_fit(NULL, 0, NULL, &p1, &i1), ERR_INVALID);
    ck_assert_int_eq(wk_bgnbd_fit(&d, 0, NULL, NULL, &i1), ERR_INVALID);
    ck_assert_int_eq(wk_bgnbd_fit(&d, 0, NULL, &p1, NULL), 0); /* info is optional */
    wk_bgnbd_data_free(&d);
    free(sums);
}
END_TEST

/* ---- simulation ----------------------------------------------------------------------------------------------- */

/* xorshift64* and the distributions the BG/NBD story needs. */
static double uniform01(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return ((*s * 2685821657736338717ULL) >> 11) * (1.0 / 9007199254740992.0) + 0x1p-54;
}

static double std_normal(uint64_t *s)
{
    return sqrt(-2 * log(uniform01(s))) * cos(2 * M_PI * uniform01(s));
}

/* Marsaglia & Tsang; shape < 1 through the u^(1/shape) boost. Unit scale. */
static double gamma_variate(uint64_t *s, double shape)
{
    double boost = 1, d, c;
    if (shape < 1) {
        boost = pow(uniform01(s), 1 / shape);
        shape += 1;
    }
    d = shape - 1.0 / 3;
    c = 1 / sqrt(9 * d);
    for (;;) {
        double z = std_normal(s), v = 1 + c * z, u;
        if (v <= 0)
            continue;
        v = v * v * v;
        u = uniform01(s);
        if (log(u) < 0.5 * z * z + d - d * v + d * log(v))
            return boost * d * v;
    }
}

/*
 * One BG/NBD customer observed for T: rate lambda ~ Gamma(r, alpha), dropout p ~ Beta(a, b);
 * exponential gaps, and after each repeat purchase the customer leaves with probability p.
 */
static void simulate_customer(uint64_t *s, const wk_bgnbd_params_t *prm, double T, wk_clv_summary_t *out)
{
    double lambda = gamma_variate(s, prm->r) / prm->alpha;
    double ga = gamma_variate(s, prm->a), gb = gamma_variate(s, prm->b), p = ga / (ga + gb), t = 0;

    out->x = out->t_x = 0;
    out->T = T;
    out->zbar = 0;
    for (;;) {
        t += -log(uniform01(s)) / lambda;
        if (t > T)
            break;
        out->x += 1;
        out->t_x = t;
        if (uniform01(s) < p)
            break;
    }
}

START_TEST(bgnbd_fit_simulated)
{
    const wk_bgnbd_params_t truth = {0.5, 6.0, 0.8, 3.0};
    enum { N = 40000 };
    wk_clv_summary_t *rows = malloc(N * sizeof(*rows));
    wk_bgnbd_params_t p;
    wk_clv_fit_info_t info;
    uint64_t seed = 0x9E3779B97F4A7C15ULL;

    ck_assert_ptr_nonnull(rows);
    for (int i = 0; i < N; i++) {
        simulate_customer(&seed, &truth, 20 + (i % 40), &rows[i]);
        /* Round times to days, as real summaries are. */
        rows[i].t_x = round(rows[i].t_x * 7) / 7;
    }
    ck_assert_int_eq(wk_bgnbd_fit_rows(rows, N, 0, &p, &info), 0);
    printf("BG/NBD simulated (N=%d, unique=%zu): r=%.4f alpha=%.4f a=%.4f b=%.4f iter=%d\n", N, info.unique_rows, p.r,
           p.alpha, p.a, p.b, info.iterations);
    fflush(stdout);
    ck_assert_double_eq_tol(p.r, truth.r, 0.1 * truth.r);
    ck_assert_double_eq_tol(p.alpha, truth.alpha, 0.15 * truth.alpha);
    ck_assert_double_eq_tol(p.a, truth.a, 0.25 * truth.a);
    ck_assert_double_eq_tol(p.b, truth.b, 0.35 * truth.b);
    free(rows);
}
END_TEST

/* Extreme customers in the data do not break the likelihood or the fit. */
START_TEST(bgnbd_fit_extreme_rows)
{
    wk_clv_summary_t *sums = malloc((CDNOW_CUSTOMERS + 3) * sizeof(*sums));
    wk_bgnbd_params_t p;
    wk_clv_fit_info_t info;

    ck_assert_ptr_nonnull(sums);
    load_cdnow(sums);
    sums[CDNOW_CUSTOMERS] = (wk_clv_summary_t){1000, 10, 100, 0};
    sums[CDNOW_CUSTOMERS + 1] = (wk_clv_summary_t){100000, 38, 38.5, 0};
    sums[CDNOW_CUSTOMERS + 2] = (wk_clv_summary_t){5000, 0.01, 1000, 0};
    ck_assert_int_eq(wk_bgnbd_fit_rows(sums, CDNOW_CUSTOMERS + 3, 0, &p, &info), 0);
    ck_assert(isfinite(info.log_likelihood)); /* t_x is continuous: a density, so the sign is free */
    ck_assert(isfinite(p.r) && isfinite(p.alpha) && isfinite(p.a) && isfinite(p.b));
    free(sums);
}
END_TEST

/* ---- Gamma-Gamma -------------------------------------------------------------------------------------------- */

START_TEST(gg_fit_cdnow)
{
    wk_clv_summary_t *sums = malloc(CDNOW_CUSTOMERS * sizeof(*sums));
    wk_gg_params_t p;
    wk_gg_data_t d;
    wk_clv_fit_info_t info;
    struct timespec t0;
    double secs, ll;

    ck_assert_ptr_nonnull(sums);
    load_cdnow(sums);
    ck_assert_int_eq(wk_gg_data_init(&d, sums, CDNOW_CUSTOMERS), 0);
    ck_assert_double_eq(d.weight, 946);
    ck_assert_uint_eq(d.excluded, CDNOW_CUSTOMERS - 946);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    ck_assert_int_eq(wk_gg_fit(&d, 0, NULL, &p, &info), 0);
    secs = elapsed_since(&t0);
    printf("Gamma-Gamma CDNOW: p=%.6f q=%.6f gamma=%.6f LL=%.4f iter=%d fevals=%d |g|=%.2e %.4fs\n", p.p, p.q, p.gamma,
           info.log_likelihood, info.iterations, info.fevals, info.grad_norm, secs);
    fflush(stdout);
    ck_assert_double_eq_tol(p.p, 6.25, 0.01);
    ck_assert_double_eq_tol(p.q, 3.74, 0.01);
    ck_assert_double_eq_tol(p.gamma, 15.44, 0.01);
    ck_assert_int_eq(info.converged, 1);
    ck_assert_int_eq(info.used_fallback, 0);
    ck_assert_double_eq(info.customers, 946);
    ck_assert_int_eq(wk_gg_loglik(&d, &p, &ll), 0);
    ck_assert_double_eq_tol(ll, info.log_likelihood, 1e-9);
    /* The fit_rows shortcut gives the same answer. */
    {
        wk_gg_params_t q;
        ck_assert_int_eq(wk_gg_fit_rows(sums, CDNOW_CUSTOMERS, 0, &q, NULL), 0);
        ck_assert_double_eq_tol(q.p, p.p, 1e-9);
        ck_assert_double_eq_tol(q.gamma, p.gamma, 1e-9);
    }
    wk_gg_data_free(&d);
    free(sums);
}
END_TEST

START_TEST(gg_expected_value)
{
    const wk_gg_params_t p = {6.25, 3.74, 15.44};
    const wk_gg_params_t heavy = {1, 0.5, 10};
    double v, pop;

    ck_assert_int_eq(wk_gg_expected_value(&p, 0, 0, &pop), 0);
    ck_assert_double_eq_tol(pop, 6.25 * 15.44 / 2.74, 1e-12);
    ck_assert_int_eq(wk_gg_expected_value(&p, 2, 30, &v), 0);
    ck_assert_double_eq_tol(v, 6.25 * (15.44 + 60) / (12.5 + 2.74), 1e-12);
    ck_assert(v > 30 && v < pop); /* the customer's mean, shrunk towards the population's */
    ck_assert_int_eq(wk_gg_expected_value(&p, 1e9, 30, &v), 0);
    ck_assert_double_eq_tol(v, 30, 1e-6);
    ck_assert_int_eq(wk_gg_expected_value(&heavy, 0, 0, &v), ERR_INVALID); /* q <= 1: infinite mean */
    ck_assert_int_eq(wk_gg_expected_value(&heavy, 1, 5, &v), 0);
    ck_assert_int_eq(wk_gg_expected_value(&p, -1, 5, &v), ERR_INVALID);
    ck_assert_int_eq(wk_gg_expected_value(&p, 1, NAN, &v), ERR_INVALID);
    ck_assert_int_eq(wk_gg_expected_value(NULL, 1, 5, &v), ERR_INVALID);
}
END_TEST

/* ---- BG/NBD predictions ------------------------------------------------------------------------------------- */

START_TEST(predict_cdnow_customer)
{
    double pa, e;

    ck_assert_int_eq(wk_bgnbd_p_alive(&CDNOW_BGNBD, 2, 30.43, 38.86, &pa), 0);
    ck_assert_double_eq_tol(pa, 0.7266, 5e-5);
    ck_assert_int_eq(wk_bgnbd_expected_conditional(&CDNOW_BGNBD, 2, 30.43, 38.86, 39, &e), 0);
    ck_assert_double_eq_tol(e, 1.226, 5e-4);
    ck_assert_int_eq(wk_bgnbd_p_alive(&CDNOW_BGNBD, 0, 0, 38.86, &pa), 0);
    ck_assert_double_eq(pa, 1);
    ck_assert_int_eq(wk_bgnbd_expected_conditional(&CDNOW_BGNBD, 2, 30.43, 38.86, 0, &e), 0);
    ck_assert_double_eq(e, 0);
}
END_TEST

START_TEST(predict_new_customer)
{
    const double t[] = {1, 3, 32, 78}, want[] = {0.0532, 0.1506, 1.0437, 1.8576};
    double e;

    for (int i = 0; i < 4; i++) {
        ck_assert_int_eq(wk_bgnbd_expected_new(&CDNOW_BGNBD, t[i], &e), 0);
        ck_assert_msg(fabs(e - want[i]) < 5e-4, "E[X(%g)] = %.6f, expected %.4f", t[i], e, want[i]);
    }
    ck_assert_int_eq(wk_bgnbd_expected_new(&CDNOW_BGNBD, 0, &e), 0);
    ck_assert_double_eq(e, 0);
}
END_TEST

/* The Euler-transformed evaluation agrees with FHL eq. 9 and 10 as printed, evaluated with wk_hyp2f1() directly. */
START_TEST(predict_matches_direct_formula)
{
    const wk_bgnbd_params_t p = CDNOW_BGNBD;
    const double ts[] = {0.5, 10, 39, 200, 2000};

    for (int i = 0; i < 5; i++) {
        double t = ts[i], f, e, direct, z;
        /* eq. 9 */
        z = t / (p.alpha + t);
        ck_assert_int_eq(wk_hyp2f1(p.r, p.b, p.a + p.b - 1, z, &f), 0);
        direct = (p.a + p.b - 1) / (p.a - 1) * (1 - pow(p.alpha / (p.alpha + t), p.r) * f);
        ck_assert_int_eq(wk_bgnbd_expected_new(&p, t, &e), 0);
        ck_assert_double_eq_tol(e, direct, 1e-10 * fmax(1, direct));
        /* eq. 10 for x = 3, t_x = 20, T = 35 */
        z = t / (p.alpha + 35 + t);
        ck_assert_int_eq(wk_hyp2f1(p.r + 3, p.b + 3, p.a + p.b + 2, z, &f), 0);
        direct = (p.a + p.b + 2) / (p.a - 1) * (1 - pow((p.alpha + 35) / (p.alpha + 35 + t), p.r + 3) * f) /
                 (1 + p.a / (p.b + 2) * pow((p.alpha + 35) / (p.alpha + 20), p.r + 3));
        ck_assert_int_eq(wk_bgnbd_expected_conditional(&p, 3, 20, 35, t, &e), 0);
        ck_assert_double_eq_tol(e, direct, 1e-9 * fmax(1, direct));
    }
}
END_TEST

START_TEST(predict_extreme_customers)
{
    const double xs[] = {0, 1, 2, 10, 100, 1000, 1e6};
    const double ts[] = {0, 1, 39, 520, 1e5};
    double pa, e, prev;

    ck_assert_int_eq(wk_bgnbd_p_alive(&CDNOW_BGNBD, 1000, 10, 100, &pa), 0);
    ck_assert(isfinite(pa));
    ck_assert(pa < 5e-5); /* prints as 0.0000 */
    ck_assert_int_eq(wk_bgnbd_expected_conditional(&CDNOW_BGNBD, 1000, 10, 100, 39, &e), 0);
    ck_assert(isfinite(e) && e >= 0 && e < 1e-6);
    ck_assert_int_eq(wk_clv_lifetime_value(&CDNOW_BGNBD, 1000, 10, 100, 50, 52, 0.01, &e), 0);
    ck_assert(isfinite(e) && e >= 0 && e < 1e-4);

    /* A grid of customers, from inactive to extremely active, recent or not: everything finite and sane. */
    for (int i = 0; i < 7; i++) {
        for (int k = 0; k < 3; k++) {
            double T = 100, t_x = xs[i] == 0 ? 0 : (k == 0 ? 1 : k == 1 ? 50 : 100);
            ck_assert_int_eq(wk_bgnbd_p_alive(&CDNOW_BGNBD, xs[i], t_x, T, &pa), 0);
            ck_assert_msg(isfinite(pa) && pa >= 0 && pa <= 1, "x=%g t_x=%g: p_alive %g", xs[i], t_x, pa);
            prev = 0;
            for (int j = 0; j < 5; j++) {
                int ret = wk_bgnbd_expected_conditional(&CDNOW_BGNBD, xs[i], t_x, T, ts[j], &e);
                ck_assert_msg(ret == 0, "x=%g t_x=%g t=%g: ret %d", xs[i], t_x, ts[j], ret);
                ck_assert_msg(isfinite(e) && e >= prev - 1e-9 * fmax(1, prev), "x=%g t_x=%g t=%g: %g (prev %g)", xs[i],
                              t_x, ts[j], e, prev);
                prev = e;
            }
        }
    }
    /* A very active, recent customer buys at about its observed rate. */
    ck_assert_int_eq(wk_bgnbd_expected_conditional(&CDNOW_BGNBD, 1000, 99.9, 100, 10, &e), 0);
    ck_assert(e > 50 && e < 150);
}
END_TEST

/* a = 1 and a + b - 1 = 0 are removable singularities of the expectation: values just off them stay continuous. */
START_TEST(predict_singular_parameters)
{
    wk_bgnbd_params_t p = {0.5, 5, 1, 2};
    double at, near, far;

    ck_assert_int_eq(wk_bgnbd_expected_new(&p, 20, &at), 0);
    p.a = 1 + 3e-5; /* outside the bridged interval */
    ck_assert_int_eq(wk_bgnbd_expected_new(&p, 20, &far), 0);
    p.a = 1 + 1e-7; /* inside */
    ck_assert_int_eq(wk_bgnbd_expected_new(&p, 20, &near), 0);
    ck_assert(isfinite(at) && at > 0);
    ck_assert_double_eq_tol(near, at, 1e-6 * at);
    ck_assert_double_eq_tol(far, at, 1e-4 * at);
    ck_assert_int_eq(wk_bgnbd_expected_conditional(&p, 4, 10, 30, 20, &near), 0);
    ck_assert(isfinite(near) && near > 0);

    p.a = 0.4;
    p.b = 0.6; /* a + b - 1 = 0 with x = 0 */
    ck_assert_int_eq(wk_bgnbd_expected_new(&p, 20, &at), 0);
    p.b = 0.6 + 5e-5;
    ck_assert_int_eq(wk_bgnbd_expected_new(&p, 20, &far), 0);
    ck_assert(isfinite(at) && at > 0);
    ck_assert_double_eq_tol(far, at, 1e-3 * at);
}
END_TEST

START_TEST(predict_invalid)
{
    wk_bgnbd_params_t bad = CDNOW_BGNBD;
    double v;

    ck_assert_int_eq(wk_bgnbd_p_alive(&CDNOW_BGNBD, 2, 40, 38, &v), ERR_INVALID); /* t_x > T */
    ck_assert_int_eq(wk_bgnbd_p_alive(&CDNOW_BGNBD, 1.5, 1, 38, &v), ERR_INVALID);
    ck_assert_int_eq(wk_bgnbd_p_alive(&CDNOW_BGNBD, 2, 1, 0, &v), ERR_INVALID); /* t_x > T = 0 */
    ck_assert_int_eq(wk_bgnbd_p_alive(&CDNOW_BGNBD, 0, 0, -1, &v), ERR_INVALID);
    ck_assert_int_eq(wk_bgnbd_p_alive(&CDNOW_BGNBD, 0, 0, 0, &v), 0); /* first purchase on the last day */
    ck_assert_double_eq(v, 1);
    ck_assert_int_eq(wk_bgnbd_p_alive(&CDNOW_BGNBD, INFINITY, 1, 38, &v), ERR_INVALID);
    ck_assert_int_eq(wk_bgnbd_p_alive(NULL, 2, 1, 38, &v), ERR_INVALID);
    ck_assert_int_eq(wk_bgnbd_p_alive(&CDNOW_BGNBD, 2, 1, 38, NULL), ERR_INVALID);
    bad.r = -1;
    ck_assert_int_eq(wk_bgnbd_p_alive(&bad, 2, 1, 38, &v), ERR_INVALID);
    ck_assert_int_eq(wk_bgnbd_expected_new(&bad, 1, &v), ERR_INVALID);
    ck_assert_int_eq(wk_bgnbd_expected_new(&CDNOW_BGNBD, -1, &v), ERR_INVALID);
    ck_assert_int_eq(wk_bgnbd_expected_new(&CDNOW_BGNBD, NAN, &v), ERR_INVALID);
    ck_assert_int_eq(wk_bgnbd_expected_conditional(&CDNOW_BGNBD, 2, 1, 38, INFINITY, &v), ERR_INVALID);
    ck_assert_int_eq(wk_clv_lifetime_value(&CDNOW_BGNBD, 2, 1, 38, 10, -1, 0, &v), ERR_INVALID);
    ck_assert_int_eq(wk_clv_lifetime_value(&CDNOW_BGNBD, 2, 1, 38, 10, 5, -1, &v), ERR_INVALID);
    ck_assert_int_eq(wk_clv_lifetime_value(&CDNOW_BGNBD, 2, 1, 38, NAN, 5, 0, &v), ERR_INVALID);
    ck_assert_int_eq(wk_clv_lifetime_value(&CDNOW_BGNBD, 2, 1, 38, 10, WK_CLV_MAX_HORIZON + 1, 0, &v), ERR_INVALID);
}
END_TEST

START_TEST(clv_discounting)
{
    const double value = 35.0;
    double e, clv0, clv1, clv_short, manual = 0, prev = 0;

    ck_assert_int_eq(wk_bgnbd_expected_conditional(&CDNOW_BGNBD, 2, 30.43, 38.86, 52, &e), 0);
    ck_assert_int_eq(wk_clv_lifetime_value(&CDNOW_BGNBD, 2, 30.43, 38.86, value, 52, 0, &clv0), 0);
    ck_assert_double_eq_tol(clv0, e * value, 1e-12 * clv0);

    ck_assert_int_eq(wk_clv_lifetime_value(&CDNOW_BGNBD, 2, 30.43, 38.86, value, 52, 0.01, &clv1), 0);
    for (int k = 1; k <= 52; k++) {
        ck_assert_int_eq(wk_bgnbd_expected_conditional(&CDNOW_BGNBD, 2, 30.43, 38.86, k, &e), 0);
        manual += (e - prev) * value / pow(1.01, k);
        prev = e;
    }
    ck_assert_double_eq_tol(clv1, manual, 1e-10 * manual);
    ck_assert(clv1 < clv0 && clv1 > clv0 / pow(1.01, 52));

    /* Short and long tenures, so that z = k / (alpha + T + k) runs past 0.9 (the batched series' limit). */
    {
        const double cust[][3] = {{1, 0.5, 1}, {0, 0, 3}, {7, 20, 20.5}, {30, 100, 300}};
        for (int i = 0; i < 4; i++) {
            double got;
            manual = prev = 0;
            for (int k = 1; k <= 156; k++) {
                ck_assert_int_eq(wk_bgnbd_expected_conditional(&CDNOW_BGNBD, cust[i][0], cust[i][1], cust[i][2], k, &e),
                                 0);
                manual += (e - prev) * value / pow(1.005, k);
                prev = e;
            }
            ck_assert_int_eq(
                wk_clv_lifetime_value(&CDNOW_BGNBD, cust[i][0], cust[i][1], cust[i][2], value, 156, 0.005, &got), 0);
            ck_assert_msg(fabs(got - manual) <= 1e-10 * manual, "customer %d: %.15g vs %.15g", i, got, manual);
        }
    }

    ck_assert_int_eq(wk_clv_lifetime_value(&CDNOW_BGNBD, 2, 30.43, 38.86, value, 10, 0.01, &clv_short), 0);
    ck_assert(clv_short < clv1);
    ck_assert_int_eq(wk_clv_lifetime_value(&CDNOW_BGNBD, 2, 30.43, 38.86, value, 0, 0.01, &e), 0);
    ck_assert_double_eq(e, 0);
}
END_TEST

static Suite *clv_model_suite(void)
{
    Suite *s = suite_create("clv_model");
    TCase *tc;

    tc = tcase_create("summarise");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, summarise_basic);
    tcase_add_test(tc, summarise_errors);
    tcase_add_test(tc, summarise_cdnow);
    suite_add_tcase(s, tc);

    tc = tcase_create("data");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, data_collapse);
    tcase_add_test(tc, data_invalid);
    suite_add_tcase(s, tc);

    tc = tcase_create("bgnbd_fit");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, bgnbd_fit_cdnow);
    tcase_add_test(tc, bgnbd_loglik_published);
    tcase_add_test(tc, bgnbd_fit_time_unit);
    tcase_add_test(tc, bgnbd_fit_penalizer);
    tcase_add_test(tc, bgnbd_fit_simulated);
    tcase_add_test(tc, bgnbd_fit_extreme_rows);
    suite_add_tcase(s, tc);

    tc = tcase_create("gamma_gamma");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, gg_fit_cdnow);
    tcase_add_test(tc, gg_expected_value);
    suite_add_tcase(s, tc);

    tc = tcase_create("bgnbd_predict");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, predict_cdnow_customer);
    tcase_add_test(tc, predict_new_customer);
    tcase_add_test(tc, predict_matches_direct_formula);
    tcase_add_test(tc, predict_extreme_customers);
    tcase_add_test(tc, predict_singular_parameters);
    tcase_add_test(tc, predict_invalid);
    tcase_add_test(tc, clv_discounting);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(clv_model_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
