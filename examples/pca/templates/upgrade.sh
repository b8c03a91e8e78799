#!/bin/sh
# upgrade.sh NODE: foreign packages first (they must be uninstalled before the Oracle VM Server
# upgrade), then `pca-admin update compute-node NODE`, one node per call (the plan never runs two:
# policy.one_host_at_a_time), answering its "Are you sure [y/N]:" with y.
. "$(dirname "$0")/lib.sh"
foreign=$(on_node "$1" sh -c 'rpm -qa --qf "%{NAME} %{VENDOR}\n" 2>/dev/null | grep -v -i oracle | cut -d" " -f1' 2>/dev/null || on_node "$1" foreign-packages)
[ -z "$foreign" ] || die "compute node $1 runs packages that are not part of the appliance; uninstall them first: $(echo $foreign)"
out=$(printf 'y\n' | $PCA_ADMIN update compute-node "$1" 2>&1) || true
case "$out" in
    *"Status: Success"*) echo "pca-admin update compute-node $1: Status: Success" ;;
    *) die "pca-admin update compute-node $1 failed: $(printf '%s' "$out" | grep -E 'Status|Error' | tr '\n' ' ')" ;;
esac
