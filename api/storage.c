/*
 * api/storage.c - file contents outside PostgreSQL, addressed by SHA-256
 * (see storage.h).
 *
 * Durability: a put writes a temporary file, fsyncs it, renames it into
 * place and fsyncs the directory that received the name (and the
 * directories it had to create), so once a put has called back the blob
 * survives a crash; the metadata that names it is written afterwards
 * (api/attachments.c), so a row never names a blob that is not complete. A
 * crash between the two leaves a blob nobody names: content-addressed, it
 * is reused by the next upload of the same bytes and harms nothing else.
 *
 * Threads: the blocking functions touch only their arguments and the
 * read-only storage_t, so several pool threads run them at once. Two puts
 * of the same content race harmlessly: each renames its own complete
 * temporary file over the same name.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "common/err.h"
#include "common/log.h"
#include "storage.h"

#define STALE_TMP_S 3600 /* temporary files older than this at start-up were left by a crash */

struct st_storage_t {
    char *dir;
    char *tmp; /* <dir>/tmp */
};

/* --- start-up ------------------------------------------------------------------ */

/* mkdir -p, with mode 0750 for what it creates. */
static int make_dirs(const char *path)
{
    char buf[4096];
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof(buf))
        return -1;
    memcpy(buf, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] != '/' && buf[i] != '\0')
            continue;
        char c = buf[i];
        buf[i] = '\0';
        if (mkdir(buf, 0750) != 0 && errno != EEXIST)
            return -1;
        buf[i] = c;
    }
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISDIR(sb.st_mode) ? 0 : (errno = ENOTDIR, -1);
}

static void remove_stale(const char *tmp)
{
    DIR *d = opendir(tmp);
    if (d == NULL)
        return;
    struct dirent *e;
    time_t now = time(NULL);
    char path[4200];
    while ((e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, "put-", 4) != 0)
            continue;
        struct stat sb;
        snprintf(path, sizeof(path), "%.3900s/%.256s", tmp, e->d_name);
        if (lstat(path, &sb) == 0 && S_ISREG(sb.st_mode) && now - sb.st_mtime > STALE_TMP_S && unlink(path) == 0)
            log_msg(LOG_INFO, "storage: removed the stale temporary file %s", path);
    }
    closedir(d);
}

storage_t *storage_open(const char *dir, char *err, size_t errlen)
{
    storage_t *st = calloc(1, sizeof(*st));
    if (st == NULL)
        abort();
    size_t n = strlen(dir);
    while (n > 1 && dir[n - 1] == '/')
        n--;
    if (n == 0 || (st->dir = strndup(dir, n)) == NULL || asprintf(&st->tmp, "%s/tmp", st->dir) < 0) {
        snprintf(err, errlen, "CLIENTELE_STORAGE_DIR: must name a directory");
        st->tmp = NULL;
        storage_close(st);
        return NULL;
    }
    if (make_dirs(st->dir) != 0 || make_dirs(st->tmp) != 0) {
        snprintf(err, errlen, "CLIENTELE_STORAGE_DIR: cannot create \"%s\": %s", st->tmp, strerror(errno));
        storage_close(st);
        return NULL;
    }
    /* Writable? Found now rather than at the first upload. */
    char probe[4200];
    snprintf(probe, sizeof(probe), "%.4000s/probe-XXXXXX", st->tmp);
    int fd = mkstemp(probe);
    if (fd < 0) {
        snprintf(err, errlen, "CLIENTELE_STORAGE_DIR: cannot create a file in \"%s\": %s", st->tmp, strerror(errno));
        storage_close(st);
        return NULL;
    }
    close(fd);
    unlink(probe);
    remove_stale(st->tmp);
    return st;
}

void storage_close(storage_t *st)
{
    if (st == NULL)
        return;
    free(st->dir);
    free(st->tmp);
    free(st);
}

