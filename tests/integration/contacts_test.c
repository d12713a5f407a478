/*
 * tests/integration/contacts_test.c - /v1/contacts, /v1/customers/{id}/contacts
 * and /v1/changes/contacts against the real API, PostgreSQL and Redis: a
 * contact's scope is its customer's, a customer has at most one primary
 * contact, reports_to_id draws the customer's org chart without cycles,
 * deleting a customer deletes its contacts, and the CRUD, upsert, bulk,
 * list and feed conventions are those of every engine resource.
 *
 * crew_main() (tests/support/crew.c) builds the suite's database, adds one
 * user per role, starts one API process and logs every user in once; Check
 * forks each test, which inherits the tokens and talks to the API over
 * HTTP. Tests do not depend on each other: each creates its own customers
 * and contacts and filters lists by its customers or by a tag unique to
 * it. Expected scopes come from the crew's oracle applied to the contact's
 * customer (its owner and team compared directly), never from the API's
 * own SQL. Everything a test allocates stays reachable from a global list,
 * so LeakSanitizer stays quiet without a free() after every call.
 */
#include <pthread.h>
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
    "CLIENTELE_JWT_SECRET=contacts-suite-secret-0123456789abcdefghi",
    NULL,
};

static const crew_conf_t conf = {
    .name = "contacts",
    .redis_db = 9,
    .env = api_env,
    .password = "contacts-suite-password",
    .domain = "contacts.test",
    .resource = "contacts",
    .item = "contact",
};

/* --- customers and contacts ------------------------------------------------------- */

static const char *ctpath(long long id)
{
    return fmt("/v1/contacts/%lld", id);
}

static const char *custpath(long long id)
{
    return fmt("/v1/customers/%lld", id);
}

static const char *nested(long long customer)
{
    return fmt("/v1/customers/%lld/contacts", customer);
}

typedef struct {
    long long id, owner, team;
    const char *ext;
} cust_t;

/* A company owned by `owner` (team derived from the owner), with a unique external id; made by the director. */
static cust_t make_cust(int owner)
{
    const char *ext = uniq("cust");
    th_resp_t *r = http_post(DIRECTOR, "/v1/customers",
                             jdump(json_pack("{s:s, s:s, s:s, s:I}", "kind", "company", "name", fmt("Firm %s", ext),
                                             "external_id", ext, "owner_id", (json_int_t)users[owner].id)));
    expect_status(r, 201);
    return (cust_t){jint(r->json, "id"), jint(r->json, "owner_id"), jint(r->json, "team_id"), ext};
}

typedef struct {
    long long id, customer;
    const char *ext, *etag;
} ct_t;

/* A contact of customer_id with a last name (first name may be NULL) and an external id (may be NULL). */
static json_t *contact_doc(long long customer_id, const char *ext, const char *first, const char *last)
{
    json_t *o = json_pack("{s:I}", "customer_id", (json_int_t)customer_id);
    if (first != NULL)
        json_object_set_new(o, "first_name", json_string(first));
    if (last != NULL)
        json_object_set_new(o, "last_name", json_string(last));
    if (ext != NULL)
        json_object_set_new(o, "external_id", json_string(ext));
    return o;
}

/* POST /v1/contacts as `as`: a contact of c named `last`, with the members of `extra` (JSON text, may be NULL). */
static ct_t make_contact(int as, cust_t c, const char *last, const char *extra)
{
    const char *ext = uniq("ct");
    json_t *d = contact_doc(c.id, ext, NULL, last);
    if (extra != NULL) {
        json_t *x = jparse(extra);
        json_object_update(d, x);
        json_decref(x);
    }
    th_resp_t *r = http_post(as, "/v1/contacts", jdump(d));
    expect_status(r, 201);
    ct_t t = {jint(r->json, "id"), c.id, ext, header(r, "etag")};
    ck_assert_int_gt(t.id, 0);
    ck_assert_int_eq(jint(r->json, "customer_id"), c.id);
    return t;
}

static long long live_contacts(void)
{
    return sql_ll("SELECT count(*) FROM contacts WHERE deleted_at IS NULL");
}

static int is_primary(long long id)
{
    return (int)sql_ll("SELECT is_primary::int FROM contacts WHERE id = %lld", id);
}

static long long primaries_of(long long customer)
{
    return sql_ll("SELECT count(*) FROM contacts WHERE customer_id = %lld AND is_primary AND deleted_at IS NULL",
                  customer);
}

/* The change for contact `id` in a list of changes, or NULL. */
static json_t *change_of(json_t *changes, long long id)
{
    json_t *ch;
    size_t i;
    json_array_foreach(changes, i, ch) if (jint(ch, "id") == id) return ch;
    return NULL;
}

/* --- scopes ------------------------------------------------------------------------- */

static const int owners5[] = {REP1, REP2, REPS, MANAGER, DIRECTOR};

START_TEST(scope_reads_get_lists_and_counts)
{
    const char *tag = uniq("scope");
    cust_t c[5];
    ct_t t[5];
    for (int i = 0; i < 5; i++) {
        c[i] = make_cust(owners5[i]);
        t[i] = make_contact(DIRECTOR, c[i], fmt("Reader%d", i), fmt("{\"tags\":[\"%s\"]}", tag));
    }
    ck_assert_int_eq(c[0].team, team_north);
    ck_assert_int_eq(c[2].team, team_south);
    for (int a = 0; a < NUSERS; a++) {
        long long want[5];
        size_t n = 0;
        for (int i = 0; i < 5; i++) {
            th_resp_t *r = http_get(a, ctpath(t[i].id));
            th_resp_t *nl = http_get(a, nested(c[i].id));
            expect_status(nl, 200);
            if (can_read(a, c[i].owner, c[i].team)) {
                want[n++] = t[i].id;
                expect_status_msg(r, 200, "%s reads a contact of %s's customer", who_name[a], who_name[owners5[i]]);
                ck_assert_int_eq(jint(r->json, "id"), t[i].id);
                long long one[] = {t[i].id};
                expect_ids(jget(nl, "data"), one, 1);
            } else {
                expect_status_msg(r, 404, "%s reads a contact of %s's customer", who_name[a], who_name[owners5[i]]);
                expect_problem(r, 404, "not-found");
                ck_assert_msg(json_array_size(jget(nl, "data")) == 0, "%s lists the contacts of %s's customer: %.300s",
                              who_name[a], who_name[owners5[i]], nl->body);
            }
        }
        th_resp_t *r = http_get(a, fmt("/v1/contacts?tag=%s&count=true&limit=200", tag));
        expect_status(r, 200);
        expect_ids(jget(r, "data"), want, n);
        ck_assert_int_eq(jint(r->json, "total"), n);
        expect_ids(list_all(a, fmt("/v1/contacts?tag=%s", tag), 2), want, n);
        long long expected = sql_ll("SELECT count(*) FROM contacts t JOIN customers c ON c.id = t.customer_id"
                                    " WHERE t.deleted_at IS NULL AND %s",
                                    scope_where(a, "c."));
        ck_assert_msg(api_count(a, "") == expected, "%s: count=true total differs from the %lld visible contacts",
                      who_name[a], expected);
    }
    /* The scope follows the customer: moving the customer moves its contacts. */
    expect_status(http_patch(DIRECTOR, custpath(c[0].id), fmt("{\"owner_id\":%lld}", users[REP2].id), NULL), 200);
    expect_status(http_get(REP2, ctpath(t[0].id)), 200);
    expect_problem(http_get(REP1, ctpath(t[0].id)), 404, "not-found");
    ck_assert(has_id(list_all(REP2, fmt("/v1/contacts?tag=%s", tag), 10), t[0].id));
    ck_assert(!has_id(list_all(REP1, fmt("/v1/contacts?tag=%s", tag), 10), t[0].id));
    expect_problem(http_patch(REP1, ctpath(t[0].id), "{\"title\":\"CEO\"}", NULL), 404, "not-found");
    expect_status(http_patch(REP2, ctpath(t[0].id), "{\"title\":\"CEO\"}", NULL), 200);
    /* Into the other team: the north manager loses it, the south rep gains it. */
    expect_status(http_patch(DIRECTOR, custpath(c[0].id),
                             fmt("{\"owner_id\":%lld,\"team_id\":%lld}", users[REPS].id, team_south), NULL),
                  200);
    expect_problem(http_get(MANAGER, ctpath(t[0].id)), 404, "not-found");
    expect_status(http_get(REPS, ctpath(t[0].id)), 200);
}
END_TEST

START_TEST(scope_writes_patch_put_bulk_delete)
{
    static const int actors[] = {REP1, MANAGER, DIRECTOR, ANALYST, INTEGRATION, REPS};
    for (size_t ai = 0; ai < sizeof(actors) / sizeof(actors[0]); ai++) {
        int a = actors[ai];
        for (int i = 0; i < 5; i++) {
            cust_t c = make_cust(owners5[i]);
            ct_t t = make_contact(DIRECTOR, c, "Target", NULL);
            int rd = can_read(a, c.owner, c.team), wr = can_write(a, c.owner, c.team);
            int want = !rd ? 404 : !wr ? 403 : 200;
            const char *who = fmt("%s on a contact of %s's customer", who_name[a], who_name[owners5[i]]);
            long long v = 1;

            th_resp_t *r = http_patch(a, ctpath(t.id), "{\"title\":\"Head of Buying\"}", NULL);
            expect_status_msg(r, want, "PATCH, %s", who);
            if (want != 200)
                expect_problem(r, want, want == 404 ? "not-found" : "forbidden");
            else
                ck_assert_str_eq(jstr(r->json, "title"), "Head of Buying");
            v += want == 200;
            ck_assert_msg(version_of(t.id) == v, "PATCH, %s: version %lld, wanted %lld", who, version_of(t.id), v);

            /* An external id held by a contact the caller cannot see answers like any other conflict. */
            r = http_put(a, xpath(t.ext), jdump(contact_doc(c.id, NULL, "Put", "Target")), NULL);
            expect_status_msg(r, want == 404 ? 409 : want, "PUT by external id, %s", who);
            if (want == 200) {
                ck_assert_int_eq(jint(r->json, "id"), t.id);
                ck_assert_str_eq(jstr(r->json, "first_name"), "Put");
                ck_assert(json_is_null(jget(r, "title"))); /* a replacement: absent members are cleared */
            }
            v += want == 200;
            ck_assert_msg(version_of(t.id) == v, "PUT, %s: version %lld, wanted %lld", who, version_of(t.id), v);

            json_t *items = json_array();
            json_array_append_new(items, contact_doc(c.id, t.ext, "Bulk", "Target"));
            r = http_post(a, "/v1/contacts/bulk", jdump(items));
            if (wr) {
                expect_status_msg(r, 200, "bulk, %s", who);
                ck_assert_int_eq(jint(r->json, "created"), 0);
                ck_assert_int_eq(jint(r->json, "updated"), 1);
                v++;
            } else if (!rd) {
                expect_status_msg(r, 422, "bulk, %s", who);
                expect_error(r, "[0].external_id", "duplicate");
            } else {
                expect_status_msg(r, 403, "bulk, %s", who);
            }
            ck_assert_msg(version_of(t.id) == v, "bulk, %s: version %lld, wanted %lld", who, version_of(t.id), v);

            r = http_delete(a, ctpath(t.id), NULL);
            expect_status_msg(r, want == 200 ? 204 : want, "DELETE, %s", who);
            ck_assert_int_eq(is_deleted(t.id), want == 200);
            if (want != 200)
                ck_assert_int_eq(version_of(t.id), v);
            else
                expect_problem(http_get(a, ctpath(t.id)), 404, "not-found");
        }
    }
}
END_TEST

