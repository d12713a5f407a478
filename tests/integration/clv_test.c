/*
 * tests/integration/clv_test.c - analytics runs of kind clv end to end, on
 * the published CDNOW data.
 *
 * The CDNOW sample of Fader, Hardie & Lee (2005) is read at run time from
 * $CLIENTELE_SHARED_DIR/data/cdnow (never copied into the repository) and
 * loaded THROUGH THE API as the integration user would: one bulk request
 * of customers (external id cdnow-<sample id>, odd ids also tagged
 * cdnow-odd) and two bulk requests of orders (one per line of the file,
 * completed, at noon UTC of its date, the dollar value as total; the
 * eight customers whose only order is worth 0.00 are customers all the
 * same). Around it the suite adds what must not count: two customers
 * without orders (prospects), a customer with orders that is then deleted,
 * and orders of customer 2 that are cancelled, refunded, pending or
 * deleted. Runs are
 * requested with POST /v1/analytics/runs, computed by a real worker that
 * each test starts and stops itself (it must exit 0), and read back with
 * GET /v1/analytics/runs/{id}, GET /v1/customers and from the result tables.
 *
 * The oracles come from the files, independently of the worker: the
 * published parameters (BG/NBD r, alpha, a, b and log-likelihood; Gamma-
 * Gamma p, q, gamma), the published per-customer summaries
 * (cdnow_customers_summary.csv for x, t_x and T in weeks,
 * cdnow_customers_summary_with_transactions.csv for zbar), and what this
 * file computes from the raw transactions: the repeat purchase days after
 * the calibration period and the cohort by first purchase. The scores of
 * every customer are checked against the definitions (Gamma-Gamma
 * conditional mean, value = purchases x mean value, lifecycle from
 * P(alive)) with the run's own fitted parameters.
 *
 * main() parses the files, builds the suite's database and crew, starts
 * one API process and logs everyone in; Check forks each test, which
 * inherits all of it. The first test that needs the data loads it (the
 * load is a few requests, done once per suite), and the first that needs
 * the reference run requests it, so each test also runs on its own. Memory
 * stays reachable from the crew's kept list, so LeakSanitizer stays quiet.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>

#include "tests/support/crew.h"

#define PASSWORD "clv-suite-password"

static const char *const api_env[] = {
    "CLIENTELE_THREADS=2",
    "CLIENTELE_JWT_SECRET=clv-suite-secret-0123456789abcdefghijkl",
    NULL,
};

static const crew_conf_t conf = {
    .name = "clv",
    .redis_db = 11,
    .env = api_env,
    .password = PASSWORD,
    .domain = "clv.test",
    .resource = "customers",
    .item = "record",
};

/* The calibration period of the literature: 39 weeks ending 1997-09-30. */
#define AS_OF "1997-09-30T23:59:59Z"
#define AS_OF_DATE 19970930
#define MAIN_PARAMS "{\"as_of\":\"" AS_OF "\",\"time_unit\":\"week\",\"horizon\":39}"

/* The cohort of the first_purchase_before test: first purchase in January 1997. */
#define COHORT_BEFORE "1997-02-01T00:00:00Z"
#define COHORT_BEFORE_DATE 19970201

#define NCUST 2357  /* customers of the sample */
#define NROWS 6919  /* transactions of the sample */
#define NREPEAT 946 /* customers with x > 0 */
#define NPROSPECT 2 /* customers without orders */
#define BULK_MAX 5000

/* Published values (FHL 2005; Fader & Hardie 2013). */
#define PUB_R 0.2426
#define PUB_ALPHA 4.4135
#define PUB_A 0.7929
#define PUB_B 2.4258
#define PUB_LL (-9582.43)
#define PUB_P 6.25
#define PUB_Q 3.74
#define PUB_GAMMA 15.44

/* --- the files -------------------------------------------------------------------------------------------------- */

typedef struct {
    int sid;        /* sample customer id, 1..NCUST */
    long date;      /* YYYYMMDD */
    char value[24]; /* dollars, two decimals, as in the file */
} txn_t;

typedef struct {
    int seen;         /* rows in the file */
    long first_date;  /* YYYYMMDD of the first purchase */
    double x, t_x, T; /* published summary, weeks */
    double zbar;      /* published mean repeat value */
    int have_summary, have_zbar;
} cust_t;

static txn_t txns[NROWS];
static cust_t custs[NCUST + 1];
static long long holdout_days; /* distinct (customer, day) purchases after the calibration period */
static long long cohort_size;  /* customers whose first purchase is before COHORT_BEFORE_DATE */
static long long odd_size;     /* customers tagged cdnow-odd */
static const char *customers_body, *orders_body[2];

static const char *cdnow_path(const char *file)
{
    const char *dir = getenv("CLIENTELE_SHARED_DIR");
    return fmt("%s/data/cdnow/%s", dir != NULL && *dir != '\0' ? dir : "../shared", file);
}

