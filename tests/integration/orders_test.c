/*
 * tests/integration/orders_test.c - /v1/orders and /v1/changes/orders
 * against the real API, PostgreSQL and Redis: an order's scope is its
 * customer's, customers are referenced by id or external id, lines add up
 * to the total, and the CRUD, upsert, bulk, list and feed conventions are
 * the same as for customers.
 *
 * crew_main() (tests/support/crew.c) builds the suite's database, adds one
 * user per role, starts one API process and logs every user in once
 * (argon2 is slow under ASan); Check forks each test, which inherits the
 * tokens and talks to the API over HTTP. Tests do not depend on each other:
 * each creates its own customers and orders and filters lists by its
 * customers or by an ordered_at year no other test uses. Expected scopes
 * come from the crew's oracle applied to the order's customer (alias c:
 * its owner and team compared directly), never from the API's own SQL.
 * Everything a test allocates stays reachable from a global list, so
 * LeakSanitizer stays quiet without a free() after every call.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>
#include <libpq-fe.h>

#include "tests/support/crew.h"

static const char *const api_env[] = {
    "CLIENTELE_THREADS=2",
    /* 5,000-item bulks under the sanitizers on a busy 2-core machine take seconds: limits are not timings. */
    "CLIENTELE_DB_TIMEOUT=20s",
    "CLIENTELE_JWT_SECRET=orders-suite-secret-0123456789abcdefghijk",
    NULL,
};

static const crew_conf_t conf = {
    .name = "orders",
    .redis_db = 5,
    .env = api_env,
    .password = "orders-suite-password",
    .domain = "orders.test",
    .resource = "orders",
    .item = "order",
};

/* --- customers and orders -------------------------------------------------------- */

static const char *opath(long long id)
{
    return fmt("/v1/orders/%lld", id);
}

typedef struct {
    long long id, owner, team;
    const char *ext;
} cust_t;

/* A company owned by `owner` (team derived from the owner), with a unique external id; made by the director. */
static cust_t make_cust(int owner)
{
    const char *ext = uniq("cust");
    th_resp_t *r = http_post(DIRECTOR, "/v1/customers",
                             jdump(json_pack("{s:s, s:s, s:s, s:I}", "kind", "company", "name", fmt("Buyer %s", ext),
                                             "external_id", ext, "owner_id", (json_int_t)users[owner].id)));
    expect_status(r, 201);
    return (cust_t){jint(r->json, "id"), jint(r->json, "owner_id"), jint(r->json, "team_id"), ext};
}

typedef struct {
    long long id, customer;
    const char *ext, *etag;
    cust_t c;
} ord_t;

/* An order of one line (2 x 10.00 = 20.00) for a customer given by id. */
static json_t *order_doc(long long customer_id, const char *ext, const char *ordered_at, const char *status)
{
    json_t *o = json_pack("{s:I, s:s, s:s, s:s, s:s, s:[{s:s, s:i, s:s}]}", "customer_id", (json_int_t)customer_id,
                          "ordered_at", ordered_at, "status", status, "currency", "EUR", "total", "20.00", "lines",
                          "sku", "SKU-1", "quantity", 2, "unit_price", "10.00");
    if (ext != NULL)
        json_object_set_new(o, "external_id", json_string(ext));
    return o;
}

static ord_t make_order(int as, cust_t c, const char *ordered_at)
{
    const char *ext = uniq("ord");
    th_resp_t *r = http_post(as, "/v1/orders", jdump(order_doc(c.id, ext, ordered_at, "pending")));
    expect_status(r, 201);
    ord_t o = {jint(r->json, "id"), c.id, ext, header(r, "etag"), c};
    ck_assert_int_gt(o.id, 0);
    ck_assert_int_eq(jint(r->json, "customer_id"), c.id);
    return o;
}

static long long live_orders(void)
{
    return sql_ll("SELECT count(*) FROM orders WHERE deleted_at IS NULL");
}

/* Orders dated in one year: each test uses its own. */
static const char *year(int y)
{
    return fmt("ordered_after=%d-12-31T23:59:59Z&ordered_before=%d-01-01T00:00:00Z", y - 1, y + 1);
}

static const char *day(int y, int n)
{
    return fmt("%d-%02d-%02dT10:%02d:00Z", y, 1 + n / 28 % 12, 1 + n % 28, n % 60);
}

/* --- scopes ------------------------------------------------------------------------ */

static const int owners5[] = {REP1, REP2, REPS, MANAGER, DIRECTOR};

START_TEST(scope_reads_get_lists_and_counts)
{
    ord_t o[5];
    for (int i = 0; i < 5; i++)
        o[i] = make_order(DIRECTOR, make_cust(owners5[i]), day(2001, i));
    ck_assert_int_eq(o[0].c.team, team_north);
    ck_assert_int_eq(o[2].c.team, team_south);
    for (int a = 0; a < NUSERS; a++) {
        long long want[5];
        size_t n = 0;
        for (int i = 0; i < 5; i++) {
            th_resp_t *r = http_get(a, opath(o[i].id));
            if (can_read(a, o[i].c.owner, o[i].c.team)) {
                want[n++] = o[i].id;
                expect_status_msg(r, 200, "%s reads an order of %s's customer", who_name[a], who_name[owners5[i]]);
                ck_assert_int_eq(jint(r->json, "id"), o[i].id);
            } else {
                expect_status_msg(r, 404, "%s reads an order of %s's customer", who_name[a], who_name[owners5[i]]);
                expect_problem(r, 404, "not-found");
            }
        }
        th_resp_t *r = http_get(a, fmt("/v1/orders?%s&count=true&limit=200", year(2001)));
        expect_status(r, 200);
        expect_ids(jget(r, "data"), want, n);
        ck_assert_int_eq(jint(r->json, "total"), n);
        expect_ids(list_all(a, fmt("/v1/orders?%s", year(2001)), 2), want, n);
        long long expected = sql_ll("SELECT count(*) FROM orders o JOIN customers c ON c.id = o.customer_id"
                                    " WHERE o.deleted_at IS NULL AND %s",
                                    scope_where(a, "c."));
        ck_assert_msg(api_count(a, "") == expected, "%s: count=true total differs from the %lld visible orders",
                      who_name[a], expected);
    }
    /* The scope follows the customer: moving the customer moves its orders. */
    th_resp_t *r =
        http_patch(DIRECTOR, fmt("/v1/customers/%lld", o[0].c.id), fmt("{\"owner_id\":%lld}", users[REP2].id), NULL);
    expect_status(r, 200);
    expect_status(http_get(REP2, opath(o[0].id)), 200);
    expect_problem(http_get(REP1, opath(o[0].id)), 404, "not-found");
}
END_TEST

START_TEST(scope_writes_patch_put_bulk_delete)
{
    static const int actors[] = {REP1, MANAGER, DIRECTOR, ANALYST, INTEGRATION, REPS};
    for (size_t ai = 0; ai < sizeof(actors) / sizeof(actors[0]); ai++) {
        int a = actors[ai];
        for (int i = 0; i < 5; i++) {
            ord_t o = make_order(DIRECTOR, make_cust(owners5[i]), day(2002, i));
            int rd = can_read(a, o.c.owner, o.c.team), wr = can_write(a, o.c.owner, o.c.team);
            int want = !rd ? 404 : !wr ? 403 : 200;
            const char *who = fmt("%s on an order of %s's customer", who_name[a], who_name[owners5[i]]);
            long long v = 1;

            th_resp_t *r = http_patch(a, opath(o.id), "{\"status\":\"completed\"}", NULL);
            expect_status_msg(r, want, "PATCH, %s", who);
            if (want != 200)
                expect_problem(r, want, want == 404 ? "not-found" : "forbidden");
            else
                ck_assert_str_eq(jstr(r->json, "status"), "completed");
            v += want == 200;
            ck_assert_msg(version_of(o.id) == v, "PATCH, %s: version %lld, wanted %lld", who, version_of(o.id), v);

            /* An external id held by an order the caller cannot see answers like any other conflict. */
            r = http_put(a, xpath(o.ext), jdump(order_doc(o.customer, NULL, day(2002, i), "cancelled")), NULL);
            expect_status_msg(r, want == 404 ? 409 : want, "PUT by external id, %s", who);
            if (want == 200)
                ck_assert_int_eq(jint(r->json, "id"), o.id);
            v += want == 200;
            ck_assert_msg(version_of(o.id) == v, "PUT, %s: version %lld, wanted %lld", who, version_of(o.id), v);

            json_t *items = json_array();
            json_array_append_new(items, order_doc(o.customer, o.ext, day(2002, i), "refunded"));
            r = http_post(a, "/v1/orders/bulk", jdump(items));
            if (wr) {
                expect_status_msg(r, 200, "bulk, %s", who);
                ck_assert_int_eq(jint(r->json, "created"), 0);
                ck_assert_int_eq(jint(r->json, "updated"), 1);
                v++;
            } else if (!rd) {
                expect_status_msg(r, 422, "bulk, %s", who);
                expect_error(r, "[0].external_id", "duplicate");
            } else {
                expect_status_msg(r, 403, "bulk, %s", who);
            }
            ck_assert_msg(version_of(o.id) == v, "bulk, %s: version %lld, wanted %lld", who, version_of(o.id), v);

            r = http_delete(a, opath(o.id), NULL);
            expect_status_msg(r, want == 200 ? 204 : want, "DELETE, %s", who);
            ck_assert_int_eq(is_deleted(o.id), want == 200);
            if (want != 200)
                ck_assert_int_eq(version_of(o.id), v);
        }
    }
}
END_TEST

