/*
 * common/db.c - asynchronous PostgreSQL access on the h2o event loop.
 *
 * Each loop thread owns one db_t: a fixed set of libpq connections, each a
 * small state machine (down -> resolving -> connecting -> idle <-> busy),
 * and a FIFO of queries waiting for an idle connection. A connection's
 * socket is watched through an h2o socket wrapping a dup() of libpq's
 * descriptor, created with H2O_SOCKET_FLAG_DONT_READ so that h2o only
 * reports readiness and libpq does all reading. The wrapper is always
 * closed before PQfinish(), is created afresh for every connection, and is
 * re-created during set-up whenever PQsocket() names another socket: a new
 * descriptor number, or the same number reused for a new socket (libpq
 * closes and re-opens its socket when it moves on to the next host or
 * address, or retries without SSL), told apart by the socket's inode.
 *
 * Nothing here blocks the loop. Host names in the connection string are
 * resolved on a helper thread (common/bg.c) at every connection attempt
 * and passed to libpq as hostaddr, with host kept for TLS verification and
 * .pgpass. libpq ignores connect_timeout in non-blocking mode, so a timer
 * bounds resolving plus connecting. Deadlines come in two parts: the queue
 * timeout bounds a query's wait for a connection (ERR_UNAVAILABLE: the
 * service is saturated, retry later); once sent, the server's
 * statement_timeout bounds its execution (SQLSTATE 57014, ERR_TIMEOUT). A
 * client-side execution deadline one second later answers ERR_TIMEOUT and
 * sends a cancel request from a helper thread; the connection stays busy
 * until the server has answered and the cancel request has been delivered
 * (one that arrived later would stop the next query instead), then serves
 * the next query with its prepared statements intact. Only a server that
 * does not answer even the cancel within DB_CANCEL_GRACE_MS gets its
 * connection closed.
 *
 * Statements marked DB_PIPELINE that wait together when a connection comes
 * free (asked for in the same loop iteration, or queued behind busy
 * connections) go to that one connection as a batch of up to DB_PIPE_MAX in
 * libpq's pipeline mode, each followed by its own Sync; their results are
 * read in order and each op is answered at its Sync. A statement not yet
 * prepared on the connection has its PREPARE sent in the pipeline right
 * ahead of it, its name recorded at once (a later op of the batch may use
 * it); if that op fails, the PREPARE may have failed with it, and the
 * connection is re-opened once the batch is over rather than trusting the
 * name. The execution deadline of a pipelined op that passes it closes the
 * connection (its neighbours get ERR_UNAVAILABLE): a cancel would stop
 * whichever statement of the batch is running, not necessarily that one.
 *
 * Statements are prepared once per connection, keyed by the address of
 * their static SQL text, then executed with PQsendQueryPrepared: that saves
 * the parse and plan on every call. Each connection keeps the addresses it
 * prepared in an open-addressing hash set that grows without a cap (a
 * process prepares as many statements as its code has texts), and forgets
 * them all when it reconnects.
 *
 * A session pins a connection: the connection leaves the idle list for its
 * own state (CONN_PINNED between statements, CONN_BUSY during one) and
 * runs only the session's statements, one at a time, started from the loop
 * by a zero timeout. Session requests wait in the same queue as queries,
 * and together with the pinned connections they never exceed pool_size - 1.
 * A closed session's connection is cleaned before the pool gets it back:
 * its running statement cancelled as above, then a ROLLBACK when the server
 * reports a transaction still open or failed; a connection that still is
 * not clean after that is closed and re-opened.
 *
 * Ownership: a db_op_t is malloc'ed by db_query() together with copies of
 * its parameters, and freed right after its callback returns. A connection
 * owns its PGconn and socket wrapper. A db_session_t is malloc'ed when its
 * request gets a connection and freed by db_session_close() only; the
 * connection and the session point at each other until either goes. Callbacks are never called from inside
 * db_query(); they run from the loop, and may issue new queries.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <h2o/linklist.h>
#include <h2o/timeout.h>

#include "bg.h"
#include "db.h"
#include "err.h"
#include "log.h"

#define DB_BACKOFF_STEPS 7
#define DB_MAX_HOSTS 8
#define DB_MAX_ADDRS 4          /* addresses tried per host name, like libpq does for the names it resolves */
#define DB_EXEC_GRACE_MS 1000   /* after statement_timeout, before our own deadline cancels */
#define DB_CANCEL_GRACE_MS 5000 /* after the cancel, before the connection is given up */
#define DB_CONNECT_TIMEOUT_MS 5000
#define DB_PIPE_MAX 16     /* statements on the wire in one pipeline */
#define DB_PIPE_STALL_MS 5 /* a pipeline that answered nothing for this long takes no more */

static const uint64_t backoff_ms[DB_BACKOFF_STEPS] = {100, 200, 400, 800, 1600, 3200, 5000};

/* CONN_PINNED: held by a session (or cleaning up after one), no statement on the wire. */
typedef enum { CONN_DOWN, CONN_RESOLVING, CONN_CONNECTING, CONN_IDLE, CONN_BUSY, CONN_PINNED } conn_state_t;

typedef struct st_db_op_t {
    const char *sql;
    int nparams;
    const char **params;
    db_cb cb;
    void *data;
    h2o_linklist_t _queue_link;
    h2o_timeout_entry_t _deadline;
    struct st_db_conn_t *_conn;
    unsigned flags;
    db_t *_db;
    db_session_cb pin_cb;             /* set: a request for a session (no SQL), not a query */
    struct st_db_session_t *_session; /* the session whose statement this is, if any */
    h2o_linklist_t _pipe_link;        /* in its connection's pipeline, when sent in one */
    int _prepared_ahead;              /* its PREPARE went into the pipeline right ahead of it */
    log_ctx_t _log;                   /* the submitter's log context, restored around the callback */
} db_op_t;

typedef struct st_db_resolve_t db_resolve_t;

/* One prepared statement of a connection: the address of its SQL text, and N of its name "s<N>". */
typedef struct st_db_stmt_t {
    const char *sql; /* NULL: an empty slot */
    unsigned id;
} db_stmt_t;

typedef struct st_db_conn_t {
    db_t *db;
    int index;
    conn_state_t state;
    PGconn *pg;
    h2o_socket_t *sock;
    int sock_fd;                   /* PQsocket() value the wrapper was made for */
    ino_t sock_ino;                /* and the inode of the socket it named */
    int write_armed;               /* an h2o_socket_notify_write is pending */
    db_op_t *op;                   /* the query in flight, if any */
    int abandoned;                 /* busy with a statement whose op was answered already (being cancelled) */
    struct st_db_cancel_t *cancel; /* the cancel request not yet delivered, if any */
    const char *preparing;         /* the SQL whose PREPARE is in flight, if any */
    PGresult *res;                 /* the result kept for the callback */
    unsigned backoff;              /* index into backoff_ms for the next retry */
    db_resolve_t *resolve;         /* the name lookup in flight, if any */
    h2o_timeout_entry_t retry;
    h2o_timeout_entry_t connect_deadline;
    h2o_timeout_entry_t cancel_deadline;
    h2o_linklist_t idle_link;
    /*
     * pinned: held for a session, from the moment it got the connection until
     * the connection is clean again for the pool (the cancelled statement
     * over, the transaction rolled back); session: that session while it
     * lives. rolling_back: the pool's ROLLBACK was sent.
     */
    int pinned;
    struct st_db_session_t *session;
    int rolling_back;
    h2o_timeout_entry_t kick; /* zero-length: start the session's statement, or clean up after it */
    /* The statements prepared since connecting: an open-addressing hash set keyed by address, grown as needed. */
    db_stmt_t *stmts;
    unsigned stmts_cap; /* a power of two, or 0 before the first */
    unsigned nprepared; /* also the number of the next name */
    /*
     * Pipeline mode (DB_PIPELINE): the ops on the wire, in the order their
     * results come back; pipelined while they are; pipe_reset when a
     * PREPARE sent in the pipeline may have failed (its name was recorded
     * ahead of the answer): the connection is re-opened once they are over.
     */
    h2o_linklist_t pipe;
    int pipelined;
    int pipe_depth;      /* ops in pipe */
    uint64_t pipe_moved; /* when the pipeline started or last answered an op (loop time, ms) */
    int pipe_reset;
} db_conn_t;

