/*
 * api/merge_db.c - the statements of duplicates and merges, generated at
 * start-up from the engine's descriptions (see merge_db.h).
 *
 * A resource's scope pieces come from engine_list_ctx() (its FROM item as
 * t, joined to the parent as tp for child resources, and the owner and team
 * expressions); the pieces this file needs under other aliases are built
 * the same way. Reads take their caller from api/callers.c like every read;
 * the merge decides its caller from the tables, with the permissions of
 * every module at hand, since moving a customer's orders is an update of
 * orders. Identifiers come only from the compiled descriptions (checked by
 * engine_build to be plain lower-case names); every value is a parameter.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine_int.h"
#include "merge_db.h"

/* Appends tpl with every "{t}" replaced by alias. */
static void subst(engine_sql_t *s, const char *tpl, const char *alias)
{
    for (const char *p = tpl; *p != '\0';) {
        const char *q = strstr(p, "{t}");
        if (q == NULL) {
            esql_add(s, p);
            break;
        }
        esql_addf(s, "%.*s%s", (int)(q - p), p, alias);
        p = q + 3;
    }
}

/* "<table> a" or, for a child, "<table> a JOIN <parent> ap ON ap.id = a.<ref>", with its owner and team columns. */
static void from_as(engine_sql_t *s, const engine_resource_t *r, const char *a, char *own, char *team, size_t len)
{
    if (r->scope.kind == ENGINE_OWNED) {
        esql_addf(s, "%s %s", r->table, a);
        snprintf(own, len, "%s.owner_id", a);
        snprintf(team, len, "%s.team_id", a);
    } else {
        esql_addf(s, "%s %s JOIN %s %sp ON %sp.id = %s.%s", r->table, a, r->scope.parent->table, a, a, a, r->scope.ref);
        snprintf(own, len, "%sp.owner_id", a);
        snprintf(team, len, "%sp.team_id", a);
    }
}

static int is_embed(const engine_resource_t *r, const char *name)
{
    for (size_t i = 0; i < r->nembeds; i++)
        if (strcmp(r->embeds[i].name, name) == 0)
            return 1;
    return 0;
}

int merge_field_choosable(const engine_resource_t *r, const engine_field_t *f)
{
    const char *n = f->v.name;
    return !(f->v.flags & VF_READONLY) && !(f->ef & EF_INPUT_ONLY) && !is_embed(r, n) &&
           strcmp(n, "external_id") != 0 && strcmp(n, "owner_id") != 0 && strcmp(n, "team_id") != 0 &&
           (r->scope.ref == NULL || strcmp(n, r->scope.ref) != 0);
}

/* --- reads ------------------------------------------------------------------------------ */

static char *gen_phones(const engine_resource_t *r)
{
    engine_sql_t s = {0};
    char own[64], team[64];
    const engine_dedup_t *d = r->dedup;
    esql_add(&s, "WITH ");
    engine_caller(&s, r, 0);
    esql_add(&s, " SELECT caller.rscope, coalesce(x.found, false)");
    for (size_t i = 0; d->phones != NULL && d->phones[i] != NULL; i++)
        esql_addf(&s, ", x.%s", d->phones[i]);
    esql_add(&s, " FROM caller LEFT JOIN LATERAL (SELECT true AS found");
    for (size_t i = 0; d->phones != NULL && d->phones[i] != NULL; i++)
        esql_addf(&s, ", t.%s", d->phones[i]);
    esql_add(&s, " FROM ");
    from_as(&s, r, "t", own, team, sizeof(own));
    esql_addf(&s,
              " WHERE t.id = $3 AND t.deleted_at IS NULL AND in_scope(caller.rscope, caller.uid, caller.tid, %s, %s))"
              " x ON true",
              own, team);
    return esql_take(&s);
}

/*
 * One reason's candidates: live records other than the record, visible to
 * the caller, found by `cond` over c (and me, the record), at most
 * MERGE_REASON_ROWS of them.
 */
