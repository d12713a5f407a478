/*
 * api/admin.c - /v1/users, /v1/teams and /v1/roles: administration CRUD.
 *
 * Handlers authenticate, validate the input against the field tables below
 * (every error at once, plus the checks tables cannot express: role names,
 * the shape of a role's permissions, a password's size in bytes), and hand
 * one scoped statement to admin_db.c; the conventions of api/crud.c turn
 * its result into the answer, after the outcomes only these resources have
 * (in_use, builtin_role, forbidden_role, self_lockout) and duplicates.
 *
 * Passwords are hashed with argon2id on the KDF thread pool (api/kdf.h),
 * never on the loop thread, and only after a cheap scoped statement has
 * shown that the caller may write users at all, so a caller without the
 * right cannot keep the pool busy. The hash step owns a malloc'ed
 * user_op_t holding a reference on the request. The password is wiped
 * from the parsed body as soon as the pool has its copy; it is never
 * logged, stored in clear or returned, and the documents PostgreSQL builds
 * (user_json) have no password_hash.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin.h"
#include "admin_db.h"
#include "crud.h"
#include "validate.h"

#define ROLE_NAME_MAX 32
#define MODULE_NAME_MAX 32
#define PERMISSIONS_MAX_BYTES 8192
#define PATH_NAME_MAX 100 /* longest module or action name echoed back in a field path, in bytes */

static const char *const scopes[] = {"none", "own", "team", "all", NULL};
static const char *const actions[] = {"read", "create", "update", "delete", NULL};
static const char *const booleans[] = {"true", "false", NULL};

const validate_field_t admin_teams_fields[] = {
    {.name = "id", .type = VT_ID, .flags = VF_READONLY},
    {.name = "name", .type = VT_STRING, .flags = VF_REQUIRED | VF_TRIM, .min_len = 1, .max_len = 100},
    {.name = "created_at", .type = VT_TIMESTAMP, .flags = VF_READONLY},
    {.name = "updated_at", .type = VT_TIMESTAMP, .flags = VF_READONLY},
    {.name = "version", .type = VT_INT, .flags = VF_READONLY},
};
const size_t admin_teams_nfields = VALIDATE_COUNT(admin_teams_fields);

const validate_field_t admin_roles_fields[] = {
    {.name = "id", .type = VT_ID, .flags = VF_READONLY},
    {.name = "name", .type = VT_STRING, .flags = VF_REQUIRED, .min_len = 1, .max_len = ROLE_NAME_MAX},
    {.name = "description", .type = VT_TEXT, .flags = VF_TRIM, .max_len = 500},
    {.name = "permissions", .type = VT_JSON_OBJECT, .flags = VF_REQUIRED, .max_bytes = PERMISSIONS_MAX_BYTES},
    {.name = "builtin", .type = VT_BOOL, .flags = VF_READONLY},
    {.name = "created_at", .type = VT_TIMESTAMP, .flags = VF_READONLY},
    {.name = "updated_at", .type = VT_TIMESTAMP, .flags = VF_READONLY},
    {.name = "version", .type = VT_INT, .flags = VF_READONLY},
};
const size_t admin_roles_nfields = VALIDATE_COUNT(admin_roles_fields);

const validate_field_t admin_users_fields[] = {
    {.name = "id", .type = VT_ID, .flags = VF_READONLY},
    {.name = "email", .type = VT_EMAIL, .flags = VF_REQUIRED | VF_TRIM, .max_len = 254},
    {.name = "name", .type = VT_STRING, .flags = VF_REQUIRED | VF_TRIM, .min_len = 1, .max_len = 200},
    {.name = "password", .type = VT_STRING, .flags = VF_REQUIRED, .min_len = 10, .max_len = KDF_MAX_PASSWORD},
    {.name = "role", .type = VT_STRING, .flags = VF_REQUIRED, .min_len = 1, .max_len = ROLE_NAME_MAX},
    {.name = "team_id", .type = VT_ID, .flags = VF_NULLABLE},
    {.name = "active", .type = VT_BOOL},
    {.name = "created_at", .type = VT_TIMESTAMP, .flags = VF_READONLY},
    {.name = "updated_at", .type = VT_TIMESTAMP, .flags = VF_READONLY},
    {.name = "version", .type = VT_INT, .flags = VF_READONLY},
};
const size_t admin_users_nfields = VALIDATE_COUNT(admin_users_fields);

