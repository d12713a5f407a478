/*
 * common/backup.h - backup files: writing, listing, checking and loading them.
 *
 * A backup is one file, <dir>/clientele-YYYYMMDD-HHMMSS.backup (UTC), a
 * POSIX tar archive of two members, in this order:
 *   clientele.dump  pg_dump --format=custom of the whole database;
 *   manifest.json   what the dump holds: format, time, database, server and
 *                   schema version (the last migration applied), owner and
 *                   roles named, row counts per table, and the dump's size
 *                   and SHA-256.
 * `tar xf` gives both back, and pg_restore reads the dump as any other.
 *
 * backup_create() writes one from a single snapshot: a REPEATABLE READ
 * transaction exports its snapshot, counts every table's rows in it, and
 * pg_dump --snapshot dumps exactly that state while the transaction stays
 * open. pg_dump's output is hashed and written into the archive as it
 * arrives; the file is written under a hidden name, fsync'ed and linked into
 * place, so a visible name only ever holds a complete backup. Then older
 * files beyond `keep` are removed (never the newest). Tables a running RFM
 * write stages or retires (customer_analytics_next_*, _retired_*) are left
 * out: they are scratch, and may be dropped while the dump runs.
 *
 * pg_dump and pg_restore run as child processes (posix_spawn with argument
 * vectors, never a shell), found on PATH; the connection's password goes to
 * them in PGPASSWORD, never on their command line.
 *
 * Everything here blocks: it runs in clientele-admin, on the worker's job
 * thread, and on the API's offload threads (listing only), never on a loop.
 * Functions return 0 or a negative err_t with one sentence in err:
 * ERR_INVALID for a file that is not a sound backup or a backup that cannot
 * be made as configured (no room), ERR_UNAVAILABLE when the database cannot
 * be reached, ERR_CONFLICT when the file name is taken, ERR_INTERNAL for
 * anything else (a failed pg_dump, an I/O error).
 */
#ifndef CLIENTELE_COMMON_BACKUP_H
#define CLIENTELE_COMMON_BACKUP_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#define BACKUP_FORMAT "clientele-backup/1"
#define BACKUP_DUMP_MEMBER "clientele.dump"
#define BACKUP_MANIFEST_MEMBER "manifest.json"
#define BACKUP_NAME_SIZE 33           /* "clientele-YYYYMMDD-HHMMSS.backup" and a NUL */
#define BACKUP_MANIFEST_MAX (4 << 20) /* the largest manifest read back */
#define BACKUP_LIST_MAX 1000          /* the most files backup_list() describes */
#define BACKUP_SPACE_FACTOR 1.2       /* free space needed, as a multiple of the last backup's size */

/*
 * Called at least every 100 ms while a backup, check or load works, with
 * the bytes handled so far. Returns 0 to go on; anything else stops the
 * work, which then returns that value (the worker's job stops this way).
 */
typedef int (*backup_tick_fn)(void *arg, uint64_t bytes);

typedef struct st_backup_conf_t {
    const char *conninfo; /* the database (URL or key=value); its password reaches pg_dump in PGPASSWORD */
    const char *role;     /* NULL or "": the login role; else SET ROLE for the session and pg_dump --role */
    const char *dir;      /* created when missing */
    int keep;             /* files kept after a backup, the newest; at least 1 */
    backup_tick_fn tick;  /* may be NULL */
    void *arg;
} backup_conf_t;

typedef struct st_backup_result_t {
    char name[BACKUP_NAME_SIZE];
    char path[4200];
    uint64_t size;   /* of the file */
    char sha256[65]; /* of the dump member, lower-case hex */
    int64_t tables, rows;
    json_t *removed; /* names of the older files removed, newest first (owned: json_decref) */
} backup_result_t;

/*
 * Writes a backup of conf->conninfo into conf->dir, then prunes to
 * conf->keep files. Fails early, writing nothing, when the file system's
 * free space is below BACKUP_SPACE_FACTOR times the size of the newest
 * backup there. On success fills out (out->removed is the caller's).
 */
int backup_create(const backup_conf_t *conf, backup_result_t *out, char *err, size_t errlen);

/* A backup file opened for reading: where its members lie, and its manifest. */
typedef struct st_backup_file_t {
    uint64_t file_size;
    uint64_t dump_offset, dump_size;
    json_t *manifest; /* owned; checked to have the expected members and types */
} backup_file_t;

