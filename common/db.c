/*
 * common/db.c - asynchronous PostgreSQL access on the h2o event loop.
 *
 * Each loop thread owns one db_t: a fixed set of libpq connections, each a
 * small state machine (down -> connecting -> idle <-> busy), and a FIFO of
 * queries waiting for an idle connection. A connection's socket is watched
 * through an h2o socket wrapping a dup() of libpq's descriptor, created with
 * H2O_SOCKET_FLAG_DONT_READ so that h2o only reports readiness and libpq
 * does all reading. The wrapper is always closed before PQfinish(), and is
 * re-created whenever PQsocket() changes (during connection set-up).
 *
 * Statements are prepared once per connection, keyed by the address of
 * their static SQL text, then executed with PQsendQueryPrepared: that saves
 * the parse and plan on every call.
 *
 * Ownership: a db_op_t is malloc'ed by db_query() together with copies of
 * its parameters, and freed right after its callback returns. A connection
 * owns its PGconn and socket wrapper. Callbacks are never called from inside
 * db_query(); they run from the loop, and may issue new queries.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <h2o/linklist.h>
#include <h2o/timeout.h>

#include "db.h"
#include "err.h"
#include "log.h"

#define DB_MAX_PREPARED 128
#define DB_BACKOFF_STEPS 7

static const uint64_t backoff_ms[DB_BACKOFF_STEPS] = {100, 200, 400, 800, 1600, 3200, 5000};

typedef enum { CONN_DOWN, CONN_CONNECTING, CONN_IDLE, CONN_BUSY } conn_state_t;

typedef struct st_db_op_t {
    const char *sql;
    int nparams;
    const char **params;
    db_cb cb;
    void *data;
    h2o_linklist_t _queue_link;
    h2o_timeout_entry_t _deadline;
    struct st_db_conn_t *_conn;
    int _preparing; /* 1 while the statement's PREPARE is in flight */
    unsigned flags;
    db_t *_db;
} db_op_t;

typedef struct st_db_conn_t {
    db_t *db;
    int index;
    conn_state_t state;
    PGconn *pg;
    h2o_socket_t *sock;
    int sock_fd;       /* PQsocket() value the wrapper was made for */
    int write_armed;   /* an h2o_socket_notify_write is pending */
    db_op_t *op;       /* the query in flight, if any */
    PGresult *res;     /* the result kept for the callback */
    unsigned backoff;  /* index into backoff_ms for the next retry */
    h2o_timeout_entry_t retry;
    h2o_linklist_t idle_link;
    const char *prepared[DB_MAX_PREPARED];
    int nprepared;
} db_conn_t;

struct st_db_t {
    h2o_loop_t *loop;
    char *conninfo;
    char *app_name;
    char options[64];
    int pool_size;
    int queue_max;
    int closing;
    int down; /* every connection failed since the last success */
    h2o_linklist_t queue;
    h2o_linklist_t idle;
    h2o_timeout_t deadline;
    int has_deadline;
    h2o_timeout_t backoff_timeouts[DB_BACKOFF_STEPS];
    h2o_timeout_t kick_timeout; /* zero-length: "soon, from the loop" */
    h2o_timeout_entry_t kick;
    db_conn_t *conns;
    _Atomic int n_up;
    _Atomic int n_busy;
    _Atomic int n_waiting;
};

static void conn_start(db_conn_t *c);
static void conn_close(db_conn_t *c);
static void conn_watch(db_conn_t *c, int want_write);
static void on_readable(h2o_socket_t *sock, const char *err);
static void on_writable(h2o_socket_t *sock, const char *err);
static void pump_queue(db_t *db);

const char *db_fmt_i64(char *buf, int64_t v)
{
    snprintf(buf, 21, "%" PRId64, v);
    return buf;
}

