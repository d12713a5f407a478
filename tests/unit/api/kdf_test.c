/*
 * tests/unit/api/kdf_test.c - unit tests for api/kdf.c.
 *
 * The blocking helpers are tested directly, including against hashes made
 * by the reference argon2 command-line tool. The asynchronous path runs a
 * real h2o evloop on the test's own thread (or on extra threads, for the
 * two-loop test): each test creates a loop and a multithread queue, a pool
 * and a client, runs the loop until the expected callbacks have arrived,
 * and tears everything down again so LeakSanitizer sees no leak. Callbacks
 * assert that they run on the thread that runs their loop and never inside
 * the submit call. Most tests use tiny parameters (t=1, m=1 MiB); the
 * timing and queue tests need jobs that take a while and use the defaults.
 * The file under test is included to reach its statics (the queue cap, the
 * job wipe).
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../../../api/kdf.c"

static const kdf_params_t SMALL = {.t_cost = 1, .m_cost_kib = 1024, .parallelism = 1};

/* Made with: echo -n password | argon2 somesaltsomesalt -id -t 2 -m 10 -p 2 -e (and -i, -d). */
static const char REF_ID[] =
    "$argon2id$v=19$m=1024,t=2,p=2$c29tZXNhbHRzb21lc2FsdA$E2UjtrDTCgIx4mfpqQ9GwLzvabuQuVCcwisqBRbSI+4";
static const char REF_I[] =
    "$argon2i$v=19$m=1024,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$lwfbXCoFcL3IplJiF7JfD/BD6NIUHLAFJiATPggIHk8";
static const char REF_D[] =
    "$argon2d$v=19$m=1024,t=1,p=1$c29tZXNhbHRzb21lc2FsdA$tI7IDBBRUfD6PFGox60UFLOgsxY2K2SnD8BOBd03zK8";

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* --- blocking helpers ------------------------------------------------------ */

START_TEST(test_now_round_trip)
{
    char a[KDF_ENCODED_MAX], b[KDF_ENCODED_MAX];
    ck_assert_int_eq(kdf_hash_now(&SMALL, "correct horse", 13, a, sizeof(a)), 0);
    ck_assert_msg(strncmp(a, "$argon2id$v=19$m=1024,t=1,p=1$", 30) == 0, "unexpected encoding %s", a);
    ck_assert_int_eq(kdf_verify_now(a, "correct horse", 13), 1);
    /* A fresh salt each time. */
    ck_assert_int_eq(kdf_hash_now(&SMALL, "correct horse", 13, b, sizeof(b)), 0);
    ck_assert_str_ne(a, b);
    ck_assert_int_eq(kdf_verify_now(b, "correct horse", 13), 1);
}
END_TEST

START_TEST(test_now_wrong_password)
{
    char enc[KDF_ENCODED_MAX];
    ck_assert_int_eq(kdf_hash_now(&SMALL, "correct horse", 13, enc, sizeof(enc)), 0);
    ck_assert_int_eq(kdf_verify_now(enc, "correct horsf", 13), 0);
    ck_assert_int_eq(kdf_verify_now(enc, "correct hors", 12), 0);
    ck_assert_int_eq(kdf_verify_now(enc, "", 0), 0);
    /* The length counts, not a NUL: "correct horse\0x" is another password. */
    ck_assert_int_eq(kdf_verify_now(enc, "correct horse\0x", 15), 0);
}
END_TEST

START_TEST(test_now_binary_and_empty_passwords)
{
    char enc[KDF_ENCODED_MAX];
    ck_assert_int_eq(kdf_hash_now(&SMALL, "a\0b", 3, enc, sizeof(enc)), 0);
    ck_assert_int_eq(kdf_verify_now(enc, "a\0b", 3), 1);
    ck_assert_int_eq(kdf_verify_now(enc, "a\0c", 3), 0);
    ck_assert_int_eq(kdf_hash_now(&SMALL, "", 0, enc, sizeof(enc)), 0);
    ck_assert_int_eq(kdf_verify_now(enc, "", 0), 1);
    ck_assert_int_eq(kdf_hash_now(&SMALL, NULL, 0, enc, sizeof(enc)), 0);
    ck_assert_int_eq(kdf_verify_now(enc, NULL, 0), 1);
    ck_assert_int_eq(kdf_hash_now(&SMALL, NULL, 3, enc, sizeof(enc)), ERR_INVALID);
}
END_TEST

