/*
 * api/attachments_db.c - the statements of attachments, generated at
 * start-up from the engine's descriptions (see attachments_db.h).
 *
 * A resource's pieces come from engine_list_ctx(): its FROM item (the
 * table as t, joined to the parent as tp for child resources), the owner
 * and team expressions its scope is judged by, and the caller of its reads
 * (the read scope handed over by api/callers.c). Writes, and the
 * statements across resources, decide the caller from the tables. A record is visible when it is live and inside
 * the caller's read scope; attachments follow the record: uploading and
 * deleting need the record's update scope as well.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attachments_db.h"
#include "engine_int.h"

/* clang-format off */ /* statement text is laid out by hand */
/* The JSON document of an attachment row of alias a. */
#define DOC(a)                                                                                                         \
    "json_build_object('id', " a ".id, 'entity', " a ".entity, 'entity_id', " a ".entity_id, 'filename', "            \
    a ".filename, 'media_type', " a ".media_type, 'size', " a ".size, 'sha256', " a ".sha256, 'uploaded_by', "        \
    a ".uploaded_by, 'created_at', iso_utc(" a ".created_at))"

/* The caller without a module: the permissions of every module are read per resource. */
#define CALLER_ANY                                                                                                     \
    "u AS (SELECT u.id AS uid, u.team_id AS tid, r.permissions AS perms FROM users u JOIN roles r"                    \
    " ON r.id = u.role_id WHERE u.id = $1 AND u.active AND u.token_version = $2)"

/*
 * The caller of a write, decided from the tables ($1 the user, $2 the
 * token's version; no row when the user is inactive or the version gone):
 * the read and update scopes of one module.
 */
static void caller_write(engine_sql_t *s, const char *module)
{
    esql_addf(s,
              "caller AS (SELECT u.id AS uid, u.team_id AS tid,"
              " coalesce(r.permissions #>> '{%1$s,read}', 'none') AS rscope,"
              " coalesce(r.permissions #>> '{%1$s,update}', 'none') AS uscope"
              " FROM users u JOIN roles r ON r.id = u.role_id WHERE u.id = $1 AND u.active AND u.token_version = $2)",
              module);
}

static char *gen_insert(const engine_list_ctx_t *cx)
{
    engine_sql_t s = {0};
    esql_add(&s, "WITH ");
    caller_write(&s, cx->r->name);
    esql_addf(&s,
              ", rec AS (SELECT t.id, in_scope(caller.uscope, caller.uid, caller.tid, %2$s, %3$s) AS updatable"
              " FROM caller, %1$s WHERE t.id = $3 AND t.deleted_at IS NULL"
              " AND in_scope(caller.rscope, caller.uid, caller.tid, %2$s, %3$s)),"
              " ins AS (INSERT INTO attachments (entity, entity_id, filename, media_type, size, sha256, uploaded_by)"
              " SELECT '%4$s', rec.id, $4::text, $5::text, $6::bigint, $7::text, caller.uid FROM caller, rec"
              " WHERE rec.updatable RETURNING *)"
              " SELECT CASE WHEN ins.id IS NOT NULL THEN 'created' WHEN rec.id IS NULL THEN 'not_found'"
              " ELSE 'forbidden' END, caller.rscope, ins.id, " DOC("ins") "::text"
              " FROM caller LEFT JOIN rec ON true LEFT JOIN ins ON true",
              cx->from, cx->own, cx->team, cx->r->name);
    return esql_take(&s);
}

static char *gen_list(const engine_list_ctx_t *cx)
{
    engine_sql_t s = {0};
    esql_addf(&s,
              "WITH %1$s, rec AS (SELECT t.id FROM caller, %2$s WHERE t.id = $3 AND t.deleted_at IS NULL"
              " AND in_scope(caller.rscope, caller.uid, caller.tid, %3$s, %4$s))"
              " SELECT caller.rscope, a.id, a.id::text, a.doc, CASE WHEN $6::bool THEN (SELECT count(*) FROM rec"
              " JOIN attachments x ON x.entity = '%5$s' AND x.entity_id = rec.id AND x.deleted_at IS NULL) END,"
              " EXISTS (SELECT 1 FROM rec)"
              " FROM caller LEFT JOIN LATERAL (SELECT x.id, " DOC("x") "::text AS doc FROM rec JOIN attachments x"
              " ON x.entity = '%5$s' AND x.entity_id = rec.id AND x.deleted_at IS NULL"
              " WHERE $4::bigint IS NULL OR x.id < $4::bigint ORDER BY x.id DESC LIMIT $5::int) a ON true"
              " ORDER BY a.id DESC",
              cx->caller, cx->from, cx->own, cx->team, cx->r->name);
    return esql_take(&s);
}

/*
 * vis: the attachment `a` with whether the caller may change its record,
 * when the caller may read that record. One branch per resource: the
 * attachment's entity picks the branch, and the branch judges the record
 * by that resource's scope under that resource's module.
 */
