#!/usr/bin/env bash
# A real OpenStack Zed compute control plane from Debian 12's packages on ONE machine, for
# Drover's tests: MariaDB, RabbitMQ, Keystone, Placement, Glance (file store), Nova API,
# conductor and scheduler, and nova-compute services compute-1..N (default 3) running Nova's
# fake virt driver in its persisting variant (lib/persistfake.py: the guests survive a
# nova-compute restart), plus a read-only Neutron stand-in (lib/fake_neutron.py: Nova Zed
# cannot run without a network API; servers boot with no NIC). No systemd: every daemon is a
# child process whose PID is kept under $STATE/run; everything listens on 127.0.0.1 only.
# Written from the proven recipe in shared/reference/openstack (its pitfalls: SQLite locks
# Keystone, so MariaDB; uwsgi's --http-socket drops reused connections, so "Connection: close";
# stock FakeDriver forgets its guests on restart, so persistfake).
#
# Ports (root network namespace, loopback): MariaDB 13306, RabbitMQ 5672 (+ epmd 4369, dist
# 25672), Keystone 5000, Placement 8778, Glance 9292, Nova 8774, fake Neutron 9696. None is used
# by the other harnesses (tests/libvirt and tests/ganeti live in their own namespaces and
# bridges, tests/postgres takes a free ephemeral port); `up` refuses a port someone else holds.
#
# Each compute also has a "platform version" and a "boot id" (files under $STATE/hosts), for
# Drover's host_facts, upgrade and reboot command steps: `reboot K` restarts compute-K's
# nova-compute with a new boot id and waits until Nova reports its service `up`; `upgrade K
# TARGET` records TARGET (effective at the next reboot, as an installed release is).
#
#   controlplane.sh up [N]          install check, configure, start (skips running ones); idempotent
#   controlplane.sh down            stop every process it started, by PID; exit 1 if any is left
#   controlplane.sh env             OS_* and DROVER_OPENSTACK_* variables for the tests (export lines)
#   controlplane.sh status          PIDs and RSS
#   controlplane.sh stop-compute K  stop compute-K's nova-compute (a host that "never comes back")
#   controlplane.sh start-compute K start it again and wait until its service is `up`
#   controlplane.sh facts K         host_facts for Drover: version=… boot_id=…
#   controlplane.sh upgrade K TARGET | reboot K
#   controlplane.sh migrate NAME HOST  live-migrate server NAME to HOST, waiting until Nova shows
#                                   it there (test setup; the driver's own migrations are the tested ones)
#   controlplane.sh set-version K V record version V at once (no reboot): tests level the computes
#                                   a halted run left at different versions
#   controlplane.sh never-back K | back K   from now on, `reboot K` stops compute-K and leaves it
#                                   down (a host that never comes back) | undo that
#   controlplane.sh force-down K | force-up K   mark compute-K's service forced down in Nova (what an
#                                   operator does for a dead host) | clear it
#   controlplane.sh migration-time SINCE   "COUNT SECONDS": live migrations Nova completed since
#                                   SINCE (epoch seconds) and the time they took by Nova's records
#   controlplane.sh services        HOST STATUS STATE REASON of every nova-compute, one a line
#   controlplane.sh servers         NAME STATUS HOST of every server, one a line
#   controlplane.sh seed            image drover-fake and flavor drover-tiny (idempotent)
#   controlplane.sh boot NAME HOST [GROUP [POLICY]]  an ACTIVE server on HOST (in server group
#                                   GROUP, created with POLICY, default anti-affinity)
#   controlplane.sh enable K        enable compute-K's service (whoever disabled it)
#   controlplane.sh clean-servers   delete every server and server group (between tests)
#   controlplane.sh purge           down, then remove $STATE
# $DROVER_OPENSTACK_STATE (default tests/openstack/.state) holds config, data, logs and PIDs.
set -euo pipefail
export PATH=/usr/sbin:/usr/bin:/sbin:/bin # Debian's python3, not a pyenv one
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
B=$(realpath -m "${DROVER_OPENSTACK_STATE:-$HERE/.state}")
ETC=$B/etc DATA=$B/data LOG=$B/logs RUN=$B/run HOSTS=$B/hosts
PW=secret
DBPORT=13306
ALL_PORTS="13306 4369 5672 25672 5000 8778 9292 8774 9696"
COMPUTE_API_VERSION=2.79
db() { echo "mysql+pymysql://os:$PW@127.0.0.1:$DBPORT/$1?charset=utf8"; }
T0=$(date +%s.%N)
ts() { printf '[%6.1fs] %s\n' "$(echo "$(date +%s.%N) - $T0" | bc)" "$*" >&2; }
die() { echo "controlplane.sh: $*" >&2; exit 1; }