/* A pinned connection's owner: what db_session_open() hands out. */
struct st_db_session_t {
    db_conn_t *conn; /* NULL once the connection was lost or the pool closed */
    db_op_t *op;     /* the statement asked for and not answered yet: waiting to start, or running */
    int closing;     /* inside db_session_close() */
};

/* A name lookup for one connection attempt; runs on a helper thread. */
struct st_db_resolve_t {
    bg_job_t job;
    db_conn_t *conn; /* NULL once the attempt was given up */
    int nhosts;
    char *names[DB_MAX_HOSTS]; /* the host list's entries */
    char *ports[DB_MAX_HOSTS]; /* the port list's entries, when it has one per host */
    int resolve[DB_MAX_HOSTS]; /* 1: a name to look up; 0: a literal or a socket path, passed as is */
    int naddrs[DB_MAX_HOSTS];
    char addrs[DB_MAX_HOSTS][DB_MAX_ADDRS][INET6_ADDRSTRLEN];
    char error[400];
};

struct st_db_t {
    h2o_loop_t *loop;
    char *conninfo;
    char *app_name;
    char options[512];
    /* The connection string taken apart (PQconninfoParse), to add hostaddr to it. */
    char **keys, **vals;
    int nkeys;
    char *hosts; /* the host list, when some entry needs resolving; else NULL */
    char *ports; /* the port list that goes with it (not in keys either); NULL: libpq's default */
    int pool_size;
    int queue_max;
    int closing;
    int down;  /* every connection failed since the last success */
    int pins;  /* session requests waiting plus pinned connections: at most pool_size - 1 */
    int pipes; /* connections in pipeline mode */
    h2o_linklist_t queue;
    h2o_linklist_t idle;
    h2o_timeout_t queue_timeout;
    int has_queue_timeout;
    h2o_timeout_t exec_timeout;
    int has_exec_timeout;
    h2o_timeout_t connect_timeout;
    h2o_timeout_t cancel_timeout;
    h2o_timeout_t backoff_timeouts[DB_BACKOFF_STEPS];
    h2o_timeout_t kick_timeout; /* zero-length: "soon, from the loop" */
    h2o_timeout_entry_t kick;
    bg_box_t *box; /* completions of name lookups */
    db_conn_t *conns;
    db_gauges_t own_gauges;
    db_gauges_t *g;
};

static void conn_start(db_conn_t *c);
static void conn_connect(db_conn_t *c, db_resolve_t *r);
static void conn_close(db_conn_t *c);
static void conn_watch(db_conn_t *c, int want_write);
static void on_readable(h2o_socket_t *sock, const char *err);
static void on_writable(h2o_socket_t *sock, const char *err);
static void pump_queue(db_t *db);
static void conn_fail(db_conn_t *c, const char *why);

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
    /* Duplicates, and transactions that lost a race with another (deadlock, serialization): retry can succeed. */
    if (strcmp(st, "23505") == 0 || strcmp(st, "23503") == 0 || strcmp(st, "23P01") == 0 || strcmp(st, "40001") == 0 ||
        strcmp(st, "40P01") == 0)
        return ERR_CONFLICT;
    if (strcmp(st, "23502") == 0 || strcmp(st, "23514") == 0 || strcmp(st, "22P02") == 0 || strncmp(st, "22", 2) == 0)
        return ERR_INVALID;
    if (strncmp(st, "08", 2) == 0 || strncmp(st, "57P", 3) == 0 || strcmp(st, "53300") == 0)
        return ERR_UNAVAILABLE;
    if (strcmp(st, "57014") == 0)
        return ERR_TIMEOUT; /* statement_timeout */
    return ERR_INTERNAL;
}

/* --- the pool's gauges ------------------------------------------------- */

#define G_ADD(field, n) atomic_fetch_add_explicit(&db->g->field, (n), memory_order_relaxed)
#define G_LOAD(g, field) atomic_load_explicit(&(g)->field, memory_order_relaxed)

void db_gauges_read(const db_gauges_t *g, db_stats_t *out)
{
    db_gauges_t *m = (db_gauges_t *)g; /* atomic loads take non-const pointers in C11 */
    out->connections_up = G_LOAD(m, up);
    out->connections_busy = G_LOAD(m, busy);
    out->pinned = G_LOAD(m, pinned);
    out->waiting = G_LOAD(m, waiting);
    out->prepared = G_LOAD(m, prepared);
    out->connects = G_LOAD(m, connects);
    out->rejected = G_LOAD(m, rejected);
    out->queue_timeouts = G_LOAD(m, queue_timeouts);
    out->exec_timeouts = G_LOAD(m, exec_timeouts);
    out->cancels = G_LOAD(m, cancels);
    out->pipelines = G_LOAD(m, pipelines);
    out->pipelined = G_LOAD(m, pipelined);
}

void db_stats(db_t *db, db_stats_t *out)
{
    db_gauges_read(db->g, out);
}

int db_is_up(db_t *db)
{
    return G_LOAD(db->g, up) > 0;
}

static void set_state(db_conn_t *c, conn_state_t st)
{
    db_t *db = c->db;
    int was_up = c->state == CONN_IDLE || c->state == CONN_BUSY || c->state == CONN_PINNED,
        is_up = st == CONN_IDLE || st == CONN_BUSY || st == CONN_PINNED;
    if (was_up != is_up)
        G_ADD(up, is_up ? 1 : -1);
    if ((c->state == CONN_BUSY) != (st == CONN_BUSY))
        G_ADD(busy, st == CONN_BUSY ? 1 : -1);
    if (c->state == CONN_IDLE && h2o_linklist_is_linked(&c->idle_link))
        h2o_linklist_unlink(&c->idle_link);
    c->state = st;
    if (st == CONN_IDLE)
        h2o_linklist_insert(&db->idle, &c->idle_link);
}

/* --- the statements a connection prepared ------------------------------ */

/* Where sql's slot is, or would go: linear probing from a multiplicative hash of the address. */
static unsigned stmt_slot(const db_conn_t *c, const char *sql)
{
    uint64_t h = (uint64_t)(uintptr_t)sql * UINT64_C(0x9E3779B97F4A7C15);
    unsigned mask = c->stmts_cap - 1, i = (unsigned)(h >> 32) & mask;
    while (c->stmts[i].sql != NULL && c->stmts[i].sql != sql)
        i = (i + 1) & mask;
    return i;
}

/* The number in the name of sql's prepared statement on c, or -1 when c has not prepared it. */
static long find_prepared(const db_conn_t *c, const char *sql)
{
    if (c->nprepared == 0)
        return -1;
    const db_stmt_t *e = &c->stmts[stmt_slot(c, sql)];
    return e->sql != NULL ? (long)e->id : -1;
}

