/*
 * tests/unit/common/backup_test.c - unit tests for common/backup.c.
 *
 * Everything that needs no database: names, the free-space rule, ustar
 * headers (round trips, base-256 sizes, damaged checksums), the reading of
 * backup files fabricated here (sound, cut short at every member boundary,
 * altered in the dump, the manifest or after the end), the SHA-256 check,
 * the listing and the pruning of a directory, the COPY counter fed in
 * pieces of every size, the connection string handed to children (no
 * password on their command line) and the child processes themselves
 * (feeding, reading, stderr, exit status, being stopped). The making,
 * verifying and restoring of real backups is tests/integration/backup_test.c's.
 * The file under test is included so its statics are reachable.
 */
#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "../../../common/backup.c"

static char tmpdir[256];

static void make_tmpdir(void)
{
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/clientele-backup-test-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void remove_tmpdir(void)
{
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    ck_assert_int_eq(system(cmd), 0);
}

static const char *path_in(const char *name)
{
    static char p[512];
    snprintf(p, sizeof(p), "%s/%s", tmpdir, name);
    return p;
}

static void sha_hex(const void *data, size_t len, char out[65])
{
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned n = 0;
    ck_assert_int_eq(EVP_Digest(data, len, d, &n, EVP_sha256(), NULL), 1);
    to_hex(d, 32, out);
}

/* A manifest for a dump of `len` bytes with hash `sha`; extra members may be added by the caller. */
static json_t *manifest_for(size_t len, const char *sha)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:i, s:s, s:[s], s:{s:s, s:s, s:I, s:s}, s:{s:i, s:i}, s:i}", "format",
                     BACKUP_FORMAT, "created_at", "2026-01-31T02:00:00.000001Z", "database", "clientele",
                     "server_version", "15.20", "schema_version", "0018_backups_roles.sql", "migrations", 18, "owner",
                     "clientele", "roles", "clientele", "dump", "name", BACKUP_DUMP_MEMBER, "format", "pg_dump custom",
                     "size", (json_int_t)len, "sha256", sha, "tables", "public.customers", 2, "public.orders", 0,
                     "rows", 2);
}

/* Writes a backup archive of `dump` with `manifest` (stolen) to path, as backup_create() lays it out. */
static void write_archive(const char *path, const char *dump, size_t len, json_t *manifest)
{
    char *text = json_dumps(manifest, JSON_INDENT(2));
    json_decref(manifest);
    size_t tl = strlen(text);
    int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0644);
    ck_assert_int_ge(fd, 0);
    char hdr[512], zeros[1024] = {0};
    backup_tar_header(hdr, BACKUP_DUMP_MEMBER, len, 1769824800);
    ck_assert_int_eq(write_all(fd, hdr, 512), 0);
    ck_assert_int_eq(write_all(fd, dump, len), 0);
    ck_assert_int_eq(write_all(fd, zeros, round512(len) - len), 0);
    backup_tar_header(hdr, BACKUP_MANIFEST_MEMBER, tl, 1769824800);
    ck_assert_int_eq(write_all(fd, hdr, 512), 0);
    ck_assert_int_eq(write_all(fd, text, tl), 0);
    ck_assert_int_eq(write_all(fd, zeros, round512(tl) - tl), 0);
    ck_assert_int_eq(write_all(fd, zeros, 1024), 0);
    close(fd);
    free(text);
}

/* A sound fabricated backup at path, with a dump of n bytes; returns the dump's hash. */
static void sound_archive(const char *path, size_t n, char sha[65])
{
    char *dump = malloc(n);
    for (size_t i = 0; i < n; i++)
        dump[i] = (char)(i * 7 + 3);
    sha_hex(dump, n, sha);
    write_archive(path, dump, n, manifest_for(n, sha));
    free(dump);
}

static off_t file_size(const char *path)
{
    struct stat st;
    ck_assert_int_eq(stat(path, &st), 0);
    return st.st_size;
}

static void copy_prefix(const char *from, const char *to, off_t len)
{
    char cmd[1200];
    snprintf(cmd, sizeof(cmd), "head -c %lld '%s' > '%s'", (long long)len, from, to);
    ck_assert_int_eq(system(cmd), 0);
}

