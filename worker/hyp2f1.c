/*
 * worker/hyp2f1.c - the Gauss hypergeometric function 2F1(a, b; c; z) for real arguments.
 *
 * The function is evaluated in one of these ways, chosen by z and c:
 * - 0 <= z <= 1/2, or a or b a non-positive integer (a polynomial): the
 *   defining power series, summed until the remaining tail is below half
 *   an ulp of the sum.
 * - 1/2 < z < 1: first the same series, capped at 400 terms and accepted
 *   only if cancellation cost less than a factor 16. It succeeds when c is
 *   large next to a and b (the BG/NBD expectations of frequent buyers).
 * - otherwise, for c >= -2: the series gives F and F' at z = 1/2; from
 *   there the hypergeometric ODE z(1-z)F'' + (c - (a+b+1)z)F' - abF = 0 is
 *   continued by Taylor expansions whose coefficients follow a three-term
 *   recurrence. Each step covers at most half the distance to the singular
 *   point z = 1, so every expansion converges like 2^-k and z = 1 - 1e-6
 *   takes about 20 steps; steps are shorter where the other solution of the
 *   ODE varies fast (large parameters), whose Taylor terms would otherwise
 *   swamp the sum. That other solution behaves like z^(1-c), which does not
 *   grow over [1/2, 1) when c >= 1, so rounding errors are not amplified;
 *   for -2 <= c < 1 they grow by at most 2^(1-c) <= 8. Step ends are kept
 *   exactly representable so that 1 - z does not drift.
 * - otherwise (c < -2): the 1 - z connection formula (Abramowitz & Stegun
 *   15.3.6), two series in 1 - z < 1/2. When c - a - b is close to an
 *   integer its two terms cancel (the loss grows like 1 / distance), and
 *   the Taylor continuation is used instead if its loss, 2^(1-c), is
 *   smaller; accuracy is reduced either way.
 * - z < 0: Pfaff's transformation 2F1(a,b;c;z) = (1-z)^-a 2F1(a,c-b;c;z/(z-1))
 *   (or its twin with a and b swapped) into [0, 1). Where the new series
 *   alternates (c < a or c < b, with large |a|, |b|) the result is the small
 *   difference of large terms and can lose several digits.
 * Checked against mpmath (40 digits) on thousands of random arguments: for
 * z in [0, 1) and parameters of the size the CLV models produce the
 * relative error stays below 1e-12; it is larger where the series terms
 * cancel, i.e. a or b below -5 with the other large.
 * Gamma factors are combined in the log domain (lgamma_r, which does not
 * touch the global signgam) so that large parameters cannot overflow an
 * intermediate.
 */
#include <float.h>
#include <math.h>
#include <stddef.h>

#include "common/err.h"
#include "worker/hyp2f1.h"

/* Largest z summed directly; the Taylor continuation starts here. */
#define SERIES_ZMAX 0.5
/* Term limit of the direct series tried first for z > SERIES_ZMAX, and the cancellation it tolerates. */
#define FAST_TERMS 400L
#define FAST_MAX_CANCEL 16.0
/* Fraction of the distance to z = 1 covered by one Taylor step. */
#define STEP_FRACTION 0.5
/* Largest growth exponent of the other ODE solution across one Taylor step (see continue_taylor). */
#define STEP_STIFFNESS 8.0
/* Below this c the Taylor continuation may amplify rounding; use the connection formula. */
#define TAYLOR_CMIN (-2.0)
/* Term limit of any single series, and step limit of the continuation. */
#define MAX_TERMS 200000L
#define MAX_STEPS 200000
/* Relative size of the neglected tail. */
#define TOL (0.5 * DBL_EPSILON)

static int is_nonpositive_integer(double v)
{
    return v <= 0 && v == floor(v);
}

/*
 * Sums the power series at z (|z| < 1, or any z if the series terminates)
 * with at most max_terms terms. With dres != NULL also sums the derivative;
 * with cancel != NULL reports sum |term| / |sum|, the factor by which
 * cancellation amplified rounding. Once n exceeds every parameter the term
 * ratio is positive-monotone towards z, so the tail after term t is bounded
 * by |t| q / (1 - q) with q = max(|ratio|, |z|).
 */
