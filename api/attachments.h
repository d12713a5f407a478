/*
 * api/attachments.h - files attached to the records of every engine
 * resource.
 *
 *   POST   /v1/<collection>/{id}/attachments   upload (the body is the file)
 *   GET    /v1/<collection>/{id}/attachments   list, newest first
 *   GET    /v1/attachments/{id}                the content (ETag, ranges)
 *   DELETE /v1/attachments/{id}
 *
 * An attachment has the scope of its record: listing and downloading need
 * the record's read scope, uploading and deleting its update scope, under
 * the module of the record's resource. Contents are kept outside
 * PostgreSQL by api/storage.c (content-addressed by SHA-256); the metadata
 * is a row of `attachments` (schema/0017_attachments.sql).
 *
 * Ownership: attachments_open() builds the statements, opens the store and
 * starts the store's I/O threads before the loops start; each loop thread
 * makes its own offload client on that pool (api_thread_t.storage);
 * attachments_close() runs after every loop thread has stopped.
 */
#ifndef CLIENTELE_API_ATTACHMENTS_H
#define CLIENTELE_API_ATTACHMENTS_H

#include "api.h"

#define ATTACHMENTS_IO_THREADS 4      /* file reads and writes waiting on the disk, and hashing */
#define ATTACHMENTS_IO_QUEUE_CAP 1024 /* queued file operations per process; more are 503 */

typedef struct st_attachments_t attachments_t;

/*
 * Builds the statements for every engine resource of e, opens the store at
 * cfg->storage_dir and starts its I/O threads. Blocking (start-up). NULL
 * with a sentence in err on failure (the store cannot be created or
 * written, a description does not fit).
 */
attachments_t *attachments_open(const cfg_t *cfg, const struct st_engine_t *e, char *err, size_t errlen);
/* After every loop thread's client of the I/O pool is destroyed. */
void attachments_close(attachments_t *a);
/* The store's I/O pool, for the loop threads' clients. */
offload_pool_t *attachments_io_pool(attachments_t *a);

/* Handlers: the record's collection routes name the resource (ENGINE_ROUTES); the others serve every resource. */
int attachments_upload(api_req_t *ar);
int attachments_list(api_req_t *ar);
int attachments_download(api_req_t *ar);
int attachments_delete(api_req_t *ar);

#endif
