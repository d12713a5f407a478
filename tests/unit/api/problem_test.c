/*
 * tests/unit/api/problem_test.c - unit tests for api/problem.c.
 *
 * Covers the pure half of the module: the err_t -> status mapping, the
 * reason phrases, the RFC 9457 body builder and the validation-error
 * helper. Sending (api_send_error and the h2o filter) needs a live request
 * and belongs to the integration tests; no h2o server is started here.
 * Every json_t built is released, so LeakSanitizer checks the builders.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "../../../api/problem.c"

static const struct {
    int err;
    int status;
    const char *slug;
    const char *title;
} expected[] = {
    {ERR_INVALID, 400, "bad-request", "malformed request"},
    {ERR_UNAUTHENTICATED, 401, "unauthenticated", "authentication required"},
    {ERR_FORBIDDEN, 403, "forbidden", "not allowed"},
    {ERR_NOT_FOUND, 404, "not-found", "resource not found"},
    {ERR_CONFLICT, 409, "conflict", "conflict with the current state"},
    {ERR_UNAVAILABLE, 503, "unavailable", "service unavailable"},
    {ERR_INTERNAL, 500, "internal", "internal error"},
    {ERR_TIMEOUT, 504, "timeout", "dependency timed out"},
    {ERR_PRECONDITION, 412, "precondition-failed", "precondition failed"},
    {ERR_TOO_LARGE, 413, "payload-too-large", "request body too large"},
    {ERR_MEDIA_TYPE, 415, "unsupported-media-type", "unsupported media type"},
    {ERR_UNPROCESSABLE, 422, "validation-failed", "validation failed"},
    {ERR_RATE_LIMITED, 429, "too-many-requests", "too many requests"},
    {ERR_METHOD, 405, "method-not-allowed", "method not allowed"},
    {ERR_RANGE, 416, "range-not-satisfiable", "range not satisfiable"},
};
#define NEXPECTED (sizeof(expected) / sizeof(expected[0]))

/* --- api_err_status --------------------------------------------------------- */

START_TEST(test_err_status_each)
{
    for (size_t i = 0; i < NEXPECTED; i++)
        ck_assert_msg(api_err_status(expected[i].err) == expected[i].status, "err %d: expected %d, got %d",
                      expected[i].err, expected[i].status, api_err_status(expected[i].err));
}
END_TEST

START_TEST(test_err_status_covers_err_h)
{
    /* Every code in common/err.h is in the table above, and each maps to its own status. */
    ck_assert_uint_eq(NEXPECTED, ERR__COUNT - 1);
    for (int err = -1; err > -ERR__COUNT; err--) {
        int found = 0;
        for (size_t i = 0; i < NEXPECTED; i++)
            found += expected[i].err == err;
        ck_assert_msg(found == 1, "err %d is missing from the test table", err);
        for (int other = err - 1; other > -ERR__COUNT; other--)
            ck_assert_msg(api_err_status(err) != api_err_status(other), "err %d and %d share status %d", err, other,
                          api_err_status(err));
    }
}
END_TEST

START_TEST(test_err_status_unknown)
{
    ck_assert_int_eq(api_err_status(-ERR__COUNT), 500);
    ck_assert_int_eq(api_err_status(-99), 500);
    ck_assert_int_eq(api_err_status(1), 500);
    ck_assert_int_eq(api_err_status(404), 500); /* a status is not an err_t */
    ck_assert_int_eq(api_err_status(ERR_OK), 500);
}
END_TEST

/* --- api_status_reason ------------------------------------------------------ */

START_TEST(test_status_reason_each)
{
    static const struct {
        int status;
        const char *reason;
    } r[] = {
        {200, "OK"},
        {201, "Created"},
        {202, "Accepted"},
        {204, "No Content"},
        {206, "Partial Content"},
        {304, "Not Modified"},
        {400, "Bad Request"},
        {401, "Unauthorized"},
        {403, "Forbidden"},
        {404, "Not Found"},
        {405, "Method Not Allowed"},
        {409, "Conflict"},
        {412, "Precondition Failed"},
        {413, "Content Too Large"},
        {415, "Unsupported Media Type"},
        {416, "Range Not Satisfiable"},
        {422, "Unprocessable Content"},
        {429, "Too Many Requests"},
        {500, "Internal Server Error"},
        {503, "Service Unavailable"},
        {504, "Gateway Timeout"},
    };
    for (size_t i = 0; i < sizeof(r) / sizeof(r[0]); i++)
        ck_assert_str_eq(api_status_reason(r[i].status), r[i].reason);
}
END_TEST

START_TEST(test_status_reason_every_error_status)
{
    /* Every status an err_t can produce has a reason phrase. */
    for (size_t i = 0; i < NEXPECTED; i++) {
        const char *reason = api_status_reason(expected[i].status);
        ck_assert_ptr_nonnull(reason);
        ck_assert_msg(reason[0] != '\0', "status %d has no reason phrase", expected[i].status);
    }
}
END_TEST

