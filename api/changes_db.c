/*
 * api/changes_db.c - all SQL reading table "changes" (see api/changes.c).
 */
#include <stdio.h>

#include "changes_db.h"
#include "scope.h"

#define FEED_SQL(module)                                                                                               \
    "WITH " SCOPE_CALLER_CTE(module)                                                                                   \
    " SELECT caller.rscope, ch.seq, ch.txid::text, CASE WHEN ch.op = 'delete' THEN"                                    \
    " json_build_object('op', ch.op, 'id', ch.entity_id, 'external_id', ch.external_id, 'changed_at', ch.at)"          \
    " ELSE json_build_object('op', ch.op, 'id', ch.entity_id, 'external_id', ch.external_id, 'changed_at', ch.at,"     \
    " 'data', ch.data) END::text"                                                                                      \
    " FROM caller LEFT JOIN LATERAL (SELECT c.*,"                                                                      \
    " to_char(c.changed_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') AS at FROM changes c"              \
    " WHERE c.entity = '" module "' AND c.txid < pg_snapshot_xmin(pg_current_snapshot())"                              \
    " AND (c.txid, c.seq) > ($3::xid8, $4::bigint)"                                                                    \
    " AND " SCOPE_OK("rscope", "c.owner_id", "c.team_id")                                                              \
    " ORDER BY c.txid, c.seq LIMIT $5) ch ON true ORDER BY ch.txid, ch.seq"

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