START_TEST(test_now_password_length_limit)
{
    char enc[KDF_ENCODED_MAX], *pw = malloc(KDF_MAX_PASSWORD + 1);
    memset(pw, 'p', KDF_MAX_PASSWORD + 1);
    ck_assert_int_eq(kdf_hash_now(&SMALL, pw, KDF_MAX_PASSWORD + 1, enc, sizeof(enc)), ERR_INVALID);
    ck_assert_int_eq(kdf_hash_now(&SMALL, pw, KDF_MAX_PASSWORD, enc, sizeof(enc)), 0);
    ck_assert_int_eq(kdf_verify_now(enc, pw, KDF_MAX_PASSWORD), 1);
    ck_assert_int_eq(kdf_verify_now(enc, pw, KDF_MAX_PASSWORD + 1), ERR_INVALID);
    free(pw);
}
END_TEST

START_TEST(test_now_reference_vectors)
{
    /* Other parameters (t=2, p=2) are read from the string. */
    ck_assert_int_eq(kdf_verify_now(REF_ID, "password", 8), 1);
    ck_assert_int_eq(kdf_verify_now(REF_ID, "Password", 8), 0);
    /* argon2i and argon2d hashes are refused, even with the right password. */
    ck_assert_int_eq(kdf_verify_now(REF_I, "password", 8), ERR_INVALID);
    ck_assert_int_eq(kdf_verify_now(REF_D, "password", 8), ERR_INVALID);
}
END_TEST

START_TEST(test_now_other_params_verify)
{
    kdf_params_t p = {.t_cost = 3, .m_cost_kib = 2048, .parallelism = 2};
    char enc[KDF_ENCODED_MAX];
    ck_assert_int_eq(kdf_hash_now(&p, "pw", 2, enc, sizeof(enc)), 0);
    ck_assert_msg(strstr(enc, "$m=2048,t=3,p=2$") != NULL, "unexpected encoding %s", enc);
    ck_assert_int_eq(kdf_verify_now(enc, "pw", 2), 1);
    ck_assert_int_eq(kdf_verify_now(enc, "pW", 2), 0);
}
END_TEST

START_TEST(test_now_malformed_encodings)
{
    static const char *const bad[] = {
        "",
        "password",
        "$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW", /* bcrypt */
        "$argon2id$",
        "$argon2id$v=19$",
        "$argon2id$v=19$m=1024,t=1$c29tZXNhbHRzb21lc2FsdA$E2UjtrDTCgIx4mfpqQ9GwLzvabuQuVCcwisqBRbSI+4",
        "$argon2id$v=19$m=1024,t=0,p=1$c29tZXNhbHRzb21lc2FsdA$E2UjtrDTCgIx4mfpqQ9GwLzvabuQuVCcwisqBRbSI+4",
        "$argon2id$v=19$m=1024,t=1,p=0$c29tZXNhbHRzb21lc2FsdA$E2UjtrDTCgIx4mfpqQ9GwLzvabuQuVCcwisqBRbSI+4",
        "$argon2id$v=19$m=4194304,t=1,p=1$c29tZXNhbHRzb21lc2FsdA$E2UjtrDTCgIx4mfpqQ9GwLzvabuQuVCcwisqBRbSI+4",
        "$argon2id$v=19$m=1024,t=1000,p=1$c29tZXNhbHRzb21lc2FsdA$E2UjtrDTCgIx4mfpqQ9GwLzvabuQuVCcwisqBRbSI+4",
        "$argon2id$v=19$m=99999999999,t=1,p=1$c29tZXNhbHRzb21lc2FsdA$E2UjtrDTCgIx4mfpqQ9GwLzvabuQuVCcwisqBRbSI+4",
        "$argon2id$v=19$m=-1,t=1,p=1$c29tZXNhbHRzb21lc2FsdA$E2UjtrDTCgIx4mfpqQ9GwLzvabuQuVCcwisqBRbSI+4",
        "$argon2id$v=19$m=1024,t=2,p=2$c29tZXNhbHRzb21lc2FsdA$!!!!tkDTCgIx4mfpqQ9GwLzvabuQuVCcwisqBRbSI+4",
        "$argon2id$v=19$m=1024,t=2,p=2$c29tZQ$E2UjtrDTCgIx4mfpqQ9GwLzvabuQuVCcwisqBRbSI+4", /* 4-byte salt */
        "$argon2id$v=19$m=1024,t=2,p=2$c29tZXNhbHRzb21lc2FsdA$",
        "$argon2id$v=19$m=1024,t=2,p=2$c29tZXNhbHRzb21lc2FsdA",
        "$argon2id$v=99$m=1024,t=2,p=2$c29tZXNhbHRzb21lc2FsdA$E2UjtrDTCgIx4mfpqQ9GwLzvabuQuVCcwisqBRbSI+4",
        "$ARGON2ID$v=19$m=1024,t=2,p=2$c29tZXNhbHRzb21lc2FsdA$E2UjtrDTCgIx4mfpqQ9GwLzvabuQuVCcwisqBRbSI+4",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int r = kdf_verify_now(bad[i], "password", 8);
        ck_assert_msg(r == ERR_INVALID, "%s: expected ERR_INVALID, got %d", bad[i], r);
    }
    ck_assert_int_eq(kdf_verify_now(NULL, "password", 8), ERR_INVALID);

    /* Longer than any hash we read. */
    char *lng = malloc(KDF_ENCODED_MAX + 10);
    snprintf(lng, KDF_ENCODED_MAX + 10, "%s", REF_ID);
    memset(lng + strlen(REF_ID), 'A', KDF_ENCODED_MAX + 10 - strlen(REF_ID) - 1);
    lng[KDF_ENCODED_MAX + 9] = '\0';
    ck_assert_int_eq(kdf_verify_now(lng, "password", 8), ERR_INVALID);
    free(lng);
}
END_TEST

