#!/usr/bin/env bash
# The "50-node / 1,500-VMI emulated cluster" figure: `drover run` (the real binary, built with
# `--features kubevirt`) rolls a generated OpenShift Virtualization cluster served by
# `drover-emulator kubevirt` over HTTPS at a scaled clock (platform time runs TIME_SCALE times
# faster than the wall clock; default policy durations: a 30-minute upgrade and a 5-minute reboot
# per node), end to end: the plan (`drover plan`, timed), then the roll with the HyperConverged's
# workload update methods emptied and restored (`auto_resolve`). Prints the plan time, the rolled
# wall time, the CPU time of drover and of the emulator (Drover's own share of the work), and the
# API requests and watch events per migrated VM from the emulator's own counters. A measurement,
# not a test: it asserts only that the run completed.
#
# Usage: tests/emulators/kubevirt_cluster_figures.sh [NODES] [VMIS_PER_NODE] [TIME_SCALE] [MAX_UNAVAILABLE]
# Needs cargo, curl and python3.
set -euo pipefail
cd "$(dirname "$0")/../.."

nodes=${1:-50}
vmis_per_node=${2:-30}
time_scale=${3:-1000}
max_unavailable=${4:-5}

cargo build -q -p drover-cli --features kubevirt
cargo build -q -p drover-emulator
work=$(mktemp -d)
emulator_pid=
cleanup() { [ -n "$emulator_pid" ] && kill "$emulator_pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

# 256 GiB workers in three zones, 4 GiB VMs: 30 VMs fill 120 GiB, so five nodes' guests fit on
# the other forty-five. Every tenth VM cannot live-migrate (a host device): it is stopped and
# started again.
{
  echo 'cluster: {name: cnv-figures, target_version: "4.16.3"}'
  echo "policy: {max_unavailable: $max_unavailable, auto_resolve: true}"
  echo 'hosts:'
  for n in $(seq 1 "$nodes"); do
    printf '  - {name: worker-%02d, version: "4.16.2", memory_mib: 262144, cpus: 64, labels: {zone: zone-%s}}\n' \
      "$n" "$(( n % 3 ))"
  done
  echo 'vms:'
  for n in $(seq 1 "$nodes"); do
    for v in $(seq 1 "$vmis_per_node"); do
      migratable=true; [ $(( v % 10 )) = 0 ] && migratable=false
      printf '  - {name: vm-%02d-%02d, host: worker-%02d, memory_mib: 4096, vcpus: 2, migratable: %s}\n' \
        "$n" "$v" "$n" "$migratable"
    done
  done
} >"$work/hosts-and-vms.yaml"
{ cat "$work/hosts-and-vms.yaml"; echo 'driver: {kind: simulator, seed: 50}'; } >"$work/world.yaml"

echo "figures-token-$$" >"$work/token"
target/debug/drover-emulator kubevirt \
  --inventory "$work/world.yaml" --listen 127.0.0.1:0 --time-scale "$time_scale" \
  --token-file "$work/token" --certificate-out "$work/ca.pem" \
  >"$work/emulator.out" 2>"$work/emulator.err" &
emulator_pid=$!
for _ in $(seq 300); do
  grep -qs '^listening on ' "$work/emulator.out" && break
  kill -0 "$emulator_pid" 2>/dev/null || { cat "$work/emulator.err" >&2; exit 1; }
  sleep 0.1
done
url=$(sed -n 's/^listening on //p' "$work/emulator.out")
[ -n "$url" ] || { echo "the emulator did not start" >&2; exit 1; }
token=$(cat "$work/token")
cat >"$work/kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: emulated
  cluster: {server: "$url", certificate-authority: "$work/ca.pem"}
users:
- name: drover
  user: {token: "$token"}
contexts:
- name: emulated
  context: {cluster: emulated, user: drover}
current-context: emulated
EOF
node_command() {
  echo "[curl, -sSf, -X, POST, --cacert, \"$work/ca.pem\", -H, \"Authorization: Bearer $token\", \"$url/emulator/nodes/{host}/$1\"]"
}
{
  cat "$work/hosts-and-vms.yaml"
  echo 'driver:'
  echo '  kind: kubevirt'
  echo "  kubeconfig: \"$work/kubeconfig\""
  echo '  poll_ms: 200'
  echo '  batch_eviction_interval_secs: 1'
  echo '  commands:'
  echo "    upgrade: $(node_command upgrade)"
  echo "    reboot: $(node_command reboot)"
} >"$work/cluster.yaml"

# CPU time (user + system, clock ticks) of a process from /proc.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
ticks_per_second=$(getconf CLK_TCK)

plan_started=$(date +%s.%N)
target/debug/drover plan -i "$work/cluster.yaml" -o json >"$work/plan.json" 2>"$work/plan.err" ||
  { tail -20 "$work/plan.err" >&2; exit 1; }
plan_finished=$(date +%s.%N)

calls_before=$(curl -s --cacert "$work/ca.pem" "$url/emulator/calls")
emulator_ticks_before=$(cpu_ticks "$emulator_pid")
started=$(date +%s.%N)
/usr/bin/env time -f '%U %S' -o "$work/drover.time" \
  target/debug/drover run -i "$work/cluster.yaml" --state "$work/state.db" -o json \
  >"$work/report.json" 2>"$work/drover.err" || { tail -20 "$work/drover.err" >&2; exit 1; }
finished=$(date +%s.%N)
emulator_ticks_after=$(cpu_ticks "$emulator_pid")
curl -s --cacert "$work/ca.pem" "$url/emulator/calls" >"$work/calls.json"

python3 - "$work" "$plan_started" "$plan_finished" "$started" "$finished" "$ticks_per_second" \
  "$emulator_ticks_before" "$emulator_ticks_after" "$nodes" "$vmis_per_node" "$time_scale" \
  "$calls_before" <<'EOF'
import json, sys
(work, plan_started, plan_finished, started, finished, ticks, before, after, nodes, per_node,
 scale, calls_before) = sys.argv[1:]
report = json.load(open(f"{work}/report.json"))
plan = json.load(open(f"{work}/plan.json"))
assert report["phase"] == "completed", report["phase"]
user, system = (float(part) for part in open(f"{work}/drover.time").read().split())
wall = float(finished) - float(started)
drover_cpu = user + system
emulator_cpu = (int(after) - int(before)) / int(ticks)
counters = json.load(open(f"{work}/calls.json"))
earlier = json.loads(calls_before)
requests = sum(counters["calls"].values()) - sum(earlier["calls"].values())
watch_events = counters["watch_events_sent"] - earlier["watch_events_sent"]
migrations = report.get("migrations", 0)
created = counters["calls"].get(
    "POST /apis/kubevirt.io/v1/namespaces/{namespace}/virtualmachineinstancemigrations", 0)
print(f"kubevirt figures: {nodes} nodes, {int(nodes) * int(per_node)} VMIs, time scale {scale}x")
print(f"  plan: {float(plan_finished) - float(plan_started):.1f} s wall (drover plan of the inventory), "
      f"{len(plan.get('waves', []))} waves")
print(f"  rolled: {wall:.1f} s wall; drover CPU {drover_cpu:.1f} s ({100 * drover_cpu / wall:.0f}% of the wall time), "
      f"emulator CPU {emulator_cpu:.1f} s")
print(f"  {migrations} migrations in the report, {created} VirtualMachineInstanceMigrations created; "
      f"{requests} API requests, {watch_events} watch events: "
      f"{requests / max(migrations, 1):.1f} requests per migrated VM")
print(f"  report: {json.dumps({key: report[key] for key in ('phase', 'migrations', 'restarts') if key in report})}")
EOF
