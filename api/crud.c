/*
 * api/crud.c - the conventions every resource shares (see crud.h).
 *
 * Everything a client sees about lists, preconditions and write outcomes
 * is decided here once. Statement results are read by column position in
 * the standard shapes documented in crud.h; documents arrive from
 * PostgreSQL as JSON text and are passed through without re-parsing.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/jx.h"
#include "common/log.h"
#include "crud.h"
#include "cursor.h"

/* --- query strings ------------------------------------------------------- */

static int hexval(int c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

/* Decodes a query component into the pool; NULL when it is malformed or holds NUL or invalid UTF-8. */
static char *decode_component(h2o_mem_pool_t *pool, const char *s, size_t len)
{
    char *out = h2o_mem_alloc_pool(pool, len + 1), *o = out;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '+') {
            *o++ = ' ';
        } else if (s[i] == '%') {
            int hi, lo;
            if (i + 2 >= len + 0 && i + 2 > len - 1)
                return NULL;
            if ((hi = hexval(s[i + 1])) < 0 || (lo = hexval(s[i + 2])) < 0)
                return NULL;
            char c = (char)(hi * 16 + lo);
            if (c == '\0')
                return NULL;
            *o++ = c;
            i += 2;
        } else {
            *o++ = s[i];
        }
    }
    *o = '\0';
    json_t *check = json_stringn(out, (size_t)(o - out)); /* jansson validates UTF-8 */
    if (check == NULL)
        return NULL;
    json_decref(check);
    return out;
}

int crud_bad_query(api_req_t *ar, const char *name, const char *code, const char *message)
{
    json_t *errors = json_array();
    api_error_add(errors, name, code, message);
    api_send_invalid(ar, 400, "The query string has invalid parameters.", errors);
    return -1;
}

int crud_parse_query(api_req_t *ar, const char *const *allowed, crud_query_t *q)
{
    h2o_req_t *req = ar->req;
    q->n = 0;
    if (req->query_at == SIZE_MAX)
        return 0;
    const char *p = req->path.base + req->query_at + 1, *end = req->path.base + req->path.len;
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *stop = amp != NULL ? amp : end;
        if (stop > p) {
            const char *eq = memchr(p, '=', (size_t)(stop - p));
            const char *nend = eq != NULL ? eq : stop;
            char *name = decode_component(&req->pool, p, (size_t)(nend - p));
            char *value = eq != NULL ? decode_component(&req->pool, eq + 1, (size_t)(stop - eq - 1)) : "";
            if (name == NULL || value == NULL)
                return crud_bad_query(ar, name != NULL ? name : "(query)", "invalid_format",
                                      "is not valid percent-encoded UTF-8");
            int known = 0;
            for (const char *const *a = allowed; *a != NULL; a++)
                known |= strcmp(*a, name) == 0;
            if (!known)
                return crud_bad_query(ar, name, "unknown_parameter", "is not a parameter of this endpoint");
            if (crud_query_get(q, name) != NULL)
                return crud_bad_query(ar, name, "repeated", "must appear at most once");
            if (q->n == CRUD_MAX_QUERY_PARAMS)
                return crud_bad_query(ar, name, "too_many", "too many parameters");
            q->p[q->n].name = name;
            q->p[q->n].value = value;
            q->n++;
        }
        p = stop + 1;
    }
    return 0;
}

const char *crud_query_get(const crud_query_t *q, const char *name)
{
    for (size_t i = 0; i < q->n; i++)
        if (strcmp(q->p[i].name, name) == 0)
            return q->p[i].value;
    return NULL;
}

int crud_param_id(api_req_t *ar, const crud_query_t *q, const char *name, char buf[24], const char **out)
{
    const char *v = crud_query_get(q, name);
    *out = NULL;
    if (v == NULL)
        return 0;
    size_t len = strlen(v);
    int ok = len > 0 && len <= 18 && v[0] != '0';
    for (size_t i = 0; ok && i < len; i++)
        ok = isdigit((unsigned char)v[i]);
    if (!ok)
        return crud_bad_query(ar, name, "invalid_format", "must be a positive integer id");
    snprintf(buf, 24, "%s", v);
    *out = buf;
    return 0;
}

