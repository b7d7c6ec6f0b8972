#!/usr/bin/env bash
# Installs the Debian packages lockstep needs (not the test suite's), builds
# lockstep alone (not the tests), imports the example image and runs
# examples/hello end to end. Prints how long each phase took.
# scripts/test.sh later installs the rest and builds the tests in the same
# build directory, reusing what this built.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
duration() { printf '%dm%02ds' $(($1 / 60)) $(($1 % 60)); }

t0=$SECONDS
"$here/scripts/setup.sh" --lockstep-only --no-build
t1=$SECONDS
"$here/scripts/setup.sh" --lockstep-only --no-packages
t2=$SECONDS

lockstep="$here/build/runner/lockstep"
rootfs=$(mktemp -d /tmp/lockstep-busybox.XXXXXX)
trap 'rm -rf "$rootfs"' EXIT
"$here/scripts/busybox-rootfs.sh" "$rootfs"
"$lockstep" image import "$rootfs" --tag localhost/busybox:1.35
"$lockstep" run "$here/examples/hello/ci.yml"
t3=$SECONDS

echo "quickstart: packages $(duration $((t1 - t0))), build $(duration $((t2 - t1))), example $(duration $((t3 - t2))); total $(duration $((t3 - t0)))"
