/*
 * api/docs.c - serves the API reference page: GET /docs and GET /docs/{file}.
 *
 * The page is a few lines of HTML made once at start-up (api_docs_init):
 * Redoc's <redoc> element pointed at /openapi.json and one script, the
 * standalone bundle embedded by api/docs_blob.S. The script's URL names
 * its content (redoc-<hash>.js), so a browser may keep it for a year
 * without asking again, and a new build is fetched under a new name; the
 * page itself is revalidated on every visit (ETag, 304). The bundle's
 * licence notice, which its first line points to, is served beside it.
 * Bodies are sent from the embedded bytes without a copy. The page's
 * Content-Security-Policy allows scripts, data and workers from this origin
 * only, and the inline styles Redoc's components write.
 */
#include <stdio.h>
#include <string.h>

#include <openssl/sha.h>

#include "api.h"
#include "crud.h"

extern const char api_docs_script[];
extern const char api_docs_script_end[];
extern const char api_docs_license[];
extern const char api_docs_license_end[];

#define LICENSE_NAME "redoc.standalone.js.LICENSE.txt"

static size_t blob_len(const char *start, const char *end)
{
    return (size_t)(end - start) - 1; /* the blobs end with a NUL */
}

static void hex_of(const char *s, size_t len, char *out, size_t nhex)
{
    unsigned char d[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)s, len, d);
    for (size_t i = 0; i < nhex / 2 && i < sizeof(d); i++)
        snprintf(out + 2 * i, 3, "%02x", d[i]);
}

/* Copies s into out with HTML's five special characters escaped; returns 0, or -1 when it does not fit. */
static int html_escape(const char *s, char *out, size_t outlen)
{
    size_t o = 0;
    for (; *s != '\0'; s++) {
        const char *rep = NULL;
        switch (*s) {
        case '&':
            rep = "&amp;";
            break;
        case '<':
            rep = "&lt;";
            break;
        case '>':
            rep = "&gt;";
            break;
        case '"':
            rep = "&quot;";
            break;
        case '\'':
            rep = "&#39;";
            break;
        }
        size_t n = rep != NULL ? strlen(rep) : 1;
        if (o + n >= outlen)
            return -1;
        memcpy(out + o, rep != NULL ? rep : s, n);
        o += n;
    }
    out[o] = '\0';
    return 0;
}

void api_docs_init(api_docs_t *d, const char *title)
{
    char hex[33] = "";
    hex_of(api_docs_script, blob_len(api_docs_script, api_docs_script_end), hex, 32);
    snprintf(d->script_name, sizeof(d->script_name), "redoc-%.16s.js", hex);
    snprintf(d->script_etag, sizeof(d->script_etag), "\"%s\"", hex);
    hex_of(api_docs_license, blob_len(api_docs_license, api_docs_license_end), hex, 32);
    snprintf(d->license_etag, sizeof(d->license_etag), "\"%s\"", hex);

    char safe[1024];
    if (title == NULL || strlen(title) > 200 || html_escape(title, safe, sizeof(safe)) != 0)
        snprintf(safe, sizeof(safe), "API");
    int n = snprintf(d->html, sizeof(d->html),
                     "<!DOCTYPE html>\n"
                     "<html lang=\"en\">\n"
                     "<head>\n"
                     "<meta charset=\"utf-8\">\n"
                     "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
                     "<meta name=\"referrer\" content=\"no-referrer\">\n"
                     "<title>%s reference</title>\n"
                     "</head>\n"
                     "<body>\n"
                     "<noscript>This page needs JavaScript. The spec it shows is at <a href=\"/openapi.yaml\">"
                     "/openapi.yaml</a> and <a href=\"/openapi.json\">/openapi.json</a>.</noscript>\n"
                     "<redoc spec-url=\"/openapi.json\"></redoc>\n"
                     "<script src=\"/docs/%s\"></script>\n"
                     "</body>\n"
                     "</html>\n",
                     safe, d->script_name);
    d->html_len = n > 0 && (size_t)n < sizeof(d->html) ? (size_t)n : 0; /* the template is far shorter */
    hex_of(d->html, d->html_len, hex, 32);
    snprintf(d->html_etag, sizeof(d->html_etag), "\"%s\"", hex);
}

/* The If-None-Match of the request names etag (a quoted tag). */
static int not_modified(api_req_t *ar, const char *etag)
{
    ssize_t i = h2o_find_header(&ar->req->headers, H2O_TOKEN_IF_NONE_MATCH, -1);
    if (i < 0)
        return 0;
    char tag[40];
    size_t len = strlen(etag) - 2;
    memcpy(tag, etag + 1, len);
    tag[len] = '\0';
    return crud_none_match_hits(ar->req->headers.entries[i].value.base, ar->req->headers.entries[i].value.len, tag);
}

/* Answers 200 with body, or 304 when the client holds this version; the caching headers go on both. */
static int send_cached(api_req_t *ar, const char *content_type, const char *cache_control, const char *etag,
                       const char *body, size_t len)
{
    api_add_header(ar, "cache-control", cache_control);
    api_add_header(ar, "etag", etag);
    api_add_header(ar, "x-content-type-options", "nosniff");
    if (not_modified(ar, etag))
        return api_send_raw(ar, 304, NULL, "", 0);
    return api_send_static(ar, 200, content_type, body, len);
}

int docs_get_page(api_req_t *ar)
{
    const api_docs_t *d = &ar->thread->server->docs;
    api_add_header(ar, "content-security-policy", API_DOCS_CSP);
    api_add_header(ar, "referrer-policy", "no-referrer");
    return send_cached(ar, "text/html; charset=utf-8", "no-cache", d->html_etag, d->html, d->html_len);
}

int docs_get_file(api_req_t *ar)
{
    const api_docs_t *d = &ar->thread->server->docs;
    const char *file = api_param_str(ar, "file");
    if (strcmp(file, d->script_name) == 0)
        return send_cached(ar, "text/javascript; charset=utf-8", "public, max-age=31536000, immutable", d->script_etag,
                           api_docs_script, blob_len(api_docs_script, api_docs_script_end));
    if (strcmp(file, LICENSE_NAME) == 0)
        return send_cached(ar, "text/plain; charset=utf-8", "public, max-age=86400", d->license_etag, api_docs_license,
                           blob_len(api_docs_license, api_docs_license_end));
    return api_send_error(ar, ERR_NOT_FOUND, "The reference page has no such file.");
}
