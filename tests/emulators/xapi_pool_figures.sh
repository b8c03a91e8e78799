#!/usr/bin/env bash
# The "16-host / 400-VM emulated pool" figure: `drover run` (the real binary, kind: xapi over
# JSON-RPC) rolls a generated pool served by `drover-emulator xapi` at a scaled clock (platform
# time runs TIME_SCALE times faster than the wall clock; default policy durations: a 30-minute
# upgrade and a 5-minute reboot per host), end to end. Prints the wall time, the CPU time of
# drover and of the emulator (Drover's own share of the work), and XAPI calls per migrated VM from
# the emulator's own counter. A measurement, not a test: it asserts only that the run completed.
#
# Usage: tests/emulators/xapi_pool_figures.sh [HOSTS] [VMS_PER_HOST] [TIME_SCALE]
# Needs cargo, python3 (the upgrade command posts to the emulator's installer stand-in) and curl.
set -euo pipefail
cd "$(dirname "$0")/../.."

hosts=${1:-16}
vms_per_host=${2:-25}
time_scale=${3:-1000}

cargo build -q -p drover-cli -p drover-emulator
work=$(mktemp -d)
emulator_pid=
cleanup() { [ -n "$emulator_pid" ] && kill "$emulator_pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

# 256 GiB hosts, 4 GiB VMs: 25 VMs fill 100 GiB, so two hosts' guests fit on the other fourteen.
{
  echo 'cluster: {name: figures, target_version: "8.4"}'
  echo 'policy: {max_unavailable: 2}'
  echo 'hosts:'
  for h in $(seq 1 "$hosts"); do
    role=compute; [ "$h" = 1 ] && role=master
    printf '  - {name: xs%02d, role: %s, version: "8.2", memory_mib: 262144, cpus: 64}\n' "$h" "$role"
  done
  echo 'vms:'
  for h in $(seq 1 "$hosts"); do
    for v in $(seq 1 "$vms_per_host"); do
      printf '  - {name: vm-%02d-%02d, host: xs%02d, memory_mib: 4096, vcpus: 2}\n' "$h" "$v" "$h"
    done
  done
} >"$work/hosts-and-vms.yaml"
{ cat "$work/hosts-and-vms.yaml"; echo 'driver: {kind: simulator, seed: 16}'; } >"$work/world.yaml"

password=figures-password
DROVER_EMULATOR_PASSWORD=$password target/debug/drover-emulator xapi \
  --inventory "$work/world.yaml" --listen 127.0.0.1:0 --time-scale "$time_scale" \
  >"$work/emulator.out" 2>"$work/emulator.err" &
emulator_pid=$!
for _ in $(seq 100); do
  grep -q '^listening on ' "$work/emulator.out" && break
  kill -0 "$emulator_pid" 2>/dev/null || { cat "$work/emulator.err" >&2; exit 1; }
  sleep 0.1
done
url=$(sed -n 's/^listening on //p' "$work/emulator.out")
[ -n "$url" ] || { echo "the emulator did not start" >&2; exit 1; }

upgrade_script="import json, sys, urllib.request; urllib.request.urlopen(urllib.request.Request(sys.argv[1], data=json.dumps(dict(host=sys.argv[2], target=sys.argv[3])).encode(), headers=dict([('Content-Type', 'application/json')])))"
{
  cat "$work/hosts-and-vms.yaml"
  echo 'driver:'
  echo '  kind: xapi'
  echo "  url: \"$url\""
  echo '  username: root'
  echo '  password_env: DROVER_FIGURES_XAPI_PASSWORD'
  echo '  task_poll_ms: 50'
  echo "  commands: {upgrade: [python3, -c, \"$upgrade_script\", \"$url/emulator/upgrade\", \"{host}\", \"{target}\"]}"
} >"$work/pool.yaml"

# CPU time (user + system, clock ticks) of a process from /proc.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
ticks_per_second=$(getconf CLK_TCK)
emulator_ticks_before=$(cpu_ticks "$emulator_pid")

started=$(date +%s.%N)
DROVER_FIGURES_XAPI_PASSWORD=$password /usr/bin/env time -f '%U %S' -o "$work/drover.time" \
  target/debug/drover run -i "$work/pool.yaml" --state "$work/state.db" -o json \
  >"$work/report.json" 2>"$work/drover.err" || { tail -20 "$work/drover.err" >&2; exit 1; }
finished=$(date +%s.%N)
emulator_ticks_after=$(cpu_ticks "$emulator_pid")

python3 - "$work" "$started" "$finished" "$ticks_per_second" "$emulator_ticks_before" "$emulator_ticks_after" "$url" "$hosts" "$vms_per_host" "$time_scale" <<'EOF'
import json, sys, urllib.request
work, started, finished, tps, before, after, url, hosts, per_host, scale = sys.argv[1:]
report = json.load(open(f"{work}/report.json"))
assert report["phase"] == "completed", report["phase"]
user, system = (float(x) for x in open(f"{work}/drover.time").read().split()[-2:])
drover_cpu = user + system
emulator_cpu = (int(after) - int(before)) / int(tps)
wall = float(finished) - float(started)
calls = json.load(urllib.request.urlopen(f"{url}/emulator/calls"))
total = sum(calls.values())
migrations = report["migrations"]
print(f"{hosts} hosts / {int(hosts) * int(per_host)} VMs rolled through XAPI (drover-emulator at {scale}x): completed")
print(f"  wall {wall:.1f} s; CPU: drover {drover_cpu:.1f} s, emulator {emulator_cpu:.1f} s "
      f"(drover {100 * drover_cpu / wall:.0f}% of the wall time, {100 * drover_cpu / max(drover_cpu + emulator_cpu, 1e-9):.0f}% of the CPU both used)")
print(f"  {migrations} migrations; {total} XAPI calls ({calls.get('Async.VM.pool_migrate', 0)} Async.VM.pool_migrate, "
      f"{calls.get('task.get_record', 0)} task.get_record): {total / max(migrations, 1):.1f} calls per migrated VM, whole run included")
EOF
