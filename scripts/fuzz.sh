#!/usr/bin/env bash
# Fuzzes one reader of outside input with libFuzzer:
#
#   scripts/fuzz.sh TARGET SECONDS [libFuzzer options...]
#   scripts/fuzz.sh all SECONDS [libFuzzer options...]   # each target in turn
#   scripts/fuzz.sh            # lists the targets
#
# Builds with clang (-fsanitize=fuzzer,address,undefined) into build-fuzz/
# (LOCKSTEP_FUZZ_BUILD overrides), starts from the checked-in seed corpus
# tests/fuzz/corpus/TARGET and keeps what it finds new in
# build-fuzz/fuzz/corpus/TARGET, so the checked-in corpus only changes when
# someone copies an input there (every input that found a bug belongs there:
# fuzz_corpus.TARGET then runs it as a test). A crashing input is written to
# build-fuzz/fuzz/artifacts/TARGET/ and the script exits non-zero.
# Needs clang and libclang-rt-14-dev (scripts/setup.sh installs them).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
corpus_src="$here/tests/fuzz/corpus"

targets() {
  find "$here/tests/fuzz" -maxdepth 1 -name '*_fuzz.cpp' -printf '%f\n' | sed 's/_fuzz\.cpp$//' |
    sort
}

if [[ $# -lt 2 ]]; then
  echo "usage: scripts/fuzz.sh TARGET|all SECONDS [libFuzzer options...]" >&2
  echo "targets: $(targets | tr '\n' ' ')" >&2
  exit 2
fi
target=$1
seconds=$2
shift 2
if [[ $target != all ]] && ! targets | grep -qx "$target"; then
  echo "fuzz.sh: no target '$target' (targets: $(targets | tr '\n' ' '))" >&2
  exit 2
fi
if ! [[ $seconds =~ ^[0-9]+$ ]] || [[ $seconds -eq 0 ]]; then
  echo "fuzz.sh: SECONDS must be a positive number, got '$seconds'" >&2
  exit 2
fi
for tool in clang clang++ cmake ninja; do
  command -v "$tool" >/dev/null || {
    echo "fuzz.sh: $tool is missing (scripts/setup.sh installs it)" >&2
    exit 2
  }
done

build=${LOCKSTEP_FUZZ_BUILD:-$here/build-fuzz}
launcher=()
if command -v ccache >/dev/null; then
  launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)
fi
# File by file (no batches): the instrumented build is compiled by clang,
# which the batched units are not checked with.
if [[ ! -f $build/CMakeCache.txt ]]; then
  cmake -S "$here" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ -DLOCKSTEP_FUZZ=ON \
    -DLOCKSTEP_UNITY_BUILD=OFF -DLOCKSTEP_TEST_FOLDERS=fuzz "${launcher[@]}" >/dev/null
fi
if [[ $target == all ]]; then
  mapfile -t chosen < <(targets)
else
  chosen=("$target")
fi
cmake --build "$build" --target "${chosen[@]/#/fuzz_}"

scratch="$build/fuzz/tmp"
mkdir -p "$scratch"
# The layer target unpacks into temp dirs: keep them out of /tmp.
export TMPDIR="$scratch"
failed=()
for t in "${chosen[@]}"; do
  work="$build/fuzz/corpus/$t"
  artifacts="$build/fuzz/artifacts/$t"
  mkdir -p "$work" "$artifacts"
  echo "fuzz.sh: fuzzing $t for ${seconds}s (new inputs: $work, crashes: $artifacts)" >&2
  "$build/tests/fuzz/fuzz_$t" -max_total_time="$seconds" -print_final_stats=1 \
    -artifact_prefix="$artifacts/" -rss_limit_mb=2048 -timeout=10 "$@" \
    "$work" "$corpus_src/$t" || failed+=("$t")
done
if [[ ${#failed[@]} -gt 0 ]]; then
  echo "fuzz.sh: found a problem in: ${failed[*]} (inputs in $build/fuzz/artifacts/)" >&2
  exit 1
fi
