/*
 * tests/integration/attachments_test.c - files attached to customers,
 * orders and contacts, against the real API, PostgreSQL, Redis and file
 * store: who may upload, list, download and delete them (the record's
 * scope under its module), the size limit (nothing stored beyond it), file
 * names, byte ranges, ETags, and content-addressed storage.
 *
 * crew_main() (tests/support/crew.c) builds the suite's database, adds one
 * user per role, starts one API process and logs everyone in once. The API
 * keeps files in a store of this suite's own (under $STACK_DIR), which the
 * tests inspect directly: how many blobs it holds, and that nothing stays
 * in its tmp/ directory. Expected scopes come from the crew's oracle
 * applied to the record's customer, never from the API's SQL. Every test
 * uploads content of its own (random bytes, so that no two tests share a
 * blob unless they mean to), which keeps the counts of rows and blobs
 * meaningful while other tests run in other processes only one at a time
 * (Check runs the tests of a suite one after another).
 */
#define _XOPEN_SOURCE 700
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <check.h>
#include <openssl/evp.h>

#include "tests/support/crew.h"

#define LIMIT (1024 * 1024) /* CLIENTELE_ATTACHMENT_LIMIT below: more than three reads of 256 KiB */

static char storage_env[512], storage_dir[480];
static const char *api_env[] = {
    "CLIENTELE_THREADS=2",
    "CLIENTELE_DB_TIMEOUT=20s",
    "CLIENTELE_JWT_SECRET=attachments-suite-secret-0123456789abcdefg",
    "CLIENTELE_ATTACHMENT_LIMIT=1MiB",
    storage_env,
    NULL,
};

static const crew_conf_t conf = {
    .name = "attachments",
    .redis_db = 0, /* the one database no other suite uses */
    .env = api_env,
    .password = "attachments-suite-password",
    .domain = "attachments.test",
    .resource = "customers",
    .item = "record",
};

/* --- content --------------------------------------------------------------------- */

typedef struct {
    char *bytes;
    size_t len;
} blob_t;

/* len random bytes (every value, NUL included), kept. */
static blob_t random_blob(size_t len)
{
    blob_t b = {keep(malloc(len + 1)), len};
    FILE *f = fopen("/dev/urandom", "rb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fread(b.bytes, 1, len, f), len);
    fclose(f);
    b.bytes[len] = '\0';
    return b;
}

static const char *sha256_hex(const char *p, size_t len)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    ck_assert_int_eq(EVP_Digest(p, len, md, &n, EVP_sha256(), NULL), 1);
    char *hex = keep(malloc(65));
    for (unsigned i = 0; i < 32; i++)
        sprintf(hex + 2 * i, "%02x", md[i]);
    return hex;
}

/* --- the store, seen from outside ------------------------------------------------- */

static int nfiles, ntmp;

static int count_one(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
    if (type == FTW_F)
        *(strstr(path + strlen(storage_dir), "/tmp/") != NULL ? &ntmp : &nfiles) += 1;
    return 0;
}

/* Blobs in the store (temporary files not counted; see tmp_files). */
static int blob_files(void)
{
    nfiles = ntmp = 0;
    nftw(storage_dir, count_one, 16, FTW_PHYS);
    return nfiles;
}

static int tmp_files(void)
{
    blob_files();
    return ntmp;
}

static int blob_exists(const char *sha)
{
    struct stat sb;
    return stat(fmt("%s/%.2s/%.2s/%s", storage_dir, sha, sha + 2, sha), &sb) == 0;
}

static long long rows(void)
{
    return sql_ll("SELECT count(*) FROM attachments");
}

/* --- requests ---------------------------------------------------------------------- */

/*
 * POST /v1/<coll>/<id>/attachments as who (-1: no token) with the body as
 * given (binary-safe); ctype and disposition are whole header lines or NULL.
 */
static th_resp_t *upload_raw(int who, const char *coll, long long id, const char *ctype, const char *disposition,
                             const char *body, size_t len)
{
    const char *h[4];
    int n = 0;
    char auth[2200];
    if (who >= 0)
        h[n++] = th_bearer(users[who].token, auth, sizeof(auth));
    if (ctype != NULL)
        h[n++] = ctype;
    if (disposition != NULL)
        h[n++] = disposition;
    h[n] = NULL;
    th_resp_t *r = keep(calloc(1, sizeof(*r)));
    if (th_http(api.port, "POST", fmt("/v1/%s/%lld/attachments", coll, id), h, body, len, r) != 0)
        r->status = 0;
    return r;
}

static th_resp_t *upload(int who, const char *coll, long long id, const char *name, blob_t b)
{
    return upload_raw(who, coll, id, "Content-Type: application/octet-stream",
                      fmt("Content-Disposition: attachment; filename=\"%s\"", name), b.bytes, b.len);
}

/* Uploads as who and expects 201; returns the attachment's id. */
static long long upload_ok(int who, const char *coll, long long id, const char *name, blob_t b)
{
    th_resp_t *r = upload(who, coll, id, name, b);
    expect_status(r, 201);
    ck_assert_int_gt(jint(r->json, "id"), 0);
    ck_assert_str_eq(header(r, "location"), fmt("/v1/attachments/%lld", jint(r->json, "id")));
    return jint(r->json, "id");
}

