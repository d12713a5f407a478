/*
 * api/engine_report.c - reports and exports of every engine resource.
 *
 * GET /v1/<collection>/aggregate groups the visible, filtered records by
 * up to two fields (enums, ids, booleans; timestamps and dates by UTC
 * bucket) and computes count, sum, avg, min and max of numeric fields, for
 * the bar, line and pie charts of a front end. GET /v1/<collection>/export
 * streams the whole visible, filtered set as NDJSON or CSV in constant
 * memory: pages of EXPORT_PAGE records by id are read one at a time, each
 * only when the client has taken the previous one, so a slow client never
 * makes the server hold more than a page, and a client that goes away stops
 * the export. Each page is a statement of its own (no transaction is held
 * open while a client reads): a record changed during a long export is
 * exported as it was when its page was read.
 *
 * Both statements are composed per request from identifiers of the
 * compiled description only (group fields, buckets and metrics are looked
 * up by name in it); every value is a parameter. They run unprepared.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "crud.h"
#include "engine_int.h"
#include "engine_routes.h"

#define AGG_MAX_GROUPS 1000
#define AGG_MAX_METRICS 16
#define EXPORT_PAGE 1000

/* Declares the list statements' fixed parameters a report does not use, so that every $n has a type. */
static void unused_params(engine_sql_t *s)
{
    esql_addf(s, ", unused_ AS (SELECT $%d::text, $%d::bigint, $%d::int, $%d::bool, $%d::text[])", EL_KEY, EL_ID,
              EL_FETCH, EL_COUNT, EL_FIELDS);
}

/* --- aggregate ------------------------------------------------------------------ */

typedef struct st_group_t {
    const engine_field_t *f;
    const char *bucket; /* day, week, month, quarter, year; NULL for plain fields */
    char label[80];     /* "created_at:month" */
} group_t;

typedef struct st_metric_t {
    const char *fn; /* count, sum, avg, min, max */
    const engine_field_t *f;
    char label[80]; /* "sum:total" */
} metric_t;

static int is_time(const engine_field_t *f)
{
    return f->v.type == VT_TIMESTAMP || f->v.type == VT_DATE;
}

static int parse_group(api_req_t *ar, const engine_resource_t *r, const char *spec, size_t len, group_t *g)
{
    static const char *const buckets[] = {"day", "week", "month", "quarter", "year", NULL};
    char name[80];
    if (len == 0 || len >= sizeof(name))
        return crud_bad_query(ar, "group_by", "invalid_value", "must name one or two fields, separated by a comma");
    memcpy(name, spec, len);
    name[len] = '\0';
    snprintf(g->label, sizeof(g->label), "%s", name);
    char *colon = strchr(name, ':');
    g->bucket = NULL;
    if (colon != NULL) {
        *colon = '\0';
        for (int i = 0; buckets[i] != NULL; i++)
            if (strcmp(colon + 1, buckets[i]) == 0)
                g->bucket = buckets[i];
    }
    g->f = engine_field(r, name);
    if (g->f == NULL || !(g->f->ef & EF_GROUP))
        return crud_bad_query(ar, "group_by", "invalid_value", "names a field that records cannot be grouped by");
    if (is_time(g->f) && g->bucket == NULL)
        return crud_bad_query(ar, "group_by", "invalid_value",
                              "a time field is grouped by a bucket: <field>:day, :week, :month, :quarter or :year");
    if (!is_time(g->f) && colon != NULL)
        return crud_bad_query(ar, "group_by", "invalid_value", "only time fields take a bucket");
    return 0;
}

