/*
 * tests/integration/backup_test.c - backups and restores: clientele-admin,
 * the worker's run kind `backup`, its daily schedule and /v1/admin/backups,
 * against the real PostgreSQL, Redis, pg_dump and pg_restore.
 *
 * The restore drill: load data, back up (through the API and a worker, and
 * with clientele-admin), change the data, restore each file into a new
 * database, and compare every table's row count and a checksum of its
 * contents with the state at backup time; then a truncated and an altered
 * copy of the file, which verify and restore must refuse, restoring
 * nothing. Around it: the rights (only `backups` scope `all` lists or starts
 * backups; analytics never shows them), the daily backup (two workers, one
 * schedule, one backup per due time), retention and the errors an operator
 * meets.
 *
 * Workers log in as clientele_worker (tests/support/crew.c), so every
 * backup here is made with that role's privileges. The files go to a folder
 * of this suite under the stack, which the API reads as well.
 */
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <check.h>

#include "tests/support/crew.h"

#define PASSWORD "backup-suite-password"
#define BACKUP_RE "^clientele-[0-9]{8}-[0-9]{6}\\.backup$"

static char backup_dir[512];
static char backup_env[600];
static const char *api_env[] = {
    "CLIENTELE_THREADS=2",
    "CLIENTELE_JWT_SECRET=backup-suite-secret-0123456789abcdefghij",
    backup_env,
    NULL,
};

static const crew_conf_t conf = {
    .name = "backup",
    .redis_db = 3,
    .env = api_env,
    .password = PASSWORD,
    .domain = "backup.test",
    .resource = "customers",
    .item = "record",
};

/* --- clientele-admin ---------------------------------------------------------- */

typedef struct st_admin_out_t {
    int status;
    char out[8192], err[8192];
} admin_out_t;

static void read_file(const char *path, char *buf, size_t len)
{
    FILE *f = fopen(path, "r");
    size_t n = f != NULL ? fread(buf, 1, len - 1, f) : 0;
    buf[n] = '\0';
    if (f != NULL)
        fclose(f);
}

/*
 * Runs clientele-admin with args (NULL-terminated) as the database owner on
 * the suite's database (CLIENTELE_DATABASE_URL, CLIENTELE_BACKUP_DIR), plus
 * env ("NAME=value", NULL-terminated, may be NULL). Kept.
 */
static admin_out_t *admin(const char *const *env, const char *const *args)
{
    admin_out_t *o = keep(calloc(1, sizeof(*o)));
    const char *stack = getenv("STACK_DIR") != NULL ? getenv("STACK_DIR") : ".test";
    const char *outp = fmt("%s/logs/backup-admin-%d.out", stack, (int)getpid());
    const char *errp = fmt("%s/logs/backup-admin-%d.err", stack, (int)getpid());
    const char *bin = fmt("%s/clientele-admin",
                          getenv("CLIENTELE_TEST_BUILD") != NULL ? getenv("CLIENTELE_TEST_BUILD") : "build/asan");
    const char *argv[16] = {"clientele-admin"};
    int n = 1;
    for (const char *const *a = args; *a != NULL && n < 15; a++)
        argv[n++] = *a;
    argv[n] = NULL;
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        setenv("CLIENTELE_DATABASE_URL", db_url, 1);
        setenv("CLIENTELE_BACKUP_DIR", backup_dir, 1);
        for (const char *const *e = env; e != NULL && *e != NULL; e++)
            putenv((char *)*e);
        int fo = open(outp, O_CREAT | O_TRUNC | O_WRONLY, 0644), fe = open(errp, O_CREAT | O_TRUNC | O_WRONLY, 0644);
        dup2(fo, 1);
        dup2(fe, 2);
        execv(bin, (char *const *)argv);
        _exit(127);
    }
    int st;
    waitpid(pid, &st, 0);
    o->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    read_file(outp, o->out, sizeof(o->out));
    read_file(errp, o->err, sizeof(o->err));
    return o;
}

#define ARGS(...) ((const char *const[]){__VA_ARGS__, NULL})

/* The file a `clientele-admin backup` wrote ("wrote <path>: ..."). */
static const char *written(const admin_out_t *o)
{
    ck_assert_msg(o->status == 0, "clientele-admin backup: %d: %s", o->status, o->err);
    const char *p = strstr(o->out, "wrote ");
    ck_assert_ptr_nonnull(p);
    p += 6;
    return fmt("%.*s", (int)(strchr(p, ':') - p), p);
}

