/*
 * common/cfg.c - configuration from CLIENTELE_* environment variables.
 *
 * One table-free function per kind of value (integer, duration, size,
 * address, URL) keeps each rule testable on its own; cfg_load() applies
 * them in a fixed order and reports the first failure. Nothing here reads
 * the environment directly: the lookup function is passed in.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <sys/socket.h>

#include <libpq-fe.h>

#include "cfg.h"
#include "err.h"
#include "log.h"
#include "phone.h"

const char *cfg_getenv(const char *name, void *ctx)
{
    (void)ctx;
    return getenv(name);
}

int cfg_parse_int(const char *s, long min, long max, long *out, const char **why)
{
    char *end;
    if (*s == '\0' || isspace((unsigned char)*s)) {
        *why = "must be an integer";
        return ERR_INVALID;
    }
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno != 0 || *end != '\0') {
        *why = "must be an integer";
        return ERR_INVALID;
    }
    if (v < min || v > max) {
        *why = "is out of range";
        return ERR_INVALID;
    }
    *out = v;
    return 0;
}

/* Splits "123unit" into a non-negative integer and its unit suffix. */
static int split_number(const char *s, unsigned long long *num, const char **unit)
{
    if (!isdigit((unsigned char)*s))
        return ERR_INVALID;
    unsigned long long v = 0;
    for (; isdigit((unsigned char)*s); s++) {
        if (v > (ULLONG_MAX - 9) / 10)
            return ERR_INVALID;
        v = v * 10 + (unsigned)(*s - '0');
    }
    *num = v;
    *unit = s;
    return 0;
}

int cfg_parse_duration_ms(const char *s, long min_ms, long max_ms, long *out, const char **why)
{
    unsigned long long v, mult;
    const char *unit;
    if (split_number(s, &v, &unit) != 0) {
        *why = "must be a duration such as 500ms, 5s or 2m";
        return ERR_INVALID;
    }
    if (strcmp(unit, "ms") == 0)
        mult = 1;
    else if (strcmp(unit, "s") == 0 || *unit == '\0')
        mult = 1000;
    else if (strcmp(unit, "m") == 0)
        mult = 60000;
    else if (strcmp(unit, "h") == 0)
        mult = 3600000;
    else if (strcmp(unit, "d") == 0)
        mult = 86400000;
    else {
        *why = "must be a duration such as 500ms, 5s or 2m";
        return ERR_INVALID;
    }
    if (v > (unsigned long long)LONG_MAX / mult || (long)(v * mult) < min_ms || (long)(v * mult) > max_ms) {
        *why = "is out of range";
        return ERR_INVALID;
    }
    *out = (long)(v * mult);
    return 0;
}

int cfg_parse_size(const char *s, size_t min, size_t max, size_t *out, const char **why)
{
    static const struct {
        const char *suffix;
        unsigned long long mult;
    } units[] = {{"", 1},
                 {"B", 1},
                 {"k", 1024},
                 {"K", 1024},
                 {"KiB", 1024},
                 {"M", 1024 * 1024},
                 {"MiB", 1024 * 1024},
                 {"G", 1024 * 1024 * 1024ULL},
                 {"GiB", 1024 * 1024 * 1024ULL}};
    unsigned long long v;
    const char *unit;
    if (split_number(s, &v, &unit) != 0) {
        *why = "must be a size such as 65536, 64KiB or 1MiB";
        return ERR_INVALID;
    }
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (strcmp(unit, units[i].suffix) != 0)
            continue;
        if (v > SIZE_MAX / units[i].mult || v * units[i].mult < min || v * units[i].mult > max) {
            *why = "is out of range";
            return ERR_INVALID;
        }
        *out = (size_t)(v * units[i].mult);
        return 0;
    }
    *why = "must be a size such as 65536, 64KiB or 1MiB";
    return ERR_INVALID;
}

