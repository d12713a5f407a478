/*
 * tests/unit/common/prom_test.c - unit tests for common/prom.c.
 *
 * What a scraper reads: a family shows its HELP and TYPE before its first
 * sample, label values are escaped, histogram buckets are cumulative with
 * +Inf equal to the count, counts are exact when threads add at once, and
 * a family never grows past its series limit.
 */
#include <check.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "../../../common/prom.c"

static char *render(prom_registry_t *r, h2o_mem_pool_t *pool)
{
    prom_out_t o;
    prom_out_init(&o, pool);
    prom_registry_render(r, &o);
    prom_printf(&o, "%c", '\0');
    return o.buf;
}

START_TEST(counters_show_from_the_start_and_count_by_labels)
{
    h2o_mem_pool_t pool;
    h2o_mem_init_pool(&pool);
    prom_registry_t *r = prom_registry_new();
    prom_family_t *runs = prom_counter(r, "x_runs_total", "Runs.", (const char *const[]){"kind", "status", NULL});
    prom_family_t *plain = prom_counter(r, "x_plain_total", "Plain.", NULL);
    char *s = render(r, &pool);
    ck_assert_str_eq(s, "# HELP x_runs_total Runs.\n# TYPE x_runs_total counter\n"
                        "# HELP x_plain_total Plain.\n# TYPE x_plain_total counter\n");
    prom_touch(runs, (const char *const[]){"rfm", "failed"});
    prom_add(runs, (const char *const[]){"rfm", "succeeded"}, 1);
    prom_add(runs, (const char *const[]){"rfm", "succeeded"}, 2);
    prom_add(runs, (const char *const[]){"clv", "succeeded"}, 1);
    prom_add(plain, NULL, 5);
    s = render(r, &pool);
    ck_assert_ptr_nonnull(strstr(s, "x_runs_total{kind=\"rfm\",status=\"failed\"} 0\n"));
    ck_assert_ptr_nonnull(strstr(s, "x_runs_total{kind=\"rfm\",status=\"succeeded\"} 3\n"));
    ck_assert_ptr_nonnull(strstr(s, "x_runs_total{kind=\"clv\",status=\"succeeded\"} 1\n"));
    ck_assert_ptr_nonnull(strstr(s, "x_plain_total 5\n"));
    /* In the order the series appeared. */
    ck_assert(strstr(s, "status=\"failed\"") < strstr(s, "kind=\"clv\""));
    ck_assert(prom_value(runs, (const char *const[]){"rfm", "succeeded"}) == 3);
    ck_assert(prom_value(runs, (const char *const[]){"none", "succeeded"}) == 0);
    prom_registry_free(r);
    h2o_mem_clear_pool(&pool);
}
END_TEST

START_TEST(label_values_are_escaped)
{
    h2o_mem_pool_t pool;
    h2o_mem_init_pool(&pool);
    prom_registry_t *r = prom_registry_new();
    prom_family_t *f = prom_counter(r, "x_total", "X.", (const char *const[]){"v", NULL});
    prom_add(f, (const char *const[]){"a\"b\\c\nd"}, 1);
    char *s = render(r, &pool);
    ck_assert_ptr_nonnull(strstr(s, "x_total{v=\"a\\\"b\\\\c\\nd\"} 1\n"));
    prom_registry_free(r);
    h2o_mem_clear_pool(&pool);
}
END_TEST

START_TEST(histograms_are_cumulative)
{
    h2o_mem_pool_t pool;
    h2o_mem_init_pool(&pool);
    prom_registry_t *r = prom_registry_new();
    static const double bounds[] = {1, 10};
    prom_family_t *h = prom_histogram(r, "x_seconds", "Durations.", (const char *const[]){"kind", NULL}, bounds, 2);
    prom_family_t *bare = prom_histogram(r, "y_seconds", "Bare.", NULL, bounds, 2);
    prom_observe(h, (const char *const[]){"rfm"}, 0.5);
    prom_observe(h, (const char *const[]){"rfm"}, 1);
    prom_observe(h, (const char *const[]){"rfm"}, 5);
    prom_observe(h, (const char *const[]){"rfm"}, 50);
    prom_observe(bare, NULL, 2);
    char *s = render(r, &pool);
    ck_assert_ptr_nonnull(strstr(s, "# TYPE x_seconds histogram\n"
                                    "x_seconds_bucket{kind=\"rfm\",le=\"1\"} 2\n"
                                    "x_seconds_bucket{kind=\"rfm\",le=\"10\"} 3\n"
                                    "x_seconds_bucket{kind=\"rfm\",le=\"+Inf\"} 4\n"
                                    "x_seconds_sum{kind=\"rfm\"} 56.500000\n"
                                    "x_seconds_count{kind=\"rfm\"} 4\n"));
    ck_assert_ptr_nonnull(strstr(s, "y_seconds_bucket{le=\"1\"} 0\n"
                                    "y_seconds_bucket{le=\"10\"} 1\n"
                                    "y_seconds_bucket{le=\"+Inf\"} 1\n"
                                    "y_seconds_sum 2.000000\n"
                                    "y_seconds_count 1\n"));
    ck_assert(prom_value(h, (const char *const[]){"rfm"}) == 4);
    prom_registry_free(r);
    h2o_mem_clear_pool(&pool);
}
END_TEST

