/*
 * tests/integration/field_rules_test.c - field-level access (a role's
 * permissions.fields) against the real API and PostgreSQL: the built-in
 * defaults (a rep reads a customer's credit limit and may not change it; an
 * analyst never sees a contact's phone, mobile or birthday), and rules an
 * administrator sets at run time on a built-in field and on a key of attrs,
 * on every read path (record, list, nested list, search, export, change
 * feed, history, aggregate) and every write path (create, merge patch,
 * upsert, bulk), and the validation of the rules themselves.
 *
 * crew_main() (tests/support/crew.c) builds the database, one user per role
 * and one API process; each test forks from it. Tests that change a role
 * restore it before they end; the API's caller cache holds a role's rules
 * for at most half a second, so such tests wait that long after a change.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>

#include "tests/support/crew.h"

static const char *const api_env[] = {
    "CLIENTELE_THREADS=2",
    "CLIENTELE_DB_TIMEOUT=20s",
    "CLIENTELE_JWT_SECRET=field-rules-suite-secret-0123456789abcdefg",
    NULL,
};

static const crew_conf_t conf = {
    .name = "field_rules",
    .redis_db = 6,
    .env = api_env,
    .password = "field-rules-suite-password",
    .domain = "fields.test",
    .resource = "customers",
    .item = "customer",
};

#define CALLER_TTL_US 700000 /* a little over api/callers.c's CALLER_TTL_MS */

typedef struct {
    long long id;
    const char *ext;
} rec_t;

/* A customer owned by `owner`, made by the director with the members of extra (JSON text). */
static rec_t make_customer(int owner, const char *extra)
{
    const char *ext = uniq("fr");
    json_t *d = json_pack("{s:s, s:s, s:s, s:I}", "kind", "company", "name", fmt("Firm %s", ext), "external_id", ext,
                          "owner_id", (json_int_t)users[owner].id);
    if (extra != NULL) {
        json_t *x = jparse(extra);
        json_object_update(d, x);
        json_decref(x);
    }
    th_resp_t *r = http_post(DIRECTOR, "/v1/customers", jdump(d));
    expect_status(r, 201);
    return (rec_t){jint(r->json, "id"), ext};
}

static int has_key(const json_t *o, const char *key)
{
    return json_object_get(o, key) != NULL;
}

/* Sets the manager role's permissions.fields (JSON text, or "null" to remove them) and waits for the cache. */
static void manager_fields(const char *rules)
{
    long long role = sql_ll("SELECT id FROM roles WHERE name = 'manager'");
    th_resp_t *r =
        http_patch(ADMIN, fmt("/v1/roles/%lld", role), fmt("{\"permissions\":{\"fields\":%s}}", rules), NULL);
    expect_status(r, 200);
    usleep(CALLER_TTL_US);
}

