/*
 * api/callers.c - who the caller is, for reads: a short-lived per-thread
 * cache of each user's team and role permissions.
 *
 * Every read statement used to look the caller up (users joined to roles)
 * before reading one record; for the hottest path, a record by id, that
 * was two of its five index probes. A loop thread now asks the database at
 * most once per CALLER_TTL_MS per user and hands read statements the
 * caller's team and read scope as parameters. An entry is used only for
 * the token version it was read with, so a new token version (a password
 * change, a logout everywhere) misses it; deactivation and changed
 * permissions reach every thread of every API process within CALLER_TTL_MS
 * (the contract is one second: tests/integration/cutoff_test.c). Writes
 * keep deciding everything in their own statement, from the tables.
 *
 * The cache belongs to its loop thread (no locks); a thread serves at most
 * CALLER_SLOTS users at once from it (a colliding user replaces the slot).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "crud.h"
#include "engine_int.h"

#define CALLER_TTL_MS 500
#define CALLER_SLOTS 1024

typedef struct st_caller_slot_t {
    int64_t uid, ver, tid; /* tid 0: no team */
    json_t *perms;         /* the role's permissions object */
    uint64_t fetched_ms;
} caller_slot_t;

struct st_api_caller_cache_t {
    caller_slot_t slots[CALLER_SLOTS];
};

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

struct st_api_caller_cache_t *api_caller_cache_new(void)
{
    struct st_api_caller_cache_t *c = calloc(1, sizeof(*c));
    if (c == NULL)
        abort();
    return c;
}

void api_caller_cache_free(struct st_api_caller_cache_t *c)
{
    if (c == NULL)
        return;
    for (size_t i = 0; i < CALLER_SLOTS; i++)
        if (c->slots[i].perms != NULL)
            json_decref(c->slots[i].perms);
    free(c);
}

static caller_slot_t *slot_of(struct st_api_caller_cache_t *c, int64_t uid)
{
    return &c->slots[(uint64_t)uid * 11400714819323198485ULL >> 54 & (CALLER_SLOTS - 1)];
}

typedef struct st_caller_wait_t {
    const char *module;
    api_caller_fn cont;
    void *arg;
} caller_wait_t;

/* "<team id> <scope>": the second parameter of read statements (see caller_cte_cached in engine_sql.c). */
static void hand_over(api_req_t *ar, const caller_slot_t *s, const char *module, api_caller_fn cont, void *arg)
{
    const char *scope = json_string_value(json_object_get(json_object_get(s->perms, module), "read"));
    if (scope == NULL || (strcmp(scope, "own") != 0 && strcmp(scope, "team") != 0 && strcmp(scope, "all") != 0))
        scope = "none";
    char *param = h2o_mem_alloc_pool(&ar->req->pool, 32);
    if (s->tid > 0)
        snprintf(param, 32, "%lld %s", (long long)s->tid, scope);
    else
        snprintf(param, 32, " %s", scope);
    cont(ar, param, arg);
}

static void on_fetch(api_req_t *ar, const PGresult *res, int err, void *arg)
{
    caller_wait_t *w = arg;
    if (crud_check_result(ar, res, err) != 0) /* no row: deactivated, or the token's version is gone: 401 */
        return;
    json_t *perms = json_loads(PQgetvalue(res, 0, 1), 0, NULL);
    if (!json_is_object(perms)) {
        json_decref(perms);
        api_send_error(ar, ERR_INTERNAL, NULL);
        return;
    }
    caller_slot_t fresh = {ar->claims.sub, ar->claims.ver,
                           PQgetisnull(res, 0, 0) ? 0 : strtoll(PQgetvalue(res, 0, 0), NULL, 10), perms, now_ms()};
    if (ar->thread->callers == NULL) { /* shutting down: answer without keeping it */
        hand_over(ar, &fresh, w->module, w->cont, w->arg);
        json_decref(perms);
        return;
    }
    caller_slot_t *s = slot_of(ar->thread->callers, ar->claims.sub);
    if (s->perms != NULL)
        json_decref(s->perms);
    *s = fresh;
    hand_over(ar, s, w->module, w->cont, w->arg);
}

static const char SQL_CALLER[] = "SELECT u.team_id, r.permissions::text FROM users u JOIN roles r ON r.id = u.role_id"
                                 " WHERE u.id = $1 AND u.active AND u.token_version = $2";

int api_caller_read_scope(api_req_t *ar, const char *module, api_caller_fn cont, void *arg)
{
    struct st_api_caller_cache_t *c = ar->thread->callers;
    caller_slot_t *s = c != NULL ? slot_of(c, ar->claims.sub) : NULL;
    if (s != NULL && s->perms != NULL && s->uid == ar->claims.sub && s->ver == ar->claims.ver &&
        now_ms() - s->fetched_ms < CALLER_TTL_MS) {
        hand_over(ar, s, module, cont, arg);
        return 0;
    }
    caller_wait_t *w = h2o_mem_alloc_pool(&ar->req->pool, sizeof(*w));
    *w = (caller_wait_t){module, cont, arg};
    char uid[24], ver[24];
    api_caller_params(ar, uid, ver);
    const char *p[] = {uid, ver};
    return crud_query(ar, SQL_CALLER, 2, p, on_fetch, w);
}
