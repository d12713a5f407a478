/*
 * api/tables.h - the list of every field table the API validates bodies
 * with, and the start-up check over it.
 */
#ifndef CLIENTELE_API_TABLES_H
#define CLIENTELE_API_TABLES_H

#include <stddef.h>

#include "validate.h"

typedef struct st_api_field_table_t {
    const char *name; /* "customers", for messages */
    const validate_field_t *fields;
    const size_t *nfields;
} api_field_table_t;

/* Every production field table, in one list (api_nfield_tables entries). */
extern const api_field_table_t api_field_tables[];
extern const size_t api_nfield_tables;

/*
 * Runs validate_table_check() over every table of api_field_tables. Returns
 * 0, or ERR_INVALID with "table <name>: <problem>" in err (truncated to
 * errlen, which may be 0). main.c refuses to start on an error.
 */
int api_check_field_tables(char *err, size_t errlen);

#endif
