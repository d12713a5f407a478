/*
 * tests/integration/transfers_test.c - ownership transfers
 * (POST /v1/ownership-transfers) and owned_records against the real API,
 * worker, PostgreSQL and Redis: an administrator hands a user's open
 * customers to another user in one request, each moved record's history
 * names the caller and the transfer and the change feed shows it, closed
 * customers stay, contacts and orders follow; a manager may do it within
 * their team only, all or nothing; reps and analysts may not; every bad
 * input is named; deactivating an owner is allowed and GET /v1/users/{id}
 * shows what they own; and 20,000 records become a worker run that moves
 * everything or nothing, even when the worker is killed midway.
 *
 * crew_main() (tests/support/crew.c) builds the suite's database, adds one
 * user per role, starts one API process and logs everyone in once; Check
 * forks each test. The crew's reps keep their records for the scope
 * checks, so each test that moves records makes users of its own (with
 * clientele-api user-add) and gives them customers; expected owners come
 * from SQL on the tables, never from the API's own statements.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>
#include <libpq-fe.h>

#include "tests/support/crew.h"

#define BIG 20000

static const char *const api_env[] = {
    "CLIENTELE_THREADS=2",
    "CLIENTELE_DB_TIMEOUT=20s",
    "CLIENTELE_JWT_SECRET=transfers-suite-secret-0123456789abcdefgh",
    NULL,
};

static const crew_conf_t conf = {
    .name = "transfers",
    .redis_db = 13,
    .env = api_env,
    .password = "transfers-suite-password",
    .domain = "transfers.test",
    .resource = "customers",
    .item = "customer",
};

/* --- helpers ------------------------------------------------------------------------------ */

/* A new user of `role` in `team` ("north", "south" or NULL); returns its id, its e-mail in *email (may be NULL). */
static long long new_user_as(const char *role, const char *team, const char **email)
{
    const char *e = fmt("%s@transfers.test", uniq(role));
    if (email != NULL)
        *email = e;
    return th_user_add(db_url, e, fmt("User %s", e), role, team, conf.password);
}

static long long new_user(const char *role, const char *team)
{
    return new_user_as(role, team, NULL);
}

static long long team_of(const char *team)
{
    return team == NULL ? 0 : strcmp(team, "north") == 0 ? team_north : team_south;
}

/* n customers owned by `owner` in `team`, the first `inactive` of them inactive; made by the director. */
static long long *give_customers(long long owner, const char *team, int n, int inactive, const char *tag)
{
    long long *ids = keep(calloc((size_t)n, sizeof(long long)));
    for (int i = 0; i < n; i++) {
        th_resp_t *r = http_post(DIRECTOR, "/v1/customers",
                                 fmt("{\"kind\":\"person\",\"name\":\"%s %d\",\"owner_id\":%lld,\"team_id\":%s,"
                                     "\"status\":\"%s\",\"tags\":[\"%s\"]}",
                                     tag, i, owner, team == NULL ? "null" : fmt("%lld", team_of(team)),
                                     i < inactive ? "inactive" : "customer", tag));
        expect_status(r, 201);
        ids[i] = jint(r->json, "id");
    }
    return ids;
}

static th_resp_t *transfer(int who, const char *body)
{
    return http_post(who, "/v1/ownership-transfers", body);
}

static long long owned(long long user, const char *tag)
{
    return sql_ll("SELECT count(*) FROM customers WHERE owner_id = %lld AND deleted_at IS NULL AND tags @> "
                  "ARRAY['%s']",
                  user, tag);
}

static json_t *owned_records(long long user)
{
    th_resp_t *r = http_get(ADMIN, fmt("/v1/users/%lld", user));
    expect_status(r, 200);
    json_t *o = jget(r, "owned_records");
    ck_assert_msg(json_is_object(o), "no owned_records: %s", r->body);
    return o;
}

/* --- one request ----------------------------------------------------------------------------- */

