#!/usr/bin/env bash
# mmdebstrap --customize-hook for the guest image (image.sh): runs on the host
# with the finished chroot as $1 and LOCKSTEP_VM_OUT naming the directory that
# receives the kernel, the initramfs and the package list. Everything it
# writes is a function of the chroot and the files beside this script, with
# every timestamp set to SOURCE_DATE_EPOCH.
set -euo pipefail
root=$1
out=${LOCKSTEP_VM_OUT:?}
epoch=${SOURCE_DATE_EPOCH:?}
here=$(cd "$(dirname "$0")" && pwd)

# Host-specific files mmdebstrap copies in; the guest has no network anyway.
echo lockstep-vm > "$root/etc/hostname"
rm -f "$root/etc/resolv.conf"
install -m 0755 "$here/lockstep-vm-boot" "$root/usr/local/sbin/lockstep-vm-boot"
install -m 0644 "$here/lockstep-vm.service" "$root/etc/systemd/system/lockstep-vm.service"
# Units of sysinit.target the tests do not need and TCG makes slow; the
# guest boots into lockstep-vm.service, so nothing of multi-user runs.
for unit in systemd-pstore.service systemd-journal-flush.service \
  systemd-random-seed.service systemd-update-utmp.service ldconfig.service \
  systemd-hwdb-update.service systemd-machine-id-commit.service \
  systemd-firstboot.service systemd-binfmt.service; do
  ln -sfn /dev/null "$root/etc/systemd/system/$unit"
done

kernels=("$root"/boot/vmlinuz-*)
[ ${#kernels[@]} = 1 ] || { echo "customize.sh: expected one kernel in /boot, found ${#kernels[@]}" >&2; exit 1; }
version=${kernels[0]##*/vmlinuz-}
cp "${kernels[0]}" "$out/vmlinuz"

# The initramfs: busybox-static, /init, and the modules for the root disk
# (virtio-blk, ext4) and the shares (9p over virtio) in load order, as
# modprobe resolves them from the guest's own modules.dep.
ird=$(mktemp -d)
trap 'rm -rf "$ird"' EXIT
mkdir -p "$ird/bin" "$ird/lib/modules" "$ird/dev" "$ird/proc" "$ird/sys" "$ird/newroot"
cp "$root/bin/busybox" "$ird/bin/busybox"
install -m 0755 "$here/init" "$ird/init"
: > "$ird/lib/modules/modules.load"
for m in virtio_pci virtio_blk ext4 9pnet_virtio 9p overlay; do
  modprobe -d "$root" -S "$version" --show-depends "$m" | while read -r verb ko _; do
    [ "$verb" = insmod ] || continue
    name=${ko##*/}
    grep -qx "$name" "$ird/lib/modules/modules.load" && continue
    cp "$ko" "$ird/lib/modules/$name"
    echo "$name" >> "$ird/lib/modules/modules.load"
  done
done
find "$ird" -exec touch -h -d "@$epoch" {} +
(cd "$ird" && find . -mindepth 1 | LC_ALL=C sort | cpio --quiet --reproducible -o -H newc -R 0:0) \
  > "$out/initrd.cpio"

dpkg-query --admindir="$root/var/lib/dpkg" -W -f '${Package} ${Version}\n' | LC_ALL=C sort \
  > "$out/packages.txt"
echo "$version" > "$out/kernel-version"
