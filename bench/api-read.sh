#!/usr/bin/env bash
# bench/api-read.sh - API reads against pgbench running the same SELECT, in one run.
#
# Builds the release binaries, starts a private stack under .bench/, loads
# 1,000,000 customers, then measures for DURATION seconds each:
#   1. wrk (2 threads, 64 connections) on GET /v1/customers/{random id} with a valid token, and
#      pgbench (-M prepared, 64 clients) on the exact statement the handler ran (read back
#      from pg_stat_activity, so the two can never drift apart);
#   2. the same for the first page of GET /v1/customers?owner_id=...&sort=-updated_at.
# It prints both rates, the API's p99 latency and RSS, and the ratio API/pgbench.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-20}
CUSTOMERS=${CUSTOMERS:-1000000}
export STACK_DIR=${STACK_DIR:-.bench} STACK_PG_PORT=${STACK_PG_PORT:-55642} STACK_REDIS_PORT=${STACK_REDIS_PORT:-56589}
PORT=${PORT:-18181}

CLIENTELE_BENCH_DEPS=1 scripts/deps.sh
command -v wrk >/dev/null || { echo "bench: wrk is missing" >&2; exit 1; }
make -s -j"$(nproc)"
scripts/stack.sh start
trap 'kill $API_PID 2>/dev/null || true; wait 2>/dev/null || true; scripts/stack.sh stop' EXIT