/* A contact names a customer the caller may see (and create for); else 422 naming customer_id, or 403. */
START_TEST(create_needs_a_customer_in_scope)
{
    cust_t mine = make_cust(REP1), theirs = make_cust(REP2), south = make_cust(REPS), gone = make_cust(REP1);
    expect_status(http_delete(DIRECTOR, custpath(gone.id), NULL), 204);
    long long before = live_contacts();
    const struct {
        int who;
        long long id;
    } refused[] = {
        {REP1, theirs.id}, {REP1, south.id},    {MANAGER, south.id},   {REPS, mine.id},
        {REP1, gone.id},   {DIRECTOR, gone.id}, {DIRECTOR, 987654321},
    };
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        th_resp_t *r = http_post(refused[i].who, "/v1/contacts", jdump(contact_doc(refused[i].id, NULL, "A", "B")));
        expect_status_msg(r, 422, "POST /v1/contacts, case %zu (%s)", i, who_name[refused[i].who]);
        expect_problem(r, 422, "validation-failed");
        expect_error(r, "customer_id", "invalid_reference");
        r = http_post(refused[i].who, nested(refused[i].id), "{\"last_name\":\"B\"}");
        expect_status_msg(r, 422, "POST %s, case %zu (%s)", nested(refused[i].id), i, who_name[refused[i].who]);
        expect_error(r, "customer_id", "invalid_reference");
        r = http_put(refused[i].who, xpath(uniq("hidden")), jdump(contact_doc(refused[i].id, NULL, "A", "B")), NULL);
        expect_status_msg(r, 422, "PUT by external id, case %zu (%s)", i, who_name[refused[i].who]);
        expect_error(r, "customer_id", "invalid_reference");
    }
    /* The analyst sees the customer but may not create contacts. */
    expect_problem(http_post(ANALYST, "/v1/contacts", jdump(contact_doc(mine.id, NULL, NULL, "B"))), 403, "forbidden");
    expect_problem(http_post(ANALYST, nested(mine.id), "{\"last_name\":\"B\"}"), 403, "forbidden");
    ck_assert_int_eq(live_contacts(), before);
    /* A manager may add a contact to a team-mate's customer. */
    expect_status(http_post(MANAGER, "/v1/contacts", jdump(contact_doc(theirs.id, NULL, NULL, "Mate"))), 201);
    expect_status(http_post(REP1, "/v1/contacts", jdump(contact_doc(mine.id, NULL, NULL, "Mine"))), 201);
    /* Moving a contact to another customer needs that customer in scope too. */
    ct_t mv = make_contact(REP1, mine, "Mover", NULL);
    th_resp_t *r = http_patch(REP1, ctpath(mv.id), fmt("{\"customer_id\":%lld}", theirs.id), NULL);
    expect_problem(r, 422, "validation-failed");
    expect_error(r, "customer_id", "invalid_reference");
    r = http_patch(MANAGER, ctpath(mv.id), fmt("{\"customer_id\":%lld}", south.id), NULL);
    expect_problem(r, 422, "validation-failed");
    expect_error(r, "customer_id", "invalid_reference");
    ck_assert_int_eq(version_of(mv.id), 1);
    r = http_patch(MANAGER, ctpath(mv.id), fmt("{\"customer_id\":%lld}", theirs.id), NULL);
    expect_status(r, 200);
    ck_assert_int_eq(jint(r->json, "customer_id"), theirs.id);
    expect_problem(http_get(REP1, ctpath(mv.id)), 404, "not-found");
    expect_status(http_get(REP2, ctpath(mv.id)), 200);
}
END_TEST

/* --- nested routes ------------------------------------------------------------------------ */

START_TEST(nested_routes_list_and_create)
{
    cust_t a = make_cust(REP1), b = make_cust(REP1);
    ct_t a1 = make_contact(REP1, a, "Zeta", "{\"tags\":[\"buyer\"]}");
    ct_t a2 = make_contact(REP1, a, "Alpha", "{\"email\":\"alpha.nested@example.com\"}");
    ct_t a3 = make_contact(REP1, a, "Mu", "{\"tags\":[\"buyer\"]}");
    ct_t b1 = make_contact(REP1, b, "Alpha", "{\"tags\":[\"buyer\"]}");

    th_resp_t *r = http_get(REP1, fmt("%s?count=true", nested(a.id)));
    expect_status(r, 200);
    long long all_a[] = {a1.id, a2.id, a3.id};
    expect_ids(jget(r, "data"), all_a, 3);
    ck_assert_int_eq(jint(r->json, "total"), 3);
    /* The default order is last_name ascending. */
    ck_assert_int_eq(jint(json_array_get(jget(r, "data"), 0), "id"), a2.id);
    ck_assert_int_eq(jint(json_array_get(jget(r, "data"), 2), "id"), a1.id);
    json_t *items = list_all(REP1, fmt("%s?sort=-last_name", nested(a.id)), 1);
    ck_assert_int_eq(json_array_size(items), 3);
    ck_assert_int_eq(jint(json_array_get(items, 0), "id"), a1.id);
    ck_assert_int_eq(jint(json_array_get(items, 1), "id"), a3.id);
    ck_assert_int_eq(jint(json_array_get(items, 2), "id"), a2.id);
    r = http_get(REP1, fmt("%s?tag=buyer", nested(a.id)));
    long long buyers[] = {a1.id, a3.id};
    expect_ids(jget(r, "data"), buyers, 2);
    r = http_get(REP1, fmt("%s?q=alpha", nested(a.id)));
    long long alpha[] = {a2.id};
    expect_ids(jget(r, "data"), alpha, 1);
    r = http_get(REP1, fmt("%s?fields=id,last_name", nested(b.id)));
    expect_status(r, 200);
    ck_assert_int_eq(json_array_size(jget(r, "data")), 1);
    ck_assert_int_eq(json_object_size(json_array_get(jget(r, "data"), 0)), 2);
    ck_assert_int_eq(jint(json_array_get(jget(r, "data"), 0), "id"), b1.id);
    /* The path names the customer: a customer_id in the query never lists another customer's contacts. */
    r = http_get(REP1, fmt("%s?customer_id=%lld", nested(a.id), b.id));
    if (r->status != 400) {
        expect_status(r, 200);
        ck_assert_msg(!has_id(jget(r, "data"), b1.id), "GET %s?customer_id=%lld listed the other customer's contact",
                      nested(a.id), b.id);
    }
    expect_problem(http_get(REP1, fmt("%s?sort=first_name", nested(a.id))), 400, "bad-request");
    expect_problem(http_get(REP1, fmt("%s?status=x", nested(a.id))), 400, "bad-request");

    /* Creating under the customer: customer_id from the path. */
    r = http_post(REP1, nested(a.id), "{\"first_name\":\"Nested\",\"last_name\":\"Made\"}");
    expect_status(r, 201);
    long long made = jint(r->json, "id");
    ck_assert_int_eq(jint(r->json, "customer_id"), a.id);
    ck_assert_str_eq(header(r, "location"), ctpath(made));
    ck_assert_int_eq(sql_ll("SELECT customer_id FROM contacts WHERE id = %lld", made), a.id);
    r = http_post(REP1, nested(a.id), fmt("{\"customer_id\":%lld,\"last_name\":\"Same\"}", a.id));
    expect_status(r, 201);
    ck_assert_int_eq(jint(r->json, "customer_id"), a.id);
    long long before = live_contacts();
    r = http_post(REP1, nested(a.id), fmt("{\"customer_id\":%lld,\"last_name\":\"Other\"}", b.id));
    expect_problem(r, 422, "validation-failed");
    expect_error(r, "customer_id", "invalid_value");
    r = http_post(REP1, nested(a.id), "{\"customer_id\":null,\"last_name\":\"Other\"}");
    expect_problem(r, 422, "validation-failed");
    expect_error(r, "customer_id", NULL);
    r = http_post(REP1, nested(a.id), "{\"title\":\"Nameless\"}");
    expect_problem(r, 422, "validation-failed");
    expect_error(r, "last_name", "required");
    ck_assert_int_eq(live_contacts(), before);
    r = http_get(REP1, fmt("%s?count=true", nested(a.id)));
    ck_assert_int_eq(jint(r->json, "total"), 5);
    r = http_get(REP1, fmt("%s?count=true", nested(b.id)));
    ck_assert_int_eq(jint(r->json, "total"), 1);
}
END_TEST

/* --- validation ------------------------------------------------------------------------------ */

