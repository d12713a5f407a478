/*
 * tests/integration/merge_test.c - GET /v1/customers|contacts/{id}/duplicates
 * and POST /v1/customers|contacts/{id}/merge against the real API,
 * PostgreSQL and Redis.
 *
 * Duplicates: the same e-mail whatever its case and spaces, the same phone
 * number however it was written (read as E.164 in the default region), a
 * similar name only within the same city (contacts: the same customer),
 * ranked by score, only among the records the caller may read; the
 * statements the API runs use the indexes (EXPLAIN on the statement text
 * the API itself generates, over tens of thousands of rows).
 * Merges: children (contacts, orders), attachments and references move to
 * the survivor in one transaction, the survivor takes the chosen values,
 * the merged records answer 404 with merged_into, their tombstones in the
 * feeds carry it, every touched record has a history entry of the merge's
 * request; records outside the caller's scope are 404 or 403 with nothing
 * changed.
 *
 * crew_main() (tests/support/crew.c) builds the suite's database, adds one
 * user per role, starts one API process and logs every user in once; Check
 * forks each test. Each test makes its own records, with names, e-mails,
 * phone numbers and cities unique to it, so tests never see each other's
 * duplicates. Everything allocated stays reachable (keep()).
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>
#include <ctype.h>
#include <libpq-fe.h>

#include "api/engine.h"
#include "api/merge_db.h"
#include "api/resources.h"
#include "common/phone.h"
#include "tests/support/crew.h"

static const char *const api_env[] = {
    "CLIENTELE_THREADS=2",
    "CLIENTELE_DB_TIMEOUT=20s",
    "CLIENTELE_JWT_SECRET=merge-suite-secret-0123456789abcdefghijkl",
    NULL,
};

static const crew_conf_t conf = {
    .name = "merge",
    .redis_db = 3,
    .env = api_env,
    .password = "merge-suite-password",
    .domain = "merge.test",
    .resource = "customers",
    .item = "customer",
};

/* --- records ------------------------------------------------------------------------ */

static const char *cpath(long long id)
{
    return fmt("/v1/customers/%lld", id);
}

/* Eight digits no other test uses: the process id and a counter. */
static const char *digits8(void)
{
    static int n;
    return fmt("%05d%03d", (int)(getpid() % 100000), n++ % 1000);
}

/* A customer owned by `owner`, created by the director from the members of `body` (JSON text); its id. */
static long long make(int owner, const char *body)
{
    json_t *b = jparse(body);
    json_object_set_new(b, "owner_id", json_integer(users[owner].id));
    if (json_object_get(b, "kind") == NULL)
        json_object_set_new(b, "kind", json_string("company"));
    th_resp_t *r = http_post(DIRECTOR, "/v1/customers", jdump(b));
    expect_status(r, 201);
    return jint(r->json, "id");
}

static long long make_contact(long long customer, const char *body)
{
    th_resp_t *r = http_post(DIRECTOR, fmt("/v1/customers/%lld/contacts", customer), body);
    expect_status(r, 201);
    return jint(r->json, "id");
}

static long long make_order(long long customer)
{
    th_resp_t *r =
        http_post(DIRECTOR, "/v1/orders",
                  fmt("{\"customer_id\":%lld,\"ordered_at\":\"2026-01-05T10:00:00Z\",\"status\":\"completed\","
                      "\"currency\":\"CNY\",\"total\":\"880.00\"}",
                      customer));
    expect_status(r, 201);
    return jint(r->json, "id");
}

/* GET .../duplicates as who; asserts 200 and returns data. */
static json_t *duplicates(int who, const char *coll, long long id)
{
    th_resp_t *r = http_get(who, fmt("/v1/%s/%lld/duplicates?limit=50", coll, id));
    expect_status(r, 200);
    json_t *data = jget(r, "data");
    ck_assert(json_is_array(data));
    return data;
}

static json_t *candidate(json_t *data, long long id)
{
    json_t *c;
    size_t i;
    json_array_foreach(data, i, c) if (jint(c, "id") == id) return c;
    return NULL;
}

/* The score of a candidate's reason, or -1 when it has none of that name. */
static double reason(json_t *cand, const char *name)
{
    json_t *x;
    size_t i;
    json_array_foreach(json_object_get(cand, "reasons"), i,
                       x) if (strcmp(jstr(x, "reason"), name) ==
                              0) return json_number_value(json_object_get(x, "score"));
    return -1;
}

static th_resp_t *merge(int who, const char *coll, long long survivor, const char *body, const char *etag)
{
    return call_as(who, "POST", fmt("/v1/%s/%lld/merge", coll, survivor), JSON_T, body, if_match(etag), NULL);
}

/* --- 1. duplicates -------------------------------------------------------------------------- */

