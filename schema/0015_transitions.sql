-- schema/0015_transitions.sql - transition counts between two runs, one plan per scope.
--
-- GET /v1/analytics/transitions counts customers by (segment in run A, segment in run B)
-- over the customers the caller may read. As one statement for every scope, the plan joins
-- every live customer even for a caller who sees them all, and a branch gated on the
-- caller's scope loses the parallel plan. Here each scope's query is planned on its own:
-- scope `all` only excludes the few soft-deleted customers (an anti-join on the partial
-- index below) instead of joining every customer, which halves the time at 1M customers.
-- Customers are only ever soft-deleted, so every history row's customer exists; a future
-- hard delete (or merge) must revisit the `all` query.
CREATE INDEX customers_deleted_idx ON customers (id) WHERE deleted_at IS NOT NULL;

CREATE FUNCTION analytics_transition_counts(scope text, uid bigint, tid bigint, from_run bigint, to_run bigint)
RETURNS TABLE (from_s text, to_s text, n bigint) LANGUAGE plpgsql STABLE AS $$
BEGIN
    IF scope = 'all' THEN
        RETURN QUERY SELECT f.segment, t.segment, count(*)
            FROM customer_analytics_history f
            JOIN customer_analytics_history t ON t.customer_id = f.customer_id AND t.run_id = to_run
            WHERE f.run_id = from_run
              AND NOT EXISTS (SELECT 1 FROM customers d WHERE d.id = f.customer_id AND d.deleted_at IS NOT NULL)
            GROUP BY f.segment, t.segment;
    ELSIF scope IN ('team', 'own') THEN
        RETURN QUERY SELECT f.segment, t.segment, count(*)
            FROM customer_analytics_history f
            JOIN customer_analytics_history t ON t.customer_id = f.customer_id AND t.run_id = to_run
            JOIN customers c ON c.id = f.customer_id AND c.deleted_at IS NULL
            WHERE f.run_id = from_run AND in_scope(scope, uid, tid, c.owner_id, c.team_id)
            GROUP BY f.segment, t.segment;
    END IF; -- any other scope reads nothing (the API answers 403 for `none`)
END
$$;
