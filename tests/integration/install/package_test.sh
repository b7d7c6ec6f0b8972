#!/usr/bin/env bash
# The Debian package CPack makes of this build, installed on this machine with
# apt-get: `lockstep --version` runs from PATH, `man -w lockstep` finds the man
# page, the completion offers the commands, the mirror's unit starts the
# installed binary. Then it is purged, and the machine is as it was: no
# package, no file of it, nothing on PATH.
#
# Safe beside the other tests: they run the build's binary by its path, never
# the installed one. One package test at a time per machine (a lock shared by
# every checkout); the package's dependencies must already be installed (apt
# would otherwise add packages that purging lockstep leaves behind). A run
# killed before it could purge is cleaned up by the next one: it leaves a
# marker while the package is installed. It gives itself 20 minutes and then
# stops, cleaning up, well before CTest's timeout (25 minutes) would kill it.
# usage: package_test.sh BUILD_DIR LOCKSTEP_BINARY
set -euo pipefail
if [ -z "${LOCKSTEP_PACKAGE_TEST_TIMED:-}" ]; then
  LOCKSTEP_PACKAGE_TEST_TIMED=1 exec timeout 1200 bash "$0" "$@"
fi
build=${1:?usage: package_test.sh BUILD_DIR LOCKSTEP_BINARY}
lockstep=${2:?lockstep binary}

[ "$(id -u)" = 0 ] || { echo "SKIP: needs root (installs and purges a Debian package)"; exit 77; }
for tool in cpack apt-get dpkg-deb dpkg-shlibdeps man; do
  command -v "$tool" >/dev/null ||
    { echo "SKIP: needs $tool (scripts/setup.sh installs dpkg-dev and man-db)"; exit 77; }
done

export LC_ALL=C DEBIAN_FRONTEND=noninteractive
path=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
apt=(apt-get -q -y -o DPkg::Lock::Timeout=300)
marker=/var/tmp/lockstep-package-test.installed
tmp=$(mktemp -d /tmp/lockstep-package-test.XXXXXX)
installed=0
cleanup() {
  if [ "$installed" = 1 ]; then
    "${apt[@]}" purge lockstep >/dev/null 2>&1 || echo "package_test: could not purge lockstep" >&2
    rm -f "$marker"
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'echo "package_test: FAIL: out of time" >&2; exit 1' TERM INT
failures=0
fail() { echo "package_test: FAIL: $*" >&2; failures=$((failures + 1)); }
status() { dpkg-query -W -f='${db:Status-Status}' lockstep 2>/dev/null || true; }

exec 9>/run/lock/lockstep-package-test.lock
flock -w 600 9 || { echo "package_test: FAIL: another package test holds the lock" >&2; exit 1; }

if [ -e "$marker" ] && [ -n "$(status)" ] && [ "$(status)" != not-installed ]; then
  echo "package_test: purging the package an interrupted run left installed"
  "${apt[@]}" purge lockstep >/dev/null
fi
rm -f "$marker"
case "$(status)" in
  "" | not-installed | config-files) ;;
  *) echo "SKIP: a lockstep package is installed on this machine ($(status)); this test would replace it"
     exit 77 ;;
esac
if other=$(env -i PATH=$path bash -c 'command -v lockstep'); then
  echo "SKIP: $other is on PATH already; the test could not tell the package's binary from it"
  exit 77
fi

cpack --config "$build/CPackConfig.cmake" -B "$tmp/pkg" >"$tmp/cpack.log" 2>&1 ||
  { cat "$tmp/cpack.log" >&2; echo "package_test: FAIL: cpack failed" >&2; exit 1; }
