/*
 * tests/integration/cutoff_test.c - cutting off a user's access tokens
 * across API processes: a token issued by one process and already verified
 * (and cached) by another stops working on both within a second of an
 * administrator deactivating the user or changing their password.
 *
 * Two API processes share the suite's database and Redis, as two replicas
 * behind a load balancer would: A has two event loops, B one, so every
 * request to B goes through the same per-thread token cache (api/auth.c)
 * and the uses before the cut-off are certain to have cached the token
 * there. Tokens are issued by A only; B has never seen a login. After the
 * administrator's write (through A) has been answered, each process is
 * asked every 50 ms, on GET /v1/me and GET /v1/customers, until both refuse
 * with 401; either still answering 200 a second after the write fails the
 * test, and so does a process that answers 200 again after refusing. The
 * time each process took is printed, so the log shows the deadline
 * measured.
 *
 * The processes are started once for the suite by an unchecked fixture (in
 * the parent); Check forks each test, which talks to them over HTTP. Each
 * test uses a user of its own, so the order of the tests does not matter.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>

#include "tests/support/crew.h"

#define SECRET "cutoff-test-secret-0123456789abcdefghijklmnop"
#define PASSWORD "cutoff-test-password-1"
#define NEW_PASSWORD "cutoff-test-password-2"
#define POLL_MS 50
#define DEADLINE_MS 1000
/* Uses of a token on B before the cut-off: the first verifies and caches it, the rest are cache hits. */
#define WARM_USES 8

/* clang-format off */
static const char *const env_a[] = {
    "CLIENTELE_JWT_SECRET=" SECRET,
    "CLIENTELE_THREADS=2",
    NULL,
};
static const char *const env_b[] = {
    "CLIENTELE_JWT_SECRET=" SECRET,
    "CLIENTELE_THREADS=1",
    NULL,
};
/* clang-format on */

static const crew_conf_t conf = {.name = "cutoff", .redis_db = 15, .env = env_a};

static th_api_t api_a, api_b;
static int api_exit_bad;

/* Ids filled in by main() before the runner forks; every test inherits them. */
static long long uid_leaver, uid_changer;

enum { PROC_A, PROC_B, NPROCS };
static const char *const proc_name[NPROCS] = {"A", "B"};
static const char *const probe_path[] = {"/v1/me", "/v1/customers"};
#define NPROBES (sizeof(probe_path) / sizeof(probe_path[0]))

static int port_of(int proc)
{
    return proc == PROC_A ? api_a.port : api_b.port;
}

/* --- fixtures ------------------------------------------------------------- */

static void start_apis(void)
{
    th_api_start(&api_a, db_url, th_redis_url(conf.redis_db), env_a);
    th_api_start(&api_b, db_url, th_redis_url(conf.redis_db), env_b);
}

static void stop_one(th_api_t *p, const char *name)
{
    if (p->pid <= 0)
        return;
    int st = th_api_stop(p, SIGTERM, 15);
    if (st != 0) {
        fprintf(stderr, "cutoff_test: API process %s exited with status %d; see %s\n", name, st, p->log_path);
        api_exit_bad = 1;
    }
}

static void stop_apis(void)
{
    stop_one(&api_a, "A");
    stop_one(&api_b, "B");
}

/* --- helpers -------------------------------------------------------------- */

/* One request with a bearer token (may be NULL) and an optional body; the answer in r. */
static void call(int port, const char *method, const char *path, const char *token, const char *body, th_resp_t *r)
{
    char auth[2200];
    const char *h[3] = {NULL, NULL, NULL};
    int n = 0;
    if (token != NULL)
        h[n++] = th_bearer(token, auth, sizeof(auth));
    if (body != NULL)
        h[n++] = "Content-Type: application/merge-patch+json";
    ck_assert_msg(th_http(port, method, path, h, body, body != NULL ? strlen(body) : 0, r) == 0,
                  "%s %s on port %d: no answer", method, path, port);
}

/* Logs in through process proc; fails the test unless the answer is 200. */
static void login_on(int proc, const char *email, const char *password, char access[2048])
{
    int st = th_login(port_of(proc), email, password, access, NULL);
    ck_assert_msg(st == 200, "login %s on %s: status %d", email, proc_name[proc], st);
}

/*
 * The token works on process proc: /v1/me shows user uid, and the list of
 * customers holds the one customer the user owns.
 */
