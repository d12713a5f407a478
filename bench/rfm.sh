#!/usr/bin/env bash
# bench/rfm.sh - one RFM run of the worker against a bare COPY and a SQL-only implementation, in one run.
#
# Builds the release binaries, starts a private stack under .bench-rfm/ and loads, once (the data is
# kept there), CUSTOMERS customers and ORDERS orders generated deterministically with generate_series
# (mixed statuses, a few soft-deleted orders, orders after as_of, many ties). Then it measures:
#   1. copy:   a binary COPY of the qualifying orders' customer_id, ordered_at, total to /dev/null
#              through psql's \copy (the data crosses the socket to a client, as for the worker);
#   2. worker: RUNS runs of clientele-worker, each from the INSERT of the run and its outbox row (what
#              POST /v1/analytics/runs does) to status 'succeeded', and the worker's peak RSS (VmHWM);
#              the first run starts from an empty customer_analytics, later ones replace a full one;
#   3. sql:    the same definitions in one SQL statement (aggregate, rank with window functions,
#              upsert into a scratch copy of customer_analytics), in one transaction;
# and prints the times and the ratios worker/copy and worker/sql. The issue's targets: worker at most
# 2 x copy, peak RSS at most 64 bytes per customer + 50 MB.
set -euo pipefail
cd "$(dirname "$0")/.."

CUSTOMERS=${CUSTOMERS:-1000000}
ORDERS=${ORDERS:-10000000}
RUNS=${RUNS:-2}
AS_OF=${AS_OF:-2026-06-30T00:00:00Z}
BUILD=${BUILD:-build}
export STACK_DIR=${STACK_DIR:-.bench-rfm} STACK_PG_PORT=${STACK_PG_PORT:-55652} STACK_REDIS_PORT=${STACK_REDIS_PORT:-56599}

scripts/deps.sh
make -s -j"$(nproc)" BUILD="$BUILD" "$BUILD/clientele-api" "$BUILD/clientele-worker"
scripts/stack.sh start
WORKER_PID=
trap 'if [ -n "$WORKER_PID" ]; then kill "$WORKER_PID" 2>/dev/null || true; wait "$WORKER_PID" 2>/dev/null || true; fi; scripts/stack.sh stop' EXIT

