#!/usr/bin/env bash
# Runs lockstep's cgroup v2 tests on a real cgroup v2 kernel: a Debian 12
# guest under QEMU (KVM when a probe boot succeeds, TCG otherwise), booted
# with systemd.unified_cgroup_hierarchy=1 cgroup_no_v1=all. The guest gets the
# source and build trees read-only over virtio-9p at the paths they have here,
# runs the executor's limit, cleanup and escape tests and `lockstep run
# examples/hello`, and writes its results back through a third share. Prints
# one line per check and closes with "cgroup2-vm: N passed, N failed".
#
# Usage: scripts/test-cgroup2-vm.sh [--build-dir DIR] [--suite quick|full]
#          [--bench RUNS] [--accel auto|kvm|tcg] [--init systemd|minimal]
#          [--logs DIR] [--only GTEST_FILTER]
#   --suite quick  (default) the limits, OOM, cleanup and escape tests, sized
#                  for CI under TCG; full: every executor integration test too
#   --bench RUNS   also bench/executor/run.sh on this host (cgroup v1) and in
#                  the guest (v2), ratios side by side
#   --logs DIR     keep the guest's console log and results in DIR
#   --only FILTER  run only the suite's tests that match (a --gtest_filter),
#                  none of the other checks
#
# The guest image is built once per set of package versions (see
# cgroup2-vm/image.sh) and kept in $LOCKSTEP_VM_CACHE (/var/cache/lockstep-vm):
# outside the source tree, so fresh clones and other build directories of
# the same host reuse it. Nothing else stays behind: the guest's writes go
# to a throwaway overlay, the run directory is removed, QEMU is killed on
# any exit. Needs root (mmdebstrap) and a build (scripts/setup.sh).
# Time limits (seconds): LOCKSTEP_VM_PROBE_TIMEOUT (KVM probe, 30),
# LOCKSTEP_VM_BOOT_TIMEOUT (to the guest's first line, 60 under KVM and 600
# under TCG), LOCKSTEP_VM_TIMEOUT (the whole guest run, 3600),
# LOCKSTEP_VM_TEST_TIMEOUT (each test binary or command in the guest, 1200;
# one that runs out leaves every process's state in its log).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
me=test-cgroup2-vm.sh
build=$here/build
suite=quick
bench_runs=0
accel=auto
init=systemd
logs=
only=
while [ $# -gt 0 ]; do
  case "$1" in
    --build-dir) build=$(cd "$2" && pwd); shift ;;
    --suite) suite=$2; shift ;;
    --bench) bench_runs=$2; shift ;;
    --accel) accel=$2; shift ;;
    --init) init=$2; shift ;;
    --logs) logs=$2; shift ;;
    --only) only=$2; shift ;;
    -h|--help) sed -n '2,/^set /{/^set /d;s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
    *) echo "$me: error: unknown option '$1'" >&2; exit 2 ;;
  esac
  shift
done
die() { echo "$me: error: $*" >&2; exit 1; }
case "$suite" in quick|full) ;; *) die "--suite must be quick or full, not '$suite'" ;; esac
case "$accel" in auto|kvm|tcg) ;; *) die "--accel must be auto, kvm or tcg, not '$accel'" ;; esac
case "$init" in systemd|minimal) ;; *) die "--init must be systemd or minimal, not '$init'" ;; esac
[[ "$bench_runs" =~ ^[0-9]+$ ]] || die "--bench takes a number of runs, not '$bench_runs'"
[ "$(id -u)" = 0 ] || die "run as root (mmdebstrap builds the guest image as root)"
for tool in qemu-system-x86_64:qemu-system-x86 mmdebstrap:mmdebstrap genext2fs:genext2fs \
  cpio:cpio modprobe:kmod mkfs.ext4:e2fsprogs; do
  command -v "${tool%%:*}" >/dev/null ||
    die "${tool%%:*} not found: QEMU cannot run the guest (scripts/setup.sh installs ${tool#*:})"
done
[ -x "$build/runner/lockstep" ] || die "no build in $build (run scripts/setup.sh first)"
case "$here$build$only" in *[[:space:],]*) die "the source and build paths and --only must not contain spaces or commas (they go on the guest's kernel command line)" ;; esac

