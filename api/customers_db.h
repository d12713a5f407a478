/*
 * api/customers_db.h - the statements behind /v1/customers (see customers_db.c).
 *
 * Each function sends one scoped statement for the authenticated request and
 * calls `done` with its result (standard columns of api/crud.h) while the
 * request is alive. Text parameters are borrowed for the call only.
 */
#ifndef CLIENTELE_API_CUSTOMERS_DB_H
#define CLIENTELE_API_CUSTOMERS_DB_H

#include "crud.h"

typedef struct st_customers_filter_t {
    const char *owner_id, *team_id, *status, *tag;
    const char *q_pattern; /* an ILIKE pattern, metacharacters escaped */
    const char *updated_since, *created_after, *created_before;
    const char *segment, *lifecycle, *tier; /* from the customer's current analytics */
    const char *p_alive_below;              /* a number in [0, 1], checked; from the customer's current CLV */
} customers_filter_t;

extern const char *const customers_db_sorts[];

int customers_db_get(api_req_t *ar, int64_t id, crud_done_fn done, void *arg);
int customers_db_create(api_req_t *ar, const char *input, crud_done_fn done, void *arg);
int customers_db_patch(api_req_t *ar, int64_t id, const char *patch, const char *if_match, crud_done_fn done,
                       void *arg);
int customers_db_put_external(api_req_t *ar, const char *external_id, const char *input, const char *if_match,
                              crud_done_fn done, void *arg);
int customers_db_delete(api_req_t *ar, int64_t id, const char *if_match, crud_done_fn done, void *arg);
/* Row: cscope, created count, updated count, refused items as a JSON array ([{"index","outcome"}]) or NULL. */
int customers_db_bulk(api_req_t *ar, const char *items, crud_done_fn done, void *arg);
/* Rows: rscope, id, sortkey, doc, total (see crud_send_list). */
int customers_db_list(api_req_t *ar, const customers_filter_t *f, const crud_list_t *list, crud_done_fn done,
                      void *arg);

#endif
