/*
 * tests/integration/reports_test.c - GET /v1/<collection>/aggregate and
 * GET /v1/<collection>/export of every engine resource (customers, orders,
 * contacts) against the real API, PostgreSQL and Redis.
 *
 * What a user of a report or an export would notice: every role sees
 * exactly the records its scope allows (the crew's oracle, never the API's
 * SQL), aggregates equal a GROUP BY written here over generated data
 * (decimals compared as exact text, time buckets computed here with other
 * functions than the server's), the group limit and every bad parameter
 * answer 4xx naming the parameter, an export of 100,000 records equals the
 * paginated list record for record, CSV follows RFC 4180, and an export
 * whose client goes away, or whose page fails, stops cleanly.
 *
 * crew_main() (tests/support/crew.c) builds the suite's database, adds one
 * user per role, starts one API process and logs every user in once; Check
 * forks each test. Tests do not depend on each other: each marks its
 * records with its own tag (or orders with its own years), and the large
 * data sets are inserted by whichever test needs them first (ensure_*()
 * look at the database, not at memory, because every test is a fork).
 * Exports are read as raw bytes: the chunked transfer encoding is decoded
 * here, so that a body cut short (no terminating chunk) is told apart from
 * a complete one. Everything a test allocates stays reachable from a
 * global list (keep()), except the large bodies, which are freed as soon
 * as they are compared.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <check.h>
#include <libpq-fe.h>

#include "tests/support/crew.h"

#define JWT_SECRET "CLIENTELE_JWT_SECRET=reports-suite-secret-0123456789abcdefghi"

static const char *const api_env[] = {
    "CLIENTELE_THREADS=2",
    /* Large exports and 100,000-row aggregates under the sanitizers on a busy machine: limits are not timings. */
    "CLIENTELE_DB_TIMEOUT=20s",
    JWT_SECRET,
    NULL,
};

static const crew_conf_t conf = {
    .name = "reports",
    .redis_db = 10,
    .env = api_env,
    .password = "reports-suite-password",
    .domain = "reports.test",
    .resource = "customers",
    .item = "customer",
};

/* --- SQL ---------------------------------------------------------------------------- */

/* This test process's own connection (each forked test opens its own on first use). */
static PGconn *db(void)
{
    static PGconn *c;
    if (c == NULL)
        c = pg_open();
    return c;
}

/* Runs a statement on db(); fails the test when it fails. */
__attribute__((format(printf, 1, 2))) static void sql_run(const char *f, ...)
{
    va_list ap;
    char *sql;
    va_start(ap, f);
    ck_assert(vasprintf(&sql, f, ap) >= 0);
    va_end(ap);
    PGresult *r = PQexec(db(), sql);
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
    ck_assert_msg(ok, "%.300s: %s", sql, PQresultErrorMessage(r));
    PQclear(r);
    free(sql);
}

/* The first column of the first row as kept text ("" for NULL); fails the test when there is no row. */
__attribute__((format(printf, 1, 2))) static const char *sql_text(const char *f, ...)
{
    va_list ap;
    char *sql;
    va_start(ap, f);
    ck_assert(vasprintf(&sql, f, ap) >= 0);
    va_end(ap);
    PGresult *r = PQexec(db(), sql);
    ck_assert_msg(PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0, "%.300s: %s", sql, PQresultErrorMessage(r));
    const char *v = fmt("%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    free(sql);
    return v;
}

/* "ARRAY[id, ...]" of crew members. */
static const char *id_array(const int *who, int n)
{
    const char *s = "ARRAY[";
    for (int i = 0; i < n; i++)
        s = fmt("%s%s%lld", s, i ? ", " : "", users[who[i]].id);
    return fmt("%s]::bigint[]", s);
}

/* --- raw HTTP: streamed answers ---------------------------------------------------- */

/* An answer with its body de-chunked. */
typedef struct {
    int status;
    const char *ctype; /* kept; NULL when absent */
    char *body;        /* malloc'ed, NUL-terminated: keep() or free() it */
    size_t len;
    int complete; /* the body was whole: the terminating chunk arrived, or it had a Content-Length */
    json_t *json; /* the body parsed when it is one JSON value (problems), else NULL; kept */
} stream_t;

/*
 * Decodes a chunked body. complete is 1 only when the terminating chunk
 * and its CRLF arrived; a declared chunk that is cut short keeps what came.
 */
static void dechunk(const char *in, size_t len, stream_t *out)
{
    char *buf = malloc(len + 1);
    size_t n = 0, pos = 0;
    ck_assert_ptr_nonnull(buf);
    out->complete = 0;
    while (pos < len) {
        char *end;
        unsigned long size = strtoul(in + pos, &end, 16);
        const char *crlf = memmem(in + pos, len - pos, "\r\n", 2);
        if (end == in + pos || crlf == NULL || crlf != end)
            break;
        pos = (size_t)(crlf + 2 - in);
        if (size == 0) {
            out->complete = len - pos == 2 && memcmp(in + pos, "\r\n", 2) == 0;
            break;
        }
        if (pos + size + 2 > len || memcmp(in + pos + size, "\r\n", 2) != 0) {
            size_t have = pos + size <= len ? size : len - pos;
            memcpy(buf + n, in + pos, have);
            n += have;
            break;
        }
        memcpy(buf + n, in + pos, size);
        n += size;
        pos += size + 2;
    }
    buf[n] = '\0';
    out->body = buf;
    out->len = n;
}

/* GET as `who` on `port`, the answer read whole and de-chunked. The body is the caller's to free or keep. */
static stream_t get_stream_at(int port, int who, const char *path)
{
    char auth[2200];
    const char *h[] = {who >= 0 ? th_bearer(users[who].token, auth, sizeof(auth)) : NULL, NULL};
    th_resp_t r;
    stream_t s = {0};
    if (th_http(port, "GET", path, h, NULL, 0, &r) != 0) {
        s.body = calloc(1, 1);
        return s;
    }
    s.status = r.status;
    s.ctype = header(&r, "content-type");
    const char *te = header(&r, "transfer-encoding");
    if (te != NULL && strcmp(te, "chunked") == 0) {
        dechunk(r.body, r.body_len, &s);
    } else {
        const char *cl = header(&r, "content-length");
        s.body = malloc(r.body_len + 1);
        memcpy(s.body, r.body, r.body_len + 1);
        s.len = r.body_len;
        s.complete = cl != NULL && (size_t)atoll(cl) == r.body_len;
    }
    if (s.len < 65536)
        s.json = json_loadb(s.body, s.len, 0, NULL);
    if (s.json != NULL)
        keep(s.json);
    th_resp_free(&r);
    return s;
}

static stream_t get_stream(int who, const char *path)
{
    return get_stream_at(api.port, who, path);
}

/* A small export as `who`: 200, whole, of the content type of its format; the body kept. */
static stream_t export_ok_(int who, const char *path, int line)
{
    stream_t s = get_stream(who, path);
    keep(s.body);
    ck_assert_msg(s.status == 200, "line %d: %s: %s: expected 200, got %d: %.400s", line, who_name[who], path, s.status,
                  s.body);
    ck_assert_msg(s.complete, "line %d: %s: the body was cut short", line, path);
    const char *want = strstr(path, "format=csv") != NULL ? "text/csv; charset=utf-8" : NDJSON_T;
    ck_assert_msg(s.ctype != NULL && strcmp(s.ctype, want) == 0, "line %d: %s: content-type %s", line, path,
                  s.ctype != NULL ? s.ctype : "(none)");
    return s;
}
#define export_ok(who, path) export_ok_((who), (path), __LINE__)

/* NDJSON lines as a kept array; every line one JSON object, ended by LF; ids strictly increasing. */
static json_t *ndjson_items_(const stream_t *s, int line)
{
    json_t *items = keep(json_array());
    const char *p = s->body, *end = s->body + s->len;
    long long last = 0;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        ck_assert_msg(nl != NULL, "line %d: the last NDJSON line has no LF", line);
        json_error_t e;
        json_t *o = json_loadb(p, (size_t)(nl - p), 0, &e);
        ck_assert_msg(json_is_object(o), "line %d: an NDJSON line is not an object (%s): %.200s", line, e.text, p);
        ck_assert_msg(jint(o, "id") > last, "line %d: export not in id order (%lld after %lld)", line, jint(o, "id"),
                      last);
        last = jint(o, "id");
        json_array_append_new(items, o);
        p = nl + 1;
    }
    return items;
}
#define ndjson_items(s) ndjson_items_((s), __LINE__)

/*
 * Parses CSV strictly by RFC 4180 as the export writes it: fields separated
 * by commas, every record ended by CRLF, quoted fields with doubled quotes.
 * Returns the records as a kept array of arrays of strings.
 */
static json_t *csv_parse_(const char *p, size_t len, int line)
{
    json_t *rows = keep(json_array());
    size_t i = 0;
    char *f = malloc(len + 1);
    while (i < len) {
        json_t *row = json_array();
        for (;;) {
            size_t n = 0;
            if (i < len && p[i] == '"') {
                for (i++;; i++) {
                    ck_assert_msg(i < len, "line %d: CSV: a quoted field is not closed", line);
                    if (p[i] == '"' && i + 1 < len && p[i + 1] == '"')
                        f[n++] = p[i++];
                    else if (p[i] == '"')
                        break;
                    else
                        f[n++] = p[i];
                }
                i++;
            } else {
                for (; i < len && p[i] != ',' && p[i] != '\r' && p[i] != '\n'; i++) {
                    ck_assert_msg(p[i] != '"', "line %d: CSV: a quote inside an unquoted field at byte %zu", line, i);
                    f[n++] = p[i];
                }
            }
            json_array_append_new(row, json_stringn_nocheck(f, n));
            if (i < len && p[i] == ',') {
                i++;
                continue;
            }
            ck_assert_msg(i + 1 < len && p[i] == '\r' && p[i + 1] == '\n',
                          "line %d: CSV: record %zu is not ended by CRLF (byte %zu)", line, json_array_size(rows), i);
            i += 2;
            break;
        }
        json_array_append_new(rows, row);
    }
    free(f);
    return rows;
}
#define csv_parse(p, len) csv_parse_((p), (len), __LINE__)

/* A growable byte string. */
typedef struct {
    char *p;
    size_t len, cap;
} buf_t;

static void buf_add(buf_t *b, const void *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        b->cap = (b->len + n + 1) * 2;
        b->p = realloc(b->p, b->cap);
        ck_assert_ptr_nonnull(b->p);
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void buf_str(buf_t *b, const char *s)
{
    buf_add(b, s, strlen(s));
}

/*
 * What a CSV cell of a JSON value reads: strings as they are, null empty,
 * numbers and booleans as JSON, arrays of strings (tags) joined by ';',
 * anything else (objects, arrays of objects) as its compact JSON text.
 */
static const char *cell_text(json_t *v)
{
    if (v == NULL || json_is_null(v))
        return "";
    if (json_is_string(v))
        return json_string_value(v);
    if (json_is_array(v)) {
        size_t i;
        json_t *e;
        int strings = 1;
        json_array_foreach(v, i, e)
        {
            strings &= json_is_string(e);
        }
        if (strings) {
            const char *s = "";
            json_array_foreach(v, i, e)
            {
                s = fmt("%s%s%s", s, i ? ";" : "", json_string_value(e));
            }
            return s;
        }
    }
    return keep(json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY));
}

/* One CSV field as RFC 4180 writes it: quoted when it holds a comma, quote, CR or LF, quotes doubled. */
static void csv_cell(buf_t *b, const char *s)
{
    if (strpbrk(s, ",\"\r\n") == NULL) {
        buf_str(b, s);
        return;
    }
    buf_add(b, "\"", 1);
    for (; *s != '\0'; s++) {
        if (*s == '"')
            buf_add(b, "\"", 1);
        buf_add(b, s, 1);
    }
    buf_add(b, "\"", 1);
}

/* The CSV an export of docs (in id order) with these columns should be, byte for byte; kept. */
static const char *csv_expected(json_t *docs, const char *const *cols, int bom)
{
    buf_t b = {0};
    if (bom)
        buf_add(&b, "\xEF\xBB\xBF", 3);
    for (int c = 0; cols[c] != NULL; c++) {
        buf_str(&b, c ? "," : "");
        buf_str(&b, cols[c]);
    }
    buf_str(&b, "\r\n");
    size_t i;
    json_t *d;
    json_array_foreach(docs, i, d)
    {
        for (int c = 0; cols[c] != NULL; c++) {
            buf_str(&b, c ? "," : "");
            csv_cell(&b, cell_text(json_object_get(d, cols[c])));
        }
        buf_str(&b, "\r\n");
    }
    return keep(b.p);
}

