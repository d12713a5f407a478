/*
 * tests/support/harness.c - blocking HTTP client, API process control and
 * stack control for integration tests.
 *
 * Everything here blocks: tests are sequential programs, and simplicity
 * beats speed. Responses are read until the server closes the connection
 * (every request says Connection: close).
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "harness.h"

static const char *env_or(const char *name, const char *def)
{
    const char *v = getenv(name);
    return v != NULL && *v != '\0' ? v : def;
}

long long th_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The local address this thread's requests come from (th_set_source()); NULL: the kernel's choice. */
static __thread const char *source_addr;

void th_set_source(const char *addr)
{
    source_addr = addr;
}

static int connect_to(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (source_addr != NULL) {
        struct sockaddr_in src = {.sin_family = AF_INET};
        if (inet_pton(AF_INET, source_addr, &src.sin_addr) != 1 ||
            bind(fd, (struct sockaddr *)&src, sizeof(src)) != 0) {
            fprintf(stderr, "harness: cannot bind to source address %s: %s\n", source_addr, strerror(errno));
            close(fd);
            return -1;
        }
    }
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct timeval tv = {30, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static int write_all(int fd, const char *p, size_t len)
{
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

static char *read_all(int fd, size_t *outlen)
{
    size_t cap = 8192, len = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (len + 4096 > cap)
            buf = realloc(buf, cap *= 2);
        ssize_t r = read(fd, buf + len, cap - len - 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        len += (size_t)r;
    }
    buf[len] = '\0';
    *outlen = len;
    return buf;
}

char *th_raw(int port, const char *bytes, size_t len)
{
    int fd = connect_to(port);
    if (fd < 0)
        return NULL;
    write_all(fd, bytes, len);
    shutdown(fd, SHUT_WR);
    size_t n;
    char *r = read_all(fd, &n);
    close(fd);
    return r;
}

int th_http(int port, const char *method, const char *path, const char *const *headers, const char *body,
            size_t body_len, th_resp_t *resp)
{
    memset(resp, 0, sizeof(*resp));
    int fd = connect_to(port);
    if (fd < 0)
        return -1;
    size_t head = 256 + strlen(method) + strlen(path);
    for (const char *const *h = headers; h != NULL && *h != NULL; h++)
        head += strlen(*h) + 2;
    char *req = malloc(head + body_len);
    int n = snprintf(req, head, "%s %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n", method, path, port);
    for (const char *const *h = headers; h != NULL && *h != NULL; h++)
        n += snprintf(req + n, head - (size_t)n, "%s\r\n", *h);
    if (body != NULL)
        n += snprintf(req + n, head - (size_t)n, "Content-Length: %zu\r\n", body_len);
    n += snprintf(req + n, head - (size_t)n, "\r\n");
    if (body != NULL) {
        memcpy(req + n, body, body_len);
        n += (int)body_len;
    }
    int ok = write_all(fd, req, (size_t)n);
    free(req);
    if (ok != 0) {
        close(fd);
        return -1;
    }
    size_t len;
    char *all = read_all(fd, &len);
    close(fd);
    char *sep = strstr(all, "\r\n\r\n");
    if (sep == NULL || sscanf(all, "HTTP/1.%*d %d", &resp->status) != 1) {
        free(all);
        return -1;
    }
    *sep = '\0';
    resp->head = all;
    resp->body_len = len - (size_t)(sep + 4 - all);
    resp->body = malloc(resp->body_len + 1);
    memcpy(resp->body, sep + 4, resp->body_len);
    resp->body[resp->body_len] = '\0';
    resp->json = json_loadb(resp->body, resp->body_len, 0, NULL);
    return 0;
}

const char *th_header(const th_resp_t *r, const char *name, char *buf, size_t len)
{
    size_t nlen = strlen(name);
    for (const char *line = r->head != NULL ? strstr(r->head, "\r\n") : NULL; line != NULL;
         line = strstr(line, "\r\n")) {
        line += 2;
        if (strncasecmp(line, name, nlen) == 0 && line[nlen] == ':') {
            const char *v = line + nlen + 1;
            while (*v == ' ')
                v++;
            const char *end = strstr(v, "\r\n");
            size_t vlen = end != NULL ? (size_t)(end - v) : strlen(v);
            if (vlen >= len)
                vlen = len - 1;
            memcpy(buf, v, vlen);
            buf[vlen] = '\0';
            return buf;
        }
    }
    return NULL;
}

void th_resp_free(th_resp_t *r)
{
    free(r->head);
    free(r->body);
    if (r->json != NULL)
        json_decref(r->json);
    memset(r, 0, sizeof(*r));
}

/* --- the stack ----------------------------------------------------------- */

static const char *pg_port(void)
{
    return env_or("STACK_PG_PORT", "55432");
}

const char *th_db_create(const char *name)
{
    static char url[256];
    char conninfo[256], sql[256];
    snprintf(conninfo, sizeof(conninfo), "host=127.0.0.1 port=%s user=postgres dbname=postgres", pg_port());
    PGconn *c = PQconnectdb(conninfo);
    if (PQstatus(c) != CONNECTION_OK) {
        fprintf(stderr, "harness: cannot connect to PostgreSQL: %s", PQerrorMessage(c));
        exit(2);
    }
    /* Names come from the test source, never from input: plain formatting is fine here. */
    snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS clientele_test_%s WITH (FORCE)", name);
    PQclear(PQexec(c, sql));
    snprintf(sql, sizeof(sql), "CREATE DATABASE clientele_test_%s TEMPLATE clientele_template OWNER clientele", name);
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        fprintf(stderr, "harness: %s", PQresultErrorMessage(r));
        exit(2);
    }
    PQclear(r);
    PQfinish(c);
    snprintf(url, sizeof(url), "postgresql://clientele@127.0.0.1:%s/clientele_test_%s", pg_port(), name);
    return url;
}

const char *th_db_url_as(const char *db_url, const char *role, char *buf, size_t len)
{
    const char *pw = getenv("CLIENTELE_TEST_DB_PASSWORD");
    char owner[128];
    snprintf(owner, sizeof(owner), "postgresql://clientele@127.0.0.1:%s/", pg_port());
    if (pw == NULL || *pw == '\0' || strncmp(db_url, owner, strlen(owner)) != 0)
        return db_url;
    /* The password is letters and digits (scripts/test.sh): nothing to escape in a URL. */
    snprintf(buf, len, "postgresql://%s:%s@127.0.0.1:%s/%s", role, pw, pg_port(), db_url + strlen(owner));
    return buf;
}

const char *th_redis_url(int db)
{
    static char url[128];
    snprintf(url, sizeof(url), "redis://127.0.0.1:%s/%d", env_or("STACK_REDIS_PORT", "56379"), db);
    return url;
}

int th_stack(const char *cmd)
{
    char buf[256];
    snprintf(buf, sizeof(buf), "scripts/stack.sh %s", cmd);
    int st = system(buf);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

pid_t th_redis_pid(void)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/redis/redis.pid", env_or("STACK_DIR", ".test"));
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -1;
    int pid = -1;
    if (fscanf(f, "%d", &pid) != 1)
        pid = -1;
    fclose(f);
    return pid;
}

/* --- the API process ----------------------------------------------------- */

int th_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(sa);
    bind(fd, (struct sockaddr *)&sa, sizeof(sa));
    getsockname(fd, (struct sockaddr *)&sa, &len);
    close(fd);
    return ntohs(sa.sin_port);
}

static const char *api_binary(void)
{
    static char path[256];
    snprintf(path, sizeof(path), "%s/clientele-api", env_or("CLIENTELE_TEST_BUILD", "build/asan"));
    return path;
}

void th_api_start(th_api_t *api, const char *db_url, const char *redis_url, const char *const *env)
{
    api->port = th_free_port();
    static int seq;
    snprintf(api->log_path, sizeof(api->log_path), "%s/logs/api-%d-%d.log", env_or("STACK_DIR", ".test"), (int)getpid(),
             seq++);
    char dir[300];
    snprintf(dir, sizeof(dir), "mkdir -p %s/logs", env_or("STACK_DIR", ".test"));
    if (system(dir) != 0)
        abort();
    char svc_url[512];
    const char *api_url = th_db_url_as(db_url, "clientele_api", svc_url, sizeof(svc_url));
    api->pid = fork();
    if (api->pid == 0) {
        char listen[64];
        snprintf(listen, sizeof(listen), "127.0.0.1:%d", api->port);
        setenv("CLIENTELE_LISTEN", listen, 1);
        setenv("CLIENTELE_DATABASE_URL", api_url, 1);
        setenv("CLIENTELE_REDIS_URL", redis_url, 1);
        /* A file store per suite database, under the stack (emptied with it); env may name another. */
        const char *dbname = strrchr(db_url, '/') != NULL ? strrchr(db_url, '/') + 1 : "default";
        char store[512];
        int n = snprintf(store, sizeof(store), "%s/storage/", env_or("STACK_DIR", ".test"));
        for (const char *c = dbname; *c != '\0' && *c != '?' && n < (int)sizeof(store) - 1; c++)
            store[n++] = isalnum((unsigned char)*c) || *c == '_' || *c == '-' ? *c : '_';
        store[n] = '\0';
        setenv("CLIENTELE_STORAGE_DIR", store, 1);
        for (const char *const *e = env; e != NULL && *e != NULL; e++)
            putenv((char *)*e);
        int fd = open(api->log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
        dup2(fd, 1);
        dup2(fd, 2);
        execl(api_binary(), "clientele-api", (char *)NULL);
        _exit(127);
    }
    int tls = 0;
    for (const char *const *e = env; e != NULL && *e != NULL; e++)
        tls |= strncmp(*e, "CLIENTELE_TLS_CERT=", 19) == 0;
    char probe[160];
    snprintf(probe, sizeof(probe), "curl -fsk -o /dev/null https://127.0.0.1:%d/healthz 2>/dev/null", api->port);
    long long until = th_now_ms() + 20000;
    while (th_now_ms() < until) {
        th_resp_t r = {0}; /* the TLS probe leaves it empty: freeing it must free nothing */
        if (tls && system(probe) == 0)
            return;
        if (!tls && th_http(api->port, "GET", "/healthz", NULL, NULL, 0, &r) == 0 && r.status == 200) {
            th_resp_free(&r);
            return;
        }
        th_resp_free(&r);
        int st;
        if (waitpid(api->pid, &st, WNOHANG) == api->pid) {
            fprintf(stderr, "harness: clientele-api exited during start-up; see %s\n", api->log_path);
            exit(2);
        }
        usleep(50 * 1000);
    }
    fprintf(stderr, "harness: clientele-api did not answer /healthz within 20 s; see %s\n", api->log_path);
    kill(api->pid, SIGKILL);
    exit(2);
}

int th_api_stop(th_api_t *api, int sig, int timeout_s)
{
    int st;
    kill(api->pid, sig);
    long long until = th_now_ms() + timeout_s * 1000LL;
    while (th_now_ms() < until) {
        if (waitpid(api->pid, &st, WNOHANG) == api->pid) {
            api->pid = 0;
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        }
        usleep(20 * 1000);
    }
    kill(api->pid, SIGKILL);
    waitpid(api->pid, &st, 0);
    api->pid = 0;
    return -1;
}

int th_api_run(const char *const *env, const char *arg, char *err, size_t errlen)
{
    int pipefd[2];
    if (pipe(pipefd) != 0)
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        for (const char *const *e = env; e != NULL && *e != NULL; e++)
            putenv((char *)*e);
        dup2(pipefd[1], 2);
        close(pipefd[0]);
        execl(api_binary(), "clientele-api", arg, (char *)NULL);
        _exit(127);
    }
    close(pipefd[1]);
    size_t n = 0;
    ssize_t r;
    while (n + 1 < errlen && (r = read(pipefd[0], err + n, errlen - n - 1)) > 0)
        n += (size_t)r;
    err[n] = '\0';
    close(pipefd[0]);
    int st;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* --- identities ------------------------------------------------------------ */

long long th_user_add(const char *db_url, const char *email, const char *name, const char *role, const char *team,
                      const char *password)
{
    int in[2], out[2];
    if (pipe(in) != 0 || pipe(out) != 0)
        abort();
    pid_t pid = fork();
    if (pid == 0) {
        setenv("CLIENTELE_DATABASE_URL", db_url, 1);
        dup2(in[0], 0);
        dup2(out[1], 1);
        close(in[1]);
        close(out[0]);
        execl(api_binary(), "clientele-api", "user-add", email, name, role, team, (char *)NULL);
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    if (write(in[1], password, strlen(password)) < 0 || write(in[1], "\n", 1) < 0)
        abort();
    close(in[1]);
    char buf[64] = {0};
    ssize_t n = read(out[0], buf, sizeof(buf) - 1);
    close(out[0]);
    int st;
    waitpid(pid, &st, 0);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0 || n <= 0) {
        fprintf(stderr, "harness: user-add %s failed\n", email);
        exit(2);
    }
    return atoll(buf);
}

static PGconn *sql_connect(const char *db_url)
{
    PGconn *c = PQconnectdb(db_url);
    if (PQstatus(c) != CONNECTION_OK) {
        fprintf(stderr, "harness: cannot connect: %s", PQerrorMessage(c));
        PQfinish(c);
        return NULL;
    }
    return c;
}

int th_sql(const char *db_url, const char *sql)
{
    PGconn *c = sql_connect(db_url);
    if (c == NULL)
        return -1;
    PGresult *r = PQexec(c, sql);
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
    if (!ok)
        fprintf(stderr, "harness: %s: %s", sql, PQresultErrorMessage(r));
    PQclear(r);
    PQfinish(c);
    return ok ? 0 : -1;
}

int th_sql_value(const char *db_url, const char *sql, char *out, size_t outlen)
{
    PGconn *c = sql_connect(db_url);
    if (c == NULL)
        return -1;
    PGresult *r = PQexec(c, sql);
    int ret = -1;
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0) {
        snprintf(out, outlen, "%s", PQgetvalue(r, 0, 0));
        ret = 0;
    } else if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        fprintf(stderr, "harness: %s: %s", sql, PQresultErrorMessage(r));
    }
    PQclear(r);
    PQfinish(c);
    return ret;
}

int th_login(int port, const char *email, const char *password, char *access, char *refresh)
{
    json_t *body = json_pack("{s:s, s:s}", "email", email, "password", password);
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    const char *h[] = {"Content-Type: application/json", NULL};
    th_resp_t r;
    int rc = th_http(port, "POST", "/v1/auth/token", h, text, strlen(text), &r);
    free(text);
    if (rc != 0)
        return 0;
    int status = r.status;
    if (status == 200 && r.json != NULL) {
        snprintf(access, 2048, "%s", json_string_value(json_object_get(r.json, "access_token")));
        if (refresh != NULL)
            snprintf(refresh, 256, "%s", json_string_value(json_object_get(r.json, "refresh_token")));
    }
    th_resp_free(&r);
    return status;
}

const char *th_bearer(const char *token, char *buf, size_t len)
{
    snprintf(buf, len, "Authorization: Bearer %s", token);
    return buf;
}
