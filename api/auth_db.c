/*
 * api/auth_db.c - all SQL behind logging in, refreshing and logging out.
 */
#include "auth_db.h"

static const char SQL_FIND_LOGIN[] =
    "SELECT u.id, u.password_hash, u.active, r.name, u.team_id, u.token_version"
    " FROM users u JOIN roles r ON r.id = u.role_id WHERE u.email = $1";

static const char SQL_INSERT_REFRESH[] =
    "INSERT INTO refresh_tokens (token_hash, family, user_id, expires_at)"
    " VALUES (decode($1, 'hex'), gen_random_uuid(), $2, now() + make_interval(secs => $3::int))";

static const char SQL_ROTATE[] =
    "SELECT outcome, user_id, role, team_id, token_version"
    " FROM refresh_rotate(decode($1, 'hex'), decode($2, 'hex'), make_interval(secs => $3::int))";

static const char SQL_REVOKE_FAMILY[] =
    "UPDATE refresh_tokens SET revoked_at = now()"
    " WHERE family = (SELECT family FROM refresh_tokens WHERE token_hash = decode($1, 'hex'))"
    " AND revoked_at IS NULL";

static const char SQL_ME[] =
    "SELECT u.id, u.email, u.name, r.name, u.team_id, t.name, r.permissions::text,"
    " to_char(u.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'),"
    " (SELECT coalesce(json_agg(m.module), '[]') FROM module_settings m WHERE NOT m.enabled)::text"
    " FROM users u JOIN roles r ON r.id = u.role_id LEFT JOIN teams t ON t.id = u.team_id"
    " WHERE u.id = $1 AND u.active AND u.token_version = $2";

int auth_db_find_login(db_t *db, const char *email, db_cb cb, void *data)
{
    const char *p[] = {email};
    return db_query(db, SQL_FIND_LOGIN, 1, p, cb, data);
}

int auth_db_insert_refresh(db_t *db, const char *hash_hex, int64_t user_id, int ttl_s, db_cb cb, void *data)
{
    char uid[24], ttl[24];
    const char *p[] = {hash_hex, db_fmt_i64(uid, user_id), db_fmt_i64(ttl, ttl_s)};
    return db_query(db, SQL_INSERT_REFRESH, 3, p, cb, data);
}

int auth_db_rotate(db_t *db, const char *presented_hex, const char *new_hex, int ttl_s, db_cb cb, void *data)
{
    char ttl[24];
    const char *p[] = {presented_hex, new_hex, db_fmt_i64(ttl, ttl_s)};
    return db_query(db, SQL_ROTATE, 3, p, cb, data);
}

int auth_db_revoke_family(db_t *db, const char *hash_hex, db_cb cb, void *data)
{
    const char *p[] = {hash_hex};
    return db_query(db, SQL_REVOKE_FAMILY, 1, p, cb, data);
}

int auth_db_me(db_t *db, const char *uid, const char *ver, db_cb cb, void *data)
{
    const char *p[] = {uid, ver};
    return db_query(db, SQL_ME, 2, p, cb, data);
}
