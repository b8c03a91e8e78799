#!/bin/sh
# health-check.sh STATE HOST: exits 0 when the host answers.
. "$(dirname "$0")/lib.sh"
dir=$(host_dir "$1" "$2")
[ ! -e "$dir/down" ] || die "host $2 does not answer"
echo "host $2 is healthy"
