/*
 * api/customers_db.c - all SQL touching table "customers".
 *
 * Every statement is scoped: it starts with the caller CTE of api/scope.h
 * ($1 user id, $2 token version) and decides visibility and permission in
 * the same statement that reads or writes, so there is no window between a
 * check and the change it guards, and every write is one statement, hence
 * one transaction. Results use the standard columns of api/crud.h.
 */
#include <stdio.h>

#include "customers_db.h"
#include "scope.h"

/* --- one record ------------------------------------------------------------ */

/*
 * A customer's ETag: its version, plus the runs whose results the document
 * embeds ("12-r40-c41"), because a run changes the document without
 * changing the record's version. If-Match compares the version part only
 * (crud_if_match): a run must not make an edit fail. NULL when v is.
 */
#define ETAG(v, d)                                                                                                     \
    "(" v "::text || coalesce('-r' || (" d " #>> '{analytics,run_id}'), '')"                                          \
    " || coalesce('-c' || (" d " #>> '{analytics,clv,run_id}'), ''))"

static const char SQL_GET[] =
    "WITH " SCOPE_CALLER_CTE("customers")
    " SELECT caller.rscope, " ETAG("c.version", "d.doc") ", d.doc::text"
    " FROM caller LEFT JOIN customers c ON c.id = $3 AND c.deleted_at IS NULL"
    " AND " SCOPE_OK("rscope", "c.owner_id", "c.team_id")
    " LEFT JOIN LATERAL (SELECT customer_json(c) AS doc) d ON c.id IS NOT NULL";

#define INPUT_COLUMNS                                                                                                  \
    "external_id, kind, name, email, phone, address, industry, status, owner_id, team_id, tags, attrs, credit_limit"
#define INPUT_VALUES(ext)                                                                                              \
    ext ", i.kind, i.name, i.email, i.phone, i.address, i.industry, coalesce(i.status, 'prospect'), t.owner_id,"       \
        " t.team_id, coalesce(i.tags, '{}'), coalesce(i.attrs, '{}'), i.credit_limit"

/* Checks shared by every write: the owner must be an active user, the team must exist. */
#define TARGET_CHECKS(owner, team)                                                                                     \
    " WHEN NOT EXISTS (SELECT 1 FROM users WHERE id = " owner " AND active) THEN 'invalid_owner_id'"                   \
    " WHEN " team " IS NOT NULL AND NOT EXISTS (SELECT 1 FROM teams WHERE id = " team ") THEN 'invalid_team_id'"

static const char SQL_CREATE[] =
    "WITH " SCOPE_CALLER_CTE("customers") ","
    " i AS (SELECT * FROM jsonb_populate_record(NULL::customer_input, $3::jsonb)),"
    " o AS (SELECT coalesce(i.owner_id, caller.uid) AS owner_id, i.team_id FROM i, caller),"
    " t AS (SELECT o.owner_id, coalesce(o.team_id, (SELECT team_id FROM users WHERE id = o.owner_id)) AS team_id FROM o),"
    " chk AS (SELECT CASE WHEN caller.cscope = 'none' THEN 'forbidden'"
    "   WHEN NOT " SCOPE_TARGET_OK("cscope", "t.owner_id", "t.team_id") " THEN 'forbidden_target'"
    TARGET_CHECKS("t.owner_id", "t.team_id") " ELSE 'ok' END AS outcome FROM caller, t),"
    " ins AS (INSERT INTO customers (" INPUT_COLUMNS ")"
    "   SELECT " INPUT_VALUES("i.external_id") " FROM i, t, chk WHERE chk.outcome = 'ok' RETURNING *)"
    " SELECT CASE WHEN ins.id IS NOT NULL THEN 'created' ELSE chk.outcome END, ins.id, " ETAG("ins.version", "d.doc") ","
    " d.doc::text, caller.rscope"
    " FROM caller JOIN chk ON true LEFT JOIN ins ON true"
    " LEFT JOIN LATERAL (SELECT customer_json(ins::customers) AS doc) d ON ins.id IS NOT NULL";

