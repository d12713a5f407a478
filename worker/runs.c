/*
 * worker/runs.c - the loop side of analytics runs: outbox relay, stream consumption, dispatch.
 *
 * Everything here runs on the worker's event loop and never blocks. Two
 * independent activities share one 250 ms tick:
 *
 * The relay selects up to 100 unpublished outbox rows, XADDs one stream
 * entry per row ("run_id" <id>) through the short-command Redis client, and
 * once every reply is in marks the rows that Redis accepted published in
 * one UPDATE. A full batch is followed at once by the next one; otherwise
 * the relay waits 500 ms. Rows whose payload has no usable run_id are
 * marked published without being sent (and logged), so they cannot block
 * the relay. Nothing is held across the Redis round trip: two workers may
 * publish the same row twice, which the claim in PostgreSQL makes harmless.
 *
 * The consumer is a small state machine with at most one stream read in
 * flight: XGROUP CREATE (at start and whenever a Redis error or reconnect
 * may have lost the group; BUSYGROUP is success), then this consumer's own
 * pending entries (XREADGROUP ... 0, one at a time, so a restart under the
 * same name resumes what it held), then new entries (XREADGROUP ... > with
 * BLOCK 1000 on the reader client, which carries nothing else, so the
 * blocking read delays no other command). When a blocking read comes back
 * empty and 5 s have passed since the last one, an XAUTOCLAIM (on the short
 * client, between two blocking reads, so the two never both deliver) takes
 * over one entry that has been idle longer than the claim idle time, i.e.
 * whose worker died. Its cursor is kept between calls so a long pending
 * list is scanned in turn.
 *
 * Reads stop while the job thread has an entry. Every claim_idle/3 the entry
 * is re-claimed for this consumer (XCLAIM ... JUSTID resets its idle time)
 * as long as the job thread showed within the claim idle time that it still
 * holds its run; a worker that dies or hangs stops doing so and another
 * takes the entry over. When the job reports, the entry is acknowledged
 * (outcome ACK) and the next read starts only after the XACK reply, or it
 * stays pending (KEEP, RETRY) and the consumer goes back to its own pending
 * entries - after a growing pause (1 s to 16 s) for RETRY, which means
 * PostgreSQL was unreachable.
 *
 * When XGROUP CREATE actually creates the group (rather than BUSYGROUP),
 * the stream is new: on the first start, or because Redis lost its data.
 * Runs still queued or running may then have lost their entries although
 * their outbox rows are marked published, so they get new outbox rows and
 * the relay publishes them again (a duplicate entry is harmless).
 *
 * Ownership: every Redis and PostgreSQL callback gets the wk_runs_t itself
 * (relay replies get a slot inside it), so wk_runs_t must outlive them:
 * wk_runs_stop() only sets `stopping` (callbacks then only do bookkeeping)
 * and wk_runs_free() comes after db_close()/kv_close().
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <hiredis/hiredis.h>
#include <h2o/timeout.h>

#include "common/err.h"
#include "common/log.h"
#include "job.h"
#include "runs.h"

#define STREAM WK_RUNS_STREAM
#define GROUP WK_RUNS_GROUP
#define TICK_MS 250
#define RELAY_EVERY_MS 500
#define AUTOCLAIM_EVERY_MS 5000
#define RELAY_BATCH 100
#define RETRY_MIN_MS 1000
#define RETRY_MAX_MS 16000

typedef struct st_relay_slot_t {
    struct st_wk_runs_t *runs;
    int64_t outbox_id;
    char run_id[24]; /* "" when the payload has no usable run id */
    log_ctx_t log;   /* the request that started the run, as far as the message says */
    int sent, ok;
} relay_slot_t;

struct st_wk_runs_t {
    h2o_loop_t *loop;
    db_t *db;
    kv_t *kv, *reader;
    wk_job_t *job;
    char *name;
    int claim_idle_ms;
    char claim_idle[24];
    int stopping;
    h2o_timeout_t tick_timeout;
    h2o_timeout_entry_t tick;

    /* consumer */
    int group_ready, group_inflight;
    int read_inflight; /* an XREADGROUP or XAUTOCLAIM */
    int ack_inflight;
    int pending_mode; /* reading our own pending entries ("0") */
    int announced;
    int64_t retry_at;
    int retry_ms;
    int64_t next_autoclaim;
    char autoclaim_cursor[WK_JOB_ENTRY_ID_MAX];
    /* the entry the job thread has */
    char entry_id[WK_JOB_ENTRY_ID_MAX];
    int64_t next_refresh;
    int refresh_inflight;

