/*
 * worker/optim.c - small unconstrained minimisers: BFGS and Nelder-Mead.
 *
 * BFGS keeps a dense inverse-Hessian approximation H (n <= WK_OPTIM_MAX_DIM,
 * so every array lives on the stack). H starts as the identity and is
 * rescaled by s'y / y'y before the first update (Nocedal & Wright 6.20);
 * updates are skipped when the curvature s'y is not clearly positive. The
 * line search brackets a step meeting the weak Wolfe conditions (Armijo
 * c1 = 1e-4, curvature c2 = 0.9): it doubles the step while the slope is
 * still steep and, once bracketed, takes the safeguarded minimiser of the
 * quadratic through the bracket's low end. Where f is within rounding
 * noise (1e-10 relative) of the start, sufficient decrease is judged on the
 * slope instead (Hager & Zhang's approximate Wolfe conditions), so that
 * BFGS can still drive the gradient down when a log-likelihood summed over
 * many rows is flat to the last bits. A failed evaluation (domain error)
 * counts as an infinitely bad point, so the search simply steps back. If
 * no step is found along the quasi-Newton direction, H is reset to the
 * identity and steepest descent is tried before giving up.
 *
 * Nelder-Mead is the textbook method (Lagarias et al. 1998 ordering rules)
 * with restarts at convergence, which catch the usual premature collapse
 * of the simplex. It is the fallback for objectives whose gradient is
 * wrong, noisy or missing at the optimum.
 */
#include <float.h>
#include <math.h>
#include <string.h>

#include "common/err.h"
#include "worker/optim.h"

#define WOLFE_C1 1e-4
#define WOLFE_C2 0.9
#define LS_MAX_TRIALS 60
/* Relative rounding noise assumed in f when testing sufficient decrease. */
#define F_NOISE 1e-10
#define LS_MAX_STEP 1e10
#define NM_MAX_RESTARTS 5
/* Predicted decreases below this many ulps of f are invisible to a line search. */
#define PRECISION_FLOOR 64

/* The objective plus the counters and settings every evaluation needs. */
struct st_problem_t {
    size_t n;
    wk_optim_fn fn;
    void *ctx;
    int analytic;
    int fevals;
};

static int eval_value(struct st_problem_t *p, const double *x, double *f)
{
    p->fevals++;
    if (p->fn(x, f, NULL, p->ctx) != 0 || !isfinite(*f))
        return -1;
    return 0;
}

/* Central differences with steps h = cbrt(eps) * max(1, |x_i|), made exact in binary. */
static int eval_numeric_grad(struct st_problem_t *p, const double *x, double *g)
{
    double xt[WK_OPTIM_MAX_DIM], fp, fm;

    memcpy(xt, x, p->n * sizeof(*x));
    for (size_t i = 0; i < p->n; i++) {
        double h = cbrt(DBL_EPSILON) * fmax(1, fabs(x[i]));
        double xp = x[i] + h, xm = x[i] - h;
        xt[i] = xp;
        if (eval_value(p, xt, &fp) != 0)
            return -1;
        xt[i] = xm;
        if (eval_value(p, xt, &fm) != 0)
            return -1;
        xt[i] = x[i];
        g[i] = (fp - fm) / (xp - xm);
        if (!isfinite(g[i]))
            return -1;
    }
    return 0;
}

static int eval_value_grad(struct st_problem_t *p, const double *x, double *f, double *g)
{
    if (!p->analytic)
        return eval_value(p, x, f) == 0 ? eval_numeric_grad(p, x, g) : -1;
    p->fevals++;
    if (p->fn(x, f, g, p->ctx) != 0 || !isfinite(*f))
        return -1;
    for (size_t i = 0; i < p->n; i++)
        if (!isfinite(g[i]))
            return -1;
    return 0;
}

static double max_abs(const double *v, size_t n)
{
    double m = 0;
    for (size_t i = 0; i < n; i++)
        m = fmax(m, fabs(v[i]));
    return m;
}

static double dot(const double *u, const double *v, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += u[i] * v[i];
    return s;
}