START_TEST(an_administrator_hands_over_open_customers_with_history_and_feed)
{
    long long from = new_user("rep", "north"), to = new_user("rep", "north");
    const char *tag = uniq("hand");
    long long *c = give_customers(from, "north", 6, 2, tag); /* c[0], c[1] inactive */
    /* A contact and an order of an open customer, to see them follow. */
    th_resp_t *r = http_post(DIRECTOR, fmt("/v1/customers/%lld/contacts", c[3]),
                             "{\"first_name\":\"Ola\",\"last_name\":\"Follow\"}");
    expect_status(r, 201);
    long long contact = jint(r->json, "id");
    r = http_post(DIRECTOR, "/v1/orders",
                  fmt("{\"customer_id\":%lld,\"ordered_at\":\"2026-01-05T10:00:00Z\",\"status\":\"completed\","
                      "\"currency\":\"EUR\",\"total\":\"5.00\"}",
                      c[3]));
    expect_status(r, 201);
    long long order = jint(r->json, "id");
    ck_assert_int_eq(jint(owned_records(from), "customers"), 6);
    const char *cursor = feed_head(ADMIN);

    r = transfer(ADMIN, fmt("{\"from_user_id\":%lld,\"to_user_id\":%lld}", from, to));
    expect_status(r, 201);
    long long id = jint(r->json, "id");
    ck_assert_str_eq(header(r, "location"), fmt("/v1/ownership-transfers/%lld", id));
    ck_assert_str_eq(jstr(r->json, "status"), "succeeded");
    ck_assert_int_eq(jint(json_object_get(r->json, "counts"), "customers"), 4);
    ck_assert_int_eq(jint(r->json, "records_total"), 4);
    ck_assert_int_eq(jint(r->json, "records_done"), 4);
    ck_assert(json_is_true(json_object_get(r->json, "only_open")));
    ck_assert_str_eq(jdump(json_incref(json_object_get(r->json, "resources"))), "[\"customers\"]");
    ck_assert_int_eq(jint(r->json, "requested_by"), users[ADMIN].id);

    /* The open ones moved, the inactive ones stayed; teams unchanged. */
    ck_assert_int_eq(owned(to, tag), 4);
    ck_assert_int_eq(owned(from, tag), 2);
    ck_assert_int_eq(
        sql_ll("SELECT count(*) FROM customers WHERE tags @> ARRAY['%s'] AND team_id = %lld", tag, team_north), 6);
    ck_assert_int_eq(jint(owned_records(from), "customers"), 2);
    ck_assert_int_eq(jint(owned_records(to), "customers"), 4);

    /* Each moved record's history: an update by the administrator naming the transfer. */
    for (int i = 2; i < 6; i++) {
        th_resp_t *h = http_get(ADMIN, fmt("/v1/customers/%lld/history?limit=1", c[i]));
        expect_status(h, 200);
        json_t *e = json_array_get(jget(h, "data"), 0);
        ck_assert_str_eq(jstr(e, "op"), "update");
        ck_assert_int_eq(jint(json_object_get(e, "actor"), "id"), users[ADMIN].id);
        ck_assert_int_eq(jint(e, "transfer_id"), id);
        json_t *ch = json_array_get(json_object_get(e, "changes"), 0);
        ck_assert_str_eq(jstr(ch, "field"), "owner_id");
        ck_assert_int_eq(jint(ch, "old"), from);
        ck_assert_int_eq(jint(ch, "new"), to);
    }
    th_resp_t *h = http_get(ADMIN, fmt("/v1/customers/%lld/history?limit=1", c[0]));
    ck_assert_str_eq(jstr(json_array_get(jget(h, "data"), 0), "op"), "create");

    /* The change feed has one update of each moved customer. */
    json_t *feed = feed_since(ADMIN, &cursor, 100);
    int seen = 0;
    size_t i;
    json_t *ch;
    json_array_foreach(feed, i, ch)
    {
        for (int k = 2; k < 6; k++)
            if (jint(ch, "id") == c[k]) {
                expect_change(ch, "update", c[k]);
                ck_assert_int_eq(jint(json_object_get(ch, "data"), "owner_id"), to);
                seen++;
            }
    }
    ck_assert_int_eq(seen, 4);

    /* The transfer reads back the same. */
    th_resp_t *g = http_get(ADMIN, fmt("/v1/ownership-transfers/%lld", id));
    expect_status(g, 200);
    ck_assert(json_equal(g->json, r->json));
    ck_assert_str_eq(header(g, "cache-control"), "no-store");
    (void)contact;
    (void)order;
}
END_TEST