static int parse_port(const char *s, uint16_t *port)
{
    long v;
    const char *why;
    if (cfg_parse_int(s, 1, 65535, &v, &why) != 0 || *s == '+' || *s == '-')
        return ERR_INVALID;
    *port = (uint16_t)v;
    return 0;
}

int cfg_parse_hostport(const char *s, char **host, uint16_t *port, const char **why)
{
    const char *colon;
    size_t hostlen;
    if (*s == '[') {
        const char *close = strchr(s, ']');
        if (close == NULL || close[1] != ':') {
            *why = "must be host:port or [ipv6]:port";
            return ERR_INVALID;
        }
        s++;
        hostlen = (size_t)(close - s);
        colon = close + 1;
    } else {
        colon = strrchr(s, ':');
        if (colon == NULL || memchr(s, ':', (size_t)(colon - s)) != NULL) {
            *why = "must be host:port or [ipv6]:port";
            return ERR_INVALID;
        }
        hostlen = (size_t)(colon - s);
    }
    if (hostlen == 0 || hostlen > 253) {
        *why = "has an empty or overlong host";
        return ERR_INVALID;
    }
    for (size_t i = 0; i < hostlen; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!isalnum(c) && c != '.' && c != '-' && c != ':' && c != '_') {
            *why = "has an invalid character in the host";
            return ERR_INVALID;
        }
    }
    if (parse_port(colon + 1, port) != 0) {
        *why = "has a port that is not between 1 and 65535";
        return ERR_INVALID;
    }
    *host = strndup(s, hostlen);
    return 0;
}

int cfg_parse_redis_url(const char *s, cfg_t *cfg, const char **why)
{
    static const char scheme[] = "redis://";
    if (strncmp(s, scheme, sizeof(scheme) - 1) != 0) {
        *why = "must start with redis://";
        return ERR_INVALID;
    }
    s += sizeof(scheme) - 1;
    const char *at = strchr(s, '@');
    char *password = NULL;
    if (at != NULL) {
        /* redis://:password@host:port/db; a user name (Redis 6 ACL) is not supported. */
        if (*s != ':') {
            *why = "supports only redis://:password@host:port/db credentials";
            return ERR_INVALID;
        }
        password = at - s > 1 ? strndup(s + 1, (size_t)(at - s - 1)) : NULL;
        s = at + 1;
    }
    const char *slash = strchr(s, '/');
    char *hostport = slash != NULL ? strndup(s, (size_t)(slash - s)) : strdup(s);
    char *host = NULL;
    uint16_t port = 6379;
    int ret = 0;
    size_t hl = strlen(hostport);
    int bracketed_without_port = hl > 1 && hostport[0] == '[' && hostport[hl - 1] == ']';
    if ((strchr(hostport, ':') == NULL && hostport[0] != '[') || bracketed_without_port) {
        /* no port given: the Redis default */
        char *tmp;
        if (asprintf(&tmp, "%s:6379", hostport) < 0)
            abort();
        ret = cfg_parse_hostport(tmp, &host, &port, why);
        free(tmp);
    } else {
        ret = cfg_parse_hostport(hostport, &host, &port, why);
    }
    free(hostport);
    long db = 0;
    if (ret == 0 && slash != NULL && slash[1] != '\0' && cfg_parse_int(slash + 1, 0, 15, &db, why) != 0) {
        *why = "has a database number that is not between 0 and 15";
        ret = ERR_INVALID;
    }
    if (ret != 0) {
        free(host);
        free(password);
        return ret;
    }
    free(cfg->redis_host);
    free(cfg->redis_password);
    cfg->redis_host = host;
    cfg->redis_port = port;
    cfg->redis_db = (int)db;
    cfg->redis_password = password;
    return 0;
}

/* Comma-separated lists: how many items s holds at most (one more than its commas). */
static size_t list_count(const char *s)
{
    size_t n = 1;
    for (const char *p = s; *p != '\0'; p++)
        n += *p == ',';
    return n;
}

