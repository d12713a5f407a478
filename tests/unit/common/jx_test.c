/*
 * tests/unit/common/jx_test.c - unit tests for common/jx.c.
 *
 * One Check suite with a TCase per function group: RFC 7396 merge patch
 * (all fifteen examples of its appendix A plus the ownership rules),
 * base64url (RFC 4648 vectors, strictness, buffer sizes), pagination
 * cursors, RFC 3339 timestamps (accept/reject lists and values checked
 * against timegm()) and compact dumps. The file under test is included so
 * its statics are reachable and the binary needs nothing else from
 * libcommon.a.
 */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../../common/jx.c"

/* Parses JSON text that the test itself wrote (so it must be valid); any value allowed. */
static json_t *J(const char *text)
{
    json_error_t e;
    json_t *v = json_loads(text, JSON_DECODE_ANY, &e);
    ck_assert_msg(v != NULL, "bad test JSON %s: %s", text, e.text);
    return v;
}

/* Asserts that got equals the JSON text want; got is only borrowed. */
static void assert_json_eq(const json_t *got, const char *want)
{
    json_t *w = J(want);
    char *text = jx_dump_compact(got);
    ck_assert_msg(json_equal(got, w), "got %s, want %s", text, want);
    free(text);
    json_decref(w);
}

/* --- merge patch -------------------------------------------------------- */

/* RFC 7396 appendix A, in order: original, patch, result. */
static const char *const RFC7396_EXAMPLES[][3] = {
    {"{\"a\":\"b\"}", "{\"a\":\"c\"}", "{\"a\":\"c\"}"},
    {"{\"a\":\"b\"}", "{\"b\":\"c\"}", "{\"a\":\"b\",\"b\":\"c\"}"},
    {"{\"a\":\"b\"}", "{\"a\":null}", "{}"},
    {"{\"a\":\"b\",\"b\":\"c\"}", "{\"a\":null}", "{\"b\":\"c\"}"},
    {"{\"a\":[\"b\"]}", "{\"a\":\"c\"}", "{\"a\":\"c\"}"},
    {"{\"a\":\"c\"}", "{\"a\":[\"b\"]}", "{\"a\":[\"b\"]}"},
    {"{\"a\":{\"b\":\"c\"}}", "{\"a\":{\"b\":\"d\",\"c\":null}}", "{\"a\":{\"b\":\"d\"}}"},
    {"{\"a\":[{\"b\":\"c\"}]}", "{\"a\":[1]}", "{\"a\":[1]}"},
    {"[\"a\",\"b\"]", "[\"c\",\"d\"]", "[\"c\",\"d\"]"},
    {"{\"a\":\"b\"}", "[\"c\"]", "[\"c\"]"},
    {"{\"a\":\"foo\"}", "null", "null"},
    {"{\"a\":\"foo\"}", "\"bar\"", "\"bar\""},
    {"{\"e\":null}", "{\"a\":1}", "{\"e\":null,\"a\":1}"},
    {"[1,2]", "{\"a\":\"b\",\"c\":null}", "{\"a\":\"b\"}"},
    {"{}", "{\"a\":{\"bb\":{\"ccc\":null}}}", "{\"a\":{\"bb\":{}}}"},
};

START_TEST(merge_patch_rfc7396_examples)
{
    const char *const *ex = RFC7396_EXAMPLES[_i];
    json_t *patch = J(ex[1]), *expect = J(ex[2]);
    char *patch_before = jx_dump_compact(patch);
    json_t *got = jx_merge_patch(J(ex[0]), patch);
    char *got_text = jx_dump_compact(got);
    char *patch_after = jx_dump_compact(patch);

    ck_assert_msg(json_equal(got, expect), "example %d: %s + %s gave %s", _i + 1, ex[0], ex[1], got_text);
    ck_assert_str_eq(patch_before, patch_after); /* the patch is never modified */
    free(patch_before);
    free(patch_after);
    free(got_text);
    json_decref(got);
    json_decref(patch);
    json_decref(expect);
}
END_TEST