debs=("$tmp"/pkg/lockstep_*.deb)
[ ${#debs[@]} = 1 ] && [ -f "${debs[0]}" ] || { echo "package_test: FAIL: no single .deb: ${debs[*]}" >&2; exit 1; }
deb=${debs[0]}

# What the package holds; none of its files may exist yet.
dpkg-deb -c "$deb" | awk '{print $NF}' | sed 's#^\./#/#; s#/$##' | grep -v '^/$' >"$tmp/contents"
while read -r f; do
  [ -d "$f" ] && echo "$f" >>"$tmp/dirs-before"
  if [ ! -d "$f" ] && [ -e "$f" ]; then
    echo "SKIP: $f exists already and belongs to no lockstep package; the test would overwrite it"
    exit 77
  fi
done <"$tmp/contents"
touch "$tmp/dirs-before"

dpkg-deb -f "$deb" Depends | grep -q 'libgit2' || fail "Depends lacks libgit2: $(dpkg-deb -f "$deb" Depends)"

# Installing must add lockstep and nothing else.
"${apt[@]}" -s install --no-install-recommends "$deb" >"$tmp/plan" 2>&1 ||
  { cat "$tmp/plan" >&2; echo "package_test: FAIL: apt-get cannot install the package" >&2; exit 1; }
extra=$(grep '^Inst ' "$tmp/plan" | awk '{print $2}' | grep -vx lockstep || true)
if [ -n "$extra" ]; then
  echo "package_test: FAIL: installing the package would also install:" $extra \
       "(scripts/setup.sh installs lockstep's runtime dependencies)" >&2
  exit 1
fi

touch "$marker"
installed=1
"${apt[@]}" install --no-install-recommends "$deb" >"$tmp/install.log" 2>&1 ||
  { cat "$tmp/install.log" >&2; fail "apt-get install of the package failed"; }

[ "$(status)" = installed ] || fail "dpkg does not list lockstep as installed: '$(status)'"
on_path=$(env -i PATH=$path bash -c 'command -v lockstep' || true)
[ "$on_path" = /usr/bin/lockstep ] || fail "lockstep on PATH is '$on_path', not /usr/bin/lockstep"
want=$("$lockstep" --version)
got=$(env -i PATH=$path lockstep --version 2>&1 || true)
[ "$got" = "$want" ] || fail "lockstep --version from PATH says '$got', not '$want'"
page=$(env -i PATH=$path man -w lockstep 2>&1 || true)
[ "$page" = /usr/share/man/man1/lockstep.1.gz ] || fail "man -w lockstep says '$page'"
env -i PATH=$path MANPAGER=cat MANWIDTH=80 man lockstep 2>/dev/null | grep -q 'lockstep run' ||
  fail "man lockstep does not show 'lockstep run'"
completion=/usr/share/bash-completion/completions/lockstep
offered=$(bash -c 'source "$1"; COMP_WORDS=(lockstep ru); COMP_CWORD=1; _lockstep; echo "${COMPREPLY[*]}"' \
          _ "$completion" 2>&1 || true)
[[ " $offered " == *" run "* && " $offered " == *" runs "* ]] ||
  fail "the installed completion offers '$offered' for 'lockstep ru'"
unit=/usr/lib/systemd/system/lockstep-mirror.service
grep -qx 'ExecStart=/usr/bin/lockstep mirror serve --config /etc/lockstep/mirror.yml' "$unit" 2>/dev/null ||
  fail "$unit is missing or does not start /usr/bin/lockstep"

"${apt[@]}" purge lockstep >"$tmp/purge.log" 2>&1 || { cat "$tmp/purge.log" >&2; fail "apt-get purge lockstep failed"; }
installed=0
rm -f "$marker"

# As before: no package, none of its files, the directories it made gone.
case "$(status)" in "" | not-installed) ;; *) fail "after purge dpkg says lockstep is '$(status)'" ;; esac
while read -r f; do
  if grep -qxF "$f" "$tmp/dirs-before"; then
    [ -d "$f" ] || fail "$f existed before and is gone"
  elif [ -e "$f" ] || [ -L "$f" ]; then
    fail "$f is left after purge"
  fi
done <"$tmp/contents"
left=$(env -i PATH=$path bash -c 'command -v lockstep' || true)
[ -z "$left" ] || fail "lockstep still on PATH after purge: $left"

[ "$failures" = 0 ] || { echo "package_test: $failures failures" >&2; exit 1; }
echo "package_test: $(basename "$deb") installed, checked and purged"
