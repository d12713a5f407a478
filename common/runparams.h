/*
 * common/runparams.h - the parameters of analytics runs: checking and completing them.
 *
 * The API checks a client's params when a run or a schedule is created; the
 * scheduler completes a schedule's params when it enqueues a run. Both use
 * this one definition, so a run row always carries complete params (every
 * default filled in, as_of resolved to an instant) and a worker never has
 * to guess.
 */
#ifndef CLIENTELE_COMMON_RUNPARAMS_H
#define CLIENTELE_COMMON_RUNPARAMS_H

#include <stdint.h>

#include <jansson.h>

/* 1 when kind is a known run kind ("rfm", "clv"). */
int runparams_kind_ok(const char *kind);

/*
 * Checks `params` (a JSON object, or NULL for {}) for `kind` and returns a
 * new object with every default filled in, as_of defaulting to `now`
 * (unix seconds) and formatted as RFC 3339 UTC. Problems are appended to
 * `errors` as {"field": "params.<name>", "code", "message"} and NULL is
 * returned. The caller owns the result.
 */
json_t *runparams_complete(const char *kind, const json_t *params, int64_t now, json_t *errors);

/*
 * runparams_complete() for the worker: on failure returns NULL with one
 * sentence for the run's error in err ("horizon must be ...; tag ...").
 */
json_t *runparams_complete_text(const char *kind, const json_t *params, int64_t now, char *err, size_t errlen);

#endif
