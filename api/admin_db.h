/*
 * api/admin_db.h - the statements behind /v1/users, /v1/teams and /v1/roles
 * (see admin_db.c).
 *
 * Each function sends one scoped statement for the authenticated request and
 * calls `done` with its result (standard columns of api/crud.h) while the
 * request is alive. Text parameters are borrowed for the call only. Besides
 * the standard write outcomes, these statements may answer in_use,
 * builtin_role, forbidden_role and self_lockout (see admin.c).
 */
#ifndef CLIENTELE_API_ADMIN_DB_H
#define CLIENTELE_API_ADMIN_DB_H

#include "crud.h"

typedef struct st_admin_users_filter_t {
    const char *team_id, *role, *active; /* active: "true", "false" or NULL */
    const char *q_pattern;               /* an ILIKE pattern, metacharacters escaped */
} admin_users_filter_t;

extern const char *const admin_db_users_sorts[];
extern const char *const admin_db_named_sorts[]; /* teams and roles */

/* 1 when a failed statement broke a unique constraint (a duplicate), 0 for any other failure. */
int admin_db_is_duplicate(const PGresult *res);

/* --- teams --- */
int admin_db_teams_get(api_req_t *ar, int64_t id, crud_done_fn done, void *arg);
int admin_db_teams_create(api_req_t *ar, const char *input, crud_done_fn done, void *arg);
int admin_db_teams_patch(api_req_t *ar, int64_t id, const char *patch, const char *if_match, crud_done_fn done,
                         void *arg);
int admin_db_teams_delete(api_req_t *ar, int64_t id, const char *if_match, crud_done_fn done, void *arg);
/* Rows: rscope, id, sortkey, doc, total (see crud_send_list). */
int admin_db_teams_list(api_req_t *ar, const crud_list_t *list, crud_done_fn done, void *arg);

/* --- roles --- */
int admin_db_roles_get(api_req_t *ar, int64_t id, crud_done_fn done, void *arg);
int admin_db_roles_create(api_req_t *ar, const char *input, crud_done_fn done, void *arg);
int admin_db_roles_patch(api_req_t *ar, int64_t id, const char *patch, const char *if_match, crud_done_fn done,
                         void *arg);
int admin_db_roles_delete(api_req_t *ar, int64_t id, const char *if_match, crud_done_fn done, void *arg);
int admin_db_roles_list(api_req_t *ar, const crud_list_t *list, crud_done_fn done, void *arg);

/* --- users --- */
/* Row: rscope, cscope, uscope, dscope of the caller for module users; none when the caller is not live. */
int admin_db_users_scope(api_req_t *ar, crud_done_fn done, void *arg);
int admin_db_users_get(api_req_t *ar, int64_t id, crud_done_fn done, void *arg);
/* input: the user without the password; password_hash: an encoded argon2id hash. */
int admin_db_users_create(api_req_t *ar, const char *input, const char *password_hash, crud_done_fn done, void *arg);
/* password_hash: a new hash, or NULL to keep the password. */
int admin_db_users_patch(api_req_t *ar, int64_t id, const char *patch, const char *password_hash, const char *if_match,
                         crud_done_fn done, void *arg);
/* Deactivates the user and revokes their refresh tokens; outcome deleted. */
int admin_db_users_delete(api_req_t *ar, int64_t id, const char *if_match, crud_done_fn done, void *arg);
int admin_db_users_list(api_req_t *ar, const admin_users_filter_t *f, const crud_list_t *list, crud_done_fn done,
                        void *arg);

#endif
