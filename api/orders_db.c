/*
 * api/orders_db.c - all SQL touching table "orders".
 *
 * An order's scope is its customer's: every statement joins the customer
 * and applies in_scope() to the customer's owner and team. A customer that
 * is deleted or outside the caller's read scope cannot be referenced, and
 * is reported exactly like one that does not exist. Results use the
 * standard columns of api/crud.h; every write is one statement.
 */
#include <stdio.h>

#include "orders_db.h"
#include "scope.h"

static const char SQL_GET[] =
    "WITH " SCOPE_CALLER_CTE("orders")
    " SELECT caller.rscope, o.version, order_json(o)::text"
    " FROM caller LEFT JOIN (orders o JOIN customers c ON c.id = o.customer_id) ON o.id = $3"
    " AND o.deleted_at IS NULL AND " SCOPE_OK("rscope", "c.owner_id", "c.team_id");

#define INPUT_COLUMNS "external_id, customer_id, ordered_at, status, currency, total, lines"
#define INPUT_VALUES(ext, cust) ext ", " cust ", i.ordered_at, i.status, i.currency, i.total, coalesce(i.lines, '[]')"

/* The lines, when there are any, must add up to the total. */
#define TOTAL_MATCHES(d)                                                                                               \
    "(jsonb_array_length(coalesce(" d " -> 'lines', '[]')) = 0 OR (SELECT sum((l ->> 'quantity')::numeric"             \
    " * (l ->> 'unit_price')::numeric) FROM jsonb_array_elements(" d " -> 'lines') l) = (" d " ->> 'total')::numeric)"

/* Resolves the customer an order names (customer_id, or customer_external_id in $4), if the caller may see it. */
#define CUSTOMER_REF(i_expr)                                                                                           \
    " cust AS (SELECT c.* FROM caller, " i_expr " JOIN customers c ON c.deleted_at IS NULL AND"                        \
    " (c.id = ii.customer_id OR (ii.customer_id IS NULL AND c.external_id = $4::text))"                                \
    " WHERE " SCOPE_OK("rscope", "c.owner_id", "c.team_id") "),"

static const char SQL_CREATE[] =
    "WITH " SCOPE_CALLER_CTE("orders") ","
    " i AS (SELECT * FROM jsonb_populate_record(NULL::order_input, $3::jsonb)),"
    CUSTOMER_REF("i ii")
    " chk AS (SELECT CASE WHEN caller.cscope = 'none' THEN 'forbidden'"
    "   WHEN NOT EXISTS (SELECT 1 FROM cust) THEN 'invalid_customer_id'"
    "   WHEN NOT (SELECT " SCOPE_OK("cscope", "cust.owner_id", "cust.team_id") " FROM cust) THEN 'forbidden_target'"
    "   ELSE 'ok' END AS outcome FROM caller),"
    " ins AS (INSERT INTO orders (" INPUT_COLUMNS ")"
    "   SELECT " INPUT_VALUES("i.external_id", "(SELECT id FROM cust)") " FROM i, chk WHERE chk.outcome = 'ok'"
    "   RETURNING *)"
    " SELECT CASE WHEN ins.id IS NOT NULL THEN 'created' ELSE chk.outcome END, ins.id, ins.version,"
    " order_json(ins::orders)::text, caller.rscope FROM caller JOIN chk ON true LEFT JOIN ins ON true";

