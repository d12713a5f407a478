-- scripts/demo.sql - deterministic demo data for `make run`, loaded by scripts/demo.sh.
--
-- Teams north, south and west; one user per role (plus managers and reps for
-- every team), all with the password "clientele-demo"; three custom fields; and, unless
-- demo_data is 0, 20,000 customers with about 20,000 contacts and 200,000
-- orders over the three years before a FIXED reference date, so every machine
-- and every run gets the same rows. All randomness comes from md5() of a salt
-- and a row number, and all arithmetic is IEEE +,-,*,/,sqrt or numeric (exp,
-- ln), never libm-dependent float8 exp/ln/pow, so the values do not depend on
-- the platform either.
--
-- Order counts are skewed on purpose: 40% of the customers with orders have
-- exactly one, the rest have at least two plus a draw from a shifted Pareto
-- over a tenure-biased ranking, so about 20% of the buyers hold about 80% of
-- the orders. Prospects and 5% of the others have none.
--
-- Companies have 1 to 4 contacts in a small org chart (reports_to_id), one of
-- them primary; four persons in ten have one contact, themselves.
--
-- Runs in one transaction and loads nothing if admin@demo.clientele exists.
-- psql variables: demo_data (1 = customers, contacts and orders too, 0 = teams and users only).
-- The triggers stay on, so the change feed and the history get one row per customer, contact
-- and order.
\set ON_ERROR_STOP on
\if :{?demo_data}
\else
\set demo_data 1
\endif
-- The reference date, the customer and order counts and the order skew.
\set demo_ref '''2026-11-01T00:00:00Z'''
\set demo_customers 20000
\set demo_orders 200000
\set demo_pareto_c 200

BEGIN;
SET LOCAL TimeZone = 'UTC';
SET LOCAL work_mem = '64MB';
-- JIT would spend seconds compiling the large expressions below, to save less.
SET LOCAL jit = off;
-- Two `make run` at once: the second waits here, then sees the first's users.
SELECT pg_advisory_xact_lock(7276534957300) AS demo_locked \gset

SELECT EXISTS (SELECT 1 FROM users WHERE email = 'admin@demo.clientele') AS demo_present \gset
\if :demo_present
\echo 'demo: demo users already present; loading nothing'
ROLLBACK;
\quit
\endif

-- Identity values are not rolled back: restart the ones of still-empty tables, so an
-- interrupted earlier load does not shift the ids of this one.
SELECT NOT EXISTS (SELECT 1 FROM teams) AS demo_no_teams,
       NOT EXISTS (SELECT 1 FROM users) AND NOT EXISTS (SELECT 1 FROM refresh_tokens) AS demo_no_users,
       NOT EXISTS (SELECT 1 FROM customers) AND NOT EXISTS (SELECT 1 FROM orders)
           AND NOT EXISTS (SELECT 1 FROM changes) AS demo_no_sales \gset
\if :demo_no_teams
ALTER TABLE teams ALTER COLUMN id RESTART;
\endif
\if :demo_no_users
ALTER TABLE users ALTER COLUMN id RESTART;
ALTER TABLE refresh_tokens ALTER COLUMN id RESTART;
\endif
\if :demo_no_sales
ALTER TABLE customers ALTER COLUMN id RESTART;
ALTER TABLE orders ALTER COLUMN id RESTART;
ALTER TABLE changes ALTER COLUMN seq RESTART;
\endif

-- u(m, k): the k-th (0..3) 32-bit slice of the md5 hex digest m as a float8 in (0, 1).
CREATE FUNCTION pg_temp.u(m text, k int) RETURNS float8 LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT ((('x' || substr(m, k * 8 + 1, 8))::bit(32)::bigint)::float8 + 0.5) / 4294967296.0
$$;
-- pick(m, k, n): an index in 0..n-1 from the same slice.
CREATE FUNCTION pg_temp.pick(m text, k int, n int) RETURNS int LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT floor(pg_temp.u(m, k) * n)::int
$$;

-- Teams and users ------------------------------------------------------------------------------------------

INSERT INTO teams (name, created_at, updated_at)
SELECT t.name, :demo_ref::timestamptz - interval '3 years', :demo_ref::timestamptz - interval '3 years'
FROM (VALUES ('north'), ('south'), ('west')) AS t(name)
ON CONFLICT (name) DO NOTHING;

-- The one password hash of "clientele-demo": argon2id, m=19456 KiB, t=2, p=1, a fixed
-- salt. DEMO CREDENTIAL: for a local run only.
INSERT INTO users (email, name, password_hash, role_id, team_id, created_at, updated_at)
SELECT v.email, v.name,
       '$argon2id$v=19$m=19456,t=2,p=1$Y2xpZW50ZWxlZGVtby12MQ$NLLsqMyVBLN5Xw7K4fVa140hSSGI6aruLHtOxWWqKWc',
       r.id, t.id, :demo_ref::timestamptz - interval '3 years', :demo_ref::timestamptz - interval '3 years'
FROM (VALUES
    (1, 'admin@demo.clientele', 'Ada Adams', 'admin', NULL),
    (2, 'director@demo.clientele', 'Dario Dietrich', 'director', NULL),
    (3, 'analyst@demo.clientele', 'Anika Albers', 'analyst', NULL),
    (4, 'integration@demo.clientele', 'ERP Integration', 'integration', NULL),
    (5, 'manager.north@demo.clientele', 'Nora Lindqvist', 'manager', 'north'),
    (6, 'manager.south@demo.clientele', 'Samuel Okafor', 'manager', 'south'),
    (7, 'manager.west@demo.clientele', 'Wendy Alvarez', 'manager', 'west'),
    (8, 'rep.north1@demo.clientele', 'Nils Berg', 'rep', 'north'),
    (9, 'rep.north2@demo.clientele', 'Nadia Kowalski', 'rep', 'north'),
    (10, 'rep.south1@demo.clientele', 'Sofia Rossi', 'rep', 'south'),
    (11, 'rep.south2@demo.clientele', 'Sebastian Meyer', 'rep', 'south'),
    (12, 'rep.west1@demo.clientele', 'William Chen', 'rep', 'west')
) AS v(ord, email, name, role, team)
JOIN roles r ON r.name = v.role
LEFT JOIN teams t ON t.name = v.team
ORDER BY v.ord
ON CONFLICT (email) DO NOTHING;