static void visible_cte(engine_sql_t *s, const engine_t *e, const engine_resource_t *const *resources)
{
    esql_add(s, "vis AS (");
    for (size_t i = 0; resources[i] != NULL; i++) {
        const engine_list_ctx_t *cx = engine_list_ctx(engine_res(e, resources[i]));
        /* The resource's name is its module in roles.permissions and the entity its attachments name. */
        esql_addf(s,
                  "%5$sSELECT a.id, in_scope(coalesce(u.perms #>> '{%4$s,update}', 'none'), u.uid, u.tid, %2$s, %3$s)"
                  " AS updatable FROM u, a, %1$s WHERE a.entity = '%4$s' AND t.id = a.entity_id"
                  " AND t.deleted_at IS NULL"
                  " AND in_scope(coalesce(u.perms #>> '{%4$s,read}', 'none'), u.uid, u.tid, %2$s, %3$s)",
                  cx->from, cx->own, cx->team, resources[i]->name, i > 0 ? " UNION ALL " : "");
    }
    esql_add(s, ")");
}

static char *gen_get(const engine_t *e, const engine_resource_t *const *resources)
{
    engine_sql_t s = {0};
    esql_add(&s, "WITH " CALLER_ANY ", a AS (SELECT x.* FROM attachments x WHERE x.id = $3"
                 " AND x.deleted_at IS NULL AND x.entity <> ALL ($4::text[])), ");
    visible_cte(&s, e, resources);
    esql_add(&s, " SELECT vis.id IS NOT NULL, a.sha256, a.size, a.media_type, a.filename, " DOC("a") "::text"
                 " FROM u LEFT JOIN vis ON true LEFT JOIN a ON a.id = vis.id");
    return esql_take(&s);
}

static char *gen_delete(const engine_t *e, const engine_resource_t *const *resources)
{
    engine_sql_t s = {0};
    esql_add(&s, "WITH " CALLER_ANY
                 ", a AS (SELECT x.* FROM attachments x WHERE x.id = $3 AND x.deleted_at IS NULL"
                 " AND x.entity <> ALL ($4::text[]) FOR UPDATE), ");
    visible_cte(&s, e, resources);
    esql_add(&s, ", del AS (UPDATE attachments x SET deleted_at = now() FROM vis WHERE x.id = vis.id AND vis.updatable"
                 " RETURNING x.id)"
                 " SELECT CASE WHEN del.id IS NOT NULL THEN 'deleted' WHEN vis.id IS NOT NULL THEN 'forbidden'"
                 " ELSE 'not_found' END FROM u LEFT JOIN vis ON true LEFT JOIN del ON true");
    return esql_take(&s);
}

/* clang-format on */

int attachments_sql_build(attachments_sql_t *s, const engine_t *e, const engine_resource_t *const *resources, char *err,
                          size_t errlen)
{
    memset(s, 0, sizeof(*s));
    while (resources[s->n] != NULL)
        s->n++;
    if (s->n == 0) {
        snprintf(err, errlen, "attachments: no resource to attach files to");
        return -1;
    }
    s->resources = calloc(s->n, sizeof(*s->resources));
    s->insert = calloc(s->n, sizeof(*s->insert));
    s->list = calloc(s->n, sizeof(*s->list));
    if (s->resources == NULL || s->insert == NULL || s->list == NULL)
        abort();
    for (size_t i = 0; i < s->n; i++) {
        const engine_res_t *res = engine_res(e, resources[i]);
        if (res == NULL) {
            snprintf(err, errlen, "attachments: %s is not built by the engine", resources[i]->name);
            attachments_sql_free(s);
            return -1;
        }
        /* Names were checked by engine_build (plain lower-case identifiers); they go into the text as they are. */
        s->resources[i] = resources[i];
        s->insert[i] = gen_insert(engine_list_ctx(res));
        s->list[i] = gen_list(engine_list_ctx(res));
    }
    s->get = gen_get(e, resources);
    s->del = gen_delete(e, resources);
    return 0;
}

void attachments_sql_free(attachments_sql_t *s)
{
    for (size_t i = 0; i < s->n; i++) {
        if (s->insert != NULL)
            free(s->insert[i]);
        if (s->list != NULL)
            free(s->list[i]);
    }
    free(s->insert);
    free(s->list);
    free((void *)s->resources);
    free(s->get);
    free(s->del);
    memset(s, 0, sizeof(*s));
}

static int index_of(const attachments_sql_t *s, const engine_resource_t *r)
{
    for (size_t i = 0; i < s->n; i++)
        if (s->resources[i] == r)
            return (int)i;
    return -1;
}

const char *attachments_sql_insert(const attachments_sql_t *s, const engine_resource_t *r)
{
    int i = index_of(s, r);
    return i >= 0 ? s->insert[i] : NULL;
}

const char *attachments_sql_list(const attachments_sql_t *s, const engine_resource_t *r)
{
    int i = index_of(s, r);
    return i >= 0 ? s->list[i] : NULL;
}
