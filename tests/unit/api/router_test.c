/*
 * tests/unit/api/router_test.c - unit tests for api/router.c.
 *
 * The router is pure (no h2o types), so it is tested directly against a
 * table shaped like the real one: literal routes before the parameter
 * routes they overlap, several methods on one template. Every call gets a
 * path copied into a heap block of exactly path_len bytes (no NUL) and a
 * scratch block of exactly path_len + 1 bytes, so AddressSanitizer catches
 * any read past the path or write past the documented scratch size.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../../api/router.c"

enum {
    R_HEALTHZ,
    R_LIST,
    R_CREATE,
    R_BULK,
    R_EXTERNAL_PUT,
    R_GET,
    R_PATCH,
    R_DELETE,
    R_HISTORY,
    R_COUNT,
};

static const char *const templates[R_COUNT] = {
    [R_HEALTHZ] = "/healthz",
    [R_LIST] = "/v1/customers",
    [R_CREATE] = "/v1/customers",
    [R_BULK] = "/v1/customers/bulk",
    [R_EXTERNAL_PUT] = "/v1/customers/external/{external_id:str}",
    [R_GET] = "/v1/customers/{id:int}",
    [R_PATCH] = "/v1/customers/{id:int}",
    [R_DELETE] = "/v1/customers/{id:int}",
    [R_HISTORY] = "/v1/customers/{id:int}/analytics/history",
};

static const unsigned tmethods[R_COUNT] = {
    [R_HEALTHZ] = ROUTER_GET,    [R_LIST] = ROUTER_GET,   [R_CREATE] = ROUTER_POST,
    [R_BULK] = ROUTER_POST,      [R_EXTERNAL_PUT] = ROUTER_PUT, [R_GET] = ROUTER_GET,
    [R_PATCH] = ROUTER_PATCH,    [R_DELETE] = ROUTER_DELETE, [R_HISTORY] = ROUTER_GET,
};

/* Buffers of the last match; params point into them, so they live until the next call or teardown. */
static char *g_path, *g_scratch;

static void release_buffers(void)
{
    free(g_path);
    free(g_scratch);
    g_path = g_scratch = NULL;
}

static int match_in(const char *const *tpls, const unsigned *meths, size_t n, unsigned method, const char *path,
                    size_t len, router_match_t *m)
{
    release_buffers();
    g_path = malloc(len > 0 ? len : 1);
    g_scratch = malloc(len + 1);
    ck_assert_ptr_nonnull(g_path);
    ck_assert_ptr_nonnull(g_scratch);
    memcpy(g_path, path, len);
    memset(m, 0x5a, sizeof(*m));
    return router_match(tpls, meths, n, method, g_path, len, g_scratch, m);
}

static int match(unsigned method, const char *path, router_match_t *m)
{
    return match_in(templates, tmethods, R_COUNT, method, path, strlen(path), m);
}

static void teardown(void)
{
    release_buffers();
}

#define ALLOW_GET (ROUTER_GET | ROUTER_HEAD | ROUTER_OPTIONS)

/* Asserts that `path` does not match anything for any method, OPTIONS included. */
static void assert_not_found(const char *path)
{
    static const unsigned all[] = {ROUTER_GET,    ROUTER_HEAD,   ROUTER_POST,    ROUTER_PUT,
                                   ROUTER_PATCH,  ROUTER_DELETE, ROUTER_OPTIONS, 0};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
        router_match_t m;
        int r = match(all[i], path, &m);
        ck_assert_msg(r == ROUTER_ERR_NOT_FOUND, "method %#x \"%s\": expected not found, got %d", all[i], path, r);
        ck_assert_int_eq(m.route, -1);
        ck_assert_uint_eq(m.allow, 0);
        ck_assert_int_eq(m.nparams, 0);
    }
}

/* --- literal routes ------------------------------------------------------- */

