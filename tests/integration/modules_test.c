/*
 * tests/integration/modules_test.c - modules switched on and off at run time
 * (/v1/settings/modules) against the real API, PostgreSQL and Redis: a
 * switched-off module's routes answer 404 module-disabled to everyone but
 * administrators (lists, reads, writes, bulk, upserts, feeds, nested and
 * prefixed routes alike, before any body is read), its operations leave the
 * spec served to them, GET /v1/me stops listing it, and switching it on
 * again brings back every record exactly as it was; only administrators
 * switch; a second API process follows within a second.
 *
 * crew_main() (tests/support/crew.c) builds the suite's database, adds one
 * user per role, starts one API process and logs everyone in once; Check
 * forks each test. The switches are global, so every test that switches a
 * module switches everything back on before it ends (PUT {} as the
 * administrator), and tests do not rely on any other test's records.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>

#include "tests/support/crew.h"

#define SECRET "modules-suite-secret-0123456789abcdefghij"

static const char *const api_env[] = {
    "CLIENTELE_THREADS=2",
    "CLIENTELE_JWT_SECRET=" SECRET,
    NULL,
};

static const crew_conf_t conf = {
    .name = "modules",
    .redis_db = 10,
    .env = api_env,
    .password = "modules-suite-password",
    .domain = "modules.test",
    .resource = "customers",
    .item = "customer",
};

static const char *const all_modules[] = {"customers", "orders", "contacts", "analytics",
                                          "users",     "teams",  "roles",    "backups"};
#define NMODULES (sizeof(all_modules) / sizeof(all_modules[0]))

/* --- helpers ---------------------------------------------------------------------------- */

static th_resp_t *set_modules(int who, const char *method, const char *body)
{
    return call_as(who, method, "/v1/settings/modules", strcmp(method, "PATCH") == 0 ? MERGE_T : JSON_T, body, NULL,
                   NULL);
}

/* Every module back on (the administrator's PUT with no module named). */
static void all_on(void)
{
    th_resp_t *r = set_modules(ADMIN, "PUT", "{}");
    expect_status(r, 200);
    for (size_t i = 0; i < NMODULES; i++)
        ck_assert_msg(json_is_true(json_object_get(jget(r, all_modules[i]), "enabled")), "%s is still off: %s",
                      all_modules[i], r->body);
}

static void switch_module(const char *module, int on)
{
    th_resp_t *r = set_modules(ADMIN, "PATCH", fmt("{\"%s\":{\"enabled\":%s}}", module, on ? "true" : "false"));
    expect_status(r, 200);
    ck_assert_int_eq(json_is_true(json_object_get(jget(r, module), "enabled")), on);
}

static void expect_disabled(th_resp_t *r, const char *module)
{
    expect_problem(r, 404, "module-disabled");
    const char *detail = jstr(r->json, "detail");
    ck_assert_msg(detail != NULL && strstr(detail, module) != NULL, "detail does not name %s: %s", module, r->body);
}

static int me_lists(int who, const char *module)
{
    th_resp_t *r = http_get(who, "/v1/me");
    expect_status(r, 200);
    json_t *mods = jget(r, "modules"), *v;
    ck_assert_msg(json_is_array(mods), "no modules in /v1/me: %s", r->body);
    size_t i;
    json_array_foreach(mods, i, v)
    {
        if (strcmp(json_string_value(v), module) == 0)
            return 1;
    }
    return 0;
}

/* The paths of the served spec, as `who` (-1: no token) gets it, in JSON or YAML. */
static json_t *spec_paths(int who, const char *doc)
{
    th_resp_t *r = http_get(who, doc);
    expect_status(r, 200);
    json_t *j = jparse(r->body); /* the tailored YAML is JSON too; the whole one is real YAML */
    return keep(j) != NULL ? json_object_get(j, "paths") : NULL;
}

static int spec_has(json_t *paths, const char *path, const char *method)
{
    return json_object_get(json_object_get(paths, path), method) != NULL;
}

static long long make_customer(int who, const char *tag)
{
    th_resp_t *r =
        http_post(who, "/v1/customers", fmt("{\"kind\":\"company\",\"name\":\"Firm %s\",\"tags\":[\"%s\"]}", tag, tag));
    expect_status(r, 201);
    return jint(r->json, "id");
}

