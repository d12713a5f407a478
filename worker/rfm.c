/*
 * worker/rfm.c - RFM scores, segments, lifecycle stages and ABC value tiers.
 *
 * The whole computation is three sorts of one uint32_t index array (the
 * caller's scratch, 4 bytes per customer) holding the customers with
 * qualifying orders: by last_order_at, by frequency, and by (monetary
 * descending, customer_id ascending). After each sort, tie groups are
 * adjacent, so w (the number of strictly worse values) of every member of a
 * group is the group's start, or for the descending order the number of
 * customers after the group. The third order is also the ABC order, so the
 * tiers come from a running sum over it. Dates and lifecycle need no order
 * and are done in one linear pass, segments and statistics in another.
 *
 * The sort is a most-significant-digit radix sort on integer keys, which
 * beats a comparison sort here because every comparison of a comparison
 * sort would chase an index into the 48 MB customer array. Its first step
 * distributes indexes by the top 11 bits of each key's range while reading
 * the customers front to back; the resulting small buckets are sorted in
 * place (American flag sort, 8-bit digits rescaled to each bucket's own key
 * range) and scored as soon as they are final, while their records are
 * still in cache. Each level costs O(size of its bucket) and narrows the key
 * range by 8 bits, so the depth is bounded by the key width (at most 11
 * levels below the first for a monetary key, plus 12 for the id tie-break)
 * and the worst case is a constant multiple of N; typical data needs two
 * levels, and a run of equal keys ends the recursion at once. Nothing here
 * allocates, keeps state or uses floating point; the deepest recursion uses
 * under 100 KiB of stack. See worker/rfm.h for the definitions this
 * implements.
 */
#include <string.h>

#include "common/err.h"
#include "rfm.h"

#define SECONDS_PER_DAY 86400
#define INSERTION_SORT_MAX 32
#define RADIX_BITS 8
#define RADIX_BUCKETS (1u << RADIX_BITS)
#define TOP_BITS 11
#define TOP_BUCKETS (1u << TOP_BITS)
#define SIGN_BIT_64 ((uint64_t)1 << 63)
#define SIGN_BIT_128 ((u128_t)1 << 127)

_Static_assert(sizeof(wk_rfm_customer_t) == 48, "wk_rfm_customer_t is part of the 64-byte budget");
_Static_assert(sizeof(wk_rfm_result_t) == 12, "wk_rfm_result_t is part of the 64-byte budget");

/* The orders the index array gets sorted in. */
typedef enum { ORDER_LAST_ORDER_AT, ORDER_FREQUENCY, ORDER_MONETARY_DESC, ORDER_ID } order_t;

typedef unsigned __int128 u128_t;

/* One sort-and-score pass over the scored customers. */
typedef struct st_pass_t {
    const wk_rfm_customer_t *c;
    wk_rfm_result_t *res;
    const wk_rfm_params_t *params;
    order_t order; /* the order being scored */
    size_t nq;     /* customers with qualifying orders */
    size_t done;   /* positions already emitted, in sorted order */
    dec_t total;   /* S, for the tiers */
    dec_t before;  /* monetary of the customers ahead, for the tiers */
    int err;
} pass_t;

static const char *const segment_names[WK_RFM_SEGMENT__COUNT] = {
    [WK_RFM_SEGMENT_PROSPECT] = "prospect",
    [WK_RFM_SEGMENT_CHAMPIONS] = "champions",
    [WK_RFM_SEGMENT_LOYAL_CUSTOMERS] = "loyal_customers",
    [WK_RFM_SEGMENT_POTENTIAL_LOYALISTS] = "potential_loyalists",
    [WK_RFM_SEGMENT_NEW_CUSTOMERS] = "new_customers",
    [WK_RFM_SEGMENT_PROMISING] = "promising",
    [WK_RFM_SEGMENT_NEED_ATTENTION] = "need_attention",
    [WK_RFM_SEGMENT_ABOUT_TO_SLEEP] = "about_to_sleep",
    [WK_RFM_SEGMENT_AT_RISK] = "at_risk",
    [WK_RFM_SEGMENT_CANT_LOSE_THEM] = "cant_lose_them",
    [WK_RFM_SEGMENT_HIBERNATING] = "hibernating",
};

static const char *const lifecycle_names[WK_RFM_LIFECYCLE__COUNT] = {
    [WK_RFM_LIFECYCLE_PROSPECT] = "prospect", [WK_RFM_LIFECYCLE_NEW] = "new",
    [WK_RFM_LIFECYCLE_ACTIVE] = "active",     [WK_RFM_LIFECYCLE_AT_RISK] = "at_risk",
    [WK_RFM_LIFECYCLE_CHURNED] = "churned",
};

