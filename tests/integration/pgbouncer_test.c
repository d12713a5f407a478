/*
 * tests/integration/pgbouncer_test.c - the API behind Debian 12's PgBouncer
 * (1.18), configured as the README's "Scaling out" section says: session
 * pooling, the `options` start-up parameter ignored, DISCARD ALL between
 * clients, the pool's session settings (TimeZone, statement_timeout) given
 * to the role on the server.
 *
 * scripts/stack.sh pgbouncer-start runs a private PgBouncer in front of the
 * test cluster (STACK_PGBOUNCER_PORT) and pgbouncer-stop ends it; this suite
 * starts it in main() and stops it on exit. The API talks to PostgreSQL
 * only through PgBouncer; the SQL oracles and user-add go to PostgreSQL
 * directly. Several clients log in, create, read, patch and list customers
 * and create and read orders at the same time; the API is then restarted
 * behind the same PgBouncer, whose server connections (with the previous
 * client's named statements, unless DISCARD ALL ran) serve it again. Two
 * tests document the mechanism: start-up options do not reach the server
 * through 1.18, and under transaction pooling one client's named statement
 * is another client's (why the README rules transaction mode out).
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>
#include <libpq-fe.h>

#include "tests/support/crew.h"

/* 2 threads x 4 connections: 8 client connections to PgBouncer, each pinned to a server connection. */
static const char *const api_env[] = {
    "CLIENTELE_THREADS=2",
    "CLIENTELE_DB_POOL=4",
    "CLIENTELE_JWT_SECRET=pgbouncer-suite-secret-0123456789abcdefgh",
    NULL,
};

static const crew_conf_t conf = {
    .name = "pgbouncer",
    .redis_db = 13,
    .env = api_env,
    .password = "pgbouncer-suite-password",
    .domain = "pgbouncer.test",
    .resource = "customers",
    .item = "record",
};

/* The crew members this suite uses (argon2 under ASan is slow: no more than needed). */
static const int members[] = {DIRECTOR, MANAGER, REP1, REP2};
#define NMEMBERS (int)(sizeof(members) / sizeof(members[0]))
static const char *const mailbox[NMEMBERS] = {"director", "manager.north", "rep.north1", "rep.north2"};

static char pgb_url[256];   /* the suite's database through PgBouncer */
static char pgb_admin[256]; /* PgBouncer's admin console */
static char pgb_txn[256];   /* the transaction-pooled alias of scripts/stack.sh */
static pid_t pgb_starter;   /* the process that started PgBouncer: Check's forked tests must not stop it */

static const char *pgb_port(void)
{
    const char *p = getenv("STACK_PGBOUNCER_PORT");
    return p != NULL && *p != '\0' ? p : "55433";
}

static void stop_pgbouncer(void)
{
    if (pgb_starter != getpid())
        return;
    pgb_starter = 0;
    if (th_stack("pgbouncer-stop") != 0)
        fprintf(stderr, "pgbouncer_test: could not stop PgBouncer\n");
}

/* --- PgBouncer's own view ---------------------------------------------------------- */

/* Rows of an admin console command (SHOW CLIENTS, SHOW SERVERS) for the suite's database. */
static PGresult *admin_show(const char *what, int *db_col)
{
    PGconn *c = PQconnectdb(pgb_admin);
    ck_assert_msg(PQstatus(c) == CONNECTION_OK, "admin console: %s", PQerrorMessage(c));
    PGresult *r = PQexec(c, what);
    ck_assert_msg(PQresultStatus(r) == PGRES_TUPLES_OK, "%s: %s", what, PQresultErrorMessage(r));
    PQfinish(c);
    *db_col = PQfnumber(r, "database");
    ck_assert_int_ge(*db_col, 0);
    return r;
}

/* How many client connections PgBouncer has for the suite's database. */
static int clients_of_suite_db(void)
{
    int col, n = 0;
    PGresult *r = admin_show("SHOW CLIENTS", &col);
    for (int i = 0; i < PQntuples(r); i++)
        n += strcmp(PQgetvalue(r, i, col), "clientele_test_pgbouncer") == 0;
    PQclear(r);
    return n;
}

/* --- a realistic mix, by several clients at once --------------------------------------- */

#define ROUNDS 4

typedef struct {
    int who;
    const char *tag;
    long long ids[ROUNDS];
} client_t;

