/*
 * api/kdf.c - argon2id password hashing on a thread pool, off the event loop.
 *
 * One mutex per pool guards everything shared: the FIFO of queued jobs, the
 * job count behind the cap, each client's list of running jobs and each
 * job's back-pointer to its client. A worker pops a job, links it to its
 * client's running list, hashes without the lock, then (under the lock
 * again) posts it to the client's h2o receiver, or frees it if the client
 * has gone meanwhile. Because every post happens under the pool mutex,
 * kdf_client_destroy() can take that mutex and be sure nothing else will
 * touch its receiver: it frees its queued jobs, detaches its running ones,
 * and frees the finished ones h2o has not delivered yet, which lie in the
 * receiver's message list (h2o requires that list to be empty before the
 * receiver is unregistered).
 *
 * Ownership: a job is malloc'ed by the submit function and owned by the
 * pool's queue, then a worker, then the receiver's message list, then the
 * delivery loop, which frees it after the callback. The password copy at
 * its end is wiped with explicit_bzero as soon as argon2 is done with it,
 * and again when the job is freed. Clients are freed by kdf_client_destroy
 * or, when that is called from one of their callbacks, by the delivery loop
 * once the callback returns.
 */
#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/types.h>

#include <argon2.h>

#include "common/err.h"
#include "common/log.h"
#include "kdf.h"

#define KDF_SALT_LEN 16
#define KDF_HASH_LEN 32
#define KDF_PREFIX "$argon2id$"

typedef enum { JOB_HASH, JOB_VERIFY } job_kind_t;

typedef struct st_kdf_job_t {
    h2o_multithread_message_t super; /* linked into the receiver's messages once done */
    h2o_linklist_t _link;            /* in pool->_pending while queued, client->_running while running */
    kdf_client_t *client;            /* NULL once the client is destroyed (pool mutex) */
    job_kind_t kind;
    kdf_hash_cb hash_cb;
    kdf_verify_cb verify_cb;
    void *data;
    int dummy; /* verify against the pool's dummy hash */
    int match;
    int err;
    char encoded[KDF_ENCODED_MAX]; /* verify: the stored hash; hash: the result */
    log_ctx_t log;                 /* the submitter's log context, restored around the callback */
    size_t pwlen;
    char password[]; /* pwlen bytes, wiped after use */
} kdf_job_t;

struct st_kdf_pool_t {
    kdf_params_t params;
    pthread_mutex_t _mutex;
    pthread_cond_t _cond;
    h2o_linklist_t _pending; /* kdf_job_t._link, FIFO */
    size_t _njobs;           /* accepted and not finished: queued + running */
    size_t _cap;
    int _stopping;
    int _nclients;
    int _nthreads;
    pthread_t *_threads;
    char _dummy[KDF_ENCODED_MAX]; /* hash of a random secret, for unknown users */
};

struct st_kdf_client_t {
    h2o_multithread_receiver_t _receiver;
    kdf_pool_t *_pool;
    h2o_linklist_t _running; /* kdf_job_t._link (pool mutex) */
    int _dispatching;        /* inside on_messages (loop thread only) */
    int _destroyed;          /* destroyed from a callback; on_messages frees it */
};

