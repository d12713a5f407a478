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
# A suite that is a command rather than a test binary (run_check NAME COMMAND...), selected by the
# script's arguments (check_args), counted and summarised like the others.
run_check() {
    local name=$1 log
    shift
    selected "$name" "${check_args[@]}" || return 0
    echo "== $name"
    log="$STACK_DIR/logs/$(echo "$name" | tr / _).out"
    if "$@" >"$log" 2>&1; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
        failed_names+=("$name")
    fi
    tail -n 20 "$log"
}
check_args=("$@")
# The spec against openapi/redocly.yaml: no error, no warning, nothing ignored (openapi/lint.mjs).
run_check openapi/lint node openapi/lint.mjs
for bin in $(find build/asan/tests/unit -type f -name '*_test' | sort); do run_suite "$bin" "$@"; done
for bin in $(find build/asan/tests/integration -type f -name '*_test' | sort); do run_suite "$bin" "$@"; done

# The TypeScript client (clients/typescript): generated types current, tsc --noEmit --strict, and its
# Node test against a live API and worker (scripts/test-tsclient.sh). SUITES="tsclient" selects it.
if selected tsclient "$@"; then
    echo "== tsclient"
    log="$STACK_DIR/logs/tsclient.out"
    if scripts/test-tsclient.sh >"$log" 2>&1; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
        failed_names+=(tsclient)
    fi
    grep -E "^(tsclient:|clients:|ℹ (tests|pass|fail) |[✔✖] )|error TS" "$log" || tail -n 20 "$log"
fi

# docker/: images are never built here (no container engine); the compose file must pass Debian's
# `docker-compose config` (it only reads the file) with the services a deployment needs, and the
# Dockerfile dockerfilelint (npm, pinned by docker/package-lock.json, installed into docker/node_modules).
check_compose() {
    local services
    services=$(cd docker && POSTGRES_PASSWORD=check CLIENTELE_JWT_SECRET=check docker-compose -f compose.yaml config -q &&
        POSTGRES_PASSWORD=check CLIENTELE_JWT_SECRET=check docker-compose -f compose.yaml config --services | sort | tr '\n' ' ')
    echo "services: $services"
    [ "$services" = "api migrate postgres redis worker " ]
}
check_dockerfile() {
    if [ ! -x docker/node_modules/.bin/dockerfilelint ] || [ docker/package-lock.json -nt docker/node_modules/.package-lock.json ]; then
        (cd docker && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
    fi
    docker/node_modules/.bin/dockerfilelint docker/Dockerfile
}
run_check docker/compose check_compose
run_check docker/dockerfilelint check_dockerfile

echo
if [ $failed -gt 0 ]; then
    echo "failed suites: ${failed_names[*]} (logs in $STACK_DIR/logs)"
fi
echo "suites: $passed passed, $failed failed"
[ $failed -eq 0 ]
