/*
 * api/tables.c - every field table the API validates request bodies with,
 * and the check that they are well formed.
 *
 * validate_table_check() catches a table mistake (an unbounded string, a
 * decimal without digits, a member listed twice) that would otherwise only
 * show up as a wrong answer to some request. main.c runs it over this list
 * before serving, and tests/unit/api/tables_test.c runs it in the unit
 * suite, so a bad table fails the build's tests and never reaches a
 * running service. A resource that adds a table adds it here.
 */
#include <stdio.h>

#include "admin.h"
#include "tables.h"

const api_field_table_t api_field_tables[] = {
    {"teams", admin_teams_fields, &admin_teams_nfields}, {"roles", admin_roles_fields, &admin_roles_nfields},
    {"users", admin_users_fields, &admin_users_nfields},
};
const size_t api_nfield_tables = sizeof(api_field_tables) / sizeof(api_field_tables[0]);

/* The check over any list of tables (the unit test feeds it broken ones). */
static int check_tables(const api_field_table_t *tables, size_t n, char *err, size_t errlen)
{
    char why[256];
    if (err != NULL && errlen > 0)
        err[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        const api_field_table_t *t = &tables[i];
        int ret = validate_table_check(t->fields, *t->nfields, why, sizeof(why));
        if (ret != 0) {
            if (err != NULL && errlen > 0)
                snprintf(err, errlen, "table %s: %s", t->name, why);
            return ret;
        }
    }
    return 0;
}

int api_check_field_tables(char *err, size_t errlen)
{
    return check_tables(api_field_tables, api_nfield_tables, err, errlen);
}
