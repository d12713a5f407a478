/*
 * worker/backup_job.h - the run kind "backup": a backup file now (common/backup.h).
 */
#ifndef CLIENTELE_WORKER_BACKUP_JOB_H
#define CLIENTELE_WORKER_BACKUP_JOB_H

#include <jansson.h>

#include "job.h"

/*
 * Writes a backup of the database into the job's backup directory and
 * prunes older files, heartbeating all along (a cancel or a shutdown stops
 * pg_dump and leaves no file). params must be an empty object. The run's
 * stats: {"file", "size", "sha256", "tables", "rows", "removed"}. Returns 0,
 * WK_JOB_ESTOP, or ERR_INVALID with the failure recorded (wk_job_fail).
 */
int wk_backup_job_run(wk_job_ctx_t *ctx, const json_t *params);

#endif
