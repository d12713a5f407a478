/*
 * tests/integration/admin_test.c - /v1/users, /v1/teams and /v1/roles
 * against real PostgreSQL and Redis: administrator CRUD with status codes,
 * ETags and bodies; strict validation of role permissions; built-in and
 * in-use records that cannot be deleted; duplicates; what non-administrators
 * may do; and sessions that end at once when a user is deactivated or their
 * password changes.
 *
 * One API process serves the suite (the crew's unchecked fixture in the
 * parent, tests/support/crew.c); Check forks each test, which talks to it
 * over HTTP. The administrator, a rep and a manager are created once in
 * main() with `clientele-api user-add`; tests that change users or roles
 * create their own, with names unique to the test, so tests do not depend
 * on each other's order. The crew's checked fixture empties this suite's
 * Redis database before every test so login throttling counters never leak
 * between tests.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <check.h>

#include "tests/support/crew.h"

#define SECRET "admin-test-secret-0123456789abcdefghijklmn"
#define PASSWORD "admin-test-password-1"

static const char *const api_env[] = {
    "CLIENTELE_JWT_SECRET=" SECRET,
    "CLIENTELE_THREADS=2",
    "CLIENTELE_BODY_LIMIT=16KiB",
    NULL,
};

static const crew_conf_t conf = {.name = "admin", .redis_db = 3, .env = api_env};

/* Filled in by main() before the runner forks; every test inherits them. */
static long long uid_admin, uid_rep, uid_manager, uid_rep_south;

/* --- helpers -------------------------------------------------------------- */

/*
 * One request with a bearer token (NULL: none) and a body (NULL: none);
 * PATCH bodies are sent as merge patches. extra is one more header or NULL.
 */
static void call(const char *method, const char *path, const char *token, const char *body, const char *extra,
                 th_resp_t *r)
{
    char auth[2200];
    const char *h[4];
    int n = 0;
    if (token != NULL)
        h[n++] = th_bearer(token, auth, sizeof(auth));
    if (body != NULL)
        h[n++] = strcmp(method, "PATCH") == 0 ? "Content-Type: application/merge-patch+json"
                                              : "Content-Type: application/json";
    if (extra != NULL)
        h[n++] = extra;
    h[n] = NULL;
    ck_assert_int_eq(th_http(api.port, method, path, h, body, body != NULL ? strlen(body) : 0, r), 0);
}

static void admin_token(char access[2048])
{
    login_ok("admin@example.com", PASSWORD, access, NULL);
}

static void assert_status(const th_resp_t *r, int status)
{
    ck_assert_msg(r->status == status, "status %d, want %d: %s", r->status, status, r->body);
}

/* A problem+json answer with the given status and type. */
static void assert_problem(const th_resp_t *r, int status, const char *type)
{
    char buf[128];
    assert_status(r, status);
    ck_assert_ptr_nonnull(th_header(r, "content-type", buf, sizeof(buf)));
    ck_assert_str_eq(buf, "application/problem+json");
    ck_assert_ptr_nonnull(r->json);
    ck_assert_pstr_eq(jstr(r->json, "type"), type);
    ck_assert_msg(jstr(r->json, "detail") != NULL, "no detail: %s", r->body);
}

/* Does errors[] hold an entry for field with code? */
static int has_error(const th_resp_t *r, const char *field, const char *code)
{
    json_t *errors = json_object_get(r->json, "errors"), *e;
    size_t i;
    json_array_foreach(errors, i, e)
    {
        if (strcmp(jstr(e, "field"), field) == 0 && strcmp(jstr(e, "code"), code) == 0)
            return 1;
    }
    return 0;
}

static void assert_error(const th_resp_t *r, const char *field, const char *code)
{
    ck_assert_msg(has_error(r, field, code), "no error %s/%s in %s", field, code, r->body);
}

/* Creates something as admin and returns its id (asserting 201). */
static long long create(const char *token, const char *collection, const char *body)
{
    th_resp_t r;
    call("POST", collection, token, body, NULL, &r);
    assert_status(&r, 201);
    long long id = jint(r.json, "id");
    th_resp_free(&r);
    return id;
}

