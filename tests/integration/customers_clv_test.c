/*
 * tests/integration/customers_clv_test.c - the customers' CLV as the API
 * shows it: `analytics.clv` in customer documents, the `p_alive_below`
 * filter and the `clv` / `-clv` sort orders of GET /v1/customers, against
 * the real API, PostgreSQL and Redis.
 *
 * No worker runs here: a clv run's results are simulated by writing
 * customer_clv rows (and customer_analytics rows for RFM) with SQL, the
 * way a worker leaves them. Expected answers come from oracles written
 * here (visibility by owner and team, the order by value then id, money
 * compared in cents), never from the API's SQL.
 *
 * main() builds the suite's database, adds one user per role, starts one
 * API process and logs every user in once; Check forks each test, which
 * inherits the tokens. Each test creates its own customers, tagged
 * uniquely, and lists only its tag, so tests do not see each other's
 * customers. Everything allocated stays reachable from a global list, so
 * LeakSanitizer stays quiet.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "tests/support/crew.h"

#define PASSWORD "customers-clv-suite-password"

static const char *const api_env[] = {
    "CLIENTELE_THREADS=2",
    "CLIENTELE_JWT_SECRET=customers-clv-suite-secret-0123456789abcd",
    NULL,
};

static const crew_conf_t conf = {
    .name = "customers_clv",
    .redis_db = 12,
    .env = api_env,
    .password = PASSWORD,
    .domain = "clv.test",
    .resource = "customers",
    .item = "record",
};

#define REP_N REP1
#define REP_S REPS

static const char *jshow(const json_t *v)
{
    if (v == NULL)
        return "(absent)";
    return keep(json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_SORT_KEYS));
}

static void expect_json_eq_(const json_t *got, const json_t *want, const char *what, int line)
{
    ck_assert_msg(got != NULL && json_equal((json_t *)got, (json_t *)want), "line %d: %s:\n  got  %s\n  want %s", line,
                  what, jshow(got), jshow(want));
}
#define expect_json_eq(got, want, what) expect_json_eq_((got), (want), (what), __LINE__)

__attribute__((format(printf, 1, 2))) static void sql_do(const char *f, ...)
{
    va_list ap;
    char *sql;
    va_start(ap, f);
    if (vasprintf(&sql, f, ap) < 0)
        abort();
    va_end(ap);
    keep(sql);
    ck_assert_msg(th_sql(db_url, sql) == 0, "statement failed: %s", sql);
}

/* --- customers and simulated results ------------------------------------------ */

typedef struct {
    long long id, owner, team; /* team 0: none */
    /* The simulated CLV row: has_row 0 for none; clv NULL for no value. */
    int has_row;
    const char *clv, *p_alive;
} cust_t;

/* Creates a customer owned by `owner` (in the owner's team, or none when no_team), tagged, as the director. */
static cust_t make_customer(int owner, int no_team, const char *tag)
{
    json_t *b = json_pack("{s:s, s:s, s:I, s:[s]}", "kind", "company", "name", uniq("Customer"), "owner_id",
                          (json_int_t)users[owner].id, "tags", tag);
    if (no_team)
        json_object_set_new(b, "team_id", json_null());
    th_resp_t *r = http_post(DIRECTOR, "/v1/customers", jdump(b));
    expect_status(r, 201);
    cust_t c = {jint(r->json, "id"),
                users[owner].id,
                json_is_integer(jget(r, "team_id")) ? jint(r->json, "team_id") : 0,
                0,
                NULL,
                NULL};
    return c;
}

/* A succeeded clv run, as a worker leaves it; returns its id. */
static long long sim_clv_run(void)
{
    return sql_ll("INSERT INTO analytics_runs (kind, status, params, progress, customers_done, started_at, finished_at)"
                  " VALUES ('clv', 'succeeded', '{}', 1, 0, now() - interval '1 minute', now()) RETURNING id");
}

static const char *q_val(const char *s)
{
    return s != NULL ? fmt("'%s'", s) : "NULL";
}

