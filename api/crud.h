/*
 * api/crud.h - the conventions every resource shares, built once.
 *
 * Query strings (strict: unknown parameters are refused), ETags and
 * preconditions, the standard shapes of read and write statement results,
 * and list envelopes with opaque cursors. A resource module describes its
 * SQL in <resource>_db.c with the standard result columns below and lets
 * these helpers turn results into answers, so every resource answers the
 * same way for the same situation.
 *
 * Standard columns of a read-one statement: rscope, version, doc (JSON text).
 * Standard columns of a write statement: outcome, id, version, doc, rscope;
 * outcome is one of created, updated, deleted, not_found, forbidden,
 * forbidden_target, precondition, invalid_<field> (422 naming <field>).
 */
#ifndef CLIENTELE_API_CRUD_H
#define CLIENTELE_API_CRUD_H

#include "api.h"

#define CRUD_MAX_QUERY_PARAMS 32

/*
 * The keyset condition of a list page after a cursor, for statements: rows
 * of alias `a` (table `table`) strictly after (key, id) in direction `cmp`
 * ('>' or '<'). pkey is the parameter holding the cursor's sort key (cast to
 * `type`), pid the one holding its id. A cursor without a key (see
 * crud_list_cursor) reads the key of its own row, so no cursor's length
 * depends on the data. Identifiers only from the code; values always
 * parameters.
 */
#define CRUD_KEYSET_AFTER(a, table, key, type, cmp, pkey, pid)                                                         \
    " AND (" pid "::bigint IS NULL OR (" a "." key ", " a ".id) " cmp " (coalesce(" pkey "::" type ","                 \
    " (SELECT kc." key " FROM " table " kc WHERE kc.id = " pid "::bigint)), " pid "::bigint))"

/* Called with a statement's result while the request is alive (see crud_query). */
typedef void (*crud_done_fn)(api_req_t *ar, const PGresult *res, int err, void *arg);

typedef struct st_crud_query_t {
    size_t n;
    struct {
        const char *name;
        const char *value;
    } p[CRUD_MAX_QUERY_PARAMS];
} crud_query_t;

/*
 * Parses the request's query string (percent-decoding, '+' as space) into
 * q, refusing repeated or unknown parameters (allowed: NULL-terminated).
 * Strings live in the request pool. On failure answers 400 and returns
 * nonzero.
 */
int crud_parse_query(api_req_t *ar, const char *const *allowed, crud_query_t *q);
const char *crud_query_get(const crud_query_t *q, const char *name);
/* Answers 400 naming one bad query parameter; returns -1. */
int crud_bad_query(api_req_t *ar, const char *name, const char *code, const char *message);

/* Standard list parameters: limit (1..200, default 50), cursor, sort, fields, count. */
typedef struct st_crud_list_t {
    int limit;
    const char *cursor_key; /* from the cursor; NULL on the first page or when the cursor carries no key */
    const char *cursor_id;  /* from the cursor; NULL on the first page */
    int sort;               /* index into the resource's sort table */
    const char *fields;     /* "{id,name}" as a PostgreSQL array literal, or NULL */
    int count;
} crud_list_t;

/*
 * Reads limit, cursor, sort (one of `sorts`, each optionally with a leading
 * '-'; sorts[i] ascending is 2*i, descending 2*i+1; default_sort when
 * absent) and fields (checked against `fields`) from q. A cursor carries
 * the sort it was made for and is refused with another. Answers 400 and
 * returns nonzero on bad values.
 */
int crud_parse_list(api_req_t *ar, const crud_query_t *q, const char *const *sorts, int default_sort,
                    const char *const *fields, crud_list_t *out);

/* Parses an int64 query value (> 0); answers 400 naming the parameter on failure. */
int crud_param_id(api_req_t *ar, const crud_query_t *q, const char *name, char buf[24], const char **out);
/* Checks an RFC 3339 query value; answers 400 naming the parameter on failure. */
int crud_param_time(api_req_t *ar, const crud_query_t *q, const char *name, const char **out);
/* Checks a value against an enumeration; answers 400 on failure. */
int crud_param_enum(api_req_t *ar, const crud_query_t *q, const char *name, const char *const *values,
                    const char **out);

/*
 * If-Match: sets *version to the entity version it names, -1 when absent,
 * 0 for "*". Answers 412 and returns nonzero when it is malformed (it can
 * never match then).
 */
int crud_if_match(api_req_t *ar, int64_t *version);
/*
 * The parsers behind crud_if_match and If-None-Match, for tests: an
 * If-Match value gives the version its strong tags name (0 for "*"), -1
 * when it can never match; crud_none_match_hits says whether an
 * If-None-Match value names the opaque tag (weak comparison).
 */
int crud_parse_if_match(const char *v, size_t len, int64_t *version);
int crud_none_match_hits(const char *v, size_t len, const char *tag);
/* The version as a SQL parameter ("12"), or NULL for no precondition. */
const char *crud_version_param(int64_t version, char buf[24]);

