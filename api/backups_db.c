/*
 * api/backups_db.c - all SQL behind /v1/admin/backups.
 *
 * Backups are runs of kind `backup` (schema/0018): queued like analytics
 * runs, with their outbox message in the same statement, and made by a
 * worker. The right to see and start them is the module `backups` of the
 * caller's role, reached by scope `all` only (backups have no owner or
 * team). Runs are shown through backup_run_json().
 */
#include "backups_db.h"
#include "scope.h"

/* clang-format off */
/* How many of the latest backup runs the overview shows. */
#define RUNS_SHOWN "20"

static const char SQL_OVERVIEW[] =
    "WITH " SCOPE_CALLER_CTE("backups")
    " SELECT caller.rscope,"
    " CASE WHEN caller.rscope = 'all' THEN (SELECT coalesce(json_agg(backup_run_json(r) ORDER BY r.id DESC), '[]')"
    "   FROM (SELECT * FROM analytics_runs WHERE kind = 'backup' ORDER BY id DESC LIMIT " RUNS_SHOWN ") r)::text END,"
    " CASE WHEN caller.rscope = 'all' THEN (SELECT json_build_object('cron', s.cron, 'timezone', s.timezone,"
    "   'enabled', s.enabled, 'next_run_at', iso_utc(s.next_run_at), 'last_run_id', s.last_run_id)"
    "   FROM analytics_schedules s WHERE s.kind = 'backup')::text END"
    " FROM caller";

static const char SQL_CREATE[] =
    "WITH " SCOPE_CALLER_CTE("backups") ","
    " ins AS (INSERT INTO analytics_runs (kind, params, requested_by, request_id, trace_id)"
    "   SELECT 'backup', '{}', caller.uid, $3, $4 FROM caller WHERE caller.cscope = 'all' RETURNING *),"
    " ob AS (INSERT INTO outbox (topic, payload) SELECT 'runs', json_strip_nulls(json_build_object('run_id', ins.id,"
    "   'request_id', ins.request_id, 'trace_id', ins.trace_id)) FROM ins)"
    " SELECT CASE WHEN ins.id IS NOT NULL THEN 'created' ELSE 'forbidden' END, ins.id, 1,"
    " backup_run_json(ins::analytics_runs)::text, caller.rscope FROM caller LEFT JOIN ins ON true";

/* clang-format on */

int backups_db_overview(api_req_t *ar, crud_done_fn done, void *arg)
{
    char uid[24], ver[24];
    api_caller_params(ar, uid, ver);
    const char *p[] = {uid, ver};
    return crud_query(ar, SQL_OVERVIEW, 2, p, done, arg);
}

int backups_db_create(api_req_t *ar, crud_done_fn done, void *arg)
{
    char uid[24], ver[24];
    api_caller_params(ar, uid, ver);
    const char *p[] = {uid, ver, ar->request_id, ar->trace_id[0] != '\0' ? ar->trace_id : NULL};
    return crud_query(ar, SQL_CREATE, 4, p, done, arg);
}
