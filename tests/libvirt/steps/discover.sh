#!/bin/sh
# discover.sh: every harness host (version, state) and every domain on it (running or not), as
# the hosts:/vms: document Drover's command driver reads. Sizes come from libvirt.
. "$(dirname "$0")/common.sh"
echo "hosts:"
for dir in "$state"/h*/; do
    host=$(basename "$dir"); [ -f "$dir/uri" ] || continue
    status=up
    if ! vsh "$(uri "$host")" version >/dev/null 2>&1; then status=down
    elif [ -f "$dir/maintenance" ]; then status=maintenance; fi
    echo "  - {name: $host, version: \"$(cat "$dir/version")\", memory_mib: 1024, cpus: 4, state: $status}"
done
echo "vms:"
for dir in "$state"/h*/; do
    host=$(basename "$dir"); [ -f "$dir/uri" ] || continue
    vsh "$(uri "$host")" version >/dev/null 2>&1 || continue
    for vm in $(vsh "$(uri "$host")" list --all --name); do
        info=$(vsh "$(uri "$host")" dominfo "$vm")
        memory_kib=$(echo "$info" | awk '/^Max memory:/ {print $3}')
        vcpus=$(echo "$info" | awk '/^CPU\(s\):/ {print $2}')
        running=stopped; echo "$info" | grep -q '^State:.*running' && running=running
        echo "  - {name: $vm, host: $host, memory_mib: $((memory_kib / 1024)), vcpus: $vcpus, state: $running}"
    done
done