static void set_identity(double *h, size_t n, double scale)
{
    memset(h, 0, n * n * sizeof(*h));
    for (size_t i = 0; i < n; i++)
        h[i * n + i] = scale;
}

/*
 * Weak-Wolfe line search along d from x (value f0, gradient g0, slope0 =
 * g0'd < 0), first trial step alpha. On success stores the new point, value
 * and gradient and returns 0. If only the Armijo condition could be met,
 * returns that point anyway (the caller then sees s'y <= 0 at worst and
 * skips the update). Returns -1 if not even Armijo could be met.
 */
static int search_line(struct st_problem_t *p, const double *x, double f0, const double *d, double slope0, double alpha,
                       double *xn, double *fnew, double *gn)
{
    size_t n = p->n;
    double lo = 0, hi = INFINITY, flo = f0, slope_lo = slope0, fhi = INFINITY;
    double xlo[WK_OPTIM_MAX_DIM], glo[WK_OPTIM_MAX_DIM];
    int have_lo = 0;

    for (int trial = 0; trial < LS_MAX_TRIALS; trial++) {
        double ft, slope;
        int ok, armijo;

        for (size_t i = 0; i < n; i++)
            xn[i] = x[i] + alpha * d[i];
        /* With an analytic gradient, value and gradient come from one call. */
        ok = p->analytic ? eval_value_grad(p, xn, &ft, gn) == 0 : eval_value(p, xn, &ft) == 0;
        if (!ok) {
            hi = alpha;
            fhi = INFINITY;
            goto Next;
        }
        /*
         * Sufficient decrease: Armijo on the values or, where f is within its
         * rounding noise of f0, Hager & Zhang's approximate form on the slope
         * (phi'(alpha) <= (2 c1 - 1) phi'(0)). Near a minimum of a long sum
         * the noise in f exceeds the decrease a good step achieves, while
         * the gradient still shows it.
         */
        armijo = ft <= f0 + WOLFE_C1 * alpha * slope0 && !(have_lo && ft >= flo);
        if (!armijo && ft > f0 + F_NOISE * fmax(1, fabs(f0))) {
            hi = alpha;
            fhi = ft;
            goto Next;
        }
        if (!p->analytic && eval_numeric_grad(p, xn, gn) != 0) {
            hi = alpha;
            fhi = INFINITY;
            goto Next;
        }
        slope = dot(gn, d, n);
        if (!armijo && slope > (2 * WOLFE_C1 - 1) * slope0) {
            hi = alpha;
            fhi = ft;
            goto Next;
        }
        if (slope >= WOLFE_C2 * slope0) {
            *fnew = ft;
            return 0;
        }
        lo = alpha;
        flo = ft;
        slope_lo = slope;
        memcpy(xlo, xn, n * sizeof(*xn));
        memcpy(glo, gn, n * sizeof(*gn));
        have_lo = 1;
    Next:
        if (isinf(hi)) {
            if (alpha >= LS_MAX_STEP)
                break;
            alpha *= 2;
        } else {
            double width = hi - lo, next;
            if (width <= 1e-15 * hi)
                break;
            if (isfinite(fhi)) {
                /* Minimiser of the quadratic with value flo and slope slope_lo at lo, value fhi at hi. */
                double curv = fhi - flo - slope_lo * width;
                next = curv > 0 ? lo - slope_lo * width * width / (2 * curv) : lo + 0.5 * width;
                next = fmin(fmax(next, lo + 0.1 * width), hi - 0.1 * width);
            } else {
                next = lo + 0.2 * width; /* undefined there: back off hard */
            }
            alpha = next;
        }
    }
    if (!have_lo)
        return -1;
    memcpy(xn, xlo, n * sizeof(*xn));
    memcpy(gn, glo, n * sizeof(*gn));
    *fnew = flo;
    return 0;
}

void wk_optim_default_opts(wk_optim_opts_t *opts)
{
    opts->analytic_grad = 0;
    opts->fallback = 1;
    opts->max_iter = 500;
    opts->nm_max_iter = 20000;
    opts->gtol = 1e-9;
    opts->nm_step = 0.25;
    opts->nm_xtol = 1e-10;
    opts->nm_ftol = 1e-14;
}