probe_timeout=${LOCKSTEP_VM_PROBE_TIMEOUT:-30}
total_timeout=${LOCKSTEP_VM_TIMEOUT:-3600}
cache=${LOCKSTEP_VM_CACHE:-/var/cache/lockstep-vm}
memory_mb=2048
cpus=2

# --- the image ---------------------------------------------------------------
# What runs in the guest: the shared libraries of these binaries (as Debian
# packages) and the tools the tests and the benchmark drive (the confinement
# test compiles Podman's seccomp.json from golang-github-containers-common).
binaries=("$build/runner/lockstep")
for t in tests/integration/executor/executor_integration_test \
  tests/integration/executor-security/executor_security_{cgroup_v2,limits,escape,caps,confinement}_test \
  tests/unit/executor-security/executor_security_unit_test \
  tests/integration/run/run_integration_test tests/integration/rootless/rootless_delegated_test \
  bench/executor/bench_executor; do
  [ -x "$build/$t" ] && binaries+=("$build/$t")
done
# uidmap, dbus and libpam-systemd: the rootless tests run lockstep as an
# ordinary user under that user's systemd manager (user@UID.service needs the
# system bus for logind, and pam_systemd for its runtime directory).
packages=(systemd linux-image-amd64 kmod busybox-static procps python3 crun runc
  golang-github-containers-common uidmap dbus libpam-systemd)
libs=$(ldd "${binaries[@]}" 2>/dev/null | awk '/=> not found/ { print "missing:" $1 } / => \// { print $3 }' | sort -u)
case "$libs" in *missing:*) die "unresolved libraries: $(echo "$libs" | grep missing: | tr '\n' ' ')" ;; esac
for lib in $libs; do
  owner=
  for p in "$lib" "$(readlink -f "$lib")" "${lib#/usr}" "/usr${lib#/usr}"; do
    owner=$(dpkg -S "$p" 2>/dev/null | head -1 | cut -d: -f1) && [ -n "$owner" ] && break
  done
  [ -n "$owner" ] || die "no Debian package owns $lib, needed by the test binaries"
  packages+=("$owner")
done
mapfile -t packages < <(printf '%s\n' "${packages[@]}" | LC_ALL=C sort -u)
t0=$(date +%s)
image=$("$here/scripts/cgroup2-vm/image.sh" "$cache" "${packages[@]}") || die "no guest image"
echo "guest image: $image ($(wc -l < "$image/packages.txt") packages, kernel $(cat "$image/kernel-version"), ready in $(($(date +%s) - t0)) s)"

if [ "$bench_runs" -gt 0 ]; then
  # The guest has no compiler: the benchmark binary is built here.
  cmake --build "$build" --target bench_executor >/dev/null
  echo "host (cgroup v1) bench/executor/run.sh, $bench_runs runs:"
  host_bench=$("$here/bench/executor/run.sh" "$build" "$bench_runs" 2>&1) ||
    host_bench+=$'\n'"bench/executor/run.sh failed on the host"
  echo "$host_bench" | sed 's/^/  host: /'
fi

