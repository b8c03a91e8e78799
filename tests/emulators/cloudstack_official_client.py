"""Drives drover-emulator's CloudStack front-end with the official Python client, PyPI `cs`
(exoscale/cs): lists zones and hosts, disables a host and sees it refuse a migration, migrates a VM
through an asynchronous job (`fetch_result=True`, which polls queryAsyncJobResult) and sees it on
the target, follows another job by polling queryAsyncJobResult itself, pages a list
(`fetch_list=True`), POSTs, and gets CloudStackApiException for a wrong secret (401) and for a bad
parameter (431), and adds, lists and removes a host's annotation. Exits non-zero on the first
surprise.

Usage: cloudstack_official_client.py ENDPOINT API_KEY SECRET_KEY
"""

import sys
import time

from cs import CloudStack, CloudStackApiException


def check(condition, message):
    if not condition:
        raise SystemExit("FAILED: " + message)
    print("ok -", message)


def main():
    endpoint, key, secret = sys.argv[1:4]
    api = CloudStack(endpoint=endpoint, key=key, secret=secret, poll_interval=0.05, job_timeout=60)

    zones = api.listZones()
    check(zones["count"] == 2, "listZones: 2 zones ({})".format([z["name"] for z in zones["zone"]]))
    east = [z for z in zones["zone"] if z["name"] == "east"][0]

    hosts = api.listHosts(type="Routing", zoneid=east["id"])["host"]
    check(
        [h["name"] for h in hosts] == ["cs1", "cs2"]
        and all(h["resourcestate"] == "Enabled" and h["state"] == "Up" for h in hosts),
        "listHosts type=Routing in east: cs1, cs2 Up and Enabled",
    )
    by_name = {h["name"]: h for h in hosts}
    check(by_name["cs1"]["hypervisor"] == "XenServer" and by_name["cs1"]["hypervisorversion"] == "8.2.0",
          "hypervisor and hypervisorversion")

    vms = api.listVirtualMachines(listall=True, fetch_list=True)
    check(sorted(v["name"] for v in vms) == ["batch", "notools", "web"],
          "listVirtualMachines with fetch_list (paged by the client): 3 user VMs, the router apart")
    web = [v for v in vms if v["name"] == "web"][0]
    check(web["hostname"] == "cs1" and web["state"] == "Running", "web runs on cs1")
    notools = [v for v in vms if v["name"] == "notools"][0]
    check(notools["isdynamicallyscalable"] is False, "notools has no tools (isdynamicallyscalable false)")
    routers = api.listRouters(listall=True)["router"]
    check([r["name"] for r in routers] == ["r-4-VM"], "listRouters: r-4-VM")

    disabled = api.updateHost(id=by_name["cs2"]["id"], allocationstate="Disable")["host"]
    check(disabled["resourcestate"] == "Disabled", "updateHost allocationstate=Disable")
    try:
        api.migrateVirtualMachine(virtualmachineid=web["id"], hostid=by_name["cs2"]["id"])
        check(False, "a migration to a disabled host is refused")
    except CloudStackApiException as error:
        check(error.response.status_code == 431 and error.error["errorcode"] == 431,
              "a migration to a disabled host is refused: 431 {}".format(error.error["errortext"]))
    enabled = api.updateHost(id=by_name["cs2"]["id"], allocationstate="Enable")["host"]
    check(enabled["resourcestate"] == "Enabled", "updateHost allocationstate=Enable")

    result = api.migrateVirtualMachine(virtualmachineid=web["id"], hostid=by_name["cs2"]["id"], fetch_result=True)
    check(result["virtualmachine"]["hostname"] == "cs2", "migrateVirtualMachine as an async job: web now on cs2")
    seen = api.listVirtualMachines(id=web["id"])["virtualmachine"][0]
    check(seen["hostname"] == "cs2" and seen["state"] == "Running", "listVirtualMachines sees web on cs2")

    # The same through queryAsyncJobResult, polled here rather than by the client.
    started = api.migrateVirtualMachine(virtualmachineid=web["id"], hostid=by_name["cs1"]["id"])
    check("jobid" in started, "an async command answers a jobid")
    deadline = time.time() + 60
    while True:
        job = api.queryAsyncJobResult(jobid=started["jobid"])
        if job["jobstatus"] != 0 or time.time() > deadline:
            break
        time.sleep(0.05)
    check(job["jobstatus"] == 1 and job["jobresultcode"] == 0
          and job["jobresult"]["virtualmachine"]["hostname"] == "cs1",
          "queryAsyncJobResult: jobstatus 1, jobresultcode 0, web back on cs1")

    stopped = api.stopVirtualMachine(id=notools["id"], fetch_result=True)["virtualmachine"]
    check(stopped["state"] == "Stopped", "stopVirtualMachine (a VM without tools)")
    started = api.startVirtualMachine(id=notools["id"], hostid=by_name["cs2"]["id"], fetch_result=True)
    check(started["virtualmachine"]["hostname"] == "cs2", "startVirtualMachine with hostid: on cs2")

    posting = CloudStack(endpoint=endpoint, key=key, secret=secret, method="post")
    check(posting.listClusters(zoneid=east["id"])["cluster"][0]["name"] == "east-cluster1", "a POST is signed and answered")

    wrong = CloudStack(endpoint=endpoint, key=key, secret="not-the-secret")
    try:
        wrong.listHosts()
        check(False, "a wrong secret is refused")
    except CloudStackApiException as error:
        check(error.response.status_code == 401 and error.error["errorcode"] == 401,
              "a wrong secret (bad signature) is refused: 401 {}".format(error.error["errortext"]))

    try:
        api.updateHost(id=by_name["cs1"]["id"], allocationstate="Sideways")
        check(False, "a bad parameter is refused")
    except CloudStackApiException as error:
        check(error.response.status_code == 431 and error.error["errorcode"] == 431
              and error.error["cserrorcode"] == 4350,
              "a bad parameter is refused: 431 / cserrorcode 4350 {}".format(error.error["errortext"]))

    try:
        api.migrateVirtualMachine(hostid=by_name["cs1"]["id"])
        check(False, "a missing parameter is refused")
    except CloudStackApiException as error:
        check(error.error["errorcode"] == 431, "a missing parameter is refused: {}".format(error.error["errortext"]))

    # Annotations (API 4.11), where Drover's driver marks a host Disabled before its maintenance.
    cs2 = by_name["cs2"]["id"]
    added = api.addAnnotation(entitytype="HOST", entityid=cs2, annotation="drover: a note", adminsonly="true")
    note = added["annotation"]
    check(note["entityid"] == cs2 and note["entitytype"] == "HOST" and note["annotation"] == "drover: a note"
          and note["adminsonly"] is True,
          "addAnnotation on a HOST: {}".format(note["id"]))
    listed = api.listAnnotations(entitytype="HOST", entityid=cs2)
    check(listed["count"] == 1 and listed["annotation"][0]["id"] == note["id"],
          "listAnnotations entitytype=HOST entityid: the note")
    check(api.listAnnotations(entitytype="HOST", entityid=by_name["cs1"]["id"]) == {},
          "listAnnotations of a host without notes: an empty answer")
    removed = api.removeAnnotation(id=note["id"])
    check(removed["annotation"]["id"] == note["id"], "removeAnnotation answers the removed note")
    check(api.listAnnotations(entitytype="HOST") == {}, "no notes left")
    try:
        api.addAnnotation(entitytype="HOSTS", entityid=cs2, annotation="x")
        check(False, "a bad entity type is refused")
    except CloudStackApiException as error:
        check(error.error["errorcode"] == 530, "a bad entity type is refused: {}".format(error.error["errortext"]))


if __name__ == "__main__":
    main()