static th_resp_t *make_order(int who, long long customer, const char *ext)
{
    th_resp_t *r = http_post(who, "/v1/orders",
                             fmt("{\"customer_id\":%lld,\"external_id\":\"%s\",\"ordered_at\":\"2026-01-05T10:00:00Z\","
                                 "\"status\":\"completed\",\"currency\":\"EUR\",\"total\":\"10.00\"}",
                                 customer, ext));
    expect_status(r, 201);
    return r;
}

/* --- settings ---------------------------------------------------------------------------- */

START_TEST(every_module_is_listed_and_on_by_default)
{
    all_on();
    /* Any user may read them, rep included; the order is fixed, record types first. */
    th_resp_t *r = http_get(REP1, "/v1/settings/modules");
    expect_status(r, 200);
    ck_assert_uint_eq(json_object_size(r->json), NMODULES);
    const char *key;
    json_t *v;
    size_t i = 0;
    json_t *on = keep(json_pack("{s:b}", "enabled", 1));
    json_object_foreach(r->json, key, v)
    {
        ck_assert_str_eq(key, all_modules[i++]);
        ck_assert_msg(json_equal(v, on), "%s: %s", key, r->body);
    }
    /* A row the API does not know (a module of another release) is ignored. */
    ck_assert_int_eq(th_sql(db_url, "INSERT INTO module_settings (module, enabled) VALUES ('legacy_stuff', false)"
                                    " ON CONFLICT DO NOTHING"),
                     0);
    r = http_get(ANALYST, "/v1/settings/modules");
    expect_status(r, 200);
    ck_assert_ptr_null(jget(r, "legacy_stuff"));
    ck_assert_uint_eq(json_object_size(r->json), NMODULES);
    /* Without a token: 401. */
    expect_problem(http_get(-1, "/v1/settings/modules"), 401, "unauthenticated");
}
END_TEST

START_TEST(only_administrators_switch_and_bad_bodies_are_named)
{
    all_on();
    static const int others[] = {DIRECTOR, MANAGER, REP1, ANALYST, INTEGRATION};
    for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++) {
        expect_problem(set_modules(others[i], "PATCH", "{\"orders\":{\"enabled\":false}}"), 403, "forbidden");
        expect_problem(set_modules(others[i], "PUT", "{\"orders\":{\"enabled\":false}}"), 403, "forbidden");
    }
    th_resp_t *r = http_get(REP1, "/v1/settings/modules");
    ck_assert(json_is_true(json_object_get(jget(r, "orders"), "enabled")));

    /* Every problem at once, each named. */
    r = set_modules(ADMIN, "PATCH",
                    "{\"orders\":{\"enabled\":\"no\"},\"leads\":{\"enabled\":false},\"contacts\":{},"
                    "\"analytics\":true,\"users\":{\"enabled\":false,\"why\":1}}");
    expect_problem(r, 422, "validation-failed");
    expect_error(r, "orders.enabled", "invalid_type");
    expect_error(r, "leads", "unknown_field");
    expect_error(r, "contacts.enabled", "required");
    expect_error(r, "analytics", "invalid_type");
    expect_error(r, "users.why", "unknown_field");
    /* Nothing was changed by the refused body (users was valid but the whole body is refused). */
    r = http_get(REP1, "/v1/settings/modules");
    ck_assert(json_is_true(json_object_get(jget(r, "users"), "enabled")));
    expect_problem(set_modules(ADMIN, "PUT", "[]"), 422, "validation-failed");
    expect_problem(set_modules(ADMIN, "PUT", "{\"orders\":null}"), 422, "validation-failed");
    expect_problem(call_as(ADMIN, "PATCH", "/v1/settings/modules", JSON_T, "{}", NULL, NULL), 415,
                   "unsupported-media-type");
}
END_TEST

