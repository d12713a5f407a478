-- schema/0016_engine.sql - the resource engine: history of every record, contacts,
-- and the per-resource functions and triggers the engine's statements replace.
--
-- Documents are now built inline by the statements the API generates from its
-- resource descriptions (api/engine_sql.c), so the per-resource JSON
-- functions and input types go; one trigger function writes the change feed
-- and the history of every engine resource.

DROP TRIGGER customers_feed ON customers;
DROP TRIGGER orders_feed ON orders;
DROP FUNCTION customers_changed();
DROP FUNCTION orders_changed();
DROP FUNCTION customer_input_json(customers);
DROP FUNCTION order_input_json(orders);
DROP FUNCTION customer_json(customers);
DROP FUNCTION order_json(orders);
DROP TYPE customer_input;
DROP TYPE order_input;

-- Timestamps as every document shows them: RFC 3339 in UTC with microseconds.
-- A single SELECT no more volatile than itself (to_char is stable), so the planner inlines it.
CREATE FUNCTION iso_utc(t timestamptz) RETURNS text LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
$$;

-- One entry per create, update and delete of any engine record. Append-only: the
-- trigger below refuses every UPDATE, DELETE and TRUNCATE, whoever asks (a
-- superuser too), and no role but the owner holds those privileges. `changes`
-- holds the columns that changed as stored ([{"field","old","new"}], values as
-- to_jsonb gives them, bookkeeping columns left out); readers format them as
-- the resource's documents do.
CREATE TABLE record_history (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    entity      text NOT NULL,
    entity_id   bigint NOT NULL,
    at          timestamptz NOT NULL DEFAULT now(),
    actor_type  text NOT NULL DEFAULT 'user' CHECK (actor_type IN ('user', 'system')),
    actor_id    bigint,
    request_id  text,
    op          text NOT NULL CHECK (op IN ('create', 'update', 'delete')),
    changes     jsonb NOT NULL CHECK (jsonb_typeof(changes) = 'array')
);
CREATE INDEX record_history_entity_idx ON record_history (entity, entity_id, id DESC);
REVOKE UPDATE, DELETE, TRUNCATE ON record_history FROM PUBLIC;

CREATE FUNCTION record_history_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'record_history is append-only' USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER record_history_no_update BEFORE UPDATE OR DELETE ON record_history
    FOR EACH ROW EXECUTE FUNCTION record_history_append_only();
CREATE TRIGGER record_history_no_truncate BEFORE TRUNCATE ON record_history
    FOR EACH STATEMENT EXECUTE FUNCTION record_history_append_only();


-- The change feed and the history of every engine resource, whoever writes:
-- one trigger function for all of them, run once per statement over its rows
-- (transition tables), so a bulk of 5,000 records costs a few set-based inserts;
-- without JIT, whose compile time would dwarf them.
-- The API's write statements name the actor and the request in
-- transaction-local settings (clientele.actor, clientele.request_id); other
-- writers are recorded as the system.
-- Arguments: 'owned' (the rows carry owner_id and team_id) followed by the
-- children that inherit their scope as 'table:reference' pairs; or 'parent',
-- the parent's table and the reference column.
-- The feed row holds the record as stored (to_jsonb); readers build the
-- document from it. A change that moves a record between scopes records the
-- old scope (`moved`); when an owned record moves, each live child gets a
-- `move` row (see 0014).
CREATE FUNCTION engine_changed() RETURNS trigger LANGUAGE plpgsql SET jit = off AS $$
DECLARE
    actor text := nullif(current_setting('clientele.actor', true), '');
    req text := nullif(current_setting('clientele.request_id', true), '');
    scope_n text := 'n.owner_id, n.team_id';
    scope_o text := 'o.owner_id, o.team_id';
    joins text := '';
    child text[];
    i integer;
