-- schema/0002_identity.sql - teams, roles with per-module scopes, users, refresh tokens.

CREATE TABLE teams (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        text NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 100),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    version     integer NOT NULL DEFAULT 1
);
CREATE TRIGGER teams_touch BEFORE UPDATE ON teams FOR EACH ROW EXECUTE FUNCTION touch_row();

-- permissions: {"<module>": {"read": scope, "create": scope, "update": scope, "delete": scope}, ...}
-- with scope one of none, own, team, all. A module or action that is absent means none.
CREATE TABLE roles (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        text NOT NULL UNIQUE CHECK (name ~ '^[a-z][a-z0-9_]{0,31}$'),
    description text NOT NULL DEFAULT '',
    permissions jsonb NOT NULL CHECK (jsonb_typeof(permissions) = 'object'),
    builtin     boolean NOT NULL DEFAULT false,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    version     integer NOT NULL DEFAULT 1
);
CREATE TRIGGER roles_touch BEFORE UPDATE ON roles FOR EACH ROW EXECUTE FUNCTION touch_row();

CREATE TABLE users (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email         citext NOT NULL UNIQUE CHECK (length(email) BETWEEN 3 AND 254),
    name          text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    password_hash text NOT NULL,
    role_id       bigint NOT NULL REFERENCES roles (id),
    team_id       bigint REFERENCES teams (id),
    active        boolean NOT NULL DEFAULT true,
    -- Bumped to cut off every access token issued before (deactivation, password change).
    token_version integer NOT NULL DEFAULT 1,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    version       integer NOT NULL DEFAULT 1
);
CREATE INDEX users_team_idx ON users (team_id);
CREATE INDEX users_role_idx ON users (role_id);
CREATE TRIGGER users_touch BEFORE UPDATE ON users FOR EACH ROW EXECUTE FUNCTION touch_row();

-- Refresh tokens are stored only as SHA-256 hashes. Each login starts a family;
-- every refresh rotates to a new token of the same family, and presenting an
-- already-used token revokes the whole family (it was stolen or replayed).
CREATE TABLE refresh_tokens (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    token_hash  bytea NOT NULL UNIQUE,
    family      uuid NOT NULL,
    user_id     bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz,
    revoked_at  timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX refresh_tokens_family_idx ON refresh_tokens (family);
CREATE INDEX refresh_tokens_user_idx ON refresh_tokens (user_id);

-- The one definition of a record scope: is a record owned by owner_id in team
-- team_id inside `scope` for the caller (uid, tid)? Inlined by the planner.
CREATE FUNCTION in_scope(scope text, uid bigint, tid bigint, owner_id bigint, team_id bigint)
RETURNS boolean LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE scope
        WHEN 'all' THEN true
        WHEN 'team' THEN team_id IS NOT NULL AND team_id = tid
        WHEN 'own' THEN owner_id = uid
        ELSE false
    END
$$;

INSERT INTO roles (name, description, builtin, permissions) VALUES
('admin', 'Everything, including user administration.', true, '{
  "customers": {"read": "all", "create": "all", "update": "all", "delete": "all"},
  "orders":    {"read": "all", "create": "all", "update": "all", "delete": "all"},
  "analytics": {"read": "all", "create": "all", "update": "all", "delete": "all"},
  "users":     {"read": "all", "create": "all", "update": "all", "delete": "all"},
  "teams":     {"read": "all", "create": "all", "update": "all", "delete": "all"},
  "roles":     {"read": "all", "create": "all", "update": "all", "delete": "all"}}'),
('director', 'All sales data; reads users and teams.', true, '{
  "customers": {"read": "all", "create": "all", "update": "all", "delete": "all"},
  "orders":    {"read": "all", "create": "all", "update": "all", "delete": "all"},
  "analytics": {"read": "all", "create": "all", "update": "all", "delete": "all"},
  "users":     {"read": "all"},
  "teams":     {"read": "all"}}'),
('manager', 'Sales data of their team.', true, '{
  "customers": {"read": "team", "create": "team", "update": "team", "delete": "team"},
  "orders":    {"read": "team", "create": "team", "update": "team", "delete": "team"},
  "analytics": {"read": "team"},
  "users":     {"read": "team"},
  "teams":     {"read": "all"}}'),
('rep', 'Their own customers and orders.', true, '{
  "customers": {"read": "own", "create": "own", "update": "own", "delete": "own"},
  "orders":    {"read": "own", "create": "own", "update": "own", "delete": "own"},
  "analytics": {"read": "own"},
  "teams":     {"read": "all"}}'),
('analyst', 'Reads all sales data and runs analytics; writes no customers.', true, '{
  "customers": {"read": "all"},
  "orders":    {"read": "all"},
  "analytics": {"read": "all", "create": "all", "update": "all", "delete": "all"},
  "teams":     {"read": "all"}}'),
('integration', 'Service account for ERP and finance sync: customers and orders.', true, '{
  "customers": {"read": "all", "create": "all", "update": "all", "delete": "all"},
  "orders":    {"read": "all", "create": "all", "update": "all", "delete": "all"},
  "teams":     {"read": "all"}}');
