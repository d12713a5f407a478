/*
 * tests/integration/custom_fields_test.c - /v1/custom-fields against the real
 * API and PostgreSQL: administrators define the keys of a resource's attrs
 * and everyone reads the definitions; a definition is checked (its key, its
 * options, its bounds); every write of the resource (create, merge patch,
 * upsert, bulk) is checked against the definitions, with a 422 naming
 * attrs.<key>, while undefined keys stay free-form; deleting a definition
 * stops the checks; definitions have history and a change feed.
 *
 * Definitions are global: a test that defines a required field deletes it
 * before it ends, so the other tests' writes are not refused.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>

#include "tests/support/crew.h"

static const char *const api_env[] = {
    "CLIENTELE_THREADS=2",
    "CLIENTELE_DB_TIMEOUT=20s",
    "CLIENTELE_JWT_SECRET=custom-fields-suite-secret-0123456789abcdef",
    NULL,
};

static const crew_conf_t conf = {
    .name = "custom_fields",
    .redis_db = 7,
    .env = api_env,
    .password = "custom-fields-suite-password",
    .domain = "cf.test",
    .resource = "customers",
    .item = "customer",
};

/* A key no other test uses: "<prefix>_<n>". */
static const char *key(const char *prefix)
{
    static int n;
    return fmt("%s_%d_%d", prefix, (int)getpid(), ++n);
}

/* Defines a field (JSON members after resource and key); answers its id. */
static long long define(const char *resource, const char *k, const char *members)
{
    th_resp_t *r =
        http_post(ADMIN, "/v1/custom-fields",
                  fmt("{\"resource\":\"%s\",\"key\":\"%s\",\"label\":\"L %s\",%s}", resource, k, k, members));
    expect_status(r, 201);
    return jint(r->json, "id");
}

static th_resp_t *customer_with(int who, const char *attrs)
{
    return http_post(who, "/v1/customers", fmt("{\"kind\":\"person\",\"name\":\"P\",\"attrs\":%s}", attrs));
}

START_TEST(administrators_define_everyone_reads)
{
    const char *k = key("grade");
    th_resp_t *r = http_post(ADMIN, "/v1/custom-fields",
                             fmt("{\"resource\":\"customers\",\"key\":\"%s\",\"label\":\"Grade\",\"type\":\"enum\","
                                 "\"options\":[\"gold\",\"silver\"],\"position\":3}",
                                 k));
    expect_status(r, 201);
    long long id = jint(r->json, "id");
    ck_assert_int_eq(json_is_false(jget(r, "required")), 1);
    ck_assert_str_eq(header(r, "location"), fmt("/v1/custom-fields/%lld", id));

    for (int who = 0; who < NUSERS; who++) {
        r = http_get(who, fmt("/v1/custom-fields/%lld", id));
        expect_status_msg(r, 200, "GET as %s", who_name[who]);
        ck_assert_str_eq(jstr(r->json, "key"), k);
    }
    ck_assert(has_id(list_all(REP1, "/v1/custom-fields?resource=customers&type=enum", 50), id));
    r = http_post(REP1, "/v1/custom-fields",
                  "{\"resource\":\"customers\",\"key\":\"mine\",\"label\":\"Mine\",\"type\":\"text\"}");
    expect_status(r, 403);
    r = http_patch(DIRECTOR, fmt("/v1/custom-fields/%lld", id), "{\"label\":\"X\"}", NULL);
    expect_status(r, 403);

    /* The same key on another resource is another field; on the same one, a 422. */
    r = http_post(ADMIN, "/v1/custom-fields",
                  fmt("{\"resource\":\"customers\",\"key\":\"%s\",\"label\":\"Again\",\"type\":\"text\"}", k));
    expect_status(r, 422);
    expect_error(r, "key", "invalid_value");
    define("contacts", k, "\"type\":\"text\"");

    /* The key and the resource stay as created; the label and the options change. */
    r = http_patch(ADMIN, fmt("/v1/custom-fields/%lld", id),
                   "{\"label\":\"Grade A\",\"options\":[\"gold\",\"silver\","
                   "\"bronze\"]}",
                   NULL);
    expect_status(r, 200);
    ck_assert_str_eq(jstr(r->json, "label"), "Grade A");
    ck_assert_int_eq(json_array_size(jget(r, "options")), 3);
    r = http_get(REP1, fmt("/v1/custom-fields/%lld/history", id));
    expect_status(r, 200);
    ck_assert_ptr_nonnull(strstr(r->body, "Grade A"));
    r = http_get(REP1, "/v1/changes/custom-fields?limit=1000");
    expect_status(r, 200);
    ck_assert_ptr_nonnull(strstr(r->body, k));
}
END_TEST