    /* relay */
    int republish_due, republish_inflight; /* the group was created afresh: re-publish unfinished runs */
    int relay_inflight;
    int64_t next_relay;
    int relay_rows, relay_waiting;
    relay_slot_t relay[RELAY_BATCH];
};

static void pump(wk_runs_t *r);

/* --- reply helpers ------------------------------------------------------------------------- */

static int reply_is_array(const redisReply *x, size_t min)
{
    return x != NULL && x->type == REDIS_REPLY_ARRAY && x->elements >= min;
}

static int reply_is_string(const redisReply *x)
{
    return x != NULL && (x->type == REDIS_REPLY_STRING || x->type == REDIS_REPLY_STATUS);
}

/* The value of field `name` in a stream entry's [field, value, ...] list, or NULL. */
static const redisReply *entry_field(const redisReply *fields, const char *name)
{
    if (fields == NULL || fields->type != REDIS_REPLY_ARRAY)
        return NULL;
    for (size_t i = 0; i + 1 < fields->elements; i += 2)
        if (reply_is_string(fields->element[i]) && strcmp(fields->element[i]->str, name) == 0)
            return fields->element[i + 1];
    return NULL;
}

static int parse_run_id(const char *s, int64_t *out)
{
    char *end;
    if (s == NULL || *s < '1' || *s > '9')
        return ERR_INVALID;
    long long v = strtoll(s, &end, 10);
    if (*end != '\0' || v <= 0)
        return ERR_INVALID;
    *out = v;
    return 0;
}

/* --- acknowledging and keeping entries ------------------------------------------------------ */

static void on_ack(void *data, const redisReply *reply, int err)
{
    wk_runs_t *r = data;
    r->ack_inflight = 0;
    if (err != 0 || reply == NULL || reply->type == REDIS_REPLY_ERROR) {
        /* The entry stays pending; reading it again finds its run finished and acknowledges then. */
        log_msg(LOG_WARN, "cannot acknowledge a stream entry: %s",
                reply != NULL && reply->type == REDIS_REPLY_ERROR ? reply->str : err_name(err));
        r->group_ready = 0;
        r->pending_mode = 1;
    }
    pump(r);
}

static void ack(wk_runs_t *r, const char *entry_id)
{
    const char *argv[] = {"XACK", STREAM, GROUP, entry_id};
    if (kv_command(r->kv, on_ack, r, 4, argv, NULL) == 0) {
        r->ack_inflight = 1;
        return;
    }
    /* Redis is down: the entry stays pending for us and is handled again once it is back. */
    r->group_ready = 0;
    r->pending_mode = 1;
}

static void on_refresh(void *data, const redisReply *reply, int err)
{
    wk_runs_t *r = data;
    r->refresh_inflight = 0;
    if (err != 0 || reply == NULL || reply->type == REDIS_REPLY_ERROR)
        log_msg(LOG_WARN, "cannot keep stream entry %s claimed: %s", r->entry_id,
                reply != NULL && reply->type == REDIS_REPLY_ERROR ? reply->str : err_name(err));
}

/* Keeps the job's entry ours while the job is alive, so XAUTOCLAIM elsewhere leaves it alone. */
static void refresh_entry(wk_runs_t *r, int64_t now)
{
    if (!wk_job_busy(r->job) || r->refresh_inflight || now < r->next_refresh || r->entry_id[0] == '\0')
        return;
    int every = r->claim_idle_ms / 3 > 300 ? r->claim_idle_ms / 3 : 300;
    r->next_refresh = now + every;
    if (now - wk_job_alive_ms(r->job) >= r->claim_idle_ms)
        return; /* the job is stuck: let another worker have the entry */
    const char *argv[] = {"XCLAIM", STREAM, GROUP, r->name, "0", r->entry_id, "JUSTID"};
    if (kv_command(r->kv, on_refresh, r, 7, argv, NULL) == 0)
        r->refresh_inflight = 1;
}