static long long create_user(const char *token, const char *email, const char *role, long long team,
                             const char *password)
{
    char body[512], teamv[24];
    snprintf(teamv, sizeof(teamv), "%lld", team);
    snprintf(body, sizeof(body),
             "{\"email\":\"%s\",\"name\":\"User %s\",\"password\":\"%s\",\"role\":\"%s\",\"team_id\":%s}", email, email,
             password, role, team > 0 ? teamv : "null");
    return create(token, "/v1/users", body);
}

static int me_status(const char *token)
{
    th_resp_t r;
    call("GET", "/v1/me", token, NULL, NULL, &r);
    int st = r.status;
    th_resp_free(&r);
    return st;
}

static int refresh_status(const char *refresh)
{
    char body[512];
    th_resp_t r;
    snprintf(body, sizeof(body), "{\"refresh_token\":\"%s\"}", refresh);
    call("POST", "/v1/auth/refresh", NULL, body, NULL, &r);
    int st = r.status;
    th_resp_free(&r);
    return st;
}

/* --- teams ---------------------------------------------------------------- */

START_TEST(teams_crud_as_admin)
{
    char tok[2048], path[64], etag[32], loc[64];
    th_resp_t r;
    admin_token(tok);

    call("POST", "/v1/teams", tok, "{\"name\":\"  Teams Crud  \"}", NULL, &r);
    assert_status(&r, 201);
    long long id = jint(r.json, "id");
    ck_assert_int_gt(id, 0);
    ck_assert_str_eq(jstr(r.json, "name"), "Teams Crud"); /* trimmed */
    ck_assert_int_eq(jint(r.json, "version"), 1);
    ck_assert_ptr_nonnull(jstr(r.json, "created_at"));
    ck_assert_ptr_nonnull(jstr(r.json, "updated_at"));
    ck_assert_str_eq(th_header(&r, "etag", etag, sizeof(etag)), "\"1\"");
    snprintf(path, sizeof(path), "/v1/teams/%lld", id);
    ck_assert_str_eq(th_header(&r, "location", loc, sizeof(loc)), path);
    th_resp_free(&r);

    /* Names are unique. */
    call("POST", "/v1/teams", tok, "{\"name\":\"Teams Crud\"}", NULL, &r);
    assert_problem(&r, 409, "/problems/conflict");
    assert_error(&r, "name", "duplicate");
    th_resp_free(&r);

    call("GET", path, tok, NULL, NULL, &r);
    assert_status(&r, 200);
    ck_assert_str_eq(jstr(r.json, "name"), "Teams Crud");
    th_resp_free(&r);
    call("GET", path, tok, NULL, "If-None-Match: \"1\"", &r);
    assert_status(&r, 304);
    th_resp_free(&r);

    call("PATCH", path, tok, "{\"name\":\"Teams Crud 2\"}", "If-Match: \"1\"", &r);
    assert_status(&r, 200);
    ck_assert_str_eq(jstr(r.json, "name"), "Teams Crud 2");
    ck_assert_int_eq(jint(r.json, "version"), 2);
    ck_assert_str_eq(th_header(&r, "etag", etag, sizeof(etag)), "\"2\"");
    th_resp_free(&r);
    call("PATCH", path, tok, "{\"name\":\"Teams Crud 3\"}", "If-Match: \"1\"", &r);
    assert_problem(&r, 412, "/problems/precondition-failed");
    th_resp_free(&r);

    call("GET", "/v1/teams?limit=200&count=true", tok, NULL, NULL, &r);
    assert_status(&r, 200);
    json_t *data = json_object_get(r.json, "data");
    ck_assert_int_ge(json_array_size(data), 3);
    ck_assert_int_eq(jint(r.json, "total"), (long long)json_array_size(data));
    for (size_t i = 1; i < json_array_size(data); i++) /* sorted by name */
        ck_assert_int_le(strcmp(jstr(json_array_get(data, i - 1), "name"), jstr(json_array_get(data, i), "name")), 0);
    th_resp_free(&r);

    call("DELETE", path, tok, NULL, NULL, &r);
    assert_status(&r, 204);
    th_resp_free(&r);
    call("GET", path, tok, NULL, NULL, &r);
    assert_problem(&r, 404, "/problems/not-found");
    th_resp_free(&r);
}
END_TEST

