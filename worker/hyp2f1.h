/*
 * worker/hyp2f1.h - the Gauss hypergeometric function 2F1(a, b; c; z) for real arguments.
 *
 * The BG/NBD expectations of worker/clv_model.c need 2F1 at z in [0, 1),
 * often close to 1 for long horizons. wk_hyp2f1() is pure: no state, no
 * allocation, safe from any thread. It aims at a relative error around
 * 1e-13 for moderate parameters (|a|, |b|, |c| up to a few hundred) and
 * never returns NaN or infinity: a series that does not converge within
 * its term limit, or a result that does not fit a double, is an error code
 * instead.
 *
 * Methods (details in hyp2f1.c): the power series; analytic continuation
 * of the hypergeometric ODE by Taylor steps towards z = 1; the 1 - z
 * connection formula when c < -2; Pfaff's transformation z -> z / (z - 1)
 * for z < 0. Accuracy is lower where the series terms cancel (a or b well
 * below zero with the other large, or z < 0 with c below a or b).
 */
#ifndef CLIENTELE_WORKER_HYP2F1_H
#define CLIENTELE_WORKER_HYP2F1_H

/*
 * Computes 2F1(a, b; c; z) into *out for finite real a, b, c and z < 1.
 * Returns 0; ERR_INVALID when an argument is not finite, z >= 1, out is
 * NULL, or c is zero or a negative integer (the function is undefined);
 * ERR_INTERNAL when a series does not converge within its term limit or
 * the result overflows. *out is written only on success.
 */
int wk_hyp2f1(double a, double b, double c, double z, double *out);

#endif
