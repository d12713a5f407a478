/*
 * api/merge.c - duplicates of a record, and merging records into one (see
 * merge.h).
 *
 * Duplicates take two reads: the record's phone numbers first, which are
 * normalised here (common/phone.c: the region is the API's configuration,
 * not the database's) into the keys of every way of writing them; then one
 * statement that probes the indexes with those keys, the record's e-mail
 * and its name, and answers the candidates the caller may read, scored and
 * ranked. A merge is one statement (api/merge_db.c) once the body is
 * checked here; its outcome says which answer to give.
 *
 * Memory: what a step needs lives in the request's pool (continuations run
 * only while the request does, see crud_query).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/phone.h"
#include "crud.h"
#include "engine_int.h"
#include "merge.h"
#include "merge_db.h"
#include "resources.h"

struct st_merge_t {
    merge_sql_t sql;
    const phone_region_t *region;
};

merge_t *merge_open(const cfg_t *cfg, const struct st_engine_t *e, char *err, size_t errlen)
{
    merge_t *m = calloc(1, sizeof(*m));
    if (m == NULL)
        abort();
    if (merge_sql_build(&m->sql, e, engine_resources, err, errlen) != 0) {
        free(m);
        return NULL;
    }
    m->region = cfg->phone_region != NULL ? cfg->phone_region : phone_region("CN");
    return m;
}

void merge_close(merge_t *m)
{
    if (m == NULL)
        return;
    merge_sql_free(&m->sql);
    free(m);
}

static merge_t *of(api_req_t *ar)
{
    return ar->thread->server->merge;
}

/* --- duplicates ---------------------------------------------------------------------------- */

typedef struct st_lookup_t {
    const char *id;
    const char *limit;
} lookup_t;

static void on_duplicates(api_req_t *ar, const PGresult *res, int err, void *arg)
{
    if (crud_check_result(ar, res, err) != 0)
        return;
    if (strcmp(PQgetvalue(res, 0, 0), "none") == 0) {
        api_send_error(ar, ERR_FORBIDDEN, "Your role may not read these records.");
        return;
    }
    if (strcmp(PQgetvalue(res, 0, 1), "t") != 0) {
        api_send_error(ar, ERR_NOT_FOUND, NULL); /* gone since the first read */
        return;
    }
    int rows = PQntuples(res);
    size_t hint = 16;
    for (int i = 0; i < rows; i++)
        hint += (size_t)PQgetlength(res, i, 2) + 1;
    crud_buf_t b;
    crud_buf_init(&b, &ar->req->pool, hint);
    crud_buf_puts(&b, "{\"data\":[");
    for (int i = 0, n = 0; i < rows; i++) {
        if (PQgetisnull(res, i, 2))
            continue;
        if (n++ > 0)
            crud_buf_append(&b, ",", 1);
        crud_buf_append(&b, PQgetvalue(res, i, 2), (size_t)PQgetlength(res, i, 2));
    }
    crud_buf_puts(&b, "]}");
    api_send_raw(ar, 200, "application/json", b.base, b.len);
}

/*
 * The record's numbers, normalised: the keys of every way of writing each
 * (a text[] literal of '+' and digits, nothing to quote), then the lookup.
 * A number this normaliser cannot read matches nothing.
 */
static void on_phones(api_req_t *ar, const PGresult *res, int err, void *arg)
{
    lookup_t *l = arg;
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
    const merge_t *m = of(ar);
    int ncols = PQnfields(res) - 2;
    crud_buf_t keys;
    crud_buf_init(&keys, &ar->req->pool, 64);
    crud_buf_puts(&keys, "{");
    int nk = 0;
    for (int c = 0; c < ncols; c++) {
        char e164[PHONE_E164_MAX], k[PHONE_KEYS_MAX][PHONE_KEY_MAX];
        if (PQgetisnull(res, 0, 2 + c) ||
            phone_e164(PQgetvalue(res, 0, 2 + c), (size_t)PQgetlength(res, 0, 2 + c), m->region, e164) != 0)
            continue;
        int n = phone_keys(e164, m->region, k);
        for (int i = 0; i < n; i++) {
            if (nk++ > 0)
                crud_buf_append(&keys, ",", 1);
            crud_buf_puts(&keys, k[i]);
        }
    }
    crud_buf_append(&keys, "}", 2); /* with the NUL */
    const char *p[] = {NULL, NULL, l->id, keys.base, l->limit};
    int ret = engine_read(ar, merge_sql_duplicates(&m->sql, ar->route->resource), NULL, 5, p, 0, on_duplicates, NULL);
    if (ret != 0)
        api_send_error(ar, ret, NULL);
}