START_TEST(definitions_are_checked)
{
    static const struct {
        const char *body, *field, *code;
    } bad[] = {
        {"\"key\":\"Bad Key\",\"type\":\"text\"", "key", "invalid_value"},
        {"\"key\":\"nooptions\",\"type\":\"enum\"", "options", "invalid_value"},
        {"\"key\":\"textoptions\",\"type\":\"text\",\"options\":[\"a\"]", "options", "invalid_value"},
        {"\"key\":\"twice\",\"type\":\"multi_enum\",\"options\":[\"a\",\"a\"]", "options", "invalid_value"},
        {"\"key\":\"textmin\",\"type\":\"text\",\"min\":\"1\"", "min", "invalid_value"},
        {"\"key\":\"badmin\",\"type\":\"number\",\"min\":\"one\"", "min", "invalid_value"},
        {"\"key\":\"baddate\",\"type\":\"date\",\"max\":\"2026-02-30\"", "max", "invalid_value"},
        {"\"key\":\"upside\",\"type\":\"decimal\",\"min\":\"10\",\"max\":\"9.5\"", "max", "invalid_value"},
        {"\"key\":\"boollen\",\"type\":\"boolean\",\"max_length\":3", "max_length", "invalid_value"},
        {"\"key\":\"wrongtype\",\"type\":\"color\"", "type", "invalid_value"},
        {"\"key\":\"norres\",\"type\":\"text\",\"resource\":\"teams\"", "resource", "invalid_value"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        const char *body = strstr(bad[i].body, "\"resource\"") != NULL
                               ? fmt("{\"label\":\"L\",%s}", bad[i].body)
                               : fmt("{\"resource\":\"customers\",\"label\":\"L\",%s}", bad[i].body);
        th_resp_t *r = http_post(ADMIN, "/v1/custom-fields", body);
        expect_status_msg(r, 422, "%s", body);
        ck_assert_msg(find_error(r, bad[i].field) != NULL, "%s: no error for %s: %s", body, bad[i].field, r->body);
    }
}
END_TEST

START_TEST(writes_are_checked_against_the_definitions)
{
    const char *kt = key("note"), *kn = key("score"), *kd = key("price"), *kdate = key("since"), *ktime = key("at"),
               *kb = key("vip"), *ke = key("size"), *km = key("langs"), *ku = key("site"), *kmail = key("mail"),
               *kp = key("fax");
    long long ids[11];
    ids[0] = define("customers", kt, "\"type\":\"text\",\"max_length\":5");
    ids[1] = define("customers", kn, "\"type\":\"number\",\"min\":\"0\",\"max\":\"10\"");
    ids[2] = define("customers", kd, "\"type\":\"decimal\",\"min\":\"0.5\"");
    ids[3] = define("customers", kdate, "\"type\":\"date\",\"min\":\"2000-01-01\"");
    ids[4] = define("customers", ktime, "\"type\":\"datetime\"");
    ids[5] = define("customers", kb, "\"type\":\"boolean\"");
    ids[6] = define("customers", ke, "\"type\":\"enum\",\"options\":[\"S\",\"M\",\"L\"]");
    ids[7] = define("customers", km, "\"type\":\"multi_enum\",\"options\":[\"de\",\"en\",\"zh\"]");
    ids[8] = define("customers", ku, "\"type\":\"url\"");
    ids[9] = define("customers", kmail, "\"type\":\"email\"");
    ids[10] = define("customers", kp, "\"type\":\"phone\"");

    static const char *const codes[] = {"too_long",       "out_of_range",   "out_of_range",  "out_of_range",
                                        "invalid_format", "invalid_type",   "invalid_value", "invalid_value",
                                        "invalid_format", "invalid_format", "invalid_format"};
    const char *keys[] = {kt, kn, kd, kdate, ktime, kb, ke, km, ku, kmail, kp};
    const char *wrong[] = {"\"toolong\"",          "11",           "\"0.25\"",   "\"1999-12-31\"",
                           "\"2026-01-31 12:00\"", "\"yes\"",      "\"XL\"",     "[\"de\",\"fr\"]",
                           "\"ftp://x\"",          "\"not-mail\"", "\"call me\""};
    for (int i = 0; i < 11; i++) {
        th_resp_t *r = customer_with(REP1, fmt("{\"%s\":%s}", keys[i], wrong[i]));
        expect_status_msg(r, 422, "attrs.%s = %s", keys[i], wrong[i]);
        expect_error(r, fmt("attrs.%s", keys[i]), codes[i]);
    }
    /* Every type with a fitting value, and a key nobody defined. */
    th_resp_t *r = customer_with(
        REP1, fmt("{\"%s\":\"short\",\"%s\":10,\"%s\":\"12.50\",\"%s\":\"2001-02-03\",\"%s\":\"2026-01-31T12:00:00Z\","
                  "\"%s\":true,\"%s\":\"M\",\"%s\":[\"zh\",\"de\"],\"%s\":\"https://example.com/a?b\","
                  "\"%s\":\"a@example.com\",\"%s\":\"+86 10 1234 5678\",\"free_form\":{\"any\":1}}",
                  kt, kn, kd, kdate, ktime, kb, ke, km, ku, kmail, kp));
    expect_status(r, 201);
    long long id = jint(r->json, "id");
    const char *ext = uniq("cfx");

    /* Merge patch, upsert and bulk are checked the same way. */
    r = http_patch(REP1, fmt("/v1/customers/%lld", id), fmt("{\"attrs\":{\"%s\":-1}}", kn), NULL);
    expect_status(r, 422);
    expect_error(r, fmt("attrs.%s", kn), "out_of_range");
    r = http_patch(REP1, fmt("/v1/customers/%lld", id), fmt("{\"attrs\":{\"%s\":null,\"%s\":2}}", kt, kn), NULL);
    expect_status(r, 200);
    r = http_put(REP1, xpath(ext), fmt("{\"kind\":\"person\",\"name\":\"U\",\"attrs\":{\"%s\":\"XS\"}}", ke), NULL);
    expect_status(r, 422);
    expect_error(r, fmt("attrs.%s", ke), "invalid_value");
    r = call_as(REP1, "POST", "/v1/customers/bulk", JSON_T,
                fmt("[{\"external_id\":\"%s\",\"kind\":\"person\",\"name\":\"B\"},"
                    "{\"external_id\":\"%s-2\",\"kind\":\"person\",\"name\":\"B\",\"attrs\":{\"%s\":\"maybe\"}}]",
                    ext, ext, kb),
                NULL, NULL);
    expect_status(r, 422);
    expect_error(r, fmt("[1].attrs.%s", kb), "invalid_type");
    ck_assert_int_eq(sql_ll("SELECT count(*) FROM customers WHERE external_id LIKE '%s%%'", ext), 0);

    /* A deleted definition checks nothing any more. */
    r = http_delete(ADMIN, fmt("/v1/custom-fields/%lld", ids[5]), NULL);
    expect_status(r, 204);
    r = customer_with(REP1, fmt("{\"%s\":\"maybe\"}", kb));
    expect_status(r, 201);
}
END_TEST

START_TEST(a_required_field_is_required_on_create)
{
    const char *k = key("region");
    long long id = define("contacts", k, "\"type\":\"text\",\"required\":true");
    th_resp_t *c = http_post(DIRECTOR, "/v1/customers", "{\"kind\":\"company\",\"name\":\"Req\"}");
    expect_status(c, 201);
    long long cust = jint(c->json, "id");
    th_resp_t *r = http_post(DIRECTOR, "/v1/contacts", fmt("{\"customer_id\":%lld,\"last_name\":\"A\"}", cust));
    expect_status(r, 422);
    expect_error(r, fmt("attrs.%s", k), "required");
    r = http_post(DIRECTOR, "/v1/contacts",
                  fmt("{\"customer_id\":%lld,\"last_name\":\"A\",\"attrs\":{\"%s\":\"north\"}}", cust, k));
    expect_status(r, 201);
    long long ct = jint(r->json, "id");
    /* Records made before the field was required still change: only creating needs the key. */
    r = http_patch(DIRECTOR, fmt("/v1/contacts/%lld", ct), fmt("{\"attrs\":{\"%s\":null}}", k), NULL);
    expect_status(r, 200);
    r = http_delete(ADMIN, fmt("/v1/custom-fields/%lld", id), NULL);
    expect_status(r, 204);
    r = http_post(DIRECTOR, "/v1/contacts", fmt("{\"customer_id\":%lld,\"last_name\":\"B\"}", cust));
    expect_status(r, 201);
}
END_TEST

static Suite *custom_fields_suite(void)
{
    Suite *s = suite_create("custom_fields");
    TCase *tc = tcase_create("definitions");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, administrators_define_everyone_reads);
    tcase_add_test(tc, definitions_are_checked);
    suite_add_tcase(s, tc);

    tc = tcase_create("values");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, writes_are_checked_against_the_definitions);
    tcase_add_test(tc, a_required_field_is_required_on_create);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return crew_main(&conf, custom_fields_suite);
}
