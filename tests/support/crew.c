/*
 * tests/support/crew.c - the suite's world (database, teams, API process,
 * a logged-in user of every role) and the helpers the integration suites
 * are written in; see crew.h.
 *
 * Everything a suite differs in comes from its crew_conf_t, set once in
 * the parent before Check forks. Memory handed out by the helpers stays on
 * one global list (keep()), guarded by a mutex because the suites call the
 * helpers from several threads of one test.
 */
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "crew.h"

/* clang-format off */
crew_user_t users[NUSERS] = {
    [ADMIN] = {NULL, "Ada Admin", "admin", NULL},
    [DIRECTOR] = {NULL, "Dora Director", "director", NULL},
    [ANALYST] = {NULL, "Ann Analyst", "analyst", NULL},
    [INTEGRATION] = {NULL, "ERP Sync", "integration", NULL},
    [MANAGER] = {NULL, "Max Manager", "manager", "north"},
    [REP1] = {NULL, "Rita Rep", "rep", "north"},
    [REP2] = {NULL, "Rolf Rep", "rep", "north"},
    [REPS] = {NULL, "Sam South", "rep", "south"},
};
/* clang-format on */

/* The local parts of the crew's e-mail addresses; the domain is the suite's. */
static const char *const mailbox[NUSERS] = {"admin",         "director",   "analyst",    "erp",
                                            "manager.north", "rep.north1", "rep.north2", "rep.south1"};
const char *const who_name[NUSERS] = {"admin",         "director",   "analyst",    "integration",
                                      "manager.north", "rep.north1", "rep.north2", "rep.south1"};

th_api_t api;
char db_url[256];
long long team_north, team_south;

static const crew_conf_t *conf;
static char redis_cli[160];
static int api_exit_bad; /* set in the parent when an API process did not exit 0 */

/* --- memory: kept reachable until the test process exits ------------------- */

static pthread_mutex_t keep_mu = PTHREAD_MUTEX_INITIALIZER;
static void **kept;
static size_t nkept, capkept;

void *keep(void *p)
{
    if (p == NULL)
        abort();
    pthread_mutex_lock(&keep_mu);
    if (nkept == capkept) {
        capkept = capkept != 0 ? capkept * 2 : 4096;
        kept = realloc(kept, capkept * sizeof(*kept));
        if (kept == NULL)
            abort();
    }
    kept[nkept++] = p;
    pthread_mutex_unlock(&keep_mu);
    return p;
}

char *fmt(const char *f, ...)
{
    va_list ap;
    char *s;
    va_start(ap, f);
    if (vasprintf(&s, f, ap) < 0)
        abort();
    va_end(ap);
    return keep(s);
}

const char *jdump(json_t *v)
{
    char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    json_decref(v);
    return keep(s);
}

json_t *jparse(const char *text)
{
    json_t *v = json_loads(text, JSON_DECODE_ANY, NULL);
    if (v == NULL)
        abort();
    return v;
}

const char *uniq(const char *prefix)
{
    static int n;
    return fmt("%s-%d-%d", prefix, (int)getpid(), __atomic_add_fetch(&n, 1, __ATOMIC_SEQ_CST));
}

const char *repeat(char c, size_t n)
{
    char *s = keep(malloc(n + 1));
    memset(s, c, n);
    s[n] = '\0';
    return s;
}

const char *urlenc(const char *s)
{
    char *out = keep(malloc(3 * strlen(s) + 1)), *o = out;
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || strchr("-._~", *p))
            *o++ = (char)*p;
        else
            o += sprintf(o, "%%%02X", *p);
    }
    *o = '\0';
    return out;
}

/* --- HTTP ------------------------------------------------------------------- */

