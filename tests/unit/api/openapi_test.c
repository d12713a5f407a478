/*
 * tests/unit/api/openapi_test.c - unit tests for api/openapi.c, and the
 * contract test between openapi/openapi.yaml and the route table.
 *
 * The first part feeds small YAML documents to api_yaml_to_json(). The
 * second reads the spec from disk (tests run from the repository root),
 * converts it the way the server does at start-up and compares its
 * (method, path) pairs with api_routes[] in both directions, so a route
 * added to one side only fails here with the offenders listed. The spec is
 * the source of truth for routes, so a mismatch is a bug in whichever side
 * lags behind. The third part compares every engine resource's description
 * (api/resources.c) with its schemas, list parameters and bodies in the
 * spec, again reporting every mismatch at once.
 */
#include <check.h>
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../../api/openapi.c"
#include "api/engine_int.h"
#include "api/engine_routes.h"
#include "api/modules.h"
#include "api/resources.h"

#define SPEC_PATH "openapi/openapi.yaml"

static char errbuf[512];

/* Converts a NUL-terminated document; err is cleared first, as api_openapi_load does. */
static json_t *convert(const char *yaml)
{
    errbuf[0] = '\0';
    return api_yaml_to_json(yaml, strlen(yaml), errbuf, sizeof(errbuf));
}

static json_t *convert_ok(const char *yaml)
{
    json_t *j = convert(yaml);
    ck_assert_msg(j != NULL, "conversion failed: %s\n--- document:\n%s", errbuf, yaml);
    return j;
}

/* Asserts the conversion fails with a message containing each of the given fragments. */
static void convert_fails(const char *yaml, const char *frag1, const char *frag2)
{
    json_t *j = convert(yaml);
    if (j != NULL) {
        char *s = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
        json_decref(j);
        ck_abort_msg("document accepted as %s\n--- document:\n%s", s != NULL ? s : "?", yaml);
    }
    ck_assert_msg(frag1 == NULL || strstr(errbuf, frag1) != NULL, "error \"%s\" lacks \"%s\"", errbuf, frag1);
    ck_assert_msg(frag2 == NULL || strstr(errbuf, frag2) != NULL, "error \"%s\" lacks \"%s\"", errbuf, frag2);
}

static void assert_json_equal(json_t *got, const char *want_text)
{
    json_error_t jerr;
    json_t *want = json_loads(want_text, JSON_DECODE_ANY, &jerr);
    ck_assert_msg(want != NULL, "bad expected JSON: %s", jerr.text);
    if (!json_equal(got, want)) {
        char *s = json_dumps(got, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
        ck_abort_msg("got %s, want %s", s != NULL ? s : "?", want_text);
    }
    json_decref(want);
}

/* --- YAML structure --------------------------------------------------------- */

START_TEST(test_yaml_nested)
{
    json_t *j = convert_ok("a:\n"
                           "  b: [1, 2, {c: d}]\n"
                           "  e:\n"
                           "    - x\n"
                           "    - y: z\n"
                           "      w: []\n"
                           "    - - inner\n"
                           "f: {}\n");
    assert_json_equal(j, "{\"a\":{\"b\":[1,2,{\"c\":\"d\"}],\"e\":[\"x\",{\"y\":\"z\",\"w\":[]},[\"inner\"]]},"
                         "\"f\":{}}");
    json_decref(j);

    j = convert_ok("- 1\n- two\n");
    assert_json_equal(j, "[1, \"two\"]");
    json_decref(j);
}
END_TEST

START_TEST(test_yaml_key_order)
{
    /* The JSON keeps the spec's order, so /openapi.json reads like /openapi.yaml. */
    json_t *j = convert_ok("zeta: 1\nalpha: 2\nmid: 3\n");
    char *s = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
    ck_assert_str_eq(s, "{\"zeta\":1,\"alpha\":2,\"mid\":3}");
    free(s);
    json_decref(j);
}
END_TEST

START_TEST(test_yaml_depth_limit)
{
    char doc[256];
    /* 64 levels of flow sequences are fine; 70 are refused rather than recursing without bound. */
    memset(doc, '[', 64);
    memset(doc + 64, ']', 64);
    doc[128] = '\0';
    json_decref(convert_ok(doc));
    memset(doc, '[', 70);
    memset(doc + 70, ']', 70);
    doc[140] = '\0';
    convert_fails(doc, "nesting", NULL);
}
END_TEST

/* --- YAML scalars ----------------------------------------------------------- */

START_TEST(test_yaml_plain_scalars)
{
    json_t *j = convert_ok("int: 123\n"
                           "neg: -7\n"
                           "zero: 0\n"
                           "real: 1.5\n"
                           "negreal: -0.25\n"
                           "exp: 1e3\n"
                           "yes: true\n"
                           "no: false\n"
                           "nul: null\n"
                           "tilde: ~\n"
                           "empty:\n"
                           "word: hello world\n"
                           "version: 3.1.0\n"
                           "path: /v1/customers\n"
                           "True: True\n");
    ck_assert(json_is_integer(json_object_get(j, "int")));
    ck_assert_int_eq(json_integer_value(json_object_get(j, "int")), 123);
    ck_assert_int_eq(json_integer_value(json_object_get(j, "neg")), -7);
    ck_assert(json_is_integer(json_object_get(j, "zero")));
    ck_assert(json_is_real(json_object_get(j, "real")));
    ck_assert_double_eq(json_real_value(json_object_get(j, "real")), 1.5);
    ck_assert_double_eq(json_real_value(json_object_get(j, "negreal")), -0.25);
    ck_assert(json_is_real(json_object_get(j, "exp")));
    ck_assert_double_eq(json_real_value(json_object_get(j, "exp")), 1000.0);
    ck_assert(json_is_true(json_object_get(j, "yes")));
    ck_assert(json_is_false(json_object_get(j, "no")));
    ck_assert(json_is_null(json_object_get(j, "nul")));
    ck_assert(json_is_null(json_object_get(j, "tilde")));
    ck_assert(json_is_null(json_object_get(j, "empty")));
    ck_assert_str_eq(json_string_value(json_object_get(j, "word")), "hello world");
    ck_assert_str_eq(json_string_value(json_object_get(j, "version")), "3.1.0");
    ck_assert_str_eq(json_string_value(json_object_get(j, "path")), "/v1/customers");
    /* Only the lower-case spellings are booleans here. */
    ck_assert_str_eq(json_string_value(json_object_get(j, "True")), "True");
    json_decref(j);
}
END_TEST

START_TEST(test_yaml_quoted_scalars)
{
    json_t *j = convert_ok("dq: \"123\"\n"
                           "sq: '1.5'\n"
                           "t: \"true\"\n"
                           "n: 'null'\n"
                           "e: \"\"\n"
                           "esc: \"a\\tb\\u00e9\"\n"
                           "lit: |\n"
                           "  123\n"
                           "fold: >\n"
                           "  one\n"
                           "  two\n"
                           "\"123\": quoted key\n"
                           "456: plain key\n");
    assert_json_equal(j, "{\"dq\":\"123\",\"sq\":\"1.5\",\"t\":\"true\",\"n\":\"null\",\"e\":\"\","
                         "\"esc\":\"a\\tb\\u00e9\",\"lit\":\"123\\n\",\"fold\":\"one two\\n\","
                         "\"123\":\"quoted key\",\"456\":\"plain key\"}");
    json_decref(j);
}
END_TEST

START_TEST(test_yaml_big_integer)
{
    /* A plain integer beyond 64 bits must not silently become 9223372036854775807. */
    json_t *j = convert("n: 99999999999999999999\n");
    if (j != NULL) {
        json_t *n = json_object_get(j, "n");
        ck_assert_msg(!(json_is_integer(n) && json_integer_value(n) == LLONG_MAX),
                      "99999999999999999999 became the integer %lld", (long long)json_integer_value(n));
        json_decref(j);
    }
}
END_TEST

START_TEST(test_yaml_inf_like_plain_scalar)
{
    /* "-inf" is not a YAML float (that is -.inf); it is a plain string, and must not sink the document. */
    json_t *j = convert("a: -inf\nb: -nan\n");
    ck_assert_msg(j != NULL, "document refused: %s", errbuf);
    ck_assert_str_eq(json_string_value(json_object_get(j, "a")), "-inf");
    ck_assert_str_eq(json_string_value(json_object_get(j, "b")), "-nan");
    json_decref(j);
}
END_TEST

/* --- YAML refusals ---------------------------------------------------------- */

START_TEST(test_yaml_duplicate_keys)
{
    convert_fails("a: 1\nb: 2\na: 3\n", "duplicate key \"a\"", "line 3");
    convert_fails("outer:\n  x: 1\n  x: 2\n", "duplicate key \"x\"", "line 3");
    convert_fails("list:\n  - k: 1\n    k: 1\n", "duplicate", NULL);
    /* The same key in sibling mappings is fine. */
    json_decref(convert_ok("a: {k: 1}\nb: {k: 2}\n"));
}
END_TEST

START_TEST(test_yaml_anchors_aliases)
{
    convert_fails("a: &x 1\nb: *x\n", "anchor", "line 1");
    convert_fails("a: 1\nb: *x\n", "alias", "line 2");
    convert_fails("- &first one\n", "anchor", NULL);
}
END_TEST

START_TEST(test_yaml_tags)
{
    /* Tags are refused: "!!str 123" would otherwise silently turn into the integer 123. */
    convert_fails("a: !!str 123\n", NULL, NULL);
    convert_fails("a: !custom value\n", NULL, NULL);
}
END_TEST

START_TEST(test_yaml_invalid)
{
    convert_fails("a: [1, 2\nb: 3\n", "line ", NULL);
    convert_fails("a: b: c\n", "line 1", NULL);
    convert_fails("a: 1\n b: 2\n", "line 2", NULL);
    convert_fails("key: \"unterminated\n", "line ", NULL);
    convert_fails("a:\n\t- tab\n", "line 2", NULL);
    /* A mapping key must be a scalar. */
    convert_fails("? [a, b]\n: c\n", "scalar mapping keys", "line 1");
}
END_TEST

START_TEST(test_yaml_empty_and_multi)
{
    convert_fails("", "empty document", NULL);
    convert_fails("# only a comment\n", "empty document", NULL);
    convert_fails("a: 1\n---\nb: 2\n", "more than one document", NULL);
    /* An explicit single document is fine. */
    json_t *j = convert_ok("---\na: 1\n...\n");
    assert_json_equal(j, "{\"a\":1}");
    json_decref(j);
}
END_TEST

START_TEST(test_yaml_sets_err_itself)
{
    /* The error is always a terminated string, even when the caller did not clear the buffer. */
    char *err = malloc(64);
    memset(err, 'X', 64);
    ck_assert_ptr_null(api_yaml_to_json("", 0, err, 64));
    ck_assert_msg(memchr(err, '\0', 64) != NULL, "err left unterminated");
    ck_assert_str_eq(err, "empty document");
    free(err);
}
END_TEST

START_TEST(test_yaml_uses_len)
{
    /* Only len bytes are read: the tail after them is not part of the document. */
    static const char doc[] = "a: 1\nb: [";
    json_t *j = api_yaml_to_json(doc, 5, (errbuf[0] = '\0', errbuf), sizeof(errbuf));
    ck_assert_msg(j != NULL, "refused: %s", errbuf);
    assert_json_equal(j, "{\"a\":1}");
    json_decref(j);
}
END_TEST

/* --- the contract: spec vs route table -------------------------------------- */

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot open %s (run the test from the repository root)", path);
    char *buf = NULL;
    size_t cap = 0, n = 0, got;
    do {
        if (n + 4096 > cap) {
            cap = cap == 0 ? 65536 : cap * 2;
            buf = realloc(buf, cap + 1);
            ck_assert_ptr_nonnull(buf);
        }
        got = fread(buf + n, 1, cap - n, f);
        n += got;
    } while (got > 0);
    ck_assert_msg(!ferror(f), "error reading %s", path);
    fclose(f);
    buf[n] = '\0';
    *len = n;
    return buf;
}

