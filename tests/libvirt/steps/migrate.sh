#!/bin/sh
# migrate.sh VM FROM TO: live, peer to peer, persistent; idempotent (already on TO: done).
. "$(dirname "$0")/common.sh"
vm=$1; from=$2; to=$3
[ "$(domain_state "$to" "$vm")" = "running" ] && exit 0
# A migration started by an earlier call (a drover killed mid-call, whose virsh lives on) is
# still running: wait for it (at most 120 s) and look again, instead of failing with "another
# migration job is already running".
waited=0
while vsh "$(uri "$from")" domjobinfo "$vm" 2>/dev/null | grep -q '^Job type: *Unbounded'; do
    [ "$waited" -ge 1200 ] && break
    sleep 0.1
    waited=$((waited + 1))
done
[ "$(domain_state "$to" "$vm")" = "running" ] && exit 0
# Test fault: this migration crawls at 1 MiB/s and is aborted after 3 s (domjobabort), leaving
# the guest on its source, as an operator's or a timeout's abort would.
if [ -f "$state/faults/slow-migrate-$vm-$to" ]; then
    vsh "$(uri "$from")" migrate --live --p2p --persistent --undefinesource --bandwidth 1 "$vm" "$(uri "$to")" &
    migration=$!
    sleep 3
    vsh "$(uri "$from")" domjobabort "$vm" >/dev/null 2>&1 || true
    wait "$migration" || true
    echo "migration of $vm to $to crawled at 1 MiB/s and was aborted after 3 s" >&2
    exit 1
fi
exec timeout "${MIGRATE_TIMEOUT:-600}" virsh -q -c "$(uri "$from")" migrate --live --p2p --persistent --undefinesource "$vm" "$(uri "$to")"
