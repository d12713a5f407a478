/*
 * tests/integration/history_test.c - the history of every engine record
 * (GET /v1/customers|orders|contacts/{id}/history) against the real API
 * and PostgreSQL: one entry per create, update and delete, written in the
 * write's own transaction, naming the actor and the request; updates list
 * only the fields that changed, as documents show them; pages newest
 * first; readable by whoever may read the record, deleted or not; and an
 * append-only table nobody, the API's own database role included, can
 * rewrite.
 *
 * crew_main() (tests/support/crew.c) builds the suite's database, adds one
 * user per role, starts one API process and logs every user in once; Check
 * forks each test, which inherits the tokens. Tests do not depend on each
 * other: each creates its own records and sends its own X-Request-Id
 * values. Check runs the forked tests one after another, so a test may
 * compare the row count of record_history before and after its requests.
 * Expected scopes come from the crew's oracle (owner and team compared
 * directly), never from the API's own SQL.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>
#include <libpq-fe.h>

#include "tests/support/crew.h"

static const char *const api_env[] = {
    "CLIENTELE_THREADS=2",
    "CLIENTELE_DB_TIMEOUT=20s",
    "CLIENTELE_JWT_SECRET=history-suite-secret-0123456789abcdefghij",
    NULL,
};

static const crew_conf_t conf = {
    .name = "history",
    .redis_db = 10,
    .env = api_env,
    .password = "history-suite-password",
    .domain = "history.test",
    .resource = "customers",
    .item = "record",
};

/* --- requests with a request id ------------------------------------------------------- */

/* A request id unique to this test process, in the characters the API keeps. */
static const char *new_rid(const char *what)
{
    return uniq(fmt("hist.%s", what));
}

static const char *xrid(const char *rid)
{
    return fmt("X-Request-Id: %s", rid);
}

static th_resp_t *post_rid(int who, const char *path, const char *body, const char *rid)
{
    return call_as(who, "POST", path, JSON_T, body, xrid(rid), NULL);
}

static th_resp_t *patch_rid(int who, const char *path, const char *body, const char *rid)
{
    return call_as(who, "PATCH", path, MERGE_T, body, xrid(rid), NULL);
}

static th_resp_t *delete_rid(int who, const char *path, const char *rid)
{
    return call_as(who, "DELETE", path, NULL, NULL, xrid(rid), NULL);
}

/* --- records ----------------------------------------------------------------------------- */

typedef struct {
    long long id, owner, team;
    const char *ext;
} cust_t;

static const char *custpath(long long id)
{
    return fmt("/v1/customers/%lld", id);
}

/* A company owned by `owner` (team derived from the owner); made by the director. */
static cust_t make_cust(int owner)
{
    const char *ext = uniq("cust");
    th_resp_t *r = http_post(DIRECTOR, "/v1/customers",
                             jdump(json_pack("{s:s, s:s, s:s, s:I}", "kind", "company", "name", fmt("Firm %s", ext),
                                             "external_id", ext, "owner_id", (json_int_t)users[owner].id)));
    expect_status(r, 201);
    return (cust_t){jint(r->json, "id"), jint(r->json, "owner_id"), jint(r->json, "team_id"), ext};
}

static const char *order_body(long long customer, const char *ext)
{
    json_t *o = json_pack("{s:I, s:s, s:s, s:s, s:s, s:[{s:s, s:i, s:s}]}", "customer_id", (json_int_t)customer,
                          "ordered_at", "2021-03-04T05:06:07Z", "status", "pending", "currency", "EUR", "total",
                          "20.00", "lines", "sku", "SKU-1", "quantity", 2, "unit_price", "10.00");
    if (ext != NULL)
        json_object_set_new(o, "external_id", json_string(ext));
    return jdump(o);
}

static long long make_order(int as, long long customer)
{
    th_resp_t *r = http_post(as, "/v1/orders", order_body(customer, NULL));
    expect_status(r, 201);
    return jint(r->json, "id");
}

static long long make_contact(int as, long long customer, const char *extra)
{
    json_t *d = json_pack("{s:I, s:s}", "customer_id", (json_int_t)customer, "last_name", "Contact");
    if (extra != NULL) {
        json_t *x = jparse(extra);
        json_object_update(d, x);
        json_decref(x);
    }
    th_resp_t *r = http_post(as, "/v1/contacts", jdump(d));
    expect_status(r, 201);
    return jint(r->json, "id");
}

/* --- history ---------------------------------------------------------------------------------- */

/* Every entry of a record's history (path: "/v1/orders/7"), one page of up to 200, as `who`; asserts 200. */
static json_t *history(int who, const char *path)
{
    th_resp_t *r = http_get(who, fmt("%s/history?limit=200", path));
    expect_status_msg(r, 200, "GET %s/history as %s", path, who_name[who]);
    ck_assert_msg(json_is_array(jget(r, "data")), "no data array: %.300s", r->body);
    ck_assert_msg(json_is_null(jget(r, "next_cursor")), "more than one page: %.300s", r->body);
    return jget(r, "data");
}

static long long history_rows(void)
{
    return sql_ll("SELECT count(*) FROM record_history");
}

static long long rows_of(const char *entity, long long id)
{
    return sql_ll("SELECT count(*) FROM record_history WHERE entity = '%s' AND entity_id = %lld", entity, id);
}

/* The change of `field` in an entry, or NULL. */
static json_t *change_of(json_t *entry, const char *field)
{
    json_t *c;
    size_t i;
    json_array_foreach(json_object_get(entry, "changes"), i, c) if (strcmp(jstr(c, "field"), field) == 0) return c;
    return NULL;
}

