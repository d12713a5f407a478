/*
 * api/engine.c - the generic handlers of every engine resource.
 *
 * The route row names the resource (ar->route->resource); the pipeline has
 * authenticated the caller and parsed the body. Each handler checks the
 * request against the description, then sends the resource's generated
 * statement (api/engine_sql.c) and lets api/crud.c turn the result into
 * the standard answer.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "crud.h"
#include "engine_int.h"
#include "engine_routes.h"

static const engine_t *engine_of(api_req_t *ar)
{
    return ar->thread->server->engine;
}

static const engine_res_t *res_of_req(api_req_t *ar)
{
    return engine_res(engine_of(ar), ar->route->resource);
}

/* --- bodies ----------------------------------------------------------------- */

/* The rule every child resource shares: exactly one way of naming its parent (on create and replace). */
static void check_parent_ref(const engine_resource_t *r, json_t *item, unsigned mode, const char *prefix,
                             json_t *errors)
{
    char field[96];
    if (r->scope.kind != ENGINE_PARENT || r->scope.ref_external == NULL || !json_is_object(item))
        return;
    json_t *id = json_object_get(item, r->scope.ref), *ext = json_object_get(item, r->scope.ref_external);
    if ((mode & 0xff) == VALIDATE_PATCH) {
        if (ext != NULL) {
            snprintf(field, sizeof(field), "%s%s%s", prefix, *prefix ? "." : "", r->scope.ref_external);
            char msg[96];
            snprintf(msg, sizeof(msg), "use %s to move a %s", r->scope.ref, r->singular);
            api_error_add(errors, field, "read_only", msg);
        }
        return;
    }
    int id_bad = id != NULL && validate_id_value(id, NULL) != 0;
    int ext_bad =
        ext != NULL && (!json_is_string(ext) || json_string_length(ext) == 0 || json_string_length(ext) > 200);
    if (!id_bad && !ext_bad && (id == NULL) == (ext == NULL)) {
        char msg[128];
        snprintf(field, sizeof(field), "%s%s%s", prefix, *prefix ? "." : "", r->scope.ref);
        snprintf(msg, sizeof(msg), "give exactly one of %s and %s", r->scope.ref, r->scope.ref_external);
        api_error_add(errors, field, id == NULL ? "required" : "invalid_value", msg);
    }
}

void engine_check_item(const engine_t *e, const engine_resource_t *r, json_t *item, unsigned mode, const char *prefix,
                       json_t *errors)
{
    size_t nvf;
    const validate_field_t *vf = engine_validate_fields(e, r, &nvf);
    validate_object(item, vf, nvf, mode, prefix, errors);
    if (!json_is_object(item))
        return;
    if ((mode & 0xff) == VALIDATE_PATCH)
        for (size_t i = 0; i < r->nfields; i++)
            if ((r->fields[i].ef & EF_CREATE_ONLY) && json_object_get(item, r->fields[i].v.name) != NULL) {
                char field[96];
                snprintf(field, sizeof(field), "%s%s%s", prefix, *prefix ? "." : "", r->fields[i].v.name);
                api_error_add(errors, field, "read_only", "is set when the record is created");
            }
    check_parent_ref(r, item, mode, prefix, errors);
    if (r->item_check != NULL)
        r->item_check(item, mode, prefix, errors);
}

/* Checks and trims a body; answers 422 with every error and returns nonzero when it is bad. */
static int check_body(api_req_t *ar, const engine_resource_t *r, json_t *body, unsigned mode)
{
    json_t *errors = json_array();
    engine_check_item(engine_of(ar), r, body, mode, "", errors);
    if (json_array_size(errors) > 0) {
        char detail[96];
        snprintf(detail, sizeof(detail), "The %s has invalid fields.", r->singular);
        api_send_invalid(ar, 422, detail, errors);
        return -1;
    }
    json_decref(errors);
    size_t nvf;
    const validate_field_t *vf = engine_validate_fields(engine_of(ar), r, &nvf);
    validate_trim(body, vf, nvf);
    return 0;
}

