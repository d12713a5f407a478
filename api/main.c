/*
 * api/main.c - clientele-api: configuration, loop threads, signals.
 *
 * The main thread reads the configuration, builds the h2o configuration
 * and starts CLIENTELE_THREADS loop threads. Each thread owns an evloop, an
 * h2o context, a database pool, a Redis client and its own listening
 * socket (SO_REUSEPORT, so the kernel spreads connections). The main
 * thread then only waits for SIGTERM or SIGINT, which every loop thread
 * has blocked. On a signal it wakes each loop; each stops accepting, asks
 * h2o to wind down keep-alive and HTTP/2 connections, lets in-flight
 * requests finish within CLIENTELE_SHUTDOWN_TIMEOUT, closes its pool and
 * Redis client, and returns. h2o's per-connection state of connections
 * still idle at that point is left to process exit.
 *
 * `clientele-api migrate [dir]` applies the schema and exits.
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "api.h"
#include "attachments.h"
#include "common/tzdb.h"
#include "engine.h"
#include "modules.h"
#include "ownership.h"
#include "merge.h"
#include "tables.h"
#include "common/log.h"
#include "common/migrate.h"
#include "common/rnd.h"

static void on_conn_close(void *data)
{
    api_thread_t *t = data;
    t->connections--;
}

static void on_accept(h2o_socket_t *listener, const char *err)
{
    api_thread_t *t = listener->data;
    if (err != NULL)
        return;
    for (int i = 0; i < 64; i++) {
        h2o_socket_t *sock = h2o_evloop_socket_accept(listener);
        if (sock == NULL)
            break;
        t->connections++;
        sock->on_close.cb = on_conn_close;
        sock->on_close.data = t;
        h2o_accept(&t->accept_ctx, sock);
    }
}

static void on_wake(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages)
{
    /* Nothing to do: waking the loop makes it re-check shutting_down. */
    while (!h2o_linklist_is_empty(messages)) {
        h2o_multithread_message_t *m = H2O_STRUCT_FROM_MEMBER(h2o_multithread_message_t, link, messages->next);
        h2o_linklist_unlink(&m->link);
    }
}

static int open_listener(const cfg_t *cfg, char *err, size_t errlen)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE}, *res;
    char port[8];
    snprintf(port, sizeof(port), "%u", cfg->listen_port);
    int gai = getaddrinfo(cfg->listen_host, port, &hints, &res);
    if (gai != 0) {
        snprintf(err, errlen, "CLIENTELE_LISTEN: cannot resolve %s: %s", cfg->listen_host, gai_strerror(gai));
        return -1;
    }
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), on = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof(on)) != 0 ||
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on)) != 0 ||
        bind(fd, res->ai_addr, res->ai_addrlen) != 0 || listen(fd, 1024) != 0) {
        snprintf(err, errlen, "CLIENTELE_LISTEN: cannot listen on %s:%u: %s", cfg->listen_host, cfg->listen_port,
                 strerror(errno));
        if (fd >= 0)
            close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    return fd;
}

static void *thread_main(void *arg)
{
    api_thread_t *t = arg;
    api_server_t *server = t->server;
    const cfg_t *cfg = server->cfg;

    t->accept_ctx.ctx = &t->ctx;
    t->accept_ctx.hosts = server->globalconf.hosts;
    t->accept_ctx.ssl_ctx = server->ssl_ctx;
    h2o_socket_read_start(t->listener, on_accept);
    snprintf(t->watchdog_name, sizeof(t->watchdog_name), "api loop %d", t->index);
    watchdog_start(&t->watchdog, t->loop, t->watchdog_name);

    while (!atomic_load(&server->shutting_down))
        if (h2o_evloop_run(t->loop, INT32_MAX) != 0 && errno != EINTR)
            log_msg(LOG_WARN, "event loop error: %s", strerror(errno));
    watchdog_stop(&t->watchdog);

    /* Stop accepting, then let in-flight requests finish within the timeout. */
    h2o_socket_read_stop(t->listener);
    h2o_socket_close(t->listener);
    t->listener = NULL;
    h2o_context_request_shutdown(&t->ctx);
    uint64_t deadline = h2o_now(t->loop) + (uint64_t)cfg->shutdown_timeout_ms;
    while (t->inflight > 0 && h2o_now(t->loop) < deadline)
        h2o_evloop_run(t->loop, 50);
    if (t->inflight > 0)
        log_msg(LOG_WARN, "thread %d: %d requests still running at the shutdown deadline", t->index, t->inflight);
    /* Give connections that just finished a moment to flush and close. */
    uint64_t flush_until = h2o_now(t->loop) + 100;
    while (t->connections > 0 && h2o_now(t->loop) < flush_until)
        h2o_evloop_run(t->loop, 10);

    kdf_client_destroy(t->kdf);
    t->kdf = NULL;
    /* Cleared first: requests released by the cancelled jobs then free their bodies here. */
    offload_client_t *oc = t->offload;
    t->offload = NULL;
    offload_client_destroy(oc);
    offload_client_t *sc = t->storage;
    t->storage = NULL;
    offload_client_destroy(sc);
    api_token_cache_free(t->tokens);
    t->tokens = NULL;
    db_close(t->db);
    t->db = NULL;
    kv_close(t->kv);
    t->kv = NULL;
    h2o_multithread_unregister_receiver(t->ctx.queue, &t->wake);
    return NULL;
}