int storage_sha_ok(const char *s)
{
    size_t i = 0;
    for (; s[i] != '\0'; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return i == 64;
}

void storage_blob_path(const storage_t *st, const char *sha, char *buf, size_t len)
{
    snprintf(buf, len, "%s/%.2s/%.2s/%s", st->dir, sha, sha + 2, sha);
}

/* --- putting ------------------------------------------------------------------- */

static int io_fail(const char *what, const char *path)
{
    int e = errno;
    log_msg(LOG_ERROR, "storage: %s %s: %s", what, path, strerror(e));
    return e == ENOSPC || e == EDQUOT ? ERR_UNAVAILABLE : ERR_INTERNAL;
}

/* Flushes a directory's entries (a rename or mkdir in it) to disk. */
static int sync_dir(const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int r = fsync(fd);
    close(fd);
    return r;
}

/* Creates a directory if missing; *created says whether it did. */
static int ensure_dir(const char *path, int *created)
{
    *created = 0;
    if (mkdir(path, 0750) == 0) {
        *created = 1;
        return 0;
    }
    return errno == EEXIST ? 0 : -1;
}

static int write_all(int fd, const char *p, size_t len)
{
    while (len > 0) {
        ssize_t w = write(fd, p, len > (1u << 30) ? (1u << 30) : len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            if (w == 0)
                errno = EIO;
            return -1;
        }
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

int storage_put_blocking(const storage_t *st, const void *bytes, size_t len, char sha[STORAGE_SHA_HEX])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (EVP_Digest(bytes, len, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32) {
        log_msg(LOG_ERROR, "storage: SHA-256 failed");
        return ERR_INTERNAL;
    }
    for (unsigned i = 0; i < 32; i++)
        snprintf(sha + 2 * i, 3, "%02x", md[i]);

    /* CLIENTELE_STORAGE_DIR is at most 3900 bytes (common/cfg.c): every path fits. */
    char path[4200], aa[4200], bb[4200], tmp[4200];
    snprintf(aa, sizeof(aa), "%.4000s/%.2s", st->dir, sha);
    snprintf(bb, sizeof(bb), "%.4000s/%.2s/%.2s", st->dir, sha, sha + 2);
    storage_blob_path(st, sha, path, sizeof(path));

    /* Content-addressed: the same bytes are there already (a blob is only ever renamed in complete). */
    struct stat sb;
    if (stat(path, &sb) == 0 && S_ISREG(sb.st_mode) && (uint64_t)sb.st_size == (uint64_t)len) {
        /* Keeps a blob in use looking young, for a sweep that would remove old unnamed ones. */
        utimensat(AT_FDCWD, path, NULL, 0);
        return 0;
    }

    int made_aa, made_bb;
    if (ensure_dir(aa, &made_aa) != 0)
        return io_fail("cannot create", aa);
    if (ensure_dir(bb, &made_bb) != 0)
        return io_fail("cannot create", bb);
    snprintf(tmp, sizeof(tmp), "%.4000s/put-XXXXXX", st->tmp);
    int fd = mkstemp(tmp);
    if (fd < 0)
        return io_fail("cannot create a temporary file in", st->tmp);
    if (fchmod(fd, 0640) != 0 || write_all(fd, bytes, len) != 0 || fsync(fd) != 0) {
        int r = io_fail("cannot write", tmp);
        close(fd);
        unlink(tmp);
        return r;
    }
    if (close(fd) != 0) {
        int r = io_fail("cannot close", tmp);
        unlink(tmp);
        return r;
    }
    if (rename(tmp, path) != 0) {
        int r = io_fail("cannot rename a temporary file to", path);
        unlink(tmp);
        return r;
    }
    if (sync_dir(bb) != 0 || (made_bb && sync_dir(aa) != 0) || (made_aa && sync_dir(st->dir) != 0))
        return io_fail("cannot flush the directory of", path);
    return 0;
}

typedef struct st_put_job_t {
    offload_job_t super;
    const storage_t *st;
    const char *bytes;
    size_t len;
    char *copy; /* malloc'ed, or NULL */
    int err;
    char sha[STORAGE_SHA_HEX];
    storage_put_cb cb;
    void *data;
} put_job_t;

static void put_work(offload_job_t *job)
{
    put_job_t *pj = (put_job_t *)job;
    pj->err = storage_put_blocking(pj->st, pj->bytes, pj->len, pj->sha);
}

static void put_done(offload_job_t *job, int cancelled)
{
    put_job_t *pj = (put_job_t *)job;
    pj->cb(pj->data, cancelled ? ERR_UNAVAILABLE : pj->err, cancelled || pj->err != 0 ? NULL : pj->sha, cancelled);
    free(pj->copy);
    free(pj);
}

int storage_put(offload_client_t *oc, const storage_t *st, const void *bytes, size_t len, int copy, storage_put_cb cb,
                void *data)
{
    put_job_t *pj = calloc(1, sizeof(*pj));
    if (pj == NULL)
        abort();
    pj->super.work = put_work;
    pj->super.done = put_done;
    pj->st = st;
    pj->len = len;
    pj->cb = cb;
    pj->data = data;
    if (copy) {
        if ((pj->copy = malloc(len > 0 ? len : 1)) == NULL)
            abort();
        memcpy(pj->copy, bytes, len);
        pj->bytes = pj->copy;
    } else {
        pj->bytes = bytes;
    }
    if (oc == NULL || offload_submit(oc, &pj->super) != 0) {
        free(pj->copy);
        free(pj);
        return ERR_UNAVAILABLE;
    }
    return 0;
}

/* --- reading ------------------------------------------------------------------- */

struct st_storage_reader_t {
    offload_job_t job; /* one open or read at a time; reused */
    offload_client_t *oc;
    const storage_t *st;
    char sha[STORAGE_SHA_HEX];
    int fd;
    uint64_t size;
    int busy;    /* a job is queued or running */
    int closed;  /* the owner is done: free once the job returns */
    int opening; /* the job in flight is the open */
    /* The job's arguments and outcome. */
    uint64_t off;
    size_t want, got;
    int err;
    char *buf; /* STORAGE_CHUNK bytes, allocated at the first read */
    storage_open_cb open_cb;
    storage_read_cb read_cb;
    void *data;
};

static void reader_free(storage_reader_t *r)
{
    /* A read-only descriptor of a regular file: closing it does not wait for the disk. */
    if (r->fd >= 0)
        close(r->fd);
    free(r->buf);
    free(r);
}

static void reader_work(offload_job_t *job)
{
    storage_reader_t *r = (storage_reader_t *)job;
    char path[4200];
    storage_blob_path(r->st, r->sha, path, sizeof(path));
    r->err = 0;
    if (r->opening) {
        struct stat sb;
        r->fd = open(path, O_RDONLY | O_CLOEXEC);
        if (r->fd < 0 || fstat(r->fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
            int e = r->fd < 0 ? errno : EINVAL;
            log_msg(LOG_ERROR, "storage: cannot open the blob %s: %s", path, strerror(e));
            r->err = e == ENOENT ? ERR_NOT_FOUND : ERR_INTERNAL;
            return;
        }
        r->size = (uint64_t)sb.st_size;
        return;
    }
    r->got = 0;
    while (r->got < r->want) {
        ssize_t n = pread(r->fd, r->buf + r->got, r->want - r->got, (off_t)(r->off + r->got));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            log_msg(LOG_ERROR, "storage: cannot read %zu bytes at %llu of the blob %s: %s", r->want - r->got,
                    (unsigned long long)(r->off + r->got), path, n == 0 ? "the file is shorter" : strerror(errno));
            r->err = ERR_INTERNAL;
            return;
        }
        r->got += (size_t)n;
    }
}

static void reader_done(offload_job_t *job, int cancelled)
{
    storage_reader_t *r = (storage_reader_t *)job;
    r->busy = 0;
    if (r->closed) {
        reader_free(r);
        return;
    }
    if (r->opening) {
        r->opening = 0;
        r->open_cb(r->data, cancelled ? ERR_UNAVAILABLE : r->err, r->size, cancelled);
    } else {
        r->read_cb(r->data, cancelled ? ERR_UNAVAILABLE : r->err, r->buf, r->err == 0 ? r->got : 0, cancelled);
    }
}

storage_reader_t *storage_reader_open(offload_client_t *oc, const storage_t *st, const char *sha, storage_open_cb cb,
                                      void *data)
{
    storage_reader_t *r = calloc(1, sizeof(*r));
    if (r == NULL)
        abort();
    r->job.work = reader_work;
    r->job.done = reader_done;
    r->oc = oc;
    r->st = st;
    r->fd = -1;
    snprintf(r->sha, sizeof(r->sha), "%s", sha);
    r->opening = 1;
    r->busy = 1;
    r->open_cb = cb;
    r->data = data;
    if (oc == NULL || !storage_sha_ok(r->sha) || offload_submit(oc, &r->job) != 0) {
        free(r);
        return NULL;
    }
    return r;
}

int storage_reader_read(storage_reader_t *r, uint64_t off, size_t len, storage_read_cb cb, void *data)
{
    if (r->busy || r->closed || r->fd < 0 || off > r->size || len > r->size - off)
        return ERR_INTERNAL;
    if (r->buf == NULL && (r->buf = malloc(STORAGE_CHUNK)) == NULL)
        abort();
    r->off = off;
    r->want = len < STORAGE_CHUNK ? len : STORAGE_CHUNK;
    r->read_cb = cb;
    r->data = data;
    r->busy = 1;
    if (offload_submit(r->oc, &r->job) != 0) {
        r->busy = 0;
        return ERR_UNAVAILABLE;
    }
    return 0;
}

void storage_reader_close(storage_reader_t *r)
{
    if (r == NULL)
        return;
    if (r->busy)
        r->closed = 1; /* freed by reader_done */
    else
        reader_free(r);
}
