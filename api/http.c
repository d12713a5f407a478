/*
 * api/http.c - the request pipeline: from h2o's on_req to a handler, and
 * the helpers handlers answer with.
 *
 * For every request: assign the request id, route it, answer OPTIONS and
 * CORS preflights, then apply the route row's policy before any handler
 * runs: authenticate from the headers (401 before the body is touched),
 * refuse bodies of the wrong size or type from h2o's buffered length and
 * headers (413, 415), ask the database whether the caller may write the
 * module of a bulk route (403), and only then parse the JSON body - on the
 * loop when small, on the offload pool (api/offload.c) when large - and
 * call the route's handler. Between authentication and the body, routes
 * of a switched-off module answer 404 to all but administrators
 * (api/modules.c). A file body (API_BODY_RAW, attachments) is
 * checked the same way against its own limit and never parsed. A
 * pool-linked guard notices when h2o disposes the request; it writes the
 * access log line, counts the request in the metrics and detaches the
 * api_req_t (see api.h).
 *
 * Every request has an id (the client's X-Request-Id when sane, else a
 * new one) and, when the client sent one valid W3C traceparent, a trace
 * id. Both are the thread's log context while the pipeline and the
 * handler run, and the asynchronous layers carry them to their callbacks
 * (common/log.h), so every line logged on behalf of a request names it. An
 * invalid traceparent is ignored whole and never written anywhere.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api.h"
#include "common/log.h"
#include "common/rnd.h"
#include "common/trace.h"
#include "engine_routes.h"
#include "modules.h"
#include "scope.h"

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* --- request state and its guard --------------------------------------- */

typedef struct st_free_job_t {
    offload_job_t super;
    json_t *body;
    char *text;
} free_job_t;

static void free_work(offload_job_t *job)
{
    free_job_t *fj = (free_job_t *)job;
    if (fj->body != NULL)
        json_decref(fj->body);
    free(fj->text);
    fj->body = NULL; /* done: a job handed back at shutdown (ran or not) frees only what is left */
    fj->text = NULL;
}

static void free_done(offload_job_t *job, int cancelled)
{
    /* A job still queued when its loop shut down never ran: what it holds is freed here, at shutdown. */
    if (cancelled)
        free_work(job);
    free(job);
}

static void on_ar_dispose(void *p)
{
    api_req_t *ar = p;
    if (ar->body == NULL && ar->body_text == NULL)
        return;
    /* Freeing a tree of millions of values takes as long as building it: not on the loop. */
    offload_client_t *oc = ar->thread->offload;
    if (ar->body_big && oc != NULL) {
        free_job_t *fj = malloc(sizeof(*fj));
        if (fj != NULL) {
            *fj =
                (free_job_t){.super = {.work = free_work, .done = free_done}, .body = ar->body, .text = ar->body_text};
            if (offload_submit(oc, &fj->super) == 0)
                return;
            free(fj);
        }
    }
    if (ar->body != NULL)
        json_decref(ar->body);
    free(ar->body_text);
}

void api_req_hold(api_req_t *ar)
{
    h2o_mem_addref_shared(ar);
}

void api_req_release(api_req_t *ar)
{
    h2o_mem_release_shared(ar);
}

void api_log_ctx(const api_req_t *ar, log_ctx_t *out)
{
    memcpy(out->request_id, ar->request_id, sizeof(out->request_id));
    memcpy(out->trace_id, ar->trace_id, sizeof(out->trace_id));
}

void api_log(const api_req_t *ar, int level, const char *fmt, ...)
{
    if (!log_enabled(level))
        return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    log_ctx_t saved = *log_ctx(), mine;
    api_log_ctx(ar, &mine);
    log_ctx_set(&mine);
    log_msg(level, "%s", msg);
    log_ctx_set(&saved);
}

