/*
 * tests/unit/api/ownership_test.c - unit tests for api/ownership.c: which
 * resources a transfer covers and what it leaves, from the descriptions.
 * The transfers themselves run against PostgreSQL in
 * tests/integration/transfers_test.c.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "../../../api/ownership.c"

START_TEST(test_owned_resources)
{
    /* Customers have owners; contacts and orders follow their customer. */
    char buf[64];
    ck_assert_str_eq(ownership_owned_array(engine_resources, buf, sizeof(buf)), "{customers}");
    ck_assert_ptr_null(ownership_owned_array(engine_resources, buf, 8));
    static const engine_resource_t a = {.name = "leads", .scope = {ENGINE_OWNED}};
    static const engine_resource_t *const two[] = {&customers_resource, &orders_resource, &a, NULL};
    ck_assert_str_eq(ownership_owned_array(two, buf, sizeof(buf)), "{customers,leads}");
}
END_TEST

START_TEST(test_closed_rules_come_from_the_descriptions)
{
    json_t *rules = ownership_closed_rules(engine_resources);
    char *t = json_dumps(rules, JSON_COMPACT | JSON_SORT_KEYS);
    ck_assert_str_eq(t, "{\"customers\":{\"field\":\"status\",\"values\":[\"inactive\"]}}");
    free(t);
    json_decref(rules);
    char err[256];
    ck_assert_int_eq(ownership_check_resources(engine_resources, err, sizeof(err)), 0);
}
END_TEST

START_TEST(test_bad_closed_rules_are_refused)
{
    static const char *const bogus[] = {"archived", NULL};
    static const char *const inactive[] = {"inactive", NULL};
    char err[256];
    /* A value the field does not have. */
    engine_resource_t r = customers_resource;
    r.closed.values = bogus;
    const engine_resource_t *const one[] = {&r, NULL};
    ck_assert_int_eq(ownership_check_resources(one, err, sizeof(err)), -1);
    ck_assert_msg(strstr(err, "archived") != NULL, "%s", err);
    /* A field that is not an enum, or none at all. */
    r.closed.values = inactive;
    r.closed.field = "name";
    ck_assert_int_eq(ownership_check_resources(one, err, sizeof(err)), -1);
    r.closed.field = "nope";
    ck_assert_int_eq(ownership_check_resources(one, err, sizeof(err)), -1);
    /* A resource that follows a parent has nothing to leave behind. */
    engine_resource_t o = orders_resource;
    o.closed.field = "status";
    o.closed.values = inactive;
    const engine_resource_t *const other[] = {&o, NULL};
    ck_assert_int_eq(ownership_check_resources(other, err, sizeof(err)), -1);
}
END_TEST

static Suite *ownership_suite(void)
{
    Suite *s = suite_create("api/ownership");
    TCase *tc = tcase_create("descriptions");
    tcase_add_test(tc, test_owned_resources);
    tcase_add_test(tc, test_closed_rules_come_from_the_descriptions);
    tcase_add_test(tc, test_bad_closed_rules_are_refused);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(ownership_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