int merge_duplicates(api_req_t *ar)
{
    static const char *const allowed[] = {"limit", NULL};
    crud_query_t q;
    if (crud_parse_query(ar, allowed, &q) != 0)
        return 0;
    lookup_t *l = h2o_mem_alloc_pool(&ar->req->pool, sizeof(*l));
    char *limit = h2o_mem_alloc_pool(&ar->req->pool, 16), *id = h2o_mem_alloc_pool(&ar->req->pool, 24);
    snprintf(limit, 16, "%d", MERGE_CANDIDATES_DEFAULT);
    const char *v = crud_query_get(&q, "limit");
    if (v != NULL) {
        char *end, msg[64];
        long n = strtol(v, &end, 10);
        if (*v == '\0' || *end != '\0' || n < 1 || n > MERGE_CANDIDATES_MAX) {
            snprintf(msg, sizeof(msg), "must be an integer from 1 to %d", MERGE_CANDIDATES_MAX);
            return crud_bad_query(ar, "limit", "out_of_range", msg), 0;
        }
        snprintf(limit, 16, "%ld", n);
    }
    l->id = db_fmt_i64(id, api_param_i64(ar, "id"));
    l->limit = limit;
    const char *p[] = {NULL, NULL, l->id};
    return engine_read(ar, merge_sql_phones(&of(ar)->sql, ar->route->resource), NULL, 3, p, DB_PIPELINE, on_phones, l);
}

/* --- merge --------------------------------------------------------------------------------- */

typedef struct st_merging_t {
    const engine_resource_t *r;
    const char *ids; /* merge_ids as compact JSON, for the answer */
} merging_t;

/* A rule the database keeps refused the merged record (a constraint, checked when the statement ends). */
static int send_rule(api_req_t *ar, const engine_resource_t *r, const PGresult *res)
{
    const char *st = res != NULL ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    const char *name = res != NULL ? PQresultErrorField(res, PG_DIAG_CONSTRAINT_NAME) : NULL;
    if (st == NULL || (strcmp(st, "23514") != 0 && strcmp(st, "23P01") != 0))
        return 0;
    const char *field = NULL, *message = "would break a rule of its fields";
    for (size_t i = 0; name != NULL && i < r->nchecks; i++)
        if (r->checks[i].constraint != NULL && strcmp(r->checks[i].constraint, name) == 0)
            field = r->checks[i].field, message = r->checks[i].message;
    /* A rule of a moved child names that child's field; the body only names fields of r. */
    json_t *errors = json_array();
    api_error_add(errors, field != NULL ? field : "fields", "invalid_value", message);
    char detail[160];
    snprintf(detail, sizeof(detail), "The merged %s would break a rule of the %s; nothing was changed.", r->singular,
             r->name);
    api_send_invalid(ar, 422, detail, errors);
    return 1;
}

