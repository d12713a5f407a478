/*
 * common/tz.h - IANA time zones (TZif files and POSIX TZ rules) and calendar arithmetic.
 *
 * A tz_t is a small caller-owned handle: the zone's name plus a pointer to
 * immutable data that tz_load() allocates and tz_free() releases. Once
 * loaded, a zone is read-only, so any number of threads may convert times
 * with it at once. Nothing here touches the process-wide time zone state:
 * no TZ environment variable, no tzset(), no localtime(); all calendar work
 * is plain integer arithmetic on the proleptic Gregorian calendar. Loading
 * reads a file with blocking I/O, so do it at start-up or on a worker
 * thread and keep the result, never on an event-loop thread per request.
 *
 * Times are int64_t seconds. "UTC" seconds count from 1970-01-01T00:00:00Z
 * and ignore leap seconds, like time(2). "Local" seconds are the wall clock
 * read as if it were UTC: local = utc + utoff, where utoff is the offset in
 * seconds east of Greenwich in effect at that instant.
 */
#ifndef CLIENTELE_COMMON_TZ_H
#define CLIENTELE_COMMON_TZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TZ_DEFAULT_DIR "/usr/share/zoneinfo"
/* Longest accepted zone name ("America/Argentina/ComodRivadavia" is 32). */
#define TZ_NAME_MAX 64
/* Longest time zone abbreviation kept ("CEST", "+0530", "LMT"). */
#define TZ_ABBR_MAX 15
/* The range every conversion accepts: 0001-01-01T00:00:00 to 9999-12-31T23:59:59. */
#define TZ_TIME_MIN INT64_C(-62135596800)
#define TZ_TIME_MAX INT64_C(253402300799)

/* A broken-down time on the proleptic Gregorian calendar. */
typedef struct st_tz_civil_t {
    int64_t year;
    int month;  /* 1-12 */
    int day;    /* 1-31 */
    int hour;   /* 0-23 */
    int minute; /* 0-59 */
    int second; /* 0-59 */
    int wday;   /* 0-6, Sunday = 0; set by tz_civil_from_seconds(), ignored on input */
} tz_civil_t;

/* How a local wall-clock time maps onto UTC (see tz_local_to_utc()). */
typedef enum {
    TZ_LOCAL_UNIQUE = 0,  /* the wall time happens exactly once */
    TZ_LOCAL_GAP = 1,     /* the clock jumps over it (spring forward): it never happens */
    TZ_LOCAL_OVERLAP = 2, /* the clock shows it twice (fall back) */
} tz_local_kind_t;

typedef struct st_tz_t {
    char name[TZ_NAME_MAX + 1]; /* as passed to tz_load() */
    struct st_tz_data_t *_data; /* owned; NULL when not loaded */
} tz_t;

/*
 * Checks a zone name without touching the file system: 1 to TZ_NAME_MAX
 * characters, segments of [A-Za-z0-9_+-] separated by single '/', no
 * leading or trailing '/', hence no "." or "..". Returns 0 or ERR_INVALID
 * with a message in err (err may be NULL; the message never echoes the
 * rejected name).
 */
int tz_name_check(const char *name, char *err, size_t errlen);

/*
 * Loads zone `name` from TZ_DEFAULT_DIR into *out (same as tz_load_dir()).
 */
int tz_load(const char *name, tz_t *out, char *err, size_t errlen);

/*
 * Loads zone `name` from the TZif file dir/name (versions 1 to 4; 64-bit
 * data and the POSIX TZ footer are used when present). The name is checked
 * with tz_name_check() before any file is opened. "UTC" and "Etc/UTC" fall
 * back to a built-in zone when the file does not exist. On success *out
 * owns allocated memory that the caller releases with tz_free(); on failure
 * *out is left empty (safe to tz_free()) and err holds a message.
 * Returns 0, ERR_INVALID (bad name, or the file is not a usable TZif file,
 * including leap-second "right/" zones), ERR_NOT_FOUND (no such zone),
 * ERR_UNAVAILABLE (the file could not be read) or ERR_INTERNAL (no memory).
 * Blocks on file I/O.
 */
int tz_load_dir(const char *dir, const char *name, tz_t *out, char *err, size_t errlen);

/* Releases what tz_load() allocated; safe on an empty or already freed tz_t. */
void tz_free(tz_t *tz);

/*
 * Converts a UTC instant to local wall-clock seconds; either output may be
 * NULL. tz may be NULL, meaning UTC. Returns 0, or ERR_INVALID when utc is
 * outside [TZ_TIME_MIN, TZ_TIME_MAX] or tz was not loaded.
 */
int tz_utc_to_local(const tz_t *tz, int64_t utc, int64_t *local, int32_t *utoff);

/*
 * Reports whether daylight saving time is in effect at `utc` and the zone
 * abbreviation in use ("CEST"); either output may be NULL. *abbr points
 * into tz's data and stays valid until tz_free(). Errors as tz_utc_to_local().
 */
int tz_utc_info(const tz_t *tz, int64_t utc, bool *isdst, const char **abbr);

/*
 * Converts local wall-clock seconds to UTC. The rule, the same as Python's
 * fold=0 and java.time's default:
 *  - a time that happens once maps to that instant (TZ_LOCAL_UNIQUE);
 *  - a repeated time (fall back) maps to its FIRST occurrence, i.e. it is
 *    read with the offset in effect before the transition (TZ_LOCAL_OVERLAP);
 *  - a skipped time (spring forward) is read with the offset in effect
 *    before the gap, which lands after the transition: 02:30 on a night
 *    when 02:00 CET becomes 03:00 CEST gives 01:30Z, i.e. 03:30 CEST
 *    (TZ_LOCAL_GAP). Callers that must not invent times check *kind.
 * kind may be NULL. Returns 0 or ERR_INVALID (local out of range, tz not loaded).
 */
int tz_local_to_utc(const tz_t *tz, int64_t local, int64_t *utc, tz_local_kind_t *kind);

/* Splits seconds into a date and time. Returns 0 or ERR_INVALID (out of range). */
int tz_civil_from_seconds(int64_t secs, tz_civil_t *out);

/* Joins a date and time into seconds; every field must be in range (wday is ignored). */
int tz_civil_to_seconds(const tz_civil_t *civil, int64_t *secs);

/* Days since 1970-01-01 of a date (month 1-12, day 1-31); no range check. */
int64_t tz_days_from_civil(int64_t year, int month, int day);

/* 28 to 31; 0 for a month outside 1-12. */
int tz_days_in_month(int64_t year, int month);

#endif