static int parse_metrics(api_req_t *ar, const engine_resource_t *r, const char *v, metric_t *m, int *n)
{
    static const char *const fns[] = {"sum", "avg", "min", "max", NULL};
    *n = 0;
    const char *p = v != NULL ? v : "count";
    while (1) {
        const char *comma = strchr(p, ',');
        size_t len = comma != NULL ? (size_t)(comma - p) : strlen(p);
        if (*n == AGG_MAX_METRICS)
            return crud_bad_query(ar, "metrics", "too_many", "at most 16 metrics");
        metric_t *mt = &m[*n];
        char item[80];
        if (len == 0 || len >= sizeof(item))
            return crud_bad_query(ar, "metrics", "invalid_value",
                                  "must be count or <fn>:<field>, fn one of sum, avg, min, max");
        memcpy(item, p, len);
        item[len] = '\0';
        snprintf(mt->label, sizeof(mt->label), "%s", item);
        mt->f = NULL;
        mt->fn = NULL;
        char *colon = strchr(item, ':');
        if (colon == NULL && strcmp(item, "count") == 0) {
            mt->fn = "count";
        } else if (colon != NULL) {
            *colon = '\0';
            for (int i = 0; fns[i] != NULL; i++)
                if (strcmp(item, fns[i]) == 0)
                    mt->fn = fns[i];
            mt->f = engine_field(r, colon + 1);
            if (mt->fn == NULL || mt->f == NULL || !(mt->f->ef & EF_METRIC))
                return crud_bad_query(ar, "metrics", "invalid_value",
                                      "names a function (sum, avg, min, max) and a numeric field of these records");
        } else {
            return crud_bad_query(ar, "metrics", "invalid_value",
                                  "must be count or <fn>:<field>, fn one of sum, avg, min, max");
        }
        for (int i = 0; i < *n; i++)
            if (strcmp(m[i].label, mt->label) == 0)
                return crud_bad_query(ar, "metrics", "invalid_value", "names a metric twice");
        (*n)++;
        if (comma == NULL)
            break;
        p = comma + 1;
    }
    return 0;
}

/* The group key expression of a field over alias t. */
static void key_expr(engine_sql_t *s, const group_t *g)
{
    if (g->bucket == NULL)
        esql_addf(s, "t.%s", g->f->v.name);
    else if (g->f->v.type == VT_DATE)
        esql_addf(s, "to_char(date_trunc('%s', t.%s::timestamp), 'YYYY-MM-DD')", g->bucket, g->f->v.name);
    else
        esql_addf(s, "to_char(date_trunc('%s', t.%s AT TIME ZONE 'UTC'), 'YYYY-MM-DD')", g->bucket, g->f->v.name);
}

/* A metric's value over the groups' partial columns (gm<i>, gc<i> for avg) as JSON; decimals as text. */
static void metric_out(engine_sql_t *s, const metric_t *m, int i, int total)
{
    int dec = m->f != NULL && m->f->v.type == VT_DECIMAL;
    if (strcmp(m->fn, "count") == 0)
        esql_addf(s, total ? "coalesce(sum(g.n), 0)" : "g.n");
    else if (strcmp(m->fn, "avg") == 0)
        esql_addf(s,
                  total ? "round(sum(g.m%d) / nullif(sum(g.c%d), 0), %d)%s" : "round(g.m%d / nullif(g.c%d, 0), %d)%s",
                  i, i, dec ? m->f->v.scale : 6, dec ? "::text" : "");
    else if (!total)
        esql_addf(s, "g.m%d%s", i, dec ? "::text" : "");
    else
        esql_addf(s, "%s(g.m%d)%s", m->fn, i, dec ? "::text" : "");
}

static void on_aggregate(api_req_t *ar, const PGresult *res, int err, void *arg)
{
    if (crud_check_result(ar, res, err) != 0)
        return;
    if (strcmp(PQgetvalue(res, 0, 0), "none") == 0) {
        api_send_error(ar, ERR_FORBIDDEN, "Your role may not read these records.");
        return;
    }
    if (strtoll(PQgetvalue(res, 0, 1), NULL, 10) > AGG_MAX_GROUPS) {
        json_t *errors = json_array();
        api_error_add(errors, "group_by", "too_many", "makes more than 1000 groups; filter or group more coarsely");
        api_send_invalid(ar, 422, "The report would have more than 1000 groups.", errors);
        return;
    }
    api_send_raw(ar, 200, "application/json", PQgetvalue(res, 0, 2), (size_t)PQgetlength(res, 0, 2));
}

