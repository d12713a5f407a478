-- schema/0007_admin.sql - administration of users, teams and roles: document shapes, the
-- permission format as a constraint, and cutting off sessions when they must stop.

-- The one JSON shape of each record, used by every read and write path of /v1/users,
-- /v1/teams and /v1/roles. A user's password_hash and token_version never appear.
CREATE FUNCTION team_json(t teams) RETURNS json LANGUAGE sql STABLE AS $$
    SELECT json_build_object(
        'id', t.id, 'name', t.name,
        'created_at', to_char(t.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
        'updated_at', to_char(t.updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
        'version', t.version)
$$;

CREATE FUNCTION role_json(r roles) RETURNS json LANGUAGE sql STABLE AS $$
    SELECT json_build_object(
        'id', r.id, 'name', r.name, 'description', r.description, 'permissions', r.permissions,
        'builtin', r.builtin,
        'created_at', to_char(r.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
        'updated_at', to_char(r.updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
        'version', r.version)
$$;

CREATE FUNCTION user_json(u users) RETURNS json LANGUAGE sql STABLE AS $$
    SELECT json_build_object(
        'id', u.id, 'email', u.email, 'name', u.name,
        'role', (SELECT r.name FROM roles r WHERE r.id = u.role_id),
        'team_id', u.team_id, 'active', u.active,
        'created_at', to_char(u.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
        'updated_at', to_char(u.updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
        'version', u.version)
$$;

-- A user's writable fields (without the password) as JSON: the base a merge patch applies to.
CREATE FUNCTION user_input_json(u users) RETURNS jsonb LANGUAGE sql STABLE AS $$
    SELECT jsonb_strip_nulls(jsonb_build_object(
        'email', u.email, 'name', u.name, 'role', (SELECT r.name FROM roles r WHERE r.id = u.role_id),
        'team_id', u.team_id, 'active', u.active))
$$;

-- The permission format, enforced here as well as by the API's validation: an object of
-- modules (^[a-z][a-z_]{0,31}$), each an object mapping read/create/update/delete to
-- none/own/team/all.
CREATE FUNCTION role_permissions_valid(p jsonb) RETURNS boolean LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT jsonb_typeof(p) = 'object' AND NOT EXISTS (
        SELECT 1 FROM jsonb_each(p) m
        WHERE m.key !~ '^[a-z][a-z_]{0,31}$'
           OR CASE WHEN jsonb_typeof(m.value) <> 'object' THEN true
                   ELSE EXISTS (SELECT 1 FROM jsonb_each(m.value) a
                                WHERE a.key NOT IN ('read', 'create', 'update', 'delete')
                                   OR a.value NOT IN ('"none"', '"own"', '"team"', '"all"')) END)
$$;
ALTER TABLE roles ADD CONSTRAINT roles_permissions_valid CHECK (role_permissions_valid(permissions));

-- Scopes ordered by reach, for comparing roles.
CREATE FUNCTION scope_rank(scope text) RETURNS integer LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE scope WHEN 'all' THEN 3 WHEN 'team' THEN 2 WHEN 'own' THEN 1 ELSE 0 END
$$;

-- Does a role with permissions `have` reach at least as far as `want` for every module and
-- action? Used so that a user administrator who may not edit roles cannot hand out (or take
-- over an account holding) more rights than their own.
CREATE FUNCTION permissions_cover(have jsonb, want jsonb) RETURNS boolean LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT NOT EXISTS (
        SELECT 1 FROM jsonb_each(coalesce(want, '{}')) m, jsonb_each_text(m.value) a
        WHERE scope_rank(a.value) > scope_rank(have #>> ARRAY[m.key, a.key]))
$$;

-- Access tokens carry the user's token_version (`ver`), and every scoped statement compares
-- it with the row; bumping it cuts off every access token issued before, in the very
-- statement that deactivates the user or changes their password, role or team. (A role or
-- team change only forces a refresh, which issues tokens with the new claims.)
CREATE FUNCTION users_bump_token_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF (OLD.active AND NOT NEW.active) OR NEW.password_hash IS DISTINCT FROM OLD.password_hash
       OR NEW.role_id IS DISTINCT FROM OLD.role_id OR NEW.team_id IS DISTINCT FROM OLD.team_id THEN
        NEW.token_version := OLD.token_version + 1;
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER users_token_version BEFORE UPDATE ON users FOR EACH ROW EXECUTE FUNCTION users_bump_token_version();

-- Deactivation and a password change end every session: the refresh tokens go too.
CREATE FUNCTION users_revoke_sessions() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE refresh_tokens SET revoked_at = now() WHERE user_id = NEW.id AND revoked_at IS NULL;
    RETURN NULL;
END
$$;
CREATE TRIGGER users_revoke_sessions AFTER UPDATE OF active, password_hash ON users FOR EACH ROW
    WHEN ((OLD.active AND NOT NEW.active) OR NEW.password_hash IS DISTINCT FROM OLD.password_hash)
    EXECUTE FUNCTION users_revoke_sessions();

CREATE INDEX users_created_idx ON users (created_at, id);
