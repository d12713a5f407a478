/*
 * api/file_http.h - the HTTP side of files, as pure functions: the file
 * name a client sends in Content-Disposition (RFC 6266 with RFC 8187
 * ext-values), the Content-Disposition the server answers with, the media
 * type of an upload, and byte ranges (RFC 9110 section 14).
 *
 * Nothing here touches a request: every function reads the bytes it is
 * given and writes into the caller's buffer, so the unit tests drive them
 * directly (tests/unit/api/file_http_test.c) and the handlers of
 * api/attachments.c only map the outcomes to answers.
 */
#ifndef CLIENTELE_API_FILE_HTTP_H
#define CLIENTELE_API_FILE_HTTP_H

#include <stddef.h>
#include <stdint.h>

/* Longest file name kept, in bytes of UTF-8 (what most file systems allow for one name). */
#define FILE_HTTP_NAME_MAX 255
/* Longest media type kept, in bytes. */
#define FILE_HTTP_MEDIA_TYPE_MAX 255
/* Room for the Content-Disposition answer of any name file_http_parse_disposition accepts. */
#define FILE_HTTP_DISPOSITION_MAX 1100

/* Why a file name was refused (file_http_parse_disposition). */
typedef enum {
    FH_NAME_OK = 0,
    FH_NAME_MISSING,   /* no Content-Disposition, or no filename in it */
    FH_NAME_MALFORMED, /* the header does not follow RFC 6266 */
    FH_NAME_ENCODING,  /* not UTF-8, or filename* in a character set other than UTF-8 and ISO-8859-1 */
    FH_NAME_EMPTY,     /* "" */
    FH_NAME_TOO_LONG,  /* more than FILE_HTTP_NAME_MAX bytes */
    FH_NAME_SEPARATOR, /* holds / or \ */
    FH_NAME_CONTROL,   /* holds a control character (C0, DEL, C1, or a bidirectional or line format control) */
    FH_NAME_DOTS,      /* "." or ".." */
} file_http_name_err_t;

/*
 * Reads the file name of a Content-Disposition value (v NULL: no header)
 * into out (NUL-terminated UTF-8; outlen at least FILE_HTTP_NAME_MAX + 1).
 * filename* is preferred over filename when both are given (RFC 6266 4.3);
 * a filename* in a character set this server does not decode is ignored in
 * favour of filename. Any disposition type is accepted. Returns FH_NAME_OK
 * or the reason the name is refused.
 */
file_http_name_err_t file_http_parse_disposition(const char *v, size_t len, char *out, size_t outlen);
/* The validation error code (FieldError.code) and message of a refusal. */
const char *file_http_name_code(file_http_name_err_t err);
const char *file_http_name_message(file_http_name_err_t err);
/* Checks a decoded name by the rules above (UTF-8, length, separators, controls, dots). */
file_http_name_err_t file_http_check_name(const char *name, size_t len);

/*
 * The Content-Disposition answer for a stored name (accepted by
 * file_http_check_name): `attachment; filename="<ASCII fallback>";
 * filename*=UTF-8''<percent-encoded>`. Writes NUL-terminated text into buf
 * (len at least FILE_HTTP_DISPOSITION_MAX) and returns its length.
 */
size_t file_http_disposition(const char *name, char *buf, size_t len);

/*
 * Checks a Content-Type value and writes its canonical form into out:
 * type and subtype in lower case, each parameter as "; name=value" with
 * the name in lower case and the value as sent (token or quoted-string).
 * Returns 0, or -1 when the value is not a media type or is longer than
 * FILE_HTTP_MEDIA_TYPE_MAX (outlen at least FILE_HTTP_MEDIA_TYPE_MAX + 1).
 */
int file_http_media_type(const char *v, size_t len, char *out, size_t outlen);

/* What a Range header asks of a representation of `size` bytes. */
typedef enum {
    FH_RANGE_NONE,          /* no header, another unit, or a malformed one: send everything (200) */
    FH_RANGE_ONE,           /* one satisfiable range: [*first, *last] (206) */
    FH_RANGE_MULTI,         /* several ranges: sent whole (200), which RFC 9110 14.2 allows */
    FH_RANGE_UNSATISFIABLE, /* one range, and no byte of it exists (416) */
} file_http_range_t;

/* Reads a Range value (v NULL: no header) against a size; fills first and last for FH_RANGE_ONE. */
file_http_range_t file_http_parse_range(const char *v, size_t len, uint64_t size, uint64_t *first, uint64_t *last);

#endif
