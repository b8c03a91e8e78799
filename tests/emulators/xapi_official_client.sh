#!/usr/bin/env bash
# Proves drover-emulator's XAPI front-end against the official XenServer SDK for Python (PyPI
# `XenAPI`, pinned): installs it once into a venv under target/, starts the emulator on a free
# loopback port and runs tests/emulators/xapi_official_client.py against it. Prints the emulator's
# own call counts at the end. Needs python3 (with venv) and cargo.
set -euo pipefail
cd "$(dirname "$0")/../.."

venv=target/xapi-sdk-venv
xenapi_version=26.21.1
if ! "$venv/bin/python" -c 'import sys' 2>/dev/null; then
  rm -rf "$venv"
  python3 -m venv "$venv"
fi
if ! "$venv/bin/pip" show XenAPI 2>/dev/null | grep -qx "Version: $xenapi_version"; then
  "$venv/bin/pip" install -q --disable-pip-version-check "XenAPI==$xenapi_version"
fi

cargo build -q -p drover-emulator
work=$(mktemp -d)
emulator_pid=
cleanup() { [ -n "$emulator_pid" ] && kill "$emulator_pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
password=proof-password
DROVER_EMULATOR_PASSWORD=$password target/debug/drover-emulator xapi \
  --inventory tests/emulators/xapi-pool.yaml --listen 127.0.0.1:0 --time-scale 40 \
  >"$work/out" 2>"$work/err" &
emulator_pid=$!
for _ in $(seq 100); do
  grep -q '^listening on ' "$work/out" && break
  kill -0 "$emulator_pid" 2>/dev/null || { cat "$work/err" >&2; exit 1; }
  sleep 0.1
done
url=$(sed -n 's/^listening on //p' "$work/out")
[ -n "$url" ] || { echo "the emulator did not start" >&2; cat "$work/err" >&2; exit 1; }
echo "XenAPI $xenapi_version against drover-emulator at $url/"
status=0
"$venv/bin/python" tests/emulators/xapi_official_client.py "$url/" "$password" || status=$?
echo "emulator call counts: $(curl -s "$url/emulator/calls" 2>/dev/null || python3 -c "import urllib.request,sys;print(urllib.request.urlopen(sys.argv[1]).read().decode())" "$url/emulator/calls")"
exit "$status"