static json_t *load_spec(void)
{
    size_t len;
    char *yaml = read_file(SPEC_PATH, &len);
    errbuf[0] = '\0';
    json_t *spec = api_yaml_to_json(yaml, len, errbuf, sizeof(errbuf));
    free(yaml);
    ck_assert_msg(spec != NULL, "%s does not convert: %s", SPEC_PATH, errbuf);
    ck_assert_msg(json_is_object(spec), "%s is not a mapping", SPEC_PATH);
    return spec;
}

static const struct {
    const char *name; /* as in OpenAPI path items */
    unsigned bit;
} http_methods[] = {
    {"get", ROUTER_GET},       {"put", ROUTER_PUT},         {"post", ROUTER_POST}, {"delete", ROUTER_DELETE},
    {"options", ROUTER_OPTIONS}, {"head", ROUTER_HEAD},     {"patch", ROUTER_PATCH}, {"trace", 0},
};
#define NMETHODS (sizeof(http_methods) / sizeof(http_methods[0]))

static const char *method_name(unsigned bit)
{
    for (size_t i = 0; i < NMETHODS; i++)
        if (http_methods[i].bit == bit && bit != 0)
            return http_methods[i].name;
    return NULL;
}

/* "get" -> "GET", for messages. */
static const char *upper(const char *name, char out[16])
{
    size_t k;
    for (k = 0; name != NULL && name[k] != '\0' && k < 15; k++)
        out[k] = (char)toupper((unsigned char)name[k]);
    out[k] = '\0';
    return out;
}

/* "/v1/customers/{id:int}" -> "/v1/customers/{id}" (malloc'd). */
static char *spec_path_of(const char *tpl)
{
    char *out = malloc(strlen(tpl) + 1), *o = out;
    int in_brace = 0, skipping = 0;
    for (const char *p = tpl; *p != '\0'; p++) {
        if (*p == '{')
            in_brace = 1;
        else if (*p == '}')
            in_brace = skipping = 0;
        else if (*p == ':' && in_brace)
            skipping = 1;
        if (!skipping)
            *o++ = *p;
    }
    *o = '\0';
    return out;
}

/* Appends a line to a growing report, keeping it bounded. */
static void report_add(char *report, size_t cap, const char *fmt, const char *a, const char *b)
{
    size_t n = strlen(report);
    if (n + 1 < cap)
        snprintf(report + n, cap - n, fmt, a, b);
}

START_TEST(test_contract_spec_header)
{
    json_t *spec = load_spec();
    const char *version = json_string_value(json_object_get(spec, "openapi"));
    ck_assert_msg(version != NULL, "spec has no \"openapi\" string");
    ck_assert_msg(strncmp(version, "3.1.", 4) == 0 && isdigit((unsigned char)version[4]),
                  "spec declares openapi %s, expected 3.1.x", version);
    json_t *problem = json_object_get(json_object_get(json_object_get(spec, "components"), "schemas"), "Problem");
    ck_assert_msg(json_is_object(problem), "components.schemas.Problem is missing");
    ck_assert_msg(json_is_object(json_object_get(spec, "paths")), "spec has no paths mapping");
    json_decref(spec);
}
END_TEST

