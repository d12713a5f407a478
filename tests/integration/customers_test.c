/*
 * tests/integration/customers_test.c - /v1/customers and /v1/changes/customers
 * against the real API, PostgreSQL and Redis: the scope matrix of every
 * role, validation, the CRUD conventions (ETags, preconditions, upserts by
 * external id), lists and keyset pagination under concurrent writes, bulk
 * upserts, and the change feed while transactions commit out of order.
 *
 * crew_main() (tests/support/crew.c) builds the suite's database, adds one
 * user per role, starts one API process and logs every user in once
 * (argon2 is slow under ASan); Check forks each test, which inherits the
 * tokens and talks to the API over HTTP. Tests do not depend on each other:
 * each creates its own records, marked with a tag or external id unique to
 * its process, and filters lists by it. Expected scopes come from the
 * crew's oracle (owner and team compared directly), never from the API's
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
    /* 5,000-item bulks under the sanitizers on a busy 2-core machine take seconds: limits are not timings. */
    "CLIENTELE_DB_TIMEOUT=20s",
    "CLIENTELE_JWT_SECRET=customers-suite-secret-0123456789abcdefgh",
    NULL,
};

static const crew_conf_t conf = {
    .name = "customers",
    .redis_db = 4,
    .env = api_env,
    .password = "customers-suite-password",
    .domain = "customers.test",
    .resource = "customers",
    .item = "record",
};

/* --- customers ------------------------------------------------------------------ */

static const char *cpath(long long id)
{
    return fmt("/v1/customers/%lld", id);
}

typedef struct {
    long long id, owner, team;
    const char *ext, *name, *etag;
} rec_t;

/* Creates a customer as `as` from a JSON body; asserts 201. */
static rec_t create_body(int as, const char *body)
{
    th_resp_t *r = http_post(as, "/v1/customers", body);
    expect_status(r, 201);
    rec_t c = {jint(r->json, "id"),          jint(r->json, "owner_id"), jint(r->json, "team_id"),
               jstr(r->json, "external_id"), jstr(r->json, "name"),     header(r, "etag")};
    ck_assert_int_gt(c.id, 0);
    return c;
}

/* Creates a company owned by `owner` (team derived), tagged, with a unique external id; as the director. */
static rec_t make_customer(int owner, const char *tag)
{
    const char *ext = uniq("ext");
    json_t *b = json_pack("{s:s, s:s, s:s, s:I, s:[s]}", "kind", "company", "name", fmt("Customer %s", ext),
                          "external_id", ext, "owner_id", (json_int_t)users[owner].id, "tags", tag);
    return create_body(DIRECTOR, jdump(b));
}

/* --- 1. scopes ------------------------------------------------------------------ */

static const int owners5[] = {REP1, REP2, REPS, MANAGER, DIRECTOR};

START_TEST(scope_reads_get_lists_and_counts)
{
    const char *tag = uniq("scope-read");
    rec_t rec[5];
    for (int i = 0; i < 5; i++)
        rec[i] = make_customer(owners5[i], tag);
    ck_assert_int_eq(rec[0].team, team_north);
    ck_assert_int_eq(rec[2].team, team_south);

    for (int a = 0; a < NUSERS; a++) {
        long long want[5];
        size_t n = 0;
        for (int i = 0; i < 5; i++) {
            th_resp_t *r = http_get(a, cpath(rec[i].id));
            if (can_read(a, rec[i].owner, rec[i].team)) {
                want[n++] = rec[i].id;
                expect_status_msg(r, 200, "%s reads %s's record", who_name[a], who_name[owners5[i]]);
                ck_assert_int_eq(jint(r->json, "id"), rec[i].id);
            } else {
                /* Outside the read scope a record does not exist: 404, never 403. */
                expect_status_msg(r, 404, "%s reads %s's record", who_name[a], who_name[owners5[i]]);
                expect_problem(r, 404, "not-found");
            }
        }
        th_resp_t *r = http_get(a, fmt("/v1/customers?tag=%s&count=true&limit=200", tag));
        expect_status(r, 200);
        expect_ids(jget(r, "data"), want, n);
        ck_assert_msg(jint(r->json, "total") == (long long)n, "%s: total %lld, visible %zu", who_name[a],
                      jint(r->json, "total"), n);
        /* Totals over everything in the database, against the oracle. */
        long long expected =
            sql_ll("SELECT count(*) FROM customers WHERE deleted_at IS NULL AND %s", scope_where(a, ""));
        ck_assert_msg(api_count(a, "") == expected, "%s: count=true total differs from the %lld visible rows",
                      who_name[a], expected);
        /* Pages hold only visible rows too. */
        json_t *paged = list_all(a, fmt("/v1/customers?tag=%s", tag), 2);
        expect_ids(paged, want, n);
    }
}
END_TEST

START_TEST(scope_writes_patch_put_bulk_delete)
{
    static const int actors[] = {REP1, MANAGER, DIRECTOR, ANALYST, INTEGRATION, REPS};
    for (size_t ai = 0; ai < sizeof(actors) / sizeof(actors[0]); ai++) {
        int a = actors[ai];
        const char *tag = uniq("scope-write");
        for (int i = 0; i < 5; i++) {
            rec_t c = make_customer(owners5[i], tag);
            int rd = can_read(a, c.owner, c.team), wr = can_write(a, c.owner, c.team);
            int want = !rd ? 404 : !wr ? 403 : 200;
            const char *who = fmt("%s on %s's record", who_name[a], who_name[owners5[i]]);
            long long v = 1;

            th_resp_t *r = http_patch(a, cpath(c.id), "{\"industry\":\"patched\"}", NULL);
            expect_status_msg(r, want, "PATCH, %s", who);
            if (want != 200)
                expect_problem(r, want, want == 404 ? "not-found" : "forbidden");
            v += want == 200;
            ck_assert_msg(version_of(c.id) == v, "PATCH, %s: version %lld, wanted %lld", who, version_of(c.id), v);

            /* An external id held by a record the caller cannot see answers like any other conflict. */
            const char *put = jdump(json_pack("{s:s, s:s, s:[s]}", "kind", "person", "name", "Put Name", "tags", tag));
            r = http_put(a, xpath(c.ext), put, NULL);
            expect_status_msg(r, want == 404 ? 409 : want, "PUT by external id, %s", who);
            if (want == 404)
                expect_problem(r, 409, "conflict");
            if (want == 200) {
                ck_assert_int_eq(jint(r->json, "id"), c.id);
                ck_assert_int_eq(jint(r->json, "owner_id"), c.owner); /* owner kept when absent */
            }
            v += want == 200;
            ck_assert_msg(version_of(c.id) == v, "PUT, %s: version %lld, wanted %lld", who, version_of(c.id), v);

            const char *bulk = jdump(json_pack("[{s:s, s:s, s:s, s:[s]}]", "external_id", c.ext, "kind", "company",
                                               "name", "Bulk Name", "tags", tag));
            r = http_post(a, "/v1/customers/bulk", bulk);
            if (wr) {
                expect_status_msg(r, 200, "bulk, %s", who);
                ck_assert_int_eq(jint(r->json, "created"), 0);
                ck_assert_int_eq(jint(r->json, "updated"), 1);
                v++;
            } else if (!rd) {
                expect_status_msg(r, 422, "bulk, %s", who);
                expect_error(r, "[0].external_id", "duplicate");
            } else {
                /* A role without write access at all: see analyst_writes_are_403 for the exact status. */
                ck_assert_msg(r->status == 403 || r->status == 422, "bulk, %s: %d", who, r->status);
            }
            ck_assert_msg(version_of(c.id) == v, "bulk, %s: version %lld, wanted %lld", who, version_of(c.id), v);

            r = http_delete(a, cpath(c.id), NULL);
            expect_status_msg(r, want == 200 ? 204 : want, "DELETE, %s", who);
            ck_assert_int_eq(is_deleted(c.id), want == 200);
            if (want != 200)
                ck_assert_int_eq(version_of(c.id), v);
        }
    }
}
END_TEST

START_TEST(analyst_writes_are_403)
{
    const char *tag = uniq("analyst");
    rec_t c = make_customer(REP1, tag);
    long long before = api_count(DIRECTOR, "");
    th_resp_t *r = http_post(ANALYST, "/v1/customers", "{\"kind\":\"person\",\"name\":\"Analyst Made\"}");
    expect_problem(r, 403, "forbidden");
    r = http_patch(ANALYST, cpath(c.id), "{\"name\":\"x\"}", NULL);
    expect_problem(r, 403, "forbidden");
    r = http_put(ANALYST, xpath(c.ext), "{\"kind\":\"person\",\"name\":\"x\"}", NULL);
    expect_problem(r, 403, "forbidden");
    r = http_put(ANALYST, xpath(uniq("analyst-new")), "{\"kind\":\"person\",\"name\":\"x\"}", NULL);
    expect_problem(r, 403, "forbidden");
    r = http_delete(ANALYST, cpath(c.id), NULL);
    expect_problem(r, 403, "forbidden");
    ck_assert_int_eq(version_of(c.id), 1);
    ck_assert_int_eq(is_deleted(c.id), 0);
    ck_assert_int_eq(api_count(DIRECTOR, ""), before);
    /* Bulk: the role may not write customers at all, so the request is forbidden as a whole. */
    const char *bulk =
        jdump(json_pack("[{s:s, s:s, s:s}, {s:s, s:s, s:s}]", "external_id", c.ext, "kind", "company", "name", "B1",
                        "external_id", uniq("analyst-bulk"), "kind", "company", "name", "B2"));
    r = http_post(ANALYST, "/v1/customers/bulk", bulk);
    ck_assert_int_eq(version_of(c.id), 1);
    ck_assert_int_eq(api_count(DIRECTOR, ""), before);
    expect_problem(r, 403, "forbidden");
}
END_TEST

START_TEST(create_assigns_owner_and_team)
{
    const char *name = uniq("Owned");
    /* A rep creating a customer owns it, in the rep's team. */
    rec_t c = create_body(REP1, jdump(json_pack("{s:s, s:s}", "kind", "person", "name", name)));
    ck_assert_int_eq(c.owner, users[REP1].id);
    ck_assert_int_eq(c.team, team_north);

    long long before = api_count(DIRECTOR, "");
    th_resp_t *r = http_post(REP1, "/v1/customers",
                             jdump(json_pack("{s:s, s:s, s:I}", "kind", "person", "name", uniq("Given"), "owner_id",
                                             (json_int_t)users[REP2].id)));
    expect_problem(r, 403, "forbidden");
    r = http_post(REPS, "/v1/customers",
                  jdump(json_pack("{s:s, s:s, s:I}", "kind", "person", "name", uniq("Given"), "owner_id",
                                  (json_int_t)users[REP1].id)));
    expect_problem(r, 403, "forbidden");
    ck_assert_int_eq(api_count(DIRECTOR, ""), before);

    /* A manager owns what they create without naming an owner, and may assign a team-mate. */
    c = create_body(MANAGER, jdump(json_pack("{s:s, s:s}", "kind", "company", "name", uniq("Mgr"))));
    ck_assert_int_eq(c.owner, users[MANAGER].id);
    ck_assert_int_eq(c.team, team_north);
    c = create_body(MANAGER, jdump(json_pack("{s:s, s:s, s:I}", "kind", "company", "name", uniq("Mgr"), "owner_id",
                                             (json_int_t)users[REP2].id)));
    ck_assert_int_eq(c.owner, users[REP2].id);
    ck_assert_int_eq(c.team, team_north);
    /* ... but not someone in another team, nor place a record in another team. */
    before = api_count(DIRECTOR, "");
    r = http_post(MANAGER, "/v1/customers",
                  jdump(json_pack("{s:s, s:s, s:I}", "kind", "company", "name", uniq("Mgr"), "owner_id",
                                  (json_int_t)users[REPS].id)));
    expect_problem(r, 403, "forbidden");
    r = http_post(
        MANAGER, "/v1/customers",
        jdump(json_pack("{s:s, s:s, s:I}", "kind", "company", "name", uniq("Mgr"), "team_id", (json_int_t)team_south)));
    expect_problem(r, 403, "forbidden");
    ck_assert_int_eq(api_count(DIRECTOR, ""), before);

    /* Upserts that create follow the same rules. */
    const char *ext = uniq("rep-put");
    r = http_put(REP1, xpath(ext), "{\"kind\":\"person\",\"name\":\"Upserted\"}", NULL);
    expect_status(r, 201);
    ck_assert_int_eq(jint(r->json, "owner_id"), users[REP1].id);
    ck_assert_int_eq(jint(r->json, "team_id"), team_north);
    ext = uniq("rep-put");
    r = http_put(REP1, xpath(ext), fmt("{\"kind\":\"person\",\"name\":\"Upserted\",\"owner_id\":%lld}", users[REP2].id),
                 NULL);
    expect_problem(r, 403, "forbidden");
    ck_assert_int_eq(sql_ll("SELECT count(*) FROM customers WHERE external_id = '%s'", ext), 0);

    /* Scope "all" may place anywhere; the team follows the owner. */
    c = create_body(DIRECTOR, jdump(json_pack("{s:s, s:s, s:I}", "kind", "company", "name", uniq("Dir"), "owner_id",
                                              (json_int_t)users[REPS].id)));
    ck_assert_int_eq(c.owner, users[REPS].id);
    ck_assert_int_eq(c.team, team_south);
    c = create_body(INTEGRATION, jdump(json_pack("{s:s, s:s, s:I}", "kind", "company", "name", uniq("Erp"), "owner_id",
                                                 (json_int_t)users[REP1].id)));
    ck_assert_int_eq(c.owner, users[REP1].id);
    ck_assert_int_eq(c.team, team_north);

    /* Owners and teams that do not exist are named. */
    before = api_count(DIRECTOR, "");
    r = http_post(DIRECTOR, "/v1/customers", "{\"kind\":\"company\",\"name\":\"Ghost Owner\",\"owner_id\":987654321}");
    expect_problem(r, 422, "validation-failed");
    expect_error(r, "owner_id", NULL);
    r = http_post(DIRECTOR, "/v1/customers", "{\"kind\":\"company\",\"name\":\"Ghost Team\",\"team_id\":987654321}");
    expect_problem(r, 422, "validation-failed");
    expect_error(r, "team_id", NULL);
    ck_assert_int_eq(api_count(DIRECTOR, ""), before);
}
END_TEST

