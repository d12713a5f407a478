-- schema/0012_scope_moves.sql - a write never takes a record out of a scope that covers it.
--
-- 0008's in_scope_target() let a caller with `own` scope file a record under no team
-- (team_id null): a rep could hide their customer, and its orders, from their manager.
-- A record's place must now be coherent with the caller's own place, team included:
-- with `own` scope the owner is the caller and the team is the caller's team (none only
-- for a caller without a team).
CREATE OR REPLACE FUNCTION in_scope_target(scope text, uid bigint, tid bigint, owner_id bigint, team_id bigint)
RETURNS boolean LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT CASE scope
        WHEN 'all' THEN true
        WHEN 'team' THEN tid IS NOT NULL AND team_id IS NOT DISTINCT FROM tid
            AND (SELECT u.team_id FROM users u WHERE u.id = owner_id) IS NOT DISTINCT FROM tid
        WHEN 'own' THEN owner_id = uid AND team_id IS NOT DISTINCT FROM tid
        ELSE false
    END
$$;

-- May a move from team old_team to team new_team leave the team scope that covered the
-- record? Only a caller whose scope is `all` may take a record out of a team; anyone may
-- file a record that had no team under one (subject to in_scope_target). With `team`
-- scope the old team is the caller's own and in_scope_target keeps the record in it.
CREATE FUNCTION scope_keeps_team(scope text, old_team bigint, new_team bigint)
RETURNS boolean LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT scope = 'all' OR old_team IS NULL OR new_team IS NOT DISTINCT FROM old_team
$$;

-- A move of a record from (old_owner, old_team) to (owner_id, team_id) by a caller whose
-- scope for the action is `scope`: the new place must be one the caller may file records
-- at, and no team may lose the record unless the caller sees everything.
CREATE FUNCTION scope_move_ok(scope text, uid bigint, tid bigint, old_team bigint, owner_id bigint, team_id bigint)
RETURNS boolean LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT in_scope_target(scope, uid, tid, owner_id, team_id) AND scope_keeps_team(scope, old_team, team_id)
$$;
