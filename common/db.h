/*
 * common/db.h - asynchronous PostgreSQL access on the h2o event loop.
 *
 * A db_t is one loop thread's pool of non-blocking libpq connections. Every
 * query gets exactly one callback, from the loop, never from inside
 * db_query(). Queries wait in a bounded FIFO while every connection is
 * busy, for at most the queue timeout (then ERR_UNAVAILABLE: the service
 * is saturated); once sent, a query runs under the server's
 * statement_timeout (ERR_TIMEOUT), backed by a client-side deadline that
 * cancels the statement (PQcancel, on a helper thread) rather than closing
 * the connection, so a slow statement never costs the pool a connection or
 * its prepared statements. Host names are resolved on a helper thread and
 * handed to libpq as hostaddr; connecting has a deadline of its own. Lost
 * connections are re-opened with exponential backoff, and while the
 * database is known to be down new queries fail at once with
 * ERR_UNAVAILABLE instead of piling up.
 *
 * A session (db_session_open) pins one connection for a sequence of
 * statements that must share it: a transaction, a cursor fetched chunk by
 * chunk as a slow client reads. At least one connection always stays for
 * everything else.
 */
#ifndef CLIENTELE_COMMON_DB_H
#define CLIENTELE_COMMON_DB_H

#include <stdatomic.h>
#include <stdint.h>

#include <libpq-fe.h>

#define H2O_USE_LIBUV 0
#include <h2o/socket.h>

typedef struct st_db_t db_t;
typedef struct st_db_session_t db_session_t;

/*
 * Called once per query. On success err is 0 and res is the statement's
 * result (PGRES_TUPLES_OK or PGRES_COMMAND_OK); on a database error err is
 * db_err_from_result(res) and res carries the error fields; on a lost
 * connection, a timeout or shutdown res is NULL. res is freed when the
 * callback returns: copy what you keep. The callback runs in the log
 * context (common/log.h) its query was submitted in.
 */
typedef void (*db_cb)(void *data, const PGresult *res, int err);

/*
 * The pool's gauges and counters. The pool writes them with relaxed atomics;
 * any thread may read them with db_gauges_read(). They may live outside the
 * pool (db_config_t.gauges) so that a reader on another thread never
 * touches the pool itself, which its own thread frees at shutdown.
 */
typedef struct st_db_gauges_t {
    _Atomic int up;                            /* connections open and usable */
    _Atomic int busy;                          /* connections running a query */
    _Atomic int pinned;                        /* connections held by sessions (or cleaning up after one) */
    _Atomic int waiting;                       /* queries waiting for a connection */
    _Atomic int prepared;                      /* statements prepared on the open connections, summed */
    _Atomic unsigned long long connects;       /* connections established, first ones included */
    _Atomic unsigned long long rejected;       /* queries and sessions refused: queue full, database down, */
                                               /* no connection left to pin */
    _Atomic unsigned long long queue_timeouts; /* queries that waited longer than the queue timeout */
    _Atomic unsigned long long exec_timeouts;  /* statements stopped by statement_timeout or our deadline */
    _Atomic unsigned long long cancels;        /* cancel requests sent: client-side deadline, session closed */
    _Atomic unsigned long long pipelines;      /* batches sent in pipeline mode (DB_PIPELINE) */
    _Atomic unsigned long long pipelined;      /* statements sent in those batches */
} db_gauges_t;

typedef struct st_db_config_t {
    const char *conninfo;   /* URL or key=value string, as libpq takes it */
    const char *app_name;   /* application_name on the server */
    int pool_size;          /* connections opened at start and kept open */
    int queue_max;          /* queries allowed to wait for a connection */
    int timeout_ms;         /* statement_timeout for one query's execution; 0: none */
    int queue_timeout_ms;   /* longest wait for a connection; 0: timeout_ms (none if both 0) */
    int connect_timeout_ms; /* deadline for resolving plus connecting; 0: connect_timeout in conninfo, else 5 s */
    db_gauges_t *gauges;    /* where to publish gauges (caller-owned, outlives the pool); NULL: inside the pool */
    int no_jit;             /* jit=off for the sessions: interactive statements pay more to compile than they save */
    const char *role;       /* a role the sessions act as (SET ROLE at connect), or NULL/"" for the login role */
} db_config_t;

typedef struct st_db_stats_t {
    int connections_up;   /* open and usable */
    int connections_busy; /* running a query */
    int pinned;           /* held by sessions (or cleaning up after one) */
    int waiting;          /* queries waiting for a connection */
    int prepared;         /* statements prepared on the open connections, summed */
    unsigned long long connects, rejected, queue_timeouts, exec_timeouts, cancels;
    unsigned long long pipelines, pipelined; /* batches sent in pipeline mode, and the statements in them */
} db_stats_t;

/* Maximum number of parameters one statement may take. */
#define DB_MAX_PARAMS 64

/* Creates the pool and starts connecting; never fails (connection errors are retried). */
db_t *db_open(h2o_loop_t *loop, const db_config_t *conf);
/*
 * Fails waiting and running queries and session statements with
 * ERR_UNAVAILABLE and pending session requests likewise, closes everything,
 * frees db. Open sessions stay allocated, detached: their owners still call
 * db_session_close(), which then only frees them.
 */
