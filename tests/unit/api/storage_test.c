/*
 * tests/unit/api/storage_test.c - unit tests for api/storage.c: the
 * content-addressed file store, in a fresh directory per test.
 *
 * The blocking half (open, put) is called directly; the asynchronous half
 * (put, reader) runs on an h2o loop driven by the test with a real offload
 * pool, and checks that every callback comes on the loop's thread, after
 * the call that asked for it returned, and never after a close.
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../../../api/storage.c"

/* SHA-256("abc"), FIPS 180-2 appendix B.1. */
#define ABC_SHA "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"

static char dir[256];

static void make_dir(void)
{
    snprintf(dir, sizeof(dir), "/tmp/clientele-storage-test-%d-XXXXXX", (int)getpid());
    ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void remove_dir(void)
{
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}

static storage_t *open_ok(const char *path)
{
    char err[256] = "";
    storage_t *st = storage_open(path, err, sizeof(err));
    ck_assert_msg(st != NULL, "storage_open(%s): %s", path, err);
    return st;
}

/* Regular files under path (recursively), tmp/ included. */
static int count_files(const char *path)
{
    DIR *d = opendir(path);
    if (d == NULL)
        return 0;
    int n = 0;
    struct dirent *e;
    char sub[4096];
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name);
        struct stat sb;
        if (lstat(sub, &sb) != 0)
            continue;
        n += S_ISDIR(sb.st_mode) ? count_files(sub) : S_ISREG(sb.st_mode);
    }
    closedir(d);
    return n;
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    char *buf = malloc(4 << 20);
    *len = fread(buf, 1, 4 << 20, f);
    fclose(f);
    return buf;
}

/* --- opening ---------------------------------------------------------------------- */

START_TEST(test_open_creates_and_checks)
{
    make_dir();
    char sub[512];
    snprintf(sub, sizeof(sub), "%s/a/b/store///", dir);
    storage_t *st = open_ok(sub);
    snprintf(sub, sizeof(sub), "%s/a/b/store/tmp", dir);
    struct stat sb;
    ck_assert_int_eq(stat(sub, &sb), 0);
    ck_assert(S_ISDIR(sb.st_mode));
    /* The probe file is gone. */
    snprintf(sub, sizeof(sub), "%s/a/b/store", dir);
    ck_assert_int_eq(count_files(sub), 0);
    char path[512];
    storage_blob_path(st, ABC_SHA, path, sizeof(path));
    char want[512];
    snprintf(want, sizeof(want), "%s/a/b/store/ba/78/%s", dir, ABC_SHA);
    ck_assert_str_eq(path, want);
    storage_close(st);

    /* A file where the directory should be, and an unwritable directory: refused with the variable's name. */
    char err[256];
    snprintf(sub, sizeof(sub), "%s/plain-file", dir);
    FILE *f = fopen(sub, "w");
    fclose(f);
    ck_assert_ptr_null(storage_open(sub, err, sizeof(err)));
    ck_assert_msg(strstr(err, "CLIENTELE_STORAGE_DIR") != NULL, "%s", err);
    if (geteuid() != 0) {
        snprintf(sub, sizeof(sub), "%s/locked", dir);
        ck_assert_int_eq(mkdir(sub, 0500), 0);
        ck_assert_ptr_null(storage_open(sub, err, sizeof(err)));
        ck_assert_msg(strstr(err, "CLIENTELE_STORAGE_DIR") != NULL, "%s", err);
        chmod(sub, 0700);
    }
    ck_assert_ptr_null(storage_open("", err, sizeof(err)));
    remove_dir();
}
END_TEST

