/*
 * tests/unit/api/validate_test.c - unit tests for api/validate.c.
 *
 * Two tables shaped like the real resources drive most tests: a customer
 * (enum, trimmed strings, email, phone, a nested address, tags, free-form
 * attrs, a money decimal, read-only id and timestamps) and an order (a
 * currency, a timestamp and an array of line objects). Each case feeds one
 * JSON body through validate_object() and compares the complete list of
 * (field, code) pairs it produced, in order, so a missing, extra or
 * misplaced error fails. The file under test is included to reach the code
 * lists; api_error_add() comes from libapi.a.
 *
 * Test JSON is written with single quotes, which J() turns into double
 * quotes, so it reads like JSON; values that need a real apostrophe are
 * built with jansson calls instead.
 */
#include <check.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../../api/validate.c"

/* --- tables ------------------------------------------------------------- */

static const char *const KINDS[] = {"person", "company", NULL};
static const char *const STATUSES[] = {"lead", "active", "inactive", NULL};

static const validate_field_t ADDRESS_FIELDS[] = {
    {.name = "line1", .type = VT_STRING, .flags = VF_REQUIRED | VF_TRIM, .min_len = 1, .max_len = 200},
    {.name = "line2", .type = VT_STRING, .flags = VF_NULLABLE | VF_TRIM, .max_len = 200},
    {.name = "city", .type = VT_STRING, .flags = VF_REQUIRED | VF_TRIM, .min_len = 1, .max_len = 100},
    {.name = "region", .type = VT_STRING, .flags = VF_NULLABLE | VF_TRIM, .max_len = 100},
    {.name = "postal_code", .type = VT_STRING, .flags = VF_NULLABLE | VF_TRIM, .max_len = 20},
    {.name = "country", .type = VT_COUNTRY, .flags = VF_REQUIRED},
};

static const validate_field_t CUSTOMER[] = {
    {.name = "id", .type = VT_ID, .flags = VF_READONLY},
    {.name = "kind", .type = VT_ENUM, .flags = VF_REQUIRED, .enum_values = KINDS},
    {.name = "name", .type = VT_STRING, .flags = VF_REQUIRED | VF_TRIM, .min_len = 1, .max_len = 200},
    {.name = "email", .type = VT_EMAIL, .flags = VF_NULLABLE | VF_TRIM},
    {.name = "phone", .type = VT_PHONE, .flags = VF_NULLABLE | VF_TRIM},
    {.name = "address", .type = VT_OBJECT, .flags = VF_NULLABLE, VALIDATE_NESTED(ADDRESS_FIELDS)},
    {.name = "status", .type = VT_ENUM, .enum_values = STATUSES},
    {.name = "owner_id", .type = VT_ID, .flags = VF_NULLABLE},
    {.name = "tags", .type = VT_STRING_ARRAY, .flags = VF_TRIM, .max_len = 50, .item_min_len = 1, .item_max_len = 50},
    {.name = "attrs", .type = VT_JSON_OBJECT, .max_bytes = 16 * 1024},
    {.name = "credit_limit",
     .type = VT_DECIMAL,
     .flags = VF_NULLABLE | VF_RANGE,
     .int_digits = 16,
     .scale = 2,
     .min_value = 0,
     .max_value = INT64_MAX},
    {.name = "marketing_opt_in", .type = VT_BOOL},
    {.name = "last_contacted_at", .type = VT_TIMESTAMP, .flags = VF_NULLABLE},
    {.name = "notes", .type = VT_TEXT, .flags = VF_NULLABLE, .max_len = 10000},
    {.name = "created_at", .type = VT_TIMESTAMP, .flags = VF_READONLY},
    {.name = "updated_at", .type = VT_TIMESTAMP, .flags = VF_READONLY},
};

static const validate_field_t ORDER_LINE_FIELDS[] = {
    {.name = "sku", .type = VT_STRING, .flags = VF_REQUIRED | VF_TRIM, .min_len = 1, .max_len = 64},
    {.name = "name", .type = VT_STRING, .flags = VF_REQUIRED | VF_TRIM, .min_len = 1, .max_len = 200},
    {.name = "quantity", .type = VT_INT, .flags = VF_REQUIRED | VF_RANGE, .min_value = 1, .max_value = 1000000},
    {.name = "unit_price",
     .type = VT_DECIMAL,
     .flags = VF_REQUIRED | VF_RANGE,
     .int_digits = 12,
     .scale = 4,
     .min_value = 0,
     .max_value = INT64_MAX},
};

/* The description of every item of "lines". */
static const validate_field_t ORDER_LINE = {.type = VT_OBJECT, VALIDATE_NESTED(ORDER_LINE_FIELDS)};

static const validate_field_t ORDER[] = {
    {.name = "id", .type = VT_ID, .flags = VF_READONLY},
    {.name = "customer_id", .type = VT_ID, .flags = VF_REQUIRED},
    {.name = "currency", .type = VT_CURRENCY, .flags = VF_REQUIRED},
    {.name = "ordered_at", .type = VT_TIMESTAMP, .flags = VF_REQUIRED},
    {.name = "lines", .type = VT_ARRAY, .flags = VF_REQUIRED, .min_len = 1, .max_len = 500, .fields = &ORDER_LINE},
    {.name = "note", .type = VT_TEXT, .flags = VF_NULLABLE, .max_len = 2000},
    {.name = "total", .type = VT_DECIMAL, .flags = VF_READONLY, .int_digits = 16, .scale = 2},
};

#define NCUSTOMER VALIDATE_COUNT(CUSTOMER)
#define NORDER VALIDATE_COUNT(ORDER)

/* --- helpers ------------------------------------------------------------ */

/* Parses test JSON written with ' for " (so it must be valid). */
static json_t *J(const char *text)
{
    char *t = strdup(text), *p;
    json_error_t e;
    json_t *v;

    for (p = t; *p; ++p)
        if (*p == '\'')
            *p = '"';
    v = json_loads(t, JSON_DECODE_ANY, &e);
    ck_assert_msg(v != NULL, "bad test JSON %s: %s", t, e.text);
    free(t);
    return v;
}

/* A string of n copies of unit. */
static char *repeat(const char *unit, size_t n)
{
    size_t ulen = strlen(unit), i;
    char *s = malloc(ulen * n + 1);

    for (i = 0; i < n; ++i)
        memcpy(s + i * ulen, unit, ulen);
    s[ulen * n] = '\0';
    return s;
}

/* The errors as "field code" lines, for failure messages. */
static char *describe(const json_t *errors)
{
    size_t i, len = 1;
    char *out;

    for (i = 0; i < json_array_size(errors); ++i) {
        const json_t *e = json_array_get(errors, i);
        len += strlen(json_string_value(json_object_get(e, "field"))) +
               strlen(json_string_value(json_object_get(e, "code"))) + 4;
    }
    out = malloc(len);
    out[0] = '\0';
    for (i = 0; i < json_array_size(errors); ++i) {
        const json_t *e = json_array_get(errors, i);
        strcat(out, " [");
        strcat(out, json_string_value(json_object_get(e, "field")));
        strcat(out, " ");
        strcat(out, json_string_value(json_object_get(e, "code")));
        strcat(out, "]");
    }
    return out;
}

/*
 * Validates v (borrowed) and asserts that the errors are exactly the
 * (field, code) pairs given, in order, NULL-terminated, and that each has a
 * non-empty message. Returns the errors array (new reference) for further
 * checks of messages.
 */