/* Up to 160 bytes from p as printable text (CR, LF and bytes outside ASCII escaped), kept. */
static const char *show(const char *p, size_t n)
{
    buf_t b = {0};
    for (size_t i = 0; i < n && i < 160; i++) {
        unsigned char c = (unsigned char)p[i];
        char e[8];
        if (c == '\r' || c == '\n') {
            buf_str(&b, c == '\r' ? "\\r" : "\\n");
        } else if (c < 0x20 || c >= 0x7f) {
            snprintf(e, sizeof(e), "\\x%02x", c);
            buf_str(&b, e);
        } else {
            buf_add(&b, &c, 1);
        }
    }
    buf_add(&b, "", 0); /* a string even when n is 0 */
    return keep(b.p);
}

/* Compares two byte strings and shows where they part. */
static void expect_bytes_(const char *what, const char *got, size_t glen, const char *want, size_t wlen, int line)
{
    size_t i = 0;
    while (i < glen && i < wlen && got[i] == want[i])
        i++;
    if (i == glen && i == wlen)
        return;
    size_t from = i > 60 ? i - 60 : 0;
    ck_abort_msg("line %d: %s differs at byte %zu (got %zu bytes, wanted %zu):\n got: %s\nwant: %s", line, what, i,
                 glen, wlen, show(got + from, glen - from), show(want + from, wlen - from));
}
#define expect_bytes(what, got, glen, want, wlen) expect_bytes_((what), (got), (glen), (want), (wlen), __LINE__)

/* Items of a list sorted by id (the export's order), kept. */
static int cmp_by_id(const void *a, const void *b)
{
    long long x = jint(*(json_t *const *)a, "id"), y = jint(*(json_t *const *)b, "id");
    return x < y ? -1 : x > y;
}

static json_t *by_id(json_t *items)
{
    size_t n = json_array_size(items);
    json_t **v = keep(malloc(sizeof(*v) * (n + 1)));
    for (size_t i = 0; i < n; i++)
        v[i] = json_array_get(items, i);
    qsort(v, n, sizeof(*v), cmp_by_id);
    json_t *out = keep(json_array());
    for (size_t i = 0; i < n; i++)
        json_array_append(out, v[i]);
    return out;
}

/* --- aggregates: the oracle ---------------------------------------------------------- */

/*
 * The answer an aggregate should give, computed here. `from` is
 * "FROM ... WHERE ..." over alias t (and c, the order's or contact's
 * customer); exprs[i] computes the key of the i-th item of group_by (its
 * label); dec names the decimal field whose sum, avg, min and max are
 * asked (NULL: count alone). Groups come in key order, nulls last; totals
 * are computed over the rows, not over the groups.
 */
static json_t *oracle(const char *group_by, const char *const *exprs, const char *dec, const char *from)
{
    const char *keys = "", *sel = "", *order = "", *grp = "";
    const char *p = group_by;
    for (int i = 0; exprs[i] != NULL; i++) {
        const char *comma = strchr(p, ',');
        const char *label = comma != NULL ? fmt("%.*s", (int)(comma - p), p) : fmt("%s", p);
        keys = fmt("%s%s'%s', k%d", keys, i ? ", " : "", label, i);
        sel = fmt("%s%s AS k%d, ", sel, exprs[i], i);
        order = fmt("%s%sk%d NULLS LAST", order, i ? ", " : "", i);
        grp = fmt("%s%s%d", grp, i ? ", " : "", i + 1);
        p = comma != NULL ? comma + 1 : p + strlen(p);
    }
    const char *msel = "", *mobj = "", *tobj = "";
    if (dec != NULL) {
        msel = fmt(", sum(t.%1$s) AS s, round(avg(t.%1$s), 2) AS a, min(t.%1$s) AS lo, max(t.%1$s) AS hi", dec);
        mobj = fmt(", 'sum:%1$s', s::text, 'avg:%1$s', a::text, 'min:%1$s', lo::text, 'max:%1$s', hi::text", dec);
        tobj = fmt(", 'sum:%1$s', sum(t.%1$s)::text, 'avg:%1$s', round(avg(t.%1$s), 2)::text,"
                   " 'min:%1$s', min(t.%1$s)::text, 'max:%1$s', max(t.%1$s)::text",
                   dec);
    }
    const char *groups =
        sql_text("SELECT coalesce(json_agg(json_build_object('key', json_build_object(%s), 'count', n%s) ORDER BY %s),"
                 " '[]')::text FROM (SELECT %scount(*) AS n%s %s GROUP BY %s) q",
                 keys, mobj, order, sel, msel, from, grp);
    const char *totals = sql_text("SELECT json_build_object('count', count(*)%s)::text %s", tobj, from);
    return json_pack("{s:o, s:o}", "groups", jparse(groups), "totals", jparse(totals));
}

/* The aggregate URL: group_by, the metrics of dec (or none: the default), then filters. */
static const char *agg_path(const char *coll, const char *group_by, const char *dec, const char *filters)
{
    const char *m = dec != NULL ? fmt("&metrics=count,sum:%1$s,avg:%1$s,min:%1$s,max:%1$s", dec) : "";
    return fmt("/v1/%s/aggregate?group_by=%s%s%s%s", coll, group_by, m, *filters ? "&" : "", filters);
}

/* The aggregate as `who` equals the oracle, group for group (order included), and in its totals. */
static void check_agg_(int who, const char *coll, const char *group_by, const char *dec, const char *filters,
                       const char *from, const char *const *exprs, int line)
{
    const char *path = agg_path(coll, group_by, dec, filters);
    th_resp_t *r = http_get(who, path);
    ck_assert_msg(r->status == 200, "line %d: %s %s: expected 200, got %d: %.400s", line, who_name[who], path,
                  r->status, r->body);
    ck_assert_msg(r->json != NULL, "line %d: %s: not JSON", line, path);
    json_t *want = keep(oracle(group_by, exprs, dec, from));
    json_t *gg = jget(r, "groups"), *wg = json_object_get(want, "groups");
    ck_assert_msg(json_is_array(gg), "line %d: %s: no groups array", line, path);
    ck_assert_msg(json_array_size(wg) > 0,
                  "line %d: %s as %s: the oracle found no group; the comparison would say nothing", line, path,
                  who_name[who]);
    for (size_t i = 0; i < json_array_size(gg) && i < json_array_size(wg); i++)
        ck_assert_msg(json_equal(json_array_get(gg, i), json_array_get(wg, i)),
                      "line %d: %s as %s: group %zu is\n %s\nwanted\n %s", line, path, who_name[who], i,
                      jdump(json_incref(json_array_get(gg, i))), jdump(json_incref(json_array_get(wg, i))));
    ck_assert_msg(json_array_size(gg) == json_array_size(wg), "line %d: %s as %s: %zu groups, wanted %zu", line, path,
                  who_name[who], json_array_size(gg), json_array_size(wg));
    ck_assert_msg(json_equal(jget(r, "totals"), json_object_get(want, "totals")),
                  "line %d: %s as %s: totals\n %s\nwanted\n %s", line, path, who_name[who],
                  jdump(json_incref(jget(r, "totals"))), jdump(json_incref(json_object_get(want, "totals"))));
    ck_assert_int_eq(json_object_size(r->json), 2);
}
#define check_agg(who, coll, group_by, dec, filters, from, ...)                                                        \
    check_agg_((who), (coll), (group_by), (dec), (filters), (from), (const char *const[]){__VA_ARGS__, NULL}, __LINE__)

/* Bucket keys computed without date_trunc: the first day of the UTC day, ISO week, month, quarter and year. */
#define UTC_OF(col) "(" col " AT TIME ZONE 'UTC')"
#define DAY(col) "to_char(" UTC_OF(col) ", 'YYYY-MM-DD')"
#define WEEK(col) "to_char(" UTC_OF(col) "::date - (extract(isodow FROM " UTC_OF(col) ")::int - 1), 'YYYY-MM-DD')"
#define MONTH(col) "(to_char(" UTC_OF(col) ", 'YYYY-MM') || '-01')"
#define QUARTER(col)                                                                                                   \
    "to_char(make_date(extract(year FROM " UTC_OF(col) ")::int, ((extract(month FROM " UTC_OF(                         \
        col) ")::int - 1) / 3) * 3 + 1, 1), 'YYYY-MM-DD')"
#define YEAR(col) "(to_char(" UTC_OF(col) ", 'YYYY') || '-01-01')"

/* --- generated data ------------------------------------------------------------------- */

/* Owners of generated records: the five of the scope matrix and the integration account (no team). */
static const int owners6[] = {REP1, REP2, REPS, MANAGER, DIRECTOR, INTEGRATION};

/*
 * 3,000 customers tagged "agg" (some also "agg-vip"; some named Zebra or
 * with a zebra e-mail for q=) of six owners, with credit limits in cents
 * (some null, some of 16 integer digits, where any float would lose the
 * cents), created over three years at every minute of the day, 60 of them
 * soft-deleted; 6,000 orders of theirs (one live order at least on every
 * day of 2011-2015, totals up to 12 integer digits, three currencies, 85
 * soft-deleted); 1,500 contacts tagged "agg" (37 soft-deleted). Inserted
 * directly (the change-feed trigger fires per row) by the first test that
 * needs them.
 */
static void ensure_agg_data(void)
{
    if (atoll(sql_text("SELECT count(*) FROM customers WHERE tags @> '{agg}'")) > 0)
        return;
    sql_run("BEGIN");
    sql_run("INSERT INTO customers (kind, name, email, status, owner_id, team_id, credit_limit, tags, created_at,"
            " deleted_at)"
            " SELECT CASE WHEN i %% 3 = 0 THEN 'person' ELSE 'company' END,"
            " CASE WHEN i %% 10 = 0 THEN 'Zebra Trading ' ELSE 'Aggregate Co ' END || i,"
            " CASE WHEN i %% 4 = 0 THEN 'buyer' || i || CASE WHEN i %% 8 = 0 THEN '@zebra.example'"
            " ELSE '@example.com' END END,"
            " (ARRAY['prospect', 'customer', 'customer', 'partner', 'inactive'])[1 + (i * 7) %% 5],"
            " u.id, u.team_id,"
            " CASE WHEN i %% 9 = 0 THEN NULL WHEN i %% 97 = 0 THEN 9999999999999999.99 - i"
            " ELSE ((i::bigint * 7919) %% 2000000) / 100.0 END,"
            " CASE WHEN i %% 6 = 0 THEN ARRAY['agg', 'agg-vip'] ELSE ARRAY['agg'] END,"
            " timestamptz '2019-01-01 00:00:00+00' + ((i::bigint * 104729) %% (3 * 365 * 1440)) * interval '1 minute',"
            " CASE WHEN i %% 50 = 0 THEN now() END"
            " FROM generate_series(1, 3000) i JOIN users u ON u.id = (%s)[1 + i %% 6]",
            id_array(owners6, 6));
    sql_run("WITH c AS (SELECT id, row_number() OVER (ORDER BY id) - 1 AS k FROM customers"
            " WHERE tags @> '{agg}' AND deleted_at IS NULL)"
            " INSERT INTO orders (customer_id, ordered_at, status, currency, total, deleted_at)"
            " SELECT c.id, timestamptz '2011-01-01 00:00:00+00' + (i %% 1826) * interval '1 day'"
            " + ((i::bigint * 7919) %% 1440) * interval '1 minute',"
            " (ARRAY['pending', 'completed', 'completed', 'cancelled', 'refunded'])[1 + (i * 3) %% 5],"
            " (ARRAY['EUR', 'USD', 'GBP'])[1 + i %% 3],"
            " CASE WHEN i %% 101 = 0 THEN 999999999999.99 - i ELSE ((i::bigint * 104729) %% 5000000) / 100.0 END,"
            " CASE WHEN i %% 70 = 0 THEN now() END"
            " FROM generate_series(1, 6000) i JOIN c ON c.k = i %% (SELECT count(*) FROM c)");
    sql_run("WITH c AS (SELECT id, row_number() OVER (ORDER BY id) - 1 AS k FROM customers"
            " WHERE tags @> '{agg}' AND deleted_at IS NULL)"
            " INSERT INTO contacts (customer_id, first_name, last_name, department, is_primary, preferred_channel,"
            " do_not_contact, tags, deleted_at)"
            " SELECT c.id, 'First' || i, 'Last' || i, (ARRAY['Sales', 'Finance', 'IT', NULL])[1 + i %% 4],"
            " i %% 3 = 0, (ARRAY['email', 'phone', 'sms', 'mail', 'none', NULL])[1 + i %% 6], i %% 5 = 0,"
            " ARRAY['agg'], CASE WHEN i %% 40 = 0 THEN now() END"
            " FROM generate_series(1, 1500) i JOIN c ON c.k = i");
    sql_run("COMMIT");
}

