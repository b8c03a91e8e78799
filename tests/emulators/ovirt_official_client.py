"""Drives drover-emulator's oVirt front-end with the official oVirt Engine SDK for Python (PyPI
`ovirt-engine-sdk-python`, which speaks XML through libxml2 and pycurl), so that the emulator
cannot drift into a private dialect: the SSO login (and a wrong password raising AuthError), hosts,
VMs, clusters, scheduling policies (by id, and a switch with custom properties), affinity groups and
events (listed newest first, `from_`, an external event added) read into the SDK's types, a migration
followed through `migrating` to `up` on the target, a hung migration cancelled, deactivate and
activate, upgradecheck and upgrade, the cluster's upgrade mark (start, update_progress, finish), and refusals raising `ovirtsdk4.Error` with the fault's reason.

Usage: python ovirt_official_client.py URL PASSWORD. Prints 'N passed, N failed'."""

import sys
import time

import ovirtsdk4 as sdk
import ovirtsdk4.types as types

url, password = sys.argv[1], sys.argv[2]
api_url = url.rstrip("/") + "/ovirt-engine/api"
passed, failed = 0, 0


def check(name, condition, detail=""):
    global passed, failed
    if condition:
        passed += 1
        print(f"ok   {name}")
    else:
        failed += 1
        print(f"FAIL {name} {detail}")


def raised(call):
    try:
        call()
    except sdk.Error as error:
        return error
    return None


def wait_for(what, read, seconds=60):
    deadline = time.time() + seconds
    while time.time() < deadline:
        value = read()
        if value:
            return value
        time.sleep(0.1)
    check(f"{what} within {seconds} s", False)
    return None


wrong = sdk.Connection(url=api_url, username="admin@internal", password="not-the-password")
error = raised(lambda: wrong.test(raise_exception=True))
check("a wrong password raises AuthError with the SSO's access_denied",
      isinstance(error, sdk.AuthError) and "access_denied" in str(error), repr(error))

connection = sdk.Connection(url=api_url, username="admin@internal", password=password)
check("connection.test() logs in through the SSO", connection.test(raise_exception=True))
system = connection.system_service()
api = system.get()
check("the API root names the engine", api.product_info.name == "oVirt Engine", api.product_info.name)

hosts_service = system.hosts_service()
hosts = {host.name: host for host in hosts_service.list()}
check("hosts ov1, ov2, ov3", sorted(hosts) == ["ov1", "ov2", "ov3"], sorted(hosts))
ov1, ov2, ov3 = hosts["ov1"], hosts["ov2"], hosts["ov3"]
check("host status is HostStatus.UP", all(host.status == types.HostStatus.UP for host in hosts.values()),
      [host.status for host in hosts.values()])
check("host memory is bytes", ov1.memory == 16384 * 1024 * 1024, ov1.memory)
check("host cpu topology", ov1.cpu.topology.cores * ov1.cpu.topology.sockets * ov1.cpu.topology.threads == 8)
check("host version is a Version", ov1.version.full_version == "4.5.4" and ov1.version.major == 4
      and ov1.version.minor == 5 and ov1.version.revision == 4, ov1.version.full_version)
check("update_available is a boolean, true below the target", ov1.update_available is True, ov1.update_available)
found = hosts_service.list(search="name=ov2")
check("search=name=ov2 finds one host", [host.name for host in found] == ["ov2"], [host.name for host in found])
check("a host's cluster is a link", ov1.cluster is not None and ov1.cluster.id is not None)

clusters = system.clusters_service().list()
check("one cluster", len(clusters) == 1, clusters)
cluster = clusters[0]
check("cluster version is the compatibility level", (cluster.version.major, cluster.version.minor) == (4, 5),
      (cluster.version.major, cluster.version.minor))
policies = {policy.id: policy.name for policy in system.scheduling_policies_service().list()}
check("the built-in scheduling policies, cluster_maintenance among them",
      "cluster_maintenance" in policies.values(), policies)
check("the cluster's scheduling policy is one of them", policies.get(cluster.scheduling_policy.id) == "none",
      cluster.scheduling_policy.id)
cluster_service = system.clusters_service().cluster_service(cluster.id)
groups = cluster_service.affinity_groups_service().list()
check("a negative, enforcing affinity group of two VMs",
      len(groups) == 1 and groups[0].vms_rule.positive is False and groups[0].vms_rule.enforcing is True
      and len(groups[0].vms) == 2, groups)