static th_resp_t *download(int who, long long id, const char *h1, const char *h2)
{
    return call_as(who, "GET", fmt("/v1/attachments/%lld", id), NULL, NULL, h1, h2);
}

static const char *apath(long long id)
{
    return fmt("/v1/attachments/%lld", id);
}

/* --- records ------------------------------------------------------------------------ */

typedef struct {
    const char *coll; /* customers, orders, contacts */
    long long id;
    long long customer, owner, team; /* the customer whose scope the record has */
} rec_t;

static rec_t make_customer(int owner)
{
    th_resp_t *r = http_post(DIRECTOR, "/v1/customers",
                             jdump(json_pack("{s:s, s:s, s:I}", "kind", "company", "name", uniq("Files Ltd"),
                                             "owner_id", (json_int_t)users[owner].id)));
    expect_status(r, 201);
    long long id = jint(r->json, "id");
    return (rec_t){"customers", id, id, jint(r->json, "owner_id"), jint(r->json, "team_id")};
}

static rec_t make_record(const char *coll, int owner)
{
    rec_t c = make_customer(owner);
    if (strcmp(coll, "customers") == 0)
        return c;
    th_resp_t *r;
    if (strcmp(coll, "orders") == 0)
        r = http_post(
            DIRECTOR, "/v1/orders",
            jdump(json_pack("{s:I, s:s, s:s, s:s, s:s}", "customer_id", (json_int_t)c.id, "ordered_at",
                            "2021-03-04T05:06:07Z", "status", "pending", "currency", "EUR", "total", "20.00")));
    else
        r = http_post(DIRECTOR, "/v1/contacts",
                      jdump(json_pack("{s:I, s:s}", "customer_id", (json_int_t)c.id, "last_name", uniq("Filer"))));
    expect_status(r, 201);
    c.coll = coll;
    c.id = jint(r->json, "id");
    return c;
}

static const char *const colls[] = {"customers", "orders", "contacts"};
static const int owners5[] = {REP1, REP2, REPS, MANAGER, DIRECTOR};

/* --- scopes -------------------------------------------------------------------------- */

START_TEST(scope_matrix_list_download_upload_delete)
{
    for (size_t ci = 0; ci < 3; ci++) {
        for (int oi = 0; oi < 5; oi++) {
            rec_t rec = make_record(colls[ci], owners5[oi]);
            blob_t b = random_blob(3000);
            long long att = upload_ok(DIRECTOR, rec.coll, rec.id, "shared.bin", b);
            for (int a = 0; a < NUSERS; a++) {
                int rd = can_read(a, rec.owner, rec.team), wr = can_write(a, rec.owner, rec.team);
                const char *who =
                    fmt("%s on a %s record of %s's customer", who_name[a], rec.coll, who_name[owners5[oi]]);

                /* List. */
                th_resp_t *r = http_get(a, fmt("/v1/%s/%lld/attachments", rec.coll, rec.id));
                expect_status_msg(r, rd ? 200 : 404, "list, %s", who);
                if (rd) {
                    /* Every live attachment of the record, this one among them (earlier rounds added some). */
                    ck_assert(has_id(jget(r, "data"), att));
                    ck_assert_int_eq(json_array_size(jget(r, "data")),
                                     sql_ll("SELECT count(*) FROM attachments WHERE entity = '%s' AND entity_id = %lld"
                                            " AND deleted_at IS NULL",
                                            rec.coll, rec.id));
                } else {
                    expect_problem(r, 404, "not-found");
                }

                /* Download. */
                r = download(a, att, NULL, NULL);
                expect_status_msg(r, rd ? 200 : 404, "download, %s", who);
                if (rd) {
                    ck_assert_uint_eq(r->body_len, b.len);
                    ck_assert(memcmp(r->body, b.bytes, b.len) == 0);
                }

                /* Upload: nothing is stored unless the caller may change the record. */
                long long rows0 = rows();
                int files0 = blob_files();
                blob_t mine = random_blob(100 + (size_t)a);
                r = upload(a, rec.coll, rec.id, "mine.txt", mine);
                int want = !rd ? 404 : !wr ? 403 : 201;
                expect_status_msg(r, want, "upload, %s", who);
                ck_assert_int_eq(rows(), rows0 + (want == 201));
                ck_assert_int_eq(blob_files(), files0 + (want == 201));
                if (want == 201) {
                    ck_assert_int_eq(jint(r->json, "uploaded_by"), users[a].id);
                    ck_assert_str_eq(jstr(r->json, "entity"), rec.coll);
                    ck_assert_int_eq(jint(r->json, "entity_id"), rec.id);
                } else {
                    expect_problem(r, want, want == 404 ? "not-found" : "forbidden");
                }

                /* Delete (an attachment of the director's). */
                long long victim = upload_ok(DIRECTOR, rec.coll, rec.id, "victim.txt", random_blob(50));
                r = http_delete(a, apath(victim), NULL);
                want = !rd ? 404 : !wr ? 403 : 204;
                expect_status_msg(r, want, "delete, %s", who);
                expect_status(download(DIRECTOR, victim, NULL, NULL), want == 204 ? 404 : 200);
                ck_assert_int_eq(
                    sql_ll("SELECT (deleted_at IS NOT NULL)::int FROM attachments WHERE id = %lld", victim),
                    want == 204);
                if (want == 204)
                    expect_problem(http_delete(a, apath(victim), NULL), 404, "not-found");
            }
        }
    }
}
END_TEST

