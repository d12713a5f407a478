-- schema/0018_backups_roles.sql - backups as runs of the workers, and least privilege for the
-- roles the API and the worker act as.
--
-- 1. Backups. A backup is a run of kind `backup` in analytics_runs, so it travels like every
--    run (row and outbox message in one transaction, the stream, a claim, heartbeats, a
--    take-over when a worker dies). POST /v1/admin/backups inserts one; so does the one
--    schedule of kind `backup`, which the workers' scheduler leader keeps in line with its
--    CLIENTELE_BACKUP_AT and CLIENTELE_TIMEZONE (unique below, so several workers make one
--    schedule and, through the (schedule_id, due_at) key, one backup per day). The analytics
--    endpoints never show backup runs or the backup schedule. The right to list and start
--    backups is the module `backups` of a role (read, create), reached only by scope `all`;
--    the built-in admin role gets it.
--
-- 2. Least privilege. Migrations run as the database owner, who owns every object. The API
--    and the worker act as roles of their own, clientele_api (0016) and clientele_worker
--    (here), created NOLOGIN: an operator gives each a password and LOGIN with
--    `clientele-admin role-password` and puts it in that process's CLIENTELE_DATABASE_URL
--    (or lets the owner's sessions SET ROLE to them, CLIENTELE_DB_ROLE and
--    CLIENTELE_WORKER_DB_ROLE, as before). Neither is superuser or owner of anything, and each
--    holds only the table privileges its statements use: the API reads and writes the records,
--    the identities and the schedules, appends to the history and the change feed, queues runs,
--    and only reads analytics results; the worker reads every table (it makes the backups, so
--    it reads everything anyway), writes runs, schedules, the outbox and analytics results,
--    and only appends to the analytics histories. Nobody but the owner may UPDATE, DELETE or
--    TRUNCATE a history table, DROP anything, or create anything in the schema.
--
--    What a worker's RFM run did as the owner - build a staged customer_analytics, key and
--    analyse it, swap it in by renaming, drop the old one, analyse the history - it now does
--    through the functions of 0011 and 0013, made SECURITY DEFINER (they run as the owner)
--    with a fixed search_path, and executable by the worker's role only. Each accepts only
--    the names of staged or retired tables. The staged table gets customer_analytics's grants
--    exactly, so that the swap keeps who may do what.

ALTER TABLE analytics_runs DROP CONSTRAINT analytics_runs_kind_check,
    ADD CONSTRAINT analytics_runs_kind_check CHECK (kind IN ('rfm', 'clv', 'backup'));
ALTER TABLE analytics_schedules DROP CONSTRAINT analytics_schedules_kind_check,
    ADD CONSTRAINT analytics_schedules_kind_check CHECK (kind IN ('rfm', 'clv', 'backup'));
-- One backup schedule, whichever worker writes it.
CREATE UNIQUE INDEX analytics_schedules_backup_key ON analytics_schedules (kind) WHERE kind = 'backup';

UPDATE roles SET permissions = permissions || '{"backups": {"read": "all", "create": "all"}}'
WHERE name = 'admin' AND builtin AND NOT permissions ? 'backups';

-- A backup run as /v1/admin/backups shows it: `stats` holds the file, its size and SHA-256,
-- the tables and rows it holds, and the older files removed after it.
CREATE FUNCTION backup_run_json(r analytics_runs) RETURNS json LANGUAGE sql STABLE AS $$
    SELECT json_build_object(
        'id', r.id, 'kind', r.kind, 'status', r.status, 'progress', r.progress, 'stats', r.stats,
        'error', r.error, 'requested_by', r.requested_by, 'schedule_id', r.schedule_id,
        'created_at', iso_utc(r.created_at), 'started_at', iso_utc(r.started_at),
        'finished_at', iso_utc(r.finished_at))
$$;

-- The worker's role, as 0016 made the API's: the owner may act as it (SET ROLE).
DO $$
DECLARE
    r record;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'clientele_worker') THEN
        CREATE ROLE clientele_worker NOLOGIN;
    END IF;
    IF NOT pg_has_role(current_user, 'clientele_worker', 'MEMBER') THEN
        EXECUTE format('GRANT clientele_worker TO %I', current_user);
    END IF;
    FOR r IN SELECT rolname FROM pg_roles WHERE rolname IN ('clientele_api', 'clientele_worker')
             AND (rolsuper OR rolbypassrls OR rolcreaterole OR rolcreatedb OR rolreplication) LOOP
        RAISE EXCEPTION 'role % has SUPERUSER, BYPASSRLS, CREATEROLE, CREATEDB or REPLICATION', r.rolname
            USING HINT = 'The API and the worker act as roles with table privileges only; ALTER ROLE it NOSUPERUSER'
                         ' NOBYPASSRLS NOCREATEROLE NOCREATEDB NOREPLICATION.';
    END LOOP;
