#!/bin/sh
# shutdown-vm.sh STATE VM HOST GRACEFUL_SECS: shuts a VM down. Prints forced=false: the fake
# guests always obey (a real script prints forced=true when it had to power the VM off).
. "$(dirname "$0")/lib.sh"
vm=$(vm_dir "$1" "$2")
[ "$(cat "$vm/host")" = "$3" ] || die "vm $2 is not on $3"
echo stopped >"$vm/state"
echo "vm $2 stopped within $4 s"
echo forced=false
