/*
 * tests/integration/analytics_api_test.c - /v1/analytics (runs, results,
 * schedules), the customers' `analytics` member and their segment,
 * lifecycle and tier filters, against the real API, PostgreSQL and Redis.
 *
 * No worker runs in this suite: the API side only. Runs requested here stay
 * queued; results are simulated by writing rows with SQL (a succeeded run,
 * its customer_analytics_history rows, customer_analytics rows), and the
 * expected answers come from oracles written here (scopes by owner and
 * team, counts, sums in cents, the transition matrix, next fire times from
 * PostgreSQL's own time zone arithmetic), never from the API's SQL.
 *
 * main() builds the suite's database, adds one user per role, starts one
 * API process and logs every user in once (argon2 is slow under ASan);
 * Check forks each test, which inherits the tokens and talks to the API
 * over HTTP. Tests run one after the other and do not depend on each
 * other: each creates its own customers (tagged uniquely) and its own runs
 * and schedules, and asks for results of its own runs. Everything a test
 * allocates stays reachable from a global list, so LeakSanitizer stays
 * quiet without a free() after every call.
 */
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <check.h>

#include "tests/support/crew.h"

#define PASSWORD "analytics-suite-password"

static const char *const api_env[] = {
    "CLIENTELE_THREADS=2",
    "CLIENTELE_JWT_SECRET=analytics-suite-secret-0123456789abcdefgh",
    NULL,
};

static const crew_conf_t conf = {
    .name = "analytics_api",
    .redis_db = 8,
    .env = api_env,
    .password = PASSWORD,
    .domain = "analytics.test",
    .resource = "customers",
    .item = "record",
};

/* This suite's names for crew members (tests/support/crew.h): integration has no analytics permission. */
#define REP_N REP1
#define REP_S REPS
#define INTEG INTEGRATION
#define REDIS_DB (conf.redis_db)
#define call call_as
/* Parsed documents stay reachable until the process exits, like everything else in these tests. */
#define jparse(text) ((json_t *)keep(jparse(text)))

static const char *jshow(const json_t *v)
{
    if (v == NULL)
        return "(absent)";
    return keep(json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_SORT_KEYS));
}

/* A request to another API process (the second, empty database). */
static th_resp_t *call_port(int port, const char *token, const char *method, const char *path, const char *ctype,
                            const char *body, const char *h1, const char *h2)
{
    const char *h[6];
    int n = 0;
    char auth[2200];
    if (token != NULL)
        h[n++] = th_bearer(token, auth, sizeof(auth));
    if (ctype != NULL)
        h[n++] = fmt("Content-Type: %s", ctype);
    if (h1 != NULL)
        h[n++] = h1;
    if (h2 != NULL)
        h[n++] = h2;
    h[n] = NULL;
    th_resp_t *r = keep(calloc(1, sizeof(*r)));
    if (th_http(port, method, path, h, body, body != NULL ? strlen(body) : 0, r) != 0)
        r->status = 0;
    if (r->head != NULL)
        keep(r->head);
    if (r->body != NULL)
        keep(r->body);
    return r;
}

/* A 422 (validation-failed) naming field with code, and nothing about other fields unless allowed. */
#define expect_invalid(r, field, code)                                                                                 \
    do {                                                                                                               \
        expect_problem((r), 422, "validation-failed");                                                                 \
        expect_error((r), (field), (code));                                                                            \
    } while (0)

static void expect_json_eq_(const json_t *got, const json_t *want, const char *what, int line)
{
    ck_assert_msg(got != NULL && json_equal((json_t *)got, (json_t *)want), "line %d: %s:\n  got  %s\n  want %s", line,
                  what, jshow(got), jshow(want));
}
#define expect_json_eq(got, want, what) expect_json_eq_((got), (want), (what), __LINE__)

/* --- SQL -------------------------------------------------------------------- */

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
    int rc = th_sql_value(db_url, sql, out, 4096);
    ck_assert_msg(rc == 0, "query returned no row: %s", sql);
    return out;
}

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

/* --- time ------------------------------------------------------------------- */

/* Seconds of "YYYY-MM-DDTHH:MM:SS..." (UTC assumed); -1 when it does not start so. */
static long long utc_seconds(const char *s)
{
    struct tm tm = {0};
    if (s == NULL || sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour, &tm.tm_min,
                            &tm.tm_sec) != 6)
        return -1;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return (long long)timegm(&tm);
}

/* "2026-01-31T12:00:00.000000Z": the API's response timestamp format. */
static int is_api_timestamp(const char *s)
{
    int y, mo, d, h, mi, sec, us, n = 0;
    return s != NULL && strlen(s) == 27 &&
           sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d.%6dZ%n", &y, &mo, &d, &h, &mi, &sec, &us, &n) == 7 && n == 27;
}

/* "2026-01-31T12:00:00Z" */
static int is_second_timestamp(const char *s)
{
    int y, mo, d, h, mi, sec, n = 0;
    return s != NULL && strlen(s) == 20 &&
           sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2dZ%n", &y, &mo, &d, &h, &mi, &sec, &n) == 6 && n == 20;
}

/*
 * The oracle for schedules: the first instant after now at which the wall
 * clock of `zone` shows hh:mm on a day with ISO weekday `isodow` (0: any) and
 * day of month `mday` (0: any), from PostgreSQL's time zone arithmetic, as
 * "YYYY-MM-DDTHH:MM:SS" in UTC.
 */
static const char *pg_next(const char *zone, int hh, int mm, int isodow, int mday)
{
    return sql_text("SELECT to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS') FROM ("
                    " SELECT ((d::date + make_time(%d, %d, 0)) AT TIME ZONE '%s') AS t, d FROM generate_series("
                    "  (now() AT TIME ZONE '%s')::date::timestamp, (now() AT TIME ZONE '%s')::date::timestamp"
                    "  + interval '62 days', interval '1 day') d) x"
                    " WHERE t > now() AND (%d = 0 OR extract(isodow FROM d) = %d)"
                    " AND (%d = 0 OR extract(day FROM d) = %d) ORDER BY t LIMIT 1",
                    hh, mm, zone, zone, zone, isodow, isodow, mday, mday);
}

/* --- customers and simulated results ------------------------------------------ */

typedef struct {
    long long id, owner, team; /* team 0: none */
} cust_t;

/*
 * Creates a customer owned by user `owner` (as the director), tagged; team:
 * -1 the owner's team, 0 none, else that team.
 */
static cust_t make_customer(int owner, long long team, const char *tag)
{
    json_t *b = json_pack("{s:s, s:s, s:I, s:[s]}", "kind", "company", "name", uniq("Customer"), "owner_id",
                          (json_int_t)users[owner].id, "tags", tag);
    if (team >= 0)
        json_object_set_new(b, "team_id", team > 0 ? json_integer(team) : json_null());
    th_resp_t *r = http_post(DIRECTOR, "/v1/customers", jdump(b));
    expect_status(r, 201);
    cust_t c = {jint(r->json, "id"), users[owner].id,
                json_is_integer(jget(r, "team_id")) ? jint(r->json, "team_id") : 0};
    if (team >= 0)
        ck_assert_int_eq(c.team, team);
    return c;
}

/* May `who` see a customer's analytics? (analytics read scope: rep own, manager team, else all) */
static int can_see(int who, const cust_t *c)
{
    switch (who) {
    case REP_N:
    case REP_S:
        return c->owner == users[who].id;
    case MANAGER:
        return c->team != 0 && c->team == users[MANAGER].team_id;
    default:
        return 1;
    }
}

/* One customer's results in one run; NULL / -1 / 0 stand for SQL NULL. */
typedef struct {
    const char *segment, *lifecycle, *tier, *monetary;
    int recency, frequency, r, f, m;
} res_t;

static const char *q_text(const char *s)
{
    return s != NULL ? fmt("'%s'", s) : "NULL";
}

static const char *q_int(int v, int null_value)
{
    return v == null_value ? "NULL" : fmt("%d", v);
}

#define RFM_PARAMS(as_of)                                                                                              \
    "{\"as_of\": \"" as_of "\", \"lookback_days\": null, \"tag\": null, \"new_days\": 30, \"active_days\": 90,"        \
    " \"churn_days\": 180, \"a_share\": \"0.80\", \"b_share\": \"0.95\"}"

/* Inserts a run as a worker would leave it; finished: an SQL expression (or NULL). Returns its id. */
static long long sim_run(const char *kind, const char *status, const char *params, const char *finished)
{
    return sql_ll("INSERT INTO analytics_runs (kind, status, params, progress, customers_done, started_at, finished_at)"
                  " VALUES ('%s', '%s', '%s', %s, 0, %s, %s) RETURNING id",
                  kind, status, params, strcmp(status, "succeeded") == 0 ? "1" : "0",
                  strcmp(status, "queued") == 0 ? "NULL" : "now() - interval '1 minute'",
                  finished != NULL ? finished : "NULL");
}

static void sim_history(long long run, long long customer, const res_t *x)
{
    sql_do("INSERT INTO customer_analytics_history (run_id, customer_id, recency_days, frequency, monetary, r, f, m,"
           " segment, lifecycle, tier) VALUES (%lld, %lld, %s, %s, %s, %s, %s, %s, '%s', '%s', %s)",
           run, customer, q_int(x->recency, -1), q_int(x->frequency, -1), q_text(x->monetary), q_int(x->r, 0),
           q_int(x->f, 0), q_int(x->m, 0), x->segment, x->lifecycle, q_text(x->tier));
}

static void sim_current(long long run, const char *computed_at, long long customer, const res_t *x)
{
    sql_do("INSERT INTO customer_analytics (customer_id, run_id, computed_at, recency_days, frequency, monetary, r, f,"
           " m, segment, lifecycle, tier) VALUES (%lld, %lld, '%s', %s, %s, %s, %s, %s, %s, '%s', '%s', %s)",
           customer, run, computed_at, q_int(x->recency, -1), q_int(x->frequency, -1), q_text(x->monetary),
           q_int(x->r, 0), q_int(x->f, 0), q_int(x->m, 0), x->segment, x->lifecycle, q_text(x->tier));
}

/* The analytics object the API should show for x (without run_id/computed_at/as_of). */
static json_t *res_json(const res_t *x)
{
    json_t *o = json_object();
    json_object_set_new(o, "recency_days", x->recency < 0 ? json_null() : json_integer(x->recency));
    json_object_set_new(o, "frequency", x->frequency < 0 ? json_null() : json_integer(x->frequency));
    json_object_set_new(o, "monetary", x->monetary != NULL ? json_string(x->monetary) : json_null());
    json_object_set_new(o, "r", x->r == 0 ? json_null() : json_integer(x->r));
    json_object_set_new(o, "f", x->f == 0 ? json_null() : json_integer(x->f));
    json_object_set_new(o, "m", x->m == 0 ? json_null() : json_integer(x->m));
    json_object_set_new(o, "segment", json_string(x->segment));
    json_object_set_new(o, "lifecycle", json_string(x->lifecycle));
    json_object_set_new(o, "tier", x->tier != NULL ? json_string(x->tier) : json_null());
    return keep(o);
}

/* "123.45" -> 12345 */
static long long cents(const char *s)
{
    int neg = s[0] == '-';
    long long whole = 0, frac = 0;
    const char *dot = strchr(s, '.');
    whole = atoll(s + neg);
    if (dot != NULL)
        frac = dot[1] == '\0' ? 0 : (dot[2] == '\0' ? (dot[1] - '0') * 10 : (dot[1] - '0') * 10 + (dot[2] - '0'));
    return (neg ? -1 : 1) * (whole * 100 + frac);
}

static const char *money(long long c)
{
    return fmt("%s%lld.%02lld", c < 0 ? "-" : "", llabs(c) / 100, llabs(c) % 100);
}

/* part / total rounded half up to 6 places, "0.824105" (both positive). */
static const char *share6(long long part, long long total)
{
    long long num = part * 1000000LL, q = num / total, rem = num % total;
    if (2 * rem >= total)
        q++;
    return fmt("%lld.%06lld", q / 1000000, q % 1000000);
}

/* The summary `who` should get for run `run` whose rows are (custs[i], res[i]). */
static json_t *expected_summary(int who, long long run, const cust_t *custs, const res_t *res, size_t n)
{
    json_t *segs = json_object(), *lifes = json_object(), *tiers = json_object();
    long long total = 0, count = 0, tier_n[3] = {0}, tier_c[3] = {0};
    for (size_t i = 0; i < n; i++) {
        if (!can_see(who, &custs[i]))
            continue;
        count++;
        json_object_set_new(segs, res[i].segment, json_integer(jint(segs, res[i].segment) + 1));
        json_object_set_new(lifes, res[i].lifecycle, json_integer(jint(lifes, res[i].lifecycle) + 1));
        long long c = res[i].monetary != NULL ? cents(res[i].monetary) : 0;
        total += c;
        if (res[i].tier != NULL) {
            tier_n[res[i].tier[0] - 'A']++;
            tier_c[res[i].tier[0] - 'A'] += c;
        }
    }
    for (int t = 0; t < 3; t++) {
        if (tier_n[t] == 0)
            continue;
        json_object_set_new(tiers, fmt("%c", 'A' + t),
                            json_pack("{s:I, s:s, s:o}", "customers", (json_int_t)tier_n[t], "revenue",
                                      money(tier_c[t]), "revenue_share",
                                      total > 0 ? json_string(share6(tier_c[t], total)) : json_null()));
    }
    return keep(json_pack("{s:I, s:I, s:s, s:o, s:o, s:o}", "run_id", (json_int_t)run, "customers", (json_int_t)count,
                          "revenue", money(total), "segments", segs, "lifecycles", lifes, "tiers", tiers));
}