START_TEST(put_sets_every_module_and_patch_null_restores_the_default)
{
    all_on();
    switch_module("contacts", 0);
    /* PUT names analytics only: contacts comes back on, analytics goes off. */
    th_resp_t *r = set_modules(ADMIN, "PUT", "{\"analytics\":{\"enabled\":false}}");
    expect_status(r, 200);
    ck_assert(json_is_true(json_object_get(jget(r, "contacts"), "enabled")));
    ck_assert(json_is_false(json_object_get(jget(r, "analytics"), "enabled")));
    ck_assert_uint_eq(json_object_size(r->json), NMODULES);
    /* A merge patch's null: back to the default. */
    r = set_modules(ADMIN, "PATCH", "{\"analytics\":null}");
    expect_status(r, 200);
    ck_assert(json_is_true(json_object_get(jget(r, "analytics"), "enabled")));
    /* Switching a module off twice, or on when it is on, is no error. */
    switch_module("roles", 0);
    switch_module("roles", 0);
    switch_module("roles", 1);
    switch_module("roles", 1);
    all_on();
}
END_TEST

/* --- a module switched off ------------------------------------------------------------------ */

START_TEST(a_switched_off_module_is_gone_for_all_but_administrators_and_comes_back_unchanged)
{
    all_on();
    const char *tag = uniq("mod");
    long long cust = make_customer(REP1, tag);
    const char *ext = uniq("ord");
    th_resp_t *made = make_order(REP1, cust, ext);
    long long order = jint(made->json, "id");
    th_resp_t *before = http_get(REP1, fmt("/v1/orders/%lld", order));
    expect_status(before, 200);
    const char *etag = header(before, "etag");
    ck_assert(me_lists(REP1, "orders"));
    th_resp_t *up = call_as(REP1, "POST", fmt("/v1/orders/%lld/attachments", order), "text/plain", "the receipt",
                            "Content-Disposition: attachment; filename=\"receipt.txt\"", NULL);
    expect_status(up, 201);
    long long file = jint(up->json, "id");

    switch_module("orders", 0);

    /* Every route of the module, for every role but the administrator's, whatever they may do otherwise. */
    static const int others[] = {REP1, MANAGER, DIRECTOR, ANALYST, INTEGRATION};
    for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++) {
        int who = others[i];
        expect_disabled(http_get(who, "/v1/orders"), "orders");
        expect_disabled(http_get(who, fmt("/v1/orders/%lld", order)), "orders");
        expect_disabled(http_get(who, fmt("/v1/orders/%lld/history", order)), "orders");
        expect_disabled(http_get(who, "/v1/orders/aggregate?group_by=status"), "orders");
        expect_disabled(http_get(who, "/v1/orders/export"), "orders");
        expect_disabled(http_get(who, "/v1/changes/orders"), "orders");
        /* Writes too, before their body is looked at (this one is not even JSON). */
        expect_disabled(call_as(who, "POST", "/v1/orders", JSON_T, "not json", NULL, NULL), "orders");
        expect_disabled(
            call_as(who, "PATCH", fmt("/v1/orders/%lld", order), MERGE_T, "{\"status\":\"cancelled\"}", NULL, NULL),
            "orders");
        expect_disabled(call_as(who, "DELETE", fmt("/v1/orders/%lld", order), NULL, NULL, NULL, NULL), "orders");
        expect_disabled(call_as(who, "POST", "/v1/orders/bulk", NDJSON_T, "{}\n", NULL, NULL), "orders");
        expect_disabled(call_as(who, "PUT", fmt("/v1/external/orders/%s", ext), JSON_T, "{}", NULL, NULL), "orders");
        expect_disabled(http_get(who, fmt("/v1/orders/%lld/attachments", order)), "orders");
        /* HEAD as GET. */
        th_resp_t *h = call_as(who, "HEAD", fmt("/v1/orders/%lld", order), NULL, NULL, NULL, NULL);
        ck_assert_int_eq(h->status, 404);
        /* Other modules are untouched. */
        expect_status(http_get(who, "/v1/customers?limit=1"), 200);
    }
    /* A file of an order, by its own id (a route of no module), is not found either; its record is the module's. */
    expect_problem(http_get(REP1, fmt("/v1/attachments/%lld", file)), 404, "not-found");
    expect_problem(call_as(REP1, "DELETE", fmt("/v1/attachments/%lld", file), NULL, NULL, NULL, NULL), 404,
                   "not-found");
    expect_status(http_get(ADMIN, fmt("/v1/attachments/%lld", file)), 200);
    /* No token is still 401, not a hint about the module. */
    expect_problem(http_get(-1, "/v1/orders"), 401, "unauthenticated");
    /* The administrator works on as before. */
    expect_status(http_get(ADMIN, fmt("/v1/orders/%lld", order)), 200);
    expect_status(http_get(ADMIN, "/v1/orders?limit=1"), 200);

    /* GET /v1/me: gone from the rep's modules, not from the administrator's. */
    ck_assert(!me_lists(REP1, "orders"));
    ck_assert(me_lists(REP1, "customers"));
    ck_assert(me_lists(ADMIN, "orders"));

    /* The spec served to anyone but an administrator leaves the module's operations out. */
    json_t *anon = spec_paths(-1, "/openapi.json"), *rep = spec_paths(REP1, "/openapi.json");
    json_t *yaml = spec_paths(-1, "/openapi.yaml"), *adm = spec_paths(ADMIN, "/openapi.json");
    ck_assert(!spec_has(anon, "/v1/orders", "get"));
    ck_assert(!spec_has(anon, "/v1/orders/{id}", "patch"));
    ck_assert(!spec_has(anon, "/v1/changes/orders", "get"));
    ck_assert(!spec_has(rep, "/v1/orders/{id}/history", "get"));
    ck_assert(!spec_has(yaml, "/v1/external/orders/{external_id}", "put"));
    ck_assert(spec_has(anon, "/v1/customers", "get"));
    ck_assert(spec_has(anon, "/v1/contacts/{id}", "get"));
    ck_assert(spec_has(adm, "/v1/orders", "get"));
    ck_assert(spec_has(adm, "/v1/orders/{id}", "patch"));

    /* On again: the same order, byte for byte, with the same ETag; everything works again. */
    switch_module("orders", 1);
    th_resp_t *after = http_get(REP1, fmt("/v1/orders/%lld", order));
    expect_status(after, 200);
    ck_assert_str_eq(after->body, before->body);
    ck_assert_str_eq(header(after, "etag"), etag);
    ck_assert(me_lists(REP1, "orders"));
    ck_assert(spec_has(spec_paths(-1, "/openapi.json"), "/v1/orders", "get"));
    th_resp_t *f = http_get(REP1, fmt("/v1/attachments/%lld", file));
    expect_status(f, 200);
    ck_assert_str_eq(f->body, "the receipt");
    expect_status(
        call_as(REP1, "PATCH", fmt("/v1/orders/%lld", order), MERGE_T, "{\"status\":\"cancelled\"}", NULL, NULL), 200);
    all_on();
}
END_TEST

