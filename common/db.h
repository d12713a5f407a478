/*
 * common/db.h - asynchronous PostgreSQL access on the h2o event loop.
 *
 * A db_t is one loop thread's pool of non-blocking libpq connections. Every
 * query gets exactly one callback, from the loop, never from inside
 * db_query(). Queries wait in a bounded FIFO while every connection is
 * busy; each has a deadline covering its wait and its execution. Lost
 * connections are re-opened with exponential backoff, and while the
 * database is known to be down new queries fail at once with
 * ERR_UNAVAILABLE instead of piling up.
 */
#ifndef CLIENTELE_COMMON_DB_H
#define CLIENTELE_COMMON_DB_H

#include <stdint.h>

#include <libpq-fe.h>

#define H2O_USE_LIBUV 0
#include <h2o/socket.h>

typedef struct st_db_t db_t;

/*
 * Called once per query. On success err is 0 and res is the statement's
 * result (PGRES_TUPLES_OK or PGRES_COMMAND_OK); on a database error err is
 * db_err_from_result(res) and res carries the error fields; on a lost
 * connection, a timeout or shutdown res is NULL. res is freed when the
 * callback returns: copy what you keep.
 */
typedef void (*db_cb)(void *data, const PGresult *res, int err);

typedef struct st_db_config_t {
    const char *conninfo;   /* URL or key=value string, as libpq takes it */
    const char *app_name;   /* application_name on the server */
    int pool_size;          /* connections opened at start and kept open */
    int queue_max;          /* queries allowed to wait for a connection */
    int timeout_ms;         /* deadline for waiting plus running; 0: none */
} db_config_t;

typedef struct st_db_stats_t {
    int connections_up;  /* open and usable */
    int connections_busy; /* running a query */
    int waiting;         /* queries waiting for a connection */
} db_stats_t;

/* Maximum number of parameters one statement may take. */
#define DB_MAX_PARAMS 64

/* Creates the pool and starts connecting; never fails (connection errors are retried). */
db_t *db_open(h2o_loop_t *loop, const db_config_t *conf);
/* Fails waiting and running queries with ERR_UNAVAILABLE, closes everything, frees db. */
void db_close(db_t *db);

/*
 * Sends `sql` (which must have static storage duration: connections prepare
 * it once, keyed by its address) with text parameters (NULL is SQL NULL;
 * params are copied). Returns 0 and calls cb later, exactly once; or
 * returns ERR_UNAVAILABLE (database down, queue full, shutting down) or
 * ERR_INVALID (too many parameters) without calling cb.
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
int db_query_flags(db_t *db, const char *sql, int nparams, const char *const *params, unsigned flags, db_cb cb,
                   void *data);

/* A snapshot of the pool's gauges; safe to call from any thread. */
void db_stats(db_t *db, db_stats_t *out);
/* 1 when at least one connection is open. Any thread. */
int db_is_up(db_t *db);

/* Maps a result's SQLSTATE to an err_t (see common/err.h). */
int db_err_from_result(const PGresult *res);
/* Formats v into buf (at least 21 bytes) and returns buf. */
const char *db_fmt_i64(char *buf, int64_t v);

#endif
