/*
 * common/log.c - JSON-lines logging shared by the API and the worker.
 *
 * Lines are assembled in memory and written with one write(2), which POSIX
 * makes atomic for pipes up to PIPE_BUF and which in practice keeps lines
 * whole on files and terminals too. The level and component are set once
 * by log_init() before any thread starts and only read afterwards.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

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

static void write_line(json_t *obj)
{
    char *s = json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (s == NULL)
        return;
    size_t n = strlen(s);
    s[n] = '\n'; /* replaces the terminator; jansson allocated n + 1 bytes */
    const char *p = s;
    size_t left = n + 1;
    while (left > 0) {
        ssize_t w = write(STDERR_FILENO, p, left);
        if (w <= 0)
            break;
        p += w;
        left -= (size_t)w;
    }
    free(s);
}

static json_t *new_header(int level)
{
    char ts[40];
    format_now(ts, sizeof(ts));
    json_t *o = json_object();
    json_object_set_new(o, "time", json_string(ts));
    json_object_set_new(o, "level", json_string(level_names[level < 0 ? 0 : level > 3 ? 3 : level]));
    json_object_set_new(o, "component", json_string(log_conf.component));
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
