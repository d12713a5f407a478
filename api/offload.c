/*
 * api/offload.c - a small thread pool for CPU work that must not run on an
 * event loop (see offload.h).
 *
 * One mutex guards everything shared: the FIFO of queued jobs, the job
 * count behind the cap and each client's list of running jobs. A pool
 * thread pops a job, links it to its client's running list, runs it
 * without the lock, then (under the lock again) unlinks it and posts it to
 * the client's receiver. Because every post happens under the mutex, a
 * client being destroyed can take the mutex, wait on the condition
 * variable until its running list is empty, and then own every job still
 * queued or undelivered.
 */
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>

#include "common/err.h"
#include "common/log.h"
#include "offload.h"

struct st_offload_pool_t {
    pthread_mutex_t _mutex;
    pthread_cond_t _cond;     /* jobs queued, or stopping */
    pthread_cond_t _finished; /* a job finished (clients being destroyed wait on it) */
    h2o_linklist_t _pending;  /* offload_job_t._link, FIFO */
    size_t _njobs, _cap;
    int _stopping;
    int _nthreads;
    pthread_t *_threads;
};

struct st_offload_client_t {
    h2o_multithread_receiver_t _receiver;
    offload_pool_t *_pool;
    h2o_linklist_t _running; /* offload_job_t._link (pool mutex) */
};

static void *run_thread(void *arg)
{
    offload_pool_t *pool = arg;

    /*
     * Below the loops in priority: a few bulk parses must not take the CPU
     * the loops need to answer everything else (on a small host they would
     * otherwise share it equally). Failure only costs that preference.
     */
    setpriority(PRIO_PROCESS, (id_t)gettid(), OFFLOAD_NICE);

    pthread_mutex_lock(&pool->_mutex);
    for (;;) {
        while (h2o_linklist_is_empty(&pool->_pending) && !pool->_stopping)
            pthread_cond_wait(&pool->_cond, &pool->_mutex);
        if (pool->_stopping)
            break;
        offload_job_t *job = H2O_STRUCT_FROM_MEMBER(offload_job_t, _link, pool->_pending.next);
        h2o_linklist_unlink(&job->_link);
        h2o_linklist_insert(&job->_client->_running, &job->_link);
        pthread_mutex_unlock(&pool->_mutex);

        job->work(job);

        pthread_mutex_lock(&pool->_mutex);
        --pool->_njobs;
        h2o_linklist_unlink(&job->_link);
        h2o_multithread_send_message(&job->_client->_receiver, &job->super);
        pthread_cond_broadcast(&pool->_finished);
    }
    pthread_mutex_unlock(&pool->_mutex);
    return NULL;
}

offload_pool_t *offload_pool_create(int nthreads, size_t cap)
{
    sigset_t all, old;
    if (nthreads < 1 || nthreads > 64)
        return NULL;
    offload_pool_t *pool = calloc(1, sizeof(*pool));
    if (pool == NULL || (pool->_threads = calloc((size_t)nthreads, sizeof(pthread_t))) == NULL) {
        free(pool);
        return NULL;
    }
    pool->_cap = cap;
    h2o_linklist_init_anchor(&pool->_pending);
    pthread_mutex_init(&pool->_mutex, NULL);
    pthread_cond_init(&pool->_cond, NULL);
    pthread_cond_init(&pool->_finished, NULL);
    /* Pool threads block every signal, so that signals go to main's sigwait. */
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    for (; pool->_nthreads < nthreads; ++pool->_nthreads) {
        if (pthread_create(&pool->_threads[pool->_nthreads], NULL, run_thread, pool) != 0)
            break;
        pthread_setname_np(pool->_threads[pool->_nthreads], "offload");
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (pool->_nthreads < nthreads) {
        log_msg(LOG_ERROR, "could not start offload thread %d of %d", pool->_nthreads + 1, nthreads);
        offload_pool_destroy(pool);
        return NULL;
    }
    return pool;
}

void offload_pool_destroy(offload_pool_t *pool)
{
    if (pool == NULL)
        return;
    pthread_mutex_lock(&pool->_mutex);
    pool->_stopping = 1;
    pthread_cond_broadcast(&pool->_cond);
    pthread_mutex_unlock(&pool->_mutex);
    for (int i = 0; i < pool->_nthreads; i++)
        pthread_join(pool->_threads[i], NULL);
    pthread_cond_destroy(&pool->_finished);
    pthread_cond_destroy(&pool->_cond);
    pthread_mutex_destroy(&pool->_mutex);
    free(pool->_threads);
    free(pool);
}

/* Runs on the client's loop thread with the jobs finished since the last call. */
static void on_messages(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages)
{
    while (!h2o_linklist_is_empty(messages)) {
        offload_job_t *job = H2O_STRUCT_FROM_MEMBER(offload_job_t, super.link, messages->next);
        h2o_linklist_unlink(&job->super.link);
        log_ctx_t saved = *log_ctx();
        log_ctx_set(&job->_log);
        job->done(job, 0);
        log_ctx_set(&saved);
    }
}

offload_client_t *offload_client_create(offload_pool_t *pool, h2o_multithread_queue_t *queue)
{
    offload_client_t *c = h2o_mem_alloc(sizeof(*c));
    *c = (offload_client_t){._pool = pool};
    h2o_linklist_init_anchor(&c->_running);
    h2o_multithread_register_receiver(queue, &c->_receiver, on_messages);
    return c;
}

void offload_client_destroy(offload_client_t *c)
{
    offload_pool_t *pool = c->_pool;
    h2o_linklist_t mine, *node, *next;
    h2o_linklist_init_anchor(&mine);

    pthread_mutex_lock(&pool->_mutex);
    for (node = pool->_pending.next; node != &pool->_pending; node = next) {
        next = node->next;
        offload_job_t *job = H2O_STRUCT_FROM_MEMBER(offload_job_t, _link, node);
        if (job->_client == c) {
            h2o_linklist_unlink(&job->_link);
            --pool->_njobs;
            h2o_linklist_insert(&mine, &job->super.link);
        }
    }
    /* Shutdown only: wait for this client's running jobs, which then land in the receiver's list. */
    while (!h2o_linklist_is_empty(&c->_running))
        pthread_cond_wait(&pool->_finished, &pool->_mutex);
    h2o_linklist_insert_list(&mine, &c->_receiver._messages);
    pthread_mutex_unlock(&pool->_mutex);

    h2o_multithread_unregister_receiver(c->_receiver.queue, &c->_receiver);
    while (!h2o_linklist_is_empty(&mine)) {
        offload_job_t *job = H2O_STRUCT_FROM_MEMBER(offload_job_t, super.link, mine.next);
        h2o_linklist_unlink(&job->super.link);
        job->done(job, 1);
    }
    free(c);
}

int offload_submit(offload_client_t *c, offload_job_t *job)
{
    offload_pool_t *pool = c->_pool;
    job->_client = c;
    job->_log = *log_ctx();
    pthread_mutex_lock(&pool->_mutex);
    if (pool->_stopping || pool->_njobs >= pool->_cap) {
        pthread_mutex_unlock(&pool->_mutex);
        return ERR_UNAVAILABLE;
    }
    ++pool->_njobs;
    h2o_linklist_insert(&pool->_pending, &job->_link);
    pthread_cond_signal(&pool->_cond);
    pthread_mutex_unlock(&pool->_mutex);
    return 0;
}
