/*
 * tests/support/crew.h - what the integration suites share on top of the
 * harness: the suite's database, teams and API process, a crew of users of
 * every role logged in once, and the little language the suites are
 * written in (kept memory, requests as a role, expectations, SQL oracles,
 * lists and change feeds).
 *
 * A suite describes itself in one crew_conf_t and hands it to crew_main()
 * (the resource suites: one API process, every role logged in once) or to
 * crew_setup() (suites that start the API per TCase with crew_tcase()).
 * Everything here is filled in by the parent before Check forks, so every
 * test inherits it. Memory a helper returns is kept reachable on a global
 * list until the process exits (see keep()), so tests never free it and
 * LeakSanitizer stays quiet. The helpers are thread-safe unless they say
 * otherwise; the ones that assert must run in a test (or a thread of one).
 */
#ifndef CLIENTELE_TESTS_CREW_H
#define CLIENTELE_TESTS_CREW_H

#include <stddef.h>

#include <check.h>
#include <jansson.h>
#include <libpq-fe.h>

#include "tests/support/harness.h"

#define JSON_T "application/json"
#define MERGE_T "application/merge-patch+json"
#define NDJSON_T "application/x-ndjson"

/* What differs between suites. */
typedef struct st_crew_conf_t {
    const char *name;       /* "customers": database clientele_test_<name>, log lines */
    int redis_db;           /* the suite's own Redis database number */
    const char *const *env; /* extra API environment, NULL-terminated */
    /* The rest only for crew_main(). */
    const char *password; /* every crew member's */
    const char *domain;   /* crew e-mail domain: admin@<domain>, erp@<domain>, ... */
    const char *resource; /* "customers": /v1/<resource>, its table, /v1/changes/<resource> */
    const char *item;     /* what a change's data is called in failure messages: "record" */
} crew_conf_t;

/* --- the suite's world: filled in by crew_setup() / crew_main() ------------------- */

/* One user per role: two reps in team north, one in south, a manager of north. */
enum { ADMIN, DIRECTOR, ANALYST, INTEGRATION, MANAGER, REP1, REP2, REPS, NUSERS };

typedef struct st_crew_user_t {
    const char *email, *name, *role, *team;
    long long id, team_id;
    char token[2048]; /* access token from the one login in crew_main() */
} crew_user_t;

extern crew_user_t users[NUSERS];
/* Short names of the crew for failure messages ("rep.north1"). */
extern const char *const who_name[NUSERS];
extern th_api_t api;
extern char db_url[256];
/* Ids of teams "north" and "south", which every suite database has. */
extern long long team_north, team_south;

/*
 * Creates the suite's database (clientele_test_<conf->name>) with teams
 * north and south and fills in db_url, team_north and team_south. conf
 * must stay valid for the whole run. Exits with status 2 on failure.
 */
void crew_setup(const crew_conf_t *conf);

/*
 * The whole main() of a resource suite: crew_setup(), adds the crew as
 * users, starts one API process, logs everyone in at once, runs the suite
 * built by make_suite and stops the API. Returns the process exit status:
 * 0 when every test passed and the API exited 0, 2 when set-up failed,
 * else 1.
 */
int crew_main(const crew_conf_t *conf, Suite *(*make_suite)(void));

/*
 * For suites that run one API process per TCase: a TCase whose unchecked
 * fixture starts and stops the API (crew_start_api/crew_stop_api) and whose
 * checked fixture empties the suite's Redis database before every test.
 */
TCase *crew_tcase(const char *name, int timeout_s);
void crew_start_api(void);
/* Stops the API; an exit status other than 0 is printed and remembered for crew_exit_status(). */
void crew_stop_api(void);
/* Empties the suite's Redis database; asserts it worked. */
void crew_flush_redis(void);
/* "redis-cli -h 127.0.0.1 -p <port> -n <db>" for the suite's Redis database (static). */
const char *crew_redis_cli(void);

/* Runs s in CK_NORMAL mode and frees the runner; returns the number of tests that failed. */
int crew_srun(Suite *s);
/* The exit status for main(): 0 when failed is 0 and every API process exited 0 (else says so on stderr), else 1. */
int crew_exit_status(int failed);

/* --- memory and text ------------------------------------------------------------- */

/* Keeps p reachable until the process exits and returns it; aborts when p is NULL. */
void *keep(void *p);
/* printf into a kept string. */
__attribute__((format(printf, 1, 2))) char *fmt(const char *f, ...);
/* Compact JSON text of v (steals the reference), kept. */
const char *jdump(json_t *v);
/* Parses JSON text (any value); aborts on malformed text. The caller owns the reference. */
json_t *jparse(const char *text);
/* A string unique to this test process: prefix-pid-n. */
const char *uniq(const char *prefix);
/* c n times, kept. */
const char *repeat(char c, size_t n);
/* Percent-encodes everything but unreserved characters, kept. */
const char *urlenc(const char *s);

/* --- HTTP as a member of the crew ------------------------------------------------- */

/*
 * One request as `who` (-1: no token) with an optional content type, body
 * and two more headers; the answer, kept (status 0 when the connection
 * failed).
 */
th_resp_t *call_as(int who, const char *method, const char *path, const char *ctype, const char *body, const char *h1,
                   const char *h2);
th_resp_t *http_get(int who, const char *path);
th_resp_t *http_post(int who, const char *path, const char *body);
/* "If-Match: <etag>", or NULL when etag is NULL. */
const char *if_match(const char *etag);
/* PATCH sends a merge patch; etag (may be NULL) goes into If-Match. */
th_resp_t *http_patch(int who, const char *path, const char *body, const char *etag);
th_resp_t *http_put(int who, const char *path, const char *body, const char *etag);
th_resp_t *http_delete(int who, const char *path, const char *etag);
/* /v1/external/<resource>/<ext, percent-encoded>. */
const char *xpath(const char *ext);

