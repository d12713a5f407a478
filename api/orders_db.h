/*
 * api/orders_db.h - the statements behind /v1/orders (see orders_db.c).
 */
#ifndef CLIENTELE_API_ORDERS_DB_H
#define CLIENTELE_API_ORDERS_DB_H

#include "crud.h"

typedef struct st_orders_filter_t {
    const char *customer_id, *status, *ordered_after, *ordered_before, *updated_since;
} orders_filter_t;

extern const char *const orders_db_sorts[];

int orders_db_get(api_req_t *ar, int64_t id, crud_done_fn done, void *arg);
int orders_db_create(api_req_t *ar, const char *input, const char *customer_external_id, crud_done_fn done, void *arg);
int orders_db_patch(api_req_t *ar, int64_t id, const char *patch, const char *if_match, crud_done_fn done, void *arg);
int orders_db_put_external(api_req_t *ar, const char *external_id, const char *customer_external_id,
                           const char *input, const char *if_match, crud_done_fn done, void *arg);
int orders_db_delete(api_req_t *ar, int64_t id, const char *if_match, crud_done_fn done, void *arg);
/* Row: cscope, created count, updated count, refused items ([{"index","outcome"}]) or NULL. */
int orders_db_bulk(api_req_t *ar, const char *items, crud_done_fn done, void *arg);
int orders_db_list(api_req_t *ar, const orders_filter_t *f, const crud_list_t *list, crud_done_fn done, void *arg);

#endif
