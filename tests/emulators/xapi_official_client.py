"""Drives drover-emulator's XAPI front-end with the official XenServer SDK for Python (PyPI
`XenAPI`), so that the emulator cannot drift into a private dialect: login (and a wrong
password), host/VM/pool records, Async.VM.pool_migrate followed to success through task polling,
refusals raising XenAPI.Failure with XAPI's own codes, and the pool settings a rolling pool
upgrade resolves and restores: HA (pool.disable_ha, pool.enable_ha with the heartbeat SR of
its statefile and its configuration), WLB (pool.set_wlb_enabled) and a CD (VBD.eject); and
Async.VM.suspend / Async.VM.resume_on with their power-state refusals.

Usage: python xapi_official_client.py URL PASSWORD. Prints 'N passed, N failed'."""

import sys
import time
import xmlrpc.client

import XenAPI

url, password = sys.argv[1], sys.argv[2]
passed, failed = 0, 0


def check(name, condition, detail=""):
    global passed, failed
    if condition:
        passed += 1
        print(f"ok   {name}")
    else:
        failed += 1
        print(f"FAIL {name} {detail}")


def failure_code(call):
    try:
        call()
    except XenAPI.Failure as failure:
        return failure.details
    return None


wrong = XenAPI.Session(url)
details = failure_code(lambda: wrong.xenapi.login_with_password("root", "not-the-password", "2.21", "drover-proof"))
check("a wrong password raises SESSION_AUTHENTICATION_FAILED", details and details[0] == "SESSION_AUTHENTICATION_FAILED", details)

session = XenAPI.Session(url)
session.xenapi.login_with_password("root", password, "2.21", "drover-proof")
x = session.xenapi

pools = x.pool.get_all_records()
check("one pool", len(pools) == 1, pools)
pool = next(iter(pools.values()))
hosts = x.host.get_all_records()
check("the pool's master is a host", pool["master"] in hosts, pool["master"])
by_name = {record["name_label"]: ref for ref, record in hosts.items()}
check("hosts xs1, xs2, xs3", sorted(by_name) == ["xs1", "xs2", "xs3"], sorted(by_name))
xs1 = hosts[by_name["xs1"]]
check("software_version has product_version", xs1["software_version"]["product_version"] == "8.2", xs1["software_version"])
check("hosts are enabled", all(record["enabled"] for record in hosts.values()))
metrics = x.host_metrics.get_record(xs1["metrics"])
check("host_metrics memory_total is bytes (a string over XML-RPC)", int(metrics["memory_total"]) == 16384 * 1024 * 1024, metrics["memory_total"])

vms = x.VM.get_all_records()
guests = {record["name_label"]: ref for ref, record in vms.items()
          if not record["is_control_domain"] and not record["is_a_template"] and not record["is_a_snapshot"]}
check("guests beside control domains and a template", sorted(guests) == ["db", "filler", "web"], sorted(guests))
check("control domains are listed", sum(record["is_control_domain"] for record in vms.values()) == 3)
web = vms[guests["web"]]
check("web runs on xs1", web["power_state"] == "Running" and web["resident_on"] == by_name["xs1"], web["resident_on"])
check("web may pool_migrate", "pool_migrate" in web["allowed_operations"], web["allowed_operations"])
check("memory_static_max in bytes", int(web["memory_static_max"]) == 4096 * 1024 * 1024, web["memory_static_max"])
check("VCPUs_max", int(web["VCPUs_max"]) == 2, web["VCPUs_max"])

# The objects discovery reads around a guest (datamodel.ml: VBD, VDI, SR, VM_guest_metrics;
# datamodel_vm_group.ml: VM_group), each through its own class's calls.
def disk_srs(vm):
    srs = []
    for vbd_ref in vm["VBDs"]:
        vbd = x.VBD.get_record(vbd_ref)
        if vbd["type"] == "Disk" and not vbd["empty"]:
            srs.append(x.SR.get_record(x.VDI.get_SR(vbd["VDI"])))
    return srs