/* An entry's op, actor (a user, or the system when user < 0) and request id (NULL: anything). */
static void expect_entry_(json_t *e, const char *op, int user, const char *rid, int line)
{
    ck_assert_msg(e != NULL, "line %d: no %s entry", line, op);
    ck_assert_msg(json_is_integer(json_object_get(e, "id")), "line %d: entry without id: %s", line,
                  jdump(json_incref(e)));
    ck_assert_msg(jstr(e, "op") != NULL && strcmp(jstr(e, "op"), op) == 0, "line %d: op %s, wanted %s: %s", line,
                  jstr(e, "op"), op, jdump(json_incref(e)));
    const char *at = jstr(e, "at");
    ck_assert_msg(at != NULL && strlen(at) == 27 && at[26] == 'Z' && at[10] == 'T', "line %d: at %s", line,
                  at != NULL ? at : "(none)");
    json_t *actor = json_object_get(e, "actor");
    if (user >= 0) {
        ck_assert_msg(jstr(actor, "type") != NULL && strcmp(jstr(actor, "type"), "user") == 0 &&
                          jint(actor, "id") == users[user].id,
                      "line %d: actor %s, wanted user %lld (%s)", line, jdump(json_incref(actor)), users[user].id,
                      who_name[user]);
    } else {
        ck_assert_msg(jstr(actor, "type") != NULL && strcmp(jstr(actor, "type"), "system") == 0 &&
                          json_is_null(json_object_get(actor, "id")),
                      "line %d: actor %s, wanted the system", line, jdump(json_incref(actor)));
    }
    if (rid != NULL)
        ck_assert_msg(jstr(e, "request_id") != NULL && strcmp(jstr(e, "request_id"), rid) == 0,
                      "line %d: request_id %s, wanted %s", line, jstr(e, "request_id"), rid);
    ck_assert_msg(json_is_array(json_object_get(e, "changes")), "line %d: no changes array", line);
}
#define expect_entry(e, op, user, rid) expect_entry_((e), (op), (user), (rid), __LINE__)

/* The change of field in entry e has exactly these old and new values (JSON text). */
static void expect_chg_(json_t *e, const char *field, const char *old_json, const char *new_json, int line)
{
    json_t *c = change_of(e, field);
    ck_assert_msg(c != NULL, "line %d: no change of %s in %s", line, field, jdump(json_incref(e)));
    json_t *want_old = jparse(old_json), *want_new = jparse(new_json);
    int ok = json_equal(json_object_get(c, "old"), want_old) && json_equal(json_object_get(c, "new"), want_new);
    json_decref(want_old);
    json_decref(want_new);
    ck_assert_msg(ok, "line %d: change of %s is %s, wanted old %s new %s", line, field, jdump(json_incref(c)), old_json,
                  new_json);
}
#define expect_chg(e, field, o, n) expect_chg_((e), (field), (o), (n), __LINE__)

/* The change of field holds the values of that member in two documents of the record (before and after). */
static void expect_doc_chg_(json_t *e, const char *field, json_t *before, json_t *after, int line)
{
    json_t *c = change_of(e, field);
    ck_assert_msg(c != NULL, "line %d: no change of %s in %s", line, field, jdump(json_incref(e)));
    json_t *o = before != NULL ? json_object_get(before, field) : NULL, *n = json_object_get(after, field);
    ck_assert_msg(json_equal(json_object_get(c, "old"), o != NULL ? o : json_null()) &&
                      json_equal(json_object_get(c, "new"), n),
                  "line %d: change of %s is %s; the documents show %s then %s", line, field, jdump(json_incref(c)),
                  o != NULL ? jdump(json_incref(o)) : "null", jdump(json_incref(n)));
}
#define expect_doc_chg(e, field, b, a) expect_doc_chg_((e), (field), (b), (a), __LINE__)

/* No change names a bookkeeping member or one that is not a stored field. */
static void expect_no_bookkeeping(json_t *e)
{
    static const char *const never[] = {"id",         "version",   "created_at",          "updated_at",
                                        "deleted_at", "analytics", "customer_external_id"};
    for (size_t i = 0; i < sizeof(never) / sizeof(never[0]); i++)
        ck_assert_msg(change_of(e, never[i]) == NULL, "an entry names %s: %s", never[i], jdump(json_incref(e)));
}

/* --- one record's life: create, update two fields, update nothing, delete ------------------- */

typedef struct {
    const char *field, *old_json, *new_json;
} chg_t;

typedef struct {
    const char *collection; /* "/v1/orders" */
    const char *entity;     /* "orders" */
    const char *create;     /* POST body */
    const char *patch;      /* changes exactly two fields */
    const char *noop;       /* PATCH that changes nothing */
    chg_t update[2];        /* the update entry's changes, literally */
    chg_t created[4];       /* some of the create entry's changes (old null), literally */
} life_t;

static void live_and_die(int who, const life_t *l)
{
    const char *rc = new_rid("create"), *ru = new_rid("update"), *rn = new_rid("noop"), *rd = new_rid("delete");
    th_resp_t *r = post_rid(who, l->collection, l->create, rc);
    expect_status(r, 201);
    ck_assert_str_eq(header(r, "x-request-id"), rc);
    long long id = jint(r->json, "id");
    const char *path = fmt("%s/%lld", l->collection, id);
    json_t *doc1 = json_incref(r->json);
    keep(doc1);
    r = patch_rid(who, path, l->patch, ru);
    expect_status(r, 200);
    json_t *doc2 = json_incref(r->json);
    keep(doc2);
    r = patch_rid(who, path, l->noop, rn);
    expect_status(r, 200);
    expect_status(delete_rid(who, path, rd), 204);

    json_t *h = history(who, path);
    ck_assert_msg(json_array_size(h) == 3, "%s: %zu entries, wanted delete, update, create: %s", path,
                  json_array_size(h), jdump(json_incref(h)));
    json_t *del = json_array_get(h, 0), *upd = json_array_get(h, 1), *cre = json_array_get(h, 2);
    expect_entry(del, "delete", who, rd);
    expect_entry(upd, "update", who, ru);
    expect_entry(cre, "create", who, rc);
    ck_assert_msg(jint(del, "id") > jint(upd, "id") && jint(upd, "id") > jint(cre, "id"), "%s: not newest first", path);
    ck_assert_msg(strcmp(jstr(del, "at"), jstr(upd, "at")) >= 0 && strcmp(jstr(upd, "at"), jstr(cre, "at")) >= 0,
                  "%s: times not newest first", path);
    ck_assert_int_eq(json_array_size(json_object_get(del, "changes")), 0);
    /* The update: exactly the two fields, with the values the documents showed. */
    ck_assert_msg(json_array_size(json_object_get(upd, "changes")) == 2, "%s: update entry %s", path,
                  jdump(json_incref(upd)));
    for (int i = 0; i < 2; i++) {
        expect_chg(upd, l->update[i].field, l->update[i].old_json, l->update[i].new_json);
        expect_doc_chg(upd, l->update[i].field, doc1, doc2);
    }
    /* The create: every stored member with a value, old null, as the created document showed it. */
    for (int i = 0; i < 4 && l->created[i].field != NULL; i++)
        expect_chg(cre, l->created[i].field, "null", l->created[i].new_json);
    const char *k;
    json_t *v;
    json_object_foreach(doc1, k, v)
    {
        static const char *const skip[] = {"id", "version", "created_at", "updated_at", "analytics"};
        int skipped = json_is_null(v);
        for (size_t i = 0; i < sizeof(skip) / sizeof(skip[0]); i++)
            skipped |= strcmp(k, skip[i]) == 0;
        if (!skipped)
            expect_doc_chg(cre, k, NULL, doc1);
    }
    expect_no_bookkeeping(cre);
    expect_no_bookkeeping(upd);
    /* The no-op wrote nothing. */
    ck_assert_int_eq(sql_ll("SELECT count(*) FROM record_history WHERE request_id = '%s'", rn), 0);
    ck_assert_int_eq(rows_of(l->entity, id), 3);
}