static const char SQL_PATCH[] =
    "WITH " SCOPE_CALLER_CTE("orders") ","
    " cur AS (SELECT o.id, o.version, order_input_json(o) AS base, c.owner_id AS c_owner, c.team_id AS c_team"
    "   FROM caller JOIN orders o ON o.id = $3 AND o.deleted_at IS NULL JOIN customers c ON c.id = o.customer_id"
    "   AND " SCOPE_OK("rscope", "c.owner_id", "c.team_id") " FOR UPDATE OF o),"
    " m AS (SELECT cur.id, cur.version, cur.c_owner, cur.c_team, jsonb_merge_patch(cur.base, $5::jsonb) AS d FROM cur),"
    " i AS (SELECT (jsonb_populate_record(NULL::order_input, m.d)).* FROM m),"
    " cust AS (SELECT c.* FROM caller, i JOIN customers c ON c.id = i.customer_id AND c.deleted_at IS NULL"
    "   WHERE " SCOPE_OK("rscope", "c.owner_id", "c.team_id") "),"
    " chk AS (SELECT m.id, CASE"
    "   WHEN NOT " SCOPE_OK("uscope", "m.c_owner", "m.c_team") " THEN 'forbidden'"
    "   WHEN $4::int IS NOT NULL AND $4::int <> 0 AND $4::int <> m.version THEN 'precondition'"
    "   WHEN NOT EXISTS (SELECT 1 FROM cust) THEN 'invalid_customer_id'"
    "   WHEN NOT (SELECT " SCOPE_OK("uscope", "cust.owner_id", "cust.team_id") " FROM cust)"
    "     OR NOT (SELECT " SCOPE_KEEPS_TEAM("uscope", "m.c_team", "cust.team_id") " FROM cust) THEN 'forbidden_target'"
    "   WHEN NOT " TOTAL_MATCHES("m.d") " THEN 'invalid_total'"
    "   ELSE 'ok' END AS outcome FROM caller, m),"
    " upd AS (UPDATE orders o SET (" INPUT_COLUMNS ") = (" INPUT_VALUES("i.external_id", "i.customer_id") ")"
    "   FROM i, chk WHERE o.id = chk.id AND chk.outcome = 'ok' RETURNING o.*)"
    " SELECT CASE WHEN upd.id IS NOT NULL THEN 'updated' ELSE coalesce(chk.outcome, 'not_found') END,"
    " upd.id, upd.version, order_json(upd::orders)::text, caller.rscope"
    " FROM caller LEFT JOIN chk ON true LEFT JOIN upd ON true";

/* $3 external id, $4 customer_external_id, $5 if-match, $6 body. */
static const char SQL_PUT_EXTERNAL[] =
    "WITH " SCOPE_CALLER_CTE("orders") ","
    " cur AS (SELECT o.*, c.owner_id AS c_owner, c.team_id AS c_team FROM orders o"
    "   JOIN customers c ON c.id = o.customer_id WHERE o.external_id = $3 AND o.deleted_at IS NULL FOR UPDATE OF o),"
    " i AS (SELECT * FROM jsonb_populate_record(NULL::order_input, $6::jsonb)),"
    CUSTOMER_REF("i ii")
    " chk AS (SELECT CASE WHEN EXISTS (SELECT 1 FROM cur) THEN CASE"
    "     WHEN NOT (SELECT " SCOPE_OK("rscope", "cur.c_owner", "cur.c_team") " FROM cur) THEN 'duplicate'"
    "     WHEN NOT (SELECT " SCOPE_OK("uscope", "cur.c_owner", "cur.c_team") " FROM cur) THEN 'forbidden'"
    "     WHEN $5::int IS NOT NULL AND $5::int <> 0 AND $5::int <> (SELECT version FROM cur) THEN 'precondition'"
    "     WHEN NOT EXISTS (SELECT 1 FROM cust) THEN 'invalid_customer_id'"
    "     WHEN NOT (SELECT " SCOPE_OK("uscope", "cust.owner_id", "cust.team_id") " FROM cust)"
    "       OR NOT (SELECT " SCOPE_KEEPS_TEAM("uscope", "cur.c_team", "cust.team_id") " FROM cur, cust) THEN 'forbidden_target'"
    "     ELSE 'update' END"
    "   ELSE CASE WHEN $5::int IS NOT NULL THEN 'precondition'"
    "     WHEN caller.cscope = 'none' THEN 'forbidden'"
    "     WHEN NOT EXISTS (SELECT 1 FROM cust) THEN 'invalid_customer_id'"
    "     WHEN NOT (SELECT " SCOPE_OK("cscope", "cust.owner_id", "cust.team_id") " FROM cust) THEN 'forbidden_target'"
    "     ELSE 'create' END END AS action FROM caller),"
    " upd AS (UPDATE orders o SET (" INPUT_COLUMNS ") = (" INPUT_VALUES("$3", "(SELECT id FROM cust)") ")"
    "   FROM i, chk, cur WHERE o.id = cur.id AND chk.action = 'update' RETURNING o.*),"
    " ins AS (INSERT INTO orders (" INPUT_COLUMNS ")"
    "   SELECT " INPUT_VALUES("$3", "(SELECT id FROM cust)") " FROM i, chk WHERE chk.action = 'create' RETURNING *)"
    " SELECT CASE WHEN upd.id IS NOT NULL THEN 'updated' WHEN ins.id IS NOT NULL THEN 'created' ELSE chk.action END,"
    " coalesce(upd.id, ins.id), coalesce(upd.version, ins.version),"
    " CASE WHEN upd.id IS NOT NULL THEN order_json(upd::orders) ELSE order_json(ins::orders) END::text, caller.rscope"
    " FROM caller JOIN chk ON true LEFT JOIN upd ON true LEFT JOIN ins ON true";

