/*
 * tests/unit/api/file_http_test.c - unit tests for api/file_http.c: the
 * file name of Content-Disposition (RFC 6266 and RFC 8187), the
 * Content-Disposition of downloads, media types, and byte ranges (RFC 9110
 * section 14). Pure functions: no server, no loop.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "../../../api/file_http.c"

/* --- Content-Disposition in ---------------------------------------------------------- */

static file_http_name_err_t parse(const char *v, char out[FILE_HTTP_NAME_MAX + 1])
{
    return file_http_parse_disposition(v, v != NULL ? strlen(v) : 0, out, FILE_HTTP_NAME_MAX + 1);
}

static void name_ok(const char *v, const char *want)
{
    char out[FILE_HTTP_NAME_MAX + 1];
    file_http_name_err_t e = parse(v, out);
    ck_assert_msg(e == FH_NAME_OK, "%s: refused (%d)", v, e);
    ck_assert_msg(strcmp(out, want) == 0, "%s: got \"%s\", want \"%s\"", v, out, want);
}

static void name_bad(const char *v, file_http_name_err_t want)
{
    char out[FILE_HTTP_NAME_MAX + 1];
    file_http_name_err_t e = parse(v, out);
    ck_assert_msg(e == want, "%s: got %d, want %d", v != NULL ? v : "(none)", e, want);
}

START_TEST(test_disposition_forms)
{
    name_ok("attachment; filename=\"report.pdf\"", "report.pdf");
    name_ok("attachment; filename=report.pdf", "report.pdf");
    name_ok("Attachment; FileName=\"a b.txt\"", "a b.txt");
    name_ok("inline; filename=\"x.png\"", "x.png");
    name_ok("form-data; name=\"file\"; filename=\"up.bin\"", "up.bin");
    name_ok("  attachment ;filename = \"spaced.txt\" ;  ", "spaced.txt");
    /* quoted-pairs stand for their character */
    name_ok("attachment; filename=\"q\\\"uote\\d\"", "q\"uoted");
}
END_TEST

START_TEST(test_disposition_ext_value)
{
    name_ok("attachment; filename*=UTF-8''r%C3%A9sum%C3%A9.pdf", "résumé.pdf");
    name_ok("attachment; filename*=utf-8'de'%E2%82%AC.txt", "€.txt");
    name_ok("attachment; filename*=ISO-8859-1''caf%E9.txt", "café.txt");
    name_ok("attachment; filename*=iso-8859-1''%FF", "ÿ");
    /* filename* is preferred, whatever the order. */
    name_ok("attachment; filename=\"plain.txt\"; filename*=UTF-8''fancy.txt", "fancy.txt");
    name_ok("attachment; filename*=UTF-8''fancy.txt; filename=\"plain.txt\"", "fancy.txt");
    /* An unknown character set gives way to filename (RFC 6266 appendix D). */
    name_ok("attachment; filename*=KOI8-R''%F0; filename=\"fallback.txt\"", "fallback.txt");
    name_bad("attachment; filename*=KOI8-R''%F0", FH_NAME_ENCODING);
    /* Malformed ext-values. */
    name_bad("attachment; filename*=UTF-8'%41", FH_NAME_MALFORMED);
    name_bad("attachment; filename*=''abc", FH_NAME_MALFORMED);
    name_bad("attachment; filename*=UTF-8''a%4", FH_NAME_MALFORMED);
    name_bad("attachment; filename*=UTF-8''a%G1", FH_NAME_MALFORMED);
    name_bad("attachment; filename*=\"UTF-8''quoted\"", FH_NAME_MALFORMED);
    name_bad("attachment; filename*=UTF-8''%FF", FH_NAME_ENCODING);
    name_bad("attachment; filename*=UTF-8''%ED%A0%80", FH_NAME_ENCODING);    /* a surrogate */
    name_bad("attachment; filename*=UTF-8''%E0%80%AF", FH_NAME_ENCODING);    /* overlong */
    name_bad("attachment; filename*=UTF-8''%F4%90%80%80", FH_NAME_ENCODING); /* above U+10FFFF */
}
END_TEST