# --- the run -------------------------------------------------------------------
run=$(mktemp -d /tmp/lockstep-vm.XXXXXX)
results=$run/results
console=$run/console.log
qpid=
stop_qemu() {
  if [ -n "$qpid" ] && kill -0 "$qpid" 2>/dev/null; then
    kill -KILL "$qpid" 2>/dev/null || true
  fi
  [ -z "$qpid" ] || wait "$qpid" 2>/dev/null || true
  qpid=
}
cleanup() {
  stop_qemu
  if [ -n "$logs" ]; then
    mkdir -p "$logs" && cp -r "$console" "$results" "$logs/" 2>/dev/null || true
  fi
  rm -rf "$run"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The build tree needs a share of its own unless it lies in the source tree.
mount_build=1
case "$build/" in "$here"/*) mount_build=0 ;; esac
cmdline="console=ttyS0,115200 panic=-1 loglevel=5 systemd.unified_cgroup_hierarchy=1 cgroup_no_v1=all"
cmdline+=" systemd.unit=lockstep-vm.service systemd.show_status=auto lockstep.init=$init"
cmdline+=" lockstep.src=$here lockstep.build=$build lockstep.mount_build=$mount_build"
cmdline+=" lockstep.args=--suite=$suite,--bench=$bench_runs,--timeout=${LOCKSTEP_VM_TEST_TIMEOUT:-1200}"
cmdline+="${only:+,--only=$only}"

# Starts QEMU in the background with a fresh console log and results dir.
start_qemu() {
  local accel=$1 append=$2 cpu=max
  [ "$accel" = kvm ] && cpu=${LOCKSTEP_VM_KVM_CPU:-host}
  rm -rf "$results"
  mkdir -p "$results"
  : > "$console"
  local shares=(-virtfs "local,path=$here,mount_tag=src,security_model=none,readonly=on")
  [ "$mount_build" = 1 ] &&
    shares+=(-virtfs "local,path=$build,mount_tag=build,security_model=none,readonly=on")
  shares+=(-virtfs "local,path=$results,mount_tag=results,security_model=none")
  # The guest's /tmp: ext4 on a disk, as on the host (tmpfs before Linux 6.3
  # refuses the idmapped mounts of user-namespaced containers). Sparse, and
  # gone with the run directory.
  rm -f "$run/tmp.img"
  truncate -s 8G "$run/tmp.img"
  mkfs.ext4 -q -F -E root_owner=0:0 "$run/tmp.img"
  # TMPDIR: where snapshot=on keeps the guest's writes (unlinked at once).
  TMPDIR=$run qemu-system-x86_64 -name lockstep-vm -machine pc -accel "$accel" -cpu "$cpu" \
    -smp "$cpus" -m "$memory_mb" -nodefaults -no-user-config -display none -no-reboot \
    -serial "file:$console" -kernel "$image/vmlinuz" -initrd "$image/initrd.cpio" \
    -append "$append" -drive "file=$image/root.ext2,format=raw,if=virtio,snapshot=on" \
    -drive "file=$run/tmp.img,format=raw,if=virtio" \
    "${shares[@]}" > "$run/qemu.log" 2>&1 &
  qpid=$!
}

# Waits until the console shows `pattern`, echoing the guest's progress
# lines. 0: seen; 1: not within `limit` seconds; 2: QEMU exited first.
# Callers send its stderr to /dev/null: that is where bash reports a QEMU
# that died of a signal (an abort under KVM), which the caller reports itself.
shown=0
wait_for() {
  local pattern=$1 limit=$2 start=$SECONDS total
  while :; do
    total=$(wc -l < "$console")
    if [ "$total" -gt "$shown" ]; then
      sed -n "$((shown + 1)),${total}p" "$console" | tr -d '\r' |
        grep -a '^lockstep-vm: ' | sed 's/^lockstep-vm: /  guest: /' || true
      shown=$total
    fi
    grep -aq "$pattern" "$console" && return 0
    kill -0 "$qpid" 2>/dev/null || return 2
    [ $((SECONDS - start)) -lt "$limit" ] || return 1
    sleep 0.5
  done
}

console_tail() {
  echo "--- the guest's console, last 40 lines ---" >&2
  if [ -s "$console" ]; then
    tr -d '\r' < "$console" | tail -40 >&2
  else
    echo "(empty: the guest printed nothing)" >&2
  fi
  [ -s "$run/qemu.log" ] && { echo "--- qemu ---" >&2; tail -5 "$run/qemu.log" >&2; }
  echo "---" >&2
}

# Boots once under `accel` and runs the tests. Returns 0 when the guest
# finished (whatever the tests said), 1 when it did not come up in time
# (killed), 2 on any later failure (killed, console shown).
boot_and_test() {
  local accel=$1 limit=$2 started=$SECONDS rc=0
  shown=0
  start_qemu "$accel" "$cmdline"
  wait_for 'lockstep-vm: guest up' "$limit" 2>/dev/null || rc=$?
  if [ "$rc" != 0 ]; then
    if [ "$rc" = 1 ]; then
      echo "the guest did not come up under $accel in $limit s: killed"
    else
      echo "QEMU under $accel exited before the guest came up: $(tail -1 "$run/qemu.log" 2>/dev/null)"
    fi
    stop_qemu
    return 1
  fi
  echo "guest up under $accel after $((SECONDS - started)) s"
  rc=0
  wait_for 'lockstep-vm: done' "$total_timeout" 2>/dev/null || rc=$?
  if [ "$rc" != 0 ]; then
    [ "$rc" = 1 ] && echo "the guest did not finish in $total_timeout s: killed" >&2
    [ "$rc" = 2 ] && echo "the guest stopped before it finished" >&2
    stop_qemu
    console_tail
    return 2
  fi
  # It powers itself off; a guest that does not is killed.
  local i
  for i in $(seq 60); do kill -0 "$qpid" 2>/dev/null || break; sleep 0.5; done 2>/dev/null
  stop_qemu
  echo "guest finished under $accel after $((SECONDS - started)) s"
}

if [ "$accel" = auto ]; then
  accel=tcg
  if [ -r /dev/kvm ] && [ -w /dev/kvm ]; then
    # A short boot to the initramfs: KVM that cannot run this guest hangs
    # or fails here, not in the middle of the tests.
    shown=0
    start_qemu kvm "console=ttyS0,115200 panic=-1 loglevel=4 lockstep.probe=1"
    rc=0
    wait_for 'lockstep-vm: probe:' "$probe_timeout" 2>/dev/null || rc=$?
    stop_qemu
    case "$rc" in
      0) accel=kvm ;;
      1) echo "KVM probe: no boot in $probe_timeout s, killed; using TCG" ;;
      *) echo "KVM probe: QEMU exited: $(tail -1 "$run/qemu.log"); using TCG" ;;
    esac
  else
    echo "no usable /dev/kvm; using TCG"
  fi
fi
if [ "$accel" = kvm ]; then
  rc=0
  boot_and_test kvm "${LOCKSTEP_VM_BOOT_TIMEOUT:-60}" || rc=$?
  if [ "$rc" = 1 ]; then
    echo "retrying under TCG"
    accel=tcg
  elif [ "$rc" != 0 ]; then
    exit 1
  fi
fi
if [ "$accel" = tcg ]; then
  rc=0
  boot_and_test tcg "${LOCKSTEP_VM_BOOT_TIMEOUT:-600}" || rc=$?
  if [ "$rc" = 1 ]; then
    console_tail
    die "the guest did not boot under TCG either"
  fi
  [ "$rc" = 0 ] || exit 1
fi

# --- the results ---------------------------------------------------------------
[ -f "$results/info.txt" ] && sed 's/^/guest /' "$results/info.txt"
passed=0
failed=0
while IFS= read -r line; do
  case "$line" in
    PASS\ *) passed=$((passed + 1)); echo "  ok    ${line#PASS }" ;;
    *) failed=$((failed + 1)); echo "  FAIL  ${line#* }" ;;
  esac
done < <(cat "$results/results.txt" 2>/dev/null)
if [ ! -f "$results/exit-status" ]; then
  failed=$((failed + 1))
  echo "  FAIL  the guest's test script did not finish"
  console_tail
elif [ "$(cat "$results/exit-status")" != 0 ] && [ "$failed" = 0 ]; then
  failed=$((failed + 1))
  echo "  FAIL  the guest's test script exited $(cat "$results/exit-status")"
fi
if [ "$failed" -gt 0 ]; then
  for f in "$results"/logs/*.log; do
    grep -q 'FAILED\|Failure\|error' "$f" 2>/dev/null || continue
    echo "--- $(basename "$f"): failures ---"
    grep -a -B2 -A12 '^\[  FAILED  \].*ms)$\|Failure$\|error:' "$f" | head -80
  done
fi
if [ "$bench_runs" -gt 0 ]; then
  echo "guest (cgroup v2, $accel) bench/executor/run.sh, $bench_runs runs:"
  sed 's/^/  guest: /' "$results/bench.txt" 2>/dev/null || echo "  guest: no output"
  # Under TCG only ratios mean anything: everything in the guest is slower.
  echo "lockstep start-to-exit ratios, host cgroup v1 | guest cgroup v2 ($accel):"
  for peer in crun runc; do
    echo "  $peer: $(echo "$host_bench" | grep -o "ratio to $peer: .*" | cut -d: -f2-) |" \
      "$(grep -o "ratio to $peer: .*" "$results/bench.txt" 2>/dev/null | cut -d: -f2-)"
  done
fi
echo "cgroup2-vm: $passed passed, $failed failed"
[ "$failed" = 0 ]