th_resp_t *call_as(int who, const char *method, const char *path, const char *ctype, const char *body, const char *h1,
                   const char *h2)
{
    const char *h[6];
    int n = 0;
    char auth[2200];
    if (who >= 0)
        h[n++] = th_bearer(users[who].token, auth, sizeof(auth));
    if (ctype != NULL)
        h[n++] = fmt("Content-Type: %s", ctype);
    if (h1 != NULL)
        h[n++] = h1;
    if (h2 != NULL)
        h[n++] = h2;
    h[n] = NULL;
    th_resp_t *r = keep(calloc(1, sizeof(*r)));
    if (th_http(api.port, method, path, h, body, body != NULL ? strlen(body) : 0, r) != 0)
        r->status = 0;
    return r;
}

th_resp_t *http_get(int who, const char *path)
{
    return call_as(who, "GET", path, NULL, NULL, NULL, NULL);
}

th_resp_t *http_post(int who, const char *path, const char *body)
{
    return call_as(who, "POST", path, JSON_T, body, NULL, NULL);
}

const char *if_match(const char *etag)
{
    return etag != NULL ? fmt("If-Match: %s", etag) : NULL;
}

th_resp_t *http_patch(int who, const char *path, const char *body, const char *etag)
{
    return call_as(who, "PATCH", path, MERGE_T, body, if_match(etag), NULL);
}

th_resp_t *http_put(int who, const char *path, const char *body, const char *etag)
{
    return call_as(who, "PUT", path, JSON_T, body, if_match(etag), NULL);
}

th_resp_t *http_delete(int who, const char *path, const char *etag)
{
    return call_as(who, "DELETE", path, NULL, NULL, if_match(etag), NULL);
}

const char *xpath(const char *ext)
{
    return fmt("/v1/external/%s/%s", conf->resource, urlenc(ext));
}

const char *header(const th_resp_t *r, const char *name)
{
    char buf[512];
    return th_header(r, name, buf, sizeof(buf)) != NULL ? fmt("%s", buf) : NULL;
}

json_t *jget(const th_resp_t *r, const char *key)
{
    return r->json != NULL ? json_object_get(r->json, key) : NULL;
}

long long jint(const json_t *o, const char *key)
{
    return (long long)json_integer_value(json_object_get(o, key));
}