/* Records that c prepared sql as "s<nprepared>"; the table doubles at three quarters full. */
static void add_prepared(db_conn_t *c, const char *sql)
{
    if ((c->nprepared + 1) * 4 > c->stmts_cap * 3) {
        db_stmt_t *old = c->stmts;
        unsigned old_cap = c->stmts_cap;
        c->stmts_cap = old_cap != 0 ? old_cap * 2 : 64;
        c->stmts = calloc(c->stmts_cap, sizeof(*c->stmts));
        if (c->stmts == NULL)
            abort();
        for (unsigned i = 0; i < old_cap; i++)
            if (old[i].sql != NULL)
                c->stmts[stmt_slot(c, old[i].sql)] = old[i];
        free(old);
    }
    c->stmts[stmt_slot(c, sql)] = (db_stmt_t){.sql = sql, .id = c->nprepared++};
    db_t *db = c->db;
    G_ADD(prepared, 1);
}

/* A new server connection has no prepared statements: forget them, keeping the table for the next one. */
static void forget_prepared(db_conn_t *c)
{
    db_t *db = c->db;
    if (c->nprepared == 0)
        return;
    G_ADD(prepared, -(int)c->nprepared);
    memset(c->stmts, 0, c->stmts_cap * sizeof(*c->stmts));
    c->nprepared = 0;
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
    /* The line below and whatever the callback logs name the submitter's request. */
    log_ctx_t saved = *log_ctx();
    log_ctx_set(&op->_log);
    if (op->pin_cb != NULL) {
        /* A session request that got no connection gives its reservation back. */
        db_t *db = op->_db;
        db->pins--;
        db_session_cb cb = op->pin_cb;
        void *data = op->data;
        op_free(op);
        cb(data, NULL, err);
        log_ctx_set(&saved);
        return;
    }
    if (op->_session != NULL)
        op->_session->op = NULL; /* answered: the session may ask for its next statement from the callback */
    if (err != 0 && res != NULL) {
        const char *st = PQresultErrorField(res, PG_DIAG_SQLSTATE);
        log_msg(err == ERR_CONFLICT || err == ERR_INVALID      ? LOG_DEBUG
                : err == ERR_TIMEOUT || err == ERR_UNAVAILABLE ? LOG_WARN
                                                               : LOG_ERROR,
                "query failed: sqlstate %s: %s", st != NULL ? st : "-", PQresultErrorMessage(res));
    }
    op->cb(op->data, res, err);
    op_free(op);
    log_ctx_set(&saved);
}

/* --- cancelling a statement off the loop ------------------------------- */

typedef struct st_db_cancel_t {
    bg_job_t job;
    PGcancel *cancel;
    db_conn_t *conn; /* NULL once the connection was closed */
} db_cancel_t;

static void cancel_run(bg_job_t *job)
{
    db_cancel_t *k = H2O_STRUCT_FROM_MEMBER(db_cancel_t, job, job);
    char errbuf[256];
    /* Opens a new connection to the server's address (no name lookup) and blocks: a helper thread's job. */
    if (!PQcancel(k->cancel, errbuf, sizeof(errbuf)))
        log_msg(LOG_WARN, "database cancel request failed: %s", errbuf);
}

static void cancel_free(bg_job_t *job)
{
    db_cancel_t *k = H2O_STRUCT_FROM_MEMBER(db_cancel_t, job, job);
    PQfreeCancel(k->cancel);
    free(k);
}

static void on_cancel_deadline(h2o_timeout_entry_t *entry);
static void conn_settle(db_conn_t *c);

/* The cancel request was delivered (or failed): the server will not stop another statement on its behalf. */
static void cancel_done(bg_job_t *job)
{
    db_cancel_t *k = H2O_STRUCT_FROM_MEMBER(db_cancel_t, job, job);
    db_conn_t *c = k->conn;
    cancel_free(job);
    if (c == NULL)
        return;
    c->cancel = NULL;
    conn_settle(c);
}

/*
 * The statement on c has been given up: its op has been answered (deadline,
 * closed session). Ask the server to cancel it, and keep the connection busy
 * until the server has answered (conn_step_done) and the cancel request has
 * been delivered (cancel_done), so the connection and its prepared
 * statements survive, and a cancel that arrives after the statement ended on
 * its own never stops the next statement on the connection.
 */
static void conn_cancel(db_conn_t *c)
{
    db_t *db = c->db;
    c->abandoned = 1;
    G_ADD(cancels, 1);
    PGcancel *pc = c->cancel == NULL ? PQgetCancel(c->pg) : NULL; /* copies the backend key and address; no I/O */
    if (pc != NULL) {
        db_cancel_t *k = calloc(1, sizeof(*k));
        if (k == NULL)
            abort();
        k->cancel = pc;
        k->conn = c;
        k->job.run = cancel_run;
        k->job.done = cancel_done;
        k->job.discard = cancel_free;
        c->cancel = k;
        bg_submit(db->box, &k->job);
    }
    h2o_timeout_link(db->loop, &db->cancel_timeout, &c->cancel_deadline);
}

static void on_deadline(h2o_timeout_entry_t *entry)
{
    db_op_t *op = H2O_STRUCT_FROM_MEMBER(db_op_t, _deadline, entry);
    db_t *db = op->_db;
    if (op->_conn == NULL) {
        /* Still queued: the pool is saturated. Answer "retry later" rather than "too slow". */
        h2o_linklist_unlink(&op->_queue_link);
        G_ADD(waiting, -1);
        G_ADD(queue_timeouts, 1);
        log_msg(LOG_WARN, "%s waited too long for a database connection", op->pin_cb != NULL ? "session" : "query");
        op_finish(op, NULL, ERR_UNAVAILABLE);
        return;
    }
    db_conn_t *c = op->_conn;
    if (c->pipelined) {
        /* A cancel would hit whichever statement of the batch runs now: give up the connection instead. */
        h2o_linklist_unlink(&op->_pipe_link);
        c->pipe_depth--;
        op->_conn = NULL;
        G_ADD(exec_timeouts, 1);
        log_msg(LOG_WARN, "pipelined query on connection %d passed its deadline; closing the connection", c->index);
        op_finish(op, NULL, ERR_TIMEOUT);
        conn_fail(c, "a pipelined query passed its deadline");
        return;
    }
    /* The server's statement_timeout should have fired first: cancel, but keep the connection. */
    c->op = NULL;
    op->_conn = NULL;
    G_ADD(exec_timeouts, 1);
    log_msg(LOG_WARN, "query on connection %d passed its deadline; cancelling it", c->index);
    conn_cancel(c); /* first: the callback may close the session, which must find the cancel under way */
    op_finish(op, NULL, ERR_TIMEOUT);
}

/* --- connection life cycle --------------------------------------------- */

/* The connection is the pool's again: no session holds it any more. */
static void conn_unpin(db_conn_t *c)
{
    db_t *db = c->db;
    if (c->session != NULL) {
        c->session->conn = NULL;
        c->session = NULL;
    }
    if (!c->pinned)
        return;
    c->pinned = 0;
    c->rolling_back = 0;
    db->pins--;
    G_ADD(pinned, -1);
}

