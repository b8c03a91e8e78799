#!/bin/sh
# maintenance.sh STATE HOST enter|exit: like a real platform, refuses maintenance while VMs
# still run on the host. Idempotent.
. "$(dirname "$0")/lib.sh"
dir=$(host_dir "$1" "$2")
case "$3" in
    enter)
        running=$(running_vms_on "$1" "$2")
        [ -z "$running" ] || die "host $2 still runs: $running"
        echo true >"$dir/maintenance"
        ;;
    exit) echo false >"$dir/maintenance" ;;
    *) die "maintenance.sh: expected enter or exit, got '$3'" ;;
esac
