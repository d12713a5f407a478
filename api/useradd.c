/*
 * api/useradd.c - `clientele-api user-add`: creates a user from the command line.
 *
 * The way to create the first administrator of a new installation (and the
 * users of integration tests). Blocking: it runs before any loop exists.
 * The password is read from standard input (one line) so that it never
 * appears in a process list or shell history; it is hashed with the same
 * argon2id parameters as the API uses.
 */
#include <stdio.h>
#include <string.h>

#include <libpq-fe.h>

#include "api.h"

static const char SQL_ADD[] =
    "INSERT INTO users (email, name, password_hash, role_id, team_id)"
    " SELECT $1, $2, $3, r.id, (SELECT id FROM teams WHERE name = $5)"
    " FROM roles r WHERE r.name = $4"
    " AND ($5::text IS NULL OR EXISTS (SELECT 1 FROM teams WHERE name = $5))"
    " RETURNING id";

int api_useradd(const char *conninfo, int argc, char **argv)
{
    if (argc < 3 || argc > 4) {
        fprintf(stderr, "usage: clientele-api user-add EMAIL NAME ROLE [TEAM]   (password on standard input)\n");
        return 2;
    }
    char pw[1100];
    if (fgets(pw, sizeof(pw), stdin) == NULL) {
        fprintf(stderr, "clientele-api user-add: no password on standard input\n");
        return 2;
    }
    pw[strcspn(pw, "\r\n")] = '\0';
    if (strlen(pw) < 10 || strlen(pw) > 1024) {
        fprintf(stderr, "clientele-api user-add: the password must have 10 to 1024 characters\n");
        return 2;
    }
    char hash[256];
    kdf_params_t p = {.t_cost = 2, .m_cost_kib = 19456, .parallelism = 1};
    int ret = kdf_hash_now(&p, pw, strlen(pw), hash, sizeof(hash));
    explicit_bzero(pw, sizeof(pw));
    if (ret != 0) {
        fprintf(stderr, "clientele-api user-add: hashing failed\n");
        return 1;
    }
    PGconn *c = PQconnectdb(conninfo);
    if (PQstatus(c) != CONNECTION_OK) {
        fprintf(stderr, "clientele-api user-add: cannot connect: %s", PQerrorMessage(c));
        PQfinish(c);
        return 1;
    }
    const char *params[] = {argv[0], argv[1], hash, argv[2], argc == 4 ? argv[3] : NULL};
    PGresult *r = PQexecParams(c, SQL_ADD, 5, NULL, params, NULL, NULL, 0);
    int rc = 0;
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        fprintf(stderr, "clientele-api user-add: %s", PQresultErrorMessage(r));
        rc = 1;
    } else if (PQntuples(r) != 1) {
        fprintf(stderr, "clientele-api user-add: no role \"%s\"%s%s\n", argv[2], argc == 4 ? " or no team " : "",
                argc == 4 ? argv[3] : "");
        rc = 1;
    } else {
        printf("%s\n", PQgetvalue(r, 0, 0));
    }
    PQclear(r);
    PQfinish(c);
    return rc;
}