static void reason(engine_sql_t *s, const engine_resource_t *r, const char *name, const char *score, const char *cond,
                   int first)
{
    char own[64], team[64];
    esql_addf(s, "%s(SELECT c.id, '%s' AS reason, %s AS score FROM me, ", first ? "" : " UNION ALL ", name, score);
    from_as(s, r, "c", own, team, sizeof(own));
    esql_addf(s,
              " WHERE %s AND c.deleted_at IS NULL AND c.id <> me.id"
              " AND in_scope(me.rscope, me.uid, me.tid, %s, %s) LIMIT %d)",
              cond, own, team, MERGE_REASON_ROWS);
}

static char *gen_duplicates(const engine_t *e, const engine_resource_t *r)
{
    engine_sql_t s = {0}, c = {0};
    char own[64], team[64];
    const engine_dedup_t *d = r->dedup;
    int first = 1;
    /*
     * pg_trgm's `%` answers from its index with the similarity threshold of
     * the session; set for this statement's transaction only, in the CTE
     * every name comparison takes its parameters from, so it is set before
     * any of them runs.
     */
    esql_add(&s, "WITH ");
    engine_caller(&s, r, 0);
    esql_add(&s, ", me AS MATERIALIZED (SELECT t.*, caller.uid, caller.tid, caller.rscope,"
                 " set_config('pg_trgm.similarity_threshold', '" MERGE_NAME_SIMILARITY "', true) AS _threshold, ");
    subst(&s, d->name, "t");
    esql_add(&s, " AS _name, ");
    subst(&s, d->group, "t");
    esql_add(&s, " AS _grp FROM caller, ");
    from_as(&s, r, "t", own, team, sizeof(own));
    esql_addf(&s,
              " WHERE t.id = $3 AND t.deleted_at IS NULL AND in_scope(caller.rscope, caller.uid, caller.tid, %s, %s)),"
              " hits AS (",
              own, team);
    if (d->email != NULL) {
        /* The expression of the index on lower-cased, trimmed addresses; an empty address matches nothing. */
        /* A field the caller's role hides is no reason: a match would tell its value (field rules). */
        esql_addf(&c,
                  "lower(btrim(c.%1$s::text)) = lower(btrim(me.%1$s::text)) AND btrim(me.%1$s::text) <> ''"
                  " AND (SELECT '%1$s' <> ALL (coalesce(caller.hidden, '{}')) FROM caller)",
                  d->email);
        reason(&s, r, "email", MERGE_EMAIL_WEIGHT, c.base, first);
        first = 0;
        free(esql_take(&c));
    }
    for (size_t i = 0; d->phones != NULL && d->phones[i] != NULL; i++) {
        esql_addf(&c,
                  "phone_key(c.%1$s) = ANY ($4::text[]) AND (SELECT '%1$s' <> ALL (coalesce(caller.hidden, '{}'))"
                  " FROM caller)",
                  d->phones[i]);
        reason(&s, r, "phone", MERGE_PHONE_WEIGHT, c.base, first);
        first = 0;
        free(esql_take(&c));
    }
    /* `%` (similarity at least the threshold) is what the trigram index answers; then strictly above it. */
    subst(&c, d->group, "c");
    esql_add(&c, " = me._grp AND ");
    subst(&c, d->name, "c");
    esql_add(&c, " % me._name AND similarity(");
    subst(&c, d->name, "c");
    esql_add(&c, ", me._name) > " MERGE_NAME_SIMILARITY);
    char *namecond = esql_take(&c);
    engine_sql_t sim = {0};
    esql_add(&sim, "similarity(");
    subst(&sim, d->name, "c");
    esql_add(&sim, ", me._name)");
    reason(&s, r, "name", sim.base, namecond, first);
    free(esql_take(&sim));
    free(namecond);
    /* Per candidate, each reason's best score and the score of them all: 1 - the product of (1 - each). */
    esql_addf(&s, "), best AS (SELECT id, max(score) FILTER (WHERE reason = 'email') AS e,"
                  " max(score) FILTER (WHERE reason = 'phone') AS p, max(score) FILTER (WHERE reason = 'name') AS n"
                  " FROM hits GROUP BY id), ranked AS (SELECT best.*, 1 - (1 - coalesce(e, 0)) * (1 - coalesce(p, 0))"
                  " * (1 - coalesce(n, 0)) AS total FROM best ORDER BY total DESC, id LIMIT $5::int)"
                  " SELECT caller.rscope, EXISTS (SELECT 1 FROM me), k.doc FROM caller LEFT JOIN LATERAL"
                  " (SELECT json_build_object('id', ranked.id, 'score', round(ranked.total::numeric, 3), 'reasons',"
                  " (SELECT json_agg(json_build_object('reason', x.reason, 'score', round(x.score::numeric, 3))"
                  " ORDER BY x.o) FROM (VALUES (1, 'email', ranked.e), (2, 'phone', ranked.p), (3, 'name', ranked.n))"
                  " x(o, reason, score) WHERE x.score IS NOT NULL), 'record', ");
    engine_doc(&s, engine_res(e, r), "c");
    esql_addf(&s,
              ")::text AS doc, ranked.total, ranked.id FROM ranked JOIN %s c ON c.id = ranked.id"
              " ORDER BY ranked.total DESC, ranked.id) k ON true ORDER BY k.total DESC, k.id",
              r->table);
    return esql_take(&s);
}

