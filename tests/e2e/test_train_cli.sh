#!/usr/bin/env bash
# test_train_cli.sh — end-to-end tests of `yan train` on a tiny model over a
# slice of the KJV text prepared with `yan data prepare`: the loss goes down,
# loss.csv and loss.svg are well-formed, model.gguf works in `yan info` and
# `yan run`, the same seed gives the same losses, a stopped-and-resumed run
# and a run killed with SIGKILL and resumed give the losses (and the model) of
# an uninterrupted run, a NaN stops the run with exit status 3 and keeps the
# last checkpoint, bad inputs give clear errors, and 2 MPI ranks follow the
# loss curve of one process (skipped when mpicc is missing).
set -uo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
VOCAB=$ROOT/models/kjv-8k.tokenizer.json
tmp=$(mktemp -d)
bgpid=
trap '[ -n "$bgpid" ] && kill -9 $bgpid 2>/dev/null; rm -rf "$tmp"' EXIT
check() { local name=$1; shift; if "$@"; then ok "$name"; else bad "$name"; fi; }
# expect_fail NAME PATTERN CMD...: command must exit non-zero and say PATTERN on stderr
expect_fail() {
  local name=$1 pat=$2; shift 2
  if "$@" > "$tmp/out" 2> "$tmp/err"; then bad "$name (exit 0)"; return; fi
  if grep -q -- "$pat" "$tmp/err"; then ok "$name"; else bad "$name (stderr: $(head -c 300 "$tmp/err"))"; fi
}
# same_losses A B: loss.csv of both runs agree in every column but tokens/s
same_losses() { cmp -s <(cut -d, -f1-6 "$1/loss.csv") <(cut -d, -f1-6 "$2/loss.csv"); }

# ------------------------------------------------------------------ the data
if [ -s "$CORP/kjv.txt" ]; then head -c 300000 "$CORP/kjv.txt" > "$tmp/kjv.txt"
elif command -v bible > /dev/null; then bible -f Gen1:1-Ex40:38 | head -c 300000 > "$tmp/kjv.txt"
else for i in $(seq 1 25); do cat "$ROOT/data/sample.txt"; done > "$tmp/kjv.txt"
fi
if ! "$YAN" data prepare --tokenizer "$VOCAB" --val-fraction 0.1 --segment-bytes 65536 -q "$tmp/kjv.txt" \
    -o "$tmp/data" > "$tmp/prep.out" 2>&1; then
  bad "yan data prepare ($(tail -c 300 "$tmp/prep.out"))"
  finish
fi
D=$tmp/data
# a tiny model that learns something in a few dozen steps (~1 s a run)
TINY=(--data "$D" --dim 64 --layers 2 --heads 2 --seq 64 --batch 4 --steps 40 --lr 3e-3
      --eval-every 10 --eval-batches 2 --threads 2)

# ---------------------------------------------------------------------- help
check "yan --help lists train" bash -c "'$YAN' --help | grep -q '^  train '"
check "train --help lists the options" bash -c "'$YAN' train --help > '$tmp/help' &&
  for o in --data --resume --preset --layers --kv-heads --tied --batch --accum --min-lr --warmup --wd --beta2 \
           --clip --seed --threads --eval-every --eval-batches --sample-every --ckpt-every --stop-after; do
    grep -q -- \"\$o\" '$tmp/help' || exit 1; done"

# ------------------------------------------------------------ a whole run
"$YAN" train "${TINY[@]}" --sample-every 20 --sample-tokens 12 --ckpt-every 10 -o "$tmp/A" > "$tmp/A.out" 2> "$tmp/A.err"
rc=$?
check "train exits 0" test "$rc" -eq 0
check "writes model, checkpoint, csv, svg" test -s "$tmp/A/model.gguf" -a -s "$tmp/A/ckpt.gguf" \
  -a -s "$tmp/A/loss.csv" -a -s "$tmp/A/loss.svg"
