/*
 * api/engine_sql.c - the statements of every resource, generated once at
 * start-up from the descriptions (see engine.h).
 *
 * Identifiers come only from the compiled descriptions (checked to be
 * plain lower-case names before use); every value is a parameter. Each
 * statement starts with the caller CTE of api/scope.h and decides scope
 * and permission in the statement that reads or writes. Write statements
 * follow the standard result columns of api/crud.h and end with the same
 * tail: one history entry and one change-feed row per record written,
 * plus the records written on the side (children deleted with a parent,
 * a sibling's one-per-parent flag cleared, move rows for children whose
 * parent changed scope).
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine_int.h"

/* --- a growable string ------------------------------------------------------- */

static void grow(engine_sql_t *s, size_t more)
{
    if (s->len + more + 1 <= s->cap)
        return;
    size_t cap = s->cap ? s->cap : 1024;
    while (cap < s->len + more + 1)
        cap *= 2;
    if ((s->base = realloc(s->base, cap)) == NULL)
        abort();
    s->cap = cap;
}

void esql_add(engine_sql_t *s, const char *text)
{
    size_t n = strlen(text);
    grow(s, n);
    memcpy(s->base + s->len, text, n + 1);
    s->len += n;
}

void esql_addf(engine_sql_t *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    grow(s, (size_t)n);
    va_start(ap, fmt);
    vsnprintf(s->base + s->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    s->len += (size_t)n;
}

char *esql_take(engine_sql_t *s)
{
    char *t = s->base;
    if (t == NULL)
        t = strdup("");
    *s = (engine_sql_t){0};
    return t;
}

/* Replaces every "{k}" of tpl with the matching value; keys/values in pairs, NULL-terminated. */
static void tplv(engine_sql_t *s, const char *tpl, const char *const *kv)
{
    for (const char *p = tpl; *p != '\0';) {
        int done = 0;
        if (*p == '{')
            for (int i = 0; kv[i] != NULL; i += 2) {
                size_t n = strlen(kv[i]);
                if (strncmp(p + 1, kv[i], n) == 0 && p[1 + n] == '}') {
                    esql_add(s, kv[i + 1]);
                    p += n + 2;
                    done = 1;
                    break;
                }
            }
        if (!done) {
            char c[2] = {*p++, '\0'};
            esql_add(s, c);
        }
    }
}

/* --- fields ------------------------------------------------------------------ */

static int is_embed(const engine_resource_t *r, const char *name, const engine_embed_t **out)
{
    for (size_t i = 0; i < r->nembeds; i++)
        if (strcmp(r->embeds[i].name, name) == 0) {
            if (out != NULL)
                *out = &r->embeds[i];
            return 1;
        }
    return 0;
}

/* A column the client writes. */
static int writable(const engine_resource_t *r, const engine_field_t *f)
{
    return !(f->v.flags & VF_READONLY) && !(f->ef & EF_INPUT_ONLY) && !is_embed(r, f->v.name, NULL);
}

/* A column of the table (shown in documents). */
static int column(const engine_resource_t *r, const engine_field_t *f)
{
    return !(f->ef & EF_INPUT_ONLY) && !is_embed(r, f->v.name, NULL);
}

static const char *sql_type(const engine_field_t *f)
{
    if (f->sql_type != NULL)
        return f->sql_type;
    switch (f->v.type) {
    case VT_ID:
        return "bigint";
    case VT_INT:
        return "bigint";
    case VT_BOOL:
        return "boolean";
    case VT_DECIMAL:
        return "numeric";
    case VT_TIMESTAMP:
        return "timestamptz";
    case VT_DATE:
        return "date";
    case VT_OBJECT:
    case VT_ARRAY:
    case VT_JSON_OBJECT:
        return "jsonb";
    case VT_STRING_ARRAY:
        return "text[]";
    default:
        return "text";
    }
}

/* iso_utc(t): RFC 3339 in UTC with microseconds, "2026-01-31T12:00:00.000000Z" (schema/0016, inlined). */

/* The JSON value of a column of row alias a. */
static void out_expr(engine_sql_t *s, const engine_field_t *f, const char *a)
{
    const char *n = f->v.name;
    switch (f->v.type) {
    case VT_DECIMAL:
        esql_addf(s, "%s.%s::text", a, n);
        break;
    case VT_TIMESTAMP:
        esql_addf(s, "iso_utc(%s.%s)", a, n);
        break;
    case VT_DATE:
        esql_addf(s, "to_char(%s.%s, 'YYYY-MM-DD')", a, n);
        break;
    case VT_STRING_ARRAY:
        esql_addf(s, "to_jsonb(%s.%s)", a, n);
        break;
    default:
        esql_addf(s, "%s.%s", a, n);
    }
}

/* The embed's joins for the record whose id is id_expr. */
static void embed_joins(engine_sql_t *s, const engine_resource_t *r, const char *id_expr)
{
    const char *kv[] = {"id", id_expr, NULL};
    for (size_t i = 0; i < r->nembeds; i++)
        tplv(s, r->embeds[i].joins, kv);
}

/* The document of row alias a with every field; see doc_of. */
static void doc_all(engine_sql_t *s, const engine_res_t *res, const char *a, int joined)
{
    const engine_resource_t *r = res->r;
    esql_add(s, "json_build_object(");
    int first = 1;
    for (size_t i = 0; i < r->nfields; i++) {
        const engine_field_t *f = &r->fields[i];
        const engine_embed_t *em;
        if (f->ef & EF_INPUT_ONLY)
            continue;
        esql_addf(s, "%s'%s', ", first ? "" : ", ", f->v.name);
        first = 0;
        if (!is_embed(r, f->v.name, &em) && f->v.type == VT_JSON_OBJECT && strcmp(f->v.name, "attrs") == 0) {
            esql_addf(s,
                      "CASE WHEN caller.hidden_attrs IS NULL THEN %1$s.attrs ELSE %1$s.attrs - caller.hidden_attrs END",
                      a);
        } else if (!is_embed(r, f->v.name, &em)) {
            out_expr(s, f, a);
        } else if (joined) {
            esql_add(s, em->sql);
        } else {
            char id[96];
            snprintf(id, sizeof(id), "%s.id", a);
            const char *kv[] = {"id", id, NULL};
            esql_add(s, "(SELECT ");
            esql_add(s, em->sql);
            esql_add(s, " FROM (SELECT 1) one");
            tplv(s, em->joins, kv);
            esql_add(s, ")");
        }
    }
    esql_add(s, ")");
}

/*
 * The document of row alias a as the caller may see it (`caller` is in
 * every statement that builds one): the fields its role hides are left out,
 * and so are the attrs keys it hides.
 */
static void doc_of(engine_sql_t *s, const engine_res_t *res, const char *a, int joined)
{
    esql_add(s, "CASE WHEN caller.hidden IS NULL THEN ");
    doc_all(s, res, a, joined);
    esql_add(s, " ELSE (SELECT coalesce(json_object_agg(e.key, e.value), '{}') FROM json_each(");
    doc_all(s, res, a, joined);
    esql_add(s, ") e WHERE e.key <> ALL (caller.hidden)) END");
}

static void caller_cte(engine_sql_t *s, const engine_resource_t *r);
static void caller_cte_read(engine_sql_t *s, const engine_resource_t *r);
static void write_ctx(engine_sql_t *s, int req_param);

void engine_caller(engine_sql_t *s, const engine_resource_t *r, int req_param)
{
    if (req_param > 0) {
        caller_cte(s, r);
        write_ctx(s, req_param);
    } else {
        caller_cte_read(s, r);
    }
}

void engine_doc(engine_sql_t *s, const engine_res_t *res, const char *a)
{
    doc_of(s, res, a, 0);
}

void engine_doc_projected(engine_sql_t *s, const engine_res_t *res, const char *a)
{
    esql_addf(s, "CASE WHEN $%d::text[] IS NULL THEN ", EL_FIELDS);
    engine_doc(s, res, a);
    esql_add(s, "::text ELSE (SELECT coalesce(json_object_agg(e.key, e.value), '{}') FROM json_each(");
    doc_all(s, res, a, 0);
    esql_addf(
        s, ") e WHERE e.key = ANY ($%d::text[]) AND (caller.hidden IS NULL OR e.key <> ALL (caller.hidden)))::text END",
        EL_FIELDS);
}

/* The writable columns of row alias a as JSON (history and merge-patch base). */
static void input_json(engine_sql_t *s, const engine_res_t *res, const char *a)
{
    const engine_resource_t *r = res->r;
    esql_add(s, "jsonb_build_object(");
    int first = 1;
    for (size_t i = 0; i < r->nfields; i++) {
        const engine_field_t *f = &r->fields[i];
        if (!writable(r, f))
            continue;
        esql_addf(s, "%s'%s', ", first ? "" : ", ", f->v.name);
        first = 0;
        out_expr(s, f, a);
    }
    esql_add(s, ")");
}

/* ETag text of a written or read row: the version, plus what embeds add (their joins in the FROM). */
static void etag(engine_sql_t *s, const engine_resource_t *r, const char *version)
{
    esql_addf(s, "(%s::text", version);
    for (size_t i = 0; i < r->nembeds; i++)
        if (r->embeds[i].etag != NULL) {
            esql_add(s, " || ");
            esql_add(s, r->embeds[i].etag);
        }
    esql_add(s, ")");
}

/* "external_id text, kind text, ...": the writable columns as a record definition. */
static void record_def(engine_sql_t *s, const engine_resource_t *r)
{
    int first = 1;
    for (size_t i = 0; i < r->nfields; i++)
        if (writable(r, &r->fields[i])) {
            esql_addf(s, "%s%s %s", first ? "" : ", ", r->fields[i].v.name, sql_type(&r->fields[i]));
            first = 0;
        }
}

static void column_list(engine_sql_t *s, const engine_resource_t *r)
{
    int first = 1;
    for (size_t i = 0; i < r->nfields; i++)
        if (writable(r, &r->fields[i])) {
            esql_addf(s, "%s%s", first ? "" : ", ", r->fields[i].v.name);
            first = 0;
        }
}

/*
 * The values stored for the columns: external_id, owner_id, team_id and the
 * parent reference from the given expressions, the rest from input row i
 * with the field's default on create; create-only fields keep the stored
 * value (alias t) on update.
 */
static void value_list(engine_sql_t *s, const engine_resource_t *r, const char *ext, const char *owner,
                       const char *team, const char *parent, int update)
{
    int first = 1;
    for (size_t i = 0; i < r->nfields; i++) {
        const engine_field_t *f = &r->fields[i];
        const char *n = f->v.name;
        if (!writable(r, f))
            continue;
        esql_add(s, first ? "" : ", ");
        first = 0;
        if (strcmp(n, "external_id") == 0)
            esql_add(s, ext);
        else if (owner != NULL && strcmp(n, "owner_id") == 0)
            esql_add(s, owner);
        else if (team != NULL && strcmp(n, "team_id") == 0)
            esql_add(s, team);
        else if (parent != NULL && r->scope.ref != NULL && strcmp(n, r->scope.ref) == 0)
            esql_add(s, parent);
        else if (update && (f->ef & EF_CREATE_ONLY))
            esql_addf(s, "t.%s", n);
        else if (f->def != NULL)
            esql_addf(s, "coalesce(i.%s, %s)", n, f->def);
        else
            esql_addf(s, "i.%s", n);
    }
}

/* " upd AS (UPDATE <table> t SET (<columns>) = ROW(<values>) <tail>)": tail is "FROM ... WHERE ... RETURNING t.*". */
static void update_cte(engine_sql_t *s, const engine_resource_t *r, const char *ext, const char *owner,
                       const char *team, const char *parent, const char *tail)
{
    esql_addf(s, " upd AS (UPDATE %s t SET (", r->table);
    column_list(s, r);
    esql_add(s, ") = ROW(");
    value_list(s, r, ext, owner, team, parent, 1);
    esql_addf(s, ") %s)", tail);
}

/* " ins AS (INSERT INTO <table> (<columns>) SELECT <values> <tail>)". */
static void insert_cte(engine_sql_t *s, const engine_resource_t *r, const char *ext, const char *owner,
                       const char *team, const char *parent, const char *tail)
{
    esql_addf(s, " ins AS (INSERT INTO %s (", r->table);
    column_list(s, r);
    esql_add(s, ") SELECT ");
    value_list(s, r, ext, owner, team, parent, 0);
    esql_addf(s, " %s)", tail);
}

/* --- scope ------------------------------------------------------------------- */

/*
 * Field rules (a role's permissions.fields.<module>: {"<field>": "hidden" |
 * "read"}): every statement's caller carries hidden (the fields its
 * documents leave out, NULL when none) and hidden_attrs (those of them
 * that are keys of attrs, "attrs.<key>"); writes also carry locked (hidden
 * or read-only: a write that changes one is refused, outcome
 * "locked_<field>").
 */
#define FIELD_RULES(module, values)                                                                                    \
    "nullif(ARRAY(SELECT f.key FROM jsonb_each_text(CASE WHEN jsonb_typeof(r.permissions #> '{fields," module          \
    "}') = 'object' THEN r.permissions #> '{fields," module "}' END) f WHERE f.value IN (" values ")"                  \
    " ORDER BY f.key), '{}')"

static void caller_cte(engine_sql_t *s, const engine_resource_t *r)
{
    const char *m = r->name;
    esql_add(s, "caller0 AS (SELECT u.id AS uid, u.team_id AS tid, r.permissions AS perms, ");
    if (r->public_read)
        esql_add(s, "'all'::text AS rscope,");
    else
        esql_addf(s, "coalesce(r.permissions #>> '{%s,read}', 'none') AS rscope,", m);
    esql_addf(s,
              " coalesce(r.permissions #>> '{%1$s,create}', 'none') AS cscope,"
              " coalesce(r.permissions #>> '{%1$s,update}', 'none') AS uscope,"
              " coalesce(r.permissions #>> '{%1$s,delete}', 'none') AS dscope, ",
              m);
    esql_addf(s, FIELD_RULES("%1$s", "'hidden'") " AS hidden, ", m);
    esql_addf(s, FIELD_RULES("%1$s", "'hidden', 'read'") " AS locked", m);
    esql_add(s, " FROM users u JOIN roles r ON r.id = u.role_id WHERE u.id = $1 AND u.active"
                " AND u.token_version = $2), caller AS (SELECT caller0.*, nullif(ARRAY(SELECT substr(k, 7)"
                " FROM unnest(hidden) k WHERE k LIKE 'attrs.%'), '{}') AS hidden_attrs, nullif(ARRAY(SELECT"
                " substr(k, 7) FROM unnest(locked) k WHERE k LIKE 'attrs.%'), '{}') AS locked_attrs FROM caller0)");
}

/*
 * The caller of read statements, from api/callers.c: $1 the user's id, $2
 * "<team id> <read scope>" (the cache checked the user is active and the
 * token current). Only rscope exists here: reads never need another.
 */
static void caller_cte_read(engine_sql_t *s, const engine_resource_t *r)
{
    esql_add(s, "caller0 AS (SELECT $1::bigint AS uid, nullif(split_part($2::text, ' ', 1), '')::bigint AS tid, ");
    esql_add(s, r->public_read ? "'all'::text AS rscope," : "split_part($2::text, ' ', 2) AS rscope,");
    esql_add(s, " string_to_array(nullif(split_part($2::text, ' ', 3), ''), ',') AS hidden),"
                " caller AS (SELECT caller0.*, nullif(ARRAY(SELECT substr(k, 7) FROM unnest(hidden) k"
                " WHERE k LIKE 'attrs.%'), '{}') AS hidden_attrs FROM caller0)");
}

static void scope_ok(engine_sql_t *s, const char *col, const char *owner, const char *team)
{
    esql_addf(s, "in_scope(caller.%s, caller.uid, caller.tid, %s, %s)", col, owner, team);
}

/* The FROM item of table alias `a` with its scope columns reachable: "customers t" or a join to the parent. */
static void from_item(engine_sql_t *s, const engine_res_t *res, const char *a)
{
    const engine_resource_t *r = res->r;
    if (r->scope.kind != ENGINE_PARENT)
        esql_addf(s, "%s %s", r->table, a);
    else
        esql_addf(s, "%s %s JOIN %s %sp ON %sp.id = %s.%s", r->table, a, res->parent->table, a, a, a, r->scope.ref);
}

/* The same as the right side of a LEFT JOIN: a join goes in parentheses, a table may not. */
static void from_item_joined(engine_sql_t *s, const engine_res_t *res, const char *a)
{
    int join = res->r->scope.kind == ENGINE_PARENT;
    esql_add(s, join ? "(" : "");
    from_item(s, res, a);
    esql_add(s, join ? ")" : "");
}

/* The owner and team expressions of alias a (after from_item). */
static void scope_cols(const engine_res_t *res, const char *a, char *own, char *team, size_t len)
{
    if (res->r->scope.kind == ENGINE_GLOBAL) {
        /* in_scope() of no owner and no team: true for scope all, false for any other (schema/0023). */
        snprintf(own, len, "NULL::bigint");
        snprintf(team, len, "NULL::bigint");
    } else if (res->r->scope.kind == ENGINE_OWNED) {
        snprintf(own, len, "%s.owner_id", a);
        snprintf(team, len, "%s.team_id", a);
    } else {
        snprintf(own, len, "%sp.owner_id", a);
        snprintf(team, len, "%sp.team_id", a);
    }
}

/* --- rules ------------------------------------------------------------------- */

/* WHEN lines for the owner and team a record is given (owned resources). */
static void target_checks(engine_sql_t *s, const char *owner, const char *team)
{
    esql_addf(s,
              " WHEN NOT EXISTS (SELECT 1 FROM users WHERE id = %1$s AND active) THEN 'invalid_owner_id'"
              " WHEN %2$s IS NOT NULL AND NOT EXISTS (SELECT 1 FROM teams WHERE id = %2$s) THEN 'invalid_team_id'",
              owner, team);
}

/* WHEN lines of the description's checks, and the size limits of free-form objects. */
static void rule_checks(engine_sql_t *s, const engine_resource_t *r, const char *input, const char *id,
                        const char *parent, int patch)
{
    /* Bodies were measured by the handler; only a merge patch makes an object grow where it was not seen. */
    for (size_t i = 0; patch && i < r->nfields; i++) {
        const engine_field_t *f = &r->fields[i];
        if (writable(r, f) && f->v.type == VT_JSON_OBJECT && f->v.max_bytes > 0)
            esql_addf(s, " WHEN length((m.d -> '%s')::text) > %zu THEN 'too_large_%s'", f->v.name, f->v.max_bytes,
                      f->v.name);
    }
    /* The keys of attrs an administrator defined (custom fields, schema/0023): "cf_attrs.<key>:<code>". */
    const engine_field_t *attrs = engine_field(r, "attrs");
    if (attrs != NULL && attrs->v.type == VT_JSON_OBJECT)
        esql_addf(s,
                  " WHEN custom_fields_violation('%1$s', %2$s.attrs, %3$s) IS NOT NULL"
                  " THEN 'cf_' || custom_fields_violation('%1$s', %2$s.attrs, %3$s)",
                  r->name, input, strcmp(id, "NULL") == 0 ? "true" : "false");
    for (size_t i = 0; i < r->nchecks; i++) {
        if (r->checks[i].cond == NULL)
            continue; /* the database's own */
        const char *kv[] = {"i", input, "id", id, "parent", parent != NULL ? parent : "NULL", "table", r->table, NULL};
        esql_add(s, " WHEN NOT coalesce(");
        tplv(s, r->checks[i].cond, kv);
        esql_addf(s, ", false) THEN 'rule_%zu'", i);
    }
}

/*
 * WHEN lines refusing a write that changes a field the caller's role locks
 * (hidden or read-only, caller.locked): the input row i against the stored
 * value, cur_fmt naming a stored column by its field name (NULL: a new
 * record, where any value is a change). Outcome "locked_<field>".
 */
static void locked_checks(engine_sql_t *s, const engine_resource_t *r, const char *i, const char *cur_fmt)
{
    char before[128];
    for (size_t k = 0; k < r->nfields; k++) {
        const engine_field_t *f = &r->fields[k];
        if (!writable(r, f))
            continue;
        if (cur_fmt != NULL)
            snprintf(before, sizeof(before), cur_fmt, f->v.name);
        else
            snprintf(before, sizeof(before), "NULL::%s", sql_type(f));
        if (f->v.type == VT_JSON_OBJECT && strcmp(f->v.name, "attrs") == 0) {
            esql_addf(s,
                      " WHEN caller.locked_attrs IS NOT NULL AND EXISTS (SELECT 1 FROM unnest(caller.locked_attrs) k"
                      " WHERE (%1$s.attrs -> k) IS DISTINCT FROM (%2$s -> k)) THEN 'locked_attrs.' || (SELECT min(k)"
                      " FROM unnest(caller.locked_attrs) k WHERE (%1$s.attrs -> k) IS DISTINCT FROM (%2$s -> k))",
                      i, before);
            continue;
        }
        esql_addf(s,
                  " WHEN caller.locked IS NOT NULL AND '%1$s' = ANY (caller.locked) AND %2$s.%1$s IS DISTINCT FROM %3$s"
                  " THEN 'locked_%1$s'",
                  f->v.name, i, before);
    }
}

/* --- the tail of every write ------------------------------------------------- */

/*
 * The writes a statement makes on the side, as CTEs appended after its own
 * writes (named by `ctes`, e.g. {"ins", "upd"}): a one-per-parent flag
 * cleared on the siblings of a record that sets it, and the children
 * deleted with a deleted parent. Their change-feed rows and history come
 * from the same trigger as every write (schema/0016_engine.sql).
 */
static void write_tail(engine_sql_t *s, const engine_t *e, const engine_res_t *res, const char *const *ctes, size_t n,
                       int deleting)
{
    const engine_resource_t *r = res->r;
    for (size_t i = 0; !deleting && r->scope.kind == ENGINE_PARENT && i < r->nfields; i++) {
        const engine_field_t *f = &r->fields[i];
        if (!(f->ef & EF_ONE_PER_PARENT))
            continue;
        esql_addf(s, ", flag_%s AS (UPDATE %s x SET %s = false FROM (", f->v.name, r->table, f->v.name);
        for (size_t k = 0; k < n; k++)
            esql_addf(s, "%sSELECT id, %s AS ref FROM %s WHERE %s", k ? " UNION ALL " : "", r->scope.ref, ctes[k],
                      f->v.name);
        esql_addf(s, ") w WHERE x.%s = w.ref AND x.id <> w.id AND x.%s AND x.deleted_at IS NULL", r->scope.ref,
                  f->v.name);
        for (size_t k = 0; k < n; k++)
            esql_addf(s, " AND x.id NOT IN (SELECT id FROM %s)", ctes[k]);
        esql_add(s, ")");
    }
    for (size_t c = 0; deleting && c < e->n; c++) {
        const engine_res_t *ch = &e->res[c];
        if (ch->r->scope.kind != ENGINE_PARENT || ch->parent != r || !ch->r->scope.cascade_delete)
            continue;
        esql_addf(s,
                  ", cascade_%s AS (UPDATE %s x SET deleted_at = now() FROM %s w WHERE x.%s = w.id"
                  " AND x.deleted_at IS NULL)",
                  ch->r->name, ch->r->table, ctes[0], ch->r->scope.ref);
    }
}

static const engine_res_t *res_of(const engine_t *e, const engine_resource_t *r)
{
    for (size_t i = 0; i < e->n; i++)
        if (e->res[i].r == r)
            return &e->res[i];
    return NULL;
}

/* Names the actor and the request for the trigger that writes history ($1 is the caller's id). */
static void write_ctx(engine_sql_t *s, int req_param)
{
    esql_addf(s,
              ", ctx AS (SELECT set_config('clientele.actor', $1::text, true) AS a,"
              " set_config('clientele.request_id', $%d::text, true) AS r)",
              req_param);
}

/* --- one record ---------------------------------------------------------------- */

/* $3 id: rscope, ETag, document; for resources that merge, then the survivor of a merged record (or NULL). */
static char *gen_get(const engine_res_t *res)
{
    engine_sql_t s = {0};
    char own[64], team[64];
    scope_cols(res, "t", own, team, sizeof(own));
    esql_add(&s, "WITH ");
    caller_cte_read(&s, res->r);
    esql_add(&s, " SELECT caller.rscope, ");
    etag(&s, res->r, "t.version");
    esql_add(&s, ", CASE WHEN t.id IS NOT NULL THEN ");
    doc_of(&s, res, "t", 1);
    esql_add(&s, "::text END");
    if (res->r->dedup != NULL) {
        /* Not found but merged, and readable where it was: the survivor's id (api/merge.c). */
        char mown[64], mteam[64];
        scope_cols(res, "m", mown, mteam, sizeof(mown));
        esql_add(&s, ", CASE WHEN t.id IS NULL THEN (SELECT m.merged_into FROM ");
        from_item(&s, res, "m");
        esql_add(&s, " WHERE m.id = $3 AND m.merged_into IS NOT NULL AND ");
        scope_ok(&s, "rscope", mown, mteam);
        esql_add(&s, ") END");
    }
    esql_add(&s, " FROM caller LEFT JOIN ");
    from_item_joined(&s, res, "t");
    esql_add(&s, " ON t.id = $3 AND t.deleted_at IS NULL AND ");
    scope_ok(&s, "rscope", own, team);
    embed_joins(&s, res->r, "t.id");
    return esql_take(&s);
}

/* $3 id: rscope, uscope, readable, updatable (for attachments and other per-record features). */
static char *gen_visible(const engine_res_t *res)
{
    engine_sql_t s = {0};
    char own[64], team[64];
    scope_cols(res, "t", own, team, sizeof(own));
    esql_add(&s, "WITH ");
    caller_cte(&s, res->r);
    esql_add(&s, " SELECT caller.rscope, caller.uscope, t.id IS NOT NULL, coalesce(");
    scope_ok(&s, "uscope", own, team);
    esql_add(&s, ", false) FROM caller LEFT JOIN ");
    from_item_joined(&s, res, "t");
    esql_add(&s, " ON t.id = $3 AND t.deleted_at IS NULL AND ");
    scope_ok(&s, "rscope", own, team);
    return esql_take(&s);
}

/* The parent a write names: by reference column, or by the parent's external id in the body. */
static void parent_cte(engine_sql_t *s, const engine_res_t *res, const char *input_json_expr)
{
    const engine_resource_t *r = res->r;
    esql_addf(s, " par AS (SELECT p.* FROM caller, i JOIN %s p ON p.deleted_at IS NULL AND (p.id = i.%s",
              res->parent->table, r->scope.ref);
    if (r->scope.ref_external != NULL && input_json_expr != NULL)
        esql_addf(s, " OR (i.%s IS NULL AND p.external_id = (%s ->> '%s'))", r->scope.ref, input_json_expr,
                  r->scope.ref_external);
    esql_add(s, ") WHERE ");
    scope_ok(s, "rscope", "p.owner_id", "p.team_id");
    esql_add(s, "),");
}

static char *gen_create(const engine_t *e, const engine_res_t *res)
{
    const engine_resource_t *r = res->r;
    engine_sql_t s = {0};
    esql_add(&s, "WITH ");
    caller_cte(&s, r);
    write_ctx(&s, 4);
    esql_add(&s, ", i AS (SELECT * FROM jsonb_to_record($3::jsonb) AS x(");
    record_def(&s, r);
    esql_add(&s, ")),");
    if (r->scope.kind == ENGINE_OWNED) {
        esql_add(&s, " o AS (SELECT coalesce(i.owner_id, caller.uid) AS owner_id, i.team_id FROM i, caller),"
                     " tg AS (SELECT o.owner_id, coalesce(o.team_id, (SELECT team_id FROM users WHERE id = o.owner_id))"
                     " AS team_id FROM o),"
                     " chk AS (SELECT CASE WHEN caller.cscope = 'none' THEN 'forbidden'"
                     " WHEN NOT in_scope_target(caller.cscope, caller.uid, caller.tid, tg.owner_id, tg.team_id)"
                     " THEN 'forbidden_target'");
        target_checks(&s, "tg.owner_id", "tg.team_id");
        locked_checks(&s, r, "i", NULL);
        rule_checks(&s, r, "i", "NULL", NULL, 0);
        esql_add(&s, " ELSE 'ok' END AS outcome FROM caller, ctx, tg, i),");
        insert_cte(&s, r, "i.external_id", "tg.owner_id", "tg.team_id", NULL,
                   "FROM i, tg, chk WHERE chk.outcome = 'ok' RETURNING *");
    } else if (r->scope.kind == ENGINE_GLOBAL) {
        esql_add(&s, " chk AS (SELECT CASE WHEN caller.cscope <> 'all' THEN 'forbidden'");
        locked_checks(&s, r, "i", NULL);
        rule_checks(&s, r, "i", "NULL", NULL, 0);
        esql_add(&s, " ELSE 'ok' END AS outcome FROM caller, ctx, i),");
        insert_cte(&s, r, "i.external_id", NULL, NULL, NULL, "FROM i, chk WHERE chk.outcome = 'ok' RETURNING *");
    } else {
        parent_cte(&s, res, "$3::jsonb");
        esql_addf(&s,
                  " chk AS (SELECT CASE WHEN caller.cscope = 'none' THEN 'forbidden'"
                  " WHEN NOT EXISTS (SELECT 1 FROM par) THEN 'invalid_%s'"
                  " WHEN NOT (SELECT ",
                  r->scope.ref);
        scope_ok(&s, "cscope", "par.owner_id", "par.team_id");
        esql_add(&s, " FROM par) THEN 'forbidden_target'");
        locked_checks(&s, r, "i", NULL);
        rule_checks(&s, r, "i", "NULL", "(SELECT id FROM par)", 0);
        esql_add(&s, " ELSE 'ok' END AS outcome FROM caller, ctx, i),");
        insert_cte(&s, r, "i.external_id", NULL, NULL, "(SELECT id FROM par)",
                   "FROM i, chk WHERE chk.outcome = 'ok' RETURNING *");
    }
    static const char *const w[] = {"ins"};
    write_tail(&s, e, res, w, 1, 0);
    esql_add(&s, " SELECT CASE WHEN ins.id IS NOT NULL THEN 'created' ELSE chk.outcome END, ins.id, ");
    etag(&s, r, "ins.version");
    esql_add(&s, ", CASE WHEN ins.id IS NOT NULL THEN ");
    doc_of(&s, res, "ins", 1);
    esql_add(&s, "::text END, caller.rscope FROM caller JOIN chk ON true LEFT JOIN ins ON true");
    embed_joins(&s, r, "ins.id");
    return esql_take(&s);
}

/* cur: the record $3 (FOR UPDATE) if the caller may read it, with its scope as _owner and _team. */
static void cur_by_id(engine_sql_t *s, const engine_res_t *res)
{
    char own[64], team[64];
    scope_cols(res, "t", own, team, sizeof(own));
    esql_addf(s, " cur AS (SELECT t.*, %s AS _owner, %s AS _team FROM caller JOIN ", own, team);
    from_item(s, res, "t");
    esql_add(s, " ON t.id = $3 AND t.deleted_at IS NULL AND ");
    scope_ok(s, "rscope", own, team);
    esql_add(s, " FOR UPDATE OF t),");
}

static char *gen_patch(const engine_t *e, const engine_res_t *res)
{
    const engine_resource_t *r = res->r;
    engine_sql_t s = {0};
    esql_add(&s, "WITH ");
    caller_cte(&s, r);
    write_ctx(&s, 6);
    esql_add(&s, ",");
    cur_by_id(&s, res);
    esql_add(&s, " m AS (SELECT cur.id, cur.version, cur._owner, cur._team, jsonb_merge_patch(jsonb_strip_nulls(");
    input_json(&s, res, "cur");
    esql_add(&s, "), $4::jsonb) AS d FROM cur), i AS (SELECT x.* FROM m, jsonb_to_record(m.d) AS x(");
    record_def(&s, r);
    esql_add(&s, ")),");
    if (r->scope.kind == ENGINE_OWNED) {
        esql_add(&s, " chk AS (SELECT m.id, CASE WHEN NOT ");
        scope_ok(&s, "uscope", "m._owner", "m._team");
        esql_add(&s, " THEN 'forbidden' WHEN (i.owner_id, i.team_id) IS DISTINCT FROM (m._owner, m._team) AND NOT"
                     " scope_move_ok(caller.uscope, caller.uid, caller.tid, m._team, i.owner_id, i.team_id)"
                     " THEN 'forbidden_target'"
                     " WHEN $5::int IS NOT NULL AND $5::int <> 0 AND $5::int <> m.version THEN 'precondition'");
        target_checks(&s, "i.owner_id", "i.team_id");
        locked_checks(&s, r, "i", "cur.%s");
        rule_checks(&s, r, "i", "m.id", NULL, 1);
        esql_add(&s, " ELSE 'ok' END AS outcome FROM caller, ctx, m, i, cur),");
        update_cte(&s, r, "i.external_id", "i.owner_id", "i.team_id", NULL,
                   "FROM i, chk WHERE t.id = chk.id AND chk.outcome = 'ok' RETURNING t.*");
    } else if (r->scope.kind == ENGINE_GLOBAL) {
        esql_add(&s, " chk AS (SELECT m.id, CASE WHEN caller.uscope <> 'all' THEN 'forbidden'"
                     " WHEN $5::int IS NOT NULL AND $5::int <> 0 AND $5::int <> m.version THEN 'precondition'");
        locked_checks(&s, r, "i", "cur.%s");
        rule_checks(&s, r, "i", "m.id", NULL, 1);
        esql_add(&s, " ELSE 'ok' END AS outcome FROM caller, ctx, m, i, cur),");
        update_cte(&s, r, "i.external_id", NULL, NULL, NULL,
                   "FROM i, chk WHERE t.id = chk.id AND chk.outcome = 'ok' RETURNING t.*");
    } else {
        parent_cte(&s, res, NULL);
        esql_add(&s, " chk AS (SELECT m.id, CASE WHEN NOT ");
        scope_ok(&s, "uscope", "m._owner", "m._team");
        esql_addf(&s,
                  " THEN 'forbidden' WHEN $5::int IS NOT NULL AND $5::int <> 0 AND $5::int <> m.version"
                  " THEN 'precondition' WHEN NOT EXISTS (SELECT 1 FROM par) THEN 'invalid_%s' WHEN NOT (SELECT ",
                  r->scope.ref);
        scope_ok(&s, "uscope", "par.owner_id", "par.team_id");
        esql_add(&s, " FROM par) OR NOT (SELECT scope_keeps_team(caller.uscope, m._team, par.team_id) FROM par)"
                     " THEN 'forbidden_target'");
        locked_checks(&s, r, "i", "cur.%s");
        rule_checks(&s, r, "i", "m.id", "(SELECT id FROM par)", 1);
        esql_add(&s, " ELSE 'ok' END AS outcome FROM caller, ctx, m, i, cur),");
        update_cte(&s, r, "i.external_id", NULL, NULL, "(SELECT id FROM par)",
                   "FROM i, chk WHERE t.id = chk.id AND chk.outcome = 'ok' RETURNING t.*");
    }
    static const char *const w[] = {"upd"};
    write_tail(&s, e, res, w, 1, 0);
    esql_add(&s, " SELECT CASE WHEN upd.id IS NOT NULL THEN 'updated' ELSE coalesce(chk.outcome, 'not_found') END,"
                 " upd.id, ");
    etag(&s, r, "upd.version");
    esql_add(&s, ", CASE WHEN upd.id IS NOT NULL THEN ");
    doc_of(&s, res, "upd", 1);
    esql_add(&s, "::text END, caller.rscope FROM caller LEFT JOIN chk ON true LEFT JOIN upd ON true");
    embed_joins(&s, r, "upd.id");
    return esql_take(&s);
}

/*
 * Upsert by external id ($3), a full replacement ($5), If-Match in $4. For
 * owned records, owner_id and team_id, when absent, keep their current
 * values (an ERP does not know CRM owners) or, for a new record, default to
 * the caller and the owner's team.
 */
static char *gen_put(const engine_t *e, const engine_res_t *res)
{
    const engine_resource_t *r = res->r;
    engine_sql_t s = {0};
    char own[64], team[64];
    scope_cols(res, "t", own, team, sizeof(own));
    esql_add(&s, "WITH ");
    caller_cte(&s, r);
    write_ctx(&s, 6);
    esql_addf(&s, ", cur AS (SELECT t.*, %s AS _owner, %s AS _team FROM ", own, team);
    from_item(&s, res, "t");
    esql_add(&s, " WHERE t.external_id = $3 AND t.deleted_at IS NULL FOR UPDATE OF t),"
                 " i AS (SELECT * FROM jsonb_to_record($5::jsonb) AS x(");
    record_def(&s, r);
    esql_add(&s, ")),");
    const char *vtg_owner = NULL, *vtg_team = NULL, *vpar = NULL;
    if (r->scope.kind == ENGINE_OWNED) {
        esql_add(
            &s,
            " o AS (SELECT coalesce(i.owner_id, (SELECT owner_id FROM cur), caller.uid) AS owner_id,"
            " CASE WHEN i.team_id IS NOT NULL THEN i.team_id"
            " WHEN i.owner_id IS NULL AND EXISTS (SELECT 1 FROM cur) THEN (SELECT team_id FROM cur) END AS team_id,"
            " EXISTS (SELECT 1 FROM cur) AS exists_ FROM i, caller),"
            " tg AS (SELECT o.owner_id, CASE WHEN o.team_id IS NOT NULL OR (o.exists_ AND (SELECT owner_id FROM i)"
            " IS NULL) THEN o.team_id ELSE (SELECT team_id FROM users WHERE id = o.owner_id) END AS team_id FROM o),"
            " chk AS (SELECT CASE WHEN o.exists_ THEN CASE WHEN NOT (SELECT ");
        scope_ok(&s, "rscope", "cur._owner", "cur._team");
        esql_add(&s, " FROM cur) THEN 'duplicate' WHEN NOT (SELECT ");
        scope_ok(&s, "uscope", "cur._owner", "cur._team");
        esql_add(&s,
                 " FROM cur) THEN 'forbidden' WHEN (tg.owner_id, tg.team_id) IS DISTINCT FROM (SELECT (_owner, _team)"
                 " FROM cur) AND NOT scope_move_ok(caller.uscope, caller.uid, caller.tid, (SELECT _team FROM cur),"
                 " tg.owner_id, tg.team_id) THEN 'forbidden_target'"
                 " WHEN $4::int IS NOT NULL AND $4::int <> 0 AND $4::int <> (SELECT version FROM cur)"
                 " THEN 'precondition'");
        target_checks(&s, "tg.owner_id", "tg.team_id");
        locked_checks(&s, r, "i", "(SELECT cur.%s FROM cur)");
        rule_checks(&s, r, "i", "(SELECT id FROM cur)", NULL, 0);
        esql_add(&s, " ELSE 'update' END ELSE CASE WHEN $4::int IS NOT NULL THEN 'precondition'"
                     " WHEN caller.cscope = 'none' THEN 'forbidden'"
                     " WHEN NOT in_scope_target(caller.cscope, caller.uid, caller.tid, tg.owner_id, tg.team_id)"
                     " THEN 'forbidden_target'");
        target_checks(&s, "tg.owner_id", "tg.team_id");
        locked_checks(&s, r, "i", NULL);
        rule_checks(&s, r, "i", "NULL", NULL, 0);
        esql_add(&s, " ELSE 'create' END END AS action FROM caller, ctx, o, tg, i),");
        vtg_owner = "tg.owner_id";
        vtg_team = "tg.team_id";
    } else if (r->scope.kind == ENGINE_GLOBAL) {
        esql_add(&s, " chk AS (SELECT CASE WHEN EXISTS (SELECT 1 FROM cur) THEN CASE WHEN caller.rscope <> 'all'"
                     " THEN 'duplicate' WHEN caller.uscope <> 'all' THEN 'forbidden' WHEN $4::int IS NOT NULL"
                     " AND $4::int <> 0 AND $4::int <> (SELECT version FROM cur) THEN 'precondition'");
        locked_checks(&s, r, "i", "(SELECT cur.%s FROM cur)");
        rule_checks(&s, r, "i", "(SELECT id FROM cur)", NULL, 0);
        esql_add(&s, " ELSE 'update' END ELSE CASE WHEN $4::int IS NOT NULL THEN 'precondition'"
                     " WHEN caller.cscope <> 'all' THEN 'forbidden'");
        locked_checks(&s, r, "i", NULL);
        rule_checks(&s, r, "i", "NULL", NULL, 0);
        esql_add(&s, " ELSE 'create' END END AS action FROM caller, ctx, i),");
    } else {
        parent_cte(&s, res, "$5::jsonb");
        esql_add(&s, " chk AS (SELECT CASE WHEN EXISTS (SELECT 1 FROM cur) THEN CASE WHEN NOT (SELECT ");
        scope_ok(&s, "rscope", "cur._owner", "cur._team");
        esql_add(&s, " FROM cur) THEN 'duplicate' WHEN NOT (SELECT ");
        scope_ok(&s, "uscope", "cur._owner", "cur._team");
        esql_addf(&s,
                  " FROM cur) THEN 'forbidden' WHEN $4::int IS NOT NULL AND $4::int <> 0 AND $4::int <> (SELECT version"
                  " FROM cur) THEN 'precondition' WHEN NOT EXISTS (SELECT 1 FROM par) THEN 'invalid_%s' WHEN NOT"
                  " (SELECT ",
                  r->scope.ref);
        scope_ok(&s, "uscope", "par.owner_id", "par.team_id");
        esql_add(&s, " FROM par) OR NOT (SELECT scope_keeps_team(caller.uscope, cur._team, par.team_id) FROM cur, par)"
                     " THEN 'forbidden_target'");
        locked_checks(&s, r, "i", "(SELECT cur.%s FROM cur)");
        rule_checks(&s, r, "i", "(SELECT id FROM cur)", "(SELECT id FROM par)", 0);
        esql_addf(&s,
                  " ELSE 'update' END ELSE CASE WHEN $4::int IS NOT NULL THEN 'precondition'"
                  " WHEN caller.cscope = 'none' THEN 'forbidden' WHEN NOT EXISTS (SELECT 1 FROM par) THEN 'invalid_%s'"
                  " WHEN NOT (SELECT ",
                  r->scope.ref);
        scope_ok(&s, "cscope", "par.owner_id", "par.team_id");
        esql_add(&s, " FROM par) THEN 'forbidden_target'");
        locked_checks(&s, r, "i", NULL);
        rule_checks(&s, r, "i", "NULL", "(SELECT id FROM par)", 0);
        esql_add(&s, " ELSE 'create' END END AS action FROM caller, ctx, i),");
        vpar = "(SELECT id FROM par)";
    }
    update_cte(&s, r, "$3", vtg_owner, vtg_team, vpar,
               vtg_owner != NULL ? "FROM i, chk, tg, cur WHERE t.id = cur.id AND chk.action = 'update' RETURNING t.*"
                                 : "FROM i, chk, cur WHERE t.id = cur.id AND chk.action = 'update' RETURNING t.*");
    esql_add(&s, ",");
    insert_cte(&s, r, "$3", vtg_owner, vtg_team, vpar,
               vtg_owner != NULL ? "FROM i, chk, tg WHERE chk.action = 'create' RETURNING *"
                                 : "FROM i, chk WHERE chk.action = 'create' RETURNING *");
    static const char *const w[] = {"upd", "ins"};
    write_tail(&s, e, res, w, 2, 0);
    esql_add(&s, " SELECT CASE WHEN upd.id IS NOT NULL THEN 'updated' WHEN ins.id IS NOT NULL THEN 'created'"
                 " ELSE chk.action END, coalesce(upd.id, ins.id), ");
    etag(&s, r, "coalesce(upd.version, ins.version)");
    esql_add(&s, ", CASE WHEN upd.id IS NOT NULL THEN ");
    doc_of(&s, res, "upd", 1);
    esql_add(&s, "::text WHEN ins.id IS NOT NULL THEN ");
    doc_of(&s, res, "ins", 1);
    esql_add(&s, "::text END, caller.rscope FROM caller JOIN chk ON true LEFT JOIN upd ON true LEFT JOIN ins ON true");
    embed_joins(&s, r, "coalesce(upd.id, ins.id)");
    return esql_take(&s);
}

static char *gen_delete(const engine_t *e, const engine_res_t *res)
{
    const engine_resource_t *r = res->r;
    engine_sql_t s = {0};
    esql_add(&s, "WITH ");
    caller_cte(&s, r);
    write_ctx(&s, 5);
    esql_add(&s, ",");
    cur_by_id(&s, res);
    esql_add(&s, " chk AS (SELECT cur.id, CASE WHEN NOT ");
    scope_ok(&s, "dscope", "cur._owner", "cur._team");
    esql_addf(&s,
              " THEN 'forbidden' WHEN $4::int IS NOT NULL AND $4::int <> 0 AND $4::int <> cur.version"
              " THEN 'precondition' ELSE 'ok' END AS outcome FROM caller, ctx, cur),"
              " del AS (UPDATE %s t SET deleted_at = now() FROM chk WHERE t.id = chk.id AND chk.outcome = 'ok'"
              " RETURNING t.*)",
              r->table);
    static const char *const w[] = {"del"};
    write_tail(&s, e, res, w, 1, 1);
    esql_add(&s, " SELECT CASE WHEN del.id IS NOT NULL THEN 'deleted' ELSE coalesce(chk.outcome, 'not_found') END,"
                 " del.id, NULL::text, NULL::text, caller.rscope FROM caller LEFT JOIN chk ON true"
                 " LEFT JOIN del ON true");
    return esql_take(&s);
}

/*
 * $3: a JSON array of records, each with an external_id (checked before).
 * Every item's fate is decided first; if any item may not be written,
 * nothing is, and the statement returns the refused items instead.
 */
static char *gen_bulk(const engine_t *e, const engine_res_t *res)
{
    const engine_resource_t *r = res->r;
    engine_sql_t s = {0};
    char own[64], team[64];
    scope_cols(res, "t", own, team, sizeof(own));
    esql_add(&s, "WITH ");
    caller_cte(&s, r);
    write_ctx(&s, 4);
    esql_add(&s, ", items AS (SELECT (n - 1)::int AS idx, d FROM jsonb_array_elements($3::jsonb) WITH ORDINALITY"
                 " AS x(d, n)),");
    esql_addf(&s, " cur AS (SELECT items.idx, t.*, %s AS _owner, %s AS _team FROM items JOIN ", own, team);
    from_item(&s, res, "t");
    esql_add(&s, " ON t.external_id = items.d ->> 'external_id' AND t.deleted_at IS NULL FOR UPDATE OF t),"
                 " i AS (SELECT items.idx, items.d AS _raw, x.* FROM items, jsonb_to_record(items.d) AS x(");
    record_def(&s, r);
    esql_add(&s, ")),");
    const char *vo = NULL, *vt = NULL, *vp = NULL;
    if (r->scope.kind == ENGINE_OWNED) {
        esql_add(&s, " tg AS (SELECT i.idx, coalesce(i.owner_id, cur.owner_id, caller.uid) AS owner_id,"
                     " CASE WHEN i.team_id IS NOT NULL THEN i.team_id WHEN i.owner_id IS NULL AND cur.id IS NOT NULL"
                     " THEN cur.team_id ELSE (SELECT team_id FROM users WHERE id = coalesce(i.owner_id, caller.uid))"
                     " END AS team_id, cur.id AS cur_id FROM i CROSS JOIN caller LEFT JOIN cur ON cur.idx = i.idx),"
                     " chk AS (SELECT tg.idx, tg.cur_id, CASE WHEN tg.cur_id IS NOT NULL THEN CASE WHEN NOT ");
        scope_ok(&s, "rscope", "cur._owner", "cur._team");
        esql_add(&s, " THEN 'duplicate' WHEN NOT ");
        scope_ok(&s, "uscope", "cur._owner", "cur._team");
        esql_add(&s, " THEN 'forbidden' WHEN (tg.owner_id, tg.team_id) IS DISTINCT FROM (cur._owner, cur._team) AND NOT"
                     " scope_move_ok(caller.uscope, caller.uid, caller.tid, cur._team, tg.owner_id, tg.team_id)"
                     " THEN 'forbidden_target'");
        target_checks(&s, "tg.owner_id", "tg.team_id");
        locked_checks(&s, r, "i", "cur.%s");
        rule_checks(&s, r, "i", "cur.id", NULL, 0);
        esql_add(&s, " ELSE 'update' END ELSE CASE WHEN caller.cscope = 'none' THEN 'forbidden'"
                     " WHEN NOT in_scope_target(caller.cscope, caller.uid, caller.tid, tg.owner_id, tg.team_id)"
                     " THEN 'forbidden_target'");
        target_checks(&s, "tg.owner_id", "tg.team_id");
        locked_checks(&s, r, "i", NULL);
        rule_checks(&s, r, "i", "NULL", NULL, 0);
        esql_add(
            &s,
            " ELSE 'create' END END AS action, tg.owner_id, tg.team_id, NULL::bigint AS par_id"
            " FROM caller CROSS JOIN ctx CROSS JOIN tg JOIN i ON i.idx = tg.idx LEFT JOIN cur ON cur.idx = tg.idx),");
        vo = "chk.owner_id";
        vt = "chk.team_id";
    } else if (r->scope.kind == ENGINE_GLOBAL) {
        esql_add(&s, " chk AS (SELECT i.idx, cur.id AS cur_id, CASE WHEN cur.id IS NOT NULL THEN CASE"
                     " WHEN caller.rscope <> 'all' THEN 'duplicate' WHEN caller.uscope <> 'all' THEN 'forbidden'");
        locked_checks(&s, r, "i", "cur.%s");
        rule_checks(&s, r, "i", "cur.id", NULL, 0);
        esql_add(&s, " ELSE 'update' END ELSE CASE WHEN caller.cscope <> 'all' THEN 'forbidden'");
        locked_checks(&s, r, "i", NULL);
        rule_checks(&s, r, "i", "NULL", NULL, 0);
        esql_add(&s,
                 " ELSE 'create' END END AS action, NULL::bigint AS owner_id, NULL::bigint AS team_id,"
                 " NULL::bigint AS par_id FROM caller CROSS JOIN ctx CROSS JOIN i LEFT JOIN cur ON cur.idx = i.idx),");
    } else {
        esql_addf(&s,
                  " par AS (SELECT i.idx, p.id, p.owner_id, p.team_id FROM caller, i JOIN %s p ON p.deleted_at IS NULL"
                  " AND (p.id = i.%s",
                  res->parent->table, r->scope.ref);
        if (r->scope.ref_external != NULL)
            esql_addf(&s, " OR (i.%s IS NULL AND p.external_id = i._raw ->> '%s')", r->scope.ref,
                      r->scope.ref_external);
        esql_add(&s, ") WHERE ");
        scope_ok(&s, "rscope", "p.owner_id", "p.team_id");
        esql_add(&s, "), chk AS (SELECT i.idx, cur.id AS cur_id, CASE WHEN cur.id IS NOT NULL THEN CASE WHEN NOT ");
        scope_ok(&s, "rscope", "cur._owner", "cur._team");
        esql_add(&s, " THEN 'duplicate' WHEN NOT ");
        scope_ok(&s, "uscope", "cur._owner", "cur._team");
        esql_addf(&s, " THEN 'forbidden' WHEN par.id IS NULL THEN 'invalid_%s' WHEN NOT ", r->scope.ref);
        scope_ok(&s, "uscope", "par.owner_id", "par.team_id");
        esql_add(&s, " OR NOT scope_keeps_team(caller.uscope, cur._team, par.team_id) THEN 'forbidden_target'");
        locked_checks(&s, r, "i", "cur.%s");
        rule_checks(&s, r, "i", "cur.id", "par.id", 0);
        esql_addf(&s,
                  " ELSE 'update' END ELSE CASE WHEN caller.cscope = 'none' THEN 'forbidden'"
                  " WHEN par.id IS NULL THEN 'invalid_%s' WHEN NOT ",
                  r->scope.ref);
        scope_ok(&s, "cscope", "par.owner_id", "par.team_id");
        esql_add(&s, " THEN 'forbidden_target'");
        locked_checks(&s, r, "i", NULL);
        rule_checks(&s, r, "i", "NULL", "par.id", 0);
        esql_add(&s, " ELSE 'create' END END AS action, NULL::bigint AS owner_id, NULL::bigint AS team_id,"
                     " par.id AS par_id FROM caller CROSS JOIN ctx CROSS JOIN i LEFT JOIN cur ON cur.idx = i.idx"
                     " LEFT JOIN par ON par.idx = i.idx),");
        vp = "chk.par_id";
    }
    esql_add(&s, " bad AS (SELECT idx, action FROM chk WHERE action NOT IN ('create', 'update')),");
    update_cte(&s, r, "i.external_id", vo, vt, vp,
               "FROM i JOIN chk ON chk.idx = i.idx WHERE t.id = chk.cur_id AND chk.action = 'update'"
               " AND NOT EXISTS (SELECT 1 FROM bad) RETURNING t.*");
    esql_add(&s, ",");
    insert_cte(&s, r, "i.external_id", vo, vt, vp,
               "FROM i JOIN chk ON chk.idx = i.idx WHERE chk.action = 'create' AND NOT EXISTS (SELECT 1 FROM bad) "
               "ORDER BY i.idx RETURNING *");
    static const char *const w[] = {"upd", "ins"};
    write_tail(&s, e, res, w, 2, 0);
    esql_add(&s, " SELECT caller.cscope, (SELECT count(*) FROM ins), (SELECT count(*) FROM upd),"
                 " (SELECT json_agg(json_build_object('index', idx, 'outcome', action) ORDER BY idx) FROM bad)::text"
                 " FROM caller");
    return esql_take(&s);
}

/* --- feed and history ------------------------------------------------------------ */

/*
 * A change that moved its record between scopes is shown by the side of
 * the move the caller can read: both sides, as it was written (an update;
 * a `move` row of a child that only followed its parent is not shown at
 * all); only the new side, a create with the record; only the old side, a
 * delete (a tombstone). $3 txid, $4 seq, $5 limit.
 */
static char *gen_feed(const engine_res_t *res)
{
    engine_sql_t s = {0};
    char merged[160] = "NULL::bigint";
    if (res->r->dedup != NULL)
        snprintf(merged, sizeof(merged),
                 "CASE WHEN c.op = 'delete' THEN (SELECT mx.merged_into FROM %s mx WHERE mx.id = c.entity_id) END",
                 res->r->table);
    esql_add(&s, "WITH ");
    caller_cte_read(&s, res->r);
    /* The tombstone of a merged record names its survivor (merged_into never changes once set). */
    esql_add(&s, " SELECT caller.rscope, ch.seq, ch.txid::text, CASE WHEN ch.merged_into IS NOT NULL THEN"
                 " json_build_object('op', ch.shown, 'id', ch.entity_id, 'external_id', ch.external_id, 'changed_at',"
                 " ch.at, 'merged_into', ch.merged_into) WHEN ch.shown = 'delete' THEN"
                 " json_build_object('op', ch.shown, 'id', ch.entity_id, 'external_id', ch.external_id, 'changed_at',"
                 " ch.at) ELSE json_build_object('op', ch.shown, 'id', ch.entity_id, 'external_id', ch.external_id,"
                 " 'changed_at', ch.at, 'data', (SELECT ");
    engine_doc(&s, res, "r");
    esql_addf(&s,
              " FROM jsonb_populate_record(NULL::%s, ch.data) r)) END::text"
              " FROM caller LEFT JOIN LATERAL (SELECT c.seq, c.txid, c.entity_id, c.external_id, c.data,"
              " CASE WHEN NOT c.moved OR c.op = 'delete' THEN c.op WHEN c.new_in AND c.old_in THEN 'update'"
              " WHEN c.new_in THEN 'create' ELSE 'delete' END AS shown,"
              " iso_utc(c.changed_at) AS at, %s AS merged_into"
              " FROM (SELECT c0.*, coalesce(in_scope(caller.rscope, caller.uid, caller.tid, c0.owner_id, c0.team_id),"
              " false) AS new_in, c0.moved AND coalesce(in_scope(caller.rscope, caller.uid, caller.tid,"
              " c0.old_owner_id, c0.old_team_id), false) AS old_in"
              " FROM changes c0 WHERE c0.entity = '%s' AND c0.txid < pg_snapshot_xmin(pg_current_snapshot())"
              " AND (c0.txid, c0.seq) > ($3::xid8, $4::bigint)) c"
              " WHERE (c.new_in OR c.old_in) AND NOT (c.op = 'move' AND c.new_in AND c.old_in)"
              " ORDER BY c.txid, c.seq LIMIT $5) ch ON true ORDER BY ch.txid, ch.seq",
              res->r->table, merged, res->r->name);
    return esql_take(&s);
}

/* A stored history value (to_jsonb of the column) as documents show it: decimals as text, times in UTC. */
static void history_value(engine_sql_t *s, const engine_resource_t *r, const char *v)
{
    esql_addf(s, "CASE WHEN jsonb_typeof(%s) = 'null' THEN %s", v, v);
    esql_addf(s, " WHEN e ->> 'field' = 'attrs' THEN jsonb_without(%s, caller.hidden_attrs)", v);
    for (size_t i = 0; i < r->nfields; i++) {
        const engine_field_t *f = &r->fields[i];
        if (f->v.type == VT_DECIMAL)
            esql_addf(s, " WHEN e ->> 'field' = '%s' THEN to_jsonb(%s #>> '{}')", f->v.name, v);
        else if (f->v.type == VT_TIMESTAMP)
            esql_addf(s, " WHEN e ->> 'field' = '%s' THEN to_jsonb(iso_utc((%s #>> '{}')::timestamptz))", f->v.name, v);
    }
    esql_addf(s, " ELSE %s END", v);
}

/*
 * $3 record id, $4 history id to continue below (NULL: newest), $5 rows.
 * The record is found whether deleted or not: whoever could read it may
 * read its history. Columns: rscope, found, entry id, entry JSON.
 */
static char *gen_history(const engine_res_t *res)
{
    engine_sql_t s = {0};
    char own[64], team[64];
    scope_cols(res, "t", own, team, sizeof(own));
    esql_add(&s, "WITH ");
    caller_cte_read(&s, res->r);
    esql_add(&s, ", rec AS (SELECT t.id FROM caller JOIN ");
    from_item(&s, res, "t");
    esql_add(&s, " ON t.id = $3 AND ");
    scope_ok(&s, "rscope", own, team);
    esql_add(&s, ") SELECT caller.rscope, EXISTS (SELECT 1 FROM rec), h.id, h.doc::text FROM caller LEFT JOIN LATERAL"
                 " (SELECT h.id, json_build_object('id', h.id, 'at', iso_utc(h.at),"
                 " 'actor', json_build_object('type', h.actor_type, 'id', h.actor_id), 'request_id', h.request_id,"
                 " 'transfer_id', h.transfer_id,"
                 " 'op', h.op, 'changes', (SELECT coalesce(jsonb_agg(jsonb_build_object('field', e ->> 'field',"
                 " 'old', ");
    history_value(&s, res->r, "(e -> 'old')");
    esql_add(&s, ", 'new', ");
    history_value(&s, res->r, "(e -> 'new')");
    esql_add(&s, ") ORDER BY o), '[]') FROM jsonb_array_elements(h.changes) WITH ORDINALITY x(e, o)"
                 " WHERE e ->> 'field' <> ALL (coalesce(caller.hidden, '{}')) AND NOT (e ->> 'field' = 'attrs'"
                 " AND caller.hidden_attrs IS NOT NULL AND jsonb_without(e -> 'old', caller.hidden_attrs)"
                 " IS NOT DISTINCT FROM jsonb_without(e -> 'new', caller.hidden_attrs)) AND e ->> 'field' = ANY ('{");
    for (int i = 0; res->out_fields[i] != NULL; i++)
        esql_addf(&s, "%s%s", i ? "," : "", res->out_fields[i]);
    esql_addf(&s,
              "}'::text[]))) AS doc FROM record_history h"
              " WHERE EXISTS (SELECT 1 FROM rec) AND h.entity = '%s' AND h.entity_id = $3"
              " AND ($4::bigint IS NULL OR h.id < $4::bigint) ORDER BY h.id DESC LIMIT $5) h ON true"
              " ORDER BY h.id DESC",
              res->r->name);
    return esql_take(&s);
}

/* --- lists ------------------------------------------------------------------------- */

static const char *time_cast = "timestamptz";

static void filter_conds(engine_sql_t *s, const engine_res_t *res, int count_form)
{
    const engine_resource_t *r = res->r;
    esql_add(s, " AND t.deleted_at IS NULL");
    for (int k = 0; k < res->nparams; k++) {
        const engine_param_t *p = &res->params[k];
        const char *col = p->field != NULL ? p->field->v.name : NULL;
        switch (p->kind) {
        case EP_EQ_ID:
            esql_addf(s, " AND ($%d::bigint IS NULL OR t.%s = $%d::bigint)", p->pos, col, p->pos);
            break;
        case EP_EQ_BOOL:
            esql_addf(s, " AND ($%d::boolean IS NULL OR t.%s = $%d::boolean)", p->pos, col, p->pos);
            break;
        case EP_EQ_DATE:
            esql_addf(s, " AND ($%d::date IS NULL OR t.%s = $%d::date)", p->pos, col, p->pos);
            break;
        case EP_EQ_ENUM:
        case EP_EQ_TEXT:
            esql_addf(s, " AND ($%d::text IS NULL OR t.%s = $%d::%s)", p->pos, col, p->pos, sql_type(p->field));
            break;
        case EP_TAG:
            esql_addf(s, " AND ($%d::text IS NULL OR t.%s @> ARRAY[$%d::text])", p->pos, col, p->pos);
            break;
        case EP_TIME: {
            const char *suffix = strrchr(p->name, '_');
            const char *op = strcmp(suffix, "_since") == 0 ? ">=" : strcmp(suffix, "_after") == 0 ? ">" : "<";
            esql_addf(s, " AND ($%d::%s IS NULL OR t.%s %s $%d::%s)", p->pos, time_cast, col, op, p->pos, time_cast);
            break;
        }
        case EP_Q: {
            esql_addf(s, " AND ($%d::text IS NULL OR ", p->pos);
            int first = 1;
            for (size_t i = 0; i < r->nfields; i++)
                if (r->fields[i].ef & EF_SEARCH) {
                    /* A hidden field is not searched: a match would tell its value. */
                    esql_addf(s, "%s(t.%s::text ILIKE $%d::text AND '%s' <> ALL (coalesce(caller.hidden, '{}')))",
                              first ? "" : " OR ", r->fields[i].v.name, p->pos, r->fields[i].v.name);
                    first = 0;
                }
            esql_add(s, ")");
            break;
        }
        case EP_CUSTOM: {
            char pbuf[32];
            snprintf(pbuf, sizeof(pbuf), "$%d::%s", p->pos, p->filter->kind == EFK_PROBABILITY ? "float8" : "text");
            const char *cond = count_form && p->filter->count_cond != NULL ? p->filter->count_cond : p->filter->cond;
            const char *kv[] = {"r", "t", "p", pbuf, NULL};
            esql_addf(s, " AND (%s IS NULL OR ", pbuf);
            tplv(s, cond, kv);
            esql_add(s, ")");
            break;
        }
        }
    }
}

static void list_total(engine_sql_t *s, const engine_list_ctx_t *cx)
{
    esql_addf(s, " FROM caller CROSS JOIN LATERAL (SELECT CASE WHEN $%d::bool THEN (SELECT count(*) FROM %s WHERE ",
              EL_COUNT, cx->from);
    scope_ok(s, "rscope", cx->own, cx->team);
    esql_addf(s, "%s) END AS total OFFSET 0) tt", cx->count_filters);
}

/*
 * A sort key that may be null sorts as '' (text only; checked at build):
 * keyset pagination compares row values, and a null would end every page
 * after it. The resource's index should be on the same expression.
 */
static void sort_key(char *out, size_t len, const engine_field_t *key, const char *alias)
{
    if (key->v.flags & VF_NULLABLE)
        snprintf(out, len, "coalesce(%s.%s, '')", alias, key->v.name);
    else
        snprintf(out, len, "%s.%s", alias, key->v.name);
}

static void list_generic(engine_sql_t *s, const engine_list_ctx_t *cx, const engine_field_t *key, int desc)
{
    const char *dir = desc ? "DESC" : "ASC", *cmp = desc ? "<" : ">";
    char kt[96], kx[96], kc[96];
    sort_key(kt, sizeof(kt), key, "t");
    sort_key(kx, sizeof(kx), key, "x");
    sort_key(kc, sizeof(kc), key, "kc");
    esql_add(s, "WITH ");
    esql_add(s, cx->caller);
    esql_add(s, " SELECT caller.rscope, p.id, p.sortkey, p.doc, tt.total");
    list_total(s, cx);
    esql_addf(s, " LEFT JOIN LATERAL (SELECT x.id, (%s)::text AS sortkey, ", kx);
    engine_doc_projected(s, cx->res, "x");
    esql_add(s, " AS doc FROM (");
    static const char *const conds[] = {"caller.rscope = 'all'", "caller.rscope = 'team' AND %s = caller.tid",
                                        "caller.rscope = 'own' AND %s = caller.uid"};
    for (int b = 0; b < 3; b++) {
        esql_addf(s, "%s(SELECT t.* FROM %s WHERE ", b ? " UNION ALL " : "", cx->from);
        esql_addf(s, conds[b], b == 1 ? cx->team : cx->own);
        esql_add(s, cx->filters);
        esql_addf(s,
                  " AND ($%5$d::bigint IS NULL OR (%1$s, t.id) %2$s (coalesce($%4$d::%3$s, (SELECT %7$s FROM %6$s kc"
                  " WHERE kc.id = $%5$d::bigint)), $%5$d::bigint))",
                  kt, cmp, sql_type(key), EL_KEY, EL_ID, cx->r->table, kc);
        esql_addf(s, " ORDER BY %s %s, t.id %s LIMIT $%d)", kt, dir, dir, EL_FETCH);
    }
    esql_addf(s, ") x ORDER BY %s %s, x.id %s) p ON true", kx, dir, dir);
}

/* --- building ----------------------------------------------------------------------- */

static int plain_name(const char *s)
{
    if (s == NULL || *s == '\0' || strlen(s) > 48)
        return 0;
    for (; *s != '\0'; s++)
        if (!(islower((unsigned char)*s) || isdigit((unsigned char)*s) || *s == '_'))
            return 0;
    return 1;
}

static void add_param(engine_res_t *res, const char *name, engine_param_kind_t kind, const engine_field_t *f,
                      const engine_filter_t *flt)
{
    res->params = realloc(res->params, sizeof(*res->params) * (size_t)(res->nparams + 1));
    if (res->params == NULL || (name = strdup(name)) == NULL)
        abort();
    res->params[res->nparams] = (engine_param_t){(char *)name, kind, f, flt, EL_FIRST_FILTER + res->nparams};
    res->nparams++;
}

static void build_params(engine_res_t *res)
{
    const engine_resource_t *r = res->r;
    int search = 0;
    char name[64];
    for (size_t i = 0; i < r->nfields; i++) {
        const engine_field_t *f = &r->fields[i];
        search |= (f->ef & EF_SEARCH) != 0;
        if (f->ef & EF_FILTER) {
            switch (f->v.type) {
            case VT_ID:
                add_param(res, f->v.name, EP_EQ_ID, f, NULL);
                break;
            case VT_ENUM:
                add_param(res, f->v.name, EP_EQ_ENUM, f, NULL);
                break;
            case VT_BOOL:
                add_param(res, f->v.name, EP_EQ_BOOL, f, NULL);
                break;
            case VT_DATE:
                add_param(res, f->v.name, EP_EQ_DATE, f, NULL);
                break;
            case VT_STRING_ARRAY:
                add_param(res, "tag", EP_TAG, f, NULL);
                break;
            default:
                add_param(res, f->v.name, EP_EQ_TEXT, f, NULL);
            }
        }
        size_t stem = strlen(f->v.name);
        if (stem > 3 && strcmp(f->v.name + stem - 3, "_at") == 0)
            stem -= 3;
        if (f->ef & EF_SINCE) {
            snprintf(name, sizeof(name), "%.*s_since", (int)stem, f->v.name);
            add_param(res, name, EP_TIME, f, NULL);
        }
        if (f->ef & EF_BETWEEN) {
            snprintf(name, sizeof(name), "%.*s_after", (int)stem, f->v.name);
            add_param(res, name, EP_TIME, f, NULL);
            snprintf(name, sizeof(name), "%.*s_before", (int)stem, f->v.name);
            add_param(res, name, EP_TIME, f, NULL);
        }
    }
    if (search)
        add_param(res, "q", EP_Q, NULL, NULL);
    for (size_t i = 0; i < r->nfilters; i++)
        add_param(res, r->filters[i].name, EP_CUSTOM, NULL, &r->filters[i]);
    res->nlist_params = EL_FIRST_FILTER + res->nparams - 1;
}

static int build_lists(engine_t *e, engine_res_t *res, char *err, size_t errlen)
{
    const engine_resource_t *r = res->r;
    engine_sql_t s = {0};
    char own[64], team[64];
    scope_cols(res, "t", own, team, sizeof(own));
    caller_cte_read(&s, res->r);
    char *caller = esql_take(&s);
    from_item(&s, res, "t");
    char *from = esql_take(&s);
    filter_conds(&s, res, 0);
    char *filters = esql_take(&s);
    filter_conds(&s, res, 1);
    char *count_filters = esql_take(&s);
    res->ctx = (engine_list_ctx_t){r, caller, from, strdup(own), strdup(team), filters, count_filters, res};
    engine_list_ctx_t cx = res->ctx;

    int n = 0;
    while (r->sorts != NULL && r->sorts[n].name != NULL)
        n++;
    res->nsorts = n;
    res->list = calloc((size_t)(2 * n + 1), sizeof(*res->list));
    res->sort_names = calloc((size_t)(n + 1), sizeof(*res->sort_names));
    if (res->list == NULL || res->sort_names == NULL)
        abort();
    int ok = 0;
    for (int i = 0; i < n; i++) {
        const engine_sort_t *so = &r->sorts[i];
        res->sort_names[i] = (char *)so->name;
        for (int desc = 0; desc < 2; desc++) {
            if (so->list != NULL) {
                so->list(&s, &cx, desc);
            } else {
                const engine_field_t *f = engine_field(r, so->name);
                if (f == NULL || !column(r, f)) {
                    snprintf(err, errlen, "%s: sort %s is not a column", r->name, so->name);
                    goto out;
                }
                if ((f->v.flags & VF_NULLABLE) && strcmp(sql_type(f), "text") != 0) {
                    snprintf(err, errlen, "%s: sort %s may be null and is not text", r->name, so->name);
                    goto out;
                }
                list_generic(&s, &cx, f, desc);
            }
            res->list[2 * i + desc] = esql_take(&s);
        }
    }
    const char *d = r->default_sort;
    int desc = d != NULL && d[0] == '-';
    res->default_sort = -1;
    for (int i = 0; d != NULL && i < n; i++)
        if (strcmp(r->sorts[i].name, d + desc) == 0)
            res->default_sort = 2 * i + desc;
    if (res->default_sort < 0) {
        snprintf(err, errlen, "%s: the default sort is not one of its sorts", r->name);
        goto out;
    }
    ok = 1;
out:
    (void)e;
    return ok ? 0 : -1;
}

const engine_field_t *engine_field(const engine_resource_t *r, const char *name)
{
    for (size_t i = 0; i < r->nfields; i++)
        if (strcmp(r->fields[i].v.name, name) == 0)
            return &r->fields[i];
    return NULL;
}

const engine_res_t *engine_res(const engine_t *e, const engine_resource_t *r)
{
    return res_of(e, r);
}

static int check_description(const engine_res_t *res, char *err, size_t errlen)
{
    const engine_resource_t *r = res->r;
    if (!plain_name(r->name) || !plain_name(r->table)) {
        snprintf(err, errlen, "a resource has a bad name or table");
        return -1;
    }
    if (strcmp(r->name, r->table) != 0) {
        /* The feed and history trigger (schema/0016) names records by their table. */
        snprintf(err, errlen, "%s: a resource is named as its table (%s)", r->name, r->table);
        return -1;
    }
    for (size_t i = 0; i < r->nfields; i++)
        if (!plain_name(r->fields[i].v.name)) {
            snprintf(err, errlen, "%s: field %zu has a bad name", r->name, i);
            return -1;
        }
    static const char *const required[] = {"id", "external_id", "created_at", "updated_at", "version"};
    for (size_t i = 0; i < sizeof(required) / sizeof(required[0]); i++)
        if (engine_field(r, required[i]) == NULL) {
            snprintf(err, errlen, "%s: every resource has the field %s", r->name, required[i]);
            return -1;
        }
    if (r->scope.kind == ENGINE_GLOBAL && (r->scope.parent != NULL || engine_field(r, "owner_id") != NULL)) {
        snprintf(err, errlen, "%s: a global resource has no parent and no owner", r->name);
        return -1;
    }
    if (r->scope.kind == ENGINE_OWNED && (engine_field(r, "owner_id") == NULL || engine_field(r, "team_id") == NULL)) {
        snprintf(err, errlen, "%s: an owned resource has owner_id and team_id", r->name);
        return -1;
    }
    if (r->scope.kind == ENGINE_PARENT &&
        (r->scope.parent == NULL || r->scope.parent->scope.kind != ENGINE_OWNED || !plain_name(r->scope.ref) ||
         engine_field(r, r->scope.ref) == NULL ||
         (r->scope.ref_external != NULL && engine_field(r, r->scope.ref_external) == NULL))) {
        snprintf(err, errlen, "%s: a child resource names an owned parent and its reference field", r->name);
        return -1;
    }
    const engine_dedup_t *d = r->dedup;
    for (size_t i = 0; d != NULL && d->phones != NULL && d->phones[i] != NULL; i++)
        if (engine_field(r, d->phones[i]) == NULL) {
            snprintf(err, errlen, "%s: a phone column of its duplicates is not a field", r->name);
            return -1;
        }
    if (d != NULL && ((d->email != NULL && engine_field(r, d->email) == NULL) || d->name == NULL || d->group == NULL)) {
        snprintf(err, errlen, "%s: its duplicates need a name, a group and fields for e-mail", r->name);
        return -1;
    }
    for (size_t i = 0; i < r->nchecks; i++)
        if (!plain_name(r->checks[i].field)) {
            snprintf(err, errlen, "%s: check %zu names a bad field", r->name, i);
            return -1;
        }
    char verr[200];
    if (validate_table_check(res->vf, res->nvf, verr, sizeof(verr)) != 0) {
        snprintf(err, errlen, "%s: %s", r->name, verr);
        return -1;
    }
    return 0;
}

engine_t *engine_build(const engine_resource_t *const *resources, char *err, size_t errlen)
{
    engine_t *e = calloc(1, sizeof(*e));
    if (e == NULL)
        abort();
    while (resources[e->n] != NULL)
        e->n++;
    e->res = calloc(e->n, sizeof(*e->res));
    if (e->res == NULL)
        abort();
    for (size_t k = 0; k < e->n; k++) {
        engine_res_t *res = &e->res[k];
        const engine_resource_t *r = resources[k];
        res->r = r;
        res->parent = r->scope.kind == ENGINE_PARENT ? r->scope.parent : NULL;
        res->vf = calloc(r->nfields, sizeof(*res->vf));
        res->out_fields = calloc(r->nfields + 1, sizeof(*res->out_fields));
        if (res->vf == NULL || res->out_fields == NULL)
            abort();
        size_t no = 0;
        for (size_t i = 0; i < r->nfields; i++) {
            res->vf[i] = r->fields[i].v;
            if (!(r->fields[i].ef & EF_INPUT_ONLY))
                res->out_fields[no++] = (char *)r->fields[i].v.name;
        }
        res->nvf = r->nfields;
        if (check_description(res, err, errlen) != 0)
            goto fail;
    }
    for (size_t k = 0; k < e->n; k++)
        if (e->res[k].parent != NULL && res_of(e, e->res[k].parent) == NULL) {
            snprintf(err, errlen, "%s: its parent is not a registered resource", e->res[k].r->name);
            goto fail;
        }
    for (size_t k = 0; k < e->n; k++) {
        engine_res_t *res = &e->res[k];
        build_params(res);
        res->sql[ENGINE_SQL_GET] = gen_get(res);
        res->sql[ENGINE_SQL_CREATE] = gen_create(e, res);
        res->sql[ENGINE_SQL_PATCH] = gen_patch(e, res);
        res->sql[ENGINE_SQL_PUT] = gen_put(e, res);
        res->sql[ENGINE_SQL_DELETE] = gen_delete(e, res);
        res->sql[ENGINE_SQL_BULK] = gen_bulk(e, res);
        res->sql[ENGINE_SQL_FEED] = gen_feed(res);
        res->sql[ENGINE_SQL_HISTORY] = gen_history(res);
        res->sql[ENGINE_SQL_VISIBLE] = gen_visible(res);
        if (build_lists(e, res, err, errlen) != 0)
            goto fail;
        if (res->nlist_params > 60) {
            snprintf(err, errlen, "%s: too many list filters", res->r->name);
            goto fail;
        }
    }
    return e;
fail:
    engine_free(e);
    return NULL;
}

void engine_free(engine_t *e)
{
    if (e == NULL)
        return;
    for (size_t k = 0; k < e->n; k++) {
        engine_res_t *res = &e->res[k];
        for (int i = 0; i < ENGINE_SQL_COUNT_; i++)
            free(res->sql[i]);
        for (int i = 0; res->list != NULL && i < 2 * res->nsorts; i++)
            free(res->list[i]);
        free(res->list);
        free(res->sort_names);
        free(res->out_fields);
        for (int i = 0; i < res->nparams; i++)
            free(res->params[i].name);
        free(res->params);
        free(res->vf);
        free((char *)res->ctx.caller);
        free((char *)res->ctx.from);
        free((char *)res->ctx.own);
        free((char *)res->ctx.team);
        free((char *)res->ctx.filters);
        free((char *)res->ctx.count_filters);
    }
    free(e->res);
    free(e);
}

const char *engine_sql(const engine_t *e, const engine_resource_t *r, int which)
{
    const engine_res_t *res = res_of(e, r);
    return res != NULL && which >= 0 && which < ENGINE_SQL_COUNT_ ? res->sql[which] : NULL;
}

const char *engine_sql_list(const engine_t *e, const engine_resource_t *r, int sort)
{
    const engine_res_t *res = res_of(e, r);
    return res != NULL && sort >= 0 && sort < 2 * res->nsorts ? res->list[sort] : NULL;
}

const validate_field_t *engine_validate_fields(const engine_t *e, const engine_resource_t *r, size_t *n)
{
    const engine_res_t *res = res_of(e, r);
    *n = res != NULL ? res->nvf : 0;
    return res != NULL ? res->vf : NULL;
}

int engine_param_pos(const engine_res_t *res, const char *name)
{
    for (int i = 0; i < res->nparams; i++)
        if (strcmp(res->params[i].name, name) == 0)
            return res->params[i].pos;
    return 0;
}

const engine_list_ctx_t *engine_list_ctx(const engine_res_t *res)
{
    return &res->ctx;
}
