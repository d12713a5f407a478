/*
 * tests/unit/api/attachments_db_test.c - unit tests for
 * api/attachments_db.c: the statements are generated for every engine
 * resource, each resource's branch judges its records under its own module
 * and with its own scope columns, and values are only ever parameters.
 * What the statements answer is tested against PostgreSQL by
 * tests/integration/attachments_test.c.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "../../../api/attachments_db.c"
#include "api/resources.h"

static int count(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = strstr(hay, needle); p != NULL; p = strstr(p + 1, needle))
        n++;
    return n;
}

START_TEST(test_build_every_resource)
{
    char err[256] = "";
    engine_t *e = engine_build(engine_resources, err, sizeof(err));
    ck_assert_msg(e != NULL, "engine_build: %s", err);
    attachments_sql_t s;
    ck_assert_msg(attachments_sql_build(&s, e, engine_resources, err, sizeof(err)) == 0, "%s", err);
    size_t n = 0;
    for (; engine_resources[n] != NULL; n++) {
        const engine_resource_t *r = engine_resources[n];
        const char *ins = attachments_sql_insert(&s, r), *list = attachments_sql_list(&s, r);
        ck_assert_ptr_nonnull(ins);
        ck_assert_ptr_nonnull(list);
        char module[96], entity[96];
        snprintf(module, sizeof(module), "'{%s,update}'", r->name);
        snprintf(entity, sizeof(entity), "'%s'", r->name);
        /* The resource's own caller CTE (its module), its table, and its entity name. */
        ck_assert_msg(strstr(ins, module) != NULL, "%s: insert without its module's update scope", r->name);
        ck_assert_msg(strstr(ins, entity) != NULL && strstr(list, entity) != NULL, "%s: no entity", r->name);
        ck_assert(strstr(ins, "$7::text") != NULL);
        ck_assert(strstr(list, "$6::bool") != NULL);
        /* A list is a read: its caller is the one api/callers.c hands over; an insert decides from the tables. */
        ck_assert(strstr(list, "split_part($2::text") != NULL && strstr(list, "token_version") == NULL);
        ck_assert(strstr(ins, "u.token_version = $2") != NULL);
        /* One branch per resource in the statements across resources, each under its module. */
        char read[96];
        snprintf(read, sizeof(read), "perms #>> '{%s,read}'", r->name);
        ck_assert_int_eq(count(s.get, read), 1);
        ck_assert_int_eq(count(s.del, read), 1);
        snprintf(read, sizeof(read), "a.entity = '%s'", r->name);
        ck_assert_int_eq(count(s.get, read), 1);
        /* A child resource is judged by its parent's owner and team. */
        if (r->scope.kind == ENGINE_PARENT)
            ck_assert(strstr(ins, "tp.owner_id") != NULL && strstr(ins, "t.owner_id") == NULL);
    }
    ck_assert_uint_eq(s.n, n);
    ck_assert_int_eq(count(s.get, " UNION ALL "), (int)n - 1);
    ck_assert_int_eq(count(s.del, " UNION ALL "), (int)n - 1);
    ck_assert(strstr(s.del, "deleted_at = now()") != NULL && strstr(s.del, "vis.updatable") != NULL);
    /* A resource that is not part of the engine has no statements. */
    static const engine_resource_t stranger = {.name = "strangers"};
    ck_assert_ptr_null(attachments_sql_insert(&s, &stranger));
    ck_assert_ptr_null(attachments_sql_list(&s, &stranger));
    attachments_sql_free(&s);
    ck_assert_ptr_null(s.get);

    const engine_resource_t *const only_stranger[] = {&stranger, NULL};
    ck_assert_int_ne(attachments_sql_build(&s, e, only_stranger, err, sizeof(err)), 0);
    ck_assert_msg(strstr(err, "strangers") != NULL, "%s", err);
    const engine_resource_t *const none[] = {NULL};
    ck_assert_int_ne(attachments_sql_build(&s, e, none, err, sizeof(err)), 0);
    engine_free(e);
}
END_TEST

static Suite *attachments_db_suite(void)
{
    Suite *s = suite_create("api/attachments_db");
    TCase *tc = tcase_create("build");
    tcase_add_test(tc, test_build_every_resource);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(attachments_db_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
