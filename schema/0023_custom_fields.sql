-- 0023_custom_fields.sql - records that belong to no one (the engine's global scope), and
-- custom fields: an administrator's definitions of the keys of a resource's attrs, which
-- every write of that resource is checked against.

-- Scope of a record with no owner and no team (a global record): `all` reaches it, any
-- narrower scope does not. Before, `own` gave NULL there, which a CASE WHEN NOT ... took as
-- "not refused"; now the answer is never NULL for a known scope.
CREATE OR REPLACE FUNCTION in_scope(scope text, uid bigint, tid bigint, owner_id bigint, team_id bigint)
RETURNS boolean LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE scope
        WHEN 'all' THEN true
        WHEN 'team' THEN team_id IS NOT NULL AND team_id = tid
        WHEN 'own' THEN owner_id IS NOT NULL AND owner_id = uid
        ELSE false
    END
$$;

-- The feed and history trigger (schema/0016) learns a third kind, 'global': rows without
-- owner and team, which the feed shows to callers whose scope is all.
CREATE OR REPLACE FUNCTION engine_changed() RETURNS trigger LANGUAGE plpgsql SET jit = off AS $$
DECLARE
    actor text := nullif(current_setting('clientele.actor', true), '');
    req text := nullif(current_setting('clientele.request_id', true), '');
    scope_n text := 'n.owner_id, n.team_id';
    scope_o text := 'o.owner_id AS o_owner, o.team_id AS o_team';
    joins text := '';
    child text[];
    i integer;
BEGIN
    IF TG_ARGV[0] = 'parent' THEN
        scope_n := 'pn.owner_id, pn.team_id';
        scope_o := 'po.owner_id AS o_owner, po.team_id AS o_team';
        joins := format(' JOIN %1$I pn ON pn.id = n.%2$I', TG_ARGV[1], TG_ARGV[2]);
    ELSIF TG_ARGV[0] = 'global' THEN
        scope_n := 'NULL::bigint AS owner_id, NULL::bigint AS team_id';
        scope_o := 'NULL::bigint AS o_owner, NULL::bigint AS o_team';
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
        scope_n, scope_o, joins, TG_TABLE_NAME) USING actor, req;
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

-- Custom fields (api/custom_fields.c): the definition of one key of a resource's attrs.
CREATE TABLE custom_fields (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    external_id  text CHECK (length(external_id) BETWEEN 1 AND 200),
    resource     text NOT NULL,
    key          text NOT NULL CHECK (key ~ '^[a-z][a-z0-9_]{0,39}$'),
    label        text NOT NULL,
    type         text NOT NULL CHECK (type IN ('text', 'number', 'decimal', 'date', 'datetime', 'boolean', 'enum',
                                               'multi_enum', 'url', 'email', 'phone')),
    required     boolean NOT NULL DEFAULT false,
    options      text[],
    max_length   integer,
    min          text,
    max          text,
    description  text,
    position     integer NOT NULL DEFAULT 0,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    version      integer NOT NULL DEFAULT 1,
    deleted_at   timestamptz
);
CREATE UNIQUE INDEX custom_fields_key ON custom_fields (resource, key) WHERE deleted_at IS NULL;
CREATE UNIQUE INDEX custom_fields_external_id_key ON custom_fields (external_id) WHERE deleted_at IS NULL;
CREATE INDEX custom_fields_created_idx ON custom_fields (created_at, id) WHERE deleted_at IS NULL;
CREATE INDEX custom_fields_updated_idx ON custom_fields (updated_at, id) WHERE deleted_at IS NULL;
CREATE INDEX custom_fields_position_idx ON custom_fields (position, id) WHERE deleted_at IS NULL;
CREATE TRIGGER custom_fields_touch BEFORE UPDATE ON custom_fields FOR EACH ROW EXECUTE FUNCTION touch_row();
CREATE TRIGGER custom_fields_feed_insert AFTER INSERT ON custom_fields REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION engine_changed('global');
CREATE TRIGGER custom_fields_feed_update AFTER UPDATE ON custom_fields
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION engine_changed('global');

-- Administrators define fields; everyone reads them (the resource is public_read).
UPDATE roles SET permissions = permissions
    || '{"custom_fields": {"read": "all", "create": "all", "update": "all", "delete": "all"}}'
WHERE name = 'admin' AND builtin;

-- The text as a value of the field's type, or NULL when it is not one (no error).
CREATE FUNCTION custom_field_num(v text) RETURNS numeric LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
BEGIN
    IF v IS NULL OR v !~ '^-?[0-9]{1,30}(\.[0-9]{1,10})?$' THEN RETURN NULL; END IF;
    RETURN v::numeric;
END
$$;
CREATE FUNCTION custom_field_date(v text) RETURNS date LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
BEGIN
    IF v IS NULL OR v !~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}$' THEN RETURN NULL; END IF;
    RETURN make_date(substr(v, 1, 4)::int, substr(v, 6, 2)::int, substr(v, 9, 2)::int);
EXCEPTION WHEN others THEN
    RETURN NULL;
