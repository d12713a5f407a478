/*
 * api/auth_db.h - the statements behind authentication (see auth_db.c).
 */
#ifndef CLIENTELE_API_AUTH_DB_H
#define CLIENTELE_API_AUTH_DB_H

#include "common/db.h"

/* Row: id, password_hash, active ('t'/'f'), role name, team_id (NULL), token_version. */
int auth_db_find_login(db_t *db, const char *email, db_cb cb, void *data);
/* Stores a new refresh token (SHA-256, hex) in a new family. */
int auth_db_insert_refresh(db_t *db, const char *hash_hex, int64_t user_id, int ttl_s, db_cb cb, void *data);
/* Rotates a refresh token; row: outcome, user_id, role, team_id, token_version. */
int auth_db_rotate(db_t *db, const char *presented_hex, const char *new_hex, int ttl_s, db_cb cb, void *data);
/* Revokes the family of a refresh token (no-op for unknown tokens). */
int auth_db_revoke_family(db_t *db, const char *hash_hex, db_cb cb, void *data);
/* Row: id, email, name, role, team_id, team name, permissions (JSON text), created_at; none when the caller is not live. */
int auth_db_me(db_t *db, const char *uid, const char *ver, db_cb cb, void *data);

#endif
