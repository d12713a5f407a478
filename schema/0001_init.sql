-- schema/0001_init.sql - the baseline: extensions and a helper every table uses.
CREATE EXTENSION IF NOT EXISTS citext;

-- Keeps updated_at and version honest on every UPDATE, whoever runs it.
CREATE OR REPLACE FUNCTION touch_row() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();
    NEW.version := OLD.version + 1;
    RETURN NEW;
END
$$;