int crud_param_time(api_req_t *ar, const crud_query_t *q, const char *name, const char **out)
{
    const char *v = crud_query_get(q, name);
    *out = NULL;
    if (v == NULL)
        return 0;
    if (!jx_is_rfc3339(v))
        return crud_bad_query(ar, name, "invalid_format", "must be an RFC 3339 timestamp such as 2026-01-31T12:00:00Z");
    *out = v;
    return 0;
}

int crud_param_enum(api_req_t *ar, const crud_query_t *q, const char *name, const char *const *values, const char **out)
{
    const char *v = crud_query_get(q, name);
    *out = NULL;
    if (v == NULL)
        return 0;
    for (const char *const *e = values; *e != NULL; e++) {
        if (strcmp(*e, v) == 0) {
            *out = v;
            return 0;
        }
    }
    char msg[256];
    size_t n = snprintf(msg, sizeof(msg), "must be one of");
    for (const char *const *e = values; *e != NULL && n < sizeof(msg); e++)
        n += snprintf(msg + n, sizeof(msg) - n, "%s %s", e == values ? "" : ",", *e);
    return crud_bad_query(ar, name, "invalid_value", msg);
}

int crud_parse_list(api_req_t *ar, const crud_query_t *q, const char *const *sorts, int default_sort,
                    const char *const *fields, crud_list_t *out)
{
    memset(out, 0, sizeof(*out));
    out->limit = 50;
    out->sort = default_sort;
    const char *v;
    if ((v = crud_query_get(q, "limit")) != NULL) {
        char *end;
        long l = strtol(v, &end, 10);
        if (*v == '\0' || *end != '\0' || l < 1 || l > 200)
            return crud_bad_query(ar, "limit", "out_of_range", "must be an integer from 1 to 200");
        out->limit = (int)l;
    }
    if ((v = crud_query_get(q, "sort")) != NULL) {
        int desc = v[0] == '-', found = -1;
        for (int i = 0; sorts[i] != NULL; i++)
            if (strcmp(v + desc, sorts[i]) == 0)
                found = 2 * i + desc;
        if (found < 0) {
            char msg[200];
            size_t n = snprintf(msg, sizeof(msg), "must be one of");
            for (int i = 0; sorts[i] != NULL && n < sizeof(msg); i++)
                n += snprintf(msg + n, sizeof(msg) - n, "%s %s", i == 0 ? "" : ",", sorts[i]);
            snprintf(msg + (n < sizeof(msg) ? n : sizeof(msg) - 1),
                     sizeof(msg) - (n < sizeof(msg) ? n : sizeof(msg) - 1),
                     ", optionally with a leading - for descending order");
            return crud_bad_query(ar, "sort", "invalid_value", msg);
        }
        out->sort = found;
    }
    if ((v = crud_query_get(q, "count")) != NULL) {
        if (strcmp(v, "true") != 0 && strcmp(v, "false") != 0)
            return crud_bad_query(ar, "count", "invalid_value", "must be true or false");
        out->count = strcmp(v, "true") == 0;
    }
    if ((v = crud_query_get(q, "fields")) != NULL) {
        /* "id,name" -> "{id,name}" after checking every name. */
        size_t len = strlen(v);
        char *lit = h2o_mem_alloc_pool(&ar->req->pool, len + 3);
        lit[0] = '{';
        memcpy(lit + 1, v, len);
        lit[len + 1] = '}';
        lit[len + 2] = '\0';
        const char *p = v;
        while (1) {
            const char *comma = strchr(p, ',');
            size_t n = comma != NULL ? (size_t)(comma - p) : strlen(p);
            int ok = 0;
            for (const char *const *f = fields; *f != NULL; f++)
                ok |= strlen(*f) == n && strncmp(*f, p, n) == 0;
            if (!ok)
                return crud_bad_query(ar, "fields", "invalid_value", "must be a comma-separated list of field names");
            if (comma == NULL)
                break;
            p = comma + 1;
        }
        out->fields = lit;
    }
    if ((v = crud_query_get(q, "cursor")) != NULL) {
        json_t *c = cursor_decode(&ar->thread->server->cursor_key, v, strlen(v));
        json_t *k = c != NULL ? json_object_get(c, "k") : NULL, *id = c != NULL ? json_object_get(c, "i") : NULL;
        json_t *s = c != NULL ? json_object_get(c, "s") : NULL;
        if (c == NULL || (k != NULL && !json_is_string(k)) || !json_is_integer(id) || !json_is_integer(s) ||
            json_integer_value(id) <= 0) {
            if (c != NULL)
                json_decref(c);
            return crud_bad_query(ar, "cursor", "invalid_value", "is not a cursor this endpoint returned");
        }
        if (json_integer_value(s) != out->sort) {
            json_decref(c);
            return crud_bad_query(ar, "cursor", "invalid_value", "was made for another sort order");
        }
        /* Without a key the statement reads the sort key of the cursor's row itself. */
        out->cursor_key = k != NULL ? h2o_strdup(&ar->req->pool, json_string_value(k), SIZE_MAX).base : NULL;
        char *idbuf = h2o_mem_alloc_pool(&ar->req->pool, 24);
        snprintf(idbuf, 24, "%lld", (long long)json_integer_value(id));
        out->cursor_id = idbuf;
        json_decref(c);
    }
    return 0;
}