static void poke(const char *path, off_t at, char c)
{
    int fd = open(path, O_WRONLY);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(pwrite(fd, &c, 1, at), 1);
    close(fd);
}

/* --- names and space -------------------------------------------------------------- */

START_TEST(names)
{
    char name[BACKUP_NAME_SIZE], when[40];
    backup_name_for(1769824800, name); /* 2026-01-31T02:00:00Z */
    ck_assert_str_eq(name, "clientele-20260131-020000.backup");
    ck_assert(backup_name_ok(name));
    backup_name_time(name, when, sizeof(when));
    ck_assert_str_eq(when, "2026-01-31T02:00:00.000000Z");
    ck_assert(backup_name_ok("clientele-20240229-235959.backup"));
    static const char *const bad[] = {
        "clientele-20230229-000000.backup", /* not a leap year */
        "clientele-20260132-000000.backup",
        "clientele-20261301-000000.backup",
        "clientele-20260101-240000.backup",
        "clientele-20260101-006000.backup",
        "clientele-20260101-000060.backup",
        "clientele-2026011-000000.backup",
        "clientele-20260101-000000.backup.partial",
        ".clientele-20260101-000000.backup",
        "clientele-20260101_000000.backup",
        "Clientele-20260101-000000.backup",
        "clientele-2026010a-000000.backup",
        "clientele-19691231-235959.backup",
        "clientele-20260101-000000.backuq",
        "",
        "x",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_msg(!backup_name_ok(bad[i]), "%s was taken for a backup name", bad[i]);
}
END_TEST

START_TEST(space_rule)
{
    ck_assert(backup_space_ok(0, 0)); /* no backup yet: nothing to judge by */
    ck_assert(backup_space_ok(120, 100));
    ck_assert(!backup_space_ok(119, 100));
    ck_assert(backup_space_ok(UINT64_C(12) << 30, UINT64_C(10) << 30));
    ck_assert(!backup_space_ok((UINT64_C(12) << 30) - 1, UINT64_C(10) << 30));
}
END_TEST

/* --- tar headers -------------------------------------------------------------------- */

START_TEST(tar_round_trip)
{
    static const uint64_t sizes[] = {
        0, 1, 511, 512, 513, (UINT64_C(1) << 33) - 1, UINT64_C(1) << 33, UINT64_C(123456789012345)};
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        char hdr[512], name[101];
        uint64_t size = 7;
        backup_tar_header(hdr, BACKUP_DUMP_MEMBER, sizes[i], 1769824800);
        ck_assert_int_eq(backup_tar_parse(hdr, name, &size), 1);
        ck_assert_str_eq(name, BACKUP_DUMP_MEMBER);
        ck_assert_msg(size == sizes[i], "size %llu came back as %llu", (unsigned long long)sizes[i],
                      (unsigned long long)size);
        ck_assert_int_eq(memcmp(hdr + 257, "ustar\0", 6), 0);
    }
    char zero[512] = {0}, name[101];
    uint64_t size;
    ck_assert_int_eq(backup_tar_parse(zero, name, &size), 0);
    char hdr[512];
    backup_tar_header(hdr, BACKUP_MANIFEST_MEMBER, 100, 0);
    hdr[0] ^= 1; /* the checksum no longer holds */
    ck_assert_int_eq(backup_tar_parse(hdr, name, &size), -1);
    backup_tar_header(hdr, BACKUP_MANIFEST_MEMBER, 100, 0);
    memcpy(hdr + 257, "ustaR", 5);
    ck_assert_int_eq(backup_tar_parse(hdr, name, &size), -1);
}
END_TEST

