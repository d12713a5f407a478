/*
 * common/cron.h - 5-field cron expressions and their next fire time in an IANA time zone.
 *
 * cron_parse() turns "minute hour day-of-month month day-of-week" into a
 * cron_t, a plain value of bitsets that the caller owns, copies and frees
 * as it likes; nothing is allocated and nothing is shared, so any thread
 * may use any cron_t. cron_next() walks the calendar field by field in the
 * zone's wall-clock time and maps the answer back to UTC with common/tz.h.
 *
 * Syntax, as in Vixie cron / cronie:
 *   minute 0-59, hour 0-23, day-of-month 1-31, month 1-12 or JAN-DEC,
 *   day-of-week 0-7 or SUN-SAT (0 and 7 are both Sunday); names are three
 *   letters, any case. Each field is a comma list of items; an item is "*",
 *   a value "a", a range "a-b" (a <= b), or a step: "*" or "a-b" followed
 *   by "/n", 1 <= n <= the field's maximum. (A star-slash would close this
 *   comment, so below STAR/n stands for "*" then "/n".) Fields are separated
 *   by spaces or tabs. Anything else is rejected, including "a/n", "?",
 *   "L", "W", "#", and six-field (seconds or year) forms.
 *   Macros: @yearly (= @annually) "0 0 1 1 *", @monthly "0 0 1 * *",
 *   @weekly "0 0 * * 0", @daily (= @midnight) "0 0 * * *", @hourly
 *   "0 * * * *". @reboot is rejected: a scheduler has no boot to run at.
 *
 * Day matching follows Vixie cron exactly: a day-of-month or day-of-week
 * field that starts with '*' ("*" or STAR/n) counts as unrestricted. If
 * either field is unrestricted a day must match both; if both are
 * restricted it matches when EITHER does ("0 0 13 * FRI" fires on every
 * 13th and on every Friday).
 */
#ifndef CLIENTELE_COMMON_CRON_H
#define CLIENTELE_COMMON_CRON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tz.h"

/* cron_next() gives up after this many calendar years without a match. */
#define CRON_SEARCH_YEARS 30

enum {
    CRON_DOM_STAR = 1, /* the day-of-month field starts with '*' */
    CRON_DOW_STAR = 2, /* the day-of-week field starts with '*' */
};

typedef struct st_cron_t {
    uint64_t minutes; /* bit n: minute n, 0-59 */
    uint32_t hours;   /* bit n: hour n, 0-23 */
    uint32_t mdays;   /* bit n: day of month n, 1-31 */
    uint16_t months;  /* bit n: month n, 1-12 */
    uint8_t wdays;    /* bit n: weekday n, 0-6, Sunday = 0 */
    uint8_t flags;    /* CRON_DOM_STAR | CRON_DOW_STAR */
} cron_t;

/*
 * Parses `expr` into *out. On error returns ERR_INVALID, leaves *out
 * untouched and writes a message naming the field into err (may be NULL),
 * e.g. "minute: value 61 out of range 0-59".
 */
int cron_parse(const char *expr, cron_t *out, char *err, size_t errlen);

/* Whether a wall-clock minute (seconds and wday of `local` are ignored; wday is recomputed) matches. */
bool cron_match(const cron_t *cron, const tz_civil_t *local);

/*
 * Finds the first minute strictly after `after_utc` whose wall-clock time
 * in `tz` (NULL means UTC) matches, and stores the UTC instant at which the
 * wall clock shows that minute in *next_utc. Daylight saving time:
 *  - a wall time that does not exist (spring forward) never fires; the job
 *    waits for its next match ("30 2 * * *" skips that one night);
 *  - a wall time that happens twice (fall back) fires only at its first
 *    occurrence. Every minute of the repeated hour is such a time, so even
 *    "STAR/15 * * * *" is silent during the second pass (the interval across
 *    the change is 75 minutes for a one-hour shift). Use tz = NULL (UTC)
 *    for jobs that need a steady interval.
 * The search walks month, day, hour and minute bitsets rather than single
 * minutes, and stops after CRON_SEARCH_YEARS calendar years.
 * Returns 0, ERR_NOT_FOUND when nothing matches in that window (e.g.
 * "0 0 30 2 *"), or ERR_INVALID (after_utc outside TZ_TIME_MIN..TZ_TIME_MAX,
 * tz not loaded).
 */
int cron_next(const cron_t *cron, const tz_t *tz, int64_t after_utc, int64_t *next_utc);

#endif
