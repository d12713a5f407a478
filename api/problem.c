/*
 * api/problem.c - the one place that turns errors into HTTP answers.
 *
 * Every error body is an RFC 9457 problem (application/problem+json) with
 * a stable `type` of the form /problems/<slug>, documented in the OpenAPI
 * spec. The table below is the single mapping from err_t to status, slug
 * and title. h2o answers a few errors itself before any handler runs (a
 * body over the hard limit, broken chunked encoding); a response filter
 * rewrites those plain-text answers into problems too, so a client never
 * sees two error formats.
 */
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#include "api.h"
#include "common/log.h"

typedef struct st_problem_kind_t {
    int status;
    const char *slug;
    const char *title;
} problem_kind_t;

static const problem_kind_t kinds[] = {
    {400, "bad-request", "malformed request"},
    {401, "unauthenticated", "authentication required"},
    {403, "forbidden", "not allowed"},
    {404, "not-found", "resource not found"},
    {404, "module-disabled", "module switched off"},
    {405, "method-not-allowed", "method not allowed"},
    {409, "conflict", "conflict with the current state"},
    {412, "precondition-failed", "precondition failed"},
    {413, "payload-too-large", "request body too large"},
    {415, "unsupported-media-type", "unsupported media type"},
    {416, "range-not-satisfiable", "range not satisfiable"},
    {422, "validation-failed", "validation failed"},
    {429, "too-many-requests", "too many requests"},
    {500, "internal", "internal error"},
    {503, "unavailable", "service unavailable"},
    {504, "timeout", "dependency timed out"},
};

/* The first kind of a status is the one its err_t answers with; later ones are sent by slug (api_send_problem). */
static const problem_kind_t *kind_of(int status)
{
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
        if (kinds[i].status == status)
            return &kinds[i];
    return kind_of(status >= 500 ? 500 : 400);
}

const char *api_status_reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 202:
        return "Accepted";
    case 204:
        return "No Content";
    case 206:
        return "Partial Content";
    case 304:
        return "Not Modified";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 409:
        return "Conflict";
    case 412:
        return "Precondition Failed";
    case 413:
        return "Content Too Large";
    case 415:
        return "Unsupported Media Type";
    case 416:
        return "Range Not Satisfiable";
    case 422:
        return "Unprocessable Content";
    case 429:
        return "Too Many Requests";
    case 500:
        return "Internal Server Error";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    default:
        return "";
    }
}

int api_err_status(int err)
{
    switch (err) {
    case ERR_INVALID:
        return 400;
    case ERR_UNAUTHENTICATED:
        return 401;
    case ERR_FORBIDDEN:
        return 403;
    case ERR_NOT_FOUND:
        return 404;
    case ERR_METHOD:
        return 405;
    case ERR_CONFLICT:
        return 409;
    case ERR_PRECONDITION:
        return 412;
    case ERR_TOO_LARGE:
        return 413;
    case ERR_MEDIA_TYPE:
        return 415;
    case ERR_RANGE:
        return 416;
    case ERR_UNPROCESSABLE:
        return 422;
    case ERR_RATE_LIMITED:
        return 429;
    case ERR_UNAVAILABLE:
        return 503;
    case ERR_TIMEOUT:
        return 504;
    default:
        return 500;
    }
}

static const char *default_detail(int status)
{
    switch (status) {
    case 500:
        return "The server failed to handle this request. The failure was logged with this request's id.";
    case 503:
        return "A service this request depends on is unavailable. Retry later.";
    case 504:
        return "A service this request depends on did not answer in time. Retry later.";
    case 404:
        return "No such resource exists, or you are not allowed to see it.";
    default:
        return NULL;
    }
}

static json_t *problem_of(const problem_kind_t *k, int status, const char *detail, const char *instance)
{
    char type[64];
    snprintf(type, sizeof(type), "/problems/%s", k->slug);
    json_t *o = json_object();
    json_object_set_new(o, "type", json_string(type));
    json_object_set_new(o, "title", json_string(k->title));
    json_object_set_new(o, "status", json_integer(status));
    if (detail == NULL)
        detail = default_detail(status);
    if (detail != NULL)
        json_object_set_new(o, "detail", json_string(detail));
    if (instance != NULL) {
        json_t *s = json_string(instance);
        json_object_set_new(o, "instance", s != NULL ? s : json_string("(not UTF-8)"));
    }
    return o;
}

json_t *api_problem_new(int status, const char *detail, const char *instance)
{
    return problem_of(kind_of(status), status, detail, instance);
}

const char *api_problem_slug(size_t i)
{
    return i < sizeof(kinds) / sizeof(kinds[0]) ? kinds[i].slug : NULL;
}

static json_t *problem_for_kind(api_req_t *ar, const problem_kind_t *k, int status, const char *detail)
{
    h2o_req_t *req = ar->req;
    size_t len = req->query_at != SIZE_MAX ? req->query_at : req->path.len;
    char *instance = h2o_mem_alloc_pool(&req->pool, len + 1);
    memcpy(instance, req->path.base, len);
    instance[len] = '\0';
    json_t *o = problem_of(k, status, detail, instance);
    json_object_set_new(o, "request_id", json_string(ar->request_id));
    return o;
}

static json_t *problem_for(api_req_t *ar, int status, const char *detail)
{
    return problem_for_kind(ar, kind_of(status), status, detail);
}

int api_send_error(api_req_t *ar, int err, const char *detail)
{
    int status = api_err_status(err);
    if (status == 503 || status == 429)
        api_add_header(ar, "retry-after", status == 503 ? "1" : "60");
    if (status == 401)
        api_add_header(ar, "www-authenticate", "Bearer");
    return api_send_json(ar, status, problem_for(ar, status, detail));
}