static const char SQL_PATCH[] =
    "WITH " SCOPE_CALLER_CTE("customers") ","
    " cur AS (SELECT c.* FROM caller JOIN customers c ON c.id = $3 AND c.deleted_at IS NULL"
    "   AND " SCOPE_OK("rscope", "c.owner_id", "c.team_id") " FOR UPDATE OF c),"
    " m AS (SELECT cur.id, cur.version, cur.owner_id AS old_owner, cur.team_id AS old_team,"
    "   jsonb_merge_patch(customer_input_json(cur), $4::jsonb) AS d FROM cur),"
    " i AS (SELECT (jsonb_populate_record(NULL::customer_input, m.d)).* FROM m),"
    " t AS (SELECT i.owner_id, i.team_id FROM i),"
    " chk AS (SELECT m.id, CASE"
    "   WHEN NOT " SCOPE_OK("uscope", "m.old_owner", "m.old_team") " THEN 'forbidden'"
    "   WHEN (t.owner_id, t.team_id) IS DISTINCT FROM (m.old_owner, m.old_team)"
    "     AND NOT " SCOPE_MOVE_OK("uscope", "m.old_team", "t.owner_id", "t.team_id") " THEN 'forbidden_target'"
    "   WHEN $5::int IS NOT NULL AND $5::int <> 0 AND $5::int <> m.version THEN 'precondition'"
    TARGET_CHECKS("t.owner_id", "t.team_id")
    "   WHEN length((m.d -> 'attrs')::text) > 16384 THEN 'too_large_attrs'"
    "   ELSE 'ok' END AS outcome FROM caller, m, t),"
    " upd AS (UPDATE customers c SET (" INPUT_COLUMNS ") = (" INPUT_VALUES("i.external_id") ")"
    "   FROM i, t, chk WHERE c.id = chk.id AND chk.outcome = 'ok' RETURNING c.*)"
    " SELECT CASE WHEN upd.id IS NOT NULL THEN 'updated' ELSE coalesce(chk.outcome, 'not_found') END,"
    " upd.id, " ETAG("upd.version", "d.doc") ", d.doc::text, caller.rscope"
    " FROM caller LEFT JOIN chk ON true LEFT JOIN upd ON true"
    " LEFT JOIN LATERAL (SELECT customer_json(upd::customers) AS doc) d ON upd.id IS NOT NULL";

/*
 * Upsert by external id, as a full replacement. owner_id and team_id, when
 * absent, keep their current values (an ERP does not know CRM owners) or,
 * for a new record, default to the caller and the owner's team.
 */
#define SQL_UPSERT_BODY(input_expr, ext_expr)                                                                          \
    " cur AS (SELECT c.* FROM customers c WHERE c.external_id = " ext_expr " AND c.deleted_at IS NULL FOR UPDATE),"   \
    " i AS (SELECT * FROM jsonb_populate_record(NULL::customer_input, " input_expr ")),"                               \
    " o AS (SELECT coalesce(i.owner_id, (SELECT owner_id FROM cur), caller.uid) AS owner_id,"                          \
    "   CASE WHEN i.team_id IS NOT NULL THEN i.team_id"                                                                \
    "     WHEN i.owner_id IS NULL AND EXISTS (SELECT 1 FROM cur) THEN (SELECT team_id FROM cur) END AS team_id,"       \
    "   EXISTS (SELECT 1 FROM cur) AS exists_ FROM i, caller),"                                                        \
    " t AS (SELECT o.owner_id, CASE WHEN o.team_id IS NOT NULL OR (o.exists_ AND (SELECT owner_id FROM i) IS NULL)"    \
    "   THEN o.team_id ELSE (SELECT team_id FROM users WHERE id = o.owner_id) END AS team_id FROM o),"                 \
    " chk AS (SELECT CASE WHEN o.exists_ THEN CASE"                                                                    \
    "     WHEN NOT (SELECT " SCOPE_OK("rscope", "cur.owner_id", "cur.team_id") " FROM cur) THEN 'duplicate'"           \
    "     WHEN NOT (SELECT " SCOPE_OK("uscope", "cur.owner_id", "cur.team_id") " FROM cur) THEN 'forbidden'"           \
    "     WHEN (t.owner_id, t.team_id) IS DISTINCT FROM (SELECT (owner_id, team_id) FROM cur)"                       \
    "       AND NOT " SCOPE_MOVE_OK("uscope", "(SELECT team_id FROM cur)", "t.owner_id", "t.team_id")                  \
    " THEN 'forbidden_target'"                                                                                         \
    "     WHEN $4::int IS NOT NULL AND $4::int <> 0 AND $4::int <> (SELECT version FROM cur) THEN 'precondition'"                       \
    TARGET_CHECKS("t.owner_id", "t.team_id") "     ELSE 'update' END"                                                  \
    "   ELSE CASE WHEN $4::int IS NOT NULL THEN 'precondition'"                                                        \
    "     WHEN caller.cscope = 'none' THEN 'forbidden'"                                                                \
    "     WHEN NOT " SCOPE_TARGET_OK("cscope", "t.owner_id", "t.team_id") " THEN 'forbidden_target'"                          \
    TARGET_CHECKS("t.owner_id", "t.team_id") "     ELSE 'create' END END AS action FROM caller, o, t),"

