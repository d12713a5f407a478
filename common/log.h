/*
 * common/log.h - JSON-lines logging shared by the API and the worker.
 *
 * Every line is one JSON object written with a single write(2) to standard
 * error, so lines from several threads never interleave. The process sets
 * the level and component name once at start-up through log_init(); that
 * is the only state this module keeps, and it is read-only afterwards.
 */
#ifndef CLIENTELE_COMMON_LOG_H
#define CLIENTELE_COMMON_LOG_H

#include <jansson.h>

enum { LOG_DEBUG = 0, LOG_INFO = 1, LOG_WARN = 2, LOG_ERROR = 3 };

/* Sets the minimum level and the "component" field ("api", "worker"). */
void log_init(int level, const char *component);
/* Parses "debug", "info", "warn" or "error"; returns the level or -1. */
int log_level_parse(const char *s);
int log_enabled(int level);
/* Logs a printf-formatted message as {"time","level","component","msg"}. */
void log_msg(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Logs `fields` (borrowed; time, level and component are added to a copy). */
void log_json(int level, json_t *fields);

#endif
