/*
 * api/analytics_db.c - all SQL behind /v1/analytics: runs, results, schedules.
 *
 * A run is requested by inserting it and its outbox message in one
 * statement (one transaction): the workers' relay publishes the message to
 * Redis, so a run requested while Redis is down is published when it is
 * back. Both carry the request's id and trace id (schema/0019) for the
 * worker's log lines. Results are read from customer_analytics_history joined with the
 * customers, so every count honours the caller's read scope on analytics
 * through the customers' owner and team. Runs are shown through
 * run_json_for() (schema/0013): their stored statistics cover the whole
 * population, so readers whose scope is not `all` get statistics computed
 * over their own customers instead, and no population counts. Backup runs
 * and the backup schedule share these tables but belong to /v1/admin/backups
 * (api/backups_db.c), and ownership transfer runs to /v1/ownership-transfers:
 * no statement here shows or touches them.
 */
#include <stdio.h>

#include "analytics_db.h"
#include "scope.h"

/* Runs are also the workers' queue for other work (backups, ownership transfers): analytics shows its own kinds. */
#define ANALYTICS_KIND(r) " " r ".kind IN ('rfm', 'clv')"

static const char SQL_RUN_CREATE[] =
    "WITH " SCOPE_CALLER_CTE("analytics") ","
    " ins AS (INSERT INTO analytics_runs (kind, params, requested_by, request_id, trace_id)"
    "   SELECT $3, $4::jsonb, caller.uid, $5, $6 FROM caller WHERE caller.cscope <> 'none' RETURNING *),"
    " ob AS (INSERT INTO outbox (topic, payload) SELECT 'runs', json_strip_nulls(json_build_object('run_id', ins.id,"
    "   'request_id', ins.request_id, 'trace_id', ins.trace_id)) FROM ins)"
    " SELECT CASE WHEN ins.id IS NOT NULL THEN 'created' ELSE 'forbidden' END, ins.id, 1,"
    " run_json_for(ins::analytics_runs, caller.rscope, caller.uid, caller.tid)::text, caller.rscope"
    " FROM caller LEFT JOIN ins ON true";

static const char SQL_RUN_GET[] =
    "WITH " SCOPE_CALLER_CTE("analytics")
    " SELECT caller.rscope, CASE WHEN caller.rscope <> 'none' THEN r.id END, run_json_for(r, caller.rscope,"
    " caller.uid, caller.tid)::text FROM caller LEFT JOIN analytics_runs r ON r.id = $3 AND" ANALYTICS_KIND("r");

static const char SQL_RUN_CANCEL[] =
    "WITH " SCOPE_CALLER_CTE("analytics") ","
    " cur AS (SELECT r.* FROM analytics_runs r, caller WHERE r.id = $3 AND" ANALYTICS_KIND("r")
    "   AND caller.rscope <> 'none' FOR NO KEY UPDATE OF r),"
    " upd AS (UPDATE analytics_runs r SET status = 'cancelled', finished_at = now(), updated_at = now()"
    "   FROM cur, caller WHERE r.id = cur.id AND cur.status IN ('queued', 'running') AND caller.dscope <> 'none'"
    "   RETURNING r.*)"
    " SELECT CASE WHEN upd.id IS NOT NULL THEN 'updated' WHEN cur.id IS NULL THEN 'not_found'"
    "   WHEN caller.dscope = 'none' THEN 'forbidden' ELSE 'finished' END,"
    " coalesce(upd.id, cur.id), 1, run_json_for(CASE WHEN upd.id IS NOT NULL THEN upd::analytics_runs"
    "   ELSE cur::analytics_runs END, caller.rscope, caller.uid, caller.tid)::text, caller.rscope, cur.status"
    " FROM caller LEFT JOIN cur ON true LEFT JOIN upd ON true";

