/*
 * api/modules.h - modules switched on and off at run time.
 *
 * A module is a part of the API a company may roll out on its own: every
 * engine resource (api/resources.c) but those every user reads whatever
 * their role (public_read: custom field definitions, which forms need),
 * and the modules the route table names by prefix (api_route_modules[] in
 * api/routes.c: analytics, users, teams, roles, backups). Module names are
 * those of role permissions. The list is derived from the code at start-up, so a resource
 * added later is a module without further work. An administrator switches
 * modules with /v1/settings/modules (schema/0020: a module without a row
 * is on). A switched-off module's routes answer 404
 * (/problems/module-disabled) to everyone but administrators and are left
 * out of the OpenAPI documents served to them; switching it on again
 * restores everything, since no data changes.
 *
 * Administrators are the users of the built-in role `admin` (built-in
 * roles cannot be renamed; a user whose role changes gets a new token
 * version, so the token's role claim is current for every live token).
 *
 * The pipeline asks api_modules_gate() after authentication. The set of
 * switched-off modules is held per process (a bit mask in atomics, shared
 * by the loops) and read again from the database when it is older than
 * MODULES_TTL_MS, by the request that finds it so (others meanwhile use
 * the previous set); a write through /v1/settings/modules updates it at
 * once, so other API processes follow within MODULES_TTL_MS plus one query.
 *
 * Ownership: the api_modules_t is built before the loops start and freed
 * after they stop (server->modules); everything in it is immutable but the
 * atomics.
 */
#ifndef CLIENTELE_API_MODULES_H
#define CLIENTELE_API_MODULES_H

#include "api.h"

#define MODULES_TTL_MS 500
#define MODULES_MAX 64

typedef struct st_api_modules_t api_modules_t;

/* A module that is not an engine resource: the route templates starting with prefix (at a segment boundary). */
typedef struct st_api_route_module_t {
    const char *prefix; /* "/v1/analytics" */
    const char *module; /* "analytics" */
} api_route_module_t;

/* api/routes.c, terminated by a NULL prefix; earlier prefixes win. */
extern const api_route_module_t api_route_modules[];

/*
 * The module of a route: its resource's, else the first api_route_modules
 * prefix of its template, else the engine resource its template starts
 * with ("/v1/customers/..."); NULL for routes outside every module (sign-in,
 * /v1/me, settings, transfers, resources every user reads), which are
 * always served.
 */
const char *api_route_module(const api_route_t *route, const struct st_engine_resource_t *const *resources);

/*
 * Derives the modules (engine resources in their order, then the others),
 * each route's module and the pieces of the served spec (spec_json, the
 * server's JSON text) that tailored copies are assembled from. NULL with a
 * sentence in err when the spec cannot be read or there are more than
 * MODULES_MAX modules.
 */
api_modules_t *api_modules_new(const api_route_t *routes, size_t nroutes,
                               const struct st_engine_resource_t *const *resources, h2o_iovec_t spec_json, char *err,
                               size_t errlen);
void api_modules_free(api_modules_t *m);

size_t api_modules_count(const api_modules_t *m);
/* The name of module i (static storage). */
const char *api_modules_name(const api_modules_t *m, size_t i);
/* The index of a module by name, or -1. */
int api_modules_index(const api_modules_t *m, const char *name);

/* Is the authenticated caller an administrator (see above)? */
int api_is_admin(const api_req_t *ar);

/*
 * The pipeline's check, after authentication: calls next(ar) now or later
 * when the route belongs to no module, to a module that is on, or the
 * caller is an administrator; otherwise answers 404 module-disabled. When
 * the set must be read and cannot be, answers that error.
 */
void api_modules_gate(api_req_t *ar, void (*next)(api_req_t *ar));

/*
 * Calls cont, now or later, with the modules switched off for the caller
 * as a PostgreSQL array literal in the request's pool ("{orders}"; "{}"
 * for administrators), for handlers whose route belongs to no module but
 * whose records do (attachments by id). Answers an error itself when the
 * set must be read and cannot be.
 */
void api_modules_disabled_names(api_req_t *ar, void (*cont)(api_req_t *ar, const char *disabled, void *arg), void *arg);

/*
 * The modules a caller may use, for GET /v1/me: those on which the role's
 * permissions (an object, borrowed) grant any action, and that are on, or
 * all of those for an administrator. disabled_json is the JSON array of
 * switched-off module names. A new reference.
 */
json_t *api_modules_usable(const api_modules_t *m, const json_t *permissions, int admin, const char *disabled_json);

/*
 * Answers GET /openapi.json (yaml 0) or /openapi.yaml (1): the whole spec
 * to a request with an administrator's valid token, else the spec without
 * the operations of switched-off modules (in JSON syntax, which is YAML,
 * under both names). Returns 0.
 */
int api_modules_send_spec(api_req_t *ar, int yaml);

/* GET, PUT and PATCH /v1/settings/modules. */
int settings_modules_get(api_req_t *ar);
int settings_modules_put(api_req_t *ar);
int settings_modules_patch(api_req_t *ar);

/* --- for tests: the spec without the routes of the modules in mask, assembled into out (malloc'ed) --- */
char *api_modules_spec(const api_modules_t *m, uint64_t mask, size_t *len);

#endif