/* --- preconditions ------------------------------------------------------- */

/*
 * Reads the next entity-tag of a comma-separated list (RFC 9110 8.8.3) at
 * *pp: *weak is set for W/"...", [*tag, *tag + *tlen) is the opaque tag
 * between the quotes. Returns 1 with a tag, 0 at the end of the list, -1
 * when the list is malformed.
 */
static int next_etag(const char **pp, const char *end, int *weak, const char **tag, size_t *tlen)
{
    const char *p = *pp;
    while (p < end && (*p == ' ' || *p == '\t' || *p == ','))
        p++;
    if (p == end)
        return 0;
    *weak = 0;
    if (end - p >= 2 && p[0] == 'W' && p[1] == '/')
        *weak = 1, p += 2;
    if (p == end || *p != '"')
        return -1;
    const char *q = memchr(p + 1, '"', (size_t)(end - p - 1));
    if (q == NULL)
        return -1;
    *tag = p + 1;
    *tlen = (size_t)(q - p - 1);
    p = q + 1;
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    if (p < end && *p != ',')
        return -1;
    *pp = p;
    return 1;
}

/* The record version an ETag of ours names: "12", or "12-r40-c41" for documents that embed results. */
static int64_t etag_version(const char *tag, size_t len)
{
    int64_t n = 0;
    size_t i = 0;
    for (; i < len && isdigit((unsigned char)tag[i]); i++) {
        if (n >= 100000000000LL)
            return -1;
        n = n * 10 + (tag[i] - '0');
    }
    if (i == 0 || n <= 0 || (i < len && tag[i] != '-'))
        return -1;
    for (; i < len; i++)
        if (!(isalnum((unsigned char)tag[i]) || tag[i] == '-'))
            return -1;
    return n;
}

int crud_parse_if_match(const char *v, size_t len, int64_t *version)
{
    const char *p = v, *end = v + len, *tag;
    size_t tlen;
    int weak, r;
    *version = -1;
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    if (end - p >= 1 && *p == '*') {
        for (p++; p < end && (*p == ' ' || *p == '\t'); p++)
            ;
        if (p != end)
            return -1;
        *version = 0;
        return 0;
    }
    /* Strong comparison: weak tags never match. Every strong tag must name one version (we check one). */
    int64_t found = -1;
    while ((r = next_etag(&p, end, &weak, &tag, &tlen)) == 1) {
        if (weak)
            continue;
        int64_t n = etag_version(tag, tlen);
        if (n < 0 || (found > 0 && n != found))
            return -1;
        found = n;
    }
    if (r < 0 || found < 0)
        return -1;
    *version = found;
    return 0;
}