static const char *const team_list_fields[] = {"id", "name", "created_at", "updated_at", "version", NULL};
static const char *const role_list_fields[] = {"id",         "name",       "description", "permissions", "builtin",
                                               "created_at", "updated_at", "version",     NULL};
static const char *const user_list_fields[] = {"id",     "email",      "name",       "role",    "team_id",
                                               "active", "created_at", "updated_at", "version", NULL};

/* --- input checks ---------------------------------------------------------------- */

static int in_list(const char *s, const char *const *list)
{
    for (; *list != NULL; list++)
        if (strcmp(s, *list) == 0)
            return 1;
    return 0;
}

/* ^[a-z][a-z0-9_]{0,max-1}$ (digits only when `digits`), on a NUL-terminated string. */
static int is_name(const char *s, size_t max, int digits)
{
    size_t n = strlen(s);
    if (n == 0 || n > max || !(s[0] >= 'a' && s[0] <= 'z'))
        return 0;
    for (size_t i = 1; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || s[i] == '_' || (digits && s[i] >= '0' && s[i] <= '9')))
            return 0;
    return 1;
}

/* Has a problem already been reported for this field? (At most one error per scalar value.) */
static int has_error(const json_t *errors, const char *field)
{
    size_t i;
    json_t *e;
    json_array_foreach(errors, i, e)
    {
        if (strcmp(json_string_value(json_object_get(e, "field")), field) == 0)
            return 1;
    }
    return 0;
}

/* "prefix.name" with the name clipped at a UTF-8 boundary, so a long key cannot make a long error. */
static void member_path(char *buf, size_t len, const char *prefix, const char *name)
{
    size_t n = strlen(name);
    int clipped = n > PATH_NAME_MAX;
    if (clipped) {
        n = PATH_NAME_MAX;
        while (n > 0 && ((unsigned char)name[n] & 0xc0) == 0x80)
            n--;
    }
    snprintf(buf, len, "%s.%.*s%s", prefix, (int)n, name, clipped ? "..." : "");
}

/* A field a rule may name: a built-in field's name, or "attrs.<key>" for a key of attrs. */
static int is_rule_field(const char *f)
{
    if (strncmp(f, "attrs.", 6) == 0)
        return is_name(f + 6, 40, 1);
    return is_name(f, 48, 1);
}

static const char *const field_rules[] = {"hidden", "read", NULL};

/*
 * permissions.fields: {"<module>": {"<field>": "hidden" | "read"}}, each bad
 * entry named ("permissions.fields.customers.credit_limit").
 */
static void check_field_rules(const json_t *fields, unsigned mode, json_t *errors)
{
    const char *module, *field;
    json_t *rules, *rule;
    char path[2 * PATH_NAME_MAX + 48], fpath[3 * PATH_NAME_MAX + 64];
    if (!json_is_object(fields)) {
        if (!(json_is_null(fields) && mode == VALIDATE_PATCH))
            api_error_add(errors, "permissions.fields", VALIDATE_E_INVALID_TYPE,
                          "must be an object mapping modules to field rules");
        return;
    }
    json_object_foreach((json_t *)fields, module, rules)
    {
        member_path(path, sizeof(path), "permissions.fields", module);
        if (!is_name(module, MODULE_NAME_MAX, 0)) {
            api_error_add(errors, path, VALIDATE_E_INVALID_FORMAT, "must be a module name");
            continue;
        }
        if (json_is_null(rules) && mode == VALIDATE_PATCH)
            continue;
        if (!json_is_object(rules)) {
            api_error_add(errors, path, VALIDATE_E_INVALID_TYPE, "must be an object mapping fields to hidden or read");
            continue;
        }
        json_object_foreach(rules, field, rule)
        {
            member_path(fpath, sizeof(fpath), path, field);
            if (!is_rule_field(field))
                api_error_add(errors, fpath, VALIDATE_E_INVALID_FORMAT,
                              "must be a field name, or attrs.<key> for a key of attrs");
            else if (json_is_null(rule) && mode == VALIDATE_PATCH)
                continue;
            else if (!json_is_string(rule) || !in_list(json_string_value(rule), field_rules))
                api_error_add(errors, fpath, VALIDATE_E_INVALID_VALUE, "must be hidden or read");
        }
    }
}