int api_send_problem(api_req_t *ar, const char *slug, const char *detail)
{
    const problem_kind_t *k = NULL;
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]) && k == NULL; i++)
        if (strcmp(kinds[i].slug, slug) == 0)
            k = &kinds[i];
    if (k == NULL)
        return api_send_error(ar, ERR_INTERNAL, NULL);
    return api_send_json(ar, k->status, problem_for_kind(ar, k, k->status, detail));
}

int api_send_problem_extra(api_req_t *ar, int err, const char *detail, json_t *extra)
{
    int status = api_err_status(err);
    json_t *o = problem_for(ar, status, detail);
    json_object_update(o, extra);
    json_decref(extra);
    return api_send_json(ar, status, o);
}

void api_error_add(json_t *errors, const char *field, const char *code, const char *message)
{
    json_t *e = json_object();
    json_object_set_new(e, "field", json_string(field));
    json_object_set_new(e, "code", json_string(code));
    json_object_set_new(e, "message", json_string(message));
    json_array_append_new(errors, e);
}

int api_send_invalid(api_req_t *ar, int status, const char *detail, json_t *errors)
{
    json_t *o = problem_for(ar, status, detail);
    json_object_set_new(o, "errors", errors);
    return api_send_json(ar, status, o);
}

/* --- h2o's own error answers ------------------------------------------- */

typedef struct st_problem_filter_t {
    h2o_filter_t super;
    api_server_t *server;
} problem_filter_t;

typedef struct st_problem_ostream_t {
    h2o_ostream_t super;
    h2o_iovec_t body;
} problem_ostream_t;

static void on_problem_send(h2o_ostream_t *self, h2o_req_t *req, h2o_iovec_t *bufs, size_t bufcnt,
                            h2o_send_state_t state)
{
    problem_ostream_t *os = (problem_ostream_t *)self;
    /* Drop h2o's plain-text body; send ours with the final chunk. */
    if (h2o_send_state_is_in_progress(state)) {
        h2o_ostream_send_next(self, req, NULL, 0, state);
        return;
    }
    int is_head = h2o_memis(req->input.method.base, req->input.method.len, H2O_STRLIT("HEAD"));
    h2o_ostream_send_next(self, req, &os->body, is_head ? 0 : 1, state);
}

static int has_header(h2o_headers_t *headers, const char *name)
{
    return h2o_find_header_by_str(headers, name, strlen(name), -1) >= 0;
}

static void on_setup_ostream(h2o_filter_t *self, h2o_req_t *req, h2o_ostream_t **slot)
{
    problem_filter_t *f = (problem_filter_t *)self;
    /* Our own answers always carry a request id; anything else came from h2o itself. */
    if (req->res.status < 400 || has_header(&req->res.headers, "x-request-id")) {
        h2o_setup_next_ostream(req, slot);
        return;
    }
    char id[33];
    uint64_t r[2] = {0, 0};
    if (getrandom(r, sizeof(r), GRND_NONBLOCK) < 0)
        r[0] = (uint64_t)(uintptr_t)req;
    snprintf(id, sizeof(id), "%016llx%016llx", (unsigned long long)r[0], (unsigned long long)r[1]);

    const char *detail = req->res.status == 413 ? "The request body is larger than this server accepts." : NULL;
    /* The path as the client sent it, without the query; empty when the request line was unreadable. */
    h2o_iovec_t path = req->input.path;
    size_t plen = 0;
    while (plen < path.len && path.base[plen] != '?')
        plen++;
    char *instance = NULL;
    if (plen > 0 && path.base[0] == '/') {
        instance = h2o_mem_alloc_pool(&req->pool, plen + 1);
        memcpy(instance, path.base, plen);
        instance[plen] = '\0';
    }
    json_t *o = api_problem_new(req->res.status, detail, instance);
    json_object_set_new(o, "request_id", json_string(id));
    size_t len = json_dumpb(o, NULL, 0, JSON_COMPACT | JSON_PRESERVE_ORDER);
    char *buf = h2o_mem_alloc_pool(&req->pool, len);
    json_dumpb(o, buf, len, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);

    ssize_t i = h2o_find_header(&req->res.headers, H2O_TOKEN_CONTENT_TYPE, -1);
    if (i >= 0)
        h2o_delete_header(&req->res.headers, i);
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, H2O_STRLIT("application/problem+json"));
    h2o_iovec_t idv = h2o_strdup(&req->pool, id, SIZE_MAX);
    h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("x-request-id"), 0, NULL, idv.base, idv.len);
    req->res.content_length = len;

    log_ctx_t saved = *log_ctx(), mine;
    memset(&mine, 0, sizeof(mine));
    memcpy(mine.request_id, id, sizeof(id));
    log_ctx_set(&mine);
    log_msg(LOG_INFO, "request refused by the HTTP layer: status %d", req->res.status);
    log_ctx_set(&saved);
    api_metrics_observe(f->server->metrics, -1, req->res.status, 0);

    problem_ostream_t *os = (problem_ostream_t *)h2o_add_ostream(req, sizeof(*os), slot);
    os->super.do_send = on_problem_send;
    os->body = h2o_iovec_init(buf, len);
    h2o_setup_next_ostream(req, &os->super.next);
}

void api_problem_register_filter(h2o_pathconf_t *pathconf, api_server_t *server)
{
    problem_filter_t *f = (problem_filter_t *)h2o_create_filter(pathconf, sizeof(*f));
    f->super.on_setup_ostream = on_setup_ostream;
    f->server = server;
}