/* The system's tar reads what we write. */
START_TEST(tar_reads_our_archive)
{
    make_tmpdir();
    char sha[65], cmd[1024], out[256] = "";
    sound_archive(path_in("clientele-20260131-020000.backup"), 1500, sha);
    snprintf(cmd, sizeof(cmd), "cd '%s' && tar tf clientele-20260131-020000.backup | tr '\\n' ' '", tmpdir);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    ck_assert_ptr_nonnull(fgets(out, sizeof(out), p));
    pclose(p);
    ck_assert_str_eq(out, BACKUP_DUMP_MEMBER " " BACKUP_MANIFEST_MEMBER " ");
    snprintf(cmd, sizeof(cmd), "cd '%s' && tar xf clientele-20260131-020000.backup && sha256sum clientele.dump",
             tmpdir);
    p = popen(cmd, "r");
    ck_assert_ptr_nonnull(fgets(out, sizeof(out), p));
    pclose(p);
    ck_assert_int_eq(strncmp(out, sha, 64), 0);
    remove_tmpdir();
}
END_TEST

/* --- reading files ----------------------------------------------------------------------- */

START_TEST(open_sound_file)
{
    make_tmpdir();
    char sha[65], err[512];
    const char *path = path_in("clientele-20260131-020000.backup");
    sound_archive(path, 70000, sha);
    backup_file_t f;
    ck_assert_msg(backup_open(path, &f, err, sizeof(err)) == 0, "%s", err);
    ck_assert_uint_eq(f.dump_offset, 512);
    ck_assert_uint_eq(f.dump_size, 70000);
    ck_assert_str_eq(json_string_value(json_object_get(f.manifest, "schema_version")), "0018_backups_roles.sql");
    ck_assert_msg(backup_check_sha(path, &f, NULL, NULL, err, sizeof(err)) == 0, "%s", err);
    backup_file_free(&f);
    remove_tmpdir();
}
END_TEST

/* Cut anywhere, the file is refused by the structure check or the hash. */
START_TEST(truncated_files_refused)
{
    make_tmpdir();
    char sha[65], err[512];
    const char *good = strdup(path_in("good.backup")), *cut = strdup(path_in("cut.backup"));
    sound_archive(good, 3000, sha);
    off_t size = file_size(good);
    for (off_t len = 0; len < size; len += len < 4096 ? 7 : 97) {
        copy_prefix(good, cut, len);
        backup_file_t f;
        int r = backup_open(cut, &f, err, sizeof(err));
        if (r == 0)
            r = backup_check_sha(cut, &f, NULL, NULL, err, sizeof(err));
        ck_assert_msg(r == ERR_INVALID, "a file cut at %lld of %lld bytes was taken (%d)", (long long)len,
                      (long long)size, r);
        backup_file_free(&f);
    }
    copy_prefix(good, cut, size - 1024); /* without the end of the archive */
    backup_file_t f;
    ck_assert_int_eq(backup_open(cut, &f, err, sizeof(err)), ERR_INVALID);
    ck_assert_msg(strstr(err, "cut short") != NULL, "%s", err);
    free((void *)good);
    free((void *)cut);
    remove_tmpdir();
}
END_TEST