int db_err_from_result(const PGresult *res)
{
    if (res == NULL)
        return ERR_UNAVAILABLE;
    switch (PQresultStatus(res)) {
    case PGRES_TUPLES_OK:
    case PGRES_COMMAND_OK:
    case PGRES_COPY_OUT:
    case PGRES_COPY_IN:
        return 0;
    default:
        break;
    }
    const char *st = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    if (st == NULL)
        return ERR_UNAVAILABLE; /* libpq-side failure, such as a lost connection */
    if (strcmp(st, "23505") == 0 || strcmp(st, "23503") == 0 || strcmp(st, "23P01") == 0)
        return ERR_CONFLICT;
    if (strcmp(st, "23502") == 0 || strcmp(st, "23514") == 0 || strcmp(st, "22P02") == 0 ||
        strncmp(st, "22", 2) == 0)
        return ERR_INVALID;
    if (strcmp(st, "40001") == 0 || strcmp(st, "40P01") == 0 || strncmp(st, "08", 2) == 0 ||
        strncmp(st, "57P", 3) == 0 || strcmp(st, "53300") == 0)
        return ERR_UNAVAILABLE;
    if (strcmp(st, "57014") == 0)
        return ERR_TIMEOUT; /* statement_timeout */
    return ERR_INTERNAL;
}

/* --- the pool's gauges ------------------------------------------------- */

void db_stats(db_t *db, db_stats_t *out)
{
    out->connections_up = atomic_load_explicit(&db->n_up, memory_order_relaxed);
    out->connections_busy = atomic_load_explicit(&db->n_busy, memory_order_relaxed);
    out->waiting = atomic_load_explicit(&db->n_waiting, memory_order_relaxed);
}

int db_is_up(db_t *db)
{
    return atomic_load_explicit(&db->n_up, memory_order_relaxed) > 0;
}

static void set_state(db_conn_t *c, conn_state_t st)
{
    db_t *db = c->db;
    int was_up = c->state == CONN_IDLE || c->state == CONN_BUSY, is_up = st == CONN_IDLE || st == CONN_BUSY;
    if (was_up != is_up)
        atomic_fetch_add_explicit(&db->n_up, is_up ? 1 : -1, memory_order_relaxed);
    if ((c->state == CONN_BUSY) != (st == CONN_BUSY))
        atomic_fetch_add_explicit(&db->n_busy, st == CONN_BUSY ? 1 : -1, memory_order_relaxed);
    if (c->state == CONN_IDLE && h2o_linklist_is_linked(&c->idle_link))
        h2o_linklist_unlink(&c->idle_link);
    c->state = st;
    if (st == CONN_IDLE)
        h2o_linklist_insert(&db->idle, &c->idle_link);
}

/* --- finishing a query ------------------------------------------------- */

static void op_free(db_op_t *op)
{
    if (h2o_timeout_is_linked(&op->_deadline))
        h2o_timeout_unlink(&op->_deadline);
    free(op);
}

/* Calls the op's callback exactly once, then frees the op. */
static void op_finish(db_op_t *op, const PGresult *res, int err)
{
    if (h2o_timeout_is_linked(&op->_deadline))
        h2o_timeout_unlink(&op->_deadline);
    if (err != 0 && res != NULL) {
        const char *st = PQresultErrorField(res, PG_DIAG_SQLSTATE);
        log_msg(err == ERR_CONFLICT || err == ERR_INVALID ? LOG_DEBUG : LOG_ERROR, "query failed: sqlstate %s: %s",
                st != NULL ? st : "-", PQresultErrorMessage(res));
    }
    op->cb(op->data, res, err);
    op_free(op);
}

static void on_deadline(h2o_timeout_entry_t *entry)
{
    db_op_t *op = H2O_STRUCT_FROM_MEMBER(db_op_t, _deadline, entry);
    db_t *db = op->_db;
    if (op->_conn == NULL) {
        h2o_linklist_unlink(&op->_queue_link);
        atomic_fetch_sub_explicit(&db->n_waiting, 1, memory_order_relaxed);
        log_msg(LOG_WARN, "query timed out waiting for a database connection");
        op_finish(op, NULL, ERR_TIMEOUT);
        return;
    }
    /* The server's statement_timeout should have fired first; the connection is unhealthy. */
    db_conn_t *c = op->_conn;
    c->op = NULL;
    op->_conn = NULL;
    log_msg(LOG_WARN, "query timed out on connection %d; resetting it", c->index);
    op_finish(op, NULL, ERR_TIMEOUT);
    conn_close(c);
    c->backoff = 0;
    conn_start(c);
}