static void on_merge(api_req_t *ar, const PGresult *res, int err, void *arg)
{
    merging_t *mg = arg;
    const engine_resource_t *r = mg->r;
    char detail[200];
    if (err != 0 && send_rule(ar, r, res))
        return;
    if (crud_check_result(ar, res, err) != 0)
        return;
    const char *outcome = PQgetvalue(res, 0, 0);
    if (strcmp(outcome, "merged") == 0) {
        char etag[96];
        snprintf(etag, sizeof(etag), "\"%s\"", PQgetvalue(res, 0, 2));
        api_add_header(ar, "etag", etag);
        crud_buf_t b;
        crud_buf_init(&b, &ar->req->pool, (size_t)PQgetlength(res, 0, 3) + (size_t)PQgetlength(res, 0, 5) + 64);
        crud_buf_puts(&b, "{\"survivor\":");
        crud_buf_append(&b, PQgetvalue(res, 0, 3), (size_t)PQgetlength(res, 0, 3));
        crud_buf_puts(&b, ",\"merged_ids\":");
        crud_buf_puts(&b, mg->ids);
        crud_buf_puts(&b, ",\"moved\":");
        crud_buf_append(&b, PQgetvalue(res, 0, 5), (size_t)PQgetlength(res, 0, 5));
        crud_buf_append(&b, "}", 1);
        api_send_raw(ar, 200, "application/json", b.base, b.len);
    } else if (strcmp(outcome, "not_found") == 0) {
        if (strcmp(PQgetvalue(res, 0, 4), "none") == 0) {
            api_send_error(ar, ERR_FORBIDDEN, "Your role may not read these records.");
            return;
        }
        snprintf(detail, sizeof(detail), "No %s %s exists, or you are not allowed to see it; nothing was merged.",
                 r->singular, PQgetvalue(res, 0, 1));
        api_send_error(ar, ERR_NOT_FOUND, detail);
    } else if (strcmp(outcome, "forbidden") == 0) {
        snprintf(detail, sizeof(detail), "Your role may not change every one of these %s; nothing was merged.",
                 r->name);
        api_send_error(ar, ERR_FORBIDDEN, detail);
    } else if (strcmp(outcome, "forbidden_target") == 0) {
        api_send_error(ar, ERR_FORBIDDEN,
                       "Merging would take records out of a team, which only a role that sees every record may do;"
                       " nothing was merged.");
    } else if (strncmp(outcome, "forbidden_", 10) == 0) {
        snprintf(detail, sizeof(detail), "Your role may not move the %s of these %s; nothing was merged.", outcome + 10,
                 r->name);
        api_send_error(ar, ERR_FORBIDDEN, detail);
    } else if (strcmp(outcome, "precondition") == 0) {
        api_send_error(ar, ERR_PRECONDITION, "The record has changed since the version named in If-Match.");
    } else if (strncmp(outcome, "locked_", 7) == 0) {
        json_t *errors = json_array();
        snprintf(detail, sizeof(detail), "fields.%s", outcome + 7);
        api_error_add(errors, detail, "read_only", "your role may not change this field");
        api_send_invalid(ar, 403, "Your role may not choose a value for this field; nothing was merged.", errors);
    } else if (strcmp(outcome, "different_parent") == 0) {
        json_t *errors = json_array();
        snprintf(detail, sizeof(detail), "must name %s of the same %s as the surviving one", r->name,
                 r->scope.parent != NULL ? r->scope.parent->singular : "parent");
        api_error_add(errors, "merge_ids", "invalid_value", detail);
        api_send_invalid(ar, 422, "Only records of one parent can be merged.", errors);
    } else {
        log_msg(LOG_ERROR, "request %s: unexpected merge outcome %s", ar->request_id, outcome);
        api_send_error(ar, ERR_INTERNAL, NULL);
    }
}

/*
 * Checks the body: merge_ids (1 to MERGE_IDS_MAX distinct ids, not the
 * survivor's) and fields (choosable fields, each naming the survivor or a
 * merged id). Fills ids (a PostgreSQL array literal) and fields (JSON text,
 * "{}" when absent); answers 422 naming every bad member and returns -1.
 */