/* --- the state of a database: every table's rows and a checksum of its contents ------------ */

/* A database of the suite's server, by name: its URL as the owner. */
static const char *url_of(const char *dbname)
{
    const char *slash = strrchr(db_url, '/');
    return fmt("%.*s/%s", (int)(slash - db_url), db_url, dbname);
}

static PGresult *query(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    ck_assert_msg(PQresultStatus(r) == PGRES_TUPLES_OK, "%s: %s", sql, PQresultErrorMessage(r));
    return r;
}

/*
 * {"schema.table": "<rows> <md5 of the rows as text, sorted>"} for every
 * table of the database; scratch tables of an RFM write excepted, as backups
 * leave them out.
 */
static json_t *state_of(const char *url)
{
    PGconn *c = PQconnectdb(url);
    ck_assert_msg(PQstatus(c) == CONNECTION_OK, "%s", PQerrorMessage(c));
    PGresult *t = query(c, "SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c"
                           " JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'r'"
                           " AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_'"
                           " AND c.relname !~ '^customer_analytics_(next|retired)_' ORDER BY 1");
    json_t *state = json_object();
    for (int i = 0; i < PQntuples(t); i++) {
        const char *table = PQgetvalue(t, i, 0);
        PGresult *r = query(c, fmt("SELECT count(*) || ' ' || md5(coalesce(string_agg(x::text, E'\\n' ORDER BY"
                                   " x::text), '')) FROM %s x",
                                   table));
        json_object_set_new(state, table, json_string(PQgetvalue(r, 0, 0)));
        PQclear(r);
    }
    PQclear(t);
    PQfinish(c);
    return keep(state);
}

static void expect_same_state(json_t *got, json_t *want, const char *what)
{
    const char *k;
    json_t *v;
    json_object_foreach(want, k, v)
    {
        json_t *g = json_object_get(got, k);
        ck_assert_msg(g != NULL, "%s: table %s is missing", what, k);
        ck_assert_msg(json_equal(g, v), "%s: table %s holds %s, at backup time it held %s", what, k,
                      json_string_value(g), json_string_value(v));
    }
    json_object_foreach(got, k, v)
    {
        ck_assert_msg(json_object_get(want, k) != NULL, "%s: table %s was not there at backup time", what, k);
    }
}

static int database_exists(const char *name)
{
    return sql_ll("SELECT count(*) FROM pg_database WHERE datname = '%s'", name) == 1;
}

static void drop_database(const char *name)
{
    ck_assert_int_eq(th_sql(db_url, fmt("DROP DATABASE IF EXISTS %s WITH (FORCE)", name)), 0);
}

/* --- runs ------------------------------------------------------------------------- */

static const char *wait_run(long long id, int timeout_ms)
{
    char status[32] = "";
    long long until = th_now_ms() + timeout_ms;
    while (th_now_ms() < until) {
        th_sql_value(db_url, fmt("SELECT status FROM analytics_runs WHERE id = %lld", id), status, sizeof(status));
        if (strcmp(status, "succeeded") == 0 || strcmp(status, "failed") == 0 || strcmp(status, "cancelled") == 0)
            break;
        usleep(100 * 1000);
    }
    return fmt("%s", status);
}

/* The backup run requested through the API, made by a worker; returns the run's document (kept). */
static json_t *backup_through_api(void)
{
    th_resp_t *r = call_as(ADMIN, "POST", "/v1/admin/backups", NULL, NULL, NULL, NULL);
    expect_status(r, 202);
    ck_assert_str_eq(header(r, "location"), "/v1/admin/backups");
    ck_assert_str_eq(jstr(r->json, "kind"), "backup");
    ck_assert_str_eq(jstr(r->json, "status"), "queued");
    ck_assert_int_eq(jint(r->json, "requested_by"), users[ADMIN].id);
    long long id = jint(r->json, "id");
    const char *st = wait_run(id, 60000);
    char error[1024] = "";
    th_sql_value(db_url, fmt("SELECT coalesce(error, '') FROM analytics_runs WHERE id = %lld", id), error,
                 sizeof(error));
    ck_assert_msg(strcmp(st, "succeeded") == 0, "backup run %lld is %s: %s", id, st, error);
    th_resp_t *list = http_get(ADMIN, "/v1/admin/backups");
    expect_status(list, 200);
    json_t *runs = jget(list, "runs");
    for (size_t i = 0; i < json_array_size(runs); i++)
        if (jint(json_array_get(runs, i), "id") == id)
            return json_array_get(runs, i);
    ck_abort_msg("run %lld is not among the backup runs: %s", id, list->body);
    return NULL;
}

