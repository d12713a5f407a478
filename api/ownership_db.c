/*
 * api/ownership_db.c - the SQL behind /v1/ownership-transfers (see
 * api/ownership.h). The work is in schema/0020's functions, so that a
 * request and a worker run move records with the same statements.
 */
#include "ownership_db.h"

/* clang-format off */
/*
 * $1 user id, $2 token version, $3 request id, $4 trace id (NULL: none), $5
 * the checked input, $6 the closed-state rules, $7 the most records the
 * statement moves itself. Row: outcome, transfer id, detail, document.
 */
static const char SQL_START[] =
    "SELECT s.outcome, s.transfer_id, s.detail, s.doc::text"
    " FROM ownership_transfer_start($1::bigint, $2::integer, $3, $4, $5::jsonb, $6::jsonb, $7::bigint) s";

/*
 * A transfer is visible to the user who asked for it and to readers of
 * the user whose records it moved (users read scope). Row: live caller
 * ('t', or none at all), document or NULL.
 */
static const char SQL_GET[] =
    "WITH caller AS (SELECT u.id AS uid, u.team_id AS tid, coalesce(r.permissions #>> '{users,read}', 'none') AS rscope"
    "   FROM users u JOIN roles r ON r.id = u.role_id WHERE u.id = $1 AND u.active AND u.token_version = $2)"
    " SELECT true, CASE WHEN t.id IS NOT NULL THEN ownership_transfer_json(t)::text END"
    " FROM caller LEFT JOIN ownership_transfers t ON t.id = $3"
    "   AND (t.requested_by = caller.uid OR EXISTS (SELECT 1 FROM users f WHERE f.id = t.from_user_id"
    "   AND in_scope(caller.rscope, caller.uid, caller.tid, f.id, f.team_id)))";
/* clang-format on */

int ownership_db_start(api_req_t *ar, const char *input, const char *closed, const char *sync_max, crud_done_fn done,
                       void *arg)
{
    char uid[24], ver[24];
    api_caller_params(ar, uid, ver);
    /* The request's ids go with a worker run, so that the worker's log lines name the request too. */
    const char *p[] = {uid,   ver,    ar->request_id, ar->trace_id[0] != '\0' ? ar->trace_id : NULL,
                       input, closed, sync_max};
    return crud_query(ar, SQL_START, 7, p, done, arg);
}

int ownership_db_get(api_req_t *ar, int64_t id, crud_done_fn done, void *arg)
{
    char uid[24], ver[24], idb[24];
    api_caller_params(ar, uid, ver);
    const char *p[] = {uid, ver, db_fmt_i64(idb, id)};
    return crud_query(ar, SQL_GET, 3, p, done, arg);
}
