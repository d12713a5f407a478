#!/usr/bin/env bash
# scripts/stack.sh - a private PostgreSQL cluster and Redis server on loopback.
#
# Usage: scripts/stack.sh start|stop|pg-start|pg-stop|pg-restart|redis-start|redis-stop|status|env
# Configured by STACK_DIR (data folder, git-ignored), STACK_PG_PORT and STACK_REDIS_PORT.
# PostgreSQL refuses to run as root, so the cluster runs as the postgres user.
set -euo pipefail

STACK_DIR=${STACK_DIR:-.run}
PG_PORT=${STACK_PG_PORT:-55432}
REDIS_PORT=${STACK_REDIS_PORT:-56379}
PG_BIN=${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)}
mkdir -p "$STACK_DIR"
DIR=$(cd "$STACK_DIR" && pwd)
PGDATA="$DIR/pg"
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

# The postgres user must be able to reach the data folder: a checkout under a private
# home directory (mode 700) would lock it out, so grant traversal (o+x) where needed.
ensure_traversable() {
    [ "$(id -u)" = 0 ] || return 0
    local d=$DIR
    while [ "$d" != "/" ]; do
        runuser -u postgres -- test -x "$d" 2>/dev/null || chmod o+x "$d"
        d=$(dirname "$d")
    done
}

pg_init() {
    ensure_traversable
    [ -f "$PGDATA/PG_VERSION" ] && return 0
    mkdir -p "$PGDATA" "$DIR/pg-socket"
    [ "$(id -u)" = 0 ] && chown postgres:postgres "$PGDATA" "$DIR/pg-socket" && chmod 700 "$PGDATA"
    as_pg "$PG_BIN/initdb" -D "$PGDATA" -U postgres --auth=trust --encoding=UTF8 --locale=C.UTF-8 >"$DIR/initdb.log" 2>&1 ||
        { cat "$DIR/initdb.log" >&2; exit 1; }
    cat >>"$PGDATA/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$DIR/pg-socket'
max_connections = 200
track_activity_query_size = 32768
shared_buffers = 256MB
fsync = ${STACK_PG_FSYNC:-on}
synchronous_commit = ${STACK_PG_SYNC_COMMIT:-on}
CONF
}

pg_start() {
    pg_init
    if as_pg "$PG_BIN/pg_ctl" -D "$PGDATA" status >/dev/null 2>&1; then return 0; fi
    [ "$(id -u)" = 0 ] && chown postgres:postgres "$DIR" 2>/dev/null || true
    as_pg "$PG_BIN/pg_ctl" -D "$PGDATA" -l "$DIR/postgres.log" -w -t 60 -o "-p $PG_PORT" start >/dev/null ||
        { tail -n 20 "$DIR/postgres.log" >&2; exit 1; }
    psql_admin -tc "SELECT 1 FROM pg_roles WHERE rolname = 'clientele'" | grep -q 1 ||
        psql_admin -c "CREATE ROLE clientele LOGIN SUPERUSER" >/dev/null
    psql_admin -tc "SELECT 1 FROM pg_database WHERE datname = 'clientele'" | grep -q 1 ||
        psql_admin -c "CREATE DATABASE clientele OWNER clientele" >/dev/null
}

pg_stop() {
    [ -f "$PGDATA/PG_VERSION" ] || return 0
    as_pg "$PG_BIN/pg_ctl" -D "$PGDATA" -m fast -w stop >/dev/null 2>&1 || true
}

psql_admin() { psql -X -q -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 "$@"; }

redis_start() {
    mkdir -p "$DIR/redis"
    if redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping >/dev/null 2>&1; then return 0; fi
    redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --dir "$DIR/redis" --appendonly yes \
        --daemonize yes --pidfile "$DIR/redis/redis.pid" --logfile "$DIR/redis/redis.log" --save "" >/dev/null
    for _ in $(seq 1 100); do
        redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping >/dev/null 2>&1 && return 0
        sleep 0.05
    done
    echo "stack: redis did not start; see $DIR/redis/redis.log" >&2
    exit 1
}

redis_stop() {
    redis-cli -h 127.0.0.1 -p "$REDIS_PORT" shutdown >/dev/null 2>&1 || true
    for _ in $(seq 1 100); do
        redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping >/dev/null 2>&1 || return 0
        sleep 0.05
    done
}

case "${1:-}" in
start) pg_start; redis_start ;;
stop) redis_stop; pg_stop ;;
pg-start) pg_start ;;
pg-stop) pg_stop ;;
pg-restart) pg_stop; pg_start ;;
redis-start) redis_start ;;
redis-stop) redis_stop ;;
psql) shift; psql_admin "$@" ;;
env)
    echo "CLIENTELE_DATABASE_URL=postgresql://clientele@127.0.0.1:$PG_PORT/clientele"
    echo "CLIENTELE_REDIS_URL=redis://127.0.0.1:$REDIS_PORT/0"
    ;;
*) echo "usage: $0 start|stop|pg-start|pg-stop|pg-restart|redis-start|redis-stop|psql|env" >&2; exit 2 ;;
esac
