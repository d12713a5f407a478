/*
 * api/api.h - what every API module shares: the server, its threads, and
 * the per-request state handlers work with.
 *
 * Ownership: the api_server_t lives for the whole process (created in
 * main.c). Each api_thread_t belongs to one loop thread and owns that
 * thread's h2o context, database pool and Redis client. An api_req_t is
 * created for each request that reaches the router; it is a ref-counted
 * chunk (h2o_mem_alloc_shared) whose one reference is held by a guard on
 * the request's pool. When h2o disposes the request, the guard sets
 * ar->req to NULL and drops its reference, so a handler waiting on a query
 * takes its own reference (api_req_hold) and, on the reply, checks ar->req
 * before answering (api_req_release afterwards).
 */
#ifndef CLIENTELE_API_API_H
#define CLIENTELE_API_API_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#define H2O_USE_LIBUV 0
#include <h2o.h>
#include <jansson.h>

#include "common/cfg.h"
#include "common/db.h"
#include "common/err.h"
#include "common/kv.h"
#include "common/log.h"
#include "common/watchdog.h"
#include "cursor.h"
#include "docs.h"
#include "kdf.h"
#include "offload.h"
#include "router.h"
#include "token.h"

typedef struct st_api_req_t api_req_t;
typedef struct st_api_thread_t api_thread_t;
typedef struct st_api_metrics_t api_metrics_t;

/* A handler answers now or later; a negative return is answered with api_send_error(). */
typedef int (*api_handler_fn)(api_req_t *ar);

enum {
    API_BODY_JSON = 1 << 0,        /* expects an application/json body */
    API_BODY_MERGE_PATCH = 1 << 1, /* expects application/merge-patch+json */
    API_BODY_NDJSON = 1 << 2,      /* also takes application/x-ndjson */
    API_BODY_BULK = 1 << 3,        /* allowed up to the bulk body limit */
    API_PUBLIC = 1 << 4,           /* no token needed; every other route is authenticated by the pipeline */
    API_BODY_RAW = 1 << 5,         /* the body is a file: any one media type, the attachment limit, never parsed */
};

/*
 * What a bulk route's body becomes before its handler runs: the checked
 * items as compact JSON text (malloc'ed), or the 422 to answer. The
 * pipeline checks the route's resource module with one cheap query before
 * the body is parsed (403 at once if the caller's role may neither create
 * nor update it; the write's own statement still decides), then checks the
 * items where the body was parsed - on the offload pool for large bodies -
 * so that checking every item never holds the loop (engine_prepare_bulk).
 */
typedef struct st_api_prepared_t {
    char *text;      /* on success: owned by the request afterwards (ar->body_text) */
    json_t *errors;  /* on failure: errors[] of the 422 */
    char detail[160];
} api_prepared_t;

struct st_engine_resource_t;
struct st_engine_t;

typedef struct st_api_route_t {
    unsigned method;      /* a ROUTER_* bit */
    const char *path;     /* template, "/v1/customers/{id:int}" */
    api_handler_fn handler;
    unsigned flags;       /* API_BODY_*, API_PUBLIC */
    const struct st_engine_resource_t *resource; /* engine routes: the resource served (api/engine.h) */
} api_route_t;

/* The route table (api/routes.c). */
extern const api_route_t api_routes[];
extern const size_t api_nroutes;

typedef struct st_api_server_t {
    const cfg_t *cfg;
    h2o_globalconf_t globalconf;
    h2o_hostconf_t *hostconf;
    api_metrics_t *metrics;
    const char *const *templates; /* api_routes[i].path, for router_match */
    unsigned *methods;            /* api_routes[i].method */
    h2o_iovec_t openapi_yaml;     /* the embedded spec */
    h2o_iovec_t openapi_json;     /* the same, converted once at start-up */
    api_docs_t docs;              /* the reference page, made with the spec (api/docs.c) */
    SSL_CTX *ssl_ctx;             /* NULL without TLS */
    token_conf_t token;           /* access token signing and checking */
    cursor_key_t cursor_key;      /* signs pagination cursors (derived from the token secret) */
    kdf_pool_t *kdf;              /* password hashing threads */
    offload_pool_t *offload;      /* body parsing (and freeing) threads */
    struct st_tzdb_t *tzdb;       /* every IANA zone, loaded before the loops start */
    struct st_engine_t *engine;   /* every resource's statements (api/engine.h), built before the loops start */
    struct st_api_caller_cache_t *callers; /* callers of reads, shared by the loops (api/callers.c) */
    struct st_attachments_t *attachments; /* statements, file store and its I/O threads (api/attachments.h) */
    struct st_api_modules_t *modules;     /* modules and which are switched off (api/modules.h) */
    struct st_merge_t *merge;             /* duplicates and merges: statements and the phone region (api/merge.h) */
    api_thread_t *threads;
    int nthreads;
    _Atomic int shutting_down;
} api_server_t;