START_TEST(customer_life_is_recorded)
{
    const char *name = uniq("Hist Co");
    life_t l = {
        "/v1/customers",
        "customers",
        fmt("{\"kind\":\"company\",\"name\":\"%s\",\"credit_limit\":\"12.5\",\"tags\":[\"a\"],\"address\":{\"city\":"
            "\"Berlin\",\"country\":\"DE\"}}",
            name),
        "{\"credit_limit\":20,\"address\":{\"city\":\"Hamburg\"}}",
        fmt("{\"credit_limit\":\"20.00\",\"tags\":[\"a\"],\"name\":\"%s\",\"address\":{\"country\":\"DE\"}}", name),
        {{"credit_limit", "\"12.50\"", "\"20.00\""},
         {"address", "{\"city\":\"Berlin\",\"country\":\"DE\"}", "{\"city\":\"Hamburg\",\"country\":\"DE\"}"}},
        {{"name", NULL, fmt("\"%s\"", name)},
         {"credit_limit", NULL, "\"12.50\""},
         {"tags", NULL, "[\"a\"]"},
         {"owner_id", NULL, fmt("%lld", users[MANAGER].id)}},
    };
    /* A manager: a rep may not change a credit limit (the built-in field rules). */
    live_and_die(MANAGER, &l);
}
END_TEST

START_TEST(order_life_is_recorded)
{
    cust_t c = make_cust(REP1);
    life_t l = {
        "/v1/orders",
        "orders",
        fmt("{\"customer_id\":%lld,\"ordered_at\":\"2021-05-01T12:00:00+02:00\",\"status\":\"pending\",\"currency\":"
            "\"EUR\",\"total\":\"20\",\"lines\":[{\"sku\":\"A\",\"quantity\":2,\"unit_price\":\"10.00\"}]}",
            c.id),
        "{\"status\":\"completed\",\"ordered_at\":\"2021-05-02T08:30:00Z\"}",
        "{\"status\":\"completed\",\"total\":\"20.00\",\"ordered_at\":\"2021-05-02T10:30:00+02:00\"}",
        {{"status", "\"pending\"", "\"completed\""},
         {"ordered_at", "\"2021-05-01T10:00:00.000000Z\"", "\"2021-05-02T08:30:00.000000Z\""}},
        {{"total", NULL, "\"20.00\""},
         {"ordered_at", NULL, "\"2021-05-01T10:00:00.000000Z\""},
         {"customer_id", NULL, fmt("%lld", c.id)},
         {"status", NULL, "\"pending\""}},
    };
    live_and_die(REP1, &l);
}
END_TEST

START_TEST(contact_life_is_recorded)
{
    cust_t c = make_cust(REP1);
    life_t l = {
        "/v1/contacts",
        "contacts",
        fmt("{\"customer_id\":%lld,\"first_name\":\"Hanna\",\"last_name\":\"Hist\",\"tags\":[\"x\"],\"birthday\":"
            "\"1990-01-31\",\"attrs\":{\"k\":\"v\"}}",
            c.id),
        "{\"tags\":[\"x\",\"y\"],\"birthday\":\"1990-02-01\"}",
        "{\"tags\":[\"x\",\"y\"],\"first_name\":\"Hanna\",\"attrs\":{\"k\":\"v\"}}",
        {{"tags", "[\"x\"]", "[\"x\",\"y\"]"}, {"birthday", "\"1990-01-31\"", "\"1990-02-01\""}},
        {{"first_name", NULL, "\"Hanna\""},
         {"birthday", NULL, "\"1990-01-31\""},
         {"is_primary", NULL, "false"},
         {"attrs", NULL, "{\"k\":\"v\"}"}},
    };
    live_and_die(MANAGER, &l);
}
END_TEST

/* Without an X-Request-Id, or with one the API does not keep, the entry names the id the response carried. */
START_TEST(request_id_is_the_one_the_response_named)
{
    cust_t c = make_cust(REP1);
    th_resp_t *r = http_patch(REP1, custpath(c.id), "{\"industry\":\"Plain\"}", NULL);
    expect_status(r, 200);
    const char *given = header(r, "x-request-id");
    ck_assert_ptr_nonnull(given);
    expect_entry(json_array_get(history(REP1, custpath(c.id)), 0), "update", REP1, given);
    r = call_as(REP1, "PATCH", custpath(c.id), MERGE_T, "{\"industry\":\"Odd\"}", "X-Request-Id: not sane!", NULL);
    expect_status(r, 200);
    given = header(r, "x-request-id");
    ck_assert_str_ne(given, "not sane!");
    expect_entry(json_array_get(history(REP1, custpath(c.id)), 0), "update", REP1, given);
}
END_TEST

