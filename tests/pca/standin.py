#!/usr/bin/env python3
"""A scripted stand-in of the two CLIs the PCA profile (examples/pca/) drives, keeping their
documented outputs (Oracle PCA 2.4 Administrator's Guide, "Upgrading a Compute Node to a Newer
Oracle VM Server Release": `pca-admin` answers `Status: Success`, `update compute-node` warns
"THIS IS A DESTRUCTIVE OPERATION" and asks "Are you sure [y/N]:", refuses to run twice at once,
restarts the node and leaves it in maintenance mode; the Oracle VM Manager CLI answers
`Command: …`, `Status: Success|Failure`, `Time: …` and `Data:` with `Name = value` lines) and a
compute node's shell for its boot id and its packages. State in the JSON file $PCA_STANDIN_STATE.

Usage: standin.py init STATE TARGET NODE[:VERSION[:FOREIGN,PKG]] … -- VM:NODE …
       standin.py ovmcli "COMMAND"          (as `ssh -p 10000 admin@MANAGER "COMMAND"`)
       standin.py pca-admin update compute-node NODE   (answer on stdin)
       standin.py node NODE boot-id|foreign-packages
"""

import fcntl
import json
import os
import sys
import time


def now():
    return time.strftime("%Y-%m-%d %H:%M:%S,000 UTC", time.gmtime())


class State:
    def __init__(self, path):
        self.path = path
        self.lock = open(path + ".lock", "a+")
        fcntl.flock(self.lock, fcntl.LOCK_EX)
        with open(path) as f:
            self.data = json.load(f)

    def save(self):
        with open(self.path + ".tmp", "w") as f:
            json.dump(self.data, f)
        os.replace(self.path + ".tmp", self.path)
        fcntl.flock(self.lock, fcntl.LOCK_UN)


def ovm_answer(command, ok, data=None, error=None):
    print("Command: " + command)
    print("Status: " + ("Success" if ok else "Failure"))
    print("Time: " + now())
    if error:
        print("Error Msg: " + error)
    if data:
        print("Data:")
        for key, value in data:
            print("  {} = {}".format(key, value))
    return 0 if ok else 1


def ovmcli(state, command):
    words = command.split()
    verb, kind = (words + ["", ""])[:2]
    args = dict(word.split("=", 1) for word in words[2:] if "=" in word)
    servers, vms = state.data["servers"], state.data["vms"]
    name = args.get("name", "")
    if kind == "Server" and name not in servers or kind == "Vm" and name not in vms:
        return ovm_answer(command, False, error="Cannot find object of type {} with name {}".format(kind, name))
    if (verb, kind) == ("show", "Server"):
        server = servers[name]
        return ovm_answer(command, True, [("Name", name), ("Status", "Running"),
                                          ("Maintenance Mode", "On" if server["maintenance"] else "Off"),
                                          ("Version", server["version"] + "-2105")])
    if (verb, kind) == ("show", "Vm"):
        vm = vms[name]
        return ovm_answer(command, True, [("Name", name), ("Status", "Running" if vm["running"] else "Stopped"),
                                          ("Server", vm["server"])])
    if (verb, kind) == ("edit", "Server") and "inMaintenanceMode" in args:
        wanted = args["inMaintenanceMode"] == "Yes"
        running = [v for v, vm in vms.items() if vm["server"] == name and vm["running"]]
        if wanted and running:
            return ovm_answer(command, False, error="Server {} has running VMs: {}".format(name, ", ".join(running)))
        servers[name]["maintenance"] = wanted
        state.save()
        return ovm_answer(command, True)
    if (verb, kind) == ("migrate", "Vm"):
        destination = args.get("destServer", "")
        if destination not in servers:
            return ovm_answer(command, False, error="Cannot find object of type Server with name " + destination)
        if servers[destination]["maintenance"]:
            return ovm_answer(command, False, error="Server {} is in maintenance mode".format(destination))
        vms[name]["server"] = destination
        state.save()
        return ovm_answer(command, True)
    if verb in ("start", "stop") and kind == "Vm":
        if verb == "start" and servers[vms[name]["server"]]["maintenance"]:
            return ovm_answer(command, False, error="Server {} is in maintenance mode".format(vms[name]["server"]))
        vms[name]["running"] = verb == "start"
        state.save()
        return ovm_answer(command, True)
    if (verb, kind) == ("restart", "Server"):
        servers[name]["boot"] += 1
        state.save()
        return ovm_answer(command, True)
    return ovm_answer(command, False, error="Invalid command: " + command)


