#!/usr/bin/env bash
# Guests (libvirt domains) on the hosts of tests/libvirt/hosts.sh.
#
# usage: guests.sh define NAME HOST MEMORY_MIB [--kind tiny|linux|localdisk] [--dirty-mib N]
#                  [--restart-policy always|manual] [--anti-affinity GROUP] [--not-migratable]
#                  [--autostart] [--no-start] [--tb-cache-mib N]
#            Writes <state>/domains/NAME.xml, defines it on HOST (K or hK), starts it.
#              linux (default)  busybox Linux guest (MEMORY_MIB >= 96): "HB <n> up=<s>" every
#                               second on its serial port, appended to <state>/serial/NAME.log;
#                               powers off on ACPI shutdown; --dirty-mib N rewrites N MiB of RAM
#                               continuously
#              tiny             no-OS guest: ignores ACPI shutdown (shutdown times out, then
#                               force off)
#              localdisk        no-OS guest with a local qcow2 disk <state>/disks/NAME.qcow2:
#                               libvirt refuses to live-migrate it (no shared storage)
#            Persistent, <on_reboot>restart</on_reboot>, TCG. The flags fill Drover's metadata
#            <drover:vm xmlns:drover="https://drover.dev/xmlns/vm/1" restart_policy=".."
#            anti_affinity=".." migratable="false"/>.
#        guests.sh undefine NAME           destroy and undefine it wherever it is, remove its files
#        guests.sh migrate NAME HOST       virsh migrate --live --p2p --persistent --undefinesource
#                                          from the host running it to HOST; prints the wall time
#        guests.sh where NAME              the host running it (else the one defining it)
#        guests.sh list                    every domain on every host that is up
#        guests.sh wait-heartbeat NAME [COUNT] [--timeout S]
#                                          wait until COUNT (1) more heartbeats arrive (default 120 s)
#        guests.sh heartbeat-check NAME [--max-gap-ms MS]
#            Checks that the heartbeat counter in the serial log is strictly increasing (the guest
#            never rebooted) and prints one line, e.g.
#              web1: heartbeats=12 range=1..12 reboots=0 missed=0 max_gap_ms=1280 after_hb=4 typical_gap_ms=1012 excess_ms=268
#            Gaps are measured with this machine's clock (<state>/serial/NAME.hb, written by a
#            timestamper that guests.sh starts with each linux guest): the guest beats every
#            ~1000 ms of its own time, so excess_ms (longest gap - median gap) bounds its longest
#            pause, e.g. a migration's downtime. Exit 1 if it rebooted or max_gap_ms > MS.
set -euo pipefail
DRV_PROG=guests.sh
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() { drv_usage "${BASH_SOURCE[0]}"; }

check_name() {
    [[ "$1" =~ ^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$ ]] ||
        drv_die "bad $2 '$1': letters, digits, '_', '.', '-' (at most 63)"
}
serial_log() { echo "$DRV_STATE/serial/$1.log"; }
hb_log() { echo "$DRV_STATE/serial/$1.hb"; }

# Hosts that answer, as indexes.
live_hosts() {
    local k
    for k in $(seq 1 "$DRV_MAX_HOSTS"); do
        [ -e "/run/netns/$(drv_ns "$k")" ] && drv_host_alive "$k" && echo "$k"
    done
    return 0
}

# "K state" for every live host that knows domain NAME.
find_domain() {
    local k st
    for k in $(live_hosts); do
        st=$(DRV_VIRSH_TIMEOUT=10 drv_virsh "$k" domstate "$1" 2>/dev/null | head -1) || continue
        [ -n "$st" ] && echo "$k $st"
    done
    return 0
}

# The heartbeat timestamper: copies the serial log, line by line, with this machine's time in
# front ("<epoch seconds.micro> <line>"), to <state>/serial/NAME.hb. QEMU writes the log on
# whichever host runs the guest; the log path is the same on all of them.
stop_timestamper() {
    local f="$DRV_STATE/serial/$1.hb.pid" pid
    [ -r "$f" ] || return 0
    pid=$(cat "$f")
    if drv_pid_alive "$pid" && grep -qzs "^$DRV_MARK=" "/proc/$pid/environ"; then
        kill -TERM -- "-$pid" 2>/dev/null || true
    fi
    rm -f "$f"
}
start_timestamper() {
    local name=$1 log hb
    log=$(serial_log "$name") hb=$(hb_log "$name")
    stop_timestamper "$name"
    : >"$hb"
    # shellcheck disable=SC2016
    env -i PATH=/usr/bin:/bin "$DRV_MARK=$DRV_STATE" setsid bash -c '
        tail -n +1 -F "$1" 2>/dev/null |
            while IFS= read -r line; do printf "%s %s\n" "$EPOCHREALTIME" "${line%$'"'\r'"'}"; done >>"$2"
    ' drv-heartbeat "$log" "$hb" </dev/null >/dev/null 2>&1 8>&- 9>&- &
    echo $! >"$DRV_STATE/serial/$name.hb.pid"
}

