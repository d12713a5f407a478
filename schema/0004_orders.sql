-- schema/0004_orders.sql - orders: the facts the analytics worker reads.
CREATE TABLE orders (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    external_id  text CHECK (length(external_id) BETWEEN 1 AND 200),
    customer_id  bigint NOT NULL REFERENCES customers (id),
    ordered_at   timestamptz NOT NULL,
    status       text NOT NULL CHECK (status IN ('pending', 'completed', 'cancelled', 'refunded')),
    currency     char(3) NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    total        numeric(14, 2) NOT NULL,
    lines        jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(lines) = 'array'),
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    version      integer NOT NULL DEFAULT 1,
    deleted_at   timestamptz
);
CREATE UNIQUE INDEX orders_external_id_key ON orders (external_id) WHERE deleted_at IS NULL;
CREATE INDEX orders_customer_idx ON orders (customer_id, ordered_at) WHERE deleted_at IS NULL;
CREATE INDEX orders_ordered_idx ON orders (ordered_at, id) WHERE deleted_at IS NULL;
CREATE INDEX orders_updated_idx ON orders (updated_at, id) WHERE deleted_at IS NULL;
CREATE TRIGGER orders_touch BEFORE UPDATE ON orders FOR EACH ROW EXECUTE FUNCTION touch_row();

CREATE FUNCTION order_json(o orders) RETURNS json LANGUAGE sql STABLE AS $$
    SELECT json_build_object(
        'id', o.id, 'external_id', o.external_id, 'customer_id', o.customer_id,
        'ordered_at', to_char(o.ordered_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
        'status', o.status, 'currency', o.currency, 'total', o.total::text, 'lines', o.lines,
        'created_at', to_char(o.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
        'updated_at', to_char(o.updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
        'version', o.version)
$$;

-- An order's scope is its customer's: the feed row records the customer's owner and team.
CREATE FUNCTION orders_changed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    op text;
    c customers;
BEGIN
    IF TG_OP = 'INSERT' THEN
        op := 'create';
    ELSIF NEW.deleted_at IS NOT NULL AND OLD.deleted_at IS NULL THEN
        op := 'delete';
    ELSIF NEW.deleted_at IS NOT NULL THEN
        RETURN NULL;
    ELSE
        op := 'update';
    END IF;
    SELECT * INTO c FROM customers WHERE id = NEW.customer_id;
    INSERT INTO changes (entity, entity_id, op, external_id, owner_id, team_id, data)
    VALUES ('orders', NEW.id, op, NEW.external_id, c.owner_id, c.team_id,
            CASE WHEN op = 'delete' THEN NULL ELSE order_json(NEW)::jsonb END);
    RETURN NULL;
END
$$;
CREATE TRIGGER orders_feed AFTER INSERT OR UPDATE ON orders FOR EACH ROW EXECUTE FUNCTION orders_changed();
