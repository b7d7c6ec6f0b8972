#!/usr/bin/env bash
# Sets up (Debian packages), builds, imports the example image and runs
# examples/hello end to end.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
"$here/scripts/setup.sh"
lockstep="$here/build/runner/lockstep"
rootfs=$(mktemp -d /tmp/lockstep-busybox.XXXXXX)
trap 'rm -rf "$rootfs"' EXIT
"$here/scripts/busybox-rootfs.sh" "$rootfs"
"$lockstep" image import "$rootfs" --tag localhost/busybox:1.35
"$lockstep" run "$here/examples/hello/ci.yml"
