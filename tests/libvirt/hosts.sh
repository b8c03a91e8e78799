#!/usr/bin/env bash
# Drover's libvirt test hosts: N "hypervisor hosts" h1..hN on this one machine, each with
#   - its own network namespace drv-hK on bridge drvbr0, address 10.213.0.(10+K),
#   - its own mount and UTS namespaces: hostname hK, private /etc/libvirt, /run/libvirt,
#     /var/lib/libvirt, /var/log/libvirt, /var/cache/libvirt and /etc/hosts,
#   - its own libvirtd (under `tini -s`), TCP without authentication, distinct host_uuid,
#     reachable as qemu+tcp://10.213.0.(10+K)/system, QEMU TCG only.
#
# usage: hosts.sh up [N]                 start hosts h1..hN (default 3, at most 9); hosts already
#                                        running are left alone, others are created afresh
#        hosts.sh down [--purge]         remove everything (domains, processes, namespaces,
#                                        veths, bridge); --purge also deletes the state directory
#        hosts.sh reboot K [--upgrade [TARGET]] [--down-secs S]
#                                        power-cycle host K: its QEMU processes and libvirtd die at
#                                        once, its /run is wiped, libvirtd starts again with a new
#                                        boot id (persistent autostart domains come back); with
#                                        --upgrade, TARGET (default: last number of the version
#                                        + 1) is written to its version file first; --down-secs
#                                        keeps it powered off for S seconds
#        hosts.sh stop K | start K       power host K off (stays off) / on again
#        hosts.sh uri K                  print qemu+tcp://10.213.0.(10+K)/system
#        hosts.sh version K | boot-id K  print the host's version / boot id (the files below)
#        hosts.sh status                 one line per host
#   K is 1..9 or h1..h9.
#
# Files (state directory $DROVER_LIBVIRT_STATE, default tests/libvirt/.state):
#   hK/version   the host's "platform version" (INITIAL_VERSION at creation, default 1.0)
#   hK/boot_id   a fresh UUID written at every start of the host's libvirtd
#   hK/uri       its libvirt URI;  hK/libvirtd.log, hK/log/  its daemon's logs
set -euo pipefail
DRV_PROG=hosts.sh
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

START_TIMEOUT=${DROVER_LIBVIRT_START_TIMEOUT:-90}
CAPS_SEED="$DRV_CACHE/qemu-capabilities"

usage() { drv_usage "${BASH_SOURCE[0]}"; }

preflight() {
    drv_require_root
    drv_check_paths
    local c
    for c in virsh tini ip unshare flock timeout; do
        command -v "$c" >/dev/null || drv_die "$c not found: run tests/libvirt/install.sh first"
    done
    [ -x /usr/sbin/libvirtd ] || drv_die "/usr/sbin/libvirtd not found: run tests/libvirt/install.sh first"
    [ -x "$DRV_EMULATOR" ] || drv_die "$DRV_EMULATOR not found: run tests/libvirt/install.sh first"
    mkdir -p "$DRV_STATE"/{serial,domains,disks}
}

# Serialise commands that change the same thing: fd 8 = whole harness, fd 9 = one host. The fds
# are closed in every daemon we start, so no daemon keeps a lock.
lock_harness() { exec 8>"$DRV_STATE/.lock"; flock -w 300 8 || drv_die "harness busy (lock $DRV_STATE/.lock)"; }
lock_host() { exec 9>"$(drv_hostdir "$1")/.lock"; flock -w 300 9 || drv_die "h$1 busy (lock)"; }

up_bridge() {
    local other
    other=$(ip -o -4 addr show | awk -v br="$DRV_BRIDGE" -v net="$DRV_NET." 'index($4, net) == 1 && $2 != br {print $2 " " $4}')
    [ -z "$other" ] || drv_die "$DRV_NET.0/24 is already in use here ($other): the harness needs it for bridge $DRV_BRIDGE"
    if ! ip link show "$DRV_BRIDGE" >/dev/null 2>&1; then
        ip link add "$DRV_BRIDGE" type bridge
    fi
    case " $(ip -o -4 addr show dev "$DRV_BRIDGE" | awk '{print $4}' | xargs) " in
        *" $DRV_NET.1/24 "*) ;;
        *) ip addr add "$DRV_NET.1/24" dev "$DRV_BRIDGE";;
    esac
    ip link set "$DRV_BRIDGE" up
}