BEGIN
    IF TG_ARGV[0] = 'parent' THEN
        scope_n := 'pn.owner_id, pn.team_id';
        scope_o := 'po.owner_id, po.team_id';
        joins := format(' JOIN %1$I pn ON pn.id = n.%2$I', TG_ARGV[1], TG_ARGV[2]);
    END IF;
    IF TG_OP = 'INSERT' THEN
        EXECUTE format(
            'WITH w AS (SELECT n.id, n.external_id, to_jsonb(n) AS rec, %1$s FROM new_rows n%2$s),'
            ' ch AS (INSERT INTO changes (entity, entity_id, op, external_id, owner_id, team_id, data)'
            '   SELECT %3$L, w.id, ''create'', w.external_id, w.owner_id, w.team_id, w.rec FROM w ORDER BY w.id)'
            ' INSERT INTO record_history (entity, entity_id, actor_type, actor_id, request_id, op, changes)'
            ' SELECT %3$L, w.id, CASE WHEN $1 IS NULL THEN ''system'' ELSE ''user'' END, $1::bigint, $2, ''create'','
            '   (SELECT coalesce(jsonb_agg(jsonb_build_object(''field'', e.key, ''old'', NULL::jsonb, ''new'', e.value)'
            '     ORDER BY e.key), ''[]'') FROM jsonb_each(jsonb_strip_nulls(w.rec)) e'
            '     WHERE e.key NOT IN (''id'', ''version'', ''created_at'', ''updated_at'', ''deleted_at''))'
            ' FROM w ORDER BY w.id',
            scope_n, joins, TG_TABLE_NAME) USING actor, req;
        RETURN NULL;
    END IF;
    IF TG_ARGV[0] = 'parent' THEN
        joins := joins || format(' JOIN %1$I po ON po.id = o.%2$I', TG_ARGV[1], TG_ARGV[2]);
    END IF;
    EXECUTE format(
        'WITH w AS (SELECT n.id, n.external_id, to_jsonb(n) AS rec, to_jsonb(o) AS old_rec,'
        '   CASE WHEN n.deleted_at IS NOT NULL AND o.deleted_at IS NULL THEN ''delete'''
        '     WHEN n.deleted_at IS NULL THEN ''update'' END AS op,'
        '   %1$s, %2$s FROM new_rows n JOIN old_rows o ON o.id = n.id%3$s),'
        ' m AS (SELECT w.*, w.op = ''update'' AND (w.o_owner, w.o_team) IS DISTINCT FROM (w.owner_id, w.team_id)'
        '   AS moved FROM w WHERE w.op IS NOT NULL),'
        ' ch AS (INSERT INTO changes (entity, entity_id, op, external_id, owner_id, team_id, old_owner_id, old_team_id,'
        '     moved, data)'
        '   SELECT %4$L, m.id, m.op, m.external_id, m.owner_id, m.team_id, CASE WHEN m.moved THEN m.o_owner END,'
        '     CASE WHEN m.moved THEN m.o_team END, m.moved, CASE WHEN m.op = ''update'' THEN m.rec END'
        '   FROM m ORDER BY m.id),'
        ' h AS MATERIALIZED (SELECT m.id, m.op, CASE WHEN m.op = ''update'' THEN (SELECT coalesce(jsonb_agg('
        '     jsonb_build_object(''field'', n.key, ''old'', o.value, ''new'', n.value) ORDER BY n.key), ''[]'')'
        '     FROM jsonb_each(m.rec) n JOIN jsonb_each(m.old_rec) o USING (key) WHERE n.value IS DISTINCT FROM o.value'
        '     AND n.key NOT IN (''id'', ''version'', ''created_at'', ''updated_at'', ''deleted_at''))'
        '     ELSE ''[]'' END AS diff FROM m)'
        ' INSERT INTO record_history (entity, entity_id, actor_type, actor_id, request_id, op, changes)'
        ' SELECT %4$L, h.id, CASE WHEN $1 IS NULL THEN ''system'' ELSE ''user'' END, $1::bigint, $2, h.op, h.diff'
        ' FROM h WHERE h.op <> ''update'' OR h.diff <> ''[]'' ORDER BY h.id',
        scope_n, replace(replace(scope_o, '.owner_id', '.owner_id AS o_owner'), '.team_id', '.team_id AS o_team'),
        joins, TG_TABLE_NAME) USING actor, req;
    IF TG_ARGV[0] = 'owned' THEN
        FOR i IN 1 .. coalesce(array_length(TG_ARGV, 1), 1) - 1 LOOP
            child := string_to_array(TG_ARGV[i], ':');
            EXECUTE format(
                'INSERT INTO changes (entity, entity_id, op, external_id, owner_id, team_id, old_owner_id, old_team_id,'
                ' moved, data) SELECT %1$L, x.id, ''move'', x.external_id, n.owner_id, n.team_id, o.owner_id, o.team_id,'
                ' true, to_jsonb(x) FROM new_rows n JOIN old_rows o ON o.id = n.id'
                ' JOIN %1$I x ON x.%2$I = n.id AND x.deleted_at IS NULL'
                ' WHERE n.deleted_at IS NULL AND (o.owner_id, o.team_id) IS DISTINCT FROM (n.owner_id, n.team_id)'
                ' ORDER BY n.id, x.id', child[1], child[2]);
        END LOOP;
    END IF;
    RETURN NULL;