/* Reads the sample and both summaries; exits with status 2 when something is missing or malformed. */
static void read_files(void)
{
    const char *path = cdnow_path("CDNOW_sample.txt");
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        fprintf(stderr, "clv_test: cannot open %s (set CLIENTELE_SHARED_DIR)\n", path);
        exit(2);
    }
    char line[256];
    size_t n = 0;
    while (fgets(line, sizeof(line), f) != NULL) {
        long master, sid, date, cds;
        char value[24];
        if (sscanf(line, "%ld %ld %ld %ld %23s", &master, &sid, &date, &cds, value) != 5)
            continue;
        if (n == NROWS || sid < 1 || sid > NCUST) {
            fprintf(stderr, "clv_test: unexpected line %zu of %s\n", n + 1, path);
            exit(2);
        }
        txns[n].sid = (int)sid;
        txns[n].date = date;
        snprintf(txns[n].value, sizeof(txns[n].value), "%s", value);
        cust_t *c = &custs[sid];
        if (c->seen++ == 0 || date < c->first_date)
            c->first_date = date;
        n++;
    }
    fclose(f);
    if (n != NROWS) {
        fprintf(stderr, "clv_test: %s has %zu transactions, expected %d\n", path, n, NROWS);
        exit(2);
    }

    /* Repeat purchase days after the calibration period: distinct (customer, date), all after the first purchase. */
    for (size_t i = 0; i < n; i++) {
        if (txns[i].date <= AS_OF_DATE)
            continue;
        int dup = 0;
        for (size_t k = 0; k < i && !dup; k++)
            dup = txns[k].sid == txns[i].sid && txns[k].date == txns[i].date;
        holdout_days += !dup;
    }
    for (int s = 1; s <= NCUST; s++) {
        cohort_size += custs[s].seen > 0 && custs[s].first_date < COHORT_BEFORE_DATE;
        odd_size += s % 2;
    }

    path = cdnow_path("cdnow_customers_summary.csv");
    f = fopen(path, "r");
    if (f == NULL) {
        fprintf(stderr, "clv_test: cannot open %s\n", path);
        exit(2);
    }
    while (fgets(line, sizeof(line), f) != NULL) {
        int sid;
        double x, t_x, T;
        if (sscanf(line, "%d,%lf,%lf,%lf", &sid, &x, &t_x, &T) == 4 && sid >= 1 && sid <= NCUST) {
            custs[sid].x = x;
            custs[sid].t_x = t_x;
            custs[sid].T = T;
            custs[sid].have_summary = 1;
        }
    }
    fclose(f);
    path = cdnow_path("cdnow_customers_summary_with_transactions.csv");
    f = fopen(path, "r");
    if (f == NULL) {
        fprintf(stderr, "clv_test: cannot open %s\n", path);
        exit(2);
    }
    while (fgets(line, sizeof(line), f) != NULL) {
        int sid;
        double x, t_x, T, zbar;
        if (sscanf(line, "%d,%lf,%lf,%lf,%lf", &sid, &x, &t_x, &T, &zbar) == 5 && sid >= 1 && sid <= NCUST) {
            custs[sid].zbar = zbar;
            custs[sid].have_zbar = 1;
        }
    }
    fclose(f);
    for (int s = 1; s <= NCUST; s++) {
        if (custs[s].seen == 0 || !custs[s].have_summary || !custs[s].have_zbar) {
            fprintf(stderr, "clv_test: customer %d is missing from the sample or a summary\n", s);
            exit(2);
        }
    }
}

static const char *iso_noon(long date)
{
    return fmt("%04ld-%02ld-%02ldT12:00:00Z", date / 10000, date / 100 % 100, date % 100);
}

/* The bulk bodies: every customer in one request, the orders in two, plus what must not count. */
static void build_bodies(void)
{
    json_t *cs = json_array();
    for (int s = 1; s <= NCUST; s++) {
        json_t *tags = s % 2 ? json_pack("[s, s]", "cdnow", "cdnow-odd") : json_pack("[s]", "cdnow");
        json_array_append_new(cs, json_pack("{s:s, s:s, s:s, s:o}", "external_id", fmt("cdnow-%d", s), "kind", "person",
                                            "name", fmt("CDNOW customer %d", s), "tags", tags));
    }
    for (int k = 1; k <= NPROSPECT; k++)
        json_array_append_new(cs,
                              json_pack("{s:s, s:s, s:s, s:[s, s]}", "external_id", fmt("cdnow-prospect-%d", k), "kind",
                                        "person", "name", fmt("CDNOW prospect %d", k), "tags", "cdnow", "cdnow-odd"));
    json_array_append_new(cs, json_pack("{s:s, s:s, s:s, s:[s, s]}", "external_id", "cdnow-deleted", "kind", "company",
                                        "name", "CDNOW deleted customer", "tags", "cdnow", "cdnow-odd"));
    customers_body = jdump(cs);

    json_t *os[2] = {json_array(), json_array()};
    for (int i = 0; i < NROWS; i++)
        json_array_append_new(os[i >= BULK_MAX],
                              json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "external_id", fmt("cdnow-o-%d", i + 1),
                                        "customer_external_id", fmt("cdnow-%d", txns[i].sid), "ordered_at",
                                        iso_noon(txns[i].date), "status", "completed", "currency", "USD", "total",
                                        txns[i].value));
    /* Orders that are not purchases: customer 2 (x = 1, t_x = 1.71 weeks) must keep its published summary. */
    static const struct {
        const char *ext, *status;
        long date;
        const char *total;
    } noise[] = {
        {"cdnow-noise-cancelled", "cancelled", 19970601, "10.00"},
        {"cdnow-noise-refunded", "refunded", 19970701, "11.00"},
        {"cdnow-noise-pending", "pending", 19970801, "12.00"},
        {"cdnow-noise-deleted", "completed", 19970901, "13.00"},
        {"cdnow-noise-holdout", "cancelled", 19980105, "14.00"},
    };
    for (size_t i = 0; i < sizeof(noise) / sizeof(noise[0]); i++)
        json_array_append_new(os[1], json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "external_id", noise[i].ext,
                                               "customer_external_id", "cdnow-2", "ordered_at", iso_noon(noise[i].date),
                                               "status", noise[i].status, "currency", "USD", "total", noise[i].total));
    /* The deleted customer bought twice in the calibration period and once after. */
    static const long deleted_dates[] = {19970110, 19970301, 19971101};
    for (size_t i = 0; i < 3; i++)
        json_array_append_new(os[1], json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "external_id",
                                               fmt("cdnow-deleted-o-%zu", i), "customer_external_id", "cdnow-deleted",
                                               "ordered_at", iso_noon(deleted_dates[i]), "status", "completed",
                                               "currency", "USD", "total", "20.00"));
    orders_body[0] = jdump(os[0]);
    orders_body[1] = jdump(os[1]);
}

/* --- helpers ---------------------------------------------------------------------------------------------------- */

static const char *jshow(const json_t *v)
{
    if (v == NULL)
        return "(absent)";
    return keep(json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_SORT_KEYS));
}

/* A member reached by a dotted path ("model.bgnbd.r"), or NULL. */
static json_t *jpath(json_t *v, const char *path)
{
    char *copy = fmt("%s", path), *save = NULL;
    for (char *k = strtok_r(copy, ".", &save); k != NULL && v != NULL; k = strtok_r(NULL, ".", &save))
        v = json_object_get(v, k);
    return v;
}

/* A number, or a decimal string, as a double; NAN when it is neither. */
static double jnum(json_t *v)
{
    if (json_is_number(v))
        return json_number_value(v);
    if (json_is_string(v)) {
        char *end;
        double d = strtod(json_string_value(v), &end);
        return *end == '\0' && end != json_string_value(v) ? d : NAN;
    }
    return NAN;
}

static double num_at(json_t *v, const char *path)
{
    return jnum(jpath(v, path));
}

#define expect_near(got, want, tol, what)                                                                              \
    do {                                                                                                               \
        double g_ = (got), w_ = (want), t_ = (tol);                                                                    \
        ck_assert_msg(isfinite(g_) && fabs(g_ - w_) <= t_, "line %d: %s is %.6f, expected %.6f +- %g", __LINE__,       \
                      (what), g_, w_, t_);                                                                             \
    } while (0)