static int check_args(size_t n, const double *x, wk_optim_fn fn, wk_optim_result_t *res)
{
    if (n == 0 || n > WK_OPTIM_MAX_DIM || x == NULL || fn == NULL || res == NULL)
        return ERR_INVALID;
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i]))
            return ERR_INVALID;
    return 0;
}

int wk_optim_bfgs(size_t n, double *x, wk_optim_fn fn, void *ctx, const wk_optim_opts_t *opts, wk_optim_result_t *res)
{
    wk_optim_opts_t defaults;
    struct st_problem_t p = {n, fn, ctx, 0, 0};
    double h[WK_OPTIM_MAX_DIM * WK_OPTIM_MAX_DIM], g[WK_OPTIM_MAX_DIM], d[WK_OPTIM_MAX_DIM];
    double xn[WK_OPTIM_MAX_DIM], gn[WK_OPTIM_MAX_DIM], s[WK_OPTIM_MAX_DIM], y[WK_OPTIM_MAX_DIM];
    double hy[WK_OPTIM_MAX_DIM], f, fnew, gnorm;
    int iter = 0, converged = 0, identity = 1, rescale = 1;

    if (check_args(n, x, fn, res) != 0)
        return ERR_INVALID;
    if (opts == NULL) {
        wk_optim_default_opts(&defaults);
        opts = &defaults;
    }
    p.analytic = opts->analytic_grad;
    if (eval_value_grad(&p, x, &f, g) != 0) {
        res->fevals = p.fevals;
        return ERR_INVALID;
    }
    set_identity(h, n, 1);

    for (;;) {
        double slope, alpha, sy, yhy;

        gnorm = max_abs(g, n);
        if (gnorm <= opts->gtol) {
            converged = 1;
            break;
        }
        if (iter >= opts->max_iter)
            break;
        for (size_t i = 0; i < n; i++)
            d[i] = -dot(&h[i * n], g, n);
        slope = dot(g, d, n);
        if (!(slope < 0)) {
            /* H lost positive definiteness to rounding: start over from steepest descent. */
            set_identity(h, n, 1);
            identity = rescale = 1;
            for (size_t i = 0; i < n; i++)
                d[i] = -g[i];
            slope = -dot(g, g, n);
        }
        /* An unscaled steepest-descent step could be huge; cap its first trial at unit length. */
        alpha = identity && iter == 0 ? fmin(1, 1 / max_abs(d, n)) : 1;
        if (search_line(&p, x, f, d, slope, alpha, xn, &fnew, gn) != 0) {
            /*
             * The full quasi-Newton step would lower f by about -slope / 2.
             * Below the rounding level of f no line search can see a
             * decrease: that is as converged as f allows.
             */
            if (!identity && -slope <= PRECISION_FLOOR * DBL_EPSILON * fmax(1, fabs(f))) {
                converged = 1;
                break;
            }
            if (identity)
                break; /* not even steepest descent makes progress */
            set_identity(h, n, 1);
            identity = rescale = 1;
            continue;
        }
        iter++;
        for (size_t i = 0; i < n; i++) {
            s[i] = xn[i] - x[i];
            y[i] = gn[i] - g[i];
        }
        sy = dot(s, y, n);
        if (sy > 1e-12 * sqrt(dot(s, s, n) * dot(y, y, n))) {
            if (rescale) {
                set_identity(h, n, sy / dot(y, y, n));
                rescale = 0;
            }
            /* H += ((s'y + y'Hy) / (s'y)^2) ss' - (Hy s' + s y'H) / s'y, H symmetric. */
            for (size_t i = 0; i < n; i++)
                hy[i] = dot(&h[i * n], y, n);
            yhy = dot(y, hy, n);
            for (size_t i = 0; i < n; i++)
                for (size_t j = 0; j < n; j++)
                    h[i * n + j] += (sy + yhy) / (sy * sy) * s[i] * s[j] - (hy[i] * s[j] + s[i] * hy[j]) / sy;
            identity = 0;
        }
        memcpy(x, xn, n * sizeof(*x));
        memcpy(g, gn, n * sizeof(*g));
        f = fnew;
    }

    res->f = f;
    res->grad_norm = gnorm;
    res->iterations = iter;
    res->fevals = p.fevals;
    res->converged = converged;
    res->method = WK_OPTIM_BFGS;
    res->bfgs_failed = !converged;
    return converged ? 0 : ERR_INTERNAL;
}

