/*
 * tests/unit/worker/rfm_test.c - unit tests for worker/rfm.c.
 *
 * One Check suite with a TCase per function group: argument checks, the
 * R/F/M score formula on hand-computed populations full of ties, every cell
 * of the segment table, lifecycle and tier boundaries, and randomized
 * cross-checks of the radix-sort implementation against a naive O(N^2)
 * reference (and, for a large population, a qsort-based one). The file
 * under test is included to reach its statics; decimal.c comes from
 * libcommon.a. Every buffer is malloc'ed and freed by the test itself.
 */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../../worker/rfm.c"

#define DAY 86400
#define AS_OF ((int64_t)1700000000) /* 2023-11-14T22:13:20Z, not on a day boundary */

/* ---- helpers ---- */

static dec_t D(const char *s)
{
    dec_t v;
    ck_assert_msg(dec_parse(s, strlen(s), DEC_SCALE, &v) == 0, "cannot parse \"%s\"", s);
    return v;
}

static const char *F(dec_t v)
{
    static char buf[DEC_STR_MAX];
    ck_assert_int_eq(dec_format(v, 2, buf, sizeof(buf)), 0);
    return buf;
}

static wk_rfm_params_t default_params(void)
{
    wk_rfm_params_t p = {.as_of = AS_OF, .new_days = 30, .active_days = 90, .churn_days = 180};
    p.a_share = D("0.80");
    p.b_share = D("0.95");
    return p;
}

/* A customer whose first order was a year before its last, so it is never "new" unless a test says so. */
static wk_rfm_customer_t cust(int64_t id, int64_t last, int64_t frequency, const char *monetary)
{
    wk_rfm_customer_t c = {.customer_id = id,
                           .first_order_at = last - 365 * DAY,
                           .last_order_at = last,
                           .frequency = frequency,
                           .has_orders = 1};
    c.monetary = D(monetary);
    return c;
}

static wk_rfm_customer_t prospect(int64_t id)
{
    wk_rfm_customer_t c = {.customer_id = id};
    return c;
}

/* Scores with a scratch buffer of exactly the announced size and asserts success. */
static void run(const wk_rfm_customer_t *c, size_t n, const wk_rfm_params_t *p, wk_rfm_result_t *res,
                wk_rfm_stats_t *stats)
{
    size_t size = wk_rfm_scratch_size(n);
    void *scratch = malloc(size > 0 ? size : 1);
    ck_assert_int_eq(wk_rfm_score(c, n, p, res, scratch, size, stats), 0);
    free(scratch);
}

static int try_run(const wk_rfm_customer_t *c, size_t n, const wk_rfm_params_t *p)
{
    wk_rfm_result_t *res = malloc((n > 0 ? n : 1) * sizeof(*res));
    void *scratch = malloc(wk_rfm_scratch_size(n) + 1);
    wk_rfm_stats_t stats;
    int ret = wk_rfm_score(c, n, p, res, scratch, wk_rfm_scratch_size(n), &stats);
    free(scratch);
    free(res);
    return ret;
}

static uint64_t next_random(uint64_t *state)
{
    uint64_t x = *state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *state = x;
}

/* The segment table, written out from the product definition. */
static const char *const expected_segments[5][5] = {
    /* F1               F2                     F3                     F4                 F5 */
    {"hibernating", "hibernating", "at_risk", "at_risk", "cant_lose_them"},                            /* R1 */
    {"hibernating", "hibernating", "at_risk", "at_risk", "cant_lose_them"},                            /* R2 */
    {"about_to_sleep", "about_to_sleep", "need_attention", "loyal_customers", "loyal_customers"},      /* R3 */
    {"promising", "potential_loyalists", "potential_loyalists", "loyal_customers", "loyal_customers"}, /* R4 */
    {"new_customers", "potential_loyalists", "potential_loyalists", "champions", "champions"},         /* R5 */
};

/* ---- arguments ---- */

START_TEST(test_args_empty)
{
    wk_rfm_params_t p = default_params();
    wk_rfm_stats_t stats;
    int i;

    memset(&stats, 0xAB, sizeof(stats));
    ck_assert_int_eq(wk_rfm_score(NULL, 0, &p, NULL, NULL, 0, &stats), 0);
    ck_assert_uint_eq(stats.customers, 0);
    ck_assert_uint_eq(stats.scored, 0);
    for (i = 0; i < WK_RFM_SEGMENT__COUNT; ++i)
        ck_assert_uint_eq(stats.segments[i], 0);
    ck_assert(dec_is_zero(stats.revenue));
    ck_assert_uint_eq(wk_rfm_scratch_size(0), 0);
    ck_assert_uint_eq(wk_rfm_scratch_size(1000000), 4000000);
}
END_TEST

START_TEST(test_args_rejected)
{
    wk_rfm_customer_t c[2] = {cust(1, AS_OF - DAY, 1, "10.00"), cust(2, AS_OF - 2 * DAY, 2, "20.00")};
    wk_rfm_params_t p = default_params(), q;
    wk_rfm_result_t res[2];
    wk_rfm_stats_t stats;
    uint32_t scratch[2];

    ck_assert_int_eq(wk_rfm_score(c, 2, &p, res, scratch, sizeof(scratch), &stats), 0);
    ck_assert_int_eq(wk_rfm_score(c, 2, &p, res, scratch, sizeof(scratch) - 1, &stats), ERR_INVALID);
    ck_assert_int_eq(wk_rfm_score(c, 2, &p, res, NULL, sizeof(scratch), &stats), ERR_INVALID);
    ck_assert_int_eq(wk_rfm_score(NULL, 2, &p, res, scratch, sizeof(scratch), &stats), ERR_INVALID);
    ck_assert_int_eq(wk_rfm_score(c, 2, &p, NULL, scratch, sizeof(scratch), &stats), ERR_INVALID);
    ck_assert_int_eq(wk_rfm_score(c, 2, NULL, res, scratch, sizeof(scratch), &stats), ERR_INVALID);
    ck_assert_int_eq(wk_rfm_score(c, 2, &p, res, scratch, sizeof(scratch), NULL), ERR_INVALID);
    ck_assert_int_eq(wk_rfm_score(c, (size_t)UINT32_MAX + 1, &p, res, scratch, SIZE_MAX, &stats), ERR_INVALID);

    q = p, q.new_days = -1;
    ck_assert_int_eq(wk_rfm_score(c, 2, &q, res, scratch, sizeof(scratch), &stats), ERR_INVALID);
    q = p, q.active_days = -1;
    ck_assert_int_eq(wk_rfm_score(c, 2, &q, res, scratch, sizeof(scratch), &stats), ERR_INVALID);
    q = p, q.churn_days = -1;
    ck_assert_int_eq(wk_rfm_score(c, 2, &q, res, scratch, sizeof(scratch), &stats), ERR_INVALID);
    q = p, q.a_share = D("-0.01");
    ck_assert_int_eq(wk_rfm_score(c, 2, &q, res, scratch, sizeof(scratch), &stats), ERR_INVALID);
    q = p, q.a_share = D("0.96");
    ck_assert_int_eq(wk_rfm_score(c, 2, &q, res, scratch, sizeof(scratch), &stats), ERR_INVALID);
    q = p, q.a_share = D("0.95"); /* equal shares are fine */
    ck_assert_int_eq(wk_rfm_score(c, 2, &q, res, scratch, sizeof(scratch), &stats), 0);
}
END_TEST