START_TEST(routes_of_a_module_elsewhere_in_the_tree_go_with_it)
{
    all_on();
    long long cust = make_customer(REP1, uniq("ana"));
    expect_status(http_get(REP1, fmt("/v1/customers/%lld/analytics/history", cust)), 200);
    switch_module("analytics", 0);
    /* Under /v1/customers, yet analytics. */
    expect_disabled(http_get(REP1, fmt("/v1/customers/%lld/analytics/history", cust)), "analytics");
    expect_disabled(http_get(ANALYST, "/v1/analytics/runs"), "analytics");
    expect_disabled(http_post(ANALYST, "/v1/analytics/runs", "{\"kind\":\"rfm\"}"), "analytics");
    expect_disabled(http_get(MANAGER, "/v1/analytics/summary"), "analytics");
    expect_status(http_get(REP1, fmt("/v1/customers/%lld", cust)), 200);
    switch_module("analytics", 1);

    /* Contacts under their customer's path are contacts. */
    switch_module("contacts", 0);
    expect_disabled(http_get(REP1, fmt("/v1/customers/%lld/contacts", cust)), "contacts");
    expect_disabled(http_get(REP1, "/v1/contacts"), "contacts");
    expect_status(http_get(REP1, fmt("/v1/customers/%lld", cust)), 200);
    switch_module("contacts", 1);

    /* Administration modules too: a director reads users no more; the administrator does. */
    switch_module("users", 0);
    expect_disabled(http_get(DIRECTOR, "/v1/users"), "users");
    expect_status(http_get(ADMIN, "/v1/users?limit=1"), 200);
    /* What belongs to no module is always served. */
    expect_status(http_get(REP1, "/v1/me"), 200);
    expect_status(http_get(REP1, "/v1/settings/modules"), 200);
    all_on();
}
END_TEST

