/*
 * api/analytics.c - /v1/analytics: runs, their results, and schedules.
 *
 * The API never computes analytics: it validates and completes a run's
 * parameters (common/runparams.c), records the run and its outbox message
 * in one statement, and answers 202; clientele-worker does the rest. Reads
 * of results are scoped like customers: a rep's summary counts only the
 * rep's own customers. Schedules are validated here (cron syntax, an IANA
 * zone from the zone database loaded at start-up) and carry next_run_at,
 * computed here on every write and advanced by the workers' scheduler.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "analytics.h"
#include "analytics_db.h"
#include "common/cron.h"
#include "common/jx.h"
#include "common/runparams.h"
#include "common/tzdb.h"
#include "crud.h"

static const char *const run_statuses[] = {"queued", "running", "succeeded", "failed", "cancelled", NULL};
static const char *const run_kinds[] = {"rfm", "clv", NULL};

static int reject(api_req_t *ar, json_t *errors, const char *detail)
{
    return api_send_invalid(ar, 422, detail, errors);
}

/* Members other than `allowed` are errors. */
static void only_members(json_t *body, const char *const *allowed, json_t *errors)
{
    const char *key;
    json_t *v;
    json_object_foreach(body, key, v)
    {
        int ok = 0;
        for (const char *const *a = allowed; *a != NULL; a++)
            ok |= strcmp(*a, key) == 0;
        if (!ok)
            api_error_add(errors, key, "unknown_field", "is not a known field");
    }
}

/* --- runs --------------------------------------------------------------------------- */

static void send_run(api_req_t *ar, const PGresult *res)
{
    if (strcmp(PQgetvalue(res, 0, 0), "none") == 0) {
        api_send_error(ar, ERR_FORBIDDEN, "Your role may not see analytics.");
        return;
    }
    if (PQgetisnull(res, 0, 1)) {
        api_send_error(ar, ERR_NOT_FOUND, NULL);
        return;
    }
    api_send_raw(ar, 200, "application/json", PQgetvalue(res, 0, 2), (size_t)PQgetlength(res, 0, 2));
}

static void on_run_created(api_req_t *ar, const PGresult *res, int err, void *arg)
{
    if (crud_check_result(ar, res, err) != 0)
        return;
    if (strcmp(PQgetvalue(res, 0, 0), "created") != 0) {
        api_send_error(ar, ERR_FORBIDDEN, "Your role may not start analytics runs.");
        return;
    }
    char loc[64];
    snprintf(loc, sizeof(loc), "/v1/analytics/runs/%s", PQgetvalue(res, 0, 1));
    api_add_header(ar, "location", loc);
    api_send_raw(ar, 202, "application/json", PQgetvalue(res, 0, 3), (size_t)PQgetlength(res, 0, 3));
}

int analytics_run_create(api_req_t *ar)
{
    static const char *const fields[] = {"kind", "params", NULL};
    json_t *errors = json_array(), *body = ar->body;
    if (!json_is_object(body)) {
        api_error_add(errors, "", "invalid_type", "the body must be a JSON object");
        return reject(ar, errors, "The run request is invalid.");
    }
    only_members(body, fields, errors);
    json_t *kind = json_object_get(body, "kind");
    if (kind == NULL)
        api_error_add(errors, "kind", "required", "is required");
    else if (!json_is_string(kind) || !runparams_kind_ok(json_string_value(kind)))
        api_error_add(errors, "kind", "invalid_value", "must be one of rfm, clv");
    json_t *params = NULL;
    if (json_array_size(errors) == 0)
        params = runparams_complete(json_string_value(kind), json_object_get(body, "params"), (int64_t)time(NULL),
                                    errors);
    if (json_array_size(errors) > 0) {
        if (params != NULL)
            json_decref(params);
        return reject(ar, errors, "The run request is invalid.");
    }
    json_decref(errors);
    char *text = crud_dump(ar, params);
    json_decref(params);
    return analytics_db_run_create(ar, json_string_value(kind), text, on_run_created, NULL);
}

static void on_run(api_req_t *ar, const PGresult *res, int err, void *arg)
{
    if (crud_check_result(ar, res, err) == 0)
        send_run(ar, res);
}

int analytics_run_get(api_req_t *ar)
{
    return analytics_db_run_get(ar, api_param_i64(ar, "id"), on_run, NULL);
}

