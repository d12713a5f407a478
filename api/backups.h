/*
 * api/backups.h - /v1/admin/backups: backup files and backup runs (see backups.c).
 */
#ifndef CLIENTELE_API_BACKUPS_H
#define CLIENTELE_API_BACKUPS_H

#include "api.h"

int backups_list(api_req_t *ar);
int backups_create(api_req_t *ar);

#endif
