/*
 * common/err.c - names for the error codes of common/err.h, for logs.
 */
#include "err.h"

const char *err_name(int err)
{
    static const char *const names[ERR__COUNT] = {
        "ok",        "invalid",    "unauthenticated", "forbidden",  "not_found",
        "conflict",  "unavailable", "internal",       "timeout",    "precondition_failed",
        "too_large", "unsupported_media_type", "unprocessable", "rate_limited", "method_not_allowed",
        "range_not_satisfiable",
    };
    if (err > 0 || err <= -ERR__COUNT)
        return "unknown";
    return names[-err];
}
