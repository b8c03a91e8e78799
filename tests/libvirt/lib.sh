# shellcheck shell=bash disable=SC2034,SC2119,SC2120
# (variables here are used by the scripts that source this file)
# Shared definitions of Drover's libvirt test harness. Sourced by install.sh, hosts.sh, guests.sh,
# guest/build.sh and selftest.sh (and by any test that wants `cleanup_all` in a trap):
#
#     source tests/libvirt/lib.sh
#     trap cleanup_all EXIT
#
# Sourcing defines variables and functions only; it changes no shell option and runs nothing.

DRV_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# Every path the hosts' QEMU processes see must be the same in all of their mount namespaces:
# the state and cache directories are never hidden by a host's private mounts (checked below).
DRV_STATE=$(realpath -m "${DROVER_LIBVIRT_STATE:-$DRV_DIR/.state}")
DRV_CACHE=$(realpath -m "${DROVER_LIBVIRT_CACHE:-$DRV_DIR/.cache}")
DRV_GUEST_DIR="$DRV_CACHE/guest"

DRV_BRIDGE=drvbr0          # the harness's own bridge
DRV_NET=10.213.0           # the harness's own /24: bridge .1, host k at .(10+k)
DRV_NS_PREFIX=drv-h        # network namespaces drv-h1..drv-h9 (host-side veths carry the same name)
DRV_MAX_HOSTS=9
DRV_MARK=DROVER_LIBVIRT_HARNESS   # environment marker set on every long-lived process we spawn
DRV_EMULATOR=/usr/bin/qemu-system-x86_64
DRV_XMLNS=https://drover.dev/xmlns/vm/1

# Directories each host mounts privately: a path under one of them would differ between hosts.
DRV_PRIVATE_DIRS=(/etc/libvirt /run/libvirt /var/lib/libvirt /var/log/libvirt /var/cache/libvirt)

drv_say() { printf '%s\n' "$*" >&2; }
drv_die() { printf '%s: error: %s\n' "${DRV_PROG:-libvirt-harness}" "$*" >&2; exit 1; }
drv_now_ms() { local t=${EPOCHREALTIME/./}; echo $((t / 1000)); }

drv_require_root() {
    [ "$(id -u)" = 0 ] || drv_die "must run as root (namespaces, bridges and libvirtd need it)"
}