/* $3 status, $4 kind, $5 cursor id (runs are listed newest first), $6 rows. */
static const char SQL_RUN_LIST[] =
    "WITH " SCOPE_CALLER_CTE("analytics")
    " SELECT caller.rscope, p.id, p.id::text, p.doc, NULL FROM caller LEFT JOIN LATERAL ("
    "   SELECT r.id, run_json_for(r, caller.rscope, caller.uid, caller.tid)::text AS doc FROM analytics_runs r"
    "   WHERE caller.rscope <> 'none' AND" ANALYTICS_KIND("r")
    "   AND ($3::text IS NULL OR r.status = $3::text) AND ($4::text IS NULL OR r.kind = $4::text)"
    "   AND ($5::bigint IS NULL OR r.id < $5::bigint) ORDER BY r.id DESC LIMIT $6) p ON true ORDER BY p.id DESC";

/* The run a summary describes: the one asked for, or the latest succeeded run of a kind. */
#define RESULT_RUN(param)                                                                                              \
    " run AS (SELECT id, status FROM analytics_runs WHERE" ANALYTICS_KIND("analytics_runs") " AND ((" param          \
    "::bigint IS NOT NULL AND id = " param "::bigint)"                                                                 \
    "   OR (" param "::bigint IS NULL AND kind = 'rfm' AND status = 'succeeded'))"                                     \
    "   ORDER BY finished_at DESC NULLS LAST, id DESC LIMIT 1),"

static const char SQL_SUMMARY[] =
    "WITH " SCOPE_CALLER_CTE("analytics") "," RESULT_RUN("$3")
    " h AS (SELECT h.* FROM caller, run JOIN customer_analytics_history h ON h.run_id = run.id"
    "   JOIN customers c ON c.id = h.customer_id AND c.deleted_at IS NULL"
    "   WHERE " SCOPE_OK("rscope", "c.owner_id", "c.team_id") "),"
    " total AS (SELECT coalesce(sum(monetary), 0.00) AS s FROM h)"
    " SELECT caller.rscope, (SELECT id FROM run), (SELECT status FROM run), json_build_object("
    "   'run_id', (SELECT id FROM run), 'customers', (SELECT count(*) FROM h),"
    "   'revenue', (SELECT s FROM total)::text,"
    "   'segments', (SELECT coalesce(json_object_agg(segment, n ORDER BY segment), '{}')"
    "     FROM (SELECT segment, count(*) AS n FROM h GROUP BY segment) x),"
    "   'lifecycles', (SELECT coalesce(json_object_agg(lifecycle, n ORDER BY lifecycle), '{}')"
    "     FROM (SELECT lifecycle, count(*) AS n FROM h GROUP BY lifecycle) x),"
    "   'tiers', (SELECT coalesce(json_object_agg(tier, json_build_object('customers', n, 'revenue', rev::text,"
    "     'revenue_share', CASE WHEN total.s > 0 THEN round(rev / total.s, 6)::text END) ORDER BY tier), '{}')"
    "     FROM (SELECT tier, count(*) AS n, sum(monetary) AS rev FROM h WHERE tier IS NOT NULL GROUP BY tier) x,"
    "     total))::text"
    " FROM caller";

/*
 * One grouped join. The caller's scope enters as values computed once
 * (InitPlans), not as a join with caller: the scan of the customers then
 * stands alone, so the server can hash it once, in parallel workers, rather
 * than once per worker behind a join with the caller.
 */