START_TEST(test_now_bad_params_and_buffers)
{
    char enc[KDF_ENCODED_MAX];
    kdf_params_t p = {.t_cost = 1, .m_cost_kib = 4, .parallelism = 1}; /* below argon2's 8 KiB per lane */
    ck_assert_int_eq(kdf_hash_now(&p, "pw", 2, enc, sizeof(enc)), ERR_INVALID);
    p = (kdf_params_t){.t_cost = KDF_MAX_T_COST + 1, .m_cost_kib = 1024, .parallelism = 1};
    ck_assert_int_eq(kdf_hash_now(&p, "pw", 2, enc, sizeof(enc)), ERR_INVALID);
    p = (kdf_params_t){.t_cost = 1, .m_cost_kib = KDF_MAX_M_COST_KIB + 1, .parallelism = 1};
    ck_assert_int_eq(kdf_hash_now(&p, "pw", 2, enc, sizeof(enc)), ERR_INVALID);
    ck_assert_int_eq(kdf_hash_now(&SMALL, "pw", 2, enc, 20), ERR_INVALID);
    ck_assert_int_eq(kdf_hash_now(&SMALL, "pw", 2, NULL, 0), ERR_INVALID);
    ck_assert_ptr_null(kdf_pool_create(0, &SMALL));
    ck_assert_ptr_null(kdf_pool_create(1, &p));
}
END_TEST

START_TEST(test_now_defaults)
{
    char enc[KDF_ENCODED_MAX];
    double t0 = now_ms();
    ck_assert_int_eq(kdf_hash_now(NULL, "correct horse battery staple", 28, enc, sizeof(enc)), 0);
    double t1 = now_ms();
    ck_assert_msg(strncmp(enc, "$argon2id$v=19$m=19456,t=2,p=1$", 31) == 0, "unexpected encoding %s", enc);
    ck_assert_int_eq(kdf_verify_now(enc, "correct horse battery staple", 28), 1);
    double t2 = now_ms();
    fprintf(stderr, "kdf_test: default-parameter hash %.1f ms, verify %.1f ms\n", t1 - t0, t2 - t1);
    /* Zero fields mean the defaults too. */
    kdf_params_t zero = {0};
    ck_assert_int_eq(kdf_hash_now(&zero, "x", 1, enc, sizeof(enc)), 0);
    ck_assert_msg(strncmp(enc, "$argon2id$v=19$m=19456,t=2,p=1$", 31) == 0, "unexpected encoding %s", enc);
}
END_TEST

