#!/usr/bin/env bash
# Builds the "linux" test guest of Drover's libvirt harness from Debian packages only:
#   vmlinuz        Debian's kernel (apt-get download linux-image-<abi>-<flavour>, unpacked)
#   initramfs.gz   ~1 MB: busybox-static and an /init that
#                    - prints "GUEST: <name> booted ..." once, then "HB <n> up=<uptime>" on the
#                      serial port every second (a migrated guest that never rebooted shows a
#                      strictly increasing n),
#                    - powers off on the ACPI power button (virsh shutdown),
#                    - with "dirty=N" on the kernel command line, rewrites N MiB of RAM
#                      continuously (a guest that makes live migration work harder).
#
# usage: tests/libvirt/guest/build.sh [--force] [OUT_DIR]
#   OUT_DIR defaults to $DROVER_LIBVIRT_CACHE/guest (tests/libvirt/.cache/guest). Does nothing when
#   the guest is already built by this version of the script (--force rebuilds).
#   DROVER_GUEST_KERNEL_FLAVOUR=amd64 (default) or cloud-amd64 chooses the kernel package.
set -euo pipefail
# shellcheck disable=SC2034  # read by lib.sh
DRV_PROG=guest/build.sh
# shellcheck source=../lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

force=0 out=$DRV_GUEST_DIR
while [ $# -gt 0 ]; do
    case "$1" in
        --force) force=1;;
        -h|--help) drv_usage "${BASH_SOURCE[0]}"; exit 0;;
        -*) drv_die "unknown option $1 (usage: build.sh [--force] [OUT_DIR])";;
        *) out=$(realpath -m "$1");;
    esac
    shift
done
flavour=${DROVER_GUEST_KERNEL_FLAVOUR:-amd64}
recipe_id="$(sha256sum "${BASH_SOURCE[0]}" | cut -c1-16) $flavour"
if [ "$force" = 0 ] && [ -s "$out/vmlinuz" ] && [ -s "$out/initramfs.gz" ] &&
   [ "$(head -1 "$out/BUILT" 2>/dev/null)" = "$recipe_id" ]; then
    drv_say "guest already built in $out ($(sed -n 2p "$out/BUILT")); --force rebuilds"
    exit 0
fi

drv_require_root   # mknod for /dev/console in the image; apt-get download
for c in apt-get apt-cache dpkg-deb cpio gzip; do
    command -v "$c" >/dev/null || drv_die "$c not found: run tests/libvirt/install.sh first"
done
t0=$(drv_now_ms)
work=$(mktemp -d /tmp/drover-guest.XXXXXX)
trap 'rm -rf "$work"' EXIT
chmod 755 "$work"        # apt-get download runs as user _apt and must be able to write here
mkdir -p "$work/dl" "$work/x"
chmod 777 "$work/dl"