/*
 * The item of a comma-separated list that starts at p, trimmed of white
 * space: [*item, *item + *len). Returns the comma after it, or NULL when it
 * is the last item.
 */
static const char *list_item(const char *p, const char **item, size_t *len)
{
    const char *e = strchr(p, ',');
    size_t n = e != NULL ? (size_t)(e - p) : strlen(p);
    while (n > 0 && isspace((unsigned char)*p))
        p++, n--;
    while (n > 0 && isspace((unsigned char)p[n - 1]))
        n--;
    *item = p;
    *len = n;
    return e;
}

static int parse_origins(const char *s, char ***out, const char **why)
{
    char **list = calloc(list_count(s) + 1, sizeof(*list));
    size_t cnt = 0, len;
    const char *p = s;
    while (*p != '\0') {
        const char *e = list_item(p, &p, &len);
        int ok = len == 1 && *p == '*';
        size_t scheme = strncmp(p, "http://", 7) == 0 ? 7 : strncmp(p, "https://", 8) == 0 ? 8 : 0;
        if (!ok && scheme > 0 && len > scheme && p[scheme] != ':' && p[scheme] != '/') {
            /* scheme://host[:port], nothing else: that is what browsers send in Origin. */
            ok = 1;
            for (size_t i = scheme; i < len; i++)
                if (!isgraph((unsigned char)p[i]) || p[i] == '/' || p[i] == '@' || p[i] == '?' || p[i] == '#')
                    ok = 0;
        }
        if (!ok) {
            for (size_t i = 0; i < cnt; i++)
                free(list[i]);
            free(list);
            *why = "must be * or a comma-separated list of origins such as https://app.example.com";
            return ERR_INVALID;
        }
        list[cnt++] = strndup(p, len);
        if (e == NULL)
            break;
        p = e + 1;
    }
    *out = list;
    return 0;
}

int cfg_parse_ip(const char *s, size_t len, int *family, unsigned char addr[16])
{
    char buf[INET6_ADDRSTRLEN];
    if (len == 0 || len >= sizeof(buf))
        return ERR_INVALID;
    memcpy(buf, s, len);
    buf[len] = '\0';
    memset(addr, 0, 16);
    if (inet_pton(AF_INET, buf, addr) == 1) {
        *family = AF_INET;
        return 0;
    }
    if (inet_pton(AF_INET6, buf, addr) != 1)
        return ERR_INVALID;
    static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (memcmp(addr, mapped, sizeof(mapped)) == 0) {
        memmove(addr, addr + 12, 4);
        memset(addr + 4, 0, 12);
        *family = AF_INET;
    } else {
        *family = AF_INET6;
    }
    return 0;
}

/* Clears the bits of addr past prefix. */
static void mask_bits(unsigned char addr[16], int prefix)
{
    for (int i = 0; i < 16; i++) {
        int keep = prefix - 8 * i;
        if (keep <= 0)
            addr[i] = 0;
        else if (keep < 8)
            addr[i] &= (unsigned char)(0xff << (8 - keep));
    }
}

int cfg_parse_nets(const char *s, cfg_net_t **out, size_t *n, const char **why)
{
    cfg_net_t *list = calloc(list_count(s), sizeof(*list));
    size_t cnt = 0, len;
    const char *p = s;
    *out = NULL;
    *n = 0;
    while (*p != '\0') {
        const char *e = list_item(p, &p, &len);
        if (len == 0 && e == NULL && cnt == 0)
            break; /* only white space */
        const char *slash = memchr(p, '/', len);
        size_t alen = slash != NULL ? (size_t)(slash - p) : len;
        cfg_net_t *net = &list[cnt];
        int ok = cfg_parse_ip(p, alen, &net->family, net->addr) == 0;
        int max = net->family == AF_INET ? 32 : 128;
        net->prefix = max;
        if (ok && slash != NULL) {
            /* A mapped address written as IPv6 keeps an IPv6 prefix length: refuse the mix rather than guess. */
            ok = memchr(p, ':', alen) == NULL || net->family == AF_INET6;
            size_t plen = len - alen - 1;
            long v = 0;
            ok = ok && plen >= 1 && plen <= 3;
            for (size_t i = 0; ok && i < plen; i++) {
                ok = isdigit((unsigned char)slash[1 + i]);
                v = v * 10 + (slash[1 + i] - '0');
            }
            ok = ok && v <= max;
            net->prefix = (int)v;
        }
        if (!ok)
            goto Bad;
        mask_bits(net->addr, net->prefix);
        cnt++;
        if (e == NULL)
            break;
        p = e + 1;
        if (*p == '\0')
            goto Bad; /* a trailing comma */
    }
    if (cnt == 0) {
        free(list);
        return 0;
    }
    *out = list;
    *n = cnt;
    return 0;

Bad:
    free(list);
    *why = "must be a comma-separated list of IP addresses or CIDR networks such as 10.0.0.0/8";
    return ERR_INVALID;
}

