/*
 * tests/unit/common/phone_test.c - unit tests for common/phone.c.
 *
 * The ways people write one number read as one E.164 number in the default
 * region (China first, then North America and Europe); what is not a
 * number is refused; the stored-number key is the SQL function's; and
 * every way of writing a number has its key among the keys phone_keys()
 * gives for its E.164 form, which is what lets the duplicate lookup find
 * it through the index.
 */
#include <check.h>
#include <stdio.h>
#include <string.h>

#include "../../../common/phone.c"

static const char *e164(const char *iso, const char *s)
{
    static char out[PHONE_E164_MAX];
    const phone_region_t *r = phone_region(iso);
    ck_assert_msg(r != NULL, "no region %s", iso);
    if (phone_e164(s, strlen(s), r, out) != 0)
        return NULL;
    return out;
}

#define EXPECT(iso, in, want)                                                                                          \
    do {                                                                                                               \
        const char *got_ = e164(iso, in);                                                                              \
        ck_assert_msg(got_ != NULL && strcmp(got_, want) == 0, "%s \"%s\": got %s, want %s", iso, in,                  \
                      got_ ? got_ : "(refused)", want);                                                                \
    } while (0)

#define REFUSED(iso, in)                                                                                               \
    do {                                                                                                               \
        const char *got_ = e164(iso, in);                                                                              \
        ck_assert_msg(got_ == NULL, "%s \"%s\": got %s, want a refusal", iso, in, got_);                               \
    } while (0)

START_TEST(test_regions)
{
    ck_assert_str_eq(phone_region("CN")->cc, "86");
    ck_assert_str_eq(phone_region("CN")->trunk, "0");
    ck_assert_str_eq(phone_region("US")->idd, "011");
    ck_assert_ptr_null(phone_region("cn"));
    ck_assert_ptr_null(phone_region("XX"));
    ck_assert_ptr_null(phone_region(""));
    ck_assert_ptr_null(phone_region(NULL));
    /* Every region has a code of digits and an international prefix; codes are prefix-free across countries. */
    for (size_t i = 0; i < NREGIONS; i++) {
        ck_assert(strlen(regions[i].iso) == 2 && strlen(regions[i].cc) >= 1 && strlen(regions[i].idd) >= 2);
        for (size_t j = 0; j < NREGIONS; j++)
            if (strcmp(regions[i].cc, regions[j].cc) != 0)
                ck_assert_msg(strncmp(regions[i].cc, regions[j].cc, strlen(regions[i].cc)) != 0, "%s is a prefix of %s",
                              regions[i].cc, regions[j].cc);
    }
}
END_TEST

START_TEST(test_china)
{
    /* A mobile number: no trunk prefix, written every way. */
    EXPECT("CN", "13800138000", "+8613800138000");
    EXPECT("CN", "138 0013 8000", "+8613800138000");
    EXPECT("CN", "138-0013-8000", "+8613800138000");
    EXPECT("CN", "+86 138 0013 8000", "+8613800138000");
    EXPECT("CN", "+86-138-0013-8000", "+8613800138000");
    EXPECT("CN", "0086 138 0013 8000", "+8613800138000");
    EXPECT("CN", "  +8613800138000  ", "+8613800138000");
    /* Full-width digits, plus and space, as an input method types them. */
    EXPECT("CN",
           "\xEF\xBC\x8B\xEF\xBC\x98\xEF\xBC\x96\xE3\x80\x80\xEF\xBC\x91\xEF\xBC\x93\xEF\xBC\x98"
           "\xEF\xBC\x90\xEF\xBC\x90\xEF\xBC\x91\xEF\xBC\x93\xEF\xBC\x98\xEF\xBC\x90\xEF\xBC\x90\xEF\xBC\x90",
           "+8613800138000");
    /* A Beijing landline: trunk 0 and area code 10. */
    EXPECT("CN", "010-12345678", "+861012345678");
    EXPECT("CN", "(010) 1234 5678", "+861012345678");
    EXPECT("CN",
           "\xEF\xBC\x88"
           "010\xEF\xBC\x89"
           "12345678",
           "+861012345678");
    EXPECT("CN", "010.1234.5678", "+861012345678");
    EXPECT("CN", "1012345678", "+861012345678");
    EXPECT("CN", "+86 10 1234 5678", "+861012345678");
    EXPECT("CN", "+86 (0)10 1234 5678", "+861012345678");
    EXPECT("CN", "+86 010 1234 5678", "+861012345678");
    EXPECT("CN", "0086 010 12345678", "+861012345678");
    EXPECT("CN", "0086-10-12345678", "+861012345678");
    /* Extensions are not part of the number. */
    EXPECT("CN", "021-6123 4567 ext. 89", "+862161234567");
    EXPECT("CN", "021-6123 4567 x89", "+862161234567");
    EXPECT("CN", "021-6123 4567 #89", "+862161234567");
    EXPECT("CN", "021-6123 4567, 89", "+862161234567");
    EXPECT("CN", "021-6123 4567;89", "+862161234567");
    EXPECT("CN", "021 6123 4567 EXT 89", "+862161234567");
    /* Numbers abroad, in international form. */
    EXPECT("CN", "+1 (415) 555-0100", "+14155550100");
    EXPECT("CN", "00 1 415 555 0100", "+14155550100");
    EXPECT("CN", "+44 (0)20 7946 0958", "+442079460958");
    EXPECT("CN", "+44 020 7946 0958", "+442079460958");
    EXPECT("CN", "+852 2123 4567", "+85221234567");
    /* Italy's leading 0 belongs to the number. */
    EXPECT("CN", "+39 06 1234 5678", "+390612345678");
    /* A country the table does not know: read as written. */
    EXPECT("CN", "+998 71 123 45 67", "+998711234567");
}
END_TEST