END
$$;

-- Nobody but the owner creates objects in the schema (PostgreSQL 15's default; older
-- clusters upgraded in place may still let everyone).
REVOKE CREATE ON SCHEMA public FROM PUBLIC;

-- The API: exactly what its statements (api/*_db.c, api/engine_sql.c) and the triggers they
-- fire use. Identity columns need no privilege on their sequences. Tables that later
-- migrations create still get SELECT, INSERT, UPDATE and DELETE by default (0016); a
-- migration takes away what the API must not have. Only the tables named here are touched,
-- so that this file means the same whether it runs before or after later ones.
DO $$
DECLARE
    t text;
    seq regclass;
BEGIN
    FOREACH t IN ARRAY ARRAY['teams', 'roles', 'users', 'refresh_tokens', 'customers', 'orders', 'contacts',
                             'changes', 'record_history', 'attachments', 'analytics_runs', 'analytics_schedules',
                             'outbox', 'customer_analytics', 'customer_analytics_history', 'customer_clv',
                             'customer_clv_history', 'schema_migrations'] LOOP
        EXECUTE format('REVOKE ALL ON TABLE %I FROM clientele_api', t);
        FOR seq IN SELECT d.objid::regclass FROM pg_depend d JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S'
                   WHERE d.classid = 'pg_class'::regclass AND d.refobjid = t::regclass AND d.deptype IN ('a', 'i') LOOP
            EXECUTE format('REVOKE ALL ON SEQUENCE %s FROM clientele_api', seq);
        END LOOP;
    END LOOP;
END
$$;
GRANT SELECT, INSERT, UPDATE ON customers, contacts, orders, users, refresh_tokens, attachments, analytics_runs
    TO clientele_api;
GRANT SELECT, INSERT, UPDATE, DELETE ON teams, roles, analytics_schedules TO clientele_api;
GRANT SELECT, INSERT ON record_history, changes TO clientele_api;
GRANT INSERT ON outbox TO clientele_api;
GRANT SELECT ON customer_analytics, customer_analytics_history, customer_clv, customer_clv_history TO clientele_api;

-- The worker: reads everything (backups); writes runs, schedules (the scheduler, the backup
-- schedule), the outbox (the relay, the scheduler) and analytics results; appends to the
-- analytics histories. New tables and sequences are readable by it by default, so a backup
-- always takes them.
GRANT USAGE ON SCHEMA public TO clientele_worker;
GRANT SELECT ON ALL TABLES IN SCHEMA public TO clientele_worker;
GRANT SELECT ON ALL SEQUENCES IN SCHEMA public TO clientele_worker;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON TABLES TO clientele_worker;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON SEQUENCES TO clientele_worker;
GRANT INSERT, UPDATE ON analytics_runs, analytics_schedules, outbox, customer_analytics, customer_clv
    TO clientele_worker;
GRANT INSERT ON customer_analytics_history, customer_clv_history TO clientele_worker;

-- The staged table of 0011, now created as the owner and given customer_analytics's grants
-- exactly (the default privileges give a new table others), so that the swap keeps them.
CREATE OR REPLACE FUNCTION customer_analytics_stage(staged text, run bigint) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    cur oid := 'customer_analytics'::regclass;
    cols text;
    opts text[];
    con record;
    g record;
BEGIN
    IF staged !~ ('^customer_analytics_next_' || run || '_[0-9a-f]+$') THEN
        RAISE EXCEPTION 'customer_analytics_stage: % is not a name for the staged table of run %', staged, run;
    END IF;
    SELECT string_agg(format('%I %s%s%s', a.attname, format_type(a.atttypid, a.atttypmod),
                             CASE WHEN a.attcollation <> t.typcollation THEN ' COLLATE ' || a.attcollation::regcollation::text
                                  ELSE '' END,
                             CASE WHEN a.attnotnull THEN ' NOT NULL' ELSE '' END), ', ' ORDER BY a.attnum)
        INTO cols
        FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
        WHERE a.attrelid = cur AND a.attnum > 0 AND NOT a.attisdropped;
    SELECT reloptions INTO opts FROM pg_class WHERE oid = cur;
    EXECUTE format('CREATE TABLE %I (%s)', staged, cols)
        || CASE WHEN opts IS NULL THEN '' ELSE format(' WITH (%s)', array_to_string(opts, ', ')) END;
    FOR con IN SELECT conname, pg_get_constraintdef(oid) AS def FROM pg_constraint
               WHERE conrelid = cur AND contype = 'c' ORDER BY conname LOOP
        EXECUTE format('ALTER TABLE %I ADD CONSTRAINT %I %s', staged, con.conname, con.def);
    END LOOP;
    EXECUTE format('ALTER TABLE %I ALTER COLUMN run_id SET DEFAULT %s, ALTER COLUMN computed_at SET DEFAULT now()',
                   staged, run);
    FOR g IN SELECT DISTINCT a.grantee FROM pg_class c, aclexplode(c.relacl) a
             WHERE c.oid = staged::regclass AND a.grantee <> c.relowner LOOP
        EXECUTE format('REVOKE ALL ON %I FROM %s', staged,
                       CASE WHEN g.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(g.grantee)) END);
    END LOOP;
    FOR g IN SELECT a.grantee, string_agg(a.privilege_type, ', ' ORDER BY a.privilege_type) AS privs
             FROM pg_class c, aclexplode(c.relacl) a WHERE c.oid = cur AND a.grantee <> c.relowner
             GROUP BY a.grantee LOOP
        EXECUTE format('GRANT %s ON %I TO %s', g.privs, staged,
                       CASE WHEN g.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(g.grantee)) END);
    END LOOP;
END
$$;

-- As in 0016, but grants compare as sets: the order in which they were given does not matter.
CREATE OR REPLACE FUNCTION customer_analytics_swappable(staged regclass) RETURNS boolean LANGUAGE sql STABLE AS $$
    SELECT c.relkind = 'r' AND c.relowner = (SELECT oid FROM pg_roles WHERE rolname = current_user)
       AND (SELECT array_agg(a::text ORDER BY a::text) FROM unnest(c.relacl) a)
           IS NOT DISTINCT FROM (SELECT array_agg(a::text ORDER BY a::text)
                                 FROM unnest((SELECT relacl FROM pg_class WHERE oid = staged)) a)
       AND NOT c.relhasrules AND NOT c.relrowsecurity AND NOT c.relhassubclass
       AND NOT c.relispartition AND c.reltablespace = (SELECT reltablespace FROM pg_class WHERE oid = staged)
       AND NOT EXISTS (SELECT 1 FROM pg_inherits WHERE inhrelid = c.oid)
       AND (SELECT count(*) FROM pg_index WHERE indrelid = c.oid) = 1
       AND EXISTS (SELECT 1 FROM pg_constraint WHERE conrelid = c.oid AND contype = 'p')
       AND NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conrelid = c.oid AND contype NOT IN ('p', 'f', 'c'))
       AND NOT EXISTS (SELECT 1 FROM pg_constraint WHERE confrelid = c.oid)
       AND NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = c.oid AND NOT tgisinternal)
       AND NOT EXISTS (SELECT 1 FROM pg_depend WHERE refobjid = c.oid AND classid = 'pg_rewrite'::regclass)
       AND NOT EXISTS (SELECT 1 FROM pg_publication_rel WHERE prrelid = c.oid)
       AND customer_analytics_shape(c.oid) = customer_analytics_shape(staged)
    FROM pg_class c WHERE c.oid = 'customer_analytics'::regclass
$$;

-- The history's statistics after a full run (worker/rfm_job.c): ANALYZE needs the owner.
CREATE FUNCTION customer_analytics_history_analyze() RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    ANALYZE customer_analytics_history;
END
$$;

ALTER FUNCTION customer_analytics_seal(text, integer) SECURITY DEFINER SET search_path = public, pg_temp;
ALTER FUNCTION customer_analytics_validate(text) SECURITY DEFINER SET search_path = public, pg_temp;
ALTER FUNCTION customer_analytics_swap(bigint, text, integer) SECURITY DEFINER SET search_path = public, pg_temp;
ALTER FUNCTION customer_analytics_drop_retired(integer) SECURITY DEFINER SET search_path = public, pg_temp;

REVOKE EXECUTE ON FUNCTION customer_analytics_stage(text, bigint), customer_analytics_seal(text, integer),
    customer_analytics_validate(text), customer_analytics_swap(bigint, text, integer),
    customer_analytics_drop_retired(integer), customer_analytics_history_analyze() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION customer_analytics_stage(text, bigint), customer_analytics_seal(text, integer),
    customer_analytics_validate(text), customer_analytics_swap(bigint, text, integer),
    customer_analytics_drop_retired(integer), customer_analytics_history_analyze() TO clientele_worker;
