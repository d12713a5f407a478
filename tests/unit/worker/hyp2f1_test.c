/*
 * tests/unit/worker/hyp2f1_test.c - unit tests for worker/hyp2f1.c (Gauss hypergeometric function).
 *
 * Closed forms (-log(1-z)/z, (1-z)^-a, asin(z)/z, A&S 15.1.9-10, log(1+z)/z, polynomials)
 * check every evaluation path, from z = 0 to z = 1 - 1e-6 and below zero.
 * Values without a closed form were computed once with mpmath 1.3 at 30
 * digits from the same double-precision arguments and are quoted here to
 * 17-20 digits. Accuracy goals: 1e-12 relative where the series terms do
 * not cancel.
 */
#include <check.h>
#include <math.h>
#include <stdlib.h>

#include "common/err.h"
#include "worker/hyp2f1.h"

#define REL 1e-12

static void check_rel(double a, double b, double c, double z, double want, double rel)
{
    double got = NAN;
    int ret = wk_hyp2f1(a, b, c, z, &got);
    ck_assert_msg(ret == 0, "2F1(%g, %g; %g; %.17g): error %d", a, b, c, z, ret);
    ck_assert_msg(fabs(got - want) <= rel * fabs(want), "2F1(%g, %g; %g; %.17g) = %.17g, want %.17g (rel %.2e)", a, b,
                  c, z, got, want, fabs(got - want) / fabs(want));
}

static const double ZS[] = {1e-8, 0.1, 0.3, 0.5, 0.5000001, 0.7, 0.9, 0.99, 0.999, 0.999999};
#define NZ (sizeof(ZS) / sizeof(ZS[0]))

START_TEST(log_form)
{
    /* 2F1(1, 1; 2; z) = -log(1 - z) / z; c - a - b = 0, the logarithmic case at z = 1. */
    for (size_t i = 0; i < NZ; i++)
        check_rel(1, 1, 2, ZS[i], -log1p(-ZS[i]) / ZS[i], REL);
}
END_TEST

START_TEST(power_form)
{
    /* 2F1(a, b; b; z) = (1 - z)^-a, for several a and b, growing or shrinking at z = 1. */
    const double as[] = {0.7, 2.5, -1.3, 0.05}, bs[] = {2.3, 1.5, 0.4, 7};
    for (size_t k = 0; k < 4; k++)
        for (size_t i = 0; i < NZ; i++)
            check_rel(as[k], bs[k], bs[k], ZS[i], pow(1 - ZS[i], -as[k]), REL);
}
END_TEST

START_TEST(asin_form)
{
    /* 2F1(1/2, 1/2; 3/2; z^2) = asin(z) / z. */
    for (size_t i = 0; i < NZ; i++) {
        double z = sqrt(ZS[i]);
        check_rel(0.5, 0.5, 1.5, z * z, asin(z) / z, REL);
    }
}
END_TEST

START_TEST(quadratic_forms)
{
    /*
     * A&S 15.1.9 and 15.1.10 with w = sqrt(z): through the Taylor continuation for z > 1/2,
     *   2F1(a, a + 1/2; 1/2; z) = ((1 + w)^-2a + (1 - w)^-2a) / 2,
     *   2F1(a, a + 1/2; 3/2; z) = ((1 + w)^(1-2a) - (1 - w)^(1-2a)) / (2 w (1 - 2a)).
     */
    const double as[] = {0.3, 0.8, -0.45};
    for (size_t k = 0; k < 3; k++) {
        double a = as[k];
        for (size_t i = 0; i < NZ; i++) {
            /* 1 - w = (1 - z) / (1 + w) keeps the closed form accurate where 1 - w is tiny. */
            double z = ZS[i], w = sqrt(z), v = (1 - z) / (1 + w);
            check_rel(a, a + 0.5, 0.5, z, (pow(1 + w, -2 * a) + pow(v, -2 * a)) / 2, REL);
            if (z > 0.01) /* the closed form itself cancels for small w */
                check_rel(a, a + 0.5, 1.5, z, (pow(1 + w, 1 - 2 * a) - pow(v, 1 - 2 * a)) / (2 * w * (1 - 2 * a)), REL);
        }
    }
}
END_TEST

START_TEST(negative_z)
{
    /* Pfaff: 2F1(1, 1; 2; -z) = log(1 + z) / z and (1 + z)^-a, out to z = -1e6. */
    const double zs[] = {-1e-3, -0.5, -1, -3, -50, -1e6};
    for (size_t i = 0; i < 6; i++) {
        double z = -zs[i];
        check_rel(1, 1, 2, zs[i], log1p(z) / z, REL);
        check_rel(0.7, 2.3, 2.3, zs[i], pow(1 + z, -0.7), REL);
    }
    check_rel(1, 1, 2, -3, 0.46209812037329687294, REL);
    check_rel(0.7, 2.3, 1.9, -20, 0.09703134909361619164, REL);
}
END_TEST

