#!/usr/bin/env bash
# Installs Debian's PostgreSQL server binaries (initdb, pg_ctl, postgres) for the store tests, and
# openssl (server.sh makes the test server's TLS certificates with it).
# Idempotent and quiet: does nothing when a server binary is already there. Needs root (CI is).
set -euo pipefail
if compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null && command -v openssl >/dev/null; then
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq postgresql openssl >/dev/null
