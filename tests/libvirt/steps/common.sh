# Shared by the step scripts: Drover's command driver runs them with names as separate
# arguments (no shell parses Drover's values). Every virsh call has a timeout.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
state=${DROVER_LIBVIRT_STATE:-$here/../.state}
uri() { cat "$state/$1/uri"; }
vsh() { timeout "${VIRSH_TIMEOUT:-120}" virsh -q -c "$@"; }
domain_state() { vsh "$(uri "$1")" domstate "$2" 2>/dev/null | head -1 || true; }