static void expect_accepted(int proc, const char *token, long long uid, const char *what)
{
    th_resp_t r;
    call(port_of(proc), "GET", "/v1/me", token, NULL, &r);
    ck_assert_msg(r.status == 200, "%s: GET /v1/me on %s: status %d: %s", what, proc_name[proc], r.status, r.body);
    ck_assert_msg(jint(r.json, "id") == uid, "%s: GET /v1/me on %s shows user %lld, want %lld", what, proc_name[proc],
                  jint(r.json, "id"), uid);
    th_resp_free(&r);
    call(port_of(proc), "GET", "/v1/customers", token, NULL, &r);
    ck_assert_msg(r.status == 200, "%s: GET /v1/customers on %s: status %d: %s", what, proc_name[proc], r.status,
                  r.body);
    json_t *data = jget(&r, "data");
    ck_assert_msg(json_array_size(data) == 1 && jint(json_array_get(data, 0), "owner_id") == uid,
                  "%s: GET /v1/customers on %s: %s", what, proc_name[proc], r.body);
    th_resp_free(&r);
}

/*
 * The status of one probe; 401 must be a complete refusal (problem of type
 * unauthenticated, WWW-Authenticate naming invalid_token, no data).
 */
static int probe(int proc, const char *path, const char *token, const char *what)
{
    th_resp_t r;
    char wa[160];
    call(port_of(proc), "GET", path, token, NULL, &r);
    int st = r.status;
    ck_assert_msg(st == 200 || st == 401, "%s: GET %s on %s: status %d: %s", what, path, proc_name[proc], st, r.body);
    if (st == 401) {
        ck_assert_msg(jstr(r.json, "type") != NULL && strcmp(jstr(r.json, "type"), "/problems/unauthenticated") == 0,
                      "%s: GET %s on %s: 401 body %s", what, path, proc_name[proc], r.body);
        ck_assert_msg(th_header(&r, "www-authenticate", wa, sizeof(wa)) != NULL &&
                          strstr(wa, "error=\"invalid_token\"") != NULL,
                      "%s: GET %s on %s: 401 without WWW-Authenticate invalid_token", what, path, proc_name[proc]);
        ck_assert_ptr_null(jget(&r, "data"));
    }
    th_resp_free(&r);
    return st;
}

/*
 * After a write answered at t0 (th_now_ms()), polls every probe on both
 * processes every POLL_MS until all refuse the token, then one more round
 * that must refuse too. Fails when any probe still answers 200 DEADLINE_MS
 * after t0, or answers 200 again after it refused. Prints when each
 * process refused.
 */
static void expect_cut_off(const char *token, long long t0, const char *what)
{
    long long refused_at[NPROCS][NPROBES];
    for (int p = 0; p < NPROCS; p++)
        for (size_t i = 0; i < NPROBES; i++)
            refused_at[p][i] = -1;
    int pending = NPROCS * (int)NPROBES, extra_rounds = 1;
    for (long long tick = t0;; tick += POLL_MS) {
        for (int p = 0; p < NPROCS; p++) {
            for (size_t i = 0; i < NPROBES; i++) {
                int st = probe(p, probe_path[i], token, what);
                long long at = th_now_ms() - t0;
                if (st == 401 && refused_at[p][i] < 0) {
                    refused_at[p][i] = at;
                    pending--;
                } else if (st == 200 && refused_at[p][i] >= 0) {
                    ck_abort_msg(
                        "%s: GET %s on %s answered 200 again %lld ms after the write, having refused at %lld ms", what,
                        probe_path[i], proc_name[p], at, refused_at[p][i]);
                } else if (st == 200 && at > DEADLINE_MS) {
                    ck_abort_msg("%s: GET %s on %s still answers 200 %lld ms after the write (deadline %d ms)", what,
                                 probe_path[i], proc_name[p], at, DEADLINE_MS);
                }
            }
        }
        if (pending == 0 && extra_rounds-- == 0)
            break;
        long long wait = tick + POLL_MS - th_now_ms();
        if (wait > 0)
            usleep((useconds_t)wait * 1000);
    }
    for (int p = 0; p < NPROCS; p++) {
        long long worst = 0;
        for (size_t i = 0; i < NPROBES; i++)
            worst = refused_at[p][i] > worst ? refused_at[p][i] : worst;
        fprintf(stderr, "cutoff_test: %s: process %s refused the token %lld ms after the write (deadline %d ms)\n",
                what, proc_name[p], worst, DEADLINE_MS);
    }
}

/* Uses the token on B WARM_USES times, so that B's token cache holds it. */
static void warm_b(const char *token, long long uid, const char *what)
{
    for (int i = 0; i < WARM_USES; i++)
        expect_accepted(PROC_B, token, uid, what);
}

/* PATCH /v1/users/{id} through A with the administrator's token; returns th_now_ms() when the 200 arrived. */
static long long admin_patch(const char *admin, long long id, const char *body)
{
    char path[64];
    snprintf(path, sizeof(path), "/v1/users/%lld", id);
    th_resp_t r;
    call(api_a.port, "PATCH", path, admin, body, &r);
    long long t0 = th_now_ms();
    ck_assert_msg(r.status == 200, "PATCH %s %s: status %d: %s", path, body, r.status, r.body);
    th_resp_free(&r);
    return t0;
}

