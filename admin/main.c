/*
 * admin/main.c - clientele-admin: backups and database roles from the command line.
 *
 *   clientele-admin backup              a backup now, into CLIENTELE_BACKUP_DIR, keeping CLIENTELE_BACKUP_KEEP
 *   clientele-admin verify FILE         checks a backup without restoring it
 *   clientele-admin restore FILE [...]  restores a backup into an empty database (admin/restore.c)
 *   clientele-admin role-password ROLE  gives the API's or the worker's role LOGIN and a password (on stdin)
 *
 * The file format and the work are common/backup.c's, shared with the
 * worker (which makes the daily backups); this file parses arguments and
 * reports. It connects with CLIENTELE_DATABASE_URL, which for these
 * commands names the database owner, as for `clientele-api migrate`.
 */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include <libpq-fe.h>

#include "admin.h"
#include "common/backup.h"
#include "common/err.h"
#include "common/log.h"

#define PASSWORD_MIN 16
#define PASSWORD_MAX 1024

static int usage(void)
{
    fprintf(stderr, "usage: clientele-admin backup\n"
                    "       clientele-admin verify FILE\n"
                    "       clientele-admin restore FILE [--database NAME] [--force] [--schema DIR]\n"
                    "       clientele-admin role-password ROLE   (the password on standard input)\n"
                    "Configured by CLIENTELE_* variables; CLIENTELE_DATABASE_URL names the database owner.\n");
    return 2;
}

static int cmd_backup(const cfg_t *cfg)
{
    backup_conf_t conf = {.conninfo = cfg->database_url, .dir = cfg->backup_dir, .keep = cfg->backup_keep};
    backup_result_t res;
    char err[1024];
    if (backup_create(&conf, &res, err, sizeof(err)) != 0) {
        fprintf(stderr, "clientele-admin backup: %s\n", err);
        return 1;
    }
    printf("wrote %s: %" PRIu64 " bytes, %" PRId64 " tables, %" PRId64 " rows, sha256 %s\n", res.path, res.size,
           res.tables, res.rows, res.sha256);
    size_t i;
    json_t *name;
    json_array_foreach(res.removed, i, name)
    {
        printf("removed %s/%s (CLIENTELE_BACKUP_KEEP is %d)\n", cfg->backup_dir, json_string_value(name),
               cfg->backup_keep);
    }
    json_decref(res.removed);
    return 0;
}

static int cmd_verify(int argc, char **argv)
{
    if (argc != 1)
        return usage();
    backup_file_t f;
    char err[1024];
    int r = backup_verify(argv[0], &f, NULL, NULL, err, sizeof(err));
    if (r != 0) {
        fprintf(stderr, "clientele-admin verify: %s refused: %s\n", argv[0], err);
        backup_file_free(&f);
        return 1;
    }
    const json_t *m = f.manifest;
    printf("%s is sound: %zu tables, %" JSON_INTEGER_FORMAT " rows, schema %s, made %s from database %s;"
           " sha256 %s\n",
           argv[0], json_object_size(json_object_get(m, "tables")), json_integer_value(json_object_get(m, "rows")),
           json_string_value(json_object_get(m, "schema_version")), json_string_value(json_object_get(m, "created_at")),
           json_string_value(json_object_get(m, "database")),
           json_string_value(json_object_get(json_object_get(m, "dump"), "sha256")));
    backup_file_free(&f);
    return 0;
}

/*
 * LOGIN and a password for one of the roles the services act as. The
 * password is hashed here (SCRAM-SHA-256, as the server would), so it never
 * reaches the server's logs in clear.
 */