START_TEST(validation_rules_of_each_field)
{
    cust_t c = make_cust(REP1);
    const char *base = fmt("{\"customer_id\":%lld,\"first_name\":\"Vera\",\"last_name\":\"Valid\"}", c.id);
    const struct {
        const char *key, *value, *field, *code;
    } cases[] = {
        {"customer_id", NULL, "customer_id", "required"},
        {"customer_id", "0", "customer_id", "out_of_range"},
        {"customer_id", "\"5\"", "customer_id", "invalid_type"},
        {"first_name", "\"\"", "first_name", "too_short"},
        {"last_name", fmt("\"%s\"", repeat('l', 101)), "last_name", "too_long"},
        {"email", "\"not-an-email\"", "email", "invalid_format"},
        {"email", "\"a@b@c.example\"", "email", "invalid_format"},
        {"email", "42", "email", "invalid_type"},
        {"phone", "\"call me maybe\"", "phone", "invalid_format"},
        {"mobile", "\"0171-abc\"", "mobile", "invalid_format"},
        {"birthday", "\"2024-02-30\"", "birthday", "invalid_format"},
        {"birthday", "\"2023-02-29\"", "birthday", "invalid_format"},
        {"birthday", "\"2024-13-01\"", "birthday", "invalid_format"},
        {"birthday", "\"1990-5-1\"", "birthday", "invalid_format"},
        {"birthday", "\"2024-02-29T00:00:00Z\"", "birthday", "invalid_format"},
        {"preferred_channel", "\"fax\"", "preferred_channel", "invalid_value"},
        {"preferred_channel", "\"Email\"", "preferred_channel", "invalid_value"},
        {"do_not_contact", "\"yes\"", "do_not_contact", "invalid_type"},
        {"is_primary", "1", "is_primary", "invalid_type"},
        {"reports_to_id", "0", "reports_to_id", "out_of_range"},
        {"reports_to_id", "\"7\"", "reports_to_id", "invalid_type"},
        {"tags", "\"vip\"", "tags", "invalid_type"},
        {"attrs", "[]", "attrs", "invalid_type"},
        {"colour", "\"red\"", "colour", "unknown_field"},
        {"id", "1", "id", "read_only"},
        {"version", "1", "version", "read_only"},
        {"created_at", "\"2024-01-01T00:00:00Z\"", "created_at", "read_only"},
    };
    long long before = live_contacts();
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *b = jparse(base);
        if (cases[i].value == NULL)
            json_object_del(b, cases[i].key);
        else
            json_object_set_new(b, cases[i].key, jparse(cases[i].value));
        th_resp_t *r = http_post(REP1, "/v1/contacts", jdump(b));
        expect_status_msg(r, 422, "case %zu (%s)", i, cases[i].field);
        json_t *e = find_error(r, cases[i].field);
        ck_assert_msg(e != NULL, "case %zu: no error for %s in %.400s", i, cases[i].field, r->body);
        ck_assert_msg(strcmp(jstr(e, "code"), cases[i].code) == 0, "case %zu: %s has code %s, wanted %s", i,
                      cases[i].field, jstr(e, "code"), cases[i].code);
        ck_assert_msg(nerrors(r) == 1, "case %zu: %zu errors: %.400s", i, nerrors(r), r->body);
    }
    /* No name at all: absent, or both null. */
    th_resp_t *r = http_post(REP1, "/v1/contacts", fmt("{\"customer_id\":%lld,\"title\":\"CFO\"}", c.id));
    expect_problem(r, 422, "validation-failed");
    expect_error(r, "last_name", "required");
    r = http_post(REP1, "/v1/contacts", fmt("{\"customer_id\":%lld,\"first_name\":null,\"last_name\":null}", c.id));
    expect_problem(r, 422, "validation-failed");
    expect_error(r, "last_name", "required");
    /* Every error at once. */
    r = http_post(REP1, "/v1/contacts",
                  fmt("{\"customer_id\":%lld,\"email\":\"x\",\"birthday\":\"2024-02-30\",\"preferred_channel\":"
                      "\"pigeon\",\"colour\":1}",
                      c.id));
    expect_problem(r, 422, "validation-failed");
    expect_error(r, "email", "invalid_format");
    expect_error(r, "birthday", "invalid_format");
    expect_error(r, "preferred_channel", "invalid_value");
    expect_error(r, "colour", "unknown_field");
    expect_error(r, "last_name", "required");
    ck_assert_int_eq(nerrors(r), 5);
    ck_assert_int_eq(live_contacts(), before);

    /* Accepted: a leap day, trimmed text, one name only; defaults for what is left out. */
    r = http_post(
        REP1, "/v1/contacts",
        fmt("{\"customer_id\":%lld,\"first_name\":\"  Leap  \",\"birthday\":\"2024-02-29\","
            "\"email\":\" leap@example.com \",\"phone\":\"+49 (30) 123-45.67\",\"preferred_channel\":\"sms\"}",
            c.id));
    expect_status(r, 201);
    ck_assert_str_eq(jstr(r->json, "first_name"), "Leap");
    ck_assert(json_is_null(jget(r, "last_name")));
    ck_assert_str_eq(jstr(r->json, "birthday"), "2024-02-29");
    ck_assert_str_eq(jstr(r->json, "email"), "leap@example.com");
    ck_assert_str_eq(jstr(r->json, "preferred_channel"), "sms");
    ck_assert(json_is_false(jget(r, "is_primary")));
    ck_assert(json_is_false(jget(r, "do_not_contact")));
    ck_assert_int_eq(json_array_size(jget(r, "tags")), 0);
    ck_assert(json_is_object(jget(r, "attrs")) && json_object_size(jget(r, "attrs")) == 0);
    ck_assert(json_is_null(jget(r, "reports_to_id")));
    long long leap = jint(r->json, "id");
    static const char *const channels[] = {"email", "phone", "sms", "mail", "none"};
    for (size_t i = 0; i < 5; i++) {
        r = http_patch(REP1, ctpath(leap), fmt("{\"preferred_channel\":\"%s\"}", channels[i]), NULL);
        expect_status_msg(r, 200, "preferred_channel %s", channels[i]);
        ck_assert_str_eq(jstr(r->json, "preferred_channel"), channels[i]);
    }

    /* Patches: the merged contact keeps a name; each field keeps its rules. */
    ct_t both = make_contact(REP1, c, "Both", "{\"first_name\":\"Has\"}");
    ct_t last_only = make_contact(REP1, c, "Lastonly", NULL);
    static const char *const patches[][3] = {
        {"{\"first_name\":null,\"last_name\":null}", "last_name", NULL},
        {"{\"birthday\":\"2024-02-30\"}", "birthday", "invalid_format"},
        {"{\"email\":\"nope\"}", "email", "invalid_format"},
        {"{\"preferred_channel\":\"fax\"}", "preferred_channel", "invalid_value"},
        {"{\"is_primary\":null}", "is_primary", NULL},
        {"{\"do_not_contact\":null}", "do_not_contact", NULL},
        {"{\"customer_id\":null}", "customer_id", NULL},
        {"{\"id\":9}", "id", "read_only"},
        {"{\"colour\":\"red\"}", "colour", "unknown_field"},
    };
    for (size_t i = 0; i < sizeof(patches) / sizeof(patches[0]); i++) {
        r = http_patch(REP1, ctpath(both.id), patches[i][0], NULL);
        expect_status_msg(r, 422, "patch %s", patches[i][0]);
        expect_problem(r, 422, "validation-failed");
        expect_error(r, patches[i][1], patches[i][2]);
    }
    ck_assert_int_eq(version_of(both.id), 1);
    r = http_patch(REP1, ctpath(last_only.id), "{\"last_name\":null}", NULL);
    expect_problem(r, 422, "validation-failed");
    expect_error(r, "last_name", NULL);
    ck_assert_int_eq(version_of(last_only.id), 1);
    /* One name may go while the other stays. */
    r = http_patch(REP1, ctpath(both.id), "{\"last_name\":null}", NULL);
    expect_status(r, 200);
    ck_assert(json_is_null(jget(r, "last_name")));
    ck_assert_str_eq(jstr(r->json, "first_name"), "Has");
    r = http_patch(REP1, ctpath(both.id), "{\"first_name\":null}", NULL);
    expect_problem(r, 422, "validation-failed");
    expect_error(r, "last_name", NULL);
    ck_assert_int_eq(version_of(both.id), 2);
    r = http_patch(REP1, ctpath(both.id), "{\"first_name\":null,\"last_name\":\"Swapped\",\"birthday\":\"2000-02-29\"}",
                   NULL);
    expect_status(r, 200);
    ck_assert(json_is_null(jget(r, "first_name")));
    ck_assert_str_eq(jstr(r->json, "birthday"), "2000-02-29");
    /* A replacement without a name. */
    r = http_put(REP1, xpath(both.ext), fmt("{\"customer_id\":%lld,\"title\":\"x\"}", c.id), NULL);
    expect_problem(r, 422, "validation-failed");
    expect_error(r, "last_name", "required");
}
END_TEST

START_TEST(crud_with_etags_and_preconditions)
{
    cust_t c = make_cust(REP1);
    th_resp_t *r =
        http_post(REP1, "/v1/contacts",
                  fmt("{\"customer_id\":%lld,\"first_name\":\"Ada\",\"last_name\":\"Keller\",\"title\":"
                      "\"Head of Purchasing\",\"department\":\"Purchasing\",\"email\":\"ada.keller@acme."
                      "example\",\"phone\":\"+49 30 1234567\",\"mobile\":\"+49 171 7654321\",\"notes\":"
                      "\"Prefers mornings.\\nNo calls on Fridays.\",\"do_not_contact\":true,\"tags\":[\"vip\","
                      "\"de\"],\"attrs\":{\"lang\":\"de\"},\"birthday\":\"1980-07-14\"}",
                      c.id));
    expect_status(r, 201);
    long long id = jint(r->json, "id");
    ck_assert_str_eq(header(r, "location"), ctpath(id));
    ck_assert_str_eq(header(r, "etag"), "\"1\"");
    ck_assert_int_eq(jint(r->json, "version"), 1);
    ck_assert_str_eq(jstr(r->json, "notes"), "Prefers mornings.\nNo calls on Fridays.");
    ck_assert(json_is_true(jget(r, "do_not_contact")));
    ck_assert_int_eq(json_array_size(jget(r, "tags")), 2);
    ck_assert_str_eq(json_string_value(json_array_get(jget(r, "tags"), 1)), "de");
    ck_assert_str_eq(jstr(jget(r, "attrs"), "lang"), "de");
    ck_assert_str_eq(jstr(r->json, "birthday"), "1980-07-14");
    ck_assert(strstr(jstr(r->json, "created_at"), "Z") != NULL);

    r = http_get(REP1, ctpath(id));
    expect_status(r, 200);
    ck_assert_str_eq(header(r, "etag"), "\"1\"");
    ck_assert_str_eq(jstr(r->json, "department"), "Purchasing");
    expect_status(call_as(REP1, "GET", ctpath(id), NULL, NULL, "If-None-Match: \"1\"", NULL), 304);

    /* Merge patch: attrs merged member by member, tags replaced whole. */
    r = http_patch(REP1, ctpath(id), "{\"attrs\":{\"lang\":null,\"shoe\":\"44\"},\"tags\":[\"key\"]}", "\"1\"");
    expect_status(r, 200);
    ck_assert_str_eq(header(r, "etag"), "\"2\"");
    ck_assert_ptr_null(json_object_get(jget(r, "attrs"), "lang"));
    ck_assert_str_eq(jstr(jget(r, "attrs"), "shoe"), "44");
    ck_assert_int_eq(json_array_size(jget(r, "tags")), 1);
    expect_problem(http_patch(REP1, ctpath(id), "{\"title\":\"x\"}", "\"1\""), 412, "precondition-failed");
    expect_problem(http_delete(REP1, ctpath(id), "\"1\""), 412, "precondition-failed");
    ck_assert_int_eq(version_of(id), 2);
    expect_status(http_delete(REP1, ctpath(id), "\"2\""), 204);
    expect_problem(http_get(REP1, ctpath(id)), 404, "not-found");
    expect_problem(http_patch(REP1, ctpath(id), "{\"title\":\"x\"}", NULL), 404, "not-found");
    expect_problem(http_delete(REP1, ctpath(id), NULL), 404, "not-found");
    expect_problem(http_get(-1, ctpath(id)), 401, "unauthenticated");
}
END_TEST

