#!/bin/sh
# upgrade.sh HOST TARGET: "installs" TARGET: bumps the version file and power-cycles the host's
# libvirtd (the harness's reboot). Idempotent: a host already at TARGET is left alone.
. "$(dirname "$0")/common.sh"
[ "$(cat "$state/$1/version")" = "$2" ] && exit 0
# Test fault: the host powers off during its upgrade and never comes back.
if [ -f "$state/faults/never-returns-$1" ]; then
    exec "$here/../hosts.sh" stop "$1" >/dev/null
fi
exec "$here/../hosts.sh" reboot "$1" --upgrade "$2" >/dev/null