/* The listed file of that name, or NULL. */
static json_t *listed(const char *name)
{
    th_resp_t *list = http_get(ADMIN, "/v1/admin/backups");
    expect_status(list, 200);
    json_t *data = jget(list, "data");
    for (size_t i = 0; i < json_array_size(data); i++)
        if (strcmp(jstr(json_array_get(data, i), "name"), name) == 0)
            return json_array_get(data, i);
    return NULL;
}

/* --- the drill -------------------------------------------------------------------- */

static void load_data(void)
{
    const char *sql = fmt(
        "INSERT INTO customers (kind, name, owner_id, team_id, tags, attrs, email)"
        " SELECT CASE WHEN g %% 3 = 0 THEN 'company' ELSE 'person' END, 'Drill ' || g || ' \"Ü\" \\ tab\tend',"
        " %lld, %lld, ARRAY['t' || (g %% 5)], jsonb_build_object('n', g, 'note', E'line\\none'), 'd' || g || '@x.test'"
        " FROM generate_series(1, 400) g;"
        "INSERT INTO orders (customer_id, ordered_at, status, currency, total)"
        " SELECT c.id, now() - g * interval '9 days', 'completed', 'EUR', (c.id * g) %% 997 + 0.25"
        " FROM customers c, generate_series(1, 3) g;"
        "INSERT INTO contacts (customer_id, first_name, last_name, email, is_primary)"
        " SELECT id, 'Pat', 'Drill ' || id, 'pat' || id || '@x.test', true FROM customers WHERE id %% 2 = 0;"
        "UPDATE customers SET industry = 'Mining' WHERE id %% 7 = 0;",
        users[REP1].id, team_north);
    ck_assert_int_eq(th_sql(db_url, sql), 0);
}

static void change_data(void)
{
    ck_assert_int_eq(th_sql(db_url, "UPDATE customers SET name = name || ' (changed)' WHERE id % 5 = 0;"
                                    "UPDATE orders SET deleted_at = now() WHERE id % 11 = 0;"
                                    "INSERT INTO teams (name) VALUES ('after the backup');"
                                    "DELETE FROM outbox;"),
                     0);
}

/* A copy of path with only its first len bytes (len < 0: all of it), then with a byte changed at poke (>= 0). */
static const char *damaged_copy(const char *path, const char *name, long long len, long long poke)
{
    const char *copy = fmt("%s/../%s", backup_dir, name);
    if (len < 0)
        ck_assert_int_eq(system(fmt("cp '%s' '%s'", path, copy)), 0);
    else
        ck_assert_int_eq(system(fmt("head -c %lld '%s' > '%s'", len, path, copy)), 0);
    if (poke >= 0) {
        int fd = open(copy, O_RDWR);
        char c;
        ck_assert_int_eq(pread(fd, &c, 1, poke), 1);
        c = c >= '0' && c <= '8' ? (char)(c + 1) : (char)(c ^ 0x20); /* a digit stays a digit */
        ck_assert_int_eq(pwrite(fd, &c, 1, poke), 1);
        close(fd);
    }
    return copy;
}

static long long size_of(const char *path)
{
    struct stat st;
    ck_assert_int_eq(stat(path, &st), 0);
    return (long long)st.st_size;
}

/* Every table of got as in want, except those named in `except` (NULL-terminated). */
static void expect_same_state_but(json_t *got, json_t *want, const char *const *except, const char *what)
{
    json_t *g = json_deep_copy(got), *w = json_deep_copy(want);
    for (const char *const *e = except; *e != NULL; e++) {
        json_object_del(g, *e);
        json_object_del(w, *e);
    }
    expect_same_state(keep(g), keep(w), what);
}

static long long rows_in(json_t *state, const char *table)
{
    return atoll(json_string_value(json_object_get(state, table)));
}