START_TEST(teams_in_use_cannot_be_deleted)
{
    char tok[2048], path[64];
    th_resp_t r;
    admin_token(tok);
    long long team = create(tok, "/v1/teams", "{\"name\":\"Busy Team\"}");
    long long user = create_user(tok, "busy@example.com", "rep", team, "busy-password-1");
    snprintf(path, sizeof(path), "/v1/teams/%lld", team);
    call("DELETE", path, tok, NULL, NULL, &r);
    assert_problem(&r, 409, "/problems/conflict");
    th_resp_free(&r);

    /* Once the user has moved, the team can go. */
    char upath[64];
    snprintf(upath, sizeof(upath), "/v1/users/%lld", user);
    call("PATCH", upath, tok, "{\"team_id\":null}", NULL, &r);
    assert_status(&r, 200);
    ck_assert(json_is_null(json_object_get(r.json, "team_id")));
    th_resp_free(&r);
    call("DELETE", path, tok, NULL, NULL, &r);
    assert_status(&r, 204);
    th_resp_free(&r);
}
END_TEST

/* --- roles ---------------------------------------------------------------- */

START_TEST(roles_crud_as_admin)
{
    char tok[2048], path[64];
    th_resp_t r;
    admin_token(tok);

    call("POST", "/v1/roles", tok,
         "{\"name\":\"auditor\",\"description\":\"Reads users.\","
         "\"permissions\":{\"users\":{\"read\":\"all\"},\"teams\":{\"read\":\"all\"}}}",
         NULL, &r);
    assert_status(&r, 201);
    long long id = jint(r.json, "id");
    ck_assert_str_eq(jstr(r.json, "name"), "auditor");
    ck_assert_str_eq(jstr(r.json, "description"), "Reads users.");
    ck_assert(json_is_false(json_object_get(r.json, "builtin")));
    ck_assert_str_eq(jstr(json_object_get(json_object_get(r.json, "permissions"), "users"), "read"), "all");
    th_resp_free(&r);

    call("POST", "/v1/roles", tok, "{\"name\":\"auditor\",\"permissions\":{}}", NULL, &r);
    assert_problem(&r, 409, "/problems/conflict");
    assert_error(&r, "name", "duplicate");
    th_resp_free(&r);

    /* A merge patch: one module added, one removed, the rest kept. */
    snprintf(path, sizeof(path), "/v1/roles/%lld", id);
    call("PATCH", path, tok,
         "{\"name\":\"auditor_2\",\"permissions\":{\"customers\":{\"read\":\"team\"},\"teams\":null}}",
         "If-Match: \"1\"", &r);
    assert_status(&r, 200);
    json_t *perms = json_object_get(r.json, "permissions");
    ck_assert_str_eq(jstr(r.json, "name"), "auditor_2");
    ck_assert_str_eq(jstr(json_object_get(perms, "customers"), "read"), "team");
    ck_assert_str_eq(jstr(json_object_get(perms, "users"), "read"), "all");
    ck_assert_ptr_null(json_object_get(perms, "teams"));
    ck_assert_int_eq(jint(r.json, "version"), 2);
    th_resp_free(&r);

    call("GET", "/v1/roles?limit=200", tok, NULL, NULL, &r);
    assert_status(&r, 200);
    ck_assert_int_ge(json_array_size(json_object_get(r.json, "data")), 7);
    th_resp_free(&r);

    call("DELETE", path, tok, NULL, NULL, &r);
    assert_status(&r, 204);
    th_resp_free(&r);
    call("GET", path, tok, NULL, NULL, &r);
    assert_problem(&r, 404, "/problems/not-found");
    th_resp_free(&r);
}
END_TEST