static void on_cancelled(api_req_t *ar, const PGresult *res, int err, void *arg)
{
    if (crud_check_result(ar, res, err) != 0)
        return;
    const char *outcome = PQgetvalue(res, 0, 0);
    if (strcmp(outcome, "finished") == 0) {
        char detail[128];
        snprintf(detail, sizeof(detail), "The run has already ended (%s); there is nothing to cancel.",
                 PQgetvalue(res, 0, 5));
        api_send_error(ar, ERR_CONFLICT, detail);
    } else if (strcmp(outcome, "updated") == 0) {
        api_send_raw(ar, 200, "application/json", PQgetvalue(res, 0, 3), (size_t)PQgetlength(res, 0, 3));
    } else if (strcmp(outcome, "forbidden") == 0) {
        api_send_error(ar, ERR_FORBIDDEN, "Your role may not cancel analytics runs.");
    } else {
        crud_send_write(ar, res, "/v1/analytics/runs");
    }
}

int analytics_run_cancel(api_req_t *ar)
{
    return analytics_db_run_cancel(ar, api_param_i64(ar, "id"), on_cancelled, NULL);
}

static void on_list(api_req_t *ar, const PGresult *res, int err, void *arg)
{
    if (crud_check_result(ar, res, err) == 0)
        crud_send_list(ar, res, arg);
}

int analytics_run_list(api_req_t *ar)
{
    static const char *const allowed[] = {"limit", "cursor", "status", "kind", NULL};
    static const char *const sorts[] = {"created_at", NULL};
    static const char *const no_fields[] = {NULL};
    crud_query_t q;
    const char *status, *kind;
    if (crud_parse_query(ar, allowed, &q) != 0)
        return 0;
    crud_list_t *list = h2o_mem_alloc_pool(&ar->req->pool, sizeof(*list));
    if (crud_parse_list(ar, &q, sorts, 1, no_fields, list) != 0 ||
        crud_param_enum(ar, &q, "status", run_statuses, &status) != 0 ||
        crud_param_enum(ar, &q, "kind", run_kinds, &kind) != 0)
        return 0;
    return analytics_db_run_list(ar, status, kind, list->cursor_id, list->limit + 1, on_list, list);
}

/* --- results ------------------------------------------------------------------------ */

static void on_summary(api_req_t *ar, const PGresult *res, int err, void *arg)
{
    if (crud_check_result(ar, res, err) != 0)
        return;
    if (strcmp(PQgetvalue(res, 0, 0), "none") == 0)
        api_send_error(ar, ERR_FORBIDDEN, "Your role may not see analytics.");
    else if (PQgetisnull(res, 0, 1))
        api_send_error(ar, ERR_NOT_FOUND, "There is no such run, or no analytics run has succeeded yet.");
    else if (strcmp(PQgetvalue(res, 0, 2), "succeeded") != 0)
        api_send_error(ar, ERR_CONFLICT, "This run has not succeeded, so it has no results.");
    else
        api_send_raw(ar, 200, "application/json", PQgetvalue(res, 0, 3), (size_t)PQgetlength(res, 0, 3));
}

int analytics_summary(api_req_t *ar)
{
    static const char *const allowed[] = {"run_id", NULL};
    crud_query_t q;
    char *buf = h2o_mem_alloc_pool(&ar->req->pool, 24);
    const char *run;
    if (crud_parse_query(ar, allowed, &q) != 0 ||
        crud_param_id(ar, &q, "run_id", buf, &run) != 0)
        return 0;
    return analytics_db_summary(ar, run, on_summary, NULL);
}

static void on_transitions(api_req_t *ar, const PGresult *res, int err, void *arg)
{
    if (crud_check_result(ar, res, err) != 0)
        return;
    if (strcmp(PQgetvalue(res, 0, 0), "none") == 0) {
        api_send_error(ar, ERR_FORBIDDEN, "Your role may not see analytics.");
        return;
    }
    for (int i = 1; i <= 2; i++) {
        if (PQgetisnull(res, 0, i)) {
            api_send_error(ar, ERR_NOT_FOUND, i == 1 ? "There is no run from_run." : "There is no run to_run.");
            return;
        }
        if (strcmp(PQgetvalue(res, 0, i), "succeeded") != 0) {
            api_send_error(ar, ERR_CONFLICT, i == 1 ? "from_run has not succeeded." : "to_run has not succeeded.");
            return;
        }
    }
    api_send_raw(ar, 200, "application/json", PQgetvalue(res, 0, 3), (size_t)PQgetlength(res, 0, 3));
}

