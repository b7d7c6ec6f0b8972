#!/usr/bin/env bash
# The generated bash completion and man page cover what `lockstep --help`
# shows: every command of `lockstep --help`, every subcommand of a command
# whose usage takes one, and every option of each of their --help outputs.
# The lists are read here from the help text directly, independently of
# cmake/cli-docs.sh. The man page renders without groff warnings.
# usage: cli_docs_test.sh LOCKSTEP_BINARY MAN_PAGE COMPLETION_FILE
set -euo pipefail
lockstep=${1:?usage: cli_docs_test.sh LOCKSTEP_BINARY MAN_PAGE COMPLETION_FILE}
man_page=${2:?man page}
completion=${3:?completion file}

tmp=$(mktemp -d /tmp/lockstep-cli-docs-test.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
export LOCKSTEP_HOME=$tmp/home LC_ALL=C
failures=0
fail() { echo "cli_docs_test: FAIL: $*" >&2; failures=$((failures + 1)); }

command -v groff >/dev/null || { echo "SKIP: needs groff (apt-get install man-db)"; exit 77; }

# shellcheck source=/dev/null
source "$completion"
# complete WORDS...: COMPREPLY becomes what the completion offers for the last word.
complete_words() {
  COMP_WORDS=("$@")
  COMP_CWORD=$(($# - 1))
  _lockstep
}
# offers WORD WORDS...: the completion of WORDS includes WORD.
offers() {
  local want=$1 w; shift
  complete_words "$@"
  for w in "${COMPREPLY[@]}"; do [ "$w" = "$want" ] && return 0; done
  return 1
}
# offers_nothing WORDS...: no words, so bash falls back to file names.
offers_nothing() {
  complete_words "$@"
  [ ${#COMPREPLY[@]} = 0 ]
}
# options HELP: each option name of a help text ("--jobs", "-j").
options_of() {
  printf '%s\n' "$1" | grep -E '^[[:space:]]+-' | sed -E 's/^[[:space:]]+//; s/(  |$).*//' |
    tr ', =' '\n\n\n' | grep -E '^-'
}

man=$(<"$man_page")
top=$("$lockstep" --help)
verbs=$(printf '%s\n' "$top" | sed -n '/^commands:$/,/^$/p' | sed -nE 's/^  ([a-z][a-z0-9-]*) .*/\1/p')
[ "$(printf '%s\n' "$verbs" | wc -l)" -ge 10 ] || fail "too few commands in 'lockstep --help': $verbs"

checked=0
check_command() {  # WORDS...: the command path
  local text opt
  text=$("$lockstep" "$@" --help)
  [[ $man == *".SS \"lockstep $*\""* ]] || fail "man page has no section 'lockstep $*'"
  while read -r opt; do
    [ -n "$opt" ] || continue
    offers "$opt" lockstep "$@" "${opt:0:2}" || fail "'lockstep $* ${opt:0:2}<TAB>' does not offer $opt"
    [[ $man == *"${opt//-/\\-}"* ]] || fail "man page does not mention $opt of 'lockstep $*'"
    checked=$((checked + 1))
  done < <(options_of "$text")
  # Subcommands, for a command whose usage line takes one ("<command>", "<a|b>").
  if printf '%s\n' "$text" | head -n 1 | grep -qE "^usage: lockstep $* <"; then
    local sub
    for sub in $(printf '%s\n' "$text" | sed -nE 's/^  ([a-z][a-z0-9-]*)  .*/\1/p'); do
      offers "$sub" lockstep "$@" "" || fail "'lockstep $* <TAB>' does not offer $sub"
      check_command "$@" "$sub"
    done
  fi
}
for v in $verbs; do
  offers "$v" lockstep "" || fail "'lockstep <TAB>' does not offer $v"
  offers "$v" lockstep "${v:0:2}" || fail "'lockstep ${v:0:2}<TAB>' does not offer $v"
  check_command "$v"
done
[ "$checked" -ge 50 ] || fail "only $checked options found in the commands' help"

# Where a word is not a command or option, files are completed (the empty
# answer lets bash fall back to file names), also for an option's value.
offers_nothing lockstep run ci.yml "" || fail "'lockstep run ci.yml <TAB>' offers words, not files"
opt=$(options_of "$("$lockstep" run --help)" | grep -E '^--' | head -n 1)
offers "$opt" lockstep run ci.yml "--" || fail "'lockstep run ci.yml --<TAB>' (after a positional) misses $opt"
offers_nothing lockstep image import --tag "" || fail "an option's value is completed with words"
offers_nothing lockstep nosuch "" || fail "an unknown command completes words"

# The man page renders cleanly and names itself.
warnings=$(groff -man -ww -z -Tutf8 "$man_page" 2>&1 || true)
[ -z "$warnings" ] || fail "groff warns about the man page: $warnings"
head -n 3 "$man_page" | grep -q '^\.TH LOCKSTEP 1 ' || fail "man page has no .TH LOCKSTEP 1 line"
grep -qF "lockstep $("$lockstep" --version | awk '{print $NF}')" "$man_page" ||
  fail "man page does not carry the binary's version"

echo "cli_docs_test: $(printf '%s\n' "$verbs" | wc -l) commands, $checked options checked"
[ "$failures" = 0 ] || { echo "cli_docs_test: $failures failures" >&2; exit 1; }
