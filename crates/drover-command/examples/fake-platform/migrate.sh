#!/bin/sh
# migrate.sh STATE VM FROM TO: live-migrates a running VM. Idempotent: a VM already running
# on TO succeeds at once.
. "$(dirname "$0")/lib.sh"
vm=$(vm_dir "$1" "$2")
host_dir "$1" "$3" >/dev/null
to=$(host_dir "$1" "$4")
on=$(cat "$vm/host")
if [ "$on" = "$4" ] && [ "$(cat "$vm/state")" = running ]; then
    echo "vm $2 already runs on $4"
    exit 0
fi
[ "$on" = "$3" ] || die "vm $2 is on $on, not $3"
[ "$(cat "$vm/state")" = running ] || die "vm $2 is not running"
[ "$(cat "$to/maintenance")" = false ] || die "host $4 is in maintenance"
echo "$4" >"$vm/host"
echo "vm $2 migrated from $3 to $4"
