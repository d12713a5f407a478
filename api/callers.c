/*
 * api/callers.c - who the caller is, for reads: a short-lived cache of each
 * user's team and read scopes, shared by the process's loop threads.
 *
 * Every read statement used to look the caller up (users joined to roles)
 * before reading one record; for the hottest path, a record by id, that
 * was two of its five index probes. The process now asks the database at
 * most once per CALLER_TTL_MS per user and hands read statements the
 * caller's team and read scope as parameters. An entry holds for the
 * token version it was read with only, so a new token version (a password
 * change, a logout everywhere) misses it; a lookup that finds the user
 * inactive or the version gone is kept too (a refusal), so once one thread
 * has refused a token no thread of the process accepts it again.
 * Deactivation and changed permissions reach every API process within
 * CALLER_TTL_MS (the contract is one second: tests/integration/cutoff_test.c).
 * Writes keep deciding everything in their own statement, from the tables.
 *
 * With the scope comes the module's hidden fields (the role's
 * permissions.fields.<module> entries that say "hidden"), which read
 * statements leave out of every document they build.
 *
 * The cache is one table under a mutex held for a copy of a few bytes;
 * a colliding user replaces the slot.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "crud.h"
#include "engine_int.h"

#define CALLER_TTL_MS 500
#define CALLER_SLOTS 4096
#define CALLER_MODULES 48
#define CALLER_HIDDEN 1024 /* bytes of hidden field names of all modules of one role, comma-separated per module */

typedef struct st_caller_slot_t {
    int64_t uid, ver, tid; /* tid 0: no team */
    int refused;           /* the user is inactive or the version gone */
    int nmods;
    struct {
        char name[33];
        char scope[5];       /* none, own, team, all */
        unsigned short hoff; /* the module's hidden fields: hidden[hoff .. hoff + hlen) */
        unsigned short hlen;
    } mods[CALLER_MODULES];
    char hidden[CALLER_HIDDEN];
    uint64_t fetched_ms;
} caller_slot_t;

struct st_api_caller_cache_t {
    pthread_mutex_t lock;
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
    pthread_mutex_init(&c->lock, NULL);
    return c;
}

void api_caller_cache_free(struct st_api_caller_cache_t *c)
{
    if (c == NULL)
        return;
    pthread_mutex_destroy(&c->lock);
    free(c);
}

static caller_slot_t *slot_of(struct st_api_caller_cache_t *c, int64_t uid)
{
    return &c->slots[((uint64_t)uid * 11400714819323198485ULL) >> 52 & (CALLER_SLOTS - 1)];
}

typedef struct st_caller_wait_t {
    const char *module;
    api_caller_fn cont;
    void *arg;
    int quiet; /* tell cont (NULL scope) instead of answering */
} caller_wait_t;

/* The module's entry in a slot, or NULL when the role does not name it (scope none, nothing hidden). */
static int mod_in(const caller_slot_t *s, const char *module)
{
    for (int i = 0; i < s->nmods; i++)
        if (strcmp(s->mods[i].name, module) == 0)
            return i;
    return -1;
}

/*
 * "<team id> <scope> <hidden,fields>": the second parameter of read
 * statements (see caller_cte_read in engine_sql.c), in the request's pool.
 */
static char *caller_param(api_req_t *ar, const caller_slot_t *s, const char *module)
{
    int m = mod_in(s, module);
    size_t hlen = m >= 0 ? s->mods[m].hlen : 0, len = 48 + hlen;
    char *param = h2o_mem_alloc_pool(&ar->req->pool, len);
    char tid[24] = "";
    if (s->tid > 0)
        snprintf(tid, sizeof(tid), "%lld", (long long)s->tid);
    snprintf(param, len, "%s %s %.*s", tid, m >= 0 ? s->mods[m].scope : "none", (int)hlen,
             m >= 0 ? s->hidden + s->mods[m].hoff : "");
    return param;
}

int api_caller_hides(const char *scope_param, const char *field)
{
    const char *h = scope_param != NULL ? strchr(scope_param, ' ') : NULL;
    h = h != NULL ? strchr(h + 1, ' ') : NULL;
    size_t n = strlen(field);
    for (h = h != NULL ? h + 1 : NULL; h != NULL && *h != '\0'; h = strchr(h, ',') ? strchr(h, ',') + 1 : NULL)
        if (strncmp(h, field, n) == 0 && (h[n] == ',' || h[n] == '\0'))
            return 1;
    return 0;
}

/* Adds a module's hidden fields (rules: its permissions.fields entry) to s; -1 when they do not fit. */
static int fill_hidden(caller_slot_t *s, int m, const json_t *rules)
{
    size_t used = m > 0 ? (size_t)s->mods[m - 1].hoff + s->mods[m - 1].hlen : 0, start = used;
    const char *field;
    json_t *v;
    s->mods[m].hoff = (unsigned short)start;
    s->mods[m].hlen = 0;
    if (!json_is_object(rules))
        return 0;
    json_object_foreach((json_t *)rules, field, v)
    {
        if (!json_is_string(v) || strcmp(json_string_value(v), "hidden") != 0)
            continue;
        size_t n = strlen(field);
        if (used + n + 2 > CALLER_HIDDEN || strchr(field, ',') != NULL || strchr(field, ' ') != NULL)
            return -1;
        if (used > start)
            s->hidden[used++] = ',';
        memcpy(s->hidden + used, field, n);
        used += n;
    }
    s->mods[m].hlen = (unsigned short)(used - start);
    return 0;
}