/* The number at path of a run, within tol of want. */
#define expect_run_num(run, path, want, tol)                                                                           \
    expect_near(num_at((run), (path)), (want), (tol), fmt("%s (%s)", (path), jshow(jpath((run), (path)))))

__attribute__((format(printf, 1, 2))) static const char *sql_text(const char *f, ...)
{
    va_list ap;
    char *sql;
    va_start(ap, f);
    if (vasprintf(&sql, f, ap) < 0)
        abort();
    va_end(ap);
    keep(sql);
    char *out = keep(calloc(1, 4096));
    ck_assert_msg(th_sql_value(db_url, sql, out, 4096) == 0, "query returned no row: %s", sql);
    return out;
}

/* Every row of a query, on a connection of its own; the caller PQclear()s the result. */
static PGresult *sql_rows(const char *sql)
{
    PGconn *c = pg_open();
    PGresult *r = PQexec(c, sql);
    ck_assert_msg(PQresultStatus(r) == PGRES_TUPLES_OK, "%s: %s", sql, PQresultErrorMessage(r));
    PQfinish(c);
    return r;
}

/* A checksum of a whole table, to see that a run left it alone. */
static const char *table_sum(const char *table)
{
    return sql_text("SELECT count(*) || ':' || coalesce(md5(string_agg(t::text, ',' ORDER BY t::text)), '')"
                    " FROM %s t",
                    table);
}

static long long customer_id_of(const char *ext)
{
    return sql_ll("SELECT id FROM customers WHERE external_id = '%s' AND deleted_at IS NULL", ext);
}

/* --- the data, through the API ---------------------------------------------------------------------------------- */

static int loaded(void)
{
    return sql_ll("SELECT count(*) FROM customers WHERE external_id LIKE 'cdnow-%%' AND deleted_at IS NULL") ==
               NCUST + NPROSPECT &&
           sql_ll("SELECT count(*) FROM customers WHERE external_id = 'cdnow-deleted' AND deleted_at IS NOT NULL") ==
               1 &&
           sql_ll("SELECT count(*) FROM orders WHERE external_id LIKE 'cdnow-o-%%' AND deleted_at IS NULL") == NROWS &&
           sql_ll("SELECT count(*) FROM orders WHERE external_id = 'cdnow-noise-deleted' AND deleted_at IS NOT NULL") ==
               1;
}

/* Loads the sample through the bulk endpoints as the integration user, unless an earlier test did. */
static void ensure_loaded(void)
{
    if (loaded())
        return;
    long long t0 = th_now_ms();
    th_resp_t *r = http_post(INTEGRATION, "/v1/customers/bulk", customers_body);
    expect_status(r, 200);
    ck_assert_int_eq(jint(r->json, "created") + jint(r->json, "updated"), NCUST + NPROSPECT + 1);
    for (int i = 0; i < 2; i++) {
        r = http_post(INTEGRATION, "/v1/orders/bulk", orders_body[i]);
        expect_status(r, 200);
    }
    long long order = sql_ll("SELECT id FROM orders WHERE external_id = 'cdnow-noise-deleted' AND deleted_at IS NULL");
    expect_status(http_delete(INTEGRATION, fmt("/v1/orders/%lld", order), NULL), 204);
    expect_status(http_delete(INTEGRATION, fmt("/v1/customers/%lld", customer_id_of("cdnow-deleted")), NULL), 204);
    ck_assert(loaded());
    fprintf(stderr, "clv: loaded %d customers and %d orders through the API in %lld ms\n", NCUST, NROWS,
            th_now_ms() - t0);
}

/* --- runs ------------------------------------------------------------------------------------------------------- */

static long long request_run(int who, const char *kind, const char *params)
{
    th_resp_t *r = http_post(who, "/v1/analytics/runs", fmt("{\"kind\":\"%s\",\"params\":%s}", kind, params));
    expect_status(r, 202);
    ck_assert_str_eq(jstr(r->json, "kind"), kind);
    return jint(r->json, "id");
}

/* GET /v1/analytics/runs/{id} as the analyst. */
static json_t *get_run(long long id)
{
    th_resp_t *r = http_get(ANALYST, fmt("/v1/analytics/runs/%lld", id));
    expect_status(r, 200);
    return r->json;
}

/* Polls the run until it has `status`; fails when it ends otherwise or takes longer than timeout_ms. */
static json_t *wait_run(long long id, const char *status, int timeout_ms)
{
    long long until = th_now_ms() + timeout_ms;
    for (;;) {
        json_t *run = get_run(id);
        const char *st = jstr(run, "status");
        if (strcmp(st, status) == 0)
            return run;
        int ended = strcmp(st, "succeeded") == 0 || strcmp(st, "failed") == 0 || strcmp(st, "cancelled") == 0;
        ck_assert_msg(!ended, "run %lld ended %s, expected %s: %s", id, st, status, jshow(run));
        ck_assert_msg(th_now_ms() < until, "run %lld is still %s after %d ms, expected %s", id, st, timeout_ms, status);
        usleep(50 * 1000);
    }
}

/* Requests a run and waits until it has succeeded (a worker must be running). */
static json_t *run_ok(int who, const char *kind, const char *params)
{
    long long t0 = th_now_ms();
    long long id = request_run(who, kind, params);
    json_t *run = wait_run(id, "succeeded", 60000);
    fprintf(stderr, "clv: %s run %lld %s succeeded in %lld ms\n", kind, id, params, th_now_ms() - t0);
    return run;
}

/*
 * The reference run (MAIN_PARAMS): the latest succeeded one, or a new one.
 * With latest, only a run that no other clv run succeeded after qualifies,
 * so that the customers' current CLV is the reference run's.
 */
static json_t *main_run(int latest)
{
    char id[32];
    const char *sql = fmt("SELECT id FROM analytics_runs WHERE kind = 'clv' AND status = 'succeeded'"
                          " AND params @> '%s'::jsonb AND params->'tag' = 'null' AND params->'first_purchase_before' ="
                          " 'null' AND params->'first_purchase_after' = 'null'%s ORDER BY id DESC LIMIT 1",
                          MAIN_PARAMS,
                          latest ? " AND NOT EXISTS (SELECT 1 FROM analytics_runs l WHERE l.kind = 'clv'"
                                   " AND l.status = 'succeeded' AND l.finished_at > analytics_runs.finished_at)"
                                 : "");
    if (th_sql_value(db_url, sql, id, sizeof(id)) == 0)
        return get_run(atoll(id));
    th_api_t w;
    crew_start_worker(&w, "w-main", NULL);
    json_t *run = run_ok(ANALYST, "clv", MAIN_PARAMS);
    crew_stop_worker(&w);
    return run;
}