int engine_prepare_bulk(const engine_t *e, const engine_resource_t *r, json_t *items, api_prepared_t *out)
{
    json_t *errors = json_array(), *item;
    size_t max = r->bulk_max ? r->bulk_max : 5000;
    out->errors = NULL;
    if (!json_is_array(items) || json_array_size(items) == 0 || json_array_size(items) > max) {
        char msg[80];
        snprintf(msg, sizeof(msg), "must be a JSON array (or NDJSON) of 1 to %zu items", max);
        api_error_add(errors, "",
                      !json_is_array(items)         ? "invalid_type"
                      : json_array_size(items) == 0 ? "too_short"
                                                    : "too_many",
                      msg);
        snprintf(out->detail, sizeof(out->detail), "The body must list 1 to %zu %s.", max, r->name);
        out->errors = errors;
        return -1;
    }
    size_t nvf;
    const validate_field_t *vf = engine_validate_fields(e, r, &nvf);
    json_t *seen = json_object();
    size_t i;
    json_array_foreach(items, i, item)
    {
        char prefix[24], field[48];
        snprintf(prefix, sizeof(prefix), "[%zu]", i);
        engine_check_item(e, r, item, VALIDATE_REPLACE, prefix, errors);
        if (!json_is_object(item))
            continue;
        json_t *ext = json_object_get(item, "external_id");
        snprintf(field, sizeof(field), "[%zu].external_id", i);
        if (!json_is_string(ext)) {
            api_error_add(errors, field, "required", "is required in bulk requests");
        } else {
            if (json_object_get(seen, json_string_value(ext)) != NULL)
                api_error_add(errors, field, "duplicate", "appears more than once in this request");
            json_object_set_new(seen, json_string_value(ext), json_true());
        }
        validate_trim(item, vf, nvf);
    }
    json_decref(seen);
    if (json_array_size(errors) > 0) {
        snprintf(out->detail, sizeof(out->detail), "Some %s are invalid; nothing was written.", r->name);
        out->errors = errors;
        return -1;
    }
    json_decref(errors);
    out->text = json_dumps(items, JSON_COMPACT);
    return out->text != NULL ? 0 : -1;
}

/* --- answers ------------------------------------------------------------------ */

typedef struct st_write_ctx_t {
    crud_resource_t cr;
    const engine_resource_t *r;
    crud_upsert_t up; /* upserts only */
} write_ctx_t;

static write_ctx_t *write_ctx(api_req_t *ar)
{
    const engine_resource_t *r = ar->route->resource;
    write_ctx_t *w = h2o_mem_alloc_pool(&ar->req->pool, sizeof(*w));
    memset(w, 0, sizeof(*w));
    char *coll = h2o_mem_alloc_pool(&ar->req->pool, strlen(r->name) + 5);
    sprintf(coll, "/v1/%s", r->name);
    if (r->path != NULL)
        coll = (char *)r->path;
    char *dup = h2o_mem_alloc_pool(&ar->req->pool, strlen(r->singular) + 48);
    sprintf(dup, "Another %s already has this external_id.", r->singular);
    w->cr = (crud_resource_t){coll, dup};
    w->r = r;
    return w;
}

/* The check a "rule_<n>" outcome names, or NULL. */
static const engine_check_t *rule_of(const engine_resource_t *r, const char *outcome)
{
    if (strncmp(outcome, "rule_", 5) != 0)
        return NULL;
    size_t n = strtoul(outcome + 5, NULL, 10);
    return n < r->nchecks ? &r->checks[n] : NULL;
}

/* A description's rule refused the write (outcome "rule_<n>"): 422 naming its field. */
static int send_rule(api_req_t *ar, const engine_resource_t *r, const char *outcome)
{
    const engine_check_t *c = rule_of(r, outcome);
    if (c == NULL)
        return 0;
    json_t *errors = json_array();
    api_error_add(errors, c->field, "invalid_value", c->message);
    char detail[96];
    snprintf(detail, sizeof(detail), "The %s breaks a rule of its fields.", r->singular);
    api_send_invalid(ar, 422, detail, errors);
    return 1;
}

/*
 * A rule the database enforced (engine_check_t.constraint) refused the
 * write: 422 naming its field. In a bulk the error's detail is the
 * record's external id, which names the item.
 */
static int send_constraint(api_req_t *ar, const engine_resource_t *r, const PGresult *res, int bulk)
{
    const char *st = res != NULL ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    const char *name = res != NULL ? PQresultErrorField(res, PG_DIAG_CONSTRAINT_NAME) : NULL;
    if (st == NULL || name == NULL || strcmp(st, "23514") != 0)
        return 0;
    for (size_t i = 0; i < r->nchecks; i++)
        if (r->checks[i].constraint != NULL && strcmp(r->checks[i].constraint, name) == 0) {
            char field[96], detail[96], prefix[32] = "";
            const char *ext = PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL);
            json_t *item;
            size_t k;
            if (bulk && ext != NULL && json_is_array(ar->body))
                json_array_foreach(ar->body, k,
                                   item) if (json_is_string(json_object_get(item, "external_id")) &&
                                             strcmp(json_string_value(json_object_get(item, "external_id")), ext) == 0)
                    snprintf(prefix, sizeof(prefix), "[%zu].", k);
            snprintf(field, sizeof(field), "%s%s", prefix, r->checks[i].field);
            json_t *errors = json_array();
            api_error_add(errors, field, "invalid_value", r->checks[i].message);
            snprintf(detail, sizeof(detail), "The change breaks a rule of the %s.", r->name);
            api_send_invalid(ar, 422, detail, errors);
            return 1;
        }
    return 0;
}