int crud_if_match(api_req_t *ar, int64_t *version)
{
    *version = -1;
    ssize_t i = h2o_find_header(&ar->req->headers, H2O_TOKEN_IF_MATCH, -1);
    if (i < 0)
        return 0;
    h2o_iovec_t v = ar->req->headers.entries[i].value;
    if (crud_parse_if_match(v.base, v.len, version) != 0) {
        api_send_error(ar, ERR_PRECONDITION,
                       "If-Match must be a strong ETag this API returned, such as \"3\", or *; weak tags never match.");
        return -1;
    }
    return 0;
}

const char *crud_version_param(int64_t version, char buf[24])
{
    /* -1: no precondition; 0: "*", the record must exist; n: it must be at version n. */
    if (version < 0)
        return NULL;
    snprintf(buf, 24, "%lld", (long long)version);
    return buf;
}

int crud_none_match_hits(const char *v, size_t len, const char *tag)
{
    const char *p = v, *end = v + len, *t;
    size_t tlen, want = strlen(tag);
    int weak;
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    if (end - p == 1 && *p == '*')
        return 1;
    /* Weak comparison (RFC 9110 13.1.2): W/ is ignored on both sides. */
    while (next_etag(&p, end, &weak, &t, &tlen) == 1)
        if (tlen == want && memcmp(t, tag, want) == 0)
            return 1;
    return 0;
}

static int if_none_match_hits(api_req_t *ar, const char *tag)
{
    ssize_t i = h2o_find_header(&ar->req->headers, H2O_TOKEN_IF_NONE_MATCH, -1);
    if (i < 0)
        return 0;
    return crud_none_match_hits(ar->req->headers.entries[i].value.base, ar->req->headers.entries[i].value.len, tag);
}

/* --- results ------------------------------------------------------------- */

int crud_check_result(api_req_t *ar, const PGresult *res, int err)
{
    if (err != 0) {
        api_send_error(ar, err, NULL);
        return -1;
    }
    if (PQntuples(res) == 0) {
        /* The caller CTE found no live user for this token: deactivated or token revoked. */
        api_send_unauthenticated(ar, 1, "The access token is no longer valid.");
        return -1;
    }
    return 0;
}

static void set_etag(api_req_t *ar, const char *version)
{
    char etag[96];
    snprintf(etag, sizeof(etag), "\"%s\"", version);
    api_add_header(ar, "etag", etag);
}

void crud_send_read(api_req_t *ar, const PGresult *res)
{
    if (strcmp(PQgetvalue(res, 0, 0), "none") == 0) {
        api_send_error(ar, ERR_FORBIDDEN, "Your role may not read these records.");
        return;
    }
    if (PQgetisnull(res, 0, 1)) {
        api_send_error(ar, ERR_NOT_FOUND, NULL);
        return;
    }
    char etag[96];
    snprintf(etag, sizeof(etag), "\"%s\"", PQgetvalue(res, 0, 1));
    if (if_none_match_hits(ar, PQgetvalue(res, 0, 1))) {
        api_add_header(ar, "etag", etag);
        api_send_raw(ar, 304, NULL, "", 0);
        return;
    }
    api_add_header(ar, "etag", etag);
    api_send_raw(ar, 200, "application/json", PQgetvalue(res, 0, 2), (size_t)PQgetlength(res, 0, 2));
}

int crud_custom_field_error(json_t *errors, const char *prefix, const char *outcome)
{
    static const char *const msgs[][2] = {
        {"required", "is required by its custom field definition"},
        {"invalid_type", "has the wrong JSON type for its custom field"},
        {"invalid_format", "is not written as its custom field's type requires"},
        {"invalid_value", "is not one of its custom field's options"},
        {"duplicate_value", "names an option twice"},
        {"out_of_range", "is outside its custom field's minimum and maximum"},
        {"too_long", "is longer than its custom field allows"},
    };
    const char *colon = strncmp(outcome, "cf_", 3) == 0 ? strrchr(outcome, ':') : NULL;
    if (colon == NULL)
        return 0;
    char field[128];
    snprintf(field, sizeof(field), "%s%.*s", prefix, (int)(colon - outcome - 3), outcome + 3);
    const char *msg = "breaks its custom field definition";
    for (size_t i = 0; i < sizeof(msgs) / sizeof(msgs[0]); i++)
        if (strcmp(colon + 1, msgs[i][0]) == 0)
            msg = msgs[i][1];
    api_error_add(errors, field, colon + 1, msg);
    return 1;
}