static const char *const segment_order[11] = {
    "champions",      "loyal_customers", "potential_loyalists", "new_customers", "promising", "need_attention",
    "about_to_sleep", "at_risk",         "cant_lose_them",      "hibernating",   "prospect"};

static int seg_index(const char *s)
{
    for (int i = 0; i < 11; i++)
        if (strcmp(segment_order[i], s) == 0)
            return i;
    ck_abort_msg("unknown segment %s", s);
    return -1;
}

/* --- runs: create ------------------------------------------------------------ */

static const char *rfm_default_keys[] = {"as_of",       "lookback_days", "tag",     "new_days",
                                         "active_days", "churn_days",    "a_share", "b_share"};
static const char *clv_default_keys[] = {
    "as_of",         "time_unit", "horizon", "discount_rate",        "alive_active",
    "alive_at_risk", "penalizer", "tag",     "first_purchase_after", "first_purchase_before",
    "new_days"};

static long long count_runs(void)
{
    return sql_ll("SELECT count(*) FROM analytics_runs");
}

static long long count_outbox(void)
{
    return sql_ll("SELECT count(*) FROM outbox");
}

/* POSTs a run as `who`, asserts 202 and returns the body. */
static json_t *create_run(int who, const char *body)
{
    th_resp_t *r = http_post(who, "/v1/analytics/runs", body);
    expect_status(r, 202);
    ck_assert_ptr_nonnull(r->json);
    return r->json;
}

START_TEST(run_create_answers_202_with_complete_params_and_one_outbox_row)
{
    long long outbox0 = count_outbox();
    time_t t0 = time(NULL);
    th_resp_t *r = http_post(ANALYST, "/v1/analytics/runs", "{\"kind\":\"rfm\"}");
    time_t t1 = time(NULL);
    expect_status(r, 202);
    ck_assert_str_eq(header(r, "content-type"), "application/json");
    json_t *run = r->json;
    long long id = jint(run, "id");
    ck_assert_int_gt(id, 0);
    ck_assert_str_eq(header(r, "location"), fmt("/v1/analytics/runs/%lld", id));
    ck_assert_str_eq(jstr(run, "kind"), "rfm");
    ck_assert_str_eq(jstr(run, "status"), "queued");
    ck_assert_msg(json_is_number(json_object_get(run, "progress")) &&
                      json_number_value(json_object_get(run, "progress")) == 0.0,
                  "progress %s", jshow(json_object_get(run, "progress")));
    ck_assert_int_eq(jint(run, "customers_done"), 0);
    ck_assert_int_eq(jint(run, "requested_by"), users[ANALYST].id);
    ck_assert_msg(is_api_timestamp(jstr(run, "created_at")), "created_at %s", jstr(run, "created_at"));
    ck_assert_int_ge(utc_seconds(jstr(run, "created_at")), (long long)t0 - 1);
    ck_assert_int_le(utc_seconds(jstr(run, "created_at")), (long long)t1 + 1);
    static const char *const nulls[] = {"customers_total", "stats",      "model",      "error",
                                        "schedule_id",     "started_at", "finished_at"};
    for (size_t i = 0; i < sizeof(nulls) / sizeof(nulls[0]); i++)
        ck_assert_msg(json_is_null(json_object_get(run, nulls[i])), "%s is %s", nulls[i],
                      jshow(json_object_get(run, nulls[i])));

    /* Every default filled in, as_of = now as RFC 3339 (UTC, to the second). */
    json_t *p = json_object_get(run, "params");
    ck_assert_msg(json_is_object(p) && json_object_size(p) == 8, "params %s", jshow(p));
    for (size_t i = 0; i < sizeof(rfm_default_keys) / sizeof(rfm_default_keys[0]); i++)
        ck_assert_msg(json_object_get(p, rfm_default_keys[i]) != NULL, "params lack %s", rfm_default_keys[i]);
    const char *as_of = jstr(p, "as_of");
    ck_assert_msg(is_second_timestamp(as_of), "as_of %s", as_of != NULL ? as_of : "(none)");
    ck_assert_int_ge(utc_seconds(as_of), (long long)t0);
    ck_assert_int_le(utc_seconds(as_of), (long long)t1);
    json_t *want = jparse(fmt("{\"as_of\":\"%s\",\"lookback_days\":null,\"tag\":null,\"new_days\":30,"
                              "\"active_days\":90,\"churn_days\":180,\"a_share\":\"0.80\",\"b_share\":\"0.95\"}",
                              as_of));
    expect_json_eq(p, want, "completed rfm params");

    /*
     * The row: the same params, queued, naming the request; and exactly one outbox message
     * {"run_id": id, "request_id": ...}, same transaction (no trace id: the request carried none).
     */
    ck_assert_str_eq(sql_text("SELECT status FROM analytics_runs WHERE id = %lld", id), "queued");
    ck_assert_int_eq(
        sql_ll("SELECT (params = '%s'::jsonb)::int FROM analytics_runs WHERE id = %lld", jdump(json_incref(p)), id), 1);
    const char *rid = header(r, "x-request-id");
    ck_assert_str_eq(sql_text("SELECT request_id || ' ' || (trace_id IS NULL) FROM analytics_runs WHERE id = %lld", id),
                     fmt("%s true", rid));
    ck_assert_int_eq(count_outbox(), outbox0 + 1);
    ck_assert_int_eq(sql_ll("SELECT count(*) FROM outbox WHERE payload = jsonb_build_object('run_id', %lld::bigint,"
                            " 'request_id', '%s'::text)",
                            id, rid),
                     1);
    ck_assert_str_eq(sql_text("SELECT payload::text FROM outbox WHERE payload->>'run_id' = '%lld'", id),
                     fmt("{\"run_id\": %lld, \"request_id\": \"%s\"}", id, rid));
    ck_assert_str_eq(sql_text("SELECT topic FROM outbox WHERE payload->>'run_id' = '%lld'", id), "runs");
    ck_assert_int_eq(sql_ll("SELECT (o.published_at IS NULL AND o.created_at = r.created_at)::int FROM outbox o,"
                            " analytics_runs r WHERE r.id = %lld AND o.payload->>'run_id' = '%lld'",
                            id, id),
                     1);

    /* The Location answers the same run. */
    th_resp_t *g = http_get(ANALYST, header(r, "location"));
    expect_status(g, 200);
    expect_json_eq(g->json, run, "GET of the Location");
}
END_TEST

START_TEST(run_create_clv_defaults_and_given_values)
{
    time_t t0 = time(NULL);
    json_t *run = create_run(DIRECTOR, "{\"kind\":\"clv\",\"params\":null}");
    time_t t1 = time(NULL);
    ck_assert_str_eq(jstr(run, "kind"), "clv");
    ck_assert_int_eq(jint(run, "requested_by"), users[DIRECTOR].id);
    json_t *p = json_object_get(run, "params");
    const char *as_of = jstr(p, "as_of");
    ck_assert_msg(is_second_timestamp(as_of), "as_of %s", jshow(json_object_get(p, "as_of")));
    ck_assert_int_ge(utc_seconds(as_of), (long long)t0);
    ck_assert_int_le(utc_seconds(as_of), (long long)t1);
    ck_assert_uint_eq(json_object_size(p), sizeof(clv_default_keys) / sizeof(clv_default_keys[0]));
    expect_json_eq(p,
                   jparse(fmt("{\"as_of\":\"%s\",\"time_unit\":\"week\",\"horizon\":52,\"discount_rate\":\"0\","
                              "\"alive_active\":\"0.7\",\"alive_at_risk\":\"0.3\",\"penalizer\":\"0\",\"tag\":null,"
                              "\"first_purchase_after\":null,\"first_purchase_before\":null,\"new_days\":30}",
                              as_of)),
                   "completed clv params");

    /* Given values are kept; as_of with an offset is resolved to UTC, sub-seconds kept. */
    run = create_run(ANALYST, "{\"kind\":\"rfm\",\"params\":{\"as_of\":\"2026-01-31T01:00:00+01:00\","
                              "\"lookback_days\":365,\"tag\":\"vip\",\"new_days\":0,\"active_days\":36500,"
                              "\"churn_days\":7,\"a_share\":\"0.5\",\"b_share\":\"0.5\"}}");
    expect_json_eq(json_object_get(run, "params"),
                   jparse("{\"as_of\":\"2026-01-31T00:00:00Z\",\"lookback_days\":365,\"tag\":\"vip\",\"new_days\":0,"
                          "\"active_days\":36500,\"churn_days\":7,\"a_share\":\"0.5\",\"b_share\":\"0.5\"}"),
                   "given rfm params");
    run = create_run(ANALYST, "{\"kind\":\"rfm\",\"params\":{\"as_of\":\"2026-01-31T00:00:00.5Z\",\"lookback_days\":"
                              "null,\"tag\":null,\"b_share\":\"1\",\"a_share\":\"0.000001\"}}");
    p = json_object_get(run, "params");
    ck_assert_str_eq(jstr(p, "as_of"), "2026-01-31T00:00:00.500000Z");
    ck_assert(json_is_null(json_object_get(p, "lookback_days")));
    ck_assert_str_eq(jstr(p, "a_share"), "0.000001");
    ck_assert_str_eq(jstr(p, "b_share"), "1");
    /* Decimals may come as JSON numbers: kept as the decimal they read as, never a float's digits. */
    run = create_run(ANALYST, "{\"kind\":\"rfm\",\"params\":{\"a_share\":0.7,\"b_share\":0.9}}");
    p = json_object_get(run, "params");
    ck_assert_str_eq(jstr(p, "a_share"), "0.7");
    ck_assert_str_eq(jstr(p, "b_share"), "0.9");
    run = create_run(ANALYST, "{\"kind\":\"clv\",\"params\":{\"time_unit\":\"day\",\"horizon\":520,"
                              "\"discount_rate\":\"1\",\"alive_active\":\"0.5\",\"alive_at_risk\":\"0.5\","
                              "\"penalizer\":\"1000\",\"first_purchase_after\":\"2025-01-01T00:00:00Z\","
                              "\"first_purchase_before\":\"2026-01-01T00:00:00-05:00\"}}");
    p = json_object_get(run, "params");
    ck_assert_str_eq(jstr(p, "time_unit"), "day");
    ck_assert_int_eq(jint(p, "horizon"), 520);
    ck_assert_str_eq(jstr(p, "first_purchase_after"), "2025-01-01T00:00:00Z");
    ck_assert_str_eq(jstr(p, "first_purchase_before"), "2026-01-01T05:00:00Z");
    ck_assert_str_eq(jstr(p, "penalizer"), "1000");
}
END_TEST

START_TEST(run_create_needs_create_permission)
{
    long long runs0 = count_runs(), outbox0 = count_outbox();
    static const int who[] = {REP_N, REP_S, MANAGER, INTEG};
    for (size_t i = 0; i < sizeof(who) / sizeof(who[0]); i++) {
        th_resp_t *r = http_post(who[i], "/v1/analytics/runs", "{\"kind\":\"rfm\"}");
        expect_problem(r, 403, "forbidden");
        ck_assert_ptr_null(header(r, "location"));
    }
    th_resp_t *r = http_post(-1, "/v1/analytics/runs", "{\"kind\":\"rfm\"}");
    expect_problem(r, 401, "unauthenticated");
    ck_assert_int_eq(count_runs(), runs0);
    ck_assert_int_eq(count_outbox(), outbox0);
}
END_TEST

