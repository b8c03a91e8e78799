#!/usr/bin/env bash
# A real Ganeti 3.0 cluster with the `fake` hypervisor on ONE Linux machine, for Drover's tests.
#
# Node K (1..3 by default, at most 9) is network namespace gnt-nK (eth0 = 10.214.0.(20+K) on
# bridge gntbr0, 10.214.0.1/24 in the root namespace; neither libvirt's drvbr0/10.213.0.0/24 nor
# anything else is touched), plus private mount and UTS namespaces held by one `sleep` process:
# hostname gntK.drover.test, its own /etc/ganeti, /etc/default/ganeti, /var/lib/ganeti,
# /var/log/ganeti, /run/ganeti, /srv/ganeti, /etc/hosts and /root/.ssh (bind mounts from
# .state/), and its own sshd (the master adds nodes over ssh). /srv/ganeti/shared-file-storage
# is ONE directory (.state/shared) bind-mounted into every node: shared storage for the
# `sharedfile` disk template. gnt1 is the master; the cluster address 10.214.0.30
# (cluster.drover.test) lives on the master's eth0; RAPI answers on https://10.214.0.30:5080 with
# a certificate of the harness's own CA (.state/rapi-ca.pem), user `drover`, password in
# .state/rapi-password (never on a command line).
#
# Disk templates: diskless, file (node-local: not migratable, failover impossible) and
# sharedfile (shared: live-migratable to any node). DRBD needs the drbd kernel module, which
# this machine's kernel does not have; `plain` needs an LVM volume group per node, which nodes
# sharing one /dev cannot keep apart: both are left out.
#
# Each node also has a "platform version" and a "boot id" (files under .state/nK), for Drover's
# upgrade, reboot and host_facts command steps: `reboot K` restarts the node's Ganeti daemons and
# draws a new boot id; `upgrade K TARGET` writes the version (it takes effect at the next reboot,
# as an installed release does).
#
#   cluster.sh up [N]            N nodes (default 3) + the standard instances; idempotent
#   cluster.sh down              stops everything it started; exit 1 if anything is left
#   cluster.sh exec K CMD...     run CMD inside node K (e.g. exec 1 gnt-instance list)
#   cluster.sh gnt CMD...        run CMD on the current master (gnt-* after a master-failover)
#   cluster.sh master            the current master's index K (from any node's ssconf)
#   cluster.sh master-failover K make node K the master (`gnt-cluster master-failover` run on K;
#                                Ganeti moves the cluster address 10.214.0.30 and RAPI with it)
#   cluster.sh verify [ARGS...]  `gnt-cluster verify ARGS` on the current master (it reports
#                                ENODESETUP on every node: the namespaces' /proc lacks what
#                                Ganeti's node setup check wants; --ignore-errors=ENODESETUP)
#   cluster.sh rapi-url | rapi-user | password-file | ca-file | state-dir
#   cluster.sh facts K           host_facts for Drover: version=… boot_id=…
#   cluster.sh upgrade K TARGET  install TARGET (effective after the next reboot)
#   cluster.sh reboot K          restart node K's daemons with a new boot id; waits until back
#   cluster.sh instances         the standard instances (created by up): NAME NODE TEMPLATE
#   cluster.sh status            nodes and instances as Ganeti lists them
#   cluster.sh job-time SINCE    jobs received since SINCE (epoch seconds) and their run time
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
STATE=$(realpath -m "${DROVER_GANETI_STATE:-$HERE/.state}")
BRIDGE=gntbr0
NET=10.214.0
CLUSTER_IP=$NET.30
CLUSTER_NAME=cluster.drover.test
DOMAIN=drover.test
RAPI_USER=drover
INITIAL_VERSION=${INITIAL_VERSION:-1.0}
MAX_NODES=9

