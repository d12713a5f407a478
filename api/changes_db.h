/*
 * api/changes_db.h - the change feed statement (see changes_db.c).
 */
#ifndef CLIENTELE_API_CHANGES_DB_H
#define CLIENTELE_API_CHANGES_DB_H

#include "crud.h"

/* Rows after (txid, seq): rscope, seq, txid, item JSON; one row with NULLs when there are none. */
int changes_db_feed(api_req_t *ar, int orders, const char *txid, const char *seq, int limit, crud_done_fn done,
                    void *arg);

#endif
