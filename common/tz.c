/*
 * common/tz.c - IANA time zones from TZif files and POSIX TZ rules, without libc's time zone state.
 *
 * tz_load() reads one TZif file (RFC 8536) whole, validates every count and
 * index before use, and copies what it needs into a single allocation owned
 * by the caller's tz_t: the transition times, a type index per transition,
 * the local time types, and the POSIX TZ footer parsed into a rule. Only
 * the 64-bit block of version 2+ files is used; version 1 files fall back
 * to their 32-bit block and have no footer. After the last transition the
 * footer rule decides, computed for whatever year is asked, so dates in
 * 2100 follow the same "last Sunday of March" rule as dates in 2026.
 *
 * Everything is read-only after loading and there is no global mutable
 * state, so one zone may serve many threads. Error messages go into the
 * caller's buffer; no strerror(), which is not thread-safe.
 */
#include "tz.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "err.h"

/* A real TZif file is a few kilobytes; anything bigger is not one. */
#define TZ_FILE_MAX (1024 * 1024)
/* Offsets must stay within +-26 hours (RFC 8536 allows -89999..93599). */
#define TZ_UTOFF_LIMIT 93600
#define TZ_FOOTER_MAX 256
#define TZIF_HEADER_LEN 44

struct st_tz_ttype_t {
    int32_t utoff;
    bool isdst;
    char abbr[TZ_ABBR_MAX + 1];
};

/* One end of a POSIX DST rule: Jn, n or Mm.w.d, plus a time of day. */
struct st_tz_rule_date_t {
    char kind;    /* 'J' (1-365, no Feb 29), 'n' (0-365), 'M' (month.week.weekday) */
    int n;        /* for 'J' and 'n' */
    int month;    /* 1-12 */
    int week;     /* 1-5, 5 = last */
    int wday;     /* 0-6, Sunday = 0 */
    int32_t secs; /* local time of day, -167h to +167h (RFC 8536 extension) */
};

struct st_tz_rule_t {
    struct st_tz_ttype_t std, dst;
    bool has_dst;
    struct st_tz_rule_date_t start, end; /* start is in standard time, end in DST */
};

struct st_tz_data_t {
    size_t ntrans, ntypes;
    int64_t *trans;      /* ascending */
    uint8_t *trans_type; /* index into types, per transition */
    struct st_tz_ttype_t *types;
    bool has_rule; /* the footer applies from the last transition on */
    struct st_tz_rule_t rule;
};

struct st_tzif_header_t {
    char version; /* 1, 2, 3 or 4 */
    uint32_t isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt;
};

/* A rule transition: the instant and whether DST starts (true) or ends there. */
struct st_tz_event_t {
    int64_t at;
    bool to_dst;
};

