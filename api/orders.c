/*
 * api/orders.c - /v1/orders: the facts the analytics worker reads.
 *
 * The same conventions as customers (api/crud.c): scoped single-statement
 * writes, ETags, upserts by external id, all-or-nothing bulk, cursor lists.
 * An order names its customer by customer_id or customer_external_id; its
 * lines, when given, must add up exactly to its total (decimal arithmetic).
 */
#include <stdio.h>
#include <string.h>

#include "common/decimal.h"
#include "crud.h"
#include "orders.h"
#include "orders_db.h"
#include "validate.h"

#define BULK_MAX_ITEMS 5000

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

const validate_field_t orders_fields[] = {
    {.name = "id", .type = VT_ID, .flags = VF_READONLY},
    {.name = "external_id", .type = VT_STRING, .flags = VF_NULLABLE | VF_TRIM, .min_len = 1, .max_len = 200},
    {.name = "customer_id", .type = VT_ID},
    {.name = "customer_external_id", .type = VT_STRING, .flags = VF_TRIM, .min_len = 1, .max_len = 200},
    {.name = "ordered_at", .type = VT_TIMESTAMP, .flags = VF_REQUIRED},
    {.name = "status", .type = VT_ENUM, .flags = VF_REQUIRED, .enum_values = statuses},
    {.name = "currency", .type = VT_CURRENCY, .flags = VF_REQUIRED},
    {.name = "total", .type = VT_DECIMAL, .flags = VF_REQUIRED, .int_digits = 12, .scale = 2},
    {.name = "lines", .type = VT_ARRAY, .max_len = 1000, .fields = line_item, .nfields = 1},
    {.name = "created_at", .type = VT_TIMESTAMP, .flags = VF_READONLY},
    {.name = "updated_at", .type = VT_TIMESTAMP, .flags = VF_READONLY},
    {.name = "version", .type = VT_INT, .flags = VF_READONLY},
};
const size_t orders_nfields = VALIDATE_COUNT(orders_fields);

static const char *const list_fields[] = {"id",    "external_id", "customer_id", "ordered_at", "status",  "currency",
                                          "total", "lines",       "created_at",  "updated_at", "version", NULL};

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

/* Cross-field rules: exactly one customer reference; lines add up to the total. Fields found bad are not judged again.
 */