START_TEST(test_literal_exact)
{
    router_match_t m;
    ck_assert_int_eq(match(ROUTER_GET, "/healthz", &m), R_HEALTHZ);
    ck_assert_int_eq(m.route, R_HEALTHZ);
    ck_assert_int_eq(m.nparams, 0);

    ck_assert_int_eq(match(ROUTER_GET, "/v1/customers", &m), R_LIST);
    ck_assert_int_eq(m.nparams, 0);
    ck_assert_uint_eq(m.allow, ROUTER_GET | ROUTER_POST | ROUTER_HEAD | ROUTER_OPTIONS);
    ck_assert_int_eq(match(ROUTER_POST, "/v1/customers", &m), R_CREATE);
    ck_assert_int_eq(m.route, R_CREATE);
    ck_assert_int_eq(match(ROUTER_POST, "/v1/customers/bulk", &m), R_BULK);
    ck_assert_int_eq(m.nparams, 0);
}
END_TEST

START_TEST(test_literal_near_misses)
{
    assert_not_found("/nope");
    assert_not_found("/v1");
    assert_not_found("/v1/customer");
    assert_not_found("/v1/customersX");
    assert_not_found("/healthzz");
    assert_not_found("/HEALTHZ");
    assert_not_found("/v1/customers/bulk/x");
    assert_not_found("/v1/customers/42/analytics");
    assert_not_found("/v1/customers/42/analytics/history/x");
    assert_not_found("/v1/customers/external");
    assert_not_found("/v2/customers");
}
END_TEST

START_TEST(test_literal_uses_path_len)
{
    /* The caller passes the length without the query string; bytes after it are not part of the path. */
    router_match_t m;
    ck_assert_int_eq(match_in(templates, tmethods, R_COUNT, ROUTER_GET, "/healthz?verbose=1", 8, &m), R_HEALTHZ);
    ck_assert_int_eq(match_in(templates, tmethods, R_COUNT, ROUTER_GET, "/v1/customers/42?x", 16, &m), R_GET);
    ck_assert_int_eq(m.params[0].i64, 42);
    ck_assert_str_eq(m.params[0].str, "42");
}
END_TEST

START_TEST(test_literal_root_template)
{
    static const char *const tpls[] = {"/", "/healthz"};
    static const unsigned meths[] = {ROUTER_GET, ROUTER_GET};
    router_match_t m;
    ck_assert_int_eq(match_in(tpls, meths, 2, ROUTER_GET, "/", 1, &m), 0);
    ck_assert_int_eq(match_in(tpls, meths, 2, ROUTER_GET, "/healthz", 8, &m), 1);
    ck_assert_int_eq(match_in(tpls, meths, 2, ROUTER_GET, "//", 2, &m), ROUTER_ERR_NOT_FOUND);
    /* Without a "/" template, "/" matches nothing. */
    assert_not_found("/");
}
END_TEST

/* --- int parameters ------------------------------------------------------- */

START_TEST(test_int_valid)
{
    router_match_t m;
    ck_assert_int_eq(match(ROUTER_GET, "/v1/customers/42", &m), R_GET);
    ck_assert_int_eq(m.route, R_GET);
    ck_assert_int_eq(m.nparams, 1);
    ck_assert_uint_eq(m.params[0].name_len, 2);
    ck_assert_int_eq(memcmp(m.params[0].name, "id", 2), 0);
    ck_assert_int_eq(m.params[0].i64, 42);
    ck_assert_str_eq(m.params[0].str, "42");

    ck_assert_int_eq(match(ROUTER_GET, "/v1/customers/1", &m), R_GET);
    ck_assert_int_eq(m.params[0].i64, 1);
    ck_assert_int_eq(match(ROUTER_PATCH, "/v1/customers/10", &m), R_PATCH);
    ck_assert_int_eq(m.params[0].i64, 10);
    ck_assert_int_eq(match(ROUTER_DELETE, "/v1/customers/1000", &m), R_DELETE);
    ck_assert_int_eq(m.params[0].i64, 1000);

    /* 18 digits is the documented maximum. */
    ck_assert_int_eq(match(ROUTER_GET, "/v1/customers/999999999999999999", &m), R_GET);
    ck_assert_int_eq(m.params[0].i64, 999999999999999999LL);
    ck_assert_int_eq(match(ROUTER_GET, "/v1/customers/100000000000000000", &m), R_GET);
    ck_assert_int_eq(m.params[0].i64, 100000000000000000LL);

    ck_assert_int_eq(match(ROUTER_GET, "/v1/customers/7/analytics/history", &m), R_HISTORY);
    ck_assert_int_eq(m.nparams, 1);
    ck_assert_int_eq(m.params[0].i64, 7);
    ck_assert_uint_eq(m.allow, ALLOW_GET);
}
END_TEST

