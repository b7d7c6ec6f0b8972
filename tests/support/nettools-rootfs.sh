#!/usr/bin/env bash
# Builds the root filesystem of the egress tests' job image into DIR: the
# busybox rootfs (scripts/busybox-rootfs.sh) plus this host's curl, wget and
# git (with git's helpers and the shared libraries all of them load), so that
# a job can fetch over HTTP, HTTPS and git's smart/dumb HTTP. Nothing is
# downloaded.
set -euo pipefail
dir=${1:?usage: nettools-rootfs.sh DIR}
here=$(cd "$(dirname "$0")/../.." && pwd)
for b in /usr/bin/curl /usr/bin/wget /usr/bin/git /usr/lib/git-core/git-remote-http; do
  [ -x "$b" ] || { echo "nettools-rootfs.sh: error: $b missing (apt-get install curl wget git)" >&2; exit 1; }
done
bash "$here/scripts/busybox-rootfs.sh" "$dir"
# Replaces whatever is at DIR/PATH (an applet symlink, never followed).
put() {
  local src=$1 dst=$dir$1
  mkdir -p "$(dirname "$dst")"
  rm -f "$dst"
  cp -L "$src" "$dst"
}
bins=(/usr/bin/curl /usr/bin/wget /usr/bin/git)
for b in "${bins[@]}"; do put "$b"; done
rm -rf "$dir/usr/lib/git-core"
mkdir -p "$dir/usr/lib" "$dir/usr/share"
cp -a /usr/lib/git-core "$dir/usr/lib/git-core"
cp -a /usr/share/git-core "$dir/usr/share/git-core"
# Every library the binaries and git's helpers load, and the loader.
{
  for b in "${bins[@]}" /usr/lib/git-core/git-remote-http; do ldd "$b"; done
} | awk '/=> \// {print $3} /^\s*\/lib/ {print $1}' | sort -u | while read -r lib; do
  put "$lib"
done
put /lib64/ld-linux-x86-64.so.2
printf 'passwd: files\ngroup: files\nhosts: files dns\n' > "$dir/etc/nsswitch.conf"