START_TEST(attachments_follow_their_record)
{
    for (size_t ci = 0; ci < 3; ci++) {
        rec_t rec = make_record(colls[ci], REP1);
        long long att = upload_ok(REP1, rec.coll, rec.id, "follows.txt", random_blob(64));
        /* The customer moves to another rep: so do the attachments of it and of its orders and contacts. */
        expect_status(http_patch(DIRECTOR, fmt("/v1/customers/%lld", rec.customer),
                                 fmt("{\"owner_id\":%lld}", users[REP2].id), NULL),
                      200);
        expect_problem(download(REP1, att, NULL, NULL), 404, "not-found");
        expect_problem(http_get(REP1, fmt("/v1/%s/%lld/attachments", rec.coll, rec.id)), 404, "not-found");
        expect_status(download(REP2, att, NULL, NULL), 200);
        expect_problem(http_delete(REP1, apath(att), NULL), 404, "not-found");
        /* A deleted record's attachments are gone for everyone. */
        expect_status(http_delete(DIRECTOR, fmt("/v1/%s/%lld", rec.coll, rec.id), NULL), 204);
        expect_problem(download(DIRECTOR, att, NULL, NULL), 404, "not-found");
        expect_problem(http_get(DIRECTOR, fmt("/v1/%s/%lld/attachments", rec.coll, rec.id)), 404, "not-found");
        expect_problem(upload(DIRECTOR, rec.coll, rec.id, "late.txt", random_blob(10)), 404, "not-found");
        expect_problem(http_delete(DIRECTOR, apath(att), NULL), 404, "not-found");
    }
    /* No such record, no such attachment. */
    expect_problem(upload(DIRECTOR, "orders", 987654321, "x.txt", random_blob(10)), 404, "not-found");
    expect_problem(http_get(DIRECTOR, "/v1/contacts/987654321/attachments"), 404, "not-found");
    expect_problem(download(DIRECTOR, 987654321, NULL, NULL), 404, "not-found");
    expect_problem(http_delete(DIRECTOR, apath(987654321), NULL), 404, "not-found");
    /* No token: 401 before anything else. */
    expect_problem(download(-1, 1, NULL, NULL), 401, "unauthenticated");
    expect_problem(http_delete(-1, apath(1), NULL), 401, "unauthenticated");
    expect_problem(http_get(-1, "/v1/customers/1/attachments"), 401, "unauthenticated");
}
END_TEST

START_TEST(a_module_the_role_may_not_read)
{
    /* A role that reads customers but not orders. */
    const char *role = fmt("customers_only_%d", (int)getpid());
    ck_assert_int_eq(th_sql(db_url, fmt("INSERT INTO roles (name, description, builtin, permissions) VALUES"
                                        " ('%s', 'test', false, '{\"customers\": {\"read\": \"all\", \"update\":"
                                        " \"all\"}}')",
                                        role)),
                     0);
    const char *email = fmt("%s@attachments.test", uniq("limited"));
    th_user_add(db_url, email, "Limited", role, NULL, conf.password);
    char token[2048], auth[2200];
    login_ok(email, conf.password, token, NULL);
    rec_t o = make_record("orders", DIRECTOR), c = make_record("customers", DIRECTOR);
    long long oa = upload_ok(DIRECTOR, "orders", o.id, "order.pdf", random_blob(20));
    long long ca = upload_ok(DIRECTOR, "customers", c.id, "customer.pdf", random_blob(20));
    const char *h[] = {th_bearer(token, auth, sizeof(auth)), NULL};
    th_resp_t r = {0};
    /* A collection of a module the role may not read: 403, as for its records. */
    ck_assert_int_eq(th_http(api.port, "GET", fmt("/v1/orders/%lld/attachments", o.id), h, NULL, 0, &r), 0);
    ck_assert_int_eq(r.status, 403);
    th_resp_free(&r);
    /* An attachment of such a record is not revealed: 404, like one that does not exist. */
    ck_assert_int_eq(th_http(api.port, "GET", apath(oa), h, NULL, 0, &r), 0);
    ck_assert_int_eq(r.status, 404);
    th_resp_free(&r);
    ck_assert_int_eq(th_http(api.port, "DELETE", apath(oa), h, NULL, 0, &r), 0);
    ck_assert_int_eq(r.status, 404);
    th_resp_free(&r);
    const char *hp[] = {h[0], "Content-Type: text/plain", "Content-Disposition: attachment; filename=a.txt", NULL};
    ck_assert_int_eq(th_http(api.port, "POST", fmt("/v1/orders/%lld/attachments", o.id), hp, "x", 1, &r), 0);
    ck_assert_int_eq(r.status, 403);
    th_resp_free(&r);
    /* The module it may read and update works. */
    ck_assert_int_eq(th_http(api.port, "GET", apath(ca), h, NULL, 0, &r), 0);
    ck_assert_int_eq(r.status, 200);
    th_resp_free(&r);
    ck_assert_int_eq(th_http(api.port, "DELETE", apath(ca), h, NULL, 0, &r), 0);
    ck_assert_int_eq(r.status, 204);
    th_resp_free(&r);
}
END_TEST