-- Custom fields (GET /v1/custom-fields): the keys of attrs a front end can show and every write
-- is checked against. The customers' lead source is the `source` the demo customers carry.
INSERT INTO custom_fields (resource, key, label, type, options, max_length, description, position)
VALUES ('customers', 'source', 'Lead source', 'enum', '{web,referral,trade_fair,partner,cold_call}', NULL,
        'Where the customer first came from.', 1),
       ('customers', 'finance_account', 'Finance account', 'text', NULL, 20,
        'The customer''s account number in the finance system.', 2),
       ('contacts', 'linkedin', 'LinkedIn profile', 'url', NULL, NULL, NULL, 1)
ON CONFLICT DO NOTHING;

\if :demo_data

-- Customers ------------------------------------------------------------------------------------------------

-- The reps who own the customers, numbered 0..n-1 by email.
CREATE TEMP TABLE demo_rep ON COMMIT DROP AS
SELECT (row_number() OVER (ORDER BY u.email) - 1)::int AS k, u.id AS user_id, u.team_id
FROM users u JOIN roles r ON r.id = u.role_id
WHERE r.name = 'rep' AND u.email::text LIKE 'rep.%@demo.clientele';
SELECT count(*) AS demo_reps FROM demo_rep \gset

-- Countries with a weight in percent (w_lo <= x < w_hi), the local legal forms,
-- three cities with a real postal code (and, in the US, state) each, and three street names.
CREATE TEMP TABLE demo_country (
    code text, dial text, currency text, w_lo int, w_hi int, number_first boolean,
    legal text[], cities text[], postcodes text[], streets text[], regions text[]
) ON COMMIT DROP;
INSERT INTO demo_country VALUES
('DE', '+49', 'EUR', 0, 28, false, '{GmbH,AG,KG}', '{Berlin,Hamburg,München}', '{10115,20095,80331}',
    '{Hauptstraße,Bahnhofstraße,Lindenallee}', NULL),
('FR', '+33', 'EUR', 28, 40, true, '{SARL,SAS,SA}', '{Paris,Lyon,Bordeaux}', '{75002,69002,33000}',
    '{"rue de la République","avenue Jean Jaurès","boulevard Victor Hugo"}', NULL),
('NL', '+31', 'EUR', 40, 49, false, '{B.V.,N.V.,B.V.}', '{Amsterdam,Rotterdam,Utrecht}',
    '{"1012 AB","3011 AD","3511 LX"}', '{Kerkstraat,Stationsweg,Dorpsstraat}', NULL),
('AT', '+43', 'EUR', 49, 55, false, '{GmbH,AG,GmbH}', '{Wien,Graz,Linz}', '{1010,8010,4020}',
    '{Hauptplatz,Ringstraße,"Mariahilfer Straße"}', NULL),
('BE', '+32', 'EUR', 55, 59, false, '{BV,SA,NV}', '{Bruxelles,Antwerpen,Gent}', '{1000,2000,9000}',
    '{"Rue Neuve",Meir,Veldstraat}', NULL),
('ES', '+34', 'EUR', 59, 66, false, '{S.L.,S.A.,S.L.}', '{Madrid,Barcelona,Valencia}', '{28013,08002,46002}',
    '{"Calle Mayor","Gran Vía","Calle de Alcalá"}', NULL),
('IT', '+39', 'EUR', 66, 73, false, '{S.r.l.,S.p.A.,S.r.l.}', '{Milano,Roma,Torino}', '{20121,00186,10121}',
    '{"Via Roma","Corso Italia","Via Garibaldi"}', NULL),
('GB', '+44', 'GBP', 73, 82, true, '{Ltd,PLC,Ltd}', '{London,Manchester,Bristol}',
    '{"EC1A 1BB","M1 1AE","BS1 4DJ"}', '{"High Street","Station Road","Church Lane"}', NULL),
('US', '+1', 'USD', 82, 92, true, '{Inc.,LLC,Corp.}', '{"New York",Chicago,Austin}', '{10001,60601,78701}',
    '{"Main Street","Oak Avenue","Market Street"}', '{NY,IL,TX}'),
('SE', '+46', 'EUR', 92, 96, false, '{AB,AB,AB}', '{Stockholm,Göteborg,Malmö}', '{"111 22","411 01","211 20"}',
    '{Storgatan,Drottninggatan,Kungsgatan}', NULL),
('PL', '+48', 'EUR', 96, 100, false, '{"Sp. z o.o.",S.A.,"Sp. z o.o."}', '{Warszawa,Kraków,Gdańsk}',
    '{00-001,31-001,80-001}', '{"ul. Marszałkowska","ul. Floriańska","ul. Długa"}', NULL);

-- Customer i is created at start + p(f) * 3 years with f = (i - 1 + jitter) / N and
-- p(f) = f (1.3 - 0.3 f): ids follow created_at, and sign-ups grow about 1.9x over the period.
INSERT INTO customers (external_id, kind, name, email, phone, address, industry, status, owner_id, team_id, tags,
                       attrs, credit_limit, created_at, updated_at)
