/*
 * api/storage.h - file contents outside PostgreSQL, addressed by SHA-256.
 *
 * A blob lives at <dir>/<aa>/<bb>/<sha256 in hex> (aa and bb: the hash's
 * first two bytes), written once and never changed: a temporary file in
 * <dir>/tmp is written, fsync'ed and renamed into place, so a blob's path
 * only ever names complete content, and the same content uploaded twice is
 * stored once (the second put finds the file and keeps it). Nothing here
 * knows about attachments or records: metadata, scope and sharing are the
 * caller's (api/attachments.c). Deleting a blob is not offered: several
 * attachments may share one.
 *
 * Every file operation blocks, so none runs on an event loop: storage_put()
 * and the reader run their work on an offload pool (api/offload.h) and call
 * back on the submitting loop thread. storage_open() blocks and runs once
 * at start-up.
 *
 * Ownership: the storage_t is created before the loops start and freed
 * after they stop; it is read-only meanwhile. A reader belongs to whoever
 * opened it until storage_reader_close().
 */
#ifndef CLIENTELE_API_STORAGE_H
#define CLIENTELE_API_STORAGE_H

#include <stddef.h>
#include <stdint.h>

#include "offload.h"

#define STORAGE_SHA_HEX 65         /* 64 hex digits and a NUL */
#define STORAGE_CHUNK (256 * 1024) /* the most one read returns */

typedef struct st_storage_t storage_t;

/*
 * Opens (creating it and its tmp/ directory if needed) the store at dir and
 * checks that a file can be created there; removes temporary files older
 * than an hour (left by a crash). Blocking. NULL with a sentence in err on
 * failure.
 */
storage_t *storage_open(const char *dir, char *err, size_t errlen);
void storage_close(storage_t *st);

/* The path of a blob into buf (NUL-terminated, truncated to len). */
void storage_blob_path(const storage_t *st, const char *sha, char *buf, size_t len);
/* 1 when s is 64 lower-case hex digits. */
int storage_sha_ok(const char *s);

/*
 * The blocking put behind storage_put(), for pool threads and tests:
 * hashes bytes, and stores them unless a blob of that hash and size is
 * there already (then its modification time is brought up to date).
 * Writes the hash into sha. Returns 0, ERR_UNAVAILABLE when the file
 * system is full, or ERR_INTERNAL (logged with the system's reason).
 */
int storage_put_blocking(const storage_t *st, const void *bytes, size_t len, char sha[STORAGE_SHA_HEX]);

/*
 * Called on the loop thread with the put's outcome: err 0 and the hash, or
 * an error as storage_put_blocking returns it. cancelled is 1 when the
 * client was destroyed (the server is stopping) before the put ran or was
 * delivered: then nothing is to be answered, only released.
 */
typedef void (*storage_put_cb)(void *data, int err, const char *sha, int cancelled);

/*
 * Stores bytes off the loop. With copy set the bytes are copied first (the
 * caller's buffer may go away meanwhile); otherwise they must stay valid
 * until cb runs. Returns 0 and cb runs later, or ERR_UNAVAILABLE (the pool's
 * queue is full) and cb is never called.
 */
int storage_put(offload_client_t *oc, const storage_t *st, const void *bytes, size_t len, int copy, storage_put_cb cb,
                void *data);

/* --- reading ---------------------------------------------------------------- */

typedef struct st_storage_reader_t storage_reader_t;

/* The open's outcome: err 0 and the blob's size, ERR_NOT_FOUND, or ERR_INTERNAL (logged). */
typedef void (*storage_open_cb)(void *data, int err, uint64_t size, int cancelled);
/* A read's outcome: err 0 and n bytes at buf (valid until the next read or the close), or ERR_INTERNAL. */
typedef void (*storage_read_cb)(void *data, int err, const char *buf, size_t n, int cancelled);

/*
 * Opens the blob `sha` off the loop; cb runs later on this loop thread.
 * Returns the reader (the caller's, even before cb runs), or NULL when the
 * pool's queue is full (cb is never called).
 */
storage_reader_t *storage_reader_open(offload_client_t *oc, const storage_t *st, const char *sha, storage_open_cb cb,
                                      void *data);
/*
 * Reads min(len, STORAGE_CHUNK) bytes at off (all of them must exist) off
 * the loop, after a successful open and with no other read in flight.
 * Returns 0 and cb runs later, or ERR_UNAVAILABLE (queue full; cb is never
 * called: retry later).
 */
int storage_reader_read(storage_reader_t *r, uint64_t off, size_t len, storage_read_cb cb, void *data);
/*
 * Ends the reader. A pending open or read then never calls back; the
 * reader's memory is freed once that work is done.
 */
void storage_reader_close(storage_reader_t *r);

#endif
