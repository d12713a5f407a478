/*
 * tests/unit/api/tables_test.c - unit tests for api/tables.c: every field
 * table the API validates bodies with passes validate_table_check(), the
 * list names each exported table once, and a broken table is reported by
 * name (which is what makes start-up refuse it).
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "../../../api/tables.c"

START_TEST(every_production_table_is_well_formed)
{
    char err[300];
    for (size_t i = 0; i < api_nfield_tables; i++) {
        const api_field_table_t *t = &api_field_tables[i];
        ck_assert_msg(*t->nfields > 0, "table %s is empty", t->name);
        int ret = validate_table_check(t->fields, *t->nfields, err, sizeof(err));
        ck_assert_msg(ret == 0, "table %s: %s", t->name, err);
    }
    ck_assert_int_eq(api_check_field_tables(err, sizeof(err)), 0);
    ck_assert_str_eq(err, "");
}
END_TEST

START_TEST(the_list_holds_every_exported_table_once)
{
    /* Engine resources are checked by engine_build() (tests/unit/api/engine_test.c). */
    const validate_field_t *want[] = {admin_teams_fields, admin_roles_fields, admin_users_fields};
    ck_assert_uint_eq(api_nfield_tables, sizeof(want) / sizeof(want[0]));
    for (size_t w = 0; w < sizeof(want) / sizeof(want[0]); w++) {
        int n = 0;
        for (size_t i = 0; i < api_nfield_tables; i++)
            n += api_field_tables[i].fields == want[w];
        ck_assert_msg(n == 1, "table %zu is listed %d times", w, n);
    }
}
END_TEST

START_TEST(a_broken_table_is_named)
{
    static const validate_field_t unbounded[] = {{.name = "name", .type = VT_STRING}};
    static const size_t nunbounded = 1;
    const api_field_table_t list[] = {
        {"teams", admin_teams_fields, &admin_teams_nfields},
        {"widgets", unbounded, &nunbounded},
    };
    char err[300];
    ck_assert_int_eq(check_tables(list, 2, err, sizeof(err)), ERR_INVALID);
    ck_assert_msg(strncmp(err, "table widgets: ", 15) == 0, "err: %s", err);
    ck_assert_ptr_nonnull(strstr(err, "name"));
    /* No buffer: still refused. */
    ck_assert_int_eq(check_tables(list, 2, NULL, 0), ERR_INVALID);
}
END_TEST

static Suite *tables_suite(void)
{
    Suite *s = suite_create("api/tables");
    TCase *tc = tcase_create("tables");
    tcase_add_test(tc, every_production_table_is_well_formed);
    tcase_add_test(tc, the_list_holds_every_exported_table_once);
    tcase_add_test(tc, a_broken_table_is_named);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(tables_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