/* --- the merge --------------------------------------------------------------------------- */

/* The references to r: a child's reference to its parent, or a field whose description names r. */
static int refers(const engine_resource_t *x, const engine_field_t *f, const engine_resource_t *r)
{
    if (x->scope.kind == ENGINE_PARENT && x->scope.parent == r && strcmp(f->v.name, x->scope.ref) == 0)
        return 1;
    return f->ref == r && !(f->ef & EF_INPUT_ONLY);
}

static int refers_any(const engine_resource_t *x, const engine_resource_t *r)
{
    for (size_t i = 0; i < x->nfields; i++)
        if (refers(x, &x->fields[i], r))
            return 1;
    return 0;
}

/* " OR "-joined "<a>.<col> = ANY ($4::bigint[])" over x's references to r. */
static void refs_cond(engine_sql_t *s, const engine_resource_t *x, const engine_resource_t *r, const char *a)
{
    int first = 1;
    esql_add(s, "(");
    for (size_t i = 0; i < x->nfields; i++)
        if (refers(x, &x->fields[i], r)) {
            esql_addf(s, "%s%s.%s = ANY ($4::bigint[])", first ? "" : " OR ", a, x->fields[i].v.name);
            first = 0;
        }
    esql_add(s, ")");
}

/* The survivor's new value of a choosable field f of r (alias t: the survivor as it was). */
static void survivor_value(engine_sql_t *s, const engine_resource_t *r, const engine_field_t *f)
{
    const char *n = f->v.name;
    engine_sql_t v = {0};
    esql_addf(
        &v, "CASE WHEN $5::jsonb ? '%1$s' THEN (SELECT w.%1$s FROM %2$s w WHERE w.id = ($5::jsonb ->> '%1$s')::bigint)",
        n, r->table);
    if (r->scope.kind == ENGINE_PARENT && (f->ef & EF_ONE_PER_PARENT))
        /* The one flagged record of its parent stays flagged when it was merged into another. */
        esql_addf(&v, " ELSE t.%1$s OR EXISTS (SELECT 1 FROM %2$s w WHERE w.id = ANY ($4::bigint[]) AND w.%1$s) END", n,
                  r->table);
    else
        esql_addf(&v, " ELSE t.%s END", n);
    if (f->ref == r)
        /* A reference to a record merged into the survivor, or to itself, would make it name itself. */
        esql_addf(s, "CASE WHEN (%1$s) = ANY ($3::bigint || $4::bigint[]) THEN NULL ELSE (%1$s) END", v.base);
    else
        esql_add(s, v.base);
    free(esql_take(&v));
}

