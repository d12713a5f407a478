/*
 * api/attachments.c - files attached to the records of every engine
 * resource (see attachments.h).
 *
 * Upload: the pipeline has authenticated the caller and checked the body's
 * size and media type (api/http.c, API_BODY_RAW). The handler reads the
 * file name, asks the database whether the caller may change the record
 * (the engine's ENGINE_SQL_VISIBLE statement: nothing is stored for a
 * caller who may not), stores the bytes off the loop (api/storage.c: hash,
 * temporary file, fsync, rename), then inserts the metadata with a
 * statement that checks the record's scope again as it writes. A record
 * deleted or moved out of the caller's scope between the two leaves a
 * stored blob that nobody names; being content-addressed, it costs its
 * bytes and nothing else.
 *
 * Download: one statement finds the attachment and decides whether the
 * caller may read its record; then the blob is opened and read in chunks
 * on the store's I/O threads, each chunk read only when the client has
 * taken the previous one (h2o's proceed), so a slow client never makes the
 * server hold more than a chunk and no read ever blocks the loop.
 *
 * Memory: what a database step needs lives in the request's pool (its
 * continuation runs only while the request does, see crud_query); what a
 * store step needs is malloc'ed or owned by the store, because the store
 * always calls back, even after the request has gone.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attachments.h"
#include "attachments_db.h"
#include "common/log.h"
#include "crud.h"
#include "engine_int.h"
#include "file_http.h"
#include "modules.h"
#include "resources.h"
#include "storage.h"

struct st_attachments_t {
    attachments_sql_t sql;
    storage_t *store;
    offload_pool_t *io;
};

attachments_t *attachments_open(const cfg_t *cfg, const struct st_engine_t *e, char *err, size_t errlen)
{
    attachments_t *a = calloc(1, sizeof(*a));
    if (a == NULL)
        abort();
    if (attachments_sql_build(&a->sql, e, engine_resources, err, errlen) != 0) {
        free(a);
        return NULL;
    }
    if ((a->store = storage_open(cfg->storage_dir, err, errlen)) == NULL) {
        attachments_sql_free(&a->sql);
        free(a);
        return NULL;
    }
    if ((a->io = offload_pool_create(ATTACHMENTS_IO_THREADS, ATTACHMENTS_IO_QUEUE_CAP)) == NULL) {
        snprintf(err, errlen, "cannot start the file store's threads");
        storage_close(a->store);
        attachments_sql_free(&a->sql);
        free(a);
        return NULL;
    }
    return a;
}

void attachments_close(attachments_t *a)
{
    if (a == NULL)
        return;
    offload_pool_destroy(a->io);
    storage_close(a->store);
    attachments_sql_free(&a->sql);
    free(a);
}

offload_pool_t *attachments_io_pool(attachments_t *a)
{
    return a->io;
}

static attachments_t *of(api_req_t *ar)
{
    return ar->thread->server->attachments;
}

static const char *header_of(api_req_t *ar, const h2o_token_t *token, size_t *len)
{
    ssize_t i = h2o_find_header(&ar->req->headers, token, -1);
    if (i < 0)
        return NULL;
    *len = ar->req->headers.entries[i].value.len;
    return ar->req->headers.entries[i].value.base;
}

#define CALLER(ar)                                                                                                     \
    char uid_[24], ver_[24];                                                                                           \
    api_caller_params(ar, uid_, ver_)

/* --- upload ---------------------------------------------------------------------- */

/* The upload's state between its steps: in the request's pool. */
typedef struct st_upload_t {
    const engine_resource_t *r;
    char id[24];
    char filename[FILE_HTTP_NAME_MAX + 1];
    char media_type[FILE_HTTP_MEDIA_TYPE_MAX + 1];
    char size[24];
    char sha[STORAGE_SHA_HEX];
} upload_t;

/* What the store's callback needs: malloc'ed, since it runs even when the request has gone. */
typedef struct st_put_ctx_t {
    api_req_t *ar; /* held */
    upload_t *u;   /* in the request's pool: valid only while ar->req is */
} put_ctx_t;

