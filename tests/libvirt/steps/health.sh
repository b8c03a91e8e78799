#!/bin/sh
# health.sh HOST: libvirtd answers and lists its domains.
. "$(dirname "$0")/common.sh"
vsh "$(uri "$1")" list --all >/dev/null
