#!/bin/sh
# maintenance.sh NODE enter|exit: "Edit Server" → "Server in Maintenance Mode" (idempotent).
. "$(dirname "$0")/lib.sh"
case "$2" in enter) want=Yes; is=On ;; exit) want=No; is=Off ;; *) die "enter or exit, not $2" ;; esac
[ "$(ovm show Server name="$1" | field "Maintenance Mode")" = "$is" ] && exit 0
ovm edit Server name="$1" inMaintenanceMode=$want >/dev/null