static const char SQL_TRANSITIONS[] =
    "WITH " SCOPE_CALLER_CTE("analytics") ","
    " runs AS (SELECT (SELECT status FROM analytics_runs r WHERE r.id = $3 AND" ANALYTICS_KIND("r") ") AS a,"
    " (SELECT status FROM analytics_runs r WHERE r.id = $4 AND" ANALYTICS_KIND("r") ") AS b),"
    " segs(s, o) AS (VALUES ('champions', 1), ('loyal_customers', 2), ('potential_loyalists', 3),"
    "   ('new_customers', 4), ('promising', 5), ('need_attention', 6), ('about_to_sleep', 7), ('at_risk', 8),"
    "   ('cant_lose_them', 9), ('hibernating', 10), ('prospect', 11)),"
    /* One plan per scope, each free to run in parallel (schema/0015_transitions.sql). */
    " counts AS (SELECT k.from_s, k.to_s, k.n FROM caller,"
    "   analytics_transition_counts(caller.rscope, caller.uid, caller.tid, $3::bigint, $4::bigint) k),"
    " cells AS (SELECT a.s AS from_s, a.o AS fo, b.s AS to_s, b.o AS t_o, coalesce(k.n, 0) AS n"
    "   FROM segs a CROSS JOIN segs b LEFT JOIN counts k ON k.from_s = a.s AND k.to_s = b.s)"
    " SELECT caller.rscope, runs.a, runs.b, json_build_object('from_run', $3::bigint, 'to_run', $4::bigint,"
    "   'customers', (SELECT coalesce(sum(n), 0)::bigint FROM counts),"
    "   'segments', (SELECT json_agg(s ORDER BY o) FROM segs),"
    "   'matrix', (SELECT json_object_agg(from_s, row ORDER BY fo) FROM (SELECT from_s, fo,"
    "     json_object_agg(to_s, n ORDER BY t_o) AS row FROM cells GROUP BY from_s, fo) r))::text"
    " FROM caller, runs";

static const char SQL_CUSTOMER_HISTORY[] =
    "WITH " SCOPE_CALLER_CTE("analytics")
    " SELECT caller.rscope, c.id, (SELECT coalesce(json_agg(json_build_object('run_id', h.run_id,"
    "   'computed_at', to_char(r.finished_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'),"
    "   'as_of', r.params ->> 'as_of', 'recency_days', h.recency_days, 'frequency', h.frequency,"
    "   'monetary', h.monetary::text, 'r', h.r, 'f', h.f, 'm', h.m, 'segment', h.segment,"
    "   'lifecycle', h.lifecycle, 'tier', h.tier) ORDER BY h.run_id DESC), '[]')"
    "   FROM customer_analytics_history h JOIN analytics_runs r ON r.id = h.run_id WHERE h.customer_id = c.id)::text"
    " FROM caller LEFT JOIN customers c ON c.id = $3 AND c.deleted_at IS NULL"
    " AND " SCOPE_OK("rscope", "c.owner_id", "c.team_id");

/* --- schedules ------------------------------------------------------------------ */

#define SCHEDULE_JSON(s)                                                                                               \
    "json_build_object('id', " s ".id, 'kind', " s ".kind, 'cron', " s ".cron, 'timezone', " s ".timezone,"           \
    " 'params', " s ".params, 'enabled', " s ".enabled,"                                                               \
    " 'next_run_at', to_char(" s ".next_run_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'),"              \
    " 'last_run_at', to_char(" s ".last_run_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'),"              \
    " 'last_run_id', " s ".last_run_id, 'created_by', " s ".created_by,"                                               \
    " 'created_at', to_char(" s ".created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'),"                \
    " 'updated_at', to_char(" s ".updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'),"                \
    " 'version', " s ".version)"

static const char SQL_SCHEDULE_GET[] =
    "WITH " SCOPE_CALLER_CTE("analytics")
    " SELECT caller.rscope, CASE WHEN caller.rscope <> 'none' THEN s.version END, " SCHEDULE_JSON("s") "::text"
    " FROM caller LEFT JOIN analytics_schedules s ON s.id = $3 AND s.kind <> 'backup'";

/* $3 kind, $4 cron, $5 timezone, $6 params, $7 enabled, $8 next_run_at. */
static const char SQL_SCHEDULE_CREATE[] =
    "WITH " SCOPE_CALLER_CTE("analytics") ","
    " ins AS (INSERT INTO analytics_schedules (kind, cron, timezone, params, enabled, next_run_at, created_by)"
    "   SELECT $3, $4, $5, $6::jsonb, $7::bool, $8::timestamptz, caller.uid FROM caller WHERE caller.cscope <> 'none'"
    "   RETURNING *)"
    " SELECT CASE WHEN ins.id IS NOT NULL THEN 'created' ELSE 'forbidden' END, ins.id, ins.version,"
    " " SCHEDULE_JSON("ins") "::text, caller.rscope FROM caller LEFT JOIN ins ON true";