WITH w AS (
    SELECT '{Emma,Liam,Sofia,Noah,Mia,Lukas,Olivia,Elias,Hannah,Leon,Chloe,Mateo,Lea,Jonas,Amelia,Felix,Clara,Hugo,
             Isabella,Oscar,Julia,Louis,Nora,Paul,Alice,Finn,Martina,Tom,Zofia,Jakub,Ines,Diego,Freya,Erik,Giulia,
             Marco,Charlotte,James,Grace,Adam}'::text[] AS first,
           '{Müller,Schmidt,Martin,Bernard,Jansen,Visser,Gruber,Huber,Peeters,García,Fernández,Rossi,Russo,Smith,
             Jones,Taylor,Johnson,Brown,Andersson,Nilsson,Nowak,Kowalski,Fischer,Weber,Dubois,Moreau,Bakker,Maes,
             López,Bianchi,Williams,Davies,Miller,Lindberg,Wiśniewski,Becker,Lefebvre,Romano,Evans,Wagner}'::text[]
               AS last,
           '{Northwind,"Blue Harbor",Alpine,Cedar,Silverline,Redwood,Brightstone,Oakridge,Lakeside,Summit,Ironbridge,
             Greenfield,"Harbor Point",Starling,Evergreen,Falcon,Riverbend,Granite,Meridian,Aurora,Clearwater,
             Highland,Nordic,Sunrise,Westgate,Pioneer,Maple,Copperfield,Bluebird,Keystone}'::text[] AS prefix,
           '{logistics,retail,wholesale,manufacturing,software,healthcare,hospitality,construction,food,energy}'::text[]
               AS industry,
           '{Logistics,Stores,Trading,Industries,Software,Health,Hotels,Construction,Foods,Energy}'::text[] AS sector,
           '{web,referral,trade_fair,partner,cold_call}'::text[] AS source,
           '{2500,5000,5000,10000,10000,10000,25000,25000,50000,100000,250000}'::numeric[] AS limits
), h AS MATERIALIZED ( -- materialized: else every use of m1..m6 recomputes its md5
    SELECT i, md5('demo-c1:' || i) AS m1, md5('demo-c2:' || i) AS m2, md5('demo-c3:' || i) AS m3,
           md5('demo-c4:' || i) AS m4, md5('demo-c5:' || i) AS m5, md5('demo-c6:' || i) AS m6,
           ((i - 1) + pg_temp.u(md5('demo-c0:' || i), 0)) / :demo_customers AS f
    FROM generate_series(1, :demo_customers) AS g(i)
), c AS (
    SELECT h.*,
           CASE WHEN pg_temp.u(m1, 0) < 0.7 THEN 'person' ELSE 'company' END AS kind,
           pg_temp.u(m1, 1) AS u_status,
           pg_temp.pick(m1, 2, :demo_reps) AS rep_k,
           pg_temp.pick(m1, 3, 100) AS country_w,
           w.first[1 + pg_temp.pick(m2, 0, cardinality(w.first))] AS first_name,
           w.last[1 + pg_temp.pick(m2, 1, cardinality(w.last))] AS last_name,
           w.prefix[1 + pg_temp.pick(m2, 0, cardinality(w.prefix))] AS prefix,
           1 + pg_temp.pick(m2, 1, cardinality(w.industry)) AS ind_k,
           pg_temp.pick(m2, 2, 3) AS legal_k,
           pg_temp.pick(m2, 3, 4) AS email_k,
           pg_temp.pick(m3, 0, 3) AS city_k,
           pg_temp.pick(m3, 1, 3) AS street_k,
           1 + pg_temp.pick(m3, 2, 120) AS house_no,
           pg_temp.u(m3, 3) AS u_contact,
           w.source[1 + pg_temp.pick(m4, 0, cardinality(w.source))] AS source,
           w.limits[1 + pg_temp.pick(m4, 1, cardinality(w.limits))] AS credit_limit,
           pg_temp.u(m4, 2) AS u_wholesale,
           pg_temp.u(m4, 3) AS u_ext,
           :demo_ref::timestamptz - interval '3 years'
               + floor(f * (1.3 - 0.3 * f) * extract(epoch FROM :demo_ref::timestamptz
                   - (:demo_ref::timestamptz - interval '3 years'))::float8) * interval '1 second' AS created_at
    FROM h, w
), n AS (
    SELECT c.*, k.*, r.user_id, r.team_id,
           CASE WHEN c.kind = 'person' THEN c.first_name || ' ' || c.last_name
                ELSE c.prefix || ' ' || w.sector[c.ind_k] || ' ' || k.legal[1 + c.legal_k] END AS name,
           CASE WHEN c.kind = 'company' THEN w.industry[c.ind_k] END AS industry,
           -- ASCII local parts: strip the letters with diacritics the name lists use.
           translate(lower(CASE WHEN c.kind = 'person' THEN
                         CASE c.email_k WHEN 0 THEN c.first_name || '.' || c.last_name
                                        WHEN 1 THEN left(c.first_name, 1) || '.' || c.last_name
                                        WHEN 2 THEN c.first_name || '_' || c.last_name
                                        ELSE c.last_name || '.' || c.first_name END
                                   ELSE (ARRAY['info', 'sales', 'orders', 'accounts'])[1 + c.email_k] || '.'
                                        || replace(c.prefix, ' ', '') || '-' || w.sector[c.ind_k] END),
                     'üéíóáśł', 'ueioasl') || c.i
               || CASE WHEN c.kind = 'company' OR c.i % 3 = 0 THEN '@example.org' ELSE '@example.com' END AS email
    FROM c CROSS JOIN w
    JOIN demo_country k ON c.country_w >= k.w_lo AND c.country_w < k.w_hi
    JOIN demo_rep r ON r.k = c.rep_k
)
SELECT CASE WHEN u_ext < 0.8 THEN 'ERP-C-' || lpad(i::text, 6, '0') END,
       kind, name,
       CASE WHEN u_contact < 0.96 THEN email END,
       CASE WHEN u_contact < 0.75
            THEN dial || ' ' || (100 + pg_temp.pick(m6, 0, 900)) || ' ' || lpad(pg_temp.pick(m6, 1, 10000000)::text, 7, '0')
       END,
       -- The API's address shape: line1, line2, city, region, postal_code, country.
       jsonb_strip_nulls(jsonb_build_object(
           'line1', CASE WHEN number_first THEN house_no || ' ' || streets[1 + street_k]
                         ELSE streets[1 + street_k] || ' ' || house_no END,
           'city', cities[1 + city_k], 'region', regions[1 + city_k], 'postal_code', postcodes[1 + city_k],
           'country', code)),
       industry,
       CASE WHEN u_status < 0.12 THEN 'prospect'
            WHEN u_status < 0.19 THEN 'inactive'
            WHEN u_status < 0.23 AND kind = 'company' THEN 'partner'
            ELSE 'customer' END,
       user_id, team_id,
       array_remove(ARRAY[
           CASE WHEN pg_temp.u(m5, 0) < 0.05 THEN 'vip' END,
           CASE WHEN pg_temp.u(m5, 1) < 0.4 THEN 'newsletter' END,
           CASE WHEN kind = 'company' AND pg_temp.u(m5, 2) < 0.85 THEN 'b2b' END,
           CASE WHEN (kind = 'person' AND pg_temp.u(m5, 3) < 0.6) OR industry = 'retail' THEN 'retail' END,
           CASE WHEN kind = 'company' AND (industry = 'wholesale' OR u_wholesale < 0.15) THEN 'wholesale' END
       ], NULL),
       jsonb_build_object('source', source),
       CASE WHEN kind = 'company' THEN credit_limit END,
       created_at, created_at