/*
 * Checks a role's permissions member by member, naming each bad entry
 * ("permissions.customers.read"). In a merge patch, null removes a module
 * or an action (RFC 7396), so it is accepted there.
 */
static void check_permissions(const json_t *perms, unsigned mode, json_t *errors)
{
    const char *module, *action;
    json_t *grant, *scope;
    char path[2 * PATH_NAME_MAX + 32], apath[3 * PATH_NAME_MAX + 48];
    json_object_foreach((json_t *)perms, module, grant)
    {
        member_path(path, sizeof(path), "permissions", module);
        if (strcmp(module, "fields") == 0) {
            check_field_rules(grant, mode, errors);
            continue;
        }
        if (!is_name(module, MODULE_NAME_MAX, 0)) {
            api_error_add(
                errors, path, VALIDATE_E_INVALID_FORMAT,
                "must be a module name: a lowercase letter, then at most 31 lowercase letters or underscores");
            continue;
        }
        if (json_is_null(grant) && mode == VALIDATE_PATCH)
            continue;
        if (!json_is_object(grant)) {
            api_error_add(errors, path, VALIDATE_E_INVALID_TYPE,
                          "must be an object mapping read, create, update and delete to a scope");
            continue;
        }
        json_object_foreach(grant, action, scope)
        {
            member_path(apath, sizeof(apath), path, action);
            if (!in_list(action, actions))
                api_error_add(errors, apath, VALIDATE_E_UNKNOWN_FIELD,
                              "is not an action: use read, create, update or delete");
            else if (json_is_null(scope) && mode == VALIDATE_PATCH)
                continue;
            else if (!json_is_string(scope))
                api_error_add(errors, apath, VALIDATE_E_INVALID_TYPE, "must be one of none, own, team, all");
            else if (!in_list(json_string_value(scope), scopes))
                api_error_add(errors, apath, VALIDATE_E_INVALID_VALUE, "must be one of none, own, team, all");
        }
    }
}

/* The checks a table cannot express, after validate_object() found what it could. */
static void check_extra(const json_t *body, const validate_field_t *fields, unsigned mode, json_t *errors)
{
    json_t *v;
    if (fields == admin_roles_fields) {
        v = json_object_get(body, "name");
        if (json_is_string(v) && !has_error(errors, "name") && !is_name(json_string_value(v), ROLE_NAME_MAX, 1))
            api_error_add(errors, "name", VALIDATE_E_INVALID_FORMAT,
                          "must be a lowercase letter, then at most 31 lowercase letters, digits or underscores");
        v = json_object_get(body, "permissions");
        if (json_is_object(v) && !has_error(errors, "permissions"))
            check_permissions(v, mode, errors);
    } else if (fields == admin_users_fields) {
        /* The table counts code points; the KDF takes at most KDF_MAX_PASSWORD bytes. */
        v = json_object_get(body, "password");
        if (json_is_string(v) && !has_error(errors, "password") && json_string_length(v) > KDF_MAX_PASSWORD)
            api_error_add(errors, "password", VALIDATE_E_TOO_LONG, "must be at most 1024 bytes in UTF-8");
    }
}

/* Validates a body; answers 422 with every error and returns nonzero when it is bad. */
static int check_input(api_req_t *ar, const validate_field_t *fields, size_t nfields, unsigned mode, const char *detail)
{
    json_t *errors = json_array();
    validate_object(ar->body, fields, nfields, mode, "", errors);
    if (json_is_object(ar->body))
        check_extra(ar->body, fields, mode, errors);
    if (json_array_size(errors) > 0) {
        api_send_invalid(ar, 422, detail, errors);
        return -1;
    }
    json_decref(errors);
    validate_trim(ar->body, fields, nfields);
    return 0;
}

/* --- answers ------------------------------------------------------------------------ */

