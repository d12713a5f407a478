/*
 * tests/unit/worker/optim_test.c - unit tests for worker/optim.c (BFGS, Nelder-Mead, fallback).
 *
 * The objectives are small closed-form functions defined here: Rosenbrock's
 * valley, a shifted quadratic, a function with a deliberately wrong
 * analytic gradient (so BFGS cannot find a descent step and the fallback
 * must take over) and one undefined outside a half-plane (domain errors
 * in the line search). Each objective counts its calls through ctx.
 */
#include <check.h>
#include <math.h>
#include <stdlib.h>

#include "common/err.h"
#include "worker/optim.h"

static int rosenbrock(const double *x, double *f, double *g, void *ctx)
{
    double a = 1 - x[0], b = x[1] - x[0] * x[0];
    if (ctx != NULL)
        ++*(int *)ctx;
    *f = a * a + 100 * b * b;
    if (g != NULL) {
        g[0] = -2 * a - 400 * x[0] * b;
        g[1] = 200 * b;
    }
    return 0;
}

/* sum_i (i + 1) (x_i - i)^2 in 4 dimensions, minimum 0 at (0, 1, 2, 3). */
static int quadratic(const double *x, double *f, double *g, void *ctx)
{
    (void)ctx;
    *f = 0;
    for (int i = 0; i < 4; i++) {
        *f += (i + 1) * (x[i] - i) * (x[i] - i);
        if (g != NULL)
            g[i] = 2 * (i + 1) * (x[i] - i);
    }
    return 0;
}

/* The quadratic, but reporting the gradient with the wrong sign: no descent direction exists for BFGS. */
static int quadratic_bad_grad(const double *x, double *f, double *g, void *ctx)
{
    quadratic(x, f, g, ctx);
    if (g != NULL)
        for (int i = 0; i < 4; i++)
            g[i] = -g[i];
    return 0;
}

/* (x0 - 3)^2 + (x1 + 1)^2 - log(x0): defined for x0 > 0 only; minimum at x0 = (3 + sqrt(11)) / 2, x1 = -1. */
static int half_plane(const double *x, double *f, double *g, void *ctx)
{
    (void)ctx;
    if (x[0] <= 0)
        return ERR_INVALID;
    *f = (x[0] - 3) * (x[0] - 3) + (x[1] + 1) * (x[1] + 1) - log(x[0]);
    if (g != NULL) {
        g[0] = 2 * (x[0] - 3) - 1 / x[0];
        g[1] = 2 * (x[1] + 1);
    }
    return 0;
}

static int always_fails(const double *x, double *f, double *g, void *ctx)
{
    (void)x, (void)f, (void)g, (void)ctx;
    return ERR_INVALID;
}

START_TEST(bfgs_rosenbrock_analytic)
{
    wk_optim_opts_t o;
    wk_optim_result_t r;
    double x[2] = {-1.2, 1};
    int calls = 0;

    wk_optim_default_opts(&o);
    o.analytic_grad = 1;
    ck_assert_int_eq(wk_optim_bfgs(2, x, rosenbrock, &calls, &o, &r), 0);
    ck_assert_int_eq(r.converged, 1);
    ck_assert_int_eq(r.method, WK_OPTIM_BFGS);
    ck_assert_double_eq_tol(x[0], 1, 1e-6);
    ck_assert_double_eq_tol(x[1], 1, 1e-6);
    ck_assert(r.f < 1e-12);
    ck_assert(r.grad_norm <= o.gtol);
    ck_assert(r.iterations > 0 && r.iterations < 200);
    ck_assert_int_eq(r.fevals, calls);
}
END_TEST

START_TEST(bfgs_rosenbrock_numeric)
{
    wk_optim_opts_t o;
    wk_optim_result_t r;
    double x[2] = {-1.2, 1};

    wk_optim_default_opts(&o);
    o.gtol = 1e-7; /* central differences are good to about 1e-8 here */
    ck_assert_int_eq(wk_optim_minimise(2, x, rosenbrock, NULL, &o, &r), 0);
    ck_assert_int_eq(r.converged, 1);
    ck_assert_double_eq_tol(x[0], 1, 1e-6);
    ck_assert_double_eq_tol(x[1], 1, 1e-6);
}
END_TEST

