#!/usr/bin/env bash
# bench/body.sh - does a loop stay responsive while large bodies arrive?
#
# Builds the release binaries, starts a private stack under .bench-body/ and
# one API process with ONE loop thread (so every request shares the loop the
# uploads arrive on), then measures GET /healthz with wrk (1 thread, 4
# connections) for DURATION seconds:
#   1. alone (the reference, same run);
#   2. while 4 clients post 32 MiB bulks to /v1/customers/bulk in a loop
#      (16 million array items: parsed, then refused as too many);
#   3. while 4 clients post valid 5000-item bulks of about 6 MiB in a loop.
# It prints each p99, the ratios to the reference, the worst loop lag the
# watchdog saw (/metrics) and the log lines dropped. Target: p99 under 50 ms
# during the uploads.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10}
export STACK_DIR=${STACK_DIR:-.bench-body} STACK_PG_PORT=${STACK_PG_PORT:-55643} STACK_REDIS_PORT=${STACK_REDIS_PORT:-56590}
PORT=${PORT:-18182}

CLIENTELE_BENCH_DEPS=1 scripts/deps.sh
command -v wrk >/dev/null || { echo "bench: wrk is missing" >&2; exit 1; }
make -s -j"$(nproc)"
scripts/stack.sh start
WORK=$(mktemp -d)
UPLOADERS=()
cleanup() {
    for p in "${UPLOADERS[@]}"; do kill "$p" 2>/dev/null || true; done
    [ -n "${API_PID:-}" ] && kill "$API_PID" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$WORK"
    scripts/stack.sh stop
}
trap cleanup EXIT

export CLIENTELE_DATABASE_URL="postgresql://clientele@127.0.0.1:$STACK_PG_PORT/clientele"
export CLIENTELE_REDIS_URL="redis://127.0.0.1:$STACK_REDIS_PORT/0"
export CLIENTELE_JWT_SECRET=bench-secret-0123456789abcdefghijklmnop
export CLIENTELE_LISTEN=127.0.0.1:$PORT CLIENTELE_LOG_LEVEL=info CLIENTELE_THREADS=1
build/clientele-api migrate >/dev/null 2>&1
PSQL=(psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$STACK_PG_PORT" -U postgres -d clientele)
if ! "${PSQL[@]}" -tAc "SELECT 1 FROM users WHERE email = 'bench.admin@bench.invalid'" | grep -q 1; then
    echo 'bench-admin-password' | build/clientele-api user-add bench.admin@bench.invalid Admin admin >/dev/null
fi

# The bodies: 32 MiB of "[0,0,...]" and a valid bulk of 5000 customers of about 1.2 KB each.
python3 - "$WORK" <<'PY'
import json, sys
d = sys.argv[1]
n = 32 * 1024 * 1024
inner = (b"0," * (n // 2))[: n - 2]
if inner.endswith(b","):
    inner = inner[:-1] + b" "
open(d + "/zeros.json", "wb").write(b"[" + inner + b"]")
items = [{"external_id": "bench-body-%d" % i, "kind": "company", "name": "Bulk %d" % i,
          "tags": ["bench-body"], "attrs": {"pad": "x" * 1000}} for i in range(5000)]
open(d + "/bulk.json", "w").write(json.dumps(items))
PY

build/clientele-api >"$STACK_DIR/api.log" 2>&1 &
API_PID=$!
for _ in $(seq 1 100); do curl -fs "http://$CLIENTELE_LISTEN/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
TOKEN=$(curl -fsS -X POST -H 'Content-Type: application/json' \
    -d '{"email":"bench.admin@bench.invalid","password":"bench-admin-password"}' \
    "http://$CLIENTELE_LISTEN/v1/auth/token" | sed 's/.*"access_token":"\([^"]*\)".*/\1/')

healthz_p99() {
    wrk -t1 -c4 -d"${DURATION}s" --latency "http://$CLIENTELE_LISTEN/healthz" 2>&1 | awk '$1 == "99%" {print $2}'
}
to_ms() { # wrk prints 1.23ms, 456.00us or 1.02s
    awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) n /= 1000; else if (v ~ /ms$/) n += 0; else if (v ~ /s$/) n *= 1000; printf "%.2f", n }'
}
upload_loop() { # file
    while :; do
        curl -s -o /dev/null -X POST -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
            --data-binary "@$1" "http://$CLIENTELE_LISTEN/v1/customers/bulk" || true
    done
}
with_uploads() { # file
    UPLOADERS=()
    for _ in 1 2 3 4; do upload_loop "$1" & UPLOADERS+=($!); done
    sleep 1
    healthz_p99
    for p in "${UPLOADERS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait "${UPLOADERS[@]}" 2>/dev/null || true
    UPLOADERS=()
    sleep 2
}

base=$(to_ms "$(healthz_p99)")
zeros=$(to_ms "$(with_uploads "$WORK/zeros.json")")
bulk=$(to_ms "$(with_uploads "$WORK/bulk.json")")
lag=$(curl -fsS "http://$CLIENTELE_LISTEN/metrics" | awk '/^clientele_loop_lag_max_seconds/ {print $2 * 1000}')
stall=$(curl -fsS "http://$CLIENTELE_LISTEN/metrics" | awk '/^clientele_loop_stall_max_seconds/ {print $2 * 1000}')
dropped=$(curl -fsS "http://$CLIENTELE_LISTEN/metrics" | awk '/^clientele_log_lines_dropped_total/ {print $2}')
echo "GET /healthz p99 alone:                           ${base} ms"
echo "GET /healthz p99, 4 clients posting 32 MiB bulks: ${zeros} ms ($(awk -v a="$zeros" -v b="$base" 'BEGIN{printf "%.1f", a/b}')x; target < 50 ms)"
echo "GET /healthz p99, 4 clients posting 5000-item bulks: ${bulk} ms ($(awk -v a="$bulk" -v b="$base" 'BEGIN{printf "%.1f", a/b}')x)"
echo "worst loop lag seen by the watchdog: ${lag} ms (stall, less CPU waits: ${stall} ms); log lines dropped: ${dropped}"
