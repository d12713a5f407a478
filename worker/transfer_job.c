/*
 * worker/transfer_job.c - the run kind "ownership_transfer".
 *
 * The API records a transfer of more records than a request moves itself
 * (api/ownership.h) together with a run of this kind, whose params name
 * the transfer. The work is schema/0020's ownership_transfer_move(), the
 * function a request's own statement uses: it moves the transfer's
 * remaining records, lowest ids first, as the user who asked for it (the
 * engine's trigger writes each record's history, naming that user and the
 * transfer, and its change-feed entry), after checking that user may move
 * each one. Here it runs in batches of WK_TRANSFER_BATCH records, each a
 * step of one transaction (wk_job_write_results()), so the run's progress
 * advances while nothing is committed; a last unbounded step takes records
 * the user came to own meanwhile, and the run is marked succeeded in the
 * same commit. A worker killed, a cancel, or a record the asker may no
 * longer move rolls everything back: nothing is half moved, and a run
 * taken over starts again from the first record.
 *
 * The steps' text names the transfer id, an integer printed here; nothing
 * else is spliced into SQL.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "common/err.h"
#include "transfer_job.h"

static const char SQL_TOTAL[] = "SELECT total FROM ownership_transfers WHERE id = $1";

int wk_transfer_job_run(wk_job_ctx_t *ctx, const json_t *params)
{
    json_t *idv = json_object_get(params, "transfer_id");
    if (!json_is_integer(idv) || json_integer_value(idv) <= 0)
        return wk_job_fail(ctx, "the run's params name no transfer_id");
    int64_t id = json_integer_value(idv);
    char idt[24];
    snprintf(idt, sizeof(idt), "%" PRId64, id);
    const char *p[] = {idt};
    PGresult *res;
    int r = wk_job_exec(ctx, SQL_TOTAL, 1, p, "reading the transfer", &res);
    if (r != 0)
        return r;
    if (PQntuples(res) != 1) {
        PQclear(res);
        return wk_job_fail(ctx, "ownership transfer %" PRId64 " does not exist", id);
    }
    int64_t total = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    if ((r = wk_job_progress(ctx, 0, 0, total, 1)) != 0)
        return r;

    /* Batches for the records counted when the transfer was asked for, one unbounded step, the finish. */
    int64_t nbatch = (total + WK_TRANSFER_BATCH - 1) / WK_TRANSFER_BATCH;
    h2o_mem_pool_t *pool = wk_job_pool(ctx);
    wk_job_step_t *steps = h2o_mem_alloc_pool(pool, sizeof(*steps) * (size_t)(nbatch + 3));
    for (int64_t i = 0; i <= nbatch + 1; i++) {
        char *sql = h2o_mem_alloc_pool(pool, 96);
        if (i < nbatch)
            snprintf(sql, 96, "SELECT ownership_transfer_move(%" PRId64 ", %d)", id, WK_TRANSFER_BATCH);
        else if (i == nbatch)
            snprintf(sql, 96, "SELECT ownership_transfer_move(%" PRId64 ", NULL)", id);
        else
            snprintf(sql, 96, "SELECT ownership_transfer_finish(%" PRId64 ")", id);
        int64_t done = (i + 1) * WK_TRANSFER_BATCH < total ? (i + 1) * WK_TRANSFER_BATCH : total;
        steps[i] = (wk_job_step_t){.sql = sql, .progress = (double)(i + 1) / (double)(nbatch + 2), .done = done};
    }
    steps[nbatch + 2] = (wk_job_step_t){.sql = NULL};

    json_t *stats = json_pack("{s:I}", "transfer_id", (json_int_t)id);
    wk_job_results_t results = {.steps = steps, .customers = total, .stats = stats};
    r = wk_job_write_results(ctx, &results);
    json_decref(stats);
    return r;
}
