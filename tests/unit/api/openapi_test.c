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
 * lags behind.
 */
#include <check.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../../api/openapi.c"
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

/* The enum of the `sort` query parameter of GET <path> (borrowed from spec), or NULL. */
static json_t *sort_enum(json_t *spec, const char *path)
{
    json_t *params =
        json_object_get(json_object_get(json_object_get(json_object_get(spec, "paths"), path), "get"), "parameters");
    size_t i;
    json_t *p;
    json_array_foreach(params, i, p)
    {
        const char *name = json_string_value(json_object_get(p, "name"));
        if (name != NULL && strcmp(name, "sort") == 0)
            return json_object_get(json_object_get(p, "schema"), "enum");
    }
    return NULL;
}

START_TEST(test_contract_list_sorts_documented)
{
    /* The sort orders a list accepts (each key ascending and with '-') are exactly those its spec lists. */
    static const char *const cs[] = {"name", "created_at", "updated_at", "clv", NULL};
    static const char *const os[] = {"ordered_at", "created_at", "updated_at", NULL};
    static const struct {
        const char *path;
        const char *const *sorts;
    } lists[] = {{"/v1/customers", cs}, {"/v1/orders", os}};
    json_t *spec = load_spec();
    for (size_t l = 0; l < sizeof(lists) / sizeof(lists[0]); l++) {
        json_t *en = sort_enum(spec, lists[l].path);
        ck_assert_msg(json_is_array(en), "GET %s has no sort parameter with an enum", lists[l].path);
        size_t n = 0;
        for (const char *const *k = lists[l].sorts; *k != NULL; k++) {
            for (int desc = 0; desc < 2; desc++) {
                char want[64];
                snprintf(want, sizeof(want), "%s%s", desc ? "-" : "", *k);
                int found = 0;
                for (size_t i = 0; i < json_array_size(en); i++)
                    found |= json_is_string(json_array_get(en, i)) &&
                             strcmp(json_string_value(json_array_get(en, i)), want) == 0;
                ck_assert_msg(found, "GET %s accepts sort=%s, which the spec does not list", lists[l].path, want);
                n++;
            }
        }
        ck_assert_msg(json_array_size(en) == n, "GET %s: the spec lists %zu sort orders, the server accepts %zu",
                      lists[l].path, json_array_size(en), n);
    }
    json_decref(spec);
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