static json_t *vcheck(const json_t *v, const validate_field_t *t, size_t n, unsigned mode, const char *prefix, ...)
{
    json_t *errors = json_array();
    int count = validate_object(v, t, n, mode, prefix, errors);
    char *got = describe(errors);
    size_t i = 0;
    const char *field;
    va_list ap;

    ck_assert_int_eq((size_t)count, json_array_size(errors));
    va_start(ap, prefix);
    while ((field = va_arg(ap, const char *)) != NULL) {
        const char *code = va_arg(ap, const char *);
        const json_t *e = json_array_get(errors, i);
        ck_assert_msg(e != NULL, "missing error %zu [%s %s]; got%s", i, field, code, got);
        ck_assert_msg(strcmp(json_string_value(json_object_get(e, "field")), field) == 0 &&
                          strcmp(json_string_value(json_object_get(e, "code")), code) == 0,
                      "error %zu: want [%s %s]; got%s", i, field, code, got);
        ck_assert_msg(strlen(json_string_value(json_object_get(e, "message"))) > 0, "empty message");
        ++i;
    }
    va_end(ap);
    ck_assert_msg(i == json_array_size(errors), "want %zu errors; got%s", i, got);
    free(got);
    return errors;
}

/* vcheck() on JSON text, dropping the errors. */
#define EXPECT(text, table, mode, prefix, ...)                                                                         \
    do {                                                                                                               \
        json_t *v_ = J(text);                                                                                          \
        json_decref(vcheck(v_, table, VALIDATE_COUNT(table), mode, prefix, __VA_ARGS__));                              \
        json_decref(v_);                                                                                               \
    } while (0)

/* The message of the only error for the body text. */
static char *only_message(const char *text, const validate_field_t *t, size_t n, unsigned mode)
{
    json_t *v = J(text), *errors = json_array();
    char *msg;

    ck_assert_int_eq(validate_object(v, t, n, mode, NULL, errors), 1);
    msg = strdup(json_string_value(json_object_get(json_array_get(errors, 0), "message")));
    json_decref(errors);
    json_decref(v);
    return msg;
}

/* Sets member name of a fresh minimal customer to v (stolen) and checks it; errors as in vcheck(). */
#define EXPECT_CUSTOMER_WITH(name, v, ...)                                                                             \
    do {                                                                                                               \
        json_t *c_ = J("{'kind':'person','name':'Ada'}");                                                              \
        json_object_set_new(c_, name, v);                                                                              \
        json_decref(vcheck(c_, CUSTOMER, NCUSTOMER, VALIDATE_CREATE, NULL, __VA_ARGS__));                              \
        json_decref(c_);                                                                                               \
    } while (0)

static const char VALID_CUSTOMER[] =
    "{'kind':'company','name':'ACME GmbH','email':'billing@acme.example.de','phone':'+49 (30) 123-4567',"
    "'address':{'line1':'Hauptstr. 1','line2':null,'city':'Berlin','region':'BE','postal_code':'10115',"
    "'country':'DE'},'status':'active','owner_id':7,'tags':['key account','eu'],'attrs':{'source':'fair','n':[1,2]},"
    "'credit_limit':'25000.00','marketing_opt_in':false,'last_contacted_at':'2024-05-01T12:00:00+02:00',"
    "'notes':'Prefers email.\\nCall after 10.\\tThanks'}";

static const char VALID_ORDER[] = "{'customer_id':42,'currency':'EUR','ordered_at':'2024-05-01T12:00:00Z',"
                                  "'lines':[{'sku':'A-1','name':'Widget','quantity':2,'unit_price':'9.99'},"
                                  "{'sku':'B-2','name':'Gadget','quantity':1,'unit_price':'1234.5678'}]}";

/* --- whole bodies ------------------------------------------------------- */

START_TEST(valid_bodies)
{
    EXPECT(VALID_CUSTOMER, CUSTOMER, VALIDATE_CREATE, NULL, NULL);
    EXPECT(VALID_CUSTOMER, CUSTOMER, VALIDATE_REPLACE, NULL, NULL);
    EXPECT(VALID_CUSTOMER, CUSTOMER, VALIDATE_PATCH, NULL, NULL);
    EXPECT("{'kind':'person','name':'Ada'}", CUSTOMER, VALIDATE_CREATE, NULL, NULL);
    EXPECT(VALID_ORDER, ORDER, VALIDATE_CREATE, NULL, NULL);
}
END_TEST

START_TEST(every_error_at_once)
{
    EXPECT("{'kind':'robot','name':'','email':'nope','owner_id':0,'address':{'line1':'x','city':'y','country':'XX'},"
           "'nickname':'Bob','credit_limit':'1.234'}",
           CUSTOMER, VALIDATE_CREATE, NULL, /* */
           "kind", "invalid_value", "name", "too_short", "email", "invalid_format", "address.country", "invalid_format",
           "owner_id", "out_of_range", "credit_limit", "out_of_range", "nickname", "unknown_field", NULL);
    /* Five bad order fields, two of them deep inside lines. */
    EXPECT("{'customer_id':'42','currency':'eur','ordered_at':'2024-05-01 12:00:00',"
           "'lines':[{'sku':'A','name':'W','quantity':0,'unit_price':'1'},"
           "{'sku':'B','name':'G','quantity':1,'unit_price':true}]}",
           ORDER, VALIDATE_CREATE, NULL, /* */
           "customer_id", "invalid_type", "currency", "invalid_format", "ordered_at", "invalid_format",
           "lines[0].quantity", "out_of_range", "lines[1].unit_price", "invalid_type", NULL);
}
END_TEST

START_TEST(required_in_create_and_replace)
{
    EXPECT("{}", CUSTOMER, VALIDATE_CREATE, NULL, "kind", "required", "name", "required", NULL);
    EXPECT("{}", CUSTOMER, VALIDATE_REPLACE, NULL, "kind", "required", "name", "required", NULL);
    /* Present but null counts as missing. */
    EXPECT("{'kind':null,'name':null}", CUSTOMER, VALIDATE_CREATE, NULL, "kind", "required", "name", "required", NULL);
    EXPECT("{}", ORDER, VALIDATE_CREATE, NULL, "customer_id", "required", "currency", "required", "ordered_at",
           "required", "lines", "required", NULL);
    /* A nested object brings its own required members. */
    EXPECT("{'kind':'person','name':'Ada','address':{'line2':'c/o Bob'}}", CUSTOMER, VALIDATE_CREATE, NULL,
           "address.line1", "required", "address.city", "required", "address.country", "required", NULL);
}
END_TEST