FROM n
ORDER BY i;

-- Orders ---------------------------------------------------------------------------------------------------

-- The demo customers numbered 1..N in id order (the hash seed), with their currency.
CREATE TEMP TABLE demo_cust ON COMMIT DROP AS
SELECT row_number() OVER (ORDER BY c.id) AS n, c.id, c.kind, c.status, c.created_at, k.currency
FROM customers c
JOIN demo_rep r ON r.user_id = c.owner_id
JOIN demo_country k ON k.code = c.address ->> 'country';

-- Buyers: all but prospects and 5% of the rest, ranked by a tenure-biased random key
-- (older customers and companies tend to rank high; rank 1 buys the most).
CREATE TEMP TABLE demo_buyer ON COMMIT DROP AS
SELECT b.id, b.kind, b.status, b.created_at, b.currency,
       extract(epoch FROM :demo_ref::timestamptz - b.created_at)::float8 AS secs,
       row_number() OVER (ORDER BY b.key DESC, b.n)::int AS rnk
FROM (
    SELECT d.n, d.id, d.kind, d.status, d.created_at, d.currency,
           pg_temp.u(md5('demo-b:' || d.n), 1)
               * (1 + extract(epoch FROM :demo_ref::timestamptz - d.created_at)::float8 / 86400)
               * CASE d.kind WHEN 'company' THEN 3 ELSE 1 END AS key
    FROM demo_cust d
    WHERE d.status <> 'prospect' AND pg_temp.u(md5('demo-b:' || d.n), 0) >= 0.05
) b;
CREATE UNIQUE INDEX ON demo_buyer (rnk);
-- b1 one-time buyers (the lowest 40% of ranks) and r repeat buyers (ranks 1..r).
SELECT count(*) * 2 / 5 AS demo_b1, count(*) - count(*) * 2 / 5 AS demo_r FROM demo_buyer \gset