/* --- connection life cycle --------------------------------------------- */

static void conn_close(db_conn_t *c)
{
    if (h2o_timeout_is_linked(&c->retry))
        h2o_timeout_unlink(&c->retry);
    if (c->res != NULL) {
        PQclear(c->res);
        c->res = NULL;
    }
    if (c->sock != NULL) {
        h2o_socket_close(c->sock);
        c->sock = NULL;
    }
    c->write_armed = 0;
    c->sock_fd = -1;
    if (c->pg != NULL) {
        PQfinish(c->pg);
        c->pg = NULL;
    }
    c->nprepared = 0;
    set_state(c, CONN_DOWN);
}

static void on_retry(h2o_timeout_entry_t *entry)
{
    db_conn_t *c = H2O_STRUCT_FROM_MEMBER(db_conn_t, retry, entry);
    conn_start(c);
}

static int any_conn_up_or_trying(db_t *db)
{
    for (int i = 0; i < db->pool_size; i++)
        if (db->conns[i].state != CONN_DOWN)
            return 1;
    return 0;
}

/* The connection failed or broke: fail its query, close it, retry later. */
static void conn_fail(db_conn_t *c, const char *why)
{
    db_t *db = c->db;
    db_op_t *op = c->op;
    log_msg(LOG_WARN, "database connection %d lost: %s", c->index, why);
    c->op = NULL;
    conn_close(c);
    if (op != NULL) {
        op->_conn = NULL;
        op_finish(op, NULL, ERR_UNAVAILABLE);
    }
    if (db->closing)
        return;
    if (!any_conn_up_or_trying(db)) {
        /* Nothing can serve the queue soon: fail it rather than let it time out. */
        db->down = 1;
        while (!h2o_linklist_is_empty(&db->queue)) {
            db_op_t *q = H2O_STRUCT_FROM_MEMBER(db_op_t, _queue_link, db->queue.next);
            h2o_linklist_unlink(&q->_queue_link);
            atomic_fetch_sub_explicit(&db->n_waiting, 1, memory_order_relaxed);
            op_finish(q, NULL, ERR_UNAVAILABLE);
        }
    }
    h2o_timeout_link(db->loop, &db->backoff_timeouts[c->backoff], &c->retry);
    if (c->backoff + 1 < DB_BACKOFF_STEPS)
        c->backoff++;
}

static void conn_start(db_conn_t *c)
{
    db_t *db = c->db;
    const char *keys[] = {"dbname", "application_name", "options", "connect_timeout", NULL};
    const char *vals[] = {db->conninfo, db->app_name, db->options[0] ? db->options : NULL, "5", NULL};
    if (db->options[0] == '\0')
        keys[2] = "connect_timeout", vals[2] = "5", keys[3] = NULL;
    c->pg = PQconnectStartParams(keys, vals, 1);
    if (c->pg == NULL) {
        conn_fail(c, "out of memory");
        return;
    }
    if (PQstatus(c->pg) == CONNECTION_BAD) {
        char msg[256];
        snprintf(msg, sizeof(msg), "%s", PQerrorMessage(c->pg));
        conn_fail(c, msg);
        return;
    }
    set_state(c, CONN_CONNECTING);
    /* libpq: after PQconnectStart, behave as if PQconnectPoll returned PGRES_POLLING_WRITING. */
    conn_watch(c, 1);
}

/* Makes the wrapper match PQsocket() and waits for the wanted readiness. */
static void conn_watch(db_conn_t *c, int want_write)
{
    int fd = PQsocket(c->pg);
    if (fd < 0) {
        conn_fail(c, "connection has no socket");
        return;
    }
    if (c->sock == NULL || c->sock_fd != fd) {
        if (c->sock != NULL)
            h2o_socket_close(c->sock);
        int dupfd = dup(fd);
        if (dupfd < 0) {
            c->sock = NULL;
            conn_fail(c, strerror(errno));
            return;
        }
        c->sock = h2o_evloop_socket_create(c->db->loop, dupfd, H2O_SOCKET_FLAG_DONT_READ);
        c->sock->data = c;
        c->sock_fd = fd;
        c->write_armed = 0;
    }
    if (want_write) {
        h2o_socket_read_stop(c->sock);
        if (!c->write_armed) {
            c->write_armed = 1;
            h2o_socket_notify_write(c->sock, on_writable);
        }
    } else {
        h2o_socket_read_start(c->sock, on_readable);
    }
}