static int fill_random(void *buf, size_t len)
{
    for (size_t got = 0; got < len;) {
        ssize_t n = getrandom((char *)buf + got, len - got, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        got += (size_t)n;
    }
    return 0;
}

/* Fills in defaults for zero fields and checks the limits; 0 or ERR_INVALID. */
static int resolve_params(const kdf_params_t *in, kdf_params_t *out)
{
    kdf_params_t p = in != NULL ? *in : (kdf_params_t){0};
    if (p.t_cost == 0)
        p.t_cost = KDF_DEFAULT_T_COST;
    if (p.m_cost_kib == 0)
        p.m_cost_kib = KDF_DEFAULT_M_COST_KIB;
    if (p.parallelism == 0)
        p.parallelism = KDF_DEFAULT_PARALLELISM;
    if (p.t_cost > KDF_MAX_T_COST || p.parallelism > KDF_MAX_PARALLELISM || p.m_cost_kib > KDF_MAX_M_COST_KIB ||
        p.m_cost_kib < 8 * p.parallelism)
        return ERR_INVALID;
    *out = p;
    return 0;
}

/* Reads a decimal of at most 10 digits into *v; returns the position after it or NULL. */
static const char *read_u32(const char *s, uint32_t *v)
{
    uint64_t n = 0;
    int digits = 0;
    while (*s >= '0' && *s <= '9') {
        if (++digits > 10)
            return NULL;
        n = n * 10 + (uint64_t)(*s++ - '0');
    }
    if (digits == 0 || n > UINT32_MAX)
        return NULL;
    *v = (uint32_t)n;
    return s;
}

/*
 * Accepts only "$argon2id$[v=N$]m=M,t=T,p=P$..." shorter than
 * KDF_ENCODED_MAX with parameters inside the KDF_MAX_* limits, so that a
 * bcrypt or argon2i hash, or a row asking for gigabytes, never reaches a
 * worker. argon2id_verify() checks the rest.
 */
static int check_encoded(const char *enc)
{
    uint32_t v, m, t, p;
    const char *s;

    if (enc == NULL || strnlen(enc, KDF_ENCODED_MAX) >= KDF_ENCODED_MAX ||
        strncmp(enc, KDF_PREFIX, sizeof(KDF_PREFIX) - 1) != 0)
        return ERR_INVALID;
    s = enc + sizeof(KDF_PREFIX) - 1;
    if (strncmp(s, "v=", 2) == 0) {
        /* Only the versions libargon2 implements: 0x10 and 0x13. */
        if ((s = read_u32(s + 2, &v)) == NULL || *s++ != '$' || (v != ARGON2_VERSION_10 && v != ARGON2_VERSION_13))
            return ERR_INVALID;
    }
    if (strncmp(s, "m=", 2) != 0 || (s = read_u32(s + 2, &m)) == NULL || strncmp(s, ",t=", 3) != 0 ||
        (s = read_u32(s + 3, &t)) == NULL || strncmp(s, ",p=", 3) != 0 || (s = read_u32(s + 3, &p)) == NULL ||
        *s != '$')
        return ERR_INVALID;
    if (t < 1 || t > KDF_MAX_T_COST || p < 1 || p > KDF_MAX_PARALLELISM || m > KDF_MAX_M_COST_KIB)
        return ERR_INVALID;
    return 0;
}

static int hash_into(const kdf_params_t *p, const char *pw, size_t len, char *out, size_t outlen)
{
    unsigned char salt[KDF_SALT_LEN];
    size_t need = argon2_encodedlen(p->t_cost, p->m_cost_kib, p->parallelism, KDF_SALT_LEN, KDF_HASH_LEN, Argon2_id);
    if (outlen < need)
        return ERR_INVALID;
    if (fill_random(salt, sizeof(salt)) != 0)
        return ERR_INTERNAL;
    int r = argon2id_hash_encoded(p->t_cost, p->m_cost_kib, p->parallelism, pw, len, salt, sizeof(salt), KDF_HASH_LEN,
                                  out, outlen);
    if (r != ARGON2_OK) {
        log_msg(LOG_ERROR, "argon2id hashing failed: %s", argon2_error_message(r));
        return ERR_INTERNAL;
    }
    return 0;
}

/* 1 match, 0 no match, or a negative err_t. */
static int verify_encoded(const char *enc, const char *pw, size_t len)
{
    int r = argon2id_verify(enc, pw, len);
    switch (r) {
    case ARGON2_OK:
        return 1;
    case ARGON2_VERIFY_MISMATCH:
        return 0;
    case ARGON2_MEMORY_ALLOCATION_ERROR:
    case ARGON2_THREAD_FAIL:
        log_msg(LOG_ERROR, "argon2id verification failed: %s", argon2_error_message(r));
        return ERR_INTERNAL;
    default:
        /* Anything else is about the encoded string: bad base64, short salt, wrong version... */
        return ERR_INVALID;
    }
}

static void free_job(kdf_job_t *job)
{
    explicit_bzero(job->password, job->pwlen);
    free(job);
}

static void run_job(kdf_pool_t *pool, kdf_job_t *job)
{
    if (job->kind == JOB_HASH) {
        job->err = hash_into(&pool->params, job->password, job->pwlen, job->encoded, sizeof(job->encoded));
        if (job->err != 0)
            job->encoded[0] = '\0';
    } else {
        int r = verify_encoded(job->dummy ? pool->_dummy : job->encoded, job->password, job->pwlen);
        if (job->dummy) {
            /* Same work as a real check; the answer is "no" whatever the password. */
            job->match = 0;
            job->err = r < 0 ? r : 0;
        } else {
            job->match = r == 1;
            job->err = r < 0 ? r : 0;
        }
    }
    explicit_bzero(job->password, job->pwlen);
}

static void *run_worker(void *arg)
{
    kdf_pool_t *pool = arg;

    pthread_mutex_lock(&pool->_mutex);
    for (;;) {
        while (h2o_linklist_is_empty(&pool->_pending) && !pool->_stopping)
            pthread_cond_wait(&pool->_cond, &pool->_mutex);
        if (pool->_stopping)
            break;
        kdf_job_t *job = H2O_STRUCT_FROM_MEMBER(kdf_job_t, _link, pool->_pending.next);
        h2o_linklist_unlink(&job->_link);
        h2o_linklist_insert(&job->client->_running, &job->_link);
        pthread_mutex_unlock(&pool->_mutex);

        run_job(pool, job);

        pthread_mutex_lock(&pool->_mutex);
        --pool->_njobs;
        if (job->client != NULL) {
            h2o_linklist_unlink(&job->_link);
            /* Under the pool mutex, so kdf_client_destroy() never races with this post. */
            h2o_multithread_send_message(&job->client->_receiver, &job->super);
        } else {
            free_job(job);
        }
    }
    pthread_mutex_unlock(&pool->_mutex);
    return NULL;
}

kdf_pool_t *kdf_pool_create(int nthreads, const kdf_params_t *p)
{
    kdf_params_t params;
    unsigned char secret[32];
    sigset_t all, old;

    if (nthreads < 1 || nthreads > 256 || resolve_params(p, &params) != 0)
        return NULL;

    kdf_pool_t *pool = calloc(1, sizeof(*pool));
    if (pool == NULL)
        return NULL;
    pool->params = params;
    pool->_cap = KDF_QUEUE_CAP;
    h2o_linklist_init_anchor(&pool->_pending);
    pthread_mutex_init(&pool->_mutex, NULL);
    pthread_cond_init(&pool->_cond, NULL);

    /* The dummy is a hash of 32 random bytes nobody knows, with the pool's parameters. */
    int r = fill_random(secret, sizeof(secret));
    if (r == 0)
        r = hash_into(&params, (const char *)secret, sizeof(secret), pool->_dummy, sizeof(pool->_dummy));
    explicit_bzero(secret, sizeof(secret));
    if (r != 0 || (pool->_threads = calloc((size_t)nthreads, sizeof(pthread_t))) == NULL)
        goto Error;

    /* Workers block every signal, so that signals go to main's sigwait and never interrupt a hash. */
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    for (; pool->_nthreads < nthreads; ++pool->_nthreads) {
        if (pthread_create(&pool->_threads[pool->_nthreads], NULL, run_worker, pool) != 0)
            break;
        pthread_setname_np(pool->_threads[pool->_nthreads], "kdf");
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (pool->_nthreads < nthreads) {
        log_msg(LOG_ERROR, "could not start password hashing thread %d of %d", pool->_nthreads + 1, nthreads);
        goto Error;
    }
    return pool;

Error:
    kdf_pool_destroy(pool);
    return NULL;
}

void kdf_pool_destroy(kdf_pool_t *pool)
{
    if (pool == NULL)
        return;
    assert(pool->_nclients == 0);

    pthread_mutex_lock(&pool->_mutex);
    pool->_stopping = 1;
    pthread_cond_broadcast(&pool->_cond);
    pthread_mutex_unlock(&pool->_mutex);
    for (int i = 0; i < pool->_nthreads; i++)
        pthread_join(pool->_threads[i], NULL);

    /* Only reachable if clients were leaked; their jobs cannot be answered, so drop them. */
    while (!h2o_linklist_is_empty(&pool->_pending)) {
        kdf_job_t *job = H2O_STRUCT_FROM_MEMBER(kdf_job_t, _link, pool->_pending.next);
        h2o_linklist_unlink(&job->_link);
        free_job(job);
    }
    pthread_cond_destroy(&pool->_cond);
    pthread_mutex_destroy(&pool->_mutex);
    free(pool->_threads);
    free(pool);
}

static void deliver(kdf_job_t *job)
{
    log_ctx_t saved = *log_ctx();
    log_ctx_set(&job->log);
    if (job->kind == JOB_HASH)
        job->hash_cb(job->data, job->err == 0 ? job->encoded : NULL, job->err);
    else
        job->verify_cb(job->data, job->err == 0 ? job->match : 0, job->err);
    log_ctx_set(&saved);
}

/* Runs on the client's loop thread with the jobs finished since the last call. */
static void on_messages(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages)
{
    kdf_client_t *c = H2O_STRUCT_FROM_MEMBER(kdf_client_t, _receiver, receiver);

    c->_dispatching = 1;
    while (!h2o_linklist_is_empty(messages)) {
        kdf_job_t *job = H2O_STRUCT_FROM_MEMBER(kdf_job_t, super.link, messages->next);
        h2o_linklist_unlink(&job->super.link);
        /* A callback may have destroyed the client; the rest of the batch is then dropped unseen. */
        if (!c->_destroyed)
            deliver(job);
        free_job(job);
    }
    c->_dispatching = 0;
    if (c->_destroyed)
        free(c);
}

kdf_client_t *kdf_client_create(kdf_pool_t *pool, h2o_multithread_queue_t *queue)
{
    kdf_client_t *c = h2o_mem_alloc(sizeof(*c));
    *c = (kdf_client_t){._pool = pool};
    h2o_linklist_init_anchor(&c->_running);
    h2o_multithread_register_receiver(queue, &c->_receiver, on_messages);
    pthread_mutex_lock(&pool->_mutex);
    ++pool->_nclients;
    pthread_mutex_unlock(&pool->_mutex);
    return c;
}

void kdf_client_destroy(kdf_client_t *c)
{
    kdf_pool_t *pool = c->_pool;
    h2o_linklist_t *node, *next;

    pthread_mutex_lock(&pool->_mutex);
    for (node = pool->_pending.next; node != &pool->_pending; node = next) {
        next = node->next;
        kdf_job_t *job = H2O_STRUCT_FROM_MEMBER(kdf_job_t, _link, node);
        if (job->client == c) {
            h2o_linklist_unlink(&job->_link);
            --pool->_njobs;
            free_job(job);
        }
    }
    while (!h2o_linklist_is_empty(&c->_running)) {
        kdf_job_t *job = H2O_STRUCT_FROM_MEMBER(kdf_job_t, _link, c->_running.next);
        h2o_linklist_unlink(&job->_link);
        job->client = NULL; /* its worker frees it */
    }
    /*
     * Finished jobs h2o has not handed to on_messages yet. Workers append to
     * this list only while holding the pool mutex, which we hold, and only
     * this (the loop) thread takes from it, so it is stable here.
     */
    while (!h2o_linklist_is_empty(&c->_receiver._messages)) {
        kdf_job_t *job = H2O_STRUCT_FROM_MEMBER(kdf_job_t, super.link, c->_receiver._messages.next);
        h2o_linklist_unlink(&job->super.link);
        free_job(job);
    }
    --pool->_nclients;
    pthread_mutex_unlock(&pool->_mutex);

    h2o_multithread_unregister_receiver(c->_receiver.queue, &c->_receiver);
    if (c->_dispatching)
        c->_destroyed = 1;
    else
        free(c);
}

static int submit(kdf_client_t *c, job_kind_t kind, const char *encoded, const char *password, size_t len,
                  kdf_hash_cb hash_cb, kdf_verify_cb verify_cb, void *data)
{
    kdf_pool_t *pool = c->_pool;

    if (len > KDF_MAX_PASSWORD || (password == NULL && len > 0))
        return ERR_INVALID;
    if (kind == JOB_VERIFY && encoded != NULL && check_encoded(encoded) != 0)
        return ERR_INVALID;

    kdf_job_t *job = h2o_mem_alloc(offsetof(kdf_job_t, password) + len + 1);
    memset(job, 0, offsetof(kdf_job_t, password));
    job->client = c;
    job->kind = kind;
    job->hash_cb = hash_cb;
    job->verify_cb = verify_cb;
    job->data = data;
    job->log = *log_ctx();
    job->dummy = kind == JOB_VERIFY && encoded == NULL;
    if (kind == JOB_VERIFY && encoded != NULL)
        strcpy(job->encoded, encoded); /* check_encoded() bounded its length */
    job->pwlen = len;
    if (len > 0)
        memcpy(job->password, password, len);

    pthread_mutex_lock(&pool->_mutex);
    if (pool->_stopping || pool->_njobs >= pool->_cap) {
        pthread_mutex_unlock(&pool->_mutex);
        free_job(job);
        return ERR_UNAVAILABLE;
    }
    ++pool->_njobs;
    h2o_linklist_insert(&pool->_pending, &job->_link);
    pthread_cond_signal(&pool->_cond);
    pthread_mutex_unlock(&pool->_mutex);
    return 0;
}

int kdf_hash(kdf_client_t *c, const char *password, size_t len, kdf_hash_cb cb, void *data)
{
    return submit(c, JOB_HASH, NULL, password, len, cb, NULL, data);
}

int kdf_verify(kdf_client_t *c, const char *encoded, const char *password, size_t len, kdf_verify_cb cb, void *data)
{
    return submit(c, JOB_VERIFY, encoded, password, len, NULL, cb, data);
}

int kdf_hash_now(const kdf_params_t *p, const char *password, size_t len, char *out, size_t outlen)
{
    kdf_params_t params;
    if (resolve_params(p, &params) != 0 || len > KDF_MAX_PASSWORD || (password == NULL && len > 0) || out == NULL)
        return ERR_INVALID;
    return hash_into(&params, password, len, out, outlen);
}

int kdf_verify_now(const char *encoded, const char *password, size_t len)
{
    if (len > KDF_MAX_PASSWORD || (password == NULL && len > 0) || check_encoded(encoded) != 0)
        return ERR_INVALID;
    return verify_encoded(encoded, password, len);
}
