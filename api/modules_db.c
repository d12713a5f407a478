/*
 * api/modules_db.c - the SQL behind modules switched on and off (api/modules.c).
 *
 * Each statement checks the caller itself ($1 user id, $2 token version:
 * live and current) and answers with the switched-off modules as a JSON
 * array of names (text), so that every read and write also refreshes the
 * process's copy. Only the built-in admin role may write (schema/0020).
 */
#include "modules_db.h"

/* clang-format off */
/* No caller: the process's own refresh. */
static const char SQL_DISABLED[] =
    "SELECT coalesce(json_agg(module ORDER BY module), '[]')::text FROM module_settings WHERE NOT enabled";

/* Rows: live (a live caller with a current token), disabled. */
static const char SQL_GET[] =
    "WITH caller AS (SELECT u.id FROM users u WHERE u.id = $1 AND u.active AND u.token_version = $2)"
    " SELECT caller.id IS NOT NULL, (SELECT coalesce(json_agg(module ORDER BY module), '[]') FROM module_settings"
    " WHERE NOT enabled)::text FROM (SELECT 1) one LEFT JOIN caller ON true";

/*
 * $3: {"<module>": true|false, ...}, the modules to set. Unchanged rows keep
 * their updated_at. Rows: outcome (unauthenticated, forbidden, updated),
 * disabled afterwards.
 */
static const char SQL_SET[] =
    "WITH caller AS (SELECT u.id, r.name AS role FROM users u JOIN roles r ON r.id = u.role_id"
    "   WHERE u.id = $1 AND u.active AND u.token_version = $2),"
    " up AS (INSERT INTO module_settings (module, enabled, updated_by)"
    "   SELECT e.key, e.value::boolean, caller.id FROM caller, jsonb_each_text($3::jsonb) e WHERE caller.role = 'admin'"
    "   ON CONFLICT (module) DO UPDATE SET enabled = EXCLUDED.enabled, updated_at = now(),"
    "   updated_by = EXCLUDED.updated_by WHERE module_settings.enabled IS DISTINCT FROM EXCLUDED.enabled"
    "   RETURNING module, enabled)"
    " SELECT CASE WHEN caller.id IS NULL THEN 'unauthenticated' WHEN caller.role <> 'admin' THEN 'forbidden'"
    "   ELSE 'updated' END,"
    " (SELECT coalesce(json_agg(x.module ORDER BY x.module), '[]') FROM (SELECT m.module FROM module_settings m"
    "   WHERE NOT m.enabled AND NOT EXISTS (SELECT 1 FROM up WHERE up.module = m.module)"
    "   UNION ALL SELECT up.module FROM up WHERE NOT up.enabled) x)::text"
    " FROM (SELECT 1) one LEFT JOIN caller ON true";
/* clang-format on */

int modules_db_disabled(db_t *db, db_cb cb, void *data)
{
    return db_query(db, SQL_DISABLED, 0, NULL, cb, data);
}

int modules_db_get(api_req_t *ar, crud_done_fn done, void *arg)
{
    char uid[24], ver[24];
    api_caller_params(ar, uid, ver);
    const char *p[] = {uid, ver};
    return crud_query(ar, SQL_GET, 2, p, done, arg);
}

int modules_db_set(api_req_t *ar, const char *values, crud_done_fn done, void *arg)
{
    char uid[24], ver[24];
    api_caller_params(ar, uid, ver);
    const char *p[] = {uid, ver, values};
    return crud_query(ar, SQL_SET, 3, p, done, arg);
}