START_TEST(restore_drill)
{
    load_data();
    json_t *before = state_of(db_url);
    ck_assert_int_eq(rows_in(before, "public.customers"), 400);
    char schema[128];
    th_sql_value(db_url, "SELECT max(version) FROM schema_migrations", schema, sizeof(schema));

    /* 1. clientele-admin, as the owner: nothing else writes meanwhile, so the backup holds `before` exactly. */
    const char *by_admin = written(admin(NULL, ARGS("backup")));

    /* 2. Through the API, made by a worker (as clientele_worker) while its run is running. */
    th_api_t w;
    crew_start_worker(&w, "drill", NULL);
    json_t *run = backup_through_api();
    crew_stop_worker(&w);
    json_t *stats = json_object_get(run, "stats");
    const char *name = jstr(stats, "file");
    ck_assert_ptr_nonnull(name);
    const char *by_worker = fmt("%s/%s", backup_dir, name);
    ck_assert_int_eq(jint(stats, "size"), size_of(by_worker));
    ck_assert_int_eq(jint(stats, "tables"), json_object_size(before));
    json_t *file = listed(name);
    ck_assert_msg(file != NULL, "%s is not listed", name);
    ck_assert_int_eq(jint(file, "size"), size_of(by_worker));
    json_t *manifest = json_object_get(file, "manifest");
    ck_assert_str_eq(jstr(json_object_get(manifest, "dump"), "sha256"), jstr(stats, "sha256"));
    ck_assert_str_eq(jstr(manifest, "schema_version"), schema);
    ck_assert_str_eq(jstr(manifest, "owner"), "clientele");
    /* The manifest's counts are the state's: all but the run itself and its message, which were new. */
    const char *k;
    json_t *v;
    json_object_foreach(before, k, v)
    {
        json_t *n = json_object_get(json_object_get(manifest, "tables"), k);
        ck_assert_msg(n != NULL, "the manifest lacks %s", k);
        long long want =
            atoll(json_string_value(v)) + (strcmp(k, "public.analytics_runs") == 0 || strcmp(k, "public.outbox") == 0);
        ck_assert_msg(want == json_integer_value(n), "%s: %lld rows, the manifest says %lld", k, want,
                      (long long)json_integer_value(n));
    }

    change_data();
    json_t *changed = state_of(db_url);
    ck_assert(!json_equal(changed, before));

    /* 3. Each restored into a new database: every table as it was at backup time. */
    static const char *const in_flight[] = {"public.analytics_runs", "public.outbox", NULL};
    static const char *const nothing[] = {NULL};
    const char *files[] = {by_admin, by_worker};
    for (int i = 0; i < 2; i++) {
        const char *target = fmt("clientele_test_backup_restored%d", i);
        drop_database(target);
        admin_out_t *v1 = admin(NULL, ARGS("verify", files[i]));
        ck_assert_msg(v1->status == 0, "verify %s: %s", files[i], v1->err);
        ck_assert_ptr_nonnull(strstr(v1->out, "is sound"));
        admin_out_t *r = admin(NULL, ARGS("restore", files[i], "--database", target));
        ck_assert_msg(r->status == 0, "restore %s: %s%s", files[i], r->out, r->err);
        ck_assert_ptr_nonnull(strstr(r->out, "each table's count as in the manifest"));
        json_t *restored = state_of(url_of(target));
        expect_same_state_but(restored, before, i == 0 ? nothing : in_flight, fmt("restored from %s", files[i]));
        if (i == 1) {
            /* The worker's backup holds its own run, running, and the run's message. */
            ck_assert_int_eq(rows_in(restored, "public.analytics_runs"), rows_in(before, "public.analytics_runs") + 1);
            ck_assert_int_eq(rows_in(restored, "public.outbox"), rows_in(before, "public.outbox") + 1);
            char status[32];
            th_sql_value(url_of(target),
                         fmt("SELECT status || ' ' || worker FROM analytics_runs WHERE id = %lld", jint(run, "id")),
                         status, sizeof(status));
            ck_assert_str_eq(status, "running drill");
        }
        drop_database(target);
    }
    /* The suite's own database still holds the changed data: a restore goes elsewhere unless told. */
    expect_same_state_but(state_of(db_url), changed, nothing, "the suite's database");

    /* 4. Damaged files are refused by verify and restore, and nothing is restored. */
    long long size = size_of(by_worker);
    long long dump_size = json_integer_value(json_object_get(json_object_get(manifest, "dump"), "size"));
    long long manifest_at = 512 + ((dump_size + 511) / 512) * 512 + 512;
    char mtext[4096];
    int fd = open(by_worker, O_RDONLY);
    ssize_t mn = pread(fd, mtext, sizeof(mtext) - 1, manifest_at);
    close(fd);
    ck_assert_int_gt(mn, 0);
    mtext[mn] = '\0';
    const char *count = strstr(mtext, "\"public.customers\": 400");
    ck_assert_msg(count != NULL, "%s", mtext);
    struct {
        const char *name;
        long long len, poke;
    } bad[] = {
        {"cut-in-dump.backup", size / 2, -1},
        {"cut-at-end.backup", size - 700, -1},
        {"no-end-blocks.backup", size - 1024, -1},
        {"altered-dump.backup", -1, 512 + dump_size / 2},
        {"altered-header.backup", -1, 3},
        /* "400" becomes "500": valid JSON, another count */
        {"altered-count.backup", -1, manifest_at + (count - mtext) + (long long)strlen("\"public.customers\": ")},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        const char *copy = damaged_copy(by_worker, bad[i].name, bad[i].len, bad[i].poke);
        admin_out_t *v2 = admin(NULL, ARGS("verify", copy));
        ck_assert_msg(v2->status == 1, "verify took %s (%d): %s", bad[i].name, v2->status, v2->out);
        ck_assert_msg(strstr(v2->err, "refused") != NULL, "%s: %s", bad[i].name, v2->err);
        const char *target = "clientele_test_backup_damaged";
        drop_database(target);
        admin_out_t *r = admin(NULL, ARGS("restore", copy, "--database", target));
        ck_assert_msg(r->status == 1, "restore took %s (%d): %s", bad[i].name, r->status, r->out);
        if (i < 5) {
            /* Refused before anything was made. */
            ck_assert_msg(!database_exists(target), "%s: restore made database %s: %s", bad[i].name, target, r->out);
            ck_assert_msg(strstr(r->err, "refused") != NULL, "%s: %s", bad[i].name, r->err);
        } else {
            /* The dump is sound, its counts are not the manifest's: found out once loaded, and said. */
            ck_assert_msg(strstr(r->err, "public.customers holds 400 rows") != NULL, "%s", r->err);
        }
        drop_database(target);
        unlink(copy);
    }

    /* 5. Into a database that is not empty: refused, and it stays as it is; --force replaces it. */
    admin_out_t *r = admin(NULL, ARGS("restore", by_admin));
    ck_assert_int_eq(r->status, 1);
    ck_assert_msg(strstr(r->err, "is not empty") != NULL, "%s", r->err);
    expect_same_state_but(state_of(db_url), changed, nothing, "after a refused restore");
    const char *target = "clientele_test_backup_forced";
    drop_database(target);
    ck_assert_int_eq(th_sql(db_url, fmt("CREATE DATABASE %s", target)), 0);
    ck_assert_int_eq(th_sql(url_of(target), "CREATE TABLE leftover (x int)"), 0);
    ck_assert_int_eq(admin(NULL, ARGS("restore", by_admin, "--database", target))->status, 1);
    r = admin(NULL, ARGS("restore", by_admin, "--database", target, "--force"));
    ck_assert_msg(r->status == 0, "%s%s", r->out, r->err);
    expect_same_state_but(state_of(url_of(target)), before, nothing, "restored with --force");
    drop_database(target);
}
END_TEST