START_TEST(a_role_without_permission_on_a_module_never_sees_it)
{
    all_on();
    /* The analyst has nothing on users or roles; the rep nothing on users; the integration account no analytics. */
    ck_assert(!me_lists(ANALYST, "users"));
    ck_assert(!me_lists(ANALYST, "roles"));
    ck_assert(me_lists(ANALYST, "analytics"));
    ck_assert(!me_lists(REP1, "users"));
    ck_assert(me_lists(MANAGER, "users"));
    ck_assert(!me_lists(INTEGRATION, "analytics"));
    ck_assert(me_lists(INTEGRATION, "orders"));
    /* A role given every action as none on a module is the same as not naming it. */
    th_resp_t *r = http_get(ADMIN, "/v1/me");
    json_t *mods = jget(r, "modules");
    ck_assert_uint_eq(json_array_size(mods), NMODULES);
}
END_TEST

START_TEST(another_api_process_follows_within_a_second)
{
    all_on();
    th_api_t b;
    th_api_start(&b, db_url, th_redis_url(conf.redis_db), api_env);
    char auth[2200];
    const char *hs[] = {th_bearer(users[REP1].token, auth, sizeof(auth)), NULL};
    th_resp_t r;
    /* B reads the set once and keeps it. */
    ck_assert_int_eq(th_http(b.port, "GET", "/v1/customers?limit=1", hs, NULL, 0, &r), 0);
    ck_assert_int_eq(r.status, 200);
    th_resp_free(&r);
    switch_module("customers", 0);
    long long t0 = th_now_ms(), waited = -1;
    while (th_now_ms() - t0 < 3000) {
        ck_assert_int_eq(th_http(b.port, "GET", "/v1/customers?limit=1", hs, NULL, 0, &r), 0);
        int st = r.status;
        th_resp_free(&r);
        if (st == 404) {
            waited = th_now_ms() - t0;
            break;
        }
        usleep(50 * 1000);
    }
    printf("the second process refused the switched-off module after %lld ms\n", waited);
    switch_module("customers", 1);
    ck_assert_msg(waited >= 0 && waited <= 1000, "the second process took %lld ms", waited);
    /* And serves it again just as soon. */
    t0 = th_now_ms();
    waited = -1;
    while (th_now_ms() - t0 < 3000) {
        ck_assert_int_eq(th_http(b.port, "GET", "/v1/customers?limit=1", hs, NULL, 0, &r), 0);
        int st = r.status;
        th_resp_free(&r);
        if (st == 200) {
            waited = th_now_ms() - t0;
            break;
        }
        usleep(50 * 1000);
    }
    ck_assert_msg(waited >= 0 && waited <= 1000, "the second process took %lld ms to serve it again", waited);
    ck_assert_int_eq(th_api_stop(&b, SIGTERM, 15), 0);
    all_on();
}
END_TEST

static Suite *modules_suite(void)
{
    Suite *s = suite_create("integration/modules");
    TCase *tc = tcase_create("settings");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, every_module_is_listed_and_on_by_default);
    tcase_add_test(tc, only_administrators_switch_and_bad_bodies_are_named);
    tcase_add_test(tc, put_sets_every_module_and_patch_null_restores_the_default);
    suite_add_tcase(s, tc);

    tc = tcase_create("switched_off");
    tcase_set_timeout(tc, 90);
    tcase_add_test(tc, a_switched_off_module_is_gone_for_all_but_administrators_and_comes_back_unchanged);
    tcase_add_test(tc, routes_of_a_module_elsewhere_in_the_tree_go_with_it);
    tcase_add_test(tc, a_role_without_permission_on_a_module_never_sees_it);
    tcase_add_test(tc, another_api_process_follows_within_a_second);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return crew_main(&conf, modules_suite);
}
