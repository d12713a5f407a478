/*
 * bench/clv_gen.c - orders drawn from the BG/NBD and Gamma-Gamma stories, as COPY text, for bench/clv.sh.
 *
 * Usage: clv_gen CUSTOMERS SEED START_EPOCH WINDOW_DAYS END_DAYS r alpha a b p q gamma
 *
 * Writes to stdout one line per order, "customer_id<TAB>ordered_at<TAB>
 * completed<TAB>EUR<TAB>total", ready for COPY orders (customer_id,
 * ordered_at, status, currency, total) FROM STDIN, for customers 1 to
 * CUSTOMERS in order (the caller creates them with exactly these ids).
 * Every customer, with times in weeks as in Fader, Hardie & Lee (2005):
 *   - purchase rate lambda ~ Gamma(shape r, rate alpha), dropout
 *     probability p ~ Beta(a, b);
 *   - a first purchase at a uniform instant of the first WINDOW_DAYS days
 *     after START_EPOCH;
 *   - then purchases after Exp(lambda) gaps until END_DAYS days after
 *     START_EPOCH, the customer leaving for good with probability p right
 *     after each repeat purchase (never after the first, as in the model's
 *     likelihood);
 *   - and, as in Fader & Hardie (2013), a spend per purchase z ~
 *     Gamma(shape p, rate nu) with nu ~ Gamma(shape q, rate gamma), so the
 *     mean spend is p gamma / (q - 1); amounts are rounded to cents.
 * Times are continuous and an order carries its purchase's time of day.
 * The model counts purchases, the run counts purchase days (orders of one
 * UTC day are one purchase), so a purchase that falls on the day of the
 * customer's previous one is recorded on the next free day instead; the
 * process itself goes on from the drawn instant. Merging those purchases
 * instead would bias the fit (with r = 0.25 and alpha = 4 weeks, about 1%
 * of purchases share a day, and dropping them lowers the estimated
 * heterogeneity of the rates: r +2% and alpha +6%), while moving them by
 * a day changes the times by far less than the fit can see. Purchases
 * moved past END_DAYS are dropped.
 *
 * Everything comes from one xorshift64* stream seeded with SEED, so the
 * same arguments always give the same bytes. A summary goes to stderr.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static uint64_t state;

/* Uniform in (0, 1): never 0, so logarithms stay finite. */
static double uniform01(void)
{
    state ^= state >> 12;
    state ^= state << 25;
    state ^= state >> 27;
    return (double)((state * 2685821657736338717ULL) >> 11) * (1.0 / 9007199254740992.0) + 0x1p-54;
}

static double std_normal(void)
{
    return sqrt(-2 * log(uniform01())) * cos(2 * M_PI * uniform01());
}

/* Gamma(shape, 1) by Marsaglia and Tsang; a shape below 1 through the u^(1/shape) boost. */
static double gamma_variate(double shape)
{
    double boost = 1;
    if (shape < 1) {
        boost = pow(uniform01(), 1 / shape);
        shape += 1;
    }
    double d = shape - 1.0 / 3, c = 1 / sqrt(9 * d);
    for (;;) {
        double z = std_normal(), v = 1 + c * z;
        if (v <= 0)
            continue;
        v = v * v * v;
        if (log(uniform01()) < 0.5 * z * z + d - d * v + d * log(v))
            return boost * d * v;
    }
}

static double arg(char **argv, int i)
{
    char *end;
    double v = strtod(argv[i], &end);
    if (*end != '\0' || !isfinite(v) || v <= 0) {
        fprintf(stderr, "clv_gen: argument %d (%s) must be a positive number\n", i, argv[i]);
        exit(2);
    }
    return v;
}

int main(int argc, char **argv)
{
    if (argc != 13) {
        fprintf(stderr, "usage: clv_gen CUSTOMERS SEED START_EPOCH WINDOW_DAYS END_DAYS r alpha a b p q gamma\n");
        return 2;
    }
    long long customers = (long long)arg(argv, 1);
    state = (uint64_t)strtoull(argv[2], NULL, 10) * 0x9E3779B97F4A7C15ULL + 1;
    long long start = (long long)arg(argv, 3);
    double window = arg(argv, 4), end = arg(argv, 5);
    double r = arg(argv, 6), alpha = arg(argv, 7), a = arg(argv, 8), b = arg(argv, 9);
    double p = arg(argv, 10), q = arg(argv, 11), gamma = arg(argv, 12);

    static char buf[1 << 20];
    setvbuf(stdout, buf, _IOFBF, sizeof(buf));
    /* "YYYY-MM-DD " of every day of the period, formatted once. */
    int ndays = (int)ceil(end) + 1;
    char(*dates)[16] = calloc((size_t)ndays, sizeof(*dates));
    if (dates == NULL)
        return 1;
    for (int d = 0; d < ndays; d++) {
        time_t t = (time_t)(start + 86400LL * d);
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(dates[d], sizeof(dates[d]), "%Y-%m-%d ", &tm);
    }

    long long orders = 0, repeat_buyers = 0, nudged = 0;
    double spend = 0;
    for (long long id = 1; id <= customers; id++) {
        double lambda = gamma_variate(r) / alpha; /* purchases per week */
        double ga = gamma_variate(a), gb = gamma_variate(b), drop = ga / (ga + gb);
        double nu = gamma_variate(q) / gamma;
        double t = uniform01() * window; /* days since start */
        int n = 0, last_day = -1;
        for (;;) {
            double z = gamma_variate(p) / nu;
            long long cents = llround(z * 100);
            long long secs = (long long)floor(t * 86400);
            int day = (int)(secs / 86400), sod = (int)(secs % 86400);
            if (day <= last_day) {
                /* One purchase per day: the next free day, same time of day (see the top of the file). */
                day = last_day + 1;
                nudged++;
            }
            if (day >= ndays - 1)
                break;
            last_day = day;
            printf("%lld\t%s%02d:%02d:%02d+00\tcompleted\tEUR\t%lld.%02lld\n", id, dates[day], sod / 3600,
                   sod / 60 % 60, sod % 60, cents / 100, cents % 100);
            orders++;
            spend += (double)cents / 100;
            if (n++ > 0 && uniform01() < drop)
                break;
            t += -log(uniform01()) / lambda * 7;
            if (t >= end)
                break;
        }
        repeat_buyers += n > 1;
    }
    if (fflush(stdout) != 0) {
        perror("clv_gen: stdout");
        return 1;
    }
    fprintf(stderr,
            "clv_gen: %lld customers, %lld orders (%lld moved to the next free day), %lld customers bought more than"
            " once, mean spend %.2f\n",
            customers, orders, nudged, repeat_buyers, spend / (double)orders);
    free(dates);
    return 0;
}