START_TEST(moving_needs_update_scope_on_old_and_new_place)
{
    const char *tag = uniq("move");
    rec_t a = make_customer(REP1, tag), s = make_customer(REPS, tag);
    const char *rep2 = fmt("{\"owner_id\":%lld}", users[REP2].id);

    /* A rep may not give a record away: the new place is outside "own". */
    th_resp_t *r = http_patch(REP1, cpath(a.id), rep2, NULL);
    expect_problem(r, 403, "forbidden");
    ck_assert_int_eq(version_of(a.id), 1);
    r = http_put(
        REP1, xpath(a.ext),
        jdump(json_pack("{s:s, s:s, s:I}", "kind", "company", "name", "x", "owner_id", (json_int_t)users[REP2].id)),
        NULL);
    expect_problem(r, 403, "forbidden");
    ck_assert_int_eq(version_of(a.id), 1);

    /* A manager may move between team-mates ... */
    r = http_patch(MANAGER, cpath(a.id), rep2, NULL);
    expect_status(r, 200);
    ck_assert_int_eq(jint(r->json, "owner_id"), users[REP2].id);
    ck_assert_int_eq(jint(r->json, "team_id"), team_north);
    ck_assert_int_eq(http_get(REP1, cpath(a.id))->status, 404);
    ck_assert_int_eq(http_get(REP2, cpath(a.id))->status, 200);
    /* ... but not into another team, and not out of another team. */
    r = http_patch(MANAGER, cpath(a.id), fmt("{\"team_id\":%lld}", team_south), NULL);
    expect_problem(r, 403, "forbidden");
    r = http_patch(MANAGER, cpath(a.id), fmt("{\"owner_id\":%lld,\"team_id\":%lld}", users[REPS].id, team_south), NULL);
    expect_problem(r, 403, "forbidden");
    ck_assert_int_eq(version_of(a.id), 2);
    r = http_patch(MANAGER, cpath(s.id), fmt("{\"owner_id\":%lld,\"team_id\":%lld}", users[REP1].id, team_north), NULL);
    expect_problem(r, 404, "not-found");
    ck_assert_int_eq(version_of(s.id), 1);
    /* Bulk moves follow the same rule. */
    r = http_post(MANAGER, "/v1/customers/bulk",
                  jdump(json_pack("[{s:s, s:s, s:s, s:I}]", "external_id", a.ext, "kind", "company", "name", "m",
                                  "team_id", (json_int_t)team_south)));
    expect_problem(r, 422, "validation-failed");
    expect_error(r, "[0]", NULL);
    ck_assert_int_eq(version_of(a.id), 2);

    /* Scope "all" moves anywhere. */
    r = http_patch(DIRECTOR, cpath(a.id), fmt("{\"owner_id\":%lld,\"team_id\":%lld}", users[REPS].id, team_south),
                   NULL);
    expect_status(r, 200);
    ck_assert_int_eq(http_get(MANAGER, cpath(a.id))->status, 404);
    ck_assert_int_eq(http_get(REPS, cpath(a.id))->status, 200);
}
END_TEST

/*
 * A record's owner must be someone the writer may place it with: a manager
 * may assign team-mates only, and a rep's records stay in the rep's team.
 * Naming the owner and the team separately must not get around that.
 */
START_TEST(owner_outside_the_writers_team_is_refused)
{
    const char *tag = uniq("placement"), *bad = "";
    long long before = api_count(DIRECTOR, "");
    th_resp_t *r =
        http_post(MANAGER, "/v1/customers",
                  jdump(json_pack("{s:s, s:s, s:I, s:I, s:[s]}", "kind", "company", "name", uniq("P"), "owner_id",
                                  (json_int_t)users[REPS].id, "team_id", (json_int_t)team_north, "tags", tag)));
    if (r->status != 403)
        bad = fmt("%sPOST by manager.north with owner_id=rep.south1, team_id=north answered %d (want 403). ", bad,
                  r->status);
    rec_t a = make_customer(REP1, tag);
    r = http_patch(MANAGER, cpath(a.id), fmt("{\"owner_id\":%lld}", users[REPS].id), NULL);
    if (r->status != 403)
        bad = fmt("%sPATCH by manager.north of rep.north1's record with owner_id=rep.south1 answered %d (want 403). ",
                  bad, r->status);
    else if (version_of(a.id) != 1)
        bad = fmt("%srefused PATCH changed the record. ", bad);
    r = http_post(REP1, "/v1/customers",
                  jdump(json_pack("{s:s, s:s, s:I, s:[s]}", "kind", "company", "name", uniq("P"), "team_id",
                                  (json_int_t)team_south, "tags", tag)));
    if (r->status != 403)
        bad = fmt("%sPOST by rep.north1 with team_id=south answered %d (want 403). ", bad, r->status);
    long long after = api_count(DIRECTOR, "");
    if (after != before + 1)
        bad = fmt("%s%lld record(s) written by refused requests. ", bad, after - before - 1);
    ck_assert_msg(*bad == '\0', "%s", bad);
}
END_TEST

/* --- 2. validation -------------------------------------------------------------- */

/*
 * The scope matrix of moves: every actor moves fresh records between every
 * pair of places. A move is allowed only when the actor may write the
 * record where it is, may file records at the destination, and no team
 * that covered the record loses it (unless the actor sees everything):
 * a rep cannot hide a customer from their manager by clearing its team.
 */
typedef struct {
    int owner;      /* crew index */
    long long team; /* 0: none */
} place_t;

static int may_place(int a, const place_t *p)
{
    long long oteam = users[p->owner].team_id;
    switch (a) {
    case DIRECTOR:
        return 1;
    case MANAGER:
        return p->team == users[MANAGER].team_id && oteam == users[MANAGER].team_id;
    default:
        return users[p->owner].id == users[a].id && p->team == users[a].team_id;
    }
}

static const char *place_body(const place_t *p)
{
    return p->team != 0 ? fmt("{\"owner_id\":%lld,\"team_id\":%lld}", users[p->owner].id, p->team)
                        : fmt("{\"owner_id\":%lld,\"team_id\":null}", users[p->owner].id);
}

START_TEST(moves_never_leave_a_covering_scope)
{
    const place_t places[] = {
        {REP1, 0}, {REP1, 0}, {REP2, 0}, {REPS, 0}, {MANAGER, 0}, {DIRECTOR, 0}, {REP1, 0},
    };
    place_t p[7];
    memcpy(p, places, sizeof(p));
    p[0].team = team_north;
    p[1].team = team_south; /* REP1's record filed under another team by the director */
    p[2].team = team_north;
    p[3].team = team_south;
    p[4].team = team_north;
    p[5].team = 0;
    p[6].team = 0; /* REP1's record under no team (filed before teams were kept) */
    const size_t np = sizeof(p) / sizeof(p[0]);
    static const int actors[] = {REP1, REPS, MANAGER, DIRECTOR};
    const char *tag = uniq("moves");
    for (size_t ai = 0; ai < sizeof(actors) / sizeof(actors[0]); ai++) {
        int a = actors[ai];
        for (size_t si = 0; si < np; si++) {
            for (size_t di = 0; di < np; di++) {
                if (si == di || (p[si].owner == p[di].owner && p[si].team == p[di].team))
                    continue;
                rec_t c = make_customer(p[si].owner, tag);
                if (p[si].team != c.team) {
                    if (p[si].team == 0)
                        ck_assert_int_eq(
                            th_sql(db_url, fmt("UPDATE customers SET team_id = NULL WHERE id = %lld", c.id)), 0);
                    else
                        expect_status(http_patch(DIRECTOR, cpath(c.id), fmt("{\"team_id\":%lld}", p[si].team), NULL),
                                      200);
                }
                long long v = version_of(c.id);
                int rd = can_read(a, users[p[si].owner].id, p[si].team);
                int wr = can_write(a, users[p[si].owner].id, p[si].team);
                int ok = may_place(a, &p[di]) && (a == DIRECTOR || p[si].team == 0 || p[di].team == p[si].team);
                int want = !rd ? 404 : !wr || !ok ? 403 : 200;
                const char *who = fmt("%s moves %s's record (team %lld) to %s", who_name[a], who_name[p[si].owner],
                                      p[si].team, place_body(&p[di]));
                th_resp_t *r = http_patch(a, cpath(c.id), place_body(&p[di]), NULL);
                expect_status_msg(r, want, "%s", who);
                ck_assert_msg(version_of(c.id) == v + (want == 200), "%s: version changed", who);
                if (want == 200) {
                    ck_assert_int_eq(jint(r->json, "owner_id"), users[p[di].owner].id);
                    ck_assert_msg(p[di].team == 0 ? json_is_null(jget(r, "team_id"))
                                                  : jint(r->json, "team_id") == p[di].team,
                                  "%s: team", who);
                }
            }
        }
    }
}
END_TEST

/* The issue as reported, on every write path: a rep clears the team of their own customer. */
START_TEST(rep_cannot_hide_a_record_from_the_team)
{
    const char *tag = uniq("hide");
    rec_t c = make_customer(REP1, tag);
    ck_assert_int_eq(c.team, team_north);
    expect_problem(http_patch(REP1, cpath(c.id), "{\"team_id\":null}", NULL), 403, "forbidden");
    /* In a replacement by external id a null team means "keep it", as an ERP does not know CRM teams. */
    th_resp_t *r = http_put(REP1, xpath(c.ext),
                            jdump(json_pack("{s:s, s:s, s:n}", "kind", "company", "name", "Hidden", "team_id")), NULL);
    expect_status(r, 200);
    ck_assert_int_eq(jint(r->json, "team_id"), team_north);
    r = http_post(REP1, "/v1/customers/bulk",
                  jdump(json_pack("[{s:s, s:s, s:s, s:n}]", "external_id", c.ext, "kind", "company", "name", "Hidden",
                                  "team_id")));
    expect_status(r, 200); /* the same in bulk */
    ck_assert_int_eq(version_of(c.id), 3);
    expect_status(http_get(MANAGER, cpath(c.id)), 200);
    ck_assert_int_eq(jint(http_get(MANAGER, cpath(c.id))->json, "team_id"), team_north);
    expect_status(http_get(MANAGER, cpath(c.id)), 200);
    /* Creating straight into no team is refused too. */
    r = http_post(REP1, "/v1/customers",
                  jdump(json_pack("{s:s, s:s, s:n}", "kind", "company", "name", uniq("Nowhere"), "team_id")));
    ck_assert_msg(r->status == 201 ? jint(r->json, "team_id") == team_north : r->status == 403,
                  "create with team_id null: %d", r->status);
}
END_TEST

/*
 * A customer's document embeds analytics results, which runs change without
 * touching the record: its ETag follows the document, so If-None-Match never
 * answers 304 with stale scores, while If-Match (writes) still compares the
 * record's version, and weak tags never match (RFC 9110 strong comparison).
 */
START_TEST(etags_follow_embedded_results)
{
    rec_t c = make_customer(REP1, uniq("etag"));
    th_resp_t *r = http_get(REP1, cpath(c.id));
    expect_status(r, 200);
    const char *e1 = header(r, "etag");
    ck_assert_str_eq(e1, "\"1\"");
    expect_status(call_as(REP1, "GET", cpath(c.id), NULL, NULL, fmt("If-None-Match: %s", e1), NULL), 304);

    /* A run scores the customer. */
    ck_assert_int_eq(th_sql(db_url, fmt("INSERT INTO customer_analytics (customer_id, run_id, computed_at, segment,"
                                        " lifecycle) VALUES (%lld, 9001, now(), 'champions', 'active')",
                                        c.id)),
                     0);
    r = call_as(REP1, "GET", cpath(c.id), NULL, NULL, fmt("If-None-Match: %s", e1), NULL);
    expect_status(r, 200);
    ck_assert_str_eq(jstr(jget(r, "analytics"), "segment"), "champions");
    const char *e2 = header(r, "etag");
    ck_assert_str_ne(e2, e1);
    expect_status(call_as(REP1, "GET", cpath(c.id), NULL, NULL, fmt("If-None-Match: W/%s", e2), NULL), 304);
    expect_status(call_as(REP1, "GET", cpath(c.id), NULL, NULL, fmt("If-None-Match: \"x\", %s", e2), NULL), 304);

    /* A later run (another kind too) changes it again. */
    ck_assert_int_eq(th_sql(db_url, fmt("INSERT INTO customer_clv (customer_id, run_id, computed_at, horizon,"
                                        " time_unit, lifecycle) VALUES (%lld, 9002, now(), 52, 'week', 'active')",
                                        c.id)),
                     0);
    r = call_as(REP1, "GET", cpath(c.id), NULL, NULL, fmt("If-None-Match: %s", e2), NULL);
    expect_status(r, 200);
    const char *e3 = header(r, "etag");
    ck_assert_str_ne(e3, e2);
    ck_assert_str_ne(e3, e1);

    /* Writes compare the record version: the tag of the scored document still matches... */
    expect_problem(http_patch(REP1, cpath(c.id), "{\"industry\":\"x\"}", fmt("W/%s", e3)), 412, "precondition-failed");
    expect_problem(http_patch(REP1, cpath(c.id), "{\"industry\":\"x\"}", "W/\"1\""), 412, "precondition-failed");
    ck_assert_int_eq(version_of(c.id), 1);
    r = http_patch(REP1, cpath(c.id), "{\"industry\":\"x\"}", e3);
    expect_status(r, 200);
    const char *e4 = header(r, "etag");
    /* ... and the answer's tag is the new document's, results included. */
    ck_assert_str_ne(e4, e3);
    ck_assert_ptr_nonnull(strstr(e4, "-r9001"));
    ck_assert_str_eq(e4, header(http_get(REP1, cpath(c.id)), "etag"));
    /* The old tag no longer matches. */
    expect_problem(http_patch(REP1, cpath(c.id), "{\"industry\":\"y\"}", e3), 412, "precondition-failed");
    expect_problem(http_delete(REP1, cpath(c.id), e3), 412, "precondition-failed");
    expect_status(http_delete(REP1, cpath(c.id), e4), 204);
}
END_TEST