END
$$;

-- Each engine table: one trigger for inserts and one for updates (a trigger with
-- transition tables takes one event).
CREATE TRIGGER customers_feed_insert AFTER INSERT ON customers REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION engine_changed('owned', 'orders:customer_id', 'contacts:customer_id');
CREATE TRIGGER customers_feed_update AFTER UPDATE ON customers REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION engine_changed('owned', 'orders:customer_id', 'contacts:customer_id');
CREATE TRIGGER orders_feed_insert AFTER INSERT ON orders REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION engine_changed('parent', 'customers', 'customer_id');
CREATE TRIGGER orders_feed_update AFTER UPDATE ON orders REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION engine_changed('parent', 'customers', 'customer_id');

CREATE TABLE contacts (
    id                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    external_id        text CHECK (length(external_id) BETWEEN 1 AND 200),
    customer_id        bigint NOT NULL REFERENCES customers (id),
    first_name         text,
    last_name          text,
    title              text,
    department         text,
    reports_to_id      bigint REFERENCES contacts (id),
    email              citext,
    phone              text,
    mobile             text,
    is_primary         boolean NOT NULL DEFAULT false,
    birthday           date,
    preferred_channel  text CHECK (preferred_channel IN ('email', 'phone', 'sms', 'mail', 'none')),
    do_not_contact     boolean NOT NULL DEFAULT false,
    notes              text,
    tags               text[] NOT NULL DEFAULT '{}',
    attrs              jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(attrs) = 'object'),
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    version            integer NOT NULL DEFAULT 1,
    deleted_at         timestamptz,
    CHECK (first_name IS NOT NULL OR last_name IS NOT NULL),
    -- One primary contact per customer. Deferred: the statement that makes a
    -- contact primary clears the previous one in the same statement.
    CONSTRAINT contacts_one_primary EXCLUDE USING btree (customer_id WITH =)
        WHERE (is_primary AND deleted_at IS NULL) DEFERRABLE INITIALLY DEFERRED
);
CREATE UNIQUE INDEX contacts_external_id_key ON contacts (external_id) WHERE deleted_at IS NULL;
-- Lists sort by last name with null as '' (api/engine_sql.c, sort_key).
CREATE INDEX contacts_customer_idx ON contacts (customer_id, coalesce(last_name, ''), id) WHERE deleted_at IS NULL;
CREATE INDEX contacts_last_name_idx ON contacts (coalesce(last_name, ''), id) WHERE deleted_at IS NULL;
CREATE INDEX contacts_created_idx ON contacts (created_at, id) WHERE deleted_at IS NULL;
CREATE INDEX contacts_updated_idx ON contacts (updated_at, id) WHERE deleted_at IS NULL;
CREATE INDEX contacts_email_idx ON contacts (email) WHERE deleted_at IS NULL;
CREATE INDEX contacts_reports_to_idx ON contacts (reports_to_id) WHERE reports_to_id IS NOT NULL;
CREATE INDEX contacts_tags_idx ON contacts USING gin (tags) WHERE deleted_at IS NULL;
CREATE TRIGGER contacts_touch BEFORE UPDATE ON contacts FOR EACH ROW EXECUTE FUNCTION touch_row();
CREATE TRIGGER contacts_feed_insert AFTER INSERT ON contacts REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION engine_changed('parent', 'customers', 'customer_id');
CREATE TRIGGER contacts_feed_update AFTER UPDATE ON contacts REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION engine_changed('parent', 'customers', 'customer_id');

-- Every role that may read customers may read their contacts the same way,
-- unless an administrator says otherwise.
UPDATE roles SET permissions = permissions || jsonb_build_object('contacts', permissions -> 'customers')
WHERE permissions ? 'customers' AND NOT permissions ? 'contacts';