/* A response header's value, kept; NULL if absent. */
const char *header(const th_resp_t *r, const char *name);
/* A member of the response's JSON object, or NULL. */
json_t *jget(const th_resp_t *r, const char *key);
long long jint(const json_t *o, const char *key);
const char *jstr(const json_t *o, const char *key);

/*
 * Logs in (POST /v1/auth/token) and copies the tokens (refresh may be
 * NULL); fails the test unless the answer is 200.
 */
void login_ok(const char *email, const char *password, char access[2048], char refresh[256]);

/* --- expectations ------------------------------------------------------------------- */

#define expect_status(r, st)                                                                                           \
    ck_assert_msg((r)->status == (st), "line %d: expected %d, got %d: %.600s", __LINE__, (st), (r)->status,            \
                  (r)->body != NULL ? (r)->body : "")

#define expect_status_msg(r, st, ...)                                                                                  \
    do {                                                                                                               \
        if ((r)->status != (st))                                                                                       \
            ck_abort_msg("line %d: %s: expected %d, got %d: %.400s", __LINE__, fmt(__VA_ARGS__), (st), (r)->status,    \
                         (r)->body != NULL ? (r)->body : "");                                                          \
    } while (0)

/* Status, problem content type and type slug of an error answer. */
void expect_problem_(const th_resp_t *r, int status, const char *slug, int line);
#define expect_problem(r, status, slug) expect_problem_((r), (status), (slug), __LINE__)

/* The entry of errors[] naming field, or NULL. */
json_t *find_error(const th_resp_t *r, const char *field);
/* errors[] names field, with code when code is not NULL. */
void expect_error_(const th_resp_t *r, const char *field, const char *code, int line);
#define expect_error(r, field, code) expect_error_((r), (field), (code), __LINE__)
size_t nerrors(const th_resp_t *r);

/* --- SQL (oracles and direct transactions) ------------------------------------------ */

/* The first column of the first row as a number; fails the test when there is no row. */
__attribute__((format(printf, 1, 2))) long long sql_ll(const char *f, ...);
/* A connection of its own to the suite's database (PQfinish it); fails the test when it cannot connect. */
PGconn *pg_open(void);
/* Runs one statement on c; 0 or -1 (message printed). Thread-safe (one connection per thread). */
int pg_do(PGconn *c, const char *sql);

/* The resource's row: its version, and whether it is soft-deleted. */
long long version_of(long long id);
int is_deleted(long long id);

/* --- scopes: the oracle (owner and team compared directly, never the API's SQL) ------- */

int can_read(int who, long long owner, long long team);
int can_write(int who, long long owner, long long team);
/* The rows `who` may read, as a WHERE clause on columns prefix owner_id and prefix team_id ("" or "c."). */
const char *scope_where(int who, const char *prefix);

/* --- lists ------------------------------------------------------------------------------- */

/* The `total` of a count=true list of the resource (query may be ""). */
long long api_count(int who, const char *query);
/* Every item of a list, paging with `limit`; path has a query already or not. Kept. */
json_t *list_all(int who, const char *path, int limit);
int has_id(json_t *items, long long id);
/* items holds exactly the ids want[0..n), each once. */
void expect_ids_(json_t *items, const long long *want, size_t n, int line);
#define expect_ids(items, want, n) expect_ids_((items), (want), (n), __LINE__)
/* -1, 0, 1 like strcmp for two list items under a sort key; ties broken by id. */
int cmp_items(json_t *a, json_t *b, const char *key);
/* items are in the order of sort ("name", "-created_at", ...), ties broken by id. */
void expect_sorted(json_t *items, const char *sort);

/* --- change feeds ---------------------------------------------------------------------- */

/* The cursor after everything `who` can see now in a feed ("/v1/changes/customers"). */
const char *feed_head_of(const char *feed, int who);
/* The same for the resource's feed. */
const char *feed_head(int who);
/* Every change of the resource after *cursor, `limit` a page, until an empty page; moves *cursor. Kept. */
json_t *feed_since(int who, const char **cursor, int limit);
/* A change: op, id, changed_at; a tombstone without data, else data is the record. */
void expect_change_(json_t *ch, const char *op, long long id, int line);
#define expect_change(ch, op, id) expect_change_((ch), (op), (id), __LINE__)

/* --- workers --------------------------------------------------------------------------- */

/*
 * Starts $CLIENTELE_TEST_BUILD/clientele-worker named `name` on the suite's
 * database and Redis database, with extra environment env ("NAME=value",
 * NULL-terminated; may be NULL), logging at debug level to
 * $STACK_DIR/logs/worker-<suite>-<pid>-<n>-<name>.log (w->log_path), its
 * health and metrics listener on a free port (w->port; env may set
 * CLIENTELE_WORKER_LISTEN otherwise), and waits until it consumes the runs
 * stream. The worker is killed when the
 * thread that started it ends, so a failed test never leaves one behind.
 * Must run in a test: it fails the test when the worker does not start
 * within 20 seconds.
 */
void crew_start_worker(th_api_t *w, const char *name, const char *const *env);
/* SIGTERM, then waits; fails the test unless the worker exited 0 (under ASan: no leak, no report). */
void crew_stop_worker(th_api_t *w);
/* 1 when the file at path has a line containing needle. */
int crew_log_has(const char *path, const char *needle);

#endif