/* The ids a query returns, in order (kept). */
static json_t *sql_ids(const char *sql)
{
    PGconn *c = pg_open();
    PGresult *res = PQexec(c, sql);
    ck_assert_int_eq(PQresultStatus(res), PGRES_TUPLES_OK);
    json_t *ids = json_array();
    for (int i = 0; i < PQntuples(res); i++)
        json_array_append_new(ids, json_integer(strtoll(PQgetvalue(res, i, 0), NULL, 10)));
    PQclear(res);
    PQfinish(c);
    keep(ids);
    return ids;
}

/*
 * Cursors never carry more than a short sort key: names of 200 four-byte
 * characters (valid: 200 code points) page in both directions, the API
 * stays up, cursors stay short, and a cursor edited by a client is refused.
 */
START_TEST(cursors_survive_names_of_four_byte_characters)
{
    const char *tag = uniq("wide");
    const char *emoji = "\xF0\x9F\x98\x80", *other = "\xF0\xA0\x80\x80"; /* U+1F600, U+20000 (CJK ext. B) */
    char *wide = malloc(200 * 4 + 1), *wide2 = malloc(200 * 4 + 1);
    keep(wide);
    keep(wide2);
    for (int i = 0; i < 200; i++) {
        memcpy(wide + 4 * i, emoji, 4);
        memcpy(wide2 + 4 * i, i < 199 ? emoji : other, 4);
    }
    wide[800] = wide2[800] = '\0';
    const char *names[] = {wide, wide2, wide, "A short one", wide2, wide};
    const size_t n = sizeof(names) / sizeof(names[0]);
    for (size_t i = 0; i < n; i++) {
        json_t *b = json_pack("{s:s, s:s, s:[s]}", "kind", "company", "name", names[i], "tags", tag);
        create_body(DIRECTOR, jdump(b));
    }
    for (int desc = 0; desc <= 1; desc++) {
        for (int limit = 1; limit <= 2; limit++) {
            json_t *want = sql_ids(fmt("SELECT id FROM customers WHERE tags @> ARRAY['%s'] AND deleted_at IS NULL"
                                       " ORDER BY name %s, id %s",
                                       tag, desc ? "DESC" : "ASC", desc ? "DESC" : "ASC"));
            const char *cursor = NULL;
            size_t seen = 0;
            for (int page = 0; page < 20; page++) {
                const char *path = fmt("/v1/customers?tag=%s&sort=%sname&limit=%d%s%s", urlenc(tag), desc ? "-" : "",
                                       limit, cursor ? "&cursor=" : "", cursor ? urlenc(cursor) : "");
                th_resp_t *r = http_get(DIRECTOR, path);
                expect_status(r, 200);
                json_t *data = jget(r, "data"), *it;
                size_t k;
                json_array_foreach(data, k, it)
                {
                    ck_assert_msg(seen < json_array_size(want), "more rows than exist");
                    ck_assert_int_eq(jint(it, "id"), json_integer_value(json_array_get(want, seen)));
                    seen++;
                }
                json_t *next = jget(r, "next_cursor");
                if (json_is_null(next))
                    break;
                cursor = json_string_value(next);
                ck_assert_msg(strlen(cursor) < 512, "cursor of %zu characters", strlen(cursor));
            }
            ck_assert_int_eq(seen, json_array_size(want));
        }
    }
    expect_status(http_get(DIRECTOR, "/healthz"), 200);

    /* A cursor is the server's: any edit is refused, naming the parameter. */
    th_resp_t *r = http_get(DIRECTOR, fmt("/v1/customers?tag=%s&sort=name&limit=1", urlenc(tag)));
    char *cur = strdup(jstr(r->json, "next_cursor"));
    keep(cur);
    cur[3] = cur[3] == 'A' ? 'B' : 'A';
    r = http_get(DIRECTOR, fmt("/v1/customers?tag=%s&sort=name&limit=1&cursor=%s", urlenc(tag), urlenc(cur)));
    expect_problem(r, 400, "bad-request");
    expect_error(r, "cursor", "invalid_value");
}
END_TEST

START_TEST(validation_reports_every_error_at_once)
{
    long long before = api_count(DIRECTOR, "");
    th_resp_t *r = http_post(
        REP1, "/v1/customers",
        "{\"id\":5,\"kind\":\"alien\",\"name\":\"\",\"email\":\"nope\",\"phone\":\"x\","
        "\"address\":{\"country\":\"XX\",\"zip\":\"1\"},\"status\":\"vip\",\"tags\":[\"ok\",\"\"],\"attrs\":\"str\","
        "\"credit_limit\":\"1.234\",\"owner_id\":0,\"team_id\":-2,\"created_at\":\"2024-01-01T00:00:00Z\","
        "\"shoe_size\":44}");
    expect_problem(r, 422, "validation-failed");
    static const char *const want[][2] = {
        {"id", "read_only"},
        {"kind", "invalid_value"},
        {"name", "too_short"},
        {"email", "invalid_format"},
        {"phone", "invalid_format"},
        {"address.country", "invalid_format"},
        {"address.zip", "unknown_field"},
        {"status", "invalid_value"},
        {"tags[1]", "too_short"},
        {"attrs", "invalid_type"},
        {"credit_limit", "out_of_range"},
        {"owner_id", "out_of_range"},
        {"team_id", "out_of_range"},
        {"created_at", "read_only"},
        {"shoe_size", "unknown_field"},
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
        expect_error(r, want[i][0], want[i][1]);
    ck_assert_int_eq(nerrors(r), sizeof(want) / sizeof(want[0]));
    ck_assert_int_eq(api_count(DIRECTOR, ""), before);
}
END_TEST

START_TEST(validation_rules_of_each_field)
{
    const char *name201 = fmt("\"%s\"", repeat('n', 201));
    const char *tag51 = fmt("[\"%s\"]", repeat('t', 51));
    char *many = keep(malloc(51 * 6 + 8)), *p = many;
    p += sprintf(p, "[");
    for (int i = 0; i < 51; i++)
        p += sprintf(p, "%s\"t%d\"", i ? "," : "", i);
    sprintf(p, "]");
    const char *big_attrs = fmt("{\"b\":\"%s\"}", repeat('a', 16377)); /* 16385 bytes compact */
    static const char *const base = "{\"kind\":\"person\",\"name\":\"Valid Name\"}";
    const struct {
        const char *key, *value, *field, *code;
    } cases[] = {
        {"kind", NULL, "kind", "required"},
        {"kind", "null", "kind", "required"},
        {"kind", "\"robot\"", "kind", "invalid_value"},
        {"kind", "\"Person\"", "kind", "invalid_value"},
        {"name", NULL, "name", "required"},
        {"name", "\"\"", "name", "too_short"},
        {"name", "\"   \"", "name", "too_short"},
        {"name", name201, "name", "too_long"},
        {"name", "42", "name", "invalid_type"},
        {"name", "\"line\\nbreak\"", "name", "invalid_format"},
        {"email", "\"nobody\"", "email", "invalid_format"},
        {"email", "\"a@b\"", "email", "invalid_format"},
        {"email", "\"a b@example.com\"", "email", "invalid_format"},
        {"email", "\"two@@example.com\"", "email", "invalid_format"},
        {"phone", "\"12\"", "phone", "invalid_format"},
        {"phone", "\"call me\"", "phone", "invalid_format"},
        {"phone", "\"+49 (30 1234\"", "phone", "invalid_format"},
        {"phone", "\"30+49\"", "phone", "invalid_format"},
        {"address", "{\"country\":\"XX\"}", "address.country", "invalid_format"},
        {"address", "{\"country\":\"de\"}", "address.country", "invalid_format"},
        {"address", "{\"country\":\"DEU\"}", "address.country", "invalid_format"},
        {"address", "{\"planet\":\"Mars\"}", "address.planet", "unknown_field"},
        {"address", "{\"city\":7}", "address.city", "invalid_type"},
        {"address", "\"Berlin\"", "address", "invalid_type"},
        {"status", "\"vip\"", "status", "invalid_value"},
        {"status", "null", "status", "invalid_type"},
        {"tags", "\"a\"", "tags", "invalid_type"},
        {"tags", "[1]", "tags[0]", "invalid_type"},
        {"tags", "[\"ok\",\"\"]", "tags[1]", "too_short"},
        {"tags", tag51, "tags[0]", "too_long"},
        {"tags", many, "tags", "too_many"},
        {"attrs", "[]", "attrs", "invalid_type"},
        {"attrs", "\"x\"", "attrs", "invalid_type"},
        {"attrs", big_attrs, "attrs", "too_large"},
        {"credit_limit", "\"12.345\"", "credit_limit", "out_of_range"},
        {"credit_limit", "true", "credit_limit", "invalid_type"},
        {"credit_limit", "12.505", "credit_limit", "out_of_range"},
        {"credit_limit", "\"1e3\"", "credit_limit", "invalid_format"},
        {"credit_limit", "\"12,50\"", "credit_limit", "invalid_format"},
        {"credit_limit", "\"12345678901234567\"", "credit_limit", "out_of_range"},
        {"owner_id", "0", "owner_id", "out_of_range"},
        {"owner_id", "-3", "owner_id", "out_of_range"},
        {"owner_id", "\"5\"", "owner_id", "invalid_type"},
        {"owner_id", "null", "owner_id", "invalid_type"},
        {"team_id", "-1", "team_id", "out_of_range"},
        {"team_id", "1.5", "team_id", "invalid_type"},
        {"nickname", "\"x\"", "nickname", "unknown_field"},
        {"id", "1", "id", "read_only"},
        {"created_at", "\"2024-01-01T00:00:00Z\"", "created_at", "read_only"},
        {"updated_at", "\"2024-01-01T00:00:00Z\"", "updated_at", "read_only"},
        {"version", "3", "version", "read_only"},
        {"analytics", "{}", "analytics", "read_only"},
    };
    long long before = api_count(DIRECTOR, "");
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *b = jparse(base);
        if (cases[i].value == NULL)
            json_object_del(b, cases[i].key);
        else
            json_object_set_new(b, cases[i].key, jparse(cases[i].value));
        th_resp_t *r = http_post(REP1, "/v1/customers", jdump(b));
        expect_status_msg(r, 422, "case %zu (%s)", i, cases[i].field);
        json_t *e = find_error(r, cases[i].field);
        ck_assert_msg(e != NULL, "case %zu: no error for %s in %.400s", i, cases[i].field, r->body);
        ck_assert_msg(strcmp(jstr(e, "code"), cases[i].code) == 0, "case %zu: %s has code %s, wanted %s", i,
                      cases[i].field, jstr(e, "code"), cases[i].code);
        ck_assert_msg(nerrors(r) == 1, "case %zu: %zu errors: %.400s", i, nerrors(r), r->body);
    }
    ck_assert_int_eq(api_count(DIRECTOR, ""), before);

    /* A body that is not an object at all. */
    th_resp_t *r = http_post(REP1, "/v1/customers", "[]");
    expect_problem(r, 422, "validation-failed");
    expect_error(r, "", "invalid_type");

    /* Patches: required fields cannot be removed; nested and read-only rules apply. */
    rec_t c = make_customer(REP1, uniq("val-patch"));
    static const char *const patches[][3] = {
        {"{\"name\":null}", "name", "required"},
        {"{\"kind\":null}", "kind", "required"},
        {"{\"address\":{\"country\":\"XX\"}}", "address.country", "invalid_format"},
        {"{\"id\":1}", "id", "read_only"},
        {"{\"tags\":[\"\"]}", "tags[0]", "too_short"},
        {"{\"colour\":\"red\"}", "colour", "unknown_field"},
    };
    for (size_t i = 0; i < sizeof(patches) / sizeof(patches[0]); i++) {
        r = http_patch(REP1, cpath(c.id), patches[i][0], NULL);
        expect_problem(r, 422, "validation-failed");
        expect_error(r, patches[i][1], patches[i][2]);
    }
    ck_assert_int_eq(version_of(c.id), 1);
}
END_TEST

