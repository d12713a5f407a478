/*
 * common/log.h - JSON-lines logging shared by the API and the worker.
 *
 * Every line is one JSON object written with a single write(2) to standard
 * error, so lines from several threads never interleave. The process sets
 * the level and component name once at start-up through log_init(). A
 * serving process also starts the writer thread (log_writer_start), after
 * which logging never blocks the caller: lines go to a bounded buffer that
 * the writer thread drains, and lines that do not fit are dropped and
 * counted.
 *
 * Each thread also has a log context (log_ctx_t): while it names a request
 * id or a trace id, every line the thread logs carries them as fields
 * "request_id" and "trace_id". Code serving a request sets it; the
 * asynchronous layers (common/db.c, common/kv.c) keep a copy with each
 * operation and restore it around its callback, so a line logged there
 * names the request that started the operation.
 */
#ifndef CLIENTELE_COMMON_LOG_H
#define CLIENTELE_COMMON_LOG_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

enum { LOG_DEBUG = 0, LOG_INFO = 1, LOG_WARN = 2, LOG_ERROR = 3 };

/* Sets the minimum level and the "component" field ("api", "worker"). */
void log_init(int level, const char *component);
/* Parses "debug", "info", "warn" or "error"; returns the level or -1. */
int log_level_parse(const char *s);
int log_enabled(int level);
/* Logs a printf-formatted message as {"time","level","component","msg"}. */
void log_msg(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/*
 * Starts the writer thread with a buffer of cap bytes (two are allocated:
 * one filling, one being written). Call once, before the loops start;
 * returns 0, or -1 (logging then stays synchronous).
 */
int log_writer_start(size_t cap);
/* Writes out what is buffered and stops the writer thread; later lines are written at once. */
void log_writer_stop(void);
/* Lines dropped because the writer's buffer was full. Any thread. */
uint64_t log_dropped(void);
#define LOG_BUFFER_BYTES (1024 * 1024)
/* Logs `fields` (borrowed; time, level and component are added to a copy). */
void log_json(int level, json_t *fields);

/* What a thread's log lines say about the request they serve. Plain data: copy it freely. */
typedef struct st_log_ctx_t {
    char request_id[65]; /* "" when none */
    char trace_id[33];   /* W3C trace id (32 lowercase hex digits), "" when none */
} log_ctx_t;

/* The calling thread's context; never NULL (fields are "" when none is set). */
const log_ctx_t *log_ctx(void);
/* Sets the calling thread's context to a copy of *ctx; NULL clears it. */
void log_ctx_set(const log_ctx_t *ctx);
/*
 * Fills *ctx from the given values, keeping only sane ones (see
 * common/trace.h); NULL or "" leaves a field empty. For values read back
 * from a database row or a stream entry.
 */
void log_ctx_make(log_ctx_t *ctx, const char *request_id, const char *trace_id);

#endif
