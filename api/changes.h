/*
 * api/changes.h - the change feeds integrators poll: /v1/changes/{customers,orders}.
 */
#ifndef CLIENTELE_API_CHANGES_H
#define CLIENTELE_API_CHANGES_H

#include "api.h"

int changes_customers(api_req_t *ar);
int changes_orders(api_req_t *ar);

#endif
