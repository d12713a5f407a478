/*
 * tests/unit/api/modules_test.c - unit tests for api/modules.c: the
 * modules derived from the route table, each route's module, the spec
 * copies without some modules' operations, and the modules GET /v1/me
 * lists. No database: the parts that read the switched-off set are
 * covered by tests/integration/modules_test.c.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "../../../api/modules.c"
#include "api/resources.h"

static api_server_t server;
static api_modules_t *mods;

static void setup(void)
{
    char err[256];
    ck_assert_msg(api_openapi_load(&server, err, sizeof(err)) == 0, "api_openapi_load: %s", err);
    mods = api_modules_new(api_routes, api_nroutes, engine_resources, server.openapi_json, err, sizeof(err));
    ck_assert_msg(mods != NULL, "api_modules_new: %s", err);
}

static void teardown(void)
{
    api_modules_free(mods);
    free(server.openapi_json.base);
}

static int route_index(unsigned method, const char *path)
{
    for (size_t i = 0; i < api_nroutes; i++)
        if (api_routes[i].method == method && strcmp(api_routes[i].path, path) == 0)
            return (int)i;
    ck_abort_msg("no route %s", path);
    return -1;
}

static const char *module_of(unsigned method, const char *path)
{
    int k = mods->route_module[route_index(method, path)];
    return k < 0 ? NULL : mods->names[k];
}

START_TEST(test_modules_derived_from_the_code)
{
    /* Every engine resource first, in its order (but those every user reads), then the route table's others. */
    size_t n = 0;
    for (size_t i = 0; engine_resources[i] != NULL; i++)
        if (!engine_resources[i]->public_read)
            ck_assert_str_eq(api_modules_name(mods, n++), engine_resources[i]->name);
    static const char *const others[] = {"analytics", "users", "teams", "roles", "backups"};
    for (size_t i = 0; i < 5; i++)
        ck_assert_str_eq(api_modules_name(mods, n + i), others[i]);
    ck_assert_uint_eq(api_modules_count(mods), n + 5);
    ck_assert_ptr_null(api_modules_name(mods, n + 5));
    ck_assert_int_eq(api_modules_index(mods, "orders"), 1);
    ck_assert_int_eq(api_modules_index(mods, "settings"), -1);
    ck_assert_int_eq(api_modules_index(mods, "custom_fields"), -1);
}
END_TEST

START_TEST(test_each_route_has_its_module)
{
    ck_assert_pstr_eq(module_of(ROUTER_GET, "/v1/customers"), "customers");
    ck_assert_pstr_eq(module_of(ROUTER_PUT, "/v1/external/orders/{external_id:str}"), "orders");
    ck_assert_pstr_eq(module_of(ROUTER_GET, "/v1/customers/{id:int}/contacts"), "contacts");
    ck_assert_pstr_eq(module_of(ROUTER_GET, "/v1/changes/contacts"), "contacts");
    ck_assert_pstr_eq(module_of(ROUTER_GET, "/v1/customers/{id:int}/attachments"), "customers");
    ck_assert_pstr_eq(module_of(ROUTER_GET, "/v1/customers/{id:int}/analytics/history"), "analytics");
    ck_assert_pstr_eq(module_of(ROUTER_POST, "/v1/analytics/runs"), "analytics");
    ck_assert_pstr_eq(module_of(ROUTER_PATCH, "/v1/users/{id:int}"), "users");
    ck_assert_pstr_eq(module_of(ROUTER_GET, "/v1/roles"), "roles");
    /* Outside every module: always served. */
    ck_assert_ptr_null(module_of(ROUTER_GET, "/v1/me"));
    ck_assert_ptr_null(module_of(ROUTER_POST, "/v1/auth/token"));
    ck_assert_ptr_null(module_of(ROUTER_PATCH, "/v1/settings/modules"));
    ck_assert_ptr_null(module_of(ROUTER_POST, "/v1/ownership-transfers"));
    ck_assert_ptr_null(module_of(ROUTER_GET, "/v1/attachments/{id:int}"));
    ck_assert_ptr_null(module_of(ROUTER_GET, "/openapi.json"));
    ck_assert_pstr_eq(module_of(ROUTER_POST, "/v1/admin/backups"), "backups");
    /* Definitions every user reads are no module. */
    ck_assert_ptr_null(module_of(ROUTER_GET, "/v1/custom-fields"));
    ck_assert_ptr_null(module_of(ROUTER_POST, "/v1/custom-fields"));
}
END_TEST

START_TEST(test_route_without_resource_falls_to_its_prefix)
{
    /* A later route under a resource's path that names no resource still belongs to it; prefixes end at a '/'. */
    api_route_t r = {ROUTER_GET, "/v1/customers/{id:int}/duplicates", NULL, 0, NULL};
    ck_assert_pstr_eq(api_route_module(&r, engine_resources), "customers");
    r.path = "/v1/customersx";
    ck_assert_ptr_null(api_route_module(&r, engine_resources));
    r.path = "/v1/usersettings";
    ck_assert_ptr_null(api_route_module(&r, engine_resources));
    r.path = "/v1/teams/{id:int}";
    ck_assert_pstr_eq(api_route_module(&r, engine_resources), "teams");
}
END_TEST

