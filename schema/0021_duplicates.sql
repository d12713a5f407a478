-- schema/0021_duplicates.sql - duplicates of customers and contacts, and merging them.
--
-- Duplicates (GET /v1/customers/{id}/duplicates, /v1/contacts/{id}/duplicates) are the
-- records with the same e-mail (lower-cased and trimmed), the same phone number, or a
-- similar name (pg_trgm similarity above 0.6) in the same group: for customers the same
-- city, for contacts the same customer (api/customers.c, api/contacts.c). Every one of
-- these comparisons is an index probe, so a lookup stays fast at millions of records.
--
-- Phone numbers are matched as E.164 in the API's default region (CLIENTELE_PHONE_REGION),
-- which the database does not know: it indexes a key of each stored number that no region
-- changes (phone_key below), and the API, which normalises the record's own number
-- (common/phone.c), probes the index with the keys of every way of writing that number
-- (phone_keys()). Changing the region therefore needs no reindexing.
--
-- A merge (POST /v1/customers/{id}/merge) soft-deletes the merged records with
-- merged_into naming the record that absorbed them: reading one answers 404 with
-- merged_into, and its tombstone in the change feed carries it.

CREATE EXTENSION IF NOT EXISTS pg_trgm;

ALTER TABLE customers ADD COLUMN merged_into bigint REFERENCES customers (id),
    ADD CONSTRAINT customers_merged_is_deleted CHECK (merged_into IS NULL OR deleted_at IS NOT NULL);
ALTER TABLE contacts ADD COLUMN merged_into bigint REFERENCES contacts (id),
    ADD CONSTRAINT contacts_merged_is_deleted CHECK (merged_into IS NULL OR deleted_at IS NOT NULL);

-- The key of a stored phone number, exactly as common/phone.c's phone_key() computes it:
-- full-width digits, plus and parentheses made ASCII, the extension ("x", "ext", "#", ','
-- or ';' and what follows) cut off, then '+' and the digits when the number starts with
-- '+' (every "(0)" removed: "+44 (0)20 ..."), else the digits alone; at most 23 characters.
CREATE FUNCTION phone_key(p text) RETURNS text LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
    n text := regexp_replace(translate(p, '＋０１２３４５６７８９（）', '+0123456789()'), '([xX#,;]|[eE][xX]).*$', '');
BEGIN
    IF ltrim(n) LIKE '+%' THEN
        RETURN left('+' || regexp_replace(replace(n, '(0)', ''), '[^0-9]', '', 'g'), 23);
    END IF;
    RETURN left(regexp_replace(n, '[^0-9]', '', 'g'), 23);
END
$$;

-- A company's name as names are compared: lower case, without its legal form ("Co., Ltd.",
-- "Inc.", "GmbH", "有限公司", "股份有限公司", "集团" ...) and punctuation, so that "Huaxin
-- Trading Co., Ltd." and "Huaxin Trading Company" are one name, and the words every company
-- has neither make names look alike nor make the trigram index read half the table.
CREATE FUNCTION name_key(n text) RETURNS text LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT btrim(regexp_replace(regexp_replace(lower(n),
        '(股份|集团)?有限(责任)?公司|集团|\m(co|ltd|llc|inc|corp|corporation|company|group|holdings|limited'
        '|international|gmbh|ag|kg|sa|sarl|plc|llp|bv|srl|spa|pte|pty)\M\.?', ' ', 'g'), '[[:space:][:punct:]]+', ' ', 'g'))
$$;

-- The comparisons of api/merge_db.c, each on an expression of the live rows. Names of
-- customers are compared within a city: one GIN index holds both (btree_gin), so a lookup
-- reads the trigrams of one city's names, never every name. Names of contacts are compared
-- only among a customer's contacts (contacts_customer_idx).
CREATE EXTENSION IF NOT EXISTS btree_gin;
CREATE INDEX customers_email_key_idx ON customers (lower(btrim(email::text))) WHERE deleted_at IS NULL;
CREATE INDEX customers_phone_key_idx ON customers (phone_key(phone)) WHERE deleted_at IS NULL;
CREATE INDEX customers_city_name_idx ON customers
    USING gin (lower(btrim(address ->> 'city')), name_key(name) gin_trgm_ops) WHERE deleted_at IS NULL;
CREATE INDEX contacts_email_key_idx ON contacts (lower(btrim(email::text))) WHERE deleted_at IS NULL;
CREATE INDEX contacts_phone_key_idx ON contacts (phone_key(phone)) WHERE deleted_at IS NULL;
CREATE INDEX contacts_mobile_key_idx ON contacts (phone_key(mobile)) WHERE deleted_at IS NULL;