START_TEST(test_int_invalid)
{
    static const char *const bad[] = {
        "0",           /* not positive */
        "00",          /* leading zero */
        "007",         /* leading zero */
        "-1",          /* sign */
        "+1",          /* sign */
        "-0",          /* sign */
        "1.5",         /* not an integer */
        "1e3",         /* not an integer */
        "0x10",        /* not decimal */
        "12a",         /* trailing junk */
        "a12",         /* leading junk */
        "%201",        /* decoded leading space */
        "1%20",        /* decoded trailing space */
        "1000000000000000000",  /* 19 digits */
        "9223372036854775807",  /* INT64_MAX, still 19 digits */
        "9223372036854775808",  /* INT64_MAX + 1 */
        "18446744073709551616", /* 2^64 */
        "99999999999999999999999999999999999999",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char path[128];
        snprintf(path, sizeof(path), "/v1/customers/%s", bad[i]);
        assert_not_found(path);
        snprintf(path, sizeof(path), "/v1/customers/%s/analytics/history", bad[i]);
        assert_not_found(path);
    }
}
END_TEST

/* --- str parameters ------------------------------------------------------- */

static void assert_external(const char *raw, const char *decoded)
{
    char path[1024];
    router_match_t m;
    snprintf(path, sizeof(path), "/v1/customers/external/%s", raw);
    int r = match(ROUTER_PUT, path, &m);
    ck_assert_msg(r == R_EXTERNAL_PUT, "\"%s\": expected route %d, got %d", path, R_EXTERNAL_PUT, r);
    ck_assert_int_eq(m.nparams, 1);
    ck_assert_uint_eq(m.params[0].name_len, strlen("external_id"));
    ck_assert_int_eq(memcmp(m.params[0].name, "external_id", strlen("external_id")), 0);
    ck_assert_str_eq(m.params[0].str, decoded);
    ck_assert_int_eq(m.params[0].i64, 0);
}

START_TEST(test_str_valid)
{
    assert_external("abc-123", "abc-123");
    assert_external("42", "42");
    assert_external("a%2Fb", "a/b");
    assert_external("a%2fb", "a/b");
    assert_external("%20x%20", " x ");
    assert_external("caf%C3%A9", "caf\xc3\xa9");
    assert_external("100%25", "100%");
    assert_external("%2F", "/");
    assert_external("%2F%2F", "//");
    assert_external("x%3Fy%23z", "x?y#z");
}
END_TEST

START_TEST(test_str_bad_escapes)
{
    assert_not_found("/v1/customers/external/%00");
    assert_not_found("/v1/customers/external/a%00b");
    assert_not_found("/v1/customers/external/%G1");
    assert_not_found("/v1/customers/external/%1G");
    assert_not_found("/v1/customers/external/%4");
    assert_not_found("/v1/customers/external/a%4");
    assert_not_found("/v1/customers/external/%");
    assert_not_found("/v1/customers/external/a%");
    assert_not_found("/v1/customers/external/%%41");
    assert_not_found("/v1/customers/external/%-1");
    /* A truncated escape before a separator must not swallow the '/'. */
    assert_not_found("/v1/customers/%4/analytics/history");
    assert_not_found("/v1/customers/%/analytics/history");
}
END_TEST