static void on_insert(api_req_t *ar, const PGresult *res, int err, void *arg)
{
    upload_t *u = arg;
    if (crud_check_result(ar, res, err) != 0)
        return;
    const char *outcome = PQgetvalue(res, 0, 0);
    if (strcmp(outcome, "created") == 0) {
        char loc[64], etag[STORAGE_SHA_HEX + 2];
        snprintf(loc, sizeof(loc), "/v1/attachments/%s", PQgetvalue(res, 0, 2));
        snprintf(etag, sizeof(etag), "\"%s\"", u->sha);
        api_add_header(ar, "location", loc);
        api_add_header(ar, "etag", etag);
        api_send_raw(ar, 201, "application/json", PQgetvalue(res, 0, 3), (size_t)PQgetlength(res, 0, 3));
    } else if (strcmp(outcome, "forbidden") == 0) {
        api_send_error(ar, ERR_FORBIDDEN, "Your role may not change this record, so it may not attach files to it.");
    } else if (strcmp(PQgetvalue(res, 0, 1), "none") == 0) {
        api_send_error(ar, ERR_FORBIDDEN, "Your role may not read these records.");
    } else {
        api_send_error(ar, ERR_NOT_FOUND, NULL);
    }
}

static void on_stored(void *data, int err, const char *sha, int cancelled)
{
    put_ctx_t *pc = data;
    api_req_t *ar = pc->ar;
    upload_t *u = pc->u;
    free(pc);
    if (cancelled || ar->req == NULL) {
        api_req_release(ar);
        return;
    }
    if (err != 0) {
        api_send_error(ar, err, err == ERR_UNAVAILABLE ? "The file store is full or busy. Retry later." : NULL);
    } else {
        snprintf(u->sha, sizeof(u->sha), "%s", sha);
        CALLER(ar);
        const char *p[] = {uid_, ver_, u->id, u->filename, u->media_type, u->size, u->sha};
        int ret = crud_query(ar, attachments_sql_insert(&of(ar)->sql, u->r), 7, p, on_insert, u);
        if (ret != 0)
            api_send_error(ar, ret, NULL);
    }
    api_req_release(ar);
}

/* The record as the engine sees it: rscope, uscope, readable, updatable. */
static void on_visible(api_req_t *ar, const PGresult *res, int err, void *arg)
{
    upload_t *u = arg;
    if (crud_check_result(ar, res, err) != 0)
        return;
    if (strcmp(PQgetvalue(res, 0, 2), "t") != 0) {
        if (strcmp(PQgetvalue(res, 0, 0), "none") == 0)
            api_send_error(ar, ERR_FORBIDDEN, "Your role may not read these records.");
        else
            api_send_error(ar, ERR_NOT_FOUND, NULL);
        return;
    }
    if (strcmp(PQgetvalue(res, 0, 3), "t") != 0) {
        api_send_error(ar, ERR_FORBIDDEN, "Your role may not change this record, so it may not attach files to it.");
        return;
    }
    /*
     * Under HTTP/1 the body stays where h2o buffered it until the answer is
     * sent (h2o stops reading the connection meanwhile); under HTTP/2 a
     * stream reset frees it at any time, so the store works on a copy.
     */
    h2o_req_t *req = ar->req;
    put_ctx_t *pc = malloc(sizeof(*pc));
    if (pc == NULL)
        abort();
    *pc = (put_ctx_t){ar, u};
    int ret = storage_put(ar->thread->storage, of(ar)->store, req->entity.base, req->entity.len, req->version >= 0x200,
                          on_stored, pc);
    if (ret != 0) {
        free(pc);
        api_send_error(ar, ret, "Too many files are being stored or read right now. Retry later.");
        return;
    }
    api_req_hold(ar);
}

int attachments_upload(api_req_t *ar)
{
    upload_t *u = h2o_mem_alloc_pool(&ar->req->pool, sizeof(*u));
    memset(u, 0, sizeof(*u));
    u->r = ar->route->resource;
    size_t len;
    const char *v = header_of(ar, H2O_TOKEN_CONTENT_TYPE, &len);
    if (v == NULL || file_http_media_type(v, len, u->media_type, sizeof(u->media_type)) != 0)
        return api_send_error(ar, ERR_MEDIA_TYPE,
                              "Content-Type must be the file's media type, such as application/pdf or "
                              "text/plain; charset=utf-8 (at most 255 bytes).");
    v = header_of(ar, H2O_TOKEN_CONTENT_DISPOSITION, &len);
    file_http_name_err_t ne = file_http_parse_disposition(v, len, u->filename, sizeof(u->filename));
    if (ne != FH_NAME_OK) {
        json_t *errors = json_array();
        api_error_add(errors, "filename", file_http_name_code(ne), file_http_name_message(ne));
        return api_send_invalid(ar, 422, "The file name in Content-Disposition is missing or not acceptable.", errors);
    }
    db_fmt_i64(u->id, api_param_i64(ar, "id"));
    snprintf(u->size, sizeof(u->size), "%zu", ar->req->entity.len);
    CALLER(ar);
    const char *p[] = {uid_, ver_, u->id};
    return crud_query(ar, engine_sql(ar->thread->server->engine, u->r, ENGINE_SQL_VISIBLE), 3, p, on_visible, u);
}