START_TEST(polynomial)
{
    /* a = -2: 1 - 2 b z / c + b (b + 1) z^2 / (c (c + 1)), for any z < 1. */
    const double b = 1.7, c = 0.6, zs[] = {0.3, 0.95, -4};
    for (size_t i = 0; i < 3; i++) {
        double z = zs[i];
        check_rel(-2, b, c, z, 1 - 2 * b * z / c + b * (b + 1) * z * z / (c * (c + 1)), REL);
        check_rel(b, -2, c, z, 1 - 2 * b * z / c + b * (b + 1) * z * z / (c * (c + 1)), REL);
    }
}
END_TEST

START_TEST(trivial)
{
    double v;
    ck_assert_int_eq(wk_hyp2f1(3, 4, 5, 0, &v), 0);
    ck_assert_double_eq(v, 1);
    ck_assert_int_eq(wk_hyp2f1(0, 4, 5, 0.9, &v), 0);
    ck_assert_double_eq(v, 1);
    ck_assert_int_eq(wk_hyp2f1(3, 0, -2.5, 0.9, &v), 0);
    ck_assert_double_eq(v, 1);
}
END_TEST

/* Reference values from mpmath (see the file header). */
START_TEST(reference_values)
{
    check_rel(0.5, 0.5, 1, 0.99, 2.3527158167797423215, REL);                 /* 2 K(k) / pi, c - a - b = 0 */
    check_rel(0.5, 0.5, 1, 0.999999, 5.2801571547627130945, REL);             /* ... close to the singularity */
    check_rel(1.0348, -0.2071, 2.2187, 0.47, 0.94778295291326493247, REL);    /* BG/NBD-like, series */
    check_rel(2.2159, -0.2071, 1002.2, 0.99, 0.99954610177441457493, REL);    /* BG/NBD-like, x = 1000 */
    check_rel(3.8945, 0.703, 108.3768, 0.999999, 1.0262738895897277483, REL); /* large c near 1 */
    check_rel(1.5, 2.5, 1.3, 0.999999, 18650017448173492.276, 1e-11);         /* (1-z)^-2.7 growth */
    check_rel(0.3, 0.7, -0.2, 0.3, 0.48786504721572488068, REL);              /* negative c */
    check_rel(0.3, 0.7, -0.2, 0.9, -17.651203114870899659, REL);
    check_rel(2.5, 3.5, -3.3, 0.8, 8442803201.0351020139, 1e-11); /* c < -2: connection formula */
    check_rel(-4.5, 2.5, -6.5, 0.95, 133701.22821548336084, 1e-11);
}
END_TEST

START_TEST(invalid)
{
    double v = 42;

    ck_assert_int_eq(wk_hyp2f1(1, 1, 2, 1, &v), ERR_INVALID);
    ck_assert_int_eq(wk_hyp2f1(1, 1, 2, 1.5, &v), ERR_INVALID);
    ck_assert_int_eq(wk_hyp2f1(1, 1, 0, 0.5, &v), ERR_INVALID);
    ck_assert_int_eq(wk_hyp2f1(1, 1, -3, 0.5, &v), ERR_INVALID);
    ck_assert_int_eq(wk_hyp2f1(NAN, 1, 2, 0.5, &v), ERR_INVALID);
    ck_assert_int_eq(wk_hyp2f1(1, INFINITY, 2, 0.5, &v), ERR_INVALID);
    ck_assert_int_eq(wk_hyp2f1(1, 1, 2, NAN, &v), ERR_INVALID);
    ck_assert_int_eq(wk_hyp2f1(1, 1, 2, -INFINITY, &v), ERR_INVALID);
    ck_assert_int_eq(wk_hyp2f1(1, 1, 2, 0.5, NULL), ERR_INVALID);
    ck_assert_double_eq(v, 42); /* untouched on error */
}
END_TEST

START_TEST(overflow)
{
    double v = 42;

    /* (1 - z)^-a with a huge exponent: not representable, an error rather than inf. */
    ck_assert_int_eq(wk_hyp2f1(400, 3, 3, 0.99, &v), ERR_INTERNAL);
    ck_assert_int_eq(wk_hyp2f1(3000, 3000, 1, 0.5, &v), ERR_INTERNAL);
    ck_assert_double_eq(v, 42);
}
END_TEST

static Suite *hyp2f1_suite(void)
{
    Suite *s = suite_create("hyp2f1");
    TCase *tc;

    tc = tcase_create("closed_forms");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, log_form);
    tcase_add_test(tc, power_form);
    tcase_add_test(tc, asin_form);
    tcase_add_test(tc, quadratic_forms);
    tcase_add_test(tc, negative_z);
    tcase_add_test(tc, polynomial);
    tcase_add_test(tc, trivial);
    suite_add_tcase(s, tc);

    tc = tcase_create("reference");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, reference_values);
    suite_add_tcase(s, tc);

    tc = tcase_create("errors");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, invalid);
    tcase_add_test(tc, overflow);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(hyp2f1_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