# Fresh configuration and network for host K (anything left of an earlier host K is removed).
create_host() {
    local k=$1 d ip ns
    d=$(drv_hostdir "$k") ip=$(drv_ip "$k") ns=$(drv_ns "$k")
    kill_host_processes "$k"
    ip netns del "$ns" 2>/dev/null || true
    ip link del "$ns" 2>/dev/null || true
    rm -rf "$d"
    mkdir -p "$d"/{etc/qemu,run,lib,log,cache}
    cat >"$d/etc/libvirtd.conf" <<EOF
# Drover test host h$k (tests/libvirt/hosts.sh)
listen_tls = 0
listen_tcp = 1
listen_addr = "$ip"
auth_tcp = "none"
auth_unix_ro = "none"
auth_unix_rw = "none"
host_uuid = "d7a0e600-0000-4000-8000-00000000000$k"
log_outputs = "3:file:/var/log/libvirt/libvirtd.log"
EOF
    cat >"$d/etc/qemu.conf" <<EOF
# Drover test host h$k (tests/libvirt/hosts.sh): QEMU as root, no cgroups, no security driver,
# no per-domain mount namespace, console output written by QEMU itself (no virtlogd).
user = "root"
group = "root"
dynamic_ownership = 0
remember_owner = 0
security_driver = "none"
namespaces = [ ]
cgroup_controllers = [ ]
stdio_handler = "file"
migration_address = "$ip"
migration_host = "$ip"
EOF
    : >"$d/etc/libvirt.conf"
    # libvirt's qemu hook (read once, when libvirtd starts): on the destination of an incoming
    # migration, libvirt runs `qemu DOMAIN migrate begin -` and aborts the migration when the
    # hook exits non-zero. A test refuses the next incoming migration of DOMAIN (on whichever
    # host it lands) with the file <state>/faults/refuse-migrate-DOMAIN, taken once (mv is
    # atomic: two hosts never both take it). Nothing is written to stdout: for `migrate`,
    # libvirt would take it as a replacement domain XML.
    mkdir -p "$d/etc/hooks"
    cat >"$d/etc/hooks/qemu" <<EOF
#!/bin/sh
# Drover test host h$k (tests/libvirt/hosts.sh): refuses an incoming migration once per fault file.
cat >/dev/null
[ "\$2" = migrate ] || exit 0
fault="$DRV_STATE/faults/refuse-migrate-\$1"
if mv "\$fault" "\$fault.taken-h$k" 2>/dev/null; then
    rm -f "\$fault.taken-h$k"
    echo "h$k refuses the incoming migration of \$1 (test fault \$fault)" >&2
    exit 1
fi
exit 0
EOF
    chmod 755 "$d/etc/hooks/qemu"
    {
        echo "127.0.0.1 localhost"
        echo "$ip h$k"
        for o in $(seq 1 "$DRV_MAX_HOSTS"); do [ "$o" = "$k" ] || echo "$(drv_ip "$o") h$o"; done
    } >"$d/hosts"
    echo "${INITIAL_VERSION:-1.0}" >"$d/version"
    drv_uri "$k" >"$d/uri"
    echo down >"$d/state"
    ip netns add "$ns"
    stat -L -c 'net:[%i]' "/run/netns/$ns" >"$d/netns_id"
    ip link add "$ns" type veth peer name eth0 netns "$ns"
    ip link set "$ns" master "$DRV_BRIDGE" up
    ip -n "$ns" addr add "$ip/24" dev eth0
    ip -n "$ns" link set eth0 up
    ip -n "$ns" link set lo up
}