/* --- checks shared by the tests --------------------------------------------------------------------------------- */

typedef struct {
    long long customer_id;
    const char *ext;
    int is_null; /* x, t_x and T are null: a prospect */
    double x, t_x, T, zbar, p_alive, expected_purchases, expected_avg_value, clv;
    const char *lifecycle;
} row_t;

/* The run's history rows by sample id (index 0: rows that are not sample customers), and their count. */
static size_t history(long long run, row_t *by_sid, row_t *others, size_t max_others)
{
    PGresult *r = sql_rows(fmt("SELECT h.customer_id, c.external_id, h.x IS NULL, h.x, h.t_x, h.t_cal, h.zbar,"
                               " h.p_alive, h.expected_purchases, h.expected_avg_value, h.clv, h.lifecycle"
                               " FROM customer_clv_history h JOIN customers c ON c.id = h.customer_id"
                               " WHERE h.run_id = %lld ORDER BY h.customer_id",
                               run));
    size_t n = (size_t)PQntuples(r), nothers = 0;
    memset(by_sid, 0, (NCUST + 1) * sizeof(*by_sid));
    for (size_t i = 0; i < n; i++) {
        row_t row = {
            .customer_id = atoll(PQgetvalue(r, (int)i, 0)),
            .ext = fmt("%s", PQgetvalue(r, (int)i, 1)),
            .is_null = strcmp(PQgetvalue(r, (int)i, 2), "t") == 0,
            .lifecycle = fmt("%s", PQgetvalue(r, (int)i, 11)),
        };
        double *dst[] = {
            &row.x,  &row.t_x, &row.T, &row.zbar, &row.p_alive, &row.expected_purchases, &row.expected_avg_value,
            &row.clv};
        for (int k = 0; k < 8; k++)
            *dst[k] = PQgetisnull(r, (int)i, 3 + k) ? NAN : strtod(PQgetvalue(r, (int)i, 3 + k), NULL);
        int sid = 0;
        char tail;
        if (sscanf(row.ext, "cdnow-%d%c", &sid, &tail) == 1 && sid >= 1 && sid <= NCUST) {
            ck_assert_msg(by_sid[sid].ext == NULL, "run %lld: customer %s twice", run, row.ext);
            by_sid[sid] = row;
        } else {
            ck_assert_msg(nothers < max_others, "run %lld: unexpected customer %s", run, row.ext);
            others[nothers++] = row;
        }
    }
    PQclear(r);
    return n;
}

/*
 * Every sample customer in `want` (NULL: all) has its published summary in
 * the run (times in unit_days-day units), and no other does.
 */
static void expect_summaries(long long run, const row_t *by_sid, const int *want, int unit_days)
{
    long long bad = 0;
    const char *first_bad = NULL;
    for (int s = 1; s <= NCUST; s++) {
        const row_t *h = &by_sid[s];
        const cust_t *c = &custs[s];
        if (want != NULL && !want[s]) {
            ck_assert_msg(h->ext == NULL, "run %lld includes customer %d, outside its population", run, s);
            continue;
        }
        ck_assert_msg(h->ext != NULL, "run %lld lacks customer %d", run, s);
        int ok;
        if (unit_days == 7)
            ok = h->x == c->x && fabs(h->t_x - c->t_x) <= 0.005 + 1e-9 && fabs(h->T - c->T) <= 0.005 + 1e-9;
        else /* whole days: the published weeks are days / 7 to two decimals, so days = round(weeks x 7) */
            ok = h->x == c->x && h->t_x == round(c->t_x * 7) && h->T == round(c->T * 7);
        /* zbar: both sides are the exact mean rounded to cents. */
        ok = ok && fabs(h->zbar - c->zbar) <= 0.01 + 1e-9;
        if (!ok) {
            if (first_bad == NULL)
                first_bad = fmt("customer %d: x %g t_x %g T %g zbar %.2f; published x %g t_x %.2f T %.2f zbar %.2f "
                                "(weeks%s)",
                                s, h->x, h->t_x, h->T, h->zbar, c->x, c->t_x, c->T, c->zbar,
                                unit_days == 7 ? "" : "; the run's times are in days");
            bad++;
        }
    }
    ck_assert_msg(bad == 0, "run %lld: %lld customers differ from the published summaries, e.g. %s", run, bad,
                  first_bad);
}

/*
 * The scores of every history row follow the definitions with the run's
 * fitted parameters: p_alive in [0, 1], Gamma-Gamma conditional mean,
 * value = purchases x mean value (no discount), lifecycle by the thresholds
 * 0.7 / 0.3 (no CDNOW customer is new at the calibration end); prospects
 * have no scores. The run's totals and lifecycle counts add up.
 */
