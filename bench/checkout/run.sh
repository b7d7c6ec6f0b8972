#!/bin/sh
# Runs the checkout benchmark on tmpfs (the software) and on the temp dir's
# filesystem (the disk). Usage: bench/checkout/run.sh BUILD_DIR
set -eu
build=${1:?usage: bench/checkout/run.sh BUILD_DIR}
cmake --build "$build" --target bench_checkout >/dev/null
"$build/bench/checkout/bench_checkout" --runs 7 --dir /dev/shm
"$build/bench/checkout/bench_checkout" --runs 5