#define AGG_C "FROM customers t WHERE t.deleted_at IS NULL AND t.tags @> '{agg}'"
#define AGG_O                                                                                                          \
    "FROM orders t JOIN customers c ON c.id = t.customer_id WHERE t.deleted_at IS NULL"                                \
    " AND t.ordered_at >= '2011-01-01T00:00:00Z' AND t.ordered_at < '2016-01-01T00:00:00Z'"
#define AGG_O_WINDOW "ordered_after=2010-12-31T23:59:59Z&ordered_before=2016-01-01T00:00:00Z"
#define AGG_K                                                                                                          \
    "FROM contacts t JOIN customers c ON c.id = t.customer_id WHERE t.deleted_at IS NULL AND t.tags @> '{agg}'"

#define BIG_ROWS 100000

/*
 * 100,000 customers tagged "big" of six owners, with names that need CSV
 * quoting, e-mails, addresses, attrs, external ids and created_at values
 * in no relation to their ids (each shared by two customers, so the list's
 * ties are broken by id). Inserted directly with triggers off for this
 * session (session_replication_role = replica): the change feed and the
 * history are not under test here, and writing them for 100,000 rows
 * would cost a large part of the suite's time under the sanitizers.
 */
static void ensure_big_data(void)
{
    if (atoll(sql_text("SELECT count(*) FROM customers WHERE tags @> '{big}'")) > 0)
        return;
    sql_run("BEGIN");
    sql_run("SET LOCAL session_replication_role = replica");
    sql_run("INSERT INTO customers (external_id, kind, name, email, phone, address, industry, status, owner_id,"
            " team_id, tags, attrs, credit_limit, created_at)"
            " SELECT CASE WHEN i %% 4 = 0 THEN 'big-' || i END, CASE WHEN i %% 2 = 0 THEN 'person' ELSE 'company' END,"
            " CASE i %% 5 WHEN 0 THEN 'Big, Inc. ' || i WHEN 1 THEN 'Big \"Quoted\" ' || i"
            " WHEN 2 THEN 'Bïg ünïcode ✓ ' || i ELSE 'Big ' || i END,"
            " CASE WHEN i %% 3 = 0 THEN 'big' || i || '@example.com' END,"
            " CASE WHEN i %% 7 = 0 THEN '+4930' || (1000000 + i) END,"
            " CASE WHEN i %% 6 = 0 THEN jsonb_build_object('city', 'Berlin', 'country', 'DE', 'line1', i || ' Main St')"
            " END, CASE WHEN i %% 5 = 0 THEN 'Retail' END,"
            " (ARRAY['prospect', 'customer', 'partner', 'inactive'])[1 + i %% 4], u.id, u.team_id,"
            " CASE WHEN i %% 10 = 0 THEN ARRAY['big', 'big-vip'] ELSE ARRAY['big'] END,"
            " CASE WHEN i %% 8 = 0 THEN jsonb_build_object('n', i, 'src', 'erp') ELSE '{}' END,"
            " CASE WHEN i %% 9 = 0 THEN NULL ELSE ((i::bigint * 7919) %% 10000000) / 100.0 END,"
            " timestamptz '2018-01-01 00:00:00+00' + ((i::bigint * 7919) %% (%d / 2)) * interval '1 minute'"
            " FROM generate_series(1, %d) i JOIN users u ON u.id = (%s)[1 + i %% 6]",
            BIG_ROWS, BIG_ROWS, id_array(owners6, 6));
    sql_run("COMMIT");
}

/* --- scope matrix ------------------------------------------------------------------------ */

static const int owners5[] = {REP1, REP2, REPS, MANAGER, DIRECTOR};

typedef struct {
    long long id, owner, team;
} rec_t;

/* A customer made by the director for `owner` (team derived from the owner), with tags and a status. */
static rec_t make_cust(int owner, const char *tags_json, const char *status)
{
    th_resp_t *r =
        http_post(DIRECTOR, "/v1/customers",
                  fmt("{\"kind\":\"company\",\"name\":\"%s\",\"owner_id\":%lld,\"tags\":%s,\"status\":\"%s\","
                      "\"credit_limit\":\"1000.50\"}",
                      uniq("Scope"), users[owner].id, tags_json, status));
    expect_status(r, 201);
    return (rec_t){jint(r->json, "id"), jint(r->json, "owner_id"), jint(r->json, "team_id")};
}

static long long make_order(long long customer, const char *ordered_at, const char *total)
{
    th_resp_t *r = http_post(DIRECTOR, "/v1/orders",
                             fmt("{\"customer_id\":%lld,\"ordered_at\":\"%s\",\"status\":\"completed\","
                                 "\"currency\":\"EUR\",\"total\":\"%s\"}",
                                 customer, ordered_at, total));
    expect_status(r, 201);
    return jint(r->json, "id");
}

static long long make_contact(long long customer, const char *tags_json)
{
    th_resp_t *r =
        http_post(DIRECTOR, "/v1/contacts",
                  fmt("{\"customer_id\":%lld,\"last_name\":\"%s\",\"tags\":%s}", customer, uniq("Doe"), tags_json));
    expect_status(r, 201);
    return jint(r->json, "id");
}

/* A user of a role that reads customers but has no orders module (explicit "none") and no contacts module. */
static void login_customers_only(char token[2048])
{
    sql_run("INSERT INTO roles (name, description, builtin, permissions) VALUES ('customers_only',"
            " 'Reads customers only.', false, '{\"customers\": {\"read\": \"all\"}, \"orders\": {\"read\": \"none\"},"
            " \"teams\": {\"read\": \"all\"}}') ON CONFLICT DO NOTHING");
    const char *email = fmt("viewer-%d@%s", (int)getpid(), conf.domain);
    sql_run("INSERT INTO users (email, name, password_hash, role_id) SELECT '%s', 'Vera Viewer', password_hash,"
            " (SELECT id FROM roles WHERE name = 'customers_only') FROM users WHERE id = %lld",
            email, users[ANALYST].id);
    login_ok(email, conf.password, token, NULL);
}

/* Whether id is in ids[0..n). */
static int in_ids(const long long *ids, size_t n, long long id)
{
    for (size_t i = 0; i < n; i++)
        if (ids[i] == id)
            return 1;
    return 0;
}

/* The aggregate's groups as "key value -> count" for a one-field group_by of ids. */
static long long group_count(th_resp_t *r, const char *field, long long key)
{
    size_t i;
    json_t *g;
    json_array_foreach(jget(r, "groups"), i, g)
    {
        if (jint(json_object_get(g, "key"), field) == key)
            return jint(g, "count");
    }
    return 0;
}

START_TEST(scope_matrix_for_aggregate_and_export)
{
    /* Owner i has i + 1 customers, so that every owner's count is its own. */
    rec_t c[15];
    long long ord[30], con[15];
    int nc = 0;
    for (int i = 0; i < 5; i++)
        for (int k = 0; k <= i; k++) {
            c[nc] = make_cust(owners5[i], "[\"scope\"]", k % 2 ? "customer" : "prospect");
            ord[2 * nc] = make_order(c[nc].id, fmt("2003-%02d-10T12:00:00Z", 1 + nc % 12), "10.25");
            ord[2 * nc + 1] = make_order(c[nc].id, fmt("2003-%02d-20T12:00:00Z", 1 + nc % 12), "99.99");
            con[nc] = make_contact(c[nc].id, "[\"scope\"]");
            nc++;
        }
    /* Deleted records count for nobody. */
    rec_t gone = make_cust(REP1, "[\"scope\"]", "customer");
    long long gone_order = make_order(c[0].id, "2003-06-01T00:00:00Z", "5.00");
    long long gone_contact = make_contact(c[0].id, "[\"scope\"]");
    expect_status(http_delete(DIRECTOR, fmt("/v1/orders/%lld", gone_order), NULL), 204);
    expect_status(http_delete(DIRECTOR, fmt("/v1/contacts/%lld", gone_contact), NULL), 204);
    expect_status(http_delete(DIRECTOR, fmt("/v1/customers/%lld", gone.id), NULL), 204);
    const char *year = "ordered_after=2002-12-31T23:59:59Z&ordered_before=2004-01-01T00:00:00Z";

    for (int a = 0; a < NUSERS; a++) {
        long long want_c[15], want_o[30], want_k[15];
        size_t n = 0;
        for (int i = 0; i < nc; i++)
            if (can_read(a, c[i].owner, c[i].team)) {
                want_c[n] = c[i].id;
                want_o[2 * n] = ord[2 * i];
                want_o[2 * n + 1] = ord[2 * i + 1];
                want_k[n] = con[i];
                n++;
            }
        const char *who = who_name[a];

        /* Customers: counts per owner are the oracle's. */
        th_resp_t *r = http_get(a, "/v1/customers/aggregate?group_by=owner_id&tag=scope");
        expect_status_msg(r, 200, "%s: customers aggregate", who);
        size_t owners_seen = 0;
        for (int i = 0; i < 5; i++) {
            long long want = can_read(a, users[owners5[i]].id, users[owners5[i]].team_id) ? i + 1 : 0;
            owners_seen += want > 0;
            ck_assert_msg(group_count(r, "owner_id", users[owners5[i]].id) == want,
                          "%s: customers of %s counted %lld, wanted %lld", who, who_name[owners5[i]],
                          group_count(r, "owner_id", users[owners5[i]].id), want);
        }
        ck_assert_msg(json_array_size(jget(r, "groups")) == owners_seen, "%s: %zu owner groups, wanted %zu", who,
                      json_array_size(jget(r, "groups")), owners_seen);
        ck_assert_msg(jint(jget(r, "totals"), "count") == (long long)n, "%s: customers total %lld, wanted %zu", who,
                      jint(jget(r, "totals"), "count"), n);

        /* Orders and contacts follow their customer. */
        r = http_get(a, fmt("/v1/orders/aggregate?group_by=customer_id&metrics=count,sum:total&%s", year));
        expect_status_msg(r, 200, "%s: orders aggregate", who);
        ck_assert_msg(json_array_size(jget(r, "groups")) == n, "%s: %zu customers with orders, wanted %zu", who,
                      json_array_size(jget(r, "groups")), n);
        for (size_t i = 0; i < n; i++)
            ck_assert_msg(group_count(r, "customer_id", want_c[i]) == 2, "%s: customer %lld has %lld orders, wanted 2",
                          who, want_c[i], group_count(r, "customer_id", want_c[i]));
        ck_assert_int_eq(jint(jget(r, "totals"), "count"), 2 * n);
        if (n == 0)
            ck_assert(json_is_null(json_object_get(jget(r, "totals"), "sum:total")));
        else
            ck_assert_str_eq(jstr(jget(r, "totals"), "sum:total"), fmt("%zu.%02zu", 11024 * n / 100, 11024 * n % 100));

        r = http_get(a, "/v1/contacts/aggregate?group_by=customer_id&tag=scope");
        expect_status_msg(r, 200, "%s: contacts aggregate", who);
        ck_assert_msg(json_array_size(jget(r, "groups")) == n, "%s: %zu customers with contacts, wanted %zu", who,
                      json_array_size(jget(r, "groups")), n);
        for (size_t i = 0; i < n; i++)
            ck_assert_int_eq(group_count(r, "customer_id", want_c[i]), 1);
        ck_assert_int_eq(jint(jget(r, "totals"), "count"), n);

        /* Exports hold exactly the visible records, in every format. */
        stream_t s = export_ok(a, "/v1/customers/export?tag=scope");
        expect_ids(ndjson_items(&s), want_c, n);
        s = export_ok(a, fmt("/v1/orders/export?%s", year));
        expect_ids(ndjson_items(&s), want_o, 2 * n);
        s = export_ok(a, "/v1/contacts/export?tag=scope");
        expect_ids(ndjson_items(&s), want_k, n);
        s = export_ok(a, "/v1/contacts/export?tag=scope&format=csv&fields=id,customer_id");
        json_t *rows = csv_parse(s.body, s.len);
        ck_assert_int_eq(json_array_size(rows), n + 1);
        for (size_t i = 1; i <= n; i++) {
            long long id = atoll(json_string_value(json_array_get(json_array_get(rows, i), 0)));
            ck_assert_msg(in_ids(want_k, n, id), "%s: contact %lld in the CSV export", who, id);
        }

        /* Over the whole tables: the aggregate's totals and the export's rows are the oracle's counts. */
        long long all_c = sql_ll("SELECT count(*) FROM customers WHERE deleted_at IS NULL AND %s", scope_where(a, ""));
        long long all_o = sql_ll("SELECT count(*) FROM orders t JOIN customers c ON c.id = t.customer_id"
                                 " WHERE t.deleted_at IS NULL AND %s",
                                 scope_where(a, "c."));
        r = http_get(a, "/v1/customers/aggregate?group_by=status");
        expect_status(r, 200);
        ck_assert_msg(jint(jget(r, "totals"), "count") == all_c, "%s: all customers %lld, wanted %lld", who,
                      jint(jget(r, "totals"), "count"), all_c);
        r = http_get(a, "/v1/orders/aggregate?group_by=status");
        expect_status(r, 200);
        ck_assert_msg(jint(jget(r, "totals"), "count") == all_o, "%s: all orders %lld, wanted %lld", who,
                      jint(jget(r, "totals"), "count"), all_o);
        s = get_stream(a, "/v1/orders/export?fields=id");
        ck_assert_int_eq(s.status, 200);
        ck_assert(s.complete);
        json_t *items = ndjson_items(&s);
        free(s.body);
        ck_assert_msg(json_array_size(items) == (size_t)all_o, "%s: %zu orders exported, wanted %lld", who,
                      json_array_size(items), all_o);
        const char *got = "";
        size_t i;
        json_t *it;
        json_array_foreach(items, i, it)
        {
            got = fmt("%s%s%lld", got, i ? "," : "", jint(it, "id"));
        }
        const char *want = sql_text("SELECT coalesce(string_agg(t.id::text, ',' ORDER BY t.id), '') FROM orders t"
                                    " JOIN customers c ON c.id = t.customer_id WHERE t.deleted_at IS NULL AND %s",
                                    scope_where(a, "c."));
        ck_assert_msg(strcmp(got, want) == 0, "%s: the orders exported are not the visible ones", who);
    }

    /* A role without the module: 403 on both, for orders ("none") and contacts (absent); customers still answer. */
    char token[2048];
    login_customers_only(token);
    static const char *const paths[] = {"/v1/orders/aggregate?group_by=status", "/v1/orders/export",
                                        "/v1/contacts/aggregate?group_by=department", "/v1/contacts/export?format=csv"};
    char auth[2200];
    const char *h = th_bearer(token, auth, sizeof(auth));
    for (size_t k = 0; k < 4; k++) {
        th_resp_t *r = call_as(-1, "GET", paths[k], NULL, NULL, h, NULL);
        expect_problem(r, 403, "forbidden");
    }
    th_resp_t *r = call_as(-1, "GET", "/v1/customers/aggregate?group_by=owner_id&tag=scope", NULL, NULL, h, NULL);
    expect_status(r, 200);
    ck_assert_int_eq(jint(jget(r, "totals"), "count"), 15);
    r = call_as(-1, "GET", "/v1/customers/export?tag=scope&fields=id", NULL, NULL, h, NULL);
    expect_status(r, 200);

    /* No token: 401 before anything else. */
    expect_problem(http_get(-1, "/v1/customers/aggregate?group_by=status"), 401, "unauthenticated");
    expect_problem(http_get(-1, "/v1/contacts/export"), 401, "unauthenticated");
}
END_TEST