START_TEST(test_contract_routes_match_spec)
{
    json_t *spec = load_spec();
    json_t *paths = json_object_get(spec, "paths");
    ck_assert_msg(json_is_object(paths), "spec has no paths mapping");

    static char report[8192];
    report[0] = '\0';
    int offenders = 0;

    /* Table -> spec. */
    for (size_t i = 0; i < api_nroutes; i++) {
        const char *m = method_name(api_routes[i].method);
        char *p = spec_path_of(api_routes[i].path);
        if (m == NULL) {
            report_add(report, sizeof(report), "  route table has an unknown method bit on %s%s\n", api_routes[i].path,
                       "");
            offenders++;
        } else if (json_object_get(json_object_get(paths, p), m) == NULL) {
            char mu[16];
            report_add(report, sizeof(report), "  in the route table but not in the spec: %s %s\n", upper(m, mu), p);
            offenders++;
        }
        free(p);
    }

    /* Spec -> table. */
    const char *path;
    json_t *item;
    json_object_foreach(paths, path, item)
    {
        if (!json_is_object(item)) {
            report_add(report, sizeof(report), "  spec path %s is not a mapping%s\n", path, "");
            offenders++;
            continue;
        }
        for (size_t k = 0; k < NMETHODS; k++) {
            if (json_object_get(item, http_methods[k].name) == NULL)
                continue;
            int found = 0;
            for (size_t i = 0; i < api_nroutes && !found; i++) {
                if (api_routes[i].method != http_methods[k].bit || http_methods[k].bit == 0)
                    continue;
                char *p = spec_path_of(api_routes[i].path);
                found = strcmp(p, path) == 0;
                free(p);
            }
            if (!found) {
                char mu[16];
                report_add(report, sizeof(report), "  in the spec but not in the route table: %s %s\n",
                           upper(http_methods[k].name, mu), path);
                offenders++;
            }
        }
    }
    json_decref(spec);
    ck_assert_msg(offenders == 0, "%d route(s) differ between api/routes.c and %s:\n%s", offenders, SPEC_PATH,
                  report);
}
END_TEST

START_TEST(test_contract_table_well_formed)
{
    /* Every template is routable: parameters are typed, and no (method, template) appears twice. */
    for (size_t i = 0; i < api_nroutes; i++) {
        const char *t = api_routes[i].path;
        ck_assert_msg(t[0] == '/', "route %zu: template \"%s\" does not start with /", i, t);
        ck_assert_msg(method_name(api_routes[i].method) != NULL && api_routes[i].method != ROUTER_HEAD &&
                          api_routes[i].method != ROUTER_OPTIONS,
                      "route %zu (%s): method bit %#x is not one routable method", i, t, api_routes[i].method);
        ck_assert_ptr_nonnull(api_routes[i].handler);
        for (const char *p = strchr(t, '{'); p != NULL; p = strchr(p + 1, '{')) {
            const char *close = strchr(p, '}'), *colon = strchr(p, ':');
            ck_assert_msg(close != NULL && colon != NULL && colon < close,
                          "route %zu: parameter in \"%s\" has no :type", i, t);
            size_t tlen = (size_t)(close - colon - 1);
            ck_assert_msg((tlen == 3 && (memcmp(colon + 1, "int", 3) == 0 || memcmp(colon + 1, "str", 3) == 0)),
                          "route %zu: parameter type in \"%s\" is neither int nor str", i, t);
        }
        for (size_t j = i + 1; j < api_nroutes; j++)
            ck_assert_msg(!(api_routes[j].method == api_routes[i].method && strcmp(api_routes[j].path, t) == 0),
                          "routes %zu and %zu are both %s %s", i, j, method_name(api_routes[i].method), t);
    }
}
END_TEST

START_TEST(test_contract_every_route_reachable)
{
    /* A sample path for each route must reach that route: no earlier overlapping template shadows it. */
    const char **tpls = calloc(api_nroutes + 1, sizeof(*tpls));
    unsigned *meths = calloc(api_nroutes + 1, sizeof(*meths));
    for (size_t i = 0; i < api_nroutes; i++) {
        tpls[i] = api_routes[i].path;
        meths[i] = api_routes[i].method;
    }
    for (size_t i = 0; i < api_nroutes; i++) {
        char sample[512], *o = sample;
        for (const char *p = api_routes[i].path; *p != '\0' && o < sample + sizeof(sample) - 8;) {
            if (*p == '{') {
                const char *close = strchr(p, '}');
                ck_assert_ptr_nonnull(close);
                int is_int = close - p >= 4 && memcmp(close - 4, ":int", 4) == 0;
                /* A value no literal segment is likely to equal. */
                memcpy(o, is_int ? "7" : "zz-9", is_int ? 1 : 4);
                o += is_int ? 1 : 4;
                p = close + 1;
            } else {
                *o++ = *p++;
            }
        }
        *o = '\0';
        char scratch[sizeof(sample) + 1];
        router_match_t m;
        char mu[16];
        int r = router_match(tpls, meths, api_nroutes, api_routes[i].method, sample, strlen(sample), scratch, &m);
        ck_assert_msg(r >= 0 && strcmp(api_routes[r].path, api_routes[i].path) == 0 &&
                          api_routes[r].method == api_routes[i].method,
                      "%s %s (sample %s) is answered by %s instead", upper(method_name(api_routes[i].method), mu),
                      api_routes[i].path, sample, r >= 0 ? api_routes[r].path : r == -1 ? "404" : "405");
    }
    free(tpls);
    free(meths);
}
END_TEST

START_TEST(test_contract_problem_types_documented)
{
    /* Every problem type the server can send is in Problem.type's enum, and the enum lists nothing else. */
    json_t *spec = load_spec();
    json_t *schema = json_object_get(json_object_get(json_object_get(spec, "components"), "schemas"), "Problem");
    json_t *en = json_object_get(json_object_get(json_object_get(schema, "properties"), "type"), "enum");
    ck_assert_msg(json_is_array(en), "components.schemas.Problem.properties.type.enum is missing");
    json_t *sent = json_array();
    for (int err = -1; err > -ERR__COUNT; err--) {
        json_t *p = api_problem_new(api_err_status(err), NULL, NULL);
        json_array_append(sent, json_object_get(p, "type"));
        json_decref(p);
    }
    /* And the kinds sent by name (api_send_problem), such as module-disabled. */
    for (size_t k = 0; api_problem_slug(k) != NULL; k++) {
        char type[96];
        snprintf(type, sizeof(type), "/problems/%s", api_problem_slug(k));
        json_array_append_new(sent, json_string(type));
    }
    size_t i;
    json_t *v;
    json_array_foreach(sent, i, v)
    {
        int found = 0;
        for (size_t k = 0; k < json_array_size(en); k++)
            found |= json_equal(json_array_get(en, k), v);
        ck_assert_msg(found, "problem type %s is not documented in the spec", json_string_value(v));
    }
    json_array_foreach(en, i, v)
    {
        int found = 0;
        for (size_t k = 0; k < json_array_size(sent); k++)
            found |= json_equal(json_array_get(sent, k), v);
        ck_assert_msg(found, "the spec documents problem type %s, which the server never sends",
                      json_string_value(v));
    }
    json_decref(sent);
    json_decref(spec);
}
END_TEST

/* Follows local $refs ("#/components/schemas/X"); NULL for a ref that names nothing. Borrowed. */
static json_t *deref(json_t *spec, json_t *node)
{
    for (int hops = 0; hops < 32; hops++) {
        const char *ref = json_is_object(node) ? json_string_value(json_object_get(node, "$ref")) : NULL;
        if (ref == NULL)
            return node;
        if (strncmp(ref, "#/", 2) != 0)
            return NULL;
        node = spec;
        for (const char *p = ref + 2; *p != '\0' && node != NULL;) {
            size_t n = strcspn(p, "/");
            char seg[128];
            if (n >= sizeof(seg))
                return NULL;
            memcpy(seg, p, n);
            seg[n] = '\0';
            node = json_object_get(node, seg);
            p += n + (p[n] == '/');
        }
    }
    return NULL;
}

/* The enum of the `sort` query parameter of GET <path> (borrowed from spec), or NULL. */
static json_t *sort_enum(json_t *spec, const char *path)
{
    json_t *params =
        json_object_get(json_object_get(json_object_get(json_object_get(spec, "paths"), path), "get"), "parameters");
    size_t i;
    json_t *p;
    json_array_foreach(params, i, p)
    {
        json_t *d = deref(spec, p);
        const char *name = json_string_value(json_object_get(d, "name"));
        if (name != NULL && strcmp(name, "sort") == 0)
            return json_object_get(deref(spec, json_object_get(d, "schema")), "enum");
    }
    return NULL;
}