START_TEST(test_other_regions)
{
    EXPECT("US", "(415) 555-0100", "+14155550100");
    EXPECT("US", "415.555.0100", "+14155550100");
    EXPECT("US", "1-415-555-0100", "+14155550100");
    EXPECT("US", "+1 415 555 0100", "+14155550100");
    EXPECT("US", "011 44 20 7946 0958", "+442079460958");
    EXPECT("US", "011 86 138 0013 8000", "+8613800138000");
    EXPECT("GB", "020 7946 0958", "+442079460958");
    EXPECT("GB", "07700 900123", "+447700900123");
    EXPECT("GB", "0044 20 7946 0958", "+442079460958");
    EXPECT("DE", "030 1234567", "+49301234567");
    EXPECT("DE", "+49 (0)30 1234567", "+49301234567");
    EXPECT("DE", "030/1234567", "+49301234567");
    EXPECT("RU", "8 (495) 123-45-67", "+74951234567");
    EXPECT("RU", "8 800 555 35 35", "+78005553535");
    EXPECT("RU", "+7 495 123 45 67", "+74951234567");
    EXPECT("IT", "06 1234 5678", "+390612345678");
    EXPECT("JP", "03-1234-5678", "+81312345678");
    EXPECT("JP", "010 86 10 1234 5678", "+861012345678");
    EXPECT("HK", "2123 4567", "+85221234567");
}
END_TEST