-- Order slot s: s <= b1 is the one order of one-time buyer r + s; the next 2r give every
-- repeat buyer two orders; the rest go to rank floor(x) + 1 where x follows a Pareto
-- shifted by c with density ~ (x + c)^-1.5 on [0, r), drawn by inverting its CDF:
-- x = (c^-0.5 + u ((r + c)^-0.5 - c^-0.5))^-2 - c.
INSERT INTO orders (external_id, customer_id, ordered_at, status, currency, total, lines, created_at, updated_at)
WITH w AS (
    SELECT '{SKU-1001,SKU-1002,SKU-1003,SKU-1004,SKU-1005,SKU-1006,SKU-1007,SKU-1008,SKU-1009,SKU-1010,SKU-1011,
             SKU-1012,SKU-1013,SKU-1014,SKU-1015,SKU-1016,SKU-1017,SKU-1018,SKU-1019,SKU-1020}'::text[] AS sku,
           '{"Ergonomic office chair","Standing desk","USB-C docking station","27-inch monitor","Wireless keyboard",
             "Laser printer toner","Copy paper (5 reams)","Noise-cancelling headset","Coffee beans 1 kg",
             "Espresso machine","LED desk lamp","Filing cabinet","Whiteboard 120x90","Conference speakerphone",
             "Laptop backpack","Webcam HD","Cable management kit","Desk organiser","Water filter jug",
             "Annual support plan"}'::text[] AS product
), s AS MATERIALIZED ( -- materialized: else every use of m1..m4 recomputes its md5
    SELECT s, md5('demo-o1:' || s) AS m1, md5('demo-o2:' || s) AS m2, md5('demo-o3:' || s) AS m3,
           md5('demo-o4:' || s) AS m4,
           CASE WHEN s <= :demo_b1 THEN :demo_r + s
                WHEN s <= :demo_b1 + 2 * :demo_r THEN (s - :demo_b1 - 1) / 2 + 1
                ELSE least(:demo_r, 1 + floor(1.0 / (y * y) - :demo_pareto_c)::int) END AS rnk
    FROM generate_series(1, :demo_orders) AS g(s),
         LATERAL (SELECT 1.0 / sqrt(:demo_pareto_c::float8)
                         + pg_temp.u(md5('demo-o0:' || g.s), 0)
                           * (1.0 / sqrt((:demo_r + :demo_pareto_c)::float8) - 1.0 / sqrt(:demo_pareto_c::float8))
                         AS y) AS p
), o AS MATERIALIZED ( -- materialized: cents and ordered_at are used many times below
    SELECT s.*, b.id AS customer_id, b.currency,
           -- One-time buyers mostly order within 60 days of sign-up, inactive customers in the
           -- first half of their time with us, the others at any time since they signed up.
           b.created_at + floor(pg_temp.u(m1, 0)
               * CASE WHEN s.s <= :demo_b1 AND pg_temp.u(m1, 1) < 0.8 THEN least(b.secs, 60 * 86400)
                      WHEN b.status = 'inactive' THEN b.secs / 2
                      ELSE b.secs END)
               * interval '1 second' AS ordered_at,
           -- The total in cents: lognormal, from the sum of four uniforms (about a normal z), in numeric.
           least(2000000, greatest(500, round(100 * exp(
               CASE WHEN b.kind = 'company' THEN ln(350::numeric) ELSE ln(45::numeric) END
               + CASE WHEN b.kind = 'company' THEN 1.1 ELSE 0.9 END
                 * ((pg_temp.u(m2, 0) + pg_temp.u(m2, 1) + pg_temp.u(m2, 2) + pg_temp.u(m2, 3) - 2)
                    * sqrt(3::float8))::numeric(20, 12)))))::bigint AS cents
    FROM s
    JOIN demo_buyer b ON b.rnk = s.rnk
), l AS (
    SELECT o.*,
           CASE WHEN pg_temp.u(m3, 0) < 0.45 THEN 1 WHEN pg_temp.u(m3, 0) < 0.8 THEN 2 ELSE 3 END AS nlines,
           1 + pg_temp.pick(m4, 0, 20) AS p1, 1 + pg_temp.pick(m4, 1, 20) AS p2, 1 + pg_temp.pick(m4, 2, 20) AS p3,
           1 + pg_temp.pick(m3, 1, 4) AS q1,
           1 + pg_temp.pick(m3, 2, 3) AS q2,
           CASE WHEN ordered_at > :demo_ref::timestamptz - interval '10 days' AND pg_temp.u(m1, 2) < 0.5 THEN 'pending'
                WHEN pg_temp.u(m1, 3) < 0.90 THEN 'completed'
                WHEN pg_temp.u(m1, 3) < 0.96 THEN 'cancelled'
                ELSE 'refunded' END AS status
    FROM o
), a AS (
    -- Line 1: q1 x unit1 from 20-60% of the total; line 2 of 3: q2 x unit2 from 30-70% of the
    -- rest; the last line is what remains at quantity 1, so the lines sum to the total exactly.
    -- (total >= 5.00, so every unit price is at least 0.20.) Unit prices are decimal strings
    -- ("12.50"), the shape the API validates and stores.
    SELECT l.*, x.cents1 / q1 AS unit1, cents - x.cents1 / q1 * q1 AS rest1
    FROM l, LATERAL (SELECT floor(cents * (0.2 + 0.4 * pg_temp.u(m3, 3)))::bigint AS cents1) AS x
), j AS (
    SELECT a.*, floor(rest1 * (0.3 + 0.4 * pg_temp.u(m4, 3)))::bigint / q2 AS unit2
    FROM a
)
SELECT 'ERP-O-' || lpad((row_number() OVER (ORDER BY j.ordered_at, j.s))::text, 7, '0'),
       customer_id, ordered_at, status, currency, cents / 100.0,
       CASE nlines
           WHEN 1 THEN jsonb_build_array(
               jsonb_build_object('sku', w.sku[p1], 'name', w.product[p1], 'quantity', 1,
                                  'unit_price', round(cents / 100.0, 2)::text))
           WHEN 2 THEN jsonb_build_array(
               jsonb_build_object('sku', w.sku[p1], 'name', w.product[p1], 'quantity', q1,
                                  'unit_price', round(unit1 / 100.0, 2)::text),
               jsonb_build_object('sku', w.sku[p2], 'name', w.product[p2], 'quantity', 1,
                                  'unit_price', round(rest1 / 100.0, 2)::text))
           ELSE jsonb_build_array(
               jsonb_build_object('sku', w.sku[p1], 'name', w.product[p1], 'quantity', q1,
                                  'unit_price', round(unit1 / 100.0, 2)::text),
               jsonb_build_object('sku', w.sku[p2], 'name', w.product[p2], 'quantity', q2,
                                  'unit_price', round(unit2 / 100.0, 2)::text),
               jsonb_build_object('sku', w.sku[p3], 'name', w.product[p3], 'quantity', 1,
                                  'unit_price', round((rest1 - q2 * unit2) / 100.0, 2)::text))
       END,
       ordered_at,
       CASE WHEN status IN ('cancelled', 'refunded')
            THEN least(:demo_ref::timestamptz, ordered_at + floor(pg_temp.u(m1, 1) * 14 * 86400) * interval '1 second')
            ELSE ordered_at END
