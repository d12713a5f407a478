/*
 * api/custom_fields.c - custom fields: an administrator's definitions of
 * the keys of a resource's attrs, read by every user, checked by every
 * write of that resource (schema/0023: custom_fields_violation() in each
 * write statement, 422 naming "attrs.<key>").
 *
 * An engine description (api/engine.h) of a global resource: no owner,
 * administrators write, everyone reads (public_read).
 */
#include <stddef.h>

#include "api.h"
#include "resources.h"

/* The resources whose attrs may be defined: every engine resource with an attrs field (tests/unit/api/engine_test). */
const char *const custom_field_resources[] = {"customers", "contacts", NULL};
static const char *const types[] = {"text", "number",     "decimal", "date",  "datetime", "boolean",
                                    "enum", "multi_enum", "url",     "email", "phone",    NULL};

static const engine_field_t fields[] = {
    {.v = {.name = "id", .type = VT_ID, .flags = VF_READONLY}},
    {.v = {.name = "external_id", .type = VT_STRING, .flags = VF_NULLABLE | VF_TRIM, .min_len = 1, .max_len = 200}},
    {.v = {.name = "resource", .type = VT_ENUM, .flags = VF_REQUIRED, .enum_values = custom_field_resources},
     .ef = EF_FILTER | EF_CREATE_ONLY | EF_GROUP},
    {.v = {.name = "key", .type = VT_STRING, .flags = VF_REQUIRED, .min_len = 1, .max_len = 40}, .ef = EF_CREATE_ONLY},
    {.v = {.name = "label", .type = VT_STRING, .flags = VF_REQUIRED | VF_TRIM, .min_len = 1, .max_len = 100}},
    {.v = {.name = "type", .type = VT_ENUM, .flags = VF_REQUIRED, .enum_values = types}, .ef = EF_FILTER | EF_GROUP},
    {.v = {.name = "required", .type = VT_BOOL}, .def = "false"},
    {.v = {.name = "options",
           .type = VT_STRING_ARRAY,
           .flags = VF_NULLABLE,
           .max_len = 200,
           .item_min_len = 1,
           .item_max_len = 100}},
    {.v = {.name = "max_length", .type = VT_INT, .flags = VF_NULLABLE | VF_RANGE, .min_value = 1, .max_value = 100000}},
    {.v = {.name = "min", .type = VT_STRING, .flags = VF_NULLABLE | VF_TRIM, .min_len = 1, .max_len = 40}},
    {.v = {.name = "max", .type = VT_STRING, .flags = VF_NULLABLE | VF_TRIM, .min_len = 1, .max_len = 40}},
    {.v = {.name = "description", .type = VT_TEXT, .flags = VF_NULLABLE | VF_TRIM, .max_len = 1000}},
    {.v = {.name = "position", .type = VT_INT, .flags = VF_RANGE, .min_value = -1000000, .max_value = 1000000},
     .ef = EF_SORT,
     .def = "0"},
    {.v = {.name = "created_at", .type = VT_TIMESTAMP, .flags = VF_READONLY}, .ef = EF_SORT},
    {.v = {.name = "updated_at", .type = VT_TIMESTAMP, .flags = VF_READONLY}, .ef = EF_SORT | EF_SINCE},
    {.v = {.name = "version", .type = VT_INT, .flags = VF_READONLY}},
};

/* A bound as the field's type reads it (schema/0023's custom_field_num, _date, _time). */
#define BOUND(b)                                                                                                       \
    "CASE {i}.type WHEN 'date' THEN custom_field_date({i}." b ") IS NOT NULL WHEN 'datetime' THEN"                     \
    " custom_field_time({i}." b ") IS NOT NULL ELSE custom_field_num({i}." b ") IS NOT NULL END"

static const engine_check_t checks[] = {
    {"key", "{i}.key ~ '^[a-z][a-z0-9_]{0,39}$'",
     "must be a lowercase letter, then at most 39 lowercase letters, digits or underscores", NULL},
    {"key",
     "NOT EXISTS (SELECT 1 FROM custom_fields x WHERE x.resource = {i}.resource AND x.key = {i}.key"
     " AND x.deleted_at IS NULL AND x.id IS DISTINCT FROM {id})",
     "is already defined for this resource", NULL},
    {"options", "({i}.type IN ('enum', 'multi_enum')) = (coalesce(cardinality({i}.options), 0) > 0)",
     "is required for enum and multi_enum fields, and only for them", NULL},
    {"options",
     "{i}.options IS NULL OR cardinality({i}.options) = (SELECT count(DISTINCT o) FROM unnest({i}.options) o)",
     "names an option twice", NULL},
    {"min", "({i}.min IS NULL AND {i}.max IS NULL) OR {i}.type IN ('number', 'decimal', 'date', 'datetime')",
     "applies to number, decimal, date and datetime fields only", NULL},
    {"min", "{i}.min IS NULL OR " BOUND("min"), "must be written as a value of the field's type", NULL},
    {"max", "{i}.max IS NULL OR " BOUND("max"), "must be written as a value of the field's type", NULL},
    {"max",
     "{i}.min IS NULL OR {i}.max IS NULL OR CASE {i}.type WHEN 'date' THEN custom_field_date({i}.min) <="
     " custom_field_date({i}.max) WHEN 'datetime' THEN custom_field_time({i}.min) <= custom_field_time({i}.max)"
     " ELSE custom_field_num({i}.min) <= custom_field_num({i}.max) END",
     "must not be below min", NULL},
    {"max_length", "{i}.max_length IS NULL OR {i}.type IN ('text', 'enum', 'url', 'email', 'phone')",
     "applies to text, enum, url, email and phone fields only", NULL},
};

static const engine_sort_t sorts[] = {
    {.name = "position"}, {.name = "created_at"}, {.name = "updated_at"}, {.name = NULL}};

const engine_resource_t custom_fields_resource = {
    .name = "custom_fields",
    .table = "custom_fields",
    .singular = "custom field",
    .fields = fields,
    .nfields = ENGINE_COUNT(fields),
    .scope = {ENGINE_GLOBAL},
    .sorts = sorts,
    .default_sort = "position",
    .checks = checks,
    .nchecks = ENGINE_COUNT(checks),
    .bulk_max = 500,
    .public_read = 1,
    .path = "/v1/custom-fields",
};
