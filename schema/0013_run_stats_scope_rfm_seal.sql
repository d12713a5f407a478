-- schema/0013_run_stats_scope_rfm_seal.sql - runs as readers with a narrower scope see them, and a
-- sealing of the staged customer_analytics that no longer holds customer writes up.
--
-- 1. A run's stored statistics (and a clv run's model counts) describe the whole population.
--    run_json_for() shows them to readers whose analytics read scope is `all` only; a reader
--    with `own` or `team` sees the run's status, parameters and progress, statistics of the
--    same shape computed from the run's history rows over the customers they may read now
--    (as GET /v1/analytics/summary counts them), the model's parameters without its counts
--    and totals, and no population counts (customers_done, customers_total).
--
-- 2. customer_analytics_seal() of 0011 added the staged table's foreign key to customers
--    with validation, which holds a SHARE ROW EXCLUSIVE lock on customers (every customer
--    write waits for it) through the validating join, then ANALYZE, until the side
--    transaction committed, and waited for that lock without a bound. Now the seal builds
--    the primary key and gathers statistics first (neither touches customers), then adds
--    the foreign key NOT VALID, which takes that lock only for a catalog change, waiting
--    at most lock_wait_ms per attempt (three attempts); the worker commits at once, and
--    customer_analytics_validate() validates it in a transaction of its own, which locks
--    customers in ROW SHARE mode only (writers go on). When the lock never comes, the
--    staged table is left without the key: customer_analytics_swap() then finds the shapes
--    different and upserts the staged rows instead, as it does for any other mismatch.

DROP FUNCTION customer_analytics_seal(text);

-- Finishes the filled staged table up to its foreign keys, which it adds NOT VALID (see the
-- top of this file). Returns false, having added none of them, when the lock a key needs
-- did not come within three attempts of lock_wait_ms each.
CREATE FUNCTION customer_analytics_seal(staged text, lock_wait_ms integer) RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
    con record;
    saved_wait text := current_setting('lock_timeout');
    added boolean;
BEGIN
    IF staged !~ '^customer_analytics_next_[0-9]+_[0-9a-f]+$' THEN
        RAISE EXCEPTION 'customer_analytics_seal: % is not a name for a staged table', staged;
    END IF;
    EXECUTE format('ALTER TABLE %I ALTER COLUMN run_id DROP DEFAULT, ALTER COLUMN computed_at DROP DEFAULT', staged);
    FOR con IN SELECT pg_get_constraintdef(oid) AS def FROM pg_constraint
               WHERE conrelid = 'customer_analytics'::regclass AND contype = 'p' LOOP
        EXECUTE format('ALTER TABLE %I ADD CONSTRAINT %I %s', staged, staged || '_pkey', con.def);
    END LOOP;
    EXECUTE format('ANALYZE %I', staged);
    FOR con IN SELECT conname, regexp_replace(pg_get_constraintdef(oid), ' NOT VALID$', '') AS def FROM pg_constraint
               WHERE conrelid = 'customer_analytics'::regclass AND contype = 'f' ORDER BY conname LOOP
        added := false;
        FOR attempt IN 1..3 LOOP
            BEGIN
                PERFORM set_config('lock_timeout', lock_wait_ms || 'ms', true);
                EXECUTE format('ALTER TABLE %I ADD CONSTRAINT %I %s NOT VALID', staged, con.conname, con.def);
                PERFORM set_config('lock_timeout', saved_wait, true);
                added := true;
                EXIT;
            EXCEPTION WHEN lock_not_available THEN
                -- Undone since BEGIN, lock_timeout included; let the waiting writers through.
                IF attempt < 3 THEN
                    PERFORM pg_sleep(0.1 * attempt);
                END IF;
            END;
        END LOOP;
        IF NOT added THEN
            RAISE LOG '%: the lock for foreign key % did not come in 3 attempts of % ms; the run will upsert',
                staged, con.conname, lock_wait_ms;
            EXECUTE format('ALTER TABLE %I DROP CONSTRAINT IF EXISTS %I', staged, con.conname);
            RETURN false;
        END IF;
    END LOOP;
    RETURN true;
END
$$;

-- Validates the foreign keys customer_analytics_seal() added NOT VALID: a SHARE UPDATE
-- EXCLUSIVE lock on the staged table (nobody else uses it) and ROW SHARE on the tables
-- referenced, which customer writes do not conflict with.
CREATE FUNCTION customer_analytics_validate(staged text) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    con record;
BEGIN
    IF staged !~ '^customer_analytics_next_[0-9]+_[0-9a-f]+$' THEN
        RAISE EXCEPTION 'customer_analytics_validate: % is not a name for a staged table', staged;
    END IF;
    FOR con IN SELECT conname FROM pg_constraint WHERE conrelid = staged::regclass AND NOT convalidated
               ORDER BY conname LOOP
        EXECUTE format('ALTER TABLE %I VALIDATE CONSTRAINT %I', staged, con.conname);
    END LOOP;
END
$$;

