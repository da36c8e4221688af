#!/usr/bin/env bash
# test_finetune.sh — end-to-end tests of `yan finetune` on a small base made
# here with `yan train` (dim 256, so that q4_K_M quantizes every matrix) and
# tests/train/chat_small.jsonl (48 English and Chinese chats, ChatML):
#  - full SFT: the loss on assistant tokens goes down (train and validation),
#    model.gguf keeps the base's architecture, tokenizer and chat template and
#    answers in `yan run --chat` and `yan chat`;
#  - LoRA on the f32 base and on q8_0 and q4_K_M bases (`yan quantize`; kept
#    quantized and frozen): adapter.gguf is written, the loss goes down,
#    `yan run --lora` works and the adapter changes the model's output;
#    `yan lora merge` gives the logits of base + adapter (f32 base: within
#    1e-4 of the logit range; a quantized base is re-encoded by the merge);
#  - llama.cpp (node-llama-cpp, when installed) loads base + adapter and
#    agrees with yan's log-probabilities;
#  - a LoRA run stopped and resumed from its checkpoint gives bit-identical
#    losses and adapter; resuming against another base is refused;
#  - bad input: an invalid JSONL line and a conversation without an assistant
#    turn (errors name file:line), an unknown --lora-targets name (named), an
#    unknown template; a failed run leaves an existing OUT/ckpt.gguf as it was.
set -uo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
VOCAB=$ROOT/models/kjv-8k.tokenizer.json
CHAT=$ROOT/tests/train/chat_small.jsonl
TC=$ROOT/build/tools/train_check
LG=$ROOT/build/tools/logits
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
check() { local name=$1; shift; if "$@"; then ok "$name"; else bad "$name"; fi; }
# expect_fail NAME PATTERN CMD...: command must exit non-zero and say PATTERN on stderr
expect_fail() {
  local name=$1 pat=$2; shift 2
  if "$@" > "$tmp/out" 2> "$tmp/err"; then bad "$name (exit 0)"; return; fi
  if grep -q -- "$pat" "$tmp/err"; then ok "$name"; else bad "$name (stderr: $(head -c 300 "$tmp/err"))"; fi
}
same_losses() { cmp -s <(cut -d, -f1-6 "$1/loss.csv") <(cut -d, -f1-6 "$2/loss.csv"); }
# falls A: the mean train loss of the last 5 steps is below the first step's by more than $2
falls() {
  awk -F, -v d="$2" 'NR == 2 { a = $2 } NR > 1 { v[NR] = $2; n = NR }
    END { s = 0; for (i = n - 4; i <= n; i++) s += v[i]; exit !(s / 5 < a - d) }' "$1/loss.csv"
}
# val_falls A: the last validation loss is below the first one
val_falls() { awk -F, 'NR > 1 && $3 != "" { if (f == "") f = $3; l = $3 } END { exit !(l < f) }' "$1/loss.csv"; }
# max_rel A.bin B.bin V: logits compare's max |A - B| / range
max_rel() { "$LG" compare "$1" "$2" "$3" | sed -n 's/.*max_rel=\([0-9.e+-]*\).*/\1/p'; }
le() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a != "" && b != "" && a <= b) }'; }
both_le() { le "$1" "$2" && le "$3" "$4"; }

[ -x "$TC" ] && [ -x "$LG" ] || make -s -C "$ROOT" build/tools/train_check build/tools/logits > /dev/null 2>&1

# ------------------------------------------------------------------ the base
if [ -s "$CORP/kjv.txt" ]; then head -c 200000 "$CORP/kjv.txt" > "$tmp/kjv.txt"
else for i in $(seq 1 20); do cat "$ROOT/data/sample.txt"; done > "$tmp/kjv.txt"
fi
if ! "$YAN" data prepare --tokenizer "$VOCAB" --val-fraction 0.1 -q "$tmp/kjv.txt" -o "$tmp/data" > "$tmp/prep.out" 2>&1 ||
   ! "$YAN" train --data "$tmp/data" --dim 256 --layers 2 --heads 4 --ff 512 --seq 64 --ctx 256 --batch 4 \
       --steps 12 --lr 3e-3 --eval-every 0 --threads 2 -q -o "$tmp/base" > "$tmp/base.out" 2>&1; then
  bad "making the base with yan data prepare + yan train ($(tail -c 300 "$tmp/prep.out" "$tmp/base.out"))"
  finish