web_srs = disk_srs(web)
check("web's disk is on a shared SR", len(web_srs) == 1 and web_srs[0]["shared"] is True, web_srs)
db = vms[guests["db"]]
db_srs = disk_srs(db)
check("db's disk is on a local SR (shared false)", len(db_srs) == 1 and db_srs[0]["shared"] is False, db_srs)
all_srs = x.SR.get_all_records()
# Guests' disks live on `user` SRs; the pool also has its HA heartbeat SR and an ISO library.
user_srs = [record for record in all_srs.values() if record["content_type"] == "user" and record["name_label"] != "heartbeat SR"]
check("one shared SR and a local SR per host hold the guests' disks", sorted(record["shared"] for record in user_srs) == [False, False, False, True], all_srs)
vbds = x.VBD.get_all_records()
check("every VBD names its VM", all(record["VM"] in vms for record in vbds.values()), list(vbds.values())[:1])
# Every VBD's VDI is a VDI of the pool; the HA statefile VDI belongs to no VBD.
all_vdis = x.VDI.get_all_records()
check("VDI.get_all_records lists every disk", all(record["VDI"] in all_vdis for record in vbds.values() if not record["empty"])
      and len(all_vdis) == len([r for r in vbds.values() if not r["empty"]]) + 1, sorted(all_vdis))
web_metrics = x.VM_guest_metrics.get_record(web["guest_metrics"])
check("web's guest metrics: PV drivers detected", web_metrics["PV_drivers_detected"] is True, web_metrics)
filler = vms[guests["filler"]]
filler_metrics = x.VM_guest_metrics.get_record(filler["guest_metrics"])
check("filler's guest metrics: no PV drivers", filler_metrics["PV_drivers_detected"] is False, filler_metrics)
check("filler may not pool_migrate", "pool_migrate" not in filler["allowed_operations"], filler["allowed_operations"])
check("filler is HA-protected (ha_restart_priority restart)", filler["ha_restart_priority"] == "restart", filler["ha_restart_priority"])
groups = x.VM_group.get_all_records()
check("one VM group", len(groups) == 1, groups)
group_ref, group = next(iter(groups.items()))
check("the group is anti_affinity with filler", group["placement"] == "anti_affinity" and group["VMs"] == [guests["filler"]] and group["name_label"] == "spread", group)
check("filler's groups name it", filler["groups"] == [group_ref], filler["groups"])
check("web is in no group", web["groups"] == [], web["groups"])

task = x.Async.VM.pool_migrate(guests["web"], by_name["xs2"], {"live": "true"})
check("Async.VM.pool_migrate answers a task ref", task.startswith("OpaqueRef:"), task)
progress_seen = []
deadline = time.time() + 60
while x.task.get_status(task) == "pending" and time.time() < deadline:
    progress_seen.append(float(x.task.get_progress(task)))
    time.sleep(0.05)
record = x.task.get_record(task)
check("the migration task succeeds", record["status"] == "success", record)
check("task progress was polled while pending", len(progress_seen) > 0, progress_seen[:3])
check("web now runs on xs2", x.VM.get_resident_on(guests["web"]) == by_name["xs2"])
x.task.destroy(task)
details = failure_code(lambda: x.task.get_record(task))
check("a destroyed task is HANDLE_INVALID", details and details[0] == "HANDLE_INVALID", details)

x.host.disable(by_name["xs3"])
check("host.disable is seen", x.host.get_enabled(by_name["xs3"]) is False)
details = failure_code(lambda: x.VM.pool_migrate(guests["web"], by_name["xs3"], {}))
check("a migration to a disabled host raises HOST_DISABLED", details and details[0] == "HOST_DISABLED", details)
x.host.enable(by_name["xs3"])
details = failure_code(lambda: x.VM.pool_migrate(guests["db"], by_name["xs3"], {}))
check("a migration of a halted VM raises VM_BAD_POWER_STATE", details == ["VM_BAD_POWER_STATE", guests["db"], "running", "halted"], details)
details = failure_code(lambda: x.VM.get_record("OpaqueRef:00000003-0000-4000-8000-00000000ffff"))
check("an unknown ref raises HANDLE_INVALID", details and details[0] == "HANDLE_INVALID", details)
task = x.Async.VM.pool_migrate(guests["web"], by_name["xs3"], {})
while x.task.get_status(task) == "pending":
    time.sleep(0.05)
details = x.task.get_error_info(task)
check("a refused async migration fails its task with HOST_NOT_ENOUGH_FREE_MEMORY",
      x.task.get_status(task) == "failure" and details[0] == "HOST_NOT_ENOUGH_FREE_MEMORY", details)