export OS_AUTH_URL=http://127.0.0.1:5000/v3 OS_USERNAME=admin OS_PASSWORD=$PW \
    OS_PROJECT_NAME=admin OS_USER_DOMAIN_NAME=Default OS_PROJECT_DOMAIN_NAME=Default \
    OS_IDENTITY_API_VERSION=3 OS_REGION_NAME=RegionOne OS_COMPUTE_API_VERSION=$COMPUTE_API_VERSION

ncompute() { cat "$B/ncompute" 2>/dev/null || echo 3; }
compute_index() { [[ "$1" =~ ^(compute-)?([1-9])$ ]] || die "no compute $1"; echo "${BASH_REMATCH[2]}"; }
alive() { [ -f "$RUN/$1.pid" ] && kill -0 "$(cat "$RUN/$1.pid")" 2>/dev/null; }
# start NAME CMD... : run a foreground daemon in the background, remember its PID
start() {
    local n=$1; shift
    if alive "$n"; then return; fi
    nohup "$@" >>"$LOG/$n.out" 2>&1 </dev/null &
    echo $! >"$RUN/$n.pid"; ts "started $n pid $!"
}
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_port() { # port [secs]
    local i; for i in $(seq 1 $((${2:-60} * 2))); do port_open "$1" && return 0; sleep 0.5; done
    die "port $1 never opened (logs: $LOG)"; }
wait_http() { # url [secs]
    local i; for i in $(seq 1 $((${2:-60} * 2))); do
        curl -s -o /dev/null -m 5 "$1" && return 0; sleep 0.5; done
    die "$1 never answered (logs: $LOG)"; }

