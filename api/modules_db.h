/*
 * api/modules_db.h - the statements behind /v1/settings/modules and the
 * process's copy of the switched-off modules (see modules_db.c). Each
 * answers with the switched-off modules as a JSON array of names in its
 * last column. Text parameters are borrowed for the call only.
 */
#ifndef CLIENTELE_API_MODULES_DB_H
#define CLIENTELE_API_MODULES_DB_H

#include "crud.h"

/* One row: the switched-off modules. Not tied to a request: cb always runs, later. */
int modules_db_disabled(db_t *db, db_cb cb, void *data);
/* One row: live (t/f: the caller is live with a current token), disabled. */
int modules_db_get(api_req_t *ar, crud_done_fn done, void *arg);
/* values: {"<module>": true|false} to store. One row: outcome (unauthenticated, forbidden, updated), disabled. */
int modules_db_set(api_req_t *ar, const char *values, crud_done_fn done, void *arg);

#endif