START_TEST(test_disposition_missing_and_malformed)
{
    name_bad(NULL, FH_NAME_MISSING);
    name_bad("attachment", FH_NAME_MISSING);
    name_bad("attachment; name=\"file\"", FH_NAME_MISSING);
    name_bad("", FH_NAME_MALFORMED);
    name_bad("; filename=a", FH_NAME_MALFORMED);
    name_bad("attachment filename=a", FH_NAME_MALFORMED);
    name_bad("attachment; filename", FH_NAME_MALFORMED);
    name_bad("attachment; filename=", FH_NAME_MALFORMED);
    name_bad("attachment; filename=\"open", FH_NAME_MALFORMED);
    name_bad("attachment; filename=\"ends with escape\\", FH_NAME_MALFORMED);
    name_bad("attachment; filename=a b", FH_NAME_MALFORMED);
    name_bad("attachment; filename=a; filename=b", FH_NAME_MALFORMED);
    name_bad("attachment; filename*=UTF-8''a; FILENAME*=UTF-8''b", FH_NAME_MALFORMED);
}
END_TEST

START_TEST(test_disposition_name_rules)
{
    name_bad("attachment; filename=\"\"", FH_NAME_EMPTY);
    name_bad("attachment; filename*=UTF-8''", FH_NAME_EMPTY);
    name_bad("attachment; filename=\"a/b\"", FH_NAME_SEPARATOR);
    name_bad("attachment; filename=\"a\\\\b\"", FH_NAME_SEPARATOR);
    name_bad("attachment; filename*=UTF-8''a%2Fb", FH_NAME_SEPARATOR);
    name_bad("attachment; filename*=UTF-8''a%5cb", FH_NAME_SEPARATOR);
    name_bad("attachment; filename*=UTF-8''..%2F..%2Fetc%2Fpasswd", FH_NAME_SEPARATOR);
    name_bad("attachment; filename*=UTF-8''nul%00", FH_NAME_CONTROL);
    name_bad("attachment; filename*=UTF-8''cr%0D", FH_NAME_CONTROL);
    name_bad("attachment; filename=\"tab\there\"", FH_NAME_CONTROL);
    name_bad("attachment; filename*=UTF-8''del%7F", FH_NAME_CONTROL);
    name_bad("attachment; filename*=UTF-8''nel%C2%85", FH_NAME_CONTROL);
    name_bad("attachment; filename*=UTF-8''rlo%E2%80%AEtxt.exe", FH_NAME_CONTROL);
    name_bad("attachment; filename*=UTF-8''lrm%E2%80%8E", FH_NAME_CONTROL);
    name_bad("attachment; filename*=UTF-8''iso%E2%81%A6", FH_NAME_CONTROL);
    name_bad("attachment; filename*=UTF-8''ls%E2%80%A8", FH_NAME_CONTROL);
    name_bad("attachment; filename*=UTF-8''bom%EF%BB%BF", FH_NAME_CONTROL);
    name_bad("attachment; filename=\".\"", FH_NAME_DOTS);
    name_bad("attachment; filename=..", FH_NAME_DOTS);
    name_bad("attachment; filename*=UTF-8''%2E%2E", FH_NAME_DOTS);
    name_ok("attachment; filename=\"...\"", "...");
    name_ok("attachment; filename=\".profile\"", ".profile");
    name_ok("attachment; filename=\"a..b\"", "a..b");
    /* Separators win over the rest: "../" is a separator problem. */
    name_bad("attachment; filename=\"../\"", FH_NAME_SEPARATOR);
}
END_TEST

