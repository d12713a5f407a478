/*
 * api/orders.h - /v1/orders handlers and the order field table.
 */
#ifndef CLIENTELE_API_ORDERS_H
#define CLIENTELE_API_ORDERS_H

#include "api.h"
#include "validate.h"

extern const validate_field_t orders_fields[];
extern const size_t orders_nfields;

int orders_list(api_req_t *ar);
int orders_create(api_req_t *ar);
int orders_get(api_req_t *ar);
int orders_patch(api_req_t *ar);
int orders_delete(api_req_t *ar);
int orders_put_external(api_req_t *ar);
int orders_bulk(api_req_t *ar);
/* The bulk route's description: write probe and off-loop item checks (see api_bulk_t). */
extern const api_bulk_t orders_bulk_route;

#endif
