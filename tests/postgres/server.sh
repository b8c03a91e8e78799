#!/usr/bin/env bash
# A throwaway PostgreSQL for the tests: `up` runs initdb + pg_ctl in a temporary directory as the
# unprivileged `postgres` user (root may not run initdb), listening on 127.0.0.1 on a free port,
# with a password user `drover` (allowed to create databases and roles) and a database `drover`; `url`
# prints postgres://drover@127.0.0.1:PORT/drover; `password` prints the password (export it as
# PGPASSWORD, never put it in the URL); `restart [DOWN_SECS]` stops and starts it again on the same
# port; `down` stops the server and removes the directory.
# State lives in $DROVER_PG_STATE_DIR (default /tmp/drover-test-postgres).
set -euo pipefail
state_dir=${DROVER_PG_STATE_DIR:-/tmp/drover-test-postgres}
data_dir=$state_dir/data
password=drover-test-password
bin_dir=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)

run_as_postgres() {
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

up() {
    if [ -f "$state_dir/port" ] && run_as_postgres "$bin_dir/pg_ctl" -D "$data_dir" status >/dev/null 2>&1; then
        url
        return
    fi
    rm -rf "$state_dir"
    mkdir -p "$state_dir"
    if [ "$(id -u)" = 0 ]; then chown postgres: "$state_dir"; fi
    printf '%s\n' "$password" >"$state_dir/superuser-password"
    if [ "$(id -u)" = 0 ]; then chown postgres: "$state_dir/superuser-password"; fi
    run_as_postgres "$bin_dir/initdb" -D "$data_dir" -U postgres --auth=scram-sha-256 \
        --pwfile="$state_dir/superuser-password" -E UTF8 --no-instructions >"$state_dir/initdb.log" 2>&1
    port=$(free_port)
    echo "$port" >"$state_dir/port"
    run_as_postgres "$bin_dir/pg_ctl" -D "$data_dir" -l "$state_dir/server.log" -w -t 60 \
        -o "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=$state_dir -c max_connections=200 -c fsync=on" \
        start >/dev/null
    PGPASSWORD=$password psql -q -h 127.0.0.1 -p "$port" -U postgres -d postgres -v ON_ERROR_STOP=1 \
        -c "CREATE ROLE drover LOGIN CREATEDB CREATEROLE PASSWORD '$password'" \
        -c "CREATE DATABASE drover OWNER drover" >/dev/null
    url
}

url() {
    echo "postgres://drover@127.0.0.1:$(cat "$state_dir/port")/drover"
}

# Stops the server (fast: open sessions are cut), waits DOWN_SECS (default 2), starts it again on
# the same port: a database restarted under a running drover.
restart() {
    local down_secs=${1:-2}
    run_as_postgres "$bin_dir/pg_ctl" -D "$data_dir" -m fast -w stop >/dev/null
    sleep "$down_secs"
    run_as_postgres "$bin_dir/pg_ctl" -D "$data_dir" -l "$state_dir/server.log" -w -t 60 \
        -o "-c listen_addresses=127.0.0.1 -c port=$(cat "$state_dir/port") -c unix_socket_directories=$state_dir -c max_connections=200 -c fsync=on" \
        start >/dev/null
}

down() {
    if [ -d "$data_dir" ]; then
        run_as_postgres "$bin_dir/pg_ctl" -D "$data_dir" -m fast -w stop >/dev/null 2>&1 || true
    fi
    rm -rf "$state_dir"
}

case "${1:-}" in
    up) up ;;
    url) url ;;
    password) echo "$password" ;;
    restart) restart "${2:-2}" ;;
    down) down ;;
    *) echo "usage: $0 up|down|restart [DOWN_SECS]|url|password" >&2; exit 2 ;;
esac