static void on_job_done(void *data, int64_t run_id, const char *entry_id, wk_job_outcome_t outcome)
{
    wk_runs_t *r = data;
    int64_t now = wk_job_now_ms();
    r->entry_id[0] = '\0';
    switch (outcome) {
    case WK_JOB_ACK:
        r->retry_ms = 0;
        ack(r, entry_id);
        break;
    case WK_JOB_KEEP:
        r->pending_mode = 1;
        break;
    case WK_JOB_RETRY:
        r->retry_ms = r->retry_ms == 0 ? RETRY_MIN_MS : r->retry_ms * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : r->retry_ms * 2;
        r->retry_at = now + r->retry_ms;
        r->pending_mode = 1;
        log_msg(LOG_INFO, "run %" PRId64 " stays pending; trying again in %d ms", run_id, r->retry_ms);
        break;
    }
    pump(r);
}

/* --- reading the stream ----------------------------------------------------------------------- */

static void take_run(wk_runs_t *r, const char *id, const redisReply *value);

/* One entry [id, fields-or-nil] delivered to us by XREADGROUP or XAUTOCLAIM. */
static void take_entry(wk_runs_t *r, const redisReply *entry)
{
    if (!reply_is_array(entry, 1) || !reply_is_string(entry->element[0])) {
        log_msg(LOG_WARN, "unexpected stream entry from Redis; ignoring it");
        return;
    }
    const char *id = entry->element[0]->str;
    const redisReply *value = entry->elements > 1 ? entry_field(entry->element[1], "run_id") : NULL;
    /* Lines about this entry name the run's request; the fields are checked before they are believed. */
    const redisReply *rid = entry->elements > 1 ? entry_field(entry->element[1], "request_id") : NULL;
    const redisReply *tid = entry->elements > 1 ? entry_field(entry->element[1], "trace_id") : NULL;
    log_ctx_t logctx;
    log_ctx_make(&logctx, reply_is_string(rid) ? rid->str : NULL, reply_is_string(tid) ? tid->str : NULL);
    log_ctx_set(&logctx);
    take_run(r, id, value);
    log_ctx_set(NULL);
}

static void take_run(wk_runs_t *r, const char *id, const redisReply *value)
{
    int64_t run_id;
    if (!reply_is_string(value) || parse_run_id(value->str, &run_id) != 0) {
        /* Deleted from the stream meanwhile, or not ours to understand: nothing to run. */
        log_msg(LOG_WARN, "stream entry %s names no run; acknowledging it", id);
        ack(r, id);
        return;
    }
    int ret = wk_job_submit(r->job, run_id, id);
    if (ret != 0) {
        log_msg(LOG_ERROR, "cannot hand stream entry %s to the job thread (%s); it stays pending", id, err_name(ret));
        r->pending_mode = 1;
        return;
    }
    snprintf(r->entry_id, sizeof(r->entry_id), "%s", id);
    int every = r->claim_idle_ms / 3 > 300 ? r->claim_idle_ms / 3 : 300;
    r->next_refresh = wk_job_now_ms() + every;
}

static void read_failed(wk_runs_t *r, const redisReply *reply, int err, const char *what)
{
    if (reply != NULL && reply->type == REDIS_REPLY_ERROR) {
        log_msg(LOG_WARN, "%s failed: %s", what, reply->str);
        if (strncmp(reply->str, "NOGROUP", 7) != 0)
            r->retry_at = wk_job_now_ms() + RETRY_MIN_MS;
    }
    /* A lost connection or a missing group: create the group again once Redis answers. */
    r->group_ready = 0;
}

static void on_read(void *data, const redisReply *reply, int err)
{
    wk_runs_t *r = data;
    r->read_inflight = 0;
    if (r->stopping)
        return;
    if (err != 0 || reply == NULL || reply->type == REDIS_REPLY_ERROR) {
        read_failed(r, reply, err, "XREADGROUP");
        return;
    }
    const redisReply *entries = NULL;
    if (reply_is_array(reply, 1) && reply_is_array(reply->element[0], 2))
        entries = reply->element[0]->element[1];
    if (entries == NULL || entries->type != REDIS_REPLY_ARRAY || entries->elements == 0) {
        /* nil: BLOCK timed out; an empty list: no pending entries of ours left */
        if (r->pending_mode)
            r->pending_mode = 0;
    } else {
        take_entry(r, entries->element[0]);
    }
    pump(r);
}