/* Asserts the sort enum of GET <path> lists each sort of r ascending and with '-', and nothing else. */
static void check_sorts(json_t *spec, const char *path, const engine_resource_t *r)
{
    json_t *en = sort_enum(spec, path);
    ck_assert_msg(json_is_array(en), "GET %s has no sort parameter with an enum", path);
    size_t n = 0;
    for (const engine_sort_t *so = r->sorts; so != NULL && so->name != NULL; so++) {
        for (int desc = 0; desc < 2; desc++) {
            char want[64];
            snprintf(want, sizeof(want), "%s%s", desc ? "-" : "", so->name);
            int found = 0;
            for (size_t i = 0; i < json_array_size(en); i++)
                found |= json_is_string(json_array_get(en, i)) &&
                         strcmp(json_string_value(json_array_get(en, i)), want) == 0;
            ck_assert_msg(found, "GET %s accepts sort=%s, which the spec does not list", path, want);
            n++;
        }
    }
    ck_assert_msg(json_array_size(en) == n, "GET %s: the spec lists %zu sort orders, the server accepts %zu", path,
                  json_array_size(en), n);
}

START_TEST(test_contract_list_sorts_documented)
{
    /*
     * The sort orders a list accepts (each sort of the description, ascending
     * and with '-') are exactly those its spec lists: at /v1/<name>, and at
     * every other list route of the resource (a customer's contacts).
     */
    json_t *spec = load_spec();
    for (const engine_resource_t *const *r = engine_resources; *r != NULL; r++) {
        char path[96];
        snprintf(path, sizeof(path), "%s", (*r)->path != NULL ? (*r)->path : "");
        if ((*r)->path == NULL)
            snprintf(path, sizeof(path), "/v1/%s", (*r)->name);
        check_sorts(spec, path, *r);
        for (size_t i = 0; i < api_nroutes; i++) {
            if (api_routes[i].handler != engine_list || api_routes[i].resource != *r)
                continue;
            char *p = spec_path_of(api_routes[i].path);
            if (strcmp(p, path) != 0)
                check_sorts(spec, p, *r);
            free(p);
        }
    }
    json_decref(spec);
}
END_TEST

/* --- the contract: engine descriptions vs spec -------------------------------- */

/* A growing report of every mismatch, bounded. */
typedef struct st_report_t {
    char text[32768];
    int count;
} report_t;

static void __attribute__((format(printf, 2, 3))) report(report_t *rp, const char *fmt, ...)
{
    size_t n = strlen(rp->text);
    rp->count++;
    if (n + 2 >= sizeof(rp->text))
        return;
    rp->text[n++] = ' ';
    rp->text[n++] = ' ';
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(rp->text + n, sizeof(rp->text) - n, fmt, ap);
    va_end(ap);
    n = strlen(rp->text);
    if (n + 1 < sizeof(rp->text)) {
        rp->text[n] = '\n';
        rp->text[n + 1] = '\0';
    }
}

/*
 * Known disagreements between a description and the spec where the spec
 * tells the truth, each with its reason. An entry that no longer matches a
 * disagreement fails the test, so a description that gets fixed takes its
 * entry out of this list too.
 */
static struct {
    const char *resource, *field, *check;
    int seen;
} known_gaps[] = {
    {NULL, NULL, NULL, 0}, /* none today; the list ends here */
};

/* Reports a mismatch of check `check` about resource.field, unless it is a known gap. */
#define MISMATCH(rp, res, field, check, fmt, ...)                                                                      \
    do {                                                                                                               \
        if (!known_gap((res), (field), (check)))                                                                       \
            report((rp), "%s: %s: " fmt, (res), (field), __VA_ARGS__);                                                 \
    } while (0)

static int known_gap(const char *res, const char *field, const char *check)
{
    for (size_t i = 0; known_gaps[i].resource != NULL; i++)
        if (strcmp(known_gaps[i].resource, res) == 0 && strcmp(known_gaps[i].field, field) == 0 &&
            strcmp(known_gaps[i].check, check) == 0) {
            known_gaps[i].seen = 1;
            return 1;
        }
    return 0;
}

static json_t *spec_schema(json_t *spec, const char *name)
{
    return json_object_get(json_object_get(json_object_get(spec, "components"), "schemas"), name);
}

/*
 * The members an object schema describes and those it requires, through
 * $ref and allOf (not oneOf or anyOf: alternatives say nothing about every
 * instance). props maps a name to its schema (the first one found).
 */
static void collect_object(json_t *spec, json_t *schema, json_t *props, json_t *required, int depth)
{
    schema = deref(spec, schema);
    if (!json_is_object(schema) || depth > 16)
        return;
    const char *k;
    json_t *v;
    size_t i;
    json_object_foreach(json_object_get(schema, "properties"), k, v)
    {
        if (json_object_get(props, k) == NULL)
            json_object_set(props, k, v);
    }
    json_array_foreach(json_object_get(schema, "required"), i, v)
    {
        if (json_is_string(v))
            json_object_set(required, json_string_value(v), json_true());
    }
    json_array_foreach(json_object_get(schema, "allOf"), i, v) collect_object(spec, v, props, required, depth + 1);
}

enum { T_STRING = 1, T_INTEGER = 2, T_NUMBER = 4, T_BOOLEAN = 8, T_OBJECT = 16, T_ARRAY = 32, T_NULL = 64 };

