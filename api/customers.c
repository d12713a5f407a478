/*
 * api/customers.c - the customer: a person or company the tenant sells to.
 *
 * An engine description (api/engine.h) plus what only customers have: the
 * analytics the worker computes (embedded read-only, filtered by segment,
 * lifecycle, tier and P(alive)) and the list sorted by CLV, which walks the
 * CLV table rather than a column.
 */
#include <stdio.h>
#include <string.h>

#include "resources.h"
#include "engine_int.h"

static const char *const kinds[] = {"person", "company", NULL};
static const char *const statuses[] = {"prospect", "customer", "partner", "inactive", NULL};
/* A customer the business no longer deals with: an ownership transfer of open records leaves it with its owner. */
static const char *const closed_statuses[] = {"inactive", NULL};
static const char *const segments[] = {
    "champions",      "loyal_customers", "potential_loyalists", "new_customers", "promising", "need_attention",
    "about_to_sleep", "at_risk",         "cant_lose_them",      "hibernating",   "prospect",  NULL};
static const char *const lifecycles[] = {"prospect", "new", "active", "at_risk", "churned", NULL};
static const char *const tiers[] = {"A", "B", "C", NULL};

static const validate_field_t address_fields[] = {
    {.name = "line1", .type = VT_STRING, .flags = VF_NULLABLE | VF_TRIM, .max_len = 200},
    {.name = "line2", .type = VT_STRING, .flags = VF_NULLABLE | VF_TRIM, .max_len = 200},
    {.name = "city", .type = VT_STRING, .flags = VF_NULLABLE | VF_TRIM, .max_len = 100},
    {.name = "region", .type = VT_STRING, .flags = VF_NULLABLE | VF_TRIM, .max_len = 100},
    {.name = "postal_code", .type = VT_STRING, .flags = VF_NULLABLE | VF_TRIM, .max_len = 20},
    {.name = "country", .type = VT_COUNTRY, .flags = VF_NULLABLE},
};

static const engine_field_t fields[] = {
    {.v = {.name = "id", .type = VT_ID, .flags = VF_READONLY}},
    {.v = {.name = "external_id", .type = VT_STRING, .flags = VF_NULLABLE | VF_TRIM, .min_len = 1, .max_len = 200}},
    {.v = {.name = "kind", .type = VT_ENUM, .flags = VF_REQUIRED, .enum_values = kinds}, .ef = EF_GROUP},
    {.v = {.name = "name", .type = VT_STRING, .flags = VF_REQUIRED | VF_TRIM, .min_len = 1, .max_len = 200},
     .ef = EF_SORT | EF_SEARCH},
    {.v = {.name = "email", .type = VT_EMAIL, .flags = VF_NULLABLE | VF_TRIM, .max_len = 254},
     .ef = EF_SEARCH,
     .sql_type = "citext"},
    {.v = {.name = "phone", .type = VT_PHONE, .flags = VF_NULLABLE | VF_TRIM, .max_len = 32}},
    {.v = {.name = "address", .type = VT_OBJECT, .flags = VF_NULLABLE, VALIDATE_NESTED(address_fields)},
     .ef = EF_NO_EXPORT},
    {.v = {.name = "industry", .type = VT_STRING, .flags = VF_NULLABLE | VF_TRIM, .max_len = 100}},
    {.v = {.name = "status", .type = VT_ENUM, .enum_values = statuses},
     .ef = EF_FILTER | EF_GROUP,
     .def = "'prospect'"},
    {.v = {.name = "owner_id", .type = VT_ID}, .ef = EF_FILTER | EF_GROUP},
    {.v = {.name = "team_id", .type = VT_ID, .flags = VF_NULLABLE}, .ef = EF_FILTER | EF_GROUP},
    {.v = {.name = "tags", .type = VT_STRING_ARRAY, .max_len = 50, .item_min_len = 1, .item_max_len = 50},
     .ef = EF_FILTER,
     .def = "'{}'"},
    {.v = {.name = "attrs", .type = VT_JSON_OBJECT, .max_bytes = 16384}, .ef = EF_NO_EXPORT, .def = "'{}'"},
    {.v = {.name = "credit_limit", .type = VT_DECIMAL, .flags = VF_NULLABLE, .int_digits = 16, .scale = 2},
     .ef = EF_METRIC},
    {.v = {.name = "created_at", .type = VT_TIMESTAMP, .flags = VF_READONLY}, .ef = EF_SORT | EF_BETWEEN | EF_GROUP},
    {.v = {.name = "updated_at", .type = VT_TIMESTAMP, .flags = VF_READONLY}, .ef = EF_SORT | EF_SINCE | EF_GROUP},
    {.v = {.name = "version", .type = VT_INT, .flags = VF_READONLY}},
    {.v = {.name = "analytics", .type = VT_JSON_OBJECT, .flags = VF_READONLY | VF_NULLABLE, .max_bytes = 65536}, .ef = EF_NO_EXPORT},
};

