/*
 * tests/unit/api/metrics_test.c - unit tests for api/metrics.c.
 *
 * The request counters and histograms, and the rule that a scrape never
 * touches another thread's database pool or Redis client (which their
 * thread frees at shutdown while another thread may still be answering
 * /metrics): the pool gauges are read from each thread's slot only. The
 * threads' pool pointers are poisoned here, so any dereference crashes.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "../../../api/metrics.c"

static char *render(api_server_t *server, h2o_mem_pool_t *pool)
{
    h2o_iovec_t out;
    api_metrics_render(server, pool, &out);
    char *s = h2o_mem_alloc_pool(pool, out.len + 1);
    memcpy(s, out.base, out.len);
    s[out.len] = '\0';
    return s;
}

START_TEST(pool_gauges_come_from_the_thread_slots_only)
{
    api_server_t server = {0};
    api_thread_t threads[2];
    memset(threads, 0, sizeof(threads));
    server.metrics = api_metrics_new(api_nroutes);
    server.threads = threads;
    server.nthreads = 2;
    for (int i = 0; i < 2; i++) {
        /* Freed (or being freed) by their own thread: must not be read. */
        threads[i].db = (db_t *)(uintptr_t)0x10;
        threads[i].kv = (kv_t *)(uintptr_t)0x10;
        atomic_store(&threads[i].db_gauges.up, 3 + i);
        atomic_store(&threads[i].db_gauges.busy, 1);
        atomic_store(&threads[i].db_gauges.pinned, i);
        atomic_store(&threads[i].db_gauges.waiting, 2);
        atomic_store(&threads[i].db_gauges.prepared, 40 + i);
        atomic_store(&threads[i].db_gauges.connects, 10);
        atomic_store(&threads[i].db_gauges.queue_timeouts, 1);
        atomic_store(&threads[i].db_gauges.exec_timeouts, 2);
        atomic_store(&threads[i].db_gauges.cancels, 1);
        atomic_store(&threads[i].db_gauges.rejected, 4);
        atomic_store(&threads[i].db_gauges.pipelines, 3);
        atomic_store(&threads[i].db_gauges.pipelined, 20);
        atomic_store(&threads[i].kv_gauges.up, 1);
    }
    h2o_mem_pool_t pool;
    h2o_mem_init_pool(&pool);
    char *s = render(&server, &pool);
    ck_assert_ptr_nonnull(strstr(s, "clientele_db_connections{state=\"open\"} 7\n"));
    ck_assert_ptr_nonnull(strstr(s, "clientele_db_connections{state=\"in_use\"} 2\n"));
    ck_assert_ptr_nonnull(strstr(s, "clientele_db_connections{state=\"pinned\"} 1\n"));
    ck_assert_ptr_nonnull(strstr(s, "clientele_db_waiting_requests 4\n"));
    ck_assert_ptr_nonnull(strstr(s, "clientele_db_prepared_statements 81\n"));
    ck_assert_ptr_nonnull(strstr(s, "clientele_db_connects_total 20\n"));
    ck_assert_ptr_nonnull(strstr(s, "clientele_db_queue_timeouts_total 2\n"));
    ck_assert_ptr_nonnull(strstr(s, "clientele_db_statement_timeouts_total 4\n"));
    ck_assert_ptr_nonnull(strstr(s, "clientele_db_cancels_total 2\n"));
    ck_assert_ptr_nonnull(strstr(s, "clientele_db_queries_rejected_total 8\n"));
    ck_assert_ptr_nonnull(strstr(s, "clientele_db_pipelines_total 6\n"));
    ck_assert_ptr_nonnull(strstr(s, "clientele_db_pipelined_statements_total 40\n"));
    ck_assert_ptr_nonnull(strstr(s, "clientele_redis_connected 1\n"));
    atomic_store(&threads[1].kv_gauges.up, 0);
    s = render(&server, &pool);
    ck_assert_ptr_nonnull(strstr(s, "clientele_redis_connected 0\n"));
    h2o_mem_clear_pool(&pool);
    api_metrics_free(server.metrics);
}
END_TEST

START_TEST(requests_are_counted_by_route_and_status)
{
    api_server_t server = {0};
    server.metrics = api_metrics_new(api_nroutes);
    api_metrics_observe(server.metrics, 0, 200, 3000000);
    api_metrics_observe(server.metrics, 0, 200, 3000000);
    api_metrics_observe(server.metrics, -1, 404, 1000);
    h2o_mem_pool_t pool;
    h2o_mem_init_pool(&pool);
    char *s = render(&server, &pool);
    ck_assert_ptr_nonnull(strstr(s, "status=\"200\"} 2\n"));
    ck_assert_ptr_nonnull(strstr(s, "route=\"(none)\",status=\"404\"} 1\n"));
    ck_assert_ptr_nonnull(strstr(s, "le=\"0.005\"} 2\n"));
    h2o_mem_clear_pool(&pool);
    api_metrics_free(server.metrics);
}
END_TEST

static Suite *metrics_suite(void)
{
    Suite *s = suite_create("metrics");
    TCase *tc = tcase_create("render");
    tcase_add_test(tc, pool_gauges_come_from_the_thread_slots_only);
    tcase_add_test(tc, requests_are_counted_by_route_and_status);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(metrics_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
