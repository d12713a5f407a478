/*
 * tests/unit/api/merge_db_test.c - unit tests for api/merge_db.c: the
 * statements of duplicates and merges are generated for every resource
 * whose description says how duplicates are found, a merge re-points every
 * reference the descriptions declare (a child's parent, a field's `ref`),
 * including those of resources added later, and checks the caller's right
 * to update each, and values are only ever parameters. What the statements
 * answer is tested against PostgreSQL by tests/integration/merge_test.c.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "../../../api/merge_db.c"
#include "api/resources.h"

static int count(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = strstr(hay, needle); p != NULL; p = strstr(p + 1, needle))
        n++;
    return n;
}

START_TEST(test_built_for_the_resources_that_merge)
{
    char err[256] = "";
    engine_t *e = engine_build(engine_resources, err, sizeof(err));
    ck_assert_msg(e != NULL, "engine_build: %s", err);
    merge_sql_t s;
    ck_assert_msg(merge_sql_build(&s, e, engine_resources, err, sizeof(err)) == 0, "%s", err);
    ck_assert_uint_eq(s.n, 2);
    ck_assert_ptr_nonnull(merge_sql_merge(&s, &customers_resource));
    ck_assert_ptr_nonnull(merge_sql_duplicates(&s, &contacts_resource));
    ck_assert_ptr_null(merge_sql_merge(&s, &orders_resource));
    ck_assert_ptr_null(merge_sql_phones(&s, &orders_resource));

    const char *m = merge_sql_merge(&s, &customers_resource);
    /* Every reference to customers the descriptions hold moves: contacts and orders, and attachments. */
    ck_assert(strstr(m, "mv_contacts AS (UPDATE contacts x SET customer_id = ") != NULL);
    ck_assert(strstr(m, "mv_orders AS (UPDATE orders x SET customer_id = ") != NULL);
    ck_assert(strstr(m, "UPDATE attachments a SET entity_id = $3::bigint") != NULL);
    /* Moving them is an update under their own module. */
    ck_assert(strstr(m, "'{orders,update}'") != NULL && strstr(m, "'{contacts,update}'") != NULL);
    ck_assert(strstr(m, "THEN 'forbidden_orders'") != NULL);
    /* Moved contacts: one primary contact, and reports only to live contacts. */
    ck_assert(strstr(m, "is_primary = x.is_primary AND NOT EXISTS") != NULL);
    ck_assert(strstr(m, "reports_to_id = CASE WHEN EXISTS") != NULL);
    /* The survivor takes chosen values, never its owner, team or external id; merged records name it. */
    ck_assert(strstr(m, "email = CASE WHEN $5::jsonb ? 'email'") != NULL);
    ck_assert(strstr(m, "owner_id = ") == NULL && strstr(m, "team_id = CASE") == NULL);
    ck_assert(strstr(m, "external_id = ") == NULL);
    ck_assert(strstr(m, "merged_into = $3::bigint") != NULL);
    /* Records are locked in the order of their ids; scopes are judged in the statement. */
    ck_assert(strstr(m, "ORDER BY t.id FOR UPDATE OF t") != NULL);
    ck_assert(strstr(m, "scope_keeps_team(caller.uscope, tgt._team, sur._team)") != NULL);
    ck_assert(strstr(m, "u.token_version = $2") != NULL);

    m = merge_sql_merge(&s, &contacts_resource);
    /* Contacts merge within one customer; references between contacts are re-pointed. */
    ck_assert(strstr(m, "THEN 'different_parent'") != NULL);
    ck_assert(strstr(m, "mv_contacts AS (UPDATE contacts x SET reports_to_id = ") != NULL);
    ck_assert(strstr(m, "x.id <> ALL ($3::bigint || $4::bigint[])") != NULL);
    ck_assert(strstr(m, "customer_id = CASE") == NULL);
    ck_assert(strstr(m, "mv_orders") == NULL);

    /* Lookups: a read's caller, the similarity threshold set first, the indexed expressions. */
    const char *d = merge_sql_duplicates(&s, &customers_resource);
    ck_assert(strstr(d, "split_part($2::text") != NULL && strstr(d, "token_version") == NULL);
    ck_assert(strstr(d, "set_config('pg_trgm.similarity_threshold', '0.6', true)") != NULL);
    ck_assert(strstr(d, "lower(btrim(c.email::text)) = lower(btrim(me.email::text))") != NULL);
    ck_assert(strstr(d, "phone_key(c.phone) = ANY ($4::text[])") != NULL);
    ck_assert(strstr(d, "lower(btrim(c.address ->> 'city')) = me._grp AND name_key(c.name) % me._name") != NULL);
    ck_assert_int_eq(count(d, " LIMIT 500)"), 3);
    d = merge_sql_duplicates(&s, &contacts_resource);
    ck_assert(strstr(d, "phone_key(c.phone)") != NULL && strstr(d, "phone_key(c.mobile)") != NULL);
    ck_assert(strstr(d, "JOIN customers cp ON cp.id = c.customer_id") != NULL);
    ck_assert(strstr(merge_sql_phones(&s, &contacts_resource), "x.phone, x.mobile") != NULL);
    merge_sql_free(&s);
    engine_free(e);
}
END_TEST

