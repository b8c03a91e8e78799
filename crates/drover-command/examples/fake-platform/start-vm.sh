#!/bin/sh
# start-vm.sh STATE VM HOST: starts a VM on HOST. Idempotent.
. "$(dirname "$0")/lib.sh"
vm=$(vm_dir "$1" "$2")
host_dir "$1" "$3" >/dev/null
echo "$3" >"$vm/host"
echo running >"$vm/state"
