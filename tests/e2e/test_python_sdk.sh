#!/usr/bin/env bash
# test_python_sdk.sh — the Python SDK (bindings/python) end to end: builds
# libyan.so, the yan command and mkmodel, writes a small random-weight llama
# model with the shipped vocabulary, and runs bindings/python/tests/test_yan.py
# (plain unittest) with Debian's python3 and PYTHONPATH=bindings/python, no
# pip involved. The tests compare the binding with the yan command (tokenize,
# run greedy / seeded / with stops / --chat), and cover streaming, chat
# formatting, embeddings, logits, errors, use after close, a model closed
# under a live iterator and thread leaks. The unittest result becomes the
# closing "N passed, N failed" line (a crash or a timeout counts as a failure).
#   YAN_PYTHON: the interpreter (default /usr/bin/python3)
set -uo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
PY=${YAN_PYTHON:-/usr/bin/python3}
VOCAB=$ROOT/models/kjv-8k.tokenizer.json
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

if [ ! -x "$PY" ]; then
  bad "python interpreter $PY is missing"
  finish
fi
if ! make -s -C "$ROOT" -j2 build/libyan.so build/tools/mkmodel build/yan > "$tmp/make.log" 2>&1; then
  bad "make build/libyan.so build/tools/mkmodel build/yan ($(tail -c 400 "$tmp/make.log"))"
  finish
fi
M=$tmp/m.gguf
if ! "$ROOT/build/tools/mkmodel" --arch llama --dim 64 --layers 2 --heads 4 --kv-heads 2 --ff 128 --type f32 \
     --vocab "$VOCAB" -o "$M" > "$tmp/mk.log" 2>&1; then
  bad "mkmodel writes a model ($(tail -c 300 "$tmp/mk.log"))"
  finish
fi

# -v: one line per test; the summary ("Ran N tests", "OK (skipped=1)" or
# "FAILED (failures=1, errors=2)") gives the counts
(cd "$tmp" && env -u YAN_LIB YAN_TEST_MODEL="$M" YAN_TEST_VOCAB="$VOCAB" YAN="$ROOT/build/yan" \
   PYTHONPATH="$ROOT/bindings/python" PYTHONDONTWRITEBYTECODE=1 \
   timeout 900 "$PY" -m unittest discover -s "$ROOT/bindings/python/tests" -p 'test_*.py' -v) > "$tmp/ut.log" 2>&1
rc=$?
cat "$tmp/ut.log"
sed -n 's/.* \.\.\. skipped \(.*\)$/\1/p' "$tmp/ut.log" | while read -r why; do skip "$why"; done

ran=$(sed -n 's/^Ran \([0-9]*\) tests\{0,1\} in .*/\1/p' "$tmp/ut.log" | tail -n 1)
summary=$(grep -E '^(OK|FAILED)( \(.*\))?$' "$tmp/ut.log" | tail -n 1)
count() { sed -En "s/.*(\(|, )$1=([0-9]+).*/\2/p" <<<"$summary"; }
if [ -z "$ran" ] || [ -z "$summary" ]; then
  bad "unittest did not finish (exit $rc$([ $rc -eq 124 ] && echo ', timed out'))"
  finish
fi
failures=$(count failures); errors=$(count errors); skipped=$(count skipped)
xfail=$(count 'expected failures'); xpass=$(count 'unexpected successes')
failed=$(( ${failures:-0} + ${errors:-0} + ${xpass:-0} ))
pass=$(( pass + ran - failed - ${skipped:-0} - ${xfail:-0} ))
fail=$(( fail + failed ))
if [ $rc -ne 0 ] && [ $failed -eq 0 ]; then
  bad "unittest exited $rc"
fi
finish