START_TEST(test_args_data_out_of_range)
{
    wk_rfm_params_t p = default_params();
    wk_rfm_customer_t c[2] = {cust(1, AS_OF - DAY, 1, "10.00"), cust(2, AS_OF - 2 * DAY, 2, "20.00")};

    ck_assert_int_eq(try_run(c, 2, &p), 0);
    c[0].last_order_at = INT64_MIN; /* as_of - last overflows */
    ck_assert_int_eq(try_run(c, 2, &p), ERR_INVALID);
    c[0].last_order_at = AS_OF - (int64_t)DAY * ((int64_t)INT32_MAX + 1); /* recency past int32 */
    ck_assert_int_eq(try_run(c, 2, &p), ERR_INVALID);
    c[0].last_order_at = AS_OF - (int64_t)DAY * INT32_MAX;
    ck_assert_int_eq(try_run(c, 2, &p), 0);
    c[0].first_order_at = INT64_MIN; /* as_of - first overflows */
    ck_assert_int_eq(try_run(c, 2, &p), ERR_INVALID);
    c[0].first_order_at = AS_OF;
    c[0].monetary = D("9999999999999999999999.99");
    c[1].monetary = D("0.009999");
    ck_assert_int_eq(try_run(c, 2, &p), 0); /* S is exactly the largest value */
    c[1].monetary = D("0.01");
    ck_assert_int_eq(try_run(c, 2, &p), ERR_INVALID); /* S leaves the dec_t range */
    /* S fits, but the ABC running sum does not: 5e21 + 5e21 passes the limit before -1 brings it back. */
    c[0].monetary = D("-1");
    c[1].monetary = D("5000000000000000000000");
    {
        wk_rfm_customer_t three[3] = {c[0], c[1], c[1]};
        three[2].customer_id = 3;
        ck_assert_int_eq(try_run(three, 3, &p), ERR_INVALID);
        three[2].monetary = D("4999999999999999999999.999999");
        ck_assert_int_eq(try_run(three, 3, &p), 0);
    }
    /* Prospects' fields are ignored entirely. */
    c[0] = prospect(1), c[1] = prospect(2);
    c[0].last_order_at = INT64_MIN;
    c[1].monetary = D("9999999999999999999999.99");
    ck_assert_int_eq(try_run(c, 2, &p), 0);
}
END_TEST

START_TEST(test_args_inputs_untouched)
{
    wk_rfm_customer_t c[4] = {cust(4, AS_OF - 5 * DAY, 3, "1.00"), prospect(9), cust(2, AS_OF - DAY, 1, "7.00"),
                              cust(3, AS_OF - DAY, 2, "7.00")};
    wk_rfm_customer_t copy[4];
    wk_rfm_params_t p = default_params(), pcopy = p;
    wk_rfm_result_t res[4];
    wk_rfm_stats_t stats;

    memcpy(copy, c, sizeof(c));
    run(c, 4, &p, res, &stats);
    ck_assert_int_eq(memcmp(copy, c, sizeof(c)), 0);
    ck_assert_int_eq(memcmp(&pcopy, &p, sizeof(p)), 0);
}
END_TEST

/* ---- scores ---- */

START_TEST(test_scores_single_customer)
{
    wk_rfm_customer_t c[1] = {cust(1, AS_OF - 3 * DAY, 4, "99.99")};
    wk_rfm_params_t p = default_params();
    wk_rfm_result_t res[1];
    wk_rfm_stats_t stats;

    run(c, 1, &p, res, &stats);
    ck_assert_int_eq(res[0].r, 1);
    ck_assert_int_eq(res[0].f, 1);
    ck_assert_int_eq(res[0].m, 1);
    ck_assert_int_eq(res[0].recency_days, 3);
    ck_assert_str_eq(wk_rfm_segment_name(res[0].segment), "hibernating");
    ck_assert_str_eq(wk_rfm_lifecycle_name(res[0].lifecycle), "active");
    ck_assert_int_eq(res[0].tier, WK_RFM_TIER_A); /* before 0 < 0.80 * 99.99 */
    ck_assert_uint_eq(stats.scored, 1);
    ck_assert_str_eq(F(stats.tier_revenue[WK_RFM_TIER_A]), "99.99");

    c[0].monetary = D("0"); /* S = 0: before 0 is not below 0.80 * 0 nor 0.95 * 0 */
    run(c, 1, &p, res, &stats);
    ck_assert_int_eq(res[0].tier, WK_RFM_TIER_C);
}
END_TEST

START_TEST(test_scores_all_equal)
{
    wk_rfm_customer_t c[7];
    wk_rfm_params_t p = default_params();
    wk_rfm_result_t res[7];
    wk_rfm_stats_t stats;
    int i;

    /* Same timestamp, count and total; ids given in descending order. */
    for (i = 0; i < 7; ++i)
        c[i] = cust(7 - i, AS_OF - 40 * DAY, 3, "10.00");
    run(c, 7, &p, res, &stats);
    for (i = 0; i < 7; ++i) {
        ck_assert_int_eq(res[i].r, 1);
        ck_assert_int_eq(res[i].f, 1);
        ck_assert_int_eq(res[i].m, 1);
        ck_assert_int_eq(res[i].segment, WK_RFM_SEGMENT_HIBERNATING);
        /* ABC order is by id: before = 10 * (id - 1); 0.80 * 70 = 56, so ids 1..6 are A and id 7 (before 60) is B. */
        ck_assert_int_eq(res[i].tier, c[i].customer_id <= 6 ? WK_RFM_TIER_A : WK_RFM_TIER_B);
    }
    ck_assert_uint_eq(stats.segments[WK_RFM_SEGMENT_HIBERNATING], 7);
    ck_assert_uint_eq(stats.tiers[WK_RFM_TIER_A], 6);
    ck_assert_uint_eq(stats.tiers[WK_RFM_TIER_B], 1);
    ck_assert_str_eq(F(stats.tier_revenue[WK_RFM_TIER_A]), "60.00");
    ck_assert_str_eq(F(stats.revenue), "70.00");
}
END_TEST