static int sum_series(double a, double b, double c, double z, long max_terms, double *res, double *dres, double *cancel)
{
    double term = 1, sum = 1, dsum = 0, abssum = 1;
    double nmin = fmax(fmax(fabs(a), fabs(b)), fabs(c)) + 2;

    for (long n = 0; n < max_terms; n++) {
        double ratio = (a + n) * (b + n) / ((c + n) * (n + 1)) * z;
        term *= ratio; /* now term n + 1 */
        sum += term;
        abssum += fabs(term);
        dsum += (n + 1) * term;
        if (!isfinite(abssum) || !isfinite(dsum))
            return ERR_INTERNAL;
        if (term == 0)
            goto Done;
        if (n + 1 > nmin) {
            double q = fmax(fabs(ratio), fabs(z)) * (n + 2) / (n + 1); /* derivative terms decay a little slower */
            if (q < 1 && fabs(term) <= TOL * fabs(sum) * (1 - q) &&
                (dres == NULL || (n + 1) * fabs(term) <= TOL * fabs(dsum) * (1 - q)))
                goto Done;
        }
    }
    return ERR_INTERNAL;

Done:
    *res = sum;
    if (dres != NULL)
        *dres = dsum / z;
    if (cancel != NULL)
        *cancel = sum != 0 ? abssum / fabs(sum) : INFINITY;
    return 0;
}

/*
 * Continues the solution with value w and derivative dw at z0 >= 1/2 to
 * z = 1 - y (z0 <= z < 1) by Taylor steps. The target is given by its
 * distance y to the singularity, which callers often know more precisely
 * than z itself (after Pfaff's transformation, say). With e_k = d_k h^k the
 * ODE gives
 *   e_{k+2} = [(k+a)(k+b) h^2 e_k - (k+1)((1-2 z0) k + c - (a+b+1) z0) h e_{k+1}] / (z0 (1-z0) (k+1)(k+2)).
 * Rounding excites the other ODE solution; where it varies fast (large
 * |c - (a+b+1) z0| / (z0 (1-z0)) or |ab| / (z0 (1-z0))) its Taylor terms
 * grow like exp(rate * h) before they cancel, so the step is also capped
 * at STEP_STIFFNESS / rate to keep that growth below e^8.
 */
static int continue_taylor(double a, double b, double c, double z0, double w, double dw, double y, double *res)
{
    double zc = z0;

    for (int step = 0; 1 - zc > y; step++) {
        double h = STEP_FRACTION * (1 - zc), sw, sd, e0, e1, p0, p1, q0, rate;
        int last = 0;

        if (step >= MAX_STEPS)
            return ERR_INTERNAL;
        p0 = zc * (1 - zc);
        p1 = 1 - 2 * zc;
        q0 = c - (a + b + 1) * zc;
        rate = fmax(fabs(q0) / p0, sqrt(fabs(a * b) / p0));
        if (rate * h > STEP_STIFFNESS)
            h = STEP_STIFFNESS / rate;
        if ((1 - zc) - y <= h) {
            h = (1 - zc) - y; /* 1 - zc is exact */
            last = 1;
        } else {
            /*
             * Make zc + h exact (Sterbenz: zc >= 1/2), or rounding of zc would
             * accumulate into 1 - z, which matters when y is tiny.
             */
            h = (zc + h) - zc;
        }
        e0 = w;
        e1 = dw * h;
        sw = e0 + e1;
        sd = e1; /* h * w'(zc + h) = sum of k e_k */
        for (long k = 0;; k++) {
            double e2;
            if (k >= MAX_TERMS)
                return ERR_INTERNAL;
            e2 = ((k + a) * (k + b) * h * h * e0 - (k + 1) * (p1 * k + q0) * h * e1) / (p0 * (k + 1) * (k + 2));
            sw += e2;
            sd += (k + 2) * e2;
            if (!isfinite(sw) || !isfinite(sd))
                return ERR_INTERNAL;
            /* Two consecutive small terms: the recurrence can produce one zero by cancellation. */
            if (k >= 4 && (k + 3) * (fabs(e1) + fabs(e2)) <= TOL * fmax(fabs(sw), fabs(sd)))
                break;
            e0 = e1;
            e1 = e2;
        }
        w = sw;
        dw = sd / h;
        if (last)
            break;
        zc += h; /* exact */
    }
    *res = w;
    return 0;
}

/* sign(G) * exp(log|G|) for a product of gamma functions given in log form. */
static double signed_exp(double logabs, int sign)
{
    return sign * exp(logabs);
}

/*
 * A&S 15.3.6: F = G1 2F1(a,b;1-m;y) + G2 y^m 2F1(c-a,c-b;1+m;y), m = c-a-b, y = 1-z,
 * G1 = G(c)G(m)/(G(c-a)G(c-b)), G2 = G(c)G(-m)/(G(a)G(b)). m must not be an integer.
 * A pole of G(c-a) or G(c-b) makes lgamma_r return +inf, so G1 becomes 0 as it should.
 */