START_TEST(put_by_external_id_upserts)
{
    cust_t c = make_cust(REP1), other = make_cust(REP1), hidden = make_cust(REPS);
    const char *ext = uniq("CT-put");
    th_resp_t *r = http_put(INTEGRATION, xpath(ext),
                            jdump(json_pack("{s:I, s:s, s:s, s:s, s:[s]}", "customer_id", (json_int_t)c.id,
                                            "first_name", "Up", "last_name", "Sert", "title", "Buyer", "tags", "erp")),
                            NULL);
    expect_status(r, 201);
    long long id = jint(r->json, "id");
    ck_assert_str_eq(header(r, "location"), ctpath(id));
    ck_assert_str_eq(jstr(r->json, "external_id"), ext);
    /* A full replacement: another customer, absent members back to their defaults. */
    r = http_put(REP1, xpath(ext), jdump(contact_doc(other.id, NULL, NULL, "Sert")), NULL);
    expect_status(r, 200);
    ck_assert_int_eq(jint(r->json, "id"), id);
    ck_assert_int_eq(jint(r->json, "customer_id"), other.id);
    ck_assert(json_is_null(jget(r, "first_name")));
    ck_assert(json_is_null(jget(r, "title")));
    ck_assert_int_eq(json_array_size(jget(r, "tags")), 0);
    const char *etag = header(r, "etag");
    ck_assert_str_eq(etag, "\"2\"");
    /* The body may repeat the external id, not contradict it. */
    r = http_put(REP1, xpath(ext), jdump(contact_doc(other.id, "CT-other", NULL, "Sert")), NULL);
    expect_problem(r, 422, "validation-failed");
    expect_error(r, "external_id", NULL);
    expect_status(http_put(REP1, xpath(ext), jdump(contact_doc(other.id, ext, NULL, "Sert")), etag), 200);
    expect_problem(http_put(REP1, xpath(ext), jdump(contact_doc(other.id, NULL, NULL, "Sert")), etag), 412,
                   "precondition-failed");
    const char *fresh = uniq("CT-new");
    expect_problem(http_put(REP1, xpath(fresh), jdump(contact_doc(c.id, NULL, NULL, "N")), "\"1\""), 412,
                   "precondition-failed");
    ck_assert_int_eq(sql_ll("SELECT count(*) FROM contacts WHERE external_id = '%s'", fresh), 0);
    /* Moving it to a customer the writer cannot see. */
    r = http_put(REP1, xpath(ext), jdump(contact_doc(hidden.id, NULL, NULL, "Sert")), NULL);
    expect_problem(r, 422, "validation-failed");
    expect_error(r, "customer_id", NULL);
    ck_assert_int_eq(version_of(id), 3);
    /* POST with a live external id conflicts; after a delete the id is free again. */
    expect_problem(http_post(REP1, "/v1/contacts", jdump(contact_doc(c.id, ext, NULL, "Dup"))), 409, "conflict");
    expect_status(http_delete(REP1, ctpath(id), NULL), 204);
    r = http_put(REP1, xpath(ext), jdump(contact_doc(c.id, NULL, NULL, "Again")), NULL);
    expect_status(r, 201);
    ck_assert_int_ne(jint(r->json, "id"), id);
}
END_TEST

/* --- the primary contact ------------------------------------------------------------------ */

START_TEST(one_primary_contact_per_customer)
{
    cust_t c = make_cust(REP1), d = make_cust(REP1);
    ct_t a = make_contact(REP1, c, "Alpha", "{\"is_primary\":true}");
    ct_t b = make_contact(REP1, c, "Beta", NULL);
    ct_t dp = make_contact(REP1, d, "Delta", "{\"is_primary\":true}");
    ck_assert_int_eq(is_primary(a.id), 1);
    ck_assert_int_eq(is_primary(dp.id), 1);
    const char *cur = feed_head(REP1);

    /* Making B primary clears A in the same request. */
    th_resp_t *r = http_patch(REP1, ctpath(b.id), "{\"is_primary\":true}", NULL);
    expect_status(r, 200);
    ck_assert(json_is_true(jget(r, "is_primary")));
    r = http_get(REP1, ctpath(a.id));
    expect_status(r, 200);
    ck_assert_msg(json_is_false(jget(r, "is_primary")), "the previous primary contact is still primary: %.300s",
                  r->body);
    ck_assert_int_eq(jint(r->json, "version"), 2);
    ck_assert_str_eq(header(r, "etag"), "\"2\"");
    ck_assert_int_eq(primaries_of(c.id), 1);
    /* The other customer keeps its own primary. */
    ck_assert_int_eq(is_primary(dp.id), 1);
    ck_assert_int_eq(version_of(dp.id), 1);
    /* The feed shows both updates, A's with the flag cleared. */
    json_t *ch = feed_since(REP1, &cur, 10);
    ck_assert_msg(json_array_size(ch) == 2, "%zu changes after making a contact primary: %s", json_array_size(ch),
                  jdump(json_incref(ch)));
    expect_change(change_of(ch, b.id), "update", b.id);
    expect_change(change_of(ch, a.id), "update", a.id);
    ck_assert(json_is_false(json_object_get(json_object_get(change_of(ch, a.id), "data"), "is_primary")));

    /* Setting it again changes nothing else. */
    expect_status(http_patch(REP1, ctpath(b.id), "{\"is_primary\":true,\"title\":\"Boss\"}", NULL), 200);
    ck_assert_int_eq(version_of(a.id), 2);

    /* Creating a primary contact clears the previous one: by POST, nested POST, PUT and bulk. */
    ct_t e = make_contact(REP1, c, "Epsilon", "{\"is_primary\":true}");
    ck_assert_int_eq(is_primary(b.id), 0);
    ck_assert_int_eq(is_primary(e.id), 1);
    r = http_post(REP1, nested(c.id), "{\"last_name\":\"Zeta\",\"is_primary\":true}");
    expect_status(r, 201);
    long long z = jint(r->json, "id");
    ck_assert_int_eq(is_primary(e.id), 0);
    const char *pext = uniq("prim");
    r = http_put(REP1, xpath(pext), fmt("{\"customer_id\":%lld,\"last_name\":\"Eta\",\"is_primary\":true}", c.id),
                 NULL);
    expect_status(r, 201);
    long long eta = jint(r->json, "id");
    ck_assert_int_eq(is_primary(z), 0);
    json_t *items = json_array();
    json_array_append_new(items, json_pack("{s:s, s:I, s:s, s:b}", "external_id", uniq("prim"), "customer_id",
                                           (json_int_t)c.id, "last_name", "Theta", "is_primary", 1));
    expect_status(http_post(REP1, "/v1/contacts/bulk", jdump(items)), 200);
    ck_assert_int_eq(is_primary(eta), 0);
    ck_assert_int_eq(primaries_of(c.id), 1);
    ck_assert_int_eq(primaries_of(d.id), 1);
    ck_assert_int_eq(is_primary(dp.id), 1);

    /* Two primaries of one customer in one bulk: refused as a whole (409), nothing written. */
    long long before = live_contacts();
    long long theta_primary = sql_ll("SELECT id FROM contacts WHERE customer_id = %lld AND is_primary", c.id);
    items = json_array();
    json_array_append_new(items, json_pack("{s:s, s:I, s:s, s:b}", "external_id", uniq("two"), "customer_id",
                                           (json_int_t)c.id, "last_name", "Iota", "is_primary", 1));
    json_array_append_new(items, json_pack("{s:s, s:I, s:s, s:b}", "external_id", uniq("two"), "customer_id",
                                           (json_int_t)c.id, "last_name", "Kappa", "is_primary", 1));
    r = http_post(REP1, "/v1/contacts/bulk", jdump(items));
    expect_problem(r, 409, "conflict");
    ck_assert_int_eq(live_contacts(), before);
    ck_assert_int_eq(is_primary(theta_primary), 1);
    /* One primary each for two customers in one bulk is fine. */
    items = json_array();
    json_array_append_new(items, json_pack("{s:s, s:I, s:s, s:b}", "external_id", uniq("two"), "customer_id",
                                           (json_int_t)c.id, "last_name", "Lambda", "is_primary", 1));
    json_array_append_new(items, json_pack("{s:s, s:I, s:s, s:b}", "external_id", uniq("two"), "customer_id",
                                           (json_int_t)d.id, "last_name", "Mu", "is_primary", 1));
    expect_status(http_post(REP1, "/v1/contacts/bulk", jdump(items)), 200);
    ck_assert_int_eq(primaries_of(c.id), 1);
    ck_assert_int_eq(primaries_of(d.id), 1);
    ck_assert_int_eq(is_primary(dp.id), 0);

    /* Deleting the primary contact leaves the customer without one. */
    long long p =
        sql_ll("SELECT id FROM contacts WHERE customer_id = %lld AND is_primary AND deleted_at IS NULL", c.id);
    expect_status(http_delete(REP1, ctpath(p), NULL), 204);
    ck_assert_int_eq(primaries_of(c.id), 0);
    expect_status(http_patch(REP1, ctpath(a.id), "{\"is_primary\":true}", NULL), 200);
    ck_assert_int_eq(primaries_of(c.id), 1);
}
END_TEST

typedef struct {
    long long id;
    int status;
} primary_job_t;

static void *make_primary(void *arg)
{
    primary_job_t *j = arg;
    j->status = http_patch(REP1, ctpath(j->id), "{\"is_primary\":true}", NULL)->status;
    return NULL;
}

