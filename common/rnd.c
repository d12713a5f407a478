/*
 * common/rnd.c - random bytes that never block an event loop (see rnd.h).
 */
#include <errno.h>
#include <sys/random.h>

#include <openssl/rand.h>

#include "rnd.h"

int rnd_init(void)
{
    unsigned char b;
    for (;;) {
        ssize_t n = getrandom(&b, 1, 0);
        if (n == 1)
            return 0;
        if (n < 0 && errno != EINTR)
            return -1;
    }
}

int rnd_bytes(void *buf, size_t len)
{
    for (size_t got = 0; got < len;) {
        ssize_t n = getrandom((char *)buf + got, len - got, GRND_NONBLOCK);
        if (n > 0) {
            got += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        /* EAGAIN (pool not ready) or anything else: OpenSSL's DRBG, seeded at start-up. */
        return RAND_bytes((unsigned char *)buf + got, (int)(len - got)) == 1 ? 0 : -1;
    }
    return 0;
}
