/*
 * api/admin_db.c - all SQL behind /v1/users, /v1/teams and /v1/roles.
 *
 * Every statement is scoped like customers_db.c: it starts with the caller
 * CTE of api/scope.h ($1 user id, $2 token version) for its module and
 * decides visibility and permission in the same statement that reads or
 * writes, so every write is one statement, hence one transaction. Results
 * use the standard columns of api/crud.h; documents come from user_json,
 * team_json and role_json (schema/0007).
 *
 * Scopes: a user record is owned by the user itself and belongs to its
 * team. A team belongs to itself and has no owner, so "team" reaches the
 * caller's own team and "own" reaches nothing. A role has neither owner nor
 * team: only "all" reaches roles.
 *
 * Cutting off sessions is a schema-level invariant (schema/0007 triggers):
 * the UPDATE that deactivates a user or changes their password, role or
 * team bumps token_version, which every scoped statement compares with the
 * token's `ver`, and deactivation or a new password revokes the user's
 * refresh tokens, all inside the writing statement.
 */
#include <stdio.h>
#include <string.h>

#include "admin_db.h"
#include "ownership.h"
#include "resources.h"
#include "scope.h"

/* A team is in scope through its own id; a role only through "all". */
#define TEAM_OK(scope_col, team) SCOPE_OK(scope_col, "NULL::bigint", team)
#define ROLE_OK(scope_col) SCOPE_OK(scope_col, "NULL::bigint", "NULL::bigint")

/* A document, or only the members named by the text[] parameter `fields` (NULL: all). */
#define DOC(fn, row, fields)                                                                                           \
    " CASE WHEN " fields "::text[] IS NULL THEN " fn "(" row ")::text"                                                 \
    " ELSE (SELECT json_object_agg(e.key, e.value) FROM json_each(" fn "(" row ")) e"                                  \
    " WHERE e.key = ANY (" fields "::text[]))::text END"

/* --- teams ----------------------------------------------------------------------- */

static const char SQL_TEAMS_GET[] =
    "WITH " SCOPE_CALLER_CTE("teams")
    " SELECT caller.rscope, t.version, team_json(t)::text"
    " FROM caller LEFT JOIN teams t ON t.id = $3 AND " TEAM_OK("rscope", "t.id");

static const char SQL_TEAMS_CREATE[] =
    "WITH " SCOPE_CALLER_CTE("teams") ","
    " chk AS (SELECT CASE WHEN NOT " TEAM_OK("cscope", "NULL::bigint") " THEN 'forbidden' ELSE 'ok' END AS outcome"
    "   FROM caller),"
    " ins AS (INSERT INTO teams (name) SELECT $3::jsonb ->> 'name' FROM chk WHERE chk.outcome = 'ok' RETURNING *)"
    " SELECT CASE WHEN ins.id IS NOT NULL THEN 'created' ELSE chk.outcome END, ins.id, ins.version,"
    " team_json(ins::teams)::text, caller.rscope"
    " FROM caller JOIN chk ON true LEFT JOIN ins ON true";

static const char SQL_TEAMS_PATCH[] =
    "WITH " SCOPE_CALLER_CTE("teams") ","
    " cur AS (SELECT t.* FROM caller JOIN teams t ON t.id = $3 AND " TEAM_OK("rscope", "t.id") " FOR UPDATE OF t),"
    " m AS (SELECT cur.id, cur.version, jsonb_merge_patch(jsonb_build_object('name', cur.name), $4::jsonb) AS d"
    "   FROM cur),"
    " chk AS (SELECT m.id, CASE WHEN NOT " TEAM_OK("uscope", "m.id") " THEN 'forbidden'"
    "   WHEN $5::int IS NOT NULL AND $5::int <> 0 AND $5::int <> m.version THEN 'precondition' ELSE 'ok' END AS outcome"
    "   FROM caller, m),"
    " upd AS (UPDATE teams t SET name = m.d ->> 'name' FROM m, chk WHERE t.id = chk.id AND chk.outcome = 'ok'"
    "   RETURNING t.*)"
    " SELECT CASE WHEN upd.id IS NOT NULL THEN 'updated' ELSE coalesce(chk.outcome, 'not_found') END,"
    " upd.id, upd.version, team_json(upd::teams)::text, caller.rscope"
    " FROM caller LEFT JOIN chk ON true LEFT JOIN upd ON true";