/* The access log line; it names the request itself, whatever context the thread is in. */
static void log_request(api_req_t *ar, h2o_req_t *req, uint64_t dur_ns)
{
    int status = req->res.status;
    int level = status >= 500 ? LOG_ERROR : LOG_INFO;
    if (!log_enabled(level))
        return;
    log_ctx_t saved = *log_ctx(), mine;
    api_log_ctx(ar, &mine);
    log_ctx_set(&mine);
    json_t *o = json_object();
    json_object_set_new(o, "msg", json_string("request"));
    json_object_set_new(o, "method", json_string(ar->method));
    char route[128] = "(none)";
    if (ar->route != NULL)
        router_template_label(ar->route->path, route, sizeof(route));
    json_object_set_new(o, "route", json_string(route));
    json_object_set_new(o, "status", json_integer(status));
    json_object_set_new(o, "duration_us", json_integer((json_int_t)(dur_ns / 1000)));
    if (ar->user_id != 0)
        json_object_set_new(o, "user_id", json_integer(ar->user_id));
    if (ar->parent_id[0] != '\0')
        json_object_set_new(o, "parent_id", json_string(ar->parent_id));
    log_json(level, o);
    json_decref(o);
    log_ctx_set(&saved);
}

/* Runs when h2o clears the request's pool: the request is finished or gone. */
static void on_guard_dispose(void *p)
{
    api_req_t *ar = *(api_req_t **)p;
    h2o_req_t *req = ar->req;
    api_thread_t *t = ar->thread;
    uint64_t dur = now_ns() - ar->started_ns;
    if (req->res.status == 0)
        req->res.status = 499; /* the client went away before an answer */
    log_request(ar, req, dur);
    api_metrics_observe(t->server->metrics, ar->route_index, req->res.status, dur);
    t->inflight--;
    ar->req = NULL;
    h2o_mem_release_shared(ar);
}

/* --- request ids --------------------------------------------------------- */

static void new_request_id(api_thread_t *t, char *out)
{
    if (t->rng == 0 && rnd_bytes(&t->rng, sizeof(t->rng)) != 0)
        t->rng = now_ns() ^ (uint64_t)(uintptr_t)t;
    uint64_t a, b;
    /* xorshift64*; ids need to be unique, not secret. */
    t->rng ^= t->rng >> 12, t->rng ^= t->rng << 25, t->rng ^= t->rng >> 27;
    a = t->rng * 0x2545F4914F6CDD1DULL;
    t->rng ^= t->rng >> 12, t->rng ^= t->rng << 25, t->rng ^= t->rng >> 27;
    b = t->rng * 0x2545F4914F6CDD1DULL;
    snprintf(out, 33, "%016llx%016llx", (unsigned long long)a, (unsigned long long)b);
}

/* --- answering ----------------------------------------------------------- */

void api_add_header(api_req_t *ar, const char *name, const char *value)
{
    h2o_req_t *req = ar->req;
    /* h2o keeps pointers, not copies: the value must live as long as the request. */
    h2o_iovec_t v = h2o_strdup(&req->pool, value, SIZE_MAX);
    h2o_add_header_by_str(&req->pool, &req->res.headers, name, strlen(name), 1, NULL, v.base, v.len);
}

static const char *find_header(h2o_req_t *req, const h2o_token_t *token, size_t *len)
{
    ssize_t i = h2o_find_header(&req->headers, token, -1);
    if (i < 0)
        return NULL;
    *len = req->headers.entries[i].value.len;
    return req->headers.entries[i].value.base;
}

static const char *find_header_str(h2o_req_t *req, const char *name, size_t *len)
{
    ssize_t i = h2o_find_header_by_str(&req->headers, name, strlen(name), -1);
    if (i < 0)
        return NULL;
    *len = req->headers.entries[i].value.len;
    return req->headers.entries[i].value.base;
}

/* Returns the allowed origin to echo, or NULL when CORS does not apply. */
static const char *cors_origin(api_req_t *ar)
{
    char **origins = ar->thread->server->cfg->cors_origins;
    size_t len;
    const char *origin = find_header_str(ar->req, "origin", &len);
    if (origin == NULL || origins == NULL || origins[0] == NULL)
        return NULL;
    for (char **o = origins; *o != NULL; o++) {
        if (strcmp(*o, "*") == 0 || (strlen(*o) == len && memcmp(*o, origin, len) == 0))
            return h2o_strdup(&ar->req->pool, origin, len).base;
    }
    return NULL;
}