START_TEST(patch_mode)
{
    char *msg;

    EXPECT("{}", CUSTOMER, VALIDATE_PATCH, NULL, NULL);
    EXPECT("{'name':'New name'}", CUSTOMER, VALIDATE_PATCH, NULL, NULL);
    /* null removes a nullable field... */
    EXPECT("{'email':null,'phone':null,'address':null,'owner_id':null,'credit_limit':null}", CUSTOMER, VALIDATE_PATCH,
           NULL, NULL);
    /* ...cannot remove a required one, and is wrong for a non-nullable one. */
    EXPECT("{'name':null,'status':null,'tags':null,'attrs':null,'marketing_opt_in':null}", CUSTOMER, VALIDATE_PATCH,
           NULL, "name", "required", "status", "invalid_type", "tags", "invalid_type", "attrs", "invalid_type",
           "marketing_opt_in", "invalid_type", NULL);
    msg = only_message("{'name':null}", CUSTOMER, NCUSTOMER, VALIDATE_PATCH);
    ck_assert_str_eq(msg, "is required and cannot be removed");
    free(msg);
    msg = only_message("{'status':null}", CUSTOMER, NCUSTOMER, VALIDATE_PATCH);
    ck_assert_str_eq(msg, "must not be null");
    free(msg);
    /* Nested objects are merged by a patch, so their members are optional too... */
    EXPECT("{'address':{'country':'FR'}}", CUSTOMER, VALIDATE_PATCH, NULL, NULL);
    EXPECT("{'address':{'region':null,'city':null}}", CUSTOMER, VALIDATE_PATCH, NULL, "address.city", "required", NULL);
    /* ...but arrays are replaced whole, so each item must be complete. */
    EXPECT("{'lines':[{'sku':'A','name':'W','quantity':1,'unit_price':'1'},{'quantity':2}]}", ORDER, VALIDATE_PATCH,
           NULL, "lines[1].sku", "required", "lines[1].name", "required", "lines[1].unit_price", "required", NULL);
    /* Values are still judged in a patch. */
    EXPECT("{'kind':'alien','address':{'country':'de'}}", CUSTOMER, VALIDATE_PATCH, NULL, "kind", "invalid_value",
           "address.country", "invalid_format", NULL);
}
END_TEST

START_TEST(null_in_create)
{
    /* Optional nullable fields may be null on create too; non-nullable ones may not. */
    EXPECT("{'kind':'person','name':'Ada','email':null,'address':null,'last_contacted_at':null}", CUSTOMER,
           VALIDATE_CREATE, NULL, NULL);
    EXPECT("{'kind':'person','name':'Ada','status':null,'marketing_opt_in':null}", CUSTOMER, VALIDATE_CREATE, NULL,
           "status", "invalid_type", "marketing_opt_in", "invalid_type", NULL);
    EXPECT("{'kind':'person','name':'Ada','address':{'line1':'x','city':'y','country':'DE','line2':null,"
           "'region':null,'postal_code':null}}",
           CUSTOMER, VALIDATE_CREATE, NULL, NULL);
}
END_TEST

START_TEST(read_only_fields)
{
    char *msg;

    EXPECT("{'id':5,'kind':'person','name':'Ada','created_at':'2024-01-01T00:00:00Z','updated_at':null}", CUSTOMER,
           VALIDATE_CREATE, NULL, "id", "read_only", "created_at", "read_only", "updated_at", "read_only", NULL);
    EXPECT("{'id':5}", CUSTOMER, VALIDATE_PATCH, NULL, "id", "read_only", NULL);
    EXPECT("{'total':'10.00'}", ORDER, VALIDATE_PATCH, NULL, "total", "read_only", NULL);
    msg = only_message("{'id':5}", CUSTOMER, NCUSTOMER, VALIDATE_PATCH);
    ck_assert_str_eq(msg, "is read-only and set by the server");
    free(msg);
    /* Re-validating a representation the server built itself. */
    EXPECT("{'id':5,'kind':'person','name':'Ada','created_at':'whatever'}", CUSTOMER,
           VALIDATE_REPLACE | VALIDATE_ALLOW_READONLY, NULL, NULL);
}
END_TEST

START_TEST(unknown_fields)
{
    char *msg, *longkey;
    json_t *v, *errors;

    EXPECT("{'kind':'person','name':'Ada','Name':'x','address':{'line1':'x','city':'y','country':'DE','planet':'Mars'},"
           "'zzz':1}",
           CUSTOMER, VALIDATE_CREATE, NULL, "address.planet", "unknown_field", "Name", "unknown_field", "zzz",
           "unknown_field", NULL);
    EXPECT("{'lines':[{'sku':'A','name':'W','quantity':1,'unit_price':'1','discount':'5%'}]}", ORDER, VALIDATE_PATCH,
           NULL, "lines[0].discount", "unknown_field", NULL);
    msg = only_message("{'foo':1}", CUSTOMER, NCUSTOMER, VALIDATE_PATCH);
    ck_assert_str_eq(msg, "is not a known field");
    free(msg);

    /* A huge unknown name is echoed clipped (on a character boundary), not whole. */
    longkey = repeat("é", 1000);
    v = json_object();
    json_object_set_new(v, longkey, json_true());
    errors = json_array();
    ck_assert_int_eq(validate_object(v, CUSTOMER, NCUSTOMER, VALIDATE_PATCH, "[9]", errors), 1);
    {
        const char *field = json_string_value(json_object_get(json_array_get(errors, 0), "field"));
        ck_assert_ptr_nonnull(field);
        ck_assert_uint_eq(strlen(field), 4 + 100 + 3); /* "[9]." + 50 "é" + "..." */
        ck_assert(strncmp(field, "[9].é", strlen("[9].é")) == 0);
    }
    json_decref(errors);
    json_decref(v);
    free(longkey);
}
END_TEST

START_TEST(non_object_bodies)
{
    EXPECT("[1,2]", CUSTOMER, VALIDATE_CREATE, NULL, "", "invalid_type", NULL);
    EXPECT("'text'", CUSTOMER, VALIDATE_CREATE, "", "", "invalid_type", NULL);
    EXPECT("null", CUSTOMER, VALIDATE_PATCH, "[3]", "[3]", "invalid_type", NULL);
    EXPECT("{'kind':'person','name':'Ada','address':'Berlin'}", CUSTOMER, VALIDATE_CREATE, NULL, "address",
           "invalid_type", NULL);
    EXPECT("{'lines':{'sku':'A'}}", ORDER, VALIDATE_PATCH, NULL, "lines", "invalid_type", NULL);
    EXPECT("{'lines':[null,7]}", ORDER, VALIDATE_PATCH, NULL, "lines[0]", "invalid_type", "lines[1]", "invalid_type",
           NULL);
}
END_TEST

START_TEST(bulk_prefix)
{
    /* A bulk handler validates each item with its index as the prefix. */
    json_t *items = J("[{'kind':'person','name':'Ada'},{'kind':'person','name':'Bob','email':'bob@'},"
                      "{'name':'Cy'},{'kind':'company','name':'D','address':{'country':'XX','line1':'a','city':'b'},"
                      "'email':'d@d'},'oops']");
    json_t *errors = json_array();
    size_t i;
    int total = 0;
    char *got, prefix[24];

    for (i = 0; i < json_array_size(items); ++i) {
        snprintf(prefix, sizeof(prefix), "[%zu]", i);
        total += validate_object(json_array_get(items, i), CUSTOMER, NCUSTOMER, VALIDATE_CREATE, prefix, errors);
    }
    got = describe(errors);
    ck_assert_str_eq(got, " [[1].email invalid_format] [[2].kind required] [[3].email invalid_format]"
                          " [[3].address.country invalid_format] [[4] invalid_type]");
    ck_assert_int_eq(total, 5);
    free(got);
    json_decref(errors);
    /* Prefixes compose with array items too. */
    EXPECT("{'lines':[{'sku':'A','name':'W','quantity':1,'unit_price':'x'}]}", ORDER, VALIDATE_PATCH, "[17]",
           "[17].lines[0].unit_price", "invalid_format", NULL);
    json_decref(items);
}
END_TEST

/* --- strings ------------------------------------------------------------ */

