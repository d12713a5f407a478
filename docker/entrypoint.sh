#!/bin/sh
# docker/entrypoint.sh - runs one of the Clientele processes in a container, or checks its health.
#
#   api | worker | migrate     the process (extra arguments go to it)
#   health                     the image's HEALTHCHECK: /readyz of the process this container runs
set -e

# host:port of a listen address, as a client on this host reaches it.
reachable() {
    case "$1" in
    0.0.0.0:*) echo "127.0.0.1:${1#0.0.0.0:}" ;;
    "[::]:"*) echo "[::1]:${1#\[::\]:}" ;;
    *) echo "$1" ;;
    esac
}

case "${1:-api}" in
api) shift; exec clientele-api "$@" ;;
worker) shift; exec clientele-worker "$@" ;;
migrate) exec clientele-api migrate /usr/share/clientele/schema ;;
health)
    # Which process is PID 1 decides whose readiness to ask.
    cmd=$(tr '\0' ' ' </proc/1/cmdline)
    scheme=http
    case "$cmd" in
    *clientele-worker*)
        addr=${CLIENTELE_WORKER_LISTEN-127.0.0.1:8081}
        # The worker's listener is off: nothing to ask, the process being alive is all there is.
        [ -n "$addr" ] || exit 0
        ;;
    *"clientele-api migrate"*) exit 0 ;;
    *)
        addr=${CLIENTELE_LISTEN:-127.0.0.1:8080}
        [ -n "${CLIENTELE_TLS_CERT:-}" ] && scheme=https
        ;;
    esac
    # --insecure: the certificate names the public host, not this loopback address.
    exec curl --fail --silent --show-error --insecure --max-time 4 --output /dev/null "$scheme://$(reachable "$addr")/readyz"
    ;;
*) exec "$@" ;;
esac
