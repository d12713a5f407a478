/*
 * api/ownership_db.h - the statements behind /v1/ownership-transfers (see
 * ownership_db.c). Text parameters are borrowed for the call only.
 */
#ifndef CLIENTELE_API_OWNERSHIP_DB_H
#define CLIENTELE_API_OWNERSHIP_DB_H

#include "crud.h"

/*
 * Starts a transfer: checks, records and (up to sync_max records) moves.
 * One row: outcome, transfer id, detail, document (see schema/0020's
 * ownership_transfer_start).
 */
int ownership_db_start(api_req_t *ar, const char *input, const char *closed, const char *sync_max, crud_done_fn done,
                       void *arg);
/* One row when the caller is live: true, the transfer's document or NULL (none, or not visible). */
int ownership_db_get(api_req_t *ar, int64_t id, crud_done_fn done, void *arg);

#endif
