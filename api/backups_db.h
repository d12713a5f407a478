/*
 * api/backups_db.h - the statements behind /v1/admin/backups (see backups_db.c).
 */
#ifndef CLIENTELE_API_BACKUPS_DB_H
#define CLIENTELE_API_BACKUPS_DB_H

#include "crud.h"

/* Row: rscope of module backups, the latest backup runs (JSON array), the backup schedule (JSON or NULL). */
int backups_db_overview(api_req_t *ar, crud_done_fn done, void *arg);
/* A backup run queued now: the standard write columns, outcome created or forbidden, doc the run. */
int backups_db_create(api_req_t *ar, crud_done_fn done, void *arg);

#endif