START_TEST(analyst_writes_are_403)
{
    cust_t c = make_cust(REP1);
    ord_t o = make_order(DIRECTOR, c, day(2003, 1));
    long long before = live_orders();
    expect_problem(http_post(ANALYST, "/v1/orders", jdump(order_doc(c.id, NULL, day(2003, 2), "pending"))), 403,
                   "forbidden");
    expect_problem(http_patch(ANALYST, opath(o.id), "{\"status\":\"completed\"}", NULL), 403, "forbidden");
    expect_problem(http_put(ANALYST, xpath(o.ext), jdump(order_doc(c.id, NULL, day(2003, 2), "pending")), NULL), 403,
                   "forbidden");
    expect_problem(
        http_put(ANALYST, xpath(uniq("analyst")), jdump(order_doc(c.id, NULL, day(2003, 2), "pending")), NULL), 403,
        "forbidden");
    expect_problem(http_delete(ANALYST, opath(o.id), NULL), 403, "forbidden");
    json_t *items = json_array();
    json_array_append_new(items, order_doc(c.id, o.ext, day(2003, 2), "pending"));
    json_array_append_new(items, order_doc(c.id, uniq("analyst"), day(2003, 2), "pending"));
    expect_problem(http_post(ANALYST, "/v1/orders/bulk", jdump(items)), 403, "forbidden");
    ck_assert_int_eq(version_of(o.id), 1);
    ck_assert_int_eq(live_orders(), before);
}
END_TEST

START_TEST(customer_reference_rules)
{
    cust_t mine = make_cust(REP1), theirs = make_cust(REP2), south = make_cust(REPS), gone = make_cust(REP1);
    expect_status(http_delete(DIRECTOR, fmt("/v1/customers/%lld", gone.id), NULL), 204);

    /* By id or by the customer's external id. */
    th_resp_t *r = http_post(REP1, "/v1/orders", jdump(order_doc(mine.id, NULL, day(2004, 1), "pending")));
    expect_status(r, 201);
    ord_t o = {jint(r->json, "id"), mine.id, NULL, header(r, "etag"), mine};
    json_t *b = order_doc(0, NULL, day(2004, 2), "pending");
    json_object_del(b, "customer_id");
    json_object_set_new(b, "customer_external_id", json_string(mine.ext));
    r = http_post(REP1, "/v1/orders", jdump(b));
    expect_status(r, 201);
    ck_assert_int_eq(jint(r->json, "customer_id"), mine.id);
    ck_assert_ptr_null(json_object_get(r->json, "customer_external_id"));

    /* Customers outside the read scope, deleted or missing: 422 naming customer_id, nothing written. */
    long long before = live_orders();
    const struct {
        int who;
        long long id;
        const char *ext;
    } refused[] = {
        {REP1, theirs.id, NULL},
        {REP1, 0, theirs.ext},
        {REP1, south.id, NULL},
        {MANAGER, south.id, NULL},
        {MANAGER, 0, south.ext},
        {REP1, gone.id, NULL},
        {REP1, 0, gone.ext},
        {DIRECTOR, gone.id, NULL},
        {DIRECTOR, 0, gone.ext},
        {DIRECTOR, 987654321, NULL},
        {DIRECTOR, 0, "no-such-customer"},
    };
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        json_t *d = order_doc(refused[i].id, NULL, day(2004, 3), "pending");
        if (refused[i].ext != NULL) {
            json_object_del(d, "customer_id");
            json_object_set_new(d, "customer_external_id", json_string(refused[i].ext));
        }
        r = http_post(refused[i].who, "/v1/orders", jdump(d));
        expect_status_msg(r, 422, "case %zu", i);
        expect_problem(r, 422, "validation-failed");
        expect_error(r, "customer_id", NULL);
    }
    /* Exactly one reference. */
    b = order_doc(mine.id, NULL, day(2004, 3), "pending");
    json_object_set_new(b, "customer_external_id", json_string(mine.ext));
    r = http_post(REP1, "/v1/orders", jdump(b));
    expect_problem(r, 422, "validation-failed");
    expect_error(r, "customer_id", "invalid_value");
    b = order_doc(mine.id, NULL, day(2004, 3), "pending");
    json_object_del(b, "customer_id");
    r = http_post(REP1, "/v1/orders", jdump(b));
    expect_problem(r, 422, "validation-failed");
    expect_error(r, "customer_id", "required");
    ck_assert_int_eq(live_orders(), before);

    /* A manager may order for a team-mate's customer. */
    r = http_post(MANAGER, "/v1/orders", jdump(order_doc(theirs.id, NULL, day(2004, 4), "pending")));
    expect_status(r, 201);

    /* Moving an order needs the new customer in scope too. */
    const char *to_theirs = fmt("{\"customer_id\":%lld}", theirs.id);
    r = http_patch(REP1, opath(o.id), to_theirs, NULL);
    expect_problem(r, 422, "validation-failed");
    expect_error(r, "customer_id", NULL);
    r = http_patch(MANAGER, opath(o.id), fmt("{\"customer_id\":%lld}", south.id), NULL);
    expect_problem(r, 422, "validation-failed");
    expect_error(r, "customer_id", NULL);
    r = http_patch(DIRECTOR, opath(o.id), fmt("{\"customer_id\":%lld}", gone.id), NULL);
    expect_problem(r, 422, "validation-failed");
    ck_assert_int_eq(version_of(o.id), 1);
    r = http_patch(REP1, opath(o.id), fmt("{\"customer_external_id\":\"%s\"}", theirs.ext), NULL);
    expect_problem(r, 422, "validation-failed");
    expect_error(r, "customer_external_id", "read_only");
    r = http_patch(MANAGER, opath(o.id), to_theirs, NULL);
    expect_status(r, 200);
    ck_assert_int_eq(jint(r->json, "customer_id"), theirs.id);
    expect_problem(http_get(REP1, opath(o.id)), 404, "not-found");
    expect_status(http_get(REP2, opath(o.id)), 200);
    r = http_patch(DIRECTOR, opath(o.id), fmt("{\"customer_id\":%lld}", south.id), NULL);
    expect_status(r, 200);
    expect_problem(http_get(MANAGER, opath(o.id)), 404, "not-found");
    expect_status(http_get(REPS, opath(o.id)), 200);
}
END_TEST

/* --- validation -------------------------------------------------------------------------- */

