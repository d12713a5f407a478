/*
 * common/cfg.h - configuration from CLIENTELE_* environment variables.
 *
 * cfg_load() fills a cfg_t from a lookup function (getenv in production, a
 * table in tests) and stops at the first bad value with a message naming
 * the variable and the problem. The cfg_t owns its strings; cfg_free()
 * releases them. After start-up the struct is read-only and shared by all
 * threads.
 */
#ifndef CLIENTELE_COMMON_CFG_H
#define CLIENTELE_COMMON_CFG_H

#include <stddef.h>
#include <stdint.h>

typedef const char *(*cfg_lookup_fn)(const char *name, void *ctx);

/* One network of CLIENTELE_TRUSTED_PROXIES: an IPv4 or IPv6 address and a prefix length. */
typedef struct st_cfg_net_t {
    int family;             /* AF_INET or AF_INET6 */
    unsigned char addr[16]; /* network byte order, host bits cleared; 4 bytes used for AF_INET */
    int prefix;             /* 0..32 or 0..128 */
} cfg_net_t;

typedef struct st_cfg_t {
    char *listen_host; /* CLIENTELE_LISTEN, host part (IPv4/IPv6 literal or name) */
    uint16_t listen_port;
    char *database_url; /* CLIENTELE_DATABASE_URL */
    char *redis_host;   /* from CLIENTELE_REDIS_URL */
    uint16_t redis_port;
    int redis_db;
    char *redis_password;       /* NULL when none */
    int threads;                /* CLIENTELE_THREADS */
    int db_pool;                /* CLIENTELE_DB_POOL, connections per thread */
    int db_queue;               /* CLIENTELE_DB_QUEUE, waiting queries per thread */
    int db_timeout_ms;          /* CLIENTELE_DB_TIMEOUT: one statement's execution (statement_timeout) */
    int db_queue_timeout_ms;    /* CLIENTELE_DB_QUEUE_TIMEOUT: longest wait for a connection, then 503 */
    char *db_role;              /* CLIENTELE_DB_ROLE: the role the API's sessions act as ("" for the login role) */
    int redis_timeout_ms;       /* CLIENTELE_REDIS_TIMEOUT */
    char *jwt_secret;           /* CLIENTELE_JWT_SECRET, NULL when unset */
    int jwt_rs256;              /* CLIENTELE_JWT_ALG is RS256 */
    char *jwt_private_key;      /* CLIENTELE_JWT_PRIVATE_KEY: PEM file contents (RS256) */
    char *jwt_public_key;       /* CLIENTELE_JWT_PUBLIC_KEY: PEM file contents (RS256) */
    char *jwt_issuer;           /* CLIENTELE_JWT_ISSUER */
    char *jwt_audience;         /* CLIENTELE_JWT_AUDIENCE */
    int access_ttl_s;           /* CLIENTELE_ACCESS_TTL */
    int refresh_ttl_s;          /* CLIENTELE_REFRESH_TTL */
    int kdf_threads;            /* CLIENTELE_KDF_THREADS: password hashing threads */
    int log_level;              /* CLIENTELE_LOG_LEVEL */
    size_t body_limit;          /* CLIENTELE_BODY_LIMIT */
    size_t bulk_body_limit;     /* CLIENTELE_BULK_BODY_LIMIT */
    size_t attachment_limit;    /* CLIENTELE_ATTACHMENT_LIMIT: largest attachment (a raw request body) */
    char *storage_dir;          /* CLIENTELE_STORAGE_DIR: where attachment contents are kept */
    char **cors_origins;        /* CLIENTELE_CORS_ORIGINS, NULL-terminated; "*" allowed */
    cfg_net_t *trusted_proxies; /* CLIENTELE_TRUSTED_PROXIES; NULL when none */
    size_t ntrusted_proxies;
    char *tls_cert;           /* CLIENTELE_TLS_CERT */
    char *tls_key;            /* CLIENTELE_TLS_KEY */
    int shutdown_timeout_ms;  /* CLIENTELE_SHUTDOWN_TIMEOUT */
    char *worker_name;        /* CLIENTELE_WORKER_NAME: consumer and lease name (default hostname:pid) */
    int worker_claim_idle_ms; /* CLIENTELE_WORKER_CLAIM_IDLE: idle time before another worker takes over (30s) */
    char *worker_listen_host; /* CLIENTELE_WORKER_LISTEN: the worker's /healthz, /readyz, /metrics; NULL: none */
    uint16_t worker_listen_port;
    char *worker_db_role;     /* CLIENTELE_WORKER_DB_ROLE: the role the worker's sessions act as ("" for the login role) */
    char *timezone;           /* CLIENTELE_TIMEZONE: the IANA zone of daily times such as CLIENTELE_BACKUP_AT */
    char *backup_dir;         /* CLIENTELE_BACKUP_DIR: where backup files are written and listed */
    int backup_keep;          /* CLIENTELE_BACKUP_KEEP: backup files kept (the newest; at least 1) */
    int backup_at_min;        /* CLIENTELE_BACKUP_AT: daily backup time, minutes after midnight; -1 for "off" */
    /* CLIENTELE_PHONE_REGION: the region national phone numbers are read in (common/phone.h; static). */
    const struct st_phone_region_t *phone_region;
} cfg_t;

/*
 * Loads every variable, applying defaults. On failure returns ERR_INVALID
 * with "CLIENTELE_X: problem" in err; the cfg_t is then left freed.
 */
int cfg_load(cfg_t *cfg, cfg_lookup_fn lookup, void *ctx, char *err, size_t errlen);
void cfg_free(cfg_t *cfg);
/* For the API: signing keys must be configured. ERR_INVALID with a message otherwise. */
int cfg_require_auth(const cfg_t *cfg, char *err, size_t errlen);
/* The lookup used in production. */
const char *cfg_getenv(const char *name, void *ctx);

/* Parsers, exposed for tests. Each returns 0 or ERR_INVALID with a reason. */
int cfg_parse_int(const char *s, long min, long max, long *out, const char **why);
int cfg_parse_duration_ms(const char *s, long min_ms, long max_ms, long *out, const char **why);
int cfg_parse_size(const char *s, size_t min, size_t max, size_t *out, const char **why);
int cfg_parse_hostport(const char *s, char **host, uint16_t *port, const char **why);
int cfg_parse_redis_url(const char *s, cfg_t *cfg, const char **why);
/* A time of day "HH:MM" (00:00 to 23:59) as minutes after midnight, or "off" as -1. */
int cfg_parse_time_of_day(const char *s, int *minutes, const char **why);
/*
 * A comma-separated list of addresses and CIDR networks ("10.0.0.0/8,
 * 192.168.1.7, fd00::/8"; an address alone is a /32 or /128). "" gives an
 * empty list (*out NULL, *n 0). On success *out is malloc'ed (free() it).
 */
int cfg_parse_nets(const char *s, cfg_net_t **out, size_t *n, const char **why);
/*
 * Parses one IP address (IPv4, or IPv6 without brackets; an IPv4-mapped
 * IPv6 address becomes the IPv4 one) into family and addr. 0 or ERR_INVALID.
 */
int cfg_parse_ip(const char *s, size_t len, int *family, unsigned char addr[16]);
/* 1 when (family, addr) lies in one of nets[0..n), else 0. */
int cfg_nets_contain(const cfg_net_t *nets, size_t n, int family, const unsigned char addr[16]);

#endif
