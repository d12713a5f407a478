-- schema/0016_engine.sql - the resource engine: history of every record, contacts,
-- and the per-resource functions and triggers the engine's statements replace.
--
-- The API's write statements (generated from the resource descriptions in
-- api/) now write the change feed and the history themselves, in the same
-- statement as the change. Documents are built inline by those statements, so
-- the per-resource JSON functions, input types and feed triggers go.

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

-- One entry per create, update and delete of any engine record, written in the
-- writing statement. Append-only: the trigger below refuses every UPDATE, DELETE
-- and TRUNCATE, whoever asks (a superuser too), and no role but the owner holds
-- those privileges.
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

-- The members that differ between two documents, as [{"field","old","new"}]
-- in member order; a member absent on one side counts as null.
CREATE FUNCTION history_diff(old jsonb, new jsonb) RETURNS jsonb LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT coalesce(jsonb_agg(jsonb_build_object('field', k, 'old', coalesce(old -> k, 'null'),
                                                 'new', coalesce(new -> k, 'null')) ORDER BY k), '[]')
    FROM (SELECT jsonb_object_keys(old) AS k UNION SELECT jsonb_object_keys(new)) keys
    WHERE coalesce(old -> k, 'null') IS DISTINCT FROM coalesce(new -> k, 'null')
$$;

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
CREATE INDEX contacts_customer_idx ON contacts (customer_id, last_name, id) WHERE deleted_at IS NULL;
CREATE INDEX contacts_last_name_idx ON contacts (last_name, id) WHERE deleted_at IS NULL;
CREATE INDEX contacts_created_idx ON contacts (created_at, id) WHERE deleted_at IS NULL;
CREATE INDEX contacts_updated_idx ON contacts (updated_at, id) WHERE deleted_at IS NULL;
CREATE INDEX contacts_email_idx ON contacts (email) WHERE deleted_at IS NULL;
CREATE INDEX contacts_reports_to_idx ON contacts (reports_to_id) WHERE reports_to_id IS NOT NULL;
CREATE INDEX contacts_tags_idx ON contacts USING gin (tags) WHERE deleted_at IS NULL;
CREATE TRIGGER contacts_touch BEFORE UPDATE ON contacts FOR EACH ROW EXECUTE FUNCTION touch_row();

-- Every role that may read customers may read their contacts the same way,
-- unless an administrator says otherwise.
UPDATE roles SET permissions = permissions || jsonb_build_object('contacts', permissions -> 'customers')
WHERE permissions ? 'customers' AND NOT permissions ? 'contacts';