START_TEST(run_create_validation_names_each_field)
{
    static const struct {
        const char *body, *field, *code;
    } cases[] = {
        {"{}", "kind", "required"},
        {"{\"kind\":\"rfmx\"}", "kind", "invalid_value"},
        {"{\"kind\":\"segments\",\"params\":{}}", "kind", "invalid_value"},
        {"{\"kind\":7}", "kind", "invalid_value"},
        {"{\"kind\":\"rfm\",\"priority\":1}", "priority", "unknown_field"},
        {"{\"kind\":\"rfm\",\"params\":[]}", "params", "invalid_type"},
        {"{\"kind\":\"rfm\",\"params\":\"all\"}", "params", "invalid_type"},
        {"{\"kind\":\"rfm\",\"params\":{\"bogus\":1}}", "params.bogus", "unknown_field"},
        {"{\"kind\":\"rfm\",\"params\":{\"horizon\":52}}", "params.horizon", "unknown_field"},
        {"{\"kind\":\"clv\",\"params\":{\"lookback_days\":30}}", "params.lookback_days", "unknown_field"},
        {"{\"kind\":\"clv\",\"params\":{\"new_days\":-1}}", "params.new_days", "out_of_range"},
        {"{\"kind\":\"rfm\",\"params\":{\"as_of\":\"yesterday\"}}", "params.as_of", "invalid_format"},
        {"{\"kind\":\"rfm\",\"params\":{\"as_of\":\"2026-02-30T00:00:00Z\"}}", "params.as_of", "invalid_format"},
        {"{\"kind\":\"rfm\",\"params\":{\"as_of\":\"2026-01-31T00:00:00\"}}", "params.as_of", "invalid_format"},
        {"{\"kind\":\"rfm\",\"params\":{\"as_of\":1767225600}}", "params.as_of", "invalid_format"},
        {"{\"kind\":\"rfm\",\"params\":{\"lookback_days\":0}}", "params.lookback_days", "out_of_range"},
        {"{\"kind\":\"rfm\",\"params\":{\"lookback_days\":36501}}", "params.lookback_days", "out_of_range"},
        {"{\"kind\":\"rfm\",\"params\":{\"lookback_days\":\"30\"}}", "params.lookback_days", "invalid_type"},
        {"{\"kind\":\"rfm\",\"params\":{\"new_days\":-1}}", "params.new_days", "out_of_range"},
        {"{\"kind\":\"rfm\",\"params\":{\"active_days\":36501}}", "params.active_days", "out_of_range"},
        {"{\"kind\":\"rfm\",\"params\":{\"churn_days\":null}}", "params.churn_days", "invalid_type"},
        {"{\"kind\":\"rfm\",\"params\":{\"churn_days\":1.5}}", "params.churn_days", "invalid_type"},
        {"{\"kind\":\"rfm\",\"params\":{\"a_share\":\"0.9\",\"b_share\":\"0.8\"}}", "params.a_share", "invalid_value"},
        {"{\"kind\":\"rfm\",\"params\":{\"a_share\":\"0.96\"}}", "params.a_share", "invalid_value"},
        {"{\"kind\":\"rfm\",\"params\":{\"a_share\":\"0\"}}", "params.a_share", "out_of_range"},
        {"{\"kind\":\"rfm\",\"params\":{\"b_share\":\"1.01\"}}", "params.b_share", "out_of_range"},
        {"{\"kind\":\"rfm\",\"params\":{\"a_share\":\"-0.5\"}}", "params.a_share", "out_of_range"},
        {"{\"kind\":\"rfm\",\"params\":{\"a_share\":\"eighty\"}}", "params.a_share", "invalid_format"},
        {"{\"kind\":\"rfm\",\"params\":{\"a_share\":\"0.1234567\"}}", "params.a_share", "invalid_format"},
        {"{\"kind\":\"rfm\",\"params\":{\"a_share\":true}}", "params.a_share", "invalid_type"},
        {"{\"kind\":\"rfm\",\"params\":{\"a_share\":0.30000000000000004}}", "params.a_share", "invalid_type"},
        {"{\"kind\":\"rfm\",\"params\":{\"a_share\":1.5}}", "params.a_share", "out_of_range"},
        {"{\"kind\":\"rfm\",\"params\":{\"tag\":\"\"}}", "params.tag", "invalid_value"},
        {"{\"kind\":\"rfm\",\"params\":{\"tag\":5}}", "params.tag", "invalid_value"},
        {"{\"kind\":\"rfm\",\"params\":{\"tag\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}}",
         "params.tag", "invalid_value"},
        {"{\"kind\":\"clv\",\"params\":{\"time_unit\":\"month\"}}", "params.time_unit", "invalid_value"},
        {"{\"kind\":\"clv\",\"params\":{\"horizon\":0}}", "params.horizon", "out_of_range"},
        {"{\"kind\":\"clv\",\"params\":{\"horizon\":5201}}", "params.horizon", "out_of_range"},
        {"{\"kind\":\"clv\",\"params\":{\"discount_rate\":\"1.5\"}}", "params.discount_rate", "out_of_range"},
        {"{\"kind\":\"clv\",\"params\":{\"alive_active\":\"0.7\",\"alive_at_risk\":\"0.8\"}}", "params.alive_at_risk",
         "invalid_value"},
        {"{\"kind\":\"clv\",\"params\":{\"penalizer\":\"1000.5\"}}", "params.penalizer", "out_of_range"},
        {"{\"kind\":\"clv\",\"params\":{\"first_purchase_after\":\"soon\"}}", "params.first_purchase_after",
         "invalid_format"},
        {"{\"kind\":\"clv\",\"params\":{\"first_purchase_before\":\"2026-01-01\"}}", "params.first_purchase_before",
         "invalid_format"},
    };
    long long runs0 = count_runs(), outbox0 = count_outbox();
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        th_resp_t *r = http_post(ANALYST, "/v1/analytics/runs", cases[i].body);
        ck_assert_msg(r->status == 422, "case %zu %s: %d %.300s", i, cases[i].body, r->status, r->body);
        expect_invalid(r, cases[i].field, cases[i].code);
    }
    /* Every problem at once. */
    th_resp_t *r = http_post(ANALYST, "/v1/analytics/runs",
                             "{\"kind\":\"rfm\",\"params\":{\"as_of\":\"x\",\"lookback_days\":0,\"new_days\":-1,"
                             "\"b_share\":\"2\",\"nope\":true}}");
    expect_problem(r, 422, "validation-failed");
    expect_error(r, "params.as_of", "invalid_format");
    expect_error(r, "params.lookback_days", "out_of_range");
    expect_error(r, "params.new_days", "out_of_range");
    expect_error(r, "params.b_share", "out_of_range");
    expect_error(r, "params.nope", "unknown_field");
    /* Not JSON, not an object, wrong content type. */
    r = http_post(ANALYST, "/v1/analytics/runs", "{\"kind\":");
    expect_problem(r, 400, "bad-request");
    r = http_post(ANALYST, "/v1/analytics/runs", "[]");
    expect_problem(r, 422, "validation-failed");
    r = call(ANALYST, "POST", "/v1/analytics/runs", "text/plain", "{\"kind\":\"rfm\"}", NULL, NULL);
    expect_problem(r, 415, "unsupported-media-type");
    /* Nothing was written. */
    ck_assert_int_eq(count_runs(), runs0);
    ck_assert_int_eq(count_outbox(), outbox0);
    /* 50 characters are fine. */
    json_t *ok = create_run(
        ANALYST, "{\"kind\":\"rfm\",\"params\":{\"tag\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}}");
    ck_assert_uint_eq(strlen(jstr(json_object_get(ok, "params"), "tag")), 50);
}
END_TEST

START_TEST(run_tag_length_counts_characters_like_customer_tags)
{
    /* Customer tags are 1 to 50 characters (code points); a run's tag must accept any tag a customer can carry. */
    char tag[128] = "";
    for (int i = 0; i < 30; i++)
        strcat(tag, "\xc3\xbc"); /* 30 x U+00FC: 30 characters, 60 bytes */
    th_resp_t *c = http_post(DIRECTOR, "/v1/customers",
                             fmt("{\"kind\":\"company\",\"name\":\"%s\",\"tags\":[\"%s\"]}", uniq("T"), tag));
    expect_status(c, 201);
    th_resp_t *r = http_post(ANALYST, "/v1/analytics/runs", fmt("{\"kind\":\"rfm\",\"params\":{\"tag\":\"%s\"}}", tag));
    expect_status(r, 202);
    ck_assert_str_eq(jstr(jget(r, "params"), "tag"), tag);
}
END_TEST

/* --- runs: read, list, cancel ---------------------------------------------------- */

START_TEST(run_get_is_readable_by_every_analytics_reader)
{
    json_t *run = create_run(ANALYST, "{\"kind\":\"rfm\"}");
    const char *path = fmt("/v1/analytics/runs/%lld", jint(run, "id"));
    /* Readers whose scope is not `all` see the run without the population's counts. */
    json_t *scoped = keep(json_deep_copy(run));
    json_object_set_new(scoped, "customers_done", json_null());
    json_object_set_new(scoped, "customers_total", json_null());
    static const int readers[] = {ANALYST, DIRECTOR, MANAGER, REP_N, REP_S};
    for (size_t i = 0; i < sizeof(readers) / sizeof(readers[0]); i++) {
        th_resp_t *r = http_get(readers[i], path);
        expect_status(r, 200);
        expect_json_eq(r->json, readers[i] == MANAGER || readers[i] == REP_N || readers[i] == REP_S ? scoped : run,
                       "GET run");
    }
    expect_problem(http_get(INTEG, path), 403, "forbidden");
    expect_problem(http_get(-1, path), 401, "unauthenticated");
    expect_problem(http_get(ANALYST, "/v1/analytics/runs/999999999"), 404, "not-found");
    expect_problem(http_get(ANALYST, "/v1/analytics/runs/0"), 404, "not-found");
    expect_problem(http_get(ANALYST, "/v1/analytics/runs/abc"), 404, "not-found");
}
END_TEST

static int list_has(const json_t *list, long long id)
{
    size_t i;
    json_t *v;
    json_array_foreach(list, i, v) if (jint(v, "id") == id) return 1;
    return 0;
}

START_TEST(run_list_newest_first_with_filters_and_cursor_paging)
{
    long long a = jint(create_run(ANALYST, "{\"kind\":\"rfm\"}"), "id");
    long long b = jint(create_run(ANALYST, "{\"kind\":\"clv\"}"), "id");
    long long c = jint(create_run(DIRECTOR, "{\"kind\":\"rfm\"}"), "id");
    long long s = sim_run("rfm", "succeeded", RFM_PARAMS("2026-01-31T00:00:00Z"), "now()");
    long long f = sim_run("clv", "failed", "{}", "now()");
    ck_assert(a < b && b < c && c < s && s < f);

    /* First page: newest first. */
    th_resp_t *r = http_get(MANAGER, "/v1/analytics/runs?limit=3");
    expect_status(r, 200);
    json_t *data = jget(r, "data");
    ck_assert_uint_eq(json_array_size(data), 3);
    ck_assert_int_eq(jint(json_array_get(data, 0), "id"), f);
    ck_assert_int_eq(jint(json_array_get(data, 1), "id"), s);
    ck_assert_int_eq(jint(json_array_get(data, 2), "id"), c);
    ck_assert(json_is_string(jget(r, "next_cursor")));

    /* All pages: every run once, ids strictly decreasing. */
    json_t *all = list_all(REP_S, "/v1/analytics/runs", 2);
    ck_assert_int_eq((long long)json_array_size(all), count_runs());
    for (size_t i = 1; i < json_array_size(all); i++)
        ck_assert_int_lt(jint(json_array_get(all, i), "id"), jint(json_array_get(all, i - 1), "id"));

    /* Filters. */
    static const struct {
        const char *query, *member, *value;
    } filters[] = {
        {"kind=clv", "kind", "clv"},           {"kind=rfm", "kind", "rfm"},
        {"status=queued", "status", "queued"}, {"status=succeeded", "status", "succeeded"},
        {"status=failed", "status", "failed"},
    };
    for (size_t k = 0; k < sizeof(filters) / sizeof(filters[0]); k++) {
        json_t *l = list_all(ANALYST, fmt("/v1/analytics/runs?%s", filters[k].query), 50);
        size_t i;
        json_t *v;
        json_array_foreach(l, i, v) ck_assert_msg(strcmp(jstr(v, filters[k].member), filters[k].value) == 0,
                                                  "%s listed %s", filters[k].query, jshow(v));
        ck_assert_int_eq((long long)json_array_size(l), sql_ll("SELECT count(*) FROM analytics_runs WHERE %s = '%s'",
                                                               filters[k].member, filters[k].value));
    }
    ck_assert(list_has(list_all(ANALYST, "/v1/analytics/runs?kind=clv&status=queued", 50), b));
    ck_assert(!list_has(list_all(ANALYST, "/v1/analytics/runs?kind=clv&status=queued", 50), a));
    ck_assert(list_has(list_all(ANALYST, "/v1/analytics/runs?kind=rfm&status=succeeded", 50), s));
    ck_assert(list_has(list_all(ANALYST, "/v1/analytics/runs?kind=clv&status=failed", 50), f));

    /* Bad parameters. */
    r = http_get(ANALYST, "/v1/analytics/runs?status=done");
    expect_problem(r, 400, "bad-request");
    expect_error(r, "status", "invalid_value");
    r = http_get(ANALYST, "/v1/analytics/runs?kind=abc");
    expect_problem(r, 400, "bad-request");
    expect_error(r, "kind", "invalid_value");
    r = http_get(ANALYST, "/v1/analytics/runs?sort=id");
    expect_problem(r, 400, "bad-request");
    expect_error(r, "sort", "unknown_parameter");
    r = http_get(ANALYST, "/v1/analytics/runs?limit=0");
    expect_problem(r, 400, "bad-request");
    expect_error(r, "limit", "out_of_range");
    r = http_get(ANALYST, "/v1/analytics/runs?cursor=garbage");
    expect_problem(r, 400, "bad-request");
    expect_error(r, "cursor", "invalid_value");
    r = http_get(ANALYST, "/v1/analytics/runs?kind=rfm&kind=clv");
    expect_problem(r, 400, "bad-request");
    expect_error(r, "kind", "repeated");
    expect_problem(http_get(INTEG, "/v1/analytics/runs"), 403, "forbidden");
}
END_TEST

START_TEST(run_cancel_queued_then_409)
{
    json_t *run = create_run(ANALYST, "{\"kind\":\"rfm\"}");
    long long id = jint(run, "id");
    const char *path = fmt("/v1/analytics/runs/%lld", id);
    /* Readers without delete permission. */
    expect_problem(http_delete(REP_N, path, NULL), 403, "forbidden");
    expect_problem(http_delete(MANAGER, path, NULL), 403, "forbidden");
    expect_problem(http_delete(INTEG, path, NULL), 403, "forbidden");
    ck_assert_str_eq(sql_text("SELECT status FROM analytics_runs WHERE id = %lld", id), "queued");

    time_t t0 = time(NULL);
    th_resp_t *r = http_delete(DIRECTOR, path, NULL);
    expect_status(r, 200);
    ck_assert_int_eq(jint(r->json, "id"), id);
    ck_assert_str_eq(jstr(r->json, "status"), "cancelled");
    ck_assert_msg(is_api_timestamp(jstr(r->json, "finished_at")), "finished_at %s", jshow(jget(r, "finished_at")));
    ck_assert_int_ge(utc_seconds(jstr(r->json, "finished_at")), (long long)t0 - 1);
    expect_json_eq(jget(r, "params"), json_object_get(run, "params"), "params after cancel");
    ck_assert_str_eq(sql_text("SELECT status FROM analytics_runs WHERE id = %lld", id), "cancelled");
    th_resp_t *g = http_get(ANALYST, path);
    expect_status(g, 200);
    expect_json_eq(g->json, r->json, "GET after cancel");
    ck_assert(list_has(list_all(ANALYST, "/v1/analytics/runs?status=cancelled", 200), id));

    /* A second cancel: the run has ended. */
    r = http_delete(ANALYST, path, NULL);
    expect_problem(r, 409, "conflict");
    ck_assert_str_eq(sql_text("SELECT status FROM analytics_runs WHERE id = %lld", id), "cancelled");

    /* A running run can be cancelled; succeeded and failed ones cannot. */
    long long running = sim_run("rfm", "running", RFM_PARAMS("2026-01-31T00:00:00Z"), NULL);
    r = http_delete(ANALYST, fmt("/v1/analytics/runs/%lld", running), NULL);
    expect_status(r, 200);
    ck_assert_str_eq(jstr(r->json, "status"), "cancelled");
    long long done = sim_run("rfm", "succeeded", RFM_PARAMS("2026-01-31T00:00:00Z"), "now()");
    expect_problem(http_delete(ANALYST, fmt("/v1/analytics/runs/%lld", done), NULL), 409, "conflict");
    ck_assert_str_eq(sql_text("SELECT status FROM analytics_runs WHERE id = %lld", done), "succeeded");
    long long failed = sim_run("rfm", "failed", RFM_PARAMS("2026-01-31T00:00:00Z"), "now()");
    expect_problem(http_delete(ANALYST, fmt("/v1/analytics/runs/%lld", failed), NULL), 409, "conflict");
    ck_assert_str_eq(sql_text("SELECT status FROM analytics_runs WHERE id = %lld", failed), "failed");
    expect_problem(http_delete(ANALYST, "/v1/analytics/runs/999999999", NULL), 404, "not-found");
    expect_problem(http_delete(-1, path, NULL), 401, "unauthenticated");
}
END_TEST