static void add_common_headers(api_req_t *ar)
{
    api_add_header(ar, "x-request-id", ar->request_id);
    const char *origin = cors_origin(ar);
    if (origin != NULL) {
        api_add_header(ar, "access-control-allow-origin", origin);
        api_add_header(ar, "access-control-expose-headers",
                       "ETag, Location, Retry-After, X-Request-Id, Content-Disposition, Content-Range, Accept-Ranges");
        api_add_header(ar, "vary", "Origin");
    }
}

int api_send_raw(api_req_t *ar, int status, const char *content_type, const char *body, size_t len)
{
    h2o_req_t *req = ar->req;
    req->res.status = status;
    req->res.reason = api_status_reason(status);
    add_common_headers(ar);
    if (content_type != NULL)
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, content_type, strlen(content_type));
    if (status == 204 || status == 304) {
        h2o_send_inline(req, "", 0);
        return 0;
    }
    req->res.content_length = len;
    h2o_send_inline(req, body, len);
    return 0;
}

int api_send_static(api_req_t *ar, int status, const char *content_type, const char *body, size_t len)
{
    /* h2o_send_inline without its copy: the bytes outlive the request, so h2o may write them as they are. */
    static h2o_generator_t generator = {NULL, NULL};
    h2o_req_t *req = ar->req;
    req->res.status = status;
    req->res.reason = api_status_reason(status);
    add_common_headers(ar);
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, content_type, strlen(content_type));
    req->res.content_length = len;
    h2o_start_response(req, &generator);
    h2o_iovec_t buf = h2o_iovec_init(body, len);
    int head = h2o_memis(req->input.method.base, req->input.method.len, H2O_STRLIT("HEAD"));
    h2o_send(req, head ? NULL : &buf, head ? 0 : 1, H2O_SEND_STATE_FINAL);
    return 0;
}

void api_start_stream(api_req_t *ar, int status, const char *content_type, h2o_generator_t *gen)
{
    h2o_req_t *req = ar->req;
    req->res.status = status;
    req->res.reason = api_status_reason(status);
    add_common_headers(ar);
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, content_type, strlen(content_type));
    h2o_start_response(req, gen);
}

