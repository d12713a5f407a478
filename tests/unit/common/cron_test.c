/*
 * tests/unit/common/cron_test.c - unit tests for common/cron.c (parsing, matching, next fire time).
 *
 * The file under test is included to reach its static search helper; the
 * time zone code comes from common/tz.c (libcommon.a in the Makefile). Real
 * zones are read from the system tzdata. Besides hand-checked dates, a
 * brute-force reference walks every UTC minute around the 2026 and 2100
 * DST changes and must agree with cron_next() fire by fire.
 */
#include "../../../common/cron.c"

#include <check.h>

/* Check's assertions report every pass to the parent process; loops use this instead. */
#define CHECK(cond, ...)                                                                                               \
    do {                                                                                                               \
        if (!(cond))                                                                                                   \
            ck_abort_msg(__VA_ARGS__);                                                                                 \
    } while (0)

static int64_t ts(int64_t y, int mo, int d, int h, int mi)
{
    return tz_days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60;
}

static cron_t parse_ok(const char *expr)
{
    cron_t c;
    char err[256] = "";
    int ret = cron_parse(expr, &c, err, sizeof(err));
    ck_assert_msg(ret == 0, "cron_parse(\"%s\") = %d: %s", expr, ret, err);
    return c;
}

static void load_zone(const char *name, tz_t *tz)
{
    char err[256] = "";
    int ret = tz_load(name, tz, err, sizeof(err));
    ck_assert_msg(ret == 0, "tz_load(%s) = %d: %s", name, ret, err);
}

static uint64_t bits(const int *v, size_t n)
{
    uint64_t b = 0;
    for (size_t i = 0; i < n; i++)
        b |= UINT64_C(1) << v[i];
    return b;
}

#define BITS(...) bits((const int[]){__VA_ARGS__}, sizeof((const int[]){__VA_ARGS__}) / sizeof(int))

/* Field by field: the struct has padding that assignment need not copy. */
static bool same_cron(const cron_t *a, const cron_t *b)
{
    return a->minutes == b->minutes && a->hours == b->hours && a->mdays == b->mdays && a->months == b->months &&
           a->wdays == b->wdays && a->flags == b->flags;
}

static void format_utc(int64_t t, char *buf, size_t len)
{
    tz_civil_t c;
    if (tz_civil_from_seconds(t, &c) != 0) {
        snprintf(buf, len, "(%lld)", (long long)t);
        return;
    }
    snprintf(buf, len, "%04lld-%02d-%02dT%02d:%02d:%02dZ", (long long)c.year, c.month, c.day, c.hour, c.minute,
             c.second);
}

/* Asserts that the fire after `after` is `want`, and returns it for chaining. */
static int64_t expect_next(const char *expr, const tz_t *tz, int64_t after, int64_t want)
{
    cron_t c = parse_ok(expr);
    int64_t next = 0;
    int ret = cron_next(&c, tz, after, &next);
    char a[32], g[32], w[32];
    format_utc(after, a, sizeof(a));
    format_utc(next, g, sizeof(g));
    format_utc(want, w, sizeof(w));
    ck_assert_msg(ret == 0 && next == want, "\"%s\" in %s after %s: ret %d, got %s, want %s", expr,
                  tz == NULL ? "UTC" : tz->name, a, ret, g, w);
    return next;
}

/* ---- parsing ---- */

START_TEST(test_parse_star)
{
    cron_t c = parse_ok("* * * * *");
    ck_assert(c.minutes == (UINT64_C(1) << 60) - 1);
    ck_assert_uint_eq(c.hours, (1u << 24) - 1);
    ck_assert_uint_eq(c.mdays, 0xfffffffeu); /* 1-31 */
    ck_assert_uint_eq(c.months, 0x1ffe);     /* 1-12 */
    ck_assert_uint_eq(c.wdays, 0x7f);
    ck_assert_uint_eq(c.flags, CRON_DOM_STAR | CRON_DOW_STAR);
}
END_TEST

START_TEST(test_parse_values_ranges_lists)
{
    cron_t c = parse_ok("5 0 1 12 3");
    ck_assert(c.minutes == BITS(5));
    ck_assert_uint_eq(c.hours, BITS(0));
    ck_assert_uint_eq(c.mdays, BITS(1));
    ck_assert_uint_eq(c.months, BITS(12));
    ck_assert_uint_eq(c.wdays, BITS(3));
    ck_assert_uint_eq(c.flags, 0);

    c = parse_ok("0,59 9-17 1,15,31 1-3,10 1-5");
    ck_assert(c.minutes == BITS(0, 59));
    ck_assert_uint_eq(c.hours, BITS(9, 10, 11, 12, 13, 14, 15, 16, 17));
    ck_assert_uint_eq(c.mdays, BITS(1, 15, 31));
    ck_assert_uint_eq(c.months, BITS(1, 2, 3, 10));
    ck_assert_uint_eq(c.wdays, BITS(1, 2, 3, 4, 5));

    /* Leading zeros, a one-element range and overlapping items are fine. */
    c = parse_ok("07 23-23 5,5,1-5 * *");
    ck_assert(c.minutes == BITS(7));
    ck_assert_uint_eq(c.hours, BITS(23));
    ck_assert_uint_eq(c.mdays, BITS(1, 2, 3, 4, 5));
}
END_TEST