START_TEST(bad_permissions_are_422_naming_each_path)
{
    char tok[2048];
    th_resp_t r;
    admin_token(tok);
    call("POST", "/v1/roles", tok,
         "{\"name\":\"Bad Name\",\"permissions\":{\"customers\":{\"read\":\"everything\",\"approve\":\"all\","
         "\"update\":3},\"Orders\":{},\"teams\":\"all\",\"users\":{\"read\":\"own\"}}}",
         NULL, &r);
    assert_problem(&r, 422, "/problems/validation-failed");
    assert_error(&r, "name", "invalid_format");
    assert_error(&r, "permissions.customers.read", "invalid_value");
    assert_error(&r, "permissions.customers.approve", "unknown_field");
    assert_error(&r, "permissions.customers.update", "invalid_type");
    assert_error(&r, "permissions.Orders", "invalid_format");
    assert_error(&r, "permissions.teams", "invalid_type");
    ck_assert_int_eq(json_array_size(json_object_get(r.json, "errors")), 6); /* users.read is fine */
    th_resp_free(&r);

    call("POST", "/v1/roles", tok, "{\"name\":\"no_perms\",\"permissions\":[]}", NULL, &r);
    assert_problem(&r, 422, "/problems/validation-failed");
    assert_error(&r, "permissions", "invalid_type");
    th_resp_free(&r);

    call("PATCH", "/v1/roles/1", tok, "{\"permissions\":{\"orders\":{\"read\":\"most\"}}}", NULL, &r);
    assert_problem(&r, 422, "/problems/validation-failed");
    assert_error(&r, "permissions.orders.read", "invalid_value");
    th_resp_free(&r);
}
END_TEST

START_TEST(builtin_and_used_roles_cannot_be_deleted)
{
    char tok[2048], path[64];
    th_resp_t r;
    admin_token(tok);
    for (int id = 1; id <= 6; id++) { /* the seeded roles */
        snprintf(path, sizeof(path), "/v1/roles/%d", id);
        call("DELETE", path, tok, NULL, NULL, &r);
        assert_problem(&r, 409, "/problems/conflict");
        ck_assert_ptr_nonnull(strstr(jstr(r.json, "detail"), "Built-in"));
        th_resp_free(&r);
    }
    call("PATCH", "/v1/roles/1", tok, "{\"name\":\"root\"}", NULL, &r);
    assert_problem(&r, 409, "/problems/conflict");
    th_resp_free(&r);
    call("GET", "/v1/roles/1", tok, NULL, NULL, &r);
    assert_status(&r, 200);
    ck_assert_str_eq(jstr(r.json, "name"), "admin");
    ck_assert(json_is_true(json_object_get(r.json, "builtin")));
    th_resp_free(&r);

    /* A custom role a user holds is in use. */
    long long role = create(tok, "/v1/roles", "{\"name\":\"held\",\"permissions\":{\"customers\":{\"read\":\"own\"}}}");
    create_user(tok, "holder@example.com", "held", 0, "holder-password-1");
    snprintf(path, sizeof(path), "/v1/roles/%lld", role);
    call("DELETE", path, tok, NULL, NULL, &r);
    assert_problem(&r, 409, "/problems/conflict");
    ck_assert_ptr_nonnull(strstr(jstr(r.json, "detail"), "Users still have this role"));
    th_resp_free(&r);
}
END_TEST

/* --- users ---------------------------------------------------------------- */

