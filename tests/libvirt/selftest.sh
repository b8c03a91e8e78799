#!/usr/bin/env bash
# End-to-end check of Drover's libvirt test harness on this machine (root, ~1 minute):
# three hosts, two Linux guests, a no-OS guest and a local-disk guest; a live migration with
# heartbeat continuity; the refused migration of the local-disk guest; ACPI shutdown and forced
# off; a host power-cycle with an upgrade (version file, boot id) and one without (autostart);
# then `hosts.sh down`, and nothing of the harness may be left.
#
# usage: tests/libvirt/selftest.sh [--no-install]
#   --no-install  skip install.sh (packages known to be there); guest/build.sh always runs (it
#                 does nothing when the guest is built)
# Ends with "selftest: N passed, M failed"; exit 0 only if all passed. Refuses to run while a
# harness is up (it would take it down): run `tests/libvirt/hosts.sh down` first.
set -euo pipefail
DRV_PROG=selftest.sh
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
HOSTS="$DRV_DIR/hosts.sh"
GUESTS="$DRV_DIR/guests.sh"

install=1
for a in "$@"; do
    case "$a" in
        --no-install) install=0;;
        -h|--help) drv_usage "${BASH_SOURCE[0]}"; exit 0;;
        *) drv_die "unknown argument $a (usage: selftest.sh [--no-install])";;
    esac
done
drv_require_root

passed=0 failed=0
declare -a TIMINGS=()
ok() { passed=$((passed + 1)); printf '  ok   %s\n' "$*"; }
fail() { failed=$((failed + 1)); printf '  FAIL %s\n' "$*"; exit 1; }
check() { local what=$1; shift; if "$@"; then ok "$what"; else fail "$what"; fi; }
timing() { TIMINGS+=("$(printf '%-40s %6s ms' "$1" "$2")"); }
step() { printf '\n== %s\n' "$*"; }
uri() { drv_uri "$1"; }
vsh() { local k=$1; shift; drv_virsh "$k" "$@"; }
domstate() { vsh "$1" domstate "$2" 2>/dev/null | head -1; }

# Processes of these names that exist before the test are not ours (another test's QEMU, say).
baseline=" $(pgrep -d ' ' -x 'libvirtd|qemu-system-x86|tini|tail' || true) "