START_TEST(duplicates_find_email_phone_and_similar_names)
{
    const char *u = uniq("d"), *city = fmt("Shanghai %s", u), *tel = digits8();
    long long me = make(REP1, fmt("{\"name\":\"Huaxin Trading Co., Ltd. %s\",\"email\":\"sales.%s@huaxin.cn\","
                                  "\"phone\":\"021-%s\",\"address\":{\"city\":\"%s\"}}",
                                  u, u, tel, city));
    /* The same address in capitals, and the same number in international form: both reasons. */
    long long both =
        make(REP1, fmt("{\"name\":\"HX %s\",\"email\":\"SALES.%s@Huaxin.CN\",\"phone\":\"+86 21 %s\"}", u, u, tel));
    /* The same number written with the international prefix and the trunk zero kept. */
    long long phone = make(REP1, fmt("{\"name\":\"Other %s\",\"phone\":\"0086 (021) %s\"}", u, tel));
    /* The same name in another legal form, in the same city in capitals; and a misspelt one. */
    char *upper = keep(strdup(city));
    for (char *c = upper; *c != '\0'; c++)
        *c = (char)toupper((unsigned char)*c);
    long long similar =
        make(REP1, fmt("{\"name\":\"huaxin trading company %s\",\"address\":{\"city\":\"%s\"}}", u, upper));
    long long typo = make(REP1, fmt("{\"name\":\"Huaxin Tradng %s\",\"address\":{\"city\":\"%s\"}}", u, city));
    /* Not duplicates: the same name elsewhere, another name here, another number, a deleted twin. */
    long long elsewhere =
        make(REP1, fmt("{\"name\":\"Huaxin Trading Co., Ltd. %s\",\"address\":{\"city\":\"Beijing %s\"}}", u, u));
    long long other =
        make(REP1, fmt("{\"name\":\"Golden Dragon Restaurant %s\",\"address\":{\"city\":\"%s\"}}", u, city));
    long long number = make(REP1, fmt("{\"name\":\"N %s\",\"phone\":\"021-%s\"}", u, digits8()));
    long long gone = make(REP1, fmt("{\"name\":\"G %s\",\"email\":\"sales.%s@huaxin.cn\"}", u, u));
    expect_status(http_delete(DIRECTOR, cpath(gone), NULL), 204);

    json_t *data = duplicates(DIRECTOR, "customers", me);
    json_t *b = candidate(data, both), *p = candidate(data, phone), *s = candidate(data, similar);
    ck_assert_msg(b != NULL && p != NULL && s != NULL, "missing candidates in %s", jdump(json_incref(data)));
    ck_assert(reason(b, "email") == 0.9 && reason(b, "phone") == 0.8 && reason(b, "name") < 0);
    ck_assert_msg(json_number_value(json_object_get(b, "score")) == 0.98, "score %s", jdump(json_incref(b)));
    ck_assert(reason(p, "phone") == 0.8 && reason(p, "email") < 0);
    /* Names compare without their legal form ("Co., Ltd." and "company" are the same company). */
    ck_assert(reason(s, "name") == 1 && json_number_value(json_object_get(s, "score")) == 1);
    json_t *t = candidate(data, typo);
    ck_assert_msg(t != NULL, "misspelt name not found: %s", jdump(json_incref(data)));
    double sim = reason(t, "name");
    ck_assert_msg(sim > 0.6 && sim < 1, "similarity %f", sim);
    ck_assert(json_number_value(json_object_get(t, "score")) == sim);
    /* The candidate is shown as a read shows it. */
    ck_assert_int_eq(jint(json_object_get(b, "record"), "id"), both);
    ck_assert_str_eq(jstr(json_object_get(b, "record"), "email"), fmt("SALES.%s@Huaxin.CN", u));
    long long nots[] = {me, elsewhere, other, number, gone};
    for (size_t i = 0; i < sizeof(nots) / sizeof(nots[0]); i++)
        ck_assert_msg(candidate(data, nots[i]) == NULL, "%lld is not a duplicate of %lld", nots[i], me);
    /* Best first: the same name, then both e-mail and phone, then the phone alone and the misspelt name by score. */
    ck_assert_int_eq(json_array_size(data), 4);
    ck_assert_int_eq(jint(json_array_get(data, 0), "id"), similar);
    ck_assert_int_eq(jint(json_array_get(data, 1), "id"), both);
    for (size_t i = 1; i < json_array_size(data); i++)
        ck_assert(json_number_value(json_object_get(json_array_get(data, i - 1), "score")) >=
                  json_number_value(json_object_get(json_array_get(data, i), "score")));
    /* limit= cuts the list from the top. */
    th_resp_t *r = http_get(DIRECTOR, fmt("/v1/customers/%lld/duplicates?limit=1", me));
    expect_status(r, 200);
    ck_assert_int_eq(json_array_size(jget(r, "data")), 1);
    ck_assert_int_eq(jint(json_array_get(jget(r, "data"), 0), "id"), similar);
    /* A record with nothing in common: an empty list. */
    ck_assert_int_eq(json_array_size(duplicates(DIRECTOR, "customers", other)), 0);
}
END_TEST

START_TEST(duplicates_read_phone_numbers_however_written)
{
    const char *u = uniq("p"), *tel = digits8();
    long long me = make(DIRECTOR, fmt("{\"name\":\"Me %s\",\"phone\":\"010 %s\"}", u, tel));
    /* Writers other than the API (imports, the ERP's database) store what they like. */
    const char *forms[] = {
        fmt("(010) %.4s-%s", tel, tel + 4),
        fmt("+86 10 %.4s %s", tel, tel + 4),
        fmt("+86 (0)10 %s", tel),
        fmt("+86 010 %s", tel),
        fmt("0086-10-%s", tel),
        fmt("10%s", tel),
        fmt("010-%s ext. 204", tel),
        fmt("010 %s#3", tel),
        /* Full-width digits and plus, as Chinese input methods type them. */
        fmt("\xEF\xBC\x8B\xEF\xBC\x98\xEF\xBC\x96 10 %s", tel),
    };
    long long ids[9];
    for (int i = 0; i < 9; i++) {
        char v[32];
        ck_assert_int_eq(th_sql_value(db_url,
                                      fmt("INSERT INTO customers (kind, name, phone, owner_id) VALUES ('company',"
                                          " 'Form %d %s', '%s', %lld) RETURNING id",
                                          i, u, forms[i], users[DIRECTOR].id),
                                      v, sizeof(v)),
                         0);
        ids[i] = atoll(v);
    }
    /* Not the same number: other digits, another area, a mobile. */
    long long no1 = make(DIRECTOR, fmt("{\"name\":\"No1 %s\",\"phone\":\"021 %s\"}", u, tel));
    long long no2 = make(DIRECTOR, fmt("{\"name\":\"No2 %s\",\"phone\":\"010 %s9\"}", u, tel));
    json_t *data = duplicates(DIRECTOR, "customers", me);
    for (int i = 0; i < 9; i++)
        ck_assert_msg(candidate(data, ids[i]) != NULL && reason(candidate(data, ids[i]), "phone") == 0.8,
                      "\"%s\" is the number of %lld (010 %s): %s", forms[i], me, tel, jdump(json_incref(data)));
    ck_assert_ptr_null(candidate(data, no1));
    ck_assert_ptr_null(candidate(data, no2));
    /* And the other way round: from a record written in a foreign form, the API's own finds it. */
    ck_assert_ptr_nonnull(candidate(duplicates(DIRECTOR, "customers", ids[8]), me));
    ck_assert_ptr_nonnull(candidate(duplicates(DIRECTOR, "customers", ids[6]), ids[2]));
}
END_TEST

/* The region is the API's configuration: the same numbers match or not depending on it. */
START_TEST(duplicates_read_national_numbers_in_the_configured_region)
{
    const char *u = uniq("r");
    const char *line = fmt("%.4s", digits8() + 4);
    long long us_national = make(DIRECTOR, fmt("{\"name\":\"A %s\",\"phone\":\"(415) 555-%s\"}", u, line));
    long long intl = make(DIRECTOR, fmt("{\"name\":\"B %s\",\"phone\":\"+1 415 555 %s\"}", u, line));
    /* In China (the default), (415) 555-xxxx is a Chinese number. */
    ck_assert_ptr_null(candidate(duplicates(DIRECTOR, "customers", us_national), intl));
    /* An API configured for the United States reads it as +1 415 555 xxxx. */
    const char *env[] = {"CLIENTELE_THREADS=1", "CLIENTELE_JWT_SECRET=merge-suite-secret-0123456789abcdefghijkl",
                         "CLIENTELE_PHONE_REGION=US", NULL};
    th_api_t us;
    th_api_start(&us, db_url, th_redis_url(conf.redis_db), env);
    char auth[2200];
    const char *h[] = {th_bearer(users[DIRECTOR].token, auth, sizeof(auth)), NULL};
    th_resp_t resp;
    ck_assert_int_eq(th_http(us.port, "GET", fmt("/v1/customers/%lld/duplicates", us_national), h, NULL, 0, &resp), 0);
    ck_assert_int_eq(resp.status, 200);
    json_t *data = json_object_get(resp.json, "data");
    ck_assert_msg(json_array_size(data) == 1 && jint(json_array_get(data, 0), "id") == intl, "%s", resp.body);
    th_resp_free(&resp);
    ck_assert_int_eq(th_api_stop(&us, SIGTERM, 20), 0);
}
END_TEST

