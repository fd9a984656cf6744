#!/bin/bash
# Regenerate the expected outputs of the corpus from the real php-fpm8.2 (a case whose name
# ends in -8.4 from php-fpm8.4, which must be installed: Debian 13).
#
# Each case directory holds php-fpm.conf (plus any included files) where
# @DIR@ stands for the directory the case is copied to, and optionally `args`
# (extra command-line options, @DIR@ allowed). For every case php-fpm8.2 is
# run as root twice, `-n -tt -R` (expected-R) and `-n -tt` (expected-root),
# with a fixed environment; timestamps are stripped, the temporary directory is
# written back as @DIR@ and the exit code is appended as `rc=N`.
set -u
here=$(cd "$(dirname "$0")" && pwd)
corpus="$here/corpus"
only=${1:-}
for case in "$corpus"/*/; do
  name=$(basename "$case")
  [ -n "$only" ] && [ "$name" != "$only" ] && continue
  case $name in
    *-8.4) fpm=${PHP_FPM:-php-fpm8.4} ;;
    *) fpm=${PHP_FPM:-php-fpm8.2} ;;
  esac
  for mode in R root; do
    tmp=$(mktemp -d /tmp/conf-corpus.XXXXXX)
    cp -r "$case"/. "$tmp"/
    rm -f "$tmp"/expected-*
    grep -rlZ '@DIR@' "$tmp" | xargs -0 -r sed -i "s#@DIR@#$tmp#g"
    args=()
    [ -f "$tmp/args" ] && read -r -a args < "$tmp/args"
    [ "$mode" = R ] && args+=(-R)
    out=$(cd "$tmp" && env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root TESTVAR=hello TESTNUM=7 TESTBOOL=on TMPDIR=/tmp \
      "$fpm" -n -tt "${args[@]}" -y "$tmp/php-fpm.conf" 2>&1 </dev/null; echo "rc=$?")
    printf '%s\n' "$out" | sed -E -e 's/^\[[0-9]{2}-[A-Za-z]{3}-[0-9]{4} [0-9:]{8}\] //' -e "s#$tmp#@DIR@#g" > "$case/expected-$mode"
    rm -rf "$tmp"
  done
done
