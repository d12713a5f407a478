/*
 * common/err.h - the error codes every Clientele function returns.
 *
 * Functions return 0 on success or one of these negative values. The codes
 * are deliberately few: each maps to exactly one kind of answer a client
 * sees, and api/problem.c owns that mapping. Anything that takes a callback
 * either fails immediately (returning a code) or calls the callback later,
 * never both.
 */
#ifndef CLIENTELE_COMMON_ERR_H
#define CLIENTELE_COMMON_ERR_H

typedef enum {
    ERR_OK = 0,
    ERR_INVALID = -1,         /* malformed input (400) */
    ERR_UNAUTHENTICATED = -2, /* no or bad credentials (401) */
    ERR_FORBIDDEN = -3,       /* authenticated but not allowed (403) */
    ERR_NOT_FOUND = -4,       /* no such resource, or not visible (404) */
    ERR_CONFLICT = -5,        /* state conflict, duplicate key (409) */
    ERR_UNAVAILABLE = -6,     /* a dependency is down or saturated (503) */
    ERR_INTERNAL = -7,        /* a bug or an unexpected failure (500) */
    ERR_TIMEOUT = -8,         /* a dependency did not answer in time (504) */
    ERR_PRECONDITION = -9,    /* If-Match and friends failed (412) */
    ERR_TOO_LARGE = -10,      /* request body over the limit (413) */
    ERR_MEDIA_TYPE = -11,     /* wrong or missing Content-Type (415) */
    ERR_UNPROCESSABLE = -12,  /* well-formed but unacceptable content (422) */
    ERR_RATE_LIMITED = -13,   /* too many requests (429) */
    ERR_METHOD = -14,         /* known path, method not allowed (405) */
    ERR_RANGE = -15,          /* a Range no byte of the content satisfies (416) */
} err_t;

#define ERR__COUNT 16

/* A short, stable, lower-case name for the code ("not_found"), for logs. */
const char *err_name(int err);

#endif