/*
 * Writes c's current CLV as a worker would: p_alive and clv are decimal
 * text or NULL; a row without p_alive is a prospect's (every value null).
 */
static void sim_clv(long long run, cust_t *c, const char *p_alive, const char *clv)
{
    const char *lifecycle = p_alive == NULL ? "prospect" : atof(p_alive) >= 0.7 ? "active" : "churned";
    sql_do("INSERT INTO customer_clv (customer_id, run_id, computed_at, horizon, time_unit, x, t_x, t_cal, zbar,"
           " p_alive, expected_purchases, expected_avg_value, clv, lifecycle)"
           " VALUES (%lld, %lld, '2026-02-01 03:10:00+00', 52, 'week', %s, %s, %s, %s, %s, %s, %s, %s, '%s')",
           c->id, run, p_alive != NULL ? "3" : "NULL", p_alive != NULL ? "10.5" : "NULL",
           p_alive != NULL ? "20.25" : "NULL", p_alive != NULL ? "40.00" : "NULL", q_val(p_alive),
           p_alive != NULL ? "2.5" : "NULL", clv != NULL ? "'40.10'" : "NULL", q_val(clv), lifecycle);
    c->has_row = 1;
    c->clv = clv;
    c->p_alive = p_alive;
}

/* "-123.45" -> -12345 */
static long long cents(const char *s)
{
    int neg = s[0] == '-';
    const char *dot = strchr(s, '.');
    long long whole = atoll(s + neg), frac = 0;
    if (dot != NULL && dot[1] != '\0')
        frac = (dot[1] - '0') * 10 + (dot[2] != '\0' ? dot[2] - '0' : 0);
    return (neg ? -1 : 1) * (whole * 100 + frac);
}

/*
 * The order of sort=clv (desc 0) or -clv (desc 1): customers with a value
 * first, by value and then id; then those without, by id; both in the
 * sort's direction.
 */
static int before(const cust_t *a, const cust_t *b, int desc)
{
    int av = a->clv != NULL, bv = b->clv != NULL;
    if (av != bv)
        return av;
    if (av && cents(a->clv) != cents(b->clv))
        return desc ? cents(a->clv) > cents(b->clv) : cents(a->clv) < cents(b->clv);
    return desc ? a->id > b->id : a->id < b->id;
}

/* The ids of cs[0..n) that `who` may read, in the order of sort=clv / -clv, as a JSON array. */
static json_t *expected_order(const cust_t *cs, size_t n, int who, int desc)
{
    const cust_t **v = keep(calloc(n + 1, sizeof(*v)));
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (can_read(who, cs[i].owner, cs[i].team))
            v[m++] = &cs[i];
    for (size_t i = 1; i < m; i++)
        for (size_t j = i; j > 0 && before(v[j], v[j - 1], desc); j--) {
            const cust_t *t = v[j];
            v[j] = v[j - 1];
            v[j - 1] = t;
        }
    json_t *ids = keep(json_array());
    for (size_t i = 0; i < m; i++)
        json_array_append_new(ids, json_integer(v[i]->id));
    return ids;
}

static json_t *ids_of(json_t *items)
{
    json_t *ids = keep(json_array()), *it;
    size_t i;
    json_array_foreach(items, i, it) json_array_append_new(ids, json_integer(jint(it, "id")));
    return ids;
}

/* --- the embedded document ---------------------------------------------------- */