/* What differs between the three resources when a write is answered. */
typedef struct st_resource_t {
    const char *collection;   /* for Location */
    const char *unique_field; /* the member a duplicate is about */
    const char *duplicate;    /* detail for a duplicate */
    const char *in_use;       /* detail for in_use */
} resource_t;

static const resource_t TEAMS = {"/v1/teams", "name", "A team with this name already exists.",
                                 "The team still has users or customers. Move them to another team first."};
static const resource_t ROLES = {"/v1/roles", "name", "A role with this name already exists.",
                                 "Users still have this role. Give them another role first."};
static const resource_t USERS = {"/v1/users", "email", "A user with this email already exists.", NULL};

static void on_read(api_req_t *ar, const PGresult *res, int err, void *arg)
{
    if (crud_check_result(ar, res, err) == 0)
        crud_send_read(ar, res);
}

static void on_write(api_req_t *ar, const PGresult *res, int err, void *arg)
{
    const resource_t *r = arg;
    if (err == ERR_CONFLICT) {
        if (admin_db_is_duplicate(res)) {
            json_t *errors = json_array();
            api_error_add(errors, r->unique_field, "duplicate", "is already taken");
            api_send_invalid(ar, 409, r->duplicate, errors);
        } else {
            /* A reference broke under a concurrent change (a team or role deleted meanwhile, a new user in a team). */
            api_send_error(ar, ERR_CONFLICT, "A record this change depends on was changed at the same time. Retry.");
        }
        return;
    }
    if (crud_check_result(ar, res, err) != 0)
        return;
    const char *outcome = PQgetvalue(res, 0, 0);
    if (strcmp(outcome, "in_use") == 0)
        api_send_error(ar, ERR_CONFLICT, r->in_use);
    else if (strcmp(outcome, "builtin_role") == 0)
        api_send_error(ar, ERR_CONFLICT, "Built-in roles cannot be renamed or deleted.");
    else if (strcmp(outcome, "forbidden_role") == 0)
        api_send_error(ar, ERR_FORBIDDEN,
                       "Your role may not manage a user whose old or new role has rights your own role lacks.");
    else if (strcmp(outcome, "self_lockout") == 0)
        api_send_error(ar, ERR_CONFLICT,
                       "You cannot deactivate your own account or change your own role. Ask another administrator.");
    else
        crud_send_write(ar, res, r->collection);
}

static void on_list(api_req_t *ar, const PGresult *res, int err, void *arg)
{
    if (crud_check_result(ar, res, err) == 0)
        crud_send_list(ar, res, arg);
}

/* --- teams and roles ------------------------------------------------------------------ */

static const char *const named_allowed[] = {"limit", "cursor", "sort", "fields", "count", NULL};

/* Reads the standard list parameters into a pool-allocated crud_list_t; NULL when answered already. */
static crud_list_t *parse_list(api_req_t *ar, const char *const *allowed, crud_query_t *q, const char *const *sorts,
                               const char *const *fields)
{
    if (crud_parse_query(ar, allowed, q) != 0)
        return NULL;
    crud_list_t *list = h2o_mem_alloc_pool(&ar->req->pool, sizeof(*list));
    return crud_parse_list(ar, q, sorts, 0, fields, list) == 0 ? list : NULL;
}

int admin_teams_list(api_req_t *ar)
{
    crud_query_t q;
    crud_list_t *list;
    if ((list = parse_list(ar, named_allowed, &q, admin_db_named_sorts, team_list_fields)) == NULL)
        return 0;
    return admin_db_teams_list(ar, list, on_list, list);
}

int admin_teams_get(api_req_t *ar)
{
    return admin_db_teams_get(ar, api_param_i64(ar, "id"), on_read, NULL);
}

int admin_teams_create(api_req_t *ar)
{
    if (check_input(ar, admin_teams_fields, admin_teams_nfields, VALIDATE_CREATE, "The team has invalid fields.") != 0)
        return 0;
    return admin_db_teams_create(ar, crud_dump(ar, ar->body), on_write, (void *)&TEAMS);
}

