/*
 * api/resources.h - the description of every engine resource (api/engine.h).
 */
#ifndef CLIENTELE_API_RESOURCES_H
#define CLIENTELE_API_RESOURCES_H

#include "engine.h"

extern const engine_resource_t customers_resource; /* api/customers.c */
extern const engine_resource_t orders_resource;    /* api/orders.c */
extern const engine_resource_t contacts_resource;  /* api/contacts.c */
extern const engine_resource_t custom_fields_resource; /* api/custom_fields.c */
/* The resources whose attrs custom fields may define, NULL-terminated (api/custom_fields.c). */
extern const char *const custom_field_resources[];

#endif
