#!/usr/bin/env bash
# Proves drover-emulator's CloudStack front-end against the official Python client of the
# CloudStack API, PyPI `cs` (exoscale/cs, pinned): installs it once into a venv under target/,
# starts the emulator on a free loopback port and runs tests/emulators/cloudstack_official_client.py
# against it, then the `cs` command-line tool once. Prints the emulator's own request counts at the
# end. Needs python3 (with venv) and cargo.
set -euo pipefail
cd "$(dirname "$0")/../.."

cs_version=3.2.0
if ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
  echo "installing python3-venv"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
fi
venv=target/cs-venv
if ! "$venv/bin/python" -c 'import sys' 2>/dev/null; then
  rm -rf "$venv"
  python3 -m venv "$venv"
fi
if ! "$venv/bin/pip" show cs 2>/dev/null | grep -qx "Version: $cs_version"; then
  "$venv/bin/pip" install -q --disable-pip-version-check "cs==$cs_version"
fi

cargo build -q -p drover-emulator
work=$(mktemp -d)
emulator_pid=
cleanup() { [ -n "$emulator_pid" ] && kill "$emulator_pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
key=proof-key
secret=proof-secret
DROVER_EMULATOR_SECRET_KEY=$secret target/debug/drover-emulator cloudstack \
  --inventory tests/emulators/cloudstack-zone.yaml --listen 127.0.0.1:0 --time-scale 100 \
  --api-key "$key" >"$work/out" 2>"$work/err" &
emulator_pid=$!
for _ in $(seq 100); do
  grep -qs "^listening on " "$work/out" && break
  kill -0 "$emulator_pid" 2>/dev/null || { cat "$work/err" >&2; exit 1; }
  sleep 0.1
done
url=$(sed -n 's/^listening on //p' "$work/out")
[ -n "$url" ] || { echo "the emulator did not start" >&2; cat "$work/err" >&2; exit 1; }
endpoint="$url/client/api"
echo "cs $cs_version against drover-emulator at $endpoint"
status=0
"$venv/bin/python" tests/emulators/cloudstack_official_client.py "$endpoint" "$key" "$secret" || status=$?

# The command-line tool, configured through its environment variables (cs/client.py read_config:
# CLOUDSTACK_ENDPOINT, CLOUDSTACK_KEY, CLOUDSTACK_SECRET).
echo "cs command line: cs listZones"
CLOUDSTACK_ENDPOINT=$endpoint CLOUDSTACK_KEY=$key CLOUDSTACK_SECRET=$secret \
  "$venv/bin/cs" listZones >"$work/cli" || status=$?
cat "$work/cli"
"$venv/bin/python" -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["count"] == 2, d; print("cs listZones: 2 zones")' "$work/cli" || status=$?

echo "emulator request counts: $("$venv/bin/python" -c "import urllib.request,sys;print(urllib.request.urlopen(sys.argv[1]).read().decode())" "$url/emulator/calls")"
exit "$status"