const char *jstr(const json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

void login_ok(const char *email, const char *password, char access[2048], char refresh[256])
{
    char dummy[256];
    int st = th_login(api.port, email, password, access, refresh != NULL ? refresh : dummy);
    ck_assert_msg(st == 200, "login %s: status %d", email, st);
}

/* --- expectations ------------------------------------------------------------- */

void expect_problem_(const th_resp_t *r, int status, const char *slug, int line)
{
    ck_assert_msg(r->status == status, "line %d: expected %d, got %d: %.600s", line, status, r->status,
                  r->body != NULL ? r->body : "");
    const char *ct = header(r, "content-type");
    ck_assert_msg(ct != NULL && strcmp(ct, "application/problem+json") == 0, "line %d: content-type %s", line,
                  ct != NULL ? ct : "(none)");
    ck_assert_msg(r->json != NULL, "line %d: problem body is not JSON", line);
    const char *type = jstr(r->json, "type");
    ck_assert_msg(type != NULL && strcmp(type, fmt("/problems/%s", slug)) == 0, "line %d: type %s, wanted %s", line,
                  type != NULL ? type : "(none)", slug);
    ck_assert_int_eq(jint(r->json, "status"), status);
}

json_t *find_error(const th_resp_t *r, const char *field)
{
    json_t *errors = jget(r, "errors"), *e;
    size_t i;
    json_array_foreach(errors, i, e)
    {
        const char *f = jstr(e, "field");
        if (f != NULL && strcmp(f, field) == 0)
            return e;
    }
    return NULL;
}

void expect_error_(const th_resp_t *r, const char *field, const char *code, int line)
{
    json_t *e = find_error(r, field);
    ck_assert_msg(e != NULL, "line %d: no error for field \"%s\" in %.800s", line, field, r->body);
    if (code != NULL)
        ck_assert_msg(strcmp(jstr(e, "code"), code) == 0, "line %d: field %s has code %s, wanted %s", line, field,
                      jstr(e, "code"), code);
}

size_t nerrors(const th_resp_t *r)
{
    return json_array_size(jget(r, "errors"));
}

/* --- SQL ------------------------------------------------------------------------ */

long long sql_ll(const char *f, ...)
{
    va_list ap;
    char *sql, out[64];
    va_start(ap, f);
    if (vasprintf(&sql, f, ap) < 0)
        abort();
    va_end(ap);
    int rc = th_sql_value(db_url, sql, out, sizeof(out));
    ck_assert_msg(rc == 0, "query returned no row: %s", sql);
    free(sql);
    return atoll(out);
}

PGconn *pg_open(void)
{
    PGconn *c = PQconnectdb(db_url);
    ck_assert_msg(PQstatus(c) == CONNECTION_OK, "cannot connect: %s", PQerrorMessage(c));
    return c;
}

int pg_do(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
    if (!ok)
        fprintf(stderr, "%s: %s", sql, PQresultErrorMessage(r));
    PQclear(r);
    return ok ? 0 : -1;
}

long long version_of(long long id)
{
    return sql_ll("SELECT version FROM %s WHERE id = %lld", conf->resource, id);
}

int is_deleted(long long id)
{
    return (int)sql_ll("SELECT (deleted_at IS NOT NULL)::int FROM %s WHERE id = %lld", conf->resource, id);
}

/* --- scopes: the oracle ------------------------------------------------------- */

int can_read(int who, long long owner, long long team)
{
    switch (who) {
    case REP1:
    case REP2:
    case REPS:
        return owner == users[who].id;
    case MANAGER:
        return team == users[MANAGER].team_id;
    default:
        return 1;
    }
}

int can_write(int who, long long owner, long long team)
{
    return who != ANALYST && can_read(who, owner, team);
}

const char *scope_where(int who, const char *prefix)
{
    switch (who) {
    case REP1:
    case REP2:
    case REPS:
        return fmt("%sowner_id = %lld", prefix, users[who].id);
    case MANAGER:
        return fmt("%steam_id = %lld", prefix, users[MANAGER].team_id);
    default:
        return "true";
    }
}

/* --- lists ------------------------------------------------------------------------ */

long long api_count(int who, const char *query)
{
    th_resp_t *r = http_get(who, fmt("/v1/%s?count=true&limit=1%s%s", conf->resource, *query ? "&" : "", query));
    expect_status(r, 200);
    ck_assert_msg(json_is_integer(jget(r, "total")), "no total in %.200s", r->body);
    return (long long)json_integer_value(jget(r, "total"));
}

json_t *list_all(int who, const char *path, int limit)
{
    json_t *all = keep(json_array());
    const char *cursor = NULL;
    const char *sep = strchr(path, '?') != NULL ? "&" : "?";
    for (int pages = 0; pages < 1000; pages++) {
        th_resp_t *r = http_get(who, cursor != NULL ? fmt("%s%slimit=%d&cursor=%s", path, sep, limit, cursor)
                                                    : fmt("%s%slimit=%d", path, sep, limit));
        expect_status(r, 200);
        json_t *data = jget(r, "data");
        ck_assert_msg(json_is_array(data), "no data array: %.200s", r->body);
        ck_assert_msg(json_array_size(data) <= (size_t)limit, "page larger than limit");
        json_array_extend(all, data);
        json_t *next = jget(r, "next_cursor");
        if (json_is_null(next))
            return all;
        ck_assert_msg(json_array_size(data) == (size_t)limit, "a page before the last one is short");
        cursor = json_string_value(next);
    }
    ck_abort_msg("list did not end");
    return NULL;
}

int has_id(json_t *items, long long id)
{
    json_t *it;
    size_t i;
    json_array_foreach(items, i, it) if (jint(it, "id") == id) return 1;
    return 0;
}

void expect_ids_(json_t *items, const long long *want, size_t n, int line)
{
    json_t *it;
    size_t i;
    json_array_foreach(items, i, it)
    {
        long long id = jint(it, "id");
        int found = 0;
        for (size_t k = 0; k < n; k++)
            found |= want[k] == id;
        ck_assert_msg(found, "line %d: unexpected id %lld in the list", line, id);
        for (size_t k = 0; k < i; k++)
            ck_assert_msg(jint(json_array_get(items, k), "id") != id, "line %d: id %lld listed twice", line, id);
    }
    for (size_t k = 0; k < n; k++)
        ck_assert_msg(has_id(items, want[k]), "line %d: id %lld missing from the list", line, want[k]);
    ck_assert_int_eq(json_array_size(items), n);
}

int cmp_items(json_t *a, json_t *b, const char *key)
{
    int c = strcmp(jstr(a, key), jstr(b, key));
    if (c != 0)
        return c < 0 ? -1 : 1;
    long long x = jint(a, "id"), y = jint(b, "id");
    return x < y ? -1 : x > y;
}

void expect_sorted(json_t *items, const char *sort)
{
    int desc = sort[0] == '-';
    const char *key = sort + desc;
    for (size_t i = 1; i < json_array_size(items); i++) {
        int c = cmp_items(json_array_get(items, i - 1), json_array_get(items, i), key);
        ck_assert_msg(desc ? c > 0 : c < 0, "sort=%s: items %zu (%s, id %lld) and %zu (%s, id %lld) out of order", sort,
                      i - 1, jstr(json_array_get(items, i - 1), key), jint(json_array_get(items, i - 1), "id"), i,
                      jstr(json_array_get(items, i), key), jint(json_array_get(items, i), "id"));
    }
}

/* --- change feeds ------------------------------------------------------------------- */

const char *feed_head_of(const char *feed, int who)
{
    const char *cursor = NULL;
    for (int i = 0; i < 1000; i++) {
        th_resp_t *r =
            http_get(who, cursor != NULL ? fmt("%s?limit=1000&after=%s", feed, cursor) : fmt("%s?limit=1000", feed));
        expect_status(r, 200);
        cursor = json_string_value(jget(r, "next_cursor"));
        ck_assert_ptr_nonnull(cursor);
        if (json_array_size(jget(r, "data")) == 0)
            return cursor;
    }
    ck_abort_msg("feed did not end");
    return NULL;
}

const char *feed_head(int who)
{
    return feed_head_of(fmt("/v1/changes/%s", conf->resource), who);
}

json_t *feed_since(int who, const char **cursor, int limit)
{
    json_t *all = keep(json_array());
    for (int i = 0; i < 10000; i++) {
        th_resp_t *r = http_get(who, fmt("/v1/changes/%s?limit=%d&after=%s", conf->resource, limit, *cursor));
        expect_status(r, 200);
        json_t *data = jget(r, "data");
        ck_assert(json_array_size(data) <= (size_t)limit);
        const char *next = json_string_value(jget(r, "next_cursor"));
        ck_assert_ptr_nonnull(next);
        if (json_array_size(data) == 0) {
            ck_assert_str_eq(next, *cursor); /* an empty page keeps the position */
            return all;
        }
        json_array_extend(all, data);
        *cursor = next;
    }
    ck_abort_msg("feed did not end");
    return NULL;
}

void expect_change_(json_t *ch, const char *op, long long id, int line)
{
    ck_assert_msg(ch != NULL, "line %d: missing change %s %lld", line, op, id);
    ck_assert_msg(strcmp(jstr(ch, "op"), op) == 0 && jint(ch, "id") == id, "line %d: got %s %lld, wanted %s %lld", line,
                  jstr(ch, "op"), jint(ch, "id"), op, id);
    ck_assert_msg(jstr(ch, "changed_at") != NULL, "line %d: no changed_at", line);
    if (strcmp(op, "delete") == 0)
        ck_assert_msg(json_object_get(ch, "data") == NULL, "line %d: a tombstone carries data", line);
    else
        ck_assert_msg(jint(json_object_get(ch, "data"), "id") == id, "line %d: data is not the %s", line, conf->item);
}

/* --- the suite's world ------------------------------------------------------------ */

static long long team_id(const char *name)
{
    char sql[128], v[32];
    snprintf(sql, sizeof(sql), "SELECT id FROM teams WHERE name = '%s'", name);
    if (th_sql_value(db_url, sql, v, sizeof(v)) != 0) {
        fprintf(stderr, "%s_test: no team %s\n", conf->name, name);
        exit(2);
    }
    return atoll(v);
}

void crew_setup(const crew_conf_t *c)
{
    conf = c;
    const char *port = getenv("STACK_REDIS_PORT");
    snprintf(redis_cli, sizeof(redis_cli), "redis-cli -h 127.0.0.1 -p %s -n %d",
             port != NULL && *port != '\0' ? port : "56379", conf->redis_db);
    snprintf(db_url, sizeof(db_url), "%s", th_db_create(conf->name));
    if (th_sql(db_url, "INSERT INTO teams (name) VALUES ('north'), ('south')") != 0)
        exit(2);
    team_north = team_id("north");
    team_south = team_id("south");
}

const char *crew_redis_cli(void)
{
    return redis_cli;
}

void crew_start_api(void)
{
    th_api_start(&api, db_url, th_redis_url(conf->redis_db), conf->env);
}

/* Stops the API, waiting up to timeout_s; 0 when it exited 0, else -1 (said on stderr). */
static int stop_api(int timeout_s)
{
    int st = th_api_stop(&api, SIGTERM, timeout_s);
    if (st == 0)
        return 0;
    fprintf(stderr, "clientele-api exited with %d (sanitizer report?); see %s\n", st, api.log_path);
    return -1;
}

void crew_stop_api(void)
{
    if (api.pid > 0 && stop_api(15) != 0)
        api_exit_bad = 1;
}

void crew_flush_redis(void)
{
    char cmd[200];
    snprintf(cmd, sizeof(cmd), "%s FLUSHDB >/dev/null", redis_cli);
    ck_assert_msg(system(cmd) == 0, "could not flush Redis database %d", conf->redis_db);
}

TCase *crew_tcase(const char *name, int timeout_s)
{
    TCase *tc = tcase_create(name);
    tcase_add_unchecked_fixture(tc, crew_start_api, crew_stop_api);
    tcase_add_checked_fixture(tc, crew_flush_redis, NULL);
    tcase_set_timeout(tc, timeout_s);
    return tc;
}

int crew_srun(Suite *s)
{
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed;
}

int crew_exit_status(int failed)
{
    if (api_exit_bad)
        fprintf(stderr, "%s_test: an API process did not exit 0; see %s/logs\n", conf->name,
                getenv("STACK_DIR") != NULL ? getenv("STACK_DIR") : ".test");
    return failed == 0 && !api_exit_bad ? 0 : 1;
}

typedef struct {
    int who;
    int status;
} login_t;

static void *login_main(void *p)
{
    login_t *l = p;
    l->status = th_login(api.port, users[l->who].email, conf->password, users[l->who].token, NULL);
    return NULL;
}

int crew_main(const crew_conf_t *c, Suite *(*make_suite)(void))
{
    long long t0 = th_now_ms();
    crew_setup(c);
    for (int i = 0; i < NUSERS; i++) {
        users[i].email = fmt("%s@%s", mailbox[i], conf->domain);
        users[i].id = th_user_add(db_url, users[i].email, users[i].name, users[i].role, users[i].team, conf->password);
        users[i].team_id = users[i].team == NULL ? 0 : strcmp(users[i].team, "north") == 0 ? team_north : team_south;
    }
    crew_start_api();
    /* Log everyone in once, in parallel: the API hashes on its KDF threads (argon2 is slow under ASan). */
    pthread_t t[NUSERS];
    login_t l[NUSERS];
    for (int i = 0; i < NUSERS; i++) {
        l[i] = (login_t){i, 0};
        pthread_create(&t[i], NULL, login_main, &l[i]);
    }
    int bad_login = 0;
    for (int i = 0; i < NUSERS; i++) {
        pthread_join(t[i], NULL);
        if (l[i].status != 200) {
            fprintf(stderr, "login of %s answered %d\n", users[i].email, l[i].status);
            bad_login = 1;
        }
    }
    fprintf(stderr, "%s: set-up took %lld ms\n", conf->name, th_now_ms() - t0);
    int failed = bad_login ? 1 : crew_srun(make_suite());
    if (stop_api(20) != 0)
        failed++;
    fprintf(stderr, "%s: %lld ms in all\n", conf->name, th_now_ms() - t0);
    return failed == 0 ? 0 : 1;
}

/* --- workers ------------------------------------------------------------------------- */

int crew_log_has(const char *path, const char *needle)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return 0;
    char line[8192];
    int found = 0;
    while (!found && fgets(line, sizeof(line), f) != NULL)
        found = strstr(line, needle) != NULL;
    fclose(f);
    return found;
}

