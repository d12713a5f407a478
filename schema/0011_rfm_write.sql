-- schema/0011_rfm_write.sql - a cheaper write of RFM results: a lighter history, and
-- customer_analytics replaced whole by a table built fresh for runs that score every customer.
--
-- An rfm run over the whole population rewrites every row of customer_analytics. Done in
-- place, that is an update of every row plus a full-page image of every page touched after
-- a checkpoint, and every new customer checks the foreign key with a locking read of its
-- customers row. Instead the worker builds the new rows in a table of their own,
-- customer_analytics_next_<run>_<token>, in a transaction of its own running beside the
-- run's (which writes the history meanwhile): customer_analytics_stage() creates it,
-- COPY ... FREEZE fills it, customer_analytics_seal() builds its primary key in one sort
-- and adds the foreign keys (validated by one join), and that transaction commits. Nobody
-- reads that table. Then, in the run's transaction, customer_analytics_swap() exchanges it
-- with customer_analytics by renaming both, so the new values appear with the run's
-- commit, together with its history and statistics. Readers wait for the renames only,
-- from then until that commit; statements and SQL functions (customer_json) look the name
-- up when they run, so they read the new table from then on. The old table becomes
-- customer_analytics_retired_<run> and is dropped after the commit by
-- customer_analytics_drop_retired(), which also drops staged tables that a failed or
-- interrupted run left behind: dropping a table with a foreign key takes an ACCESS
-- EXCLUSIVE lock on customers for a moment, which belongs in a short transaction of its own.
--
-- The swap happens only when customer_analytics has the shape these functions rebuild:
-- columns, CHECK constraints and storage options are copied, the primary key and the
-- foreign keys re-created from their definitions, and nothing else may exist (no other
-- index, trigger, rule, dependent view, policy, grant, inheritance, publication, table
-- referencing it, column default or identity); and only when its lock comes within the
-- given wait. Otherwise the staged rows are upserted, as runs over a tag's population
-- always are (those keep the other customers' values).

-- Every history lookup of one customer goes through the runs (one probe of the primary
-- key per run), so the second index, which every run had to update all over (one entry
-- per customer in every leaf page, in full-page images), is not worth its cost.
DROP INDEX customer_analytics_history_customer_idx;

-- What a swap must preserve of a table: columns (with NOT NULL, collation, storage,
-- compression, defaults), constraints (the primary key by its definition only, since the
-- staged one has a name of its own) and storage options.
CREATE FUNCTION customer_analytics_shape(rel regclass) RETURNS text LANGUAGE sql STABLE AS $$
    SELECT (SELECT string_agg(format('%s %s %s %s %s %s %s %s %s', a.attname, format_type(a.atttypid, a.atttypmod),
                                     a.attnotnull, a.attcollation, a.attstorage, a.attcompression, a.atthasdef,
                                     a.attidentity, a.attgenerated), ', ' ORDER BY a.attnum)
            FROM pg_attribute a WHERE a.attrelid = rel AND a.attnum > 0 AND NOT a.attisdropped)
        || ' | ' || coalesce((SELECT string_agg(CASE WHEN contype = 'p' THEN '' ELSE conname || ' ' END
                                                || pg_get_constraintdef(oid), ', ' ORDER BY contype, conname)
                              FROM pg_constraint WHERE conrelid = rel), '')
        || ' | ' || coalesce((SELECT array_to_string(reloptions, ', ') FROM pg_class WHERE oid = rel), '')
$$;

-- Creates the staged table (customer_analytics_next_<run>_<token>), empty, for COPY:
-- customer_analytics's columns, CHECK constraints and storage options, no index or key yet,
-- and run_id and computed_at defaulting to the run and the transaction's time (so COPY
-- leaves them out). Built from the catalog rather than with LIKE, which would lock
-- customer_analytics until the end of the transaction and so hold off another run's swap.
CREATE FUNCTION customer_analytics_stage(staged text, run bigint) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    cur oid := 'customer_analytics'::regclass;
    cols text;
    opts text[];
    con record;
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
END
$$;

