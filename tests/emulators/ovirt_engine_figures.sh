#!/usr/bin/env bash
# The "3-cluster / 30-host / 600-VM emulated engine" figure: `drover run` (the real binary, kind:
# ovirt over the REST API v4) rolls CLUSTERS generated clusters of HOSTS hosts with VMS_PER_HOST VMs
# each, every cluster starting on the `none` scheduling policy (so the run switches it to
# cluster_maintenance and back, `auto_resolve`), through the engine's own upgrade, at a scaled
# clock (platform time runs TIME_SCALE times faster than the wall clock; default policy
# durations: a 30-minute upgrade and a 5-minute reboot per host). Prints, per cluster and in all:
# the plan time (`drover plan` on the inventory), the rolled wall time, the CPU time of drover and
# of the emulator (Drover's own share of the work), and engine requests per migrated VM from the
# emulator's own counter. A measurement, not a test: it asserts only that every run completed.
#
# One emulated engine serves every cluster (`drover-emulator ovirt --inventory C1 --inventory
# C2 …`). Drover's `kind: ovirt` section names one engine cluster (`cluster:`), so there is one
# inventory and one `drover run` per cluster, all rolled at the same time against the one engine.
#
# Usage: tests/emulators/ovirt_engine_figures.sh [CLUSTERS] [HOSTS] [VMS_PER_HOST] [TIME_SCALE]
# Needs cargo, python3 and GNU time (/usr/bin/env time).
set -euo pipefail
cd "$(dirname "$0")/../.."

clusters=${1:-3}
hosts=${2:-10}
vms_per_host=${3:-20}
time_scale=${4:-1000}

