#!/bin/sh
# init.sh STATE: creates the platform of inventory.yaml in directory STATE (replacing it).
# Three hosts at 8.0.0 (xs01 is the pool master) and three running VMs, one per host.
. "$(dirname "$0")/lib.sh"
state=${1:?usage: init.sh STATE}
rm -rf "$state/hosts" "$state/vms" "$state/compatibility_level"

add_host() { # NAME ROLE VERSION
    dir="$state/hosts/$1"
    mkdir -p "$dir"
    echo "$2" >"$dir/role"
    echo "$3" >"$dir/version"
    echo 1 >"$dir/boots"
    echo "$1-boot-1" >"$dir/boot_id"
    echo false >"$dir/maintenance"
    echo false >"$dir/cordoned"
    echo 16384 >"$dir/memory_mib"
    echo 8 >"$dir/cpus"
}

add_vm() { # NAME HOST
    dir="$state/vms/$1"
    mkdir -p "$dir"
    echo "$2" >"$dir/host"
    echo running >"$dir/state"
    echo 2048 >"$dir/memory_mib"
    echo 2 >"$dir/vcpus"
}

add_host xs01 master 8.0.0
add_host xs02 compute 8.0.0
add_host xs03 compute 8.0.0
add_vm web-01 xs01
add_vm web-02 xs02
add_vm db-01 xs03