/* Two contacts made primary at the same time: one wins (or both, one after the other); never two primaries. */
START_TEST(concurrent_primaries_leave_one)
{
    cust_t c = make_cust(REP1);
    make_contact(REP1, c, "First", "{\"is_primary\":true}");
    for (int round = 0; round < 8; round++) {
        primary_job_t j[2] = {{make_contact(REP1, c, "X", NULL).id, 0}, {make_contact(REP1, c, "Y", NULL).id, 0}};
        pthread_t t[2];
        for (int i = 0; i < 2; i++)
            ck_assert_int_eq(pthread_create(&t[i], NULL, make_primary, &j[i]), 0);
        for (int i = 0; i < 2; i++)
            pthread_join(t[i], NULL);
        for (int i = 0; i < 2; i++)
            ck_assert_msg(j[i].status == 200 || j[i].status == 409, "round %d: making a contact primary answered %d",
                          round, j[i].status);
        ck_assert_msg(j[0].status == 200 || j[1].status == 200, "round %d: neither request made its contact primary",
                      round);
        ck_assert_int_eq(primaries_of(c.id), 1);
        long long p =
            sql_ll("SELECT id FROM contacts WHERE customer_id = %lld AND is_primary AND deleted_at IS NULL", c.id);
        ck_assert_msg((p == j[0].id && j[0].status == 200) || (p == j[1].id && j[1].status == 200),
                      "round %d: the primary contact is %lld, not one a 200 made primary", round, p);
    }
}
END_TEST

/* --- the org chart ------------------------------------------------------------------------- */

START_TEST(reports_to_names_a_live_contact_of_the_same_customer)
{
    cust_t c = make_cust(REP1), other = make_cust(REP1), theirs = make_cust(REP2);
    ct_t boss = make_contact(REP1, c, "Boss", NULL);
    ct_t x = make_contact(REP1, other, "Elsewhere", NULL);
    ct_t hidden = make_contact(REP2, theirs, "Hidden", NULL);
    ct_t gone = make_contact(REP1, c, "Gone", NULL);
    expect_status(http_delete(REP1, ctpath(gone.id), NULL), 204);
    long long before = live_contacts();
    const long long bad[] = {x.id, hidden.id, gone.id, 987654321};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        th_resp_t *r =
            http_post(REP1, "/v1/contacts",
                      fmt("{\"customer_id\":%lld,\"last_name\":\"Sub\",\"reports_to_id\":%lld}", c.id, bad[i]));
        expect_status_msg(r, 422, "reports_to_id %lld (case %zu)", bad[i], i);
        expect_problem(r, 422, "validation-failed");
        expect_error(r, "reports_to_id", NULL);
    }
    ck_assert_int_eq(live_contacts(), before);
    th_resp_t *r = http_post(REP1, nested(c.id), fmt("{\"last_name\":\"Sub\",\"reports_to_id\":%lld}", boss.id));
    expect_status(r, 201);
    long long sub = jint(r->json, "id");
    ck_assert_int_eq(jint(r->json, "reports_to_id"), boss.id);
    r = http_patch(REP1, ctpath(sub), fmt("{\"reports_to_id\":%lld}", x.id), NULL);
    expect_problem(r, 422, "validation-failed");
    expect_error(r, "reports_to_id", NULL);
    ck_assert_int_eq(version_of(sub), 1);
    /* Moving the contact to another customer needs a manager there, or none. */
    r = http_patch(REP1, ctpath(sub), fmt("{\"customer_id\":%lld}", other.id), NULL);
    expect_problem(r, 422, "validation-failed");
    expect_error(r, "reports_to_id", NULL);
    r = http_patch(REP1, ctpath(sub), fmt("{\"customer_id\":%lld,\"reports_to_id\":%lld}", other.id, x.id), NULL);
    expect_status(r, 200);
    ck_assert_int_eq(jint(r->json, "reports_to_id"), x.id);
    /* A manager deleted later: the next change of a report names a new one, or none. */
    ct_t mgr = make_contact(REP1, c, "Manager", NULL);
    ct_t rep = make_contact(REP1, c, "Report", fmt("{\"reports_to_id\":%lld}", mgr.id));
    expect_status(http_delete(REP1, ctpath(mgr.id), NULL), 204);
    r = http_patch(REP1, ctpath(rep.id), "{\"title\":\"Analyst\"}", NULL);
    expect_problem(r, 422, "validation-failed");
    expect_error(r, "reports_to_id", NULL);
    r = http_patch(REP1, ctpath(rep.id), "{\"title\":\"Analyst\",\"reports_to_id\":null}", NULL);
    expect_status(r, 200);
    ck_assert(json_is_null(jget(r, "reports_to_id")));
}
END_TEST

START_TEST(reports_to_refuses_cycles)
{
    cust_t c = make_cust(REP1);
    ct_t a = make_contact(REP1, c, "Anna", NULL), b = make_contact(REP1, c, "Ben", NULL),
         cc = make_contact(REP1, c, "Cleo", NULL);
    /* Self. */
    th_resp_t *r = http_patch(REP1, ctpath(a.id), fmt("{\"reports_to_id\":%lld}", a.id), NULL);
    expect_problem(r, 422, "validation-failed");
    expect_error(r, "reports_to_id", NULL);
    /* A -> B, then B -> A. */
    expect_status(http_patch(REP1, ctpath(a.id), fmt("{\"reports_to_id\":%lld}", b.id), NULL), 200);
    r = http_patch(REP1, ctpath(b.id), fmt("{\"reports_to_id\":%lld}", a.id), NULL);
    expect_problem(r, 422, "validation-failed");
    expect_error(r, "reports_to_id", NULL);
    ck_assert_int_eq(version_of(b.id), 1);
    /* A -> B -> C, then C -> A: by PATCH, PUT and bulk. */
    expect_status(http_patch(REP1, ctpath(b.id), fmt("{\"reports_to_id\":%lld}", cc.id), NULL), 200);
    r = http_patch(REP1, ctpath(cc.id), fmt("{\"reports_to_id\":%lld}", a.id), NULL);
    expect_problem(r, 422, "validation-failed");
    expect_error(r, "reports_to_id", NULL);
    r = http_put(REP1, xpath(cc.ext),
                 fmt("{\"customer_id\":%lld,\"last_name\":\"Cleo\",\"reports_to_id\":%lld}", c.id, a.id), NULL);
    expect_problem(r, 422, "validation-failed");
    expect_error(r, "reports_to_id", NULL);
    json_t *items = json_array();
    json_array_append_new(items, json_pack("{s:s, s:I, s:s}", "external_id", uniq("fine"), "customer_id",
                                           (json_int_t)c.id, "last_name", "Fine"));
    json_array_append_new(items, json_pack("{s:s, s:I, s:s, s:I}", "external_id", cc.ext, "customer_id",
                                           (json_int_t)c.id, "last_name", "Cleo", "reports_to_id", (json_int_t)a.id));
    r = http_post(REP1, "/v1/contacts/bulk", jdump(items));
    expect_problem(r, 422, "validation-failed");
    expect_error(r, "[1].reports_to_id", NULL);
    ck_assert_int_eq(nerrors(r), 1);
    ck_assert_int_eq(version_of(cc.id), 1);
    ck_assert_int_eq(api_count(REP1, fmt("customer_id=%lld", c.id)), 3);
    /* Breaking the chain makes room: C -> A is fine once B no longer reports to C. */
    expect_status(http_patch(REP1, ctpath(b.id), "{\"reports_to_id\":null}", NULL), 200);
    expect_status(http_patch(REP1, ctpath(cc.id), fmt("{\"reports_to_id\":%lld}", a.id), NULL), 200);
}
END_TEST

/* Items of one bulk are judged together: two that name each other as managers make a cycle. */
START_TEST(reports_to_refuses_cycles_within_a_bulk)
{
    cust_t c = make_cust(REP1);
    ct_t a = make_contact(REP1, c, "Anna", NULL), b = make_contact(REP1, c, "Ben", NULL),
         cc = make_contact(REP1, c, "Cleo", NULL);
    json_t *items = json_array();
    json_array_append_new(items, json_pack("{s:s, s:I, s:s, s:I}", "external_id", a.ext, "customer_id",
                                           (json_int_t)c.id, "last_name", "Anna", "reports_to_id", (json_int_t)b.id));
    json_array_append_new(items, json_pack("{s:s, s:I, s:s, s:I}", "external_id", b.ext, "customer_id",
                                           (json_int_t)c.id, "last_name", "Ben", "reports_to_id", (json_int_t)cc.id));
    json_array_append_new(items, json_pack("{s:s, s:I, s:s, s:I}", "external_id", cc.ext, "customer_id",
                                           (json_int_t)c.id, "last_name", "Cleo", "reports_to_id", (json_int_t)a.id));
    th_resp_t *r = http_post(REP1, "/v1/contacts/bulk", jdump(items));
    long long cycle = sql_ll("SELECT count(*) FROM contacts a JOIN contacts b ON b.id = a.reports_to_id"
                             " JOIN contacts c ON c.id = b.reports_to_id WHERE a.id = %lld AND c.reports_to_id = a.id",
                             a.id);
    ck_assert_msg(cycle == 0,
                  "a bulk of A->B, B->C, C->A answered %d and stored the cycle: A %lld reports to B %lld, B to C %lld,"
                  " C to A",
                  r->status, a.id, b.id, cc.id);
    expect_problem(r, 422, "validation-failed");
    ck_assert_msg(find_error(r, "[0].reports_to_id") != NULL || find_error(r, "[1].reports_to_id") != NULL ||
                      find_error(r, "[2].reports_to_id") != NULL,
                  "the refusal names no reports_to_id: %.400s", r->body);
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(version_of((long long[]){a.id, b.id, cc.id}[i]), 1);
}
END_TEST

typedef struct {
    long long id, to;
    int status;
} report_job_t;

static void *set_manager(void *arg)
{
    report_job_t *j = arg;
    j->status = http_patch(REP1, ctpath(j->id), fmt("{\"reports_to_id\":%lld}", j->to), NULL)->status;
    return NULL;
}

/* Two requests at the same time, A -> B and B -> A: at most one may succeed. */
START_TEST(reports_to_refuses_cycles_made_at_the_same_time)
{
    cust_t c = make_cust(REP1);
    for (int round = 0; round < 12; round++) {
        ct_t a = make_contact(REP1, c, "Anna", NULL), b = make_contact(REP1, c, "Ben", NULL);
        report_job_t j[2] = {{a.id, b.id, 0}, {b.id, a.id, 0}};
        pthread_t t[2];
        for (int i = 0; i < 2; i++)
            ck_assert_int_eq(pthread_create(&t[i], NULL, set_manager, &j[i]), 0);
        for (int i = 0; i < 2; i++)
            pthread_join(t[i], NULL);
        long long cycle = sql_ll("SELECT count(*) FROM contacts a JOIN contacts b ON b.id = a.reports_to_id"
                                 " WHERE a.id = %lld AND b.reports_to_id = a.id",
                                 a.id);
        ck_assert_msg(cycle == 0,
                      "round %d: concurrent PATCHes A->B and B->A answered %d and %d and stored the cycle (A %lld,"
                      " B %lld)",
                      round, j[0].status, j[1].status, a.id, b.id);
        for (int i = 0; i < 2; i++)
            ck_assert_msg(j[i].status == 200 || j[i].status == 409 || j[i].status == 422, "round %d: answered %d",
                          round, j[i].status);
    }
}
END_TEST