/*
 * The update of x's records that reference the merged ones: each reference
 * re-pointed to the survivor; a one-per-parent flag kept only when the
 * survivor has no flagged child and the record is the first flagged one of
 * the merged parents (in the order of merge_ids); a reference of x to its
 * own records that names no live one is cleared, since a moved record is
 * checked again as it moves (contacts report to live contacts).
 */
static void move_cte(engine_sql_t *s, const engine_resource_t *x, const engine_resource_t *r)
{
    int first = 1;
    esql_addf(s, ", mv_%s AS (UPDATE %s x SET ", x->name, x->table);
    for (size_t i = 0; i < x->nfields; i++) {
        const engine_field_t *f = &x->fields[i];
        const char *n = f->v.name;
        if (refers(x, f, r)) {
            esql_addf(s, "%1$s%2$s = CASE WHEN x.%2$s = ANY ($4::bigint[]) THEN $3::bigint ELSE x.%2$s END",
                      first ? "" : ", ", n);
        } else if (f->ref == x && x != r) {
            esql_addf(s,
                      "%1$s%2$s = CASE WHEN EXISTS (SELECT 1 FROM %3$s y WHERE y.id = x.%2$s AND y.deleted_at IS NULL)"
                      " THEN x.%2$s END",
                      first ? "" : ", ", n, x->table);
        } else if ((f->ef & EF_ONE_PER_PARENT) && x->scope.kind == ENGINE_PARENT && x->scope.parent == r) {
            const char *ref = x->scope.ref;
            esql_addf(s,
                      "%1$s%2$s = x.%2$s AND NOT EXISTS (SELECT 1 FROM %3$s y WHERE y.%4$s = $3::bigint AND y.%2$s"
                      " AND y.deleted_at IS NULL) AND x.id = (SELECT y.id FROM %3$s y WHERE y.%4$s = ANY ($4::bigint[])"
                      " AND y.%2$s AND y.deleted_at IS NULL ORDER BY array_position($4::bigint[], y.%4$s), y.id"
                      " LIMIT 1)",
                      first ? "" : ", ", n, x->table, ref);
        } else {
            continue;
        }
        first = 0;
    }
    esql_add(s, " FROM chk WHERE chk.outcome = 'ok' AND x.deleted_at IS NULL AND ");
    refs_cond(s, x, r, "x");
    if (x == r)
        esql_add(s, " AND x.id <> ALL ($3::bigint || $4::bigint[])");
    esql_add(s, " RETURNING x.id)");
}

