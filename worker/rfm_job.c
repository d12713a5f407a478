/*
 * worker/rfm_job.c - the analytics run kind "rfm": load, score, write.
 *
 * Reading happens in one REPEATABLE READ READ ONLY transaction on the job's
 * connection A, so the population and the orders come from one snapshot:
 *  1. count the population, then allocate exactly the three arrays
 *     wk_rfm_score() needs (48 + 12 + 4 bytes per customer), nothing else
 *     proportional to customers or orders;
 *  2. COPY the population's ids (ORDER BY id) in binary into the customer
 *     array, so it is sorted by id;
 *  3. COPY the qualifying orders (customer_id, ordered_at, total) in binary
 *     and fold each into its customer's aggregate as it arrives: first and
 *     last order time, count, exact sum. Orders arrive in any order and are
 *     never stored. An order's customer is found through a directory built
 *     in the scratch array (which wk_rfm_score() overwrites later): the id
 *     range is cut into 2^k equal buckets (2^k <= customers) and dir[b] is
 *     the first customer of bucket b, so a lookup is one shift plus a binary
 *     search inside one bucket - constant time for the dense ids PostgreSQL
 *     identity columns give, never worse than a plain binary search. The
 *     lookups of consecutive orders overlap in a small prefetch pipeline
 *     (see PIPE_LAG). Orders of customers outside the population (a tag,
 *     soft-deleted customers) find nothing and are skipped. The server may
 *     scan the orders with parallel workers (SQL_ORDERS_ESTIMATE).
 * Then wk_rfm_score() ranks everyone, and wk_job_write_results() writes the
 * results in one transaction: a binary COPY straight into
 * customer_analytics_history, then customer_analytics. For a run over every
 * customer, the job's side connection meanwhile builds the new
 * customer_analytics in a table of its own (binary COPY ... FREEZE, primary
 * key, statistics, then its foreign key NOT VALID, which locks customers
 * against writes for a moment, with a bounded wait) and commits it, then
 * validates that key in a second transaction, which lets customer writes go
 * on; all unseen by readers. The run's transaction
 * then swaps it in by renaming. For a tag's population, an upsert from the
 * history rows (only that population is touched). See
 * schema/0011_rfm_write.sql and 0013. Then the run's statistics, the commit, and
 * after it the drop of the table that was swapped out.
 *
 * Timestamps: PostgreSQL sends microseconds; the scoring definitions
 * (worker/rfm.h) work in whole seconds, so order times and as_of are
 * truncated to the second (floor), and "strictly earlier" means an earlier
 * second. The order filter itself uses the exact as_of.
 *
 * COPY takes no parameters, so its statements are built here - but only
 * from values this file produced itself from the checked params: the
 * timestamps are printed by wk_rfm_job_format_ts() from integers (digits,
 * '-', ':', '.', ' ', '+' only), and the tag, a string of 1 to 50
 * characters checked by common/runparams.c, goes through PQescapeLiteral()
 * on the very connection that runs the statement, which quotes it for that
 * connection's encoding and standard_conforming_strings. No text of the
 * request is spliced in any other way. The write's statements name the run
 * id, an integer. Statements without such values are static strings.
 *
 * The binary COPY messages are split into fields by worker/pgcopy.c, which
 * refuses anything but one tuple per message (the header with the first,
 * the trailer alone or after the last).
 *
 * Ownership: the three arrays are malloc'ed here and freed before
 * returning; SQL texts come from the job's pool; the stats object is
 * created and released here.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "common/err.h"
#include "common/jx.h"
#include "common/log.h"
#include "common/runparams.h"
#include "common/tz.h"
#include "pgcopy.h"
#include "rfm_job.h"

#define US_PER_SEC INT64_C(1000000)
#define US_PER_DAY (INT64_C(86400) * US_PER_SEC)
/* Seconds from 1970-01-01 to 2000-01-01, PostgreSQL's epoch. */
#define PG_EPOCH_OFFSET WK_PG_EPOCH_SECS
#define PROGRESS_EVERY 65536
#define RESULT_ROW_MAX 256
/*
 * How long the swap of customer_analytics, and the drop of the old one after
 * the commit, wait for a lock per attempt (three attempts each). Readers of
 * the table locked queue behind the request meanwhile, so these bound how
 * long they can be held up.
 */
#define SWAP_LOCK_WAIT_MS "200"
#define DROP_LOCK_WAIT_MS "100"
/*
 * How long the staged table's foreign key to customers waits per attempt for
 * its SHARE ROW EXCLUSIVE lock on customers (three attempts), which every
 * customer write queues behind meanwhile. Held for a catalog change only: the
 * side transaction commits right after, and validation runs in the next one.
 */
#define FK_LOCK_WAIT_MS "100"