static const char SQL_DELETE[] =
    "WITH " SCOPE_CALLER_CTE("orders") ","
    " cur AS (SELECT o.*, c.owner_id AS c_owner, c.team_id AS c_team FROM caller JOIN orders o ON o.id = $3"
    "   AND o.deleted_at IS NULL JOIN customers c ON c.id = o.customer_id"
    "   AND " SCOPE_OK("rscope", "c.owner_id", "c.team_id") " FOR UPDATE OF o),"
    " chk AS (SELECT cur.id, CASE WHEN NOT " SCOPE_OK("dscope", "cur.c_owner", "cur.c_team") " THEN 'forbidden'"
    "   WHEN $4::int IS NOT NULL AND $4::int <> 0 AND $4::int <> cur.version THEN 'precondition' ELSE 'ok' END AS outcome"
    "   FROM caller, cur),"
    " del AS (UPDATE orders o SET deleted_at = now() FROM chk WHERE o.id = chk.id AND chk.outcome = 'ok'"
    "   RETURNING o.id)"
    " SELECT CASE WHEN del.id IS NOT NULL THEN 'deleted' ELSE coalesce(chk.outcome, 'not_found') END,"
    " del.id, NULL::int, NULL::text, caller.rscope FROM caller LEFT JOIN chk ON true LEFT JOIN del ON true";

/*
 * $3: a JSON array of orders, each with an external_id and a customer
 * reference (customer_id or customer_external_id), checked before. All or
 * nothing: refused items are returned instead of writing anything.
 */
