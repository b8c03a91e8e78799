#!/usr/bin/env bash
# Proves drover-emulator's KubeVirt / OpenShift Virtualization front-end against the official
# clients: the Kubernetes Python client (PyPI `kubernetes`, pinned, installed once into a venv under
# target/) runs tests/emulators/kubevirt_official_client.py, then kubectl (Debian's
# `kubernetes-client`, installed when no kubectl is on the PATH) gets nodes, cordons and uncordons,
# lists VMIs, creates a migration with `kubectl create -f`, follows it with `kubectl get -w` to
# Succeeded, drains a node, and backs up, empties and restores the HyperConverged's
# workloadUpdateMethods as OpenShift Virtualization's EUS-to-EUS procedure does, and follows
# OpenShift's canary rollout through MachineConfigPools (`kubectl get mcp`, `patch --type merge`
# pause and unpause, a node labelled into a custom pool and watched until the emulated Machine
# Config Operator has updated it, with one reboot). The emulator
# serves HTTPS with a self-signed certificate that the generated kubeconfig trusts (kubectl sends
# no bearer token over plain HTTP). Prints the emulator's own request and watch-event counts at
# the end.
set -euo pipefail
cd "$(dirname "$0")/../.."

client_version=31.0.0
missing=()
for package in python3-venv; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
command -v kubectl >/dev/null || missing+=(kubernetes-client)
if [ "${#missing[@]}" -gt 0 ]; then
  echo "installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

venv=target/kubernetes-client-venv
if ! "$venv/bin/python" -c 'import sys' 2>/dev/null; then
  rm -rf "$venv"
  python3 -m venv "$venv"
fi
if ! "$venv/bin/pip" show kubernetes 2>/dev/null | grep -qx "Version: $client_version"; then
  "$venv/bin/pip" install -q --disable-pip-version-check "kubernetes==$client_version"
fi