static const char *const tier_names[WK_RFM_TIER__COUNT] = {
    [WK_RFM_TIER_NONE] = NULL,
    [WK_RFM_TIER_A] = "A",
    [WK_RFM_TIER_B] = "B",
    [WK_RFM_TIER_C] = "C",
};

/* segment_table[r - 1][f - 1] */
static const uint8_t segment_table[5][5] = {
    /* R1 */ {WK_RFM_SEGMENT_HIBERNATING, WK_RFM_SEGMENT_HIBERNATING, WK_RFM_SEGMENT_AT_RISK, WK_RFM_SEGMENT_AT_RISK,
              WK_RFM_SEGMENT_CANT_LOSE_THEM},
    /* R2 */
    {WK_RFM_SEGMENT_HIBERNATING, WK_RFM_SEGMENT_HIBERNATING, WK_RFM_SEGMENT_AT_RISK, WK_RFM_SEGMENT_AT_RISK,
     WK_RFM_SEGMENT_CANT_LOSE_THEM},
    /* R3 */
    {WK_RFM_SEGMENT_ABOUT_TO_SLEEP, WK_RFM_SEGMENT_ABOUT_TO_SLEEP, WK_RFM_SEGMENT_NEED_ATTENTION,
     WK_RFM_SEGMENT_LOYAL_CUSTOMERS, WK_RFM_SEGMENT_LOYAL_CUSTOMERS},
    /* R4 */
    {WK_RFM_SEGMENT_PROMISING, WK_RFM_SEGMENT_POTENTIAL_LOYALISTS, WK_RFM_SEGMENT_POTENTIAL_LOYALISTS,
     WK_RFM_SEGMENT_LOYAL_CUSTOMERS, WK_RFM_SEGMENT_LOYAL_CUSTOMERS},
    /* R5 */
    {WK_RFM_SEGMENT_NEW_CUSTOMERS, WK_RFM_SEGMENT_POTENTIAL_LOYALISTS, WK_RFM_SEGMENT_POTENTIAL_LOYALISTS,
     WK_RFM_SEGMENT_CHAMPIONS, WK_RFM_SEGMENT_CHAMPIONS},
};

const char *wk_rfm_segment_name(int segment)
{
    return segment >= 0 && segment < WK_RFM_SEGMENT__COUNT ? segment_names[segment] : NULL;
}

const char *wk_rfm_lifecycle_name(int lifecycle)
{
    return lifecycle >= 0 && lifecycle < WK_RFM_LIFECYCLE__COUNT ? lifecycle_names[lifecycle] : NULL;
}

const char *wk_rfm_tier_name(int tier)
{
    return tier >= 0 && tier < WK_RFM_TIER__COUNT ? tier_names[tier] : NULL;
}

size_t wk_rfm_scratch_size(size_t n)
{
    return n * sizeof(uint32_t);
}

/* 1 + floor(5 * w / n), for 0 <= w < n. */
static uint8_t compute_score(size_t w, size_t n)
{
    return (uint8_t)(1 + (uint64_t)5 * w / n);
}

/* floor((to - from) / 86400) into *days; ERR_INVALID if the difference overflows. */
static int count_days(int64_t from, int64_t to, int64_t *days)
{
    int64_t diff, q;

    if (__builtin_sub_overflow(to, from, &diff))
        return ERR_INVALID;
    q = diff / SECONDS_PER_DAY;
    if (diff % SECONDS_PER_DAY != 0 && diff < 0)
        --q;
    *days = q;
    return 0;
}

/*
 * An unsigned key that orders customer i as `order` wants, ascending.
 * Signed values get their sign bit flipped; the monetary key is inverted
 * for the descending order. ORDER_ID appends the index to customer_id so
 * that its keys are unique even should ids repeat.
 */
static inline u128_t make_key(const wk_rfm_customer_t *c, order_t order, uint32_t i)
{
    switch (order) {
    case ORDER_LAST_ORDER_AT:
        return (uint64_t)c[i].last_order_at ^ SIGN_BIT_64;
    case ORDER_FREQUENCY:
        return (uint64_t)c[i].frequency ^ SIGN_BIT_64;
    case ORDER_MONETARY_DESC:
        return ~((u128_t)dec_to_units(c[i].monetary) ^ SIGN_BIT_128);
    default:
        return (u128_t)((uint64_t)c[i].customer_id ^ SIGN_BIT_64) << 32 | i;
    }
}