/* --- rights ------------------------------------------------------------------------ */

START_TEST(only_backup_admins)
{
    for (int who = 0; who < NUSERS; who++) {
        if (who == ADMIN)
            continue;
        expect_problem(http_get(who, "/v1/admin/backups"), 403, "forbidden");
        expect_problem(call_as(who, "POST", "/v1/admin/backups", NULL, NULL, NULL, NULL), 403, "forbidden");
    }
    expect_problem(call_as(-1, "GET", "/v1/admin/backups", NULL, NULL, NULL, NULL), 401, "unauthenticated");
    expect_problem(call_as(-1, "POST", "/v1/admin/backups", NULL, NULL, NULL, NULL), 401, "unauthenticated");
    expect_problem(http_get(ADMIN, "/v1/admin/backups?limit=5"), 400, "bad-request");
    ck_assert_int_eq(
        sql_ll("SELECT count(*) FROM analytics_runs WHERE kind = 'backup' AND requested_by <> %lld", users[ADMIN].id),
        0);

    /* A role given the module gets it; scope team is not enough (backups belong to nobody). */
    ck_assert_int_eq(th_sql(db_url,
                            "UPDATE roles SET permissions = permissions || "
                            "'{\"backups\": {\"read\": \"team\", \"create\": \"team\"}}' WHERE name = 'director'"),
                     0);
    expect_problem(http_get(DIRECTOR, "/v1/admin/backups"), 403, "forbidden");
    ck_assert_int_eq(th_sql(db_url, "UPDATE roles SET permissions = permissions || "
                                    "'{\"backups\": {\"read\": \"all\"}}' WHERE name = 'director'"),
                     0);
    expect_status(http_get(DIRECTOR, "/v1/admin/backups"), 200);
    expect_problem(call_as(DIRECTOR, "POST", "/v1/admin/backups", NULL, NULL, NULL, NULL), 403, "forbidden");
    ck_assert_int_eq(th_sql(db_url, "UPDATE roles SET permissions = permissions - 'backups' WHERE name = 'director'"),
                     0);
}
END_TEST

