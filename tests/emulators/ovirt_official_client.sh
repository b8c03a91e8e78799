#!/usr/bin/env bash
# Proves drover-emulator's oVirt front-end against the official oVirt Engine SDK for Python (PyPI
# `ovirt-engine-sdk-python`, pinned): installs it once into a venv under target/ (it builds a C
# extension against libxml2 and needs pycurl, so the Debian -dev packages are installed first when
# missing), starts the emulator on a free loopback port and runs
# tests/emulators/ovirt_official_client.py against it. Prints the emulator's own request counts at
# the end. Needs python3 (with venv), cargo, and apt-get when a -dev package is missing.
set -euo pipefail
cd "$(dirname "$0")/../.."

sdk_version=4.6.3
missing=()
for package in python3-venv python3-dev libxml2-dev libcurl4-openssl-dev libssl-dev gcc pkg-config; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

venv=target/ovirt-sdk-venv
if ! "$venv/bin/python" -c 'import sys' 2>/dev/null; then
  rm -rf "$venv"
  python3 -m venv "$venv"
fi
if ! "$venv/bin/pip" show ovirt-engine-sdk-python 2>/dev/null | grep -qx "Version: $sdk_version"; then
  "$venv/bin/pip" install -q --disable-pip-version-check "ovirt-engine-sdk-python==$sdk_version"
fi

cargo build -q -p drover-emulator
work=$(mktemp -d)
emulator_pid=
cleanup() { [ -n "$emulator_pid" ] && kill "$emulator_pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
password=proof-password
DROVER_EMULATOR_PASSWORD=$password target/debug/drover-emulator ovirt \
  --inventory tests/emulators/ovirt-engine.yaml --listen 127.0.0.1:0 --time-scale 100 \
  >"$work/out" 2>"$work/err" &
emulator_pid=$!
for _ in $(seq 100); do
  grep -qs "^listening on " "$work/out" && break
  kill -0 "$emulator_pid" 2>/dev/null || { cat "$work/err" >&2; exit 1; }
  sleep 0.1
done
url=$(sed -n 's/^listening on //p' "$work/out")
[ -n "$url" ] || { echo "the emulator did not start" >&2; cat "$work/err" >&2; exit 1; }
echo "ovirt-engine-sdk-python $sdk_version against drover-emulator at $url/ovirt-engine/api"
status=0
"$venv/bin/python" tests/emulators/ovirt_official_client.py "$url" "$password" || status=$?
echo "emulator request counts: $("$venv/bin/python" -c "import urllib.request,sys;print(urllib.request.urlopen(sys.argv[1]).read().decode())" "$url/emulator/calls")"
exit "$status"