int api_send_json(api_req_t *ar, int status, json_t *body)
{
    if (body == NULL)
        return api_send_raw(ar, status, NULL, "", 0);
    size_t len = json_dumpb(body, NULL, 0, JSON_COMPACT | JSON_PRESERVE_ORDER);
    char *buf = h2o_mem_alloc_pool(&ar->req->pool, len + 1);
    json_dumpb(body, buf, len, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(body);
    const char *ctype = status >= 400 ? "application/problem+json" : "application/json";
    return api_send_raw(ar, status, ctype, buf, len);
}

int64_t api_param_i64(api_req_t *ar, const char *name)
{
    const router_param_t *p = router_param(&ar->match, name);
    return p != NULL ? p->i64 : 0;
}

const char *api_param_str(api_req_t *ar, const char *name)
{
    const router_param_t *p = router_param(&ar->match, name);
    return p != NULL ? p->str : NULL;
}

/* --- the pipeline -------------------------------------------------------- */

static int answer_options(api_req_t *ar, unsigned allow)
{
    char allowbuf[96];
    router_format_allow(allow, allowbuf, sizeof(allowbuf));
    api_add_header(ar, "allow", allowbuf);
    size_t len;
    if (cors_origin(ar) != NULL && find_header_str(ar->req, "access-control-request-method", &len) != NULL) {
        api_add_header(ar, "access-control-allow-methods", allowbuf);
        api_add_header(ar, "access-control-allow-headers",
                       "Authorization, Content-Type, If-Match, If-None-Match, X-Request-Id, Content-Disposition, "
                       "Range, If-Range");
        api_add_header(ar, "access-control-max-age", "600");
    }
    return api_send_raw(ar, 204, NULL, "", 0);
}

/* Compares a Content-Type's media type (before any ';') case-insensitively. */
static int media_type_is(const char *v, size_t len, const char *want)
{
    size_t n = 0;
    while (n < len && v[n] != ';' && v[n] != ' ' && v[n] != '\t')
        n++;
    return n == strlen(want) && strncasecmp(v, want, n) == 0;
}

/*
 * Checks the body's size and type from what h2o buffered, without reading
 * the bytes; answers (413, 415, 422) and returns nonzero on failure. Sets
 * *ndjson when the body is NDJSON.
 */
static int check_body(api_req_t *ar, int *ndjson)
{
    h2o_req_t *req = ar->req;
    const api_route_t *r = ar->route;
    const cfg_t *cfg = ar->thread->server->cfg;
    size_t limit = (r->flags & API_BODY_BULK) ? cfg->bulk_body_limit : cfg->body_limit;
    char detail[320];

    if (req->entity.base != NULL && req->entity.len > limit) {
        snprintf(detail, sizeof(detail), "The request body is %zu bytes; this endpoint accepts at most %zu.",
                 req->entity.len, limit);
        api_send_error(ar, ERR_TOO_LARGE, detail);
        return 1;
    }
    size_t ctlen;
    const char *ct = find_header(req, H2O_TOKEN_CONTENT_TYPE, &ctlen);
    const char *want = (r->flags & API_BODY_MERGE_PATCH) ? "application/merge-patch+json" : "application/json";
    *ndjson = 0;
    if (ct == NULL ||
        !(media_type_is(ct, ctlen, want) ||
          ((r->flags & API_BODY_NDJSON) && (*ndjson = media_type_is(ct, ctlen, "application/x-ndjson"))))) {
        snprintf(detail, sizeof(detail), "The request body must be sent as %s%s.", want,
                 (r->flags & API_BODY_NDJSON) ? " or application/x-ndjson" : "");
        api_send_error(ar, ERR_MEDIA_TYPE, detail);
        return 1;
    }
    if (req->entity.base == NULL || req->entity.len == 0) {
        api_send_error(ar, ERR_INVALID, "The request needs a JSON body.");
        return 1;
    }
    return 0;
}

/*
 * A file body (API_BODY_RAW): the attachment limit, and a media type, of
 * any kind; the bytes are the handler's and are never parsed. Answers (413,
 * 415, 400) and returns nonzero on failure.
 */
static int check_raw_body(api_req_t *ar)
{
    h2o_req_t *req = ar->req;
    size_t limit = ar->thread->server->cfg->attachment_limit, ctlen;
    char detail[200];
    if (req->entity.base != NULL && req->entity.len > limit) {
        snprintf(detail, sizeof(detail), "The file is %zu bytes; files may be at most %zu.", req->entity.len, limit);
        api_send_error(ar, ERR_TOO_LARGE, detail);
        return 1;
    }
    const char *ct = find_header(req, H2O_TOKEN_CONTENT_TYPE, &ctlen);
    while (ct != NULL && ctlen > 0 && (*ct == ' ' || *ct == '\t'))
        ct++, ctlen--;
    if (ct == NULL || ctlen == 0) {
        api_send_error(ar, ERR_MEDIA_TYPE, "Send the file's media type in Content-Type, such as application/pdf.");
        return 1;
    }
    if (req->entity.base == NULL || req->entity.len == 0) {
        api_send_error(ar, ERR_INVALID, "The request body is the file, and it is empty.");
        return 1;
    }
    return 0;
}

/*
 * Parses a body: JSON, or NDJSON (one value per line, collected into an
 * array). Pure (no request state), so it runs on a loop or a pool thread.
 * Returns a new reference, or NULL with a sentence in detail.
 */
static json_t *parse_body(const char *p, size_t len, int ndjson, char *detail, size_t dlen)
{
    json_error_t jerr;
    if (!ndjson) {
        json_t *v = json_loadb(p, len, JSON_REJECT_DUPLICATES, &jerr);
        if (v == NULL)
            snprintf(detail, dlen, "The body is not valid JSON (line %d, column %d): %s.", jerr.line, jerr.column,
                     jerr.text);
        return v;
    }
    json_t *arr = json_array();
    const char *end = p + len;
    int line = 0;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl != NULL ? (size_t)(nl - p) : (size_t)(end - p);
        line++;
        const char *q = p;
        while (q < p + n && isspace((unsigned char)*q))
            q++;
        if (q < p + n) {
            json_t *v = json_loadb(p, n, JSON_REJECT_DUPLICATES, &jerr);
            if (v == NULL) {
                json_decref(arr);
                snprintf(detail, dlen, "Line %d of the NDJSON body is not valid JSON: %s.", line, jerr.text);
                return NULL;
            }
            json_array_append_new(arr, v);
        }
        p += n + (nl != NULL);
    }
    return arr;
}