static void conn_poll(db_conn_t *c)
{
    switch (PQconnectPoll(c->pg)) {
    case PGRES_POLLING_READING:
        conn_watch(c, 0);
        return;
    case PGRES_POLLING_WRITING:
        conn_watch(c, 1);
        return;
    case PGRES_POLLING_OK:
        break;
    default: {
        char msg[256];
        snprintf(msg, sizeof(msg), "%s", PQerrorMessage(c->pg));
        msg[strcspn(msg, "\n")] = '\0';
        conn_fail(c, msg);
        return;
    }
    }
    if (PQsetnonblocking(c->pg, 1) != 0) {
        conn_fail(c, "cannot switch to non-blocking mode");
        return;
    }
    conn_watch(c, 0);
    if (c->sock == NULL)
        return;
    if (c->db->down)
        log_msg(LOG_INFO, "database connection %d re-established", c->index);
    c->db->down = 0;
    c->backoff = 0;
    set_state(c, CONN_IDLE);
    pump_queue(c->db);
}

/* --- running queries --------------------------------------------------- */

static void conn_flush(db_conn_t *c)
{
    int r = PQflush(c->pg);
    if (r < 0) {
        conn_fail(c, PQerrorMessage(c->pg));
    } else if (r == 1 && !c->write_armed) {
        c->write_armed = 1;
        h2o_socket_notify_write(c->sock, on_writable);
    }
}

static int find_prepared(db_conn_t *c, const char *sql)
{
    for (int i = 0; i < c->nprepared; i++)
        if (c->prepared[i] == sql)
            return i;
    return -1;
}

/* Sends the op's next protocol step: PREPARE the first time, then EXECUTE. */
static void conn_send(db_conn_t *c)
{
    db_op_t *op = c->op;
    char name[16];
    int ok, idx = (op->flags & DB_ONESHOT) ? -1 : find_prepared(c, op->sql);
    if (op->flags & DB_ONESHOT) {
        ok = PQsendQueryParams(c->pg, op->sql, op->nparams, NULL, op->params, NULL, NULL, 0);
    } else if (idx >= 0) {
        snprintf(name, sizeof(name), "s%d", idx);
        ok = PQsendQueryPrepared(c->pg, name, op->nparams, op->params, NULL, NULL, 0);
    } else if (c->nprepared < DB_MAX_PREPARED) {
        snprintf(name, sizeof(name), "s%d", c->nprepared);
        op->_preparing = 1;
        ok = PQsendPrepare(c->pg, name, op->sql, op->nparams, NULL);
    } else {
        ok = PQsendQueryParams(c->pg, op->sql, op->nparams, NULL, op->params, NULL, NULL, 0);
    }
    if (!ok) {
        conn_fail(c, PQerrorMessage(c->pg));
        return;
    }
    conn_flush(c);
}

static void conn_run(db_conn_t *c, db_op_t *op)
{
    set_state(c, CONN_BUSY);
    c->op = op;
    op->_conn = c;
    conn_send(c);
}

static void pump_queue(db_t *db)
{
    while (!h2o_linklist_is_empty(&db->queue) && !h2o_linklist_is_empty(&db->idle)) {
        db_conn_t *c = H2O_STRUCT_FROM_MEMBER(db_conn_t, idle_link, db->idle.next);
        db_op_t *op = H2O_STRUCT_FROM_MEMBER(db_op_t, _queue_link, db->queue.next);
        h2o_linklist_unlink(&op->_queue_link);
        atomic_fetch_sub_explicit(&db->n_waiting, 1, memory_order_relaxed);
        conn_run(c, op);
    }
}