/*
 * A team still holding users or live customers is in use. Deleted
 * customers keep no team: they are detached in the same statement, so that
 * history cannot pin a team forever.
 */
static const char SQL_TEAMS_DELETE[] =
    "WITH " SCOPE_CALLER_CTE("teams") ","
    " cur AS (SELECT t.* FROM caller JOIN teams t ON t.id = $3 AND " TEAM_OK("rscope", "t.id") " FOR UPDATE OF t),"
    " chk AS (SELECT cur.id, CASE WHEN NOT " TEAM_OK("dscope", "cur.id") " THEN 'forbidden'"
    "   WHEN $4::int IS NOT NULL AND $4::int <> 0 AND $4::int <> cur.version THEN 'precondition'"
    "   WHEN EXISTS (SELECT 1 FROM users u WHERE u.team_id = cur.id)"
    "     OR EXISTS (SELECT 1 FROM customers c WHERE c.team_id = cur.id AND c.deleted_at IS NULL) THEN 'in_use'"
    "   ELSE 'ok' END AS outcome FROM caller, cur),"
    " det AS (UPDATE customers c SET team_id = NULL FROM chk"
    "   WHERE c.team_id = chk.id AND c.deleted_at IS NOT NULL AND chk.outcome = 'ok' RETURNING c.id),"
    " del AS (DELETE FROM teams t USING chk WHERE t.id = chk.id AND chk.outcome = 'ok' RETURNING t.id)"
    " SELECT CASE WHEN del.id IS NOT NULL THEN 'deleted' ELSE coalesce(chk.outcome, 'not_found') END,"
    " del.id, NULL::int, NULL::text, caller.rscope FROM caller LEFT JOIN chk ON true LEFT JOIN del ON true";

/* $3 cursor key, $4 cursor id, $5 rows to fetch, $6 count, $7 fields. */
#define TEAMS_LIST_SQL(dir, cmp)                                                                                       \
    "WITH " SCOPE_CALLER_CTE("teams")                                                                                  \
    " SELECT caller.rscope, p.id, p.sortkey, p.doc,"                                                                   \
    " CASE WHEN $6::bool THEN (SELECT count(*) FROM teams t WHERE " TEAM_OK("rscope", "t.id") ") END"                  \
    " FROM caller LEFT JOIN LATERAL (SELECT t.id, t.name AS sortkey," DOC("team_json", "t", "$7") " AS doc"           \
    " FROM teams t WHERE " TEAM_OK("rscope", "t.id")                                                                   \
    CRUD_KEYSET_AFTER("t", "teams", "name", "text", cmp, "$3", "$4")                                                  \
    " ORDER BY t.name " dir ", t.id " dir " LIMIT $5) p ON true"

static const char *const SQL_TEAMS_LIST[] = {TEAMS_LIST_SQL("ASC", ">"), TEAMS_LIST_SQL("DESC", "<")};

/* --- roles ----------------------------------------------------------------------- */

static const char SQL_ROLES_GET[] =
    "WITH " SCOPE_CALLER_CTE("roles")
    " SELECT caller.rscope, r.version, role_json(r)::text"
    " FROM caller LEFT JOIN roles r ON r.id = $3 AND " ROLE_OK("rscope");

static const char SQL_ROLES_CREATE[] =
    "WITH " SCOPE_CALLER_CTE("roles") ","
    " chk AS (SELECT CASE WHEN NOT " ROLE_OK("cscope") " THEN 'forbidden' ELSE 'ok' END AS outcome FROM caller),"
    " ins AS (INSERT INTO roles (name, description, permissions)"
    "   SELECT $3::jsonb ->> 'name', coalesce($3::jsonb ->> 'description', ''), $3::jsonb -> 'permissions'"
    "   FROM chk WHERE chk.outcome = 'ok' RETURNING *)"
    " SELECT CASE WHEN ins.id IS NOT NULL THEN 'created' ELSE chk.outcome END, ins.id, ins.version,"
    " role_json(ins::roles)::text, caller.rscope"
    " FROM caller JOIN chk ON true LEFT JOIN ins ON true";