/* Logs in afresh, then per round: create, read, patch (If-Match), list by tag, an order, read it. */
static void *client_main(void *arg)
{
    client_t *cl = arg;
    int who = cl->who;
    char access[2048];
    login_ok(users[who].email, conf.password, access, NULL);
    ck_assert_msg(strcmp(access, "") != 0, "no token for %s", who_name[who]);
    for (int i = 0; i < ROUNDS; i++) {
        const char *name = fmt("Pooled %s %d", who_name[who], i);
        th_resp_t *r =
            http_post(who, "/v1/customers",
                      jdump(json_pack("{s:s, s:s, s:[s]}", "kind", "company", "name", name, "tags", cl->tag)));
        expect_status(r, 201);
        long long id = jint(r->json, "id");
        ck_assert_int_gt(id, 0);
        ck_assert_int_eq(jint(r->json, "owner_id"), users[who].id);
        cl->ids[i] = id;

        r = http_get(who, fmt("/v1/customers/%lld", id));
        expect_status(r, 200);
        ck_assert_str_eq(jstr(r->json, "name"), name);
        const char *etag = header(r, "etag");
        ck_assert_ptr_nonnull(etag);

        r = http_patch(who, fmt("/v1/customers/%lld", id), fmt("{\"industry\":\"round %d\"}", i), etag);
        expect_status(r, 200);
        ck_assert_int_eq(jint(r->json, "version"), 2);
        ck_assert_str_eq(jstr(r->json, "industry"), fmt("round %d", i));

        json_t *items = list_all(who, fmt("/v1/customers?tag=%s", cl->tag), 2);
        expect_ids(items, cl->ids, (size_t)i + 1);

        json_t *order = json_pack("{s:I, s:s, s:s, s:s, s:s, s:[{s:s, s:i, s:s}]}", "customer_id", (json_int_t)id,
                                  "ordered_at", "2024-03-01T10:00:00Z", "status", "pending", "currency", "EUR", "total",
                                  "20.00", "lines", "sku", "SKU-1", "quantity", 2, "unit_price", "10.00");
        r = http_post(who, "/v1/orders", jdump(order));
        expect_status(r, 201);
        long long oid = jint(r->json, "id");
        r = http_get(who, fmt("/v1/orders/%lld", oid));
        expect_status(r, 200);
        ck_assert_int_eq(jint(r->json, "customer_id"), id);
        ck_assert_str_eq(jstr(r->json, "total"), "20.00");
    }
    return NULL;
}

/* Every member runs the mix at once; the database then holds exactly what the answers said. */
static void run_mix(const char *tag_prefix)
{
    pthread_t t[NMEMBERS];
    client_t cl[NMEMBERS];
    for (int i = 0; i < NMEMBERS; i++) {
        cl[i] = (client_t){.who = members[i], .tag = uniq(tag_prefix)};
        ck_assert_int_eq(pthread_create(&t[i], NULL, client_main, &cl[i]), 0);
    }
    for (int i = 0; i < NMEMBERS; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < NMEMBERS; i++) {
        ck_assert_int_eq(sql_ll("SELECT count(*) FROM customers WHERE '%s' = ANY (tags) AND version = 2"
                                " AND owner_id = %lld",
                                cl[i].tag, users[cl[i].who].id),
                         ROUNDS);
        ck_assert_int_eq(sql_ll("SELECT count(*) FROM orders o JOIN customers c ON c.id = o.customer_id"
                                " WHERE '%s' = ANY (c.tags) AND o.total = 20.00",
                                cl[i].tag),
                         ROUNDS);
    }
}

START_TEST(session_pooling_serves_concurrent_clients)
{
    /* Every pool connection of the API is a client of PgBouncer, not of PostgreSQL. */
    long long until = th_now_ms() + 10000;
    while (clients_of_suite_db() < 8 && th_now_ms() < until)
        usleep(50 * 1000);
    ck_assert_int_ge(clients_of_suite_db(), 8);
    run_mix("pooled");
}
END_TEST

/*
 * Restarting the API behind the same PgBouncer: its new connections get the
 * server connections the previous process used (PgBouncer keeps them), and
 * the pool prepares s0, s1, ... again. That works only because
 * server_reset_query = DISCARD ALL dropped the old statements.
 */