START_TEST(merge_patch_reuses_object_target)
{
    json_t *target = J("{\"a\":{\"x\":1},\"b\":2}");
    json_t *inner = json_object_get(target, "a");
    json_t *patch = J("{\"a\":{\"y\":3},\"c\":{\"d\":[1,2]}}");
    json_t *got = jx_merge_patch(target, patch);

    ck_assert_ptr_eq(got, target);                      /* reused, not copied */
    ck_assert_ptr_eq(json_object_get(got, "a"), inner); /* nested objects merged in place */
    ck_assert_int_eq(got->refcount, 1);                 /* the caller's one reference, handed back */
    assert_json_eq(got, "{\"a\":{\"x\":1,\"y\":3},\"b\":2,\"c\":{\"d\":[1,2]}}");
    /* Values taken from the patch are copies: changing the result leaves the patch alone. */
    ck_assert_ptr_ne(json_object_get(got, "c"), json_object_get(patch, "c"));
    json_array_append_new(json_object_get(json_object_get(got, "c"), "d"), json_integer(3));
    ck_assert_int_eq(json_array_size(json_object_get(json_object_get(patch, "c"), "d")), 2);
    json_decref(got);
    json_decref(patch);
}
END_TEST

START_TEST(merge_patch_null_target_and_nulls)
{
    json_t *patch = J("{\"a\":null,\"b\":{\"c\":null,\"d\":1}}");
    json_t *got = jx_merge_patch(NULL, patch);
    assert_json_eq(got, "{\"b\":{\"d\":1}}");
    json_decref(got);

    /* A scalar target is replaced by an object when the patch is one. */
    got = jx_merge_patch(json_integer(5), patch);
    assert_json_eq(got, "{\"b\":{\"d\":1}}");
    json_decref(got);

    /* A null patch gives null, whatever the target was. */
    got = jx_merge_patch(NULL, json_null());
    ck_assert(json_is_null(got));
    json_decref(got);
    json_decref(patch);
}
END_TEST

START_TEST(merge_patch_keys_with_nul)
{
    json_t *target = json_object(), *patch = json_object(), *got;

    json_object_setn_new(target, "a\0b", 3, json_integer(1));
    json_object_set_new(target, "a", json_integer(2));
    json_object_setn_new(patch, "a\0b", 3, json_null());
    got = jx_merge_patch(target, patch);
    ck_assert_int_eq(json_object_size(got), 1);
    ck_assert_int_eq(json_integer_value(json_object_get(got, "a")), 2);
    json_decref(got);
    json_decref(patch);
}
END_TEST

/* --- base64url ---------------------------------------------------------- */

START_TEST(b64url_rfc4648_vectors)
{
    static const char *const V[][2] = {{"", ""},           {"f", "Zg"},          {"fo", "Zm8"},         {"foo", "Zm9v"},
                                       {"foob", "Zm9vYg"}, {"fooba", "Zm9vYmE"}, {"foobar", "Zm9vYmFy"}};
    char enc[16];
    unsigned char dec[16];
    size_t i, n;

    for (i = 0; i < sizeof(V) / sizeof(V[0]); ++i) {
        size_t len = strlen(V[i][0]);
        ck_assert_uint_eq(jx_b64url_encode(V[i][0], len, enc, sizeof(enc)), strlen(V[i][1]));
        ck_assert_str_eq(enc, V[i][1]);
        ck_assert_uint_eq(JX_B64URL_ENCLEN(len), strlen(V[i][1]));
        ck_assert_int_eq(jx_b64url_decode(V[i][1], strlen(V[i][1]), dec, sizeof(dec), &n), 0);
        ck_assert_uint_eq(n, len);
        ck_assert(memcmp(dec, V[i][0], len) == 0);
    }
}
END_TEST

START_TEST(b64url_url_alphabet)
{
    const unsigned char bytes[] = {0xfb, 0xff, 0xbf};
    unsigned char dec[3];
    char enc[8];
    size_t n;

    jx_b64url_encode(bytes, 3, enc, sizeof(enc));
    ck_assert_str_eq(enc, "-_-_");
    ck_assert_int_eq(jx_b64url_decode("-_-_", 4, dec, sizeof(dec), &n), 0);
    ck_assert(n == 3 && memcmp(dec, bytes, 3) == 0);
}
END_TEST

