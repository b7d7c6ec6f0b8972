#!/usr/bin/env bash
# Finds or builds the guest image of scripts/test-cgroup2-vm.sh and prints its
# directory: root.ext2 (the root file system), vmlinuz and initrd.cpio (direct
# kernel boot), packages.txt (what is in it).
#
# Usage: image.sh CACHE_DIR PACKAGE...
#
# The image is Debian 12 from Debian's packages only (mmdebstrap, variant
# essential, plus PACKAGE... and their dependencies). It is keyed by the
# versions apt resolves for that package set from this host's package lists
# (no network needed to find the key) and by the files of this folder; an
# image of the same key is reused, a new key builds a new image. The build
# uses the same package lists (copied in, no 'apt-get update'), so the key
# names what is inside, and SOURCE_DATE_EPOCH makes the result the same bytes
# for the same versions. Building takes minutes and downloads ~150 MB of
# packages; it happens once per key. Keys not used for 14 days are removed.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache=${1:?usage: image.sh CACHE_DIR PACKAGE...}
shift
[ $# -gt 0 ] || { echo "image.sh: error: no packages given" >&2; exit 2; }
sources=${LOCKSTEP_VM_SOURCES:-/etc/apt/sources.list.d/debian.sources}
[ -f "$sources" ] || sources=/etc/apt/sources.list
[ -f "$sources" ] || { echo "image.sh: error: no apt sources (set LOCKSTEP_VM_SOURCES to a .sources or .list file of Debian 12)" >&2; exit 1; }
# Fixed, so that the same versions give the same bytes on any host.
export SOURCE_DATE_EPOCH=1700000000

mkdir -p "$cache"
exec 9> "$cache/.lock"
flock 9

# Every version the image would hold, resolved offline from the host's lists
# as a fresh system without recommends: Essential:yes plus the packages.
resolve() {
  apt-get -s -q -o Dir::State::status=/dev/null -o Dir::Cache="$cache/.apt" \
    -o Dir::Etc::SourceList="$sources" -o Dir::Etc::SourceParts=/nonexistent \
    -o APT::Install-Recommends=false -o Debug::NoLocking=1 \
    install '?essential' "$@" 2>&1
}
mkdir -p "$cache/.apt"
if ! plan=$(resolve "$@"); then
  # Lists never fetched, or too old to hold these packages: fetch once.
  apt-get update -qq >/dev/null
  plan=$(resolve "$@") || { echo "image.sh: error: apt cannot resolve the guest's packages:" >&2; echo "$plan" | tail -5 >&2; exit 1; }
fi
versions=$(echo "$plan" | awk '/^Inst /{ v = $3; gsub(/[()]/, "", v); print $2, v }' | LC_ALL=C sort)
key=$( { printf '%s\n' "$@" | LC_ALL=C sort; echo "$versions"
         cat "$here/image.sh" "$here/customize.sh" "$here/init" "$here/lockstep-vm-boot" \
             "$here/lockstep-vm.service"; } | sha256sum | cut -c1-16)
dir="$cache/$key"

if [ ! -f "$dir/root.ext2" ]; then
  echo "image.sh: building guest image $key ($(echo "$versions" | wc -l) packages) in $cache" >&2
  tmp=$(mktemp -d "$cache/.build.XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  includes=$(IFS=,; echo "$*")
  build() {
    LOCKSTEP_VM_OUT=$tmp TMPDIR=$tmp mmdebstrap --variant=essential --format=ext2 \
      --skip=update \
      --setup-hook='mkdir -p "$1/var/lib/apt/lists"' \
      --setup-hook='cp /var/lib/apt/lists/*_InRelease /var/lib/apt/lists/*_Packages* "$1/var/lib/apt/lists/"' \
      --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
      --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-exclude=/usr/share/info/*' \
      --dpkgopt='path-exclude=/etc/kernel/postinst.d/initramfs-tools' \
      --dpkgopt='path-exclude=/lib/modules/*/kernel/sound/*' \
      --dpkgopt='path-exclude=/lib/modules/*/kernel/drivers/gpu/*' \
      --dpkgopt='path-exclude=/lib/modules/*/kernel/drivers/media/*' \
      --dpkgopt='path-exclude=/lib/modules/*/kernel/drivers/net/wireless/*' \
      --dpkgopt='path-exclude=/lib/modules/*/kernel/drivers/net/ethernet/*' \
      --dpkgopt='path-exclude=/lib/modules/*/kernel/drivers/infiniband/*' \
      --dpkgopt='path-exclude=/lib/modules/*/kernel/drivers/staging/*' \
      --dpkgopt='path-exclude=/lib/modules/*/kernel/drivers/iio/*' \
      --dpkgopt='path-exclude=/lib/modules/*/kernel/drivers/usb/*' \
      --dpkgopt='path-exclude=/lib/modules/*/kernel/drivers/scsi/*' \
      --dpkgopt='path-exclude=/lib/modules/*/kernel/net/wireless/*' \
      --dpkgopt='path-exclude=/lib/modules/*/kernel/net/mac80211/*' \
      --dpkgopt='path-exclude=/lib/modules/*/kernel/net/bluetooth/*' \
      --dpkgopt='path-exclude=/usr/lib/cni/*' \
      --include="$includes" \
      --customize-hook="$here/customize.sh" \
      bookworm "$tmp/root.ext2" "$sources" > "$tmp/mmdebstrap.log" 2>&1
  }
  if ! build; then
    # A version in the host's lists can leave the mirror once it is
    # superseded: the lists are stale, and the key with them. Fetch new
    # lists once and start over with the key they give.
    if grep -q ' 404 ' "$tmp/mmdebstrap.log" && [ -z "${LOCKSTEP_VM_LISTS_UPDATED:-}" ]; then
      echo "image.sh: a package is gone from the mirror; updating the package lists" >&2
      rm -rf "$tmp"
      apt-get update -qq >/dev/null
      flock -u 9
      LOCKSTEP_VM_LISTS_UPDATED=1 exec "$0" "$cache" "$@"
    fi
    echo "image.sh: error: mmdebstrap failed; the end of its log:" >&2
    tail -20 "$tmp/mmdebstrap.log" >&2
    exit 1
  fi
  rm -f "$tmp/mmdebstrap.log"
  find "$tmp" -mindepth 1 -maxdepth 1 -type d -exec rm -rf {} +  # mmdebstrap's scratch
  echo "$versions" > "$tmp/resolved.txt"
  chmod 0755 "$tmp"
  mv -T "$tmp" "$dir"
  trap - EXIT
fi
touch "$dir/last-used"
find "$cache" -mindepth 2 -maxdepth 2 -name last-used -mtime +14 -printf '%h\n' | while read -r old; do
  [ "$old" = "$dir" ] || rm -rf "$old"
done
echo "$dir"