/* --- aggregates against SQL -------------------------------------------------------------- */

START_TEST(aggregate_customers_equal_sql)
{
    ensure_agg_data();
    static const int roles[] = {DIRECTOR, MANAGER, REP2, REPS, ANALYST};
    for (size_t i = 0; i < sizeof(roles) / sizeof(roles[0]); i++) {
        const char *from = fmt(AGG_C " AND %s", scope_where(roles[i], "t."));
        check_agg(roles[i], "customers", "status", "credit_limit", "tag=agg", from, "t.status");
        check_agg(roles[i], "customers", "created_at:quarter,owner_id", "credit_limit", "tag=agg", from,
                  QUARTER("t.created_at"), "t.owner_id");
    }
    check_agg(DIRECTOR, "customers", "owner_id", "credit_limit", "tag=agg", AGG_C, "t.owner_id");
    check_agg(DIRECTOR, "customers", "team_id", "credit_limit", "tag=agg", AGG_C, "t.team_id");
    check_agg(DIRECTOR, "customers", "created_at:month,status", "credit_limit", "tag=agg", AGG_C, MONTH("t.created_at"),
              "t.status");
    check_agg(DIRECTOR, "customers", "status,kind", NULL, "tag=agg", AGG_C, "t.status", "t.kind");
    check_agg(DIRECTOR, "customers", "created_at:year", "credit_limit", "tag=agg", AGG_C, YEAR("t.created_at"));
    check_agg(DIRECTOR, "customers", "created_at:week", NULL, "tag=agg&created_after=2020-02-01T00:00:00Z",
              AGG_C " AND t.created_at > '2020-02-01T00:00:00Z'", WEEK("t.created_at"));

    /* The list's filters apply. */
    check_agg(DIRECTOR, "customers", "owner_id", "credit_limit", "tag=agg-vip",
              "FROM customers t WHERE t.deleted_at IS NULL AND t.tags @> '{agg-vip}'", "t.owner_id");
    check_agg(DIRECTOR, "customers", "owner_id", "credit_limit", "tag=agg&status=customer",
              AGG_C " AND t.status = 'customer'", "t.owner_id");
    check_agg(DIRECTOR, "customers", "kind", "credit_limit", "tag=agg&q=ZEBRA",
              AGG_C " AND (t.name ILIKE '%zebra%' OR t.email::text ILIKE '%zebra%')", "t.kind");
    check_agg(DIRECTOR, "customers", "status", "credit_limit", fmt("tag=agg&owner_id=%lld", users[REPS].id),
              fmt(AGG_C " AND t.owner_id = %lld", users[REPS].id), "t.status");
    check_agg(DIRECTOR, "customers", "created_at:quarter", "credit_limit",
              "tag=agg&created_after=2019-12-31T23:59:59Z&created_before=2021-01-01T00:00:00Z",
              AGG_C " AND t.created_at > '2019-12-31T23:59:59Z' AND t.created_at < '2021-01-01T00:00:00Z'",
              QUARTER("t.created_at"));
    check_agg(MANAGER, "customers", "status", "credit_limit", "tag=agg&q=zebra",
              fmt(AGG_C " AND (t.name ILIKE '%%zebra%%' OR t.email::text ILIKE '%%zebra%%') AND %s",
                  scope_where(MANAGER, "t.")),
              "t.status");
}
END_TEST

START_TEST(aggregate_orders_equal_sql)
{
    ensure_agg_data();
    /* The two-key report of a sales chart: per quarter and status, with every metric of the total. */
    check_agg(DIRECTOR, "orders", "ordered_at:quarter,status", "total", AGG_O_WINDOW, AGG_O, QUARTER("t.ordered_at"),
              "t.status");
    check_agg(DIRECTOR, "orders", "status,ordered_at:year", "total", AGG_O_WINDOW, AGG_O, "t.status",
              YEAR("t.ordered_at"));
    check_agg(DIRECTOR, "orders", "ordered_at:year,currency", "total", AGG_O_WINDOW, AGG_O, YEAR("t.ordered_at"),
              "t.currency");
    check_agg(DIRECTOR, "orders", "ordered_at:week", "total", AGG_O_WINDOW, AGG_O, WEEK("t.ordered_at"));
    check_agg(DIRECTOR, "orders", "ordered_at:month", "total",
              "ordered_after=2012-12-31T23:59:59Z&ordered_before=2014-01-01T00:00:00Z",
              AGG_O " AND t.ordered_at > '2012-12-31T23:59:59Z' AND t.ordered_at < '2014-01-01T00:00:00Z'",
              MONTH("t.ordered_at"));
    check_agg(DIRECTOR, "orders", "ordered_at:day", "total",
              "ordered_after=2014-02-27T00:00:00Z&ordered_before=2014-04-02T00:00:00Z",
              AGG_O " AND t.ordered_at > '2014-02-27T00:00:00Z' AND t.ordered_at < '2014-04-02T00:00:00Z'",
              DAY("t.ordered_at"));
    check_agg(DIRECTOR, "orders", "ordered_at:year", "total", AGG_O_WINDOW "&status=completed",
              AGG_O " AND t.status = 'completed'", YEAR("t.ordered_at"));
    long long cust = sql_ll("SELECT customer_id FROM orders WHERE deleted_at IS NULL AND ordered_at >= '2011-01-01'"
                            " ORDER BY id LIMIT 1");
    check_agg(DIRECTOR, "orders", "status", "total", fmt("%s&customer_id=%lld", AGG_O_WINDOW, cust),
              fmt(AGG_O " AND t.customer_id = %lld", cust), "t.status");
    /* Scoped through the customer. */
    static const int roles[] = {MANAGER, REP1, REPS, INTEGRATION, ANALYST};
    for (size_t i = 0; i < sizeof(roles) / sizeof(roles[0]); i++) {
        const char *from = fmt(AGG_O " AND %s", scope_where(roles[i], "c."));
        check_agg(roles[i], "orders", "ordered_at:quarter,status", "total", AGG_O_WINDOW, from, QUARTER("t.ordered_at"),
                  "t.status");
        check_agg(roles[i], "orders", "currency", "total", AGG_O_WINDOW, from, "t.currency");
    }
}
END_TEST

START_TEST(aggregate_contacts_equal_sql)
{
    ensure_agg_data();
    check_agg(DIRECTOR, "contacts", "department", NULL, "tag=agg", AGG_K, "t.department");
    check_agg(DIRECTOR, "contacts", "is_primary,preferred_channel", NULL, "tag=agg", AGG_K, "t.is_primary",
              "t.preferred_channel");
    check_agg(DIRECTOR, "contacts", "do_not_contact", NULL, "tag=agg&q=LAST1",
              AGG_K " AND (t.first_name ILIKE '%last1%' OR t.last_name ILIKE '%last1%' OR t.email::text ILIKE '%last1%'"
                    " OR t.phone ILIKE '%last1%' OR t.mobile ILIKE '%last1%')",
              "t.do_not_contact");
    check_agg(DIRECTOR, "contacts", "created_at:year", NULL, "tag=agg", AGG_K, YEAR("t.created_at"));
    static const int roles[] = {MANAGER, REP2, REPS};
    for (size_t i = 0; i < sizeof(roles) / sizeof(roles[0]); i++)
        check_agg(roles[i], "contacts", "department,do_not_contact", NULL, "tag=agg",
                  fmt(AGG_K " AND %s", scope_where(roles[i], "c.")), "t.department", "t.do_not_contact");
}
END_TEST

START_TEST(aggregate_stops_at_1000_groups)
{
    ensure_agg_data();
    /* Every day of 2011-2015 has a live order: the first 1,000 days make 1,000 groups, one more day 1,001. */
    const char *day1000 = sql_text("SELECT to_char(date '2011-01-01' + 1000, 'YYYY-MM-DD')");
    const char *day1001 = sql_text("SELECT to_char(date '2011-01-01' + 1001, 'YYYY-MM-DD')");
    const char *from = fmt(AGG_O " AND t.ordered_at < '%sT00:00:00Z'", day1000);
    ck_assert_int_eq(sql_ll("SELECT count(DISTINCT " DAY("t.ordered_at") ") %s", from), 1000);
    check_agg(DIRECTOR, "orders", "ordered_at:day", "total",
              fmt("ordered_after=2010-12-31T23:59:59Z&ordered_before=%sT00:00:00Z", day1000), from,
              DAY("t.ordered_at"));

    th_resp_t *r =
        http_get(DIRECTOR, fmt("/v1/orders/aggregate?group_by=ordered_at:day&ordered_after=2010-12-31T23:59:59Z"
                               "&ordered_before=%sT00:00:00Z",
                               day1001));
    expect_problem(r, 422, "validation-failed");
    expect_error(r, "group_by", NULL);
    /* Two keys multiply: 1,826 days alone, or days by status. */
    r = http_get(DIRECTOR, "/v1/orders/aggregate?group_by=ordered_at:day,status&" AGG_O_WINDOW);
    expect_status(r, 422);
    expect_error(r, "group_by", NULL);
    ck_assert_int_gt(sql_ll("SELECT count(DISTINCT " DAY("t.created_at") ") " AGG_C), 1000);
    r = http_get(DIRECTOR, "/v1/customers/aggregate?group_by=created_at:day&tag=agg");
    expect_status(r, 422);
    expect_error(r, "group_by", NULL);
    /* The same report narrowed by a filter fits. */
    r = http_get(DIRECTOR,
                 "/v1/customers/aggregate?group_by=created_at:day&tag=agg&created_after=2021-06-01T00:00:00Z");
    expect_status(r, 200);
}
END_TEST