START_TEST(test_scores_ties_hand_computed)
{
    /* Six distinct last-order times, oldest first. */
    const int64_t t1 = AS_OF - 400 * DAY, t2 = AS_OF - 200 * DAY, t3 = AS_OF - 100 * DAY, t4 = AS_OF - 50 * DAY,
                  t5 = AS_OF - 10 * DAY, t6 = AS_OF - 1;
    /*
     * N = 10, so a score is 1 + floor(w / 2).
     * R: t1 x2 (w 0: 1), t2 x3 (w 2: 2), t3 (w 5: 3), t4 x2 (w 6: 4), t5 (w 8: 5), t6 (w 9: 5).
     * F: 1 x3 (w 0: 1), 2 x2 (w 3: 2), 3 (w 5: 3), 5 x3 (w 6: 4), 9 (w 9: 5).
     * M: 0 (w 0: 1), 10 x2 (w 1: 1), 20 x3 (w 3: 2), 35.50 x2 (w 6: 4), 100 x2 (w 8: 5).
     * ABC: S = 351.00, 0.80 S = 280.80, 0.95 S = 333.45. In order (monetary desc, id asc):
     * 109 (before 0) A, 110 (100) A, 106 (200) A, 107 (235.50) A, 103 (271) A, 104 (291) B, 105 (311) B,
     * 101 (331) B, 102 (341) C, 108 (351) C.
     */
    wk_rfm_customer_t c[12] = {
        cust(101, t3, 2, "10.00"),
        cust(102, t1, 9, "10.00"),
        cust(103, t2, 1, "20.00"),
        cust(104, t5, 5, "20.00"),
        cust(105, t1, 1, "20.00"),
        cust(106, t2, 3, "35.50"),
        cust(107, t4, 5, "35.50"),
        cust(108, t6, 1, "0.00"),
        cust(109, t2, 2, "100.00"),
        cust(110, t4, 5, "100.00"),
        prospect(201),
        prospect(202),
    };
    static const int r[10] = {3, 1, 2, 5, 1, 2, 4, 5, 2, 4};
    static const int f[10] = {2, 5, 1, 4, 1, 3, 4, 1, 2, 4};
    static const int m[10] = {1, 1, 2, 2, 2, 4, 4, 1, 5, 5};
    static const int tier[10] = {WK_RFM_TIER_B, WK_RFM_TIER_C, WK_RFM_TIER_A, WK_RFM_TIER_B, WK_RFM_TIER_B,
                                 WK_RFM_TIER_A, WK_RFM_TIER_A, WK_RFM_TIER_C, WK_RFM_TIER_A, WK_RFM_TIER_A};
    static const char *const segment[10] = {"about_to_sleep", "cant_lose_them", "hibernating",     "champions",
                                            "hibernating",    "at_risk",        "loyal_customers", "new_customers",
                                            "hibernating",    "loyal_customers"};
    static const char *const lifecycle[10] = {"at_risk", "churned", "churned", "active",  "churned",
                                              "churned", "active",  "active",  "churned", "active"};
    static const int recency[10] = {100, 400, 200, 10, 400, 200, 50, 0, 200, 50};
    wk_rfm_params_t p = default_params();
    wk_rfm_result_t res[12];
    wk_rfm_stats_t stats;
    int i;

    run(c, 12, &p, res, &stats);
    for (i = 0; i < 10; ++i) {
        ck_assert_msg(res[i].r == r[i] && res[i].f == f[i] && res[i].m == m[i],
                      "customer %d: got RFM %d%d%d, want %d%d%d", (int)c[i].customer_id, res[i].r, res[i].f, res[i].m,
                      r[i], f[i], m[i]);
        ck_assert_int_eq(res[i].tier, tier[i]);
        ck_assert_str_eq(wk_rfm_segment_name(res[i].segment), segment[i]);
        ck_assert_str_eq(wk_rfm_lifecycle_name(res[i].lifecycle), lifecycle[i]);
        ck_assert_int_eq(res[i].recency_days, recency[i]);
    }
    for (i = 10; i < 12; ++i) {
        ck_assert_int_eq(res[i].r + res[i].f + res[i].m, 0);
        ck_assert_int_eq(res[i].recency_days, WK_RFM_RECENCY_NONE);
        ck_assert_int_eq(res[i].segment, WK_RFM_SEGMENT_PROSPECT);
        ck_assert_int_eq(res[i].lifecycle, WK_RFM_LIFECYCLE_PROSPECT);
        ck_assert_int_eq(res[i].tier, WK_RFM_TIER_NONE);
    }

    ck_assert_uint_eq(stats.customers, 12);
    ck_assert_uint_eq(stats.scored, 10);
    ck_assert_uint_eq(stats.segments[WK_RFM_SEGMENT_PROSPECT], 2);
    ck_assert_uint_eq(stats.segments[WK_RFM_SEGMENT_HIBERNATING], 3);
    ck_assert_uint_eq(stats.segments[WK_RFM_SEGMENT_LOYAL_CUSTOMERS], 2);
    ck_assert_uint_eq(stats.segments[WK_RFM_SEGMENT_ABOUT_TO_SLEEP], 1);
    ck_assert_uint_eq(stats.segments[WK_RFM_SEGMENT_CANT_LOSE_THEM], 1);
    ck_assert_uint_eq(stats.segments[WK_RFM_SEGMENT_CHAMPIONS], 1);
    ck_assert_uint_eq(stats.segments[WK_RFM_SEGMENT_AT_RISK], 1);
    ck_assert_uint_eq(stats.segments[WK_RFM_SEGMENT_NEW_CUSTOMERS], 1);
    ck_assert_uint_eq(stats.segments[WK_RFM_SEGMENT_POTENTIAL_LOYALISTS], 0);
    ck_assert_uint_eq(stats.segments[WK_RFM_SEGMENT_PROMISING], 0);
    ck_assert_uint_eq(stats.segments[WK_RFM_SEGMENT_NEED_ATTENTION], 0);
    ck_assert_uint_eq(stats.lifecycles[WK_RFM_LIFECYCLE_PROSPECT], 2);
    ck_assert_uint_eq(stats.lifecycles[WK_RFM_LIFECYCLE_NEW], 0);
    ck_assert_uint_eq(stats.lifecycles[WK_RFM_LIFECYCLE_ACTIVE], 4);
    ck_assert_uint_eq(stats.lifecycles[WK_RFM_LIFECYCLE_AT_RISK], 1);
    ck_assert_uint_eq(stats.lifecycles[WK_RFM_LIFECYCLE_CHURNED], 5);
    ck_assert_uint_eq(stats.tiers[WK_RFM_TIER_NONE], 2);
    ck_assert_uint_eq(stats.tiers[WK_RFM_TIER_A], 5);
    ck_assert_uint_eq(stats.tiers[WK_RFM_TIER_B], 3);
    ck_assert_uint_eq(stats.tiers[WK_RFM_TIER_C], 2);
    ck_assert_str_eq(F(stats.tier_revenue[WK_RFM_TIER_NONE]), "0.00");
    ck_assert_str_eq(F(stats.tier_revenue[WK_RFM_TIER_A]), "291.00");
    ck_assert_str_eq(F(stats.tier_revenue[WK_RFM_TIER_B]), "50.00");
    ck_assert_str_eq(F(stats.tier_revenue[WK_RFM_TIER_C]), "10.00");
    ck_assert_str_eq(F(stats.revenue), "351.00");
}
END_TEST