int cfg_nets_contain(const cfg_net_t *nets, size_t n, int family, const unsigned char addr[16])
{
    for (size_t i = 0; i < n; i++) {
        if (nets[i].family != family)
            continue;
        unsigned char a[16];
        memcpy(a, addr, 16);
        if (family == AF_INET)
            memset(a + 4, 0, 12);
        mask_bits(a, nets[i].prefix);
        if (memcmp(a, nets[i].addr, 16) == 0)
            return 1;
    }
    return 0;
}

int cfg_parse_time_of_day(const char *s, int *minutes, const char **why)
{
    if (strcmp(s, "off") == 0) {
        *minutes = -1;
        return 0;
    }
    if (strlen(s) == 5 && isdigit((unsigned char)s[0]) && isdigit((unsigned char)s[1]) && s[2] == ':' &&
        isdigit((unsigned char)s[3]) && isdigit((unsigned char)s[4])) {
        int h = (s[0] - '0') * 10 + (s[1] - '0'), m = (s[3] - '0') * 10 + (s[4] - '0');
        if (h < 24 && m < 60) {
            *minutes = h * 60 + m;
            return 0;
        }
    }
    *why = "expected a time of day HH:MM from 00:00 to 23:59, or off";
    return ERR_INVALID;
}

/* A PostgreSQL role name as the configuration takes them: lower-case letters, digits and _; "" allowed. */
static int role_name_ok(const char *v)
{
    for (const char *c = v; *c != '\0'; c++)
        if (!((*c >= 'a' && *c <= 'z') || *c == '_' || (c > v && *c >= '0' && *c <= '9')) || c - v >= 63)
            return 0;
    return 1;
}

/* An IANA zone name as tzdb files are named ("Europe/Berlin", "Etc/GMT+2", "UTC"); loaded later. */
static int zone_name_ok(const char *v)
{
    size_t n = strlen(v);
    if (n == 0 || n > 64 || v[0] == '/' || v[n - 1] == '/' || strstr(v, "..") != NULL || strstr(v, "//") != NULL)
        return 0;
    for (const char *c = v; *c != '\0'; c++)
        if (!isalnum((unsigned char)*c) && strchr("/_+-", *c) == NULL)
            return 0;
    return 1;
}

#define FAIL(name, fmt, ...)                                                                                           \
    do {                                                                                                               \
        snprintf(err, errlen, "%s: " fmt, name, __VA_ARGS__);                                                          \
        goto Error;                                                                                                    \
    } while (0)