say() { printf '%s\n' "$*" >&2; }
die() { printf 'cluster.sh: error: %s\n' "$*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "must run as root (namespaces and bridges need it)"

node_index() {
    local k=${1%%.*}; k=${k#gnt}
    [[ "$k" =~ ^[1-9]$ ]] || die "bad node '$1': expected 1..$MAX_NODES or gnt1..gnt$MAX_NODES"
    echo "$k"
}
ip_of() { echo "$NET.$((20 + $1))"; }
ns_of() { echo "gnt-n$1"; }
dir_of() { echo "$STATE/n$1"; }
holder_alive() {
    local p
    p="$(dir_of "$1")/holder.pid"
    [ -f "$p" ] && kill -0 "$(cat "$p")" 2>/dev/null
}
inside() {
    local k=$1; shift
    holder_alive "$k" || die "node $k is not up"
    nsenter -t "$(cat "$(dir_of "$k")/holder.pid")" -n -m -u "$@"
}
node_count() { cat "$STATE/nodes" 2>/dev/null || echo 0; }

# The standard instances: name, node, disk template. The master (gnt1) runs a live-migratable
# one, so the master wave moves something; one node-local (`file`) instance must be shut down.
STANDARD_INSTANCES=(
    "sf1 1 sharedfile" "dl1 1 diskless"
    "sf2 2 sharedfile" "fl2 2 file"
    "sf3 3 sharedfile" "dl3 3 diskless"
)

write_certificates() {
    [ -f "$STATE/rapi.pem" ] && return 0
    local tmp; tmp=$(mktemp -d)
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=Drover Ganeti test CA" \
        -keyout "$tmp/ca.key" -out "$STATE/rapi-ca.pem" 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj "/CN=$CLUSTER_NAME" \
        -keyout "$tmp/rapi.key" -out "$tmp/rapi.csr" 2>/dev/null
    printf 'subjectAltName=DNS:%s,IP:%s,IP:%s\nbasicConstraints=CA:FALSE\n' \
        "$CLUSTER_NAME" "$CLUSTER_IP" "$(ip_of 1)" >"$tmp/ext"
    openssl x509 -req -in "$tmp/rapi.csr" -CA "$STATE/rapi-ca.pem" -CAkey "$tmp/ca.key" \
        -CAcreateserial -days 3650 -extfile "$tmp/ext" -out "$tmp/rapi.crt" 2>/dev/null
    # Ganeti's rapi.pem holds the key and the certificate in one file.
    cat "$tmp/rapi.key" "$tmp/rapi.crt" >"$STATE/rapi.pem"
    chmod 600 "$STATE/rapi.pem"
    rm -rf "$tmp"
}

node_up() {
    local k=$1 ns ip d
    ns=$(ns_of "$k"); ip=$(ip_of "$k"); d=$(dir_of "$k")
    if holder_alive "$k"; then return 0; fi
    mkdir -p "$d"/{etc,lib,run,log,srv/file-storage,srv/shared-file-storage}
    if [ ! -f "$d/etc/.copied" ]; then
        cp -a /etc/ganeti/. "$d/etc/"
        printf '/srv/ganeti/file-storage\n/srv/ganeti/shared-file-storage\n' >"$d/etc/file-storage-paths"
        touch "$d/etc/.copied"
    fi
    [ -f "$d/version" ] || echo "$INITIAL_VERSION" >"$d/version"
    [ -f "$d/boot-id" ] || cat /proc/sys/kernel/random/uuid >"$d/boot-id"
    # RAPI on every address of the namespace (Debian's default binds 127.0.0.1 only).
    sed 's/^RAPI_ARGS=.*/RAPI_ARGS="--require-authentication"/' /etc/default/ganeti >"$d/default-ganeti"
    # A namespace without our holder is a leftover (a killed run, another checkout's cluster):
    # whatever still runs in it was started by a harness, and it is rebuilt from scratch.
    if ip netns list | grep -qw "$ns"; then
        say "node $k: removing a leftover namespace $ns"
        local pid
        for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$pid" 2>/dev/null || true; done
        ip netns del "$ns"
        ip link del "v$ns" 2>/dev/null || true
    fi
    if ! ip netns list | grep -qw "$ns"; then
        ip netns add "$ns"
        ip link add "v$ns" type veth peer name eth0 netns "$ns"
        ip link set "v$ns" master "$BRIDGE" up
        ip -n "$ns" addr add "$ip/24" dev eth0
        ip -n "$ns" link set eth0 up
        ip -n "$ns" link set lo up
        # The instances' NIC link (the fake hypervisor attaches nothing to it).
        ip -n "$ns" link add instbr0 type bridge
        ip -n "$ns" link set instbr0 up
    fi
    nohup ip netns exec "$ns" unshare --mount --uts --propagation private bash -c "
        set -e
        hostname gnt$k.$DOMAIN
        mount --bind '$STATE/hosts' /etc/hosts
        mount --bind '$d/etc' /etc/ganeti
        mount --bind '$d/default-ganeti' /etc/default/ganeti
        mount --bind '$d/lib' /var/lib/ganeti
        mkdir -p /var/log/ganeti /run/ganeti /srv/ganeti /root/.ssh
        mount --bind '$d/log' /var/log/ganeti
        mount --bind '$d/run' /run/ganeti
        mount --bind '$d/srv' /srv/ganeti
        mount --bind '$STATE/shared' /srv/ganeti/shared-file-storage
        mount --bind '$STATE/ssh' /root/.ssh
        exec sleep infinity" >"$d/holder.log" 2>&1 &
    echo $! >"$d/holder.pid"
    local waited=0
    until nsenter -t "$(cat "$d/holder.pid")" -m test -d /srv/ganeti/file-storage 2>/dev/null \
          && [ "$(nsenter -t "$(cat "$d/holder.pid")" -u hostname 2>/dev/null)" = "gnt$k.$DOMAIN" ]; do
        sleep 0.1; waited=$((waited + 1))
        [ "$waited" -lt 100 ] || die "node $k's namespaces did not come up: $(cat "$d/holder.log")"
    done
    mkdir -p /run/sshd
    inside "$k" /usr/sbin/sshd -o ListenAddress="$ip" -o PermitRootLogin=prohibit-password \
        -o PidFile="$d/sshd.pid" -o StrictModes=no -o UsePAM=no
}

gnt() { inside 1 "$@"; }

# The current master's index: every node keeps the master's name in its ssconf.
master_index() {
    local k name
    for k in $(seq 1 "$(node_count)"); do
        holder_alive "$k" || continue
        name=$(nsenter -t "$(cat "$(dir_of "$k")/holder.pid")" -m cat /var/lib/ganeti/ssconf_master_node 2>/dev/null) || continue
        node_index "$name"
        return 0
    done
    die "no node knows the master"
}

cluster_initialised() { [ -f "$(dir_of 1)/lib/config.data" ]; }

node_in_cluster() { gnt gnt-node list --no-headers -o name 2>/dev/null | grep -qx "gnt$1.$DOMAIN"; }

wait_for_rapi() {
    local attempt
    for attempt in $(seq 1 150); do
        [ "$attempt" -gt 1 ] && sleep 0.2
        # The password goes to curl on stdin (--config -), never on its command line.
        if printf 'user = "%s:%s"\n' "$RAPI_USER" "$(cat "$STATE/rapi-password")" \
            | curl -s --config - --cacert "$STATE/rapi-ca.pem" --max-time 2 -o /dev/null \
                -w '%{http_code}' "https://$CLUSTER_IP:5080/version" 2>/dev/null | grep -q 200; then
            return 0
        fi
    done
    die "RAPI did not answer at https://$CLUSTER_IP:5080/version"
}

cmd_up() {
    local n=${1:-3} k t0=$SECONDS
    [[ "$n" =~ ^[1-9]$ ]] || die "node count must be 1..$MAX_NODES"
    command -v gnt-cluster >/dev/null || die "Ganeti is not installed: run tests/ganeti/install.sh"
    [ -d /sys/class/net/drvbr0 ] && say "note: libvirt's harness bridge drvbr0 exists; gntbr0 is separate"
    mkdir -p "$STATE/ssh" "$STATE/shared"
    echo "$n" >"$STATE/nodes"
    [ -f "$STATE/ssh/id_rsa" ] || {
        ssh-keygen -q -t rsa -b 2048 -N '' -f "$STATE/ssh/id_rsa"
        cp "$STATE/ssh/id_rsa.pub" "$STATE/ssh/authorized_keys"
    }
    { echo "127.0.0.1 localhost"
      for k in $(seq 1 "$n"); do echo "$(ip_of "$k") gnt$k.$DOMAIN gnt$k"; done
      echo "$CLUSTER_IP $CLUSTER_NAME cluster"; } >"$STATE/hosts"
    [ -f "$STATE/rapi-password" ] || { head -c 18 /dev/urandom | base64 | tr -d '/+=' >"$STATE/rapi-password"; chmod 600 "$STATE/rapi-password"; }
    write_certificates
    if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
        ip link add "$BRIDGE" type bridge
        ip addr add "$NET.1/24" dev "$BRIDGE"
        ip link set "$BRIDGE" up
    fi
    for k in $(seq 1 "$n"); do node_up "$k"; done
    # Host keys are only known once every sshd runs.
    : >"$STATE/ssh/known_hosts"
    for k in $(seq 1 "$n"); do
        ssh-keyscan -T 5 "$(ip_of "$k")" 2>/dev/null \
            | sed "s/^$(ip_of "$k")/gnt$k.$DOMAIN,gnt$k,$(ip_of "$k")/" >>"$STATE/ssh/known_hosts"
    done
    if ! cluster_initialised; then
        say "+ gnt-cluster init $CLUSTER_NAME (on gnt1)"
        gnt gnt-cluster init --no-ssh-init --no-etc-hosts --master-netdev eth0 \
            --nic-parameters link=instbr0 --enabled-hypervisors fake \
            --enabled-disk-templates diskless,file,sharedfile \
            --ipolicy-disk-templates diskless,file,sharedfile \
            --file-storage-dir /srv/ganeti/file-storage \
            --shared-file-storage-dir /srv/ganeti/shared-file-storage \
            "$CLUSTER_NAME" >"$STATE/init.log" 2>&1 || { cat "$STATE/init.log" >&2; die "gnt-cluster init failed"; }
        # The harness's own RAPI certificate, so Drover checks the server (no `insecure`). Put in
        # place by hand: init refuses an existing rapi.pem, and `gnt-cluster renew-crypto
        # --rapi-certificate` of Ganeti 3.0.2 reads the file but copies nothing unless a new
        # certificate is generated as well (_RenewCryptoInner runs only then).
        gnt /usr/lib/ganeti/daemon-util stop ganeti-rapi >/dev/null 2>&1 || true
        install -m 440 -o gnt-rapi -g gnt-masterd "$STATE/rapi.pem" "$(dir_of 1)/lib/rapi.pem"
        gnt /usr/lib/ganeti/daemon-util start ganeti-rapi >/dev/null 2>&1
    else
        # A restarted harness: the master's daemons come back from its own configuration.
        gnt /usr/lib/ganeti/daemon-util start-all >/dev/null 2>&1 || true
    fi
    # RAPI users file: read by ganeti-rapi at every request (lib/rapi/users); written from the
    # password file, never from an argument.
    printf '%s %s write\n' "$RAPI_USER" "$(cat "$STATE/rapi-password")" >"$(dir_of 1)/lib/rapi/users"
    # Owned as Ganeti's own files are (ganeti-rapi reads it, masterd copies it to candidates).
    chown gnt-rapi:gnt-masterd "$(dir_of 1)/lib/rapi/users"
    chmod 640 "$(dir_of 1)/lib/rapi/users"
    for k in $(seq 2 "$n"); do
        if node_in_cluster "$k"; then
            inside "$k" /usr/lib/ganeti/daemon-util start-all >/dev/null 2>&1 || true
        else
            say "+ gnt-node add gnt$k.$DOMAIN"
            gnt gnt-node add --no-ssh-key-check "gnt$k.$DOMAIN" >>"$STATE/init.log" 2>&1 \
                || { tail -20 "$STATE/init.log" >&2; die "gnt-node add gnt$k failed"; }
        fi
    done
    local entry name node template
    for entry in "${STANDARD_INSTANCES[@]}"; do
        read -r name node template <<<"$entry"
        [ "$node" -le "$n" ] || continue
        if ! gnt gnt-instance list --no-headers -o name 2>/dev/null | grep -qx "$name"; then
            say "+ gnt-instance add $name ($template on gnt$node)"
            # The ipolicy's smallest disk is 1 GiB; the files are sparse.
            local disks=(--disk 0:size=1G)
            [ "$template" = diskless ] && disks=()
            gnt gnt-instance add -t "$template" -o noop --no-name-check --no-ip-check \
                -B memory=128M,vcpus=1 "${disks[@]}" \
                -n "gnt$node.$DOMAIN" "$name" >>"$STATE/init.log" 2>&1 \
                || { tail -20 "$STATE/init.log" >&2; die "gnt-instance add $name failed"; }
        fi
    done
    wait_for_rapi
    say "cluster up: $n nodes in $((SECONDS - t0)) s; RAPI https://$CLUSTER_IP:5080"
}

cmd_down() {
    local k d pid left=0
    for d in "$STATE"/n*; do
        [ -d "$d" ] || continue
        k=${d##*/n}
        if holder_alive "$k"; then
            inside "$k" /usr/lib/ganeti/daemon-util stop-all >/dev/null 2>&1 || true
        fi
        if [ -f "$d/sshd.pid" ]; then kill "$(cat "$d/sshd.pid")" 2>/dev/null || true; rm -f "$d/sshd.pid"; fi
        # Anything still running in the node's network namespace was started there by us.
        if ip netns list | grep -qw "$(ns_of "$k")"; then
            for pid in $(ip netns pids "$(ns_of "$k")" 2>/dev/null); do kill "$pid" 2>/dev/null || true; done
            sleep 0.3
            for pid in $(ip netns pids "$(ns_of "$k")" 2>/dev/null); do kill -9 "$pid" 2>/dev/null || true; done
        fi
        if [ -f "$d/holder.pid" ]; then kill "$(cat "$d/holder.pid")" 2>/dev/null || true; rm -f "$d/holder.pid"; fi
        ip netns del "$(ns_of "$k")" 2>/dev/null || true
        ip link del "v$(ns_of "$k")" 2>/dev/null || true
    done
    ip link del "$BRIDGE" 2>/dev/null || true
    # Leftovers are errors: a namespace, a veth or the bridge.
    for k in $(seq 1 "$MAX_NODES"); do
        if ip netns list | grep -qw "$(ns_of "$k")"; then say "left: namespace $(ns_of "$k")"; left=1; fi
        if ip link show "v$(ns_of "$k")" >/dev/null 2>&1; then say "left: veth v$(ns_of "$k")"; left=1; fi
    done
    if ip link show "$BRIDGE" >/dev/null 2>&1; then say "left: bridge $BRIDGE"; left=1; fi
    # The cluster's configuration is kept only while it runs: the next `up` builds a fresh one.
    if [ "$left" = 0 ] && [ -d "$STATE" ]; then
        rm -rf "$STATE"/n* "$STATE/shared" "$STATE/nodes" "$STATE/hosts" "$STATE/ssh"
    fi
    return "$left"
}

cmd_reboot() {
    local k; k=$(node_index "$1")
    local d; d=$(dir_of "$k")
    inside "$k" /usr/lib/ganeti/daemon-util stop-all >/dev/null 2>&1 || true
    cat /proc/sys/kernel/random/uuid >"$d/boot-id"
    [ -f "$d/pending-version" ] && mv "$d/pending-version" "$d/version"
    inside "$k" /usr/lib/ganeti/daemon-util start-all >/dev/null 2>&1 || die "node $k: daemons did not start"
    # RAPI runs on the master (gnt1 unless a master-failover moved the role).
    if [ "$k" = "$(master_index)" ]; then wait_for_rapi; fi
}

case "${1:-}" in
    up) shift; cmd_up "$@" ;;
    down) cmd_down ;;
    exec) shift; k=$(node_index "$1"); shift; inside "$k" "$@" ;;
    rapi-url) echo "https://$CLUSTER_IP:5080" ;;
    rapi-user) echo "$RAPI_USER" ;;
    password-file) echo "$STATE/rapi-password" ;;
    ca-file) echo "$STATE/rapi-ca.pem" ;;
    state-dir) echo "$STATE" ;;
    facts)
        k=$(node_index "$2"); d=$(dir_of "$k")
        holder_alive "$k" || die "node $k is down"
        printf 'version=%s\nboot_id=%s\n' "$(cat "$d/version")" "$(cat "$d/boot-id")" ;;
    upgrade)
        k=$(node_index "$2"); [ -n "${3:-}" ] || die "usage: cluster.sh upgrade K TARGET"
        echo "$3" >"$(dir_of "$k")/pending-version" ;;
    reboot) cmd_reboot "$2" ;;
    gnt) shift; inside "$(master_index)" "$@" ;;
    master) master_index ;;
    master-failover)
        k=$(node_index "${2:?usage: cluster.sh master-failover K}")
        [ "$(master_index)" = "$k" ] || inside "$k" gnt-cluster master-failover >&2
        wait_for_rapi ;;
    verify) shift; inside "$(master_index)" gnt-cluster verify "$@" ;;
    job-time)
        # job-time SINCE_EPOCH_SECS: "JOBS SECONDS" — how many Ganeti jobs were received since
        # then and the time they ran (end_ts - start_ts, from GET /2/jobs?bulk=1).
        since=${2:?usage: cluster.sh job-time SINCE_EPOCH_SECS}
        printf 'user = "%s:%s"\n' "$RAPI_USER" "$(cat "$STATE/rapi-password")" \
            | curl -s --config - --cacert "$STATE/rapi-ca.pem" --max-time 30 "https://$CLUSTER_IP:5080/2/jobs?bulk=1" \
            | python3 -c '
import json, sys
since = float(sys.argv[1]); count = 0; seconds = 0.0
ts = lambda pair: pair[0] + pair[1] / 1e6
for job in json.load(sys.stdin):
    if job.get("received_ts") and ts(job["received_ts"]) >= since and job.get("start_ts") and job.get("end_ts"):
        count += 1; seconds += ts(job["end_ts"]) - ts(job["start_ts"])
print(count, round(seconds, 1))' "$since" ;;
    instances) for entry in "${STANDARD_INSTANCES[@]}"; do echo "$entry"; done ;;
    status) m=$(master_index); inside "$m" gnt-node list; inside "$m" gnt-instance list -o name,pnode,snodes,disk_template,status,be/memory ;;
    *) sed -n '2,/^set -euo/p' "$0" | sed 's/^# \{0,1\}//;/^set -euo/d' >&2; exit 2 ;;
esac
