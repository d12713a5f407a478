/*
 * worker/scheduler_db.c - all SQL of the scheduler: due schedules, and enqueuing one due run.
 *
 * Times travel as RFC 3339 text into the statements and as microseconds
 * since the epoch out of them, so a due time read is written back exactly
 * (the guard "next_run_at = due" compares it to the microsecond). Every
 * write is guarded by the schedule's version as read, so an edit made by
 * the API in between turns the write into a no-op and the next pass reads
 * the schedule again.
 */
#include "scheduler.h"

static const char SQL_DUE[] =
    "SELECT id, kind, cron, timezone, params::text,"
    " (extract(epoch FROM next_run_at) * 1000000)::bigint, version,"
    " (extract(epoch FROM now()) * 1000000)::bigint"
    " FROM analytics_schedules"
    " WHERE enabled AND (next_run_at IS NULL OR next_run_at <= now()) AND id > $1::bigint"
    " ORDER BY id LIMIT $2::int";

/* $1 id, $2 version, $3 next_run_at. */
static const char SQL_INIT_NEXT[] =
    "UPDATE analytics_schedules SET next_run_at = $3::timestamptz"
    " WHERE id = $1::bigint AND version = $2::int AND next_run_at IS NULL";

/*
 * $1 id, $2 version, $3 kind, $4 params, $5 due_at, $6 next_run_at. Two
 * leaders at once: the second insert waits on the unique index and does
 * nothing, and the second update re-checks its WHERE on the row the first
 * one wrote (version and next_run_at changed) and does nothing either.
 */
static const char SQL_ENQUEUE[] =
    "WITH s AS ("
    "   SELECT id, created_by FROM analytics_schedules"
    "   WHERE id = $1::bigint AND version = $2::int AND enabled AND kind = $3::text"
    "   AND next_run_at = $5::timestamptz),"
    " ins AS ("
    "   INSERT INTO analytics_runs (kind, params, requested_by, schedule_id, due_at)"
    "   SELECT $3::text, $4::jsonb, s.created_by, s.id, $5::timestamptz FROM s"
    "   ON CONFLICT (schedule_id, due_at) WHERE schedule_id IS NOT NULL DO NOTHING"
    "   RETURNING id),"
    " box AS ("
    "   INSERT INTO outbox (topic, payload) SELECT 'runs', jsonb_build_object('run_id', ins.id) FROM ins),"
    " upd AS ("
    "   UPDATE analytics_schedules t SET last_run_at = $5::timestamptz,"
    "   last_run_id = coalesce((SELECT id FROM ins),"
    "     (SELECT r.id FROM analytics_runs r WHERE r.schedule_id = $1::bigint AND r.due_at = $5::timestamptz),"
    "     t.last_run_id),"
    "   next_run_at = $6::timestamptz"
    "   WHERE t.id = $1::bigint AND t.version = $2::int AND t.enabled AND t.kind = $3::text"
    "   AND t.next_run_at = $5::timestamptz"
    "   RETURNING t.id)"
    " SELECT (SELECT id FROM ins), EXISTS (SELECT 1 FROM upd)";

/* $1 cron, $2 timezone. Leaves the row alone (and its version) when it already says so. */
static const char SQL_BACKUP_ON[] =
    "INSERT INTO analytics_schedules (kind, cron, timezone, params, enabled) VALUES ('backup', $1, $2, '{}', true)"
    " ON CONFLICT (kind) WHERE kind = 'backup' DO UPDATE SET cron = EXCLUDED.cron, timezone = EXCLUDED.timezone,"
    " params = '{}', enabled = true, next_run_at = NULL"
    " WHERE (analytics_schedules.cron, analytics_schedules.timezone, analytics_schedules.params,"
    " analytics_schedules.enabled) IS DISTINCT FROM (EXCLUDED.cron, EXCLUDED.timezone, '{}'::jsonb, true)"
    " RETURNING id";
static const char SQL_BACKUP_OFF[] =
    "UPDATE analytics_schedules SET enabled = false WHERE kind = 'backup' AND enabled RETURNING id";

int wk_scheduler_db__sync_backup(db_t *db, const char *cron, const char *timezone, db_cb cb, void *data)
{
    if (cron == NULL)
        return db_query(db, SQL_BACKUP_OFF, 0, NULL, cb, data);
    const char *p[] = {cron, timezone};
    return db_query(db, SQL_BACKUP_ON, 2, p, cb, data);
}

int wk_scheduler_db__due(db_t *db, int64_t after_id, int limit, db_cb cb, void *data)
{
    char idbuf[24], limbuf[24];
    const char *params[] = {db_fmt_i64(idbuf, after_id), db_fmt_i64(limbuf, limit)};
    return db_query(db, SQL_DUE, 2, params, cb, data);
}

int wk_scheduler_db__init_next(db_t *db, int64_t id, int64_t version, const char *next_run_at, db_cb cb, void *data)
{
    char idbuf[24], verbuf[24];
    const char *params[] = {db_fmt_i64(idbuf, id), db_fmt_i64(verbuf, version), next_run_at};
    return db_query(db, SQL_INIT_NEXT, 3, params, cb, data);
}

int wk_scheduler_db__enqueue(db_t *db, int64_t id, int64_t version, const char *kind, const char *params,
                             const char *due_at, const char *next_run_at, db_cb cb, void *data)
{
    char idbuf[24], verbuf[24];
    const char *p[] = {db_fmt_i64(idbuf, id), db_fmt_i64(verbuf, version), kind, params, due_at, next_run_at};
    return db_query(db, SQL_ENQUEUE, 6, p, cb, data);
}