static const char SQL_READ_BEGIN[] = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY";
/*
 * The orders' estimate, and a parallel plan for the COPY of the orders when
 * the table is large enough: scanning and filtering, most of the server's
 * work, then run in parallel workers. The planner's default costs for moving
 * rows between processes would rule that out for a query returning most of
 * the table. set_config(..., true) is SET LOCAL: for this transaction only.
 */
static const char SQL_ORDERS_ESTIMATE[] =
    "SELECT greatest(reltuples, 0)::bigint, set_config('parallel_setup_cost', '0', true),"
    " set_config('parallel_tuple_cost', '0', true) FROM pg_class WHERE oid = 'orders'::regclass";

#define RESULT_COLS "customer_id, recency_days, frequency, monetary, r, f, m, segment, lifecycle, tier"

/* The write (see the file comment); %lld is the run id, %s the staged table's name (see staged_name()). */
static const char SQL_COPY_HISTORY[] =
    "COPY customer_analytics_history (run_id, " RESULT_COLS ") FROM STDIN (FORMAT binary)";
static const char SQL_STAGE_FMT[] = "SELECT customer_analytics_stage('%s', %lld)";
static const char SQL_COPY_STAGED_FMT[] = "COPY %s (" RESULT_COLS ") FROM STDIN (FORMAT binary, FREEZE)";
static const char SQL_SEAL_FMT[] = "SELECT customer_analytics_seal('%s', " FK_LOCK_WAIT_MS ")";
static const char SQL_VALIDATE_FMT[] = "SELECT customer_analytics_validate('%s')";
static const char SQL_SWAP_FMT[] = "SELECT customer_analytics_swap(%lld, '%s', " SWAP_LOCK_WAIT_MS ")";
static const char SQL_UPSERT_FMT[] =
    "INSERT INTO customer_analytics (customer_id, run_id, computed_at, recency_days, frequency, monetary, r, f, m,"
    " segment, lifecycle, tier)"
    " SELECT customer_id, run_id, now(), recency_days, frequency, monetary, r, f, m, segment, lifecycle, tier"
    " FROM customer_analytics_history WHERE run_id = %lld"
    " ON CONFLICT (customer_id) DO UPDATE SET run_id = EXCLUDED.run_id, computed_at = EXCLUDED.computed_at,"
    " recency_days = EXCLUDED.recency_days, frequency = EXCLUDED.frequency, monetary = EXCLUDED.monetary,"
    " r = EXCLUDED.r, f = EXCLUDED.f, m = EXCLUDED.m, segment = EXCLUDED.segment,"
    " lifecycle = EXCLUDED.lifecycle, tier = EXCLUDED.tier";
/*
 * A full run's history rows get the planner's statistics in the run's transaction (ANALYZE
 * samples the rows the transaction itself inserted, and its statistics commit with them), so
 * that reports on the run (summary, transitions) are planned for a million rows from the first
 * request on, not for none: a run adds too small a share of a long history for autovacuum to
 * analyze it soon. It runs while the side connection builds the new customer_analytics.
 */
static const char SQL_ANALYZE_HISTORY[] = "SELECT customer_analytics_history_analyze()"; /* as the owner (0018) */
static const char *const AFTER_SQL[] = {"SELECT customer_analytics_drop_retired(" DROP_LOCK_WAIT_MS ")", NULL};

/*
 * Orders go through a three-stage software pipeline: stage 1 decodes the
 * order and prefetches its directory entry, stage 2 (PIPE_LAG orders later)
 * reads that entry and prefetches the customer record, stage 3 (PIPE_LAG
 * orders after that) folds the order into it. Orders arrive in no
 * particular customer order, so without the prefetches every order waits
 * for two cache misses (directory and customer array are megabytes); with
 * them the misses of consecutive orders overlap.
 */
#define PIPE_LAG 8
#define PIPE_SIZE (2 * PIPE_LAG) /* a power of two */

typedef struct st_pending_order_t {
    int64_t id;
    int64_t at; /* unix seconds */
    dec_t total;
    uint32_t lo, hi; /* the customers of its directory bucket, from stage 2 */
} pending_order_t;

typedef struct st_load_t {
    wk_job_ctx_t *ctx;
    wk_rfm_customer_t *c;
    size_t n, cap;
    /* the id directory, in the scratch array */
    uint32_t *dir;
    uint64_t nbuckets;
    unsigned shift;
    int64_t min_id, max_id;
    /* COPY stream state */
    wk_pgcopy_reader_t copy;
    /* orders */
    uint64_t orders, skipped;
    double expected_orders;
    /* orders on their way through the lookup pipeline (see fold_order()) */
    pending_order_t pipe[PIPE_SIZE];
    uint64_t pipe_in, pipe_mid, pipe_out; /* orders entered, past stage 2, folded */
} load_t;

