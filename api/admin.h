/*
 * api/admin.h - /v1/users, /v1/teams and /v1/roles handlers and their field
 * tables (for validate_table_check() in unit tests).
 */
#ifndef CLIENTELE_API_ADMIN_H
#define CLIENTELE_API_ADMIN_H

#include "api.h"
#include "validate.h"

extern const validate_field_t admin_teams_fields[];
extern const size_t admin_teams_nfields;
extern const validate_field_t admin_roles_fields[];
extern const size_t admin_roles_nfields;
extern const validate_field_t admin_users_fields[];
extern const size_t admin_users_nfields;

int admin_teams_list(api_req_t *ar);
int admin_teams_create(api_req_t *ar);
int admin_teams_get(api_req_t *ar);
int admin_teams_patch(api_req_t *ar);
int admin_teams_delete(api_req_t *ar);

int admin_roles_list(api_req_t *ar);
int admin_roles_create(api_req_t *ar);
int admin_roles_get(api_req_t *ar);
int admin_roles_patch(api_req_t *ar);
int admin_roles_delete(api_req_t *ar);

int admin_users_list(api_req_t *ar);
int admin_users_create(api_req_t *ar);
int admin_users_get(api_req_t *ar);
int admin_users_patch(api_req_t *ar);
int admin_users_delete(api_req_t *ar);

#endif