START_TEST(test_job_password_wiped)
{
    kdf_pool_t pool = {.params = SMALL};
    kdf_job_t *job = calloc(1, sizeof(kdf_job_t) + 6);
    job->kind = JOB_HASH;
    job->pwlen = 6;
    memcpy(job->password, "secret", 6);
    run_job(&pool, job);
    ck_assert_int_eq(job->err, 0);
    for (size_t i = 0; i < 6; i++)
        ck_assert_int_eq(job->password[i], 0);
    ck_assert_int_eq(kdf_verify_now(job->encoded, "secret", 6), 1);
    free(job);
}
END_TEST

/* --- asynchronous path ------------------------------------------------------ */

typedef struct st_fixture_t {
    h2o_evloop_t *loop;
    h2o_multithread_queue_t *queue;
    kdf_pool_t *pool;
    kdf_client_t *client;
    pthread_t thread; /* the one running loop */
    int in_submit;    /* set around submit calls: a callback seeing it ran too early */
    int done;
    int matches;
    int errors;
    int wrong_thread;
    char encoded[KDF_ENCODED_MAX];
} fixture_t;

static void fixture_init(fixture_t *f, int nthreads, const kdf_params_t *p)
{
    memset(f, 0, sizeof(*f));
    f->thread = pthread_self();
    f->loop = h2o_evloop_create();
    f->queue = h2o_multithread_create_queue(f->loop);
    f->pool = kdf_pool_create(nthreads, p);
    ck_assert_ptr_nonnull(f->pool);
    f->client = kdf_client_create(f->pool, f->queue);
}

static void fixture_dispose(fixture_t *f)
{
    if (f->client != NULL)
        kdf_client_destroy(f->client);
    kdf_pool_destroy(f->pool);
    h2o_multithread_destroy_queue(f->queue);
    /* h2o 2.2.5's evloop variant closes the queue's pipe but does not free the queue itself. */
    free(f->queue);
    h2o_evloop_run(f->loop, 0); /* let the closed pipe socket be disposed */
    h2o_evloop_destroy(f->loop);
}

/* Runs the loop until f->done reaches n or timeout_ms passes; returns f->done. */
static int run_until(fixture_t *f, int n, double timeout_ms)
{
    double end = now_ms() + timeout_ms;
    while (f->done < n && now_ms() < end)
        h2o_evloop_run(f->loop, 50);
    return f->done;
}

static void check_context(fixture_t *f)
{
    if (!pthread_equal(pthread_self(), f->thread) || f->in_submit)
        f->wrong_thread++;
}

static void on_verified(void *data, int match, int err)
{
    fixture_t *f = data;
    check_context(f);
    f->done++;
    f->matches += match;
    f->errors += err != 0;
}

static void on_hashed(void *data, const char *encoded, int err)
{
    fixture_t *f = data;
    check_context(f);
    f->done++;
    f->errors += err != 0;
    if (encoded != NULL)
        snprintf(f->encoded, sizeof(f->encoded), "%s", encoded);
}

static int verify_async(fixture_t *f, const char *enc, const char *pw)
{
    f->in_submit = 1;
    int r = kdf_verify(f->client, enc, pw, pw ? strlen(pw) : 0, on_verified, f);
    f->in_submit = 0;
    return r;
}

START_TEST(test_async_concurrent_verifies)
{
    fixture_t f;
    char enc[KDF_ENCODED_MAX];
    fixture_init(&f, 3, &SMALL);
    ck_assert_int_eq(kdf_hash_now(&SMALL, "hunter2", 7, enc, sizeof(enc)), 0);
    for (int i = 0; i < 12; i++)
        ck_assert_int_eq(verify_async(&f, enc, i % 3 == 0 ? "hunter2" : "hunter3"), 0);
    ck_assert_int_eq(verify_async(&f, REF_ID, "password"), 0);
    ck_assert_int_eq(f.done, 0); /* nothing runs inside the submit calls */
    ck_assert_int_eq(run_until(&f, 13, 20000), 13);
    ck_assert_int_eq(f.matches, 5);
    ck_assert_int_eq(f.errors, 0);
    ck_assert_int_eq(f.wrong_thread, 0);
    /* Exactly once: nothing more arrives. */
    h2o_evloop_run(f.loop, 100);
    ck_assert_int_eq(f.done, 13);
    fixture_dispose(&f);
}
END_TEST

typedef struct st_chain_t {
    fixture_t *f;
    int resubmit;
} chain_t;

