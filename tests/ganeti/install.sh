#!/usr/bin/env bash
# Installs (Debian 12, as root) what Drover's Ganeti test harness needs: Ganeti 3.0 (its `fake`
# hypervisor is in the package), the no-op OS definition instances are created with, sshd (the
# master adds nodes over ssh), openssl (the harness's own RAPI certificate), iproute2 and
# util-linux (namespaces). Idempotent: installs only what is missing; the package lists are
# refreshed once, only when something must be installed. Services are never started in the root
# namespace while packages install (a policy-rc.d forbids it for the duration, unless one exists).
#
# usage: tests/ganeti/install.sh
set -euo pipefail
[ "$(id -u)" = 0 ] || { echo "install.sh: must run as root" >&2; exit 1; }
command -v apt-get >/dev/null || { echo "install.sh: apt-get not found (Debian 12 only)" >&2; exit 1; }

PACKAGES=(ganeti ganeti-os-noop openssh-server openssh-client openssl iproute2 util-linux)
# Needed at run time, with where each comes from.
COMMANDS=(gnt-cluster:ganeti sshd:openssh-server ssh-keyscan:openssh-client openssl:openssl
          ip:iproute2 nsenter:util-linux unshare:util-linux)

installed() { [ "$(dpkg-query -W -f='${db:Status-Abbrev}' "$1" 2>/dev/null)" = "ii " ]; }
missing=()
for p in "${PACKAGES[@]}"; do installed "$p" || missing+=("$p"); done

POLICY=/usr/sbin/policy-rc.d
OWN_POLICY=0
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() { if [ "$OWN_POLICY" = 1 ]; then rm -f "$POLICY"; fi; }
trap cleanup EXIT

if [ ${#missing[@]} -eq 0 ]; then
    echo "all packages already installed: ${PACKAGES[*]}" >&2
else
    if [ ! -e "$POLICY" ]; then
        printf '#!/bin/sh\n# written by Drover tests/ganeti/install.sh while it runs\nexit 101\n' >"$POLICY"
        chmod 755 "$POLICY"; OWN_POLICY=1
    fi
    echo "+ apt-get update; apt-get install ${missing[*]}" >&2
    DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "${missing[@]}" >/dev/null
fi

# Check the result, not only apt's word.
fail=0
for c in "${COMMANDS[@]}"; do
    cmd=${c%%:*} pkg=${c#*:}
    if ! command -v "$cmd" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$cmd" ]; then
        echo "missing command $cmd (package $pkg)" >&2; fail=1
    fi
done
[ -d /usr/share/ganeti/os/noop ] || [ -d /srv/ganeti/os/noop ] || { echo "no noop OS (ganeti-os-noop)" >&2; fail=1; }
[ -x /usr/lib/ganeti/daemon-util ] || { echo "missing /usr/lib/ganeti/daemon-util" >&2; fail=1; }
exit "$fail"