/* --- results: summary ------------------------------------------------------------ */

/* The six customers and results of the summary tests: every scope sees a different part. */
static void summary_fixture(const char *tag, cust_t c[6], res_t x[6])
{
    c[0] = make_customer(REP_N, -1, tag);
    c[1] = make_customer(REP_N, -1, tag);
    c[2] = make_customer(REP_S, -1, tag);
    c[3] = make_customer(DIRECTOR, team_north, tag); /* the manager's team, no rep's */
    c[4] = make_customer(DIRECTOR, 0, tag);          /* no team: only scope all */
    c[5] = make_customer(REP_S, -1, tag);
    const res_t rows[6] = {
        {"champions", "active", "A", "500.00", 3, 10, 5, 5, 5},
        {"at_risk", "at_risk", "B", "120.50", 120, 4, 2, 4, 3},
        {"loyal_customers", "active", "A", "300.00", 20, 6, 4, 4, 4},
        {"hibernating", "churned", "C", "10.25", 400, 1, 1, 1, 1},
        {"new_customers", "new", "C", "40.00", 2, 1, 5, 1, 2},
        {"prospect", "prospect", NULL, NULL, -1, -1, 0, 0, 0},
    };
    memcpy(x, rows, sizeof(rows));
}

START_TEST(summary_counts_only_what_each_caller_may_see)
{
    const char *tag = uniq("sum");
    cust_t c[6];
    res_t x[6];
    summary_fixture(tag, c, x);
    long long run = sim_run("rfm", "succeeded", RFM_PARAMS("2026-01-31T00:00:00Z"), "now()");
    for (int i = 0; i < 6; i++)
        sim_history(run, c[i].id, &x[i]);
    /* Another run's rows must not leak in. */
    long long other = sim_run("rfm", "succeeded", RFM_PARAMS("2025-12-31T00:00:00Z"), "now() - interval '1 day'");
    for (int i = 0; i < 6; i++)
        sim_history(other, c[i].id, &x[0]);

    static const int who[] = {ANALYST, DIRECTOR, MANAGER, REP_N, REP_S};
    for (size_t k = 0; k < sizeof(who) / sizeof(who[0]); k++) {
        th_resp_t *r = http_get(who[k], fmt("/v1/analytics/summary?run_id=%lld", run));
        expect_status(r, 200);
        expect_json_eq(r->json, expected_summary(who[k], run, c, x, 6), fmt("summary of user %d", who[k]));
    }
    /* Spot checks against the oracle itself. */
    th_resp_t *r = http_get(ANALYST, fmt("/v1/analytics/summary?run_id=%lld", run));
    ck_assert_int_eq(jint(r->json, "customers"), 6);
    ck_assert_str_eq(jstr(r->json, "revenue"), "970.75");
    ck_assert_str_eq(jstr(json_object_get(jget(r, "tiers"), "A"), "revenue_share"), "0.824105");
    r = http_get(MANAGER, fmt("/v1/analytics/summary?run_id=%lld", run));
    ck_assert_int_eq(jint(r->json, "customers"), 3);
    ck_assert_str_eq(jstr(r->json, "revenue"), "630.75");
    r = http_get(REP_N, fmt("/v1/analytics/summary?run_id=%lld", run));
    ck_assert_int_eq(jint(r->json, "customers"), 2);
    ck_assert_str_eq(jstr(r->json, "revenue"), "620.50");
    r = http_get(REP_S, fmt("/v1/analytics/summary?run_id=%lld", run));
    ck_assert_int_eq(jint(r->json, "customers"), 2);
    ck_assert_str_eq(jstr(json_object_get(jget(r, "tiers"), "A"), "revenue_share"), "1.000000");
    ck_assert_int_eq(jint(jget(r, "segments"), "prospect"), 1);

    /* Moving a customer moves its result with it: scopes follow the current owner and team. */
    th_resp_t *m = http_patch(DIRECTOR, fmt("/v1/customers/%lld", c[0].id),
                              fmt("{\"owner_id\":%lld,\"team_id\":%lld}", users[REP_S].id, team_south), NULL);
    expect_status(m, 200);
    c[0].owner = users[REP_S].id;
    c[0].team = team_south;
    static const int moved[] = {MANAGER, REP_N, REP_S};
    for (size_t k = 0; k < sizeof(moved) / sizeof(moved[0]); k++) {
        r = http_get(moved[k], fmt("/v1/analytics/summary?run_id=%lld", run));
        expect_status(r, 200);
        expect_json_eq(r->json, expected_summary(moved[k], run, c, x, 6),
                       fmt("summary of user %d after the move", moved[k]));
    }
    expect_problem(http_get(INTEG, fmt("/v1/analytics/summary?run_id=%lld", run)), 403, "forbidden");
    expect_problem(http_get(-1, "/v1/analytics/summary"), 401, "unauthenticated");
}
END_TEST

/* The reader's analytics read scope, as run documents name it. */
static const char *scope_of(int who)
{
    return who == MANAGER ? "team" : who == REP_N || who == REP_S ? "own" : "all";
}

/* A run as `path` answers it to `who`, and the same document in the run list (filtered by kind). */
static json_t *run_as(int who, long long run, const char *kind)
{
    th_resp_t *r = http_get(who, fmt("/v1/analytics/runs/%lld", run));
    expect_status(r, 200);
    th_resp_t *l = http_get(who, fmt("/v1/analytics/runs?kind=%s&limit=100", kind));
    expect_status(l, 200);
    size_t i;
    json_t *v, *found = NULL;
    json_array_foreach(jget(l, "data"), i, v) if (jint(v, "id") == run) found = v;
    ck_assert_msg(found != NULL, "run %lld is not in the list of user %d", run, who);
    expect_json_eq(found, r->json, fmt("run %lld in the list of user %d", run, who));
    return r->json;
}

/* The stats of an rfm run as `who` should see them: the stored ones for scope all, else over their customers. */
static json_t *expected_rfm_stats(int who, const json_t *stored, const cust_t *custs, const res_t *res, size_t n)
{
    if (strcmp(scope_of(who), "all") == 0)
        return (json_t *)stored;
    json_t *segs = json_object(), *lifes = json_object(), *tiers = json_object(), *tier_rev = json_object();
    const char *k;
    json_t *v;
    json_object_foreach(json_object_get(stored, "segments"), k, v) json_object_set_new(segs, k, json_integer(0));
    json_object_foreach(json_object_get(stored, "lifecycles"), k, v) json_object_set_new(lifes, k, json_integer(0));
    long long total = 0, count = 0, scored = 0, tier_n[3] = {0}, tier_c[3] = {0};
    for (size_t i = 0; i < n; i++) {
        if (!can_see(who, &custs[i]))
            continue;
        count++;
        json_object_set_new(segs, res[i].segment, json_integer(jint(segs, res[i].segment) + 1));
        json_object_set_new(lifes, res[i].lifecycle, json_integer(jint(lifes, res[i].lifecycle) + 1));
        if (res[i].r != 0) {
            scored++;
            total += cents(res[i].monetary);
        }
        if (res[i].tier != NULL) {
            tier_n[res[i].tier[0] - 'A']++;
            tier_c[res[i].tier[0] - 'A'] += cents(res[i].monetary);
        }
    }
    for (int t = 0; t < 3; t++) {
        json_object_set_new(tiers, fmt("%c", 'A' + t), json_integer(tier_n[t]));
        json_object_set_new(tier_rev, fmt("%c", 'A' + t), json_string(money(tier_c[t])));
    }
    return keep(json_pack("{s:I, s:I, s:o, s:o, s:o, s:s, s:o, s:s, s:O}", "customers", (json_int_t)count, "scored",
                          (json_int_t)scored, "segments", segs, "lifecycles", lifes, "tiers", tiers, "revenue",
                          money(total), "tier_revenue", tier_rev, "scope", scope_of(who), "duration_ms",
                          json_object_get(stored, "duration_ms")));
}

/*
 * GET /v1/analytics/runs/{id} and the run list: the stored statistics (over
 * the whole population) for readers with scope all; a manager and a rep get
 * statistics of the same shape over the customers they may read, and no
 * population counts.
 */
START_TEST(run_stats_are_scoped_like_the_summary)
{
    const char *tag = uniq("runstats");
    cust_t c[6];
    res_t x[6];
    summary_fixture(tag, c, x);
    long long run = sim_run("rfm", "succeeded", RFM_PARAMS("2026-01-31T00:00:00Z"), "now()");
    for (int i = 0; i < 6; i++)
        sim_history(run, c[i].id, &x[i]);
    /* What a worker stores: figures of the whole company, far more than this suite's customers. */
    const char *stored_text =
        "{\"customers\": 100000, \"scored\": 90000, \"segments\": {\"champions\": 9000, \"loyal_customers\": 9000,"
        " \"potential_loyalists\": 9000, \"new_customers\": 9000, \"promising\": 9000, \"need_attention\": 9000,"
        " \"about_to_sleep\": 9000, \"at_risk\": 9000, \"cant_lose_them\": 9000, \"hibernating\": 9000,"
        " \"prospect\": 10000}, \"lifecycles\": {\"prospect\": 10000, \"new\": 20000, \"active\": 30000,"
        " \"at_risk\": 20000, \"churned\": 20000}, \"tiers\": {\"A\": 20000, \"B\": 30000, \"C\": 40000},"
        " \"revenue\": \"123456789.00\", \"tier_revenue\": {\"A\": \"98765431.20\", \"B\": \"18518518.35\","
        " \"C\": \"6172839.45\"}, \"duration_ms\": 4321}";
    sql_do("UPDATE analytics_runs SET stats = '%s', customers_done = 100000, customers_total = 100000 WHERE id = %lld",
           stored_text, run);
    json_t *stored = jparse(stored_text);

    static const int who[] = {ANALYST, DIRECTOR, MANAGER, REP_N, REP_S};
    for (size_t k = 0; k < sizeof(who) / sizeof(who[0]); k++) {
        json_t *doc = run_as(who[k], run, "rfm");
        int all = strcmp(scope_of(who[k]), "all") == 0;
        expect_json_eq(json_object_get(doc, "stats"), expected_rfm_stats(who[k], stored, c, x, 6),
                       fmt("stats for user %d", who[k]));
        ck_assert_str_eq(jstr(doc, "status"), "succeeded");
        ck_assert_msg(json_number_value(json_object_get(doc, "progress")) == 1.0, "progress");
        expect_json_eq(json_object_get(doc, "params"), jparse(RFM_PARAMS("2026-01-31T00:00:00Z")), "params");
        expect_json_eq(json_object_get(doc, "customers_done"), all ? keep(json_integer(100000)) : json_null(),
                       "customers_done");
        expect_json_eq(json_object_get(doc, "customers_total"), all ? keep(json_integer(100000)) : json_null(),
                       "customers_total");
    }
    /* Spot checks against the oracle itself: the same figures as the summary. */
    json_t *st = json_object_get(run_as(MANAGER, run, "rfm"), "stats");
    ck_assert_int_eq(jint(st, "customers"), 3);
    ck_assert_str_eq(jstr(st, "revenue"), "630.75");
    ck_assert_str_eq(jstr(st, "scope"), "team");
    st = json_object_get(run_as(REP_N, run, "rfm"), "stats");
    ck_assert_int_eq(jint(st, "customers"), 2);
    ck_assert_str_eq(jstr(st, "revenue"), "620.50");
    ck_assert_str_eq(jstr(json_object_get(st, "tier_revenue"), "C"), "0.00");
    ck_assert_int_eq(jint(json_object_get(st, "segments"), "hibernating"), 0);
    st = json_object_get(run_as(REP_S, run, "rfm"), "stats");
    ck_assert_int_eq(jint(st, "customers"), 2);
    ck_assert_int_eq(jint(st, "scored"), 1);
    ck_assert_int_eq(jint(json_object_get(st, "segments"), "prospect"), 1);
    ck_assert_int_eq(jint(json_object_get(run_as(DIRECTOR, run, "rfm"), "stats"), "customers"), 100000);

    /* Runs without statistics stay without them for every reader. */
    long long queued = sim_run("rfm", "queued", RFM_PARAMS("2026-01-31T00:00:00Z"), NULL);
    for (size_t k = 0; k < sizeof(who) / sizeof(who[0]); k++)
        ck_assert(json_is_null(json_object_get(run_as(who[k], queued, "rfm"), "stats")));
}
END_TEST