static unsigned type_bit(const char *t)
{
    static const char *const names[] = {"string", "integer", "number", "boolean", "object", "array", "null"};
    for (unsigned i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (t != NULL && strcmp(t, names[i]) == 0)
            return 1u << i;
    return 0;
}

static const char *type_names(unsigned bits, char *buf, size_t len)
{
    static const char *const names[] = {"string", "integer", "number", "boolean", "object", "array", "null"};
    buf[0] = '\0';
    for (unsigned i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (bits & (1u << i))
            snprintf(buf + strlen(buf), len - strlen(buf), "%s%s", buf[0] ? "|" : "", names[i]);
    if (buf[0] == '\0')
        snprintf(buf, len, "(none)");
    return buf;
}

/* What a property schema says, gathered through $ref, oneOf, anyOf and allOf. */
typedef struct st_prop_t {
    unsigned types;
    const char *format, *pattern;
    json_t *enumv, *items, *object; /* borrowed; object: the first schema with properties */
    json_int_t max_length, min_length, max_items, min_items, minimum, maximum;
    int read_only, write_only;
} prop_t;

static void prop_gather(json_t *spec, json_t *node, prop_t *p, int depth)
{
    if (!json_is_object(node) || depth > 16)
        return;
    p->read_only |= json_is_true(json_object_get(node, "readOnly"));
    p->write_only |= json_is_true(json_object_get(node, "writeOnly"));
    node = deref(spec, node);
    if (!json_is_object(node))
        return;
    p->read_only |= json_is_true(json_object_get(node, "readOnly"));
    p->write_only |= json_is_true(json_object_get(node, "writeOnly"));
    json_t *t = json_object_get(node, "type"), *v;
    size_t i;
    if (json_is_string(t))
        p->types |= type_bit(json_string_value(t));
    json_array_foreach(t, i, v) p->types |= type_bit(json_string_value(v));
    if (p->format == NULL)
        p->format = json_string_value(json_object_get(node, "format"));
    if (p->pattern == NULL)
        p->pattern = json_string_value(json_object_get(node, "pattern"));
    if (p->enumv == NULL && json_is_array(json_object_get(node, "enum")))
        p->enumv = json_object_get(node, "enum");
    if (p->items == NULL)
        p->items = json_object_get(node, "items");
    if (p->object == NULL && json_is_object(json_object_get(node, "properties")))
        p->object = node;
#define NUM(key, field)                                                                                                \
    if (p->field < 0 && json_is_integer(json_object_get(node, key)))                                                   \
        p->field = json_integer_value(json_object_get(node, key));
    NUM("maxLength", max_length)
    NUM("minLength", min_length)
    NUM("maxItems", max_items)
    NUM("minItems", min_items)
    NUM("minimum", minimum)
    NUM("maximum", maximum)
#undef NUM
    static const char *const subs[] = {"oneOf", "anyOf", "allOf"};
    for (size_t s = 0; s < 3; s++)
        json_array_foreach(json_object_get(node, subs[s]), i, v) prop_gather(spec, v, p, depth + 1);
}

static void prop_of(json_t *spec, json_t *node, prop_t *p)
{
    memset(p, 0, sizeof(*p));
    p->max_length = p->min_length = p->max_items = p->min_items = p->minimum = p->maximum = -1;
    prop_gather(spec, node, p, 0);
}

static const char *vt_name(validate_type_t t)
{
    static const char *const names[] = {
        [VT_STRING] = "VT_STRING",
        [VT_TEXT] = "VT_TEXT",
        [VT_EMAIL] = "VT_EMAIL",
        [VT_PHONE] = "VT_PHONE",
        [VT_ENUM] = "VT_ENUM",
        [VT_BOOL] = "VT_BOOL",
        [VT_INT] = "VT_INT",
        [VT_ID] = "VT_ID",
        [VT_DECIMAL] = "VT_DECIMAL",
        [VT_TIMESTAMP] = "VT_TIMESTAMP",
        [VT_DATE] = "VT_DATE",
        [VT_COUNTRY] = "VT_COUNTRY",
        [VT_CURRENCY] = "VT_CURRENCY",
        [VT_OBJECT] = "VT_OBJECT",
        [VT_ARRAY] = "VT_ARRAY",
        [VT_STRING_ARRAY] = "VT_STRING_ARRAY",
        [VT_JSON_OBJECT] = "VT_JSON_OBJECT",
    };
    return (size_t)t < sizeof(names) / sizeof(names[0]) && names[t] != NULL ? names[t] : "VT_?";
}

/* The JSON types a field's values have (need), and those the spec may add (decimals may be sent as numbers). */
static void vt_types(validate_type_t t, unsigned *need, unsigned *may)
{
    *may = 0;
    switch (t) {
    case VT_ID:
    case VT_INT:
        *need = T_INTEGER;
        break;
    case VT_BOOL:
        *need = T_BOOLEAN;
        break;
    case VT_DECIMAL:
        *need = T_STRING;
        *may = T_NUMBER;
        break;
    case VT_OBJECT:
    case VT_JSON_OBJECT:
        *need = T_OBJECT;
        break;
    case VT_ARRAY:
    case VT_STRING_ARRAY:
        *need = T_ARRAY;
        break;
    default:
        *need = T_STRING;
    }
}

static int is_string_type(validate_type_t t)
{
    return t == VT_STRING || t == VT_TEXT || t == VT_EMAIL || t == VT_PHONE;
}

/* 1 when the enum arrays hold the same non-null strings (order-insensitive). */
static int same_enum(json_t *spec_enum, const char *const *values)
{
    size_t n = 0, nv = 0;
    json_t *v;
    size_t i;
    for (const char *const *p = values; p != NULL && *p != NULL; p++)
        nv++;
    json_array_foreach(spec_enum, i, v)
    {
        if (json_is_null(v))
            continue;
        int found = 0;
        for (const char *const *p = values; p != NULL && *p != NULL; p++)
            found |= json_is_string(v) && strcmp(json_string_value(v), *p) == 0;
        if (!found)
            return 0;
        n++;
    }
    return n == nv;
}

static void enum_text(json_t *en, char *buf, size_t len)
{
    char *s = en != NULL ? json_dumps(en, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    snprintf(buf, len, "%s", s != NULL ? s : "(none)");
    free(s);
}

static void values_text(const char *const *values, char *buf, size_t len)
{
    buf[0] = '\0';
    for (const char *const *p = values; p != NULL && *p != NULL; p++)
        snprintf(buf + strlen(buf), len - strlen(buf), "%s%s", p == values ? "" : ",", *p);
}

static void compare_object(json_t *spec, report_t *rp, const char *res, const char *label,
                           const validate_field_t *fields, size_t nfields, json_t *schema);

/* Compares one field with its property schema; label names it in reports ("customers", "address.city"). */
static void compare_field(json_t *spec, report_t *rp, const char *res, const char *label, const validate_field_t *f,
                          json_t *node)
{
    prop_t p;
    char a[96], b[512];
    prop_of(spec, node, &p);
    unsigned need, may;
    vt_types(f->type, &need, &may);
    unsigned got = p.types & ~(unsigned)T_NULL;
    if ((got & need) != need || (got & ~(need | may)) != 0)
        MISMATCH(rp, res, label, "type", "the spec's type is %s, the description's %s (%s)",
                 type_names(got, a, sizeof(a)), vt_name(f->type), type_names(need | may, b, sizeof(b)));
    int nullable = (p.types & T_NULL) != 0, want_null = (f->flags & VF_NULLABLE) != 0;
    if (nullable != want_null)
        MISMATCH(rp, res, label, "nullable", "the spec says %s, the description %s",
                 nullable ? "nullable" : "not nullable", want_null ? "VF_NULLABLE" : "not VF_NULLABLE");
    const char *want_format = f->type == VT_TIMESTAMP ? "date-time"
                              : f->type == VT_DATE    ? "date"
                              : f->type == VT_EMAIL   ? "email"
                                                      : NULL;
    if (want_format != NULL && (p.format == NULL || strcmp(p.format, want_format) != 0))
        MISMATCH(rp, res, label, "format", "the spec's format is %s, %s wants %s", p.format ? p.format : "(none)",
                 vt_name(f->type), want_format);
    if (f->type == VT_ENUM && (p.enumv == NULL || !same_enum(p.enumv, f->enum_values))) {
        enum_text(p.enumv, a, sizeof(a));
        values_text(f->enum_values, b, sizeof(b));
        MISMATCH(rp, res, label, "enum", "the spec's enum is %s, the description's [%s]", a, b);
    }
    if (is_string_type(f->type) && f->max_len > 0 && p.max_length != (json_int_t)f->max_len)
        MISMATCH(rp, res, label, "maxLength", "the spec's maxLength is %lld, the description's max_len %zu",
                 (long long)p.max_length, f->max_len);
    if (is_string_type(f->type) && f->min_len > 0 && p.min_length != (json_int_t)f->min_len)
        MISMATCH(rp, res, label, "minLength", "the spec's minLength is %lld, the description's min_len %zu",
                 (long long)p.min_length, f->min_len);
    if ((f->type == VT_ARRAY || f->type == VT_STRING_ARRAY) && f->max_len > 0 && p.max_items != (json_int_t)f->max_len)
        MISMATCH(rp, res, label, "maxItems", "the spec's maxItems is %lld, the description's max_len %zu",
                 (long long)p.max_items, f->max_len);
    if ((f->type == VT_ARRAY || f->type == VT_STRING_ARRAY) && f->min_len > 0 && p.min_items != (json_int_t)f->min_len)
        MISMATCH(rp, res, label, "minItems", "the spec's minItems is %lld, the description's min_len %zu",
                 (long long)p.min_items, f->min_len);
    if (f->type == VT_INT && (f->flags & VF_RANGE) &&
        (p.minimum != (json_int_t)f->min_value || p.maximum != (json_int_t)f->max_value))
        MISMATCH(rp, res, label, "range", "the spec's range is %lld..%lld, the description's %lld..%lld",
                 (long long)p.minimum, (long long)p.maximum, (long long)f->min_value, (long long)f->max_value);
    if (f->type == VT_DECIMAL) {
        char want[96];
        snprintf(want, sizeof(want), "^-?(0|[1-9][0-9]{0,%d})(\\.[0-9]{1,%d})?$", f->int_digits - 1, f->scale);
        if (p.pattern == NULL || strcmp(p.pattern, want) != 0)
            MISMATCH(rp, res, label, "pattern", "the spec's pattern is %s, the description's digits want %s",
                     p.pattern ? p.pattern : "(none)", want);
    }
    if (f->type == VT_STRING_ARRAY) {
        prop_t it;
        prop_of(spec, p.items, &it);
        if (it.types != T_STRING || (f->item_max_len > 0 && it.max_length != (json_int_t)f->item_max_len) ||
            (f->item_min_len > 0 && it.min_length != (json_int_t)f->item_min_len))
            MISMATCH(rp, res, label, "items",
                     "the spec's items are %s of %lld..%lld characters, the description's strings of %zu..%zu",
                     type_names(it.types, a, sizeof(a)), (long long)it.min_length, (long long)it.max_length,
                     f->item_min_len, f->item_max_len);
    }
    if (f->type == VT_OBJECT && f->nfields > 0) {
        if (p.object == NULL)
            MISMATCH(rp, res, label, "members", "the spec describes no members, the description %zu", f->nfields);
        else
            compare_object(spec, rp, res, label, f->fields, f->nfields, p.object);
    }
    if (f->type == VT_ARRAY && f->nfields > 0) {
        char sub[160];
        snprintf(sub, sizeof(sub), "%s[]", label);
        compare_field(spec, rp, res, sub, &f->fields[0], p.items);
    }
}

/* A nested object: the same members, required iff VF_REQUIRED, each compared. */
static void compare_object(json_t *spec, report_t *rp, const char *res, const char *label,
                           const validate_field_t *fields, size_t nfields, json_t *schema)
{
    json_t *props = json_object(), *required = json_object();
    collect_object(spec, schema, props, required, 0);
    char sub[160];
    for (size_t i = 0; i < nfields; i++) {
        const validate_field_t *f = &fields[i];
        snprintf(sub, sizeof(sub), "%s.%s", label, f->name);
        json_t *node = json_object_get(props, f->name);
        if (node == NULL) {
            MISMATCH(rp, res, sub, "member", "the spec does not describe it%s", "");
            continue;
        }
        if ((json_object_get(required, f->name) != NULL) != ((f->flags & VF_REQUIRED) != 0))
            MISMATCH(rp, res, sub, "required", "the spec %s it, the description %s",
                     json_object_get(required, f->name) ? "requires" : "does not require",
                     (f->flags & VF_REQUIRED) ? "has VF_REQUIRED" : "has no VF_REQUIRED");
        compare_field(spec, rp, res, sub, f, node);
    }
    const char *k;
    json_t *v;
    json_object_foreach(props, k, v)
    {
        int found = 0;
        for (size_t i = 0; i < nfields; i++)
            found |= strcmp(fields[i].name, k) == 0;
        if (!found) {
            snprintf(sub, sizeof(sub), "%s.%s", label, k);
            MISMATCH(rp, res, sub, "member", "the spec describes it, the description does not%s", "");
        }
    }
    json_decref(props);
    json_decref(required);
}

typedef enum { S_READ, S_INPUT, S_PATCH, S_BULK } schema_kind_t;

/* Whether a field is a member of the schema of that kind. */
static int field_in(const engine_field_t *f, schema_kind_t kind)
{
    switch (kind) {
    case S_READ:
        return !(f->ef & EF_INPUT_ONLY);
    case S_INPUT:
    case S_BULK:
        return !(f->v.flags & VF_READONLY);
    case S_PATCH:
        return !(f->v.flags & VF_READONLY) && !(f->ef & (EF_INPUT_ONLY | EF_CREATE_ONLY));
    }
    return 0;
}

/* Whether the schema of that kind must require the field. */
static int field_required(const engine_field_t *f, schema_kind_t kind)
{
    switch (kind) {
    case S_READ:
        return 1; /* every member is in every document (fields= aside) */
    case S_INPUT:
        return (f->v.flags & VF_REQUIRED) != 0;
    case S_BULK:
        return (f->v.flags & VF_REQUIRED) || strcmp(f->v.name, "external_id") == 0;
    case S_PATCH:
        return 0;
    }
    return 0;
}

/* Compares a resource's description with one of its spec schemas ("Customer", "CustomerInput", ...). */
static void compare_resource_schema(json_t *spec, report_t *rp, const engine_resource_t *r, const char *schema_name,
                                    schema_kind_t kind)
{
    json_t *schema = spec_schema(spec, schema_name);
    if (schema == NULL) {
        report(rp, "%s: components.schemas.%s is missing", r->name, schema_name);
        return;
    }
    json_t *props = json_object(), *required = json_object();
    collect_object(spec, schema, props, required, 0);
    char label[160];
    for (size_t i = 0; i < r->nfields; i++) {
        const engine_field_t *f = &r->fields[i];
        json_t *node = json_object_get(props, f->v.name);
        snprintf(label, sizeof(label), "%s.%s", schema_name, f->v.name);
        if (!field_in(f, kind)) {
            if (node != NULL)
                MISMATCH(rp, r->name, label, "member", "the spec describes it, but it is %s",
                         kind == S_READ    ? "input-only"
                         : kind == S_PATCH ? "not writable by a patch"
                                           : "read-only");
            continue;
        }
        if (node == NULL) {
            MISMATCH(rp, r->name, label, "member", "the spec does not describe it%s", "");
            continue;
        }
        int req = json_object_get(required, f->v.name) != NULL;
        if (req != field_required(f, kind))
            MISMATCH(rp, r->name, label, "required", "the spec %s it, the description says it %s",
                     req ? "requires" : "does not require", field_required(f, kind) ? "is required" : "is not");
        prop_t p;
        prop_of(spec, node, &p);
        if (kind == S_READ && p.read_only != ((f->v.flags & VF_READONLY) != 0))
            MISMATCH(rp, r->name, label, "readOnly", "the spec says readOnly %s, the description %s",
                     p.read_only ? "true" : "false", (f->v.flags & VF_READONLY) ? "VF_READONLY" : "no VF_READONLY");
        if (kind == S_INPUT && p.write_only != ((f->ef & EF_INPUT_ONLY) != 0))
            MISMATCH(rp, r->name, label, "writeOnly", "the spec says writeOnly %s, the description %s",
                     p.write_only ? "true" : "false", (f->ef & EF_INPUT_ONLY) ? "EF_INPUT_ONLY" : "no EF_INPUT_ONLY");
        compare_field(spec, rp, r->name, label, &f->v, node);
    }
    const char *k;
    json_t *v;
    json_object_foreach(props, k, v)
    {
        if (engine_field(r, k) == NULL) {
            snprintf(label, sizeof(label), "%s.%s", schema_name, k);
            MISMATCH(rp, r->name, label, "member", "the spec describes it, the description has no such field%s", "");
        }
    }
    json_decref(props);
    json_decref(required);
}

/* "customer" + "Input" -> "CustomerInput". */
static void schema_name(const engine_resource_t *r, const char *suffix, char *out, size_t len)
{
    /* Each word capitalised, spaces dropped: "custom field" -> "CustomField". */
    size_t n = 0;
    for (const char *c = r->singular; *c != '\0' && n + 1 < len; c++) {
        if (*c == ' ')
            continue;
        out[n++] = (c == r->singular || c[-1] == ' ') ? (char)toupper((unsigned char)*c) : *c;
    }
    snprintf(out + n, len - n, "%s", suffix);
}

START_TEST(test_contract_descriptions_match_spec)
{
    /*
     * Each resource's description and its schemas in the spec agree: the
     * same members, types, nullability, enums, lengths and limits, which
     * members are required and which read-only, in the read schema
     * (<Singular>), the create/replace schema (<Singular>Input), the merge
     * patch (<Singular>Patch) and the bulk item (<Singular>BulkItem).
     */
    static const struct {
        const char *suffix;
        schema_kind_t kind;
    } kinds[] = {{"", S_READ}, {"Input", S_INPUT}, {"Patch", S_PATCH}, {"BulkItem", S_BULK}};
    json_t *spec = load_spec();
    static report_t rp;
    memset(&rp, 0, sizeof(rp));
    for (size_t i = 0; known_gaps[i].resource != NULL; i++)
        known_gaps[i].seen = 0;
    for (const engine_resource_t *const *r = engine_resources; *r != NULL; r++)
        for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
            int bulk = 0; /* a bulk item schema only for a resource with a bulk route */
            for (size_t i = 0; i < api_nroutes; i++)
                bulk |= api_routes[i].resource == *r && api_routes[i].handler == engine_bulk;
            if (kinds[k].kind == S_BULK && !bulk)
                continue;
            char name[96];
            schema_name(*r, kinds[k].suffix, name, sizeof(name));
            compare_resource_schema(spec, &rp, *r, name, kinds[k].kind);
        }
    for (size_t i = 0; known_gaps[i].resource != NULL; i++)
        if (!known_gaps[i].seen)
            report(&rp, "%s: %s: the known gap \"%s\" is gone: take it out of known_gaps[]", known_gaps[i].resource,
                   known_gaps[i].field, known_gaps[i].check);
    json_decref(spec);
    ck_assert_msg(rp.count == 0, "%d mismatch(es) between the descriptions (api/<resource>.c) and %s:\n%s", rp.count,
                  SPEC_PATH, rp.text);
}
END_TEST

/* The query parameters the spec documents for <method> <path>, as name -> schema (new reference). */
static json_t *spec_query_params(json_t *spec, const char *path, const char *method)
{
    json_t *out = json_object(), *item = json_object_get(json_object_get(spec, "paths"), path), *p;
    json_t *lists[] = {json_object_get(item, "parameters"),
                       json_object_get(json_object_get(item, method), "parameters")};
    size_t i;
    for (size_t l = 0; l < 2; l++)
        json_array_foreach(lists[l], i, p)
        {
            json_t *d = deref(spec, p);
            const char *in = json_string_value(json_object_get(d, "in"));
            const char *name = json_string_value(json_object_get(d, "name"));
            if (in != NULL && name != NULL && strcmp(in, "query") == 0)
                json_object_set(out, name, json_object_get(d, "schema"));
        }
    return out;
}

/* Compares the spec's query parameters of one route with the names the server accepts. */
static void compare_param_names(report_t *rp, const char *route, json_t *documented, const char *const *accepted)
{
    for (const char *const *a = accepted; *a != NULL; a++)
        if (json_object_get(documented, *a) == NULL)
            report(rp, "%s accepts ?%s=, which the spec does not list", route, *a);
    const char *k;
    json_t *v;
    json_object_foreach(documented, k, v)
    {
        int found = 0;
        for (const char *const *a = accepted; *a != NULL; a++)
            found |= strcmp(*a, k) == 0;
        if (!found)
            report(rp, "%s: the spec lists ?%s=, which this route does not take", route, k);
    }
}

/* Checks the schema of one list filter against what the engine does with it. */
static void compare_param_schema(json_t *spec, report_t *rp, const char *route, const engine_param_t *ep,
                                 json_t *schema)
{
    prop_t p;
    char a[256], b[256];
    prop_of(spec, schema, &p);
    unsigned want = T_STRING;
    const char *format = NULL;
    json_int_t minlen = -1, maxlen = -1;
    const char *const *values = NULL;
    switch (ep->kind) {
    case EP_EQ_ID:
        want = T_INTEGER;
        break;
    case EP_EQ_BOOL:
        want = T_BOOLEAN;
        break;
    case EP_EQ_DATE:
        format = "date";
        break;
    case EP_TIME:
        format = "date-time";
        break;
    case EP_EQ_ENUM:
        values = ep->field->v.enum_values;
        break;
    case EP_EQ_TEXT:
    case EP_TAG:
        minlen = 1, maxlen = 254;
        break;
    case EP_Q:
        minlen = 1, maxlen = 200;
        break;
    case EP_CUSTOM:
        if (ep->filter->kind == EFK_ENUM)
            values = ep->filter->values;
        else
            want = T_NUMBER;
        break;
    }
    if ((p.types & ~(unsigned)T_NULL) != want)
        report(rp, "%s: ?%s= is %s in the spec, %s in the server", route, ep->name, type_names(p.types, a, sizeof(a)),
               type_names(want, b, sizeof(b)));
    if (format != NULL && (p.format == NULL || strcmp(p.format, format) != 0))
        report(rp, "%s: ?%s= has format %s in the spec, %s in the server", route, ep->name,
               p.format ? p.format : "(none)", format);
    if (minlen >= 0 && (p.min_length != minlen || p.max_length != maxlen))
        report(rp, "%s: ?%s= is %lld..%lld characters in the spec, %lld..%lld in the server", route, ep->name,
               (long long)p.min_length, (long long)p.max_length, (long long)minlen, (long long)maxlen);
    if (values != NULL && (p.enumv == NULL || !same_enum(p.enumv, values))) {
        enum_text(p.enumv, a, sizeof(a));
        values_text(values, b, sizeof(b));
        report(rp, "%s: ?%s= has the enum %s in the spec, [%s] in the server", route, ep->name, a, b);
    }
    if (ep->kind == EP_CUSTOM && ep->filter->kind == EFK_PROBABILITY && (p.minimum != 0 || p.maximum != 1))
        report(rp, "%s: ?%s= is a number from %lld to %lld in the spec, from 0 to 1 in the server", route, ep->name,
               (long long)p.minimum, (long long)p.maximum);
}

/* The `fields` enum of a list is exactly the members of the resource's documents. */
static void compare_fields_param(json_t *spec, report_t *rp, const char *route, const engine_res_t *res, json_t *schema)
{
    prop_t p, it;
    prop_of(spec, schema, &p);
    prop_of(spec, p.items, &it);
    char a[1024], b[1024];
    if (it.enumv == NULL || !same_enum(it.enumv, (const char *const *)res->out_fields)) {
        enum_text(it.enumv, a, sizeof(a));
        values_text((const char *const *)res->out_fields, b, sizeof(b));
        report(rp, "%s: ?fields= names %s in the spec, [%s] in the server", route, a, b);
    }
}

START_TEST(test_contract_engine_query_params)
{
    /*
     * Every engine route documents exactly the query parameters the server
     * accepts (any other is a 400): for lists the standard five plus the
     * filters the engine derives from the description (engine_build), each
     * with the type, format, lengths or enum the server checks, and
     * `fields` naming the document's members; a nested list (a customer's
     * contacts) lacks the filter its path sets. Histories take `limit` and
     * `cursor`, feeds `after` and `limit`.
     */
    char err[256] = "";
    engine_t *e = engine_build(engine_resources, err, sizeof(err));
    ck_assert_msg(e != NULL, "engine_build: %s", err);
    json_t *spec = load_spec();
    static report_t rp;
    memset(&rp, 0, sizeof(rp));
    int lists = 0;
    for (size_t i = 0; i < api_nroutes; i++) {
        const api_route_t *rt = &api_routes[i];
        const engine_resource_t *r = rt->resource;
        if (r == NULL || rt->method != ROUTER_GET)
            continue;
        char *path = spec_path_of(rt->path), route[160];
        snprintf(route, sizeof(route), "GET %s", path);
        json_t *documented = spec_query_params(spec, path, "get");
        if (rt->handler == engine_history) {
            static const char *const accepted[] = {"limit", "cursor", NULL};
            compare_param_names(&rp, route, documented, accepted);
        } else if (rt->handler == engine_feed) {
            static const char *const accepted[] = {"after", "limit", NULL};
            compare_param_names(&rp, route, documented, accepted);
        } else if (rt->handler == engine_list) {
            const engine_res_t *res = engine_res(e, r);
            ck_assert_ptr_nonnull(res);
            int nested = strchr(path, '{') != NULL;
            const char **accepted = calloc((size_t)res->nparams + 6, sizeof(*accepted));
            size_t na = 0;
            static const char *const standard[] = {"limit", "cursor", "sort", "fields", "count"};
            for (size_t k = 0; k < 5; k++)
                accepted[na++] = standard[k];
            for (int k = 0; k < res->nparams; k++) {
                const engine_param_t *ep = &res->params[k];
                if (nested && ep->field != NULL && r->scope.ref != NULL && strcmp(ep->field->v.name, r->scope.ref) == 0)
                    continue; /* the path sets it */
                accepted[na++] = ep->name;
                json_t *schema = json_object_get(documented, ep->name);
                if (schema != NULL)
                    compare_param_schema(spec, &rp, route, ep, schema);
            }
            compare_param_names(&rp, route, documented, accepted);
            if (json_object_get(documented, "fields") != NULL)
                compare_fields_param(spec, &rp, route, res, json_object_get(documented, "fields"));
            prop_t lim;
            prop_of(spec, json_object_get(documented, "limit"), &lim);
            if (lim.types != T_INTEGER || lim.minimum != 1 || lim.maximum != 200)
                report(&rp, "%s: ?limit= is not an integer from 1 to 200 in the spec", route);
            free(accepted);
            lists++;
        }
        json_decref(documented);
        free(path);
    }
    ck_assert_msg(lists > 0, "no engine list route found in api_routes[]");
    json_decref(spec);
    engine_free(e);
    ck_assert_msg(rp.count == 0, "%d mismatch(es) between the engine's query parameters and %s:\n%s", rp.count,
                  SPEC_PATH, rp.text);
}
END_TEST

START_TEST(test_contract_engine_bodies)
{
    /*
     * Engine write routes take the resource's schemas: create and nested
     * create a <Singular>Input-like body, upserts <Singular>Input, patches
     * <Singular>Patch (as merge patches), and bulks an array of 1 to
     * bulk_max <Singular>BulkItem.
     */
    json_t *spec = load_spec();
    static report_t rp;
    memset(&rp, 0, sizeof(rp));
    for (size_t i = 0; i < api_nroutes; i++) {
        const api_route_t *rt = &api_routes[i];
        const engine_resource_t *r = rt->resource;
        const char *m = method_name(rt->method);
        if (r == NULL || m == NULL)
            continue;
        char *path = spec_path_of(rt->path), route[160], mu[16], want[96];
        snprintf(route, sizeof(route), "%s %s", upper(m, mu), path);
        json_t *content = json_object_get(
            json_object_get(json_object_get(json_object_get(json_object_get(spec, "paths"), path), m), "requestBody"),
            "content");
        const char *media = rt->handler == engine_patch ? "application/merge-patch+json" : "application/json";
        json_t *schema = json_object_get(json_object_get(content, media), "schema");
        const char *ref = json_string_value(json_object_get(schema, "$ref"));
        want[0] = '\0';
        if (rt->handler == engine_put_external || (rt->handler == engine_create && strchr(path, '{') == NULL))
            schema_name(r, "Input", want, sizeof(want));
        else if (rt->handler == engine_patch)
            schema_name(r, "Patch", want, sizeof(want));
        if (want[0] != '\0') {
            char full[128];
            snprintf(full, sizeof(full), "#/components/schemas/%s", want);
            if (ref == NULL || strcmp(ref, full) != 0)
                report(&rp, "%s: the %s body is %s in the spec, %s expected", route, media, ref ? ref : "(not a $ref)",
                       full);
        }
        if (rt->handler == engine_create && strchr(path, '{') != NULL && deref(spec, schema) == NULL)
            report(&rp, "%s: no %s body schema", route, media);
        if (rt->handler == engine_bulk) {
            size_t max = r->bulk_max ? r->bulk_max : 5000;
            char full[128];
            schema_name(r, "BulkItem", want, sizeof(want));
            snprintf(full, sizeof(full), "#/components/schemas/%s", want);
            const char *item = json_string_value(json_object_get(json_object_get(schema, "items"), "$ref"));
            if (!json_is_integer(json_object_get(schema, "maxItems")) ||
                json_integer_value(json_object_get(schema, "maxItems")) != (json_int_t)max ||
                json_integer_value(json_object_get(schema, "minItems")) != 1 || item == NULL || strcmp(item, full) != 0)
                report(&rp, "%s: the body is not an array of 1 to %zu %s", route, max, full);
            if (json_object_get(content, "application/x-ndjson") == NULL)
                report(&rp, "%s: the NDJSON body is not documented", route);
        }
        free(path);
    }
    json_decref(spec);
    ck_assert_msg(rp.count == 0, "%d mismatch(es) between the engine's bodies and %s:\n%s", rp.count, SPEC_PATH,
                  rp.text);
}
END_TEST

START_TEST(test_contract_module_routes_document_404)
{
    /* A route of a module can answer 404 (module-disabled) whatever it does: the spec says so for each. */
    json_t *spec = load_spec();
    json_t *paths = json_object_get(spec, "paths");
    static char report[8192];
    report[0] = '\0';
    int offenders = 0;
    for (size_t i = 0; i < api_nroutes; i++) {
        if (api_route_module(&api_routes[i], engine_resources) == NULL)
            continue;
        char *p = spec_path_of(api_routes[i].path);
        json_t *op = json_object_get(json_object_get(paths, p), method_name(api_routes[i].method));
        if (json_object_get(json_object_get(op, "responses"), "404") == NULL) {
            char mu[16];
            report_add(report, sizeof(report), "  %s %s\n", upper(method_name(api_routes[i].method), mu), p);
            offenders++;
        }
        free(p);
    }
    json_decref(spec);
    ck_assert_msg(offenders == 0, "%d route(s) of a module document no 404 (module-disabled) in %s:\n%s", offenders,
                  SPEC_PATH, report);
}
END_TEST

START_TEST(test_contract_embedded_copy)
{
    /* The binary serves the spec it embeds; it must be the file on disk, and load the same way. */
    size_t len;
    char *disk = read_file(SPEC_PATH, &len);
    size_t elen = (size_t)(api_openapi_yaml_end - api_openapi_yaml) - 1;
    ck_assert_msg(elen == len && memcmp(disk, api_openapi_yaml, len) == 0,
                  "the embedded spec differs from %s: rebuild build/.../api/openapi_blob.o", SPEC_PATH);
    free(disk);

    static api_server_t server;
    char err[256];
    ck_assert_msg(api_openapi_load(&server, err, sizeof(err)) == 0, "api_openapi_load: %s", err);
    ck_assert_uint_eq(server.openapi_yaml.len, elen);
    json_error_t jerr;
    json_t *j = json_loadb(server.openapi_json.base, server.openapi_json.len, 0, &jerr);
    ck_assert_msg(j != NULL, "openapi_json is not JSON: %s", jerr.text);
    ck_assert(json_is_object(json_object_get(j, "paths")));
    json_decref(j);
    free(server.openapi_json.base);
}
END_TEST

static Suite *openapi_suite(void)
{
    Suite *s = suite_create("api/openapi");
    TCase *tc;

    tc = tcase_create("yaml_structure");
    tcase_set_timeout(tc, 10);
    tcase_add_test(tc, test_yaml_nested);
    tcase_add_test(tc, test_yaml_key_order);
    tcase_add_test(tc, test_yaml_depth_limit);
    tcase_add_test(tc, test_yaml_uses_len);
    suite_add_tcase(s, tc);

    tc = tcase_create("yaml_scalars");
    tcase_set_timeout(tc, 10);
    tcase_add_test(tc, test_yaml_plain_scalars);
    tcase_add_test(tc, test_yaml_quoted_scalars);
    tcase_add_test(tc, test_yaml_big_integer);
    tcase_add_test(tc, test_yaml_inf_like_plain_scalar);
    suite_add_tcase(s, tc);

    tc = tcase_create("yaml_refusals");
    tcase_set_timeout(tc, 10);
    tcase_add_test(tc, test_yaml_duplicate_keys);
    tcase_add_test(tc, test_yaml_anchors_aliases);
    tcase_add_test(tc, test_yaml_tags);
    tcase_add_test(tc, test_yaml_invalid);
    tcase_add_test(tc, test_yaml_empty_and_multi);
    tcase_add_test(tc, test_yaml_sets_err_itself);
    suite_add_tcase(s, tc);

    tc = tcase_create("contract");
    tcase_set_timeout(tc, 20);
    tcase_add_test(tc, test_contract_spec_header);
    tcase_add_test(tc, test_contract_routes_match_spec);
    tcase_add_test(tc, test_contract_table_well_formed);
    tcase_add_test(tc, test_contract_every_route_reachable);
    tcase_add_test(tc, test_contract_problem_types_documented);
    tcase_add_test(tc, test_contract_list_sorts_documented);
    tcase_add_test(tc, test_contract_descriptions_match_spec);
    tcase_add_test(tc, test_contract_engine_query_params);
    tcase_add_test(tc, test_contract_engine_bodies);
    tcase_add_test(tc, test_contract_module_routes_document_404);
    tcase_add_test(tc, test_contract_embedded_copy);
    suite_add_tcase(s, tc);

    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(openapi_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