START_TEST(duplicates_are_only_the_records_the_caller_reads)
{
    const char *u = uniq("s"), *mail = fmt("buyer.%s@example.cn", u);
    long long mine = make(REP1, fmt("{\"name\":\"Mine %s\",\"email\":\"%s\"}", u, mail));
    long long mine2 = make(REP1, fmt("{\"name\":\"Mine too %s\",\"email\":\"%s\"}", u, mail));
    long long team = make(REP2, fmt("{\"name\":\"Team %s\",\"email\":\"%s\"}", u, mail));
    long long south = make(REPS, fmt("{\"name\":\"South %s\",\"email\":\"%s\"}", u, mail));
    json_t *d = duplicates(REP1, "customers", mine);
    ck_assert_msg(json_array_size(d) == 1 && candidate(d, mine2) != NULL, "rep: %s", jdump(json_incref(d)));
    d = duplicates(MANAGER, "customers", mine);
    ck_assert(json_array_size(d) == 2 && candidate(d, mine2) && candidate(d, team) && !candidate(d, south));
    d = duplicates(DIRECTOR, "customers", mine);
    ck_assert(json_array_size(d) == 3 && candidate(d, south));
    d = duplicates(ANALYST, "customers", mine);
    ck_assert_int_eq(json_array_size(d), 3);
    /* Another rep's record is not there for REP1. */
    expect_problem(http_get(REP1, fmt("/v1/customers/%lld/duplicates", team)), 404, "not-found");
    expect_problem(http_get(REP1, "/v1/customers/999999999/duplicates"), 404, "not-found");
}
END_TEST

START_TEST(duplicates_refuse_bad_queries)
{
    long long me = make(DIRECTOR, fmt("{\"name\":\"Q %s\"}", uniq("q")));
    th_resp_t *r = http_get(DIRECTOR, fmt("/v1/customers/%lld/duplicates?limit=0", me));
    expect_problem(r, 400, "bad-request");
    expect_error(r, "limit", "out_of_range");
    expect_problem(http_get(DIRECTOR, fmt("/v1/customers/%lld/duplicates?limit=51", me)), 400, "bad-request");
    r = http_get(DIRECTOR, fmt("/v1/customers/%lld/duplicates?sort=name", me));
    expect_problem(r, 400, "bad-request");
    expect_error(r, "sort", "unknown_parameter");
    expect_problem(http_get(-1, fmt("/v1/customers/%lld/duplicates", me)), 401, "unauthenticated");
    expect_problem(http_get(DIRECTOR, "/v1/customers/abc/duplicates"), 404, "not-found");
}
END_TEST

START_TEST(duplicates_of_contacts)
{
    const char *u = uniq("k"), *mob = digits8();
    long long cust = make(DIRECTOR, fmt("{\"name\":\"Acme %s\"}", u));
    long long other = make(DIRECTOR, fmt("{\"name\":\"Other %s\"}", u));
    long long me =
        make_contact(cust, jdump(json_pack("{s:s, s:s, s:s, s:s}", "first_name", "Wei", "last_name", fmt("Zhang %s", u),
                                           "email", fmt("w.%s@acme.cn", u), "mobile", fmt("138 %s", mob))));
    /* Same person, name swapped round: similar at the same customer. */
    long long swapped =
        make_contact(cust, jdump(json_pack("{s:s, s:s}", "first_name", fmt("Zhang %s", u), "last_name", "Wei")));
    /* Their mobile given as a landline phone elsewhere, and their e-mail at another customer. */
    long long phone =
        make_contact(other, jdump(json_pack("{s:s, s:s}", "last_name", "Li", "phone", fmt("+86 138%s", mob))));
    long long mail =
        make_contact(other, jdump(json_pack("{s:s, s:s}", "last_name", "Wang", "email", fmt("W.%s@ACME.cn", u))));
    /* The same name at another customer is another person. */
    long long namesake =
        make_contact(other, jdump(json_pack("{s:s, s:s}", "first_name", "Wei", "last_name", fmt("Zhang %s", u))));
    json_t *d = duplicates(DIRECTOR, "contacts", me);
    ck_assert_msg(candidate(d, swapped) && reason(candidate(d, swapped), "name") > 0.6, "%s", jdump(json_incref(d)));
    ck_assert(candidate(d, phone) && reason(candidate(d, phone), "phone") == 0.8);
    ck_assert(candidate(d, mail) && reason(candidate(d, mail), "email") == 0.9);
    ck_assert_ptr_null(candidate(d, namesake));
    ck_assert_int_eq(jint(json_object_get(candidate(d, phone), "record"), "customer_id"), other);
    /* Contacts follow their customer's scope. */
    expect_problem(http_get(REP1, fmt("/v1/contacts/%lld/duplicates", me)), 404, "not-found");
}
END_TEST

/* The SQL key of stored numbers and common/phone.c's agree, so the keys the API probes find what was stored. */
START_TEST(phone_keys_agree_with_the_database)
{
    const char *samples[] = {"+86 (0)10 1234-5678",
                             "010-12345678",
                             "  +1 415 555 0100",
                             "\xEF\xBC\x8B\xEF\xBC\x98\xEF\xBC\x96 1",
                             "021 6123 4567 ext 89",
                             "021 6123 4567 X 89",
                             "(0)21 6123",
                             "+((0)0)",
                             "tel: 138",
                             "+44 20 7946 0958;ext=2",
                             "0086,10",
                             "12345678901234567890123456789",
                             "",
                             "\xEF\xBC\x88"
                             "010\xEF\xBC\x89"
                             "1234"};
    PGconn *c = pg_open();
    for (size_t i = 0; i < sizeof(samples) / sizeof(samples[0]); i++) {
        char mine[PHONE_KEY_MAX];
        phone_key(samples[i], strlen(samples[i]), mine);
        const char *p[] = {samples[i]};
        PGresult *res = PQexecParams(c, "SELECT phone_key($1)", 1, NULL, p, NULL, NULL, 0);
        ck_assert_int_eq(PQresultStatus(res), PGRES_TUPLES_OK);
        ck_assert_msg(strcmp(PQgetvalue(res, 0, 0), mine) == 0, "\"%s\": SQL %s, C %s", samples[i],
                      PQgetvalue(res, 0, 0), mine);
        PQclear(res);
    }
    PQfinish(c);
}
END_TEST