START_TEST(altered_files_refused)
{
    make_tmpdir();
    char sha[65], err[512];
    const char *path = strdup(path_in("b.backup"));
    backup_file_t f;

    /* A byte of the dump: the structure holds, the hash does not. */
    sound_archive(path, 5000, sha);
    poke(path, 512 + 2500, 'X');
    ck_assert_int_eq(backup_open(path, &f, err, sizeof(err)), 0);
    ck_assert_int_eq(backup_check_sha(path, &f, NULL, NULL, err, sizeof(err)), ERR_INVALID);
    ck_assert_msg(strstr(err, "SHA-256") != NULL, "%s", err);
    backup_file_free(&f);

    /* The manifest's JSON. */
    sound_archive(path, 5000, sha);
    poke(path, 512 + 5120 + 512 + 1, '#');
    ck_assert_int_eq(backup_open(path, &f, err, sizeof(err)), ERR_INVALID);
    ck_assert_msg(strstr(err, "manifest") != NULL, "%s", err);

    /* Something after the end of the archive. */
    sound_archive(path, 5000, sha);
    poke(path, file_size(path) - 1, 1);
    ck_assert_int_eq(backup_open(path, &f, err, sizeof(err)), ERR_INVALID);

    /* A manifest that lies about the dump's size, or has no hash, or another format. */
    write_archive(path, "abc", 3, manifest_for(4, sha));
    ck_assert_int_eq(backup_open(path, &f, err, sizeof(err)), ERR_INVALID);
    json_t *m = manifest_for(3, sha);
    json_object_del(json_object_get(m, "dump"), "sha256");
    write_archive(path, "abc", 3, m);
    ck_assert_int_eq(backup_open(path, &f, err, sizeof(err)), ERR_INVALID);
    m = manifest_for(3, sha);
    json_object_set_new(m, "format", json_string("clientele-backup/2"));
    write_archive(path, "abc", 3, m);
    ck_assert_int_eq(backup_open(path, &f, err, sizeof(err)), ERR_INVALID);
    m = manifest_for(3, sha);
    json_object_set_new(json_object_get(m, "tables"), "public.users", json_integer(-1));
    write_archive(path, "abc", 3, m);
    ck_assert_int_eq(backup_open(path, &f, err, sizeof(err)), ERR_INVALID);

    /* Not a backup at all. */
    int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0644);
    char junk[4096];
    memset(junk, 'j', sizeof(junk));
    ck_assert_int_eq(write_all(fd, junk, sizeof(junk)), 0);
    close(fd);
    ck_assert_int_eq(backup_open(path, &f, err, sizeof(err)), ERR_INVALID);
    ck_assert_int_eq(backup_open(path_in("missing.backup"), &f, err, sizeof(err)), ERR_NOT_FOUND);
    free((void *)path);
    remove_tmpdir();
}
END_TEST

/* --- the directory ----------------------------------------------------------------------- */

static void touch(const char *name, time_t mtime)
{
    const char *p = path_in(name);
    int fd = open(p, O_CREAT | O_WRONLY, 0644);
    ck_assert_int_ge(fd, 0);
    close(fd);
    if (mtime != 0) {
        struct timeval tv[2] = {{mtime, 0}, {mtime, 0}};
        ck_assert_int_eq(utimes(p, tv), 0);
    }
}

START_TEST(prune_keeps_the_newest)
{
    make_tmpdir();
    static const char *const names[] = {
        "clientele-20260101-020000.backup", "clientele-20260102-020000.backup", "clientele-20260103-020000.backup",
        "clientele-20260104-020000.backup", "clientele-20260105-020000.backup",
    };
    for (size_t i = 0; i < 5; i++)
        touch(names[i], 0);
    touch("notes.txt", 0);
    touch("clientele-20260106-020000.backup.bak", 0);
    touch(".clientele-20251231-020000.backup.partial", time(NULL) - 3 * 86400);
    touch(".clientele-20260105-030000.backup.partial", 0); /* being written now */
    json_t *removed = json_array();
    ck_assert_int_eq(backup_prune(tmpdir, 2, removed), 0);
    ck_assert_int_eq(json_array_size(removed), 3);
    ck_assert_str_eq(json_string_value(json_array_get(removed, 0)), names[2]);
    ck_assert_str_eq(json_string_value(json_array_get(removed, 2)), names[0]);
    ck_assert_int_eq(access(path_in(names[4]), F_OK), 0);
    ck_assert_int_eq(access(path_in(names[3]), F_OK), 0);
    ck_assert_int_ne(access(path_in(names[2]), F_OK), 0);
    ck_assert_int_eq(access(path_in("notes.txt"), F_OK), 0);
    ck_assert_int_eq(access(path_in("clientele-20260106-020000.backup.bak"), F_OK), 0);
    ck_assert_int_ne(access(path_in(".clientele-20251231-020000.backup.partial"), F_OK), 0);
    ck_assert_int_eq(access(path_in(".clientele-20260105-030000.backup.partial"), F_OK), 0);
    /* Never the newest, whatever keep says. */
    json_array_clear(removed);
    ck_assert_int_eq(backup_prune(tmpdir, 0, removed), 0);
    ck_assert_int_eq(json_array_size(removed), 1);
    ck_assert_int_eq(access(path_in(names[4]), F_OK), 0);
    json_decref(removed);
    remove_tmpdir();
}
END_TEST