int engine_aggregate(api_req_t *ar)
{
    const engine_res_t *res = engine_res(ar->thread->server->engine, ar->route->resource);
    const engine_resource_t *r = res->r;
    static const char *const extra[] = {"group_by", "metrics", NULL};
    crud_query_t q;
    const char *p[DB_MAX_PARAMS] = {0};
    if (engine_parse_query(ar, res, extra, NULL, &q) != 0 || engine_read_filters(ar, res, &q, NULL, p) != 0)
        return 0;
    group_t g[2];
    metric_t m[AGG_MAX_METRICS];
    int ng = 0, nm;
    const char *gb = crud_query_get(&q, "group_by");
    if (gb == NULL)
        return crud_bad_query(ar, "group_by", "required", "names one or two fields to group by"), 0;
    for (const char *s = gb;;) {
        const char *comma = strchr(s, ',');
        size_t len = comma != NULL ? (size_t)(comma - s) : strlen(s);
        if (ng == 2)
            return crud_bad_query(ar, "group_by", "too_many", "at most two fields"), 0;
        if (parse_group(ar, r, s, len, &g[ng]) != 0)
            return 0;
        ng++;
        if (comma == NULL)
            break;
        s = comma + 1;
    }
    if (ng == 2 && strcmp(g[0].label, g[1].label) == 0)
        return crud_bad_query(ar, "group_by", "invalid_value", "names a field twice"), 0;
    if (parse_metrics(ar, r, crud_query_get(&q, "metrics"), m, &nm) != 0)
        return 0;

    const engine_list_ctx_t *cx = engine_list_ctx(res);
    engine_sql_t s = {0};
    esql_addf(&s, "WITH %s", cx->caller);
    unused_params(&s);
    esql_add(&s, ", g AS (SELECT ");
    for (int i = 0; i < ng; i++) {
        key_expr(&s, &g[i]);
        esql_addf(&s, " AS k%d, ", i);
    }
    esql_add(&s, "count(*) AS n");
    for (int i = 0; i < nm; i++) {
        if (m[i].f == NULL)
            continue;
        const char *fn = strcmp(m[i].fn, "avg") == 0 ? "sum" : m[i].fn;
        esql_addf(&s, ", %s(t.%s) AS m%d", fn, m[i].f->v.name, i);
        if (strcmp(m[i].fn, "avg") == 0)
            esql_addf(&s, ", count(t.%s) AS c%d", m[i].f->v.name, i);
    }
    esql_addf(&s, " FROM caller, %s WHERE in_scope(caller.rscope, caller.uid, caller.tid, %s, %s)%s GROUP BY ",
              cx->from, cx->own, cx->team, cx->filters);
    for (int i = 0; i < ng; i++)
        esql_addf(&s, "%s%d", i ? ", " : "", i + 1);
    esql_add(&s, ") SELECT caller.rscope, (SELECT count(*) FROM g), json_build_object('groups', coalesce((SELECT"
                 " json_agg(json_build_object('key', json_build_object(");
    for (int i = 0; i < ng; i++)
        esql_addf(&s, "%s'%s', g.k%d", i ? ", " : "", g[i].label, i);
    esql_add(&s, ")");
    for (int i = 0; i < nm; i++) {
        esql_addf(&s, ", '%s', ", m[i].label);
        metric_out(&s, &m[i], i, 0);
    }
    esql_add(&s, ") ORDER BY ");
    for (int i = 0; i < ng; i++)
        esql_addf(&s, "%sg.k%d NULLS LAST", i ? ", " : "", i);
    esql_addf(&s, ") FROM (SELECT * FROM g ORDER BY ");
    for (int i = 0; i < ng; i++)
        esql_addf(&s, "%sk%d NULLS LAST", i ? ", " : "", i);
    esql_addf(&s, " LIMIT %d) g), '[]'), 'totals', (SELECT json_build_object(", AGG_MAX_GROUPS);
    for (int i = 0; i < nm; i++) {
        esql_addf(&s, "%s'%s', ", i ? ", " : "", m[i].label);
        metric_out(&s, &m[i], i, 1);
    }
    esql_add(&s, ") FROM g))::text FROM caller");

    engine_uses_t *uses = h2o_mem_alloc_pool(&ar->req->pool, sizeof(*uses));
    uses->n = 0;
    engine_uses_filters(uses, res, &q);
    for (int i = 0; i < ng; i++)
        engine_uses_add(uses, "group_by", g[i].f->v.name, 400);
    for (int i = 0; i < nm; i++)
        if (m[i].f != NULL)
            engine_uses_add(uses, "metrics", m[i].f->v.name, 403);
    return engine_read_using(ar, NULL, esql_take(&s), res->nlist_params, p, 0, uses, on_aggregate, NULL);
}

