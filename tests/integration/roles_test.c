/*
 * tests/integration/roles_test.c - least privilege: the database roles the API
 * and the worker log in as (schema/0016, 0018) hold only what they use.
 *
 * Each check connects as the role itself, with the password scripts/test.sh
 * gave it (th_db_url_as), as the processes do; without that password (a
 * suite run by hand) the owner's session SET ROLEs to it, which judges the
 * same privileges. The processes themselves are checked too: the API's and
 * the worker's sessions in pg_stat_activity are those roles', and a full
 * RFM run by the worker still swaps customer_analytics (through the owner's
 * SECURITY DEFINER functions) and keeps its owner and grants.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>

#include "tests/support/crew.h"

#define PASSWORD "roles-suite-password"

static const char *const api_env[] = {
    "CLIENTELE_THREADS=1",
    "CLIENTELE_JWT_SECRET=roles-suite-secret-0123456789abcdefghijk",
    NULL,
};

static const crew_conf_t conf = {
    .name = "roles",
    .redis_db = 2,
    .env = api_env,
    .password = PASSWORD,
    .domain = "roles.test",
    .resource = "customers",
    .item = "record",
};

/* A session as `role`: logged in with its password when the suite has it, else the owner's SET ROLE. */
static PGconn *connect_as(const char *role)
{
    char buf[512];
    const char *url = th_db_url_as(db_url, role, buf, sizeof(buf));
    PGconn *c = PQconnectdb(url);
    ck_assert_msg(PQstatus(c) == CONNECTION_OK, "cannot connect as %s: %s", role, PQerrorMessage(c));
    if (url == db_url)
        ck_assert_int_eq(pg_do(c, fmt("SET ROLE %s", role)), 0);
    PQsetNoticeProcessor(c, NULL, NULL);
    return c;
}

/* The SQLSTATE a statement ends with ("" when it succeeds), in a transaction rolled back afterwards. */
static const char *try_sql(PGconn *c, const char *sql)
{
    PQclear(PQexec(c, "BEGIN"));
    PGresult *r = PQexec(c, sql);
    ExecStatusType st = PQresultStatus(r);
    const char *state =
        st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK
            ? ""
            : fmt("%s",
                  PQresultErrorField(r, PG_DIAG_SQLSTATE) != NULL ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : "?");
    PQclear(r);
    PQclear(PQexec(c, "ROLLBACK"));
    return state;
}

#define DENIED "42501" /* insufficient_privilege */

#define expect_denied(c, sql)                                                                                          \
    do {                                                                                                               \
        const char *st_ = try_sql((c), (sql));                                                                         \
        ck_assert_msg(strcmp(st_, DENIED) == 0, "line %d: %s was %s", __LINE__, (sql),                                 \
                      *st_ == '\0' ? "allowed" : fmt("refused with %s, not for privileges", st_));                     \
    } while (0)
#define expect_allowed(c, sql)                                                                                         \
    do {                                                                                                               \
        const char *st_ = try_sql((c), (sql));                                                                         \
        ck_assert_msg(*st_ == '\0', "line %d: %s was refused (%s)", __LINE__, (sql), st_);                             \
    } while (0)

static long long some_customer(void)
{
    long long n = sql_ll("SELECT count(*) FROM customers");
    if (n == 0)
        ck_assert_int_eq(th_sql(db_url, fmt("INSERT INTO customers (kind, name, owner_id, team_id)"
                                            " SELECT 'person', 'Role ' || g, %lld, %lld FROM generate_series(1, 20) g;"
                                            "INSERT INTO orders (customer_id, ordered_at, status, currency, total)"
                                            " SELECT id, now() - id * interval '3 days', 'completed', 'EUR', id + 0.5"
                                            " FROM customers",
                                            users[REP1].id, team_north)),
                         0);
    return sql_ll("SELECT min(id) FROM customers");
}