/* --- limits ------------------------------------------------------------------------------ */

START_TEST(size_limit_and_body_rules)
{
    rec_t rec = make_record("customers", REP1);
    long long rows0 = rows();
    int files0 = blob_files();

    /* One byte over: 413, nothing stored (no row, no file, nothing left in tmp/). */
    blob_t over = random_blob(LIMIT + 1);
    th_resp_t *r = upload(REP1, rec.coll, rec.id, "over.bin", over);
    expect_problem(r, 413, "payload-too-large");
    ck_assert_int_eq(rows(), rows0);
    ck_assert_int_eq(blob_files(), files0);
    ck_assert_int_eq(tmp_files(), 0);
    /* Authentication comes first: no token is 401, whatever the size. */
    expect_problem(upload(-1, rec.coll, rec.id, "over.bin", over), 401, "unauthenticated");
    /* So does scope: the size is judged before the record (nothing is looked up for a body that is too large). */
    expect_problem(upload(REP2, rec.coll, rec.id, "over.bin", over), 413, "payload-too-large");

    /* Exactly the limit: stored, and read back byte for byte. */
    blob_t at = random_blob(LIMIT);
    long long id = upload_ok(REP1, rec.coll, rec.id, "at-the-limit.bin", at);
    ck_assert_int_eq(rows(), rows0 + 1);
    ck_assert_int_eq(blob_files(), files0 + 1);
    ck_assert_int_eq(tmp_files(), 0);
    r = download(REP1, id, NULL, NULL);
    expect_status(r, 200);
    ck_assert_uint_eq(r->body_len, LIMIT);
    ck_assert(memcmp(r->body, at.bytes, LIMIT) == 0);
    ck_assert_str_eq(header(r, "content-length"), fmt("%d", LIMIT));

    /* Empty body, missing or malformed media type: refused, nothing stored. */
    expect_problem(upload_raw(REP1, rec.coll, rec.id, "Content-Type: text/plain",
                              "Content-Disposition: attachment; filename=empty.txt", "", 0),
                   400, "bad-request");
    expect_problem(
        upload_raw(REP1, rec.coll, rec.id, NULL, "Content-Disposition: attachment; filename=a.txt", "abc", 3), 415,
        "unsupported-media-type");
    static const char *const bad_types[] = {"Content-Type: pdf",        "Content-Type: text/",
                                            "Content-Type: /plain",     "Content-Type: text/plain; charset",
                                            "Content-Type: text plain", "Content-Type: text/plain; a=\"unterminated"};
    for (size_t i = 0; i < sizeof(bad_types) / sizeof(bad_types[0]); i++)
        expect_problem(upload_raw(REP1, rec.coll, rec.id, bad_types[i],
                                  "Content-Disposition: attachment; filename=a.txt", "abc", 3),
                       415, "unsupported-media-type");
    ck_assert_int_eq(rows(), rows0 + 1);
    ck_assert_int_eq(blob_files(), files0 + 1);

    /* Any media type is kept (type and parameter names in lower case) and served back. */
    r = upload_raw(REP1, rec.coll, rec.id, "Content-Type: Text/Plain; Charset=UTF-8",
                   "Content-Disposition: attachment; filename=notes.txt", "hello", 5);
    expect_status(r, 201);
    ck_assert_str_eq(jstr(r->json, "media_type"), "text/plain; charset=UTF-8");
    r = download(REP1, jint(r->json, "id"), NULL, NULL);
    expect_status(r, 200);
    ck_assert_str_eq(header(r, "content-type"), "text/plain; charset=UTF-8");
    ck_assert_str_eq(r->body, "hello");
    r = upload_raw(REP1, rec.coll, rec.id, "Content-Type: application/x-made-up+weird",
                   "Content-Disposition: attachment; filename=weird", "?", 1);
    expect_status(r, 201);
}
END_TEST

/* --- names --------------------------------------------------------------------------------- */

