#!/usr/bin/env bash
# scripts/test.sh - `make test`: set up everything, build with ASan/UBSan, run every test.
#
# Uses its own throwaway stack under .test/ on its own ports (never make run's .run/),
# migrates a template database that each integration suite clones, runs the unit
# tests then the integration tests, prints a summary and stops what it started.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/deps.sh

export STACK_DIR=${CLIENTELE_TEST_DIR:-.test}
export STACK_PG_PORT=${CLIENTELE_TEST_PG_PORT:-55532}
export STACK_REDIS_PORT=${CLIENTELE_TEST_REDIS_PORT:-56479}
export STACK_PGBOUNCER_PORT=${CLIENTELE_TEST_PGBOUNCER_PORT:-$((STACK_PG_PORT + 1))}
export STACK_PG_FSYNC=off STACK_PG_SYNC_COMMIT=off
export CLIENTELE_TEST_BUILD=build/asan
# The file store of an API started outside the harness; the harness gives each suite its own under storage/.
export CLIENTELE_STORAGE_DIR=${CLIENTELE_STORAGE_DIR:-$STACK_DIR/storage/default}
export CLIENTELE_SHARED_DIR=${CLIENTELE_SHARED_DIR:-../shared}
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=0:detect_leaks=1:exitcode=86}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1:exitcode=87}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$PWD/tests/support/lsan.supp:print_suppressions=0}
export CK_DEFAULT_TIMEOUT=${CK_DEFAULT_TIMEOUT:-60}

jobs=$(nproc 2>/dev/null || echo 2)
make -j"$jobs" SAN=1 unit-build

scripts/stack.sh stop >/dev/null 2>&1 || true
rm -rf "$STACK_DIR"
cleanup() { scripts/stack.sh stop >/dev/null 2>&1 || true; }
trap cleanup EXIT
scripts/stack.sh start
scripts/stack.sh psql -c "CREATE DATABASE clientele_template OWNER clientele" >/dev/null
CLIENTELE_DATABASE_URL="postgresql://clientele@127.0.0.1:$STACK_PG_PORT/clientele_template" \
    build/asan/clientele-api migrate
# The API and the worker log in as their own roles (schema/0018) with a password made for this
# run; the harness gives it to the processes it starts (tests/support/harness.c, th_db_url_as).
CLIENTELE_TEST_DB_PASSWORD=$(head -c 24 /dev/urandom | base64 | tr -d '\n/+=')
export CLIENTELE_TEST_DB_PASSWORD
for role in clientele_api clientele_worker; do
    printf '%s\n' "$CLIENTELE_TEST_DB_PASSWORD" |
        CLIENTELE_DATABASE_URL="postgresql://clientele@127.0.0.1:$STACK_PG_PORT/clientele_template" \
            build/asan/clientele-admin role-password "$role" >/dev/null
done
mkdir -p "$STACK_DIR/logs"

passed=0
failed=0
failed_names=()
selected() {
    [ $# -eq 1 ] && return 0
    local name=$1 want
    shift
    for want in "$@"; do
        case "$name" in *"$want"*) return 0 ;; esac
    done
    return 1
}
run_suite() {
    local bin=$1 name
    name=${bin#build/asan/tests/}
    shift
    selected "$name" "$@" || return 0
    echo "== $name"
    local log="$STACK_DIR/logs/$(echo "$name" | tr / _).out"
    if "$bin" >"$log" 2>&1; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
        failed_names+=("$name")
    fi
    # Check prints "NN%: Checks: N, Failures: N, Errors: N" and each failure.
    grep -E "^[0-9]+%: Checks|:[EF]:|ERROR|runtime error|Sanitizer" "$log" || tail -n 20 "$log"
}
for bin in $(find build/asan/tests/unit -type f -name '*_test' | sort); do run_suite "$bin" "$@"; done
for bin in $(find build/asan/tests/integration -type f -name '*_test' | sort); do run_suite "$bin" "$@"; done

echo
if [ $failed -gt 0 ]; then
    echo "failed suites: ${failed_names[*]} (logs in $STACK_DIR/logs)"
fi
echo "suites: $passed passed, $failed failed"
[ $failed -eq 0 ]
