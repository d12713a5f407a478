/*
 * tests/unit/api/cursor_test.c - unit tests for api/cursor.c.
 *
 * Round trips, the length bound, and that any edit of a cursor (its JSON
 * half, its MAC, or a cursor signed with another key) is refused.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "../../../api/cursor.c"

static cursor_key_t key_of(const char *secret)
{
    cursor_key_t k;
    ck_assert_int_eq(cursor_key_derive(&k, secret, strlen(secret)), 0);
    return k;
}

START_TEST(round_trip)
{
    cursor_key_t k = key_of("a-secret-of-thirty-two-bytes-at-least");
    json_t *st = json_pack("{s:I, s:i, s:s}", "i", (json_int_t)42, "s", 3, "k", "2026-01-01 00:00:00+00");
    char *c = cursor_encode(&k, st);
    ck_assert_ptr_nonnull(c);
    ck_assert_ptr_nonnull(strchr(c, '.'));
    for (const char *p = c; *p; p++)
        ck_assert_msg(strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.", *p) != NULL,
                      "character %c needs escaping in a URL", *p);
    json_t *back = cursor_decode(&k, c, strlen(c));
    ck_assert_ptr_nonnull(back);
    ck_assert(json_equal(back, st));
    json_decref(back);
    free(c);
    json_decref(st);
}
END_TEST

START_TEST(edits_and_other_keys_are_refused)
{
    cursor_key_t k = key_of("a-secret-of-thirty-two-bytes-at-least"), k2 = key_of("another-secret-of-thirty-two-bytes");
    json_t *st = json_pack("{s:I, s:i}", "i", (json_int_t)7, "s", 0);
    char *c = cursor_encode(&k, st);
    size_t len = strlen(c);
    ck_assert_ptr_null(cursor_decode(&k2, c, len));
    for (size_t i = 0; i < len; i++) {
        char *d = strdup(c);
        d[i] = d[i] == 'A' ? 'B' : 'A';
        json_t *v = cursor_decode(&k, d, len);
        ck_assert_msg(v == NULL, "an edit at %zu was accepted", i);
        free(d);
    }
    ck_assert_ptr_null(cursor_decode(&k, c, len - 1));
    ck_assert_ptr_null(cursor_decode(&k, "", 0));
    ck_assert_ptr_null(cursor_decode(&k, ".", 1));
    ck_assert_ptr_null(cursor_decode(&k, NULL, 0));
    /* The unsigned JSON half alone is not a cursor. */
    ck_assert_ptr_null(cursor_decode(&k, c, (size_t)(strchr(c, '.') - c)));
    free(c);
    json_decref(st);
}
END_TEST

START_TEST(length_is_bounded)
{
    cursor_key_t k = key_of("a-secret-of-thirty-two-bytes-at-least");
    char big[2000];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    json_t *st = json_pack("{s:s}", "k", big);
    ck_assert_ptr_null(cursor_encode(&k, st)); /* too long: NULL, the caller answers */
    json_decref(st);
    char *huge = malloc(CURSOR_MAX + 10);
    memset(huge, 'A', CURSOR_MAX + 9);
    huge[CURSOR_MAX + 9] = '\0';
    ck_assert_ptr_null(cursor_decode(&k, huge, strlen(huge)));
    free(huge);
    ck_assert_ptr_null(cursor_encode(&k, json_null() /* not an object */));
}
END_TEST

static Suite *cursor_suite(void)
{
    Suite *s = suite_create("cursor");
    TCase *tc = tcase_create("cursor");
    tcase_add_test(tc, round_trip);
    tcase_add_test(tc, edits_and_other_keys_are_refused);
    tcase_add_test(tc, length_is_bounded);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(cursor_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