vms_service = system.vms_service()
vms = {vm.name: vm for vm in vms_service.list()}
check("VMs", sorted(vms) == ["batch", "db", "etcd-a", "etcd-b", "filler", "license", "web"], sorted(vms))
web_disks = vms_service.vm_service(vms["web"].id).disk_attachments_service().list(follow="disk")
domains = {domain.id: domain for domain in system.storage_domains_service().list()}
check("disk attachments and their disk read through follow", len(web_disks) == 1 and web_disks[0].disk.storage_domains[0].id in domains)
check("storage domains carry their storage type", sorted({str(domain.storage.type) for domain in domains.values()}) == ["StorageType.LOCALFS", "StorageType.NFS"] or sorted({domain.storage.type.value for domain in domains.values()}) == ["localfs", "nfs"], [domain.storage.type for domain in domains.values()])
web = vms["web"]
check("web is up on ov1", web.status == types.VmStatus.UP and web.host.id == ov1.id, (web.status, web.host))
check("db is down and has no host", vms["db"].status == types.VmStatus.DOWN and vms["db"].host is None)
check("web's memory is bytes, its cpu a topology", web.memory == 4096 * 1024 * 1024 and web.cpu.topology.cores == 2)
check("web is highly available", web.high_availability.enabled is True)
check("web is migratable", web.placement_policy.affinity == types.VmAffinity.MIGRATABLE, web.placement_policy.affinity)
license_vm = vms["license"]
check("license is pinned to ov2", license_vm.placement_policy.affinity == types.VmAffinity.PINNED
      and [host.id for host in license_vm.placement_policy.hosts] == [ov2.id])

web_service = vms_service.vm_service(web.id)
web_service.migrate(host=types.Host(id=ov2.id))
seen_migrating = web_service.get().status == types.VmStatus.MIGRATING
check("right after migrate the VM is migrating", seen_migrating)
moved = wait_for("web up on ov2", lambda: (lambda vm: vm.status == types.VmStatus.UP and vm.host.id == ov2.id)(web_service.get()))
check("web runs on ov2 after the migration", moved)
jobs = [job for job in system.jobs_service().list() if job.description.startswith("Migrating VM web")]
check("the migration's job finished", jobs and jobs[-1].status == types.JobStatus.FINISHED, [(job.description, job.status) for job in jobs])

error = raised(lambda: web_service.migrate(host=types.Host(id=ov3.id)))
check("a migration to a host without room raises Error with the fault's reason",
      error is not None and error.fault is not None and error.fault.reason == "Operation Failed"
      and "Memory" in error.fault.detail and error.code == 409, repr(error))
error = raised(lambda: vms_service.vm_service(license_vm.id).migrate(host=types.Host(id=ov1.id)))
check("a pinned VM's migration raises Error", error is not None and "pinned" in str(error), repr(error))
error = raised(lambda: vms_service.vm_service("00000000-0000-4000-8000-00000000ffff").get())
check("an unknown VM raises NotFoundError", isinstance(error, sdk.NotFoundError), repr(error))

batch_service = vms_service.vm_service(vms["batch"].id)
batch_service.migrate(host=types.Host(name="ov1"))
check("batch is migrating (its first migration hangs)", batch_service.get().status == types.VmStatus.MIGRATING)
batch_service.cancel_migration()
batch = batch_service.get()
check("cancelmigration leaves batch up on ov2", batch.status == types.VmStatus.UP and batch.host.id == ov2.id,
      (batch.status, batch.host.id))
error = raised(lambda: batch_service.cancel_migration())
check("cancelling when nothing migrates raises Error", error is not None and error.code == 409, repr(error))

ov1_service = hosts_service.host_service(ov1.id)
ov1_service.deactivate()
in_maintenance = wait_for("ov1 in maintenance", lambda: ov1_service.get().status == types.HostStatus.MAINTENANCE)
check("deactivate puts the empty host in maintenance", in_maintenance)
error = raised(lambda: ov1_service.deactivate())
check("deactivating a host in maintenance raises Error", error is not None and error.code == 409, repr(error))

ov1_service.upgrade_check()
ov1_service.upgrade(reboot=True)
upgraded = wait_for("ov1 upgraded", lambda: (lambda host: host.status == types.HostStatus.MAINTENANCE
                                              and host.version.full_version == "4.5.6")(ov1_service.get()))
check("upgrade installs the target and leaves the host in maintenance", upgraded)
check("update_available is false after the upgrade", ov1_service.get().update_available is False)

ov1_service.activate()
check("activate brings ov1 up", wait_for("ov1 up", lambda: ov1_service.get().status == types.HostStatus.UP))