void db_close(db_t *db);

/*
 * Sends `sql` (which must have static storage duration: connections prepare
 * it once, keyed by its address) with text parameters (NULL is SQL NULL;
 * params are copied). Returns 0 and calls cb later, exactly once; or
 * returns ERR_UNAVAILABLE (database down, queue full, shutting down) or
 * ERR_INVALID (too many parameters) without calling cb. The callback gets
 * ERR_UNAVAILABLE when the query waited longer than the queue timeout or
 * lost its connection, and ERR_TIMEOUT when its execution took too long.
 */
int db_query(db_t *db, const char *sql, int nparams, const char *const *params, db_cb cb, void *data);

/*
 * Like db_query(), but with flags: DB_ONESHOT sends the statement unnamed,
 * so it is planned for its actual parameters every time. Use it for
 * statements whose best plan depends on which optional filters are set
 * (a prepared statement's generic plan cannot use an index on a filter
 * written as "$3 IS NULL OR col = $3").
 */
#define DB_ONESHOT 1
/*
 * DB_PIPELINE: a short, read-only statement that may share a connection
 * with others of its kind asked for in the same loop iteration. They go out
 * together in libpq's pipeline mode, each in its own implicit transaction
 * (one Sync each: an error or a statement_timeout touches only its own),
 * and the server answers them one after the other without waiting for the
 * network in between: under load one wake-up of a server process serves a
 * batch instead of one statement. Never for statements that may run long
 * (those behind them would wait) or that write.
 */
#define DB_PIPELINE 2
int db_query_flags(db_t *db, const char *sql, int nparams, const char *const *params, unsigned flags, db_cb cb,
                   void *data);

/*
 * Sessions. Called once per db_session_open(): with err 0 and s, the
 * session, which the callee now owns and must end with db_session_close();
 * or with s NULL and err ERR_UNAVAILABLE (waited longer than the queue
 * timeout, database lost, pool closed), and nothing to close.
 */
typedef void (*db_session_cb)(void *data, db_session_t *s, int err);

/*
 * Asks for a connection of one's own: waits in the same FIFO as queries,
 * under the same queue timeout. Returns 0 and calls cb later, exactly once;
 * or returns ERR_UNAVAILABLE without calling cb: database down, queue full,
 * shutting down, or pinning one more connection would leave none for
 * queries (at most pool_size - 1 are pinned, cleaning up after a closed
 * session, or asked for at once, so a pool of 1 refuses every session).
 * A session has no idle deadline: it holds its connection, and any
 * transaction it opened, until it is closed.
 */
int db_session_open(db_t *db, db_session_cb cb, void *data);

/*
 * Runs one statement on the session's connection, like db_query_flags()
 * (sql static and prepared once per connection unless DB_ONESHOT, params
 * copied, the same execution deadline that cancels a statement running too
 * long, the same callback). Returns 0 and calls cb later, exactly once,
 * never from inside db_session_query(); or returns without calling cb:
 * ERR_INVALID (too many parameters), ERR_CONFLICT (a statement of this
 * session has not been answered yet: one at a time; a caller's bug),
 * ERR_UNAVAILABLE (the connection was lost, or the pool closed: the session
 * is over, close it). The callback gets ERR_UNAVAILABLE when the connection
 * is lost (res NULL) or the session is closed before the answer,
 * ERR_TIMEOUT when the statement ran too long (cancelled; the session stays
 * usable, but a transaction it was in has failed: ROLLBACK or close). The
 * callback may call db_session_query() or db_session_close().
 */
int db_session_query(db_session_t *s, const char *sql, int nparams, const char *const *params, unsigned flags, db_cb cb,
                     void *data);

/*
 * Ends the session and frees s; any time, even from a callback, and also
 * after the connection was lost or db_close() ran (then it only frees s).
 * A statement asked for and not answered yet is cancelled on the server
 * if it runs, and its callback is called from inside this function with
 * res NULL and ERR_UNAVAILABLE (as db_close() does for the queries it
 * abandons); inside that callback db_session_query() returns
 * ERR_UNAVAILABLE and db_session_close() does nothing. Once it returns, no
 * callback of the session will come. The connection goes back to the pool
 * (and stops counting as pinned) only after the cancelled statement has
 * ended and its cancel request was delivered, and, if the server reports
 * a transaction still open or failed, after a ROLLBACK; a connection that
 * cannot be brought back to a clean state is closed and re-opened instead.
 */
void db_session_close(db_session_t *s);

/* A snapshot of the pool's gauges; call on the pool's thread (others use db_gauges_read). */
void db_stats(db_t *db, db_stats_t *out);
/* A snapshot of gauges published through db_config_t.gauges; any thread, as long as g lives. */
void db_gauges_read(const db_gauges_t *g, db_stats_t *out);
/* 1 when at least one connection is open. The pool's thread. */
int db_is_up(db_t *db);

/* Maps a result's SQLSTATE to an err_t (see common/err.h). */
int db_err_from_result(const PGresult *res);
/* Formats v into buf (at least 21 bytes) and returns buf. */
const char *db_fmt_i64(char *buf, int64_t v);

#endif
