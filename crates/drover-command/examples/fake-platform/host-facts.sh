#!/bin/sh
# host-facts.sh STATE HOST: prints the host's facts as key=value lines (Drover's host_facts
# contract; JSON would do as well).
. "$(dirname "$0")/lib.sh"
dir=$(host_dir "$1" "$2")
[ ! -e "$dir/down" ] || die "host $2 does not answer"
echo "version=$(cat "$dir/version")"
echo "boot_id=$(cat "$dir/boot_id")"
echo "in_maintenance=$(cat "$dir/maintenance")"
echo "cordoned=$(cat "$dir/cordoned")"