static int cmd_role_password(const cfg_t *cfg, int argc, char **argv)
{
    if (argc != 1)
        return usage();
    const char *role = argv[0];
    if (strcmp(role, cfg->db_role) != 0 && strcmp(role, cfg->worker_db_role) != 0) {
        fprintf(stderr, "clientele-admin role-password: %s is not the API's role (%s) or the worker's (%s)\n", role,
                cfg->db_role, cfg->worker_db_role);
        return 2;
    }
    char pw[PASSWORD_MAX + 8];
    if (fgets(pw, sizeof(pw), stdin) == NULL) {
        fprintf(stderr, "clientele-admin role-password: no password on standard input\n");
        return 2;
    }
    pw[strcspn(pw, "\r\n")] = '\0';
    if (strlen(pw) < PASSWORD_MIN || strlen(pw) > PASSWORD_MAX) {
        explicit_bzero(pw, sizeof(pw));
        fprintf(stderr, "clientele-admin role-password: the password must have %d to %d characters\n", PASSWORD_MIN,
                PASSWORD_MAX);
        return 2;
    }
    PGconn *c = PQconnectdb(cfg->database_url);
    if (PQstatus(c) != CONNECTION_OK) {
        explicit_bzero(pw, sizeof(pw));
        fprintf(stderr, "clientele-admin role-password: cannot connect: %s", PQerrorMessage(c));
        PQfinish(c);
        return 1;
    }
    int rc = 1;
    const char *params[] = {role};
    PGresult *r = PQexecParams(c, "SELECT rolsuper FROM pg_roles WHERE rolname = $1", 1, NULL, params, NULL, NULL, 0);
    char *verifier = NULL, *ident = NULL, *lit = NULL;
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        fprintf(stderr, "clientele-admin role-password: %s", PQerrorMessage(c));
        goto Exit;
    }
    if (PQntuples(r) == 0) {
        fprintf(stderr, "clientele-admin role-password: role %s does not exist; run clientele-api migrate first\n",
                role);
        goto Exit;
    }
    if (strcmp(PQgetvalue(r, 0, 0), "t") == 0) {
        fprintf(stderr, "clientele-admin role-password: role %s is a superuser; it must not be\n", role);
        goto Exit;
    }
    verifier = PQencryptPasswordConn(c, pw, role, "scram-sha-256");
    if (verifier == NULL) {
        fprintf(stderr, "clientele-admin role-password: cannot hash the password: %s", PQerrorMessage(c));
        goto Exit;
    }
    ident = PQescapeIdentifier(c, role, strlen(role));
    lit = PQescapeLiteral(c, verifier, strlen(verifier));
    if (ident == NULL || lit == NULL) {
        fprintf(stderr, "clientele-admin role-password: %s", PQerrorMessage(c));
        goto Exit;
    }
    char sql[512];
    snprintf(sql, sizeof(sql), "ALTER ROLE %s WITH LOGIN PASSWORD %s", ident, lit);
    PQclear(r);
    r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        fprintf(stderr, "clientele-admin role-password: %s", PQerrorMessage(c));
        goto Exit;
    }
    printf("role %s may log in with the new password\n", role);
    rc = 0;
Exit:
    explicit_bzero(pw, sizeof(pw));
    PQfreemem(verifier);
    PQfreemem(ident);
    PQfreemem(lit);
    PQclear(r);
    PQfinish(c);
    return rc;
}

int main(int argc, char **argv)
{
    cfg_t cfg;
    char err[512];
    if (argc < 2)
        return usage();
    if (cfg_load(&cfg, cfg_getenv, NULL, err, sizeof(err)) != 0) {
        fprintf(stderr, "clientele-admin: %s\n", err);
        return 2;
    }
    log_init(cfg.log_level, "admin");
    /* pg_dump or pg_restore may stop reading early; their exit status says why, a SIGPIPE must not kill us. */
    signal(SIGPIPE, SIG_IGN);
    int rc;
    if (strcmp(argv[1], "backup") == 0 && argc == 2)
        rc = cmd_backup(&cfg);
    else if (strcmp(argv[1], "verify") == 0)
        rc = cmd_verify(argc - 2, argv + 2);
    else if (strcmp(argv[1], "restore") == 0)
        rc = admin_restore(&cfg, argc - 2, argv + 2);
    else if (strcmp(argv[1], "role-password") == 0)
        rc = cmd_role_password(&cfg, argc - 2, argv + 2);
    else
        rc = usage();
    cfg_free(&cfg);
    return rc;
}