error = raised(lambda: cluster_service.update(types.Cluster(version=types.Version(major=4, minor=6))))
check("raising the compatibility level above a host's version raises Error",
      error is not None and error.code == 409 and "Compatibility Version" in str(error), repr(error))
updated = cluster_service.update(types.Cluster(scheduling_policy=types.SchedulingPolicy(name="cluster_maintenance")))
check("the scheduling policy switches to cluster_maintenance",
      policies.get(updated.scheduling_policy.id) == "cluster_maintenance", updated.scheduling_policy.id)

maintenance_id = updated.scheduling_policy.id
policy = system.scheduling_policies_service().policy_service(maintenance_id).get()
check("a scheduling policy reads by id", policy.name == "cluster_maintenance" and policy.locked is True, policy.name)
back = cluster_service.update(types.Cluster(
    scheduling_policy=types.SchedulingPolicy(name="evenly_distributed"),
    custom_scheduling_policy_properties=[types.Property(name="HighUtilization", value="70")]))
check("a policy switch carries the cluster's custom scheduling policy properties",
      policies.get(back.scheduling_policy.id) == "evenly_distributed"
      and [(p.name, p.value) for p in back.custom_scheduling_policy_properties] == [("HighUtilization", "70")],
      back.custom_scheduling_policy_properties)

# The cluster_upgrade role's marks (ClusterService.upgrade, Cluster.upgrade_in_progress /
# upgrade_percent_complete / upgrade_correlation_id of ovirt-engine-api-model).
check("the cluster is not marked as upgrading", cluster_service.get().upgrade_in_progress is False)
cluster_service.upgrade(upgrade_action=types.ClusterUpgradeAction.START, correlation_id="drover-proof")
marked = cluster_service.get()
check("upgrade start marks the cluster with the correlation id",
      marked.upgrade_in_progress is True and marked.upgrade_percent_complete == 0
      and marked.upgrade_correlation_id == "drover-proof",
      (marked.upgrade_in_progress, marked.upgrade_percent_complete, marked.upgrade_correlation_id))
cluster_service.upgrade(upgrade_action=types.ClusterUpgradeAction.UPDATE_PROGRESS, upgrade_percent_complete=40,
                        correlation_id="drover-proof")
check("update_progress sets upgrade_percent_complete", cluster_service.get().upgrade_percent_complete == 40)
error = raised(lambda: cluster_service.upgrade(upgrade_action=types.ClusterUpgradeAction.UPDATE_PROGRESS,
                                               upgrade_percent_complete=50, correlation_id="someone-else"))
check("update_progress with another correlation id raises Error", error is not None and error.code == 409,
      repr(error))
error = raised(lambda: cluster_service.upgrade(upgrade_action=types.ClusterUpgradeAction.START,
                                               correlation_id="someone-else"))
check("a second start raises Error", error is not None, repr(error))
cluster_service.upgrade(upgrade_action=types.ClusterUpgradeAction.FINISH, correlation_id="drover-proof")
finished = cluster_service.get()
check("finish clears the mark and its progress",
      finished.upgrade_in_progress is False and finished.upgrade_percent_complete == 0,
      (finished.upgrade_in_progress, finished.upgrade_percent_complete))

events_service = system.events_service()
events = events_service.list(max=500)
indexes = [event.index for event in events]
check("events come newest first with increasing indexes", indexes == sorted(indexes, reverse=True) and len(indexes) > 0, indexes[:5])
codes = {event.code for event in events}
check("the migrations and maintenance were logged (codes 62, 63, 16, 15)", {62, 63, 15, 16} <= codes, sorted(codes))
migrated = [event for event in events if event.code == 63]
check("a migration event links its VM, host and cluster and has a time and severity",
      migrated and migrated[0].vm.id and migrated[0].host.id and migrated[0].cluster.id == cluster.id
      and migrated[0].time is not None and migrated[0].severity == types.LogSeverity.NORMAL, migrated[:1])
newest = indexes[0]
added = events_service.add(types.Event(description="drover official-client proof", severity=types.LogSeverity.NORMAL,
                                       origin="drover-proof", custom_id=4242, cluster=types.Cluster(id=cluster.id)))
check("an external event is added with the next index", added.index == newest + 1 and added.origin == "drover-proof",
      (added.index, newest))
since = events_service.list(from_=newest)
check("list(from_) returns only the events after that index", [event.index for event in since] == [newest + 1],
      [event.index for event in since])
error = raised(lambda: events_service.add(types.Event(description="no origin", severity=types.LogSeverity.NORMAL)))
check("an event without its mandatory fields raises Error", error is not None and error.code == 400, repr(error))

connection.close()
print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
