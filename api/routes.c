/*
 * api/routes.c - the route table: every endpoint the API serves.
 *
 * Order matters only where templates overlap: the first template that
 * matches a path owns it (see api/router.c), so literal routes come before
 * parameter routes of the same shape. openapi/openapi.yaml must list
 * exactly these routes; tests/unit/api/openapi_test.c checks it.
 */
#include "api.h"

const api_route_t api_routes[] = {
    {ROUTER_GET, "/healthz", health_live, 0},
    {ROUTER_GET, "/readyz", health_ready, 0},
    {ROUTER_GET, "/metrics", health_metrics, 0},
    {ROUTER_GET, "/openapi.yaml", openapi_get_yaml, 0},
    {ROUTER_GET, "/openapi.json", openapi_get_json, 0},
};

const size_t api_nroutes = sizeof(api_routes) / sizeof(api_routes[0]);