check "progress lines on stderr" grep -q '^step 40/40 | loss [0-9.]* | lr .* | grad norm .* tok/s | ETA' "$tmp/A.err"
check "validation in bits per byte" grep -q '^step 40: val loss [0-9.]*, [0-9.]* bits per byte' "$tmp/A.out"
check "samples are printed" grep -q '^step 20 sample:' "$tmp/A.out"
check "loss.csv is well-formed" awk -F, '
  NR == 1 { ok = ($0 == "step,train_loss,val_loss,val_bpb,lr,grad_norm,tokens_per_s"); next }
  NF != 7 || $1 != NR - 1 || $2 !~ /^[0-9.e+-]+$/ { ok = 0 }
  ($1 % 10 == 0) != ($3 != "") { ok = 0 }
  END { exit !(ok && NR == 41) }' "$tmp/A/loss.csv"
first=$(awk -F, 'NR == 2 { print $2 }' "$tmp/A/loss.csv")
last=$(awk -F, 'NR >= 37 { s += $2; n++ } END { print s / n }' "$tmp/A/loss.csv")
check "loss goes down ($first -> $last)" awk -v a="$first" -v b="$last" 'BEGIN { exit !(b < a - 1.5) }'
v1=$(awk -F, '$1 == 10 { print $3 }' "$tmp/A/loss.csv"); v4=$(awk -F, '$1 == 40 { print $3 }' "$tmp/A/loss.csv")
check "val loss goes down ($v1 -> $v4)" awk -v a="$v1" -v b="$v4" 'BEGIN { exit !(b < a) }'
if command -v python3 > /dev/null; then
  check "loss.svg is well-formed XML with both curves" python3 -c "
import sys, xml.etree.ElementTree as E
r = E.parse(sys.argv[1]).getroot()
t = ''.join(r.itertext())
assert r.tag.endswith('svg') and 'train loss' in t and 'val loss' in t and 'params' in t, t
assert len([e for e in r.iter() if e.tag.endswith('polyline')]) == 2" "$tmp/A/loss.svg"
else
  check "loss.svg has both curves" bash -c "grep -q '</svg>' '$tmp/A/loss.svg' && grep -q 'val loss' '$tmp/A/loss.svg'"
fi
check "yan info reads model.gguf" bash -c "'$YAN' info '$tmp/A/model.gguf' > '$tmp/info' &&
  grep -q 'architecture: llama' '$tmp/info' && grep -q 'chat template: chatml' '$tmp/info' &&
  grep -q 'embedding: 64, layers: 2' '$tmp/info'"
check "yan run generates with model.gguf" bash -c "'$YAN' run '$tmp/A/model.gguf' -p 'In the beginning' -n 8 --temp 0 > '$tmp/gen' && test -s '$tmp/gen'"
check "yan run --chat works on model.gguf" bash -c "'$YAN' run '$tmp/A/model.gguf' --chat -p 'Who made the heaven?' -n 4 --temp 0 > /dev/null"
if command -v node > /dev/null && [ -d "$CACHE/peers-llama/node_modules/node-llama-cpp" ]; then
  "$YAN" tokenize --vocab "$D/tokenizer.gguf" <<< "In the beginning God created" | tr -s ' \n' ' ' > "$tmp/ids"
  if timeout 120 node "$ROOT/tests/peers/llama_peer.mjs" logprobs "$tmp/A/model.gguf" "$tmp/ids" "$tmp/lp.bin" \
      --gen 8 --threads 2 > "$tmp/peer.json" 2> "$tmp/peer.err"; then
    ok "llama.cpp loads model.gguf"
    if [ -x "$ROOT/build/tools/logits" ]; then
      "$ROOT/build/tools/logits" eval "$tmp/A/model.gguf" "$tmp/ids" "$tmp/ylp.bin" --gen 8 > "$tmp/yan.json" 2>&1
      check "llama.cpp and yan agree on model.gguf" bash -c "
        test \"\$(grep -o '\"greedy\":\[[0-9,]*\]' '$tmp/peer.json')\" = \"\$(grep -o '\"greedy\":\[[0-9,]*\]' '$tmp/yan.json')\" &&
        '$ROOT/build/tools/logits' compare '$tmp/lp.bin' '$tmp/ylp.bin' 8000 | grep -q 'top1=1.0000'"
    fi
  else
    bad "llama.cpp loads model.gguf ($(grep -i error "$tmp/peer.err" | head -c 300))"
  fi