/* A clv run: model parameters for everyone; counts and totals, in stats and model, only over what one may read. */
START_TEST(clv_run_stats_and_model_are_scoped)
{
    const char *tag = uniq("clvstats");
    cust_t c[5];
    c[0] = make_customer(REP_N, -1, tag);
    c[1] = make_customer(REP_N, -1, tag);
    c[2] = make_customer(REP_S, -1, tag);
    c[3] = make_customer(DIRECTOR, team_north, tag);
    c[4] = make_customer(DIRECTOR, 0, tag);
    /* x, expected purchases, clv, lifecycle (x < 0: a prospect, no values) */
    static const struct {
        int x;
        const char *expected, *clv, *lifecycle;
    } rows[5] = {{3, "1.5", "100.25", "active"},
                 {0, "0.25", "10.00", "at_risk"},
                 {-1, NULL, NULL, "prospect"},
                 {7, "4.75", "900.10", "active"},
                 {1, "0.5", "5.05", "churned"}};
    long long run = sim_run("clv", "succeeded", "{}", "now()");
    for (int i = 0; i < 5; i++) {
        if (rows[i].x < 0)
            sql_do("INSERT INTO customer_clv_history (run_id, customer_id, lifecycle) VALUES (%lld, %lld, 'prospect')",
                   run, c[i].id);
        else
            sql_do("INSERT INTO customer_clv_history (run_id, customer_id, x, t_x, t_cal, zbar, p_alive,"
                   " expected_purchases, expected_avg_value, clv, lifecycle)"
                   " VALUES (%lld, %lld, %d, 10, 20, 30.00, 0.5, %s, 40.00, %s, '%s')",
                   run, c[i].id, rows[i].x, rows[i].expected, rows[i].clv, rows[i].lifecycle);
    }
    const char *stored_text =
        "{\"customers\": 50000, \"fitted\": 45000, \"prospects\": 5000, \"excluded_by_cohort\": 12,"
        " \"lifecycles\": {\"prospect\": 5000, \"new\": 5000, \"active\": 20000, \"at_risk\": 10000,"
        " \"churned\": 10000}, \"expected_purchases\": 31876.5, \"clv\": \"4123456.78\","
        " \"calibration\": {\"period_end\": \"2026-03-31\", \"duration\": 8.4, \"predicted\": 5120.7,"
        " \"actual\": 4987}, \"duration_ms\": 2310}";
    const char *model_text =
        "{\"bgnbd\": {\"r\": 0.243, \"alpha\": 4.414, \"a\": 0.793, \"b\": 2.426, \"log_likelihood\": -9582.4,"
        " \"iterations\": 31, \"grad_norm\": 0.0000021, \"converged\": true, \"customers\": 45000},"
        " \"gamma_gamma\": {\"p\": 6.25, \"q\": 3.74, \"gamma\": 15.45, \"log_likelihood\": -4012.9,"
        " \"iterations\": 24, \"grad_norm\": 0.0000008, \"converged\": true, \"customers\": 9200},"
        " \"customers_fitted\": 45000, \"repeat_customers\": 9200, \"converged\": true}";
    sql_do("UPDATE analytics_runs SET stats = '%s', model = '%s', customers_done = 50000, customers_total = 50000"
           " WHERE id = %lld",
           stored_text, model_text, run);
    json_t *stored = jparse(stored_text), *model = jparse(model_text);
    json_t *redacted = keep(json_deep_copy(model));
    json_object_set_new(redacted, "customers_fitted", json_null());
    json_object_set_new(redacted, "repeat_customers", json_null());
    static const char *const fits[] = {"bgnbd", "gamma_gamma"};
    for (int i = 0; i < 2; i++) {
        json_object_set_new(json_object_get(redacted, fits[i]), "customers", json_null());
        json_object_set_new(json_object_get(redacted, fits[i]), "log_likelihood", json_null());
    }

    static const int who[] = {ANALYST, DIRECTOR, MANAGER, REP_N, REP_S};
    for (size_t k = 0; k < sizeof(who) / sizeof(who[0]); k++) {
        json_t *doc = run_as(who[k], run, "clv");
        if (strcmp(scope_of(who[k]), "all") == 0) {
            expect_json_eq(json_object_get(doc, "stats"), stored, "stats for scope all");
            expect_json_eq(json_object_get(doc, "model"), model, "model for scope all");
            continue;
        }
        long long n = 0, fitted = 0, prospects = 0, clv = 0;
        double expected = 0;
        json_t *lc =
            json_pack("{s:i, s:i, s:i, s:i, s:i}", "prospect", 0, "new", 0, "active", 0, "at_risk", 0, "churned", 0);
        for (int i = 0; i < 5; i++) {
            if (!can_see(who[k], &c[i]))
                continue;
            n++;
            json_object_set_new(lc, rows[i].lifecycle, json_integer(jint(lc, rows[i].lifecycle) + 1));
            if (rows[i].x < 0) {
                prospects++;
                continue;
            }
            fitted++;
            expected += atof(rows[i].expected);
            clv += cents(rows[i].clv);
        }
        json_t *want = keep(json_pack("{s:I, s:I, s:I, s:o, s:f, s:s, s:n, s:s, s:i}", "customers", (json_int_t)n,
                                      "fitted", (json_int_t)fitted, "prospects", (json_int_t)prospects, "lifecycles",
                                      lc, "expected_purchases", expected, "clv", money(clv), "calibration", "scope",
                                      scope_of(who[k]), "duration_ms", 2310));
        json_t *got = json_object_get(doc, "stats");
        /* expected_purchases is a number; compare it as one (sums of exact binary fractions here). */
        ck_assert_msg(json_is_number(json_object_get(got, "expected_purchases")) &&
                          json_number_value(json_object_get(got, "expected_purchases")) == expected,
                      "expected_purchases %s", jshow(json_object_get(got, "expected_purchases")));
        json_object_set_new(want, "expected_purchases", json_deep_copy(json_object_get(got, "expected_purchases")));
        expect_json_eq(got, want, fmt("clv stats for user %d", who[k]));
        expect_json_eq(json_object_get(doc, "model"), redacted, fmt("clv model for user %d", who[k]));
        ck_assert(json_is_null(json_object_get(doc, "customers_total")));
    }
    json_t *st = json_object_get(run_as(MANAGER, run, "clv"), "stats");
    ck_assert_int_eq(jint(st, "customers"), 3);
    ck_assert_str_eq(jstr(st, "clv"), "1010.35");
    st = json_object_get(run_as(REP_S, run, "clv"), "stats");
    ck_assert_int_eq(jint(st, "prospects"), 1);
    ck_assert_str_eq(jstr(st, "clv"), "0.00");
}
END_TEST

START_TEST(summary_defaults_to_the_latest_succeeded_rfm_run)
{
    const char *tag = uniq("latest");
    cust_t c = make_customer(REP_N, -1, tag);
    res_t champ = {"champions", "active", "A", "10.00", 1, 3, 5, 5, 5};
    res_t lost = {"hibernating", "churned", "C", "1.00", 500, 1, 1, 1, 1};
    /* a: finished last; b: a higher id but finished earlier; then a failed and a clv run finished later still. */
    long long a = sim_run("rfm", "succeeded", RFM_PARAMS("2026-01-31T00:00:00Z"), "now()");
    long long b = sim_run("rfm", "succeeded", RFM_PARAMS("2026-02-28T00:00:00Z"), "now() - interval '1 hour'");
    sim_run("rfm", "failed", RFM_PARAMS("2026-03-31T00:00:00Z"), "clock_timestamp()");
    long long clv = sim_run("clv", "succeeded", "{}", "clock_timestamp()");
    sim_history(a, c.id, &champ);
    sim_history(b, c.id, &lost);
    sim_history(clv, c.id, &lost);
    th_resp_t *r = http_get(REP_N, "/v1/analytics/summary");
    expect_status(r, 200);
    ck_assert_int_eq(jint(r->json, "run_id"), a);
    expect_json_eq(r->json, expected_summary(REP_N, a, &c, &champ, 1), "default summary");
    /* An explicit run_id wins. */
    r = http_get(REP_N, fmt("/v1/analytics/summary?run_id=%lld", b));
    expect_status(r, 200);
    expect_json_eq(r->json, expected_summary(REP_N, b, &c, &lost, 1), "summary of b");
}
END_TEST

START_TEST(summary_404_409_and_400)
{
    long long queued = jint(create_run(ANALYST, "{\"kind\":\"rfm\"}"), "id");
    long long running = sim_run("rfm", "running", RFM_PARAMS("2026-01-31T00:00:00Z"), NULL);
    long long failed = sim_run("rfm", "failed", RFM_PARAMS("2026-01-31T00:00:00Z"), "now()");
    long long cancelled = sim_run("rfm", "cancelled", RFM_PARAMS("2026-01-31T00:00:00Z"), "now()");
    const long long not_done[] = {queued, running, failed, cancelled};
    for (size_t i = 0; i < 4; i++) {
        expect_problem(http_get(ANALYST, fmt("/v1/analytics/summary?run_id=%lld", not_done[i])), 409, "conflict");
        expect_problem(http_get(REP_N, fmt("/v1/analytics/summary?run_id=%lld", not_done[i])), 409, "conflict");
    }
    expect_problem(http_get(ANALYST, "/v1/analytics/summary?run_id=999999999"), 404, "not-found");
    th_resp_t *r = http_get(ANALYST, "/v1/analytics/summary?run_id=abc");
    expect_problem(r, 400, "bad-request");
    expect_error(r, "run_id", "invalid_format");
    r = http_get(ANALYST, "/v1/analytics/summary?run=1");
    expect_problem(r, 400, "bad-request");
    expect_error(r, "run", "unknown_parameter");
}
END_TEST

START_TEST(summary_of_no_visible_customer_is_zero_with_two_decimals)
{
    /* A run whose customers are all in team north: the south rep sees none of them. */
    const char *tag = uniq("zero");
    cust_t c = make_customer(REP_N, -1, tag);
    res_t x = {"champions", "active", "A", "99.99", 1, 2, 5, 5, 5};
    long long run = sim_run("rfm", "succeeded", RFM_PARAMS("2026-01-31T00:00:00Z"), "now() - interval '2 days'");
    sim_history(run, c.id, &x);
    th_resp_t *r = http_get(REP_S, fmt("/v1/analytics/summary?run_id=%lld", run));
    expect_status(r, 200);
    /* Decimal amounts always carry exactly two places (the API's convention): "0.00", not "0". */
    expect_json_eq(r->json,
                   jparse(fmt("{\"run_id\":%lld,\"customers\":0,\"revenue\":\"0.00\",\"segments\":{},"
                              "\"lifecycles\":{},\"tiers\":{}}",
                              run)),
                   "summary without visible customers");
}
END_TEST

START_TEST(summary_404_when_no_run_has_succeeded)
{
    /* A database of its own (a fresh clone of the template) and an API process of its own. */
    char url[256];
    snprintf(url, sizeof(url), "%s", th_db_create("analytics_api_empty"));
    th_user_add(url, "analyst@empty.test", "Ann Empty", "analyst", NULL, PASSWORD);
    th_api_t own;
    th_api_start(&own, url, th_redis_url(REDIS_DB), api_env);
    char *token = keep(calloc(1, 2048));
    ck_assert_int_eq(th_login(own.port, "analyst@empty.test", PASSWORD, token, NULL), 200);
    th_resp_t *r = call_port(own.port, token, "GET", "/v1/analytics/summary", NULL, NULL, NULL, NULL);
    expect_problem(r, 404, "not-found");
    /* A queued run has not succeeded either. */
    r = call_port(own.port, token, "POST", "/v1/analytics/runs", JSON_T, "{\"kind\":\"rfm\"}", NULL, NULL);
    expect_status(r, 202);
    long long id = jint(r->json, "id");
    r = call_port(own.port, token, "GET", "/v1/analytics/summary", NULL, NULL, NULL, NULL);
    expect_problem(r, 404, "not-found");
    r = call_port(own.port, token, "GET", fmt("/v1/analytics/summary?run_id=%lld", id), NULL, NULL, NULL, NULL);
    expect_problem(r, 409, "conflict");
    r = call_port(own.port, token, "GET", fmt("/v1/analytics/transitions?from_run=%lld&to_run=%lld", id, id), NULL,
                  NULL, NULL, NULL);
    expect_problem(r, 409, "conflict");
    ck_assert_int_eq(th_api_stop(&own, SIGTERM, 15), 0);
}
END_TEST

/* --- results: transitions ------------------------------------------------------------ */

typedef struct {
    int owner;
    long long team;        /* as for make_customer */
    const char *from, *to; /* NULL: not in that run */
} move_t;

