#!/usr/bin/env bash
# Builds the compiler image localhost/cc:debian12 (gcc-12, clang-14, libc6-dev,
# make, binutils, coreutils, bash) from the Debian packages installed on this
# host, with no download: the root filesystem is the files of those packages
# and their dependency closure (Depends and Pre-Depends, an alternative by the
# first installed choice, virtual packages by their installed provider), plus a
# minimal /etc. Documentation, man pages and translations are left out.
#
# Deterministic: the same installed package versions give the same tree, the
# same tar bytes and the same image digest on every call (the import
# normalises owners, times and order).
#
# Usage:
#   scripts/compiler-image.sh [--lockstep BIN] [--tag NAME]
#       imports the image into $LOCKSTEP_HOME (default /var/lib/lockstep for root,
#       ~/.local/share/lockstep for other users);
#       when the tag already names the image these packages give, does
#       nothing.
#   scripts/compiler-image.sh --tar OUT
#       writes the root filesystem as a deterministic tar to OUT (for
#       'lockstep image import OUT --tag localhost/cc:debian12'); when OUT was
#       written from the same packages already, does nothing.
#   scripts/compiler-image.sh --oci OUT [--lockstep BIN]
#       writes the image as an OCI image layout tar to OUT ('lockstep image
#       export'): importing it takes a second instead of compressing the
#       layer again, which is what tests with a private LOCKSTEP_HOME want.
#       Cached like --tar.
#   scripts/compiler-image.sh --rootfs DIR
#       writes the root filesystem into DIR (replaced).
# Packages come from scripts/setup.sh (apt-get); a missing one is an error.
set -euo pipefail
# Modes in the image must not depend on the caller's umask.
umask 022

here=$(cd "$(dirname "$0")/.." && pwd)
lockstep="$here/build/runner/lockstep"
tag=localhost/cc:debian12
tar_out=
oci_out=
rootfs_out=
while [ $# -gt 0 ]; do
  case "$1" in
    --lockstep|--tag|--tar|--oci|--rootfs)
      [ $# -ge 2 ] || { echo "compiler-image.sh: error: $1 needs a value" >&2; exit 2; }
      case "$1" in
        --lockstep) lockstep=$2 ;;
        --tag) tag=$2 ;;
        --tar) tar_out=$2 ;;
        --oci) oci_out=$2 ;;
        --rootfs) rootfs_out=$2 ;;
      esac
      shift ;;
    -h|--help) sed -n 2,29p "$0"; exit 0 ;;
    *) echo "compiler-image.sh: error: unknown option '$1'" >&2; exit 2 ;;
  esac
  shift
done

# libc-bin brings the C.UTF-8 locale.
roots=(gcc-12 gcc clang-14 clang libc6-dev libc-bin make binutils coreutils bash
       dash sed grep findutils diffutils mawk)

for p in "${roots[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    echo "compiler-image.sh: error: Debian package '$p' is not installed (run scripts/setup.sh)" >&2
    exit 1
  fi
done

# The dependency closure, one "package:arch version" per line, sorted.
closure() {
  dpkg-query -W -f='${binary:Package}\t${Version}\t${Status}\t${Provides}\t${Pre-Depends}\t${Depends}\n' |
    python3 -c '
import re, sys
roots = sys.argv[1:]
pkgs, provides = {}, {}
for line in sys.stdin:
    name, version, status, prov, pre, dep = line.rstrip("\n").split("\t")
    if not status.endswith(" installed"):
        continue
    pkgs[name] = (version, pre, dep)
    base = name.split(":")[0]
    pkgs.setdefault(base, (version, pre, dep))
    provides.setdefault(base, []).append(name)
    for p in filter(None, (x.strip() for x in prov.split(","))):
        provides.setdefault(re.split(r"[ (]", p)[0], []).append(name)
def resolve(alt):
    n = re.split(r"[ (\[]", alt.strip())[0]
    n = n.split(":")[0]  # :any, :native
    for cand in provides.get(n, []):
        if cand in pkgs:
            return cand
    return None
seen, todo = set(), [resolve(r) for r in roots]
while todo:
    p = todo.pop()
    if p is None or p in seen:
        continue
    seen.add(p)
    _, pre, dep = pkgs[p]
    for group in filter(None, (g.strip() for g in (pre + "," + dep).split(","))):
        for alt in group.split("|"):
            r = resolve(alt)
            if r is not None:
                todo.append(r)
                break
for p in sorted(seen):
    print(p, pkgs[p][0])
' "${roots[@]}"
}