static void on_chain_hashed(void *data, const char *encoded, int err)
{
    chain_t *ch = data;
    on_hashed(ch->f, encoded, err);
    /* A callback may submit more work; it too arrives later, on this thread. */
    ch->resubmit = kdf_verify(ch->f->client, encoded, "s3cret!", 7, on_verified, ch->f);
}

START_TEST(test_async_hash_then_verify)
{
    fixture_t f;
    fixture_init(&f, 1, &SMALL);
    chain_t ch = {.f = &f, .resubmit = 99};
    f.in_submit = 1;
    ck_assert_int_eq(kdf_hash(f.client, "s3cret!", 7, on_chain_hashed, &ch), 0);
    f.in_submit = 0;
    ck_assert_int_eq(run_until(&f, 2, 20000), 2);
    ck_assert_int_eq(ch.resubmit, 0);
    ck_assert_int_eq(f.errors, 0);
    ck_assert_int_eq(f.matches, 1);
    ck_assert_int_eq(f.wrong_thread, 0);
    ck_assert_msg(strncmp(f.encoded, "$argon2id$v=19$m=1024,t=1,p=1$", 30) == 0, "unexpected %s", f.encoded);
    ck_assert_int_eq(kdf_verify_now(f.encoded, "s3cret!", 7), 1);
    fixture_dispose(&f);
}
END_TEST

START_TEST(test_async_rejects_up_front)
{
    fixture_t f;
    fixture_init(&f, 1, &SMALL);
    char *pw = malloc(KDF_MAX_PASSWORD + 2);
    memset(pw, 'x', KDF_MAX_PASSWORD + 1);
    pw[KDF_MAX_PASSWORD + 1] = '\0';
    ck_assert_int_eq(verify_async(&f, REF_ID, pw), ERR_INVALID);
    ck_assert_int_eq(kdf_hash(f.client, pw, KDF_MAX_PASSWORD + 1, on_hashed, &f), ERR_INVALID);
    free(pw);
    ck_assert_int_eq(verify_async(&f, REF_I, "password"), ERR_INVALID);
    ck_assert_int_eq(verify_async(&f, "$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW", "password"),
                     ERR_INVALID);
    ck_assert_int_eq(verify_async(&f, "", "password"), ERR_INVALID);
    /* None of those has a callback coming. */
    h2o_evloop_run(f.loop, 200);
    ck_assert_int_eq(f.done, 0);
    fixture_dispose(&f);
}
END_TEST

START_TEST(test_async_undecodable_hash)
{
    /* Shaped like argon2id, so accepted, but argon2 cannot decode it: the callback reports ERR_INVALID. */
    fixture_t f;
    fixture_init(&f, 1, &SMALL);
    ck_assert_int_eq(verify_async(&f, "$argon2id$v=19$m=1024,t=2,p=2$c29tZQ$E2UjtrDTCgIx4mfpqQ9Gw", "password"), 0);
    ck_assert_int_eq(run_until(&f, 1, 20000), 1);
    ck_assert_int_eq(f.errors, 1);
    ck_assert_int_eq(f.matches, 0);
    fixture_dispose(&f);
}
END_TEST

static double timed_verify(fixture_t *f, const char *enc, const char *pw)
{
    int before = f->done;
    double t0 = now_ms();
    ck_assert_int_eq(verify_async(f, enc, pw), 0);
    ck_assert_int_eq(run_until(f, before + 1, 20000), before + 1);
    return now_ms() - t0;
}

START_TEST(test_async_dummy_verify)
{
    /* Default parameters: the point is that an unknown user costs a real hash's time. */
    fixture_t f;
    char enc[KDF_ENCODED_MAX];
    fixture_init(&f, 1, NULL);
    ck_assert_int_eq(kdf_hash_now(NULL, "hunter2", 7, enc, sizeof(enc)), 0);

    double real = 0, dummy = 0;
    for (int i = 0; i < 3; i++) {
        real += timed_verify(&f, enc, "hunter3");
        dummy += timed_verify(&f, NULL, "hunter3");
    }
    /* The dummy never matches, even for the password that hashes to it (unknowable anyway) or an empty one. */
    dummy += timed_verify(&f, NULL, "");
    dummy *= 3.0 / 4.0;
    ck_assert_int_eq(f.matches, 0);
    ck_assert_int_eq(f.errors, 0);
    ck_assert_int_eq(f.wrong_thread, 0);
    fprintf(stderr, "kdf_test: 3 real verifies %.1f ms, 3 dummy verifies %.1f ms\n", real, dummy);
    ck_assert_msg(dummy < real * 3 && real < dummy * 3, "real %.1f ms vs dummy %.1f ms", real, dummy);
    /* And the real one does match with the right password. */
    timed_verify(&f, enc, "hunter2");
    ck_assert_int_eq(f.matches, 1);
    fixture_dispose(&f);
}
END_TEST