static const char SQL_PUT_EXTERNAL[] =
    "WITH " SCOPE_CALLER_CTE("customers") ","
    SQL_UPSERT_BODY("$5::jsonb", "$3")
    " upd AS (UPDATE customers c SET (" INPUT_COLUMNS ") = (" INPUT_VALUES("$3") ")"
    "   FROM i, t, chk, cur WHERE c.id = cur.id AND chk.action = 'update' RETURNING c.*),"
    " ins AS (INSERT INTO customers (" INPUT_COLUMNS ")"
    "   SELECT " INPUT_VALUES("$3") " FROM i, t, chk WHERE chk.action = 'create' RETURNING *)"
    " SELECT CASE WHEN upd.id IS NOT NULL THEN 'updated' WHEN ins.id IS NOT NULL THEN 'created' ELSE chk.action END,"
    " coalesce(upd.id, ins.id), " ETAG("coalesce(upd.version, ins.version)", "d.doc") ", d.doc::text, caller.rscope"
    " FROM caller JOIN chk ON true LEFT JOIN upd ON true LEFT JOIN ins ON true"
    " LEFT JOIN LATERAL (SELECT CASE WHEN upd.id IS NOT NULL THEN customer_json(upd::customers)"
    " ELSE customer_json(ins::customers) END AS doc) d ON coalesce(upd.id, ins.id) IS NOT NULL";

static const char SQL_DELETE[] =
    "WITH " SCOPE_CALLER_CTE("customers") ","
    " cur AS (SELECT c.* FROM caller JOIN customers c ON c.id = $3 AND c.deleted_at IS NULL"
    "   AND " SCOPE_OK("rscope", "c.owner_id", "c.team_id") " FOR UPDATE OF c),"
    " chk AS (SELECT cur.id, CASE WHEN NOT " SCOPE_OK("dscope", "cur.owner_id", "cur.team_id") " THEN 'forbidden'"
    "   WHEN $4::int IS NOT NULL AND $4::int <> 0 AND $4::int <> cur.version THEN 'precondition' ELSE 'ok' END AS outcome"
    "   FROM caller, cur),"
    " del AS (UPDATE customers c SET deleted_at = now() FROM chk WHERE c.id = chk.id AND chk.outcome = 'ok'"
    "   RETURNING c.id)"
    " SELECT CASE WHEN del.id IS NOT NULL THEN 'deleted' ELSE coalesce(chk.outcome, 'not_found') END,"
    " del.id, NULL::int, NULL::text, caller.rscope FROM caller LEFT JOIN chk ON true LEFT JOIN del ON true";

/* --- bulk upsert ------------------------------------------------------------- */

/*
 * $3: a JSON array of customers, each with an external_id (checked before).
 * Every item's fate is decided first; if any item may not be written,
 * nothing is, and the statement returns the refused items instead.
 */