/* The plan of a statement with parameters, as text. */
static const char *explain(PGconn *c, const char *sql, int n, const char *const *p)
{
    PGresult *res = PQexecParams(c, fmt("EXPLAIN %s", sql), n, NULL, p, NULL, NULL, 0);
    ck_assert_msg(PQresultStatus(res) == PGRES_TUPLES_OK, "EXPLAIN: %s", PQresultErrorMessage(res));
    size_t len = 0;
    for (int i = 0; i < PQntuples(res); i++)
        len += strlen(PQgetvalue(res, i, 0)) + 1;
    char *plan = keep(calloc(1, len + 1));
    for (int i = 0; i < PQntuples(res); i++)
        strcat(strcat(plan, PQgetvalue(res, i, 0)), "\n");
    PQclear(res);
    return plan;
}

/*
 * At tens of thousands of records the lookups the API generates probe
 * indexes only: the statement text is the API's own (api/merge_db.c, built
 * from the descriptions as the server builds it).
 */
START_TEST(duplicate_lookups_use_the_indexes)
{
    char err[256];
    engine_t *e = engine_build(engine_resources, err, sizeof(err));
    ck_assert_msg(e != NULL, "%s", err);
    merge_sql_t s;
    ck_assert_msg(merge_sql_build(&s, e, engine_resources, err, sizeof(err)) == 0, "%s", err);
    PGconn *c = pg_open();
    /* 40,000 customers in 400 cities, with e-mails, phones and two contacts each. */
    ck_assert_int_eq(pg_do(c, "INSERT INTO customers (kind, name, email, phone, address, owner_id)"
                              " SELECT 'company', 'Bench company ' || i,"
                              " 'bench' || i || '@bench.invalid', '0755 ' || (20000000 + i),"
                              " jsonb_build_object('city', 'Bench city ' || (i % 400)),"
                              " (SELECT id FROM users ORDER BY id LIMIT 1) FROM generate_series(1, 40000) i"),
                     0);
    ck_assert_int_eq(pg_do(c,
                           "INSERT INTO contacts (customer_id, first_name, last_name, email, phone, mobile)"
                           " SELECT c.id, 'First' || k, 'Last ' || c.id, 'ct' || c.id || '.' || k || '@bench.invalid',"
                           " '0755 3' || c.id, '139' || (10000000 + c.id * 2 + k)"
                           " FROM customers c, generate_series(1, 2) k WHERE c.email LIKE '%@bench.invalid'"),
                     0);
    ck_assert_int_eq(pg_do(c, "ANALYZE customers; ANALYZE contacts"), 0);
    char id[24], ct[24], uid[24];
    ck_assert_int_eq(
        th_sql_value(db_url, "SELECT id FROM customers WHERE email = 'bench20000@bench.invalid'", id, sizeof(id)), 0);
    ck_assert_int_eq(
        th_sql_value(db_url, fmt("SELECT min(id) FROM contacts WHERE customer_id = %s", id), ct, sizeof(ct)), 0);
    snprintf(uid, sizeof(uid), "%lld", users[DIRECTOR].id);
    /* The keys the API probes for this customer's number, as it computes them. */
    char e164[PHONE_E164_MAX], k[PHONE_KEYS_MAX][PHONE_KEY_MAX];
    ck_assert_int_eq(phone_e164("0755 20020000", 13, phone_region("CN"), e164), 0);
    int nk = phone_keys(e164, phone_region("CN"), k);
    char keys[256] = "{";
    for (int i = 0; i < nk; i++)
        snprintf(keys + strlen(keys), sizeof(keys) - strlen(keys), "%s%s", i ? "," : "", k[i]);
    strcat(keys, "}");
    const char *p[] = {uid, " all", id, keys, "10"};
    const char *plan = explain(c, merge_sql_duplicates(&s, &customers_resource), 5, p);
    ck_assert_msg(strstr(plan, "customers_email_key_idx") != NULL, "no e-mail index:\n%.3000s", plan);
    ck_assert_msg(strstr(plan, "customers_phone_key_idx") != NULL, "no phone index:\n%.3000s", plan);
    ck_assert_msg(strstr(plan, "customers_city_name_idx") != NULL, "no index of names by city:\n%.3000s", plan);
    ck_assert_msg(strstr(plan, "Seq Scan on customers") == NULL, "a scan of every customer:\n%.3000s", plan);
    const char *pc[] = {uid, " all", ct, "{+8613910000000}", "10"};
    plan = explain(c, merge_sql_duplicates(&s, &contacts_resource), 5, pc);
    ck_assert_msg(strstr(plan, "contacts_email_key_idx") != NULL && strstr(plan, "contacts_phone_key_idx") != NULL &&
                      strstr(plan, "contacts_mobile_key_idx") != NULL && strstr(plan, "contacts_customer_idx") != NULL,
                  "contacts:\n%.3000s", plan);
    ck_assert_msg(strstr(plan, "Seq Scan on contacts") == NULL, "a scan of every contact:\n%.3000s", plan);
    /* The first read of a lookup is by id. */
    plan = explain(c, merge_sql_phones(&s, &customers_resource), 3, p);
    ck_assert_msg(strstr(plan, "customers_pkey") != NULL, "%.3000s", plan);
    /* The same lookup through the API: only names of the same city (the e-mail and phone are nobody else's). */
    json_t *d = duplicates(DIRECTOR, "customers", atoll(id));
    for (size_t i = 0; i < json_array_size(d); i++)
        ck_assert(reason(json_array_get(d, i), "name") > 0.6 && reason(json_array_get(d, i), "phone") < 0);
    PQfinish(c);
    merge_sql_free(&s);
    engine_free(e);
}
END_TEST

/* --- 2. merges ----------------------------------------------------------------------------- */

/* Every change of a feed after *cursor (moves it). */
static json_t *changes(const char *feed, int who, const char **cursor)
{
    json_t *all = keep(json_array());
    for (int i = 0; i < 100; i++) {
        th_resp_t *r = http_get(who, fmt("%s?limit=1000&after=%s", feed, *cursor));
        expect_status(r, 200);
        json_t *data = jget(r, "data");
        *cursor = json_string_value(jget(r, "next_cursor"));
        if (json_array_size(data) == 0)
            return all;
        json_array_extend(all, data);
    }
    ck_abort_msg("feed did not end");
    return NULL;
}

static json_t *change_of(json_t *all, long long id)
{
    json_t *c, *found = NULL;
    size_t i;
    json_array_foreach(all, i, c) if (jint(c, "id") == id) found = c; /* the last one */
    return found;
}

