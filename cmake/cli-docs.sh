#!/usr/bin/env bash
# Writes lockstep's man page or its bash completion from the binary's own help:
# `lockstep --help`, then `--help` of every command it lists, recursively.
# A line "  NAME  text" of a command's help names a subcommand when
# `lockstep ... NAME --help` prints a usage line for `lockstep ... NAME`; option
# lines start with "-". The output depends only on the binary (and the date
# given), so two builds of one commit give the same files.
# usage: cli-docs.sh man  LOCKSTEP OUT.1 [EPOCH]
#        cli-docs.sh bash LOCKSTEP OUT.bash
set -euo pipefail
mode=${1:?usage: cli-docs.sh man|bash LOCKSTEP OUT [EPOCH]}
lockstep=${2:?lockstep binary}
out=${3:?output file}
epoch=${4:-}

# Help never needs state, but keep any command away from the real state dir.
tmp=$(mktemp -d /tmp/lockstep-cli-docs.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
export LOCKSTEP_HOME=$tmp/home
export LC_ALL=C

die() { echo "cli-docs.sh: error: $*" >&2; exit 1; }

# help PATH...: the help text of `lockstep PATH... --help`, or nothing.
help() { "$lockstep" "$@" --help 2>/dev/null || true; }

# Every command path, parents before children, as lines of words ("" is the
# top level), with its help text in $tmp/help/<n>.
paths=()
helps=()
walk() {
  local -a path=("$@")
  local text
  text=$(help "${path[@]}")
  [ -n "$text" ] || die "'lockstep ${path[*]} --help' printed nothing"
  paths+=("${path[*]}")
  helps+=("$text")
  local word
  for word in $(printf '%s\n' "$text" | sed -n 's/^  \([a-z][a-z0-9-]*\)  .*/\1/p'); do
    local sub
    sub=$(help "${path[@]}" "$word" | head -n 1)
    shopt -s nocasematch
    if [[ $sub == "usage: lockstep ${path[*]:+${path[*]} }$word"* ]]; then
      shopt -u nocasematch
      walk "${path[@]}" "$word"
    fi
    shopt -u nocasematch
  done
}
walk
[ "${#paths[@]}" -gt 1 ] || die "no commands found in 'lockstep --help'"

# subcommands INDEX: the direct children of paths[INDEX].
subcommands() {
  local parent=${paths[$1]} p
  for p in "${paths[@]}"; do
    [ -n "$p" ] || continue
    if [ -z "$parent" ]; then
      [[ $p == *" "* ]] || printf '%s\n' "$p"
    elif [[ $p == "$parent "* && ${p#"$parent "} != *" "* ]]; then
      printf '%s\n' "${p#"$parent "}"
    fi
  done
}

# options TEXT: "NAME TAKES_VALUE" per option line ("--jobs 1", "-j 1", "--list 0").
options() {
  printf '%s\n' "$1" | awk '
    /^[ \t]+-/ {
      line = $0; sub(/^[ \t]+/, "", line)
      # "-j, --jobs N  help" or "--jobs=N" or "-j,--jobs N": the part before the
      # first run of two spaces is the option and its value name.
      head = line; if (match(line, /   */)) head = substr(line, 1, RSTART - 1)
      n = split(head, w, /[, =]+/)
      value = 0
      for (i = 1; i <= n; i++) if (w[i] !~ /^-/ && w[i] != "") value = 1
      for (i = 1; i <= n; i++) if (w[i] ~ /^-/) print w[i], value
    }'
}

write_bash() {
  local i subs opts valued name v
  {
    echo "# bash completion for lockstep, generated from 'lockstep --help' and"
    echo "# every command's --help by cmake/cli-docs.sh."
    echo "declare -gA _lockstep_subcommands=("
    for i in "${!paths[@]}"; do
      subs=$(subcommands "$i" | tr '\n' ' ')
      [ -n "$subs" ] && printf '  [%q]=%q\n' "lockstep${paths[$i]:+ ${paths[$i]}}" "${subs% }"
    done
    echo ")"
    echo "declare -gA _lockstep_options=("
    for i in "${!paths[@]}"; do
      opts=""
      while read -r name v; do opts+="$name "; done < <(options "${helps[$i]}")
      [ -n "$opts" ] && printf '  [%q]=%q\n' "lockstep${paths[$i]:+ ${paths[$i]}}" "${opts% }"
    done
    echo ")"
    echo "declare -gA _lockstep_valued=("
    for i in "${!paths[@]}"; do
      valued=""
      while read -r name v; do [ "$v" = 1 ] && valued+="$name "; done < <(options "${helps[$i]}")
      [ -n "$valued" ] && printf '  [%q]=%q\n' "lockstep${paths[$i]:+ ${paths[$i]}}" "${valued% }"
    done
    echo ")"
    cat <<'EOF'

_lockstep() {
  local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD - 1]}
  local path=lockstep i
  # The command path: the leading words that name commands and subcommands.
  for ((i = 1; i < COMP_CWORD; i++)); do
    [[ " ${_lockstep_subcommands[$path]-} " == *" ${COMP_WORDS[i]} "* ]] || break
    path+=" ${COMP_WORDS[i]}"
  done
  COMPREPLY=()
  # An option's value: files (the default).
  [[ " ${_lockstep_valued[$path]-} " == *" $prev "* ]] && return
  if [[ $cur == -* ]]; then
    mapfile -t COMPREPLY < <(compgen -W "${_lockstep_options[$path]-}" -- "$cur")
  elif ((i == COMP_CWORD)) && [[ -n ${_lockstep_subcommands[$path]-} ]]; then
    mapfile -t COMPREPLY < <(compgen -W "${_lockstep_subcommands[$path]}" -- "$cur")
  fi
}
complete -o bashdefault -o default -F _lockstep lockstep
EOF
  } > "$out.tmp"
}

# roff TEXT: escapes for troff (backslashes, dashes, leading dots and quotes).
roff() {
  sed -e 's/\\/\\e/g' -e 's/-/\\-/g' -e "s/^\([.']\)/\\\\\&\1/"
}

# man_section TEXT: one command's help as man text. The usage line becomes the
# synopsis, option and subcommand lines become tagged paragraphs, headed lists
# ("environment:") keep their layout, other lines are filled text.
man_section() {
  printf '%s\n' "$1" | roff | awk '
    function flush() { if (tp != "") { print ".TP"; print tp; if (body != "") print body } tp = ""; body = "" }
    NR == 1 && tolower($0) ~ /^usage: / {
      sub(/^[Uu]sage: /, ""); print ".PP"; print ".nf"; print "\\fB" $0 "\\fR"; print ".fi"; next
    }
    /^$/ { flush(); para = 1; next }
    /^[A-Za-z][A-Za-z \\-]*:$/ { flush(); print ".PP"; print "\\fI" $0 "\\fR"; next }
    /^[ \t]+\\-/ || /^  [a-zA-Z_][a-zA-Z0-9_\\-]*  / {
      flush(); line = $0; sub(/^[ \t]+/, "", line)
      if (match(line, /   */)) { tp = substr(line, 1, RSTART - 1); body = substr(line, RSTART + RLENGTH) }
      else { tp = line; body = "" }
      tp = "\\fB" tp "\\fR"; next
    }
    /^[ \t]+/ && tp != "" { line = $0; sub(/^[ \t]+/, "", line); body = body (body == "" ? "" : "\n") line; next }
    /^[ \t]+/ { flush(); line = $0; sub(/^[ \t]+/, "", line); print ".br"; print line; next }
    { flush(); if (para) { print ".PP"; para = 0 } print }
    END { flush() }'
}

write_man() {
  local version date="" i first
  version=$("$lockstep" --version | awk '{print $NF}')
  [ -n "$epoch" ] && date=$(date -u -d "@$epoch" +%Y-%m-%d)
  first=$(printf '%s\n' "${helps[0]}" | sed -n '3p')
  {
    echo ".\\\" Generated from 'lockstep --help' and every command's --help by cmake/cli-docs.sh."
    printf '.TH LOCKSTEP 1 "%s" "lockstep %s" "User Commands"\n' "$date" "$version"
    echo ".SH NAME"
    printf 'lockstep \\- %s\n' "$(printf '%s' "${first%.}" | sed 's/^\(.\)/\L\1/' | roff)"
    echo ".SH DESCRIPTION"
    man_section "${helps[0]}"
    echo ".SH COMMANDS"
    for i in "${!paths[@]}"; do
      [ -n "${paths[$i]}" ] || continue
      printf '.SS "lockstep %s"\n' "${paths[$i]}"
      man_section "${helps[$i]}"
    done
    echo ".SH SEE ALSO"
    echo "README.md and docs/ in lockstep's documentation directory"
    echo "(share/doc/lockstep under the install prefix)."
  } > "$out.tmp"
}

case "$mode" in
  man) write_man ;;
  bash) write_bash ;;
  *) die "unknown mode '$mode' (man or bash)" ;;
esac
mv "$out.tmp" "$out"
