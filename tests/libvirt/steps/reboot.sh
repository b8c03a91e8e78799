#!/bin/sh
# reboot.sh HOST BOOT_ID_BEFORE: power-cycles the host unless it already rebooted.
. "$(dirname "$0")/common.sh"
[ "$(cat "$state/$1/boot_id")" != "$2" ] && exit 0
exec "$here/../hosts.sh" reboot "$1" >/dev/null