static void run_handler(api_req_t *ar)
{
    int ret = ar->route->handler(ar);
    if (ret < 0)
        api_send_error(ar, ret, NULL);
}

/* A bulk route's item checks, where the body was parsed (pure: no request state; the engine is immutable). */
static int prepare_body(const engine_t *engine, const api_route_t *route, json_t *body, api_prepared_t *prep)
{
    *prep = (api_prepared_t){0};
    if (!(route->flags & API_BODY_BULK) || route->resource == NULL)
        return 0;
    return engine_prepare_bulk(engine, route->resource, body, prep);
}

/* Answers a parsed (and prepared) body, or runs the handler with it. ar->body is set already. */
static void finish_body(api_req_t *ar, int prep_ret, api_prepared_t *prep, const char *parse_error)
{
    if (ar->body == NULL) {
        api_send_error(ar, ERR_INVALID, parse_error);
    } else if (prep_ret != 0) {
        if (prep->errors != NULL)
            api_send_invalid(ar, 422, prep->detail, prep->errors);
        else
            api_send_error(ar, ERR_INTERNAL, NULL);
    } else {
        ar->body_text = prep->text;
        run_handler(ar);
    }
}

/*
 * Bodies up to this size are parsed on the loop (well under a millisecond);
 * larger ones go to the offload pool, so that a bulk body never holds its
 * loop for longer than the copy below.
 */
#define INLINE_PARSE_MAX (64 * 1024)

/*
 * A body being parsed on the offload pool. It holds a reference on ar. The
 * bytes: under HTTP/1 h2o 2.2.5 keeps the request (and the connection's
 * input buffer that req->entity points into) alive until the answer is
 * sent, because it stops reading the socket while a request is in flight;
 * under HTTP/2 a stream reset frees the request and its body buffer at any
 * time, so the job parses its own copy (one memcpy, a few milliseconds for
 * the largest bulk).
 */
typedef struct st_parse_job_t {
    offload_job_t super;
    api_req_t *ar;
    const char *bytes;
    size_t len;
    char *copy; /* malloc'ed copy of the body (HTTP/2), or NULL */
    int ndjson;
    const api_route_t *route; /* static: safe to read on any thread */
    const engine_t *engine;   /* immutable while the server runs */
    json_t *body;
    int prep_ret;
    api_prepared_t prep;
    char detail[320];
} parse_job_t;

static void parse_work(offload_job_t *job)
{
    parse_job_t *pj = (parse_job_t *)job;
    pj->body = parse_body(pj->bytes, pj->len, pj->ndjson, pj->detail, sizeof(pj->detail));
    if (pj->body != NULL)
        pj->prep_ret = prepare_body(pj->engine, pj->route, pj->body, &pj->prep);
}

static void parse_done(offload_job_t *job, int cancelled)
{
    parse_job_t *pj = (parse_job_t *)job;
    api_req_t *ar = pj->ar;
    /* The tree is freed with ar (off the loop, see on_ar_dispose), whatever happens here. */
    ar->body = pj->body;
    ar->body_big = 1;
    if (!cancelled && ar->req != NULL) {
        finish_body(ar, pj->prep_ret, &pj->prep, pj->detail);
    } else {
        ar->body_text = pj->prep.text;
        if (pj->prep.errors != NULL)
            json_decref(pj->prep.errors);
    }
    api_req_release(ar);
    free(pj->copy);
    free(pj);
}

