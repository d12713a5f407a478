/*
 * api/customers.c - /v1/customers: CRUD, upsert by external id, bulk, lists.
 *
 * Handlers authenticate, validate the input against the field table below
 * (every error at once), and hand one scoped statement to customers_db.c;
 * the shared conventions of api/crud.c turn its result into the answer.
 * Documents are built by PostgreSQL (customer_json) and passed through.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crud.h"
#include "customers.h"
#include "customers_db.h"
#include "validate.h"

#define BULK_MAX_ITEMS 5000

static const char *const kinds[] = {"person", "company", NULL};
static const char *const statuses[] = {"prospect", "customer", "partner", "inactive", NULL};

static const validate_field_t address_fields[] = {
    {.name = "line1", .type = VT_STRING, .flags = VF_NULLABLE | VF_TRIM, .max_len = 200},
    {.name = "line2", .type = VT_STRING, .flags = VF_NULLABLE | VF_TRIM, .max_len = 200},
    {.name = "city", .type = VT_STRING, .flags = VF_NULLABLE | VF_TRIM, .max_len = 100},
    {.name = "region", .type = VT_STRING, .flags = VF_NULLABLE | VF_TRIM, .max_len = 100},
    {.name = "postal_code", .type = VT_STRING, .flags = VF_NULLABLE | VF_TRIM, .max_len = 20},
    {.name = "country", .type = VT_COUNTRY, .flags = VF_NULLABLE},
};

const validate_field_t customers_fields[] = {
    {.name = "id", .type = VT_ID, .flags = VF_READONLY},
    {.name = "external_id", .type = VT_STRING, .flags = VF_NULLABLE | VF_TRIM, .min_len = 1, .max_len = 200},
    {.name = "kind", .type = VT_ENUM, .flags = VF_REQUIRED, .enum_values = kinds},
    {.name = "name", .type = VT_STRING, .flags = VF_REQUIRED | VF_TRIM, .min_len = 1, .max_len = 200},
    {.name = "email", .type = VT_EMAIL, .flags = VF_NULLABLE | VF_TRIM, .max_len = 254},
    {.name = "phone", .type = VT_PHONE, .flags = VF_NULLABLE | VF_TRIM, .max_len = 32},
    {.name = "address", .type = VT_OBJECT, .flags = VF_NULLABLE, VALIDATE_NESTED(address_fields)},
    {.name = "industry", .type = VT_STRING, .flags = VF_NULLABLE | VF_TRIM, .max_len = 100},
    {.name = "status", .type = VT_ENUM, .enum_values = statuses},
    {.name = "owner_id", .type = VT_ID},
    {.name = "team_id", .type = VT_ID, .flags = VF_NULLABLE},
    {.name = "tags", .type = VT_STRING_ARRAY, .max_len = 50, .item_min_len = 1, .item_max_len = 50},
    {.name = "attrs", .type = VT_JSON_OBJECT, .max_bytes = 16384},
    {.name = "credit_limit", .type = VT_DECIMAL, .flags = VF_NULLABLE, .int_digits = 16, .scale = 2},
    {.name = "created_at", .type = VT_TIMESTAMP, .flags = VF_READONLY},
    {.name = "updated_at", .type = VT_TIMESTAMP, .flags = VF_READONLY},
    {.name = "version", .type = VT_INT, .flags = VF_READONLY},
    {.name = "analytics", .type = VT_JSON_OBJECT, .flags = VF_READONLY, .max_bytes = 65536},
};
const size_t customers_nfields = VALIDATE_COUNT(customers_fields);

static const char *const list_fields[] = {"id",      "external_id",  "kind",       "name",       "email",   "phone",
                                          "address", "industry",     "status",     "owner_id",   "team_id", "tags",
                                          "attrs",   "credit_limit", "created_at", "updated_at", "version", "analytics",
                                          NULL};

static int check_input(api_req_t *ar, json_t *body, unsigned mode)
{
    return crud_check_body(ar, body, customers_fields, customers_nfields, mode, "customer");
}

#define dump crud_dump

/* --- one record --------------------------------------------------------------- */

static const crud_resource_t resource = {"/v1/customers", "Another customer already has this external_id."};

int customers_get(api_req_t *ar)
{
    return customers_db_get(ar, api_param_i64(ar, "id"), crud_on_read, NULL);
}

int customers_create(api_req_t *ar)
{
    if (check_input(ar, ar->body, VALIDATE_CREATE) != 0)
        return 0;
    return customers_db_create(ar, dump(ar, ar->body), crud_on_write, (void *)&resource);
}