START_TEST(users_crud_as_admin)
{
    char tok[2048], path[64], body[512];
    th_resp_t r;
    admin_token(tok);

    snprintf(body, sizeof(body),
             "{\"email\":\"Carla@Example.com\",\"name\":\" Carla \",\"password\":\"carla-password-1\","
             "\"role\":\"rep\",\"team_id\":%lld}",
             team_north);
    call("POST", "/v1/users", tok, body, NULL, &r);
    assert_status(&r, 201);
    long long id = jint(r.json, "id");
    /* Exactly the documented members: never a password or its hash. */
    static const char *const keys[] = {"id",     "email",      "name",       "role",   "team_id",
                                       "active", "created_at", "updated_at", "version"};
    ck_assert_int_eq(json_object_size(r.json), sizeof(keys) / sizeof(keys[0]));
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        ck_assert_msg(json_object_get(r.json, keys[i]) != NULL, "no %s in %s", keys[i], r.body);
    ck_assert_ptr_null(strstr(r.body, "password"));
    ck_assert_str_eq(jstr(r.json, "email"), "Carla@Example.com");
    ck_assert_str_eq(jstr(r.json, "name"), "Carla");
    ck_assert_str_eq(jstr(r.json, "role"), "rep");
    ck_assert_int_eq(jint(r.json, "team_id"), team_north);
    ck_assert(json_is_true(json_object_get(r.json, "active")));
    th_resp_free(&r);

    /* The new user can log in with the password given. */
    char utok[2048];
    login_ok("carla@example.com", "carla-password-1", utok, NULL);

    /* Emails are unique, whatever their case. */
    call("POST", "/v1/users", tok,
         "{\"email\":\"carla@EXAMPLE.com\",\"name\":\"C2\",\"password\":\"carla-password-2\",\"role\":\"rep\"}", NULL,
         &r);
    assert_problem(&r, 409, "/problems/conflict");
    assert_error(&r, "email", "duplicate");
    ck_assert_ptr_nonnull(strstr(jstr(r.json, "detail"), "email"));
    th_resp_free(&r);

    snprintf(path, sizeof(path), "/v1/users/%lld", id);
    call("GET", path, tok, NULL, NULL, &r);
    assert_status(&r, 200);
    ck_assert_ptr_null(strstr(r.body, "password"));
    th_resp_free(&r);

    call("PATCH", path, tok, "{\"name\":\"Carla C\",\"role\":\"analyst\",\"team_id\":null}", "If-Match: \"1\"", &r);
    assert_status(&r, 200);
    ck_assert_str_eq(jstr(r.json, "name"), "Carla C");
    ck_assert_str_eq(jstr(r.json, "role"), "analyst");
    ck_assert(json_is_null(json_object_get(r.json, "team_id")));
    ck_assert_int_eq(jint(r.json, "version"), 2);
    th_resp_free(&r);

    /* A role change cuts off the old access token too (its claims are stale). */
    ck_assert_int_eq(me_status(utok), 401);

    /* Lists and their filters. */
    call("GET", "/v1/users?role=analyst&active=true&q=carla", tok, NULL, NULL, &r);
    assert_status(&r, 200);
    ck_assert_int_eq(json_array_size(json_object_get(r.json, "data")), 1);
    ck_assert_int_eq(jint(json_array_get(json_object_get(r.json, "data"), 0), "id"), id);
    th_resp_free(&r);
    snprintf(path, sizeof(path), "/v1/users?team_id=%lld&sort=-created_at&count=true", team_south);
    call("GET", path, tok, NULL, NULL, &r);
    assert_status(&r, 200);
    ck_assert_int_eq(jint(r.json, "total"), 1);
    ck_assert_int_eq(jint(json_array_get(json_object_get(r.json, "data"), 0), "id"), uid_rep_south);
    th_resp_free(&r);

    /* Cursor pagination by email visits every user once, in order. */
    char cursor[512] = "", prev[256] = "";
    int pages = 0;
    do {
        char page[600];
        snprintf(page, sizeof(page), "/v1/users?limit=2%s%s", cursor[0] ? "&cursor=" : "", cursor);
        call("GET", page, tok, NULL, NULL, &r);
        assert_status(&r, 200);
        json_t *data = json_object_get(r.json, "data");
        for (size_t i = 0; i < json_array_size(data); i++) {
            const char *email = jstr(json_array_get(data, i), "email");
            ck_assert_msg(strcasecmp(prev, email) < 0, "%s after %s", email, prev);
            snprintf(prev, sizeof(prev), "%s", email);
        }
        const char *next = jstr(r.json, "next_cursor");
        snprintf(cursor, sizeof(cursor), "%s", next != NULL ? next : "");
        th_resp_free(&r);
        pages++;
    } while (cursor[0] != '\0' && pages < 50);
    ck_assert_int_ge(pages, 2);

    call("GET", "/v1/users?active=maybe", tok, NULL, NULL, &r);
    assert_problem(&r, 400, "/problems/bad-request");
    th_resp_free(&r);
}
END_TEST