/* Backup runs and the backup schedule are not analytics: the analytics endpoints never show them. */
START_TEST(analytics_never_shows_backups)
{
    th_resp_t *r = call_as(ADMIN, "POST", "/v1/admin/backups", NULL, NULL, NULL, NULL);
    expect_status(r, 202);
    long long id = jint(r->json, "id");
    ck_assert_int_eq(th_sql(db_url, "INSERT INTO analytics_schedules (kind, cron, timezone, params)"
                                    " VALUES ('backup', '0 2 * * *', 'UTC', '{}') ON CONFLICT DO NOTHING"),
                     0);
    long long sid = sql_ll("SELECT id FROM analytics_schedules WHERE kind = 'backup'");
    json_t *runs = list_all(ADMIN, "/v1/analytics/runs", 200);
    for (size_t i = 0; i < json_array_size(runs); i++)
        ck_assert_str_ne(jstr(json_array_get(runs, i), "kind"), "backup");
    expect_problem(http_get(ADMIN, "/v1/analytics/runs?kind=backup"), 400, "bad-request");
    expect_problem(http_get(ADMIN, fmt("/v1/analytics/runs/%lld", id)), 404, "not-found");
    expect_problem(http_delete(ADMIN, fmt("/v1/analytics/runs/%lld", id), NULL), 404, "not-found");
    expect_problem(http_get(ADMIN, fmt("/v1/analytics/summary?run_id=%lld", id)), 404, "not-found");
    json_t *schedules = list_all(ADMIN, "/v1/analytics/schedules", 200);
    for (size_t i = 0; i < json_array_size(schedules); i++)
        ck_assert_int_ne(jint(json_array_get(schedules, i), "id"), sid);
    expect_problem(http_get(ADMIN, fmt("/v1/analytics/schedules/%lld", sid)), 404, "not-found");
    expect_problem(http_patch(ADMIN, fmt("/v1/analytics/schedules/%lld", sid), "{\"enabled\": false}", NULL), 404,
                   "not-found");
    expect_problem(http_delete(ADMIN, fmt("/v1/analytics/schedules/%lld", sid), NULL), 404, "not-found");
    th_resp_t *bad = http_post(ADMIN, "/v1/analytics/runs", "{\"kind\": \"backup\"}");
    expect_problem(bad, 422, "validation-failed");
    expect_error(bad, "kind", "invalid_value");
    bad = http_post(ADMIN, "/v1/analytics/schedules",
                    "{\"kind\": \"backup\", \"cron\": \"0 3 * * *\", \"timezone\": \"UTC\"}");
    expect_problem(bad, 422, "validation-failed");
    ck_assert_int_eq(sql_ll("SELECT count(*) FROM analytics_schedules WHERE kind = 'backup'"), 1);
    ck_assert_int_eq(th_sql(db_url, fmt("DELETE FROM analytics_schedules WHERE id = %lld;"
                                        " UPDATE analytics_runs SET status = 'cancelled' WHERE id = %lld",
                                        sid, id)),
                     0);
}
END_TEST

/* --- the daily backup ---------------------------------------------------------------- */

