/*
 * tests/unit/api/auth_test.c - unit tests for api/auth.c's access token
 * cache (verify_cached): a hit is exactly a token verified before, it
 * expires like a full check would (same clamped leeway), and tokens that
 * share a slot never get each other's claims, nor does a forged token that
 * lands in a cached token's slot get in. No server or loop is needed: the
 * cache only reads the request's thread and the server's token settings.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../../api/auth.c"

static const char SECRET[] = "auth-unit-secret-0123456789abcdef-0123456789";

static api_server_t server;
static api_thread_t thread;
static api_req_t req;

static void setup(void)
{
    server.token = (token_conf_t){.alg = TOKEN_HS256,
                                  .key = (const unsigned char *)SECRET,
                                  .key_len = strlen(SECRET),
                                  .issuer = "clientele",
                                  .audience = "clientele-api",
                                  .ttl_s = 900,
                                  .leeway_s = 30};
    thread.server = &server;
    thread.tokens = api_token_cache_new();
    req.thread = &thread;
}

static void teardown(void)
{
    api_token_cache_free(thread.tokens);
    thread.tokens = NULL;
}

/* A token for user sub issued at `at` (the caller frees it). */
static char *issue(int64_t sub, int64_t at)
{
    token_claims_t c = {.sub = sub, .team = 0, .ver = 1};
    strcpy(c.role, "rep");
    char *t = NULL;
    ck_assert_int_eq(token_issue(&server.token, &c, at, &t), 0);
    return t;
}

static int verify(const char *t, token_claims_t *c, const char **why)
{
    *why = NULL;
    return verify_cached(&req, t, strlen(t), c, why);
}

START_TEST(a_hit_gives_the_same_claims_as_the_full_check)
{
    char *t = issue(42, (int64_t)time(NULL));
    token_claims_t a, b;
    const char *why;
    ck_assert_int_eq(verify(t, &a, &why), 0);
    ck_assert_int_eq(verify(t, &b, &why), 0);
    ck_assert_int_eq(b.sub, 42);
    ck_assert(memcmp(&a, &b, sizeof(a)) == 0);
    ck_assert_ptr_nonnull(thread.tokens->slots[token_slot(t, strlen(t))].token);
    free(t);
}
END_TEST

START_TEST(a_cached_token_expires_with_the_clamped_leeway)
{
    /* A leeway beyond the maximum is clamped by token_verify(); the cache must clamp it the same way. */
    server.token.leeway_s = 3600;
    int64_t now = (int64_t)time(NULL);
    /* exp = now - 28: still valid for 2 seconds under the 30 s maximum leeway. */
    char *t = issue(7, now - 900 - 28);
    token_claims_t c;
    const char *why;
    ck_assert_int_eq(verify(t, &c, &why), 0);
    ck_assert_ptr_nonnull(thread.tokens->slots[token_slot(t, strlen(t))].token);
    sleep(3);
    ck_assert_int_eq(verify(t, &c, &why), ERR_UNAUTHENTICATED);
    ck_assert_pstr_eq(why, "token expired");
    /* The full check agrees. */
    ck_assert_int_eq(token_verify(&server.token, t, strlen(t), (int64_t)time(NULL), &c, &why), ERR_UNAUTHENTICATED);
    free(t);
}
END_TEST

START_TEST(an_expired_hit_is_refused_at_the_normal_leeway)
{
    int64_t now = (int64_t)time(NULL);
    char *t = issue(8, now - 900 - 28);
    token_claims_t c;
    const char *why;
    ck_assert_int_eq(verify(t, &c, &why), 0);
    sleep(3);
    ck_assert_int_eq(verify(t, &c, &why), ERR_UNAUTHENTICATED);
    ck_assert_pstr_eq(why, "token expired");
    free(t);
}
END_TEST

START_TEST(tokens_sharing_a_slot_keep_their_own_claims)
{
    int64_t now = (int64_t)time(NULL);
    char *a = issue(1, now), *b = NULL;
    size_t slot = token_slot(a, strlen(a));
    for (int64_t sub = 2; sub < 100000 && b == NULL; sub++) {
        char *t = issue(sub, now);
        if (token_slot(t, strlen(t)) == slot)
            b = t;
        else
            free(t);
    }
    ck_assert_msg(b != NULL, "no token found for slot %zu", slot);
    token_claims_t ca, cb;
    const char *why;
    for (int round = 0; round < 3; round++) {
        ck_assert_int_eq(verify(a, &ca, &why), 0);
        ck_assert_int_eq(ca.sub, 1);
        ck_assert_int_eq(verify(b, &cb, &why), 0);
        ck_assert_int_ne(cb.sub, 1);
        ck_assert_str_ne(ca.jti, cb.jti);
    }
    /* The slot holds the last one verified. */
    ck_assert_uint_eq(thread.tokens->slots[slot].len, strlen(b));
    ck_assert(memcmp(thread.tokens->slots[slot].token, b, strlen(b)) == 0);
    free(a);
    free(b);
}
END_TEST

START_TEST(a_forged_token_in_a_cached_slot_is_refused)
{
    char *t = issue(5, (int64_t)time(NULL));
    size_t len = strlen(t), slot = token_slot(t, len);
    token_claims_t c;
    const char *why;
    ck_assert_int_eq(verify(t, &c, &why), 0);
    /* Change two characters of the signature until the forgery falls into the same slot. */
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    char *f = strdup(t);
    int found = 0;
    for (int i = 0; i < 64 && !found; i++)
        for (int j = 0; j < 64 && !found; j++) {
            f[len - 3] = b64[i];
            f[len - 2] = b64[j];
            found = strcmp(f, t) != 0 && token_slot(f, len) == slot;
        }
    ck_assert(found);
    ck_assert_int_eq(verify(f, &c, &why), ERR_UNAUTHENTICATED);
    ck_assert_int_eq(c.sub, 0);
    /* A prefix or an extension of the cached token is not a hit either. */
    ck_assert_int_eq(verify_cached(&req, t, len - 1, &c, &why), ERR_UNAUTHENTICATED);
    /* The genuine token is still cached and accepted. */
    ck_assert_int_eq(verify(t, &c, &why), 0);
    ck_assert_int_eq(c.sub, 5);
    free(f);
    free(t);
}
END_TEST

START_TEST(without_a_cache_every_call_is_a_full_check)
{
    api_token_cache_free(thread.tokens);
    thread.tokens = NULL;
    char *t = issue(9, (int64_t)time(NULL));
    token_claims_t c;
    const char *why;
    ck_assert_int_eq(verify(t, &c, &why), 0);
    ck_assert_int_eq(c.sub, 9);
    free(t);
}
END_TEST

static Suite *auth_suite(void)
{
    Suite *s = suite_create("api/auth");
    TCase *tc = tcase_create("token_cache");
    tcase_set_timeout(tc, 30);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, a_hit_gives_the_same_claims_as_the_full_check);
    tcase_add_test(tc, a_cached_token_expires_with_the_clamped_leeway);
    tcase_add_test(tc, an_expired_hit_is_refused_at_the_normal_leeway);
    tcase_add_test(tc, tokens_sharing_a_slot_keep_their_own_claims);
    tcase_add_test(tc, a_forged_token_in_a_cached_slot_is_refused);
    tcase_add_test(tc, without_a_cache_every_call_is_a_full_check);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(auth_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