START_TEST(transitions_full_matrix_scoped_and_summing_to_customers)
{
    static const move_t moves[] = {
        {REP_N, -1, "champions", "loyal_customers"},
        {REP_N, -1, "champions", "loyal_customers"},
        {REP_N, -1, "new_customers", "champions"},
        {REP_S, -1, "at_risk", "hibernating"},
        {DIRECTOR, -2, "prospect", "new_customers"}, /* -2: team north */
        {DIRECTOR, 0, "champions", "champions"},
        {REP_N, -1, "about_to_sleep", NULL}, /* only in the first run */
        {REP_S, -1, NULL, "promising"},      /* only in the second run */
        {REP_S, -1, "cant_lose_them", "at_risk"},
    };
    enum { N = sizeof(moves) / sizeof(moves[0]) };
    const char *tag = uniq("moves");
    cust_t c[N];
    long long r1 = sim_run("rfm", "succeeded", RFM_PARAMS("2026-01-31T00:00:00Z"), "now() - interval '3 days'");
    long long r2 = sim_run("rfm", "succeeded", RFM_PARAMS("2026-02-28T00:00:00Z"), "now() - interval '3 days'");
    for (int i = 0; i < N; i++) {
        c[i] = make_customer(moves[i].owner, moves[i].team == -2 ? team_north : moves[i].team, tag);
        res_t a = {moves[i].from, "active", "A", "1.00", 1, 1, 3, 3, 3}, b = a;
        b.segment = moves[i].to;
        if (moves[i].from != NULL)
            sim_history(r1, c[i].id, &a);
        if (moves[i].to != NULL)
            sim_history(r2, c[i].id, &b);
    }
    static const int who[] = {ANALYST, DIRECTOR, MANAGER, REP_N, REP_S};
    for (size_t k = 0; k < sizeof(who) / sizeof(who[0]); k++) {
        long long want[11][11] = {{0}}, want_total = 0;
        for (int i = 0; i < N; i++)
            if (moves[i].from != NULL && moves[i].to != NULL && can_see(who[k], &c[i])) {
                want[seg_index(moves[i].from)][seg_index(moves[i].to)]++;
                want_total++;
            }
        th_resp_t *r = http_get(who[k], fmt("/v1/analytics/transitions?from_run=%lld&to_run=%lld", r1, r2));
        expect_status(r, 200);
        ck_assert_int_eq(jint(r->json, "from_run"), r1);
        ck_assert_int_eq(jint(r->json, "to_run"), r2);
        ck_assert_msg(jint(r->json, "customers") == want_total, "user %d: customers %lld, want %lld", who[k],
                      jint(r->json, "customers"), want_total);
        json_t *segs = jget(r, "segments");
        ck_assert_uint_eq(json_array_size(segs), 11);
        for (int i = 0; i < 11; i++)
            ck_assert_str_eq(json_string_value(json_array_get(segs, (size_t)i)), segment_order[i]);
        json_t *matrix = jget(r, "matrix");
        ck_assert_msg(json_is_object(matrix) && json_object_size(matrix) == 11, "matrix %s", jshow(matrix));
        long long sum = 0;
        for (int i = 0; i < 11; i++) {
            json_t *row = json_object_get(matrix, segment_order[i]);
            ck_assert_msg(json_is_object(row) && json_object_size(row) == 11, "row %s: %s", segment_order[i],
                          jshow(row));
            for (int j = 0; j < 11; j++) {
                json_t *cell = json_object_get(row, segment_order[j]);
                ck_assert_msg(json_is_integer(cell), "cell %s/%s: %s", segment_order[i], segment_order[j], jshow(cell));
                ck_assert_msg(json_integer_value(cell) == want[i][j], "user %d: cell %s -> %s is %lld, want %lld",
                              who[k], segment_order[i], segment_order[j], (long long)json_integer_value(cell),
                              want[i][j]);
                sum += json_integer_value(cell);
            }
        }
        ck_assert_int_eq(sum, jint(r->json, "customers"));
    }
    /* Spot checks against the oracle itself. */
    th_resp_t *r = http_get(MANAGER, fmt("/v1/analytics/transitions?from_run=%lld&to_run=%lld", r1, r2));
    ck_assert_int_eq(jint(r->json, "customers"), 4);
    ck_assert_int_eq(jint(json_object_get(jget(r, "matrix"), "champions"), "loyal_customers"), 2);
    ck_assert_int_eq(jint(json_object_get(jget(r, "matrix"), "prospect"), "new_customers"), 1);
    r = http_get(REP_S, fmt("/v1/analytics/transitions?from_run=%lld&to_run=%lld", r1, r2));
    ck_assert_int_eq(jint(r->json, "customers"), 2);
    /* The other direction is the transposed matrix. */
    r = http_get(ANALYST, fmt("/v1/analytics/transitions?from_run=%lld&to_run=%lld", r2, r1));
    expect_status(r, 200);
    ck_assert_int_eq(jint(r->json, "customers"), 7);
    ck_assert_int_eq(jint(json_object_get(jget(r, "matrix"), "loyal_customers"), "champions"), 2);
    ck_assert_int_eq(jint(json_object_get(jget(r, "matrix"), "champions"), "loyal_customers"), 0);
}
END_TEST

START_TEST(transitions_errors)
{
    long long ok = sim_run("rfm", "succeeded", RFM_PARAMS("2026-01-31T00:00:00Z"), "now() - interval '5 days'");
    long long queued = jint(create_run(ANALYST, "{\"kind\":\"rfm\"}"), "id");
    long long failed = sim_run("rfm", "failed", RFM_PARAMS("2026-01-31T00:00:00Z"), "now() - interval '5 days'");
    /* Without common customers: a full matrix of zeros. */
    th_resp_t *r = http_get(REP_N, fmt("/v1/analytics/transitions?from_run=%lld&to_run=%lld", ok, ok));
    expect_status(r, 200);
    ck_assert_int_eq(jint(r->json, "customers"), 0);
    ck_assert_uint_eq(json_object_size(jget(r, "matrix")), 11);
    r = http_get(ANALYST, fmt("/v1/analytics/transitions?from_run=999999999&to_run=%lld", ok));
    expect_problem(r, 404, "not-found");
    r = http_get(ANALYST, fmt("/v1/analytics/transitions?from_run=%lld&to_run=999999999", ok));
    expect_problem(r, 404, "not-found");
    r = http_get(ANALYST, fmt("/v1/analytics/transitions?from_run=%lld&to_run=%lld", queued, ok));
    expect_problem(r, 409, "conflict");
    r = http_get(MANAGER, fmt("/v1/analytics/transitions?from_run=%lld&to_run=%lld", ok, failed));
    expect_problem(r, 409, "conflict");
    r = http_get(ANALYST, fmt("/v1/analytics/transitions?from_run=%lld", ok));
    expect_problem(r, 400, "bad-request");
    expect_error(r, "to_run", "required");
    r = http_get(ANALYST, "/v1/analytics/transitions");
    expect_problem(r, 400, "bad-request");
    expect_error(r, "from_run", "required");
    expect_error(r, "to_run", "required");
    r = http_get(ANALYST, fmt("/v1/analytics/transitions?from_run=x&to_run=%lld", ok));
    expect_problem(r, 400, "bad-request");
    expect_error(r, "from_run", "invalid_format");
    expect_problem(http_get(INTEG, fmt("/v1/analytics/transitions?from_run=%lld&to_run=%lld", ok, ok)), 403,
                   "forbidden");
}
END_TEST

/* --- results: customer history --------------------------------------------------------- */

START_TEST(customer_history_newest_first_and_scoped)
{
    const char *tag = uniq("hist");
    cust_t h = make_customer(REP_N, -1, tag);
    cust_t p = make_customer(REP_N, -1, tag);
    cust_t none = make_customer(REP_N, -1, tag);
    long long r1 = sim_run("rfm", "succeeded", RFM_PARAMS("2026-01-31T00:00:00Z"), "'2026-02-01 03:00:00+00'");
    long long r2 = sim_run("rfm", "succeeded", RFM_PARAMS("2026-02-28T00:00:00Z"), "'2026-03-01 03:00:00.123456+00'");
    res_t a = {"new_customers", "new", "B", "250.00", 5, 1, 5, 1, 3};
    res_t b = {"potential_loyalists", "active", "A", "1250.40", 2, 3, 5, 3, 5};
    res_t q = {"prospect", "prospect", NULL, NULL, -1, -1, 0, 0, 0};
    sim_history(r1, h.id, &a);
    sim_history(r2, h.id, &b);
    sim_history(r1, p.id, &q);

    json_t *e2 = json_deep_copy(res_json(&b)), *e1 = json_deep_copy(res_json(&a));
    json_object_set_new(e2, "run_id", json_integer(r2));
    json_object_set_new(e2, "computed_at", json_string("2026-03-01T03:00:00.123456Z"));
    json_object_set_new(e2, "as_of", json_string("2026-02-28T00:00:00Z"));
    json_object_set_new(e1, "run_id", json_integer(r1));
    json_object_set_new(e1, "computed_at", json_string("2026-02-01T03:00:00.000000Z"));
    json_object_set_new(e1, "as_of", json_string("2026-01-31T00:00:00Z"));
    json_t *want = keep(json_pack("{s:[o,o]}", "data", e2, e1));

    static const int readers[] = {ANALYST, DIRECTOR, MANAGER, REP_N};
    for (size_t k = 0; k < sizeof(readers) / sizeof(readers[0]); k++) {
        th_resp_t *r = http_get(readers[k], fmt("/v1/customers/%lld/analytics/history", h.id));
        expect_status(r, 200);
        expect_json_eq(r->json, want, fmt("history for user %d", readers[k]));
    }
    /* A prospect's entry: nulls where nothing was scored. */
    th_resp_t *r = http_get(REP_N, fmt("/v1/customers/%lld/analytics/history", p.id));
    expect_status(r, 200);
    json_t *pe = json_deep_copy(res_json(&q));
    json_object_set_new(pe, "run_id", json_integer(r1));
    json_object_set_new(pe, "computed_at", json_string("2026-02-01T03:00:00.000000Z"));
    json_object_set_new(pe, "as_of", json_string("2026-01-31T00:00:00Z"));
    expect_json_eq(r->json, keep(json_pack("{s:[o]}", "data", pe)), "prospect history");
    /* Never scored: an empty list. */
    r = http_get(REP_N, fmt("/v1/customers/%lld/analytics/history", none.id));
    expect_status(r, 200);
    expect_json_eq(r->json, jparse("{\"data\":[]}"), "empty history");
    /* Outside the scope, unknown, deleted: 404; no analytics read at all: 403. */
    expect_problem(http_get(REP_S, fmt("/v1/customers/%lld/analytics/history", h.id)), 404, "not-found");
    expect_problem(http_get(ANALYST, "/v1/customers/999999999/analytics/history"), 404, "not-found");
    expect_problem(http_get(INTEG, fmt("/v1/customers/%lld/analytics/history", h.id)), 403, "forbidden");
    expect_status(http_delete(DIRECTOR, fmt("/v1/customers/%lld", p.id), NULL), 204);
    expect_problem(http_get(ANALYST, fmt("/v1/customers/%lld/analytics/history", p.id)), 404, "not-found");
    /* The manager loses it when it leaves the team. */
    expect_status(http_patch(DIRECTOR, fmt("/v1/customers/%lld", h.id),
                             fmt("{\"owner_id\":%lld,\"team_id\":%lld}", users[REP_S].id, team_south), NULL),
                  200);
    expect_problem(http_get(MANAGER, fmt("/v1/customers/%lld/analytics/history", h.id)), 404, "not-found");
    expect_status(http_get(REP_S, fmt("/v1/customers/%lld/analytics/history", h.id)), 200);
}
END_TEST

/* --- customers: the analytics member and the filters ------------------------------------- */

static json_t *ids_of(const json_t *list)
{
    json_t *ids = keep(json_array()), *v;
    size_t i;
    json_array_foreach(list, i, v) json_array_append_new(ids, json_integer(jint(v, "id")));
    return ids;
}

static json_t *id_list(int n, ...)
{
    va_list ap;
    json_t *ids = keep(json_array());
    va_start(ap, n);
    for (int i = 0; i < n; i++)
        json_array_append_new(ids, json_integer(va_arg(ap, long long)));
    va_end(ap);
    return ids;
}