/* The administrator's own token still works on both processes: the cut-off hit only its user. */
static void expect_admin_untouched(const char *admin)
{
    long long admin_id = sql_ll("SELECT id FROM users WHERE email = 'admin@example.com'");
    th_resp_t me;
    for (int p = 0; p < NPROCS; p++) {
        call(port_of(p), "GET", "/v1/me", admin, NULL, &me);
        ck_assert_msg(me.status == 200 && jint(me.json, "id") == admin_id, "admin on %s after the write: %d",
                      proc_name[p], me.status);
        th_resp_free(&me);
    }
}

/* --- tests ---------------------------------------------------------------- */

START_TEST(deactivation_cuts_off_a_token_on_every_process)
{
    char token[2048];
    login_on(PROC_A, "leaver@example.com", PASSWORD, token);
    expect_accepted(PROC_A, token, uid_leaver, "before deactivation");
    expect_accepted(PROC_B, token, uid_leaver, "before deactivation");
    warm_b(token, uid_leaver, "before deactivation, again");

    char admin[2048];
    login_on(PROC_A, "admin@example.com", PASSWORD, admin);
    long long t0 = admin_patch(admin, uid_leaver, "{\"active\":false}");
    expect_cut_off(token, t0, "deactivation");
    expect_admin_untouched(admin);

    /* Logging in again is refused on both processes. */
    char again[2048];
    for (int p = 0; p < NPROCS; p++)
        ck_assert_int_eq(th_login(port_of(p), "leaver@example.com", PASSWORD, again, NULL), 401);
}
END_TEST

START_TEST(password_change_cuts_off_a_token_on_every_process)
{
    char token[2048];
    login_on(PROC_A, "changer@example.com", PASSWORD, token);
    expect_accepted(PROC_A, token, uid_changer, "before the password change");
    expect_accepted(PROC_B, token, uid_changer, "before the password change");
    warm_b(token, uid_changer, "before the password change, again");

    char admin[2048];
    login_on(PROC_A, "admin@example.com", PASSWORD, admin);
    long long t0 = admin_patch(admin, uid_changer, "{\"password\":\"" NEW_PASSWORD "\"}");
    expect_cut_off(token, t0, "password change");
    expect_admin_untouched(admin);

    /* The old password is refused; a login with the new one (through B) works on both processes. */
    char fresh[2048];
    ck_assert_int_eq(th_login(api_b.port, "changer@example.com", PASSWORD, fresh, NULL), 401);
    login_on(PROC_B, "changer@example.com", NEW_PASSWORD, fresh);
    expect_accepted(PROC_A, fresh, uid_changer, "new token after the password change");
    expect_accepted(PROC_B, fresh, uid_changer, "new token after the password change");
    /* ... while the old one stays refused. */
    for (int p = 0; p < NPROCS; p++)
        for (size_t i = 0; i < NPROBES; i++)
            ck_assert_int_eq(probe(p, probe_path[i], token, "old token after a new login"), 401);
}
END_TEST

static Suite *cutoff_suite(void)
{
    Suite *s = suite_create("cutoff");
    TCase *tc = tcase_create("two processes");
    tcase_add_unchecked_fixture(tc, start_apis, stop_apis);
    tcase_add_checked_fixture(tc, crew_flush_redis, NULL);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, deactivation_cuts_off_a_token_on_every_process);
    tcase_add_test(tc, password_change_cuts_off_a_token_on_every_process);
    suite_add_tcase(s, tc);
    return s;
}

/* Adds a rep in team north who owns one customer; returns the user's id. */
static long long rep_with_a_customer(const char *email, const char *name)
{
    long long id = th_user_add(db_url, email, name, "rep", "north", PASSWORD);
    char sql[400];
    snprintf(sql, sizeof(sql),
             "INSERT INTO customers (kind, name, status, owner_id, team_id)"
             " VALUES ('person', 'Customer of %s', 'customer', %lld, %lld)",
             name, id, team_north);
    if (th_sql(db_url, sql) != 0)
        exit(2);
    return id;
}

int main(void)
{
    crew_setup(&conf);
    th_user_add(db_url, "admin@example.com", "Admin", "admin", NULL, PASSWORD);
    uid_leaver = rep_with_a_customer("leaver@example.com", "Leaver");
    uid_changer = rep_with_a_customer("changer@example.com", "Changer");

    int failed = crew_srun(cutoff_suite());
    int status = crew_exit_status(failed);
    return status == 0 && !api_exit_bad ? 0 : 1;
}