struct st_api_thread_t {
    h2o_context_t ctx;
    h2o_evloop_t *loop;
    api_server_t *server;
    int index;
    pthread_t tid;
    db_t *db;
    kv_t *kv;
    db_gauges_t db_gauges; /* published by db and kv for /metrics on any thread; outlive both */
    kv_gauges_t kv_gauges;
    kdf_client_t *kdf;
    offload_client_t *offload; /* NULL once destroyed at shutdown */
    offload_client_t *storage; /* file store I/O (api/storage.h); NULL once destroyed at shutdown */
    h2o_socket_t *listener;
    h2o_accept_ctx_t accept_ctx;
    h2o_multithread_receiver_t wake;
    struct st_api_token_cache_t *tokens; /* recently verified access tokens (api/auth.c) */
    int connections; /* open client connections */
    int inflight;    /* requests that reached the router and are not yet disposed */
    uint64_t rng;    /* request-id generator state */
    watchdog_t watchdog; /* this loop's lag, shown in /metrics */
    char watchdog_name[24];
};

struct st_api_req_t {
    h2o_req_t *req;           /* NULL once h2o has disposed the request */
    api_thread_t *thread;
    const api_route_t *route; /* NULL when no route matched */
    int route_index;          /* metrics label; -1 for no route */
    router_match_t match;
    char *scratch;            /* decoded path parameters live here */
    char request_id[65];
    char trace_id[33];        /* from a valid W3C traceparent, else "" */
    char parent_id[17];       /* the caller's span in that traceparent, else "" */
    char method[12];          /* copied: h2o's buffer may be gone when the log line is written */
    json_t *body;             /* the parsed JSON body, when the route takes one */
    int body_big;             /* the body was parsed off the loop: it is freed off the loop too */
    char *body_text;          /* bulk routes: the prepared items as JSON text (malloc'ed, freed with ar) */
    int64_t user_id;          /* 0 until authenticated */
    token_claims_t claims;    /* valid once api_authenticate() succeeded */
    uint64_t started_ns;
};

/* The thread a request runs on. */
static inline api_thread_t *api_thread_of(h2o_req_t *req)
{
    return H2O_STRUCT_FROM_MEMBER(api_thread_t, ctx, req->conn->ctx);
}

/* Entry point registered with h2o for every path (api/http.c). */
int api_on_req(h2o_handler_t *self, h2o_req_t *req);
/* Registers the handler, the error filter and the request guard on a host. */
void api_register(api_server_t *server, h2o_hostconf_t *hostconf);