static const char SQL_BULK[] =
    "WITH " SCOPE_CALLER_CTE("customers") ","
    " items AS (SELECT (n - 1)::int AS idx, d FROM jsonb_array_elements($3::jsonb) WITH ORDINALITY AS x(d, n)),"
    " cur AS (SELECT items.idx, c.* FROM items JOIN customers c ON c.external_id = items.d ->> 'external_id'"
    "   AND c.deleted_at IS NULL FOR UPDATE OF c),"
    " i AS (SELECT items.idx, (jsonb_populate_record(NULL::customer_input, items.d)).* FROM items),"
    " t AS (SELECT i.idx, coalesce(i.owner_id, cur.owner_id, caller.uid) AS owner_id,"
    "   CASE WHEN i.team_id IS NOT NULL THEN i.team_id WHEN i.owner_id IS NULL AND cur.id IS NOT NULL THEN cur.team_id"
    "   ELSE (SELECT team_id FROM users WHERE id = coalesce(i.owner_id, caller.uid)) END AS team_id,"
    "   cur.id AS cur_id FROM i CROSS JOIN caller LEFT JOIN cur ON cur.idx = i.idx),"
    " chk AS (SELECT t.idx, t.cur_id, t.owner_id, t.team_id, CASE WHEN t.cur_id IS NOT NULL THEN CASE"
    "     WHEN NOT " SCOPE_OK("rscope", "cur.owner_id", "cur.team_id") " THEN 'duplicate'"
    "     WHEN NOT " SCOPE_OK("uscope", "cur.owner_id", "cur.team_id") " THEN 'forbidden'"
    "     WHEN (t.owner_id, t.team_id) IS DISTINCT FROM (cur.owner_id, cur.team_id)"
    "       AND NOT " SCOPE_MOVE_OK("uscope", "cur.team_id", "t.owner_id", "t.team_id") " THEN 'forbidden_target'"
    TARGET_CHECKS("t.owner_id", "t.team_id") "     ELSE 'update' END"
    "   ELSE CASE WHEN caller.cscope = 'none' THEN 'forbidden'"
    "     WHEN NOT " SCOPE_TARGET_OK("cscope", "t.owner_id", "t.team_id") " THEN 'forbidden_target'"
    TARGET_CHECKS("t.owner_id", "t.team_id") "     ELSE 'create' END END AS action"
    "   FROM caller CROSS JOIN t LEFT JOIN cur ON cur.idx = t.idx),"
    " bad AS (SELECT idx, action FROM chk WHERE action NOT IN ('create', 'update')),"
    " upd AS (UPDATE customers c SET (" INPUT_COLUMNS ") = (" INPUT_VALUES("i.external_id") ")"
    "   FROM i JOIN chk ON chk.idx = i.idx JOIN t ON t.idx = i.idx"
    "   WHERE c.id = chk.cur_id AND chk.action = 'update' AND NOT EXISTS (SELECT 1 FROM bad) RETURNING c.id),"
    " ins AS (INSERT INTO customers (" INPUT_COLUMNS ")"
    "   SELECT " INPUT_VALUES("i.external_id") " FROM i JOIN chk ON chk.idx = i.idx JOIN t ON t.idx = i.idx"
    "   WHERE chk.action = 'create' AND NOT EXISTS (SELECT 1 FROM bad) ORDER BY i.idx RETURNING id)"
    " SELECT caller.cscope, (SELECT count(*) FROM ins), (SELECT count(*) FROM upd),"
    " (SELECT json_agg(json_build_object('index', idx, 'outcome', action) ORDER BY idx) FROM bad)::text"
    " FROM caller";

/* --- lists ------------------------------------------------------------------ */

/*
 * $3 owner_id, $4 team_id, $5 status, $6 tag, $7 q (a LIKE pattern),
 * $8 updated_since, $9 created_after, $10 created_before, $11 cursor key,
 * $12 cursor id, $13 rows to fetch, $14 count, $15 fields, $16 segment, $17 lifecycle, $18 tier
 * (these three from the latest analytics), $19 p_alive_below (from the current CLV).
 */
