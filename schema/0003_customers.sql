-- schema/0003_customers.sql - customers and the change feed.
CREATE EXTENSION IF NOT EXISTS pg_trgm;

CREATE TABLE customers (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    external_id   text CHECK (length(external_id) BETWEEN 1 AND 200),
    kind          text NOT NULL CHECK (kind IN ('person', 'company')),
    name          text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    email         citext,
    phone         text,
    address       jsonb,
    industry      text,
    status        text NOT NULL DEFAULT 'prospect' CHECK (status IN ('prospect', 'customer', 'partner', 'inactive')),
    owner_id      bigint NOT NULL REFERENCES users (id),
    team_id       bigint REFERENCES teams (id),
    tags          text[] NOT NULL DEFAULT '{}',
    attrs         jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(attrs) = 'object'),
    credit_limit  numeric(18, 2),
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    version       integer NOT NULL DEFAULT 1,
    deleted_at    timestamptz
);
-- external_id is unique among live customers; a deleted customer's id may be reused.
CREATE UNIQUE INDEX customers_external_id_key ON customers (external_id) WHERE deleted_at IS NULL;
CREATE INDEX customers_owner_updated_idx ON customers (owner_id, updated_at DESC, id DESC) WHERE deleted_at IS NULL;
CREATE INDEX customers_team_updated_idx ON customers (team_id, updated_at DESC, id DESC) WHERE deleted_at IS NULL;
CREATE INDEX customers_updated_idx ON customers (updated_at, id) WHERE deleted_at IS NULL;
CREATE INDEX customers_created_idx ON customers (created_at, id) WHERE deleted_at IS NULL;
CREATE INDEX customers_name_idx ON customers (name, id) WHERE deleted_at IS NULL;
CREATE INDEX customers_tags_idx ON customers USING gin (tags) WHERE deleted_at IS NULL;
CREATE INDEX customers_name_trgm_idx ON customers USING gin (name gin_trgm_ops) WHERE deleted_at IS NULL;
CREATE INDEX customers_email_trgm_idx ON customers USING gin ((email::text) gin_trgm_ops) WHERE deleted_at IS NULL;
CREATE TRIGGER customers_touch BEFORE UPDATE ON customers FOR EACH ROW EXECUTE FUNCTION touch_row();

-- The one JSON shape of a customer, used by every read path. `analytics` is
-- filled by the analytics migration later; null until then.
CREATE FUNCTION customer_json(c customers) RETURNS json LANGUAGE sql STABLE AS $$
    SELECT json_build_object(
        'id', c.id, 'external_id', c.external_id, 'kind', c.kind, 'name', c.name,
        'email', c.email, 'phone', c.phone, 'address', c.address, 'industry', c.industry,
        'status', c.status, 'owner_id', c.owner_id, 'team_id', c.team_id, 'tags', to_jsonb(c.tags),
        'attrs', c.attrs, 'credit_limit', c.credit_limit::text,
        'created_at', to_char(c.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
        'updated_at', to_char(c.updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
        'version', c.version, 'analytics', NULL)
$$;

-- The change feed. Rows are written by triggers in the writing transaction and
-- carry that transaction's id; readers only return rows whose transaction is
-- older than every transaction still running (pg_snapshot_xmin), ordered by
-- (txid, seq). A transaction that commits late therefore cannot slip in
-- behind a cursor: its rows only become visible once nothing older is open.
CREATE TABLE changes (
    seq         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    txid        xid8 NOT NULL DEFAULT pg_current_xact_id(),
    entity      text NOT NULL,
    entity_id   bigint NOT NULL,
    op          text NOT NULL CHECK (op IN ('create', 'update', 'delete')),
    external_id text,
    owner_id    bigint,
    team_id     bigint,
    data        jsonb,
    changed_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX changes_feed_idx ON changes (entity, txid, seq);

CREATE FUNCTION customers_changed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    op text;
BEGIN
    IF TG_OP = 'INSERT' THEN
        op := 'create';
    ELSIF NEW.deleted_at IS NOT NULL AND OLD.deleted_at IS NULL THEN
        op := 'delete';
    ELSIF NEW.deleted_at IS NOT NULL THEN
        RETURN NULL; -- changes to a deleted row are not news
    ELSE
        op := 'update';
    END IF;
    INSERT INTO changes (entity, entity_id, op, external_id, owner_id, team_id, data)
    VALUES ('customers', NEW.id, op, NEW.external_id, NEW.owner_id, NEW.team_id,
            CASE WHEN op = 'delete' THEN NULL ELSE customer_json(NEW)::jsonb END);
    RETURN NULL;
END
$$;
CREATE TRIGGER customers_feed AFTER INSERT OR UPDATE ON customers FOR EACH ROW EXECUTE FUNCTION customers_changed();