START_TEST(test_open_removes_stale_temporary_files)
{
    make_dir();
    storage_close(open_ok(dir));
    char old[512], young[512], other[512];
    snprintf(old, sizeof(old), "%s/tmp/put-old123", dir);
    snprintf(young, sizeof(young), "%s/tmp/put-new123", dir);
    snprintf(other, sizeof(other), "%s/tmp/not-ours", dir);
    fclose(fopen(old, "w"));
    fclose(fopen(young, "w"));
    fclose(fopen(other, "w"));
    struct timespec t[2] = {{time(NULL) - 7200, 0}, {time(NULL) - 7200, 0}};
    ck_assert_int_eq(utimensat(AT_FDCWD, old, t, 0), 0);
    ck_assert_int_eq(utimensat(AT_FDCWD, other, t, 0), 0);
    storage_close(open_ok(dir));
    ck_assert_int_ne(access(old, F_OK), 0);
    ck_assert_int_eq(access(young, F_OK), 0);
    ck_assert_int_eq(access(other, F_OK), 0);
    remove_dir();
}
END_TEST

START_TEST(test_sha_ok)
{
    ck_assert(storage_sha_ok(ABC_SHA));
    ck_assert(!storage_sha_ok(""));
    ck_assert(!storage_sha_ok("BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD"));
    ck_assert(!storage_sha_ok(ABC_SHA "0"));
    ck_assert(!storage_sha_ok("../../../../etc/passwd"));
}
END_TEST

/* --- putting (blocking) ---------------------------------------------------------------- */

START_TEST(test_put_writes_once_by_content)
{
    make_dir();
    storage_t *st = open_ok(dir);
    char sha[STORAGE_SHA_HEX], path[512];
    ck_assert_int_eq(storage_put_blocking(st, "abc", 3, sha), 0);
    ck_assert_str_eq(sha, ABC_SHA);
    storage_blob_path(st, sha, path, sizeof(path));
    size_t len;
    char *got = slurp(path, &len);
    ck_assert(len == 3 && memcmp(got, "abc", 3) == 0);
    free(got);
    struct stat sb;
    ck_assert_int_eq(stat(path, &sb), 0);
    ck_assert_int_eq(sb.st_mode & 0777, 0640);

    /* The same bytes again: the same file, made younger; nothing else written. */
    struct timespec t[2] = {{time(NULL) - 7200, 0}, {time(NULL) - 7200, 0}};
    ck_assert_int_eq(utimensat(AT_FDCWD, path, t, 0), 0);
    ck_assert_int_eq(storage_put_blocking(st, "abc", 3, sha), 0);
    ck_assert_int_eq(stat(path, &sb), 0);
    ck_assert_int_gt(sb.st_mtime, time(NULL) - 60);
    ck_assert_int_eq(count_files(dir), 1);

    /* A blob of the wrong size under the name (damaged): written anew. */
    FILE *f = fopen(path, "w");
    fputs("abcd", f);
    fclose(f);
    ck_assert_int_eq(storage_put_blocking(st, "abc", 3, sha), 0);
    got = slurp(path, &len);
    ck_assert(len == 3 && memcmp(got, "abc", 3) == 0);
    free(got);

    /* Binary content with NULs, and other content beside it. */
    char bin[1000];
    for (size_t i = 0; i < sizeof(bin); i++)
        bin[i] = (char)(i % 7 == 0 ? 0 : i);
    char sha2[STORAGE_SHA_HEX];
    ck_assert_int_eq(storage_put_blocking(st, bin, sizeof(bin), sha2), 0);
    ck_assert_str_ne(sha2, sha);
    storage_blob_path(st, sha2, path, sizeof(path));
    got = slurp(path, &len);
    ck_assert(len == sizeof(bin) && memcmp(got, bin, len) == 0);
    free(got);
    ck_assert_int_eq(count_files(dir), 2); /* nothing left in tmp/ */
    storage_close(st);
    remove_dir();
}
END_TEST

/* --- the loop half ------------------------------------------------------------------- */

typedef struct st_fixture_t {
    h2o_evloop_t *loop;
    h2o_multithread_queue_t *queue;
    offload_pool_t *pool;
    offload_client_t *client;
    pthread_t thread;
    int in_call; /* set around calls that take a callback: one seeing it came too early */
    int early, wrong_thread;
    int done, err, cancelled;
    uint64_t size;
    char sha[STORAGE_SHA_HEX];
    char *got;
    size_t got_len;
} fixture_t;