#define UTC(x) "iso_utc(" x ")"

/*
 * The latest RFM scores and the current CLV, null until a run has scored
 * the customer; a run changes the document without changing the record, so
 * the ETag names the runs too ("12-r40-c41"). If-Match compares the version.
 */
static const engine_embed_t embeds[] = {{
    "analytics",
    " LEFT JOIN customer_analytics a ON a.customer_id = {id} LEFT JOIN customer_clv v ON v.customer_id = {id}",
    "CASE WHEN a.customer_id IS NULL AND v.customer_id IS NULL THEN NULL ELSE json_build_object("
    "'run_id', a.run_id, 'computed_at', " UTC("a.computed_at") ", 'recency_days', a.recency_days,"
    " 'frequency', a.frequency, 'monetary', a.monetary::text, 'r', a.r, 'f', a.f, 'm', a.m, 'segment', a.segment,"
    " 'lifecycle', a.lifecycle, 'tier', a.tier, 'clv', CASE WHEN v.customer_id IS NOT NULL THEN json_build_object("
    "'run_id', v.run_id, 'computed_at', " UTC("v.computed_at") ", 'p_alive', v.p_alive,"
    " 'expected_purchases', v.expected_purchases, 'expected_avg_value', v.expected_avg_value::text,"
    " 'clv', v.clv::text, 'horizon', v.horizon, 'time_unit', v.time_unit, 'lifecycle', v.lifecycle, 'x', v.x,"
    " 't_x', v.t_x, 'T', v.t_cal) END) END",
    "coalesce('-r' || a.run_id, '') || coalesce('-c' || v.run_id, '')",
}};

#define ANALYTICS(col) "(SELECT a." col " FROM customer_analytics a WHERE a.customer_id = {r}.id) = {p}"
#define ANALYTICS_COUNT(col)                                                                                           \
    "EXISTS (SELECT 1 FROM customer_analytics a WHERE a.customer_id = {r}.id AND a." col " = {p})"

/*
 * Analytics filters, for pages, read the row by its key for each candidate;
 * p_alive_below, for pages, reads the CLV row by its key for each candidate
 * (a scalar subquery is never turned into a hash of every matching CLV row,
 * which would cost a scan of customer_clv per page); for the count, which
 * visits every candidate anyway, the EXISTS form lets the planner choose.
 */
static const engine_filter_t filters[] = {
    {"segment", EFK_ENUM, segments, ANALYTICS("segment"), ANALYTICS_COUNT("segment"), "analytics"},
    {"lifecycle", EFK_ENUM, lifecycles, ANALYTICS("lifecycle"), ANALYTICS_COUNT("lifecycle"), "analytics"},
    {"tier", EFK_ENUM, tiers, ANALYTICS("tier"), ANALYTICS_COUNT("tier"), "analytics"},
    {"p_alive_below", EFK_PROBABILITY, NULL,
     "(SELECT pv.p_alive FROM customer_clv pv WHERE pv.customer_id = {r}.id) < {p}",
     "EXISTS (SELECT 1 FROM customer_clv pv WHERE pv.customer_id = {r}.id AND pv.p_alive < {p})", "analytics"},
};

/*
 * Sorted by CLV (customer_clv.clv): customers with a value first, by value
 * and id, then those without one by id alone, in the same direction. The
 * two groups are two keyset walks: "valued" follows customer_clv_value_idx
 * (clv, customer_id) and stops after a page; "unvalued" walks customers by
 * id and runs only when the first left the page short. A cursor's key is
 * the value, or '' for a cursor that points into the group without one.
 */
