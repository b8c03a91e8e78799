#!/bin/sh
# Shared by the PCA profile's steps. Set by the operator (see ../README or the inventory):
#   OVMCLI     how to reach the Oracle VM Manager CLI, e.g. "ssh -p 10000 admin@ovmm-vip"
#   PCA_ADMIN  the Oracle PCA CLI on the master management node, e.g. "ssh root@pca-mn-vip pca-admin"
#   NODE_SHELL how to run a command on a compute node NODE (the node's name is appended), e.g.
#              "ssh -o BatchMode=yes root@"  (then: ssh root@NODE COMMAND)
set -eu
die() { echo "$*" >&2; exit 1; }
: "${OVMCLI:?set OVMCLI (e.g. ssh -p 10000 admin@ovmm-vip)}"
: "${PCA_ADMIN:?set PCA_ADMIN (e.g. ssh root@pca-mn-vip pca-admin)}"
: "${NODE_SHELL:?set NODE_SHELL (e.g. ssh root@)}"

# ovm COMMAND: runs one Oracle VM Manager CLI command; fails unless it answers "Status: Success".
ovm() {
    out=$($OVMCLI "$*" 2>&1) || true
    case "$out" in
        *"Status: Success"*) printf '%s\n' "$out" ;;
        *) die "Oracle VM Manager CLI: $* failed: $(printf '%s' "$out" | grep -E 'Error Msg|Status' | tr '\n' ' ')" ;;
    esac
}

# field NAME: the value of "  NAME = value" in the CLI's Data section read on stdin.
field() { sed -n "s/^ *$1 = //p" | head -n 1; }

# on_node NODE COMMAND…: runs a command on a compute node.
on_node() { node=$1; shift; $NODE_SHELL"$node" "$@"; }
