/*
 * api/customers.h - /v1/customers handlers and the customer field table.
 */
#ifndef CLIENTELE_API_CUSTOMERS_H
#define CLIENTELE_API_CUSTOMERS_H

#include "api.h"
#include "validate.h"

extern const validate_field_t customers_fields[];
extern const size_t customers_nfields;

int customers_list(api_req_t *ar);
int customers_create(api_req_t *ar);
int customers_get(api_req_t *ar);
int customers_patch(api_req_t *ar);
int customers_delete(api_req_t *ar);
int customers_put_external(api_req_t *ar);
int customers_bulk(api_req_t *ar);
/* The bulk route's description: write probe and off-loop item checks (see api_bulk_t). */
extern const api_bulk_t customers_bulk_route;

#endif