/*
 * reports_to_id names a contact of the same customer. A contact that moves
 * to another customer may not leave its reports behind pointing across
 * customers: either the move is refused, or no contact of the old customer
 * reports to it afterwards.
 */
START_TEST(moving_a_manager_keeps_reports_within_their_customer)
{
    cust_t c = make_cust(REP1), other = make_cust(REP1);
    ct_t boss = make_contact(REP1, c, "Boss", NULL);
    ct_t sub = make_contact(REP1, c, "Sub", fmt("{\"reports_to_id\":%lld}", boss.id));
    th_resp_t *r = http_patch(REP1, ctpath(boss.id), fmt("{\"customer_id\":%lld}", other.id), NULL);
    long long across = sql_ll("SELECT count(*) FROM contacts s JOIN contacts m ON m.id = s.reports_to_id"
                              " WHERE s.deleted_at IS NULL AND m.customer_id <> s.customer_id AND s.customer_id = %lld",
                              c.id);
    ck_assert_msg(across == 0,
                  "moving contact %lld to customer %lld answered %d and left contact %lld of customer %lld reporting to"
                  " it",
                  boss.id, other.id, r->status, sub.id, c.id);
    if (r->status != 200) {
        expect_problem(r, 422, "validation-failed");
        ck_assert_int_eq(version_of(boss.id), 1);
    }
    /* Whatever happened, the report can still be edited. */
    expect_status(http_patch(REP1, ctpath(sub.id), "{\"title\":\"Still here\"}", NULL), 200);
}
END_TEST

/* --- deleting a customer ---------------------------------------------------------------------- */

START_TEST(deleting_a_customer_deletes_its_contacts)
{
    cust_t c = make_cust(REP1), keep_c = make_cust(REP1);
    ct_t t[3];
    for (int i = 0; i < 3; i++)
        t[i] = make_contact(REP1, c, fmt("Doomed%d", i), i == 0 ? "{\"is_primary\":true}" : NULL);
    ct_t kept = make_contact(REP1, keep_c, "Kept", NULL);
    const char *cur = feed_head(REP1), *dcur = feed_head(DIRECTOR);
    expect_status(http_delete(REP1, custpath(c.id), NULL), 204);
    for (int i = 0; i < 3; i++) {
        expect_problem(http_get(REP1, ctpath(t[i].id)), 404, "not-found");
        expect_problem(http_get(DIRECTOR, ctpath(t[i].id)), 404, "not-found");
        ck_assert_int_eq(is_deleted(t[i].id), 1);
    }
    th_resp_t *r = http_get(DIRECTOR, fmt("/v1/contacts?customer_id=%lld&count=true", c.id));
    expect_status(r, 200);
    ck_assert_int_eq(jint(r->json, "total"), 0);
    r = http_get(DIRECTOR, nested(c.id));
    expect_status(r, 200);
    ck_assert_int_eq(json_array_size(jget(r, "data")), 0);
    /* The other customer's contact is untouched. */
    r = http_get(REP1, ctpath(kept.id));
    expect_status(r, 200);
    ck_assert_int_eq(version_of(kept.id), 1);
    /* A tombstone per contact, for the owner and for the director. */
    int readers[] = {REP1, DIRECTOR};
    const char **curs[] = {&cur, &dcur};
    for (int k = 0; k < 2; k++) {
        json_t *ch = feed_since(readers[k], curs[k], 2);
        ck_assert_msg(json_array_size(ch) == 3, "%s sees %zu contact changes after the customer's delete: %s",
                      who_name[readers[k]], json_array_size(ch), jdump(json_incref(ch)));
        for (int i = 0; i < 3; i++) {
            expect_change(change_of(ch, t[i].id), "delete", t[i].id);
            ck_assert_str_eq(jstr(change_of(ch, t[i].id), "external_id"), t[i].ext);
        }
    }
    /* Their external ids are free again; the deleted customer takes no new contacts. */
    expect_status(http_post(REP1, "/v1/contacts", jdump(contact_doc(keep_c.id, t[0].ext, NULL, "Reborn"))), 201);
    r = http_post(REP1, nested(c.id), "{\"last_name\":\"Late\"}");
    expect_problem(r, 422, "validation-failed");
    expect_error(r, "customer_id", "invalid_reference");
}
END_TEST

/* --- lists ------------------------------------------------------------------------------------- */

