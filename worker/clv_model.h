/*
 * worker/clv_model.h - BG/NBD and Gamma-Gamma customer-lifetime-value models (numerical core of run kind "clv").
 *
 * The pipeline: wk_clv_summarise() turns one customer's purchase days and
 * amounts into (x, t_x, T, zbar); wk_bgnbd_data_init() and
 * wk_gg_data_init() collapse those rows into weighted unique rows;
 * wk_bgnbd_fit() (Fader, Hardie & Lee 2005) and wk_gg_fit() (Fader &
 * Hardie 2013) find maximum-likelihood parameters; the per-customer
 * functions then score each customer. Time is in whatever unit the caller
 * chose for t_x and T (weeks in the CDNOW acceptance tests); alpha and the
 * horizons use the same unit.
 *
 * Everything is pure computation: no I/O, no global state, thread-safe.
 * Callers own all memory; the data sets own malloc'ed arrays released by
 * their _free function. Functions return 0 or a negative err_t
 * (common/err.h): ERR_INVALID for bad input, ERR_NOT_FOUND for a customer
 * with no purchase in the calibration period, ERR_INTERNAL for an
 * allocation failure, a fit that did not converge or a special function
 * that could not be evaluated. No function returns NaN or infinity in a
 * result; outputs are written only on success unless stated otherwise.
 */
#ifndef CLIENTELE_WORKER_CLV_MODEL_H
#define CLIENTELE_WORKER_CLV_MODEL_H

#include <stddef.h>
#include <stdint.h>

/* Longest horizon wk_clv_lifetime_value() accepts, in time units. */
#define WK_CLV_MAX_HORIZON 100000

/* One customer's calibration summary. */
typedef struct st_wk_clv_summary_t {
    double x;    /* repeat purchases: distinct purchase days after the first */
    double t_x;  /* time from first to last purchase day (0 when x = 0) */
    double T;    /* time from first purchase day to the end of calibration */
    double zbar; /* mean value of the x repeat purchase days, currency units; 0 when x = 0 */
} wk_clv_summary_t;

typedef struct st_wk_bgnbd_params_t {
    double r, alpha; /* gamma heterogeneity of the purchase rate (shape, rate in 1 / time unit) */
    double a, b;     /* beta heterogeneity of the dropout probability */
} wk_bgnbd_params_t;

typedef struct st_wk_gg_params_t {
    double p, q, gamma; /* Gamma-Gamma spend model (shape, shape, scale in currency units) */
} wk_gg_params_t;

/* Diagnostics of one fit. */
typedef struct st_wk_clv_fit_info_t {
    double log_likelihood; /* weighted SUM of per-customer log-likelihoods at the estimate */
    double objective;      /* -log_likelihood / customers + penalizer * sum(params^2): what was minimised */
    double grad_norm;      /* max |d objective / d log(param)| at the estimate, -1 if not computable */
    int iterations;        /* optimiser iterations, BFGS and Nelder-Mead together */
    int fevals;            /* objective evaluations */
    int converged;         /* 1 if the optimiser met its convergence test */
    int used_fallback;     /* 1 if BFGS failed and Nelder-Mead produced the estimate */
    double customers;      /* total weight (customers) in the fit */
    size_t unique_rows;    /* distinct rows after collapsing */
} wk_clv_fit_info_t;

/*
 * BG/NBD data: the distinct (x, t_x, T) rows, sorted by x, T, t_x, with
 * their counts as weights. t_x is set to 0 for x = 0 before collapsing (it
 * does not enter the likelihood there). The public arrays are read-only.
 */
typedef struct st_wk_bgnbd_data_t {
    size_t n;      /* distinct rows */
    double weight; /* sum of w, the number of customers */
    const double *x, *t_x, *T, *w;
    size_t _ngroups;    /* runs of rows with equal x */
    size_t *_group_end; /* row index one past each run */
    double *_group_w;   /* sum of w over each run */
    void *_mem;
} wk_bgnbd_data_t;

