/*
 * tests/integration/docs_test.c - the API reference page: GET /docs and the
 * files it loads, over HTTP, then in a real browser.
 *
 * One API process (CLIENTELE_CORS_ORIGINS unset: the page needs no CORS)
 * with a migrated database and one seeded user serves every test. The
 * HTTP tests check what a browser and a cache rely on: types, caching,
 * revalidation, the page's Content-Security-Policy, no authentication.
 * The browser test runs tests/browser/docs_test.mjs with node's test
 * runner: Debian's Chromium driven by playwright-core opens the page,
 * finds the API's title and the operations of customers, orders and
 * contacts, searches, and saves screenshots into the test logs; its output
 * goes to $STACK_DIR/logs/browser_docs.out.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <check.h>

#include "tests/support/harness.h"

#define REDIS_DB 14
#define EMAIL "reader@example.com"
#define PASSWORD "docs-test-password-1"

static th_api_t api;
static const char *db_url;

static const char *const api_env[] = {
    "CLIENTELE_THREADS=2",
    "CLIENTELE_JWT_SECRET=docs-test-secret-0123456789abcdefghij",
    NULL,
};

static const char *logs_dir(void)
{
    static char dir[256];
    const char *s = getenv("STACK_DIR");
    snprintf(dir, sizeof(dir), "%s/logs", s != NULL && *s != '\0' ? s : ".test");
    return dir;
}

static void start_api(void)
{
    th_api_start(&api, db_url, th_redis_url(REDIS_DB), api_env);
}

static void stop_api(void)
{
    if (api.pid > 0) {
        int st = th_api_stop(&api, SIGTERM, 15);
        if (st != 0) {
            fprintf(stderr, "clientele-api exited with %d (sanitizer report?); see %s\n", st, api.log_path);
            exit(1);
        }
    }
}

static void get(const char *path, const char *const *headers, th_resp_t *r)
{
    ck_assert_int_eq(th_http(api.port, "GET", path, headers, NULL, 0, r), 0);
}

static void assert_header(const th_resp_t *r, const char *name, const char *want)
{
    char buf[512];
    ck_assert_msg(th_header(r, name, buf, sizeof(buf)) != NULL, "no %s header", name);
    ck_assert_str_eq(buf, want);
}

/* The script's path, as the page names it ("/docs/redoc-<hash>.js"), into out. */
static void script_path(char *out, size_t len)
{
    th_resp_t r;
    get("/docs", NULL, &r);
    const char *s = strstr(r.body, "<script src=\"");
    ck_assert_ptr_nonnull(s);
    s += strlen("<script src=\"");
    const char *e = strchr(s, '"');
    ck_assert_ptr_nonnull(e);
    ck_assert_uint_lt((size_t)(e - s), len);
    memcpy(out, s, (size_t)(e - s));
    out[e - s] = '\0';
    th_resp_free(&r);
}

/* --- over HTTP ------------------------------------------------------------ */

START_TEST(page_is_html_for_anyone)
{
    th_resp_t r;
    get("/docs", NULL, &r); /* no Authorization */
    ck_assert_int_eq(r.status, 200);
    assert_header(&r, "content-type", "text/html; charset=utf-8");
    assert_header(&r, "cache-control", "no-cache");
    assert_header(&r, "x-content-type-options", "nosniff");
    assert_header(&r, "referrer-policy", "no-referrer");
    char csp[512];
    ck_assert_ptr_nonnull(th_header(&r, "content-security-policy", csp, sizeof(csp)));
    /* Everything from this origin, nothing from anywhere else, and the page never framed. */
    static const char *const directives[] = {"default-src 'none'",      "script-src 'self'", "connect-src 'self'",
                                             "worker-src 'self' blob:", "base-uri 'none'",   "form-action 'none'",
                                             "frame-ancestors 'none'"};
    for (size_t i = 0; i < sizeof(directives) / sizeof(directives[0]); i++)
        ck_assert_msg(strstr(csp, directives[i]) != NULL, "the policy lacks %s: %s", directives[i], csp);
    ck_assert_msg(strstr(csp, "unsafe-eval") == NULL && strstr(csp, "http") == NULL, "policy: %s", csp);
    ck_assert_ptr_nonnull(strstr(r.body, "<title>Clientele API reference</title>"));
    ck_assert_ptr_nonnull(strstr(r.body, "<redoc spec-url=\"/openapi.json\"></redoc>"));
    /* Nothing on the page comes from another origin. */
    ck_assert_ptr_null(strstr(r.body, "//"));
    th_resp_free(&r);
}
END_TEST

START_TEST(page_revalidates_with_its_etag)
{
    th_resp_t r;
    get("/docs", NULL, &r);
    char etag[128], inm[160];
    ck_assert_ptr_nonnull(th_header(&r, "etag", etag, sizeof(etag)));
    th_resp_free(&r);
    snprintf(inm, sizeof(inm), "If-None-Match: W/\"other\", %s", etag);
    const char *const h[] = {inm, NULL};
    get("/docs", h, &r);
    ck_assert_int_eq(r.status, 304);
    ck_assert_uint_eq(r.body_len, 0);
    assert_header(&r, "etag", etag);
    th_resp_free(&r);
    const char *const other[] = {"If-None-Match: \"0123\"", NULL};
    get("/docs", other, &r);
    ck_assert_int_eq(r.status, 200);
    th_resp_free(&r);
}
END_TEST