START_TEST(list_filters)
{
    cust_t c = make_cust(REP1), c2 = make_cust(REP1);
    const char *u = uniq("f"), *t1 = uniq("t1"), *t2 = uniq("t2");
    const char *ada_mail = fmt("Ada.%s@Engines.example", u);
    ct_t a = make_contact(REP1, c, "Hopper",
                          fmt("{\"first_name\":\"Grace\",\"email\":\"grace.%s@navy.example\",\"phone\":\"+1 555 0100\","
                              "\"tags\":[\"%s\"]}",
                              u, t1));
    ct_t b = make_contact(REP1, c, "Lovelace",
                          fmt("{\"first_name\":\"Ada\",\"email\":\"%s\",\"mobile\":\"+44 20 7946 0000\","
                              "\"tags\":[\"%s\",\"%s\"]}",
                              ada_mail, t1, t2));
    ct_t p = make_contact(REP1, c, "100%_done", "{\"first_name\":\"Per\"}");
    ct_t d = make_contact(REP1, c, "Turing", "{\"first_name\":\"Alan\",\"phone\":\"+44 161 555 0199\"}");
    ct_t e = make_contact(REP1, c2, "Hopper", fmt("{\"first_name\":\"Grace\",\"tags\":[\"%s\"]}", t1));
    ct_t bs = make_contact(REP1, c2, "Back\\slash", NULL);
    const char *in_c = fmt("customer_id=%lld", c.id);
    const struct {
        const char *query;
        long long want[5];
        size_t n;
    } cases[] = {
        {in_c, {a.id, b.id, p.id, d.id}, 4},
        {fmt("customer_id=%lld", c2.id), {e.id, bs.id}, 2},
        {fmt("customer_id=%lld&q=%%5C", c2.id), {bs.id}, 1},
        {fmt("customer_id=%lld&q=k%%5Cs", c2.id), {bs.id}, 1},
        {fmt("%s&q=grace", in_c), {a.id}, 1},
        {fmt("%s&q=HOPPER", in_c), {a.id}, 1},
        {fmt("%s&q=ovelac", in_c), {b.id}, 1},
        {fmt("%s&q=engines", in_c), {b.id}, 1},
        {fmt("%s&q=7946", in_c), {b.id}, 1},
        {fmt("%s&q=0199", in_c), {d.id}, 1},
        {fmt("%s&q=%%25", in_c), {p.id}, 1},
        {fmt("%s&q=_", in_c), {p.id}, 1},
        {fmt("%s&q=0%%25_d", in_c), {p.id}, 1},
        {fmt("%s&q=a%%25", in_c), {0}, 0},
        {fmt("%s&q=nobody", in_c), {0}, 0},
        {fmt("q=grace.%s", u), {a.id}, 1},
        {fmt("email=%s", urlenc(ada_mail)), {b.id}, 1},
        {fmt("email=ada.%s%%40engines.example", u), {b.id}, 1},
        {fmt("email=ada.%s", u), {0}, 0},
        {fmt("tag=%s", t1), {a.id, b.id, e.id}, 3},
        {fmt("tag=%s", t2), {b.id}, 1},
        {fmt("tag=%s&customer_id=%lld", t1, c2.id), {e.id}, 1},
        {fmt("tag=%s&q=grace", t1), {a.id, e.id}, 2},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        th_resp_t *r = http_get(DIRECTOR, fmt("/v1/contacts?%s&limit=200&count=true", cases[i].query));
        expect_status_msg(r, 200, "filter %s", cases[i].query);
        json_t *got = jget(r, "data");
        ck_assert_msg(json_array_size(got) == cases[i].n, "filter %s: %zu contacts, wanted %zu: %.500s", cases[i].query,
                      json_array_size(got), cases[i].n, r->body);
        expect_ids(got, cases[i].want, cases[i].n);
        ck_assert_int_eq(jint(r->json, "total"), cases[i].n);
    }
    /* Scopes apply on top. */
    th_resp_t *r = http_get(REP2, fmt("/v1/contacts?tag=%s&count=true", t1));
    ck_assert_int_eq(jint(r->json, "total"), 0);
    /* updated_since */
    usleep(5000);
    r = http_patch(REP1, ctpath(d.id), "{\"title\":\"Mathematician\"}", NULL);
    expect_status(r, 200);
    const char *since = jstr(r->json, "updated_at");
    r = http_get(DIRECTOR, fmt("/v1/contacts?%s&updated_since=%s", in_c, since));
    long long one[] = {d.id};
    expect_ids(jget(r, "data"), one, 1);
    r = http_get(DIRECTOR, fmt("/v1/contacts?%s&updated_since=2000-01-01T00:00:00Z&count=true", in_c));
    ck_assert_int_eq(jint(r->json, "total"), 4);

    static const char *const bad[][2] = {
        {"q=", "q"},
        {"email=", "email"},
        {"tag=", "tag"},
        {"limit=0", "limit"},
        {"limit=201", "limit"},
        {"sort=first_name", "sort"},
        {"sort=-email", "sort"},
        {"customer_id=abc", "customer_id"},
        {"customer_id=0", "customer_id"},
        {"updated_since=now", "updated_since"},
        {"created_since=2024-01-01T00:00:00Z", "created_since"},
        {"status=prospect", "status"},
        {"fields=id,secret", "fields"},
        {"cursor=zzz", "cursor"},
        {"tag=a&tag=b", "tag"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        r = http_get(DIRECTOR, fmt("/v1/contacts?%s", bad[i][0]));
        expect_status_msg(r, 400, "query %s", bad[i][0]);
        expect_problem(r, 400, "bad-request");
        expect_error(r, bad[i][1], NULL);
    }
    r = http_get(DIRECTOR, fmt("/v1/contacts?q=%s", repeat('q', 201)));
    expect_problem(r, 400, "bad-request");
    /* Deleted contacts leave lists and counts. */
    expect_status(http_delete(REP1, ctpath(a.id), NULL), 204);
    r = http_get(DIRECTOR, fmt("/v1/contacts?%s&count=true", in_c));
    ck_assert_int_eq(jint(r->json, "total"), 3);
    ck_assert(!has_id(jget(r, "data"), a.id));
}
END_TEST

/* Creates n contacts of c in one bulk request as the director; last_name from name(i) (NULL: first name only). */
static void bulk_contacts(int n, cust_t c, const char *(*name)(int i))
{
    json_t *items = json_array();
    for (int i = 0; i < n; i++) {
        const char *last = name(i);
        json_array_append_new(items, contact_doc(c.id, uniq("bc"), last == NULL ? fmt("First%d", i) : NULL, last));
    }
    th_resp_t *r = http_post(DIRECTOR, "/v1/contacts/bulk", jdump(items));
    expect_status(r, 200);
    ck_assert_int_eq(jint(r->json, "created"), n);
}

static const char *name_same(int i)
{
    (void)i;
    return "Same";
}

static const char *name_spread(int i)
{
    static const char *const n[] = {"Adams", "Baker", "Clark", "Davis", "Evans", "Fisher"};
    return n[(i * 5) % 6];
}

static const char *name_none(int i)
{
    (void)i;
    return NULL;
}

/* items are in last_name order (a missing last name sorts as an empty one: first ascending), ties by id. */
static void expect_name_order(json_t *items, int desc, const char *what)
{
    for (size_t i = 1; i < json_array_size(items); i++) {
        json_t *x = json_array_get(items, i - 1), *y = json_array_get(items, i);
        const char *a = jstr(x, "last_name"), *b = jstr(y, "last_name");
        int c = strcmp(a != NULL ? a : "", b != NULL ? b : "");
        if (c == 0)
            c = jint(x, "id") < jint(y, "id") ? -1 : 1;
        ck_assert_msg(desc ? c > 0 : c < 0, "%s: items %zu (%s, id %lld) and %zu (%s, id %lld) out of order", what,
                      i - 1, a != NULL ? a : "null", jint(x, "id"), i, b != NULL ? b : "null", jint(y, "id"));
    }
}

START_TEST(list_sorts_break_ties_by_id)
{
    cust_t c = make_cust(REP1);
    /* One transaction: equal last_name, created_at and updated_at for 30 contacts. */
    bulk_contacts(30, c, name_same);
    bulk_contacts(12, c, name_spread);
    const char *base = fmt("/v1/contacts?customer_id=%lld", c.id);
    json_t *all = list_all(DIRECTOR, base, 200);
    ck_assert_int_eq(json_array_size(all), 42);
    long long ids[42];
    for (size_t i = 0; i < 42; i++)
        ids[i] = jint(json_array_get(all, i), "id");
    static const char *const sorts[] = {"last_name",   "-last_name", "created_at",
                                        "-created_at", "updated_at", "-updated_at"};
    for (size_t s = 0; s < 6; s++) {
        json_t *items = list_all(DIRECTOR, fmt("%s&sort=%s", base, sorts[s]), 7);
        expect_ids(items, ids, 42);
        expect_sorted(items, sorts[s]);
        items = list_all(REP1, fmt("%s&sort=%s", base, sorts[s]), 4);
        expect_ids(items, ids, 42);
        expect_sorted(items, sorts[s]);
        items = list_all(MANAGER, fmt("%s&sort=%s", base, sorts[s]), 5);
        expect_ids(items, ids, 42);
        expect_sorted(items, sorts[s]);
        items = list_all(REP1, fmt("%s?sort=%s", nested(c.id), sorts[s]), 6);
        expect_ids(items, ids, 42);
        expect_sorted(items, sorts[s]);
    }
    /* The default order is last_name ascending. */
    expect_sorted(list_all(DIRECTOR, base, 9), "last_name");
    /* A cursor belongs to its sort. */
    th_resp_t *r = http_get(DIRECTOR, fmt("%s&sort=-last_name&limit=10", base));
    const char *cur = jstr(r->json, "next_cursor");
    ck_assert_ptr_nonnull(cur);
    expect_status(http_get(DIRECTOR, fmt("%s&sort=-last_name&limit=10&cursor=%s", base, cur)), 200);
    expect_problem(http_get(DIRECTOR, fmt("%s&sort=last_name&limit=10&cursor=%s", base, cur)), 400, "bad-request");
    expect_problem(http_get(DIRECTOR, fmt("%s&sort=created_at&limit=10&cursor=%s", base, cur)), 400, "bad-request");
    /* Others see none of them. */
    r = http_get(REP2, fmt("%s&count=true", base));
    expect_status(r, 200);
    ck_assert_int_eq(jint(r->json, "total"), 0);
}
END_TEST

/*
 * A contact may have only a first name. Paging by last_name (the default
 * sort) must still list every contact exactly once: those without a last
 * name after the others ascending, before them descending.
 */
START_TEST(list_pages_by_last_name_include_contacts_without_one)
{
    cust_t c = make_cust(REP1);
    bulk_contacts(5, c, name_spread);
    bulk_contacts(4, c, name_none);
    bulk_contacts(3, c, name_same);
    const char *base = fmt("/v1/contacts?customer_id=%lld", c.id);
    th_resp_t *r = http_get(DIRECTOR, fmt("%s&limit=200&count=true", base));
    expect_status(r, 200);
    ck_assert_int_eq(jint(r->json, "total"), 12);
    json_t *one_page = jget(r, "data");
    ck_assert_int_eq(json_array_size(one_page), 12);
    expect_name_order(one_page, 0, "one page, sort=last_name");
    long long ids[12];
    for (size_t i = 0; i < 12; i++)
        ids[i] = jint(json_array_get(one_page, i), "id");
    static const int limits[] = {1, 2, 3, 5, 7, 11};
    for (size_t k = 0; k < sizeof(limits) / sizeof(limits[0]); k++) {
        for (int desc = 0; desc < 2; desc++) {
            const char *what = fmt("sort=%slast_name, pages of %d", desc ? "-" : "", limits[k]);
            json_t *items = keep(json_array());
            const char *cursor = NULL;
            for (int pages = 0; pages < 30; pages++) {
                const char *q = fmt("%s&sort=%slast_name&limit=%d%s%s", base, desc ? "-" : "", limits[k],
                                    cursor != NULL ? "&cursor=" : "", cursor != NULL ? cursor : "");
                r = http_get(DIRECTOR, q);
                expect_status(r, 200);
                json_array_extend(items, jget(r, "data"));
                if (json_is_null(jget(r, "next_cursor")))
                    break;
                cursor = jstr(r->json, "next_cursor");
            }
            ck_assert_msg(json_array_size(items) == 12, "%s: %zu contacts listed, wanted 12", what,
                          json_array_size(items));
            expect_ids(items, ids, 12);
            expect_name_order(items, desc, what);
        }
    }
}
END_TEST

/* --- bulk ----------------------------------------------------------------------------------------- */

START_TEST(bulk_upserts_json_and_ndjson)
{
    cust_t c1 = make_cust(REP1), c2 = make_cust(REPS);
    ct_t existing = make_contact(DIRECTOR, c1, "Existing", "{\"title\":\"Old\"}");
    const char *e1 = uniq("b1"), *e2 = uniq("b2");
    json_t *items = json_array();
    json_array_append_new(items, contact_doc(c1.id, e1, "Bea", "One"));
    json_array_append_new(items, contact_doc(c2.id, e2, NULL, "Two"));
    json_array_append_new(items, contact_doc(c2.id, existing.ext, NULL, "Moved"));
    th_resp_t *r = http_post(INTEGRATION, "/v1/contacts/bulk", jdump(items));
    expect_status(r, 200);
    ck_assert_int_eq(jint(r->json, "created"), 2);
    ck_assert_int_eq(jint(r->json, "updated"), 1);
    r = http_get(DIRECTOR, ctpath(existing.id));
    ck_assert_int_eq(jint(r->json, "customer_id"), c2.id);
    ck_assert_str_eq(jstr(r->json, "last_name"), "Moved");
    ck_assert(json_is_null(jget(r, "title")));
    ck_assert_int_eq(api_count(DIRECTOR, fmt("customer_id=%lld", c1.id)), 1);
    ck_assert_int_eq(api_count(DIRECTOR, fmt("customer_id=%lld", c2.id)), 2);

    const char *nd =
        fmt("%s\n\n%s\r\n%s", jdump(contact_doc(c1.id, e1, "Bea", "Uno")),
            jdump(contact_doc(c1.id, uniq("b3"), NULL, "Three")), jdump(contact_doc(c1.id, uniq("b4"), "Only", NULL)));
    r = call_as(INTEGRATION, "POST", "/v1/contacts/bulk", NDJSON_T, nd, NULL, NULL);
    expect_status(r, 200);
    ck_assert_int_eq(jint(r->json, "created"), 2);
    ck_assert_int_eq(jint(r->json, "updated"), 1);
    ck_assert_int_eq(api_count(DIRECTOR, fmt("customer_id=%lld", c1.id)), 3);
    ck_assert_int_eq(sql_ll("SELECT count(*) FROM contacts WHERE external_id = '%s' AND last_name = 'Uno'"
                            " AND deleted_at IS NULL",
                            e1),
                     1);
    r = call_as(INTEGRATION, "POST", "/v1/contacts/bulk", NDJSON_T,
                fmt("%s\nnot json\n", jdump(contact_doc(c1.id, uniq("b5"), NULL, "Five"))), NULL, NULL);
    expect_problem(r, 400, "bad-request");
    ck_assert_int_eq(api_count(DIRECTOR, fmt("customer_id=%lld", c1.id)), 3);
}
END_TEST

START_TEST(bulk_is_all_or_nothing)
{
    cust_t c = make_cust(REP1), other = make_cust(REP1), theirs = make_cust(REP2);
    ct_t elsewhere = make_contact(REP1, other, "Elsewhere", NULL);
    json_t *items = json_array();
    for (int i = 0; i < 20; i++)
        json_array_append_new(items, contact_doc(c.id, uniq("aon"), NULL, fmt("Item%d", i)));
    json_object_set_new(json_array_get(items, 3), "email", json_string("not-an-email"));
    json_object_del(json_array_get(items, 5), "last_name");
    json_object_set_new(json_array_get(items, 7), "colour", json_string("red"));
    json_object_del(json_array_get(items, 9), "external_id");
    json_object_set_new(json_array_get(items, 11), "external_id",
                        json_string(jstr(json_array_get(items, 10), "external_id")));
    json_object_set_new(json_array_get(items, 13), "birthday", json_string("2023-02-29"));
    json_object_del(json_array_get(items, 15), "customer_id");
    th_resp_t *r = http_post(REP1, "/v1/contacts/bulk", jdump(items));
    expect_problem(r, 422, "validation-failed");
    expect_error(r, "[3].email", "invalid_format");
    expect_error(r, "[5].last_name", "required");
    expect_error(r, "[7].colour", "unknown_field");
    expect_error(r, "[9].external_id", "required");
    expect_error(r, "[11].external_id", "duplicate");
    expect_error(r, "[13].birthday", "invalid_format");
    expect_error(r, "[15].customer_id", "required");
    ck_assert_int_eq(nerrors(r), 7);
    ck_assert_int_eq(api_count(DIRECTOR, fmt("customer_id=%lld", c.id)), 0);

    /* Items the statement refuses: a hidden customer, a manager elsewhere. Each named, nothing written. */
    items = json_array();
    json_array_append_new(items, contact_doc(c.id, uniq("ok"), NULL, "Fine"));
    json_array_append_new(items, contact_doc(theirs.id, uniq("x"), NULL, "Hidden"));
    json_t *bad_mgr = contact_doc(c.id, uniq("x"), NULL, "Sub");
    json_object_set_new(bad_mgr, "reports_to_id", json_integer(elsewhere.id));
    json_array_append_new(items, bad_mgr);
    r = http_post(REP1, "/v1/contacts/bulk", jdump(items));
    expect_problem(r, 422, "validation-failed");
    expect_error(r, "[1].customer_id", "invalid_reference");
    expect_error(r, "[2].reports_to_id", NULL);
    ck_assert_int_eq(nerrors(r), 2);
    ck_assert_int_eq(api_count(DIRECTOR, fmt("customer_id=%lld", c.id)), 0);
    expect_problem(http_post(REP1, "/v1/contacts/bulk", "[]"), 422, "validation-failed");
    r = http_post(REP1, "/v1/contacts/bulk", "[\"x\"]");
    expect_problem(r, 422, "validation-failed");
    expect_error(r, "[0]", "invalid_type");
    /* Within scope it goes through. */
    items = json_array();
    json_array_append_new(items, contact_doc(c.id, uniq("ok"), NULL, "Fine"));
    r = http_post(REP1, "/v1/contacts/bulk", jdump(items));
    expect_status(r, 200);
    ck_assert_int_eq(jint(r->json, "created"), 1);
}
END_TEST

/* --- the change feed --------------------------------------------------------------------------------- */

#define FEED "/v1/changes/contacts"

START_TEST(feed_lists_every_change_once_in_order_with_tombstones)
{
    cust_t c = make_cust(REP1);
    const char *cur = feed_head(DIRECTOR), *ccur = feed_head_of("/v1/changes/customers", DIRECTOR);
    ct_t x = make_contact(DIRECTOR, c, "Xavier", NULL);
    expect_status(http_patch(DIRECTOR, ctpath(x.id), "{\"title\":\"CTO\"}", NULL), 200);
    ct_t y = make_contact(DIRECTOR, c, "Yvonne", NULL);
    expect_status(http_delete(DIRECTOR, ctpath(x.id), NULL), 204);
    expect_status(http_put(DIRECTOR, xpath(y.ext), jdump(contact_doc(c.id, NULL, "Y", "Yvonne")), NULL), 200);
    expect_status(http_patch(DIRECTOR, ctpath(y.id), "{\"title\":\"x\"}", "\"1\""), 412);
    expect_status(http_patch(DIRECTOR, ctpath(y.id), "{\"first_name\":null,\"last_name\":null}", NULL), 422);

    json_t *ch = feed_since(DIRECTOR, &cur, 2);
    ck_assert_int_eq(json_array_size(ch), 5);
    expect_change(json_array_get(ch, 0), "create", x.id);
    ck_assert_str_eq(jstr(json_array_get(ch, 0), "external_id"), x.ext);
    ck_assert_str_eq(jstr(json_object_get(json_array_get(ch, 0), "data"), "last_name"), "Xavier");
    ck_assert_int_eq(jint(json_object_get(json_array_get(ch, 0), "data"), "customer_id"), c.id);
    expect_change(json_array_get(ch, 1), "update", x.id);
    ck_assert_str_eq(jstr(json_object_get(json_array_get(ch, 1), "data"), "title"), "CTO");
    expect_change(json_array_get(ch, 2), "create", y.id);
    expect_change(json_array_get(ch, 3), "delete", x.id);
    expect_change(json_array_get(ch, 4), "update", y.id);
    ck_assert_str_eq(jstr(json_object_get(json_array_get(ch, 4), "data"), "first_name"), "Y");
    /* Contacts are not customer changes. */
    th_resp_t *r = http_get(DIRECTOR, fmt("/v1/changes/customers?after=%s", ccur));
    expect_status(r, 200);
    ck_assert_int_eq(json_array_size(jget(r, "data")), 0);
    static const char *const bad[][2] = {
        {"limit=0", "limit"}, {"limit=1001", "limit"}, {"after=%%%%", "after"}, {"customer_id=1", "customer_id"}};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        r = http_get(DIRECTOR, fmt(FEED "?%s", bad[i][0]));
        expect_problem(r, 400, "bad-request");
        expect_error(r, bad[i][1], NULL);
    }
    expect_problem(http_get(-1, FEED), 401, "unauthenticated");
}
END_TEST

