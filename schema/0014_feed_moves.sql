-- schema/0014_feed_moves.sql - the change feed follows records that move between scopes.
--
-- A change row records the scope (owner, team) the record had before the
-- change when the change moved it (`moved`, with old_owner_id and
-- old_team_id). The feed statement shows such a row to each caller by the
-- side of the move they can read: both sides, an update; only the new side,
-- a create (with the record); only the old side, a delete (a tombstone), so
-- a scoped integrator drops what left its scope and gains what entered it.
-- Orders follow their customer's scope: when a customer moves, each of its
-- live orders gets a `move` row (the order itself unchanged), which is shown
-- as a create or a delete to callers who see only one side, and not at all
-- to callers who see both. An order moved to another customer is a moved
-- update like a customer's.
ALTER TABLE changes ADD COLUMN old_owner_id bigint,
                    ADD COLUMN old_team_id bigint,
                    ADD COLUMN moved boolean NOT NULL DEFAULT false;
ALTER TABLE changes DROP CONSTRAINT changes_op_check;
ALTER TABLE changes ADD CONSTRAINT changes_op_check CHECK (op IN ('create', 'update', 'delete', 'move'));

CREATE OR REPLACE FUNCTION customers_changed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    op text;
    moved boolean := false;
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
    IF TG_OP = 'UPDATE' THEN
        moved := (OLD.owner_id, OLD.team_id) IS DISTINCT FROM (NEW.owner_id, NEW.team_id);
    END IF;
    INSERT INTO changes (entity, entity_id, op, external_id, owner_id, team_id, old_owner_id, old_team_id, moved, data)
    VALUES ('customers', NEW.id, op, NEW.external_id, NEW.owner_id, NEW.team_id,
            CASE WHEN moved THEN OLD.owner_id END, CASE WHEN moved THEN OLD.team_id END, moved,
            CASE WHEN op = 'delete' THEN NULL ELSE customer_json(NEW)::jsonb END);
    IF moved AND op = 'update' THEN
        INSERT INTO changes (entity, entity_id, op, external_id, owner_id, team_id, old_owner_id, old_team_id, moved, data)
        SELECT 'orders', o.id, 'move', o.external_id, NEW.owner_id, NEW.team_id, OLD.owner_id, OLD.team_id, true,
               order_json(o)::jsonb
        FROM orders o WHERE o.customer_id = NEW.id AND o.deleted_at IS NULL ORDER BY o.id;
    END IF;
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION orders_changed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    op text;
    c customers;
    oc customers;
    moved boolean := false;
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
    IF TG_OP = 'UPDATE' AND OLD.customer_id <> NEW.customer_id THEN
        SELECT * INTO oc FROM customers WHERE id = OLD.customer_id;
        moved := (oc.owner_id, oc.team_id) IS DISTINCT FROM (c.owner_id, c.team_id);
    END IF;
    INSERT INTO changes (entity, entity_id, op, external_id, owner_id, team_id, old_owner_id, old_team_id, moved, data)
    VALUES ('orders', NEW.id, op, NEW.external_id, c.owner_id, c.team_id,
            CASE WHEN moved THEN oc.owner_id END, CASE WHEN moved THEN oc.team_id END, moved,
            CASE WHEN op = 'delete' THEN NULL ELSE order_json(NEW)::jsonb END);
    RETURN NULL;
END
$$;
