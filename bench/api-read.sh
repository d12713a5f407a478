#!/usr/bin/env bash
# bench/api-read.sh - API reads, reports and exports against pgbench on bare reads and on the statements the
# API runs, and against a COPY floor, in one run.
#
# Builds the release binaries, starts a private stack under .bench/, loads CUSTOMERS customers
# (100 reps in 10 teams, each customer scored into one of the 11 RFM segments) with two contacts
# each (the first primary for three customers in four, the second reporting to the first), then
# measures for DURATION seconds each, every side at CLIENTS concurrent clients unless said:
#   0. the load generator's ceiling: wrk on GET /healthz with the same Lua request function, so
#      the API figures below can be seen to be far from what wrk itself can send;
#   1. GET /v1/customers/{random id} (wrk) against the bare read
#      `SELECT row_to_json(c) FROM customers c WHERE id = $1` (pgbench -M prepared, random ids),
#      and against the API's own statement for that route (pgbench, random ids);
#   2. the first page of GET /v1/customers?owner_id=...&sort=-updated_at, and the same with
#      &segment=champions, each against the API's own statement for that request (pgbench);
#   3. GET /v1/contacts/{random id} against the bare read of a contact and the API's statement;
#   4. GET /v1/customers/{random id}/contacts and GET /v1/contacts?customer_id={random id}, each
#      against the API's own statement (random customer ids on both sides);
#   5. GET /v1/customers/aggregate?group_by=owner_id (every visible customer, in groups by owner)
#      at REPORT_CLIENTS clients against the API's own statement at as many pgbench clients;
#   6. GET /v1/customers/export?format=ndjson, once: every visible customer streamed, with its
#      wall time, bytes, rows (which must equal the visible count the API gives with count=true)
#      and the API's peak RSS during the export (VmHWM, reset just before it), against a COPY
#      floor: the export's own page statement with its page limit lifted, run once as
#      `COPY (...) TO STDOUT` by psql into the same byte counter. The floor builds the same
#      documents of the same rows in the same order and sends them to a client over a socket;
#      what the API adds on top is paging (one statement per page of the export's size, each
#      planned and started afresh), HTTP chunking and its own copies of each page.
# It prints the rates, the API's p99 latency and RSS, and the ratios API/reference.
#
# The API's statements are never copied into this script: they are read back from PostgreSQL's
# statement log. The API runs once with log_statement = 'all' set for its role; one request per
# route is sent, and every statement its sessions executed for it is taken from the log, with
# the text as the server received it, the values bound to each parameter (NULL included) and
# the protocol (a named prepared statement, or an unnamed one parsed and planned per request).
# pgbench then runs exactly that: the same text, with each $n turned into a pgbench variable
# (pgbench numbers them again, one per occurrence: a parameter used in several places is bound as
# many times, so the server binds and plans more parameters than the API's statement has, which
# the capture prints), the same values (-D; a NULL parameter is a variable left undefined, which
# pgbench 15 binds as NULL), in -M prepared for a named statement and -M extended for an unnamed
# one, and with the API's session settings (PGOPTIONS, from common/db.c). Only the varying ids
# (routes 1, 3 and 4) become random variables. Whatever builds the statements in the API
# (hand-written text today, a generated one tomorrow), the reference follows; a request that
# runs no statement, or a reference that returns no rows or fails, stops the bench instead of
# printing a figure. The API then restarts without the log setting for the measurements.
#
# Reads take the caller's team and scopes from a process cache (api/callers.c) that asks the
# database at most once per CALLER_TTL_MS per user; under load with one token that lookup is
# a few statements a second against thousands of reads. So every capture waits for the cache
# entry to expire, sends a warm-up read by the same user (which fills it), then the captured
# request, and counts only if that request reached the API less than half the TTL after the
# warm-up started: its statements are then those of a request served from the cache, as nearly
# all measured requests are.
#
# Environment: DURATION (seconds per figure, 20), CUSTOMERS (1,000,000), CLIENTS (16: wrk
# connections, pgbench clients; the API runs one loop per core with CLIENTELE_DB_POOL
# connections each), REPORT_CLIENTS (the aggregate's clients on both sides: one per core),
# RSS_BUDGET_MIB (the export's peak RSS budget, 64), STACK_DIR (.bench), STACK_PG_PORT (55642),
# STACK_REDIS_PORT (56589), PORT (18181, the API's).
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-20}
CUSTOMERS=${CUSTOMERS:-1000000}
CLIENTS=${CLIENTS:-16}
REPORT_CLIENTS=${REPORT_CLIENTS:-$(nproc)}
RSS_BUDGET_MIB=${RSS_BUDGET_MIB:-64}
export STACK_DIR=${STACK_DIR:-.bench} STACK_PG_PORT=${STACK_PG_PORT:-55642} STACK_REDIS_PORT=${STACK_REDIS_PORT:-56589}
PORT=${PORT:-18181}
SEGMENT=champions
T0=$(date +%s)