START_TEST(validation_reports_every_error_at_once)
{
    long long before = live_orders();
    cust_t c = make_cust(REP1);
    th_resp_t *r = http_post(
        REP1, "/v1/orders",
        fmt("{\"id\":3,\"customer_id\":%lld,\"ordered_at\":\"yesterday\",\"status\":\"shipped\",\"currency\":\"EURO\","
            "\"total\":\"1.234\",\"lines\":[{\"sku\":\"\",\"quantity\":0,\"unit_price\":\"1.001\",\"colour\":\"red\"},"
            "{\"quantity\":1,\"unit_price\":\"1.00\"}],\"created_at\":\"2024-01-01T00:00:00Z\",\"colour\":\"red\"}",
            c.id));
    expect_problem(r, 422, "validation-failed");
    static const char *const want[][2] = {
        {"id", "read_only"},
        {"ordered_at", "invalid_format"},
        {"status", "invalid_value"},
        {"currency", "invalid_format"},
        {"total", "out_of_range"},
        {"lines[0].sku", "too_short"},
        {"lines[0].quantity", "out_of_range"},
        {"lines[0].unit_price", "out_of_range"},
        {"lines[0].colour", "unknown_field"},
        {"lines[1].sku", "required"},
        {"created_at", "read_only"},
        {"colour", "unknown_field"},
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
        expect_error(r, want[i][0], want[i][1]);
    ck_assert_int_eq(nerrors(r), sizeof(want) / sizeof(want[0]));
    ck_assert_int_eq(live_orders(), before);
}
END_TEST

/* The rules between fields (one customer reference, lines adding up) are reported with the others. */
START_TEST(cross_field_errors_come_with_field_errors)
{
    th_resp_t *r = http_post(REP1, "/v1/orders",
                             "{\"ordered_at\":\"2005-01-01T00:00:00Z\",\"status\":\"pending\",\"currency\":\"EURO\","
                             "\"total\":\"9.00\",\"lines\":[{\"sku\":\"A\",\"quantity\":2,\"unit_price\":\"4.00\"}]}");
    expect_problem(r, 422, "validation-failed");
    const char *missing = "";
    if (find_error(r, "currency") == NULL)
        missing = fmt("%s currency", missing);
    if (find_error(r, "customer_id") == NULL)
        missing = fmt("%s customer_id", missing);
    if (find_error(r, "total") == NULL)
        missing = fmt("%s total", missing);
    ck_assert_msg(*missing == '\0',
                  "POST /v1/orders with a bad currency, no customer and lines of 8.00 for a total "
                  "of 9.00 named only %.300s; missing:%s",
                  jdump(json_incref(jget(r, "errors"))), missing);
}
END_TEST

START_TEST(validation_rules_of_each_field)
{
    cust_t c = make_cust(REP1);
    const char *base = fmt("{\"customer_id\":%lld,\"ordered_at\":\"2005-02-01T10:00:00Z\",\"status\":\"pending\","
                           "\"currency\":\"EUR\",\"total\":\"20.00\"}",
                           c.id);
    const char *many_lines = "[";
    for (int i = 0; i < 1001; i++)
        many_lines = fmt("%s%s{\"sku\":\"S\",\"quantity\":1,\"unit_price\":\"0.00\"}", many_lines, i ? "," : "");
    many_lines = fmt("%s]", many_lines);
    const struct {
        const char *key, *value, *field, *code;
    } cases[] = {
        {"customer_id", "0", "customer_id", "out_of_range"},
        {"customer_id", "\"5\"", "customer_id", "invalid_type"},
        {"customer_id", "null", "customer_id", "invalid_type"},
        {"customer_external_id", "\"\"", "customer_external_id", "too_short"},
        {"customer_external_id", fmt("\"%s\"", repeat('e', 201)), "customer_external_id", "too_long"},
        {"ordered_at", NULL, "ordered_at", "required"},
        {"ordered_at", "null", "ordered_at", "required"},
        {"ordered_at", "\"2024-13-01T00:00:00Z\"", "ordered_at", "invalid_format"},
        {"ordered_at", "\"2024-02-30T00:00:00Z\"", "ordered_at", "invalid_format"},
        {"ordered_at", "\"2024-05-01 12:00:00Z\"", "ordered_at", "invalid_format"},
        {"ordered_at", "\"2024-05-01T12:00:00\"", "ordered_at", "invalid_format"},
        {"ordered_at", "\"2024-05-01\"", "ordered_at", "invalid_format"},
        {"ordered_at", "1714560000", "ordered_at", "invalid_type"},
        {"status", NULL, "status", "required"},
        {"status", "\"shipped\"", "status", "invalid_value"},
        {"status", "\"Pending\"", "status", "invalid_value"},
        {"currency", NULL, "currency", "required"},
        {"currency", "\"EURO\"", "currency", "invalid_format"},
        {"currency", "\"eur\"", "currency", "invalid_format"},
        {"currency", "\"XXX\"", "currency", "invalid_format"},
        {"currency", "\"ABC\"", "currency", "invalid_format"},
        {"currency", "\"HRK\"", "currency", "invalid_format"},
        {"currency", "978", "currency", "invalid_type"},
        {"total", NULL, "total", "required"},
        {"total", "\"20.001\"", "total", "out_of_range"},
        {"total", "true", "total", "invalid_type"},
        {"total", "20.001", "total", "out_of_range"},              /* a JSON number has the string's limits */
        {"total", "0.30000000000000004", "total", "invalid_type"}, /* more digits than a number carries */
        {"total", "\"2e1\"", "total", "invalid_format"},
        {"total", "\"020.00\"", "total", "invalid_format"},
        {"total", "\"1234567890123.00\"", "total", "out_of_range"},
        {"lines", "\"x\"", "lines", "invalid_type"},
        {"lines", "[7]", "lines[0]", "invalid_type"},
        {"lines", many_lines, "lines", "too_many"},
        {"lines", "[{\"quantity\":1,\"unit_price\":\"20.00\"}]", "lines[0].sku", "required"},
        {"lines", fmt("[{\"sku\":\"%s\",\"quantity\":1,\"unit_price\":\"20.00\"}]", repeat('s', 65)), "lines[0].sku",
         "too_long"},
        {"lines", "[{\"sku\":\"A\",\"quantity\":0,\"unit_price\":\"20.00\"}]", "lines[0].quantity", "out_of_range"},
        {"lines", "[{\"sku\":\"A\",\"quantity\":1.5,\"unit_price\":\"20.00\"}]", "lines[0].quantity", "invalid_type"},
        {"lines", "[{\"sku\":\"A\",\"quantity\":1,\"unit_price\":[20]}]", "lines[0].unit_price", "invalid_type"},
        {"lines", "[{\"sku\":\"A\",\"quantity\":1,\"unit_price\":\"20.001\"}]", "lines[0].unit_price", "out_of_range"},
        {"lines", "[{\"sku\":\"A\",\"quantity\":1}]", "lines[0].unit_price", "required"},
        {"lines", "[{\"sku\":\"A\",\"quantity\":1,\"unit_price\":\"20.00\",\"tax\":1}]", "lines[0].tax",
         "unknown_field"},
        {"lines", "[{\"sku\":\"A\",\"quantity\":2,\"unit_price\":\"10.01\"}]", "total", "invalid_value"},
        {"lines",
         "[{\"sku\":\"A\",\"quantity\":1,\"unit_price\":\"5.00\"},{\"sku\":\"B\",\"quantity\":3,\"unit_price\":"
         "\"5.00\"},{\"sku\":\"C\",\"quantity\":1,\"unit_price\":\"0.01\"}]",
         "total", "invalid_value"},
        {"discount", "\"5\"", "discount", "unknown_field"},
        {"id", "1", "id", "read_only"},
        {"created_at", "\"2024-01-01T00:00:00Z\"", "created_at", "read_only"},
        {"updated_at", "\"2024-01-01T00:00:00Z\"", "updated_at", "read_only"},
        {"version", "1", "version", "read_only"},
    };
    long long before = live_orders();
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *b = jparse(base);
        if (cases[i].value == NULL)
            json_object_del(b, cases[i].key);
        else
            json_object_set_new(b, cases[i].key, jparse(cases[i].value));
        th_resp_t *r = http_post(REP1, "/v1/orders", jdump(b));
        expect_status_msg(r, 422, "case %zu (%s)", i, cases[i].field);
        json_t *e = find_error(r, cases[i].field);
        ck_assert_msg(e != NULL, "case %zu: no error for %s in %.400s", i, cases[i].field, r->body);
        ck_assert_msg(strcmp(jstr(e, "code"), cases[i].code) == 0, "case %zu: %s has code %s, wanted %s", i,
                      cases[i].field, jstr(e, "code"), cases[i].code);
        ck_assert_msg(nerrors(r) == 1, "case %zu: %zu errors: %.400s", i, nerrors(r), r->body);
    }
    ck_assert_int_eq(live_orders(), before);

    /* Accepted spellings: a total without decimals, an offset timestamp, currencies new and old. */
    json_t *b = jparse(base);
    json_object_set_new(b, "total", json_string("20"));
    json_object_set_new(b, "ordered_at", json_string("2005-02-01T12:30:00+02:00"));
    json_object_set_new(b, "lines",
                        jparse("[{\"sku\":\"A\",\"quantity\":3,\"unit_price\":\"6.5\"},"
                               "{\"sku\":\"B\",\"name\":\"Bolt\",\"quantity\":1,\"unit_price\":\"0.50\"}]"));
    th_resp_t *r = http_post(REP1, "/v1/orders", jdump(b));
    expect_status(r, 201);
    ck_assert_str_eq(jstr(r->json, "total"), "20.00");
    ck_assert_str_eq(jstr(r->json, "ordered_at"), "2005-02-01T10:30:00.000000Z");
    ck_assert_int_eq(json_array_size(jget(r, "lines")), 2);
    static const char *const currencies[] = {"USD", "JPY", "XCG", "ZWG", "CHF"};
    for (size_t i = 0; i < 5; i++) {
        b = jparse(base);
        json_object_set_new(b, "currency", json_string(currencies[i]));
        r = http_post(REP1, "/v1/orders", jdump(b));
        expect_status_msg(r, 201, "currency %s", currencies[i]);
        ck_assert_str_eq(jstr(r->json, "currency"), currencies[i]);
    }

    /* Patches. */
    ord_t o = make_order(REP1, c, day(2005, 3));
    static const char *const patches[][3] = {
        {"{\"status\":null}", "status", "required"},
        {"{\"total\":null}", "total", "required"},
        {"{\"currency\":\"euro\"}", "currency", "invalid_format"},
        {"{\"ordered_at\":\"soon\"}", "ordered_at", "invalid_format"},
        {"{\"lines\":[{\"sku\":\"A\"}]}", "lines[0].quantity", "required"},
        {"{\"id\":9}", "id", "read_only"},
        {"{\"customer_id\":null}", "customer_id", "invalid_type"},
    };
    for (size_t i = 0; i < sizeof(patches) / sizeof(patches[0]); i++) {
        r = http_patch(REP1, opath(o.id), patches[i][0], NULL);
        expect_problem(r, 422, "validation-failed");
        expect_error(r, patches[i][1], patches[i][2]);
    }
    ck_assert_int_eq(version_of(o.id), 1);
}
END_TEST