END
$$;
-- RFC 3339 with an offset (Z or +hh:mm), so the instant does not depend on the session's zone.
CREATE FUNCTION custom_field_time(v text) RETURNS timestamptz LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
BEGIN
    IF v IS NULL OR v !~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?([Zz]|[+-][0-9]{2}:[0-9]{2})$'
    THEN RETURN NULL; END IF;
    RETURN v::timestamptz;
EXCEPTION WHEN others THEN
    RETURN NULL;
END
$$;

-- What is wrong with value v (attrs -> key) for field f, as an error code; NULL when it is fine.
CREATE FUNCTION custom_field_problem(f custom_fields, v jsonb, creating boolean)
RETURNS text LANGUAGE plpgsql STABLE PARALLEL SAFE AS $$
DECLARE
    t text := jsonb_typeof(v);
    s text;
    n numeric;
    d date;
    ts timestamptz;
    e jsonb;
BEGIN
    IF v IS NULL OR t = 'null' THEN
        RETURN CASE WHEN f.required AND creating THEN 'required' END;
    END IF;
    IF f.type IN ('number', 'decimal') THEN
        IF t = 'number' THEN
            n := v::text::numeric;
        ELSIF t = 'string' AND f.type = 'decimal' THEN
            n := custom_field_num(v #>> '{}');
            IF n IS NULL THEN RETURN 'invalid_format'; END IF;
        ELSE
            RETURN 'invalid_type';
        END IF;
        IF (f.min IS NOT NULL AND n < custom_field_num(f.min)) OR (f.max IS NOT NULL AND n > custom_field_num(f.max)) THEN
            RETURN 'out_of_range';
        END IF;
        RETURN NULL;
    END IF;
    IF f.type = 'boolean' THEN
        RETURN CASE WHEN t <> 'boolean' THEN 'invalid_type' END;
    END IF;
    IF f.type = 'multi_enum' THEN
        IF t <> 'array' THEN RETURN 'invalid_type'; END IF;
        FOR e IN SELECT x FROM jsonb_array_elements(v) x LOOP
            IF jsonb_typeof(e) <> 'string' OR NOT (e #>> '{}') = ANY (coalesce(f.options, '{}')) THEN
                RETURN 'invalid_value';
            END IF;
        END LOOP;
        IF (SELECT count(*) <> count(DISTINCT x) FROM jsonb_array_elements(v) x) THEN RETURN 'duplicate_value'; END IF;
        RETURN NULL;
    END IF;
    IF t <> 'string' THEN
        RETURN 'invalid_type';
    END IF;
    s := v #>> '{}';
    IF f.max_length IS NOT NULL AND length(s) > f.max_length THEN
        RETURN 'too_long';
    END IF;
    CASE f.type
    WHEN 'text' THEN
        RETURN NULL;
    WHEN 'enum' THEN
        RETURN CASE WHEN NOT s = ANY (coalesce(f.options, '{}')) THEN 'invalid_value' END;
    WHEN 'date' THEN
        d := custom_field_date(s);
        IF d IS NULL THEN RETURN 'invalid_format'; END IF;
        IF (f.min IS NOT NULL AND d < custom_field_date(f.min)) OR (f.max IS NOT NULL AND d > custom_field_date(f.max)) THEN
            RETURN 'out_of_range';
        END IF;
        RETURN NULL;
    WHEN 'datetime' THEN
        ts := custom_field_time(s);
        IF ts IS NULL THEN RETURN 'invalid_format'; END IF;
        IF (f.min IS NOT NULL AND ts < custom_field_time(f.min)) OR (f.max IS NOT NULL AND ts > custom_field_time(f.max)) THEN
            RETURN 'out_of_range';
        END IF;
        RETURN NULL;
    WHEN 'url' THEN
        RETURN CASE WHEN s !~ '^https?://[^[:space:]/?#]+[^[:space:]]*$' OR length(s) > 2048 THEN 'invalid_format' END;
    WHEN 'email' THEN
        RETURN CASE WHEN s !~ '^[^@[:space:]]+@[^@[:space:]]+\.[^@[:space:]]+$' OR length(s) > 254 THEN 'invalid_format' END;
    WHEN 'phone' THEN
        RETURN CASE WHEN s !~ '^\+?[0-9][0-9 ()./-]{2,31}$' THEN 'invalid_format' END;
    ELSE
        RETURN NULL;
    END CASE;
END
$$;

-- The first defined key of a record's attrs that breaks its definition, as "attrs.<key>:<code>"
-- (by position, then key); NULL when every defined key is fine. Keys without a definition are
-- free-form. Called by every write statement of a resource that has attrs (api/engine_sql.c).
CREATE FUNCTION custom_fields_violation(res text, attrs jsonb, creating boolean)
RETURNS text LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT 'attrs.' || f.key || ':' || p.code
    FROM custom_fields f CROSS JOIN LATERAL (SELECT custom_field_problem(f, attrs -> f.key, creating) AS code) p
    WHERE f.resource = res AND f.deleted_at IS NULL AND p.code IS NOT NULL
    ORDER BY f.position, f.key LIMIT 1
$$;