START_TEST(valid_boundaries_are_accepted)
{
    char *tags = keep(malloc(50 * 54 + 8)), *p = tags;
    p += sprintf(p, "[");
    for (int i = 0; i < 50; i++)
        p += sprintf(p, "%s\"%02d%s\"", i ? "," : "", i, repeat('x', 48));
    sprintf(p, "]");
    const char *body = fmt("{\"kind\":\"company\",\"name\":\"  %s  \",\"email\":\"first.last+tag@sub.example.co\","
                           "\"phone\":\"+49 (30) 1234-567\",\"address\":{\"line1\":\"Main St 1\",\"country\":\"DE\"},"
                           "\"tags\":%s,\"attrs\":{\"b\":\"%s\"},\"credit_limit\":\"9999999999999999.99\","
                           "\"team_id\":null,\"status\":\"partner\"}",
                           repeat('N', 200), tags, repeat('a', 16376));
    /* A manager: a rep reads the credit limit but may not set it (the built-in field rules). */
    th_resp_t *r = http_post(MANAGER, "/v1/customers", body);
    expect_status(r, 201);
    ck_assert_str_eq(jstr(r->json, "name"), repeat('N', 200)); /* trimmed before judging and storing */
    ck_assert_int_eq(json_array_size(jget(r, "tags")), 50);
    ck_assert_str_eq(jstr(r->json, "credit_limit"), "9999999999999999.99");
    ck_assert_str_eq(jstr(r->json, "status"), "partner");
    ck_assert_str_eq(jstr(jget(r, "address"), "country"), "DE");
    ck_assert_int_eq(jint(r->json, "team_id"), team_north); /* null team: the owner's */

    static const char *const limits[][2] = {{"\"12.5\"", "12.50"}, {"\"-3\"", "-3.00"}, {"\"0.01\"", "0.01"}};
    for (size_t i = 0; i < 3; i++) {
        r = http_post(MANAGER, "/v1/customers",
                      fmt("{\"kind\":\"person\",\"name\":\"Dec\",\"credit_limit\":%s}", limits[i][0]));
        expect_status(r, 201);
        ck_assert_str_eq(jstr(r->json, "credit_limit"), limits[i][1]);
    }
}
END_TEST

START_TEST(malformed_json_and_wrong_content_types)
{
    long long before = api_count(DIRECTOR, "");
    th_resp_t *r = http_post(REP1, "/v1/customers", "{\"kind\":");
    expect_problem(r, 400, "bad-request");
    r = http_post(REP1, "/v1/customers", "{\"kind\":\"person\",\"name\":\"a\",\"name\":\"b\"}");
    expect_problem(r, 400, "bad-request");
    r = http_post(REP1, "/v1/customers", "");
    expect_problem(r, 400, "bad-request");
    r = call_as(REP1, "POST", "/v1/customers", "text/plain", "{\"kind\":\"person\",\"name\":\"T\"}", NULL, NULL);
    expect_problem(r, 415, "unsupported-media-type");
    r = call_as(REP1, "POST", "/v1/customers", NULL, "{\"kind\":\"person\",\"name\":\"T\"}", NULL, NULL);
    expect_problem(r, 415, "unsupported-media-type");
    r = call_as(REP1, "POST", "/v1/customers", MERGE_T, "{\"kind\":\"person\",\"name\":\"T\"}", NULL, NULL);
    expect_problem(r, 415, "unsupported-media-type");
    r = call_as(REP1, "POST", "/v1/customers/bulk", "text/csv", "external_id,kind\n", NULL, NULL);
    expect_problem(r, 415, "unsupported-media-type");
    ck_assert_int_eq(api_count(DIRECTOR, ""), before);

    rec_t c = make_customer(REP1, uniq("ctype"));
    /* PATCH takes only merge patches. */
    r = call_as(REP1, "PATCH", cpath(c.id), JSON_T, "{\"industry\":\"x\"}", NULL, NULL);
    expect_problem(r, 415, "unsupported-media-type");
    r = call_as(REP1, "PUT", xpath(c.ext), MERGE_T, "{\"kind\":\"person\",\"name\":\"x\"}", NULL, NULL);
    expect_problem(r, 415, "unsupported-media-type");
    r = http_patch(REP1, cpath(c.id), "{\"industry\":", NULL);
    expect_problem(r, 400, "bad-request");
    ck_assert_int_eq(version_of(c.id), 1);
    r = call_as(REP1, "PATCH", cpath(c.id), "Application/Merge-Patch+JSON; charset=utf-8", "{\"industry\":\"x\"}", NULL,
                NULL);
    expect_status(r, 200);
    r = call_as(REP1, "POST", "/v1/customers", "application/json; charset=utf-8",
                "{\"kind\":\"person\",\"name\":\"T\"}", NULL, NULL);
    expect_status(r, 201);
}
END_TEST

/* --- 3. CRUD conventions ------------------------------------------------------------ */

START_TEST(crud_with_etags_and_preconditions)
{
    const char *name = uniq("Acme");
    const char *body =
        fmt("{\"kind\":\"company\",\"name\":\"  %s  \",\"email\":\"info@acme.example\","
            "\"phone\":\"+49 30 123456\",\"address\":{\"line1\":\"Main St 1\",\"city\":\"Berlin\","
            "\"postal_code\":\"10115\",\"country\":\"DE\"},\"industry\":\"Tools\",\"tags\":[\"a\",\"b\"],"
            "\"attrs\":{\"segment\":\"smb\"},\"credit_limit\":\"1500.5\",\"owner_id\":%lld}",
            name, users[REP1].id);
    /* Made for the rep by the director: a rep may not set a credit limit (the built-in field rules). */
    th_resp_t *r = http_post(DIRECTOR, "/v1/customers", body);
    expect_status(r, 201);
    long long id = jint(r->json, "id");
    ck_assert_int_gt(id, 0);
    ck_assert_str_eq(header(r, "location"), cpath(id));
    ck_assert_str_eq(header(r, "etag"), "\"1\"");
    ck_assert_str_eq(jstr(r->json, "name"), name);
    ck_assert_str_eq(jstr(r->json, "status"), "prospect");
    ck_assert_str_eq(jstr(r->json, "credit_limit"), "1500.50");
    ck_assert_int_eq(jint(r->json, "owner_id"), users[REP1].id);
    ck_assert_int_eq(jint(r->json, "version"), 1);
    ck_assert_ptr_nonnull(jstr(r->json, "created_at"));

    r = http_get(REP1, cpath(id));
    expect_status(r, 200);
    ck_assert_str_eq(header(r, "etag"), "\"1\"");
    ck_assert_str_eq(jstr(r->json, "email"), "info@acme.example");
    r = call_as(REP1, "GET", cpath(id), NULL, NULL, "If-None-Match: \"1\"", NULL);
    expect_status(r, 304);
    ck_assert_uint_eq(r->body_len, 0);
    ck_assert_str_eq(header(r, "etag"), "\"1\"");
    r = call_as(REP1, "GET", cpath(id), NULL, NULL, "If-None-Match: \"7\"", NULL);
    expect_status(r, 200);

    /* Merge patch: a nested null removes that member only; arrays are replaced whole. */
    r = http_patch(REP1, cpath(id), "{\"address\":{\"city\":null,\"country\":\"FR\"},\"tags\":[\"c\"],\"email\":null}",
                   NULL);
    expect_status(r, 200);
    ck_assert_str_eq(header(r, "etag"), "\"2\"");
    json_t *addr = jget(r, "address");
    ck_assert_ptr_null(json_object_get(addr, "city"));
    ck_assert_str_eq(jstr(addr, "country"), "FR");
    ck_assert_str_eq(jstr(addr, "line1"), "Main St 1");
    ck_assert_str_eq(jstr(addr, "postal_code"), "10115");
    ck_assert_int_eq(json_array_size(jget(r, "tags")), 1);
    ck_assert_str_eq(json_string_value(json_array_get(jget(r, "tags"), 0)), "c");
    ck_assert(json_is_null(jget(r, "email")));
    ck_assert_str_eq(jstr(r->json, "name"), name);
    ck_assert_str_eq(jstr(r->json, "phone"), "+49 30 123456");
    ck_assert_str_eq(jstr(r->json, "credit_limit"), "1500.50");
    ck_assert_str_eq(jstr(jget(r, "attrs"), "segment"), "smb");
    ck_assert_int_eq(jint(r->json, "version"), 2);
    r = call_as(REP1, "GET", cpath(id), NULL, NULL, "If-None-Match: \"1\"", NULL);
    expect_status(r, 200);
    ck_assert_str_eq(jstr(jget(r, "address"), "country"), "FR");

    /* A stale If-Match changes nothing. */
    r = http_patch(REP1, cpath(id), "{\"status\":\"customer\"}", "\"1\"");
    expect_problem(r, 412, "precondition-failed");
    r = http_patch(REP1, cpath(id), "{\"status\":\"customer\"}", "not-an-etag");
    expect_problem(r, 412, "precondition-failed");
    r = http_get(REP1, cpath(id));
    ck_assert_str_eq(jstr(r->json, "status"), "prospect");
    ck_assert_str_eq(header(r, "etag"), "\"2\"");
    r = http_patch(REP1, cpath(id), "{\"status\":\"customer\"}", "\"2\"");
    expect_status(r, 200);
    ck_assert_str_eq(header(r, "etag"), "\"3\"");
    ck_assert_str_eq(jstr(r->json, "status"), "customer");

    r = http_delete(REP1, cpath(id), "\"2\"");
    expect_problem(r, 412, "precondition-failed");
    expect_status(http_get(REP1, cpath(id)), 200);
    r = http_delete(REP1, cpath(id), "\"3\"");
    expect_status(r, 204);
    ck_assert_uint_eq(r->body_len, 0);
    expect_problem(http_get(REP1, cpath(id)), 404, "not-found");
    expect_problem(http_get(DIRECTOR, cpath(id)), 404, "not-found");
    th_resp_t *l = http_get(DIRECTOR, fmt("/v1/customers?q=%s&count=true", urlenc(name)));
    expect_status(l, 200);
    ck_assert_int_eq(json_array_size(jget(l, "data")), 0);
    ck_assert_int_eq(jint(l->json, "total"), 0);
    expect_problem(http_delete(REP1, cpath(id), NULL), 404, "not-found");
    expect_problem(http_patch(REP1, cpath(id), "{\"industry\":\"x\"}", NULL), 404, "not-found");
    expect_problem(http_get(REP1, "/v1/customers/999999999"), 404, "not-found");
}
END_TEST

START_TEST(put_by_external_id_upserts)
{
    const char *ext = uniq("ERP/42");
    const char *path = fmt("/v1/external/customers/%s", urlenc(ext)); /* "ERP%2F42-..." */
    ck_assert_ptr_nonnull(strstr(path, "%2F"));
    const char *body = jdump(json_pack("{s:s, s:s, s:s, s:I}", "kind", "company", "name", "ERP Co", "email",
                                       "erp@example.com", "owner_id", (json_int_t)users[REP1].id));
    th_resp_t *r = http_put(INTEGRATION, path, body, NULL);
    expect_status(r, 201);
    long long id = jint(r->json, "id");
    ck_assert_str_eq(header(r, "location"), cpath(id));
    ck_assert_str_eq(header(r, "etag"), "\"1\"");
    ck_assert_str_eq(jstr(r->json, "external_id"), ext);
    ck_assert_int_eq(jint(r->json, "owner_id"), users[REP1].id);
    ck_assert_int_eq(jint(r->json, "team_id"), team_north);

    /* The same again: the same record, updated; a full replacement, so the omitted email goes. */
    const char *body2 = "{\"kind\":\"company\",\"name\":\"ERP Co\"}";
    r = http_put(INTEGRATION, path, body2, NULL);
    expect_status(r, 200);
    ck_assert_int_eq(jint(r->json, "id"), id);
    ck_assert(json_is_null(jget(r, "email")));
    ck_assert_int_eq(jint(r->json, "owner_id"), users[REP1].id); /* an ERP does not know CRM owners */
    r = http_put(INTEGRATION, path, body2, NULL);
    expect_status(r, 200);
    ck_assert_int_eq(jint(r->json, "id"), id);
    r = http_get(REP1, cpath(id));
    expect_status(r, 200);
    ck_assert_str_eq(jstr(r->json, "external_id"), ext);
    const char *etag = header(r, "etag");
    ck_assert_int_eq(sql_ll("SELECT count(*) FROM customers WHERE external_id = '%s'", ext), 1);

    /* The body may repeat the external id, but not contradict it. */
    r = http_put(INTEGRATION, path, "{\"kind\":\"company\",\"name\":\"ERP Co\",\"external_id\":\"OTHER-1\"}", NULL);
    expect_problem(r, 422, "validation-failed");
    expect_error(r, "external_id", NULL);
    r = http_put(INTEGRATION, path,
                 jdump(json_pack("{s:s, s:s, s:s}", "kind", "company", "name", "ERP Co 2", "external_id", ext)), etag);
    expect_status(r, 200);
    ck_assert_str_eq(jstr(r->json, "name"), "ERP Co 2");
    /* Preconditions as everywhere. */
    r = http_put(INTEGRATION, path, body2, etag);
    expect_problem(r, 412, "precondition-failed");
    ck_assert_str_eq(jstr(http_get(REP1, cpath(id))->json, "name"), "ERP Co 2");
    const char *fresh = uniq("ERP-new");
    r = http_put(INTEGRATION, xpath(fresh), body2, "\"1\"");
    expect_problem(r, 412, "precondition-failed");
    /* "*": the record must exist, in any version. */
    r = http_put(INTEGRATION, xpath(fresh), body2, "*");
    expect_problem(r, 412, "precondition-failed");
    ck_assert_int_eq(sql_ll("SELECT count(*) FROM customers WHERE external_id = '%s'", fresh), 0);
    r = http_put(INTEGRATION, path, body2, "*");
    expect_status(r, 200);
    ck_assert_int_eq(jint(r->json, "id"), id);
    r = http_patch(INTEGRATION, cpath(id), "{\"industry\":\"any\"}", "*");
    expect_status(r, 200);

    /* POST with a live external id conflicts. */
    r = http_post(INTEGRATION, "/v1/customers",
                  jdump(json_pack("{s:s, s:s, s:s}", "kind", "company", "name", "Dup", "external_id", ext)));
    expect_problem(r, 409, "conflict");

    /* After a delete the external id is free again: a new record. */
    expect_status(http_delete(INTEGRATION, cpath(id), NULL), 204);
    r = http_put(INTEGRATION, path, body2, NULL);
    expect_status(r, 201);
    ck_assert_int_ne(jint(r->json, "id"), id);

    /* Non-ASCII, percent-encoded. */
    const char *koeln = fmt("K%s-%d", "\xc3\xb6ln", (int)getpid());
    r = http_put(INTEGRATION, fmt("/v1/external/customers/K%%C3%%B6ln-%d", (int)getpid()), body2, NULL);
    expect_status(r, 201);
    ck_assert_str_eq(jstr(r->json, "external_id"), koeln);
}
END_TEST