static int connect_one_minus_z(double a, double b, double c, double y, double *res)
{
    double m = c - a - b, f1, f2, g1, g2, v;
    int sc, sm, sca, scb, snm, sa, sb, ret;
    double lc = lgamma_r(c, &sc), lm = lgamma_r(m, &sm), lca = lgamma_r(c - a, &sca), lcb = lgamma_r(c - b, &scb);
    double lnm = lgamma_r(-m, &snm), la = lgamma_r(a, &sa), lb = lgamma_r(b, &sb);

    if ((ret = sum_series(a, b, 1 - m, y, MAX_TERMS, &f1, NULL, NULL)) != 0)
        return ret;
    if ((ret = sum_series(c - a, c - b, 1 + m, y, MAX_TERMS, &f2, NULL, NULL)) != 0)
        return ret;
    g1 = signed_exp(lc + lm - lca - lcb, sc * sm * sca * scb);
    g2 = signed_exp(lc + lnm - la - lb + m * log(y), sc * snm * sa * sb);
    v = g1 * f1 + g2 * f2;
    if (!isfinite(v))
        return ERR_INTERNAL;
    *res = v;
    return 0;
}

/* 2F1 for 0 < z < 1, y = 1 - z, none of a, b a non-positive integer. */
static int eval_unit_interval(double a, double b, double c, double z, double y, double *res)
{
    double m = c - a - b, w, dw, cancel;
    int ret;

    if (z <= SERIES_ZMAX)
        return sum_series(a, b, c, z, MAX_TERMS, res, NULL, NULL);
    /* Large c (e.g. c ~ x in the BG/NBD expectations) makes the series converge fast even near z = 1. */
    if (sum_series(a, b, c, z, FAST_TERMS, res, NULL, &cancel) == 0 && cancel <= FAST_MAX_CANCEL)
        return 0;
    /*
     * Below TAYLOR_CMIN the continuation amplifies rounding by up to 2^(1-c),
     * the connection formula by about 1/dist(m, integers): take the smaller.
     */
    if (c < TAYLOR_CMIN && fabs(m - nearbyint(m)) * exp2(1 - c) > 1)
        return connect_one_minus_z(a, b, c, y, res);
    if ((ret = sum_series(a, b, c, SERIES_ZMAX, MAX_TERMS, &w, &dw, NULL)) != 0)
        return ret;
    return continue_taylor(a, b, c, SERIES_ZMAX, w, dw, y, res);
}

int wk_hyp2f1(double a, double b, double c, double z, double *out)
{
    double v;
    int ret;

    if (out == NULL || !isfinite(a) || !isfinite(b) || !isfinite(c) || !isfinite(z) || !(z < 1))
        return ERR_INVALID;
    if (is_nonpositive_integer(c))
        return ERR_INVALID;

    if (z == 0 || a == 0 || b == 0) {
        v = 1;
    } else if (is_nonpositive_integer(a) || is_nonpositive_integer(b)) {
        /* A polynomial: the series terminates, whatever z is. */
        if ((ret = sum_series(a, b, c, z, MAX_TERMS, &v, NULL, NULL)) != 0)
            return ret;
    } else if (is_nonpositive_integer(c - a) || is_nonpositive_integer(c - b)) {
        /*
         * Euler: (1-z)^(c-a-b) 2F1(c-a, c-b; c; z), a polynomial times a
         * power. Exact where the other methods would have to recover a
         * function whose regular part at z = 1 vanishes.
         */
        if ((ret = sum_series(c - a, c - b, c, z, MAX_TERMS, &v, NULL, NULL)) != 0)
            return ret;
        v *= exp((c - a - b) * log1p(-z));
    } else if (z < 0) {
        /*
         * Pfaff. Prefer the twin whose new series has only non-negative
         * terms (no cancellation); both share c and the argument z/(z-1).
         */
        double x = z / (z - 1), y = 1 / (1 - z), f;
        int keep_a = !(a < 0 || c - b < 0) || (b < 0 || c - a < 0);
        if (keep_a) {
            ret = eval_unit_interval(a, c - b, c, x, y, &f);
            v = f * exp(-a * log1p(-z));
        } else {
            ret = eval_unit_interval(c - a, b, c, x, y, &f);
            v = f * exp(-b * log1p(-z));
        }
        if (ret != 0)
            return ret;
    } else {
        if ((ret = eval_unit_interval(a, b, c, z, 1 - z, &v)) != 0)
            return ret;
    }
    if (!isfinite(v))
        return ERR_INTERNAL;
    *out = v;
    return 0;
}