START_TEST(test_parse_steps)
{
    cron_t c = parse_ok("*/15 */6 */10 */3 */2");
    ck_assert(c.minutes == BITS(0, 15, 30, 45));
    ck_assert_uint_eq(c.hours, BITS(0, 6, 12, 18));
    ck_assert_uint_eq(c.mdays, BITS(1, 11, 21, 31));
    ck_assert_uint_eq(c.months, BITS(1, 4, 7, 10));
    ck_assert_uint_eq(c.wdays, BITS(0, 2, 4, 6));
    ck_assert_uint_eq(c.flags, CRON_DOM_STAR | CRON_DOW_STAR);

    c = parse_ok("10-30/10,45-59/7 1-23/11 2-9/3 jan-dec/5 1-7/3");
    ck_assert(c.minutes == BITS(10, 20, 30, 45, 52, 59));
    ck_assert_uint_eq(c.hours, BITS(1, 12, 23));
    ck_assert_uint_eq(c.mdays, BITS(2, 5, 8));
    ck_assert_uint_eq(c.months, BITS(1, 6, 11));
    ck_assert_uint_eq(c.wdays, BITS(1, 4, 0)); /* 7 is Sunday */

    /* The largest step keeps only the first value. */
    c = parse_ok("*/59 */23 */31 */12 */7");
    ck_assert(c.minutes == BITS(0, 59));
    ck_assert_uint_eq(c.hours, BITS(0, 23));
    ck_assert_uint_eq(c.mdays, BITS(1));
    ck_assert_uint_eq(c.months, BITS(1));
    ck_assert_uint_eq(c.wdays, BITS(0)); /* 0 and 7 */
}
END_TEST

START_TEST(test_parse_names)
{
    cron_t c = parse_ok("0 0 * JAN,mar,Dec MON-FRI");
    ck_assert_uint_eq(c.months, BITS(1, 3, 12));
    ck_assert_uint_eq(c.wdays, BITS(1, 2, 3, 4, 5));
    ck_assert_uint_eq(c.flags, CRON_DOM_STAR);

    c = parse_ok("0 0 * feb-Apr sun,sAt");
    ck_assert_uint_eq(c.months, BITS(2, 3, 4));
    ck_assert_uint_eq(c.wdays, BITS(0, 6));

    const char *months[] = {"JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"};
    for (int i = 0; i < 12; i++) {
        char expr[32];
        snprintf(expr, sizeof(expr), "0 0 1 %s *", months[i]);
        ck_assert_uint_eq(parse_ok(expr).months, 1u << (i + 1));
    }
    const char *days[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};
    for (int i = 0; i < 7; i++) {
        char expr[32];
        snprintf(expr, sizeof(expr), "0 0 * * %s", days[i]);
        ck_assert_uint_eq(parse_ok(expr).wdays, 1u << i);
    }
    /* Names and numbers mix. */
    ck_assert_uint_eq(parse_ok("0 0 * 1,FEB,3-apr *").months, BITS(1, 2, 3, 4));
}
END_TEST

START_TEST(test_parse_sunday_is_0_and_7)
{
    ck_assert_uint_eq(parse_ok("0 0 * * 0").wdays, BITS(0));
    ck_assert_uint_eq(parse_ok("0 0 * * 7").wdays, BITS(0));
    ck_assert_uint_eq(parse_ok("0 0 * * 5-7").wdays, BITS(5, 6, 0));
    ck_assert_uint_eq(parse_ok("0 0 * * 0-7").wdays, 0x7f);
    ck_assert_uint_eq(parse_ok("0 0 * * 0,7").wdays, BITS(0));
}
END_TEST

START_TEST(test_parse_whitespace)
{
    cron_t a = parse_ok("*/5 1 * * *");
    cron_t b = parse_ok("  \t*/5\t\t1   *\t* *  \t");
    ck_assert(same_cron(&a, &b));
}
END_TEST

START_TEST(test_parse_dom_dow_flags)
{
    ck_assert_uint_eq(parse_ok("0 0 1 * 1").flags, 0);
    ck_assert_uint_eq(parse_ok("0 0 * * 1").flags, CRON_DOM_STAR);
    ck_assert_uint_eq(parse_ok("0 0 1 * *").flags, CRON_DOW_STAR);
    /* As in Vixie cron, a field that starts with '*' counts as unrestricted, steps included. */
    ck_assert_uint_eq(parse_ok("0 0 */2 * 1").flags, CRON_DOM_STAR);
    ck_assert_uint_eq(parse_ok("0 0 1 * */2").flags, CRON_DOW_STAR);
    /* A range that covers everything is still a restriction. */
    ck_assert_uint_eq(parse_ok("0 0 1-31 * 0-6").flags, 0);
}
END_TEST

