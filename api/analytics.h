/*
 * api/analytics.h - /v1/analytics handlers: runs, results, schedules.
 */
#ifndef CLIENTELE_API_ANALYTICS_H
#define CLIENTELE_API_ANALYTICS_H

#include "api.h"

int analytics_run_create(api_req_t *ar);
int analytics_run_list(api_req_t *ar);
int analytics_run_get(api_req_t *ar);
int analytics_run_cancel(api_req_t *ar);
int analytics_summary(api_req_t *ar);
int analytics_transitions(api_req_t *ar);
int analytics_customer_history(api_req_t *ar);
int analytics_schedule_list(api_req_t *ar);
int analytics_schedule_create(api_req_t *ar);
int analytics_schedule_get(api_req_t *ar);
int analytics_schedule_patch(api_req_t *ar);
int analytics_schedule_delete(api_req_t *ar);

#endif
