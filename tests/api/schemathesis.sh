#!/usr/bin/env bash
# Holds the live API to its document: starts a real `drover serve` on loopback with a simulated
# cluster, runs Schemathesis (property-based tests generated from docs/openapi.json: examples,
# coverage, fuzzing and the stateful phase, every check) with a bounded number of examples and a
# time bound, then stops the server. Exit status: Schemathesis' (0 = no failure).
#
#   tests/api/schemathesis.sh            # uses target/debug/drover and the venv of tests/api/install.sh
#   DROVER=target/release/drover SCHEMATHESIS=/path/to/schemathesis MAX_EXAMPLES=100 SEED=7 tests/api/schemathesis.sh
set -euo pipefail
cd "$(dirname "$0")/../.."

drover=${DROVER:-target/debug/drover}
schemathesis=${SCHEMATHESIS:-$PWD/target/api-tools-venv/bin/schemathesis}
config=$PWD/tests/api/schemathesis.toml
max_examples=${MAX_EXAMPLES:-50}
time_limit_secs=${TIME_LIMIT_SECS:-240}
seed=${SEED:-1}
[ -x "$drover" ] || { echo "no drover binary at $drover (cargo build -p drover-cli)" >&2; exit 2; }

# shellcheck source=lib.sh
source tests/api/lib.sh

# Runs finish in about a second of wall time (the clock runs 1000x faster); one waits for approval.
cat > "$work/pool.yaml" <<'YAML'
cluster: {name: pool, target_version: "2.0"}
policy: {max_unavailable: 1, upgrade_duration_secs: 300, reboot_duration_secs: 60}
driver: {kind: simulator, time_scale: 1000}
hosts:
  - {name: h1, version: "1.0", memory_mib: 65536, cpus: 16}
  - {name: h2, version: "1.0", memory_mib: 65536, cpus: 16}
  - {name: h3, version: "1.0", memory_mib: 65536, cpus: 16}
vms:
  - {name: a, host: h1, memory_mib: 4096, vcpus: 2}
  - {name: b, host: h2, memory_mib: 8192, vcpus: 2}
YAML
cat > "$work/gated.yaml" <<'YAML'
cluster: {name: gated, target_version: "2.0"}
policy: {max_unavailable: 1, approval: manual, upgrade_duration_secs: 300, reboot_duration_secs: 60}
driver: {kind: simulator, time_scale: 1000}
hosts:
  - {name: g1, version: "1.0", memory_mib: 65536, cpus: 16}
  - {name: g2, version: "1.0", memory_mib: 65536, cpus: 16}
vms:
  - {name: c, host: g1, memory_mib: 4096, vcpus: 2}
YAML
# A served API has tokens: the document says every operation needs one, and Schemathesis checks
# that calls without one (or with a wrong one) are refused.
token=schemathesis-operator-token
token_sha256=$(printf '%s' "$token" | sha256sum | cut -d' ' -f1)
cat > "$work/serve.yaml" <<YAML
clusters:
  - inventory: pool.yaml
  - inventory: gated.yaml
tokens:
  - {name: schemathesis, role: operator, sha256: $token_sha256}
YAML

start_server "$drover"
# A run that exists for the run-scoped operations (schemathesis.toml names it).
curl -fsS -o /dev/null -X POST -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
  -d '{"run_id": "gated-known"}' "$base/api/v1/clusters/gated/runs"

echo "drover serve at $base; schemathesis: at most $max_examples examples per operation, ${time_limit_secs}s"

status=0
# Schemathesis keeps an example database in the working directory: keep it out of the tree.
cd "$work"
timeout --kill-after=10 "$time_limit_secs" \
  "$schemathesis" --config-file "$config" run "$base/api/v1/openapi.json" \
    --header "Authorization: Bearer $token" \
    --checks all \
    --phases examples,coverage,fuzzing,stateful \
    --max-examples "$max_examples" \
    --workers 1 \
    --request-timeout 30 \
    --seed "$seed" \
    --no-color \
    || status=$?
if [ "$status" -ne 0 ]; then
  echo "--- drover serve log (last 40 lines)" >&2
  tail -n 40 "$work/serve.log" >&2
fi
exit "$status"