-- The statistics of succeeded run r over the customers (not deleted) that a reader with
-- analytics read scope `own` or `team` as user uid of team tid may read now, from the run's
-- history rows, in the shape of the stored ones (every key of their segments, lifecycles
-- and tiers, zeros included), with `scope` added. Null for other scopes and for runs
-- without statistics. Figures that the history rows cannot give per customer are left
-- out (a clv run's `excluded_by_cohort`) or null (its `calibration`). The filter is chosen
-- here, not by a parameter of one statement, so that each is planned with its index.
CREATE FUNCTION run_stats_scoped(r analytics_runs, scope text, uid bigint, tid bigint) RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
DECLARE
    filter text := CASE scope WHEN 'own' THEN 'c.owner_id = $2' WHEN 'team' THEN 'c.team_id = $3' END;
    result jsonb;
BEGIN
    IF filter IS NULL OR r.stats IS NULL OR r.status <> 'succeeded' THEN
        RETURN NULL;
    END IF;
    IF r.kind = 'rfm' THEN
        EXECUTE format($q$
            WITH h AS (SELECT h.r, h.monetary, h.segment, h.lifecycle, h.tier FROM customers c
                       JOIN customer_analytics_history h ON h.run_id = $1 AND h.customer_id = c.id
                       WHERE c.deleted_at IS NULL AND %s),
                 seg AS (SELECT segment AS k, count(*) AS n FROM h GROUP BY segment),
                 lc AS (SELECT lifecycle AS k, count(*) AS n FROM h GROUP BY lifecycle),
                 tr AS (SELECT tier AS k, count(*) AS n, sum(monetary) AS rev FROM h WHERE tier IS NOT NULL GROUP BY tier)
            SELECT jsonb_build_object(
                'customers', (SELECT count(*) FROM h),
                'scored', (SELECT count(*) FROM h WHERE h.r IS NOT NULL),
                'segments', (SELECT coalesce(jsonb_object_agg(k, coalesce(seg.n, 0)), '{}')
                             FROM jsonb_object_keys($4 -> 'segments') k LEFT JOIN seg USING (k)),
                'lifecycles', (SELECT coalesce(jsonb_object_agg(k, coalesce(lc.n, 0)), '{}')
                               FROM jsonb_object_keys($4 -> 'lifecycles') k LEFT JOIN lc USING (k)),
                'tiers', (SELECT coalesce(jsonb_object_agg(k, coalesce(tr.n, 0)), '{}')
                          FROM jsonb_object_keys($4 -> 'tiers') k LEFT JOIN tr USING (k)),
                'revenue', (SELECT coalesce(sum(h.monetary) FILTER (WHERE h.r IS NOT NULL), 0)::numeric(20, 2)::text
                            FROM h),
                'tier_revenue', (SELECT coalesce(jsonb_object_agg(k, coalesce(tr.rev, 0)::numeric(20, 2)::text), '{}')
                                 FROM jsonb_object_keys($4 -> 'tier_revenue') k LEFT JOIN tr USING (k)))
        $q$, filter) INTO result USING r.id, uid, tid, r.stats;
    ELSE
        EXECUTE format($q$
            WITH h AS (SELECT h.x, h.expected_purchases, h.clv, h.lifecycle FROM customers c
                       JOIN customer_clv_history h ON h.run_id = $1 AND h.customer_id = c.id
                       WHERE c.deleted_at IS NULL AND %s),
                 lc AS (SELECT lifecycle AS k, count(*) AS n FROM h GROUP BY lifecycle)
            SELECT jsonb_build_object(
                'customers', (SELECT count(*) FROM h),
                'fitted', (SELECT count(*) FROM h WHERE h.x IS NOT NULL),
                'prospects', (SELECT count(*) FROM h WHERE h.lifecycle = 'prospect'),
                'lifecycles', (SELECT coalesce(jsonb_object_agg(k, coalesce(lc.n, 0)), '{}')
                               FROM jsonb_object_keys($4 -> 'lifecycles') k LEFT JOIN lc USING (k)),
                'expected_purchases', (SELECT coalesce(sum(h.expected_purchases), 0) FROM h),
                'clv', (SELECT coalesce(sum(h.clv), 0)::numeric(20, 2)::text FROM h),
                'calibration', NULL)
        $q$, filter) INTO result USING r.id, uid, tid, r.stats;
    END IF;
    RETURN result || jsonb_build_object('scope', scope)
        || CASE WHEN r.stats ? 'duration_ms' THEN jsonb_build_object('duration_ms', r.stats -> 'duration_ms')
                ELSE '{}' END;
END
$$;

-- A clv run's model without what it says about the population: the fitted parameters and
-- how each fit ended stay; the counts of customers and the log-likelihoods (sums over
-- every fitted customer) become null.
CREATE FUNCTION run_model_redacted(m jsonb) RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN jsonb_typeof(m) = 'object' THEN m || jsonb_build_object(
        'customers_fitted', NULL, 'repeat_customers', NULL,
        'bgnbd', CASE WHEN jsonb_typeof(m -> 'bgnbd') = 'object'
                      THEN (m -> 'bgnbd') || '{"customers": null, "log_likelihood": null}' ELSE m -> 'bgnbd' END,
        'gamma_gamma', CASE WHEN jsonb_typeof(m -> 'gamma_gamma') = 'object'
                            THEN (m -> 'gamma_gamma') || '{"customers": null, "log_likelihood": null}'
                            ELSE m -> 'gamma_gamma' END)
    ELSE m END
$$;

-- A run as a reader with analytics read scope `scope` (user uid of team tid) sees it:
-- run_json() for `all`, else with the statistics scoped, the model redacted and no
-- population counts (see the top of this file).
CREATE FUNCTION run_json_for(r analytics_runs, scope text, uid bigint, tid bigint) RETURNS json
LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN scope = 'all' THEN run_json(r) ELSE json_build_object(
        'id', r.id, 'kind', r.kind, 'status', r.status, 'progress', r.progress,
        'customers_done', NULL, 'customers_total', NULL,
        'params', r.params, 'stats', run_stats_scoped(r, scope, uid, tid), 'model', run_model_redacted(r.model),
        'error', r.error, 'requested_by', r.requested_by, 'schedule_id', r.schedule_id,
        'created_at', to_char(r.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
        'started_at', to_char(r.started_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
        'finished_at', to_char(r.finished_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')) END
$$;
