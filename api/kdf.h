/*
 * api/kdf.h - argon2id password hashing on a thread pool, off the event loop.
 *
 * Hashing a password takes tens of milliseconds by design, so it never runs
 * on an h2o loop thread. main.c creates one kdf_pool_t (a few worker
 * threads and a bounded job queue) before the loop threads start; each loop
 * thread then creates a kdf_client_t on its h2o multithread queue. A job
 * submitted through a client runs on a worker and its result is posted back
 * with h2o_multithread_send_message, so callbacks always run on the
 * submitting loop thread, later, exactly once - unless the client is
 * destroyed first, in which case they never run.
 *
 * Ownership: the pool outlives every client; clients are destroyed on their
 * own loop thread before kdf_pool_destroy(). Jobs copy the password (wiped
 * with explicit_bzero after use) and the encoded hash, so callers may free
 * theirs as soon as the submit function returns.
 */
#ifndef CLIENTELE_API_KDF_H
#define CLIENTELE_API_KDF_H

#include <stddef.h>
#include <stdint.h>

#define H2O_USE_LIBUV 0
#include <h2o/multithread.h>

#define KDF_DEFAULT_T_COST 2 /* OWASP's argon2id minimum: t=2, m=19 MiB, p=1 */
#define KDF_DEFAULT_M_COST_KIB 19456
#define KDF_DEFAULT_PARALLELISM 1
#define KDF_MAX_PASSWORD 1024 /* bytes; longer passwords are ERR_INVALID */
#define KDF_ENCODED_MAX 256   /* room for any encoded hash this module writes or reads */
#define KDF_QUEUE_CAP 256     /* jobs accepted and not yet finished, per pool */
/* Limits on the parameters of hashes we create or verify, so one stored row cannot take a worker's memory or time. */
#define KDF_MAX_T_COST 32
#define KDF_MAX_M_COST_KIB (256 * 1024)
#define KDF_MAX_PARALLELISM 16

typedef struct st_kdf_params_t {
    uint32_t t_cost;      /* iterations; 0 means KDF_DEFAULT_T_COST */
    uint32_t m_cost_kib;  /* memory in KiB; 0 means KDF_DEFAULT_M_COST_KIB */
    uint32_t parallelism; /* lanes; 0 means KDF_DEFAULT_PARALLELISM */
} kdf_params_t;

typedef struct st_kdf_pool_t kdf_pool_t;     /* process-wide */
typedef struct st_kdf_client_t kdf_client_t; /* one per loop thread */

/* encoded: "$argon2id$v=19$m=...,t=...,p=...$salt$hash", NULL on error; valid only during the call. */
typedef void (*kdf_hash_cb)(void *data, const char *encoded, int err);
/* match: 1 or 0 (always 0 when err != 0). */
typedef void (*kdf_verify_cb)(void *data, int match, int err);

/*
 * Starts nthreads (>= 1) workers hashing with params p (NULL for the
 * defaults) and computes the dummy hash used for unknown users, which takes
 * one hash's time. Returns NULL if nthreads or p are out of range or a
 * thread cannot be started. Call before any loop thread uses it.
 */
kdf_pool_t *kdf_pool_create(int nthreads, const kdf_params_t *p);

/*
 * Stops and joins the workers (a hash already running finishes first) and
 * frees the pool. Every client must have been destroyed before; jobs still
 * queued are dropped without callbacks and their passwords wiped.
 */
void kdf_pool_destroy(kdf_pool_t *pool);

/*
 * Creates a client that receives completions on queue (the loop thread's
 * queue, e.g. &ctx->queue of its h2o_context_t). Call on that loop thread.
 * The caller destroys it with kdf_client_destroy() before destroying the
 * queue or the pool. Never returns NULL (aborts on OOM, like h2o_mem_alloc).
 */
kdf_client_t *kdf_client_create(kdf_pool_t *pool, h2o_multithread_queue_t *queue);

/*
 * Destroys a client on its loop thread: queued jobs are dropped, running
 * ones are detached (the worker frees them when done), finished ones not
 * yet delivered are freed; no callback of this client runs afterwards.
 * Safe to call from inside one of the client's own callbacks.
 */
void kdf_client_destroy(kdf_client_t *c);

/*
 * Hashes password (len bytes, copied) with the pool's parameters and a
 * fresh 16-byte salt from getrandom(). cb(data, encoded, err) runs later on
 * the client's loop thread, never inside this call; encoded is NULL and err
 * negative if hashing failed.
 * Returns 0 (the callback will run), ERR_INVALID (len > KDF_MAX_PASSWORD,
 * or NULL password with len > 0) or ERR_UNAVAILABLE (the pool already holds
 * KDF_QUEUE_CAP jobs, or is shutting down); then the callback never runs.
 */
int kdf_hash(kdf_client_t *c, const char *password, size_t len, kdf_hash_cb cb, void *data);

/*
 * Checks password against encoded (both copied). With encoded NULL (an
 * unknown user) the password is checked against an internal dummy hash with
 * the pool's parameters and match is 0, so it costs the same time as a
 * wrong password. cb(data, match, err) runs later on the client's loop
 * thread, never inside this call; err is ERR_INVALID if the hash turns out
 * undecodable, ERR_INTERNAL if argon2 failed otherwise.
 * Returns 0 (the callback will run), ERR_INVALID (password too long, or
 * encoded is not an argon2id hash within the KDF_MAX_* limits) or
 * ERR_UNAVAILABLE (queue full); then the callback never runs.
 */
int kdf_verify(kdf_client_t *c, const char *encoded, const char *password, size_t len, kdf_verify_cb cb, void *data);

/*
 * Blocking versions for tools and tests; never call them on a loop thread.
 * kdf_hash_now writes the NUL-terminated encoded hash to out (outlen >=
 * KDF_ENCODED_MAX is always enough) and returns 0, ERR_INVALID (bad
 * parameters, password too long, out too small) or ERR_INTERNAL.
 */
int kdf_hash_now(const kdf_params_t *p, const char *password, size_t len, char *out, size_t outlen);

/*
 * Returns 1 on a match, 0 on none, ERR_INVALID for a password too long or
 * an encoded string that is NULL or not an acceptable argon2id hash (see
 * kdf_verify), ERR_INTERNAL if argon2 failed otherwise.
 */
int kdf_verify_now(const char *encoded, const char *password, size_t len);

#endif