export CLIENTELE_DATABASE_URL="postgresql://clientele@127.0.0.1:$STACK_PG_PORT/clientele"
export CLIENTELE_REDIS_URL="redis://127.0.0.1:$STACK_REDIS_PORT/0"
"$BUILD/clientele-api" migrate >/dev/null 2>&1
PSQL=(psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$STACK_PG_PORT" -U clientele -d clientele)

ms() { date +%s%3N; }

have_c=$("${PSQL[@]}" -tAc "SELECT count(*) FROM customers")
have_o=$("${PSQL[@]}" -tAc "SELECT count(*) FROM orders")
if [ "$have_c" != "$CUSTOMERS" ] || [ "$have_o" != "$ORDERS" ]; then
    echo "bench: loading $CUSTOMERS customers and $ORDERS orders (once; kept in $STACK_DIR)"
    "${PSQL[@]}" <<SQL
SET session_replication_role = replica; -- no change-feed rows for the load
TRUNCATE customer_analytics, customer_analytics_history, analytics_runs, outbox, orders, customers RESTART IDENTITY CASCADE;
INSERT INTO users (email, name, password_hash, role_id)
SELECT 'bench.owner@bench.invalid', 'Owner', 'x', (SELECT id FROM roles WHERE name = 'admin')
ON CONFLICT DO NOTHING;
INSERT INTO customers (kind, name, status, owner_id, tags)
SELECT 'person', 'Customer ' || i, 'customer', (SELECT id FROM users WHERE email = 'bench.owner@bench.invalid'),
       CASE WHEN i % 10 = 0 THEN ARRAY['bench', 'vip'] ELSE ARRAY['bench'] END
FROM generate_series(1, $CUSTOMERS) i;
-- Every 20th customer is soft-deleted; customers above 95% of the range have no orders.
UPDATE customers SET deleted_at = '2026-01-01' WHERE id % 20 = 7;
INSERT INTO orders (customer_id, ordered_at, status, currency, total, deleted_at)
SELECT 1 + (i::bigint * 7919) % ($CUSTOMERS * 95 / 100),
       '$AS_OF'::timestamptz - ((i::bigint * 104729) % (3 * 365 * 86400) - 86400 * 30) * interval '1 second',
       (ARRAY['completed', 'completed', 'completed', 'completed', 'completed', 'completed', 'completed',
              'completed', 'pending', 'cancelled', 'refunded'])[1 + i % 11],
       'EUR', ((i::bigint * 31) % 2000) * 2.5 + 0.99,
       CASE WHEN i % 997 = 0 THEN timestamptz '2026-01-01' END
FROM generate_series(1, $ORDERS) i;
VACUUM ANALYZE customers;
VACUUM ANALYZE orders;
SQL
fi

# Every measurement starts from the same state: no runs, no results.
"${PSQL[@]}" -c "TRUNCATE customer_analytics, customer_analytics_history, analytics_runs, outbox RESTART IDENTITY CASCADE"
"${PSQL[@]}" -c "CHECKPOINT"

# The statements the worker's COPY would run, with the same filter.
QUALIFYING="SELECT customer_id, ordered_at, total FROM orders WHERE status = 'completed' AND deleted_at IS NULL AND ordered_at <= '$AS_OF'::timestamptz"
PARAMS="{\"as_of\": \"$AS_OF\", \"lookback_days\": null, \"tag\": null, \"new_days\": 30, \"active_days\": 90, \"churn_days\": 180, \"a_share\": \"0.80\", \"b_share\": \"0.95\"}"

# Warm the cache the same way for everyone.
"${PSQL[@]}" -c "\\copy ($QUALIFYING) TO '/dev/null' (FORMAT binary)"

# 1. the bare COPY
t0=$(ms)
"${PSQL[@]}" -c "\\copy ($QUALIFYING) TO '/dev/null' (FORMAT binary)"
copy_ms=$(($(ms) - t0))
qualifying=$("${PSQL[@]}" -tAc "SELECT count(*) FROM ($QUALIFYING) q")

# 2. the worker
redis-cli -h 127.0.0.1 -p "$STACK_REDIS_PORT" -n 0 DEL clientele:runs >/dev/null
CLIENTELE_WORKER_NAME=bench-rfm CLIENTELE_LOG_LEVEL=info "$BUILD/clientele-worker" 2>"$STACK_DIR/worker.log" &
WORKER_PID=$!
for _ in $(seq 1 100); do grep -q '"consuming clientele:runs' "$STACK_DIR/worker.log" && break; sleep 0.1; done
worker_ms=()
for run in $(seq 1 "$RUNS"); do
    t0=$(ms)
    id=$("${PSQL[@]}" -tAc "WITH r AS (INSERT INTO analytics_runs (kind, params) VALUES ('rfm', '$PARAMS'::jsonb) RETURNING id),
        o AS (INSERT INTO outbox (topic, payload) SELECT 'runs', json_build_object('run_id', id) FROM r) SELECT id FROM r")
    # One session waits on the server (a fresh snapshot every 10 ms): starting psql every few
    # milliseconds instead would take a good part of a core away from the worker being measured.
    "${PSQL[@]}" -c "DO \$\$ BEGIN
        WHILE (SELECT status FROM analytics_runs WHERE id = $id) NOT IN ('succeeded', 'failed', 'cancelled') LOOP
            PERFORM pg_sleep(0.01);
        END LOOP; END \$\$"
    worker_ms+=($(($(ms) - t0)))
    st=$("${PSQL[@]}" -tAc "SELECT status FROM analytics_runs WHERE id = $id")
    if [ "$st" != succeeded ]; then
        echo "bench: run $id $st: $("${PSQL[@]}" -tAc "SELECT error FROM analytics_runs WHERE id = $id")" >&2
        exit 1
    fi
    echo "bench: worker run $run: ${worker_ms[-1]} ms; stats $("${PSQL[@]}" -tAc "SELECT stats FROM analytics_runs WHERE id = $id")"
done
hwm_kb=$(awk '/VmHWM/ {print $2}' "/proc/$WORKER_PID/status")
kill -TERM "$WORKER_PID"
wait "$WORKER_PID" || { echo "bench: the worker did not exit 0" >&2; exit 1; }
WORKER_PID=
last_id=$id

# 3. SQL only: the same definitions, upserted into a scratch copy of customer_analytics.
"${PSQL[@]}" <<'SQL'
DROP TABLE IF EXISTS bench_customer_analytics;
CREATE TABLE bench_customer_analytics (LIKE customer_analytics INCLUDING ALL);
SQL
sql_ms=()
for run in 1 2; do
    t0=$(ms)
    "${PSQL[@]}" <<SQL
BEGIN ISOLATION LEVEL REPEATABLE READ;
WITH p AS (SELECT timestamptz '$AS_OF' AS as_of, floor(extract(epoch FROM timestamptz '$AS_OF'))::bigint AS as_s,
                  30 AS new_days, 90 AS active_days, 180 AS churn_days, 0.80 AS a_share, 0.95 AS b_share),
pop AS (SELECT id FROM customers WHERE deleted_at IS NULL),
agg AS (
    SELECT o.customer_id, floor(extract(epoch FROM min(o.ordered_at)))::bigint AS first_s,
           floor(extract(epoch FROM max(o.ordered_at)))::bigint AS last_s, count(*) AS freq, sum(o.total) AS monetary
    FROM orders o JOIN pop ON pop.id = o.customer_id, p
    WHERE o.status = 'completed' AND o.deleted_at IS NULL AND o.ordered_at <= p.as_of
    GROUP BY o.customer_id),
ranked AS (
    SELECT a.*, count(*) OVER () AS n,
           rank() OVER (ORDER BY last_s) - 1 AS wr, rank() OVER (ORDER BY freq) - 1 AS wf,
           rank() OVER (ORDER BY monetary) - 1 AS wm,
           coalesce(sum(monetary) OVER (ORDER BY monetary DESC, customer_id ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS before,
           sum(monetary) OVER () AS s
    FROM agg a),
scored AS (
    SELECT r.customer_id, r.freq, r.monetary, floor((p.as_s - r.last_s) / 86400.0)::int AS recency,
           floor((p.as_s - r.first_s) / 86400.0)::int AS age,
           1 + 5 * r.wr / r.n AS rs, 1 + 5 * r.wf / r.n AS fs, 1 + 5 * r.wm / r.n AS ms,
           CASE WHEN r.before < p.a_share * r.s THEN 'A' WHEN r.before < p.b_share * r.s THEN 'B' ELSE 'C' END AS tier
    FROM ranked r, p)
INSERT INTO bench_customer_analytics (customer_id, run_id, computed_at, recency_days, frequency, monetary, r, f, m,
                                      segment, lifecycle, tier)
SELECT pop.id, 0, now(), s.recency, s.freq, s.monetary, s.rs, s.fs, s.ms,
       CASE WHEN s.customer_id IS NULL THEN 'prospect'
            WHEN s.rs = 5 THEN CASE WHEN s.fs = 1 THEN 'new_customers' WHEN s.fs <= 3 THEN 'potential_loyalists' ELSE 'champions' END
            WHEN s.rs = 4 THEN CASE WHEN s.fs = 1 THEN 'promising' WHEN s.fs <= 3 THEN 'potential_loyalists' ELSE 'loyal_customers' END
            WHEN s.rs = 3 THEN CASE WHEN s.fs <= 2 THEN 'about_to_sleep' WHEN s.fs = 3 THEN 'need_attention' ELSE 'loyal_customers' END
            ELSE CASE WHEN s.fs <= 2 THEN 'hibernating' WHEN s.fs <= 4 THEN 'at_risk' ELSE 'cant_lose_them' END END,
       CASE WHEN s.customer_id IS NULL THEN 'prospect' WHEN s.age < p.new_days THEN 'new'
            WHEN s.recency <= p.active_days THEN 'active' WHEN s.recency <= p.churn_days THEN 'at_risk' ELSE 'churned' END,
       s.tier
FROM pop LEFT JOIN scored s ON s.customer_id = pop.id, p
ON CONFLICT (customer_id) DO UPDATE SET run_id = EXCLUDED.run_id, computed_at = EXCLUDED.computed_at,
    recency_days = EXCLUDED.recency_days, frequency = EXCLUDED.frequency, monetary = EXCLUDED.monetary,
    r = EXCLUDED.r, f = EXCLUDED.f, m = EXCLUDED.m, segment = EXCLUDED.segment, lifecycle = EXCLUDED.lifecycle,
    tier = EXCLUDED.tier;
COMMIT;
SQL
    sql_ms+=($(($(ms) - t0)))
done

# Both sides must agree, or the comparison means nothing.
diff=$("${PSQL[@]}" -tAc "SELECT count(*) FROM (
    (SELECT customer_id, recency_days, frequency, monetary, r, f, m, segment, lifecycle, tier FROM customer_analytics_history WHERE run_id = $last_id
     EXCEPT SELECT customer_id, recency_days, frequency, monetary, r, f, m, segment, lifecycle, tier FROM bench_customer_analytics)
    UNION ALL
    (SELECT customer_id, recency_days, frequency, monetary, r, f, m, segment, lifecycle, tier FROM bench_customer_analytics
     EXCEPT SELECT customer_id, recency_days, frequency, monetary, r, f, m, segment, lifecycle, tier FROM customer_analytics_history WHERE run_id = $last_id)) d")
"${PSQL[@]}" -c "DROP TABLE bench_customer_analytics"

population=$("${PSQL[@]}" -tAc "SELECT count(*) FROM customers WHERE deleted_at IS NULL")
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
echo
echo "customers $CUSTOMERS (population $population), orders $ORDERS (qualifying $qualifying)"
echo "copy of qualifying orders to /dev/null: $copy_ms ms"
for i in "${!worker_ms[@]}"; do
    echo "worker run $((i + 1)) (POST to succeeded): ${worker_ms[$i]} ms = $(ratio "${worker_ms[$i]}" "$copy_ms") x copy," \
        "$(ratio "${worker_ms[$i]}" "${sql_ms[$((i < 1 ? 0 : 1))]}") x sql"
done
echo "sql-only: first ${sql_ms[0]} ms (inserts), second ${sql_ms[1]} ms (updates)"
echo "worker peak RSS (VmHWM): $((hwm_kb / 1024)) MiB; budget 64 B x $population + 50 MiB = $(((population * 64) / 1048576 + 50)) MiB"
echo "rows that differ between the worker and the SQL-only results: $diff"
[ "$diff" = 0 ]