START_TEST(lines_must_add_up_to_the_total)
{
    cust_t c = make_cust(REP1);
    ord_t o = make_order(REP1, c, day(2006, 1)); /* 2 x 10.00 = 20.00 */
    /* A patch of the total alone no longer matches the stored lines. */
    th_resp_t *r = http_patch(REP1, opath(o.id), "{\"total\":\"21.00\"}", NULL);
    expect_problem(r, 422, "validation-failed");
    expect_error(r, "total", NULL);
    ck_assert_int_eq(version_of(o.id), 1);
    /* New lines without the new total neither. */
    r = http_patch(REP1, opath(o.id), "{\"lines\":[{\"sku\":\"X\",\"quantity\":3,\"unit_price\":\"7.00\"}]}", NULL);
    expect_problem(r, 422, "validation-failed");
    expect_error(r, "total", NULL);
    ck_assert_int_eq(version_of(o.id), 1);
    /* Both together, or no lines at all. */
    r = http_patch(REP1, opath(o.id),
                   "{\"total\":\"21\",\"lines\":[{\"sku\":\"X\",\"quantity\":3,\"unit_price\":\"7\"}]}", NULL);
    expect_status(r, 200);
    ck_assert_str_eq(jstr(r->json, "total"), "21.00");
    ck_assert_int_eq(json_array_size(jget(r, "lines")), 1);
    ck_assert_str_eq(jstr(json_array_get(jget(r, "lines"), 0), "sku"), "X");
    /* JSON numbers are the decimals they read as: 3 x 0.10 is exactly 0.30 (in floats it is not). */
    r = http_patch(REP1, opath(o.id), "{\"total\":0.3,\"lines\":[{\"sku\":\"X\",\"quantity\":3,\"unit_price\":0.1}]}",
                   NULL);
    expect_status(r, 200);
    ck_assert_str_eq(jstr(r->json, "total"), "0.30");
    ck_assert_str_eq(jstr(json_array_get(jget(r, "lines"), 0), "unit_price"), "0.1");
    r = http_patch(REP1, opath(o.id), "{\"lines\":[],\"total\":\"99.99\"}", NULL);
    expect_status(r, 200);
    ck_assert_str_eq(jstr(r->json, "total"), "99.99");
    ck_assert_int_eq(json_array_size(jget(r, "lines")), 0);
    /* PUT and bulk check the sum too. */
    json_t *bad = order_doc(c.id, NULL, day(2006, 2), "pending");
    json_object_set_new(bad, "total", json_string("19.99"));
    r = http_put(REP1, xpath(o.ext), jdump(json_deep_copy(bad)), NULL);
    expect_problem(r, 422, "validation-failed");
    expect_error(r, "total", "invalid_value");
    ck_assert_int_eq(version_of(o.id), 4);
    json_object_set_new(bad, "external_id", json_string(uniq("sum")));
    json_t *items = json_array();
    json_array_append_new(items, order_doc(c.id, uniq("sum"), day(2006, 2), "pending"));
    json_array_append_new(items, bad);
    r = http_post(REP1, "/v1/orders/bulk", jdump(items));
    expect_problem(r, 422, "validation-failed");
    expect_error(r, "[1].total", "invalid_value");
    ck_assert_int_eq(nerrors(r), 1);
    ck_assert_int_eq(api_count(DIRECTOR, fmt("customer_id=%lld", c.id)), 1);
}
END_TEST

START_TEST(malformed_json_and_wrong_content_types)
{
    cust_t c = make_cust(REP1);
    ord_t o = make_order(REP1, c, day(2007, 1));
    long long before = live_orders();
    const char *good = jdump(order_doc(c.id, NULL, day(2007, 2), "pending"));
    expect_problem(http_post(REP1, "/v1/orders", "{\"status\":"), 400, "bad-request");
    expect_problem(http_post(REP1, "/v1/orders", "{\"status\":\"pending\",\"status\":\"completed\"}"), 400,
                   "bad-request");
    expect_problem(call_as(REP1, "POST", "/v1/orders", "text/plain", good, NULL, NULL), 415, "unsupported-media-type");
    expect_problem(call_as(REP1, "POST", "/v1/orders", NULL, good, NULL, NULL), 415, "unsupported-media-type");
    expect_problem(call_as(REP1, "POST", "/v1/orders/bulk", "text/csv", "a,b\n", NULL, NULL), 415,
                   "unsupported-media-type");
    expect_problem(call_as(REP1, "PATCH", opath(o.id), JSON_T, "{\"status\":\"completed\"}", NULL, NULL), 415,
                   "unsupported-media-type");
    expect_problem(call_as(REP1, "PUT", xpath(o.ext), MERGE_T, good, NULL, NULL), 415, "unsupported-media-type");
    expect_problem(http_patch(REP1, opath(o.id), "[", NULL), 400, "bad-request");
    expect_problem(http_post(REP1, "/v1/orders", "[]"), 422, "validation-failed");
    ck_assert_int_eq(live_orders(), before);
    ck_assert_int_eq(version_of(o.id), 1);
    expect_status(call_as(REP1, "POST", "/v1/orders", "application/json; charset=utf-8", good, NULL, NULL), 201);
}
END_TEST

/* --- CRUD ------------------------------------------------------------------------------------ */

START_TEST(crud_with_etags_and_preconditions)
{
    cust_t c = make_cust(REP1);
    const char *body =
        fmt("{\"customer_id\":%lld,\"ordered_at\":\"2008-05-01T12:00:00+02:00\",\"status\":\"pending\","
            "\"currency\":\"EUR\",\"total\":\"7\",\"lines\":[{\"sku\":\" A-1 \",\"name\":\"Widget\",\"quantity\":2,"
            "\"unit_price\":\"3.50\"}]}",
            c.id);
    th_resp_t *r = http_post(REP1, "/v1/orders", body);
    expect_status(r, 201);
    long long id = jint(r->json, "id");
    ck_assert_str_eq(header(r, "location"), opath(id));
    ck_assert_str_eq(header(r, "etag"), "\"1\"");
    ck_assert_int_eq(jint(r->json, "customer_id"), c.id);
    ck_assert_str_eq(jstr(r->json, "ordered_at"), "2008-05-01T10:00:00.000000Z");
    ck_assert_str_eq(jstr(r->json, "total"), "7.00");
    ck_assert_str_eq(jstr(r->json, "currency"), "EUR");
    ck_assert_str_eq(jstr(r->json, "status"), "pending");
    ck_assert(json_is_null(jget(r, "external_id")));
    json_t *line = json_array_get(jget(r, "lines"), 0);
    ck_assert_str_eq(jstr(line, "sku"), "A-1");
    ck_assert_int_eq(jint(line, "quantity"), 2);
    ck_assert_int_eq(jint(r->json, "version"), 1);

    r = http_get(REP1, opath(id));
    expect_status(r, 200);
    ck_assert_str_eq(header(r, "etag"), "\"1\"");
    r = call_as(REP1, "GET", opath(id), NULL, NULL, "If-None-Match: \"1\"", NULL);
    expect_status(r, 304);
    ck_assert_uint_eq(r->body_len, 0);
    expect_status(call_as(REP1, "GET", opath(id), NULL, NULL, "If-None-Match: \"5\"", NULL), 200);

    r = http_patch(REP1, opath(id), "{\"status\":\"completed\"}", NULL);
    expect_status(r, 200);
    ck_assert_str_eq(header(r, "etag"), "\"2\"");
    ck_assert_str_eq(jstr(r->json, "status"), "completed");
    ck_assert_str_eq(jstr(r->json, "total"), "7.00");
    ck_assert_int_eq(json_array_size(jget(r, "lines")), 1);
    expect_status(call_as(REP1, "GET", opath(id), NULL, NULL, "If-None-Match: \"1\"", NULL), 200);

    expect_problem(http_patch(REP1, opath(id), "{\"status\":\"refunded\"}", "\"1\""), 412, "precondition-failed");
    ck_assert_str_eq(jstr(http_get(REP1, opath(id))->json, "status"), "completed");
    r = http_patch(REP1, opath(id), "{\"status\":\"refunded\"}", "\"2\"");
    expect_status(r, 200);
    ck_assert_str_eq(header(r, "etag"), "\"3\"");
    r = http_patch(REP1, opath(id), "{\"currency\":\"USD\"}", "*");
    expect_status(r, 200);
    ck_assert_str_eq(header(r, "etag"), "\"4\"");

    expect_problem(http_delete(REP1, opath(id), "\"3\""), 412, "precondition-failed");
    expect_status(http_get(REP1, opath(id)), 200);
    r = http_delete(REP1, opath(id), "\"4\"");
    expect_status(r, 204);
    ck_assert_uint_eq(r->body_len, 0);
    expect_problem(http_get(REP1, opath(id)), 404, "not-found");
    expect_problem(http_get(DIRECTOR, opath(id)), 404, "not-found");
    ck_assert_int_eq(api_count(DIRECTOR, fmt("customer_id=%lld", c.id)), 0);
    expect_problem(http_delete(REP1, opath(id), NULL), 404, "not-found");
    expect_problem(http_patch(REP1, opath(id), "{\"status\":\"pending\"}", NULL), 404, "not-found");
    expect_problem(http_get(REP1, "/v1/orders/999999999"), 404, "not-found");
}
END_TEST

