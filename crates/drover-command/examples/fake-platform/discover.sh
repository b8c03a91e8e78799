#!/bin/sh
# discover.sh STATE: prints every host and VM as a YAML document with the inventory's entries
# (Drover's discover contract).
. "$(dirname "$0")/lib.sh"
state=$1
echo "hosts:"
for dir in "$state"/hosts/*; do
    [ -d "$dir" ] || continue
    if [ -e "$dir/down" ]; then
        host_state=down
    elif [ "$(cat "$dir/maintenance")" = true ]; then
        host_state=maintenance
    else
        host_state=up
    fi
    echo "  - name: $(basename "$dir")"
    echo "    role: $(cat "$dir/role")"
    echo "    version: \"$(cat "$dir/version")\""
    echo "    memory_mib: $(cat "$dir/memory_mib")"
    echo "    cpus: $(cat "$dir/cpus")"
    echo "    state: $host_state"
    echo "    cordoned: $(cat "$dir/cordoned")"
done
echo "vms:"
for dir in "$state"/vms/*; do
    [ -d "$dir" ] || continue
    echo "  - name: $(basename "$dir")"
    echo "    host: $(cat "$dir/host")"
    echo "    memory_mib: $(cat "$dir/memory_mib")"
    echo "    vcpus: $(cat "$dir/vcpus")"
    echo "    state: $(cat "$dir/state")"
done