FROM j CROSS JOIN w
ORDER BY j.ordered_at, j.s;

-- Contacts -------------------------------------------------------------------------------------------------

-- A company has 1 to 4 contacts (25%, 30%, 25%, 20%) in an org chart: contact 1 leads the
-- company; 2 heads a department and reports to 1; 3 heads another department (reporting to 1)
-- or works in 2's (reporting to 2); 4 works under 2 or under 3. One contact per customer is
-- primary: the leader, or for three companies in ten with two or more contacts, the head of
-- department. Four persons in ten have one contact, themselves. Ids are given here (the
-- identity moves past them below), so reports_to_id can name a contact of the same statement:
-- a customer's contacts are consecutive, managers first.
INSERT INTO contacts (id, external_id, customer_id, first_name, last_name, title, department, reports_to_id, email,
                      phone, mobile, is_primary, birthday, preferred_channel, do_not_contact, notes, tags,
                      created_at, updated_at)
OVERRIDING SYSTEM VALUE
WITH w AS (
    SELECT '{Anna,Ben,Carla,Daniel,Elena,Frank,Greta,Henrik,Irene,Jonas,Katrin,Lars,Marta,Nico,Olga,Pieter,Rosa,
             Stefan,Tanja,Ulrich,Vera,Willem,Yasmin,Zoltan,Agnieszka,Bruno,Chiara,Dominik,Eleni,Fabian,Hélène,
             Ivan,Joanna,Kevin,Laura,Matthias,Nathalie,Oliver,Paula,Rafael}'::text[] AS first,
           '{Schneider,Hoffmann,Koch,Richter,Klein,Wolf,Neumann,Schwarz,Zimmermann,Krüger,de Vries,van Dijk,Janssens,
             Leroy,Girard,Fontaine,Esposito,Ricci,Marino,Greco,Martínez,Sánchez,Romero,Thompson,Walker,Wright,
             Robinson,Clarke,Johansson,Karlsson,Lewandowski,Zieliński,Wójcik,Kaminski,Hughes,Edwards,Collins,
             Berger,Lang,Vogel}'::text[] AS last,
           '{CEO,"Managing Director",Owner,"General Manager",COO}'::text[] AS leader,
           '{Purchasing,Finance,Operations,IT,Sales,Marketing,Logistics,HR}'::text[] AS dept,
           '{"Purchasing Manager","Accounts Payable Manager","Operations Manager","IT Manager","Sales Manager",
             "Marketing Manager","Logistics Coordinator","HR Manager"}'::text[] AS manager,
           '{Buyer,Accountant,"Operations Assistant","System Administrator","Sales Assistant","Marketing Specialist",
             Dispatcher,"HR Specialist"}'::text[] AS staff,
           '{"Prefers calls before 10:00.","Met at the trade fair; interested in volume pricing.",
             "Signs off purchase orders above 10,000.","Out of office on Fridays.",
             "Send invoices to the accounts mailbox, not to the contact directly.",
             "Decides with the board each quarter."}'::text[] AS notes,
           '{Logistics,Stores,Trading,Industries,Software,Health,Hotels,Construction,Foods,Energy}'::text[] AS sector
), c AS MATERIALIZED ( -- materialized: else every use of m0, m1 recomputes its md5
    SELECT d.n, c.id AS customer_id, c.kind, c.name, c.email, c.phone, c.created_at, k.dial,
           md5('demo-p0:' || d.n) AS m0, md5('demo-p1:' || d.n) AS m1
    FROM demo_cust d
    JOIN customers c ON c.id = d.id
    JOIN demo_country k ON k.code = c.address ->> 'country'
), o AS ( -- the org chart: how many contacts, whom 3 and 4 report to, the departments (0-based)
    SELECT c.*,
           CASE WHEN c.kind = 'person' THEN (pg_temp.u(m0, 0) < 0.4)::int
                ELSE 1 + (pg_temp.u(m0, 0) >= 0.25)::int + (pg_temp.u(m0, 0) >= 0.55)::int
                     + (pg_temp.u(m0, 0) >= 0.80)::int END AS ncontacts,
           1 + (pg_temp.u(m0, 1) >= 0.5)::int AS p3,
           2 + (pg_temp.u(m0, 2) >= 0.5)::int AS p4,
           pg_temp.pick(m0, 3, 8) AS d2,
           (pg_temp.pick(m0, 3, 8) + 1 + pg_temp.pick(m1, 0, 7)) % 8 AS d3_own,
           pg_temp.u(m1, 1) < 0.3 AS head_primary
    FROM c
), k AS (
    SELECT o.*, g.k,
           CASE g.k WHEN 2 THEN 1 WHEN 3 THEN p3 WHEN 4 THEN p4 END AS parent_k,
           CASE g.k WHEN 1 THEN NULL WHEN 2 THEN d2 WHEN 3 THEN CASE p3 WHEN 1 THEN d3_own ELSE d2 END
                    ELSE CASE WHEN p4 = 2 OR p3 = 2 THEN d2 ELSE d3_own END END AS di,
           CASE g.k WHEN 1 THEN 1 WHEN 2 THEN 2 WHEN 3 THEN p3 + 1 ELSE CASE p4 WHEN 2 THEN 3 ELSE p3 + 2 END END
               AS level,
           CASE WHEN o.kind = 'person' OR o.ncontacts = 1 OR NOT o.head_primary THEN g.k = 1 ELSE g.k = 2 END
               AS is_primary,
           md5('demo-p2:' || o.n || '.' || g.k) AS mc, md5('demo-p3:' || o.n || '.' || g.k) AS mc2,
           md5('demo-p4:' || o.n || '.' || g.k) AS mc3, md5('demo-p5:' || o.n || '.' || g.k) AS mc4,
           md5('demo-p6:' || o.n || '.' || g.k) AS mc5
    FROM o, LATERAL generate_series(1, o.ncontacts) AS g(k)
), p AS (
    SELECT k.*, coalesce((SELECT max(id) FROM contacts), 0) + row_number() OVER (ORDER BY k.n, k.k) AS id,
           CASE WHEN k.kind = 'person' THEN split_part(k.name, ' ', 1) ELSE w.first[1 + pg_temp.pick(mc, 0, 40)] END
               AS first_name,
           CASE WHEN k.kind = 'person' THEN substr(k.name, length(split_part(k.name, ' ', 1)) + 2)
                ELSE w.last[1 + pg_temp.pick(mc, 1, 40)] END AS last_name,
           CASE WHEN k.di IS NOT NULL THEN w.dept[1 + k.di] WHEN k.kind = 'company' THEN 'Management' END
               AS department,
           CASE WHEN k.kind = 'person' THEN NULL
                WHEN k.level = 1 THEN w.leader[1 + pg_temp.pick(mc, 2, 5)]
                WHEN k.level = 2 THEN 'Head of ' || w.dept[1 + k.di]
                WHEN k.level = 3 THEN w.manager[1 + k.di]
                ELSE w.staff[1 + k.di] END AS title,
           -- The company's domain: its name up to the sector, in ASCII, under the reserved .example.
           trim(BOTH '-' FROM regexp_replace(translate(lower(regexp_replace(k.name,
               '^(.*? (' || array_to_string(w.sector, '|') || ')) .*$', '\1')), 'üéèíóáśłäöåńż', 'ueeioaslaoanz'),
               '[^a-z0-9]+', '-', 'g')) || '.example' AS domain,
           pg_temp.u(mc2, 2) < 0.04 AS do_not_contact,
           w.notes[1 + pg_temp.pick(mc, 3, cardinality(w.notes))] AS note,
           -- The first contact comes with the customer, contact k up to (k - 1) x 120 days later.
           least(:demo_ref::timestamptz,
                 k.created_at + (k.k - 1) * floor(pg_temp.u(mc5, 3) * 120 * 86400) * interval '1 second') AS added_at
    FROM k CROSS JOIN w
)
SELECT id,
       CASE WHEN kind = 'company' AND pg_temp.u(mc3, 3) < 0.7 THEN 'ERP-P-' || lpad(id::text, 6, '0') END,
       customer_id, first_name, last_name, title, department,
       CASE WHEN parent_k IS NOT NULL THEN id - (k - parent_k) END,
       CASE WHEN kind = 'person' THEN email
            WHEN pg_temp.u(mc2, 0) < 0.92 THEN
                translate(lower(CASE pg_temp.pick(mc3, 0, 4) WHEN 0 THEN left(first_name, 1) || '.' || last_name
                                                             WHEN 1 THEN first_name
                                                             ELSE first_name || '.' || last_name END),
                          'üéèíóáśłäöåńż ', 'ueeioaslaoanz') || '@' || domain END,
       CASE WHEN kind = 'person' THEN phone
            WHEN pg_temp.u(mc2, 1) < 0.75
            THEN dial || ' ' || (100 + pg_temp.pick(mc3, 1, 900)) || ' '
                 || lpad(pg_temp.pick(mc3, 2, 10000000)::text, 7, '0')
       END,
       CASE WHEN pg_temp.u(mc2, 3) < 0.5
            THEN dial || ' ' || (150 + pg_temp.pick(mc5, 1, 30)) || ' '
                 || lpad(pg_temp.pick(mc5, 2, 100000000)::text, 8, '0')
       END,
       is_primary,
       CASE WHEN pg_temp.u(mc4, 0) < 0.55 THEN DATE '1958-01-01' + pg_temp.pick(mc4, 1, 15000) END,
       -- No preference for 40%, else email, phone, sms and mail 3:2:1:1.
       CASE WHEN do_not_contact THEN 'none'
            WHEN pg_temp.u(mc4, 2) < 0.40 THEN NULL
            ELSE (ARRAY['email', 'email', 'email', 'phone', 'phone', 'sms', 'mail'])
                     [1 + floor((pg_temp.u(mc4, 2) - 0.4) / 0.6 * 7)::int] END,
       do_not_contact,
       CASE WHEN pg_temp.u(mc4, 3) < 0.12 THEN note END,
       array_remove(ARRAY[
           CASE WHEN kind = 'company' AND (level = 1 OR is_primary) THEN 'decision_maker' END,
           CASE WHEN department = 'Finance' THEN 'billing' END,
           CASE WHEN department = 'IT' THEN 'technical' END,
           CASE WHEN NOT do_not_contact AND pg_temp.u(mc5, 0) < 0.3 THEN 'newsletter' END
       ], NULL),
       added_at, added_at
