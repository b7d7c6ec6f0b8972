#!/usr/bin/env bash
# Builds a minimal glibc root filesystem into DIR from this host's Debian
# binaries: bash, dash as /bin/sh, a few coreutils, and every shared library
# they load (as ldd lists them) with the dynamic loader - an image with a
# libc and no node, for tests that run JavaScript actions in it.
set -euo pipefail
dir=${1:?usage: glibc-rootfs.sh DIR}
rm -rf "$dir"
mkdir -p "$dir"/{bin,usr/bin,lib,lib64,etc,tmp,root,dev,proc,sys,run}
chmod 1777 "$dir/tmp"
bins=(/bin/bash /bin/dash /bin/cat /bin/ls /bin/echo /bin/mkdir /bin/rm /bin/cp /usr/bin/env
      /usr/bin/test /usr/bin/id /usr/bin/stat)
copy() {  # host path -> same path in the rootfs, following symlinks
  local src=$1
  mkdir -p "$dir$(dirname "$src")"
  cp -L "$src" "$dir$src"
}
for b in "${bins[@]}"; do
  copy "$b"
  for lib in $(ldd "$b" | awk '/=> \//{print $3} /^[ \t]*\/lib/{print $1}'); do
    [ -e "$dir$lib" ] || copy "$lib"
  done
done
ln -sf dash "$dir/bin/sh"
cat > "$dir/etc/passwd" <<'PW'
root:x:0:0:root:/root:/bin/bash
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
PW
printf 'root:x:0:\nnogroup:x:65534:\n' > "$dir/etc/group"