START_TEST(contacts_and_orders_follow_and_a_team_can_be_given)
{
    const char *to_email;
    long long from = new_user("rep", "north"), to = new_user_as("rep", "south", &to_email);
    const char *tag = uniq("team");
    long long *c = give_customers(from, "north", 3, 1, tag);
    th_resp_t *r = http_post(DIRECTOR, fmt("/v1/customers/%lld/contacts", c[2]), "{\"last_name\":\"Along\"}");
    expect_status(r, 201);
    long long contact = jint(r->json, "id");

    /* only_open false: every customer, the inactive one too, filed under south. */
    r = transfer(ADMIN, fmt("{\"from_user_id\":%lld,\"to_user_id\":%lld,\"team_id\":%lld,\"only_open\":false,"
                            "\"resources\":[\"customers\"]}",
                            from, to, team_south));
    expect_status(r, 201);
    ck_assert_int_eq(jint(json_object_get(r->json, "counts"), "customers"), 3);
    ck_assert_int_eq(jint(r->json, "team_id"), team_south);
    ck_assert_int_eq(owned(to, tag), 3);
    ck_assert_int_eq(
        sql_ll("SELECT count(*) FROM customers WHERE tags @> ARRAY['%s'] AND team_id = %lld", tag, team_south), 3);
    /* The contact went with its customer: its new owner reads it, the north manager no more. */
    char token[2048], auth[2200];
    login_ok(to_email, conf.password, token, NULL);
    const char *hs[] = {th_bearer(token, auth, sizeof(auth)), NULL};
    th_resp_t got;
    ck_assert_int_eq(th_http(api.port, "GET", fmt("/v1/contacts/%lld", contact), hs, NULL, 0, &got), 0);
    ck_assert_msg(got.status == 200, "%d: %s", got.status, got.body);
    th_resp_free(&got);
    expect_problem(http_get(MANAGER, fmt("/v1/contacts/%lld", contact)), 404, "not-found");
    expect_status(http_get(MANAGER, fmt("/v1/customers/%lld", c[0])), 404);

    /* A user who owns nothing: a transfer of nothing, recorded all the same. */
    r = transfer(ADMIN, fmt("{\"from_user_id\":%lld,\"to_user_id\":%lld}", from, to));
    expect_status(r, 201);
    ck_assert_int_eq(jint(json_object_get(r->json, "counts"), "customers"), 0);
}
END_TEST

START_TEST(a_manager_transfers_within_their_team_all_or_nothing)
{
    long long from = new_user("rep", "north"), to = new_user("rep", "north"), south = new_user("rep", "south");
    const char *tag = uniq("mgr");
    give_customers(from, "north", 3, 0, tag);

    /* A user of another team is not one the manager can see: 422, as for a user that does not exist. */
    th_resp_t *r = transfer(MANAGER, fmt("{\"from_user_id\":%lld,\"to_user_id\":%lld}", from, south));
    expect_problem(r, 422, "validation-failed");
    expect_error(r, "to_user_id", "invalid_value");
    r = transfer(MANAGER, fmt("{\"from_user_id\":%lld,\"to_user_id\":%lld}", south, from));
    expect_error(r, "from_user_id", "invalid_value");
    ck_assert_int_eq(owned(from, tag), 3);

    /* Within the team: done. */
    r = transfer(MANAGER, fmt("{\"from_user_id\":%lld,\"to_user_id\":%lld}", from, to));
    expect_status(r, 201);
    ck_assert_int_eq(owned(to, tag), 3);
    /* The manager reads their transfer; a rep of the team does not. */
    long long id = jint(r->json, "id");
    expect_status(http_get(MANAGER, fmt("/v1/ownership-transfers/%lld", id)), 200);
    expect_problem(http_get(REP1, fmt("/v1/ownership-transfers/%lld", id)), 404, "not-found");
    expect_status(http_get(ADMIN, fmt("/v1/ownership-transfers/%lld", id)), 200);

    /* One record outside the team (filed under south): 403 naming how many, and nothing moves. */
    give_customers(to, "south", 1, 0, tag);
    r = transfer(MANAGER, fmt("{\"from_user_id\":%lld,\"to_user_id\":%lld}", to, from));
    expect_problem(r, 403, "forbidden");
    ck_assert_msg(strstr(jstr(r->json, "detail"), "1 customers") != NULL, "%s", r->body);
    ck_assert_int_eq(owned(to, tag), 4);
    ck_assert_int_eq(owned(from, tag), 0);
    ck_assert_int_eq(sql_ll("SELECT count(*) FROM ownership_transfers WHERE from_user_id = %lld", to), 0);
    /* The administrator may. */
    expect_status(transfer(ADMIN, fmt("{\"from_user_id\":%lld,\"to_user_id\":%lld}", to, from)), 201);
    ck_assert_int_eq(owned(from, tag), 4);
}
END_TEST