/* All results of the current step are in: finish the op or start its next step. */
static void conn_step_done(db_conn_t *c)
{
    db_op_t *op = c->op;
    PGresult *res = c->res;
    c->res = NULL;
    if (op == NULL) {
        /* The op timed out and was abandoned; the connection is reusable. */
        PQclear(res);
        set_state(c, CONN_IDLE);
        pump_queue(c->db);
        return;
    }
    int err = db_err_from_result(res);
    if (op->_preparing && err == 0) {
        op->_preparing = 0;
        c->prepared[c->nprepared++] = op->sql;
        PQclear(res);
        conn_send(c);
        return;
    }
    c->op = NULL;
    op->_conn = NULL;
    set_state(c, CONN_IDLE);
    op_finish(op, res, err);
    PQclear(res);
    pump_queue(c->db);
}

static void on_writable(h2o_socket_t *sock, const char *err)
{
    db_conn_t *c = sock->data;
    c->write_armed = 0;
    if (err != NULL) {
        conn_fail(c, err);
        return;
    }
    if (c->state == CONN_CONNECTING)
        conn_poll(c);
    else if (c->state == CONN_BUSY)
        conn_flush(c);
}

static void on_readable(h2o_socket_t *sock, const char *err)
{
    db_conn_t *c = sock->data;
    if (err != NULL) {
        conn_fail(c, err);
        return;
    }
    if (c->state == CONN_CONNECTING) {
        conn_poll(c);
        return;
    }
    if (!PQconsumeInput(c->pg)) {
        char msg[256];
        snprintf(msg, sizeof(msg), "%s", PQerrorMessage(c->pg));
        msg[strcspn(msg, "\n")] = '\0';
        conn_fail(c, msg);
        return;
    }
    PGnotify *n;
    while ((n = PQnotifies(c->pg)) != NULL)
        PQfreemem(n);
    if (c->state != CONN_BUSY) {
        if (PQstatus(c->pg) == CONNECTION_BAD)
            conn_fail(c, "server closed the connection");
        return;
    }
    while (!PQisBusy(c->pg)) {
        PGresult *r = PQgetResult(c->pg);
        if (r == NULL) {
            conn_step_done(c);
            return;
        }
        /* Keep the first error, else the last result. */
        if (c->res == NULL || db_err_from_result(c->res) == 0) {
            PQclear(c->res);
            c->res = r;
        } else {
            PQclear(r);
        }
    }
}

/* --- public entry points ----------------------------------------------- */

static void on_kick(h2o_timeout_entry_t *entry)
{
    db_t *db = H2O_STRUCT_FROM_MEMBER(db_t, kick, entry);
    pump_queue(db);
}

db_t *db_open(h2o_loop_t *loop, const db_config_t *conf)
{
    db_t *db = calloc(1, sizeof(*db));
    if (db == NULL)
        abort();
    db->loop = loop;
    db->conninfo = strdup(conf->conninfo);
    db->app_name = strdup(conf->app_name != NULL ? conf->app_name : "clientele");
    if (conf->timeout_ms > 0)
        snprintf(db->options, sizeof(db->options), "-c TimeZone=UTC -c statement_timeout=%d", conf->timeout_ms);
    else
        snprintf(db->options, sizeof(db->options), "-c TimeZone=UTC");
    db->pool_size = conf->pool_size;
    db->queue_max = conf->queue_max;
    h2o_linklist_init_anchor(&db->queue);
    h2o_linklist_init_anchor(&db->idle);
    if (conf->timeout_ms > 0) {
        /* The server's statement_timeout fires first; ours catches a dead network. */
        h2o_timeout_init(loop, &db->deadline, (uint64_t)conf->timeout_ms + 1000);
        db->has_deadline = 1;
    }
    for (int i = 0; i < DB_BACKOFF_STEPS; i++)
        h2o_timeout_init(loop, &db->backoff_timeouts[i], backoff_ms[i]);
    h2o_timeout_init(loop, &db->kick_timeout, 0);
    db->kick.cb = on_kick;
    db->conns = calloc((size_t)db->pool_size, sizeof(*db->conns));
    if (db->conns == NULL)
        abort();
    for (int i = 0; i < db->pool_size; i++) {
        db_conn_t *c = &db->conns[i];
        c->db = db;
        c->index = i;
        c->sock_fd = -1;
        c->retry.cb = on_retry;
        conn_start(c);
    }
    return db;
}