void crud_send_write(api_req_t *ar, const PGresult *res, const char *collection)
{
    const char *outcome = PQgetvalue(res, 0, 0);
    if (strcmp(outcome, "created") == 0 || strcmp(outcome, "updated") == 0) {
        set_etag(ar, PQgetvalue(res, 0, 2));
        int created = outcome[0] == 'c';
        if (created) {
            char loc[128];
            snprintf(loc, sizeof(loc), "%s/%s", collection, PQgetvalue(res, 0, 1));
            api_add_header(ar, "location", loc);
        }
        api_send_raw(ar, created ? 201 : 200, "application/json", PQgetvalue(res, 0, 3),
                     (size_t)PQgetlength(res, 0, 3));
    } else if (strcmp(outcome, "deleted") == 0) {
        api_send_json(ar, 204, NULL);
    } else if (strcmp(outcome, "not_found") == 0) {
        if (PQnfields(res) > 4 && strcmp(PQgetvalue(res, 0, 4), "none") == 0)
            api_send_error(ar, ERR_FORBIDDEN, "Your role may not read these records.");
        else
            api_send_error(ar, ERR_NOT_FOUND, NULL);
    } else if (strcmp(outcome, "forbidden") == 0) {
        api_send_error(ar, ERR_FORBIDDEN, "Your role may not make this change to this record.");
    } else if (strcmp(outcome, "forbidden_target") == 0) {
        api_send_error(ar, ERR_FORBIDDEN, "Your role may not place a record with that owner or team.");
    } else if (strcmp(outcome, "precondition") == 0) {
        api_send_error(ar, ERR_PRECONDITION, "The record has changed since the version named in If-Match.");
    } else if (strcmp(outcome, "invalid_total") == 0) {
        json_t *errors = json_array();
        api_error_add(errors, "total", "invalid_value", "must equal the sum of the lines");
        api_send_invalid(ar, 422, "The order's lines do not add up to its total.", errors);
    } else if (strncmp(outcome, "invalid_", 8) == 0) {
        json_t *errors = json_array();
        api_error_add(errors, outcome + 8, "invalid_reference", "does not name an existing, usable record");
        api_send_invalid(ar, 422, "The request refers to a record that does not exist.", errors);
    } else if (strncmp(outcome, "cf_", 3) == 0) {
        json_t *errors = json_array();
        crud_custom_field_error(errors, "", outcome);
        api_send_invalid(ar, 422, "A custom field's value does not fit its definition.", errors);
    } else if (strncmp(outcome, "locked_", 7) == 0) {
        /* A field rule of the caller's role (hidden or read-only): nothing was written. */
        json_t *errors = json_array();
        api_error_add(errors, outcome + 7, "read_only", "your role may not change this field");
        api_send_invalid(ar, 403, "Your role may not change a field of this change.", errors);
    } else if (strncmp(outcome, "too_large_", 10) == 0) {
        json_t *errors = json_array();
        api_error_add(errors, outcome + 10, "too_large", "is too large after applying the change");
        api_send_invalid(ar, 422, "The change would make a field too large.", errors);
    } else {
        api_send_error(ar, ERR_INTERNAL, NULL);
    }
}

/* --- growable writer ------------------------------------------------------ */

void crud_buf_init(crud_buf_t *b, h2o_mem_pool_t *pool, size_t hint)
{
    b->pool = pool;
    b->cap = hint > 64 ? hint : 64;
    b->base = h2o_mem_alloc_pool(pool, b->cap);
    b->len = 0;
}

