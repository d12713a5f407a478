/*
 * admin/restore.c - `clientele-admin restore FILE [--database NAME] [--force] [--schema DIR]`.
 *
 * Restores a backup file (common/backup.h) into an empty database, in this
 * order, so that a refusal changes nothing:
 *  1. the file's structure and its dump's SHA-256 against the manifest;
 *  2. the roles the dump names: its owner must exist here (the objects are
 *     restored as theirs); grantees that do not are created NOLOGIN;
 *  3. the target database (CLIENTELE_DATABASE_URL's, or NAME): created when
 *     missing; when it holds anything, refused, unless --force, which drops
 *     it (sessions included) and creates it anew;
 *  4. pg_restore in one transaction (a failure leaves the database empty);
 *  5. every table's row count against the manifest;
 *  6. the migrations the backup predates (DIR, default schema).
 * The maintenance connection (for CREATE and DROP DATABASE) goes to the
 * database `postgres` (else `template1`) with the same credentials.
 */
#include <inttypes.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "admin.h"
#include "common/backup.h"
#include "common/migrate.h"

#define WHO "clientele-admin restore"

/* Objects of a user's making: tables, functions, extensions but plpgsql, schemas but public. */
static const char SQL_OBJECTS[] =
    "SELECT (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
    "   WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_(toast|temp)')"
    " + (SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace"
    "   WHERE n.nspname NOT IN ('pg_catalog', 'information_schema'))"
    " + (SELECT count(*) FROM pg_extension WHERE extname <> 'plpgsql')"
    " + (SELECT count(*) FROM pg_namespace WHERE nspname NOT IN ('public', 'information_schema')"
    "   AND nspname !~ '^pg_')";

/* Tables as backup_create() names them, with their parts for quoting. */
static const char SQL_TABLES[] = "SELECT format('%I.%I', n.nspname, c.relname), n.nspname, c.relname FROM pg_class c"
                                 " JOIN pg_namespace n ON n.oid = c.relnamespace"
                                 " WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema')"
                                 " AND n.nspname !~ '^pg_(toast|temp)'";

/* conninfo with its dbname replaced: a key=value string (malloc'ed), password kept. */
static char *conninfo_for(const char *conninfo, const char *dbname)
{
    PQconninfoOption *opts = PQconninfoParse(conninfo, NULL);
    if (opts == NULL)
        return NULL;
    size_t cap = 256, len = 0;
    char *s = malloc(cap);
    if (s == NULL)
        abort();
    s[0] = '\0';
    for (PQconninfoOption *o = opts; o->keyword != NULL; o++) {
        const char *v = strcmp(o->keyword, "dbname") == 0 ? dbname : o->val;
        if (v == NULL || v[0] == '\0')
            continue;
        size_t need = len + strlen(o->keyword) + 2 * strlen(v) + 8;
        if (need > cap && (s = realloc(s, cap = need * 2)) == NULL)
            abort();
        len += (size_t)sprintf(s + len, "%s%s='", len > 0 ? " " : "", o->keyword);
        for (; *v != '\0'; v++) {
            if (*v == '\'' || *v == '\\')
                s[len++] = '\\';
            s[len++] = *v;
        }
        s[len++] = '\'';
        s[len] = '\0';
    }
    PQconninfoFree(opts);
    return s;
}

/* The database a connection string names: dbname, else the user (libpq's default). NULL when neither. */
static char *database_of(const char *conninfo)
{
    PQconninfoOption *opts = PQconninfoParse(conninfo, NULL);
    char *db = NULL, *user = NULL;
    for (PQconninfoOption *o = opts; o != NULL && o->keyword != NULL; o++) {
        if (strcmp(o->keyword, "dbname") == 0 && o->val != NULL && o->val[0] != '\0')
            db = o->val;
        if (strcmp(o->keyword, "user") == 0 && o->val != NULL && o->val[0] != '\0')
            user = o->val;
    }
    char *r = db != NULL ? strdup(db) : user != NULL ? strdup(user) : NULL;
    PQconninfoFree(opts);
    return r;
}

static PGconn *connect_to(const char *conninfo, const char *dbname)
{
    char *ci = conninfo_for(conninfo, dbname);
    if (ci == NULL) {
        fprintf(stderr, WHO ": CLIENTELE_DATABASE_URL is not a valid connection string\n");
        return NULL;
    }
    PGconn *c = PQconnectdb(ci);
    free(ci);
    if (PQstatus(c) != CONNECTION_OK) {
        fprintf(stderr, WHO ": cannot connect to database %s: %s", dbname, PQerrorMessage(c));
        PQfinish(c);
        return NULL;
    }
    PQsetNoticeProcessor(c, NULL, NULL);
    return c;
}

