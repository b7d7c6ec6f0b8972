#!/usr/bin/env bash
# `cmake --install` of this build into a scratch root (DESTDIR), for the
# default prefix and for /usr: the binary runs and prints the build's version,
# the man page, bash completion, the mirror's systemd unit (its ExecStart is
# the installed binary) and the docs are where docs/install.md says.
# usage: install_tree_test.sh BUILD_DIR LOCKSTEP_BINARY
set -euo pipefail
build=${1:?usage: install_tree_test.sh BUILD_DIR LOCKSTEP_BINARY}
lockstep=${2:?lockstep binary}

tmp=$(mktemp -d /tmp/lockstep-install-tree-test.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
failures=0
fail() { echo "install_tree_test: FAIL: $*" >&2; failures=$((failures + 1)); }

version=$("$lockstep" --version)
for prefix in /usr/local /usr; do
  root=$tmp/root$(echo "$prefix" | tr / _)
  DESTDIR=$root cmake --install "$build" --prefix "$prefix" >"$tmp/log" 2>&1 ||
    { cat "$tmp/log" >&2; fail "cmake --install --prefix $prefix failed"; continue; }
  p=$root$prefix
  [ -x "$p/bin/lockstep" ] || fail "$prefix/bin/lockstep missing or not executable"
  [ "$("$p/bin/lockstep" --version 2>&1)" = "$version" ] ||
    fail "installed $prefix/bin/lockstep --version is not '$version'"
  gzip -t "$p/share/man/man1/lockstep.1.gz" 2>/dev/null || fail "$prefix/share/man/man1/lockstep.1.gz missing or not gzip"
  zcat "$p/share/man/man1/lockstep.1.gz" 2>/dev/null | grep -q '^\.TH LOCKSTEP 1' ||
    fail "installed man page has no .TH line"
  bash -n "$p/share/bash-completion/completions/lockstep" 2>/dev/null ||
    fail "$prefix/share/bash-completion/completions/lockstep missing or not bash"
  unit=$p/lib/systemd/system/lockstep-mirror.service
  if [ -f "$unit" ]; then
    grep -qxF "ExecStart=$prefix/bin/lockstep mirror serve --config /etc/lockstep/mirror.yml" "$unit" ||
      fail "unit's ExecStart is not $prefix/bin/lockstep: $(grep ExecStart "$unit")"
  else
    fail "$prefix/lib/systemd/system/lockstep-mirror.service missing"
  fi
  for f in README.md ARCHITECTURE.md docs/install.md docs/workflows.md examples/hello/ci.yml \
           examples/mirror/mirror.yml; do
    [ -f "$p/share/doc/lockstep/$f" ] || fail "$prefix/share/doc/lockstep/$f missing"
  done
  # Nothing outside the prefix, nothing group- or world-writable.
  while read -r x; do
    [[ $prefix == "${x#"$root"}"/* ]] || fail "installed outside $prefix: ${x#"$root"}"
  done < <(find "$root" -mindepth 1 -not -path "$p" -not -path "$p/*")
  writable=$(find "$root" -perm /022 -not -type l)
  [ -z "$writable" ] || fail "group- or world-writable: $writable"
done

[ "$failures" = 0 ] || { echo "install_tree_test: $failures failures" >&2; exit 1; }
echo "install_tree_test: ok"