-- Finishes the filled staged table: drops the defaults of stage(), builds the primary key
-- (one sort, rather than an index insertion per row during the COPY) and adds the foreign
-- keys, all from customer_analytics's definitions, and gathers the planner's statistics
-- (they stay with the table through the renames; the old table's go with it).
CREATE FUNCTION customer_analytics_seal(staged text) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    con record;
BEGIN
    EXECUTE format('ALTER TABLE %I ALTER COLUMN run_id DROP DEFAULT, ALTER COLUMN computed_at DROP DEFAULT', staged);
    FOR con IN SELECT contype, conname, pg_get_constraintdef(oid) AS def FROM pg_constraint
               WHERE conrelid = 'customer_analytics'::regclass AND contype IN ('p', 'f') ORDER BY contype DESC, conname LOOP
        EXECUTE format('ALTER TABLE %I ADD CONSTRAINT %I %s', staged,
                       CASE WHEN con.contype = 'p' THEN staged || '_pkey' ELSE con.conname END, con.def);
    END LOOP;
    EXECUTE format('ANALYZE %I', staged);
END
$$;

-- True when customer_analytics has nothing a swap would lose (see the top of this file)
-- and the same shape as the staged table.
CREATE FUNCTION customer_analytics_swappable(staged regclass) RETURNS boolean LANGUAGE sql STABLE AS $$
    SELECT c.relkind = 'r' AND c.relowner = (SELECT oid FROM pg_roles WHERE rolname = current_user)
       AND c.relacl IS NULL AND NOT c.relhasrules AND NOT c.relrowsecurity AND NOT c.relhassubclass
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

-- Makes the staged table the new customer_analytics and renames the old one
-- customer_analytics_retired_<run> (returns true), or, when the table's shape or its lock
-- does not allow it, upserts the staged rows into customer_analytics and renames the staged
-- table customer_analytics_retired_<run> instead (returns false); either is dropped after
-- the commit. The locks on customer_analytics are waited for at most lock_wait_ms, in up to
-- three attempts with pauses between them: readers queue behind the request while it waits.
-- An attempt that runs out of time gives back every lock it took, the one its shape check
-- took included, so that two runs swapping at once cannot hold each other up.
CREATE FUNCTION customer_analytics_swap(run bigint, staged text, lock_wait_ms integer) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    retired text := 'customer_analytics_retired_' || run;
    saved_wait text := current_setting('lock_timeout');
    pk_name text;
BEGIN
    IF staged !~ ('^customer_analytics_next_' || run || '_[0-9a-f]+$') THEN
        RAISE EXCEPTION 'customer_analytics_swap: % is not a name for the staged table of run %', staged, run;
    END IF;
    FOR attempt IN 1..3 LOOP
        BEGIN
            PERFORM set_config('lock_timeout', lock_wait_ms || 'ms', true);
            IF NOT customer_analytics_swappable(staged::regclass) THEN
                PERFORM set_config('lock_timeout', saved_wait, true);
                RAISE LOG 'run %: customer_analytics has objects a swap would not keep; upserting instead', run;
                EXIT;
            END IF;
            SELECT conname INTO pk_name FROM pg_constraint
                WHERE conrelid = 'customer_analytics'::regclass AND contype = 'p';
            EXECUTE format('ALTER TABLE customer_analytics RENAME TO %I', retired);
            EXECUTE format('ALTER INDEX %I RENAME TO %I', pk_name, retired || '_pkey');
            EXECUTE format('ALTER TABLE %I RENAME TO customer_analytics', staged);
            EXECUTE format('ALTER INDEX %I RENAME TO %I', staged || '_pkey', pk_name);
            PERFORM set_config('lock_timeout', saved_wait, true);
            RETURN true;
        EXCEPTION WHEN lock_not_available THEN
            -- Everything since BEGIN is undone, lock_timeout included; let the waiting readers through.
            IF attempt = 3 THEN
                RAISE LOG 'run %: customer_analytics stayed locked for 3 attempts of % ms; upserting instead', run,
                    lock_wait_ms;
            ELSE
                PERFORM pg_sleep(0.1 * attempt);
            END IF;
        END;
    END LOOP;
    EXECUTE format('INSERT INTO customer_analytics (customer_id, run_id, computed_at, recency_days, frequency, monetary,'
                   ' r, f, m, segment, lifecycle, tier)'
                   ' SELECT customer_id, run_id, computed_at, recency_days, frequency, monetary, r, f, m, segment,'
                   ' lifecycle, tier FROM %I'
                   ' ON CONFLICT (customer_id) DO UPDATE SET run_id = EXCLUDED.run_id, computed_at = EXCLUDED.computed_at,'
                   ' recency_days = EXCLUDED.recency_days, frequency = EXCLUDED.frequency, monetary = EXCLUDED.monetary,'
                   ' r = EXCLUDED.r, f = EXCLUDED.f, m = EXCLUDED.m, segment = EXCLUDED.segment,'
                   ' lifecycle = EXCLUDED.lifecycle, tier = EXCLUDED.tier', staged);
    EXECUTE format('ALTER TABLE %I RENAME TO %I', staged, retired);
    RETURN false;
END
$$;

-- Drops the tables customer_analytics_swap() retired, and staged tables of runs no longer
-- running (a failed or interrupted write leaves its staged table behind). Dropping a table
-- with a foreign key to customers takes an ACCESS EXCLUSIVE lock on customers for the moment
-- of the drop, and readers of customers queue behind the request while it waits: so each
-- table gets up to three attempts of at most lock_wait_ms each, with pauses between them,
-- and whatever is left stays for the next call. Returns how many are left.
CREATE FUNCTION customer_analytics_drop_retired(lock_wait_ms integer) RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    t record;
    left_over integer := 0;
    saved_wait text := current_setting('lock_timeout');
BEGIN
    FOR t IN SELECT c.oid::regclass AS rel FROM pg_class c
             WHERE c.relnamespace = (SELECT relnamespace FROM pg_class WHERE oid = 'customer_analytics'::regclass)
             AND c.relkind = 'r'
             AND (c.relname ~ '^customer_analytics_retired_[0-9]+$'
                  OR (c.relname ~ '^customer_analytics_next_[0-9]+_[0-9a-f]+$'
                      AND NOT EXISTS (SELECT 1 FROM analytics_runs r WHERE r.status = 'running'
                                      AND r.id = (regexp_match(c.relname, '^customer_analytics_next_([0-9]+)_'))[1]::bigint)))
    LOOP
        left_over := left_over + 1;
        FOR attempt IN 1..3 LOOP
            BEGIN
                PERFORM set_config('lock_timeout', lock_wait_ms || 'ms', true);
                EXECUTE format('DROP TABLE %s', t.rel);
                PERFORM set_config('lock_timeout', saved_wait, true);
                left_over := left_over - 1;
                EXIT;
            EXCEPTION WHEN lock_not_available THEN
                PERFORM pg_sleep(0.1 * attempt);
            END;
        END LOOP;
    END LOOP;
    RETURN left_over;
END
$$;