START_TEST(customer_embeds_clv_beside_rfm_or_alone)
{
    const char *tag = uniq("embed");
    cust_t both = make_customer(REP_N, 0, tag);
    cust_t clv_only = make_customer(REP_N, 0, tag);
    cust_t rfm_only = make_customer(REP_N, 0, tag);
    cust_t none = make_customer(REP_N, 0, tag);
    cust_t prospect = make_customer(REP_N, 0, tag);
    long long rfm_run = sql_ll("INSERT INTO analytics_runs (kind, status, params, progress, customers_done)"
                               " VALUES ('rfm', 'succeeded', '{}', 1, 0) RETURNING id");
    long long run = sim_clv_run();
    sql_do("INSERT INTO customer_analytics (customer_id, run_id, computed_at, recency_days, frequency, monetary, r,"
           " f, m, segment, lifecycle, tier) VALUES (%lld, %lld, '2026-02-01 03:00:00+00', 4, 12, 900.00, 5, 5, 5,"
           " 'champions', 'active', 'A'), (%lld, %lld, '2026-02-01 03:00:00+00', 4, 12, 900.00, 5, 5, 5,"
           " 'champions', 'active', 'A')",
           both.id, rfm_run, rfm_only.id, rfm_run);
    sql_do("INSERT INTO customer_clv (customer_id, run_id, computed_at, horizon, time_unit, x, t_x, t_cal, zbar,"
           " p_alive, expected_purchases, expected_avg_value, clv, lifecycle) VALUES"
           " (%lld, %lld, '2026-02-01 03:10:00+00', 52, 'week', 3, 10.5, 20.25, 40.00, 0.8125, 2.5, 40.10, 100.25,"
           " 'active'), (%lld, %lld, '2026-02-01 03:10:00+00', 26, 'day', 0, 0, 7, NULL, 0.25, 0.125, NULL, NULL,"
           " 'new')",
           both.id, run, clv_only.id, run);
    sim_clv(run, &prospect, NULL, NULL);

    json_t *clv_both = keep(json_pack(
        "{s:I, s:s, s:f, s:f, s:s, s:s, s:i, s:s, s:s, s:i, s:f, s:f}", "run_id", (json_int_t)run, "computed_at",
        "2026-02-01T03:10:00.000000Z", "p_alive", 0.8125, "expected_purchases", 2.5, "expected_avg_value", "40.10",
        "clv", "100.25", "horizon", 52, "time_unit", "week", "lifecycle", "active", "x", 3, "t_x", 10.5, "T", 20.25));
    json_t *clv_alone = keep(json_pack("{s:I, s:s, s:f, s:f, s:n, s:n, s:i, s:s, s:s, s:i, s:i, s:i}", "run_id",
                                       (json_int_t)run, "computed_at", "2026-02-01T03:10:00.000000Z", "p_alive", 0.25,
                                       "expected_purchases", 0.125, "expected_avg_value", "clv", "horizon", 26,
                                       "time_unit", "day", "lifecycle", "new", "x", 0, "t_x", 0, "T", 7));
    json_t *clv_prospect = keep(json_pack("{s:I, s:s, s:n, s:n, s:n, s:n, s:i, s:s, s:s, s:n, s:n, s:n}", "run_id",
                                          (json_int_t)run, "computed_at", "2026-02-01T03:10:00.000000Z", "p_alive",
                                          "expected_purchases", "expected_avg_value", "clv", "horizon", 52, "time_unit",
                                          "week", "lifecycle", "prospect", "x", "t_x", "T"));
    json_t *rfm =
        keep(json_pack("{s:I, s:s, s:i, s:i, s:s, s:i, s:i, s:i, s:s, s:s, s:s}", "run_id", (json_int_t)rfm_run,
                       "computed_at", "2026-02-01T03:00:00.000000Z", "recency_days", 4, "frequency", 12, "monetary",
                       "900.00", "r", 5, "f", 5, "m", 5, "segment", "champions", "lifecycle", "active", "tier", "A"));
    json_t *no_rfm =
        keep(json_pack("{s:n, s:n, s:n, s:n, s:n, s:n, s:n, s:n, s:n, s:n, s:n}", "run_id", "computed_at",
                       "recency_days", "frequency", "monetary", "r", "f", "m", "segment", "lifecycle", "tier"));

    json_t *want_both = json_deep_copy(rfm);
    json_object_set(want_both, "clv", clv_both);
    json_t *want_clv_only = json_deep_copy(no_rfm);
    json_object_set(want_clv_only, "clv", clv_alone);
    json_t *want_rfm_only = json_deep_copy(rfm);
    json_object_set_new(want_rfm_only, "clv", json_null());
    json_t *want_prospect = json_deep_copy(no_rfm);
    json_object_set(want_prospect, "clv", clv_prospect);
    const struct {
        const cust_t *c;
        json_t *want; /* NULL: analytics is null */
        const char *what;
    } cases[] = {
        {&both, keep(want_both), "rfm and clv"},
        {&clv_only, keep(want_clv_only), "clv only: every rfm member null"},
        {&rfm_only, keep(want_rfm_only), "rfm only: clv null"},
        {&none, NULL, "neither: analytics null"},
        {&prospect, keep(want_prospect), "a clv prospect: clv with null values"},
    };
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        th_resp_t *r = http_get(REP_N, fmt("/v1/customers/%lld", cases[k].c->id));
        expect_status(r, 200);
        json_t *a = jget(r, "analytics");
        if (cases[k].want == NULL)
            ck_assert_msg(json_is_null(a), "%s: analytics %s", cases[k].what, jshow(a));
        else
            expect_json_eq(a, cases[k].want, cases[k].what);
    }

    /* Lists carry the same documents, also with fields=. */
    json_t *items = list_all(DIRECTOR, fmt("/v1/customers?tag=%s&sort=created_at&fields=id,analytics", tag), 50);
    ck_assert_uint_eq(json_array_size(items), 5);
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        json_t *it = json_array_get(items, k);
        ck_assert_int_eq(jint(it, "id"), cases[k].c->id);
        ck_assert_uint_eq(json_object_size(it), 2);
        if (cases[k].want == NULL)
            ck_assert_msg(json_is_null(json_object_get(it, "analytics")), "list, %s", cases[k].what);
        else
            expect_json_eq(json_object_get(it, "analytics"), cases[k].want, fmt("list, %s", cases[k].what));
    }
}
END_TEST

