#!/usr/bin/env bash
# Installs (Debian 12, as root) what Drover's libvirt test harness needs: libvirtd with its QEMU
# driver, QEMU for x86 (TCG), qemu-img, tini, busybox-static and cpio for the guest image, and
# libvirt-dev + pkg-config for building against libvirt. Idempotent: installs only what is
# missing, and refreshes the package lists (once) only when something must be installed and the
# lists are missing or more than a day old (DROVER_APT_MAX_AGE_MIN, in minutes).
#
# usage: tests/libvirt/install.sh
set -euo pipefail
DRV_PROG=install.sh
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
drv_require_root
command -v apt-get >/dev/null || drv_die "apt-get not found: this harness supports Debian (12) only"

# qemu-system-x86 (7.2 in Debian 12) replaces a newer qemu-utils (e.g. from backports) by
# removing it, so qemu-utils (qemu-img) is installed in a second step, after it.
PACKAGES=(libvirt-daemon-system libvirt-daemon libvirt-clients libvirt-daemon-driver-qemu
          qemu-system-x86 libvirt-dev pkg-config iproute2 tini cpio busybox-static gzip xz-utils)
LATE_PACKAGES=(qemu-utils)
# Needed at run time, with the package that provides each.
COMMANDS=(virsh:libvirt-clients libvirtd:libvirt-daemon qemu-system-x86_64:qemu-system-x86
          qemu-img:qemu-utils tini:tini ip:iproute2 cpio:cpio busybox:busybox-static
          pkg-config:pkg-config)

installed() { [ "$(dpkg-query -W -f='${db:Status-Abbrev}' "$1" 2>/dev/null)" = "ii " ]; }
missing_of() { local p; for p in "$@"; do installed "$p" || printf '%s ' "$p"; done; }

# Services must not start in the root namespace while packages install (the packaged libvirtd
# would start the "default" network on 192.168.122.0/24): make sure a policy-rc.d forbids it.
POLICY=/usr/sbin/policy-rc.d
OWN_POLICY=0
remove_own_policy() { [ "$OWN_POLICY" = 1 ] && rm -f "$POLICY"; OWN_POLICY=0; }
trap remove_own_policy EXIT

apt_install() {
    local what=("$@") attempt out
    [ -e "$POLICY" ] || {
        printf '#!/bin/sh\n# written by Drover tests/libvirt/install.sh while it runs\nexit 101\n' >"$POLICY"
        chmod 755 "$POLICY"; OWN_POLICY=1
    }
    for attempt in 1 2; do
        drv_say "+ apt-get install -y --no-install-recommends ${what[*]}"
        if out=$(DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
                 -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "${what[@]}" 2>&1); then
            printf '%s\n' "$out" | grep -E '^(Setting up|Removing) ' | sed 's/^/  /' >&2 || true
            return 0
        fi
        if [ "$attempt" = 1 ] && [ "$DRV_APT_UPDATED" = 0 ]; then
            drv_say "install failed; refreshing the package lists and trying again"
            drv_apt_update
            continue
        fi
        printf '%s\n' "$out" | tail -30 >&2
        drv_die "apt-get install ${what[*]} failed (output above)"
    done
}

t0=$(drv_now_ms)
missing=$(missing_of "${PACKAGES[@]}")
late_missing=$(missing_of "${LATE_PACKAGES[@]}")
if [ -z "$missing$late_missing" ]; then
    drv_say "all packages already installed: ${PACKAGES[*]} ${LATE_PACKAGES[*]}"
else
    drv_apt_update_if_stale
    # shellcheck disable=SC2086
    [ -z "$missing" ] || apt_install $missing
    late_missing=$(missing_of "${LATE_PACKAGES[@]}")
    # shellcheck disable=SC2086
    [ -z "$late_missing" ] || apt_install $late_missing
fi
remove_own_policy

# Check the result, not only apt's word.
fail=0
for c in "${COMMANDS[@]}"; do
    cmd=${c%%:*} pkg=${c#*:}
    if ! command -v "$cmd" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$cmd" ]; then
        drv_say "missing command $cmd (package $pkg)"; fail=1
    fi
done
pkg-config --exists libvirt || { drv_say "pkg-config does not find libvirt (libvirt-dev)"; fail=1; }
[ "$fail" = 0 ] || drv_die "installation incomplete (see above)"

# The packaged daemon must not run in the root namespace: hosts.sh runs its own, one per host.
if pgrep -x libvirtd >/dev/null 2>&1; then
    for p in $(pgrep -x libvirtd); do
        [ "$(readlink "/proc/$p/ns/net")" = "$(readlink /proc/self/ns/net)" ] &&
            drv_say "warning: a libvirtd (pid $p) runs in the root network namespace; the harness does not use it"
    done
fi
drv_say "ready: $(virsh --version 2>/dev/null | sed 's/^/libvirt /'), $(qemu-system-x86_64 --version | head -1), $(qemu-img --version | head -1) ($(( $(drv_now_ms) - t0 )) ms)"