int admin_teams_patch(api_req_t *ar)
{
    int64_t version;
    char vbuf[24];
    if (crud_if_match(ar, &version) != 0 ||
        check_input(ar, admin_teams_fields, admin_teams_nfields, VALIDATE_PATCH, "The team has invalid fields.") != 0)
        return 0;
    return admin_db_teams_patch(ar, api_param_i64(ar, "id"), crud_dump(ar, ar->body), crud_version_param(version, vbuf),
                                on_write, (void *)&TEAMS);
}

int admin_teams_delete(api_req_t *ar)
{
    int64_t version;
    char vbuf[24];
    if (crud_if_match(ar, &version) != 0)
        return 0;
    return admin_db_teams_delete(ar, api_param_i64(ar, "id"), crud_version_param(version, vbuf), on_write,
                                 (void *)&TEAMS);
}

int admin_roles_list(api_req_t *ar)
{
    crud_query_t q;
    crud_list_t *list;
    if ((list = parse_list(ar, named_allowed, &q, admin_db_named_sorts, role_list_fields)) == NULL)
        return 0;
    return admin_db_roles_list(ar, list, on_list, list);
}

int admin_roles_get(api_req_t *ar)
{
    return admin_db_roles_get(ar, api_param_i64(ar, "id"), on_read, NULL);
}

int admin_roles_create(api_req_t *ar)
{
    if (check_input(ar, admin_roles_fields, admin_roles_nfields, VALIDATE_CREATE, "The role has invalid fields.") != 0)
        return 0;
    return admin_db_roles_create(ar, crud_dump(ar, ar->body), on_write, (void *)&ROLES);
}

int admin_roles_patch(api_req_t *ar)
{
    int64_t version;
    char vbuf[24];
    if (crud_if_match(ar, &version) != 0 ||
        check_input(ar, admin_roles_fields, admin_roles_nfields, VALIDATE_PATCH, "The role has invalid fields.") != 0)
        return 0;
    return admin_db_roles_patch(ar, api_param_i64(ar, "id"), crud_dump(ar, ar->body), crud_version_param(version, vbuf),
                                on_write, (void *)&ROLES);
}

int admin_roles_delete(api_req_t *ar)
{
    int64_t version;
    char vbuf[24];
    if (crud_if_match(ar, &version) != 0)
        return 0;
    return admin_db_roles_delete(ar, api_param_i64(ar, "id"), crud_version_param(version, vbuf), on_write,
                                 (void *)&ROLES);
}

/* --- users ------------------------------------------------------------------------------ */

/* A user write waiting for its password hash. */
typedef struct st_user_op_t {
    api_req_t *ar;
    int64_t id;      /* 0 when creating */
    int64_t version; /* If-Match: -1 none, 0 "*" */
} user_op_t;

/* Removes the password from the parsed body, overwriting jansson's copy of it first. */
static void drop_password(json_t *body)
{
    json_t *pw = json_object_get(body, "password");
    if (json_is_string(pw))
        explicit_bzero((char *)json_string_value(pw), json_string_length(pw));
    json_object_del(body, "password");
}

/* Sends the write itself; the body no longer holds a password. password_hash may be NULL for a patch. */
static int write_user(api_req_t *ar, int64_t id, int64_t version, const char *password_hash)
{
    char vbuf[24];
    if (id == 0)
        return admin_db_users_create(ar, crud_dump(ar, ar->body), password_hash, on_write, (void *)&USERS);
    return admin_db_users_patch(ar, id, crud_dump(ar, ar->body), password_hash, crud_version_param(version, vbuf),
                                on_write, (void *)&USERS);
}

static void on_hashed(void *data, const char *encoded, int err)
{
    user_op_t *op = data;
    api_req_t *ar = op->ar;
    if (ar->req != NULL) {
        int ret = err != 0 ? err : write_user(ar, op->id, op->version, encoded);
        if (ret != 0)
            api_send_error(ar, ret == ERR_INVALID ? ERR_INTERNAL : ret, NULL);
    }
    api_req_release(ar);
    free(op);
}

