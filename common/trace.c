/*
 * common/trace.c - request ids and W3C trace context (see trace.h).
 *
 * The traceparent rules are those of W3C Trace Context level 1, section
 * 3.2 (field formats) and 4.3 (versioning): a parser of version 00 reads
 * the first four fields of any later version and ignores the rest, but
 * refuses version ff and anything that does not fit the fields exactly.
 */
#include <string.h>

#include "err.h"
#include "trace.h"

int trace_request_id_ok(const char *s, size_t len)
{
    if (s == NULL || len == 0 || len > TRACE_REQUEST_ID_MAX)
        return 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
              c == '.' || c == ':'))
            return 0;
    }
    return 1;
}

/* n lowercase hex digits, not all of them zero when nonzero is set. */
static int lower_hex(const char *s, size_t n, int nonzero)
{
    int any = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return 0;
        any |= c != '0';
    }
    return any || !nonzero;
}

int trace_id_ok(const char *s, size_t len)
{
    return s != NULL && len == 32 && lower_hex(s, 32, 1);
}

static unsigned hex_value(char c)
{
    return c <= '9' ? (unsigned)(c - '0') : (unsigned)(c - 'a' + 10);
}

/* version(2) '-' trace-id(32) '-' parent-id(16) '-' flags(2) */
#define TRACEPARENT_LEN 55

int trace_parse_traceparent(const char *v, size_t len, trace_parent_t *out)
{
    memset(out, 0, sizeof(*out));
    if (v == NULL)
        return ERR_INVALID;
    while (len > 0 && (*v == ' ' || *v == '\t'))
        v++, len--;
    while (len > 0 && (v[len - 1] == ' ' || v[len - 1] == '\t'))
        len--;
    if (len < TRACEPARENT_LEN || !lower_hex(v, 2, 0) || v[2] != '-' || v[35] != '-' || v[52] != '-')
        return ERR_INVALID;
    if (memcmp(v, "ff", 2) == 0)
        return ERR_INVALID;
    /* Version 00 is exactly 55 characters; later versions may append fields after a '-'. */
    if (memcmp(v, "00", 2) == 0 ? len != TRACEPARENT_LEN : len > TRACEPARENT_LEN && v[TRACEPARENT_LEN] != '-')
        return ERR_INVALID;
    if (!lower_hex(v + 3, 32, 1) || !lower_hex(v + 36, 16, 1) || !lower_hex(v + 53, 2, 0))
        return ERR_INVALID;
    memcpy(out->trace_id, v + 3, 32);
    memcpy(out->parent_id, v + 36, 16);
    out->flags = (uint8_t)(hex_value(v[53]) << 4 | hex_value(v[54]));
    return 0;
}