/* Nonzero if customer i goes strictly before customer j; the monetary order falls back on ORDER_ID. */
static int goes_before(const wk_rfm_customer_t *c, order_t order, uint32_t i, uint32_t j)
{
    u128_t ki = make_key(c, order, i), kj = make_key(c, order, j);

    if (ki != kj)
        return ki < kj;
    return order == ORDER_MONETARY_DESC && make_key(c, ORDER_ID, i) < make_key(c, ORDER_ID, j);
}

static void insertion_sort(const wk_rfm_customer_t *c, order_t order, uint32_t *v, size_t n)
{
    size_t i, j;

    for (i = 1; i < n; ++i) {
        uint32_t x = v[i];
        for (j = i; j > 0 && goes_before(c, order, x, v[j - 1]); --j)
            v[j] = v[j - 1];
        v[j] = x;
    }
}

static unsigned count_bits(u128_t x)
{
    uint64_t hi = (uint64_t)(x >> 64);

    if (hi != 0)
        return 128 - (unsigned)__builtin_clzll(hi);
    return x != 0 ? 64 - (unsigned)__builtin_clzll((uint64_t)x) : 0;
}

/* The shift that leaves the top `digit_bits` bits of (key - lo) for keys in [lo, hi]. */
static unsigned choose_shift(u128_t lo, u128_t hi, unsigned digit_bits)
{
    unsigned bits = count_bits(hi - lo);
    return bits > digit_bits ? bits - digit_bits : 0;
}

/*
 * v[done..done+n) are final: score them. Ranges arrive in sorted order and
 * hold whole tie groups (different buckets never share a key), so a group's
 * w is known from its position alone.
 */
static void emit_range(pass_t *ps, const uint32_t *v, size_t n)
{
    const wk_rfm_customer_t *c = ps->c;
    wk_rfm_result_t *res = ps->res;
    size_t k, e, g;

    for (k = 0; k < n; k = e) {
        u128_t key = make_key(c, ps->order, v[k]);
        uint8_t score;
        for (e = k + 1; e < n && make_key(c, ps->order, v[e]) == key; ++e)
            ;
        switch (ps->order) {
        case ORDER_LAST_ORDER_AT:
            score = compute_score(ps->done + k, ps->nq);
            for (g = k; g < e; ++g)
                res[v[g]].r = score;
            break;
        case ORDER_FREQUENCY:
            score = compute_score(ps->done + k, ps->nq);
            for (g = k; g < e; ++g)
                res[v[g]].f = score;
            break;
        default:
            /* Descending: the strictly smaller values are the ones after the group. */
            score = compute_score(ps->nq - (ps->done + e), ps->nq);
            for (g = k; g < e; ++g) {
                wk_rfm_result_t *r = &res[v[g]];
                r->m = score;
                if (dec_cmp_mul(ps->total, ps->params->a_share, ps->before) > 0)
                    r->tier = WK_RFM_TIER_A;
                else if (dec_cmp_mul(ps->total, ps->params->b_share, ps->before) > 0)
                    r->tier = WK_RFM_TIER_B;
                else
                    r->tier = WK_RFM_TIER_C;
                if (dec_add(ps->before, c[v[g]].monetary, &ps->before) != 0)
                    ps->err = ERR_INVALID;
            }
            break;
        }
    }
    ps->done += n;
}

static void sort_range(pass_t *ps, uint32_t *v, size_t n, order_t order);

static int is_sorted(const wk_rfm_customer_t *c, order_t order, const uint32_t *v, size_t n)
{
    size_t k;

    for (k = 1; k < n; ++k) {
        if (goes_before(c, order, v[k], v[k - 1]))
            return 0;
    }
    return 1;
}

/* v[0..n) share one key in `order`: only the monetary order has a tie-break left to apply. */
static void settle_group(pass_t *ps, uint32_t *v, size_t n, order_t order)
{
    /*
     * The first distribution step keeps index order within a bucket, so when
     * the caller loaded customers by id a big group of equal totals often
     * needs no sorting at all.
     */
    if (order == ORDER_MONETARY_DESC && n > 1 && !is_sorted(ps->c, ORDER_ID, v, n))
        sort_range(ps, v, n, ORDER_ID);
    if (order == ps->order)
        emit_range(ps, v, n);
}

/* Finishes, in order, the buckets v[end[b-1]..end[b]) of one distribution step. */
static void finish_buckets(pass_t *ps, uint32_t *v, const uint32_t *end, unsigned nbuckets, unsigned shift,
                           order_t order)
{
    size_t pos = 0, size;
    unsigned b;

    for (b = 0; b < nbuckets; pos = end[b++]) {
        if ((size = end[b] - pos) == 0)
            continue;
        if (shift == 0 || size == 1)
            settle_group(ps, v + pos, size, order); /* a digit of the whole remaining range: one key */
        else
            sort_range(ps, v + pos, size, order);
    }
}

