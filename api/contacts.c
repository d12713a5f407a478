/*
 * api/contacts.c - the people at a customer, with the customer's org chart
 * (reports_to_id) and one primary contact per customer.
 *
 * An engine description (api/engine.h): a contact's scope is its
 * customer's, and deleting the customer deletes its contacts.
 */
#include <stdio.h>
#include <string.h>

#include "api.h"
#include "resources.h"

static const char *const channels[] = {"email", "phone", "sms", "mail", "none", NULL};

static const engine_field_t fields[] = {
    {.v = {.name = "id", .type = VT_ID, .flags = VF_READONLY}},
    {.v = {.name = "external_id", .type = VT_STRING, .flags = VF_NULLABLE | VF_TRIM, .min_len = 1, .max_len = 200}},
    {.v = {.name = "customer_id", .type = VT_ID, .flags = VF_REQUIRED}, .ef = EF_FILTER | EF_GROUP},
    {.v = {.name = "first_name", .type = VT_STRING, .flags = VF_NULLABLE | VF_TRIM, .min_len = 1, .max_len = 100},
     .ef = EF_SEARCH},
    {.v = {.name = "last_name", .type = VT_STRING, .flags = VF_NULLABLE | VF_TRIM, .min_len = 1, .max_len = 100},
     .ef = EF_SEARCH | EF_SORT},
    {.v = {.name = "title", .type = VT_STRING, .flags = VF_NULLABLE | VF_TRIM, .max_len = 100}},
    {.v = {.name = "department", .type = VT_STRING, .flags = VF_NULLABLE | VF_TRIM, .max_len = 100}, .ef = EF_GROUP},
    {.v = {.name = "reports_to_id", .type = VT_ID, .flags = VF_NULLABLE}, .ref = &contacts_resource},
    {.v = {.name = "email", .type = VT_EMAIL, .flags = VF_NULLABLE | VF_TRIM, .max_len = 254},
     .ef = EF_FILTER | EF_SEARCH,
     .sql_type = "citext"},
    {.v = {.name = "phone", .type = VT_PHONE, .flags = VF_NULLABLE | VF_TRIM, .max_len = 32}, .ef = EF_SEARCH},
    {.v = {.name = "mobile", .type = VT_PHONE, .flags = VF_NULLABLE | VF_TRIM, .max_len = 32}, .ef = EF_SEARCH},
    {.v = {.name = "is_primary", .type = VT_BOOL}, .ef = EF_ONE_PER_PARENT | EF_GROUP, .def = "false"},
    {.v = {.name = "birthday", .type = VT_DATE, .flags = VF_NULLABLE}},
    {.v = {.name = "preferred_channel", .type = VT_ENUM, .flags = VF_NULLABLE, .enum_values = channels},
     .ef = EF_GROUP},
    {.v = {.name = "do_not_contact", .type = VT_BOOL}, .ef = EF_GROUP, .def = "false"},
    {.v = {.name = "notes", .type = VT_TEXT, .flags = VF_NULLABLE, .max_len = 10000}},
    {.v = {.name = "tags", .type = VT_STRING_ARRAY, .max_len = 50, .item_min_len = 1, .item_max_len = 50},
     .ef = EF_FILTER,
     .def = "'{}'"},
    {.v = {.name = "attrs", .type = VT_JSON_OBJECT, .max_bytes = 16384}, .ef = EF_NO_EXPORT, .def = "'{}'"},
    {.v = {.name = "created_at", .type = VT_TIMESTAMP, .flags = VF_READONLY}, .ef = EF_SORT | EF_GROUP},
    {.v = {.name = "updated_at", .type = VT_TIMESTAMP, .flags = VF_READONLY}, .ef = EF_SORT | EF_SINCE | EF_GROUP},
    {.v = {.name = "version", .type = VT_INT, .flags = VF_READONLY}},
};

/* A contact has a name: a first or a last one (on create and replace; patches are judged in the statement). */
static void check_contact(json_t *c, unsigned mode, const char *prefix, json_t *errors)
{
    if ((mode & 0xff) == VALIDATE_PATCH)
        return;
    json_t *first = json_object_get(c, "first_name"), *last = json_object_get(c, "last_name");
    if ((first == NULL || json_is_null(first)) && (last == NULL || json_is_null(last))) {
        char field[64];
        snprintf(field, sizeof(field), "%s%slast_name", prefix, *prefix ? "." : "");
        api_error_add(errors, field, "required", "give a first_name or a last_name");
    }
}

static const engine_check_t checks[] = {
    {"last_name", "({i}.first_name IS NOT NULL OR {i}.last_name IS NOT NULL)", "give a first_name or a last_name",
     NULL},
    /* The manager is a live contact of the same customer... */
    {"reports_to_id",
     "({i}.reports_to_id IS NULL OR EXISTS (SELECT 1 FROM contacts rt WHERE rt.id = {i}.reports_to_id"
     " AND rt.customer_id = {parent} AND rt.deleted_at IS NULL))",
     "must name another contact of the same customer", NULL},
    /* ...and the chain of managers above never comes back to this contact. */
    {"reports_to_id",
     "({id} IS NULL OR {i}.reports_to_id IS NULL OR NOT EXISTS (WITH RECURSIVE up(id, depth) AS ("
     "SELECT {i}.reports_to_id, 1 UNION ALL SELECT rt.reports_to_id, up.depth + 1 FROM contacts rt JOIN up"
     " ON rt.id = up.id WHERE rt.reports_to_id IS NOT NULL AND up.depth < 1000) SELECT 1 FROM up WHERE up.id = {id}))",
     "would make the contact report to itself", NULL},
    /* What one statement cannot see (a bulk linking its own items, two changes at once): checked at commit. */
    {"reports_to_id", NULL, "must name another live contact of the same customer", "contacts_reports_to_same_customer"},
    {"reports_to_id", NULL, "would make a contact report to itself", "contacts_reports_to_cycle"},
    {"customer_id", NULL, "other contacts report to this one: point them elsewhere first",
     "contacts_reports_left_behind"},
};

static const engine_sort_t sorts[] = {
    {.name = "last_name"}, {.name = "created_at"}, {.name = "updated_at"}, {.name = NULL}};

/* Duplicates: the same e-mail, phone or mobile, or a similar name at the same customer (api/merge.c). */
static const char *const phones[] = {"phone", "mobile", NULL};
static const engine_dedup_t dedup = {"email", phones, "concat_ws(' ', {t}.first_name, {t}.last_name)",
                                     "{t}.customer_id"};

const engine_resource_t contacts_resource = {
    .name = "contacts",
    .table = "contacts",
    .singular = "contact",
    .fields = fields,
    .nfields = ENGINE_COUNT(fields),
    .scope = {ENGINE_PARENT, &customers_resource, "customer_id", NULL, 1},
    .sorts = sorts,
    .default_sort = "last_name",
    .checks = checks,
    .nchecks = ENGINE_COUNT(checks),
    .item_check = check_contact,
    .bulk_max = 5000,
    .dedup = &dedup,
};