drv_check_paths() {
    local p d
    for p in "$DRV_STATE" "$DRV_CACHE"; do
        for d in "${DRV_PRIVATE_DIRS[@]}"; do
            case "$p/" in "$d"/*)
                drv_die "$p is under $d, which every host mounts privately; choose another directory";;
            esac
        done
    done
}

# Host K given as "3" or "h3" -> 3 (dies on anything else).
drv_host_index() {
    local k=${1#h}
    [[ "$k" =~ ^[1-9]$ ]] || drv_die "bad host '$1': expected 1..$DRV_MAX_HOSTS or h1..h$DRV_MAX_HOSTS"
    echo "$k"
}
drv_ip() { echo "$DRV_NET.$((10 + $1))"; }
drv_uri() { echo "qemu+tcp://$(drv_ip "$1")/system"; }
drv_ns() { echo "$DRV_NS_PREFIX$1"; }
drv_hostdir() { echo "$DRV_STATE/h$1"; }

# virsh against host K with a bounded time (a stuck libvirtd must not hang a test).
drv_virsh() {
    local k=$1; shift
    timeout --kill-after=5 "${DRV_VIRSH_TIMEOUT:-60}" virsh -q -c "$(drv_uri "$k")" "$@"
}

# Is host K's libvirtd answering? (short timeout)
drv_host_alive() {
    DRV_VIRSH_TIMEOUT=5 drv_virsh "$1" version >/dev/null 2>&1
}

# ---------------------------------------------------------------------------------------------
# apt helpers (install.sh, guest/build.sh)

DRV_APT_UPDATED=0
DRV_APT_STAMP=/var/lib/apt/periodic/drover-libvirt-update-stamp
DRV_APT_MAX_AGE_MIN=${DROVER_APT_MAX_AGE_MIN:-1440}

# Package lists missing, or not refreshed by us for a day?
drv_apt_lists_stale() {
    compgen -G "/var/lib/apt/lists/*_Packages*" >/dev/null || return 0
    [ -e "$DRV_APT_STAMP" ] || return 0
    [ -n "$(find "$DRV_APT_STAMP" -mmin +"$DRV_APT_MAX_AGE_MIN" 2>/dev/null)" ]
}

# apt-get update, at most once per script run.
drv_apt_update() {
    [ "$DRV_APT_UPDATED" = 1 ] && return 0
    drv_say "+ apt-get update"
    if ! DEBIAN_FRONTEND=noninteractive apt-get update -q >/tmp/drv-apt-update.$$ 2>&1; then
        cat /tmp/drv-apt-update.$$ >&2
        rm -f /tmp/drv-apt-update.$$
        drv_die "apt-get update failed (see above): is the Debian mirror reachable?"
    fi
    rm -f /tmp/drv-apt-update.$$
    mkdir -p "$(dirname "$DRV_APT_STAMP")" && touch "$DRV_APT_STAMP"
    DRV_APT_UPDATED=1
}

drv_apt_update_if_stale() {
    if drv_apt_lists_stale; then drv_apt_update; fi
}

# ---------------------------------------------------------------------------------------------
# Finding and ending the harness's processes.

# The net namespace inode ("net:[4026532301]") of every named harness namespace, and of those
# recorded at creation (a namespace that lost its name but is still held by a process).
drv_harness_netns_ids() {
    local ns f
    for ns in $(ip netns list 2>/dev/null | awk '{print $1}'); do
        case "$ns" in "$DRV_NS_PREFIX"[1-9]) stat -L -c 'net:[%i]' "/run/netns/$ns" 2>/dev/null;; esac
    done
    for f in "$DRV_STATE"/h[1-9]/netns_id; do [ -r "$f" ] && cat "$f"; done
    return 0
}

# Is PID a live (non-zombie) process?
drv_pid_alive() {
    local line st
    { read -r line <"/proc/$1/stat"; } 2>/dev/null || return 1
    st=${line##*) }
    st=${st%% *}
    [ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}

# PIDs of the harness's processes: everything inside a harness network namespace (tini, libvirtd,
# QEMU) and every process carrying the harness marker (heartbeat timestampers). Never lists the
# calling shell or its ancestors. With an argument K, only host K's processes.
drv_harness_pids() {
    local only=${1:-} ids=() self=" " q=$$ line p
    if [ -n "$only" ]; then
        [ -e "/run/netns/$(drv_ns "$only")" ] &&
            ids+=("$(stat -L -c 'net:[%i]' "/run/netns/$(drv_ns "$only")")")
        [ -r "$(drv_hostdir "$only")/netns_id" ] && ids+=("$(cat "$(drv_hostdir "$only")/netns_id")")
    else
        mapfile -t ids < <(drv_harness_netns_ids | sort -u)
    fi
    while [ -n "$q" ] && [ "$q" != 0 ] && [ -r "/proc/$q/stat" ]; do
        self+="$q "
        read -r line <"/proc/$q/stat" || break
        line=${line##*) }
        line=${line#* }
        q=${line%% *}
    done
    self+="${BASHPID:-} "
    {
        if [ ${#ids[@]} -gt 0 ]; then
            find /proc/[0-9]*/ns/net -maxdepth 0 -printf '%p %l\n' 2>/dev/null |
                awk -v ids=" ${ids[*]} " 'index(ids, " " $2 " ") { split($1, a, "/"); print a[3] }'
        fi
        if [ -z "$only" ]; then
            grep -lzs "^$DRV_MARK=" /proc/[0-9]*/environ 2>/dev/null | cut -d/ -f3
        fi
    } | sort -un | while read -r p; do
        case "$self" in *" $p "*) continue;; esac
        drv_pid_alive "$p" && echo "$p"
    done
    return 0
}