FROM p
ORDER BY id;
SELECT setval(pg_get_serial_sequence('contacts', 'id'), max(id)) AS demo_contacts_last FROM contacts \gset

-- Duplicates -----------------------------------------------------------------------------------------------

-- Records entered twice, as every CRM has them, for GET /v1/customers/{id}/duplicates and
-- POST /v1/customers/{id}/merge (and the same for contacts), each by another rep than the
-- original's owner (rep k + 1), so who sees which pair depends on the caller's scope:
--   trade fair  the first German company with a phone, entered again without its legal form
--               and with its number written 0049 ...: same phone, same name in the same city;
--   legal form  the first British company, again as "... Limited" with its e-mail in capitals:
--               same e-mail, same name;
--   typo        the first French person with an e-mail, again with a misspelt last name and
--               the e-mail with spaces and capitals (an import): same e-mail, similar name;
--   Shanghai    a Chinese company entered from its business card and from an order, with its
--               number in national and international form (the default phone region is CN),
--               each with one contact whose mobile is written both ways; the second has an order.
-- The British company's primary contact is entered a second time too.
CREATE TEMP TABLE demo_dup ON COMMIT DROP AS
SELECT x.how, x.id, (SELECT r2.user_id FROM demo_rep r1 JOIN demo_rep r2 ON r2.k = (r1.k + 1) % :demo_reps
                     WHERE r1.user_id = x.owner_id) AS other_rep
