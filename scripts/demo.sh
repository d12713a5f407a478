#!/usr/bin/env bash
# scripts/demo.sh - loads the deterministic demo data (scripts/demo.sql) into the
# stack's clientele database once, and writes the demo logins to $STACK_DIR/demo_logins.txt.
#
# Called by scripts/run.sh after migrating, with STACK_DIR and STACK_PG_PORT exported.
# Loads nothing when admin@demo.clientele already exists, so later runs reuse the data.
# CLIENTELE_DEMO_DATA=0 loads the teams and demo users but no customers, contacts or orders.
#
# DEMO CREDENTIALS: every demo user's password is "clientele-demo". For a local run only.
set -euo pipefail
cd "$(dirname "$0")/.."

export STACK_DIR=${STACK_DIR:-.run}
DEMO_PASSWORD=clientele-demo
case "${CLIENTELE_DEMO_DATA:-1}" in
0 | false | no | off) demo_data=0 ;;
*) demo_data=1 ;;
esac

psql_db() { scripts/stack.sh psql -d clientele "$@"; }

present=$(psql_db -Atc "SELECT count(*) FROM users WHERE email = 'admin@demo.clientele'")
if [ "$present" != 0 ]; then
    echo "demo: demo users already present; loading nothing (drop the clientele database to reload)"
else
    if [ "$demo_data" = 1 ]; then
        echo "demo: loading demo teams, users, 20,000 customers, about 20,000 contacts and 200,000 orders..."
    else
        echo "demo: loading demo teams and users only (CLIENTELE_DEMO_DATA=0)..."
    fi
    start=$(date +%s%N)
    psql_db -v ON_ERROR_STOP=1 -v demo_data="$demo_data" -f scripts/demo.sql
    end=$(date +%s%N)
    ms=$(((end - start) / 1000000))
    printf 'demo: loaded in %d.%03ds\n' $((ms / 1000)) $((ms % 1000))
fi

# One line per demo user, as the database has them now: email, role, team, password.
logins="$STACK_DIR/demo_logins.txt"
psql_db -At -F ' ' -c "
    SELECT u.email, r.name, coalesce(t.name, '-')
    FROM users u JOIN roles r ON r.id = u.role_id LEFT JOIN teams t ON t.id = u.team_id
    WHERE u.email::text LIKE '%@demo.clientele'
    ORDER BY array_position('{admin,director,analyst,integration,manager,rep}'::text[], r.name), t.name, u.email" |
    while read -r email role team; do
        printf '%-30s %-12s %-6s %s\n' "$email" "$role" "$team" "$DEMO_PASSWORD"
    done >"$logins.tmp"
if [ -s "$logins.tmp" ]; then
    mv "$logins.tmp" "$logins"
    chmod 600 "$logins"
    echo "demo: WARNING: DEMO CREDENTIALS (password \"$DEMO_PASSWORD\" for every @demo.clientele user)"
    echo "demo: WARNING: they are for this local run only; never load scripts/demo.sql into a real deployment."
    echo "demo: logins written to $logins"
else
    rm -f "$logins.tmp" "$logins"
fi
