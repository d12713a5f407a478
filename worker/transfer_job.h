/*
 * worker/transfer_job.h - the run kind "ownership_transfer": a large ownership
 * transfer (api/ownership.h), moved in one transaction.
 */
#ifndef CLIENTELE_WORKER_TRANSFER_JOB_H
#define CLIENTELE_WORKER_TRANSFER_JOB_H

#include <jansson.h>

#include "job.h"

/* Records moved per statement of the transfer's transaction (the progress advances per batch). */
#define WK_TRANSFER_BATCH 1000

/*
 * Runs one transfer ({"transfer_id": N}): returns 0 once every record has
 * moved and the run is marked succeeded in the same commit, WK_JOB_ESTOP,
 * or a failure recorded with wk_job_fail() (nothing moved). params is borrowed.
 */
int wk_transfer_job_run(wk_job_ctx_t *ctx, const json_t *params);

#endif