void db_close(db_t *db)
{
    db->closing = 1;
    while (!h2o_linklist_is_empty(&db->queue)) {
        db_op_t *op = H2O_STRUCT_FROM_MEMBER(db_op_t, _queue_link, db->queue.next);
        h2o_linklist_unlink(&op->_queue_link);
        atomic_fetch_sub_explicit(&db->n_waiting, 1, memory_order_relaxed);
        op_finish(op, NULL, ERR_UNAVAILABLE);
    }
    for (int i = 0; i < db->pool_size; i++) {
        db_conn_t *c = &db->conns[i];
        db_op_t *op = c->op;
        c->op = NULL;
        conn_close(c);
        if (op != NULL) {
            op->_conn = NULL;
            op_finish(op, NULL, ERR_UNAVAILABLE);
        }
    }
    if (h2o_timeout_is_linked(&db->kick))
        h2o_timeout_unlink(&db->kick);
    h2o_timeout_dispose(db->loop, &db->kick_timeout);
    if (db->has_deadline)
        h2o_timeout_dispose(db->loop, &db->deadline);
    for (int i = 0; i < DB_BACKOFF_STEPS; i++)
        h2o_timeout_dispose(db->loop, &db->backoff_timeouts[i]);
    free(db->conns);
    free(db->conninfo);
    free(db->app_name);
    free(db);
}

int db_query(db_t *db, const char *sql, int nparams, const char *const *params, db_cb cb, void *data)
{
    return db_query_flags(db, sql, nparams, params, 0, cb, data);
}

int db_query_flags(db_t *db, const char *sql, int nparams, const char *const *params, unsigned flags, db_cb cb,
                   void *data)
{
    if (nparams < 0 || nparams > DB_MAX_PARAMS)
        return ERR_INVALID;
    if (db->closing || db->down)
        return ERR_UNAVAILABLE;
    if (h2o_linklist_is_empty(&db->idle) &&
        atomic_load_explicit(&db->n_waiting, memory_order_relaxed) >= db->queue_max)
        return ERR_UNAVAILABLE;

    /* One block: the op, the parameter pointers, then the parameter strings. */
    size_t lens[DB_MAX_PARAMS], total = sizeof(db_op_t) + sizeof(char *) * (size_t)nparams;
    for (int i = 0; i < nparams; i++) {
        lens[i] = params[i] != NULL ? strlen(params[i]) + 1 : 0;
        total += lens[i];
    }
    db_op_t *op = calloc(1, total);
    if (op == NULL)
        abort();
    op->sql = sql;
    op->nparams = nparams;
    op->params = (const char **)(op + 1);
    char *p = (char *)(op->params + nparams);
    for (int i = 0; i < nparams; i++) {
        if (params[i] == NULL) {
            op->params[i] = NULL;
            continue;
        }
        memcpy(p, params[i], lens[i]);
        op->params[i] = p;
        p += lens[i];
    }
    op->cb = cb;
    op->data = data;
    op->flags = flags;
    op->_db = db;
    op->_deadline.cb = on_deadline;
    if (db->has_deadline)
        h2o_timeout_link(db->loop, &db->deadline, &op->_deadline);

    /*
     * Sending right here could fail the connection and so call back from
     * inside db_query(); the op is queued and a zero timeout, run later in
     * this same loop iteration, hands it to an idle connection.
     */
    h2o_linklist_insert(&db->queue, &op->_queue_link);
    atomic_fetch_add_explicit(&db->n_waiting, 1, memory_order_relaxed);
    if (!h2o_linklist_is_empty(&db->idle) && !h2o_timeout_is_linked(&db->kick))
        h2o_timeout_link(db->loop, &db->kick_timeout, &db->kick);
    return 0;
}