/* Built-in roles keep their names (code and seed data refer to them); their permissions may change. */
static const char SQL_ROLES_PATCH[] =
    "WITH " SCOPE_CALLER_CTE("roles") ","
    " cur AS (SELECT r.* FROM caller JOIN roles r ON r.id = $3 AND " ROLE_OK("rscope") " FOR UPDATE OF r),"
    " m AS (SELECT cur.id, cur.version, cur.name AS old_name, cur.builtin, jsonb_merge_patch(jsonb_build_object("
    "   'name', cur.name, 'description', cur.description, 'permissions', cur.permissions), $4::jsonb) AS d FROM cur),"
    " chk AS (SELECT m.id, CASE WHEN NOT " ROLE_OK("uscope") " THEN 'forbidden'"
    "   WHEN $5::int IS NOT NULL AND $5::int <> 0 AND $5::int <> m.version THEN 'precondition'"
    "   WHEN m.builtin AND m.d ->> 'name' <> m.old_name THEN 'builtin_role'"
    "   ELSE 'ok' END AS outcome FROM caller, m),"
    " upd AS (UPDATE roles r SET (name, description, permissions) = (m.d ->> 'name', m.d ->> 'description',"
    "   m.d -> 'permissions') FROM m, chk WHERE r.id = chk.id AND chk.outcome = 'ok' RETURNING r.*)"
    " SELECT CASE WHEN upd.id IS NOT NULL THEN 'updated' ELSE coalesce(chk.outcome, 'not_found') END,"
    " upd.id, upd.version, role_json(upd::roles)::text, caller.rscope"
    " FROM caller LEFT JOIN chk ON true LEFT JOIN upd ON true";

/* A role held by any user, active or not, is in use (users.role_id is NOT NULL). */
static const char SQL_ROLES_DELETE[] =
    "WITH " SCOPE_CALLER_CTE("roles") ","
    " cur AS (SELECT r.* FROM caller JOIN roles r ON r.id = $3 AND " ROLE_OK("rscope") " FOR UPDATE OF r),"
    " chk AS (SELECT cur.id, CASE WHEN NOT " ROLE_OK("dscope") " THEN 'forbidden'"
    "   WHEN $4::int IS NOT NULL AND $4::int <> 0 AND $4::int <> cur.version THEN 'precondition'"
    "   WHEN cur.builtin THEN 'builtin_role'"
    "   WHEN EXISTS (SELECT 1 FROM users u WHERE u.role_id = cur.id) THEN 'in_use'"
    "   ELSE 'ok' END AS outcome FROM caller, cur),"
    " del AS (DELETE FROM roles r USING chk WHERE r.id = chk.id AND chk.outcome = 'ok' RETURNING r.id)"
    " SELECT CASE WHEN del.id IS NOT NULL THEN 'deleted' ELSE coalesce(chk.outcome, 'not_found') END,"
    " del.id, NULL::int, NULL::text, caller.rscope FROM caller LEFT JOIN chk ON true LEFT JOIN del ON true";

#define ROLES_LIST_SQL(dir, cmp)                                                                                       \
    "WITH " SCOPE_CALLER_CTE("roles")                                                                                  \
    " SELECT caller.rscope, p.id, p.sortkey, p.doc,"                                                                   \
    " CASE WHEN $6::bool THEN (SELECT count(*) FROM roles r WHERE " ROLE_OK("rscope") ") END"                          \
    " FROM caller LEFT JOIN LATERAL (SELECT r.id, r.name AS sortkey," DOC("role_json", "r", "$7") " AS doc"            \
    " FROM roles r WHERE " ROLE_OK("rscope")                                                                           \
    CRUD_KEYSET_AFTER("r", "roles", "name", "text", cmp, "$3", "$4")                                                  \
    " ORDER BY r.name " dir ", r.id " dir " LIMIT $5) p ON true"

static const char *const SQL_ROLES_LIST[] = {ROLES_LIST_SQL("ASC", ">"), ROLES_LIST_SQL("DESC", "<")};

const char *const admin_db_named_sorts[] = {"name", NULL};

/* --- users ----------------------------------------------------------------------- */

/*
 * The caller CTE plus the caller's own permissions (me.perms). Someone who
 * may not edit every role (roles.update below "all") may only create,
 * change or deactivate users whose old and new roles reach no further than
 * their own role (permissions_cover); someone who may edit every role
 * could give themselves any right anyway (me.grants_any).
 */