/* $3 id, $4 version read, $5 if-match, then the new values $6.. as in create. */
static const char SQL_SCHEDULE_UPDATE[] =
    "WITH " SCOPE_CALLER_CTE("analytics") ","
    " cur AS (SELECT s.* FROM caller JOIN analytics_schedules s ON s.id = $3 AND s.kind <> 'backup'"
    "   AND caller.rscope <> 'none' FOR UPDATE OF s),"
    " chk AS (SELECT cur.id, CASE WHEN caller.uscope = 'none' THEN 'forbidden'"
    "   WHEN $5::int IS NOT NULL AND $5::int <> 0 AND $5::int <> cur.version THEN 'precondition'"
    "   WHEN cur.version <> $4::int THEN 'precondition' ELSE 'ok' END AS outcome FROM caller, cur),"
    " upd AS (UPDATE analytics_schedules s SET (kind, cron, timezone, params, enabled, next_run_at) ="
    "   ($6, $7, $8, $9::jsonb, $10::bool, $11::timestamptz) FROM chk WHERE s.id = chk.id AND chk.outcome = 'ok'"
    "   RETURNING s.*)"
    " SELECT CASE WHEN upd.id IS NOT NULL THEN 'updated' ELSE coalesce(chk.outcome, 'not_found') END,"
    " upd.id, upd.version, " SCHEDULE_JSON("upd") "::text, caller.rscope"
    " FROM caller LEFT JOIN chk ON true LEFT JOIN upd ON true";

static const char SQL_SCHEDULE_DELETE[] =
    "WITH " SCOPE_CALLER_CTE("analytics") ","
    " cur AS (SELECT s.* FROM caller JOIN analytics_schedules s ON s.id = $3 AND s.kind <> 'backup'"
    "   AND caller.rscope <> 'none' FOR UPDATE OF s),"
    " chk AS (SELECT cur.id, CASE WHEN caller.dscope = 'none' THEN 'forbidden'"
    "   WHEN $4::int IS NOT NULL AND $4::int <> 0 AND $4::int <> cur.version THEN 'precondition' ELSE 'ok' END"
    "   AS outcome FROM caller, cur),"
    " del AS (DELETE FROM analytics_schedules s USING chk WHERE s.id = chk.id AND chk.outcome = 'ok' RETURNING s.id)"
    " SELECT CASE WHEN del.id IS NOT NULL THEN 'deleted' ELSE coalesce(chk.outcome, 'not_found') END,"
    " del.id, NULL::int, NULL::text, caller.rscope FROM caller LEFT JOIN chk ON true LEFT JOIN del ON true";

static const char SQL_SCHEDULE_LIST[] =
    "WITH " SCOPE_CALLER_CTE("analytics")
    " SELECT caller.rscope, p.id, p.id::text, p.doc, NULL FROM caller LEFT JOIN LATERAL ("
    "   SELECT s.id, " SCHEDULE_JSON("s") "::text AS doc FROM analytics_schedules s WHERE caller.rscope <> 'none'"
    "   AND s.kind <> 'backup'"
    "   AND ($3::bigint IS NULL OR s.id > $3::bigint) ORDER BY s.id LIMIT $4) p ON true ORDER BY p.id";

/* --- entry points --------------------------------------------------------------- */

#define CALLER(ar)                                                                                                     \
    char uid_[24], ver_[24];                                                                                           \
    api_caller_params(ar, uid_, ver_)

int analytics_db_run_create(api_req_t *ar, const char *kind, const char *params, crud_done_fn done, void *arg)
{
    CALLER(ar);
    /* The request's ids go with the run, so that the worker's log lines name the request too. */
    const char *p[] = {uid_, ver_, kind, params, ar->request_id, ar->trace_id[0] != '\0' ? ar->trace_id : NULL};
    return crud_query(ar, SQL_RUN_CREATE, 6, p, done, arg);
}