/* The newest history entry of a record. */
static json_t *last_entry(const char *coll, long long id)
{
    th_resp_t *r = http_get(DIRECTOR, fmt("/v1/%s/%lld/history?limit=1", coll, id));
    expect_status(r, 200);
    return json_array_get(jget(r, "data"), 0);
}

static json_t *change_entry(json_t *entry, const char *field)
{
    json_t *c;
    size_t i;
    json_array_foreach(json_object_get(entry, "changes"), i, c) if (strcmp(jstr(c, "field"), field) == 0) return c;
    return NULL;
}

START_TEST(merge_moves_children_and_leaves_tombstones)
{
    const char *u = uniq("m");
    const char *cust_feed = feed_head_of("/v1/changes/customers", DIRECTOR);
    const char *ct_feed = feed_head_of("/v1/changes/contacts", DIRECTOR);
    const char *ord_feed = feed_head_of("/v1/changes/orders", DIRECTOR);
    long long s = make(REP1, fmt("{\"name\":\"Huaxin %s\",\"external_id\":\"ERP-%s\",\"status\":\"customer\"}", u, u));
    long long m1 = make(REP1, fmt("{\"name\":\"Huaxin Trading %s\",\"email\":\"sales.%s@huaxin.cn\","
                                  "\"tags\":[\"key_account\"],\"external_id\":\"CRM-%s\"}",
                                  u, u, u));
    long long m2 = make(REP1, fmt("{\"name\":\"HX %s\",\"phone\":\"021-%s\"}", u, digits8()));
    long long boss = make_contact(m1, "{\"last_name\":\"Zhang\",\"is_primary\":true}");
    long long aide = make_contact(m1, fmt("{\"last_name\":\"Li\",\"reports_to_id\":%lld}", boss));
    long long o1 = make_order(m1), o2 = make_order(m1), o3 = make_order(m2);
    th_resp_t *r = call_as(DIRECTOR, "POST", fmt("/v1/customers/%lld/attachments", m1), "text/plain", "signed contract",
                           "Content-Disposition: attachment; filename=\"contract.txt\"", NULL);
    expect_status(r, 201);
    long long att = jint(r->json, "id");

    r = merge(REP1, "customers", s,
              fmt("{\"merge_ids\":[%lld,%lld],\"fields\":{\"email\":%lld,\"phone\":%lld,"
                  "\"tags\":%lld}}",
                  m1, m2, m1, m2, m1),
              NULL);
    expect_status(r, 200);
    const char *req = header(r, "x-request-id");
    json_t *sur = jget(r, "survivor");
    ck_assert_int_eq(jint(sur, "id"), s);
    ck_assert_str_eq(jstr(sur, "name"), fmt("Huaxin %s", u)); /* not chosen: the survivor's own */
    ck_assert_str_eq(jstr(sur, "email"), fmt("sales.%s@huaxin.cn", u));
    ck_assert_ptr_nonnull(jstr(sur, "phone"));
    ck_assert_str_eq(json_string_value(json_array_get(json_object_get(sur, "tags"), 0)), "key_account");
    ck_assert_str_eq(jstr(sur, "external_id"), fmt("ERP-%s", u));
    ck_assert_str_eq(header(r, "etag"), fmt("\"%lld\"", jint(sur, "version")));
    json_t *moved = jget(r, "moved");
    ck_assert_int_eq(jint(moved, "orders"), 3);
    ck_assert_int_eq(jint(moved, "contacts"), 2);
    ck_assert_int_eq(jint(moved, "attachments"), 1);
    ck_assert_int_eq(json_array_size(jget(r, "merged_ids")), 2);

    /* The merged customers are gone, naming the survivor. */
    long long merged[] = {m1, m2};
    for (int i = 0; i < 2; i++) {
        r = http_get(REP1, cpath(merged[i]));
        expect_problem(r, 404, "not-found");
        ck_assert_int_eq(jint(r->json, "merged_into"), s);
        ck_assert_int_eq(is_deleted(merged[i]), 1);
    }
    /* Someone who could never read them learns nothing. */
    r = http_get(REPS, cpath(m1));
    expect_problem(r, 404, "not-found");
    ck_assert_ptr_null(jget(r, "merged_into"));
    /* A customer deleted the ordinary way names nobody. */
    long long plain = make(REP1, fmt("{\"name\":\"Plain %s\"}", u));
    expect_status(http_delete(REP1, cpath(plain), NULL), 204);
    ck_assert_ptr_null(jget(http_get(REP1, cpath(plain)), "merged_into"));

    /* Children are the survivor's: its contacts (the org chart and the one primary kept) and its orders. */
    r = http_get(REP1, fmt("/v1/customers/%lld/contacts", s));
    expect_status(r, 200);
    ck_assert_int_eq(json_array_size(jget(r, "data")), 2);
    r = http_get(REP1, fmt("/v1/contacts/%lld", boss));
    ck_assert(jint(r->json, "customer_id") == s && json_is_true(json_object_get(r->json, "is_primary")));
    r = http_get(REP1, fmt("/v1/contacts/%lld", aide));
    ck_assert(jint(r->json, "customer_id") == s && jint(r->json, "reports_to_id") == boss);
    long long orders[] = {o1, o2, o3};
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(jint(http_get(REP1, fmt("/v1/orders/%lld", orders[i]))->json, "customer_id"), s);
    r = http_get(REP1, fmt("/v1/customers/%lld/attachments", s));
    ck_assert_int_eq(jint(json_array_get(jget(r, "data"), 0), "id"), att);
    expect_status(http_get(REP1, fmt("/v1/attachments/%lld", att)), 200);

    /* History: every touched record has an entry of this request. */
    json_t *h = last_entry("customers", s);
    ck_assert_str_eq(jstr(h, "request_id"), req);
    ck_assert_str_eq(jstr(h, "op"), "update");
    ck_assert_str_eq(jstr(change_entry(h, "email"), "new"), fmt("sales.%s@huaxin.cn", u));
    for (int i = 0; i < 2; i++) {
        h = last_entry("customers", merged[i]);
        ck_assert(strcmp(jstr(h, "request_id"), req) == 0 && strcmp(jstr(h, "op"), "delete") == 0);
    }
    h = last_entry("contacts", aide);
    ck_assert_str_eq(jstr(h, "request_id"), req);
    ck_assert_int_eq(json_integer_value(json_object_get(change_entry(h, "customer_id"), "old")), m1);
    ck_assert_int_eq(json_integer_value(json_object_get(change_entry(h, "customer_id"), "new")), s);
    h = last_entry("orders", o3);
    ck_assert_str_eq(jstr(h, "request_id"), req);
    ck_assert_int_eq(json_integer_value(json_object_get(change_entry(h, "customer_id"), "new")), s);

    /* Feeds: tombstones carry merged_into and the external id integrators know; children are updates. */
    json_t *all = changes("/v1/changes/customers", DIRECTOR, &cust_feed);
    json_t *t = change_of(all, m1);
    expect_change(t, "delete", m1);
    ck_assert_int_eq(jint(t, "merged_into"), s);
    ck_assert_str_eq(jstr(t, "external_id"), fmt("CRM-%s", u));
    ck_assert_int_eq(jint(change_of(all, m2), "merged_into"), s);
    expect_change(change_of(all, s), "update", s);
    ck_assert_ptr_null(json_object_get(change_of(all, plain), "merged_into"));
    all = changes("/v1/changes/contacts", DIRECTOR, &ct_feed);
    expect_change(change_of(all, aide), "update", aide);
    ck_assert_int_eq(jint(json_object_get(change_of(all, aide), "data"), "customer_id"), s);
    all = changes("/v1/changes/orders", DIRECTOR, &ord_feed);
    expect_change(change_of(all, o3), "update", o3);

    /* A merged customer cannot be merged again, nor take part in another merge. */
    expect_problem(merge(REP1, "customers", m1, fmt("{\"merge_ids\":[%lld]}", plain), NULL), 404, "not-found");
    r = merge(REP1, "customers", s, fmt("{\"merge_ids\":[%lld]}", m2), NULL);
    expect_problem(r, 404, "not-found");
    ck_assert_ptr_nonnull(strstr(jstr(r->json, "detail"), fmt("%lld", m2)));
}
END_TEST