#define USERS_CALLER                                                                                                   \
    "WITH " SCOPE_CALLER_CTE("users") ","                                                                              \
    " me AS (SELECT r.permissions AS perms,"                                                                           \
    "   coalesce(r.permissions #>> '{roles,update}', 'none') = 'all' AS grants_any"                                    \
    "   FROM caller JOIN users u ON u.id = caller.uid JOIN roles r ON r.id = u.role_id),"
#define MAY_MANAGE(perms) "(me.grants_any OR permissions_cover(me.perms, " perms "))"

static const char SQL_USERS_SCOPE[] =
    "WITH " SCOPE_CALLER_CTE("users") " SELECT caller.rscope, caller.cscope, caller.uscope, caller.dscope FROM caller";

/* A user read by id also shows how many live records they own, per owned resource named in $4 (text[]). */
static const char SQL_USERS_GET[] =
    "WITH " SCOPE_CALLER_CTE("users")
    " SELECT caller.rscope, u.version, CASE WHEN u.id IS NOT NULL THEN (user_json(u)::jsonb"
    " || jsonb_build_object('owned_records', owned_record_counts(u.id, $4::text[])))::text END"
    " FROM caller LEFT JOIN users u ON u.id = $3 AND " SCOPE_OK("rscope", "u.id", "u.team_id");

/* The role must exist and the team, when given, too. */
#define USER_TARGET_CHECKS                                                                                             \
    "   WHEN NOT EXISTS (SELECT 1 FROM r) THEN 'invalid_role'"                                                         \
    "   WHEN i.team_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM teams WHERE id = i.team_id) THEN 'invalid_team_id'"

/* $3 the user without password, $4 the password hash. A new user has no id yet: only its team is judged. */
static const char SQL_USERS_CREATE[] =
    USERS_CALLER
    " i AS (SELECT $3::jsonb ->> 'email' AS email, $3::jsonb ->> 'name' AS name, $3::jsonb ->> 'role' AS role,"
    "   ($3::jsonb ->> 'team_id')::bigint AS team_id, coalesce(($3::jsonb ->> 'active')::boolean, true) AS active),"
    " r AS (SELECT roles.id, roles.permissions FROM roles JOIN i ON roles.name = i.role),"
    " chk AS (SELECT CASE WHEN caller.cscope = 'none' THEN 'forbidden'"
    "   WHEN NOT " SCOPE_OK("cscope", "NULL::bigint", "i.team_id") " THEN 'forbidden_target'"
    USER_TARGET_CHECKS
    "   WHEN NOT " MAY_MANAGE("(SELECT permissions FROM r)") " THEN 'forbidden_role'"
    "   ELSE 'ok' END AS outcome FROM caller, me, i),"
    " ins AS (INSERT INTO users (email, name, password_hash, role_id, team_id, active)"
    "   SELECT i.email, i.name, $4, r.id, i.team_id, i.active FROM i, r, chk WHERE chk.outcome = 'ok' RETURNING *)"
    " SELECT CASE WHEN ins.id IS NOT NULL THEN 'created' ELSE chk.outcome END, ins.id, ins.version,"
    " user_json(ins::users)::text, caller.rscope"
    " FROM caller JOIN chk ON true LEFT JOIN ins ON true";

/*
 * $3 id, $4 merge patch (without password), $5 If-Match version, $6 a new
 * password hash or NULL. Callers may not deactivate themselves or change
 * their own role (self_lockout): that is how the last administrator would
 * lock everyone out.
 */