# XenServer 8's update mechanism (datamodel_pool.ml sync_updates, datamodel_host.ml
# apply_updates and latest_synced_updates_applied).
check("before a sync, latest_synced_updates_applied is unknown", x.host.get_latest_synced_updates_applied(by_name["xs1"]) == "unknown")
pool_ref = next(iter(pools))
update_hash = x.pool.sync_updates(pool_ref, False, "", "")
check("pool.sync_updates answers the updateinfo hash", isinstance(update_hash, str) and len(update_hash) == 64, update_hash)
check("a host below the synced release is behind (no)", x.host.get_latest_synced_updates_applied(by_name["xs1"]) == "no")
details = failure_code(lambda: x.host.apply_updates(by_name["xs1"], "0" * 64))
check("host.apply_updates with another hash raises UPDATEINFO_HASH_MISMATCH", details == ["UPDATEINFO_HASH_MISMATCH"], details)

# The pool settings a rolling pool upgrade resolves (and puts back): HA, WLB, CD media.
pool_ref = next(iter(pools))
pool = x.pool.get_record(pool_ref)
check("HA is enabled with one statefile", pool["ha_enabled"] is True and len(pool["ha_statefiles"]) == 1, pool)
heartbeat_sr = x.VDI.get_SR(pool["ha_statefiles"][0])
check("the statefile's SR is shared", x.SR.get_shared(heartbeat_sr) is True, heartbeat_sr)
configuration = pool["ha_configuration"]
x.pool.disable_ha()
check("pool.disable_ha turns HA off", x.pool.get_ha_enabled(pool_ref) is False)
details = failure_code(lambda: x.pool.disable_ha())
check("disable_ha on a pool without HA raises HA_NOT_ENABLED", details == ["HA_NOT_ENABLED"], details)
check("the statefiles stay after disable_ha", x.pool.get_ha_statefiles(pool_ref) == pool["ha_statefiles"])
x.pool.enable_ha([heartbeat_sr], configuration)
check("pool.enable_ha with the heartbeat SR turns HA on again", x.pool.get_ha_enabled(pool_ref) is True)
check("HA keeps its configuration", x.pool.get_ha_configuration(pool_ref) == configuration, x.pool.get_ha_configuration(pool_ref))
details = failure_code(lambda: x.pool.enable_ha([heartbeat_sr], configuration))
check("enable_ha on a pool with HA raises HA_IS_ENABLED", details == ["HA_IS_ENABLED"], details)
x.pool.set_ha_host_failures_to_tolerate(pool_ref, "1")
check("ha_host_failures_to_tolerate is set", int(x.pool.get_ha_host_failures_to_tolerate(pool_ref)) == 1)

check("WLB is enabled", pool["wlb_enabled"] is True, pool["wlb_enabled"])
x.pool.set_wlb_enabled(pool_ref, False)
check("pool.set_wlb_enabled(false) turns WLB off", x.pool.get_wlb_enabled(pool_ref) is False)
x.pool.set_wlb_enabled(pool_ref, True)
check("pool.set_wlb_enabled(true) turns it on again", x.pool.get_wlb_enabled(pool_ref) is True)

cds = {ref: record for ref, record in x.VBD.get_all_records().items() if record["type"] == "CD"}
check("web has a CD drive holding media",
      [record["VM"] for record in cds.values()] == [guests["web"]] and not any(record["empty"] for record in cds.values()), cds)
cd = next(iter(cds))
check("web's VM record lists its CD drive in VBDs (datamodel VM.VBDs: every VBD of the VM)",
      cd in x.VM.get_VBDs(guests["web"]) and cd in web["VBDs"], web["VBDs"])
x.VBD.eject(cd)
check("VBD.eject empties the drive", x.VBD.get_empty(cd) is True)
details = failure_code(lambda: x.VBD.eject(cd))
check("ejecting an empty drive raises VBD_IS_EMPTY", details == ["VBD_IS_EMPTY", cd], details)

# Updates uploaded to the pool (datamodel.ml, class pool_update): the catalog's hotfixes, each
# with the hosts that applied it; pool_update.apply(self, host) adds one, and applying it again
# raises UPDATE_ALREADY_APPLIED, as xapi does.
updates = x.pool_update.get_all_records()
names = sorted(record["name_label"] for record in updates.values())
check("the pool lists its uploaded updates", names == ["XS82E001", "XS82E002"], names)
first = x.pool_update.get_by_name_label("XS82E001")
check("pool_update.get_by_name_label finds one", len(first) == 1, first)
first = first[0]
check("XS82E001 needs a host restart (after_apply_guidance)",
      x.pool_update.get_after_apply_guidance(first) == ["restartHost"], x.pool_update.get_after_apply_guidance(first))