START_TEST(b64url_roundtrip_all_lengths)
{
    unsigned char src[100], dec[100];
    char enc[JX_B64URL_ENCLEN(100) + 1];
    size_t len, i, n;

    for (i = 0; i < sizeof(src); ++i)
        src[i] = (unsigned char)(i * 37 + 11);
    for (len = 0; len <= sizeof(src); ++len) {
        size_t el = jx_b64url_encode(src, len, enc, sizeof(enc));
        ck_assert_uint_eq(el, strlen(enc));
        ck_assert_uint_le(JX_B64URL_DECLEN(el), sizeof(dec));
        ck_assert_int_eq(jx_b64url_decode(enc, el, dec, JX_B64URL_DECLEN(el), &n), 0);
        ck_assert_uint_eq(n, len);
        ck_assert(memcmp(src, dec, len) == 0);
    }
}
END_TEST

START_TEST(b64url_decode_strict)
{
    static const char *const BAD[] = {
        "Zg==",  "Zm8=",  "Zg=",                             /* padding */
        "Zm9+",  "Zm9/",                                     /* standard alphabet */
        " Zm9v", "Zm9v ", "Zm 9v",       "Zm9v\n", "Zm9\tv", /* whitespace */
        "Z",     "Zm9vY",                                    /* impossible lengths */
        "Zh",    "Zm9", /* unused low bits not zero ("Zg", "Zm8" are the spellings) */
        "Zm9v.", "Zm9v!", "\xc3\xa9Zm9",
    };
    unsigned char dec[16];
    size_t i, n = 99;

    for (i = 0; i < sizeof(BAD) / sizeof(BAD[0]); ++i)
        ck_assert_msg(jx_b64url_decode(BAD[i], strlen(BAD[i]), dec, sizeof(dec), &n) == ERR_INVALID, "accepted \"%s\"",
                      BAD[i]);
    /* A NUL inside the given length is just another bad character. */
    ck_assert_int_eq(jx_b64url_decode("Zm\0v", 4, dec, sizeof(dec), &n), ERR_INVALID);
    ck_assert_uint_eq(n, 99); /* untouched on failure */
    /* The empty string is the empty byte string. */
    ck_assert_int_eq(jx_b64url_decode("", 0, NULL, 0, &n), 0);
    ck_assert_uint_eq(n, 0);
}
END_TEST

START_TEST(b64url_buffer_sizes)
{
    char enc[8];
    unsigned char dec[8];
    size_t n;

    /* Encoding is snprintf-like: the needed length comes back, nothing is written past "". */
    memset(enc, 'x', sizeof(enc));
    ck_assert_uint_eq(jx_b64url_encode("foobar", 6, enc, 8), 8);
    ck_assert_int_eq(enc[0], '\0');
    ck_assert_int_eq(enc[1], 'x');
    ck_assert_uint_eq(jx_b64url_encode("foobar", 6, NULL, 0), 8);
    ck_assert_uint_eq(jx_b64url_encode("fooba", 5, enc, 8), 7);
    ck_assert_str_eq(enc, "Zm9vYmE");

    /* Decoding needs room for every byte. */
    ck_assert_int_eq(jx_b64url_decode("Zm9vYmFy", 8, dec, 5, &n), ERR_INVALID);
    ck_assert_int_eq(jx_b64url_decode("Zm9vYmFy", 8, dec, 6, &n), 0);
    ck_assert_uint_eq(n, 6);
    ck_assert_int_eq(jx_b64url_decode("Zm9vYmFy", 8, dec, 6, NULL), 0);
}
END_TEST

/* --- cursors ------------------------------------------------------------ */

START_TEST(cursor_roundtrip)
{
    json_t *state = J("{\"after_id\":42,\"sort\":\"name\",\"k\":[\"Zoë\",null]}");
    char *c = jx_cursor_encode(state);
    json_t *back;
    size_t i;

    ck_assert_ptr_nonnull(c);
    for (i = 0; c[i]; ++i)
        ck_assert_msg(b64url_value((unsigned char)c[i]) >= 0, "cursor has '%c'", c[i]);
    back = jx_cursor_decode(c, strlen(c));
    ck_assert_ptr_nonnull(back);
    ck_assert(json_equal(back, state));
    json_decref(back);
    free(c);
    json_decref(state);
}
END_TEST

START_TEST(cursor_is_deterministic)
{
    json_t *a = J("{\"b\":1,\"a\":2}"), *b = J("{\"a\":2,\"b\":1}");
    char *ca = jx_cursor_encode(a), *cb = jx_cursor_encode(b);

    ck_assert_str_eq(ca, cb);
    free(ca);
    free(cb);
    json_decref(a);
    json_decref(b);
}
END_TEST