#define LIST_CUSTOMER_FILTERS                                                                                          \
    " AND c.deleted_at IS NULL"                                                                                        \
    " AND ($3::bigint IS NULL OR c.owner_id = $3::bigint)"                                                             \
    " AND ($4::bigint IS NULL OR c.team_id = $4::bigint)"                                                              \
    " AND ($5::text IS NULL OR c.status = $5::text)"                                                                   \
    " AND ($6::text IS NULL OR c.tags @> ARRAY[$6::text])"                                                             \
    " AND ($7::text IS NULL OR c.name ILIKE $7::text OR c.email::text ILIKE $7::text)"                         \
    " AND ($8::timestamptz IS NULL OR c.updated_at >= $8::timestamptz)"                                                \
    " AND ($9::timestamptz IS NULL OR c.created_at > $9::timestamptz)"                                                 \
    " AND ($10::timestamptz IS NULL OR c.created_at < $10::timestamptz)"                                               \
    " AND ($16::text IS NULL AND $17::text IS NULL AND $18::text IS NULL OR EXISTS (SELECT 1 FROM customer_analytics a"  \
    " WHERE a.customer_id = c.id AND ($16::text IS NULL OR a.segment = $16::text)"                                     \
    " AND ($17::text IS NULL OR a.lifecycle = $17::text) AND ($18::text IS NULL OR a.tier = $18::text)))"

/*
 * p_alive_below, for pages: reads the CLV row by its key for each candidate
 * (a scalar subquery is never turned into a hash of every matching CLV row,
 * which would cost a scan of customer_clv per page); no row, or no p_alive,
 * compares as NULL and never matches. For the count, which visits every
 * candidate anyway, the EXISTS form lets the planner choose that hash.
 */
#define LIST_FILTERS                                                                                                   \
    LIST_CUSTOMER_FILTERS " AND ($19::float8 IS NULL"                                                                  \
    " OR (SELECT pv.p_alive FROM customer_clv pv WHERE pv.customer_id = c.id) < $19::float8)"
#define LIST_COUNT_FILTERS                                                                                             \
    LIST_CUSTOMER_FILTERS " AND ($19::float8 IS NULL OR EXISTS (SELECT 1 FROM customer_clv pv"                         \
    " WHERE pv.customer_id = c.id AND pv.p_alive < $19::float8))"

/*
 * count=true: the total, counted once per statement. The fence (OFFSET 0)
 * keeps the planner from pulling the count up into the select list, where
 * it would run again for every row of the page.
 */
#define LIST_TOTAL                                                                                                     \
    " FROM caller CROSS JOIN LATERAL (SELECT CASE WHEN $14::bool THEN (SELECT count(*) FROM customers c WHERE "        \
    SCOPE_OK("rscope", "c.owner_id", "c.team_id") LIST_COUNT_FILTERS ") END AS total OFFSET 0) t"

/* One scope's branch; only the branch matching the caller's scope runs (a one-time filter). */
#define LIST_BRANCH(cond, key, type, dir, cmp)                                                                         \
    "(SELECT c.* FROM customers c WHERE " cond LIST_FILTERS                                                            \
    CRUD_KEYSET_AFTER("c", "customers", key, type, cmp, "$11", "$12")                                                 \
    " ORDER BY c." key " " dir ", c.id " dir " LIMIT $13)"

#define LIST_SQL(key, type, dir, cmp)                                                                                  \
    "WITH " SCOPE_CALLER_CTE("customers")                                                                              \
    " SELECT caller.rscope, p.id, p.sortkey, p.doc, t.total" LIST_TOTAL                                                \
    " LEFT JOIN LATERAL (SELECT x.id, x." key "::text AS sortkey,"                                                     \
    " CASE WHEN $15::text[] IS NULL THEN customer_json(x::customers)::text"                                            \
    " ELSE (SELECT json_object_agg(e.key, e.value) FROM json_each(customer_json(x::customers)) e"                      \
    " WHERE e.key = ANY ($15::text[]))::text END AS doc FROM ("                                                        \
    LIST_BRANCH("caller.rscope = 'all'", key, type, dir, cmp) " UNION ALL "                                            \
    LIST_BRANCH("caller.rscope = 'team' AND c.team_id = caller.tid", key, type, dir, cmp) " UNION ALL "                \
    LIST_BRANCH("caller.rscope = 'own' AND c.owner_id = caller.uid", key, type, dir, cmp)                              \
    ") x ORDER BY x." key " " dir ", x.id " dir ") p ON true"