START_TEST(daily_backup_once_with_two_workers)
{
    ck_assert_int_eq(th_sql(db_url, "DELETE FROM analytics_schedules WHERE kind = 'backup'"), 0);
    static const char *const env[] = {"CLIENTELE_BACKUP_AT=03:30", "CLIENTELE_TIMEZONE=Europe/Berlin", NULL};
    th_api_t a, b;
    crew_start_worker(&a, "daily-a", env);
    crew_start_worker(&b, "daily-b", env);
    /* The leader writes the schedule: 03:30 in Berlin, next at the next such time. */
    long long until = th_now_ms() + 20000;
    while (sql_ll("SELECT count(*) FROM analytics_schedules WHERE kind = 'backup' AND next_run_at IS NOT NULL") == 0 &&
           th_now_ms() < until)
        usleep(100 * 1000);
    ck_assert_int_eq(sql_ll("SELECT count(*) FROM analytics_schedules WHERE kind = 'backup' AND cron = '30 3 * * *'"
                            " AND timezone = 'Europe/Berlin' AND enabled"),
                     1);
    ck_assert_int_eq(sql_ll("SELECT count(*) FROM analytics_schedules WHERE kind = 'backup' AND next_run_at ="
                            " (SELECT min(t) FROM generate_series(date_trunc('day', now() AT TIME ZONE 'Europe/Berlin')"
                            " + interval '3 hours 30 minutes', date_trunc('day', now() AT TIME ZONE 'Europe/Berlin')"
                            " + interval '2 days', interval '1 day') g, LATERAL (SELECT g AT TIME ZONE 'Europe/Berlin'"
                            " AS t) x WHERE t > now())"),
                     1);
    th_resp_t *ov = http_get(ADMIN, "/v1/admin/backups");
    expect_status(ov, 200);
    ck_assert_str_eq(jstr(jget(ov, "schedule"), "timezone"), "Europe/Berlin");

    /* The day comes (twice): one backup per due time, whichever worker leads. */
    for (int day = 0; day < 2; day++) {
        long long before =
            sql_ll("SELECT count(*) FROM analytics_runs WHERE kind = 'backup' AND schedule_id IS NOT NULL");
        ck_assert_int_eq(th_sql(db_url, "UPDATE analytics_schedules SET next_run_at = date_trunc('second', now())"
                                        " - interval '1 second' WHERE kind = 'backup'"),
                         0);
        until = th_now_ms() + 20000;
        while (sql_ll("SELECT count(*) FROM analytics_runs WHERE kind = 'backup' AND schedule_id IS NOT NULL") ==
                   before &&
               th_now_ms() < until)
            usleep(100 * 1000);
        long long id = sql_ll("SELECT max(id) FROM analytics_runs WHERE kind = 'backup' AND schedule_id IS NOT NULL");
        ck_assert_str_eq(wait_run(id, 60000), "succeeded");
        sleep(3); /* several scheduler passes of both workers */
        ck_assert_int_eq(
            sql_ll("SELECT count(*) FROM analytics_runs WHERE kind = 'backup' AND schedule_id IS NOT NULL"),
            before + 1);
        ck_assert_int_eq(
            sql_ll("SELECT count(*) FROM analytics_runs r JOIN analytics_schedules s ON s.id = r.schedule_id"
                   " WHERE r.id = %lld AND r.requested_by IS NULL AND s.last_run_id = r.id"
                   " AND s.next_run_at > now()",
                   id),
            1);
        char file[64];
        th_sql_value(db_url, fmt("SELECT stats ->> 'file' FROM analytics_runs WHERE id = %lld", id), file,
                     sizeof(file));
        ck_assert_ptr_nonnull(listed(file));
    }
    crew_stop_worker(&a);
    crew_stop_worker(&b);

    /* A worker told "off" switches the daily backup off when it leads. */
    static const char *const off[] = {"CLIENTELE_BACKUP_AT=off", NULL};
    crew_start_worker(&a, "daily-off", off);
    until = th_now_ms() + 20000;
    while (sql_ll("SELECT count(*) FROM analytics_schedules WHERE kind = 'backup' AND enabled") == 1 &&
           th_now_ms() < until)
        usleep(100 * 1000);
    ck_assert_int_eq(sql_ll("SELECT count(*) FROM analytics_schedules WHERE kind = 'backup' AND NOT enabled"), 1);
    crew_stop_worker(&a);
}
END_TEST

/* --- clientele-admin: retention and errors ------------------------------------------------- */