START_TEST(put_by_external_id_upserts)
{
    cust_t c = make_cust(REP1), other = make_cust(REP1);
    const char *ext = uniq("ORD/7");
    const char *path = xpath(ext);
    ck_assert_ptr_nonnull(strstr(path, "%2F"));
    json_t *b = order_doc(0, NULL, day(2009, 1), "pending");
    json_object_del(b, "customer_id");
    json_object_set_new(b, "customer_external_id", json_string(c.ext));
    const char *by_ext = jdump(b);
    th_resp_t *r = http_put(INTEGRATION, path, by_ext, NULL);
    expect_status(r, 201);
    long long id = jint(r->json, "id");
    ck_assert_str_eq(header(r, "location"), opath(id));
    ck_assert_str_eq(header(r, "etag"), "\"1\"");
    ck_assert_str_eq(jstr(r->json, "external_id"), ext);
    ck_assert_int_eq(jint(r->json, "customer_id"), c.id);

    r = http_put(INTEGRATION, path, by_ext, NULL);
    expect_status(r, 200);
    ck_assert_int_eq(jint(r->json, "id"), id);
    /* A full replacement: another customer, status and lines. */
    json_t *d = order_doc(other.id, NULL, day(2009, 2), "completed");
    json_object_set_new(d, "lines", json_array());
    json_object_set_new(d, "total", json_string("5.00"));
    r = http_put(REP1, path, jdump(d), NULL);
    expect_status(r, 200);
    ck_assert_int_eq(jint(r->json, "id"), id);
    ck_assert_int_eq(jint(r->json, "customer_id"), other.id);
    ck_assert_str_eq(jstr(r->json, "status"), "completed");
    ck_assert_int_eq(json_array_size(jget(r, "lines")), 0);
    const char *etag = header(r, "etag");
    ck_assert_int_eq(sql_ll("SELECT count(*) FROM orders WHERE external_id = '%s'", ext), 1);
    ck_assert_str_eq(jstr(http_get(REP1, opath(id))->json, "external_id"), ext);

    /* The body may repeat the external id, not contradict it. */
    json_t *mismatch = order_doc(c.id, "ORD-other", day(2009, 3), "pending");
    r = http_put(INTEGRATION, path, jdump(mismatch), NULL);
    expect_problem(r, 422, "validation-failed");
    expect_error(r, "external_id", NULL);
    r = http_put(INTEGRATION, path, jdump(order_doc(c.id, ext, day(2009, 3), "pending")), etag);
    expect_status(r, 200);
    /* Preconditions. */
    r = http_put(INTEGRATION, path, by_ext, etag);
    expect_problem(r, 412, "precondition-failed");
    r = http_put(INTEGRATION, path, by_ext, "*");
    expect_status(r, 200);
    const char *fresh = uniq("ORD-new");
    expect_problem(http_put(INTEGRATION, xpath(fresh), by_ext, "*"), 412, "precondition-failed");
    expect_problem(http_put(INTEGRATION, xpath(fresh), by_ext, "\"1\""), 412, "precondition-failed");
    ck_assert_int_eq(sql_ll("SELECT count(*) FROM orders WHERE external_id = '%s'", fresh), 0);
    /* A customer the writer cannot see. */
    json_t *hidden = order_doc(make_cust(REPS).id, NULL, day(2009, 4), "pending");
    r = http_put(REP1, path, jdump(hidden), NULL);
    expect_problem(r, 422, "validation-failed");
    expect_error(r, "customer_id", NULL);
    r = http_put(REP1, xpath(uniq("ORD-hidden")), jdump(order_doc(make_cust(REPS).id, NULL, day(2009, 4), "pending")),
                 NULL);
    expect_problem(r, 422, "validation-failed");
    expect_error(r, "customer_id", NULL);
    /* POST with a live external id conflicts; after a delete the id is free again. */
    expect_problem(http_post(INTEGRATION, "/v1/orders", jdump(order_doc(c.id, ext, day(2009, 5), "pending"))), 409,
                   "conflict");
    expect_status(http_delete(INTEGRATION, opath(id), NULL), 204);
    r = http_put(INTEGRATION, path, by_ext, NULL);
    expect_status(r, 201);
    ck_assert_int_ne(jint(r->json, "id"), id);
    /* Percent-encoded UTF-8. */
    r = http_put(INTEGRATION, fmt("/v1/external/orders/R%%C3%%BCck-%d", (int)getpid()), by_ext, NULL);
    expect_status(r, 201);
    ck_assert_str_eq(jstr(r->json, "external_id"), fmt("R\xc3\xbc"
                                                       "ck-%d",
                                                       (int)getpid()));
}
END_TEST

/* --- lists ------------------------------------------------------------------------------------- */

/* Creates n orders for customer c in one bulk request as the director; ordered_at from when(i). */
static void bulk_orders(int n, cust_t c, const char *(*when)(int i))
{
    json_t *items = json_array();
    for (int i = 0; i < n; i++)
        json_array_append_new(items, order_doc(c.id, uniq("bo"), when(i), i % 2 ? "completed" : "pending"));
    th_resp_t *r = http_post(DIRECTOR, "/v1/orders/bulk", jdump(items));
    expect_status(r, 200);
    ck_assert_int_eq(jint(r->json, "created"), n);
}

static const char *when_same(int i)
{
    return "2010-06-01T12:00:00Z";
}

static const char *when_spread(int i)
{
    return day(2010, (i * 7) % 50);
}

START_TEST(list_sorts_break_ties_by_id)
{
    cust_t c = make_cust(REP1);
    /* One transaction: equal ordered_at, created_at and updated_at for 30 orders. */
    bulk_orders(30, c, when_same);
    bulk_orders(12, c, when_spread);
    const char *base = fmt("/v1/orders?customer_id=%lld", c.id);
    json_t *all = list_all(DIRECTOR, base, 200);
    ck_assert_int_eq(json_array_size(all), 42);
    long long ids[42];
    for (size_t i = 0; i < 42; i++)
        ids[i] = jint(json_array_get(all, i), "id");
    static const char *const sorts[] = {"ordered_at",  "-ordered_at", "created_at",
                                        "-created_at", "updated_at",  "-updated_at"};
    for (size_t s = 0; s < 6; s++) {
        json_t *items = list_all(DIRECTOR, fmt("%s&sort=%s", base, sorts[s]), 7);
        expect_ids(items, ids, 42);
        expect_sorted(items, sorts[s]);
        items = list_all(REP1, fmt("%s&sort=%s", base, sorts[s]), 4);
        expect_ids(items, ids, 42);
        expect_sorted(items, sorts[s]);
        items = list_all(MANAGER, fmt("%s&sort=%s", base, sorts[s]), 5);
        expect_ids(items, ids, 42);
        expect_sorted(items, sorts[s]);
    }
    /* The default order is ordered_at ascending. */
    expect_sorted(list_all(DIRECTOR, base, 9), "ordered_at");
    /* Others see none of them. */
    th_resp_t *r = http_get(REP2, fmt("%s&count=true", base));
    expect_status(r, 200);
    ck_assert_int_eq(jint(r->json, "total"), 0);
    ck_assert_int_eq(json_array_size(jget(r, "data")), 0);
}
END_TEST

