/*
 * api/router.c - method + path-template matching with typed parameters.
 *
 * The request path is split into segments once and each segment is
 * percent-decoded into the scratch buffer; templates are then compared
 * segment by segment. Literal segments win over parameters because a
 * literal match is tried for every template before reporting a method
 * mismatch, and the table lists literal routes (".../bulk") before
 * the parameter routes they overlap. The route count is small (tens), so a
 * linear scan beats anything cleverer.
 */
#include <string.h>

#include "router.h"

static const struct {
    const char *name;
    unsigned bit;
} methods[] = {{"GET", ROUTER_GET},     {"HEAD", ROUTER_HEAD},     {"POST", ROUTER_POST},
               {"PUT", ROUTER_PUT},     {"PATCH", ROUTER_PATCH},   {"DELETE", ROUTER_DELETE},
               {"OPTIONS", ROUTER_OPTIONS}};

unsigned router_method_bit(const char *method, size_t len)
{
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
        if (strlen(methods[i].name) == len && memcmp(methods[i].name, method, len) == 0)
            return methods[i].bit;
    return 0;
}

size_t router_format_allow(unsigned allow, char *buf, size_t len)
{
    size_t n = 0;
    if (len == 0)
        return 0;
    buf[0] = '\0';
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
        if ((allow & methods[i].bit) == 0)
            continue;
        size_t need = strlen(methods[i].name) + (n > 0 ? 2 : 0);
        if (n + need + 1 > len)
            break;
        if (n > 0) {
            memcpy(buf + n, ", ", 2);
            n += 2;
        }
        memcpy(buf + n, methods[i].name, strlen(methods[i].name));
        n += strlen(methods[i].name);
        buf[n] = '\0';
    }
    return n;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

typedef struct st_segment_t {
    const char *s; /* decoded, NUL-terminated, in scratch */
    size_t len;
} segment_t;

/* Splits and decodes the path; returns the segment count or -1 when it cannot match anything. */
static int split_path(const char *path, size_t len, char *scratch, segment_t *segs)
{
    if (len == 0 || path[0] != '/')
        return -1;
    int n = 0;
    size_t i = 1;
    char *out = scratch;
    if (len == 1)
        return 0;
    while (i <= len) {
        if (n == ROUTER_MAX_SEGMENTS)
            return -1;
        segs[n].s = out;
        size_t start = i;
        for (; i < len && path[i] != '/'; i++) {
            char c = path[i];
            if (c == '%') {
                int hi, lo;
                if (i + 2 >= len || (hi = hexval(path[i + 1])) < 0 || (lo = hexval(path[i + 2])) < 0)
                    return -1;
                c = (char)(hi * 16 + lo);
                if (c == '\0')
                    return -1;
                i += 2;
            }
            *out++ = c;
        }
        segs[n].len = (size_t)(out - segs[n].s);
        *out++ = '\0';
        /* Empty segments ("//", or a trailing "/") match nothing. */
        if (i == start)
            return -1;
        n++;
        i++; /* skip '/' */
    }
    return n;
}

static int parse_i64(const char *s, size_t len, int64_t *out)
{
    if (len == 0 || len > 18)
        return -1;
    int64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    if (v <= 0 || (len > 1 && s[0] == '0'))
        return -1;
    *out = v;
    return 0;
}

/* Compares one template with the segments; fills params on success. */
static int match_template(const char *tpl, const segment_t *segs, int nsegs, router_match_t *m)
{
    int seg = 0;
    const char *p = tpl;
    m->nparams = 0;
    if (strcmp(tpl, "/") == 0)
        return nsegs == 0;
    while (*p == '/') {
        p++;
        const char *end = strchr(p, '/');
        size_t plen = end != NULL ? (size_t)(end - p) : strlen(p);
        if (seg >= nsegs)
            return 0;
        if (p[0] == '{') {
            const char *colon = memchr(p, ':', plen);
            if (colon == NULL || m->nparams == ROUTER_MAX_PARAMS)
                return 0;
            router_param_t *rp = &m->params[m->nparams];
            rp->name = p + 1;
            rp->name_len = (size_t)(colon - p - 1);
            rp->str = segs[seg].s;
            rp->i64 = 0;
            size_t tlen = plen - (size_t)(colon - p) - 2;
            if (tlen == 3 && memcmp(colon + 1, "int", 3) == 0) {
                if (parse_i64(segs[seg].s, segs[seg].len, &rp->i64) != 0)
                    return 0;
            } else if (segs[seg].len > 255) {
                return 0;
            }
            m->nparams++;
        } else if (plen != segs[seg].len || memcmp(p, segs[seg].s, plen) != 0) {
            return 0;
        }
        seg++;
        p += plen;
    }
    return seg == nsegs;
}

int router_match(const char *const *templates, const unsigned *methods_, size_t ntemplates, unsigned method,
                 const char *path, size_t path_len, char *scratch, router_match_t *m)
{
    segment_t segs[ROUTER_MAX_SEGMENTS];
    int nsegs = split_path(path, path_len, scratch, segs);
    unsigned want = method == ROUTER_HEAD ? ROUTER_GET : method, allow = 0;
    int found = -1;
    router_match_t tmp;

    m->route = -1;
    m->allow = 0;
    m->nparams = 0;
    if (nsegs < 0)
        return ROUTER_ERR_NOT_FOUND;
    for (size_t i = 0; i < ntemplates; i++) {
        /* The first template that matches the path owns it; only its twins (other methods) count. */
        if (found >= 0 && strcmp(templates[i], templates[found]) != 0)
            continue;
        if (!match_template(templates[i], segs, nsegs, &tmp))
            continue;
        if (found < 0)
            found = (int)i;
        allow |= methods_[i];
        if (methods_[i] == want && m->route < 0) {
            *m = tmp;
            m->route = (int)i;
        }
    }
    if (found < 0)
        return ROUTER_ERR_NOT_FOUND;
    m->allow = allow | ((allow & ROUTER_GET) ? ROUTER_HEAD : 0) | ROUTER_OPTIONS;
    return m->route >= 0 ? m->route : ROUTER_ERR_METHOD;
}

const router_param_t *router_param(const router_match_t *m, const char *name)
{
    size_t len = strlen(name);
    for (int i = 0; i < m->nparams; i++)
        if (m->params[i].name_len == len && memcmp(m->params[i].name, name, len) == 0)
            return &m->params[i];
    return NULL;
}

size_t router_template_label(const char *tpl, char *buf, size_t len)
{
    size_t n = 0;
    if (len == 0)
        return 0;
    while (*tpl != '\0' && n + 1 < len) {
        if (*tpl == ':') {
            while (*tpl != '\0' && *tpl != '}')
                tpl++;
            continue;
        }
        buf[n++] = *tpl++;
    }
    buf[n] = '\0';
    return n;
}
