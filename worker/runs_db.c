/*
 * worker/runs_db.c - the SQL of the worker's loop side: the outbox relay.
 *
 * Both statements go through the loop's asynchronous db_t (common/db.c),
 * prepared once per connection. The relay reads only unpublished messages
 * of topic "runs" through the partial index outbox_pending_idx, and marks a
 * batch published in one statement. Two workers relaying the same rows is
 * harmless (the run is claimed once in PostgreSQL), so no row lock is held
 * across the Redis round trip.
 */
#include <stdio.h>

#include "runs.h"

static const char SQL_OUTBOX_PENDING[] =
    "SELECT id, payload ->> 'run_id', payload ->> 'request_id', payload ->> 'trace_id' FROM outbox"
    " WHERE published_at IS NULL AND topic = 'runs' ORDER BY id LIMIT 100";

static const char SQL_OUTBOX_PUBLISHED[] =
    "UPDATE outbox SET published_at = now() WHERE id = ANY($1::bigint[]) AND published_at IS NULL";

/* Unfinished runs without a message waiting to be published get one. */
static const char SQL_REPUBLISH[] =
    "INSERT INTO outbox (topic, payload) SELECT 'runs', json_build_object('run_id', r.id)"
    " FROM analytics_runs r WHERE r.status IN ('queued', 'running') AND NOT EXISTS (SELECT 1 FROM outbox o"
    " WHERE o.published_at IS NULL AND o.topic = 'runs' AND o.payload ->> 'run_id' = r.id::text) ORDER BY r.id";

int wk_runs_db_republish(db_t *db, db_cb cb, void *data)
{
    return db_query(db, SQL_REPUBLISH, 0, NULL, cb, data);
}

int wk_runs_db_outbox_pending(db_t *db, db_cb cb, void *data)
{
    return db_query(db, SQL_OUTBOX_PENDING, 0, NULL, cb, data);
}

int wk_runs_db_outbox_published(db_t *db, const char *ids, db_cb cb, void *data)
{
    const char *params[] = {ids};
    return db_query(db, SQL_OUTBOX_PUBLISHED, 1, params, cb, data);
}