START_TEST(test_refused)
{
    REFUSED("CN", "");
    REFUSED("CN", "   ");
    REFUSED("CN", "+");
    REFUSED("CN", "+86");
    REFUSED("CN", "12345");                  /* +8612345: fewer than 8 digits */
    REFUSED("CN", "0");                      /* the trunk prefix alone */
    REFUSED("CN", "+1234567890123456");      /* 16 digits */
    REFUSED("CN", "1380013800013800138000"); /* far too long */
    REFUSED("CN", "++86 138 0013 8000");
    REFUSED("CN", "+86 138 +0013 8000");
    REFUSED("CN", "+0086 138 0013 8000"); /* no country code starts with 0 */
    REFUSED("CN", "call 138 0013 8000");
    REFUSED("CN", "1-800-FLOWERS");
    REFUSED("CN", "138\xE2\x80\x8B"
                  "0013 8000"); /* a zero-width space: not a separator */
    REFUSED("CN", "n/a");
    char big[400];
    memset(big, '1', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    REFUSED("CN", big);
    char out[PHONE_E164_MAX];
    ck_assert_int_eq(phone_e164("13800138000", 11, NULL, out), ERR_INVALID);
    ck_assert_str_eq(out, "");
}
END_TEST

static const char *key(const char *s)
{
    static char out[PHONE_KEY_MAX];
    phone_key(s, strlen(s), out);
    return out;
}

START_TEST(test_key)
{
    ck_assert_str_eq(key("+86 (0)10 1234-5678"), "+861012345678");
    ck_assert_str_eq(key("010-12345678"), "01012345678");
    ck_assert_str_eq(key("  +1 415 555 0100"), "+14155550100");
    ck_assert_str_eq(key("\xEF\xBC\x8B\xEF\xBC\x98\xEF\xBC\x96"), "+86");
    ck_assert_str_eq(key("021 6123 4567 ext 89"), "02161234567");
    ck_assert_str_eq(key("021 6123 4567 x 89"), "02161234567");
    ck_assert_str_eq(key("(0)21 6123"), "0216123"); /* "(0)" is dropped only after a '+' */
    ck_assert_str_eq(key("+((0)0)"), "+0");         /* one pass, left to right, like replace() */
    ck_assert_str_eq(key("tel: 138"), "138");
    ck_assert_str_eq(key(""), "");
    ck_assert_str_eq(key("12345678901234567890123456789"), "12345678901234567890123"); /* cut */
}
END_TEST

/* The writings of one number in a region: each reads as e164, and its key is one phone_keys() gives. */
typedef struct {
    const char *iso, *e164;
    const char *ways[10];
} writings_t;

static const writings_t writings[] = {
    {"CN",
     "+8613800138000",
     {"13800138000", "138 0013 8000", "+86 138 0013 8000", "0086 13800138000", "+86-138-0013-8000",
      "+86 138 0013 8000 x12", NULL}},
    {"CN",
     "+861012345678",
     {"010-12345678", "(010) 1234 5678", "1012345678", "+86 10 1234 5678", "+86 (0)10 12345678", "+86 010 12345678",
      "0086 010 12345678", "0086 10 12345678", NULL}},
    {"CN", "+14155550100", {"+1 415 555 0100", "001 415 555 0100", NULL}},
    {"CN",
     "+442079460958",
     {"+44 20 7946 0958", "+44 (0)20 7946 0958", "+44 020 7946 0958", "0044 020 79460958", NULL}},
    {"US", "+14155550100", {"(415) 555-0100", "1 415 555 0100", "+1 415 555 0100", "011 1 415 555 0100", NULL}},
    {"GB", "+442079460958", {"020 7946 0958", "20 7946 0958", "+44 20 7946 0958", "00 44 20 7946 0958", NULL}},
    {"RU", "+78005553535", {"8 800 555 35 35", "+7 800 555 35 35", "810 7 800 555 35 35", NULL}},
    {"IT", "+390612345678", {"06 1234 5678", "+39 06 1234 5678", "0039 06 12345678", NULL}},
};

START_TEST(test_keys_cover_every_writing)
{
    for (size_t w = 0; w < sizeof(writings) / sizeof(writings[0]); w++) {
        const phone_region_t *r = phone_region(writings[w].iso);
        char keys[PHONE_KEYS_MAX][PHONE_KEY_MAX];
        int n = phone_keys(writings[w].e164, r, keys);
        ck_assert_int_ge(n, 1);
        for (size_t i = 0; writings[w].ways[i] != NULL; i++) {
            const char *way = writings[w].ways[i];
            EXPECT(writings[w].iso, way, writings[w].e164);
            const char *k = key(way);
            int found = 0;
            for (int j = 0; j < n; j++)
                found |= strcmp(keys[j], k) == 0;
            ck_assert_msg(found, "%s: the key %s of \"%s\" is not among the keys of %s", writings[w].iso, k, way,
                          writings[w].e164);
        }
        /* And every key given is the key of a writing that reads back as the number. */
        for (int j = 0; j < n; j++)
            EXPECT(writings[w].iso, keys[j], writings[w].e164);
    }
}
END_TEST

START_TEST(test_keys)
{
    char keys[PHONE_KEYS_MAX][PHONE_KEY_MAX];
    int n = phone_keys("+861012345678", phone_region("CN"), keys);
    ck_assert_int_eq(n, 6);
    ck_assert_str_eq(keys[0], "+861012345678");
    ck_assert_str_eq(keys[1], "+8601012345678");
    ck_assert_str_eq(keys[2], "00861012345678");
    ck_assert_str_eq(keys[3], "008601012345678");
    ck_assert_str_eq(keys[4], "01012345678");
    ck_assert_str_eq(keys[5], "1012345678");
    /* A number abroad has no national forms. */
    n = phone_keys("+861012345678", phone_region("US"), keys);
    ck_assert_int_eq(n, 4);
    ck_assert_str_eq(keys[2], "011861012345678");
    /* Russian toll-free numbers start with 8, the trunk prefix: written bare they would read otherwise. */
    n = phone_keys("+78005553535", phone_region("RU"), keys);
    for (int i = 0; i < n; i++)
        ck_assert_str_ne(keys[i], "8005553535");
    /* Not E.164. */
    ck_assert_int_eq(phone_keys("861012345678", phone_region("CN"), keys), 0);
    ck_assert_int_eq(phone_keys("+86 10", phone_region("CN"), keys), 0);
    ck_assert_int_eq(phone_keys("+1234567", phone_region("CN"), keys), 0);
    ck_assert_int_eq(phone_keys(NULL, phone_region("CN"), keys), 0);
    ck_assert_int_eq(phone_keys("+861012345678", NULL, keys), 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("phone");
    TCase *tc = tcase_create("phone");
    tcase_add_test(tc, test_regions);
    tcase_add_test(tc, test_china);
    tcase_add_test(tc, test_other_regions);
    tcase_add_test(tc, test_refused);
    tcase_add_test(tc, test_key);
    tcase_add_test(tc, test_keys_cover_every_writing);
    tcase_add_test(tc, test_keys);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