xml_domain() {
    local name=$1 kind=$2 mem=$3 dirty=$4 tb=$5 meta=$6 os devices
    case "$kind" in
        linux)
            os="<kernel>$DRV_GUEST_DIR/vmlinuz</kernel>
    <initrd>$DRV_GUEST_DIR/initramfs.gz</initrd>
    <cmdline>console=ttyS0 quiet panic=-1 drover.name=$name dirty=$dirty</cmdline>"
            devices="<serial type='file'>
      <source path='$(serial_log "$name")' append='on'/>
      <target port='0'/>
    </serial>";;
        tiny)
            os="<boot dev='hd'/>"
            devices="";;
        localdisk)
            os="<boot dev='hd'/>"
            devices="<disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='$DRV_STATE/disks/$name.qcow2'/>
      <target dev='vda' bus='virtio'/>
    </disk>";;
    esac
    cat <<EOF
<domain type='qemu'>
  <name>$name</name>
  <metadata>
    <drover:vm xmlns:drover="$DRV_XMLNS"$meta/>
  </metadata>
  <memory unit='MiB'>$mem</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    $os
  </os>
  <features>
    <acpi/>
    <tcg><tb-cache unit='MiB'>$tb</tb-cache></tcg>
  </features>
  <cpu mode='custom' match='exact' check='none'><model fallback='forbid'>qemu64</model></cpu>
  <clock offset='utc'/>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>restart</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <emulator>$DRV_EMULATOR</emulator>
    $devices
    <controller type='usb' model='none'/>
    <memballoon model='none'/>
  </devices>
</domain>
EOF
}

cmd_define() {
    local name=${1:-} host=${2:-} mem=${3:-} kind=linux dirty=0 policy="" group="" migratable=""
    local autostart=0 start=1 tb=16 meta="" k xml found
    [ $# -ge 3 ] || drv_die "usage: guests.sh define NAME HOST MEMORY_MIB [--kind tiny|linux|localdisk] ..."
    shift 3
    check_name "$name" "guest name"
    k=$(drv_host_index "$host")
    [[ "$mem" =~ ^[0-9]+$ ]] && [ "$mem" -ge 16 ] || drv_die "MEMORY_MIB must be a number >= 16 (got '$mem')"
    while [ $# -gt 0 ]; do
        case "$1" in
            --kind) kind=${2:-}; shift;;
            --dirty-mib) dirty=${2:-}; shift;;
            --restart-policy) policy=${2:-}; shift;;
            --anti-affinity) group=${2:-}; shift;;
            --not-migratable) migratable=false;;
            --autostart) autostart=1;;
            --no-start) start=0;;
            --tb-cache-mib) tb=${2:-}; shift;;
            *) drv_die "define: unknown argument '$1'";;
        esac
        shift
    done
    case "$kind" in tiny|linux|localdisk) ;; *) drv_die "--kind must be tiny, linux or localdisk";; esac
    case "$policy" in ""|always|manual) ;; *) drv_die "--restart-policy must be always or manual";; esac
    [ -z "$group" ] || check_name "$group" "anti-affinity group"
    [[ "$dirty" =~ ^[0-9]+$ ]] || drv_die "--dirty-mib needs a number"
    [[ "$tb" =~ ^[0-9]+$ ]] && [ "$tb" -ge 1 ] || drv_die "--tb-cache-mib needs a number >= 1"
    if [ "$kind" = linux ]; then
        [ "$mem" -ge 96 ] || drv_die "a linux guest needs MEMORY_MIB >= 96 (got $mem)"
        [ "$dirty" -le $((mem - 80)) ] || drv_die "--dirty-mib $dirty leaves the guest too little of its $mem MiB (at most $((mem - 80)))"
        [ -s "$DRV_GUEST_DIR/vmlinuz" ] && [ -s "$DRV_GUEST_DIR/initramfs.gz" ] ||
            drv_die "no guest image in $DRV_GUEST_DIR: run tests/libvirt/guest/build.sh"
    elif [ "$dirty" != 0 ]; then
        drv_die "--dirty-mib applies to --kind linux only"
    fi
    drv_require_root
    drv_check_paths
    drv_host_alive "$k" || drv_die "h$k is not up (hosts.sh up / hosts.sh status)"
    found=$(find_domain "$name")
    [ -z "$found" ] || drv_die "a domain named $name already exists on h${found%% *} (guests.sh undefine $name)"

    [ -z "$policy" ] || meta+=" restart_policy=\"$policy\""
    [ -z "$group" ] || meta+=" anti_affinity=\"$group\""
    [ -z "$migratable" ] || meta+=" migratable=\"$migratable\""
    mkdir -p "$DRV_STATE"/{serial,domains,disks}
    xml="$DRV_STATE/domains/$name.xml"
    xml_domain "$name" "$kind" "$mem" "$dirty" "$tb" "$meta" >"$xml"
    if [ "$kind" = localdisk ]; then
        rm -f "$DRV_STATE/disks/$name.qcow2"
        qemu-img create -q -f qcow2 "$DRV_STATE/disks/$name.qcow2" 16M ||
            drv_die "qemu-img could not create $DRV_STATE/disks/$name.qcow2"
    fi
    if [ "$kind" = linux ]; then
        : >"$(serial_log "$name")"
        start_timestamper "$name"
    fi
    drv_virsh "$k" define "$xml" >/dev/null || drv_die "h$k refused the definition of $name ($xml)"
    [ "$autostart" = 0 ] || drv_virsh "$k" autostart "$name" >/dev/null
    if [ "$start" = 1 ]; then
        drv_virsh "$k" start "$name" >/dev/null || drv_die "h$k could not start $name"
    fi
    drv_say "$name ($kind, $mem MiB) defined$([ "$start" = 1 ] && echo " and started") on h$k$([ "$kind" = linux ] && echo "; serial log $(serial_log "$name")")"
}