typedef struct st_produce_t {
    const wk_rfm_customer_t *c;
    const wk_rfm_result_t *res;
    size_t n, next;
    int64_t run_id; /* > 0: every row starts with it (the history's run_id) */
    int header_done, trailer_done;
} produce_t;

/* --- params ------------------------------------------------------------------------- */

int wk_job_params_as_of(const json_t *params, int64_t *as_of_us, int64_t *as_of_secs, char *err, size_t errlen)
{
    const json_t *as_of = json_object_get(params, "as_of");
    int64_t secs;
    int32_t micros;
    char buf[40];

    if (as_of == NULL || json_is_null(as_of)) {
        snprintf(err, errlen, "as_of is missing from the run's params");
        return ERR_INVALID;
    }
    if (!json_is_string(as_of) || jx_parse_rfc3339(json_string_value(as_of), &secs, &micros) != 0) {
        snprintf(err, errlen, "as_of is not a valid timestamp (expected RFC 3339 such as 2026-01-31T00:00:00Z)");
        return ERR_INVALID;
    }
    *as_of_us = secs * US_PER_SEC + micros;
    *as_of_secs = secs; /* micros >= 0: the floor */
    if (wk_rfm_job_format_ts(*as_of_us, buf, sizeof(buf)) != 0) {
        snprintf(err, errlen, "as_of is out of range (years 0001 to 9999)");
        return ERR_INVALID;
    }
    return 0;
}

int wk_rfm_job_parse_params(const json_t *params, wk_rfm_job_params_t *out, char *err, size_t errlen)
{
    int64_t secs;

    memset(out, 0, sizeof(*out));
    if (wk_job_params_as_of(params, &out->as_of_us, &secs, err, errlen) != 0)
        return ERR_INVALID;

    /* The rest is checked by the API's own rules, so both sides accept the same runs. */
    json_t *complete = runparams_complete_text("rfm", params, secs, err, errlen);
    if (complete == NULL)
        return ERR_INVALID;

    const json_t *lookback = json_object_get(complete, "lookback_days");
    out->lookback_days = json_is_integer(lookback) ? (int32_t)json_integer_value(lookback) : 0;
    const json_t *tag = json_object_get(params, "tag");
    out->tag = json_is_string(tag) ? json_string_value(tag) : NULL;
    out->scoring.as_of = secs; /* micros >= 0: this is the floor */
    out->scoring.new_days = (int32_t)json_integer_value(json_object_get(complete, "new_days"));
    out->scoring.active_days = (int32_t)json_integer_value(json_object_get(complete, "active_days"));
    out->scoring.churn_days = (int32_t)json_integer_value(json_object_get(complete, "churn_days"));
    const char *a = json_string_value(json_object_get(complete, "a_share"));
    const char *b = json_string_value(json_object_get(complete, "b_share"));
    int bad = a == NULL || b == NULL || dec_parse(a, strlen(a), DEC_SCALE, &out->scoring.a_share) != 0 ||
              dec_parse(b, strlen(b), DEC_SCALE, &out->scoring.b_share) != 0;
    json_decref(complete);
    if (bad) {
        snprintf(err, errlen, "a_share and b_share must be decimal strings such as \"0.80\"");
        return ERR_INVALID;
    }
    return 0;
}

int wk_rfm_job_format_ts(int64_t us, char *buf, size_t len)
{
    int64_t secs = us / US_PER_SEC, micros = us % US_PER_SEC;
    tz_civil_t civ;
    if (micros < 0) {
        secs--;
        micros += US_PER_SEC;
    }
    if (secs < TZ_TIME_MIN || secs > TZ_TIME_MAX || tz_civil_from_seconds(secs, &civ) != 0) {
        if (len > 0)
            buf[0] = '\0';
        return ERR_INVALID;
    }
    snprintf(buf, len, "%04" PRId64 "-%02d-%02d %02d:%02d:%02d.%06" PRId64 "+00", civ.year, civ.month, civ.day,
             civ.hour, civ.minute, civ.second, micros);
    return 0;
}

/* --- binary COPY ------------------------------------------------------------------------ */

/* int64 microseconds since 2000-01-01 to whole Unix seconds (floor). */
static inline int64_t pg_ts_to_unix(int64_t us)
{
    int64_t s = us / US_PER_SEC;
    if (us % US_PER_SEC < 0)
        s--;
    return s + PG_EPOCH_OFFSET;
}

