/*
 * api/modules.c - modules switched on and off at run time (see modules.h).
 *
 * Three parts. The derivation, at start-up: the module names, each route's
 * module, and the served spec cut into pieces (the members before and
 * after `paths`, and per path its members, each operation tagged with the
 * module of its route), from which a copy without some modules' operations
 * is concatenated per request in well under a millisecond, with no parse.
 * The process's set of switched-off modules: a bit mask and the time it was
 * read, in atomics, refreshed by at most one request at a time once older
 * than MODULES_TTL_MS. And the handlers: the gate the pipeline calls,
 * /v1/settings/modules, and the spec documents.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "crud.h"
#include "engine.h"
#include "modules.h"
#include "modules_db.h"

/* One member of a path item of the spec: an operation (module >= 0 when its route has one) or anything else. */
typedef struct st_spec_member_t {
    char *text; /* "\"get\":{...}" */
    int module; /* -1: kept whatever is switched off */
    int op;     /* an operation (get, put, post, ...) */
} spec_member_t;

typedef struct st_spec_path_t {
    char *key; /* "\"/v1/customers\"" */
    spec_member_t *members;
    size_t n;
} spec_path_t;

struct st_api_modules_t {
    size_t n;
    const char *names[MODULES_MAX];
    int *route_module; /* per route: module index or -1 */
    size_t nroutes;
    /* The spec: head + paths joined by ',' + tail. */
    char *head, *tail;
    spec_path_t *paths;
    size_t npaths;
    size_t spec_len; /* the length of every piece with its separators: at least that of any copy */
    /* The process's view of what is switched off. */
    _Atomic uint64_t disabled;
    _Atomic int64_t read_ms; /* when `disabled` was read; -1: never */
    _Atomic int refreshing;
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* --- derivation ------------------------------------------------------------------------- */

/* Does template t start with prefix at a segment boundary? */
static int has_prefix(const char *t, const char *prefix)
{
    size_t n = strlen(prefix);
    return strncmp(t, prefix, n) == 0 && (t[n] == '\0' || t[n] == '/');
}

/* A resource every user reads (custom field definitions) is configuration that forms use, not a module. */
static int is_module(const engine_resource_t *r)
{
    return !r->public_read;
}

const char *api_route_module(const api_route_t *route, const struct st_engine_resource_t *const *resources)
{
    if (route->resource != NULL)
        return is_module(route->resource) ? route->resource->name : NULL;
    for (const api_route_module_t *m = api_route_modules; m->prefix != NULL; m++)
        if (has_prefix(route->path, m->prefix))
            return m->module;
    for (size_t i = 0; resources[i] != NULL; i++) {
        if (!is_module(resources[i]))
            continue;
        char prefix[80];
        snprintf(prefix, sizeof(prefix), "/v1/%s", resources[i]->name);
        if (has_prefix(route->path, prefix))
            return resources[i]->name;
    }
    return NULL;
}

int api_modules_index(const api_modules_t *m, const char *name)
{
    for (size_t i = 0; i < m->n; i++)
        if (strcmp(m->names[i], name) == 0)
            return (int)i;
    return -1;
}

size_t api_modules_count(const api_modules_t *m)
{
    return m->n;
}

const char *api_modules_name(const api_modules_t *m, size_t i)
{
    return i < m->n ? m->names[i] : NULL;
}

static int add_name(api_modules_t *m, const char *name, char *err, size_t errlen)
{
    if (api_modules_index(m, name) >= 0)
        return 0;
    if (m->n == MODULES_MAX) {
        snprintf(err, errlen, "more than %d modules", MODULES_MAX);
        return -1;
    }
    m->names[m->n++] = name;
    return 0;
}

static char *dump_member(const char *key, json_t *value)
{
    json_t *k = json_string(key);
    char *ks = json_dumps(k, JSON_ENCODE_ANY),
         *vs = json_dumps(value, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY);
    json_decref(k);
    if (ks == NULL || vs == NULL)
        abort();
    size_t n = strlen(ks) + 1 + strlen(vs) + 1;
    char *s = malloc(n);
    if (s == NULL)
        abort();
    snprintf(s, n, "%s:%s", ks, vs);
    free(ks);
    free(vs);
    return s;
}

static const char *const op_names[] = {"get", "put", "post", "delete", "options", "head", "patch", "trace", NULL};
static const unsigned op_bits[] = {ROUTER_GET,     ROUTER_PUT,  ROUTER_POST,  ROUTER_DELETE,
                                   ROUTER_OPTIONS, ROUTER_HEAD, ROUTER_PATCH, 0};

/* The module of the route serving (method, label), or -1. */
static int module_of_op(const api_modules_t *m, const api_route_t *routes, const char *label, unsigned method)
{
    for (size_t i = 0; i < m->nroutes; i++) {
        char l[256];
        router_template_label(routes[i].path, l, sizeof(l));
        if (routes[i].method == method && strcmp(l, label) == 0)
            return m->route_module[i];
    }
    return -1;
}

/* Appends "a,b" style text of `parts` into a malloc'ed string with `open` before and `close` after. */
static char *join(const char *open, char **parts, size_t n, const char *close)
{
    size_t len = strlen(open) + strlen(close) + 1;
    for (size_t i = 0; i < n; i++)
        len += strlen(parts[i]) + 1;
    char *s = malloc(len), *o = s;
    if (s == NULL)
        abort();
    o += sprintf(o, "%s", open);
    for (size_t i = 0; i < n; i++)
        o += sprintf(o, "%s%s", i > 0 ? "," : "", parts[i]);
    sprintf(o, "%s", close);
    return s;
}

static int cut_spec(api_modules_t *m, const api_route_t *routes, h2o_iovec_t spec_json, char *err, size_t errlen)
{
    json_error_t jerr;
    json_t *doc = json_loadb(spec_json.base, spec_json.len, 0, &jerr), *paths;
    if (!json_is_object(doc) || !json_is_object(paths = json_object_get(doc, "paths"))) {
        snprintf(err, errlen, "the spec has no paths object");
        json_decref(doc);
        return -1;
    }
    size_t ntop = json_object_size(doc), nb = 0, na = 0;
    char **before = calloc(ntop, sizeof(char *)), **after = calloc(ntop, sizeof(char *));
    if (before == NULL || after == NULL)
        abort();
    int seen = 0;
    const char *key;
    json_t *v;
    json_object_foreach(doc, key, v)
    {
        if (strcmp(key, "paths") == 0)
            seen = 1;
        else if (seen)
            after[na++] = dump_member(key, v);
        else
            before[nb++] = dump_member(key, v);
    }
    char *b = join("{", before, nb, nb > 0 ? ",\"paths\":{" : "\"paths\":{");
    /* The tail: "}" closing paths, then ",member" for each later member, then "}". */
    size_t tl = 3;
    for (size_t i = 0; i < na; i++)
        tl += strlen(after[i]) + 1;
    m->tail = malloc(tl);
    if (m->tail == NULL)
        abort();
    char *o = m->tail;
    o += sprintf(o, "}");
    for (size_t i = 0; i < na; i++)
        o += sprintf(o, ",%s", after[i]);
    sprintf(o, "}");
    m->head = b;
    for (size_t i = 0; i < nb; i++)
        free(before[i]);
    for (size_t i = 0; i < na; i++)
        free(after[i]);
    free(before);
    free(after);

    m->npaths = json_object_size(paths);
    m->paths = calloc(m->npaths + 1, sizeof(*m->paths));
    if (m->paths == NULL)
        abort();
    /* The longest copy: every piece, with its separators. */
    m->spec_len = strlen(m->head) + strlen(m->tail);
    size_t pi = 0;
    json_t *item;
    json_object_foreach(paths, key, item)
    {
        spec_path_t *p = &m->paths[pi++];
        json_t *k = json_string(key);
        p->key = json_dumps(k, JSON_ENCODE_ANY);
        json_decref(k);
        p->members = calloc(json_object_size(item) + 1, sizeof(*p->members));
        if (p->key == NULL || p->members == NULL)
            abort();
        m->spec_len += strlen(p->key) + 4;
        const char *mk;
        json_t *mv;
        json_object_foreach(item, mk, mv)
        {
            spec_member_t *sm = &p->members[p->n++];
            sm->text = dump_member(mk, mv);
            m->spec_len += strlen(sm->text) + 1;
            sm->module = -1;
            for (int o = 0; op_names[o] != NULL; o++)
                if (strcmp(mk, op_names[o]) == 0) {
                    sm->op = 1;
                    sm->module = op_bits[o] != 0 ? module_of_op(m, routes, key, op_bits[o]) : -1;
                }
        }
    }
    json_decref(doc);
    return 0;
}

api_modules_t *api_modules_new(const api_route_t *routes, size_t nroutes,
                               const struct st_engine_resource_t *const *resources, h2o_iovec_t spec_json, char *err,
                               size_t errlen)
{
    api_modules_t *m = calloc(1, sizeof(*m));
    if (m == NULL)
        abort();
    atomic_init(&m->disabled, 0);
    atomic_init(&m->read_ms, -1);
    atomic_init(&m->refreshing, 0);
    for (size_t i = 0; resources[i] != NULL; i++)
        if (is_module(resources[i]) && add_name(m, resources[i]->name, err, errlen) != 0)
            goto Fail;
    for (const api_route_module_t *rm = api_route_modules; rm->prefix != NULL; rm++)
        if (add_name(m, rm->module, err, errlen) != 0)
            goto Fail;
    m->nroutes = nroutes;
    m->route_module = calloc(nroutes + 1, sizeof(int));
    if (m->route_module == NULL)
        abort();
    for (size_t i = 0; i < nroutes; i++) {
        const char *name = api_route_module(&routes[i], resources);
        m->route_module[i] = name != NULL ? api_modules_index(m, name) : -1;
    }
    if (cut_spec(m, routes, spec_json, err, errlen) != 0)
        goto Fail;
    return m;
Fail:
    api_modules_free(m);
    return NULL;
}

void api_modules_free(api_modules_t *m)
{
    if (m == NULL)
        return;
    for (size_t i = 0; i < m->npaths; i++) {
        for (size_t j = 0; j < m->paths[i].n; j++)
            free(m->paths[i].members[j].text);
        free(m->paths[i].members);
        free(m->paths[i].key);
    }
    free(m->paths);
    free(m->head);
    free(m->tail);
    free(m->route_module);
    free(m);
}

/* --- the spec without some modules -------------------------------------------------------- */

/* Writes the copy into out (at least m->spec_len + 1 bytes); returns its length. */
static size_t assemble(const api_modules_t *m, uint64_t mask, char *out)
{
    char *o = out;
    o = stpcpy(o, m->head);
    int first_path = 1;
    for (size_t i = 0; i < m->npaths; i++) {
        const spec_path_t *p = &m->paths[i];
        int ops = 0;
        for (size_t j = 0; j < p->n; j++)
            ops += p->members[j].op && (p->members[j].module < 0 || !(mask >> p->members[j].module & 1));
        if (ops == 0)
            continue;
        o += sprintf(o, "%s%s:{", first_path ? "" : ",", p->key);
        first_path = 0;
        int first = 1;
        for (size_t j = 0; j < p->n; j++) {
            const spec_member_t *sm = &p->members[j];
            if (sm->module >= 0 && (mask >> sm->module & 1))
                continue;
            o += sprintf(o, "%s%s", first ? "" : ",", sm->text);
            first = 0;
        }
        *o++ = '}';
    }
    o = stpcpy(o, m->tail);
    return (size_t)(o - out);
}

char *api_modules_spec(const api_modules_t *m, uint64_t mask, size_t *len)
{
    char *out = malloc(m->spec_len + 1);
    if (out == NULL)
        abort();
    *len = assemble(m, mask, out);
    return out;
}

/* --- the process's set of switched-off modules ------------------------------------------- */

/* The mask of a JSON array of module names (names this API does not have are ignored). */
static uint64_t mask_of(const api_modules_t *m, const char *disabled_json)
{
    json_t *a = json_loads(disabled_json, 0, NULL), *v;
    uint64_t mask = 0;
    size_t i;
    json_array_foreach(a, i, v)
    {
        int k = json_is_string(v) ? api_modules_index(m, json_string_value(v)) : -1;
        if (k >= 0)
            mask |= (uint64_t)1 << k;
    }
    json_decref(a);
    return mask;
}

static void remember(api_modules_t *m, uint64_t mask)
{
    atomic_store(&m->disabled, mask);
    atomic_store(&m->read_ms, now_ms());
}

typedef void (*with_mask_fn)(api_req_t *ar, uint64_t mask, void *arg);

typedef struct st_mask_wait_t {
    api_req_t *ar;
    with_mask_fn cont;
    void *arg;
    int owner;        /* this read is the process's refresh */
    int64_t stale_ms; /* read_ms of the set it may fall back to; -1: none */
} mask_wait_t;

static void on_mask(void *data, const PGresult *res, int err)
{
    mask_wait_t *w = data;
    api_req_t *ar = w->ar;
    api_modules_t *m = ar->thread->server->modules;
    int ok = err == 0 && PQntuples(res) == 1;
    if (ok)
        remember(m, mask_of(m, PQgetvalue(res, 0, 0)));
    if (w->owner)
        atomic_store(&m->refreshing, 0);
    if (ar->req != NULL) {
        if (ok || w->stale_ms >= 0)
            w->cont(ar, atomic_load(&m->disabled), w->arg);
        else
            api_send_error(ar, err != 0 ? err : ERR_INTERNAL, NULL);
    }
    api_req_release(ar);
    free(w);
}

/*
 * Calls cont with the switched-off modules, now when the process's set is
 * fresh (or another request is refreshing it), else after reading it.
 * Answers an error itself when the set was never read and cannot be.
 */
static void with_mask(api_req_t *ar, with_mask_fn cont, void *arg)
{
    api_modules_t *m = ar->thread->server->modules;
    int64_t read = atomic_load(&m->read_ms);
    if (read >= 0 && now_ms() - read < MODULES_TTL_MS) {
        cont(ar, atomic_load(&m->disabled), arg);
        return;
    }
    int owner = atomic_exchange(&m->refreshing, 1) == 0;
    if (!owner && read >= 0) {
        cont(ar, atomic_load(&m->disabled), arg);
        return;
    }
    mask_wait_t *w = malloc(sizeof(*w));
    if (w == NULL)
        abort();
    *w = (mask_wait_t){ar, cont, arg, owner, read};
    int ret = modules_db_disabled(ar->thread->db, on_mask, w);
    if (ret != 0) {
        free(w);
        if (owner)
            atomic_store(&m->refreshing, 0);
        if (read >= 0)
            cont(ar, atomic_load(&m->disabled), arg);
        else
            api_send_error(ar, ret, NULL);
        return;
    }
    api_req_hold(ar);
}

/* --- the gate ------------------------------------------------------------------------------ */

int api_is_admin(const api_req_t *ar)
{
    return ar->user_id != 0 && strcmp(ar->claims.role, "admin") == 0;
}

static int send_disabled(api_req_t *ar, const char *name)
{
    char detail[160];
    snprintf(detail, sizeof(detail), "The %s module is switched off; an administrator can switch it on.", name);
    return api_send_problem(ar, "module-disabled", detail);
}

typedef struct st_gate_t {
    void (*next)(api_req_t *ar);
} gate_t;

static void gate_with(api_req_t *ar, uint64_t mask, void *arg)
{
    api_modules_t *m = ar->thread->server->modules;
    int k = m->route_module[ar->route_index];
    if (mask >> k & 1)
        send_disabled(ar, m->names[k]);
    else
        ((gate_t *)arg)->next(ar);
}

void api_modules_gate(api_req_t *ar, void (*next)(api_req_t *ar))
{
    api_modules_t *m = ar->thread->server->modules;
    if (ar->route_index < 0 || m->route_module[ar->route_index] < 0 || api_is_admin(ar)) {
        next(ar);
        return;
    }
    gate_t *g = h2o_mem_alloc_pool(&ar->req->pool, sizeof(*g));
    g->next = next;
    with_mask(ar, gate_with, g);
}

typedef struct st_names_t {
    void (*cont)(api_req_t *ar, const char *disabled, void *arg);
    void *arg;
} names_t;

static void names_with(api_req_t *ar, uint64_t mask, void *arg)
{
    names_t *n = arg;
    api_modules_t *m = ar->thread->server->modules;
    crud_buf_t b;
    crud_buf_init(&b, &ar->req->pool, 64);
    crud_buf_puts(&b, "{");
    for (size_t i = 0; i < m->n; i++)
        if (mask >> i & 1) {
            /* Module names are plain lower-case identifiers: nothing to quote in an array literal. */
            crud_buf_puts(&b, b.len > 1 ? "," : "");
            crud_buf_puts(&b, m->names[i]);
        }
    crud_buf_append(&b, "}", 2); /* with the NUL */
    n->cont(ar, b.base, n->arg);
}

void api_modules_disabled_names(api_req_t *ar, void (*cont)(api_req_t *ar, const char *disabled, void *arg), void *arg)
{
    if (api_is_admin(ar)) {
        cont(ar, "{}", arg);
        return;
    }
    names_t *n = h2o_mem_alloc_pool(&ar->req->pool, sizeof(*n));
    *n = (names_t){cont, arg};
    with_mask(ar, names_with, n);
}

/* --- GET /v1/me ----------------------------------------------------------------------------- */

json_t *api_modules_usable(const api_modules_t *m, const json_t *permissions, int admin, const char *disabled_json)
{
    uint64_t mask = admin ? 0 : mask_of(m, disabled_json);
    json_t *out = json_array();
    for (size_t i = 0; i < m->n; i++) {
        json_t *actions = json_object_get(permissions, m->names[i]), *scope;
        const char *action;
        int any = 0;
        json_object_foreach(actions, action, scope)
        {
            any |= json_is_string(scope) && strcmp(json_string_value(scope), "none") != 0;
        }
        if (any && !(mask >> i & 1))
            json_array_append_new(out, json_string(m->names[i]));
    }
    return out;
}

/* --- the spec documents --------------------------------------------------------------------- */

static void send_spec(api_req_t *ar, uint64_t mask, void *arg)
{
    api_server_t *server = ar->thread->server;
    int yaml = (int)(intptr_t)arg;
    if (mask == 0) {
        h2o_iovec_t v = yaml ? server->openapi_yaml : server->openapi_json;
        api_send_raw(ar, 200, yaml ? "application/yaml" : "application/json", v.base, v.len);
        return;
    }
    /* JSON is YAML: the tailored document is served in JSON syntax under both names. */
    char *out = h2o_mem_alloc_pool(&ar->req->pool, server->modules->spec_len + 1);
    size_t len = assemble(server->modules, mask, out);
    api_send_raw(ar, 200, yaml ? "application/yaml" : "application/json", out, len);
}

int api_modules_send_spec(api_req_t *ar, int yaml)
{
    /* A public route: a valid token of an administrator gets everything, anything else what everyone gets. */
    if (api_authenticate_quiet(ar) == 0 && api_is_admin(ar)) {
        send_spec(ar, 0, (void *)(intptr_t)yaml);
        return 0;
    }
    with_mask(ar, send_spec, (void *)(intptr_t)yaml);
    return 0;
}

/* --- /v1/settings/modules --------------------------------------------------------------------- */

static json_t *settings_json(const api_modules_t *m, uint64_t mask)
{
    json_t *o = json_object();
    for (size_t i = 0; i < m->n; i++)
        json_object_set_new(o, m->names[i], json_pack("{s:b}", "enabled", !(mask >> i & 1)));
    return o;
}

static void on_get(api_req_t *ar, const PGresult *res, int err, void *arg)
{
    if (crud_check_result(ar, res, err) != 0)
        return;
    if (strcmp(PQgetvalue(res, 0, 0), "t") != 0) {
        api_send_unauthenticated(ar, 1, "The access token is no longer valid.");
        return;
    }
    api_modules_t *m = ar->thread->server->modules;
    uint64_t mask = mask_of(m, PQgetvalue(res, 0, 1));
    remember(m, mask);
    api_send_json(ar, 200, settings_json(m, mask));
}

int settings_modules_get(api_req_t *ar)
{
    return modules_db_get(ar, on_get, NULL);
}

static void on_set(api_req_t *ar, const PGresult *res, int err, void *arg)
{
    if (crud_check_result(ar, res, err) != 0)
        return;
    const char *outcome = PQgetvalue(res, 0, 0);
    if (strcmp(outcome, "unauthenticated") == 0) {
        api_send_unauthenticated(ar, 1, "The access token is no longer valid.");
        return;
    }
    if (strcmp(outcome, "forbidden") == 0) {
        api_send_error(ar, ERR_FORBIDDEN, "Only administrators switch modules on and off.");
        return;
    }
    api_modules_t *m = ar->thread->server->modules;
    uint64_t mask = mask_of(m, PQgetvalue(res, 0, 1));
    remember(m, mask);
    log_msg(LOG_INFO, "request %s: user %lld set the modules; switched off now: %s", ar->request_id,
            (long long)ar->user_id, PQgetvalue(res, 0, 1));
    api_send_json(ar, 200, settings_json(m, mask));
}

/*
 * Reads a body of {"<module>": {"enabled": bool}} into values ({"<module>":
 * bool}). A merge patch may give null for a module: back to its default
 * (on). PUT: every module the body leaves out is back to its default.
 * Answers 422 and returns -1 when the body is bad.
 */
static int read_body(api_req_t *ar, int patch, json_t *values)
{
    api_modules_t *m = ar->thread->server->modules;
    json_t *errors = json_array();
    const char *key;
    json_t *v;
    if (!json_is_object(ar->body)) {
        api_error_add(errors, "", VALIDATE_E_INVALID_TYPE, "The body must be an object of modules.");
    } else {
        json_object_foreach(ar->body, key, v)
        {
            char field[160];
            snprintf(field, sizeof(field), "%.100s", key);
            if (api_modules_index(m, key) < 0) {
                api_error_add(errors, field, VALIDATE_E_UNKNOWN_FIELD, "There is no module of this name.");
                continue;
            }
            if (patch && json_is_null(v)) {
                json_object_set_new(values, key, json_true());
                continue;
            }
            if (!json_is_object(v)) {
                api_error_add(errors, field, VALIDATE_E_INVALID_TYPE,
                              "A module's setting is an object: {\"enabled\": true}.");
                continue;
            }
            const char *k2;
            json_t *v2;
            json_object_foreach(v, k2, v2)
            {
                if (strcmp(k2, "enabled") != 0) {
                    char f2[300];
                    snprintf(f2, sizeof(f2), "%s.%.100s", field, k2);
                    api_error_add(errors, f2, VALIDATE_E_UNKNOWN_FIELD, "A module has only `enabled`.");
                }
            }
            json_t *en = json_object_get(v, "enabled");
            char f3[200];
            snprintf(f3, sizeof(f3), "%s.enabled", field);
            if (en == NULL || json_is_null(en))
                api_error_add(errors, f3, VALIDATE_E_REQUIRED, "Say whether the module is on: true or false.");
            else if (!json_is_boolean(en))
                api_error_add(errors, f3, VALIDATE_E_INVALID_TYPE, "enabled is true or false.");
            else
                json_object_set_new(values, key, json_boolean(json_is_true(en)));
        }
    }
    if (json_array_size(errors) > 0) {
        api_send_invalid(ar, 422, "The module settings are invalid.", errors);
        return -1;
    }
    json_decref(errors);
    if (!patch)
        for (size_t i = 0; i < m->n; i++)
            if (json_object_get(values, m->names[i]) == NULL)
                json_object_set_new(values, m->names[i], json_true());
    return 0;
}

static int set_modules(api_req_t *ar, int patch)
{
    json_t *values = json_object();
    int ret = 0;
    if (read_body(ar, patch, values) == 0)
        ret = modules_db_set(ar, crud_dump(ar, values), on_set, NULL);
    json_decref(values);
    return ret;
}

int settings_modules_put(api_req_t *ar)
{
    return set_modules(ar, 0);
}

int settings_modules_patch(api_req_t *ar)
{
    return set_modules(ar, 1);
}