static const char SQL_USERS_PATCH[] =
    USERS_CALLER
    " cur AS (SELECT u.* FROM caller JOIN users u ON u.id = $3 AND " SCOPE_OK("rscope", "u.id", "u.team_id")
    "   FOR UPDATE OF u),"
    " m AS (SELECT cur.id, cur.version, cur.team_id AS old_team, cur.role_id AS old_role,"
    "   jsonb_merge_patch(user_input_json(cur), $4::jsonb) AS d FROM cur),"
    " i AS (SELECT m.d ->> 'email' AS email, m.d ->> 'name' AS name, m.d ->> 'role' AS role,"
    "   (m.d ->> 'team_id')::bigint AS team_id, (m.d ->> 'active')::boolean AS active FROM m),"
    " r AS (SELECT roles.id, roles.permissions FROM roles JOIN i ON roles.name = i.role),"
    " chk AS (SELECT m.id, CASE"
    "   WHEN NOT " SCOPE_OK("uscope", "m.id", "m.old_team") " THEN 'forbidden'"
    "   WHEN NOT " SCOPE_OK("uscope", "m.id", "i.team_id") " THEN 'forbidden_target'"
    "   WHEN $5::int IS NOT NULL AND $5::int <> 0 AND $5::int <> m.version THEN 'precondition'"
    USER_TARGET_CHECKS
    "   WHEN NOT (" MAY_MANAGE("(SELECT permissions FROM roles WHERE id = m.old_role)")
    "     AND " MAY_MANAGE("(SELECT permissions FROM r)") ") THEN 'forbidden_role'"
    "   WHEN m.id = caller.uid AND (NOT i.active OR (SELECT id FROM r) <> m.old_role) THEN 'self_lockout'"
    "   ELSE 'ok' END AS outcome FROM caller, me, m, i),"
    " upd AS (UPDATE users u SET (email, name, role_id, team_id, active, password_hash) ="
    "   (i.email, i.name, r.id, i.team_id, i.active, coalesce($6::text, u.password_hash))"
    "   FROM i, r, chk WHERE u.id = chk.id AND chk.outcome = 'ok' RETURNING u.*)"
    " SELECT CASE WHEN upd.id IS NOT NULL THEN 'updated' ELSE coalesce(chk.outcome, 'not_found') END,"
    " upd.id, upd.version, user_json(upd::users)::text, caller.rscope"
    " FROM caller LEFT JOIN chk ON true LEFT JOIN upd ON true";

/*
 * Deleting a user deactivates it (records keep their owner) and revokes
 * every refresh token it holds; the trigger bumps token_version. Deleting
 * an inactive user again is a no-op that still answers deleted.
 */
static const char SQL_USERS_DELETE[] =
    USERS_CALLER
    " cur AS (SELECT u.* FROM caller JOIN users u ON u.id = $3 AND " SCOPE_OK("rscope", "u.id", "u.team_id")
    "   FOR UPDATE OF u),"
    " chk AS (SELECT cur.id, CASE WHEN NOT " SCOPE_OK("dscope", "cur.id", "cur.team_id") " THEN 'forbidden'"
    "   WHEN $4::int IS NOT NULL AND $4::int <> 0 AND $4::int <> cur.version THEN 'precondition'"
    "   WHEN NOT " MAY_MANAGE("(SELECT permissions FROM roles WHERE id = cur.role_id)") " THEN 'forbidden_role'"
    "   WHEN cur.id = caller.uid THEN 'self_lockout'"
    "   ELSE 'ok' END AS outcome FROM caller, me, cur),"
    " off AS (UPDATE users u SET active = false FROM chk"
    "   WHERE u.id = chk.id AND chk.outcome = 'ok' AND u.active RETURNING u.id),"
    " rev AS (UPDATE refresh_tokens t SET revoked_at = now() FROM chk"
    "   WHERE t.user_id = chk.id AND chk.outcome = 'ok' AND t.revoked_at IS NULL RETURNING t.id)"
    " SELECT CASE WHEN chk.outcome = 'ok' THEN 'deleted' ELSE coalesce(chk.outcome, 'not_found') END,"
    " chk.id, NULL::int, NULL::text, caller.rscope FROM caller LEFT JOIN chk ON true";

/*
 * $3 team_id, $4 role name, $5 active, $6 q (a LIKE pattern), $7 cursor
 * key, $8 cursor id, $9 rows to fetch, $10 count, $11 fields.
 */
#define USERS_FILTERS                                                                                                  \
    " AND ($3::bigint IS NULL OR u.team_id = $3::bigint)"                                                              \
    " AND ($4::text IS NULL OR u.role_id = (SELECT id FROM roles WHERE name = $4::text))"                              \
    " AND ($5::bool IS NULL OR u.active = $5::bool)"                                                                   \
    " AND ($6::text IS NULL OR (u.name || ' ' || u.email::text) ILIKE $6::text)"