START_TEST(a_rep_reads_the_credit_limit_and_may_not_change_it)
{
    rec_t c = make_customer(REP1, "{\"credit_limit\": \"5000.00\"}");
    const char *path = fmt("/v1/customers/%lld", c.id);
    th_resp_t *r = http_get(REP1, path);
    expect_status(r, 200);
    ck_assert_str_eq(jstr(r->json, "credit_limit"), "5000.00");
    long long v = version_of(c.id);

    r = http_patch(REP1, path, "{\"credit_limit\": \"9000\"}", NULL);
    expect_status(r, 403);
    expect_error(r, "credit_limit", "read_only");
    ck_assert_int_eq(version_of(c.id), v);
    /* The same value is no change: a client may send back what it read. */
    r = http_patch(REP1, path, "{\"name\": \"Renamed\", \"credit_limit\": \"5000\"}", NULL);
    expect_status(r, 200);
    ck_assert_str_eq(jstr(r->json, "credit_limit"), "5000.00");

    r = http_post(REP1, "/v1/customers", "{\"kind\":\"person\",\"name\":\"Own limit\",\"credit_limit\":100}");
    expect_status(r, 403);
    expect_error(r, "credit_limit", "read_only");
    r = http_post(REP1, "/v1/customers", "{\"kind\":\"person\",\"name\":\"No limit\"}");
    expect_status(r, 201);

    r = http_put(REP1, xpath(c.ext), "{\"kind\":\"company\",\"name\":\"Put\",\"credit_limit\":\"1\"}", NULL);
    expect_status(r, 403);
    expect_error(r, "credit_limit", "read_only");

    const char *ext = uniq("frb");
    r = call_as(REP1, "POST", "/v1/customers/bulk", JSON_T,
                fmt("[{\"external_id\":\"%s\",\"kind\":\"person\",\"name\":\"B\",\"credit_limit\":\"7\"}]", ext), NULL,
                NULL);
    expect_status(r, 422);
    expect_error(r, "[0].credit_limit", "read_only");
    ck_assert_int_eq(sql_ll("SELECT count(*) FROM customers WHERE external_id = '%s'", ext), 0);

    /* Nor may a merge take another record's credit limit for the rep. */
    rec_t twin = make_customer(REP1, "{\"credit_limit\": \"7000.00\"}");
    r = http_post(REP1, fmt("%s/merge", path),
                  fmt("{\"merge_ids\":[%lld],\"fields\":{\"credit_limit\":%lld}}", twin.id, twin.id));
    expect_status(r, 403);
    expect_error(r, "fields.credit_limit", "read_only");
    ck_assert_int_eq(is_deleted(twin.id), 0);

    /* The director's role has no such rule. */
    r = http_patch(DIRECTOR, path, "{\"credit_limit\": \"9000\"}", NULL);
    expect_status(r, 200);

    r = http_get(REP1, "/v1/me");
    expect_status(r, 200);
    json_t *rules = json_object_get(r->json, "field_rules");
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(rules, "customers"), "credit_limit")), "read");
}
END_TEST

START_TEST(an_analyst_never_sees_a_contacts_personal_details)
{
    rec_t c = make_customer(REP1, NULL);
    const char *mobile = fmt("+49 170 %06d", (int)(random() % 1000000));
    th_resp_t *r = http_post(DIRECTOR, "/v1/contacts",
                             fmt("{\"customer_id\":%lld,\"last_name\":\"Private\",\"phone\":\"+49 30 1234\","
                                 "\"mobile\":\"%s\",\"birthday\":\"1980-02-29\",\"department\":\"Finance\"}",
                                 c.id, mobile));
    expect_status(r, 201);
    long long ct = jint(r->json, "id");
    const char *path = fmt("/v1/contacts/%lld", ct);

    r = http_get(ANALYST, path);
    expect_status(r, 200);
    ck_assert(!has_key(r->json, "phone") && !has_key(r->json, "mobile") && !has_key(r->json, "birthday"));
    ck_assert_str_eq(jstr(r->json, "department"), "Finance");
    r = http_get(DIRECTOR, path);
    ck_assert_str_eq(jstr(r->json, "mobile"), mobile);

    /* Lists, nested lists and projections. */
    json_t *items = list_all(ANALYST, fmt("/v1/customers/%lld/contacts", c.id), 50);
    ck_assert_int_eq(json_array_size(items), 1);
    ck_assert(!has_key(json_array_get(items, 0), "mobile"));
    r = http_get(ANALYST, fmt("/v1/contacts?customer_id=%lld&fields=id,mobile", c.id));
    expect_status(r, 400);
    expect_error(r, "fields", "unknown_parameter");
    /* A search does not look into a hidden field: it would tell its value. */
    const char *q = urlenc(mobile + 8);
    ck_assert_int_eq(json_array_size(list_all(ANALYST, fmt("/v1/contacts?customer_id=%lld&q=%s", c.id, q), 50)), 0);
    ck_assert_int_eq(json_array_size(list_all(DIRECTOR, fmt("/v1/contacts?customer_id=%lld&q=%s", c.id, q), 50)), 1);

    /* Exports: no value, and no CSV column. */
    r = http_get(ANALYST, fmt("/v1/contacts/export?format=ndjson&customer_id=%lld", c.id));
    expect_status(r, 200);
    ck_assert_ptr_null(strstr(r->body, mobile));
    ck_assert_ptr_nonnull(strstr(r->body, "Finance"));
    r = http_get(ANALYST, fmt("/v1/contacts/export?format=csv&customer_id=%lld", c.id));
    expect_status(r, 200);
    ck_assert_ptr_null(strstr(r->body, "mobile"));
    ck_assert_ptr_null(strstr(r->body, "birthday"));
    r = http_get(DIRECTOR, fmt("/v1/contacts/export?format=csv&customer_id=%lld", c.id));
    ck_assert_ptr_nonnull(strstr(r->body, "mobile"));

    /* Duplicates: a shared mobile is no reason for whoever may not see mobiles. */
    r = http_post(DIRECTOR, "/v1/contacts",
                  fmt("{\"customer_id\":%lld,\"first_name\":\"Yolanda\",\"last_name\":\"Zimmermann\","
                      "\"mobile\":\"%s\"}",
                      c.id, mobile));
    expect_status(r, 201);
    long long twin = jint(r->json, "id");
    r = http_get(DIRECTOR, fmt("%s/duplicates", path));
    expect_status(r, 200);
    ck_assert_ptr_nonnull(strstr(r->body, fmt("\"id\" : %lld", twin)));
    r = http_get(ANALYST, fmt("%s/duplicates", path));
    expect_status(r, 200);
    ck_assert_ptr_null(strstr(r->body, fmt("\"id\" : %lld", twin)));

    /* History and the change feed. */
    r = http_patch(DIRECTOR, path, "{\"mobile\":\"+49 170 0000000\",\"department\":\"Sales\"}", NULL);
    expect_status(r, 200);
    r = http_get(ANALYST, fmt("%s/history", path));
    expect_status(r, 200);
    ck_assert_ptr_null(strstr(r->body, "mobile"));
    ck_assert_ptr_nonnull(strstr(r->body, "department"));
    r = http_get(DIRECTOR, fmt("%s/history", path));
    ck_assert_ptr_nonnull(strstr(r->body, "mobile"));
    r = http_get(ANALYST, "/v1/changes/contacts?limit=1000");
    expect_status(r, 200);
    ck_assert_ptr_nonnull(strstr(r->body, "Private"));
    ck_assert_ptr_null(strstr(r->body, mobile));
    ck_assert_ptr_null(strstr(r->body, "+49 170 0000000"));
}
END_TEST