/* What the standard write answers need to know about a resource. */
typedef struct st_crud_resource_t {
    const char *collection; /* "/v1/customers", for Location */
    const char *duplicate;  /* detail for a unique violation: "Another customer already has this external_id." */
} crud_resource_t;

/* The standard done functions: arg is unused for reads, a const crud_resource_t * for writes. */
void crud_on_read(api_req_t *ar, const PGresult *res, int err, void *arg);
void crud_on_write(api_req_t *ar, const PGresult *res, int err, void *arg);

/*
 * Upserts by external id race with concurrent inserts of the same id; the
 * loser gets a unique violation and is sent once more (now it updates).
 * `send` issues the statement with `done` (see engine.c's on_upsert).
 */
typedef struct st_crud_upsert_t {
    const crud_resource_t *resource;
    int (*send)(api_req_t *ar, struct st_crud_upsert_t *u, crud_done_fn done);
    const char *external_id, *reference, *input, *if_match; /* the statement's arguments */
    int retried;
} crud_upsert_t;

/* Answers a read-one result: 401, 403, 404, 304 (If-None-Match) or 200 with ETag. */
void crud_send_read(api_req_t *ar, const PGresult *res);
/* Answers a write result; `collection` ("/v1/customers") builds Location for created records. */
/*
 * A custom field refused a value (write outcome "cf_attrs.<key>:<code>",
 * schema/0023): adds its error, named prefix + "attrs.<key>", to errors.
 * 0 when outcome is not one.
 */
int crud_custom_field_error(json_t *errors, const char *prefix, const char *outcome);
void crud_send_write(api_req_t *ar, const PGresult *res, const char *collection);

/*
 * A growable writer whose blocks live in a request pool: for answers whose
 * size depends on the data (lists, feeds). Never fails (the pool aborts).
 */
typedef struct st_crud_buf_t {
    h2o_mem_pool_t *pool;
    char *base;
    size_t len, cap;
} crud_buf_t;
void crud_buf_init(crud_buf_t *b, h2o_mem_pool_t *pool, size_t hint);
void crud_buf_append(crud_buf_t *b, const char *s, size_t len);
void crud_buf_puts(crud_buf_t *b, const char *s);

/*
 * The signed cursor for the page after the row (id, key) of a list sorted
 * by `sort`: the key is carried when short, else left for the statement to
 * read by id (see crud.c). malloc'ed; NULL only when encoding failed (the
 * caller answers 500).
 */
char *crud_list_cursor(api_req_t *ar, int sort, const char *id, const char *key);

/*
 * Answers a list result whose rows are (rscope, id, sortkey, doc, total):
 * the first `limit` docs as data, next_cursor from row limit - 1 when a
 * further row exists, total when asked. 401 with no row; 403 when the
 * caller's read scope is none.
 */
void crud_send_list(api_req_t *ar, const PGresult *res, const crud_list_t *list);

/*
 * Answers {"data":[docs of rows 0..n),"next_cursor":next|null[,"total":total]}
 * with each doc taken from column doc_col as is; next (malloc'ed, may be
 * NULL) is freed; hint is the expected size.
 */
void crud_send_page(api_req_t *ar, const PGresult *res, int n, int doc_col, size_t hint, char *next, const char *total);

/* "ab%c" -> "%ab\%c%": a search term matched literally anywhere by LIKE/ILIKE (request pool). */
const char *crud_like_pattern(api_req_t *ar, const char *q);

/* Completes a scoped statement's callback: 0 when the caller may go on, else answered. */
int crud_check_result(api_req_t *ar, const PGresult *res, int err);

/*
 * The standard asynchronous step: sends the result to `done` only while the
 * request is alive, holding it meanwhile. Use as db_query(..., crud_cb, op).
 */
int crud_query(api_req_t *ar, const char *sql, int nparams, const char *const *params, crud_done_fn done, void *arg);
/* The same with db_query_flags() flags (DB_ONESHOT for list statements with optional filters). */
int crud_query_flags(api_req_t *ar, const char *sql, int nparams, const char *const *params, unsigned flags,
                     crud_done_fn done, void *arg);

/*
 * The same for a statement composed for this request (malloc'ed text, taken
 * over and freed after the callback): sent unprepared (DB_ONESHOT). The
 * text is freed on failure too.
 */
int crud_query_owned(api_req_t *ar, char *sql, int nparams, const char *const *params, crud_done_fn done, void *arg);

#endif

/* --- bodies ---------------------------------------------------------------------- */

#include "validate.h"

/* Compact JSON text of v in the request pool. */
char *crud_dump(api_req_t *ar, const json_t *v);

/*
 * Checks the {external_id} of an upsert path and the body's external_id
 * (absent, or equal). Answers 422 and returns nonzero when either is bad.
 */
int crud_check_external_id(api_req_t *ar, const char *ext, json_t *body, const char *what);
/* Answers a bulk statement's row (cscope, created, updated, refused items). */
void crud_send_bulk(api_req_t *ar, const PGresult *res, int err, const char *what);
