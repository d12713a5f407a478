/*
 * common/kv.h - Redis on the h2o event loop (hiredis async + reconnect).
 *
 * A kv_t is one loop thread's Redis connection. It connects in the
 * background (the host name is looked up on a helper thread, never on the
 * loop; connecting has a deadline), selects the configured database, and
 * reconnects with backoff when the connection drops. Every command has a
 * timeout. While the connection is down, commands fail at once with
 * ERR_UNAVAILABLE.
 */
#ifndef CLIENTELE_COMMON_KV_H
#define CLIENTELE_COMMON_KV_H

#include <stdatomic.h>
#include <stddef.h>

#include <hiredis/hiredis.h>

#define H2O_USE_LIBUV 0
#include <h2o/socket.h>

typedef struct st_kv_t kv_t;

/*
 * Called once per command: err 0 with the reply (which may be a Redis error
 * reply, REDIS_REPLY_ERROR), or ERR_UNAVAILABLE / ERR_TIMEOUT with reply
 * NULL. The reply is freed when the callback returns. The callback runs in
 * the log context (common/log.h) its command was sent in.
 */
typedef void (*kv_cb)(void *data, const redisReply *reply, int err);

/* What a client publishes for other threads (relaxed atomics); see db_gauges_t. */
typedef struct st_kv_gauges_t {
    _Atomic int up;                      /* connected and the database selected */
    _Atomic unsigned long long connects; /* connections established */
} kv_gauges_t;

typedef struct st_kv_config_t {
    const char *host;
    int port;
    int db;
    const char *password; /* NULL: no AUTH */
    int timeout_ms;       /* connect and command timeout */
    kv_gauges_t *gauges;  /* caller-owned, outlives the client; NULL: inside the client */
} kv_config_t;

/* Creates the client and starts connecting; never fails (errors are retried). */
kv_t *kv_open(h2o_loop_t *loop, const kv_config_t *conf);
/* Fails pending commands with ERR_UNAVAILABLE, disconnects and frees kv. */
void kv_close(kv_t *kv);
/*
 * Sends a command given as an argument vector (binary safe; argvlen may be
 * NULL for C strings). Returns 0 and calls cb later exactly once, or
 * returns ERR_UNAVAILABLE without calling cb.
 */
int kv_command(kv_t *kv, kv_cb cb, void *data, int argc, const char **argv, const size_t *argvlen);
/* 1 while connected (and the database selected). The client's thread (others read the gauges). */
int kv_is_up(kv_t *kv);

#endif
