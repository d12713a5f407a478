#!/usr/bin/env bash
# scripts/stack.sh - a private PostgreSQL cluster and Redis server on loopback.
#
# Usage: scripts/stack.sh start|stop|pg-start|pg-stop|pg-restart|redis-start|redis-stop|
#                         pgbouncer-start|pgbouncer-stop|psql|env
# Configured by STACK_DIR (data folder, git-ignored), STACK_PG_PORT, STACK_REDIS_PORT and
# STACK_PGBOUNCER_PORT (default: the PostgreSQL port + 1).
# PostgreSQL refuses to run as root, so the cluster runs as the postgres user; so does the
# optional PgBouncer (only the tests start it; `stop` stops it too).
set -euo pipefail

STACK_DIR=${STACK_DIR:-.run}
PG_PORT=${STACK_PG_PORT:-55432}
REDIS_PORT=${STACK_REDIS_PORT:-56379}
PGB_PORT=${STACK_PGBOUNCER_PORT:-$((PG_PORT + 1))}
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

# The API's and the worker's roles (schema/0016, 0018) log in with their passwords, as in
# production; every other role keeps trust on this private loopback cluster. Added to clusters
# made before too; HBA_CHANGED=1 when the file changed.
HBA_CHANGED=0
ensure_hba() {
    local hba="$PGDATA/pg_hba.conf"
    grep -q '^host all clientele_api,clientele_worker ' "$hba" && return 0
    {
        echo "# scripts/stack.sh: the services' roles log in with a password"
        echo "host all clientele_api,clientele_worker 127.0.0.1/32 scram-sha-256"
        echo "host all clientele_api,clientele_worker ::1/128 scram-sha-256"
        echo "local all clientele_api,clientele_worker scram-sha-256"
        cat "$hba"
    } >"$DIR/pg_hba.conf.new"
    cat "$DIR/pg_hba.conf.new" >"$hba" # in place: the file keeps its owner and mode
    rm -f "$DIR/pg_hba.conf.new"
    HBA_CHANGED=1
}

pg_init() {
    ensure_traversable
    [ -f "$PGDATA/PG_VERSION" ] && { ensure_hba; return 0; }
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
    ensure_hba
}

pg_start() {
    pg_init
    if as_pg "$PG_BIN/pg_ctl" -D "$PGDATA" status >/dev/null 2>&1; then
        [ $HBA_CHANGED = 0 ] || as_pg "$PG_BIN/pg_ctl" -D "$PGDATA" reload >/dev/null
        return 0
    fi
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

# PgBouncer in front of the cluster, as the README's "Scaling out" section configures it for
# Debian 12's PgBouncer 1.18: session pooling for every database (`*`), the `options` start-up
# parameter ignored (1.18 refuses it otherwise), DISCARD ALL when a server connection changes
# client. One extra alias, clientele_transaction, pools the `clientele` database in transaction
# mode over a single server connection: the tests use it to show why the API must not use it.
PGB_DIR="$DIR/pgbouncer"
# A process that exited but was not reaped yet (a zombie) counts as gone.
alive() { kill -0 "$1" 2>/dev/null && [ "$(ps -o stat= -p "$1" 2>/dev/null | cut -c1)" != Z ]; }
pgb_running() { [ -f "$PGB_DIR/pgbouncer.pid" ] && alive "$(cat "$PGB_DIR/pgbouncer.pid")"; }

pgbouncer_start() {
    command -v pgbouncer >/dev/null || { echo "stack: pgbouncer is not installed (scripts/deps.sh)" >&2; exit 1; }
    pgb_running && return 0
    ensure_traversable
    mkdir -p "$PGB_DIR"
    cat >"$PGB_DIR/pgbouncer.ini" <<CONF
[databases]
clientele_transaction = host=127.0.0.1 port=$PG_PORT dbname=clientele pool_mode=transaction pool_size=1
* = host=127.0.0.1 port=$PG_PORT

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $PGB_PORT
unix_socket_dir =
auth_type = trust
auth_file = $PGB_DIR/userlist.txt
pool_mode = session
ignore_startup_parameters = options
server_reset_query = DISCARD ALL
admin_users = postgres
default_pool_size = 60
max_client_conn = 300
logfile = $PGB_DIR/pgbouncer.log
pidfile = $PGB_DIR/pgbouncer.pid
CONF
    printf '"clientele" ""\n"postgres" ""\n' >"$PGB_DIR/userlist.txt"
    [ "$(id -u)" = 0 ] && chown -R postgres:postgres "$PGB_DIR"
    rm -f "$PGB_DIR/pgbouncer.pid"
    as_pg pgbouncer -d -q "$PGB_DIR/pgbouncer.ini" || { tail -n 20 "$PGB_DIR/pgbouncer.log" >&2; exit 1; }
    for _ in $(seq 1 100); do
        psql -X -q -h 127.0.0.1 -p "$PGB_PORT" -U clientele -d clientele -c "SELECT 1" >/dev/null 2>&1 && return 0
        sleep 0.05
    done
    echo "stack: pgbouncer did not start; see $PGB_DIR/pgbouncer.log" >&2
    exit 1
}

pgbouncer_stop() {
    pgb_running || return 0
    local pid
    pid=$(cat "$PGB_DIR/pgbouncer.pid")
    kill -TERM "$pid" 2>/dev/null || true # SIGTERM: immediate shutdown (SIGINT would wait for clients)
    for _ in $(seq 1 100); do
        alive "$pid" || { rm -f "$PGB_DIR/pgbouncer.pid"; return 0; }
        sleep 0.05
    done
    echo "stack: pgbouncer (pid $pid) did not stop" >&2
    return 1
}

case "${1:-}" in
start) pg_start; redis_start ;;
stop) pgbouncer_stop || true; redis_stop; pg_stop ;;
pg-start) pg_start ;;
pg-stop) pg_stop ;;
pg-restart) pg_stop; pg_start ;;
redis-start) redis_start ;;
redis-stop) redis_stop ;;
pgbouncer-start) pgbouncer_start ;;
pgbouncer-stop) pgbouncer_stop ;;
psql) shift; psql_admin "$@" ;;
env)
    echo "CLIENTELE_DATABASE_URL=postgresql://clientele@127.0.0.1:$PG_PORT/clientele"
    echo "CLIENTELE_REDIS_URL=redis://127.0.0.1:$REDIS_PORT/0"
    ;;
*)
    echo "usage: $0 start|stop|pg-start|pg-stop|pg-restart|redis-start|redis-stop|pgbouncer-start|pgbouncer-stop|psql|env" >&2
    exit 2
    ;;
esac