START_TEST(merge_keeps_the_merged_primary_when_the_survivor_has_none)
{
    const char *u = uniq("pr");
    long long s = make(DIRECTOR, fmt("{\"name\":\"S %s\"}", u)), m1 = make(DIRECTOR, fmt("{\"name\":\"M1 %s\"}", u));
    long long m2 = make(DIRECTOR, fmt("{\"name\":\"M2 %s\"}", u));
    long long s_other = make_contact(s, "{\"last_name\":\"Not primary\"}");
    long long p2 = make_contact(m2, "{\"last_name\":\"P2\",\"is_primary\":true}");
    long long p1 = make_contact(m1, "{\"last_name\":\"P1\",\"is_primary\":true}");
    /* The first of merge_ids with a primary contact gives the survivor its primary. */
    expect_status(merge(DIRECTOR, "customers", s, fmt("{\"merge_ids\":[%lld,%lld]}", m2, m1), NULL), 200);
    ck_assert(json_is_true(json_object_get(http_get(DIRECTOR, fmt("/v1/contacts/%lld", p2))->json, "is_primary")));
    ck_assert(json_is_false(json_object_get(http_get(DIRECTOR, fmt("/v1/contacts/%lld", p1))->json, "is_primary")));
    ck_assert(
        json_is_false(json_object_get(http_get(DIRECTOR, fmt("/v1/contacts/%lld", s_other))->json, "is_primary")));
    ck_assert_int_eq(sql_ll("SELECT count(*) FROM contacts WHERE customer_id = %lld AND is_primary"
                            " AND deleted_at IS NULL",
                            s),
                     1);
}
END_TEST

/* The state a refused merge must leave: versions, liveness, children. */
static const char *state(long long s, long long m)
{
    char v[256];
    ck_assert_int_eq(
        th_sql_value(db_url,
                     fmt("SELECT string_agg(id || ':' || version || ':' || (deleted_at IS NULL), ',' ORDER BY"
                         " id) || '/' || (SELECT count(*) FROM contacts WHERE customer_id = %lld) || '/' ||"
                         " (SELECT count(*) FROM orders WHERE customer_id = %lld) FROM customers"
                         " WHERE id IN (%lld, %lld)",
                         s, s, s, m),
                     v, sizeof(v)),
        0);
    return fmt("%s", v);
}

START_TEST(merge_outside_the_callers_scope_changes_nothing)
{
    const char *u = uniq("x");
    long long s = make(REP1, fmt("{\"name\":\"S %s\"}", u)), mine = make(REP1, fmt("{\"name\":\"Mine %s\"}", u));
    long long team = make(REP2, fmt("{\"name\":\"Team %s\"}", u)),
              south = make(REPS, fmt("{\"name\":\"South %s\"}", u));
    make_contact(team, "{\"last_name\":\"T\"}");
    make_order(south);
    const char *before_team = state(s, team), *before_south = state(s, south);
    /* A rep does not see a teammate's customer: 404 naming it, nothing merged. */
    th_resp_t *r = merge(REP1, "customers", s, fmt("{\"merge_ids\":[%lld,%lld]}", mine, team), NULL);
    expect_problem(r, 404, "not-found");
    ck_assert_ptr_nonnull(strstr(jstr(r->json, "detail"), fmt("%lld", team)));
    ck_assert_str_eq(state(s, team), before_team);
    ck_assert_int_eq(is_deleted(mine), 0);
    /* Nor can a rep merge into a survivor that is not theirs. */
    expect_problem(merge(REP1, "customers", team, fmt("{\"merge_ids\":[%lld]}", mine), NULL), 404, "not-found");
    /* A manager sees the team, not the south. */
    expect_problem(merge(MANAGER, "customers", s, fmt("{\"merge_ids\":[%lld]}", south), NULL), 404, "not-found");
    ck_assert_str_eq(state(s, south), before_south);
    /* The analyst reads everything and changes nothing: 403. */
    r = merge(ANALYST, "customers", s, fmt("{\"merge_ids\":[%lld]}", team), NULL);
    expect_problem(r, 403, "forbidden");
    ck_assert_str_eq(state(s, team), before_team);
    /* The manager merges within the team. */
    expect_status(merge(MANAGER, "customers", s, fmt("{\"merge_ids\":[%lld]}", team), NULL), 200);
    ck_assert_int_eq(is_deleted(team), 1);
}
END_TEST