int cfg_load(cfg_t *cfg, cfg_lookup_fn lookup, void *ctx, char *err, size_t errlen)
{
    const char *v, *why;
    long l;
    memset(cfg, 0, sizeof(*cfg));

#define GET(name, def) ((v = lookup(name, ctx)) != NULL && *v != '\0' ? v : (def))

    if (cfg_parse_hostport(GET("CLIENTELE_LISTEN", "127.0.0.1:8080"), &cfg->listen_host, &cfg->listen_port, &why) != 0)
        FAIL("CLIENTELE_LISTEN", "%s (got \"%s\")", why, v);

    v = GET("CLIENTELE_DATABASE_URL", "postgresql://clientele@127.0.0.1:5432/clientele");
    {
        char *pqerr = NULL;
        PQconninfoOption *opts = PQconninfoParse(v, &pqerr);
        if (opts == NULL) {
            snprintf(err, errlen, "CLIENTELE_DATABASE_URL: is not a valid PostgreSQL connection string (%s)",
                     pqerr != NULL ? pqerr : "out of memory");
            PQfreemem(pqerr);
            goto Error;
        }
        PQconninfoFree(opts);
        cfg->database_url = strdup(v);
    }

    if (cfg_parse_redis_url(GET("CLIENTELE_REDIS_URL", "redis://127.0.0.1:6379/0"), cfg, &why) != 0)
        FAIL("CLIENTELE_REDIS_URL", "%s", why);

    {
        long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
        char def[24];
        snprintf(def, sizeof(def), "%ld", ncpu < 1 ? 1 : ncpu > 256 ? 256 : ncpu);
        if (cfg_parse_int(GET("CLIENTELE_THREADS", def), 1, 256, &l, &why) != 0)
            FAIL("CLIENTELE_THREADS", "%s: expected 1 to 256 (got \"%s\")", why, v);
        cfg->threads = (int)l;
    }
    if (cfg_parse_int(GET("CLIENTELE_DB_POOL", "8"), 1, 256, &l, &why) != 0)
        FAIL("CLIENTELE_DB_POOL", "%s: expected 1 to 256 (got \"%s\")", why, v);
    cfg->db_pool = (int)l;
    if (cfg_parse_int(GET("CLIENTELE_DB_QUEUE", "1024"), 0, 1000000, &l, &why) != 0)
        FAIL("CLIENTELE_DB_QUEUE", "%s: expected 0 to 1000000 (got \"%s\")", why, v);
    cfg->db_queue = (int)l;
    if (cfg_parse_duration_ms(GET("CLIENTELE_DB_TIMEOUT", "5s"), 10, 3600000, &l, &why) != 0)
        FAIL("CLIENTELE_DB_TIMEOUT", "%s: expected 10ms to 60m (got \"%s\")", why, v);
    cfg->db_timeout_ms = (int)l;
    if (cfg_parse_duration_ms(GET("CLIENTELE_DB_QUEUE_TIMEOUT", "1s"), 1, 3600000, &l, &why) != 0)
        FAIL("CLIENTELE_DB_QUEUE_TIMEOUT", "%s: expected 1ms to 60m (got \"%s\")", why, v);
    cfg->db_queue_timeout_ms = (int)l;
    v = GET("CLIENTELE_DB_ROLE", "clientele_api");
    if (!role_name_ok(v))
        FAIL("CLIENTELE_DB_ROLE", "expected a role name of lower-case letters, digits and _ (got \"%s\")", v);
    cfg->db_role = strdup(v);
    if (cfg_parse_duration_ms(GET("CLIENTELE_REDIS_TIMEOUT", "2s"), 10, 600000, &l, &why) != 0)
        FAIL("CLIENTELE_REDIS_TIMEOUT", "%s: expected 10ms to 10m (got \"%s\")", why, v);
    cfg->redis_timeout_ms = (int)l;
    if (cfg_parse_duration_ms(GET("CLIENTELE_SHUTDOWN_TIMEOUT", "10s"), 0, 3600000, &l, &why) != 0)
        FAIL("CLIENTELE_SHUTDOWN_TIMEOUT", "%s: expected 0s to 60m (got \"%s\")", why, v);
    cfg->shutdown_timeout_ms = (int)l;

    if ((v = lookup("CLIENTELE_JWT_SECRET", ctx)) != NULL && *v != '\0') {
        if (strlen(v) < 32)
            FAIL("CLIENTELE_JWT_SECRET", "must be at least 32 bytes long (got %zu)", strlen(v));
        cfg->jwt_secret = strdup(v);
    }
    v = GET("CLIENTELE_JWT_ALG", "HS256");
    if (strcmp(v, "HS256") != 0 && strcmp(v, "RS256") != 0)
        FAIL("CLIENTELE_JWT_ALG", "must be HS256 or RS256 (got \"%s\")", v);
    cfg->jwt_rs256 = strcmp(v, "RS256") == 0;
    for (int i = 0; i < 2; i++) {
        const char *name = i == 0 ? "CLIENTELE_JWT_PRIVATE_KEY" : "CLIENTELE_JWT_PUBLIC_KEY";
        char **dst = i == 0 ? &cfg->jwt_private_key : &cfg->jwt_public_key;
        if ((v = lookup(name, ctx)) == NULL || *v == '\0')
            continue;
        FILE *f = fopen(v, "rb");
        if (f == NULL)
            FAIL(name, "cannot read \"%s\": %s", v, strerror(errno));
        char buf[16384];
        size_t n = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
        buf[n] = '\0';
        if (strstr(buf, "-----BEGIN ") == NULL)
            FAIL(name, "\"%s\" is not a PEM file", v);
        *dst = strdup(buf);
    }
    cfg->jwt_issuer = strdup(GET("CLIENTELE_JWT_ISSUER", "clientele"));
    cfg->jwt_audience = strdup(GET("CLIENTELE_JWT_AUDIENCE", "clientele-api"));
    if (cfg_parse_duration_ms(GET("CLIENTELE_ACCESS_TTL", "15m"), 60000, 86400000, &l, &why) != 0)
        FAIL("CLIENTELE_ACCESS_TTL", "%s: expected 1m to 24h (got \"%s\")", why, v);
    cfg->access_ttl_s = (int)(l / 1000);
    if (cfg_parse_duration_ms(GET("CLIENTELE_REFRESH_TTL", "30d"), 60000, 365L * 86400000, &l, &why) != 0)
        FAIL("CLIENTELE_REFRESH_TTL", "%s: expected 1m to 365d (got \"%s\")", why, v);
    cfg->refresh_ttl_s = (int)(l / 1000);
    if (cfg_parse_int(GET("CLIENTELE_KDF_THREADS", "2"), 1, 64, &l, &why) != 0)
        FAIL("CLIENTELE_KDF_THREADS", "%s: expected 1 to 64 (got \"%s\")", why, v);
    cfg->kdf_threads = (int)l;

    if ((cfg->log_level = log_level_parse(GET("CLIENTELE_LOG_LEVEL", "info"))) < 0)
        FAIL("CLIENTELE_LOG_LEVEL", "must be debug, info, warn or error (got \"%s\")", v);

    if (cfg_parse_size(GET("CLIENTELE_BODY_LIMIT", "1MiB"), 1024, 1024 * 1024 * 1024, &cfg->body_limit, &why) != 0)
        FAIL("CLIENTELE_BODY_LIMIT", "%s: expected 1KiB to 1GiB (got \"%s\")", why, v);
    if (cfg_parse_size(GET("CLIENTELE_BULK_BODY_LIMIT", "32MiB"), 1024, 1024 * 1024 * 1024, &cfg->bulk_body_limit,
                       &why) != 0)
        FAIL("CLIENTELE_BULK_BODY_LIMIT", "%s: expected 1KiB to 1GiB (got \"%s\")", why, v);
    if (cfg->bulk_body_limit < cfg->body_limit)
        FAIL("CLIENTELE_BULK_BODY_LIMIT", "must not be smaller than CLIENTELE_BODY_LIMIT (%zu)", cfg->body_limit);
    if (cfg_parse_size(GET("CLIENTELE_ATTACHMENT_LIMIT", "25MiB"), 1024, 1024 * 1024 * 1024, &cfg->attachment_limit,
                       &why) != 0)
        FAIL("CLIENTELE_ATTACHMENT_LIMIT", "%s: expected 1KiB to 1GiB (got \"%s\")", why, v);
    /* Blobs live at <dir>/aa/bb/<64 hex digits>: leave room for that under PATH_MAX. */
    v = GET("CLIENTELE_STORAGE_DIR", ".run/storage");
    if (strlen(v) > 3900)
        FAIL("CLIENTELE_STORAGE_DIR", "is longer than 3900 bytes (got %zu)", strlen(v));
    cfg->storage_dir = strdup(v);
    /* National phone numbers are read in this region when duplicates are looked for (common/phone.h). */
    if ((cfg->phone_region = phone_region(GET("CLIENTELE_PHONE_REGION", "CN"))) == NULL)
        FAIL("CLIENTELE_PHONE_REGION",
             "must be an ISO 3166 country code of common/phone.c's table, such as CN or US"
             " (got \"%s\")",
             v);

    if (parse_origins(GET("CLIENTELE_CORS_ORIGINS", ""), &cfg->cors_origins, &why) != 0)
        FAIL("CLIENTELE_CORS_ORIGINS", "%s (got \"%s\")", why, v);
    if (cfg_parse_nets(GET("CLIENTELE_TRUSTED_PROXIES", ""), &cfg->trusted_proxies, &cfg->ntrusted_proxies, &why) != 0)
        FAIL("CLIENTELE_TRUSTED_PROXIES", "%s (got \"%s\")", why, v);

    {
        const char *cert = lookup("CLIENTELE_TLS_CERT", ctx), *key = lookup("CLIENTELE_TLS_KEY", ctx);
        int has_cert = cert != NULL && *cert != '\0', has_key = key != NULL && *key != '\0';
        if (has_cert != has_key)
            FAIL(has_cert ? "CLIENTELE_TLS_KEY" : "CLIENTELE_TLS_CERT", "%s",
                 "must be set together with the other of CLIENTELE_TLS_CERT and CLIENTELE_TLS_KEY");
        for (int i = 0; i < 2 && has_cert; i++) {
            const char *path = i == 0 ? cert : key;
            if (access(path, R_OK) != 0)
                FAIL(i == 0 ? "CLIENTELE_TLS_CERT" : "CLIENTELE_TLS_KEY", "cannot read \"%s\": %s", path,
                     strerror(errno));
        }
        if (has_cert) {
            cfg->tls_cert = strdup(cert);
            cfg->tls_key = strdup(key);
        }
    }

    /* Worker: names its stream consumer and its leases on runs, so it must be unique per process. */
    {
        char def[300], host[256] = "";
        if (gethostname(host, sizeof(host) - 1) != 0 || host[0] == '\0')
            snprintf(host, sizeof(host), "worker");
        for (char *p = host; *p != '\0'; p++)
            if (!isalnum((unsigned char)*p) && strchr(".-", *p) == NULL)
                *p = '-';
        snprintf(def, sizeof(def), "%.200s:%ld", host, (long)getpid());
        v = GET("CLIENTELE_WORKER_NAME", def);
        int ok = strlen(v) <= 200;
        for (const char *p = v; *p != '\0' && ok; p++)
            ok = isalnum((unsigned char)*p) || strchr("._:@-", *p) != NULL;
        if (!ok)
            FAIL("CLIENTELE_WORKER_NAME", "must be 1 to 200 letters, digits or ._:@- (got \"%s\")", v);
        cfg->worker_name = strdup(v);
    }
    if (cfg_parse_duration_ms(GET("CLIENTELE_WORKER_CLAIM_IDLE", "30s"), 1000, 86400000, &l, &why) != 0)
        FAIL("CLIENTELE_WORKER_CLAIM_IDLE", "%s: expected 1s to 24h (got \"%s\")", why, v);
    cfg->worker_claim_idle_ms = (int)l;
    /* Unlike the others, set but empty means "none": a worker without its health and metrics listener. */
    v = lookup("CLIENTELE_WORKER_LISTEN", ctx);
    if (v == NULL || *v != '\0') {
        if (cfg_parse_hostport(v != NULL ? v : "127.0.0.1:8081", &cfg->worker_listen_host, &cfg->worker_listen_port,
                               &why) != 0)
            FAIL("CLIENTELE_WORKER_LISTEN", "%s (got \"%s\"; empty turns the listener off)", why, v);
    }
    v = GET("CLIENTELE_WORKER_DB_ROLE", "clientele_worker");
    if (!role_name_ok(v))
        FAIL("CLIENTELE_WORKER_DB_ROLE", "expected a role name of lower-case letters, digits and _ (got \"%s\")", v);
    cfg->worker_db_role = strdup(v);

    /* Backups: the zone is checked against the zone database by the worker, which loads it. */
    v = GET("CLIENTELE_TIMEZONE", "UTC");
    if (!zone_name_ok(v))
        FAIL("CLIENTELE_TIMEZONE", "expected an IANA time zone name such as Europe/Berlin (got \"%s\")", v);
    cfg->timezone = strdup(v);
    /* Files are named <dir>/clientele-YYYYMMDD-HHMMSS.backup: leave room for that under PATH_MAX. */
    v = GET("CLIENTELE_BACKUP_DIR", ".run/backups");
    if (strlen(v) > 3900)
        FAIL("CLIENTELE_BACKUP_DIR", "is longer than 3900 bytes (got %zu)", strlen(v));
    cfg->backup_dir = strdup(v);
    if (cfg_parse_int(GET("CLIENTELE_BACKUP_KEEP", "14"), 1, 10000, &l, &why) != 0)
        FAIL("CLIENTELE_BACKUP_KEEP", "%s: expected 1 to 10000 (got \"%s\")", why, v);
    cfg->backup_keep = (int)l;
    if (cfg_parse_time_of_day(GET("CLIENTELE_BACKUP_AT", "02:00"), &cfg->backup_at_min, &why) != 0)
        FAIL("CLIENTELE_BACKUP_AT", "%s (got \"%s\")", why, v);
#undef GET
    return 0;

Error:
    cfg_free(cfg);
    return ERR_INVALID;
}