START_TEST(reps_and_analysts_may_not)
{
    long long from = new_user("rep", "north"), to = new_user("rep", "north");
    const char *tag = uniq("deny");
    give_customers(from, "north", 2, 0, tag);
    /* Roles that read no users, or may update no customers. */
    expect_problem(transfer(REP1, fmt("{\"from_user_id\":%lld,\"to_user_id\":%lld}", from, to)), 403, "forbidden");
    expect_problem(transfer(ANALYST, fmt("{\"from_user_id\":%lld,\"to_user_id\":%lld}", from, to)), 403, "forbidden");
    expect_problem(transfer(INTEGRATION, fmt("{\"from_user_id\":%lld,\"to_user_id\":%lld}", from, to)), 403,
                   "forbidden");
    /* A role that reads users but may not update customers. */
    ck_assert_int_eq(th_sql(db_url, "INSERT INTO roles (name, permissions) VALUES ('auditor',"
                                    " '{\"users\":{\"read\":\"all\"},\"customers\":{\"read\":\"all\"}}')"
                                    " ON CONFLICT (name) DO NOTHING"),
                     0);
    const char *email = fmt("%s@transfers.test", uniq("auditor"));
    th_user_add(db_url, email, "Audrey Auditor", "auditor", NULL, conf.password);
    char token[2048];
    login_ok(email, conf.password, token, NULL);
    char auth[2200];
    const char *hs[] = {th_bearer(token, auth, sizeof(auth)), "Content-Type: application/json", NULL};
    const char *body = fmt("{\"from_user_id\":%lld,\"to_user_id\":%lld}", from, to);
    th_resp_t r;
    ck_assert_int_eq(th_http(api.port, "POST", "/v1/ownership-transfers", hs, body, strlen(body), &r), 0);
    ck_assert_int_eq(r.status, 403);
    ck_assert_msg(strstr(r.body, "customers") != NULL, "%s", r.body);
    th_resp_free(&r);
    ck_assert_int_eq(owned(from, tag), 2);
    /* No token: 401. */
    expect_problem(call_as(-1, "POST", "/v1/ownership-transfers", JSON_T, body, NULL, NULL), 401, "unauthenticated");
}
END_TEST

START_TEST(every_bad_input_is_named)
{
    long long from = new_user("rep", "north"), to = new_user("rep", "north");
    th_resp_t *r = transfer(ADMIN, "{\"from_user_id\":\"7\",\"team_id\":0,\"only_open\":1,\"extra\":true}");
    expect_problem(r, 422, "validation-failed");
    expect_error(r, "from_user_id", "invalid_type");
    expect_error(r, "to_user_id", "required");
    expect_error(r, "team_id", "out_of_range");
    expect_error(r, "only_open", "invalid_type");
    expect_error(r, "extra", "unknown_field");

    r = transfer(ADMIN, fmt("{\"from_user_id\":%lld,\"to_user_id\":%lld,\"resources\":[\"contacts\",\"customers\","
                            "\"customers\",\"leads\",\"\"]}",
                            from, to));
    expect_problem(r, 422, "validation-failed");
    expect_error(r, "resources[0]", "invalid_value");
    expect_error(r, "resources[2]", "invalid_value");
    expect_error(r, "resources[3]", "invalid_value");
    expect_error(r, "resources[4]", "too_short");
    ck_assert_ptr_null(find_error(r, "resources[1]"));
    expect_error(transfer(ADMIN, fmt("{\"from_user_id\":%lld,\"to_user_id\":%lld,\"resources\":[]}", from, to)),
                 "resources", "too_short");

    /* What only the database knows, named as well. */
    expect_error(transfer(ADMIN, fmt("{\"from_user_id\":%lld,\"to_user_id\":%lld}", from, from)), "to_user_id",
                 "invalid_value");
    expect_error(transfer(ADMIN, fmt("{\"from_user_id\":999999999,\"to_user_id\":%lld}", to)), "from_user_id",
                 "invalid_value");
    expect_error(transfer(ADMIN, fmt("{\"from_user_id\":%lld,\"to_user_id\":999999999}", from)), "to_user_id",
                 "invalid_value");
    expect_error(transfer(ADMIN, fmt("{\"from_user_id\":%lld,\"to_user_id\":%lld,\"team_id\":999999999}", from, to)),
                 "team_id", "invalid_value");
    /* A deactivated recipient. */
    long long gone = new_user("rep", "north");
    expect_status(call_as(ADMIN, "DELETE", fmt("/v1/users/%lld", gone), NULL, NULL, NULL, NULL), 204);
    r = transfer(ADMIN, fmt("{\"from_user_id\":%lld,\"to_user_id\":%lld}", from, gone));
    expect_error(r, "to_user_id", "invalid_value");
    ck_assert_msg(strstr(r->body, "deactivated") != NULL, "%s", r->body);
    /* Bodies that are not JSON objects. */
    expect_problem(transfer(ADMIN, "[1]"), 422, "validation-failed");
    expect_problem(transfer(ADMIN, "{"), 400, "bad-request");
    expect_problem(http_get(ADMIN, "/v1/ownership-transfers/999999999"), 404, "not-found");
}
END_TEST