/* A cursor string for arbitrary JSON text (not necessarily an object). */
static char *raw_cursor(const char *text)
{
    size_t len = strlen(text), need = JX_B64URL_ENCLEN(len);
    char *c = malloc(need + 1);
    jx_b64url_encode(text, len, c, need + 1);
    return c;
}

START_TEST(cursor_rejects)
{
    static const char *const TEXTS[] = {
        "[1,2]", "42", "\"s\"", "null", "", "{", "{\"a\":1} x", "{\"a\":1,\"a\":2}", "{\"a\":\"\\u0000\"}",
    };
    size_t i;
    json_t *arr = J("[1]");

    for (i = 0; i < sizeof(TEXTS) / sizeof(TEXTS[0]); ++i) {
        char *c = raw_cursor(TEXTS[i]);
        ck_assert_msg(jx_cursor_decode(c, strlen(c)) == NULL, "accepted %s", TEXTS[i]);
        free(c);
    }
    ck_assert_ptr_null(jx_cursor_decode("eyJhIjoxfQ==", 12)); /* padded {"a":1} */
    ck_assert_ptr_null(jx_cursor_decode("not a cursor", 12));
    ck_assert_ptr_null(jx_cursor_decode(NULL, 0));
    ck_assert_ptr_null(jx_cursor_decode("", 0));
    ck_assert_ptr_null(jx_cursor_encode(arr));
    ck_assert_ptr_null(jx_cursor_encode(NULL));
    json_decref(arr);
}
END_TEST

START_TEST(cursor_length_cap)
{
    /* {"k":"xxx..."} is 8 + n bytes; 768 bytes encode to exactly 1024 characters. */
    char pad[800];
    json_t *state = json_object();
    char *c;
    json_t *back;

    memset(pad, 'x', 760);
    pad[760] = '\0';
    json_object_set_new(state, "k", json_string(pad));
    c = jx_cursor_encode(state);
    ck_assert_ptr_nonnull(c);
    ck_assert_uint_eq(strlen(c), JX_CURSOR_MAX);
    back = jx_cursor_decode(c, strlen(c));
    ck_assert_ptr_nonnull(back);
    json_decref(back);
    free(c);

    /* One byte more cannot be encoded, and a longer string is refused before decoding. */
    pad[760] = 'x';
    pad[761] = '\0';
    json_object_set_new(state, "k", json_string(pad));
    ck_assert_ptr_null(jx_cursor_encode(state));
    {
        char big[JX_CURSOR_MAX + 4];
        memset(big, 'A', sizeof(big));
        ck_assert_ptr_null(jx_cursor_decode(big, JX_CURSOR_MAX + 4));
    }
    json_decref(state);
}
END_TEST

/* --- RFC 3339 ----------------------------------------------------------- */

START_TEST(rfc3339_accepts)
{
    static const char *const OK[] = {
        "2024-02-29T12:00:00Z",      "2000-02-29T00:00:00Z",        "1985-04-12T23:20:50.52Z",
        "1996-12-19T16:39:57-08:00", "1990-12-31T23:59:59Z",        "1937-01-01T12:00:27.87+00:20",
        "2024-01-01t00:00:00z",      "2024-01-01T00:00:00.123456Z", "2024-01-01T00:00:00.1+23:59",
        "2024-01-01T00:00:00-00:00", "0001-01-01T00:00:00Z",        "9999-12-31T23:59:59.999999-23:59",
        "2023-04-30T23:59:59+05:30",
    };
    size_t i;

    for (i = 0; i < sizeof(OK) / sizeof(OK[0]); ++i)
        ck_assert_msg(jx_is_rfc3339(OK[i]), "rejected %s", OK[i]);
}
END_TEST