START_TEST(script_is_named_by_its_content_and_kept_a_year)
{
    char path[128];
    script_path(path, sizeof(path));
    ck_assert_msg(strncmp(path, "/docs/redoc-", 12) == 0 && strlen(path) == 12 + 16 + 3, "script at %s", path);
    th_resp_t r;
    get(path, NULL, &r);
    ck_assert_int_eq(r.status, 200);
    assert_header(&r, "content-type", "text/javascript; charset=utf-8");
    assert_header(&r, "cache-control", "public, max-age=31536000, immutable");
    assert_header(&r, "x-content-type-options", "nosniff");
    /* Redoc's standalone bundle, whole. */
    ck_assert_uint_gt(r.body_len, 500000);
    ck_assert_ptr_nonnull(strstr(r.body, "redoc.standalone.js.LICENSE.txt"));
    char etag[128], len[32], inm[160];
    ck_assert_ptr_nonnull(th_header(&r, "etag", etag, sizeof(etag)));
    /* The name is the first 64 bits of the tag (both from the bundle's SHA-256). */
    ck_assert_msg(strncmp(etag + 1, path + 12, 16) == 0, "name %s, tag %s", path, etag);
    size_t body_len = r.body_len;
    th_resp_free(&r);

    snprintf(inm, sizeof(inm), "If-None-Match: %s", etag);
    const char *const h[] = {inm, NULL};
    get(path, h, &r);
    ck_assert_int_eq(r.status, 304);
    th_resp_free(&r);

    ck_assert_int_eq(th_http(api.port, "HEAD", path, NULL, NULL, 0, &r), 0);
    ck_assert_int_eq(r.status, 200);
    ck_assert_uint_eq(r.body_len, 0);
    ck_assert_ptr_nonnull(th_header(&r, "content-length", len, sizeof(len)));
    ck_assert_uint_eq(strtoull(len, NULL, 10), body_len);
    th_resp_free(&r);
}
END_TEST

START_TEST(licence_notice_is_served_beside_the_script)
{
    th_resp_t r;
    get("/docs/redoc.standalone.js.LICENSE.txt", NULL, &r);
    ck_assert_int_eq(r.status, 200);
    assert_header(&r, "content-type", "text/plain; charset=utf-8");
    ck_assert_ptr_nonnull(strstr(r.body, "ReDoc"));
    ck_assert_ptr_nonnull(strstr(r.body, "MIT"));
    th_resp_free(&r);
}
END_TEST

START_TEST(other_files_are_404_problems)
{
    static const char *const paths[] = {"/docs/redoc.standalone.js", "/docs/redoc-0000000000000000.js",
                                        "/docs/..%2Fopenapi.yaml", "/docs/", "/docs/a/b"};
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        th_resp_t r;
        get(paths[i], NULL, &r);
        ck_assert_msg(r.status == 404, "%s answered %d", paths[i], r.status);
        assert_header(&r, "content-type", "application/problem+json");
        ck_assert_ptr_nonnull(r.json);
        ck_assert_str_eq(json_string_value(json_object_get(r.json, "type")), "/problems/not-found");
        th_resp_free(&r);
    }
}
END_TEST

/* --- in a browser ----------------------------------------------------------- */

START_TEST(page_works_in_a_browser)
{
    char url[64], out[512], cmd[1024];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", api.port);
    snprintf(out, sizeof(out), "%s/browser_docs.out", logs_dir());
    setenv("CLIENTELE_DOCS_URL", url, 1);
    setenv("CLIENTELE_DOCS_EMAIL", EMAIL, 1);
    setenv("CLIENTELE_DOCS_PASSWORD", PASSWORD, 1);
    setenv("CLIENTELE_DOCS_SCREENSHOTS", logs_dir(), 1);
    snprintf(cmd, sizeof(cmd), "node --test --test-reporter=spec tests/browser/docs_test.mjs >%s 2>&1", out);
    int st = system(cmd);
    if (st != 0) {
        /* The first failing test's line, for the summary; the whole run is in the log. */
        char line[512] = "", first[512] = "(no failing test named)";
        FILE *f = fopen(out, "r");
        while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
            if (strstr(line, "\xe2\x9c\x96") != NULL || strstr(line, "Error") != NULL) {
                snprintf(first, sizeof(first), "%s", line);
                first[strcspn(first, "\n")] = '\0';
                break;
            }
        }
        if (f != NULL)
            fclose(f);
        ck_abort_msg("the browser test failed (status %d): %s; see %s", WIFEXITED(st) ? WEXITSTATUS(st) : -1, first,
                     out);
    }
}
END_TEST

static Suite *docs_suite(void)
{
    Suite *s = suite_create("docs");
    TCase *tc = tcase_create("http");
    tcase_add_unchecked_fixture(tc, start_api, stop_api);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, page_is_html_for_anyone);
    tcase_add_test(tc, page_revalidates_with_its_etag);
    tcase_add_test(tc, script_is_named_by_its_content_and_kept_a_year);
    tcase_add_test(tc, licence_notice_is_served_beside_the_script);
    tcase_add_test(tc, other_files_are_404_problems);
    suite_add_tcase(s, tc);

    tc = tcase_create("browser");
    tcase_add_unchecked_fixture(tc, start_api, stop_api);
    tcase_set_timeout(tc, 180);
    tcase_add_test(tc, page_works_in_a_browser);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    /* The page is same-origin: it must work without any CORS configuration. */
    unsetenv("CLIENTELE_CORS_ORIGINS");
    db_url = th_db_create("docs");
    th_user_add(db_url, EMAIL, "Reader", "admin", NULL, PASSWORD);
    SRunner *sr = srunner_create(docs_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
