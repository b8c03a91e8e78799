#!/bin/sh
# start-vm.sh VM NODE: returns a stopped VM to service on NODE (moved there first if needed).
. "$(dirname "$0")/lib.sh"
vm=$(ovm show Vm name="$1")
[ "$(printf '%s\n' "$vm" | field Status)" = Running ] && exit 0
[ "$(printf '%s\n' "$vm" | field Server)" = "$2" ] || ovm migrate Vm name="$1" destServer="$2" >/dev/null
ovm start Vm name="$1" >/dev/null
