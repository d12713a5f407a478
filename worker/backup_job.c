/*
 * worker/backup_job.c - the run kind "backup": a backup file now.
 *
 * The work is common/backup.c's backup_create(), on the job thread: its own
 * session (acting as the worker's role, which reads every table) exports a
 * snapshot, counts the tables in it and runs pg_dump on it, with the job's
 * configuration (connection string, role, CLIENTELE_BACKUP_DIR and
 * CLIENTELE_BACKUP_KEEP). Its tick is the job's heartbeat: progress is the
 * bytes dumped against the size of the newest backup (a fair guess: backups
 * of one database grow slowly), and a cancel, a take-over or a shutdown
 * stops pg_dump and removes the partial file. The result is recorded like
 * any run's, in the run's row (wk_job_write_results with no steps).
 */
#include <inttypes.h>
#include <stdio.h>

#include "backup_job.h"
#include "common/backup.h"
#include "common/err.h"
#include "common/log.h"

typedef struct st_tick_t {
    wk_job_ctx_t *ctx;
    uint64_t expect; /* the newest backup's size, or 0 */
} tick_t;

static int on_tick(void *arg, uint64_t bytes)
{
    tick_t *t = arg;
    double p = t->expect > 0 ? 0.05 + 0.9 * (double)bytes / (double)t->expect : 0.05;
    return wk_job_progress(t->ctx, p > 0.95 ? 0.95 : p, 0, -1, 0);
}

/* The size of the newest backup in dir: what this one will roughly come to. */
static uint64_t expected_size(const char *dir)
{
    char err[256];
    json_t *list = backup_list(dir, err, sizeof(err));
    uint64_t size = 0;
    if (list != NULL && json_array_size(list) > 0)
        size = (uint64_t)json_integer_value(json_object_get(json_array_get(list, 0), "size"));
    if (list != NULL)
        json_decref(list);
    return size;
}

int wk_backup_job_run(wk_job_ctx_t *ctx, const json_t *params)
{
    if (json_object_size(params) != 0)
        return wk_job_fail(ctx, "a backup run takes no params");
    const wk_job_config_t *jc = wk_job_config(ctx);
    tick_t t = {.ctx = ctx, .expect = expected_size(jc->backup_dir)};
    backup_conf_t conf = {.conninfo = jc->conninfo,
                          .role = jc->role,
                          .dir = jc->backup_dir,
                          .keep = jc->backup_keep,
                          .tick = on_tick,
                          .arg = &t};
    backup_result_t res;
    char err[1024];
    int r = backup_create(&conf, &res, err, sizeof(err));
    if (r == WK_JOB_ESTOP)
        return r;
    if (r != 0)
        return wk_job_fail(ctx, "the backup failed: %s", err);
    log_msg(LOG_INFO, "run %" PRId64 ": wrote %s (%" PRIu64 " bytes, %" PRId64 " tables, %" PRId64 " rows)",
            wk_job_run_id(ctx), res.path, res.size, res.tables, res.rows);
    size_t i;
    json_t *name;
    json_array_foreach(res.removed, i, name)
    {
        log_msg(LOG_INFO, "run %" PRId64 ": removed %s/%s (CLIENTELE_BACKUP_KEEP is %d)", wk_job_run_id(ctx),
                jc->backup_dir, json_string_value(name), jc->backup_keep);
    }
    json_t *stats =
        json_pack("{s:s, s:I, s:s, s:I, s:I, s:o}", "file", res.name, "size", (json_int_t)res.size, "sha256",
                  res.sha256, "tables", (json_int_t)res.tables, "rows", (json_int_t)res.rows, "removed", res.removed);
    if (stats == NULL)
        abort();
    static const wk_job_step_t no_steps[] = {{.sql = NULL}};
    wk_job_results_t out = {.steps = no_steps, .customers = 0, .stats = stats};
    r = wk_job_write_results(ctx, &out);
    json_decref(stats);
    return r;
}