/* --- export --------------------------------------------------------------------- */

typedef struct st_export_t {
    h2o_generator_t super;
    api_req_t *ar;
    const engine_res_t *res;
    char *sql;                    /* the page statement (malloc'ed; freed on dispose) */
    const char *p[DB_MAX_PARAMS]; /* filters (pool strings) */
    char uid[24], after[24];
    int csv, bom, started, finished, waiting;
    char **columns;     /* CSV: the fields, pool-owned, NULL-terminated */
    engine_uses_t uses; /* the filters and named fields, checked against the field rules before the first page */
    crud_buf_t out;     /* not used across pages: each page gets a fresh malloc'ed buffer */
    char *page;         /* the page being sent (malloc'ed) */
    size_t page_len;
} export_t;

static void export_next(export_t *x);
static void cut_short(export_t *x, const char *why);

/* RFC 4180: a field with a comma, quote, CR or LF is quoted, quotes doubled. */
static void csv_field(crud_buf_t *b, const char *s, size_t len)
{
    int quote = 0;
    for (size_t i = 0; i < len; i++)
        quote |= s[i] == ',' || s[i] == '"' || s[i] == '\n' || s[i] == '\r';
    if (!quote) {
        crud_buf_append(b, s, len);
        return;
    }
    crud_buf_append(b, "\"", 1);
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '"')
            crud_buf_append(b, "\"", 1);
        crud_buf_append(b, s + i, 1);
    }
    crud_buf_append(b, "\"", 1);
}

/* One JSON value as CSV text: strings bare, null empty, numbers and booleans as JSON, arrays joined by ';'. */
static void csv_value(crud_buf_t *b, json_t *v)
{
    if (v == NULL || json_is_null(v))
        return;
    if (json_is_string(v)) {
        csv_field(b, json_string_value(v), json_string_length(v));
        return;
    }
    int strings = json_is_array(v);
    for (size_t i = 0; strings && i < json_array_size(v); i++)
        strings = json_is_string(json_array_get(v, i));
    if (strings) { /* tags: joined by ';' */
        crud_buf_t t;
        crud_buf_init(&t, b->pool, 64);
        size_t i;
        json_t *e;
        json_array_foreach(v, i, e)
        {
            if (i > 0)
                crud_buf_append(&t, ";", 1);
            if (json_is_string(e))
                crud_buf_append(&t, json_string_value(e), json_string_length(e));
        }
        csv_field(b, t.base, t.len);
        return;
    }
    char *text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    if (text != NULL)
        csv_field(b, text, strlen(text));
    free(text);
}

static void growbuf_append(char **buf, size_t *len, size_t *cap, const char *s, size_t n)
{
    if (*len + n + 1 > *cap) {
        size_t c = *cap ? *cap : 65536;
        while (c < *len + n + 1)
            c *= 2;
        if ((*buf = realloc(*buf, c)) == NULL)
            abort();
        *cap = c;
    }
    memcpy(*buf + *len, s, n);
    *len += n;
}

