#!/bin/sh
# start.sh VM HOST: starts VM on HOST, defining it there from wherever it is defined if needed.
. "$(dirname "$0")/common.sh"
vm=$1; host=$2
[ "$(domain_state "$host" "$vm")" = "running" ] && exit 0
if [ -z "$(domain_state "$host" "$vm")" ]; then
    for other in "$state"/h*/; do
        other=$(basename "$other"); [ "$other" = "$host" ] && continue
        [ -f "$state/$other/uri" ] || continue
        if [ -n "$(domain_state "$other" "$vm")" ]; then
            xml=$(mktemp); vsh "$(uri "$other")" dumpxml --inactive "$vm" > "$xml"
            vsh "$(uri "$host")" define "$xml" >/dev/null; rm -f "$xml"
            vsh "$(uri "$other")" undefine "$vm" >/dev/null
            break
        fi
    done
fi
vsh "$(uri "$host")" start "$vm" >/dev/null
