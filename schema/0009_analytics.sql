-- schema/0009_analytics.sql - analytics runs, their outbox, results and schedules.

CREATE TABLE analytics_schedules (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind         text NOT NULL CHECK (kind IN ('rfm', 'clv')),
    cron         text NOT NULL,
    timezone     text NOT NULL,
    params       jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(params) = 'object'),
    enabled      boolean NOT NULL DEFAULT true,
    next_run_at  timestamptz,           -- computed by whoever writes the schedule (API or scheduler)
    last_run_at  timestamptz,           -- the due time last enqueued
    last_run_id  bigint,
    created_by   bigint REFERENCES users (id),
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    version      integer NOT NULL DEFAULT 1
);
CREATE INDEX analytics_schedules_due_idx ON analytics_schedules (next_run_at) WHERE enabled;
-- Only a change of what a client wrote is a new version; the scheduler advancing
-- next_run_at and last_run_* must not invalidate a client's ETag.
CREATE TRIGGER analytics_schedules_touch BEFORE UPDATE OF kind, cron, timezone, params, enabled
    ON analytics_schedules FOR EACH ROW EXECUTE FUNCTION touch_row();

CREATE TABLE analytics_runs (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind            text NOT NULL CHECK (kind IN ('rfm', 'clv')),
    status          text NOT NULL DEFAULT 'queued'
                    CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
    params          jsonb NOT NULL CHECK (jsonb_typeof(params) = 'object'), -- complete: defaults filled in
    progress        real NOT NULL DEFAULT 0 CHECK (progress BETWEEN 0 AND 1),
    customers_done  bigint NOT NULL DEFAULT 0,
    customers_total bigint,
    stats           jsonb,
    model           jsonb,
    error           text,
    requested_by    bigint REFERENCES users (id),
    schedule_id     bigint REFERENCES analytics_schedules (id) ON DELETE SET NULL,
    due_at          timestamptz,        -- for scheduled runs: the due time they were made for
    worker          text,               -- the worker that holds (or last held) the run
    attempts        integer NOT NULL DEFAULT 0,
    heartbeat_at    timestamptz,        -- a running worker refreshes this; stale means the worker died
    created_at      timestamptz NOT NULL DEFAULT now(),
    started_at      timestamptz,
    finished_at     timestamptz,
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX analytics_runs_status_idx ON analytics_runs (status, id);
CREATE INDEX analytics_runs_kind_idx ON analytics_runs (kind, status, id);
-- A schedule yields at most one run per due time, whichever worker enqueues it.
CREATE UNIQUE INDEX analytics_runs_schedule_due_key ON analytics_runs (schedule_id, due_at) WHERE schedule_id IS NOT NULL;

-- Messages to publish to Redis, written in the same transaction as the run. A relay
-- in the workers publishes them and marks them; a message published twice is
-- harmless because claiming a run is idempotent.
CREATE TABLE outbox (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    topic        text NOT NULL,
    payload      jsonb NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz
);
CREATE INDEX outbox_pending_idx ON outbox (id) WHERE published_at IS NULL;

-- The current analytics of each customer (from the latest succeeded run), and per-run history.
CREATE TABLE customer_analytics (
    customer_id   bigint PRIMARY KEY REFERENCES customers (id) ON DELETE CASCADE,
    run_id        bigint NOT NULL,
    computed_at   timestamptz NOT NULL,
    recency_days  integer,
    frequency     integer,
    monetary      numeric(20, 2),
    r             smallint,
    f             smallint,
    m             smallint,
    segment       text NOT NULL,
    lifecycle     text NOT NULL,
    tier          text CHECK (tier IN ('A', 'B', 'C'))
) WITH (fillfactor = 70);
-- No secondary indexes on purpose: every run rewrites every row, and with free
-- space on each page and no indexed column changing, those updates stay
-- heap-only (HOT). Filters reach these rows through the primary key.

-- run_id carries no foreign key: history is written a million rows at a time by the
-- worker that holds the run, and a per-row key check would double that cost.
CREATE TABLE customer_analytics_history (
    run_id        bigint NOT NULL,
    customer_id   bigint NOT NULL,
    recency_days  integer,
    frequency     integer,
    monetary      numeric(20, 2),
    r             smallint,
    f             smallint,
    m             smallint,
    segment       text NOT NULL,
    lifecycle     text NOT NULL,
    tier          text,
    PRIMARY KEY (run_id, customer_id)
);
CREATE INDEX customer_analytics_history_customer_idx ON customer_analytics_history (customer_id, run_id);

-- Customers now carry their analytics (null until a run has scored them).
CREATE OR REPLACE FUNCTION customer_json(c customers) RETURNS json LANGUAGE sql STABLE AS $$
    SELECT json_build_object(
        'id', c.id, 'external_id', c.external_id, 'kind', c.kind, 'name', c.name,
        'email', c.email, 'phone', c.phone, 'address', c.address, 'industry', c.industry,
        'status', c.status, 'owner_id', c.owner_id, 'team_id', c.team_id, 'tags', to_jsonb(c.tags),
        'attrs', c.attrs, 'credit_limit', c.credit_limit::text,
        'created_at', to_char(c.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
        'updated_at', to_char(c.updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
        'version', c.version,
        'analytics', (SELECT json_build_object(
            'run_id', a.run_id,
            'computed_at', to_char(a.computed_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
            'recency_days', a.recency_days, 'frequency', a.frequency, 'monetary', a.monetary::text,
            'r', a.r, 'f', a.f, 'm', a.m, 'segment', a.segment, 'lifecycle', a.lifecycle, 'tier', a.tier)
            FROM customer_analytics a WHERE a.customer_id = c.id))
$$;

CREATE FUNCTION run_json(r analytics_runs) RETURNS json LANGUAGE sql STABLE AS $$
    SELECT json_build_object(
        'id', r.id, 'kind', r.kind, 'status', r.status, 'progress', r.progress,
        'customers_done', r.customers_done, 'customers_total', r.customers_total,
        'params', r.params, 'stats', r.stats, 'model', r.model, 'error', r.error,
        'requested_by', r.requested_by, 'schedule_id', r.schedule_id,
        'created_at', to_char(r.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
        'started_at', to_char(r.started_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
        'finished_at', to_char(r.finished_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'))
$$;