static void expect_scores(json_t *run, const row_t *by_sid, const row_t *others, size_t nothers, size_t n)
{
    long long id = jint(run, "id");
    double p = num_at(run, "model.gamma_gamma.p"), q = num_at(run, "model.gamma_gamma.q"),
           g = num_at(run, "model.gamma_gamma.gamma");
    ck_assert_msg(isfinite(p) && isfinite(q) && isfinite(g), "run %lld: no Gamma-Gamma parameters in %s", id,
                  jshow(json_object_get(run, "model")));
    double sum_ep = 0, sum_clv = 0;
    long long fitted = 0, counts[5] = {0};
    static const char *const lifecycles[5] = {"prospect", "new", "active", "at_risk", "churned"};
    for (size_t i = 0; i < NCUST + 1 + nothers; i++) {
        const row_t *h = i <= NCUST ? &by_sid[i] : &others[i - NCUST - 1];
        if (h->ext == NULL)
            continue;
        for (int k = 0; k < 5; k++)
            counts[k] += strcmp(h->lifecycle, lifecycles[k]) == 0;
        if (h->is_null) {
            ck_assert_msg(strcmp(h->lifecycle, "prospect") == 0, "run %lld: %s has no summary but lifecycle %s", id,
                          h->ext, h->lifecycle);
            ck_assert_msg(isnan(h->p_alive) && isnan(h->clv), "run %lld: prospect %s has scores", id, h->ext);
            continue;
        }
        fitted++;
        ck_assert_msg(h->p_alive >= 0 && h->p_alive <= 1 && h->expected_purchases >= 0,
                      "run %lld: %s has p_alive %g, expected_purchases %g", id, h->ext, h->p_alive,
                      h->expected_purchases);
        const char *want = h->p_alive >= 0.7 ? "active" : h->p_alive >= 0.3 ? "at_risk" : "churned";
        ck_assert_msg(strcmp(h->lifecycle, want) == 0, "run %lld: %s with p_alive %.6f is %s, expected %s", id, h->ext,
                      h->p_alive, h->lifecycle, want);
        /* Both zbar and the mean value are stored in cents: half a cent each way, scaled by the weight of zbar. */
        double mean = p * (g + h->x * h->zbar) / (p * h->x + q - 1);
        expect_near(h->expected_avg_value, mean, 0.005 + 0.005 * p * h->x / (p * h->x + q - 1) + 1e-6,
                    fmt("run %lld: expected_avg_value of %s (x %g, zbar %.2f)", id, h->ext, h->x, h->zbar));
        expect_near(h->clv, h->expected_purchases * h->expected_avg_value, 0.005 + 0.005 * h->expected_purchases + 1e-6,
                    fmt("run %lld: clv of %s", id, h->ext));
        sum_ep += h->expected_purchases;
        sum_clv += h->clv;
    }
    json_t *stats = json_object_get(run, "stats");
    ck_assert_int_eq(jint(stats, "customers"), (long long)n);
    ck_assert_int_eq(jint(stats, "fitted"), fitted);
    ck_assert_int_eq(jint(stats, "prospects"), counts[0]);
    ck_assert_int_eq(jint(run, "customers_total"), (long long)n);
    ck_assert_int_eq(jint(run, "customers_done"), (long long)n);
    expect_near(num_at(stats, "expected_purchases"), sum_ep, 1e-6 * sum_ep + 1e-6,
                fmt("run %lld: stats.expected_purchases", id));
    expect_near(num_at(stats, "clv"), sum_clv, 0.005 * (double)fitted + 0.01, fmt("run %lld: stats.clv", id));
    json_t *lc = json_object_get(stats, "lifecycles");
    ck_assert_msg(json_is_object(lc), "run %lld: stats.lifecycles is %s", id, jshow(lc));
    long long total = 0;
    const char *key;
    json_t *v;
    json_object_foreach(lc, key, v)
    {
        int known = 0;
        for (int k = 0; k < 5; k++)
            known |= strcmp(key, lifecycles[k]) == 0;
        ck_assert_msg(known, "run %lld: unknown lifecycle %s in stats", id, key);
        total += json_integer_value(v);
    }
    ck_assert_int_eq(total, (long long)n);
    for (int k = 0; k < 5; k++)
        ck_assert_msg(jint(lc, lifecycles[k]) == counts[k], "run %lld: stats.lifecycles.%s is %s, %lld rows", id,
                      lifecycles[k], jshow(json_object_get(lc, lifecycles[k])), counts[k]);
}

/* The run's history holds exactly the customers of `where` (a condition on customers c), by SQL. */
static void expect_population_sql(long long run, const char *where)
{
    long long diff = sql_ll("SELECT count(*) FROM ((SELECT customer_id FROM customer_clv_history WHERE run_id = %lld"
                            " EXCEPT SELECT c.id FROM customers c WHERE %s)"
                            " UNION ALL (SELECT c.id FROM customers c WHERE %s"
                            " EXCEPT SELECT customer_id FROM customer_clv_history WHERE run_id = %lld)) d",
                            run, where, where, run);
    ck_assert_msg(diff == 0, "run %lld: %lld customers differ from the population %s", run, diff, where);
}

/* --- tests ------------------------------------------------------------------------------------------------------ */

START_TEST(cdnow_reproduces_the_published_model)
{
    ensure_loaded();
    th_api_t w;
    crew_start_worker(&w, "w-fit", NULL);
    json_t *run = run_ok(ANALYST, "clv", MAIN_PARAMS);
    crew_stop_worker(&w);
    long long id = jint(run, "id");

    /* The params were completed with their defaults. */
    json_t *params = json_object_get(run, "params");
    ck_assert_str_eq(jstr(params, "as_of"), AS_OF);
    ck_assert_str_eq(jstr(params, "time_unit"), "week");
    ck_assert_int_eq(jint(params, "horizon"), 39);
    ck_assert_str_eq(jstr(params, "discount_rate"), "0");

    /* BG/NBD: FHL 2005. */
    expect_run_num(run, "model.bgnbd.r", PUB_R, 1e-3 * PUB_R);
    expect_run_num(run, "model.bgnbd.alpha", PUB_ALPHA, 1e-3 * PUB_ALPHA);
    expect_run_num(run, "model.bgnbd.a", PUB_A, 1e-3 * PUB_A);
    expect_run_num(run, "model.bgnbd.b", PUB_B, 1e-3 * PUB_B);
    expect_run_num(run, "model.bgnbd.log_likelihood", PUB_LL, 0.01);
    ck_assert_msg(json_is_true(jpath(run, "model.bgnbd.converged")), "bgnbd.converged: %s",
                  jshow(jpath(run, "model.bgnbd.converged")));
    ck_assert_msg(num_at(run, "model.bgnbd.iterations") > 0, "bgnbd.iterations: %s",
                  jshow(jpath(run, "model.bgnbd.iterations")));
    double gn = num_at(run, "model.bgnbd.grad_norm");
    ck_assert_msg(gn >= 0 && gn < 1e-3, "bgnbd.grad_norm: %s", jshow(jpath(run, "model.bgnbd.grad_norm")));

    /* Gamma-Gamma: Fader & Hardie 2013, on the 946 repeat customers. */
    expect_run_num(run, "model.gamma_gamma.p", PUB_P, 0.01);
    expect_run_num(run, "model.gamma_gamma.q", PUB_Q, 0.01);
    expect_run_num(run, "model.gamma_gamma.gamma", PUB_GAMMA, 0.01);
    ck_assert_msg(isfinite(num_at(run, "model.gamma_gamma.log_likelihood")), "gamma_gamma.log_likelihood: %s",
                  jshow(jpath(run, "model.gamma_gamma.log_likelihood")));
    ck_assert_int_eq(jint(json_object_get(run, "model"), "customers_fitted"), NCUST);
    ck_assert_int_eq(jint(json_object_get(run, "model"), "repeat_customers"), NREPEAT);
    ck_assert_msg(json_is_true(jpath(run, "model.converged")), "model.converged: %s",
                  jshow(jpath(run, "model.converged")));

    /* Every customer's summary is the published one, and every score follows the definitions. */
    row_t *by_sid = keep(calloc(NCUST + 1, sizeof(row_t))), others[8];
    size_t n = history(id, by_sid, others, 8);
    ck_assert_int_eq((long long)n, NCUST + NPROSPECT); /* not the deleted customer */
    for (size_t i = 0; i < n - NCUST; i++)
        ck_assert_msg(strncmp(others[i].ext, "cdnow-prospect-", 15) == 0 && others[i].is_null,
                      "run %lld: unexpected row for %s", id, others[i].ext);
    expect_summaries(id, by_sid, NULL, 7);
    expect_scores(run, by_sid, others, n - NCUST, n);
    ck_assert_int_eq(jint(jpath(run, "stats"), "prospects"), NPROSPECT);

    /* Customer 1 (x = 2, t_x = 30.43, T = 38.86): FHL 2005. */
    expect_near(by_sid[1].p_alive, 0.7266, 5e-4, "P(alive) of customer 1");
    expect_near(by_sid[1].expected_purchases, 1.226, 2e-3, "expected purchases of customer 1 in 39 weeks");

    /* The calibration check: the repeat purchase days after as_of, counted here from the file. */
    json_t *cal = jpath(run, "stats.calibration");
    ck_assert_msg(json_is_object(cal), "stats.calibration is %s", jshow(cal));
    ck_assert_msg(jstr(cal, "period_end") != NULL && strncmp(jstr(cal, "period_end"), "1998-06-30", 10) == 0,
                  "calibration.period_end: %s", jshow(json_object_get(cal, "period_end")));
    ck_assert_msg(num_at(cal, "actual") == (double)holdout_days, "calibration.actual is %s, the file has %lld",
                  jshow(json_object_get(cal, "actual")), holdout_days);
    /* 1997-09-30 to 1998-06-30: 273 days, 39 weeks (274 days if the last day is counted whole). */
    double duration = num_at(cal, "duration");
    ck_assert_msg(fabs(duration - 39) <= 1.0 / 7 + 1e-9, "calibration.duration: %s weeks",
                  jshow(json_object_get(cal, "duration")));
    double predicted = num_at(cal, "predicted");
    ck_assert_msg(predicted > 0.8 * (double)holdout_days && predicted < 1.2 * (double)holdout_days,
                  "calibration.predicted %s against %lld actual", jshow(json_object_get(cal, "predicted")),
                  holdout_days);
    if (fabs(duration - 39) < 1e-9) /* the same period as the horizon: the same conditional expectations */
        expect_near(predicted, num_at(run, "stats.expected_purchases"), 1e-6 * predicted,
                    "calibration.predicted against the customers' expected purchases over 39 weeks");
    fprintf(stderr, "clv: calibration predicted %.1f, actual %lld repeat purchase days\n", predicted, holdout_days);
}
END_TEST