START_TEST(test_str_length_limit)
{
    char raw[300];
    memset(raw, 'x', 255);
    raw[255] = '\0';
    assert_external(raw, raw);

    memset(raw, 'x', 256);
    raw[256] = '\0';
    char path[400];
    snprintf(path, sizeof(path), "/v1/customers/external/%s", raw);
    assert_not_found(path);

    /* The limit is on the decoded value: 255 escaped bytes are 765 raw bytes. */
    char esc[800], dec[256];
    for (int i = 0; i < 255; i++)
        memcpy(esc + 3 * i, "%41", 3);
    esc[765] = '\0';
    memset(dec, 'A', 255);
    dec[255] = '\0';
    assert_external(esc, dec);
}
END_TEST

START_TEST(test_str_wrong_method)
{
    router_match_t m;
    ck_assert_int_eq(match(ROUTER_GET, "/v1/customers/external/abc", &m), ROUTER_ERR_METHOD);
    ck_assert_int_eq(m.route, -1);
    ck_assert_uint_eq(m.allow, ROUTER_PUT | ROUTER_OPTIONS);
    ck_assert_int_eq(match(ROUTER_DELETE, "/v1/customers/external/abc", &m), ROUTER_ERR_METHOD);
    ck_assert_uint_eq(m.allow, ROUTER_PUT | ROUTER_OPTIONS);
}
END_TEST

/* --- methods: 405, HEAD, OPTIONS ------------------------------------------- */

START_TEST(test_method_not_allowed)
{
    router_match_t m;
    ck_assert_int_eq(match(ROUTER_DELETE, "/v1/customers", &m), ROUTER_ERR_METHOD);
    ck_assert_int_eq(m.route, -1);
    ck_assert_uint_eq(m.allow, ROUTER_GET | ROUTER_POST | ROUTER_HEAD | ROUTER_OPTIONS);

    ck_assert_int_eq(match(ROUTER_POST, "/v1/customers/42", &m), ROUTER_ERR_METHOD);
    ck_assert_uint_eq(m.allow, ROUTER_GET | ROUTER_PATCH | ROUTER_DELETE | ROUTER_HEAD | ROUTER_OPTIONS);
    ck_assert_int_eq(match(ROUTER_PUT, "/v1/customers/42", &m), ROUTER_ERR_METHOD);

    /* No GET route: HEAD is neither matched nor advertised. */
    ck_assert_int_eq(match(ROUTER_GET, "/v1/customers/bulk", &m), ROUTER_ERR_METHOD);
    ck_assert_uint_eq(m.allow, ROUTER_POST | ROUTER_OPTIONS);
    ck_assert_int_eq(match(ROUTER_HEAD, "/v1/customers/bulk", &m), ROUTER_ERR_METHOD);
    ck_assert_uint_eq(m.allow, ROUTER_POST | ROUTER_OPTIONS);

    ck_assert_int_eq(match(ROUTER_POST, "/healthz", &m), ROUTER_ERR_METHOD);
    ck_assert_uint_eq(m.allow, ALLOW_GET);
    ck_assert_int_eq(match(ROUTER_DELETE, "/v1/customers/3/analytics/history", &m), ROUTER_ERR_METHOD);
    ck_assert_uint_eq(m.allow, ALLOW_GET);

    /* An unknown method (router_method_bit gave 0) is a 405, not a match. */
    ck_assert_int_eq(match(0, "/healthz", &m), ROUTER_ERR_METHOD);
    ck_assert_uint_eq(m.allow, ALLOW_GET);
}
END_TEST

