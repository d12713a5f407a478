/*
 * tests/unit/api/engine_test.c - unit tests for api/engine_sql.c: every
 * production description builds, a broken one is refused with its name,
 * and the generated statements keep their promises (identifiers only from
 * descriptions, the fixed parameters where the handlers bind them).
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "api/engine_int.h"
#include "api/resources.h"

static char err[256];

START_TEST(every_production_resource_builds)
{
    engine_t *e = engine_build(engine_resources, err, sizeof(err));
    ck_assert_msg(e != NULL, "engine_build: %s", err);
    for (const engine_resource_t *const *r = engine_resources; *r != NULL; r++) {
        const engine_res_t *res = engine_res(e, *r);
        ck_assert_ptr_nonnull(res);
        for (int i = 0; i < ENGINE_SQL_COUNT_; i++) {
            const char *sql = engine_sql(e, *r, i);
            ck_assert_msg(sql != NULL && strlen(sql) > 20, "%s: statement %d is empty", (*r)->name, i);
            /* Every scoped statement starts with its caller; reads take it as parameters, writes from the tables. */
            ck_assert_msg(strncmp(sql, "WITH caller0 AS (", 17) == 0, "%s: statement %d: %.60s", (*r)->name, i, sql);
        }
        /* Custom fields may define the attrs of exactly the resources that have attrs. */
        const engine_field_t *attrs = engine_field(*r, "attrs");
        int listed = 0;
        for (int k = 0; custom_field_resources[k] != NULL; k++)
            listed |= strcmp(custom_field_resources[k], (*r)->name) == 0;
        ck_assert_msg(listed == (attrs != NULL && attrs->v.type == VT_JSON_OBJECT),
                      "%s: custom_field_resources (api/custom_fields.c) %s it", (*r)->name, listed ? "lists" : "omits");
        for (int s = 0; s < 2 * res->nsorts; s++) {
            const char *sql = engine_sql_list(e, *r, s);
            ck_assert_ptr_nonnull(sql);
            char want[16];
            snprintf(want, sizeof(want), "$%d", res->nlist_params);
            ck_assert_msg(strstr(sql, want) != NULL, "%s: list %d never binds its last filter %s", (*r)->name, s, want);
        }
        ck_assert_ptr_null(engine_sql_list(e, *r, 2 * res->nsorts));
        ck_assert_int_ge(res->default_sort, 0);
    }
    engine_free(e);
}
END_TEST

static const engine_field_t good_fields[] = {
    {.v = {.name = "id", .type = VT_ID, .flags = VF_READONLY}},
    {.v = {.name = "external_id", .type = VT_STRING, .flags = VF_NULLABLE, .min_len = 1, .max_len = 200}},
    {.v = {.name = "owner_id", .type = VT_ID}},
    {.v = {.name = "team_id", .type = VT_ID, .flags = VF_NULLABLE}},
    {.v = {.name = "title", .type = VT_STRING, .flags = VF_NULLABLE, .max_len = 100}, .ef = EF_SORT | EF_SEARCH},
    {.v = {.name = "created_at", .type = VT_TIMESTAMP, .flags = VF_READONLY}, .ef = EF_SORT},
    {.v = {.name = "updated_at", .type = VT_TIMESTAMP, .flags = VF_READONLY}},
    {.v = {.name = "version", .type = VT_INT, .flags = VF_READONLY}},
};
static const engine_sort_t good_sorts[] = {{.name = "title"}, {.name = "created_at"}, {.name = NULL}};

/* Builds a list holding one copy of `r` and expects a refusal mentioning `frag`. */
static void refused(const engine_resource_t *r, const char *frag)
{
    const engine_resource_t *list[] = {r, NULL};
    engine_t *e = engine_build(list, err, sizeof(err));
    if (e != NULL) {
        engine_free(e);
        ck_abort_msg("a broken description was accepted (wanted: %s)", frag);
    }
    ck_assert_msg(strstr(err, frag) != NULL, "error \"%s\" lacks \"%s\"", err, frag);
}

START_TEST(a_broken_description_is_refused_by_name)
{
    engine_resource_t r = {.name = "notes",
                           .table = "notes",
                           .singular = "note",
                           .fields = good_fields,
                           .nfields = ENGINE_COUNT(good_fields),
                           .scope = {ENGINE_OWNED},
                           .sorts = good_sorts,
                           .default_sort = "-created_at"};
    const engine_resource_t *list[] = {&r, NULL};
    engine_t *e = engine_build(list, err, sizeof(err));
    ck_assert_msg(e != NULL, "the good description: %s", err);
    /* A nullable text sort sorts as '' and a search field becomes q=. */
    ck_assert_ptr_nonnull(strstr(engine_sql_list(e, &r, 0), "coalesce(t.title, '')"));
    ck_assert_int_eq(engine_param_pos(engine_res(e, &r), "q"), EL_FIRST_FILTER);
    engine_free(e);

    engine_resource_t bad = r;
    bad.table = "notes; DROP TABLE users";
    refused(&bad, "bad name");
    bad = r;
    bad.table = "memos";
    refused(&bad, "named as its table");
    bad = r;
    bad.default_sort = "-title_x";
    refused(&bad, "default sort");
    bad = r;
    bad.nfields = 5; /* no created_at, updated_at or version */
    refused(&bad, "every resource has the field");
    static const engine_sort_t bad_sorts[] = {{.name = "nope"}, {.name = NULL}};
    bad = r;
    bad.sorts = bad_sorts;
    bad.default_sort = "nope";
    refused(&bad, "not a column");
    bad = r;
    bad.scope.kind = ENGINE_PARENT; /* no parent named */
    refused(&bad, "owned parent");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("api/engine");
    TCase *tc = tcase_create("build");
    tcase_add_test(tc, every_production_resource_builds);
    tcase_add_test(tc, a_broken_description_is_refused_by_name);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
