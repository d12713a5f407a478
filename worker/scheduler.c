/*
 * worker/scheduler.c - leader election over Redis and enqueuing of due analytics runs.
 *
 * One timer ticks every second. On a tick the scheduler (1) drops its
 * leadership when Redis is gone or the lock's lease may have run out, (2)
 * every 3 s either tries to take the lock (SET NX PX) or, when it leads,
 * renews it with a script that extends it only while it still holds our
 * name, and (3) while leader, starts a pass over the due schedules unless
 * one is still running. A pass reads the due schedules a page at a time and
 * handles them one by one, one statement each (see scheduler_db.c), so a
 * pass never holds more than one database connection.
 *
 * The lease is counted from when the SET or renewal was sent, less a
 * margin, so a leader whose Redis goes silent stops enqueuing before
 * another worker can take the lock. Duplicates are prevented by the
 * database anyway; the lock only keeps the work in one place.
 *
 * Ownership: wk_scheduler_new() returns a scheduler holding one reference
 * for its owner; every query or command in flight holds another. Freeing
 * releases everything but the struct itself at once, and the struct goes
 * with the last reference, so late callbacks (fired by db_close() and
 * kv_close() at the latest) find it and drop themselves.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <h2o/timeout.h>

#include "common/cron.h"
#include "common/err.h"
#include "common/jx.h"
#include "common/log.h"
#include "common/runparams.h"
#include "common/tz.h"
#include "common/tzdb.h"
#include "scheduler.h"

#define LOCK_KEY "clientele:scheduler:leader"
#define LOCK_TTL_MS 10000
#define ELECT_EVERY_MS 3000
#define TICK_MS 1000
/* The lease ends this long before the lock can expire in Redis. */
#define LEASE_MARGIN_MS 2000
/* Due schedules read per query. */
#define PAGE_ROWS 100
/* Broken schedules remembered so that each is logged once per version. */
#define WARNED_MAX 64

/* Extends the lock only while it holds our name: 1 when renewed, 0 when it is gone or someone else's. */
static const char LUA_RENEW[] = "if redis.call('GET', KEYS[1]) == ARGV[1] then "
                                "return redis.call('PEXPIRE', KEYS[1], ARGV[2]) else return 0 end";
/* Deletes the lock only while it holds our name. */
static const char LUA_RELEASE[] = "if redis.call('GET', KEYS[1]) == ARGV[1] then "
                                  "return redis.call('DEL', KEYS[1]) else return 0 end";

typedef struct st_sched_row_t {
    int64_t id;
    int64_t version;
    char *kind, *cron, *timezone, *params;
    int has_next;
    int64_t next_us; /* the due time, microseconds since the epoch */
} sched_row_t;

typedef struct st_warned_t {
    int64_t id, version;
} warned_t;

struct st_wk_scheduler_t {
    h2o_loop_t *loop;
    db_t *db;
    kv_t *kv;
    char *name;
    int refs;    /* the owner's, plus one per query or command in flight */
    int closing; /* wk_scheduler_free() was called */

    /* leadership */
    int leader;
    int kv_busy;          /* a SET or renewal is in flight */
    uint64_t elect_sent;  /* when it was sent (monotonic ms) */
    uint64_t next_elect;  /* when to send the next one */
    uint64_t lease_until; /* leadership ends here unless renewed */

    /* the current pass */
    int passing;
    sched_row_t *rows;
    size_t nrows, cur;
    int page_full;
    int64_t last_id;
    int64_t now_us; /* the database's now() when the page was read */

    const tzdb_t *tzdb; /* every zone, loaded before the loop started (borrowed) */

    /* the daily backup: written into its schedule once per leadership */
    int has_backup;
    int backup_at_min;
    char backup_cron[32];
    char *backup_zone;
    int backup_synced, backup_busy;
    warned_t warned[WARNED_MAX];
    size_t nwarned;

    h2o_timeout_t tick_timeout;
    h2o_timeout_entry_t tick;
};

