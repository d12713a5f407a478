/*
 * tests/unit/common/trace_test.c - unit tests for common/trace.c.
 *
 * Request ids: what a client may name its request with. traceparent: the
 * examples of W3C Trace Context level 1, and each way a value can be
 * almost right (uppercase hex, zero ids, version ff, a version 00 value
 * with more after it, fields one character short), all refused as a whole.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../../common/trace.c"

static int parse(const char *v, trace_parent_t *tp)
{
    return trace_parse_traceparent(v, strlen(v), tp);
}

START_TEST(request_ids)
{
    ck_assert(trace_request_id_ok("abc-123_X.y:z", 13));
    ck_assert(trace_request_id_ok("a", 1));
    char max[65];
    memset(max, 'a', 64);
    ck_assert(trace_request_id_ok(max, 64));
    char over[66];
    memset(over, 'a', 65);
    ck_assert(!trace_request_id_ok(over, 65));
    ck_assert(!trace_request_id_ok("", 0));
    ck_assert(!trace_request_id_ok("has space", 9));
    ck_assert(!trace_request_id_ok("quote\"", 6));
    ck_assert(!trace_request_id_ok("new\nline", 8));
    ck_assert(!trace_request_id_ok("caf\xc3\xa9", 5));
    ck_assert(!trace_request_id_ok(NULL, 3));
}
END_TEST

START_TEST(trace_ids)
{
    ck_assert(trace_id_ok("4bf92f3577b34da6a3ce929d0e0e4736", 32));
    ck_assert(!trace_id_ok("4BF92F3577B34DA6A3CE929D0E0E4736", 32));
    ck_assert(!trace_id_ok("00000000000000000000000000000000", 32));
    ck_assert(!trace_id_ok("4bf92f3577b34da6a3ce929d0e0e473", 31));
    ck_assert(!trace_id_ok("4bf92f3577b34da6a3ce929d0e0e473g", 32));
}
END_TEST

START_TEST(valid_traceparents)
{
    trace_parent_t tp;
    ck_assert_int_eq(parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", &tp), 0);
    ck_assert_str_eq(tp.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
    ck_assert_str_eq(tp.parent_id, "00f067aa0ba902b7");
    ck_assert_uint_eq(tp.flags, 1);
    ck_assert_int_eq(parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00", &tp), 0);
    ck_assert_uint_eq(tp.flags, 0);
    /* Surrounding whitespace (OWS) is not part of the value. */
    ck_assert_int_eq(parse(" \t00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-ff ", &tp), 0);
    ck_assert_uint_eq(tp.flags, 0xff);
    /* A later version: the four known fields are read, what follows a '-' is ignored. */
    ck_assert_int_eq(parse("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-ever", &tp), 0);
    ck_assert_str_eq(tp.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
    ck_assert_int_eq(parse("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", &tp), 0);
}
END_TEST

START_TEST(invalid_traceparents)
{
    static const char *const bad[] = {
        "",
        "00",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0",      /* flags one digit short */
        "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",      /* trace id one digit short */
        "00-4bf92f3577b34da6a3ce929d0e0e47366-00f067aa0ba902b7-01",    /* one digit too many */
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",     /* uppercase */
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00F067AA0BA902B7-01",     /* uppercase */
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",     /* zero trace id */
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",     /* zero parent id */
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",     /* version ff */
        "0g-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",     /* version not hex */
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-xx",  /* version 00 with more */
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x",    /* version 00 with more */
        "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x",    /* later version: more without '-' */
        "00_4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7_01",     /* separators */
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0g",     /* flags not hex */
        "00-4bf92f3577b34da6a3ce929d0e0e4736\n00f067aa0ba902b7-01abc", /* control characters */
    };
    trace_parent_t tp;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ck_assert_msg(parse(bad[i], &tp) == ERR_INVALID, "accepted \"%s\"", bad[i]);
        ck_assert_str_eq(tp.trace_id, "");
    }
    ck_assert_int_eq(trace_parse_traceparent(NULL, 0, &tp), ERR_INVALID);
    /* Lengths are honoured: a valid value cut short is refused, one inside a longer buffer is read. */
    const char *v = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    ck_assert_int_eq(trace_parse_traceparent(v, 54, &tp), ERR_INVALID);
    char buf[80];
    snprintf(buf, sizeof(buf), "%s,garbage", v);
    ck_assert_int_eq(trace_parse_traceparent(buf, 55, &tp), 0);
}
END_TEST

static Suite *trace_suite(void)
{
    Suite *s = suite_create("trace");
    TCase *tc = tcase_create("trace");
    tcase_add_test(tc, request_ids);
    tcase_add_test(tc, trace_ids);
    tcase_add_test(tc, valid_traceparents);
    tcase_add_test(tc, invalid_traceparents);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(trace_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
