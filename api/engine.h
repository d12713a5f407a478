/*
 * api/engine.h - the resource engine: every record type described once.
 *
 * A resource is a constant engine_resource_t (api/<resource>.c) listed in
 * engine_resources[] (api/resources.c). From descriptions alone the engine
 * generates, once at start-up, the text of every statement the resource
 * needs (identifiers only from the descriptions, every value a parameter),
 * and serves with generic handlers: list, get, create, merge patch, soft
 * delete, upsert by external id, bulk, the change feed, history,
 * aggregate and export. Each write statement also writes, in the same
 * statement (hence the same transaction), one history entry and one change
 * feed row per record it touches, including records it touches on the
 * side (children deleted with their parent, a flag cleared on a sibling).
 *
 * Scope: a resource is either owned (its rows carry owner_id and team_id)
 * or inherits the scope of a parent resource through a reference column
 * (orders and contacts follow their customer). Every statement decides
 * visibility and permission itself with the caller CTE of api/scope.h.
 *
 * Ownership: descriptions are constant data with static storage; the
 * generated statements live in an engine_t built by engine_build() and
 * freed by engine_free(), which the server owns for its whole life (their
 * addresses key the prepared statements of every connection).
 */
#ifndef CLIENTELE_API_ENGINE_H
#define CLIENTELE_API_ENGINE_H

#include <stddef.h>

#include "validate.h"

typedef struct st_engine_resource_t engine_resource_t;
typedef struct st_engine_t engine_t;

/* Field flags (engine_field_t.ef). */
enum {
    EF_FILTER = 1 << 0,         /* ?<name>=value (ids, enums, booleans, strings); for tags: ?tag=value */
    EF_SINCE = 1 << 1,          /* timestamps: ?<stem>_since=T (>=), stem = name without "_at" */
    EF_BETWEEN = 1 << 2,        /* timestamps: ?<stem>_after=T (>) and ?<stem>_before=T (<) */
    EF_SORT = 1 << 3,           /* sort=<name> and sort=-<name> */
    EF_SEARCH = 1 << 4,         /* matched by ?q= (case-insensitive substring) */
    EF_GROUP = 1 << 5,          /* aggregate group_by (enums, ids, booleans; timestamps and dates by bucket) */
    EF_METRIC = 1 << 6,         /* aggregate sum/avg/min/max (numbers) */
    EF_CREATE_ONLY = 1 << 7,    /* written on create (and upsert create); refused in a patch */
    EF_INPUT_ONLY = 1 << 8,     /* not a column: read by the statement from the body (a parent's external id) */
    EF_ONE_PER_PARENT = 1 << 9, /* boolean: at most one true per parent; setting it clears the others */
    EF_NO_EXPORT = 1 << 10,     /* left out of CSV exports (embeds that are objects) */
};

typedef struct st_engine_field_t {
    validate_field_t v;   /* name (= column), type, flags and limits: the input rules and the spec's schema */
    unsigned ef;          /* EF_* */
    const char *sql_type; /* the column's type when the default for v.type is wrong ("citext", "date") */
    const char *def;      /* SQL value on create when the input has none ("'prospect'", "'{}'") */
    /*
     * An id naming a record of this resource, other than a child's parent
     * (scope.ref, a reference already): merging records re-points it to the
     * survivor (api/merge.c).
     */
    const engine_resource_t *ref;
} engine_field_t;

/*
 * An embedded document computed from other tables (customers' analytics).
 * `joins` are LEFT JOINs that give those tables their aliases, with "{id}"
 * standing for the record's id; `sql` is the JSON value over them, and
 * `etag` (or NULL) text appended to the record's ETag. A read by id joins
 * them into its own FROM; lists, feeds and exports use them as a subquery.
 */
typedef struct st_engine_embed_t {
    const char *name;  /* member of the document */
    const char *joins; /* " LEFT JOIN t a ON a.ref = {id}" ... */
    const char *sql;   /* a scalar JSON expression over the joined aliases */
    const char *etag;  /* text appended to the ETag, over the joined aliases, or NULL */
} engine_embed_t;

/* A filter that is not a plain column comparison (customers' segment= or p_alive_below=). */
typedef enum {
    EFK_ENUM,        /* one of values */
    EFK_PROBABILITY, /* a plain decimal from 0 to 1 */
} engine_filter_kind_t;

typedef struct st_engine_filter_t {
    const char *name;
    engine_filter_kind_t kind;
    const char *const *values; /* EFK_ENUM */
    /* The condition over {r} with the parameter as {p} (already cast); count_cond, when set, for counts. */
    const char *cond, *count_cond;
    /* The field whose value the filter reads: where a role hides it, the filter does not exist. */
    const char *field;
} engine_filter_t;

typedef struct st_engine_sql_t engine_sql_t; /* a statement being generated (api/engine_sql.c) */
struct st_engine_list_ctx_t;

/*
 * A sort. Most are a column (name) with the key's SQL type derived from the
 * field; `list` replaces the generated list statement for sorts that walk
 * another table (customers by CLV): it appends the whole statement for one
 * direction, using the pieces in ctx.
 */
typedef struct st_engine_sort_t {
    const char *name;
    void (*list)(engine_sql_t *s, const struct st_engine_list_ctx_t *ctx, int desc);
    /* Checks a cursor key of this sort before it reaches a cast; 0 when acceptable. */
    int (*check_key)(const char *key);
    /* The field whose value orders the list (NULL: the field called name): hidden, the sort does not exist. */
    const char *field;
} engine_sort_t;