START_TEST(restarted_api_reuses_server_connections)
{
    run_mix("restarted");
    int col, pidcol, reused = 0;
    PGresult *r = admin_show("SHOW SERVERS", &col);
    pidcol = PQfnumber(r, "remote_pid");
    ck_assert_int_ge(pidcol, 0);
    const char *before = getenv("PGB_TEST_SERVER_PIDS");
    ck_assert_ptr_nonnull(before);
    for (int i = 0; i < PQntuples(r); i++)
        if (strcmp(PQgetvalue(r, i, col), "clientele_test_pgbouncer") == 0 &&
            strstr(before, fmt(",%s,", PQgetvalue(r, i, pidcol))) != NULL)
            reused++;
    PQclear(r);
    ck_assert_msg(reused > 0, "no server connection of the first API process served the second (%s)", before);
}
END_TEST

/*
 * PgBouncer 1.18 cannot pass the `options` start-up parameter (the pool's
 * "-c TimeZone=UTC -c statement_timeout=..."): it refuses the connection
 * unless the parameter is ignored, and then the role's settings on the
 * server are what the session gets. Without PgBouncer the options win.
 */
START_TEST(startup_options_do_not_pass_role_settings_do)
{
    const char *keys[] = {"dbname", "options", NULL};
    const char *vals[] = {pgb_url, "-c TimeZone=Asia/Tokyo -c statement_timeout=1234", NULL};
    PGconn *c = PQconnectdbParams(keys, vals, 1);
    ck_assert_msg(PQstatus(c) == CONNECTION_OK, "through PgBouncer: %s", PQerrorMessage(c));
    PGresult *r = PQexec(c, "SELECT current_setting('TimeZone'), current_setting('statement_timeout')");
    ck_assert_int_eq(PQresultStatus(r), PGRES_TUPLES_OK);
    ck_assert_str_eq(PQgetvalue(r, 0, 0), "UTC"); /* the role's; the database's default is America/New_York */
    ck_assert_str_eq(PQgetvalue(r, 0, 1), "5s");  /* the role's, not 1234 */
    PQclear(r);
    PQfinish(c);

    /* Straight to PostgreSQL, options beat the role's settings: the worker's connections keep theirs. */
    vals[0] = db_url;
    c = PQconnectdbParams(keys, vals, 1);
    ck_assert_msg(PQstatus(c) == CONNECTION_OK, "straight to PostgreSQL: %s", PQerrorMessage(c));
    r = PQexec(c, "SELECT current_setting('TimeZone'), current_setting('statement_timeout')");
    ck_assert_int_eq(PQresultStatus(r), PGRES_TUPLES_OK);
    ck_assert_str_eq(PQgetvalue(r, 0, 0), "Asia/Tokyo");
    ck_assert_str_eq(PQgetvalue(r, 0, 1), "1234ms");
    PQclear(r);
    PQfinish(c);
}
END_TEST

/*
 * Why not transaction pooling: two clients share one server connection
 * (the clientele_transaction alias has a pool of one), so a statement name
 * prepared by one exists for the other. The pool names its statements s0,
 * s1, ... per connection: the second API connection would fail to prepare
 * s0, or run the first one's s0 with its own parameters.
 */
START_TEST(transaction_pooling_shares_statement_names)
{
    const char *name = fmt("s0_%d", (int)getpid());
    PGconn *a = PQconnectdb(pgb_txn), *b = PQconnectdb(pgb_txn);
    ck_assert_msg(PQstatus(a) == CONNECTION_OK && PQstatus(b) == CONNECTION_OK, "through PgBouncer: %s%s",
                  PQerrorMessage(a), PQerrorMessage(b));
    PGresult *r = PQprepare(a, name, "SELECT 'from a'::text", 0, NULL);
    ck_assert_msg(PQresultStatus(r) == PGRES_COMMAND_OK, "prepare on a: %s", PQresultErrorMessage(r));
    PQclear(r);

    r = PQprepare(b, name, "SELECT 'from b'::text", 0, NULL);
    ck_assert_int_eq(PQresultStatus(r), PGRES_FATAL_ERROR);
    ck_assert_str_eq(PQresultErrorField(r, PG_DIAG_SQLSTATE), "42P05"); /* duplicate_prepared_statement */
    PQclear(r);

    r = PQexecPrepared(b, name, 0, NULL, NULL, NULL, 0);
    ck_assert_int_eq(PQresultStatus(r), PGRES_TUPLES_OK);
    ck_assert_str_eq(PQgetvalue(r, 0, 0), "from a"); /* b runs a's statement */
    PQclear(r);

    r = PQexec(a, fmt("DEALLOCATE %s", name));
    PQclear(r);
    PQfinish(a);
    PQfinish(b);
}
END_TEST