# Start host K's libvirtd (its namespace and configuration exist); does not wait.
spawn_host() {
    local k=$1 d ns
    d=$(drv_hostdir "$k") ns=$(drv_ns "$k")
    [ -e "/run/netns/$ns" ] || drv_die "h$k has no network namespace: run hosts.sh up"
    if [ -d "$CAPS_SEED" ] && [ -z "$(ls -A "$d/cache/qemu/capabilities" 2>/dev/null)" ]; then
        mkdir -p "$d/cache/qemu/capabilities"   # QEMU probed once per machine, not per host
        cp -p "$CAPS_SEED"/*.xml "$d/cache/qemu/capabilities/" 2>/dev/null || true
    fi
    rm -f "$d/libvirtd.pid"
    cat /proc/sys/kernel/random/uuid >"$d/boot_id.tmp"
    mv -f "$d/boot_id.tmp" "$d/boot_id"
    echo starting >"$d/state"
    # A clean environment with the harness marker; a new session (no terminal signals); the
    # lock fds closed. Every process below lives in namespace drv-hK: that is how the harness
    # finds them again (lib.sh: drv_harness_pids).
    # shellcheck disable=SC2016
    env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 "$DRV_MARK=$DRV_STATE" \
        setsid ip netns exec "$ns" unshare --mount --uts --propagation private -- \
        /bin/bash -c '
            set -e
            k=$1 d=$2
            hostname "h$k"
            mount --bind "$d/hosts" /etc/hosts
            for m in etc:/etc/libvirt run:/run/libvirt lib:/var/lib/libvirt \
                     log:/var/log/libvirt cache:/var/cache/libvirt; do
                mkdir -p "${m#*:}"
                mount --bind "$d/${m%%:*}" "${m#*:}"
            done
            echo "=== h$k boot $(cat "$d/boot_id") at $(date -u +%FT%TZ)"
            # tini -s: a subreaper for the QEMU processes libvirtd daemonizes (without one, every
            # destroy or migration waits ~2 s for them to be reaped); -g: signals to the group.
            exec tini -s -g -- /usr/sbin/libvirtd --listen --pid-file "$d/libvirtd.pid"
        ' drv-host "$k" "$d" </dev/null >>"$d/libvirtd.log" 2>&1 8>&- 9>&- &
    echo $! >"$d/tini.pid"
}

# Wait (bounded) until host K answers; then remember its QEMU capabilities for the next hosts.
wait_host() {
    local k=$1 d t0 tpid
    d=$(drv_hostdir "$k") t0=$(drv_now_ms)
    tpid=$(cat "$d/tini.pid")
    while ! drv_host_alive "$k"; do
        if ! drv_pid_alive "$tpid"; then
            echo down >"$d/state"
            tail -20 "$d/libvirtd.log" >&2
            drv_die "h$k: libvirtd exited while starting (log above, $d/libvirtd.log)"
        fi
        if [ $(( $(drv_now_ms) - t0 )) -gt $((START_TIMEOUT * 1000)) ]; then
            tail -20 "$d/libvirtd.log" >&2
            drv_die "h$k: libvirtd not answering at $(drv_uri "$k") after ${START_TIMEOUT}s"
        fi
        sleep 0.1
    done
    echo up >"$d/state"
    if compgen -G "$d/cache/qemu/capabilities/*.xml" >/dev/null; then
        mkdir -p "$CAPS_SEED"
        cp -pu "$d"/cache/qemu/capabilities/*.xml "$CAPS_SEED/" 2>/dev/null || true
    fi
    drv_say "h$k up at $(drv_uri "$k") (libvirtd pid $(cat "$d/libvirtd.pid" 2>/dev/null || echo '?'), version $(cat "$d/version"), boot $(cat "$d/boot_id"), $(( $(drv_now_ms) - t0 )) ms)"
}

kill_host_processes() {
    local pids
    mapfile -t pids < <(drv_harness_pids "$1")
    [ ${#pids[@]} -eq 0 ] || drv_kill_pids "${pids[@]}"
}

# Power cut: every process of host K (QEMU, libvirtd, tini) dies at the same instant; /run (a
# tmpfs on a real host) is emptied. Persistent definitions in /etc/libvirt survive.
power_off() {
    local k=$1 d
    d=$(drv_hostdir "$k")
    kill_host_processes "$k" || drv_die "h$k: processes survive SIGKILL"
    find "$d/run" -mindepth 1 -delete 2>/dev/null || true
    rm -f "$d/libvirtd.pid" "$d/tini.pid"
    echo down >"$d/state"
}

# "1.0" -> "1.1", "2" -> "3", "8.2.1" -> "8.2.2"
bump_version() {
    local v=$1 head last
    if [[ "$v" =~ ^(.*[^0-9])?([0-9]+)$ ]]; then
        head=${BASH_REMATCH[1]} last=${BASH_REMATCH[2]}
        echo "$head$((10#$last + 1))"
    else
        drv_die "cannot bump version '$v': give --upgrade TARGET"
    fi
}

cmd_up() {
    local n=${1:-3} k t0 todo=() pids=() rc=0
    [[ "$n" =~ ^[1-9]$ ]] || drv_die "up N: N must be 1..$DRV_MAX_HOSTS (got '$n')"
    preflight
    lock_harness
    t0=$(drv_now_ms)
    up_bridge
    for k in $(seq 1 "$n"); do
        if [ -e "/run/netns/$(drv_ns "$k")" ] && drv_host_alive "$k" &&
           [ "$(cat "$(drv_hostdir "$k")/netns_id" 2>/dev/null)" = "$(stat -L -c 'net:[%i]' "/run/netns/$(drv_ns "$k")")" ]; then
            drv_say "h$k already up at $(drv_uri "$k") (version $(cat "$(drv_hostdir "$k")/version" 2>/dev/null))"
        else
            create_host "$k"
            todo+=("$k")
        fi
    done
    # Without a capabilities seed, the first host probes QEMU alone; the others then reuse it.
    if [ ${#todo[@]} -gt 1 ] && ! compgen -G "$CAPS_SEED/*.xml" >/dev/null; then
        spawn_host "${todo[0]}"; wait_host "${todo[0]}"
        todo=("${todo[@]:1}")
    fi
    for k in "${todo[@]}"; do spawn_host "$k"; done
    for k in "${todo[@]}"; do (wait_host "$k") & pids+=($!); done
    for k in "${pids[@]}"; do wait "$k" || rc=1; done
    [ "$rc" = 0 ] || drv_die "some hosts did not come up (see above); 'hosts.sh down' removes everything"
    drv_say "$n host(s) up in $(( $(drv_now_ms) - t0 )) ms (state in $DRV_STATE)"
}

cmd_down() {
    local purge=0
    case "${1:-}" in --purge) purge=1;; "") ;; *) drv_die "down: unknown option $1";; esac
    drv_require_root
    [ -d "$DRV_STATE" ] && lock_harness
    local t0 rc=0
    t0=$(drv_now_ms)
    cleanup_all || rc=1
    [ "$purge" = 0 ] || { exec 8>&-; rm -rf "$DRV_STATE"; }
    [ "$rc" = 0 ] || drv_die "down: something could not be removed (see above)"
    drv_say "harness down in $(( $(drv_now_ms) - t0 )) ms: no namespace, interface or process left"
}

host_must_exist() {
    [ -d "$(drv_hostdir "$1")" ] && [ -e "/run/netns/$(drv_ns "$1")" ] ||
        drv_die "h$1 does not exist: run 'hosts.sh up N' with N >= $1"
}

cmd_reboot() {
    local k upgrade=0 target="" down_secs=0 d old new t0
    k=$(drv_host_index "${1:-}"); shift
    while [ $# -gt 0 ]; do
        case "$1" in
            --upgrade) upgrade=1
                       if [ $# -gt 1 ] && [[ "$2" != --* ]]; then target=$2; shift; fi;;
            --down-secs) [[ "${2:-}" =~ ^[0-9]+(\.[0-9]+)?$ ]] || drv_die "--down-secs needs seconds"
                         down_secs=$2; shift;;
            *) drv_die "reboot: unknown argument $1";;
        esac
        shift
    done
    preflight
    host_must_exist "$k"
    lock_host "$k"
    d=$(drv_hostdir "$k") t0=$(drv_now_ms)
    old=$(cat "$d/boot_id" 2>/dev/null || true)
    power_off "$k"
    if [ "$upgrade" = 1 ]; then
        [ -n "$target" ] || target=$(bump_version "$(cat "$d/version")")
        [[ "$target" =~ ^[A-Za-z0-9._+~:-]+$ ]] || drv_die "bad version '$target'"
        drv_say "h$k: version $(cat "$d/version") -> $target"
        echo "$target" >"$d/version.tmp"
        mv -f "$d/version.tmp" "$d/version"
    fi
    [ "$down_secs" = 0 ] || sleep "$down_secs"
    spawn_host "$k"
    wait_host "$k"
    new=$(cat "$d/boot_id")
    drv_say "h$k rebooted in $(( $(drv_now_ms) - t0 )) ms (boot id $old -> $new)"
}

cmd_stop() {
    local k; k=$(drv_host_index "${1:-}")
    preflight; host_must_exist "$k"; lock_host "$k"
    power_off "$k"
    drv_say "h$k powered off"
}

cmd_start() {
    local k; k=$(drv_host_index "${1:-}")
    preflight; host_must_exist "$k"; lock_host "$k"
    if drv_host_alive "$k"; then drv_say "h$k already up"; return 0; fi
    power_off "$k"   # whatever is left of a half-dead host
    spawn_host "$k"
    wait_host "$k"
}

cmd_status() {
    local k d st doms any=0
    printf '%-4s %-12s %-9s %-9s %-37s %s\n' HOST ADDRESS STATE VERSION BOOT_ID "RUNNING DOMAINS"
    for k in $(seq 1 "$DRV_MAX_HOSTS"); do
        d=$(drv_hostdir "$k")
        st=""
        # hosts without a namespace (never created, or removed by down) are not listed
        if [ ! -e "/run/netns/$(drv_ns "$k")" ]; then
            [ -n "$(drv_harness_pids "$k")" ] || continue
            st=absent
        fi
        any=1 doms=""
        if [ "$st" = absent ]; then :
        elif drv_host_alive "$k"; then
            st=up; doms=$(DRV_VIRSH_TIMEOUT=10 drv_virsh "$k" list --name 2>/dev/null | xargs || true)
        elif [ -n "$(drv_harness_pids "$k")" ]; then st=hung
        else st=down; fi
        printf '%-4s %-12s %-9s %-9s %-37s %s\n' "h$k" "$(drv_ip "$k")" "$st" \
            "$(cat "$d/version" 2>/dev/null || echo -)" "$(cat "$d/boot_id" 2>/dev/null || echo -)" "$doms"
    done
    [ "$any" = 1 ] || drv_say "no hosts (hosts.sh up N)"
}

case "${1:-}" in
    up) shift; cmd_up "$@";;
    down) shift; cmd_down "$@";;
    reboot) shift; cmd_reboot "$@";;
    stop) shift; cmd_stop "$@";;
    start) shift; cmd_start "$@";;
    uri) k=$(drv_host_index "${2:-}"); drv_uri "$k";;
    version|boot-id)
        k=$(drv_host_index "${2:-}") f="$(drv_hostdir "$k")/${1/-/_}"
        [ -r "$f" ] || drv_die "h$k has no $f (hosts.sh up)"
        cat "$f";;
    status) cmd_status;;
    -h|--help|help) usage;;
    *) usage >&2; exit 2;;
esac