START_TEST(list_limits_and_parameters)
{
    cust_t c = make_cust(REP1);
    json_t *items = json_array();
    for (int i = 0; i < 55; i++)
        json_array_append_new(items, order_doc(c.id, uniq("lim"), day(2011, i), "pending"));
    expect_status(http_post(DIRECTOR, "/v1/orders/bulk", jdump(items)), 200);
    const char *base = fmt("/v1/orders?customer_id=%lld", c.id);
    th_resp_t *r = http_get(DIRECTOR, base);
    expect_status(r, 200);
    ck_assert_int_eq(json_array_size(jget(r, "data")), 50);
    ck_assert(json_is_string(jget(r, "next_cursor")));
    r = http_get(DIRECTOR, fmt("%s&cursor=%s", base, jstr(r->json, "next_cursor")));
    ck_assert_int_eq(json_array_size(jget(r, "data")), 5);
    ck_assert(json_is_null(jget(r, "next_cursor")));
    r = http_get(DIRECTOR, fmt("%s&limit=200&count=true", base));
    ck_assert_int_eq(json_array_size(jget(r, "data")), 55);
    ck_assert_int_eq(jint(r->json, "total"), 55);

    r = http_get(DIRECTOR, fmt("%s&fields=id,total,customer_id&limit=3", base));
    expect_status(r, 200);
    json_t *it;
    size_t i;
    json_array_foreach(jget(r, "data"), i, it)
    {
        ck_assert_int_eq(json_object_size(it), 3);
        ck_assert(json_is_string(json_object_get(it, "total")));
        ck_assert_int_eq(jint(it, "customer_id"), c.id);
    }
    ck_assert_int_eq(i, 3);

    static const char *const bad[][2] = {
        {"limit=0", "limit"},
        {"limit=201", "limit"},
        {"limit=ten", "limit"},
        {"tag=x", "tag"},
        {"q=x", "q"},
        {"sort=total", "sort"},
        {"sort=-name", "sort"},
        {"fields=id,secret", "fields"},
        {"count=1", "count"},
        {"customer_id=abc", "customer_id"},
        {"customer_id=-4", "customer_id"},
        {"status=shipped", "status"},
        {"ordered_after=2024", "ordered_after"},
        {"ordered_before=x", "ordered_before"},
        {"updated_since=now", "updated_since"},
        {"cursor=zzz", "cursor"},
        {"status=pending&status=completed", "status"},
    };
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        r = http_get(DIRECTOR, fmt("/v1/orders?%s", bad[i][0]));
        expect_status_msg(r, 400, "query %s", bad[i][0]);
        expect_problem(r, 400, "bad-request");
        expect_error(r, bad[i][1], NULL);
    }
    /* A cursor belongs to its sort. */
    r = http_get(DIRECTOR, fmt("%s&sort=-ordered_at&limit=10", base));
    const char *cur = jstr(r->json, "next_cursor");
    ck_assert_ptr_nonnull(cur);
    expect_status(http_get(DIRECTOR, fmt("%s&sort=-ordered_at&limit=10&cursor=%s", base, cur)), 200);
    expect_problem(http_get(DIRECTOR, fmt("%s&sort=ordered_at&limit=10&cursor=%s", base, cur)), 400, "bad-request");
    expect_problem(http_get(DIRECTOR, fmt("%s&sort=-created_at&limit=10&cursor=%s", base, cur)), 400, "bad-request");
    expect_problem(http_get(DIRECTOR, fmt("%s&limit=10&cursor=%s", base, cur)), 400, "bad-request");
}
END_TEST

START_TEST(list_filters)
{
    cust_t c1 = make_cust(REP1), c2 = make_cust(REP2);
    ord_t o[4];
    static const char *const status[] = {"pending", "completed", "cancelled", "refunded"};
    for (int i = 0; i < 4; i++) {
        cust_t c = i < 2 ? c1 : c2;
        th_resp_t *r = http_post(DIRECTOR, "/v1/orders",
                                 jdump(order_doc(c.id, uniq("flt"), fmt("2012-0%d-01T00:00:00Z", i + 1), status[i])));
        expect_status(r, 201);
        o[i] = (ord_t){jint(r->json, "id"), c.id, NULL, NULL, c};
    }
    const char *y = year(2012);
    const struct {
        const char *query;
        int want[4];
    } cases[] = {
        {"", {1, 1, 1, 1}},
        {fmt("customer_id=%lld", c1.id), {1, 1, 0, 0}},
        {fmt("customer_id=%lld", c2.id), {0, 0, 1, 1}},
        {"status=completed", {0, 1, 0, 0}},
        {"status=refunded", {0, 0, 0, 1}},
        {"ordered_after=2012-01-01T00:00:00Z", {0, 1, 1, 1}},
        {"ordered_before=2012-03-01T00:00:00Z", {1, 1, 0, 0}},
        {"ordered_after=2012-01-01T00:00:00Z&ordered_before=2012-04-01T00:00:00Z", {0, 1, 1, 0}},
        {"ordered_after=2012-01-01T02:00:00%2B02:00", {0, 1, 1, 1}},
        {fmt("customer_id=%lld&status=pending", c1.id), {1, 0, 0, 0}},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        long long want[4];
        size_t n = 0;
        for (int k = 0; k < 4; k++)
            if (cases[i].want[k])
                want[n++] = o[k].id;
        /* Within this test's year, unless the filter sets an ordered_at window itself. */
        const char *q = strstr(cases[i].query, "ordered_") != NULL
                            ? fmt("/v1/orders?%s&limit=200", cases[i].query)
                            : fmt("/v1/orders?%s%s%s&limit=200", y, *cases[i].query ? "&" : "", cases[i].query);
        th_resp_t *r = http_get(DIRECTOR, q);
        expect_status_msg(r, 200, "filter %s", cases[i].query);
        /* Orders of other tests may fall in an ordered_* window; keep this test's. */
        json_t *mine = keep(json_array()), *it;
        size_t k;
        json_array_foreach(jget(r, "data"), k, it) if (jint(it, "customer_id") == c1.id ||
                                                       jint(it, "customer_id") == c2.id) json_array_append(mine, it);
        expect_ids(mine, want, n);
    }
    /* Scopes apply on top: rep.north1 filtering for rep.north2's customer sees nothing. */
    th_resp_t *r = http_get(REP1, fmt("/v1/orders?customer_id=%lld&count=true", c2.id));
    expect_status(r, 200);
    ck_assert_int_eq(jint(r->json, "total"), 0);
    r = http_get(REP1, fmt("/v1/orders?%s&count=true", y));
    ck_assert_int_eq(jint(r->json, "total"), 2);
    /* updated_since */
    usleep(5000);
    r = http_patch(DIRECTOR, opath(o[2].id), "{\"status\":\"refunded\"}", NULL);
    expect_status(r, 200);
    const char *since = jstr(r->json, "updated_at");
    r = http_get(DIRECTOR, fmt("/v1/orders?%s&updated_since=%s", y, since));
    long long one[] = {o[2].id};
    expect_ids(jget(r, "data"), one, 1);
    r = http_get(DIRECTOR, fmt("/v1/orders?%s&status=refunded&count=true", y));
    ck_assert_int_eq(jint(r->json, "total"), 2);
    /* Deleted orders leave lists and counts. */
    expect_status(http_delete(DIRECTOR, opath(o[0].id), NULL), 204);
    r = http_get(DIRECTOR, fmt("/v1/orders?%s&count=true", y));
    ck_assert_int_eq(jint(r->json, "total"), 3);
    ck_assert(!has_id(jget(r, "data"), o[0].id));
}
END_TEST

/* --- bulk -------------------------------------------------------------------------------------------- */

/* An order referencing its customer by external id. */
static json_t *order_by_ext(const char *cust_ext, const char *ext, const char *ordered_at, const char *total)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "external_id", ext, "customer_external_id", cust_ext,
                     "ordered_at", ordered_at, "status", "pending", "currency", "EUR", "total", total);
}

START_TEST(bulk_upserts_json_and_ndjson)
{
    cust_t c1 = make_cust(REP1), c2 = make_cust(REPS);
    ord_t existing = make_order(DIRECTOR, c1, day(2013, 1));
    const char *e1 = uniq("b1"), *e2 = uniq("b2");
    json_t *items = json_array();
    json_array_append_new(items, order_by_ext(c1.ext, e1, day(2013, 2), "1.00"));
    json_array_append_new(items, order_by_ext(c2.ext, e2, day(2013, 3), "2.50"));
    json_array_append_new(items, order_doc(c2.id, existing.ext, day(2013, 4), "completed"));
    th_resp_t *r = http_post(INTEGRATION, "/v1/orders/bulk", jdump(items));
    expect_status(r, 200);
    ck_assert_int_eq(jint(r->json, "created"), 2);
    ck_assert_int_eq(jint(r->json, "updated"), 1);
    ck_assert_int_eq(json_object_size(r->json), 2);
    json_t *all = list_all(DIRECTOR, fmt("/v1/orders?%s", year(2013)), 50); /* by ordered_at */
    ck_assert_int_eq(json_array_size(all), 3);
    ck_assert_str_eq(jstr(json_array_get(all, 0), "external_id"), e1);
    ck_assert_int_eq(jint(json_array_get(all, 0), "customer_id"), c1.id);
    ck_assert_str_eq(jstr(json_array_get(all, 1), "external_id"), e2);
    ck_assert_int_eq(jint(json_array_get(all, 1), "customer_id"), c2.id);
    ck_assert_str_eq(jstr(json_array_get(all, 1), "total"), "2.50");
    ck_assert_int_eq(jint(json_array_get(all, 2), "id"), existing.id);
    ck_assert_int_eq(jint(json_array_get(all, 2), "customer_id"), c2.id); /* moved by the update */
    ck_assert_str_eq(jstr(json_array_get(all, 2), "status"), "completed");
    ck_assert_str_eq(jstr(json_array_get(all, 2), "ordered_at"), "2013-01-05T10:04:00.000000Z");

    const char *nd = fmt("%s\n\n%s\r\n%s", jdump(order_by_ext(c1.ext, e1, day(2013, 2), "9.99")),
                         jdump(order_by_ext(c1.ext, uniq("b3"), day(2013, 5), "3.00")),
                         jdump(order_doc(c1.id, uniq("b4"), day(2013, 6), "pending")));
    r = call_as(INTEGRATION, "POST", "/v1/orders/bulk", NDJSON_T, nd, NULL, NULL);
    expect_status(r, 200);
    ck_assert_int_eq(jint(r->json, "created"), 2);
    ck_assert_int_eq(jint(r->json, "updated"), 1);
    all = list_all(DIRECTOR, fmt("/v1/orders?%s", year(2013)), 50);
    ck_assert_int_eq(json_array_size(all), 5);
    ck_assert_str_eq(jstr(json_array_get(all, 0), "external_id"), e1);
    ck_assert_str_eq(jstr(json_array_get(all, 0), "total"), "9.99");
    r = call_as(INTEGRATION, "POST", "/v1/orders/bulk", NDJSON_T,
                fmt("%s\nnot json\n", jdump(order_by_ext(c1.ext, uniq("b5"), day(2013, 7), "1.00"))), NULL, NULL);
    expect_problem(r, 400, "bad-request");
    ck_assert_int_eq(json_array_size(list_all(DIRECTOR, fmt("/v1/orders?%s", year(2013)), 50)), 5);
}
END_TEST