int analytics_db_run_get(api_req_t *ar, int64_t id, crud_done_fn done, void *arg)
{
    CALLER(ar);
    char idb[24];
    const char *p[] = {uid_, ver_, db_fmt_i64(idb, id)};
    return crud_query(ar, SQL_RUN_GET, 3, p, done, arg);
}

int analytics_db_run_cancel(api_req_t *ar, int64_t id, crud_done_fn done, void *arg)
{
    CALLER(ar);
    char idb[24];
    const char *p[] = {uid_, ver_, db_fmt_i64(idb, id)};
    return crud_query(ar, SQL_RUN_CANCEL, 3, p, done, arg);
}

int analytics_db_run_list(api_req_t *ar, const char *status, const char *kind, const char *after, int rows,
                          crud_done_fn done, void *arg)
{
    CALLER(ar);
    char n[16];
    snprintf(n, sizeof(n), "%d", rows);
    const char *p[] = {uid_, ver_, status, kind, after, n};
    return crud_query_flags(ar, SQL_RUN_LIST, 6, p, DB_ONESHOT, done, arg);
}

int analytics_db_summary(api_req_t *ar, const char *run_id, crud_done_fn done, void *arg)
{
    CALLER(ar);
    const char *p[] = {uid_, ver_, run_id};
    return crud_query(ar, SQL_SUMMARY, 3, p, done, arg);
}

int analytics_db_transitions(api_req_t *ar, const char *from_run, const char *to_run, crud_done_fn done, void *arg)
{
    CALLER(ar);
    const char *p[] = {uid_, ver_, from_run, to_run};
    return crud_query(ar, SQL_TRANSITIONS, 4, p, done, arg);
}

int analytics_db_customer_history(api_req_t *ar, int64_t customer_id, crud_done_fn done, void *arg)
{
    CALLER(ar);
    char idb[24];
    const char *p[] = {uid_, ver_, db_fmt_i64(idb, customer_id)};
    return crud_query(ar, SQL_CUSTOMER_HISTORY, 3, p, done, arg);
}

int analytics_db_schedule_get(api_req_t *ar, int64_t id, crud_done_fn done, void *arg)
{
    CALLER(ar);
    char idb[24];
    const char *p[] = {uid_, ver_, db_fmt_i64(idb, id)};
    return crud_query(ar, SQL_SCHEDULE_GET, 3, p, done, arg);
}

int analytics_db_schedule_create(api_req_t *ar, const analytics_schedule_t *s, crud_done_fn done, void *arg)
{
    CALLER(ar);
    const char *p[] = {uid_, ver_, s->kind, s->cron, s->timezone, s->params, s->enabled, s->next_run_at};
    return crud_query(ar, SQL_SCHEDULE_CREATE, 8, p, done, arg);
}

int analytics_db_schedule_update(api_req_t *ar, int64_t id, int64_t version_read, const char *if_match,
                                 const analytics_schedule_t *s, crud_done_fn done, void *arg)
{
    CALLER(ar);
    char idb[24], vb[24];
    const char *p[] = {uid_,    ver_,   db_fmt_i64(idb, id), db_fmt_i64(vb, version_read), if_match, s->kind,
                       s->cron, s->timezone, s->params,      s->enabled,                   s->next_run_at};
    return crud_query(ar, SQL_SCHEDULE_UPDATE, 11, p, done, arg);
}

int analytics_db_schedule_delete(api_req_t *ar, int64_t id, const char *if_match, crud_done_fn done, void *arg)
{
    CALLER(ar);
    char idb[24];
    const char *p[] = {uid_, ver_, db_fmt_i64(idb, id), if_match};
    return crud_query(ar, SQL_SCHEDULE_DELETE, 4, p, done, arg);
}

int analytics_db_schedule_list(api_req_t *ar, const char *after, int rows, crud_done_fn done, void *arg)
{
    CALLER(ar);
    char n[16];
    snprintf(n, sizeof(n), "%d", rows);
    const char *p[] = {uid_, ver_, after, n};
    return crud_query(ar, SQL_SCHEDULE_LIST, 4, p, done, arg);
}
