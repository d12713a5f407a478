/*
 * api/merge_db.h - the statements of duplicates and merges, generated once
 * at start-up from the engine's descriptions (api/engine.h).
 *
 * For every resource with a dedup description (records that can be
 * merged), three statements:
 *
 *   phones      $1 uid, $2 "<team id> <read scope>" (a read: the caller
 *               comes from api/callers.c), $3 record id -> rscope, found,
 *               then the record's phone columns in the description's order
 *               (one row; found false: not a live record the caller reads)
 *   duplicates  $1, $2, $3 as above, $4 the keys (common/phone.h) of the
 *               record's numbers as a text[], $5 how many -> rscope, found,
 *               candidate (JSON text: id, score, reasons, record), best
 *               first; one row with a NULL candidate when there are none.
 *               Candidates are live records the caller may read with the
 *               same e-mail (lower-cased, trimmed), a phone key among $4,
 *               or a name more similar than MERGE_NAME_SIMILARITY within the
 *               same group; each comparison an index probe
 *               (schema/0021_duplicates.sql).
 *   merge       $1 uid, $2 token version, $3 survivor id, $4 merged ids
 *               (bigint[]), $5 fields ({"<field>": <id whose value wins>}),
 *               $6 If-Match version (NULL: none), $7 request id -> outcome,
 *               missing id, ETag, document, rscope, moved ({"<resource>": n}).
 *               Outcomes: merged; not_found (the first id in missing: not a
 *               live record the caller reads; with rscope none, the role
 *               reads none of them); forbidden (one is not the caller's to
 *               update); forbidden_target (merging would move a record's
 *               children out of a team the caller may not take them from);
 *               forbidden_<resource> (the caller may not update the records
 *               of <resource> that would move); precondition;
 *               different_parent (children of different parents).
 *
 * The merge is one statement, hence one transaction: every record that
 * references a merged one (the children that follow it, every field whose
 * description names the resource as `ref`, and its attachments) is
 * re-pointed to the survivor, the survivor takes the chosen fields, and the
 * merged records are soft-deleted with merged_into; the engine's trigger
 * writes the history of each and its change-feed row (a tombstone for the
 * merged records). References are found from the descriptions, never from a
 * list kept here.
 *
 * Ownership: the texts belong to the merge_sql_t, which lives as long as
 * the server (their addresses key the prepared statements of every
 * connection).
 */
#ifndef CLIENTELE_API_MERGE_DB_H
#define CLIENTELE_API_MERGE_DB_H

#include <stddef.h>

#include "engine.h"

/* Trigram similarity a name must exceed to be a duplicate. */
#define MERGE_NAME_SIMILARITY "0.6"
/* What each reason weighs in a candidate's score: 1 - the product of (1 - weight) over its reasons. */
#define MERGE_EMAIL_WEIGHT "0.9"
#define MERGE_PHONE_WEIGHT "0.8"
/* (A name's weight is its similarity.) Most candidates one reason yields before scores are compared. */
#define MERGE_REASON_ROWS 500

typedef struct st_merge_sql_t {
    size_t n;
    const engine_resource_t **resources;  /* [n]: the resources with a dedup description */
    char **phones, **duplicates, **merge; /* [n] */
} merge_sql_t;

/* Builds the statements for every resource of e that merges. 0, or -1 with a sentence in err. */
int merge_sql_build(merge_sql_t *s, const engine_t *e, const engine_resource_t *const *resources, char *err,
                    size_t errlen);
void merge_sql_free(merge_sql_t *s);

/* A resource's statements; NULL when it does not merge. */
const char *merge_sql_phones(const merge_sql_t *s, const engine_resource_t *r);
const char *merge_sql_duplicates(const merge_sql_t *s, const engine_resource_t *r);
const char *merge_sql_merge(const merge_sql_t *s, const engine_resource_t *r);

/*
 * Whether `field` of r may be chosen in a merge's fields: a column the
 * client writes, other than external_id (the integrator's id stays with
 * its record), owner_id and team_id (ownership is changed with PATCH), and
 * the reference to a parent (children merge within one parent).
 */
int merge_field_choosable(const engine_resource_t *r, const engine_field_t *f);

#endif
