/*
 * tests/unit/worker/pgcopy_test.c - unit tests for worker/pgcopy.c (binary COPY messages).
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "worker/pgcopy.c"

/* The header (no extension) followed by one tuple: an int8 42 and a NULL. */
static size_t first_message(unsigned char *m)
{
    static const unsigned char rest[] = {0,    0,    0,    0,   0, 0, 0, 0,              /* flags, extension length */
                                         0,    2,                                        /* two fields */
                                         0,    0,    0,    8,   0, 0, 0, 0, 0, 0, 0, 42, /* int8 42 */
                                         0xFF, 0xFF, 0xFF, 0xFF};                        /* NULL */
    memcpy(m, WK_PGCOPY_SIGNATURE, 11);
    memcpy(m + 11, rest, sizeof(rest));
    return 11 + sizeof(rest);
}

START_TEST(header_tuple_trailer)
{
    unsigned char m[64];
    const unsigned char *f[2];
    int32_t flen[2];
    wk_pgcopy_reader_t r = {0};
    size_t n = first_message(m);
    ck_assert_int_eq(wk_pgcopy_next(&r, m, n, 2, f, flen), 1);
    ck_assert_int_eq(flen[0], 8);
    ck_assert_uint_eq(wk_pgcopy_rd64(f[0]), 42);
    ck_assert_int_eq(flen[1], -1);
    ck_assert_ptr_null(f[1]);
    /* a second tuple without header */
    static const unsigned char t2[] = {0, 2, 0, 0, 0, 1, 'x', 0, 0, 0, 0};
    ck_assert_int_eq(wk_pgcopy_next(&r, t2, sizeof(t2), 2, f, flen), 1);
    ck_assert_int_eq(flen[0], 1);
    ck_assert_int_eq(f[0][0], 'x');
    ck_assert_int_eq(flen[1], 0);
    static const unsigned char trailer[] = {0xFF, 0xFF};
    ck_assert_int_eq(wk_pgcopy_next(&r, trailer, 2, 2, f, flen), 0);
    ck_assert(r.ended);
    /* nothing may follow the trailer */
    ck_assert_int_eq(wk_pgcopy_next(&r, t2, sizeof(t2), 2, f, flen), ERR_INVALID);
}
END_TEST

/* The trailer may come right after the last tuple in the same message, or alone after the header. */
START_TEST(trailer_positions)
{
    unsigned char m[64];
    const unsigned char *f[2];
    int32_t flen[2];
    wk_pgcopy_reader_t r = {0};
    size_t n = first_message(m);
    m[n] = 0xFF;
    m[n + 1] = 0xFF;
    ck_assert_int_eq(wk_pgcopy_next(&r, m, n + 2, 2, f, flen), 1);
    ck_assert(r.ended);

    wk_pgcopy_reader_t e = {0};
    memcpy(m, WK_PGCOPY_SIGNATURE, 11);
    memset(m + 11, 0, 8);
    m[19] = m[20] = 0xFF;
    ck_assert_int_eq(wk_pgcopy_next(&e, m, 21, 2, f, flen), 0);
}
END_TEST

START_TEST(malformed)
{
    unsigned char m[64];
    const unsigned char *f[2];
    int32_t flen[2];
    size_t n = first_message(m);
    wk_pgcopy_reader_t r;

    r = (wk_pgcopy_reader_t){0};
    m[0] = 'X'; /* signature */
    ck_assert_int_eq(wk_pgcopy_next(&r, m, n, 2, f, flen), ERR_INVALID);
    n = first_message(m);
    r = (wk_pgcopy_reader_t){0};
    m[13] = 0x01; /* the OID flag (bit 16) */
    ck_assert_int_eq(wk_pgcopy_next(&r, m, n, 2, f, flen), ERR_INVALID);
    n = first_message(m);
    r = (wk_pgcopy_reader_t){0};
    ck_assert_int_eq(wk_pgcopy_next(&r, m, n, 3, f, flen), ERR_INVALID); /* field count */
    r = (wk_pgcopy_reader_t){0};
    ck_assert_int_eq(wk_pgcopy_next(&r, m, n - 6, 2, f, flen), ERR_INVALID); /* truncated */
    r = (wk_pgcopy_reader_t){0};
    m[n] = 0;
    ck_assert_int_eq(wk_pgcopy_next(&r, m, n + 1, 2, f, flen), ERR_INVALID); /* a stray byte */
    r = (wk_pgcopy_reader_t){0};
    static const unsigned char neg[] = {0, 1, 0xFF, 0xFF, 0xFF, 0xFE};
    r.header_done = 1;
    ck_assert_int_eq(wk_pgcopy_next(&r, neg, sizeof(neg), 1, f, flen), ERR_INVALID); /* length -2 */
    r = (wk_pgcopy_reader_t){0};
    ck_assert_int_eq(wk_pgcopy_next(&r, m, n, 17, f, flen), ERR_INVALID); /* more fields than supported */
}
END_TEST

int main(void)
{
    Suite *s = suite_create("pgcopy");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, header_tuple_trailer);
    tcase_add_test(tc, trailer_positions);
    tcase_add_test(tc, malformed);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