/* Resources added later: one owned that names a customer in a field, one that follows its customer. */
static const engine_field_t visit_fields[] = {
    {.v = {.name = "id", .type = VT_ID, .flags = VF_READONLY}},
    {.v = {.name = "external_id", .type = VT_STRING, .flags = VF_NULLABLE, .max_len = 200}},
    {.v = {.name = "customer_id", .type = VT_ID, .flags = VF_NULLABLE}, .ref = &customers_resource},
    {.v = {.name = "partner_id", .type = VT_ID, .flags = VF_NULLABLE}, .ref = &customers_resource},
    {.v = {.name = "owner_id", .type = VT_ID}},
    {.v = {.name = "team_id", .type = VT_ID, .flags = VF_NULLABLE}},
    {.v = {.name = "created_at", .type = VT_TIMESTAMP, .flags = VF_READONLY}},
    {.v = {.name = "updated_at", .type = VT_TIMESTAMP, .flags = VF_READONLY}},
    {.v = {.name = "version", .type = VT_INT, .flags = VF_READONLY}},
};
static const engine_sort_t sorts[] = {{.name = "created_at"}, {.name = NULL}};
static const engine_resource_t visits = {
    .name = "visits",
    .table = "visits",
    .singular = "visit",
    .fields = visit_fields,
    .nfields = ENGINE_COUNT(visit_fields),
    .scope = {ENGINE_OWNED},
    .sorts = sorts,
    .default_sort = "created_at",
};
static const engine_field_t note_fields[] = {
    {.v = {.name = "id", .type = VT_ID, .flags = VF_READONLY}},
    {.v = {.name = "external_id", .type = VT_STRING, .flags = VF_NULLABLE, .max_len = 200}},
    {.v = {.name = "customer_id", .type = VT_ID, .flags = VF_REQUIRED}},
    {.v = {.name = "text", .type = VT_STRING, .max_len = 200}},
    {.v = {.name = "created_at", .type = VT_TIMESTAMP, .flags = VF_READONLY}},
    {.v = {.name = "updated_at", .type = VT_TIMESTAMP, .flags = VF_READONLY}},
    {.v = {.name = "version", .type = VT_INT, .flags = VF_READONLY}},
};
static const engine_resource_t notes = {
    .name = "notes",
    .table = "notes",
    .singular = "note",
    .fields = note_fields,
    .nfields = ENGINE_COUNT(note_fields),
    .scope = {ENGINE_PARENT, &customers_resource, "customer_id", NULL, 0},
    .sorts = sorts,
    .default_sort = "created_at",
};

START_TEST(test_later_resources_are_re_pointed)
{
    const engine_resource_t *const resources[] = {
        &customers_resource, &orders_resource, &contacts_resource, &visits, &notes, NULL};
    char err[256] = "";
    engine_t *e = engine_build(resources, err, sizeof(err));
    ck_assert_msg(e != NULL, "engine_build: %s", err);
    merge_sql_t s;
    ck_assert_msg(merge_sql_build(&s, e, resources, err, sizeof(err)) == 0, "%s", err);
    const char *m = merge_sql_merge(&s, &customers_resource);
    /* Both references of a visit, in one update of each visit (a row is updated once per statement). */
    ck_assert_int_eq(count(m, "UPDATE visits x SET"), 1);
    ck_assert(strstr(m, "customer_id = CASE WHEN x.customer_id = ANY ($4::bigint[]) THEN $3::bigint") != NULL);
    ck_assert(strstr(m, "partner_id = CASE WHEN x.partner_id = ANY ($4::bigint[]) THEN $3::bigint") != NULL);
    ck_assert(strstr(m, "(x.customer_id = ANY ($4::bigint[]) OR x.partner_id = ANY ($4::bigint[]))") != NULL);
    /* A visit is judged by its own owner and team, a note by its customer's, each under its module. */
    ck_assert(strstr(m, "'{visits,update}', 'none'), caller.uid, caller.tid, t.owner_id, t.team_id)") != NULL);
    ck_assert(strstr(m, "'{notes,update}', 'none'), caller.uid, caller.tid, tp.owner_id, tp.team_id)") != NULL);
    ck_assert_int_eq(count(m, "UPDATE notes x SET customer_id"), 1);
    ck_assert(strstr(m, "'visits', (SELECT count(*) FROM mv_visits)") != NULL);
    ck_assert(strstr(m, "'notes', (SELECT count(*) FROM mv_notes)") != NULL);
    merge_sql_free(&s);
    engine_free(e);
}
END_TEST

START_TEST(test_choosable_fields)
{
    ck_assert(merge_field_choosable(&customers_resource, engine_field(&customers_resource, "email")));
    ck_assert(merge_field_choosable(&customers_resource, engine_field(&customers_resource, "attrs")));
    ck_assert(!merge_field_choosable(&customers_resource, engine_field(&customers_resource, "owner_id")));
    ck_assert(!merge_field_choosable(&customers_resource, engine_field(&customers_resource, "team_id")));
    ck_assert(!merge_field_choosable(&customers_resource, engine_field(&customers_resource, "external_id")));
    ck_assert(!merge_field_choosable(&customers_resource, engine_field(&customers_resource, "analytics")));
    ck_assert(!merge_field_choosable(&customers_resource, engine_field(&customers_resource, "version")));
    ck_assert(!merge_field_choosable(&contacts_resource, engine_field(&contacts_resource, "customer_id")));
    ck_assert(merge_field_choosable(&contacts_resource, engine_field(&contacts_resource, "reports_to_id")));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("api/merge_db");
    TCase *tc = tcase_create("merge_db");
    tcase_add_test(tc, test_built_for_the_resources_that_merge);
    tcase_add_test(tc, test_later_resources_are_re_pointed);
    tcase_add_test(tc, test_choosable_fields);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