static void expect_neither_superuser_nor_owner(const char *role)
{
    ck_assert_int_eq(sql_ll("SELECT count(*) FROM pg_roles WHERE rolname = '%s' AND NOT rolsuper AND NOT rolcreaterole"
                            " AND NOT rolcreatedb AND NOT rolbypassrls AND NOT rolreplication",
                            role),
                     1);
    ck_assert_int_eq(sql_ll("SELECT count(*) FROM pg_class WHERE relowner = '%s'::regrole", role), 0);
    ck_assert_int_eq(sql_ll("SELECT count(*) FROM pg_proc WHERE proowner = '%s'::regrole", role), 0);
    ck_assert_int_eq(sql_ll("SELECT count(*) FROM pg_namespace WHERE nspowner = '%s'::regrole", role), 0);
    ck_assert_int_eq(sql_ll("SELECT count(*) FROM pg_database WHERE datdba = '%s'::regrole", role), 0);
}

START_TEST(api_role_holds_only_what_the_api_uses)
{
    long long cid = some_customer();
    ck_assert_int_eq(th_sql(db_url, fmt("UPDATE customers SET industry = 'Roles' WHERE id = %lld", cid)), 0);
    long long hid = sql_ll("SELECT max(id) FROM record_history");
    expect_neither_superuser_nor_owner("clientele_api");
    PGconn *c = connect_as("clientele_api");
    PGresult *who = PQexec(c, "SELECT current_user");
    ck_assert_str_eq(PQgetvalue(who, 0, 0), "clientele_api");
    PQclear(who);

    /* What it does every day. */
    expect_allowed(c, fmt("UPDATE customers SET industry = 'Api' WHERE id = %lld", cid));
    expect_allowed(c, "SELECT count(*) FROM record_history");
    expect_allowed(c, "SELECT count(*) FROM customer_analytics JOIN customer_clv USING (customer_id)");

    /* History: append and read only. */
    expect_denied(c, fmt("UPDATE record_history SET op = 'delete' WHERE id = %lld", hid));
    expect_denied(c, fmt("DELETE FROM record_history WHERE id = %lld", hid));
    expect_denied(c, "UPDATE customer_analytics_history SET segment = 'x'");
    expect_denied(c, "INSERT INTO customer_analytics_history (run_id, customer_id, segment, lifecycle)"
                     " VALUES (1, 1, 'x', 'y')");
    expect_denied(c, "UPDATE changes SET op = 'delete'");
    /* Nothing to truncate, drop or create; no catalogue of passwords; no owner to become. */
    static const char *const tables[] = {"customers",         "orders",  "contacts",       "users",
                                         "record_history",    "changes", "analytics_runs", "outbox",
                                         "schema_migrations", NULL};
    for (const char *const *t = tables; *t != NULL; t++) {
        expect_denied(c, fmt("TRUNCATE %s CASCADE", *t));
        expect_denied(c, fmt("DROP TABLE %s CASCADE", *t));
    }
    expect_denied(c, "DELETE FROM customers");
    expect_denied(c, "CREATE TABLE public.mine (x int)");
    expect_denied(c, "ALTER TABLE customers ADD COLUMN mine int");
    expect_denied(c, "SELECT rolpassword FROM pg_authid");
    expect_denied(c, "SELECT * FROM schema_migrations");
    expect_denied(c, "UPDATE customer_analytics SET segment = 'x'");
    expect_denied(c, "UPDATE outbox SET published_at = now()");
    expect_denied(c, "SELECT customer_analytics_drop_retired(100)");
    expect_denied(c, "SELECT customer_analytics_swap(1, 'customer_analytics_next_1_ab', 100)");
    expect_denied(c, "SET ROLE clientele");
    expect_denied(c, "SET ROLE clientele_worker");
    PQfinish(c);
    ck_assert_int_eq(sql_ll("SELECT count(*) FROM record_history WHERE id = %lld", hid), 1);
}
END_TEST