static const char SQL_BULK[] =
    "WITH " SCOPE_CALLER_CTE("orders") ","
    " items AS (SELECT (n - 1)::int AS idx, d FROM jsonb_array_elements($3::jsonb) WITH ORDINALITY AS x(d, n)),"
    " i AS (SELECT items.idx, items.d ->> 'customer_external_id' AS cust_ext,"
    "   (jsonb_populate_record(NULL::order_input, items.d)).* FROM items),"
    " cur AS (SELECT i.idx, o.id, o.version, c.owner_id AS c_owner, c.team_id AS c_team FROM i"
    "   JOIN orders o ON o.external_id = i.external_id AND o.deleted_at IS NULL"
    "   JOIN customers c ON c.id = o.customer_id FOR UPDATE OF o),"
    " cust AS (SELECT i.idx, c.id, c.owner_id, c.team_id FROM caller, i JOIN customers c ON c.deleted_at IS NULL"
    "   AND (c.id = i.customer_id OR (i.customer_id IS NULL AND c.external_id = i.cust_ext))"
    "   WHERE " SCOPE_OK("rscope", "c.owner_id", "c.team_id") "),"
    " chk AS (SELECT i.idx, cur.id AS cur_id, cust.id AS cust_id, CASE WHEN cur.id IS NOT NULL THEN CASE"
    "     WHEN NOT " SCOPE_OK("rscope", "cur.c_owner", "cur.c_team") " THEN 'duplicate'"
    "     WHEN NOT " SCOPE_OK("uscope", "cur.c_owner", "cur.c_team") " THEN 'forbidden'"
    "     WHEN cust.id IS NULL THEN 'invalid_customer_id'"
    "     WHEN NOT " SCOPE_OK("uscope", "cust.owner_id", "cust.team_id")
    "       OR NOT " SCOPE_KEEPS_TEAM("uscope", "cur.c_team", "cust.team_id") " THEN 'forbidden_target'"
    "     ELSE 'update' END"
    "   ELSE CASE WHEN caller.cscope = 'none' THEN 'forbidden'"
    "     WHEN cust.id IS NULL THEN 'invalid_customer_id'"
    "     WHEN NOT " SCOPE_OK("cscope", "cust.owner_id", "cust.team_id") " THEN 'forbidden_target'"
    "     ELSE 'create' END END AS action"
    "   FROM caller CROSS JOIN i LEFT JOIN cur ON cur.idx = i.idx LEFT JOIN cust ON cust.idx = i.idx),"
    " bad AS (SELECT idx, action FROM chk WHERE action NOT IN ('create', 'update')),"
    " upd AS (UPDATE orders o SET (" INPUT_COLUMNS ") = (" INPUT_VALUES("i.external_id", "chk.cust_id") ")"
    "   FROM i JOIN chk ON chk.idx = i.idx"
    "   WHERE o.id = chk.cur_id AND chk.action = 'update' AND NOT EXISTS (SELECT 1 FROM bad) RETURNING o.id),"
    " ins AS (INSERT INTO orders (" INPUT_COLUMNS ")"
    "   SELECT " INPUT_VALUES("i.external_id", "chk.cust_id") " FROM i JOIN chk ON chk.idx = i.idx"
    "   WHERE chk.action = 'create' AND NOT EXISTS (SELECT 1 FROM bad) ORDER BY i.idx RETURNING id)"
    " SELECT caller.cscope, (SELECT count(*) FROM ins), (SELECT count(*) FROM upd),"
    " (SELECT json_agg(json_build_object('index', idx, 'outcome', action) ORDER BY idx) FROM bad)::text"
    " FROM caller";

/*
 * $3 customer_id, $4 status, $5 ordered_after, $6 ordered_before,
 * $7 updated_since, $8 cursor key, $9 cursor id, $10 rows, $11 count, $12 fields.
 */
#define LIST_FILTERS                                                                                                   \
    " AND o.deleted_at IS NULL"                                                                                        \
    " AND ($3::bigint IS NULL OR o.customer_id = $3::bigint)"                                                          \
    " AND ($4::text IS NULL OR o.status = $4::text)"                                                                   \
    " AND ($5::timestamptz IS NULL OR o.ordered_at > $5::timestamptz)"                                                 \
    " AND ($6::timestamptz IS NULL OR o.ordered_at < $6::timestamptz)"                                                 \
    " AND ($7::timestamptz IS NULL OR o.updated_at >= $7::timestamptz)"

#define LIST_BRANCH(cond, key, type, dir, cmp)                                                                         \
    "(SELECT o.* FROM orders o JOIN customers c ON c.id = o.customer_id WHERE " cond LIST_FILTERS                      \
    CRUD_KEYSET_AFTER("o", "orders", key, type, cmp, "$8", "$9")                                                      \
    " ORDER BY o." key " " dir ", o.id " dir " LIMIT $10)"

/*
 * count=true: the total, counted once per statement. The fence (OFFSET 0)
 * keeps the planner from pulling the count up into the select list, where
 * it would run again for every row of the page (it depends on the caller).
 */
#define LIST_TOTAL                                                                                                     \
    " FROM caller CROSS JOIN LATERAL (SELECT CASE WHEN $11::bool THEN (SELECT count(*) FROM orders o"                 \
    " JOIN customers c ON c.id = o.customer_id WHERE " SCOPE_OK("rscope", "c.owner_id", "c.team_id") LIST_FILTERS    \
    ") END AS total OFFSET 0) t"