static SSL_CTX *make_ssl_ctx(const cfg_t *cfg, char *err, size_t errlen)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    if (SSL_CTX_use_certificate_chain_file(ctx, cfg->tls_cert) != 1) {
        snprintf(err, errlen, "CLIENTELE_TLS_CERT: cannot load a certificate chain from %s", cfg->tls_cert);
        SSL_CTX_free(ctx);
        return NULL;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, cfg->tls_key, SSL_FILETYPE_PEM) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
        snprintf(err, errlen, "CLIENTELE_TLS_KEY: cannot load a private key matching the certificate from %s",
                 cfg->tls_key);
        SSL_CTX_free(ctx);
        return NULL;
    }
    h2o_ssl_register_alpn_protocols(ctx, h2o_http2_alpn_protocols);
    return ctx;
}

static int usage(void)
{
    fprintf(stderr, "usage: clientele-api            serve the API (configured by CLIENTELE_* variables)\n"
                    "       clientele-api migrate [DIR]  apply DIR/NNNN_*.sql (default: schema)\n"
                    "       clientele-api user-add EMAIL NAME ROLE [TEAM]  create a user; password on stdin\n");
    return 2;
}

int main(int argc, char **argv)
{
    static api_server_t server; /* lives until exit; loop threads point into it */
    cfg_t cfg;
    char err[512];

    if (cfg_load(&cfg, cfg_getenv, NULL, err, sizeof(err)) != 0) {
        fprintf(stderr, "clientele-api: %s\n", err);
        return 2;
    }
    log_init(cfg.log_level, "api");
    if (argc >= 2 && strcmp(argv[1], "migrate") == 0) {
        int r = migrate_apply(cfg.database_url, argc >= 3 ? argv[2] : "schema", "clientele-api migrate");
        cfg_free(&cfg);
        return r;
    }
    if (argc >= 2 && strcmp(argv[1], "user-add") == 0) {
        int r = api_useradd(cfg.database_url, argc - 2, argv + 2);
        cfg_free(&cfg);
        return r;
    }
    if (argc != 1)
        return usage();
    /* From here on no thread writes to stderr itself: the log writer thread does. */
    log_writer_start(LOG_BUFFER_BYTES);
    /* The only wait for the kernel's random pool: afterwards the loops ask without blocking. */
    rnd_init();

    signal(SIGPIPE, SIG_IGN);
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    /* A parent may have left them ignored (background jobs of a shell); sigwait needs them live. */
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL); /* inherited by every loop thread */

    server.cfg = &cfg;
    int rc = 2;
    if (cfg_require_auth(&cfg, err, sizeof(err)) != 0) {
        fprintf(stderr, "clientele-api: %s\n", err);
        goto Fail;
    }
    server.token = (token_conf_t){
        .alg = cfg.jwt_rs256 ? TOKEN_RS256 : TOKEN_HS256,
        .key = (const unsigned char *)(cfg.jwt_rs256 ? cfg.jwt_private_key : cfg.jwt_secret),
        .key_len = strlen(cfg.jwt_rs256 ? cfg.jwt_private_key : cfg.jwt_secret),
        .pubkey = (const unsigned char *)cfg.jwt_public_key,
        .pubkey_len = cfg.jwt_public_key != NULL ? strlen(cfg.jwt_public_key) : 0,
        .issuer = cfg.jwt_issuer,
        .audience = cfg.jwt_audience,
        .ttl_s = cfg.access_ttl_s,
        .leeway_s = 30,
    };
    if (cursor_key_derive(&server.cursor_key, server.token.key, server.token.key_len) != 0) {
        fprintf(stderr, "clientele-api: cannot derive the cursor key\n");
        goto Fail;
    }
    /* A malformed field table would only show as wrong answers to some requests: refuse to start instead. */
    if (api_check_field_tables(err, sizeof(err)) != 0) {
        fprintf(stderr, "clientele-api: a request field table is invalid: %s\n", err);
        rc = 1;
        goto Fail;
    }
    /* Every resource's statements, generated once; a bad description refuses to start. */
    if ((server.engine = engine_build(engine_resources, err, sizeof(err))) == NULL) {
        fprintf(stderr, "clientele-api: a resource description is invalid: %s\n", err);
        rc = 1;
        goto Fail;
    }
    if (ownership_check_resources(engine_resources, err, sizeof(err)) != 0) {
        engine_free(server.engine);
        fprintf(stderr, "clientele-api: a resource description is invalid: %s\n", err);
        rc = 1;
        goto Fail;
    }
    if (api_openapi_load(&server, err, sizeof(err)) != 0) {
        engine_free(server.engine);
        fprintf(stderr, "clientele-api: the embedded OpenAPI spec is invalid: %s\n", err);
        rc = 1;
        goto Fail;
    }
    /* The modules, derived from the route table, and the spec cut so that copies without some are cheap. */
    if ((server.modules = api_modules_new(api_routes, api_nroutes, engine_resources, server.openapi_json, err,
                                          sizeof(err))) == NULL) {
        free((void *)server.openapi_json.base);
        engine_free(server.engine);
        fprintf(stderr, "clientele-api: cannot derive the modules: %s\n", err);
        rc = 1;
        goto Fail;
    }
    /* The file store must be usable before the first upload is accepted. */
    if ((server.attachments = attachments_open(&cfg, server.engine, err, sizeof(err))) == NULL) {
        api_modules_free(server.modules);
        free((void *)server.openapi_json.base);
        engine_free(server.engine);
        fprintf(stderr, "clientele-api: %s\n", err);
        goto Fail;
    }
    if ((server.merge = merge_open(&cfg, server.engine, err, sizeof(err))) == NULL) {
        attachments_close(server.attachments);
        free((void *)server.openapi_json.base);
        engine_free(server.engine);
        fprintf(stderr, "clientele-api: a resource description is invalid: %s\n", err);
        rc = 1;
        goto Fail;
    }
    if (cfg.tls_cert != NULL && (server.ssl_ctx = make_ssl_ctx(&cfg, err, sizeof(err))) == NULL) {
        fprintf(stderr, "clientele-api: %s\n", err);
        merge_close(server.merge);
        attachments_close(server.attachments);
        api_modules_free(server.modules);
        free((void *)server.openapi_json.base);
        engine_free(server.engine);
        goto Fail;
    }
    kdf_params_t kdfp = {.t_cost = 2, .m_cost_kib = 19456, .parallelism = 1};
    server.kdf = kdf_pool_create(cfg.kdf_threads, &kdfp);
    server.offload = offload_pool_create(OFFLOAD_THREADS, OFFLOAD_QUEUE_CAP);
    if (server.kdf == NULL || server.offload == NULL) {
        fprintf(stderr, "clientele-api: cannot start the helper threads\n");
        goto Fail;
    }
    server.tzdb = tzdb_open(NULL);
    server.callers = api_caller_cache_new();
    server.metrics = api_metrics_new(api_nroutes);
    const char **templates = calloc(api_nroutes, sizeof(*templates));
    server.methods = calloc(api_nroutes, sizeof(*server.methods));
    for (size_t i = 0; i < api_nroutes; i++) {
        templates[i] = api_routes[i].path;
        server.methods[i] = api_routes[i].method;
    }
    server.templates = templates;

    h2o_config_init(&server.globalconf);
    server.globalconf.server_name = h2o_iovec_init(H2O_STRLIT("clientele"));
    /* The largest body any route takes: larger ones are refused by h2o before they are read. */
    server.globalconf.max_request_entity_size =
        cfg.attachment_limit > cfg.bulk_body_limit ? cfg.attachment_limit : cfg.bulk_body_limit;
    /*
     * h2o buffers a request body in memory until it reaches 32 MiB, then
     * moves it into a temporary file (mkstemp, posix_fallocate, mmap): file
     * I/O on the loop, hundreds of milliseconds for one 32 MiB bulk. Keep
     * bodies in memory instead; max_request_entity_size above bounds each.
     */
    h2o_socket_buffer_mmap_settings.threshold = SIZE_MAX;
    server.hostconf = h2o_config_register_host(&server.globalconf, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    api_register(&server, server.hostconf);

    server.nthreads = cfg.threads;
    server.threads = calloc((size_t)cfg.threads, sizeof(*server.threads));
    kv_config_t kvconf = {.host = cfg.redis_host,
                          .port = cfg.redis_port,
                          .db = cfg.redis_db,
                          .password = cfg.redis_password,
                          .timeout_ms = cfg.redis_timeout_ms};
    db_config_t dbconf = {.conninfo = cfg.database_url,
                          .app_name = "clientele-api",
                          .pool_size = cfg.db_pool,
                          .queue_max = cfg.db_queue,
                          .timeout_ms = cfg.db_timeout_ms,
                          .queue_timeout_ms = cfg.db_queue_timeout_ms,
                          .no_jit = 1,
                          .role = cfg.db_role};
    for (int i = 0; i < cfg.threads; i++) {
        api_thread_t *t = &server.threads[i];
        t->server = &server;
        t->index = i;
        int fd = open_listener(&cfg, err, sizeof(err));
        if (fd < 0) {
            fprintf(stderr, "clientele-api: %s\n", err);
            log_writer_stop();
            return 2;
        }
        t->loop = h2o_evloop_create();
        t->listener = h2o_evloop_socket_create(t->loop, fd, H2O_SOCKET_FLAG_DONT_READ);
        t->listener->data = t;
        h2o_context_init(&t->ctx, t->loop, &server.globalconf);
        h2o_multithread_register_receiver(t->ctx.queue, &t->wake, on_wake);
        /* The gauges live in the thread's slot (never freed): /metrics on another thread reads them, not the pool. */
        dbconf.gauges = &t->db_gauges;
        kvconf.gauges = &t->kv_gauges;
        t->db = db_open(t->loop, &dbconf);
        t->kdf = kdf_client_create(server.kdf, t->ctx.queue);
        t->offload = offload_client_create(server.offload, t->ctx.queue);
        t->storage = offload_client_create(attachments_io_pool(server.attachments), t->ctx.queue);
        t->tokens = api_token_cache_new();
        t->kv = kv_open(t->loop, &kvconf);
    }
    for (int i = 0; i < cfg.threads; i++)
        pthread_create(&server.threads[i].tid, NULL, thread_main, &server.threads[i]);
    log_msg(LOG_INFO, "listening on %s://%s:%u with %d threads", server.ssl_ctx != NULL ? "https" : "http",
            cfg.listen_host, cfg.listen_port, cfg.threads);

    int sig;
    sigwait(&sigs, &sig);
    log_msg(LOG_INFO, "received %s; shutting down", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    atomic_store(&server.shutting_down, 1);
    for (int i = 0; i < cfg.threads; i++)
        h2o_multithread_send_message(&server.threads[i].wake, NULL);
    for (int i = 0; i < cfg.threads; i++)
        pthread_join(server.threads[i].tid, NULL);
    log_msg(LOG_INFO, "stopped");

    kdf_pool_destroy(server.kdf);
    offload_pool_destroy(server.offload);
    merge_close(server.merge);
    attachments_close(server.attachments);
    tzdb_close(server.tzdb);
    api_caller_cache_free(server.callers);
    api_modules_free(server.modules);
    engine_free(server.engine);
    api_metrics_free(server.metrics);
    free(templates);
    free(server.methods);
    free((void *)server.openapi_json.base);
    if (server.ssl_ctx != NULL)
        SSL_CTX_free(server.ssl_ctx);
    cfg_free(&cfg);
    log_writer_stop();
    return 0;

Fail:
    cfg_free(&cfg);
    log_writer_stop();
    return rc;
}