/* --- list ------------------------------------------------------------------------ */

static void on_list(api_req_t *ar, const PGresult *res, int err, void *arg)
{
    if (crud_check_result(ar, res, err) != 0)
        return;
    if (strcmp(PQgetvalue(res, 0, 0), "none") == 0) {
        api_send_error(ar, ERR_FORBIDDEN, "Your role may not read these records.");
        return;
    }
    if (strcmp(PQgetvalue(res, 0, 5), "t") != 0) {
        api_send_error(ar, ERR_NOT_FOUND, NULL);
        return;
    }
    crud_send_list(ar, res, arg);
}

int attachments_list(api_req_t *ar)
{
    static const char *const allowed[] = {"limit", "cursor", "count", NULL};
    /* Newest first: the one sort, by id (ids grow with created_at). */
    static const char *const sorts[] = {"created_at", NULL}, *const no_fields[] = {NULL};
    crud_query_t q;
    if (crud_parse_query(ar, allowed, &q) != 0)
        return 0;
    crud_list_t *list = h2o_mem_alloc_pool(&ar->req->pool, sizeof(*list));
    if (crud_parse_list(ar, &q, sorts, 1, no_fields, list) != 0)
        return 0;
    /* A read: the caller ($1, $2) comes from api/callers.c; the rest must live in the pool meanwhile. */
    char *id = h2o_mem_alloc_pool(&ar->req->pool, 24), *fetch = h2o_mem_alloc_pool(&ar->req->pool, 16);
    db_fmt_i64(id, api_param_i64(ar, "id"));
    snprintf(fetch, 16, "%d", list->limit + 1);
    const char *p[] = {NULL, NULL, id, list->cursor_id, fetch, list->count ? "true" : "false"};
    return engine_read(ar, attachments_sql_list(&of(ar)->sql, ar->route->resource), NULL, 6, p, 0, on_list, list);
}

/* --- download -------------------------------------------------------------------- */

/* A download being streamed: in the request's pool, its reader closed when the request goes. */
typedef struct st_download_t {
    h2o_generator_t super;
    api_req_t *ar;
    storage_reader_t *rd;
    int status;
    /* Pool strings; content_range is NULL for a 200. */
    const char *media_type, *etag, *disposition, *content_range;
    uint64_t size;     /* the blob's size, as the metadata says */
    uint64_t pos, end; /* the next byte to send, one past the last */
    int reading, finished;
    h2o_timeout_entry_t retry; /* linked while waiting for room in the store's queue */
} download_t;

static void read_next(download_t *dl);

static void on_read(void *data, int err, const char *buf, size_t n, int cancelled)
{
    download_t *dl = data;
    h2o_req_t *req = dl->ar->req;
    dl->reading = 0;
    if (cancelled || dl->finished)
        return;
    if (err != 0 || n == 0) {
        /* The status line is gone: all that is left is to cut the body short, which the client sees. */
        api_log(dl->ar, LOG_ERROR, "a file read failed; the body was cut short");
        dl->finished = 1;
        h2o_send(req, NULL, 0, H2O_SEND_STATE_ERROR);
        return;
    }
    dl->pos += n;
    dl->finished = dl->pos >= dl->end;
    h2o_iovec_t iov = h2o_iovec_init(buf, n);
    h2o_send(req, &iov, 1, dl->finished ? H2O_SEND_STATE_FINAL : H2O_SEND_STATE_IN_PROGRESS);
}

static void on_retry(h2o_timeout_entry_t *entry)
{
    download_t *dl = H2O_STRUCT_FROM_MEMBER(download_t, retry, entry);
    read_next(dl);
}

