/*
 * common/cron.c - parse 5-field cron expressions and compute their next fire time.
 *
 * The parser is a hand-written scanner over one field at a time that sets
 * bits in a cron_t; every rejection names the field and says what is wrong,
 * because the message goes back to whoever typed the schedule. cron_next()
 * never steps minute by minute over long spans: it searches wall-clock time
 * by skipping whole months, days and hours whose bits are clear, then asks
 * common/tz.c whether the wall time exists and when it first happens. The
 * module has no state; the caller owns every cron_t, tz_t and buffer.
 */
#include "cron.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "err.h"

#define CRON_NFIELDS 5

struct st_cron_field_t {
    const char *name;
    int low, high;
    const char *const *names; /* three-letter names for low, low+1, ...; or NULL */
    int nnames;
};

static const char *const MONTH_NAMES[] = {"JAN", "FEB", "MAR", "APR", "MAY", "JUN",
                                          "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"};
static const char *const DAY_NAMES[] = {"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"};

static const struct st_cron_field_t FIELDS[CRON_NFIELDS] = {
    {"minute", 0, 59, NULL, 0},          {"hour", 0, 23, NULL, 0},
    {"day-of-month", 1, 31, NULL, 0},    {"month", 1, 12, MONTH_NAMES, 12},
    {"day-of-week", 0, 7, DAY_NAMES, 7},
};

static const struct {
    const char *name, *expansion;
} MACROS[] = {
    {"@yearly", "0 0 1 1 *"}, {"@annually", "0 0 1 1 *"}, {"@monthly", "0 0 1 * *"}, {"@weekly", "0 0 * * 0"},
    {"@daily", "0 0 * * *"},  {"@midnight", "0 0 * * *"}, {"@hourly", "0 * * * *"},
};