START_TEST(customers_embed_the_latest_clv)
{
    ensure_loaded();
    json_t *run = main_run(1);
    long long id = jint(run, "id");
    static const int sids[] = {1, 2, 3, 6, 100, 1000, 2357};
    for (size_t i = 0; i < sizeof(sids) / sizeof(sids[0]); i++) {
        int s = sids[i];
        long long cid = customer_id_of(fmt("cdnow-%d", s));
        th_resp_t *r = http_get(DIRECTOR, fmt("/v1/customers/%lld", cid));
        expect_status(r, 200);
        json_t *clv = jpath(r->json, "analytics.clv");
        ck_assert_msg(json_is_object(clv), "customer %d: analytics.clv is %s", s, jshow(clv));
        ck_assert_int_eq(jint(clv, "run_id"), id);
        ck_assert_int_eq(jint(clv, "horizon"), 39);
        ck_assert_str_eq(jstr(clv, "time_unit"), "week");
        ck_assert_msg(num_at(clv, "x") == custs[s].x, "customer %d: x %s", s, jshow(json_object_get(clv, "x")));
        expect_near(num_at(clv, "t_x"), custs[s].t_x, 0.005 + 1e-9, fmt("customer %d: t_x", s));
        expect_near(num_at(clv, "T"), custs[s].T, 0.005 + 1e-9, fmt("customer %d: T", s));
        /* The same values as the run's history row. */
        PGresult *h = sql_rows(fmt("SELECT p_alive, expected_purchases, expected_avg_value, clv, lifecycle"
                                   " FROM customer_clv_history WHERE run_id = %lld AND customer_id = %lld",
                                   id, cid));
        ck_assert_int_eq(PQntuples(h), 1);
        expect_near(num_at(clv, "p_alive"), strtod(PQgetvalue(h, 0, 0), NULL), 1e-12, "p_alive");
        expect_near(num_at(clv, "expected_purchases"), strtod(PQgetvalue(h, 0, 1), NULL), 1e-12, "expected_purchases");
        ck_assert_str_eq(jstr(clv, "expected_avg_value"), PQgetvalue(h, 0, 2));
        ck_assert_str_eq(jstr(clv, "clv"), PQgetvalue(h, 0, 3));
        ck_assert_str_eq(jstr(clv, "lifecycle"), PQgetvalue(h, 0, 4));
        PQclear(h);
        if (s == 1) {
            expect_near(num_at(clv, "p_alive"), 0.7266, 5e-4, "P(alive) of customer 1");
            expect_near(num_at(clv, "expected_purchases"), 1.226, 2e-3, "expected purchases of customer 1");
        }
    }
    /* A prospect: in the run, without scores. */
    th_resp_t *r = http_get(ANALYST, fmt("/v1/customers/%lld", customer_id_of("cdnow-prospect-1")));
    expect_status(r, 200);
    json_t *clv = jpath(r->json, "analytics.clv");
    ck_assert_msg(json_is_object(clv) && strcmp(jstr(clv, "lifecycle"), "prospect") == 0 &&
                      json_is_null(json_object_get(clv, "p_alive")) && json_is_null(json_object_get(clv, "x")),
                  "prospect: analytics.clv is %s", jshow(clv));

    /* A list carries the same member for every customer on it. */
    json_t *page = jget(http_get(ANALYST, "/v1/customers?tag=cdnow-odd&limit=200&sort=name"), "data");
    ck_assert_int_eq(json_array_size(page), 200);
    size_t i;
    json_t *item;
    json_array_foreach(page, i, item)
    {
        int s = 0;
        char tail;
        if (sscanf(jstr(item, "external_id"), "cdnow-%d%c", &s, &tail) != 1)
            continue;
        json_t *c = jpath(item, "analytics.clv");
        ck_assert_msg(jint(c, "run_id") == id && num_at(c, "x") == custs[s].x &&
                          fabs(num_at(c, "t_x") - custs[s].t_x) <= 0.005 + 1e-9 &&
                          fabs(num_at(c, "T") - custs[s].T) <= 0.005 + 1e-9,
                      "listed customer %d: analytics.clv is %s", s, jshow(c));
    }
}
END_TEST

