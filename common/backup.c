/*
 * common/backup.c - backup files: writing, listing, checking and loading them (see backup.h).
 *
 * The archive is written by hand (a ustar header is 512 bytes of fixed
 * fields) so that pg_dump's output streams straight into it: a zeroed header
 * is written first, the dump follows as pg_dump produces it, hashed on the
 * way, and the header is written over once the size is known. The manifest
 * follows as the second member, then the two zero blocks that end an
 * archive.
 *
 * Child processes: child_start() spawns pg_dump or pg_restore with
 * posix_spawnp (argument vector, environment built beforehand, so nothing
 * unsafe runs between fork and exec in a threaded process), with pipes for
 * the streams the caller wants; child_run() then feeds stdin from a range
 * of a file, hands stdout to a sink, keeps the last bytes of stderr for the
 * error message, and calls the tick at least every 100 ms, with one poll()
 * loop. A tick that says stop terminates the child. Callers ignore SIGPIPE
 * (a child that exits early must not kill the caller).
 *
 * Ownership: every function frees what it allocates before returning, the
 * manifest of a backup_file_t and the removed list of a result excepted.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <openssl/evp.h>

#include "backup.h"
#include "err.h"
#include "log.h"

extern char **environ;

#define CHUNK (256 * 1024)
#define TICK_MS 100
#define TAIL_MAX 4096
#define LINE_MAX_KEPT 65536 /* the longest COPY header line the counter reads */
#define PARTIAL_MAX_AGE_S 86400
#define PREFIX "clientele-"
#define SUFFIX ".backup"
#define PARTIAL_SUFFIX ".partial"

/* Scratch tables of a running RFM write (schema/0011): never backed up. */
static const char *const EXCLUDED_PATTERNS[] = {"*.customer_analytics_next_*", "*.customer_analytics_retired_*", NULL};
#define EXCLUDED_REGEX "'^customer_analytics_(next|retired)_'"