int analytics_transitions(api_req_t *ar)
{
    static const char *const allowed[] = {"from_run", "to_run", NULL};
    crud_query_t q;
    char *a = h2o_mem_alloc_pool(&ar->req->pool, 24), *b = h2o_mem_alloc_pool(&ar->req->pool, 24);
    const char *from, *to;
    if (crud_parse_query(ar, allowed, &q) != 0 ||
        crud_param_id(ar, &q, "from_run", a, &from) != 0 || crud_param_id(ar, &q, "to_run", b, &to) != 0)
        return 0;
    if (from == NULL || to == NULL) {
        json_t *errors = json_array();
        if (from == NULL)
            api_error_add(errors, "from_run", "required", "is required");
        if (to == NULL)
            api_error_add(errors, "to_run", "required", "is required");
        return api_send_invalid(ar, 400, "The query string has invalid parameters.", errors);
    }
    return analytics_db_transitions(ar, from, to, on_transitions, NULL);
}

static void on_history(api_req_t *ar, const PGresult *res, int err, void *arg)
{
    if (crud_check_result(ar, res, err) != 0)
        return;
    if (strcmp(PQgetvalue(res, 0, 0), "none") == 0)
        api_send_error(ar, ERR_FORBIDDEN, "Your role may not see analytics.");
    else if (PQgetisnull(res, 0, 1))
        api_send_error(ar, ERR_NOT_FOUND, NULL);
    else {
        size_t len = (size_t)PQgetlength(res, 0, 2);
        char *body = h2o_mem_alloc_pool(&ar->req->pool, len + 16);
        int n = snprintf(body, len + 16, "{\"data\":%s}", PQgetvalue(res, 0, 2));
        api_send_raw(ar, 200, "application/json", body, (size_t)n);
    }
}

int analytics_customer_history(api_req_t *ar)
{
    return analytics_db_customer_history(ar, api_param_i64(ar, "id"), on_history, NULL);
}

/* --- schedules ------------------------------------------------------------------------ */

/*
 * Validates a complete schedule document and fills the SQL parameters,
 * next_run_at included. Appends every problem to errors.
 */
