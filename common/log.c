/*
 * common/log.c - JSON-lines logging shared by the API and the worker.
 *
 * Lines are assembled in memory. Until log_writer_start() (command-line
 * tools, tests) each is written at once with one write(2). Serving
 * processes start the writer thread, after which a line is only appended
 * to a bounded buffer under a mutex held for one memcpy, and the writer
 * thread swaps that buffer for its spare and writes it out: a slow log
 * consumer (a full pipe, a stalled disk) then blocks only the writer, never
 * an event loop. When the buffer is full the line is dropped and counted
 * (log_dropped(), shown in /metrics). One shared buffer rather than one
 * per thread: the critical section is a memcpy of one line, far shorter
 * than any contention that would justify per-thread buffers and a flush
 * timer on every loop, and lines keep their order across threads.
 *
 * The level and component are set once by log_init() before any thread
 * starts and only read afterwards. The log context is thread-local: no
 * thread ever reads another's.
 */
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "trace.h"

static struct {
    int level;
    char component[32];
} log_conf = {LOG_INFO, "clientele"};

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void log_init(int level, const char *component)
{
    log_conf.level = level;
    snprintf(log_conf.component, sizeof(log_conf.component), "%s", component);
}

int log_level_parse(const char *s)
{
    for (int i = 0; i < 4; i++)
        if (strcmp(s, level_names[i]) == 0)
            return i;
    return -1;
}

int log_enabled(int level)
{
    return level >= log_conf.level;
}

static void format_now(char *buf, size_t len)
{
    struct timeval tv;
    struct tm tm;
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    size_t n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, len - n, ".%03dZ", (int)(tv.tv_usec / 1000));
}

/* The writer thread's state; `buf` is the buffer lines are appended to (mutex). */
static struct {
    pthread_mutex_t mutex;
    pthread_cond_t cond;
    char *buf, *spare;
    size_t len, cap;
    int running, stopping;
    pthread_t tid;
} writer = {.mutex = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};
static _Atomic uint64_t dropped;

static void write_all(const char *p, size_t left)
{
    while (left > 0) {
        ssize_t w = write(STDERR_FILENO, p, left);
        if (w <= 0)
            break;
        p += w;
        left -= (size_t)w;
    }
}

static void *run_writer(void *arg)
{
    pthread_mutex_lock(&writer.mutex);
    for (;;) {
        while (writer.len == 0 && !writer.stopping)
            pthread_cond_wait(&writer.cond, &writer.mutex);
        if (writer.len == 0)
            break; /* stopping, and everything is out */
        char *full = writer.buf;
        size_t n = writer.len;
        writer.buf = writer.spare;
        writer.len = 0;
        pthread_mutex_unlock(&writer.mutex);
        write_all(full, n); /* may block: only this thread waits */
        pthread_mutex_lock(&writer.mutex);
        writer.spare = full;
    }
    pthread_mutex_unlock(&writer.mutex);
    return NULL;
}

int log_writer_start(size_t cap)
{
    sigset_t all, old;
    if (writer.running)
        return 0;
    writer.buf = malloc(cap);
    writer.spare = malloc(cap);
    if (writer.buf == NULL || writer.spare == NULL)
        goto Fail;
    writer.cap = cap;
    writer.len = 0;
    writer.stopping = 0;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    int r = pthread_create(&writer.tid, NULL, run_writer, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (r != 0)
        goto Fail;
    pthread_setname_np(writer.tid, "log");
    pthread_mutex_lock(&writer.mutex);
    writer.running = 1;
    pthread_mutex_unlock(&writer.mutex);
    return 0;
Fail:
    free(writer.buf);
    free(writer.spare);
    writer.buf = writer.spare = NULL;
    return -1;
}

void log_writer_stop(void)
{
    if (!writer.running)
        return;
    pthread_mutex_lock(&writer.mutex);
    writer.stopping = 1;
    pthread_cond_signal(&writer.cond);
    pthread_mutex_unlock(&writer.mutex);
    pthread_join(writer.tid, NULL);
    pthread_mutex_lock(&writer.mutex);
    writer.running = 0;
    pthread_mutex_unlock(&writer.mutex);
    free(writer.buf);
    free(writer.spare);
    writer.buf = writer.spare = NULL;
}

uint64_t log_dropped(void)
{
    return atomic_load_explicit(&dropped, memory_order_relaxed);
}

static void write_line(json_t *obj)
{
    char *s = json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (s == NULL)
        return;
    size_t n = strlen(s);
    s[n] = '\n'; /* replaces the terminator; jansson allocated n + 1 bytes */
    pthread_mutex_lock(&writer.mutex);
    if (writer.running && !writer.stopping) {
        if (writer.cap - writer.len >= n + 1) {
            memcpy(writer.buf + writer.len, s, n + 1);
            if (writer.len == 0)
                pthread_cond_signal(&writer.cond);
            writer.len += n + 1;
        } else {
            atomic_fetch_add_explicit(&dropped, 1, memory_order_relaxed);
        }
        pthread_mutex_unlock(&writer.mutex);
    } else {
        pthread_mutex_unlock(&writer.mutex);
        write_all(s, n + 1);
    }
    free(s);
}

static __thread log_ctx_t thread_ctx;

const log_ctx_t *log_ctx(void)
{
    return &thread_ctx;
}

void log_ctx_set(const log_ctx_t *ctx)
{
    if (ctx == NULL)
        memset(&thread_ctx, 0, sizeof(thread_ctx));
    else if (ctx != &thread_ctx)
        thread_ctx = *ctx;
}

void log_ctx_make(log_ctx_t *ctx, const char *request_id, const char *trace_id)
{
    memset(ctx, 0, sizeof(*ctx));
    if (request_id != NULL && trace_request_id_ok(request_id, strlen(request_id)))
        memcpy(ctx->request_id, request_id, strlen(request_id) + 1);
    if (trace_id != NULL && trace_id_ok(trace_id, strlen(trace_id)))
        memcpy(ctx->trace_id, trace_id, 33);
}

static json_t *new_header(int level)
{
    char ts[40];
    format_now(ts, sizeof(ts));
    json_t *o = json_object();
    json_object_set_new(o, "time", json_string(ts));
    json_object_set_new(o, "level", json_string(level_names[level < 0 ? 0 : level > 3 ? 3 : level]));
    json_object_set_new(o, "component", json_string(log_conf.component));
    /* json_string() refuses invalid UTF-8 (NULL): a context is set from checked values, so none is expected. */
    if (thread_ctx.request_id[0] != '\0')
        json_object_set_new(o, "request_id", json_string(thread_ctx.request_id));
    if (thread_ctx.trace_id[0] != '\0')
        json_object_set_new(o, "trace_id", json_string(thread_ctx.trace_id));
    return o;
}

void log_msg(int level, const char *fmt, ...)
{
    if (!log_enabled(level))
        return;
    char buf[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    json_t *o = new_header(level);
    /* json_string() refuses invalid UTF-8; keep the ASCII and mask the rest. */
    json_t *m = json_string(buf);
    if (m == NULL) {
        for (char *p = buf; *p != '\0'; p++)
            if ((unsigned char)*p >= 0x80)
                *p = '?';
        m = json_string(buf);
    }
    json_object_set_new(o, "msg", m);
    write_line(o);
    json_decref(o);
}

void log_json(int level, json_t *fields)
{
    if (!log_enabled(level))
        return;
    json_t *o = new_header(level);
    json_object_update(o, fields);
    write_line(o);
    json_decref(o);
}
