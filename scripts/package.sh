#!/usr/bin/env bash
# Builds lockstep's Debian package (CPack) from the checked-out commit,
# reproducibly: SOURCE_DATE_EPOCH is the last commit's time, the source and
# build paths are mapped out of the binary, and every packaged file gets that
# time, so two builds of one commit give the same bytes. Builds lockstep alone
# (not the tests) and prints the package's path and sha256.
# Needs the packages of `scripts/setup.sh --lockstep-only --no-build` and
# dpkg-dev (dpkg-shlibdeps computes the package's dependencies).
# Usage: scripts/package.sh [--build-dir DIR] [--out DIR]
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
build_dir="$here/build-package"
out_dir=""
while [ $# -gt 0 ]; do
  case "$1" in
    --build-dir) build_dir=$2; shift ;;
    --out) out_dir=$2; shift ;;
    -h|--help) sed -n 2,9p "$0"; exit 0 ;;
    *) echo "package.sh: error: unknown option '$1'" >&2; exit 2 ;;
  esac
  shift
done
out_dir=${out_dir:-$build_dir}

command -v dpkg-shlibdeps >/dev/null ||
  { echo "package.sh: error: dpkg-shlibdeps missing (apt-get install dpkg-dev)" >&2; exit 2; }
git -C "$here" rev-parse --git-dir >/dev/null 2>&1 ||
  { echo "package.sh: error: $here is not a git checkout (the package's date is its last commit's)" >&2; exit 2; }

export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git -C "$here" log -1 --format=%ct)}
export LC_ALL=C TZ=UTC
umask 022
mkdir -p "$build_dir" "$out_dir"
build_dir=$(cd "$build_dir" && pwd)
out_dir=$(cd "$out_dir" && pwd)

# The flags of the tested build (RelWithDebInfo: -O2); the package's binary is
# stripped. The prefix maps keep this checkout's and build's paths out of it.
map="-ffile-prefix-map=$here/=. -ffile-prefix-map=$build_dir/=."
cmake -S "$here" -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DLOCKSTEP_BUILD_TESTS=OFF -DCMAKE_C_FLAGS="$map" -DCMAKE_CXX_FLAGS="$map" >/dev/null
cmake --build "$build_dir"
log=$(cpack --config "$build_dir/CPackConfig.cmake" -B "$out_dir" 2>&1) || { echo "$log" >&2; exit 1; }
rm -rf "$out_dir/_CPack_Packages"
deb=$(printf '%s\n' "$log" | sed -n 's/^CPack: - package: \(.*\) generated\.$/\1/p')
[ -f "$deb" ] || { echo "$log" >&2; echo "package.sh: error: cpack named no package" >&2; exit 1; }
echo "package.sh: $deb (SOURCE_DATE_EPOCH=$SOURCE_DATE_EPOCH)"
sha256sum "$deb" | cut -d' ' -f1
