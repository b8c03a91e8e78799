#!/bin/sh
# health-check.sh NODE: the server answers Oracle VM Manager as Running.
. "$(dirname "$0")/lib.sh"
status=$(ovm show Server name="$1" | field Status)
[ "$status" = Running ] || die "server $1 is $status"
echo "server $1 is Running"
