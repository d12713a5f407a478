-- schema/0006_resource_helpers.sql - JSON Merge Patch and the writable shape of a customer.

-- RFC 7396 JSON Merge Patch.
CREATE FUNCTION jsonb_merge_patch(target jsonb, patch jsonb) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
    k text;
    v jsonb;
    result jsonb;
BEGIN
    IF patch IS NULL OR jsonb_typeof(patch) <> 'object' THEN
        RETURN patch;
    END IF;
    result := CASE WHEN jsonb_typeof(target) = 'object' THEN target ELSE '{}'::jsonb END;
    FOR k, v IN SELECT * FROM jsonb_each(patch) LOOP
        IF jsonb_typeof(v) = 'null' THEN
            result := result - k;
        ELSE
            result := jsonb_set(result, ARRAY[k], jsonb_merge_patch(result -> k, v));
        END IF;
    END LOOP;
    RETURN result;
END
$$;

-- The fields a client may write, as a row type for jsonb_populate_record().
CREATE TYPE customer_input AS (
    external_id  text,
    kind         text,
    name         text,
    email        citext,
    phone        text,
    address      jsonb,
    industry     text,
    status       text,
    owner_id     bigint,
    team_id      bigint,
    tags         text[],
    attrs        jsonb,
    credit_limit numeric
);

-- A customer's writable fields as JSON: the base a merge patch applies to.
CREATE FUNCTION customer_input_json(c customers) RETURNS jsonb LANGUAGE sql STABLE AS $$
    SELECT jsonb_strip_nulls(jsonb_build_object(
        'external_id', c.external_id, 'kind', c.kind, 'name', c.name, 'email', c.email, 'phone', c.phone,
        'address', c.address, 'industry', c.industry, 'status', c.status, 'owner_id', c.owner_id,
        'team_id', c.team_id, 'tags', to_jsonb(c.tags), 'attrs', c.attrs, 'credit_limit', c.credit_limit::text))
$$;

-- The same for orders.
CREATE TYPE order_input AS (
    external_id  text,
    customer_id  bigint,
    ordered_at   timestamptz,
    status       text,
    currency     text,
    total        numeric,
    lines        jsonb
);

CREATE FUNCTION order_input_json(o orders) RETURNS jsonb LANGUAGE sql STABLE AS $$
    SELECT jsonb_strip_nulls(jsonb_build_object(
        'external_id', o.external_id, 'customer_id', o.customer_id, 'ordered_at', o.ordered_at,
        'status', o.status, 'currency', o.currency, 'total', o.total::text, 'lines', o.lines))
$$;
