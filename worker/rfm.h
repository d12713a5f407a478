/*
 * worker/rfm.h - RFM scores, segments, lifecycle stages and ABC value tiers.
 *
 * wk_rfm_score() is the pure computation behind the analytics run kind
 * "rfm": it takes one aggregate per customer of the whole population and
 * fills one result per customer plus run statistics. It does no I/O, keeps
 * no state and allocates nothing: the caller owns the input, the results
 * and a scratch buffer of wk_rfm_scratch_size(n) bytes (4 bytes per
 * customer). With the 48-byte input record and the 12-byte result, the
 * computation needs 64 bytes per customer in all. It costs three radix
 * sorts of an index array (linear in N for fixed-width keys; about 0.25 s
 * for 1,000,000 customers) and never uses floating point.
 *
 * Definitions (acceptance criteria of the product):
 * - recency_days = floor((as_of - last_order_at) / 86400).
 * - Among the N customers with has_orders != 0, each of R, F and M is
 *   1 + floor(5 * w / N), w being the number of those customers with a
 *   strictly worse value: an earlier last_order_at (timestamps, not days),
 *   a smaller frequency, a smaller monetary. Ties share a score; the worst
 *   value scores 1.
 * - Segment from (R, F): R5: F1 new_customers, F2-3 potential_loyalists,
 *   F4-5 champions; R4: F1 promising, F2-3 potential_loyalists, F4-5
 *   loyal_customers; R3: F1-2 about_to_sleep, F3 need_attention, F4-5
 *   loyal_customers; R1-2: F1-2 hibernating, F3-4 at_risk, F5
 *   cant_lose_them. No qualifying order: prospect.
 * - Lifecycle, first match wins: prospect (no qualifying order); new
 *   (floor((as_of - first_order_at) / 86400) < new_days); active
 *   (recency_days <= active_days); at_risk (recency_days <= churn_days);
 *   churned.
 * - Tier: order the scored customers by monetary descending, then
 *   customer_id ascending; S is the total monetary and `before` the summed
 *   monetary of the customers ahead. A if before < a_share * S, else B if
 *   before < b_share * S, else C. Prospects have none. Comparisons are exact.
 */
#ifndef CLIENTELE_WORKER_RFM_H
#define CLIENTELE_WORKER_RFM_H

#include <stddef.h>
#include <stdint.h>

#include "common/decimal.h"

typedef enum {
    WK_RFM_SEGMENT_PROSPECT = 0,
    WK_RFM_SEGMENT_CHAMPIONS,
    WK_RFM_SEGMENT_LOYAL_CUSTOMERS,
    WK_RFM_SEGMENT_POTENTIAL_LOYALISTS,
    WK_RFM_SEGMENT_NEW_CUSTOMERS,
    WK_RFM_SEGMENT_PROMISING,
    WK_RFM_SEGMENT_NEED_ATTENTION,
    WK_RFM_SEGMENT_ABOUT_TO_SLEEP,
    WK_RFM_SEGMENT_AT_RISK,
    WK_RFM_SEGMENT_CANT_LOSE_THEM,
    WK_RFM_SEGMENT_HIBERNATING,
    WK_RFM_SEGMENT__COUNT
} wk_rfm_segment_t;

typedef enum {
    WK_RFM_LIFECYCLE_PROSPECT = 0,
    WK_RFM_LIFECYCLE_NEW,
    WK_RFM_LIFECYCLE_ACTIVE,
    WK_RFM_LIFECYCLE_AT_RISK,
    WK_RFM_LIFECYCLE_CHURNED,
    WK_RFM_LIFECYCLE__COUNT
} wk_rfm_lifecycle_t;

typedef enum {
    WK_RFM_TIER_NONE = 0, /* prospects */
    WK_RFM_TIER_A,
    WK_RFM_TIER_B,
    WK_RFM_TIER_C,
    WK_RFM_TIER__COUNT
} wk_rfm_tier_t;