START_TEST(feed_applies_scopes)
{
    static const int readers[] = {REP1, REP2, REPS, MANAGER, DIRECTOR, ANALYST, INTEGRATION, ADMIN};
    const char *cur[NUSERS];
    cust_t cs[5];
    for (int i = 0; i < 5; i++)
        cs[i] = make_cust(owners5[i]);
    for (size_t i = 0; i < 8; i++)
        cur[readers[i]] = feed_head(readers[i]);
    ct_t t[5];
    for (int i = 0; i < 5; i++) {
        t[i] = make_contact(DIRECTOR, cs[i], fmt("Fed%d", i), NULL);
        expect_status(http_patch(DIRECTOR, ctpath(t[i].id), "{\"title\":\"Fed\"}", NULL), 200);
    }
    expect_status(http_delete(DIRECTOR, ctpath(t[0].id), NULL), 204); /* a contact of rep.north1's customer */
    for (size_t i = 0; i < 8; i++) {
        int a = readers[i];
        json_t *ch = feed_since(a, &cur[a], 3);
        size_t k = 0;
        for (int j = 0; j < 5; j++) {
            if (!can_read(a, cs[j].owner, cs[j].team))
                continue;
            expect_change(json_array_get(ch, k), "create", t[j].id);
            expect_change(json_array_get(ch, k + 1), "update", t[j].id);
            k += 2;
        }
        if (can_read(a, cs[0].owner, cs[0].team))
            expect_change(json_array_get(ch, k++), "delete", t[0].id);
        ck_assert_msg(json_array_size(ch) == k, "%s sees %zu changes, wanted %zu", who_name[a], json_array_size(ch), k);
    }
    /*
     * The customer moves: each reader sees its contact by the side of the move it can read. Within team north
     * (rep.north2 to rep.north1) the manager sees nothing; into team south the manager loses it too.
     */
    static const struct {
        int to, team_is_south, gone[2], came;
    } moves[] = {{REP1, 0, {REP2, -1}, REP1}, {REPS, 1, {REP1, MANAGER}, REPS}};
    for (size_t m = 0; m < 2; m++) {
        for (size_t i = 0; i < 8; i++)
            cur[readers[i]] = feed_head(readers[i]);
        expect_status(http_patch(DIRECTOR, custpath(cs[1].id),
                                 fmt("{\"owner_id\":%lld,\"team_id\":%lld}", users[moves[m].to].id,
                                     moves[m].team_is_south ? team_south : team_north),
                                 NULL),
                      200);
        for (size_t i = 0; i < 8; i++) {
            int a = readers[i];
            json_t *ch = feed_since(a, &cur[a], 10);
            const char *want = a == moves[m].gone[0] || a == moves[m].gone[1] ? "delete"
                               : a == moves[m].came                           ? "create"
                                                                              : NULL;
            ck_assert_msg(json_array_size(ch) == (want != NULL), "move %zu: %s sees %zu contact changes: %s", m,
                          who_name[a], json_array_size(ch), jdump(json_incref(ch)));
            if (want != NULL)
                expect_change(json_array_get(ch, 0), want, t[1].id);
        }
    }
}
END_TEST

/* --- the suite ------------------------------------------------------------------------------------------- */

static Suite *contacts_suite(void)
{
    Suite *s = suite_create("contacts");
    TCase *tc = tcase_create("scopes");
    tcase_set_timeout(tc, 180);
    tcase_add_test(tc, scope_reads_get_lists_and_counts);
    tcase_add_test(tc, scope_writes_patch_put_bulk_delete);
    tcase_add_test(tc, create_needs_a_customer_in_scope);
    suite_add_tcase(s, tc);

    tc = tcase_create("nested");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, nested_routes_list_and_create);
    suite_add_tcase(s, tc);

    tc = tcase_create("validation");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, validation_rules_of_each_field);
    suite_add_tcase(s, tc);

    tc = tcase_create("crud");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, crud_with_etags_and_preconditions);
    tcase_add_test(tc, put_by_external_id_upserts);
    suite_add_tcase(s, tc);

    tc = tcase_create("rules");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, one_primary_contact_per_customer);
    tcase_add_test(tc, concurrent_primaries_leave_one);
    tcase_add_test(tc, reports_to_names_a_live_contact_of_the_same_customer);
    tcase_add_test(tc, reports_to_refuses_cycles);
    tcase_add_test(tc, reports_to_refuses_cycles_within_a_bulk);
    tcase_add_test(tc, reports_to_refuses_cycles_made_at_the_same_time);
    tcase_add_test(tc, moving_a_manager_keeps_reports_within_their_customer);
    tcase_add_test(tc, deleting_a_customer_deletes_its_contacts);
    suite_add_tcase(s, tc);

    tc = tcase_create("lists");
    tcase_set_timeout(tc, 90);
    tcase_add_test(tc, list_filters);
    tcase_add_test(tc, list_sorts_break_ties_by_id);
    tcase_add_test(tc, list_pages_by_last_name_include_contacts_without_one);
    suite_add_tcase(s, tc);

    tc = tcase_create("bulk");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, bulk_upserts_json_and_ndjson);
    tcase_add_test(tc, bulk_is_all_or_nothing);
    suite_add_tcase(s, tc);

    tc = tcase_create("changes");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, feed_lists_every_change_once_in_order_with_tombstones);
    tcase_add_test(tc, feed_applies_scopes);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return crew_main(&conf, contacts_suite);
}
