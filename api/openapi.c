/*
 * api/openapi.c - serves the OpenAPI spec the binary was built with.
 *
 * openapi/openapi.yaml is embedded at build time (api/openapi_blob.S). At
 * start-up it is converted once to JSON with libyaml's event parser, so
 * GET /openapi.json costs no more than GET /openapi.yaml. The converter
 * handles the YAML the spec uses: mappings, sequences and scalars (plain
 * scalars become numbers, booleans or null when they look like them);
 * anchors, aliases and tags are refused.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "api.h"
#include "modules.h"

extern const char api_openapi_yaml[];
extern const char api_openapi_yaml_end[];

static json_t *plain_scalar(const char *s, size_t len)
{
    if (len == 0 || (len == 1 && s[0] == '~') || (len == 4 && memcmp(s, "null", 4) == 0))
        return json_null();
    if (len == 4 && memcmp(s, "true", 4) == 0)
        return json_true();
    if (len == 5 && memcmp(s, "false", 5) == 0)
        return json_false();
    char buf[64], *end;
    if (len < sizeof(buf) && (s[0] == '-' || (s[0] >= '0' && s[0] <= '9'))) {
        memcpy(buf, s, len);
        buf[len] = '\0';
        /* Only plain decimal numbers: no hex, inf or nan, and no silent clamping. */
        int numeric = 1;
        for (size_t i = 0; i < len; i++)
            numeric &= (buf[i] >= '0' && buf[i] <= '9') || buf[i] == '-' || buf[i] == '+' || buf[i] == '.' ||
                        buf[i] == 'e' || buf[i] == 'E';
        if (numeric) {
            errno = 0;
            long long v = strtoll(buf, &end, 10);
            if (*end == '\0' && errno == 0)
                return json_integer(v);
            errno = 0;
            double d = strtod(buf, &end);
            if (*end == '\0' && errno == 0 && isfinite(d))
                return json_real(d);
        }
    }
    return json_stringn(s, len);
}

/* Builds the value that starts with `ev` (already taken from the parser). */
static json_t *build(yaml_parser_t *p, yaml_event_t *ev, char *err, size_t errlen, int depth)
{
    if (depth > 64) {
        snprintf(err, errlen, "nesting deeper than 64 levels");
        return NULL;
    }
    switch (ev->type) {
    case YAML_SCALAR_EVENT: {
        const char *v = (const char *)ev->data.scalar.value;
        size_t len = ev->data.scalar.length;
        if (ev->data.scalar.anchor != NULL || ev->data.scalar.tag != NULL) {
            snprintf(err, errlen, "anchors and tags are not supported (line %zu)", ev->start_mark.line + 1);
            return NULL;
        }
        json_t *j = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE ? plain_scalar(v, len) : json_stringn(v, len);
        if (j == NULL)
            snprintf(err, errlen, "invalid UTF-8 at line %zu", ev->start_mark.line + 1);
        return j;
    }
    case YAML_SEQUENCE_START_EVENT:
    case YAML_MAPPING_START_EVENT: {
        int is_map = ev->type == YAML_MAPPING_START_EVENT;
        if ((is_map ? ev->data.mapping_start.anchor : ev->data.sequence_start.anchor) != NULL ||
            (is_map ? ev->data.mapping_start.tag : ev->data.sequence_start.tag) != NULL) {
            snprintf(err, errlen, "anchors and tags are not supported (line %zu)", ev->start_mark.line + 1);
            return NULL;
        }
        json_t *c = is_map ? json_object() : json_array();
        for (;;) {
            yaml_event_t e;
            if (!yaml_parser_parse(p, &e)) {
                snprintf(err, errlen, "%s at line %zu", p->problem, p->problem_mark.line + 1);
                json_decref(c);
                return NULL;
            }
            if (e.type == YAML_SEQUENCE_END_EVENT || e.type == YAML_MAPPING_END_EVENT) {
                yaml_event_delete(&e);
                return c;
            }
            if (!is_map) {
                json_t *v = build(p, &e, err, errlen, depth + 1);
                yaml_event_delete(&e);
                if (v == NULL) {
                    json_decref(c);
                    return NULL;
                }
                json_array_append_new(c, v);
                continue;
            }
            if (e.type != YAML_SCALAR_EVENT) {
                snprintf(err, errlen, "only scalar mapping keys are supported (line %zu)", e.start_mark.line + 1);
                yaml_event_delete(&e);
                json_decref(c);
                return NULL;
            }
            char *key = strndup((const char *)e.data.scalar.value, e.data.scalar.length);
            size_t line = e.start_mark.line + 1;
            yaml_event_delete(&e);
            yaml_event_t ve;
            json_t *v = NULL;
            if (!yaml_parser_parse(p, &ve)) {
                snprintf(err, errlen, "%s at line %zu", p->problem, p->problem_mark.line + 1);
            } else {
                v = build(p, &ve, err, errlen, depth + 1);
                yaml_event_delete(&ve);
            }
            if (v != NULL && json_object_get(c, key) != NULL) {
                snprintf(err, errlen, "duplicate key \"%s\" at line %zu", key, line);
                json_decref(v);
                v = NULL;
            }
            if (v == NULL) {
                free(key);
                json_decref(c);
                return NULL;
            }
            json_object_set_new(c, key, v);
            free(key);
        }
    }
    case YAML_ALIAS_EVENT:
        snprintf(err, errlen, "aliases are not supported (line %zu)", ev->start_mark.line + 1);
        return NULL;
    default:
        snprintf(err, errlen, "unexpected YAML event at line %zu", ev->start_mark.line + 1);
        return NULL;
    }
}