static int on_customer(void *arg, const char *data, size_t len)
{
    load_t *l = arg;
    const unsigned char *f[1];
    int32_t flen[1];
    int r = wk_pgcopy_next(&l->copy, data, len, 1, f, flen);
    if (r == 0)
        return 0;
    if (r < 0 || flen[0] != 8)
        return wk_job_fail(l->ctx, "internal error: unexpected COPY data while loading customers");
    int64_t id = (int64_t)wk_pgcopy_rd64(f[0]);
    if (l->n > 0 && id <= l->c[l->n - 1].customer_id)
        return wk_job_fail(l->ctx, "internal error: customers did not arrive in ascending id order");
    if (l->n == l->cap)
        return wk_job_fail(l->ctx, "internal error: more customers arrived than were counted");
    wk_rfm_customer_t *c = &l->c[l->n++];
    memset(c, 0, sizeof(*c));
    c->customer_id = id;
    return 0;
}

static inline uint64_t bucket_of(const load_t *l, int64_t id)
{
    return ((uint64_t)id - (uint64_t)l->min_id) >> l->shift;
}

/* Builds the directory: dir[b] is the first customer whose bucket is >= b. */
static void build_directory(load_t *l)
{
    l->min_id = l->c[0].customer_id;
    l->max_id = l->c[l->n - 1].customer_id;
    l->nbuckets = 1;
    while (l->nbuckets * 2 <= l->n)
        l->nbuckets *= 2;
    uint64_t span = (uint64_t)l->max_id - (uint64_t)l->min_id;
    l->shift = 0;
    while ((span >> l->shift) >= l->nbuckets)
        l->shift++;
    size_t i = 0;
    for (uint64_t b = 0; b < l->nbuckets; b++) {
        while (i < l->n && bucket_of(l, l->c[i].customer_id) < b)
            i++;
        l->dir[b] = (uint32_t)i;
    }
}

/* Stage 2: the order's bucket bounds, and a prefetch of its likely customer record. */
static inline void locate_order(load_t *l, pending_order_t *o)
{
    uint64_t b = bucket_of(l, o->id);
    o->lo = l->dir[b];
    o->hi = b + 1 < l->nbuckets ? l->dir[b + 1] : (uint32_t)l->n;
    if (o->lo < o->hi)
        __builtin_prefetch(&l->c[o->lo + (o->hi - o->lo) / 2], 1);
}

/* Stage 3: finds the customer inside its bucket and folds the order into its aggregate. */
static int fold_order(load_t *l, const pending_order_t *o)
{
    size_t lo = o->lo, hi = o->hi;
    wk_rfm_customer_t *c = NULL;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int64_t v = l->c[mid].customer_id;
        if (v == o->id) {
            c = &l->c[mid];
            break;
        }
        if (v < o->id)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (c == NULL) {
        l->skipped++;
        return 0;
    }
    if (!c->has_orders) {
        c->has_orders = 1;
        c->first_order_at = c->last_order_at = o->at;
        c->frequency = 1;
        c->monetary = o->total;
        return 0;
    }
    if (o->at < c->first_order_at)
        c->first_order_at = o->at;
    if (o->at > c->last_order_at)
        c->last_order_at = o->at;
    c->frequency++;
    if (dec_add(c->monetary, o->total, &c->monetary) != 0)
        return wk_job_fail(l->ctx, "the order totals of customer %" PRId64 " add up to more than can be stored", o->id);
    return 0;
}

/* Moves every order still in the pipeline through stages 2 and 3. */
static int drain_orders(load_t *l)
{
    for (; l->pipe_mid < l->pipe_in; l->pipe_mid++)
        locate_order(l, &l->pipe[l->pipe_mid & (PIPE_SIZE - 1)]);
    for (; l->pipe_out < l->pipe_in; l->pipe_out++) {
        int r = fold_order(l, &l->pipe[l->pipe_out & (PIPE_SIZE - 1)]);
        if (r != 0)
            return r;
    }
    return 0;
}