START_TEST(test_head_matches_get)
{
    router_match_t m;
    ck_assert_int_eq(match(ROUTER_HEAD, "/healthz", &m), R_HEALTHZ);
    ck_assert_int_eq(match(ROUTER_HEAD, "/v1/customers", &m), R_LIST);
    ck_assert_int_eq(match(ROUTER_HEAD, "/v1/customers/42", &m), R_GET);
    ck_assert_int_eq(m.nparams, 1);
    ck_assert_int_eq(m.params[0].i64, 42);
    ck_assert_int_eq(match(ROUTER_HEAD, "/v1/customers/5/analytics/history", &m), R_HISTORY);
    ck_assert_int_eq(m.params[0].i64, 5);
}
END_TEST

START_TEST(test_options_gives_allow)
{
    router_match_t m;
    ck_assert_int_eq(match(ROUTER_OPTIONS, "/v1/customers/42", &m), ROUTER_ERR_METHOD);
    ck_assert_int_eq(m.route, -1);
    ck_assert_uint_eq(m.allow, ROUTER_GET | ROUTER_PATCH | ROUTER_DELETE | ROUTER_HEAD | ROUTER_OPTIONS);
    ck_assert_int_eq(match(ROUTER_OPTIONS, "/v1/customers", &m), ROUTER_ERR_METHOD);
    ck_assert_uint_eq(m.allow, ROUTER_GET | ROUTER_POST | ROUTER_HEAD | ROUTER_OPTIONS);
    ck_assert_int_eq(match(ROUTER_OPTIONS, "/v1/customers/bulk", &m), ROUTER_ERR_METHOD);
    ck_assert_uint_eq(m.allow, ROUTER_POST | ROUTER_OPTIONS);
    ck_assert_int_eq(match(ROUTER_OPTIONS, "/nope", &m), ROUTER_ERR_NOT_FOUND);
    ck_assert_uint_eq(m.allow, 0);
}
END_TEST

START_TEST(test_first_owner_wins)
{
    /* A literal route listed before an overlapping parameter route owns the path. */
    static const char *const tpls[] = {"/v1/customers/bulk", "/v1/customers/{key:str}", "/v1/customers/{key:str}"};
    static const unsigned meths[] = {ROUTER_POST, ROUTER_GET, ROUTER_DELETE};
    router_match_t m;
    ck_assert_int_eq(match_in(tpls, meths, 3, ROUTER_POST, "/v1/customers/bulk", 18, &m), 0);
    ck_assert_int_eq(match_in(tpls, meths, 3, ROUTER_GET, "/v1/customers/bulk", 18, &m), ROUTER_ERR_METHOD);
    ck_assert_uint_eq(m.allow, ROUTER_POST | ROUTER_OPTIONS);
    ck_assert_int_eq(match_in(tpls, meths, 3, ROUTER_DELETE, "/v1/customers/other", 19, &m), 2);
    ck_assert_str_eq(m.params[0].str, "other");
    ck_assert_uint_eq(m.allow, ALLOW_GET | ROUTER_DELETE);
}
END_TEST

/* --- path shape ------------------------------------------------------------ */

START_TEST(test_shape_empty_and_relative)
{
    router_match_t m;
    ck_assert_int_eq(match(ROUTER_GET, "", &m), ROUTER_ERR_NOT_FOUND);
    assert_not_found("");
    assert_not_found("healthz");
    assert_not_found("v1/customers");
    assert_not_found("*");
    assert_not_found("http://example.com/healthz");
}
END_TEST

START_TEST(test_shape_slashes)
{
    assert_not_found("/healthz/");
    assert_not_found("//healthz");
    assert_not_found("/v1//customers");
    assert_not_found("/v1/customers/");
    assert_not_found("/v1/customers//");
    assert_not_found("/v1/customers/42/");
    assert_not_found("/v1/customers//42");
    assert_not_found("/v1/customers/external/"); /* an empty str parameter */
    assert_not_found("/v1/customers/external//");
    assert_not_found("/v1/customers/external/abc/");
    assert_not_found("/v1/customers/42/analytics//history");
    assert_not_found("/v1/customers/42/analytics/history/");
    assert_not_found("//");
    /* An encoded slash is data, not a separator. */
    assert_not_found("/v1%2Fcustomers");
    assert_not_found("/healthz%2F");
}
END_TEST