fi
BASE=$tmp/base/model.gguf
"$YAN" quantize "$BASE" "$tmp/q8.gguf" q8_0 > /dev/null 2>&1
"$YAN" quantize "$BASE" "$tmp/q4.gguf" q4_K_M > /dev/null 2>&1
check "q4_K_M base has k-quant matrices" bash -c "'$YAN' info '$tmp/q4.gguf' | grep -q 'q4_K'"
"$YAN" tokenize --vocab "$tmp/data/tokenizer.gguf" <<< "<|im_start|>user
What is 2 plus 3?<|im_end|>
<|im_start|>assistant
" | tr -s ' \n' ' ' > "$tmp/ids"

# ---------------------------------------------------------------------- help
check "yan --help lists finetune" bash -c "'$YAN' --help | grep -q '^  finetune '"
check "finetune --help lists the options" bash -c "'$YAN' finetune --help > '$tmp/help' &&
  for o in --data --val-data --chat-template --lora-rank --lora-alpha --lora-targets --batch --seq --accum \
           --steps --epochs --lr --warmup --wd --clip --seed --threads --eval-every --ckpt-every --resume; do
    grep -q -- \"\$o\" '$tmp/help' || exit 1; done"

COMMON=(--data "$CHAT" --batch 8 --eval-every 10 --threads 2 -q)

# ------------------------------------------------------------------ full SFT
"$YAN" finetune "$BASE" "${COMMON[@]}" --steps 30 --lr 2e-3 --ckpt-every 10 -o "$tmp/F" > "$tmp/F.out" 2> "$tmp/F.err"
check "full SFT exits 0" test $? -eq 0
check "full SFT writes model, checkpoint, csv, svg" test -s "$tmp/F/model.gguf" -a -s "$tmp/F/ckpt.gguf" \
  -a -s "$tmp/F/loss.csv" -a -s "$tmp/F/loss.svg"
check "the run describes the data and the template" grep -q "conversations .* for training, 3 for validation; chat template chatml (the base's)" "$tmp/F.out"
check "full SFT: the assistant-token loss goes down" falls "$tmp/F" 1.0
check "full SFT: the validation loss goes down" val_falls "$tmp/F"
check "model.gguf keeps the architecture, tokenizer and template" bash -c "'$YAN' info '$tmp/F/model.gguf' > '$tmp/info' &&
  grep -q 'architecture: llama' '$tmp/info' && grep -q 'chat template: chatml' '$tmp/info' &&
  grep -q 'embedding: 256, layers: 2' '$tmp/info'"
check "yan run --chat answers with model.gguf" bash -c "'$YAN' run '$tmp/F/model.gguf' --chat -p 'What is 2 plus 3?' -n 6 --temp 0 > '$tmp/F.gen' 2>/dev/null && test -s '$tmp/F.gen'"
check "yan chat answers with model.gguf" bash -c "printf 'What is 4 plus 4?\n' | '$YAN' chat '$tmp/F/model.gguf' -n 6 --temp 0 > '$tmp/F.chat' 2>/dev/null && test -s '$tmp/F.chat'"