static void on_autoclaim(void *data, const redisReply *reply, int err)
{
    wk_runs_t *r = data;
    r->read_inflight = 0;
    r->next_autoclaim = wk_job_now_ms() + AUTOCLAIM_EVERY_MS;
    if (r->stopping)
        return;
    if (err != 0 || !reply_is_array(reply, 2) || !reply_is_string(reply->element[0])) {
        read_failed(r, reply, err, "XAUTOCLAIM");
        return;
    }
    snprintf(r->autoclaim_cursor, sizeof(r->autoclaim_cursor), "%s", reply->element[0]->str);
    const redisReply *entries = reply->element[1];
    if (reply_is_array(entries, 1)) {
        log_msg(LOG_INFO, "took over stream entry %s left idle by another worker",
                reply_is_array(entries->element[0], 1) && reply_is_string(entries->element[0]->element[0])
                    ? entries->element[0]->element[0]->str
                    : "?");
        take_entry(r, entries->element[0]);
    }
    pump(r);
}

static void on_group(void *data, const redisReply *reply, int err)
{
    wk_runs_t *r = data;
    r->group_inflight = 0;
    if (r->stopping)
        return;
    int ok = err == 0 && reply != NULL &&
             (reply->type == REDIS_REPLY_STATUS ||
              (reply->type == REDIS_REPLY_ERROR && strncmp(reply->str, "BUSYGROUP", 9) == 0));
    if (!ok) {
        log_msg(LOG_WARN, "cannot create consumer group %s on %s: %s", GROUP, STREAM,
                reply != NULL && reply->type == REDIS_REPLY_ERROR ? reply->str : err_name(err));
        r->retry_at = wk_job_now_ms() + RETRY_MIN_MS;
        return;
    }
    r->group_ready = 1;
    r->pending_mode = 1; /* after a reconnect too: whatever we held is still ours */
    if (reply->type == REDIS_REPLY_STATUS) {
        /*
         * The group did not exist: this is the first start, or Redis lost
         * its data (restarted without persistence, flushed, failed over to
         * an empty replica). Entries of runs not yet finished may be gone
         * with it, while their outbox rows say published: publish them again.
         */
        log_msg(LOG_INFO, "created consumer group %s on %s; re-publishing runs not yet finished", GROUP, STREAM);
        r->republish_due = 1;
    }
    if (!r->announced)
        log_msg(LOG_INFO, "consuming %s as %s in group %s", STREAM, r->name, GROUP);
    r->announced = 1;
    pump(r);
}

/* Starts the next Redis step of the consumer, if any is due. */
static void pump(wk_runs_t *r)
{
    if (r->stopping || wk_job_busy(r->job) || r->read_inflight || r->ack_inflight || r->group_inflight)
        return;
    int64_t now = wk_job_now_ms();
    if (now < r->retry_at)
        return;
    if (!kv_is_up(r->kv) || !kv_is_up(r->reader)) {
        r->group_ready = 0;
        return;
    }
    if (!r->group_ready) {
        const char *argv[] = {"XGROUP", "CREATE", STREAM, GROUP, "0", "MKSTREAM"};
        if (kv_command(r->kv, on_group, r, 6, argv, NULL) == 0)
            r->group_inflight = 1;
        return;
    }
    if (!r->pending_mode && now >= r->next_autoclaim) {
        const char *argv[] = {"XAUTOCLAIM", STREAM, GROUP, r->name, r->claim_idle, r->autoclaim_cursor, "COUNT", "1"};
        if (kv_command(r->kv, on_autoclaim, r, 8, argv, NULL) == 0)
            r->read_inflight = 1;
        else
            r->group_ready = 0;
        return;
    }
    int ret;
    if (r->pending_mode) {
        const char *argv[] = {"XREADGROUP", "GROUP", GROUP, r->name, "COUNT", "1", "STREAMS", STREAM, "0"};
        ret = kv_command(r->reader, on_read, r, 9, argv, NULL);
    } else {
        const char *argv[] = {"XREADGROUP", "GROUP", GROUP,     r->name, "COUNT", "1",
                              "BLOCK",      "1000",  "STREAMS", STREAM,  ">"};
        ret = kv_command(r->reader, on_read, r, 11, argv, NULL);
    }
    if (ret == 0)
        r->read_inflight = 1;
    else
        r->group_ready = 0;
}

