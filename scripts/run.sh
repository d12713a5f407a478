#!/usr/bin/env bash
# scripts/run.sh - `make run`: the whole service on this machine, until Ctrl-C.
#
# Installs what is missing, builds, starts PostgreSQL and Redis under .run/ (kept
# between runs), migrates, loads the demo data once, then runs the API and the worker.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/deps.sh
make -j"$(nproc 2>/dev/null || echo 2)"

export STACK_DIR=${CLIENTELE_RUN_DIR:-.run}
export STACK_PG_PORT=${CLIENTELE_RUN_PG_PORT:-55432}
export STACK_REDIS_PORT=${CLIENTELE_RUN_REDIS_PORT:-56379}
scripts/stack.sh start
# The owner's URL migrates and loads the demo data; the API and the worker log in as their own
# roles (schema/0018) with a password made once and kept with the run data. A URL given in
# CLIENTELE_DATABASE_URL serves every process instead (its sessions SET ROLE to the roles).
own_url=${CLIENTELE_DATABASE_URL:-}
export CLIENTELE_DATABASE_URL=${CLIENTELE_DATABASE_URL:-postgresql://clientele@127.0.0.1:$STACK_PG_PORT/clientele}
export CLIENTELE_REDIS_URL=${CLIENTELE_REDIS_URL:-redis://127.0.0.1:$STACK_REDIS_PORT/0}
export CLIENTELE_LISTEN=${CLIENTELE_LISTEN:-127.0.0.1:8080}
export CLIENTELE_WORKER_LISTEN=${CLIENTELE_WORKER_LISTEN-127.0.0.1:8081}
# Attachment contents, kept with the run data (git-ignored).
export CLIENTELE_STORAGE_DIR=${CLIENTELE_STORAGE_DIR:-$STACK_DIR/storage}
# Backups (daily at CLIENTELE_BACKUP_AT, and clientele-admin backup), kept with the run data.
export CLIENTELE_BACKUP_DIR=${CLIENTELE_BACKUP_DIR:-$STACK_DIR/backups}
if [ -z "${CLIENTELE_JWT_SECRET:-}" ]; then
    # A per-checkout secret, made once and kept with the run data.
    [ -s "$STACK_DIR/jwt_secret" ] || head -c 48 /dev/urandom | base64 | tr -d '\n/+=' >"$STACK_DIR/jwt_secret"
    CLIENTELE_JWT_SECRET=$(cat "$STACK_DIR/jwt_secret")
    export CLIENTELE_JWT_SECRET
fi

build/clientele-api migrate
if [ -x scripts/demo.sh ]; then
    scripts/demo.sh
fi
api_url=$CLIENTELE_DATABASE_URL
worker_url=$CLIENTELE_DATABASE_URL
roles_note=""
if [ -z "$own_url" ]; then
    [ -s "$STACK_DIR/db_password" ] || head -c 24 /dev/urandom | base64 | tr -d '\n/+=' >"$STACK_DIR/db_password"
    chmod 600 "$STACK_DIR/db_password"
    db_password=$(cat "$STACK_DIR/db_password")
    for role in clientele_api clientele_worker; do
        printf '%s\n' "$db_password" | build/clientele-admin role-password "$role" >/dev/null
    done
    roles_note="
              (the owner; the API and the worker log in as clientele_api and clientele_worker,
              their password in $STACK_DIR/db_password)"
    api_url="postgresql://clientele_api:$db_password@127.0.0.1:$STACK_PG_PORT/clientele"
    worker_url="postgresql://clientele_worker:$db_password@127.0.0.1:$STACK_PG_PORT/clientele"
fi

pids=()
stop_all() {
    trap - INT TERM EXIT
    echo
    echo "run: stopping"
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    scripts/stack.sh stop
}
trap stop_all INT TERM EXIT

CLIENTELE_DATABASE_URL=$api_url build/clientele-api &
pids+=($!)
CLIENTELE_DATABASE_URL=$worker_url build/clientele-worker &
pids+=($!)

for _ in $(seq 1 100); do
    curl -fsS "http://$CLIENTELE_LISTEN/readyz" >/dev/null 2>&1 && break
    sleep 0.1
done
worker_ops=off
[ -n "$CLIENTELE_WORKER_LISTEN" ] && worker_ops="http://$CLIENTELE_WORKER_LISTEN/readyz and /metrics"
cat <<MSG

  Clientele is running at http://$CLIENTELE_LISTEN   (spec: http://$CLIENTELE_LISTEN/openapi.yaml)
  API reference: http://$CLIENTELE_LISTEN/docs
  Worker health and metrics: $worker_ops
  PostgreSQL: $CLIENTELE_DATABASE_URL$roles_note
  Backups:    $CLIENTELE_BACKUP_DIR (build/clientele-admin backup|verify|restore)
  Redis:      $CLIENTELE_REDIS_URL
  Press Ctrl-C to stop everything.

MSG
if [ -s "$STACK_DIR/demo_logins.txt" ]; then
    echo "  Demo logins (DEMO CREDENTIALS: for this local run only, never for a real deployment):"
    sed 's/^/    /' "$STACK_DIR/demo_logins.txt"
    echo
fi
# Runs until Ctrl-C (or until the API or the worker exits on its own).
while kill -0 "${pids[@]}" 2>/dev/null; do sleep 0.5; done