START_TEST(test_disposition_lengths)
{
    char v[2048], want[512];
    /* 255 bytes: fine; 256: too long. */
    memset(want, 'x', 255);
    want[255] = '\0';
    snprintf(v, sizeof(v), "attachment; filename=\"%s\"", want);
    name_ok(v, want);
    snprintf(v, sizeof(v), "attachment; filename=\"%sx\"", want);
    name_bad(v, FH_NAME_TOO_LONG);
    /* Counted in bytes of UTF-8: 85 three-byte characters are 255 bytes, 86 are too many. */
    char ext[1024] = "attachment; filename*=UTF-8''";
    want[0] = '\0';
    for (int i = 0; i < 85; i++) {
        strcat(ext, "%E2%82%AC");
        strcat(want, "€");
    }
    name_ok(ext, want);
    strcat(ext, "%E2%82%AC");
    name_bad(ext, FH_NAME_TOO_LONG);
    /* Far longer than any buffer: still "too long", not "malformed". */
    char *huge = malloc(20000);
    strcpy(huge, "attachment; filename*=UTF-8''");
    for (int i = 0; i < 2000; i++)
        strcat(huge, "%41");
    name_bad(huge, FH_NAME_TOO_LONG);
    strcpy(huge, "attachment; filename=\"");
    memset(huge + strlen(huge), 'y', 5000);
    strcpy(huge + 22 + 5000, "\"");
    name_bad(huge, FH_NAME_TOO_LONG);
    free(huge);
    /* ISO-8859-1 doubles its high bytes in UTF-8: 128 of them are 256 bytes. */
    strcpy(ext, "attachment; filename*=ISO-8859-1''");
    for (int i = 0; i < 128; i++)
        strcat(ext, "%E9");
    name_bad(ext, FH_NAME_TOO_LONG);
}
END_TEST

START_TEST(test_name_codes)
{
    ck_assert_str_eq(file_http_name_code(FH_NAME_MISSING), "required");
    ck_assert_str_eq(file_http_name_code(FH_NAME_MALFORMED), "invalid_format");
    ck_assert_str_eq(file_http_name_code(FH_NAME_ENCODING), "invalid_format");
    ck_assert_str_eq(file_http_name_code(FH_NAME_EMPTY), "too_short");
    ck_assert_str_eq(file_http_name_code(FH_NAME_TOO_LONG), "too_long");
    ck_assert_str_eq(file_http_name_code(FH_NAME_SEPARATOR), "invalid_value");
    ck_assert_str_eq(file_http_name_code(FH_NAME_CONTROL), "invalid_value");
    ck_assert_str_eq(file_http_name_code(FH_NAME_DOTS), "invalid_value");
    for (int e = FH_NAME_MISSING; e <= FH_NAME_DOTS; e++)
        ck_assert_str_ne(file_http_name_message((file_http_name_err_t)e), "is invalid");
}
END_TEST

/* --- Content-Disposition out --------------------------------------------------------- */

static void disposition_is(const char *name, const char *want)
{
    char buf[FILE_HTTP_DISPOSITION_MAX];
    size_t n = file_http_disposition(name, buf, sizeof(buf));
    ck_assert_msg(strcmp(buf, want) == 0, "%s: got %s", name, buf);
    ck_assert_uint_eq(n, strlen(want));
}

START_TEST(test_disposition_out)
{
    disposition_is("report.pdf", "attachment; filename=\"report.pdf\"; filename*=UTF-8''report.pdf");
    disposition_is("a b.txt", "attachment; filename=\"a b.txt\"; filename*=UTF-8''a%20b.txt");
    disposition_is("résumé €.pdf",
                   "attachment; filename=\"r_sum_ _.pdf\"; filename*=UTF-8''r%C3%A9sum%C3%A9%20%E2%82%AC.pdf");
    disposition_is("say \"hi\";x=1.txt",
                   "attachment; filename=\"say _hi_;x=1.txt\"; filename*=UTF-8''say%20%22hi%22%3Bx%3D1.txt");
    disposition_is("100%.txt", "attachment; filename=\"100_.txt\"; filename*=UTF-8''100%25.txt");
    disposition_is("!#$&+-.^_`|~", "attachment; filename=\"!#$&+-.^_`|~\"; filename*=UTF-8''!#$&+-.^_`|~");
    /* The longest name fits the documented room, and every output parses back to the name. */
    char name[256 * 4], buf[FILE_HTTP_DISPOSITION_MAX], back[FILE_HTTP_NAME_MAX + 1];
    name[0] = '\0';
    for (int i = 0; i < 85; i++)
        strcat(name, "€");
    size_t n = file_http_disposition(name, buf, sizeof(buf));
    ck_assert_uint_lt(n, FILE_HTTP_DISPOSITION_MAX);
    ck_assert_int_eq(file_http_parse_disposition(buf, n, back, sizeof(back)), FH_NAME_OK);
    ck_assert_str_eq(back, name);
    memset(name, '"', 255);
    name[255] = '\0';
    n = file_http_disposition(name, buf, sizeof(buf));
    ck_assert_uint_lt(n, FILE_HTTP_DISPOSITION_MAX);
    ck_assert_int_eq(file_http_parse_disposition(buf, n, back, sizeof(back)), FH_NAME_OK);
    ck_assert_str_eq(back, name);
    /* A small buffer is never overrun. */
    char tiny[16];
    file_http_disposition("report.pdf", tiny, sizeof(tiny));
    ck_assert_uint_eq(strlen(tiny), sizeof(tiny) - 1);
}
END_TEST