cargo build -q -p drover-cli -p drover-emulator
work=$(mktemp -d)
emulator_pid=
cleanup() { [ -n "$emulator_pid" ] && kill "$emulator_pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
inventories=()
password=figures-password

# 256 GiB hosts, 4 GiB VMs: 20 VMs fill 80 GiB, so two hosts' guests fit on the other eight.
for c in $(seq 1 "$clusters"); do
  dir="$work/c$c"
  mkdir -p "$dir"
  {
    echo "cluster: {name: cluster-$c, target_version: \"4.5.6\"}"
    echo 'policy: {max_unavailable: 2, auto_resolve: true, raise_compatibility_level_to: "4.5"}'
    echo 'hosts:'
    for h in $(seq 1 "$hosts"); do
      printf '  - {name: c%d-kvm%02d, version: "4.4.10", memory_mib: 262144, cpus: 64}\n' "$c" "$h"
    done
    echo 'vms:'
    for h in $(seq 1 "$hosts"); do
      for v in $(seq 1 "$vms_per_host"); do
        printf '  - {name: c%d-vm-%02d-%02d, host: c%d-kvm%02d, memory_mib: 4096, vcpus: 2}\n' "$c" "$h" "$v" "$c" "$h"
      done
    done
  } >"$dir/hosts-and-vms.yaml"
  { cat "$dir/hosts-and-vms.yaml"; echo "driver: {kind: simulator, seed: $((16 + c))}"; } >"$dir/world.yaml"
  inventories+=(--inventory "$dir/world.yaml")
done
DROVER_EMULATOR_PASSWORD=$password target/debug/drover-emulator ovirt "${inventories[@]}" \
  --listen 127.0.0.1:0 --time-scale "$time_scale" --scheduling-policy none \
  >"$work/emulator.out" 2>"$work/emulator.err" &
emulator_pid=$!
for _ in $(seq 100); do
  grep -q '^listening on ' "$work/emulator.out" && break
  kill -0 "$emulator_pid" 2>/dev/null || { cat "$work/emulator.err" >&2; exit 1; }
  sleep 0.1
done
url=$(sed -n 's/^listening on //p' "$work/emulator.out")
[ -n "$url" ] || { echo "the emulator did not start" >&2; exit 1; }

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
ticks_per_second=$(getconf CLK_TCK)
for c in $(seq 1 "$clusters"); do
  dir="$work/c$c"
  {
    cat "$dir/hosts-and-vms.yaml"
    echo 'driver:'
    echo '  kind: ovirt'
    echo "  url: \"$url\""
    echo "  cluster: cluster-$c"
    echo '  username: admin@internal'
    echo '  password_env: DROVER_FIGURES_OVIRT_PASSWORD'
    echo '  poll_ms: 50'
  } >"$dir/cluster.yaml"
  # The plan time: drover plan on the inventory (read, validate, plan, write the document).
  /usr/bin/env time -f '%e' -o "$dir/plan.time" target/debug/drover plan -i "$dir/cluster.yaml" -o json \
    >"$dir/plan.json" 2>"$dir/plan.err" || { tail -20 "$dir/plan.err" >&2; exit 1; }
done
emulator_ticks_before=$(cpu_ticks "$emulator_pid")

started=$(date +%s.%N)
run_pids=()
for c in $(seq 1 "$clusters"); do
  dir="$work/c$c"
  DROVER_FIGURES_OVIRT_PASSWORD=$password /usr/bin/env time -f '%e %U %S' -o "$dir/drover.time" \
    target/debug/drover run -i "$dir/cluster.yaml" --state "$dir/state.db" -o json \
    >"$dir/report.json" 2>"$dir/drover.err" &
  run_pids+=("$!")
done
status=0
for pid in "${run_pids[@]}"; do wait "$pid" || status=1; done
finished=$(date +%s.%N)
emulator_ticks_after=$(cpu_ticks "$emulator_pid")
if [ "$status" != 0 ]; then
  for c in $(seq 1 "$clusters"); do tail -5 "$work/c$c/drover.err" >&2; done
  exit 1
fi

python3 - "$work" "$clusters" "$started" "$finished" "$ticks_per_second" "$hosts" "$vms_per_host" "$time_scale" "$url" "$emulator_ticks_before" "$emulator_ticks_after" <<'EOF'
import json, sys, urllib.request
work, clusters, started, finished, tps, hosts, per_host, scale, url, before, after = sys.argv[1:]
clusters, tps = int(clusters), int(tps)
total_wall = float(finished) - float(started)
emulator_cpu = (int(after) - int(before)) / tps
calls = json.load(urllib.request.urlopen(f"{url}/emulator/calls"))
requests = sum(calls.values())
drover_total, migrations_total = 0.0, 0
for c in range(1, clusters + 1):
    d = f"{work}/c{c}"
    report = json.load(open(f"{d}/report.json"))
    assert report["phase"] == "completed", (c, report["phase"])
    plan_secs = float(open(f"{d}/plan.time").read().split()[-1])
    wall, user, system = (float(x) for x in open(f"{d}/drover.time").read().split()[-3:])
    drover_cpu = user + system
    migrations = report["migrations"]
    print(f"cluster-{c}: {hosts} hosts / {int(hosts) * int(per_host)} VMs: plan {plan_secs:.2f} s, rolled in {wall:.1f} s, "
          f"drover CPU {drover_cpu:.1f} s, {migrations} migrations")
    drover_total += drover_cpu
    migrations_total += migrations
puts = calls.get("PUT /ovirt-engine/api/clusters/{id}", 0)
print(f"all {clusters} clusters ({clusters * int(hosts)} hosts / {clusters * int(hosts) * int(per_host)} VMs, one engine at {scale}x) rolled at once in "
      f"{total_wall:.1f} s wall; CPU drover {drover_total:.1f} s, emulator {emulator_cpu:.1f} s "
      f"(drover {100 * drover_total / max(drover_total + emulator_cpu, 1e-9):.0f}% of the CPU both used, "
      f"{100 * drover_total / total_wall:.0f}% of one core over the wall time)")
print(f"  {migrations_total} migrations; {requests} engine requests ({calls.get('POST /ovirt-engine/api/vms/{id}/migrate', 0)} migrate, "
      f"{calls.get('GET /ovirt-engine/api/vms/{id}', 0)} VM polls, {puts} cluster updates: policy switch, level raise, policy back): "
      f"{requests / max(migrations_total, 1):.1f} requests per migrated VM, whole runs included")
EOF
