#!/usr/bin/env bash
# bench/api-read.sh - API reads against pgbench on a bare read and on the statements the API runs, in one run.
#
# Builds the release binaries, starts a private stack under .bench/, loads CUSTOMERS customers
# (100 reps in 10 teams, each customer scored into one of the 11 RFM segments), then measures for
# DURATION seconds each, every side at CLIENTS concurrent clients:
#   0. the load generator's ceiling: wrk on GET /healthz with the same Lua request function, so
#      the API figures below can be seen to be far from what wrk itself can send;
#   1. GET /v1/customers/{random id} (wrk) against the bare read
#      `SELECT row_to_json(c) FROM customers c WHERE id = $1` (pgbench -M prepared, random ids),
#      and against the API's own statement for that route (pgbench, random ids);
#   2. the first page of GET /v1/customers?owner_id=...&sort=-updated_at, and the same with
#      &segment=champions, each against the API's own statement for that request (pgbench).
# It prints the rates, the API's p99 latency and RSS, and the ratios API/reference.
#
# The API's statements are never copied into this script: they are read back from PostgreSQL's
# statement log. The API runs once with log_statement = 'all' set for its role; one request per
# route is sent, and every statement its sessions executed for it is taken from the log, with
# the text as the server received it, the values bound to each parameter (NULL included) and
# the protocol (a named prepared statement, or an unnamed one parsed and planned per request).
# pgbench then runs exactly that: the same text, with each $n turned into a pgbench variable
# (pgbench numbers them again, one per occurrence), the same values (-D; a NULL parameter is a
# variable left undefined, which pgbench 15 binds as NULL), in -M prepared for a named statement
# and -M extended for an unnamed one, and with the API's session settings (PGOPTIONS, from
# common/db.c). Only the varying id of route 1 becomes a random variable. Whatever builds the
# statements in the API (hand-written text today, a generated one tomorrow), the reference
# follows; a request that runs no statement, or a reference that returns no rows or fails, stops
# the bench instead of printing a figure. The API then restarts without the log setting for the
# measurements.
#
# Environment: DURATION (seconds per figure, 20), CUSTOMERS (1,000,000), CLIENTS (16: wrk
# connections, pgbench clients; the API runs one loop per core with CLIENTELE_DB_POOL
# connections each), STACK_DIR (.bench), STACK_PG_PORT (55642), STACK_REDIS_PORT (56589),
# PORT (18181, the API's).
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-20}
CUSTOMERS=${CUSTOMERS:-1000000}
CLIENTS=${CLIENTS:-16}
export STACK_DIR=${STACK_DIR:-.bench} STACK_PG_PORT=${STACK_PG_PORT:-55642} STACK_REDIS_PORT=${STACK_REDIS_PORT:-56589}
PORT=${PORT:-18181}
SEGMENT=champions
T0=$(date +%s)

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
FROM generate_series($have + 1, $CUSTOMERS) i
JOIN users u ON u.email = 'bench.rep' || (1 + i % 100) || '@bench.invalid';
SQL
fi
# Every customer has current analytics (as after an RFM run), so documents carry them and segment= filters.
unscored=$("${PSQL[@]}" -tAc "SELECT count(*) FROM customers c
                              WHERE NOT EXISTS (SELECT 1 FROM customer_analytics a WHERE a.customer_id = c.id)")
if [ "$unscored" -gt 0 ]; then
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
if ! "${PSQL[@]}" -tAc "SELECT 1 FROM users WHERE email = 'bench.director@bench.invalid'" | grep -q 1; then
    echo 'bench-director-password' | build/clientele-api user-add bench.director@bench.invalid Director director >/dev/null
fi
MAXID=$("${PSQL[@]}" -tAc "SELECT max(id) FROM customers")
MINID=$("${PSQL[@]}" -tAc "SELECT min(id) FROM customers")
OWNER=$("${PSQL[@]}" -tAc "SELECT id FROM users WHERE email = 'bench.rep1@bench.invalid'")

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

# Turns the log entries of one request (file $1) into a pgbench script ($2.sql), its variables
# ($2.vars: NUL-separated name=value for -D), the protocol ($2.mode: prepared or extended) and a
# check ($2.check: a pgbench script that runs the same statements once, counting their rows into
# a debug() line). Arguments after $2 are value=name pairs: a parameter bound to that value
# becomes pgbench variable :name (set by the caller's own lines in $2.head, and by -D name=value
# for the check), and must be exactly one parameter.
cat >"$TMP/replay.pl" <<'PERL'
use strict;
use warnings;
my ($log, $out, @vary) = @ARGV;
my %vary = map { split /=/, $_, 2 } @vary;
open my $in, '<', $log or die "replay: $log: $!\n";
my @entries; # [pid, severity, message]; continuation lines of a message start with a tab
while (my $line = <$in>) {
    chomp $line;
    if ($line =~ /^\t(.*)$/s && @entries) { $entries[-1][2] .= "\n$1"; next; }
    push @entries, [$1, $2, $3] if $line =~ /^\S+ \S+ \S+ \[(\d+)\] ([A-Z]+):  (.*)$/s;
}
my @stmts;
for my $i (0 .. $#entries) {
    my ($pid, $sev, $msg) = @{$entries[$i]};
    next unless $sev eq 'LOG' && $msg =~ /^execute ([^:]+): (.*)$/s;
    my %st = (name => $1, text => $2, params => {});
    my $d = $i < $#entries && $entries[$i + 1][0] eq $pid && $entries[$i + 1][1] eq 'DETAIL' ? $entries[$i + 1][2] : '';
    if ($d =~ /^parameters: (.*)$/s) {
        my $p = $1;
        while ($p =~ /\G\$(\d+) = (?:NULL|'((?:[^']|'')*)')(?:, |$)/gc) {
            my ($n, $v) = ($1, $2);
            $v =~ s/''/'/g if defined $v;
            $st{params}{$n} = $v;
        }
        die "replay: cannot read the parameters: $p\n" unless (pos($p) // 0) == length $p;
    }
    push @stmts, \%st;
}
die "replay: the request executed no statement (see $log)\n" unless @stmts;
my %seen;
my $named = grep { $_->{name} ne '<unnamed>' } @stmts;
open my $sql, '>', "$out.sql" or die;
open my $vars, '>', "$out.vars" or die;
open my $check, '>', "$out.check" or die;
print $check "\\set total 0\n";
if (open my $head, '<', "$out.head") { print $sql $_ while <$head>; }
for my $s (0 .. $#stmts) {
    my $st = $stmts[$s];
    (my $bare = $st->{text}) =~ s/::+//g;
    die "replay: statement " . ($s + 1) . " holds a ':name' that pgbench would take for a variable\n"
        if $bare =~ /:[A-Za-z0-9_]/;
    my $bench = $st->{text} =~ s{\$(\d+)}{
        my $n = $1;
        die "replay: \$$n has no value in the log\n" unless exists $st->{params}{$n};
        my $v = $st->{params}{$n};
        if (defined $v && exists $vary{$v}) { $seen{$v}{$s . '.' . $n} = 1; ":$vary{$v}" }
        elsif (defined $v) { ":s${s}_p$n" }
        else { ":null_s${s}_p$n" }  # never defined: pgbench binds NULL
    }ger;
    for my $n (sort { $a <=> $b } keys %{$st->{params}}) {
        my $v = $st->{params}{$n};
        print $vars "s${s}_p$n=$v\0" if defined $v && !exists $vary{$v};
    }
    print $sql "$bench;\n";
    print $check "SELECT count(*) AS rows_ FROM ($bench) AS replay \\gset\n\\set total :total + :rows_\n";
    printf STDERR "bench:   statement %d: %s, %d parameters, %d characters\n", $s + 1,
        $st->{name} eq '<unnamed>' ? 'unnamed (parsed and planned per request)' : "prepared ($st->{name})",
        scalar keys %{$st->{params}}, length $st->{text};
}
for my $v (keys %vary) {
    my $n = keys %{$seen{$v} // {}};
    die "replay: value $v must be bound to exactly one parameter, found $n\n" unless $n == 1;
}
print $check "\\set shown debug(:total)\n";
open my $mode, '>', "$out.mode" or die;
print $mode $named == @stmts ? "prepared\n" : "extended\n";
PERL

# The access token: logged in once, valid for both API runs (same secret).
login() {
    curl -fsS -X POST -H 'Content-Type: application/json' \
        -d '{"email":"bench.director@bench.invalid","password":"bench-director-password"}' \
        "http://$CLIENTELE_LISTEN/v1/auth/token" | perl -MJSON::PP -0ne 'print decode_json($_)->{access_token}'
}

# capture NAME PATH [value=variable ...]: sends GET PATH once (the answer in $TMP/NAME.json) and
# builds the pgbench reference from the statements it ran.
capture() {
    local name=$1 path=$2 off
    shift 2
    off=$(stat -c %s "$PGLOG")
    curl -fsS -o "$TMP/$name.json" -H "Authorization: Bearer $TOKEN" "http://$CLIENTELE_LISTEN$path"
    # No wait needed: a backend writes the entry (to the file, no collector) before it executes.
    tail -c +"$((off + 1))" "$PGLOG" >"$TMP/$name.log"
    echo "bench: GET $path runs:" >&2
    perl "$TMP/replay.pl" "$TMP/$name.log" "$TMP/$name" "$@"
}

"${PSQL[@]}" -c "ALTER ROLE clientele IN DATABASE clientele SET log_statement = 'all'"
start_api
TOKEN=$(login)
PROBE_ID=$((MAXID - 17)) # any customer; its id must be bound to exactly one parameter
echo "\\set id random($MINID, $MAXID)" >"$TMP/byid_api.head"
capture byid_api "/v1/customers/$PROBE_ID" "$PROBE_ID=id"
LIST_PATH="/v1/customers?owner_id=$OWNER&sort=-updated_at"
SEG_PATH="/v1/customers?owner_id=$OWNER&segment=$SEGMENT&sort=-updated_at"
rm -f "$TMP/list_api.head" "$TMP/segment_api.head"
capture list_api "$LIST_PATH"
capture segment_api "$SEG_PATH"
stop_api
"${PSQL[@]}" -c "ALTER ROLE clientele IN DATABASE clientele RESET log_statement"

printf '\\set id random(%s, %s)\nSELECT row_to_json(c) FROM customers c WHERE id = :id;\n' "$MINID" "$MAXID" \
    >"$TMP/byid_bare.sql"
echo prepared >"$TMP/byid_bare.mode"
: >"$TMP/byid_bare.vars"

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
for f in byid_api list_api segment_api; do
    n=$(items "$TMP/$f.json")
    read_defs "$f"
    out=$("${PGBENCH[@]}" -M "$(cat "$TMP/$f.mode")" -t 1 -D "id=$PROBE_ID" "${DEFS[@]}" -f "$TMP/$f.check" \
        clientele 2>&1) ||
        { echo "bench: $f: the reference fails under pgbench; no figures" >&2; echo "$out" >&2; exit 1; }
    rows=$(echo "$out" | sed -n 's/.*debug(.*): int \([0-9]*\).*/\1/p' | tail -n 1)
    echo "bench: $f: the API answered $n record(s); its statements return ${rows:-no} row(s) under pgbench"
    if [ "$n" -eq 0 ] || [ "${rows:-0}" -lt "$n" ]; then
        echo "bench: $f: the reference does not read what the API answered; no figures" >&2
        exit 1
    fi
done

# --- 2. measurements --------------------------------------------------------------------------------

start_api

# A Lua request function for wrk; ids, when asked for, are random customer ids.
cat >"$TMP/healthz.lua" <<LUA
request = function()
    return wrk.format("GET", "/healthz", {["Authorization"] = "Bearer $TOKEN"})
end
LUA
cat >"$TMP/byid.lua" <<LUA
math.randomseed(42)
request = function()
    return wrk.format("GET", "/v1/customers/" .. math.random($MINID, $MAXID), {["Authorization"] = "Bearer $TOKEN"})
end
LUA
for f in list segment; do
    p=$LIST_PATH
    [ $f = segment ] && p=$SEG_PATH
    cat >"$TMP/$f.lua" <<LUA
request = function()
    return wrk.format("GET", "$p", {["Authorization"] = "Bearer $TOKEN"})
end
LUA
done

WRK_THREADS=$((CLIENTS < 2 ? 1 : 2))
RPS='' P99='' RSS=''
run_wrk() { # lua file; sets RPS, P99, RSS
    local out non2xx errors
    out=$(wrk -t"$WRK_THREADS" -c"$CLIENTS" -d"${DURATION}s" --latency -s "$1" "http://$CLIENTELE_LISTEN" 2>&1)
    RPS=$(echo "$out" | awk '/Requests\/sec/ {printf "%.0f", $2}')
    P99=$(echo "$out" | awk '$1 == "99%" {print $2}')
    non2xx=$(echo "$out" | awk '/Non-2xx/ {print $5}')
    errors=$(echo "$out" | awk '/Socket errors/ {print}')
    RSS=$(ps -o rss= -p "$API_PID" | tr -d ' ')
    if [ -n "$non2xx" ] || [ -n "$errors" ] || [ -z "$RPS" ]; then
        echo "bench: wrk with $1: ${non2xx:-0} non-2xx answers ${errors:-}; no figures" >&2
        echo "$out" >&2
        exit 1
    fi
}

TPS='' PGMODE=''
run_pgbench() { # reference name ($TMP/NAME.{sql,vars,mode}); sets TPS and PGMODE
    local name=$1 out
    read_defs "$name"
    PGMODE=$(cat "$TMP/$name.mode")
    if ! out=$("${PGBENCH[@]}" -M "$PGMODE" -c "$CLIENTS" -j "$WRK_THREADS" -T "$DURATION" "${DEFS[@]}" \
        -f "$TMP/$name.sql" clientele 2>&1) || echo "$out" | grep -q '^number of failed transactions: [1-9]'; then
        echo "bench: pgbench on $name failed; no figures" >&2
        echo "$out" >&2
        exit 1
    fi
    TPS=$(echo "$out" | awk '/^tps/ {printf "%.0f", $3; exit}')
}

# The reference line under an API figure.
statement_line() {
    printf '%-68s %8s tx/s  | API/statement %s\n' "  the API's statement, pgbench -M $PGMODE" "$TPS" "$(ratio "$API_RPS" "$TPS")"
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

echo "bench: $(nproc) cores, $CUSTOMERS customers, $CLIENTS clients (wrk -t$WRK_THREADS, pgbench -j$WRK_THREADS)," \
    "${DURATION}s per figure"
run_wrk "$TMP/healthz.lua"
CEILING=$RPS
printf '%-68s %8s req/s (p99 %s)\n' "wrk on GET /healthz (the load generator's ceiling)" "$CEILING" "$P99"

run_wrk "$TMP/byid.lua"
printf '%-68s %8s req/s (p99 %s, RSS %s KiB, %s of the ceiling)\n' "GET /v1/customers/{id}: API" "$RPS" "$P99" "$RSS" \
    "$(ratio "$RPS" "$CEILING")"
API_RPS=$RPS
run_pgbench byid_bare
printf '%-68s %8s tx/s  | API/bare %s\n' "  bare read by id, pgbench -M $PGMODE" "$TPS" "$(ratio "$API_RPS" "$TPS")"
run_pgbench byid_api
statement_line

for f in list segment; do
    label="GET /v1/customers?owner_id&sort=-updated_at: API"
    [ $f = segment ] && label="GET /v1/customers?owner_id&segment=$SEGMENT&sort=-updated_at: API"
    run_wrk "$TMP/$f.lua"
    printf '%-68s %8s req/s (p99 %s, RSS %s KiB)\n' "$label" "$RPS" "$P99" "$RSS"
    API_RPS=$RPS
    run_pgbench "${f}_api"
    statement_line
done
echo "bench: done in $(($(date +%s) - T0)) s"
