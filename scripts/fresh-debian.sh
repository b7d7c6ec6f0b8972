#!/usr/bin/env bash
# Runs COMMAND (default: ./scripts/quickstart.sh) as root in a fresh clone of
# this repository's HEAD inside a fresh Debian 12 system: a minimal root
# (mmdebstrap --variant=minbase, from Debian's packages only) in its own mount
# and pid namespaces, with the host's /sys and /dev so that containers work.
# This is how the quick start's times in the README are measured. The root is
# deleted afterwards; nothing of it stays mounted or running.
# Usage: scripts/fresh-debian.sh [--base FILE.tar] [COMMAND...]
#   --base FILE.tar  the minimal root as a tarball: made there if missing,
#                    reused if present (making it downloads ~40 MB)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
base=""
while [ $# -gt 0 ]; do
  case "$1" in
    --base) base=$2; shift ;;
    -h|--help) sed -n 2,11p "$0"; exit 0 ;;
    --) shift; break ;;
    *) break ;;
  esac
  shift
done
[ $# -gt 0 ] || set -- ./scripts/quickstart.sh

[ "$(id -u)" = 0 ] || { echo "fresh-debian.sh: error: run as root" >&2; exit 2; }
if ! command -v mmdebstrap >/dev/null; then
  echo "fresh-debian.sh: installing mmdebstrap"
  apt-get install -y -qq --no-install-recommends mmdebstrap >/dev/null
fi

sources=("deb http://deb.debian.org/debian bookworm main"
         "deb http://deb.debian.org/debian bookworm-updates main"
         "deb http://deb.debian.org/debian-security bookworm-security main")
work=$(mktemp -d /var/tmp/lockstep-fresh.XXXXXX)
trap 'rm -rf --one-file-system "$work"' EXIT
root=$work/root
if [ -n "$base" ]; then
  if [ ! -f "$base" ]; then
    echo "fresh-debian.sh: making $base"
    mmdebstrap --quiet --variant=minbase bookworm "$base" "${sources[@]}"
  fi
  mkdir "$root"
  tar -C "$root" -xf "$base"
else
  mmdebstrap --quiet --variant=minbase bookworm "$root" "${sources[@]}"
fi
# As in any chroot: packages must not start their services (nginx would
# listen on the host's port 80).
printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
chmod 755 "$root/usr/sbin/policy-rc.d"
cp /etc/resolv.conf "$root/etc/resolv.conf"
git clone -q --no-hardlinks "$here" "$root/root/lockstep"
echo "fresh-debian.sh: $(git -C "$root/root/lockstep" log -1 --format='%h %s') in a fresh Debian $(cat "$root/etc/debian_version")"

cmd=$(printf '%q ' "$@")
unshare --mount --pid --fork --propagation private bash -euc '
  root=$1 cmd=$2
  # The root a mount point of its own, as on a machine (containers make "/"
  # private, which needs a mount point).
  mount --bind "$root" "$root"
  mount --rbind /sys "$root/sys"
  mount --rbind /dev "$root/dev"
  mount -t proc proc "$root/proc"
  mount -t tmpfs tmpfs "$root/run"
  # A real root, not a chroot: pivot_root in a chroot moves the namespace'"'"'s
  # root (the host'"'"'s /), which breaks what containers started inside see.
  mkdir -p "$root/.oldroot"
  cd "$root"
  pivot_root . .oldroot
  /.oldroot/usr/bin/umount -l /.oldroot
  rmdir /.oldroot 2>/dev/null || true
  exec /usr/bin/env -i HOME=/root TERM="${TERM:-dumb}" \
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    bash -c "cd /root/lockstep && start=\$(date +%s) && $cmd; rc=\$?; echo \"fresh-debian.sh: exit \$rc after \$((\$(date +%s) - start)) s\"; exit \$rc"
' _ "$root" "$cmd"