START_TEST(bad_filenames_are_422_and_store_nothing)
{
    rec_t rec = make_record("contacts", REP1);
    static const struct {
        const char *disposition; /* the whole header line, or NULL for none */
        const char *code;
    } bad[] = {
        {NULL, "required"},
        {"Content-Disposition: attachment", "required"},
        {"Content-Disposition: attachment; size=12", "required"},
        {"Content-Disposition: attachment; filename=\"a/b.txt\"", "invalid_value"},
        {"Content-Disposition: attachment; filename=\"..\\\\evil.txt\"", "invalid_value"},
        {"Content-Disposition: attachment; filename=\"/etc/passwd\"", "invalid_value"},
        {"Content-Disposition: attachment; filename*=UTF-8''..%2F..%2Fetc%2Fpasswd", "invalid_value"},
        {"Content-Disposition: attachment; filename*=UTF-8''a%5Cb.txt", "invalid_value"},
        {"Content-Disposition: attachment; filename*=UTF-8''nul%00.txt", "invalid_value"},
        {"Content-Disposition: attachment; filename*=UTF-8''line%0Abreak.txt", "invalid_value"},
        {"Content-Disposition: attachment; filename=\"tab\there.txt\"", "invalid_value"},
        {"Content-Disposition: attachment; filename*=UTF-8''del%7F.txt", "invalid_value"},
        {"Content-Disposition: attachment; filename*=UTF-8''c1%C2%85.txt", "invalid_value"},
        {"Content-Disposition: attachment; filename*=UTF-8''invoice%E2%80%AEfdp.exe", "invalid_value"},
        {"Content-Disposition: attachment; filename=\".\"", "invalid_value"},
        {"Content-Disposition: attachment; filename=\"..\"", "invalid_value"},
        {"Content-Disposition: attachment; filename=\"\"", "too_short"},
        {"Content-Disposition: attachment; filename*=UTF-8''", "too_short"},
        {"Content-Disposition: attachment; filename*=UTF-8''%FF%FE.txt", "invalid_format"},
        {"Content-Disposition: attachment; filename*=UTF-8''%C0%AF.txt", "invalid_format"},
        {"Content-Disposition: attachment; filename*=KOI8-R''%F0.txt", "invalid_format"},
        {"Content-Disposition: attachment; filename=\"unterminated", "invalid_format"},
        {"Content-Disposition: attachment; filename=a; filename=b", "invalid_format"},
        {"Content-Disposition: attachment; filename", "invalid_format"},
        {"Content-Disposition: ; filename=a.txt", "invalid_format"},
        {"Content-Disposition: attachment; filename*=UTF-8''a%2", "invalid_format"},
    };
    long long rows0 = rows();
    int files0 = blob_files();
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        blob_t b = random_blob(10);
        th_resp_t *r =
            upload_raw(REP1, rec.coll, rec.id, "Content-Type: text/plain", bad[i].disposition, b.bytes, b.len);
        expect_status_msg(r, 422, "case %zu: %s", i, bad[i].disposition != NULL ? bad[i].disposition : "(none)");
        expect_problem(r, 422, "validation-failed");
        expect_error(r, "filename", bad[i].code);
    }
    /* 256 bytes is one too many; 255 (here 85 three-byte characters) is fine. */
    const char *long_ascii = repeat('n', 256);
    expect_error(upload(REP1, rec.coll, rec.id, long_ascii, random_blob(5)), "filename", "too_long");
    ck_assert_int_eq(rows(), rows0);
    ck_assert_int_eq(blob_files(), files0);

    char euro85[3 * 85 * 3 + 1] = "";
    for (int i = 0; i < 85; i++)
        strcat(euro85, "%E2%82%AC");
    th_resp_t *r = upload_raw(REP1, rec.coll, rec.id, "Content-Type: text/plain",
                              fmt("Content-Disposition: attachment; filename*=UTF-8''%s", euro85), "e", 1);
    expect_status(r, 201);
    ck_assert_uint_eq(strlen(jstr(r->json, "filename")), 255);
    expect_error(upload_raw(REP1, rec.coll, rec.id, "Content-Type: text/plain",
                            fmt("Content-Disposition: attachment; filename*=UTF-8''%sx", euro85), "e", 1),
                 "filename", "too_long");
}
END_TEST

START_TEST(good_filenames_and_the_download_disposition)
{
    rec_t rec = make_record("orders", REP1);
    static const struct {
        const char *disposition, *stored, *answered;
    } good[] = {
        {"Content-Disposition: attachment; filename=\"report 2024.pdf\"", "report 2024.pdf",
         "attachment; filename=\"report 2024.pdf\"; filename*=UTF-8''report%202024.pdf"},
        {"Content-Disposition: inline; FILENAME=plain.txt", "plain.txt",
         "attachment; filename=\"plain.txt\"; filename*=UTF-8''plain.txt"},
        /* filename* wins over filename (RFC 6266 4.3). */
        {"Content-Disposition: attachment; filename=\"fallback.txt\"; filename*=utf-8''r%C3%A9sum%C3%A9.txt",
         "résumé.txt", "attachment; filename=\"r_sum_.txt\"; filename*=UTF-8''r%C3%A9sum%C3%A9.txt"},
        {"Content-Disposition: attachment; filename*=UTF-8'en'%E2%82%AC%20rates.csv; filename=\"rates.csv\"",
         "€ rates.csv", "attachment; filename=\"_ rates.csv\"; filename*=UTF-8''%E2%82%AC%20rates.csv"},
        /* ISO-8859-1 ext-values are decoded; an unknown character set gives way to filename. */
        {"Content-Disposition: attachment; filename*=ISO-8859-1''caf%E9.txt", "café.txt",
         "attachment; filename=\"caf_.txt\"; filename*=UTF-8''caf%C3%A9.txt"},
        {"Content-Disposition: attachment; filename*=KOI8-R''%F0.txt; filename=\"koi.txt\"", "koi.txt",
         "attachment; filename=\"koi.txt\"; filename*=UTF-8''koi.txt"},
        /* Quotes and escapes: a quoted-pair is its character; a quote in a name is kept. */
        {"Content-Disposition: attachment; filename=\"say \\\"hi\\\".txt\"", "say \"hi\".txt",
         "attachment; filename=\"say _hi_.txt\"; filename*=UTF-8''say%20%22hi%22.txt"},
        {"Content-Disposition: attachment;filename=\"100%.txt\";", "100%.txt",
         "attachment; filename=\"100_.txt\"; filename*=UTF-8''100%25.txt"},
        {"Content-Disposition: attachment; filename*=UTF-8''%E6%97%A5%E6%9C%AC.txt", "日本.txt",
         "attachment; filename=\"__.txt\"; filename*=UTF-8''%E6%97%A5%E6%9C%AC.txt"},
        {"Content-Disposition: attachment; filename=\"...hidden\"", "...hidden",
         "attachment; filename=\"...hidden\"; filename*=UTF-8''...hidden"},
    };
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        blob_t b = random_blob(20);
        th_resp_t *r =
            upload_raw(REP1, rec.coll, rec.id, "Content-Type: text/plain", good[i].disposition, b.bytes, b.len);
        expect_status_msg(r, 201, "case %zu", i);
        ck_assert_str_eq(jstr(r->json, "filename"), good[i].stored);
        long long id = jint(r->json, "id");
        r = download(REP1, id, NULL, NULL);
        expect_status(r, 200);
        ck_assert_str_eq(header(r, "content-disposition"), good[i].answered);
        ck_assert_str_eq(header(r, "x-content-type-options"), "nosniff");
        ck_assert_str_eq(header(r, "content-security-policy"), "default-src 'none'; sandbox");
    }
}
END_TEST

