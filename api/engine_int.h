/*
 * api/engine_int.h - what the engine's own files share (engine_sql.c builds,
 * engine.c serves). Not for resource modules, except the pieces a custom
 * sort (engine_sort_t.list) uses.
 */
#ifndef CLIENTELE_API_ENGINE_INT_H
#define CLIENTELE_API_ENGINE_INT_H

#include <stdarg.h>

#include <libpq-fe.h>

#include "engine.h"

/* A statement being generated: a growable string. Out of memory aborts (start-up only). */
struct st_engine_sql_t {
    char *base;
    size_t len, cap;
};
void esql_add(engine_sql_t *s, const char *text);
void esql_addf(engine_sql_t *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Takes the text (malloc'ed) and resets s. */
char *esql_take(engine_sql_t *s);

/* What a query parameter of a list is. */
typedef enum {
    EP_EQ_ID,   /* <field>=<id> */
    EP_EQ_ENUM, /* <field>=<one of the values> */
    EP_EQ_BOOL, /* <field>=true|false */
    EP_EQ_TEXT, /* <field>=<text> (<= 254 characters) */
    EP_EQ_DATE, /* <field>=YYYY-MM-DD */
    EP_TAG,     /* tag=<text> */
    EP_TIME,    /* <stem>_since, <stem>_after, <stem>_before */
    EP_Q,       /* q=<text>: case-insensitive substring of the search fields */
    EP_CUSTOM,  /* a description's engine_filter_t */
} engine_param_kind_t;

typedef struct st_engine_param_t {
    char *name; /* the query parameter */
    engine_param_kind_t kind;
    const engine_field_t *field;   /* for column filters */
    const engine_filter_t *filter; /* EP_CUSTOM */
    int pos;                       /* its $n in list statements */
} engine_param_t;

/* Fixed parameters of list statements. */
enum { EL_UID = 1, EL_VER, EL_KEY, EL_ID, EL_FETCH, EL_COUNT, EL_FIELDS, EL_FIRST_FILTER };

/* The pieces a list statement is made of (for custom sorts). */
typedef struct st_engine_list_ctx_t {
    const engine_resource_t *r;
    const char *caller;        /* "caller AS (...)" */
    const char *from;          /* "customers t" or "orders t JOIN customers tp ON tp.id = t.customer_id" */
    const char *own, *team;    /* the scope's owner and team over t */
    const char *filters;       /* " AND ..." over t, page form */
    const char *count_filters; /* the same for counts */
    const struct st_engine_res_t *res;
} engine_list_ctx_t;

/* Appends the JSON document of the row alias (a "t.*" shaped row). */
void engine_doc(engine_sql_t *s, const struct st_engine_res_t *res, const char *alias);
/*
 * "caller0 AS (...), caller AS (...)": the caller CTEs every engine statement
 * starts with, for other statements about r's records (their documents need
 * them). req_param 0: a read's, from $1 the user and $2 "<team> <scope>
 * <hidden>" (api/callers.c). Else a write's, decided from the tables ($1 the
 * user, $2 the token version: every scope, the role's permissions as perms,
 * its locked fields), then ", ctx AS (...)" naming the actor and the request
 * ($req_param) for the history trigger.
 */
void engine_caller(engine_sql_t *s, const engine_resource_t *r, int req_param);
/* Appends the fields= projection of a document built over alias, as text. */
void engine_doc_projected(engine_sql_t *s, const struct st_engine_res_t *res, const char *alias);

/* One resource's generated state. */
typedef struct st_engine_res_t {
    const engine_resource_t *r;
    const engine_resource_t *parent; /* ENGINE_PARENT */
    validate_field_t *vf;            /* the fields in validate form */
    size_t nvf;
    char *sql[ENGINE_SQL_COUNT_];
    char **list; /* 2 * nsorts statements */
    int nsorts;
    char **sort_names; /* the sorts' names, NULL-terminated (crud_parse_list) */
    char **out_fields; /* the document's members, NULL-terminated (fields=) */
    engine_param_t *params;
    int nparams;
    int nlist_params; /* $n of the last list parameter */
    int default_sort;
    engine_list_ctx_t ctx; /* its strings owned here */
} engine_res_t;

struct st_engine_t {
    engine_res_t *res;
    size_t n;
};

/* The state of a resource (NULL if it is not part of e). */
const engine_res_t *engine_res(const engine_t *e, const engine_resource_t *r);

struct st_crud_query_t;
struct st_api_req_t;
/*
 * A list's query string: the resource's filters plus `extra` names
 * (NULL-terminated); under a parent's path (`parent`, its id) the
 * reference to it is not a filter. Answers 400 and returns -1 when bad.
 */
int engine_parse_query(struct st_api_req_t *ar, const engine_res_t *res, const char *const *extra, const char *parent,
                       struct st_crud_query_t *q);
/* Reads the filters of q into p (positions as in list statements; pool strings); answers 400 and returns -1. */
int engine_read_filters(struct st_api_req_t *ar, const engine_res_t *res, const struct st_crud_query_t *q,
                        const char *parent, const char **p);
/* The pieces of the resource's list statements (for reports and exports). */
const engine_list_ctx_t *engine_list_ctx(const engine_res_t *res);

/*
 * Sends a read statement once the caller is known: p[0] and p[1] (the
 * caller) are filled in by api/callers.c; the others must live in the
 * request's pool or longer. `owned`, when set, is a statement composed for
 * this request (malloc'ed; taken over) and `sql` is ignored.
 */
int engine_read(struct st_api_req_t *ar, const char *sql, char *owned, int n, const char *const *p, unsigned flags,
                void (*done)(struct st_api_req_t *, const PGresult *, int, void *), void *arg);

/*
 * The fields a read filters, sorts, groups or sums by, each with the query
 * parameter that names it: where the caller's role hides one, the read
 * does not run and the parameter is answered as unknown (400), or as
 * forbidden (403) for a sum (status).
 */
#define ENGINE_USES_MAX 48
typedef struct st_engine_uses_t {
    int n;
    struct {
        const char *param, *field;
        int status;
    } u[ENGINE_USES_MAX];
} engine_uses_t;
void engine_uses_add(engine_uses_t *u, const char *param, const char *field, int status);
/* The list filters q sets, with the fields they read. */
void engine_uses_filters(engine_uses_t *u, const engine_res_t *res, const struct st_crud_query_t *q);
/* The names of a "{a,b}" projection (crud_list_t.fields) as uses of param "fields". */
void engine_uses_projection(struct st_api_req_t *ar, engine_uses_t *u, const char *fields);
/* 1 when the read was refused (answered 400 or 403): it uses a field the caller's role hides (scope: $2). */
int engine_refuse_hidden(struct st_api_req_t *ar, const char *scope, const engine_uses_t *uses);
/* engine_read, refused (see engine_uses_t) when the caller's role hides a field the read uses. */
int engine_read_using(struct st_api_req_t *ar, const char *sql, char *owned, int n, const char *const *p,
                      unsigned flags, const engine_uses_t *uses,
                      void (*done)(struct st_api_req_t *, const PGresult *, int, void *), void *arg);

/* The $n of a list parameter by its query name; 0 when the resource has none of that name. */
int engine_param_pos(const engine_res_t *res, const char *name);
#endif