cmd_undefine() {
    local name=${1:-} line k
    check_name "$name" "guest name"
    drv_require_root
    while read -r line; do
        [ -n "$line" ] || continue
        k=${line%% *}
        drv_virsh "$k" destroy "$name" >/dev/null 2>&1 || true
        drv_virsh "$k" undefine "$name" >/dev/null 2>&1 || true
        drv_say "$name removed from h$k"
    done < <(find_domain "$name")
    stop_timestamper "$name"
    rm -f "$DRV_STATE/disks/$name.qcow2"
}

cmd_where() {
    local name=${1:-} found
    check_name "$name" "guest name"
    found=$(find_domain "$name")
    [ -n "$found" ] || { drv_say "$name: on no host that is up"; return 1; }
    # the running copy wins (during a migration both hosts know it)
    echo "h$( (grep ' running$' <<<"$found" || echo "$found") | head -1 | cut -d' ' -f1)"
}

cmd_migrate() {
    local name=${1:-} to from t0 out ms
    check_name "$name" "guest name"
    to=$(drv_host_index "${2:-}")
    from=$(cmd_where "$name") || drv_die "$name is on no host that is up"
    from=${from#h}
    [ "$from" != "$to" ] || drv_die "$name is already on h$to"
    drv_say "+ virsh -c $(drv_uri "$from") migrate --live --p2p --persistent --undefinesource $name $(drv_uri "$to")"
    t0=$(drv_now_ms)
    if ! out=$(DRV_VIRSH_TIMEOUT=${DROVER_MIGRATE_TIMEOUT:-300} drv_virsh "$from" migrate --live --p2p \
               --persistent --undefinesource "$name" "$(drv_uri "$to")" 2>&1); then
        drv_say "$out"
        drv_die "migration of $name from h$from to h$to failed"
    fi
    ms=$(( $(drv_now_ms) - t0 ))
    drv_say "$name migrated h$from -> h$to in $ms ms"
    echo "$ms"
}

cmd_list() {
    local k
    printf '%-4s %-20s %s\n' HOST NAME STATE
    for k in $(live_hosts); do
        DRV_VIRSH_TIMEOUT=10 drv_virsh "$k" list --all | awk -v h="h$k" 'NF >= 3 {s=$3; for (i=4; i<=NF; i++) s=s" "$i; printf "%-4s %-20s %s\n", h, $2, s}'
    done
}

# Current heartbeat counter of NAME (0 if none yet).
last_hb() {
    local log
    log=$(serial_log "$1")
    [ -r "$log" ] || { echo 0; return; }
    tr -d '\r' <"$log" | { grep -ao 'HB [0-9]* up=' || true; } | tail -1 | awk '{print $2 + 0} END {if (NR == 0) print 0}'
}

cmd_wait_heartbeat() {
    local name=${1:-} count=1 timeout=120 start now t0
    check_name "$name" "guest name"; shift
    while [ $# -gt 0 ]; do
        case "$1" in
            --timeout) timeout=${2:-}; shift;;
            *) count=$1;;
        esac
        shift
    done
    [[ "$count" =~ ^[0-9]+$ && "$timeout" =~ ^[0-9]+$ ]] || drv_die "wait-heartbeat NAME [COUNT] [--timeout S]"
    [ -e "$(serial_log "$name")" ] || drv_die "no serial log for $name ($(serial_log "$name")): not a linux guest?"
    start=$(last_hb "$name") t0=$(drv_now_ms)
    while :; do
        now=$(last_hb "$name")
        # a counter that went down is a reboot: it counts from its new start
        [ "$now" -ge "$start" ] || start=0
        [ $((now - start)) -lt "$count" ] || break
        [ $(( $(drv_now_ms) - t0 )) -lt $((timeout * 1000)) ] ||
            drv_die "$name: no $count new heartbeat(s) within ${timeout}s (last HB $now; log $(serial_log "$name"))"
        sleep 0.2
    done
    drv_say "$name: HB $now ($(( $(drv_now_ms) - t0 )) ms)"
}