static int on_order(void *arg, const char *data, size_t len)
{
    load_t *l = arg;
    const unsigned char *f[3];
    int32_t flen[3];
    int r = wk_pgcopy_next(&l->copy, data, len, 3, f, flen);
    if (r == 0)
        return drain_orders(l);
    if (r < 0 || flen[0] != 8 || flen[1] != 8 || flen[2] < 0)
        return wk_job_fail(l->ctx, "internal error: unexpected COPY data while loading orders");
    if ((++l->orders % PROGRESS_EVERY) == 0) {
        double frac = l->expected_orders > (double)l->orders ? (double)l->orders / l->expected_orders : 1.0;
        if ((r = wk_job_progress(l->ctx, 0.05 + 0.8 * frac, 0, -1, 0)) != 0)
            return r;
    }
    int64_t id = (int64_t)wk_pgcopy_rd64(f[0]);
    if (id < l->min_id || id > l->max_id) {
        l->skipped++; /* certainly not in the population */
        return l->copy.ended ? drain_orders(l) : 0;
    }
    /* Stage 1. */
    pending_order_t *o = &l->pipe[l->pipe_in & (PIPE_SIZE - 1)];
    o->id = id;
    o->at = pg_ts_to_unix((int64_t)wk_pgcopy_rd64(f[1]));
    if (dec_from_pg_binary(f[2], (size_t)flen[2], &o->total) != 0)
        return wk_job_fail(l->ctx, "an order of customer %" PRId64 " has a total that is not a finite number", id);
    __builtin_prefetch(&l->dir[bucket_of(l, id)]);
    l->pipe_in++;
    /* Stage 2 for the order PIPE_LAG behind, stage 3 for the one 2 * PIPE_LAG behind (whose slot comes next). */
    if (l->pipe_in - l->pipe_mid > PIPE_LAG)
        locate_order(l, &l->pipe[l->pipe_mid++ & (PIPE_SIZE - 1)]);
    if (l->pipe_in - l->pipe_out >= PIPE_SIZE && (r = fold_order(l, &l->pipe[l->pipe_out++ & (PIPE_SIZE - 1)])) != 0)
        return r;
    /* The trailer may share the last tuple's message. */
    return l->copy.ended ? drain_orders(l) : 0;
}

/* --- results ------------------------------------------------------------------------------ */

static inline unsigned char *wr16(unsigned char *p, uint16_t v)
{
    p[0] = (unsigned char)(v >> 8);
    p[1] = (unsigned char)v;
    return p + 2;
}

static inline unsigned char *wr32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
    return p + 4;
}

static inline unsigned char *wr64(unsigned char *p, uint64_t v)
{
    return wr32(wr32(p, (uint32_t)(v >> 32)), (uint32_t)v);
}

size_t wk_rfm_job_numeric2(dec_t v, unsigned char *buf)
{
    __int128 units = dec_to_units(v);
    int negative = units < 0;
    unsigned __int128 mag = (unsigned __int128)(negative ? -units : units);
    /* millionths to hundredths, half away from zero (as dec_format() and PostgreSQL's round()) */
    unsigned __int128 cents = (mag + 5000) / 10000;
    uint16_t digits[16];
    int nd = 0, weight;
    unsigned __int128 ip = cents / 100;
    unsigned frac = (unsigned)(cents % 100);

    /* base-10000 groups of the integer part, most significant first */
    uint16_t groups[12];
    int ng = 0;
    while (ip > 0) {
        groups[ng++] = (uint16_t)(ip % 10000);
        ip /= 10000;
    }
    for (int i = ng - 1; i >= 0; i--)
        digits[nd++] = groups[i];
    weight = ng - 1;
    if (frac != 0)
        digits[nd++] = (uint16_t)(frac * 100);
    /* PostgreSQL's canonical form: no leading or trailing zero digits */
    int first = 0;
    while (first < nd && digits[first] == 0) {
        first++;
        weight--;
    }
    while (nd > first && digits[nd - 1] == 0)
        nd--;
    if (nd == first) {
        first = nd = 0;
        weight = 0;
        negative = 0;
    }
    unsigned char *p = buf;
    p = wr16(p, (uint16_t)(nd - first));
    p = wr16(p, (uint16_t)(int16_t)weight);
    p = wr16(p, negative ? 0x4000 : 0x0000);
    p = wr16(p, 2);
    for (int i = first; i < nd; i++)
        p = wr16(p, digits[i]);
    return (size_t)(p - buf);
}

static unsigned char *put_null(unsigned char *p)
{
    return wr32(p, 0xFFFFFFFFu);
}

static unsigned char *put_i16(unsigned char *p, int v)
{
    return wr16(wr32(p, 2), (uint16_t)(int16_t)v);
}

static unsigned char *put_text(unsigned char *p, const char *s)
{
    size_t len = strlen(s);
    p = wr32(p, (uint32_t)len);
    memcpy(p, s, len);
    return p + len;
}