START_TEST(test_status_reason_unknown)
{
    ck_assert_ptr_nonnull(api_status_reason(418));
    ck_assert_str_eq(api_status_reason(418), "");
    ck_assert_str_eq(api_status_reason(0), "");
    ck_assert_str_eq(api_status_reason(-1), "");
    ck_assert_str_eq(api_status_reason(999), "");
}
END_TEST

/* --- api_problem_new -------------------------------------------------------- */

static const char *str_member(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    ck_assert_msg(v != NULL, "member \"%s\" missing", key);
    ck_assert_msg(json_is_string(v), "member \"%s\" is not a string", key);
    return json_string_value(v);
}

START_TEST(test_problem_fields)
{
    for (size_t i = 0; i < NEXPECTED; i++) {
        json_t *o = api_problem_new(expected[i].status, "Something specific happened.", "/v1/customers/42");
        ck_assert_ptr_nonnull(o);
        char type[64];
        snprintf(type, sizeof(type), "/problems/%s", expected[i].slug);
        ck_assert_str_eq(str_member(o, "type"), type);
        ck_assert_str_eq(str_member(o, "title"), expected[i].title);
        json_t *st = json_object_get(o, "status");
        ck_assert_msg(json_is_integer(st), "status is not an integer");
        ck_assert_int_eq(json_integer_value(st), expected[i].status);
        ck_assert_str_eq(str_member(o, "detail"), "Something specific happened.");
        ck_assert_str_eq(str_member(o, "instance"), "/v1/customers/42");
        ck_assert_uint_eq(json_object_size(o), 5);
        json_decref(o);
    }
}
END_TEST

START_TEST(test_problem_exact_body)
{
    /* The wire form, in the documented member order. */
    json_t *o = api_problem_new(409, "A user with this email already exists.", "/v1/users");
    char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    ck_assert_str_eq(s, "{\"type\":\"/problems/conflict\",\"title\":\"conflict with the current state\","
                        "\"status\":409,\"detail\":\"A user with this email already exists.\","
                        "\"instance\":\"/v1/users\"}");
    free(s);
    json_decref(o);
}
END_TEST

START_TEST(test_problem_default_detail)
{
    static const int with_default[] = {404, 500, 503, 504};
    for (size_t i = 0; i < sizeof(with_default) / sizeof(with_default[0]); i++) {
        json_t *o = api_problem_new(with_default[i], NULL, "/x");
        const char *d = str_member(o, "detail");
        size_t n = strlen(d);
        ck_assert_msg(n > 10 && d[n - 1] == '.', "status %d: detail is not a sentence: \"%s\"", with_default[i], d);
        json_decref(o);
    }
    json_t *o = api_problem_new(404, NULL, NULL);
    ck_assert_str_eq(str_member(o, "detail"), "No such resource exists, or you are not allowed to see it.");
    json_decref(o);
    o = api_problem_new(503, NULL, NULL);
    ck_assert_str_eq(str_member(o, "detail"), "A service this request depends on is unavailable. Retry later.");
    json_decref(o);
    /* The default never hides a detail the caller gave. */
    o = api_problem_new(500, "The report could not be built.", NULL);
    ck_assert_str_eq(str_member(o, "detail"), "The report could not be built.");
    json_decref(o);

    /* Other statuses have no default: the member is absent rather than empty. */
    static const int without[] = {400, 401, 403, 405, 409, 412, 413, 415, 422, 429};
    for (size_t i = 0; i < sizeof(without) / sizeof(without[0]); i++) {
        o = api_problem_new(without[i], NULL, "/x");
        ck_assert_msg(json_object_get(o, "detail") == NULL, "status %d: unexpected detail", without[i]);
        ck_assert_uint_eq(json_object_size(o), 4);
        json_decref(o);
    }
}
END_TEST

START_TEST(test_problem_instance)
{
    json_t *o = api_problem_new(400, "Bad.", NULL);
    ck_assert_ptr_null(json_object_get(o, "instance"));
    json_decref(o);

    o = api_problem_new(404, NULL, "/v1/customers/external/caf\xc3\xa9");
    ck_assert_str_eq(str_member(o, "instance"), "/v1/customers/external/caf\xc3\xa9");
    json_decref(o);

    /* A raw path is not necessarily UTF-8; the body must still be valid JSON with an instance. */
    o = api_problem_new(404, NULL, "/v1/\xff\xfe");
    ck_assert_str_eq(str_member(o, "instance"), "(not UTF-8)");
    char *s = json_dumps(o, JSON_COMPACT);
    ck_assert_ptr_nonnull(s);
    free(s);
    json_decref(o);
}
END_TEST

