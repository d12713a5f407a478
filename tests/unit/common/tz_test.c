/*
 * tests/unit/common/tz_test.c - unit tests for common/tz.c (TZif loading, POSIX rules, conversions).
 *
 * The file under test is included so that the POSIX rule parser and the
 * rule arithmetic, which are static, can be tested directly. Real zones
 * come from the system tzdata (/usr/share/zoneinfo); malformed and unusual
 * files are written by hand into a private temporary directory that a
 * checked fixture creates and removes around each test of the "load" case.
 */
#include "../../../common/tz.c"

#include <check.h>
#include <dirent.h>
#include <sys/stat.h>

/* UTC seconds of a date and time; tz_days_from_civil() itself is checked against known constants below. */
static int64_t ts(int64_t y, int mo, int d, int h, int mi)
{
    return tz_days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60;
}

static void load_ok(const char *name, tz_t *tz)
{
    char err[256] = "";
    int ret = tz_load(name, tz, err, sizeof(err));
    ck_assert_msg(ret == 0, "tz_load(%s) = %d: %s", name, ret, err);
}

/*
 * Check's assertions report every pass to the parent process, which makes
 * them slow in loops of a million iterations; loops use this instead.
 */
#define CHECK(cond, ...)                                                                                               \
    do {                                                                                                               \
        if (!(cond))                                                                                                   \
            ck_abort_msg(__VA_ARGS__);                                                                                 \
    } while (0)

static int32_t offset_at(const tz_t *tz, int64_t utc)
{
    int32_t off = -1;
    int64_t local = 0;
    int ret = tz_utc_to_local(tz, utc, &local, &off);
    CHECK(ret == 0 && local == utc + off, "tz_utc_to_local(%lld) = %d", (long long)utc, ret);
    return off;
}

/* ---- a scratch directory for hand-made zone files ---- */

static char scratch[64];

static void make_scratch(void)
{
    strcpy(scratch, "/tmp/tz_test.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(scratch));
}

static void remove_scratch(void)
{
    DIR *dir = opendir(scratch);
    if (dir == NULL)
        return;
    struct dirent *e;
    while ((e = readdir(dir)) != NULL) {
        char path[512];
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(path, sizeof(path), "%s/%s", scratch, e->d_name);
        if (unlink(path) != 0)
            rmdir(path);
    }
    closedir(dir);
    rmdir(scratch);
}

static void write_scratch(const char *name, const void *data, size_t len)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", scratch, name);
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(data, 1, len, f), len);
    fclose(f);
}

/* A zone file as written by hand: one data block, optionally preceded by an empty v1 block. */
struct tzif_spec {
    char version; /* 0 for version 1, else '2', '3', '4' */
    int ntrans;
    int64_t trans[4];
    uint8_t idx[4];
    int ntypes;
    int32_t utoff[4];
    uint8_t isdst[4];
    uint8_t abbrind[4];
    const char *chars; /* NUL-separated abbreviations */
    uint32_t charcnt;
    uint32_t leapcnt;
    const char *footer; /* v2+: written between newlines; NULL writes none */
};

struct buf_t {
    uint8_t data[4096];
    size_t len;
};

