#!/bin/sh
# shutdown.sh VM HOST GRACEFUL_SECS: ACPI shutdown, then destroy after GRACEFUL_SECS; prints forced=true|false.
. "$(dirname "$0")/common.sh"
vm=$1; host=$2; graceful=$3
case "$(domain_state "$host" "$vm")" in running|paused|"in shutdown") ;; *) echo forced=false; exit 0 ;; esac
vsh "$(uri "$host")" shutdown "$vm" >/dev/null 2>&1 || true
deadline=$(( $(date +%s) + graceful ))
while [ "$(date +%s)" -lt "$deadline" ]; do
    [ "$(domain_state "$host" "$vm")" = "shut off" ] && { echo forced=false; exit 0; }
    sleep 0.2
done
vsh "$(uri "$host")" destroy "$vm" >/dev/null
echo forced=true