/* --- 4. lists ---------------------------------------------------------------------------- */

/* Creates n customers in one bulk request as the director; names from name_fn. */
static void bulk_create(int n, const char *tag, const char *(*name_fn)(int i, const char *tag), int owner)
{
    json_t *items = json_array();
    for (int i = 0; i < n; i++)
        json_array_append_new(items,
                              json_pack("{s:s, s:s, s:s, s:I, s:[s]}", "external_id", uniq("bulk"), "kind", "company",
                                        "name", name_fn(i, tag), "owner_id", (json_int_t)users[owner].id, "tags", tag));
    th_resp_t *r = http_post(DIRECTOR, "/v1/customers/bulk", jdump(items));
    expect_status(r, 200);
    ck_assert_int_eq(jint(r->json, "created"), n);
}

static const char *name_same(int i, const char *tag)
{
    return fmt("Same Name %s", tag);
}

static const char *name_spread(int i, const char *tag)
{
    return fmt("N%03d %s", (i * 37) % 101, tag);
}

START_TEST(list_limits_and_parameters)
{
    const char *tag = uniq("limits");
    bulk_create(55, tag, name_spread, REP1);
    const char *base = fmt("/v1/customers?tag=%s", tag);
    th_resp_t *r = http_get(DIRECTOR, base);
    expect_status(r, 200);
    ck_assert_int_eq(json_array_size(jget(r, "data")), 50); /* the default */
    ck_assert(json_is_string(jget(r, "next_cursor")));
    ck_assert_ptr_null(jget(r, "total"));
    r = http_get(DIRECTOR, fmt("%s&cursor=%s", base, json_string_value(jget(r, "next_cursor"))));
    expect_status(r, 200);
    ck_assert_int_eq(json_array_size(jget(r, "data")), 5);
    ck_assert(json_is_null(jget(r, "next_cursor")));
    r = http_get(DIRECTOR, fmt("%s&limit=200&count=true", base));
    ck_assert_int_eq(json_array_size(jget(r, "data")), 55);
    ck_assert_int_eq(jint(r->json, "total"), 55);
    r = http_get(DIRECTOR, fmt("%s&limit=1", base));
    ck_assert_int_eq(json_array_size(jget(r, "data")), 1);

    static const char *const bad_limits[] = {"0", "201", "-1", "abc", "", "1.5"};
    for (size_t i = 0; i < sizeof(bad_limits) / sizeof(bad_limits[0]); i++) {
        r = http_get(DIRECTOR, fmt("%s&limit=%s", base, bad_limits[i]));
        expect_problem(r, 400, "bad-request");
        expect_error(r, "limit", NULL);
    }

    /* fields: only the keys asked for. */
    r = http_get(DIRECTOR, fmt("%s&fields=id,name&limit=5", base));
    expect_status(r, 200);
    json_t *it;
    size_t i;
    json_array_foreach(jget(r, "data"), i, it)
    {
        ck_assert_int_eq(json_object_size(it), 2);
        ck_assert(json_is_integer(json_object_get(it, "id")));
        ck_assert(json_is_string(json_object_get(it, "name")));
    }
    ck_assert_int_eq(i, 5);
    expect_error(http_get(DIRECTOR, fmt("%s&fields=id,password_hash", base)), "fields", NULL);

    static const char *const bad[][2] = {
        {"colour=red", "colour"},
        {"limit=1&limit=2", "limit"},
        {"sort=colour", "sort"},
        {"sort=-colour", "sort"},
        {"count=yes", "count"},
        {"cursor=!!!", "cursor"},
        {"cursor=eyJ4IjoxfQ", "cursor"},
        {"owner_id=abc", "owner_id"},
        {"owner_id=0", "owner_id"},
        {"team_id=-1", "team_id"},
        {"status=vip", "status"},
        {"updated_since=yesterday", "updated_since"},
        {"created_after=2024-01-01", "created_after"},
        {"created_before=soon", "created_before"},
        {"q=", "q"},
    };
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        r = http_get(DIRECTOR, fmt("/v1/customers?%s", bad[i][0]));
        expect_status_msg(r, 400, "query %s", bad[i][0]);
        expect_problem(r, 400, "bad-request");
        expect_error(r, bad[i][1], NULL);
    }
    r = http_get(DIRECTOR, fmt("/v1/customers?q=%s", repeat('q', 201)));
    expect_problem(r, 400, "bad-request");

    /* A cursor belongs to the sort it was made for. */
    r = http_get(DIRECTOR, fmt("%s&sort=name&limit=10", base));
    expect_status(r, 200);
    const char *cur = json_string_value(jget(r, "next_cursor"));
    ck_assert_ptr_nonnull(cur);
    expect_status(http_get(DIRECTOR, fmt("%s&sort=name&limit=10&cursor=%s", base, cur)), 200);
    static const char *const others[] = {"created_at", "-name", "updated_at", "-created_at"};
    for (i = 0; i < 4; i++) {
        r = http_get(DIRECTOR, fmt("%s&sort=%s&limit=10&cursor=%s", base, others[i], cur));
        expect_problem(r, 400, "bad-request");
        expect_error(r, "cursor", NULL);
    }
    r = http_get(DIRECTOR, fmt("%s&limit=10&cursor=%s", base, cur)); /* the default sort is created_at */
    expect_problem(r, 400, "bad-request");
}
END_TEST

START_TEST(list_sorts_break_ties_by_id)
{
    const char *tag = uniq("ties");
    /* One bulk request: identical names, and identical created_at and updated_at (one transaction). */
    bulk_create(40, tag, name_same, REP1);
    bulk_create(12, tag, name_spread, REP2);
    json_t *all = list_all(DIRECTOR, fmt("/v1/customers?tag=%s", tag), 200);
    ck_assert_int_eq(json_array_size(all), 52);
    long long ids[52];
    for (size_t i = 0; i < 52; i++)
        ids[i] = jint(json_array_get(all, i), "id");
    static const char *const sorts[] = {"name", "-name", "created_at", "-created_at", "updated_at", "-updated_at"};
    for (size_t s = 0; s < 6; s++) {
        json_t *items = list_all(DIRECTOR, fmt("/v1/customers?tag=%s&sort=%s", tag, sorts[s]), 7);
        expect_ids(items, ids, 52);
        expect_sorted(items, sorts[s]);
        /* The same through the team scope (a different plan), one page size that splits the ties. */
        items = list_all(MANAGER, fmt("/v1/customers?tag=%s&sort=%s", tag, sorts[s]), 3);
        expect_ids(items, ids, 52);
        expect_sorted(items, sorts[s]);
    }
    /* The default order is created_at ascending. */
    expect_sorted(list_all(DIRECTOR, fmt("/v1/customers?tag=%s", tag), 9), "created_at");
    /* And a rep's own scope sees exactly their records, in order. */
    json_t *mine = list_all(REP2, fmt("/v1/customers?tag=%s&sort=-name", tag), 5);
    ck_assert_int_eq(json_array_size(mine), 12);
    expect_sorted(mine, "-name");
}
END_TEST

START_TEST(list_filters)
{
    const char *tag = uniq("filters"), *vip = uniq("vip");
    const char *t = fmt("/v1/customers?tag=%s", tag);
    rec_t c[4];
    static const struct {
        const char *name, *email, *status;
        int owner, vip;
    } spec[4] = {
        {"Filter Alpha 50%% Off %s", "alpha@example.com", "customer", REP1, 1},
        {"Filter Alpha 50x Off %s", "bravo@example.org", "prospect", REP2, 0},
        {"filter_one %s", NULL, "partner", REPS, 1},
        {"filterXone %s", "DELTA@Example.NET", "inactive", MANAGER, 0},
    };
    for (int i = 0; i < 4; i++) {
        json_t *b = json_pack("{s:s, s:s, s:s, s:I}", "kind", "company", "name", fmt(spec[i].name, tag), "status",
                              spec[i].status, "owner_id", (json_int_t)users[spec[i].owner].id);
        json_object_set_new(b, "email", spec[i].email != NULL ? json_string(spec[i].email) : json_null());
        json_object_set_new(b, "tags", spec[i].vip ? json_pack("[s, s]", tag, vip) : json_pack("[s]", tag));
        c[i] = create_body(DIRECTOR, jdump(b));
        usleep(2000);
    }
    const struct {
        const char *query;
        int want[4];
    } cases[] = {
        {"q=50%25", {1, 0, 0, 0}},
        {"q=50x", {0, 1, 0, 0}},
        {"q=r_o", {0, 0, 1, 0}},
        {"q=ALPHA", {1, 1, 0, 0}},
        {"q=delta%40example.net", {0, 0, 0, 1}},
        {"q=example.org", {0, 1, 0, 0}},
        {"q=%25", {1, 0, 0, 0}},
        {"q=filter+alpha", {1, 1, 0, 0}},
        {"q=nomatch", {0, 0, 0, 0}},
        {fmt("owner_id=%lld", users[REP1].id), {1, 0, 0, 0}},
        {fmt("team_id=%lld", team_north), {1, 1, 0, 1}},
        {fmt("team_id=%lld", team_south), {0, 0, 1, 0}},
        {"status=partner", {0, 0, 1, 0}},
        {"status=prospect", {0, 1, 0, 0}},
        {fmt("created_after=%s", jstr(http_get(DIRECTOR, cpath(c[0].id))->json, "created_at")), {0, 1, 1, 1}},
        {fmt("created_before=%s", jstr(http_get(DIRECTOR, cpath(c[2].id))->json, "created_at")), {1, 1, 0, 0}},
        {fmt("created_after=%s&created_before=%s", jstr(http_get(DIRECTOR, cpath(c[0].id))->json, "created_at"),
             jstr(http_get(DIRECTOR, cpath(c[2].id))->json, "created_at")),
         {0, 1, 0, 0}},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        long long want[4];
        size_t n = 0;
        for (int k = 0; k < 4; k++)
            if (cases[i].want[k])
                want[n++] = c[k].id;
        th_resp_t *r = http_get(DIRECTOR, fmt("%s&%s&count=true", t, cases[i].query));
        expect_status_msg(r, 200, "filter %s", cases[i].query);
        expect_ids(jget(r, "data"), want, n);
        ck_assert_msg(jint(r->json, "total") == (long long)n, "filter %s: total %lld, want %zu", cases[i].query,
                      jint(r->json, "total"), n);
    }
    /* tag (alone, the only tag parameter) */
    th_resp_t *r = http_get(DIRECTOR, fmt("/v1/customers?tag=%s", vip));
    long long vips[] = {c[0].id, c[2].id};
    expect_ids(jget(r, "data"), vips, 2);
    /* Filters combine with scopes: rep.north1 asking for rep.north2's records sees none. */
    r = http_get(REP1, fmt("%s&owner_id=%lld&count=true", t, users[REP2].id));
    expect_status(r, 200);
    ck_assert_int_eq(json_array_size(jget(r, "data")), 0);
    ck_assert_int_eq(jint(r->json, "total"), 0);
    r = http_get(MANAGER, fmt("%s&team_id=%lld&count=true", t, team_south));
    ck_assert_int_eq(jint(r->json, "total"), 0);

    /* updated_since: a record touched later is in, the others are not. */
    usleep(5000);
    r = http_patch(DIRECTOR, cpath(c[1].id), "{\"industry\":\"touched\"}", NULL);
    expect_status(r, 200);
    const char *since = jstr(r->json, "updated_at");
    r = http_get(DIRECTOR, fmt("%s&updated_since=%s", t, since));
    long long one[] = {c[1].id};
    expect_ids(jget(r, "data"), one, 1);
    r = http_get(DIRECTOR, fmt("%s&updated_since=2000-01-01T00:00:00Z", t));
    ck_assert_int_eq(json_array_size(jget(r, "data")), 4);
    /* Deleted records leave lists and counts. */
    expect_status(http_delete(DIRECTOR, cpath(c[3].id), NULL), 204);
    r = http_get(DIRECTOR, fmt("%s&count=true", t));
    ck_assert_int_eq(jint(r->json, "total"), 3);
    ck_assert(!has_id(jget(r, "data"), c[3].id));
}
END_TEST

/* q matches a substring of the name or of the email, not text spanning both. */
START_TEST(q_does_not_match_across_name_and_email)
{
    const char *tag = uniq("qspan");
    rec_t c = create_body(DIRECTOR, jdump(json_pack("{s:s, s:s, s:s, s:[s]}", "kind", "person", "name", "Zed Crossing",
                                                    "email", "qa@cross.example", "tags", tag)));
    th_resp_t *r = http_get(DIRECTOR, fmt("/v1/customers?tag=%s&q=Crossing", tag));
    ck_assert(has_id(jget(r, "data"), c.id));
    r = http_get(DIRECTOR, fmt("/v1/customers?tag=%s&q=qa%%40cross", tag));
    ck_assert(has_id(jget(r, "data"), c.id));
    r = http_get(DIRECTOR, fmt("/v1/customers?tag=%s&q=%s&count=true", tag, urlenc("Crossing qa@")));
    expect_status(r, 200);
    ck_assert_msg(json_array_size(jget(r, "data")) == 0,
                  "GET /v1/customers?q=Crossing%%20qa%%40 matched name \"Zed Crossing\" + email \"qa@cross.example\"");
}
END_TEST