/* --- p_alive_below ---------------------------------------------------------------- */

START_TEST(p_alive_below_keeps_customers_strictly_below_and_within_scope)
{
    const char *tag = uniq("alive");
    long long run = sim_clv_run();
    enum { N = 9 };
    cust_t c[N];
    static const struct {
        int owner, no_team;
        const char *p_alive, *clv; /* p_alive NULL: see row */
        int row;
    } spec[N] = {
        {REP_N, 0, "0.1", "10.00", 1},    {REP_N, 0, "0.3", "20.00", 1}, {REP_S, 0, "0.5", "30.00", 1},
        {REP2, 0, "0.9", "40.00", 1},     {REP_N, 0, NULL, NULL, 1},   /* a prospect: no p_alive */
        {REP_S, 0, NULL, NULL, 0},                                     /* no CLV at all */
        {REP_N, 0, "0.2", NULL, 1},                                    /* p_alive without a value */
        {DIRECTOR, 1, "0.05", "5.00", 1}, {REP_S, 0, "1", "50.00", 1}, /* no team; certainly alive */
    };
    for (int i = 0; i < N; i++) {
        c[i] = make_customer(spec[i].owner, spec[i].no_team, tag);
        if (spec[i].row)
            sim_clv(run, &c[i], spec[i].p_alive, spec[i].clv);
    }
    static const char *const limits[] = {"0.5", ".5", "0.50000", "0.3", "0.05", "0", "1", "1.0", "0.2000001", "0.2"};
    int roles[] = {DIRECTOR, ANALYST, MANAGER, REP_N, REP_S, REP2};
    for (size_t l = 0; l < sizeof(limits) / sizeof(limits[0]); l++) {
        double lim = atof(limits[l]);
        for (size_t w = 0; w < sizeof(roles) / sizeof(roles[0]); w++) {
            int who = roles[w];
            json_t *want = keep(json_array());
            for (int i = 0; i < N; i++)
                if (c[i].p_alive != NULL && atof(c[i].p_alive) < lim && can_read(who, c[i].owner, c[i].team))
                    json_array_append_new(want, json_integer(c[i].id));
            th_resp_t *r =
                http_get(who, fmt("/v1/customers?tag=%s&p_alive_below=%s&sort=created_at&count=true", tag, limits[l]));
            expect_status(r, 200);
            expect_json_eq(ids_of(jget(r, "data")), want, fmt("%s, p_alive_below=%s", who_name[who], limits[l]));
            ck_assert_int_eq(jint(r->json, "total"), (long long)json_array_size(want));
        }
    }
    /* With the CLV sorts and small pages: the same customers, in CLV order. */
    json_t *all = list_all(DIRECTOR, fmt("/v1/customers?tag=%s&p_alive_below=0.5&sort=-clv", tag), 1);
    expect_json_eq(ids_of(all),
                   keep(json_pack("[I, I, I, I]", (json_int_t)c[1].id, (json_int_t)c[0].id, (json_int_t)c[7].id,
                                  (json_int_t)c[6].id)),
                   "p_alive_below=0.5&sort=-clv");
    all = list_all(DIRECTOR, fmt("/v1/customers?tag=%s&p_alive_below=0.5&sort=clv", tag), 2);
    expect_json_eq(ids_of(all),
                   keep(json_pack("[I, I, I, I]", (json_int_t)c[7].id, (json_int_t)c[0].id, (json_int_t)c[1].id,
                                  (json_int_t)c[6].id)),
                   "p_alive_below=0.5&sort=clv");
    /* Combined with another filter. */
    th_resp_t *r =
        http_get(DIRECTOR, fmt("/v1/customers?tag=%s&p_alive_below=0.6&owner_id=%lld&sort=-clv", tag, users[REP_S].id));
    expect_status(r, 200);
    expect_json_eq(ids_of(jget(r, "data")), keep(json_pack("[I]", (json_int_t)c[2].id)), "with owner_id");
}
END_TEST

