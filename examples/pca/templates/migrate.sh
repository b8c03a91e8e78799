#!/bin/sh
# migrate.sh VM TO: "Migrate or Move Virtual Machines" to the planned server (idempotent).
. "$(dirname "$0")/lib.sh"
[ "$(ovm show Vm name="$1" | field Server)" = "$2" ] && exit 0
ovm migrate Vm name="$1" destServer="$2" >/dev/null