void crud_buf_append(crud_buf_t *b, const char *s, size_t len)
{
    if (b->len + len > b->cap) {
        size_t cap = b->cap * 2;
        while (cap < b->len + len)
            cap *= 2;
        /* The old block stays in the pool until the request ends: at most as much again. */
        char *base = h2o_mem_alloc_pool(b->pool, cap);
        memcpy(base, b->base, b->len);
        b->base = base;
        b->cap = cap;
    }
    memcpy(b->base + b->len, s, len);
    b->len += len;
}

void crud_buf_puts(crud_buf_t *b, const char *s)
{
    crud_buf_append(b, s, strlen(s));
}

/* --- lists ----------------------------------------------------------------- */

/*
 * Longest sort key a cursor carries. Longer keys (a name of many four-byte
 * characters, later long custom text fields) are left out: the statement
 * then reads the key of the cursor's row by its id. Carrying the key keeps
 * a walk exact when the last row of a page changes its sort key (sorting by
 * updated_at while others write); reading it keeps cursors short whatever
 * the data holds.
 */
#define CURSOR_KEY_INLINE_MAX 256

char *crud_list_cursor(api_req_t *ar, int sort, const char *id, const char *key)
{
    const cursor_key_t *ck = &ar->thread->server->cursor_key;
    json_int_t iid = (json_int_t)strtoll(id, NULL, 10);
    json_t *c = json_pack("{s:I, s:i}", "i", iid, "s", sort);
    char *next = NULL;
    if (c == NULL)
        return NULL;
    if (key != NULL && strlen(key) <= CURSOR_KEY_INLINE_MAX && json_object_set_new(c, "k", json_string(key)) == 0)
        next = cursor_encode(ck, c);
    if (next == NULL) {
        json_object_del(c, "k");
        next = cursor_encode(ck, c);
    }
    json_decref(c);
    return next;
}

void crud_send_list(api_req_t *ar, const PGresult *res, const crud_list_t *list)
{
    if (strcmp(PQgetvalue(res, 0, 0), "none") == 0) {
        api_send_error(ar, ERR_FORBIDDEN, "Your role may not read these records.");
        return;
    }
    int rows = PQntuples(res), n = 0;
    size_t hint = 96;
    for (int i = 0; i < rows && i < list->limit; i++)
        if (!PQgetisnull(res, i, 1))
            hint += (size_t)PQgetlength(res, i, 3) + 1, n++;
    char *next = NULL;
    if (rows > list->limit && !PQgetisnull(res, list->limit, 1)) {
        const char *key = PQgetisnull(res, list->limit - 1, 2) ? "" : PQgetvalue(res, list->limit - 1, 2);
        if ((next = crud_list_cursor(ar, list->sort, PQgetvalue(res, list->limit - 1, 1), key)) == NULL) {
            api_log(ar, LOG_ERROR, "the next page's cursor could not be encoded");
            api_send_error(ar, ERR_INTERNAL, NULL);
            return;
        }
    }
    const char *total = !list->count ? NULL : PQgetisnull(res, 0, 4) ? "0" : PQgetvalue(res, 0, 4);
    crud_send_page(ar, res, n, 3, hint, next, total);
}

void crud_send_page(api_req_t *ar, const PGresult *res, int n, int doc_col, size_t hint, char *next, const char *total)
{
    crud_buf_t b;
    crud_buf_init(&b, &ar->req->pool, hint + (next != NULL ? strlen(next) : 0));
    crud_buf_puts(&b, "{\"data\":[");
    for (int i = 0; i < n; i++) {
        if (i > 0)
            crud_buf_append(&b, ",", 1);
        crud_buf_append(&b, PQgetvalue(res, i, doc_col), (size_t)PQgetlength(res, i, doc_col));
    }
    crud_buf_puts(&b, "],\"next_cursor\":");
    if (next != NULL) {
        crud_buf_puts(&b, "\"");
        crud_buf_puts(&b, next); /* base64url and '.': nothing to escape */
        crud_buf_puts(&b, "\"");
        free(next);
    } else {
        crud_buf_puts(&b, "null");
    }
    if (total != NULL) {
        crud_buf_puts(&b, ",\"total\":");
        crud_buf_puts(&b, total);
    }
    crud_buf_append(&b, "}", 1);
    api_send_raw(ar, 200, "application/json", b.base, b.len);
}

