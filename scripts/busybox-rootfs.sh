#!/usr/bin/env bash
# Builds a minimal root filesystem from Debian's busybox-static into DIR:
# /bin/busybox, one symlink per applet, /etc/passwd and /etc/group, and the
# usual empty directories. Deterministic: the same busybox gives the same tree.
set -euo pipefail
dir=${1:?usage: busybox-rootfs.sh DIR}
bb=/bin/busybox
[ -x "$bb" ] || { echo "busybox-rootfs.sh: error: $bb missing (apt-get install busybox-static)" >&2; exit 1; }
rm -rf "$dir"
mkdir -p "$dir"/{bin,sbin,usr/bin,usr/sbin,etc,tmp,root,home,dev,proc,sys,var,run,workspace}
chmod 1777 "$dir/tmp"
cp "$bb" "$dir/bin/busybox"
for applet in $("$bb" --list-full); do
  case "$applet" in bin/busybox) continue ;; esac
  target="$dir/$applet"
  [ -e "$target" ] || ln -s /bin/busybox "$target"
done
cat > "$dir/etc/passwd" <<'PW'
root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
builder:x:1000:1000:builder:/home/builder:/bin/sh
PW
cat > "$dir/etc/group" <<'GR'
root:x:0:
daemon:x:1:
users:x:100:builder
nogroup:x:65534:
builder:x:1000:
GR
mkdir -p "$dir/home/builder"
echo "lockstep" > "$dir/etc/hostname"
