/*
 * api/docs.h - the API reference page (GET /docs) and the files it loads.
 *
 * The page is Redoc's standalone bundle reading GET /openapi.json. The
 * bundle and its licence notice come from the pinned npm package
 * (openapi/package-lock.json) and are embedded in the binary at build time
 * (api/docs_blob.S), so the page needs no network, no CDN and no installed
 * files at run time. Everything a request needs is made once at start-up
 * into an api_docs_t that lives in the server and owns no heap memory.
 */
#ifndef CLIENTELE_API_DOCS_H
#define CLIENTELE_API_DOCS_H

#include <stddef.h>

typedef struct st_api_docs_t {
    char script_name[40]; /* "redoc-<16 hex digits of the bundle's SHA-256>.js", under /docs/ */
    char script_etag[40]; /* "\"<32 hex digits>\"" */
    char license_etag[40];
    char html_etag[40];
    size_t html_len;
    char html[2048]; /* the page, NUL-terminated */
} api_docs_t;

/*
 * Fills d: names the bundle after its content and writes the page, whose
 * <title> is `title` (the spec's info.title; NULL or anything longer than
 * 200 bytes gives a generic title). Cannot fail.
 */
void api_docs_init(api_docs_t *d, const char *title);

/* The Content-Security-Policy of the page: what Redoc needs from this origin, and nothing else. */
#define API_DOCS_CSP                                                                                                   \
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "                  \
    "font-src 'self' data:; connect-src 'self'; worker-src 'self' blob:; base-uri 'none'; form-action 'none'; "        \
    "frame-ancestors 'none'"

#endif