/* --- ranges and validators ---------------------------------------------------------------- */

START_TEST(range_requests)
{
    rec_t rec = make_record("customers", MANAGER);
    const size_t size = 700000; /* three reads of the store */
    blob_t b = random_blob(size);
    long long id = upload_ok(MANAGER, rec.coll, rec.id, "ranges.bin", b);
    const char *etag = fmt("\"%s\"", sha256_hex(b.bytes, b.len));
    static const struct {
        const char *range;
        long long first, last; /* -1: the whole file with 200 */
    } cases[] = {
        {"bytes=0-0", 0, 0},
        {"bytes=10-19", 10, 19},
        {"bytes=262140-262150", 262140, 262150}, /* across the store's first read */
        {"bytes=600000-", 600000, 699999},       /* open-ended */
        {"bytes=-500", 699500, 699999},          /* the last 500 */
        {"bytes=-9999999", 0, 699999},           /* a suffix longer than the file: all of it */
        {"bytes=699999-99999999999", 699999, 699999},
        {"bytes=,7-8,", 7, 8},
        {"bytes=0-1,5-6", -1, -1},                  /* several ranges: the whole file */
        {"bytes=9-3", -1, -1},                      /* invalid: ignored */
        {"bytes=abc", -1, -1},                      /* malformed: ignored */
        {"bytes=-", -1, -1},                        /* malformed: ignored */
        {"items=0-5", -1, -1},                      /* another unit: ignored */
        {"bytes=99999999999999999999999-", -2, -2}, /* saturates past the end: unsatisfiable */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        th_resp_t *r = download(MANAGER, id, fmt("Range: %s", cases[i].range), NULL);
        if (cases[i].first == -2) {
            expect_problem(r, 416, "range-not-satisfiable");
            ck_assert_str_eq(header(r, "content-range"), fmt("bytes */%zu", size));
            continue;
        }
        if (cases[i].first < 0) {
            expect_status_msg(r, 200, "%s", cases[i].range);
            ck_assert_uint_eq(r->body_len, size);
            ck_assert(memcmp(r->body, b.bytes, size) == 0);
            ck_assert_ptr_null(header(r, "content-range"));
            continue;
        }
        size_t n = (size_t)(cases[i].last - cases[i].first + 1);
        expect_status_msg(r, 206, "%s", cases[i].range);
        ck_assert_str_eq(header(r, "content-range"), fmt("bytes %lld-%lld/%zu", cases[i].first, cases[i].last, size));
        ck_assert_str_eq(header(r, "content-length"), fmt("%zu", n));
        ck_assert_str_eq(header(r, "etag"), etag);
        ck_assert_uint_eq(r->body_len, n);
        ck_assert_msg(memcmp(r->body, b.bytes + cases[i].first, n) == 0, "%s: wrong bytes", cases[i].range);
    }
    /* Unsatisfiable: 416 with the size. */
    static const char *const unsatisfiable[] = {"bytes=700000-", "bytes=700000-700010", "bytes=-0"};
    for (size_t i = 0; i < 3; i++) {
        th_resp_t *r = download(MANAGER, id, fmt("Range: %s", unsatisfiable[i]), NULL);
        expect_problem(r, 416, "range-not-satisfiable");
        ck_assert_str_eq(header(r, "content-range"), "bytes */700000");
    }
    /* If-Range: the range applies only while the content is the one named. */
    th_resp_t *r = download(MANAGER, id, "Range: bytes=100-199", fmt("If-Range: %s", etag));
    expect_status(r, 206);
    ck_assert_uint_eq(r->body_len, 100);
    r = download(MANAGER, id, "Range: bytes=100-199", "If-Range: \"0000\"");
    expect_status(r, 200);
    ck_assert_uint_eq(r->body_len, size);
    r = download(MANAGER, id, "Range: bytes=100-199", fmt("If-Range: W/%s", etag));
    expect_status(r, 200);
    r = download(MANAGER, id, "Range: bytes=100-199", "If-Range: Wed, 21 Oct 2015 07:28:00 GMT");
    expect_status(r, 200);
    /* HEAD: the same headers, no body. */
    r = call_as(MANAGER, "HEAD", apath(id), NULL, NULL, "Range: bytes=-10", NULL);
    expect_status(r, 206);
    ck_assert_str_eq(header(r, "content-length"), "10");
    ck_assert_str_eq(header(r, "content-range"), fmt("bytes 699990-699999/%zu", size));
    ck_assert_uint_eq(r->body_len, 0);
    r = call_as(MANAGER, "HEAD", apath(id), NULL, NULL, NULL, NULL);
    expect_status(r, 200);
    ck_assert_str_eq(header(r, "content-length"), "700000");
    ck_assert_str_eq(header(r, "accept-ranges"), "bytes");
    ck_assert_uint_eq(r->body_len, 0);
}
END_TEST