START_TEST(aggregate_defaults_and_empty_results)
{
    ensure_agg_data();
    /* metrics defaults to count: each group is its key and its count. */
    th_resp_t *r = http_get(DIRECTOR, "/v1/customers/aggregate?group_by=kind&tag=agg");
    expect_status(r, 200);
    ck_assert_str_eq(header(r, "content-type"), JSON_T);
    size_t i;
    json_t *g;
    json_array_foreach(jget(r, "groups"), i, g)
    {
        ck_assert_int_eq(json_object_size(g), 2);
        ck_assert(json_is_integer(json_object_get(g, "count")));
        ck_assert_int_eq(json_object_size(json_object_get(g, "key")), 1);
    }
    ck_assert_int_eq(json_object_size(jget(r, "totals")), 1);
    check_agg(DIRECTOR, "customers", "kind", NULL, "tag=agg", AGG_C, "t.kind");

    /* Nothing visible: no groups, a count of 0 and no value for the decimals. */
    r = http_get(DIRECTOR, "/v1/customers/aggregate?group_by=status&metrics=count,sum:credit_limit,avg:credit_limit,"
                           "min:credit_limit,max:credit_limit&tag=no-such-tag");
    expect_status(r, 200);
    ck_assert_int_eq(json_array_size(jget(r, "groups")), 0);
    json_t *t = jget(r, "totals");
    ck_assert(json_is_integer(json_object_get(t, "count")));
    ck_assert_int_eq(jint(t, "count"), 0);
    ck_assert(json_is_null(json_object_get(t, "sum:credit_limit")));
    ck_assert(json_is_null(json_object_get(t, "avg:credit_limit")));
    ck_assert(json_is_null(json_object_get(t, "min:credit_limit")));
    ck_assert(json_is_null(json_object_get(t, "max:credit_limit")));
    /* A rep without customers of that tag sees the same. */
    r = http_get(REP1, "/v1/orders/aggregate?group_by=status&ordered_before=1990-01-01T00:00:00Z");
    expect_status(r, 200);
    ck_assert_int_eq(json_array_size(jget(r, "groups")), 0);
    ck_assert_int_eq(jint(jget(r, "totals"), "count"), 0);

    /* Decimals are strings at the field's scale; avg rounds half away from zero at that scale. */
    const char *tag = uniq("avg");
    rec_t a = make_cust(REP1, fmt("[\"%s\"]", tag), "customer");
    rec_t b = make_cust(REP1, fmt("[\"%s\"]", tag), "customer");
    expect_status(http_patch(DIRECTOR, fmt("/v1/customers/%lld", a.id), "{\"credit_limit\":\"0.01\"}", NULL), 200);
    expect_status(http_patch(DIRECTOR, fmt("/v1/customers/%lld", b.id), "{\"credit_limit\":\"0.02\"}", NULL), 200);
    r = http_get(REP1, fmt("/v1/customers/aggregate?group_by=status&metrics=avg:credit_limit,sum:credit_limit,count"
                           "&tag=%s",
                           tag));
    expect_status(r, 200);
    g = json_array_get(jget(r, "groups"), 0);
    ck_assert_str_eq(jstr(g, "avg:credit_limit"), "0.02");
    ck_assert_str_eq(jstr(g, "sum:credit_limit"), "0.03");
    ck_assert_int_eq(jint(g, "count"), 2);
    ck_assert_str_eq(jstr(json_object_get(g, "key"), "status"), "customer");
}
END_TEST

/* 400 naming `field` for an aggregate query. */
static void agg_bad_(const char *coll, const char *query, const char *field, int line)
{
    th_resp_t *r = http_get(DIRECTOR, fmt("/v1/%s/aggregate?%s", coll, query));
    ck_assert_msg(r->status == 400, "line %d: %s %s: expected 400, got %d: %.300s", line, coll, query, r->status,
                  r->body);
    expect_problem_(r, 400, "bad-request", line);
    expect_error_(r, field, NULL, line);
}
#define agg_bad(coll, query, field) agg_bad_((coll), (query), (field), __LINE__)

START_TEST(aggregate_rejects_bad_parameters)
{
    agg_bad("customers", "", "group_by");
    agg_bad("customers", "metrics=count", "group_by");
    agg_bad("customers", "group_by=", "group_by");
    agg_bad("customers", "group_by=nope", "group_by");
    agg_bad("customers", "group_by=name", "group_by");         /* a field, but not one to group by */
    agg_bad("customers", "group_by=credit_limit", "group_by"); /* a metric field */
    agg_bad("customers", "group_by=created_at", "group_by");   /* a timestamp without a bucket */
    agg_bad("customers", "group_by=created_at:hour", "group_by");
    agg_bad("customers", "group_by=created_at:", "group_by");
    agg_bad("customers", "group_by=created_at:month:x", "group_by");
    agg_bad("customers", "group_by=status:month", "group_by"); /* a bucket on a field that is not a time */
    agg_bad("customers", "group_by=status,kind,owner_id", "group_by");
    agg_bad("customers", "group_by=status,status", "group_by");
    agg_bad("customers", "group_by=status,", "group_by");
    agg_bad("customers", "group_by=STATUS", "group_by");
    agg_bad("customers", fmt("group_by=%s", repeat('a', 300)), "group_by");
    agg_bad("customers", "group_by=status%27%3B--", "group_by");
    agg_bad("customers", "group_by=status&metrics=", "metrics");
    agg_bad("customers", "group_by=status&metrics=sum", "metrics");
    agg_bad("customers", "group_by=status&metrics=median:credit_limit", "metrics");
    agg_bad("customers", "group_by=status&metrics=sum:nope", "metrics");
    agg_bad("customers", "group_by=status&metrics=sum:status", "metrics");
    agg_bad("customers", "group_by=status&metrics=count:credit_limit", "metrics");
    agg_bad("customers", "group_by=status&metrics=count,count", "metrics");
    agg_bad("customers", "group_by=status&metrics=count,,sum:credit_limit", "metrics");
    agg_bad("customers", "group_by=status&metrics=sum:credit_limit%27", "metrics");
    agg_bad("customers", fmt("group_by=status&metrics=%s", repeat('x', 500)), "metrics");
    agg_bad("orders", "group_by=status&metrics=sum:credit_limit", "metrics"); /* another resource's field */
    agg_bad("orders", "group_by=lines", "group_by");
    agg_bad("orders", "group_by=customer_external_id", "group_by");
    agg_bad("contacts", "group_by=birthday", "group_by");
    agg_bad("contacts", "group_by=department&metrics=sum:first_name", "metrics");
    /* The list's own parameters are checked like in the list; others are unknown. */
    agg_bad("customers", "group_by=status&status=bogus", "status");
    agg_bad("customers", "group_by=status&owner_id=abc", "owner_id");
    agg_bad("customers", "group_by=status&created_after=yesterday", "created_after");
    agg_bad("customers", "group_by=status&q=", "q");
    agg_bad("customers", "group_by=status&limit=10", "limit");
    agg_bad("customers", "group_by=status&sort=name", "sort");
    agg_bad("customers", "group_by=status&group_by=kind", "group_by");
    agg_bad("orders", "group_by=status&ordered_after=2020-13-01T00:00:00Z", "ordered_after");
    agg_bad("orders", "group_by=status&tag=x", "tag");
}
END_TEST

/* --- exports --------------------------------------------------------------------------- */

/* One list document or export line, compared as canonical text. */
typedef struct {
    long long id;
    char *text;
} doc_t;

static int cmp_doc(const void *a, const void *b)
{
    long long x = ((const doc_t *)a)->id, y = ((const doc_t *)b)->id;
    return x < y ? -1 : x > y;
}

START_TEST(export_of_100000_equals_the_paginated_list)
{
    ensure_big_data();
    long long want = sql_ll("SELECT count(*) FROM customers WHERE deleted_at IS NULL AND tags @> '{big}'");
    ck_assert_int_eq(want, BIG_ROWS);

    /* The list, 200 at a time by created_at (ties by id), documents kept as canonical text. */
    doc_t *docs = malloc(sizeof(*docs) * (size_t)(want + 1));
    size_t n = 0;
    const char *cursor = NULL;
    char auth[2200];
    const char *h[] = {th_bearer(users[DIRECTOR].token, auth, sizeof(auth)), NULL};
    for (int pages = 0;; pages++) {
        ck_assert_int_lt(pages, BIG_ROWS / 200 + 2);
        char path[512];
        snprintf(path, sizeof(path), "/v1/customers?tag=big&sort=created_at&limit=200%s%s", cursor ? "&cursor=" : "",
                 cursor ? cursor : "");
        th_resp_t r;
        ck_assert_int_eq(th_http(api.port, "GET", path, h, NULL, 0, &r), 0);
        ck_assert_msg(r.status == 200, "list page %d: %d %.300s", pages, r.status, r.body);
        json_t *data = json_object_get(r.json, "data");
        size_t i;
        json_t *it;
        json_array_foreach(data, i, it)
        {
            ck_assert_uint_lt(n, (size_t)want + 1);
            docs[n].id = jint(it, "id");
            docs[n].text = json_dumps(it, JSON_COMPACT | JSON_SORT_KEYS);
            n++;
        }
        json_t *next = json_object_get(r.json, "next_cursor");
        cursor = json_is_string(next) ? fmt("%s", json_string_value(next)) : NULL;
        th_resp_free(&r);
        if (cursor == NULL)
            break;
    }
    ck_assert_int_eq(n, want);
    qsort(docs, n, sizeof(*docs), cmp_doc);
    for (size_t i = 1; i < n; i++)
        ck_assert_msg(docs[i].id != docs[i - 1].id, "the list gave customer %lld twice", docs[i].id);

    /* The export, as NDJSON in id order: the same documents, exactly. */
    stream_t s = get_stream(DIRECTOR, "/v1/customers/export?tag=big&format=ndjson");
    ck_assert_msg(s.status == 200, "export: %d %.300s", s.status, s.body);
    ck_assert_msg(s.complete, "the export was cut short after %zu bytes", s.len);
    ck_assert_str_eq(s.ctype, NDJSON_T);
    size_t k = 0;
    for (const char *p = s.body, *end = s.body + s.len; p < end; k++) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        ck_assert_msg(nl != NULL, "export line %zu has no LF", k);
        json_t *o = json_loadb(p, (size_t)(nl - p), 0, NULL);
        ck_assert_msg(o != NULL, "export line %zu is not JSON: %.200s", k, p);
        ck_assert_msg(k < n, "the export has more than the list's %zu records", n);
        ck_assert_msg(jint(o, "id") == docs[k].id, "export record %zu is customer %lld, the list's is %lld", k,
                      jint(o, "id"), docs[k].id);
        char *text = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
        ck_assert_msg(strcmp(text, docs[k].text) == 0, "customer %lld: export\n %.600s\nlist\n %.600s", docs[k].id,
                      text, docs[k].text);
        free(text);
        json_decref(o);
        p = nl + 1;
    }
    ck_assert_msg(k == n, "the export has %zu records, the list %zu", k, n);
    free(s.body);
    for (size_t i = 0; i < n; i++)
        free(docs[i].text);
    free(docs);

    /* Filters apply to the whole set: the export's count is the list's. */
    s = get_stream(DIRECTOR, "/v1/customers/export?tag=big-vip&status=partner&fields=id,tags,status");
    ck_assert_int_eq(s.status, 200);
    ck_assert(s.complete);
    json_t *items = ndjson_items(&s);
    free(s.body);
    ck_assert_int_eq(json_array_size(items), sql_ll("SELECT count(*) FROM customers WHERE deleted_at IS NULL"
                                                    " AND tags @> '{big-vip}' AND status = 'partner'"));
    ck_assert_int_eq(json_array_size(items), api_count(DIRECTOR, "tag=big-vip&status=partner"));
    json_t *it = json_array_get(items, 0);
    ck_assert_int_eq(json_object_size(it), 3);
    ck_assert_str_eq(jstr(it, "status"), "partner");
}
END_TEST

/* Customers made through the API whose fields need every CSV rule. */
static const char *const tricky_names[] = {
    "Comma, Inc.", "Say \"hi\" GmbH", "Two lines", "CR LF Ltd", "Ünïcödé ✓ Oy", "Plain", "\"Quoted\"", "a,\"b\",c",
};
#define NTRICKY (sizeof(tricky_names) / sizeof(tricky_names[0]))