START_TEST(bfgs_quadratic)
{
    wk_optim_result_t r;
    double x[4] = {10, -10, 5, 0};
    wk_optim_opts_t o;

    wk_optim_default_opts(&o);
    o.analytic_grad = 1;
    ck_assert_int_eq(wk_optim_bfgs(4, x, quadratic, NULL, &o, &r), 0);
    for (int i = 0; i < 4; i++)
        ck_assert_double_eq_tol(x[i], i, 1e-9);
    /* Exact line searches would need 4 iterations; ours are inexact but it stays small. */
    ck_assert(r.iterations <= 30);
}
END_TEST

START_TEST(bfgs_domain_errors)
{
    wk_optim_opts_t o;
    wk_optim_result_t r;
    double x[2] = {0.01, 5};

    wk_optim_default_opts(&o);
    o.analytic_grad = 1;
    ck_assert_int_eq(wk_optim_bfgs(2, x, half_plane, NULL, &o, &r), 0);
    ck_assert_double_eq_tol(x[0], (3 + sqrt(11)) / 2, 1e-8);
    ck_assert_double_eq_tol(x[1], -1, 1e-8);
}
END_TEST

START_TEST(bfgs_invalid)
{
    wk_optim_result_t r;
    double x[2] = {1, 1}, big[WK_OPTIM_MAX_DIM + 1] = {0}, bad[2] = {NAN, 0};

    ck_assert_int_eq(wk_optim_bfgs(0, x, rosenbrock, NULL, NULL, &r), ERR_INVALID);
    ck_assert_int_eq(wk_optim_bfgs(WK_OPTIM_MAX_DIM + 1, big, rosenbrock, NULL, NULL, &r), ERR_INVALID);
    ck_assert_int_eq(wk_optim_bfgs(2, NULL, rosenbrock, NULL, NULL, &r), ERR_INVALID);
    ck_assert_int_eq(wk_optim_bfgs(2, x, NULL, NULL, NULL, &r), ERR_INVALID);
    ck_assert_int_eq(wk_optim_bfgs(2, x, rosenbrock, NULL, NULL, NULL), ERR_INVALID);
    ck_assert_int_eq(wk_optim_bfgs(2, bad, rosenbrock, NULL, NULL, &r), ERR_INVALID);
    ck_assert_int_eq(wk_optim_bfgs(2, x, always_fails, NULL, NULL, &r), ERR_INVALID);
    ck_assert_int_eq(wk_optim_nelder_mead(2, x, always_fails, NULL, NULL, &r), ERR_INVALID);
    ck_assert_int_eq(wk_optim_minimise(2, x, always_fails, NULL, NULL, &r), ERR_INVALID);
    ck_assert_double_eq(x[0], 1);
}
END_TEST

START_TEST(bfgs_iteration_limit)
{
    wk_optim_opts_t o;
    wk_optim_result_t r;
    double x[2] = {-1.2, 1};

    wk_optim_default_opts(&o);
    o.analytic_grad = 1;
    o.max_iter = 3;
    ck_assert_int_eq(wk_optim_bfgs(2, x, rosenbrock, NULL, &o, &r), ERR_INTERNAL);
    ck_assert_int_eq(r.converged, 0);
    ck_assert_int_eq(r.bfgs_failed, 1);
    ck_assert_int_eq(r.iterations, 3);
    ck_assert(r.f < 24.2); /* better than the start, f(-1.2, 1) = 24.2 */
}
END_TEST

START_TEST(nm_rosenbrock)
{
    wk_optim_result_t r;
    double x[2] = {-1.2, 1};

    ck_assert_int_eq(wk_optim_nelder_mead(2, x, rosenbrock, NULL, NULL, &r), 0);
    ck_assert_int_eq(r.converged, 1);
    ck_assert_int_eq(r.method, WK_OPTIM_NELDER_MEAD);
    ck_assert_double_eq_tol(x[0], 1, 1e-6);
    ck_assert_double_eq_tol(x[1], 1, 1e-6);
    ck_assert(r.grad_norm >= 0 && r.grad_norm < 1e-4);
}
END_TEST