static int put_err(char *err, size_t errlen, int code, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int put_err(char *err, size_t errlen, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return code;
}

/* "1.5 GiB" and the like, for messages. */
static const char *human(uint64_t n, char buf[32])
{
    static const char *const units[] = {"bytes", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)n;
    int u = 0;
    while (v >= 1024 && u < 4) {
        v /= 1024;
        u++;
    }
    if (u == 0)
        snprintf(buf, 32, "%" PRIu64 " bytes", n);
    else
        snprintf(buf, 32, "%.1f %s", v, units[u]);
    return buf;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void to_hex(const unsigned char *d, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[d[i] >> 4];
        out[2 * i + 1] = digits[d[i] & 15];
    }
    out[2 * n] = '\0';
}

/* --- names ------------------------------------------------------------------------- */

static int all_digits(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return 0;
    return 1;
}

static int num(const char *s, size_t n)
{
    int v = 0;
    for (size_t i = 0; i < n; i++)
        v = v * 10 + (s[i] - '0');
    return v;
}

int backup_name_ok(const char *name)
{
    /* clientele-YYYYMMDD-HHMMSS.backup */
    if (strlen(name) != BACKUP_NAME_SIZE - 1 || strncmp(name, PREFIX, 10) != 0 || name[18] != '-' ||
        strcmp(name + 25, SUFFIX) != 0 || !all_digits(name + 10, 8) || !all_digits(name + 19, 6))
        return 0;
    int y = num(name + 10, 4), mo = num(name + 14, 2), d = num(name + 16, 2);
    int h = num(name + 19, 2), mi = num(name + 21, 2), s = num(name + 23, 2);
    static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (y < 1970 || mo < 1 || mo > 12 || d < 1 || h > 23 || mi > 59 || s > 59)
        return 0;
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return d <= mdays[mo - 1] + (mo == 2 && leap);
}

void backup_name_for(int64_t t, char out[BACKUP_NAME_SIZE])
{
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(out, BACKUP_NAME_SIZE, PREFIX "%Y%m%d-%H%M%S" SUFFIX, &tm);
}

void backup_name_time(const char *name, char *out, size_t len)
{
    snprintf(out, len, "%.4s-%.2s-%.2sT%.2s:%.2s:%.2s.000000Z", name + 10, name + 14, name + 16, name + 19, name + 21,
             name + 23);
}

int backup_space_ok(uint64_t free_bytes, uint64_t last_size)
{
    return (long double)free_bytes >= (long double)last_size * BACKUP_SPACE_FACTOR;
}

/* --- tar ----------------------------------------------------------------------------- */

static void octal(char *field, size_t width, uint64_t v)
{
    /* width - 1 digits and a NUL */
    field[width - 1] = '\0';
    for (size_t i = width - 1; i-- > 0;) {
        field[i] = (char)('0' + (v & 7));
        v >>= 3;
    }
}

void backup_tar_header(char hdr[512], const char *name, uint64_t size, int64_t mtime)
{
    memset(hdr, 0, 512);
    snprintf(hdr, 100, "%s", name);
    octal(hdr + 100, 8, 0644);
    octal(hdr + 108, 8, 0);
    octal(hdr + 116, 8, 0);
    if (size < (UINT64_C(1) << 33)) {
        octal(hdr + 124, 12, size);
    } else {
        /* GNU base-256: the high bit of the first byte set, the number big-endian in the rest. */
        unsigned char *f = (unsigned char *)hdr + 124;
        f[0] = 0x80;
        for (int i = 11; i >= 1; i--) {
            f[i] = (unsigned char)(size & 0xff);
            size >>= 8;
        }
    }
    octal(hdr + 136, 12, mtime > 0 ? (uint64_t)mtime : 0);
    hdr[156] = '0';
    memcpy(hdr + 257, "ustar", 6);
    memcpy(hdr + 263, "00", 2);
    memset(hdr + 148, ' ', 8);
    unsigned sum = 0;
    for (int i = 0; i < 512; i++)
        sum += (unsigned char)hdr[i];
    snprintf(hdr + 148, 8, "%06o", sum);
    hdr[155] = ' ';
}

static int parse_octal(const char *f, size_t width, uint64_t *out)
{
    uint64_t v = 0;
    size_t i = 0;
    while (i < width && f[i] == ' ')
        i++;
    size_t start = i;
    for (; i < width && f[i] >= '0' && f[i] <= '7'; i++) {
        if (v >> 61)
            return -1;
        v = v * 8 + (uint64_t)(f[i] - '0');
    }
    if (i == start)
        return -1;
    for (; i < width; i++)
        if (f[i] != '\0' && f[i] != ' ')
            return -1;
    *out = v;
    return 0;
}

int backup_tar_parse(const char hdr[512], char name[101], uint64_t *size)
{
    int zero = 1;
    for (int i = 0; i < 512 && zero; i++)
        zero = hdr[i] == 0;
    if (zero)
        return 0;
    uint64_t want;
    if (parse_octal(hdr + 148, 8, &want) != 0)
        return -1;
    unsigned sum = 0;
    for (int i = 0; i < 512; i++)
        sum += i >= 148 && i < 156 ? ' ' : (unsigned char)hdr[i];
    if (sum != want || memcmp(hdr + 257, "ustar", 5) != 0 || (hdr[156] != '0' && hdr[156] != '\0'))
        return -1;
    const unsigned char *f = (const unsigned char *)hdr + 124;
    if (f[0] == 0x80) {
        uint64_t v = 0;
        for (int i = 1; i < 12; i++) {
            if (v >> 56)
                return -1;
            v = (v << 8) | f[i];
        }
        *size = v;
    } else if (parse_octal(hdr + 124, 12, size) != 0) {
        return -1;
    }
    memcpy(name, hdr, 100);
    name[100] = '\0';
    return 1;
}

static uint64_t round512(uint64_t n)
{
    return (n + 511) & ~UINT64_C(511);
}

/* --- I/O ----------------------------------------------------------------------------- */

static int write_all(int fd, const void *p, size_t len)
{
    const char *b = p;
    while (len > 0) {
        ssize_t w = write(fd, b, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        b += w;
        len -= (size_t)w;
    }
    return 0;
}

static int pread_all(int fd, void *p, size_t len, uint64_t off)
{
    char *b = p;
    while (len > 0) {
        ssize_t r = pread(fd, b, len, (off_t)off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        b += r;
        len -= (size_t)r;
        off += (uint64_t)r;
    }
    return 0;
}

static void fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

/* mkdir -p */
static int make_dir(const char *dir)
{
    char path[4200];
    snprintf(path, sizeof(path), "%s", dir);
    for (char *p = path + 1; *p != '\0'; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(path, 0750) != 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    return mkdir(path, 0750) != 0 && errno != EEXIST ? -1 : 0;
}

/* --- the connection, as child processes get it ---------------------------------------- */

typedef struct st_conn_args_t {
    char *connstr;  /* key='value' ... without the password (malloc'ed) */
    char *password; /* NULL when none (malloc'ed) */
} conn_args_t;

static void conn_args_free(conn_args_t *a)
{
    free(a->connstr);
    if (a->password != NULL)
        explicit_bzero(a->password, strlen(a->password));
    free(a->password);
}

static void append_quoted(char **buf, size_t *len, size_t *cap, const char *key, const char *val)
{
    size_t need = *len + strlen(key) + 2 * strlen(val) + 8;
    if (need > *cap) {
        *cap = need * 2;
        if ((*buf = realloc(*buf, *cap)) == NULL)
            abort();
    }
    char *p = *buf + *len;
    p += sprintf(p, "%s%s='", *len > 0 ? " " : "", key);
    for (const char *v = val; *v != '\0'; v++) {
        if (*v == '\'' || *v == '\\')
            *p++ = '\\';
        *p++ = *v;
    }
    *p++ = '\'';
    *p = '\0';
    *len = (size_t)(p - *buf);
}

/* Splits conninfo into a connection string for a child's command line and the password for its environment. */
static int conn_args(const char *conninfo, const char *dbname, conn_args_t *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    char *perr = NULL;
    PQconninfoOption *opts = PQconninfoParse(conninfo, &perr);
    if (opts == NULL) {
        int r = put_err(err, errlen, ERR_INVALID, "the database connection string is not valid: %s",
                        perr != NULL ? perr : "out of memory");
        PQfreemem(perr);
        return r;
    }
    size_t len = 0, cap = 256;
    out->connstr = malloc(cap);
    if (out->connstr == NULL)
        abort();
    out->connstr[0] = '\0';
    for (PQconninfoOption *o = opts; o->keyword != NULL; o++) {
        if (o->val == NULL || o->val[0] == '\0')
            continue;
        if (strcmp(o->keyword, "password") == 0) {
            if ((out->password = strdup(o->val)) == NULL)
                abort();
            continue;
        }
        if (strcmp(o->keyword, "dbname") == 0 && dbname != NULL)
            continue;
        append_quoted(&out->connstr, &len, &cap, o->keyword, o->val);
    }
    if (dbname != NULL)
        append_quoted(&out->connstr, &len, &cap, "dbname", dbname);
    PQconninfoFree(opts);
    return 0;
}

/* --- child processes ------------------------------------------------------------------- */

typedef struct st_child_t {
    pid_t pid;
    int in, out, err; /* the parent's ends; -1 when closed or not piped */
    const char *what; /* "pg_dump", for messages */
    char tail[TAIL_MAX];
    size_t tail_len;
} child_t;

static void close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

/*
 * Starts argv[0] (found on PATH) with stdin and stdout piped when asked
 * (else /dev/null) and stderr piped, with the caller's environment but
 * PGPASSWORD set to password (or removed).
 */
static int child_start(child_t *c, char *const argv[], const char *password, int pipe_in, int pipe_out, char *err,
                       size_t errlen)
{
    memset(c, 0, sizeof(*c));
    c->pid = -1;
    c->in = c->out = c->err = -1;
    c->what = argv[0];
    int pin[2] = {-1, -1}, pout[2] = {-1, -1}, perr[2] = {-1, -1};
    if ((pipe_in && pipe2(pin, O_CLOEXEC) != 0) || (pipe_out && pipe2(pout, O_CLOEXEC) != 0) ||
        pipe2(perr, O_CLOEXEC) != 0) {
        int e = errno;
        for (int i = 0; i < 2; i++) {
            close_fd(&pin[i]);
            close_fd(&pout[i]);
            close_fd(&perr[i]);
        }
        return put_err(err, errlen, ERR_INTERNAL, "cannot create a pipe for %s: %s", argv[0], strerror(e));
    }

    size_t n = 0;
    for (char **e = environ; e != NULL && *e != NULL; e++)
        n++;
    char **envp = calloc(n + 2, sizeof(*envp));
    char *pw = NULL;
    if (envp == NULL)
        abort();
    size_t k = 0;
    for (char **e = environ; e != NULL && *e != NULL; e++)
        if (strncmp(*e, "PGPASSWORD=", 11) != 0)
            envp[k++] = *e;
    if (password != NULL) {
        size_t pl = strlen(password) + 12;
        if ((pw = malloc(pl)) == NULL)
            abort();
        snprintf(pw, pl, "PGPASSWORD=%s", password);
        envp[k++] = pw;
    }
    envp[k] = NULL;

    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    if (pipe_in)
        posix_spawn_file_actions_adddup2(&fa, pin[0], 0);
    else
        posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    if (pipe_out)
        posix_spawn_file_actions_adddup2(&fa, pout[1], 1);
    else
        posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, perr[1], 2);
    /* The child gets default signal handling (the worker ignores SIGPIPE and blocks SIGTERM). */
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &all);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    int rc = posix_spawnp(&c->pid, argv[0], &fa, &attr, argv, envp);
    posix_spawnattr_destroy(&attr);
    posix_spawn_file_actions_destroy(&fa);
    if (pw != NULL) {
        explicit_bzero(pw, strlen(pw));
        free(pw);
    }
    free(envp);
    close_fd(&pin[0]);
    close_fd(&pout[1]);
    close_fd(&perr[1]);
    if (rc != 0) {
        close_fd(&pin[1]);
        close_fd(&pout[0]);
        close_fd(&perr[0]);
        c->pid = -1;
        return put_err(err, errlen, ERR_INTERNAL, "cannot start %s: %s (is the PostgreSQL client installed?)", argv[0],
                       strerror(rc));
    }
    c->in = pin[1];
    c->out = pout[0];
    c->err = perr[0];
    if (c->in >= 0)
        fcntl(c->in, F_SETFL, fcntl(c->in, F_GETFL) | O_NONBLOCK);
    return 0;
}

/* Stops a child that is still running and reaps it. */
static void child_kill(child_t *c)
{
    close_fd(&c->in);
    close_fd(&c->out);
    close_fd(&c->err);
    if (c->pid > 0) {
        kill(c->pid, SIGTERM);
        int st;
        while (waitpid(c->pid, &st, 0) < 0 && errno == EINTR)
            ;
        c->pid = -1;
    }
}

/* Appends what the child said (n < TAIL_MAX) to its tail, dropping the oldest bytes. */
static void keep_tail(child_t *c, const char *p, size_t n)
{
    if (c->tail_len + n > TAIL_MAX) {
        size_t drop = c->tail_len + n - TAIL_MAX;
        memmove(c->tail, c->tail + drop, c->tail_len - drop);
        c->tail_len -= drop;
    }
    memcpy(c->tail + c->tail_len, p, n);
    c->tail_len += n;
}

/* The child's last words: its last two non-empty lines of stderr, joined, into out. */
static void last_words(const child_t *c, char *out, size_t len)
{
    char buf[TAIL_MAX + 1];
    memcpy(buf, c->tail, c->tail_len);
    buf[c->tail_len] = '\0';
    const char *lines[2] = {NULL, NULL};
    for (char *save = NULL, *l = strtok_r(buf, "\n", &save); l != NULL; l = strtok_r(NULL, "\n", &save)) {
        while (*l == ' ' || *l == '\t')
            l++;
        if (*l == '\0')
            continue;
        lines[0] = lines[1];
        lines[1] = l;
    }
    if (lines[1] == NULL)
        snprintf(out, len, "no message");
    else if (lines[0] == NULL)
        snprintf(out, len, "%s", lines[1]);
    else
        snprintf(out, len, "%s; %s", lines[0], lines[1]);
}

typedef int (*sink_fn)(void *arg, const char *data, size_t len);

/*
 * Runs the started child to its end: feeds it src_len bytes of src_fd from
 * src_off (when its stdin is piped), gives its stdout to sink (when piped),
 * keeps its stderr's tail, and ticks with the bytes fed or read. Returns 0
 * when it exited with status 0; the tick's or the sink's nonzero value
 * (after stopping it); or ERR_INTERNAL with its last words.
 */
static int child_run(child_t *c, int src_fd, uint64_t src_off, uint64_t src_len, sink_fn sink, void *sink_arg,
                     backup_tick_fn tick, void *targ, char *err, size_t errlen)
{
    char *buf = malloc(CHUNK), *inbuf = c->in >= 0 ? malloc(CHUNK) : NULL;
    if (buf == NULL || (c->in >= 0 && inbuf == NULL))
        abort();
    size_t in_have = 0, in_pos = 0;
    uint64_t fed = 0, got = 0;
    int64_t last_tick = now_ms();
    int r = 0;
    while (c->in >= 0 || c->out >= 0 || c->err >= 0) {
        if (c->in >= 0 && in_pos == in_have && fed == src_len)
            close_fd(&c->in); /* all fed: the child sees the end of its input */
        if (c->in >= 0 && in_pos == in_have) {
            size_t want = src_len - fed < CHUNK ? (size_t)(src_len - fed) : CHUNK;
            if (pread_all(src_fd, inbuf, want, src_off + fed) != 0) {
                r = put_err(err, errlen, ERR_INTERNAL, "cannot read the backup file: %s",
                            errno != 0 ? strerror(errno) : "it ended early");
                break;
            }
            in_have = want;
            in_pos = 0;
            fed += want;
        }
        struct pollfd p[3];
        int np = 0, iin = -1, iout = -1, ierr = -1;
        if (c->in >= 0)
            iin = np, p[np++] = (struct pollfd){.fd = c->in, .events = POLLOUT};
        if (c->out >= 0)
            iout = np, p[np++] = (struct pollfd){.fd = c->out, .events = POLLIN};
        if (c->err >= 0)
            ierr = np, p[np++] = (struct pollfd){.fd = c->err, .events = POLLIN};
        if (np == 0)
            break;
        if (poll(p, (nfds_t)np, TICK_MS) < 0 && errno != EINTR) {
            r = put_err(err, errlen, ERR_INTERNAL, "poll: %s", strerror(errno));
            break;
        }
        if (iin >= 0 && p[iin].revents != 0) {
            ssize_t w = write(c->in, inbuf + in_pos, in_have - in_pos);
            if (w > 0)
                in_pos += (size_t)w;
            else if (w < 0 && errno != EAGAIN && errno != EINTR)
                close_fd(&c->in); /* the child stopped reading (it failed: its status says why) */
        }
        if (iout >= 0 && p[iout].revents != 0) {
            ssize_t n = read(c->out, buf, CHUNK);
            if (n > 0) {
                got += (uint64_t)n;
                if ((r = sink(sink_arg, buf, (size_t)n)) != 0)
                    break;
            } else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
                close_fd(&c->out);
            }
        }
        if (ierr >= 0 && p[ierr].revents != 0) {
            char eb[TAIL_MAX / 4];
            ssize_t n = read(c->err, eb, sizeof(eb));
            if (n > 0)
                keep_tail(c, eb, (size_t)n);
            else if (n == 0 || (errno != EINTR && errno != EAGAIN))
                close_fd(&c->err);
        }
        int64_t t = now_ms();
        if (tick != NULL && t - last_tick >= TICK_MS) {
            last_tick = t;
            if ((r = tick(targ, fed > got ? fed : got)) != 0)
                break;
        }
    }
    free(buf);
    free(inbuf);
    if (r != 0) {
        child_kill(c);
        return r;
    }
    int st = 0;
    while (waitpid(c->pid, &st, 0) < 0 && errno == EINTR)
        ;
    c->pid = -1;
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
        return 0;
    char words[1024];
    last_words(c, words, sizeof(words));
    if (WIFEXITED(st))
        return put_err(err, errlen, ERR_INTERNAL, "%s failed (exit status %d): %s", c->what, WEXITSTATUS(st), words);
    return put_err(err, errlen, ERR_INTERNAL, "%s was killed by signal %d: %s", c->what, WTERMSIG(st), words);
}

/* --- the COPY counter ----------------------------------------------------------------- */

void backup_counter_init(backup_counter_t *c)
{
    memset(c, 0, sizeof(*c));
    c->counts = json_object();
    if ((c->line = malloc(LINE_MAX_KEPT)) == NULL)
        abort();
}

void backup_counter_free(backup_counter_t *c)
{
    json_decref(c->counts);
    free(c->line);
    c->counts = NULL;
    c->line = NULL;
}

static void counter_error(backup_counter_t *c, const char *msg)
{
    if (c->error[0] == '\0')
        snprintf(c->error, sizeof(c->error), "%s", msg);
}

static void counter_line(backup_counter_t *c)
{
    size_t kept = c->len < LINE_MAX_KEPT ? c->len : LINE_MAX_KEPT;
    if (c->in_copy) {
        if (c->len == 2 && c->line[0] == '\\' && c->line[1] == '.') {
            c->in_copy = 0;
            if (json_object_get(c->counts, c->table) != NULL)
                counter_error(c, "a table's data appears twice");
            json_object_set_new(c->counts, c->table, json_integer(c->rows));
        } else {
            c->rows++;
        }
        return;
    }
    static const char head[] = "COPY ", tail[] = " FROM stdin;";
    if (kept < sizeof(head) - 1 || memcmp(c->line, head, sizeof(head) - 1) != 0)
        return;
    if (c->len > LINE_MAX_KEPT) {
        counter_error(c, "a COPY line is too long");
        return;
    }
    if (kept < sizeof(head) + sizeof(tail) || memcmp(c->line + kept - (sizeof(tail) - 1), tail, sizeof(tail) - 1) != 0)
        return;
    /* The table ends at the column list (" (") or at " FROM stdin;"; a quoted name may hold either. */
    const char *p = c->line + sizeof(head) - 1, *end = c->line + kept - (sizeof(tail) - 1);
    const char *q = p;
    int quoted = 0;
    while (q < end && (quoted || *q != ' ')) {
        if (*q == '"')
            quoted = !quoted;
        q++;
    }
    if (q == p || (size_t)(q - p) >= sizeof(c->table)) {
        counter_error(c, "a COPY line names no table");
        return;
    }
    memcpy(c->table, p, (size_t)(q - p));
    c->table[q - p] = '\0';
    c->in_copy = 1;
    c->rows = 0;
}

void backup_counter_feed(backup_counter_t *c, const char *data, size_t len)
{
    while (len > 0) {
        const char *nl = memchr(data, '\n', len);
        size_t n = nl != NULL ? (size_t)(nl - data) : len;
        if (c->len < LINE_MAX_KEPT) {
            size_t room = LINE_MAX_KEPT - c->len;
            memcpy(c->line + c->len, data, n < room ? n : room);
        }
        c->len += n;
        if (nl == NULL)
            return;
        counter_line(c);
        c->len = 0;
        data += n + 1;
        len -= n + 1;
    }
}

int backup_counter_finish(backup_counter_t *c)
{
    if (c->len > 0) {
        counter_line(c);
        c->len = 0;
    }
    if (c->in_copy)
        counter_error(c, "the data of a table ends before its end marker");
    return c->error[0] != '\0' ? -1 : 0;
}

/* --- reading a backup ----------------------------------------------------------------- */

void backup_file_free(backup_file_t *f)
{
    if (f->manifest != NULL)
        json_decref(f->manifest);
    memset(f, 0, sizeof(*f));
}

static int hex64(const char *s)
{
    if (s == NULL || strlen(s) != 64)
        return 0;
    for (const char *p = s; *p != '\0'; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
            return 0;
    return 1;
}

static int manifest_ok(const json_t *m, uint64_t dump_size, char *err, size_t errlen)
{
    const json_t *dump = json_object_get(m, "dump"), *tables = json_object_get(m, "tables");
    const char *format = json_string_value(json_object_get(m, "format"));
    if (!json_is_object(m))
        return put_err(err, errlen, ERR_INVALID, "the manifest is not a JSON object");
    if (format == NULL || strcmp(format, BACKUP_FORMAT) != 0)
        return put_err(err, errlen, ERR_INVALID, "the manifest's format is not " BACKUP_FORMAT);
    if (!json_is_object(dump) || !json_is_integer(json_object_get(dump, "size")) ||
        !hex64(json_string_value(json_object_get(dump, "sha256"))))
        return put_err(err, errlen, ERR_INVALID, "the manifest does not describe the dump (size, sha256)");
    if ((uint64_t)json_integer_value(json_object_get(dump, "size")) != dump_size)
        return put_err(err, errlen, ERR_INVALID,
                       "the dump holds %" PRIu64 " bytes but the manifest says %" JSON_INTEGER_FORMAT
                       ": the file was cut short or altered",
                       dump_size, json_integer_value(json_object_get(dump, "size")));
    if (!json_is_object(tables))
        return put_err(err, errlen, ERR_INVALID, "the manifest has no table counts");
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)tables, k, v)
    {
        if (!json_is_integer(v) || json_integer_value(v) < 0)
            return put_err(err, errlen, ERR_INVALID, "the manifest's count for table %.100s is not a count", k);
    }
    if (!json_is_string(json_object_get(m, "schema_version")) || !json_is_string(json_object_get(m, "owner")) ||
        !json_is_array(json_object_get(m, "roles")) || !json_is_string(json_object_get(m, "created_at")))
        return put_err(err, errlen, ERR_INVALID, "the manifest lacks schema_version, owner, roles or created_at");
    return 0;
}

