/*
 * api/resources.c - the one list of engine resources. A resource added to
 * the product is a description in its own file, a line here, its routes in
 * api/routes.c, its table in schema/ and its schema in openapi/.
 */
#include <stddef.h>

#include "resources.h"

const engine_resource_t *const engine_resources[] = {
    &customers_resource,
    &orders_resource,
    &contacts_resource,
    &custom_fields_resource,
    NULL,
};