static fixture_t fx;

static void fixture_init(void)
{
    memset(&fx, 0, sizeof(fx));
    fx.thread = pthread_self();
    fx.loop = h2o_evloop_create();
    fx.queue = h2o_multithread_create_queue(fx.loop);
    fx.pool = offload_pool_create(2, 16);
    ck_assert_ptr_nonnull(fx.pool);
    fx.client = offload_client_create(fx.pool, fx.queue);
    fx.got = malloc(4 << 20);
}

static void fixture_dispose(void)
{
    if (fx.client != NULL)
        offload_client_destroy(fx.client);
    offload_pool_destroy(fx.pool);
    h2o_multithread_destroy_queue(fx.queue);
    free(fx.queue); /* h2o 2.2.5's evloop variant does not free the queue itself */
    h2o_evloop_run(fx.loop, 0);
    h2o_evloop_destroy(fx.loop);
    free(fx.got);
}

static void run_until(int n)
{
    for (int i = 0; fx.done < n && i < 200; i++)
        h2o_evloop_run(fx.loop, 50);
    ck_assert_int_eq(fx.done, n);
}

static void check_context(void)
{
    fx.early += fx.in_call;
    fx.wrong_thread += !pthread_equal(pthread_self(), fx.thread);
}

static void on_put(void *data, int err, const char *sha, int cancelled)
{
    check_context();
    fx.err = err;
    fx.cancelled = cancelled;
    if (sha != NULL)
        snprintf(fx.sha, sizeof(fx.sha), "%s", sha);
    fx.done++;
}

static void on_open(void *data, int err, uint64_t size, int cancelled)
{
    check_context();
    fx.err = err;
    fx.size = size;
    fx.cancelled = cancelled;
    fx.done++;
}

static void on_read(void *data, int err, const char *buf, size_t n, int cancelled)
{
    check_context();
    fx.err = err;
    fx.cancelled = cancelled;
    if (err == 0) {
        memcpy(fx.got + fx.got_len, buf, n);
        fx.got_len += n;
    }
    fx.done++;
}

START_TEST(test_put_and_read_back_in_chunks)
{
    make_dir();
    storage_t *st = open_ok(dir);
    fixture_init();
    /* More than three chunks, not a multiple of one. */
    size_t len = 3 * STORAGE_CHUNK + 12345;
    char *bytes = malloc(len);
    for (size_t i = 0; i < len; i++)
        bytes[i] = (char)(i * 2654435761u >> 13);
    fx.in_call = 1;
    ck_assert_int_eq(storage_put(fx.client, st, bytes, len, 1, on_put, NULL), 0);
    fx.in_call = 0;
    memset(bytes, 0, 16); /* copied: the caller's buffer may change at once */
    for (size_t i = 0; i < 16; i++)
        bytes[i] = (char)(i * 2654435761u >> 13);
    run_until(1);
    ck_assert_int_eq(fx.err, 0);
    ck_assert_uint_eq(strlen(fx.sha), 64);

    fx.in_call = 1;
    storage_reader_t *r = storage_reader_open(fx.client, st, fx.sha, on_open, NULL);
    fx.in_call = 0;
    ck_assert_ptr_nonnull(r);
    run_until(2);
    ck_assert_int_eq(fx.err, 0);
    ck_assert_uint_eq(fx.size, len);
    /* One read at a time, each at most a chunk. */
    int reads = 0;
    while (fx.got_len < len) {
        size_t before = fx.got_len;
        fx.in_call = 1;
        ck_assert_int_eq(storage_reader_read(r, fx.got_len, len - fx.got_len, on_read, NULL), 0);
        /* A second read while one is in flight is refused. */
        ck_assert_int_ne(storage_reader_read(r, 0, 1, on_read, NULL), 0);
        fx.in_call = 0;
        run_until(3 + reads);
        ck_assert_int_eq(fx.err, 0);
        ck_assert_uint_le(fx.got_len - before, STORAGE_CHUNK);
        reads++;
    }
    ck_assert_int_eq(reads, 4);
    ck_assert(memcmp(fx.got, bytes, len) == 0);
    /* A range in the middle, and reads past the end refused. */
    fx.got_len = 0;
    ck_assert_int_eq(storage_reader_read(r, 1000, 10, on_read, NULL), 0);
    run_until(3 + reads);
    ck_assert(fx.got_len == 10 && memcmp(fx.got, bytes + 1000, 10) == 0);
    ck_assert_int_ne(storage_reader_read(r, len, 1, on_read, NULL), 0);
    ck_assert_int_ne(storage_reader_read(r, len - 1, 2, on_read, NULL), 0);
    storage_reader_close(r);
    ck_assert_int_eq(fx.early, 0);
    ck_assert_int_eq(fx.wrong_thread, 0);
    free(bytes);
    fixture_dispose();
    storage_close(st);
    remove_dir();
}
END_TEST