START_TEST(nm_domain_errors)
{
    wk_optim_result_t r;
    double x[2] = {0.1, 5};

    ck_assert_int_eq(wk_optim_nelder_mead(2, x, half_plane, NULL, NULL, &r), 0);
    ck_assert_double_eq_tol(x[0], (3 + sqrt(11)) / 2, 1e-7);
    ck_assert_double_eq_tol(x[1], -1, 1e-7);
}
END_TEST

START_TEST(nm_iteration_limit)
{
    wk_optim_opts_t o;
    wk_optim_result_t r;
    double x[2] = {-1.2, 1};

    wk_optim_default_opts(&o);
    o.nm_max_iter = 10;
    ck_assert_int_eq(wk_optim_nelder_mead(2, x, rosenbrock, NULL, &o, &r), ERR_INTERNAL);
    ck_assert_int_eq(r.converged, 0);
    ck_assert_int_eq(r.iterations, 10);
}
END_TEST

START_TEST(fallback_wrong_gradient)
{
    wk_optim_opts_t o;
    wk_optim_result_t r;
    double x[4] = {1, 1, 1, 1};

    wk_optim_default_opts(&o);
    o.analytic_grad = 1;
    ck_assert_int_eq(wk_optim_minimise(4, x, quadratic_bad_grad, NULL, &o, &r), 0);
    ck_assert_int_eq(r.bfgs_failed, 1);
    ck_assert_int_eq(r.method, WK_OPTIM_NELDER_MEAD);
    ck_assert_int_eq(r.converged, 1);
    for (int i = 0; i < 4; i++)
        ck_assert_double_eq_tol(x[i], i, 1e-7);
    ck_assert(r.f < 1e-12);
}
END_TEST

START_TEST(fallback_disabled)
{
    wk_optim_opts_t o;
    wk_optim_result_t r;
    double x[4] = {1, 1, 1, 1};

    wk_optim_default_opts(&o);
    o.analytic_grad = 1;
    o.fallback = 0;
    ck_assert_int_eq(wk_optim_minimise(4, x, quadratic_bad_grad, NULL, &o, &r), ERR_INTERNAL);
    ck_assert_int_eq(r.method, WK_OPTIM_BFGS);
    ck_assert_int_eq(r.converged, 0);
}
END_TEST

START_TEST(fallback_after_iteration_limit)
{
    wk_optim_opts_t o;
    wk_optim_result_t r;
    double x[2] = {-1.2, 1};

    wk_optim_default_opts(&o);
    o.analytic_grad = 1;
    o.max_iter = 2;
    ck_assert_int_eq(wk_optim_minimise(2, x, rosenbrock, NULL, &o, &r), 0);
    ck_assert_int_eq(r.bfgs_failed, 1);
    ck_assert_int_eq(r.method, WK_OPTIM_NELDER_MEAD);
    ck_assert(r.iterations > 2);
    ck_assert_double_eq_tol(x[0], 1, 1e-6);
    ck_assert_double_eq_tol(x[1], 1, 1e-6);
}
END_TEST

static Suite *optim_suite(void)
{
    Suite *s = suite_create("optim");
    TCase *tc;

    tc = tcase_create("bfgs");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, bfgs_rosenbrock_analytic);
    tcase_add_test(tc, bfgs_rosenbrock_numeric);
    tcase_add_test(tc, bfgs_quadratic);
    tcase_add_test(tc, bfgs_domain_errors);
    tcase_add_test(tc, bfgs_invalid);
    tcase_add_test(tc, bfgs_iteration_limit);
    suite_add_tcase(s, tc);

    tc = tcase_create("nelder_mead");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, nm_rosenbrock);
    tcase_add_test(tc, nm_domain_errors);
    tcase_add_test(tc, nm_iteration_limit);
    suite_add_tcase(s, tc);

    tc = tcase_create("minimise");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, fallback_wrong_gradient);
    tcase_add_test(tc, fallback_disabled);
    tcase_add_test(tc, fallback_after_iteration_limit);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(optim_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