-- The role the API's sessions act as (CLIENTELE_DB_ROLE, default clientele_api: the
-- API logs in as the owner and its sessions SET ROLE at connect). It may read and
-- write the tables, and only SELECT and INSERT the history; the owner (migrations,
-- the worker) keeps everything. Tables and sequences that later migrations or the
-- worker create get the same grants by default.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'clientele_api') THEN
        CREATE ROLE clientele_api NOLOGIN;
    END IF;
    IF NOT pg_has_role(current_user, 'clientele_api', 'MEMBER') THEN
        EXECUTE format('GRANT clientele_api TO %I', current_user);
    END IF;
END
$$;
GRANT USAGE ON SCHEMA public TO clientele_api;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO clientele_api;
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO clientele_api;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO clientele_api;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO clientele_api;
REVOKE UPDATE, DELETE, TRUNCATE ON record_history FROM clientele_api;

-- The org chart holds at commit, whatever the statements of the transaction did
-- (a bulk that links its own items, two requests that race): a contact reports to
-- a live contact of its own customer, never in a circle, and a contact that moves
-- to another customer leaves no reports behind. Changes of one customer's chart
-- are serialised by a lock on the customer row, so each check sees the other's
-- commit. The error's detail is the contact's external id (a bulk names its item). The API answers a violation with 422 naming the field (api/contacts.c).
CREATE FUNCTION contacts_org_chart() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    c contacts;
BEGIN
    PERFORM 1 FROM customers WHERE id = NEW.customer_id FOR NO KEY UPDATE;
    SELECT * INTO c FROM contacts WHERE id = NEW.id; -- as it is now, after every statement
    IF c.id IS NULL OR c.deleted_at IS NOT NULL THEN
        RETURN NULL;
    END IF;
    IF c.reports_to_id IS NOT NULL THEN
        IF NOT EXISTS (SELECT 1 FROM contacts r WHERE r.id = c.reports_to_id AND r.customer_id = c.customer_id
                       AND r.deleted_at IS NULL) THEN
            RAISE EXCEPTION 'contact % reports to no live contact of its customer', c.id
                USING ERRCODE = 'check_violation', CONSTRAINT = 'contacts_reports_to_same_customer',
                      DETAIL = coalesce(c.external_id, '');
        END IF;
        IF EXISTS (WITH RECURSIVE up(id, depth) AS (
                       SELECT c.reports_to_id, 1
                       UNION ALL
                       SELECT r.reports_to_id, up.depth + 1 FROM contacts r JOIN up ON r.id = up.id
                       WHERE r.reports_to_id IS NOT NULL AND up.depth < 10000)
                   SELECT 1 FROM up WHERE up.id = c.id) THEN
            RAISE EXCEPTION 'contact % would report to itself', c.id
                USING ERRCODE = 'check_violation', CONSTRAINT = 'contacts_reports_to_cycle',
                      DETAIL = coalesce(c.external_id, '');
        END IF;
    END IF;
    IF EXISTS (SELECT 1 FROM contacts r WHERE r.reports_to_id = c.id AND r.customer_id <> c.customer_id
               AND r.deleted_at IS NULL) THEN
        RAISE EXCEPTION 'contacts of another customer report to contact %', c.id
            USING ERRCODE = 'check_violation', CONSTRAINT = 'contacts_reports_left_behind',
                  DETAIL = coalesce(c.external_id, '');
    END IF;
    RETURN NULL;
END
$$;
CREATE CONSTRAINT TRIGGER contacts_org_chart AFTER INSERT OR UPDATE OF reports_to_id, customer_id ON contacts
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION contacts_org_chart();

-- With the API's role granted on every table, customer_analytics carries an ACL;
-- a staged table gets the same one (the default privileges above), so a swap
-- loses nothing when the two are equal.
CREATE OR REPLACE FUNCTION customer_analytics_swappable(staged regclass) RETURNS boolean LANGUAGE sql STABLE AS $$
    SELECT c.relkind = 'r' AND c.relowner = (SELECT oid FROM pg_roles WHERE rolname = current_user)
       AND c.relacl IS NOT DISTINCT FROM (SELECT relacl FROM pg_class WHERE oid = staged) AND NOT c.relhasrules AND NOT c.relrowsecurity AND NOT c.relhassubclass
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