START_TEST(test_reader_missing_blob_and_close_in_flight)
{
    make_dir();
    storage_t *st = open_ok(dir);
    fixture_init();
    storage_reader_t *r = storage_reader_open(fx.client, st, ABC_SHA, on_open, NULL);
    ck_assert_ptr_nonnull(r);
    run_until(1);
    ck_assert_int_eq(fx.err, ERR_NOT_FOUND);
    storage_reader_close(r);
    /* Not a hash: refused at once, nothing is called. */
    ck_assert_ptr_null(storage_reader_open(fx.client, st, "../../etc/passwd", on_open, NULL));

    char sha[STORAGE_SHA_HEX];
    ck_assert_int_eq(storage_put_blocking(st, "abc", 3, sha), 0);
    /* Closed while the open is in flight: no callback, and the memory is freed when the work returns. */
    r = storage_reader_open(fx.client, st, sha, on_open, NULL);
    ck_assert_ptr_nonnull(r);
    storage_reader_close(r);
    for (int i = 0; i < 10; i++)
        h2o_evloop_run(fx.loop, 20);
    ck_assert_int_eq(fx.done, 1);
    /* Closed while a read is in flight: the same. */
    r = storage_reader_open(fx.client, st, sha, on_open, NULL);
    run_until(2);
    ck_assert_int_eq(fx.err, 0);
    ck_assert_uint_eq(fx.size, 3);
    ck_assert_int_eq(storage_reader_read(r, 0, 3, on_read, NULL), 0);
    storage_reader_close(r);
    for (int i = 0; i < 10; i++)
        h2o_evloop_run(fx.loop, 20);
    ck_assert_int_eq(fx.done, 2);
    /* A put whose client is destroyed before it is delivered is reported as cancelled (never as done). */
    ck_assert_int_eq(storage_put(fx.client, st, "xyz", 3, 0, on_put, NULL), 0);
    offload_client_destroy(fx.client);
    fx.client = NULL;
    ck_assert_int_eq(fx.done, 3);
    ck_assert_int_eq(fx.cancelled, 1);
    ck_assert_int_eq(fx.err, ERR_UNAVAILABLE);
    /* Without a client nothing is queued. */
    ck_assert_int_eq(storage_put(NULL, st, "xyz", 3, 0, on_put, NULL), ERR_UNAVAILABLE);
    ck_assert_int_eq(fx.wrong_thread, 0);
    fixture_dispose();
    storage_close(st);
    remove_dir();
}
END_TEST

static Suite *storage_suite(void)
{
    Suite *s = suite_create("api/storage");
    TCase *tc = tcase_create("open");
    tcase_add_test(tc, test_open_creates_and_checks);
    tcase_add_test(tc, test_open_removes_stale_temporary_files);
    tcase_add_test(tc, test_sha_ok);
    suite_add_tcase(s, tc);
    tc = tcase_create("put");
    tcase_set_timeout(tc, 20);
    tcase_add_test(tc, test_put_writes_once_by_content);
    suite_add_tcase(s, tc);
    tc = tcase_create("async");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_put_and_read_back_in_chunks);
    tcase_add_test(tc, test_reader_missing_blob_and_close_in_flight);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(storage_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