START_TEST(list_describes_every_file)
{
    make_tmpdir();
    char sha[65], err[256];
    json_t *list = backup_list(path_in("none-yet"), err, sizeof(err));
    ck_assert_ptr_nonnull(list);
    ck_assert_int_eq(json_array_size(list), 0);
    json_decref(list);
    sound_archive(path_in("clientele-20260131-020000.backup"), 1000, sha);
    touch("clientele-20260201-020000.backup", 0); /* empty: not a backup */
    touch("other.backup", 0);
    list = backup_list(tmpdir, err, sizeof(err));
    ck_assert_ptr_nonnull(list);
    ck_assert_int_eq(json_array_size(list), 2);
    json_t *newest = json_array_get(list, 0), *older = json_array_get(list, 1);
    ck_assert_str_eq(json_string_value(json_object_get(newest, "name")), "clientele-20260201-020000.backup");
    ck_assert(json_is_null(json_object_get(newest, "manifest")));
    ck_assert_ptr_nonnull(json_string_value(json_object_get(newest, "problem")));
    ck_assert_str_eq(json_string_value(json_object_get(older, "created_at")), "2026-01-31T02:00:00.000000Z");
    ck_assert_int_eq(json_integer_value(json_object_get(older, "size")),
                     file_size(path_in("clientele-20260131-020000.backup")));
    ck_assert_str_eq(
        json_string_value(json_object_get(json_object_get(json_object_get(older, "manifest"), "dump"), "sha256")), sha);
    ck_assert_ptr_null(json_object_get(older, "problem"));
    json_decref(list);
    remove_tmpdir();
}
END_TEST

/* --- the COPY counter -------------------------------------------------------------------- */

static const char RESTORE_OUTPUT[] = "--\n-- PostgreSQL database dump\n--\n\nSET statement_timeout = 0;\n\n"
                                     "COPY public.customers (id, name, notes) FROM stdin;\n"
                                     "1\tAda\t\\N\n2\tBob\tline one\\nline two\n3\tCy\t\\\\.\n"
                                     "\\.\n\n"
                                     "COPY public.orders (id) FROM stdin;\n\\.\n\n"
                                     "COPY \"Weird\".\"Table (x)\" (id) FROM stdin;\n7\n\\.\n\n"
                                     "SELECT pg_catalog.setval('public.customers_id_seq', 3, true);\n";

static void feed_in_pieces(backup_counter_t *c, const char *text, size_t piece)
{
    size_t len = strlen(text);
    for (size_t i = 0; i < len; i += piece)
        backup_counter_feed(c, text + i, len - i < piece ? len - i : piece);
}

START_TEST(counter_counts_rows)
{
    for (size_t piece = 1; piece <= sizeof(RESTORE_OUTPUT); piece++) {
        backup_counter_t c;
        backup_counter_init(&c);
        feed_in_pieces(&c, RESTORE_OUTPUT, piece);
        ck_assert_msg(backup_counter_finish(&c) == 0, "pieces of %zu: %s", piece, c.error);
        ck_assert_int_eq(json_object_size(c.counts), 3);
        ck_assert_int_eq(json_integer_value(json_object_get(c.counts, "public.customers")), 3);
        ck_assert_int_eq(json_integer_value(json_object_get(c.counts, "public.orders")), 0);
        ck_assert_int_eq(json_integer_value(json_object_get(c.counts, "\"Weird\".\"Table (x)\"")), 1);
        backup_counter_free(&c);
    }
}
END_TEST