START_TEST(test_scores_timestamps_not_days)
{
    /* Both ordered today (recency 0), 100 s apart: R compares timestamps, so they differ. */
    wk_rfm_customer_t c[2] = {cust(1, AS_OF - 100, 1, "1.00"), cust(2, AS_OF - 200, 1, "1.00")};
    wk_rfm_params_t p = default_params();
    wk_rfm_result_t res[2];
    wk_rfm_stats_t stats;

    run(c, 2, &p, res, &stats);
    ck_assert_int_eq(res[0].recency_days, 0);
    ck_assert_int_eq(res[1].recency_days, 0);
    ck_assert_int_eq(res[0].r, 3); /* w = 1: 1 + floor(5 / 2) */
    ck_assert_int_eq(res[1].r, 1);
    ck_assert_int_eq(res[0].f, 1);
    ck_assert_int_eq(res[1].f, 1);
}
END_TEST

START_TEST(test_scores_formula)
{
    /* Distinct values, worst first in input order: w = index. */
    static const int want3[3] = {1, 2, 4};             /* 1 + floor(5w / 3) */
    static const int want7[7] = {1, 1, 2, 3, 3, 4, 5}; /* 1 + floor(5w / 7) */
    static const int want5[5] = {1, 2, 3, 4, 5};
    static const char *const money[7] = {"-5.00", "0.00", "0.01", "3.00", "3.01", "1000", "1000000"};
    wk_rfm_customer_t c[7];
    wk_rfm_params_t p = default_params();
    wk_rfm_result_t res[7];
    wk_rfm_stats_t stats;
    int i;

    for (i = 0; i < 7; ++i)
        c[i] = cust(100 - i, AS_OF - (7 - i) * 1000, i + 1, money[i]);
    run(c, 3, &p, res, &stats);
    for (i = 0; i < 3; ++i) {
        ck_assert_int_eq(res[i].r, want3[i]);
        ck_assert_int_eq(res[i].f, want3[i]);
        ck_assert_int_eq(res[i].m, want3[i]);
    }
    run(c, 5, &p, res, &stats);
    for (i = 0; i < 5; ++i) {
        ck_assert_int_eq(res[i].r, want5[i]);
        ck_assert_int_eq(res[i].f, want5[i]);
        ck_assert_int_eq(res[i].m, want5[i]);
    }
    run(c, 7, &p, res, &stats);
    for (i = 0; i < 7; ++i) {
        ck_assert_int_eq(res[i].r, want7[i]);
        ck_assert_int_eq(res[i].f, want7[i]);
        ck_assert_int_eq(res[i].m, want7[i]);
    }
}
END_TEST

/* ---- segments ---- */

START_TEST(test_segments_every_cell)
{
    int shift, k, seen[5][5] = {{0}};

    /* Five customers with distinct values score 1..5; rotating F against R covers all 25 cells. */
    for (shift = 0; shift < 5; ++shift) {
        wk_rfm_customer_t c[5];
        wk_rfm_params_t p = default_params();
        wk_rfm_result_t res[5];
        wk_rfm_stats_t stats;
        for (k = 0; k < 5; ++k)
            c[k] = cust(k + 1, AS_OF - (5 - k) * 7 * DAY, (k + shift) % 5 + 1, "5.00");
        run(c, 5, &p, res, &stats);
        for (k = 0; k < 5; ++k) {
            int r = res[k].r, f = res[k].f;
            ck_assert_int_eq(r, k + 1);
            ck_assert_int_eq(f, (k + shift) % 5 + 1);
            ck_assert_msg(strcmp(wk_rfm_segment_name(res[k].segment), expected_segments[r - 1][f - 1]) == 0,
                          "R%d F%d gave %s", r, f, wk_rfm_segment_name(res[k].segment));
            seen[r - 1][f - 1] = 1;
        }
    }
    for (k = 0; k < 25; ++k)
        ck_assert(seen[k / 5][k % 5]);
}
END_TEST

START_TEST(test_segments_names)
{
    ck_assert_str_eq(wk_rfm_segment_name(WK_RFM_SEGMENT_PROSPECT), "prospect");
    ck_assert_str_eq(wk_rfm_segment_name(WK_RFM_SEGMENT_CHAMPIONS), "champions");
    ck_assert_str_eq(wk_rfm_segment_name(WK_RFM_SEGMENT_LOYAL_CUSTOMERS), "loyal_customers");
    ck_assert_str_eq(wk_rfm_segment_name(WK_RFM_SEGMENT_POTENTIAL_LOYALISTS), "potential_loyalists");
    ck_assert_str_eq(wk_rfm_segment_name(WK_RFM_SEGMENT_NEW_CUSTOMERS), "new_customers");
    ck_assert_str_eq(wk_rfm_segment_name(WK_RFM_SEGMENT_PROMISING), "promising");
    ck_assert_str_eq(wk_rfm_segment_name(WK_RFM_SEGMENT_NEED_ATTENTION), "need_attention");
    ck_assert_str_eq(wk_rfm_segment_name(WK_RFM_SEGMENT_ABOUT_TO_SLEEP), "about_to_sleep");
    ck_assert_str_eq(wk_rfm_segment_name(WK_RFM_SEGMENT_AT_RISK), "at_risk");
    ck_assert_str_eq(wk_rfm_segment_name(WK_RFM_SEGMENT_CANT_LOSE_THEM), "cant_lose_them");
    ck_assert_str_eq(wk_rfm_segment_name(WK_RFM_SEGMENT_HIBERNATING), "hibernating");
    ck_assert_ptr_null(wk_rfm_segment_name(WK_RFM_SEGMENT__COUNT));
    ck_assert_ptr_null(wk_rfm_segment_name(-1));
    ck_assert_str_eq(wk_rfm_lifecycle_name(WK_RFM_LIFECYCLE_PROSPECT), "prospect");
    ck_assert_str_eq(wk_rfm_lifecycle_name(WK_RFM_LIFECYCLE_NEW), "new");
    ck_assert_str_eq(wk_rfm_lifecycle_name(WK_RFM_LIFECYCLE_ACTIVE), "active");
    ck_assert_str_eq(wk_rfm_lifecycle_name(WK_RFM_LIFECYCLE_AT_RISK), "at_risk");
    ck_assert_str_eq(wk_rfm_lifecycle_name(WK_RFM_LIFECYCLE_CHURNED), "churned");
    ck_assert_ptr_null(wk_rfm_lifecycle_name(WK_RFM_LIFECYCLE__COUNT));
    ck_assert_ptr_null(wk_rfm_lifecycle_name(-1));
    ck_assert_ptr_null(wk_rfm_tier_name(WK_RFM_TIER_NONE));
    ck_assert_str_eq(wk_rfm_tier_name(WK_RFM_TIER_A), "A");
    ck_assert_str_eq(wk_rfm_tier_name(WK_RFM_TIER_B), "B");
    ck_assert_str_eq(wk_rfm_tier_name(WK_RFM_TIER_C), "C");
    ck_assert_ptr_null(wk_rfm_tier_name(WK_RFM_TIER__COUNT));
    ck_assert_ptr_null(wk_rfm_tier_name(-1));
}
END_TEST