START_TEST(test_problem_unlisted_status)
{
    /* Statuses without their own kind fall back by class, keeping the real status. */
    json_t *o = api_problem_new(418, "Short and stout.", NULL);
    ck_assert_str_eq(str_member(o, "type"), "/problems/bad-request");
    ck_assert_int_eq(json_integer_value(json_object_get(o, "status")), 418);
    json_decref(o);
    o = api_problem_new(502, NULL, NULL);
    ck_assert_str_eq(str_member(o, "type"), "/problems/internal");
    ck_assert_str_eq(str_member(o, "title"), "internal error");
    ck_assert_int_eq(json_integer_value(json_object_get(o, "status")), 502);
    ck_assert_ptr_null(json_object_get(o, "detail"));
    json_decref(o);
}
END_TEST

START_TEST(test_problem_titles_style)
{
    /* Titles follow the message guide: short, lower-case, no final period. */
    for (size_t i = 0; i < NEXPECTED; i++) {
        json_t *o = api_problem_new(expected[i].status, NULL, NULL);
        const char *t = str_member(o, "title");
        size_t n = strlen(t);
        ck_assert_msg(n > 0 && n < 40, "status %d: title length %zu", expected[i].status, n);
        ck_assert_msg(t[n - 1] != '.', "status %d: title ends with a period", expected[i].status);
        for (size_t k = 0; k < n; k++)
            ck_assert_msg(!(t[k] >= 'A' && t[k] <= 'Z'), "status %d: title \"%s\" is not lower-case",
                          expected[i].status, t);
        json_decref(o);
    }
}
END_TEST

/* --- api_error_add ---------------------------------------------------------- */

START_TEST(test_error_add)
{
    json_t *errors = json_array();
    char field[16] = "email";
    api_error_add(errors, field, "format", "Must be an email address.");
    strcpy(field, "changed"); /* values are copied */
    api_error_add(errors, "name", "required", "Is required.");
    ck_assert_uint_eq(json_array_size(errors), 2);

    json_t *e = json_array_get(errors, 0);
    ck_assert(json_is_object(e));
    ck_assert_uint_eq(json_object_size(e), 3);
    ck_assert_str_eq(str_member(e, "field"), "email");
    ck_assert_str_eq(str_member(e, "code"), "format");
    ck_assert_str_eq(str_member(e, "message"), "Must be an email address.");
    e = json_array_get(errors, 1);
    ck_assert_str_eq(str_member(e, "field"), "name");
    ck_assert_str_eq(str_member(e, "code"), "required");
    ck_assert_str_eq(str_member(e, "message"), "Is required.");

    char *s = json_dumps(errors, JSON_COMPACT | JSON_PRESERVE_ORDER);
    ck_assert_str_eq(s, "[{\"field\":\"email\",\"code\":\"format\",\"message\":\"Must be an email address.\"},"
                        "{\"field\":\"name\",\"code\":\"required\",\"message\":\"Is required.\"}]");
    free(s);
    json_decref(errors);
}
END_TEST

START_TEST(test_error_add_in_problem)
{
    /* The shape api_send_invalid sends: a 422 problem with an errors array. */
    json_t *o = api_problem_new(422, "The request body has 1 invalid field.", "/v1/customers");
    json_t *errors = json_array();
    api_error_add(errors, "birth_date", "format", "Must be a date such as 1990-01-31.");
    json_object_set_new(o, "errors", errors);
    ck_assert_str_eq(str_member(o, "type"), "/problems/validation-failed");
    json_t *arr = json_object_get(o, "errors");
    ck_assert(json_is_array(arr));
    ck_assert_str_eq(str_member(json_array_get(arr, 0), "field"), "birth_date");
    json_decref(o);
}
END_TEST

static Suite *problem_suite(void)
{
    Suite *s = suite_create("api/problem");
    TCase *tc;

    tc = tcase_create("err_status");
    tcase_set_timeout(tc, 10);
    tcase_add_test(tc, test_err_status_each);
    tcase_add_test(tc, test_err_status_covers_err_h);
    tcase_add_test(tc, test_err_status_unknown);
    suite_add_tcase(s, tc);

    tc = tcase_create("status_reason");
    tcase_set_timeout(tc, 10);
    tcase_add_test(tc, test_status_reason_each);
    tcase_add_test(tc, test_status_reason_every_error_status);
    tcase_add_test(tc, test_status_reason_unknown);
    suite_add_tcase(s, tc);

    tc = tcase_create("problem_new");
    tcase_set_timeout(tc, 10);
    tcase_add_test(tc, test_problem_fields);
    tcase_add_test(tc, test_problem_exact_body);
    tcase_add_test(tc, test_problem_default_detail);
    tcase_add_test(tc, test_problem_instance);
    tcase_add_test(tc, test_problem_unlisted_status);
    tcase_add_test(tc, test_problem_titles_style);
    suite_add_tcase(s, tc);

    tc = tcase_create("error_add");
    tcase_set_timeout(tc, 10);
    tcase_add_test(tc, test_error_add);
    tcase_add_test(tc, test_error_add_in_problem);
    suite_add_tcase(s, tc);

    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(problem_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