static void on_page(api_req_t *ar, const PGresult *res, int err, void *arg)
{
    export_t *x = arg;
    x->waiting = 0;
    if (!x->started) {
        if (crud_check_result(ar, res, err) != 0)
            return;
        if (strcmp(PQgetvalue(res, 0, 0), "none") == 0) {
            api_send_error(ar, ERR_FORBIDDEN, "Your role may not read these records.");
            return;
        }
        x->started = 1;
        api_start_stream(ar, 200, x->csv ? "text/csv; charset=utf-8" : "application/x-ndjson", &x->super);
    } else if (err != 0 || PQntuples(res) == 0) {
        /* The status line is gone: all that is left is to cut the body short, which the client sees. */
        api_log(ar, LOG_ERROR, "an export page failed (error %d); the body was cut short", err);
        x->finished = 1;
        h2o_send(ar->req, NULL, 0, H2O_SEND_STATE_ERROR);
        return;
    } else if (strcmp(PQgetvalue(res, 0, 0), "none") == 0) {
        cut_short(x, "the caller may no longer read these records");
        return;
    }
    size_t cap = 0;
    free(x->page);
    x->page = NULL;
    x->page_len = 0;
    if (x->csv && x->started == 1) {
        x->started = 2;
        if (x->bom)
            growbuf_append(&x->page, &x->page_len, &cap, "\xEF\xBB\xBF", 3);
        for (int i = 0; x->columns[i] != NULL; i++) {
            if (i > 0)
                growbuf_append(&x->page, &x->page_len, &cap, ",", 1);
            growbuf_append(&x->page, &x->page_len, &cap, x->columns[i], strlen(x->columns[i]));
        }
        growbuf_append(&x->page, &x->page_len, &cap, "\r\n", 2);
    }
    int rows = 0;
    for (int i = 0; i < PQntuples(res); i++) {
        if (PQgetisnull(res, i, 1))
            continue;
        rows++;
        snprintf(x->after, sizeof(x->after), "%s", PQgetvalue(res, i, 1));
        const char *doc = PQgetvalue(res, i, 2);
        size_t dlen = (size_t)PQgetlength(res, i, 2);
        if (!x->csv) {
            growbuf_append(&x->page, &x->page_len, &cap, doc, dlen);
            growbuf_append(&x->page, &x->page_len, &cap, "\n", 1);
            continue;
        }
        json_t *o = json_loadb(doc, dlen, 0, NULL);
        crud_buf_t line;
        h2o_mem_pool_t pool;
        h2o_mem_init_pool(&pool);
        crud_buf_init(&line, &pool, 256);
        for (int c = 0; x->columns[c] != NULL; c++) {
            if (c > 0)
                crud_buf_append(&line, ",", 1);
            csv_value(&line, json_object_get(o, x->columns[c]));
        }
        crud_buf_append(&line, "\r\n", 2);
        growbuf_append(&x->page, &x->page_len, &cap, line.base, line.len);
        h2o_mem_clear_pool(&pool);
        json_decref(o);
    }
    x->finished = rows < EXPORT_PAGE;
    h2o_iovec_t buf = h2o_iovec_init(x->page != NULL ? x->page : "", x->page_len);
    h2o_send(ar->req, &buf, 1, x->finished ? H2O_SEND_STATE_FINAL : H2O_SEND_STATE_IN_PROGRESS);
}

/* Ends a body that has started without its last chunk: the client sees the export did not finish. */
static void cut_short(export_t *x, const char *why)
{
    api_log(x->ar, LOG_ERROR, "export cut short: %s", why);
    x->finished = 1;
    h2o_send(x->ar->req, NULL, 0, H2O_SEND_STATE_ERROR);
}