# ------------------------------------------------------------------------ LoRA
LORA=(--lora-rank 8 --lora-alpha 16 --lr 1e-2 --steps 30)
for b in f32 q8 q4; do
  case $b in f32) m=$BASE ;; q8) m=$tmp/q8.gguf ;; q4) m=$tmp/q4.gguf ;; esac
  "$YAN" finetune "$m" "${COMMON[@]}" "${LORA[@]}" -o "$tmp/L$b" > "$tmp/L$b.out" 2> "$tmp/L$b.err"
  check "LoRA on the $b base exits 0" test $? -eq 0
  check "LoRA on the $b base writes adapter.gguf (no model.gguf)" test -s "$tmp/L$b/adapter.gguf" -a ! -e "$tmp/L$b/model.gguf"
  if [ "$b" != f32 ]; then
    check "LoRA on the $b base keeps it quantized" grep -q "base kept quantized (mapped, frozen)" "$tmp/L$b.out"
  fi
  check "LoRA on the $b base: the loss goes down" falls "$tmp/L$b" 0.3
  check "yan run --lora works on the $b base" bash -c "'$YAN' run '$m' --lora '$tmp/L$b/adapter.gguf' --chat -p 'What is 2 plus 3?' -n 6 --temp 0 > /dev/null 2>&1"
  "$TC" logprobs "$m" "$tmp/ids" "$tmp/$b.base.bin" > /dev/null 2>&1
  "$TC" logprobs "$m" "$tmp/ids" "$tmp/$b.lora.bin" --lora "$tmp/L$b/adapter.gguf" > /dev/null 2>&1
  r=$(max_rel "$tmp/$b.base.bin" "$tmp/$b.lora.bin" 8000)
  check "the adapter changes the $b base's output (logits differ by $r of the range)" \
    awk -v a="$r" 'BEGIN { exit !(a != "" && a > 1e-2) }'
  "$YAN" lora merge "$m" "$tmp/L$b/adapter.gguf" -o "$tmp/merged-$b.gguf" > /dev/null 2>&1
  "$TC" logprobs "$tmp/merged-$b.gguf" "$tmp/ids" "$tmp/$b.merged.bin" > /dev/null 2>&1
  r=$(max_rel "$tmp/$b.lora.bin" "$tmp/$b.merged.bin" 8000)
  if [ "$b" = f32 ]; then
    check "yan lora merge = base + adapter on the f32 base ($r of the logit range)" le "$r" 1e-4
  else
    check "yan lora merge ~ base + adapter on the $b base ($r of the range; the merge re-encodes $b)" le "$r" 5e-2
  fi
done
check "an adapter from the q8_0 base differs from the f32 one" bash -c "! cmp -s '$tmp/Lf32/adapter.gguf' '$tmp/Lq8/adapter.gguf'"

# -------------------------------------------------------- llama.cpp + adapter
if command -v node > /dev/null && [ -d "$CACHE/peers-llama/node_modules/node-llama-cpp" ]; then
  # llama.cpp computes W x with its own quantized kernels (8-bit activations)
  # plus scale * B (A x); yan (yan_model_apply_lora) uses W + s B A in f32
  for b in f32 q8 q4; do
    # (so near-ties may flip on a quantized base: top-1 agreement >= 90% there)
    case $b in f32) m=$BASE; tol=1e-3; top=1 ;; q8) m=$tmp/q8.gguf; tol=1e-2; top=0.9 ;;
               q4) m=$tmp/q4.gguf; tol=1e-2; top=0.9 ;; esac
    if timeout 120 node "$ROOT/tests/peers/llama_peer.mjs" logprobs "$m" "$tmp/ids" "$tmp/$b.ll.bin" --kv f32 \
        --threads 2 --lora "$tmp/L$b/adapter.gguf" > "$tmp/$b.ll.json" 2> "$tmp/$b.ll.err"; then
      out=$("$LG" compare "$tmp/$b.ll.bin" "$tmp/$b.lora.bin" 8000)
      r=$(sed -n 's/.*max_rel=\([0-9.e+-]*\).*/\1/p' <<< "$out")
      t1=$(sed -n 's/.*top1=\([0-9.]*\).*/\1/p' <<< "$out")
      check "llama.cpp applies yan's adapter on the $b base like yan ($r of the logit range, top-1 agreement $t1)" \
        both_le "$r" "$tol" "$top" "$t1"
    else
      bad "llama.cpp loads the $b base with yan's adapter ($(grep -i error "$tmp/$b.ll.err" | head -c 300))"
    fi
  done
else
  skip "llama.cpp peer: node-llama-cpp not installed (scripts/peers.sh llama)"
fi