/* --- pagination while others write ------------------------------------------------------- */

typedef struct {
    const char *tag;
    long long *victims;
    int nvictims;
    volatile int stop;
    long long created[200];
    int ncreated, deleted, errors;
} writer_t;

static void *writer_main(void *p)
{
    writer_t *w = p;
    unsigned seed = (unsigned)getpid();
    for (int i = 0; !w->stop && (i < w->nvictims || w->ncreated < 40); i++) {
        if (i < w->nvictims) {
            th_resp_t *r = http_delete(DIRECTOR, cpath(w->victims[w->nvictims - 1 - i]), NULL);
            if (r->status == 204)
                w->deleted++;
            else
                w->errors++;
        }
        if (w->ncreated < 200) {
            const char *body = jdump(json_pack("{s:s, s:s, s:I, s:[s]}", "kind", "company", "name",
                                               fmt("N%03d %s new", rand_r(&seed) % 101, w->tag), "owner_id",
                                               (json_int_t)users[REP1].id, "tags", w->tag));
            th_resp_t *r = http_post(DIRECTOR, "/v1/customers", body);
            if (r->status == 201)
                w->created[w->ncreated++] = jint(r->json, "id");
            else
                w->errors++;
        }
        usleep(5000);
    }
    return NULL;
}

static int in_list(const long long *v, int n, long long id)
{
    for (int i = 0; i < n; i++)
        if (v[i] == id)
            return 1;
    return 0;
}

/* Walks the tag's list in `sort` order, 25 a page, while a writer thread inserts and deletes. */
static void walk_while_writing(const char *tag, const char *sort)
{
    const char *path = fmt("/v1/customers?tag=%s&sort=%s", tag, sort);
    json_t *before = list_all(DIRECTOR, path, 200);
    int n0 = (int)json_array_size(before);
    ck_assert_int_ge(n0, 250);
    /* Victims: every third row of the last 90, which the walk reaches last. */
    long long *victims = keep(calloc(30, sizeof(long long)));
    int nv = 0;
    for (int i = n0 - 90; i < n0 && nv < 30; i += 3)
        victims[nv++] = jint(json_array_get(before, (size_t)i), "id");
    writer_t *w = keep(calloc(1, sizeof(*w)));
    w->tag = tag;
    w->victims = victims;
    w->nvictims = nv;
    pthread_t t;
    pthread_create(&t, NULL, writer_main, w);

    json_t *seen = keep(json_array());
    const char *cursor = NULL;
    int pages = 0;
    for (;;) {
        th_resp_t *r =
            http_get(DIRECTOR, cursor != NULL ? fmt("%s&limit=25&cursor=%s", path, cursor) : fmt("%s&limit=25", path));
        if (r->status != 200) {
            w->stop = 1;
            pthread_join(t, NULL);
            ck_abort_msg("page %d: %d %.200s", pages, r->status, r->body);
        }
        json_array_extend(seen, jget(r, "data"));
        pages++;
        if (json_is_null(jget(r, "next_cursor")))
            break;
        cursor = json_string_value(jget(r, "next_cursor"));
        usleep(15000);
    }
    w->stop = 1;
    pthread_join(t, NULL);
    ck_assert_int_eq(w->errors, 0);
    ck_assert_int_gt(w->deleted, 0);
    ck_assert_int_gt(w->ncreated, 0);

    /* No row twice, no phantom, every row that lived through the whole walk exactly once. */
    size_t i;
    json_t *it;
    json_array_foreach(seen, i, it)
    {
        long long id = jint(it, "id");
        for (size_t k = 0; k < i; k++)
            ck_assert_msg(jint(json_array_get(seen, k), "id") != id, "sort=%s: id %lld returned twice", sort, id);
        ck_assert_msg(has_id(before, id) || in_list(w->created, w->ncreated, id), "sort=%s: unknown id %lld", sort, id);
    }
    int skipped_victims = 0;
    json_array_foreach(before, i, it)
    {
        long long id = jint(it, "id");
        if (in_list(victims, nv, id)) {
            skipped_victims += !has_id(seen, id);
            continue;
        }
        ck_assert_msg(has_id(seen, id), "sort=%s: id %lld existed throughout but was skipped", sort, id);
    }
    /* The walk really raced the deletes: at least one victim went before the walk reached it. */
    ck_assert_int_gt(skipped_victims, 0);
    expect_sorted(seen, sort);
}

START_TEST(pagination_is_stable_under_concurrent_writes)
{
    const char *tag = uniq("walk");
    /* 300 rows in 6 transactions: runs of equal created_at, and names in another order than ids. */
    for (int b = 0; b < 6; b++)
        bulk_create(50, tag, name_spread, REP1);
    walk_while_writing(tag, "created_at");
    walk_while_writing(tag, "name");
    walk_while_writing(tag, "-name");
}
END_TEST

/* --- 5. bulk ---------------------------------------------------------------------------------- */

START_TEST(bulk_upserts_json_and_ndjson)
{
    const char *tag = uniq("bulk");
    rec_t existing = make_customer(REP1, tag);
    const char *e1 = uniq("b1"), *e2 = uniq("b2"), *e3 = uniq("b3");
    json_t *items = json_pack("[{s:s, s:s, s:s, s:[s]}, {s:s, s:s, s:s, s:s, s:[s]}, {s:s, s:s, s:s, s:[s]},"
                              " {s:s, s:s, s:s, s:[s]}]",
                              "external_id", e1, "kind", "person", "name", "Bulk One", "tags", tag, "external_id", e2,
                              "kind", "company", "name", "  Bulk Two  ", "email", "two@example.com", "tags", tag,
                              "external_id", e3, "kind", "company", "name", "Bulk Three", "tags", tag, "external_id",
                              existing.ext, "kind", "company", "name", "Renamed By Bulk", "tags", tag);
    th_resp_t *r = http_post(INTEGRATION, "/v1/customers/bulk", jdump(items));
    expect_status(r, 200);
    ck_assert_int_eq(jint(r->json, "created"), 3);
    ck_assert_int_eq(jint(r->json, "updated"), 1);
    ck_assert_int_eq(json_object_size(r->json), 2);
    json_t *all = list_all(DIRECTOR, fmt("/v1/customers?tag=%s&sort=name", tag), 50);
    ck_assert_int_eq(json_array_size(all), 4);
    ck_assert_str_eq(jstr(json_array_get(all, 0), "name"), "Bulk One");
    ck_assert_str_eq(jstr(json_array_get(all, 2), "name"), "Bulk Two"); /* trimmed */
    ck_assert_str_eq(jstr(json_array_get(all, 3), "name"), "Renamed By Bulk");
    ck_assert_int_eq(jint(json_array_get(all, 3), "id"), existing.id);
    ck_assert_int_eq(jint(json_array_get(all, 3), "owner_id"), users[REP1].id); /* kept */
    ck_assert_int_eq(jint(json_array_get(all, 0), "owner_id"), users[INTEGRATION].id);

    /* NDJSON: one object per line, blank lines and a missing final newline are fine. */
    const char *nd = fmt("{\"external_id\":\"%s\",\"kind\":\"person\",\"name\":\"Bulk One v2\",\"tags\":[\"%s\"]}\n"
                         "\n"
                         "{\"external_id\":\"%s\",\"kind\":\"person\",\"name\":\"Bulk Four\",\"tags\":[\"%s\"]}\r\n"
                         "{\"external_id\":\"%s\",\"kind\":\"person\",\"name\":\"Bulk Five\",\"tags\":[\"%s\"]}",
                         e1, tag, uniq("b4"), tag, uniq("b5"), tag);
    r = call_as(INTEGRATION, "POST", "/v1/customers/bulk", NDJSON_T, nd, NULL, NULL);
    expect_status(r, 200);
    ck_assert_int_eq(jint(r->json, "created"), 2);
    ck_assert_int_eq(jint(r->json, "updated"), 1);
    all = list_all(DIRECTOR, fmt("/v1/customers?tag=%s&sort=name", tag), 50);
    ck_assert_int_eq(json_array_size(all), 6);
    ck_assert_str_eq(jstr(json_array_get(all, 2), "name"), "Bulk One v2");

    /* A bad NDJSON line is malformed input, with nothing written. */
    r = call_as(
        INTEGRATION, "POST", "/v1/customers/bulk", NDJSON_T,
        fmt("{\"external_id\":\"%s\",\"kind\":\"person\",\"name\":\"x\",\"tags\":[\"%s\"]}\n{oops\n", uniq("b6"), tag),
        NULL, NULL);
    expect_problem(r, 400, "bad-request");
    ck_assert_int_eq(json_array_size(list_all(DIRECTOR, fmt("/v1/customers?tag=%s", tag), 50)), 6);
}
END_TEST

START_TEST(bulk_is_all_or_nothing)
{
    const char *tag = uniq("bulk-aon");
    json_t *items = json_array();
    for (int i = 0; i < 100; i++)
        json_array_append_new(items, json_pack("{s:s, s:s, s:s, s:[s]}", "external_id", uniq("aon"), "kind", "person",
                                               "name", fmt("Item %d", i), "tags", tag));
    json_object_set_new(json_array_get(items, 17), "email", json_string("bad-email"));
    json_object_del(json_array_get(items, 63), "kind");
    json_object_set_new(json_array_get(items, 99), "colour", json_string("red"));
    json_object_set_new(json_array_get(items, 99), "credit_limit", json_string("1.001"));
    json_object_del(json_array_get(items, 5), "external_id");
    json_object_set_new(json_array_get(items, 42), "external_id",
                        json_string(jstr(json_array_get(items, 41), "external_id")));
    const char *body = jdump(items);
    th_resp_t *r = http_post(INTEGRATION, "/v1/customers/bulk", body);
    expect_problem(r, 422, "validation-failed");
    expect_error(r, "[17].email", "invalid_format");
    expect_error(r, "[63].kind", "required");
    expect_error(r, "[99].colour", "unknown_field");
    expect_error(r, "[99].credit_limit", "out_of_range");
    expect_error(r, "[5].external_id", "required");
    expect_error(r, "[42].external_id", "duplicate");
    ck_assert_int_eq(nerrors(r), 6);
    ck_assert_int_eq(api_count(DIRECTOR, fmt("tag=%s", tag)), 0);

    /* The same request as NDJSON reports the same. */
    json_t *again = jparse(body);
    char *nd = keep(calloc(1, strlen(body) + 200)), *p = nd;
    size_t i;
    json_t *it;
    json_array_foreach(again, i, it)
    {
        char *line = json_dumps(it, JSON_COMPACT);
        p += sprintf(p, "%s\n", line);
        free(line);
    }
    json_decref(again);
    r = call_as(INTEGRATION, "POST", "/v1/customers/bulk", NDJSON_T, nd, NULL, NULL);
    expect_problem(r, 422, "validation-failed");
    expect_error(r, "[17].email", "invalid_format");
    expect_error(r, "[42].external_id", "duplicate");
    ck_assert_int_eq(api_count(DIRECTOR, fmt("tag=%s", tag)), 0);

    /* Shapes: not an array, empty, items that are not objects. */
    r = http_post(INTEGRATION, "/v1/customers/bulk", "{\"external_id\":\"x\",\"kind\":\"person\",\"name\":\"x\"}");
    expect_problem(r, 422, "validation-failed");
    r = http_post(INTEGRATION, "/v1/customers/bulk", "[]");
    expect_problem(r, 422, "validation-failed");
    r = http_post(INTEGRATION, "/v1/customers/bulk", "[7]");
    expect_problem(r, 422, "validation-failed");
    expect_error(r, "[0]", "invalid_type");
}
END_TEST