# The caller cache's lifetime, which the captures must stay well inside (see above).
CALLER_TTL_MS=$(sed -n 's/^#define CALLER_TTL_MS \([0-9][0-9]*\).*/\1/p' api/callers.c)
if [ -z "$CALLER_TTL_MS" ]; then
    echo "bench: api/callers.c no longer defines CALLER_TTL_MS; the captures cannot tell a cached caller" >&2
    exit 1
fi

CLIENTELE_BENCH_DEPS=1 scripts/deps.sh
command -v wrk >/dev/null || { echo "bench: wrk is missing" >&2; exit 1; }
make -s -j"$(nproc)"
scripts/stack.sh start
API_PID=
stop_api() {
    [ -n "$API_PID" ] || return 0
    kill "$API_PID" 2>/dev/null || true
    wait "$API_PID" 2>/dev/null || true
    API_PID=
}
trap 'stop_api; scripts/stack.sh stop' EXIT

export CLIENTELE_DATABASE_URL="postgresql://clientele@127.0.0.1:$STACK_PG_PORT/clientele"
export CLIENTELE_REDIS_URL="redis://127.0.0.1:$STACK_REDIS_PORT/0"
export CLIENTELE_JWT_SECRET=bench-secret-0123456789abcdefghijklmnop
export CLIENTELE_LISTEN=127.0.0.1:$PORT CLIENTELE_LOG_LEVEL=warn
build/clientele-api migrate >/dev/null 2>&1
PSQL=(psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$STACK_PG_PORT" -U postgres -d clientele)
PGLOG=$STACK_DIR/postgres.log # where scripts/stack.sh sends the server's log
# A run stopped half-way must not leave statement logging on for the next one's measurements.
"${PSQL[@]}" -c "ALTER ROLE clientele IN DATABASE clientele RESET log_statement"

LOADED=0
have=$("${PSQL[@]}" -tAc "SELECT count(*) FROM customers")
if [ "$have" -lt "$CUSTOMERS" ]; then
    LOADED=1
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
FROM generate_series($have + 1, $CUSTOMERS) i
JOIN users u ON u.email = 'bench.rep' || (1 + i % 100) || '@bench.invalid';
SQL
fi
# Every customer has current analytics (as after an RFM run), so documents carry them and segment= filters.
unscored=$("${PSQL[@]}" -tAc "SELECT count(*) FROM customers c
                              WHERE NOT EXISTS (SELECT 1 FROM customer_analytics a WHERE a.customer_id = c.id)")
if [ "$unscored" -gt 0 ]; then
    LOADED=1
    echo "bench: scoring customers into segments (once)"
    "${PSQL[@]}" <<'SQL'
SET session_replication_role = replica;
INSERT INTO customer_analytics (customer_id, run_id, computed_at, recency_days, frequency, monetary, r, f, m,
                                segment, lifecycle, tier)
SELECT c.id, 1, now(), (c.id % 400)::int, 1 + (c.id % 9)::int, (c.id % 5000) + 0.5, 1 + (c.id % 5), 1 + (c.id / 5 % 5),
       1 + (c.id / 25 % 5),
       (ARRAY['champions', 'loyal_customers', 'potential_loyalists', 'new_customers', 'promising', 'need_attention',
              'about_to_sleep', 'at_risk', 'cant_lose_them', 'hibernating', 'prospect'])[1 + (c.id % 11)],
       (ARRAY['new', 'active', 'at_risk', 'churned'])[1 + (c.id % 4)], (ARRAY['A', 'B', 'C'])[1 + (c.id % 3)]
FROM customers c
WHERE NOT EXISTS (SELECT 1 FROM customer_analytics a WHERE a.customer_id = c.id);
ANALYZE;
SQL
fi
# Two contacts per customer, in one statement per load so their ids stay contiguous: the first is
# the primary contact of three customers in four, the second reports to the first (one level of
# an org chart); names, titles, departments, emails, phones and channels vary with the id.
uncontacted=$("${PSQL[@]}" -tAc "SELECT count(*) FROM customers c
                                 WHERE NOT EXISTS (SELECT 1 FROM contacts x WHERE x.customer_id = c.id)")
if [ "$uncontacted" -gt 0 ]; then
    echo "bench: loading two contacts for each of $uncontacted customers (once)"
    "${PSQL[@]}" <<'SQL'
SET session_replication_role = replica;
WITH first AS (
    INSERT INTO contacts (customer_id, first_name, last_name, title, department, email, phone, is_primary,
                          preferred_channel, tags, created_at, updated_at)
    SELECT c.id, (ARRAY['Anna', 'Ben', 'Clara', 'David', 'Eva', 'Felix', 'Greta', 'Hugo'])[1 + c.id % 8],
           (ARRAY['Meyer', 'Schmidt', 'Rossi', 'Dubois', 'Nowak', 'Smith', 'Jansen', 'Garcia', 'Berg'])[1 + c.id % 9],
           (ARRAY['Head of Purchasing', 'CFO', 'Office Manager', 'CEO'])[1 + c.id % 4],
           (ARRAY['Purchasing', 'Finance', 'Operations', 'Management'])[1 + c.id % 4],
           'first.c' || c.id || '@example.com', '+49 30 ' || (1000000 + c.id), c.id % 4 <> 0,
           (ARRAY['email', 'phone', NULL])[1 + c.id % 3], ARRAY['bench'], c.created_at, c.updated_at
    FROM customers c
    WHERE NOT EXISTS (SELECT 1 FROM contacts x WHERE x.customer_id = c.id)
    ORDER BY c.id
    RETURNING id, customer_id, department, created_at, updated_at
)
INSERT INTO contacts (customer_id, first_name, last_name, title, department, reports_to_id, email, mobile,
                      preferred_channel, do_not_contact, tags, created_at, updated_at)
SELECT f.customer_id, (ARRAY['Ida', 'Jan', 'Karla', 'Lars', 'Mona', 'Nils', 'Olga'])[1 + f.customer_id % 7],
       CASE WHEN f.customer_id % 10 <> 0
            THEN (ARRAY['Weber', 'Fischer', 'Bianchi', 'Martin', 'Kowalski'])[1 + f.customer_id % 5] END,
       'Assistant', f.department, f.id, 'second.c' || f.customer_id || '@example.com',
       '+49 170 ' || (1000000 + f.customer_id), 'email', f.customer_id % 20 = 0, ARRAY['bench'], f.created_at,
       f.updated_at
FROM first f
ORDER BY f.customer_id;
SQL
    LOADED=1
fi
# Vacuum what was loaded and write it out now, so neither an autovacuum of the new rows nor the
# checkpoint of the load runs during the measurements.
if [ "$LOADED" = 1 ]; then
    "${PSQL[@]}" -c "VACUUM (ANALYZE) customers, customer_analytics, contacts"
    "${PSQL[@]}" -c "CHECKPOINT"
fi
if ! "${PSQL[@]}" -tAc "SELECT 1 FROM users WHERE email = 'bench.director@bench.invalid'" | grep -q 1; then
    echo 'bench-director-password' | build/clientele-api user-add bench.director@bench.invalid Director director >/dev/null
fi
read -r MINID MAXID NCUST MINCT MAXCT NCT OWNERS <<<"$("${PSQL[@]}" -tA -F ' ' -c "
    SELECT min(id), max(id), count(*), (SELECT min(id) FROM contacts), (SELECT max(id) FROM contacts),
           (SELECT count(*) FROM contacts WHERE deleted_at IS NULL), count(DISTINCT owner_id)
    FROM customers WHERE deleted_at IS NULL")"
OWNER=$("${PSQL[@]}" -tAc "SELECT id FROM users WHERE email = 'bench.rep1@bench.invalid'")
# Random ids are drawn from [min, max] on both sides: every id in between must be a live record.
if [ "$NCUST" -ne $((MAXID - MINID + 1)) ] || [ "$NCT" -ne $((MAXCT - MINCT + 1)) ]; then
    echo "bench: customer or contact ids in $STACK_DIR have gaps (a load was interrupted?); remove $STACK_DIR" >&2
    exit 1
fi

start_api() {
    build/clientele-api >>"$STACK_DIR/api.log" 2>&1 &
    API_PID=$!
    for _ in $(seq 1 100); do curl -fs "http://$CLIENTELE_LISTEN/readyz" >/dev/null 2>&1 && return 0; sleep 0.1; done
    echo "bench: the API did not become ready; see $STACK_DIR/api.log" >&2
    exit 1
}

TMP=$STACK_DIR/scripts
mkdir -p "$TMP"

# --- 1. the statements the API runs, from the server's statement log ----------------------------

# bench/replay.pl turns the log entries of one request into its pgbench reference (see there).

# The access token: logged in once, valid for both API runs (same secret).
login() {
    curl -fsS -X POST -H 'Content-Type: application/json' \
        -d '{"email":"bench.director@bench.invalid","password":"bench-director-password"}' \
        "http://$CLIENTELE_LISTEN/v1/auth/token" | perl -MJSON::PP -0ne 'print decode_json($_)->{access_token}'
}

now_ms() { echo $(($(date +%s%N) / 1000000)); }

# capture NAME PATH [value=variable ...]: sends GET PATH once (the answer in $TMP/NAME.json) right
# after a warm-up read, and builds the pgbench reference from the statements it ran. The
# variables' values go to $TMP/NAME.probe (one -D name=value per line) for the check.
# With FLOOR=1 the answer is cut after its first bytes (an export: the client going away stops
# it) and replay.pl builds the COPY floor from its pages instead.
capture() {
    local name=$1 path=$2 off t0 t1 age try pair
    shift 2
    : >"$TMP/$name.probe"
    for pair in "$@"; do echo "${pair#*=}=${pair%%=*}" >>"$TMP/$name.probe"; done
    for try in 1 2 3 4 5; do
        # The warm-up must fill the cache, not find an entry about to expire: wait for any to expire.
        sleep "$(awk -v t="$CALLER_TTL_MS" 'BEGIN { print t / 1000 + 0.05 }')"
        t0=$(now_ms)
        curl -fsS -o /dev/null -H "Authorization: Bearer $TOKEN" "http://$CLIENTELE_LISTEN/v1/customers/$MINID"
        off=$(stat -c %s "$PGLOG")
        t1=$(now_ms)
        # The time until curl has sent the request (%{time_pretransfer}, seconds) goes to $TMP/sent.
        if [ "${FLOOR:-0}" = 1 ]; then
            # curl fails writing into the closed pipe: only the first bytes are wanted.
            curl -sS -N -H "Authorization: Bearer $TOKEN" -w '%{stderr}%{time_pretransfer}\n' \
                "http://$CLIENTELE_LISTEN$path" 2>"$TMP/sent" | head -c 4096 >"$TMP/$name.json" || true
        else
            curl -fsS -o "$TMP/$name.json" -w '%{time_pretransfer}\n' -H "Authorization: Bearer $TOKEN" \
                "http://$CLIENTELE_LISTEN$path" >"$TMP/sent"
        fi
        # No wait needed: a backend writes the entry (to the file, no collector) before it executes.
        tail -c +"$((off + 1))" "$PGLOG" >"$TMP/$name.log"
        # From the warm-up's start to the captured request's arrival: what the cache entry's age can be.
        age=$(awk -v t0="$t0" -v t1="$t1" '/^[0-9.]+$/ { printf "%d", t1 - t0 + $1 * 1000; exit }' "$TMP/sent")
        [ -n "$age" ] && [ "$age" -lt $((CALLER_TTL_MS / 2)) ] && break
        if [ "$try" = 5 ]; then
            echo "bench: GET $path: five captures came ${age:-?} ms or more after their warm-up, not within half" \
                "the caller cache's $CALLER_TTL_MS ms; the machine is too busy to capture a cached request" >&2
            exit 1
        fi
    done
    if [ "${FLOOR:-0}" = 1 ]; then
        echo "bench: GET $path (the first page) runs:" >&2
        perl bench/replay.pl --floor "$TMP/$name.log" "$TMP/$name"
    else
        echo "bench: GET $path runs:" >&2
        perl bench/replay.pl "$TMP/$name.log" "$TMP/$name" "$@"
    fi
}

"${PSQL[@]}" -c "ALTER ROLE clientele IN DATABASE clientele SET log_statement = 'all'"
start_api
TOKEN=$(login)
PROBE_ID=$((MAXID - 17)) # any customer; its id must be bound to exactly one parameter
PROBE_CT=$((MAXCT - 17)) # any contact
echo "\\set id random($MINID, $MAXID)" >"$TMP/byid_api.head"
capture byid_api "/v1/customers/$PROBE_ID" "$PROBE_ID=id"
LIST_PATH="/v1/customers?owner_id=$OWNER&sort=-updated_at"
SEG_PATH="/v1/customers?owner_id=$OWNER&segment=$SEGMENT&sort=-updated_at"
AGG_PATH="/v1/customers/aggregate?group_by=owner_id"
EXPORT_PATH="/v1/customers/export?format=ndjson"
rm -f "$TMP/list_api.head" "$TMP/segment_api.head" "$TMP/agg_api.head"
capture list_api "$LIST_PATH"
capture segment_api "$SEG_PATH"
echo "\\set id random($MINCT, $MAXCT)" >"$TMP/ctbyid_api.head"
capture ctbyid_api "/v1/contacts/$PROBE_CT" "$PROBE_CT=id"
echo "\\set cid random($MINID, $MAXID)" >"$TMP/nested_api.head"
capture nested_api "/v1/customers/$PROBE_ID/contacts" "$PROBE_ID=cid"
echo "\\set cid random($MINID, $MAXID)" >"$TMP/ctlist_api.head"
capture ctlist_api "/v1/contacts?customer_id=$PROBE_ID" "$PROBE_ID=cid"
capture agg_api "$AGG_PATH"
FLOOR=1 capture export_floor "$EXPORT_PATH" # last: the export's pages must not reach another capture's log
stop_api
"${PSQL[@]}" -c "ALTER ROLE clientele IN DATABASE clientele RESET log_statement"

for t in customers contacts; do
    printf '\\set id random(%s, %s)\nSELECT row_to_json(c) FROM %s c WHERE id = :id;\n' \
        "$([ $t = customers ] && echo "$MINID" || echo "$MINCT")" \
        "$([ $t = customers ] && echo "$MAXID" || echo "$MAXCT")" "$t" >"$TMP/${t}_bare.sql"
    echo prepared >"$TMP/${t}_bare.mode"
    : >"$TMP/${t}_bare.vars"
done

# pgbench's -D arguments for a reference ($TMP/NAME.vars), into the array DEFS.
DEFS=()
read_defs() {
    DEFS=()
    local kv
    while IFS= read -r -d '' kv; do DEFS+=(-D "$kv"); done <"$TMP/$1.vars"
}
# The API's session settings (common/db.c: the options of db_t), so both sides plan alike.
export PGOPTIONS="-c TimeZone=UTC -c jit=off"
PGBENCH=(pgbench -n -h 127.0.0.1 -p "$STACK_PG_PORT" -U postgres)

# Both sides must do real work: the API answered records, and pgbench, running each reference as
# it will be measured (same script, values and protocol), reads at least as many rows.
items() { # the records in an answer: a list's data, else one
    perl -MJSON::PP -0ne '$d = decode_json($_); print ref $d->{data} eq "ARRAY" ? scalar @{$d->{data}} : 1' "$1"
}
for f in byid_api list_api segment_api ctbyid_api nested_api ctlist_api agg_api; do
    n=$(items "$TMP/$f.json")
    read_defs "$f"
    probe=()
    while IFS= read -r kv; do probe+=(-D "$kv"); done <"$TMP/$f.probe"
    out=$("${PGBENCH[@]}" -M "$(cat "$TMP/$f.mode")" -t 1 "${probe[@]}" "${DEFS[@]}" -f "$TMP/$f.check" \
        clientele 2>&1) ||
        { echo "bench: $f: the reference fails under pgbench; no figures" >&2; echo "$out" >&2; exit 1; }
    rows=$(echo "$out" | sed -n 's/.*debug(.*): int \([0-9]*\).*/\1/p' | tail -n 1)
    echo "bench: $f: the API answered $n record(s); its statements return ${rows:-no} row(s) under pgbench"
    if [ "$n" -eq 0 ] || [ "${rows:-0}" -lt "$n" ]; then
        echo "bench: $f: the reference does not read what the API answered; no figures" >&2
        exit 1
    fi
done
# Every contact list answered this customer's two contacts; the report grouped every visible customer.
for f in nested_api ctlist_api; do
    n=$(items "$TMP/$f.json")
    [ "$n" -eq 2 ] || { echo "bench: $f: the API answered $n contacts of customer $PROBE_ID, not 2" >&2; exit 1; }
done
read -r groups counted <<<"$(perl -MJSON::PP -0ne '$d = decode_json($_);
    print scalar @{$d->{groups}}, " ", $d->{totals}{count}' "$TMP/agg_api.json")"
echo "bench: agg_api: the API answered $groups groups of $counted customers"
if [ "$groups" -ne "$OWNERS" ] || [ "$counted" -ne "$NCUST" ]; then
    echo "bench: agg_api: expected $OWNERS owners and $NCUST customers; no figures" >&2
    exit 1
fi

# --- 2. measurements --------------------------------------------------------------------------------

start_api

# Lua request functions for wrk; ids, when asked for, are random customer or contact ids, drawn
# by each wrk thread from a sequence of its own (as each pgbench client draws its own).
lua() { # file, Lua expression for the path
    cat >"$TMP/$1.lua" <<LUA
local threads = 0
setup = function(thread)
    threads = threads + 1
    thread:set("seed", 42 + threads)
end
init = function(args)
    math.randomseed(seed)
end
request = function()
    return wrk.format("GET", $2, {["Authorization"] = "Bearer $TOKEN"})
end
LUA
}
lua healthz '"/healthz"'
lua byid "\"/v1/customers/\" .. math.random($MINID, $MAXID)"
lua list "\"$LIST_PATH\""
lua segment "\"$SEG_PATH\""
lua ctbyid "\"/v1/contacts/\" .. math.random($MINCT, $MAXCT)"
lua nested "\"/v1/customers/\" .. math.random($MINID, $MAXID) .. \"/contacts\""
lua ctlist "\"/v1/contacts?customer_id=\" .. math.random($MINID, $MAXID)"
lua agg "\"$AGG_PATH\""

threads_for() { echo $(($1 < 2 ? 1 : 2)); }
WRK_THREADS=$(threads_for "$CLIENTS")
RPS='' P50='' P99='' RSS=''
run_wrk() { # lua file [clients]; sets RPS, P50, P99, RSS
    local out non2xx errors c=${2:-$CLIENTS}
    out=$(wrk -t"$(threads_for "$c")" -c"$c" -d"${DURATION}s" --timeout 120s --latency -s "$1" \
        "http://$CLIENTELE_LISTEN" 2>&1)
    RPS=$(echo "$out" | awk '/Requests\/sec/ {printf "%.*f", ($2 < 100 ? 2 : 0), $2}')
    P50=$(echo "$out" | awk '$1 == "50%" {print $2}')
    P99=$(echo "$out" | awk '$1 == "99%" {print $2}')
    non2xx=$(echo "$out" | awk '/Non-2xx/ {print $5}')
    errors=$(echo "$out" | awk '/Socket errors/ {print}')
    RSS=$(ps -o rss= -p "$API_PID" | tr -d ' ')
    if [ -n "$non2xx" ] || [ -n "$errors" ] || [ -z "$RPS" ] || [ "$RPS" = 0 ] || [ "$RPS" = 0.00 ]; then
        echo "bench: wrk with $1: ${non2xx:-0} non-2xx answers ${errors:-}(load average" \
            "$(cut -d ' ' -f 1-3 /proc/loadavg)); no figures" >&2
        echo "$out" >&2
        exit 1
    fi
}

TPS='' PGMODE=''
run_pgbench() { # reference name ($TMP/NAME.{sql,vars,mode}) [clients]; sets TPS and PGMODE
    local name=$1 out c=${2:-$CLIENTS}
    read_defs "$name"
    PGMODE=$(cat "$TMP/$name.mode")
    if ! out=$("${PGBENCH[@]}" -M "$PGMODE" -c "$c" -j "$(threads_for "$c")" -T "$DURATION" "${DEFS[@]}" \
        -f "$TMP/$name.sql" clientele 2>&1) || echo "$out" | grep -q '^number of failed transactions: [1-9]'; then
        echo "bench: pgbench on $name failed; no figures" >&2
        echo "$out" >&2
        exit 1
    fi
    TPS=$(echo "$out" | awk '/^tps/ {printf "%.*f", ($3 < 100 ? 2 : 0), $3; exit}')
    if [ -z "$TPS" ] || [ "$TPS" = 0 ] || [ "$TPS" = 0.00 ]; then
        echo "bench: pgbench on $name completed no transaction; no figures" >&2
        echo "$out" >&2
        exit 1
    fi
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
# The reference lines under an API figure.
bare_line() {
    printf '%-68s %8s tx/s  | API/bare %s\n' "  bare read by id, pgbench -M $PGMODE" "$TPS" "$(ratio "$API_RPS" "$TPS")"
}
statement_line() {
    printf '%-68s %8s tx/s  | API/statement %s\n' "  the API's statement, pgbench -M $PGMODE" "$TPS" "$(ratio "$API_RPS" "$TPS")"
}
api_line() { # label [extra]
    printf '%-68s %8s req/s (p99 %s, RSS %s KiB%s)\n' "$1" "$RPS" "$P99" "$RSS" "${2:-}"
    API_RPS=$RPS
}

echo "bench: $(nproc) cores, $NCUST customers, $NCT contacts, $CLIENTS clients (wrk -t$WRK_THREADS," \
    "pgbench -j$WRK_THREADS), ${DURATION}s per figure; load average $(cut -d ' ' -f 1-3 /proc/loadavg)"
run_wrk "$TMP/healthz.lua"
CEILING=$RPS
printf '%-68s %8s req/s (p99 %s)\n' "wrk on GET /healthz (the load generator's ceiling)" "$CEILING" "$P99"

run_wrk "$TMP/byid.lua"
api_line "GET /v1/customers/{id}: API" ", $(ratio "$RPS" "$CEILING") of the ceiling"
run_pgbench customers_bare
bare_line
run_pgbench byid_api
statement_line

for f in list segment; do
    label="GET /v1/customers?owner_id&sort=-updated_at: API"
    [ $f = segment ] && label="GET /v1/customers?owner_id&segment=$SEGMENT&sort=-updated_at: API"
    run_wrk "$TMP/$f.lua"
    api_line "$label"
    run_pgbench "${f}_api"
    statement_line
done

run_wrk "$TMP/ctbyid.lua"
api_line "GET /v1/contacts/{id}: API" ", $(ratio "$RPS" "$CEILING") of the ceiling"
run_pgbench contacts_bare
bare_line
run_pgbench ctbyid_api
statement_line

run_wrk "$TMP/nested.lua"
api_line "GET /v1/customers/{id}/contacts: API"
run_pgbench nested_api
statement_line
run_wrk "$TMP/ctlist.lua"
api_line "GET /v1/contacts?customer_id={id}: API"
run_pgbench ctlist_api
statement_line

run_wrk "$TMP/agg.lua" "$REPORT_CLIENTS"
api_line "GET /v1/customers/aggregate?group_by=owner_id, $REPORT_CLIENTS clients: API" ", p50 $P50"
run_pgbench agg_api "$REPORT_CLIENTS"
statement_line

# The export, once, with the peak RSS of the API process during it alone: writing 5 to clear_refs
# resets VmHWM to the current RSS (Linux 4.0 and later).
VISIBLE=$(curl -fsS -H "Authorization: Bearer $TOKEN" "http://$CLIENTELE_LISTEN/v1/customers?count=true&limit=1" |
    perl -MJSON::PP -0ne 'print decode_json($_)->{total}')
vm() { awk -v k="$1:" '$1 == k {print $2}' "/proc/$API_PID/status"; }
if ! echo 5 >"/proc/$API_PID/clear_refs" 2>/dev/null || [ "$(vm VmHWM)" -gt "$(($(vm VmRSS) + 1024))" ]; then
    echo "bench: cannot reset the API's peak RSS (/proc/$API_PID/clear_refs); no export figures" >&2
    exit 1
fi
RSS_BEFORE=$(vm VmRSS)
# Only curl's -w line goes to the file (-sS: no progress; an error message lands there too).
if ! curl -sS -N -H "Authorization: Bearer $TOKEN" -w '%{stderr}%{http_code} %{size_download} %{time_total}\n' \
    "http://$CLIENTELE_LISTEN$EXPORT_PATH" 2>"$TMP/export.curl" | wc -l -c >"$TMP/export.wc"; then
    echo "bench: the export failed or was cut short; no figures" >&2
    cat "$TMP/export.curl" >&2
    exit 1
fi
PEAK=$(vm VmHWM)
read -r CODE BYTES SECS <"$TMP/export.curl"
read -r ROWS WCBYTES <"$TMP/export.wc"
if [ "$CODE" != 200 ] || [ "$ROWS" -ne "$VISIBLE" ] || [ "$WCBYTES" -ne "$BYTES" ]; then
    echo "bench: the export answered $CODE with $ROWS rows in $WCBYTES bytes (curl: $BYTES)" \
        "for $VISIBLE visible customers; no figures" >&2
    exit 1
fi
API_ROWS_S=$(awk -v r="$ROWS" -v s="$SECS" 'BEGIN { printf "%.0f", r / s }')
printf '%-68s %8s rows/s (%d rows = the visible count, %.1f MB, %.2f s)\n' \
    "GET /v1/customers/export?format=ndjson: API" "$API_ROWS_S" "$ROWS" \
    "$(awk -v b="$BYTES" 'BEGIN { print b / 1e6 }')" "$SECS"
printf '%-68s %8s KiB (RSS before %s KiB; budget %s MiB: %s)\n' "  the API's peak RSS during the export" "$PEAK" \
    "$RSS_BEFORE" "$RSS_BUDGET_MIB" "$([ "$PEAK" -lt $((RSS_BUDGET_MIB * 1024)) ] && echo under || echo OVER)"
f0=$(date +%s%N)
if ! "${PSQL[@]}" -f "$TMP/export_floor.sql" | wc -l -c >"$TMP/floor.wc"; then
    echo "bench: the COPY floor failed; no figures" >&2
    exit 1
fi
f1=$(date +%s%N)
read -r FROWS FBYTES <"$TMP/floor.wc"
if [ "$FROWS" -ne "$ROWS" ]; then
    echo "bench: the COPY floor wrote $FROWS rows, the export $ROWS; no figures" >&2
    exit 1
fi
FSECS=$(awk -v a="$f0" -v b="$f1" 'BEGIN { printf "%.2f", (b - a) / 1e9 }')
FLOOR_ROWS_S=$(awk -v r="$FROWS" -v s="$FSECS" 'BEGIN { printf "%.0f", r / s }')
printf '%-68s %8s rows/s (%.1f MB, %.2f s) | API/floor %s\n' \
    "  floor: the export's page statement unpaged, COPY through psql" "$FLOOR_ROWS_S" \
    "$(awk -v b="$FBYTES" 'BEGIN { print b / 1e6 }')" "$FSECS" "$(ratio "$API_ROWS_S" "$FLOOR_ROWS_S")"
echo "bench: done in $(($(date +%s) - T0)) s; load average $(cut -d ' ' -f 1-3 /proc/loadavg)"
