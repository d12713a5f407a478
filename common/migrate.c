/*
 * common/migrate.c - applies schema/NNNN_name.sql files in order.
 *
 * Runs as `clientele-api migrate` (and after `clientele-admin restore`),
 * before any loop exists, so it uses blocking libpq calls. Each file runs in its own transaction together with
 * the row that records it in schema_migrations; a session-level advisory
 * lock keeps two migrators (two API instances starting at once) from
 * racing. A failing file is rolled back and reported with its name and
 * PostgreSQL's message. The file texts are trusted: they ship with the
 * binary's source, not with any request.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "log.h"
#include "migrate.h"

#define MIGRATE_LOCK_KEY "7340031" /* arbitrary, fixed: "clientele migrations" */

static const char SQL_CREATE_TABLE[] = "CREATE TABLE IF NOT EXISTS schema_migrations ("
                                       " version text PRIMARY KEY,"
                                       " applied_at timestamptz NOT NULL DEFAULT now())";
static const char SQL_LOCK[] = "SELECT pg_advisory_lock($1::bigint)";
static const char SQL_IS_APPLIED[] = "SELECT 1 FROM schema_migrations WHERE version = $1";
static const char SQL_RECORD[] = "INSERT INTO schema_migrations (version) VALUES ($1)";

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* A migration file is named NNNN_name.sql with a four-digit number. */
static int is_migration_name(const char *n)
{
    size_t len = strlen(n);
    if (len < 10 || strcmp(n + len - 4, ".sql") != 0 || n[4] != '_')
        return 0;
    for (int i = 0; i < 4; i++)
        if (n[i] < '0' || n[i] > '9')
            return 0;
    return 1;
}

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)len + 1);
    if (buf == NULL || fread(buf, 1, (size_t)len, f) != (size_t)len) {
        free(buf);
        fclose(f);
        return NULL;
    }
    buf[len] = '\0';
    fclose(f);
    return buf;
}

static int exec_ok(const char *who, PGresult *r, const char *what)
{
    ExecStatusType st = PQresultStatus(r);
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
        PQclear(r);
        return 1;
    }
    fprintf(stderr, "%s: %s: %s", who, what, PQresultErrorMessage(r));
    PQclear(r);
    return 0;
}

static void ignore_notice(void *arg, const char *message)
{
    (void)arg, (void)message; /* "already exists, skipping" and the like */
}

int migrate_apply(const char *conninfo, const char *dir, const char *who)
{
    int ret = 1, applied = 0;
    char **names = NULL;
    size_t n = 0;
    PGconn *c = PQconnectdb(conninfo);
    if (PQstatus(c) != CONNECTION_OK) {
        fprintf(stderr, "%s: cannot connect: %s", who, PQerrorMessage(c));
        PQfinish(c);
        return 1;
    }
    PQsetNoticeProcessor(c, ignore_notice, NULL);
    const char *lockp[] = {MIGRATE_LOCK_KEY};
    if (!exec_ok(who, PQexecParams(c, SQL_LOCK, 1, NULL, lockp, NULL, NULL, 0), "taking the migration lock") ||
        !exec_ok(who, PQexec(c, SQL_CREATE_TABLE), "creating schema_migrations"))
        goto Exit;

    DIR *d = opendir(dir);
    if (d == NULL) {
        fprintf(stderr, "%s: cannot open %s\n", who, dir);
        goto Exit;
    }
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (!is_migration_name(de->d_name))
            continue;
        names = realloc(names, (n + 1) * sizeof(*names));
        names[n++] = strdup(de->d_name);
    }
    closedir(d);
    if (n > 0)
        qsort(names, n, sizeof(*names), cmp_names);

    for (size_t i = 0; i < n; i++) {
        const char *version = names[i];
        const char *p[] = {version};
        PGresult *r = PQexecParams(c, SQL_IS_APPLIED, 1, NULL, p, NULL, NULL, 0);
        int done = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1;
        if (PQresultStatus(r) != PGRES_TUPLES_OK) {
            exec_ok(who, r, version);
            goto Exit;
        }
        PQclear(r);
        if (done)
            continue;
        char path[4096];
        snprintf(path, sizeof(path), "%s/%s", dir, version);
        char *sql = read_file(path);
        if (sql == NULL) {
            fprintf(stderr, "%s: cannot read %s\n", who, path);
            goto Exit;
        }
        int ok = exec_ok(who, PQexec(c, "BEGIN"), version) && exec_ok(who, PQexec(c, sql), version) &&
                 exec_ok(who, PQexecParams(c, SQL_RECORD, 1, NULL, p, NULL, NULL, 0), version) &&
                 exec_ok(who, PQexec(c, "COMMIT"), version);
        free(sql);
        if (!ok) {
            PQclear(PQexec(c, "ROLLBACK"));
            fprintf(stderr, "%s: %s failed; the database was left as it was\n", who, version);
            goto Exit;
        }
        log_msg(LOG_INFO, "applied migration %s", version);
        applied++;
    }
    log_msg(LOG_INFO, "migrations up to date (%d applied now, %zu in total)", applied, n);
    ret = 0;
Exit:
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    PQfinish(c);
    return ret;
}