START_TEST(string_length_boundaries)
{
    char *s, *msg;

    s = repeat("a", 200);
    EXPECT_CUSTOMER_WITH("name", json_string(s), NULL);
    free(s);
    s = repeat("a", 201);
    EXPECT_CUSTOMER_WITH("name", json_string(s), "name", "too_long", NULL);
    free(s);
    /* Code points, not bytes: 200 "é" are 400 bytes and still fit. */
    s = repeat("é", 200);
    EXPECT_CUSTOMER_WITH("name", json_string(s), NULL);
    free(s);
    s = repeat("é", 201);
    EXPECT_CUSTOMER_WITH("name", json_string(s), "name", "too_long", NULL);
    free(s);
    s = repeat("😀", 200); /* 4 bytes each */
    EXPECT_CUSTOMER_WITH("name", json_string(s), NULL);
    free(s);
    /* Trimmed before measuring: surrounding spaces do not count, blanks are empty. */
    {
        char *inner = repeat("b", 200), *padded = malloc(210);
        snprintf(padded, 210, "  %s \t", inner);
        EXPECT_CUSTOMER_WITH("name", json_string(padded), NULL);
        free(inner);
        free(padded);
    }
    EXPECT_CUSTOMER_WITH("name", json_string("   "), "name", "too_short", NULL);
    EXPECT_CUSTOMER_WITH("name", json_string(""), "name", "too_short", NULL);
    EXPECT_CUSTOMER_WITH("name", json_string("x"), NULL);

    s = repeat("a", 201);
    json_t *c = J("{'kind':'person'}");
    json_object_set_new(c, "name", json_string(s));
    msg = only_message("{'kind':'person','name':''}", CUSTOMER, NCUSTOMER, VALIDATE_CREATE);
    ck_assert_str_eq(msg, "must not be empty");
    free(msg);
    {
        json_t *errors = json_array();
        ck_assert_int_eq(validate_object(c, CUSTOMER, NCUSTOMER, VALIDATE_CREATE, NULL, errors), 1);
        ck_assert_str_eq(json_string_value(json_object_get(json_array_get(errors, 0), "message")),
                         "must be at most 200 characters");
        json_decref(errors);
    }
    json_decref(c);
    free(s);
    /* Nested fields have their own limits: postal_code is at most 20. */
    EXPECT("{'address':{'postal_code':'123456789012345678901'}}", CUSTOMER, VALIDATE_PATCH, NULL, "address.postal_code",
           "too_long", NULL);
}
END_TEST

START_TEST(string_characters)
{
    /* One-line strings take no control characters at all. */
    EXPECT_CUSTOMER_WITH("name", json_string("a\nb"), "name", "invalid_format", NULL);
    EXPECT_CUSTOMER_WITH("name", json_string("a\tb"), "name", "invalid_format", NULL);
    EXPECT_CUSTOMER_WITH("name", json_string("a\x7f"), "name", "invalid_format", NULL);
    EXPECT_CUSTOMER_WITH("name", json_string("a\xc2\x85"), "name", "invalid_format", NULL); /* U+0085, C1 */
    EXPECT_CUSTOMER_WITH("name", json_string("a\x1b[31m"), "name", "invalid_format", NULL);
    /* NUL, which jansson can hold from "\u0000". */
    EXPECT_CUSTOMER_WITH("name", json_stringn("Ada\0x", 5), "name", "invalid_format", NULL);
    EXPECT_CUSTOMER_WITH("notes", json_stringn("a\0", 2), "notes", "invalid_format", NULL);
    EXPECT_CUSTOMER_WITH("email", json_stringn("a@b.de\0", 7), "email", "invalid_format", NULL);
    /* Invalid UTF-8 that only the _nocheck setters can smuggle in. */
    EXPECT_CUSTOMER_WITH("name", json_stringn_nocheck("a\xff", 2), "name", "invalid_format", NULL);
    EXPECT_CUSTOMER_WITH("name", json_stringn_nocheck("\xed\xa0\x80", 3), "name", "invalid_format", NULL);
    /* Texts take line breaks and tabs, nothing else. */
    EXPECT_CUSTOMER_WITH("notes", json_string("line 1\nline 2\n\tindented"), NULL);
    EXPECT_CUSTOMER_WITH("notes", json_string("dos\r\nline"), "notes", "invalid_format", NULL);
    EXPECT_CUSTOMER_WITH("notes", json_string("bell\a"), "notes", "invalid_format", NULL);
    /* Ordinary non-ASCII text is fine. */
    EXPECT_CUSTOMER_WITH("name", json_string("Zoë Ørsted – 東京 😀"), NULL);
    /* Wrong JSON types. */
    EXPECT_CUSTOMER_WITH("name", json_integer(5), "name", "invalid_type", NULL);
    EXPECT_CUSTOMER_WITH("notes", json_array(), "notes", "invalid_type", NULL);
}
END_TEST

START_TEST(enums)
{
    char *msg;

    EXPECT_CUSTOMER_WITH("status", json_string("lead"), NULL);
    EXPECT_CUSTOMER_WITH("status", json_string("Lead"), "status", "invalid_value", NULL);
    EXPECT_CUSTOMER_WITH("status", json_string("lead "), "status", "invalid_value", NULL);
    EXPECT_CUSTOMER_WITH("status", json_string(""), "status", "invalid_value", NULL);
    EXPECT_CUSTOMER_WITH("status", json_integer(1), "status", "invalid_type", NULL);
    msg = only_message("{'kind':'robot','name':'R2'}", CUSTOMER, NCUSTOMER, VALIDATE_CREATE);
    ck_assert_str_eq(msg, "must be one of person, company");
    free(msg);
}
END_TEST

START_TEST(emails)
{
    static const char *const OK[] = {
        "a@b.de",
        "first.last@example.com",
        "x+tag@sub.example.co.uk",
        "o'brien@example.ie",
        "user_name-1@xn--mnchen-3ya.de",
        "UPPER@EXAMPLE.COM",
        "a@b-c.d1",
        "!#$%&'*+/=?^_`{|}~-@example.org",
    };
    static const char *const BAD[] = {
        "",          "plain",           "@example.com",  "a@",          "a@b",
        "a@@b.de",   "a@b@c.de",        "a b@c.de",      "a@b .de",     ".a@b.de",
        "a.@b.de",   "a..b@c.de",       "a@-b.de",       "a@b-.de",     "a@b..de",
        "a@.b.de",   "a@b.de.",         "a@1.2.3.4",     "a@[1.2.3.4]", "\"a\"@b.de",
        "a(b)@c.de", "zoë@example.com", "a@exämple.com", "a@b_c.de",    "a,b@c.de",
        "a@b.de>",
    };
    size_t i;
    char *s;

    for (i = 0; i < sizeof(OK) / sizeof(OK[0]); ++i) {
        ck_assert_msg(validate_is_email(OK[i], strlen(OK[i])), "rejected %s", OK[i]);
        EXPECT_CUSTOMER_WITH("email", json_string(OK[i]), NULL);
    }
    for (i = 0; i < sizeof(BAD) / sizeof(BAD[0]); ++i) {
        ck_assert_msg(!validate_is_email(BAD[i], strlen(BAD[i])), "accepted %s", BAD[i]);
        EXPECT_CUSTOMER_WITH("email", json_string(BAD[i]), "email", "invalid_format", NULL);
    }
    /* Trimmed like other strings. */
    EXPECT_CUSTOMER_WITH("email", json_string("  a@b.de "), NULL);

    /* Local part up to 64, labels up to 63, whole address up to 254. */
    {
        char *local64 = repeat("l", 64), *local65 = repeat("l", 65), *label63 = repeat("d", 63),
             *label64 = repeat("d", 64), *buf = malloc(400);
        snprintf(buf, 400, "%s@example.com", local64);
        ck_assert(validate_is_email(buf, strlen(buf)));
        snprintf(buf, 400, "%s@example.com", local65);
        ck_assert(!validate_is_email(buf, strlen(buf)));
        snprintf(buf, 400, "a@%s.com", label63);
        ck_assert(validate_is_email(buf, strlen(buf)));
        snprintf(buf, 400, "a@%s.com", label64);
        ck_assert(!validate_is_email(buf, strlen(buf)));
        /* 64 + 1 + 63 + 1 + 63 + 1 + 61 = 254 */
        s = repeat("d", 61);
        snprintf(buf, 400, "%s@%s.%s.%s", local64, label63, label63, s);
        ck_assert_uint_eq(strlen(buf), 254);
        ck_assert(validate_is_email(buf, strlen(buf)));
        free(s);
        s = repeat("d", 62);
        snprintf(buf, 400, "%s@%s.%s.%s", local64, label63, label63, s);
        ck_assert(!validate_is_email(buf, strlen(buf)));
        free(s);
        free(local64);
        free(local65);
        free(label63);
        free(label64);
        free(buf);
    }
    /* The length given is what counts: a NUL inside it is refused. */
    ck_assert(!validate_is_email("a@b.de\0x", 8));
    ck_assert(!validate_is_email(NULL, 0));
}
END_TEST

