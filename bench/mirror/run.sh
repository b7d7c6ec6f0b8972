#!/bin/sh
# Pull-through mirror vs docker-registry proxy mode vs nginx sendfile ceiling.
#   bench/mirror/run.sh [BUILD_DIR] [--layers N --layer-mib M --clients C --rounds R]
#                       [--threads T --turns K --client raw|curl]
set -e
build=${1:-build}
[ $# -gt 0 ] && shift
cmake --build "$build" --target bench_mirror
exec "$build/bench/mirror/bench_mirror" "$@"