/* One scope's branch; only the branch matching the caller's scope runs (a one-time filter). */
#define USERS_BRANCH(cond, key, type, dir, cmp)                                                                        \
    "(SELECT u.* FROM users u WHERE " cond USERS_FILTERS                                                               \
    CRUD_KEYSET_AFTER("u", "users", key, type, cmp, "$7", "$8")                                                       \
    " ORDER BY u." key " " dir ", u.id " dir " LIMIT $9)"

#define USERS_LIST_SQL(key, type, dir, cmp)                                                                            \
    "WITH " SCOPE_CALLER_CTE("users")                                                                                  \
    " SELECT caller.rscope, p.id, p.sortkey, p.doc,"                                                                   \
    " CASE WHEN $10::bool THEN (SELECT count(*) FROM users u WHERE "                                                   \
    SCOPE_OK("rscope", "u.id", "u.team_id") USERS_FILTERS ") END"                                                      \
    " FROM caller LEFT JOIN LATERAL (SELECT x.id, x." key "::text AS sortkey,"                                        \
    DOC("user_json", "x::users", "$11") " AS doc FROM ("                                                               \
    USERS_BRANCH("caller.rscope = 'all'", key, type, dir, cmp) " UNION ALL "                                           \
    USERS_BRANCH("caller.rscope = 'team' AND u.team_id = caller.tid", key, type, dir, cmp) " UNION ALL "               \
    USERS_BRANCH("caller.rscope = 'own' AND u.id = caller.uid", key, type, dir, cmp)                                   \
    ") x ORDER BY x." key " " dir ", x.id " dir ") p ON true"

static const char *const SQL_USERS_LIST[] = {
    USERS_LIST_SQL("email", "citext", "ASC", ">"),           USERS_LIST_SQL("email", "citext", "DESC", "<"),
    USERS_LIST_SQL("created_at", "timestamptz", "ASC", ">"), USERS_LIST_SQL("created_at", "timestamptz", "DESC", "<"),
};

const char *const admin_db_users_sorts[] = {"email", "created_at", NULL};

/* --- entry points ------------------------------------------------------------------ */

#define CALLER(ar)                                                                                                     \
    char uid_[24], ver_[24];                                                                                           \
    api_caller_params(ar, uid_, ver_)

int admin_db_is_duplicate(const PGresult *res)
{
    const char *st = res != NULL ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    return st != NULL && strcmp(st, "23505") == 0;
}

/* The three shapes every resource shares: read one, write with input, write by id. */
static int get_one(api_req_t *ar, const char *sql, int64_t id, crud_done_fn done, void *arg)
{
    CALLER(ar);
    char idb[24];
    const char *p[] = {uid_, ver_, db_fmt_i64(idb, id)};
    return crud_query(ar, sql, 3, p, done, arg);
}

static int by_id(api_req_t *ar, const char *sql, int64_t id, const char *if_match, crud_done_fn done, void *arg)
{
    CALLER(ar);
    char idb[24];
    const char *p[] = {uid_, ver_, db_fmt_i64(idb, id), if_match};
    return crud_query(ar, sql, 4, p, done, arg);
}

static int patch_one(api_req_t *ar, const char *sql, int64_t id, const char *patch, const char *if_match,
                     crud_done_fn done, void *arg)
{
    CALLER(ar);
    char idb[24];
    const char *p[] = {uid_, ver_, db_fmt_i64(idb, id), patch, if_match};
    return crud_query(ar, sql, 5, p, done, arg);
}

static int create_one(api_req_t *ar, const char *sql, const char *input, crud_done_fn done, void *arg)
{
    CALLER(ar);
    const char *p[] = {uid_, ver_, input};
    return crud_query(ar, sql, 3, p, done, arg);
}

static int list_named(api_req_t *ar, const char *sql, const crud_list_t *list, crud_done_fn done, void *arg)
{
    CALLER(ar);
    char fetch[16];
    snprintf(fetch, sizeof(fetch), "%d", list->limit + 1);
    const char *count = list->count ? "true" : "false";
    const char *p[] = {uid_, ver_, list->cursor_key, list->cursor_id, fetch, count, list->fields};
    return crud_query_flags(ar, sql, 7, p, DB_ONESHOT, done, arg);
}

int admin_db_teams_get(api_req_t *ar, int64_t id, crud_done_fn done, void *arg)
{
    return get_one(ar, SQL_TEAMS_GET, id, done, arg);
}