START_TEST(test_shape_too_many_segments)
{
    /* A 16-segment template still matches; anything longer matches nothing and must not overrun. */
    static const char *const tpls[] = {"/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a"};
    static const unsigned meths[] = {ROUTER_GET};
    router_match_t m;
    char path[1024] = "";
    for (int i = 0; i < 16; i++)
        strcat(path, "/a");
    ck_assert_int_eq(match_in(tpls, meths, 1, ROUTER_GET, path, strlen(path), &m), 0);
    strcat(path, "/a");
    ck_assert_int_eq(match_in(tpls, meths, 1, ROUTER_GET, path, strlen(path), &m), ROUTER_ERR_NOT_FOUND);

    for (int i = 0; i < 100; i++)
        strcat(path, "/a");
    assert_not_found(path);
    path[0] = '\0';
    for (int i = 0; i < 40; i++)
        strcat(path, "/v1/customers/1");
    assert_not_found(path);
}
END_TEST

/* --- router_method_bit ------------------------------------------------------ */

START_TEST(test_method_bit_known)
{
    ck_assert_uint_eq(router_method_bit("GET", 3), ROUTER_GET);
    ck_assert_uint_eq(router_method_bit("HEAD", 4), ROUTER_HEAD);
    ck_assert_uint_eq(router_method_bit("POST", 4), ROUTER_POST);
    ck_assert_uint_eq(router_method_bit("PUT", 3), ROUTER_PUT);
    ck_assert_uint_eq(router_method_bit("PATCH", 5), ROUTER_PATCH);
    ck_assert_uint_eq(router_method_bit("DELETE", 6), ROUTER_DELETE);
    ck_assert_uint_eq(router_method_bit("OPTIONS", 7), ROUTER_OPTIONS);
    /* Only len bytes count: h2o's method is not NUL-terminated. */
    ck_assert_uint_eq(router_method_bit("GETTER", 3), ROUTER_GET);
    ck_assert_uint_eq(router_method_bit("PUTX", 3), ROUTER_PUT);
}
END_TEST

