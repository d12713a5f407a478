/*
 * common/trace.h - request ids and W3C trace context: what may be believed from outside.
 *
 * A request id names one request from the HTTP front door to the worker's
 * log lines; a client may send its own (X-Request-Id) when it is sane. A
 * W3C `traceparent` header (Trace Context, level 1) names the trace and
 * the caller's span; it is parsed strictly and, when it is not exactly
 * valid, ignored as a whole (never repaired, never echoed). Everything
 * here is pure: no state, any thread.
 */
#ifndef CLIENTELE_COMMON_TRACE_H
#define CLIENTELE_COMMON_TRACE_H

#include <stddef.h>
#include <stdint.h>

/* Longest request id kept (the buffers are one byte larger). */
#define TRACE_REQUEST_ID_MAX 64

/* 1 when s[0..len) is a usable request id: 1 to 64 letters, digits or "-_.:". */
int trace_request_id_ok(const char *s, size_t len);
/* 1 when s[0..len) is a W3C trace id: 32 lowercase hex digits, not all zero. */
int trace_id_ok(const char *s, size_t len);

typedef struct st_trace_parent_t {
    char trace_id[33];  /* 32 lowercase hex digits */
    char parent_id[17]; /* the caller's span: 16 lowercase hex digits */
    uint8_t flags;      /* trace-flags; bit 0 is "sampled" */
} trace_parent_t;

/*
 * Parses a traceparent header value (surrounding spaces and tabs allowed).
 * Version 00 must be exactly version-traceid-parentid-flags; a later
 * version (not ff) may carry more after a '-', which is ignored. Hex digits
 * must be lowercase; an all-zero trace id or parent id is invalid. Returns
 * 0 and fills *out, or ERR_INVALID (then *out is zeroed).
 */
int trace_parse_traceparent(const char *v, size_t len, trace_parent_t *out);

#endif
