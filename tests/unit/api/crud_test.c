/*
 * tests/unit/api/crud_test.c - unit tests for the pure parts of api/crud.c:
 * If-Match (strong comparison, versions named by our ETags, composite tags
 * of documents that embed results) and If-None-Match (weak comparison).
 * Everything that answers a request is covered by the integration suites.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "../../../api/crud.c"

static int64_t if_match(const char *v)
{
    int64_t version = 99;
    return crud_parse_if_match(v, strlen(v), &version) == 0 ? version : -1;
}

START_TEST(if_match_versions)
{
    ck_assert_int_eq(if_match("\"3\""), 3);
    ck_assert_int_eq(if_match("  \"3\"  "), 3);
    ck_assert_int_eq(if_match("*"), 0);
    ck_assert_int_eq(if_match(" * "), 0);
    ck_assert_int_eq(if_match("\"12-r40-c41\""), 12); /* a scored customer's tag: its version */
    ck_assert_int_eq(if_match("\"12-r40\""), 12);
    ck_assert_int_eq(if_match("\"5\", \"5-r1\""), 5);
    ck_assert_int_eq(if_match("W/\"1\", \"5\""), 5); /* weak tags are skipped */
}
END_TEST

START_TEST(if_match_never_matches)
{
    static const char *const bad[] = {
        "W/\"3\"",     "W/\"3-r1\"",   "\"0\"",    "\"\"",      "3",
        "\"3",         "\"abc\"",      "\"3x\"",   "\"3-r 1\"", "\"-3\"",
        "\"3\" \"4\"", "\"3\", \"4\"", "*, \"3\"", "",          "\"99999999999999\"",
        ",",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_msg(if_match(bad[i]) == -1, "If-Match: %s matched", bad[i]);
}
END_TEST

static int nm(const char *v, const char *tag)
{
    return crud_none_match_hits(v, strlen(v), tag);
}

START_TEST(if_none_match_is_weak)
{
    ck_assert(nm("\"3\"", "3"));
    ck_assert(nm("W/\"3\"", "3"));
    ck_assert(nm("\"1\", W/\"3\"", "3"));
    ck_assert(nm("*", "3"));
    ck_assert(!nm("\"33\"", "3"));
    ck_assert(!nm("\"3\"", "33"));
    ck_assert(!nm("\"3\"", "3-r1")); /* a run changed the document */
    ck_assert(nm("\"3-r1\"", "3-r1"));
    ck_assert(!nm("garbage", "3"));
}
END_TEST

static Suite *crud_suite(void)
{
    Suite *s = suite_create("crud");
    TCase *tc = tcase_create("preconditions");
    tcase_add_test(tc, if_match_versions);
    tcase_add_test(tc, if_match_never_matches);
    tcase_add_test(tc, if_none_match_is_weak);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(crud_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