const char *crud_like_pattern(api_req_t *ar, const char *q)
{
    size_t len = strlen(q);
    char *out = h2o_mem_alloc_pool(&ar->req->pool, 2 * len + 3), *o = out;
    *o++ = '%';
    for (size_t i = 0; i < len; i++) {
        if (q[i] == '%' || q[i] == '_' || q[i] == '\\')
            *o++ = '\\';
        *o++ = q[i];
    }
    *o++ = '%';
    *o = '\0';
    return out;
}

void crud_on_read(api_req_t *ar, const PGresult *res, int err, void *arg)
{
    if (crud_check_result(ar, res, err) == 0)
        crud_send_read(ar, res);
}

void crud_on_write(api_req_t *ar, const PGresult *res, int err, void *arg)
{
    const crud_resource_t *r = arg;
    /*
     * An external id held by a record the caller may not read answers
     * exactly like a unique violation: whether such a record exists is not
     * the caller's to learn from a 404/201 difference.
     */
    if (err == 0 && res != NULL && PQntuples(res) > 0 && strcmp(PQgetvalue(res, 0, 0), "duplicate") == 0) {
        api_send_error(ar, ERR_CONFLICT, r->duplicate);
        return;
    }
    if (err == ERR_CONFLICT) {
        const char *st = res != NULL ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
        api_send_error(ar, ERR_CONFLICT,
                       st != NULL && strcmp(st, "23505") == 0
                           ? r->duplicate
                           : "The change conflicts with another change made at the same time. Retry.");
        return;
    }
    if (crud_check_result(ar, res, err) == 0)
        crud_send_write(ar, res, r->collection);
}

/* --- the standard asynchronous step ---------------------------------------- */

typedef struct st_crud_step_t {
    api_req_t *ar;
    crud_done_fn done;
    void *arg;
    char *sql; /* owned statement text (crud_query_owned), or NULL */
} crud_step_t;

static void on_step(void *data, const PGresult *res, int err)
{
    crud_step_t *s = data;
    if (s->ar->req != NULL)
        s->done(s->ar, res, err, s->arg);
    api_req_release(s->ar);
    free(s->sql);
    free(s);
}

int crud_query(api_req_t *ar, const char *sql, int nparams, const char *const *params, crud_done_fn done, void *arg)
{
    return crud_query_flags(ar, sql, nparams, params, 0, done, arg);
}

int crud_query_flags(api_req_t *ar, const char *sql, int nparams, const char *const *params, unsigned flags,
                     crud_done_fn done, void *arg)
{
    crud_step_t *s = malloc(sizeof(*s));
    if (s == NULL)
        abort();
    *s = (crud_step_t){ar, done, arg, NULL};
    int ret = db_query_flags(ar->thread->db, sql, nparams, params, flags, on_step, s);
    if (ret != 0) {
        free(s);
        return ret;
    }
    api_req_hold(ar);
    return 0;
}

int crud_query_owned(api_req_t *ar, char *sql, int nparams, const char *const *params, crud_done_fn done, void *arg)
{
    crud_step_t *s = malloc(sizeof(*s));
    if (s == NULL)
        abort();
    *s = (crud_step_t){ar, done, arg, sql};
    /* The pool is done with the text once the callback runs: it is freed there (on_step). */
    int ret = db_query_flags(ar->thread->db, sql, nparams, params, DB_ONESHOT, on_step, s);
    if (ret != 0) {
        free(sql);
        free(s);
        return ret;
    }
    api_req_hold(ar);
    return 0;
}

/* --- bodies ---------------------------------------------------------------------- */

char *crud_dump(api_req_t *ar, const json_t *v)
{
    size_t len = json_dumpb(v, NULL, 0, JSON_COMPACT);
    char *buf = h2o_mem_alloc_pool(&ar->req->pool, len + 1);
    json_dumpb(v, buf, len, JSON_COMPACT);
    buf[len] = '\0';
    return buf;
}