START_TEST(test_async_queue_full)
{
    /* Default parameters keep each job busy for many milliseconds, far longer than submitting takes. */
    fixture_t f;
    fixture_init(&f, 1, NULL);
    int accepted = 0, r = 0;
    for (int i = 0; i < KDF_QUEUE_CAP + 10 && (r = verify_async(&f, NULL, "pw")) == 0; i++)
        accepted++;
    ck_assert_int_eq(r, ERR_UNAVAILABLE);
    ck_assert_int_eq(accepted, KDF_QUEUE_CAP);
    ck_assert_int_eq(kdf_hash(f.client, "pw", 2, on_hashed, &f), ERR_UNAVAILABLE);
    ck_assert_int_eq(f.done, 0);
    /* Destroying the client drops the queued jobs and detaches the running one; nothing is delivered. */
    kdf_client_destroy(f.client);
    f.client = NULL;
    h2o_evloop_run(f.loop, 100);
    ck_assert_int_eq(f.done, 0);
    fixture_dispose(&f);
}
END_TEST

START_TEST(test_async_queue_frees_up)
{
    fixture_t f;
    fixture_init(&f, 1, NULL);
    f.pool->_cap = 3;
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(verify_async(&f, NULL, "pw"), 0);
    ck_assert_int_eq(verify_async(&f, NULL, "pw"), ERR_UNAVAILABLE);
    ck_assert_int_eq(run_until(&f, 3, 20000), 3);
    /* Finished jobs no longer count. */
    ck_assert_int_eq(verify_async(&f, NULL, "pw"), 0);
    ck_assert_int_eq(run_until(&f, 4, 20000), 4);
    ck_assert_int_eq(f.wrong_thread, 0);
    fixture_dispose(&f);
}
END_TEST

static size_t pool_njobs(kdf_pool_t *pool)
{
    pthread_mutex_lock(&pool->_mutex);
    size_t n = pool->_njobs;
    pthread_mutex_unlock(&pool->_mutex);
    return n;
}

START_TEST(test_async_destroy_with_jobs_in_flight)
{
    /*
     * Two workers and eight jobs, and the loop is not run: wait until two
     * jobs have finished (posted to the receiver, undelivered), so that at
     * destruction some are finished, some running and some still queued.
     */
    static const kdf_params_t medium = {.t_cost = 1, .m_cost_kib = 8192, .parallelism = 1};
    fixture_t f;
    fixture_init(&f, 2, &medium);
    for (int i = 0; i < 8; i++)
        ck_assert_int_eq(i % 2 ? verify_async(&f, NULL, "pw") : kdf_hash(f.client, "pw", 2, on_hashed, &f), 0);
    double end = now_ms() + 20000;
    while (pool_njobs(f.pool) > 6 && now_ms() < end)
        usleep(1000);
    ck_assert_int_le(pool_njobs(f.pool), 6);
    ck_assert_int_gt(pool_njobs(f.pool), 0);
    ck_assert(!h2o_linklist_is_empty(&f.client->_receiver._messages));

    kdf_client_destroy(f.client);
    f.client = NULL;
    /* Let the running jobs finish and the pipe wake the loop: still no callback. */
    end = now_ms() + 20000;
    while (pool_njobs(f.pool) > 0 && now_ms() < end)
        h2o_evloop_run(f.loop, 10);
    ck_assert_int_eq(pool_njobs(f.pool), 0);
    h2o_evloop_run(f.loop, 50);
    ck_assert_int_eq(f.done, 0);
    fixture_dispose(&f);
}
END_TEST

static void on_verified_destroy(void *data, int match, int err)
{
    fixture_t *f = data;
    on_verified(f, match, err);
    kdf_client_destroy(f->client);
    f->client = NULL;
}