START_TEST(bulk_is_all_or_nothing)
{
    cust_t c = make_cust(REP1);
    json_t *items = json_array();
    for (int i = 0; i < 100; i++)
        json_array_append_new(items, order_by_ext(c.ext, uniq("aon"), day(2014, i), "10.00"));
    json_object_set_new(json_array_get(items, 3), "currency", json_string("EURO"));
    json_object_set_new(json_array_get(items, 30), "lines",
                        jparse("[{\"sku\":\"A\",\"quantity\":1,\"unit_price\":\"9.00\"}]"));
    json_object_del(json_array_get(items, 50), "customer_external_id");
    json_object_set_new(json_array_get(items, 60), "customer_id", json_integer(c.id));
    json_object_del(json_array_get(items, 70), "external_id");
    json_object_set_new(json_array_get(items, 81), "external_id",
                        json_string(jstr(json_array_get(items, 80), "external_id")));
    json_object_set_new(json_array_get(items, 99), "ordered_at", json_string("2014-02-30T00:00:00Z"));
    th_resp_t *r = http_post(REP1, "/v1/orders/bulk", jdump(items));
    expect_problem(r, 422, "validation-failed");
    expect_error(r, "[3].currency", "invalid_format");
    expect_error(r, "[30].total", "invalid_value");
    expect_error(r, "[50].customer_id", "required");
    expect_error(r, "[60].customer_id", "invalid_value");
    expect_error(r, "[70].external_id", "required");
    expect_error(r, "[81].external_id", "duplicate");
    expect_error(r, "[99].ordered_at", "invalid_format");
    ck_assert_int_eq(nerrors(r), 7);
    ck_assert_int_eq(api_count(DIRECTOR, fmt("customer_id=%lld", c.id)), 0);

    expect_problem(http_post(REP1, "/v1/orders/bulk", "[]"), 422, "validation-failed");
    expect_problem(http_post(REP1, "/v1/orders/bulk", "{}"), 422, "validation-failed");
    r = http_post(REP1, "/v1/orders/bulk", "[\"x\"]");
    expect_problem(r, 422, "validation-failed");
    expect_error(r, "[0]", "invalid_type");
}
END_TEST

START_TEST(bulk_refuses_items_outside_scope)
{
    cust_t mine = make_cust(REP1), theirs = make_cust(REP2), south = make_cust(REPS), gone = make_cust(REP1);
    expect_status(http_delete(DIRECTOR, fmt("/v1/customers/%lld", gone.id), NULL), 204);
    ord_t their_order = make_order(DIRECTOR, theirs, day(2015, 1));
    long long before = live_orders();
    /* Customers the rep cannot see, by id and by external id, and a deleted one: each named, nothing written. */
    json_t *items = json_array();
    json_array_append_new(items, order_by_ext(mine.ext, uniq("ok"), day(2015, 2), "1.00"));
    json_array_append_new(items, order_by_ext(theirs.ext, uniq("x"), day(2015, 2), "1.00"));
    json_array_append_new(items, order_doc(south.id, uniq("x"), day(2015, 2), "pending"));
    json_array_append_new(items, order_doc(gone.id, uniq("x"), day(2015, 2), "pending"));
    json_array_append_new(items, order_by_ext(gone.ext, uniq("x"), day(2015, 2), "1.00"));
    th_resp_t *r = http_post(REP1, "/v1/orders/bulk", jdump(items));
    expect_problem(r, 422, "validation-failed");
    for (int i = 1; i <= 4; i++)
        expect_error(r, fmt("[%d].customer_id", i), NULL);
    ck_assert_int_eq(nerrors(r), 4);
    /* An existing order of someone else's customer. */
    items = json_array();
    json_array_append_new(items, order_doc(mine.id, their_order.ext, day(2015, 3), "pending"));
    r = http_post(REP1, "/v1/orders/bulk", jdump(items));
    expect_problem(r, 422, "validation-failed");
    expect_error(r, "[0].external_id", "duplicate");
    /* A manager ordering for the other team. */
    items = json_array();
    json_array_append_new(items, order_doc(south.id, uniq("m"), day(2015, 4), "pending"));
    r = http_post(MANAGER, "/v1/orders/bulk", jdump(items));
    expect_problem(r, 422, "validation-failed");
    expect_error(r, "[0].customer_id", NULL);
    ck_assert_int_eq(live_orders(), before);
    ck_assert_int_eq(version_of(their_order.id), 1);
    ck_assert_int_eq(jint(http_get(DIRECTOR, opath(their_order.id))->json, "customer_id"), theirs.id);
    /* Within scope it goes through. */
    items = json_array();
    json_array_append_new(items, order_by_ext(mine.ext, uniq("ok"), day(2015, 5), "1.00"));
    r = http_post(REP1, "/v1/orders/bulk", jdump(items));
    expect_status(r, 200);
    ck_assert_int_eq(jint(r->json, "created"), 1);
}
END_TEST

static const char *bulk_items(int n, const char *tag, const char *cust_ext)
{
    size_t cap = (size_t)n * 220 + 16;
    char *s = keep(malloc(cap)), *p = s;
    p += sprintf(p, "[");
    for (int i = 0; i < n; i++)
        p += sprintf(p,
                     "%s{\"external_id\":\"%s-%d\",\"customer_external_id\":\"%s\",\"ordered_at\":"
                     "\"2016-01-01T00:00:00Z\",\"status\":\"completed\",\"currency\":\"EUR\",\"total\":\"%d.%02d\"}",
                     i ? "," : "", tag, i, cust_ext, i / 100, i % 100);
    sprintf(p, "]");
    return s;
}

START_TEST(bulk_takes_at_most_5000_items)
{
    cust_t c = make_cust(REP1);
    const char *tag = uniq("max");
    th_resp_t *r = http_post(INTEGRATION, "/v1/orders/bulk", bulk_items(5001, tag, c.ext));
    expect_problem(r, 422, "validation-failed");
    ck_assert_int_eq(nerrors(r), 1);
    ck_assert_int_eq(api_count(DIRECTOR, fmt("customer_id=%lld", c.id)), 0);
    r = http_post(INTEGRATION, "/v1/orders/bulk", bulk_items(5000, tag, c.ext));
    expect_status(r, 200);
    ck_assert_int_eq(jint(r->json, "created"), 5000);
    ck_assert_int_eq(api_count(DIRECTOR, fmt("customer_id=%lld", c.id)), 5000);
    ck_assert_int_eq(api_count(REP1, fmt("customer_id=%lld", c.id)), 5000);
    r = http_post(INTEGRATION, "/v1/orders/bulk", bulk_items(5000, tag, c.ext));
    expect_status(r, 200);
    ck_assert_int_eq(jint(r->json, "created"), 0);
    ck_assert_int_eq(jint(r->json, "updated"), 5000);
}
END_TEST

/* --- the change feed --------------------------------------------------------------------------------- */

#define FEED "/v1/changes/orders"

