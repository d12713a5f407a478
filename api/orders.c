/*
 * api/orders.c - the order: the facts the analytics worker reads.
 *
 * An engine description (api/engine.h). An order's scope is its
 * customer's; it names the customer by customer_id or, from an ERP, by
 * customer_external_id. Its lines, when given, must add up exactly to its
 * total (decimal arithmetic here, and again in the statement for patches).
 */
#include <stdio.h>
#include <string.h>

#include "api.h"
#include "common/decimal.h"
#include "resources.h"

static const char *const statuses[] = {"pending", "completed", "cancelled", "refunded", NULL};

static const validate_field_t line_fields[] = {
    {.name = "sku", .type = VT_STRING, .flags = VF_REQUIRED | VF_TRIM, .min_len = 1, .max_len = 64},
    {.name = "name", .type = VT_STRING, .flags = VF_NULLABLE | VF_TRIM, .max_len = 200},
    {.name = "quantity", .type = VT_INT, .flags = VF_REQUIRED | VF_RANGE, .min_value = 1, .max_value = 1000000},
    {.name = "unit_price", .type = VT_DECIMAL, .flags = VF_REQUIRED, .int_digits = 10, .scale = 2},
};
static const validate_field_t line_item[] = {
    {.name = "line", .type = VT_OBJECT, VALIDATE_NESTED(line_fields)},
};

static const engine_field_t fields[] = {
    {.v = {.name = "id", .type = VT_ID, .flags = VF_READONLY}},
    {.v = {.name = "external_id", .type = VT_STRING, .flags = VF_NULLABLE | VF_TRIM, .min_len = 1, .max_len = 200}},
    {.v = {.name = "customer_id", .type = VT_ID}, .ef = EF_FILTER | EF_GROUP},
    {.v = {.name = "customer_external_id", .type = VT_STRING, .flags = VF_TRIM, .min_len = 1, .max_len = 200},
     .ef = EF_INPUT_ONLY},
    {.v = {.name = "ordered_at", .type = VT_TIMESTAMP, .flags = VF_REQUIRED}, .ef = EF_SORT | EF_BETWEEN | EF_GROUP},
    {.v = {.name = "status", .type = VT_ENUM, .flags = VF_REQUIRED, .enum_values = statuses},
     .ef = EF_FILTER | EF_GROUP},
    {.v = {.name = "currency", .type = VT_CURRENCY, .flags = VF_REQUIRED}, .ef = EF_GROUP},
    {.v = {.name = "total", .type = VT_DECIMAL, .flags = VF_REQUIRED, .int_digits = 12, .scale = 2}, .ef = EF_METRIC},
    {.v = {.name = "lines", .type = VT_ARRAY, .max_len = 1000, .fields = line_item, .nfields = 1},
     .ef = EF_NO_EXPORT,
     .def = "'[]'"},
    {.v = {.name = "created_at", .type = VT_TIMESTAMP, .flags = VF_READONLY}, .ef = EF_SORT | EF_GROUP},
    {.v = {.name = "updated_at", .type = VT_TIMESTAMP, .flags = VF_READONLY}, .ef = EF_SORT | EF_SINCE | EF_GROUP},
    {.v = {.name = "version", .type = VT_INT, .flags = VF_READONLY}},
};

/* 1 when errors already name the field `name` (or something inside it) of the item at prefix. */
static int already_reported(json_t *errors, const char *prefix, const char *name)
{
    char want[96];
    int n = snprintf(want, sizeof(want), "%s%s%s", prefix, *prefix ? "." : "", name);
    json_t *e;
    size_t i;
    json_array_foreach(errors, i, e)
    {
        const char *f = json_string_value(json_object_get(e, "field"));
        if (f != NULL && strncmp(f, want, (size_t)n) == 0 && (f[n] == '\0' || f[n] == '[' || f[n] == '.'))
            return 1;
    }
    return 0;
}

/* Cross-field rule: the lines, when given, add up exactly to the total. Fields found bad are not judged again. */
static void check_order(json_t *o, unsigned mode, const char *prefix, json_t *errors)
{
    char field[64];
    if ((mode & 0xff) == VALIDATE_PATCH)
        return; /* judged by the statement on the record as it will be stored */
    json_t *lines = json_object_get(o, "lines"), *total = json_object_get(o, "total"), *line;
    if (!json_is_array(lines) || json_array_size(lines) == 0 || !json_is_string(total) ||
        already_reported(errors, prefix, "lines") || already_reported(errors, prefix, "total"))
        return;
    dec_t sum = {0}, t;
    size_t i;
    json_array_foreach(lines, i, line)
    {
        dec_t price, amount;
        json_t *q = json_object_get(line, "quantity"), *p = json_object_get(line, "unit_price");
        if (!json_is_integer(q) || !json_is_string(p) ||
            dec_parse(json_string_value(p), json_string_length(p), 2, &price) != 0 ||
            dec_mul_int(price, json_integer_value(q), &amount) != 0 || dec_add(sum, amount, &sum) != 0)
            return; /* already reported by the field checks */
    }
    if (dec_parse(json_string_value(total), json_string_length(total), 2, &t) == 0 && dec_cmp(sum, t) != 0) {
        char msg[96], s[DEC_STR_MAX];
        dec_format(sum, 2, s, sizeof(s));
        snprintf(msg, sizeof(msg), "must equal the sum of the lines (%s)", s);
        snprintf(field, sizeof(field), "%s%stotal", prefix, *prefix ? "." : "");
        api_error_add(errors, field, "invalid_value", msg);
    }
}

static const engine_check_t checks[] = {
    {"total",
     "(jsonb_array_length(coalesce({i}.lines, '[]')) = 0 OR (SELECT sum((l ->> 'quantity')::numeric"
     " * (l ->> 'unit_price')::numeric) FROM jsonb_array_elements({i}.lines) l) = {i}.total)",
     "must equal the sum of the lines", NULL},
};

static const engine_sort_t sorts[] = {
    {.name = "ordered_at"}, {.name = "created_at"}, {.name = "updated_at"}, {.name = NULL}};

const engine_resource_t orders_resource = {
    .name = "orders",
    .table = "orders",
    .singular = "order",
    .fields = fields,
    .nfields = ENGINE_COUNT(fields),
    .scope = {ENGINE_PARENT, &customers_resource, "customer_id", "customer_external_id", 0},
    .sorts = sorts,
    .default_sort = "ordered_at",
    .checks = checks,
    .nchecks = ENGINE_COUNT(checks),
    .item_check = check_order,
    .bulk_max = 5000,
};
