/*
 * api/analytics_db.h - the statements behind /v1/analytics (see analytics_db.c).
 */
#ifndef CLIENTELE_API_ANALYTICS_DB_H
#define CLIENTELE_API_ANALYTICS_DB_H

#include "crud.h"

/* A schedule's columns as SQL parameters (text). */
typedef struct st_analytics_schedule_t {
    const char *kind, *cron, *timezone, *params, *enabled, *next_run_at;
} analytics_schedule_t;

/* Write statements answer the standard columns of crud.h. */
int analytics_db_run_create(api_req_t *ar, const char *kind, const char *params, crud_done_fn done, void *arg);
/* Row: rscope, id (NULL when absent or not readable), run JSON. */
int analytics_db_run_get(api_req_t *ar, int64_t id, crud_done_fn done, void *arg);
/* Standard write columns plus the status before (column 5); outcome "finished" when it had ended already. */
int analytics_db_run_cancel(api_req_t *ar, int64_t id, crud_done_fn done, void *arg);
/* Rows as crud_send_list expects, newest first; `after` is the id cursor. */
int analytics_db_run_list(api_req_t *ar, const char *status, const char *kind, const char *after, int rows,
                          crud_done_fn done, void *arg);
/* Row: rscope, run id, run status, summary JSON. */
int analytics_db_summary(api_req_t *ar, const char *run_id, crud_done_fn done, void *arg);
/* Row: rscope, from-run status, to-run status, matrix JSON. */
int analytics_db_transitions(api_req_t *ar, const char *from_run, const char *to_run, crud_done_fn done, void *arg);
/* Row: rscope, customer id (NULL outside scope), history JSON array. */
int analytics_db_customer_history(api_req_t *ar, int64_t customer_id, crud_done_fn done, void *arg);

int analytics_db_schedule_get(api_req_t *ar, int64_t id, crud_done_fn done, void *arg);
int analytics_db_schedule_create(api_req_t *ar, const analytics_schedule_t *s, crud_done_fn done, void *arg);
int analytics_db_schedule_update(api_req_t *ar, int64_t id, int64_t version_read, const char *if_match,
                                 const analytics_schedule_t *s, crud_done_fn done, void *arg);
int analytics_db_schedule_delete(api_req_t *ar, int64_t id, const char *if_match, crud_done_fn done, void *arg);
int analytics_db_schedule_list(api_req_t *ar, const char *after, int rows, crud_done_fn done, void *arg);

#endif
