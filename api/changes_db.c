/*
 * api/changes_db.c - all SQL reading table "changes" (see api/changes.c).
 */
#include <stdio.h>

#include "changes_db.h"
#include "scope.h"

/*
 * A change that moved its record between scopes (schema/0014) is shown by
 * the side of the move the caller can read: both sides, as it was written
 * (an update; a `move` row of an order that only followed its customer is
 * not shown at all); only the new side, a create with the record; only the
 * old side, a delete (a tombstone). Columns: the caller's read scope, seq,
 * txid and the change as JSON (NULL columns when the page is empty).
 */
/* clang-format off */
#define FEED_SQL(module)                                                                                               \
    "WITH " SCOPE_CALLER_CTE(module)                                                                                   \
    " SELECT caller.rscope, ch.seq, ch.txid::text, CASE WHEN ch.shown = 'delete' THEN"                                 \
    " json_build_object('op', ch.shown, 'id', ch.entity_id, 'external_id', ch.external_id, 'changed_at', ch.at)"       \
    " ELSE json_build_object('op', ch.shown, 'id', ch.entity_id, 'external_id', ch.external_id, 'changed_at', ch.at,"  \
    " 'data', ch.data) END::text"                                                                                      \
    " FROM caller LEFT JOIN LATERAL (SELECT c.seq, c.txid, c.entity_id, c.external_id, c.data,"                        \
    " CASE WHEN NOT c.moved OR c.op = 'delete' THEN c.op WHEN c.new_in AND c.old_in THEN 'update'"                     \
    " WHEN c.new_in THEN 'create' ELSE 'delete' END AS shown,"                                                         \
    " to_char(c.changed_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') AS at"                              \
    " FROM (SELECT c0.*, coalesce(" SCOPE_OK("rscope", "c0.owner_id", "c0.team_id") ", false) AS new_in,"             \
    " c0.moved AND coalesce(" SCOPE_OK("rscope", "c0.old_owner_id", "c0.old_team_id") ", false) AS old_in"            \
    " FROM changes c0 WHERE c0.entity = '" module "' AND c0.txid < pg_snapshot_xmin(pg_current_snapshot())"            \
    " AND (c0.txid, c0.seq) > ($3::xid8, $4::bigint)) c"                                                               \
    " WHERE (c.new_in OR c.old_in) AND NOT (c.op = 'move' AND c.new_in AND c.old_in)"                                  \
    " ORDER BY c.txid, c.seq LIMIT $5) ch ON true ORDER BY ch.txid, ch.seq"
/* clang-format on */

static const char SQL_FEED_CUSTOMERS[] = FEED_SQL("customers");
static const char SQL_FEED_ORDERS[] = FEED_SQL("orders");

int changes_db_feed(api_req_t *ar, int orders, const char *txid, const char *seq, int limit, crud_done_fn done,
                    void *arg)
{
    char uid[24], ver[24], lim[16];
    api_caller_params(ar, uid, ver);
    snprintf(lim, sizeof(lim), "%d", limit);
    const char *p[] = {uid, ver, txid, seq, lim};
    return crud_query(ar, orders ? SQL_FEED_ORDERS : SQL_FEED_CUSTOMERS, 5, p, done, arg);
}