int backup_open(const char *path, backup_file_t *f, char *err, size_t errlen)
{
    memset(f, 0, sizeof(*f));
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return put_err(err, errlen, errno == ENOENT ? ERR_NOT_FOUND : ERR_INVALID, "cannot open %s: %s", path,
                       strerror(errno));
    struct stat st;
    char hdr[512], name[101];
    uint64_t size, off;
    char *text = NULL;
    int r;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        r = put_err(err, errlen, ERR_INVALID, "%s is not a regular file", path);
        goto Exit;
    }
    f->file_size = (uint64_t)st.st_size;
    if (f->file_size < 512 * 4 || pread_all(fd, hdr, 512, 0) != 0 || backup_tar_parse(hdr, name, &size) != 1 ||
        strcmp(name, BACKUP_DUMP_MEMBER) != 0) {
        r = put_err(err, errlen, ERR_INVALID,
                    "this is not a Clientele backup (no " BACKUP_DUMP_MEMBER " at its start)");
        goto Exit;
    }
    f->dump_offset = 512;
    f->dump_size = size;
    off = 512 + round512(size);
    if (off + 512 > f->file_size || pread_all(fd, hdr, 512, off) != 0) {
        r = put_err(err, errlen, ERR_INVALID, "the file ends inside the dump: it was cut short");
        goto Exit;
    }
    if (backup_tar_parse(hdr, name, &size) != 1 || strcmp(name, BACKUP_MANIFEST_MEMBER) != 0) {
        r = put_err(err, errlen, ERR_INVALID, "no " BACKUP_MANIFEST_MEMBER " after the dump: the file was altered");
        goto Exit;
    }
    if (size > BACKUP_MANIFEST_MAX) {
        r = put_err(err, errlen, ERR_INVALID, "the manifest is larger than %d bytes", BACKUP_MANIFEST_MAX);
        goto Exit;
    }
    off += 512;
    if (off + round512(size) + 1024 > f->file_size) {
        r = put_err(err, errlen, ERR_INVALID, "the file ends before the end of the archive: it was cut short");
        goto Exit;
    }
    if ((text = malloc(size + 1)) == NULL)
        abort();
    if (pread_all(fd, text, size, off) != 0) {
        r = put_err(err, errlen, ERR_INVALID, "cannot read the manifest: %s", strerror(errno));
        goto Exit;
    }
    /* Nothing but zeros from the end of the manifest on (padding and the end of the archive). */
    for (uint64_t z = off + size; z < f->file_size;) {
        char zb[4096];
        size_t n = f->file_size - z < sizeof(zb) ? (size_t)(f->file_size - z) : sizeof(zb);
        if (pread_all(fd, zb, n, z) != 0) {
            r = put_err(err, errlen, ERR_INVALID, "cannot read the end of the archive");
            goto Exit;
        }
        for (size_t i = 0; i < n; i++)
            if (zb[i] != 0) {
                r = put_err(err, errlen, ERR_INVALID, "the file holds data after the manifest: it was altered");
                goto Exit;
            }
        z += n;
    }
    json_error_t jerr;
    f->manifest = json_loadb(text, size, JSON_REJECT_DUPLICATES, &jerr);
    if (f->manifest == NULL) {
        r = put_err(err, errlen, ERR_INVALID, "the manifest is not valid JSON (%s): the file was altered", jerr.text);
        goto Exit;
    }
    r = manifest_ok(f->manifest, f->dump_size, err, errlen);