static void read_next(download_t *dl)
{
    if (dl->reading || dl->finished)
        return;
    uint64_t left = dl->end - dl->pos;
    size_t n = left < STORAGE_CHUNK ? (size_t)left : STORAGE_CHUNK;
    dl->reading = 1;
    if (storage_reader_read(dl->rd, dl->pos, n, on_read, dl) == 0)
        return;
    /* The store's queue is full: try again in a second rather than cut the body short. */
    dl->reading = 0;
    h2o_context_t *ctx = dl->ar->req->conn->ctx;
    h2o_timeout_link(ctx->loop, &ctx->one_sec_timeout, &dl->retry);
}

static void on_proceed(h2o_generator_t *g, h2o_req_t *req)
{
    read_next((download_t *)g);
}

static void on_stop(h2o_generator_t *g, h2o_req_t *req)
{
    ((download_t *)g)->finished = 1;
}

static void on_download_dispose(void *p)
{
    download_t *dl = p;
    if (h2o_timeout_is_linked(&dl->retry))
        h2o_timeout_unlink(&dl->retry);
    storage_reader_close(dl->rd);
}

/* Starts the 200 or 206 answer: its headers, then the body as the generator is asked for it. */
static void start_download(download_t *dl)
{
    api_req_t *ar = dl->ar;
    api_add_header(ar, "etag", dl->etag);
    api_add_header(ar, "cache-control", "private, no-cache");
    api_add_header(ar, "accept-ranges", "bytes");
    api_add_header(ar, "content-disposition", dl->disposition);
    if (dl->content_range != NULL)
        api_add_header(ar, "content-range", dl->content_range);
    /* Never rendered as a page of this origin, whatever the uploader called it or typed it as. */
    api_add_header(ar, "x-content-type-options", "nosniff");
    api_add_header(ar, "content-security-policy", "default-src 'none'; sandbox");
    ar->req->res.content_length = dl->end - dl->pos;
    api_start_stream(ar, dl->status, dl->media_type, &dl->super);
}

static void on_open(void *data, int err, uint64_t size, int cancelled)
{
    download_t *dl = data;
    api_req_t *ar = dl->ar;
    if (cancelled)
        return;
    if (err == 0 && size != dl->size) {
        api_log(ar, LOG_ERROR, "a stored file has %llu bytes, its attachment says %llu", (unsigned long long)size,
                (unsigned long long)dl->size);
        err = ERR_INTERNAL;
    }
    if (err != 0) {
        /* A blob that is missing or unreadable while its metadata exists is the server's fault. */
        api_send_error(ar, ERR_INTERNAL, "The file's content could not be read. The failure was logged.");
        return;
    }
    start_download(dl);
    read_next(dl);
}

/* The request's If-Range lets its Range apply: absent, or exactly the content's (strong) ETag. */
static int if_range_holds(api_req_t *ar, const char *etag)
{
    size_t len;
    const char *v = header_of(ar, H2O_TOKEN_IF_RANGE, &len);
    if (v == NULL)
        return 1;
    while (len > 0 && (v[len - 1] == ' ' || v[len - 1] == '\t'))
        len--;
    while (len > 0 && (*v == ' ' || *v == '\t'))
        v++, len--;
    return len == strlen(etag) && memcmp(v, etag, len) == 0;
}