/* --- sort=clv and sort=-clv ------------------------------------------------------ */

START_TEST(clv_sorts_page_by_value_then_without_value_for_every_scope)
{
    const char *tag = uniq("sort");
    long long run = sim_clv_run();
    enum { N = 16 };
    static const struct {
        int owner, no_team, row;
        const char *p_alive, *clv;
    } spec[N] = {
        /* Values compare as numbers ("99.99" < "1000000.00"), negative ones too, with ties. */
        {REP_N, 0, 1, "0.9", "99.99"},
        {REP_S, 0, 1, "0.8", "1000000.00"},
        {REP_N, 0, 1, "0.7", "250.50"},
        {REP2, 0, 1, "0.6", "250.50"},
        {REP_S, 0, 1, "0.5", "0.00"},
        {REP_N, 0, 1, "0.4", "-12.30"},
        {DIRECTOR, 1, 1, "0.3", "7.05"},
        {REP_N, 0, 1, "0.95", "250.50"},
        /* Without a value: a prospect's row, a row without a spend model, no row at all. */
        {REP_N, 0, 1, NULL, NULL},
        {REP_S, 0, 1, "0.2", NULL},
        {REP_N, 0, 0, NULL, NULL},
        {REP2, 0, 0, NULL, NULL},
        {DIRECTOR, 1, 0, NULL, NULL},
        {REP_N, 0, 1, "0.1", NULL},
        {REP_S, 0, 0, NULL, NULL},
        {REP_N, 0, 1, "0.99", "5000.00"},
    };
    cust_t c[N];
    for (int i = 0; i < N; i++) {
        c[i] = make_customer(spec[i].owner, spec[i].no_team, tag);
        if (spec[i].row)
            sim_clv(run, &c[i], spec[i].p_alive, spec[i].clv);
    }
    /* A deleted customer with the highest value is never listed. */
    cust_t gone = make_customer(REP_N, 0, tag);
    sim_clv(run, &gone, "0.9", "9999999.00");
    expect_status(http_delete(DIRECTOR, fmt("/v1/customers/%lld", gone.id), NULL), 204);

    /* Spelled out once for the director: -clv from the top down, then those without a value by id descending. */
    json_t *want_desc = keep(json_pack(
        "[I, I, I, I, I, I, I, I, I, I, I, I, I, I, I, I]", (json_int_t)c[1].id, (json_int_t)c[15].id,
        (json_int_t)c[7].id, (json_int_t)c[3].id, (json_int_t)c[2].id, (json_int_t)c[0].id, (json_int_t)c[6].id,
        (json_int_t)c[4].id, (json_int_t)c[5].id, (json_int_t)c[14].id, (json_int_t)c[13].id, (json_int_t)c[12].id,
        (json_int_t)c[11].id, (json_int_t)c[10].id, (json_int_t)c[9].id, (json_int_t)c[8].id));
    expect_json_eq(expected_order(c, N, DIRECTOR, 1), want_desc, "the oracle itself");

    int roles[] = {DIRECTOR, ANALYST, MANAGER, REP_N, REP_S, REP2};
    static const int limits[] = {1, 2, 3, 7, 8, 9, 50};
    for (int desc = 0; desc < 2; desc++) {
        const char *sort = desc ? "-clv" : "clv";
        for (size_t w = 0; w < sizeof(roles) / sizeof(roles[0]); w++) {
            int who = roles[w];
            json_t *want = expected_order(c, N, who, desc);
            for (size_t l = 0; l < sizeof(limits) / sizeof(limits[0]); l++) {
                json_t *all = list_all(who, fmt("/v1/customers?tag=%s&sort=%s", tag, sort), limits[l]);
                expect_json_eq(ids_of(all), want, fmt("%s, sort=%s, limit=%d", who_name[who], sort, limits[l]));
            }
            th_resp_t *r = http_get(who, fmt("/v1/customers?tag=%s&sort=%s&count=true&limit=1", tag, sort));
            expect_status(r, 200);
            ck_assert_int_eq(jint(r->json, "total"), (long long)json_array_size(want));
        }
    }

    /* The documents in the list show the value the order follows. */
    th_resp_t *r = http_get(DIRECTOR, fmt("/v1/customers?tag=%s&sort=-clv&limit=2&fields=id,analytics", tag));
    expect_status(r, 200);
    json_t *first = json_array_get(jget(r, "data"), 0);
    ck_assert_str_eq(jstr(json_object_get(json_object_get(first, "analytics"), "clv"), "clv"), "1000000.00");

    /* Pages do not repeat or skip a customer when values change between pages only elsewhere. */
    r = http_get(DIRECTOR, fmt("/v1/customers?tag=%s&sort=-clv&limit=9", tag));
    expect_status(r, 200);
    const char *cursor = jstr(r->json, "next_cursor");
    ck_assert_ptr_nonnull(cursor);
    cust_t late = make_customer(REP_N, 0, tag);
    sim_clv(run, &late, "0.9", "2000000.00"); /* above the cursor: belongs on page one */
    r = http_get(DIRECTOR, fmt("/v1/customers?tag=%s&sort=-clv&limit=9&cursor=%s", tag, cursor));
    expect_status(r, 200);
    json_t *rest = keep(json_array());
    for (size_t i = 9; i < json_array_size(want_desc); i++)
        json_array_append(rest, json_array_get(want_desc, i));
    expect_json_eq(ids_of(jget(r, "data")), rest, "the second page after a change above the cursor");
    ck_assert(json_is_null(jget(r, "next_cursor")));

    /* A cursor belongs to its sort order. */
    r = http_get(DIRECTOR, fmt("/v1/customers?tag=%s&sort=clv&cursor=%s", tag, cursor));
    expect_problem(r, 400, "bad-request");
    expect_error(r, "cursor", "invalid_value");
}
END_TEST