static size_t produce_results(void *arg, char *buf, size_t cap)
{
    produce_t *pr = arg;
    unsigned char *p = (unsigned char *)buf, *end = p + cap;
    if (!pr->header_done) {
        memcpy(p, WK_PGCOPY_SIGNATURE, sizeof(WK_PGCOPY_SIGNATURE));
        p = wr32(wr32(p + sizeof(WK_PGCOPY_SIGNATURE), 0), 0);
        pr->header_done = 1;
    }
    while (pr->next < pr->n && end - p >= RESULT_ROW_MAX) {
        const wk_rfm_customer_t *c = &pr->c[pr->next];
        const wk_rfm_result_t *r = &pr->res[pr->next];
        pr->next++;
        p = wr16(p, pr->run_id > 0 ? 11 : 10);
        if (pr->run_id > 0)
            p = wr64(wr32(p, 8), (uint64_t)pr->run_id);
        p = wr64(wr32(p, 8), (uint64_t)c->customer_id);
        if (r->r == 0) {
            /* a prospect: no order in the window */
            for (int i = 0; i < 6; i++)
                p = put_null(p);
        } else {
            p = wr32(wr32(p, 4), (uint32_t)r->recency_days);
            p = wr32(wr32(p, 4), (uint32_t)c->frequency);
            unsigned char *len = p;
            size_t n = wk_rfm_job_numeric2(c->monetary, p + 4);
            wr32(len, (uint32_t)n);
            p += 4 + n;
            p = put_i16(put_i16(put_i16(p, r->r), r->f), r->m);
        }
        p = put_text(p, wk_rfm_segment_name(r->segment));
        p = put_text(p, wk_rfm_lifecycle_name(r->lifecycle));
        const char *tier = wk_rfm_tier_name(r->tier);
        p = tier != NULL ? put_text(p, tier) : put_null(p);
    }
    if (pr->next == pr->n && !pr->trailer_done && end - p >= 2) {
        p = wr16(p, 0xFFFF);
        pr->trailer_done = 1;
    }
    return (size_t)(p - (unsigned char *)buf);
}

static json_t *dec_json(dec_t v)
{
    char buf[DEC_STR_MAX];
    dec_format(v, 2, buf, sizeof(buf));
    return json_string(buf);
}

static json_t *make_stats(const wk_rfm_stats_t *st)
{
    json_t *segments = json_object(), *lifecycles = json_object(), *tiers = json_object(), *revenue = json_object();
    for (int i = 0; i < WK_RFM_SEGMENT__COUNT; i++)
        json_object_set_new(segments, wk_rfm_segment_name(i), json_integer((json_int_t)st->segments[i]));
    for (int i = 0; i < WK_RFM_LIFECYCLE__COUNT; i++)
        json_object_set_new(lifecycles, wk_rfm_lifecycle_name(i), json_integer((json_int_t)st->lifecycles[i]));
    for (int i = WK_RFM_TIER_A; i < WK_RFM_TIER__COUNT; i++) {
        json_object_set_new(tiers, wk_rfm_tier_name(i), json_integer((json_int_t)st->tiers[i]));
        json_object_set_new(revenue, wk_rfm_tier_name(i), dec_json(st->tier_revenue[i]));
    }
    json_t *o = json_object();
    json_object_set_new(o, "customers", json_integer((json_int_t)st->customers));
    json_object_set_new(o, "scored", json_integer((json_int_t)st->scored));
    json_object_set_new(o, "segments", segments);
    json_object_set_new(o, "lifecycles", lifecycles);
    json_object_set_new(o, "tiers", tiers);
    json_object_set_new(o, "revenue", dec_json(st->revenue));
    json_object_set_new(o, "tier_revenue", revenue);
    return o;
}

/* --- the run ---------------------------------------------------------------------------------- */

/*
 * customer_analytics_next_<run>_<token>: a token of its own for every
 * attempt, so that a staged table an interrupted attempt committed never
 * stands in the way of the next one (customer_analytics_drop_retired()
 * removes it once the run is over). Letters, digits and '_' only.
 */
static void staged_name(char *buf, size_t len, long long run)
{
    uint32_t token;
    if (getrandom(&token, sizeof(token), GRND_NONBLOCK) != (ssize_t)sizeof(token))
        token = (uint32_t)wk_job_now_ms() ^ (uint32_t)getpid() << 16;
    snprintf(buf, len, "customer_analytics_next_%lld_%08" PRIx32, run, token);
}

/* Builds the COPY statements from the checked params (see the file comment on why this is safe). */
static int build_sql(wk_job_ctx_t *ctx, const wk_rfm_job_params_t *p, char **orders_sql)
{
    h2o_mem_pool_t *pool = wk_job_pool(ctx);
    char as_of[40], since[40], window[96] = "";
    if (wk_rfm_job_format_ts(p->as_of_us, as_of, sizeof(as_of)) != 0)
        return wk_job_fail(ctx, "as_of is out of range (years 0001 to 9999)");
    if (p->lookback_days > 0 &&
        wk_rfm_job_format_ts(p->as_of_us - p->lookback_days * US_PER_DAY, since, sizeof(since)) == 0)
        snprintf(window, sizeof(window), " AND ordered_at > '%s'::timestamptz", since);
    /* else the window starts before year 1: every order qualifies */

    static const char orders_fmt[] =
        "COPY (SELECT customer_id, ordered_at, total FROM orders WHERE status = 'completed' AND deleted_at IS NULL"
        " AND ordered_at <= '%s'::timestamptz%s) TO STDOUT (FORMAT binary)";
    size_t len = sizeof(orders_fmt) + strlen(as_of) + strlen(window);
    *orders_sql = h2o_mem_alloc_pool(pool, len);
    snprintf(*orders_sql, len, orders_fmt, as_of, window);
    return 0;
}