/* Runs a statement; 1 when it succeeded, else prints the server's message and returns 0. */
static int run(PGconn *c, const char *sql, int n, const char *const *params, PGresult **out)
{
    PGresult *r = PQexecParams(c, sql, n, NULL, params, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        fprintf(stderr, WHO ": %s", PQerrorMessage(c));
        PQclear(r);
        return 0;
    }
    if (out != NULL)
        *out = r;
    else
        PQclear(r);
    return 1;
}

/* The owner must exist; other roles the dump names are created NOLOGIN. 0, or 1 (told why). */
static int ensure_roles(PGconn *c, const json_t *manifest)
{
    const char *owner = json_string_value(json_object_get(manifest, "owner"));
    regex_t plain;
    regcomp(&plain, "^[a-z_][a-z0-9_]{0,62}$", REG_EXTENDED | REG_NOSUB);
    size_t i;
    json_t *v;
    int rc = 0;
    json_array_foreach(json_object_get(manifest, "roles"), i, v)
    {
        const char *role = json_string_value(v);
        if (role == NULL)
            continue;
        const char *p[] = {role};
        PGresult *r;
        /* to_regrole takes a name as regrole prints it (quoted when it must be). */
        if (!run(c, "SELECT to_regrole($1) IS NOT NULL", 1, p, &r)) {
            rc = 1;
            break;
        }
        int exists = strcmp(PQgetvalue(r, 0, 0), "t") == 0;
        PQclear(r);
        if (exists)
            continue;
        if (owner != NULL && strcmp(role, owner) == 0) {
            fprintf(stderr,
                    WHO ": role %s, which owns the objects of the backup, does not exist on this server; create it"
                        " (CREATE ROLE %s LOGIN CREATEDB CREATEROLE) and restore again, as it or as a superuser\n",
                    role, role);
            rc = 1;
            break;
        }
        if (regexec(&plain, role, 0, NULL, 0) != 0) {
            fprintf(stderr, WHO ": the backup grants rights to role %s, which does not exist here; create it first\n",
                    role);
            rc = 1;
            break;
        }
        char *ident = PQescapeIdentifier(c, role, strlen(role)), sql[256];
        snprintf(sql, sizeof(sql), "CREATE ROLE %s NOLOGIN", ident);
        PQfreemem(ident);
        if (!run(c, sql, 0, NULL, NULL)) {
            rc = 1;
            break;
        }
        printf("created role %s (NOLOGIN; give it a password with clientele-admin role-password if it logs in)\n",
               role);
    }
    regfree(&plain);
    return rc;
}

/*
 * Makes `name` an empty database: created when missing; when it exists and
 * holds anything, refused unless force, which drops and creates it. 0, or 1
 * (told why).
 */
static int prepare_database(const char *conninfo, PGconn *maint, const char *name, int force)
{
    const char *p[] = {name};
    PGresult *r;
    if (!run(maint, "SELECT 1 FROM pg_database WHERE datname = $1", 1, p, &r))
        return 1;
    int exists = PQntuples(r) == 1;
    PQclear(r);
    if (exists && !force) {
        PGconn *c = connect_to(conninfo, name);
        if (c == NULL || !run(c, SQL_OBJECTS, 0, NULL, &r)) {
            PQfinish(c);
            return 1;
        }
        long long objects = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
        PQclear(r);
        PQfinish(c);
        if (objects > 0) {
            fprintf(stderr,
                    WHO ": database %s is not empty (%lld objects); restore into a new one with --database NAME, or"
                        " replace it with --force\n",
                    name, objects);
            return 1;
        }
        return 0;
    }
    char *ident = PQescapeIdentifier(maint, name, strlen(name)), sql[512];
    if (ident == NULL)
        return 1;
    int rc = 1;
    if (exists) {
        snprintf(sql, sizeof(sql), "DROP DATABASE %s WITH (FORCE)", ident);
        if (!run(maint, sql, 0, NULL, NULL))
            goto Exit;
        printf("dropped database %s (--force)\n", name);
    }
    snprintf(sql, sizeof(sql), "CREATE DATABASE %s TEMPLATE template0", ident);
    if (!run(maint, sql, 0, NULL, NULL))
        goto Exit;
    printf("created database %s\n", name);
    rc = 0;
Exit:
    PQfreemem(ident);
    return rc;
}