START_TEST(retention_keeps_the_newest)
{
    const char *dir = fmt("%s/../retention", backup_dir);
    ck_assert_int_eq(system(fmt("rm -rf '%s'", dir)), 0);
    const char *env[] = {fmt("CLIENTELE_BACKUP_DIR=%s", dir), "CLIENTELE_BACKUP_KEEP=2", NULL};
    const char *made[3];
    for (int i = 0; i < 3; i++)
        made[i] = written(admin(env, ARGS("backup")));
    admin_out_t *o = admin(env, ARGS("backup"));
    const char *last = written(o);
    ck_assert_msg(strstr(o->out, "removed ") != NULL, "%s", o->out);
    ck_assert_int_ne(access(made[0], F_OK), 0);
    ck_assert_int_ne(access(made[1], F_OK), 0);
    ck_assert_int_eq(access(made[2], F_OK), 0);
    ck_assert_int_eq(access(last, F_OK), 0);
    /* KEEP=1 keeps the one just made. */
    const char *one[] = {fmt("CLIENTELE_BACKUP_DIR=%s", dir), "CLIENTELE_BACKUP_KEEP=1", NULL};
    last = written(admin(one, ARGS("backup")));
    ck_assert_int_eq(access(last, F_OK), 0);
    ck_assert_int_ne(access(made[2], F_OK), 0);
    ck_assert_int_eq(admin(one, ARGS("backup", "extra"))->status, 2);
    ck_assert_int_eq(admin((const char *const[]){"CLIENTELE_BACKUP_KEEP=0", NULL}, ARGS("backup"))->status, 2);
}
END_TEST

START_TEST(operator_errors_are_told)
{
    /* The database cannot be reached. */
    admin_out_t *o = admin((const char *const[]){"CLIENTELE_DATABASE_URL=postgresql://clientele@127.0.0.1:1/x", NULL},
                           ARGS("backup"));
    ck_assert_int_eq(o->status, 1);
    ck_assert_msg(strstr(o->err, "cannot connect to the database") != NULL, "%s", o->err);
    /* The directory cannot be made. */
    const char *blocker = fmt("%s/../blocker", backup_dir);
    ck_assert_int_eq(system(fmt("touch '%s'", blocker)), 0);
    o = admin((const char *const[]){fmt("CLIENTELE_BACKUP_DIR=%s/sub", blocker), NULL}, ARGS("backup"));
    ck_assert_int_eq(o->status, 1);
    ck_assert_msg(strstr(o->err, "cannot create the backup directory") != NULL, "%s", o->err);
    /* Nothing to verify or restore. */
    o = admin(NULL, ARGS("verify", "/nonexistent/clientele-20260101-000000.backup"));
    ck_assert_int_eq(o->status, 1);
    ck_assert_int_eq(admin(NULL, ARGS("verify"))->status, 2);
    ck_assert_int_eq(admin(NULL, ARGS("restore"))->status, 2);
    ck_assert_int_eq(admin(NULL, ARGS("restore", "x.backup", "--bogus"))->status, 2);
    ck_assert_int_eq(admin(NULL, ARGS("frobnicate"))->status, 2);
    /* role-password only for the services' roles, with a long password. */
    ck_assert_int_eq(admin(NULL, ARGS("role-password", "clientele"))->status, 2);
}
END_TEST

static Suite *backup_suite(void)
{
    Suite *s = suite_create("backup");
    TCase *tc = tcase_create("backups");
    tcase_set_timeout(tc, 300);
    tcase_add_checked_fixture(tc, crew_flush_redis, NULL);
    tcase_add_test(tc, only_backup_admins);
    tcase_add_test(tc, analytics_never_shows_backups);
    tcase_add_test(tc, restore_drill);
    tcase_add_test(tc, daily_backup_once_with_two_workers);
    tcase_add_test(tc, retention_keeps_the_newest);
    tcase_add_test(tc, operator_errors_are_told);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    const char *stack = getenv("STACK_DIR") != NULL && *getenv("STACK_DIR") != '\0' ? getenv("STACK_DIR") : ".test";
    /* Where the suite's workers write (tests/support/crew.c) and its API reads. */
    snprintf(backup_dir, sizeof(backup_dir), "%s/backups/%s", stack, conf.name);
    snprintf(backup_env, sizeof(backup_env), "CLIENTELE_BACKUP_DIR=%s", backup_dir);
    if (system(fmt("rm -rf '%s' && mkdir -p '%s'", backup_dir, backup_dir)) != 0)
        return 2;
    return crew_main(&conf, backup_suite);
}