static void check_schedule(api_req_t *ar, json_t *d, analytics_schedule_t *s, json_t *errors)
{
    static const char *const fields[] = {"kind", "cron", "timezone", "params", "enabled", NULL};
    if (!json_is_object(d)) {
        api_error_add(errors, "", "invalid_type", "the body must be a JSON object");
        return;
    }
    only_members(d, fields, errors);
    json_t *kind = json_object_get(d, "kind"), *cron = json_object_get(d, "cron"), *zone = json_object_get(d, "timezone");
    json_t *params = json_object_get(d, "params"), *enabled = json_object_get(d, "enabled");
    if (!json_is_string(kind) || !runparams_kind_ok(json_string_value(kind)))
        api_error_add(errors, "kind", kind == NULL ? "required" : "invalid_value", "must be one of rfm, clv");
    cron_t c;
    char why[160];
    if (!json_is_string(cron))
        api_error_add(errors, "cron", cron == NULL ? "required" : "invalid_type",
                      "must be a 5-field cron expression such as \"0 6 * * 1\"");
    else if (json_string_length(cron) > 120 || cron_parse(json_string_value(cron), &c, why, sizeof(why)) != 0)
        api_error_add(errors, "cron", "invalid_format", json_string_length(cron) > 120 ? "is too long" : why);
    const tz_t *tz = NULL;
    if (!json_is_string(zone))
        api_error_add(errors, "timezone", zone == NULL ? "required" : "invalid_type",
                      "must be an IANA time zone such as \"Europe/Berlin\"");
    else if ((tz = tzdb_get(ar->thread->server->tzdb, json_string_value(zone))) == NULL)
        api_error_add(errors, "timezone", "invalid_value", "is not a known IANA time zone, such as \"Europe/Berlin\"");
    if (enabled != NULL && !json_is_boolean(enabled))
        api_error_add(errors, "enabled", "invalid_type", "must be true or false");
    if (params != NULL && !json_is_object(params))
        api_error_add(errors, "params", "invalid_type", "must be an object");
    else if (json_is_string(kind) && runparams_kind_ok(json_string_value(kind))) {
        /* The stored params stay as given (as_of is set per due time); they must complete cleanly. */
        json_t *done = runparams_complete(json_string_value(kind), params, (int64_t)time(NULL), errors);
        if (done != NULL)
            json_decref(done);
    }
    if (json_array_size(errors) > 0)
        return;
    int64_t next = 0;
    if (cron_next(&c, tz, (int64_t)time(NULL), &next) != 0) {
        api_error_add(errors, "cron", "invalid_value", "never matches a date in the next years");
        return;
    }
    char *at = h2o_mem_alloc_pool(&ar->req->pool, 32);
    time_t t = (time_t)next;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(at, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
    s->kind = json_string_value(kind);
    s->cron = json_string_value(cron);
    s->timezone = json_string_value(zone);
    s->params = params != NULL ? crud_dump(ar, params) : "{}";
    s->enabled = enabled == NULL || json_is_true(enabled) ? "true" : "false";
    s->next_run_at = at;
}

static void on_schedule_read(api_req_t *ar, const PGresult *res, int err, void *arg)
{
    if (crud_check_result(ar, res, err) == 0)
        crud_send_read(ar, res);
}

static void on_schedule_write(api_req_t *ar, const PGresult *res, int err, void *arg)
{
    if (crud_check_result(ar, res, err) == 0)
        crud_send_write(ar, res, "/v1/analytics/schedules");
}

int analytics_schedule_get(api_req_t *ar)
{
    return analytics_db_schedule_get(ar, api_param_i64(ar, "id"), on_schedule_read, NULL);
}

int analytics_schedule_create(api_req_t *ar)
{
    json_t *errors = json_array();
    analytics_schedule_t s;
    check_schedule(ar, ar->body, &s, errors);
    if (json_array_size(errors) > 0)
        return reject(ar, errors, "The schedule is invalid.");
    json_decref(errors);
    return analytics_db_schedule_create(ar, &s, on_schedule_write, NULL);
}

/* PATCH reads the schedule, merges, validates the result, and writes it if nobody changed it meanwhile. */
typedef struct st_patch_state_t {
    int64_t if_match;
} patch_state_t;

static void on_schedule_current(api_req_t *ar, const PGresult *res, int err, void *arg)
{
    patch_state_t *st = arg;
    if (crud_check_result(ar, res, err) != 0)
        return;
    if (strcmp(PQgetvalue(res, 0, 0), "none") == 0 || PQgetisnull(res, 0, 1)) {
        crud_send_read(ar, res); /* 403 or 404 */
        return;
    }
    int64_t version = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
    json_t *cur = json_loads(PQgetvalue(res, 0, 2), 0, NULL), *doc = json_object();
    static const char *const keep[] = {"kind", "cron", "timezone", "params", "enabled", NULL};
    for (const char *const *k = keep; *k != NULL; k++)
        if (json_object_get(cur, *k) != NULL)
            json_object_set(doc, *k, json_object_get(cur, *k));
    json_decref(cur);
    doc = jx_merge_patch(doc, ar->body);
    json_t *errors = json_array();
    analytics_schedule_t s;
    check_schedule(ar, doc, &s, errors);
    if (json_array_size(errors) > 0) {
        json_decref(doc);
        reject(ar, errors, "The schedule would be invalid.");
        return;
    }
    json_decref(errors);
    /* The texts in s point into doc; copy them to the pool before letting doc go. */
    s.kind = h2o_strdup(&ar->req->pool, s.kind, SIZE_MAX).base;
    s.cron = h2o_strdup(&ar->req->pool, s.cron, SIZE_MAX).base;
    s.timezone = h2o_strdup(&ar->req->pool, s.timezone, SIZE_MAX).base;
    json_decref(doc);
    char vbuf[24];
    int ret = analytics_db_schedule_update(ar, api_param_i64(ar, "id"), version, crud_version_param(st->if_match, vbuf),
                                           &s, on_schedule_write, NULL);
    if (ret != 0)
        api_send_error(ar, ret, NULL);
}

int analytics_schedule_patch(api_req_t *ar)
{
    int64_t version;
    if (crud_if_match(ar, &version) != 0)
        return 0;
    if (!json_is_object(ar->body)) {
        json_t *errors = json_array();
        api_error_add(errors, "", "invalid_type", "the body must be a JSON object");
        return reject(ar, errors, "The schedule change is invalid.");
    }
    patch_state_t *st = h2o_mem_alloc_pool(&ar->req->pool, sizeof(*st));
    st->if_match = version;
    return analytics_db_schedule_get(ar, api_param_i64(ar, "id"), on_schedule_current, st);
}

int analytics_schedule_delete(api_req_t *ar)
{
    int64_t version;
    char vbuf[24];
    if (crud_if_match(ar, &version) != 0)
        return 0;
    return analytics_db_schedule_delete(ar, api_param_i64(ar, "id"), crud_version_param(version, vbuf),
                                        on_schedule_write, NULL);
}

int analytics_schedule_list(api_req_t *ar)
{
    static const char *const allowed[] = {"limit", "cursor", NULL};
    static const char *const sorts[] = {"id", NULL};
    static const char *const no_fields[] = {NULL};
    crud_query_t q;
    if (crud_parse_query(ar, allowed, &q) != 0)
        return 0;
    crud_list_t *list = h2o_mem_alloc_pool(&ar->req->pool, sizeof(*list));
    if (crud_parse_list(ar, &q, sorts, 0, no_fields, list) != 0)
        return 0;
    return analytics_db_schedule_list(ar, list->cursor_id, list->limit + 1, on_list, list);
}
