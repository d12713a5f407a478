/*
 * api/file_http.c - the HTTP side of files, as pure functions (see
 * file_http.h).
 *
 * The parsers follow the RFCs' grammars closely and refuse what does not
 * fit, except where the RFCs tell a recipient to ignore: a Range in another
 * unit or of the wrong shape is ignored (the whole file is sent), and a
 * filename* in an unknown character set gives way to filename. A file name
 * is judged after decoding, so %2F or a backslash escape cannot smuggle a
 * separator past the check.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "file_http.h"

/* --- characters ------------------------------------------------------------- */

/* RFC 9110 tchar. */
static int is_tchar(unsigned char c)
{
    return isalnum(c) || (c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/* RFC 8187 attr-char. */
static int is_attr_char(unsigned char c)
{
    return isalnum(c) || (c != 0 && strchr("!#$&+-.^_`|~", c) != NULL);
}

static int hexval(int c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

static size_t skip_ows(const char *v, size_t len, size_t i)
{
    while (i < len && (v[i] == ' ' || v[i] == '\t'))
        i++;
    return i;
}

static size_t token_end(const char *v, size_t len, size_t i)
{
    while (i < len && is_tchar((unsigned char)v[i]))
        i++;
    return i;
}

/*
 * Decodes the UTF-8 sequence at s[*i] (strict: no overlong forms, no
 * surrogates, nothing above U+10FFFF) and advances *i; -1 when invalid.
 */
static long next_cp(const unsigned char *s, size_t len, size_t *i)
{
    unsigned char c = s[*i];
    long cp;
    int n;
    if (c < 0x80) {
        (*i)++;
        return c;
    } else if (c >= 0xC2 && c <= 0xDF) {
        cp = c & 0x1F, n = 1;
    } else if (c >= 0xE0 && c <= 0xEF) {
        cp = c & 0x0F, n = 2;
    } else if (c >= 0xF0 && c <= 0xF4) {
        cp = c & 0x07, n = 3;
    } else {
        return -1;
    }
    for (int k = 1; k <= n; k++) {
        if (*i + (size_t)k >= len || (s[*i + (size_t)k] & 0xC0) != 0x80)
            return -1;
        cp = (cp << 6) | (s[*i + (size_t)k] & 0x3F);
    }
    static const long min[] = {0, 0x80, 0x800, 0x10000};
    if (cp < min[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return -1;
    *i += (size_t)n + 1;
    return cp;
}

/* Control characters a file name may not hold: C0, DEL, C1, bidirectional and line format controls. */
static int is_name_control(long cp)
{
    return cp < 0x20 || (cp >= 0x7F && cp <= 0x9F) || cp == 0x200E || cp == 0x200F || (cp >= 0x2028 && cp <= 0x202E) ||
           (cp >= 0x2066 && cp <= 0x2069) || cp == 0xFEFF;
}

file_http_name_err_t file_http_check_name(const char *name, size_t len)
{
    const unsigned char *s = (const unsigned char *)name;
    if (len == 0)
        return FH_NAME_EMPTY;
    if (len > FILE_HTTP_NAME_MAX)
        return FH_NAME_TOO_LONG;
    int separator = 0, control = 0;
    for (size_t i = 0; i < len;) {
        long cp = next_cp(s, len, &i);
        if (cp < 0)
            return FH_NAME_ENCODING;
        separator |= cp == '/' || cp == '\\';
        control |= is_name_control(cp);
    }
    if (separator)
        return FH_NAME_SEPARATOR;
    if (control)
        return FH_NAME_CONTROL;
    if ((len == 1 && name[0] == '.') || (len == 2 && name[0] == '.' && name[1] == '.'))
        return FH_NAME_DOTS;
    return FH_NAME_OK;
}

/* --- Content-Disposition in ---------------------------------------------------- */

/* A parameter value as found: [base, base + len) still encoded (quoted-string without its quotes, or ext-value). */
typedef struct st_param_t {
    int present;
    int quoted; /* a quoted-string: backslash escapes remain to be undone */
    const char *base;
    size_t len;
} param_t;

/*
 * Reads a parameter value at v[*i]: a quoted-string, or else a run of
 * token characters (an ext-value's characters are token characters too,
 * with '%'). Returns -1 when malformed.
 */
static int read_value(const char *v, size_t len, size_t *i, param_t *p)
{
    size_t k = *i;
    if (k < len && v[k] == '"') {
        size_t start = ++k;
        while (k < len && v[k] != '"') {
            if (v[k] == '\\') {
                if (k + 1 >= len)
                    return -1;
                k++;
            }
            k++;
        }
        if (k >= len)
            return -1;
        *p = (param_t){1, 1, v + start, k - start};
        *i = k + 1;
        return 0;
    }
    size_t end = token_end(v, len, k);
    if (end == k)
        return -1;
    *p = (param_t){1, 0, v + k, end - k};
    *i = end;
    return 0;
}

/* Copies a filename="..." or filename=token value, undoing backslash escapes; -1 when it does not fit. */
static int plain_value(const param_t *p, char *out, size_t outlen, size_t *n)
{
    size_t o = 0;
    for (size_t k = 0; k < p->len; k++) {
        char c = p->base[k];
        if (p->quoted && c == '\\')
            c = p->base[++k];
        if (o + 1 >= outlen)
            return -1;
        out[o++] = c;
    }
    out[o] = '\0';
    *n = o;
    return 0;
}

/*
 * Decodes an RFC 8187 ext-value (charset'language'pct-encoded) into UTF-8.
 * Returns 0, 1 when its character set is one this server does not decode,
 * -1 when it is malformed, or -2 when it does not fit in out.
 */
static int ext_value(const param_t *p, char *out, size_t outlen, size_t *n)
{
    if (p->quoted)
        return -1;
    const char *s = p->base, *end = p->base + p->len;
    const char *q1 = memchr(s, '\'', p->len);
    const char *q2 = q1 != NULL ? memchr(q1 + 1, '\'', (size_t)(end - q1 - 1)) : NULL;
    if (q1 == NULL || q2 == NULL)
        return -1;
    size_t cslen = (size_t)(q1 - s);
    int latin1;
    if (cslen == 5 && strncasecmp(s, "UTF-8", 5) == 0)
        latin1 = 0;
    else if (cslen == 10 && strncasecmp(s, "ISO-8859-1", 10) == 0)
        latin1 = 1;
    else
        return cslen > 0 ? 1 : -1;
    size_t o = 0;
    for (const char *c = q2 + 1; c < end; c++) {
        int byte;
        if (*c == '%') {
            if (end - c < 3 || hexval(c[1]) < 0 || hexval(c[2]) < 0)
                return -1;
            byte = hexval(c[1]) * 16 + hexval(c[2]);
            c += 2;
        } else if (is_attr_char((unsigned char)*c)) {
            byte = (unsigned char)*c;
        } else {
            return -1;
        }
        if (latin1 && byte >= 0x80) {
            if (o + 2 >= outlen)
                return -2;
            out[o++] = (char)(0xC0 | (byte >> 6));
            out[o++] = (char)(0x80 | (byte & 0x3F));
        } else {
            if (o + 1 >= outlen)
                return -2;
            out[o++] = (char)byte;
        }
    }
    out[o] = '\0';
    *n = o;
    return 0;
}

file_http_name_err_t file_http_parse_disposition(const char *v, size_t len, char *out, size_t outlen)
{
    if (v == NULL)
        return FH_NAME_MISSING;
    param_t plain = {0}, ext = {0};
    size_t i = skip_ows(v, len, 0), end;
    /* The disposition type: any token (inline, attachment, or an extension). */
    if ((end = token_end(v, len, i)) == i)
        return FH_NAME_MALFORMED;
    i = skip_ows(v, len, end);
    while (i < len) {
        if (v[i] != ';')
            return FH_NAME_MALFORMED;
        i = skip_ows(v, len, i + 1);
        if (i == len)
            break; /* a trailing ';' */
        size_t name = i;
        if ((end = token_end(v, len, i)) == i)
            return FH_NAME_MALFORMED;
        size_t nlen = end - name;
        i = skip_ows(v, len, end);
        if (i == len || v[i] != '=')
            return FH_NAME_MALFORMED;
        i = skip_ows(v, len, i + 1);
        param_t p;
        if (read_value(v, len, &i, &p) != 0)
            return FH_NAME_MALFORMED;
        param_t *slot = nlen == 8 && strncasecmp(v + name, "filename", 8) == 0    ? &plain
                        : nlen == 9 && strncasecmp(v + name, "filename*", 9) == 0 ? &ext
                                                                                  : NULL;
        if (slot != NULL) {
            if (slot->present)
                return FH_NAME_MALFORMED; /* RFC 6266 4.1: no parameter twice */
            *slot = p;
        }
        i = skip_ows(v, len, i);
    }
    size_t n = 0;
    /* Room for a name that is too long, so that it is refused as such and not as malformed. */
    char buf[4 * FILE_HTTP_NAME_MAX + 8];
    int got = 0;
    if (ext.present) {
        int r = ext_value(&ext, buf, sizeof(buf), &n);
        if (r < 0)
            return r == -2 ? FH_NAME_TOO_LONG : FH_NAME_MALFORMED;
        if (r == 1 && !plain.present)
            return FH_NAME_ENCODING;
        got = r == 0;
    }
    if (!got && plain.present) {
        if (plain_value(&plain, buf, sizeof(buf), &n) != 0)
            return FH_NAME_TOO_LONG;
        got = 1;
    }
    if (!got)
        return FH_NAME_MISSING;
    file_http_name_err_t e = file_http_check_name(buf, n);
    if (e != FH_NAME_OK)
        return e;
    if (n + 1 > outlen)
        return FH_NAME_TOO_LONG;
    memcpy(out, buf, n + 1);
    return FH_NAME_OK;
}

const char *file_http_name_code(file_http_name_err_t err)
{
    switch (err) {
    case FH_NAME_MISSING:
        return "required";
    case FH_NAME_MALFORMED:
    case FH_NAME_ENCODING:
        return "invalid_format";
    case FH_NAME_EMPTY:
        return "too_short";
    case FH_NAME_TOO_LONG:
        return "too_long";
    default:
        return "invalid_value";
    }
}

const char *file_http_name_message(file_http_name_err_t err)
{
    switch (err) {
    case FH_NAME_MISSING:
        return "is required: send Content-Disposition: attachment; filename=\"name.ext\"";
    case FH_NAME_MALFORMED:
        return "Content-Disposition must read attachment; filename=\"name.ext\" or filename*=UTF-8''name.ext";
    case FH_NAME_ENCODING:
        return "must be UTF-8 (filename*=UTF-8''... percent-encoded, or ISO-8859-1)";
    case FH_NAME_EMPTY:
        return "must not be empty";
    case FH_NAME_TOO_LONG:
        return "must be at most 255 bytes of UTF-8";
    case FH_NAME_SEPARATOR:
        return "must not contain a path separator (/ or \\)";
    case FH_NAME_CONTROL:
        return "must not contain control characters";
    case FH_NAME_DOTS:
        return "must not be . or ..";
    default:
        return "is invalid";
    }
}

/* --- Content-Disposition out ----------------------------------------------------- */

size_t file_http_disposition(const char *name, char *buf, size_t len)
{
    static const char hex[] = "0123456789ABCDEF";
    const unsigned char *s = (const unsigned char *)name;
    size_t n = strlen(name), o = 0;
    /* Leaves room for the NUL; the sizes below cannot exceed FILE_HTTP_DISPOSITION_MAX for a checked name. */
#define PUT(c)                                                                                                         \
    do {                                                                                                               \
        if (o + 1 < len)                                                                                               \
            buf[o++] = (char)(c);                                                                                      \
    } while (0)
    const char *head = "attachment; filename=\"";
    for (const char *h = head; *h != '\0'; h++)
        PUT(*h);
    /* The fallback for clients without RFC 8187: ASCII, one '_' for each other character and for '"'. */
    for (size_t i = 0; i < n;) {
        long cp = next_cp(s, n, &i);
        PUT(cp >= 0x20 && cp < 0x7F && cp != '"' && cp != '\\' && cp != '%' ? (char)cp : '_');
    }
    const char *mid = "\"; filename*=UTF-8''";
    for (const char *h = mid; *h != '\0'; h++)
        PUT(*h);
    for (size_t i = 0; i < n; i++) {
        if (is_attr_char(s[i])) {
            PUT(s[i]);
        } else {
            PUT('%');
            PUT(hex[s[i] >> 4]);
            PUT(hex[s[i] & 15]);
        }
    }
#undef PUT
    if (len > 0)
        buf[o] = '\0';
    return o;
}

/* --- media types ------------------------------------------------------------------ */

int file_http_media_type(const char *v, size_t len, char *out, size_t outlen)
{
    size_t i = skip_ows(v, len, 0), o = 0, end;
#define OUT(c)                                                                                                         \
    do {                                                                                                               \
        if (o + 1 >= outlen || o >= FILE_HTTP_MEDIA_TYPE_MAX)                                                          \
            return -1;                                                                                                 \
        out[o++] = (char)(c);                                                                                          \
    } while (0)
    /* type "/" subtype */
    if ((end = token_end(v, len, i)) == i)
        return -1;
    for (; i < end; i++)
        OUT(tolower((unsigned char)v[i]));
    if (i == len || v[i] != '/')
        return -1;
    OUT('/');
    i++;
    if ((end = token_end(v, len, i)) == i)
        return -1;
    for (; i < end; i++)
        OUT(tolower((unsigned char)v[i]));
    /* *( OWS ";" OWS [ name "=" value ] ) */
    for (;;) {
        i = skip_ows(v, len, i);
        if (i == len)
            break;
        if (v[i] != ';')
            return -1;
        i = skip_ows(v, len, i + 1);
        if (i == len || v[i] == ';')
            continue;
        if ((end = token_end(v, len, i)) == i || end == len || v[end] != '=')
            return -1;
        OUT(';');
        OUT(' ');
        for (; i < end; i++)
            OUT(tolower((unsigned char)v[i]));
        OUT('=');
        i++;
        if (i < len && v[i] == '"') {
            OUT('"');
            for (i++; i < len && v[i] != '"'; i++) {
                unsigned char c = (unsigned char)v[i];
                if (c == '\\') {
                    OUT('\\');
                    if (++i == len)
                        return -1;
                    c = (unsigned char)v[i];
                }
                if ((c < 0x20 && c != '\t') || c == 0x7F)
                    return -1;
                OUT(c);
            }
            if (i == len)
                return -1;
            OUT('"');
            i++;
        } else {
            if ((end = token_end(v, len, i)) == i)
                return -1;
            for (; i < end; i++)
                OUT(v[i]);
        }
    }
#undef OUT
    out[o] = '\0';
    return 0;
}

/* --- ranges --------------------------------------------------------------------- */

/* Reads digits at v[*i] (saturating at UINT64_MAX); -1 when there are none. */
static int read_pos(const char *v, size_t len, size_t *i, uint64_t *out)
{
    size_t k = *i;
    uint64_t n = 0;
    while (k < len && v[k] >= '0' && v[k] <= '9') {
        unsigned d = (unsigned)(v[k] - '0');
        n = n > (UINT64_MAX - d) / 10 ? UINT64_MAX : n * 10 + d;
        k++;
    }
    if (k == *i)
        return -1;
    *i = k;
    *out = n;
    return 0;
}

file_http_range_t file_http_parse_range(const char *v, size_t len, uint64_t size, uint64_t *first, uint64_t *last)
{
    if (v == NULL)
        return FH_RANGE_NONE;
    size_t i = skip_ows(v, len, 0);
    if (len - i < 6 || strncasecmp(v + i, "bytes", 5) != 0)
        return FH_RANGE_NONE;
    i = skip_ows(v, len, i + 5);
    if (i == len || v[i] != '=')
        return FH_RANGE_NONE;
    i++;
    int n = 0, has_first = 0;
    uint64_t a = 0, b = 0;
    int has_last = 0;
    /* range-set = 1#range-spec: empty list elements are allowed (RFC 9110 5.6.1). */
    for (;;) {
        i = skip_ows(v, len, i);
        if (i < len && v[i] == ',') {
            i++;
            continue;
        }
        if (i == len)
            break;
        uint64_t x = 0, y = 0;
        int hx = read_pos(v, len, &i, &x) == 0;
        if (i == len || v[i] != '-')
            return FH_RANGE_NONE;
        i++;
        int hy = read_pos(v, len, &i, &y) == 0;
        if (!hx && !hy)
            return FH_RANGE_NONE;
        if (hx && hy && y < x)
            return FH_RANGE_NONE; /* an invalid range-spec: the header is ignored */
        i = skip_ows(v, len, i);
        if (i < len && v[i] != ',')
            return FH_RANGE_NONE;
        n++;
        a = x, b = y, has_first = hx, has_last = hy;
    }
    if (n == 0)
        return FH_RANGE_NONE;
    if (n > 1)
        return FH_RANGE_MULTI;
    if (has_first) {
        if (a >= size)
            return FH_RANGE_UNSATISFIABLE;
        *first = a;
        *last = has_last && b < size - 1 ? b : size - 1;
        return FH_RANGE_ONE;
    }
    /* A suffix: the last b bytes. */
    if (b == 0 || size == 0)
        return FH_RANGE_UNSATISFIABLE;
    *first = b >= size ? 0 : size - b;
    *last = size - 1;
    return FH_RANGE_ONE;
}
