-- schema/0020_modules_transfers.sql - modules switched on and off at run time, and ownership
-- transfers: every record a user owns handed to another user in one transaction.

-- Which modules are on. Modules are named by the API (every engine resource, such as
-- customers, and analytics, users, teams, roles: api/modules.c derives the list from its
-- route table). A module without a row is on, so modules a later release adds start enabled;
-- rows naming modules the API does not have are ignored. Switching a module changes no data.
CREATE TABLE module_settings (
    module      text PRIMARY KEY CHECK (module ~ '^[a-z][a-z_]{0,31}$'),
    enabled     boolean NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    updated_by  bigint REFERENCES users (id)
);

-- One transfer: the owned records of from_user_id (of the resources named, all but those in a
-- closed state when only_open) given to to_user_id, and filed under team_id when it is set.
-- `closed` holds, per resource, the rule its description states ({"customers": {"field":
-- "status", "values": ["inactive"]}}); `total` is how many records were to move when the
-- transfer was asked for. Small transfers are done by the request's own statement; larger ones
-- by a worker run (run_id, kind ownership_transfer), in one transaction all the same. `counts`
-- holds the records moved per resource.
CREATE TABLE ownership_transfers (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    from_user_id  bigint NOT NULL REFERENCES users (id),
    to_user_id    bigint NOT NULL REFERENCES users (id),
    team_id       bigint REFERENCES teams (id),
    resources     text[] NOT NULL,
    only_open     boolean NOT NULL,
    closed        jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(closed) = 'object'),
    total         bigint NOT NULL DEFAULT 0,
    counts        jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(counts) = 'object'),
    run_id        bigint REFERENCES analytics_runs (id),
    requested_by  bigint NOT NULL REFERENCES users (id),
    request_id    text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    finished_at   timestamptz
);
CREATE INDEX ownership_transfers_from_idx ON ownership_transfers (from_user_id, id);
CREATE INDEX ownership_transfers_run_idx ON ownership_transfers (run_id) WHERE run_id IS NOT NULL;

-- Runs are the workers' queue: a large transfer is a run of its own kind (backups are one too, 0018).
ALTER TABLE analytics_runs DROP CONSTRAINT analytics_runs_kind_check,
    ADD CONSTRAINT analytics_runs_kind_check CHECK (kind IN ('rfm', 'clv', 'backup', 'ownership_transfer'));

