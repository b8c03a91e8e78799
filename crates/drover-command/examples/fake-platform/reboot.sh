#!/bin/sh
# reboot.sh STATE HOST BOOT_ID_BEFORE: reboots the host unless its boot id already differs
# from BOOT_ID_BEFORE (a reboot already done, e.g. before Drover was restarted).
. "$(dirname "$0")/lib.sh"
dir=$(host_dir "$1" "$2")
if [ "$(cat "$dir/boot_id")" != "$3" ]; then
    echo "host $2 already rebooted"
    exit 0
fi
running=$(running_vms_on "$1" "$2")
[ -z "$running" ] || die "host $2 still runs: $running"
boots=$(($(cat "$dir/boots") + 1))
echo "$boots" >"$dir/boots"
echo "$2-boot-$boots" >"$dir/boot_id"
echo "host $2 rebooted"