# Stop PIDS at once (SIGSTOP first, so that none reacts to the death of another, like a power
# cut), SIGKILL them, and wait (bounded) until every one is gone or a zombie.
drv_kill_pids() {
    local pids=("$@") p i
    [ ${#pids[@]} -gt 0 ] || return 0
    kill -STOP "${pids[@]}" 2>/dev/null || true
    kill -KILL "${pids[@]}" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
        local left=0
        for p in "${pids[@]}"; do drv_pid_alive "$p" && left=1 && break; done
        [ "$left" = 0 ] && return 0
        sleep 0.1
    done
    drv_say "warning: processes still alive 10 s after SIGKILL: $(for p in "${pids[@]}"; do drv_pid_alive "$p" && printf '%s ' "$p"; done)"
    return 1
}

# Remove everything the harness made, whatever state it is in: domains, processes, namespaces,
# veths, the bridge. Safe to call any number of times and from a trap (never exits the shell,
# returns non-zero only if something could not be removed). The state directory is kept (logs).
cleanup_all() { (set +eu; _drv_cleanup_all); }
_drv_cleanup_all() {
    local rc=0 k pids ns dev
    # 1. Destroy running domains through libvirt where it still answers (clean QEMU exits).
    for k in $(seq 1 "$DRV_MAX_HOSTS"); do
        [ -e "/run/netns/$(drv_ns "$k")" ] || continue
        (
            doms=$(DRV_VIRSH_TIMEOUT=5 drv_virsh "$k" list --name 2>/dev/null) || exit 0
            for d in $doms; do DRV_VIRSH_TIMEOUT=10 drv_virsh "$k" destroy "$d" >/dev/null 2>&1 || true; done
        ) &
    done
    wait
    # 2. Kill every remaining harness process (libvirtd, tini, QEMU, timestampers).
    mapfile -t pids < <(drv_harness_pids)
    if [ ${#pids[@]} -gt 0 ]; then
        drv_say "cleanup: killing ${#pids[@]} harness process(es): $(for p in "${pids[@]}"; do printf '%s(%s) ' "$p" "$(cat "/proc/$p/comm" 2>/dev/null)"; done)"
        drv_kill_pids "${pids[@]}" || rc=1
    fi
    # 3. Namespaces, veths, bridge.
    for ns in $(ip netns list 2>/dev/null | awk '{print $1}'); do
        case "$ns" in "$DRV_NS_PREFIX"[1-9]) ip netns del "$ns" 2>/dev/null || { drv_say "cleanup: cannot delete netns $ns"; rc=1; };; esac
    done
    for dev in /sys/class/net/*; do
        dev=${dev##*/}
        case "$dev" in "$DRV_NS_PREFIX"[1-9]|"$DRV_BRIDGE") ip link del "$dev" 2>/dev/null || true;; esac
    done
    # 4. Verify (recorded namespace ids are kept until nothing is left in them).
    local left
    left=$(drv_leftovers)
    if [ -n "$left" ]; then
        drv_say "cleanup: leftovers remain:"$'\n'"$left"
        rc=1
    else
        rm -f "$DRV_STATE"/h[1-9]/netns_id "$DRV_STATE"/h[1-9]/libvirtd.pid 2>/dev/null || true
    fi
    return $rc
}

# What of the harness still exists (empty output = nothing). Zombies are not counted: they hold
# no namespace, memory or socket, and PID 1 reaps them within a few seconds on these machines.
drv_leftovers() {
    local ns dev p
    for ns in $(ip netns list 2>/dev/null | awk '{print $1}'); do
        case "$ns" in "$DRV_NS_PREFIX"[1-9]) echo "network namespace $ns";; esac
    done
    for dev in /sys/class/net/*; do
        dev=${dev##*/}
        case "$dev" in "$DRV_NS_PREFIX"[1-9]|"$DRV_BRIDGE") echo "network interface $dev";; esac
    done
    for p in $(drv_harness_pids); do
        echo "process $p: $(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | cut -c1-120)"
    done
    return 0
}

# Print the calling script's header comment (its usage).
drv_usage() { awk 'NR > 1 && !/^#/ {exit} NR > 1 {sub(/^# ?/, ""); print}' "$1"; }
