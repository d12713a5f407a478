/*
 * admin/admin.h - the commands of clientele-admin (see main.c).
 *
 * Each command is blocking, configured by the CLIENTELE_* variables (the
 * database through CLIENTELE_DATABASE_URL: the owner's, as for migrations),
 * prints what it did on stdout and why it failed on stderr, and returns the
 * process exit status: 0 done, 1 failed or refused, 2 bad usage.
 */
#ifndef CLIENTELE_ADMIN_ADMIN_H
#define CLIENTELE_ADMIN_ADMIN_H

#include "common/cfg.h"

/* admin/restore.c: `restore FILE [--database NAME] [--force] [--schema DIR]`. */
int admin_restore(const cfg_t *cfg, int argc, char **argv);

#endif