/*
 * Sorts v[0..n) in place by `order`, most significant digit first
 * (American flag sort), and emits the finished ranges in order when
 * `order` is the pass's own. Each level rescales its digits to the actual
 * range [lo, hi] of its keys, so a range of one value ends at once and
 * every level narrows the range by RADIX_BITS bits: the depth is at most
 * 128 / RADIX_BITS, with 2 KiB of stack per level.
 */
static void sort_range(pass_t *ps, uint32_t *v, size_t n, order_t order)
{
    const wk_rfm_customer_t *c = ps->c;
    uint32_t end[RADIX_BUCKETS], next[RADIX_BUCKETS];
    u128_t lo, hi, key;
    unsigned shift, b, d;
    size_t k, pos;

    if (n <= INSERTION_SORT_MAX) {
        insertion_sort(c, order, v, n);
        if (order == ps->order)
            emit_range(ps, v, n);
        return;
    }
    lo = hi = make_key(c, order, v[0]);
    for (k = 1; k < n; ++k) {
        key = make_key(c, order, v[k]);
        lo = key < lo ? key : lo;
        hi = key > hi ? key : hi;
    }
    if (lo == hi) {
        settle_group(ps, v, n, order);
        return;
    }
    shift = choose_shift(lo, hi, RADIX_BITS);
    memset(end, 0, sizeof(end));
    for (k = 0; k < n; ++k)
        ++end[(unsigned)((make_key(c, order, v[k]) - lo) >> shift)];
    for (b = 0, pos = 0; b < RADIX_BUCKETS; ++b) {
        next[b] = (uint32_t)pos;
        pos += end[b];
        end[b] = (uint32_t)pos;
    }
    /* Move every element to its bucket by following cycles; next[b] is the first unsettled slot of bucket b. */
    for (b = 0; b < RADIX_BUCKETS; ++b) {
        while (next[b] < end[b]) {
            uint32_t x = v[next[b]];
            while ((d = (unsigned)((make_key(c, order, x) - lo) >> shift)) != b) {
                uint32_t y = v[next[d]];
                v[next[d]++] = x;
                x = y;
            }
            v[next[b]++] = x;
        }
    }
    finish_buckets(ps, v, end, RADIX_BUCKETS, shift, order);
}

/*
 * Sorts every scored customer into v by ps->order and scores them. The
 * first distribution step reads the customer array front to back (a
 * counting pass and a scatter pass) instead of chasing indexes, and uses
 * TOP_BITS-bit digits, so what is left to sort_range() are small buckets
 * whose records stay in cache while they are sorted and scored.
 */
static int sort_and_score(pass_t *ps, uint32_t *v, size_t n, u128_t lo, u128_t hi)
{
    const wk_rfm_customer_t *c = ps->c;
    uint32_t end[TOP_BUCKETS], next[TOP_BUCKETS];
    unsigned shift = choose_shift(lo, hi, TOP_BITS), b;
    size_t i, pos;

    memset(end, 0, sizeof(end));
    for (i = 0; i < n; ++i) {
        if (c[i].has_orders)
            ++end[(unsigned)((make_key(c, ps->order, (uint32_t)i) - lo) >> shift)];
    }
    for (b = 0, pos = 0; b < TOP_BUCKETS; ++b) {
        next[b] = (uint32_t)pos;
        pos += end[b];
        end[b] = (uint32_t)pos;
    }
    for (i = 0; i < n; ++i) {
        if (c[i].has_orders)
            v[next[(unsigned)((make_key(c, ps->order, (uint32_t)i) - lo) >> shift)]++] = (uint32_t)i;
    }
    ps->done = 0;
    finish_buckets(ps, v, end, TOP_BUCKETS, shift, ps->order);
    return ps->err;
}

/* Pass 2: segments of scored customers and every count and sum of the run. */
static int count_results(const wk_rfm_customer_t *c, size_t n, wk_rfm_result_t *res, wk_rfm_stats_t *stats)
{
    size_t i;

    for (i = 0; i < n; ++i) {
        wk_rfm_result_t *r = &res[i];
        if (r->r != 0) {
            r->segment = segment_table[r->r - 1][r->f - 1];
            if (dec_add(stats->tier_revenue[r->tier], c[i].monetary, &stats->tier_revenue[r->tier]) != 0)
                return ERR_INVALID;
        }
        ++stats->segments[r->segment];
        ++stats->lifecycles[r->lifecycle];
        ++stats->tiers[r->tier];
    }
    return 0;
}

