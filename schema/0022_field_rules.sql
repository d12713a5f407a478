-- 0022_field_rules.sql - field-level access: a role's permissions gain "fields".
--
-- permissions.fields.<module> maps a field of that module's records (a built-in
-- field, or "attrs.<key>" for a key of attrs) to "hidden" (never shown on any
-- read path: documents, lists, exports, the change feed, history) or "read"
-- (shown, not writable). Absent: as the module says. The statements the engine
-- generates (api/engine_sql.c) read the rules from here (writes) or receive the
-- hidden ones with the caller's scope (reads, api/callers.c); this migration
-- only adds what those statements call and the built-in defaults.

-- The shape of permissions, now with "fields": {"<module>": {"<field>": "hidden" | "read"}},
-- a field being a built-in field's name or "attrs.<key>" (api/admin.c names each bad entry).
CREATE OR REPLACE FUNCTION role_permissions_valid(p jsonb) RETURNS boolean LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT jsonb_typeof(p) = 'object' AND NOT EXISTS (
        SELECT 1 FROM jsonb_each(p) m
        WHERE m.key !~ '^[a-z][a-z_]{0,31}$'
           OR CASE WHEN jsonb_typeof(m.value) <> 'object' THEN true
                   WHEN m.key = 'fields' THEN EXISTS (
                       SELECT 1 FROM jsonb_each(m.value) fm
                       WHERE fm.key !~ '^[a-z][a-z_]{0,31}$' OR jsonb_typeof(fm.value) <> 'object'
                          OR EXISTS (SELECT 1 FROM jsonb_each(fm.value) f
                                     WHERE f.key !~ '^([a-z][a-z0-9_]{0,47}|attrs\.[a-z][a-z0-9_]{0,39})$'
                                        OR f.value NOT IN ('"hidden"', '"read"')))
                   ELSE EXISTS (SELECT 1 FROM jsonb_each(m.value) a
                                WHERE a.key NOT IN ('read', 'create', 'update', 'delete')
                                   OR a.value NOT IN ('"none"', '"own"', '"team"', '"all"')) END)
$$;

-- v without the given keys when v is an object; anything else as it is (history values).
CREATE FUNCTION jsonb_without(v jsonb, keys text[]) RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN keys IS NULL OR v IS NULL OR jsonb_typeof(v) <> 'object' THEN v ELSE v - keys END
$$;

-- Built-in defaults: a rep sees a customer's credit limit but may not set it (finance
-- does); an analyst never sees a contact's personal details, which analysis does not need.
UPDATE roles SET permissions = permissions || '{"fields": {"customers": {"credit_limit": "read"}}}'
WHERE name = 'rep' AND builtin AND NOT permissions ? 'fields';
UPDATE roles SET permissions = permissions || '{"fields": {"contacts": {"birthday": "hidden", "mobile": "hidden", "phone": "hidden"}}}'
WHERE name = 'analyst' AND builtin AND NOT permissions ? 'fields';