START_TEST(tag_and_cohort_runs_include_only_their_customers)
{
    ensure_loaded();
    long long ref = jint(main_run(0), "id");
    th_api_t w;
    crew_start_worker(&w, "w-cohorts", NULL);
    row_t *by_sid = keep(calloc(NCUST + 1, sizeof(row_t))), others[8];
    int *want = keep(calloc(NCUST + 1, sizeof(int)));

    /* Tagged: the odd sample customers, the prospects (tagged too), not the deleted customer. */
    json_t *run = run_ok(ANALYST, "clv", "{\"as_of\":\"" AS_OF "\",\"horizon\":39,\"tag\":\"cdnow-odd\"}");
    long long id = jint(run, "id");
    size_t n = history(id, by_sid, others, 8);
    ck_assert_int_eq((long long)n, odd_size + NPROSPECT);
    for (int s = 1; s <= NCUST; s++)
        want[s] = s % 2;
    expect_summaries(id, by_sid, want, 7);
    expect_population_sql(id, "c.deleted_at IS NULL AND c.tags @> ARRAY['cdnow-odd']");
    ck_assert_int_eq(jint(json_object_get(run, "model"), "customers_fitted"), odd_size);
    ck_assert_int_eq(jint(jpath(run, "stats"), "customers"), odd_size + NPROSPECT);
    ck_assert_int_eq(jint(jpath(run, "stats"), "prospects"), NPROSPECT);
    expect_scores(run, by_sid, others, n - (size_t)odd_size, n);
    /* The current CLV moved to this run for its customers only. */
    ck_assert_int_eq(sql_ll("SELECT count(*) FROM customer_clv WHERE run_id = %lld", id), odd_size + NPROSPECT);
    ck_assert_int_eq(sql_ll("SELECT count(*) FROM customer_clv v JOIN customers c ON c.id = v.customer_id"
                            " WHERE NOT c.tags @> ARRAY['cdnow-odd'] AND v.run_id < %lld",
                            ref),
                     0);
    ck_assert_int_eq(sql_ll("SELECT count(*) FROM customer_clv v JOIN customers c ON c.id = v.customer_id"
                            " WHERE NOT c.tags @> ARRAY['cdnow-odd'] AND v.run_id = %lld",
                            id),
                     0);

    /* A cohort by first purchase: January 1997, counted from the file; no prospect has a first purchase. */
    run = run_ok(DIRECTOR, "clv",
                 "{\"as_of\":\"" AS_OF "\",\"horizon\":39,\"first_purchase_before\":\"" COHORT_BEFORE "\"}");
    id = jint(run, "id");
    n = history(id, by_sid, others, 8);
    ck_assert_int_eq((long long)n, cohort_size);
    for (int s = 1; s <= NCUST; s++)
        want[s] = custs[s].first_date < COHORT_BEFORE_DATE;
    expect_summaries(id, by_sid, want, 7);
    ck_assert_int_eq(jint(json_object_get(run, "model"), "customers_fitted"), cohort_size);
    ck_assert_int_eq(jint(jpath(run, "stats"), "prospects"), 0);
    expect_scores(run, by_sid, others, 0, n);
    /* And after: the rest of the sample. */
    run = run_ok(ANALYST, "clv",
                 "{\"as_of\":\"" AS_OF "\",\"horizon\":39,\"first_purchase_after\":\"" COHORT_BEFORE "\"}");
    id = jint(run, "id");
    n = history(id, by_sid, others, 8);
    ck_assert_int_eq((long long)n, NCUST - cohort_size);
    for (int s = 1; s <= NCUST; s++)
        want[s] = !want[s];
    expect_summaries(id, by_sid, want, 7);
    crew_stop_worker(&w);
}
END_TEST

START_TEST(day_unit_gives_times_in_days)
{
    ensure_loaded();
    th_api_t w;
    crew_start_worker(&w, "w-days", NULL);
    /* 273 days: the 39 weeks of the reference run. */
    json_t *run = run_ok(ANALYST, "clv", "{\"as_of\":\"" AS_OF "\",\"time_unit\":\"day\",\"horizon\":273}");
    crew_stop_worker(&w);
    long long id = jint(run, "id");
    row_t *by_sid = keep(calloc(NCUST + 1, sizeof(row_t))), others[8];
    size_t n = history(id, by_sid, others, 8);
    ck_assert_int_eq((long long)n, NCUST + NPROSPECT);
    expect_summaries(id, by_sid, NULL, 1);
    expect_scores(run, by_sid, others, n - NCUST, n);

    /*
     * The model does not depend on the unit: alpha is a rate per unit (x 7),
     * the others are shapes, and the log-likelihood of the x repeat purchase
     * times loses log 7 per purchase (2457 in all).
     */
    expect_run_num(run, "model.bgnbd.r", PUB_R, 2e-3 * PUB_R);
    expect_run_num(run, "model.bgnbd.alpha", 7 * PUB_ALPHA, 2e-3 * 7 * PUB_ALPHA);
    expect_run_num(run, "model.bgnbd.a", PUB_A, 2e-3 * PUB_A);
    expect_run_num(run, "model.bgnbd.b", PUB_B, 2e-3 * PUB_B);
    expect_run_num(run, "model.bgnbd.log_likelihood", PUB_LL - 2457 * log(7), 0.05);
    expect_run_num(run, "model.gamma_gamma.p", PUB_P, 0.01);
    expect_near(by_sid[1].p_alive, 0.7266, 5e-4, "P(alive) of customer 1 (days)");
    expect_near(by_sid[1].expected_purchases, 1.226, 3e-3, "expected purchases of customer 1 in 273 days");
    json_t *cal = jpath(run, "stats.calibration");
    ck_assert_msg(fabs(num_at(cal, "duration") - 273) <= 1 + 1e-9, "calibration.duration: %s days",
                  jshow(json_object_get(cal, "duration")));
    ck_assert_msg(num_at(cal, "actual") == (double)holdout_days, "calibration.actual is %s, the file has %lld",
                  jshow(json_object_get(cal, "actual")), holdout_days);

    /* The customers' current CLV says so. */
    th_resp_t *r = http_get(ANALYST, fmt("/v1/customers/%lld", customer_id_of("cdnow-1")));
    expect_status(r, 200);
    json_t *clv = jpath(r->json, "analytics.clv");
    ck_assert_str_eq(jstr(clv, "time_unit"), "day");
    ck_assert_int_eq(jint(clv, "horizon"), 273);
    ck_assert_msg(num_at(clv, "t_x") == 213 && num_at(clv, "T") == 272, "customer 1 in days: %s", jshow(clv));
}
END_TEST

