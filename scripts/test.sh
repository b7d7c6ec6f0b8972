#!/usr/bin/env bash
# Sets up (Debian packages), builds with warnings as errors, and runs the whole
# test suite: unit tests and integration tests with real containers and
# registries; then the container tests that depend on cgroups again in a QEMU
# guest with a pure cgroup v2 kernel (scripts/test-cgroup2-vm.sh; 4-10 minutes
# with its image cached, 5-8 more to build the image on a new machine;
# LOCKSTEP_TEST_VM=0 leaves it out). Exits non-zero when anything fails.
# Arguments go to ctest.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
"$here/scripts/setup.sh" --build-dir "$here/build"
cd "$here/build"
rc=0
ctest --output-on-failure --timeout 600 -j 2 "$@" || rc=$?
if [ "${LOCKSTEP_TEST_VM:-1}" != 0 ]; then
  "$here/scripts/test-cgroup2-vm.sh" || rc=$?
fi
exit "$rc"