START_TEST(rules_set_at_run_time_reach_every_path)
{
    rec_t c = make_customer(MANAGER, "{\"industry\":\"Mining\",\"credit_limit\":\"300.00\","
                                     "\"attrs\":{\"salary\":\"90000\",\"shoe\":\"42\"}}");
    const char *path = fmt("/v1/customers/%lld", c.id);
    th_resp_t *r = http_get(MANAGER, path);
    expect_status(r, 200);
    ck_assert_str_eq(jstr(r->json, "industry"), "Mining");

    manager_fields("{\"customers\":{\"industry\":\"hidden\",\"credit_limit\":\"hidden\",\"attrs.salary\":\"hidden\"}}");
    r = http_get(MANAGER, path);
    expect_status(r, 200);
    ck_assert(!has_key(r->json, "industry") && !has_key(r->json, "credit_limit"));
    json_t *attrs = json_object_get(r->json, "attrs");
    ck_assert(!has_key(attrs, "salary"));
    ck_assert_str_eq(jstr(attrs, "shoe"), "42");
    ck_assert_str_eq(jstr(r->json, "name"), fmt("Firm %s", c.ext));

    /* Reports: grouping by a hidden field is unknown, summing it forbidden. */
    r = http_get(MANAGER, "/v1/customers/aggregate?group_by=status&metrics=sum:credit_limit");
    expect_status(r, 403);
    expect_error(r, "metrics", "forbidden_field");
    r = http_get(MANAGER, "/v1/customers/aggregate?group_by=status&metrics=count");
    expect_status(r, 200);

    /* Writes: a hidden field is locked too; the other fields stay writable. */
    r = http_patch(MANAGER, path, "{\"industry\":\"Retail\"}", NULL);
    expect_status(r, 403);
    expect_error(r, "industry", "read_only");
    r = http_patch(MANAGER, path, "{\"attrs\":{\"salary\":\"1\"}}", NULL);
    expect_status(r, 403);
    expect_error(r, "attrs.salary", "read_only");
    r = http_patch(MANAGER, path, "{\"attrs\":{\"shoe\":\"43\"}}", NULL);
    expect_status(r, 200);
    ck_assert(!has_key(json_object_get(r->json, "attrs"), "salary"));
    ck_assert_int_eq(sql_ll("SELECT (attrs ->> 'salary')::bigint FROM customers WHERE id = %lld", c.id), 90000);

    /* History: a change of hidden fields only is not shown to the manager. */
    r = http_patch(DIRECTOR, path, "{\"industry\":\"Retail\",\"attrs\":{\"salary\":\"95000\"}}", NULL);
    expect_status(r, 200);
    r = http_get(MANAGER, fmt("%s/history", path));
    expect_status(r, 200);
    ck_assert_ptr_null(strstr(r->body, "Retail"));
    ck_assert_ptr_null(strstr(r->body, "95000"));
    ck_assert_ptr_nonnull(strstr(r->body, "\"43\""));

    manager_fields("null");
    r = http_get(MANAGER, path);
    ck_assert_str_eq(jstr(r->json, "industry"), "Retail");
    ck_assert_str_eq(jstr(json_object_get(r->json, "attrs"), "salary"), "95000");
}
END_TEST