int cfg_require_auth(const cfg_t *cfg, char *err, size_t errlen)
{
    if (cfg->jwt_rs256) {
        if (cfg->jwt_private_key == NULL || cfg->jwt_public_key == NULL) {
            snprintf(err, errlen, "%s: must be set when CLIENTELE_JWT_ALG is RS256",
                     cfg->jwt_private_key == NULL ? "CLIENTELE_JWT_PRIVATE_KEY" : "CLIENTELE_JWT_PUBLIC_KEY");
            return ERR_INVALID;
        }
    } else if (cfg->jwt_secret == NULL) {
        snprintf(err, errlen, "CLIENTELE_JWT_SECRET: must be set (at least 32 bytes) to sign access tokens");
        return ERR_INVALID;
    }
    return 0;
}

void cfg_free(cfg_t *cfg)
{
    free(cfg->listen_host);
    free(cfg->database_url);
    free(cfg->redis_host);
    free(cfg->redis_password);
    free(cfg->jwt_secret);
    free(cfg->jwt_private_key);
    free(cfg->jwt_public_key);
    free(cfg->jwt_issuer);
    free(cfg->jwt_audience);
    free(cfg->db_role);
    if (cfg->cors_origins != NULL)
        for (char **p = cfg->cors_origins; *p != NULL; p++)
            free(*p);
    free(cfg->cors_origins);
    free(cfg->trusted_proxies);
    free(cfg->tls_cert);
    free(cfg->tls_key);
    free(cfg->worker_name);
    free(cfg->worker_listen_host);
    free(cfg->storage_dir);
    free(cfg->worker_db_role);
    free(cfg->timezone);
    free(cfg->backup_dir);
    memset(cfg, 0, sizeof(*cfg));
}
