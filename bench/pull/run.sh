#!/bin/sh
# Cold pull + unpack of a ~200 MB image from a loopback docker-registry:
# lockstep against skopeo copy + umoci unpack (Debian packages), same run.
#   bench/pull/run.sh [BUILD_DIR] [--layers N --layer-mib M --runs R]
set -e
build=${1:-build}
[ $# -gt 0 ] && shift
cmake --build "$build" --target bench_pull
exec "$build/bench/pull/bench_pull" "$@"
