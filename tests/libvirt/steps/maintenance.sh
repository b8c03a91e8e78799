#!/bin/sh
# maintenance.sh HOST enter|exit: libvirt has no maintenance mode; enter refuses while the host
# still runs domains (as a real platform would), and the state is kept in a file.
. "$(dirname "$0")/common.sh"
host=$1
if [ "$2" = enter ]; then
    running=$(vsh "$(uri "$host")" list --name | grep -c . || true)
    [ "$running" -eq 0 ] || { echo "host $host still runs $running domain(s)" >&2; exit 1; }
    touch "$state/$host/maintenance"
else
    rm -f "$state/$host/maintenance"
fi
