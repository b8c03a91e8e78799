#!/bin/sh
# cordon.sh STATE HOST true|false: (un)cordons a host. Idempotent: setting the state it
# already has succeeds.
. "$(dirname "$0")/lib.sh"
dir=$(host_dir "$1" "$2")
case "$3" in true | false) ;; *) die "cordon.sh: expected true or false, got '$3'" ;; esac
echo "$3" >"$dir/cordoned"