int customers_patch(api_req_t *ar)
{
    int64_t version;
    char vbuf[24];
    if (crud_if_match(ar, &version) != 0 || check_input(ar, ar->body, VALIDATE_PATCH) != 0)
        return 0;
    return customers_db_patch(ar, api_param_i64(ar, "id"), dump(ar, ar->body), crud_version_param(version, vbuf),
                              crud_on_write, (void *)&resource);
}

int customers_delete(api_req_t *ar)
{
    int64_t version;
    char vbuf[24];
    if (crud_if_match(ar, &version) != 0)
        return 0;
    return customers_db_delete(ar, api_param_i64(ar, "id"), crud_version_param(version, vbuf), crud_on_write,
                               (void *)&resource);
}

static int send_put(api_req_t *ar, crud_upsert_t *u, crud_done_fn done)
{
    return customers_db_put_external(ar, u->external_id, u->input, u->if_match, done, u);
}

int customers_put_external(api_req_t *ar)
{
    int64_t version;
    if (crud_if_match(ar, &version) != 0 || check_input(ar, ar->body, VALIDATE_REPLACE) != 0)
        return 0;
    const char *ext = api_param_str(ar, "external_id");
    if (crud_check_external_id(ar, ext, ar->body, "customer") != 0)
        return 0;
    crud_upsert_t *u = h2o_mem_alloc_pool(&ar->req->pool, sizeof(*u));
    char *vbuf = h2o_mem_alloc_pool(&ar->req->pool, 24);
    *u = (crud_upsert_t){&resource, send_put, ext, NULL, dump(ar, ar->body), crud_version_param(version, vbuf), 0};
    return send_put(ar, u, crud_on_upsert);
}

/* --- bulk ----------------------------------------------------------------------- */

static void on_bulk(api_req_t *ar, const PGresult *res, int err, void *arg)
{
    crud_send_bulk(ar, res, err, "customers");
}

/* Runs where the body was parsed (off the loop when it is large): checks every item, then the text to store. */
static int prepare_bulk(json_t *body, api_prepared_t *out)
{
    return crud_prepare_bulk(body, BULK_MAX_ITEMS, customers_fields, customers_nfields, NULL, "customers", out);
}

const api_bulk_t customers_bulk_route = {"customers", prepare_bulk};

/* The pipeline has checked the items already (prepare_bulk): ar->body_text holds them. */
int customers_bulk(api_req_t *ar)
{
    return customers_db_bulk(ar, ar->body_text, on_bulk, NULL);
}

/* --- lists ------------------------------------------------------------------------ */

static void on_list(api_req_t *ar, const PGresult *res, int err, void *arg)
{
    if (crud_check_result(ar, res, err) == 0)
        crud_send_list(ar, res, arg);
}

/* "ab%c" -> "%ab\%c%": the search term matched literally anywhere in name or email. */
static const char *like_pattern(api_req_t *ar, const char *q)
{
    size_t len = strlen(q);
    char *out = h2o_mem_alloc_pool(&ar->req->pool, 2 * len + 3), *o = out;
    *o++ = '%';
    for (size_t i = 0; i < len; i++) {
        if (q[i] == '%' || q[i] == '_' || q[i] == '\\')
            *o++ = '\\';
        *o++ = q[i];
    }
    *o++ = '%';
    *o = '\0';
    return out;
}

/*
 * p_alive_below: a plain decimal from 0 to 1 ("0.25", ".5", "1"); no sign,
 * exponent or spaces. Answers 400 naming the parameter when it is not one.
 */
static int param_probability(api_req_t *ar, const crud_query_t *q, const char *name, const char **out)
{
    const char *v = crud_query_get(q, name);
    *out = NULL;
    if (v == NULL)
        return 0;
    size_t len = strlen(v), i = 0, digits = 0;
    while (i < len && v[i] >= '0' && v[i] <= '9')
        i++, digits++;
    if (i < len && v[i] == '.')
        for (i++; i < len && v[i] >= '0' && v[i] <= '9'; i++)
            digits++;
    const char *code = NULL;
    if (len == 0 || len > 32 || i != len || digits == 0 || v[len - 1] == '.')
        code = "invalid_format";
    else if (strtod(v, NULL) > 1.0)
        code = "out_of_range";
    if (code != NULL) {
        json_t *errors = json_array();
        api_error_add(errors, name, code, "must be a number from 0 to 1, such as 0.25");
        api_send_invalid(ar, 400, "The query string has invalid parameters.", errors);
        return -1;
    }
    *out = v;
    return 0;
}

