/*
 * common/bg.c - helper threads for blocking calls, completions on a loop.
 *
 * BG_THREADS threads take jobs from one FIFO (mutex + condition variable).
 * A finished job goes to its box's list and the box's eventfd is written;
 * the box's loop watches a dup() of that eventfd (an h2o socket with
 * H2O_SOCKET_FLAG_DONT_READ) and runs the `done` hooks. The box keeps the
 * original eventfd open until its last reference goes, so a helper never
 * writes to a descriptor number that was closed and reused.
 *
 * Several threads, not one, so that one slow DNS lookup (a resolver timing
 * out) does not hold up a query cancel queued behind it.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "bg.h"

#define BG_THREADS 2

struct st_bg_box_t {
    pthread_mutex_t lock;
    h2o_linklist_t finished; /* jobs whose run returned, for the loop */
    int refs;                /* 1 for the owner while open, 1 per job in flight */
    int closed;
    int efd;
    h2o_socket_t *sock; /* loop side; NULL once closed */
};

static pthread_mutex_t q_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t q_cond = PTHREAD_COND_INITIALIZER;
static h2o_linklist_t q_jobs = {&q_jobs, &q_jobs};
static pid_t q_pid; /* the process the threads were started in */

static void box_unref_locked(bg_box_t *box, int *free_it)
{
    *free_it = --box->refs == 0;
}

static void box_free(bg_box_t *box)
{
    close(box->efd);
    pthread_mutex_destroy(&box->lock);
    free(box);
}

static void *helper_main(void *arg)
{
    (void)arg;
    for (;;) {
        pthread_mutex_lock(&q_lock);
        while (h2o_linklist_is_empty(&q_jobs))
            pthread_cond_wait(&q_cond, &q_lock);
        bg_job_t *job = H2O_STRUCT_FROM_MEMBER(bg_job_t, _link, q_jobs.next);
        h2o_linklist_unlink(&job->_link);
        pthread_mutex_unlock(&q_lock);

        job->run(job);

        bg_box_t *box = job->_box;
        if (box == NULL) {
            if (job->discard != NULL)
                job->discard(job);
            continue;
        }
        int free_box = 0, deliver;
        pthread_mutex_lock(&box->lock);
        deliver = !box->closed;
        if (deliver)
            h2o_linklist_insert(&box->finished, &job->_link);
        else
            box_unref_locked(box, &free_box);
        pthread_mutex_unlock(&box->lock);
        if (deliver) {
            uint64_t one = 1;
            /* The counter cannot overflow here; EAGAIN would only mean it is already non-zero. */
            ssize_t w = write(box->efd, &one, sizeof(one));
            (void)w;
        } else {
            job->discard(job);
            if (free_box)
                box_free(box);
        }
    }
    return NULL;
}

static void start_threads_locked(void)
{
    pid_t pid = getpid();
    if (q_pid == pid)
        return;
    /* First use, or first use in a fork()ed child, which inherited no threads. */
    q_pid = pid;
    for (int i = 0; i < BG_THREADS; i++) {
        pthread_t tid;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        pthread_attr_setstacksize(&attr, 1024 * 1024); /* name lookups through NSS modules */
        if (pthread_create(&tid, &attr, helper_main, NULL) != 0)
            abort();
        pthread_attr_destroy(&attr);
    }
}

void bg_submit(bg_box_t *box, bg_job_t *job)
{
    job->_box = box;
    job->_link = (h2o_linklist_t){NULL, NULL};
    if (box != NULL) {
        pthread_mutex_lock(&box->lock);
        box->refs++;
        pthread_mutex_unlock(&box->lock);
    }
    pthread_mutex_lock(&q_lock);
    start_threads_locked();
    h2o_linklist_insert(&q_jobs, &job->_link);
    pthread_cond_signal(&q_cond);
    pthread_mutex_unlock(&q_lock);
}

static void on_box_readable(h2o_socket_t *sock, const char *err)
{
    bg_box_t *box = sock->data;
    uint64_t n;
    ssize_t r = read(box->efd, &n, sizeof(n));
    (void)r;
    h2o_linklist_t done;
    h2o_linklist_init_anchor(&done);
    pthread_mutex_lock(&box->lock);
    h2o_linklist_insert_list(&done, &box->finished);
    pthread_mutex_unlock(&box->lock);
    /* Each done hook may submit again or close the box: take one job at a time. */
    while (!h2o_linklist_is_empty(&done)) {
        bg_job_t *job = H2O_STRUCT_FROM_MEMBER(bg_job_t, _link, done.next);
        h2o_linklist_unlink(&job->_link);
        int free_box = 0, closed;
        pthread_mutex_lock(&box->lock);
        closed = box->closed;
        box_unref_locked(box, &free_box);
        pthread_mutex_unlock(&box->lock);
        if (closed)
            job->discard(job);
        else
            job->done(job);
        if (free_box) {
            /* Only reachable when the box was closed: drop what is left, then the box. */
            while (!h2o_linklist_is_empty(&done)) {
                bg_job_t *j = H2O_STRUCT_FROM_MEMBER(bg_job_t, _link, done.next);
                h2o_linklist_unlink(&j->_link);
                j->discard(j);
            }
            box_free(box);
            return;
        }
    }
}

bg_box_t *bg_box_open(h2o_loop_t *loop)
{
    bg_box_t *box = calloc(1, sizeof(*box));
    if (box == NULL)
        abort();
    pthread_mutex_init(&box->lock, NULL);
    h2o_linklist_init_anchor(&box->finished);
    box->refs = 1;
    box->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    int dupfd = box->efd >= 0 ? dup(box->efd) : -1;
    if (dupfd < 0)
        abort();
    box->sock = h2o_evloop_socket_create(loop, dupfd, H2O_SOCKET_FLAG_DONT_READ);
    box->sock->data = box;
    h2o_socket_read_start(box->sock, on_box_readable);
    return box;
}

void bg_box_close(bg_box_t *box)
{
    h2o_linklist_t left;
    h2o_linklist_init_anchor(&left);
    int free_box = 0;
    h2o_socket_read_stop(box->sock);
    h2o_socket_close(box->sock);
    box->sock = NULL;
    pthread_mutex_lock(&box->lock);
    box->closed = 1;
    h2o_linklist_insert_list(&left, &box->finished);
    pthread_mutex_unlock(&box->lock);
    while (!h2o_linklist_is_empty(&left)) {
        bg_job_t *job = H2O_STRUCT_FROM_MEMBER(bg_job_t, _link, left.next);
        h2o_linklist_unlink(&job->_link);
        pthread_mutex_lock(&box->lock);
        box_unref_locked(box, &free_box);
        pthread_mutex_unlock(&box->lock);
        job->discard(job);
    }
    pthread_mutex_lock(&box->lock);
    box_unref_locked(box, &free_box);
    pthread_mutex_unlock(&box->lock);
    if (free_box)
        box_free(box);
}