Exit:
    free(text);
    close(fd);
    if (r != 0) {
        if (f->manifest != NULL)
            json_decref(f->manifest);
        f->manifest = NULL;
    }
    return r;
}

int backup_check_sha(const char *path, const backup_file_t *f, backup_tick_fn tick, void *arg, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return put_err(err, errlen, ERR_INVALID, "cannot open %s: %s", path, strerror(errno));
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    char *buf = malloc(CHUNK);
    if (md == NULL || buf == NULL || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1)
        abort();
    int r = 0;
    int64_t last = now_ms();
    for (uint64_t done = 0; done < f->dump_size && r == 0;) {
        size_t n = f->dump_size - done < CHUNK ? (size_t)(f->dump_size - done) : CHUNK;
        if (pread_all(fd, buf, n, f->dump_offset + done) != 0) {
            r = put_err(err, errlen, ERR_INVALID, "cannot read the dump: the file was cut short");
            break;
        }
        EVP_DigestUpdate(md, buf, n);
        done += n;
        if (tick != NULL && now_ms() - last >= TICK_MS) {
            last = now_ms();
            r = tick(arg, done);
        }
    }
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned dl = 0;
    EVP_DigestFinal_ex(md, d, &dl);
    EVP_MD_CTX_free(md);
    free(buf);
    close(fd);
    if (r != 0)
        return r;
    char hex[65];
    to_hex(d, 32, hex);
    const char *want = json_string_value(json_object_get(json_object_get(f->manifest, "dump"), "sha256"));
    if (want == NULL || strcmp(hex, want) != 0)
        return put_err(err, errlen, ERR_INVALID,
                       "the dump's SHA-256 is %s but the manifest says %s: the file is damaged or was altered", hex,
                       want != NULL ? want : "nothing");
    return 0;
}