/* Fills a slot from the role's permissions text; -1 when it is not an object. */
static int fill(caller_slot_t *s, const char *perms)
{
    json_t *p = json_loads(perms, 0, NULL), *v;
    const char *module;
    if (!json_is_object(p)) {
        json_decref(p);
        return -1;
    }
    s->nmods = 0;
    json_t *rules = json_object_get(p, "fields");
    json_object_foreach(p, module, v)
    {
        const char *r = json_string_value(json_object_get(v, "read"));
        if (strcmp(module, "fields") == 0)
            continue;
        if (s->nmods == CALLER_MODULES || strlen(module) > 32)
            break;
        snprintf(s->mods[s->nmods].name, sizeof(s->mods[0].name), "%s", module);
        snprintf(s->mods[s->nmods].scope, sizeof(s->mods[0].scope), "%s",
                 r != NULL && (strcmp(r, "own") == 0 || strcmp(r, "team") == 0 || strcmp(r, "all") == 0) ? r : "none");
        if (fill_hidden(s, s->nmods, json_object_get(rules, module)) != 0) {
            json_decref(p);
            return -1; /* more hidden fields than a slot holds: refuse rather than show them */
        }
        s->nmods++;
    }
    json_decref(p);
    return 0;
}

static void on_fetch(api_req_t *ar, const PGresult *res, int err, void *arg)
{
    caller_wait_t *w = arg;
    struct st_api_caller_cache_t *c = ar->thread->server->callers;
    if (err != 0) {
        if (w->quiet)
            w->cont(ar, NULL, w->arg);
        else
            api_send_error(ar, err, NULL);
        return;
    }
    caller_slot_t fresh = {.uid = ar->claims.sub, .ver = ar->claims.ver, .fetched_ms = now_ms()};
    if (PQntuples(res) == 0) {
        fresh.refused = 1;
    } else {
        fresh.tid = PQgetisnull(res, 0, 0) ? 0 : strtoll(PQgetvalue(res, 0, 0), NULL, 10);
        if (fill(&fresh, PQgetvalue(res, 0, 1)) != 0) {
            if (w->quiet)
                w->cont(ar, NULL, w->arg);
            else
                api_send_error(ar, ERR_INTERNAL, NULL);
            return;
        }
    }
    pthread_mutex_lock(&c->lock);
    *slot_of(c, fresh.uid) = fresh;
    pthread_mutex_unlock(&c->lock);
    if (fresh.refused && w->quiet)
        w->cont(ar, NULL, w->arg);
    else if (fresh.refused)
        api_send_unauthenticated(ar, 1, "The access token is no longer valid.");
    else
        w->cont(ar, caller_param(ar, &fresh, w->module), w->arg);
}

static const char SQL_CALLER[] = "SELECT u.team_id, r.permissions::text FROM users u JOIN roles r ON r.id = u.role_id"
                                 " WHERE u.id = $1 AND u.active AND u.token_version = $2";

static int read_scope(api_req_t *ar, const char *module, api_caller_fn cont, void *arg, int quiet)
{
    struct st_api_caller_cache_t *c = ar->thread->server->callers;
    int hit = 0, refused = 0;
    char *param = NULL;
    pthread_mutex_lock(&c->lock);
    const caller_slot_t *s = slot_of(c, ar->claims.sub);
    if (s->uid == ar->claims.sub && s->ver == ar->claims.ver && now_ms() - s->fetched_ms < CALLER_TTL_MS) {
        hit = 1;
        refused = s->refused;
        if (!refused)
            param = caller_param(ar, s, module); /* a copy into the request's pool */
    }
    pthread_mutex_unlock(&c->lock);
    if (hit && refused && quiet)
        return cont(ar, NULL, arg), 0;
    if (hit && refused)
        return api_send_unauthenticated(ar, 1, "The access token is no longer valid."), 0;
    if (hit) {
        cont(ar, param, arg);
        return 0;
    }
    caller_wait_t *w = h2o_mem_alloc_pool(&ar->req->pool, sizeof(*w));
    *w = (caller_wait_t){module, cont, arg, quiet};
    char uid[24], ver[24];
    api_caller_params(ar, uid, ver);
    const char *p[] = {uid, ver};
    return crud_query(ar, SQL_CALLER, 2, p, on_fetch, w);
}

int api_caller_read_scope(api_req_t *ar, const char *module, api_caller_fn cont, void *arg)
{
    return read_scope(ar, module, cont, arg, 0);
}

int api_caller_read_scope_quiet(api_req_t *ar, const char *module, api_caller_fn cont, void *arg)
{
    return read_scope(ar, module, cont, arg, 1);
}