# ---------------------------------------------------- LoRA stop, resume, refuse
RS=("$tmp/q8.gguf" "${COMMON[@]}" "${LORA[@]}" --steps 20)
"$YAN" finetune "${RS[@]}" --ckpt-every 5 -o "$tmp/R1" > /dev/null 2>&1
"$YAN" finetune "${RS[@]}" --ckpt-every 5 --stop-after 12 -o "$tmp/R2" > /dev/null 2>&1
check "--stop-after stops at 12" test "$(tail -n 1 "$tmp/R2/loss.csv" | cut -d, -f1)" = 12
"$YAN" finetune --resume "$tmp/R2/ckpt.gguf" -q > "$tmp/R2.out" 2>&1
check "resume says where it starts" grep -q "at step 12 of 20" "$tmp/R2.out"
check "resumed LoRA losses are bit-identical to the uninterrupted run" same_losses "$tmp/R1" "$tmp/R2"
check "resumed adapter is identical" cmp -s "$tmp/R1/adapter.gguf" "$tmp/R2/adapter.gguf"
check "the checkpoint holds adapters, not the base" test "$(stat -c %s "$tmp/R1/ckpt.gguf")" -lt "$(stat -c %s "$tmp/q8.gguf")"
expect_fail "resume against another base is refused" "another base" \
  "$YAN" finetune --resume "$tmp/R1/ckpt.gguf" "$tmp/q4.gguf"
expect_fail "a fine-tuning checkpoint is not resumed by yan train" "yan finetune --resume" \
  "$YAN" train --resume "$tmp/R1/ckpt.gguf"
expect_fail "resume cannot change the rank" "cannot be changed when resuming" \
  "$YAN" finetune --resume "$tmp/R1/ckpt.gguf" --lora-rank 4

# ------------------------------------------------------------------ bad input
sum0=$(sha256sum "$tmp/R1/ckpt.gguf")
sed -n 1,3p "$CHAT" > "$tmp/bad.jsonl"; echo '{"messages": [{"role": "user", "content": "hi"}' >> "$tmp/bad.jsonl"
expect_fail "invalid JSON names file:line" "bad.jsonl:4: invalid JSON" \
  "$YAN" finetune "$BASE" --data "$tmp/bad.jsonl" -o "$tmp/R1"
sed -n 1,5p "$CHAT" > "$tmp/noasst.jsonl"; echo '{"messages": [{"role": "user", "content": "hi"}]}' >> "$tmp/noasst.jsonl"
expect_fail "no assistant turn names file:line" "noasst.jsonl:6: the conversation has no assistant turn" \
  "$YAN" finetune "$BASE" --data "$tmp/noasst.jsonl" --lora-rank 4 -o "$tmp/R1"
expect_fail "bad validation file names file:line" "bad.jsonl:4" \
  "$YAN" finetune "$BASE" --data "$CHAT" --val-data "$tmp/bad.jsonl" -o "$tmp/R1"
expect_fail "unknown LoRA target is named" "unknown LoRA target 'qq'" \
  "$YAN" finetune "$BASE" --data "$CHAT" --lora-rank 4 --lora-targets q,qq -o "$tmp/R1"
expect_fail "unknown chat template" "known: chatml" \
  "$YAN" finetune "$BASE" --data "$CHAT" --chat-template nosuch -o "$tmp/R1"
expect_fail "missing base" "nothere.gguf" "$YAN" finetune "$tmp/nothere.gguf" --data "$CHAT" -o "$tmp/R1"
expect_fail "missing data file" "nodata.jsonl" "$YAN" finetune "$BASE" --data "$tmp/nodata.jsonl" -o "$tmp/R1"
expect_fail "--steps and --epochs together" "not both" "$YAN" finetune "$BASE" --data "$CHAT" --steps 3 --epochs 1 -o "$tmp/R1"
expect_fail "--lora-alpha needs --lora-rank" "need --lora-rank" "$YAN" finetune "$BASE" --data "$CHAT" --lora-alpha 4 -o "$tmp/R1"
check "failed runs leave the existing checkpoint untouched" test "$(sha256sum "$tmp/R1/ckpt.gguf")" = "$sum0"
check "failed runs leave the existing adapter" cmp -s "$tmp/R1/adapter.gguf" "$tmp/R2/adapter.gguf"

finish