FROM ((SELECT 'trade_fair' AS how, c.id, c.owner_id FROM customers c
       WHERE c.kind = 'company' AND c.phone IS NOT NULL AND c.address ->> 'country' = 'DE' ORDER BY c.id LIMIT 1)
      UNION ALL
      (SELECT 'legal_form', c.id, c.owner_id FROM customers c
       WHERE c.kind = 'company' AND c.email IS NOT NULL AND c.address ->> 'country' = 'GB'
         AND EXISTS (SELECT 1 FROM contacts k WHERE k.customer_id = c.id AND k.is_primary) ORDER BY c.id LIMIT 1)
      UNION ALL
      (SELECT 'typo', c.id, c.owner_id FROM customers c
       WHERE c.kind = 'person' AND c.email IS NOT NULL AND c.address ->> 'country' = 'FR' ORDER BY c.id LIMIT 1)) x;
INSERT INTO customers (kind, name, email, phone, address, industry, status, owner_id, team_id, tags, attrs,
                       created_at, updated_at)
SELECT c.kind,
       CASE d.how WHEN 'trade_fair' THEN regexp_replace(c.name, ' (GmbH|AG|KG)$', '')
                  WHEN 'legal_form' THEN regexp_replace(c.name, ' (Ltd|PLC)$', ' Limited')
                  ELSE regexp_replace(c.name, '(.)$', '\1\1') END,
       CASE d.how WHEN 'legal_form' THEN upper(c.email::text) WHEN 'typo' THEN '  ' || initcap(c.email::text) || ' ' END,
       CASE d.how WHEN 'trade_fair' THEN regexp_replace(c.phone, '^\+(\d+) ', '00\1 (0)') END,
       c.address, c.industry, 'prospect', u.id, u.team_id,
       CASE d.how WHEN 'trade_fair' THEN '{trade_fair}'::text[] ELSE '{}' END, '{"source": "import"}',
       :demo_ref::timestamptz - interval '20 days', :demo_ref::timestamptz - interval '20 days'
FROM demo_dup d JOIN customers c ON c.id = d.id JOIN users u ON u.id = d.other_rep
ORDER BY d.id;
INSERT INTO contacts (customer_id, first_name, last_name, title, department, email, phone, is_primary, tags,
                      created_at, updated_at)
SELECT k.customer_id, left(k.first_name, 1) || '.', k.last_name, k.title, k.department, upper(k.email::text),
       k.phone, false, '{}', :demo_ref::timestamptz - interval '20 days', :demo_ref::timestamptz - interval '20 days'
FROM demo_dup d JOIN contacts k ON k.customer_id = d.id AND k.is_primary
WHERE d.how = 'legal_form';
WITH shanghai AS (
    INSERT INTO customers (external_id, kind, name, email, phone, address, industry, status, owner_id, team_id, tags,
                           attrs, created_at, updated_at)
    SELECT v.ext, 'company', v.name, v.email, v.phone,
           '{"line1": "延安西路 2299号", "city": "Shanghai", "postal_code": "200336", "country": "CN"}',
           'wholesale', v.status, r.user_id, r.team_id, '{b2b}', jsonb_build_object('source', v.source),
           :demo_ref::timestamptz - v.age, :demo_ref::timestamptz - v.age
    FROM (VALUES (0, 'ERP-C-CN0001', '上海华鑫贸易有限公司', 'sales@huaxin-trading.cn', '021-6123 4567', 'customer',
                  'trade_fair', interval '400 days'),
                 (1, NULL, '上海华鑫贸易股份有限公司', NULL, '+86 21 6123 4567', 'prospect', 'web', interval '12 days'))
         AS v(k, ext, name, email, phone, status, source, age)
    JOIN demo_rep r ON r.k = v.k
    RETURNING id, name, created_at
), people AS (
    INSERT INTO contacts (customer_id, first_name, last_name, title, department, email, mobile, is_primary, tags,
                          created_at, updated_at)
    SELECT s.id, '伟', '张', '采购经理', 'Purchasing',
           CASE WHEN s.name = '上海华鑫贸易有限公司' THEN 'zhang.wei@huaxin-trading.cn' END,
           CASE WHEN s.name = '上海华鑫贸易有限公司' THEN '138 0013 8000' ELSE '+86 138-0013-8000' END,
           true, '{decision_maker}', s.created_at, s.created_at
    FROM shanghai s
    RETURNING id
)
INSERT INTO orders (external_id, customer_id, ordered_at, status, currency, total, lines, created_at, updated_at)
SELECT 'ERP-O-CN0001', s.id, s.created_at + interval '2 days', 'completed', 'CNY', '12800.00',
       '[{"sku": "TEA-500", "name": "龙井茶 500 g", "quantity": 40, "unit_price": "320.00"}]',
       s.created_at + interval '2 days', s.created_at + interval '2 days'
FROM shanghai s WHERE s.name = '上海华鑫贸易股份有限公司';

ANALYZE customers;
ANALYZE orders;
ANALYZE contacts;
ANALYZE changes;
\endif

COMMIT;