def pca_admin(state, args):
    if args[:2] != ["update", "compute-node"] or len(args) != 3:
        print("Invalid command. Running the update compute-node command with multiple servers as arguments is not supported.")
        print("Status: Failure")
        return 1
    node = args[2]
    servers = state.data["servers"]
    if node not in servers:
        print("Status: Failure\nError Message: unknown compute node " + node)
        return 1
    if state.data.get("updating"):
        print("Status: Failure\nError Message: an update of {} is in progress".format(state.data["updating"]))
        return 1
    print("*" * 60)
    print("WARNING !!! THIS IS A DESTRUCTIVE OPERATION.")
    print("*" * 60)
    sys.stdout.write("Are you sure [y/N]:")
    sys.stdout.flush()
    if sys.stdin.readline().strip() != "y":
        print("\nStatus: Failure\nError Message: aborted")
        return 1
    print()
    server = servers[node]
    problems = []
    if not server["maintenance"]:
        problems.append("compute node {} is not in maintenance mode".format(node))
    if server["foreign"]:
        problems.append("packages not part of the appliance are installed: " + ", ".join(server["foreign"]))
    if any(vm["server"] == node and vm["running"] for vm in state.data["vms"].values()):
        problems.append("virtual machines are running on " + node)
    if problems:
        print("Status: Failure\nError Message: " + "; ".join(problems))
        return 1
    state.data["updating"] = node
    state.data["updates"].append(node)
    state.save()
    time.sleep(1.0)  # long enough for a concurrent call to be refused
    state = State(state.path)
    server = state.data["servers"][node]
    server["version"] = state.data["target"]
    server["boot"] += 1  # restarted by the update, still in maintenance mode
    state.data["updating"] = None
    state.save()
    print("Status: Success")
    return 0


def node_shell(state, node, what):
    server = state.data["servers"].get(node)
    if server is None:
        print("ssh: Could not resolve hostname " + node, file=sys.stderr)
        return 255
    if what == "boot-id":
        print("{}-boot-{}".format(node, server["boot"]))
    elif what == "foreign-packages":
        for package in server["foreign"]:
            print(package)
    return 0


def init(path, target, entries):
    split = entries.index("--")
    servers = {}
    for entry in entries[:split]:
        parts = entry.split(":")
        servers[parts[0]] = {"version": parts[1] if len(parts) > 1 and parts[1] else "3.4.4",
                             "maintenance": False, "boot": 1,
                             "foreign": [p for p in (parts[2].split(",") if len(parts) > 2 else []) if p]}
    vms = {}
    for entry in entries[split + 1:]:
        vm, node = entry.split(":")
        vms[vm] = {"server": node, "running": True}
    with open(path, "w") as f:
        json.dump({"target": target, "servers": servers, "vms": vms, "updating": None, "updates": []}, f)
    return 0


def main():
    tool, args = sys.argv[1], sys.argv[2:]
    if tool == "init":
        return init(args[0], args[1], args[2:])
    state = State(os.environ["PCA_STANDIN_STATE"])
    if tool == "ovmcli":
        return ovmcli(state, " ".join(args))
    if tool == "pca-admin":
        return pca_admin(state, args)
    if tool == "node":
        return node_shell(state, args[0], args[1])
    print("unknown tool " + tool, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