START_TEST(bulk_refuses_items_outside_scope)
{
    const char *tag = uniq("bulk-scope");
    rec_t mine = make_customer(REP1, tag), theirs = make_customer(REP2, tag), south = make_customer(REPS, tag);
    long long before = api_count(DIRECTOR, "");
    /* rep.north1: a new item for someone else, among good ones. */
    json_t *items =
        json_pack("[{s:s, s:s, s:s, s:[s]}, {s:s, s:s, s:s, s:I, s:[s]}, {s:s, s:s, s:s, s:[s]}]", "external_id",
                  uniq("ok"), "kind", "person", "name", "Fine", "tags", tag, "external_id", uniq("given"), "kind",
                  "person", "name", "Given Away", "owner_id", (json_int_t)users[REP2].id, "tags", tag, "external_id",
                  mine.ext, "kind", "person", "name", "Mine Updated", "tags", tag);
    th_resp_t *r = http_post(REP1, "/v1/customers/bulk", jdump(items));
    expect_problem(r, 422, "validation-failed");
    expect_error(r, "[1]", NULL);
    ck_assert_int_eq(nerrors(r), 1);
    /* An update of a record the rep cannot see. */
    items = json_pack("[{s:s, s:s, s:s, s:[s]}, {s:s, s:s, s:s, s:[s]}]", "external_id", mine.ext, "kind", "person",
                      "name", "Mine Updated", "tags", tag, "external_id", theirs.ext, "kind", "person", "name",
                      "Stolen", "tags", tag);
    r = http_post(REP1, "/v1/customers/bulk", jdump(items));
    expect_problem(r, 422, "validation-failed");
    expect_error(r, "[1].external_id", "duplicate"); /* as if another record held the id: nothing leaks */
    /* A manager touching the other team's record. */
    items = json_pack("[{s:s, s:s, s:s, s:[s]}]", "external_id", south.ext, "kind", "person", "name", "Stolen", "tags",
                      tag);
    r = http_post(MANAGER, "/v1/customers/bulk", jdump(items));
    expect_problem(r, 422, "validation-failed");
    expect_error(r, "[0].external_id", "duplicate");
    /* Nothing of any of it was written. */
    ck_assert_int_eq(api_count(DIRECTOR, ""), before);
    ck_assert_int_eq(version_of(mine.id), 1);
    ck_assert_int_eq(version_of(theirs.id), 1);
    ck_assert_int_eq(version_of(south.id), 1);
    /* A bulk of the rep's own records goes through, owned by the rep. */
    items = json_pack("[{s:s, s:s, s:s, s:[s]}, {s:s, s:s, s:s, s:[s]}]", "external_id", mine.ext, "kind", "person",
                      "name", "Mine Updated", "tags", tag, "external_id", uniq("new"), "kind", "person", "name",
                      "Mine New", "tags", tag);
    r = http_post(REP1, "/v1/customers/bulk", jdump(items));
    expect_status(r, 200);
    ck_assert_int_eq(jint(r->json, "created"), 1);
    ck_assert_int_eq(jint(r->json, "updated"), 1);
    ck_assert_int_eq(api_count(REP1, fmt("tag=%s", tag)), 2);
}
END_TEST

static const char *bulk_items(int n, const char *tag)
{
    size_t cap = (size_t)n * 120 + 16;
    char *s = keep(malloc(cap)), *p = s;
    p += sprintf(p, "[");
    for (int i = 0; i < n; i++)
        p += sprintf(p, "%s{\"external_id\":\"%s-%d\",\"kind\":\"person\",\"name\":\"Many %d\",\"tags\":[\"%s\"]}",
                     i ? "," : "", tag, i, i, tag);
    sprintf(p, "]");
    return s;
}

START_TEST(bulk_takes_at_most_5000_items)
{
    const char *tag = uniq("bulk-max");
    th_resp_t *r = http_post(INTEGRATION, "/v1/customers/bulk", bulk_items(5001, tag));
    expect_problem(r, 422, "validation-failed");
    ck_assert_int_eq(nerrors(r), 1);
    ck_assert_int_eq(api_count(DIRECTOR, fmt("tag=%s", tag)), 0);
    r = http_post(INTEGRATION, "/v1/customers/bulk", bulk_items(5000, tag));
    expect_status(r, 200);
    ck_assert_int_eq(jint(r->json, "created"), 5000);
    ck_assert_int_eq(api_count(DIRECTOR, fmt("tag=%s", tag)), 5000);
    /* Again: every one is an update now. */
    r = http_post(INTEGRATION, "/v1/customers/bulk", bulk_items(5000, tag));
    expect_status(r, 200);
    ck_assert_int_eq(jint(r->json, "created"), 0);
    ck_assert_int_eq(jint(r->json, "updated"), 5000);
    ck_assert_int_eq(api_count(DIRECTOR, fmt("tag=%s", tag)), 5000);
}
END_TEST

/* --- 6. the change feed ------------------------------------------------------------------------------- */

#define FEED "/v1/changes/customers"

START_TEST(feed_lists_every_change_once_in_order_with_tombstones)
{
    const char *tag = uniq("feed");
    const char *cur = feed_head(DIRECTOR);
    rec_t x = make_customer(REP1, tag);
    expect_status(http_patch(DIRECTOR, cpath(x.id), "{\"industry\":\"i1\"}", NULL), 200);
    rec_t y = make_customer(REP2, tag);
    expect_status(http_delete(DIRECTOR, cpath(x.id), NULL), 204);
    expect_status(http_patch(DIRECTOR, cpath(y.id), "{\"status\":\"customer\"}", NULL), 200);
    /* Failed writes are not changes. */
    expect_status(http_patch(DIRECTOR, cpath(y.id), "{\"status\":\"customer\"}", "\"1\""), 412);
    expect_status(http_patch(DIRECTOR, cpath(y.id), "{\"status\":\"vip\"}", NULL), 422);

    json_t *ch = feed_since(DIRECTOR, &cur, 100);
    ck_assert_int_eq(json_array_size(ch), 5);
    expect_change(json_array_get(ch, 0), "create", x.id);
    ck_assert_int_eq(jint(json_object_get(json_array_get(ch, 0), "data"), "version"), 1);
    ck_assert_str_eq(jstr(json_array_get(ch, 0), "external_id"), x.ext);
    expect_change(json_array_get(ch, 1), "update", x.id);
    ck_assert_str_eq(jstr(json_object_get(json_array_get(ch, 1), "data"), "industry"), "i1");
    expect_change(json_array_get(ch, 2), "create", y.id);
    expect_change(json_array_get(ch, 3), "delete", x.id);
    ck_assert_str_eq(jstr(json_array_get(ch, 3), "external_id"), x.ext);
    expect_change(json_array_get(ch, 4), "update", y.id);
    ck_assert_str_eq(jstr(json_object_get(json_array_get(ch, 4), "data"), "status"), "customer");
    ck_assert_int_eq(jint(json_object_get(json_array_get(ch, 4), "data"), "version"), 2);

    /* Nothing new: the same cursor comes back; a new change shows up when polling with it. */
    th_resp_t *r = http_get(DIRECTOR, fmt(FEED "?after=%s", cur));
    ck_assert_int_eq(json_array_size(jget(r, "data")), 0);
    ck_assert_str_eq(jstr(r->json, "next_cursor"), cur);
    rec_t z = make_customer(REP1, tag);
    ch = feed_since(DIRECTOR, &cur, 100);
    ck_assert_int_eq(json_array_size(ch), 1);
    expect_change(json_array_get(ch, 0), "create", z.id);
}
END_TEST

START_TEST(feed_pages_with_after_and_limit)
{
    const char *tag = uniq("feed-page");
    const char *start = feed_head(DIRECTOR);
    long long ids[7];
    for (int i = 0; i < 7; i++)
        ids[i] = make_customer(REP1, tag).id;
    const char *cur = start;
    int sizes[] = {3, 3, 1, 0};
    for (int p = 0; p < 4; p++) {
        th_resp_t *r = http_get(DIRECTOR, fmt(FEED "?limit=3&after=%s", cur));
        expect_status(r, 200);
        json_t *data = jget(r, "data");
        ck_assert_int_eq(json_array_size(data), sizes[p]);
        for (int k = 0; k < sizes[p]; k++)
            expect_change(json_array_get(data, (size_t)k), "create", ids[p * 3 + k]);
        const char *next = jstr(r->json, "next_cursor");
        if (sizes[p] == 0)
            ck_assert_str_eq(next, cur);
        else
            ck_assert_str_ne(next, cur);
        cur = next;
    }
    /* Re-reading from an old cursor gives the same changes again (cursors are positions). */
    json_t *again = feed_since(DIRECTOR, &start, 1000);
    ck_assert_int_eq(json_array_size(again), 7);
    /* The first page without `after` starts at the beginning of the feed. */
    th_resp_t *r = http_get(DIRECTOR, FEED "?limit=1");
    expect_status(r, 200);
    ck_assert_int_eq(json_array_size(jget(r, "data")), 1);

    static const char *const bad[][2] = {{"limit=0", "limit"},          {"limit=1001", "limit"},
                                         {"limit=x", "limit"},          {"after=garbage!", "after"},
                                         {"after=eyJ4IjoxfQ", "after"}, {"since=1", "since"}};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        r = http_get(DIRECTOR, fmt(FEED "?%s", bad[i][0]));
        expect_problem(r, 400, "bad-request");
        expect_error(r, bad[i][1], NULL);
    }
    r = http_get(-1, FEED);
    expect_problem(r, 401, "unauthenticated");
}
END_TEST

START_TEST(feed_applies_scopes)
{
    const char *tag = uniq("feed-scope");
    static const int readers[] = {REP1, REP2, REPS, MANAGER, DIRECTOR, ANALYST, INTEGRATION};
    const char *cur[NUSERS];
    for (size_t i = 0; i < 7; i++)
        cur[readers[i]] = feed_head(readers[i]);
    rec_t rec[5];
    for (int i = 0; i < 5; i++) {
        rec[i] = make_customer(owners5[i], tag);
        expect_status(http_patch(DIRECTOR, cpath(rec[i].id), "{\"industry\":\"scoped\"}", NULL), 200);
    }
    expect_status(http_delete(DIRECTOR, cpath(rec[2].id), NULL), 204); /* rep.south1's record */
    for (size_t i = 0; i < 7; i++) {
        int a = readers[i];
        json_t *ch = feed_since(a, &cur[a], 4);
        size_t k = 0;
        for (int j = 0; j < 5; j++) {
            if (!can_read(a, rec[j].owner, rec[j].team))
                continue;
            expect_change(json_array_get(ch, k), "create", rec[j].id);
            expect_change(json_array_get(ch, k + 1), "update", rec[j].id);
            k += 2;
        }
        if (can_read(a, rec[2].owner, rec[2].team))
            expect_change(json_array_get(ch, k++), "delete", rec[2].id);
        ck_assert_msg(json_array_size(ch) == k, "%s sees %zu changes, wanted %zu", who_name[a], json_array_size(ch), k);
    }
}
END_TEST

/* Every change of a feed after *cursor (any feed path), until an empty page; moves *cursor. */
static json_t *feed_of(int who, const char *feed, const char **cursor)
{
    json_t *all = keep(json_array());
    for (int i = 0; i < 100; i++) {
        th_resp_t *r = http_get(who, fmt("%s?limit=100&after=%s", feed, *cursor));
        expect_status(r, 200);
        json_t *data = jget(r, "data");
        if (json_array_size(data) == 0)
            return all;
        json_array_extend(all, data);
        *cursor = jstr(r->json, "next_cursor");
    }
    ck_abort_msg("feed did not end");
    return NULL;
}

/* The feed shows exactly one change: op on id (or nothing when op is NULL). */
static void expect_only(json_t *ch, const char *who, const char *feed, const char *op, long long id)
{
    if (op == NULL) {
        ck_assert_msg(json_array_size(ch) == 0, "%s: %s shows %s", who, feed, jdump(json_incref(ch)));
        return;
    }
    ck_assert_msg(json_array_size(ch) == 1, "%s: %s shows %s, wanted one %s of %lld", who, feed, jdump(json_incref(ch)),
                  op, id);
    expect_change(json_array_get(ch, 0), op, id);
}

START_TEST(feed_follows_records_across_owners_and_teams)
{
    /* A manager of team south, for this test only: the crew has one manager (north). */
    const char *email = fmt("%s@south-managers.test", uniq("msouth"));
    long long msouth_id = th_user_add(db_url, email, "Manager South", "manager", "south", conf.password);
    ck_assert_int_gt(msouth_id, 0);
    char msouth_token[2048];
    login_ok(email, conf.password, msouth_token, NULL);
    /* Borrow the analyst's slot so every helper can call as the south manager. */
    int MSOUTH = ANALYST;
    users[MSOUTH].id = msouth_id;
    users[MSOUTH].team_id = team_south;
    snprintf(users[MSOUTH].token, sizeof(users[MSOUTH].token), "%s", msouth_token);

    enum { NW = 6 };
    static const int watchers[NW] = {REP1, REP2, REPS, MANAGER, ANALYST, DIRECTOR};
    static const char *const names[NW] = {"rep.north1",    "rep.north2",    "rep.south1",
                                          "manager.north", "manager.south", "director"};
    static const char *const feeds[2] = {"/v1/changes/customers", "/v1/changes/orders"};
    rec_t x = make_customer(REP1, uniq("feed-move"));
    th_resp_t *r =
        http_post(DIRECTOR, "/v1/orders",
                  jdump(json_pack("{s:I, s:s, s:s, s:s, s:s}", "customer_id", (json_int_t)x.id, "ordered_at",
                                  "2024-05-01T10:00:00Z", "status", "completed", "currency", "EUR", "total", "20.00")));
    expect_status(r, 201);
    long long order = jint(r->json, "id");
    const char *cur[NW][2];
    for (int w = 0; w < NW; w++)
        for (int f = 0; f < 2; f++)
            cur[w][f] = feed_head_of(feeds[f], watchers[w]);

    /* rep.north1 (north) -> rep.south1 (south). */
    expect_status(http_patch(DIRECTOR, cpath(x.id),
                             jdump(json_pack("{s:I, s:I}", "owner_id", (json_int_t)users[REPS].id, "team_id",
                                             (json_int_t)team_south)),
                             NULL),
                  200);
    /* customers: rep.north1, rep.north2, rep.south1, manager.north, manager.south, director */
    static const char *const move1[2][NW] = {{"delete", NULL, "create", "delete", "create", "update"},
                                             {"delete", NULL, "create", "delete", "create", NULL}};
    for (int w = 0; w < NW; w++)
        for (int f = 0; f < 2; f++)
            expect_only(feed_of(watchers[w], feeds[f], &cur[w][f]), names[w], feeds[f], move1[f][w],
                        f == 0 ? x.id : order);

    /* rep.south1 (south) -> rep.north2 (north): the other way round. */
    expect_status(http_patch(DIRECTOR, cpath(x.id),
                             jdump(json_pack("{s:I, s:I}", "owner_id", (json_int_t)users[REP2].id, "team_id",
                                             (json_int_t)team_north)),
                             NULL),
                  200);
    static const char *const move2[2][NW] = {{NULL, "create", "delete", "create", "delete", "update"},
                                             {NULL, "create", "delete", "create", "delete", NULL}};
    for (int w = 0; w < NW; w++)
        for (int f = 0; f < 2; f++) {
            json_t *ch = feed_of(watchers[w], feeds[f], &cur[w][f]);
            expect_only(ch, names[w], feeds[f], move2[f][w], f == 0 ? x.id : order);
            if (move2[f][w] != NULL && strcmp(move2[f][w], "create") == 0 && f == 0)
                ck_assert_int_eq(jint(json_object_get(json_array_get(ch, 0), "data"), "owner_id"), users[REP2].id);
        }

    /* A move inside the team: the manager sees an update, the reps a delete and a create. */
    expect_status(
        http_patch(DIRECTOR, cpath(x.id), jdump(json_pack("{s:I}", "owner_id", (json_int_t)users[REP1].id)), NULL),
        200);
    static const char *const move3[2][NW] = {{"create", "delete", NULL, "update", NULL, "update"},
                                             {"create", "delete", NULL, NULL, NULL, NULL}};
    for (int w = 0; w < NW; w++)
        for (int f = 0; f < 2; f++)
            expect_only(feed_of(watchers[w], feeds[f], &cur[w][f]), names[w], feeds[f], move3[f][w],
                        f == 0 ? x.id : order);

    /* An ordinary update that moves nothing reaches exactly the readers it always did. */
    expect_status(http_patch(DIRECTOR, cpath(x.id), "{\"industry\":\"unmoved\"}", NULL), 200);
    static const char *const still[NW] = {"update", NULL, NULL, "update", NULL, "update"};
    for (int w = 0; w < NW; w++)
        expect_only(feed_of(watchers[w], feeds[0], &cur[w][0]), names[w], feeds[0], still[w], x.id);
}
END_TEST