check_installed() {
    local c; for c in keystone-manage placement-manage nova-manage glance-api mariadbd uwsgi openstack; do
        command -v "$c" >/dev/null || die "$c missing: run tests/openstack/install.sh first"; done
}
# A port that answers but whose process is not ours belongs to someone else: refuse.
check_ports() {
    local p owner; for p in $ALL_PORTS; do
        port_open "$p" || continue
        owner=$(ss -ltnpH "sport = :$p" 2>/dev/null | grep -o 'pid=[0-9]*' | head -1 | cut -d= -f2)
        [ -n "$owner" ] || continue
        mine "$owner" || die "port $p is held by pid $owner, which this harness did not start"
    done
}
mine() { # pid: started by this harness (it or an ancestor has a PID file here)
    local p=$1 f; while [ -n "$p" ] && [ "$p" -gt 1 ]; do
        for f in "$RUN"/*.pid; do [ -e "$f" ] && [ "$(cat "$f")" = "$p" ] && return 0; done
        p=$(ps -o ppid= -p "$p" 2>/dev/null | tr -d ' '); done
    return 1; }

authtoken() { cat <<CONF
[keystone_authtoken]
www_authenticate_uri = http://127.0.0.1:5000/
auth_url = http://127.0.0.1:5000/
auth_type = password
project_domain_name = Default
user_domain_name = Default
project_name = admin
username = admin
password = $PW
CONF
}
ksa() { cat <<CONF
[$1]
auth_type = password
auth_url = http://127.0.0.1:5000/v3
project_domain_name = Default
user_domain_name = Default
project_name = admin
username = admin
password = $PW
region_name = RegionOne
CONF
}

write_configs() {
    mkdir -p "$ETC"/{keystone,placement,nova,glance} "$DATA"/keystone "$DATA"/glance/{images,staging,tasks} \
        "$DATA"/nova/lock "$DATA"/rabbitmq "$LOG" "$RUN" "$HOSTS" "$B/lib"
    cp "$HERE"/lib/persistfake.py "$HERE"/lib/fake_neutron.py "$HERE"/lib/register.py "$B/lib/"
    sed "s|@LIB@|$B/lib|" "$HERE/lib/nova-compute-persist" >"$B/lib/nova-compute-persist"
    chmod +x "$B/lib/nova-compute-persist"
    cat >"$ETC/keystone/keystone.conf" <<CONF
[DEFAULT]
log_dir = $LOG
log_file = keystone.log
[database]
connection = $(db keystone)
[token]
provider = fernet
[fernet_tokens]
key_repository = $DATA/keystone/fernet-keys
[credential]
key_repository = $DATA/keystone/credential-keys
CONF
    { cat <<CONF
[DEFAULT]
log_dir = $LOG
log_file = placement.log
[api]
auth_strategy = keystone
[placement_database]
connection = $(db placement)
CONF
      authtoken; } >"$ETC/placement/placement.conf"
    cp /etc/nova/api-paste.ini "$ETC/nova/api-paste.ini"
    { cat <<CONF
[DEFAULT]
transport_url = rabbit://guest:guest@127.0.0.1:5672/
my_ip = 127.0.0.1
log_dir = $LOG
state_path = $DATA/nova
[api]
auth_strategy = keystone
[wsgi]
api_paste_config = $ETC/nova/api-paste.ini
[conductor]
workers = 1
[scheduler]
workers = 1
discover_hosts_in_cells_interval = -1
[oslo_concurrency]
lock_path = $DATA/nova/lock
[oslo_messaging_notifications]
driver = noop
[vnc]
enabled = false
[glance]
region_name = RegionOne
CONF
      authtoken; ksa placement
      ksa neutron; echo 'endpoint_override = http://127.0.0.1:9696'
      ksa service_user; echo 'send_service_user_token = true'; } >"$ETC/nova/nova.conf"
    # Database settings only for api/conductor/scheduler/nova-manage: a nova-compute that sees
    # [api_database] tries direct database access ("No DB access allowed").
    cat >"$ETC/nova/nova-db.conf" <<CONF
[api_database]
connection = $(db nova_api)
[database]
connection = $(db nova)
CONF
    local i; for i in $(seq 1 "$(ncompute)"); do
        mkdir -p "$DATA/compute-$i"/{instances,lock} "$HOSTS/compute-$i"
        cat >"$ETC/nova/compute-$i.conf" <<CONF
[DEFAULT]
host = compute-$i
compute_driver = persistfake.PersistentFakeDriver
# A state report every 2 s (Nova's default: 10 s): a "reboot" ends with the compute's first
# report after its restart, and every test waits for it (service_down_time stays 60 s).
report_interval = 2
state_path = $DATA/compute-$i
instances_path = $DATA/compute-$i/instances
[oslo_concurrency]
lock_path = $DATA/compute-$i/lock
CONF
        [ -f "$HOSTS/compute-$i/version" ] || echo "26.2.2" >"$HOSTS/compute-$i/version"
        [ -f "$HOSTS/compute-$i/boot-id" ] || cat /proc/sys/kernel/random/uuid >"$HOSTS/compute-$i/boot-id"
    done
    cp /etc/glance/glance-api-paste.ini "$ETC/glance/"
    { cat <<CONF
[DEFAULT]
bind_host = 127.0.0.1
bind_port = 9292
workers = 1
log_dir = $LOG
log_file = glance-api.log
node_staging_uri = file://$DATA/glance/staging
[database]
connection = $(db glance)
[glance_store]
stores = file,http
default_store = file
filesystem_store_datadir = $DATA/glance/images/
[paste_deploy]
flavor = keystone
config_file = $ETC/glance/glance-api-paste.ini
[os_glance_staging_store]
filesystem_store_datadir = $DATA/glance/staging
[os_glance_tasks_store]
filesystem_store_datadir = $DATA/glance/tasks
CONF
      authtoken; } >"$ETC/glance/glance-api.conf"
}

start_db() {
    if [ ! -d "$DATA/mysql/mysql" ]; then
        mariadb-install-db --no-defaults --datadir="$DATA/mysql" --user=root >"$LOG/mariadb-install.log" 2>&1
    fi
    start mariadb /usr/sbin/mariadbd --no-defaults --datadir="$DATA/mysql" --socket="$RUN/mysqld.sock" \
        --bind-address=127.0.0.1 --port=$DBPORT --user=root --pid-file="$DATA/mysql/mariadbd.pidfile" \
        --skip-name-resolve --innodb-buffer-pool-size=64M --max-connections=1000 --log-error="$LOG/mariadb.err"
    wait_port $DBPORT 60
    local d; for d in keystone placement glance nova_api nova nova_cell0; do
        echo "CREATE DATABASE IF NOT EXISTS $d CHARACTER SET utf8;"; done | mysql -S "$RUN/mysqld.sock" -u root
    mysql -S "$RUN/mysqld.sock" -u root -e \
        "CREATE USER IF NOT EXISTS 'os'@'127.0.0.1' IDENTIFIED BY '$PW'; GRANT ALL ON *.* TO 'os'@'127.0.0.1';"
    ts "mariadb up"
}

start_rabbit() {
    # Our own epmd (loopback only) unless one already listens; stopped after rabbit.
    port_open 4369 || start epmd /usr/bin/epmd -address 127.0.0.1
    wait_port 4369
    alive rabbitmq || rm -f "$DATA"/rabbitmq/*.pid
    start rabbitmq /usr/bin/env HOME="$DATA/rabbitmq" ERL_EPMD_ADDRESS=127.0.0.1 \
        RABBITMQ_NODENAME=rabbit@localhost RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 RABBITMQ_NODE_PORT=5672 \
        RABBITMQ_DIST_PORT=25672 RABBITMQ_MNESIA_BASE="$DATA/rabbitmq/mnesia" RABBITMQ_LOG_BASE="$LOG/rabbitmq" \
        RABBITMQ_ENABLED_PLUGINS_FILE="$DATA/rabbitmq/enabled_plugins" RABBITMQ_PID_FILE="$DATA/rabbitmq/rabbit.pid" \
        "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS=-kernel inet_dist_use_interface {127,0,0,1}" \
        /usr/lib/rabbitmq/bin/rabbitmq-server
    wait_port 5672 120
    ts "rabbitmq up"
}

uwsgi_app() { # name port wsgi-file "env=value ..." processes threads
    local envs=() e
    for e in $4; do envs+=(--env "$e"); done
    start "$1" /usr/bin/uwsgi --plugins python3 --http-socket 127.0.0.1:"$2" --wsgi-file "$3" \
        --master --processes "${5:-1}" --threads "${6:-8}" --lazy-apps --die-on-term --enable-threads \
        --buffer-size 65535 --add-header "Connection: close" "${envs[@]}" --procname-prefix "$1-"
}

start_keystone() {
    local C=$ETC/keystone/keystone.conf
    if [ ! -f "$DATA/keystone/bootstrapped" ]; then
        keystone-manage --config-file "$C" db_sync
        keystone-manage --config-file "$C" fernet_setup --keystone-user root --keystone-group root
        keystone-manage --config-file "$C" credential_setup --keystone-user root --keystone-group root
        keystone-manage --config-file "$C" bootstrap --bootstrap-password $PW \
            --bootstrap-admin-url http://127.0.0.1:5000/v3/ --bootstrap-internal-url http://127.0.0.1:5000/v3/ \
            --bootstrap-public-url http://127.0.0.1:5000/v3/ --bootstrap-region-id RegionOne
        touch "$DATA/keystone/bootstrapped"; ts "keystone database synced and bootstrapped"
    fi
    uwsgi_app keystone 5000 /usr/bin/keystone-wsgi-public "OS_KEYSTONE_CONFIG_FILES=$C"
    wait_http http://127.0.0.1:5000/v3
    ts "keystone up"
}

start_placement() {
    placement-manage --config-file "$ETC/placement/placement.conf" db sync
    uwsgi_app placement 8778 /usr/bin/placement-api "OS_PLACEMENT_CONFIG_DIR=$ETC/placement"
    wait_http http://127.0.0.1:8778/
    ts "placement up"
}

start_glance() {
    glance-manage --config-file "$ETC/glance/glance-api.conf" db_sync >>"$LOG/glance-manage.log" 2>&1
    start glance-api /usr/bin/glance-api --config-file "$ETC/glance/glance-api.conf"
    wait_http http://127.0.0.1:9292/ 120
    ts "glance up"
}

NOVA_CONF=()
nova_conf() { NOVA_CONF=(--config-file "$ETC/nova/nova.conf" --config-file "$ETC/nova/nova-db.conf"); }

start_compute() { # index
    start "nova-compute-$1" "$B/lib/nova-compute-persist" --config-file "$ETC/nova/nova.conf" \
        --config-file "$ETC/nova/compute-$1.conf" --log-file "nova-compute-$1.log"
}

# Nova's own word on a compute service: "enabled up" etc.
service_state() { openstack compute service list --service nova-compute --host "compute-$1" -f value -c Status -c State; }

wait_compute_up() { # index [secs]
    local i; for i in $(seq 1 "${2:-120}"); do
        [ "$(service_state "$1" | awk '{print $2}')" = up ] && return 0; sleep 1; done
    die "compute-$1's service did not report up"; }

# has_cell NAME: whether Nova maps a cell of that name. list_cells is retried until it answers:
# a failed listing read as "no cell" made `up` on an earlier (stopped) state try to create an
# existing cell and fail ("... combination already exists for another cell").
has_cell() {
    local i listing
    for i in 1 2 3 4 5; do
        if listing=$(nova-manage "${NOVA_CONF[@]}" cell_v2 list_cells 2>/dev/null); then
            grep -q " $1 " <<<"$listing"; return
        fi
        sleep 2
    done
    die "nova-manage cell_v2 list_cells failed 5 times"
}

start_nova() {
    nova_conf
    nova-manage "${NOVA_CONF[@]}" api_db sync
    has_cell cell0 ||
        nova-manage "${NOVA_CONF[@]}" cell_v2 map_cell0 --database_connection "$(db nova_cell0)"
    has_cell cell1 ||
        nova-manage "${NOVA_CONF[@]}" cell_v2 create_cell --name cell1 \
            --database_connection "$(db nova)" --transport-url rabbit://guest:guest@127.0.0.1:5672/
    nova-manage "${NOVA_CONF[@]}" db sync
    ts "nova databases synced, cells mapped"
    uwsgi_app nova-api 8774 /usr/bin/nova-api-wsgi \
        "OS_NOVA_CONFIG_DIR=$ETC/nova OS_NOVA_CONFIG_FILES=api-paste.ini;nova.conf;nova-db.conf" 2 1
    start nova-conductor /usr/bin/nova-conductor "${NOVA_CONF[@]}" --log-file nova-conductor.log
    start nova-scheduler /usr/bin/nova-scheduler "${NOVA_CONF[@]}" --log-file nova-scheduler.log
    local i n; n=$(ncompute)
    for i in $(seq 1 "$n"); do start_compute "$i"; done
    wait_http http://127.0.0.1:8774/
    ts "nova-api answering"
    for i in $(seq 1 120); do
        [ "$(openstack compute service list --service nova-compute -f value -c State | grep -c up)" -ge "$n" ] && break
        sleep 2; done
    nova-manage "${NOVA_CONF[@]}" cell_v2 discover_hosts >/dev/null
    for i in $(seq 1 60); do
        [ "$(openstack resource provider list -f value -c name | wc -l)" -ge "$n" ] && break; sleep 2; done
    ts "computes up and discovered"
}

cmd_up() {
    check_installed
    mkdir -p "$B" "$RUN"
    [ -z "${1:-}" ] || echo "$1" >"$B/ncompute"
    check_ports
    write_configs
    start_db
    start_rabbit
    start_keystone
    /usr/bin/python3 "$B/lib/register.py" >/dev/null; ts "catalog registered"
    start fake-neutron /usr/bin/python3 "$B/lib/fake_neutron.py"; wait_port 9696
    start_placement
    start_glance
    start_nova
    cmd_seed
    ts "BRING-UP DONE"
}

pids_tree() { # pid and all its descendants
    local p=$1 c; echo "$p"; for c in $(ps -o pid= --ppid "$p" 2>/dev/null); do pids_tree "$c"; done; }

cmd_status() {
    local total=0 f n p kb c
    for f in "$RUN"/*.pid; do [ -e "$f" ] || continue; n=$(basename "$f" .pid); p=$(cat "$f")
        if kill -0 "$p" 2>/dev/null; then
            kb=0; for c in $(pids_tree "$p"); do kb=$((kb + $(ps -o rss= -p "$c" 2>/dev/null || echo 0))); done
            printf '%-16s pid %-7s RSS %6d MiB\n' "$n" "$p" $((kb / 1024)); total=$((total + kb))
        else printf '%-16s dead\n' "$n"; fi
    done
    printf 'TOTAL RSS (with children): %d MiB\n' $((total / 1024))
}

stop_one() { # name: TERM its PID (and then KILL what is left of its tree), forget the PID file
    local f=$RUN/$1.pid p all c i
    [ -e "$f" ] || return 0
    p=$(cat "$f")
    if kill -0 "$p" 2>/dev/null; then
        all=$(pids_tree "$p"); kill -TERM "$p" 2>/dev/null || true
        for i in $(seq 1 20); do kill -0 "$p" 2>/dev/null || break; sleep 0.5; done
        for c in $all; do kill -0 "$c" 2>/dev/null && kill -KILL "$c" 2>/dev/null || true; done
        echo "stopped $1 ($p)" >&2
    fi
    rm -f "$f"
}

cmd_down() {
    local n f left=0
    for n in $(cd "$RUN" 2>/dev/null && ls nova-compute-*.pid 2>/dev/null | sed 's/\.pid$//'); do stop_one "$n"; done
    for n in nova-scheduler nova-conductor nova-api glance-api placement fake-neutron keystone rabbitmq epmd mariadb; do
        stop_one "$n"; done
    for f in "$RUN"/*.pid; do [ -e "$f" ] && { echo "left: $f" >&2; left=1; }; done
    return $left
}

cmd_env() {
    cat <<ENV
export OS_AUTH_URL=$OS_AUTH_URL OS_USERNAME=$OS_USERNAME OS_PASSWORD=$OS_PASSWORD OS_PROJECT_NAME=$OS_PROJECT_NAME
export OS_USER_DOMAIN_NAME=$OS_USER_DOMAIN_NAME OS_PROJECT_DOMAIN_NAME=$OS_PROJECT_DOMAIN_NAME OS_REGION_NAME=$OS_REGION_NAME
export OS_IDENTITY_API_VERSION=3 OS_COMPUTE_API_VERSION=$COMPUTE_API_VERSION
export DROVER_OPENSTACK_AUTH_URL=$OS_AUTH_URL DROVER_OPENSTACK_PASSWORD=$OS_PASSWORD
export DROVER_OPENSTACK_HARNESS=$HERE/controlplane.sh DROVER_OPENSTACK_STATE=$B
ENV
}

cmd_seed() {
    local img=$DATA/fake.img
    [ -f "$img" ] || head -c 1048576 /dev/zero >"$img"
    openstack image show drover-fake >/dev/null 2>&1 ||
        openstack image create drover-fake --disk-format raw --container-format bare --file "$img" --public >/dev/null
    openstack flavor show drover-tiny >/dev/null 2>&1 ||
        openstack flavor create drover-tiny --ram 256 --disk 1 --vcpus 1 >/dev/null
    ts "image drover-fake and flavor drover-tiny ready"
}

# boot NAME HOST [GROUP [POLICY]]: an admin may name the host through the availability zone
# "nova:HOST".
cmd_boot() {
    local name=${1:?usage: boot NAME HOST [GROUP [POLICY]]} host=${2:?usage: boot NAME HOST [GROUP [POLICY]]}
    local group=${3:-} policy=${4:-anti-affinity} hint=() i status
    if [ -n "$group" ]; then
        local gid; gid=$(openstack server group show "$group" -f value -c id 2>/dev/null ||
            openstack server group create "$group" --policy "$policy" -f value -c id)
        hint=(--hint "group=$gid")
    fi
    openstack server show "$name" >/dev/null 2>&1 ||
        openstack server create "$name" --image drover-fake --flavor drover-tiny --nic none \
            --availability-zone "nova:$host" "${hint[@]}" >/dev/null
    for i in $(seq 1 120); do
        status=$(openstack server show "$name" -f value -c status)
        [ "$status" = ACTIVE ] && return 0
        [ "$status" = ERROR ] && die "server $name went to ERROR"
        sleep 0.5; done
    die "server $name not ACTIVE"
}

cmd_clean_servers() {
    local id; for id in $(openstack server list --all-projects -f value -c ID); do openstack server delete --wait "$id"; done
    for id in $(openstack server group list -f value -c ID); do openstack server group delete "$id"; done
    # Enable every compute service again (a test may have left one disabled).
    local i; for i in $(seq 1 "$(ncompute)"); do openstack compute service set --enable "compute-$i" nova-compute; done
}

cmd_reboot() {
    local k; k=$(compute_index "$1")
    local d=$HOSTS/compute-$k
    stop_one "nova-compute-$k"
    if [ -f "$d/never-back" ]; then echo "compute-$k stays down (never-back)" >&2; return 0; fi
    cat /proc/sys/kernel/random/uuid >"$d/boot-id"
    [ -f "$d/pending-version" ] && mv "$d/pending-version" "$d/version"
    mkdir -p "$LOG"; start_compute "$k"
    # Nova marks a service down only after service_down_time (60 s) without a report; a fresh
    # report after the restart is what "up" needs here, so wait for one newer than the restart.
    # Read from Nova's own services table, not through the `openstack` CLI: a CLI call costs
    # seconds of Python start-up on a busy machine, and this runs after every reboot.
    local since i; since=$(date -u +%s)
    for i in $(seq 1 240); do
        [ "$(reported_since "$k" "$since")" = 1 ] && return 0
        sleep 0.5; done
    die "compute-$k did not report after its restart"
}

# 1 when compute-K's nova-compute has reported at or after SINCE (epoch seconds) and is not forced
# down: Nova's servicegroup DB driver calls a service up when its last_seen_up (else created_at) is
# within service_down_time and forced_down is false, so a report newer than SINCE is "up".
reported_since() { # index since_epoch_secs
    mysql -S "$RUN/mysqld.sock" -u root -N -B nova -e "SET time_zone = '+00:00';
        SELECT COUNT(*) FROM services WHERE host = 'compute-$1' AND \`binary\` = 'nova-compute'
        AND deleted = 0 AND forced_down = 0
        AND UNIX_TIMESTAMP(COALESCE(last_seen_up, updated_at)) >= $2"
}

case "${1:-}" in
    up) shift; cmd_up "$@" ;;
    down) cmd_down ;;
    purge) cmd_down || true; rm -rf "$B" ;;
    env) cmd_env ;;
    status) cmd_status ;;
    seed) cmd_seed ;;
    boot) shift; cmd_boot "$@" ;;
    clean-servers) cmd_clean_servers ;;
    stop-compute) stop_one "nova-compute-$(compute_index "$2")" ;;
    start-compute) k=$(compute_index "$2"); mkdir -p "$LOG"; start_compute "$k"; wait_compute_up "$k" ;;
    facts)
        k=$(compute_index "$2"); d=$HOSTS/compute-$k
        alive "nova-compute-$k" || die "compute-$k is down"
        printf 'version=%s\nboot_id=%s\n' "$(cat "$d/version")" "$(cat "$d/boot-id")" ;;
    upgrade)
        k=$(compute_index "$2"); [ -n "${3:-}" ] || die "usage: controlplane.sh upgrade K TARGET"
        echo "$3" >"$HOSTS/compute-$k/pending-version" ;;
    reboot) cmd_reboot "$2" ;;
    migration-time)
        since=${2:?usage: controlplane.sh migration-time SINCE_EPOCH_SECS}
        # Nova writes created_at/updated_at in UTC; the session's zone is set to match.
        mysql -S "$RUN/mysqld.sock" -u root -N -B nova -e "SET time_zone = '+00:00';
            SELECT COUNT(*), COALESCE(SUM(TIMESTAMPDIFF(MICROSECOND, created_at, updated_at)), 0) / 1e6
            FROM migrations WHERE migration_type = 'live-migration' AND status = 'completed'
            AND created_at >= FROM_UNIXTIME($since)" | awk '{printf "%d %.1f\n", $1, $2}' ;;
    enable) openstack compute service set --enable "compute-$(compute_index "$2")" nova-compute ;;
    force-down) openstack compute service set --down "compute-$(compute_index "$2")" nova-compute ;;
    force-up) openstack compute service set --up "compute-$(compute_index "$2")" nova-compute ;;
    migrate)
        name=${2:?usage: controlplane.sh migrate NAME HOST} host=${3:?usage: controlplane.sh migrate NAME HOST}
        openstack server migrate --live-migration --host "$host" "$name"
        for i in $(seq 1 120); do
            [ "$(openstack server show "$name" -f value -c OS-EXT-SRV-ATTR:host -c status | tr '\n' ' ')" = "$host ACTIVE " ] && exit 0
            sleep 1; done
        die "server $name did not arrive on $host" ;;
    set-version) echo "${3:?usage: controlplane.sh set-version K V}" >"$HOSTS/compute-$(compute_index "$2")/version" ;;
    never-back) touch "$HOSTS/compute-$(compute_index "$2")/never-back" ;;
    back) rm -f "$HOSTS/compute-$(compute_index "$2")/never-back" ;;
    services)
        openstack compute service list --service nova-compute --long -f json |
            python3 -c 'import json,sys
for s in json.load(sys.stdin): print(s["Host"], s["Status"], s["State"], s.get("Disabled Reason") or "-")' ;;
    servers)
        openstack server list --all-projects --long -f json |
            python3 -c 'import json,sys
for s in json.load(sys.stdin): print(s["Name"], s["Status"], s["Host"])' ;;
    *) sed -n '2,/^set -euo/p' "$0" | sed '$d'; exit 2 ;;
esac