START_TEST(counter_refuses_broken_output)
{
    backup_counter_t c;
    backup_counter_init(&c);
    feed_in_pieces(&c, "COPY public.customers (id) FROM stdin;\n1\n2\n", 5);
    ck_assert_int_eq(backup_counter_finish(&c), -1);
    backup_counter_free(&c);

    backup_counter_init(&c);
    feed_in_pieces(&c, "COPY public.t (id) FROM stdin;\n1\n\\.\nCOPY public.t (id) FROM stdin;\n2\n\\.\n", 3);
    ck_assert_int_eq(backup_counter_finish(&c), -1); /* the same table twice */
    backup_counter_free(&c);

    /* A very long line that is not a COPY line is fine; a COPY line too long to read is not. */
    backup_counter_init(&c);
    char *big = malloc(200000);
    memset(big, 'x', 199998);
    big[199998] = '\n';
    big[199999] = '\0';
    feed_in_pieces(&c, big, 4096);
    ck_assert_int_eq(backup_counter_finish(&c), 0);
    backup_counter_free(&c);
    backup_counter_init(&c);
    memcpy(big, "COPY ", 5);
    feed_in_pieces(&c, big, 4096);
    ck_assert_int_eq(backup_counter_finish(&c), -1);
    backup_counter_free(&c);
    free(big);
}
END_TEST

/* --- children ---------------------------------------------------------------------------- */

START_TEST(conn_args_keep_the_password_out)
{
    conn_args_t a;
    char err[256];
    ck_assert_int_eq(
        conn_args("postgresql://svc:s3cr%27t@db.example:5433/crm?sslmode=require", NULL, &a, err, sizeof(err)), 0);
    ck_assert_str_eq(a.password, "s3cr't");
    ck_assert_ptr_null(strstr(a.connstr, "s3cr"));
    ck_assert_ptr_nonnull(strstr(a.connstr, "user='svc'"));
    ck_assert_ptr_nonnull(strstr(a.connstr, "dbname='crm'"));
    ck_assert_ptr_nonnull(strstr(a.connstr, "sslmode='require'"));
    conn_args_free(&a);
    ck_assert_int_eq(
        conn_args("host=h dbname=old application_name='it\\'s \\\\ here'", "new one", &a, err, sizeof(err)), 0);
    ck_assert_ptr_null(a.password);
    ck_assert_ptr_nonnull(strstr(a.connstr, "dbname='new one'"));
    ck_assert_ptr_null(strstr(a.connstr, "old"));
    ck_assert_ptr_nonnull(strstr(a.connstr, "application_name='it\\'s \\\\ here'"));
    /* libpq reads it back as it was meant. */
    PQconninfoOption *o = PQconninfoParse(a.connstr, NULL);
    ck_assert_ptr_nonnull(o);
    for (PQconninfoOption *p = o; p->keyword != NULL; p++)
        if (strcmp(p->keyword, "application_name") == 0)
            ck_assert_str_eq(p->val, "it's \\ here");
    PQconninfoFree(o);
    conn_args_free(&a);
    ck_assert_int_eq(conn_args("postgresql://[bad", NULL, &a, err, sizeof(err)), ERR_INVALID);
    conn_args_free(&a);
}
END_TEST

typedef struct st_collect_t {
    char buf[65536];
    size_t len;
} collect_t;

static int collect_sink(void *arg, const char *data, size_t len)
{
    collect_t *c = arg;
    ck_assert_uint_le(c->len + len, sizeof(c->buf));
    memcpy(c->buf + c->len, data, len);
    c->len += len;
    return 0;
}

START_TEST(child_feeds_and_reads)
{
    make_tmpdir();
    const char *src = strdup(path_in("src"));
    int fd = open(src, O_CREAT | O_RDWR, 0644);
    char data[50000];
    for (size_t i = 0; i < sizeof(data); i++)
        data[i] = (char)('a' + i % 26);
    ck_assert_int_eq(write_all(fd, data, sizeof(data)), 0);
    char *argv[] = {"cat", NULL};
    child_t c;
    collect_t got = {.len = 0};
    char err[256];
    ck_assert_int_eq(child_start(&c, argv, NULL, 1, 1, err, sizeof(err)), 0);
    ck_assert_int_eq(child_run(&c, fd, 1000, 40000, collect_sink, &got, NULL, NULL, err, sizeof(err)), 0);
    ck_assert_uint_eq(got.len, 40000);
    ck_assert_int_eq(memcmp(got.buf, data + 1000, 40000), 0);
    close(fd);
    free((void *)src);
    remove_tmpdir();
}
END_TEST

