/*
 * worker/main.c - clientele-worker: the analytics worker process.
 *
 * One event loop runs the worker's I/O: a database pool and a Redis client
 * from common/, the same code the API uses. SIGTERM and SIGINT arrive
 * through a signalfd watched by the loop, so shutdown is an ordinary event:
 * the loop stops taking work, closes its connections and exits 0. Until
 * the job pipeline lands, the worker checks both dependencies every few
 * seconds and logs each change of their state.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <h2o/timeout.h>

#include "common/cfg.h"
#include "common/db.h"
#include "common/err.h"
#include "common/kv.h"
#include "common/log.h"

typedef struct st_wk_state_t {
    h2o_evloop_t *loop;
    db_t *db;
    kv_t *kv;
    int stop;
    int db_up, redis_up; /* last logged state; -1 unknown */
    int checks_pending;
    h2o_timeout_t check_every;
    h2o_timeout_entry_t check;
} wk_state_t;

static const char SQL_PING[] = "SELECT 1";

static void report(const char *what, int *last, int now)
{
    if (*last != now)
        log_msg(now ? LOG_INFO : LOG_WARN, "%s is %s", what, now ? "reachable" : "unreachable");
    *last = now;
}

static void on_db_ping(void *data, const PGresult *res, int err)
{
    wk_state_t *w = data;
    w->checks_pending--;
    report("PostgreSQL", &w->db_up, err == 0);
}

static void on_redis_ping(void *data, const redisReply *reply, int err)
{
    wk_state_t *w = data;
    w->checks_pending--;
    report("Redis", &w->redis_up, err == 0 && reply != NULL && reply->type == REDIS_REPLY_STATUS);
}

static void on_check(h2o_timeout_entry_t *entry)
{
    wk_state_t *w = H2O_STRUCT_FROM_MEMBER(wk_state_t, check, entry);
    if (w->stop)
        return;
    if (db_query(w->db, SQL_PING, 0, NULL, on_db_ping, w) == 0)
        w->checks_pending++;
    else
        report("PostgreSQL", &w->db_up, 0);
    const char *argv[] = {"PING"};
    if (kv_command(w->kv, on_redis_ping, w, 1, argv, NULL) == 0)
        w->checks_pending++;
    else
        report("Redis", &w->redis_up, 0);
    h2o_timeout_link(w->loop, &w->check_every, &w->check);
}

static void on_signal(h2o_socket_t *sock, const char *err)
{
    wk_state_t *w = sock->data;
    struct signalfd_siginfo si;
    if (read(h2o_socket_get_fd(sock), &si, sizeof(si)) == sizeof(si))
        log_msg(LOG_INFO, "received %s; shutting down", si.ssi_signo == SIGTERM ? "SIGTERM" : "SIGINT");
    w->stop = 1;
}

int main(int argc, char **argv)
{
    cfg_t cfg;
    char err[512];
    if (cfg_load(&cfg, cfg_getenv, NULL, err, sizeof(err)) != 0) {
        fprintf(stderr, "clientele-worker: %s\n", err);
        return 2;
    }
    log_init(cfg.log_level, "worker");
    if (argc != 1) {
        fprintf(stderr, "usage: clientele-worker   (configured by CLIENTELE_* variables)\n");
        cfg_free(&cfg);
        return 2;
    }

    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    /* A parent may have left them ignored (background jobs of a shell); sigwait needs them live. */
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    sigprocmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    wk_state_t w = {.db_up = -1, .redis_up = -1};
    w.loop = h2o_evloop_create();
    int sfd = signalfd(-1, &sigs, SFD_NONBLOCK | SFD_CLOEXEC);
    h2o_socket_t *sigsock = h2o_evloop_socket_create(w.loop, sfd, H2O_SOCKET_FLAG_DONT_READ);
    sigsock->data = &w;
    h2o_socket_read_start(sigsock, on_signal);

    db_config_t dbconf = {cfg.database_url, "clientele-worker", 2, 64, 0};
    kv_config_t kvconf = {cfg.redis_host, cfg.redis_port, cfg.redis_db, cfg.redis_password, cfg.redis_timeout_ms};
    w.db = db_open(w.loop, &dbconf);
    w.kv = kv_open(w.loop, &kvconf);
    h2o_timeout_init(w.loop, &w.check_every, 5000);
    w.check.cb = on_check;
    h2o_timeout_link(w.loop, &w.check_every, &w.check);
    log_msg(LOG_INFO, "worker started");

    while (!w.stop)
        h2o_evloop_run(w.loop, INT32_MAX);

    if (h2o_timeout_is_linked(&w.check))
        h2o_timeout_unlink(&w.check);
    db_close(w.db);
    kv_close(w.kv);
    h2o_timeout_dispose(w.loop, &w.check_every);
    h2o_socket_close(sigsock);
    h2o_evloop_run(w.loop, 0); /* lets the loop free closed sockets */
    h2o_evloop_destroy(w.loop);
    cfg_free(&cfg);
    log_msg(LOG_INFO, "stopped");
    return 0;
}