START_TEST(rfc3339_rejects)
{
    static const char *const BAD[] = {
        "",
        "2024-01-01",           /* date only */
        "2024-01-01T00:00:00",  /* no offset */
        "2024-01-01 00:00:00Z", /* space separator */
        "2024-01-01_00:00:00Z",
        "2024-01-01T24:00:00Z", /* 24:00 */
        "2024-01-01T23:60:00Z",
        "2016-12-31T23:59:60Z", /* leap second: refused by design */
        "2023-02-29T00:00:00Z", /* not a leap year */
        "1900-02-29T00:00:00Z", /* centuries are not leap years... */
        "2024-04-31T00:00:00Z",
        "2024-13-01T00:00:00Z",
        "2024-00-10T00:00:00Z",
        "2024-01-00T00:00:00Z",
        "2024-01-32T00:00:00Z",
        "0000-01-01T00:00:00Z",         /* no year 0 */
        "2024-01-01T00:00:00.Z",        /* empty fraction */
        "2024-01-01T00:00:00.1234567Z", /* 7 fraction digits */
        "2024-01-01T00:00:00,5Z",       /* comma fraction */
        "2024-01-01T00:00:00+0100",     /* offset without colon */
        "2024-01-01T00:00:00+01",
        "2024-01-01T00:00:00+24:00",
        "2024-01-01T00:00:00+01:60",
        "2024-01-01T00:00:00ZZ", /* trailing characters */
        "2024-01-01T00:00:00Z ",
        " 2024-01-01T00:00:00Z",
        "24-01-01T00:00:00Z",
        "2024-1-01T00:00:00Z",
        "2024-01-01T0:00:00Z",
        "2024-01-01T00:00Z", /* no seconds */
        "+2024-01-01T00:00:00Z",
        "２０２４-01-01T00:00:00Z",
        "2024-01-01T00:00:00UTC",
    };
    size_t i;
    int64_t secs = 7;
    int32_t us = 7;

    for (i = 0; i < sizeof(BAD) / sizeof(BAD[0]); ++i)
        ck_assert_msg(!jx_is_rfc3339(BAD[i]), "accepted \"%s\"", BAD[i]);
    ck_assert(!jx_is_rfc3339(NULL));
    ck_assert_int_eq(jx_parse_rfc3339("2024-01-01T24:00:00Z", &secs, &us), ERR_INVALID);
    ck_assert(secs == 7 && us == 7);                            /* untouched */
    ck_assert_int_eq(jx_is_rfc3339("2000-02-29T00:00:00Z"), 1); /* ...but multiples of 400 are */
}
END_TEST

static void check_parse(const char *s, int64_t want_secs, int32_t want_us)
{
    int64_t secs;
    int32_t us;

    ck_assert_msg(jx_parse_rfc3339(s, &secs, &us) == 0, "rejected %s", s);
    ck_assert_msg(secs == want_secs, "%s: %lld, want %lld", s, (long long)secs, (long long)want_secs);
    ck_assert_msg(us == want_us, "%s: %d us, want %d", s, us, want_us);
}

START_TEST(rfc3339_values)
{
    check_parse("1970-01-01T00:00:00Z", 0, 0);
    check_parse("1970-01-01T01:00:00+01:00", 0, 0);
    check_parse("1969-12-31T19:00:00-05:00", 0, 0);
    check_parse("1970-01-01T00:00:00-00:00", 0, 0);
    check_parse("1969-12-31T23:59:59.5Z", -1, 500000);
    check_parse("1985-04-12T23:20:50.52Z", 482196050, 520000);
    check_parse("1996-12-19T16:39:57-08:00", 851042397, 0);
    check_parse("2000-02-29T12:34:56.000001Z", 951827696, 1);
    check_parse("2024-02-29T23:59:59.999999+14:00", 1709200799, 999999);
    check_parse("0001-01-01T00:00:00Z", -62135596800LL, 0);
    check_parse("9999-12-31T23:59:59Z", 253402300799LL, 0);
    check_parse("9999-12-31T23:59:59-23:59", 253402300799LL + 23 * 3600 + 59 * 60, 0);
    /* Either output may be NULL. */
    ck_assert_int_eq(jx_parse_rfc3339("2024-01-01T00:00:00Z", NULL, NULL), 0);
}
END_TEST

START_TEST(rfc3339_matches_timegm)
{
    /* Every day from 1601 to 2500 at a varying time of day, compared with glibc. */
    int64_t day;
    char buf[64];

    for (day = -134774; day < 194400; ++day) {
        time_t t = (time_t)(day * 86400 + (day * 7919) % 86400);
        struct tm tm;
        int64_t secs;
        gmtime_r(&t, &tm);
        strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
        ck_assert_int_eq(jx_parse_rfc3339(buf, &secs, NULL), 0);
        ck_assert_msg(secs == (int64_t)t, "%s: %lld, want %lld", buf, (long long)secs, (long long)t);
    }
}
END_TEST