static int counter_sink(void *arg, const char *data, size_t len)
{
    backup_counter_feed(arg, data, len);
    return 0;
}

int backup_verify(const char *path, backup_file_t *f, backup_tick_fn tick, void *arg, char *err, size_t errlen)
{
    int r;
    if ((r = backup_open(path, f, err, errlen)) != 0 || (r = backup_check_sha(path, f, tick, arg, err, errlen)) != 0)
        return r;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return put_err(err, errlen, ERR_INVALID, "cannot open %s: %s", path, strerror(errno));
    char *argv[] = {"pg_restore", "--data-only", "--file=-", NULL};
    child_t c;
    backup_counter_t counter;
    backup_counter_init(&counter);
    if ((r = child_start(&c, argv, NULL, 1, 1, err, errlen)) == 0)
        r = child_run(&c, fd, f->dump_offset, f->dump_size, counter_sink, &counter, tick, arg, err, errlen);
    close(fd);
    if (r == 0 && backup_counter_finish(&counter) != 0)
        r = put_err(err, errlen, ERR_INVALID, "pg_restore's output is not what a dump gives: %s", counter.error);
    const json_t *want = json_object_get(f->manifest, "tables");
    const char *k;
    json_t *v;
    if (r == 0) {
        json_object_foreach((json_t *)want, k, v)
        {
            json_t *got = json_object_get(counter.counts, k);
            if (got == NULL) {
                r = put_err(err, errlen, ERR_INVALID,
                            "the dump holds no data for table %.200s, which the manifest lists", k);
                break;
            }
            if (json_integer_value(got) != json_integer_value(v)) {
                r = put_err(err, errlen, ERR_INVALID,
                            "table %.200s holds %" JSON_INTEGER_FORMAT " rows in the dump but %" JSON_INTEGER_FORMAT
                            " in the manifest",
                            k, json_integer_value(got), json_integer_value(v));
                break;
            }
        }
    }
    if (r == 0) {
        json_object_foreach(counter.counts, k, v)
        {
            if (json_object_get(want, k) == NULL) {
                r = put_err(err, errlen, ERR_INVALID, "the dump holds table %.200s, which the manifest does not list",
                            k);
                break;
            }
        }
    }
    backup_counter_free(&counter);
    return r;
}

static int no_sink(void *arg, const char *data, size_t len)
{
    return 0;
}

int backup_load(const char *path, const backup_file_t *f, const char *conninfo, const char *dbname, backup_tick_fn tick,
                void *arg, char *err, size_t errlen)
{
    conn_args_t ca;
    int r = conn_args(conninfo, dbname, &ca, err, errlen);
    if (r != 0)
        return r;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        conn_args_free(&ca);
        return put_err(err, errlen, ERR_INVALID, "cannot open %s: %s", path, strerror(errno));
    }
    size_t dl = strlen(ca.connstr) + 16;
    char *dbarg = malloc(dl);
    if (dbarg == NULL)
        abort();
    snprintf(dbarg, dl, "--dbname=%s", ca.connstr);
    char *argv[] = {"pg_restore", "--single-transaction", "--exit-on-error", "--no-password", dbarg, NULL};
    child_t c;
    if ((r = child_start(&c, argv, ca.password, 1, 0, err, errlen)) == 0)
        r = child_run(&c, fd, f->dump_offset, f->dump_size, no_sink, NULL, tick, arg, err, errlen);
    close(fd);
    free(dbarg);
    conn_args_free(&ca);
    return r;
}

/* --- the directory -------------------------------------------------------------------- */

