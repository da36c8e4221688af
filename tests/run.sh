#!/usr/bin/env bash
# run.sh — the whole test suite: unit tests, unit tests under ASan+UBSan,
# end-to-end tests (CLI, tokenizers against their peers), and short bounded
# fuzz runs. Each stage closes with "N passed, N failed"; this script adds
# them up and closes with the total. Exit status 1 if anything failed.
#   YAN_SKIP_ASAN=1, YAN_SKIP_FUZZ=1, YAN_SKIP_E2E=1 leave a stage out;
#   YAN_FUZZ_SECONDS (default 20) bounds each fuzz target.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
BUILD=${BUILD:-build}
total_pass=0
total_fail=0
log=$(mktemp -d)
trap 'rm -rf "$log"' EXIT

stage() { # name command...
  local name=$1; shift
  echo "=== $name"
  "$@" 2>&1 | tee "$log/out"
  local rc=${PIPESTATUS[0]}
  local line
  line=$(grep -E '^([A-Za-z]+: )?[0-9]+ passed, [0-9]+ failed' "$log/out" | tail -n 1)
  if [ -n "$line" ]; then
    local p f
    p=$(sed -E 's/^([A-Za-z]+: )?([0-9]+) passed.*/\2/' <<<"$line")
    f=$(sed -E 's/^([A-Za-z]+: )?[0-9]+ passed, ([0-9]+) failed.*/\2/' <<<"$line")
    total_pass=$((total_pass + p))
    total_fail=$((total_fail + f))
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then total_fail=$((total_fail + 1)); echo "!!! $name exited $rc"; fi
  else
    if [ "$rc" -eq 0 ]; then total_pass=$((total_pass + 1)); else total_fail=$((total_fail + 1)); echo "!!! $name exited $rc"; fi
  fi
}

stage "unit tests" "$BUILD/unit"
if [ -z "${YAN_SKIP_ASAN:-}" ]; then
  stage "unit tests (ASan+UBSan)" make -s asan BUILD="$BUILD"
fi
if [ -z "${YAN_SKIP_E2E:-}" ]; then
  for t in tests/e2e/test_*.sh; do
    stage "e2e $(basename "$t")" bash "$t"
  done
fi
if [ -z "${YAN_SKIP_FUZZ:-}" ]; then
  stage "fuzz (bounded)" make -s fuzz-run BUILD="$BUILD" FUZZ_SECONDS="${YAN_FUZZ_SECONDS:-20}"
fi
echo "=== total"
echo "$total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ]