/* Gamma-Gamma data: distinct (x, zbar) rows with x > 0 and zbar > 0, sorted by x, zbar, with weights. */
typedef struct st_wk_gg_data_t {
    size_t n;
    double weight;
    size_t excluded; /* input rows left out for x = 0 or zbar <= 0 */
    const double *x, *zbar, *w;
    size_t _ngroups;
    size_t *_group_end;
    double *_group_w;   /* sum of w over each run of equal x */
    double *_group_wlz; /* sum of w log(zbar) over each run */
    void *_mem;
} wk_gg_data_t;

/*
 * One customer's summary from purchase days days[0..n) (any day numbering,
 * e.g. days since 1970-01-01, sorted ascending) and amounts in cents
 * cents[0..n), counting only days <= end_day. Rows of the same day are one
 * purchase day and their amounts add up. time_unit is the length of the
 * time unit in days (7 for weeks). x = purchase days - 1, t_x = (last -
 * first) / time_unit, T = (end_day - first) / time_unit, zbar = mean over
 * the repeat purchase days of the day's summed amount, in currency units
 * (cents / 100); 0 when x = 0. Returns 0; ERR_NOT_FOUND when no day is <=
 * end_day (the customer is not in the calibration cohort); ERR_INVALID for
 * NULL pointers with n > 0, unsorted days, or time_unit not positive.
 */
int wk_clv_summarise(const int32_t *days, const int64_t *cents, size_t n, int32_t end_day, double time_unit,
                     wk_clv_summary_t *out);

/*
 * Sorts and collapses rows[0..n) into *data (zbar is ignored). Every row
 * must have a finite integer x >= 0, a finite T >= 0 and, when x > 0,
 * 0 <= t_x <= T (t_x is ignored when x = 0).
 * Returns 0; ERR_INVALID for n = 0, NULL pointers or an invalid row (data
 * then holds nothing to free); ERR_INTERNAL if out of memory.
 * Release with wk_bgnbd_data_free().
 */
int wk_bgnbd_data_init(wk_bgnbd_data_t *data, const wk_clv_summary_t *rows, size_t n);
void wk_bgnbd_data_free(wk_bgnbd_data_t *data);

/*
 * Weighted sum of the BG/NBD log-likelihoods at *params into *ll.
 * Returns 0, or ERR_INVALID for a parameter that is not finite and positive.
 */
int wk_bgnbd_loglik(const wk_bgnbd_data_t *data, const wk_bgnbd_params_t *params, double *ll);

/*
 * Maximum-likelihood BG/NBD parameters into *out. Minimises the mean
 * negative log-likelihood plus penalizer * (r^2 + alpha^2 + a^2 + b^2) (as
 * the lifetimes library does; 0 for plain maximum likelihood) over the
 * logarithms of the parameters, by BFGS with the analytic gradient and
 * Nelder-Mead if BFGS fails. init is the starting point, or NULL for r = a
 * = b = 1 and alpha = the mean T. info may be NULL. Returns 0 when
 * converged; ERR_INTERNAL when not converged (*out and *info still hold
 * the best point found) or on numerical failure; ERR_INVALID for NULL
 * data or out, an empty data set, a negative or non-finite penalizer, or
 * an init that is not finite and positive.
 */
int wk_bgnbd_fit(const wk_bgnbd_data_t *data, double penalizer, const wk_bgnbd_params_t *init, wk_bgnbd_params_t *out,
                 wk_clv_fit_info_t *info);

/* wk_bgnbd_data_init() + wk_bgnbd_fit() + wk_bgnbd_data_free(); same returns. */
int wk_bgnbd_fit_rows(const wk_clv_summary_t *rows, size_t n, double penalizer, wk_bgnbd_params_t *out,
                      wk_clv_fit_info_t *info);

/*
 * Probability that a customer with summary (x, t_x, T) is still alive:
 * 1 / (1 + [x > 0] a / (b + x - 1) ((alpha + T) / (alpha + t_x))^(r + x)),
 * computed in the log domain (it underflows to 0 for very active customers
 * who then went silent). Returns 0, or ERR_INVALID for invalid parameters
 * or summary (same rules as wk_bgnbd_data_init()).
 */