/* The log context of ar: its request id and trace id (see common/log.h). */
void api_log_ctx(const api_req_t *ar, log_ctx_t *out);
/* Logs a printf-formatted message in ar's log context, whatever the thread's context is now. */
void api_log(const api_req_t *ar, int level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Keeps ar alive across an asynchronous call; pair with api_req_release. */
void api_req_hold(api_req_t *ar);
void api_req_release(api_req_t *ar);

/* A path parameter by name; the router guarantees declared ones exist. */
int64_t api_param_i64(api_req_t *ar, const char *name);
const char *api_param_str(api_req_t *ar, const char *name);

/*
 * Answers with a JSON body (steals the reference to body; NULL sends no
 * body). Adds the request id and CORS headers. Returns 0.
 */
int api_send_json(api_req_t *ar, int status, json_t *body);
/* Answers with a raw body of the given content type (body is copied). */
int api_send_raw(api_req_t *ar, int status, const char *content_type, const char *body, size_t len);
/* The same without the copy, for a body that outlives every request (embedded or made at start-up). */
int api_send_static(api_req_t *ar, int status, const char *content_type, const char *body, size_t len);
/*
 * Starts a streamed answer (body of unknown length, sent with h2o_send() as
 * gen's proceed asks for more). Adds the request id and CORS headers.
 */
void api_start_stream(api_req_t *ar, int status, const char *content_type, h2o_generator_t *gen);
/* Adds a response header (name lower-case, value copied into the pool). */
void api_add_header(api_req_t *ar, const char *name, const char *value);

/* --- api/auth.c -------------------------------------------------------- */

/*
 * Checks the request's bearer token (no I/O). On success fills ar->claims
 * and ar->user_id and returns 0; otherwise answers 401 itself and returns
 * ERR_UNAUTHENTICATED. The pipeline (api/http.c) calls it for every route
 * without API_PUBLIC before the body is looked at; handlers never do.
 */
int api_authenticate(api_req_t *ar);
/* The same without answering: 0 with ar->claims and ar->user_id filled in, or ERR_UNAUTHENTICATED (public routes). */
int api_authenticate_quiet(api_req_t *ar);
/* The per-thread cache of verified tokens: created and freed by the thread that uses it. */
struct st_api_token_cache_t *api_token_cache_new(void);
void api_token_cache_free(struct st_api_token_cache_t *c);
/* Answers 401; `invalid` adds error="invalid_token" to WWW-Authenticate. */
int api_send_unauthenticated(api_req_t *ar, int invalid, const char *detail);
/* The caller's id and token version as SQL parameters ($1, $2 of every scoped write statement). */
void api_caller_params(api_req_t *ar, char uid[24], char ver[24]);

/* --- api/callers.c: the caller of reads, cached for at most half a second ---- */

/* Called with "<team id> <read scope> <hidden fields>" of the module: the $2 of read statements (pool memory). */
typedef void (*api_caller_fn)(api_req_t *ar, const char *scope_param, void *arg);
/*
 * Finds the caller's team and read scope for `module` (from the cache, or
 * one query) and calls cont, now or later; answers 401 itself when the
 * user is inactive or the token's version is no longer current. Returns 0,
 * or an err_t (nothing called, nothing answered).
 */
int api_caller_read_scope(api_req_t *ar, const char *module, api_caller_fn cont, void *arg);
/* The same for a request whose answer has started: cont gets NULL instead of the request being answered. */
int api_caller_read_scope_quiet(api_req_t *ar, const char *module, api_caller_fn cont, void *arg);
/* 1 when the caller's role hides field (a name, or "attrs.<key>") of the module scope_param was given for. */
int api_caller_hides(const char *scope_param, const char *field);
struct st_api_caller_cache_t *api_caller_cache_new(void);
void api_caller_cache_free(struct st_api_caller_cache_t *c);

/* --- api/problem.c: the only writer of error bodies ------------------- */

/* The reason phrase for a status ("Not Found"). */
const char *api_status_reason(int status);
/* The HTTP status for an err_t. */
int api_err_status(int err);
/* Answers with an RFC 9457 problem for err, with a sentence of detail (may be NULL). */
int api_send_error(api_req_t *ar, int err, const char *detail);
/*
 * Answers with the problem for err (no Retry-After or WWW-Authenticate: for
 * 4xx answers) whose body also holds the members of extra, such as the
 * survivor of a merged record; steals extra.
 */
int api_send_problem_extra(api_req_t *ar, int err, const char *detail, json_t *extra);
/* Answers 422 (or `status`) with errors: [{"field","code","message"}] (steals errors). */
int api_send_invalid(api_req_t *ar, int status, const char *detail, json_t *errors);
/*
 * Answers with the problem of a kind that no err_t names, by its slug
 * ("module-disabled": 404), with a sentence of detail. Returns 0.
 */
int api_send_problem(api_req_t *ar, const char *slug, const char *detail);
/* The slug of problem kind i, NULL past the last (for the contract test). */
const char *api_problem_slug(size_t i);
/* Appends {"field","code","message"} to an errors array. */
void api_error_add(json_t *errors, const char *field, const char *code, const char *message);
/* Builds the problem body for a status (used for h2o's own error answers too). */
json_t *api_problem_new(int status, const char *detail, const char *instance);
/* Registers the filter that rewrites h2o's plain-text errors as problems. */
void api_problem_register_filter(h2o_pathconf_t *pathconf, api_server_t *server);

/* --- api/metrics.c ---------------------------------------------------- */

api_metrics_t *api_metrics_new(size_t nroutes);
void api_metrics_free(api_metrics_t *m);
/* Counts one finished request; route -1 is "no route". Any thread. */
void api_metrics_observe(api_metrics_t *m, int route, int status, uint64_t duration_ns);
/* Appends the Prometheus text exposition to buf. */
void api_metrics_render(api_server_t *server, h2o_mem_pool_t *pool, h2o_iovec_t *out);

/* --- handlers --------------------------------------------------------- */

int health_live(api_req_t *ar);
int health_ready(api_req_t *ar);
int health_metrics(api_req_t *ar);
int openapi_get_yaml(api_req_t *ar);
int openapi_get_json(api_req_t *ar);
int docs_get_page(api_req_t *ar);
int docs_get_file(api_req_t *ar);

/* api/openapi.c: converts the embedded YAML spec to JSON once, and makes the reference page for it. */
int api_openapi_load(api_server_t *server, char *err, size_t errlen);
/* Parses a YAML document into JSON (for the spec and its tests); NULL + err on failure. */
json_t *api_yaml_to_json(const char *yaml, size_t len, char *err, size_t errlen);

/* api/useradd.c: `clientele-api user-add EMAIL NAME ROLE [TEAM]`; blocking. */
int api_useradd(const char *conninfo, int argc, char **argv);

#endif