/* --- media types --------------------------------------------------------------------------- */

static void media_ok(const char *v, const char *want)
{
    char out[FILE_HTTP_MEDIA_TYPE_MAX + 1];
    ck_assert_msg(file_http_media_type(v, strlen(v), out, sizeof(out)) == 0, "%s: refused", v);
    ck_assert_msg(strcmp(out, want) == 0, "%s: got %s", v, out);
}

static void media_bad(const char *v)
{
    char out[FILE_HTTP_MEDIA_TYPE_MAX + 1];
    ck_assert_msg(file_http_media_type(v, strlen(v), out, sizeof(out)) != 0, "%s: accepted", v);
}

START_TEST(test_media_types)
{
    media_ok("application/pdf", "application/pdf");
    media_ok("  Image/PNG  ", "image/png");
    media_ok("text/plain; charset=UTF-8", "text/plain; charset=UTF-8");
    media_ok("Text/Plain;Charset=utf-8", "text/plain; charset=utf-8");
    media_ok("text/plain ; charset=\"utf-8\" ; format=flowed", "text/plain; charset=\"utf-8\"; format=flowed");
    media_ok("multipart/mixed; boundary=\"a \\\"b\\\" c\"", "multipart/mixed; boundary=\"a \\\"b\\\" c\"");
    media_ok("application/vnd.openxmlformats-officedocument.wordprocessingml.document",
             "application/vnd.openxmlformats-officedocument.wordprocessingml.document");
    media_ok("application/x-thing+json;", "application/x-thing+json");
    media_bad("");
    media_bad("pdf");
    media_bad("text/");
    media_bad("/plain");
    media_bad("text /plain");
    media_bad("text/plain; charset");
    media_bad("text/plain; =utf-8");
    media_bad("text/plain; charset=");
    media_bad("text/plain; charset=\"open");
    media_bad("text/plain; a=\"ctl\x01\"");
    media_bad("text/plain garbage");
    media_bad("téxt/plain");
    char big[400];
    snprintf(big, sizeof(big), "application/%0300d", 0);
    media_bad(big);
}
END_TEST

/* --- ranges -------------------------------------------------------------------------------- */

static void range_is(const char *v, uint64_t size, file_http_range_t want, uint64_t first, uint64_t last)
{
    uint64_t f = 12345, l = 12345;
    file_http_range_t got = file_http_parse_range(v, v != NULL ? strlen(v) : 0, size, &f, &l);
    ck_assert_msg(got == want, "%s (size %llu): got %d, want %d", v != NULL ? v : "(none)", (unsigned long long)size,
                  got, want);
    if (want == FH_RANGE_ONE)
        ck_assert_msg(f == first && l == last, "%s (size %llu): got %llu-%llu, want %llu-%llu", v,
                      (unsigned long long)size, (unsigned long long)f, (unsigned long long)l, (unsigned long long)first,
                      (unsigned long long)last);
}