static void on_write(api_req_t *ar, const PGresult *res, int err, void *arg)
{
    write_ctx_t *w = arg;
    if (err != 0 && send_constraint(ar, w->r, res, 0))
        return;
    if (err == 0 && res != NULL && PQntuples(res) > 0 && send_rule(ar, w->r, PQgetvalue(res, 0, 0)))
        return;
    crud_on_write(ar, res, err, &w->cr);
}

static void on_upsert(api_req_t *ar, const PGresult *res, int err, void *arg)
{
    crud_upsert_t *u = arg;
    write_ctx_t *w = H2O_STRUCT_FROM_MEMBER(write_ctx_t, up, u);
    if (err == ERR_CONFLICT && !u->retried) {
        u->retried = 1;
        int ret = u->send(ar, u, on_upsert);
        if (ret != 0)
            api_send_error(ar, ret, NULL);
        return;
    }
    on_write(ar, res, err, w);
}

#define CALLER(ar)                                                                                                     \
    char uid_[24], ver_[24];                                                                                           \
    api_caller_params(ar, uid_, ver_)

/* A read statement waiting for its caller: $1 and $2 are filled in when the caller is known (api/callers.c). */
typedef struct st_read_t {
    const char *sql;
    char *owned; /* a statement composed for this request (freed after it ran), or NULL */
    int n;
    const char **p; /* n parameters, pool memory */
    unsigned flags;
    const engine_uses_t *uses; /* or NULL */
    crud_done_fn done;
    void *arg;
} read_t;

void engine_uses_add(engine_uses_t *u, const char *param, const char *field, int status)
{
    if (field != NULL && u->n < ENGINE_USES_MAX)
        u->u[u->n].param = param, u->u[u->n].field = field, u->u[u->n++].status = status;
}

void engine_uses_filters(engine_uses_t *u, const engine_res_t *res, const crud_query_t *q)
{
    for (int i = 0; i < res->nparams; i++) {
        const engine_param_t *p = &res->params[i];
        if (crud_query_get(q, p->name) != NULL)
            engine_uses_add(u, p->name,
                            p->field != NULL    ? p->field->v.name
                            : p->filter != NULL ? p->filter->field
                                                : NULL,
                            400);
    }
}

void engine_uses_projection(api_req_t *ar, engine_uses_t *u, const char *fields)
{
    if (fields == NULL || fields[0] != '{')
        return;
    char *copy = h2o_strdup(&ar->req->pool, fields + 1, SIZE_MAX).base, *save = NULL;
    copy[strcspn(copy, "}")] = '\0';
    for (char *f = strtok_r(copy, ",", &save); f != NULL; f = strtok_r(NULL, ",", &save))
        engine_uses_add(u, "fields", f, 400);
}

int engine_refuse_hidden(api_req_t *ar, const char *scope, const engine_uses_t *uses)
{
    for (int i = 0; uses != NULL && i < uses->n; i++) {
        if (!api_caller_hides(scope, uses->u[i].field))
            continue;
        if (uses->u[i].status == 403) {
            json_t *errors = json_array();
            api_error_add(errors, uses->u[i].param, "forbidden_field", "names a field your role may not see");
            api_send_invalid(ar, 403, "Your role may not see a field this report needs.", errors);
        } else {
            crud_bad_query(ar, uses->u[i].param, "unknown_parameter", "is not a parameter of this endpoint");
        }
        return 1;
    }
    return 0;
}

static void run_read(api_req_t *ar, const char *scope, void *arg)
{
    read_t *rd = arg;
    if (engine_refuse_hidden(ar, scope, rd->uses)) {
        free(rd->owned);
        rd->owned = NULL;
        return;
    }
    char *uid = h2o_mem_alloc_pool(&ar->req->pool, 24);
    rd->p[0] = db_fmt_i64(uid, ar->claims.sub);
    rd->p[1] = scope;
    int ret = rd->owned != NULL ? crud_query_owned(ar, rd->owned, rd->n, rd->p, rd->done, rd->arg)
                                : crud_query_flags(ar, rd->sql, rd->n, rd->p, rd->flags, rd->done, rd->arg);
    rd->owned = NULL;
    if (ret != 0)
        api_send_error(ar, ret, NULL);
}

int engine_read(api_req_t *ar, const char *sql, char *owned, int n, const char *const *p, unsigned flags,
                crud_done_fn done, void *arg)
{
    return engine_read_using(ar, sql, owned, n, p, flags, NULL, done, arg);
}