/*
 * A cursor of sort=clv carries the CLV it stopped at as a decimal, or ""
 * when it stopped among the customers without one (see customers_db.c).
 * Cursors are not signed, so check that before it reaches a cast in SQL.
 */
static int check_clv_cursor(api_req_t *ar, const crud_list_t *list)
{
    int clv = -1;
    for (int i = 0; customers_db_sorts[i] != NULL; i++)
        if (strcmp(customers_db_sorts[i], "clv") == 0)
            clv = i;
    const char *k = list->cursor_key;
    if (list->sort / 2 != clv || k == NULL || k[0] == '\0')
        return 0;
    size_t len = strlen(k), i = k[0] == '-', digits = 0;
    for (; i < len && k[i] >= '0' && k[i] <= '9'; i++)
        digits++;
    if (i < len && k[i] == '.')
        for (i++; i < len && k[i] >= '0' && k[i] <= '9'; i++)
            digits++;
    if (digits > 0 && i == len && len <= 40)
        return 0;
    json_t *errors = json_array();
    api_error_add(errors, "cursor", "invalid_value", "is not a cursor this endpoint returned");
    api_send_invalid(ar, 400, "The query string has invalid parameters.", errors);
    return -1;
}

int customers_list(api_req_t *ar)
{
    static const char *const allowed[] = {
        "limit",          "cursor",  "sort",      "fields", "count",         "q",
        "owner_id",       "team_id", "status",    "tag",    "updated_since", "created_after",
        "created_before", "segment", "lifecycle", "tier",   "p_alive_below", NULL};
    static const char *const segments[] = {
        "champions",      "loyal_customers", "potential_loyalists", "new_customers", "promising", "need_attention",
        "about_to_sleep", "at_risk",         "cant_lose_them",      "hibernating",   "prospect",  NULL};
    static const char *const lifecycles[] = {"prospect", "new", "active", "at_risk", "churned", NULL};
    static const char *const tiers[] = {"A", "B", "C", NULL};
    crud_query_t q;
    customers_filter_t f = {0};
    char owner[24], team[24];
    if (crud_parse_query(ar, allowed, &q) != 0)
        return 0;
    crud_list_t *list = h2o_mem_alloc_pool(&ar->req->pool, sizeof(*list));
    if (crud_parse_list(ar, &q, customers_db_sorts, 2, list_fields, list) != 0 || check_clv_cursor(ar, list) != 0 ||
        crud_param_id(ar, &q, "owner_id", owner, &f.owner_id) != 0 ||
        crud_param_id(ar, &q, "team_id", team, &f.team_id) != 0 ||
        crud_param_enum(ar, &q, "status", statuses, &f.status) != 0 ||
        crud_param_time(ar, &q, "updated_since", &f.updated_since) != 0 ||
        crud_param_time(ar, &q, "created_after", &f.created_after) != 0 ||
        crud_param_time(ar, &q, "created_before", &f.created_before) != 0 ||
        crud_param_enum(ar, &q, "segment", segments, &f.segment) != 0 ||
        crud_param_enum(ar, &q, "lifecycle", lifecycles, &f.lifecycle) != 0 ||
        crud_param_enum(ar, &q, "tier", tiers, &f.tier) != 0 ||
        param_probability(ar, &q, "p_alive_below", &f.p_alive_below) != 0)
        return 0;
    f.tag = crud_query_get(&q, "tag");
    const char *term = crud_query_get(&q, "q");
    if (term != NULL && (strlen(term) == 0 || strlen(term) > 200)) {
        json_t *errors = json_array();
        api_error_add(errors, "q", "invalid_value", "must be 1 to 200 characters");
        return api_send_invalid(ar, 400, "The query string has invalid parameters.", errors);
    }
    if (term != NULL)
        f.q_pattern = like_pattern(ar, term);
    /* owner_id and team_id need their own copies: the buffers above die with this frame. */
    if (f.owner_id != NULL)
        f.owner_id = h2o_strdup(&ar->req->pool, f.owner_id, SIZE_MAX).base;
    if (f.team_id != NULL)
        f.team_id = h2o_strdup(&ar->req->pool, f.team_id, SIZE_MAX).base;
    return customers_db_list(ar, &f, list, on_list, list);
}