/* Parses the checked body (here, or on the offload pool when large), then runs the handler. */
static void parse_and_run(api_req_t *ar, int ndjson)
{
    h2o_req_t *req = ar->req;
    char detail[320];
    if (req->entity.len <= INLINE_PARSE_MAX || ar->thread->offload == NULL) {
        api_prepared_t prep = {0};
        int prep_ret = 0;
        if ((ar->body = parse_body(req->entity.base, req->entity.len, ndjson, detail, sizeof(detail))) != NULL)
            prep_ret = prepare_body(ar->thread->server->engine, ar->route, ar->body, &prep);
        finish_body(ar, prep_ret, &prep, detail);
        return;
    }
    parse_job_t *pj = calloc(1, sizeof(*pj));
    if (pj == NULL)
        abort();
    pj->super.work = parse_work;
    pj->super.done = parse_done;
    pj->ar = ar;
    pj->len = req->entity.len;
    pj->ndjson = ndjson;
    pj->route = ar->route;
    pj->engine = ar->thread->server->engine;
    if (req->version >= 0x200) {
        if ((pj->copy = malloc(pj->len)) == NULL)
            abort();
        memcpy(pj->copy, req->entity.base, pj->len);
        pj->bytes = pj->copy;
    } else {
        pj->bytes = req->entity.base;
    }
    if (offload_submit(ar->thread->offload, &pj->super) != 0) {
        free(pj->copy);
        free(pj);
        api_add_header(ar, "retry-after", "1");
        api_send_error(ar, ERR_UNAVAILABLE, "Too many large request bodies are being parsed right now. Retry later.");
        return;
    }
    api_req_hold(ar);
}

/* --- the write probe of bulk routes ------------------------------------- */

static const char SQL_WRITE_PROBE[] = SCOPE_WRITE_PROBE;

typedef struct st_probe_t {
    api_req_t *ar;
    int ndjson;
} probe_t;

static void on_probe(void *data, const PGresult *res, int err)
{
    probe_t *pr = data;
    api_req_t *ar = pr->ar;
    if (ar->req != NULL) {
        if (err != 0) {
            api_send_error(ar, err, NULL);
        } else if (PQntuples(res) != 1) {
            api_send_unauthenticated(ar, 1, "The access token is no longer valid.");
        } else if (strcmp(PQgetvalue(res, 0, 0), "none") == 0 && strcmp(PQgetvalue(res, 0, 1), "none") == 0) {
            char detail[160];
            snprintf(detail, sizeof(detail), "Your role may neither create nor update %s.", ar->route->resource->name);
            api_send_error(ar, ERR_FORBIDDEN, detail);
        } else {
            parse_and_run(ar, pr->ndjson);
        }
    }
    api_req_release(ar);
    free(pr);
}

/*
 * Before a bulk body is parsed: may the caller write the route's module at
 * all? One indexed lookup, so a forbidden caller gets 403 without costing
 * a parse. Roles are edited at run time, so this asks the database rather
 * than trusting the token's role name; the write's statement decides again.
 */
static void probe_then_parse(api_req_t *ar, int ndjson)
{
    char uid[24], ver[24];
    api_caller_params(ar, uid, ver);
    const char *params[] = {uid, ver, ar->route->resource->name};
    probe_t *pr = malloc(sizeof(*pr));
    if (pr == NULL)
        abort();
    *pr = (probe_t){ar, ndjson};
    int ret = db_query(ar->thread->db, SQL_WRITE_PROBE, 3, params, on_probe, pr);
    if (ret != 0) {
        free(pr);
        api_send_error(ar, ret, NULL);
        return;
    }
    api_req_hold(ar);
}

/*
 * The trace the client's request belongs to: exactly one traceparent
 * header with a valid value, else none (W3C Trace Context: several
 * traceparent headers are as good as an invalid one).
 */
static void read_traceparent(api_req_t *ar, h2o_req_t *req)
{
    ssize_t i = h2o_find_header_by_str(&req->headers, H2O_STRLIT("traceparent"), -1);
    if (i < 0 || h2o_find_header_by_str(&req->headers, H2O_STRLIT("traceparent"), i) >= 0)
        return;
    trace_parent_t tp;
    if (trace_parse_traceparent(req->headers.entries[i].value.base, req->headers.entries[i].value.len, &tp) != 0)
        return;
    memcpy(ar->trace_id, tp.trace_id, sizeof(ar->trace_id));
    memcpy(ar->parent_id, tp.parent_id, sizeof(ar->parent_id));
}

static int dispatch(api_req_t *ar);