static void clv_list(engine_sql_t *s, const engine_list_ctx_t *cx, int desc)
{
    const char *dir = desc ? "DESC" : "ASC", *cmp = desc ? "<" : ">";
    int pa = engine_param_pos(cx->res, "p_alive_below");
    static const char *const conds[] = {"caller.rscope = 'all'", "caller.rscope = 'team' AND t.team_id = caller.tid",
                                        "caller.rscope = 'own' AND t.owner_id = caller.uid"};
    esql_addf(s,
              "WITH %s SELECT caller.rscope, p.id, p.sortkey, p.doc, tt.total FROM caller CROSS JOIN LATERAL"
              " (SELECT CASE WHEN $%d::bool THEN (SELECT count(*) FROM customers t WHERE"
              " in_scope(caller.rscope, caller.uid, caller.tid, t.owner_id, t.team_id)%s) END AS total OFFSET 0) tt"
              " LEFT JOIN LATERAL (WITH valued AS (",
              cx->caller, EL_COUNT, cx->count_filters);
    for (int b = 0; b < 3; b++)
        esql_addf(s,
                  "%s(SELECT t.id, v.clv, t AS r FROM customer_clv v JOIN customers t ON t.id = v.customer_id WHERE %s"
                  " AND v.clv IS NOT NULL AND ($%d::float8 IS NULL OR v.p_alive < $%d::float8)%s"
                  " AND ($%d::text IS NULL OR ($%d::text <> '' AND (v.clv, v.customer_id) %s"
                  " (CASE WHEN $%d::text <> '' THEN $%d::numeric END, $%d::bigint)))"
                  " ORDER BY v.clv %s, v.customer_id %s LIMIT $%d)",
                  b ? " UNION ALL " : "", conds[b], pa, pa, cx->filters, EL_KEY, EL_KEY, cmp, EL_KEY, EL_KEY, EL_ID,
                  dir, dir, EL_FETCH);
    esql_add(s, "), unvalued AS (");
    for (int b = 0; b < 3; b++)
        esql_addf(s,
                  "%s(SELECT t.id, t AS r FROM customers t LEFT JOIN customer_clv nv ON nv.customer_id = t.id"
                  " AND ($%d::text IS NULL OR $%d::text <> '' OR nv.customer_id %s $%d::bigint)"
                  " WHERE %s AND (SELECT count(*) FROM valued) < $%d AND nv.clv IS NULL"
                  " AND ($%d::float8 IS NULL OR nv.p_alive < $%d::float8)%s"
                  " AND ($%d::text IS NULL OR $%d::text <> '' OR t.id %s $%d::bigint) ORDER BY t.id %s LIMIT $%d)",
                  b ? " UNION ALL " : "", EL_KEY, EL_KEY, cmp, EL_ID, conds[b], EL_FETCH, pa, pa, cx->filters, EL_KEY,
                  EL_KEY, cmp, EL_ID, dir, EL_FETCH);
    esql_add(s, ") SELECT k.id, k.clv::text AS sortkey, ");
    engine_doc_projected(s, cx->res, "(k.r)");
    esql_addf(s,
              " AS doc FROM (SELECT id, clv, r FROM valued UNION ALL SELECT id, NULL::numeric, r FROM unvalued) k"
              " ORDER BY k.clv %s NULLS LAST, k.id %s LIMIT $%d) p ON true",
              dir, dir, EL_FETCH);
}

/* A cursor of sort=clv carries the CLV it stopped at as a decimal, or "" in the group without one. */
static int clv_key_ok(const char *k)
{
    if (k[0] == '\0')
        return 0;
    size_t len = strlen(k), i = k[0] == '-', digits = 0;
    for (; i < len && k[i] >= '0' && k[i] <= '9'; i++)
        digits++;
    if (i < len && k[i] == '.')
        for (i++; i < len && k[i] >= '0' && k[i] <= '9'; i++)
            digits++;
    return digits > 0 && i == len && len <= 40 ? 0 : -1;
}

static const engine_sort_t sorts[] = {{.name = "name"},
                                      {.name = "created_at"},
                                      {.name = "updated_at"},
                                      {.name = "clv", .list = clv_list, .check_key = clv_key_ok, .field = "analytics"},
                                      {.name = NULL}};

/*
 * Duplicates: the same e-mail or phone, or a similar name, without its legal
 * form, in the same city (api/merge.c; name_key() in schema/0021).
 */
static const char *const phones[] = {"phone", NULL};
static const engine_dedup_t dedup = {"email", phones, "name_key({t}.name)", "lower(btrim({t}.address ->> 'city'))"};

const engine_resource_t customers_resource = {
    .name = "customers",
    .table = "customers",
    .singular = "customer",
    .fields = fields,
    .nfields = ENGINE_COUNT(fields),
    .scope = {ENGINE_OWNED},
    .sorts = sorts,
    .default_sort = "created_at",
    .filters = filters,
    .nfilters = ENGINE_COUNT(filters),
    .embeds = embeds,
    .nembeds = ENGINE_COUNT(embeds),
    .bulk_max = 5000,
    .closed = {"status", closed_statuses},
    .dedup = &dedup,
};
