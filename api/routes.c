/*
 * api/routes.c - the route table: every endpoint the API serves.
 *
 * Order matters only where templates overlap: the first template that
 * matches a path owns it (see api/router.c), so literal routes come before
 * parameter routes of the same shape. Every route is authenticated by the
 * pipeline unless its row says API_PUBLIC. Engine resources get their
 * standard rows from ENGINE_ROUTES (api/engine_routes.h), which name the
 * resource the generic handlers serve. openapi/openapi.yaml must list
 * exactly these routes; tests/unit/api/openapi_test.c checks it.
 *
 * Each route belongs to a module that an administrator may switch off
 * (api/modules.h): its resource's, else the first api_route_modules entry
 * below whose prefix its template starts with, else the engine resource
 * its template starts with; routes of no module are always served.
 */
#include "admin.h"
#include "analytics.h"
#include "api.h"
#include "backups.h"
#include "engine_routes.h"
#include "modules.h"
#include "ownership.h"
#include "merge.h"
#include "resources.h"

int auth_token(api_req_t *ar);
int auth_refresh(api_req_t *ar);
int auth_logout(api_req_t *ar);
int auth_me(api_req_t *ar);

const api_route_t api_routes[] = {
    {ROUTER_GET, "/healthz", health_live, API_PUBLIC, NULL},
    {ROUTER_GET, "/readyz", health_ready, API_PUBLIC, NULL},
    {ROUTER_GET, "/metrics", health_metrics, API_PUBLIC, NULL},
    {ROUTER_GET, "/openapi.yaml", openapi_get_yaml, API_PUBLIC, NULL},
    {ROUTER_GET, "/openapi.json", openapi_get_json, API_PUBLIC, NULL},
    {ROUTER_GET, "/docs", docs_get_page, API_PUBLIC, NULL},
    {ROUTER_GET, "/docs/{file:str}", docs_get_file, API_PUBLIC, NULL},

    {ROUTER_POST, "/v1/auth/token", auth_token, API_BODY_JSON | API_PUBLIC, NULL},
    {ROUTER_POST, "/v1/auth/refresh", auth_refresh, API_BODY_JSON | API_PUBLIC, NULL},
    {ROUTER_POST, "/v1/auth/logout", auth_logout, API_BODY_JSON | API_PUBLIC, NULL},
    {ROUTER_GET, "/v1/me", auth_me, 0, NULL},

    {ROUTER_GET, "/v1/settings/modules", settings_modules_get, 0, NULL},
    {ROUTER_PUT, "/v1/settings/modules", settings_modules_put, API_BODY_JSON, NULL},
    {ROUTER_PATCH, "/v1/settings/modules", settings_modules_patch, API_BODY_MERGE_PATCH, NULL},

    ENGINE_ROUTES(customers_resource, "/v1/customers"),
    MERGE_ROUTES(customers_resource, "/v1/customers"),
    {ROUTER_GET, "/v1/customers/{id:int}/analytics/history", analytics_customer_history, 0, NULL},
    ENGINE_NESTED_ROUTES(contacts_resource, "/v1/customers/{id:int}/contacts"),
    ENGINE_ROUTES(orders_resource, "/v1/orders"),
    ENGINE_ROUTES(contacts_resource, "/v1/contacts"),
    /* Definitions: no bulk, reports, exports or attachments. */
    {ROUTER_GET, "/v1/custom-fields", engine_list, 0, &custom_fields_resource},
    {ROUTER_POST, "/v1/custom-fields", engine_create, API_BODY_JSON, &custom_fields_resource},
    {ROUTER_GET, "/v1/custom-fields/{id:int}", engine_get, 0, &custom_fields_resource},
    {ROUTER_PATCH, "/v1/custom-fields/{id:int}", engine_patch, API_BODY_MERGE_PATCH, &custom_fields_resource},
    {ROUTER_DELETE, "/v1/custom-fields/{id:int}", engine_delete, 0, &custom_fields_resource},
    {ROUTER_GET, "/v1/custom-fields/{id:int}/history", engine_history, 0, &custom_fields_resource},
    MERGE_ROUTES(contacts_resource, "/v1/contacts"),

    ENGINE_FEED_ROUTE(customers_resource, "/v1/changes/customers"),
    ENGINE_FEED_ROUTE(orders_resource, "/v1/changes/orders"),
    ENGINE_FEED_ROUTE(contacts_resource, "/v1/changes/contacts"),
    ENGINE_FEED_ROUTE(custom_fields_resource, "/v1/changes/custom-fields"),

    ENGINE_EXTERNAL_ROUTE(customers_resource, "/v1/external/customers"),
    ENGINE_EXTERNAL_ROUTE(orders_resource, "/v1/external/orders"),
    ENGINE_EXTERNAL_ROUTE(contacts_resource, "/v1/external/contacts"),

    {ROUTER_GET, "/v1/attachments/{id:int}", attachments_download, 0, NULL},
    {ROUTER_DELETE, "/v1/attachments/{id:int}", attachments_delete, 0, NULL},

    {ROUTER_GET, "/v1/analytics/runs", analytics_run_list, 0, NULL},
    {ROUTER_POST, "/v1/analytics/runs", analytics_run_create, API_BODY_JSON, NULL},
    {ROUTER_GET, "/v1/analytics/runs/{id:int}", analytics_run_get, 0, NULL},
    {ROUTER_DELETE, "/v1/analytics/runs/{id:int}", analytics_run_cancel, 0, NULL},
    {ROUTER_GET, "/v1/analytics/summary", analytics_summary, 0, NULL},
    {ROUTER_GET, "/v1/analytics/transitions", analytics_transitions, 0, NULL},
    {ROUTER_GET, "/v1/analytics/schedules", analytics_schedule_list, 0, NULL},
    {ROUTER_POST, "/v1/analytics/schedules", analytics_schedule_create, API_BODY_JSON, NULL},
    {ROUTER_GET, "/v1/analytics/schedules/{id:int}", analytics_schedule_get, 0, NULL},
    {ROUTER_PATCH, "/v1/analytics/schedules/{id:int}", analytics_schedule_patch, API_BODY_MERGE_PATCH, NULL},
    {ROUTER_DELETE, "/v1/analytics/schedules/{id:int}", analytics_schedule_delete, 0, NULL},

    {ROUTER_GET, "/v1/users", admin_users_list, 0, NULL},
    {ROUTER_POST, "/v1/users", admin_users_create, API_BODY_JSON, NULL},
    {ROUTER_GET, "/v1/users/{id:int}", admin_users_get, 0, NULL},
    {ROUTER_PATCH, "/v1/users/{id:int}", admin_users_patch, API_BODY_MERGE_PATCH, NULL},
    {ROUTER_DELETE, "/v1/users/{id:int}", admin_users_delete, 0, NULL},

    {ROUTER_POST, "/v1/ownership-transfers", ownership_transfer_create, API_BODY_JSON, NULL},
    {ROUTER_GET, "/v1/ownership-transfers/{id:int}", ownership_transfer_get, 0, NULL},

    {ROUTER_GET, "/v1/teams", admin_teams_list, 0, NULL},
    {ROUTER_POST, "/v1/teams", admin_teams_create, API_BODY_JSON, NULL},
    {ROUTER_GET, "/v1/teams/{id:int}", admin_teams_get, 0, NULL},
    {ROUTER_PATCH, "/v1/teams/{id:int}", admin_teams_patch, API_BODY_MERGE_PATCH, NULL},
    {ROUTER_DELETE, "/v1/teams/{id:int}", admin_teams_delete, 0, NULL},

    {ROUTER_GET, "/v1/roles", admin_roles_list, 0, NULL},
    {ROUTER_POST, "/v1/roles", admin_roles_create, API_BODY_JSON, NULL},
    {ROUTER_GET, "/v1/roles/{id:int}", admin_roles_get, 0, NULL},
    {ROUTER_PATCH, "/v1/roles/{id:int}", admin_roles_patch, API_BODY_MERGE_PATCH, NULL},
    {ROUTER_DELETE, "/v1/roles/{id:int}", admin_roles_delete, 0, NULL},

    {ROUTER_GET, "/v1/admin/backups", backups_list, 0, NULL},
    {ROUTER_POST, "/v1/admin/backups", backups_create, 0, NULL},
};

const size_t api_nroutes = sizeof(api_routes) / sizeof(api_routes[0]);

/* The modules that are not engine resources, by the templates they serve (earlier prefixes win). */
const api_route_module_t api_route_modules[] = {
    {"/v1/customers/{id:int}/analytics", "analytics"},
    {"/v1/analytics", "analytics"},
    {"/v1/users", "users"},
    {"/v1/teams", "teams"},
    {"/v1/roles", "roles"},
    {"/v1/admin/backups", "backups"},
    {NULL, NULL},
};
