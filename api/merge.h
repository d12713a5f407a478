/*
 * api/merge.h - duplicates of a record, and merging records into one, for
 * every engine resource whose description says how duplicates are found
 * (engine_resource_t.dedup: customers and contacts).
 *
 *   GET  /v1/<collection>/{id}/duplicates   candidates, best first, each with
 *                                           its reasons and score
 *   POST /v1/<collection>/{id}/merge        {"merge_ids": [...], "fields":
 *                                           {"<field>": <id whose value wins>}}
 *
 * Duplicates are records the caller may read with the same e-mail, the same
 * phone number as E.164 in the default region (CLIENTELE_PHONE_REGION,
 * common/phone.h) or a similar name in the same group (for customers the
 * city, for contacts the customer). A merge, in one statement, re-points
 * every record that references the merged ones to the survivor {id}, fills
 * the survivor's chosen fields and soft-deletes the merged records with
 * merged_into (api/merge_db.h); every record and id must be live, readable
 * (else 404) and updatable (else 403) by the caller, or nothing changes.
 *
 * Ownership: merge_open() builds the statements before the loops start and
 * keeps the region; merge_close() after they have stopped.
 */
#ifndef CLIENTELE_API_MERGE_H
#define CLIENTELE_API_MERGE_H

#include "api.h"

/* Most records one merge takes into the survivor. */
#define MERGE_IDS_MAX 50
/* Most candidates a duplicates lookup answers (limit=), and how many by default. */
#define MERGE_CANDIDATES_MAX 50
#define MERGE_CANDIDATES_DEFAULT 10

typedef struct st_merge_t merge_t;

/* Builds the statements for the resources of e. Blocking (start-up). NULL with a sentence in err on failure. */
merge_t *merge_open(const cfg_t *cfg, const struct st_engine_t *e, char *err, size_t errlen);
void merge_close(merge_t *m);

/* Handlers; the route names the resource (api/routes.c). */
int merge_duplicates(api_req_t *ar);
int merge_records(api_req_t *ar);

/* The routes of a resource that merges, at its collection's path ("/v1/customers"). */
/* clang-format off */
#define MERGE_ROUTES(res, path)                                                                         \
    {ROUTER_GET, path "/{id:int}/duplicates", merge_duplicates, 0, &res},                               \
    {ROUTER_POST, path "/{id:int}/merge", merge_records, API_BODY_JSON, &res}
/* clang-format on */

#endif