START_TEST(merge_refuses_bad_bodies)
{
    long long s = make(DIRECTOR, fmt("{\"name\":\"B %s\"}", uniq("b"))), m = make(DIRECTOR, "{\"name\":\"B2\"}");
    struct {
        const char *body, *field, *code;
    } cases[] = {
        {"{}", "merge_ids", "required"},
        {"{\"merge_ids\":[]}", "merge_ids", "invalid_length"},
        {"{\"merge_ids\":\"1,2\"}", "merge_ids", "invalid_type"},
        {"{\"merge_ids\":[0]}", "merge_ids[0]", "invalid_type"},
        {"{\"merge_ids\":[1.5]}", "merge_ids[0]", "invalid_type"},
        {fmt("{\"merge_ids\":[%lld]}", s), "merge_ids[0]", "duplicate"},
        {fmt("{\"merge_ids\":[%lld,%lld]}", m, m), "merge_ids[1]", "duplicate"},
        {fmt("{\"merge_ids\":[%lld],\"why\":1}", m), "why", "unknown_field"},
        {fmt("{\"merge_ids\":[%lld],\"fields\":[]}", m), "fields", "invalid_type"},
        {fmt("{\"merge_ids\":[%lld],\"fields\":{\"colour\":%lld}}", m, m), "fields.colour", "unknown_field"},
        {fmt("{\"merge_ids\":[%lld],\"fields\":{\"owner_id\":%lld}}", m, m), "fields.owner_id", "read_only"},
        {fmt("{\"merge_ids\":[%lld],\"fields\":{\"external_id\":%lld}}", m, m), "fields.external_id", "read_only"},
        {fmt("{\"merge_ids\":[%lld],\"fields\":{\"analytics\":%lld}}", m, m), "fields.analytics", "read_only"},
        {fmt("{\"merge_ids\":[%lld],\"fields\":{\"email\":12345678901}}", m), "fields.email", "invalid_value"},
        {fmt("{\"merge_ids\":[%lld],\"fields\":{\"email\":\"x\"}}", m), "fields.email", "invalid_type"},
    };
    const char *before = state(s, m);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        th_resp_t *r = merge(DIRECTOR, "customers", s, cases[i].body, NULL);
        expect_status_msg(r, 422, "%s", cases[i].body);
        expect_error(r, cases[i].field, cases[i].code);
    }
    char big[2048] = "{\"merge_ids\":[";
    for (int i = 1; i <= 51; i++)
        snprintf(big + strlen(big), sizeof(big) - strlen(big), "%s%d", i > 1 ? "," : "", 1000000 + i);
    strcat(big, "]}");
    expect_error(merge(DIRECTOR, "customers", s, big, NULL), "merge_ids", "invalid_length");
    expect_problem(merge(DIRECTOR, "customers", s, "[1]", NULL), 422, "validation-failed");
    expect_problem(merge(DIRECTOR, "customers", s, "{", NULL), 400, "bad-request");
    expect_problem(call_as(DIRECTOR, "POST", fmt("/v1/customers/%lld/merge", s), "text/plain", "{}", NULL, NULL), 415,
                   "unsupported-media-type");
    expect_problem(merge(-1, "customers", s, fmt("{\"merge_ids\":[%lld]}", m), NULL), 401, "unauthenticated");
    ck_assert_str_eq(state(s, m), before);
}
END_TEST

START_TEST(merge_honours_if_match)
{
    long long s = make(DIRECTOR, fmt("{\"name\":\"E %s\"}", uniq("e"))), m = make(DIRECTOR, "{\"name\":\"E2\"}");
    const char *etag = header(http_get(DIRECTOR, cpath(s)), "etag");
    expect_status(http_patch(DIRECTOR, cpath(s), "{\"industry\":\"retail\"}", NULL), 200);
    expect_problem(merge(DIRECTOR, "customers", s, fmt("{\"merge_ids\":[%lld]}", m), etag), 412, "precondition-failed");
    ck_assert_int_eq(is_deleted(m), 0);
    etag = header(http_get(DIRECTOR, cpath(s)), "etag");
    expect_status(merge(DIRECTOR, "customers", s, fmt("{\"merge_ids\":[%lld]}", m), etag), 200);
}
END_TEST

/* A rep's customer filed under another team: merging would take its children out of that team. */
START_TEST(merge_keeps_records_in_their_team)
{
    const char *u = uniq("t");
    long long s = make(REP1, fmt("{\"name\":\"S %s\"}", u));
    long long m = make(REP1, fmt("{\"name\":\"M %s\",\"team_id\":%lld}", u, team_south));
    make_order(m);
    th_resp_t *r = merge(REP1, "customers", s, fmt("{\"merge_ids\":[%lld]}", m), NULL);
    expect_problem(r, 403, "forbidden");
    ck_assert_int_eq(is_deleted(m), 0);
    ck_assert_int_eq(sql_ll("SELECT count(*) FROM orders WHERE customer_id = %lld", m), 1);
    /* The director may. */
    expect_status(merge(DIRECTOR, "customers", s, fmt("{\"merge_ids\":[%lld]}", m), NULL), 200);
}
END_TEST

/* Moving a customer's orders is an update of orders: a role that may not update them may not merge. */
START_TEST(merge_needs_the_right_to_move_the_children)
{
    const char *u = uniq("o");
    th_resp_t *r = http_post(ADMIN, "/v1/roles",
                             fmt("{\"name\":\"cleaner_%d\",\"permissions\":{\"customers\":{\"read\":\"all\","
                                 "\"update\":\"all\"},\"contacts\":{\"read\":\"all\",\"update\":\"all\"},"
                                 "\"orders\":{\"read\":\"all\"}}}",
                                 (int)getpid()));
    expect_status(r, 201);
    const char *email = fmt("cleaner.%s@merge.test", u);
    r = http_post(ADMIN, "/v1/users",
                  fmt("{\"email\":\"%s\",\"name\":\"Cleaner\",\"password\":\"cleaner-password-1\",\"role\":\"%s\"}",
                      email, jstr(r->json, "name")));
    expect_status(r, 201);
    char tok[2048], auth[2200];
    login_ok(email, "cleaner-password-1", tok, NULL);
    const char *h[] = {th_bearer(tok, auth, sizeof(auth)), "Content-Type: application/json", NULL};
    long long s = make(DIRECTOR, fmt("{\"name\":\"S %s\"}", u)), m = make(DIRECTOR, fmt("{\"name\":\"M %s\"}", u));
    long long c = make_contact(m, "{\"last_name\":\"C\"}");
    long long o = make_order(m);
    const char *body = fmt("{\"merge_ids\":[%lld]}", m);
    th_resp_t resp;
    ck_assert_int_eq(th_http(api.port, "POST", fmt("/v1/customers/%lld/merge", s), h, body, strlen(body), &resp), 0);
    ck_assert_msg(resp.status == 403 && strstr(jstr(resp.json, "detail"), "orders") != NULL, "%s", resp.body);
    th_resp_free(&resp);
    ck_assert_int_eq(is_deleted(m), 0);
    ck_assert_int_eq(jint(http_get(DIRECTOR, fmt("/v1/contacts/%lld", c))->json, "customer_id"), m);
    /* Without orders to move, contacts alone: allowed. */
    expect_status(http_delete(DIRECTOR, fmt("/v1/orders/%lld", o), NULL), 204);
    ck_assert_int_eq(th_http(api.port, "POST", fmt("/v1/customers/%lld/merge", s), h, body, strlen(body), &resp), 0);
    ck_assert_msg(resp.status == 200, "%s", resp.body);
    th_resp_free(&resp);
    ck_assert_int_eq(jint(http_get(DIRECTOR, fmt("/v1/contacts/%lld", c))->json, "customer_id"), s);
}
END_TEST