else
  skip "llama.cpp peer: node-llama-cpp not installed (scripts/peers.sh llama)"
fi

# ---------------------------------------------------------- determinism
"$YAN" train "${TINY[@]}" --threads 1 --ckpt-every 0 -o "$tmp/A2" > /dev/null 2>&1
check "same seed, same losses (bitwise, other thread count)" same_losses "$tmp/A" "$tmp/A2"
check "same seed, same model" cmp -s "$tmp/A/model.gguf" "$tmp/A2/model.gguf"

# ---------------------------------------------------- stop, then resume
"$YAN" train "${TINY[@]}" --ckpt-every 7 --stop-after 17 -o "$tmp/B" > /dev/null 2>&1
check "--stop-after stops at 17" test "$(tail -n 1 "$tmp/B/loss.csv" | cut -d, -f1)" = 17
"$YAN" train --resume "$tmp/B/ckpt.gguf" -t 1 --stop-after 25 -q > "$tmp/B.out" 2>&1
check "resume with -t and --stop-after: stops at 25" test "$(tail -n 1 "$tmp/B/loss.csv" | cut -d, -f1)" = 25
"$YAN" train --resume "$tmp/B/ckpt.gguf" -q >> "$tmp/B.out" 2>&1
check "resume says where it starts" grep -q "at step 17 of 40" "$tmp/B.out"
check "resumed losses are bit-identical to the uninterrupted run" same_losses "$tmp/A" "$tmp/B"
check "resumed model is identical" cmp -s "$tmp/A/model.gguf" "$tmp/B/model.gguf"

# ------------------------------------------------------ kill -9, resume
"$YAN" train "${TINY[@]}" --ckpt-every 1 -o "$tmp/K" > /dev/null 2>&1 &
bgpid=$!
for i in $(seq 1 300); do
  [ -s "$tmp/K/ckpt.gguf" ] && [ "$(wc -l < "$tmp/K/loss.csv" 2>/dev/null || echo 0)" -ge 9 ] && break
  sleep 0.05
done
if kill -9 "$bgpid" 2>/dev/null; then killed=1; else killed=0; fi
wait "$bgpid" 2>/dev/null
bgpid=
check "the run was killed mid-way" test "$killed" -eq 1
"$YAN" train --resume "$tmp/K/ckpt.gguf" -q > "$tmp/K.out" 2>&1
check "a killed run's checkpoint resumes" grep -q "^resuming .* at step [0-9]* of 40" "$tmp/K.out"
check "killed + resumed losses equal the uninterrupted run" same_losses "$tmp/A" "$tmp/K"

# ------------------------------------------------------------------ NaN
"$YAN" train "${TINY[@]}" --steps 10 --lr 1e30 --ckpt-every 1 -o "$tmp/N" > /dev/null 2> "$tmp/N.err"
rc=$?
check "divergence exits 3" test "$rc" -eq 3
check "divergence message" grep -q "diverged" "$tmp/N.err"
check "divergence keeps the last good checkpoint" grep -q "last good checkpoint is kept: .*ckpt.gguf (step [0-9]*)" "$tmp/N.err"
check "that checkpoint loads" bash -c "'$YAN' train --resume '$tmp/N/ckpt.gguf' --steps 1 -q > '$tmp/N.out' 2>&1 &&
  grep -q 'last step' '$tmp/N.out' && test -s '$tmp/N/model.gguf'"