static int check_body(api_req_t *ar, const engine_resource_t *r, int64_t survivor, const char **ids,
                      const char **fields)
{
    json_t *body = ar->body, *errors = json_array(), *v, *ids_j = json_object_get(body, "merge_ids");
    json_t *fields_j = json_object_get(body, "fields");
    const char *key;
    char field[128], msg[128];
    int64_t seen[MERGE_IDS_MAX];
    size_t n = 0, i;
    if (!json_is_object(body)) {
        api_error_add(errors, "", "invalid_type", "must be a JSON object");
        return api_send_invalid(ar, 422, "The merge request is invalid.", errors), -1;
    }
    json_object_foreach(body, key, v) if (strcmp(key, "merge_ids") != 0 && strcmp(key, "fields") != 0)
        api_error_add(errors, key, "unknown_field", "is not a member of a merge request");
    crud_buf_t b;
    crud_buf_init(&b, &ar->req->pool, 64);
    crud_buf_puts(&b, "{");
    if (ids_j == NULL) {
        api_error_add(errors, "merge_ids", "required", "is required: the ids of the records to merge into this one");
    } else if (!json_is_array(ids_j) || json_array_size(ids_j) == 0 || json_array_size(ids_j) > MERGE_IDS_MAX) {
        snprintf(msg, sizeof(msg), "must be an array of 1 to %d ids", MERGE_IDS_MAX);
        api_error_add(errors, "merge_ids", json_is_array(ids_j) ? "invalid_length" : "invalid_type", msg);
    } else {
        json_array_foreach(ids_j, i, v)
        {
            int64_t id;
            snprintf(field, sizeof(field), "merge_ids[%zu]", i);
            if (validate_id_value(v, &id) != 0) {
                api_error_add(errors, field, "invalid_type", "must be a positive integer id");
                continue;
            }
            int dup = id == survivor;
            for (size_t k = 0; k < n; k++)
                dup |= seen[k] == id;
            if (dup) {
                api_error_add(errors, field, "duplicate",
                              id == survivor ? "is the id of the surviving record" : "appears more than once");
                continue;
            }
            char buf[24];
            seen[n++] = id;
            crud_buf_puts(&b, n > 1 ? "," : "");
            crud_buf_puts(&b, db_fmt_i64(buf, id));
        }
    }
    crud_buf_append(&b, "}", 2);
    if (fields_j != NULL && !json_is_object(fields_j)) {
        api_error_add(errors, "fields", "invalid_type",
                      "must be an object naming, for each field, the id of the record whose value wins");
    } else if (fields_j != NULL) {
        json_object_foreach(fields_j, key, v)
        {
            const engine_field_t *f = engine_field(r, key);
            int64_t id;
            snprintf(field, sizeof(field), "fields.%.100s", key);
            if (f == NULL || (f->ef & EF_INPUT_ONLY)) {
                api_error_add(errors, field, "unknown_field", "is not a field of the record");
            } else if (!merge_field_choosable(r, f)) {
                api_error_add(errors, field, "read_only",
                              strcmp(key, "owner_id") == 0 || strcmp(key, "team_id") == 0
                                  ? "is not merged: change the survivor's owner or team with PATCH"
                              : strcmp(key, "external_id") == 0
                                  ? "is not merged: each record keeps its own; integrators follow merged_into"
                                  : "is not merged");
            } else if (validate_id_value(v, &id) != 0) {
                api_error_add(errors, field, "invalid_type", "must be the id of the record whose value wins");
            } else {
                int known = id == survivor;
                for (size_t k = 0; k < n; k++)
                    known |= seen[k] == id;
                if (!known)
                    api_error_add(errors, field, "invalid_value",
                                  "must be the id of the surviving record or of one in merge_ids");
            }
        }
    }
    if (json_array_size(errors) > 0) {
        char detail[96];
        snprintf(detail, sizeof(detail), "The merge of %s is invalid; nothing was merged.", r->name);
        return api_send_invalid(ar, 422, detail, errors), -1;
    }
    json_decref(errors);
    *ids = b.base;
    *fields = fields_j != NULL ? crud_dump(ar, fields_j) : "{}";
    return 0;
}

int merge_records(api_req_t *ar)
{
    const engine_resource_t *r = ar->route->resource;
    int64_t version, survivor = api_param_i64(ar, "id");
    const char *ids, *fields;
    if (crud_if_match(ar, &version) != 0 || check_body(ar, r, survivor, &ids, &fields) != 0)
        return 0;
    merging_t *mg = h2o_mem_alloc_pool(&ar->req->pool, sizeof(*mg));
    mg->r = r;
    mg->ids = crud_dump(ar, json_object_get(ar->body, "merge_ids"));
    char uid[24], ver[24], sid[24], vbuf[24];
    api_caller_params(ar, uid, ver);
    const char *p[] = {uid,           ver, db_fmt_i64(sid, survivor), ids, fields, crud_version_param(version, vbuf),
                       ar->request_id};
    return crud_query(ar, merge_sql_merge(&of(ar)->sql, r), 7, p, on_merge, mg);
}