START_TEST(cancel_stops_a_running_clv_run)
{
    ensure_loaded();
    long long before = sql_ll("SELECT count(*) FROM customer_clv_history");
    const char *current = table_sum("customer_clv");
    /* The run waits in its read of the orders while this lock is held, heartbeating. */
    PGconn *lock = pg_open();
    ck_assert_int_eq(pg_do(lock, "BEGIN; LOCK TABLE orders IN ACCESS EXCLUSIVE MODE"), 0);
    th_api_t w;
    crew_start_worker(&w, "w-cancel", NULL);
    long long id = request_run(ANALYST, "clv", MAIN_PARAMS);
    wait_run(id, "running", 20000);
    usleep(300 * 1000);

    th_resp_t *r = http_delete(ANALYST, fmt("/v1/analytics/runs/%lld", id), NULL);
    expect_status(r, 200);
    ck_assert_str_eq(jstr(r->json, "status"), "cancelled");
    expect_problem(http_delete(ANALYST, fmt("/v1/analytics/runs/%lld", id), NULL), 409, "conflict");
    /* The worker lets go of the run while the lock is still held. */
    long long until = th_now_ms() + 5000;
    while (sql_ll("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'clientele-worker-job'"
                  " AND datname = current_database() AND state = 'active'") != 0) {
        ck_assert_msg(th_now_ms() < until, "the worker is still busy with cancelled run %lld after 5 s", id);
        usleep(50 * 1000);
    }
    PQclear(PQexec(lock, "ROLLBACK"));
    PQfinish(lock);
    usleep(500 * 1000);

    json_t *run = get_run(id);
    ck_assert_str_eq(jstr(run, "status"), "cancelled");
    ck_assert_msg(json_is_null(json_object_get(run, "model")) && json_is_null(json_object_get(run, "stats")),
                  "cancelled run %lld has results: %s", id, jshow(run));
    ck_assert_int_eq(sql_ll("SELECT count(*) FROM customer_clv_history WHERE run_id = %lld", id), 0);
    ck_assert_int_eq(sql_ll("SELECT count(*) FROM customer_clv_history"), before);
    ck_assert_str_eq(table_sum("customer_clv"), current);

    /* The worker is free for the next run. */
    json_t *next = run_ok(ANALYST, "clv", "{\"as_of\":\"" AS_OF "\",\"horizon\":39,\"tag\":\"cdnow-odd\"}");
    ck_assert_int_eq(sql_ll("SELECT count(*) FROM customer_clv_history WHERE run_id = %lld", jint(next, "id")),
                     odd_size + NPROSPECT);
    crew_stop_worker(&w);
}
END_TEST

START_TEST(rfm_and_clv_keep_each_others_results)
{
    ensure_loaded();
    json_t *ref = main_run(0);
    th_api_t w;
    crew_start_worker(&w, "w-both", NULL);

    /* An RFM run leaves the CLV results alone. */
    const char *clv_before = table_sum("customer_clv"), *clv_hist = table_sum("customer_clv_history");
    json_t *rfm = run_ok(ANALYST, "rfm", "{\"as_of\":\"" AS_OF "\"}");
    ck_assert_str_eq(table_sum("customer_clv"), clv_before);
    ck_assert_str_eq(table_sum("customer_clv_history"), clv_hist);
    ck_assert_int_eq(sql_ll("SELECT count(*) FROM customer_analytics WHERE run_id = %lld", jint(rfm, "id")),
                     NCUST + NPROSPECT);

    /* A CLV run leaves the RFM results alone. */
    const char *rfm_before = table_sum("customer_analytics"), *rfm_hist = table_sum("customer_analytics_history");
    json_t *clv = run_ok(ANALYST, "clv", MAIN_PARAMS);
    ck_assert_str_eq(table_sum("customer_analytics"), rfm_before);
    ck_assert_str_eq(table_sum("customer_analytics_history"), rfm_hist);
    ck_assert_int_eq(sql_ll("SELECT count(*) FROM customer_clv WHERE run_id = %lld", jint(clv, "id")),
                     NCUST + NPROSPECT);
    crew_stop_worker(&w);

    /* The same data, the same model. */
    static const char *const keys[] = {"model.bgnbd.r",          "model.bgnbd.alpha",   "model.bgnbd.a",
                                       "model.bgnbd.b",          "model.gamma_gamma.p", "model.gamma_gamma.q",
                                       "model.gamma_gamma.gamma"};
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        expect_run_num(clv, keys[i], num_at(ref, keys[i]), 1e-6 * fabs(num_at(ref, keys[i])));

    /* A customer shows both. */
    th_resp_t *r = http_get(ANALYST, fmt("/v1/customers/%lld", customer_id_of("cdnow-1")));
    expect_status(r, 200);
    json_t *a = jget(r, "analytics");
    ck_assert_int_eq(jint(a, "run_id"), jint(rfm, "id"));
    ck_assert_msg(jstr(a, "segment") != NULL && jstr(a, "tier") != NULL, "rfm results: %s", jshow(a));
    ck_assert_int_eq(jint(json_object_get(a, "clv"), "run_id"), jint(clv, "id"));
    expect_near(num_at(a, "clv.p_alive"), 0.7266, 5e-4, "P(alive) of customer 1");
}
END_TEST

/* --- the suite -------------------------------------------------------------------------------------------------- */

static Suite *clv_suite(void)
{
    Suite *s = suite_create("clv");
    TCase *tc = tcase_create("cdnow");
    tcase_set_timeout(tc, 180);
    tcase_add_test(tc, cdnow_reproduces_the_published_model);
    tcase_add_test(tc, customers_embed_the_latest_clv);
    tcase_add_test(tc, tag_and_cohort_runs_include_only_their_customers);
    tcase_add_test(tc, day_unit_gives_times_in_days);
    tcase_add_test(tc, cancel_stops_a_running_clv_run);
    tcase_add_test(tc, rfm_and_clv_keep_each_others_results);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    read_files();
    build_bodies();
    return crew_main(&conf, clv_suite);
}