START_TEST(phones)
{
    static const char *const OK[] = {
        "+49 30 1234567", "+1 (555) 123-4567", "1234567",  "0301234567",      "123",
        "(030) 12.34.56", "+44 20 7946 0958",  "555-0100", "+81-3-1234-5678", "12345678901234567890123456789012",
    };
    static const char *const BAD[] = {
        "",      "12",      "+1",        "+()",         "1-2",       "abc",    "+49 30 1234567 ext 5",
        "49+30", "++49 30", "(030 1234", "030) 1234",   "((030)) 1", "() 123", "123456789012345678901234567890123",
        "-123",  "123-",    "+49\t30",   "030/1234567", "#123",      "１２３",
    };
    size_t i;

    for (i = 0; i < sizeof(OK) / sizeof(OK[0]); ++i) {
        ck_assert_msg(validate_is_phone(OK[i], strlen(OK[i])), "rejected %s", OK[i]);
        EXPECT_CUSTOMER_WITH("phone", json_string(OK[i]), NULL);
    }
    for (i = 0; i < sizeof(BAD) / sizeof(BAD[0]); ++i) {
        ck_assert_msg(!validate_is_phone(BAD[i], strlen(BAD[i])), "accepted %s", BAD[i]);
        EXPECT_CUSTOMER_WITH("phone", json_string(BAD[i]), "phone", "invalid_format", NULL);
    }
    EXPECT_CUSTOMER_WITH("phone", json_integer(4930123), "phone", "invalid_type", NULL);
}
END_TEST

START_TEST(timestamps)
{
    EXPECT_CUSTOMER_WITH("last_contacted_at", json_string("2024-02-29T23:59:59.123456Z"), NULL);
    EXPECT_CUSTOMER_WITH("last_contacted_at", json_string("2024-05-01t12:00:00-07:00"), NULL);
    EXPECT_CUSTOMER_WITH("last_contacted_at", json_string("2023-02-29T00:00:00Z"), "last_contacted_at",
                         "invalid_format", NULL);
    EXPECT_CUSTOMER_WITH("last_contacted_at", json_string("2024-05-01T12:00:00"), "last_contacted_at", "invalid_format",
                         NULL);
    EXPECT_CUSTOMER_WITH("last_contacted_at", json_string("2024-05-01 12:00:00Z"), "last_contacted_at",
                         "invalid_format", NULL);
    EXPECT_CUSTOMER_WITH("last_contacted_at", json_string("2024-05-01T24:00:00Z"), "last_contacted_at",
                         "invalid_format", NULL);
    EXPECT_CUSTOMER_WITH("last_contacted_at", json_string("2024-05-01T12:00:00.000000000000000000000000000000000Z"),
                         "last_contacted_at", "invalid_format", NULL);
    EXPECT_CUSTOMER_WITH("last_contacted_at", json_stringn("2024-05-01T12:00:00Z\0", 21), "last_contacted_at",
                         "invalid_format", NULL);
    EXPECT_CUSTOMER_WITH("last_contacted_at", json_integer(1714564800), "last_contacted_at", "invalid_type", NULL);
}
END_TEST

/* --- numbers ------------------------------------------------------------ */

START_TEST(decimals)
{
    static const char *const OK[] = {
        "0", "12", "12.5", "12.50", "0.01", "-0", "1234567890123456", "1234567890123456.99", "9999999999999999.99",
    };
    static const char *const FORMAT[] = {
        "1e3", "+1",   ".5", "1.",  "",      " 1",  "1 ",       "01",    "00.5", "1,5", "0x10",
        "１",  "1..2", "-",  "-.5", "1.2.3", "NaN", "Infinity", "1_000", "--1",  "- 1",
    };
    static const char *const RANGE[] = {"1.234", "0.001", "12345678901234567", "12345678901234567.5", "-1", "-0.01"};
    size_t i;
    char *msg;

    for (i = 0; i < sizeof(OK) / sizeof(OK[0]); ++i)
        EXPECT_CUSTOMER_WITH("credit_limit", json_string(OK[i]), NULL);
    for (i = 0; i < sizeof(FORMAT) / sizeof(FORMAT[0]); ++i)
        EXPECT_CUSTOMER_WITH("credit_limit", json_string(FORMAT[i]), "credit_limit", "invalid_format", NULL);
    for (i = 0; i < sizeof(RANGE) / sizeof(RANGE[0]); ++i)
        EXPECT_CUSTOMER_WITH("credit_limit", json_string(RANGE[i]), "credit_limit", "out_of_range", NULL);
    /* A JSON number stands for the decimal it reads as, with the same limits... */
    EXPECT_CUSTOMER_WITH("credit_limit", json_real(12.5), NULL);
    EXPECT_CUSTOMER_WITH("credit_limit", json_integer(12), NULL);
    EXPECT_CUSTOMER_WITH("credit_limit", json_real(0.07), NULL);
    EXPECT_CUSTOMER_WITH("credit_limit", json_real(1.234), "credit_limit", "out_of_range", NULL);
    EXPECT_CUSTOMER_WITH("credit_limit", json_real(-1), "credit_limit", "out_of_range", NULL);
    EXPECT_CUSTOMER_WITH("credit_limit", json_real(1e17), "credit_limit", "out_of_range", NULL);
    /* ... but one a double cannot carry exactly must come as a string. */
    EXPECT_CUSTOMER_WITH("credit_limit", json_real(0.1 + 0.2), "credit_limit", "invalid_type", NULL);
    /* and validate_trim() stores the exact text, never a float. */
    {
        json_t *o = json_pack("{s:f, s:[{s:s, s:s, s:i, s:f}]}", "credit_limit", 0.7, "lines", "sku", "A", "name", "W",
                              "quantity", 3, "unit_price", 0.1);
        validate_trim(o, CUSTOMER, NCUSTOMER);
        ck_assert_str_eq(json_string_value(json_object_get(o, "credit_limit")), "0.7");
        validate_trim(o, ORDER, NORDER);
        json_t *line = json_array_get(json_object_get(o, "lines"), 0);
        ck_assert_str_eq(json_string_value(json_object_get(line, "unit_price")), "0.1");
        json_decref(o);
    }

    msg = only_message("{'credit_limit':'1.234'}", CUSTOMER, NCUSTOMER, VALIDATE_PATCH);
    ck_assert_str_eq(msg, "must have at most 2 digits after the decimal point");
    free(msg);
    msg = only_message("{'credit_limit':'12345678901234567'}", CUSTOMER, NCUSTOMER, VALIDATE_PATCH);
    ck_assert_str_eq(msg, "must have at most 16 digits before the decimal point");
    free(msg);
    msg = only_message("{'credit_limit':'-5'}", CUSTOMER, NCUSTOMER, VALIDATE_PATCH);
    ck_assert_str_eq(msg, "must be at least 0");
    free(msg);
    /* Scale is per field: unit prices take 4 places. */
    EXPECT("{'lines':[{'sku':'A','name':'W','quantity':1,'unit_price':'0.1234'},"
           "{'sku':'A','name':'W','quantity':1,'unit_price':'0.12345'}]}",
           ORDER, VALIDATE_PATCH, NULL, "lines[1].unit_price", "out_of_range", NULL);
}
END_TEST