check("xs2 applied XS82E001 already", x.pool_update.get_hosts(first) == [by_name["xs2"]], x.pool_update.get_hosts(first))
x.pool_update.apply(first, by_name["xs1"])
check("pool_update.apply adds the host", sorted(x.pool_update.get_hosts(first)) == sorted([by_name["xs1"], by_name["xs2"]]),
      x.pool_update.get_hosts(first))
details = failure_code(lambda: x.pool_update.apply(first, by_name["xs1"]))
check("applying it again raises UPDATE_ALREADY_APPLIED", details == ["UPDATE_ALREADY_APPLIED", first], details)
second = x.pool_update.get_by_name_label("XS82E002")[0]
task = x.Async.pool_update.apply(second, by_name["xs3"])
for _ in range(200):
    if x.task.get_status(task) != "pending":
        break
    time.sleep(0.05)
check("Async.pool_update.apply ends as a successful task", x.task.get_status(task) == "success", x.task.get_record(task))
check("xs3 applied XS82E002", x.pool_update.get_hosts(second) == [by_name["xs3"]], x.pool_update.get_hosts(second))

# Suspend and resume (datamodel_vm.ml: suspend(vm), resume_on(vm, host, start_paused, force);
# xapi_vm_lifecycle.ml: suspend needs Running and the guest's feature-suspend, resume_on needs
# Suspended, and a suspend clears resident_on).
details = failure_code(lambda: x.VM.suspend(guests["filler"]))
check("suspending a VM without PV drivers raises VM_LACKS_FEATURE", details == ["VM_LACKS_FEATURE", guests["filler"]], details)
check("a running VM with PV drivers may suspend", "suspend" in x.VM.get_allowed_operations(guests["web"]),
      x.VM.get_allowed_operations(guests["web"]))
task = x.Async.VM.suspend(guests["web"])
for _ in range(400):
    if x.task.get_status(task) != "pending":
        break
    time.sleep(0.05)
check("Async.VM.suspend ends as a successful task", x.task.get_status(task) == "success", x.task.get_record(task))
x.task.destroy(task)
web = x.VM.get_record(guests["web"])
check("web is Suspended, resident nowhere", web["power_state"] == "Suspended" and web["resident_on"] == "OpaqueRef:NULL",
      (web["power_state"], web["resident_on"]))
check("a suspended VM may resume_on", "resume_on" in web["allowed_operations"], web["allowed_operations"])
details = failure_code(lambda: x.VM.suspend(guests["web"]))
check("suspending it again raises VM_BAD_POWER_STATE", details == ["VM_BAD_POWER_STATE", guests["web"], "running", "suspended"], details)
details = failure_code(lambda: x.VM.start_on(guests["web"], by_name["xs2"], False, False))
check("start_on a suspended VM raises VM_BAD_POWER_STATE", details == ["VM_BAD_POWER_STATE", guests["web"], "halted", "suspended"], details)
task = x.Async.VM.resume_on(guests["web"], by_name["xs2"], False, False)
for _ in range(400):
    if x.task.get_status(task) != "pending":
        break
    time.sleep(0.05)
check("Async.VM.resume_on ends as a successful task", x.task.get_status(task) == "success", x.task.get_record(task))
x.task.destroy(task)
check("web runs again on xs2", x.VM.get_power_state(guests["web"]) == "Running" and x.VM.get_resident_on(guests["web"]) == by_name["xs2"],
      (x.VM.get_power_state(guests["web"]), x.VM.get_resident_on(guests["web"])))
details = failure_code(lambda: x.VM.resume_on(guests["web"], by_name["xs2"], False, False))
check("resume_on a running VM raises VM_BAD_POWER_STATE", details == ["VM_BAD_POWER_STATE", guests["web"], "suspended", "running"], details)

session.xenapi.session.logout()
# XenAPI.py answers SESSION_INVALID by logging in again; without a login to repeat it raises
# xmlrpc.client.Fault 401. A raw proxy shows the code itself.
try:
    x.host.get_all()
    check("a call after logout is refused", False)
except xmlrpc.client.Fault as fault:
    check("a call after logout is refused (Fault 401)", fault.faultCode == 401, fault)
raw = xmlrpc.client.ServerProxy(url).host.get_all("OpaqueRef:stale")
check("a bad session is SESSION_INVALID", raw == {"Status": "Failure", "ErrorDescription": ["SESSION_INVALID", "OpaqueRef:stale"]}, raw)

print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
