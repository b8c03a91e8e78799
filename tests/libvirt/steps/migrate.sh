#!/bin/sh
# migrate.sh VM FROM TO: live, peer to peer, persistent; idempotent (already on TO: done).
. "$(dirname "$0")/common.sh"
vm=$1; from=$2; to=$3
[ "$(domain_state "$to" "$vm")" = "running" ] && exit 0
exec timeout "${MIGRATE_TIMEOUT:-600}" virsh -q -c "$(uri "$from")" migrate --live --p2p --persistent --undefinesource "$vm" "$(uri "$to")"