START_TEST(decimal_str_helper)
{
    ck_assert_int_eq(validate_decimal_str("12.5", 16, 2), 0);
    ck_assert_int_eq(validate_decimal_str("-12.5", 16, 2), 0); /* sign is fine; bounds are the field's business */
    ck_assert_int_eq(validate_decimal_str("12", 2, 0), 0);
    ck_assert_int_eq(validate_decimal_str("123", 2, 0), ERR_INVALID);
    ck_assert_int_eq(validate_decimal_str("1.0", 2, 0), ERR_INVALID);
    ck_assert_int_eq(validate_decimal_str("1.234", 16, 2), ERR_INVALID);
    ck_assert_int_eq(validate_decimal_str("1e3", 16, 2), ERR_INVALID);
    ck_assert_int_eq(validate_decimal_str("", 16, 2), ERR_INVALID);
    ck_assert_int_eq(validate_decimal_str(NULL, 16, 2), ERR_INVALID);
    /* Everything accepted fits a dec_t: the limits cannot exceed decimal.h's. */
    ck_assert_int_eq(validate_decimal_str("9999999999999999999999.999999", DEC_INT_DIGITS, DEC_SCALE), 0);
    ck_assert_int_eq(validate_decimal_str("1", DEC_INT_DIGITS + 1, 2), ERR_INVALID);
    ck_assert_int_eq(validate_decimal_str("1", 16, DEC_SCALE + 1), ERR_INVALID);
    ck_assert_int_eq(validate_decimal_str("1", 0, 2), ERR_INVALID);
    ck_assert_int_eq(validate_decimal_str("1", 16, -1), ERR_INVALID);
}
END_TEST

START_TEST(integers_and_ids)
{
    char *msg;
    int64_t id = 0;
    json_t *v;

    EXPECT("{'lines':[{'sku':'A','name':'W','quantity':1,'unit_price':'1'},"
           "{'sku':'A','name':'W','quantity':1000000,'unit_price':'1'},"
           "{'sku':'A','name':'W','quantity':0,'unit_price':'1'},"
           "{'sku':'A','name':'W','quantity':1000001,'unit_price':'1'},"
           "{'sku':'A','name':'W','quantity':-3,'unit_price':'1'},"
           "{'sku':'A','name':'W','quantity':2.0,'unit_price':'1'},"
           "{'sku':'A','name':'W','quantity':'2','unit_price':'1'},"
           "{'sku':'A','name':'W','quantity':true,'unit_price':'1'}]}",
           ORDER, VALIDATE_PATCH, NULL, "lines[2].quantity", "out_of_range", "lines[3].quantity", "out_of_range",
           "lines[4].quantity", "out_of_range", "lines[5].quantity", "invalid_type", "lines[6].quantity",
           "invalid_type", "lines[7].quantity", "invalid_type", NULL);
    msg =
        only_message("{'lines':[{'sku':'A','name':'W','quantity':0,'unit_price':'1'}]}", ORDER, NORDER, VALIDATE_PATCH);
    ck_assert_str_eq(msg, "must be between 1 and 1000000");
    free(msg);

    EXPECT("{'owner_id':1}", CUSTOMER, VALIDATE_PATCH, NULL, NULL);
    EXPECT("{'owner_id':9223372036854775807}", CUSTOMER, VALIDATE_PATCH, NULL, NULL);
    EXPECT("{'owner_id':0}", CUSTOMER, VALIDATE_PATCH, NULL, "owner_id", "out_of_range", NULL);
    EXPECT("{'owner_id':-1}", CUSTOMER, VALIDATE_PATCH, NULL, "owner_id", "out_of_range", NULL);
    EXPECT("{'owner_id':'7'}", CUSTOMER, VALIDATE_PATCH, NULL, "owner_id", "invalid_type", NULL);
    EXPECT("{'owner_id':7.5}", CUSTOMER, VALIDATE_PATCH, NULL, "owner_id", "invalid_type", NULL);

    v = json_integer(42);
    ck_assert_int_eq(validate_id_value(v, &id), 0);
    ck_assert_int_eq(id, 42);
    ck_assert_int_eq(validate_id_value(v, NULL), 0);
    json_decref(v);
    id = 99;
    v = json_integer(0);
    ck_assert_int_eq(validate_id_value(v, &id), ERR_INVALID);
    json_decref(v);
    v = json_string("42");
    ck_assert_int_eq(validate_id_value(v, &id), ERR_INVALID);
    json_decref(v);
    v = json_real(42.0);
    ck_assert_int_eq(validate_id_value(v, &id), ERR_INVALID);
    json_decref(v);
    ck_assert_int_eq(validate_id_value(NULL, &id), ERR_INVALID);
    ck_assert_int_eq(id, 99);
}
END_TEST

START_TEST(booleans)
{
    EXPECT_CUSTOMER_WITH("marketing_opt_in", json_true(), NULL);
    EXPECT_CUSTOMER_WITH("marketing_opt_in", json_false(), NULL);
    EXPECT_CUSTOMER_WITH("marketing_opt_in", json_integer(1), "marketing_opt_in", "invalid_type", NULL);
    EXPECT_CUSTOMER_WITH("marketing_opt_in", json_string("true"), "marketing_opt_in", "invalid_type", NULL);
}
END_TEST

/* --- codes -------------------------------------------------------------- */

START_TEST(countries)
{
    static const char *const OK[] = {"DE", "US", "GB", "FR", "JP", "AQ", "SS", "CW", "AX", "ZW"};
    static const char *const BAD[] = {"XX", "de", "De", "DEU", "D", "", "UK", "EU", "XK", "ZZ", "AA", "D1", " DE"};
    size_t i;

    for (i = 0; i < sizeof(OK) / sizeof(OK[0]); ++i) {
        json_t *c = J("{'address':{}}");
        json_object_set_new(json_object_get(c, "address"), "country", json_string(OK[i]));
        ck_assert_msg(validate_is_country(OK[i], strlen(OK[i])), "rejected %s", OK[i]);
        json_decref(vcheck(c, CUSTOMER, NCUSTOMER, VALIDATE_PATCH, NULL, NULL));
        json_decref(c);
    }
    for (i = 0; i < sizeof(BAD) / sizeof(BAD[0]); ++i) {
        json_t *c = J("{'address':{}}");
        json_object_set_new(json_object_get(c, "address"), "country", json_string(BAD[i]));
        ck_assert_msg(!validate_is_country(BAD[i], strlen(BAD[i])), "accepted %s", BAD[i]);
        json_decref(vcheck(c, CUSTOMER, NCUSTOMER, VALIDATE_PATCH, NULL, "address.country", "invalid_format", NULL));
        json_decref(c);
    }
    EXPECT("{'address':{'country':49}}", CUSTOMER, VALIDATE_PATCH, NULL, "address.country", "invalid_type", NULL);
}
END_TEST