static void check_order(json_t *o, const char *prefix, json_t *errors)
{
    char field[64];
    json_t *cid = json_object_get(o, "customer_id"), *cext = json_object_get(o, "customer_external_id");
    /* A reference that is itself invalid was reported by the field rules; don't pile on. */
    int cid_bad = cid != NULL && validate_id_value(cid, NULL) != 0;
    int cext_bad =
        cext != NULL && (!json_is_string(cext) || json_string_length(cext) == 0 || json_string_length(cext) > 200);
    if (!cid_bad && !cext_bad && (cid == NULL) == (cext == NULL)) {
        snprintf(field, sizeof(field), "%s%scustomer_id", prefix, *prefix ? "." : "");
        api_error_add(errors, field, cid == NULL ? "required" : "invalid_value",
                      "give exactly one of customer_id and customer_external_id");
    }
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

static int check_input(api_req_t *ar, json_t *body, unsigned mode)
{
    /* Field rules and cross-field rules together: every error in one answer. */
    json_t *errors = json_array();
    validate_object(body, orders_fields, orders_nfields, mode, "", errors);
    if (json_is_object(body)) {
        if (mode == VALIDATE_PATCH && json_object_get(body, "customer_external_id") != NULL)
            api_error_add(errors, "customer_external_id", "read_only", "use customer_id to move an order");
        if (mode != VALIDATE_PATCH)
            check_order(body, "", errors);
    }
    if (json_array_size(errors) > 0) {
        api_send_invalid(ar, 422, "The order has invalid fields.", errors);
        return -1;
    }
    json_decref(errors);
    validate_trim(body, orders_fields, orders_nfields);
    return 0;
}

/* Takes customer_external_id out of the body (it is not a column) and returns it, pool-owned. */
static const char *take_customer_ref(api_req_t *ar, json_t *body)
{
    json_t *v = json_object_get(body, "customer_external_id");
    if (!json_is_string(v))
        return NULL;
    const char *s = h2o_strdup(&ar->req->pool, json_string_value(v), SIZE_MAX).base;
    json_object_del(body, "customer_external_id");
    return s;
}

static const crud_resource_t resource = {"/v1/orders", "Another order already has this external_id."};

int orders_get(api_req_t *ar)
{
    return orders_db_get(ar, api_param_i64(ar, "id"), crud_on_read, NULL);
}

int orders_create(api_req_t *ar)
{
    if (check_input(ar, ar->body, VALIDATE_CREATE) != 0)
        return 0;
    const char *cext = take_customer_ref(ar, ar->body);
    return orders_db_create(ar, crud_dump(ar, ar->body), cext, crud_on_write, (void *)&resource);
}

int orders_patch(api_req_t *ar)
{
    int64_t version;
    char vbuf[24];
    if (crud_if_match(ar, &version) != 0 || check_input(ar, ar->body, VALIDATE_PATCH) != 0)
        return 0;
    return orders_db_patch(ar, api_param_i64(ar, "id"), crud_dump(ar, ar->body), crud_version_param(version, vbuf),
                           crud_on_write, (void *)&resource);
}

int orders_delete(api_req_t *ar)
{
    int64_t version;
    char vbuf[24];
    if (crud_if_match(ar, &version) != 0)
        return 0;
    return orders_db_delete(ar, api_param_i64(ar, "id"), crud_version_param(version, vbuf), crud_on_write,
                            (void *)&resource);
}

static int send_put(api_req_t *ar, crud_upsert_t *u, crud_done_fn done)
{
    return orders_db_put_external(ar, u->external_id, u->reference, u->input, u->if_match, done, u);
}

int orders_put_external(api_req_t *ar)
{
    int64_t version;
    if (crud_if_match(ar, &version) != 0 || check_input(ar, ar->body, VALIDATE_REPLACE) != 0)
        return 0;
    const char *ext = api_param_str(ar, "external_id");
    if (crud_check_external_id(ar, ext, ar->body, "order") != 0)
        return 0;
    crud_upsert_t *u = h2o_mem_alloc_pool(&ar->req->pool, sizeof(*u));
    char *vbuf = h2o_mem_alloc_pool(&ar->req->pool, 24);
    const char *reference = take_customer_ref(ar, ar->body);
    *u = (crud_upsert_t){
        &resource, send_put, ext, reference, crud_dump(ar, ar->body), crud_version_param(version, vbuf), 0};
    return send_put(ar, u, crud_on_upsert);
}

static void on_bulk(api_req_t *ar, const PGresult *res, int err, void *arg)
{
    crud_send_bulk(ar, res, err, "orders");
}

/* Runs where the body was parsed (off the loop when it is large): checks every item, then the text to store. */
static int prepare_bulk(json_t *body, api_prepared_t *out)
{
    return crud_prepare_bulk(body, BULK_MAX_ITEMS, orders_fields, orders_nfields, check_order, "orders", out);
}

const api_bulk_t orders_bulk_route = {"orders", prepare_bulk};

/* The pipeline has checked the items already (prepare_bulk): ar->body_text holds them. */
int orders_bulk(api_req_t *ar)
{
    return orders_db_bulk(ar, ar->body_text, on_bulk, NULL);
}

static void on_list(api_req_t *ar, const PGresult *res, int err, void *arg)
{
    if (crud_check_result(ar, res, err) == 0)
        crud_send_list(ar, res, arg);
}

int orders_list(api_req_t *ar)
{
    static const char *const allowed[] = {"limit",          "cursor",        "sort",   "fields",
                                          "count",          "customer_id",   "status", "ordered_after",
                                          "ordered_before", "updated_since", NULL};
    crud_query_t q;
    orders_filter_t f = {0};
    char *cust = h2o_mem_alloc_pool(&ar->req->pool, 24);
    if (crud_parse_query(ar, allowed, &q) != 0)
        return 0;
    crud_list_t *list = h2o_mem_alloc_pool(&ar->req->pool, sizeof(*list));
    if (crud_parse_list(ar, &q, orders_db_sorts, 0, list_fields, list) != 0 ||
        crud_param_id(ar, &q, "customer_id", cust, &f.customer_id) != 0 ||
        crud_param_enum(ar, &q, "status", statuses, &f.status) != 0 ||
        crud_param_time(ar, &q, "ordered_after", &f.ordered_after) != 0 ||
        crud_param_time(ar, &q, "ordered_before", &f.ordered_before) != 0 ||
        crud_param_time(ar, &q, "updated_since", &f.updated_since) != 0)
        return 0;
    return orders_db_list(ar, &f, list, on_list, list);
}