START_TEST(worker_role_holds_only_what_the_worker_uses)
{
    long long cid = some_customer();
    expect_neither_superuser_nor_owner("clientele_worker");
    PGconn *c = connect_as("clientele_worker");
    /* It reads every table: it makes the backups. */
    PGresult *t = PQexec(c, "SELECT format('%I.%I', schemaname, tablename) FROM pg_tables"
                            " WHERE schemaname NOT IN ('pg_catalog', 'information_schema')");
    ck_assert_int_gt(PQntuples(t), 15);
    for (int i = 0; i < PQntuples(t); i++)
        expect_allowed(c, fmt("SELECT count(*) FROM %s", PQgetvalue(t, i, 0)));
    PQclear(t);
    expect_allowed(c, "INSERT INTO customer_analytics_history (run_id, customer_id, segment, lifecycle)"
                      " VALUES (1, 1, 'x', 'y')");
    expect_allowed(c, "UPDATE outbox SET published_at = now() WHERE false");
    /* It writes no records, rewrites no history, drops nothing, reads no passwords. */
    expect_denied(c, fmt("UPDATE customers SET name = 'w' WHERE id = %lld", cid));
    expect_denied(c, "INSERT INTO users (email, name, password_hash, role_id) VALUES ('w@x', 'w', 'x', 1)");
    expect_denied(c, "UPDATE customer_analytics_history SET segment = 'x'");
    expect_denied(c, "DELETE FROM customer_clv_history");
    expect_denied(c, "UPDATE record_history SET op = 'delete'");
    expect_denied(c, "TRUNCATE customer_analytics");
    expect_denied(c, "DROP TABLE customer_analytics");
    expect_denied(c, "ALTER TABLE customer_analytics RENAME TO mine");
    expect_denied(c, "CREATE TABLE customer_analytics_next_1_ab (x int)");
    expect_denied(c, "SELECT rolpassword FROM pg_authid");
    expect_denied(c, "SET ROLE clientele");
    /* The owner's steps it may take, only on the names they accept. */
    const char *st = try_sql(c, "SELECT customer_analytics_stage('customers', 1)");
    ck_assert_msg(*st != '\0' && strcmp(st, DENIED) != 0, "stage took another name (%s)", st);
    expect_allowed(c, "SELECT customer_analytics_stage('customer_analytics_next_1_ab', 1)");
    PQfinish(c);
}
END_TEST

/* A password is asked for and checked: the roles log in as in production. */
START_TEST(roles_log_in_with_their_password)
{
    char buf[512];
    const char *url = th_db_url_as(db_url, "clientele_api", buf, sizeof(buf));
    if (url == db_url)
        return; /* run by hand, without scripts/test.sh's passwords */
    char *wrong = strdup(url), *colon = strchr(wrong + strlen("postgresql://"), ':');
    colon[1] = colon[1] == 'x' ? 'y' : 'x';
    PGconn *c = PQconnectdb(wrong);
    ck_assert_int_ne(PQstatus(c), CONNECTION_OK);
    ck_assert_msg(strstr(PQerrorMessage(c), "password authentication failed") != NULL, "%s", PQerrorMessage(c));
    PQfinish(c);
    free(wrong);
    ck_assert_int_eq(sql_ll("SELECT count(*) FROM pg_authid WHERE rolname IN ('clientele_api', 'clientele_worker')"
                            " AND rolcanlogin AND rolpassword LIKE 'SCRAM-SHA-256$%%'"),
                     2);
}
END_TEST