START_TEST(test_parse_macros)
{
    const struct {
        const char *macro, *same;
    } cases[] = {
        {"@yearly", "0 0 1 1 *"}, {"@annually", "0 0 1 1 *"}, {"@monthly", "0 0 1 * *"},
        {"@weekly", "0 0 * * 0"}, {"@daily", "0 0 * * *"},    {"@midnight", "0 0 * * *"},
        {"@hourly", "0 * * * *"}, {"@DAILY", "0 0 * * *"},    {"  @Hourly \t", "0 * * * *"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cron_t a = parse_ok(cases[i].macro), b = parse_ok(cases[i].same);
        ck_assert_msg(same_cron(&a, &b), "%s", cases[i].macro);
    }
}
END_TEST

START_TEST(test_parse_rejects)
{
    const struct {
        const char *expr, *msg;
    } cases[] = {
        {"", "expression is empty"},
        {" \t ", "expression is empty"},
        {NULL, "expression is empty"},
        {"* * * *", "expected 5 fields (minute hour day-of-month month day-of-week), found 4"},
        {"*", "expected 5 fields (minute hour day-of-month month day-of-week), found 1"},
        {"* * * * * *", "expected 5 fields (minute hour day-of-month month day-of-week), found 6"},
        {"0 0 0 * * * 2026", "expected 5 fields (minute hour day-of-month month day-of-week), found 7"},
        {"61 * * * *", "minute: value 61 out of range 0-59"},
        {"60 * * * *", "minute: value 60 out of range 0-59"},
        {"* 24 * * *", "hour: value 24 out of range 0-23"},
        {"* * 0 * *", "day-of-month: value 0 out of range 1-31"},
        {"* * 32 * *", "day-of-month: value 32 out of range 1-31"},
        {"* * * 0 *", "month: value 0 out of range 1-12"},
        {"* * * 13 *", "month: value 13 out of range 1-12"},
        {"* * * * 8", "day-of-week: value 8 out of range 0-7"},
        {"0-60 * * * *", "minute: value 60 out of range 0-59"},
        {"99999999999999999999999999 * * * *", "minute: value 99999999999999999999 out of range 0-59"},
        {"1,,2 * * * *", "minute: empty list item"},
        {",1 * * * *", "minute: empty list item"},
        {"1, * * * *", "minute: empty list item"},
        {"* 1,,2 * * *", "hour: empty list item"},
        {"*/0 * * * *", "minute: step 0 is not allowed"},
        {"* * 1-10/0 * *", "day-of-month: step 0 is not allowed"},
        {"*/60 * * * *", "minute: step 60 out of range 1-59"},
        {"* */24 * * *", "hour: step 24 out of range 1-23"},
        {"* * * * */8", "day-of-week: step 8 out of range 1-7"},
        {"*/ * * * *", "minute: missing step after '/'"},
        {"*/x * * * *", "minute: unexpected character 'x'"},
        {"*/5/5 * * * *", "minute: unexpected character '/'"},
        {"*/-5 * * * *", "minute: unexpected character '-'"},
        {"5/2 * * * *", "minute: a step needs '*' or a range before '/'"},
        {"30-10 * * * *", "minute: range 30-10 is reversed"},
        {"* * * DEC-JAN *", "month: range DEC-JAN is reversed"},
        {"* * * * FRI-MON", "day-of-week: range FRI-MON is reversed"},
        {"* * * * MON-SUN", "day-of-week: range MON-SUN is reversed"},
        {"5x * * * *", "minute: unexpected character 'x'"},
        {"5 * * * 1x", "day-of-week: unexpected character 'x'"},
        {"1- * * * *", "minute: missing value"},
        {"1-2-3 * * * *", "minute: unexpected character '-'"},
        {"-1 * * * *", "minute: unexpected character '-'"},
        {"*-5 * * * *", "minute: unexpected character '-'"},
        {"** * * * *", "minute: unexpected character '*'"},
        {"? * * * *", "minute: unexpected character '?'"},
        {"* * ? * *", "day-of-month: unexpected character '?'"},
        {"* * L * *", "day-of-month: unexpected character 'L'"},
        {"* * 15W * *", "day-of-month: unexpected character 'W'"},
        {"* * * * 5#3", "day-of-week: unexpected character '#'"},
        {"* * * * 5L", "day-of-week: unexpected character 'L'"},
        {"MON * * * *", "minute: unexpected character 'M'"},
        {"* * JAN * *", "day-of-month: unexpected character 'J'"},
        {"* * * FOO *", "month: unknown name \"FOO\""},
        {"* * * JANUARY *", "month: unknown name \"JANUARY\""},
        {"* * * JA *", "month: unknown name \"JA\""},
        {"* * * * MONDAY", "day-of-week: unknown name \"MONDAY\""},
        {"* * * * JAN", "day-of-week: unknown name \"JAN\""},
        {"* * * */MON *", "month: unexpected character 'M'"},
        {"0 0 * * *\n", "day-of-week: unexpected character byte 0x0a"},
        {"0 0 * * *\r", "day-of-week: unexpected character byte 0x0d"},
        {"0\v0 * * * *", "minute: unexpected character byte 0x0b"},
        {"0 0 \xc3\xa9 * *", "day-of-month: unexpected character byte 0xc3"},
        {"@reboot", "@reboot is not supported"},
        {"@fortnightly", "unknown macro \"@fortnightly\""},
        {"@", "unknown macro \"@\""},
        {"@daily x", "unexpected text after @daily"},
        {"@hourly 0 * * * *", "unexpected text after @hourly"},
        {"0 @daily", "expected 5 fields (minute hour day-of-month month day-of-week), found 2"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cron_t c, before;
        char err[256] = "";
        memset(&c, 0xa5, sizeof(c));
        before = c;
        ck_assert_msg(cron_parse(cases[i].expr, &c, err, sizeof(err)) == ERR_INVALID, "\"%s\" accepted", cases[i].expr);
        ck_assert_msg(strcmp(err, cases[i].msg) == 0, "\"%s\": got \"%s\", want \"%s\"", cases[i].expr, err,
                      cases[i].msg);
        ck_assert_msg(same_cron(&c, &before), "\"%s\": output touched", cases[i].expr);
        /* Without a buffer it still fails cleanly. */
        ck_assert_int_eq(cron_parse(cases[i].expr, &c, NULL, 0), ERR_INVALID);
    }
}
END_TEST

START_TEST(test_parse_error_buffer_truncates)
{
    char err[10];
    cron_t c;
    memset(err, '#', sizeof(err));
    ck_assert_int_eq(cron_parse("61 * * * *", &c, err, sizeof(err)), ERR_INVALID);
    ck_assert_str_eq(err, "minute: v");
    ck_assert_int_eq(cron_parse("61 * * * *", &c, err, 1), ERR_INVALID);
    ck_assert_str_eq(err, "");
}
END_TEST

/* ---- matching ---- */

static bool match_at(const cron_t *c, int64_t y, int mo, int d, int h, int mi)
{
    tz_civil_t t = {y, mo, d, h, mi, 0, 0};
    return cron_match(c, &t);
}

START_TEST(test_match_dom_dow_or_rule)
{
    /* Both restricted: the 13th OR any Friday. 2026-01-13 is a Tuesday, 2026-01-16 a Friday, 2026-02-13 both. */
    cron_t c = parse_ok("0 0 13 * FRI");
    ck_assert(match_at(&c, 2026, 1, 13, 0, 0));
    ck_assert(match_at(&c, 2026, 1, 16, 0, 0));
    ck_assert(match_at(&c, 2026, 2, 13, 0, 0));
    ck_assert(!match_at(&c, 2026, 1, 14, 0, 0));
    ck_assert(!match_at(&c, 2026, 1, 13, 0, 1));

    /* Only one restricted: that one decides. */
    c = parse_ok("0 0 13 * *");
    ck_assert(match_at(&c, 2026, 1, 13, 0, 0));
    ck_assert(!match_at(&c, 2026, 1, 16, 0, 0));
    c = parse_ok("0 0 * * FRI");
    ck_assert(!match_at(&c, 2026, 1, 13, 0, 0));
    ck_assert(match_at(&c, 2026, 1, 16, 0, 0));

    /* "1-7 * MON" is the classic surprise: days 1-7 OR every Monday, not "the first Monday". */
    c = parse_ok("0 0 1-7 * MON");
    ck_assert(match_at(&c, 2026, 1, 1, 0, 0));  /* Thursday */
    ck_assert(match_at(&c, 2026, 1, 26, 0, 0)); /* Monday */
    ck_assert(!match_at(&c, 2026, 1, 27, 0, 0));

    /* Vixie: "*" followed by a step counts as unrestricted, so both must match: odd days that are Fridays. */
    c = parse_ok("0 0 */2 * FRI");
    ck_assert(match_at(&c, 2026, 1, 9, 0, 0));   /* Friday, odd */
    ck_assert(!match_at(&c, 2026, 1, 16, 0, 0)); /* Friday, even */
    ck_assert(!match_at(&c, 2026, 1, 11, 0, 0)); /* odd, Sunday */
}
END_TEST

START_TEST(test_match_fields)
{
    cron_t c = parse_ok("*/15 9-17 * JUN-AUG MON-FRI");
    ck_assert(match_at(&c, 2026, 6, 1, 9, 0)); /* Monday */
    ck_assert(match_at(&c, 2026, 8, 31, 17, 45));
    ck_assert(!match_at(&c, 2026, 6, 1, 9, 5));
    ck_assert(!match_at(&c, 2026, 6, 1, 18, 0));
    ck_assert(!match_at(&c, 2026, 5, 29, 9, 0)); /* May */
    ck_assert(!match_at(&c, 2026, 6, 6, 9, 0));  /* Saturday */
    /* Dates that do not exist never match. */
    c = parse_ok("* * * * *");
    ck_assert(!match_at(&c, 2026, 2, 29, 0, 0));
    ck_assert(!match_at(&c, 2026, 13, 1, 0, 0));
    ck_assert(!match_at(&c, 2026, 1, 1, 24, 0));
    ck_assert(!match_at(&c, 2026, 1, 1, 0, -1));
    ck_assert(match_at(&c, 2028, 2, 29, 0, 0));
}
END_TEST

/* ---- next fire time in UTC ---- */

START_TEST(test_next_every_15_minutes)
{
    expect_next("*/15 * * * *", NULL, ts(2026, 1, 1, 0, 0), ts(2026, 1, 1, 0, 15));
    expect_next("*/15 * * * *", NULL, ts(2026, 1, 1, 0, 7) + 30, ts(2026, 1, 1, 0, 15));
    expect_next("*/15 * * * *", NULL, ts(2026, 1, 1, 0, 14) + 59, ts(2026, 1, 1, 0, 15));
    /* Strictly after: a matching instant itself is not returned. */
    expect_next("*/15 * * * *", NULL, ts(2026, 1, 1, 0, 15), ts(2026, 1, 1, 0, 30));
    expect_next("*/15 * * * *", NULL, ts(2026, 12, 31, 23, 50), ts(2027, 1, 1, 0, 0));
    expect_next("* * * * *", NULL, ts(2026, 5, 5, 5, 5) + 1, ts(2026, 5, 5, 5, 6));

    /* A whole day of quarter-hours is 96 fires, 15 minutes apart. */
    cron_t c = parse_ok("*/15 * * * *");
    int64_t t = ts(2026, 3, 1, 0, 0) - 1, prev = 0;
    for (int i = 0; i < 96; i++) {
        CHECK(cron_next(&c, NULL, t, &t) == 0, "step %d", i);
        CHECK(i == 0 || t - prev == 900, "step %d: %lld", i, (long long)(t - prev));
        prev = t;
    }
    ck_assert_int_eq(t, ts(2026, 3, 1, 23, 45));
}
END_TEST

START_TEST(test_next_month_and_year_ends)
{
    expect_next("0 0 1 * *", NULL, ts(2026, 1, 31, 12, 0), ts(2026, 2, 1, 0, 0));
    expect_next("0 0 1 1 *", NULL, ts(2026, 6, 1, 0, 0), ts(2027, 1, 1, 0, 0));
    expect_next("59 23 31 12 *", NULL, ts(2026, 12, 31, 23, 59), ts(2027, 12, 31, 23, 59));
    expect_next("59 23 31 12 *", NULL, ts(2026, 12, 31, 23, 58), ts(2026, 12, 31, 23, 59));
    /* The 31st skips the months that lack one. */
    int64_t t = expect_next("0 0 31 * *", NULL, ts(2026, 1, 31, 0, 0), ts(2026, 3, 31, 0, 0));
    t = expect_next("0 0 31 * *", NULL, t, ts(2026, 5, 31, 0, 0));
    t = expect_next("0 0 31 * *", NULL, t, ts(2026, 7, 31, 0, 0));
    t = expect_next("0 0 31 * *", NULL, t, ts(2026, 8, 31, 0, 0));
    expect_next("0 0 31 * *", NULL, t, ts(2026, 10, 31, 0, 0));
    /* The last minute of a day rolls into the next month and year. */
    expect_next("0 0 * * *", NULL, ts(2026, 12, 31, 23, 59), ts(2027, 1, 1, 0, 0));
    expect_next("30 * * * *", NULL, ts(2026, 2, 28, 23, 30), ts(2026, 3, 1, 0, 30));
    /* Month names and steps. */
    expect_next("0 12 1 */3 *", NULL, ts(2026, 4, 1, 12, 0), ts(2026, 7, 1, 12, 0));
    expect_next("15 10 * NOV MON", NULL, ts(2026, 1, 1, 0, 0), ts(2026, 11, 2, 10, 15));
    /* Before 1970. */
    expect_next("0 0 1 1 *", NULL, ts(1969, 6, 1, 0, 0), 0);
    expect_next("*/15 * * * *", NULL, -1, 0);
    expect_next("*/15 * * * *", NULL, -901, -900);
}
END_TEST

START_TEST(test_next_leap_day)
{
    int64_t t = expect_next("0 0 29 2 *", NULL, ts(2026, 1, 1, 0, 0), ts(2028, 2, 29, 0, 0));
    expect_next("0 0 29 2 *", NULL, t, ts(2032, 2, 29, 0, 0));
    /* 2100 is not a leap year: eight years from 2096 to 2104. */
    expect_next("0 0 29 2 *", NULL, ts(2096, 3, 1, 0, 0), ts(2104, 2, 29, 0, 0));
    expect_next("0 0 29 2 *", NULL, ts(1999, 1, 1, 0, 0), ts(2000, 2, 29, 0, 0)); /* 2000 is */
    expect_next("0 0 * 2 *", NULL, ts(2028, 2, 28, 12, 0), ts(2028, 2, 29, 0, 0));
    expect_next("0 0 * 2 *", NULL, ts(2026, 2, 28, 12, 0), ts(2027, 2, 1, 0, 0));
    expect_next("0 0 1 3 *", NULL, ts(2028, 2, 28, 12, 0), ts(2028, 3, 1, 0, 0));
    /* Feb 29 OR a Tuesday: 2028-02-29 is a Tuesday; the day before is a Monday. */
    expect_next("0 0 29 2 TUE", NULL, ts(2028, 2, 27, 0, 0), ts(2028, 2, 29, 0, 0));
}
END_TEST

START_TEST(test_next_dom_dow)
{
    /* 13th OR Friday, January 2026: Fri 2, Fri 9, Tue 13, Fri 16, ... */
    int64_t t = expect_next("0 9 13 * FRI", NULL, ts(2026, 1, 1, 0, 0), ts(2026, 1, 2, 9, 0));
    t = expect_next("0 9 13 * FRI", NULL, t, ts(2026, 1, 9, 9, 0));
    t = expect_next("0 9 13 * FRI", NULL, t, ts(2026, 1, 13, 9, 0));
    expect_next("0 9 13 * FRI", NULL, t, ts(2026, 1, 16, 9, 0));
    /* Sunday as 0, as 7 and as a name. */
    expect_next("0 0 * * 7", NULL, ts(2026, 3, 24, 0, 0), ts(2026, 3, 29, 0, 0));
    expect_next("0 0 * * 0", NULL, ts(2026, 3, 24, 0, 0), ts(2026, 3, 29, 0, 0));
    expect_next("0 0 * * sun", NULL, ts(2026, 3, 24, 0, 0), ts(2026, 3, 29, 0, 0));
    /* AND when one field starts with '*': odd days that are Fridays; the next after Jan 1 2026 is the 9th. */
    expect_next("0 0 */2 * FRI", NULL, ts(2026, 1, 1, 0, 0), ts(2026, 1, 9, 0, 0));
    /* Weekdays only, over a weekend. */
    expect_next("0 0 * * MON-FRI", NULL, ts(2026, 1, 2, 12, 0), ts(2026, 1, 5, 0, 0));
}
END_TEST

START_TEST(test_next_never_matches)
{
    const char *never[] = {"0 0 30 2 *", "0 0 31 2 *", "0 0 31 4,6,9,11 *", "* * 30-31 2 *"};
    for (size_t i = 0; i < sizeof(never) / sizeof(never[0]); i++) {
        cron_t c = parse_ok(never[i]);
        int64_t next = 42;
        ck_assert_int_eq(cron_next(&c, NULL, ts(2026, 1, 1, 0, 0), &next), ERR_NOT_FOUND);
        ck_assert_int_eq(next, 42);
    }
    /* With a restricted weekday the OR rule makes it match after all. */
    expect_next("0 0 30 2 MON", NULL, ts(2026, 1, 1, 0, 0), ts(2026, 2, 2, 0, 0));
}
END_TEST

START_TEST(test_next_limits)
{
    cron_t c = parse_ok("0 0 1 1 *");
    int64_t next;
    tz_t unloaded = {{0}, NULL};
    ck_assert_int_eq(cron_next(&c, NULL, TZ_TIME_MAX + 1, &next), ERR_INVALID);
    ck_assert_int_eq(cron_next(&c, NULL, TZ_TIME_MIN - 1, &next), ERR_INVALID);
    ck_assert_int_eq(cron_next(&c, NULL, INT64_MAX, &next), ERR_INVALID);
    ck_assert_int_eq(cron_next(&c, &unloaded, 0, &next), ERR_INVALID);
    /* Nothing after the end of year 9999. */
    ck_assert_int_eq(cron_next(&c, NULL, ts(9999, 6, 1, 0, 0), &next), ERR_NOT_FOUND);
    ck_assert_int_eq(cron_next(&c, NULL, TZ_TIME_MAX, &next), ERR_NOT_FOUND);
    expect_next("59 23 31 12 *", NULL, ts(9999, 6, 1, 0, 0), ts(9999, 12, 31, 23, 59));
    expect_next("0 0 1 1 *", NULL, TZ_TIME_MIN, ts(2, 1, 1, 0, 0));
    /* The search window (CRON_SEARCH_YEARS) covers the 28 years between Feb 29s on a Sunday (AND rule). */
    expect_next("0 0 29 2 */7", NULL, ts(2032, 3, 1, 0, 0), ts(2060, 2, 29, 0, 0));
}
END_TEST

START_TEST(test_next_is_fast)
{
    /* Field-wise jumps: thousands of searches, including never-matching ones, run well within the timeout. */
    const char *exprs[] = {"0 0 29 2 *", "0 0 30 2 *", "59 23 31 12 *", "*/7 3 13 * FRI", "0 0 29 2 */2"};
    tz_t berlin;
    load_zone("Europe/Berlin", &berlin);
    for (size_t e = 0; e < sizeof(exprs) / sizeof(exprs[0]); e++) {
        cron_t c = parse_ok(exprs[e]);
        for (int i = 0; i < 2000; i++) {
            int64_t next = 0, after = ts(2026, 1, 1, 0, 0) + (int64_t)i * 86400 * 17;
            int ret = cron_next(&c, &berlin, after, &next);
            CHECK(ret == 0 ? next > after : ret == ERR_NOT_FOUND, "%s: %d", exprs[e], ret);
        }
    }
    tz_free(&berlin);
}
END_TEST

/* ---- next fire time across DST changes ---- */

START_TEST(test_next_berlin_spring_forward)
{
    tz_t tz;
    load_zone("Europe/Berlin", &tz);
    /* 2026-03-29 02:00 CET becomes 03:00 CEST (01:00Z): 02:xx does not exist that night. */
    expect_next("30 2 * * *", &tz, ts(2026, 3, 28, 12, 0), ts(2026, 3, 30, 0, 30));
    expect_next("0 2 * * *", &tz, ts(2026, 3, 28, 12, 0), ts(2026, 3, 30, 0, 0));
    expect_next("0 3 * * *", &tz, ts(2026, 3, 28, 12, 0), ts(2026, 3, 29, 1, 0));
    expect_next("59 1 * * *", &tz, ts(2026, 3, 28, 12, 0), ts(2026, 3, 29, 0, 59));
    /* Hourly and quarter-hourly jobs just lose the hour that does not exist. */
    int64_t t = expect_next("0 * * * *", &tz, ts(2026, 3, 28, 23, 30), ts(2026, 3, 29, 0, 0)); /* 01:00 CET */
    expect_next("0 * * * *", &tz, t, ts(2026, 3, 29, 1, 0));                                   /* 03:00 CEST */
    expect_next("*/15 * * * *", &tz, ts(2026, 3, 29, 0, 45), ts(2026, 3, 29, 1, 0));
    /* Business hours keep their wall-clock time: 09:00 CET, then 09:00 CEST. */
    t = expect_next("0 9 * * *", &tz, ts(2026, 3, 28, 0, 0), ts(2026, 3, 28, 8, 0));
    t = expect_next("0 9 * * *", &tz, t, ts(2026, 3, 29, 7, 0));
    tz_free(&tz);
}
END_TEST

START_TEST(test_next_berlin_fall_back)
{
    tz_t tz;
    load_zone("Europe/Berlin", &tz);
    /* 2026-10-25 03:00 CEST becomes 02:00 CET (01:00Z): 02:xx happens twice and fires the first time only. */
    int64_t t = expect_next("30 2 * * *", &tz, ts(2026, 10, 24, 12, 0), ts(2026, 10, 25, 0, 30)); /* CEST */
    expect_next("30 2 * * *", &tz, t, ts(2026, 10, 26, 1, 30));                                   /* next day, CET */
    /* Asked from inside the second pass (02:40 CET), 02:45 has already fired at 02:45 CEST. */
    expect_next("45 2 * * *", &tz, ts(2026, 10, 25, 1, 40), ts(2026, 10, 26, 1, 45));
    /* Quarter-hourly: 02:00 .. 02:45 CEST, then silence through the repeated hour, then 03:00 CET. */
    const int64_t want[] = {ts(2026, 10, 25, 0, 0),  ts(2026, 10, 25, 0, 15), ts(2026, 10, 25, 0, 30),
                            ts(2026, 10, 25, 0, 45), ts(2026, 10, 25, 2, 0),  ts(2026, 10, 25, 2, 15)};
    t = ts(2026, 10, 24, 23, 50);
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
        t = expect_next("*/15 * * * *", &tz, t, want[i]);
    /* Times outside the repeated hour are unaffected. */
    expect_next("0 3 * * *", &tz, ts(2026, 10, 24, 12, 0), ts(2026, 10, 25, 2, 0));
    expect_next("59 1 * * *", &tz, ts(2026, 10, 24, 12, 0), ts(2026, 10, 24, 23, 59));
    expect_next("0 9 * * *", &tz, ts(2026, 10, 24, 12, 0), ts(2026, 10, 25, 8, 0));
    tz_free(&tz);
}
END_TEST

START_TEST(test_next_new_york)
{
    tz_t tz;
    load_zone("America/New_York", &tz);
    /* 2026-03-08 02:00 EST becomes 03:00 EDT; 2026-11-01 02:00 EDT becomes 01:00 EST. */
    expect_next("30 2 * * *", &tz, ts(2026, 3, 7, 12, 0), ts(2026, 3, 9, 6, 30));
    int64_t t = expect_next("30 1 * * *", &tz, ts(2026, 10, 31, 12, 0), ts(2026, 11, 1, 5, 30));
    expect_next("30 1 * * *", &tz, t, ts(2026, 11, 2, 6, 30));
    /* Friday 10:00 EST to Monday 09:00 EDT. */
    expect_next("0 9 * * MON-FRI", &tz, ts(2026, 3, 6, 15, 0), ts(2026, 3, 9, 13, 0));
    tz_free(&tz);
}
END_TEST

START_TEST(test_next_lord_howe_and_kolkata)
{
    tz_t tz;
    load_zone("Australia/Lord_Howe", &tz);
    /* 2026-10-04 02:00 (+10:30) becomes 02:30 (+11): only half an hour is skipped. */
    expect_next("15 2 * * *", &tz, ts(2026, 10, 3, 0, 0), ts(2026, 10, 4, 15, 15)); /* 10-05 02:15 +11 */
    expect_next("45 2 * * *", &tz, ts(2026, 10, 3, 0, 0), ts(2026, 10, 3, 15, 45)); /* 10-04 02:45 +11 */
    /* 2026-04-05 02:00 (+11) becomes 01:30 (+10:30): 01:30-01:59 repeats. */
    int64_t t = expect_next("45 1 * * *", &tz, ts(2026, 4, 4, 0, 0), ts(2026, 4, 4, 14, 45));
    expect_next("45 1 * * *", &tz, t, ts(2026, 4, 5, 15, 15));
    expect_next("15 1 * * *", &tz, ts(2026, 4, 4, 0, 0), ts(2026, 4, 4, 14, 15));
    tz_free(&tz);

    load_zone("Asia/Kolkata", &tz);
    expect_next("0 9 * * *", &tz, ts(2026, 1, 1, 0, 0), ts(2026, 1, 1, 3, 30));
    expect_next("*/15 * * * *", &tz, ts(2026, 1, 1, 3, 31), ts(2026, 1, 1, 3, 45));
    expect_next("0 0 1 1 *", &tz, ts(2026, 6, 1, 0, 0), ts(2026, 12, 31, 18, 30));
    tz_free(&tz);
}
END_TEST

START_TEST(test_next_far_future)
{
    /* 2100 is past Berlin's last listed transition; the footer rule gives the last Sundays of March and October. */
    tz_t tz;
    load_zone("Europe/Berlin", &tz);
    expect_next("30 2 * * *", &tz, ts(2100, 3, 27, 12, 0), ts(2100, 3, 29, 0, 30));
    expect_next("30 2 * * *", &tz, ts(2100, 10, 30, 12, 0), ts(2100, 10, 31, 0, 30));
    expect_next("0 12 1 7 *", &tz, ts(2100, 1, 1, 0, 0), ts(2100, 7, 1, 10, 0));
    expect_next("0 12 1 12 *", &tz, ts(2100, 1, 1, 0, 0), ts(2100, 12, 1, 11, 0));
    tz_free(&tz);
    load_zone("America/New_York", &tz);
    expect_next("0 0 1 7 *", &tz, ts(2150, 1, 1, 0, 0), ts(2150, 7, 1, 4, 0));
    tz_free(&tz);
}
END_TEST

/*
 * The reference: scan every UTC minute u; u fires when the wall clock
 * shows a whole minute that matches and u is that wall time's first
 * occurrence. cron_next() chained from `from` must list the same minutes.
 */
static void compare_brute_force(const char *expr, const char *zone, int64_t from, int64_t to)
{
    tz_t tz;
    cron_t c = parse_ok(expr);
    load_zone(zone, &tz);
    int64_t t = from, expected = from;
    int fires = 0;
    for (;;) {
        /* The next reference fire after `expected`. */
        int64_t u = expected - expected % 60 + 60;
        for (; u <= to; u += 60) {
            int64_t local, first;
            tz_civil_t civil;
            tz_local_kind_t kind;
            CHECK(tz_utc_to_local(&tz, u, &local, NULL) == 0, "utc_to_local");
            CHECK(tz_civil_from_seconds(local, &civil) == 0, "civil");
            if (civil.second != 0 || !cron_match(&c, &civil))
                continue;
            CHECK(tz_local_to_utc(&tz, local, &first, &kind) == 0, "local_to_utc");
            if (first == u)
                break;
        }
        int64_t next = 0;
        int ret = cron_next(&c, &tz, t, &next);
        if (u > to) {
            CHECK(ret != 0 || next > to, "%s %s: extra fire at %lld", expr, zone, (long long)next);
            break;
        }
        CHECK(ret == 0 && next == u, "%s %s after %lld: got %lld (ret %d), want %lld", expr, zone, (long long)t,
              (long long)next, ret, (long long)u);
        t = expected = u;
        fires++;
    }
    CHECK(fires > 0, "%s %s: no fires in the window", expr, zone);
    tz_free(&tz);
}

START_TEST(test_next_matches_brute_force)
{
    const char *exprs[] = {"* * * * *",    "*/15 * * * *",  "30 2 * * *",   "0,30 1-3 * * *",
                           "45 1 * * SUN", "*/7 */2 * * *", "0 0 13 * FRI", "10 2,3 * * *"};
    const struct {
        const char *zone;
        int64_t y;
        int m, d;
    } changes[] = {
        {"Europe/Berlin", 2026, 3, 29},    {"Europe/Berlin", 2026, 10, 25},     {"America/New_York", 2026, 3, 8},
        {"America/New_York", 2026, 11, 1}, {"Australia/Lord_Howe", 2026, 4, 5}, {"Australia/Lord_Howe", 2026, 10, 4},
        {"Europe/Berlin", 2100, 3, 28},    {"Europe/Berlin", 2100, 10, 31},     {"Asia/Kolkata", 2026, 3, 29},
    };
    for (size_t z = 0; z < sizeof(changes) / sizeof(changes[0]); z++) {
        int64_t day = ts(changes[z].y, changes[z].m, changes[z].d, 0, 0);
        for (size_t e = 0; e < sizeof(exprs) / sizeof(exprs[0]); e++)
            compare_brute_force(exprs[e], changes[z].zone, day - 4 * 86400 - 17, day + 4 * 86400);
    }
}
END_TEST

static Suite *cron_suite(void)
{
    Suite *s = suite_create("cron");
    TCase *tc;

    tc = tcase_create("parse");
    tcase_add_test(tc, test_parse_star);
    tcase_add_test(tc, test_parse_values_ranges_lists);
    tcase_add_test(tc, test_parse_steps);
    tcase_add_test(tc, test_parse_names);
    tcase_add_test(tc, test_parse_sunday_is_0_and_7);
    tcase_add_test(tc, test_parse_whitespace);
    tcase_add_test(tc, test_parse_dom_dow_flags);
    tcase_add_test(tc, test_parse_macros);
    tcase_add_test(tc, test_parse_rejects);
    tcase_add_test(tc, test_parse_error_buffer_truncates);
    suite_add_tcase(s, tc);

    tc = tcase_create("match");
    tcase_add_test(tc, test_match_dom_dow_or_rule);
    tcase_add_test(tc, test_match_fields);
    suite_add_tcase(s, tc);

    tc = tcase_create("next_utc");
    tcase_set_timeout(tc, 10);
    tcase_add_test(tc, test_next_every_15_minutes);
    tcase_add_test(tc, test_next_month_and_year_ends);
    tcase_add_test(tc, test_next_leap_day);
    tcase_add_test(tc, test_next_dom_dow);
    tcase_add_test(tc, test_next_never_matches);
    tcase_add_test(tc, test_next_limits);
    tcase_add_test(tc, test_next_is_fast);
    suite_add_tcase(s, tc);

    tc = tcase_create("next_dst");
    tcase_set_timeout(tc, 10);
    tcase_add_test(tc, test_next_berlin_spring_forward);
    tcase_add_test(tc, test_next_berlin_fall_back);
    tcase_add_test(tc, test_next_new_york);
    tcase_add_test(tc, test_next_lord_howe_and_kolkata);
    tcase_add_test(tc, test_next_far_future);
    tcase_add_test(tc, test_next_matches_brute_force);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(cron_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
