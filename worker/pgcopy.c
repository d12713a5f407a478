/*
 * worker/pgcopy.c - PostgreSQL's binary COPY format (see pgcopy.h).
 */
#include <string.h>

#include "common/err.h"
#include "pgcopy.h"

const char WK_PGCOPY_SIGNATURE[11] = "PGCOPY\n\377\r\n\0";

int wk_pgcopy_next(wk_pgcopy_reader_t *r, const void *msg, size_t len, int want, const unsigned char **f, int32_t *flen)
{
    const unsigned char *p = msg, *end = p + len;
    if (r->ended || want < 0 || want > 16)
        return ERR_INVALID;
    if (!r->header_done) {
        if (len < 19 || memcmp(p, WK_PGCOPY_SIGNATURE, sizeof(WK_PGCOPY_SIGNATURE)) != 0)
            return ERR_INVALID;
        /* Bits 0-15 are critical flags and bit 16 means OIDs: none may be set. */
        if ((wk_pgcopy_rd32(p + 11) & 0x1FFFFu) != 0)
            return ERR_INVALID;
        uint32_t ext = wk_pgcopy_rd32(p + 15);
        p += 19;
        if ((size_t)(end - p) < ext)
            return ERR_INVALID;
        p += ext;
        r->header_done = 1;
    }
    if (end - p < 2)
        return ERR_INVALID;
    int16_t nf = (int16_t)wk_pgcopy_rd16(p);
    p += 2;
    if (nf == -1) {
        r->ended = 1;
        return p == end ? 0 : ERR_INVALID;
    }
    if (nf != want)
        return ERR_INVALID;
    for (int i = 0; i < want; i++) {
        if (end - p < 4)
            return ERR_INVALID;
        int32_t fl = (int32_t)wk_pgcopy_rd32(p);
        p += 4;
        if (fl == -1) {
            f[i] = NULL;
            flen[i] = -1;
            continue;
        }
        if (fl < 0 || end - p < fl)
            return ERR_INVALID;
        f[i] = p;
        flen[i] = fl;
        p += fl;
    }
    if (p != end) {
        if (end - p == 2 && (int16_t)wk_pgcopy_rd16(p) == -1)
            r->ended = 1;
        else
            return ERR_INVALID;
    }
    return 1;
}