cmd_heartbeat_check() {
    local name=${1:-} max_gap="" src timed=1 gaps typical rc=0 out
    check_name "$name" "guest name"; shift
    while [ $# -gt 0 ]; do
        case "$1" in
            --max-gap-ms) max_gap=${2:-}; shift
                          [[ "$max_gap" =~ ^[0-9]+$ ]] || drv_die "--max-gap-ms needs milliseconds";;
            *) drv_die "heartbeat-check: unknown argument '$1'";;
        esac
        shift
    done
    src=$(hb_log "$name")
    if [ ! -s "$src" ]; then
        src=$(serial_log "$name") timed=0
        [ -r "$src" ] || drv_die "no serial log for $name ($src)"
        drv_say "note: no timestamped copy ($(hb_log "$name")): gaps cannot be measured"
    fi
    gaps=$(mktemp /tmp/drover-hb.XXXXXX)
    # Lines: "[<epoch.micro> ]...HB <n> up=<uptime>..." (a kernel message may share the line).
    out=$(tr -d '\r' <"$src" | awk -v name="$name" -v timed="$timed" -v gaps="$gaps" '
        match($0, /HB [0-9]+ up=[0-9.]+/) {
            split(substr($0, RSTART, RLENGTH), f, /[ =]/)
            n = f[2] + 0; up = f[4] + 0; ts = (timed ? $1 + 0 : 0)
            count++
            if (count == 1) first = n
            else {
                if (n <= last) { printf "%s: REBOOTED: HB %d (up=%s s) came after HB %d (up=%s s)\n", name, n, up, last, lastup; bad = 1 }
                else if (up < lastup) { printf "%s: REBOOTED: uptime went back from %s to %s s at HB %d\n", name, lastup, up, n; bad = 1 }
                if (n > last + 1) missed += n - last - 1
                if (timed) {
                    gap = (ts - lastts) * 1000
                    printf "%.0f\n", gap > gaps
                    if (gap > maxgap) { maxgap = gap; at = last }
                }
            }
            last = n; lastup = up; lastts = ts
        }
        END {
            if (count == 0) { printf "%s: no heartbeat in %s\n", name, FILENAME; exit 2 }
            printf "%s: heartbeats=%d range=%d..%d reboots=%s missed=%d", name, count, first, last, (bad ? "yes" : 0), missed
            if (timed && count > 1) printf " max_gap_ms=%.0f after_hb=%d", maxgap, at
            if (bad) exit 1
        }') || rc=$?
    if [ "$timed" = 1 ] && [ -s "$gaps" ]; then
        # The typical (median) gap is the guest's own period (~1000 ms plus its loop's cost under
        # TCG); the longest gap's excess over it bounds the guest's longest pause (downtime).
        typical=$(sort -n "$gaps" | awk '{g[NR] = $1} END {print g[int((NR + 1) / 2)]}')
        local maxg=${out##*max_gap_ms=}
        maxg=${maxg%% *}
        out+=" typical_gap_ms=$typical excess_ms=$((maxg - typical))"
        if [ -n "$max_gap" ] && [ "$rc" = 0 ] && [ "$maxg" -gt "$max_gap" ]; then
            out+=$'\n'"$name: longest gap $maxg ms exceeds $max_gap ms"
            rc=1
        fi
    fi
    rm -f "$gaps"
    echo "$out"
    return "$rc"
}

cmd=${1:-}; [ $# -eq 0 ] || shift
case "$cmd" in
    define) cmd_define "$@";;
    undefine) cmd_undefine "$@";;
    migrate) cmd_migrate "$@";;
    where) cmd_where "$@";;
    list) cmd_list;;
    wait-heartbeat) cmd_wait_heartbeat "$@";;
    heartbeat-check) cmd_heartbeat_check "$@";;
    -h|--help|help) usage;;
    *) usage >&2; exit 2;;
esac