static int set_error(char *err, size_t errlen, int code, const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static int set_error(char *err, size_t errlen, int code, const char *fmt, ...)
{
    if (err != NULL && errlen > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return code;
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool is_alpha(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

static int64_t divide_floor(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

static int compute_weekday(int64_t days)
{
    /* 1970-01-01 was a Thursday. */
    int64_t w = (days + 4) % 7;
    return (int)(w < 0 ? w + 7 : w);
}

static bool is_leap_year(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

int64_t tz_days_from_civil(int64_t year, int month, int day)
{
    /* Count from 0000-03-01 so that the leap day ends each 4/100/400-year cycle. */
    int64_t y = year - (month <= 2);
    int64_t era = divide_floor(y, 400);
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static void split_days(int64_t days, int64_t *year, int *month, int *day)
{
    int64_t z = days + 719468;
    int64_t era = divide_floor(z, 146097);
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *day = (int)(doy - (153 * mp + 2) / 5 + 1);
    *month = (int)(mp < 10 ? mp + 3 : mp - 9);
    *year = yoe + era * 400 + (*month <= 2);
}

int tz_days_in_month(int64_t year, int month)
{
    static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (month < 1 || month > 12)
        return 0;
    return days[month - 1] + (month == 2 && is_leap_year(year));
}

int tz_civil_from_seconds(int64_t secs, tz_civil_t *out)
{
    if (secs < TZ_TIME_MIN || secs > TZ_TIME_MAX)
        return ERR_INVALID;
    int64_t days = divide_floor(secs, 86400);
    int64_t rem = secs - days * 86400;
    split_days(days, &out->year, &out->month, &out->day);
    out->hour = (int)(rem / 3600);
    out->minute = (int)(rem / 60 % 60);
    out->second = (int)(rem % 60);
    out->wday = compute_weekday(days);
    return 0;
}

int tz_civil_to_seconds(const tz_civil_t *civil, int64_t *secs)
{
    if (civil->year < 1 || civil->year > 9999 || civil->month < 1 || civil->month > 12 || civil->day < 1 ||
        civil->day > tz_days_in_month(civil->year, civil->month) || civil->hour < 0 || civil->hour > 23 ||
        civil->minute < 0 || civil->minute > 59 || civil->second < 0 || civil->second > 59)
        return ERR_INVALID;
    *secs = tz_days_from_civil(civil->year, civil->month, civil->day) * 86400 + civil->hour * 3600 +
            civil->minute * 60 + civil->second;
    return 0;
}

/* ---- POSIX TZ rules ("CET-1CEST,M3.5.0,M10.5.0/3") ---- */

/* Parses "CET" or "<+0530>"; returns the position after it, or NULL. */
static const char *parse_rule_abbr(const char *p, char *out)
{
    const char *start;
    size_t len;
    if (*p == '<') {
        start = ++p;
        while (is_alpha(*p) || is_digit(*p) || *p == '+' || *p == '-')
            p++;
        if (*p != '>')
            return NULL;
        len = (size_t)(p - start);
        p++;
    } else {
        start = p;
        while (is_alpha(*p))
            p++;
        len = (size_t)(p - start);
    }
    if (len < 3 || len > TZ_ABBR_MAX)
        return NULL;
    memcpy(out, start, len);
    out[len] = '\0';
    return p;
}

/* Parses [+-]h[h[h]][:mm[:ss]] with hours up to max_hours; returns the position after it, or NULL. */
static const char *parse_rule_hms(const char *p, int max_hours, int32_t *out)
{
    int sign = 1, parts[3] = {0, 0, 0}, limits[3] = {max_hours, 59, 59};
    if (*p == '+' || *p == '-')
        sign = *p++ == '-' ? -1 : 1;
    for (int i = 0; i < 3; i++) {
        if (i > 0) {
            if (*p != ':')
                break;
            p++;
        }
        int digits = 0, v = 0;
        while (is_digit(*p) && digits < (i == 0 ? 3 : 2)) {
            v = v * 10 + (*p++ - '0');
            digits++;
        }
        if (digits == 0 || v > limits[i])
            return NULL;
        parts[i] = v;
    }
    *out = sign * (parts[0] * 3600 + parts[1] * 60 + parts[2]);
    return p;
}

static const char *parse_rule_number(const char *p, int min, int max, int *out)
{
    int v = 0, digits = 0;
    while (is_digit(*p) && digits < 3) {
        v = v * 10 + (*p++ - '0');
        digits++;
    }
    if (digits == 0 || v < min || v > max)
        return NULL;
    *out = v;
    return p;
}

/* Parses "Jn", "n" or "Mm.w.d", then an optional "/time" (default 02:00). */
static const char *parse_rule_date(const char *p, struct st_tz_rule_date_t *d)
{
    memset(d, 0, sizeof(*d));
    if (*p == 'J') {
        d->kind = 'J';
        p = parse_rule_number(p + 1, 1, 365, &d->n);
    } else if (*p == 'M') {
        d->kind = 'M';
        p = parse_rule_number(p + 1, 1, 12, &d->month);
        if (p == NULL || *p != '.' || (p = parse_rule_number(p + 1, 1, 5, &d->week)) == NULL || *p != '.')
            return NULL;
        p = parse_rule_number(p + 1, 0, 6, &d->wday);
    } else {
        d->kind = 'n';
        p = parse_rule_number(p, 0, 365, &d->n);
    }
    if (p == NULL)
        return NULL;
    d->secs = 2 * 3600;
    if (*p == '/')
        p = parse_rule_hms(p + 1, 167, &d->secs);
    return p;
}

/* Parses a POSIX TZ string as found in TZif footers; on error returns ERR_INVALID with a message. */
static int parse_rule(const char *s, struct st_tz_rule_t *r, char *err, size_t errlen)
{
    const char *p = s;
    int32_t off;

    memset(r, 0, sizeof(*r));
    if ((p = parse_rule_abbr(p, r->std.abbr)) == NULL)
        return set_error(err, errlen, ERR_INVALID, "TZ rule: bad standard-time abbreviation");
    if ((p = parse_rule_hms(p, 24, &off)) == NULL)
        return set_error(err, errlen, ERR_INVALID, "TZ rule: bad or missing standard-time offset");
    /* POSIX offsets count west of Greenwich; utoff counts east. */
    r->std.utoff = -off;
    if (*p == '\0')
        return 0;

    r->has_dst = true;
    r->dst.isdst = true;
    if ((p = parse_rule_abbr(p, r->dst.abbr)) == NULL)
        return set_error(err, errlen, ERR_INVALID, "TZ rule: bad daylight-time abbreviation");
    r->dst.utoff = r->std.utoff + 3600;
    if (*p != ',' && *p != '\0') {
        if ((p = parse_rule_hms(p, 24, &off)) == NULL)
            return set_error(err, errlen, ERR_INVALID, "TZ rule: bad daylight-time offset");
        r->dst.utoff = -off;
    }
    if (*p == '\0') {
        /* No dates: POSIX leaves it to the implementation; use the US rule as glibc does. */
        r->start = (struct st_tz_rule_date_t){.kind = 'M', .month = 3, .week = 2, .wday = 0, .secs = 7200};
        r->end = (struct st_tz_rule_date_t){.kind = 'M', .month = 11, .week = 1, .wday = 0, .secs = 7200};
        return 0;
    }
    if (*p != ',' || (p = parse_rule_date(p + 1, &r->start)) == NULL)
        return set_error(err, errlen, ERR_INVALID, "TZ rule: bad daylight-time start");
    if (*p != ',' || (p = parse_rule_date(p + 1, &r->end)) == NULL)
        return set_error(err, errlen, ERR_INVALID, "TZ rule: bad daylight-time end");
    if (*p != '\0')
        return set_error(err, errlen, ERR_INVALID, "TZ rule: unexpected text after the daylight-time end");
    return 0;
}

/* The UTC instant at which rule date `d` happens in `year`, read in a zone with offset utoff. */
static int64_t compute_rule_instant(const struct st_tz_rule_date_t *d, int64_t year, int32_t utoff)
{
    int64_t days;
    if (d->kind == 'J') {
        /* J60 is always March 1: the leap day is not counted. */
        days = tz_days_from_civil(year, 1, 1) + d->n - 1 + (is_leap_year(year) && d->n >= 60);
    } else if (d->kind == 'n') {
        days = tz_days_from_civil(year, 1, 1) + d->n;
    } else {
        int64_t first = tz_days_from_civil(year, d->month, 1);
        int64_t last = first + tz_days_in_month(year, d->month) - 1;
        days = first + (d->wday - compute_weekday(first) + 7) % 7 + (d->week - 1) * 7;
        while (days > last)
            days -= 7;
    }
    return days * 86400 + d->secs - utoff;
}

/* Fills ev with the rule's transitions for years y0..y0+nyears-1, sorted; ends sort before starts on ties. */
static size_t list_rule_events(const struct st_tz_rule_t *r, int64_t y0, int nyears, struct st_tz_event_t *ev)
{
    size_t n = 0;
    for (int i = 0; i < nyears; i++) {
        ev[n++] = (struct st_tz_event_t){compute_rule_instant(&r->start, y0 + i, r->std.utoff), true};
        ev[n++] = (struct st_tz_event_t){compute_rule_instant(&r->end, y0 + i, r->dst.utoff), false};
    }
    for (size_t i = 1; i < n; i++) {
        struct st_tz_event_t e = ev[i];
        size_t j = i;
        while (j > 0 && (ev[j - 1].at > e.at || (ev[j - 1].at == e.at && ev[j - 1].to_dst && !e.to_dst))) {
            ev[j] = ev[j - 1];
            j--;
        }
        ev[j] = e;
    }
    return n;
}

static int64_t compute_rule_year(const struct st_tz_rule_t *r, int64_t t)
{
    int64_t year;
    int month, day;
    split_days(divide_floor(t + r->std.utoff, 86400), &year, &month, &day);
    return year;
}

/* Whether DST is in effect at t per the events; the last event at or before t wins. */
static bool find_event_state(const struct st_tz_event_t *ev, size_t n, int64_t t)
{
    bool dst = !ev[0].to_dst;
    for (size_t i = 0; i < n && ev[i].at <= t; i++)
        dst = ev[i].to_dst;
    return dst;
}

/*
 * Both lookups below take the events of the year before t's year to two
 * years after. The first event has no known state before it and the last
 * none after it, so neither is ever reported as a change: with permanent
 * DST written as "0/0,J365/25", each year's end meets the next year's
 * start at the same instant and nothing changes, except at the artificial
 * edges of the list.
 */
static const struct st_tz_ttype_t *find_rule_type(const struct st_tz_rule_t *r, int64_t t)
{
    if (!r->has_dst)
        return &r->std;
    struct st_tz_event_t ev[8];
    size_t n = list_rule_events(r, compute_rule_year(r, t) - 1, 4, ev);
    return find_event_state(ev, n, t) ? &r->dst : &r->std;
}

/* The first instant after t at which the rule changes between standard and daylight time. */
static bool find_rule_next(const struct st_tz_rule_t *r, int64_t t, int64_t *next)
{
    if (!r->has_dst)
        return false;
    struct st_tz_event_t ev[8];
    size_t n = list_rule_events(r, compute_rule_year(r, t) - 1, 4, ev);
    for (size_t i = 1; i + 1 < n; i++) {
        if (ev[i].at > t && ev[i].at < ev[n - 1].at &&
            find_event_state(ev, n, ev[i].at) != find_event_state(ev, n, ev[i].at - 1)) {
            *next = ev[i].at;
            return true;
        }
    }
    return false;
}

/* ---- lookups over transitions + rule ---- */

static const struct st_tz_ttype_t *find_type(const struct st_tz_data_t *d, int64_t t)
{
    if (d->ntrans == 0 || t >= d->trans[d->ntrans - 1]) {
        if (d->has_rule)
            return find_rule_type(&d->rule, t);
        return &d->types[d->ntrans == 0 ? 0 : d->trans_type[d->ntrans - 1]];
    }
    /* Before the first transition, RFC 8536 says type 0 applies. */
    if (t < d->trans[0])
        return &d->types[0];
    size_t lo = 0, hi = d->ntrans - 1; /* trans[lo] <= t < trans[hi] */
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (d->trans[mid] <= t)
            lo = mid;
        else
            hi = mid;
    }
    return &d->types[d->trans_type[lo]];
}

/* The first transition strictly after t, from the file's list or else from the rule. */
static bool find_next_transition(const struct st_tz_data_t *d, int64_t t, int64_t *next)
{
    if (d->ntrans > 0 && t < d->trans[d->ntrans - 1]) {
        size_t lo = 0, hi = d->ntrans - 1; /* answer in [lo, hi] */
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (d->trans[mid] > t)
                hi = mid;
            else
                lo = mid + 1;
        }
        *next = d->trans[lo];
        return true;
    }
    if (d->has_rule)
        return find_rule_next(&d->rule, t, next);
    return false;
}

static const struct st_tz_data_t *get_data(const tz_t *tz, const struct st_tz_data_t *utc)
{
    return tz == NULL ? utc : tz->_data;
}

static const struct st_tz_data_t *get_builtin_utc(struct st_tz_data_t *d, struct st_tz_ttype_t *type)
{
    *type = (struct st_tz_ttype_t){.utoff = 0, .isdst = false, .abbr = "UTC"};
    *d = (struct st_tz_data_t){.ntypes = 1, .types = type};
    return d;
}

int tz_utc_to_local(const tz_t *tz, int64_t utc, int64_t *local, int32_t *utoff)
{
    struct st_tz_data_t utc_data;
    struct st_tz_ttype_t utc_type;
    const struct st_tz_data_t *d = get_data(tz, get_builtin_utc(&utc_data, &utc_type));
    if (d == NULL || utc < TZ_TIME_MIN || utc > TZ_TIME_MAX)
        return ERR_INVALID;
    const struct st_tz_ttype_t *type = find_type(d, utc);
    if (local != NULL)
        *local = utc + type->utoff;
    if (utoff != NULL)
        *utoff = type->utoff;
    return 0;
}

int tz_utc_info(const tz_t *tz, int64_t utc, bool *isdst, const char **abbr)
{
    if (tz == NULL) {
        if (isdst != NULL)
            *isdst = false;
        if (abbr != NULL)
            *abbr = "UTC";
        return utc < TZ_TIME_MIN || utc > TZ_TIME_MAX ? ERR_INVALID : 0;
    }
    if (tz->_data == NULL || utc < TZ_TIME_MIN || utc > TZ_TIME_MAX)
        return ERR_INVALID;
    const struct st_tz_ttype_t *type = find_type(tz->_data, utc);
    if (isdst != NULL)
        *isdst = type->isdst;
    if (abbr != NULL)
        *abbr = type->abbr;
    return 0;
}

int tz_local_to_utc(const tz_t *tz, int64_t local, int64_t *utc, tz_local_kind_t *kind)
{
    struct st_tz_data_t utc_data;
    struct st_tz_ttype_t utc_type;
    const struct st_tz_data_t *d = get_data(tz, get_builtin_utc(&utc_data, &utc_type));
    if (d == NULL || local < TZ_TIME_MIN || local > TZ_TIME_MAX)
        return ERR_INVALID;

    /*
     * Every answer u satisfies u + utoff(u) == local with |utoff| < 26h, so
     * walk the periods of constant offset that overlap local +- 26h. In a
     * period [start, end) with offset o, u = local - o is an answer if it
     * falls inside. Periods come in time order, so the first answer is the
     * earliest occurrence.
     */
    int64_t t = local - TZ_UTOFF_LIMIT, hi = local + TZ_UTOFF_LIMIT;
    int64_t start = INT64_MIN, first = 0, gap_utc = 0;
    const struct st_tz_ttype_t *cur = find_type(d, t);
    int nfound = 0;
    bool in_gap = false;
    for (;;) {
        int64_t next;
        bool has_next = find_next_transition(d, t, &next);
        int64_t u = local - cur->utoff;
        if (u >= start && (!has_next || u < next)) {
            if (nfound++ == 0)
                first = u;
        }
        if (!has_next || next > hi)
            break;
        const struct st_tz_ttype_t *after = find_type(d, next);
        if (after->utoff > cur->utoff && local >= next + cur->utoff && local < next + after->utoff) {
            in_gap = true;
            gap_utc = local - cur->utoff;
        }
        start = t = next;
        cur = after;
    }

    if (nfound > 0) {
        *utc = first;
        if (kind != NULL)
            *kind = nfound > 1 ? TZ_LOCAL_OVERLAP : TZ_LOCAL_UNIQUE;
        return 0;
    }
    if (!in_gap)
        return ERR_INTERNAL; /* impossible: a time that never happens lies in a gap */
    *utc = gap_utc;
    if (kind != NULL)
        *kind = TZ_LOCAL_GAP;
    return 0;
}

/* ---- names and files ---- */

int tz_name_check(const char *name, char *err, size_t errlen)
{
    if (name == NULL || name[0] == '\0')
        return set_error(err, errlen, ERR_INVALID, "time zone name is empty");
    size_t len = strnlen(name, TZ_NAME_MAX + 1);
    if (len > TZ_NAME_MAX)
        return set_error(err, errlen, ERR_INVALID, "time zone name is longer than %d characters", TZ_NAME_MAX);
    if (strstr(name, "..") != NULL)
        return set_error(err, errlen, ERR_INVALID, "time zone name must not contain \"..\"");
    if (name[0] == '/')
        return set_error(err, errlen, ERR_INVALID, "time zone name must not start with '/'");
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        if (c == '/') {
            if (name[i + 1] == '/' || name[i + 1] == '\0')
                return set_error(err, errlen, ERR_INVALID, "time zone name has an empty segment");
        } else if (!is_alpha(c) && !is_digit(c) && c != '_' && c != '+' && c != '-') {
            return set_error(err, errlen, ERR_INVALID,
                             "time zone name may contain only letters, digits, '_', '+', '-' and '/'");
        }
    }
    return 0;
}

static uint32_t read_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int64_t read_be64(const uint8_t *p)
{
    return (int64_t)((uint64_t)read_be32(p) << 32 | read_be32(p + 4));
}

/*
 * Reads a header. The first header of a version 2+ file describes a 32-bit
 * block that is only stepped over, so its counts need only be bounded.
 */
static int parse_tzif_header(const uint8_t *p, size_t avail, bool first, struct st_tzif_header_t *h, char *err,
                             size_t errlen)
{
    if (avail < TZIF_HEADER_LEN || memcmp(p, "TZif", 4) != 0)
        return set_error(err, errlen, ERR_INVALID, "not a TZif file");
    if (p[4] == 0)
        h->version = 1;
    else if (p[4] >= '2' && p[4] <= '4')
        h->version = (char)(p[4] - '0');
    else
        return set_error(err, errlen, ERR_INVALID, "unsupported TZif version");
    h->isutcnt = read_be32(p + 20);
    h->isstdcnt = read_be32(p + 24);
    h->leapcnt = read_be32(p + 28);
    h->timecnt = read_be32(p + 32);
    h->typecnt = read_be32(p + 36);
    h->charcnt = read_be32(p + 40);
    /* The caps keep the size arithmetic below far from overflow; real files are much smaller. */
    if ((!(first && h->version >= 2) && (h->typecnt == 0 || h->charcnt == 0)) || h->typecnt > 256 ||
        h->charcnt > 65536 || h->timecnt > 1000000 || h->leapcnt > 100000 ||
        (h->isutcnt != 0 && h->isutcnt != h->typecnt) || (h->isstdcnt != 0 && h->isstdcnt != h->typecnt))
        return set_error(err, errlen, ERR_INVALID, "TZif header has impossible counts");
    return 0;
}

static size_t compute_block_size(const struct st_tzif_header_t *h, size_t timesize)
{
    return (size_t)h->timecnt * (timesize + 1) + (size_t)h->typecnt * 6 + h->charcnt +
           (size_t)h->leapcnt * (timesize + 4) + h->isstdcnt + h->isutcnt;
}

/* Copies one validated data block into a new allocation at *out. */
static int parse_tzif_block(const uint8_t *p, const struct st_tzif_header_t *h, size_t timesize,
                            struct st_tz_data_t **out, char *err, size_t errlen)
{
    if (h->leapcnt != 0)
        return set_error(err, errlen, ERR_INVALID, "time zones with leap seconds (\"right/\") are not supported");

    size_t ntrans = h->timecnt, ntypes = h->typecnt;
    struct st_tz_data_t *d =
        calloc(1, sizeof(*d) + ntrans * sizeof(int64_t) + ntypes * sizeof(struct st_tz_ttype_t) + ntrans);
    if (d == NULL)
        return set_error(err, errlen, ERR_INTERNAL, "out of memory");
    d->ntrans = ntrans;
    d->ntypes = ntypes;
    d->trans = (int64_t *)(d + 1);
    d->types = (struct st_tz_ttype_t *)(d->trans + ntrans);
    d->trans_type = (uint8_t *)(d->types + ntypes);

    const uint8_t *times = p, *idx = times + ntrans * timesize, *info = idx + ntrans, *chars = info + ntypes * 6;
    for (size_t i = 0; i < ntrans; i++) {
        d->trans[i] = timesize == 8 ? read_be64(times + i * 8) : (int64_t)(int32_t)read_be32(times + i * 4);
        if (i > 0 && d->trans[i] <= d->trans[i - 1])
            goto Invalid;
        if (idx[i] >= ntypes)
            goto Invalid;
        d->trans_type[i] = idx[i];
    }
    for (size_t i = 0; i < ntypes; i++) {
        const uint8_t *ti = info + i * 6;
        int32_t utoff = (int32_t)read_be32(ti);
        uint8_t isdst = ti[4], abbrind = ti[5];
        if (utoff <= -TZ_UTOFF_LIMIT || utoff >= TZ_UTOFF_LIMIT || isdst > 1 || abbrind >= h->charcnt)
            goto Invalid;
        const char *abbr = (const char *)chars + abbrind;
        size_t alen = strnlen(abbr, h->charcnt - abbrind);
        if (alen == h->charcnt - abbrind || alen > TZ_ABBR_MAX)
            goto Invalid;
        d->types[i].utoff = utoff;
        d->types[i].isdst = isdst;
        memcpy(d->types[i].abbr, abbr, alen);
        d->types[i].abbr[alen] = '\0';
    }
    *out = d;
    return 0;

Invalid:
    free(d);
    return set_error(err, errlen, ERR_INVALID, "TZif data is malformed");
}

/* Parses a whole TZif file image into *out. */
static int parse_tzif(const uint8_t *buf, size_t len, struct st_tz_data_t **out, char *err, size_t errlen)
{
    struct st_tzif_header_t h;
    size_t off = 0, timesize = 4;
    int ret;

    if ((ret = parse_tzif_header(buf, len, true, &h, err, errlen)) != 0)
        return ret;
    if (h.version >= 2) {
        /* Skip the 32-bit block: the 64-bit one that follows covers all times. */
        off = TZIF_HEADER_LEN + compute_block_size(&h, 4);
        if (off > len || (ret = parse_tzif_header(buf + off, len - off, false, &h, err, errlen)) != 0)
            return off > len ? set_error(err, errlen, ERR_INVALID, "TZif file is truncated") : ret;
        if (h.version < 2)
            return set_error(err, errlen, ERR_INVALID, "TZif second header has the wrong version");
        timesize = 8;
    }
    off += TZIF_HEADER_LEN;
    size_t block = compute_block_size(&h, timesize);
    if (block > len - off)
        return set_error(err, errlen, ERR_INVALID, "TZif file is truncated");
    if ((ret = parse_tzif_block(buf + off, &h, timesize, out, err, errlen)) != 0)
        return ret;
    if (h.version == 1)
        return 0;

    /* Version 2+: "\n" TZ-string "\n" follows; an empty string means no rule. */
    off += block;
    const uint8_t *footer = NULL, *nl = NULL;
    if (off < len && buf[off] == '\n') {
        footer = buf + off + 1;
        nl = memchr(footer, '\n', len - off - 1);
    }
    size_t flen = nl == NULL ? 0 : (size_t)(nl - footer);
    if (nl == NULL || flen >= TZ_FOOTER_MAX) {
        ret = set_error(err, errlen, ERR_INVALID, "TZif footer is missing or malformed");
        goto Error;
    }
    if (flen > 0) {
        char rule[TZ_FOOTER_MAX];
        memcpy(rule, footer, flen);
        rule[flen] = '\0';
        if (memchr(rule, '\0', flen) != NULL) {
            ret = set_error(err, errlen, ERR_INVALID, "TZif footer is missing or malformed");
            goto Error;
        }
        if ((ret = parse_rule(rule, &(*out)->rule, err, errlen)) != 0)
            goto Error;
        (*out)->has_rule = true;
    }
    return 0;

Error:
    free(*out);
    *out = NULL;
    return ret;
}

/* Reads a regular file of at most TZ_FILE_MAX bytes into a new buffer. */
static int read_zone_file(const char *path, const char *name, uint8_t **buf, size_t *len, char *err, size_t errlen)
{
    struct stat st;
    int ret = 0;
    /* O_NONBLOCK so that a FIFO planted in the directory cannot hang us in open(). */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        if (errno == ENOENT || errno == ENOTDIR)
            return set_error(err, errlen, ERR_NOT_FOUND, "unknown time zone \"%s\"", name);
        return set_error(err, errlen, ERR_UNAVAILABLE, "could not open the file of time zone \"%s\"", name);
    }
    if (fstat(fd, &st) != 0) {
        ret = set_error(err, errlen, ERR_UNAVAILABLE, "could not read the file of time zone \"%s\"", name);
        goto Exit;
    }
    if (!S_ISREG(st.st_mode) || st.st_size > TZ_FILE_MAX) {
        ret = set_error(err, errlen, ERR_INVALID, "\"%s\" is not a time zone file", name);
        goto Exit;
    }
    *len = (size_t)st.st_size;
    if ((*buf = malloc(*len + 1)) == NULL) {
        ret = set_error(err, errlen, ERR_INTERNAL, "out of memory");
        goto Exit;
    }
    size_t got = 0;
    while (got < *len) {
        ssize_t n = read(fd, *buf + got, *len - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    if (got != *len) {
        free(*buf);
        *buf = NULL;
        ret = set_error(err, errlen, ERR_UNAVAILABLE, "could not read the file of time zone \"%s\"", name);
    }
Exit:
    close(fd);
    return ret;
}

static bool is_utc_name(const char *name)
{
    return strcmp(name, "UTC") == 0 || strcmp(name, "Etc/UTC") == 0;
}

static struct st_tz_data_t *create_utc_data(void)
{
    struct st_tz_data_t *d = calloc(1, sizeof(*d) + sizeof(struct st_tz_ttype_t));
    if (d == NULL)
        return NULL;
    d->ntypes = 1;
    d->types = (struct st_tz_ttype_t *)(d + 1);
    strcpy(d->types[0].abbr, "UTC");
    return d;
}

int tz_load_dir(const char *dir, const char *name, tz_t *out, char *err, size_t errlen)
{
    char path[4096];
    uint8_t *buf = NULL;
    size_t len = 0;
    int ret;

    memset(out, 0, sizeof(*out));
    if ((ret = tz_name_check(name, err, errlen)) != 0)
        return ret;
    if (dir == NULL || dir[0] == '\0')
        return set_error(err, errlen, ERR_INVALID, "time zone directory is empty");
    if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, name) >= sizeof(path))
        return set_error(err, errlen, ERR_INVALID, "time zone directory path is too long");

    if ((ret = read_zone_file(path, name, &buf, &len, err, errlen)) != 0) {
        if (ret != ERR_NOT_FOUND || !is_utc_name(name))
            return ret;
        /* UTC must work even on a system without tzdata. */
        if ((out->_data = create_utc_data()) == NULL)
            return set_error(err, errlen, ERR_INTERNAL, "out of memory");
        strcpy(out->name, name);
        return 0;
    }
    ret = parse_tzif(buf, len, &out->_data, err, errlen);
    free(buf);
    if (ret != 0) {
        out->_data = NULL;
        return ret;
    }
    strcpy(out->name, name);
    return 0;
}

int tz_load(const char *name, tz_t *out, char *err, size_t errlen)
{
    return tz_load_dir(TZ_DEFAULT_DIR, name, out, err, errlen);
}

void tz_free(tz_t *tz)
{
    if (tz == NULL)
        return;
    free(tz->_data);
    tz->_data = NULL;
    tz->name[0] = '\0';
}