# Package lists must know the packages; a download may also fail on lists older than the mirror.
drv_apt_update_if_stale
kernel_pkg=$(apt-cache depends "linux-image-$flavour" 2>/dev/null |
             awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
if [ -z "$kernel_pkg" ]; then
    drv_apt_update
    kernel_pkg=$(apt-cache depends "linux-image-$flavour" 2>/dev/null |
                 awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
fi
[ -n "$kernel_pkg" ] || drv_die "no kernel package behind linux-image-$flavour in the apt lists"
pkgs=("$kernel_pkg")
bb=/bin/busybox
if [[ "$(dpkg-query -W -f='${db:Status-Abbrev}' busybox-static 2>/dev/null)" != ii* ]]; then
    pkgs+=(busybox-static); bb=""        # not installed: take the binary from the package
fi
drv_say "+ apt-get download ${pkgs[*]}"
if ! (cd "$work/dl" && apt-get download -q "${pkgs[@]}" >"$work/dl.log" 2>&1); then
    drv_apt_update
    (cd "$work/dl" && apt-get download -q "${pkgs[@]}" >"$work/dl.log" 2>&1) ||
        { cat "$work/dl.log" >&2; drv_die "apt-get download ${pkgs[*]} failed (output above)"; }
fi
kdeb=$(ls "$work"/dl/"$kernel_pkg"_*.deb)
# Unpack only what the guest needs (the whole package is ~400 MB unpacked).
dpkg-deb --fsys-tarfile "$kdeb" |
    tar -x -C "$work/x" --wildcards './boot/vmlinuz-*' \
        '*/kernel/drivers/acpi/button.ko*' '*/kernel/drivers/input/evdev.ko*'
if [ -z "$bb" ]; then
    dpkg-deb --fsys-tarfile "$work"/dl/busybox-static_*.deb | tar -x -C "$work/x" ./bin/busybox
    bb="$work/x/bin/busybox"
fi
vmlinuz=$(ls "$work"/x/boot/vmlinuz-*)
[ -s "$vmlinuz" ] || drv_die "no vmlinuz in $kdeb"

# --- the initramfs -------------------------------------------------------------------------------
R="$work/root"
mkdir -p "$R"/{bin,proc,sys,dev,tmp,etc/acpi/PWRF,lib/modules}
cp "$bb" "$R/bin/busybox"
for a in sh mount echo sleep cat insmod acpid poweroff dd mkdir; do ln -s busybox "$R/bin/$a"; done
mknod -m 600 "$R/dev/console" c 5 1   # the kernel opens it for /init: errors land on the serial port
for m in button evdev; do
    f=$(find "$work/x/lib" "$work/x/usr/lib" -name "$m.ko*" 2>/dev/null | head -1 || true)
    case "$f" in
        "") drv_say "note: no $m module in $kernel_pkg (assumed built in)";;
        *.ko.xz) xz -dc "$f" >"$R/lib/modules/$m.ko";;
        *.ko.zst) zstd -qdc "$f" >"$R/lib/modules/$m.ko";;
        *) cp "$f" "$R/lib/modules/$m.ko";;
    esac
done
# busybox acpid maps the power button (EV_KEY KEY_POWER) to the script PWRF/00000080.
cat >"$R/etc/acpi/PWRF/00000080" <<'EOF'
#!/bin/sh
echo "GUEST: power button -> poweroff" >/dev/ttyS0
poweroff -f
EOF
cat >"$R/init" <<'EOF'
#!/bin/sh
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in /lib/modules/evdev.ko /lib/modules/button.ko; do [ -e $m ] && insmod $m; done
acpid -c /etc/acpi -d >/dev/null 2>&1 &
NAME=guest DIRTY=0
for w in $(cat /proc/cmdline); do
    case $w in dirty=*) DIRTY=${w#dirty=};; drover.name=*) NAME=${w#drover.name=};; esac
done
read up idle </proc/uptime
echo "GUEST: $NAME booted in ${up}s, dirty=${DIRTY}MiB" >/dev/ttyS0
if [ "$DIRTY" -gt 0 ]; then
    mount -t tmpfs -o size=$((DIRTY + 1))m tmpfs /tmp
    (while :; do dd if=/dev/urandom of=/tmp/junk bs=1M count=$DIRTY 2>/dev/null; done) &
fi
n=0
while :; do
    n=$((n + 1))
    read up idle </proc/uptime
    echo "HB $n up=$up" >/dev/ttyS0
    sleep 1
done
EOF
chmod 755 "$R/init" "$R/etc/acpi/PWRF/00000080"

mkdir -p "$out"
find "$R" -exec touch -h -d @0 {} +   # reproducible image
(cd "$R" && find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --reproducible --quiet | gzip -9n) >"$out/initramfs.gz.tmp"
cp "$vmlinuz" "$out/vmlinuz.tmp"
mv "$out/vmlinuz.tmp" "$out/vmlinuz"
mv "$out/initramfs.gz.tmp" "$out/initramfs.gz"
kver=$(dpkg-deb -f "$kdeb" Version)
printf '%s\n%s %s, busybox %s\n' "$recipe_id" "$kernel_pkg" "$kver" \
    "$("$bb" 2>&1 | head -1 | awk '{print $2}')" >"$out/BUILT"
drv_say "guest built in $out ($(( $(drv_now_ms) - t0 )) ms): vmlinuz $(stat -c %s "$out/vmlinuz") bytes ($kernel_pkg $kver), initramfs.gz $(stat -c %s "$out/initramfs.gz") bytes"