int engine_read_using(api_req_t *ar, const char *sql, char *owned, int n, const char *const *p, unsigned flags,
                      const engine_uses_t *uses, crud_done_fn done, void *arg)
{
    read_t *rd = h2o_mem_alloc_pool(&ar->req->pool, sizeof(*rd));
    const char **pp = h2o_mem_alloc_pool(&ar->req->pool, sizeof(*pp) * (size_t)n);
    memcpy(pp, p, sizeof(*pp) * (size_t)n);
    *rd = (read_t){sql, owned, n, pp, flags, uses, done, arg};
    int ret = api_caller_read_scope(ar, ar->route->resource->name, run_read, rd);
    if (ret != 0)
        free(rd->owned);
    return ret;
}

/* --- one record ---------------------------------------------------------------- */

/* A record that was merged into another answers 404 naming the survivor (api/merge.c); others as every read. */
static void on_get(api_req_t *ar, const PGresult *res, int err, void *arg)
{
    if (err == 0 && PQntuples(res) > 0 && PQnfields(res) > 3 && !PQgetisnull(res, 0, 3)) {
        const engine_resource_t *r = ar->route->resource;
        char detail[160];
        snprintf(detail, sizeof(detail), "This %s was merged into %s %s.", r->singular, r->singular,
                 PQgetvalue(res, 0, 3));
        api_send_problem_extra(ar, ERR_NOT_FOUND, detail,
                         json_pack("{s:I}", "merged_into", (json_int_t)strtoll(PQgetvalue(res, 0, 3), NULL, 10)));
        return;
    }
    crud_on_read(ar, res, err, arg);
}

int engine_get(api_req_t *ar)
{
    char *idb = h2o_mem_alloc_pool(&ar->req->pool, 24);
    const char *p[] = {NULL, NULL, db_fmt_i64(idb, api_param_i64(ar, "id"))};
    return engine_read(ar, engine_sql(engine_of(ar), ar->route->resource, ENGINE_SQL_GET), NULL, 3, p, DB_PIPELINE,
                       on_get, NULL);
}

/* The parent's id of a nested route ("/v1/customers/{id}/contacts"), or NULL. */
static const char *nested_parent(api_req_t *ar, char buf[24])
{
    const engine_resource_t *r = ar->route->resource;
    if (r->scope.kind != ENGINE_PARENT || router_param(&ar->match, "id") == NULL)
        return NULL;
    return db_fmt_i64(buf, api_param_i64(ar, "id"));
}

int engine_create(api_req_t *ar)
{
    const engine_resource_t *r = ar->route->resource;
    char pbuf[24];
    const char *parent = nested_parent(ar, pbuf);
    if (parent != NULL && json_is_object(ar->body)) {
        /* The path names the parent; a body that names another one is refused. */
        json_t *given = json_object_get(ar->body, r->scope.ref);
        if (given != NULL && !(json_is_integer(given) && json_integer_value(given) == api_param_i64(ar, "id"))) {
            json_t *errors = json_array();
            api_error_add(errors, r->scope.ref, "invalid_value", "must equal the id in the path, or be left out");
            return api_send_invalid(ar, 422, "The request names two different parents.", errors);
        }
        json_object_set_new(ar->body, r->scope.ref, json_integer(api_param_i64(ar, "id")));
    }
    if (check_body(ar, r, ar->body, VALIDATE_CREATE) != 0)
        return 0;
    CALLER(ar);
    const char *p[] = {uid_, ver_, crud_dump(ar, ar->body), ar->request_id};
    return crud_query(ar, engine_sql(engine_of(ar), r, ENGINE_SQL_CREATE), 4, p, on_write, write_ctx(ar));
}

int engine_patch(api_req_t *ar)
{
    const engine_resource_t *r = ar->route->resource;
    int64_t version;
    char vbuf[24], idb[24];
    if (crud_if_match(ar, &version) != 0 || check_body(ar, r, ar->body, VALIDATE_PATCH) != 0)
        return 0;
    CALLER(ar);
    const char *p[] = {uid_,
                       ver_,
                       db_fmt_i64(idb, api_param_i64(ar, "id")),
                       crud_dump(ar, ar->body),
                       crud_version_param(version, vbuf),
                       ar->request_id};
    return crud_query(ar, engine_sql(engine_of(ar), r, ENGINE_SQL_PATCH), 6, p, on_write, write_ctx(ar));
}

int engine_delete(api_req_t *ar)
{
    int64_t version;
    char vbuf[24], idb[24];
    if (crud_if_match(ar, &version) != 0)
        return 0;
    CALLER(ar);
    const char *p[] = {uid_, ver_, db_fmt_i64(idb, api_param_i64(ar, "id")), crud_version_param(version, vbuf),
                       ar->request_id};
    return crud_query(ar, engine_sql(engine_of(ar), ar->route->resource, ENGINE_SQL_DELETE), 5, p, on_write,
                      write_ctx(ar));
}

