/*
 * api/ownership.h - ownership transfers: every record a user owns handed to
 * another user (POST /v1/ownership-transfers), and what a user owns.
 *
 * A transfer covers the owned engine resources (scope ENGINE_OWNED: their
 * rows carry owner_id; records of other resources follow their parent, so
 * a customer's contacts and orders go with it), all of them unless the
 * request names some. With only_open (the default) records in a closed
 * state, as each description defines it (engine_resource_t.closed:
 * customers with status inactive), stay with their owner.
 *
 * The caller needs, for every record, what a PATCH moving it would need:
 * the record inside their update scope and the new place inside what that
 * scope may file records at (an administrator or director: anything; a
 * manager: records of their team, to a member of their team), and read
 * access to both users. The request's one statement checks all of it
 * (schema/0020: ownership_transfer_start), records the transfer and moves
 * up to OWNERSHIP_SYNC_MAX records itself, in that transaction; more
 * become a worker run (kind ownership_transfer, worker/transfer_job.c),
 * which moves them in batches in one transaction, all or nothing, with its
 * progress at GET /v1/ownership-transfers/{id}. Records are moved by SQL
 * UPDATEs, so the engine's trigger writes each one's history (naming the
 * caller and the transfer) and change-feed entry.
 */
#ifndef CLIENTELE_API_OWNERSHIP_H
#define CLIENTELE_API_OWNERSHIP_H

#include "api.h"
#include "engine.h"

/* The most records a request moves itself; more become a worker run. */
#define OWNERSHIP_SYNC_MAX 10000

int ownership_transfer_create(api_req_t *ar);
int ownership_transfer_get(api_req_t *ar);

/*
 * The owned resources among `resources` as a PostgreSQL array literal
 * ("{customers}") in buf; returns buf, or NULL when it does not fit.
 */
const char *ownership_owned_array(const engine_resource_t *const *resources, char *buf, size_t len);

/*
 * The closed-state rules of the owned resources, for the transfer's record
 * ({"customers": {"field": "status", "values": ["inactive"]}}). A new reference.
 */
json_t *ownership_closed_rules(const engine_resource_t *const *resources);

/*
 * Checks the closed-state rules of the descriptions: each names an enum
 * field of its resource, and values it allows. 0, or -1 with a sentence in err.
 */
int ownership_check_resources(const engine_resource_t *const *resources, char *err, size_t errlen);

#endif