START_TEST(merge_contacts_within_one_customer)
{
    const char *u = uniq("c");
    const char *ct_feed = feed_head_of("/v1/changes/contacts", DIRECTOR);
    long long cust = make(REP1, fmt("{\"name\":\"Acme %s\"}", u)), other = make(REP1, fmt("{\"name\":\"O %s\"}", u));
    long long a = make_contact(cust, jdump(json_pack("{s:s, s:s}", "first_name", "Wei", "last_name", "Zhang")));
    long long b = make_contact(
        cust, jdump(json_pack("{s:s, s:s, s:b, s:s, s:s}", "first_name", "Wei", "last_name", "Zhang", "is_primary", 1,
                              "mobile", "138 0013 8000", "email", fmt("zw.%s@acme.cn", u))));
    long long c = make_contact(cust, fmt("{\"last_name\":\"Assistant\",\"reports_to_id\":%lld}", b));
    long long d = make_contact(other, "{\"last_name\":\"Elsewhere\"}");
    /* Contacts of two customers are not merged. */
    th_resp_t *r = merge(REP1, "contacts", a, fmt("{\"merge_ids\":[%lld]}", d), NULL);
    expect_problem(r, 422, "validation-failed");
    expect_error(r, "merge_ids", "invalid_value");
    /* customer_id is not a field a merge chooses. */
    expect_error(
        merge(REP1, "contacts", a, fmt("{\"merge_ids\":[%lld],\"fields\":{\"customer_id\":%lld}}", b, b), NULL),
        "fields.customer_id", "read_only");
    r = merge(REP1, "contacts", a, fmt("{\"merge_ids\":[%lld],\"fields\":{\"mobile\":%lld,\"email\":%lld}}", b, b, b),
              NULL);
    expect_status(r, 200);
    json_t *sur = jget(r, "survivor");
    ck_assert_str_eq(jstr(sur, "mobile"), "138 0013 8000");
    ck_assert_str_eq(jstr(sur, "email"), fmt("zw.%s@acme.cn", u));
    ck_assert(json_is_true(json_object_get(sur, "is_primary"))); /* b was the primary contact */
    ck_assert_int_eq(jint(jget(r, "moved"), "contacts"), 1);
    /* c reported to b: now to a. */
    ck_assert_int_eq(jint(http_get(REP1, fmt("/v1/contacts/%lld", c))->json, "reports_to_id"), a);
    r = http_get(REP1, fmt("/v1/contacts/%lld", b));
    expect_problem(r, 404, "not-found");
    ck_assert_int_eq(jint(r->json, "merged_into"), a);
    json_t *all = changes("/v1/changes/contacts", DIRECTOR, &ct_feed);
    ck_assert_int_eq(jint(change_of(all, b), "merged_into"), a);
    expect_change(change_of(all, c), "update", c);
    ck_assert_int_eq(sql_ll("SELECT count(*) FROM contacts WHERE customer_id = %lld AND is_primary"
                            " AND deleted_at IS NULL",
                            cust),
                     1);
    /* A survivor reporting to the contact merged into it reports to nobody. */
    long long e = make_contact(cust, "{\"last_name\":\"Manager\"}");
    long long f = make_contact(cust, fmt("{\"last_name\":\"Reports\",\"reports_to_id\":%lld}", e));
    r = merge(REP1, "contacts", f, fmt("{\"merge_ids\":[%lld]}", e), NULL);
    expect_status(r, 200);
    ck_assert(json_is_null(json_object_get(jget(r, "survivor"), "reports_to_id")));
}
END_TEST

typedef struct {
    long long s, m;
    int status;
} race_t;

static void *race(void *arg)
{
    race_t *x = arg;
    x->status = merge(DIRECTOR, "customers", x->s, fmt("{\"merge_ids\":[%lld]}", x->m), NULL)->status;
    return NULL;
}

/* Two merges of the same records at once: one wins, the other finds them gone; nothing is half done. */
START_TEST(concurrent_merges_never_half_merge)
{
    for (int round = 0; round < 5; round++) {
        const char *u = uniq("z");
        long long a = make(DIRECTOR, fmt("{\"name\":\"A %s\"}", u)), b = make(DIRECTOR, fmt("{\"name\":\"B %s\"}", u));
        make_order(a);
        make_order(b);
        race_t x[2] = {{a, b, 0}, {b, a, 0}};
        pthread_t t[2];
        for (int i = 0; i < 2; i++)
            pthread_create(&t[i], NULL, race, &x[i]);
        for (int i = 0; i < 2; i++)
            pthread_join(t[i], NULL);
        ck_assert_msg((x[0].status == 200) != (x[1].status == 200) &&
                          (x[0].status == 404 || x[1].status == 404 || x[0].status == 409 || x[1].status == 409),
                      "statuses %d and %d", x[0].status, x[1].status);
        long long live = x[0].status == 200 ? a : b;
        ck_assert_int_eq(sql_ll("SELECT count(*) FROM customers WHERE id IN (%lld, %lld) AND deleted_at IS NULL", a, b),
                         1);
        ck_assert_int_eq(sql_ll("SELECT count(*) FROM orders WHERE customer_id = %lld", live), 2);
    }
}
END_TEST

static Suite *merge_suite(void)
{
    Suite *s = suite_create("merge");
    TCase *tc = tcase_create("duplicates");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, duplicates_find_email_phone_and_similar_names);
    tcase_add_test(tc, duplicates_read_phone_numbers_however_written);
    tcase_add_test(tc, duplicates_read_national_numbers_in_the_configured_region);
    tcase_add_test(tc, duplicates_are_only_the_records_the_caller_reads);
    tcase_add_test(tc, duplicates_refuse_bad_queries);
    tcase_add_test(tc, duplicates_of_contacts);
    tcase_add_test(tc, phone_keys_agree_with_the_database);
    tcase_add_test(tc, duplicate_lookups_use_the_indexes);
    suite_add_tcase(s, tc);

    tc = tcase_create("merge");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, merge_moves_children_and_leaves_tombstones);
    tcase_add_test(tc, merge_keeps_the_merged_primary_when_the_survivor_has_none);
    tcase_add_test(tc, merge_outside_the_callers_scope_changes_nothing);
    tcase_add_test(tc, merge_refuses_bad_bodies);
    tcase_add_test(tc, merge_honours_if_match);
    tcase_add_test(tc, merge_keeps_records_in_their_team);
    tcase_add_test(tc, merge_needs_the_right_to_move_the_children);
    tcase_add_test(tc, merge_contacts_within_one_customer);
    tcase_add_test(tc, concurrent_merges_never_half_merge);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return crew_main(&conf, merge_suite);
}
