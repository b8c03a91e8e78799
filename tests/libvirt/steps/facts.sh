#!/bin/sh
# facts.sh HOST: version, boot id and maintenance flag of a harness host, once libvirtd answers.
. "$(dirname "$0")/common.sh"
vsh "$(uri "$1")" version >/dev/null
maintenance=false; [ -f "$state/$1/maintenance" ] && maintenance=true
printf 'version=%s\nboot_id=%s\nin_maintenance=%s\n' "$(cat "$state/$1/version")" "$(cat "$state/$1/boot_id")" "$maintenance"