-- The API writes both tables (0016's default privileges) but deletes from neither: a transfer
-- is a record of what happened, and a module switched back on keeps its row.
REVOKE DELETE, TRUNCATE ON module_settings, ownership_transfers FROM clientele_api;

-- History entries written while a transfer moves records name it. The transfer's statements
-- set clientele.transfer_id (transaction-local, like clientele.actor); every other write
-- leaves it empty, hence NULL. A default rather than a trigger: no cost per row.
ALTER TABLE record_history ADD COLUMN transfer_id bigint
    DEFAULT nullif(current_setting('clientele.transfer_id', true), '')::bigint;

-- The document of a transfer. A transfer done by the request succeeded when it was written;
-- one done by a worker shows its run's status, progress and error.
CREATE FUNCTION ownership_transfer_json(t ownership_transfers) RETURNS json LANGUAGE sql STABLE AS $$
    SELECT json_build_object(
        'id', t.id,
        'status', coalesce(r.status, 'succeeded'),
        'from_user_id', t.from_user_id, 'to_user_id', t.to_user_id, 'team_id', t.team_id,
        'resources', to_json(t.resources), 'only_open', t.only_open,
        'records_total', t.total,
        'records_done', CASE WHEN r.id IS NULL OR r.status = 'succeeded'
                             THEN (SELECT coalesce(sum(v::bigint), 0) FROM jsonb_each_text(t.counts) c(k, v))
                             ELSE r.customers_done END,
        'progress', CASE WHEN r.id IS NULL THEN 1 ELSE r.progress END,
        'counts', CASE WHEN r.id IS NULL OR r.status = 'succeeded' THEN t.counts END,
        'error', r.error,
        'requested_by', t.requested_by,
        'created_at', iso_utc(t.created_at),
        'finished_at', iso_utc(coalesce(t.finished_at, r.finished_at)))
    FROM (SELECT 1) one LEFT JOIN analytics_runs r ON r.id = t.run_id
$$;

-- The records a transfer moves from one resource: the live records `owner` owns, without the
-- closed ones when `rule` ({"field", "values"}) is given. Text for the statements below, over
-- alias x, with $1 the owner and $4 the closed values; identifiers quoted.
CREATE FUNCTION ownership_candidates(res text, rule jsonb) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT format('%I x WHERE x.owner_id = $1 AND x.deleted_at IS NULL', res)
        || CASE WHEN rule IS NULL THEN ''
                ELSE format(' AND (x.%1$I IS NULL OR x.%1$I::text <> ALL ($4::text[]))', rule ->> 'field') END
$$;

CREATE FUNCTION ownership_closed_values(rule jsonb) RETURNS text[] LANGUAGE sql IMMUTABLE AS $$
    SELECT coalesce(ARRAY(SELECT jsonb_array_elements_text(rule -> 'values')), '{}')
$$;

-- What a transfer would move, per resource, and how many of those records the user who asked
-- for it could not move with a write of their own: outside their update scope, or a move to
-- (to_user_id, team_id) their scope does not allow (scope_move_ok, as a PATCH would judge it).
CREATE FUNCTION ownership_transfer_plan(p_id bigint)
RETURNS TABLE (resource text, records bigint, outside bigint) LANGUAGE plpgsql STABLE AS $$
DECLARE
    t ownership_transfers;
    c record;
    rule jsonb;
BEGIN
    SELECT * INTO t FROM ownership_transfers WHERE id = p_id;
    SELECT u.id AS uid, u.team_id AS tid, r.permissions INTO c
    FROM users u JOIN roles r ON r.id = u.role_id WHERE u.id = t.requested_by;
    FOREACH resource IN ARRAY t.resources LOOP
        rule := CASE WHEN t.only_open THEN t.closed -> resource END;
        EXECUTE 'SELECT count(*), count(*) FILTER (WHERE NOT (in_scope($5, $6, $7, x.owner_id, x.team_id)'
                ' AND scope_move_ok($5, $6, $7, x.team_id, $2, coalesce($8, x.team_id)))) FROM '
                || ownership_candidates(resource, rule)
        INTO records, outside
        USING t.from_user_id, t.to_user_id, NULL::integer, ownership_closed_values(rule),
              coalesce(c.permissions #>> ARRAY[resource, 'update'], 'none'), c.uid, c.tid, t.team_id;
        RETURN NEXT;
    END LOOP;
END
$$;

-- Moves at most p_limit (NULL: every) of the transfer's remaining records, resource by
-- resource, lowest ids first, as the user who asked for it: their id and the transfer's are
-- what the history of each record names (the engine's trigger writes history and the change
-- feed). Adds the moved records to `counts` and returns how many moved. Raises
-- insufficient_privilege, moving nothing, when a record it would move is one that user may not
-- move, or that user is no longer active.
-- It runs as the owner (SECURITY DEFINER, executable by the API's and the worker's roles only):
-- the worker, which may not write records (0018), carries out the transfers the API recorded,
-- and only those, with the permissions of the user who asked for each.
CREATE FUNCTION ownership_transfer_move(p_id bigint, p_limit integer) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp SET jit = off AS $$
DECLARE
    t ownership_transfers;
    c record;
    res text;
    rule jsonb;
    bad bigint;
    moved bigint;
    n_moved bigint := 0;
BEGIN
    SELECT * INTO t FROM ownership_transfers WHERE id = p_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'ownership transfer % does not exist', p_id;
    END IF;
    SELECT u.id AS uid, u.team_id AS tid, r.permissions INTO c
    FROM users u JOIN roles r ON r.id = u.role_id WHERE u.id = t.requested_by AND u.active;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'user %, who asked for ownership transfer %, is no longer active', t.requested_by, p_id
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    PERFORM set_config('clientele.actor', t.requested_by::text, true),
            set_config('clientele.request_id', coalesce(t.request_id, ''), true),
            set_config('clientele.transfer_id', t.id::text, true);
    FOREACH res IN ARRAY t.resources LOOP
        rule := CASE WHEN t.only_open THEN t.closed -> res END;
        EXECUTE format(
            'WITH pick AS (SELECT x.id, x.owner_id, x.team_id FROM %s ORDER BY x.id LIMIT $3 FOR UPDATE OF x),'
            ' chk AS (SELECT count(*) FILTER (WHERE NOT (in_scope($5, $6, $7, p.owner_id, p.team_id)'
            '   AND scope_move_ok($5, $6, $7, p.team_id, $2, coalesce($8, p.team_id)))) AS bad FROM pick p),'
            ' upd AS (UPDATE %I y SET owner_id = $2, team_id = coalesce($8, y.team_id) FROM pick p, chk'
            '   WHERE y.id = p.id AND chk.bad = 0 RETURNING y.id)'
            ' SELECT (SELECT bad FROM chk), (SELECT count(*) FROM upd)',
            ownership_candidates(res, rule), res)
        INTO bad, moved
        USING t.from_user_id, t.to_user_id, p_limit, ownership_closed_values(rule),
              coalesce(c.permissions #>> ARRAY[res, 'update'], 'none'), c.uid, c.tid, t.team_id;
        IF bad > 0 THEN
            RAISE EXCEPTION '% % of user % may not be moved by user %', bad, res, t.from_user_id, c.uid
                USING ERRCODE = 'insufficient_privilege', DETAIL = format('%s %s', res, bad);
        END IF;
        IF moved > 0 OR NOT t.counts ? res THEN
            t.counts := t.counts || jsonb_build_object(res, coalesce((t.counts ->> res)::bigint, 0) + moved);
        END IF;
        n_moved := n_moved + moved;
    END LOOP;
    UPDATE ownership_transfers SET counts = t.counts WHERE id = p_id;
    RETURN n_moved;
END
$$;

-- The last step of a transfer done by a worker, in the run's transaction.
CREATE FUNCTION ownership_transfer_finish(p_id bigint) RETURNS void
LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp AS $$
    UPDATE ownership_transfers SET finished_at = now() WHERE id = p_id
$$;

REVOKE EXECUTE ON FUNCTION ownership_transfer_move(bigint, integer), ownership_transfer_finish(bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ownership_transfer_move(bigint, integer), ownership_transfer_finish(bigint)
    TO clientele_api, clientele_worker;

-- POST /v1/ownership-transfers, in one statement: who asks ($1 user id, $2 token version, the
-- request id and trace id, which a worker run carries too: 0019), what (p_input: from_user_id, to_user_id, team_id, resources, only_open, checked
-- by the API), the closed rules of the resources, and how many records a request may move
-- itself. Outcomes: unauthenticated; invalid_<field> (a user the caller may not see or that
-- does not exist, an inactive or identical recipient, an unknown team); forbidden (the caller
-- may not read users, or not update the resource named in detail at all); out_of_scope (detail: "<resource>
-- <count>" records the caller may not move; nothing recorded); succeeded (moved now); queued
-- (more than p_sync_max records: a worker run moves them). With the last two, the transfer's
-- document.
CREATE FUNCTION ownership_transfer_start(p_uid bigint, p_ver integer, p_request_id text, p_trace_id text,
                                         p_input jsonb, p_closed jsonb, p_sync_max bigint)
RETURNS TABLE (outcome text, transfer_id bigint, detail text, doc json) LANGUAGE plpgsql AS $$
DECLARE
    c record;
    rs text;
    res text;
    p record;
    fu users;
    tu users;
    tid bigint;
    n_total bigint := 0;
    run bigint;
    to_team bigint := (p_input ->> 'team_id')::bigint;
    resources text[] := ARRAY(SELECT jsonb_array_elements_text(p_input -> 'resources'));
BEGIN
    SELECT u.id AS uid, u.team_id AS tid, r.permissions INTO c
    FROM users u JOIN roles r ON r.id = u.role_id WHERE u.id = p_uid AND u.active AND u.token_version = p_ver;
    IF NOT FOUND THEN
        RETURN QUERY SELECT 'unauthenticated', NULL::bigint, NULL::text, NULL::json;
        RETURN;
    END IF;
    rs := coalesce(c.permissions #>> '{users,read}', 'none');
    IF rs = 'none' THEN
        RETURN QUERY SELECT 'forbidden', NULL::bigint, 'users', NULL::json;
        RETURN;
    END IF;
    SELECT * INTO fu FROM users u WHERE u.id = (p_input ->> 'from_user_id')::bigint
        AND in_scope(rs, c.uid, c.tid, u.id, u.team_id);
    IF NOT FOUND THEN
        RETURN QUERY SELECT 'invalid_from_user_id', NULL::bigint, NULL::text, NULL::json;
        RETURN;
    END IF;
    SELECT * INTO tu FROM users u WHERE u.id = (p_input ->> 'to_user_id')::bigint
        AND in_scope(rs, c.uid, c.tid, u.id, u.team_id);
    IF NOT FOUND THEN
        RETURN QUERY SELECT 'invalid_to_user_id', NULL::bigint, NULL::text, NULL::json;
        RETURN;
    ELSIF tu.id = fu.id THEN
        RETURN QUERY SELECT 'same_to_user_id', NULL::bigint, NULL::text, NULL::json;
        RETURN;
    ELSIF NOT tu.active THEN
        RETURN QUERY SELECT 'inactive_to_user_id', NULL::bigint, NULL::text, NULL::json;
        RETURN;
    END IF;
    IF to_team IS NOT NULL AND NOT EXISTS (SELECT 1 FROM teams WHERE id = to_team) THEN
        RETURN QUERY SELECT 'invalid_team_id', NULL::bigint, NULL::text, NULL::json;
        RETURN;
    END IF;
    FOREACH res IN ARRAY resources LOOP
        IF coalesce(c.permissions #>> ARRAY[res, 'update'], 'none') = 'none' THEN
            RETURN QUERY SELECT 'forbidden', NULL::bigint, res, NULL::json;
            RETURN;
        END IF;
    END LOOP;
    BEGIN
        INSERT INTO ownership_transfers (from_user_id, to_user_id, team_id, resources, only_open, closed,
                                         requested_by, request_id)
        VALUES (fu.id, tu.id, to_team, resources, (p_input ->> 'only_open')::boolean, p_closed, c.uid,
                p_request_id)
        RETURNING id INTO tid;
        FOR p IN SELECT * FROM ownership_transfer_plan(tid) LOOP
            IF p.outside > 0 THEN
                RAISE EXCEPTION 'out of scope' USING ERRCODE = 'insufficient_privilege',
                    DETAIL = format('%s %s', p.resource, p.outside);
            END IF;
            n_total := n_total + p.records;
        END LOOP;
        UPDATE ownership_transfers SET total = n_total WHERE id = tid;
        IF n_total > p_sync_max THEN
            INSERT INTO analytics_runs (kind, params, requested_by, customers_total, request_id, trace_id)
            VALUES ('ownership_transfer', jsonb_build_object('transfer_id', tid), c.uid, n_total, p_request_id,
                    p_trace_id)
            RETURNING id INTO run;
            INSERT INTO outbox (topic, payload)
            VALUES ('runs', jsonb_strip_nulls(jsonb_build_object('run_id', run, 'request_id', p_request_id,
                                                                 'trace_id', p_trace_id)));
            UPDATE ownership_transfers SET run_id = run WHERE id = tid;
            outcome := 'queued';
        ELSE
            PERFORM ownership_transfer_move(tid, NULL);
            UPDATE ownership_transfers SET finished_at = now() WHERE id = tid;
            outcome := 'succeeded';
        END IF;
    EXCEPTION WHEN insufficient_privilege THEN
        GET STACKED DIAGNOSTICS detail = PG_EXCEPTION_DETAIL;
        RETURN QUERY SELECT 'out_of_scope', NULL::bigint, detail, NULL::json;
        RETURN;
    END;
    RETURN QUERY SELECT outcome, tid, NULL::text, ownership_transfer_json(t) FROM ownership_transfers t WHERE t.id = tid;
END
$$;

-- Counts of the live records a user owns, per owned resource named in `resources` (the API
-- passes its owned engine resources, whose tables carry owner_id and deleted_at).
CREATE FUNCTION owned_record_counts(uid bigint, resources text[]) RETURNS jsonb LANGUAGE plpgsql STABLE AS $$
DECLARE
    res text;
    n bigint;
    out jsonb := '{}';
BEGIN
    FOREACH res IN ARRAY resources LOOP
        EXECUTE format('SELECT count(*) FROM %I WHERE owner_id = $1 AND deleted_at IS NULL', res) INTO n USING uid;
        out := out || jsonb_build_object(res, n);
    END LOOP;
    RETURN out;
END
$$;