/* --- the outbox relay ------------------------------------------------------------------------- */

static void relay_done(wk_runs_t *r, int full)
{
    r->relay_inflight = 0;
    r->next_relay = wk_job_now_ms() + (full ? 0 : RELAY_EVERY_MS);
}

static void on_marked(void *data, const PGresult *res, int err)
{
    wk_runs_t *r = data;
    int published = 0;
    for (int i = 0; i < r->relay_rows; i++)
        published += r->relay[i].ok && r->relay[i].run_id[0] != '\0';
    if (err == 0 && published > 0)
        log_msg(LOG_DEBUG, "relayed %d run message(s) to %s", published, STREAM);
    relay_done(r, err == 0 && r->relay_rows == RELAY_BATCH);
}

/* Every XADD has answered: mark what Redis accepted (and the unusable rows) published. */
static void relay_mark(wk_runs_t *r)
{
    char ids[RELAY_BATCH * 21 + 3];
    size_t off = 0;
    int n = 0;
    ids[off++] = '{';
    for (int i = 0; i < r->relay_rows; i++) {
        if (!r->relay[i].ok)
            continue;
        off += (size_t)snprintf(ids + off, sizeof(ids) - off, "%s%" PRId64, n > 0 ? "," : "", r->relay[i].outbox_id);
        n++;
    }
    ids[off++] = '}';
    ids[off] = '\0';
    if (n == 0 || r->stopping || wk_runs_db_outbox_published(r->db, ids, on_marked, r) != 0)
        relay_done(r, 0);
}

static void on_xadd(void *data, const redisReply *reply, int err)
{
    relay_slot_t *slot = data;
    wk_runs_t *r = slot->runs;
    slot->ok = err == 0 && reply != NULL && reply->type == REDIS_REPLY_STRING;
    if (!slot->ok && reply != NULL && reply->type == REDIS_REPLY_ERROR) {
        log_ctx_set(&slot->log);
        log_msg(LOG_WARN, "XADD of run %s failed: %s", slot->run_id, reply->str);
        log_ctx_set(NULL);
    }
    if (--r->relay_waiting == 0)
        relay_mark(r);
}

static void on_outbox(void *data, const PGresult *res, int err)
{
    wk_runs_t *r = data;
    if (err != 0 || r->stopping) {
        relay_done(r, 0);
        return;
    }
    int rows = PQntuples(res);
    r->relay_rows = rows > RELAY_BATCH ? RELAY_BATCH : rows;
    r->relay_waiting = 1; /* held until every XADD is sent, so relay_mark() runs once */
    for (int i = 0; i < r->relay_rows; i++) {
        relay_slot_t *slot = &r->relay[i];
        int64_t run_id;
        slot->runs = r;
        slot->outbox_id = strtoll(PQgetvalue(res, i, 0), NULL, 10);
        slot->ok = slot->sent = 0;
        slot->run_id[0] = '\0';
        if (PQgetisnull(res, i, 1) || parse_run_id(PQgetvalue(res, i, 1), &run_id) != 0) {
            log_msg(LOG_WARN, "outbox message %" PRId64 " names no run; marking it published without sending it",
                    slot->outbox_id);
            slot->ok = 1;
            continue;
        }
        snprintf(slot->run_id, sizeof(slot->run_id), "%" PRId64, run_id);
        log_ctx_make(&slot->log, PQgetisnull(res, i, 2) ? NULL : PQgetvalue(res, i, 2),
                     PQgetisnull(res, i, 3) ? NULL : PQgetvalue(res, i, 3));
        /*
         * Keep the stream bounded: entries far behind the newest are long
         * acknowledged (a run is claimed within seconds), and a run whose
         * entry were ever lost is still in analytics_runs for an operator.
         * The entry names the run's request too, for whoever reads it.
         */
        const char *argv[12] = {"XADD", STREAM, "MAXLEN", "~", "100000", "*", "run_id", slot->run_id};
        int argc = 8;
        if (slot->log.request_id[0] != '\0')
            argv[argc++] = "request_id", argv[argc++] = slot->log.request_id;
        if (slot->log.trace_id[0] != '\0')
            argv[argc++] = "trace_id", argv[argc++] = slot->log.trace_id;
        if (kv_command(r->kv, on_xadd, slot, argc, argv, NULL) == 0) {
            slot->sent = 1;
            r->relay_waiting++;
        }
    }
    if (--r->relay_waiting == 0)
        relay_mark(r);
}