int crud_check_external_id(api_req_t *ar, const char *ext, json_t *body, const char *what)
{
    static const validate_field_t ext_field[] = {
        {.name = "external_id", .type = VT_STRING, .flags = VF_REQUIRED, .min_len = 1, .max_len = 200},
    };
    json_t *errors = json_array();
    json_t *probe = json_pack("{s:s}", "external_id", ext);
    size_t len = strlen(ext);
    if (probe == NULL) {
        api_error_add(errors, "external_id", "invalid_format", "must be valid UTF-8");
    } else {
        validate_object(probe, ext_field, 1, VALIDATE_CREATE, "", errors);
        json_decref(probe);
        if (len > 0 && (ext[0] == ' ' || ext[len - 1] == ' '))
            api_error_add(errors, "external_id", "invalid_format", "must not start or end with a space");
    }
    json_t *given = json_object_get(body, "external_id");
    if (given != NULL && !(json_is_string(given) && strcmp(json_string_value(given), ext) == 0))
        api_error_add(errors, "external_id", "invalid_value", "must equal the external id in the path, or be left out");
    if (json_array_size(errors) > 0) {
        char detail[96];
        snprintf(detail, sizeof(detail), "The %s has invalid fields.", what);
        api_send_invalid(ar, 422, detail, errors);
        return -1;
    }
    json_decref(errors);
    return 0;
}

static size_t arg_items(api_req_t *ar)
{
    return json_is_array(ar->body) ? json_array_size(ar->body) : 0;
}

void crud_send_bulk(api_req_t *ar, const PGresult *res, int err, const char *what)
{
    char detail[128];
    if (err == ERR_CONFLICT) {
        snprintf(detail, sizeof(detail), "Another request changed these %s at the same time. Retry.", what);
        api_send_error(ar, ERR_CONFLICT, detail);
        return;
    }
    if (crud_check_result(ar, res, err) != 0)
        return;
    if (!PQgetisnull(res, 0, 3)) {
        json_t *bad = json_loads(PQgetvalue(res, 0, 3), 0, NULL), *errors = json_array(), *item;
        size_t i;
        if (strcmp(PQgetvalue(res, 0, 0), "none") == 0 && json_array_size(bad) == arg_items(ar)) {
            /* Nothing in the request could be written by this role at all. */
            int all_forbidden = 1;
            json_array_foreach(bad, i, item) all_forbidden &=
                strcmp(json_string_value(json_object_get(item, "outcome")), "forbidden") == 0;
            if (all_forbidden) {
                json_decref(bad);
                json_decref(errors);
                snprintf(detail, sizeof(detail), "Your role may not write %s.", what);
                api_send_error(ar, ERR_FORBIDDEN, detail);
                return;
            }
        }
        json_array_foreach(bad, i, item)
        {
            char field[64];
            const char *outcome = json_string_value(json_object_get(item, "outcome"));
            long long idx = (long long)json_integer_value(json_object_get(item, "index"));
            if (strncmp(outcome, "invalid_", 8) == 0) {
                snprintf(field, sizeof(field), "[%lld].%s", idx, outcome + 8);
                api_error_add(errors, field, "invalid_reference", "does not name an existing record you may use");
            } else if (strcmp(outcome, "duplicate") == 0) {
                /* Another record the caller may not read holds this external id (see crud_on_write). */
                snprintf(field, sizeof(field), "[%lld].external_id", idx);
                api_error_add(errors, field, "duplicate", "is already used by another record");
            } else {
                snprintf(field, sizeof(field), "[%lld]", idx);
                api_error_add(errors, field, outcome,
                              strcmp(outcome, "not_found") == 0 ? "this record is not visible to you"
                                                                : "your role may not write this record");
            }
        }
        json_decref(bad);
        snprintf(detail, sizeof(detail), "Some %s may not be written; nothing was written.", what);
        api_send_invalid(ar, 422, detail, errors);
        return;
    }
    json_t *o = json_object();
    json_object_set_new(o, "created", json_integer(strtoll(PQgetvalue(res, 0, 1), NULL, 10)));
    json_object_set_new(o, "updated", json_integer(strtoll(PQgetvalue(res, 0, 2), NULL, 10)));
    api_send_json(ar, 200, o);
}