/* The caller may write users at all: hash the password on the KDF pool, then write. */
static void on_may_write(api_req_t *ar, const PGresult *res, int err, void *arg)
{
    const user_op_t *pre = arg;
    if (crud_check_result(ar, res, err) != 0) {
        drop_password(ar->body);
        return;
    }
    /* Columns: rscope, cscope, uscope, dscope. */
    if (strcmp(PQgetvalue(res, 0, pre->id == 0 ? 1 : 2), "none") == 0) {
        drop_password(ar->body);
        api_send_error(ar, ERR_FORBIDDEN,
                       pre->id == 0 ? "Your role may not create users." : "Your role may not change users.");
        return;
    }
    user_op_t *op = malloc(sizeof(*op));
    if (op == NULL)
        abort();
    *op = *pre;
    op->ar = ar;
    json_t *pw = json_object_get(ar->body, "password");
    int ret = kdf_hash(ar->thread->kdf, json_string_value(pw), json_string_length(pw), on_hashed, op);
    drop_password(ar->body); /* the pool has its own copy, which it wipes */
    if (ret != 0) {
        free(op);
        api_send_error(ar, ret,
                       ret == ERR_UNAVAILABLE ? "Too many passwords are being hashed right now. Retry later." : NULL);
        return;
    }
    api_req_hold(ar);
}

/* Creates a user, or patches one; with a password, the hash comes first. */
static int start_user_write(api_req_t *ar, int64_t id, int64_t version)
{
    if (json_object_get(ar->body, "password") == NULL)
        return write_user(ar, id, version, NULL);
    user_op_t *pre = h2o_mem_alloc_pool(&ar->req->pool, sizeof(*pre));
    *pre = (user_op_t){ar, id, version};
    int ret = admin_db_users_scope(ar, on_may_write, pre);
    if (ret != 0)
        drop_password(ar->body);
    return ret;
}

int admin_users_get(api_req_t *ar)
{
    return admin_db_users_get(ar, api_param_i64(ar, "id"), on_read, NULL);
}

int admin_users_create(api_req_t *ar)
{
    if (check_input(ar, admin_users_fields, admin_users_nfields, VALIDATE_CREATE, "The user has invalid fields.") != 0)
        return 0;
    return start_user_write(ar, 0, -1);
}

int admin_users_patch(api_req_t *ar)
{
    int64_t version;
    if (crud_if_match(ar, &version) != 0 ||
        check_input(ar, admin_users_fields, admin_users_nfields, VALIDATE_PATCH, "The user has invalid fields.") != 0)
        return 0;
    return start_user_write(ar, api_param_i64(ar, "id"), version);
}

int admin_users_delete(api_req_t *ar)
{
    int64_t version;
    char vbuf[24];
    if (crud_if_match(ar, &version) != 0)
        return 0;
    return admin_db_users_delete(ar, api_param_i64(ar, "id"), crud_version_param(version, vbuf), on_write,
                                 (void *)&USERS);
}

static int bad_param(api_req_t *ar, const char *name, const char *message)
{
    json_t *errors = json_array();
    api_error_add(errors, name, "invalid_value", message);
    return api_send_invalid(ar, 400, "The query string has invalid parameters.", errors);
}

int admin_users_list(api_req_t *ar)
{
    static const char *const allowed[] = {"limit",   "cursor", "sort",   "fields", "count",
                                          "team_id", "role",   "active", "q",      NULL};
    crud_query_t q;
    crud_list_t *list;
    admin_users_filter_t f = {0};
    char team[24];
    if ((list = parse_list(ar, allowed, &q, admin_db_users_sorts, user_list_fields)) == NULL ||
        crud_param_id(ar, &q, "team_id", team, &f.team_id) != 0 ||
        crud_param_enum(ar, &q, "active", booleans, &f.active) != 0)
        return 0;
    f.role = crud_query_get(&q, "role");
    if (f.role != NULL && !is_name(f.role, ROLE_NAME_MAX, 1))
        return bad_param(ar, "role", "must be a role name");
    const char *term = crud_query_get(&q, "q");
    if (term != NULL && (strlen(term) == 0 || strlen(term) > 200))
        return bad_param(ar, "q", "must be 1 to 200 characters");
    if (term != NULL)
        f.q_pattern = crud_like_pattern(ar, term);
    return admin_db_users_list(ar, &f, list, on_list, list);
}