static void on_meta(api_req_t *ar, const PGresult *res, int err, void *arg)
{
    if (crud_check_result(ar, res, err) != 0)
        return;
    if (strcmp(PQgetvalue(res, 0, 0), "t") != 0) {
        api_send_error(ar, ERR_NOT_FOUND, NULL);
        return;
    }
    h2o_mem_pool_t *pool = &ar->req->pool;
    const char *sha = PQgetvalue(res, 0, 1);
    uint64_t size = strtoull(PQgetvalue(res, 0, 2), NULL, 10);
    char buf[FILE_HTTP_DISPOSITION_MAX];
    snprintf(buf, sizeof(buf), "\"%s\"", sha);
    const char *etag = h2o_strdup(pool, buf, SIZE_MAX).base;
    size_t len = 0;
    const char *inm = header_of(ar, H2O_TOKEN_IF_NONE_MATCH, &len);
    if (inm != NULL && crud_none_match_hits(inm, len, sha)) {
        api_add_header(ar, "etag", etag);
        api_add_header(ar, "cache-control", "private, no-cache");
        api_send_raw(ar, 304, NULL, "", 0);
        return;
    }

    download_t *dl = h2o_mem_alloc_shared(pool, sizeof(*dl), on_download_dispose);
    memset(dl, 0, sizeof(*dl));
    dl->super.proceed = on_proceed;
    dl->super.stop = on_stop;
    dl->retry.cb = on_retry;
    dl->ar = ar;
    dl->status = 200;
    dl->size = size;
    dl->end = size;
    dl->etag = etag;
    dl->media_type = h2o_strdup(pool, PQgetvalue(res, 0, 3), SIZE_MAX).base;
    file_http_disposition(PQgetvalue(res, 0, 4), buf, sizeof(buf));
    dl->disposition = h2o_strdup(pool, buf, SIZE_MAX).base;
    uint64_t first = 0, last = 0;
    len = 0;
    const char *rv = header_of(ar, H2O_TOKEN_RANGE, &len);
    switch (if_range_holds(ar, etag) ? file_http_parse_range(rv, len, size, &first, &last) : FH_RANGE_NONE) {
    case FH_RANGE_ONE:
        dl->status = 206;
        dl->pos = first;
        dl->end = last + 1;
        snprintf(buf, sizeof(buf), "bytes %llu-%llu/%llu", (unsigned long long)first, (unsigned long long)last,
                 (unsigned long long)size);
        dl->content_range = h2o_strdup(pool, buf, SIZE_MAX).base;
        break;
    case FH_RANGE_UNSATISFIABLE:
        snprintf(buf, sizeof(buf), "bytes */%llu", (unsigned long long)size);
        api_add_header(ar, "content-range", buf);
        snprintf(buf, sizeof(buf), "The file has %llu bytes; the range asks for none of them.",
                 (unsigned long long)size);
        api_send_error(ar, ERR_RANGE, buf);
        return;
    default:
        break;
    }
    if (h2o_memis(ar->req->method.base, ar->req->method.len, H2O_STRLIT("HEAD"))) {
        /* The headers a GET would get, without reading the file. */
        dl->finished = 1;
        start_download(dl);
        h2o_send(ar->req, NULL, 0, H2O_SEND_STATE_FINAL);
        return;
    }
    if ((dl->rd = storage_reader_open(ar->thread->storage, of(ar)->store, sha, on_open, dl)) == NULL)
        api_send_error(ar, ERR_UNAVAILABLE, "Too many files are being stored or read right now. Retry later.");
}

/* The files of records of a switched-off module are not found, but by administrators (api/modules.h). */
static void download_with(api_req_t *ar, const char *disabled, void *arg)
{
    char id[24];
    db_fmt_i64(id, api_param_i64(ar, "id"));
    CALLER(ar);
    const char *p[] = {uid_, ver_, id, disabled};
    int ret = crud_query(ar, of(ar)->sql.get, 4, p, on_meta, NULL);
    if (ret != 0)
        api_send_error(ar, ret, NULL);
}

int attachments_download(api_req_t *ar)
{
    api_modules_disabled_names(ar, download_with, NULL);
    return 0;
}

/* --- delete ---------------------------------------------------------------------- */

static void on_delete(api_req_t *ar, const PGresult *res, int err, void *arg)
{
    if (crud_check_result(ar, res, err) != 0)
        return;
    const char *outcome = PQgetvalue(res, 0, 0);
    if (strcmp(outcome, "deleted") == 0)
        api_send_raw(ar, 204, NULL, "", 0);
    else if (strcmp(outcome, "forbidden") == 0)
        api_send_error(ar, ERR_FORBIDDEN, "Your role may not change the record this file is attached to.");
    else
        api_send_error(ar, ERR_NOT_FOUND, NULL);
}

static void delete_with(api_req_t *ar, const char *disabled, void *arg)
{
    char id[24];
    db_fmt_i64(id, api_param_i64(ar, "id"));
    CALLER(ar);
    const char *p[] = {uid_, ver_, id, disabled};
    int ret = crud_query(ar, of(ar)->sql.del, 4, p, on_delete, NULL);
    if (ret != 0)
        api_send_error(ar, ret, NULL);
}

int attachments_delete(api_req_t *ar)
{
    api_modules_disabled_names(ar, delete_with, NULL);
    return 0;
}