/*
 * Reads the archive's headers (two members, as above, each inside the file,
 * then the end of the archive and nothing but zeros after it) and its
 * manifest. Reads nothing of the dump: a truncated or altered dump passes
 * here and fails backup_check_sha(). 0, or ERR_INVALID saying what is wrong.
 */
int backup_open(const char *path, backup_file_t *f, char *err, size_t errlen);
void backup_file_free(backup_file_t *f);

/* Hashes the dump member and compares it with the manifest's SHA-256. */
int backup_check_sha(const char *path, const backup_file_t *f, backup_tick_fn tick, void *arg, char *err,
                     size_t errlen);

/*
 * Everything short of restoring: backup_open(), backup_check_sha(), then
 * pg_restore reads the whole archive (pg_restore --data-only to a pipe) and
 * every table's rows are counted and compared with the manifest. Needs no
 * database. f is filled as backup_open() fills it (free it in any case).
 */
int backup_verify(const char *path, backup_file_t *f, backup_tick_fn tick, void *arg, char *err, size_t errlen);

/*
 * Runs pg_restore --single-transaction --exit-on-error into the database of
 * conninfo (whose dbname is replaced by `dbname` when not NULL), feeding it
 * the dump member. Call backup_check_sha() first. On failure err holds what
 * pg_restore said last.
 */
int backup_load(const char *path, const backup_file_t *f, const char *conninfo, const char *dbname, backup_tick_fn tick,
                void *arg, char *err, size_t errlen);

/*
 * The backups of dir, newest first, at most BACKUP_LIST_MAX: an array of
 * {"name", "size", "created_at", "manifest"} (manifest null, and "problem"
 * saying why, when it cannot be read). A missing dir is an empty list.
 * NULL with err when dir cannot be read.
 */
json_t *backup_list(const char *dir, char *err, size_t errlen);

/*
 * Removes the backups of dir beyond the `keep` newest (never the newest,
 * whatever keep says), and hidden partial files older than a day (left by
 * a crash). The names removed are appended to `removed` (may be NULL).
 * Returns how many could not be removed (each logged).
 */
int backup_prune(const char *dir, int keep, json_t *removed);

/* --- pure helpers, exposed for tests -------------------------------------------------- */

/* 1 when name is exactly clientele-YYYYMMDD-HHMMSS.backup with a real date and time. */
int backup_name_ok(const char *name);
/* The name for a backup made at unix time t (UTC) into out. */
void backup_name_for(int64_t t, char out[BACKUP_NAME_SIZE]);
/* The time a valid name stands for, as RFC 3339 UTC with microseconds, into out (at least 32 bytes). */
void backup_name_time(const char *name, char *out, size_t len);
/* 1 when `free_bytes` is enough for a backup after one of `last_size` bytes (0: no backup yet). */
int backup_space_ok(uint64_t free_bytes, uint64_t last_size);

/* A ustar header for a regular file (base-256 size beyond 8 GiB). name: at most 99 bytes. */
void backup_tar_header(char hdr[512], const char *name, uint64_t size, int64_t mtime);
/* Parses a header: 1 for a member (name, size filled), 0 for an all-zero block, -1 when malformed. */
int backup_tar_parse(const char hdr[512], char name[101], uint64_t *size);

/*
 * Counts the rows of every COPY block in pg_restore's SQL output, fed in
 * pieces of any size: "COPY <table> (...) FROM stdin;", one line per row,
 * then "\.". Tables by the name pg_restore prints (schema.table, quoted as
 * needed: the form format('%I.%I') gives).
 */
typedef struct st_backup_counter_t {
    json_t *counts; /* table -> rows (owned) */
    char *line;     /* the current line's first bytes */
    size_t len;     /* the current line's length so far */
    int in_copy;
    char table[512];
    int64_t rows;
    char error[160]; /* set once something malformed was seen */
} backup_counter_t;

void backup_counter_init(backup_counter_t *c);
void backup_counter_feed(backup_counter_t *c, const char *data, size_t len);
/* 0 when the output ended cleanly (outside a COPY block, nothing malformed), else -1 with c->error. */
int backup_counter_finish(backup_counter_t *c);
void backup_counter_free(backup_counter_t *c);

#endif
