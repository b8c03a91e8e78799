# Helpers shared by the fake platform's scripts (sourced, not run).
#
# The platform lives in a state directory:
#   STATE/hosts/HOST/{role,version,boot_id,boots,maintenance,cordoned,memory_mib,cpus}
#   STATE/vms/VM/{host,state,memory_mib,vcpus}
# Names arrive as separate arguments from Drover; they are data, so they are checked before
# they become paths and always quoted.

set -eu

die() {
    echo "fake-platform: $*" >&2
    exit 1
}

# A name that is safe as one path component and as a YAML word.
check_name() {
    case "$1" in
        '' | .* | *[!A-Za-z0-9._-]*) die "refusing name '$1'" ;;
    esac
}

host_dir() {
    check_name "$2"
    [ -d "$1/hosts/$2" ] || die "no host $2"
    echo "$1/hosts/$2"
}

vm_dir() {
    check_name "$2"
    [ -d "$1/vms/$2" ] || die "no vm $2"
    echo "$1/vms/$2"
}

# The VMs running on a host, one per line.
running_vms_on() {
    for vm in "$1"/vms/*; do
        [ -d "$vm" ] || continue
        if [ "$(cat "$vm/host")" = "$2" ] && [ "$(cat "$vm/state")" = running ]; then
            basename "$vm"
        fi
    done
}