START_TEST(user_validation_reports_every_error)
{
    char tok[2048];
    th_resp_t r;
    admin_token(tok);
    call("POST", "/v1/users", tok,
         "{\"email\":\"not-an-email\",\"name\":\"\",\"password\":\"short\",\"team_id\":0,\"active\":\"yes\","
         "\"password_hash\":\"x\",\"id\":5}",
         NULL, &r);
    assert_problem(&r, 422, "/problems/validation-failed");
    assert_error(&r, "email", "invalid_format");
    assert_error(&r, "name", "too_short");
    assert_error(&r, "password", "too_short");
    assert_error(&r, "role", "required");
    assert_error(&r, "team_id", "out_of_range");
    assert_error(&r, "active", "invalid_type");
    assert_error(&r, "password_hash", "unknown_field");
    assert_error(&r, "id", "read_only");
    th_resp_free(&r);

    call("POST", "/v1/users", tok,
         "{\"email\":\"ghost@example.com\",\"name\":\"G\",\"password\":\"ghost-password-1\",\"role\":\"ghost\"}", NULL,
         &r);
    assert_problem(&r, 422, "/problems/validation-failed");
    assert_error(&r, "role", "invalid_reference");
    th_resp_free(&r);

    char path[64];
    snprintf(path, sizeof(path), "/v1/users/%lld", uid_rep);
    call("PATCH", path, tok, "{\"password\":null,\"active\":null}", NULL, &r);
    assert_problem(&r, 422, "/problems/validation-failed");
    th_resp_free(&r);
}
END_TEST

/* --- access --------------------------------------------------------------- */

START_TEST(non_admins_are_refused)
{
    char tok[2048], path[64];
    th_resp_t r;
    login_ok("rep@example.com", PASSWORD, tok, NULL);
    static const struct {
        const char *method, *path, *body;
    } calls[] = {
        {"GET", "/v1/users", NULL},
        {"GET", "/v1/users/1", NULL},
        {"POST", "/v1/users",
         "{\"email\":\"x@example.com\",\"name\":\"X\",\"password\":\"x-password-12\",\"role\":\"admin\"}"},
        {"PATCH", "/v1/users/1", "{\"password\":\"takeover-pass-1\"}"},
        {"DELETE", "/v1/users/1", NULL},
        {"GET", "/v1/roles", NULL},
        {"GET", "/v1/roles/1", NULL},
        {"POST", "/v1/roles", "{\"name\":\"mine\",\"permissions\":{}}"},
        {"PATCH", "/v1/roles/4", "{\"permissions\":{\"users\":{\"read\":\"all\"}}}"},
        {"DELETE", "/v1/roles/7", NULL},
        {"POST", "/v1/teams", "{\"name\":\"Rep Team\"}"},
        {"PATCH", "/v1/teams/1", "{\"name\":\"Renamed\"}"},
        {"DELETE", "/v1/teams/1", NULL},
    };
    for (size_t i = 0; i < sizeof(calls) / sizeof(calls[0]); i++) {
        call(calls[i].method, calls[i].path, tok, calls[i].body, NULL, &r);
        ck_assert_msg(r.status == 403, "%s %s: status %d: %s", calls[i].method, calls[i].path, r.status, r.body);
        assert_problem(&r, 403, "/problems/forbidden");
        th_resp_free(&r);
    }
    /* Nothing changed. */
    char v[64];
    ck_assert_int_eq(
        th_sql_value(db_url, "SELECT count(*) FROM teams WHERE name IN ('Rep Team', 'Renamed')", v, sizeof(v)), 0);
    ck_assert_str_eq(v, "0");

    /* Without a token: 401. */
    call("GET", "/v1/users", NULL, NULL, NULL, &r);
    assert_problem(&r, 401, "/problems/unauthenticated");
    th_resp_free(&r);

    /* A manager reads the users of their own team only. */
    login_ok("manager@example.com", PASSWORD, tok, NULL);
    call("GET", "/v1/users?limit=200", tok, NULL, NULL, &r);
    assert_status(&r, 200);
    json_t *data = json_object_get(r.json, "data");
    ck_assert_int_ge(json_array_size(data), 2);
    for (size_t i = 0; i < json_array_size(data); i++)
        ck_assert_int_eq(jint(json_array_get(data, i), "team_id"), team_north);
    th_resp_free(&r);
    snprintf(path, sizeof(path), "/v1/users/%lld", uid_rep_south);
    call("GET", path, tok, NULL, NULL, &r);
    assert_problem(&r, 404, "/problems/not-found");
    th_resp_free(&r);
    snprintf(path, sizeof(path), "/v1/users/%lld", uid_rep);
    call("GET", path, tok, NULL, NULL, &r);
    assert_status(&r, 200);
    th_resp_free(&r);
    call("PATCH", path, tok, "{\"name\":\"Renamed Rep\"}", NULL, &r);
    assert_problem(&r, 403, "/problems/forbidden");
    th_resp_free(&r);
}
END_TEST