static void on_republished(void *data, const PGresult *res, int err)
{
    wk_runs_t *r = data;
    r->republish_inflight = 0;
    if (err != 0)
        return; /* still due: the next tick tries again */
    r->republish_due = 0;
    const char *n = PQcmdTuples((PGresult *)res);
    if (n != NULL && strcmp(n, "0") != 0)
        log_msg(LOG_INFO, "%s unfinished run(s) queued for publishing again", n);
    r->next_relay = 0;
}

static void republish(wk_runs_t *r)
{
    if (!r->republish_due || r->republish_inflight)
        return;
    if (wk_runs_db_republish(r->db, on_republished, r) == 0)
        r->republish_inflight = 1;
}

static void relay(wk_runs_t *r, int64_t now)
{
    if (r->relay_inflight || now < r->next_relay || !kv_is_up(r->kv))
        return;
    if (wk_runs_db_outbox_pending(r->db, on_outbox, r) == 0)
        r->relay_inflight = 1;
    else
        r->next_relay = now + RELAY_EVERY_MS;
}

/* --- life cycle ------------------------------------------------------------------------------ */

static void on_tick(h2o_timeout_entry_t *entry)
{
    wk_runs_t *r = H2O_STRUCT_FROM_MEMBER(wk_runs_t, tick, entry);
    if (r->stopping)
        return;
    int64_t now = wk_job_now_ms();
    republish(r);
    relay(r, now);
    refresh_entry(r, now);
    pump(r);
    h2o_timeout_link(r->loop, &r->tick_timeout, &r->tick);
}

wk_runs_t *wk_runs_start(h2o_loop_t *loop, h2o_multithread_queue_t *queue, db_t *db, kv_t *kv, kv_t *reader,
                         const wk_runs_config_t *conf)
{
    wk_runs_t *r = calloc(1, sizeof(*r));
    if (r == NULL)
        abort();
    r->loop = loop;
    r->db = db;
    r->kv = kv;
    r->reader = reader;
    r->name = strdup(conf->worker_name);
    r->claim_idle_ms = conf->claim_idle_ms;
    snprintf(r->claim_idle, sizeof(r->claim_idle), "%d", conf->claim_idle_ms);
    snprintf(r->autoclaim_cursor, sizeof(r->autoclaim_cursor), "0-0");
    r->pending_mode = 1;
    wk_job_config_t jconf = {.conninfo = conf->conninfo,
                             .worker_name = conf->worker_name,
                             .claim_idle_ms = conf->claim_idle_ms,
                             .metrics = conf->metrics,
                             .role = conf->role,
                             .backup_dir = conf->backup_dir,
                             .backup_keep = conf->backup_keep};
    r->job = wk_job_start(queue, &jconf, on_job_done, r);
    h2o_timeout_init(loop, &r->tick_timeout, TICK_MS);
    r->tick.cb = on_tick;
    h2o_timeout_link(loop, &r->tick_timeout, &r->tick);
    log_msg(LOG_INFO, "worker %s started (claim idle %d ms)", r->name, r->claim_idle_ms);
    return r;
}

void wk_runs_stop(wk_runs_t *r)
{
    if (r->job == NULL)
        return;
    r->stopping = 1;
    if (h2o_timeout_is_linked(&r->tick))
        h2o_timeout_unlink(&r->tick);
    /* A job that finished meanwhile is delivered from inside wk_job_stop(); on_job_done() still acknowledges it. */
    wk_job_stop(r->job);
    r->job = NULL;
}

int wk_runs_idle(wk_runs_t *r)
{
    return !r->ack_inflight && !r->relay_inflight && !r->group_inflight && !r->refresh_inflight &&
           !r->republish_inflight;
}

void wk_runs_free(wk_runs_t *r)
{
    h2o_timeout_dispose(r->loop, &r->tick_timeout);
    free(r->name);
    free(r);
}

int wk_runs_group_joined(const wk_runs_t *r)
{
    return r->group_ready;
}

int wk_runs_busy(const wk_runs_t *r)
{
    return r->job != NULL && wk_job_busy(r->job);
}
