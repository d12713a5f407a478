/*
 * worker/ops_db.c - the SQL of the worker's operations listener (worker/ops.c).
 *
 * Both statements go through the loop's asynchronous db_t. The backlog
 * counts unpublished "runs" messages through the partial index
 * outbox_pending_idx, which holds only unpublished rows, so a scrape costs
 * what the relay is behind, not the outbox's history.
 */
#include "ops.h"

static const char SQL_PING[] = "SELECT 1";

static const char SQL_OUTBOX_BACKLOG[] = "SELECT count(*) FROM outbox WHERE published_at IS NULL AND topic = 'runs'";

int wk_ops_db_ping(db_t *db, db_cb cb, void *data)
{
    return db_query(db, SQL_PING, 0, NULL, cb, data);
}

int wk_ops_db_outbox_backlog(db_t *db, db_cb cb, void *data)
{
    return db_query(db, SQL_OUTBOX_BACKLOG, 0, NULL, cb, data);
}