static void next_row(wk_scheduler_t *s);
static void lose(wk_scheduler_t *s, const char *why);

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int64_t floor_div(int64_t a, int64_t b)
{
    return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

/* RFC 3339 UTC, with microseconds only when there are any. Returns 0, or -1 outside years 1 to 9999. */
static int format_us(int64_t us, char out[40])
{
    int64_t secs = floor_div(us, 1000000);
    int micros = (int)(us - secs * 1000000);
    tz_civil_t c;
    if (tz_civil_from_seconds(secs, &c) != 0) {
        snprintf(out, 40, "(out of range)");
        return -1;
    }
    int n = snprintf(out, 40, "%04lld-%02d-%02dT%02d:%02d:%02d", (long long)c.year, c.month, c.day, c.hour, c.minute,
                     c.second);
    if (micros != 0)
        snprintf(out + n, 40 - (size_t)n, ".%06dZ", micros);
    else
        snprintf(out + n, 40 - (size_t)n, "Z");
    return 0;
}

/* --- references ----------------------------------------------------------- */

static void free_rows(wk_scheduler_t *s)
{
    for (size_t i = 0; i < s->nrows; i++) {
        free(s->rows[i].kind);
        free(s->rows[i].cron);
        free(s->rows[i].timezone);
        free(s->rows[i].params);
    }
    free(s->rows);
    s->rows = NULL;
    s->nrows = s->cur = 0;
}

/* Drops one reference. Returns 1 when the scheduler is closing: the caller must not touch it again. */
static int unref(wk_scheduler_t *s)
{
    int closing = s->closing;
    if (--s->refs == 0)
        free(s);
    return closing;
}

/* --- logging -------------------------------------------------------------- */

/* Warns about a broken schedule once per version of it; repeats go to the debug level. */
static void __attribute__((format(printf, 3, 4)))
warn_schedule(wk_scheduler_t *s, const sched_row_t *row, const char *fmt, ...)
{
    int level = LOG_WARN;
    for (size_t i = 0; i < s->nwarned; i++) {
        if (s->warned[i].id == row->id) {
            if (s->warned[i].version == row->version)
                level = LOG_DEBUG;
            s->warned[i].version = row->version;
            goto Log;
        }
    }
    if (s->nwarned < WARNED_MAX) {
        s->warned[s->nwarned++] = (warned_t){row->id, row->version};
    } else {
        memmove(s->warned, s->warned + 1, sizeof(s->warned) - sizeof(s->warned[0]));
        s->warned[WARNED_MAX - 1] = (warned_t){row->id, row->version};
    }
Log:
    if (!log_enabled(level))
        return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    log_msg(level, "scheduler: schedule %lld skipped: %s", (long long)row->id, msg);
}

/* --- time zones ----------------------------------------------------------- */

/* A zone by name, from the zones loaded at start-up: the loop never reads a file. NULL with a message in err. */
static const tz_t *zone_get(wk_scheduler_t *s, const char *name, char *err, size_t errlen)
{
    const tz_t *tz = tzdb_get(s->tzdb, name);
    if (tz == NULL)
        snprintf(err, errlen, "no such zone in the system's zoneinfo");
    return tz;
}

/* --- a pass over the due schedules ---------------------------------------- */

static void end_pass(wk_scheduler_t *s)
{
    free_rows(s);
    s->passing = 0;
}

static void on_due(void *data, const PGresult *res, int err);

static void start_page(wk_scheduler_t *s)
{
    if (wk_scheduler_db__due(s->db, s->last_id, PAGE_ROWS, on_due, s) != 0) {
        end_pass(s); /* the database is down or saturated; the next tick tries again */
        return;
    }
    s->refs++;
}

static char *dup_value(const PGresult *res, int row, int col)
{
    char *v = strdup(PQgetvalue(res, row, col));
    if (v == NULL)
        abort();
    return v;
}

static void on_due(void *data, const PGresult *res, int err)
{
    wk_scheduler_t *s = data;
    if (unref(s))
        return;
    if (err != 0) {
        log_msg(LOG_WARN, "scheduler: could not read the due schedules: %s", err_name(err));
        end_pass(s);
        return;
    }
    free_rows(s);
    int n = PQntuples(res);
    if (n == 0) {
        end_pass(s);
        return;
    }
    s->rows = calloc((size_t)n, sizeof(*s->rows));
    if (s->rows == NULL)
        abort();
    for (int i = 0; i < n; i++) {
        sched_row_t *r = &s->rows[i];
        r->id = strtoll(PQgetvalue(res, i, WK_SCHED_COL_ID), NULL, 10);
        r->version = strtoll(PQgetvalue(res, i, WK_SCHED_COL_VERSION), NULL, 10);
        r->kind = dup_value(res, i, WK_SCHED_COL_KIND);
        r->cron = dup_value(res, i, WK_SCHED_COL_CRON);
        r->timezone = dup_value(res, i, WK_SCHED_COL_TIMEZONE);
        r->params = dup_value(res, i, WK_SCHED_COL_PARAMS);
        r->has_next = !PQgetisnull(res, i, WK_SCHED_COL_NEXT_US);
        if (r->has_next)
            r->next_us = strtoll(PQgetvalue(res, i, WK_SCHED_COL_NEXT_US), NULL, 10);
    }
    s->nrows = (size_t)n;
    s->cur = 0;
    s->page_full = n == PAGE_ROWS;
    s->last_id = s->rows[n - 1].id;
    s->now_us = strtoll(PQgetvalue(res, 0, WK_SCHED_COL_NOW_US), NULL, 10);
    next_row(s);
}

static void on_enqueued(void *data, const PGresult *res, int err)
{
    wk_scheduler_t *s = data;
    if (unref(s))
        return;
    const sched_row_t *row = &s->rows[s->cur - 1];
    char due[40];
    format_us(row->next_us, due);
    if (err != 0) {
        log_msg(LOG_WARN, "scheduler: schedule %lld: could not enqueue the run due at %s: %s", (long long)row->id, due,
                err_name(err));
    } else if (!PQgetisnull(res, 0, 0)) {
        log_msg(LOG_INFO, "scheduler: schedule %lld: queued run %s due at %s", (long long)row->id,
                PQgetvalue(res, 0, 0), due);
    } else if (strcmp(PQgetvalue(res, 0, 1), "t") != 0) {
        log_msg(LOG_DEBUG, "scheduler: schedule %lld changed meanwhile; nothing queued for %s", (long long)row->id,
                due);
    }
    next_row(s);
}

static void on_next_set(void *data, const PGresult *res, int err)
{
    wk_scheduler_t *s = data;
    if (unref(s))
        return;
    if (err != 0)
        log_msg(LOG_WARN, "scheduler: schedule %lld: could not set next_run_at: %s", (long long)s->rows[s->cur - 1].id,
                err_name(err));
    next_row(s);
}

/* Starts the statement for one due schedule: 1 when sent, 0 when the schedule is skipped, -1 to end the pass. */
static int handle_row(wk_scheduler_t *s, const sched_row_t *row)
{
    char why[256], next_text[40], due_text[40];
    cron_t cron;
    if (cron_parse(row->cron, &cron, why, sizeof(why)) != 0) {
        warn_schedule(s, row, "cron \"%s\" does not parse: %s", row->cron, why);
        return 0;
    }
    const tz_t *tz = zone_get(s, row->timezone, why, sizeof(why));
    if (tz == NULL) {
        warn_schedule(s, row, "time zone \"%s\" cannot be loaded: %s", row->timezone, why);
        return 0;
    }
    /* The next fire time strictly after now (and after the due time): missed slots collapse into one run. */
    int64_t after = floor_div(s->now_us, 1000000), next;
    if (row->has_next && floor_div(row->next_us, 1000000) > after)
        after = floor_div(row->next_us, 1000000);
    if (cron_next(&cron, tz, after, &next) != 0) {
        warn_schedule(s, row, "cron \"%s\" never fires in %s after now", row->cron, row->timezone);
        return 0;
    }
    if (format_us(next * 1000000, next_text) != 0 || (row->has_next && format_us(row->next_us, due_text) != 0)) {
        warn_schedule(s, row, "next_run_at is out of range");
        return 0;
    }

    if (!row->has_next)
        return wk_scheduler_db__init_next(s->db, row->id, row->version, next_text, on_next_set, s) == 0 ? 1 : -1;

    if (strcmp(row->kind, "backup") == 0) /* no params: a backup is of everything, as of when it runs */
        return wk_scheduler_db__enqueue(s->db, row->id, row->version, row->kind, "{}", due_text, next_text, on_enqueued,
                                        s) == 0
                   ? 1
                   : -1;
    if (!runparams_kind_ok(row->kind)) {
        warn_schedule(s, row, "unknown kind \"%s\"", row->kind);
        return 0;
    }
    json_t *params = json_loads(row->params, 0, NULL);
    if (!json_is_object(params)) {
        if (params != NULL)
            json_decref(params);
        warn_schedule(s, row, "params are not a JSON object");
        return 0;
    }
    /* A scheduled run looks at the data as of its due time, whatever the schedule says. */
    json_object_set_new(params, "as_of", json_string(due_text));
    json_t *errors = json_array();
    json_t *complete = runparams_complete(row->kind, params, floor_div(row->next_us, 1000000), errors);
    json_decref(params);
    if (complete == NULL) {
        char *e = jx_dump_compact(errors);
        warn_schedule(s, row, "params are invalid, no run recorded: %s", e != NULL ? e : "?");
        free(e);
        json_decref(errors);
        return 0;
    }
    json_decref(errors);
    char *text = jx_dump_compact(complete);
    json_decref(complete);
    if (text == NULL)
        abort();
    int ret =
        wk_scheduler_db__enqueue(s->db, row->id, row->version, row->kind, text, due_text, next_text, on_enqueued, s);
    free(text);
    return ret == 0 ? 1 : -1;
}

/* Handles the rows of the page from s->cur on until one sends a statement; then the next page, or the end. */
static void next_row(wk_scheduler_t *s)
{
    while (s->cur < s->nrows) {
        /* Checked before every statement: a worker that lost Redis must stop enqueuing at once. */
        if (s->leader && !kv_is_up(s->kv))
            lose(s, "redis is unreachable");
        if (!s->leader) {
            end_pass(s);
            return;
        }
        int sent = handle_row(s, &s->rows[s->cur++]);
        if (sent > 0) {
            s->refs++;
            return;
        }
        if (sent < 0) {
            end_pass(s);
            return;
        }
    }
    if (s->page_full && s->leader) {
        free_rows(s);
        start_page(s);
        return;
    }
    end_pass(s);
}

static void start_pass(wk_scheduler_t *s)
{
    if (s->passing || s->closing || !s->leader)
        return;
    s->passing = 1;
    s->last_id = 0;
    start_page(s);
}

/* --- leadership ----------------------------------------------------------- */

static void lose(wk_scheduler_t *s, const char *why)
{
    if (!s->leader)
        return;
    s->leader = 0;
    s->backup_synced = 0;
    log_msg(LOG_WARN, "scheduler: %s is no longer the leader: %s", s->name, why);
}

static void on_acquired(void *data, const redisReply *reply, int err)
{
    wk_scheduler_t *s = data;
    s->kv_busy = 0;
    if (unref(s))
        return;
    if (err != 0 || reply == NULL)
        return; /* Redis is unreachable: try again later */
    if (reply->type == REDIS_REPLY_ERROR) {
        log_msg(LOG_WARN, "scheduler: redis refused the leader lock: %s", reply->str);
        return;
    }
    if (reply->type != REDIS_REPLY_STATUS || strcmp(reply->str, "OK") != 0)
        return; /* another worker holds it */
    s->leader = 1;
    s->lease_until = s->elect_sent + LOCK_TTL_MS - LEASE_MARGIN_MS;
    log_msg(LOG_INFO, "scheduler: %s is now the leader", s->name);
    start_pass(s);
}

static void on_renewed(void *data, const redisReply *reply, int err)
{
    wk_scheduler_t *s = data;
    s->kv_busy = 0;
    if (unref(s))
        return;
    if (err != 0 || reply == NULL) {
        lose(s, err == ERR_TIMEOUT ? "renewing the lock timed out" : "redis is unreachable");
    } else if (reply->type == REDIS_REPLY_ERROR) {
        log_msg(LOG_WARN, "scheduler: redis refused to renew the leader lock: %s", reply->str);
        lose(s, "renewing the lock failed");
    } else if (reply->type != REDIS_REPLY_INTEGER || reply->integer != 1) {
        lose(s, "the lock has expired or belongs to another worker");
    } else if (s->leader) {
        s->lease_until = s->elect_sent + LOCK_TTL_MS - LEASE_MARGIN_MS;
    }
}

static void on_released(void *data, const redisReply *reply, int err)
{
    unref(data);
}

/* Sends the SET NX PX (not leader) or the renewal (leader). */
static void elect(wk_scheduler_t *s, uint64_t now)
{
    char ttl[16];
    snprintf(ttl, sizeof(ttl), "%d", LOCK_TTL_MS);
    int ret;
    if (s->leader) {
        const char *argv[] = {"EVAL", LUA_RENEW, "1", LOCK_KEY, s->name, ttl};
        ret = kv_command(s->kv, on_renewed, s, 6, argv, NULL);
    } else {
        const char *argv[] = {"SET", LOCK_KEY, s->name, "NX", "PX", ttl};
        ret = kv_command(s->kv, on_acquired, s, 6, argv, NULL);
    }
    if (ret != 0) {
        lose(s, "redis is unreachable");
        return; /* retried on the next tick */
    }
    s->refs++;
    s->kv_busy = 1;
    s->elect_sent = now;
    s->next_elect = now + ELECT_EVERY_MS;
}

static void on_backup_synced(void *data, const PGresult *res, int err)
{
    wk_scheduler_t *s = data;
    s->backup_busy = 0;
    if (unref(s))
        return;
    if (err != 0) {
        log_msg(LOG_WARN, "scheduler: could not write the daily backup's schedule: %s", err_name(err));
        return; /* the next tick tries again */
    }
    s->backup_synced = 1;
    if (PQntuples(res) > 0) {
        if (s->backup_cron[0] != '\0')
            log_msg(LOG_INFO, "scheduler: daily backup at %02d:%02d %s (schedule %s)", s->backup_at_min / 60,
                    s->backup_at_min % 60, s->backup_zone, PQgetvalue(res, 0, 0));
        else
            log_msg(LOG_INFO, "scheduler: daily backups switched off (schedule %s)", PQgetvalue(res, 0, 0));
    }
}

/* The leader writes its CLIENTELE_BACKUP_AT into the backup schedule, once per leadership. */
static void sync_backup(wk_scheduler_t *s)
{
    if (!s->has_backup || !s->leader || s->backup_synced || s->backup_busy || s->closing)
        return;
    if (wk_scheduler_db__sync_backup(s->db, s->backup_cron[0] != '\0' ? s->backup_cron : NULL, s->backup_zone,
                                     on_backup_synced, s) != 0)
        return;
    s->refs++;
    s->backup_busy = 1;
}

static void on_tick(h2o_timeout_entry_t *entry)
{
    wk_scheduler_t *s = H2O_STRUCT_FROM_MEMBER(wk_scheduler_t, tick, entry);
    uint64_t now = now_ms();
    if (s->leader && !kv_is_up(s->kv))
        lose(s, "redis is unreachable");
    if (s->leader && now >= s->lease_until)
        lose(s, "the lock was not renewed in time");
    if (!s->kv_busy && now >= s->next_elect)
        elect(s, now);
    sync_backup(s);
    start_pass(s);
    h2o_timeout_link(s->loop, &s->tick_timeout, &s->tick);
}

/* --- life cycle ----------------------------------------------------------- */

wk_scheduler_t *wk_scheduler_new(h2o_loop_t *loop, db_t *db, kv_t *kv, const tzdb_t *tzdb, const char *worker_name,
                                 const wk_scheduler_backup_t *backup)
{
    wk_scheduler_t *s = calloc(1, sizeof(*s));
    if (s == NULL)
        abort();
    s->loop = loop;
    s->tzdb = tzdb;
    s->db = db;
    s->kv = kv;
    s->name = strdup(worker_name);
    if (s->name == NULL)
        abort();
    s->refs = 1;
    if (backup != NULL) {
        s->has_backup = 1;
        /* "M H * * *": minutes first, as cron has them ("" for off). */
        s->backup_at_min = backup->at_min;
        if (backup->at_min >= 0)
            snprintf(s->backup_cron, sizeof(s->backup_cron), "%d %d * * *", backup->at_min % 60, backup->at_min / 60);
        if ((s->backup_zone = strdup(backup->timezone != NULL ? backup->timezone : "UTC")) == NULL)
            abort();
    }
    h2o_timeout_init(loop, &s->tick_timeout, TICK_MS);
    s->tick.cb = on_tick;
    h2o_timeout_link(loop, &s->tick_timeout, &s->tick);
    return s;
}

void wk_scheduler_free(wk_scheduler_t *s)
{
    s->closing = 1;
    if (h2o_timeout_is_linked(&s->tick))
        h2o_timeout_unlink(&s->tick);
    h2o_timeout_dispose(s->loop, &s->tick_timeout);
    if (s->leader) {
        s->leader = 0;
        const char *argv[] = {"EVAL", LUA_RELEASE, "1", LOCK_KEY, s->name};
        if (kv_command(s->kv, on_released, s, 5, argv, NULL) == 0)
            s->refs++;
        log_msg(LOG_INFO, "scheduler: %s gives up leadership", s->name);
    }
    free_rows(s);
    free(s->name);
    s->name = NULL;
    free(s->backup_zone);
    s->backup_zone = NULL;
    unref(s);
}

int wk_scheduler_is_leader(const wk_scheduler_t *s)
{
    return s->leader && now_ms() < s->lease_until;
}
