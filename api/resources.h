/*
 * api/resources.h - the description of every engine resource (api/engine.h).
 */
#ifndef CLIENTELE_API_RESOURCES_H
#define CLIENTELE_API_RESOURCES_H

#include "engine.h"

extern const engine_resource_t customers_resource; /* api/customers.c */
extern const engine_resource_t orders_resource;    /* api/orders.c */
extern const engine_resource_t contacts_resource;  /* api/contacts.c */

#endif