START_TEST(admin_cannot_lock_themselves_out)
{
    char tok[2048], path[64];
    th_resp_t r;
    admin_token(tok);
    snprintf(path, sizeof(path), "/v1/users/%lld", uid_admin);
    call("DELETE", path, tok, NULL, NULL, &r);
    assert_problem(&r, 409, "/problems/conflict");
    th_resp_free(&r);
    call("PATCH", path, tok, "{\"role\":\"rep\"}", NULL, &r);
    assert_problem(&r, 409, "/problems/conflict");
    th_resp_free(&r);
    ck_assert_int_eq(me_status(tok), 200);
}
END_TEST

/* --- sessions ending at once ------------------------------------------------ */

START_TEST(deactivation_cuts_off_tokens_at_once)
{
    char tok[2048], utok[2048], uref[256], path[64];
    th_resp_t r;
    admin_token(tok);
    long long id = create_user(tok, "leaver@example.com", "rep", team_north, "leaver-password-1");
    login_ok("leaver@example.com", "leaver-password-1", utok, uref);
    ck_assert_int_eq(me_status(utok), 200);

    snprintf(path, sizeof(path), "/v1/users/%lld", id);
    call("DELETE", path, tok, NULL, NULL, &r);
    assert_status(&r, 204);
    ck_assert_uint_eq(r.body_len, 0);
    th_resp_free(&r);

    /* The very next request with the old access token is refused, and so is every scoped one. */
    ck_assert_int_eq(me_status(utok), 401);
    call("GET", "/v1/customers", utok, NULL, NULL, &r);
    assert_problem(&r, 401, "/problems/unauthenticated");
    th_resp_free(&r);
    ck_assert_int_eq(refresh_status(uref), 401);
    ck_assert_int_eq(th_login(api.port, "leaver@example.com", "leaver-password-1", utok, NULL), 401);

    call("GET", path, tok, NULL, NULL, &r);
    assert_status(&r, 200);
    ck_assert(json_is_false(json_object_get(r.json, "active")));
    th_resp_free(&r);
    call("GET", "/v1/users?active=false&q=leaver", tok, NULL, NULL, &r);
    assert_status(&r, 200);
    ck_assert_int_eq(json_array_size(json_object_get(r.json, "data")), 1);
    th_resp_free(&r);

    /* Deleting again is harmless; reactivating lets the user log in again. */
    call("DELETE", path, tok, NULL, NULL, &r);
    assert_status(&r, 204);
    th_resp_free(&r);
    call("PATCH", path, tok, "{\"active\":true}", NULL, &r);
    assert_status(&r, 200);
    th_resp_free(&r);
    login_ok("leaver@example.com", "leaver-password-1", utok, NULL);
    ck_assert_int_eq(me_status(utok), 200);
}
END_TEST

START_TEST(password_change_cuts_off_old_tokens)
{
    char tok[2048], utok[2048], uref[256], path[64];
    th_resp_t r;
    admin_token(tok);
    long long id = create_user(tok, "changer@example.com", "rep", 0, "changer-password-1");
    login_ok("changer@example.com", "changer-password-1", utok, uref);
    ck_assert_int_eq(me_status(utok), 200);

    snprintf(path, sizeof(path), "/v1/users/%lld", id);
    call("PATCH", path, tok, "{\"password\":\"changer-password-2\"}", "If-Match: \"1\"", &r);
    assert_status(&r, 200);
    ck_assert_ptr_null(strstr(r.body, "password"));
    ck_assert_int_eq(jint(r.json, "version"), 2);
    th_resp_free(&r);

    ck_assert_int_eq(me_status(utok), 401);
    ck_assert_int_eq(refresh_status(uref), 401);
    ck_assert_int_eq(th_login(api.port, "changer@example.com", "changer-password-1", utok, NULL), 401);
    login_ok("changer@example.com", "changer-password-2", utok, NULL);
    ck_assert_int_eq(me_status(utok), 200);

    /* A too short new password is refused before anything is hashed or stored. */
    call("PATCH", path, tok, "{\"password\":\"short\"}", NULL, &r);
    assert_problem(&r, 422, "/problems/validation-failed");
    assert_error(&r, "password", "too_short");
    th_resp_free(&r);
    ck_assert_int_eq(me_status(utok), 200);
}
END_TEST

