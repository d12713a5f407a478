-- schema/0008_scope_target.sql - where may the caller place a record?
--
-- in_scope() answers "may the caller touch a record that sits here". When a
-- record is created or moved, its new place must also be coherent with the
-- caller's scope: with `team` scope both the team and the owner's team must
-- be the caller's team (a manager cannot hand a customer to another team's
-- rep); with `own` scope the caller must be the owner and may not file the
-- record under another team.
CREATE FUNCTION in_scope_target(scope text, uid bigint, tid bigint, owner_id bigint, team_id bigint)
RETURNS boolean LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT CASE scope
        WHEN 'all' THEN true
        WHEN 'team' THEN tid IS NOT NULL AND team_id IS NOT DISTINCT FROM tid
            AND (SELECT u.team_id FROM users u WHERE u.id = owner_id) IS NOT DISTINCT FROM tid
        WHEN 'own' THEN owner_id = uid AND (team_id IS NULL OR team_id IS NOT DISTINCT FROM tid)
        ELSE false
    END
$$;