/*
 * Sorted by CLV (customer_clv.clv): customers with a value first, by value
 * and id, then those without one (no CLV row, or a row without a value)
 * by id alone, in the same direction. The two groups are two keyset walks:
 * "valued" follows customer_clv_value_idx (clv, customer_id) and stops
 * after a page; "unvalued" walks customers by id and runs only when the
 * first group left the page short (a one-time filter). A cursor's key is
 * the value, or '' for a cursor that points into the group without one.
 * Both read p_alive from the row they join instead of LIST_FILTERS'
 * subquery, which keeps the planner's estimates (and so its choice of
 * plan) close to what the walks cost; the cursor's bound is repeated on
 * the joined CLV row so that a merge join starts both sides at the cursor.
 * Cost per page: the first walk reads about one page divided by the share
 * of CLV rows that pass the scope and the filters; the second reads
 * customers by id until it has a page, so where customers without a value
 * are rare it reads many customers (each page, once).
 */
#define CLV_VALUED(cond, dir, cmp)                                                                                     \
    "(SELECT c.id, v.clv, c AS r FROM customer_clv v JOIN customers c ON c.id = v.customer_id WHERE " cond             \
    " AND v.clv IS NOT NULL AND ($19::float8 IS NULL OR v.p_alive < $19::float8)" LIST_CUSTOMER_FILTERS                \
    " AND ($11::text IS NULL OR ($11::text <> '' AND (v.clv, v.customer_id) " cmp                                      \
    " (CASE WHEN $11::text <> '' THEN $11::numeric END, $12::bigint)))"                                                \
    " ORDER BY v.clv " dir ", v.customer_id " dir " LIMIT $13)"

#define CLV_UNVALUED(cond, dir, cmp)                                                                                   \
    "(SELECT c.id, c AS r FROM customers c LEFT JOIN customer_clv nv ON nv.customer_id = c.id"                         \
    " AND ($11::text IS NULL OR $11::text <> '' OR nv.customer_id " cmp " $12::bigint)"                                \
    " WHERE " cond " AND (SELECT count(*) FROM valued) < $13"                                                          \
    " AND nv.clv IS NULL AND ($19::float8 IS NULL OR nv.p_alive < $19::float8)" LIST_CUSTOMER_FILTERS                  \
    " AND ($11::text IS NULL OR $11::text <> '' OR c.id " cmp " $12::bigint)"                                          \
    " ORDER BY c.id " dir " LIMIT $13)"

#define CLV_SCOPES(branch, dir, cmp)                                                                                   \
    branch("caller.rscope = 'all'", dir, cmp) " UNION ALL "                                                            \
    branch("caller.rscope = 'team' AND c.team_id = caller.tid", dir, cmp) " UNION ALL "                                \
    branch("caller.rscope = 'own' AND c.owner_id = caller.uid", dir, cmp)

#define LIST_CLV_SQL(dir, cmp)                                                                                         \
    "WITH " SCOPE_CALLER_CTE("customers")                                                                              \
    " SELECT caller.rscope, p.id, p.sortkey, p.doc, t.total" LIST_TOTAL                                                \
    " LEFT JOIN LATERAL (WITH valued AS (" CLV_SCOPES(CLV_VALUED, dir, cmp) "),"                                       \
    " unvalued AS (" CLV_SCOPES(CLV_UNVALUED, dir, cmp) ")"                                                            \
    " SELECT k.id, k.clv::text AS sortkey,"                                                                            \
    " CASE WHEN $15::text[] IS NULL THEN customer_json(k.r)::text"                                                     \
    " ELSE (SELECT json_object_agg(e.key, e.value) FROM json_each(customer_json(k.r)) e"                               \
    " WHERE e.key = ANY ($15::text[]))::text END AS doc"                                                               \
    " FROM (SELECT id, clv, r FROM valued UNION ALL SELECT id, NULL::numeric, r FROM unvalued) k"                      \
    " ORDER BY k.clv " dir " NULLS LAST, k.id " dir " LIMIT $13) p ON true"