/* --- compact dump ------------------------------------------------------- */

START_TEST(dump_compact)
{
    json_t *v = J("{ \"b\" : [1, 2, {\"c\": null}], \"a\" : \"x\" }");
    json_t *s = json_string("é\n");
    char *d = jx_dump_compact(v);

    ck_assert_str_eq(d, "{\"b\":[1,2,{\"c\":null}],\"a\":\"x\"}"); /* key order kept */
    free(d);
    d = jx_dump_compact(s);
    ck_assert_str_eq(d, "\"é\\n\"");
    free(d);
    ck_assert_ptr_null(jx_dump_compact(NULL));
    json_decref(v);
    json_decref(s);
}
END_TEST

/* JSON numbers read as the decimal a client meant, never a float's expansion. */
START_TEST(numbers_as_decimals)
{
    static const struct {
        double d;
        const char *want; /* NULL: refused */
    } cases[] = {
        {0.7, "0.7"},
        {12.5, "12.5"},
        {-0.07, "-0.07"},
        {100, "100"},
        {1e20, "100000000000000000000"},
        {1.5e-7, "0.00000015"},
        {0, "0"},
        {1234567.891, "1234567.891"},
        {0.1 + 0.2, NULL},
        {1e41, NULL},
        {1e-41, NULL},
        {123456789012345.6, NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *v = json_real(cases[i].d);
        char *got = jx_number_decimal(v);
        if (cases[i].want == NULL)
            ck_assert_msg(got == NULL, "%.17g gave %s", cases[i].d, got);
        else
            ck_assert_msg(got != NULL && strcmp(got, cases[i].want) == 0, "%.17g gave %s, want %s", cases[i].d,
                          got ? got : "NULL", cases[i].want);
        free(got);
        json_decref(v);
    }
    json_t *v = json_integer(-9007199254740993LL);
    char *got = jx_number_decimal(v);
    ck_assert_str_eq(got, "-9007199254740993");
    free(got);
    json_decref(v);
    v = json_string("1");
    ck_assert_ptr_null(jx_number_decimal(v));
    json_decref(v);
    ck_assert_ptr_null(jx_number_decimal(NULL));
}
END_TEST

static Suite *jx_suite(void)
{
    Suite *s = suite_create("jx");
    TCase *tc;

    tc = tcase_create("merge_patch");
    tcase_set_timeout(tc, 10);
    tcase_add_loop_test(tc, merge_patch_rfc7396_examples, 0,
                        (int)(sizeof(RFC7396_EXAMPLES) / sizeof(RFC7396_EXAMPLES[0])));
    tcase_add_test(tc, merge_patch_reuses_object_target);
    tcase_add_test(tc, merge_patch_null_target_and_nulls);
    tcase_add_test(tc, merge_patch_keys_with_nul);
    suite_add_tcase(s, tc);

    tc = tcase_create("b64url");
    tcase_set_timeout(tc, 10);
    tcase_add_test(tc, b64url_rfc4648_vectors);
    tcase_add_test(tc, b64url_url_alphabet);
    tcase_add_test(tc, b64url_roundtrip_all_lengths);
    tcase_add_test(tc, b64url_decode_strict);
    tcase_add_test(tc, b64url_buffer_sizes);
    suite_add_tcase(s, tc);

    tc = tcase_create("cursor");
    tcase_set_timeout(tc, 10);
    tcase_add_test(tc, cursor_roundtrip);
    tcase_add_test(tc, cursor_is_deterministic);
    tcase_add_test(tc, cursor_rejects);
    tcase_add_test(tc, cursor_length_cap);
    suite_add_tcase(s, tc);

    tc = tcase_create("rfc3339");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, rfc3339_accepts);
    tcase_add_test(tc, rfc3339_rejects);
    tcase_add_test(tc, rfc3339_values);
    tcase_add_test(tc, rfc3339_matches_timegm);
    suite_add_tcase(s, tc);

    tc = tcase_create("dump");
    tcase_set_timeout(tc, 10);
    tcase_add_test(tc, dump_compact);
    tcase_add_test(tc, numbers_as_decimals);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(jx_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
