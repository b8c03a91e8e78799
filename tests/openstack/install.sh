#!/usr/bin/env bash
# Installs (Debian 12, as root) what Drover's OpenStack test harness needs: a real OpenStack Zed
# control plane from Debian's packages — Keystone, Placement, Glance, Nova API/conductor/scheduler/
# compute (its fake virt driver is in the package), MariaDB and RabbitMQ — plus the openstack CLI
# the harness uses to seed flavors, images and servers. nova-compute needs a hypervisor flavour
# package: nova-compute-ironic is the light one (nova-compute-kvm would pull QEMU and libvirt);
# the computes run Nova's fake driver either way. Idempotent: installs only what is missing;
# the package lists are refreshed once, only when something must be installed. The packages'
# debconf questions are answered by preseed.txt (no dbconfig, no endpoint registration), and no
# service is started while packages install (a policy-rc.d forbids it for the duration, unless
# one exists): tests/openstack/controlplane.sh starts everything itself, on 127.0.0.1.
#
# usage: tests/openstack/install.sh
set -euo pipefail
[ "$(id -u)" = 0 ] || { echo "install.sh: must run as root" >&2; exit 1; }
command -v apt-get >/dev/null || { echo "install.sh: apt-get not found (Debian 12 only)" >&2; exit 1; }
HERE=$(cd "$(dirname "$0")" && pwd)

PACKAGES=(keystone placement-api python3-osc-placement nova-api nova-conductor nova-scheduler
          nova-compute nova-compute-ironic python3-openstackclient glance-api rabbitmq-server mariadb-server
          python3-pymysql uwsgi-plugin-python3 curl bc)
# Needed at run time, with where each comes from.
COMMANDS=(keystone-manage:keystone placement-manage:placement-api nova-manage:nova-common
          nova-conductor:nova-conductor nova-scheduler:nova-scheduler glance-api:glance-api
          openstack:python3-openstackclient mariadbd:mariadb-server mariadb-install-db:mariadb-server
          uwsgi:uwsgi-core curl:curl bc:bc)

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
        printf '#!/bin/sh\n# written by Drover tests/openstack/install.sh while it runs\nexit 101\n' >"$POLICY"
        chmod 755 "$POLICY"; OWN_POLICY=1
    fi
    debconf-set-selections "$HERE/preseed.txt"
    echo "+ apt-get update; apt-get install ${missing[*]}" >&2
    DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
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
[ -x /usr/lib/rabbitmq/bin/rabbitmq-server ] || { echo "missing rabbitmq-server" >&2; fail=1; }
/usr/bin/python3 -c 'import nova.virt.fake' 2>/dev/null || { echo "nova's fake virt driver does not import" >&2; fail=1; }
exit "$fail"