int wk_job_population(wk_job_ctx_t *ctx, const char *tag, const char **cond, size_t *count, char **ids_sql)
{
    h2o_mem_pool_t *pool = wk_job_pool(ctx);
    char tag_cond[256] = "";
    PGresult *res;
    int r;
    if (tag != NULL) {
        char *lit = PQescapeLiteral(wk_job_conn(ctx), tag, strlen(tag));
        if (lit == NULL)
            return wk_job_fail(ctx, "tag cannot be quoted for the database: %s", PQerrorMessage(wk_job_conn(ctx)));
        /* runparams limits a tag to 50 characters: 50 * 4 bytes of UTF-8, doubled quotes, fits. */
        int n = snprintf(tag_cond, sizeof(tag_cond), " AND tags @> ARRAY[%s]::text[]", lit);
        PQfreemem(lit);
        if (n < 0 || (size_t)n >= sizeof(tag_cond))
            return wk_job_fail(ctx, "tag is too long");
    }
    static const char count_fmt[] = "SELECT count(*) FROM customers WHERE deleted_at IS NULL%s";
    static const char ids_fmt[] =
        "COPY (SELECT id FROM customers WHERE deleted_at IS NULL%s ORDER BY id) TO STDOUT (FORMAT binary)";
    size_t len = strlen(tag_cond) + 1;
    if (cond != NULL)
        *cond = memcpy(h2o_mem_alloc_pool(pool, len), tag_cond, len);
    len = sizeof(ids_fmt) + strlen(tag_cond);
    *ids_sql = h2o_mem_alloc_pool(pool, len);
    snprintf(*ids_sql, len, ids_fmt, tag_cond);
    char count_sql[sizeof(count_fmt) + sizeof(tag_cond)];
    snprintf(count_sql, sizeof(count_sql), count_fmt, tag_cond);

    if ((r = wk_job_exec(ctx, count_sql, 0, NULL, "counting customers", &res)) != 0)
        return r;
    long long n = atoll(PQgetvalue(res, 0, 0));
    PQclear(res);
    if (n < 0 || (unsigned long long)n >= UINT32_MAX)
        return wk_job_fail(ctx, "the population of %lld customers is larger than one run can score", n);
    *count = (size_t)n;
    return wk_job_progress(ctx, 0.01, 0, n, 1);
}

/* The read transaction: count, customers, orders. Fills l. */
static int load(wk_job_ctx_t *ctx, const wk_rfm_job_params_t *p, load_t *l, wk_rfm_result_t **results,
                uint32_t **scratch)
{
    char *customers_sql = NULL, *orders_sql = NULL;
    PGresult *res;
    int r;
    int64_t t0 = wk_job_now_ms();

    if ((r = wk_job_exec(ctx, SQL_READ_BEGIN, 0, NULL, "starting to read", &res)) != 0)
        return r;
    PQclear(res);
    if ((r = build_sql(ctx, p, &orders_sql)) != 0 ||
        (r = wk_job_population(ctx, p->tag, NULL, &l->cap, &customers_sql)) != 0)
        return r;

    if (l->cap > 0) {
        l->c = malloc(l->cap * sizeof(*l->c));
        *results = malloc(l->cap * sizeof(**results));
        *scratch = malloc(wk_rfm_scratch_size(l->cap));
        if (l->c == NULL || *results == NULL || *scratch == NULL)
            return wk_job_fail(ctx, "the worker cannot allocate memory for %zu customers", l->cap);
    }
    if ((r = wk_job_copy_out(ctx, customers_sql, on_customer, l, "loading customers")) != 0)
        return r;
    if (l->n != l->cap)
        return wk_job_fail(ctx, "internal error: %zu customers arrived, %zu were counted", l->n, l->cap);
    int64_t t1 = wk_job_now_ms();
    if ((r = wk_job_progress(ctx, 0.05, 0, -1, 0)) != 0)
        return r;

    if (l->n > 0) {
        if ((r = wk_job_exec(ctx, SQL_ORDERS_ESTIMATE, 0, NULL, "estimating orders", &res)) != 0)
            return r;
        l->expected_orders = PQntuples(res) == 1 ? atof(PQgetvalue(res, 0, 0)) : 0;
        PQclear(res);
        l->dir = *scratch;
        build_directory(l);
        l->copy = (wk_pgcopy_reader_t){0};
        r = wk_job_copy_out(ctx, orders_sql, on_order, l, "loading orders");
        if (r != 0 || (r = drain_orders(l)) != 0)
            return r;
    }
    if ((r = wk_job_exec(ctx, "COMMIT", 0, NULL, "finishing the reads", &res)) != 0)
        return r;
    PQclear(res);
    log_msg(LOG_INFO,
            "run %" PRId64 ": %zu customers loaded in %" PRId64 " ms, %" PRIu64 " orders (%" PRIu64
            " of other customers) in %" PRId64 " ms",
            wk_job_run_id(ctx), l->n, t1 - t0, l->orders, l->skipped, wk_job_now_ms() - t1);
    return 0;
}

