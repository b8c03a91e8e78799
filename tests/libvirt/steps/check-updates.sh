#!/bin/sh
# check-updates.sh HOST: what `apt list --upgradable` prints on a harness host (inside its network
# namespace, once its libvirtd answers). The harness hosts share this machine's file system, so
# this is the machine's own package state, asked through the host: real apt output.
. "$(dirname "$0")/common.sh"
vsh "$(uri "$1")" version >/dev/null
exec timeout 120 ip netns exec "drv-$1" apt list --upgradable