int admin_db_teams_create(api_req_t *ar, const char *input, crud_done_fn done, void *arg)
{
    return create_one(ar, SQL_TEAMS_CREATE, input, done, arg);
}

int admin_db_teams_patch(api_req_t *ar, int64_t id, const char *patch, const char *if_match, crud_done_fn done,
                         void *arg)
{
    return patch_one(ar, SQL_TEAMS_PATCH, id, patch, if_match, done, arg);
}

int admin_db_teams_delete(api_req_t *ar, int64_t id, const char *if_match, crud_done_fn done, void *arg)
{
    return by_id(ar, SQL_TEAMS_DELETE, id, if_match, done, arg);
}

int admin_db_teams_list(api_req_t *ar, const crud_list_t *list, crud_done_fn done, void *arg)
{
    return list_named(ar, SQL_TEAMS_LIST[list->sort], list, done, arg);
}

int admin_db_roles_get(api_req_t *ar, int64_t id, crud_done_fn done, void *arg)
{
    return get_one(ar, SQL_ROLES_GET, id, done, arg);
}

int admin_db_roles_create(api_req_t *ar, const char *input, crud_done_fn done, void *arg)
{
    return create_one(ar, SQL_ROLES_CREATE, input, done, arg);
}

int admin_db_roles_patch(api_req_t *ar, int64_t id, const char *patch, const char *if_match, crud_done_fn done,
                         void *arg)
{
    return patch_one(ar, SQL_ROLES_PATCH, id, patch, if_match, done, arg);
}

int admin_db_roles_delete(api_req_t *ar, int64_t id, const char *if_match, crud_done_fn done, void *arg)
{
    return by_id(ar, SQL_ROLES_DELETE, id, if_match, done, arg);
}

int admin_db_roles_list(api_req_t *ar, const crud_list_t *list, crud_done_fn done, void *arg)
{
    return list_named(ar, SQL_ROLES_LIST[list->sort], list, done, arg);
}

int admin_db_users_scope(api_req_t *ar, crud_done_fn done, void *arg)
{
    CALLER(ar);
    const char *p[] = {uid_, ver_};
    return crud_query(ar, SQL_USERS_SCOPE, 2, p, done, arg);
}

int admin_db_users_get(api_req_t *ar, int64_t id, crud_done_fn done, void *arg)
{
    CALLER(ar);
    char idb[24], owned[512];
    if (ownership_owned_array(engine_resources, owned, sizeof(owned)) == NULL)
        return ERR_INTERNAL;
    const char *p[] = {uid_, ver_, db_fmt_i64(idb, id), owned};
    return crud_query(ar, SQL_USERS_GET, 4, p, done, arg);
}

int admin_db_users_create(api_req_t *ar, const char *input, const char *password_hash, crud_done_fn done, void *arg)
{
    CALLER(ar);
    const char *p[] = {uid_, ver_, input, password_hash};
    return crud_query(ar, SQL_USERS_CREATE, 4, p, done, arg);
}

int admin_db_users_patch(api_req_t *ar, int64_t id, const char *patch, const char *password_hash, const char *if_match,
                         crud_done_fn done, void *arg)
{
    CALLER(ar);
    char idb[24];
    const char *p[] = {uid_, ver_, db_fmt_i64(idb, id), patch, if_match, password_hash};
    return crud_query(ar, SQL_USERS_PATCH, 6, p, done, arg);
}

int admin_db_users_delete(api_req_t *ar, int64_t id, const char *if_match, crud_done_fn done, void *arg)
{
    return by_id(ar, SQL_USERS_DELETE, id, if_match, done, arg);
}

int admin_db_users_list(api_req_t *ar, const admin_users_filter_t *f, const crud_list_t *list, crud_done_fn done,
                        void *arg)
{
    CALLER(ar);
    char fetch[16];
    snprintf(fetch, sizeof(fetch), "%d", list->limit + 1);
    const char *count = list->count ? "true" : "false";
    const char *p[] = {uid_,  ver_,  f->team_id,  f->role, f->active, f->q_pattern, list->cursor_key, list->cursor_id,
                       fetch, count, list->fields};
    return crud_query_flags(ar, SQL_USERS_LIST[list->sort], 11, p, DB_ONESHOT, done, arg);
}