/* ---- lifecycle ---- */

START_TEST(test_lifecycle_boundaries)
{
    static const struct {
        int64_t first, last;
        int recency;
        int lifecycle;
    } cases[] = {
        {AS_OF - 29 * DAY, AS_OF - 29 * DAY, 29, WK_RFM_LIFECYCLE_NEW},         /* new_days - 1 */
        {AS_OF - 30 * DAY + 1, AS_OF - 30 * DAY + 1, 29, WK_RFM_LIFECYCLE_NEW}, /* 1 s short of 30 days */
        {AS_OF - 30 * DAY, AS_OF - 30 * DAY, 30, WK_RFM_LIFECYCLE_ACTIVE},      /* exactly new_days: not new */
        {AS_OF - 10 * DAY, AS_OF - 1, 0, WK_RFM_LIFECYCLE_NEW},
        {AS_OF - 400 * DAY, AS_OF - 90 * DAY, 90, WK_RFM_LIFECYCLE_ACTIVE},     /* exactly active_days */
        {AS_OF - 400 * DAY, AS_OF - 90 * DAY - 1, 90, WK_RFM_LIFECYCLE_ACTIVE}, /* still day 90 */
        {AS_OF - 400 * DAY, AS_OF - 91 * DAY + 1, 90, WK_RFM_LIFECYCLE_ACTIVE},
        {AS_OF - 400 * DAY, AS_OF - 91 * DAY, 91, WK_RFM_LIFECYCLE_AT_RISK},   /* active_days + 1 */
        {AS_OF - 400 * DAY, AS_OF - 180 * DAY, 180, WK_RFM_LIFECYCLE_AT_RISK}, /* exactly churn_days */
        {AS_OF - 400 * DAY, AS_OF - 181 * DAY + 1, 180, WK_RFM_LIFECYCLE_AT_RISK},
        {AS_OF - 400 * DAY, AS_OF - 181 * DAY, 181, WK_RFM_LIFECYCLE_CHURNED}, /* churn_days + 1 */
        {AS_OF - 400 * DAY, AS_OF - 400 * DAY, 400, WK_RFM_LIFECYCLE_CHURNED},
        {AS_OF - 400 * DAY, AS_OF, 0, WK_RFM_LIFECYCLE_ACTIVE},
        {AS_OF - 400 * DAY, AS_OF + 1, -1, WK_RFM_LIFECYCLE_ACTIVE}, /* floor, not truncation */
        {AS_OF - 400 * DAY, AS_OF + DAY, -1, WK_RFM_LIFECYCLE_ACTIVE},
        {AS_OF - 400 * DAY, AS_OF + DAY + 1, -2, WK_RFM_LIFECYCLE_ACTIVE},
        {AS_OF + 10, AS_OF + 10, -1, WK_RFM_LIFECYCLE_NEW}, /* first order after as_of */
    };
    const size_t n = sizeof(cases) / sizeof(cases[0]);
    wk_rfm_customer_t c[sizeof(cases) / sizeof(cases[0]) + 1];
    wk_rfm_result_t res[sizeof(cases) / sizeof(cases[0]) + 1];
    wk_rfm_params_t p = default_params();
    wk_rfm_stats_t stats;
    size_t i;

    for (i = 0; i < n; ++i) {
        c[i] = cust((int64_t)i + 1, cases[i].last, 1, "1.00");
        c[i].first_order_at = cases[i].first;
    }
    c[n] = prospect(999);
    run(c, n + 1, &p, res, &stats);
    for (i = 0; i < n; ++i) {
        ck_assert_msg(res[i].recency_days == cases[i].recency, "case %zu: recency %d", i, res[i].recency_days);
        ck_assert_msg(res[i].lifecycle == cases[i].lifecycle, "case %zu: %s", i,
                      wk_rfm_lifecycle_name(res[i].lifecycle));
    }
    ck_assert_int_eq(res[n].lifecycle, WK_RFM_LIFECYCLE_PROSPECT);
    ck_assert_int_eq(res[n].recency_days, WK_RFM_RECENCY_NONE);
    ck_assert_uint_eq(stats.lifecycles[WK_RFM_LIFECYCLE_NEW], 4);
    ck_assert_uint_eq(stats.lifecycles[WK_RFM_LIFECYCLE_ACTIVE], 8);
    ck_assert_uint_eq(stats.lifecycles[WK_RFM_LIFECYCLE_AT_RISK], 3);
    ck_assert_uint_eq(stats.lifecycles[WK_RFM_LIFECYCLE_CHURNED], 2);
    ck_assert_uint_eq(stats.lifecycles[WK_RFM_LIFECYCLE_PROSPECT], 1);

    /* Zero-day thresholds: nobody is new, only today's (or future) buyers are active. */
    p.new_days = 0, p.active_days = 0, p.churn_days = 0;
    run(c, n + 1, &p, res, &stats);
    ck_assert_int_eq(res[0].lifecycle, WK_RFM_LIFECYCLE_CHURNED);
    ck_assert_int_eq(res[3].lifecycle, WK_RFM_LIFECYCLE_ACTIVE); /* recency 0 */
    ck_assert_int_eq(res[16].lifecycle, WK_RFM_LIFECYCLE_NEW);   /* first order in the future: age -1 < 0 */
}
END_TEST