static Suite *first_suite(void)
{
    Suite *s = suite_create("pgbouncer");
    TCase *tc = tcase_create("session");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, session_pooling_serves_concurrent_clients);
    tcase_add_test(tc, startup_options_do_not_pass_role_settings_do);
    tcase_add_test(tc, transaction_pooling_shares_statement_names);
    suite_add_tcase(s, tc);
    return s;
}

static Suite *restart_suite(void)
{
    Suite *s = suite_create("pgbouncer-restart");
    TCase *tc = tcase_create("restart");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, restarted_api_reuses_server_connections);
    suite_add_tcase(s, tc);
    return s;
}

/* Remote pids of PgBouncer's server connections for the suite's database, as ",pid,pid,". */
static char *server_pids(void)
{
    PGconn *c = PQconnectdb(pgb_admin);
    PGresult *r = PQexec(c, "SHOW SERVERS");
    int col = PQfnumber(r, "database"), pidcol = PQfnumber(r, "remote_pid");
    char *out = fmt(",");
    for (int i = 0; PQresultStatus(r) == PGRES_TUPLES_OK && i < PQntuples(r); i++)
        if (strcmp(PQgetvalue(r, i, col), "clientele_test_pgbouncer") == 0)
            out = fmt("%s%s,", out, PQgetvalue(r, i, pidcol));
    PQclear(r);
    PQfinish(c);
    return out;
}

static int login_all(void)
{
    int bad = 0;
    for (int i = 0; i < NMEMBERS; i++) {
        int who = members[i];
        int st = th_login(api.port, users[who].email, conf.password, users[who].token, NULL);
        if (st != 200) {
            fprintf(stderr, "pgbouncer_test: login of %s answered %d\n", users[who].email, st);
            bad = 1;
        }
    }
    return bad;
}

int main(void)
{
    long long t0 = th_now_ms();
    crew_setup(&conf);
    /*
     * The README's PostgreSQL side: the pool's session settings on the role.
     * The database's own default time zone is set to another one, as on a
     * server that does not run in UTC.
     */
    if (th_sql(db_url, "ALTER DATABASE clientele_test_pgbouncer SET timezone = 'America/New_York'") != 0 ||
        th_sql(db_url, "ALTER ROLE clientele IN DATABASE clientele_test_pgbouncer SET timezone = 'UTC'") != 0 ||
        th_sql(db_url, "ALTER ROLE clientele IN DATABASE clientele_test_pgbouncer SET statement_timeout = '5s'") != 0)
        return 2;
    for (int i = 0; i < NMEMBERS; i++) {
        int who = members[i];
        users[who].email = fmt("%s@%s", mailbox[i], conf.domain);
        users[who].id =
            th_user_add(db_url, users[who].email, users[who].name, users[who].role, users[who].team, conf.password);
        users[who].team_id = users[who].team == NULL ? 0 : team_north;
    }

    if (th_stack("pgbouncer-start") != 0) {
        fprintf(stderr, "pgbouncer_test: PgBouncer did not start\n");
        return 2;
    }
    pgb_starter = getpid();
    atexit(stop_pgbouncer);
    snprintf(pgb_url, sizeof(pgb_url), "postgresql://clientele@127.0.0.1:%s/clientele_test_pgbouncer", pgb_port());
    snprintf(pgb_admin, sizeof(pgb_admin), "postgresql://postgres@127.0.0.1:%s/pgbouncer", pgb_port());
    snprintf(pgb_txn, sizeof(pgb_txn), "postgresql://clientele@127.0.0.1:%s/clientele_transaction", pgb_port());

    th_api_start(&api, pgb_url, th_redis_url(conf.redis_db), conf.env);
    int failed = login_all() ? 1 : crew_srun(first_suite());
    char *pids = server_pids();
    if (th_api_stop(&api, SIGTERM, 20) != 0) {
        fprintf(stderr, "pgbouncer_test: clientele-api did not exit 0; see %s\n", api.log_path);
        failed++;
    }

    setenv("PGB_TEST_SERVER_PIDS", pids, 1);
    th_api_start(&api, pgb_url, th_redis_url(conf.redis_db), conf.env);
    if (failed == 0)
        failed = login_all() ? 1 : crew_srun(restart_suite());
    if (th_api_stop(&api, SIGTERM, 20) != 0) {
        fprintf(stderr, "pgbouncer_test: clientele-api did not exit 0; see %s\n", api.log_path);
        failed++;
    }
    stop_pgbouncer();
    fprintf(stderr, "pgbouncer: %lld ms in all\n", th_now_ms() - t0);
    return failed == 0 ? 0 : 1;
}