/* --- who may read it ------------------------------------------------------------------------------ */

static const int owners5[] = {REP1, REP2, REPS, MANAGER, DIRECTOR};

START_TEST(history_follows_read_scopes_also_after_delete)
{
    cust_t c[5];
    long long ct_live[5], ct_gone[5], ct_cascade[5], ord[5];
    for (int i = 0; i < 5; i++) {
        c[i] = make_cust(owners5[i]);
        ct_live[i] = make_contact(DIRECTOR, c[i].id, NULL);
        ct_gone[i] = make_contact(DIRECTOR, c[i].id, NULL);
        ct_cascade[i] = make_contact(DIRECTOR, c[i].id, NULL);
        ord[i] = make_order(DIRECTOR, c[i].id);
        expect_status(http_delete(DIRECTOR, fmt("/v1/contacts/%lld", ct_gone[i]), NULL), 204);
        expect_status(http_delete(DIRECTOR, fmt("/v1/orders/%lld", ord[i]), NULL), 204);
    }
    /* Customers 0 and 2 are deleted (and with them their live contacts). */
    expect_status(http_delete(DIRECTOR, custpath(c[0].id), NULL), 204);
    expect_status(http_delete(DIRECTOR, custpath(c[2].id), NULL), 204);
    ck_assert_int_eq(sql_ll("SELECT (deleted_at IS NOT NULL)::int FROM contacts WHERE id = %lld", ct_cascade[0]), 1);
    for (int a = 0; a < NUSERS; a++) {
        for (int i = 0; i < 5; i++) {
            const char *paths[] = {custpath(c[i].id), fmt("/v1/contacts/%lld", ct_live[i]),
                                   fmt("/v1/contacts/%lld", ct_gone[i]), fmt("/v1/contacts/%lld", ct_cascade[i]),
                                   fmt("/v1/orders/%lld", ord[i])};
            for (size_t p = 0; p < 5; p++) {
                th_resp_t *r = http_get(a, fmt("%s/history", paths[p]));
                if (can_read(a, c[i].owner, c[i].team)) {
                    expect_status_msg(r, 200, "%s reads %s/history (customer of %s)", who_name[a], paths[p],
                                      who_name[owners5[i]]);
                    json_t *first = json_array_get(jget(r, "data"), 0);
                    int deleted = p == 2 || p == 4 || ((i == 0 || i == 2) && (p == 0 || p == 1 || p == 3));
                    expect_entry(first, deleted ? "delete" : "create", DIRECTOR, NULL);
                } else {
                    expect_status_msg(r, 404, "%s reads %s/history (customer of %s)", who_name[a], paths[p],
                                      who_name[owners5[i]]);
                    expect_problem(r, 404, "not-found");
                }
            }
        }
    }
    /* A record that never existed; no token. */
    expect_problem(http_get(DIRECTOR, "/v1/contacts/987654321/history"), 404, "not-found");
    expect_problem(http_get(DIRECTOR, "/v1/orders/987654321/history"), 404, "not-found");
    expect_problem(http_get(DIRECTOR, "/v1/customers/987654321/history"), 404, "not-found");
    expect_problem(http_get(-1, fmt("%s/history", custpath(c[1].id))), 401, "unauthenticated");
    /* Judged by the current owner: a customer moved away takes its history with it. */
    expect_status(http_patch(DIRECTOR, custpath(c[1].id), fmt("{\"owner_id\":%lld}", users[REP1].id), NULL), 200);
    expect_problem(http_get(REP2, fmt("%s/history", custpath(c[1].id))), 404, "not-found");
    expect_problem(http_get(REP2, fmt("/v1/contacts/%lld/history", ct_gone[1])), 404, "not-found");
    expect_status(http_get(REP1, fmt("/v1/contacts/%lld/history", ct_gone[1])), 200);
}
END_TEST

/* A role without the contacts and orders modules: 403 on their history, whatever the record. */
START_TEST(history_needs_the_module)
{
    const char *role = fmt("custonly_%d", (int)getpid());
    ck_assert_int_eq(th_sql(db_url, fmt("INSERT INTO roles (name, description, builtin, permissions) VALUES ('%s',"
                                        " 'Customers only.', false, '{\"customers\": {\"read\": \"all\"}}')",
                                        role)),
                     0);
    const char *email = fmt("custonly.%d@history.test", (int)getpid());
    th_user_add(db_url, email, "Cus Tonly", role, NULL, "custonly-password");
    char token[2048], auth[2200];
    login_ok(email, "custonly-password", token, NULL);
    const char *h[] = {th_bearer(token, auth, sizeof(auth)), NULL};

    cust_t c = make_cust(REP1);
    long long ct = make_contact(REP1, c.id, NULL), o = make_order(REP1, c.id);
    const struct {
        const char *path;
        int want;
    } cases[] = {
        {fmt("%s/history", custpath(c.id)), 200}, {fmt("/v1/contacts/%lld/history", ct), 403},
        {fmt("/v1/orders/%lld/history", o), 403}, {"/v1/contacts/987654321/history", 403},
        {fmt("/v1/contacts/%lld", ct), 403},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        th_resp_t *r = keep(calloc(1, sizeof(*r)));
        ck_assert_int_eq(th_http(api.port, "GET", cases[i].path, h, NULL, 0, r), 0);
        expect_status_msg(r, cases[i].want, "GET %s as a role without the module", cases[i].path);
        if (cases[i].want == 403)
            expect_problem(r, 403, "forbidden");
    }
}
END_TEST

/* --- pages ----------------------------------------------------------------------------------------- */