START_TEST(a_deactivated_owner_keeps_their_records_until_transferred)
{
    long long from = new_user("rep", "north"), to = new_user("rep", "north");
    const char *tag = uniq("leave");
    give_customers(from, "north", 3, 1, tag);
    /* Deactivating a user who owns records is allowed; what they own shows. */
    expect_status(call_as(ADMIN, "DELETE", fmt("/v1/users/%lld", from), NULL, NULL, NULL, NULL), 204);
    th_resp_t *r = http_get(ADMIN, fmt("/v1/users/%lld", from));
    expect_status(r, 200);
    ck_assert(json_is_false(jget(r, "active")));
    ck_assert_int_eq(jint(jget(r, "owned_records"), "customers"), 3);
    /* Lists of users carry no counts (they cost a query per user). */
    r = http_get(ADMIN, fmt("/v1/users?q=%s", urlenc(jstr(r->json, "email"))));
    expect_status(r, 200);
    ck_assert_ptr_null(json_object_get(json_array_get(jget(r, "data"), 0), "owned_records"));
    /* Their open customers can still be handed over. */
    r = transfer(ADMIN, fmt("{\"from_user_id\":%lld,\"to_user_id\":%lld}", from, to));
    expect_status(r, 201);
    ck_assert_int_eq(jint(owned_records(from), "customers"), 1);
    ck_assert_int_eq(jint(owned_records(to), "customers"), 2);
}
END_TEST

/* --- a worker run --------------------------------------------------------------------------- */

static json_t *get_transfer(long long id)
{
    th_resp_t *r = http_get(ADMIN, fmt("/v1/ownership-transfers/%lld", id));
    expect_status(r, 200);
    return r->json;
}

