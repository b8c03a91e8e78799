#!/bin/sh
# set-compatibility-level.sh STATE CLUSTER LEVEL: sets the cluster's compatibility level once
# every host runs the new version (a host below LEVEL would not support it). Idempotent.
. "$(dirname "$0")/lib.sh"
check_name "$2"
check_name "$3"
for host in "$1"/hosts/*; do
    version=$(cat "$host/version")
    case "$version" in
        "$3" | "$3".*) ;;
        *) die "host $(basename "$host") runs $version, which does not support level $3" ;;
    esac
done
if [ "$(cat "$1/compatibility_level" 2>/dev/null || true)" = "$3" ]; then
    echo "cluster $2 already has compatibility level $3"
    exit 0
fi
echo "$3" >"$1/compatibility_level"
echo "cluster $2 now has compatibility level $3"
