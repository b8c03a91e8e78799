#!/bin/sh
# upgrade.sh STATE HOST TARGET: installs TARGET on a host in maintenance. Does not reboot, so
# Drover sees the old boot id and reboots the host itself. Idempotent.
. "$(dirname "$0")/lib.sh"
dir=$(host_dir "$1" "$2")
[ "$(cat "$dir/maintenance")" = true ] || die "host $2 is not in maintenance"
if [ "$(cat "$dir/version")" = "$3" ]; then
    echo "host $2 already runs $3"
    exit 0
fi
echo "$3" >"$dir/version"
echo "host $2 now runs $3 (reboot pending)"