START_TEST(currencies)
{
    static const char *const OK[] = {"EUR", "USD", "JPY", "CHF", "XCG", "ZWG", "VED", "SLE", "XAU", "CLF"};
    static const char *const BAD[] = {"EURO", "eur", "Eur", "XYZ", "EU",  "",    "XTS", "XXX",
                                      "HRK",  "BGN", "ANG", "ZWL", "SLL", "DEM", "E1R", "EUR "};
    size_t i;

    for (i = 0; i < sizeof(OK) / sizeof(OK[0]); ++i) {
        json_t *o = J("{}");
        json_object_set_new(o, "currency", json_string(OK[i]));
        ck_assert_msg(validate_is_currency(OK[i], strlen(OK[i])), "rejected %s", OK[i]);
        json_decref(vcheck(o, ORDER, NORDER, VALIDATE_PATCH, NULL, NULL));
        json_decref(o);
    }
    for (i = 0; i < sizeof(BAD) / sizeof(BAD[0]); ++i) {
        json_t *o = J("{}");
        json_object_set_new(o, "currency", json_string(BAD[i]));
        ck_assert_msg(!validate_is_currency(BAD[i], strlen(BAD[i])), "accepted %s", BAD[i]);
        json_decref(vcheck(o, ORDER, NORDER, VALIDATE_PATCH, NULL, "currency", "invalid_format", NULL));
        json_decref(o);
    }
}
END_TEST

START_TEST(code_lists_sorted_and_complete)
{
    size_t i;

    /* bsearch() needs strictly ascending lists; the counts catch a lost or doubled line. */
    ck_assert_uint_eq(VALIDATE_COUNT(COUNTRIES), 249);
    ck_assert_uint_eq(VALIDATE_COUNT(CURRENCIES), 176);
    for (i = 1; i < VALIDATE_COUNT(COUNTRIES); ++i)
        ck_assert_msg(strcmp(COUNTRIES[i - 1], COUNTRIES[i]) < 0, "%s before %s", COUNTRIES[i - 1], COUNTRIES[i]);
    for (i = 1; i < VALIDATE_COUNT(CURRENCIES); ++i)
        ck_assert_msg(strcmp(CURRENCIES[i - 1], CURRENCIES[i]) < 0, "%s before %s", CURRENCIES[i - 1], CURRENCIES[i]);
    for (i = 0; i < VALIDATE_COUNT(COUNTRIES); ++i)
        ck_assert(strlen(COUNTRIES[i]) == 2 && validate_is_country(COUNTRIES[i], 2));
    for (i = 0; i < VALIDATE_COUNT(CURRENCIES); ++i)
        ck_assert(strlen(CURRENCIES[i]) == 3 && validate_is_currency(CURRENCIES[i], 3));
}
END_TEST

/* --- arrays and free-form objects --------------------------------------- */

START_TEST(string_arrays)
{
    json_t *tags = json_array();
    char *s;
    size_t i;

    for (i = 0; i < 50; ++i)
        json_array_append_new(tags, json_sprintf("tag%zu", i));
    EXPECT_CUSTOMER_WITH("tags", json_deep_copy(tags), NULL);
    /* One item too many is one error for the whole array, not per item. */
    json_array_append_new(tags, json_integer(5));
    EXPECT_CUSTOMER_WITH("tags", json_deep_copy(tags), "tags", "too_many", NULL);
    json_decref(tags);

    s = repeat("t", 50);
    tags = json_pack("[s,s,s,s]", "ok", s, "", "  ");
    EXPECT_CUSTOMER_WITH("tags", tags, "tags[2]", "too_short", "tags[3]", "too_short", NULL);
    free(s);
    s = repeat("é", 51);
    EXPECT_CUSTOMER_WITH("tags", json_pack("[s,i,s,n,s]", "a", 1, s, "b\nc"), "tags[1]", "invalid_type", "tags[2]",
                         "too_long", "tags[3]", "invalid_type", "tags[4]", "invalid_format", NULL);
    free(s);
    EXPECT_CUSTOMER_WITH("tags", json_array(), NULL);
    EXPECT_CUSTOMER_WITH("tags", json_string("a,b"), "tags", "invalid_type", NULL);
    {
        char *msg = only_message("{'lines':[]}", ORDER, NORDER, VALIDATE_PATCH);
        ck_assert_str_eq(msg, "must have at least 1 item");
        free(msg);
    }
    EXPECT("{'lines':[]}", ORDER, VALIDATE_PATCH, NULL, "lines", "too_short", NULL);
}
END_TEST

START_TEST(object_arrays_limit)
{
    json_t *o = J("{'lines':[]}"), *lines = json_object_get(o, "lines");
    size_t i;

    for (i = 0; i < 500; ++i)
        json_array_append_new(lines, J("{'sku':'A','name':'W','quantity':1,'unit_price':'1'}"));
    json_decref(vcheck(o, ORDER, NORDER, VALIDATE_PATCH, NULL, NULL));
    json_array_append_new(lines, J("{'bad':1}"));
    json_decref(vcheck(o, ORDER, NORDER, VALIDATE_PATCH, NULL, "lines", "too_many", NULL));
    json_decref(o);
}
END_TEST

START_TEST(free_form_object_size)
{
    /* {"k":"xxx"} is 8 + n bytes compact; 16384 is the limit, inclusive. */
    char *s = repeat("x", 16 * 1024 - 8);
    json_t *attrs = json_pack("{s:s}", "k", s);
    char *msg;

    ck_assert_uint_eq(json_dumpb(attrs, NULL, 0, JSON_COMPACT), 16384);
    EXPECT_CUSTOMER_WITH("attrs", json_deep_copy(attrs), NULL);
    free(s);
    s = repeat("x", 16 * 1024 - 7);
    json_object_set_new(attrs, "k", json_string(s));
    EXPECT_CUSTOMER_WITH("attrs", json_deep_copy(attrs), "attrs", "too_large", NULL);
    json_decref(attrs);
    free(s);
    EXPECT_CUSTOMER_WITH("attrs", J("{'nested':{'a':[1,{'b':null}]},'x':1.5}"), NULL);
    EXPECT_CUSTOMER_WITH("attrs", J("{}"), NULL);
    EXPECT_CUSTOMER_WITH("attrs", J("[1]"), "attrs", "invalid_type", NULL);
    EXPECT_CUSTOMER_WITH("attrs", json_string("{}"), "attrs", "invalid_type", NULL);
    msg = only_message("{'attrs':7}", CUSTOMER, NCUSTOMER, VALIDATE_PATCH);
    ck_assert_str_eq(msg, "must be an object");
    free(msg);
}
END_TEST

/* --- trimming and tables ------------------------------------------------ */