static int check_args(const wk_rfm_customer_t *customers, size_t n, const wk_rfm_params_t *params,
                      wk_rfm_result_t *results, void *scratch, size_t scratch_size, wk_rfm_stats_t *stats)
{
    dec_t zero = {{0}};

    if (stats == NULL || params == NULL)
        return ERR_INVALID;
    if (n > UINT32_MAX)
        return ERR_INVALID;
    if (n > 0 && (customers == NULL || results == NULL || scratch == NULL || scratch_size < wk_rfm_scratch_size(n)))
        return ERR_INVALID;
    if (params->new_days < 0 || params->active_days < 0 || params->churn_days < 0)
        return ERR_INVALID;
    if (dec_cmp(params->a_share, zero) < 0 || dec_cmp(params->a_share, params->b_share) > 0)
        return ERR_INVALID;
    return 0;
}

/*
 * Pass 1: recency and lifecycle of everyone, complete results for
 * prospects, the number of scored customers, S, and the range [lo, hi] of
 * each sort key.
 */
static int collect_customers(const wk_rfm_customer_t *c, size_t n, const wk_rfm_params_t *p, wk_rfm_result_t *res,
                             size_t *nscored, dec_t *total, u128_t *lo, u128_t *hi)
{
    static const order_t orders[3] = {ORDER_LAST_ORDER_AT, ORDER_FREQUENCY, ORDER_MONETARY_DESC};
    size_t i, nq = 0;
    int k;

    for (i = 0; i < n; ++i) {
        wk_rfm_result_t *r = &res[i];
        int64_t recency, age;

        memset(r, 0, sizeof(*r));
        if (!c[i].has_orders) {
            r->recency_days = WK_RFM_RECENCY_NONE;
            r->segment = WK_RFM_SEGMENT_PROSPECT;
            r->lifecycle = WK_RFM_LIFECYCLE_PROSPECT;
            r->tier = WK_RFM_TIER_NONE;
            continue;
        }
        if (count_days(c[i].last_order_at, p->as_of, &recency) != 0 ||
            count_days(c[i].first_order_at, p->as_of, &age) != 0)
            return ERR_INVALID;
        if (recency <= WK_RFM_RECENCY_NONE || recency > INT32_MAX)
            return ERR_INVALID;
        r->recency_days = (int32_t)recency;
        if (age < p->new_days)
            r->lifecycle = WK_RFM_LIFECYCLE_NEW;
        else if (recency <= p->active_days)
            r->lifecycle = WK_RFM_LIFECYCLE_ACTIVE;
        else if (recency <= p->churn_days)
            r->lifecycle = WK_RFM_LIFECYCLE_AT_RISK;
        else
            r->lifecycle = WK_RFM_LIFECYCLE_CHURNED;
        if (dec_add(*total, c[i].monetary, total) != 0)
            return ERR_INVALID;
        for (k = 0; k < 3; ++k) {
            u128_t key = make_key(c, orders[k], (uint32_t)i);
            if (nq == 0 || key < lo[k])
                lo[k] = key;
            if (nq == 0 || key > hi[k])
                hi[k] = key;
        }
        ++nq;
    }
    *nscored = nq;
    return 0;
}

int wk_rfm_score(const wk_rfm_customer_t *customers, size_t n, const wk_rfm_params_t *params, wk_rfm_result_t *results,
                 void *scratch, size_t scratch_size, wk_rfm_stats_t *stats)
{
    pass_t ps = {.c = customers, .res = results, .params = params};
    u128_t lo[3] = {0}, hi[3] = {0};
    int ret;

    if ((ret = check_args(customers, n, params, results, scratch, scratch_size, stats)) != 0)
        return ret;
    memset(stats, 0, sizeof(*stats));
    stats->customers = n;
    if (n == 0)
        return 0;

    if ((ret = collect_customers(customers, n, params, results, &ps.nq, &ps.total, lo, hi)) != 0)
        return ret;
    if (ps.nq > 0) {
        ps.order = ORDER_LAST_ORDER_AT;
        sort_and_score(&ps, scratch, n, lo[0], hi[0]);
        ps.order = ORDER_FREQUENCY;
        sort_and_score(&ps, scratch, n, lo[1], hi[1]);
        ps.order = ORDER_MONETARY_DESC;
        if ((ret = sort_and_score(&ps, scratch, n, lo[2], hi[2])) != 0)
            return ret;
    }
    if ((ret = count_results(customers, n, results, stats)) != 0)
        return ret;
    stats->scored = ps.nq;
    stats->revenue = ps.total;
    return 0;
}