int wk_rfm_job_run(wk_job_ctx_t *ctx, const json_t *params)
{
    wk_rfm_job_params_t p;
    load_t l = {.ctx = ctx};
    wk_rfm_result_t *results = NULL;
    uint32_t *scratch = NULL;
    json_t *stats_json = NULL;
    char err[512];
    int r;

    if (wk_rfm_job_parse_params(params, &p, err, sizeof(err)) != 0) {
        r = wk_job_fail(ctx, "%s", err);
        goto Exit;
    }
    if ((r = load(ctx, &p, &l, &results, &scratch)) != 0)
        goto Exit;

    int64_t t0 = wk_job_now_ms();
    wk_rfm_stats_t stats;
    if (wk_rfm_score(l.c, l.n, &p.scoring, results, scratch, wk_rfm_scratch_size(l.n), &stats) != 0) {
        r = wk_job_fail(ctx, "the customers cannot be scored: an order date or a sum is out of range");
        goto Exit;
    }
    for (size_t i = 0; i < l.n; i++) {
        if (l.c[i].frequency > INT32_MAX) {
            r = wk_job_fail(ctx, "customer %" PRId64 " has more orders than can be stored", l.c[i].customer_id);
            goto Exit;
        }
    }
    log_msg(LOG_DEBUG, "run %" PRId64 ": scored %zu customers in %" PRId64 " ms", wk_job_run_id(ctx), l.n,
            wk_job_now_ms() - t0);
    if ((r = wk_job_progress(ctx, 0.9, (int64_t)l.n, -1, 1)) != 0)
        goto Exit;

    stats_json = make_stats(&stats);
    long long run = (long long)wk_job_run_id(ctx);
    char name[64], stage[192], copy_staged[256], seal[192], validate[192], swap[192];
    char upsert[sizeof(SQL_UPSERT_FMT) + 24];
    produce_t history = {.c = l.c, .res = results, .n = l.n, .run_id = run};
    produce_t staged = {.c = l.c, .res = results, .n = l.n};
    wk_job_step_t steps[4] = {{.sql = SQL_COPY_HISTORY, .produce = produce_results, .arg = &history}}, side[5] = {{0}};
    wk_job_results_t out = {
        .steps = steps,
        .after_sql = AFTER_SQL, /* also for a tag's run: a full run may have left an old table behind */
        .customers = (int64_t)l.n,
        .stats = stats_json,
    };
    if (p.tag == NULL) {
        /*
         * The whole population: a fresh customer_analytics, built beside the
         * history's COPY and swapped in by the run's transaction (see
         * schema/0011_rfm_write.sql).
         */
        staged_name(name, sizeof(name), run);
        snprintf(stage, sizeof(stage), SQL_STAGE_FMT, name, run);
        snprintf(copy_staged, sizeof(copy_staged), SQL_COPY_STAGED_FMT, name);
        snprintf(seal, sizeof(seal), SQL_SEAL_FMT, name);
        snprintf(validate, sizeof(validate), SQL_VALIDATE_FMT, name);
        snprintf(swap, sizeof(swap), SQL_SWAP_FMT, run, name);
        side[0] = (wk_job_step_t){.sql = stage};
        side[1] = (wk_job_step_t){.sql = copy_staged, .produce = produce_results, .arg = &staged};
        side[2] = (wk_job_step_t){.sql = seal};
        /* The key's strong lock on customers goes with the commit; validating takes a weak one. */
        side[3] = (wk_job_step_t){.sql = validate, .new_txn = 1};
        steps[1] = (wk_job_step_t){.sql = SQL_ANALYZE_HISTORY};
        steps[2] = (wk_job_step_t){.sql = swap};
        out.side_steps = side;
        out.side_before = 2;
    } else {
        /* Part of it: the other customers keep their values. */
        snprintf(upsert, sizeof(upsert), SQL_UPSERT_FMT, run);
        steps[1] = (wk_job_step_t){.sql = upsert};
    }
    r = wk_job_write_results(ctx, &out);

Exit:
    if (stats_json != NULL)
        json_decref(stats_json);
    free(l.c);
    free(results);
    free(scratch);
    return r;
}
