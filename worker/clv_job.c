/* worker/clv_job.c - the analytics run kind "clv" (being written). */
#include "clv_job.h"

int wk_clv_job_run(wk_job_ctx_t *ctx, const json_t *params)
{
    return wk_job_fail(ctx, "kind clv is not implemented yet");
}