START_TEST(trim_in_place)
{
    json_t *c = J("{'kind':'person','name':'  Ada \\t','email':' a@b.de\\n','notes':'  keep  ',"
                  "'address':{'line1':' Main St 1 ','city':'x','country':'DE'},'tags':[' vip ','eu'],"
                  "'attrs':{'k':'  untouched  '},'status':'lead'}");
    json_t *o = J("{'lines':[{'sku':' A-1 ','name':' W ','quantity':1,'unit_price':'1'}]}");

    json_decref(vcheck(c, CUSTOMER, NCUSTOMER, VALIDATE_CREATE, NULL, NULL));
    validate_trim(c, CUSTOMER, NCUSTOMER);
    ck_assert_str_eq(json_string_value(json_object_get(c, "name")), "Ada");
    ck_assert_str_eq(json_string_value(json_object_get(c, "email")), "a@b.de");
    ck_assert_str_eq(json_string_value(json_object_get(c, "notes")), "  keep  "); /* no VF_TRIM */
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(c, "address"), "line1")), "Main St 1");
    ck_assert_str_eq(json_string_value(json_array_get(json_object_get(c, "tags"), 0)), "vip");
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(c, "attrs"), "k")), "  untouched  ");
    validate_trim(o, ORDER, NORDER);
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(json_object_get(o, "lines"), 0), "sku")), "A-1");
    /* Mismatched shapes are left alone rather than crashing. */
    {
        json_t *arr = json_array();
        validate_trim(arr, CUSTOMER, NCUSTOMER);
        json_decref(arr);
    }
    {
        json_t *odd = J("{'name':5,'address':'x','tags':{'a':1},'lines':'y'}");
        validate_trim(odd, CUSTOMER, NCUSTOMER);
        validate_trim(odd, ORDER, NORDER);
        json_decref(odd);
    }
    json_decref(c);
    json_decref(o);
}
END_TEST

START_TEST(table_checks)
{
    static const char *const NO_VALUES[] = {NULL};
    static const validate_field_t BAD_NESTED[] = {{.name = "country", .type = VT_DECIMAL, .int_digits = 3, .scale = 7}};
    static const validate_field_t BAD_ITEM = {.type = VT_STRING};
    static const struct {
        validate_field_t f;
        const char *what;
    } BAD[] = {
        {{.name = "e", .type = VT_ENUM}, "enum without values"},
        {{.name = "e", .type = VT_ENUM, .enum_values = NO_VALUES}, "enum without values"},
        {{.name = "d", .type = VT_DECIMAL, .int_digits = 16, .scale = 7}, "needs int_digits"},
        {{.name = "d", .type = VT_DECIMAL, .int_digits = 23, .scale = 2}, "needs int_digits"},
        {{.name = "d", .type = VT_DECIMAL, .int_digits = 0, .scale = 2}, "needs int_digits"},
        {{.name = "s", .type = VT_STRING}, "no max_len"},
        {{.name = "s", .type = VT_STRING, .min_len = 5, .max_len = 4}, "min_len above max_len"},
        {{.name = "s", .type = VT_STRING, .max_len = 5, .flags = VF_REQUIRED | VF_NULLABLE}, "VF_REQUIRED"},
        {{.name = "s", .type = VT_STRING, .max_len = 5, .flags = VF_REQUIRED | VF_READONLY}, "VF_REQUIRED"},
        {{.name = "t", .type = VT_STRING_ARRAY, .max_len = 5}, "item_max_len"},
        {{.name = "j", .type = VT_JSON_OBJECT}, "no max_bytes"},
        {{.name = "o", .type = VT_OBJECT}, "without a field table"},
        {{.name = "a", .type = VT_ARRAY, .max_len = 5}, "without an item description"},
        {{.name = "a", .type = VT_ARRAY, .max_len = 5, .fields = &BAD_ITEM}, "\"a[]\" has no max_len"},
        {{.name = "i", .type = VT_INT, .flags = VF_RANGE, .min_value = 5, .max_value = 1}, "min_value above"},
        {{.name = "b", .type = VT_BOOL, .flags = VF_RANGE}, "not a number"},
        {{.name = "x.y", .type = VT_BOOL}, "no name or one with"},
        {{.name = NULL, .type = VT_BOOL}, "no name or one with"},
        {{.name = "addr", .type = VT_OBJECT, VALIDATE_NESTED(BAD_NESTED)}, "\"addr.country\" needs int_digits"},
    };
    static const validate_field_t DUP[] = {{.name = "a", .type = VT_BOOL}, {.name = "a", .type = VT_INT}};
    char err[200];
    size_t i;

    ck_assert_int_eq(validate_table_check(CUSTOMER, NCUSTOMER, err, sizeof(err)), 0);
    ck_assert_str_eq(err, "");
    ck_assert_int_eq(validate_table_check(ORDER, NORDER, NULL, 0), 0);
    for (i = 0; i < sizeof(BAD) / sizeof(BAD[0]); ++i) {
        ck_assert_msg(validate_table_check(&BAD[i].f, 1, err, sizeof(err)) == ERR_INVALID, "table %zu passed", i);
        ck_assert_msg(strstr(err, BAD[i].what) != NULL, "table %zu: \"%s\" lacks \"%s\"", i, err, BAD[i].what);
    }
    ck_assert_int_eq(validate_table_check(DUP, 2, err, sizeof(err)), ERR_INVALID);
    ck_assert_ptr_nonnull(strstr(err, "twice"));
    /* A tiny buffer is truncated, not overrun. */
    ck_assert_int_eq(validate_table_check(DUP, 2, err, 4), ERR_INVALID);
    ck_assert_uint_eq(strlen(err), 3);
}
END_TEST

static Suite *validate_suite(void)
{
    Suite *s = suite_create("api/validate");
    TCase *tc;

    tc = tcase_create("bodies");
    tcase_set_timeout(tc, 10);
    tcase_add_test(tc, valid_bodies);
    tcase_add_test(tc, every_error_at_once);
    tcase_add_test(tc, required_in_create_and_replace);
    tcase_add_test(tc, patch_mode);
    tcase_add_test(tc, null_in_create);
    tcase_add_test(tc, read_only_fields);
    tcase_add_test(tc, unknown_fields);
    tcase_add_test(tc, non_object_bodies);
    tcase_add_test(tc, bulk_prefix);
    suite_add_tcase(s, tc);

    tc = tcase_create("strings");
    tcase_set_timeout(tc, 10);
    tcase_add_test(tc, string_length_boundaries);
    tcase_add_test(tc, string_characters);
    tcase_add_test(tc, enums);
    tcase_add_test(tc, emails);
    tcase_add_test(tc, phones);
    tcase_add_test(tc, timestamps);
    suite_add_tcase(s, tc);

    tc = tcase_create("numbers");
    tcase_set_timeout(tc, 10);
    tcase_add_test(tc, decimals);
    tcase_add_test(tc, decimal_str_helper);
    tcase_add_test(tc, integers_and_ids);
    tcase_add_test(tc, booleans);
    suite_add_tcase(s, tc);

    tc = tcase_create("codes");
    tcase_set_timeout(tc, 10);
    tcase_add_test(tc, countries);
    tcase_add_test(tc, currencies);
    tcase_add_test(tc, code_lists_sorted_and_complete);
    suite_add_tcase(s, tc);

    tc = tcase_create("containers");
    tcase_set_timeout(tc, 10);
    tcase_add_test(tc, string_arrays);
    tcase_add_test(tc, object_arrays_limit);
    tcase_add_test(tc, free_form_object_size);
    suite_add_tcase(s, tc);

    tc = tcase_create("trim_and_tables");
    tcase_set_timeout(tc, 10);
    tcase_add_test(tc, trim_in_place);
    tcase_add_test(tc, table_checks);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(validate_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