static prom_family_t *shared;

static void *adder(void *arg)
{
    for (int i = 0; i < 10000; i++)
        prom_add(shared, (const char *const[]){i % 2 ? "odd" : "even"}, 1);
    return NULL;
}

START_TEST(threads_add_exactly)
{
    prom_registry_t *r = prom_registry_new();
    shared = prom_counter(r, "x_total", "X.", (const char *const[]){"parity", NULL});
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(pthread_create(&t[i], NULL, adder, NULL), 0);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    ck_assert(prom_value(shared, (const char *const[]){"odd"}) == 20000);
    ck_assert(prom_value(shared, (const char *const[]){"even"}) == 20000);
    prom_registry_free(r);
}
END_TEST

START_TEST(a_family_stops_at_its_series_limit)
{
    h2o_mem_pool_t pool;
    h2o_mem_init_pool(&pool);
    prom_registry_t *r = prom_registry_new();
    prom_family_t *f = prom_counter(r, "x_total", "X.", (const char *const[]){"id", NULL});
    char id[16];
    for (int i = 0; i < PROM_MAX_SERIES + 10; i++) {
        snprintf(id, sizeof(id), "%d", i);
        prom_add(f, (const char *const[]){id}, 1);
    }
    ck_assert_uint_eq(f->nseries, PROM_MAX_SERIES);
    snprintf(id, sizeof(id), "%d", PROM_MAX_SERIES + 5);
    ck_assert(prom_value(f, (const char *const[]){id}) == 0);
    ck_assert(prom_value(f, (const char *const[]){"0"}) == 1);
    prom_registry_free(r);
    h2o_mem_clear_pool(&pool);
}
END_TEST

START_TEST(shared_figures_have_their_names)
{
    h2o_mem_pool_t pool;
    h2o_mem_init_pool(&pool);
    prom_out_t o;
    prom_out_init(&o, &pool);
    watchdog_t w = {0};
    atomic_store(&w.max_us, 1500000);
    atomic_store(&w.ticks, 3);
    atomic_store(&w.buckets[0], 2);
    atomic_store(&w.buckets[WATCHDOG_NBUCKETS], 1);
    const watchdog_t *ws[] = {&w};
    prom_render_watchdogs(&o, ws, 1);
    prom_render_log(&o);
    db_stats_t st = {.connections_up = 3, .connects = 4};
    prom_render_db(&o, &st, 1);
    prom_printf(&o, "%c", '\0');
    ck_assert_ptr_nonnull(strstr(o.buf, "clientele_loop_lag_max_seconds{thread=\"0\"} 1.500000\n"));
    ck_assert_ptr_nonnull(strstr(o.buf, "clientele_loop_lag_seconds_bucket{le=\"0.001\"} 2\n"));
    ck_assert_ptr_nonnull(strstr(o.buf, "clientele_loop_lag_seconds_bucket{le=\"+Inf\"} 3\n"));
    ck_assert_ptr_nonnull(strstr(o.buf, "# TYPE clientele_log_lines_dropped_total counter\n"));
    ck_assert_ptr_nonnull(strstr(o.buf, "clientele_db_connections{state=\"open\"} 3\n"));
    ck_assert_ptr_nonnull(strstr(o.buf, "clientele_db_connects_total 4\n"));
    ck_assert_ptr_nonnull(strstr(o.buf, "clientele_redis_connected 1\n"));
    h2o_mem_clear_pool(&pool);
}
END_TEST

static Suite *prom_suite(void)
{
    Suite *s = suite_create("prom");
    TCase *tc = tcase_create("prom");
    tcase_add_test(tc, counters_show_from_the_start_and_count_by_labels);
    tcase_add_test(tc, label_values_are_escaped);
    tcase_add_test(tc, histograms_are_cumulative);
    tcase_add_test(tc, threads_add_exactly);
    tcase_add_test(tc, a_family_stops_at_its_series_limit);
    tcase_add_test(tc, shared_figures_have_their_names);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(prom_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