static int cmp_desc(const void *a, const void *b)
{
    return strcmp(*(char *const *)b, *(char *const *)a);
}

/* The backup names in dir, newest first (malloc'ed array of malloc'ed names). -1 when dir cannot be read. */
static int scan(const char *dir, char ***names, size_t *n)
{
    *names = NULL;
    *n = 0;
    DIR *d = opendir(dir);
    if (d == NULL)
        return errno == ENOENT ? 0 : -1;
    size_t cap = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (!backup_name_ok(de->d_name))
            continue;
        if (*n == cap && (*names = realloc(*names, (cap = cap * 2 + 16) * sizeof(**names))) == NULL)
            abort();
        if (((*names)[(*n)++] = strdup(de->d_name)) == NULL)
            abort();
    }
    closedir(d);
    if (*n > 0)
        qsort(*names, *n, sizeof(**names), cmp_desc);
    return 0;
}

static void free_names(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

json_t *backup_list(const char *dir, char *err, size_t errlen)
{
    char **names;
    size_t n;
    if (scan(dir, &names, &n) != 0) {
        put_err(err, errlen, ERR_INTERNAL, "cannot read the backup directory %s: %s", dir, strerror(errno));
        return NULL;
    }
    json_t *list = json_array();
    for (size_t i = 0; i < n && i < BACKUP_LIST_MAX; i++) {
        char path[4200], when[40], why[256];
        snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
        struct stat st;
        if (stat(path, &st) != 0)
            continue; /* removed meanwhile */
        backup_name_time(names[i], when, sizeof(when));
        json_t *e = json_pack("{s:s, s:I, s:s}", "name", names[i], "size", (json_int_t)st.st_size, "created_at", when);
        backup_file_t f;
        if (backup_open(path, &f, why, sizeof(why)) == 0) {
            json_object_set(e, "manifest", f.manifest);
            backup_file_free(&f);
        } else {
            json_object_set_new(e, "manifest", json_null());
            json_object_set_new(e, "problem", json_string(why));
        }
        json_array_append_new(list, e);
    }
    free_names(names, n);
    return list;
}

int backup_prune(const char *dir, int keep, json_t *removed)
{
    if (keep < 1)
        keep = 1; /* never the newest */
    char **names;
    size_t n;
    int failed = 0;
    if (scan(dir, &names, &n) != 0) {
        log_msg(LOG_WARN, "backup: cannot read %s to remove old backups: %s", dir, strerror(errno));
        return 1;
    }
    for (size_t i = (size_t)keep; i < n; i++) {
        char path[4200];
        snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
        if (unlink(path) != 0 && errno != ENOENT) {
            log_msg(LOG_WARN, "backup: cannot remove %s: %s", path, strerror(errno));
            failed++;
        } else if (removed != NULL) {
            json_array_append_new(removed, json_string(names[i]));
        }
    }
    free_names(names, n);
    /* Partial files of backups that never finished (a crash, a kill): older than a day. */
    DIR *d = opendir(dir);
    struct dirent *de;
    time_t now = time(NULL);
    const size_t plen = sizeof(PARTIAL_SUFFIX) - 1;
    while (d != NULL && (de = readdir(d)) != NULL) {
        char name[BACKUP_NAME_SIZE];
        if (de->d_name[0] != '.' || strlen(de->d_name) != BACKUP_NAME_SIZE + plen ||
            strcmp(de->d_name + BACKUP_NAME_SIZE, PARTIAL_SUFFIX) != 0)
            continue;
        memcpy(name, de->d_name + 1, BACKUP_NAME_SIZE - 1);
        name[BACKUP_NAME_SIZE - 1] = '\0';
        if (!backup_name_ok(name))
            continue;
        char path[4200];
        struct stat st;
        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        if (lstat(path, &st) == 0 && S_ISREG(st.st_mode) && now - st.st_mtime > PARTIAL_MAX_AGE_S && unlink(path) == 0)
            log_msg(LOG_INFO, "backup: removed %s, left by a backup that did not finish", path);
    }
    if (d != NULL)
        closedir(d);
    return failed;
}

/* --- writing a backup ------------------------------------------------------------------ */

typedef struct st_writer_t {
    int fd;
    EVP_MD_CTX *md;
    uint64_t bytes;
    int werr; /* errno of a failed write */
} writer_t;

static int dump_sink(void *arg, const char *data, size_t len)
{
    writer_t *w = arg;
    EVP_DigestUpdate(w->md, data, len);
    if (write_all(w->fd, data, len) != 0) {
        w->werr = errno != 0 ? errno : EIO;
        return ERR_INTERNAL;
    }
    w->bytes += len;
    return 0;
}

/* Runs one statement on the backup's own session, ticking while the server works. */
static int exec_tick(PGconn *c, const char *sql, PGresult **out, backup_tick_fn tick, void *arg, char *err,
                     size_t errlen)
{
    *out = NULL;
    if (!PQsendQuery(c, sql))
        return put_err(err, errlen, ERR_UNAVAILABLE, "the database connection failed: %s", PQerrorMessage(c));
    PGresult *keep = NULL;
    int r = 0;
    for (;;) {
        while (PQisBusy(c)) {
            struct pollfd p = {.fd = PQsocket(c), .events = POLLIN};
            if (poll(&p, 1, TICK_MS) < 0 && errno != EINTR) {
                r = put_err(err, errlen, ERR_INTERNAL, "poll: %s", strerror(errno));
                break;
            }
            if (tick != NULL && (r = tick(arg, 0)) != 0)
                break;
            if (!PQconsumeInput(c)) {
                r = put_err(err, errlen, ERR_UNAVAILABLE, "the database connection was lost: %s", PQerrorMessage(c));
                break;
            }
        }
        if (r != 0)
            break;
        PGresult *res = PQgetResult(c);
        if (res == NULL)
            break;
        if (keep == NULL)
            keep = res;
        else
            PQclear(res);
    }
    if (r != 0) {
        PQclear(keep);
        return r;
    }
    ExecStatusType st = PQresultStatus(keep);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        r = put_err(err, errlen, ERR_INTERNAL, "the database refused a statement of the backup: %s",
                    keep != NULL ? PQresultErrorField(keep, PG_DIAG_MESSAGE_PRIMARY) : PQerrorMessage(c));
        PQclear(keep);
        return r;
    }
    *out = keep;
    return 0;
}

/* clang-format off */
static const char SQL_BEGIN[] = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY";
static const char SQL_INFO[] =
    "SELECT pg_export_snapshot(), current_database(), current_setting('server_version'),"
    " to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'),"
    " coalesce((SELECT max(version) FROM schema_migrations), ''), (SELECT count(*) FROM schema_migrations),"
    " (SELECT relowner::regrole::text FROM pg_class WHERE oid = 'schema_migrations'::regclass)";