START_TEST(test_async_destroy_from_callback)
{
    fixture_t f;
    fixture_init(&f, 2, &SMALL);
    for (int i = 0; i < 6; i++)
        ck_assert_int_eq(kdf_verify(f.client, NULL, "pw", 2, on_verified_destroy, &f), 0);
    ck_assert_int_eq(run_until(&f, 1, 20000), 1);
    ck_assert_ptr_null(f.client);
    /* The rest, wherever they were (same batch, queued, running), never arrive. */
    h2o_evloop_run(f.loop, 200);
    ck_assert_int_eq(f.done, 1);
    fixture_dispose(&f);
}
END_TEST

/*
 * h2o keeps freed socket buffers in a thread-local free list; a thread that
 * ran a loop and exits would leave them to LeakSanitizer, so empty it.
 */
static void drain_buffer_recycler(void)
{
    h2o_mem_recycle_t *r = &h2o_socket_buffer_prototype.allocator;
    while (r->cnt > 0)
        free(h2o_mem_alloc_recycle(r, 0));
}

typedef struct st_loop_thread_t {
    kdf_pool_t *pool;
    fixture_t f;
    int ok;
} loop_thread_t;

static void *run_loop_thread(void *arg)
{
    loop_thread_t *lt = arg;
    fixture_t *f = &lt->f;
    char enc[KDF_ENCODED_MAX];

    memset(f, 0, sizeof(*f));
    f->thread = pthread_self();
    f->loop = h2o_evloop_create();
    f->queue = h2o_multithread_create_queue(f->loop);
    f->client = kdf_client_create(lt->pool, f->queue);
    if (kdf_hash_now(&SMALL, "pw", 2, enc, sizeof(enc)) != 0)
        return NULL;
    for (int i = 0; i < 6; i++)
        if (verify_async(f, enc, i % 2 ? "pw" : "px") != 0)
            return NULL;
    run_until(f, 6, 20000);
    lt->ok = f->done == 6 && f->matches == 3 && f->wrong_thread == 0 && f->errors == 0;
    kdf_client_destroy(f->client);
    h2o_multithread_destroy_queue(f->queue);
    free(f->queue);
    h2o_evloop_run(f->loop, 0);
    h2o_evloop_destroy(f->loop);
    drain_buffer_recycler();
    return NULL;
}

START_TEST(test_async_two_loops_share_a_pool)
{
    kdf_pool_t *pool = kdf_pool_create(2, &SMALL);
    loop_thread_t lt[2] = {{.pool = pool}, {.pool = pool}};
    pthread_t tid[2];
    for (int i = 0; i < 2; i++)
        ck_assert_int_eq(pthread_create(&tid[i], NULL, run_loop_thread, &lt[i]), 0);
    for (int i = 0; i < 2; i++)
        pthread_join(tid[i], NULL);
    ck_assert(lt[0].ok);
    ck_assert(lt[1].ok);
    kdf_pool_destroy(pool);
}
END_TEST

static Suite *kdf_suite(void)
{
    Suite *s = suite_create("kdf");
    TCase *tc;

    tc = tcase_create("blocking");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_now_round_trip);
    tcase_add_test(tc, test_now_wrong_password);
    tcase_add_test(tc, test_now_binary_and_empty_passwords);
    tcase_add_test(tc, test_now_password_length_limit);
    tcase_add_test(tc, test_now_reference_vectors);
    tcase_add_test(tc, test_now_other_params_verify);
    tcase_add_test(tc, test_now_malformed_encodings);
    tcase_add_test(tc, test_now_bad_params_and_buffers);
    tcase_add_test(tc, test_now_defaults);
    tcase_add_test(tc, test_job_password_wiped);
    suite_add_tcase(s, tc);

    tc = tcase_create("async");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_async_concurrent_verifies);
    tcase_add_test(tc, test_async_hash_then_verify);
    tcase_add_test(tc, test_async_rejects_up_front);
    tcase_add_test(tc, test_async_undecodable_hash);
    tcase_add_test(tc, test_async_two_loops_share_a_pool);
    suite_add_tcase(s, tc);

    tc = tcase_create("timing");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_async_dummy_verify);
    suite_add_tcase(s, tc);

    tc = tcase_create("limits_and_teardown");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_async_queue_full);
    tcase_add_test(tc, test_async_queue_frees_up);
    tcase_add_test(tc, test_async_destroy_with_jobs_in_flight);
    tcase_add_test(tc, test_async_destroy_from_callback);
    suite_add_tcase(s, tc);

    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(kdf_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