# Writes the root filesystem into $1 (an empty directory).
build_rootfs() {
  local dir=$1
  mkdir -p "$dir"
  chmod 0755 "$dir"
  # Debian 12 merges /usr: the top-level directories are links into it.
  mkdir -p "$dir"/usr/{bin,sbin,lib,lib64} "$dir"/{etc,tmp,root,home,dev,proc,sys,var/tmp,run,workspace}
  for d in bin sbin lib lib64; do ln -s "usr/$d" "$dir/$d"; done
  chmod 1777 "$dir/tmp" "$dir/var/tmp"
  closure | cut -d' ' -f1 | xargs dpkg -L 2>/dev/null | python3 -c '
import fnmatch, os, shutil, stat, sys
root = sys.argv[1]
skip = ("/usr/share/doc", "/usr/share/man", "/usr/share/info", "/usr/share/locale",
        "/usr/share/lintian", "/usr/share/bug", "/usr/share/bash-completion")
# Large files a C build does not use, left out to keep the image small (about
# 150 MB less): libclang (the C API; clang links libclang-cpp), the LTO
# compiler and dump tool (no -flto), the sanitizer runtimes (no -fsanitize),
# Polly, and the clang intrinsics headers for ARM and RISC-V.
drop = ("*/libclang-14.so*", "*/libclang.so*", "*/lto1", "*lto-dump*",
        "*/lib[atl]san.so*", "*/libubsan.so*", "*/libhwasan.so*", "*/lib[atl]san*.a",
        "*/libubsan*.a", "*/libhwasan*.a", "*/LLVMPolly.so", "*/include/arm_*.h",
        "*/include/riscv_*.h")
def target(path):
    # The path the host resolves the parent to (merged /usr), the name kept.
    parent = os.path.realpath(os.path.dirname(path))
    return root + parent + "/" + os.path.basename(path)
seen = set()
for line in sys.stdin:
    path = line.rstrip("\n")
    if not path.startswith("/") or path == "/." or path.startswith(skip):
        continue
    if any(fnmatch.fnmatch(path, d) for d in drop):
        continue
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        continue  # excluded on this host (dpkg path-exclude) or removed
    dst = target(path)
    if dst in seen:
        continue
    seen.add(dst)
    if stat.S_ISDIR(st.st_mode):
        if os.path.islink(dst):
            continue  # a merged-/usr link already made
        os.makedirs(dst, exist_ok=True)
        os.chmod(dst, stat.S_IMODE(st.st_mode))
        continue
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    if stat.S_ISLNK(st.st_mode):
        if not os.path.lexists(dst):
            os.symlink(os.readlink(path), dst)
    elif stat.S_ISREG(st.st_mode):
        shutil.copyfile(path, dst)
        os.chmod(dst, stat.S_IMODE(st.st_mode))
' "$dir"
  # Links that maintainer scripts make through update-alternatives.
  ln -sf gcc "$dir/usr/bin/cc"
  ln -sf mawk "$dir/usr/bin/awk"
  ln -sf dash "$dir/usr/bin/sh"
  cat >"$dir/etc/passwd" <<'PW'
root:x:0:0:root:/root:/bin/bash
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
builder:x:1000:1000:builder:/home/builder:/bin/bash
PW
  cat >"$dir/etc/group" <<'GR'
root:x:0:
daemon:x:1:
users:x:100:builder
nogroup:x:65534:
builder:x:1000:
GR
  mkdir -p "$dir/home/builder"
  echo "lockstep" >"$dir/etc/hostname"
  printf 'passwd: files\ngroup: files\nhosts: files\n' >"$dir/etc/nsswitch.conf"
  # Every tree written by this function gets the same directory modes,
  # whatever the umask.
  find "$dir" -type d -exec chmod u+rwx,go+rx,go-w {} +
  chmod 1777 "$dir/tmp" "$dir/var/tmp"
}

# The key of the inputs: this script and the closure's package versions.
key=$( { sha256sum <"$0"; closure; } | sha256sum | cut -c1-64)

work=$(mktemp -d "${TMPDIR:-/tmp}/lockstep-cc.XXXXXX")
trap 'rm -rf "$work"' EXIT

if [ -n "$rootfs_out" ]; then
  rm -rf "$rootfs_out"
  mkdir -p "$rootfs_out"
  build_rootfs "$rootfs_out"
  exit 0
fi

need_lockstep() {
  [ -x "$lockstep" ] || { echo "compiler-image.sh: error: $lockstep missing (build first, or --lockstep BIN)" >&2; exit 1; }
}

# Writes $1 with the function $2 unless $1.key says it was written from the
# same inputs. Parallel callers (tests) wait for the first writer.
cached_file() {
  local out=$1 make=$2
  mkdir -p "$(dirname "$out")"
  exec 9>"$out.lock"
  flock 9
  if [ -f "$out" ] && [ "$(cat "$out.key" 2>/dev/null)" = "$key" ]; then
    return 0
  fi
  # Written next to OUT and renamed: OUT is never a partial file.
  rm -f "$out.key"
  "$make" "$out.partial"
  mv -f "$out.partial" "$out"
  echo "$key" >"$out.key"
}

rootfs_tar() {
  build_rootfs "$work/rootfs"
  tar -C "$work/rootfs" --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner \
    --format=gnu -cf "$1" .
}

oci_tar() {
  build_rootfs "$work/rootfs"
  LOCKSTEP_HOME="$work/home" "$lockstep" image import "$work/rootfs" --tag "$tag" >/dev/null
  LOCKSTEP_HOME="$work/home" "$lockstep" image export "$tag" --tar "$1"
}

if [ -n "$tar_out" ]; then
  cached_file "$tar_out" rootfs_tar
  exit 0
fi
need_lockstep
if [ -n "$oci_out" ]; then
  cached_file "$oci_out" oci_tar
  exit 0
fi

# The digest these packages gave last time: the import is deterministic, so
# when the tag already names it there is nothing to do.
stamp="${XDG_CACHE_HOME:-${HOME:-/root}/.cache}/lockstep/cc-image-$key.digest"
if [ -f "$stamp" ]; then
  have=$("$lockstep" image inspect "$tag" 2>/dev/null | sed -n 's/^  "manifest": "\(sha256:[0-9a-f]*\)",$/\1/p' || true)
  if [ -n "$have" ] && [ "$have" = "$(cat "$stamp")" ]; then
    echo "$have"
    exit 0
  fi
fi
build_rootfs "$work/rootfs"
digest=$("$lockstep" image import "$work/rootfs" --tag "$tag")
mkdir -p "$(dirname "$stamp")"
echo "$digest" >"$stamp"
echo "$digest"