START_TEST(customers_embed_analytics_and_filter_by_segment_lifecycle_tier)
{
    const char *tag = uniq("seg");
    cust_t e1 = make_customer(REP_N, -1, tag);
    cust_t e2 = make_customer(REP_N, -1, tag);
    cust_t e3 = make_customer(REP_S, -1, tag);
    cust_t e4 = make_customer(REP_N, -1, tag); /* no analytics */
    cust_t e5 = make_customer(REP_S, -1, tag);
    long long run = sim_run("rfm", "succeeded", RFM_PARAMS("2026-01-31T00:00:00Z"), "'2026-02-01 03:00:00+00'");
    res_t a1 = {"champions", "active", "A", "900.00", 4, 12, 5, 5, 5};
    res_t a2 = {"at_risk", "at_risk", "B", "80.10", 150, 3, 2, 3, 2};
    res_t a3 = {"prospect", "prospect", NULL, NULL, -1, -1, 0, 0, 0};
    res_t a5 = {"champions", "new", "C", "15.00", 1, 5, 5, 5, 1};
    sim_current(run, "2026-02-01 03:00:00+00", e1.id, &a1);
    sim_current(run, "2026-02-01 03:00:00+00", e2.id, &a2);
    sim_current(run, "2026-02-01 03:00:00+00", e3.id, &a3);
    sim_current(run, "2026-02-01 03:00:00+00", e5.id, &a5);

    /* GET embeds analytics from customer_analytics; null without. */
    th_resp_t *r = http_get(REP_N, fmt("/v1/customers/%lld", e1.id));
    expect_status(r, 200);
    json_t *want = json_deep_copy(res_json(&a1));
    json_object_set_new(want, "run_id", json_integer(run));
    json_object_set_new(want, "computed_at", json_string("2026-02-01T03:00:00.000000Z"));
    json_object_set_new(want, "clv", json_null()); /* no clv run has included it */
    expect_json_eq(jget(r, "analytics"), keep(want), "analytics of e1");
    r = http_get(ANALYST, fmt("/v1/customers/%lld", e3.id));
    expect_status(r, 200);
    want = json_deep_copy(res_json(&a3));
    json_object_set_new(want, "run_id", json_integer(run));
    json_object_set_new(want, "computed_at", json_string("2026-02-01T03:00:00.000000Z"));
    json_object_set_new(want, "clv", json_null());
    expect_json_eq(jget(r, "analytics"), keep(want), "analytics of the prospect e3");
    r = http_get(REP_N, fmt("/v1/customers/%lld", e4.id));
    expect_status(r, 200);
    ck_assert_msg(json_is_null(jget(r, "analytics")), "analytics of e4: %s", jshow(jget(r, "analytics")));

    /* Filters, alone and combined (always with the tag, to see only this test's customers). */
    static const struct {
        int who;
        const char *query;
        int n;
        int idx[5];
    } cases[] = {
        {DIRECTOR, "", 5, {1, 2, 3, 4, 5}},
        {DIRECTOR, "&segment=champions", 2, {1, 5}},
        {DIRECTOR, "&segment=at_risk", 1, {2}},
        {DIRECTOR, "&segment=prospect", 1, {3}},
        {DIRECTOR, "&segment=hibernating", 0, {0}},
        {DIRECTOR, "&lifecycle=at_risk", 1, {2}},
        {DIRECTOR, "&lifecycle=active", 1, {1}},
        {DIRECTOR, "&lifecycle=prospect", 1, {3}},
        {DIRECTOR, "&tier=A", 1, {1}},
        {DIRECTOR, "&tier=C", 1, {5}},
        {DIRECTOR, "&segment=champions&tier=C", 1, {5}},
        {DIRECTOR, "&segment=champions&lifecycle=new", 1, {5}},
        {DIRECTOR, "&segment=champions&lifecycle=active&tier=A", 1, {1}},
        {DIRECTOR, "&lifecycle=new&tier=A", 0, {0}},
        {ANALYST, "&segment=champions", 2, {1, 5}},
        {REP_N, "&segment=champions", 1, {1}},
        {REP_S, "&segment=champions", 1, {5}},
        {MANAGER, "&segment=champions", 1, {1}},
        {MANAGER, "&tier=B", 1, {2}},
        {REP_S, "&tier=B", 0, {0}},
    };
    const long long ids[6] = {0, e1.id, e2.id, e3.id, e4.id, e5.id};
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        r = http_get(cases[k].who, fmt("/v1/customers?tag=%s&sort=created_at&count=true%s", tag, cases[k].query));
        expect_status(r, 200);
        json_t *want_ids = keep(json_array());
        for (int i = 0; i < cases[k].n; i++)
            json_array_append_new(want_ids, json_integer(ids[cases[k].idx[i]]));
        expect_json_eq(ids_of(jget(r, "data")), want_ids, fmt("user %d, filter %s", cases[k].who, cases[k].query));
        ck_assert_int_eq(jint(r->json, "total"), cases[k].n);
    }
    /* fields can pick analytics; paging keeps the filter. */
    r = http_get(DIRECTOR, fmt("/v1/customers?tag=%s&segment=champions&fields=id,analytics", tag));
    expect_status(r, 200);
    json_t *item = json_array_get(jget(r, "data"), 0);
    ck_assert_uint_eq(json_object_size(item), 2);
    ck_assert_str_eq(jstr(json_object_get(item, "analytics"), "segment"), "champions");
    json_t *all = list_all(DIRECTOR, fmt("/v1/customers?tag=%s&segment=champions", tag), 1);
    expect_json_eq(ids_of(all), id_list(2, e1.id, e5.id), "paged filter");

    /* Bad values: 400 naming the parameter. */
    static const char *const bad[] = {"segment=vip", "segment=Champions", "lifecycle=dormant", "tier=D", "tier=a",
                                      "tier="};
    for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
        r = http_get(DIRECTOR, fmt("/v1/customers?%s", bad[k]));
        expect_problem(r, 400, "bad-request");
        char name[16];
        snprintf(name, sizeof(name), "%.*s", (int)(strchr(bad[k], '=') - bad[k]), bad[k]);
        expect_error(r, name, "invalid_value");
    }
}
END_TEST

/* --- schedules ------------------------------------------------------------------------- */

static th_resp_t *create_schedule(int who, const char *body)
{
    return http_post(who, "/v1/analytics/schedules", body);
}

/* next_run_at is `want` ("YYYY-MM-DDTHH:MM:SS" UTC) and in the future. */
static void expect_next_(const json_t *sched, const char *want, int line)
{
    const char *next = jstr(sched, "next_run_at");
    ck_assert_msg(next != NULL && strncmp(next, want, 19) == 0, "line %d: next_run_at %s, want %s (UTC)", line,
                  next != NULL ? next : "(none)", want);
    ck_assert_msg(utc_seconds(next) > (long long)time(NULL), "line %d: next_run_at %s is not in the future", line,
                  next);
}
#define expect_next(s, want) expect_next_((s), (want), __LINE__)

START_TEST(schedule_create_get_and_next_run_at)
{
    time_t t0 = time(NULL);
    th_resp_t *r = create_schedule(ANALYST, "{\"kind\":\"rfm\",\"cron\":\"0 6 * * 1\",\"timezone\":\"Europe/Berlin\","
                                            "\"params\":{\"lookback_days\":365}}");
    expect_status(r, 201);
    json_t *s = r->json;
    long long id = jint(s, "id");
    ck_assert_int_gt(id, 0);
    const char *path = fmt("/v1/analytics/schedules/%lld", id);
    ck_assert_str_eq(header(r, "location"), path);
    ck_assert_str_eq(header(r, "etag"), "\"1\"");
    ck_assert_str_eq(jstr(s, "kind"), "rfm");
    ck_assert_str_eq(jstr(s, "cron"), "0 6 * * 1");
    ck_assert_str_eq(jstr(s, "timezone"), "Europe/Berlin");
    /* params are stored as given; each run completes them with as_of = its due time. */
    expect_json_eq(json_object_get(s, "params"), jparse("{\"lookback_days\":365}"), "schedule params");
    ck_assert(json_is_true(json_object_get(s, "enabled")));
    ck_assert(json_is_null(json_object_get(s, "last_run_at")));
    ck_assert(json_is_null(json_object_get(s, "last_run_id")));
    ck_assert_int_eq(jint(s, "created_by"), users[ANALYST].id);
    ck_assert_int_eq(jint(s, "version"), 1);
    ck_assert_msg(is_api_timestamp(jstr(s, "created_at")), "created_at %s", jshow(json_object_get(s, "created_at")));
    ck_assert_msg(is_api_timestamp(jstr(s, "updated_at")), "updated_at %s", jshow(json_object_get(s, "updated_at")));
    ck_assert_int_ge(utc_seconds(jstr(s, "created_at")), (long long)t0 - 1);
    ck_assert_uint_eq(json_object_size(s), 13);
    /* The next Monday 06:00 in Berlin, in UTC. */
    expect_next(s, pg_next("Europe/Berlin", 6, 0, 1, 0));
    const char *next = jstr(s, "next_run_at");
    ck_assert_int_eq(sql_ll("SELECT extract(isodow FROM (timestamptz '%s') AT TIME ZONE 'Europe/Berlin')::int", next),
                     1);
    ck_assert_str_eq(sql_text("SELECT to_char((timestamptz '%s') AT TIME ZONE 'Europe/Berlin', 'HH24:MI:SS')", next),
                     "06:00:00");
    ck_assert_int_le(utc_seconds(next) - (long long)t0, 7 * 86400 + 3600);
    ck_assert_str_eq(sql_text("SELECT to_char(next_run_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS')"
                              " FROM analytics_schedules WHERE id = %lld",
                              id),
                     pg_next("Europe/Berlin", 6, 0, 1, 0));

    /* GET: the same document, ETag, 304; every analytics reader may read. */
    static const int readers[] = {ANALYST, DIRECTOR, MANAGER, REP_N, REP_S};
    for (size_t k = 0; k < sizeof(readers) / sizeof(readers[0]); k++) {
        th_resp_t *g = http_get(readers[k], path);
        expect_status(g, 200);
        ck_assert_str_eq(header(g, "etag"), "\"1\"");
        expect_json_eq(g->json, s, "GET schedule");
    }
    th_resp_t *g = call(ANALYST, "GET", path, NULL, NULL, "If-None-Match: \"1\"", NULL);
    expect_status(g, 304);
    expect_problem(http_get(INTEG, path), 403, "forbidden");
    expect_problem(http_get(ANALYST, "/v1/analytics/schedules/999999999"), 404, "not-found");

    /* Other zones and shapes. */
    r = create_schedule(DIRECTOR, "{\"kind\":\"clv\",\"cron\":\"0 0 1 * *\",\"timezone\":\"Asia/Kolkata\"}");
    expect_status(r, 201);
    expect_next(r->json, pg_next("Asia/Kolkata", 0, 0, 0, 1));
    expect_json_eq(jget(r, "params"), jparse("{}"), "default params");
    r = create_schedule(ANALYST, "{\"kind\":\"rfm\",\"cron\":\"@daily\",\"timezone\":\"UTC\",\"enabled\":false}");
    expect_status(r, 201);
    expect_next(r->json, pg_next("UTC", 0, 0, 0, 0));
    ck_assert(json_is_false(jget(r, "enabled")));
    r = create_schedule(ANALYST, "{\"kind\":\"rfm\",\"cron\":\"30 7 * * mon-fri\",\"timezone\":\"America/New_York\"}");
    expect_status(r, 201);
    const char *ny = jstr(r->json, "next_run_at");
    ck_assert_str_eq(sql_text("SELECT to_char((timestamptz '%s') AT TIME ZONE 'America/New_York', 'HH24:MI')", ny),
                     "07:30");
    ck_assert_int_le(sql_ll("SELECT extract(isodow FROM (timestamptz '%s') AT TIME ZONE 'America/New_York')::int", ny),
                     5);
}
END_TEST

START_TEST(schedule_timestamps_follow_the_api_format)
{
    /* Every response timestamp is UTC with microseconds ("2026-01-31T12:00:00.000000Z"), next_run_at included. */
    th_resp_t *r = create_schedule(ANALYST, "{\"kind\":\"rfm\",\"cron\":\"0 6 * * 1\",\"timezone\":\"Europe/Berlin\"}");
    expect_status(r, 201);
    ck_assert_msg(is_api_timestamp(jstr(r->json, "next_run_at")), "next_run_at %s", jshow(jget(r, "next_run_at")));
    long long id = jint(r->json, "id");
    sql_do("UPDATE analytics_schedules SET last_run_at = '2026-01-05 05:00:00+00' WHERE id = %lld", id);
    r = http_get(ANALYST, fmt("/v1/analytics/schedules/%lld", id));
    expect_status(r, 200);
    ck_assert_msg(is_api_timestamp(jstr(r->json, "last_run_at")), "last_run_at %s", jshow(jget(r, "last_run_at")));
}
END_TEST

START_TEST(schedule_validation_names_cron_timezone_params)
{
    long long before = sql_ll("SELECT count(*) FROM analytics_schedules");
    static const struct {
        const char *body, *field, *code;
    } cases[] = {
        {"{\"kind\":\"rfm\",\"cron\":\"61 * * * *\",\"timezone\":\"UTC\"}", "cron", "invalid_format"},
        {"{\"kind\":\"rfm\",\"cron\":\"0 24 * * *\",\"timezone\":\"UTC\"}", "cron", "invalid_format"},
        {"{\"kind\":\"rfm\",\"cron\":\"0 6 * *\",\"timezone\":\"UTC\"}", "cron", "invalid_format"},
        {"{\"kind\":\"rfm\",\"cron\":\"0 0 6 * * 1\",\"timezone\":\"UTC\"}", "cron", "invalid_format"},
        {"{\"kind\":\"rfm\",\"cron\":\"5/15 * * * *\",\"timezone\":\"UTC\"}", "cron", "invalid_format"},
        {"{\"kind\":\"rfm\",\"cron\":\"0 0 L * *\",\"timezone\":\"UTC\"}", "cron", "invalid_format"},
        {"{\"kind\":\"rfm\",\"cron\":\"@reboot\",\"timezone\":\"UTC\"}", "cron", "invalid_format"},
        {"{\"kind\":\"rfm\",\"cron\":\"\",\"timezone\":\"UTC\"}", "cron", "invalid_format"},
        {"{\"kind\":\"rfm\",\"cron\":\"0 0 30 2 *\",\"timezone\":\"UTC\"}", "cron", "invalid_value"},
        {"{\"kind\":\"rfm\",\"cron\":6,\"timezone\":\"UTC\"}", "cron", "invalid_type"},
        {"{\"kind\":\"rfm\",\"timezone\":\"UTC\"}", "cron", "required"},
        {"{\"kind\":\"rfm\",\"cron\":\"0 6 * * 1\",\"timezone\":\"Europe/Atlantis\"}", "timezone", "invalid_value"},
        {"{\"kind\":\"rfm\",\"cron\":\"0 6 * * 1\",\"timezone\":\"CEST\"}", "timezone", "invalid_value"},
        {"{\"kind\":\"rfm\",\"cron\":\"0 6 * * 1\",\"timezone\":\"../../etc/passwd\"}", "timezone", "invalid_value"},
        {"{\"kind\":\"rfm\",\"cron\":\"0 6 * * 1\",\"timezone\":\"\"}", "timezone", "invalid_value"},
        {"{\"kind\":\"rfm\",\"cron\":\"0 6 * * 1\",\"timezone\":1}", "timezone", "invalid_type"},
        {"{\"kind\":\"rfm\",\"cron\":\"0 6 * * 1\"}", "timezone", "required"},
        {"{\"cron\":\"0 6 * * 1\",\"timezone\":\"UTC\"}", "kind", "required"},
        {"{\"kind\":\"segments\",\"cron\":\"0 6 * * 1\",\"timezone\":\"UTC\"}", "kind", "invalid_value"},
        {"{\"kind\":\"rfm\",\"cron\":\"0 6 * * 1\",\"timezone\":\"UTC\",\"params\":{\"lookback_days\":0}}",
         "params.lookback_days", "out_of_range"},
        {"{\"kind\":\"rfm\",\"cron\":\"0 6 * * 1\",\"timezone\":\"UTC\",\"params\":{\"horizon\":5}}", "params.horizon",
         "unknown_field"},
        {"{\"kind\":\"rfm\",\"cron\":\"0 6 * * 1\",\"timezone\":\"UTC\",\"params\":[]}", "params", "invalid_type"},
        {"{\"kind\":\"rfm\",\"cron\":\"0 6 * * 1\",\"timezone\":\"UTC\",\"enabled\":\"yes\"}", "enabled",
         "invalid_type"},
        {"{\"kind\":\"rfm\",\"cron\":\"0 6 * * 1\",\"timezone\":\"UTC\",\"next_run_at\":\"2030-01-01T00:00:00Z\"}",
         "next_run_at", "unknown_field"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        th_resp_t *r = create_schedule(ANALYST, cases[i].body);
        ck_assert_msg(r->status == 422, "case %zu %s: %d %.300s", i, cases[i].body, r->status, r->body);
        expect_invalid(r, cases[i].field, cases[i].code);
    }
    /* The cron message says which field is wrong. */
    th_resp_t *r = create_schedule(ANALYST, "{\"kind\":\"rfm\",\"cron\":\"61 * * * *\",\"timezone\":\"UTC\"}");
    ck_assert_ptr_nonnull(strstr(jstr(find_error(r, "cron"), "message"), "minute"));
    /* Both at once. */
    r = create_schedule(ANALYST, "{\"kind\":\"rfm\",\"cron\":\"61 * * * *\",\"timezone\":\"Mars/Olympus\"}");
    expect_problem(r, 422, "validation-failed");
    expect_error(r, "cron", "invalid_format");
    expect_error(r, "timezone", "invalid_value");
    ck_assert_int_eq(sql_ll("SELECT count(*) FROM analytics_schedules"), before);
    /* Valid forms. */
    static const char *const ok[] = {"*/15 8-18 * * MON-FRI", "0 0 13 * FRI", "@hourly",       "@weekly",
                                     "0 12 * JAN,jul 0",      "0 12 * * 7",   "1-59/2 * * * *"};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        r = create_schedule(ANALYST,
                            fmt("{\"kind\":\"rfm\",\"cron\":\"%s\",\"timezone\":\"Australia/Adelaide\"}", ok[i]));
        ck_assert_msg(r->status == 201, "cron %s: %d %.300s", ok[i], r->status, r->body);
    }
    /* Roles without create. */
    static const int who[] = {MANAGER, REP_N, INTEG};
    for (size_t k = 0; k < sizeof(who) / sizeof(who[0]); k++)
        expect_problem(create_schedule(who[k], "{\"kind\":\"rfm\",\"cron\":\"0 6 * * 1\",\"timezone\":\"UTC\"}"), 403,
                       "forbidden");
}
END_TEST