static void put_bytes(struct buf_t *b, const void *p, size_t n)
{
    ck_assert_uint_le(b->len + n, sizeof(b->data));
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

static void put_be(struct buf_t *b, uint64_t v, int bytes)
{
    for (int i = bytes - 1; i >= 0; i--) {
        uint8_t c = (uint8_t)(v >> (8 * i));
        put_bytes(b, &c, 1);
    }
}

static void put_header(struct buf_t *b, char version, uint32_t timecnt, uint32_t typecnt, uint32_t charcnt,
                       uint32_t leapcnt)
{
    uint8_t zero[15] = {0};
    put_bytes(b, "TZif", 4);
    put_bytes(b, &version, 1);
    put_bytes(b, zero, 15);
    put_be(b, 0, 4); /* isutcnt */
    put_be(b, 0, 4); /* isstdcnt */
    put_be(b, leapcnt, 4);
    put_be(b, timecnt, 4);
    put_be(b, typecnt, 4);
    put_be(b, charcnt, 4);
}

static void build_tzif(const struct tzif_spec *s, struct buf_t *b)
{
    int timesize = s->version == 0 ? 4 : 8;
    b->len = 0;
    if (s->version != 0) {
        /* A minimal v1 block (one type "", no transitions), as slim zic output writes. */
        put_header(b, s->version, 0, 1, 1, 0);
        put_be(b, 0, 4);
        put_be(b, 0, 2);
        put_be(b, 0, 1);
    }
    put_header(b, s->version, (uint32_t)s->ntrans, (uint32_t)s->ntypes, s->charcnt, s->leapcnt);
    for (int i = 0; i < s->ntrans; i++)
        put_be(b, (uint64_t)s->trans[i], timesize);
    for (int i = 0; i < s->ntrans; i++)
        put_bytes(b, &s->idx[i], 1);
    for (int i = 0; i < s->ntypes; i++) {
        put_be(b, (uint32_t)s->utoff[i], 4);
        put_bytes(b, &s->isdst[i], 1);
        put_bytes(b, &s->abbrind[i], 1);
    }
    put_bytes(b, s->chars, s->charcnt);
    for (uint32_t i = 0; i < s->leapcnt; i++) {
        put_be(b, 0, timesize);
        put_be(b, 1, 4);
    }
    if (s->version != 0 && s->footer != NULL) {
        put_bytes(b, "\n", 1);
        put_bytes(b, s->footer, strlen(s->footer));
        put_bytes(b, "\n", 1);
    }
}

/* A valid version 2 zone: "AAA" +1h until 2000-01-01, then "BBB" +2h (DST) until 2100-01-01, then the footer. */
static struct tzif_spec sample_spec(void)
{
    struct tzif_spec s = {
        .version = '2',
        .ntrans = 2,
        .trans = {946684800, 4102444800},
        .idx = {1, 0},
        .ntypes = 2,
        .utoff = {3600, 7200},
        .isdst = {0, 1},
        .abbrind = {0, 4},
        .chars = "AAA\0BBB",
        .charcnt = 8,
        .footer = "AAA-1",
    };
    return s;
}

static int load_spec(const struct tzif_spec *s, tz_t *tz, char *err, size_t errlen)
{
    struct buf_t b;
    build_tzif(s, &b);
    write_scratch("Zone", b.data, b.len);
    return tz_load_dir(scratch, "Zone", tz, err, errlen);
}

/* Builds a zone from a POSIX TZ string alone (no transitions), as a footer-only TZif file would. */
static void load_rule(const char *spec, tz_t *tz)
{
    char err[256] = "";
    struct st_tz_data_t *d = calloc(1, sizeof(*d) + sizeof(struct st_tz_ttype_t));
    ck_assert_ptr_nonnull(d);
    ck_assert_msg(parse_rule(spec, &d->rule, err, sizeof(err)) == 0, "%s: %s", spec, err);
    d->has_rule = true;
    d->ntypes = 1;
    d->types = (struct st_tz_ttype_t *)(d + 1);
    d->types[0] = d->rule.std;
    memset(tz, 0, sizeof(*tz));
    tz->_data = d;
}

/* ---- civil calendar arithmetic ---- */

START_TEST(test_days_from_civil_constants)
{
    ck_assert_int_eq(tz_days_from_civil(1970, 1, 1), 0);
    ck_assert_int_eq(tz_days_from_civil(1969, 12, 31), -1);
    ck_assert_int_eq(tz_days_from_civil(2000, 3, 1) * 86400, 951868800);
    ck_assert_int_eq(tz_days_from_civil(1, 1, 1) * 86400, TZ_TIME_MIN);
    ck_assert_int_eq(ts(9999, 12, 31, 23, 59) + 59, TZ_TIME_MAX);
    ck_assert_int_eq(ts(2026, 3, 29, 1, 0), 1774746000);
    ck_assert_int_eq(ts(2026, 10, 25, 1, 0), 1792890000);
    ck_assert_int_eq(ts(2100, 3, 28, 1, 0), 4109878800);
    ck_assert_int_eq(ts(2038, 1, 19, 3, 14), 2147483640);
}
END_TEST

START_TEST(test_civil_round_trip_every_day)
{
    /* Every day from 0001-01-01 to 9999-12-31 splits and joins back, consecutively. */
    int64_t days = tz_days_from_civil(1, 1, 1), last = tz_days_from_civil(9999, 12, 31);
    int64_t y = 1;
    int m = 1, d = 1, wday = 1; /* 0001-01-01 was a Monday (proleptic Gregorian) */
    for (; days <= last; days++) {
        tz_civil_t c;
        int64_t back = 0;
        CHECK(tz_civil_from_seconds(days * 86400 + 45296, &c) == 0, "day %lld rejected", (long long)days);
        CHECK(c.year == y && c.month == m && c.day == d && c.wday == wday && c.hour == 12 && c.minute == 34 &&
                  c.second == 56,
              "day %lld: got %lld-%d-%d w%d, want %lld-%d-%d w%d", (long long)days, (long long)c.year, c.month, c.day,
              c.wday, (long long)y, m, d, wday);
        CHECK(tz_civil_to_seconds(&c, &back) == 0 && back == days * 86400 + 45296, "day %lld: no round trip",
              (long long)days);
        wday = (wday + 1) % 7;
        if (++d > tz_days_in_month(y, m)) {
            d = 1;
            if (++m > 12) {
                m = 1;
                y++;
            }
        }
    }
}
END_TEST

START_TEST(test_days_in_month)
{
    ck_assert_int_eq(tz_days_in_month(2026, 2), 28);
    ck_assert_int_eq(tz_days_in_month(2028, 2), 29);
    ck_assert_int_eq(tz_days_in_month(2000, 2), 29);
    ck_assert_int_eq(tz_days_in_month(2100, 2), 28);
    ck_assert_int_eq(tz_days_in_month(2026, 4), 30);
    ck_assert_int_eq(tz_days_in_month(2026, 12), 31);
    ck_assert_int_eq(tz_days_in_month(2026, 0), 0);
    ck_assert_int_eq(tz_days_in_month(2026, 13), 0);
}
END_TEST

START_TEST(test_civil_rejects_out_of_range)
{
    tz_civil_t c;
    int64_t s;
    ck_assert_int_eq(tz_civil_from_seconds(TZ_TIME_MAX + 1, &c), ERR_INVALID);
    ck_assert_int_eq(tz_civil_from_seconds(TZ_TIME_MIN - 1, &c), ERR_INVALID);
    ck_assert_int_eq(tz_civil_from_seconds(-1, &c), 0);
    ck_assert(c.year == 1969 && c.month == 12 && c.day == 31 && c.hour == 23 && c.minute == 59 && c.second == 59);
    ck_assert_int_eq(c.wday, 3);

    tz_civil_t good = {2024, 2, 29, 23, 59, 59, 0};
    ck_assert_int_eq(tz_civil_to_seconds(&good, &s), 0);
    tz_civil_t bad[] = {
        {2026, 2, 29, 0, 0, 0, 0}, {2026, 13, 1, 0, 0, 0, 0}, {2026, 0, 1, 0, 0, 0, 0},  {2026, 4, 31, 0, 0, 0, 0},
        {2026, 1, 0, 0, 0, 0, 0},  {2026, 1, 1, 24, 0, 0, 0}, {2026, 1, 1, 0, 60, 0, 0}, {2026, 1, 1, 0, 0, 60, 0},
        {2026, 1, 1, -1, 0, 0, 0}, {0, 1, 1, 0, 0, 0, 0},     {10000, 1, 1, 0, 0, 0, 0},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_msg(tz_civil_to_seconds(&bad[i], &s) == ERR_INVALID, "case %zu accepted", i);
}
END_TEST

/* ---- zone names ---- */

START_TEST(test_name_valid)
{
    const char *ok[] = {"UTC",       "Etc/UTC",      "Europe/Berlin", "America/Argentina/Buenos_Aires",
                        "Etc/GMT+5", "Etc/GMT-14",   "EST5EDT",       "America/Port-au-Prince",
                        "a",         "A/b/c/d/e/f/g"};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
        ck_assert_msg(tz_name_check(ok[i], NULL, 0) == 0, "%s rejected", ok[i]);
    char name[TZ_NAME_MAX + 1];
    memset(name, 'x', TZ_NAME_MAX);
    name[TZ_NAME_MAX] = '\0';
    ck_assert_int_eq(tz_name_check(name, NULL, 0), 0);
}
END_TEST

START_TEST(test_name_invalid)
{
    char long200[201], long65[66];
    memset(long200, 'A', 200);
    long200[200] = '\0';
    memset(long65, 'A', 65);
    long65[65] = '\0';
    const struct {
        const char *name, *msg;
    } cases[] = {
        {"", "time zone name is empty"},
        {NULL, "time zone name is empty"},
        {"../etc/passwd", "time zone name must not contain \"..\""},
        {"Europe/../../etc/passwd", "time zone name must not contain \"..\""},
        {"..", "time zone name must not contain \"..\""},
        {"/etc/passwd", "time zone name must not start with '/'"},
        {"/", "time zone name must not start with '/'"},
        {"Europe//Berlin", "time zone name has an empty segment"},
        {"Europe/Berlin/", "time zone name has an empty segment"},
        {long200, "time zone name is longer than 64 characters"},
        {long65, "time zone name is longer than 64 characters"},
        {"Europe/./Berlin", "time zone name may contain only letters, digits, '_', '+', '-' and '/'"},
        {".hidden", "time zone name may contain only letters, digits, '_', '+', '-' and '/'"},
        {"zone.tab", "time zone name may contain only letters, digits, '_', '+', '-' and '/'"},
        {"Europe/Ber lin", "time zone name may contain only letters, digits, '_', '+', '-' and '/'"},
        {"Europe\\Berlin", "time zone name may contain only letters, digits, '_', '+', '-' and '/'"},
        {"Europe/Berlin\n", "time zone name may contain only letters, digits, '_', '+', '-' and '/'"},
        {"Europe/Berlin;rm", "time zone name may contain only letters, digits, '_', '+', '-' and '/'"},
        {"Europe/Z\xc3\xbcrich", "time zone name may contain only letters, digits, '_', '+', '-' and '/'"},
        {"~root", "time zone name may contain only letters, digits, '_', '+', '-' and '/'"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char err[256] = "";
        tz_t tz;
        ck_assert_int_eq(tz_name_check(cases[i].name, err, sizeof(err)), ERR_INVALID);
        ck_assert_str_eq(err, cases[i].msg);
        /* The name is refused before any file access: a missing directory would otherwise say "unknown". */
        err[0] = '\0';
        ck_assert_int_eq(tz_load_dir("/nonexistent-tz-dir", cases[i].name, &tz, err, sizeof(err)), ERR_INVALID);
        ck_assert_str_eq(err, cases[i].msg);
        ck_assert_ptr_null(tz._data);
        tz_free(&tz);
        ck_assert_int_eq(tz_load(cases[i].name, &tz, NULL, 0), ERR_INVALID);
    }
}
END_TEST

START_TEST(test_name_error_buffer_truncates)
{
    char err[8];
    memset(err, '#', sizeof(err));
    ck_assert_int_eq(tz_name_check("", err, sizeof(err)), ERR_INVALID);
    ck_assert_str_eq(err, "time zo");
    ck_assert_int_eq(tz_name_check("", err, 0), ERR_INVALID);
}
END_TEST

/* ---- loading real and hand-made files ---- */

START_TEST(test_load_system_zones)
{
    const char *names[] = {"Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata",
                           "UTC",           "Etc/UTC"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        tz_t tz;
        load_ok(names[i], &tz);
        ck_assert_str_eq(tz.name, names[i]);
        ck_assert_ptr_nonnull(tz._data);
        tz_free(&tz);
        ck_assert_ptr_null(tz._data);
        tz_free(&tz); /* twice is harmless */
    }
    /* The system files are version 2+ with a footer; Berlin's rule is the EU one. */
    tz_t tz;
    load_ok("Europe/Berlin", &tz);
    ck_assert(tz._data->has_rule);
    ck_assert(tz._data->rule.has_dst);
    ck_assert_int_eq(tz._data->rule.std.utoff, 3600);
    ck_assert_int_eq(tz._data->rule.dst.utoff, 7200);
    ck_assert_str_eq(tz._data->rule.dst.abbr, "CEST");
    tz_free(&tz);
}
END_TEST

START_TEST(test_load_utc)
{
    tz_t tz;
    bool isdst = true;
    const char *abbr = NULL;
    int64_t times[] = {TZ_TIME_MIN, -1, 0, 1774746000, ts(2100, 7, 1, 0, 0), TZ_TIME_MAX};
    const char *names[] = {"UTC", "Etc/UTC"};
    const char *dirs[] = {TZ_DEFAULT_DIR, "/nonexistent-tz-dir"}; /* the second uses the built-in fallback */
    for (int n = 0; n < 2; n++) {
        for (int d = 0; d < 2; d++) {
            char err[256] = "";
            ck_assert_msg(tz_load_dir(dirs[d], names[n], &tz, err, sizeof(err)) == 0, "%s: %s", names[n], err);
            ck_assert_str_eq(tz.name, names[n]);
            for (size_t i = 0; i < sizeof(times) / sizeof(times[0]); i++) {
                ck_assert_int_eq(offset_at(&tz, times[i]), 0);
                ck_assert_int_eq(tz_utc_info(&tz, times[i], &isdst, &abbr), 0);
                ck_assert(!isdst);
                ck_assert_str_eq(abbr, "UTC");
                int64_t utc;
                tz_local_kind_t kind;
                ck_assert_int_eq(tz_local_to_utc(&tz, times[i], &utc, &kind), 0);
                ck_assert_int_eq(utc, times[i]);
                ck_assert_int_eq(kind, TZ_LOCAL_UNIQUE);
            }
            tz_free(&tz);
        }
    }
    /* Other zones get no fallback. */
    char err[256] = "";
    ck_assert_int_eq(tz_load_dir("/nonexistent-tz-dir", "Europe/Berlin", &tz, err, sizeof(err)), ERR_NOT_FOUND);
    ck_assert_str_eq(err, "unknown time zone \"Europe/Berlin\"");
}
END_TEST

START_TEST(test_load_not_found_and_not_tzif)
{
    tz_t tz;
    char err[256] = "";
    ck_assert_int_eq(tz_load("Mars/Olympus_Mons", &tz, err, sizeof(err)), ERR_NOT_FOUND);
    ck_assert_str_eq(err, "unknown time zone \"Mars/Olympus_Mons\"");
    ck_assert_ptr_null(tz._data);
    /* A path through a regular file. */
    ck_assert_int_eq(tz_load("UTC/Berlin", &tz, err, sizeof(err)), ERR_NOT_FOUND);
    /* A directory. */
    ck_assert_int_eq(tz_load("Europe", &tz, err, sizeof(err)), ERR_INVALID);
    ck_assert_str_eq(err, "\"Europe\" is not a time zone file");
    /* A tzdata file that is not TZif. */
    if (access(TZ_DEFAULT_DIR "/leapseconds", R_OK) == 0) {
        ck_assert_int_eq(tz_load("leapseconds", &tz, err, sizeof(err)), ERR_INVALID);
        ck_assert_str_eq(err, "not a TZif file");
    }
    ck_assert_int_eq(tz_load_dir("", "UTC", &tz, err, sizeof(err)), ERR_INVALID);
    ck_assert_int_eq(tz_load_dir(NULL, "UTC", &tz, err, sizeof(err)), ERR_INVALID);
}
END_TEST

START_TEST(test_load_hand_made_v2)
{
    struct tzif_spec s = sample_spec();
    tz_t tz;
    char err[256] = "";
    bool isdst;
    const char *abbr;

    ck_assert_msg(load_spec(&s, &tz, err, sizeof(err)) == 0, "%s", err);
    ck_assert_str_eq(tz.name, "Zone");
    /* Before the first transition, type 0 applies (RFC 8536). */
    ck_assert_int_eq(offset_at(&tz, 946684799), 3600);
    ck_assert_int_eq(offset_at(&tz, 946684800), 7200);
    ck_assert_int_eq(tz_utc_info(&tz, 946684800, &isdst, &abbr), 0);
    ck_assert(isdst);
    ck_assert_str_eq(abbr, "BBB");
    /* The 64-bit block is used: the transition in 2100 is beyond 32 bits. */
    ck_assert_int_eq(offset_at(&tz, 4102444799), 7200);
    ck_assert_int_eq(offset_at(&tz, 4102444800), 3600);
    /* After it, the footer "AAA-1" rules. */
    ck_assert_int_eq(offset_at(&tz, ts(9000, 1, 1, 0, 0)), 3600);
    ck_assert_int_eq(tz_utc_info(&tz, ts(9000, 1, 1, 0, 0), &isdst, &abbr), 0);
    ck_assert(!isdst);
    ck_assert_str_eq(abbr, "AAA");
    tz_free(&tz);

    /* Versions 3 and 4 read the same way; an empty footer means "keep the last type". */
    s.version = '3';
    s.footer = "";
    ck_assert_msg(load_spec(&s, &tz, err, sizeof(err)) == 0, "%s", err);
    ck_assert(!tz._data->has_rule);
    ck_assert_int_eq(offset_at(&tz, ts(9000, 1, 1, 0, 0)), 3600);
    tz_free(&tz);
    s.version = '4';
    ck_assert_msg(load_spec(&s, &tz, err, sizeof(err)) == 0, "%s", err);
    tz_free(&tz);
}
END_TEST

START_TEST(test_load_hand_made_v1)
{
    struct tzif_spec s = sample_spec();
    tz_t tz;
    char err[256] = "";

    s.version = 0;
    s.ntrans = 1; /* 2100 does not fit in 32 bits */
    ck_assert_msg(load_spec(&s, &tz, err, sizeof(err)) == 0, "%s", err);
    ck_assert(!tz._data->has_rule);
    ck_assert_int_eq(offset_at(&tz, 0), 3600);
    ck_assert_int_eq(offset_at(&tz, 946684800), 7200);
    /* No footer in version 1: the last type stays in effect. */
    ck_assert_int_eq(offset_at(&tz, ts(2200, 1, 1, 0, 0)), 7200);
    tz_free(&tz);

    /* Negative 32-bit transition times are sign-extended. */
    s.trans[0] = -86400;
    ck_assert_msg(load_spec(&s, &tz, err, sizeof(err)) == 0, "%s", err);
    ck_assert_int_eq(offset_at(&tz, -86401), 3600);
    ck_assert_int_eq(offset_at(&tz, -86400), 7200);
    tz_free(&tz);
}
END_TEST

START_TEST(test_load_footer_rule_file)
{
    /* A zone whose only content is a footer (no transitions at all). */
    struct tzif_spec s = {.version = '2',
                          .ntypes = 1,
                          .utoff = {-18000},
                          .chars = "EST",
                          .charcnt = 4,
                          .footer = "EST5EDT,M3.2.0,M11.1.0"};
    tz_t tz, ny;
    char err[256] = "";
    ck_assert_msg(load_spec(&s, &tz, err, sizeof(err)) == 0, "%s", err);
    load_ok("America/New_York", &ny);
    for (int64_t t = ts(2026, 1, 1, 0, 0); t < ts(2027, 1, 1, 0, 0); t += 1800)
        CHECK(offset_at(&tz, t) == offset_at(&ny, t), "differs at %lld", (long long)t);
    tz_free(&tz);
    tz_free(&ny);
}
END_TEST

START_TEST(test_load_rejects_malformed)
{
    tz_t tz;
    char err[256];
    struct buf_t b;
    struct tzif_spec s;

#define EXPECT_INVALID(spec, message)                                                                                  \
    do {                                                                                                               \
        err[0] = '\0';                                                                                                 \
        ck_assert_int_eq(load_spec(&(spec), &tz, err, sizeof(err)), ERR_INVALID);                                      \
        ck_assert_str_eq(err, message);                                                                                \
        ck_assert_ptr_null(tz._data);                                                                                  \
    } while (0)

    s = sample_spec();
    s.idx[1] = 2; /* no such type */
    EXPECT_INVALID(s, "TZif data is malformed");
    s = sample_spec();
    s.trans[1] = s.trans[0]; /* not ascending */
    EXPECT_INVALID(s, "TZif data is malformed");
    s = sample_spec();
    s.abbrind[1] = 8; /* past the characters */
    EXPECT_INVALID(s, "TZif data is malformed");
    s = sample_spec();
    s.chars = "AAA\0BBBB";
    s.abbrind[1] = 4; /* "BBBB" has no terminating NUL inside charcnt */
    EXPECT_INVALID(s, "TZif data is malformed");
    s = sample_spec();
    s.isdst[0] = 2;
    EXPECT_INVALID(s, "TZif data is malformed");
    s = sample_spec();
    s.utoff[0] = 100000; /* more than 26 hours */
    EXPECT_INVALID(s, "TZif data is malformed");
    s = sample_spec();
    s.utoff[0] = INT32_MIN;
    EXPECT_INVALID(s, "TZif data is malformed");
    s = sample_spec();
    s.ntypes = 0;
    EXPECT_INVALID(s, "TZif header has impossible counts");
    s = sample_spec();
    s.leapcnt = 1;
    EXPECT_INVALID(s, "time zones with leap seconds (\"right/\") are not supported");
    s = sample_spec();
    s.footer = NULL;
    EXPECT_INVALID(s, "TZif footer is missing or malformed");
    s = sample_spec();
    s.footer = "CET-1CEST,M3.5.0";
    EXPECT_INVALID(s, "TZ rule: bad daylight-time end");
    s = sample_spec();
    s.version = '5';
    EXPECT_INVALID(s, "unsupported TZif version");
    s = sample_spec();
    s.version = '1';
    EXPECT_INVALID(s, "unsupported TZif version");

    /* Bad magic, an empty file, and a footer line without its final newline. */
    s = sample_spec();
    build_tzif(&s, &b);
    b.data[0] = 'X';
    write_scratch("Zone", b.data, b.len);
    ck_assert_int_eq(tz_load_dir(scratch, "Zone", &tz, err, sizeof(err)), ERR_INVALID);
    ck_assert_str_eq(err, "not a TZif file");
    write_scratch("Zone", "", 0);
    ck_assert_int_eq(tz_load_dir(scratch, "Zone", &tz, err, sizeof(err)), ERR_INVALID);
    ck_assert_str_eq(err, "not a TZif file");
    build_tzif(&s, &b);
    write_scratch("Zone", b.data, b.len - 1);
    ck_assert_int_eq(tz_load_dir(scratch, "Zone", &tz, err, sizeof(err)), ERR_INVALID);
    ck_assert_str_eq(err, "TZif footer is missing or malformed");
    /* A NUL inside the footer. */
    b.data[b.len - 3] = '\0';
    write_scratch("Zone", b.data, b.len);
    ck_assert_int_eq(tz_load_dir(scratch, "Zone", &tz, err, sizeof(err)), ERR_INVALID);
#undef EXPECT_INVALID
}
END_TEST

START_TEST(test_load_every_truncation_fails)
{
    /* Cutting a valid file anywhere must give ERR_INVALID, never a crash (ASan watches the reads). */
    struct tzif_spec s = sample_spec();
    struct buf_t b;
    tz_t tz;
    char err[256];
    build_tzif(&s, &b);
    for (size_t len = 0; len < b.len; len++) {
        write_scratch("Zone", b.data, len);
        ck_assert_msg(tz_load_dir(scratch, "Zone", &tz, err, sizeof(err)) == ERR_INVALID, "length %zu", len);
    }
    write_scratch("Zone", b.data, b.len);
    ck_assert_int_eq(tz_load_dir(scratch, "Zone", &tz, err, sizeof(err)), 0);
    tz_free(&tz);
}
END_TEST

START_TEST(test_load_special_files)
{
    tz_t tz;
    char err[256], path[512];
    /* A FIFO must not block open(). */
    snprintf(path, sizeof(path), "%s/Fifo", scratch);
    ck_assert_int_eq(mkfifo(path, 0600), 0);
    ck_assert_int_eq(tz_load_dir(scratch, "Fifo", &tz, err, sizeof(err)), ERR_INVALID);
    ck_assert_str_eq(err, "\"Fifo\" is not a time zone file");
    /* An oversized file is refused before it is read. */
    snprintf(path, sizeof(path), "%s/Big", scratch);
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(fseek(f, 2 * 1024 * 1024, SEEK_SET), 0);
    fputc('x', f);
    fclose(f);
    ck_assert_int_eq(tz_load_dir(scratch, "Big", &tz, err, sizeof(err)), ERR_INVALID);
    ck_assert_str_eq(err, "\"Big\" is not a time zone file");
}
END_TEST

/* ---- POSIX TZ rules ---- */

START_TEST(test_rule_parse_valid)
{
    struct st_tz_rule_t r;
    char err[256] = "";

    ck_assert_int_eq(parse_rule("CET-1CEST,M3.5.0,M10.5.0/3", &r, err, sizeof(err)), 0);
    ck_assert_str_eq(r.std.abbr, "CET");
    ck_assert_int_eq(r.std.utoff, 3600);
    ck_assert_str_eq(r.dst.abbr, "CEST");
    ck_assert_int_eq(r.dst.utoff, 7200);
    ck_assert(r.has_dst && r.dst.isdst && !r.std.isdst);
    ck_assert(r.start.kind == 'M' && r.start.month == 3 && r.start.week == 5 && r.start.wday == 0);
    ck_assert_int_eq(r.start.secs, 7200);
    ck_assert(r.end.kind == 'M' && r.end.month == 10 && r.end.week == 5 && r.end.wday == 0);
    ck_assert_int_eq(r.end.secs, 3 * 3600);

    ck_assert_int_eq(parse_rule("IST-5:30", &r, err, sizeof(err)), 0);
    ck_assert_int_eq(r.std.utoff, 19800);
    ck_assert(!r.has_dst);

    ck_assert_int_eq(parse_rule("<+1030>-10:30<+11>-11,M10.1.0,M4.1.0", &r, err, sizeof(err)), 0);
    ck_assert_str_eq(r.std.abbr, "+1030");
    ck_assert_int_eq(r.std.utoff, 37800);
    ck_assert_str_eq(r.dst.abbr, "+11");
    ck_assert_int_eq(r.dst.utoff, 39600);

    /* Version 3 extensions: negative and > 24h rule times. */
    ck_assert_int_eq(parse_rule("<-02>2<-01>,M3.5.0/-1,M10.5.0/0", &r, err, sizeof(err)), 0);
    ck_assert_int_eq(r.std.utoff, -7200);
    ck_assert_int_eq(r.start.secs, -3600);
    ck_assert_int_eq(parse_rule("EST5EDT,0/0,J365/25", &r, err, sizeof(err)), 0);
    ck_assert(r.start.kind == 'n' && r.start.n == 0 && r.start.secs == 0);
    ck_assert(r.end.kind == 'J' && r.end.n == 365 && r.end.secs == 25 * 3600);
    ck_assert_int_eq(parse_rule("XXX3:04:05YYY,J60/1:02:03,300", &r, err, sizeof(err)), 0);
    ck_assert_int_eq(r.std.utoff, -(3 * 3600 + 4 * 60 + 5));
    ck_assert_int_eq(r.dst.utoff, r.std.utoff + 3600);
    ck_assert_int_eq(r.start.secs, 3723);
    ck_assert_int_eq(r.end.secs, 7200);
    ck_assert_int_eq(parse_rule("UTC0", &r, err, sizeof(err)), 0);
    ck_assert_int_eq(r.std.utoff, 0);
    /* DST without dates uses the US rule. */
    ck_assert_int_eq(parse_rule("EST5EDT4", &r, err, sizeof(err)), 0);
    ck_assert(r.start.kind == 'M' && r.start.month == 3 && r.start.week == 2);
    ck_assert_int_eq(r.dst.utoff, -14400);
}
END_TEST

START_TEST(test_rule_parse_invalid)
{
    const struct {
        const char *rule, *msg;
    } cases[] = {
        {"", "TZ rule: bad standard-time abbreviation"},
        {"CE-1", "TZ rule: bad standard-time abbreviation"},
        {"<+05", "TZ rule: bad standard-time abbreviation"},
        {"<AB>5", "TZ rule: bad standard-time abbreviation"},
        {"ABCDEFGHIJKLMNOP1", "TZ rule: bad standard-time abbreviation"},
        {"CET", "TZ rule: bad or missing standard-time offset"},
        {"CET-25", "TZ rule: bad or missing standard-time offset"},
        {"CET-1:60", "TZ rule: bad or missing standard-time offset"},
        {"CET-1C", "TZ rule: bad daylight-time abbreviation"},
        {"CET-1CEST-25,M3.5.0,M10.5.0", "TZ rule: bad daylight-time offset"},
        {"CET-1CEST,M3.5.0", "TZ rule: bad daylight-time end"},
        {"CET-1CEST,M13.5.0,M10.5.0", "TZ rule: bad daylight-time start"},
        {"CET-1CEST,M3.6.0,M10.5.0", "TZ rule: bad daylight-time start"},
        {"CET-1CEST,M3.5.7,M10.5.0", "TZ rule: bad daylight-time start"},
        {"CET-1CEST,M3.5,M10.5.0", "TZ rule: bad daylight-time start"},
        {"CET-1CEST,J0,J300", "TZ rule: bad daylight-time start"},
        {"CET-1CEST,J366,J300", "TZ rule: bad daylight-time start"},
        {"CET-1CEST,366,300", "TZ rule: bad daylight-time start"},
        {"CET-1CEST,M3.5.0/168,M10.5.0", "TZ rule: bad daylight-time start"},
        {"CET-1CEST,M3.5.0/,M10.5.0", "TZ rule: bad daylight-time start"},
        {"CET-1CEST,M3.5.0,M10.5.0/3x", "TZ rule: unexpected text after the daylight-time end"},
        {"CET-1CEST,M3.5.0,M10.5.0,", "TZ rule: unexpected text after the daylight-time end"},
        {"CET-1 CEST", "TZ rule: bad daylight-time abbreviation"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct st_tz_rule_t r;
        char err[256] = "";
        ck_assert_msg(parse_rule(cases[i].rule, &r, err, sizeof(err)) == ERR_INVALID, "%s accepted", cases[i].rule);
        ck_assert_msg(strcmp(err, cases[i].msg) == 0, "%s: got \"%s\"", cases[i].rule, err);
    }
}
END_TEST

START_TEST(test_rule_dates)
{
    tz_t tz;
    int64_t next;
    /* Jn skips Feb 29: J60 is March 1 in 2028 too. The day "n" counts it: 59 is Feb 29 in 2028. */
    load_rule("AAA0BBB,J60/0,59/0", &tz);
    ck_assert(find_rule_next(&tz._data->rule, ts(2028, 1, 1, 0, 0), &next));
    ck_assert_int_eq(next, ts(2028, 2, 29, 0, 0) - 3600); /* end (n=59), read in DST (+1) */
    ck_assert(find_rule_next(&tz._data->rule, next, &next));
    ck_assert_int_eq(next, ts(2028, 3, 1, 0, 0)); /* start (J60), with the std offset 0 */
    ck_assert(find_rule_next(&tz._data->rule, ts(2027, 1, 1, 0, 0), &next));
    ck_assert_int_eq(next, ts(2027, 3, 1, 0, 0) - 3600); /* n=59 is March 1 in 2027, read in DST (+1) */
    tz_free(&tz);

    /* M10.5.0 is the last Sunday even when the month has only four. */
    load_rule("CET-1CEST,M3.5.0,M10.5.0/3", &tz);
    ck_assert(find_rule_next(&tz._data->rule, ts(2100, 1, 1, 0, 0), &next));
    ck_assert_int_eq(next, ts(2100, 3, 28, 1, 0));
    ck_assert(find_rule_next(&tz._data->rule, next, &next));
    ck_assert_int_eq(next, ts(2100, 10, 31, 1, 0));
    ck_assert(find_rule_next(&tz._data->rule, ts(2026, 3, 29, 1, 0) - 1, &next));
    ck_assert_int_eq(next, ts(2026, 3, 29, 1, 0));
    tz_free(&tz);

    /* Permanent DST written as a rule: always DST, never a transition. */
    load_rule("EST5EDT,0/0,J365/25", &tz);
    for (int64_t t = ts(2026, 1, 1, 0, 0) - 7200; t < ts(2027, 1, 2, 0, 0); t += 3600) {
        bool isdst = false;
        CHECK(offset_at(&tz, t) == -14400, "offset at %lld", (long long)t);
        CHECK(tz_utc_info(&tz, t, &isdst, NULL) == 0 && isdst, "not DST at %lld", (long long)t);
    }
    ck_assert(!find_rule_next(&tz._data->rule, ts(2026, 6, 1, 0, 0), &next));
    tz_free(&tz);

    /* No DST: no transitions. */
    load_rule("IST-5:30", &tz);
    ck_assert(!find_rule_next(&tz._data->rule, 0, &next));
    ck_assert_int_eq(offset_at(&tz, ts(2100, 1, 1, 0, 0)), 19800);
    tz_free(&tz);
}
END_TEST

START_TEST(test_rule_southern_hemisphere_matches_file)
{
    /* Lord Howe's footer, evaluated alone, agrees with the file for 2026 (from its transitions or rule). */
    tz_t rule, file;
    load_rule("<+1030>-10:30<+11>-11,M10.1.0,M4.1.0", &rule);
    load_ok("Australia/Lord_Howe", &file);
    for (int64_t t = ts(2025, 1, 1, 0, 0); t < ts(2028, 1, 1, 0, 0); t += 900)
        CHECK(offset_at(&rule, t) == offset_at(&file, t), "differs at %lld", (long long)t);
    tz_free(&rule);
    tz_free(&file);
}
END_TEST

/* ---- conversions ---- */

START_TEST(test_utc_to_local_berlin)
{
    tz_t tz;
    const char *abbr;
    bool isdst;
    load_ok("Europe/Berlin", &tz);
    ck_assert_int_eq(offset_at(&tz, ts(2026, 3, 29, 1, 0) - 1), 3600);
    ck_assert_int_eq(offset_at(&tz, ts(2026, 3, 29, 1, 0)), 7200);
    ck_assert_int_eq(tz_utc_info(&tz, ts(2026, 3, 29, 1, 0), &isdst, &abbr), 0);
    ck_assert(isdst);
    ck_assert_str_eq(abbr, "CEST");
    ck_assert_int_eq(offset_at(&tz, ts(2026, 10, 25, 1, 0) - 1), 7200);
    ck_assert_int_eq(offset_at(&tz, ts(2026, 10, 25, 1, 0)), 3600);
    ck_assert_int_eq(tz_utc_info(&tz, ts(2026, 10, 25, 1, 0), &isdst, &abbr), 0);
    ck_assert(!isdst);
    ck_assert_str_eq(abbr, "CET");
    /* 2100 is past the last transition in the file: the footer rule decides. */
    ck_assert_int_gt(ts(2100, 1, 1, 0, 0), tz._data->trans[tz._data->ntrans - 1]);
    ck_assert_int_eq(offset_at(&tz, ts(2100, 3, 28, 1, 0) - 1), 3600);
    ck_assert_int_eq(offset_at(&tz, ts(2100, 3, 28, 1, 0)), 7200);
    ck_assert_int_eq(offset_at(&tz, ts(2100, 10, 31, 1, 0) - 1), 7200);
    ck_assert_int_eq(offset_at(&tz, ts(2100, 10, 31, 1, 0)), 3600);
    /* History: Berlin kept local mean time (+0:53:28) before 1893 and had double summer time in 1947. */
    ck_assert_int_eq(offset_at(&tz, ts(1880, 1, 1, 0, 0)), 3208);
    ck_assert_int_eq(offset_at(&tz, ts(1947, 6, 1, 0, 0)), 10800);
    tz_free(&tz);
}
END_TEST

START_TEST(test_utc_to_local_others)
{
    tz_t ny, lh, kol;
    load_ok("America/New_York", &ny);
    ck_assert_int_eq(offset_at(&ny, ts(2026, 3, 8, 7, 0) - 1), -18000);
    ck_assert_int_eq(offset_at(&ny, ts(2026, 3, 8, 7, 0)), -14400);
    ck_assert_int_eq(offset_at(&ny, ts(2026, 11, 1, 6, 0) - 1), -14400);
    ck_assert_int_eq(offset_at(&ny, ts(2026, 11, 1, 6, 0)), -18000);
    ck_assert_int_eq(offset_at(&ny, ts(2100, 7, 1, 0, 0)), -14400);
    load_ok("Australia/Lord_Howe", &lh);
    ck_assert_int_eq(offset_at(&lh, ts(2026, 4, 4, 15, 0) - 1), 39600);
    ck_assert_int_eq(offset_at(&lh, ts(2026, 4, 4, 15, 0)), 37800);
    ck_assert_int_eq(offset_at(&lh, ts(2026, 10, 3, 15, 30) - 1), 37800);
    ck_assert_int_eq(offset_at(&lh, ts(2026, 10, 3, 15, 30)), 39600);
    load_ok("Asia/Kolkata", &kol);
    ck_assert_int_eq(offset_at(&kol, ts(2026, 1, 1, 0, 0)), 19800);
    ck_assert_int_eq(offset_at(&kol, ts(2100, 7, 1, 0, 0)), 19800);
    tz_free(&ny);
    tz_free(&lh);
    tz_free(&kol);
}
END_TEST

START_TEST(test_conversions_reject_bad_input)
{
    tz_t tz = {{0}, NULL}, berlin;
    int64_t v;
    int32_t off;
    ck_assert_int_eq(tz_utc_to_local(&tz, 0, &v, &off), ERR_INVALID); /* never loaded */
    ck_assert_int_eq(tz_local_to_utc(&tz, 0, &v, NULL), ERR_INVALID);
    ck_assert_int_eq(tz_utc_info(&tz, 0, NULL, NULL), ERR_INVALID);
    load_ok("Europe/Berlin", &berlin);
    ck_assert_int_eq(tz_utc_to_local(&berlin, TZ_TIME_MAX + 1, &v, &off), ERR_INVALID);
    ck_assert_int_eq(tz_utc_to_local(&berlin, TZ_TIME_MIN - 1, &v, &off), ERR_INVALID);
    ck_assert_int_eq(tz_utc_to_local(&berlin, INT64_MAX, &v, &off), ERR_INVALID);
    ck_assert_int_eq(tz_local_to_utc(&berlin, INT64_MIN, &v, NULL), ERR_INVALID);
    ck_assert_int_eq(tz_utc_info(&berlin, INT64_MAX, NULL, NULL), ERR_INVALID);
    ck_assert_int_eq(tz_utc_to_local(&berlin, TZ_TIME_MAX, &v, &off), 0);
    ck_assert_int_eq(tz_local_to_utc(&berlin, TZ_TIME_MIN, &v, NULL), 0);
    /* NULL means UTC. */
    ck_assert_int_eq(tz_utc_to_local(NULL, 12345, &v, &off), 0);
    ck_assert_int_eq(v, 12345);
    ck_assert_int_eq(off, 0);
    tz_free(&berlin);
}
END_TEST

static void expect_local(const tz_t *tz, int64_t local, int64_t want_utc, tz_local_kind_t want_kind)
{
    int64_t utc = 0;
    tz_local_kind_t kind = -1;
    ck_assert_int_eq(tz_local_to_utc(tz, local, &utc, &kind), 0);
    ck_assert_int_eq(utc, want_utc);
    ck_assert_int_eq(kind, want_kind);
}

START_TEST(test_local_to_utc_dst)
{
    tz_t tz;
    load_ok("Europe/Berlin", &tz);
    expect_local(&tz, ts(2026, 3, 29, 1, 59), ts(2026, 3, 29, 0, 59), TZ_LOCAL_UNIQUE);
    /* 02:30 does not exist; it reads as CET, i.e. 01:30Z = 03:30 CEST. */
    expect_local(&tz, ts(2026, 3, 29, 2, 0), ts(2026, 3, 29, 1, 0), TZ_LOCAL_GAP);
    expect_local(&tz, ts(2026, 3, 29, 2, 30), ts(2026, 3, 29, 1, 30), TZ_LOCAL_GAP);
    expect_local(&tz, ts(2026, 3, 29, 3, 0), ts(2026, 3, 29, 1, 0), TZ_LOCAL_UNIQUE);
    /* 02:00-02:59 happens twice on 2026-10-25; the first (CEST) occurrence wins. */
    expect_local(&tz, ts(2026, 10, 25, 1, 59), ts(2026, 10, 24, 23, 59), TZ_LOCAL_UNIQUE);
    expect_local(&tz, ts(2026, 10, 25, 2, 0), ts(2026, 10, 25, 0, 0), TZ_LOCAL_OVERLAP);
    expect_local(&tz, ts(2026, 10, 25, 2, 30), ts(2026, 10, 25, 0, 30), TZ_LOCAL_OVERLAP);
    expect_local(&tz, ts(2026, 10, 25, 2, 59), ts(2026, 10, 25, 0, 59), TZ_LOCAL_OVERLAP);
    expect_local(&tz, ts(2026, 10, 25, 3, 0), ts(2026, 10, 25, 2, 0), TZ_LOCAL_UNIQUE);
    /* The same from the footer rule in 2100. */
    expect_local(&tz, ts(2100, 3, 28, 2, 30), ts(2100, 3, 28, 1, 30), TZ_LOCAL_GAP);
    expect_local(&tz, ts(2100, 10, 31, 2, 30), ts(2100, 10, 31, 0, 30), TZ_LOCAL_OVERLAP);
    expect_local(&tz, ts(2100, 7, 1, 12, 0), ts(2100, 7, 1, 10, 0), TZ_LOCAL_UNIQUE);
    tz_free(&tz);

    load_ok("America/New_York", &tz);
    expect_local(&tz, ts(2026, 3, 8, 2, 30), ts(2026, 3, 8, 7, 30), TZ_LOCAL_GAP);
    expect_local(&tz, ts(2026, 11, 1, 1, 30), ts(2026, 11, 1, 5, 30), TZ_LOCAL_OVERLAP);
    expect_local(&tz, ts(2026, 11, 1, 2, 0), ts(2026, 11, 1, 7, 0), TZ_LOCAL_UNIQUE);
    tz_free(&tz);

    load_ok("Australia/Lord_Howe", &tz);
    expect_local(&tz, ts(2026, 10, 4, 2, 15), ts(2026, 10, 3, 15, 45), TZ_LOCAL_GAP);
    expect_local(&tz, ts(2026, 10, 4, 2, 30), ts(2026, 10, 3, 15, 30), TZ_LOCAL_UNIQUE);
    expect_local(&tz, ts(2026, 4, 5, 1, 45), ts(2026, 4, 4, 14, 45), TZ_LOCAL_OVERLAP);
    expect_local(&tz, ts(2026, 4, 5, 1, 29), ts(2026, 4, 4, 14, 29), TZ_LOCAL_UNIQUE);
    tz_free(&tz);

    load_ok("Asia/Kolkata", &tz);
    expect_local(&tz, ts(2026, 6, 1, 9, 0), ts(2026, 6, 1, 3, 30), TZ_LOCAL_UNIQUE);
    tz_free(&tz);
}
END_TEST

START_TEST(test_round_trip_year)
{
    /* Every 5 minutes of 2026 and 2100: local_to_utc(utc_to_local(t)) is t, or t's earlier twin in an overlap. */
    const char *names[] = {"Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata"};
    const int years[] = {2026, 2100};
    for (size_t z = 0; z < sizeof(names) / sizeof(names[0]); z++) {
        tz_t tz;
        load_ok(names[z], &tz);
        for (int yi = 0; yi < 2; yi++) {
            int overlaps = 0;
            for (int64_t t = ts(years[yi], 1, 1, 0, 0); t < ts(years[yi] + 1, 1, 1, 0, 0); t += 300) {
                int64_t local = 0, back = 0;
                tz_local_kind_t kind = TZ_LOCAL_GAP;
                CHECK(tz_utc_to_local(&tz, t, &local, NULL) == 0, "utc_to_local %lld", (long long)t);
                CHECK(tz_local_to_utc(&tz, local, &back, &kind) == 0 && kind != TZ_LOCAL_GAP, "local_to_utc %lld",
                      (long long)t);
                if (back != t) {
                    CHECK(kind == TZ_LOCAL_OVERLAP && back < t, "%s: %lld came back as %lld", names[z], (long long)t,
                          (long long)back);
                    overlaps++;
                }
            }
            /* One repeated hour (half an hour at Lord Howe) per year in the DST zones, none in Kolkata. */
            int want = z == 0 || z == 1 ? 12 : z == 2 ? 6 : 0;
            ck_assert_msg(overlaps == want, "%s %d: %d second occurrences", names[z], years[yi], overlaps);
        }
        tz_free(&tz);
    }
}
END_TEST

static Suite *tz_suite(void)
{
    Suite *s = suite_create("tz");
    TCase *tc;

    tc = tcase_create("civil");
    tcase_set_timeout(tc, 10);
    tcase_add_test(tc, test_days_from_civil_constants);
    tcase_add_test(tc, test_civil_round_trip_every_day);
    tcase_add_test(tc, test_days_in_month);
    tcase_add_test(tc, test_civil_rejects_out_of_range);
    suite_add_tcase(s, tc);

    tc = tcase_create("name_check");
    tcase_add_test(tc, test_name_valid);
    tcase_add_test(tc, test_name_invalid);
    tcase_add_test(tc, test_name_error_buffer_truncates);
    suite_add_tcase(s, tc);

    tc = tcase_create("load");
    tcase_set_timeout(tc, 10);
    tcase_add_checked_fixture(tc, make_scratch, remove_scratch);
    tcase_add_test(tc, test_load_system_zones);
    tcase_add_test(tc, test_load_utc);
    tcase_add_test(tc, test_load_not_found_and_not_tzif);
    tcase_add_test(tc, test_load_hand_made_v2);
    tcase_add_test(tc, test_load_hand_made_v1);
    tcase_add_test(tc, test_load_footer_rule_file);
    tcase_add_test(tc, test_load_rejects_malformed);
    tcase_add_test(tc, test_load_every_truncation_fails);
    tcase_add_test(tc, test_load_special_files);
    suite_add_tcase(s, tc);

    tc = tcase_create("posix_rule");
    tcase_add_test(tc, test_rule_parse_valid);
    tcase_add_test(tc, test_rule_parse_invalid);
    tcase_add_test(tc, test_rule_dates);
    tcase_add_test(tc, test_rule_southern_hemisphere_matches_file);
    suite_add_tcase(s, tc);

    tc = tcase_create("convert");
    tcase_set_timeout(tc, 10);
    tcase_add_test(tc, test_utc_to_local_berlin);
    tcase_add_test(tc, test_utc_to_local_others);
    tcase_add_test(tc, test_conversions_reject_bad_input);
    tcase_add_test(tc, test_local_to_utc_dst);
    tcase_add_test(tc, test_round_trip_year);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(tz_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
