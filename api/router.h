/*
 * api/router.h - method + path-template matching with typed parameters.
 *
 * Templates use OpenAPI's syntax with a type after a colon:
 * "/v1/customers/{id:int}". Types: int (a positive 64-bit integer) and str
 * (any non-empty segment, percent-decoded, at most 255 bytes). Matching is
 * pure (no h2o types) so it can be tested alone, and it never allocates:
 * string parameters point into a caller-provided buffer.
 */
#ifndef CLIENTELE_API_ROUTER_H
#define CLIENTELE_API_ROUTER_H

#include <stddef.h>
#include <stdint.h>

#define ROUTER_MAX_PARAMS 4
#define ROUTER_MAX_SEGMENTS 16

enum {
    ROUTER_GET = 1 << 0,
    ROUTER_POST = 1 << 1,
    ROUTER_PUT = 1 << 2,
    ROUTER_PATCH = 1 << 3,
    ROUTER_DELETE = 1 << 4,
    ROUTER_HEAD = 1 << 5,
    ROUTER_OPTIONS = 1 << 6,
};

typedef struct st_router_param_t {
    const char *name; /* points into the template; not NUL-terminated: name_len */
    size_t name_len;
    const char *str;  /* decoded value, NUL-terminated */
    int64_t i64;      /* for int parameters */
} router_param_t;

typedef struct st_router_match_t {
    int route;        /* index into the table, or -1 */
    unsigned allow;   /* with ROUTER_ERR_METHOD: methods the path accepts (HEAD with GET) */
    int nparams;
    router_param_t params[ROUTER_MAX_PARAMS];
} router_match_t;

#define ROUTER_ERR_NOT_FOUND (-1)
#define ROUTER_ERR_METHOD (-2)

/* Maps "GET", "POST", ... to a ROUTER_* bit; 0 for anything else. */
unsigned router_method_bit(const char *method, size_t len);
/* Writes "GET, HEAD, POST" style text for an allow mask into buf. */
size_t router_format_allow(unsigned allow, char *buf, size_t len);

/*
 * Matches a raw request path (without the query) against `ntemplates`
 * templates, each with a method bit. Returns the route index, or
 * ROUTER_ERR_NOT_FOUND, or ROUTER_ERR_METHOD (m->allow then lists the
 * methods the path accepts). OPTIONS matches no route but fills m->allow;
 * HEAD matches GET routes. `scratch` (at least path_len + 1 bytes) holds
 * the decoded parameter strings.
 */
int router_match(const char *const *templates, const unsigned *methods, size_t ntemplates, unsigned method,
                 const char *path, size_t path_len, char *scratch, router_match_t *m);

/* The template as OpenAPI writes it ("/v1/customers/{id}"): parameter types removed. */
size_t router_template_label(const char *tpl, char *buf, size_t len);

/* Finds a parameter by name; NULL if absent. */
const router_param_t *router_param(const router_match_t *m, const char *name);

#endif