/*
 * One Nelder-Mead run from x (value *f) with a simplex of edge step; on
 * return x and *f are the best vertex. Returns 1 if the simplex met the
 * tolerances, 0 if the iteration budget ran out first.
 */
static int run_simplex(struct st_problem_t *p, double *x, double *f, double step, const wk_optim_opts_t *opts,
                       int *iters)
{
    size_t n = p->n, m = n + 1;
    double v[(WK_OPTIM_MAX_DIM + 1) * WK_OPTIM_MAX_DIM], fv[WK_OPTIM_MAX_DIM + 1];
    double cen[WK_OPTIM_MAX_DIM], xr[WK_OPTIM_MAX_DIM], xt[WK_OPTIM_MAX_DIM], fr, ft;
    size_t ord[WK_OPTIM_MAX_DIM + 1];
    int met = 0;

    memcpy(v, x, n * sizeof(*x));
    fv[0] = *f;
    for (size_t k = 1; k < m; k++) {
        double *vk = &v[k * n];
        memcpy(vk, x, n * sizeof(*x));
        vk[k - 1] += step;
        if (eval_value(p, vk, &fv[k]) != 0) {
            vk[k - 1] = x[k - 1] - step; /* try the other side of a domain boundary */
            if (eval_value(p, vk, &fv[k]) != 0)
                fv[k] = INFINITY;
        }
    }
    for (size_t k = 0; k < m; k++)
        ord[k] = k;

    for (;;) {
        const double *best, *worst;
        double xspread = 0, fspread = 0;

        /* Insertion sort of the vertex indices by value; ties keep their order. */
        for (size_t k = 1; k < m; k++) {
            size_t t = ord[k], j = k;
            for (; j > 0 && fv[ord[j - 1]] > fv[t]; j--)
                ord[j] = ord[j - 1];
            ord[j] = t;
        }
        best = &v[ord[0] * n];
        worst = &v[ord[n] * n];
        for (size_t k = 1; k < m; k++) {
            const double *vk = &v[ord[k] * n];
            for (size_t i = 0; i < n; i++)
                xspread = fmax(xspread, fabs(vk[i] - best[i]));
            fspread = fmax(fspread, fv[ord[k]] - fv[ord[0]]);
        }
        if (xspread <= opts->nm_xtol && fspread <= opts->nm_ftol * fmax(1, fabs(fv[ord[0]]))) {
            met = 1;
            break;
        }
        if (*iters >= opts->nm_max_iter)
            break;
        (*iters)++;

        memset(cen, 0, n * sizeof(*cen));
        for (size_t k = 0; k < n; k++)
            for (size_t i = 0; i < n; i++)
                cen[i] += v[ord[k] * n + i] / n;
        for (size_t i = 0; i < n; i++)
            xr[i] = cen[i] + (cen[i] - worst[i]);
        if (eval_value(p, xr, &fr) != 0)
            fr = INFINITY;

        if (fr < fv[ord[0]]) {
            for (size_t i = 0; i < n; i++)
                xt[i] = cen[i] + 2 * (cen[i] - worst[i]);
            if (eval_value(p, xt, &ft) != 0)
                ft = INFINITY;
            if (ft < fr) {
                memcpy(&v[ord[n] * n], xt, n * sizeof(*xt));
                fv[ord[n]] = ft;
            } else {
                memcpy(&v[ord[n] * n], xr, n * sizeof(*xr));
                fv[ord[n]] = fr;
            }
            continue;
        }
        if (fr < fv[ord[n - 1]]) {
            memcpy(&v[ord[n] * n], xr, n * sizeof(*xr));
            fv[ord[n]] = fr;
            continue;
        }
        if (fr < fv[ord[n]]) {
            for (size_t i = 0; i < n; i++) /* outside contraction */
                xt[i] = cen[i] + 0.5 * (xr[i] - cen[i]);
            if (eval_value(p, xt, &ft) != 0)
                ft = INFINITY;
            if (ft <= fr) {
                memcpy(&v[ord[n] * n], xt, n * sizeof(*xt));
                fv[ord[n]] = ft;
                continue;
            }
        } else {
            for (size_t i = 0; i < n; i++) /* inside contraction */
                xt[i] = cen[i] + 0.5 * (worst[i] - cen[i]);
            if (eval_value(p, xt, &ft) != 0)
                ft = INFINITY;
            if (ft < fv[ord[n]]) {
                memcpy(&v[ord[n] * n], xt, n * sizeof(*xt));
                fv[ord[n]] = ft;
                continue;
            }
        }
        /* Shrink towards the best vertex. */
        for (size_t k = 1; k < m; k++) {
            double *vk = &v[ord[k] * n];
            for (size_t i = 0; i < n; i++)
                vk[i] = best[i] + 0.5 * (vk[i] - best[i]);
            if (eval_value(p, vk, &fv[ord[k]]) != 0)
                fv[ord[k]] = INFINITY;
        }
    }
    memcpy(x, &v[ord[0] * n], n * sizeof(*x));
    *f = fv[ord[0]];
    return met;
}

