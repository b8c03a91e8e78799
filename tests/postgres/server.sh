#!/usr/bin/env bash
# A throwaway PostgreSQL for the tests: `up` runs initdb + pg_ctl in a temporary directory as the
# unprivileged `postgres` user (root may not run initdb), listening on 127.0.0.1 on a free port,
# with a password user `drover` (allowed to create databases and roles) and a database `drover`; `url`
# prints postgres://drover@127.0.0.1:PORT/drover; `password` prints the password (export it as
# PGPASSWORD, never put it in the URL); `restart [DOWN_SECS]` stops and starts it again on the same
# port; `down` stops the server and removes the directory.
# TLS: the server offers TLS with a certificate for `localhost` only (not 127.0.0.1: the tests need a name it does not match) signed by a throwaway CA
# (`ca` prints that CA's file; `other-ca` prints an unrelated CA's, which must not be trusted);
# role `drover_tls` (same password, a member of `drover`) may log in over TLS only (pg_hba `hostnossl … reject`).
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

# A CA, a server certificate signed by it (SAN localhost only), and an unrelated CA.
make_certificates() {
    local tls=$state_dir/tls
    mkdir -p "$tls"
    openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=drover test CA" \
        -keyout "$tls/ca.key" -out "$tls/ca.crt" 2>/dev/null
    openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=unrelated CA" \
        -keyout "$tls/other-ca.key" -out "$tls/other-ca.crt" 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" \
        -keyout "$tls/server.key" -out "$tls/server.csr" 2>/dev/null
    printf 'subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\n' >"$tls/server.ext"
    openssl x509 -req -in "$tls/server.csr" -CA "$tls/ca.crt" -CAkey "$tls/ca.key" \
        -CAcreateserial -days 30 -extfile "$tls/server.ext" -out "$tls/server.crt" 2>/dev/null
    chmod 600 "$tls/server.key"
    chmod 644 "$tls/ca.crt" "$tls/other-ca.crt"
    if [ "$(id -u)" = 0 ]; then chown -R postgres: "$tls"; chmod 755 "$tls"; fi
}

start_server() {
    local port=$1
    run_as_postgres "$bin_dir/pg_ctl" -D "$data_dir" -l "$state_dir/server.log" -w -t 60 \
        -o "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=$state_dir -c max_connections=200 -c fsync=on -c ssl=on -c ssl_cert_file=$state_dir/tls/server.crt -c ssl_key_file=$state_dir/tls/server.key" \
        start >/dev/null
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
    make_certificates
    # Checked first: the TLS-only role may not log in over a plain connection.
    { echo "hostnossl all drover_tls 0.0.0.0/0 reject"; cat "$data_dir/pg_hba.conf"; } >"$state_dir/pg_hba.conf"
    cp "$state_dir/pg_hba.conf" "$data_dir/pg_hba.conf"
    port=$(free_port)
    echo "$port" >"$state_dir/port"
    start_server "$port"
    PGPASSWORD=$password psql -q -h 127.0.0.1 -p "$port" -U postgres -d postgres -v ON_ERROR_STOP=1 \
        -c "CREATE ROLE drover LOGIN CREATEDB CREATEROLE PASSWORD '$password'" \
        -c "CREATE ROLE drover_tls LOGIN CREATEDB PASSWORD '$password'" \
        -c "CREATE DATABASE drover OWNER drover" \
        -c "GRANT drover TO drover_tls" >/dev/null
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
    start_server "$(cat "$state_dir/port")"
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
    ca) echo "$state_dir/tls/ca.crt" ;;
    other-ca) echo "$state_dir/tls/other-ca.crt" ;;
    restart) restart "${2:-2}" ;;
    down) down ;;
    *) echo "usage: $0 up|down|restart [DOWN_SECS]|url|password|ca|other-ca" >&2; exit 2 ;;
esac
