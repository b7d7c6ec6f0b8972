#!/usr/bin/env bash
# Sets up (Debian packages), builds with warnings as errors, and runs the whole
# test suite: unit tests and integration tests with real containers and
# registries. Exits non-zero when anything fails.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
"$here/scripts/setup.sh" --build-dir "$here/build"
cd "$here/build"
ctest --output-on-failure --timeout 600 -j 2 "$@"