cargo build -q -p drover-emulator
work=$(mktemp -d)
emulator_pid=
watch_pid=
cleanup() {
  [ -n "$watch_pid" ] && kill "$watch_pid" 2>/dev/null
  [ -n "$emulator_pid" ] && kill "$emulator_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
echo "proof-token-$$" >"$work/token"
target/debug/drover-emulator kubevirt \
  --inventory tests/emulators/kubevirt-cluster.yaml --listen 127.0.0.1:0 --time-scale 100 \
  --token-file "$work/token" --certificate-out "$work/ca.pem" \
  >"$work/out" 2>"$work/err" &
emulator_pid=$!
for _ in $(seq 100); do
  grep -qs "^listening on " "$work/out" && break
  kill -0 "$emulator_pid" 2>/dev/null || { cat "$work/err" >&2; exit 1; }
  sleep 0.1
done
url=$(sed -n 's/^listening on //p' "$work/out")
[ -n "$url" ] || { echo "the emulator did not start" >&2; cat "$work/err" >&2; exit 1; }
cat >"$work/kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: emulated
  cluster: {server: "$url", certificate-authority: "$work/ca.pem"}
users:
- name: drover
  user: {token: "$(cat "$work/token")"}
contexts:
- name: emulated
  context: {cluster: emulated, user: drover}
current-context: emulated
EOF
export KUBECONFIG=$work/kubeconfig

echo "kubernetes $client_version (Python) against drover-emulator at $url"
"$venv/bin/python" tests/emulators/kubevirt_official_client.py "$KUBECONFIG"

passed=0
expect() { # expect WHAT COMMAND...: runs COMMAND, fails the proof when it fails
  local what=$1
  shift
  if "$@"; then
    passed=$((passed + 1))
    echo "ok: $what"
  else
    echo "FAILED: $what" >&2
    exit 1
  fi
}
contains() { grep -q -- "$1" <<<"$2"; }

echo "$(kubectl version --client 2>/dev/null | head -1) against drover-emulator at $url"
nodes=$(kubectl get nodes --no-headers -o custom-columns=NAME:.metadata.name)
expect "kubectl get nodes lists kv1 kv2 kv3" test "$(echo $nodes)" = "kv1 kv2 kv3"
expect "kubectl cordon kv3" contains "cordoned" "$(kubectl cordon kv3)"
expect "kv3 is unschedulable" test "$(kubectl get node kv3 -o jsonpath='{.spec.unschedulable}')" = true
expect "kubectl uncordon kv3" contains "uncordoned" "$(kubectl uncordon kv3)"
expect "kv3 is schedulable again" test -z "$(kubectl get node kv3 -o jsonpath='{.spec.unschedulable}')"
vmis=$(kubectl get vmi -A --no-headers -o custom-columns=NAMESPACE:.metadata.namespace,NAME:.metadata.name,NODE:.status.nodeName)
expect "kubectl get vmi -A shows etcd-a on kv2" contains "default *etcd-a *kv2" "$vmis"

cat >"$work/migration.yaml" <<EOF
apiVersion: kubevirt.io/v1
kind: VirtualMachineInstanceMigration
metadata:
  name: move-pinned
  namespace: default
spec:
  vmiName: pinned
EOF
# Watching the collection from before the migration exists shows every phase it goes through.
kubectl get vmim -w --no-headers -o custom-columns=NAME:.metadata.name,PHASE:.status.phase >"$work/watch" 2>&1 &
watch_pid=$!
# --validate=false: the emulator serves no OpenAPI documents for client-side validation.
expect "kubectl create -f a VirtualMachineInstanceMigration" \
  contains "created" "$(kubectl create --validate=false -f "$work/migration.yaml" 2>&1 || true)"
sleep 0.5 # kubectl's list and watch requests go out
for _ in $(seq 200); do
  grep -q "move-pinned *Succeeded" "$work/watch" && break
  sleep 0.1
done
kill "$watch_pid" 2>/dev/null || true
watch_pid=
echo "  phases seen by kubectl get vmim -w: $(awk '{print $2}' "$work/watch" | tr '\n' ' ')"
expect "kubectl get vmim -w follows the migration to Succeeded" grep -q "move-pinned *Succeeded" "$work/watch"
expect "pinned stays within its node affinity (kv1, kv2): now on kv2" \
  test "$(kubectl get vmi pinned -o jsonpath='{.status.nodeName}')" = kv2
expect "a second migration of the same name is AlreadyExists" \
  contains "AlreadyExists" "$(kubectl create --validate=false -f "$work/migration.yaml" 2>&1 || true)"

drained=$(kubectl drain kv2 --ignore-daemonsets --delete-emptydir-data --timeout=60s 2>&1)
echo "$drained" | sed 's/^/  | /'
expect "kubectl drain kv2 evicts its pods (LiveMigrate VMIs are migrated away)" contains "node/kv2 drained" "$drained"
left=$(kubectl get pods -A --field-selector spec.nodeName=kv2 --no-headers -o custom-columns=NAME:.metadata.name)
expect "only the virt-handler DaemonSet pod is left on kv2" test "$(echo $left | grep -c virt-launcher)" = 0
expect "no VMI runs on kv2" test -z "$(kubectl get vmi -A --no-headers -o custom-columns=NODE:.status.nodeName | grep -x kv2 || true)"
expect "kubectl uncordon kv2" contains "uncordoned" "$(kubectl uncordon kv2)"
# The EUS-to-EUS steps of OpenShift Virtualization's documentation, word for word but for `oc`.
hco_methods=$(kubectl get hco kubevirt-hyperconverged -n openshift-cnv -o jsonpath='{.spec.workloadUpdateStrategy.workloadUpdateMethods}')
expect "kubectl get hco backs up workloadUpdateMethods ($hco_methods)" contains "LiveMigrate" "$hco_methods"
expect "kubectl get hco shows Upgradeable True" test \
  "$(kubectl get hco kubevirt-hyperconverged -n openshift-cnv -o jsonpath='{.status.conditions[?(@.type=="Upgradeable")].status}')" = True
expect "kubectl patch hco --type json empties workloadUpdateMethods" contains "patched" \
  "$(kubectl patch hco kubevirt-hyperconverged -n openshift-cnv --type json -p '[{"op":"replace","path":"/spec/workloadUpdateStrategy/workloadUpdateMethods", "value":[]}]')"
expect "the methods are empty" contains '"workloadUpdateMethods": \[\]' \
  "$(kubectl get hco kubevirt-hyperconverged -n openshift-cnv -o json)"
expect "kubectl patch hco --type json restores the backed-up methods" contains "patched" \
  "$(kubectl patch hco kubevirt-hyperconverged -n openshift-cnv --type json -p "[{\"op\":\"add\",\"path\":\"/spec/workloadUpdateStrategy/workloadUpdateMethods\", \"value\":$hco_methods}]")"
expect "the methods are back" test \
  "$(kubectl get hco kubevirt-hyperconverged -n openshift-cnv -o jsonpath='{.spec.workloadUpdateStrategy.workloadUpdateMethods}')" = "$hco_methods"
# OpenShift's canary rollout with the emulated Machine Config Operator (the Python client updated kv3 through it, paused
# the worker pool and left its own custom pool `canary`, unpaused): kv2 labelled into it and
# followed with `kubectl get node -w` until it runs the pool's rendered config, then labelled back
# and the worker pool unpaused.
mcps=$(kubectl get mcp --no-headers -o custom-columns=NAME:.metadata.name,PAUSED:.spec.paused)
expect "kubectl get mcp lists canary, master and worker (paused)" contains "worker *true" "$mcps"
expect "kubectl get machineconfigpool worker" test \
  "$(kubectl get machineconfigpool worker -o jsonpath='{.status.machineCount}')" = 3
expect "kubectl patch mcp canary --type merge pauses it" contains "patched" \
  "$(kubectl patch mcp canary --type merge -p '{"spec":{"paused":true}}')"
expect "kubectl patch mcp canary --type merge unpauses it" contains "patched" \
  "$(kubectl patch mcp canary --type merge -p '{"spec":{"paused":false}}')"
canary_config=$(kubectl get mcp canary -o jsonpath='{.spec.configuration.name}')
kubectl get node kv2 -w --output-watch-events=false \
  -o jsonpath='{.status.nodeInfo.bootID} {.metadata.annotations.machineconfiguration\.openshift\.io/state} {.metadata.annotations.machineconfiguration\.openshift\.io/currentConfig}{"\n"}' \
  >"$work/node-watch" 2>&1 &
watch_pid=$!
sleep 0.5
expect "kubectl label node kv2 into the canary pool" contains "labeled" \
  "$(kubectl label node kv2 node-role.kubernetes.io/canary=)"
for _ in $(seq 600); do
  grep -q " Done $canary_config\$" "$work/node-watch" && break
  sleep 0.1
done
kill "$watch_pid" 2>/dev/null || true
watch_pid=
echo "  kv2 seen by kubectl get node -w (boot id, state, currentConfig):"
sed 's/^/  | /' "$work/node-watch" | uniq
expect "kubectl get node -w follows kv2 to Done on $canary_config" grep -q " Done $canary_config\$" "$work/node-watch"
expect "kv2 went through Working" grep -q " Working " "$work/node-watch"
expect "kv2 rebooted exactly once (two boot ids)" test "$(awk '{print $1}' "$work/node-watch" | sort -u | wc -l)" = 2
expect "kubectl label node kv2 back into the worker pool" contains "unlabeled" \
  "$(kubectl label node kv2 node-role.kubernetes.io/canary-)"
expect "kubectl patch mcp worker --type merge unpauses the worker pool" contains "patched" \
  "$(kubectl patch mcp worker --type merge -p '{"spec":{"paused":false}}')"
expect "the worker pool is not paused" test "$(kubectl get mcp worker -o jsonpath='{.spec.paused}')" = false
echo "kubectl: $passed passed, 0 failed"
echo "emulator counters: $(curl -s --cacert "$work/ca.pem" "$url/emulator/calls")"