static int send_put(api_req_t *ar, crud_upsert_t *u, crud_done_fn done)
{
    CALLER(ar);
    const char *p[] = {uid_, ver_, u->external_id, u->if_match, u->input, ar->request_id};
    return crud_query(ar, engine_sql(engine_of(ar), ar->route->resource, ENGINE_SQL_PUT), 6, p, done, u);
}

int engine_put_external(api_req_t *ar)
{
    const engine_resource_t *r = ar->route->resource;
    int64_t version;
    if (crud_if_match(ar, &version) != 0 || check_body(ar, r, ar->body, VALIDATE_REPLACE) != 0)
        return 0;
    const char *ext = api_param_str(ar, "external_id");
    if (crud_check_external_id(ar, ext, ar->body, r->singular) != 0)
        return 0;
    write_ctx_t *w = write_ctx(ar);
    char *vbuf = h2o_mem_alloc_pool(&ar->req->pool, 24);
    w->up = (crud_upsert_t){&w->cr, send_put, ext, NULL, crud_dump(ar, ar->body), crud_version_param(version, vbuf), 0};
    return send_put(ar, &w->up, on_upsert);
}

/* --- bulk ------------------------------------------------------------------------ */

static void on_bulk(api_req_t *ar, const PGresult *res, int err, void *arg)
{
    const engine_resource_t *r = arg;
    if (err != 0 && send_constraint(ar, r, res, 1))
        return;
    if (err == 0 && res != NULL && PQntuples(res) > 0 && !PQgetisnull(res, 0, 3)) {
        /* Items refused by a description's rule name their field. */
        json_t *bad = json_loads(PQgetvalue(res, 0, 3), 0, NULL), *item;
        size_t i;
        int rules = 0;
        json_array_foreach(bad, i, item) rules +=
            strncmp(json_string_value(json_object_get(item, "outcome")), "rule_", 5) == 0 ||
            strncmp(json_string_value(json_object_get(item, "outcome")), "locked_", 7) == 0 ||
            strncmp(json_string_value(json_object_get(item, "outcome")), "cf_", 3) == 0;
        if (rules > 0) {
            json_t *errors = json_array();
            json_array_foreach(bad, i, item)
            {
                const char *outcome = json_string_value(json_object_get(item, "outcome"));
                long long idx = (long long)json_integer_value(json_object_get(item, "index"));
                char field[96];
                const char *message = "your role may not write this record", *code = outcome;
                const engine_check_t *c = rule_of(r, outcome);
                snprintf(field, sizeof(field), "[%lld].", idx);
                if (crud_custom_field_error(errors, field, outcome))
                    continue;
                if (c != NULL) {
                    snprintf(field, sizeof(field), "[%lld].%s", idx, c->field);
                    code = "invalid_value";
                    message = c->message;
                } else if (strncmp(outcome, "locked_", 7) == 0) {
                    snprintf(field, sizeof(field), "[%lld].%s", idx, outcome + 7);
                    code = "read_only";
                    message = "your role may not change this field";
                } else if (strncmp(outcome, "invalid_", 8) == 0) {
                    snprintf(field, sizeof(field), "[%lld].%s", idx, outcome + 8);
                    code = "invalid_reference";
                    message = "does not name an existing record you may use";
                } else if (strcmp(outcome, "duplicate") == 0) {
                    /* Held by a record the caller may not read: as crud_send_bulk says it. */
                    snprintf(field, sizeof(field), "[%lld].external_id", idx);
                    message = "is already used by another record";
                } else {
                    snprintf(field, sizeof(field), "[%lld]", idx);
                }
                api_error_add(errors, field, code, message);
            }
            json_decref(bad);
            char detail[128];
            snprintf(detail, sizeof(detail), "Some %s may not be written; nothing was written.", r->name);
            api_send_invalid(ar, 422, detail, errors);
            return;
        }
        json_decref(bad);
    }
    crud_send_bulk(ar, res, err, r->name);
}

/* The pipeline has checked the items already (engine_prepare_bulk): ar->body_text holds them. */
int engine_bulk(api_req_t *ar)
{
    CALLER(ar);
    const char *p[] = {uid_, ver_, ar->body_text, ar->request_id};
    return crud_query(ar, engine_sql(engine_of(ar), ar->route->resource, ENGINE_SQL_BULK), 4, p, on_bulk,
                      (void *)ar->route->resource);
}

/* --- lists ---------------------------------------------------------------------- */