#define LIST_SQL(key, type, dir, cmp)                                                                                  \
    "WITH " SCOPE_CALLER_CTE("orders")                                                                                 \
    " SELECT caller.rscope, p.id, p.sortkey, p.doc, t.total" LIST_TOTAL                                                \
    " LEFT JOIN LATERAL (SELECT x.id, x." key "::text AS sortkey,"                                                     \
    " CASE WHEN $12::text[] IS NULL THEN order_json(x::orders)::text"                                                  \
    " ELSE (SELECT json_object_agg(e.key, e.value) FROM json_each(order_json(x::orders)) e"                            \
    " WHERE e.key = ANY ($12::text[]))::text END AS doc FROM ("                                                        \
    LIST_BRANCH("caller.rscope = 'all'", key, type, dir, cmp) " UNION ALL "                                            \
    LIST_BRANCH("caller.rscope = 'team' AND c.team_id = caller.tid", key, type, dir, cmp) " UNION ALL "                \
    LIST_BRANCH("caller.rscope = 'own' AND c.owner_id = caller.uid", key, type, dir, cmp)                              \
    ") x ORDER BY x." key " " dir ", x.id " dir ") p ON true"

static const char *const SQL_LIST[] = {
    LIST_SQL("ordered_at", "timestamptz", "ASC", ">"), LIST_SQL("ordered_at", "timestamptz", "DESC", "<"),
    LIST_SQL("created_at", "timestamptz", "ASC", ">"), LIST_SQL("created_at", "timestamptz", "DESC", "<"),
    LIST_SQL("updated_at", "timestamptz", "ASC", ">"), LIST_SQL("updated_at", "timestamptz", "DESC", "<"),
};

const char *const orders_db_sorts[] = {"ordered_at", "created_at", "updated_at", NULL};

#define CALLER(ar)                                                                                                     \
    char uid_[24], ver_[24];                                                                                           \
    api_caller_params(ar, uid_, ver_)

int orders_db_get(api_req_t *ar, int64_t id, crud_done_fn done, void *arg)
{
    CALLER(ar);
    char idb[24];
    const char *p[] = {uid_, ver_, db_fmt_i64(idb, id)};
    return crud_query(ar, SQL_GET, 3, p, done, arg);
}

int orders_db_create(api_req_t *ar, const char *input, const char *customer_external_id, crud_done_fn done, void *arg)
{
    CALLER(ar);
    const char *p[] = {uid_, ver_, input, customer_external_id};
    return crud_query(ar, SQL_CREATE, 4, p, done, arg);
}

int orders_db_patch(api_req_t *ar, int64_t id, const char *patch, const char *if_match, crud_done_fn done, void *arg)
{
    CALLER(ar);
    char idb[24];
    const char *p[] = {uid_, ver_, db_fmt_i64(idb, id), if_match, patch};
    return crud_query(ar, SQL_PATCH, 5, p, done, arg);
}

int orders_db_put_external(api_req_t *ar, const char *external_id, const char *customer_external_id,
                           const char *input, const char *if_match, crud_done_fn done, void *arg)
{
    CALLER(ar);
    const char *p[] = {uid_, ver_, external_id, customer_external_id, if_match, input};
    return crud_query(ar, SQL_PUT_EXTERNAL, 6, p, done, arg);
}

int orders_db_delete(api_req_t *ar, int64_t id, const char *if_match, crud_done_fn done, void *arg)
{
    CALLER(ar);
    char idb[24];
    const char *p[] = {uid_, ver_, db_fmt_i64(idb, id), if_match};
    return crud_query(ar, SQL_DELETE, 4, p, done, arg);
}

int orders_db_bulk(api_req_t *ar, const char *items, crud_done_fn done, void *arg)
{
    CALLER(ar);
    const char *p[] = {uid_, ver_, items};
    return crud_query(ar, SQL_BULK, 3, p, done, arg);
}

int orders_db_list(api_req_t *ar, const orders_filter_t *f, const crud_list_t *list, crud_done_fn done, void *arg)
{
    CALLER(ar);
    char fetch[16];
    snprintf(fetch, sizeof(fetch), "%d", list->limit + 1);
    const char *p[] = {uid_,           ver_,           f->customer_id, f->status, f->ordered_after, f->ordered_before,
                       f->updated_since, list->cursor_key, list->cursor_id, fetch, list->count ? "true" : "false",
                       list->fields};
    return crud_query_flags(ar, SQL_LIST[list->sort], 12, p, DB_ONESHOT, done, arg);
}