static const char *make_tricky(void)
{
    const char *tag = uniq("csv");
    for (size_t i = 0; i < NTRICKY; i++) {
        json_t *body = json_pack("{s:s, s:s, s:I, s:[s, s], s:s, s:s}", "kind", i % 2 ? "person" : "company", "name",
                                 tricky_names[i], "owner_id", (json_int_t)users[owners5[i % 5]].id, "tags", tag,
                                 i % 3 == 0 ? "x,y" : "semi", "status", i % 2 ? "customer" : "partner", "credit_limit",
                                 i % 2 ? "1234.50" : "0.07");
        if (i % 4 == 0)
            json_object_set_new(body, "email", json_string(fmt("buyer%zu@example.com", i)));
        if (i == 2)
            json_object_set_new(body, "address", json_pack("{s:s, s:s}", "city", "Paris, FR", "line1", "1 \"rue\""));
        if (i == 3)
            json_object_set_new(body, "attrs", json_pack("{s:i, s:s}", "n", 3, "note", "a,b"));
        th_resp_t *r = http_post(DIRECTOR, "/v1/customers", jdump(body));
        expect_status(r, 201);
        /* Names hold no line breaks through the API; imported data may. The CSV must quote whatever is stored. */
        if (i == 2)
            sql_run("UPDATE customers SET name = E'Two\\nlines' WHERE id = %lld", jint(r->json, "id"));
        if (i == 3)
            sql_run("UPDATE customers SET name = E'CR\\r\\nLF Ltd' WHERE id = %lld", jint(r->json, "id"));
    }
    return tag;
}

static const char *const customer_cols[] = {"id",         "external_id", "kind",     "name",    "email", "phone",
                                            "industry",   "status",      "owner_id", "team_id", "tags",  "credit_limit",
                                            "created_at", "updated_at",  "version",  NULL};

START_TEST(export_csv_follows_rfc_4180)
{
    const char *tag = make_tricky();
    json_t *docs = by_id(list_all(DIRECTOR, fmt("/v1/customers?tag=%s", tag), 200));
    ck_assert_int_eq(json_array_size(docs), NTRICKY);

    /* Default columns: every flat field in the description's order; CRLF; quoting only where needed; no BOM. */
    stream_t s = export_ok(DIRECTOR, fmt("/v1/customers/export?format=csv&tag=%s", tag));
    const char *want = csv_expected(docs, customer_cols, 0);
    expect_bytes("CSV export", s.body, s.len, want, strlen(want));
    ck_assert(strncmp(s.body,
                      "id,external_id,kind,name,email,phone,industry,status,owner_id,team_id,tags,credit_limit,"
                      "created_at,updated_at,version\r\n",
                      strlen("id,external_id,kind,name,email,phone,industry,status,owner_id,team_id,tags,credit_limit,"
                             "created_at,updated_at,version\r\n")) == 0);
    ck_assert_ptr_nonnull(strstr(s.body, ",\"Comma, Inc.\","));
    ck_assert_ptr_nonnull(strstr(s.body, ",\"Say \"\"hi\"\" GmbH\","));
    ck_assert_ptr_nonnull(strstr(s.body, ",\"Two\nlines\","));
    ck_assert_ptr_nonnull(strstr(s.body, ",\"CR\r\nLF Ltd\","));
    ck_assert_ptr_nonnull(strstr(s.body, ",\"\"\"Quoted\"\"\","));
    ck_assert_ptr_nonnull(strstr(s.body, fmt(",\"%s;x,y\",", tag)));
    ck_assert_ptr_nonnull(strstr(s.body, fmt(",%s;semi,", tag)));
    /* Read back by a strict parser, every name is what was stored. */
    json_t *rows = csv_parse(s.body, s.len);
    ck_assert_int_eq(json_array_size(rows), NTRICKY + 1);
    for (size_t i = 0; i < NTRICKY; i++) {
        json_t *row = json_array_get(rows, i + 1);
        ck_assert_int_eq(json_array_size(row), 15);
        ck_assert_str_eq(json_string_value(json_array_get(row, 3)), jstr(json_array_get(docs, i), "name"));
        ck_assert_int_eq(atoll(json_string_value(json_array_get(row, 0))), jint(json_array_get(docs, i), "id"));
    }

    /* bom=true: the UTF-8 byte order mark first, then the same bytes; bom=false: none. */
    stream_t b = export_ok(DIRECTOR, fmt("/v1/customers/export?format=csv&bom=true&tag=%s", tag));
    ck_assert_int_eq(b.len, s.len + 3);
    ck_assert(memcmp(b.body, "\xEF\xBB\xBF", 3) == 0);
    expect_bytes("CSV after the BOM", b.body + 3, b.len - 3, s.body, s.len);
    stream_t nb = export_ok(DIRECTOR, fmt("/v1/customers/export?format=csv&bom=false&tag=%s", tag));
    expect_bytes("CSV with bom=false", nb.body, nb.len, s.body, s.len);

    /* fields=: those columns, in the order given. */
    static const char *const cols[] = {"name", "id", "tags", "credit_limit", NULL};
    stream_t f =
        export_ok(DIRECTOR, fmt("/v1/customers/export?format=csv&fields=name,id,tags,credit_limit&tag=%s", tag));
    want = csv_expected(docs, cols, 0);
    expect_bytes("CSV with fields=", f.body, f.len, want, strlen(want));
    ck_assert(strncmp(f.body, "name,id,tags,credit_limit\r\n", 27) == 0);

    /* Filters apply. */
    json_t *partners = keep(json_array());
    size_t i;
    json_t *d;
    json_array_foreach(docs, i, d)
    {
        if (strcmp(jstr(d, "status"), "partner") == 0)
            json_array_append(partners, d);
    }
    stream_t p = export_ok(DIRECTOR, fmt("/v1/customers/export?format=csv&status=partner&tag=%s", tag));
    want = csv_expected(partners, customer_cols, 0);
    expect_bytes("CSV with status=partner", p.body, p.len, want, strlen(want));
    /* ...and so do scopes: a rep's CSV holds its own rows only. */
    json_t *own = keep(json_array());
    json_array_foreach(docs, i, d)
    {
        if (jint(d, "owner_id") == users[REP2].id)
            json_array_append(own, d);
    }
    p = export_ok(REP2, fmt("/v1/customers/export?format=csv&tag=%s", tag));
    want = csv_expected(own, customer_cols, 0);
    expect_bytes("CSV of rep.north2", p.body, p.len, want, strlen(want));
    /* No row: the header alone. */
    p = export_ok(DIRECTOR, "/v1/customers/export?format=csv&tag=no-such-tag&fields=id,name");
    expect_bytes("empty CSV", p.body, p.len, "id,name\r\n", 9);

    /* NDJSON with fields=: exactly those members. */
    stream_t n = export_ok(DIRECTOR, fmt("/v1/customers/export?fields=name,id&tag=%s", tag));
    json_t *items = ndjson_items(&n);
    ck_assert_int_eq(json_array_size(items), NTRICKY);
    json_array_foreach(items, i, d)
    {
        ck_assert_int_eq(json_object_size(d), 2);
        ck_assert_str_eq(jstr(d, "name"), jstr(json_array_get(docs, i), "name"));
    }
    /* Default format: NDJSON of whole documents, equal to the list's. */
    n = export_ok(DIRECTOR, fmt("/v1/customers/export?tag=%s", tag));
    items = ndjson_items(&n);
    ck_assert_int_eq(json_array_size(items), NTRICKY);
    json_array_foreach(items, i, d)
    {
        ck_assert_msg(json_equal(d, json_array_get(docs, i)), "record %zu differs", i);
    }
}
END_TEST

START_TEST(export_csv_writes_named_objects_as_json)
{
    const char *tag = make_tricky();
    json_t *docs = by_id(list_all(DIRECTOR, fmt("/v1/customers?tag=%s", tag), 200));
    /* Objects are left out by default, and come as JSON text when named. */
    static const char *const cols[] = {"id", "address", "attrs", "analytics", NULL};
    stream_t s =
        export_ok(DIRECTOR, fmt("/v1/customers/export?format=csv&fields=id,address,attrs,analytics&tag=%s", tag));
    const char *want = csv_expected(docs, cols, 0);
    expect_bytes("CSV with objects", s.body, s.len, want, strlen(want));
    json_t *rows = csv_parse(s.body, s.len);
    size_t i;
    json_t *d;
    json_array_foreach(docs, i, d)
    {
        json_t *row = json_array_get(rows, i + 1);
        const char *addr = json_string_value(json_array_get(row, 1));
        if (json_is_null(json_object_get(d, "address")))
            ck_assert_str_eq(addr, "");
        else
            ck_assert(json_equal(keep(jparse(addr)), json_object_get(d, "address")));
        ck_assert(json_equal(keep(jparse(json_string_value(json_array_get(row, 2)))), json_object_get(d, "attrs")));
    }

    /* An order's lines (an array of objects, left out of CSV by default) come as JSON text when named. */
    long long c = make_cust(REP1, fmt("[\"%s\"]", tag), "customer").id;
    th_resp_t *r =
        http_post(DIRECTOR, "/v1/orders",
                  fmt("{\"customer_id\":%lld,\"ordered_at\":\"1999-05-05T10:00:00Z\",\"status\":\"completed\","
                      "\"currency\":\"EUR\",\"total\":\"25.00\",\"lines\":[{\"sku\":\"A-1\",\"name\":\"Bolt, "
                      "M6\",\"quantity\":2,\"unit_price\":\"10.00\"},{\"sku\":\"B\",\"quantity\":1,"
                      "\"unit_price\":\"5.00\"}]}",
                      c));
    expect_status(r, 201);
    json_t *order = r->json;
    stream_t o = export_ok(DIRECTOR, fmt("/v1/orders/export?format=csv&customer_id=%lld", c));
    ck_assert_msg(strstr(o.body, "lines") == NULL, "lines in a default CSV export: %.300s", o.body);
    o = export_ok(DIRECTOR, fmt("/v1/orders/export?format=csv&fields=id,lines,total&customer_id=%lld", c));
    rows = csv_parse(o.body, o.len);
    ck_assert_int_eq(json_array_size(rows), 2);
    const char *cell = json_string_value(json_array_get(json_array_get(rows, 1), 1));
    json_t *lines = json_loads(cell, 0, NULL);
    ck_assert_msg(lines != NULL && json_equal(lines, json_object_get(order, "lines")),
                  "fields=lines in CSV: the cell is \"%s\", wanted the lines as JSON text %s", cell,
                  jdump(json_incref(json_object_get(order, "lines"))));
    json_decref(lines);
}
END_TEST

static const char *const order_cols[] = {"id",    "external_id", "customer_id", "ordered_at", "status", "currency",
                                         "total", "created_at",  "updated_at",  "version",    NULL};
static const char *const contact_cols[] = {"id",
                                           "external_id",
                                           "customer_id",
                                           "first_name",
                                           "last_name",
                                           "title",
                                           "department",
                                           "reports_to_id",
                                           "email",
                                           "phone",
                                           "mobile",
                                           "is_primary",
                                           "birthday",
                                           "preferred_channel",
                                           "do_not_contact",
                                           "notes",
                                           "tags",
                                           "created_at",
                                           "updated_at",
                                           "version",
                                           NULL};