static void on_list(api_req_t *ar, const PGresult *res, int err, void *arg)
{
    if (crud_check_result(ar, res, err) == 0)
        crud_send_list(ar, res, arg);
}

/* A plain decimal ("0.25", ".5", "1"): no sign, exponent or spaces. */
static int is_plain_decimal(const char *v)
{
    size_t len = strlen(v), i = 0, digits = 0;
    while (i < len && v[i] >= '0' && v[i] <= '9')
        i++, digits++;
    if (i < len && v[i] == '.')
        for (i++; i < len && v[i] >= '0' && v[i] <= '9'; i++)
            digits++;
    return len > 0 && len <= 32 && i == len && digits > 0 && v[len - 1] != '.';
}

/* Reads one list filter into *out (pool-owned, or NULL when absent); answers 400 and returns -1 when bad. */
static int read_param(api_req_t *ar, const crud_query_t *q, const engine_param_t *p, const char **out)
{
    const char *v = crud_query_get(q, p->name);
    *out = NULL;
    if (v == NULL)
        return 0;
    switch (p->kind) {
    case EP_EQ_ID: {
        char *buf = h2o_mem_alloc_pool(&ar->req->pool, 24);
        return crud_param_id(ar, q, p->name, buf, out);
    }
    case EP_EQ_ENUM:
        return crud_param_enum(ar, q, p->name, p->field->v.enum_values, out);
    case EP_CUSTOM:
        if (p->filter->kind == EFK_ENUM)
            return crud_param_enum(ar, q, p->name, p->filter->values, out);
        if (!is_plain_decimal(v) || strtod(v, NULL) > 1.0)
            return crud_bad_query(ar, p->name, is_plain_decimal(v) ? "out_of_range" : "invalid_format",
                                  "must be a number from 0 to 1, such as 0.25");
        *out = v;
        return 0;
    case EP_EQ_BOOL:
        if (strcmp(v, "true") != 0 && strcmp(v, "false") != 0)
            return crud_bad_query(ar, p->name, "invalid_value", "must be true or false");
        *out = v;
        return 0;
    case EP_EQ_DATE:
        if (!validate_is_date(v, strlen(v)))
            return crud_bad_query(ar, p->name, "invalid_format", "must be a date YYYY-MM-DD");
        *out = v;
        return 0;
    case EP_TIME:
        return crud_param_time(ar, q, p->name, out);
    case EP_Q:
        if (strlen(v) == 0 || strlen(v) > 200)
            return crud_bad_query(ar, "q", "invalid_value", "must be 1 to 200 characters");
        *out = crud_like_pattern(ar, v);
        return 0;
    case EP_TAG:
    case EP_EQ_TEXT:
        if (strlen(v) == 0 || strlen(v) > 254)
            return crud_bad_query(ar, p->name, "invalid_value", "must be 1 to 254 characters");
        *out = v;
        return 0;
    }
    return 0;
}

/* A child list under its parent's path takes the parent from the path: is p that reference? */
static int is_parent_ref(const engine_res_t *res, const engine_param_t *p)
{
    return p->field != NULL && res->r->scope.ref != NULL && strcmp(p->field->v.name, res->r->scope.ref) == 0;
}

int engine_parse_query(api_req_t *ar, const engine_res_t *res, const char *const *extra, const char *parent,
                       crud_query_t *q)
{
    size_t ne = 0;
    while (extra[ne] != NULL)
        ne++;
    const char **allowed = h2o_mem_alloc_pool(&ar->req->pool, sizeof(*allowed) * (ne + (size_t)res->nparams + 1));
    size_t na = 0;
    for (size_t i = 0; i < ne; i++)
        allowed[na++] = extra[i];
    for (int i = 0; i < res->nparams; i++)
        if (parent == NULL || !is_parent_ref(res, &res->params[i]))
            allowed[na++] = res->params[i].name;
    allowed[na] = NULL;
    return crud_parse_query(ar, allowed, q);
}

int engine_read_filters(api_req_t *ar, const engine_res_t *res, const crud_query_t *q, const char *parent,
                        const char **p)
{
    for (int i = 0; i < res->nparams; i++)
        if (read_param(ar, q, &res->params[i], &p[res->params[i].pos - 1]) != 0)
            return -1;
    for (int i = 0; parent != NULL && i < res->nparams; i++)
        if (is_parent_ref(res, &res->params[i]))
            p[res->params[i].pos - 1] = h2o_strdup(&ar->req->pool, parent, SIZE_MAX).base;
    return 0;
}

