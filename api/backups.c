/*
 * api/backups.c - /v1/admin/backups: the backup files, and a backup now.
 *
 * The API never makes a backup: POST queues a run of kind `backup` (one
 * statement with its outbox message, api/backups_db.c) and answers 202 with
 * it; a worker makes the file (worker/backup_job.c). GET answers the files
 * in CLIENTELE_BACKUP_DIR (the directory the workers write, shared as the
 * file store is), newest first, each with its size, time and manifest, with
 * the latest backup runs and the daily schedule beside them.
 *
 * Reading the directory and the files' manifests is file I/O, so it runs on
 * the offload pool (api/offload.h), never on the loop: the statement first
 * decides whether the caller may see backups at all (and reads the runs),
 * then a list_job_t reads the directory, and its done callback answers on
 * the loop. The job holds a reference on the request and owns copies of the
 * statement's texts; done frees it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backups.h"
#include "backups_db.h"
#include "common/backup.h"
#include "common/log.h"
#include "crud.h"

typedef struct st_list_job_t {
    offload_job_t super; /* first: the pool hands this back */
    api_req_t *ar;
    const char *dir; /* the server's configuration: outlives the job */
    char *runs;      /* JSON text, malloc'ed */
    char *schedule;  /* JSON text or NULL, malloc'ed */
    char *files;     /* the work's result: JSON text, malloc'ed; NULL when the directory could not be read */
    char err[512];
} list_job_t;

static void list_work(offload_job_t *job)
{
    list_job_t *lj = (list_job_t *)job;
    json_t *files = backup_list(lj->dir, lj->err, sizeof(lj->err));
    if (files == NULL)
        return;
    lj->files = json_dumps(files, JSON_COMPACT);
    json_decref(files);
    if (lj->files == NULL)
        abort();
}

static void list_done(offload_job_t *job, int cancelled)
{
    list_job_t *lj = (list_job_t *)job;
    api_req_t *ar = lj->ar;
    if (!cancelled && ar->req != NULL) {
        if (lj->files == NULL) {
            /* The reason names a path of the server: it goes to the log, not to the client. */
            log_msg(LOG_ERROR, "backups: %s", lj->err);
            api_send_error(ar, ERR_INTERNAL, "The backup directory cannot be read.");
        } else {
            crud_buf_t b;
            crud_buf_init(&b, &ar->req->pool, strlen(lj->files) + strlen(lj->runs) + 256);
            crud_buf_puts(&b, "{\"data\":");
            crud_buf_puts(&b, lj->files);
            crud_buf_puts(&b, ",\"runs\":");
            crud_buf_puts(&b, lj->runs);
            crud_buf_puts(&b, ",\"schedule\":");
            crud_buf_puts(&b, lj->schedule != NULL ? lj->schedule : "null");
            crud_buf_puts(&b, "}");
            api_send_raw(ar, 200, "application/json", b.base, b.len);
        }
    }
    api_req_release(ar);
    free(lj->runs);
    free(lj->schedule);
    free(lj->files);
    free(lj);
}

static void on_overview(api_req_t *ar, const PGresult *res, int err, void *arg)
{
    if (crud_check_result(ar, res, err) != 0)
        return;
    if (strcmp(PQgetvalue(res, 0, 0), "all") != 0) {
        api_send_error(ar, ERR_FORBIDDEN, "Your role may not see backups.");
        return;
    }
    list_job_t *lj = calloc(1, sizeof(*lj));
    if (lj == NULL || (lj->runs = strdup(PQgetvalue(res, 0, 1))) == NULL)
        abort();
    if (!PQgetisnull(res, 0, 2) && (lj->schedule = strdup(PQgetvalue(res, 0, 2))) == NULL)
        abort();
    lj->super.work = list_work;
    lj->super.done = list_done;
    lj->ar = ar;
    lj->dir = ar->thread->server->cfg->backup_dir;
    if (ar->thread->offload == NULL || offload_submit(ar->thread->offload, &lj->super) != 0) {
        free(lj->runs);
        free(lj->schedule);
        free(lj);
        api_add_header(ar, "retry-after", "1");
        api_send_error(ar, ERR_UNAVAILABLE, "The server is too busy to read the backup directory. Retry later.");
        return;
    }
    api_req_hold(ar);
}

int backups_list(api_req_t *ar)
{
    static const char *const allowed[] = {NULL};
    crud_query_t q;
    if (crud_parse_query(ar, allowed, &q) != 0)
        return 0;
    return backups_db_overview(ar, on_overview, NULL);
}

static void on_created(api_req_t *ar, const PGresult *res, int err, void *arg)
{
    if (crud_check_result(ar, res, err) != 0)
        return;
    if (strcmp(PQgetvalue(res, 0, 0), "created") != 0) {
        api_send_error(ar, ERR_FORBIDDEN, "Your role may not start backups.");
        return;
    }
    api_add_header(ar, "location", "/v1/admin/backups");
    api_send_raw(ar, 202, "application/json", PQgetvalue(res, 0, 3), (size_t)PQgetlength(res, 0, 3));
}

int backups_create(api_req_t *ar)
{
    return backups_db_create(ar, on_created, NULL);
}
