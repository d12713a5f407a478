/*
 * api/ownership.c - POST /v1/ownership-transfers and GET /v1/ownership-transfers/{id}
 * (see ownership.h).
 *
 * The handler checks the body (types here; users, team and permissions in
 * the statement, which alone can see them), completes it with its defaults
 * (every owned resource, only_open true), and hands it with the closed-state
 * rules of the descriptions to one statement (api/ownership_db.c). Which
 * resources are owned, and what is closed, comes from the descriptions in
 * api/resources.c, so a resource added later takes part without a change here.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "crud.h"
#include "ownership.h"
#include "ownership_db.h"
#include "resources.h"
#include "validate.h"

static const validate_field_t transfer_fields[] = {
    {.name = "from_user_id", .type = VT_ID, .flags = VF_REQUIRED},
    {.name = "to_user_id", .type = VT_ID, .flags = VF_REQUIRED},
    {.name = "team_id", .type = VT_ID, .flags = VF_NULLABLE},
    {.name = "resources", .type = VT_STRING_ARRAY, .min_len = 1, .max_len = 32, .item_min_len = 1, .item_max_len = 64},
    {.name = "only_open", .type = VT_BOOL},
};

static const engine_resource_t *owned_named(const engine_resource_t *const *resources, const char *name)
{
    for (size_t i = 0; resources[i] != NULL; i++)
        if (resources[i]->scope.kind == ENGINE_OWNED && strcmp(resources[i]->name, name) == 0)
            return resources[i];
    return NULL;
}

const char *ownership_owned_array(const engine_resource_t *const *resources, char *buf, size_t len)
{
    size_t o = 0;
    if (len < 3)
        return NULL;
    buf[o++] = '{';
    for (size_t i = 0; resources[i] != NULL; i++) {
        if (resources[i]->scope.kind != ENGINE_OWNED)
            continue;
        /* Names are plain lower-case identifiers (engine_build checks them): nothing to quote. */
        size_t n = strlen(resources[i]->name);
        if (o + n + 3 > len)
            return NULL;
        if (o > 1)
            buf[o++] = ',';
        memcpy(buf + o, resources[i]->name, n);
        o += n;
    }
    buf[o++] = '}';
    buf[o] = '\0';
    return buf;
}

json_t *ownership_closed_rules(const engine_resource_t *const *resources)
{
    json_t *o = json_object();
    for (size_t i = 0; resources[i] != NULL; i++) {
        const engine_resource_t *r = resources[i];
        if (r->scope.kind != ENGINE_OWNED || r->closed.field == NULL)
            continue;
        json_t *values = json_array();
        for (const char *const *v = r->closed.values; v != NULL && *v != NULL; v++)
            json_array_append_new(values, json_string(*v));
        json_object_set_new(o, r->name, json_pack("{s:s, s:o}", "field", r->closed.field, "values", values));
    }
    return o;
}

int ownership_check_resources(const engine_resource_t *const *resources, char *err, size_t errlen)
{
    for (size_t i = 0; resources[i] != NULL; i++) {
        const engine_resource_t *r = resources[i];
        if (r->closed.field == NULL)
            continue;
        const engine_field_t *f = engine_field(r, r->closed.field);
        if (r->scope.kind != ENGINE_OWNED || f == NULL || f->v.type != VT_ENUM || r->closed.values == NULL ||
            r->closed.values[0] == NULL) {
            snprintf(err, errlen, "%s: the closed state must name values of an enum field of an owned resource",
                     r->name);
            return -1;
        }
        for (const char *const *v = r->closed.values; *v != NULL; v++) {
            int known = 0;
            for (const char *const *e = f->v.enum_values; *e != NULL; e++)
                known |= strcmp(*e, *v) == 0;
            if (!known) {
                snprintf(err, errlen, "%s: closed value %s is not one of %s's values", r->name, *v, f->v.name);
                return -1;
            }
        }
    }
    return 0;
}

/* --- POST /v1/ownership-transfers --------------------------------------------------------- */