int engine_list(api_req_t *ar)
{
    const engine_t *e = engine_of(ar);
    const engine_res_t *res = res_of_req(ar);
    const engine_resource_t *r = res->r;
    static const char *const standard[] = {"limit", "cursor", "sort", "fields", "count", NULL};
    char pbuf[24];
    const char *parent = nested_parent(ar, pbuf);
    crud_query_t q;
    if (engine_parse_query(ar, res, standard, parent, &q) != 0)
        return 0;
    crud_list_t *list = h2o_mem_alloc_pool(&ar->req->pool, sizeof(*list));
    if (crud_parse_list(ar, &q, (const char *const *)res->sort_names, res->default_sort,
                        (const char *const *)res->out_fields, list) != 0)
        return 0;
    const engine_sort_t *so = &r->sorts[list->sort / 2];
    if (so->check_key != NULL && list->cursor_key != NULL && so->check_key(list->cursor_key) != 0)
        return crud_bad_query(ar, "cursor", "invalid_value", "is not a cursor this endpoint returned"), 0;
    const char *p[DB_MAX_PARAMS] = {0};
    char *fetch = h2o_mem_alloc_pool(&ar->req->pool, 16);
    snprintf(fetch, 16, "%d", list->limit + 1);
    p[EL_KEY - 1] = list->cursor_key;
    p[EL_ID - 1] = list->cursor_id;
    p[EL_FETCH - 1] = fetch;
    p[EL_COUNT - 1] = list->count ? "true" : "false";
    p[EL_FIELDS - 1] = list->fields;
    if (engine_read_filters(ar, res, &q, parent, p) != 0)
        return 0;
    engine_uses_t *uses = h2o_mem_alloc_pool(&ar->req->pool, sizeof(*uses));
    uses->n = 0;
    engine_uses_filters(uses, res, &q);
    if (crud_query_get(&q, "sort") != NULL)
        engine_uses_add(uses, "sort", so->field != NULL ? so->field : so->name, 400);
    engine_uses_projection(ar, uses, list->fields);
    return engine_read_using(ar, engine_sql_list(e, r, list->sort), NULL, res->nlist_params, p, DB_ONESHOT, uses,
                             on_list, list);
}

/* --- the change feed -------------------------------------------------------------- */

typedef struct st_feed_t {
    char txid[24];
    char seq[24];
} feed_t;

static void on_feed(api_req_t *ar, const PGresult *res, int err, void *arg)
{
    feed_t *pos = arg;
    if (crud_check_result(ar, res, err) != 0)
        return;
    if (strcmp(PQgetvalue(res, 0, 0), "none") == 0) {
        api_send_error(ar, ERR_FORBIDDEN, "Your role may not read these records.");
        return;
    }
    int rows = PQntuples(res), n = 0;
    size_t hint = 128;
    for (int i = 0; i < rows; i++)
        if (!PQgetisnull(res, i, 1))
            hint += (size_t)PQgetlength(res, i, 3) + 1, n++;
    if (n > 0) {
        snprintf(pos->txid, sizeof(pos->txid), "%s", PQgetvalue(res, n - 1, 2));
        snprintf(pos->seq, sizeof(pos->seq), "%s", PQgetvalue(res, n - 1, 1));
    }
    json_t *c = json_pack("{s:s, s:s}", "t", pos->txid, "s", pos->seq);
    char *cursor = c != NULL ? cursor_encode(&ar->thread->server->cursor_key, c) : NULL;
    json_decref(c);
    if (cursor == NULL) {
        api_log(ar, LOG_ERROR, "the feed's cursor could not be encoded");
        api_send_error(ar, ERR_INTERNAL, NULL);
        return;
    }
    crud_send_page(ar, res, n, 3, hint, cursor, NULL); /* a feed's cursor is never null: poll with it */
}

static int digits_only(const char *s)
{
    if (*s == '\0' || strlen(s) > 20)
        return 0;
    for (; *s != '\0'; s++)
        if (*s < '0' || *s > '9')
            return 0;
    return 1;
}

/* Reads limit (1..max, default def) from q into *out; appends an error when bad. */
static void param_limit(const crud_query_t *q, long def, long max, long *out, json_t *errors)
{
    const char *v = crud_query_get(q, "limit");
    *out = def;
    if (v == NULL)
        return;
    char *end, msg[64];
    long l = strtol(v, &end, 10);
    if (*v == '\0' || *end != '\0' || l < 1 || l > max) {
        snprintf(msg, sizeof(msg), "must be an integer from 1 to %ld", max);
        api_error_add(errors, "limit", "out_of_range", msg);
        return;
    }
    *out = l;
}