static const char *const SQL_LIST[] = {
    LIST_SQL("name", "text", "ASC", ">"),              LIST_SQL("name", "text", "DESC", "<"),
    LIST_SQL("created_at", "timestamptz", "ASC", ">"), LIST_SQL("created_at", "timestamptz", "DESC", "<"),
    LIST_SQL("updated_at", "timestamptz", "ASC", ">"), LIST_SQL("updated_at", "timestamptz", "DESC", "<"),
    LIST_CLV_SQL("ASC", ">"),                          LIST_CLV_SQL("DESC", "<"),
};

const char *const customers_db_sorts[] = {"name", "created_at", "updated_at", "clv", NULL};

/* --- entry points ------------------------------------------------------------- */

#define CALLER(ar)                                                                                                     \
    char uid_[24], ver_[24];                                                                                           \
    api_caller_params(ar, uid_, ver_)

int customers_db_get(api_req_t *ar, int64_t id, crud_done_fn done, void *arg)
{
    CALLER(ar);
    char idb[24];
    const char *p[] = {uid_, ver_, db_fmt_i64(idb, id)};
    return crud_query(ar, SQL_GET, 3, p, done, arg);
}

int customers_db_create(api_req_t *ar, const char *input, crud_done_fn done, void *arg)
{
    CALLER(ar);
    const char *p[] = {uid_, ver_, input};
    return crud_query(ar, SQL_CREATE, 3, p, done, arg);
}

int customers_db_patch(api_req_t *ar, int64_t id, const char *patch, const char *if_match, crud_done_fn done,
                       void *arg)
{
    CALLER(ar);
    char idb[24];
    const char *p[] = {uid_, ver_, db_fmt_i64(idb, id), patch, if_match};
    return crud_query(ar, SQL_PATCH, 5, p, done, arg);
}

int customers_db_put_external(api_req_t *ar, const char *external_id, const char *input, const char *if_match,
                              crud_done_fn done, void *arg)
{
    CALLER(ar);
    const char *p[] = {uid_, ver_, external_id, if_match, input};
    return crud_query(ar, SQL_PUT_EXTERNAL, 5, p, done, arg);
}

int customers_db_delete(api_req_t *ar, int64_t id, const char *if_match, crud_done_fn done, void *arg)
{
    CALLER(ar);
    char idb[24];
    const char *p[] = {uid_, ver_, db_fmt_i64(idb, id), if_match};
    return crud_query(ar, SQL_DELETE, 4, p, done, arg);
}

int customers_db_bulk(api_req_t *ar, const char *items, crud_done_fn done, void *arg)
{
    CALLER(ar);
    const char *p[] = {uid_, ver_, items};
    return crud_query(ar, SQL_BULK, 3, p, done, arg);
}

int customers_db_list(api_req_t *ar, const customers_filter_t *f, const crud_list_t *list, crud_done_fn done,
                      void *arg)
{
    CALLER(ar);
    char fetch[16];
    snprintf(fetch, sizeof(fetch), "%d", list->limit + 1);
    const char *p[] = {uid_,          ver_,          f->owner_id,   f->team_id,   f->status,
                       f->tag,        f->q_pattern,  f->updated_since, f->created_after, f->created_before,
                       list->cursor_key, list->cursor_id, fetch,    list->count ? "true" : "false", list->fields,
                       f->segment, f->lifecycle, f->tier, f->p_alive_below};
    return crud_query_flags(ar, SQL_LIST[list->sort], 19, p, DB_ONESHOT, done, arg);
}
