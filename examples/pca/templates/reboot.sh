#!/bin/sh
# reboot.sh NODE BOOT_ID_BEFORE: the update restarts the node; if it did not, restart it from
# Oracle VM Manager ("Restart" of the server), as the procedure says.
. "$(dirname "$0")/lib.sh"
[ "$(on_node "$1" cat /proc/sys/kernel/random/boot_id)" != "$2" ] && exit 0
ovm restart Server name="$1" >/dev/null