/* Sends the next page's statement as the caller `scope` (NULL: the caller is refused now). */
static void send_page(api_req_t *ar, const char *scope, void *arg)
{
    export_t *x = arg;
    size_t len = scope != NULL ? strlen(scope) : 0;
    const char *word = scope != NULL ? strchr(scope, ' ') : NULL; /* "<team> <scope> <hidden>" */
    if (x->started && (scope == NULL || word == NULL || strncmp(word, " none ", 6) == 0)) {
        cut_short(x, "the caller may no longer read these records");
        return; /* (before the first page the statement itself answers 403) */
    }
    if (!x->started && scope != NULL) {
        /* Before the first page: no filter or named field the role hides; its hidden columns left out. */
        if (engine_refuse_hidden(ar, scope, &x->uses))
            return;
        size_t k = 0;
        for (size_t i = 0; x->columns[i] != NULL; i++)
            if (!api_caller_hides(scope, x->columns[i]))
                x->columns[k++] = x->columns[i];
        x->columns[k] = NULL;
    }
    x->p[EL_UID - 1] = x->uid;
    x->p[EL_VER - 1] = h2o_strdup(&ar->req->pool, scope, len).base;
    x->p[EL_ID - 1] = x->after[0] != '\0' ? x->after : NULL;
    x->waiting = 1;
    /* A copy per page, freed when the page is answered: a request gone meanwhile frees x, not the queued text. */
    char *sql = strdup(x->sql);
    if (sql == NULL)
        abort();
    int ret = crud_query_owned(ar, sql, x->res->nlist_params, x->p, on_page, x);
    if (ret != 0) {
        x->waiting = 0;
        if (!x->started)
            api_send_error(ar, ret, NULL);
        else
            cut_short(x, "the database did not take the page's statement");
    }
}

/*
 * The next page. Each asks for its caller again (a cache hit, mostly), so
 * an export stops, cut short, once its user is cut off or loses the module.
 */
static void export_next(export_t *x)
{
    x->waiting = 1;
    if (api_caller_read_scope_quiet(x->ar, x->res->r->name, send_page, x) != 0) {
        x->waiting = 0;
        cut_short(x, "the caller could not be checked");
    }
}

/* The client took the last page: read the next one. */
static void on_proceed(h2o_generator_t *g, h2o_req_t *req)
{
    export_t *x = (export_t *)g;
    if (!x->finished && !x->waiting)
        export_next(x);
}

/* The client went away: nothing more is read (a page in flight is dropped by crud_query's liveness check). */
static void on_stop(h2o_generator_t *g, h2o_req_t *req)
{
    export_t *x = (export_t *)g;
    x->finished = 1;
}

static void on_export_dispose(void *p)
{
    export_t *x = p;
    free(x->sql);
    free(x->page);
}

