/*
 * api/attachments_db.h - the statements of attachments, generated once at
 * start-up from the engine's descriptions (api/engine.h).
 *
 * Per resource (attachments under /v1/<collection>/{id}): insert and list,
 * each deciding the record's visibility and the caller's scope under the
 * resource's module with the engine's own pieces (caller CTE, FROM item,
 * owner and team). Across resources (/v1/attachments/{id}): get and
 * delete, whose statement finds the attachment's record through a UNION
 * over every resource, each branch applying that resource's scope with the
 * caller's permissions for its module read from roles.permissions.
 * Identifiers come only from the compiled descriptions; every value is a
 * parameter.
 *
 * Parameters and columns:
 *   insert  $1 uid, $2 token version, $3 record id, $4 filename, $5 media type,
 *           $6 size, $7 sha256 -> outcome (created, not_found, forbidden),
 *           rscope, id, document
 *   list    $1 uid, $2 "<team id> <read scope>" (a read: the caller comes from
 *           api/callers.c), $3 record id, $4 id to continue below (NULL: newest),
 *           $5 rows, $6 count -> rscope, id, id as sort key, document, total,
 *           record found (the standard list shape of api/crud.h plus one column)
 *   get     $1, $2, $3 attachment id, $4 the modules switched off for the
 *           caller (text[]: their files are not found) -> found, sha256, size,
 *           media_type, filename, document (found false: none the caller may read)
 *   delete  $1, $2, $3 attachment id, $4 as for get -> outcome (deleted,
 *           not_found, forbidden)
 * No row at all (insert, get, delete): the caller's token is no longer
 * valid (401).
 *
 * Ownership: the texts belong to the attachments_sql_t (their addresses key
 * the prepared statements of every connection, so it lives as long as the
 * server).
 */
#ifndef CLIENTELE_API_ATTACHMENTS_DB_H
#define CLIENTELE_API_ATTACHMENTS_DB_H

#include <stddef.h>

#include "engine.h"

typedef struct st_attachments_sql_t {
    size_t n;
    const engine_resource_t **resources; /* [n] */
    char **insert, **list;               /* [n], by the resource's position */
    char *get, *del;
} attachments_sql_t;

/* Builds every statement for the resources of e (NULL-terminated list). 0, or -1 with a sentence in err. */
int attachments_sql_build(attachments_sql_t *s, const engine_t *e, const engine_resource_t *const *resources, char *err,
                          size_t errlen);
void attachments_sql_free(attachments_sql_t *s);

/* A resource's insert or list statement; NULL when it has none. */
const char *attachments_sql_insert(const attachments_sql_t *s, const engine_resource_t *r);
const char *attachments_sql_list(const attachments_sql_t *s, const engine_resource_t *r);

#endif