/* ---- tiers ---- */

/* Scores c[0..n) with the given shares and checks each customer's tier. */
static void check_tiers(const wk_rfm_customer_t *c, size_t n, const char *a, const char *b, const int *want)
{
    wk_rfm_params_t p = default_params();
    wk_rfm_result_t res[8];
    wk_rfm_stats_t stats;
    size_t i;

    ck_assert_uint_le(n, 8);
    p.a_share = D(a);
    p.b_share = D(b);
    run(c, n, &p, res, &stats);
    for (i = 0; i < n; ++i)
        ck_assert_msg(res[i].tier == want[i], "customer %d: tier %s, want %s", (int)c[i].customer_id,
                      wk_rfm_tier_name(res[i].tier), wk_rfm_tier_name(want[i]));
}

START_TEST(test_tiers_exact_boundaries)
{
    const int64_t t = AS_OF - DAY;
    /* S = 100: 80 (before 0) A; 15 (before 80 = 0.80 S, not below) B; 5 (before 95 = 0.95 S) C. */
    wk_rfm_customer_t exact[3] = {cust(3, t, 1, "5.00"), cust(1, t, 1, "80.00"), cust(2, t, 1, "15.00")};
    static const int want_exact[3] = {WK_RFM_TIER_C, WK_RFM_TIER_A, WK_RFM_TIER_B};
    /* One cent less in front: 15.01 has before 79.99 < 80, A; 5.00 has before exactly 95.00, C. */
    wk_rfm_customer_t below[3] = {cust(1, t, 1, "79.99"), cust(2, t, 1, "15.01"), cust(3, t, 1, "5.00")};
    static const int want_below[3] = {WK_RFM_TIER_A, WK_RFM_TIER_A, WK_RFM_TIER_C};
    /* One cent more in front: 14.99 has before 80.01, B; 5.00 has before 95.00, C. */
    wk_rfm_customer_t above[3] = {cust(1, t, 1, "80.01"), cust(2, t, 1, "14.99"), cust(3, t, 1, "5.00")};
    static const int want_above[3] = {WK_RFM_TIER_A, WK_RFM_TIER_B, WK_RFM_TIER_C};
    /* Shares with three places: S = 1000, 0.955 S = 955 exactly. */
    wk_rfm_customer_t three[3] = {cust(1, t, 1, "800.00"), cust(2, t, 1, "155.00"), cust(3, t, 1, "45.00")};
    static const int want_three[3] = {WK_RFM_TIER_A, WK_RFM_TIER_B, WK_RFM_TIER_C};
    wk_rfm_customer_t three_below[3] = {cust(1, t, 1, "800.00"), cust(2, t, 1, "154.99"), cust(3, t, 1, "45.01")};
    static const int want_three_below[3] = {WK_RFM_TIER_A, WK_RFM_TIER_B, WK_RFM_TIER_B};

    check_tiers(exact, 3, "0.80", "0.95", want_exact);
    check_tiers(below, 3, "0.80", "0.95", want_below);
    check_tiers(above, 3, "0.80", "0.95", want_above);
    check_tiers(three, 3, "0.80", "0.955", want_three);
    check_tiers(three_below, 3, "0.80", "0.955", want_three_below);
}
END_TEST

START_TEST(test_tiers_id_tiebreak)
{
    const int64_t t = AS_OF - DAY;
    /* Equal totals are ordered by id: 3 goes first (before 0) A, 7 has before 50 = 0.50 S, B. */
    wk_rfm_customer_t c[2] = {cust(7, t, 1, "50.00"), cust(3, t, 1, "50.00")};
    static const int want[2] = {WK_RFM_TIER_B, WK_RFM_TIER_A};
    wk_rfm_customer_t neg[3] = {cust(-5, t, 1, "50.00"), cust(8, t, 1, "50.00"), cust(-9, t, 1, "50.00")};
    static const int want_neg[3] = {WK_RFM_TIER_A, WK_RFM_TIER_B, WK_RFM_TIER_A}; /* order -9, -5, 8 */

    check_tiers(c, 2, "0.50", "0.95", want);
    check_tiers(neg, 3, "0.60", "0.95", want_neg);
}
END_TEST

START_TEST(test_tiers_extreme_shares)
{
    const int64_t t = AS_OF - DAY;
    wk_rfm_customer_t c[4] = {cust(1, t, 1, "10.00"), cust(2, t, 1, "20.00"), cust(3, t, 1, "30.00"),
                              cust(4, t, 1, "40.00")};
    static const int all_c[4] = {WK_RFM_TIER_C, WK_RFM_TIER_C, WK_RFM_TIER_C, WK_RFM_TIER_C};
    static const int all_b[4] = {WK_RFM_TIER_B, WK_RFM_TIER_B, WK_RFM_TIER_B, WK_RFM_TIER_B};
    static const int all_a[4] = {WK_RFM_TIER_A, WK_RFM_TIER_A, WK_RFM_TIER_A, WK_RFM_TIER_A};
    /* Order 40, 30, 20, 10 with before 0, 40, 70, 90; 0.40 S = 40, 0.90 S = 90. */
    static const int mixed[4] = {WK_RFM_TIER_C, WK_RFM_TIER_B, WK_RFM_TIER_B, WK_RFM_TIER_A};

    check_tiers(c, 4, "0", "0", all_c);
    check_tiers(c, 4, "0", "1", all_b);
    check_tiers(c, 4, "1", "1", all_a);
    check_tiers(c, 4, "0.40", "0.90", mixed);
}
END_TEST

/* ---- randomized cross-checks ---- */

typedef enum {
    DIST_TIES,       /* few distinct values per metric */
    DIST_TIES_BY_ID, /* the same, loaded in id order with every id used twice (ties fall back on the index) */
    DIST_WIDE,       /* values spread over most of their range */
    DIST_OUTLIERS,   /* tight clusters plus rare huge values */
} dist_t;