START_TEST(history_pages_newest_first)
{
    cust_t c = make_cust(REP1);
    make_cust(REP1); /* so that a list of customers has a second page */
    const char *path = custpath(c.id);
    for (int i = 0; i < 7; i++)
        expect_status(http_patch(REP1, path, fmt("{\"industry\":\"Page %d\"}", i), NULL), 200);
    json_t *all = keep(json_array());
    static const size_t sizes[] = {3, 3, 2};
    const char *cursor = NULL;
    for (int p = 0; p < 3; p++) {
        th_resp_t *r = http_get(REP1, cursor != NULL ? fmt("%s/history?limit=3&cursor=%s", path, cursor)
                                                     : fmt("%s/history?limit=3", path));
        expect_status(r, 200);
        ck_assert_msg(json_array_size(jget(r, "data")) == sizes[p], "page %d has %zu entries", p,
                      json_array_size(jget(r, "data")));
        json_array_extend(all, jget(r, "data"));
        if (p < 2) {
            ck_assert_msg(json_is_string(jget(r, "next_cursor")), "page %d without next_cursor", p);
            cursor = jstr(r->json, "next_cursor");
        } else {
            ck_assert(json_is_null(jget(r, "next_cursor")));
        }
    }
    ck_assert_int_eq(json_array_size(all), 8);
    for (size_t i = 1; i < 8; i++)
        ck_assert_msg(jint(json_array_get(all, i - 1), "id") > jint(json_array_get(all, i), "id"),
                      "entries %zu and %zu are not newest first (or repeat)", i - 1, i);
    expect_chg(json_array_get(all, 0), "industry", "\"Page 5\"", "\"Page 6\"");
    expect_chg(json_array_get(all, 6), "industry", "null", "\"Page 0\"");
    expect_entry(json_array_get(all, 7), "create", DIRECTOR, NULL);
    /* The default page holds them all. */
    ck_assert_int_eq(json_array_size(history(REP1, path)), 8);
    /* Bad parameters. */
    th_resp_t *lr = http_get(DIRECTOR, "/v1/customers?limit=1");
    const char *list_cursor = jstr(lr->json, "next_cursor");
    ck_assert_ptr_nonnull(list_cursor);
    static const char *const bad[][2] = {
        {"limit=0", "limit"},     {"limit=201", "limit"}, {"limit=x", "limit"},
        {"cursor=zzz", "cursor"}, {"sort=id", "sort"},    {"count=true", "count"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        th_resp_t *r = http_get(REP1, fmt("%s/history?%s", path, bad[i][0]));
        expect_status_msg(r, 400, "history?%s", bad[i][0]);
        expect_problem(r, 400, "bad-request");
        expect_error(r, bad[i][1], NULL);
    }
    th_resp_t *r = http_get(REP1, fmt("%s/history?cursor=%s", path, list_cursor));
    expect_problem(r, 400, "bad-request");
    expect_error(r, "cursor", NULL);
}
END_TEST

/* --- what is and is not written ------------------------------------------------------------------ */

START_TEST(failed_writes_leave_no_history)
{
    cust_t c = make_cust(REP1), hidden = make_cust(REP2);
    long long ct = make_contact(REP1, c.id, NULL), o = make_order(REP1, c.id);
    long long prim = make_contact(REP1, c.id, "{\"is_primary\":true}");
    th_resp_t *hr = http_post(REP2, "/v1/contacts",
                              fmt("{\"customer_id\":%lld,\"last_name\":\"Hidden\","
                                  "\"external_id\":\"%s\"}",
                                  hidden.id, uniq("hid")));
    expect_status(hr, 201);
    const char *hidden_ext = jstr(hr->json, "external_id");
    long long before = history_rows(), contacts_before = sql_ll("SELECT count(*) FROM contacts");
    const char *cp = custpath(c.id), *ctp = fmt("/v1/contacts/%lld", ct), *op = fmt("/v1/orders/%lld", o);
    expect_problem(http_patch(REP1, cp, "{\"industry\":\"x\"}", "\"9\""), 412, "precondition-failed");
    expect_problem(http_delete(REP1, cp, "\"9\""), 412, "precondition-failed");
    expect_problem(http_patch(REP1, cp, "{\"kind\":\"robot\"}", NULL), 422, "validation-failed");
    expect_problem(http_patch(REP2, cp, "{\"industry\":\"x\"}", NULL), 404, "not-found");
    expect_problem(http_patch(ANALYST, cp, "{\"industry\":\"x\"}", NULL), 403, "forbidden");
    expect_problem(http_delete(ANALYST, ctp, NULL), 403, "forbidden");
    expect_problem(http_patch(REP1, ctp, "{\"last_name\":null}", NULL), 422, "validation-failed");
    expect_problem(http_patch(REP1, ctp, fmt("{\"reports_to_id\":%lld}", ct), NULL), 422, "validation-failed");
    expect_problem(http_patch(REP1, op, "{\"total\":\"99.00\"}", NULL), 422, "validation-failed");
    expect_problem(http_put(REP1, fmt("/v1/external/contacts/%s", urlenc(hidden_ext)),
                            fmt("{\"customer_id\":%lld,\"last_name\":\"Mine\"}", c.id), NULL),
                   409, "conflict");
    /* A bulk where one item is refused writes none of the others. */
    json_t *items = json_array();
    for (int i = 0; i < 5; i++)
        json_array_append_new(items, json_pack("{s:s, s:I, s:s}", "external_id", uniq("fail"), "customer_id",
                                               (json_int_t)c.id, "last_name", "Fine"));
    json_array_append_new(items, json_pack("{s:s, s:I, s:s}", "external_id", uniq("fail"), "customer_id",
                                           (json_int_t)hidden.id, "last_name", "Refused"));
    expect_problem(http_post(REP1, "/v1/contacts/bulk", jdump(items)), 422, "validation-failed");
    /* Two primaries of one customer: refused when the transaction ends, after the statement wrote its rows. */
    items = json_array();
    for (int i = 0; i < 2; i++)
        json_array_append_new(items, json_pack("{s:s, s:I, s:s, s:b}", "external_id", uniq("two"), "customer_id",
                                               (json_int_t)c.id, "last_name", "Primary", "is_primary", 1));
    expect_problem(http_post(REP1, "/v1/contacts/bulk", jdump(items)), 409, "conflict");
    ck_assert_int_eq(sql_ll("SELECT is_primary::int FROM contacts WHERE id = %lld", prim), 1);
    ck_assert_int_eq(sql_ll("SELECT count(*) FROM contacts"), contacts_before);
    ck_assert_msg(history_rows() == before, "failed writes left %lld history entries", history_rows() - before);
    /* And the records' histories hold only their creates. */
    ck_assert_int_eq(json_array_size(history(REP1, cp)), 1);
    ck_assert_int_eq(json_array_size(history(REP1, ctp)), 1);
    ck_assert_int_eq(json_array_size(history(REP1, op)), 1);
    ck_assert_int_eq(json_array_size(history(REP1, fmt("/v1/contacts/%lld", prim))), 1);
}
END_TEST

START_TEST(bulk_writes_one_entry_per_record)
{
    cust_t c = make_cust(REP1);
    enum { N = 25 };
    const char *ext[N];
    json_t *items = json_array();
    for (int i = 0; i < N; i++) {
        ext[i] = uniq("bulkh");
        json_array_append_new(items, json_pack("{s:s, s:I, s:s, s:s}", "external_id", ext[i], "customer_id",
                                               (json_int_t)c.id, "last_name", "Bulk", "title", "Old"));
    }
    const char *r1 = new_rid("bulk1");
    th_resp_t *r = call_as(INTEGRATION, "POST", "/v1/contacts/bulk", JSON_T, jdump(json_incref(items)), xrid(r1), NULL);
    expect_status(r, 200);
    ck_assert_int_eq(jint(r->json, "created"), N);
    ck_assert_int_eq(sql_ll("SELECT count(*) FROM record_history WHERE request_id = '%s'", r1), N);
    ck_assert_int_eq(sql_ll("SELECT count(DISTINCT entity_id) FROM record_history WHERE request_id = '%s'"
                            " AND entity = 'contacts' AND op = 'create' AND actor_id = %lld",
                            r1, users[INTEGRATION].id),
                     N);
    long long ids[N];
    for (int i = 0; i < N; i++) {
        ids[i] = sql_ll("SELECT id FROM contacts WHERE external_id = '%s' AND deleted_at IS NULL", ext[i]);
        json_t *h = history(REP1, fmt("/v1/contacts/%lld", ids[i]));
        ck_assert_int_eq(json_array_size(h), 1);
        expect_entry(json_array_get(h, 0), "create", INTEGRATION, r1);
        expect_chg(json_array_get(h, 0), "title", "null", "\"Old\"");
    }
    /* Updating them: one entry per record that changed, none for the one that did not. */
    for (int i = 1; i < N; i++)
        json_object_set_new(json_array_get(items, (size_t)i), "title", json_string("New"));
    const char *r2 = new_rid("bulk2");
    const char *nd = "";
    for (int i = 0; i < N; i++)
        nd = fmt("%s%s\n", nd, jdump(json_incref(json_array_get(items, (size_t)i))));
    json_decref(items);
    r = call_as(INTEGRATION, "POST", "/v1/contacts/bulk", NDJSON_T, nd, xrid(r2), NULL);
    expect_status(r, 200);
    ck_assert_int_eq(jint(r->json, "updated"), N);
    ck_assert_int_eq(sql_ll("SELECT count(*) FROM record_history WHERE request_id = '%s'", r2), N - 1);
    ck_assert_int_eq(json_array_size(history(REP1, fmt("/v1/contacts/%lld", ids[0]))), 1);
    for (int i = 1; i < N; i++) {
        json_t *h = history(REP1, fmt("/v1/contacts/%lld", ids[i]));
        ck_assert_int_eq(json_array_size(h), 2);
        expect_entry(json_array_get(h, 0), "update", INTEGRATION, r2);
        ck_assert_int_eq(json_array_size(json_object_get(json_array_get(h, 0), "changes")), 1);
        expect_chg(json_array_get(h, 0), "title", "\"Old\"", "\"New\"");
    }
    /* Customers and orders the same way. */
    items = json_array();
    json_t *orders = json_array();
    for (int i = 0; i < 10; i++) {
        json_array_append_new(
            items, json_pack("{s:s, s:s, s:s}", "external_id", uniq("bulkc"), "kind", "person", "name", "Bulk Person"));
        json_array_append_new(orders, jparse(order_body(c.id, uniq("bulko"))));
    }
    const char *r3 = new_rid("bulk3"), *r4 = new_rid("bulk4");
    expect_status(call_as(INTEGRATION, "POST", "/v1/customers/bulk", JSON_T, jdump(items), xrid(r3), NULL), 200);
    expect_status(call_as(INTEGRATION, "POST", "/v1/orders/bulk", JSON_T, jdump(orders), xrid(r4), NULL), 200);
    ck_assert_int_eq(sql_ll("SELECT count(DISTINCT entity_id) FROM record_history WHERE request_id = '%s'"
                            " AND entity = 'customers' AND op = 'create'",
                            r3),
                     10);
    ck_assert_int_eq(sql_ll("SELECT count(*) FROM record_history WHERE request_id = '%s'", r3), 10);
    ck_assert_int_eq(sql_ll("SELECT count(DISTINCT entity_id) FROM record_history WHERE request_id = '%s'"
                            " AND entity = 'orders' AND op = 'create'",
                            r4),
                     10);
    ck_assert_int_eq(sql_ll("SELECT count(*) FROM record_history WHERE request_id = '%s'", r4), 10);
}
END_TEST

/* --- append-only ------------------------------------------------------------------------------------------ */

START_TEST(history_is_append_only)
{
    cust_t c = make_cust(REP1);
    long long hid = sql_ll("SELECT max(id) FROM record_history WHERE entity = 'customers' AND entity_id = %lld", c.id);
    long long before = history_rows();
    PGconn *pg = pg_open();
    ck_assert_msg(pg_do(pg, fmt("UPDATE record_history SET op = 'delete' WHERE id = %lld", hid)) != 0,
                  "UPDATE of record_history succeeded");
    ck_assert_msg(pg_do(pg, fmt("UPDATE record_history SET changes = '[]' WHERE entity_id = %lld", c.id)) != 0,
                  "UPDATE of record_history succeeded");
    ck_assert_msg(pg_do(pg, fmt("DELETE FROM record_history WHERE id = %lld", hid)) != 0,
                  "DELETE from record_history succeeded");
    ck_assert_msg(pg_do(pg, "TRUNCATE record_history") != 0, "TRUNCATE of record_history succeeded");
    ck_assert_msg(pg_do(pg, "TRUNCATE record_history CASCADE") != 0,
                  "TRUNCATE ... CASCADE of record_history succeeded");
    PQfinish(pg);
    ck_assert_int_eq(history_rows(), before);
    json_t *h = history(REP1, custpath(c.id));
    ck_assert_int_eq(json_array_size(h), 1);
    expect_entry(json_array_get(h, 0), "create", DIRECTOR, NULL);
    /* No endpoint writes it. */
    const char *hp = fmt("%s/history", custpath(c.id));
    ck_assert_int_eq(call_as(DIRECTOR, "DELETE", hp, NULL, NULL, NULL, NULL)->status, 405);
    ck_assert_int_eq(call_as(DIRECTOR, "POST", hp, JSON_T, "{}", NULL, NULL)->status, 405);
    ck_assert_int_eq(call_as(DIRECTOR, "PATCH", hp, MERGE_T, "{}", NULL, NULL)->status, 405);
    ck_assert_int_eq(call_as(DIRECTOR, "PUT", hp, JSON_T, "{}", NULL, NULL)->status, 405);
    ck_assert_int_eq(history_rows(), before);
}
END_TEST

/*
 * The database role the API connects as may only read and append history:
 * it holds no UPDATE, DELETE or TRUNCATE privilege, and cannot switch off
 * the table's guards (triggers) either. Each attempt runs in a transaction
 * that is rolled back, so a failure here leaves the history intact.
 */
START_TEST(api_role_may_only_insert_and_select_history)
{
    cust_t c = make_cust(REP1);
    long long hid = sql_ll("SELECT max(id) FROM record_history WHERE entity = 'customers' AND entity_id = %lld", c.id);
    const char *bad = "";
    static const char *const privs[] = {"UPDATE", "DELETE", "TRUNCATE"};
    for (size_t i = 0; i < 3; i++)
        if (sql_ll("SELECT has_table_privilege('clientele_api', 'record_history', '%s')::int", privs[i]) != 0)
            bad = fmt("%s the API's role holds %s on record_history;", bad, privs[i]);
    ck_assert_int_eq(sql_ll("SELECT has_table_privilege('clientele_api', 'record_history', 'INSERT')::int"), 1);
    ck_assert_int_eq(sql_ll("SELECT has_table_privilege('clientele_api', 'record_history', 'SELECT')::int"), 1);
    /* The API's sessions act as that role: CLIENTELE_DB_ROLE, default clientele_api (common/db.c sets it). */
    static const char *const bypass[] = {
        "SET LOCAL session_replication_role = replica",
        "ALTER TABLE record_history DISABLE TRIGGER record_history_no_update",
        "ALTER TABLE record_history DISABLE TRIGGER ALL",
    };
    PGconn *pg = pg_open();
    for (size_t i = 0; i < sizeof(bypass) / sizeof(bypass[0]); i++) {
        ck_assert_int_eq(pg_do(pg, "BEGIN"), 0);
        ck_assert_int_eq(pg_do(pg, "SET LOCAL ROLE clientele_api"), 0); /* as the API's sessions are */
        if (pg_do(pg, bypass[i]) == 0 && pg_do(pg, fmt("DELETE FROM record_history WHERE id = %lld", hid)) == 0)
            bad = fmt("%s \"%s\" then DELETE succeeded;", bad, bypass[i]);
        ck_assert_int_eq(pg_do(pg, "ROLLBACK"), 0);
    }
    PQfinish(pg);
    ck_assert_int_eq(sql_ll("SELECT count(*) FROM record_history WHERE id = %lld", hid), 1);
    ck_assert_msg(*bad == '\0', "history is not append-only for the API's database role (%s):%s",
                  strchr(db_url, '/') + 2, bad);
}
END_TEST

/* Writes that do not come through the API are recorded as the system's. */
START_TEST(direct_sql_changes_are_the_system_s)
{
    cust_t c = make_cust(REP1);
    long long ct = make_contact(REP1, c.id, NULL);
    PGconn *pg = pg_open();
    /* A session that once named an actor in an earlier transaction (as the API's pooled connections do). */
    ck_assert_int_eq(pg_do(pg, "BEGIN"), 0);
    ck_assert_int_eq(pg_do(pg, fmt("SELECT set_config('clientele.actor', '%lld', true),"
                                   " set_config('clientele.request_id', 'stale', true)",
                                   users[REP2].id)),
                     0);
    ck_assert_int_eq(pg_do(pg, "COMMIT"), 0);
    ck_assert_int_eq(pg_do(pg, fmt("UPDATE customers SET industry = 'Mining' WHERE id = %lld", c.id)), 0);
    ck_assert_int_eq(pg_do(pg, fmt("UPDATE contacts SET title = 'Foreman' WHERE id = %lld", ct)), 0);
    ck_assert_int_eq(pg_do(pg, fmt("INSERT INTO contacts (customer_id, first_name) VALUES (%lld, 'Sequel')", c.id)), 0);
    long long made = sql_ll("SELECT max(id) FROM contacts WHERE customer_id = %lld", c.id);
    ck_assert_int_eq(pg_do(pg, fmt("UPDATE contacts SET deleted_at = now() WHERE id = %lld", ct)), 0);
    PQfinish(pg);

    json_t *e = json_array_get(history(REP1, custpath(c.id)), 0);
    expect_entry(e, "update", -1, NULL);
    ck_assert(json_is_null(json_object_get(e, "request_id")));
    ck_assert_int_eq(json_array_size(json_object_get(e, "changes")), 1);
    expect_chg(e, "industry", "null", "\"Mining\"");
    json_t *h = history(REP1, fmt("/v1/contacts/%lld", ct));
    ck_assert_int_eq(json_array_size(h), 3);
    expect_entry(json_array_get(h, 0), "delete", -1, NULL);
    expect_entry(json_array_get(h, 1), "update", -1, NULL);
    expect_chg(json_array_get(h, 1), "title", "null", "\"Foreman\"");
    expect_entry(json_array_get(h, 2), "create", REP1, NULL);
    h = history(REP1, fmt("/v1/contacts/%lld", made));
    ck_assert_int_eq(json_array_size(h), 1);
    expect_entry(json_array_get(h, 0), "create", -1, NULL);
    ck_assert(json_is_null(json_object_get(json_array_get(h, 0), "request_id")));
    expect_chg(json_array_get(h, 0), "first_name", "null", "\"Sequel\"");
}
END_TEST

/* --- changes made on the side ------------------------------------------------------------------------------ */

START_TEST(side_effects_are_recorded_under_the_request)
{
    cust_t c = make_cust(REP1);
    long long a = make_contact(REP1, c.id, "{\"is_primary\":true}"), b = make_contact(REP1, c.id, NULL);
    long long gone = make_contact(REP1, c.id, NULL), o = make_order(REP1, c.id);
    /* B becomes primary: A loses the flag, under the same actor and request. */
    const char *rp = new_rid("primary");
    expect_status(patch_rid(MANAGER, fmt("/v1/contacts/%lld", b), "{\"is_primary\":true}", rp), 200);
    json_t *h = history(REP1, fmt("/v1/contacts/%lld", a));
    ck_assert_msg(json_array_size(h) == 2, "contact A has %zu entries: %s", json_array_size(h), jdump(json_incref(h)));
    expect_entry(json_array_get(h, 0), "update", MANAGER, rp);
    ck_assert_int_eq(json_array_size(json_object_get(json_array_get(h, 0), "changes")), 1);
    expect_chg(json_array_get(h, 0), "is_primary", "true", "false");
    h = history(REP1, fmt("/v1/contacts/%lld", b));
    expect_entry(json_array_get(h, 0), "update", MANAGER, rp);
    expect_chg(json_array_get(h, 0), "is_primary", "false", "true");
    /* Creating a primary contact clears B the same way. */
    const char *rc = new_rid("primary2");
    th_resp_t *r =
        post_rid(REP1, fmt("/v1/customers/%lld/contacts", c.id), "{\"last_name\":\"New\",\"is_primary\":true}", rc);
    expect_status(r, 201);
    h = history(REP1, fmt("/v1/contacts/%lld", b));
    expect_entry(json_array_get(h, 0), "update", REP1, rc);
    expect_chg(json_array_get(h, 0), "is_primary", "true", "false");
    long long newest = jint(r->json, "id");

    /* The customer's delete deletes its live contacts: a delete entry each, under that request. */
    const char *rg = new_rid("gone");
    expect_status(delete_rid(REP1, fmt("/v1/contacts/%lld", gone), rg), 204);
    long long order_rows = rows_of("orders", o);
    const char *rd = new_rid("cascade");
    expect_status(delete_rid(REP1, custpath(c.id), rd), 204);
    const long long live[] = {a, b, newest};
    for (size_t i = 0; i < 3; i++) {
        h = history(REP1, fmt("/v1/contacts/%lld", live[i]));
        expect_entry(json_array_get(h, 0), "delete", REP1, rd);
        ck_assert_int_eq(sql_ll("SELECT count(*) FROM record_history WHERE entity = 'contacts' AND entity_id = %lld"
                                " AND op = 'delete'",
                                live[i]),
                         1);
    }
    /* The contact deleted before keeps its own delete; the customer has its own; orders stay and are untouched. */
    h = history(REP1, fmt("/v1/contacts/%lld", gone));
    expect_entry(json_array_get(h, 0), "delete", REP1, rg);
    ck_assert_int_eq(sql_ll("SELECT count(*) FROM record_history WHERE entity = 'contacts' AND entity_id = %lld"
                            " AND op = 'delete'",
                            gone),
                     1);
    expect_entry(json_array_get(history(REP1, custpath(c.id)), 0), "delete", REP1, rd);
    ck_assert_int_eq(rows_of("orders", o), order_rows);
    ck_assert_int_eq(sql_ll("SELECT count(*) FROM record_history WHERE request_id = '%s'", rd), 4);
    /* Moving a customer records the customer's change only. */
    cust_t m = make_cust(REP1);
    long long mc = make_contact(REP1, m.id, NULL), mo = make_order(REP1, m.id);
    const char *rm = new_rid("move");
    expect_status(patch_rid(DIRECTOR, custpath(m.id),
                            fmt("{\"owner_id\":%lld,\"team_id\":%lld}", users[REPS].id, team_south), rm),
                  200);
    json_t *e = json_array_get(history(REPS, custpath(m.id)), 0);
    expect_entry(e, "update", DIRECTOR, rm);
    ck_assert_int_eq(json_array_size(json_object_get(e, "changes")), 2);
    expect_chg(e, "owner_id", fmt("%lld", users[REP1].id), fmt("%lld", users[REPS].id));
    expect_chg(e, "team_id", fmt("%lld", team_north), fmt("%lld", team_south));
    ck_assert_int_eq(rows_of("contacts", mc), 1);
    ck_assert_int_eq(rows_of("orders", mo), 1);
}
END_TEST

/* --- the suite ----------------------------------------------------------------------------------------------- */

static Suite *history_suite(void)
{
    Suite *s = suite_create("history");
    TCase *tc = tcase_create("entries");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, customer_life_is_recorded);
    tcase_add_test(tc, order_life_is_recorded);
    tcase_add_test(tc, contact_life_is_recorded);
    tcase_add_test(tc, request_id_is_the_one_the_response_named);
    tcase_add_test(tc, side_effects_are_recorded_under_the_request);
    tcase_add_test(tc, bulk_writes_one_entry_per_record);
    tcase_add_test(tc, failed_writes_leave_no_history);
    tcase_add_test(tc, direct_sql_changes_are_the_system_s);
    suite_add_tcase(s, tc);

    tc = tcase_create("reading");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, history_follows_read_scopes_also_after_delete);
    tcase_add_test(tc, history_needs_the_module);
    tcase_add_test(tc, history_pages_newest_first);
    suite_add_tcase(s, tc);

    tc = tcase_create("append-only");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, history_is_append_only);
    tcase_add_test(tc, api_role_may_only_insert_and_select_history);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return crew_main(&conf, history_suite);
}
