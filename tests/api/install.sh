#!/usr/bin/env bash
# Installs the ecosystems' own checkers for the API document and the metrics, idempotently:
# Debian's `prometheus` package (for `promtool`) and a Python venv under target/ holding
# Schemathesis and openapi-spec-validator (PyPI), and curl for the scripts. Root and the package mirrors are needed only
# when something is missing. Prints the venv's bin directory on stdout's last line.
set -euo pipefail
cd "$(dirname "$0")/../.."

venv=target/api-tools-venv
schemathesis_version=4.32.5
validator_version=0.9.0

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
apt_install() {
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

command -v promtool >/dev/null || apt_install prometheus
command -v curl >/dev/null || apt_install curl ca-certificates
command -v python3 >/dev/null || apt_install python3

if ! "$venv/bin/python" -c 'import sys' 2>/dev/null; then
  rm -rf "$venv"
  python3 -m venv "$venv" 2>/dev/null || { apt_install python3-venv; rm -rf "$venv"; python3 -m venv "$venv"; }
fi
installed() { "$venv/bin/pip" show "$1" 2>/dev/null | grep -qx "Version: $2"; }
if ! installed schemathesis "$schemathesis_version" || ! installed openapi-spec-validator "$validator_version"; then
  "$venv/bin/pip" install -q --disable-pip-version-check \
    "schemathesis==$schemathesis_version" "openapi-spec-validator==$validator_version"
fi
echo "promtool: $(promtool --version 2>&1 | head -n 1)" >&2
echo "$("$venv/bin/schemathesis" --version), openapi-spec-validator $validator_version" >&2
echo "$PWD/$venv/bin"
