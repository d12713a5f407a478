-- schema/0005_auth.sql - refresh token rotation as one atomic step.
--
-- Returns one row: outcome is 'ok' (the presented token is now used and
-- new_hash is its successor in the same family), or 'unknown', 'expired',
-- 'revoked', 'inactive', or 'reused' (an already-used token came back: the
-- whole family is revoked, since one of the two holders is not the user).
CREATE FUNCTION refresh_rotate(presented bytea, new_hash bytea, ttl interval,
                               OUT outcome text, OUT user_id bigint, OUT role text, OUT team_id bigint,
                               OUT token_version integer)
LANGUAGE plpgsql AS $$
DECLARE
    t refresh_tokens;
    u record;
BEGIN
    SELECT * INTO t FROM refresh_tokens WHERE token_hash = presented FOR UPDATE;
    IF NOT FOUND THEN
        outcome := 'unknown';
        RETURN;
    END IF;
    IF t.revoked_at IS NOT NULL THEN
        outcome := 'revoked';
        RETURN;
    END IF;
    IF t.used_at IS NOT NULL THEN
        UPDATE refresh_tokens SET revoked_at = now() WHERE family = t.family AND revoked_at IS NULL;
        outcome := 'reused';
        RETURN;
    END IF;
    IF t.expires_at <= now() THEN
        outcome := 'expired';
        RETURN;
    END IF;
    SELECT us.id, r.name AS role, us.team_id, us.token_version, us.active INTO u
    FROM users us JOIN roles r ON r.id = us.role_id WHERE us.id = t.user_id;
    IF NOT u.active THEN
        UPDATE refresh_tokens SET revoked_at = now() WHERE family = t.family AND revoked_at IS NULL;
        outcome := 'inactive';
        RETURN;
    END IF;
    UPDATE refresh_tokens SET used_at = now() WHERE id = t.id;
    INSERT INTO refresh_tokens (token_hash, family, user_id, expires_at)
    VALUES (new_hash, t.family, t.user_id, now() + ttl);
    outcome := 'ok';
    user_id := u.id;
    role := u.role;
    team_id := u.team_id;
    token_version := u.token_version;
END
$$;
