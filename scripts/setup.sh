#!/usr/bin/env bash
# Installs Debian packages and builds. By default: every build and test
# dependency, then everything (libraries, lockstep, tests). With --lockstep-only:
# only what building and running lockstep needs, then only lockstep (no tests).
# Idempotent: a second run installs nothing new and rebuilds incrementally.
# Prints how long each phase took.
# Usage: scripts/setup.sh [--lockstep-only] [--no-packages] [--no-build]
#                         [--build-dir DIR] [--build-type TYPE]
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
build_dir="$here/build"
build_type=RelWithDebInfo
do_build=1
do_packages=1
lockstep_only=0
while [ $# -gt 0 ]; do
  case "$1" in
    --lockstep-only) lockstep_only=1 ;;
    --no-packages) do_packages=0 ;;
    --no-build) do_build=0 ;;
    --build-dir) build_dir=$2; shift ;;
    --build-type) build_type=$2; shift ;;
    -h|--help) sed -n 2,8p "$0"; exit 0 ;;
    *) echo "setup.sh: error: unknown option '$1'" >&2; exit 2 ;;
  esac
  shift
done

# "1m05s" for a number of seconds.
duration() { printf '%dm%02ds' $(($1 / 60)) $(($1 % 60)); }

# What building lockstep needs.
build_packages=(
  # toolchain (g++ and make, not build-essential: dpkg-dev is only for packaging)
  g++ make cmake ninja-build pkg-config
  # libraries
  libboost-dev libgit2-dev libyaml-cpp-dev libseccomp-dev nlohmann-json3-dev
  libspdlog-dev libfmt-dev libarchive-dev libssl-dev libsqlite3-dev libexpected-dev
  libcurl4-openssl-dev libzstd-dev zlib1g-dev libcap-dev
  # the egress network: NAT and isolation rules through libnftables, nft(8) to inspect them
  nftables libnftables-dev
  # lockstep server: PostgreSQL's client library
  libpq-dev
)
# What running the quick-start example needs beyond that: busybox-static for
# its image (scripts/busybox-rootfs.sh), CA certificates for pulls over HTTPS.
# uidmap: newuidmap/newgidmap map an ordinary user's /etc/subuid and
# /etc/subgid ranges into the user namespace of rootless runs; slirp4netns is
# the way out of the egress network of rootless runs (docs/rootless.md).
example_packages=(busybox-static ca-certificates uidmap slirp4netns)
# The test suite, the benchmarks and packaging, on top of both lists above.
test_packages=(
  # lockstep server without --db starts its own PostgreSQL 15 (initdb,
  # pg_ctl); its tests start one in a temp dir (docs/server.md)
  postgresql
  # formatting checks, git repositories made by the tests, the tests themselves
  clang-format git libgtest-dev libgmock-dev
  # runtime tools the tests and benchmarks drive
  iproute2 util-linux procps psmisc docker-registry nginx-light
  skopeo umoci crun runc hyperfine python3 tar gzip zstd bc
  # the compiler image (scripts/compiler-image.sh) and artifact comparison
  build-essential gcc-12 clang-14 clang libc6-dev binutils diffoscope-minimal
  # verify: directory entries in another order (a FUSE view of the workspace)
  disorderfs fuse
  # report tests: schema validation of provenance, headless rendering of HTML
  python3-jsonschema chromium
  # JavaScript actions: the host's node, bundled with its libraries for jobs;
  # Docker actions built from their Dockerfile
  nodejs patchelf buildah
  # the egress tests: the job image's curl, wget and git (tests/support/
  # nettools-rootfs.sh), the test internet's CA (openssl)
  curl wget openssl
  # the package test: dpkg-shlibdeps (dpkg-dev, from build-essential) computes
  # the .deb's dependencies; `man -w lockstep` finds the installed man page
  dpkg-dev man-db
  # scripts/test-cgroup2-vm.sh: a Debian 12 guest with a pure cgroup v2 kernel
  # (image by mmdebstrap into ext2 via genext2fs, an initramfs by cpio from
  # modules that kmod's modprobe resolves, booted by QEMU)
  qemu-system-x86 mmdebstrap genext2fs cpio kmod
  # the compatibility suite prints a unified diff when a transcript differs
  diffutils
  # bench/rootless: rootless `podman run` as the peer of rootless lockstep
  # (podman's rootless setup wants slirp4netns even for --network=none)
  podman slirp4netns
  # scripts/fuzz.sh: libFuzzer and the ASan/UBSan runtimes for clang-14
  libclang-rt-14-dev
)

packages=("${build_packages[@]}" "${example_packages[@]}")
[ "$lockstep_only" = 1 ] || packages+=("${test_packages[@]}")

if [ "$do_packages" = 1 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "setup.sh: error: run as root (it installs Debian packages with apt-get)" >&2
    exit 2
  fi
  start=$SECONDS
  missing=()
  for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  # npm installs what the tests' JavaScript actions depend on. Debian ships it
  # as its own package; some nodejs builds include it (and conflict with it).
  [ "$lockstep_only" = 1 ] || command -v npm >/dev/null 2>&1 || missing+=(npm)
  if [ ${#missing[@]} -gt 0 ]; then
    echo "setup.sh: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    # Debian enables these services on install; lockstep's tests start their own
    # instances on loopback ports of their choosing.
    for s in docker-registry nginx; do
      case " ${missing[*]} " in *" $s "* | *" $s-light "*) ;; *) continue ;; esac
      systemctl disable --now "$s" >/dev/null 2>&1 || service "$s" stop >/dev/null 2>&1 || true
    done
  fi
  # The tests' JavaScript actions use @actions/core, installed from the npm
  # registry at the versions tests/support/npm/package-lock.json pins.
  npm_dir="$build_dir/npm"
  if [ "$lockstep_only" = 0 ] &&
     { [ ! -f "$npm_dir/node_modules/@actions/core/package.json" ] ||
       ! cmp -s "$here/tests/support/npm/package-lock.json" "$npm_dir/package-lock.json"; }; then
    mkdir -p "$npm_dir"
    cp "$here/tests/support/npm/package.json" "$here/tests/support/npm/package-lock.json" "$npm_dir/"
    (cd "$npm_dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
  fi
  echo "setup.sh: packages: $(duration $((SECONDS - start))) (${#missing[@]} of ${#packages[@]} to install)"
fi

if [ "$do_build" = 1 ]; then
  start=$SECONDS
  # Warnings are errors here: this script is what developers and CI build with.
  werror=${LOCKSTEP_WERROR:-ON}
  tests=ON
  [ "$lockstep_only" = 1 ] && tests=OFF
  cmake -S "$here" -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE="$build_type" \
    -DLOCKSTEP_WERROR="$werror" -DLOCKSTEP_BUILD_TESTS="$tests" >/dev/null
  cmake --build "$build_dir"
  echo "setup.sh: build: $(duration $((SECONDS - start)))"
fi
