#!/usr/bin/env bash
# fuzz_run.sh SECONDS — run every built libFuzzer target for a bounded time
# from its seed corpus (fuzz/corpus/<name>, if any) and report one check per
# target. A crash, leak or timeout fails; the reproducer is kept in build/fuzz/.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
secs=${1:-20}
BUILD=${BUILD:-build}
pass=0; fail=0
for src in fuzz/fuzz_*.c; do
  name=$(basename "$src" .c)
  bin="$BUILD/fuzz/$name"
  [ -x "$bin" ] || { echo "missing $bin"; fail=$((fail + 1)); continue; }
  work="$BUILD/fuzz/work-$name"
  rm -rf "$work"; mkdir -p "$work"
  seeds=()
  [ -d "fuzz/corpus/$name" ] && seeds=("fuzz/corpus/$name")
  if "$bin" -max_total_time="$secs" -print_final_stats=1 -rss_limit_mb=2048 -timeout=10 -artifact_prefix="$BUILD/fuzz/$name-" \
       "$work" "${seeds[@]}" > "$BUILD/fuzz/$name.log" 2>&1; then
    echo "ok   $name ($(grep -Eo 'stat::number_of_executed_units: [0-9]+' "$BUILD/fuzz/$name.log" | grep -Eo '[0-9]+' || echo '?') runs)"
    pass=$((pass + 1))
  else
    echo "FAIL $name (see $BUILD/fuzz/$name.log)"; tail -n 30 "$BUILD/fuzz/$name.log"
    fail=$((fail + 1))
  fi
done
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