START_TEST(schedule_patch_revalidates_and_recomputes_with_etags)
{
    th_resp_t *r = create_schedule(ANALYST, "{\"kind\":\"rfm\",\"cron\":\"0 6 * * 1\",\"timezone\":\"Europe/Berlin\","
                                            "\"params\":{\"lookback_days\":365}}");
    expect_status(r, 201);
    long long id = jint(r->json, "id");
    const char *path = fmt("/v1/analytics/schedules/%lld", id);
    const char *created_updated_at = jstr(r->json, "updated_at");

    /* New cron: next_run_at follows. */
    r = http_patch(ANALYST, path, "{\"cron\":\"30 7 * * *\"}", "\"1\"");
    expect_status(r, 200);
    ck_assert_str_eq(header(r, "etag"), "\"2\"");
    ck_assert_int_eq(jint(r->json, "version"), 2);
    ck_assert_str_eq(jstr(r->json, "cron"), "30 7 * * *");
    ck_assert_str_eq(jstr(r->json, "timezone"), "Europe/Berlin");
    expect_next(r->json, pg_next("Europe/Berlin", 7, 30, 0, 0));
    ck_assert_str_ne(jstr(r->json, "updated_at"), created_updated_at);
    /* New zone, same cron: recomputed. */
    r = http_patch(DIRECTOR, path, "{\"timezone\":\"America/New_York\"}", NULL);
    expect_status(r, 200);
    ck_assert_int_eq(jint(r->json, "version"), 3);
    expect_next(r->json, pg_next("America/New_York", 7, 30, 0, 0));
    /* params merge parameter by parameter; null removes one. */
    r = http_patch(ANALYST, path, "{\"params\":{\"tag\":\"vip\",\"new_days\":14}}", "\"3\"");
    expect_status(r, 200);
    expect_json_eq(jget(r, "params"), jparse("{\"lookback_days\":365,\"tag\":\"vip\",\"new_days\":14}"),
                   "merged params");
    r = http_patch(ANALYST, path, "{\"params\":{\"lookback_days\":null}}", NULL);
    expect_status(r, 200);
    expect_json_eq(jget(r, "params"), jparse("{\"tag\":\"vip\",\"new_days\":14}"), "params after removal");
    /* enabled off: still a next_run_at. */
    r = http_patch(ANALYST, path, "{\"enabled\":false}", NULL);
    expect_status(r, 200);
    ck_assert(json_is_false(jget(r, "enabled")));
    expect_next(r->json, pg_next("America/New_York", 7, 30, 0, 0));
    long long version = jint(r->json, "version");
    ck_assert_int_eq(version, 6);
    json_t *current = r->json;

    /* Re-validation of the merged schedule; nothing changes. */
    static const struct {
        const char *body, *field, *code;
    } bad[] = {
        {"{\"cron\":\"61 * * * *\"}", "cron", "invalid_format"},
        {"{\"cron\":\"0 0 31 4 *\"}", "cron", "invalid_value"},
        {"{\"cron\":null}", "cron", "required"},
        {"{\"timezone\":\"Mars/Olympus\"}", "timezone", "invalid_value"},
        {"{\"timezone\":null}", "timezone", "required"},
        {"{\"kind\":\"clv\",\"params\":{\"lookback_days\":7}}", "params.lookback_days",
         "unknown_field"}, /* rfm params do not fit clv */
        {"{\"kind\":\"xyz\"}", "kind", "invalid_value"},
        {"{\"params\":{\"a_share\":\"0.99\"}}", "params.a_share", "invalid_value"},
        {"{\"params\":\"none\"}", "params", "invalid_type"},
        {"{\"enabled\":1}", "enabled", "invalid_type"},
        {"{\"version\":9}", "version", "unknown_field"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        r = http_patch(ANALYST, path, bad[i].body, NULL);
        ck_assert_msg(r->status == 422, "case %zu %s: %d %.300s", i, bad[i].body, r->status, r->body);
        expect_invalid(r, bad[i].field, bad[i].code);
    }
    r = http_patch(ANALYST, path, "[]", NULL);
    expect_problem(r, 422, "validation-failed");
    r = http_get(ANALYST, path);
    expect_status(r, 200);
    expect_json_eq(r->json, current, "schedule after refused patches");

    /* Preconditions. */
    expect_problem(http_patch(ANALYST, path, "{\"enabled\":true}", "\"1\""), 412, "precondition-failed");
    expect_problem(http_patch(ANALYST, path, "{\"enabled\":true}", "garbage"), 412, "precondition-failed");
    /* Weak tags never match If-Match (RFC 9110 strong comparison). */
    expect_problem(http_patch(ANALYST, path, "{\"enabled\":true}", fmt("W/\"%lld\"", version)), 412,
                   "precondition-failed");
    r = http_patch(ANALYST, path, "{\"enabled\":true,\"kind\":\"clv\",\"params\":null}", fmt("\"%lld\"", version));
    expect_status(r, 200);
    ck_assert_str_eq(jstr(r->json, "kind"), "clv");
    expect_json_eq(jget(r, "params"), jparse("{}"), "params reset");
    r = http_patch(ANALYST, path, "{\"enabled\":null}", "*");
    expect_status(r, 200);
    ck_assert(json_is_true(jget(r, "enabled")));
    /* Roles without update; unknown ids. */
    expect_problem(http_patch(MANAGER, path, "{\"enabled\":false}", NULL), 403, "forbidden");
    expect_problem(http_patch(REP_N, path, "{\"enabled\":false}", NULL), 403, "forbidden");
    expect_problem(http_patch(INTEG, path, "{\"enabled\":false}", NULL), 403, "forbidden");
    expect_problem(http_patch(ANALYST, "/v1/analytics/schedules/999999999", "{\"enabled\":false}", NULL), 404,
                   "not-found");
    r = call(ANALYST, "PATCH", path, JSON_T, "{\"enabled\":false}", NULL, NULL);
    expect_problem(r, 415, "unsupported-media-type");
}
END_TEST

START_TEST(schedule_delete_with_if_match)
{
    th_resp_t *r = create_schedule(DIRECTOR, "{\"kind\":\"rfm\",\"cron\":\"@daily\",\"timezone\":\"UTC\"}");
    expect_status(r, 201);
    long long id = jint(r->json, "id");
    const char *path = fmt("/v1/analytics/schedules/%lld", id);
    /* A run it started keeps existing, without the schedule. */
    long long run = sql_ll("INSERT INTO analytics_runs (kind, params, schedule_id, due_at) VALUES ('rfm', '{}', %lld,"
                           " now()) RETURNING id",
                           id);
    expect_problem(http_delete(MANAGER, path, NULL), 403, "forbidden");
    expect_problem(http_delete(REP_S, path, NULL), 403, "forbidden");
    expect_problem(http_delete(ANALYST, path, "\"2\""), 412, "precondition-failed");
    expect_status(http_get(ANALYST, path), 200);
    expect_status(http_delete(ANALYST, path, "\"1\""), 204);
    expect_problem(http_get(ANALYST, path), 404, "not-found");
    expect_problem(http_delete(ANALYST, path, NULL), 404, "not-found");
    ck_assert_int_eq(sql_ll("SELECT count(*) FROM analytics_schedules WHERE id = %lld", id), 0);
    r = http_get(ANALYST, fmt("/v1/analytics/runs/%lld", run));
    expect_status(r, 200);
    ck_assert(json_is_null(jget(r, "schedule_id")));
}
END_TEST

START_TEST(schedule_list_pages_by_id)
{
    long long mine[3];
    for (int i = 0; i < 3; i++) {
        th_resp_t *r = create_schedule(ANALYST, "{\"kind\":\"rfm\",\"cron\":\"0 6 * * 1\",\"timezone\":\"UTC\"}");
        expect_status(r, 201);
        mine[i] = jint(r->json, "id");
    }
    json_t *all = list_all(REP_N, "/v1/analytics/schedules", 2);
    ck_assert_int_eq((long long)json_array_size(all), sql_ll("SELECT count(*) FROM analytics_schedules"));
    for (size_t i = 1; i < json_array_size(all); i++)
        ck_assert_int_gt(jint(json_array_get(all, i), "id"), jint(json_array_get(all, i - 1), "id"));
    for (int i = 0; i < 3; i++)
        ck_assert(list_has(all, mine[i]));
    th_resp_t *r = http_get(ANALYST, fmt("/v1/analytics/schedules/%lld", mine[1]));
    size_t i;
    json_t *v;
    json_array_foreach(all, i, v) if (jint(v, "id") == mine[1]) expect_json_eq(v, r->json, "listed schedule");
    expect_problem(http_get(INTEG, "/v1/analytics/schedules"), 403, "forbidden");
    r = http_get(ANALYST, "/v1/analytics/schedules?kind=rfm");
    expect_problem(r, 400, "bad-request");
    expect_error(r, "kind", "unknown_parameter");
    r = http_get(ANALYST, "/v1/analytics/schedules?limit=201");
    expect_problem(r, 400, "bad-request");
    expect_error(r, "limit", "out_of_range");
}
END_TEST

/* --- the suite ------------------------------------------------------------------------------------------ */

static Suite *analytics_suite(void)
{
    Suite *s = suite_create("analytics_api");
    TCase *tc = tcase_create("runs");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, run_create_answers_202_with_complete_params_and_one_outbox_row);
    tcase_add_test(tc, run_create_clv_defaults_and_given_values);
    tcase_add_test(tc, run_create_needs_create_permission);
    tcase_add_test(tc, run_create_validation_names_each_field);
    tcase_add_test(tc, run_tag_length_counts_characters_like_customer_tags);
    tcase_add_test(tc, run_get_is_readable_by_every_analytics_reader);
    tcase_add_test(tc, run_list_newest_first_with_filters_and_cursor_paging);
    tcase_add_test(tc, run_cancel_queued_then_409);
    suite_add_tcase(s, tc);

    tc = tcase_create("results");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, summary_counts_only_what_each_caller_may_see);
    tcase_add_test(tc, run_stats_are_scoped_like_the_summary);
    tcase_add_test(tc, clv_run_stats_and_model_are_scoped);
    tcase_add_test(tc, summary_defaults_to_the_latest_succeeded_rfm_run);
    tcase_add_test(tc, summary_404_409_and_400);
    tcase_add_test(tc, summary_of_no_visible_customer_is_zero_with_two_decimals);
    tcase_add_test(tc, summary_404_when_no_run_has_succeeded);
    tcase_add_test(tc, transitions_full_matrix_scoped_and_summing_to_customers);
    tcase_add_test(tc, transitions_errors);
    tcase_add_test(tc, customer_history_newest_first_and_scoped);
    tcase_add_test(tc, customers_embed_analytics_and_filter_by_segment_lifecycle_tier);
    suite_add_tcase(s, tc);

    tc = tcase_create("schedules");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, schedule_create_get_and_next_run_at);
    tcase_add_test(tc, schedule_timestamps_follow_the_api_format);
    tcase_add_test(tc, schedule_validation_names_cron_timezone_params);
    tcase_add_test(tc, schedule_patch_revalidates_and_recomputes_with_etags);
    tcase_add_test(tc, schedule_delete_with_if_match);
    tcase_add_test(tc, schedule_list_pages_by_id);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return crew_main(&conf, analytics_suite);
}