static void on_start(api_req_t *ar, const PGresult *res, int err, void *arg)
{
    if (crud_check_result(ar, res, err) != 0)
        return;
    const char *outcome = PQgetvalue(res, 0, 0), *detail = PQgetvalue(res, 0, 2);
    char msg[240];
    if (strcmp(outcome, "succeeded") == 0 || strcmp(outcome, "queued") == 0) {
        int queued = outcome[0] == 'q';
        snprintf(msg, sizeof(msg), "/v1/ownership-transfers/%s", PQgetvalue(res, 0, 1));
        api_add_header(ar, "location", msg);
        log_msg(LOG_INFO, "request %s: ownership transfer %s %s", ar->request_id, PQgetvalue(res, 0, 1),
                queued ? "queued for a worker" : "done");
        api_send_raw(ar, queued ? 202 : 201, "application/json", PQgetvalue(res, 0, 3), (size_t)PQgetlength(res, 0, 3));
    } else if (strcmp(outcome, "unauthenticated") == 0) {
        api_send_unauthenticated(ar, 1, "The access token is no longer valid.");
    } else if (strcmp(outcome, "forbidden") == 0) {
        if (strcmp(detail, "users") == 0)
            snprintf(msg, sizeof(msg), "Your role may not read users, so it may not transfer their records.");
        else
            snprintf(msg, sizeof(msg), "Your role may not update %.64s, so it may not transfer them.", detail);
        api_send_error(ar, ERR_FORBIDDEN, msg);
    } else if (strcmp(outcome, "out_of_scope") == 0) {
        char what[65] = "";
        long long n = 0;
        sscanf(detail, "%64s %lld", what, &n);
        snprintf(msg, sizeof(msg),
                 "%lld %s of this user lie outside what your role may move to the recipient; nothing was moved. "
                 "An administrator can transfer them.",
                 n, what);
        api_send_error(ar, ERR_FORBIDDEN, msg);
    } else {
        json_t *errors = json_array();
        const char *field = strchr(outcome, '_') != NULL ? strchr(outcome, '_') + 1 : outcome;
        if (strcmp(outcome, "same_to_user_id") == 0)
            api_error_add(errors, field, VALIDATE_E_INVALID_VALUE, "The recipient must be another user.");
        else if (strcmp(outcome, "inactive_to_user_id") == 0)
            api_error_add(errors, field, VALIDATE_E_INVALID_VALUE, "The recipient is deactivated.");
        else if (strcmp(outcome, "invalid_team_id") == 0)
            api_error_add(errors, field, VALIDATE_E_INVALID_VALUE, "No team has this id.");
        else
            api_error_add(errors, field, VALIDATE_E_INVALID_VALUE, "No user you may see has this id.");
        api_send_invalid(ar, 422, "The transfer cannot be made as asked.", errors);
    }
}

int ownership_transfer_create(api_req_t *ar)
{
    json_t *body = ar->body, *errors = json_array();
    validate_object(body, transfer_fields, VALIDATE_COUNT(transfer_fields), VALIDATE_CREATE, "", errors);
    json_t *resources = json_is_object(body) ? json_object_get(body, "resources") : NULL;
    if (json_is_array(resources) && json_array_size(resources) <= transfer_fields[3].max_len) {
        size_t i, j;
        json_t *v;
        json_array_foreach(resources, i, v)
        {
            char field[32];
            snprintf(field, sizeof(field), "resources[%zu]", i);
            const char *name = json_string_value(v);
            if (name == NULL || name[0] == '\0' || strlen(name) > transfer_fields[3].item_max_len)
                continue; /* validate_object() named it already */
            int dup = 0;
            for (j = 0; j < i; j++)
                dup |= json_is_string(json_array_get(resources, j)) &&
                       strcmp(json_string_value(json_array_get(resources, j)), name) == 0;
            if (owned_named(engine_resources, name) == NULL)
                api_error_add(errors, field, VALIDATE_E_INVALID_VALUE,
                              "Not a resource whose records have owners; records of other resources follow their "
                              "parent (a customer's contacts and orders go with it).");
            else if (dup)
                api_error_add(errors, field, VALIDATE_E_INVALID_VALUE, "Each resource is named once.");
        }
    }
    if (json_array_size(errors) > 0) {
        api_send_invalid(ar, 422, "The transfer has invalid fields.", errors);
        return 0;
    }
    json_decref(errors);

    json_t *input = json_pack("{s:O, s:O, s:O, s:b}", "from_user_id", json_object_get(body, "from_user_id"),
                              "to_user_id", json_object_get(body, "to_user_id"), "team_id",
                              json_object_get(body, "team_id") != NULL ? json_object_get(body, "team_id") : json_null(),
                              "only_open", !json_is_false(json_object_get(body, "only_open")));
    if (resources == NULL) {
        resources = json_array();
        for (size_t i = 0; engine_resources[i] != NULL; i++)
            if (engine_resources[i]->scope.kind == ENGINE_OWNED)
                json_array_append_new(resources, json_string(engine_resources[i]->name));
        json_object_set_new(input, "resources", resources);
    } else {
        json_object_set(input, "resources", resources);
    }
    json_t *closed = ownership_closed_rules(engine_resources);
    char sync_max[24];
    snprintf(sync_max, sizeof(sync_max), "%d", OWNERSHIP_SYNC_MAX);
    int ret = ownership_db_start(ar, crud_dump(ar, input), crud_dump(ar, closed), sync_max, on_start, NULL);
    json_decref(input);
    json_decref(closed);
    return ret;
}

/* --- GET /v1/ownership-transfers/{id} ------------------------------------------------------- */

static void on_get(api_req_t *ar, const PGresult *res, int err, void *arg)
{
    if (crud_check_result(ar, res, err) != 0)
        return;
    if (PQgetisnull(res, 0, 1)) {
        api_send_error(ar, ERR_NOT_FOUND, NULL);
        return;
    }
    /* A transfer in progress changes with every heartbeat: no validator, and no caching. */
    api_add_header(ar, "cache-control", "no-store");
    api_send_raw(ar, 200, "application/json", PQgetvalue(res, 0, 1), (size_t)PQgetlength(res, 0, 1));
}

int ownership_transfer_get(api_req_t *ar)
{
    return ownership_db_get(ar, api_param_i64(ar, "id"), on_get, NULL);
}
