/*
 * common/rnd.h - random bytes that never block an event loop.
 *
 * getrandom(..., 0) blocks until the kernel's random pool is initialised,
 * which can take a while early after boot. Processes call rnd_init() once
 * before their loops start (it may block then, which is harmless); after
 * that rnd_bytes() asks with GRND_NONBLOCK and, should the kernel still
 * answer EAGAIN, falls back to OpenSSL's DRBG. Thread-safe; no state.
 */
#ifndef CLIENTELE_COMMON_RND_H
#define CLIENTELE_COMMON_RND_H

#include <stddef.h>

/* Waits (blocking) until the kernel's pool is ready. Start-up only. Returns 0 or -1. */
int rnd_init(void);
/* Fills buf with len cryptographically secure random bytes without blocking; 0 or -1. */
int rnd_bytes(void *buf, size_t len);

#endif