START_TEST(export_csv_of_orders_and_contacts)
{
    /* Orders: numbers, decimals and times as the documents show them; lines (objects) left out. */
    rec_t c = make_cust(REP2, "[\"csv-children\"]", "customer");
    for (int i = 0; i < 3; i++)
        make_order(c.id, fmt("1998-0%d-15T08:30:00Z", i + 1), i == 1 ? "1234567890.05" : "0.10");
    json_t *orders = by_id(list_all(REP2, fmt("/v1/orders?customer_id=%lld", c.id), 200));
    ck_assert_int_eq(json_array_size(orders), 3);
    stream_t s = export_ok(REP2, fmt("/v1/orders/export?format=csv&customer_id=%lld", c.id));
    const char *want = csv_expected(orders, order_cols, 0);
    expect_bytes("orders CSV", s.body, s.len, want, strlen(want));
    ck_assert_ptr_nonnull(strstr(s.body, ",1234567890.05,"));

    /* Contacts: booleans, dates, multi-line notes with commas and quotes, tags. */
    static const char *const bodies[] = {
        "{\"first_name\":\"Ann\",\"last_name\":\"Lee, Jr.\",\"is_primary\":true,\"birthday\":\"1980-02-29\","
        "\"preferred_channel\":\"email\",\"email\":\"ann@example.com\",\"notes\":\"Met at the fair.\\nSays \\\"call "
        "me\\\","
        " please\",\"tags\":[\"vip\",\"fair\"]}",
        "{\"last_name\":\"Bo\",\"do_not_contact\":true,\"notes\":\"tab\\there\",\"department\":\"R&D\"}",
        "{\"first_name\":\"Cy\",\"title\":\"CFO\",\"phone\":\"+49301234567\"}",
    };
    for (int i = 0; i < 3; i++) {
        json_t *b = jparse(bodies[i]);
        json_object_set_new(b, "customer_id", json_integer(c.id));
        expect_status(http_post(REP2, "/v1/contacts", jdump(b)), 201);
    }
    json_t *contacts = by_id(list_all(REP2, fmt("/v1/contacts?customer_id=%lld", c.id), 200));
    ck_assert_int_eq(json_array_size(contacts), 3);
    s = export_ok(REP2, fmt("/v1/contacts/export?format=csv&customer_id=%lld&bom=true", c.id));
    want = csv_expected(contacts, contact_cols, 1);
    expect_bytes("contacts CSV", s.body, s.len, want, strlen(want));
    ck_assert_ptr_nonnull(strstr(s.body, ",\"Met at the fair.\nSays \"\"call me\"\", please\","));
    ck_assert_ptr_nonnull(strstr(s.body, ",true,1980-02-29,email,false,"));
    json_t *rows = csv_parse(s.body + 3, s.len - 3);
    ck_assert_int_eq(json_array_size(rows), 4);
}
END_TEST

/* Inserts n customers tagged tag directly (for page boundaries). */
static void insert_tagged(const char *tag, int n)
{
    sql_run("INSERT INTO customers (kind, name, owner_id, team_id, tags)"
            " SELECT 'company', 'Page ' || i, %lld, %lld, ARRAY['%s'] FROM generate_series(1, %d) i",
            users[REP2].id, team_north, tag, n);
}

START_TEST(export_pages_end_where_the_set_ends)
{
    /* Pages are 1,000 records: exactly one page, exactly two, and one more than two. */
    static const int sizes[] = {999, 1000, 2000, 2001};
    for (size_t i = 0; i < 4; i++) {
        const char *tag = uniq("page");
        insert_tagged(tag, sizes[i]);
        stream_t s = get_stream(DIRECTOR, fmt("/v1/customers/export?tag=%s&fields=id,tags", tag));
        ck_assert_int_eq(s.status, 200);
        ck_assert_msg(s.complete, "%d records: the body was cut short", sizes[i]);
        json_t *items = ndjson_items(&s);
        free(s.body);
        ck_assert_msg(json_array_size(items) == (size_t)sizes[i], "%d records exported as %zu", sizes[i],
                      json_array_size(items));
        s = get_stream(REP2, fmt("/v1/customers/export?tag=%s&format=csv&fields=id", tag));
        ck_assert_int_eq(s.status, 200);
        ck_assert(s.complete);
        json_t *rows = csv_parse(s.body, s.len);
        free(s.body);
        ck_assert_int_eq(json_array_size(rows), sizes[i] + 1);
        /* rep.south1 owns none of them: an empty, whole body. */
        s = get_stream(REPS, fmt("/v1/customers/export?tag=%s", tag));
        ck_assert_int_eq(s.status, 200);
        ck_assert(s.complete);
        ck_assert_int_eq(s.len, 0);
        free(s.body);
    }
}
END_TEST

/* 400 naming `field` for an export query. */
static void export_bad_(const char *coll, const char *query, const char *field, int line)
{
    stream_t s = get_stream(DIRECTOR, fmt("/v1/%s/export?%s", coll, query));
    keep(s.body);
    ck_assert_msg(s.status == 400, "line %d: %s %s: expected 400, got %d: %.300s", line, coll, query, s.status, s.body);
    ck_assert_msg(s.ctype != NULL && strcmp(s.ctype, "application/problem+json") == 0, "line %d: content-type %s", line,
                  s.ctype);
    json_t *errors = json_object_get(s.json, "errors"), *e;
    size_t i;
    int found = 0;
    json_array_foreach(errors, i, e)
    {
        found |= strcmp(jstr(e, "field"), field) == 0;
    }
    ck_assert_msg(found, "line %d: %s %s: no error names %s: %.400s", line, coll, query, field, s.body);
}
#define export_bad(coll, query, field) export_bad_((coll), (query), (field), __LINE__)

START_TEST(export_rejects_bad_parameters)
{
    export_bad("customers", "format=xml", "format");
    export_bad("customers", "format=CSV", "format");
    export_bad("customers", "format=", "format");
    export_bad("customers", "format=csv&bom=yes", "bom");
    export_bad("customers", "format=csv&bom=1", "bom");
    export_bad("customers", "bom=true", "bom"); /* NDJSON has no BOM */
    export_bad("customers", "format=ndjson&bom=true", "bom");
    export_bad("customers", "fields=nope", "fields");
    export_bad("customers", "format=csv&fields=id,nope", "fields");
    export_bad("customers", "format=csv&fields=id,id", "fields");
    export_bad("customers", "format=csv&fields=", "fields");
    export_bad("customers", "format=csv&fields=id,", "fields");
    export_bad("customers", "fields=ID", "fields");
    export_bad("customers", "fields=id%27%3B--", "fields");
    export_bad("orders", "format=csv&fields=customer_external_id", "fields"); /* input only */
    export_bad("orders", "fields=credit_limit", "fields");
    export_bad("customers", "status=bogus", "status");
    export_bad("customers", "tag=", "tag");
    export_bad("customers", fmt("q=%s", repeat('q', 201)), "q");
    export_bad("customers", "owner_id=-1", "owner_id");
    export_bad("customers", "created_after=2020-02-30T00:00:00Z", "created_after");
    export_bad("customers", "limit=10", "limit");
    export_bad("customers", "cursor=abc", "cursor");
    export_bad("customers", "group_by=status", "group_by");
    export_bad("customers", "format=csv&format=ndjson", "format");
    export_bad("contacts", "is_primary=yes", "is_primary");
    export_bad("orders", "ordered_before=soon", "ordered_before");
    /* No token: 401. */
    stream_t s = get_stream(-1, "/v1/customers/export?format=csv");
    keep(s.body);
    ck_assert_int_eq(s.status, 401);
}
END_TEST

/* --- exports and their clients ------------------------------------------------------------ */

static int connect_api(int port, int rcvbuf)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(fd, 0);
    if (rcvbuf > 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
    struct timeval tv = {20, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_msg(connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0, "connect: %s", strerror(errno));
    return fd;
}

static void send_all(int fd, const void *p, size_t len)
{
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR)
            continue;
        ck_assert_msg(w > 0, "write: %s", strerror(errno));
        p = (const char *)p + w;
        len -= (size_t)w;
    }
}

/*
 * Sends an HTTP/1.1 GET with a request id and reads until at least `want`
 * bytes came (appended to got unless NULL); returns the socket.
 */
static int start_get(int who, const char *path, const char *request_id, size_t want, int rcvbuf, buf_t *got_bytes)
{
    int fd = connect_api(api.port, rcvbuf);
    const char *req = fmt("GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer %s\r\nX-Request-Id: %s\r\n\r\n",
                          path, users[who].token, request_id);
    send_all(fd, req, strlen(req));
    char buf[16384];
    size_t got = 0;
    while (got < want) {
        ssize_t r = read(fd, buf, want - got < sizeof(buf) ? want - got : sizeof(buf));
        ck_assert_msg(r > 0, "the export ended after %zu bytes", got);
        if (got == 0)
            ck_assert_msg(strncmp(buf, "HTTP/1.1 200", 12) == 0, "answer: %.200s", buf);
        if (got_bytes != NULL)
            buf_add(got_bytes, buf, (size_t)r);
        got += (size_t)r;
    }
    return fd;
}

/* Export page statements of the suite's database (not this connection): how many run, and the newest start. */
typedef struct {
    long long active, last_start_us;
} pages_t;

/* The page statement walks the records by id (as a format string: percent signs doubled). */
#define PAGE_SQL_LIKE "'%%ORDER BY t.id LIMIT%%'"

static pages_t page_queries(void)
{
    const char *v = sql_text("SELECT count(*) FILTER (WHERE state = 'active') || ' ' ||"
                             " coalesce(max((extract(epoch FROM query_start) * 1000000)::bigint), 0)"
                             " FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
                             " AND query LIKE " PAGE_SQL_LIKE);
    pages_t p;
    ck_assert_int_eq(sscanf(v, "%lld %lld", &p.active, &p.last_start_us), 2);
    return p;
}

START_TEST(export_stops_when_the_client_goes_away)
{
    ensure_big_data();
    /* A CSV of every customer takes seconds to write: the client reads 64 KiB of it and hangs up. */
    const char *rid = fmt("export-gone-%d", (int)getpid());
    int fd = start_get(DIRECTOR, "/v1/customers/export?format=csv", rid, 65536, 0, NULL);
    close(fd);
    long long closed = th_now_ms();

    /*
     * The request ends (its access-log line is written when h2o lets it go)
     * at the first write after the client left; the bound is generous, for
     * busy machines, yet far below the time the whole export would take.
     */
    const char *needle = fmt("\"request_id\":\"%s\"", rid);
    while (!crew_log_has(api.log_path, needle) && th_now_ms() - closed < 15000)
        usleep(100 * 1000);
    ck_assert_msg(crew_log_has(api.log_path, needle), "the export request had not ended 15 s after its client left");
    /* No page runs any more, and none starts: the export has stopped rather than read into the void. */
    pages_t a = page_queries();
    usleep(1000 * 1000);
    pages_t b = page_queries();
    ck_assert_msg(b.active == 0, "%lld export page statements still running 1 s after the request ended", b.active);
    ck_assert_msg(b.last_start_us == a.last_start_us, "an export page statement started after the request ended");

    /* The API is healthy and exports again. */
    expect_status(http_get(-1, "/healthz"), 200);
    stream_t s = export_ok(DIRECTOR, "/v1/customers/export?tag=big-vip&status=customer&format=csv&fields=id");
    ck_assert_int_eq(json_array_size(csv_parse(s.body, s.len)),
                     1 + sql_ll("SELECT count(*) FROM customers WHERE deleted_at IS NULL AND tags @> '{big-vip}'"
                                " AND status = 'customer'"));
}
END_TEST

