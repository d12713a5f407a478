/*
 * api/engine_routes.h - the generic handlers of engine resources and the
 * route rows that serve a resource (api/routes.c).
 */
#ifndef CLIENTELE_API_ENGINE_ROUTES_H
#define CLIENTELE_API_ENGINE_ROUTES_H

#include "api.h"
#include "attachments.h"
#include "engine.h"

int engine_list(api_req_t *ar);
int engine_get(api_req_t *ar);
int engine_create(api_req_t *ar);
int engine_patch(api_req_t *ar);
int engine_delete(api_req_t *ar);
int engine_put_external(api_req_t *ar);
int engine_bulk(api_req_t *ar);
int engine_feed(api_req_t *ar);
int engine_history(api_req_t *ar);
int engine_aggregate(api_req_t *ar); /* api/engine_report.c */
int engine_export(api_req_t *ar);

/*
 * The bulk route's body check, where the body was parsed (off the loop for
 * large bodies): every item as engine_check_item() judges it, each with a
 * unique external_id; then the items as compact text in out->text. Returns
 * 0, or -1 with out->errors and out->detail (or neither: out of memory).
 */
int engine_prepare_bulk(const engine_t *e, const engine_resource_t *r, json_t *items, api_prepared_t *out);

/* The standard routes of a resource at `path` ("/v1/customers"); res is its description. */
/* clang-format off */
#define ENGINE_ROUTES(res, path)                                                                        \
    {ROUTER_GET, path, engine_list, 0, &res},                                                           \
    {ROUTER_POST, path, engine_create, API_BODY_JSON, &res},                                            \
    {ROUTER_POST, path "/bulk", engine_bulk, API_BODY_JSON | API_BODY_NDJSON | API_BODY_BULK, &res},    \
    {ROUTER_GET, path "/aggregate", engine_aggregate, 0, &res},                                         \
    {ROUTER_GET, path "/export", engine_export, 0, &res},                                               \
    {ROUTER_GET, path "/{id:int}", engine_get, 0, &res},                                                \
    {ROUTER_PATCH, path "/{id:int}", engine_patch, API_BODY_MERGE_PATCH, &res},                         \
    {ROUTER_DELETE, path "/{id:int}", engine_delete, 0, &res},                                          \
    {ROUTER_GET, path "/{id:int}/history", engine_history, 0, &res},                                    \
    {ROUTER_GET, path "/{id:int}/attachments", attachments_list, 0, &res},                              \
    {ROUTER_POST, path "/{id:int}/attachments", attachments_upload, API_BODY_RAW, &res}

/*
 * The upsert by the integrator's id ("/v1/external/customers"): its own
 * prefix, so no template of the resource's (".../{id}/history") has the
 * same shape as ".../external/{external_id}".
 */
#define ENGINE_EXTERNAL_ROUTE(res, path)                                                                \
    {ROUTER_PUT, path "/{external_id:str}", engine_put_external, API_BODY_JSON, &res}

/* The change feed of a resource ("/v1/changes/customers"). */
#define ENGINE_FEED_ROUTE(res, path) {ROUTER_GET, path, engine_feed, 0, &res}

/* A child collection under its parent ("/v1/customers/{id:int}/contacts"): list and create. */
#define ENGINE_NESTED_ROUTES(res, path)                                                                 \
    {ROUTER_GET, path, engine_list, 0, &res},                                                           \
    {ROUTER_POST, path, engine_create, API_BODY_JSON, &res}
/* clang-format on */

#endif
