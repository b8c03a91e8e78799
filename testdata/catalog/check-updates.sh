#!/bin/sh
# Stands in for `ssh HOST apt list --upgradable` in the catalog tests: kvm03 prints a real
# Debian 12 capture (124 upgradable packages, bash among them), every other host nothing.
capture="$(dirname "$0")/../../crates/drover-catalog/testdata/apt-list-upgradable-debian12.txt"
case "$1" in
    kvm03) cat "$capture" ;;
    *) echo "Listing..." ;;
esac