START_TEST(test_method_bit_garbage)
{
    static const char *const bad[] = {"get", "Get", "GETX", "GE", "G", "", "CONNECT", "TRACE", "PROPFIND",
                                      " GET", "GET ", "DELET", "OPTION", "POSTS", "HEADER"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_msg(router_method_bit(bad[i], strlen(bad[i])) == 0, "\"%s\" should map to 0", bad[i]);
    ck_assert_uint_eq(router_method_bit("GET", 0), 0);
    ck_assert_uint_eq(router_method_bit("GET", 2), 0);
    ck_assert_uint_eq(router_method_bit("G\0T", 3), 0);
}
END_TEST

/* --- router_format_allow ---------------------------------------------------- */

START_TEST(test_format_allow_text)
{
    char buf[96];
    ck_assert_uint_eq(router_format_allow(ALLOW_GET, buf, sizeof(buf)), strlen("GET, HEAD, OPTIONS"));
    ck_assert_str_eq(buf, "GET, HEAD, OPTIONS");
    router_format_allow(ROUTER_POST | ROUTER_OPTIONS, buf, sizeof(buf));
    ck_assert_str_eq(buf, "POST, OPTIONS");
    router_format_allow(ROUTER_GET | ROUTER_POST | ROUTER_HEAD | ROUTER_OPTIONS, buf, sizeof(buf));
    ck_assert_str_eq(buf, "GET, HEAD, POST, OPTIONS");
    size_t n = router_format_allow(0x7f, buf, sizeof(buf));
    ck_assert_str_eq(buf, "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS");
    ck_assert_uint_eq(n, strlen(buf));
    router_format_allow(ROUTER_DELETE, buf, sizeof(buf));
    ck_assert_str_eq(buf, "DELETE");
    strcpy(buf, "stale");
    ck_assert_uint_eq(router_format_allow(0, buf, sizeof(buf)), 0);
    ck_assert_str_eq(buf, "");
    /* Bits that are not methods are ignored. */
    router_format_allow(ROUTER_PUT | 0x100 | 0x80000000u, buf, sizeof(buf));
    ck_assert_str_eq(buf, "PUT");
}
END_TEST

START_TEST(test_format_allow_truncation)
{
    /* For every buffer size, the output fits, is terminated and is a whole-word prefix of the full text. */
    static const char full[] = "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS";
    for (size_t len = 1; len <= sizeof(full) + 2; len++) {
        char *buf = malloc(len); /* exact size: ASan reports any write past it */
        ck_assert_ptr_nonnull(buf);
        memset(buf, 'X', len);
        size_t n = router_format_allow(0x7f, buf, len);
        ck_assert_msg(n < len, "len %zu: returned %zu", len, n);
        ck_assert_uint_eq(strlen(buf), n);
        ck_assert_int_eq(strncmp(buf, full, n), 0);
        ck_assert_msg(n == 0 || n == strlen(full) || full[n] == ',', "len %zu: cut inside a name: \"%s\"", len, buf);
        if (len >= sizeof(full))
            ck_assert_str_eq(buf, full);
        free(buf);
    }
    char small[4];
    ck_assert_uint_eq(router_format_allow(ALLOW_GET, small, sizeof(small)), 3);
    ck_assert_str_eq(small, "GET");
    ck_assert_uint_eq(router_format_allow(ALLOW_GET, small, 3), 0);
    ck_assert_str_eq(small, "");
}
END_TEST

START_TEST(test_format_allow_zero_len)
{
    /* Like snprintf, a zero-length buffer must not be written at all. */
    char buf[2] = {'X', 'X'};
    ck_assert_uint_eq(router_format_allow(ALLOW_GET, buf, 0), 0);
    ck_assert_msg(buf[0] == 'X', "router_format_allow wrote to a zero-length buffer");
}
END_TEST

/* --- router_param ----------------------------------------------------------- */

START_TEST(test_param_lookup)
{
    router_match_t m;
    ck_assert_int_eq(match(ROUTER_GET, "/v1/customers/42/analytics/history", &m), R_HISTORY);
    const router_param_t *p = router_param(&m, "id");
    ck_assert_ptr_nonnull(p);
    ck_assert_int_eq(p->i64, 42);
    ck_assert_str_eq(p->str, "42");
    ck_assert_ptr_null(router_param(&m, "i"));
    ck_assert_ptr_null(router_param(&m, "idx"));
    ck_assert_ptr_null(router_param(&m, "ID"));
    ck_assert_ptr_null(router_param(&m, ""));
    ck_assert_ptr_null(router_param(&m, "external_id"));

    ck_assert_int_eq(match(ROUTER_PUT, "/v1/customers/external/a%2Fb", &m), R_EXTERNAL_PUT);
    p = router_param(&m, "external_id");
    ck_assert_ptr_nonnull(p);
    ck_assert_str_eq(p->str, "a/b");
    ck_assert_ptr_null(router_param(&m, "external"));
    ck_assert_ptr_null(router_param(&m, "id"));

    ck_assert_int_eq(match(ROUTER_GET, "/healthz", &m), R_HEALTHZ);
    ck_assert_ptr_null(router_param(&m, "id"));
    ck_assert_int_eq(match(ROUTER_GET, "/nope", &m), ROUTER_ERR_NOT_FOUND);
    ck_assert_ptr_null(router_param(&m, "id"));
    /* A 405 carries no parameters either. */
    ck_assert_int_eq(match(ROUTER_POST, "/v1/customers/42", &m), ROUTER_ERR_METHOD);
    ck_assert_ptr_null(router_param(&m, "id"));
}
END_TEST

START_TEST(test_param_several)
{
    static const char *const tpls[] = {"/orgs/{org:str}/customers/{id:int}/notes/{note:int}"};
    static const unsigned meths[] = {ROUTER_GET};
    static const char path[] = "/orgs/acme%20inc/customers/12/notes/345";
    router_match_t m;
    ck_assert_int_eq(match_in(tpls, meths, 1, ROUTER_GET, path, strlen(path), &m), 0);
    ck_assert_int_eq(m.nparams, 3);
    ck_assert_str_eq(router_param(&m, "org")->str, "acme inc");
    ck_assert_int_eq(router_param(&m, "id")->i64, 12);
    ck_assert_int_eq(router_param(&m, "note")->i64, 345);
    ck_assert_str_eq(router_param(&m, "note")->str, "345");
}
END_TEST

static Suite *router_suite(void)
{
    Suite *s = suite_create("api/router");
    TCase *tc;

    tc = tcase_create("literal");
    tcase_add_checked_fixture(tc, NULL, teardown);
    tcase_set_timeout(tc, 10);
    tcase_add_test(tc, test_literal_exact);
    tcase_add_test(tc, test_literal_near_misses);
    tcase_add_test(tc, test_literal_uses_path_len);
    tcase_add_test(tc, test_literal_root_template);
    suite_add_tcase(s, tc);

    tc = tcase_create("int_params");
    tcase_add_checked_fixture(tc, NULL, teardown);
    tcase_set_timeout(tc, 10);
    tcase_add_test(tc, test_int_valid);
    tcase_add_test(tc, test_int_invalid);
    suite_add_tcase(s, tc);

    tc = tcase_create("str_params");
    tcase_add_checked_fixture(tc, NULL, teardown);
    tcase_set_timeout(tc, 10);
    tcase_add_test(tc, test_str_valid);
    tcase_add_test(tc, test_str_bad_escapes);
    tcase_add_test(tc, test_str_length_limit);
    tcase_add_test(tc, test_str_wrong_method);
    suite_add_tcase(s, tc);

    tc = tcase_create("methods");
    tcase_add_checked_fixture(tc, NULL, teardown);
    tcase_set_timeout(tc, 10);
    tcase_add_test(tc, test_method_not_allowed);
    tcase_add_test(tc, test_head_matches_get);
    tcase_add_test(tc, test_options_gives_allow);
    tcase_add_test(tc, test_first_owner_wins);
    suite_add_tcase(s, tc);

    tc = tcase_create("path_shape");
    tcase_add_checked_fixture(tc, NULL, teardown);
    tcase_set_timeout(tc, 10);
    tcase_add_test(tc, test_shape_empty_and_relative);
    tcase_add_test(tc, test_shape_slashes);
    tcase_add_test(tc, test_shape_too_many_segments);
    suite_add_tcase(s, tc);

    tc = tcase_create("method_bit");
    tcase_set_timeout(tc, 10);
    tcase_add_test(tc, test_method_bit_known);
    tcase_add_test(tc, test_method_bit_garbage);
    suite_add_tcase(s, tc);

    tc = tcase_create("format_allow");
    tcase_set_timeout(tc, 10);
    tcase_add_test(tc, test_format_allow_text);
    tcase_add_test(tc, test_format_allow_truncation);
    tcase_add_test(tc, test_format_allow_zero_len);
    suite_add_tcase(s, tc);

    tc = tcase_create("param");
    tcase_add_checked_fixture(tc, NULL, teardown);
    tcase_set_timeout(tc, 10);
    tcase_add_test(tc, test_param_lookup);
    tcase_add_test(tc, test_param_several);
    suite_add_tcase(s, tc);

    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(router_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