START_TEST(child_gets_the_password_in_its_environment)
{
    setenv("PGPASSWORD", "stale", 1);
    char *argv[] = {"sh", "-c", "printf '%s|%s' \"$PGPASSWORD\" \"$0\"", NULL};
    child_t c;
    collect_t got = {.len = 0};
    char err[256];
    ck_assert_int_eq(child_start(&c, argv, "fresh pass", 0, 1, err, sizeof(err)), 0);
    ck_assert_int_eq(child_run(&c, -1, 0, 0, collect_sink, &got, NULL, NULL, err, sizeof(err)), 0);
    got.buf[got.len] = '\0';
    ck_assert_str_eq(got.buf, "fresh pass|sh");
    /* Without a password, none: not the caller's. */
    got.len = 0;
    ck_assert_int_eq(child_start(&c, argv, NULL, 0, 1, err, sizeof(err)), 0);
    ck_assert_int_eq(child_run(&c, -1, 0, 0, collect_sink, &got, NULL, NULL, err, sizeof(err)), 0);
    got.buf[got.len] = '\0';
    ck_assert_str_eq(got.buf, "|sh");
    unsetenv("PGPASSWORD");
}
END_TEST

START_TEST(child_failure_is_told)
{
    char *argv[] = {"sh", "-c", "echo 'first words' >&2; echo 'pg_dump: error: it broke' >&2; exit 3", NULL};
    child_t c;
    collect_t got = {.len = 0};
    char err[512];
    ck_assert_int_eq(child_start(&c, argv, NULL, 0, 1, err, sizeof(err)), 0);
    ck_assert_int_eq(child_run(&c, -1, 0, 0, collect_sink, &got, NULL, NULL, err, sizeof(err)), ERR_INTERNAL);
    ck_assert_msg(strstr(err, "exit status 3") != NULL && strstr(err, "first words; pg_dump: error: it broke") != NULL,
                  "%s", err);
    char *none[] = {"clientele-no-such-program", NULL};
    ck_assert_int_eq(child_start(&c, none, NULL, 0, 1, err, sizeof(err)), ERR_INTERNAL);
}
END_TEST

static int stop_after(void *arg, uint64_t bytes)
{
    int *ticks = arg;
    return ++*ticks >= 3 ? -100 : 0;
}

START_TEST(child_is_stopped_by_the_tick)
{
    char *argv[] = {"sleep", "30", NULL};
    child_t c;
    collect_t got = {.len = 0};
    char err[256];
    int ticks = 0;
    long long t0 = now_ms();
    ck_assert_int_eq(child_start(&c, argv, NULL, 0, 1, err, sizeof(err)), 0);
    ck_assert_int_eq(child_run(&c, -1, 0, 0, collect_sink, &got, stop_after, &ticks, err, sizeof(err)), -100);
    ck_assert_int_eq(ticks, 3);
    ck_assert_int_lt(now_ms() - t0, 5000);
    ck_assert_int_eq(c.pid, -1);
}
END_TEST

static Suite *backup_suite(void)
{
    Suite *s = suite_create("backup");
    TCase *tc = tcase_create("names");
    tcase_add_test(tc, names);
    tcase_add_test(tc, space_rule);
    suite_add_tcase(s, tc);

    tc = tcase_create("files");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, tar_round_trip);
    tcase_add_test(tc, tar_reads_our_archive);
    tcase_add_test(tc, open_sound_file);
    tcase_add_test(tc, truncated_files_refused);
    tcase_add_test(tc, altered_files_refused);
    tcase_add_test(tc, prune_keeps_the_newest);
    tcase_add_test(tc, list_describes_every_file);
    suite_add_tcase(s, tc);

    tc = tcase_create("counter");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, counter_counts_rows);
    tcase_add_test(tc, counter_refuses_broken_output);
    suite_add_tcase(s, tc);

    tc = tcase_create("children");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, conn_args_keep_the_password_out);
    tcase_add_test(tc, child_feeds_and_reads);
    tcase_add_test(tc, child_gets_the_password_in_its_environment);
    tcase_add_test(tc, child_failure_is_told);
    tcase_add_test(tc, child_is_stopped_by_the_tick);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    SRunner *sr = srunner_create(backup_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
