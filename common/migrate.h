/*
 * common/migrate.h - applies the schema's migration files (see migrate.c).
 */
#ifndef CLIENTELE_COMMON_MIGRATE_H
#define CLIENTELE_COMMON_MIGRATE_H

/*
 * Applies every dir/NNNN_*.sql not yet recorded in schema_migrations, in
 * order, each in its own transaction, under an advisory lock. Blocking.
 * Problems go to stderr prefixed with `who` ("clientele-api migrate").
 * Returns 0, or 1 when a file failed (the database is left as that file
 * found it) or the database could not be reached.
 */
int migrate_apply(const char *conninfo, const char *dir, const char *who);

#endif