START_TEST(etag_is_the_sha256_and_304)
{
    rec_t rec = make_record("contacts", REP2);
    blob_t b = random_blob(4096);
    th_resp_t *r = upload(REP2, rec.coll, rec.id, "tagged.bin", b);
    expect_status(r, 201);
    const char *sha = sha256_hex(b.bytes, b.len);
    ck_assert_str_eq(jstr(r->json, "sha256"), sha);
    ck_assert_int_eq(jint(r->json, "size"), 4096);
    ck_assert_str_eq(header(r, "etag"), fmt("\"%s\"", sha));
    long long id = jint(r->json, "id");
    ck_assert(blob_exists(sha));

    r = download(REP2, id, NULL, NULL);
    expect_status(r, 200);
    ck_assert_str_eq(header(r, "etag"), fmt("\"%s\"", sha));
    ck_assert_str_eq(header(r, "accept-ranges"), "bytes");
    ck_assert_str_eq(header(r, "content-type"), "application/octet-stream");
    r = download(REP2, id, fmt("If-None-Match: \"%s\"", sha), NULL);
    expect_status(r, 304);
    ck_assert_uint_eq(r->body_len, 0);
    ck_assert_str_eq(header(r, "etag"), fmt("\"%s\"", sha));
    r = download(REP2, id, fmt("If-None-Match: \"abc\", W/\"%s\"", sha), NULL); /* weak comparison */
    expect_status(r, 304);
    r = download(REP2, id, "If-None-Match: *", NULL);
    expect_status(r, 304);
    r = download(REP2, id, "If-None-Match: \"0123\"", NULL);
    expect_status(r, 200);
    ck_assert_uint_eq(r->body_len, 4096);
    /* If-None-Match wins over Range. */
    r = download(REP2, id, fmt("If-None-Match: \"%s\"", sha), "Range: bytes=0-1");
    expect_status(r, 304);
    /* Someone who may not read the record learns nothing, not even 304. */
    expect_problem(download(REP1, id, fmt("If-None-Match: \"%s\"", sha), NULL), 404, "not-found");
}
END_TEST

/* --- storage ------------------------------------------------------------------------------ */

START_TEST(identical_content_is_stored_once)
{
    rec_t a = make_record("customers", REP1), b = make_record("orders", REPS);
    blob_t content = random_blob(50000);
    const char *sha = sha256_hex(content.bytes, content.len);
    int files0 = blob_files();
    long long first = upload_ok(REP1, a.coll, a.id, "one.bin", content);
    long long second = upload_ok(REPS, b.coll, b.id, "two.bin", content);
    long long third = upload_ok(REP1, a.coll, a.id, "one again.bin", content);
    ck_assert_int_eq(blob_files(), files0 + 1);
    ck_assert_int_eq(
        sql_ll("SELECT count(DISTINCT sha256) FROM attachments WHERE id IN (%lld, %lld, %lld)", first, second, third),
        1);
    ck_assert(blob_exists(sha));
    /* Deleting one attachment keeps the content of the others. */
    expect_status(http_delete(REP1, apath(first), NULL), 204);
    ck_assert(blob_exists(sha));
    th_resp_t *r = download(REPS, second, NULL, NULL);
    expect_status(r, 200);
    ck_assert(r->body_len == content.len && memcmp(r->body, content.bytes, content.len) == 0);
    expect_status(download(REP1, third, NULL, NULL), 200);
    ck_assert_int_eq(tmp_files(), 0);
}
END_TEST