/* --- bad values ------------------------------------------------------------------ */

/* A cursor as the API makes them: base64url of compact JSON, unpadded. */
static const char *forge_cursor(const char *json)
{
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t n = strlen(json);
    char *out = keep(calloc(1, 4 * n / 3 + 8)), *o = out;
    const unsigned char *s = (const unsigned char *)json;
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)s[i] << 16 | (i + 1 < n ? (unsigned)s[i + 1] << 8 : 0) | (i + 2 < n ? s[i + 2] : 0);
        *o++ = b64[v >> 18 & 63];
        *o++ = b64[v >> 12 & 63];
        if (i + 1 < n)
            *o++ = b64[v >> 6 & 63];
        if (i + 2 < n)
            *o++ = b64[v & 63];
    }
    return out;
}

START_TEST(bad_clv_parameters_answer_400_naming_the_parameter)
{
    static const struct {
        const char *query, *field, *code;
    } bad[] = {
        {"p_alive_below=", "p_alive_below", "invalid_format"},
        {"p_alive_below=abc", "p_alive_below", "invalid_format"},
        {"p_alive_below=-0.1", "p_alive_below", "invalid_format"},
        {"p_alive_below=%2B0.5", "p_alive_below", "invalid_format"},
        {"p_alive_below=1e-1", "p_alive_below", "invalid_format"},
        {"p_alive_below=0.5x", "p_alive_below", "invalid_format"},
        {"p_alive_below=%200.5", "p_alive_below", "invalid_format"},
        {"p_alive_below=NaN", "p_alive_below", "invalid_format"},
        {"p_alive_below=inf", "p_alive_below", "invalid_format"},
        {"p_alive_below=0x1", "p_alive_below", "invalid_format"},
        {"p_alive_below=.", "p_alive_below", "invalid_format"},
        {"p_alive_below=1.", "p_alive_below", "invalid_format"},
        {"p_alive_below=0,5", "p_alive_below", "invalid_format"},
        {"p_alive_below=1.5", "p_alive_below", "out_of_range"},
        {"p_alive_below=1.0001", "p_alive_below", "out_of_range"},
        {"p_alive_below=2", "p_alive_below", "out_of_range"},
        {"p_alive_below=0.5&p_alive_below=0.6", "p_alive_below", "repeated"},
        {"sort=clvx", "sort", "invalid_value"},
        {"sort=--clv", "sort", "invalid_value"},
        {"sort=CLV", "sort", "invalid_value"},
        {"sort=clv&cursor=not-a-cursor", "cursor", "invalid_value"},
    };
    for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
        th_resp_t *r = http_get(DIRECTOR, fmt("/v1/customers?%s", bad[k].query));
        expect_problem(r, 400, "bad-request");
        expect_error(r, bad[k].field, bad[k].code);
    }
    /* Cursors are signed: a forged one is refused before anything reads it, whatever its key. */
    static const char *const keys[] = {"abc", "1e5", "NaN", "1.2.3", " 1", "Infinity"};
    for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
        const char *cur = forge_cursor(fmt("{\"i\":1,\"k\":\"%s\",\"s\":7}", keys[k]));
        th_resp_t *r = http_get(DIRECTOR, fmt("/v1/customers?sort=-clv&cursor=%s", cur));
        expect_problem(r, 400, "bad-request");
        expect_error(r, "cursor", "invalid_value");
    }
    th_resp_t *r =
        http_get(DIRECTOR, fmt("/v1/customers?sort=-clv&cursor=%s", forge_cursor("{\"i\":1,\"k\":\"-0.5\",\"s\":7}")));
    expect_problem(r, 400, "bad-request");
    expect_error(r, "cursor", "invalid_value");
}
END_TEST

/* --- the suite -------------------------------------------------------------------- */

static Suite *customers_clv_suite(void)
{
    Suite *s = suite_create("customers_clv");
    TCase *tc = tcase_create("clv");
    tcase_set_timeout(tc, 180);
    tcase_add_test(tc, customer_embeds_clv_beside_rfm_or_alone);
    tcase_add_test(tc, p_alive_below_keeps_customers_strictly_below_and_within_scope);
    tcase_add_test(tc, clv_sorts_page_by_value_then_without_value_for_every_scope);
    tcase_add_test(tc, bad_clv_parameters_answer_400_naming_the_parameter);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return crew_main(&conf, customers_clv_suite);
}