START_TEST(export_page_that_fails_cuts_the_body_short)
{
    ensure_big_data();
    /* The client takes the first bytes, then stops reading while the table is locked. */
    const char *rid = fmt("export-cut-%d", (int)getpid());
    buf_t got = {0};
    int fd = start_get(DIRECTOR, "/v1/customers/export?tag=big", rid, 4096, 65536, &got);
    usleep(300 * 1000);
    PGconn *lk = pg_open();
    ck_assert_int_eq(pg_do(lk, "BEGIN"), 0);
    ck_assert_int_eq(pg_do(lk, "LOCK TABLE customers IN ACCESS EXCLUSIVE MODE"), 0);
    /* Reading again lets the export ask for its next page, which waits for the lock; cancelling it fails the page. */
    char buf[65536];
    long long pid = 0, until = th_now_ms() + 15000;
    while (pid == 0 && th_now_ms() < until) {
        struct timeval tv = {0, 100 * 1000};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        ssize_t r = read(fd, buf, sizeof(buf));
        if (r > 0)
            buf_add(&got, buf, (size_t)r);
        ck_assert_msg(r != 0, "the export ended while its table was locked");
        pid = atoll(sql_text("SELECT coalesce(max(pid), 0) FROM pg_stat_activity WHERE datname = current_database()"
                             " AND wait_event_type = 'Lock' AND query LIKE " PAGE_SQL_LIKE));
    }
    ck_assert_msg(pid != 0, "no export page waited for the lock");
    ck_assert_str_eq(sql_text("SELECT pg_cancel_backend(%lld)", pid), "t");
    usleep(200 * 1000);
    ck_assert_int_eq(pg_do(lk, "COMMIT"), 0);
    PQfinish(lk);
    struct timeval tv = {20, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    for (;;) {
        ssize_t r = read(fd, buf, sizeof(buf));
        if (r <= 0)
            break;
        buf_add(&got, buf, (size_t)r);
    }
    close(fd);
    /* The status line said 200 before the failure: the body ends without its terminating chunk. */
    char *body = strstr(got.p, "\r\n\r\n");
    ck_assert_ptr_nonnull(body);
    stream_t s;
    dechunk(body + 4, got.len - (size_t)(body + 4 - got.p), &s);
    ck_assert_msg(!s.complete, "a failed export looks complete (%zu bytes)", s.len);
    /* What came before the cut is whole records (pages are sent whole), fewer than the set. */
    json_t *items = ndjson_items(&s);
    ck_assert_int_gt(json_array_size(items), 0);
    ck_assert_int_lt(json_array_size(items), BIG_ROWS);
    free(s.body);
    free(got.p);
    /* The failure is in the log; the API is healthy. */
    ck_assert(crew_log_has(api.log_path, fmt("\"request_id\":\"%s\",\"msg\":\"an export page failed", rid)));
    expect_status(http_get(-1, "/healthz"), 200);
    stream_t again = export_ok(DIRECTOR, "/v1/customers/export?tag=big-vip&status=prospect&fields=id");
    ck_assert_int_gt(again.len, 0);
}
END_TEST

/*
 * Exports as `token` every "big" customer, reading 4 KiB, then runs `sql`
 * (which takes the caller's right to read away) and reads the rest. Returns
 * the records that came; *complete says whether the body ended whole.
 */
static size_t export_then(const char *token, const char *sql, int *complete)
{
    int fd = connect_api(api.port, 65536);
    const char *req = fmt("GET /v1/customers/export?tag=big HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer %s\r\n"
                          "Connection: close\r\n\r\n",
                          token);
    send_all(fd, req, strlen(req));
    buf_t got = {0};
    char buf[65536];
    while (got.len < 4096) {
        ssize_t r = read(fd, buf, sizeof(buf));
        ck_assert_int_gt(r, 0);
        buf_add(&got, buf, (size_t)r);
    }
    ck_assert_msg(strncmp(got.p, "HTTP/1.1 200", 12) == 0, "answer: %.200s", got.p);
    usleep(300 * 1000);
    sql_run("%s", sql);
    for (;;) {
        ssize_t r = read(fd, buf, sizeof(buf));
        if (r <= 0)
            break;
        buf_add(&got, buf, (size_t)r);
    }
    close(fd);
    char *body = strstr(got.p, "\r\n\r\n");
    ck_assert_ptr_nonnull(body);
    stream_t s;
    dechunk(body + 4, got.len - (size_t)(body + 4 - got.p), &s);
    size_t n = 0;
    for (size_t i = 0; i < s.len; i++)
        n += s.body[i] == '\n';
    *complete = s.complete;
    free(s.body);
    free(got.p);
    return n;
}

START_TEST(export_stops_when_the_caller_loses_the_right_to_read)
{
    ensure_big_data();
    /* A user of a role of its own, which can be changed without touching the crew. */
    sql_run("INSERT INTO roles (name, permissions) SELECT 'revocable', permissions FROM roles WHERE name = 'director'"
            " ON CONFLICT DO NOTHING");
    const char *email = fmt("revocable-%d@%s", (int)getpid(), conf.domain);
    sql_run("INSERT INTO users (email, name, password_hash, role_id) SELECT '%s', 'Rev Ocable', password_hash,"
            " (SELECT id FROM roles WHERE name = 'revocable') FROM users WHERE id = %lld",
            email, users[DIRECTOR].id);
    char token[2048];
    login_ok(email, conf.password, token, NULL);

    /*
     * The role loses the customers module mid-way: the pages already sent
     * are the caller's, the rest is not, and the body must not pretend to
     * be the whole set (a client would take a partial file for all of it).
     */
    int complete;
    size_t n = export_then(token, "UPDATE roles SET permissions = permissions - 'customers' WHERE name = 'revocable'",
                           &complete);
    ck_assert_int_lt(n, BIG_ROWS);
    ck_assert_msg(!complete,
                  "the role lost the right to read customers during an export: the body ended whole after %zu of"
                  " %d records, as if that were all of them",
                  n, BIG_ROWS);
    sql_run("UPDATE roles SET permissions = (SELECT permissions FROM roles WHERE name = 'director')"
            " WHERE name = 'revocable'");
    usleep(600 * 1000); /* a role change reaches the API's cached callers within half a second (api/callers.c) */

    /* The user is deactivated mid-way (their tokens die with it): the same. */
    n = export_then(token, fmt("UPDATE users SET active = false WHERE email = '%s'", email), &complete);
    ck_assert_int_lt(n, BIG_ROWS);
    ck_assert_msg(!complete, "the user was deactivated during an export: the body ended whole after %zu records", n);
}
END_TEST

/* --- HTTP/2: a request freed while its page waits for a connection ----------------------------------- */

static void h2_frame(buf_t *b, int type, int flags, unsigned stream, const void *payload, size_t len)
{
    unsigned char h[9] = {(unsigned char)(len >> 16),    (unsigned char)(len >> 8),    (unsigned char)len,
                          (unsigned char)type,           (unsigned char)flags,         (unsigned char)(stream >> 24),
                          (unsigned char)(stream >> 16), (unsigned char)(stream >> 8), (unsigned char)stream};
    buf_add(b, h, 9);
    if (len > 0)
        buf_add(b, payload, len);
}

/* An HPACK integer with a 7-bit prefix (RFC 7541, 5.1), the H bit clear. */
static void hpack_len(buf_t *b, size_t v)
{
    unsigned char c;
    if (v < 127) {
        c = (unsigned char)v;
        buf_add(b, &c, 1);
        return;
    }
    c = 127;
    buf_add(b, &c, 1);
    for (v -= 127; v >= 128; v /= 128) {
        c = (unsigned char)(v % 128 + 128);
        buf_add(b, &c, 1);
    }
    c = (unsigned char)v;
    buf_add(b, &c, 1);
}

/* A literal header field without indexing, new name (RFC 7541, 6.2.2). */
static void hpack_field(buf_t *b, const char *name, const char *value)
{
    buf_add(b, "\0", 1);
    hpack_len(b, strlen(name));
    buf_str(b, name);
    hpack_len(b, strlen(value));
    buf_str(b, value);
}

/* Opens an h2c (prior knowledge) connection and sends one GET on stream 1 with a request id; returns the socket. */
static int h2_get(int port, int who, const char *path, const char *request_id)
{
    int fd = connect_api(port, 0);
    buf_t b = {0}, hb = {0};
    buf_str(&b, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
    h2_frame(&b, 0x4, 0, 0, NULL, 0); /* SETTINGS */
    hpack_field(&hb, ":method", "GET");
    hpack_field(&hb, ":scheme", "http");
    hpack_field(&hb, ":path", path);
    hpack_field(&hb, ":authority", "127.0.0.1");
    hpack_field(&hb, "authorization", fmt("Bearer %s", users[who].token));
    hpack_field(&hb, "x-request-id", request_id);
    h2_frame(&b, 0x1, 0x1 | 0x4, 1, hb.p, hb.len); /* HEADERS, END_STREAM | END_HEADERS */
    send_all(fd, b.p, b.len);
    free(b.p);
    free(hb.p);
    return fd;
}

/* The value of an unlabelled gauge in /metrics of the API at port, or -1. */
static long long metric(int port, const char *name)
{
    th_resp_t r;
    long long v = -1;
    if (th_http(port, "GET", "/metrics", NULL, NULL, 0, &r) == 0 && r.status == 200) {
        const char *p = strstr(r.body, fmt("\n%s ", name));
        if (p != NULL)
            v = atoll(p + strlen(name) + 2);
    }
    th_resp_free(&r);
    return v;
}

typedef struct {
    int port;
    long long id;
    int status;
} patch_call_t;

static void *patch_main(void *p)
{
    patch_call_t *c = p;
    char auth[2200];
    const char *h[] = {th_bearer(users[DIRECTOR].token, auth, sizeof(auth)), "Content-Type: " MERGE_T, NULL};
    th_resp_t r;
    const char *body = "{\"industry\":\"Locks\"}";
    char path[64];
    snprintf(path, sizeof(path), "/v1/customers/%lld", c->id);
    c->status = th_http(c->port, "PATCH", path, h, body, strlen(body), &r) == 0 ? r.status : 0;
    th_resp_free(&r);
    return NULL;
}

START_TEST(export_cancelled_over_http2_while_its_page_waits)
{
    /* One loop thread with one connection: a PATCH blocked on a row lock holds it, so the export's page queues. */
    static const char *const env[] = {
        "CLIENTELE_THREADS=1",
        "CLIENTELE_DB_POOL=1",
        "CLIENTELE_DB_QUEUE_TIMEOUT=20s",
        "CLIENTELE_DB_TIMEOUT=20s",
        JWT_SECRET,
        NULL,
    };
    const char *tag = uniq("h2");
    rec_t c = make_cust(REP1, fmt("[\"%s\"]", tag), "customer");
    th_api_t own;
    th_api_start(&own, db_url, th_redis_url(conf.redis_db), env);

    PGconn *lk = pg_open();
    int locked =
        pg_do(lk, "BEGIN") == 0 && pg_do(lk, fmt("SELECT 1 FROM customers WHERE id = %lld FOR UPDATE", c.id)) == 0;
    patch_call_t call = {own.port, c.id, 0};
    pthread_t t;
    pthread_create(&t, NULL, patch_main, &call);
    long long until = th_now_ms() + 10000;
    while (th_now_ms() < until && metric(own.port, "clientele_db_connections{state=\"in_use\"}") != 1)
        usleep(50 * 1000);
    usleep(300 * 1000); /* the PATCH is waiting for the row */

    /* The export's first page waits for the connection; then the client hangs up. */
    const char *rid = fmt("export-h2-%d", (int)getpid());
    int fd = h2_get(own.port, DIRECTOR, fmt("/v1/customers/export?tag=%s", tag), rid);
    int queued = 0;
    while (th_now_ms() < until && !(queued = metric(own.port, "clientele_db_waiting_requests") == 1))
        usleep(50 * 1000);
    close(fd);
    /* h2o lets the request go as soon as it reads the close: its access-log line says so. */
    const char *needle = fmt("\"request_id\":\"%s\"", rid);
    int gone = 0;
    while (th_now_ms() < until + 10000 && !(gone = crew_log_has(own.log_path, needle)))
        usleep(50 * 1000);

    /* The PATCH goes on; the connection then serves what waited, the export's page included. */
    pg_do(lk, "COMMIT");
    PQfinish(lk);
    pthread_join(t, NULL);
    usleep(500 * 1000);
    th_resp_t r;
    int alive = th_http(own.port, "GET", "/healthz", NULL, NULL, 0, &r) == 0 && r.status == 200;
    th_resp_free(&r);
    int st = th_api_stop(&own, SIGTERM, 15);

    ck_assert_msg(locked, "could not lock the customer");
    ck_assert_msg(queued, "the export's page never waited for the connection");
    ck_assert_msg(gone, "the API did not let the request go when its HTTP/2 client left");
    ck_assert_int_eq(call.status, 200);
    ck_assert_msg(alive && st == 0,
                  "after an HTTP/2 client left while its export page waited for a database connection, the API %s"
                  " (exit status %d); see %s",
                  alive ? "answered but exited badly" : "stopped answering", st, own.log_path);
}
END_TEST

static Suite *reports_suite(void)
{
    Suite *s = suite_create("reports");
    TCase *tc = tcase_create("scopes");
    tcase_set_timeout(tc, 180);
    tcase_add_test(tc, scope_matrix_for_aggregate_and_export);
    suite_add_tcase(s, tc);

    tc = tcase_create("aggregate");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, aggregate_customers_equal_sql);
    tcase_add_test(tc, aggregate_orders_equal_sql);
    tcase_add_test(tc, aggregate_contacts_equal_sql);
    tcase_add_test(tc, aggregate_stops_at_1000_groups);
    tcase_add_test(tc, aggregate_defaults_and_empty_results);
    tcase_add_test(tc, aggregate_rejects_bad_parameters);
    suite_add_tcase(s, tc);

    tc = tcase_create("export");
    tcase_set_timeout(tc, 240);
    tcase_add_test(tc, export_csv_follows_rfc_4180);
    tcase_add_test(tc, export_csv_of_orders_and_contacts);
    tcase_add_test(tc, export_csv_writes_named_objects_as_json);
    tcase_add_test(tc, export_pages_end_where_the_set_ends);
    tcase_add_test(tc, export_rejects_bad_parameters);
    tcase_add_test(tc, export_of_100000_equals_the_paginated_list);
    tcase_add_test(tc, export_stops_when_the_client_goes_away);
    tcase_add_test(tc, export_page_that_fails_cuts_the_body_short);
    tcase_add_test(tc, export_stops_when_the_caller_loses_the_right_to_read);
    tcase_add_test(tc, export_cancelled_over_http2_while_its_page_waits);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return crew_main(&conf, reports_suite);
}