static void conn_close(db_conn_t *c)
{
    conn_unpin(c);
    if (h2o_timeout_is_linked(&c->kick))
        h2o_timeout_unlink(&c->kick);
    if (h2o_timeout_is_linked(&c->retry))
        h2o_timeout_unlink(&c->retry);
    if (h2o_timeout_is_linked(&c->connect_deadline))
        h2o_timeout_unlink(&c->connect_deadline);
    if (h2o_timeout_is_linked(&c->cancel_deadline))
        h2o_timeout_unlink(&c->cancel_deadline);
    if (c->resolve != NULL) {
        c->resolve->conn = NULL; /* the lookup finishes on its own and is then dropped */
        c->resolve = NULL;
    }
    if (c->cancel != NULL) {
        c->cancel->conn = NULL; /* likewise the cancel request */
        c->cancel = NULL;
    }
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
    c->sock_ino = 0;
    if (c->pg != NULL) {
        PQfinish(c->pg);
        c->pg = NULL;
    }
    forget_prepared(c);
    c->preparing = NULL;
    c->abandoned = 0;
    if (c->pipelined)
        c->db->pipes--;
    c->pipelined = 0;
    c->pipe_depth = 0;
    c->pipe_reset = 0;
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

/*
 * The statement that dies with c: the one running, or one its session
 * asked for that waits for the connection to be ready (c->op is then NULL:
 * a session has one statement at a time).
 */
static db_op_t *conn_take_op(db_conn_t *c)
{
    db_op_t *op = c->op;
    c->op = NULL;
    if (op == NULL && c->session != NULL)
        op = c->session->op;
    return op;
}

/* Moves the ops of c's pipeline, if any, to the list out (initialised here). */
static void conn_take_pipe(db_conn_t *c, h2o_linklist_t *out)
{
    h2o_linklist_init_anchor(out);
    while (!h2o_linklist_is_empty(&c->pipe)) {
        db_op_t *op = H2O_STRUCT_FROM_MEMBER(db_op_t, _pipe_link, c->pipe.next);
        h2o_linklist_unlink(&op->_pipe_link);
        op->_conn = NULL;
        h2o_linklist_insert(out, &op->_pipe_link);
    }
}

/* Answers every op of a list made by conn_take_pipe() with err. */
static void fail_ops(h2o_linklist_t *list, int err)
{
    while (!h2o_linklist_is_empty(list)) {
        db_op_t *op = H2O_STRUCT_FROM_MEMBER(db_op_t, _pipe_link, list->next);
        h2o_linklist_unlink(&op->_pipe_link);
        op_finish(op, NULL, err);
    }
}

/* The connection failed or broke: fail its query (its session is over), close it, retry later. */
static void conn_fail(db_conn_t *c, const char *why)
{
    db_t *db = c->db;
    log_msg(LOG_WARN, "database connection %d lost: %s", c->index, why);
    db_op_t *op = conn_take_op(c);
    h2o_linklist_t lost;
    conn_take_pipe(c, &lost);
    conn_close(c);
    if (op != NULL) {
        op->_conn = NULL;
        op_finish(op, NULL, ERR_UNAVAILABLE);
    }
    fail_ops(&lost, ERR_UNAVAILABLE);
    if (db->closing)
        return;
    if (!any_conn_up_or_trying(db)) {
        /* Nothing can serve the queue soon: fail it rather than let it time out. */
        db->down = 1;
        while (!h2o_linklist_is_empty(&db->queue)) {
            db_op_t *q = H2O_STRUCT_FROM_MEMBER(db_op_t, _queue_link, db->queue.next);
            h2o_linklist_unlink(&q->_queue_link);
            G_ADD(waiting, -1);
            op_finish(q, NULL, ERR_UNAVAILABLE);
        }
    }
    h2o_timeout_link(db->loop, &db->backoff_timeouts[c->backoff], &c->retry);
    if (c->backoff + 1 < DB_BACKOFF_STEPS)
        c->backoff++;
}

static void on_connect_deadline(h2o_timeout_entry_t *entry)
{
    db_conn_t *c = H2O_STRUCT_FROM_MEMBER(db_conn_t, connect_deadline, entry);
    conn_fail(c, c->state == CONN_RESOLVING ? "resolving the host name timed out" : "connecting timed out");
}

static void on_cancel_deadline(h2o_timeout_entry_t *entry)
{
    db_conn_t *c = H2O_STRUCT_FROM_MEMBER(db_conn_t, cancel_deadline, entry);
    conn_fail(c, c->rolling_back ? "the server did not answer a rollback in time"
                                 : "the server did not answer a cancel request in time");
}

/* --- name resolution --------------------------------------------------- */

static int is_literal(const char *h)
{
    unsigned char buf[sizeof(struct in6_addr)];
    return inet_pton(AF_INET, h, buf) == 1 || inet_pton(AF_INET6, h, buf) == 1;
}

static void resolve_free(db_resolve_t *r)
{
    for (int i = 0; i < r->nhosts; i++) {
        free(r->names[i]);
        free(r->ports[i]);
    }
    free(r);
}

static void resolve_run(bg_job_t *job)
{
    db_resolve_t *r = H2O_STRUCT_FROM_MEMBER(db_resolve_t, job, job);
    for (int i = 0; i < r->nhosts; i++) {
        if (!r->resolve[i])
            continue;
        struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res = NULL;
        int gai = getaddrinfo(r->names[i], NULL, &hints, &res);
        if (gai != 0 || res == NULL) {
            snprintf(r->error, sizeof(r->error), "could not resolve \"%s\": %s", r->names[i],
                     gai != 0 ? gai_strerror(gai) : "no address");
            if (res != NULL)
                freeaddrinfo(res);
            return;
        }
        for (struct addrinfo *a = res; a != NULL && r->naddrs[i] < DB_MAX_ADDRS; a = a->ai_next)
            if (getnameinfo(a->ai_addr, a->ai_addrlen, r->addrs[i][r->naddrs[i]], INET6_ADDRSTRLEN, NULL, 0,
                            NI_NUMERICHOST) == 0)
                r->naddrs[i]++;
        freeaddrinfo(res);
        if (r->naddrs[i] == 0) {
            snprintf(r->error, sizeof(r->error), "could not format the addresses of \"%s\"", r->names[i]);
            return;
        }
    }
}

static void resolve_discard(bg_job_t *job)
{
    resolve_free(H2O_STRUCT_FROM_MEMBER(db_resolve_t, job, job));
}

static void resolve_done(bg_job_t *job)
{
    db_resolve_t *r = H2O_STRUCT_FROM_MEMBER(db_resolve_t, job, job);
    db_conn_t *c = r->conn;
    if (c == NULL) {
        resolve_free(r); /* the attempt was given up meanwhile */
        return;
    }
    c->resolve = NULL;
    if (r->error[0] != '\0') {
        char msg[sizeof(r->error)];
        memcpy(msg, r->error, sizeof(msg));
        resolve_free(r);
        conn_fail(c, msg);
        return;
    }
    conn_connect(c, r);
    resolve_free(r);
}

/* --- connecting -------------------------------------------------------- */

static void conn_start(db_conn_t *c)
{
    db_t *db = c->db;
    h2o_timeout_link(db->loop, &db->connect_timeout, &c->connect_deadline);
    if (db->hosts == NULL) {
        conn_connect(c, NULL);
        return;
    }
    /* Some host is a name: look it up on a helper thread, at every attempt (addresses change). */
    db_resolve_t *r = calloc(1, sizeof(*r));
    if (r == NULL)
        abort();
    char *list = strdup(db->hosts), *save = NULL;
    for (char *h = strtok_r(list, ",", &save); h != NULL && r->nhosts < DB_MAX_HOSTS; h = strtok_r(NULL, ",", &save)) {
        int i = r->nhosts++;
        r->names[i] = strdup(h);
        r->resolve[i] = h[0] != '/' && h[0] != '@' && !is_literal(h);
    }
    free(list);
    if (db->ports != NULL && strchr(db->ports, ',') != NULL) {
        list = strdup(db->ports);
        int i = 0;
        for (char *p = strtok_r(list, ",", &save); p != NULL && i < r->nhosts; p = strtok_r(NULL, ",", &save))
            r->ports[i++] = strdup(p);
        free(list);
    }
    r->conn = c;
    r->job.run = resolve_run;
    r->job.done = resolve_done;
    r->job.discard = resolve_discard;
    c->resolve = r;
    set_state(c, CONN_RESOLVING);
    bg_submit(db->box, &r->job);
}

/* Server notices go to the log (libpq's default prints them to stderr). */
static void on_notice(void *arg, const char *message)
{
    db_conn_t *c = arg;
    char msg[512];
    snprintf(msg, sizeof(msg), "%s", message);
    msg[strcspn(msg, "\n")] = '\0';
    log_msg(LOG_DEBUG, "database connection %d: %s", c->index, msg);
}

/* Starts libpq's non-blocking connect, with the looked-up addresses when r is not NULL. */
static void conn_connect(db_conn_t *c, db_resolve_t *r)
{
    db_t *db = c->db;
    const char *keys[db->nkeys + 8], *vals[db->nkeys + 8];
    int n = 0;
    char *host = NULL, *hostaddr = NULL, *port = NULL;
    for (int i = 0; i < db->nkeys; i++)
        keys[n] = db->keys[i], vals[n++] = db->vals[i];
    if (db->keys == NULL)
        keys[n] = "dbname", vals[n++] = db->conninfo;
    if (r != NULL) {
        /* One host entry per address, as libpq does itself: host for TLS and .pgpass, hostaddr to connect to. */
        size_t hl = 0, al = 0, pl = 0;
        FILE *hf = open_memstream(&host, &hl), *af = open_memstream(&hostaddr, &al), *pf = open_memstream(&port, &pl);
        if (hf == NULL || af == NULL || pf == NULL)
            abort();
        int first = 1;
        for (int i = 0; i < r->nhosts; i++) {
            int k = r->resolve[i] ? r->naddrs[i] : 1;
            for (int j = 0; j < k; j++) {
                const char *addr = r->resolve[i]                                    ? r->addrs[i][j]
                                   : r->names[i][0] == '/' || r->names[i][0] == '@' ? ""
                                                                                    : r->names[i];
                fprintf(hf, "%s%s", first ? "" : ",", r->names[i]);
                fprintf(af, "%s%s", first ? "" : ",", addr);
                fprintf(pf, "%s%s", first ? "" : ",", r->ports[i] != NULL ? r->ports[i] : "");
                first = 0;
            }
        }
        fclose(hf);
        fclose(af);
        fclose(pf);
        keys[n] = "host", vals[n++] = host;
        keys[n] = "hostaddr", vals[n++] = hostaddr;
        if (db->ports != NULL)
            keys[n] = "port", vals[n++] = r->ports[0] != NULL ? port : db->ports;
    }
    keys[n] = "application_name", vals[n++] = db->app_name;
    keys[n] = "options", vals[n++] = db->options;
    keys[n] = NULL, vals[n] = NULL;
    /* Without a parsed connection string, libpq expands it from dbname (and reports its errors). */
    c->pg = PQconnectStartParams(keys, vals, db->keys == NULL);
    free(host);
    free(hostaddr);
    free(port);
    if (c->pg == NULL) {
        conn_fail(c, "out of memory");
        return;
    }
    PQsetNoticeProcessor(c->pg, on_notice, c);
    if (PQstatus(c->pg) == CONNECTION_BAD) {
        char msg[256];
        snprintf(msg, sizeof(msg), "%s", PQerrorMessage(c->pg));
        msg[strcspn(msg, "\n")] = '\0';
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
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        conn_fail(c, "connection has no socket");
        return;
    }
    /* A descriptor number libpq closed and got again names a new socket: compare inodes too. */
    if (c->sock == NULL || c->sock_fd != fd || c->sock_ino != st.st_ino) {
        if (c->sock != NULL)
            h2o_socket_close(c->sock);
        c->sock = NULL;
        int dupfd = dup(fd);
        if (dupfd < 0) {
            conn_fail(c, strerror(errno));
            return;
        }
        c->sock = h2o_evloop_socket_create(c->db->loop, dupfd, H2O_SOCKET_FLAG_DONT_READ);
        c->sock->data = c;
        c->sock_fd = fd;
        c->sock_ino = st.st_ino;
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
    db_t *db = c->db;
    if (h2o_timeout_is_linked(&c->connect_deadline))
        h2o_timeout_unlink(&c->connect_deadline);
    if (db->down)
        log_msg(LOG_INFO, "database connection %d re-established", c->index);
    db->down = 0;
    c->backoff = 0;
    G_ADD(connects, 1);
    set_state(c, CONN_IDLE);
    pump_queue(db);
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

/* Sends the op's next protocol step: PREPARE the first time, then EXECUTE. */
static void conn_send(db_conn_t *c)
{
    db_op_t *op = c->op;
    char name[24];
    int ok;
    long id = (op->flags & DB_ONESHOT) ? -1 : find_prepared(c, op->sql);
    if (op->flags & DB_ONESHOT) {
        ok = PQsendQueryParams(c->pg, op->sql, op->nparams, NULL, op->params, NULL, NULL, 0);
    } else if (id >= 0) {
        snprintf(name, sizeof(name), "s%ld", id);
        ok = PQsendQueryPrepared(c->pg, name, op->nparams, op->params, NULL, NULL, 0);
    } else {
        /* Named after the count: the name is free whether or not an earlier PREPARE failed. */
        snprintf(name, sizeof(name), "s%u", c->nprepared);
        c->preparing = op->sql;
        ok = PQsendPrepare(c->pg, name, op->sql, op->nparams, NULL);
    }
    if (!ok) {
        conn_fail(c, PQerrorMessage(c->pg));
        return;
    }
    conn_flush(c);
}

static void conn_run(db_conn_t *c, db_op_t *op)
{
    db_t *db = c->db;
    set_state(c, CONN_BUSY);
    c->op = op;
    op->_conn = c;
    /* The wait is over; from here on the execution deadline counts. */
    if (h2o_timeout_is_linked(&op->_deadline))
        h2o_timeout_unlink(&op->_deadline);
    if (db->has_exec_timeout)
        h2o_timeout_link(db->loop, &db->exec_timeout, &op->_deadline);
    conn_send(c);
}

/* Hands the idle connection c to the session request op (whose reservation it becomes). */
static void conn_pin(db_conn_t *c, db_op_t *op)
{
    db_t *db = c->db;
    db_session_t *s = calloc(1, sizeof(*s));
    if (s == NULL)
        abort();
    s->conn = c;
    c->session = s;
    c->pinned = 1;
    G_ADD(pinned, 1);
    set_state(c, CONN_PINNED);
    db_session_cb cb = op->pin_cb;
    void *data = op->data;
    log_ctx_t saved = *log_ctx();
    log_ctx_set(&op->_log);
    op_free(op);
    cb(data, s, 0);
    log_ctx_set(&saved);
}

/* The op at the head of the queue if it may join a pipelined batch, else NULL. */
static db_op_t *next_pipelinable(db_t *db)
{
    if (h2o_linklist_is_empty(&db->queue))
        return NULL;
    db_op_t *op = H2O_STRUCT_FROM_MEMBER(db_op_t, _queue_link, db->queue.next);
    return op->pin_cb == NULL && (op->flags & DB_PIPELINE) ? op : NULL;
}

/* Puts op into c's pipeline: its PREPARE first if c lacks it, then its execution, then a Sync. 0 on failure. */
static int pipe_send(db_conn_t *c, db_op_t *op)
{
    char name[24];
    if (op->flags & DB_ONESHOT)
        return PQsendQueryParams(c->pg, op->sql, op->nparams, NULL, op->params, NULL, NULL, 0) && PQpipelineSync(c->pg);
    long id = find_prepared(c, op->sql);
    if (id < 0) {
        id = (long)c->nprepared;
        snprintf(name, sizeof(name), "s%ld", id);
        if (!PQsendPrepare(c->pg, name, op->sql, op->nparams, NULL))
            return 0;
        add_prepared(c, op->sql); /* ahead of the answer: an op behind this one may use the name */
        op->_prepared_ahead = 1;
    }
    snprintf(name, sizeof(name), "s%ld", id);
    return PQsendQueryPrepared(c->pg, name, op->nparams, op->params, NULL, NULL, 0) && PQpipelineSync(c->pg);
}

/* Adds op (out of the queue) to c's pipeline under its execution deadline from now. 0: c failed. */
static int pipe_add(db_conn_t *c, db_op_t *op)
{
    db_t *db = c->db;
    op->_conn = c;
    if (h2o_timeout_is_linked(&op->_deadline))
        h2o_timeout_unlink(&op->_deadline);
    if (db->has_exec_timeout)
        h2o_timeout_link(db->loop, &db->exec_timeout, &op->_deadline);
    h2o_linklist_insert(&c->pipe, &op->_pipe_link);
    c->pipe_depth++;
    G_ADD(pipelined, 1);
    if (!pipe_send(c, op)) {
        conn_fail(c, PQerrorMessage(c->pg));
        return 0;
    }
    return 1;
}

/* Moves the pipelinable ops at the head of the queue into c's pipeline while it has room, and sends them. */
static void pipe_fill(db_conn_t *c)
{
    db_t *db = c->db;
    db_op_t *op;
    int added = 0;
    while (c->pipe_depth < DB_PIPE_MAX && (op = next_pipelinable(db)) != NULL) {
        h2o_linklist_unlink(&op->_queue_link);
        G_ADD(waiting, -1);
        if (!pipe_add(c, op))
            return;
        added = 1;
    }
    if (added)
        conn_flush(c);
}

/*
 * Starts a pipeline on the idle connection c with first (out of the queue)
 * and the pipelinable ops queued behind it. The pipeline stays open while it
 * has ops on the wire, and takes more as they come (pump_queue).
 */
static void conn_run_pipe(db_conn_t *c, db_op_t *first)
{
    db_t *db = c->db;
    if (!PQenterPipelineMode(c->pg)) {
        conn_run(c, first);
        return;
    }
    set_state(c, CONN_BUSY);
    c->pipelined = 1;
    c->pipe_moved = h2o_now(db->loop);
    db->pipes++;
    G_ADD(pipelines, 1);
    if (!pipe_add(c, first))
        return;
    pipe_fill(c);
    conn_flush(c);
}

/* The batch is over: leave pipeline mode and serve the queue, or re-open the connection (see pipe_reset). */
static void pipe_end(db_conn_t *c)
{
    c->pipelined = 0;
    c->db->pipes--;
    if (c->pipe_reset || !PQexitPipelineMode(c->pg)) {
        log_msg(LOG_DEBUG, "database connection %d re-opened after a pipelined batch", c->index);
        conn_close(c);
        conn_start(c);
        return;
    }
    set_state(c, CONN_IDLE);
    pump_queue(c->db);
}

/*
 * Reads what has arrived of a pipelined batch: an op's results end at its
 * Sync, where it is answered with its first error, else its last result.
 */
static void pipe_read(db_conn_t *c)
{
    db_t *db = c->db;
    int nulls = 0;
    while (!h2o_linklist_is_empty(&c->pipe) && !PQisBusy(c->pg)) {
        PGresult *r = PQgetResult(c->pg);
        if (r == NULL) {
            if (++nulls > 2)
                break; /* between two statements' results; nothing more has arrived */
            continue;
        }
        nulls = 0;
        if (PQresultStatus(r) != PGRES_PIPELINE_SYNC) {
            if (c->res == NULL || db_err_from_result(c->res) == 0) {
                PQclear(c->res);
                c->res = r;
            } else {
                PQclear(r);
            }
            continue;
        }
        PQclear(r);
        db_op_t *op = H2O_STRUCT_FROM_MEMBER(db_op_t, _pipe_link, c->pipe.next);
        h2o_linklist_unlink(&op->_pipe_link);
        c->pipe_depth--;
        c->pipe_moved = h2o_now(db->loop);
        op->_conn = NULL;
        PGresult *res = c->res;
        c->res = NULL;
        int err = res != NULL ? db_err_from_result(res) : ERR_INTERNAL;
        if (err != 0 && op->_prepared_ahead)
            c->pipe_reset = 1;
        if (err == ERR_TIMEOUT)
            G_ADD(exec_timeouts, 1);
        op_finish(op, res, err);
        PQclear(res);
    }
    if (h2o_linklist_is_empty(&c->pipe))
        pipe_end(c);
    else if (next_pipelinable(db) != NULL)
        pipe_fill(c);
}

static void pump_queue(db_t *db)
{
    /*
     * Short reads join a pipeline already on the wire first, while it moves:
     * its server process is awake and working. One that answered nothing for
     * DB_PIPE_STALL_MS (a lock wait, a cold read) takes no more: they wait
     * for a connection under the queue's limits like everything else.
     */
    uint64_t now = h2o_now(db->loop);
    for (int i = 0; db->pipes > 0 && i < db->pool_size && next_pipelinable(db) != NULL; i++) {
        db_conn_t *c = &db->conns[i];
        if (c->pipelined && now - c->pipe_moved <= DB_PIPE_STALL_MS)
            pipe_fill(c);
    }
    while (!h2o_linklist_is_empty(&db->queue) && !h2o_linklist_is_empty(&db->idle)) {
        db_conn_t *c = H2O_STRUCT_FROM_MEMBER(db_conn_t, idle_link, db->idle.next);
        db_op_t *op = H2O_STRUCT_FROM_MEMBER(db_op_t, _queue_link, db->queue.next);
        h2o_linklist_unlink(&op->_queue_link);
        G_ADD(waiting, -1);
        if (op->pin_cb != NULL)
            conn_pin(c, op);
        else if (op->flags & DB_PIPELINE)
            conn_run_pipe(c, op);
        else
            conn_run(c, op);
    }
}

/*
 * A pinned connection whose session was closed, with nothing on the wire:
 * end the transaction the session left (open, or failed), then give the
 * connection back to the pool. A connection still in a transaction after
 * the ROLLBACK, or in a state we cannot tell, is closed and re-opened.
 */
static void conn_release(db_conn_t *c)
{
    db_t *db = c->db;
    PGTransactionStatusType ts = PQtransactionStatus(c->pg);
    if (ts == PQTRANS_IDLE) {
        conn_unpin(c);
        set_state(c, CONN_IDLE);
        pump_queue(db);
        return;
    }
    if (c->rolling_back || (ts != PQTRANS_INTRANS && ts != PQTRANS_INERROR)) {
        conn_fail(c, "a closed session left its connection inside a transaction");
        return;
    }
    c->rolling_back = 1;
    set_state(c, CONN_BUSY);
    /* Bounded like a cancel: a server that does not answer loses the connection. */
    h2o_timeout_link(db->loop, &db->cancel_timeout, &c->cancel_deadline);
    if (!PQsendQuery(c->pg, "ROLLBACK")) {
        conn_fail(c, PQerrorMessage(c->pg));
        return;
    }
    conn_flush(c);
}

/*
 * The pool's own statement on c is over (a cancelled one, or a closed
 * session's ROLLBACK): serve the queue, or the session that holds c (its
 * statement may be waiting), or go on cleaning up after a closed session.
 */
static void conn_ready(db_conn_t *c)
{
    if (!c->pinned) {
        set_state(c, CONN_IDLE);
        pump_queue(c->db);
        return;
    }
    set_state(c, CONN_PINNED);
    if (c->session == NULL)
        conn_release(c);
    else if (c->session->op != NULL)
        conn_run(c, c->session->op);
}

/* The pool's own statement is over once the server has answered it and any cancel request for it was delivered. */
static void conn_settle(db_conn_t *c)
{
    if (c->abandoned || c->cancel != NULL)
        return;
    if (h2o_timeout_is_linked(&c->cancel_deadline))
        h2o_timeout_unlink(&c->cancel_deadline);
    conn_ready(c);
}

/* From the loop: start the session's statement, or clean up after a closed session, if c is ready for it. */
static void on_conn_kick(h2o_timeout_entry_t *entry)
{
    db_conn_t *c = H2O_STRUCT_FROM_MEMBER(db_conn_t, kick, entry);
    if (!c->pinned || c->state != CONN_PINNED)
        return; /* busy: conn_ready() carries on when the statement on the wire is over */
    if (c->session == NULL)
        conn_release(c);
    else if (c->session->op != NULL)
        conn_run(c, c->session->op);
}

static void conn_kick(db_conn_t *c)
{
    if (!h2o_timeout_is_linked(&c->kick))
        h2o_timeout_link(c->db->loop, &c->db->kick_timeout, &c->kick);
}

/* All results of the current step are in: finish the op or start its next step. */
static void conn_step_done(db_conn_t *c)
{
    db_t *db = c->db;
    db_op_t *op = c->op;
    PGresult *res = c->res;
    c->res = NULL;
    int err = db_err_from_result(res);
    int was_prepare = c->preparing != NULL;
    if (was_prepare) {
        /* Recorded even when its op was abandoned: the name now exists on the server. */
        if (err == 0)
            add_prepared(c, c->preparing);
        c->preparing = NULL;
    }
    if (op == NULL) {
        /* The op was answered already (deadline, closed session) and the cancelled statement is over; or a ROLLBACK. */
        PQclear(res);
        c->abandoned = 0;
        conn_settle(c);
        return;
    }
    if (was_prepare && err == 0) {
        PQclear(res);
        conn_send(c);
        return;
    }
    if (err == ERR_TIMEOUT)
        G_ADD(exec_timeouts, 1);
    c->op = NULL;
    op->_conn = NULL;
    if (c->pinned) {
        /* The session's statement: the callback may ask for the next one, or close the session. */
        set_state(c, CONN_PINNED);
        op_finish(op, res, err);
        PQclear(res);
        return;
    }
    set_state(c, CONN_IDLE);
    op_finish(op, res, err);
    PQclear(res);
    pump_queue(db);
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
    if (c->pipelined) {
        pipe_read(c);
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

/*
 * Takes the connection string apart so that each attempt can add hostaddr.
 * Keeps every set option but those the pool sets itself; remembers the
 * host list when some entry of it is a name to look up. A string libpq
 * cannot parse is left whole (libpq then reports why at connect time).
 */
static void parse_conninfo(db_t *db, int *connect_timeout_s)
{
    char *errmsg = NULL;
    PQconninfoOption *opts = PQconninfoParse(db->conninfo, &errmsg);
    if (opts == NULL) {
        PQfreemem(errmsg);
        db->keys = NULL;
        return;
    }
    int n = 0;
    for (PQconninfoOption *o = opts; o->keyword != NULL; o++)
        n++;
    db->keys = calloc((size_t)n + 1, sizeof(char *));
    db->vals = calloc((size_t)n + 1, sizeof(char *));
    if (db->keys == NULL || db->vals == NULL)
        abort();
    const char *host = NULL, *hostaddr = NULL, *port = NULL;
    for (PQconninfoOption *o = opts; o->keyword != NULL; o++) {
        if (o->val == NULL)
            continue;
        if (strcmp(o->keyword, "host") == 0)
            host = o->val;
        if (strcmp(o->keyword, "hostaddr") == 0)
            hostaddr = o->val;
        if (strcmp(o->keyword, "port") == 0)
            port = o->val;
        if (strcmp(o->keyword, "connect_timeout") == 0)
            *connect_timeout_s = atoi(o->val);
        if (strcmp(o->keyword, "options") == 0) {
            size_t len = strlen(db->options);
            snprintf(db->options + len, sizeof(db->options) - len, " %s", o->val);
            continue;
        }
        if (strcmp(o->keyword, "application_name") == 0 || strcmp(o->keyword, "connect_timeout") == 0)
            continue;
        db->keys[db->nkeys] = strdup(o->keyword);
        db->vals[db->nkeys++] = strdup(o->val);
    }
    /* With hostaddr given, or no host (a local socket), libpq looks nothing up. */
    if (host != NULL && host[0] != '\0' && (hostaddr == NULL || hostaddr[0] == '\0')) {
        int need = 0;
        char *list = strdup(host), *save = NULL;
        for (char *h = strtok_r(list, ",", &save); h != NULL; h = strtok_r(NULL, ",", &save))
            need |= h[0] != '/' && h[0] != '@' && !is_literal(h);
        free(list);
        if (need) {
            db->hosts = strdup(host);
            db->ports = port != NULL && port[0] != '\0' ? strdup(port) : NULL;
            /* Each attempt passes host and port itself, expanded to one entry per address. */
            int k = 0;
            for (int i = 0; i < db->nkeys; i++) {
                if (strcmp(db->keys[i], "host") == 0 || strcmp(db->keys[i], "port") == 0) {
                    free(db->keys[i]);
                    free(db->vals[i]);
                    continue;
                }
                db->keys[k] = db->keys[i], db->vals[k++] = db->vals[i];
            }
            db->nkeys = k;
        }
    }
    PQconninfoFree(opts);
}

db_t *db_open(h2o_loop_t *loop, const db_config_t *conf)
{
    db_t *db = calloc(1, sizeof(*db));
    if (db == NULL)
        abort();
    db->loop = loop;
    db->g = conf->gauges != NULL ? conf->gauges : &db->own_gauges;
    db->conninfo = strdup(conf->conninfo);
    db->app_name = strdup(conf->app_name != NULL ? conf->app_name : "clientele");
    snprintf(db->options, sizeof(db->options), "-c TimeZone=UTC%s", conf->no_jit ? " -c jit=off" : "");
    if (conf->timeout_ms > 0) {
        size_t len = strlen(db->options);
        snprintf(db->options + len, sizeof(db->options) - len, " -c statement_timeout=%d", conf->timeout_ms);
    }
    if (conf->role != NULL && conf->role[0] != '\0') {
        size_t len = strlen(db->options);
        snprintf(db->options + len, sizeof(db->options) - len, " -c role=%s", conf->role);
    }
    int connect_timeout_s = 0;
    parse_conninfo(db, &connect_timeout_s);
    int connect_ms = conf->connect_timeout_ms > 0 ? conf->connect_timeout_ms
                     : connect_timeout_s > 0      ? (connect_timeout_s < 2 ? 2 : connect_timeout_s) * 1000
                                                  : DB_CONNECT_TIMEOUT_MS;
    db->pool_size = conf->pool_size;
    db->queue_max = conf->queue_max;
    h2o_linklist_init_anchor(&db->queue);
    h2o_linklist_init_anchor(&db->idle);
    int queue_ms = conf->queue_timeout_ms > 0 ? conf->queue_timeout_ms : conf->timeout_ms;
    if (queue_ms > 0) {
        h2o_timeout_init(loop, &db->queue_timeout, (uint64_t)queue_ms);
        db->has_queue_timeout = 1;
    }
    if (conf->timeout_ms > 0) {
        /* The server's statement_timeout fires first; ours catches a dead network or a stuck server. */
        h2o_timeout_init(loop, &db->exec_timeout, (uint64_t)conf->timeout_ms + DB_EXEC_GRACE_MS);
        db->has_exec_timeout = 1;
    }
    h2o_timeout_init(loop, &db->connect_timeout, (uint64_t)connect_ms);
    h2o_timeout_init(loop, &db->cancel_timeout, DB_CANCEL_GRACE_MS);
    for (int i = 0; i < DB_BACKOFF_STEPS; i++)
        h2o_timeout_init(loop, &db->backoff_timeouts[i], backoff_ms[i]);
    h2o_timeout_init(loop, &db->kick_timeout, 0);
    db->kick.cb = on_kick;
    db->box = bg_box_open(loop);
    db->conns = calloc((size_t)db->pool_size, sizeof(*db->conns));
    if (db->conns == NULL)
        abort();
    for (int i = 0; i < db->pool_size; i++) {
        db_conn_t *c = &db->conns[i];
        c->db = db;
        c->index = i;
        c->sock_fd = -1;
        c->retry.cb = on_retry;
        c->connect_deadline.cb = on_connect_deadline;
        c->cancel_deadline.cb = on_cancel_deadline;
        c->kick.cb = on_conn_kick;
        h2o_linklist_init_anchor(&c->pipe);
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
        G_ADD(waiting, -1);
        op_finish(op, NULL, ERR_UNAVAILABLE);
    }
    for (int i = 0; i < db->pool_size; i++) {
        db_conn_t *c = &db->conns[i];
        db_op_t *op = conn_take_op(c);
        h2o_linklist_t lost;
        conn_take_pipe(c, &lost);
        conn_close(c); /* detaches its session, if any: the owner's db_session_close() then only frees it */
        if (op != NULL) {
            op->_conn = NULL;
            op_finish(op, NULL, ERR_UNAVAILABLE);
        }
        fail_ops(&lost, ERR_UNAVAILABLE);
    }
    bg_box_close(db->box); /* lookups still running are dropped when they end */
    if (h2o_timeout_is_linked(&db->kick))
        h2o_timeout_unlink(&db->kick);
    h2o_timeout_dispose(db->loop, &db->kick_timeout);
    if (db->has_queue_timeout)
        h2o_timeout_dispose(db->loop, &db->queue_timeout);
    if (db->has_exec_timeout)
        h2o_timeout_dispose(db->loop, &db->exec_timeout);
    h2o_timeout_dispose(db->loop, &db->connect_timeout);
    h2o_timeout_dispose(db->loop, &db->cancel_timeout);
    for (int i = 0; i < DB_BACKOFF_STEPS; i++)
        h2o_timeout_dispose(db->loop, &db->backoff_timeouts[i]);
    for (int i = 0; i < db->nkeys; i++) {
        free(db->keys[i]);
        free(db->vals[i]);
    }
    free(db->keys);
    free(db->vals);
    free(db->hosts);
    free(db->ports);
    for (int i = 0; i < db->pool_size; i++)
        free(db->conns[i].stmts);
    free(db->conns);
    free(db->conninfo);
    free(db->app_name);
    free(db);
}

int db_query(db_t *db, const char *sql, int nparams, const char *const *params, db_cb cb, void *data)
{
    return db_query_flags(db, sql, nparams, params, 0, cb, data);
}

/* A query's op in one block: the op, the parameter pointers, then copies of the parameter strings. */
static db_op_t *op_new(db_t *db, const char *sql, int nparams, const char *const *params, unsigned flags, db_cb cb,
                       void *data)
{
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
    op->_log = *log_ctx();
    return op;
}

/*
 * Puts op at the end of the queue, under the queue timeout. Sending right
 * here could fail the connection and so call back from inside the caller;
 * a zero timeout, run later in this same loop iteration, hands the op to an
 * idle connection.
 */
static void op_enqueue(db_t *db, db_op_t *op)
{
    if (db->has_queue_timeout)
        h2o_timeout_link(db->loop, &db->queue_timeout, &op->_deadline);
    h2o_linklist_insert(&db->queue, &op->_queue_link);
    G_ADD(waiting, 1);
    if ((!h2o_linklist_is_empty(&db->idle) || (db->pipes > 0 && (op->flags & DB_PIPELINE))) &&
        !h2o_timeout_is_linked(&db->kick))
        h2o_timeout_link(db->loop, &db->kick_timeout, &db->kick);
}

/* 0 when the queue may take one more request; else counts the refusal. */
static int queue_admits(db_t *db)
{
    if (db->closing || db->down || (h2o_linklist_is_empty(&db->idle) && G_LOAD(db->g, waiting) >= db->queue_max)) {
        G_ADD(rejected, 1);
        return ERR_UNAVAILABLE;
    }
    return 0;
}

int db_query_flags(db_t *db, const char *sql, int nparams, const char *const *params, unsigned flags, db_cb cb,
                   void *data)
{
    if (nparams < 0 || nparams > DB_MAX_PARAMS)
        return ERR_INVALID;
    int err = queue_admits(db);
    if (err != 0)
        return err;
    op_enqueue(db, op_new(db, sql, nparams, params, flags, cb, data));
    return 0;
}

/* --- sessions ---------------------------------------------------------- */

int db_session_open(db_t *db, db_session_cb cb, void *data)
{
    /* Counted with the requests still waiting, so that no burst of them can take the last connection. */
    if (!db->closing && db->pins >= db->pool_size - 1) {
        G_ADD(rejected, 1);
        return ERR_UNAVAILABLE;
    }
    int err = queue_admits(db);
    if (err != 0)
        return err;
    db_op_t *op = op_new(db, NULL, 0, NULL, 0, NULL, data);
    op->pin_cb = cb;
    db->pins++;
    op_enqueue(db, op);
    return 0;
}

int db_session_query(db_session_t *s, const char *sql, int nparams, const char *const *params, unsigned flags, db_cb cb,
                     void *data)
{
    if (nparams < 0 || nparams > DB_MAX_PARAMS)
        return ERR_INVALID;
    if (s->closing || s->conn == NULL)
        return ERR_UNAVAILABLE; /* lost or closed: s->conn's pool may be gone, so nothing is counted */
    if (s->op != NULL)
        return ERR_CONFLICT;
    db_conn_t *c = s->conn;
    db_op_t *op = op_new(c->db, sql, nparams, params, flags, cb, data);
    op->_session = s;
    s->op = op;
    /* Started from the loop (never calling back from here), at once if c is ready, else when it is. */
    conn_kick(c);
    return 0;
}

void db_session_close(db_session_t *s)
{
    if (s->closing)
        return; /* called again from the callback of the statement this close abandons */
    s->closing = 1;
    db_conn_t *c = s->conn;
    db_op_t *op = s->op;
    if (c != NULL) {
        c->session = NULL;
        s->conn = NULL;
        if (op != NULL && c->op == op) {
            /* Running: stop it on the server; conn_settle() cleans up once it is over and the cancel delivered. */
            c->op = NULL;
            op->_conn = NULL;
            log_msg(LOG_DEBUG, "session on connection %d closed during a statement; cancelling it", c->index);
            conn_cancel(c);
        } else if (c->state == CONN_PINNED) {
            conn_kick(c); /* the ROLLBACK, if any, and the hand-back happen from the loop */
        }
    }
    if (op != NULL)
        op_finish(op, NULL, ERR_UNAVAILABLE);
    free(s);
}