# ------------------------------------------------------------ bad input
expect_fail "missing data directory" "no-such-data.*yan data prepare" "$YAN" train --data "$tmp/no-such-data" -o "$tmp/x"
mkdir -p "$tmp/empty"
expect_fail "empty data directory" "empty: no tokenizer.gguf: not a data directory" "$YAN" train --data "$tmp/empty" -o "$tmp/x"
head -c 100000 "$tmp/A/ckpt.gguf" > "$tmp/corrupt.gguf"
expect_fail "corrupt checkpoint names the file" "corrupt.gguf" "$YAN" train --resume "$tmp/corrupt.gguf"
expect_fail "a model is not a checkpoint" "not a yan training checkpoint" "$YAN" train --resume "$tmp/A/model.gguf"
expect_fail "missing checkpoint" "nothere.gguf" "$YAN" train --resume "$tmp/nothere.gguf"
for i in 1 2 3; do cat "$ROOT/data/sample.txt"; done > "$tmp/other.txt"
"$YAN" data prepare --tokenizer "$VOCAB" --val-fraction 0.1 -q "$tmp/other.txt" -o "$tmp/other" > /dev/null 2>&1
expect_fail "resume on other data" "resuming needs the same data" "$YAN" train --resume "$tmp/A/ckpt.gguf" --data "$tmp/other"
expect_fail "unknown flag" "unknown option '--bogus'" "$YAN" train --data "$D" -o "$tmp/x" --bogus
expect_fail "bad number" "not a non-negative" "$YAN" train --data "$D" -o "$tmp/x" --steps ten
expect_fail "bad preset" "tiny, s, m" "$YAN" train --data "$D" -o "$tmp/x" --preset huge
expect_fail "heads must divide dim" "head" "$YAN" train --data "$D" -o "$tmp/x" --dim 64 --heads 3
expect_fail "seq longer than ctx" "context" "$YAN" train --data "$D" -o "$tmp/x" --seq 64 --ctx 32
expect_fail "resume cannot change lr" "cannot be changed when resuming" "$YAN" train --resume "$tmp/A/ckpt.gguf" --lr 1
expect_fail "needs -o" "-o OUT" "$YAN" train --data "$D"

# ------------------------------------------------------------------ MPI
if ! command -v mpicc > /dev/null || ! command -v mpirun > /dev/null; then
  skip "MPI data parallel: mpicc/mpirun not installed"
else
  if make -s -C "$ROOT" -j2 MPI=1 build/mpi/yan > "$tmp/mpi.log" 2>&1; then
    MPIRUN=(mpirun --oversubscribe -np 2)
    [ "$(id -u)" -eq 0 ] && MPIRUN+=(--allow-run-as-root)
    MT=(--data "$D" --dim 64 --layers 2 --heads 2 --seq 64 --batch 8 --steps 20 --lr 3e-3 --eval-every 10
        --eval-batches 2 --ckpt-every 0 -q)
    "$YAN" train "${MT[@]}" --threads 2 -o "$tmp/S1" > /dev/null 2>&1
    OMPI_MCA_btl_vader_single_copy_mechanism=none timeout 120 "${MPIRUN[@]}" "$ROOT/build/mpi/yan" train "${MT[@]}" \
      -o "$tmp/S2" > "$tmp/mpi.out" 2>&1
    check "mpirun -np 2 trains" test -s "$tmp/S2/model.gguf"
    check "only rank 0 prints" test "$(grep -c '^done:' "$tmp/mpi.out")" -eq 1
    check "2 ranks follow the 1-process loss curve" awk -F, 'NR == FNR { a[FNR] = $2; v[FNR] = $3; next }
      FNR > 1 { d = $2 - a[FNR]; if (d < 0) d = -d; if (d > 1e-3 * a[FNR]) bad = 1;
                if (($3 == "") != (v[FNR] == "")) bad = 1 }
      END { exit bad || FNR != 21 }' "$tmp/S1/loss.csv" "$tmp/S2/loss.csv"
    expect_fail "batch not divisible by ranks" "divisible" timeout 60 "${MPIRUN[@]}" "$ROOT/build/mpi/yan" train \
      "${MT[@]}" --batch 5 -o "$tmp/S3"
  else
    bad "make MPI=1 ($(tail -c 300 "$tmp/mpi.log"))"
  fi
fi

finish