int wk_optim_nelder_mead(size_t n, double *x, wk_optim_fn fn, void *ctx, const wk_optim_opts_t *opts,
                         wk_optim_result_t *res)
{
    wk_optim_opts_t defaults;
    struct st_problem_t p = {n, fn, ctx, 0, 0};
    double f, g[WK_OPTIM_MAX_DIM], fg;
    int iters = 0, converged = 0;

    if (check_args(n, x, fn, res) != 0)
        return ERR_INVALID;
    if (opts == NULL) {
        wk_optim_default_opts(&defaults);
        opts = &defaults;
    }
    p.analytic = opts->analytic_grad;
    if (eval_value(&p, x, &f) != 0) {
        res->fevals = p.fevals;
        return ERR_INVALID;
    }
    for (int run = 0; run <= NM_MAX_RESTARTS; run++) {
        double before = f;
        int met = run_simplex(&p, x, &f, opts->nm_step, opts, &iters);
        if (!met)
            break;
        /* A restart that cannot improve confirms the minimum. */
        if (run > 0 && before - f <= opts->nm_ftol * fmax(1, fabs(f))) {
            converged = 1;
            break;
        }
    }

    res->f = f;
    res->grad_norm = eval_value_grad(&p, x, &fg, g) == 0 ? max_abs(g, n) : -1;
    res->iterations = iters;
    res->fevals = p.fevals;
    res->converged = converged;
    res->method = WK_OPTIM_NELDER_MEAD;
    res->bfgs_failed = 0;
    return converged ? 0 : ERR_INTERNAL;
}

int wk_optim_minimise(size_t n, double *x, wk_optim_fn fn, void *ctx, const wk_optim_opts_t *opts,
                      wk_optim_result_t *res)
{
    wk_optim_opts_t defaults;
    wk_optim_result_t nm;
    int ret, bfgs_iters, bfgs_fevals;

    if (opts == NULL) {
        wk_optim_default_opts(&defaults);
        opts = &defaults;
    }
    ret = wk_optim_bfgs(n, x, fn, ctx, opts, res);
    if (ret != ERR_INTERNAL || !opts->fallback)
        return ret;
    bfgs_iters = res->iterations;
    bfgs_fevals = res->fevals;
    ret = wk_optim_nelder_mead(n, x, fn, ctx, opts, &nm);
    if (ret == ERR_INVALID) /* cannot happen: BFGS evaluated x */
        return ERR_INTERNAL;
    *res = nm;
    res->iterations += bfgs_iters;
    res->fevals += bfgs_fevals;
    res->bfgs_failed = 1;
    return ret;
}