static char *gen_merge(const engine_t *e, const engine_resource_t *r)
{
    engine_sql_t s = {0};
    char own[64], team[64];
    const engine_res_t *res = engine_res(e, r);
    esql_add(&s, "WITH ");
    engine_caller(&s, r, 7); /* $7: the request id */
    esql_add(&s, ",");
    /* Every record named, locked in the order of their ids (two merges never wait for each other in a circle). */
    esql_add(&s, " tgt AS (SELECT t.*, ");
    engine_sql_t from = {0};
    from_as(&from, r, "t", own, team, sizeof(own));
    esql_addf(&s,
              "%1$s AS _owner, %2$s AS _team, in_scope(caller.rscope, caller.uid, caller.tid, %1$s, %2$s) AS _readable,"
              " in_scope(caller.uscope, caller.uid, caller.tid, %1$s, %2$s) AS _updatable FROM caller, %3$s"
              " WHERE t.id = ANY ($3::bigint || $4::bigint[]) AND t.deleted_at IS NULL ORDER BY t.id FOR UPDATE OF t),"
              " sur AS (SELECT * FROM tgt WHERE id = $3::bigint),"
              " missing AS (SELECT u.x AS id FROM unnest($3::bigint || $4::bigint[]) WITH ORDINALITY u(x, o)"
              " WHERE NOT EXISTS (SELECT 1 FROM tgt WHERE tgt.id = u.x AND tgt._readable) ORDER BY u.o LIMIT 1),"
              " chk AS (SELECT CASE WHEN EXISTS (SELECT 1 FROM missing) THEN 'not_found'"
              " WHEN EXISTS (SELECT 1 FROM tgt WHERE NOT tgt._updatable) THEN 'forbidden'"
              " WHEN $6::int IS NOT NULL AND $6::int <> 0 AND $6::int <> (SELECT version FROM sur) THEN 'precondition'"
              /* A field the caller's role hides or makes read-only is not theirs to choose (field rules). */
              " WHEN EXISTS (SELECT 1 FROM jsonb_object_keys($5::jsonb) k WHERE k = ANY (caller.locked))"
              " THEN 'locked_' || (SELECT min(k) FROM jsonb_object_keys($5::jsonb) k WHERE k = ANY (caller.locked))",
              own, team, from.base);
    free(esql_take(&from));
    if (r->scope.kind == ENGINE_PARENT)
        esql_addf(&s, " WHEN EXISTS (SELECT 1 FROM tgt, sur WHERE tgt.%1$s <> sur.%1$s) THEN 'different_parent'",
                  r->scope.ref);
    else
        /* The merged records' children join the survivor's team: only a caller with scope all takes them out of one. */
        esql_add(&s, " WHEN EXISTS (SELECT 1 FROM tgt, sur WHERE tgt.id <> sur.id"
                     " AND NOT scope_keeps_team(caller.uscope, tgt._team, sur._team)) THEN 'forbidden_target'");
    /* Whoever merges moves the records that reference the merged ones: an update under their resource's module. */
    for (size_t k = 0; k < e->n; k++) {
        const engine_resource_t *x = e->res[k].r;
        if (!refers_any(x, r))
            continue;
        const engine_list_ctx_t *cx = engine_list_ctx(&e->res[k]);
        esql_addf(&s, " WHEN EXISTS (SELECT 1 FROM %s WHERE t.deleted_at IS NULL AND ", cx->from);
        refs_cond(&s, x, r, "t");
        if (x == r)
            esql_add(&s, " AND t.id <> ALL ($3::bigint || $4::bigint[])");
        esql_addf(&s,
                  " AND NOT in_scope(coalesce(caller.perms #>> '{%s,update}', 'none'), caller.uid, caller.tid, %s, %s))"
                  " THEN 'forbidden_%s'",
                  x->name, cx->own, cx->team, x->name);
    }
    esql_add(&s, " ELSE 'ok' END AS outcome, (SELECT id FROM missing) AS missing FROM caller, ctx)");
    /* Re-point every reference, resource by resource. */
    for (size_t k = 0; k < e->n; k++)
        if (refers_any(e->res[k].r, r))
            move_cte(&s, e->res[k].r, r);
    esql_addf(&s,
              ", att AS (UPDATE attachments a SET entity_id = $3::bigint FROM chk WHERE chk.outcome = 'ok'"
              " AND a.entity = '%s' AND a.entity_id = ANY ($4::bigint[]) AND a.deleted_at IS NULL RETURNING a.id)",
              r->name);
    /* The survivor takes the chosen values; the merged records go, naming it. */
    esql_addf(&s, ", upd AS (UPDATE %s t SET ", r->table);
    int first = 1;
    for (size_t i = 0; i < r->nfields; i++) {
        const engine_field_t *f = &r->fields[i];
        if (!merge_field_choosable(r, f))
            continue;
        esql_addf(&s, "%s%s = ", first ? "" : ", ", f->v.name);
        survivor_value(&s, r, f);
        first = 0;
    }
    esql_addf(&s,
              " FROM chk WHERE t.id = $3::bigint AND chk.outcome = 'ok' RETURNING t.*),"
              " del AS (UPDATE %s t SET deleted_at = now(), merged_into = $3::bigint FROM chk"
              " WHERE t.id = ANY ($4::bigint[]) AND chk.outcome = 'ok' RETURNING t.id)",
              r->table);
    esql_add(
        &s, " SELECT CASE WHEN upd.id IS NOT NULL THEN 'merged' ELSE chk.outcome END, chk.missing, (upd.version::text");
    for (size_t i = 0; i < r->nembeds; i++)
        if (r->embeds[i].etag != NULL)
            esql_addf(&s, " || %s", r->embeds[i].etag);
    esql_add(&s, "), CASE WHEN upd.id IS NOT NULL THEN ");
    engine_doc(&s, res, "upd");
    esql_add(&s, "::text END, caller.rscope, json_build_object(");
    for (size_t k = 0; k < e->n; k++)
        if (refers_any(e->res[k].r, r))
            esql_addf(&s, "'%1$s', (SELECT count(*) FROM mv_%1$s), ", e->res[k].r->name);
    esql_add(&s, "'attachments', (SELECT count(*) FROM att))::text"
                 " FROM caller JOIN chk ON true LEFT JOIN upd ON true");
    for (size_t i = 0; i < r->nembeds; i++) {
        engine_sql_t j = {0};
        esql_add(&j, r->embeds[i].joins);
        /* The embed's joins for the survivor, as reads join them ("{id}": its id). */
        const char *p = j.base;
        for (const char *q; (q = strstr(p, "{id}")) != NULL; p = q + 4)
            esql_addf(&s, "%.*supd.id", (int)(q - p), p);
        esql_add(&s, p);
        free(esql_take(&j));
    }
    return esql_take(&s);
}