START_TEST(twenty_thousand_records_move_as_a_worker_run_all_or_nothing)
{
    crew_flush_redis();
    long long from = new_user("rep", "north"), to = new_user("rep", "north");
    const char *tag = uniq("big");
    ck_assert_int_eq(th_sql(db_url, fmt("INSERT INTO customers (kind, name, owner_id, team_id, status, tags)"
                                        " SELECT 'person', 'Big ' || g, %lld, %lld, 'customer', ARRAY['%s']"
                                        " FROM generate_series(1, %d) g",
                                        from, team_north, tag, BIG)),
                     0);
    long long last = sql_ll("SELECT max(id) FROM customers WHERE tags @> ARRAY['%s']", tag);

    th_resp_t *r = transfer(ADMIN, fmt("{\"from_user_id\":%lld,\"to_user_id\":%lld}", from, to));
    expect_status(r, 202);
    long long id = jint(r->json, "id");
    ck_assert_str_eq(jstr(r->json, "status"), "queued");
    ck_assert_int_eq(jint(r->json, "records_total"), BIG);
    ck_assert(json_is_null(json_object_get(r->json, "counts")));
    ck_assert_str_eq(header(r, "location"), fmt("/v1/ownership-transfers/%lld", id));
    /* The run is the workers' business, not analytics'. */
    r = http_get(ADMIN, "/v1/analytics/runs?limit=200");
    expect_status(r, 200);
    ck_assert_uint_eq(json_array_size(jget(r, "data")), 0);

    /* Hold the last record, so the worker moves the others and then waits, mid-transaction. */
    PGconn *hold = pg_open();
    ck_assert_int_eq(pg_do(hold, "BEGIN"), 0);
    ck_assert_int_eq(pg_do(hold, fmt("SELECT 1 FROM customers WHERE id = %lld FOR UPDATE", last)), 0);

    th_api_t w;
    crew_start_worker(&w, "w-transfer", NULL);
    long long t0 = th_now_ms();
    json_t *t = NULL;
    for (;;) {
        t = get_transfer(id);
        if (strcmp(jstr(t, "status"), "running") == 0 && jint(t, "records_done") >= BIG - 1000)
            break;
        ck_assert_msg(th_now_ms() - t0 < 60000, "the run did not get to the held record: %s", jdump(json_incref(t)));
        usleep(100 * 1000);
    }
    double progress = json_number_value(json_object_get(t, "progress"));
    ck_assert_msg(progress > 0.5 && progress < 1, "progress %f", progress);
    /* Midway: nothing has moved for anyone else to see. */
    ck_assert_int_eq(owned(to, tag), 0);
    ck_assert_int_eq(owned(from, tag), BIG);
    ck_assert_int_eq(sql_ll("SELECT count(*) FROM record_history WHERE transfer_id = %lld", id), 0);

    /* The worker dies. Still nothing moved. */
    ck_assert_int_eq(th_api_stop(&w, SIGKILL, 15), 128 + SIGKILL);
    ck_assert_int_eq(pg_do(hold, "ROLLBACK"), 0);
    PQfinish(hold);
    /* Its transaction ends with its connection; until then, and after, the records are the old owner's. */
    long long until = th_now_ms() + 10000;
    while (sql_ll("SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'clientele-worker%%'"
                  " AND state <> 'idle' AND query LIKE '%%ownership_transfer_move%%'") > 0 &&
           th_now_ms() < until)
        usleep(50 * 1000);
    ck_assert_int_eq(owned(to, tag), 0);
    ck_assert_int_eq(owned(from, tag), BIG);
    ck_assert_int_eq(sql_ll("SELECT count(*) FROM record_history WHERE transfer_id = %lld", id), 0);
    ck_assert_str_eq(jstr(get_transfer(id), "status"), "running");

    /* The worker comes back under its name and redoes the transfer from the start: everything moves, once. */
    crew_start_worker(&w, "w-transfer", NULL);
    t0 = th_now_ms();
    for (;;) {
        t = get_transfer(id);
        if (strcmp(jstr(t, "status"), "succeeded") == 0)
            break;
        ck_assert_msg(strcmp(jstr(t, "status"), "failed") != 0, "the run failed: %s", jdump(json_incref(t)));
        ck_assert_msg(th_now_ms() - t0 < 90000, "the run did not finish: %s", jdump(json_incref(t)));
        usleep(200 * 1000);
    }
    crew_stop_worker(&w);
    ck_assert_int_eq(owned(to, tag), BIG);
    ck_assert_int_eq(owned(from, tag), 0);
    ck_assert_int_eq(jint(json_object_get(t, "counts"), "customers"), BIG);
    ck_assert_int_eq(jint(t, "records_done"), BIG);
    ck_assert(json_number_value(json_object_get(t, "progress")) == 1);
    ck_assert(json_is_string(json_object_get(t, "finished_at")));
    /* One history entry per record, naming the administrator and the transfer. */
    ck_assert_int_eq(sql_ll("SELECT count(*) FROM record_history WHERE transfer_id = %lld AND actor_id = %lld"
                            " AND op = 'update'",
                            id, users[ADMIN].id),
                     BIG);
    ck_assert_int_eq(sql_ll("SELECT count(DISTINCT entity_id) FROM record_history WHERE transfer_id = %lld", id), BIG);
    ck_assert_int_eq(sql_ll("SELECT attempts FROM analytics_runs WHERE id = (SELECT run_id FROM ownership_transfers"
                            " WHERE id = %lld)",
                            id),
                     2);
}
END_TEST

static Suite *transfers_suite(void)
{
    Suite *s = suite_create("integration/transfers");
    TCase *tc = tcase_create("request");
    tcase_set_timeout(tc, 90);
    tcase_add_test(tc, an_administrator_hands_over_open_customers_with_history_and_feed);
    tcase_add_test(tc, contacts_and_orders_follow_and_a_team_can_be_given);
    tcase_add_test(tc, a_manager_transfers_within_their_team_all_or_nothing);
    tcase_add_test(tc, reps_and_analysts_may_not);
    tcase_add_test(tc, every_bad_input_is_named);
    tcase_add_test(tc, a_deactivated_owner_keeps_their_records_until_transferred);
    suite_add_tcase(s, tc);

    tc = tcase_create("worker");
    tcase_set_timeout(tc, 240);
    tcase_add_test(tc, twenty_thousand_records_move_as_a_worker_run_all_or_nothing);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return crew_main(&conf, transfers_suite);
}