static void random_population(wk_rfm_customer_t *c, size_t n, uint64_t seed, dist_t dist)
{
    static const char *const amounts[] = {"0.00",   "0.01",    "9.99",    "10.00", "10.00", "25.50", "99.90", "100.00",
                                          "250.00", "1000.00", "1000.01", "-3.00", "-0.01", "42.00", "5.00"};
    uint64_t state = seed | 1;
    size_t i;

    for (i = 0; i < n; ++i) {
        uint64_t x = next_random(&state), y = next_random(&state), z = next_random(&state);
        wk_rfm_customer_t *p = &c[i];
        memset(p, 0, sizeof(*p));
        /* Unique ids in a shuffled order, some negative. */
        p->customer_id = dist == DIST_TIES_BY_ID ? (int64_t)(i / 2) : (int64_t)((i * 2654435761u) % 1000003) - 300000;
        if (x % 10 == 0)
            continue; /* prospect */
        p->has_orders = 1;
        switch (dist) {
        case DIST_TIES:
        case DIST_TIES_BY_ID:
            p->last_order_at = AS_OF - (int64_t)(y % 20) * 17 * DAY - (int64_t)(y % 3);
            p->frequency = 1 + (int64_t)(z % 6);
            p->monetary = D(amounts[(x >> 8) % (sizeof(amounts) / sizeof(amounts[0]))]);
            break;
        case DIST_WIDE:
            /* 47-bit spreads of time, 62-bit counts, and totals up to 10^18 with six places. */
            p->last_order_at = AS_OF - (int64_t)(y >> 17) + (int64_t)(z >> 18);
            p->frequency = (int64_t)(z >> 2);
            ck_assert_int_eq(
                dec_from_units((__int128)(x >> 4) * (__int128)(y % 100000) * (x % 2 ? 1 : -1) + (__int128)(z % 1000),
                               &p->monetary),
                0);
            break;
        case DIST_OUTLIERS:
            /* Tight clusters with rare huge values, so radix levels must rescale several times. */
            p->last_order_at = y % 50 == 0 ? AS_OF - (int64_t)(y >> 20) : AS_OF - (int64_t)(y % 1000);
            p->frequency = z % 40 == 0 ? (int64_t)(z >> 12) : 1 + (int64_t)(z % 3);
            ck_assert_int_eq(
                dec_from_units(x % 30 == 0 ? (__int128)(x >> 3) * 1000000 : (__int128)(x % 7) * 10000, &p->monetary),
                0);
            break;
        }
        p->first_order_at = p->last_order_at - (int64_t)(z % (400 * (uint64_t)DAY));
    }
}

static int64_t floor_days(int64_t seconds)
{
    int64_t q = seconds / DAY;
    return q * DAY > seconds ? q - 1 : q;
}

/*
 * The definitions applied literally, in O(N^2). Keys are copied into plain
 * arrays first (scored customers only) to keep the inner loop tight; the ABC
 * order is (monetary desc, id asc, index asc).
 */
static void naive_reference(const wk_rfm_customer_t *c, size_t n, const wk_rfm_params_t *p, wk_rfm_result_t *out)
{
    int64_t *last = malloc(n * sizeof(*last) + 1), *freq = malloc(n * sizeof(*freq) + 1),
            *id = malloc(n * sizeof(*id) + 1);
    __int128 *money = malloc(n * sizeof(*money) + 1);
    size_t *at = malloc(n * sizeof(*at) + 1);
    size_t i, j, k, nq = 0;
    dec_t total = {{0}};

    for (i = 0; i < n; ++i) {
        memset(&out[i], 0, sizeof(out[i]));
        out[i].recency_days = WK_RFM_RECENCY_NONE;
        if (!c[i].has_orders)
            continue;
        last[nq] = c[i].last_order_at;
        freq[nq] = c[i].frequency;
        id[nq] = c[i].customer_id;
        money[nq] = dec_to_units(c[i].monetary);
        at[nq++] = i;
        ck_assert_int_eq(dec_add(total, c[i].monetary, &total), 0);
    }
    for (k = 0; k < nq; ++k) {
        wk_rfm_result_t *r = &out[at[k]];
        const wk_rfm_customer_t *x = &c[at[k]];
        size_t wr = 0, wf = 0, wm = 0;
        __int128 before = 0;
        dec_t before_dec;
        int64_t recency;

        for (j = 0; j < nq; ++j) {
            wr += last[j] < last[k];
            wf += freq[j] < freq[k];
            wm += money[j] < money[k];
            if (money[j] > money[k] || (money[j] == money[k] && (id[j] < id[k] || (id[j] == id[k] && j < k))))
                before += money[j];
        }
        r->r = (uint8_t)(1 + 5 * wr / nq);
        r->f = (uint8_t)(1 + 5 * wf / nq);
        r->m = (uint8_t)(1 + 5 * wm / nq);
        recency = floor_days(p->as_of - x->last_order_at);
        r->recency_days = (int32_t)recency;
        if (floor_days(p->as_of - x->first_order_at) < p->new_days)
            r->lifecycle = WK_RFM_LIFECYCLE_NEW;
        else if (recency <= p->active_days)
            r->lifecycle = WK_RFM_LIFECYCLE_ACTIVE;
        else if (recency <= p->churn_days)
            r->lifecycle = WK_RFM_LIFECYCLE_AT_RISK;
        else
            r->lifecycle = WK_RFM_LIFECYCLE_CHURNED;
        ck_assert_int_eq(dec_from_units(before, &before_dec), 0);
        if (dec_cmp_mul(total, p->a_share, before_dec) > 0)
            r->tier = WK_RFM_TIER_A;
        else if (dec_cmp_mul(total, p->b_share, before_dec) > 0)
            r->tier = WK_RFM_TIER_B;
        else
            r->tier = WK_RFM_TIER_C;
    }
    free(last);
    free(freq);
    free(id);
    free(money);
    free(at);
}

/* Compares results with a reference that leaves segments unset, and recounts the statistics. */
static void compare_results(const wk_rfm_customer_t *c, size_t n, const wk_rfm_result_t *got,
                            const wk_rfm_result_t *want, const wk_rfm_stats_t *stats)
{
    uint64_t segments[WK_RFM_SEGMENT__COUNT] = {0}, lifecycles[WK_RFM_LIFECYCLE__COUNT] = {0},
             tiers[WK_RFM_TIER__COUNT] = {0};
    size_t i;
    int k;

    for (i = 0; i < n; ++i) {
        const wk_rfm_result_t *g = &got[i], *w = &want[i];
        ck_assert_msg(g->r == w->r && g->f == w->f && g->m == w->m && g->recency_days == w->recency_days &&
                          g->lifecycle == w->lifecycle && g->tier == w->tier,
                      "customer %zu (id %lld): got RFM %d%d%d rec %d life %d tier %d, want %d%d%d %d %d %d", i,
                      (long long)c[i].customer_id, g->r, g->f, g->m, g->recency_days, g->lifecycle, g->tier, w->r, w->f,
                      w->m, w->recency_days, w->lifecycle, w->tier);
        if (c[i].has_orders)
            ck_assert_str_eq(wk_rfm_segment_name(g->segment), expected_segments[g->r - 1][g->f - 1]);
        else
            ck_assert_int_eq(g->segment, WK_RFM_SEGMENT_PROSPECT);
        ++segments[g->segment];
        ++lifecycles[g->lifecycle];
        ++tiers[g->tier];
    }
    ck_assert_uint_eq(stats->customers, n);
    for (k = 0; k < WK_RFM_SEGMENT__COUNT; ++k)
        ck_assert_uint_eq(stats->segments[k], segments[k]);
    for (k = 0; k < WK_RFM_LIFECYCLE__COUNT; ++k)
        ck_assert_uint_eq(stats->lifecycles[k], lifecycles[k]);
    for (k = 0; k < WK_RFM_TIER__COUNT; ++k) {
        dec_t sum = {{0}};
        ck_assert_uint_eq(stats->tiers[k], tiers[k]);
        for (i = 0; i < n; ++i) {
            if (c[i].has_orders && got[i].tier == k)
                ck_assert_int_eq(dec_add(sum, c[i].monetary, &sum), 0);
        }
        ck_assert_int_eq(dec_cmp(stats->tier_revenue[k], sum), 0);
    }
    ck_assert_uint_eq(stats->scored, n - tiers[WK_RFM_TIER_NONE]);
}

