/*
 * common/tzdb.h - every IANA zone of the system, loaded once at start-up.
 *
 * Event loop threads must not read files, yet schedules name arbitrary
 * zones. So the process loads the whole zoneinfo tree before its loops
 * start (a few hundred small files, well under a second) and afterwards
 * only looks zones up in memory. Read-only after tzdb_open(); safe to
 * share between threads.
 */
#ifndef CLIENTELE_COMMON_TZDB_H
#define CLIENTELE_COMMON_TZDB_H

#include "tz.h"

typedef struct st_tzdb_t tzdb_t;

/* Loads every valid zone under dir (NULL: the system's zoneinfo). Never NULL; may be empty. */
tzdb_t *tzdb_open(const char *dir);
void tzdb_close(tzdb_t *db);
/* The zone named `name` ("Europe/Berlin", "UTC"), or NULL when there is none. */
const tz_t *tzdb_get(const tzdb_t *db, const char *name);

#endif