static int set_error(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int set_error(char *err, size_t errlen, const char *fmt, ...)
{
    if (err != NULL && errlen > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return ERR_INVALID;
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool is_alpha(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

static bool is_blank(char c)
{
    return c == ' ' || c == '\t';
}

static char to_upper(char c)
{
    return c >= 'a' && c <= 'z' ? (char)(c - 'a' + 'A') : c;
}

/* Compares s[0..len) with a NUL-terminated name, ignoring ASCII case (no locale). */
static bool match_name(const char *s, size_t len, const char *name)
{
    if (strlen(name) != len)
        return false;
    for (size_t i = 0; i < len; i++) {
        if (to_upper(s[i]) != to_upper(name[i]))
            return false;
    }
    return true;
}

/* Writes "'x'" or "byte 0x01" into buf, so messages never carry control characters. */
static const char *describe_char(char c, char *buf, size_t len)
{
    if (c > ' ' && c < 0x7f)
        snprintf(buf, len, "'%c'", c);
    else
        snprintf(buf, len, "byte 0x%02x", (unsigned char)c);
    return buf;
}

static int report_unexpected(const struct st_cron_field_t *f, const char *p, const char *end, char *err, size_t errlen)
{
    char cbuf[16];
    if (p == end)
        return set_error(err, errlen, "%s: missing value", f->name);
    return set_error(err, errlen, "%s: unexpected character %s", f->name, describe_char(*p, cbuf, sizeof(cbuf)));
}

/* Reads a decimal number or a name; the printed forms are cut at 20 characters. */
static int parse_value(const struct st_cron_field_t *f, const char **pp, const char *end, int *out, char *err,
                       size_t errlen)
{
    const char *p = *pp, *start = p;

    if (p < end && is_digit(*p)) {
        long v = 0;
        for (; p < end && is_digit(*p); p++) {
            if (v < 1000000)
                v = v * 10 + (*p - '0');
        }
        if (v < f->low || v > f->high)
            return set_error(err, errlen, "%s: value %.*s out of range %d-%d", f->name,
                             (int)(p - start > 20 ? 20 : p - start), start, f->low, f->high);
        *out = (int)v;
        *pp = p;
        return 0;
    }
    if (p < end && is_alpha(*p) && f->names != NULL) {
        while (p < end && is_alpha(*p))
            p++;
        size_t len = (size_t)(p - start);
        for (int i = 0; len == 3 && i < f->nnames; i++) {
            const char *n = f->names[i];
            if (to_upper(start[0]) == n[0] && to_upper(start[1]) == n[1] && to_upper(start[2]) == n[2]) {
                *out = f->low == 0 ? i : i + 1;
                *pp = p;
                return 0;
            }
        }
        return set_error(err, errlen, "%s: unknown name \"%.*s\"", f->name, (int)(len > 20 ? 20 : len), start);
    }
    return report_unexpected(f, p, end, err, errlen);
}

/* Parses one comma-separated field [p, end) into a bitmask. */
static int parse_field(const struct st_cron_field_t *f, const char *p, const char *end, uint64_t *bits, char *err,
                       size_t errlen)
{
    int ret;
    *bits = 0;
    for (;;) {
        const char *item = p;
        int lo, hi, step = 1;
        bool single = false;

        if (p == end || *p == ',')
            return set_error(err, errlen, "%s: empty list item", f->name);
        if (*p == '*') {
            lo = f->low;
            hi = f->high;
            p++;
        } else {
            if ((ret = parse_value(f, &p, end, &lo, err, errlen)) != 0)
                return ret;
            hi = lo;
            single = true;
            if (p < end && *p == '-') {
                p++;
                if ((ret = parse_value(f, &p, end, &hi, err, errlen)) != 0)
                    return ret;
                if (hi < lo)
                    return set_error(err, errlen, "%s: range %.*s is reversed", f->name,
                                     (int)(p - item > 40 ? 40 : p - item), item);
                single = false;
            }
        }
        if (p < end && *p == '/') {
            if (single)
                return set_error(err, errlen, "%s: a step needs '*' or a range before '/'", f->name);
            const char *digits = ++p;
            long v = 0;
            for (; p < end && is_digit(*p); p++) {
                if (v < 1000000)
                    v = v * 10 + (*p - '0');
            }
            if (p == digits) {
                if (p == end || *p == ',')
                    return set_error(err, errlen, "%s: missing step after '/'", f->name);
                return report_unexpected(f, p, end, err, errlen);
            }
            if (v == 0)
                return set_error(err, errlen, "%s: step 0 is not allowed", f->name);
            if (v > f->high)
                return set_error(err, errlen, "%s: step %.*s out of range 1-%d", f->name,
                                 (int)(p - digits > 20 ? 20 : p - digits), digits, f->high);
            step = (int)v;
        }
        for (int v = lo; v <= hi; v += step)
            *bits |= UINT64_C(1) << v;

        if (p == end)
            return 0;
        if (*p != ',')
            return report_unexpected(f, p, end, err, errlen);
        p++;
        if (p == end)
            return set_error(err, errlen, "%s: empty list item", f->name);
    }
}

static int parse_fields(const char *expr, cron_t *out, char *err, size_t errlen)
{
    const char *start[CRON_NFIELDS], *end[CRON_NFIELDS];
    int n = 0;
    const char *p = expr;

    for (;;) {
        while (is_blank(*p))
            p++;
        if (*p == '\0')
            break;
        const char *s = p;
        while (*p != '\0' && !is_blank(*p))
            p++;
        if (n < CRON_NFIELDS) {
            start[n] = s;
            end[n] = p;
        }
        n++;
    }
    if (n == 0)
        return set_error(err, errlen, "expression is empty");
    if (n != CRON_NFIELDS)
        return set_error(err, errlen, "expected 5 fields (minute hour day-of-month month day-of-week), found %d", n);

    cron_t c = {0};
    uint64_t bits[CRON_NFIELDS];
    for (int i = 0; i < CRON_NFIELDS; i++) {
        int ret = parse_field(&FIELDS[i], start[i], end[i], &bits[i], err, errlen);
        if (ret != 0)
            return ret;
    }
    c.minutes = bits[0];
    c.hours = (uint32_t)bits[1];
    c.mdays = (uint32_t)bits[2];
    c.months = (uint16_t)bits[3];
    /* 7 is another name for Sunday. */
    c.wdays = (uint8_t)((bits[4] | bits[4] >> 7) & 0x7f);
    if (*start[2] == '*')
        c.flags |= CRON_DOM_STAR;
    if (*start[4] == '*')
        c.flags |= CRON_DOW_STAR;
    *out = c;
    return 0;
}

static int parse_macro(const char *p, cron_t *out, char *err, size_t errlen)
{
    const char *s = p;
    while (*p != '\0' && !is_blank(*p))
        p++;
    size_t len = (size_t)(p - s);
    while (is_blank(*p))
        p++;

    for (size_t i = 0; i < sizeof(MACROS) / sizeof(MACROS[0]); i++) {
        if (!match_name(s, len, MACROS[i].name))
            continue;
        if (*p != '\0')
            return set_error(err, errlen, "unexpected text after %s", MACROS[i].name);
        return parse_fields(MACROS[i].expansion, out, err, errlen);
    }
    if (match_name(s, len, "@reboot"))
        return set_error(err, errlen, "@reboot is not supported");
    return set_error(err, errlen, "unknown macro \"%.*s\"", (int)(len > 20 ? 20 : len), s);
}

int cron_parse(const char *expr, cron_t *out, char *err, size_t errlen)
{
    if (expr == NULL)
        return set_error(err, errlen, "expression is empty");
    const char *p = expr;
    while (is_blank(*p))
        p++;
    if (*p == '@')
        return parse_macro(p, out, err, errlen);
    return parse_fields(expr, out, err, errlen);
}

/* ---- matching and searching ---- */

static int find_next_bit(uint64_t mask, int from, int max)
{
    if (from > max)
        return -1;
    mask >>= from;
    if (mask == 0)
        return -1;
    int bit = from + __builtin_ctzll(mask);
    return bit > max ? -1 : bit;
}

static bool match_day(const cron_t *c, int64_t year, int month, int day)
{
    int64_t w = (tz_days_from_civil(year, month, day) + 4) % 7; /* 1970-01-01 was a Thursday */
    bool dom = c->mdays >> day & 1;
    bool dow = c->wdays >> (w < 0 ? w + 7 : w) & 1;
    if (c->flags & (CRON_DOM_STAR | CRON_DOW_STAR))
        return dom && dow;
    return dom || dow;
}

bool cron_match(const cron_t *cron, const tz_civil_t *local)
{
    if (local->month < 1 || local->month > 12 || local->day < 1 ||
        local->day > tz_days_in_month(local->year, local->month) || local->hour < 0 || local->hour > 23 ||
        local->minute < 0 || local->minute > 59)
        return false;
    return (cron->months >> local->month & 1) && (cron->hours >> local->hour & 1) &&
           (cron->minutes >> local->minute & 1) && match_day(cron, local->year, local->month, local->day);
}

/*
 * Finds the first matching wall-clock minute at or after `from` (a whole
 * minute, in local seconds), skipping whole months, days and hours, and
 * giving up after the end of `last_year`.
 */
static int find_wall_match(const cron_t *c, int64_t from, int64_t last_year, int64_t *out)
{
    tz_civil_t t;
    if (tz_civil_from_seconds(from, &t) != 0)
        return ERR_NOT_FOUND;
    int64_t y = t.year;
    int m = t.month, d = t.day, h = t.hour, mi = t.minute;

    for (;;) {
        if (y > last_year || y > 9999)
            return ERR_NOT_FOUND;
        if (!(c->months >> m & 1) || d > tz_days_in_month(y, m)) {
            int next = find_next_bit(c->months, m + 1, 12);
            if (next < 0) {
                y++;
                next = find_next_bit(c->months, 1, 12);
                if (next < 0)
                    return ERR_NOT_FOUND; /* cannot happen for a parsed cron_t */
            }
            m = next;
            d = 1;
            h = mi = 0;
            continue;
        }
        if (!match_day(c, y, m, d)) {
            d++;
            h = mi = 0;
            continue;
        }
        int nh = find_next_bit(c->hours, h, 23);
        if (nh < 0) {
            d++;
            h = mi = 0;
            continue;
        }
        if (nh != h) {
            h = nh;
            mi = 0;
        }
        int nm = find_next_bit(c->minutes, mi, 59);
        if (nm < 0) {
            h++;
            mi = 0;
            continue; /* h == 24 fails find_next_bit above and moves to the next day */
        }
        *out = tz_days_from_civil(y, m, d) * 86400 + h * 3600 + nm * 60;
        return 0;
    }
}

int cron_next(const cron_t *cron, const tz_t *tz, int64_t after_utc, int64_t *next_utc)
{
    int64_t local, wall;
    tz_civil_t start;
    int ret;

    if ((ret = tz_utc_to_local(tz, after_utc, &local, NULL)) != 0)
        return ret;
    /* The next whole wall-clock minute; floor division because local may be negative. */
    wall = (local / 60 - (local % 60 < 0)) * 60 + 60;
    if (tz_civil_from_seconds(wall, &start) != 0)
        return ERR_NOT_FOUND;

    for (;;) {
        int64_t utc;
        tz_local_kind_t kind;
        if ((ret = find_wall_match(cron, wall, start.year + CRON_SEARCH_YEARS, &wall)) != 0)
            return ret;
        if ((ret = tz_local_to_utc(tz, wall, &utc, &kind)) != 0)
            return ret == ERR_INVALID ? ERR_NOT_FOUND : ret; /* past year 9999 */
        /*
         * A skipped wall time never fires. A repeated one maps to its first
         * occurrence; if that is not after after_utc it has fired already
         * (or we are inside the repeated hour), so it does not fire again.
         */
        if (kind != TZ_LOCAL_GAP && utc > after_utc) {
            *next_utc = utc;
            return 0;
        }
        wall += 60;
    }
}
