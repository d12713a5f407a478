#!/usr/bin/env bash
# scripts/test-tsclient.sh - the TypeScript client's checks, one step of `make test`.
#
# 1. The generated types (clients/typescript/src/schema.d.ts) are what the spec gives now
#    (`make clients-check`, which also installs the client's pinned Node packages).
# 2. The client and its test type-check: tsc --noEmit --strict.
# 3. Its Node test (node --test, TypeScript through tsx) passes against a live clientele-api
#    and clientele-worker, started here on a database of their own cloned from the migrated
#    template, a Redis database emptied first, and one admin user.
# Both processes are stopped at the end; either one exiting with anything but 0 (a sanitizer
# report) fails the step. Expects what scripts/test.sh exports: STACK_DIR, STACK_PG_PORT,
# STACK_REDIS_PORT (the running stack) and CLIENTELE_TEST_BUILD.
set -euo pipefail
cd "$(dirname "$0")/.."

STACK_DIR=${STACK_DIR:-.test}
BUILD=${CLIENTELE_TEST_BUILD:-build/asan}
PG_PORT=${STACK_PG_PORT:-55532}
REDIS_PORT=${STACK_REDIS_PORT:-56479}
# Every Redis database number has a suite; they run one after the other, and this one is emptied first.
REDIS_DB=${CLIENTELE_TSCLIENT_REDIS_DB:-14}
DB=clientele_test_tsclient
TS=clients/typescript
LOGS=$STACK_DIR/logs
mkdir -p "$LOGS"

echo "tsclient: generated types are current"
make --no-print-directory clients-check
echo "tsclient: tsc --noEmit --strict"
(cd "$TS" && node_modules/.bin/tsc --noEmit --strict -p .)

PGOPTIONS=--client-min-messages=warning scripts/stack.sh psql -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null
scripts/stack.sh psql -c "CREATE DATABASE $DB TEMPLATE clientele_template OWNER clientele" >/dev/null
redis-cli -h 127.0.0.1 -p "$REDIS_PORT" -n "$REDIS_DB" flushdb >/dev/null
export CLIENTELE_DATABASE_URL="postgresql://clientele@127.0.0.1:$PG_PORT/$DB"
export CLIENTELE_REDIS_URL="redis://127.0.0.1:$REDIS_PORT/$REDIS_DB"
export CLIENTELE_STORAGE_DIR="$STACK_DIR/storage/$DB"

EMAIL=admin@tsclient.test
PASSWORD=tsclient-test-password
printf '%s\n' "$PASSWORD" | "$BUILD/clientele-api" user-add "$EMAIL" "TypeScript Client" admin >/dev/null

free_port() {
    node -e 'const s = require("net").createServer().listen(0, "127.0.0.1", () => {
        console.log(s.address().port);
        s.close();
    });'
}
API_PORT=$(free_port)
WORKER_PORT=$(free_port)
API_LOG=$LOGS/tsclient-api.log
WORKER_LOG=$LOGS/tsclient-worker.log

api_pid=
worker_pid=
# Stops one child with SIGTERM (SIGKILL after 20 s) and leaves its exit status in $stopped.
stopped=
stop() {
    local pid=$1
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 200); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    stopped=0
    wait "$pid" || stopped=$?
}
cleanup() {
    [ -z "$api_pid" ] || stop "$api_pid"
    [ -z "$worker_pid" ] || stop "$worker_pid"
}
trap cleanup EXIT

CLIENTELE_LISTEN=127.0.0.1:$API_PORT CLIENTELE_THREADS=2 \
    CLIENTELE_JWT_SECRET=tsclient-test-secret-0123456789abcdefghij \
    "$BUILD/clientele-api" >"$API_LOG" 2>&1 &
api_pid=$!
# CLIENTELE_WORKER_LISTEN: the worker's own health and metrics port, where it has one.
CLIENTELE_WORKER_NAME=tsclient CLIENTELE_WORKER_LISTEN=127.0.0.1:$WORKER_PORT \
    "$BUILD/clientele-worker" >"$WORKER_LOG" 2>&1 &
worker_pid=$!

# Ready: the API answers /readyz (PostgreSQL and Redis reachable) and the worker reads the runs stream.
deadline=$((SECONDS + 30))
until curl -fsS -o /dev/null "http://127.0.0.1:$API_PORT/readyz" 2>/dev/null &&
    grep -q '"consuming clientele:runs' "$WORKER_LOG"; do
    for p in "$api_pid:$API_LOG" "$worker_pid:$WORKER_LOG"; do
        kill -0 "${p%%:*}" 2>/dev/null || { echo "tsclient: a process exited during start-up; see ${p#*:}" >&2; exit 1; }
    done
    [ $SECONDS -lt $deadline ] || { echo "tsclient: not ready within 30 s; see $API_LOG and $WORKER_LOG" >&2; exit 1; }
    sleep 0.05
done

echo "tsclient: node --test against http://127.0.0.1:$API_PORT"
rc=0
(cd "$TS" && CLIENTELE_TEST_URL="http://127.0.0.1:$API_PORT" CLIENTELE_TEST_EMAIL="$EMAIL" \
    CLIENTELE_TEST_PASSWORD="$PASSWORD" node --import tsx --test --test-reporter=spec test/*.test.ts) || rc=1

stop "$api_pid"
api_pid=
[ "$stopped" = 0 ] || { echo "tsclient: clientele-api exited with $stopped; see $API_LOG" >&2; rc=1; }
stop "$worker_pid"
worker_pid=
[ "$stopped" = 0 ] || { echo "tsclient: clientele-worker exited with $stopped; see $WORKER_LOG" >&2; rc=1; }
echo "tsclient: the API and the worker stopped cleanly"
exit $rc
