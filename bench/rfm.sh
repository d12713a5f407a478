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
#   4. writes: during every worker run, one session updates single customers (a different one each
#              time, each update its own transaction, 5 ms apart) and times each update to its commit:
#              the count, p99 and longest show how long the run holds customer writes up;
#   5. transitions: with RUNS >= 2, GET /v1/analytics/transitions between the first two runs through
#              the API as a director (every customer in scope), twice (the first plans the statement),
#              against a floor: counting the rows it reads (the customers not deleted, the two runs'
#              history rows) in one psql call;
# and prints the times and the ratios worker/copy and worker/sql. The issue's targets: worker at most
# 2 x copy, peak RSS at most 64 bytes per customer + 50 MB, the longest customer write during a run
# under 200 ms, transitions under 1 s.
set -euo pipefail
cd "$(dirname "$0")/.."

CUSTOMERS=${CUSTOMERS:-1000000}
ORDERS=${ORDERS:-10000000}
RUNS=${RUNS:-2}
AS_OF=${AS_OF:-2026-06-30T00:00:00Z}
BUILD=${BUILD:-build}
export STACK_DIR=${STACK_DIR:-.bench-rfm} STACK_PG_PORT=${STACK_PG_PORT:-55652} STACK_REDIS_PORT=${STACK_REDIS_PORT:-56599}
API_PORT=${API_PORT:-18652}

scripts/deps.sh
make -s -j"$(nproc)" BUILD="$BUILD" "$BUILD/clientele-api" "$BUILD/clientele-worker"
scripts/stack.sh start
WORKER_PID= PROBE_PID= API_PID=
stop_all() {
    for pid in $WORKER_PID $PROBE_PID $API_PID; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
    scripts/stack.sh stop
}
trap stop_all EXIT

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
CLIENTELE_WORKER_NAME=bench-rfm CLIENTELE_WORKER_LISTEN= CLIENTELE_LOG_LEVEL=info "$BUILD/clientele-worker" 2>"$STACK_DIR/worker.log" &
WORKER_PID=$!
for _ in $(seq 1 100); do grep -q '"consuming clientele:runs' "$STACK_DIR/worker.log" && break; sleep 0.1; done
# 4. Single-row customer writes while run $1 lasts (or, for run 0, for $2 seconds), each its own
# transaction (COMMIT inside DO), timed to its commit; prints "probe <count> <p99 ms> <max ms>" as a
# notice.
probe_writes() {
    "${PSQL[@]}" -c "DO \$\$
DECLARE t0 timestamptz; lat float8[] := '{}'; n int := 0; st text; t_end timestamptz := clock_timestamp() + '${2:-0} s';
BEGIN
    LOOP
        SELECT status INTO st FROM analytics_runs WHERE id = $1;
        EXIT WHEN st IN ('succeeded', 'failed', 'cancelled') OR ($1 = 0 AND clock_timestamp() > t_end);
        t0 := clock_timestamp();
        UPDATE customers SET phone = '+1 555 ' || n WHERE id = 1 + (n::bigint * 7919) % $CUSTOMERS;
        COMMIT;
        lat := lat || extract(epoch FROM clock_timestamp() - t0)::float8 * 1000;
        n := n + 1;
        PERFORM pg_sleep(0.005);
    END LOOP;
    RAISE NOTICE 'probe % % %', n,
        round(coalesce((SELECT percentile_disc(0.99) WITHIN GROUP (ORDER BY x) FROM unnest(lat) x), 0)::numeric, 1),
        round(coalesce((SELECT max(x) FROM unnest(lat) x), 0)::numeric, 1);
END \$\$"
}

# The same writes without a run: what a write costs here anyway (commits wait for the disk).
probe_writes 0 5 2>"$STACK_DIR/probe.log"
probe_idle=$(awk '/probe/ {print $(NF-2), $(NF-1), $NF}' "$STACK_DIR/probe.log")