START_TEST(binary_content_round_trips_exactly)
{
    rec_t rec = make_record("contacts", MANAGER);
    /* Every byte value, NUL first, then runs of NULs and CR LF: nothing is text here. */
    size_t len = 256 * 3 + 4096;
    char *p = keep(malloc(len));
    for (size_t i = 0; i < 256 * 3; i++)
        p[i] = (char)(i % 256);
    memset(p + 256 * 3, 0, 2048);
    for (size_t i = 256 * 3 + 2048; i < len; i++)
        p[i] = (i % 2) ? '\n' : '\r';
    blob_t b = {p, len};
    long long id = upload_ok(MANAGER, rec.coll, rec.id, "bytes.bin", b);
    th_resp_t *r = download(MANAGER, id, NULL, NULL);
    expect_status(r, 200);
    ck_assert_uint_eq(r->body_len, len);
    ck_assert(memcmp(r->body, p, len) == 0);
    ck_assert_int_eq(sql_ll("SELECT size FROM attachments WHERE id = %lld", id), (long long)len);
    /* A single NUL byte. */
    r = upload_raw(MANAGER, rec.coll, rec.id, "Content-Type: application/octet-stream",
                   "Content-Disposition: attachment; filename=nul.bin", "\0", 1);
    expect_status(r, 201);
    r = download(MANAGER, jint(r->json, "id"), NULL, NULL);
    expect_status(r, 200);
    ck_assert(r->body_len == 1 && r->body[0] == '\0');
}
END_TEST

/* --- lists --------------------------------------------------------------------------------- */

START_TEST(lists_newest_first_with_cursors)
{
    rec_t rec = make_record("orders", REP1), other = make_record("orders", REP1);
    long long ids[5];
    for (int i = 0; i < 5; i++)
        ids[i] = upload_ok(REP1, rec.coll, rec.id, fmt("file-%d.txt", i), random_blob(10 + (size_t)i));
    upload_ok(REP1, other.coll, other.id, "elsewhere.txt", random_blob(10));
    json_t *all = list_all(REP1, fmt("/v1/orders/%lld/attachments", rec.id), 2);
    ck_assert_uint_eq(json_array_size(all), 5);
    for (int i = 0; i < 5; i++) {
        json_t *it = json_array_get(all, (size_t)i);
        ck_assert_int_eq(jint(it, "id"), ids[4 - i]);
        ck_assert_str_eq(jstr(it, "filename"), fmt("file-%d.txt", 4 - i));
        ck_assert_int_eq(jint(it, "size"), 10 + (4 - i));
        ck_assert_str_eq(jstr(it, "entity"), "orders");
        ck_assert_ptr_nonnull(jstr(it, "created_at"));
        ck_assert_uint_eq(strlen(jstr(it, "sha256")), 64);
    }
    th_resp_t *r = http_get(REP1, fmt("/v1/orders/%lld/attachments?count=true&limit=1", rec.id));
    expect_status(r, 200);
    ck_assert_int_eq(jint(r->json, "total"), 5);
    /* A deleted attachment leaves the list. */
    expect_status(http_delete(REP1, apath(ids[2]), NULL), 204);
    r = http_get(REP1, fmt("/v1/orders/%lld/attachments?count=true", rec.id));
    ck_assert_int_eq(jint(r->json, "total"), 4);
    ck_assert(!has_id(jget(r, "data"), ids[2]));
    /* Strict query strings. */
    r = http_get(REP1, fmt("/v1/orders/%lld/attachments?sort=filename", rec.id));
    expect_problem(r, 400, "bad-request");
    expect_error(r, "sort", "unknown_parameter");
    expect_error(http_get(REP1, fmt("/v1/orders/%lld/attachments?limit=0", rec.id)), "limit", "out_of_range");
    expect_error(http_get(REP1, fmt("/v1/orders/%lld/attachments?cursor=forged", rec.id)), "cursor", "invalid_value");
}
END_TEST

static Suite *attachments_suite(void)
{
    Suite *s = suite_create("attachments");
    TCase *tc = tcase_create("scopes");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, scope_matrix_list_download_upload_delete);
    tcase_add_test(tc, attachments_follow_their_record);
    tcase_add_test(tc, a_module_the_role_may_not_read);
    suite_add_tcase(s, tc);

    tc = tcase_create("uploads");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, size_limit_and_body_rules);
    tcase_add_test(tc, bad_filenames_are_422_and_store_nothing);
    tcase_add_test(tc, good_filenames_and_the_download_disposition);
    suite_add_tcase(s, tc);

    tc = tcase_create("downloads");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, range_requests);
    tcase_add_test(tc, etag_is_the_sha256_and_304);
    tcase_add_test(tc, binary_content_round_trips_exactly);
    suite_add_tcase(s, tc);

    tc = tcase_create("storage");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, identical_content_is_stored_once);
    tcase_add_test(tc, lists_newest_first_with_cursors);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    /* A store of this suite's own, emptied first, so the tests can count its files. */
    const char *stack = getenv("STACK_DIR") != NULL && *getenv("STACK_DIR") != '\0' ? getenv("STACK_DIR") : ".test";
    snprintf(storage_dir, sizeof(storage_dir), "%s/storage-attachments", stack);
    snprintf(storage_env, sizeof(storage_env), "CLIENTELE_STORAGE_DIR=%s", storage_dir);
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", storage_dir);
    if (system(cmd) != 0)
        return 2;
    return crew_main(&conf, attachments_suite);
}