int engine_feed(api_req_t *ar)
{
    static const char *const allowed[] = {"after", "limit", NULL};
    crud_query_t q;
    if (crud_parse_query(ar, allowed, &q) != 0)
        return 0;
    feed_t *pos = h2o_mem_alloc_pool(&ar->req->pool, sizeof(*pos));
    strcpy(pos->txid, "0");
    strcpy(pos->seq, "0");
    json_t *errors = json_array();
    const char *v;
    long limit;
    param_limit(&q, 100, 1000, &limit, errors);
    if ((v = crud_query_get(&q, "after")) != NULL) {
        json_t *c = cursor_decode(&ar->thread->server->cursor_key, v, strlen(v));
        json_t *t = c != NULL ? json_object_get(c, "t") : NULL, *s = c != NULL ? json_object_get(c, "s") : NULL;
        if (!json_is_string(t) || !json_is_string(s) || !digits_only(json_string_value(t)) ||
            !digits_only(json_string_value(s))) {
            api_error_add(errors, "after", "invalid_value", "is not a cursor this feed returned");
        } else {
            snprintf(pos->txid, sizeof(pos->txid), "%s", json_string_value(t));
            snprintf(pos->seq, sizeof(pos->seq), "%s", json_string_value(s));
        }
        if (c != NULL)
            json_decref(c);
    }
    if (json_array_size(errors) > 0)
        return api_send_invalid(ar, 400, "The query string has invalid parameters.", errors);
    json_decref(errors);
    char *lim = h2o_mem_alloc_pool(&ar->req->pool, 24);
    snprintf(lim, 24, "%ld", limit);
    const char *p[] = {NULL, NULL, pos->txid, pos->seq, lim};
    return engine_read(ar, engine_sql(engine_of(ar), ar->route->resource, ENGINE_SQL_FEED), NULL, 5, p, 0, on_feed,
                       pos);
}

/* --- history ------------------------------------------------------------------------ */

typedef struct st_history_t {
    long limit;
} history_t;

static void on_history(api_req_t *ar, const PGresult *res, int err, void *arg)
{
    history_t *h = arg;
    if (crud_check_result(ar, res, err) != 0)
        return;
    if (strcmp(PQgetvalue(res, 0, 0), "none") == 0) {
        api_send_error(ar, ERR_FORBIDDEN, "Your role may not read these records.");
        return;
    }
    if (strcmp(PQgetvalue(res, 0, 1), "t") != 0) {
        api_send_error(ar, ERR_NOT_FOUND, NULL);
        return;
    }
    int rows = PQntuples(res), n = 0;
    size_t hint = 96;
    for (int i = 0; i < rows && i < h->limit; i++)
        if (!PQgetisnull(res, i, 2))
            hint += (size_t)PQgetlength(res, i, 3) + 1, n++;
    char *next = NULL;
    if (rows > h->limit && !PQgetisnull(res, (int)h->limit, 2)) {
        json_t *c = json_pack("{s:s}", "h", PQgetvalue(res, (int)h->limit - 1, 2));
        next = c != NULL ? cursor_encode(&ar->thread->server->cursor_key, c) : NULL;
        json_decref(c);
        if (next == NULL) {
            api_send_error(ar, ERR_INTERNAL, NULL);
            return;
        }
    }
    crud_send_page(ar, res, n, 3, hint, next, NULL);
}

int engine_history(api_req_t *ar)
{
    static const char *const allowed[] = {"cursor", "limit", NULL};
    crud_query_t q;
    if (crud_parse_query(ar, allowed, &q) != 0)
        return 0;
    history_t *h = h2o_mem_alloc_pool(&ar->req->pool, sizeof(*h));
    json_t *errors = json_array();
    const char *v, *below = NULL;
    param_limit(&q, 50, 200, &h->limit, errors);
    if ((v = crud_query_get(&q, "cursor")) != NULL) {
        json_t *c = cursor_decode(&ar->thread->server->cursor_key, v, strlen(v));
        json_t *hid = c != NULL ? json_object_get(c, "h") : NULL;
        if (!json_is_string(hid) || !digits_only(json_string_value(hid)))
            api_error_add(errors, "cursor", "invalid_value", "is not a cursor this endpoint returned");
        else
            below = h2o_strdup(&ar->req->pool, json_string_value(hid), SIZE_MAX).base;
        if (c != NULL)
            json_decref(c);
    }
    if (json_array_size(errors) > 0)
        return api_send_invalid(ar, 400, "The query string has invalid parameters.", errors);
    json_decref(errors);
    char *idb = h2o_mem_alloc_pool(&ar->req->pool, 24), *lim = h2o_mem_alloc_pool(&ar->req->pool, 24);
    snprintf(lim, 24, "%ld", h->limit + 1);
    const char *p[] = {NULL, NULL, db_fmt_i64(idb, api_param_i64(ar, "id")), below, lim};
    return engine_read(ar, engine_sql(engine_of(ar), ar->route->resource, ENGINE_SQL_HISTORY), NULL, 5, p, 0,
                       on_history, h);
}