START_TEST(feed_hides_a_younger_commit_until_older_transactions_end)
{
    const char *tag = uniq("feed-tx");
    rec_t x = make_customer(REP1, tag), y = make_customer(REP1, tag);
    const char *cur = feed_head(DIRECTOR), *cur_rep1 = feed_head(REP1);
    PGconn *a = pg_open(), *b = pg_open();
    /* A starts first and holds its transaction id ... */
    ck_assert_int_eq(pg_do(a, "BEGIN"), 0);
    ck_assert_int_eq(pg_do(a, fmt("UPDATE customers SET industry = 'from-A' WHERE id = %lld", x.id)), 0);
    /* ... B starts later and commits first; then a third change through the API. */
    ck_assert_int_eq(pg_do(b, "BEGIN"), 0);
    ck_assert_int_eq(pg_do(b, fmt("UPDATE customers SET industry = 'from-B' WHERE id = %lld", y.id)), 0);
    ck_assert_int_eq(pg_do(b, "COMMIT"), 0);
    rec_t z = make_customer(REP2, tag);
    ck_assert_str_eq(jstr(http_get(DIRECTOR, cpath(y.id))->json, "industry"), "from-B"); /* committed */

    /* While A is open, nothing after it may show: a client would move its cursor past A's change. */
    th_resp_t *r = http_get(DIRECTOR, fmt(FEED "?after=%s", cur));
    expect_status(r, 200);
    ck_assert_msg(json_array_size(jget(r, "data")) == 0, "feed showed changes younger than an open transaction: %.300s",
                  r->body);
    ck_assert_str_eq(jstr(r->json, "next_cursor"), cur);
    r = http_get(REP1, fmt(FEED "?after=%s", cur_rep1));
    expect_status(r, 200);
    ck_assert_int_eq(json_array_size(jget(r, "data")), 0);

    ck_assert_int_eq(pg_do(a, "COMMIT"), 0);
    json_t *ch = feed_since(DIRECTOR, &cur, 1);
    ck_assert_int_eq(json_array_size(ch), 3);
    expect_change(json_array_get(ch, 0), "update", x.id);
    ck_assert_str_eq(jstr(json_object_get(json_array_get(ch, 0), "data"), "industry"), "from-A");
    expect_change(json_array_get(ch, 1), "update", y.id);
    ck_assert_str_eq(jstr(json_object_get(json_array_get(ch, 1), "data"), "industry"), "from-B");
    expect_change(json_array_get(ch, 2), "create", z.id);
    /* rep.north1 sees the changes of their two records, not rep.north2's new one. */
    ch = feed_since(REP1, &cur_rep1, 10);
    ck_assert_int_eq(json_array_size(ch), 2);
    expect_change(json_array_get(ch, 0), "update", x.id);
    expect_change(json_array_get(ch, 1), "update", y.id);
    PQfinish(a);
    PQfinish(b);
}
END_TEST

#define NWRITERS 4
#define TX_PER_WRITER 15

typedef struct {
    int index;
    long long rows[3];
    const char *tag;
    char committed[2 * TX_PER_WRITER + 4][48];
    char rolled_back[2 * TX_PER_WRITER + 4][48];
    int ncommitted, nrolled, failed;
} feed_writer_t;

static void *feed_writer_main(void *p)
{
    feed_writer_t *w = p;
    unsigned seed = (unsigned)(getpid() * 31 + w->index);
    PGconn *c = PQconnectdb(db_url);
    if (PQstatus(c) != CONNECTION_OK) {
        w->failed = 1;
        PQfinish(c);
        return NULL;
    }
    usleep((useconds_t)(rand_r(&seed) % 10000));
    for (int t = 0; t < TX_PER_WRITER && !w->failed; t++) {
        char tokens[2][48];
        int nstmt = 1 + (rand_r(&seed) % 3 == 0), rollback = rand_r(&seed) % 6 == 0;
        w->failed |= pg_do(c, "BEGIN") != 0;
        for (int s = 0; s < nstmt && !w->failed; s++) {
            snprintf(tokens[s], sizeof(tokens[s]), "w%d-t%d-s%d", w->index, t, s);
            const char *sql =
                rand_r(&seed) % 4 == 0
                    ? fmt("INSERT INTO customers (kind, name, owner_id, team_id, tags) VALUES ('person', '%s', %lld, "
                          "%lld, ARRAY['%s'])",
                          tokens[s], users[REP1].id, team_north, w->tag)
                    : fmt("UPDATE customers SET industry = '%s' WHERE id = %lld", tokens[s],
                          w->rows[rand_r(&seed) % 3]);
            w->failed |= pg_do(c, sql) != 0;
            usleep((useconds_t)(rand_r(&seed) % 8000));
        }
        w->failed |= pg_do(c, rollback ? "ROLLBACK" : "COMMIT") != 0;
        for (int s = 0; s < nstmt; s++) {
            if (rollback)
                memcpy(w->rolled_back[w->nrolled++], tokens[s], sizeof(tokens[s]));
            else
                memcpy(w->committed[w->ncommitted++], tokens[s], sizeof(tokens[s]));
        }
        usleep((useconds_t)(rand_r(&seed) % 4000));
    }
    PQfinish(c);
    return NULL;
}

typedef struct {
    const char *cursor;
    volatile int writers_done;
    json_t *seen;
    int polls, failed;
} feed_reader_t;

static void *feed_reader_main(void *p)
{
    feed_reader_t *rd = p;
    for (;;) {
        int done = rd->writers_done;
        th_resp_t *r = http_get(DIRECTOR, fmt(FEED "?limit=3&after=%s", rd->cursor));
        rd->polls++;
        if (r->status != 200) {
            rd->failed = 1;
            return NULL;
        }
        json_t *data = jget(r, "data");
        json_array_extend(rd->seen, data);
        rd->cursor = jstr(r->json, "next_cursor");
        /* Stop only at an empty page read after every writer finished. */
        if (done && json_array_size(data) == 0)
            return NULL;
        if (json_array_size(data) == 0)
            usleep(2000);
    }
}

/* The token a change carries: industry for updates, name for inserts. */
static const char *token_of(json_t *ch)
{
    json_t *d = json_object_get(ch, "data");
    const char *op = jstr(ch, "op");
    return strcmp(op, "create") == 0 ? jstr(d, "name") : jstr(d, "industry");
}

START_TEST(feed_never_skips_under_concurrent_random_commits)
{
    const char *tag = uniq("feed-stress");
    feed_writer_t *w = keep(calloc(NWRITERS, sizeof(*w)));
    for (int i = 0; i < NWRITERS; i++) {
        w[i].index = i;
        w[i].tag = tag;
        for (int k = 0; k < 3; k++)
            w[i].rows[k] = make_customer(REP1, tag).id;
    }
    feed_reader_t rd = {.cursor = feed_head(DIRECTOR), .seen = keep(json_array())};
    pthread_t wt[NWRITERS], rt;
    pthread_create(&rt, NULL, feed_reader_main, &rd);
    for (int i = 0; i < NWRITERS; i++)
        pthread_create(&wt[i], NULL, feed_writer_main, &w[i]);
    for (int i = 0; i < NWRITERS; i++)
        pthread_join(wt[i], NULL);
    rd.writers_done = 1;
    pthread_join(rt, NULL);
    ck_assert_int_eq(rd.failed, 0);
    int committed = 0;
    for (int i = 0; i < NWRITERS; i++) {
        ck_assert_msg(!w[i].failed, "writer %d failed", i);
        committed += w[i].ncommitted;
    }
    ck_assert_int_gt(rd.polls, 10);

    /* The union of all pages is exactly the committed changes, each once. */
    json_t *seen = rd.seen, *ch;
    size_t i;
    json_array_foreach(seen, i, ch)
    {
        const char *tok = token_of(ch);
        ck_assert_msg(tok != NULL && tok[0] == 'w', "change %zu is not one of the writers': %s %lld", i, jstr(ch, "op"),
                      jint(ch, "id"));
        for (size_t k = 0; k < i; k++)
            ck_assert_msg(strcmp(token_of(json_array_get(seen, k)), tok) != 0, "change %s seen twice", tok);
        int found = 0;
        for (int x = 0; x < NWRITERS && !found; x++)
            for (int k = 0; k < w[x].ncommitted && !found; k++)
                found = strcmp(w[x].committed[k], tok) == 0;
        ck_assert_msg(found, "change %s was rolled back but appeared", tok);
    }
    for (int x = 0; x < NWRITERS; x++)
        for (int k = 0; k < w[x].ncommitted; k++) {
            int found = 0;
            json_array_foreach(seen, i, ch) found |= strcmp(token_of(ch), w[x].committed[k]) == 0;
            ck_assert_msg(found, "committed change %s was skipped", w[x].committed[k]);
        }
    ck_assert_int_eq(json_array_size(seen), committed);
    /* Per record, versions only grow along the feed. */
    json_array_foreach(seen, i, ch)
    {
        for (size_t k = 0; k < i; k++) {
            json_t *prev = json_array_get(seen, k);
            if (jint(prev, "id") == jint(ch, "id"))
                ck_assert_int_lt(jint(json_object_get(prev, "data"), "version"),
                                 jint(json_object_get(ch, "data"), "version"));
        }
    }
}
END_TEST

/* --- the suite ------------------------------------------------------------------------------------------ */

static Suite *customers_suite(void)
{
    Suite *s = suite_create("customers");
    TCase *tc = tcase_create("scopes");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, scope_reads_get_lists_and_counts);
    tcase_add_test(tc, scope_writes_patch_put_bulk_delete);
    tcase_add_test(tc, analyst_writes_are_403);
    tcase_add_test(tc, create_assigns_owner_and_team);
    tcase_add_test(tc, moving_needs_update_scope_on_old_and_new_place);
    tcase_add_test(tc, owner_outside_the_writers_team_is_refused);
    tcase_add_test(tc, moves_never_leave_a_covering_scope);
    tcase_add_test(tc, rep_cannot_hide_a_record_from_the_team);
    suite_add_tcase(s, tc);

    tc = tcase_create("validation");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, validation_reports_every_error_at_once);
    tcase_add_test(tc, validation_rules_of_each_field);
    tcase_add_test(tc, valid_boundaries_are_accepted);
    tcase_add_test(tc, malformed_json_and_wrong_content_types);
    suite_add_tcase(s, tc);

    tc = tcase_create("crud");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, crud_with_etags_and_preconditions);
    tcase_add_test(tc, etags_follow_embedded_results);
    tcase_add_test(tc, put_by_external_id_upserts);
    suite_add_tcase(s, tc);

    tc = tcase_create("changes");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, feed_lists_every_change_once_in_order_with_tombstones);
    tcase_add_test(tc, feed_pages_with_after_and_limit);
    tcase_add_test(tc, feed_applies_scopes);
    tcase_add_test(tc, feed_follows_records_across_owners_and_teams);
    tcase_add_test(tc, feed_hides_a_younger_commit_until_older_transactions_end);
    tcase_add_test(tc, feed_never_skips_under_concurrent_random_commits);
    suite_add_tcase(s, tc);

    tc = tcase_create("lists");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, list_limits_and_parameters);
    tcase_add_test(tc, list_sorts_break_ties_by_id);
    tcase_add_test(tc, cursors_survive_names_of_four_byte_characters);
    tcase_add_test(tc, list_filters);
    tcase_add_test(tc, q_does_not_match_across_name_and_email);
    tcase_add_test(tc, pagination_is_stable_under_concurrent_writes);
    suite_add_tcase(s, tc);

    tc = tcase_create("bulk");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, bulk_upserts_json_and_ndjson);
    tcase_add_test(tc, bulk_is_all_or_nothing);
    tcase_add_test(tc, bulk_refuses_items_outside_scope);
    tcase_add_test(tc, bulk_takes_at_most_5000_items);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return crew_main(&conf, customers_suite);
}
