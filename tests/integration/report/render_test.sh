#!/usr/bin/env bash
# Renders a run's HTML report in headless Chromium and checks the rendered
# DOM: the matrix grid, a job's log line and a digest. Runs a real two-by-two
# matrix workflow in a private LOCKSTEP_HOME (busybox image); keeps a
# screenshot at ARTIFACT_DIR/report.png. Leaves no process and no temp dir.
# usage: render_test.sh LOCKSTEP_BINARY SOURCE_DIR ARTIFACT_DIR
set -euo pipefail
lockstep=${1:?usage: render_test.sh LOCKSTEP_BINARY SOURCE_DIR ARTIFACT_DIR}
src=${2:?source dir}
artifacts=${3:?artifact dir}

chromium=$(command -v chromium || true)
if [ -z "$chromium" ]; then
  echo "SKIP: needs chromium (apt-get install chromium)"
  exit 77
fi

tmp=$(mktemp -d /tmp/lockstep-render-XXXXXX)
groups=()
cleanup() {
  # Each chromium ran as the leader of its own process group (setsid): kill
  # what is left of those groups, then any helper still using our profile.
  for g in "${groups[@]}"; do kill -KILL -- "-$g" 2>/dev/null || true; done
  for p in $(pgrep -f -- "--user-data-dir=$tmp/profile" || true); do kill -KILL "$p" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "render_test: FAIL: $*" >&2; exit 1; }

export LOCKSTEP_HOME=$tmp/home
mkdir -p "$tmp/work/.github/workflows"
bash "$src/scripts/busybox-rootfs.sh" "$tmp/rootfs"
"$lockstep" image import "$tmp/rootfs" --tag localhost/busybox:test >/dev/null
cat > "$tmp/work/.github/workflows/ci.yml" <<'YML'
name: render
on: push
jobs:
  build:
    runs-on: ubuntu-latest
    container: localhost/busybox:test
    strategy:
      fail-fast: false
      matrix:
        cc: [gcc, clang]
        opt: ["-O2", "-O3"]
    steps:
      - name: compile
        run: |
          echo "compiling with ${{ matrix.cc }} ${{ matrix.opt }} <b>not bold</b>"
          test "${{ matrix.cc }}-${{ matrix.opt }}" != "clang--O3"
YML
rc=0
(cd "$tmp/work" && "$lockstep" run .github/workflows/ci.yml) >"$tmp/run.out" 2>&1 || rc=$?
[ "$rc" = 1 ] || { cat "$tmp/run.out"; fail "the run should fail one job (exit 1), got $rc"; }
record=$(ls "$LOCKSTEP_HOME"/runs/*/record.json 2>/dev/null | head -n1 || true)
[ -n "$record" ] || { cat "$tmp/run.out"; fail "the run wrote no record.json"; }

# The run's provenance.json is an in-toto Statement v1 with an SLSA v1 predicate.
provenance=$(dirname "$record")/provenance.json
[ -s "$provenance" ] || fail "the run wrote no provenance.json"
/usr/bin/python3 "$src/tests/schemas/validate_provenance.py" "$provenance" ||
  fail "provenance.json does not match the in-toto Statement v1 / SLSA Provenance v1 schemas"

"$lockstep" report "$record" --html "$tmp/report.html"
grep -q '<script' "$tmp/report.html" && fail "the report contains a script tag"
grep -Eq '(src|href)="(https?:)?//' "$tmp/report.html" && fail "the report fetches something"

# Chromium in its own process group, its own profile, with a deadline; the
# trap kills whatever is left.
mkdir -p "$tmp/profile" "$artifacts"
run_chromium() {
  setsid timeout -s KILL 90 "$chromium" --headless --no-sandbox --disable-gpu \
    --disable-dev-shm-usage --no-first-run --user-data-dir="$tmp/profile" "$@" \
    2>>"$tmp/chromium.err" &
  local pid=$!
  groups+=("$pid")
  local status=0
  wait "$pid" || status=$?
  kill -KILL -- "-$pid" 2>/dev/null || true
  return $status
}
run_chromium --dump-dom "file://$tmp/report.html" >"$tmp/dom.html" || {
  tail -5 "$tmp/chromium.err"; fail "chromium --dump-dom failed"; }
run_chromium --screenshot="$artifacts/report.png" --window-size=1280,1600 \
  "file://$tmp/report.html" >/dev/null || { tail -5 "$tmp/chromium.err"; fail "chromium --screenshot failed"; }

dom=$tmp/dom.html
grep -q '<table class="grid" data-job="build">' "$dom" || fail "no matrix grid in the rendered DOM"
[ "$(grep -o '<td class="cell success">' "$dom" | wc -l)" = 3 ] || fail "grid: want 3 green cells"
[ "$(grep -o '<td class="cell failure">' "$dom" | wc -l)" = 1 ] || fail "grid: want 1 red cell"
grep -q 'compiling with gcc -O2 &lt;b&gt;not bold&lt;/b&gt;' "$dom" || fail "a job's log line is missing (or unescaped)"
digest=$(sed -n 's/.*"manifest_digest": *"\(sha256:[0-9a-f]\{64\}\)".*/\1/p' "$record" | head -n1)
[ -n "$digest" ] || fail "the record names no image digest"
grep -q "$digest" "$dom" || fail "image digest $digest missing from the rendered DOM"
[ -s "$artifacts/report.png" ] || fail "no screenshot written"
cp "$tmp/report.html" "$artifacts/report.html"
echo "render_test: ok; screenshot at $artifacts/report.png, page at $artifacts/report.html"
