/*
 * worker/optim.h - small unconstrained minimisers: BFGS and Nelder-Mead.
 *
 * For the maximum-likelihood fits of worker/clv_model.c (3 or 4 parameters
 * on a log scale), but generic. The objective is a callback that fills the
 * value and, when asked, the gradient; without an analytic gradient BFGS
 * uses central differences. wk_optim_minimise() runs BFGS and, if BFGS does
 * not converge, Nelder-Mead from the best point BFGS reached. Everything
 * lives on the stack (at most WK_OPTIM_MAX_DIM parameters): no allocation,
 * no global state, safe from any thread as long as the callback is.
 */
#ifndef CLIENTELE_WORKER_OPTIM_H
#define CLIENTELE_WORKER_OPTIM_H

#include <stddef.h>

#define WK_OPTIM_MAX_DIM 16

/*
 * The objective at x[0..n): stores f(x) in *f and, when grad != NULL, the
 * gradient in grad[0..n). Returns 0, or a negative value when f is not
 * defined at x; the minimisers then treat x as infinitely bad (line
 * searches step back, Nelder-Mead rejects the point). A non-finite *f is
 * treated the same way.
 */
typedef int (*wk_optim_fn)(const double *x, double *f, double *grad, void *ctx);

typedef enum {
    WK_OPTIM_BFGS = 1,
    WK_OPTIM_NELDER_MEAD = 2,
} wk_optim_method_t;

typedef struct st_wk_optim_opts_t {
    int analytic_grad; /* 1: fn fills grad; 0: central differences (fn is always called with grad == NULL) */
    int fallback;      /* wk_optim_minimise(): 1 runs Nelder-Mead when BFGS fails (default 1) */
    int max_iter;      /* BFGS iterations (default 500) */
    int nm_max_iter;   /* Nelder-Mead iterations over all restarts (default 20000) */
    double gtol;       /* BFGS converged when max |grad_i| <= gtol (default 1e-9) */
    double nm_step;    /* edge of the first Nelder-Mead simplex, absolute (default 0.25) */
    double nm_xtol; /* NM converged when every vertex is within nm_xtol of the best, per coordinate (default 1e-10) */
    double nm_ftol; /* ... and every value within nm_ftol * max(1, |f_best|) of the best (default 1e-14) */
} wk_optim_opts_t;

typedef struct st_wk_optim_result_t {
    double f;         /* objective at the returned x */
    double grad_norm; /* max |grad_i| at the returned x (analytic or central differences), -1 if not computable */
    int iterations;   /* BFGS iterations plus Nelder-Mead iterations */
    int fevals;       /* calls of fn, gradient evaluations included */
    int converged;    /* 1 if the method that produced x met its convergence test */
    int method;       /* wk_optim_method_t that produced x */
    int bfgs_failed;  /* 1 if BFGS ran and did not converge */
} wk_optim_result_t;

/* Fills *opts with the defaults documented above. */
void wk_optim_default_opts(wk_optim_opts_t *opts);

/*
 * BFGS on the inverse Hessian, started from x[0..n), with a weak-Wolfe line
 * search (Armijo sufficient decrease plus curvature, bracketing with safe
 * interpolation; within 1e-10 relative of f the decrease is judged on the
 * slope, see optim.c). Converged when max |grad_i| <= gtol, or when the
 * decrease a full quasi-Newton step promises is below the rounding level
 * of f. Fails when the line search finds no acceptable step even along
 * steepest descent, or after max_iter iterations. On return x holds the
 * last iterate (no worse than the start beyond rounding noise) and *res is
 * filled, whatever the outcome. opts may be NULL for the defaults.
 * Returns 0 when converged; ERR_INTERNAL when not converged; ERR_INVALID
 * when n is 0 or above WK_OPTIM_MAX_DIM, a pointer is NULL, or fn fails or
 * is not finite at the starting point (x and *res then untouched, except
 * res->fevals).
 */
int wk_optim_bfgs(size_t n, double *x, wk_optim_fn fn, void *ctx, const wk_optim_opts_t *opts, wk_optim_result_t *res);

/*
 * Nelder-Mead (reflection 1, expansion 2, contractions 1/2, shrink 1/2)
 * from a right-angled simplex of edge nm_step at x. When the simplex meets
 * the nm_xtol / nm_ftol test the search restarts from the best vertex with
 * a fresh simplex, and is converged once a restart no longer improves the
 * value by more than nm_ftol (guards against collapsed simplices; at most
 * 5 restarts, all within nm_max_iter). x is the best vertex found.
 * res->grad_norm is computed at the end. Same returns and conventions as
 * wk_optim_bfgs().
 */
int wk_optim_nelder_mead(size_t n, double *x, wk_optim_fn fn, void *ctx, const wk_optim_opts_t *opts,
                         wk_optim_result_t *res);

/*
 * BFGS, then (if opts->fallback and BFGS did not converge) Nelder-Mead from
 * the best BFGS point. res->iterations and res->fevals add up both runs;
 * res->method says which produced x, res->bfgs_failed whether BFGS failed.
 * Same returns as wk_optim_bfgs().
 */
int wk_optim_minimise(size_t n, double *x, wk_optim_fn fn, void *ctx, const wk_optim_opts_t *opts,
                      wk_optim_result_t *res);

#endif