export CLIENTELE_DATABASE_URL="postgresql://clientele@127.0.0.1:$STACK_PG_PORT/clientele"
export CLIENTELE_REDIS_URL="redis://127.0.0.1:$STACK_REDIS_PORT/0"
export CLIENTELE_JWT_SECRET=bench-secret-0123456789abcdefghijklmnop
export CLIENTELE_LISTEN=127.0.0.1:$PORT CLIENTELE_LOG_LEVEL=warn
build/clientele-api migrate >/dev/null 2>&1
PSQL=(psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$STACK_PG_PORT" -U postgres -d clientele)

have=$("${PSQL[@]}" -tAc "SELECT count(*) FROM customers")
if [ "$have" -lt "$CUSTOMERS" ]; then
    echo "bench: loading $CUSTOMERS customers (once; kept in $STACK_DIR)"
    "${PSQL[@]}" <<SQL
SET session_replication_role = replica; -- no change-feed rows for the load
INSERT INTO teams (name) SELECT 'bench-team-' || t FROM generate_series(1, 10) t ON CONFLICT DO NOTHING;
INSERT INTO users (email, name, password_hash, role_id, team_id)
SELECT 'bench.rep' || u || '@bench.invalid', 'Rep ' || u, 'x', (SELECT id FROM roles WHERE name = 'rep'),
       (SELECT id FROM teams WHERE name = 'bench-team-' || (1 + u % 10))
FROM generate_series(1, 100) u ON CONFLICT DO NOTHING;
INSERT INTO customers (kind, name, email, status, owner_id, team_id, tags, created_at, updated_at)
SELECT CASE WHEN i % 3 = 0 THEN 'company' ELSE 'person' END, 'Customer ' || i, 'c' || i || '@example.com',
       'customer', u.id, u.team_id, ARRAY['bench'], now() - (i || ' seconds')::interval, now() - ((i * 7) % 100000 || ' seconds')::interval
FROM generate_series(1, $CUSTOMERS) i
JOIN users u ON u.email = 'bench.rep' || (1 + i % 100) || '@bench.invalid';
ANALYZE;
SQL
fi
if ! "${PSQL[@]}" -tAc "SELECT 1 FROM users WHERE email = 'bench.director@bench.invalid'" | grep -q 1; then
    echo 'bench-director-password' | build/clientele-api user-add bench.director@bench.invalid Director director >/dev/null
fi
MAXID=$("${PSQL[@]}" -tAc "SELECT max(id) FROM customers")
MINID=$("${PSQL[@]}" -tAc "SELECT min(id) FROM customers")
OWNER=$("${PSQL[@]}" -tAc "SELECT id FROM users WHERE email = 'bench.rep1@bench.invalid'")

build/clientele-api >"$STACK_DIR/api.log" 2>&1 &
API_PID=$!
for _ in $(seq 1 100); do curl -fs "http://$CLIENTELE_LISTEN/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
TOKEN=$(curl -fsS -X POST -H 'Content-Type: application/json' \
    -d '{"email":"bench.director@bench.invalid","password":"bench-director-password"}' \
    "http://$CLIENTELE_LISTEN/v1/auth/token" | sed 's/.*"access_token":"\([^"]*\)".*/\1/')
UID_=$("${PSQL[@]}" -tAc "SELECT id FROM users WHERE email = 'bench.director@bench.invalid'")
VER=$("${PSQL[@]}" -tAc "SELECT token_version FROM users WHERE id = $UID_")

# The statement text the API sent for a request, read back from the server.
statement_of() {
    curl -fsS -o /dev/null -H "Authorization: Bearer $TOKEN" "http://$CLIENTELE_LISTEN$1"
    "${PSQL[@]}" -tAc "SELECT query FROM pg_stat_activity WHERE application_name = 'clientele-api'
                       AND query LIKE '$2' ORDER BY query_start DESC LIMIT 1"
}

run_pair() { # name, wrk lua, pgbench script
    local name=$1 lua=$2 sqlfile=$3
    local wrk_out pg_out rps p99 pgtps rss
    wrk_out=$(wrk -t2 -c64 -d"${DURATION}s" --latency -s "$lua" "http://$CLIENTELE_LISTEN" 2>&1)
    rps=$(echo "$wrk_out" | awk '/Requests\/sec/ {print $2}')
    p99=$(echo "$wrk_out" | awk '$1 == "99%" {print $2}')
    non2xx=$(echo "$wrk_out" | awk '/Non-2xx/ {print $4}')
    rss=$(ps -o rss= -p "$API_PID" | tr -d ' ')
    pg_out=$(pgbench -n -M prepared -c 64 -j 2 -T "$DURATION" -f "$sqlfile" -h 127.0.0.1 -p "$STACK_PG_PORT" -U postgres clientele 2>&1)
    pgtps=$(echo "$pg_out" | awk '/^tps/ {print $3; exit}')
    printf '%-28s API %10s req/s (p99 %s, non-2xx %s, RSS %s KiB) | pgbench %10s tx/s | ratio %s\n' \
        "$name" "$rps" "$p99" "${non2xx:-0}" "$rss" "$pgtps" "$(awk -v a="$rps" -v b="$pgtps" 'BEGIN { printf "%.2f", a / b }')"
}

TMP=$STACK_DIR/scripts
mkdir -p "$TMP"
cat >"$TMP/byid.lua" <<LUA
math.randomseed(42)
request = function()
    return wrk.format("GET", "/v1/customers/" .. math.random($MINID, $MAXID), {["Authorization"] = "Bearer $TOKEN"})
end
LUA
# Replaces every $N of a statement (highest first, so $19 is never read as $1 then 9): the
# given "N=value" pairs, NULL for every other parameter (the filters a request did not use).
bind_params() {
    local text=$1 n v kv
    shift
    for n in $(seq 60 -1 1); do
        v=NULL
        for kv in "$@"; do [ "${kv%%=*}" = "$n" ] && v=${kv#*=}; done
        text=$(printf '%s' "$text" | sed "s/\\\$$n\\b/$v/g")
    done
    printf '%s\n' "$text"
}

SQL_BYID=$(statement_of "/v1/customers/$MINID" 'WITH caller%c.id = $3%customer_json(c)%')
{
    echo "\\set id random($MINID, $MAXID)"
    bind_params "$(echo "$SQL_BYID" | tr '\n' ' ')" "1=$UID_" "2=$VER" "3=:id"
    echo ";"
} >"$TMP/byid.sql"

cat >"$TMP/list.lua" <<LUA
request = function()
    return wrk.format("GET", "/v1/customers?owner_id=$OWNER&sort=-updated_at", {["Authorization"] = "Bearer $TOKEN"})
end
LUA
SQL_LIST=$(statement_of "/v1/customers?owner_id=$OWNER&sort=-updated_at" 'WITH caller%LATERAL%updated_at DESC%')
# Parameters of the list statement for this request: owner filter, 51 rows, no count, all fields.
{
    bind_params "$(echo "$SQL_LIST" | tr '\n' ' ')" "1=$UID_" "2=$VER" "3='$OWNER'" "13=51" "14=false"
    echo ";"
} >"$TMP/list.sql"

# Both sides must do the same work: the pgbench statement must return the rows the API read.
for f in byid list; do
    rows=$(sed 's/:id/'"$MINID"'/; /^\\set/d' "$TMP/$f.sql" | "${PSQL[@]}" -tA | grep -c . || true)
    echo "bench: the $f statement returns $rows row(s) per call"
done
echo "bench: $(nproc) cores, $CUSTOMERS customers, ${DURATION}s per measurement"
run_pair "GET /v1/customers/{id}" "$TMP/byid.lua" "$TMP/byid.sql"
run_pair "GET /v1/customers?owner_id" "$TMP/list.lua" "$TMP/list.sql"