/*
 * A rule checked inside every write statement on the record as it will be
 * stored. Templates: "{i}" the input row (columns by name), "{id}" the
 * record's id (NULL on create), "{parent}" the parent's id (parent scope).
 * When `cond` is false the write is refused with 422 naming `field`.
 * A rule the database enforces itself (a constraint, or a deferred trigger
 * raising check_violation with that constraint name: what one statement
 * cannot see, such as several records of a bulk or a concurrent commit)
 * names its `constraint` and has no cond; a violation answers the same 422.
 */
typedef struct st_engine_check_t {
    const char *field;
    const char *cond;
    const char *message;
    const char *constraint;
} engine_check_t;

/*
 * Records of a resource that can be merged (api/merge.c): how duplicates
 * are found. Its table has merged_into (the survivor of a merged record),
 * so reading a merged record answers 404 naming the survivor, and its
 * tombstone in the change feed names it too. Templates over "{t}", the
 * record's row; each is indexed (schema/0021_duplicates.sql).
 */
typedef struct st_engine_dedup_t {
    const char *email;         /* a column: equal when lower-cased and trimmed; or NULL */
    const char *const *phones; /* NULL-terminated columns: equal as E.164 (common/phone.h); or NULL */
    const char *name;          /* the name, compared by trigram similarity ("{t}.name") */
    const char *group;         /* names are compared only within equal values of this ("{t}.customer_id") */
} engine_dedup_t;

typedef enum {
    ENGINE_OWNED,  /* rows carry owner_id and team_id */
    ENGINE_PARENT, /* rows follow the parent record named by ref (same owner and team) */
    ENGINE_GLOBAL, /* rows belong to no one: scope all reaches every row, a narrower scope none */
} engine_scope_kind_t;

/* Cross-field rules of one body (or bulk item), run off the loop for bulks; appends to errors. */
typedef void (*engine_item_check_fn)(json_t *item, unsigned mode, const char *prefix, json_t *errors);

struct st_engine_resource_t {
    const char *name;     /* "customers": path segment, permission module, feed entity */
    const char *table;    /* "customers" */
    const char *singular; /* "customer", for messages */
    const engine_field_t *fields;
    size_t nfields;
    struct {
        engine_scope_kind_t kind;
        const engine_resource_t *parent; /* ENGINE_PARENT: an owned resource */
        const char *ref;                 /* ENGINE_PARENT: the reference column, "customer_id" */
        const char *ref_external;        /* ENGINE_PARENT: input-only field naming the parent by external id */
        int cascade_delete;              /* ENGINE_PARENT: deleting the parent deletes these records */
    } scope;
    const engine_sort_t *sorts; /* terminated by a NULL name */
    const char *default_sort;   /* "created_at", or "-updated_at" */
    const engine_filter_t *filters;
    size_t nfilters;
    const engine_embed_t *embeds;
    size_t nembeds;
    const engine_check_t *checks;
    size_t nchecks;
    engine_item_check_fn item_check;
    size_t bulk_max;             /* items per bulk request */
    const engine_dedup_t *dedup; /* records can be merged (api/merge.c); NULL when not */
    int public_read;  /* every authenticated user reads every row, whatever the role says (settings, definitions) */
    const char *path; /* the collection's path when it is not "/v1/<name>" ("/v1/custom-fields"): Location headers */
    /*
     * ENGINE_OWNED: the records in a closed state, which an ownership
     * transfer with only_open leaves with their owner (api/ownership.c): those
     * whose field `field` holds one of `values` (NULL-terminated). No field:
     * no record is closed.
     */
    struct {
        const char *field;
        const char *const *values;
    } closed;
};

#define ENGINE_COUNT(table) (sizeof(table) / sizeof((table)[0]))

/* Every resource, NULL-terminated (api/resources.c). */
extern const engine_resource_t *const engine_resources[];

/* Builds every statement of every resource. NULL with a sentence in err on a bad description. */
engine_t *engine_build(const engine_resource_t *const *resources, char *err, size_t errlen);
void engine_free(engine_t *e);

/* The resource's field table in validate form (contiguous), and its size. */
const validate_field_t *engine_validate_fields(const engine_t *e, const engine_resource_t *r, size_t *n);

/*
 * Checks one body against the resource's rules (fields, then cross-field
 * rules), appending errors under prefix. Pure: runs off the loop for bulks.
 */
void engine_check_item(const engine_t *e, const engine_resource_t *r, json_t *item, unsigned mode, const char *prefix,
                       json_t *errors);

/* The field named `name` of a resource, or NULL. */
const engine_field_t *engine_field(const engine_resource_t *r, const char *name);

/* --- statements, for the handlers (api/engine.c) and tests ----------------- */

enum {
    ENGINE_SQL_GET,
    ENGINE_SQL_CREATE,
    ENGINE_SQL_PATCH,
    ENGINE_SQL_PUT,
    ENGINE_SQL_DELETE,
    ENGINE_SQL_BULK,
    ENGINE_SQL_FEED,
    ENGINE_SQL_HISTORY,
    ENGINE_SQL_VISIBLE,
    ENGINE_SQL_COUNT_
};

/* Statement `which` of a resource (static for the engine's life). */
const char *engine_sql(const engine_t *e, const engine_resource_t *r, int which);
/* The list statement for sort index `sort` (2 * position + descending). */
const char *engine_sql_list(const engine_t *e, const engine_resource_t *r, int sort);

#endif