/* The route's policy once the caller is known and may use its module: the body's checks, then the handler. */
static void serve(api_req_t *ar)
{
    if ((ar->route->flags & (API_BODY_JSON | API_BODY_MERGE_PATCH | API_BODY_RAW)) == 0) {
        run_handler(ar);
        return;
    }
    if (ar->route->flags & API_BODY_RAW) {
        if (check_raw_body(ar) == 0)
            run_handler(ar);
        return;
    }
    int ndjson;
    if (check_body(ar, &ndjson) != 0)
        return;
    if ((ar->route->flags & API_BODY_BULK) && ar->route->resource != NULL && (ar->route->flags & API_PUBLIC) == 0)
        probe_then_parse(ar, ndjson);
    else
        parse_and_run(ar, ndjson);
}

int api_on_req(h2o_handler_t *self, h2o_req_t *req)
{
    api_thread_t *t = api_thread_of(req);
    size_t path_len = req->query_at != SIZE_MAX ? req->query_at : req->path.len;

    api_req_t *ar = h2o_mem_alloc_shared(NULL, sizeof(*ar) + path_len + 1, on_ar_dispose);
    memset(ar, 0, sizeof(*ar));
    ar->req = req;
    ar->thread = t;
    ar->route_index = -1;
    ar->scratch = (char *)(ar + 1);
    ar->started_ns = now_ns();
    api_req_t **guard = h2o_mem_alloc_shared(&req->pool, sizeof(*guard), on_guard_dispose);
    *guard = ar;
    t->inflight++;
    if (req->method.len < sizeof(ar->method)) {
        memcpy(ar->method, req->method.base, req->method.len);
        for (size_t i = 0; i < req->method.len; i++)
            if (!isupper((unsigned char)ar->method[i]))
                ar->method[i] = '?';
    } else {
        strcpy(ar->method, "?");
    }

    size_t idlen;
    const char *id = find_header_str(req, "x-request-id", &idlen);
    if (id != NULL && trace_request_id_ok(id, idlen)) {
        memcpy(ar->request_id, id, idlen);
        ar->request_id[idlen] = '\0';
    } else {
        new_request_id(t, ar->request_id);
    }
    read_traceparent(ar, req);

    /* What the pipeline and the handler log, and what they start, names this request. */
    log_ctx_t saved = *log_ctx(), mine;
    api_log_ctx(ar, &mine);
    log_ctx_set(&mine);
    dispatch(ar);
    log_ctx_set(&saved);
    return 0;
}

/* Routes the request and applies its route's policy; answers or starts the answer. Returns 0. */
static int dispatch(api_req_t *ar)
{
    h2o_req_t *req = ar->req;
    api_server_t *server = ar->thread->server;
    size_t path_len = req->query_at != SIZE_MAX ? req->query_at : req->path.len;
    unsigned method = router_method_bit(req->method.base, req->method.len);
    int r = router_match(server->templates, server->methods, api_nroutes, method, req->path.base, path_len, ar->scratch,
                         &ar->match);
    if (r == ROUTER_ERR_NOT_FOUND)
        return api_send_error(ar, ERR_NOT_FOUND, "No resource exists at this path."), 0;
    if (method == ROUTER_OPTIONS)
        return answer_options(ar, ar->match.allow);
    if (r == ROUTER_ERR_METHOD) {
        char allow[96], detail[160];
        router_format_allow(ar->match.allow, allow, sizeof(allow));
        api_add_header(ar, "allow", allow);
        snprintf(detail, sizeof(detail), "This resource supports %s.", allow);
        api_send_error(ar, ERR_METHOD, detail);
        return 0;
    }
    ar->route = &api_routes[r];
    ar->route_index = r;
    /*
     * Policy from the route row, in this order: who (headers only), whether
     * the route's module is on for them, how big, may they write, then parse.
     */
    if ((ar->route->flags & API_PUBLIC) != 0)
        serve(ar);
    else if (api_authenticate(ar) == 0)
        api_modules_gate(ar, serve);
    return 0;
}

void api_register(api_server_t *server, h2o_hostconf_t *hostconf)
{
    h2o_pathconf_t *pathconf = h2o_config_register_path(hostconf, "/", 0);
    h2o_handler_t *h = h2o_create_handler(pathconf, sizeof(*h));
    h->on_req = api_on_req;
    api_problem_register_filter(pathconf, server);
    api_problem_register_filter(&hostconf->fallback_path, server);
}