/* The processes log in as those roles, and a full RFM run still swaps customer_analytics, keeping owner and grants. */
START_TEST(processes_act_as_their_roles)
{
    some_customer();
    expect_status(http_get(ADMIN, "/v1/customers?limit=1"), 200);
    ck_assert_int_gt(sql_ll("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                            " AND application_name = 'clientele-api'"),
                     0);
    /* Logged in as the role (with scripts/test.sh's passwords), not as the owner acting as it. */
    if (getenv("CLIENTELE_TEST_DB_PASSWORD") != NULL)
        ck_assert_int_eq(sql_ll("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                                " AND application_name = 'clientele-api' AND usename <> 'clientele_api'"),
                         0);
    char owner[64], acl[1024], acl_after[1024];
    th_sql_value(db_url, "SELECT relowner::regrole::text FROM pg_class WHERE oid = 'customer_analytics'::regclass",
                 owner, sizeof(owner));
    th_sql_value(db_url,
                 "SELECT array_to_string(ARRAY(SELECT a::text FROM unnest(relacl) a ORDER BY 1), ',')"
                 " FROM pg_class WHERE oid = 'customer_analytics'::regclass",
                 acl, sizeof(acl));
    long long oid = sql_ll("SELECT 'customer_analytics'::regclass::oid::bigint");

    th_api_t w;
    crew_start_worker(&w, "roles", NULL);
    th_resp_t *r = http_post(ADMIN, "/v1/analytics/runs", "{\"kind\": \"rfm\"}");
    expect_status(r, 202);
    long long id = jint(r->json, "id");
    long long until = th_now_ms() + 60000;
    while (sql_ll("SELECT count(*) FROM analytics_runs WHERE id = %lld AND status IN ('succeeded', 'failed')", id) ==
               0 &&
           th_now_ms() < until)
        usleep(100 * 1000);
    char status[1024];
    th_sql_value(db_url, fmt("SELECT status || coalesce(': ' || error, '') FROM analytics_runs WHERE id = %lld", id),
                 status, sizeof(status));
    ck_assert_str_eq(status, "succeeded");
    if (getenv("CLIENTELE_TEST_DB_PASSWORD") != NULL) {
        ck_assert_int_gt(sql_ll("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                                " AND application_name LIKE 'clientele-worker%%'"),
                         0);
        ck_assert_int_eq(sql_ll("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                                " AND application_name LIKE 'clientele-worker%%' AND usename <> 'clientele_worker'"),
                         0);
    }
    crew_stop_worker(&w);
    /* Swapped (a new table), not upserted into the old one; the owner's, with the same grants. */
    ck_assert_int_ne(sql_ll("SELECT 'customer_analytics'::regclass::oid::bigint"), oid);
    ck_assert_int_eq(sql_ll("SELECT count(*) FROM customer_analytics WHERE run_id <> %lld", id), 0);
    char owner_after[64];
    th_sql_value(db_url, "SELECT relowner::regrole::text FROM pg_class WHERE oid = 'customer_analytics'::regclass",
                 owner_after, sizeof(owner_after));
    ck_assert_str_eq(owner_after, owner);
    th_sql_value(db_url,
                 "SELECT array_to_string(ARRAY(SELECT a::text FROM unnest(relacl) a ORDER BY 1), ',')"
                 " FROM pg_class WHERE oid = 'customer_analytics'::regclass",
                 acl_after, sizeof(acl_after));
    ck_assert_str_eq(acl_after, acl);
    ck_assert_ptr_nonnull(strstr(acl, "clientele_api=r/"));
    ck_assert_ptr_nonnull(strstr(acl, "clientele_worker=arw/"));
}
END_TEST

static Suite *roles_suite(void)
{
    Suite *s = suite_create("roles");
    TCase *tc = tcase_create("roles");
    tcase_set_timeout(tc, 120);
    tcase_add_checked_fixture(tc, crew_flush_redis, NULL);
    tcase_add_test(tc, api_role_holds_only_what_the_api_uses);
    tcase_add_test(tc, worker_role_holds_only_what_the_worker_uses);
    tcase_add_test(tc, roles_log_in_with_their_password);
    tcase_add_test(tc, processes_act_as_their_roles);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return crew_main(&conf, roles_suite);
}
