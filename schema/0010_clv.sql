-- schema/0010_clv.sql - results of analytics runs of kind clv (BG/NBD + Gamma-Gamma).
--
-- Kept apart from customer_analytics: rfm and clv runs have their own
-- populations and schedules, and one must never erase the other's results.

-- The current CLV of each customer (from the latest succeeded clv run that included it).
-- Times (t_x, t_cal) are in the run's time_unit; money in the orders' currency units.
CREATE TABLE customer_clv (
    customer_id        bigint PRIMARY KEY REFERENCES customers (id) ON DELETE CASCADE,
    run_id             bigint NOT NULL,
    computed_at        timestamptz NOT NULL,
    horizon            integer NOT NULL,
    time_unit          text NOT NULL CHECK (time_unit IN ('day', 'week')),
    x                  integer,            -- repeat purchase days in the calibration period
    t_x                double precision,   -- first to last purchase day
    t_cal              double precision,   -- first purchase day to as_of ("T")
    zbar               numeric(20, 2),     -- mean value of the repeat purchase days
    p_alive            double precision CHECK (p_alive BETWEEN 0 AND 1),
    expected_purchases double precision CHECK (expected_purchases >= 0),
    expected_avg_value numeric(20, 2),
    clv                numeric(20, 2),
    lifecycle          text NOT NULL CHECK (lifecycle IN ('prospect', 'new', 'active', 'at_risk', 'churned'))
) WITH (fillfactor = 70);
-- Lists sorted by -clv walk this index.
CREATE INDEX customer_clv_value_idx ON customer_clv (clv, customer_id);

-- run_id carries no foreign key, as in customer_analytics_history.
CREATE TABLE customer_clv_history (
    run_id             bigint NOT NULL,
    customer_id        bigint NOT NULL,
    x                  integer,
    t_x                double precision,
    t_cal              double precision,
    zbar               numeric(20, 2),
    p_alive            double precision,
    expected_purchases double precision,
    expected_avg_value numeric(20, 2),
    clv                numeric(20, 2),
    lifecycle          text NOT NULL,
    PRIMARY KEY (run_id, customer_id)
);
-- No index by customer: one customer's history is found through the runs (one probe of
-- the primary key per run), and every run would otherwise update such an index all over.

-- Customers embed analytics.clv. analytics is null until an rfm or a clv run has
-- included the customer; its rfm fields are null while only a clv run has.
CREATE OR REPLACE FUNCTION customer_json(c customers) RETURNS json LANGUAGE sql STABLE AS $$
    SELECT json_build_object(
        'id', c.id, 'external_id', c.external_id, 'kind', c.kind, 'name', c.name,
        'email', c.email, 'phone', c.phone, 'address', c.address, 'industry', c.industry,
        'status', c.status, 'owner_id', c.owner_id, 'team_id', c.team_id, 'tags', to_jsonb(c.tags),
        'attrs', c.attrs, 'credit_limit', c.credit_limit::text,
        'created_at', to_char(c.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
        'updated_at', to_char(c.updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
        'version', c.version,
        'analytics', (SELECT CASE WHEN a.customer_id IS NULL AND v.customer_id IS NULL THEN NULL
            ELSE json_build_object(
            'run_id', a.run_id,
            'computed_at', to_char(a.computed_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
            'recency_days', a.recency_days, 'frequency', a.frequency, 'monetary', a.monetary::text,
            'r', a.r, 'f', a.f, 'm', a.m, 'segment', a.segment, 'lifecycle', a.lifecycle, 'tier', a.tier,
            'clv', CASE WHEN v.customer_id IS NOT NULL THEN json_build_object(
                'run_id', v.run_id,
                'computed_at', to_char(v.computed_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
                'p_alive', v.p_alive, 'expected_purchases', v.expected_purchases,
                'expected_avg_value', v.expected_avg_value::text, 'clv', v.clv::text,
                'horizon', v.horizon, 'time_unit', v.time_unit, 'lifecycle', v.lifecycle,
                'x', v.x, 't_x', v.t_x, 'T', v.t_cal) END) END
            FROM (SELECT 1) one
            LEFT JOIN customer_analytics a ON a.customer_id = c.id
            LEFT JOIN customer_clv v ON v.customer_id = c.id))
$$;
