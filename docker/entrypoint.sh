#!/bin/sh
# docker/entrypoint.sh - runs one of the Clientele processes in a container.
set -e
case "${1:-api}" in
api) shift; exec clientele-api "$@" ;;
worker) shift; exec clientele-worker "$@" ;;
migrate) exec clientele-api migrate /usr/share/clientele/schema ;;
*) exec "$@" ;;
esac