int wk_bgnbd_p_alive(const wk_bgnbd_params_t *params, double x, double t_x, double T, double *out);

/*
 * Expected purchases in (T, T + t] of a customer with summary (x, t_x, T),
 * t >= 0 (Fader, Hardie & Lee 2005, eq. 10). 0 without computing 2F1 when
 * P(alive) underflows to 0. Returns 0; ERR_INVALID for invalid input;
 * ERR_INTERNAL if 2F1 cannot be evaluated (e.g. t so long against
 * alpha + T that t / (alpha + T + t) rounds to 1).
 */
int wk_bgnbd_expected_conditional(const wk_bgnbd_params_t *params, double x, double t_x, double T, double t,
                                  double *out);

/* E[X(t)], expected purchases in (0, t] of a new customer (eq. 9). Same returns. */
int wk_bgnbd_expected_new(const wk_bgnbd_params_t *params, double t, double *out);

/*
 * Conditional expected average value of a customer's future purchases:
 * p (gamma + x zbar) / (p x + q - 1), i.e. the population mean p gamma /
 * (q - 1) shrunk towards the customer's zbar. x = 0 gives the population
 * mean. Returns 0, or ERR_INVALID for invalid parameters, x or zbar
 * negative or not finite, or p x + q <= 1 (infinite mean).
 */
int wk_gg_expected_value(const wk_gg_params_t *params, double x, double zbar, double *out);

/*
 * Sorts and collapses the rows with x > 0 and zbar > 0 of rows[0..n) into
 * *data (t_x and T are ignored); the others (no repeat purchase, or a
 * repeat spend of zero or less, e.g. after refunds) are counted in
 * data->excluded. Returns 0; ERR_INVALID for NULL pointers, an x that is
 * not a finite integer >= 0 or a zbar that is not finite; ERR_NOT_FOUND if
 * no row qualifies (data then holds nothing to free); ERR_INTERNAL if out
 * of memory. Release with wk_gg_data_free().
 */
int wk_gg_data_init(wk_gg_data_t *data, const wk_clv_summary_t *rows, size_t n);
void wk_gg_data_free(wk_gg_data_t *data);

/*
 * Weighted sum of the Gamma-Gamma log-likelihoods (the density of the mean
 * zbar of x spends) at *params. Returns 0 or ERR_INVALID.
 */
int wk_gg_loglik(const wk_gg_data_t *data, const wk_gg_params_t *params, double *ll);

/*
 * Maximum-likelihood Gamma-Gamma parameters; like wk_bgnbd_fit() (penalizer
 * on p^2 + q^2 + gamma^2; NULL init means p = q = 1 and gamma = mean zbar).
 */
int wk_gg_fit(const wk_gg_data_t *data, double penalizer, const wk_gg_params_t *init, wk_gg_params_t *out,
              wk_clv_fit_info_t *info);

/* wk_gg_data_init() + wk_gg_fit() + wk_gg_data_free(); same returns. */
int wk_gg_fit_rows(const wk_clv_summary_t *rows, size_t n, double penalizer, wk_gg_params_t *out,
                   wk_clv_fit_info_t *info);

/*
 * Customer lifetime value over horizon time units with discount rate
 * discount per unit: sum over k = 1..horizon of (E[Y(k)] - E[Y(k-1)]) *
 * value / (1 + discount)^k, E[Y(k)] being wk_bgnbd_expected_conditional()
 * at t = k. With discount = 0 this is E[Y(horizon)] * value. value is the
 * expected value per purchase (e.g. from wk_gg_expected_value()). With
 * discount != 0 the cost grows with the horizon: about 2 us for 52 units
 * at CDNOW-like tenures, up to about 12 us for customers seen only days.
 * Returns 0; ERR_INVALID for invalid input, horizon < 0 or above
 * WK_CLV_MAX_HORIZON, discount <= -1 or a non-finite value; ERR_INTERNAL
 * if 2F1 cannot be evaluated.
 */
int wk_clv_lifetime_value(const wk_bgnbd_params_t *params, double x, double t_x, double T, double value, int horizon,
                          double discount, double *out);

#endif
