#!/usr/bin/env bash
# The API document and the metrics against their ecosystems' own tools: openapi-spec-validator
# on docs/openapi.json, and `promtool check metrics` on a live `drover serve` scrape (after a run,
# so that every counter and the histogram have samples), in the classic text format it reads.
#
#   tests/api/validate.sh    # needs target/debug/drover (or DROVER=...), promtool, and
#                            # openapi-spec-validator on PATH or in TOOLS_BIN (tests/api/install.sh)
set -euo pipefail
cd "$(dirname "$0")/../.."
drover=${DROVER:-target/debug/drover}
tools_bin=${TOOLS_BIN:-target/api-tools-venv/bin}
export PATH="$tools_bin:$PATH"

echo "--- openapi-spec-validator docs/openapi.json"
openapi-spec-validator docs/openapi.json

# shellcheck source=lib.sh
source tests/api/lib.sh
cat > "$work/pool.yaml" <<'YAML'
cluster: {name: pool, target_version: "2.0"}
policy: {max_unavailable: 1, upgrade_duration_secs: 300, reboot_duration_secs: 60}
driver: {kind: simulator, time_scale: 1000}
hosts:
  - {name: h1, version: "1.0", memory_mib: 65536, cpus: 16}
  - {name: h2, version: "1.0", memory_mib: 65536, cpus: 16}
vms:
  - {name: a, host: h1, memory_mib: 4096, vcpus: 2}
YAML
printf 'clusters:\n  - inventory: pool.yaml\n' > "$work/serve.yaml"
start_server "$drover"
curl -fsS -o /dev/null -X POST -H 'Content-Type: application/json' -d '{"run_id": "metrics-run"}' \
  "$base/api/v1/clusters/pool/runs"
for _ in $(seq 1 300); do
  curl -fsS "$base/api/v1/runs/metrics-run" | grep -q '"finished":true' && break
  sleep 0.1
done

echo "--- promtool check metrics ($base/metrics, Accept: text/plain; version=0.0.4)"
curl -fsS -H 'Accept: text/plain; version=0.0.4' -D "$work/headers" "$base/metrics" > "$work/metrics.txt"
grep -i '^content-type: text/plain; version=0.0.4' "$work/headers"
grep -c '^drover_' "$work/metrics.txt" | sed 's/^/samples: /'
promtool check metrics < "$work/metrics.txt"
echo "promtool: no problems"

echo "--- OpenMetrics when asked for"
curl -fsS -H 'Accept: application/openmetrics-text; version=1.0.0' -D "$work/headers" "$base/metrics" > "$work/openmetrics.txt"
grep -i '^content-type: application/openmetrics-text' "$work/headers"
tail -n 1 "$work/openmetrics.txt" | grep -qx '# EOF'
echo "ok"