START_TEST(test_ranges_one)
{
    range_is("bytes=0-0", 100, FH_RANGE_ONE, 0, 0);
    range_is("bytes=0-99", 100, FH_RANGE_ONE, 0, 99);
    range_is("bytes=10-19", 100, FH_RANGE_ONE, 10, 19);
    range_is("bytes=50-", 100, FH_RANGE_ONE, 50, 99);
    range_is("bytes=99-", 100, FH_RANGE_ONE, 99, 99);
    range_is("bytes=90-1000", 100, FH_RANGE_ONE, 90, 99); /* clamped to the end */
    range_is("bytes=-1", 100, FH_RANGE_ONE, 99, 99);      /* suffix */
    range_is("bytes=-30", 100, FH_RANGE_ONE, 70, 99);
    range_is("bytes=-100", 100, FH_RANGE_ONE, 0, 99);
    range_is("bytes=-5000", 100, FH_RANGE_ONE, 0, 99); /* longer than the file: all of it */
    range_is("Bytes=5-6", 100, FH_RANGE_ONE, 5, 6);    /* the unit is case-insensitive */
    range_is(" bytes=5-6 ", 100, FH_RANGE_ONE, 5, 6);
    range_is("bytes=, 5-6 ,", 100, FH_RANGE_ONE, 5, 6); /* empty list elements */
    range_is("bytes=0-18446744073709551615", 100, FH_RANGE_ONE, 0, 99);
    range_is("bytes=0-99999999999999999999999999", 100, FH_RANGE_ONE, 0, 99); /* saturates */
}
END_TEST

START_TEST(test_ranges_other)
{
    range_is(NULL, 100, FH_RANGE_NONE, 0, 0);
    range_is("", 100, FH_RANGE_NONE, 0, 0);
    range_is("bytes=", 100, FH_RANGE_NONE, 0, 0);
    range_is("bytes=,", 100, FH_RANGE_NONE, 0, 0);
    range_is("bytes", 100, FH_RANGE_NONE, 0, 0);
    range_is("bytes 0-1", 100, FH_RANGE_NONE, 0, 0);
    range_is("items=0-1", 100, FH_RANGE_NONE, 0, 0);
    range_is("bytesx=0-1", 100, FH_RANGE_NONE, 0, 0);
    range_is("bytes=-", 100, FH_RANGE_NONE, 0, 0);
    range_is("bytes=a-b", 100, FH_RANGE_NONE, 0, 0);
    range_is("bytes=1", 100, FH_RANGE_NONE, 0, 0);
    range_is("bytes=5-1", 100, FH_RANGE_NONE, 0, 0); /* last before first: invalid, ignored */
    range_is("bytes=1-2-3", 100, FH_RANGE_NONE, 0, 0);
    range_is("bytes=1-2;x", 100, FH_RANGE_NONE, 0, 0);
    range_is("bytes=--5", 100, FH_RANGE_NONE, 0, 0);
    range_is("bytes=+1-2", 100, FH_RANGE_NONE, 0, 0);
    range_is("bytes=0-1,5-6", 100, FH_RANGE_MULTI, 0, 0);
    range_is("bytes=0-1, -5", 100, FH_RANGE_MULTI, 0, 0);
    range_is("bytes=0-1,x", 100, FH_RANGE_NONE, 0, 0); /* one bad spec spoils the header */
    range_is("bytes=100-", 100, FH_RANGE_UNSATISFIABLE, 0, 0);
    range_is("bytes=100-200", 100, FH_RANGE_UNSATISFIABLE, 0, 0);
    range_is("bytes=18446744073709551615-", 100, FH_RANGE_UNSATISFIABLE, 0, 0);
    range_is("bytes=-0", 100, FH_RANGE_UNSATISFIABLE, 0, 0);
    range_is("bytes=0-", 0, FH_RANGE_UNSATISFIABLE, 0, 0); /* nothing to range over */
    range_is("bytes=-5", 0, FH_RANGE_UNSATISFIABLE, 0, 0);
}
END_TEST

static Suite *file_http_suite(void)
{
    Suite *s = suite_create("api/file_http");
    TCase *tc = tcase_create("disposition");
    tcase_add_test(tc, test_disposition_forms);
    tcase_add_test(tc, test_disposition_ext_value);
    tcase_add_test(tc, test_disposition_missing_and_malformed);
    tcase_add_test(tc, test_disposition_name_rules);
    tcase_add_test(tc, test_disposition_lengths);
    tcase_add_test(tc, test_name_codes);
    tcase_add_test(tc, test_disposition_out);
    suite_add_tcase(s, tc);
    tc = tcase_create("media_type");
    tcase_add_test(tc, test_media_types);
    suite_add_tcase(s, tc);
    tc = tcase_create("range");
    tcase_add_test(tc, test_ranges_one);
    tcase_add_test(tc, test_ranges_other);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(file_http_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