/* --- building ------------------------------------------------------------------------------ */

int merge_sql_build(merge_sql_t *s, const engine_t *e, const engine_resource_t *const *resources, char *err,
                    size_t errlen)
{
    memset(s, 0, sizeof(*s));
    size_t n = 0;
    for (size_t i = 0; resources[i] != NULL; i++)
        n += resources[i]->dedup != NULL;
    s->resources = calloc(n + 1, sizeof(*s->resources));
    s->phones = calloc(n + 1, sizeof(*s->phones));
    s->duplicates = calloc(n + 1, sizeof(*s->duplicates));
    s->merge = calloc(n + 1, sizeof(*s->merge));
    if (s->resources == NULL || s->phones == NULL || s->duplicates == NULL || s->merge == NULL)
        abort();
    for (size_t i = 0; resources[i] != NULL; i++) {
        const engine_resource_t *r = resources[i];
        if (r->dedup == NULL)
            continue;
        if (engine_res(e, r) == NULL) {
            snprintf(err, errlen, "merge: %s is not built by the engine", r->name);
            merge_sql_free(s);
            return -1;
        }
        int choosable = 0;
        for (size_t f = 0; f < r->nfields; f++)
            choosable |= merge_field_choosable(r, &r->fields[f]);
        if (!choosable) {
            snprintf(err, errlen, "merge: %s has no field a merge could fill", r->name);
            merge_sql_free(s);
            return -1;
        }
        s->resources[s->n] = r;
        s->phones[s->n] = gen_phones(r);
        s->duplicates[s->n] = gen_duplicates(e, r);
        s->merge[s->n] = gen_merge(e, r);
        s->n++;
    }
    return 0;
}

void merge_sql_free(merge_sql_t *s)
{
    for (size_t i = 0; i < s->n; i++) {
        free(s->phones[i]);
        free(s->duplicates[i]);
        free(s->merge[i]);
    }
    free(s->phones);
    free(s->duplicates);
    free(s->merge);
    free((void *)s->resources);
    memset(s, 0, sizeof(*s));
}

static int index_of(const merge_sql_t *s, const engine_resource_t *r)
{
    for (size_t i = 0; i < s->n; i++)
        if (s->resources[i] == r)
            return (int)i;
    return -1;
}

const char *merge_sql_phones(const merge_sql_t *s, const engine_resource_t *r)
{
    int i = index_of(s, r);
    return i >= 0 ? s->phones[i] : NULL;
}

const char *merge_sql_duplicates(const merge_sql_t *s, const engine_resource_t *r)
{
    int i = index_of(s, r);
    return i >= 0 ? s->duplicates[i] : NULL;
}

const char *merge_sql_merge(const merge_sql_t *s, const engine_resource_t *r)
{
    int i = index_of(s, r);
    return i >= 0 ? s->merge[i] : NULL;
}