START_TEST(a_sort_or_filter_on_a_hidden_field_does_not_exist)
{
    manager_fields("{\"customers\":{\"status\":\"hidden\",\"name\":\"hidden\"}}");
    th_resp_t *r = http_get(MANAGER, "/v1/customers?status=customer");
    expect_status(r, 400);
    expect_error(r, "status", "unknown_parameter");
    r = http_get(MANAGER, "/v1/customers?sort=name");
    expect_status(r, 400);
    expect_error(r, "sort", "unknown_parameter");
    r = http_get(MANAGER, "/v1/customers/aggregate?group_by=status");
    expect_status(r, 400);
    expect_error(r, "group_by", "unknown_parameter");
    r = http_get(MANAGER, "/v1/customers/export?format=ndjson&status=customer");
    expect_status(r, 400);
    r = http_get(MANAGER, "/v1/customers?limit=5");
    expect_status(r, 200);
    json_t *items = json_object_get(r->json, "data");
    ck_assert_int_gt(json_array_size(items), 0);
    for (size_t i = 0; i < json_array_size(items); i++)
        ck_assert(!has_key(json_array_get(items, i), "name") && !has_key(json_array_get(items, i), "status"));
    manager_fields("null");
    r = http_get(MANAGER, "/v1/customers?status=customer&sort=name");
    expect_status(r, 200);
}
END_TEST

START_TEST(rules_are_validated)
{
    long long role = sql_ll("SELECT id FROM roles WHERE name = 'manager'");
    th_resp_t *r = http_patch(ADMIN, fmt("/v1/roles/%lld", role),
                              "{\"permissions\":{\"fields\":{\"customers\":{\"credit_limit\":\"invisible\","
                              "\"attrs.Bad Key\":\"hidden\"},\"Orders\":{}}}}",
                              NULL);
    expect_status(r, 422);
    expect_error(r, "permissions.fields.customers.credit_limit", "invalid_value");
    expect_error(r, "permissions.fields.customers.attrs.Bad Key", "invalid_format");
    expect_error(r, "permissions.fields.Orders", "invalid_format");
    r = http_patch(ADMIN, fmt("/v1/roles/%lld", role), "{\"permissions\":{\"fields\":[]}}", NULL);
    expect_status(r, 422);
    expect_error(r, "permissions.fields", "invalid_type");
}
END_TEST

static Suite *field_rules_suite(void)
{
    Suite *s = suite_create("field_rules");
    TCase *tc = tcase_create("defaults");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, a_rep_reads_the_credit_limit_and_may_not_change_it);
    tcase_add_test(tc, an_analyst_never_sees_a_contacts_personal_details);
    suite_add_tcase(s, tc);

    tc = tcase_create("run_time");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, rules_set_at_run_time_reach_every_path);
    tcase_add_test(tc, a_sort_or_filter_on_a_hidden_field_does_not_exist);
    tcase_add_test(tc, rules_are_validated);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return crew_main(&conf, field_rules_suite);
}
