-- schema/0017_attachments.sql - files attached to records of any engine resource.
--
-- The bytes live outside PostgreSQL, in the API's file store (CLIENTELE_STORAGE_DIR),
-- under their SHA-256; a row here names a record (entity = the resource's name, such as
-- 'customers', and its id), the file's name and media type as uploaded, its size and hash,
-- and who uploaded it. An attachment has its record's scope: the API's statements join
-- the record (api/attachments_db.c), so an attachment of a deleted record, or of one
-- outside the caller's scope, is never shown. Deleting an attachment is a soft delete of
-- its row; the stored bytes stay, since other attachments may have the same content.
CREATE TABLE attachments (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    entity      text NOT NULL CHECK (entity ~ '^[a-z][a-z0-9_]{0,47}$'),
    entity_id   bigint NOT NULL,
    filename    text NOT NULL CHECK (octet_length(filename) BETWEEN 1 AND 255
                                     AND filename !~ '[/\\[:cntrl:]]' AND filename NOT IN ('.', '..')),
    media_type  text NOT NULL CHECK (octet_length(media_type) BETWEEN 3 AND 255),
    size        bigint NOT NULL CHECK (size > 0),
    sha256      text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    uploaded_by bigint REFERENCES users (id),
    created_at  timestamptz NOT NULL DEFAULT now(),
    deleted_at  timestamptz
);
-- A record's attachments, newest first.
CREATE INDEX attachments_entity_idx ON attachments (entity, entity_id, id) WHERE deleted_at IS NULL;
-- Whether any live attachment still names a blob (for a sweep of the store).
CREATE INDEX attachments_sha256_idx ON attachments (sha256) WHERE deleted_at IS NULL;
-- The API's role (0016) reads, inserts and marks attachments deleted; it never removes a row.
REVOKE DELETE, TRUNCATE ON attachments FROM clientele_api;