START_TEST(feed_lists_every_change_once_in_order_with_tombstones)
{
    cust_t c = make_cust(REP1);
    const char *cur = feed_head(DIRECTOR), *ccur = feed_head_of("/v1/changes/customers", DIRECTOR);
    ord_t x = make_order(DIRECTOR, c, day(2017, 1));
    expect_status(http_patch(DIRECTOR, opath(x.id), "{\"status\":\"completed\"}", NULL), 200);
    ord_t y = make_order(DIRECTOR, c, day(2017, 2));
    expect_status(http_delete(DIRECTOR, opath(x.id), NULL), 204);
    expect_status(http_put(DIRECTOR, xpath(y.ext), jdump(order_doc(c.id, NULL, day(2017, 3), "cancelled")), NULL), 200);
    expect_status(http_patch(DIRECTOR, opath(y.id), "{\"status\":\"completed\"}", "\"1\""), 412);
    expect_status(http_patch(DIRECTOR, opath(y.id), "{\"total\":\"1.00\"}", NULL), 422);

    json_t *ch = feed_since(DIRECTOR, &cur, 2);
    ck_assert_int_eq(json_array_size(ch), 5);
    expect_change(json_array_get(ch, 0), "create", x.id);
    ck_assert_str_eq(jstr(json_array_get(ch, 0), "external_id"), x.ext);
    ck_assert_str_eq(jstr(json_object_get(json_array_get(ch, 0), "data"), "total"), "20.00");
    expect_change(json_array_get(ch, 1), "update", x.id);
    ck_assert_str_eq(jstr(json_object_get(json_array_get(ch, 1), "data"), "status"), "completed");
    expect_change(json_array_get(ch, 2), "create", y.id);
    expect_change(json_array_get(ch, 3), "delete", x.id);
    ck_assert_str_eq(jstr(json_array_get(ch, 3), "external_id"), x.ext);
    expect_change(json_array_get(ch, 4), "update", y.id);
    ck_assert_str_eq(jstr(json_object_get(json_array_get(ch, 4), "data"), "status"), "cancelled");
    /* Orders are not customer changes. */
    th_resp_t *r = http_get(DIRECTOR, fmt("/v1/changes/customers?after=%s", ccur));
    expect_status(r, 200);
    ck_assert_int_eq(json_array_size(jget(r, "data")), 0);
    /* Polling with the last cursor: nothing, then the next change. */
    r = http_get(DIRECTOR, fmt(FEED "?after=%s", cur));
    ck_assert_int_eq(json_array_size(jget(r, "data")), 0);
    ck_assert_str_eq(jstr(r->json, "next_cursor"), cur);
    ord_t z = make_order(REP1, c, day(2017, 4));
    ch = feed_since(DIRECTOR, &cur, 10);
    ck_assert_int_eq(json_array_size(ch), 1);
    expect_change(json_array_get(ch, 0), "create", z.id);

    static const char *const bad[][2] = {{"limit=0", "limit"},
                                         {"limit=1001", "limit"},
                                         {"after=%%%%", "after"},
                                         {"after=eyJ0IjoxfQ", "after"},
                                         {"customer_id=1", "customer_id"}};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        r = http_get(DIRECTOR, fmt(FEED "?%s", bad[i][0]));
        expect_problem(r, 400, "bad-request");
        expect_error(r, bad[i][1], NULL);
    }
    expect_problem(http_get(-1, FEED), 401, "unauthenticated");
}
END_TEST

START_TEST(feed_applies_scopes)
{
    static const int readers[] = {REP1, REP2, REPS, MANAGER, DIRECTOR, ANALYST, INTEGRATION, ADMIN};
    const char *cur[NUSERS];
    cust_t cs[5];
    for (int i = 0; i < 5; i++)
        cs[i] = make_cust(owners5[i]);
    for (size_t i = 0; i < 8; i++)
        cur[readers[i]] = feed_head(readers[i]);
    ord_t o[5];
    for (int i = 0; i < 5; i++) {
        o[i] = make_order(DIRECTOR, cs[i], day(2018, i));
        expect_status(http_patch(DIRECTOR, opath(o[i].id), "{\"status\":\"completed\"}", NULL), 200);
    }
    expect_status(http_delete(DIRECTOR, opath(o[0].id), NULL), 204); /* an order of rep.north1's customer */
    for (size_t i = 0; i < 8; i++) {
        int a = readers[i];
        json_t *ch = feed_since(a, &cur[a], 3);
        size_t k = 0;
        for (int j = 0; j < 5; j++) {
            if (!can_read(a, cs[j].owner, cs[j].team))
                continue;
            expect_change(json_array_get(ch, k), "create", o[j].id);
            expect_change(json_array_get(ch, k + 1), "update", o[j].id);
            k += 2;
        }
        if (can_read(a, cs[0].owner, cs[0].team))
            expect_change(json_array_get(ch, k++), "delete", o[0].id);
        ck_assert_msg(json_array_size(ch) == k, "%s sees %zu changes, wanted %zu", who_name[a], json_array_size(ch), k);
    }
}
END_TEST

/* A change committed while an older transaction is still open stays out of the feed until that one ends. */
START_TEST(feed_hides_a_younger_commit_until_older_transactions_end)
{
    cust_t c = make_cust(REP1);
    ord_t x = make_order(DIRECTOR, c, day(2019, 1)), y = make_order(DIRECTOR, c, day(2019, 2));
    const char *cur = feed_head(DIRECTOR);
    PGconn *a = pg_open();
    ck_assert_int_eq(pg_do(a, "BEGIN"), 0);
    ck_assert_int_eq(pg_do(a, fmt("UPDATE orders SET status = 'cancelled' WHERE id = %lld", x.id)), 0);
    expect_status(http_patch(DIRECTOR, opath(y.id), "{\"status\":\"refunded\"}", NULL), 200);
    th_resp_t *r = http_get(DIRECTOR, fmt(FEED "?after=%s", cur));
    expect_status(r, 200);
    ck_assert_int_eq(json_array_size(jget(r, "data")), 0);
    ck_assert_int_eq(pg_do(a, "COMMIT"), 0);
    json_t *ch = feed_since(DIRECTOR, &cur, 1);
    ck_assert_int_eq(json_array_size(ch), 2);
    expect_change(json_array_get(ch, 0), "update", x.id);
    expect_change(json_array_get(ch, 1), "update", y.id);
    PQfinish(a);
}
END_TEST

/* --- the suite ----------------------------------------------------------------------------------------- */

/*
 * An order follows its customer's scope: moving it to another customer must
 * not take it out of a team that covered it. A rep whose customer was filed
 * under another team by the director cannot move that customer's order to
 * a customer of their own team (the other team's manager would lose it);
 * the director can.
 */
START_TEST(moving_an_order_keeps_its_team)
{
    cust_t home = make_cust(REP1), away = make_cust(REP1);
    expect_status(http_patch(DIRECTOR, fmt("/v1/customers/%lld", away.id), fmt("{\"team_id\":%lld}", team_south), NULL),
                  200);
    ord_t o = make_order(DIRECTOR, away, day(2016, 1));
    const char *to_home = fmt("{\"customer_id\":%lld}", home.id);
    expect_problem(http_patch(REP1, opath(o.id), to_home, NULL), 403, "forbidden");
    th_resp_t *r = http_put(REP1, xpath(o.ext), jdump(order_doc(home.id, NULL, day(2016, 1), "pending")), NULL);
    expect_problem(r, 403, "forbidden");
    r = http_post(REP1, "/v1/orders/bulk", jdump(json_pack("[o]", order_doc(home.id, o.ext, day(2016, 1), "pending"))));
    expect_problem(r, 422, "validation-failed");
    expect_error(r, "[0]", "forbidden_target");
    ck_assert_int_eq(version_of(o.id), 1);
    /* Within the same team the rep may move it; the director anywhere. */
    cust_t home2 = make_cust(REP1);
    ord_t o2 = make_order(REP1, home, day(2016, 2));
    expect_status(http_patch(REP1, opath(o2.id), fmt("{\"customer_id\":%lld}", home2.id), NULL), 200);
    expect_status(http_patch(DIRECTOR, opath(o.id), to_home, NULL), 200);
}
END_TEST

static Suite *orders_suite(void)
{
    Suite *s = suite_create("orders");
    TCase *tc = tcase_create("scopes");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, scope_reads_get_lists_and_counts);
    tcase_add_test(tc, scope_writes_patch_put_bulk_delete);
    tcase_add_test(tc, analyst_writes_are_403);
    tcase_add_test(tc, customer_reference_rules);
    tcase_add_test(tc, moving_an_order_keeps_its_team);
    suite_add_tcase(s, tc);

    tc = tcase_create("validation");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, validation_reports_every_error_at_once);
    tcase_add_test(tc, cross_field_errors_come_with_field_errors);
    tcase_add_test(tc, validation_rules_of_each_field);
    tcase_add_test(tc, lines_must_add_up_to_the_total);
    tcase_add_test(tc, malformed_json_and_wrong_content_types);
    suite_add_tcase(s, tc);

    tc = tcase_create("crud");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, crud_with_etags_and_preconditions);
    tcase_add_test(tc, put_by_external_id_upserts);
    suite_add_tcase(s, tc);

    tc = tcase_create("changes");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, feed_lists_every_change_once_in_order_with_tombstones);
    tcase_add_test(tc, feed_applies_scopes);
    tcase_add_test(tc, feed_hides_a_younger_commit_until_older_transactions_end);
    suite_add_tcase(s, tc);

    tc = tcase_create("lists");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, list_sorts_break_ties_by_id);
    tcase_add_test(tc, list_limits_and_parameters);
    tcase_add_test(tc, list_filters);
    suite_add_tcase(s, tc);

    tc = tcase_create("bulk");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, bulk_upserts_json_and_ndjson);
    tcase_add_test(tc, bulk_is_all_or_nothing);
    tcase_add_test(tc, bulk_refuses_items_outside_scope);
    tcase_add_test(tc, bulk_takes_at_most_5000_items);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return crew_main(&conf, orders_suite);
}
