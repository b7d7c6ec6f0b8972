#!/bin/sh
# Builds and runs the unpack benchmark (as root: layers keep their ownership).
# Usage: bench/unpack/run.sh [BUILD_DIR] [-- bench args: --mb N --layers N --runs N]
set -eu
here=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$here/build}
cmake --build "$build" --target bench_unpack >/dev/null
shift 2>/dev/null || true
[ "${1:-}" = "--" ] && shift
exec "$build/bench/unpack/bench_unpack" "$@"
