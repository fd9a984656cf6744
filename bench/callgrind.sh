#!/usr/bin/env bash
# Instructions per request of one FPM worker, counted by callgrind (the repeatable
# measure on a VM without hardware counters; see RESULTS.md "How it was measured").
#
#   bench/callgrind.sh FPM_BINARY [SCRIPT_BODY]
#
# One static worker serves N1 = 100 and then, in a second run, N2 = 1100 hello requests
# (fcgi-load -c 1, a new connection each); the worker's instructions per request are
# (Ir(N2) - Ir(N1)) / (N2 - N1), so start-up and shutdown cancel out. FPM_BINARY is
# rfpm or php-fpm8.2 (same flags). Needs valgrind and a release fcgi-load
# (FCGI_LOAD, default target/release/fcgi-load).
set -euo pipefail
fpm=$(readlink -f "$1")
body=${2:-'<?php echo "Hello, World!\n";'}
load=$(readlink -f "${FCGI_LOAD:-target/release/fcgi-load}")
n1=100
n2=1100
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
printf '%s' "$body" > "$dir/hello.php"

# The worker's total instructions after serving $1 requests.
worker_ir() {
  local n=$1 run=$dir/run-$1
  mkdir -p "$run"
  cat > "$run/fpm.conf" <<CONF
[global]
error_log = $run/fpm.log
daemonize = no
[www]
listen = $run/fpm.sock
pm = static
pm.max_children = 1
CONF
  # The default callgrind.out.<pid> in the cwd: both FPMs rewrite argv for their
  # process title, which breaks a --callgrind-out-file option in the forked child.
  (cd "$run" && exec valgrind -q --tool=callgrind --trace-children=yes "$fpm" -n -R -F -O \
    -y "$run/fpm.conf" -d zend_extension=opcache.so -d opcache.enable=1 \
    -d opcache.enable_cli=0 -d opcache.file_update_protection=0 >/dev/null 2>&1) &
  local master=$!
  for _ in $(seq 1 600); do
    [ -S "$run/fpm.sock" ] && grep -q "ready to handle connections" "$run/fpm.log" 2>/dev/null && break
    sleep 0.1
  done
  "$load" --addr "$run/fpm.sock" --script "$dir/hello.php" -c 1 -n "$n" --contains Hello >/dev/null
  # SIGQUIT: a graceful stop (with SIGTERM php-fpm's worker leaves an empty profile).
  kill -QUIT "$master"
  wait "$master" || true
  local out
  for out in "$run"/callgrind.out.*; do
    [ "${out##*.}" = "$master" ] && continue
    # The worker's profile: its "totals:" (or "summary:") line.
    sed -n 's/^\(totals\|summary\): *\([0-9]*\).*/\2/p' "$out" | head -n 1
    return
  done
}

a=$(worker_ir $n1)
b=$(worker_ir $n2)
echo "$(( (b - a) / (n2 - n1) )) instructions per request ($fpm)"