static void cross_check(size_t n, uint64_t seed, dist_t dist, const char *a, const char *b)
{
    wk_rfm_customer_t *c = malloc(n * sizeof(*c) + 1);
    wk_rfm_result_t *got = malloc(n * sizeof(*got) + 1), *want = malloc(n * sizeof(*want) + 1);
    wk_rfm_params_t p = default_params();
    wk_rfm_stats_t stats;

    p.a_share = D(a);
    p.b_share = D(b);
    random_population(c, n, seed, dist);
    run(c, n, &p, got, &stats);
    naive_reference(c, n, &p, want);
    compare_results(c, n, got, want, &stats);
    free(c);
    free(got);
    free(want);
}

START_TEST(test_random_heavy_ties)
{
    static const size_t sizes[] = {1, 2, 3, 5, 31, 32, 33, 34, 100, 257, 1000, 3000};
    size_t i;

    for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); ++i)
        cross_check(sizes[i], 1000 + i, DIST_TIES, "0.80", "0.95");
    cross_check(1500, 77, DIST_TIES, "0.5", "0.955");
    cross_check(1500, 78, DIST_TIES_BY_ID, "0.80", "0.95");
    cross_check(40, 79, DIST_TIES_BY_ID, "0.80", "0.95");
}
END_TEST

START_TEST(test_random_wide)
{
    cross_check(40, 5, DIST_WIDE, "0.80", "0.95");
    cross_check(2500, 6, DIST_WIDE, "0.80", "0.95");
}
END_TEST

START_TEST(test_random_outliers)
{
    cross_check(70, 9, DIST_OUTLIERS, "0.80", "0.95");
    cross_check(2500, 10, DIST_OUTLIERS, "0.333333", "0.999999");
}
END_TEST

/* The qsort-based reference for the large case: ranks by comparison sort instead of radix sort. */
static const wk_rfm_customer_t *sort_base;
static int sort_field;

static int compare_indexes(const void *pa, const void *pb)
{
    const wk_rfm_customer_t *x = &sort_base[*(const uint32_t *)pa], *y = &sort_base[*(const uint32_t *)pb];
    switch (sort_field) {
    case 0:
        return (x->last_order_at > y->last_order_at) - (x->last_order_at < y->last_order_at);
    case 1:
        return (x->frequency > y->frequency) - (x->frequency < y->frequency);
    default:
        return dec_cmp(x->monetary, y->monetary);
    }
}

START_TEST(test_random_large_against_qsort)
{
    const size_t n = 60000;
    wk_rfm_customer_t *c = malloc(n * sizeof(*c));
    wk_rfm_result_t *got = malloc(n * sizeof(*got));
    uint32_t *idx = malloc(n * sizeof(*idx));
    wk_rfm_params_t p = default_params();
    wk_rfm_stats_t stats;
    size_t i, nq = 0, s;
    int field;

    random_population(c, n, 4242, DIST_TIES);
    for (i = 0; i < n / 3; ++i) /* a third with spread-out values, so big and small buckets mix */
        c[i].last_order_at -= (int64_t)(i * 7919 % 100000);
    run(c, n, &p, got, &stats);
    for (i = 0; i < n; ++i) {
        if (c[i].has_orders)
            idx[nq++] = (uint32_t)i;
    }
    ck_assert_uint_eq(stats.scored, nq);
    sort_base = c;
    for (field = 0; field < 3; ++field) {
        sort_field = field;
        qsort(idx, nq, sizeof(*idx), compare_indexes);
        for (s = 0, i = 0; i < nq; ++i) {
            const wk_rfm_result_t *r = &got[idx[i]];
            int score;
            if (i > 0 && compare_indexes(&idx[i - 1], &idx[i]) != 0)
                s = i;
            score = (int)(1 + 5 * s / nq);
            ck_assert_int_eq(field == 0 ? r->r : field == 1 ? r->f : r->m, score);
        }
    }
    free(c);
    free(got);
    free(idx);
}
END_TEST

static Suite *rfm_suite(void)
{
    Suite *s = suite_create("rfm");
    TCase *tc;

    tc = tcase_create("args");
    tcase_add_test(tc, test_args_empty);
    tcase_add_test(tc, test_args_rejected);
    tcase_add_test(tc, test_args_data_out_of_range);
    tcase_add_test(tc, test_args_inputs_untouched);
    suite_add_tcase(s, tc);

    tc = tcase_create("scores");
    tcase_add_test(tc, test_scores_single_customer);
    tcase_add_test(tc, test_scores_all_equal);
    tcase_add_test(tc, test_scores_ties_hand_computed);
    tcase_add_test(tc, test_scores_timestamps_not_days);
    tcase_add_test(tc, test_scores_formula);
    suite_add_tcase(s, tc);

    tc = tcase_create("segments");
    tcase_add_test(tc, test_segments_every_cell);
    tcase_add_test(tc, test_segments_names);
    suite_add_tcase(s, tc);

    tc = tcase_create("lifecycle");
    tcase_add_test(tc, test_lifecycle_boundaries);
    suite_add_tcase(s, tc);

    tc = tcase_create("tiers");
    tcase_add_test(tc, test_tiers_exact_boundaries);
    tcase_add_test(tc, test_tiers_id_tiebreak);
    tcase_add_test(tc, test_tiers_extreme_shares);
    suite_add_tcase(s, tc);

    tc = tcase_create("random");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_random_heavy_ties);
    tcase_add_test(tc, test_random_wide);
    tcase_add_test(tc, test_random_outliers);
    tcase_add_test(tc, test_random_large_against_qsort);
    suite_add_tcase(s, tc);

    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(rfm_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