/*
 * Team names of 100 four-byte characters (valid: 100 code points, 400
 * bytes) page by name in both directions: the cursor then carries only the
 * id and the statement reads the key of that row.
 */
START_TEST(teams_page_by_long_names)
{
    char tok[2048];
    th_resp_t r;
    admin_token(tok);
    const char *glyphs[] = {"\xF0\x9F\x98\x80", "\xF0\x9F\x98\x81", "\xF0\xA0\x80\x80"};
    for (int g = 0; g < 3; g++) {
        char name[401], body[460];
        for (int i = 0; i < 100; i++)
            memcpy(name + 4 * i, i < 99 ? glyphs[0] : glyphs[g], 4);
        name[400] = '\0';
        snprintf(body, sizeof(body), "{\"name\":\"%s\"}", name);
        call("POST", "/v1/teams", tok, body, NULL, &r);
        assert_status(&r, 201);
        th_resp_free(&r);
    }
    call("GET", "/v1/teams?limit=200&count=true", tok, NULL, NULL, &r);
    assert_status(&r, 200);
    long long total = jint(r.json, "total");
    th_resp_free(&r);
    for (int desc = 0; desc <= 1; desc++) {
        char cursor[1200] = "", path[1400], prev[1200] = "";
        long long seen = 0;
        for (int page = 0; page < 100; page++) {
            snprintf(path, sizeof(path), "/v1/teams?limit=1&sort=%sname%s%s", desc ? "-" : "",
                     cursor[0] ? "&cursor=" : "", cursor);
            call("GET", path, tok, NULL, NULL, &r);
            assert_status(&r, 200);
            json_t *data = json_object_get(r.json, "data");
            ck_assert_int_eq(json_array_size(data), 1);
            const char *name = jstr(json_array_get(data, 0), "name");
            if (prev[0])
                ck_assert_msg(desc ? strcmp(prev, name) >= 0 : strcmp(prev, name) <= 0, "order broken at %s", name);
            snprintf(prev, sizeof(prev), "%s", name);
            seen++;
            json_t *next = json_object_get(r.json, "next_cursor");
            if (json_is_null(next)) {
                th_resp_free(&r);
                break;
            }
            ck_assert_uint_lt(strlen(json_string_value(next)), 512);
            snprintf(cursor, sizeof(cursor), "%s", json_string_value(next));
            th_resp_free(&r);
        }
        ck_assert_int_eq(seen, total);
    }
}
END_TEST

static Suite *admin_suite(void)
{
    Suite *s = suite_create("admin");
    TCase *tc = crew_tcase("admin", 60);
    tcase_add_test(tc, teams_crud_as_admin);
    tcase_add_test(tc, teams_in_use_cannot_be_deleted);
    tcase_add_test(tc, teams_page_by_long_names);
    tcase_add_test(tc, roles_crud_as_admin);
    tcase_add_test(tc, bad_permissions_are_422_naming_each_path);
    tcase_add_test(tc, builtin_and_used_roles_cannot_be_deleted);
    tcase_add_test(tc, users_crud_as_admin);
    tcase_add_test(tc, user_validation_reports_every_error);
    tcase_add_test(tc, non_admins_are_refused);
    tcase_add_test(tc, admin_cannot_lock_themselves_out);
    tcase_add_test(tc, deactivation_cuts_off_tokens_at_once);
    tcase_add_test(tc, password_change_cuts_off_old_tokens);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    crew_setup(&conf);
    uid_admin = th_user_add(db_url, "admin@example.com", "Admin", "admin", NULL, PASSWORD);
    uid_manager = th_user_add(db_url, "manager@example.com", "Manager", "manager", "north", PASSWORD);
    uid_rep = th_user_add(db_url, "rep@example.com", "Rep", "rep", "north", PASSWORD);
    uid_rep_south = th_user_add(db_url, "south@example.com", "South Rep", "rep", "south", PASSWORD);
    return crew_exit_status(crew_srun(admin_suite()));
}