json_t *api_yaml_to_json(const char *yaml, size_t len, char *err, size_t errlen)
{
    yaml_parser_t p;
    yaml_event_t ev;
    json_t *doc = NULL;
    if (errlen > 0)
        err[0] = '\0';
    if (!yaml_parser_initialize(&p)) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    yaml_parser_set_input_string(&p, (const unsigned char *)yaml, len);
    for (;;) {
        if (!yaml_parser_parse(&p, &ev)) {
            snprintf(err, errlen, "%s at line %zu", p.problem, p.problem_mark.line + 1);
            json_decref(doc);
            doc = NULL;
            break;
        }
        yaml_event_type_t type = ev.type;
        if (type == YAML_SCALAR_EVENT || type == YAML_SEQUENCE_START_EVENT || type == YAML_MAPPING_START_EVENT ||
            type == YAML_ALIAS_EVENT) {
            if (doc != NULL) {
                snprintf(err, errlen, "more than one document");
                yaml_event_delete(&ev);
                json_decref(doc);
                doc = NULL;
                break;
            }
            doc = build(&p, &ev, err, errlen, 0);
            if (doc == NULL) {
                yaml_event_delete(&ev);
                break;
            }
        }
        yaml_event_delete(&ev);
        if (type == YAML_STREAM_END_EVENT)
            break;
    }
    yaml_parser_delete(&p);
    if (doc == NULL && err[0] == '\0')
        snprintf(err, errlen, "empty document");
    return doc;
}

int api_openapi_load(api_server_t *server, char *err, size_t errlen)
{
    size_t len = (size_t)(api_openapi_yaml_end - api_openapi_yaml) - 1;
    err[0] = '\0';
    json_t *doc = api_yaml_to_json(api_openapi_yaml, len, err, errlen);
    if (doc == NULL)
        return ERR_INTERNAL;
    server->openapi_yaml = h2o_iovec_init(api_openapi_yaml, len);
    api_docs_init(&server->docs, json_string_value(json_object_get(json_object_get(doc, "info"), "title")));
    char *s = json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(doc);
    server->openapi_json = h2o_iovec_init(s, strlen(s));
    return 0;
}

/* Both documents leave out the routes of switched-off modules for everyone but administrators (api/modules.h). */
int openapi_get_yaml(api_req_t *ar)
{
    return api_modules_send_spec(ar, 1);
}

int openapi_get_json(api_req_t *ar)
{
    return api_modules_send_spec(ar, 0);
}