/* Every table whose data pg_dump writes: ordinary tables outside the system's schemas and extensions. */
static const char SQL_TABLES[] =
    "SELECT format('%I.%I', n.nspname, c.relname), n.nspname, c.relname FROM pg_class c"
    " JOIN pg_namespace n ON n.oid = c.relnamespace"
    " WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_(toast|temp)'"
    " AND c.relname !~ " EXCLUDED_REGEX
    " AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')"
    " ORDER BY 1";
/* The roles the dump names (owners, grantees): a restore needs them to exist. */
static const char SQL_ROLES[] =
    "SELECT coalesce(json_agg(DISTINCT r ORDER BY r), '[]')::text FROM ("
    " SELECT c.relowner::regrole::text AS r FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
    "   WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_(toast|temp)'"
    " UNION SELECT a.grantee::regrole::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace,"
    "   aclexplode(c.relacl) a WHERE a.grantee <> 0 AND n.nspname NOT IN ('pg_catalog', 'information_schema')"
    " UNION SELECT p.proowner::regrole::text FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace"
    "   WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')"
    " UNION SELECT a.grantee::regrole::text FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace,"
    "   aclexplode(p.proacl) a WHERE a.grantee <> 0 AND n.nspname NOT IN ('pg_catalog', 'information_schema')"
    " UNION SELECT d.defaclrole::regrole::text FROM pg_default_acl d"
    " UNION SELECT a.grantee::regrole::text FROM pg_default_acl d, aclexplode(d.defaclacl) a WHERE a.grantee <> 0"
    ") x WHERE r NOT LIKE 'pg\\_%'";
/* clang-format on */

/* The newest backup's size, or 0. */
static uint64_t last_size(const char *dir, char *last, size_t len)
{
    char **names;
    size_t n;
    uint64_t size = 0;
    last[0] = '\0';
    if (scan(dir, &names, &n) == 0 && n > 0) {
        char path[4200];
        struct stat st;
        snprintf(path, sizeof(path), "%s/%s", dir, names[0]);
        if (stat(path, &st) == 0)
            size = (uint64_t)st.st_size;
        snprintf(last, len, "%s", names[0]);
    }
    free_names(names, n);
    return size;
}

static int space_check(const char *dir, char *err, size_t errlen)
{
    char last[BACKUP_NAME_SIZE], a[32], b[32], c[32];
    uint64_t size = last_size(dir, last, sizeof(last));
    struct statvfs vfs;
    if (size == 0 || statvfs(dir, &vfs) != 0)
        return 0;
    uint64_t avail = (uint64_t)vfs.f_bavail * (uint64_t)vfs.f_frsize;
    if (backup_space_ok(avail, size))
        return 0;
    return put_err(err, errlen, ERR_INVALID,
                   "not enough free space for a backup in %s: %s free, but the last backup (%s) took %s and a new one"
                   " needs at least %s (%.1f times that); free some space or keep fewer backups",
                   dir, human(avail, a), last, human(size, b), human((uint64_t)((double)size * BACKUP_SPACE_FACTOR), c),
                   BACKUP_SPACE_FACTOR);
}

static PGconn *connect_session(const backup_conf_t *conf, char *err, size_t errlen)
{
    char opts[256];
    int has_role = conf->role != NULL && conf->role[0] != '\0';
    snprintf(opts, sizeof(opts), "-c statement_timeout=0 -c TimeZone=UTC%s%s", has_role ? " -c role=" : "",
             has_role ? conf->role : "");
    const char *keys[] = {"dbname", "options", "application_name", "connect_timeout", NULL};
    const char *vals[] = {conf->conninfo, opts, "clientele-backup", "10", NULL};
    PGconn *c = PQconnectdbParams(keys, vals, 1);
    if (c == NULL || PQstatus(c) != CONNECTION_OK) {
        char msg[512];
        snprintf(msg, sizeof(msg), "%s", c != NULL ? PQerrorMessage(c) : "out of memory");
        msg[strcspn(msg, "\n")] = '\0';
        PQfinish(c);
        put_err(err, errlen, ERR_UNAVAILABLE, "cannot connect to the database: %s", msg);
        return NULL;
    }
    return c;
}

/* Counts each table's rows in the snapshot: {"schema.table": rows}; the total into *rows. */
static int count_tables(PGconn *c, const backup_conf_t *conf, json_t *tables, int64_t *rows, char *err, size_t errlen)
{
    PGresult *list;
    int r = exec_tick(c, SQL_TABLES, &list, conf->tick, conf->arg, err, errlen);
    if (r != 0)
        return r;
    *rows = 0;
    for (int i = 0; i < PQntuples(list) && r == 0; i++) {
        char *schema = PQescapeIdentifier(c, PQgetvalue(list, i, 1), (size_t)PQgetlength(list, i, 1));
        char *table = PQescapeIdentifier(c, PQgetvalue(list, i, 2), (size_t)PQgetlength(list, i, 2));
        if (schema == NULL || table == NULL)
            abort();
        size_t n = strlen(schema) + strlen(table) + 40;
        char *sql = malloc(n);
        if (sql == NULL)
            abort();
        snprintf(sql, n, "SELECT count(*) FROM %s.%s", schema, table);
        PQfreemem(schema);
        PQfreemem(table);
        PGresult *res;
        if ((r = exec_tick(c, sql, &res, conf->tick, conf->arg, err, errlen)) == 0) {
            int64_t cnt = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
            json_object_set_new(tables, PQgetvalue(list, i, 0), json_integer(cnt));
            *rows += cnt;
            PQclear(res);
        }
        free(sql);
    }
    PQclear(list);
    return r;
}