worker_ms=() run_ids=() probe=()
for run in $(seq 1 "$RUNS"); do
    t0=$(ms)
    id=$("${PSQL[@]}" -tAc "WITH r AS (INSERT INTO analytics_runs (kind, params) VALUES ('rfm', '$PARAMS'::jsonb) RETURNING id),
        o AS (INSERT INTO outbox (topic, payload) SELECT 'runs', json_build_object('run_id', id) FROM r) SELECT id FROM r")
    run_ids+=("$id")
    probe_writes "$id" 2>"$STACK_DIR/probe.log" &
    PROBE_PID=$!
    # One session waits on the server (a fresh snapshot every 10 ms): starting psql every few
    # milliseconds instead would take a good part of a core away from the worker being measured.
    "${PSQL[@]}" -c "DO \$\$ BEGIN
        WHILE (SELECT status FROM analytics_runs WHERE id = $id) NOT IN ('succeeded', 'failed', 'cancelled') LOOP
            PERFORM pg_sleep(0.01);
        END LOOP; END \$\$"
    worker_ms+=($(($(ms) - t0)))
    wait "$PROBE_PID" || { echo "bench: the write probe failed: $(cat "$STACK_DIR/probe.log")" >&2; exit 1; }
    PROBE_PID=
    probe+=("$(awk '/probe/ {print $(NF-2), $(NF-1), $NF}' "$STACK_DIR/probe.log")")
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

# 5. transitions between the first two runs, through the API, as a director.
transitions_ms=() transitions_status=()
if [ "$RUNS" -ge 2 ]; then
    export CLIENTELE_JWT_SECRET=bench-secret-0123456789abcdefghijklmnop
    export CLIENTELE_LISTEN=127.0.0.1:$API_PORT CLIENTELE_LOG_LEVEL=warn
    if ! "${PSQL[@]}" -tAc "SELECT 1 FROM users WHERE email = 'bench.director@bench.invalid'" | grep -q 1; then
        echo 'bench-director-password' | "$BUILD/clientele-api" user-add bench.director@bench.invalid Director director >/dev/null
    fi
    "$BUILD/clientele-api" >"$STACK_DIR/api.log" 2>&1 &
    API_PID=$!
    for _ in $(seq 1 100); do curl -fs "http://$CLIENTELE_LISTEN/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
    TOKEN=$(curl -fsS -X POST -H 'Content-Type: application/json' \
        -d '{"email":"bench.director@bench.invalid","password":"bench-director-password"}' \
        "http://$CLIENTELE_LISTEN/v1/auth/token" | sed 's/.*"access_token":"\([^"]*\)".*/\1/')
    for _ in 1 2; do
        out=$(curl -sS -o "$STACK_DIR/transitions.json" -w '%{http_code} %{time_total}' -H "Authorization: Bearer $TOKEN" \
            "http://$CLIENTELE_LISTEN/v1/analytics/transitions?from_run=${run_ids[0]}&to_run=${run_ids[1]}")
        if [ "${out%% *}" != 200 ]; then
            echo "bench: transitions answered ${out%% *}: $(cat "$STACK_DIR/transitions.json")" >&2
        fi
        transitions_ms+=("$(awk -v t="${out#* }" 'BEGIN { printf "%d", t * 1000 }')")
        transitions_status+=("${out%% *}")
    done
    t0=$(ms)
    "${PSQL[@]}" -tAc "SELECT (SELECT count(*) FROM customers WHERE deleted_at IS NULL),
        (SELECT count(*) FROM customer_analytics_history WHERE run_id IN (${run_ids[0]}, ${run_ids[1]}))" >/dev/null
    transitions_floor_ms=$(($(ms) - t0))
    transitions_customers=$(grep -o '"customers" *: *[0-9]*' "$STACK_DIR/transitions.json" | grep -o '[0-9]*$' || echo '?')
    kill -TERM "$API_PID"
    wait "$API_PID" || true
    API_PID=
fi

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
read -r n p99 worst <<<"$probe_idle"
echo "customer writes without a run (5 s): $n single-row updates, p99 $p99 ms, longest $worst ms"
for i in "${!probe[@]}"; do
    read -r n p99 worst <<<"${probe[$i]}"
    echo "customer writes during worker run $((i + 1)): $n single-row updates, p99 $p99 ms, longest $worst ms (target < 200 ms)"
done
if [ "${#transitions_ms[@]}" -gt 0 ]; then
    echo "GET /v1/analytics/transitions (runs 1 -> 2, $transitions_customers customers): first ${transitions_ms[0]} ms" \
        "(${transitions_status[0]}), second ${transitions_ms[1]} ms (${transitions_status[1]}; target < 1000 ms); floor (counting its input rows) $transitions_floor_ms ms," \
        "$(ratio "${transitions_ms[1]}" "$transitions_floor_ms") x floor"
fi
echo "sql-only: first ${sql_ms[0]} ms (inserts), second ${sql_ms[1]} ms (updates)"
echo "worker peak RSS (VmHWM): $((hwm_kb / 1024)) MiB; budget 64 B x $population + 50 MiB = $(((population * 64) / 1048576 + 50)) MiB"
echo "rows that differ between the worker and the SQL-only results: $diff"
[ "$diff" = 0 ]