static json_t *spec_for(uint64_t mask)
{
    size_t len;
    char *text = api_modules_spec(mods, mask, &len);
    ck_assert_uint_eq(strlen(text), len);
    json_error_t jerr;
    json_t *j = json_loadb(text, len, 0, &jerr);
    ck_assert_msg(j != NULL, "the copy is not JSON: %s", jerr.text);
    free(text);
    return j;
}

START_TEST(test_spec_without_nothing_is_the_spec)
{
    json_t *full = json_loadb(server.openapi_json.base, server.openapi_json.len, 0, NULL);
    json_t *copy = spec_for(0);
    ck_assert(json_equal(full, copy));
    json_decref(full);
    json_decref(copy);
}
END_TEST

START_TEST(test_spec_without_a_module_drops_exactly_its_operations)
{
    int customers = api_modules_index(mods, "customers"), analytics = api_modules_index(mods, "analytics");
    uint64_t mask = (uint64_t)1 << customers | (uint64_t)1 << analytics;
    json_t *full = json_loadb(server.openapi_json.base, server.openapi_json.len, 0, NULL);
    json_t *copy = spec_for(mask);
    json_t *paths = json_object_get(copy, "paths");
    /* Every route: its operation is in the copy exactly when its module is on. */
    for (size_t i = 0; i < api_nroutes; i++) {
        char label[256];
        router_template_label(api_routes[i].path, label, sizeof(label));
        const char *m = NULL;
        for (int o = 0; op_names[o] != NULL; o++)
            if (op_bits[o] == api_routes[i].method)
                m = op_names[o];
        int k = mods->route_module[i];
        int want = k < 0 || !(mask >> k & 1);
        int have = json_object_get(json_object_get(paths, label), m) != NULL;
        ck_assert_msg(want == have, "%s %s: %s in the copy", m, label, have ? "still" : "missing");
    }
    /* A path whose every operation went is gone, parameters and all. */
    ck_assert_ptr_null(json_object_get(paths, "/v1/customers/{id}"));
    ck_assert_ptr_null(json_object_get(paths, "/v1/analytics/runs/{id}"));
    ck_assert_ptr_nonnull(json_object_get(paths, "/v1/contacts/{id}"));
    /* Everything else is as it was. */
    ck_assert(json_equal(json_object_get(full, "components"), json_object_get(copy, "components")));
    ck_assert(json_equal(json_object_get(full, "info"), json_object_get(copy, "info")));
    ck_assert_str_eq(json_string_value(json_object_get(copy, "openapi")), "3.1.0");
    json_decref(full);
    json_decref(copy);
}
END_TEST

/* Compact JSON text of v (static buffer). */
static const char *jdump_test(const json_t *v)
{
    static char buf[1024];
    char *t = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    snprintf(buf, sizeof(buf), "%s", t != NULL ? t : "?");
    free(t);
    return buf;
}

START_TEST(test_usable_modules)
{
    json_t *perms =
        json_loads("{\"customers\":{\"read\":\"own\"},\"orders\":{\"read\":\"none\"},"
                   "\"analytics\":{\"read\":\"own\"},\"teams\":{\"read\":\"all\"},\"nomodule\":{\"read\":\"all\"}}",
                   0, NULL);
    json_t *u = api_modules_usable(mods, perms, 0, "[]");
    ck_assert_str_eq(jdump_test(u), "[\"customers\",\"analytics\",\"teams\"]");
    json_decref(u);
    /* Switched off: gone for everyone but administrators; names the API does not have are ignored. */
    u = api_modules_usable(mods, perms, 0, "[\"analytics\",\"gone\"]");
    ck_assert_str_eq(jdump_test(u), "[\"customers\",\"teams\"]");
    json_decref(u);
    u = api_modules_usable(mods, perms, 1, "[\"analytics\"]");
    ck_assert_str_eq(jdump_test(u), "[\"customers\",\"analytics\",\"teams\"]");
    json_decref(u);
    json_decref(perms);
}
END_TEST

static Suite *modules_suite(void)
{
    Suite *s = suite_create("api/modules");
    TCase *tc = tcase_create("modules");
    tcase_set_timeout(tc, 20);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_modules_derived_from_the_code);
    tcase_add_test(tc, test_each_route_has_its_module);
    tcase_add_test(tc, test_route_without_resource_falls_to_its_prefix);
    tcase_add_test(tc, test_spec_without_nothing_is_the_spec);
    tcase_add_test(tc, test_spec_without_a_module_drops_exactly_its_operations);
    tcase_add_test(tc, test_usable_modules);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(modules_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