finish() {
    local rc=$? t0 left extra p
    trap - EXIT
    step "teardown"
    t0=$(drv_now_ms)
    if "$HOSTS" down; then ok "hosts.sh down"; else failed=$((failed + 1)); echo "  FAIL hosts.sh down"; fi
    timing "hosts.sh down" $(( $(drv_now_ms) - t0 ))
    cleanup_all >/dev/null 2>&1 || true     # belt and braces: must find nothing more
    left=$(drv_leftovers)
    if [ -z "$left" ]; then ok "no harness namespace, interface or process left"
    else failed=$((failed + 1)); printf '  FAIL leftovers:\n%s\n' "$left"; fi
    extra=""
    for p in $(pgrep -x 'libvirtd|qemu-system-x86|tini|tail' || true); do
        case "$baseline" in *" $p "*) continue;; esac
        drv_pid_alive "$p" && extra+="$p($(cat "/proc/$p/comm" 2>/dev/null)) "
    done
    if [ -z "$extra" ]; then ok "no new libvirtd, QEMU, tini or tail process alive"
    else failed=$((failed + 1)); echo "  FAIL processes left: $extra"; fi
    if [ ${#TIMINGS[@]} -gt 0 ]; then
        step "timings"
        printf '  %s\n' "${TIMINGS[@]}"
    fi
    [ "$rc" = 0 ] || [ "$failed" -gt 0 ] || failed=$((failed + 1))   # died outside a check
    echo
    echo "selftest: $passed passed, $failed failed"
    [ "$failed" = 0 ] && exit 0 || exit 1
}

if [ -n "$(drv_leftovers)" ]; then
    drv_leftovers >&2
    drv_die "a harness is up (above): run '$HOSTS down' first"
fi
trap finish EXIT
T0=$(drv_now_ms)

step "prerequisites"
if [ "$install" = 1 ]; then check "install.sh" "$DRV_DIR/install.sh"; fi
check "guest/build.sh" "$DRV_DIR/guest/build.sh"

step "three hosts"
t0=$(drv_now_ms)
check "hosts.sh up 3" env INITIAL_VERSION=1.0 "$HOSTS" up 3
timing "host bring-up (3 hosts)" $(( $(drv_now_ms) - t0 ))
names="" uuids="" boots=""
for k in 1 2 3; do
    names+="$(vsh "$k" hostname) "
    uuids+="$(vsh "$k" capabilities | awk -F'[<>]' '/<uuid>/ {print $3; exit}') "
    boots+="$(cat "$DRV_STATE/h$k/boot_id") "
done
check "hostnames are h1 h2 h3 (${names% })" test "$names" = "h1 h2 h3 "
check "host UUIDs distinct" test "$(tr ' ' '\n' <<<"$uuids" | sort -u | grep -c .)" = 3
check "boot ids distinct" test "$(tr ' ' '\n' <<<"$boots" | sort -u | grep -c .)" = 3
check "version files are 1.0" test "$(cat "$DRV_STATE"/h{1,2,3}/version | sort -u)" = 1.0
check "hosts.sh uri 2" test "$("$HOSTS" uri 2)" = "qemu+tcp://10.213.0.12/system"

step "guests"
check "define web1 (linux) on h1" "$GUESTS" define web1 h1 128 --restart-policy always --anti-affinity web
check "define web2 (linux, dirty 8 MiB) on h2" "$GUESTS" define web2 h2 128 --dirty-mib 8 --anti-affinity web
check "define tiny1 (tiny) on h1" "$GUESTS" define tiny1 h1 64 --kind tiny --not-migratable --restart-policy manual
check "define local1 (localdisk) on h3" "$GUESTS" define local1 h3 64 --kind localdisk
check "define tiny2 (tiny, autostart) on h3" "$GUESTS" define tiny2 h3 64 --kind tiny --autostart
meta=$(vsh 1 metadata web1 "$DRV_XMLNS")
check "web1 metadata: $meta" grep -q 'restart_policy="always".*anti_affinity="web"' <<<"$meta"
check "tiny1 metadata says migratable=false" grep -q 'migratable="false"' <<<"$(vsh 1 metadata tiny1 "$DRV_XMLNS")"
check "web1 is persistent" grep -qE '^Persistent: +yes' <<<"$(vsh 1 dominfo web1)"
t0=$(drv_now_ms)
check "web1 heartbeats" "$GUESTS" wait-heartbeat web1 2 --timeout 120
check "web2 heartbeats" "$GUESTS" wait-heartbeat web2 2 --timeout 120
timing "linux guests booted (2 HB each)" $(( $(drv_now_ms) - t0 ))

step "live migration of web1 h1 -> h2"
out=$("$GUESTS" migrate web1 h2) || fail "guests.sh migrate web1 h2"
ok "virsh migrate --live --p2p --persistent --undefinesource web1 (${out} ms)"
timing "live migration web1 (128 MiB)" "$out"
check "web1 running on h2" test "$(domstate 2 web1)" = running
check "web1 persistent on h2" grep -qE '^Persistent: +yes' <<<"$(vsh 2 dominfo web1)"
check "web1 no longer defined on h1" bash -c "! virsh -q -c $(uri 1) dominfo web1 >/dev/null 2>&1"
check "web1 metadata migrated" grep -q 'anti_affinity="web"' <<<"$(vsh 2 metadata web1 "$DRV_XMLNS")"
check "web1 heartbeats after migration" "$GUESTS" wait-heartbeat web1 3 --timeout 30
hb=$("$GUESTS" heartbeat-check web1 --max-gap-ms 10000) || { echo "$hb"; fail "web1 heartbeat continuity"; }
ok "web1 never rebooted: $hb"
timing "web1 longest heartbeat gap" "$(sed -n 's/.*max_gap_ms=\([0-9]*\).*/\1/p' <<<"$hb")"
timing "web1 pause bound (excess over median)" "$(sed -n 's/.*excess_ms=\([0-9-]*\).*/\1/p' <<<"$hb")"

step "local-disk guest cannot migrate"
if out=$(vsh 3 migrate --live --p2p --persistent --undefinesource local1 "$(uri 1)" 2>&1); then
    fail "migration of local1 was accepted"
fi
check "refused: $(tr -d '\n' <<<"$out")" grep -q "Migration without shared storage is unsafe" <<<"$out"
check "local1 still running on h3" test "$(domstate 3 local1)" = running

step "shutdown"
vsh 1 shutdown tiny1 >/dev/null
sleep 2
check "tiny1 ignores ACPI shutdown (still running after 2 s)" test "$(domstate 1 tiny1)" = running
vsh 1 destroy tiny1 >/dev/null
check "tiny1 forced off" test "$(domstate 1 tiny1)" = "shut off"
t0=$(drv_now_ms)
vsh 2 shutdown web2 >/dev/null
for _ in $(seq 1 100); do [ "$(domstate 2 web2)" = "shut off" ] && break; sleep 0.2; done
check "web2 powers off on ACPI shutdown" test "$(domstate 2 web2)" = "shut off"
timing "linux guest ACPI shutdown" $(( $(drv_now_ms) - t0 ))
check "web2 logged the power button" grep -q "power button" "$DRV_STATE/serial/web2.log"

step "power-cycle h1 with an upgrade to 2.0"
old_boot=$(cat "$DRV_STATE/h1/boot_id")
t0=$(drv_now_ms)
check "hosts.sh reboot 1 --upgrade 2.0" "$HOSTS" reboot 1 --upgrade 2.0
timing "host reboot with upgrade" $(( $(drv_now_ms) - t0 ))
check "h1 version file is 2.0" test "$(cat "$DRV_STATE/h1/version")" = 2.0
check "h1 boot id changed" test "$(cat "$DRV_STATE/h1/boot_id")" != "$old_boot"
check "h1 answers" drv_host_alive 1
check "tiny1 still defined on h1, shut off" test "$(domstate 1 tiny1)" = "shut off"
check "h2, h3 versions unchanged" test "$(cat "$DRV_STATE"/h{2,3}/version | sort -u)" = 1.0

step "power-cycle h3 without upgrade"
old_boot=$(cat "$DRV_STATE/h3/boot_id")
check "hosts.sh reboot h3" "$HOSTS" reboot h3
check "h3 version unchanged" test "$(cat "$DRV_STATE/h3/version")" = 1.0
check "h3 boot id changed" test "$(cat "$DRV_STATE/h3/boot_id")" != "$old_boot"
check "tiny2 (autostart) running again" test "$(domstate 3 tiny2)" = running
check "local1 (no autostart) shut off" test "$(domstate 3 local1)" = "shut off"
check "web1 on h2 unaffected" "$GUESTS" heartbeat-check web1

timing "selftest before teardown" $(( $(drv_now_ms) - T0 ))
