#!/usr/bin/env bash
# scripts/deps.sh - installs the Debian packages Clientele needs, only those missing.
#   scripts/deps.sh         everything `make run` and `make test` need
#   scripts/deps.sh build   only what `make` needs (the image's build stage, docker/Dockerfile)
set -euo pipefail

BUILD_PACKAGES=(
    gcc make pkg-config libc6-dev
    libh2o-evloop-dev libjansson-dev libpq-dev libhiredis-dev libjwt-dev libargon2-dev libyaml-dev libssl-dev
)
PACKAGES=(
    "${BUILD_PACKAGES[@]}"
    check libsubunit-dev
    postgresql postgresql-contrib redis-server redis-tools pgbouncer
    curl openssl procps tzdata ca-certificates
    postgresql-client # pg_dump and pg_restore for backups (clientele-admin, the worker)
)
[ "${CLIENTELE_BENCH_DEPS:-0}" = 1 ] && PACKAGES+=(wrk)
# Node.js and npm: the spec's tooling (openapi/package.json: its linter, the /docs page, the browser
# test) and the TypeScript client (clients/typescript) need Node.js 20 and npm, and the browser test
# Debian's Chromium (driven by playwright-core, which never downloads a browser of its own). A
# machine's own Node.js (with its npm) is used when it has one: Debian's npm package cannot be
# installed beside a Node.js that bundles npm.
PACKAGES+=(chromium)
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    PACKAGES+=(nodejs npm)
fi
# make test checks docker/compose.yaml (docker-compose config, offline) and lints docker/Dockerfile
# (dockerfilelint from npm, installed by make test with npm ci).
PACKAGES+=(docker-compose)
# The image's build stage: what `make` needs, npm included (it installs the /docs page's files).
if [ "${1:-}" = build ]; then
    PACKAGES=("${BUILD_PACKAGES[@]}")
    if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
        PACKAGES+=(nodejs npm)
    fi
fi

missing=()
for p in "${PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$p")
    fi
done
if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi
if [ "$(id -u)" != 0 ]; then
    echo "deps: missing packages (${missing[*]}); run as root or install them" >&2
    exit 1
fi
echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# The postgresql package would start a system-wide cluster on 5432; we run our own.
mkdir -p /etc/postgresql-common
if [ ! -f /etc/postgresql-common/createcluster.conf ] || ! grep -q '^create_main_cluster' /etc/postgresql-common/createcluster.conf; then
    echo "create_main_cluster = false" >> /etc/postgresql-common/createcluster.conf
fi
# The pgbouncer package would start a system-wide PgBouncer (port 6432) and enable it at boot;
# the tests run their own instance (scripts/stack.sh pgbouncer-start), so keep the service off.
new_pgbouncer=0
case " ${missing[*]} " in *" pgbouncer "*) new_pgbouncer=1 ;; esac
if [ $new_pgbouncer = 1 ] && [ ! -e /usr/sbin/policy-rc.d ]; then
    # policy-rc.d (invoke-rc.d's hook) gets the service name among its arguments; 101 = "do not start".
    printf '#!/bin/sh\nfor a in "$@"; do [ "$a" = pgbouncer ] && exit 101; done\nexit 0\n' >/usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
if [ $new_pgbouncer = 1 ]; then
    update-rc.d pgbouncer disable >/dev/null 2>&1 || true # also removes systemd's boot-time link
fi
