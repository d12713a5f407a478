/*
 * worker/main.c - clientele-worker: the analytics worker process.
 *
 * One event loop runs all of the worker's I/O: a small database pool and
 * two Redis clients from common/ (one only for the blocking stream read of
 * worker/runs.c, since a blocking command on a shared connection would hold
 * up everything queued behind it; one for every other command), the outbox
 * relay and stream consumer (worker/runs.c) and the schedule leader
 * (worker/scheduler.c), and the health and metrics listener (worker/ops.c,
 * on CLIENTELE_WORKER_LISTEN). The runs themselves are computed on one job
 * thread (worker/job.c) with blocking connections of its own, so the loop
 * never waits for them, and a watchdog measures how late the loop runs. SIGTERM and SIGINT arrive through a signalfd
 * watched by the loop, so shutdown is an ordinary event: the worker stops reading the stream and answering readiness,
 * asks a running job to stop without writing anything (its entry stays pending for a restart or another worker), joins
 * the job thread, lets the last acknowledgements and answers go out (at most 2 s), closes everything in reverse order
 * of creation and exits 0.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <h2o/multithread.h>

#include "common/cfg.h"
#include "common/db.h"
#include "common/err.h"
#include "common/kv.h"
#include "common/log.h"
#include "common/prom.h"
#include "common/tzdb.h"
#include "common/watchdog.h"
#include "job.h"
#include "ops.h"
#include "runs.h"
#include "scheduler.h"

#define DB_POOL 3
#define DRAIN_MS 2000
/* The blocking read waits up to 1 s on the server; its client's deadline must allow for that. */
#define READ_BLOCK_MS 1000

/*
 * h2o 2.2.5's evloop flavour of h2o_multithread_destroy_queue() closes the
 * queue's descriptor but never frees the queue (later versions do). Kept
 * here, it stays reachable instead of being reported as a leak; freeing it
 * ourselves would become a double free with a fixed h2o.
 */
static h2o_multithread_queue_t *queue;
/* Not destroyed when a health connection outlived the shutdown (see wk_ops_free()): kept reachable. */
static h2o_evloop_t *loop;

static void on_signal(h2o_socket_t *sock, const char *err)
{
    int *stop = sock->data;
    struct signalfd_siginfo si;
    if (read(h2o_socket_get_fd(sock), &si, sizeof(si)) == sizeof(si))
        log_msg(LOG_INFO, "received %s; shutting down", si.ssi_signo == SIGTERM ? "SIGTERM" : "SIGINT");
    *stop = 1;
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

    /* Every zone, read before the loop runs: schedules may name any of them. */
    tzdb_t *tzdb = tzdb_open(NULL);
    if (tzdb_get(tzdb, cfg.timezone) == NULL) {
        fprintf(stderr, "clientele-worker: CLIENTELE_TIMEZONE: no zone \"%s\" in the system's zoneinfo\n",
                cfg.timezone);
        tzdb_close(tzdb);
        cfg_free(&cfg);
        return 2;
    }

    log_writer_start(LOG_BUFFER_BYTES); /* the loop never writes to stderr itself */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    /* A parent may have left them ignored (background jobs of a shell); the signalfd needs them live. */
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    /* Blocked before any thread starts, so the job thread inherits the mask and the signalfd gets them. */
    sigprocmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    int stop = 0;
    loop = h2o_evloop_create();
    int sfd = signalfd(-1, &sigs, SFD_NONBLOCK | SFD_CLOEXEC);
    h2o_socket_t *sigsock = h2o_evloop_socket_create(loop, sfd, H2O_SOCKET_FLAG_DONT_READ);
    sigsock->data = &stop;
    h2o_socket_read_start(sigsock, on_signal);

    db_config_t dbconf = {.conninfo = cfg.database_url,
                          .app_name = "clientele-worker",
                          .pool_size = DB_POOL,
                          .queue_max = 64,
                          .timeout_ms = cfg.db_timeout_ms,
                          .role = cfg.worker_db_role};
    kv_config_t kvconf = {.host = cfg.redis_host,
                          .port = cfg.redis_port,
                          .db = cfg.redis_db,
                          .password = cfg.redis_password,
                          .timeout_ms = cfg.redis_timeout_ms};
    kv_config_t readconf = kvconf;
    readconf.timeout_ms = cfg.redis_timeout_ms + READ_BLOCK_MS;
    db_t *db = db_open(loop, &dbconf);
    kv_t *kv = kv_open(loop, &kvconf);
    kv_t *reader = kv_open(loop, &readconf);
    queue = h2o_multithread_create_queue(loop);

    /* Counters of the runs and, as they are written, of every later feature of the worker. */
    prom_registry_t *metrics = prom_registry_new();
    wk_runs_config_t rconf = {.worker_name = cfg.worker_name,
                              .claim_idle_ms = cfg.worker_claim_idle_ms,
                              .conninfo = cfg.database_url,
                              .metrics = metrics,
                              .role = cfg.worker_db_role,
                              .backup_dir = cfg.backup_dir,
                              .backup_keep = cfg.backup_keep};
    wk_runs_t *runs = wk_runs_start(loop, queue, db, kv, reader, &rconf);
    wk_scheduler_backup_t backup = {.at_min = cfg.backup_at_min, .timezone = cfg.timezone};
    wk_scheduler_t *scheduler = wk_scheduler_new(loop, db, kv, tzdb, cfg.worker_name, &backup);
    static watchdog_t watchdog; /* read by /metrics; static so that nothing outlives it */
    watchdog_start(&watchdog, loop, "worker loop");
    wk_ops_t *ops = NULL;
    int rc = 0;
    if (cfg.worker_listen_host != NULL) {
        wk_ops_config_t oconf = {.host = cfg.worker_listen_host,
                                 .port = cfg.worker_listen_port,
                                 .db = db,
                                 .kv = kv,
                                 .reader = reader,
                                 .runs = runs,
                                 .scheduler = scheduler,
                                 .metrics = metrics,
                                 .watchdog = &watchdog};
        if ((ops = wk_ops_start(loop, &oconf, err, sizeof(err))) == NULL) {
            log_msg(LOG_ERROR, "%s", err);
            stop = 1;
            rc = 2;
        }
    }

    while (!stop)
        h2o_evloop_run(loop, INT32_MAX);

    if (ops != NULL)
        wk_ops_stop(ops);
    wk_scheduler_free(scheduler);
    wk_runs_stop(runs);
    for (int64_t until = wk_job_now_ms() + DRAIN_MS;
         (!wk_runs_idle(runs) || (ops != NULL && !wk_ops_idle(ops))) && wk_job_now_ms() < until;)
        h2o_evloop_run(loop, 50);
    h2o_evloop_run(loop, 0); /* sends what the scheduler queued last */
    watchdog_stop(&watchdog);
    db_close(db);
    kv_close(reader);
    kv_close(kv);
    int loop_free = ops == NULL || wk_ops_free(ops) == 0;
    wk_runs_free(runs);
    h2o_multithread_destroy_queue(queue);
    h2o_socket_close(sigsock);
    h2o_evloop_run(loop, 0); /* lets the loop free closed sockets */
    /* A health connection still open keeps its h2o state on the loop until exit (see wk_ops_free()). */
    if (loop_free)
        h2o_evloop_destroy(loop);
    tzdb_close(tzdb);
    prom_registry_free(metrics);
    cfg_free(&cfg);
    log_msg(LOG_INFO, "stopped");
    log_writer_stop();
    return rc;
}