int backup_create(const backup_conf_t *conf, backup_result_t *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    int r, fd = -1;
    PGconn *c = NULL;
    PGresult *info = NULL, *roles = NULL;
    json_t *tables = json_object(), *manifest = NULL;
    char partial[4300] = "", *dbarg = NULL, *snaparg = NULL, *rolearg = NULL, *text = NULL;
    conn_args_t ca = {0};
    writer_t w = {.fd = -1};

    if (make_dir(conf->dir) != 0) {
        r = put_err(err, errlen, ERR_INTERNAL, "cannot create the backup directory %s: %s", conf->dir, strerror(errno));
        goto Exit;
    }
    if ((r = space_check(conf->dir, err, errlen)) != 0 || (r = conn_args(conf->conninfo, NULL, &ca, err, errlen)) != 0)
        goto Exit;

    /* A name of its own: one backup per second at most. */
    for (int tries = 0;; tries++) {
        backup_name_for((int64_t)time(NULL), out->name);
        snprintf(out->path, sizeof(out->path), "%s/%s", conf->dir, out->name);
        if (access(out->path, F_OK) != 0 || tries == 2)
            break;
        usleep(500 * 1000);
    }
    snprintf(partial, sizeof(partial), "%s/.%s" PARTIAL_SUFFIX, conf->dir, out->name);
    if ((fd = open(partial, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0640)) < 0) {
        r = put_err(err, errlen, errno == EEXIST ? ERR_CONFLICT : ERR_INTERNAL, "cannot create %s: %s", partial,
                    strerror(errno));
        partial[0] = '\0'; /* not ours to remove */
        goto Exit;
    }

    /* One snapshot for the counts and the dump. */
    if ((c = connect_session(conf, err, errlen)) == NULL) {
        r = ERR_UNAVAILABLE;
        goto Exit;
    }
    PGresult *res;
    if ((r = exec_tick(c, SQL_BEGIN, &res, conf->tick, conf->arg, err, errlen)) != 0)
        goto Exit;
    PQclear(res);
    if ((r = exec_tick(c, SQL_INFO, &info, conf->tick, conf->arg, err, errlen)) != 0 ||
        (r = exec_tick(c, SQL_ROLES, &roles, conf->tick, conf->arg, err, errlen)) != 0 ||
        (r = count_tables(c, conf, tables, &out->rows, err, errlen)) != 0)
        goto Exit;
    out->tables = (int64_t)json_object_size(tables);

    size_t dl = strlen(ca.connstr) + 16, sl = strlen(PQgetvalue(info, 0, 0)) + 16;
    if ((dbarg = malloc(dl)) == NULL || (snaparg = malloc(sl)) == NULL)
        abort();
    snprintf(dbarg, dl, "--dbname=%s", ca.connstr);
    snprintf(snaparg, sl, "--snapshot=%s", PQgetvalue(info, 0, 0));
    char *argv[12];
    int ac = 0;
    argv[ac++] = "pg_dump";
    argv[ac++] = "--format=custom";
    argv[ac++] = "--no-password";
    argv[ac++] = snaparg;
    char excl[2][64];
    for (int i = 0; EXCLUDED_PATTERNS[i] != NULL; i++) {
        snprintf(excl[i], sizeof(excl[i]), "--exclude-table=%s", EXCLUDED_PATTERNS[i]);
        argv[ac++] = excl[i];
    }
    argv[ac++] = dbarg;
    if (conf->role != NULL && conf->role[0] != '\0') {
        size_t rl = strlen(conf->role) + 8;
        if ((rolearg = malloc(rl)) == NULL)
            abort();
        snprintf(rolearg, rl, "--role=%s", conf->role);
        argv[ac++] = rolearg;
    }
    argv[ac] = NULL;

    /* The dump member's header is written over once its size is known. */
    char hdr[512] = {0};
    if (write_all(fd, hdr, sizeof(hdr)) != 0) {
        r = put_err(err, errlen, ERR_INTERNAL, "cannot write %s: %s", partial, strerror(errno));
        goto Exit;
    }
    w.fd = fd;
    if ((w.md = EVP_MD_CTX_new()) == NULL || EVP_DigestInit_ex(w.md, EVP_sha256(), NULL) != 1)
        abort();
    child_t child;
    if ((r = child_start(&child, argv, ca.password, 0, 1, err, errlen)) != 0)
        goto Exit;
    r = child_run(&child, -1, 0, 0, dump_sink, &w, conf->tick, conf->arg, err, errlen);
    if (r == ERR_INTERNAL && w.werr != 0)
        r = put_err(err, errlen, ERR_INTERNAL, "cannot write %s: %s", partial,
                    w.werr == ENOSPC ? "the disk is full" : strerror(w.werr));
    if (r != 0)
        goto Exit;
    /* The snapshot has served its purpose. */
    if ((r = exec_tick(c, "COMMIT", &res, conf->tick, conf->arg, err, errlen)) != 0)
        goto Exit;
    PQclear(res);

    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned dlen = 0;
    EVP_DigestFinal_ex(w.md, d, &dlen);
    to_hex(d, 32, out->sha256);
    int64_t now = (int64_t)time(NULL);
    static const char zeros[1024] = {0};
    size_t pad = (size_t)(round512(w.bytes) - w.bytes);
    backup_tar_header(hdr, BACKUP_DUMP_MEMBER, w.bytes, now);
    if (write_all(fd, zeros, pad) != 0 || pwrite(fd, hdr, 512, 0) != 512) {
        r = put_err(err, errlen, ERR_INTERNAL, "cannot write %s: %s", partial, strerror(errno));
        goto Exit;
    }

    json_error_t jerr;
    json_t *role_list = json_loads(PQgetvalue(roles, 0, 0), 0, &jerr);
    manifest =
        json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:s, s:o, s:{s:s, s:s, s:I, s:s}, s:O, s:I, s:[ss]}", "format",
                  BACKUP_FORMAT, "created_at", PQgetvalue(info, 0, 3), "database", PQgetvalue(info, 0, 1),
                  "server_version", PQgetvalue(info, 0, 2), "schema_version", PQgetvalue(info, 0, 4), "migrations",
                  (json_int_t)strtoll(PQgetvalue(info, 0, 5), NULL, 10), "owner", PQgetvalue(info, 0, 6), "roles",
                  role_list != NULL ? role_list : json_array(), "dump", "name", BACKUP_DUMP_MEMBER, "format",
                  "pg_dump custom", "size", (json_int_t)w.bytes, "sha256", out->sha256, "tables", tables, "rows",
                  (json_int_t)out->rows, "excluded", EXCLUDED_PATTERNS[0], EXCLUDED_PATTERNS[1]);
    if (manifest == NULL || (text = json_dumps(manifest, JSON_INDENT(2) | JSON_PRESERVE_ORDER)) == NULL)
        abort();
    size_t tl = strlen(text) + 1; /* and a line break */
    backup_tar_header(hdr, BACKUP_MANIFEST_MEMBER, tl, now);
    if (write_all(fd, hdr, 512) != 0 || write_all(fd, text, tl - 1) != 0 || write_all(fd, "\n", 1) != 0 ||
        write_all(fd, zeros, (size_t)(round512(tl) - tl)) != 0 || write_all(fd, zeros, 1024) != 0 || fsync(fd) != 0) {
        r = put_err(err, errlen, ERR_INTERNAL, "cannot write %s: %s", partial,
                    errno == ENOSPC ? "the disk is full" : strerror(errno));
        goto Exit;
    }
    close(fd);
    fd = -1;
    if (link(partial, out->path) != 0) {
        r = put_err(err, errlen, errno == EEXIST ? ERR_CONFLICT : ERR_INTERNAL, "cannot create %s: %s", out->path,
                    strerror(errno));
        goto Exit;
    }
    unlink(partial);
    partial[0] = '\0';
    fsync_dir(conf->dir);
    struct stat st;
    out->size = stat(out->path, &st) == 0 ? (uint64_t)st.st_size : 0;
    out->removed = json_array();
    backup_prune(conf->dir, conf->keep, out->removed);
    r = 0;

Exit:
    if (fd >= 0)
        close(fd);
    if (partial[0] != '\0')
        unlink(partial);
    if (w.md != NULL)
        EVP_MD_CTX_free(w.md);
    PQclear(info);
    PQclear(roles);
    PQfinish(c);
    json_decref(tables);
    if (manifest != NULL)
        json_decref(manifest);
    free(text);
    free(dbarg);
    free(snaparg);
    free(rolearg);
    conn_args_free(&ca);
    return r;
}
