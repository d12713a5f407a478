-- schema/0019_run_trace.sql - the request a run was started by, for the workers' logs.
--
-- The API records the id of the request that started a run (its X-Request-Id, or the
-- id it made up) and, when the request carried a valid W3C traceparent, its trace id;
-- the outbox message carries both as well. The worker that claims the run logs every
-- line of it with them, so one id follows a request from HTTP to the worker. Scheduled
-- runs have neither. Both are checked here as the API checks them, so a worker may
-- write them into its log lines as they are.
ALTER TABLE analytics_runs
    ADD COLUMN request_id text CHECK (request_id ~ '^[A-Za-z0-9._:-]{1,64}$'),
    ADD COLUMN trace_id   text CHECK (trace_id ~ '^[0-9a-f]{32}$' AND trace_id <> repeat('0', 32));