int engine_export(api_req_t *ar)
{
    const engine_res_t *res = engine_res(ar->thread->server->engine, ar->route->resource);
    const engine_resource_t *r = res->r;
    static const char *const extra[] = {"format", "fields", "bom", NULL};
    export_t *x = h2o_mem_alloc_shared(&ar->req->pool, sizeof(*x), on_export_dispose);
    memset(x, 0, sizeof(*x));
    x->super.proceed = on_proceed;
    x->super.stop = on_stop;
    x->ar = ar;
    x->res = res;
    crud_query_t q;
    if (engine_parse_query(ar, res, extra, NULL, &q) != 0 || engine_read_filters(ar, res, &q, NULL, x->p) != 0)
        return 0;
    const char *fmt = crud_query_get(&q, "format"), *bom = crud_query_get(&q, "bom");
    if (fmt != NULL && strcmp(fmt, "ndjson") != 0 && strcmp(fmt, "csv") != 0)
        return crud_bad_query(ar, "format", "invalid_value", "must be ndjson or csv"), 0;
    if (bom != NULL && strcmp(bom, "true") != 0 && strcmp(bom, "false") != 0)
        return crud_bad_query(ar, "bom", "invalid_value", "must be true or false"), 0;
    x->csv = fmt != NULL && strcmp(fmt, "csv") == 0;
    x->bom = bom != NULL && strcmp(bom, "true") == 0;
    if (bom != NULL && !x->csv)
        return crud_bad_query(ar, "bom", "invalid_value", "applies to format=csv only"), 0;

    /* fields=: the members to export, in the order given; default every member (CSV: every flat one). */
    const char *fields = crud_query_get(&q, "fields");
    size_t n = 0;
    x->columns = h2o_mem_alloc_pool(&ar->req->pool, sizeof(char *) * (r->nfields + 1));
    if (fields != NULL) {
        for (const char *s = fields;;) {
            const char *comma = strchr(s, ',');
            size_t len = comma != NULL ? (size_t)(comma - s) : strlen(s);
            int ok = 0;
            for (int i = 0; res->out_fields[i] != NULL && !ok; i++)
                if (strlen(res->out_fields[i]) == len && strncmp(res->out_fields[i], s, len) == 0) {
                    for (size_t k = 0; k < n; k++)
                        if (strcmp(x->columns[k], res->out_fields[i]) == 0)
                            return crud_bad_query(ar, "fields", "invalid_value", "names a field twice"), 0;
                    x->columns[n++] = res->out_fields[i];
                    ok = 1;
                }
            if (!ok || n > r->nfields)
                return crud_bad_query(ar, "fields", "invalid_value", "must be a comma-separated list of field names"),
                       0;
            if (comma == NULL)
                break;
            s = comma + 1;
        }
    } else {
        for (size_t i = 0; i < r->nfields; i++)
            if (!(r->fields[i].ef & EF_INPUT_ONLY) && !(x->csv && (r->fields[i].ef & EF_NO_EXPORT)))
                x->columns[n++] = (char *)r->fields[i].v.name;
    }
    x->columns[n] = NULL;
    engine_uses_filters(&x->uses, res, &q);
    for (size_t i = 0; fields != NULL && i < n; i++)
        engine_uses_add(&x->uses, "fields", x->columns[i], 400);
    if (fields != NULL || x->csv) {
        /* The projection as a PostgreSQL array literal: names are plain identifiers. */
        crud_buf_t lit;
        crud_buf_init(&lit, &ar->req->pool, 256);
        crud_buf_append(&lit, "{", 1);
        for (size_t i = 0; i < n; i++) {
            if (i > 0)
                crud_buf_append(&lit, ",", 1);
            crud_buf_puts(&lit, x->columns[i]);
        }
        crud_buf_append(&lit, "}", 2);
        x->p[EL_FIELDS - 1] = lit.base;
    }

    /* One page: the next EXPORT_PAGE visible records by id after $EL_ID. */
    const engine_list_ctx_t *cx = engine_list_ctx(res);
    engine_sql_t s = {0};
    esql_addf(&s, "WITH %s", cx->caller);
    esql_addf(&s, ", unused_ AS (SELECT $%d::text, $%d::int, $%d::bool)", EL_KEY, EL_FETCH, EL_COUNT);
    esql_add(&s, " SELECT caller.rscope, p.id, p.doc FROM caller LEFT JOIN LATERAL (SELECT x.id, ");
    engine_doc_projected(&s, res, "x");
    esql_addf(&s,
              " AS doc FROM (SELECT t.* FROM %s WHERE in_scope(caller.rscope, caller.uid, caller.tid, %s, %s)%s"
              " AND ($%d::bigint IS NULL OR t.id > $%d::bigint) ORDER BY t.id LIMIT %d) x ORDER BY x.id) p ON true",
              cx->from, cx->own, cx->team, cx->filters, EL_ID, EL_ID, EXPORT_PAGE);
    x->sql = esql_take(&s);
    db_fmt_i64(x->uid, ar->claims.sub);
    return api_caller_read_scope(ar, r->name, send_page, x);
}
