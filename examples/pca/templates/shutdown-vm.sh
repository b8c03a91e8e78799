#!/bin/sh
# shutdown-vm.sh VM: stops a VM that uses resources local to its compute node (idempotent).
. "$(dirname "$0")/lib.sh"
[ "$(ovm show Vm name="$1" | field Status)" = Stopped ] && exit 0
ovm stop Vm name="$1" >/dev/null
