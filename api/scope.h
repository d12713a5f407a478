/*
 * api/scope.h - the one definition of the caller's record scope in SQL.
 *
 * Every scoped statement starts with the CTE below, with the caller's user
 * id as $1 and the token's `ver` claim as $2. It yields one row when the
 * user exists, is active and the token is current (none otherwise: the
 * handler answers 401), carrying the caller's id, team and, per action,
 * the scope their role grants for the module (`none` when absent). Records
 * are then filtered with the SQL function in_scope() (schema/0002), so
 * pagination and counts see exactly the visible rows. The macros build
 * static SQL text at compile time; nothing here comes from a request.
 */
#ifndef CLIENTELE_API_SCOPE_H
#define CLIENTELE_API_SCOPE_H

#define SCOPE_OF(module, action) "coalesce(r.permissions #>> '{" module "," action "}', 'none')"

/* caller(uid, tid, rscope, cscope, uscope, dscope) for a module. */
#define SCOPE_CALLER_CTE(module)                                                                                       \
    "caller AS (SELECT u.id AS uid, u.team_id AS tid, " SCOPE_OF(module, "read") " AS rscope, "                       \
    SCOPE_OF(module, "create") " AS cscope, " SCOPE_OF(module, "update") " AS uscope, "                                \
    SCOPE_OF(module, "delete") " AS dscope FROM users u JOIN roles r ON r.id = u.role_id"                              \
    " WHERE u.id = $1 AND u.active AND u.token_version = $2)"

/* Is a record with (owner, team) inside the caller's scope for an action column? */
#define SCOPE_OK(scope_col, owner, team) "in_scope(caller." scope_col ", caller.uid, caller.tid, " owner ", " team ")"

/* May the caller create or move a record to (owner, team)? See schema/0008_scope_target.sql. */
#define SCOPE_TARGET_OK(scope_col, owner, team)                                                                        \
    "in_scope_target(caller." scope_col ", caller.uid, caller.tid, " owner ", " team ")"

/*
 * May the caller move a record that sat in team old_team to (owner, team)?
 * The new place must satisfy SCOPE_TARGET_OK and, unless the caller's scope
 * is `all`, no team may lose the record (schema/0012_scope_moves.sql).
 */
#define SCOPE_MOVE_OK(scope_col, old_team, owner, team)                                                                \
    "scope_move_ok(caller." scope_col ", caller.uid, caller.tid, " old_team ", " owner ", " team ")"
/* For records that follow a parent (an order moved to another customer): may old_team lose it? */
#define SCOPE_KEEPS_TEAM(scope_col, old_team, team) "scope_keeps_team(caller." scope_col ", " old_team ", " team ")"

/*
 * The write probe of bulk routes (api/http.c): the caller's create and
 * update scopes for the module in $3, one row when the caller is live and
 * the token current. It only lets the pipeline refuse a forbidden bulk
 * before parsing its body; the write's own statement still decides.
 */
#define SCOPE_WRITE_PROBE                                                                                              \
    "SELECT coalesce(r.permissions #>> ARRAY[$3::text, 'create'], 'none') AS cscope,"                                 \
    " coalesce(r.permissions #>> ARRAY[$3::text, 'update'], 'none') AS uscope"                                        \
    " FROM users u JOIN roles r ON r.id = u.role_id WHERE u.id = $1 AND u.active AND u.token_version = $2"

#endif