/* Every table the manifest lists, counted in the restored database. 0 when all agree, else 1 (told which). */
static int compare_counts(PGconn *c, const json_t *manifest, int64_t *rows)
{
    PGresult *list;
    if (!run(c, SQL_TABLES, 0, NULL, &list))
        return 1;
    const json_t *want = json_object_get(manifest, "tables");
    int rc = 0, found = 0;
    *rows = 0;
    for (int i = 0; i < PQntuples(list) && rc == 0; i++) {
        const json_t *w = json_object_get(want, PQgetvalue(list, i, 0));
        if (w == NULL)
            continue; /* made by the restore's migrations, or not backed up (scratch tables) */
        found++;
        char *schema = PQescapeIdentifier(c, PQgetvalue(list, i, 1), (size_t)PQgetlength(list, i, 1));
        char *table = PQescapeIdentifier(c, PQgetvalue(list, i, 2), (size_t)PQgetlength(list, i, 2));
        char sql[512];
        snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s.%s", schema, table);
        PQfreemem(schema);
        PQfreemem(table);
        PGresult *r;
        if (!run(c, sql, 0, NULL, &r)) {
            rc = 1;
            break;
        }
        long long got = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
        PQclear(r);
        *rows += got;
        if (got != json_integer_value(w)) {
            fprintf(stderr,
                    WHO ": table %s holds %lld rows after the restore, but the manifest says %" JSON_INTEGER_FORMAT
                        "\n",
                    PQgetvalue(list, i, 0), got, json_integer_value(w));
            rc = 1;
        }
    }
    if (rc == 0 && (size_t)found != json_object_size(want)) {
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)want, k, v)
        {
            int seen = 0;
            for (int i = 0; i < PQntuples(list) && !seen; i++)
                seen = strcmp(PQgetvalue(list, i, 0), k) == 0;
            if (!seen) {
                fprintf(stderr, WHO ": table %s of the manifest is missing after the restore\n", k);
                rc = 1;
                break;
            }
        }
    }
    PQclear(list);
    return rc;
}

int admin_restore(const cfg_t *cfg, int argc, char **argv)
{
    const char *file = NULL, *dbname = NULL, *schema = "schema";
    int force = 0;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--force") == 0)
            force = 1;
        else if (strcmp(argv[i], "--database") == 0 && i + 1 < argc && argv[i + 1][0] != '\0')
            dbname = argv[++i];
        else if (strcmp(argv[i], "--schema") == 0 && i + 1 < argc && argv[i + 1][0] != '\0')
            schema = argv[++i];
        else if (argv[i][0] != '-' && file == NULL)
            file = argv[i];
        else {
            fprintf(stderr, "usage: clientele-admin restore FILE [--database NAME] [--force] [--schema DIR]\n");
            return 2;
        }
    }
    if (file == NULL) {
        fprintf(stderr, "usage: clientele-admin restore FILE [--database NAME] [--force] [--schema DIR]\n");
        return 2;
    }
    char *target = dbname != NULL ? strdup(dbname) : database_of(cfg->database_url);
    if (target == NULL) {
        fprintf(stderr, WHO ": CLIENTELE_DATABASE_URL names no database; name one with --database NAME\n");
        return 2;
    }
    if (strlen(target) > 63) {
        fprintf(stderr, WHO ": a database name has at most 63 bytes\n");
        free(target);
        return 2;
    }

    int rc = 1;
    char err[1024];
    PGconn *maint = NULL, *c = NULL;
    char *ci = NULL;
    backup_file_t f;
    if (backup_open(file, &f, err, sizeof(err)) != 0 || backup_check_sha(file, &f, NULL, NULL, err, sizeof(err)) != 0) {
        fprintf(stderr, WHO ": %s refused: %s\n", file, err);
        goto Exit;
    }
    /* The maintenance database: postgres, or template1 where that was dropped. */
    if ((maint = connect_to(cfg->database_url, "postgres")) == NULL)
        maint = connect_to(cfg->database_url, "template1");
    if (maint == NULL || ensure_roles(maint, f.manifest) != 0 ||
        prepare_database(cfg->database_url, maint, target, force) != 0)
        goto Exit;
    printf("restoring %s (made %s, schema %s) into database %s\n", file,
           json_string_value(json_object_get(f.manifest, "created_at")),
           json_string_value(json_object_get(f.manifest, "schema_version")), target);
    fflush(stdout);
    if (backup_load(file, &f, cfg->database_url, target, NULL, NULL, err, sizeof(err)) != 0) {
        fprintf(stderr, WHO ": %s; nothing was restored (database %s is empty)\n", err, target);
        goto Exit;
    }
    int64_t rows;
    if ((c = connect_to(cfg->database_url, target)) == NULL)
        goto Exit;
    if (compare_counts(c, f.manifest, &rows) != 0) {
        fprintf(stderr, WHO ": database %s does not hold what the backup says; it is left as restored for a look\n",
                target);
        goto Exit;
    }
    printf("restored %zu tables, %" PRId64 " rows, each table's count as in the manifest\n",
           json_object_size(json_object_get(f.manifest, "tables")), rows);
    fflush(stdout);
    PQfinish(c);
    c = NULL;
    ci = conninfo_for(cfg->database_url, target);
    if (migrate_apply(ci, schema, WHO) != 0) {
        fprintf(stderr,
                WHO ": the migrations after the backup's schema failed; database %s holds the backup as it was\n",
                target);
        goto Exit;
    }
    printf("database %s is ready\n", target);
    rc = 0;
Exit:
    backup_file_free(&f);
    PQfinish(c);
    PQfinish(maint);
    free(ci);
    free(target);
    return rc;
}