/* recency_days of a prospect (SQL NULL). */
#define WK_RFM_RECENCY_NONE INT32_MIN

/* One customer's aggregates over qualifying orders; 48 bytes. */
typedef struct st_wk_rfm_customer_t {
    int64_t customer_id;
    int64_t first_order_at; /* unix seconds, UTC; ignored without orders */
    int64_t last_order_at;  /* unix seconds, UTC; ignored without orders */
    int64_t frequency;      /* number of qualifying orders */
    dec_t monetary;         /* sum of their totals */
    int has_orders;         /* 0: a prospect, every other field is ignored */
} wk_rfm_customer_t;

/* One customer's result, at the same index as its input; 12 bytes. */
typedef struct st_wk_rfm_result_t {
    int32_t recency_days; /* WK_RFM_RECENCY_NONE for prospects */
    uint8_t r, f, m;      /* 1..5, 0 (SQL NULL) for prospects */
    uint8_t segment;      /* wk_rfm_segment_t */
    uint8_t lifecycle;    /* wk_rfm_lifecycle_t */
    uint8_t tier;         /* wk_rfm_tier_t */
} wk_rfm_result_t;

typedef struct st_wk_rfm_params_t {
    int64_t as_of;       /* unix seconds, UTC */
    int32_t new_days;    /* 30 */
    int32_t active_days; /* 90 */
    int32_t churn_days;  /* 180 */
    dec_t a_share;       /* 0.80 */
    dec_t b_share;       /* 0.95 */
} wk_rfm_params_t;

typedef struct st_wk_rfm_stats_t {
    uint64_t customers;                           /* population, n */
    uint64_t scored;                              /* customers with qualifying orders */
    uint64_t segments[WK_RFM_SEGMENT__COUNT];     /* customers per segment, prospects included */
    uint64_t lifecycles[WK_RFM_LIFECYCLE__COUNT]; /* customers per lifecycle stage */
    uint64_t tiers[WK_RFM_TIER__COUNT];           /* customers per tier, [WK_RFM_TIER_NONE] = prospects */
    dec_t tier_revenue[WK_RFM_TIER__COUNT];       /* summed monetary per tier, [WK_RFM_TIER_NONE] = 0 */
    dec_t revenue;                                /* S, the summed monetary of all scored customers */
} wk_rfm_stats_t;

/* Scratch bytes wk_rfm_score() needs for n customers: 4 * n. */
size_t wk_rfm_scratch_size(size_t n);

/*
 * Scores customers[0..n) into results[0..n) (same order) and fills *stats.
 * scratch must be at least wk_rfm_scratch_size(n) bytes, aligned for
 * uint32_t (malloc'ed memory is); its contents are overwritten. The inputs
 * are not modified. The call is synchronous and reentrant (no shared state)
 * and needs under 100 KiB of stack. Returns 0, or ERR_INVALID without a
 * usable result when: n > UINT32_MAX, params or stats is NULL, customers,
 * results or scratch is NULL while n > 0, the scratch is too small, a day count in params is negative, a share is
 * negative or a_share > b_share, a recency does not fit int32_t, a time
 * difference overflows int64_t, or a sum of monetary values leaves the
 * dec_t range.
 */
int wk_rfm_score(const wk_rfm_customer_t *customers, size_t n, const wk_rfm_params_t *params, wk_rfm_result_t *results,
                 void *scratch, size_t scratch_size, wk_rfm_stats_t *stats);

/* "champions", "prospect", ...; NULL for values out of range. Static strings. */
const char *wk_rfm_segment_name(int segment);
/* "prospect", "new", "active", "at_risk", "churned"; NULL out of range. */
const char *wk_rfm_lifecycle_name(int lifecycle);
/* "A", "B", "C"; NULL for WK_RFM_TIER_NONE (SQL NULL) and out of range. */
const char *wk_rfm_tier_name(int tier);

#endif