void crew_start_worker(th_api_t *w, const char *name, const char *const *env)
{
    static int seq;
    const char *stack = getenv("STACK_DIR") != NULL && *getenv("STACK_DIR") != '\0' ? getenv("STACK_DIR") : ".test";
    const char *build = getenv("CLIENTELE_TEST_BUILD") != NULL && *getenv("CLIENTELE_TEST_BUILD") != '\0'
                            ? getenv("CLIENTELE_TEST_BUILD")
                            : "build/asan";
    memset(w, 0, sizeof(*w));
    snprintf(w->log_path, sizeof(w->log_path), "%s/logs/worker-%s-%d-%d-%s.log", stack, conf->name, (int)getpid(),
             __atomic_add_fetch(&seq, 1, __ATOMIC_SEQ_CST), name);
    ck_assert_int_eq(system(fmt("mkdir -p '%s/logs'", stack)), 0);
    const char *bin = fmt("%s/clientele-worker", build);
    const char *redis = fmt("%s", th_redis_url(conf->redis_db));
    /* Its health and metrics listener on a port of its own (env may name another, or "" for none). */
    w->port = th_free_port();
    const char *listen = fmt("127.0.0.1:%d", w->port);
    char svc_url[512];
    const char *url = th_db_url_as(db_url, "clientele_worker", svc_url, sizeof(svc_url));
    const char *backups = fmt("%s/backups/%s", stack, conf->name);
    pid_t parent = getpid();
    w->pid = fork();
    ck_assert_int_ge(w->pid, 0);
    if (w->pid == 0) {
        /* The worker dies with the test that started it, even when an assertion ends the test early. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        setenv("CLIENTELE_DATABASE_URL", url, 1);
        setenv("CLIENTELE_REDIS_URL", redis, 1);
        setenv("CLIENTELE_WORKER_NAME", name, 1);
        /* No daily backup unless a test asks for one (env); files, if any, in the suite's own folder. */
        setenv("CLIENTELE_BACKUP_AT", "off", 1);
        setenv("CLIENTELE_BACKUP_DIR", backups, 1);
        setenv("CLIENTELE_WORKER_CLAIM_IDLE", "2s", 1);
        setenv("CLIENTELE_REDIS_TIMEOUT", "1s", 1);
        setenv("CLIENTELE_LOG_LEVEL", "debug", 1);
        setenv("CLIENTELE_WORKER_LISTEN", listen, 1);
        for (const char *const *e = env; e != NULL && *e != NULL; e++)
            putenv((char *)*e);
        int fd = open(w->log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execl(bin, "clientele-worker", (char *)NULL);
        _exit(127);
    }
    long long until = th_now_ms() + 20000;
    while (!crew_log_has(w->log_path, "\"consuming clientele:runs")) {
        int st;
        if (waitpid(w->pid, &st, WNOHANG) == w->pid) {
            w->pid = 0;
            ck_abort_msg("worker %s exited during start-up; see %s", name, w->log_path);
        }
        if (th_now_ms() > until)
            ck_abort_msg("worker %s did not start consuming within 20 s; see %s", name, w->log_path);
        usleep(50 * 1000);
    }
}

void crew_stop_worker(th_api_t *w)
{
    if (w->pid <= 0)
        return;
    int st = th_api_stop(w, SIGTERM, 15);
    ck_assert_msg(st == 0, "worker exited with %d (sanitizer report?); see %s", st, w->log_path);
}
