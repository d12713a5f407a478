/*
 * worker/pgcopy.h - PostgreSQL's binary COPY format, read one CopyData message at a time.
 *
 * The format: the header "PGCOPY\n\377\r\n\0", a flags word (any critical
 * or OID flag is refused) and a header extension, then per tuple an int16
 * field count and per field an int32 length (-1 for NULL) and the bytes,
 * and finally an int16 -1. PostgreSQL sends one tuple per CopyData
 * message, the header with the first and the trailer in its own or after
 * the last tuple; a message holding anything else is refused.
 */
#ifndef CLIENTELE_WORKER_PGCOPY_H
#define CLIENTELE_WORKER_PGCOPY_H

#include <stddef.h>
#include <stdint.h>

/* Seconds from 1970-01-01 to 2000-01-01, PostgreSQL's epoch; days likewise. */
#define WK_PG_EPOCH_SECS INT64_C(946684800)
#define WK_PG_EPOCH_DAYS 10957

/* The 11 bytes every binary COPY starts with. */
extern const char WK_PGCOPY_SIGNATURE[11];

typedef struct st_wk_pgcopy_reader_t {
    int header_done, ended;
} wk_pgcopy_reader_t;

/*
 * Splits one CopyData message into exactly `want` fields (at most 16; NULL
 * fields get length -1 and a NULL pointer). Returns 1 for a tuple, 0 for
 * the trailer, ERR_INVALID for anything malformed (including data after
 * the trailer).
 */
int wk_pgcopy_next(wk_pgcopy_reader_t *r, const void *msg, size_t len, int want, const unsigned char **f,
                   int32_t *flen);

static inline uint16_t wk_pgcopy_rd16(const unsigned char *p)
{
    return (uint16_t)((unsigned)p[0] << 8 | p[1]);
}

static inline uint32_t wk_pgcopy_rd32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline uint64_t wk_pgcopy_rd64(const unsigned char *p)
{
    return (uint64_t)wk_pgcopy_rd32(p) << 32 | wk_pgcopy_rd32(p + 4);
}

#endif
