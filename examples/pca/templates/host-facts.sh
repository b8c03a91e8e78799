#!/bin/sh
# host-facts.sh NODE: version (Oracle VM Server, without its build), boot id, maintenance mode.
. "$(dirname "$0")/lib.sh"
server=$(ovm show Server name="$1")
version=$(printf '%s\n' "$server" | field Version | sed 's/-.*//')
maintenance=$(printf '%s\n' "$server" | field "Maintenance Mode")
[ -n "$version" ] || die "no Version for $1"
echo "version=$version"
echo "boot_id=$(on_node "$1" cat /proc/sys/kernel/random/boot_id)"
echo "in_maintenance=$([ "$maintenance" = On ] && echo true || echo false)"
